/* hoist.c: loop versioning for counted leaf loops (docs/jit.md "Counted loops"). Runs on the
** IR between two parts of the pipeline (after loop-rotate/licm/indvars/lcssa). A leaf loop
** is a loop with one back-edge (its budget check: fuel - 1 < 0 or the interrupt flag) and no
** calls but intrinsics. When its trip count follows from an induction variable and an
** invariant bound, the loop is cloned; the clone has no budget check and none of the bounds
** checks whose address is affine in the iteration, and it is entered from the preheader only
** when, for the whole trip count T (back-edges): fuel >= T (so no back-edge can exhaust it),
** the interrupt flag is clear, T <= QJ_HOIST_MAX (an interrupt is seen within that many
** iterations), and every such address stays in bounds at both ends of its range (it is
** monotone). Otherwise the original loop runs, checks and all. Fuel is still decremented per
** back-edge in the clone, so any exit (break, trap) leaves the interpreter's fuel; a check
** that cannot fail was the only thing removed, so semantics are bit for bit the same.
** Invariant: anything this file cannot prove leaves the loop as it was; a function whose IR
** fails to verify afterwards is the caller's signal to compile without hoisting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define QJ_HOIST_MAX (1ll << 24)

/* ---- a pointer map (open addressing) --------------------------------------------------------- */

typedef struct pmap {
  void **k, **v;
  size_t cap;
} pmap;

static size_t ph(const void *p, size_t cap) {
  uintptr_t x = (uintptr_t)p;
  x ^= x >> 17, x *= 0x9E3779B97F4A7C15ull, x ^= x >> 29;
  return (size_t)x & (cap - 1);
}

static bool pmap_init(pmap *m, size_t n) {
  m->cap = 16;
  while (m->cap < 2 * n + 16) m->cap *= 2;
  m->k = calloc(m->cap, sizeof *m->k), m->v = calloc(m->cap, sizeof *m->v);
  return m->k && m->v;
}

static void pmap_fini(pmap *m) { free(m->k), free(m->v); }

static void pmap_put(pmap *m, void *k, void *v) {
  size_t i = ph(k, m->cap);
  while (m->k[i] && m->k[i] != k) i = (i + 1) & (m->cap - 1);
  m->k[i] = k, m->v[i] = v;
}

static void *pmap_get(const pmap *m, const void *k) {
  size_t i = ph(k, m->cap);
  while (m->k[i]) {
    if (m->k[i] == k) return m->v[i];
    i = (i + 1) & (m->cap - 1);
  }
  return NULL;
}

/* ---- the function's blocks ------------------------------------------------------------------- */

typedef struct fn_ctx {
  qj__lower *L;
  LLVMValueRef fn, rt_trap, rt_budget;
  uint32_t nb;
  LLVMBasicBlockRef *bbs;
  pmap idx;                 /* block -> index + 1 */
  uint32_t *pred_off, *preds; /* CSR predecessor lists (one entry per edge) */
  bool *in;                 /* the loop being looked at */
  LLVMBuilderRef pb;        /* positioned before the preheader's terminator */
  uint32_t head, latch, pre;
  int nested;               /* affine() recursion depth */
} fn_ctx;

static uint32_t bidx(fn_ctx *c, LLVMBasicBlockRef b) {
  return (uint32_t)(uintptr_t)pmap_get(&c->idx, b) - 1;
}

static bool calls(LLVMBasicBlockRef b, LLVMValueRef f) {
  for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i))
    if (LLVMIsACallInst(i) && LLVMGetCalledValue(i) == f) return true;
  return false;
}

/* the trap kind of a block that calls qw_rt_trap with a constant kind, else -1 */
static int trap_kind(fn_ctx *c, LLVMBasicBlockRef b) {
  for (int hop = 0; hop < 4; hop++) { /* through dedicated exit blocks (phis, then a branch) */
    LLVMValueRef i = LLVMGetFirstInstruction(b);
    while (i && LLVMIsAPHINode(i)) i = LLVMGetNextInstruction(i);
    if (!i || !LLVMIsABranchInst(i) || LLVMIsConditional(i)) break;
    b = LLVMGetSuccessor(i, 0);
  }
  for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i))
    if (LLVMIsACallInst(i) && LLVMGetCalledValue(i) == c->rt_trap) {
      LLVMValueRef k = LLVMGetOperand(i, 1);
      return LLVMIsAConstantInt(k) ? (int)LLVMConstIntGetZExtValue(k) : -1;
    }
  return -1;
}

static bool inside(fn_ctx *c, LLVMValueRef v) {
  if (!LLVMIsAInstruction(v)) return false;
  return c->in[bidx(c, LLVMGetInstructionParent(v))];
}

static bool nope(int line) {
  if (getenv("QJ_HOIST_DEBUG")) fprintf(stderr, "hoist: not versioned (hoist.c:%d)\n", line);
  return false;
}

/* ---- affine forms: v at iteration k == base + k * stride (mod 2^32), base an i64 built in the
** preheader; strides bounded so that nothing below overflows 64 bits ------------------------ */

typedef struct aff {
  LLVMValueRef base;
  int64_t stride;
  int64_t scale; /* product of the constant factors applied so far */
} aff;

static LLVMValueRef K(fn_ctx *c, int64_t k) { return LLVMConstInt(c->L->i64, (uint64_t)k, 1); }

static bool affine(fn_ctx *c, LLVMValueRef v, aff *a) {
  qj__lower *L = c->L;
  LLVMTypeRef ty = LLVMTypeOf(v);
  if ((ty != L->i32 && ty != L->i64) || ++c->nested > 8) return false;
  bool ok = false;
  a->scale = 1;
  if (LLVMIsAConstantInt(v)) {
    a->base = K(c, LLVMConstIntGetSExtValue(v)), a->stride = 0, ok = true;
  } else if (!inside(c, v)) {
    a->base = ty == L->i64 ? v : LLVMBuildZExt(c->pb, v, L->i64, ""), a->stride = 0, ok = true;
  } else if (LLVMIsATruncInst(v) && ty == L->i32) { /* mod 2^32 of an i64 form */
    ok = affine(c, LLVMGetOperand(v, 0), a);
  } else if (LLVMIsAPHINode(v)) {
    if (bidx(c, LLVMGetInstructionParent(v)) != c->head || LLVMCountIncoming(v) != 2) goto out;
    LLVMValueRef init = NULL, next = NULL;
    for (unsigned i = 0; i < 2; i++) {
      uint32_t from = bidx(c, LLVMGetIncomingBlock(v, i));
      if (from == c->pre) init = LLVMGetIncomingValue(v, i);
      else if (from == c->latch) next = LLVMGetIncomingValue(v, i);
    }
    if (!init || !next || !LLVMIsAInstruction(next) || LLVMGetInstructionOpcode(next) != LLVMAdd)
      goto out;
    LLVMValueRef x = LLVMGetOperand(next, 0), y = LLVMGetOperand(next, 1);
    if (y == v) y = x, x = v;
    if (x != v || !LLVMIsAConstantInt(y)) goto out;
    int64_t s = LLVMConstIntGetSExtValue(y);
    if (s == 0 || s > (1 << 16) || s < -(1 << 16)) goto out;
    LLVMValueRef b0 = LLVMIsAConstantInt(init) ? K(c, LLVMConstIntGetSExtValue(init))
                      : ty == L->i64              ? init
                                                  : LLVMBuildZExt(c->pb, init, L->i64, "");
    if (inside(c, init)) goto out;
    a->base = b0, a->stride = s, ok = true;
  } else if (LLVMIsAInstruction(v)) {
    LLVMOpcode op = LLVMGetInstructionOpcode(v);
    aff x, y;
    if (op == LLVMAdd || op == LLVMSub) {
      if (!affine(c, LLVMGetOperand(v, 0), &x) || !affine(c, LLVMGetOperand(v, 1), &y)) goto out;
      a->scale = x.scale > y.scale ? x.scale : y.scale;
      if (op == LLVMAdd)
        a->base = LLVMBuildAdd(c->pb, x.base, y.base, ""), a->stride = x.stride + y.stride;
      else
        a->base = LLVMBuildSub(c->pb, x.base, y.base, ""), a->stride = x.stride - y.stride;
      ok = a->stride <= (1 << 20) && a->stride >= -(1 << 20);
    } else if (op == LLVMMul || op == LLVMShl) {
      LLVMValueRef p = LLVMGetOperand(v, 0), q = LLVMGetOperand(v, 1);
      if (op == LLVMMul && LLVMIsAConstantInt(p)) p = q, q = LLVMGetOperand(v, 0);
      if (!LLVMIsAConstantInt(q) || !affine(c, p, &x)) goto out;
      int64_t f = LLVMConstIntGetSExtValue(q);
      if (op == LLVMShl) f = f >= 0 && f < 17 ? (int64_t)1 << f : 0;
      if (f == 0 || f > (1 << 16) || f < -(1 << 16)) goto out;
      a->scale = x.scale * (f < 0 ? -f : f);
      a->base = LLVMBuildMul(c->pb, x.base, K(c, f), ""), a->stride = x.stride * f;
      ok = a->scale <= (1 << 16) && a->stride <= (1 << 20) && a->stride >= -(1 << 20);
    }
  }
out:
  c->nested--;
  return ok;
}

static LLVMValueRef norm32(fn_ctx *c, LLVMValueRef v, bool sign) {
  LLVMValueRef t = LLVMBuildTrunc(c->pb, v, c->L->i32, "");
  return sign ? LLVMBuildSExt(c->pb, t, c->L->i64, "") : LLVMBuildZExt(c->pb, t, c->L->i64, "");
}

/* the number of back-edges T when the loop continues while `IV pred N` holds; NULL if unknown.
** *valid gets the runtime condition under which T is right. */
static LLVMValueRef trip_count(fn_ctx *c, LLVMValueRef cmp, bool cont_on_true, LLVMValueRef *valid) {
  LLVMBuilderRef b = c->pb;
  if (!LLVMIsAICmpInst(cmp)) return NULL;
  LLVMIntPredicate p = LLVMGetICmpPredicate(cmp);
  if (!cont_on_true) { /* negate */
    static const LLVMIntPredicate neg[] = {
        [LLVMIntEQ] = LLVMIntNE, [LLVMIntNE] = LLVMIntEQ, [LLVMIntUGT] = LLVMIntULE,
        [LLVMIntUGE] = LLVMIntULT, [LLVMIntULT] = LLVMIntUGE, [LLVMIntULE] = LLVMIntUGT,
        [LLVMIntSGT] = LLVMIntSLE, [LLVMIntSGE] = LLVMIntSLT, [LLVMIntSLT] = LLVMIntSGE,
        [LLVMIntSLE] = LLVMIntSGT};
    p = neg[p];
  }
  aff x, y;
  c->nested = 0;
  if (!affine(c, LLVMGetOperand(cmp, 0), &x) || !affine(c, LLVMGetOperand(cmp, 1), &y)) return NULL;
  if (x.stride == 0 && y.stride != 0) { /* IV on the left */
    aff t = x;
    x = y, y = t;
    static const LLVMIntPredicate swp[] = {
        [LLVMIntEQ] = LLVMIntEQ, [LLVMIntNE] = LLVMIntNE, [LLVMIntUGT] = LLVMIntULT,
        [LLVMIntUGE] = LLVMIntULE, [LLVMIntULT] = LLVMIntUGT, [LLVMIntULE] = LLVMIntUGE,
        [LLVMIntSGT] = LLVMIntSLT, [LLVMIntSGE] = LLVMIntSLE, [LLVMIntSLT] = LLVMIntSGT,
        [LLVMIntSLE] = LLVMIntSGE};
    p = swp[p];
  }
  if (x.stride == 0 || y.stride != 0) return NULL;
  bool wide = LLVMTypeOf(LLVMGetOperand(cmp, 0)) == c->L->i64; /* exact 64-bit forms */
  int64_t s = x.stride, as = s < 0 ? -s : s;
  LLVMValueRef zero = K(c, 0), T;
  if (p == LLVMIntNE) { /* continue while x != y: T = ((y - x) mod 2^w) / s, s a power of 2 */
    if (as & (as - 1)) return NULL;
    LLVMValueRef d = s > 0 ? LLVMBuildSub(b, y.base, x.base, "") : LLVMBuildSub(b, x.base, y.base, "");
    if (!wide) d = norm32(c, d, false); /* 64 bits: a "negative" d is over the trip limit */
    *valid = LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildAnd(b, d, K(c, as - 1), ""), zero, "");
    return LLVMBuildUDiv(b, d, K(c, as), "trips");
  }
  bool sign = p == LLVMIntSLT || p == LLVMIntSLE || p == LLVMIntSGT || p == LLVMIntSGE;
  bool up = p == LLVMIntSLT || p == LLVMIntSLE || p == LLVMIntULT || p == LLVMIntULE;
  bool down = p == LLVMIntSGT || p == LLVMIntSGE || p == LLVMIntUGT || p == LLVMIntUGE;
  if ((up && s < 0) || (down && s > 0) || (!up && !down)) return NULL;
  LLVMValueRef x0 = wide ? x.base : norm32(c, x.base, sign);
  LLVMValueRef n = wide ? y.base : norm32(c, y.base, sign);
  LLVMValueRef small = NULL; /* 64 bits: both ends within +-2^40, so nothing below overflows */
  if (wide) {
    int64_t lim = (int64_t)1 << 40;
    LLVMValueRef lo = K(c, sign ? -lim : 0), hi = K(c, lim);
    small = LLVMBuildAnd(b, LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, x0, lo, ""),
                                         LLVMBuildICmp(b, LLVMIntSLE, x0, hi, ""), ""),
                         LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, n, lo, ""),
                                      LLVMBuildICmp(b, LLVMIntSLE, n, hi, ""), ""), "");
  }
  if (p == LLVMIntSLE || p == LLVMIntULE) n = LLVMBuildAdd(b, n, K(c, 1), ""); /* x < n + 1 */
  if (p == LLVMIntSGE || p == LLVMIntUGE) n = LLVMBuildSub(b, n, K(c, 1), ""); /* x > n - 1 */
  /* up: the first k with x0 + k*s >= n; down: the first k with x0 + k*s <= n */
  LLVMValueRef gap = up ? LLVMBuildSub(b, n, x0, "") : LLVMBuildSub(b, x0, n, "");
  LLVMValueRef pos = LLVMBuildICmp(b, LLVMIntSGT, gap, zero, "");
  T = LLVMBuildSelect(b, pos, LLVMBuildUDiv(b, LLVMBuildAdd(b, gap, K(c, as - 1), ""), K(c, as), ""),
                      zero, "trips");
  /* no wrap before the exit: x0 + T*s stays in the 32-bit range */
  LLVMValueRef last = LLVMBuildAdd(b, x0, LLVMBuildMul(b, T, K(c, s), ""), "");
  int64_t lo = sign ? INT32_MIN : 0, hi = sign ? INT32_MAX : UINT32_MAX;
  if (wide) {
    *valid = small;
    return T;
  }
  *valid = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, last, K(c, lo), ""),
                        LLVMBuildICmp(b, LLVMIntSLE, last, K(c, hi), ""), "");
  return T;
}

/* a base that is one zext'd value (or none) plus a constant: in the i64 form its low 32 bits
** rarely differ from the whole (only when the 32-bit address wraps) */
static bool simple_base(LLVMValueRef v) {
  for (int hop = 0; hop < 4 && LLVMIsAInstruction(v); hop++) {
    LLVMOpcode op = LLVMGetInstructionOpcode(v);
    if ((op != LLVMAdd && op != LLVMSub) || !LLVMIsAConstantInt(LLVMGetOperand(v, 1))) break;
    v = LLVMGetOperand(v, 0);
  }
  return LLVMIsAConstantInt(v) || LLVMIsAZExtInst(v);
}

/* a checked address the clone computes as an i64 `base + k * stride` (k the iteration): what
** it proved zext(A) to be, so that the vectoriser sees one linear address, not a 32-bit
** induction variable that might wrap (clang's wasm steps pointers, `p += 16`, not `i*n+j`) */
typedef struct wide_addr {
  LLVMValueRef zx, base;
  int64_t stride;
} wide_addr;

/* a bounds check `X > M` (X = zext(A) + k, M invariant) in B's terminator: the condition that
** it passes for every iteration 0..T, or NULL; *w the address as an i64 form for the clone */
static LLVMValueRef bounds_ok(fn_ctx *c, LLVMValueRef cond, LLVMValueRef T, wide_addr *w) {
  LLVMBuilderRef b = c->pb;
  if (!LLVMIsAICmpInst(cond)) return nope(__LINE__), NULL;
  LLVMIntPredicate p = LLVMGetICmpPredicate(cond);
  LLVMValueRef X = LLVMGetOperand(cond, 0), M = LLVMGetOperand(cond, 1);
  if (p == LLVMIntULT || p == LLVMIntULE) {
    LLVMValueRef t = X;
    X = M, M = t;
    p = p == LLVMIntULT ? LLVMIntUGT : LLVMIntUGE;
  }
  if ((p != LLVMIntUGT && p != LLVMIntUGE) || inside(c, M)) return nope(__LINE__), NULL;
  int64_t k = 0;
  if (LLVMIsAInstruction(X) && LLVMGetInstructionOpcode(X) == LLVMAdd &&
      LLVMIsAConstantInt(LLVMGetOperand(X, 1))) {
    k = LLVMConstIntGetSExtValue(LLVMGetOperand(X, 1));
    X = LLVMGetOperand(X, 0);
  }
  if (k < 0 || k > (1 << 20) || !LLVMIsAZExtInst(X)) return nope(__LINE__), NULL;
  aff a;
  c->nested = 0;
  if (!affine(c, LLVMGetOperand(X, 0), &a)) return nope(__LINE__), NULL;
  LLVMValueRef a0 = norm32(c, a.base, false);
  LLVMValueRef aT = LLVMBuildAdd(b, a0, LLVMBuildMul(b, T, K(c, a.stride), ""), "");
  LLVMValueRef lo = a.stride < 0 ? aT : a0, hi = a.stride < 0 ? a0 : aT;
  LLVMValueRef top = LLVMBuildAdd(b, hi, K(c, k), "");
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, lo, K(c, 0), ""),
                                 LLVMBuildICmp(b, LLVMIntSLE, hi, K(c, UINT32_MAX), ""), "");
  /* zext(A) at iteration k is a0 + k*stride for k in 0..T (no wrap: the range is in [0, 2^32)).
  ** The unnormalised base is used when it is that a0 (checked here): then two addresses off
  ** one pointer keep a constant distance the vectoriser can see */
  w->zx = X, w->stride = a.stride, w->base = a0;
  if (simple_base(a.base)) {
    ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntULE, a.base, K(c, UINT32_MAX), ""), "");
    w->base = a.base;
  }
  return LLVMBuildAnd(b, ok, LLVMBuildICmp(b, p == LLVMIntUGT ? LLVMIntULE : LLVMIntULT, top, M, ""),
                      "inb");
}

/* erase BB's instructions that nothing uses (no effects but an atomic load's), to a fixpoint */
static void sweep(LLVMBasicBlockRef bb) {
  for (bool again = true; again;) {
    again = false;
    for (LLVMValueRef i = LLVMGetFirstInstruction(bb), nx; i; i = nx) {
      nx = LLVMGetNextInstruction(i);
      if (LLVMGetFirstUse(i) || LLVMIsAPHINode(i) || LLVMIsACallInst(i) || LLVMIsAStoreInst(i) ||
          LLVMIsATerminatorInst(i) || (LLVMIsALoadInst(i) && !LLVMGetOrdering(i)))
        continue;
      LLVMInstructionEraseFromParent(i);
      again = true;
    }
  }
}

/* ---- one loop -------------------------------------------------------------------------------- */


static bool version_loop(fn_ctx *c, uint32_t latch, uint32_t head, LLVMBasicBlockRef budget_bb) {
  qj__lower *L = c->L;
  LLVMBasicBlockRef H = c->bbs[head], B = c->bbs[latch];
  memset(c->in, 0, c->nb * sizeof *c->in);
  /* the loop: what reaches the latch backwards without passing the header */
  uint32_t *work = malloc(c->nb * sizeof *work), nw = 0, nloop = 0;
  if (!work) return nope(__LINE__);
  c->in[head] = true, nloop = 1;
  if (!c->in[latch]) c->in[latch] = true, work[nw++] = latch, nloop++;
  while (nw) {
    uint32_t x = work[--nw];
    for (uint32_t e = c->pred_off[x]; e < c->pred_off[x + 1]; e++) {
      uint32_t p = c->preds[e];
      if (!c->in[p]) c->in[p] = true, work[nw++] = p, nloop++;
    }
  }
  free(work);
  /* the header: preds = one preheader (unconditional branch) + the latch */
  uint32_t pre = UINT32_MAX;
  for (uint32_t e = c->pred_off[head]; e < c->pred_off[head + 1]; e++) {
    uint32_t p = c->preds[e];
    if (p == latch) continue;
    if (c->in[p] || pre != UINT32_MAX) return nope(__LINE__);
    pre = p;
  }
  if (pre == UINT32_MAX) return nope(__LINE__);
  LLVMValueRef pt = LLVMGetBasicBlockTerminator(c->bbs[pre]);
  if (!pt || !LLVMIsABranchInst(pt) || LLVMIsConditional(pt)) return nope(__LINE__);
  uint32_t nlatch = 0;
  for (uint32_t e = c->pred_off[head]; e < c->pred_off[head + 1]; e++) nlatch += c->preds[e] == latch;
  if (nlatch != 1) return nope(__LINE__);
  /* a leaf: no calls but intrinsics, no other budget check */
  for (uint32_t i = 0; i < c->nb; i++) {
    if (!c->in[i]) continue;
    for (LLVMValueRef in = LLVMGetFirstInstruction(c->bbs[i]); in; in = LLVMGetNextInstruction(in)) {
      if (LLVMIsACallInst(in)) {
        LLVMValueRef f = LLVMGetCalledValue(in);
        if (!LLVMIsAFunction(f) || !LLVMGetIntrinsicID(f)) return nope(__LINE__);
      }
      if (LLVMIsAInvokeInst(in) || LLVMIsAAtomicRMWInst(in) || LLVMIsAAtomicCmpXchgInst(in))
        return nope(__LINE__);
      if (LLVMIsALoadInst(in) && LLVMGetOrdering(in) && i != latch) return nope(__LINE__);
    }
    if (i != latch) {
      LLVMValueRef t = LLVMGetBasicBlockTerminator(c->bbs[i]);
      for (unsigned s = 0; t && s < LLVMGetNumSuccessors(t); s++)
        if (calls(LLVMGetSuccessor(t, s), c->rt_budget)) return nope(__LINE__);
    }
  }
  /* the exit test: the latch's one predecessor branches to the latch or out of the loop */
  if (c->pred_off[latch + 1] - c->pred_off[latch] != 1) return nope(__LINE__);
  uint32_t ex = c->preds[c->pred_off[latch]];
  LLVMValueRef et = LLVMGetBasicBlockTerminator(c->bbs[ex]);
  if (!et || !LLVMIsABranchInst(et) || !LLVMIsConditional(et)) return nope(__LINE__);
  LLVMBasicBlockRef s0 = LLVMGetSuccessor(et, 0), s1 = LLVMGetSuccessor(et, 1);
  bool cont_true = s0 == B;
  if (!(cont_true ? !c->in[bidx(c, s1)] : s1 == B && !c->in[bidx(c, s0)])) return nope(__LINE__);
  /* the fuel: the value the budget block writes back, `phi - 1` of a header phi */
  LLVMValueRef fnext = NULL, intr = NULL;
  for (LLVMValueRef in = LLVMGetFirstInstruction(budget_bb); in && !fnext; in = LLVMGetNextInstruction(in))
    if (LLVMIsAStoreInst(in) && LLVMTypeOf(LLVMGetOperand(in, 0)) == L->i64) fnext = LLVMGetOperand(in, 0);
  if (fnext && LLVMIsAPHINode(fnext) && LLVMCountIncoming(fnext) == 1) /* lcssa */
    fnext = LLVMGetIncomingValue(fnext, 0);
  if (!fnext || !LLVMIsAInstruction(fnext) || LLVMGetInstructionOpcode(fnext) != LLVMAdd) return nope(__LINE__);
  LLVMValueRef fphi = LLVMGetOperand(fnext, 0);
  if (!LLVMIsAPHINode(fphi) || LLVMGetInstructionParent(fphi) != H) return nope(__LINE__);
  LLVMValueRef fuel0 = NULL;
  for (unsigned i = 0; i < LLVMCountIncoming(fphi); i++)
    if (LLVMGetIncomingBlock(fphi, i) == c->bbs[pre]) fuel0 = LLVMGetIncomingValue(fphi, i);
  for (LLVMValueRef in = LLVMGetFirstInstruction(B); in; in = LLVMGetNextInstruction(in))
    if (LLVMIsALoadInst(in) && LLVMGetOrdering(in)) intr = in;
  if (!fuel0 || !intr || inside(c, LLVMGetOperand(intr, 0))) return nope(__LINE__);

  /* the checks, in the preheader */
  c->head = head, c->latch = latch, c->pre = pre;
  LLVMPositionBuilderBefore(c->pb, pt);
  LLVMValueRef valid = NULL;
  LLVMValueRef T = trip_count(c, LLVMGetCondition(et), cont_true, &valid);
  if (!T) return nope(__LINE__);
  LLVMBuilderRef b = c->pb;
  LLVMValueRef iv = LLVMBuildLoad2(b, L->i32, LLVMGetOperand(intr, 0), "intr");
  LLVMSetOrdering(iv, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(iv, 4);
  LLVMValueRef go = LLVMBuildAnd(b, valid, LLVMBuildICmp(b, LLVMIntULE, T, K(c, QJ_HOIST_MAX), ""), "");
  go = LLVMBuildAnd(b, go, LLVMBuildICmp(b, LLVMIntSGE, fuel0, T, ""), "");
  go = LLVMBuildAnd(b, go, LLVMBuildICmp(b, LLVMIntEQ, iv, LLVMConstInt(L->i32, 0, 0), ""), "");
  /* the bounds checks it removes: (block index, condition) */
  uint32_t nchk = 0, cap = 16;
  uint32_t *chk = malloc(cap * sizeof *chk);
  wide_addr *wa = malloc(cap * sizeof *wa);
  if (!chk || !wa) return free(chk), free(wa), nope(__LINE__);
  for (uint32_t i = 0; i < c->nb; i++) {
    if (!c->in[i] || i == latch) continue;
    LLVMValueRef t = LLVMGetBasicBlockTerminator(c->bbs[i]);
    if (!t || !LLVMIsABranchInst(t) || !LLVMIsConditional(t)) continue;
    if (trap_kind(c, LLVMGetSuccessor(t, 0)) != QW_BT_OOB_MEMORY) continue;
    if (nchk == cap) {
      uint32_t *n2 = realloc(chk, 2 * cap * sizeof *chk);
      if (n2) chk = n2;
      wide_addr *w2 = n2 ? realloc(wa, 2 * cap * sizeof *wa) : NULL;
      if (!w2) break;
      wa = w2, cap *= 2;
    }
    LLVMValueRef ok = bounds_ok(c, LLVMGetCondition(t), T, &wa[nchk]);
    if (!ok) continue;
    go = LLVMBuildAnd(b, go, ok, "");
    chk[nchk++] = i;
  }

  /* the clone */
  size_t ninsn = 0;
  for (uint32_t i = 0; i < c->nb; i++)
    if (c->in[i])
      for (LLVMValueRef in = LLVMGetFirstInstruction(c->bbs[i]); in; in = LLVMGetNextInstruction(in))
        ninsn++;
  pmap vm;
  if (!pmap_init(&vm, ninsn + 2 * (size_t)nloop)) {
    free(chk), free(wa), pmap_fini(&vm);
    return nope(__LINE__);
  }
  LLVMBuilderRef cb = LLVMCreateBuilderInContext(L->cx);
  for (uint32_t i = 0; i < c->nb; i++)
    if (c->in[i]) {
      LLVMBasicBlockRef nb = LLVMAppendBasicBlockInContext(L->cx, c->fn, "qjf");
      pmap_put(&vm, LLVMBasicBlockAsValue(c->bbs[i]), LLVMBasicBlockAsValue(nb));
      pmap_put(&vm, LLVMBasicBlockAsValue(nb), LLVMBasicBlockAsValue(nb));
    }
  for (uint32_t i = 0; i < c->nb; i++) {
    if (!c->in[i]) continue;
    LLVMBasicBlockRef nb = LLVMValueAsBasicBlock(pmap_get(&vm, LLVMBasicBlockAsValue(c->bbs[i])));
    LLVMPositionBuilderAtEnd(cb, nb);
    for (LLVMValueRef in = LLVMGetFirstInstruction(c->bbs[i]); in; in = LLVMGetNextInstruction(in)) {
      LLVMValueRef n;
      if (LLVMIsAPHINode(in)) {
        n = LLVMBuildPhi(cb, LLVMTypeOf(in), "");
      } else {
        n = LLVMInstructionClone(in);
        LLVMInsertIntoBuilder(cb, n);
      }
      pmap_put(&vm, in, n);
    }
  }
  for (uint32_t i = 0; i < c->nb; i++) {
    if (!c->in[i]) continue;
    for (LLVMValueRef in = LLVMGetFirstInstruction(c->bbs[i]); in; in = LLVMGetNextInstruction(in)) {
      LLVMValueRef n = pmap_get(&vm, in);
      if (LLVMIsAPHINode(in)) {
        for (unsigned k = 0; k < LLVMCountIncoming(in); k++) {
          LLVMValueRef v = LLVMGetIncomingValue(in, k), mv = pmap_get(&vm, v);
          LLVMBasicBlockRef from = LLVMGetIncomingBlock(in, k);
          LLVMValueRef mb = pmap_get(&vm, LLVMBasicBlockAsValue(from));
          LLVMBasicBlockRef nf = mb ? LLVMValueAsBasicBlock(mb) : from;
          LLVMAddIncoming(n, mv ? &mv : &v, &nf, 1);
        }
        continue;
      }
      for (int k = 0, no = LLVMGetNumOperands(n); k < no; k++) {
        LLVMValueRef o = LLVMGetOperand(n, (unsigned)k), mo = o ? pmap_get(&vm, o) : NULL;
        if (mo) LLVMSetOperand(n, (unsigned)k, mo);
      }
    }
  }
  LLVMBasicBlockRef Hc = LLVMValueAsBasicBlock(pmap_get(&vm, LLVMBasicBlockAsValue(H)));
  /* the clone's proven addresses as i64 forms in its iteration count k (0 .. T), before the checks
  ** that also use them go */
  unsigned nwide = 0;
  {
    LLVMBasicBlockRef Bc = LLVMValueAsBasicBlock(pmap_get(&vm, LLVMBasicBlockAsValue(B)));
    LLVMPositionBuilderBefore(cb, LLVMGetFirstInstruction(Hc));
    LLVMValueRef k = LLVMBuildPhi(cb, L->i64, "qjk");
    LLVMPositionBuilderBefore(cb, LLVMGetBasicBlockTerminator(Bc));
    LLVMValueRef k1 = LLVMBuildNUWAdd(cb, k, K(c, 1), "");
    LLVMValueRef zero = K(c, 0);
    LLVMBasicBlockRef from = c->bbs[pre];
    LLVMAddIncoming(k, &zero, &from, 1);
    LLVMAddIncoming(k, &k1, &Bc, 1);
    for (uint32_t j = 0; j < nchk; j++) {
      LLVMValueRef zc = inside(c, wa[j].zx) ? pmap_get(&vm, wa[j].zx) : NULL;
      bool dup = false; /* two checks of one address: rewritten at the first */
      for (uint32_t i = 0; i < j; i++) dup = dup || wa[i].zx == wa[j].zx;
      if (!zc || dup) continue;
      LLVMPositionBuilderBefore(cb, zc); /* |k * stride| <= 2^44, base < 2^32: no i64 overflow */
      LLVMValueRef w = LLVMBuildNSWAdd(cb, wa[j].base, LLVMBuildNSWMul(cb, k, K(c, wa[j].stride), ""), "qjw");
      LLVMReplaceAllUsesWith(zc, w);
      LLVMInstructionEraseFromParent(zc);
      pmap_put(&vm, wa[j].zx, w); /* for the exits' phis below */
      nwide++;
    }
  }
  /* the clone's checks go: the budget branch and the bounds checks proven above */
  {
    LLVMBasicBlockRef Bc = LLVMValueAsBasicBlock(pmap_get(&vm, LLVMBasicBlockAsValue(B)));
    LLVMValueRef t = LLVMGetBasicBlockTerminator(Bc), cond = LLVMGetCondition(t);
    LLVMInstructionEraseFromParent(t);
    LLVMPositionBuilderAtEnd(cb, Bc);
    LLVMBuildBr(cb, Hc);
    (void)cond;
    sweep(Bc);
  }
  for (uint32_t j = 0; j < nchk; j++) {
    LLVMBasicBlockRef bc = LLVMValueAsBasicBlock(pmap_get(&vm, LLVMBasicBlockAsValue(c->bbs[chk[j]])));
    LLVMValueRef t = LLVMGetBasicBlockTerminator(bc), cond = LLVMGetCondition(t);
    LLVMBasicBlockRef ok = LLVMGetSuccessor(t, 1);
    LLVMInstructionEraseFromParent(t);
    LLVMPositionBuilderAtEnd(cb, bc);
    LLVMBuildBr(cb, ok);
    (void)cond;
    sweep(bc);
  }
  /* edges out of the clone: the phis there get the clone's values */
  for (uint32_t i = 0; i < c->nb; i++) {
    if (!c->in[i]) continue;
    LLVMBasicBlockRef bc = LLVMValueAsBasicBlock(pmap_get(&vm, LLVMBasicBlockAsValue(c->bbs[i])));
    LLVMValueRef t = LLVMGetBasicBlockTerminator(bc);
    unsigned ns = t ? LLVMGetNumSuccessors(t) : 0;
    for (unsigned s = 0; s < ns; s++) {
      LLVMBasicBlockRef S = LLVMGetSuccessor(t, s);
      if (pmap_get(&vm, LLVMBasicBlockAsValue(S))) continue; /* a clone block */
      bool dup = false; /* a block with two edges to S is handled at its first */
      for (unsigned s2 = 0; s2 < s; s2++) dup = dup || LLVMGetSuccessor(t, s2) == S;
      if (dup) continue;
      for (LLVMValueRef ph = LLVMGetFirstInstruction(S); ph && LLVMIsAPHINode(ph);
           ph = LLVMGetNextInstruction(ph)) {
        unsigned nin = LLVMCountIncoming(ph);
        for (unsigned k = 0; k < nin; k++)
          if (LLVMGetIncomingBlock(ph, k) == c->bbs[i]) {
            LLVMValueRef v = LLVMGetIncomingValue(ph, k), mv = pmap_get(&vm, v);
            LLVMAddIncoming(ph, mv ? &mv : &v, &bc, 1);
          }
      }
    }
  }
  /* the preheader chooses */
  LLVMInstructionEraseFromParent(pt);
  LLVMPositionBuilderAtEnd(cb, c->bbs[pre]);
  LLVMBuildCondBr(cb, go, Hc, H);
  LLVMSetValueName2(LLVMBasicBlockAsValue(H), "qjv", 3); /* versioned: not looked at again */
  if (getenv("QJ_HOIST_DEBUG"))
    fprintf(stderr, "hoist: versioned a loop of %u blocks, %u bounds checks hoisted, %u addresses widened\n",
            nloop, nchk, nwide);
  free(chk), free(wa);
  LLVMDisposeBuilder(cb);
  pmap_fini(&vm);
  return true;
}

/* ---- per function ---------------------------------------------------------------------------- */

static bool build_cfg(fn_ctx *c) {
  c->nb = LLVMCountBasicBlocks(c->fn);
  c->bbs = malloc((c->nb + 1) * sizeof *c->bbs);
  c->pred_off = calloc(c->nb + 2, sizeof *c->pred_off);
  c->in = calloc(c->nb + 1, sizeof *c->in);
  if (!c->bbs || !c->pred_off || !c->in || !pmap_init(&c->idx, c->nb)) return false;
  uint32_t i = 0, ne = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(c->fn); b; b = LLVMGetNextBasicBlock(b), i++) {
    c->bbs[i] = b;
    pmap_put(&c->idx, b, (void *)(uintptr_t)(i + 1));
  }
  for (i = 0; i < c->nb; i++) {
    LLVMValueRef t = LLVMGetBasicBlockTerminator(c->bbs[i]);
    for (unsigned s = 0, ns = t ? LLVMGetNumSuccessors(t) : 0; s < ns; s++)
      c->pred_off[bidx(c, LLVMGetSuccessor(t, s)) + 1]++, ne++;
  }
  for (i = 0; i < c->nb; i++) c->pred_off[i + 1] += c->pred_off[i];
  c->preds = malloc((ne + 1) * sizeof *c->preds);
  uint32_t *fill = calloc(c->nb + 1, sizeof *fill);
  if (!c->preds || !fill) return free(fill), false;
  for (i = 0; i < c->nb; i++) {
    LLVMValueRef t = LLVMGetBasicBlockTerminator(c->bbs[i]);
    for (unsigned s = 0, ns = t ? LLVMGetNumSuccessors(t) : 0; s < ns; s++) {
      uint32_t d = bidx(c, LLVMGetSuccessor(t, s));
      c->preds[c->pred_off[d] + fill[d]++] = i;
    }
  }
  free(fill);
  return true;
}

static void free_cfg(fn_ctx *c) {
  free(c->bbs), free(c->pred_off), free(c->preds), free(c->in);
  pmap_fini(&c->idx);
  c->bbs = NULL, c->pred_off = NULL, c->preds = NULL, c->in = NULL;
  c->idx.k = c->idx.v = NULL;
}

static unsigned hoist_fn(qj__lower *L, LLVMValueRef fn, LLVMValueRef rt_trap, LLVMValueRef rt_budget) {
  unsigned done = 0;
  for (int round = 0; round < 64; round++) { /* one loop per round: the CFG changes */
    fn_ctx c = {.L = L, .fn = fn, .rt_trap = rt_trap, .rt_budget = rt_budget};
    if (!build_cfg(&c)) {
      free_cfg(&c);
      return done;
    }
    c.pb = LLVMCreateBuilderInContext(L->cx);
    bool changed = false;
    for (uint32_t i = 0; i < c.nb && !changed; i++) {
      LLVMValueRef t = LLVMGetBasicBlockTerminator(c.bbs[i]);
      if (!t || !LLVMIsABranchInst(t) || !LLVMIsConditional(t)) continue;
      LLVMBasicBlockRef bud = LLVMGetSuccessor(t, 0), head = LLVMGetSuccessor(t, 1);
      size_t nl;
      const char *hn = LLVMGetValueName2(LLVMBasicBlockAsValue(head), &nl);
      if (!calls(bud, rt_budget) || (nl >= 3 && (!strncmp(hn, "qjf", 3) || !strncmp(hn, "qjv", 3))))
        continue; /* not a back-edge check, or a clone, or versioned already */
      changed = version_loop(&c, i, bidx(&c, head), bud);
      if (changed) done++;
    }
    LLVMDisposeBuilder(c.pb);
    free_cfg(&c);
    if (!changed) break;
  }
  return done;
}

unsigned qj__hoist_module(LLVMModuleRef mod, LLVMContextRef cx) {
  qj__lower L;
  memset(&L, 0, sizeof L);
  L.cx = cx;
  L.i32 = LLVMInt32TypeInContext(cx), L.i64 = LLVMInt64TypeInContext(cx);
  LLVMValueRef rt_trap = LLVMGetNamedFunction(mod, "qw_rt_trap");
  LLVMValueRef rt_budget = LLVMGetNamedFunction(mod, "qw_rt_budget");
  if (!rt_trap || !rt_budget) return 0;
  unsigned n = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
    if (LLVMCountBasicBlocks(f)) n += hoist_fn(&L, f, rt_trap, rt_budget);
  return n;
}
