/* compile.c: validated body -> threaded code for interp.c (layout: iops.def and
** docs/interpreter.md). Every operand becomes a frame-slot index here; interp.c never sees the
** wasm value stack. Locals are slots 0..s0-1; operand-stack depth d lives in "home" slot s0+d.
** A virtual stack entry says where its value is now: in its home slot, still in a local
** (local.get emits nothing) or still a constant (folded into _I forms or moved when needed).
** Invariants: (1) at every label (block/loop/if boundaries, branch targets) each live entry
** is in its home slot or is a constant, so all paths into a label agree; (2) an entry that
** names local x is moved to its home slot before anything writes x; (3) on every path a slot
** is written before it is read, as validate.c's type stack has already proven. */
#include <string.h>

#include "internal.h"

enum {
#define IOP(n) OP_##n,
#include "iops.def"
  OP__COUNT
};

enum { K_HOME, K_LOCAL, K_CONST };
typedef struct ent {
  uint8_t kind;
  uint32_t slot; /* K_HOME: its home slot; K_LOCAL: the local's slot */
  uint64_t k;    /* K_CONST: the value's bits (i32/f32 zero-extended) */
} ent;

enum { C_BLOCK, C_LOOP, C_IF, C_FUNC, C_INLINE }; /* C_INLINE: the body of an inlined call */
typedef struct ctl {
  uint8_t kind;
  bool dead;          /* the rest of the current arm is unreachable: emit nothing */
  bool skip;          /* the construct itself is unreachable (entered in dead code) */
  uint32_t height;    /* stack height at entry, params excluded: branch values go to homes here */
  uint32_t nparams, nresults;
  uint32_t loop_pos;  /* C_LOOP: code position of the header */
  int32_t patches;    /* forward branches to bind at `end` (list in C.pt) */
  int32_t else_patch; /* C_IF: the branch to the else arm until bound, else -1 */
} ctl;

typedef struct patch {
  uint32_t at, from; /* code[at] = target - from */
  int32_t next;
} patch;

typedef struct C {
  const qw_module *m;
  const void *const *xlat; /* op -> handler address (computed goto), NULL for switch builds */
  uint32_t s0;         /* params + declared locals */
  uint32_t nresults;
  uint32_t *code;
  uint32_t n, cap;
  uint32_t *pcm; /* pairs */
  uint32_t npc, pccap;
  ent *st;
  uint32_t sp, stcap, maxsp;
  ctl *cs;
  uint32_t csp, cscap;
  patch *pt;
  uint32_t npt, ptcap;
  uint32_t *tmp; /* br_table labels */
  uint32_t tmpcap;
  uint64_t *kv; /* constant slots' values: slot kbase + i holds kv[i] */
  uint32_t nk, kcap, kbase;
  bool kfrozen; /* second pass: the constant table is fixed */
  bool oom;
  uint32_t wofs; /* wasm offset of the instruction being translated */
  uint32_t fidx; /* its function (differs from the compiled one inside an inlined call) */
  const uint32_t *lmap; /* inside an inlined call: the slot of each of its locals; else NULL
                           (local x is slot x) */
  uint32_t lmap_buf[32];
  uint32_t inl;  /* ctl index of the inlined call's label (its `return`), or UINT32_MAX */
  /* peephole state: the last emitted instruction, and the one before it */
  uint32_t last_start, last_end, last_op, last_dst_depth;
  bool last_has_dst;
  uint32_t prev_start, prev_end, prev_op;
  bool prev_valid;
  uint32_t barrier; /* a label was bound at this code position */
} C;

static bool grow(C *c, void **p, uint32_t *cap, uint64_t need, size_t elsz) {
  if (need <= *cap) return true;
  uint64_t nc = *cap ? *cap : 16;
  while (nc < need) nc *= 2;
  if (nc > UINT32_MAX / 2) {
    c->oom = true;
    return false;
  }
  void *q = qb_realloc(*p, (size_t)*cap * elsz, (size_t)nc * elsz);
  if (!q) {
    c->oom = true;
    return false;
  }
  *p = q;
  *cap = (uint32_t)nc;
  return true;
}
#define GROW(c, arr, cap, need) grow((c), (void **)&(arr), &(cap), (need), sizeof(*(arr)))

/* ---- emission ---- */

static uint32_t emitv(C *c, uint32_t op, uint32_t nargs, const uint32_t *args) {
  if (!GROW(c, c->code, c->cap, (uint64_t)c->n + QW_OPW + nargs) ||
      !GROW(c, c->pcm, c->pccap, (uint64_t)c->npc * 3 + 3))
    return c->n;
  uint32_t at = c->n;
  if (!c->npc || c->pcm[3 * c->npc - 2] != c->wofs || c->pcm[3 * c->npc - 1] != c->fidx) {
    c->pcm[3 * c->npc] = at;
    c->pcm[3 * c->npc + 1] = c->wofs;
    c->pcm[3 * c->npc + 2] = c->fidx;
    c->npc++;
  }
#ifdef QW_DISPATCH_SWITCH
  c->code[c->n++] = op;
#else
  memcpy(&c->code[c->n], &c->xlat[op], sizeof(void *)); /* the handler's address */
  c->n += QW_OPW;
#endif
  for (uint32_t i = 0; i < nargs; i++) c->code[c->n++] = args[i];
  c->prev_start = c->last_start, c->prev_end = c->last_end, c->prev_op = c->last_op;
  c->prev_valid = true;
  c->last_start = at;
  c->last_end = c->n;
  c->last_op = op;
  c->last_has_dst = false;
  return at;
}
#define E(c, op, ...) \
  emitv((c), (op), sizeof((uint32_t[]){__VA_ARGS__}) / 4, (const uint32_t[]){__VA_ARGS__})
#define E0(c, op) emitv((c), (op), 0, NULL)

/* The last instruction wrote home(DEPTH) through its unit 1 (local.set may retarget it). */
static void dst_is(C *c, uint32_t depth) {
  c->last_has_dst = true;
  c->last_dst_depth = depth;
}

static uint32_t home(const C *c, uint32_t depth) { return c->s0 + depth; }

/* Is the last instruction OP (any op when OP == OP__COUNT), with its result in home(DEPTH) and
** nothing (no label) after it? Then a consumer may fold it into itself. */
static bool last_is(const C *c, uint32_t op, uint32_t depth) {
  return c->last_has_dst && c->last_dst_depth == depth && c->last_end == c->n &&
         c->barrier != c->n && !c->oom && (op == OP__COUNT || c->last_op == op);
}

/* Is the last instruction OP, with no label after it (its result's depth not checked)? */
static bool last_is_op(const C *c, uint32_t op) {
  return c->last_end == c->n && c->barrier != c->n && !c->oom && c->last_op == op;
}

/* Drop the last instruction (its consumer has folded it in). */
static void drop_last(C *c) {
  c->n = c->last_start;
  while (c->npc && c->pcm[3 * c->npc - 3] >= c->n) c->npc--;
  c->last_has_dst = false;
  if (c->prev_valid && c->prev_end == c->n) { /* the one before becomes the last again */
    c->last_start = c->prev_start, c->last_end = c->prev_end, c->last_op = c->prev_op;
  } else {
    c->last_end = UINT32_MAX;
  }
  c->prev_valid = false;
}

/* Bind a label at the current position: nothing may be fused across it. */
static void label_here(C *c) {
  c->barrier = c->n;
  c->last_has_dst = false;
}

/* ---- the virtual stack ---- */

static void push(C *c, uint8_t kind, uint32_t slot, uint64_t k) {
  if (!GROW(c, c->st, c->stcap, (uint64_t)c->sp + 1)) return;
  uint32_t h = home(c, c->sp);
  c->st[c->sp] = (ent){kind, kind == K_HOME ? h : slot, k};
  c->sp++;
  if (c->sp > c->maxsp) c->maxsp = c->sp;
}
static void push_home(C *c) { push(c, K_HOME, 0, 0); }
static void push_homes(C *c, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) push_home(c);
}

/* About to overwrite slot DST: a constant move into it just before (an inlined call's
** zeroed local, set at once) is dead. */
static void overwrite(C *c, uint32_t dst) {
  if (c->last_end == c->n && c->barrier != c->n && !c->oom &&
      (c->last_op == OP_MOVK32 || c->last_op == OP_MOVK64) &&
      c->code[c->last_start + QW_OPX + 1] == dst)
    drop_last(c);
}

static void movk(C *c, uint32_t dst, uint64_t k) {
  overwrite(c, dst);
  if (k >> 32) E(c, OP_MOVK64, dst, (uint32_t)k, (uint32_t)(k >> 32));
  else E(c, OP_MOVK32, dst, (uint32_t)k);
}

/* Put entry I in its home slot. */
static void mat(C *c, uint32_t i) {
  ent *e = &c->st[i];
  uint32_t h = home(c, i);
  if (e->kind == K_HOME) return;
  if (e->kind == K_CONST) movk(c, h, e->k);
  else E(c, OP_MOV, h, e->slot);
  e->kind = K_HOME;
  e->slot = h;
}
/* The constant slot holding K (copied into the frame at entry), or UINT32_MAX. */
#define MAX_KSLOTS 256
static uint32_t kslot(C *c, uint64_t k) {
  for (uint32_t i = 0; i < c->nk; i++)
    if (c->kv[i] == k) return c->kbase + i;
  if (c->kfrozen || c->nk >= MAX_KSLOTS || !GROW(c, c->kv, c->kcap, (uint64_t)c->nk + 1))
    return UINT32_MAX;
  c->kv[c->nk] = k;
  return c->kbase + c->nk++;
}

/* Give entry I a slot: a constant gets a constant slot (or goes home); locals stay. */
static void slot_for(C *c, uint32_t i) {
  ent *e = &c->st[i];
  if (e->kind != K_CONST) return;
  uint32_t ks = kslot(c, e->k);
  if (ks != UINT32_MAX) e->slot = ks;
  else mat(c, i);
}
static void need_slots(C *c, uint32_t n) {
  for (uint32_t i = c->sp - n; i < c->sp; i++) slot_for(c, i);
}
static uint32_t slot_at(C *c, uint32_t fromtop) { return c->st[c->sp - fromtop].slot; }

/* ---- labels and branches ---- */

static void add_patch(C *c, ctl *t, uint32_t at, uint32_t from) {
  if (!GROW(c, c->pt, c->ptcap, (uint64_t)c->npt + 1)) return;
  c->pt[c->npt] = (patch){at, from, t->patches};
  t->patches = (int32_t)c->npt++;
}

/* Point the displacement at code[AT] (of the instruction at FROM) to label T. */
static void link_to(C *c, ctl *t, uint32_t at, uint32_t from) {
  if (c->oom || at >= c->n) return;
  if (t->kind == C_LOOP) c->code[at] = (uint32_t)((int32_t)t->loop_pos - (int32_t)from);
  else add_patch(c, t, at, from);
}

static void bind_patches(C *c, int32_t p) {
  for (; p >= 0; p = c->pt[p].next)
    if (!c->oom && c->pt[p].at < c->n) c->code[c->pt[p].at] = c->n - c->pt[p].from;
}

static uint32_t arity(const ctl *t) { return t->kind == C_LOOP ? t->nparams : t->nresults; }

static bool in_place(C *c, uint32_t n, uint32_t height) {
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    if (e->kind != K_HOME || e->slot != home(c, height + i)) return false;
  }
  return true;
}

/* Copy the top N values to the homes of HEIGHT.. (a branch to a block/loop label). Stack
** sources sit at the same or higher slots, so copying upwards is safe; a source still in a
** local that an earlier copy overwrites (an inlined call's locals lie where its results go)
** is first saved in its own home slot. The virtual stack is not changed. */
static void moves(C *c, uint32_t n, uint32_t height) {
  uint32_t d0 = home(c, height);
  if (n == 1 && c->st[c->sp - 1].kind == K_HOME && c->st[c->sp - 1].slot != d0 &&
      last_is(c, OP__COUNT, c->sp - 1)) { /* its producer writes the target directly */
    c->code[c->last_start + QW_OPX + 1] = d0;
    c->last_has_dst = false;
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    if (e->kind == K_LOCAL && e->slot >= d0 && e->slot < d0 + i)
      E(c, OP_MOV, home(c, c->sp - n + i), e->slot);
  }
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    uint32_t d = d0 + i, src = e->slot;
    if (e->kind == K_LOCAL && e->slot >= d0 && e->slot < d0 + i) src = home(c, c->sp - n + i);
    if (e->kind == K_CONST) movk(c, d, e->k);
    else if (src != d) E(c, OP_MOV, d, src);
  }
}

/* Copy the function's results to slots 0..n-1 and return. A result still in local l < i
** would be overwritten before it is read: it goes through its home slot first. The virtual
** stack is not changed (this may run on one path only, e.g. br_if). */
static void ret(C *c) {
  uint32_t n = c->nresults;
  if (n == 1) {
    const ent *e = &c->st[c->sp - 1];
    uint32_t src = e->kind == K_CONST ? kslot(c, e->k) : e->slot;
    if (src == UINT32_MAX) movk(c, 0, e->k);
    if (src == UINT32_MAX || src == 0) E0(c, OP_RET);
    else E(c, OP_RET1, src);
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    if (e->kind == K_LOCAL && e->slot < i) E(c, OP_MOV, home(c, c->sp - n + i), e->slot);
  }
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    uint32_t src = e->slot;
    if (e->kind == K_LOCAL && e->slot < i) src = home(c, c->sp - n + i);
    if (e->kind == K_CONST) movk(c, i, e->k);
    else if (src != i) E(c, OP_MOV, i, src);
  }
  E0(c, OP_RET);
}

/* Unconditional branch to the label REL levels out (moves included). */
static void br_to(C *c, uint32_t rel) {
  ctl *t = &c->cs[c->csp - 1 - rel];
  if (t->kind == C_FUNC) {
    ret(c);
    return;
  }
  moves(c, arity(t), t->height);
  uint32_t at = E(c, OP_BR, 0);
  link_to(c, &c->cs[c->csp - 1 - rel], at + QW_OPX + 1, at);
}

/* Compare ops that fuse with a following conditional branch. */
static const uint8_t neg10[10] = {1, 0, 8, 9, 6, 7, 4, 5, 2, 3}; /* eq ne lt_s lt_u gt_s ... */
static const uint8_t rev10[10] = {0, 1, 4, 5, 2, 3, 8, 9, 6, 7}; /* a OP b == b REV(OP) a */

/* Emit conditional branch BR (operands X, Y as its layout has them, displacement last),
** folding in an i32 add just before it when the branch reads the add's result (loop
** counters: i += k; br_if (i < n)). Returns the position; *AT gets the displacement's unit. */
static uint32_t emit_cbr(C *c, uint32_t br, uint32_t x, uint32_t y, uint32_t nargs, uint32_t *at) {
  uint32_t lo = c->last_op, at0;
  if (!c->oom && c->last_end == c->n && c->barrier != c->n &&
      (lo == OP_I32_ADD_I || lo == OP_I32_ADD)) {
    uint32_t d = c->code[c->last_start + QW_OPX + 1], a = c->code[c->last_start + QW_OPX + 2];
    uint32_t k = c->code[c->last_start + QW_OPX + 3];
    int fused = -1;
    uint32_t other = 0;
    if (br >= OP_BR_I32_EQ && br <= OP_BR_I32_GE_U) {
      uint32_t i = br - OP_BR_I32_EQ;
      if (x == d) other = y;
      else if (y == d) other = x, i = rev10[i];
      else i = 10;
      if (i < 10) fused = (lo == OP_I32_ADD_I ? OP_ADDI_BR_EQ : OP_ADD_BR_EQ) + (int)i;
    } else if (br >= OP_BR_I32_EQ_I && br <= OP_BR_I32_GE_U_I && x == d && lo == OP_I32_ADD_I) {
      fused = OP_ADDI_BR_EQ_I + (int)(br - OP_BR_I32_EQ_I), other = y;
    } else if (br == OP_BR_NZ && x == d && lo == OP_I32_ADD_I) {
      drop_last(c);
      at0 = E(c, OP_ADDI_BR_NZ, d, a, k, 0);
      *at = at0 + QW_OPX + 4;
      return at0;
    }
    if (fused >= 0) {
      drop_last(c);
      at0 = E(c, (uint32_t)fused, d, a, k, other, 0);
      *at = at0 + QW_OPX + 5;
      return at0;
    }
  }
  at0 = nargs == 2 ? E(c, br, x, y, 0) : E(c, br, x, 0);
  *at = at0 + QW_OPX + 1 + nargs;
  return at0;
}

/* Pop the condition and emit a branch taken when it is non-zero (ON_TRUE) or zero. Returns
** the position of the instruction; *AT gets the unit of its displacement. */
static uint32_t cond_br(C *c, bool on_true, uint32_t *at) {
  const ent *e = &c->st[c->sp - 1];
  uint32_t o = c->last_op;
  if (e->kind == K_HOME && c->last_has_dst && c->last_dst_depth == c->sp - 1 &&
      c->last_end == c->n && c->barrier != c->n && !c->oom) {
    uint32_t a = c->code[c->last_start + QW_OPX + 2], b = 0;
    int fused = -1, nargs = 2;
    if (o >= OP_I32_EQ && o <= OP_I32_GE_U) {
      uint32_t i = o - OP_I32_EQ;
      fused = OP_BR_I32_EQ + (on_true ? i : neg10[i]);
    } else if (o >= OP_I32_EQ_I && o <= OP_I32_GE_U_I) {
      uint32_t i = o - OP_I32_EQ_I;
      fused = OP_BR_I32_EQ_I + (on_true ? i : neg10[i]);
    } else if (o >= OP_I64_EQ && o <= OP_I64_GE_U) {
      uint32_t i = o - OP_I64_EQ;
      fused = OP_BR_I64_EQ + (on_true ? i : neg10[i]);
    } else if (o == OP_I32_EQZ) {
      fused = on_true ? OP_BR_Z : OP_BR_NZ, nargs = 1;
    } else if (o == OP_I64_EQZ) {
      fused = on_true ? OP_BR_I64_EQZ : OP_BR_I64_NEZ, nargs = 1;
    }
    if (fused >= 0) {
      if (nargs == 2) b = c->code[c->last_start + QW_OPX + 3];
      drop_last(c); /* the compare */
      c->sp--;
      return emit_cbr(c, (uint32_t)fused, a, b, (uint32_t)nargs, at);
    }
  }
  need_slots(c, 1);
  uint32_t s = slot_at(c, 1);
  c->sp--;
  return emit_cbr(c, on_true ? OP_BR_NZ : OP_BR_Z, s, 0, 1, at);
}

/* ---- blocks ---- */

static ctl *push_ctl(C *c, uint8_t kind, uint32_t np, uint32_t nr) {
  if (!GROW(c, c->cs, c->cscap, (uint64_t)c->csp + 1)) return NULL;
  ctl *parent = c->csp ? &c->cs[c->csp - 1] : NULL;
  ctl *t = &c->cs[c->csp++];
  *t = (ctl){kind, false, false, c->sp >= np ? c->sp - np : 0, np, nr, 0, -1, -1};
  if (parent && parent->dead) t->dead = t->skip = true;
  return t;
}

/* Entering a block/loop/if (not in dead code): the params go home and no entry may keep
** naming a local (a local.set inside could otherwise move it on one path only). Inside an
** inlined call, the caller's entries (below its frame) stay: it cannot write their locals. */
static void settle(C *c, uint32_t np, uint32_t below) {
  uint32_t from = c->inl != UINT32_MAX ? c->cs[c->inl].height : 0;
  for (uint32_t i = from; i + below < c->sp; i++)
    if (c->st[i].kind == K_LOCAL || (i + below + np >= c->sp && c->st[i].kind == K_CONST))
      mat(c, i);
}

static void blocktype(const qw_module *m, const uint8_t **p, const uint8_t *end, uint32_t *np,
                      uint32_t *nr) {
  int64_t bt = 0;
  qw__leb_s33(p, end, &bt);
  if (bt == -64) *np = 0, *nr = 0;
  else if (bt < 0) *np = 0, *nr = 1;
  else *np = m->types[bt].nparams, *nr = m->types[bt].nresults;
}

/* ---- operators ---- */

static bool fits_i32(uint64_t k) { return (int64_t)k == (int64_t)(int32_t)(uint32_t)k; }

/* Binary op O; OI: its immediate form (0: none); OR: the immediate form with the operands
** swapped (0: none). WIDE: i64 operands (immediates must fit in s32). OM: the form with the
** right operand loaded by LD (folded when the load is the last instruction); COMM: O is
** commutative, so a load on the left folds too. */
static void binop_m(C *c, uint32_t o, uint32_t oi, uint32_t orv, bool wide, uint32_t om,
                    uint32_t ld, bool comm) {
  ent *a = &c->st[c->sp - 2], *b = &c->st[c->sp - 1];
  uint32_t d = c->sp - 2;
  if (o == OP_F64_ADD && (b->kind == K_HOME || a->kind == K_HOME)) {
    need_slots(c, 2);
    int side = -1; /* which operand is a product just computed */
    if (b->kind == K_HOME && (last_is(c, OP_F64_MUL, d + 1) || last_is(c, OP_F64_MUL_M, d + 1)))
      side = 1;
    else if (a->kind == K_HOME && (last_is(c, OP_F64_MUL, d) || last_is(c, OP_F64_MUL_M, d)))
      side = 0;
    if (side >= 0) {
      bool mem = c->last_op == OP_F64_MUL_M;
      uint32_t u[6], cs = c->st[side ? d : d + 1].slot;
      for (uint32_t i = 0; i < (mem ? 4u : 2u); i++) u[2 + i] = c->code[c->last_start + QW_OPX + 2 + i];
      u[0] = home(c, d), u[1] = cs;
      drop_last(c);
      emitv(c, mem ? OP_F64_MULADD_M : OP_F64_MULADD, mem ? 6 : 4, u);
      c->sp -= 2;
      push_home(c);
      dst_is(c, d);
      return;
    }
  }
  if (om && (b->kind == K_HOME || a->kind == K_HOME)) {
    need_slots(c, 2);
    int side = -1;
    uint32_t lda = ld - OP_I32_LOAD + OP_I32_LOAD_A; /* the same load with a folded add */
    if (b->kind == K_HOME && (last_is(c, ld, d + 1) || last_is(c, lda, d + 1))) side = 1;
    else if (comm && a->kind == K_HOME && (last_is(c, ld, d) || last_is(c, lda, d))) side = 0;
    if (side >= 0) {
      bool folded = c->last_op == lda;
      uint32_t addr = c->code[c->last_start + QW_OPX + 2], k = folded ? c->code[c->last_start + QW_OPX + 3] : 0;
      uint32_t off = c->code[c->last_start + QW_OPX + (folded ? 4 : 3)];
      uint32_t other = c->st[side ? d : d + 1].slot;
      drop_last(c);
      E(c, om, home(c, d), other, addr, k, off);
      c->sp -= 2;
      push_home(c);
      dst_is(c, d);
      return;
    }
  }
  if (oi && b->kind == K_CONST && (!wide || fits_i32(b->k))) {
    uint32_t k = (uint32_t)b->k;
    slot_for(c, d);
    E(c, oi, home(c, d), c->st[d].slot, k);
  } else if (orv && a->kind == K_CONST && b->kind != K_CONST && (!wide || fits_i32(a->k))) {
    uint32_t k = (uint32_t)a->k;
    E(c, orv, home(c, d), b->slot, k);
  } else {
    need_slots(c, 2);
    E(c, o, home(c, d), c->st[d].slot, c->st[d + 1].slot);
  }
  c->sp -= 2;
  push_home(c);
  dst_is(c, d);
}

static void binop(C *c, uint32_t o, uint32_t oi, uint32_t orv, bool wide) {
  binop_m(c, o, oi, orv, wide, 0, 0, false);
}

static void unop(C *c, uint32_t o) {
  need_slots(c, 1);
  uint32_t d = c->sp - 1;
  E(c, o, home(c, d), c->st[d].slot);
  c->sp--;
  push_home(c);
  dst_is(c, d);
}

/* An op with N stack operands and no result: [op imm... slots...] */
static void sink(C *c, uint32_t o, uint32_t nimm, uint32_t i0, uint32_t i1, uint32_t n) {
  uint32_t u[8], k = 0;
  need_slots(c, n);
  if (nimm > 0) u[k++] = i0;
  if (nimm > 1) u[k++] = i1;
  for (uint32_t i = 0; i < n; i++) u[k++] = c->st[c->sp - n + i].slot;
  emitv(c, o, k, u);
  c->sp -= n;
}

static void local_set(C *c, uint32_t x, bool tee) {
  for (uint32_t i = 0; i + 1 < c->sp; i++)
    if (c->st[i].kind == K_LOCAL && c->st[i].slot == x) mat(c, i);
  ent *e = &c->st[c->sp - 1];
  if (e->kind == K_HOME && c->last_has_dst && c->last_dst_depth == c->sp - 1 &&
      c->last_end == c->n && c->barrier != c->n && !c->oom) {
    c->code[c->last_start + QW_OPX + 1] = x; /* the producer writes the local directly */
    c->last_has_dst = false;
  } else if (e->kind == K_CONST) {
    movk(c, x, e->k);
  } else if (e->slot != x) {
    overwrite(c, x);
    E(c, OP_MOV, x, e->slot);
  }
  c->sp--;
  if (tee) push(c, K_LOCAL, x, 0);
}

static void load(C *c, uint32_t o, uint32_t off) {
  need_slots(c, 1);
  uint32_t d = c->sp - 1;
  if (c->st[d].kind == K_HOME && last_is(c, OP_I32_ADD_I, d)) { /* fold the address add */
    uint32_t a = c->code[c->last_start + QW_OPX + 2], k = c->code[c->last_start + QW_OPX + 3];
    drop_last(c);
    E(c, o - OP_I32_LOAD + OP_I32_LOAD_A, home(c, d), a, k, off);
  } else {
    E(c, o, home(c, d), c->st[d].slot, off);
  }
  c->sp--;
  push_home(c);
  dst_is(c, d);
}

static void store(C *c, uint32_t o, uint32_t off) {
  need_slots(c, 2);
  uint32_t lo = c->last_op, acc = 0;
  if (c->st[c->sp - 1].kind == K_HOME && last_is(c, OP__COUNT, c->sp - 1)) {
    if (o == OP_I32_STORE) acc = lo == OP_I32_ADD_M ? OP_I32_ADD_ACC : lo == OP_F32_ADD_M ? OP_F32_ADD_ACC : 0;
    if (o == OP_I64_STORE) acc = lo == OP_I64_ADD_M ? OP_I64_ADD_ACC : lo == OP_F64_ADD_M ? OP_F64_ADD_ACC : 0;
  }
  if (acc && c->code[c->last_start + QW_OPX + 3] == slot_at(c, 2) && c->code[c->last_start + QW_OPX + 4] == 0 &&
      c->code[c->last_start + QW_OPX + 5] == off) { /* x = a + mem[p]; mem[p] = x */
    uint32_t a = c->code[c->last_start + QW_OPX + 2];
    drop_last(c);
    if (acc == OP_F64_ADD_ACC && a >= c->s0 && last_is_op(c, OP_F64_MUL_M) &&
        c->code[c->last_start + QW_OPX + 1] == a) { /* a = x * mem[q] just before: fold it */
      const uint32_t *m = &c->code[c->last_start + QW_OPX];
      uint32_t x = m[2], q = m[3], kq = m[4], oq = m[5];
      drop_last(c);
      E(c, OP_F64_MULADD_ACC, slot_at(c, 2), 0, off, x, q, kq, oq);
    } else {
      E(c, acc, slot_at(c, 2), a, 0, off);
    }
  } else if (c->st[c->sp - 2].kind == K_HOME && last_is(c, OP_I32_ADD_I, c->sp - 2)) {
    uint32_t a = c->code[c->last_start + QW_OPX + 2], k = c->code[c->last_start + QW_OPX + 3];
    drop_last(c);
    E(c, o - OP_I32_STORE + OP_I32_STORE_A, a, slot_at(c, 1), k, off);
  } else {
    E(c, o, slot_at(c, 2), slot_at(c, 1), off);
  }
  c->sp -= 2;
}

/* Call with NP args on top (they become the callee's frame) and NR results. */
static void call(C *c, uint32_t o, uint32_t imm0, uint32_t imm1, uint32_t np, uint32_t nr,
                 bool indirect) {
  uint32_t base = c->sp - np - (indirect ? 1 : 0);
  for (uint32_t i = base; i < base + np; i++) mat(c, i);
  if (indirect) {
    need_slots(c, 1);
    E(c, o, imm0, imm1, home(c, base), slot_at(c, 1));
  } else {
    E(c, o, imm0, home(c, base));
  }
  c->sp = base;
  push_homes(c, nr);
}

static void unreachable_rest(C *c) {
  ctl *t = &c->cs[c->csp - 1];
  t->dead = true;
  c->sp = t->height; /* the stack below the block is untouched in dead code */
}

/* ---- the translator ---- */

static qb_code body(C *c, const uint8_t *p, const uint8_t *end, uint32_t stop, qb_err *err);

static qb_code translate(C *c, const qw__func_decl *d, qb_err *err) {
  const qw__functype *ft = &c->m->types[d->type_idx];
  c->nresults = ft->nresults;
  c->lmap = NULL;
  c->inl = UINT32_MAX;
  c->fidx = c->m->nfunc_imports + (uint32_t)(d - c->m->funcs);
  push_ctl(c, C_FUNC, 0, ft->nresults);
  qb_code rc = body(c, d->body, d->body_end, 0, err);
  if (rc) return rc;
  if (c->oom) return qb_fail(err, QB_NOMEM, "compile: out of memory");
  if (c->csp != 0) return QB_NEVER(err);
  return QB_OK;
}

/* ---- inlining small leaf functions ---- */

static void skip_leb(const uint8_t **p, const uint8_t *end) {
  while (*p < end && (*(*p)++ & 0x80)) {
  }
}

/* Is the validated body [P, END) free of calls? (opcodes.def gives each op's immediates)
** *WRITTEN: bit x set when local x < 64 is the target of a local.set/tee. */
static bool leaf_body(const uint8_t *p, const uint8_t *end, uint64_t *written) {
  *written = 0;
  while (p < end) {
    uint32_t op = *p++, x = 0, n;
    int imm;
    if (op == 0xfc) {
      qw__leb_u32(&p, end, &x);
      op = 0xfc00 | x;
    }
    switch (op) {
#define QW_OP(code, ident, name, immk, sig, align) \
  case code:                                      \
    imm = QW_IMM_##immk;                          \
    break;
#include "opcodes.def"
    default: return false;
    }
    if (op == QW_OP_call || op == QW_OP_call_indirect) return false;
    if (op == QW_OP_local_set || op == QW_OP_local_tee) {
      const uint8_t *q = p;
      qw__leb_u32(&q, end, &x);
      if (x < 64) *written |= (uint64_t)1 << x;
    }
    switch (imm) {
    case QW_IMM_NONE: break;
    case QW_IMM_BR_TABLE:
      qw__leb_u32(&p, end, &n);
      for (uint32_t i = 0; i <= n && p < end; i++) skip_leb(&p, end);
      break;
    case QW_IMM_CALL_INDIRECT: case QW_IMM_MEM: case QW_IMM_TABLEINIT: case QW_IMM_TABLECOPY:
      skip_leb(&p, end);
      skip_leb(&p, end);
      break;
    case QW_IMM_MEMIDX: case QW_IMM_REFTYPE: p++; break;
    case QW_IMM_MEMCOPY: p += 2; break;
    case QW_IMM_F32: p += 4; break;
    case QW_IMM_F64: p += 8; break;
    case QW_IMM_SELECT_T:
      qw__leb_u32(&p, end, &n);
      p += n;
      break;
    case QW_IMM_MEMINIT:
      skip_leb(&p, end);
      p++;
      break;
    default: skip_leb(&p, end); break; /* one LEB: block type, index, constant */
    }
  }
  return true;
}

/* Translate a call to defined function X in place: its frame is the caller's argument area
** (as for CALL), its locals are zeroed with moves, its `return` branches to the end. Only
** small leaf functions: no nesting, so no recursion; they spend no fuel (no back-edge or call
** of theirs is removed: loops inside still pay). */
#define INLINE_MAX_BYTES 160
#define INLINE_MAX_LOCALS 8
#define INLINE_MAX_PARAMS 16
static bool inlinable(const C *c, uint32_t x) {
  if (x < c->m->nfunc_imports || c->inl != UINT32_MAX) return false;
  const qw__func_decl *d = &c->m->funcs[x - c->m->nfunc_imports];
  uint64_t written;
  return d->body_end - d->body <= INLINE_MAX_BYTES && d->nlocals <= INLINE_MAX_LOCALS &&
         c->m->types[d->type_idx].nparams <= INLINE_MAX_PARAMS &&
         leaf_body(d->body, d->body_end, &written);
}

static qb_code inline_call(C *c, uint32_t x, qb_err *err) {
  const qw__func_decl *d = &c->m->funcs[x - c->m->nfunc_imports];
  const qw__functype *ft = &c->m->types[d->type_idx];
  uint32_t np = ft->nparams, base = c->sp - np, save_fidx = c->fidx;
  uint64_t written = 0;
  leaf_body(d->body, d->body_end, &written);
  /* a parameter the callee never writes reads the argument where it is (a caller's local or
  ** a constant slot: the callee cannot change either); the others get their home slot */
  for (uint32_t i = 0; i < np; i++) {
    if (written >> i & 1) mat(c, base + i);
    else slot_for(c, base + i); /* a constant gets its constant slot (or goes home) */
    c->lmap_buf[i] = c->st[base + i].slot;
  }
  for (uint32_t i = 0; i < d->nlocals; i++) { /* its locals: zero, below its operand stack */
    push_home(c);
    c->lmap_buf[np + i] = home(c, c->sp - 1);
    E(c, OP_MOVK32, home(c, c->sp - 1), 0);
  }
  if (c->oom || !push_ctl(c, C_INLINE, c->sp - base, ft->nresults)) return QB_OK;
  c->inl = c->csp - 1;
  c->lmap = c->lmap_buf;
  c->fidx = x;
  qb_code rc = body(c, d->body, d->body_end, c->csp - 1, err);
  c->inl = UINT32_MAX;
  c->lmap = NULL;
  c->fidx = save_fidx;
  return rc;
}

/* Translate instructions from P until the ctl stack is back to STOP entries. */
static qb_code body(C *c, const uint8_t *p, const uint8_t *end, uint32_t stop, qb_err *err) {
  const qw_module *m = c->m;
  while (p < end && c->csp > stop && !c->oom) {
    c->wofs = (uint32_t)(p - m->bytes);
    uint32_t op = *p++, x = 0, y = 0;
    ctl *cur = &c->cs[c->csp - 1];
    bool live = !cur->dead;
    if (op == 0xfc) {
      qw__leb_u32(&p, end, &x);
      op = 0xfc00 | x;
    }
    switch (op) {
    case QW_OP_unreachable:
      if (!live) break;
      E0(c, OP_UNREACHABLE);
      unreachable_rest(c);
      break;
    case QW_OP_nop:
      break;
    case QW_OP_block:
    case QW_OP_loop:
    case QW_OP_if: {
      uint32_t np, nr;
      blocktype(m, &p, end, &np, &nr);
      if (!live) {
        push_ctl(c, C_BLOCK, 0, 0);
        break;
      }
      settle(c, np, op == QW_OP_if ? 1 : 0);
      if (op == QW_OP_if) {
        uint32_t at, from = cond_br(c, false, &at);
        ctl *t = push_ctl(c, C_IF, np, nr);
        if (!t) break;
        if (!GROW(c, c->pt, c->ptcap, (uint64_t)c->npt + 1)) break;
        c->pt[c->npt] = (patch){at, from, -1};
        t->else_patch = (int32_t)c->npt++;
      } else {
        ctl *t = push_ctl(c, op == QW_OP_loop ? C_LOOP : C_BLOCK, np, nr);
        if (t && op == QW_OP_loop) {
          t->loop_pos = c->n;
          label_here(c);
        }
      }
      break;
    }
    case QW_OP_else:
      if (cur->skip) break;
      if (live) {
        moves(c, cur->nresults, cur->height);
        uint32_t at = E(c, OP_BR, 0);
        add_patch(c, cur, at + QW_OPX + 1, at);
        cur = &c->cs[c->csp - 1];
      }
      if (cur->else_patch >= 0) bind_patches(c, cur->else_patch);
      cur->else_patch = -1;
      label_here(c);
      cur->dead = false;
      c->sp = cur->height;
      push_homes(c, cur->nparams);
      break;
    case QW_OP_end: {
      if (cur->skip) {
        c->csp--;
        break;
      }
      if (cur->kind == C_FUNC) {
        if (live) ret(c);
        c->csp--;
        break;
      }
      if (live) moves(c, cur->nresults, cur->height);
      if (cur->else_patch >= 0) { /* if without else: the params are the results, in place */
        c->pt[cur->else_patch].next = cur->patches;
        cur->patches = cur->else_patch;
      }
      if (cur->patches >= 0) {
        bind_patches(c, cur->patches);
        label_here(c);
      }
      c->sp = cur->height;
      uint32_t nr = cur->nresults;
      c->csp--;
      push_homes(c, nr);
      break;
    }
    case QW_OP_br:
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      br_to(c, x);
      unreachable_rest(c);
      break;
    case QW_OP_br_if: {
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      ctl *t = &c->cs[c->csp - 1 - x];
      uint32_t n = arity(t), at, from;
      c->sp--;
      bool direct = t->kind != C_FUNC && in_place(c, n, t->height);
      c->sp++;
      if (direct) {
        from = cond_br(c, true, &at);
        link_to(c, &c->cs[c->csp - 1 - x], at, from);
      } else { /* skip over the moves when not taken */
        from = cond_br(c, false, &at);
        br_to(c, x);
        if (!c->oom && at < c->n) c->code[at] = c->n - from;
        label_here(c);
      }
      break;
    }
    case QW_OP_br_table: {
      uint32_t n;
      qw__leb_u32(&p, end, &n);
      if (!GROW(c, c->tmp, c->tmpcap, (uint64_t)n + 1)) break;
      for (uint32_t i = 0; i <= n; i++) qw__leb_u32(&p, end, &c->tmp[i]);
      if (!live) break;
      need_slots(c, 1);
      uint32_t s = slot_at(c, 1);
      c->sp--;
      uint32_t u[2] = {s, n};
      uint32_t from = emitv(c, OP_BR_TABLE, 2, u);
      for (uint32_t i = 0; i <= n && !c->oom; i++) {
        if (!GROW(c, c->code, c->cap, (uint64_t)c->n + 1)) break;
        c->code[c->n++] = 0;
      }
      c->last_end = c->n;
      if (c->oom) break;
      /* direct entries first; the others get a stub (moves + br) after the table */
      for (uint32_t i = 0; i <= n; i++) {
        ctl *t = &c->cs[c->csp - 1 - c->tmp[i]];
        if (t->kind != C_FUNC && in_place(c, arity(t), t->height))
          link_to(c, t, from + QW_OPX + 3 + i, from);
      }
      for (uint32_t i = 0; i <= n && !c->oom; i++) {
        ctl *t = &c->cs[c->csp - 1 - c->tmp[i]];
        if (t->kind != C_FUNC && in_place(c, arity(t), t->height)) continue;
        if (i > 0 && c->tmp[i - 1] == c->tmp[i]) { /* same target as the previous entry */
          c->code[from + QW_OPX + 3 + i] = c->code[from + QW_OPX + 2 + i];
          continue;
        }
        label_here(c);
        c->code[from + QW_OPX + 3 + i] = c->n - from;
        br_to(c, c->tmp[i]);
      }
      unreachable_rest(c);
      break;
    }
    case QW_OP_return:
      if (!live) break;
      if (c->inl != UINT32_MAX) br_to(c, c->csp - 1 - c->inl); /* inlined: to its end */
      else ret(c);
      unreachable_rest(c);
      break;
    case QW_OP_call: {
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      const qw__functype *t = &m->types[m->func_types[x]];
      if (inlinable(c, x)) {
        qb_code rc = inline_call(c, x, err);
        if (rc) return rc;
      } else if (x < m->nfunc_imports)
        call(c, OP_CALL_IMPORT, x, 0, t->nparams, t->nresults, false);
      else call(c, OP_CALL, x - m->nfunc_imports, 0, t->nparams, t->nresults, false);
      break;
    }
    case QW_OP_call_indirect: {
      qw__leb_u32(&p, end, &x);
      qw__leb_u32(&p, end, &y);
      if (!live) break;
      const qw__functype *t = &m->types[x];
      call(c, OP_CALL_INDIRECT, t->canon, y, t->nparams, t->nresults, true);
      break;
    }
    case QW_OP_drop:
      if (live) c->sp--;
      break;
    case QW_OP_select_t:
      qw__leb_u32(&p, end, &x);
      p += x;
      /* fall through */
    case QW_OP_select: {
      if (!live) break;
      need_slots(c, 3);
      uint32_t dd = c->sp - 3, o = c->last_op;
      if (c->st[dd + 2].kind == K_HOME && last_is(c, OP__COUNT, dd + 2) &&
          ((o >= OP_I32_EQ && o <= OP_I32_GE_U) || (o >= OP_I32_EQ_I && o <= OP_I32_GE_U_I))) {
        /* the condition is the compare just emitted: fold it into the select */
        uint32_t x = c->code[c->last_start + QW_OPX + 2], y = c->code[c->last_start + QW_OPX + 3];
        uint32_t so = o <= OP_I32_GE_U ? OP_SEL_I32_EQ + (o - OP_I32_EQ)
                                       : OP_SEL_I32_EQ_I + (o - OP_I32_EQ_I);
        drop_last(c);
        E(c, so, home(c, dd), c->st[dd].slot, c->st[dd + 1].slot, x, y);
      } else {
        E(c, OP_SELECT, home(c, dd), c->st[dd].slot, c->st[dd + 1].slot, c->st[dd + 2].slot);
      }
      c->sp -= 3;
      push_home(c);
      dst_is(c, dd);
      break;
    }
    case QW_OP_local_get:
      qw__leb_u32(&p, end, &x);
      if (live) push(c, K_LOCAL, c->lmap ? c->lmap[x] : x, 0);
      break;
    case QW_OP_local_set:
    case QW_OP_local_tee:
      qw__leb_u32(&p, end, &x);
      if (live) local_set(c, c->lmap ? c->lmap[x] : x, op == QW_OP_local_tee);
      break;
    case QW_OP_global_get:
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      E(c, OP_GLOBAL_GET, home(c, c->sp), x);
      push_home(c);
      dst_is(c, c->sp - 1);
      break;
    case QW_OP_global_set:
      qw__leb_u32(&p, end, &x);
      if (live) sink(c, OP_GLOBAL_SET, 1, x, 0, 1);
      break;
    case QW_OP_table_get:
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      need_slots(c, 1);
      E(c, OP_TABLE_GET, home(c, c->sp - 1), x, slot_at(c, 1));
      c->sp--;
      push_home(c);
      dst_is(c, c->sp - 1);
      break;
    case QW_OP_table_set:
      qw__leb_u32(&p, end, &x);
      if (live) sink(c, OP_TABLE_SET, 1, x, 0, 2);
      break;

#define LD(W, O)                         \
  case QW_OP_##W:                        \
    qw__leb_u32(&p, end, &x);            \
    qw__leb_u32(&p, end, &y);            \
    if (live) load(c, OP_##O, y);        \
    break;
#define ST(W, O)                         \
  case QW_OP_##W:                        \
    qw__leb_u32(&p, end, &x);            \
    qw__leb_u32(&p, end, &y);            \
    if (live) store(c, OP_##O, y);       \
    break;
      LD(i32_load, I32_LOAD)
      LD(i64_load, I64_LOAD)
      LD(f32_load, I32_LOAD)
      LD(f64_load, I64_LOAD)
      LD(i32_load8_s, I32_LOAD8_S)
      LD(i32_load8_u, I32_LOAD8_U)
      LD(i32_load16_s, I32_LOAD16_S)
      LD(i32_load16_u, I32_LOAD16_U)
      LD(i64_load8_s, I64_LOAD8_S)
      LD(i64_load8_u, I64_LOAD8_U)
      LD(i64_load16_s, I64_LOAD16_S)
      LD(i64_load16_u, I64_LOAD16_U)
      LD(i64_load32_s, I64_LOAD32_S)
      LD(i64_load32_u, I64_LOAD32_U)
      ST(i32_store, I32_STORE)
      ST(i64_store, I64_STORE)
      ST(f32_store, I32_STORE)
      ST(f64_store, I64_STORE)
      ST(i32_store8, I32_STORE8)
      ST(i32_store16, I32_STORE16)
      ST(i64_store8, I32_STORE8)
      ST(i64_store16, I32_STORE16)
      ST(i64_store32, I64_STORE32)
#undef LD
#undef ST

    case QW_OP_memory_size:
      p++;
      if (!live) break;
      E(c, OP_MEMORY_SIZE, home(c, c->sp));
      push_home(c);
      dst_is(c, c->sp - 1);
      break;
    case QW_OP_memory_grow:
      p++;
      if (live) unop(c, OP_MEMORY_GROW);
      break;
    case QW_OP_i32_const: {
      int32_t v = 0;
      qw__leb_s32(&p, end, &v);
      if (live) push(c, K_CONST, 0, (uint32_t)v);
      break;
    }
    case QW_OP_i64_const: {
      int64_t v = 0;
      qw__leb_s64(&p, end, &v);
      if (live) push(c, K_CONST, 0, (uint64_t)v);
      break;
    }
    case QW_OP_f32_const: {
      uint32_t v;
      memcpy(&v, p, 4);
      p += 4;
      if (live) push(c, K_CONST, 0, v);
      break;
    }
    case QW_OP_f64_const: {
      uint64_t v;
      memcpy(&v, p, 8);
      p += 8;
      if (live) push(c, K_CONST, 0, v);
      break;
    }

#define UN(W, O)                \
  case QW_OP_##W:               \
    if (live) unop(c, OP_##O);  \
    break;
#define BIN(W, O, WIDE)                       \
  case QW_OP_##W:                             \
    if (live) binop(c, OP_##O, 0, 0, WIDE);   \
    break;
#define BINI(W, O, REV, WIDE)                                      \
  case QW_OP_##W:                                                  \
    if (live) binop(c, OP_##O, OP_##O##_I, REV, WIDE);             \
    break;
#define CMPI(W, O, BASE, IBASE, WIDE)                                                     \
  case QW_OP_##W:                                                                         \
    if (live)                                                                             \
      binop(c, OP_##O, OP_##O##_I, OP_##IBASE + rev10[OP_##O - OP_##BASE], WIDE);         \
    break;
      UN(i32_eqz, I32_EQZ)
      CMPI(i32_eq, I32_EQ, I32_EQ, I32_EQ_I, false)
      CMPI(i32_ne, I32_NE, I32_EQ, I32_EQ_I, false)
      CMPI(i32_lt_s, I32_LT_S, I32_EQ, I32_EQ_I, false)
      CMPI(i32_lt_u, I32_LT_U, I32_EQ, I32_EQ_I, false)
      CMPI(i32_gt_s, I32_GT_S, I32_EQ, I32_EQ_I, false)
      CMPI(i32_gt_u, I32_GT_U, I32_EQ, I32_EQ_I, false)
      CMPI(i32_le_s, I32_LE_S, I32_EQ, I32_EQ_I, false)
      CMPI(i32_le_u, I32_LE_U, I32_EQ, I32_EQ_I, false)
      CMPI(i32_ge_s, I32_GE_S, I32_EQ, I32_EQ_I, false)
      CMPI(i32_ge_u, I32_GE_U, I32_EQ, I32_EQ_I, false)
      UN(i64_eqz, I64_EQZ)
      CMPI(i64_eq, I64_EQ, I64_EQ, I64_EQ_I, true)
      CMPI(i64_ne, I64_NE, I64_EQ, I64_EQ_I, true)
      CMPI(i64_lt_s, I64_LT_S, I64_EQ, I64_EQ_I, true)
      CMPI(i64_lt_u, I64_LT_U, I64_EQ, I64_EQ_I, true)
      CMPI(i64_gt_s, I64_GT_S, I64_EQ, I64_EQ_I, true)
      CMPI(i64_gt_u, I64_GT_U, I64_EQ, I64_EQ_I, true)
      CMPI(i64_le_s, I64_LE_S, I64_EQ, I64_EQ_I, true)
      CMPI(i64_le_u, I64_LE_U, I64_EQ, I64_EQ_I, true)
      CMPI(i64_ge_s, I64_GE_S, I64_EQ, I64_EQ_I, true)
      CMPI(i64_ge_u, I64_GE_U, I64_EQ, I64_EQ_I, true)
      BIN(f32_eq, F32_EQ, false)
      BIN(f32_ne, F32_NE, false)
      BIN(f32_lt, F32_LT, false)
      BIN(f32_gt, F32_GT, false)
      BIN(f32_le, F32_LE, false)
      BIN(f32_ge, F32_GE, false)
      BIN(f64_eq, F64_EQ, false)
      BIN(f64_ne, F64_NE, false)
      BIN(f64_lt, F64_LT, false)
      BIN(f64_gt, F64_GT, false)
      BIN(f64_le, F64_LE, false)
      BIN(f64_ge, F64_GE, false)
      UN(i32_clz, I32_CLZ)
      UN(i32_ctz, I32_CTZ)
      UN(i32_popcnt, I32_POPCNT)
    case QW_OP_i32_add:
      if (live) binop_m(c, OP_I32_ADD, OP_I32_ADD_I, OP_I32_ADD_I, false, OP_I32_ADD_M,
                        OP_I32_LOAD, true);
      break;
      BINI(i32_sub, I32_SUB, 0, false)
      BINI(i32_mul, I32_MUL, OP_I32_MUL_I, false)
      BIN(i32_div_s, I32_DIV_S, false)
      BIN(i32_div_u, I32_DIV_U, false)
      BIN(i32_rem_s, I32_REM_S, false)
      BIN(i32_rem_u, I32_REM_U, false)
      BINI(i32_and, I32_AND, OP_I32_AND_I, false)
      BINI(i32_or, I32_OR, OP_I32_OR_I, false)
      BINI(i32_xor, I32_XOR, OP_I32_XOR_I, false)
      BINI(i32_shl, I32_SHL, 0, false)
      BINI(i32_shr_s, I32_SHR_S, 0, false)
      BINI(i32_shr_u, I32_SHR_U, 0, false)
      BINI(i32_rotl, I32_ROTL, 0, false)
      BINI(i32_rotr, I32_ROTR, 0, false)
      UN(i64_clz, I64_CLZ)
      UN(i64_ctz, I64_CTZ)
      UN(i64_popcnt, I64_POPCNT)
    case QW_OP_i64_add:
      if (live) binop_m(c, OP_I64_ADD, OP_I64_ADD_I, OP_I64_ADD_I, true, OP_I64_ADD_M,
                        OP_I64_LOAD, true);
      break;
      BINI(i64_sub, I64_SUB, 0, true)
      BINI(i64_mul, I64_MUL, OP_I64_MUL_I, true)
      BIN(i64_div_s, I64_DIV_S, true)
      BIN(i64_div_u, I64_DIV_U, true)
      BIN(i64_rem_s, I64_REM_S, true)
      BIN(i64_rem_u, I64_REM_U, true)
      BINI(i64_and, I64_AND, OP_I64_AND_I, true)
      BINI(i64_or, I64_OR, OP_I64_OR_I, true)
      BINI(i64_xor, I64_XOR, OP_I64_XOR_I, true)
      BINI(i64_shl, I64_SHL, 0, true)
      BINI(i64_shr_s, I64_SHR_S, 0, true)
      BINI(i64_shr_u, I64_SHR_U, 0, true)
      BINI(i64_rotl, I64_ROTL, 0, true)
      BINI(i64_rotr, I64_ROTR, 0, true)
      UN(f32_abs, F32_ABS)
      UN(f32_neg, F32_NEG)
      UN(f32_ceil, F32_CEIL)
      UN(f32_floor, F32_FLOOR)
      UN(f32_trunc, F32_TRUNC)
      UN(f32_nearest, F32_NEAREST)
      UN(f32_sqrt, F32_SQRT)
#define BINM(W, O, LD, COMM)                                                \
  case QW_OP_##W:                                                          \
    if (live) binop_m(c, OP_##O, 0, 0, false, OP_##O##_M, OP_##LD, COMM);  \
    break;
      BINM(f32_add, F32_ADD, I32_LOAD, true)
      BIN(f32_sub, F32_SUB, false)
      BINM(f32_mul, F32_MUL, I32_LOAD, true)
      BIN(f32_div, F32_DIV, false)
      BIN(f32_min, F32_MIN, false)
      BIN(f32_max, F32_MAX, false)
      BIN(f32_copysign, F32_COPYSIGN, false)
      UN(f64_abs, F64_ABS)
      UN(f64_neg, F64_NEG)
      UN(f64_ceil, F64_CEIL)
      UN(f64_floor, F64_FLOOR)
      UN(f64_trunc, F64_TRUNC)
      UN(f64_nearest, F64_NEAREST)
      UN(f64_sqrt, F64_SQRT)
      BINM(f64_add, F64_ADD, I64_LOAD, true)
      BINM(f64_sub, F64_SUB, I64_LOAD, false)
      BINM(f64_mul, F64_MUL, I64_LOAD, true)
#undef BINM
      BIN(f64_div, F64_DIV, false)
      BIN(f64_min, F64_MIN, false)
      BIN(f64_max, F64_MAX, false)
      BIN(f64_copysign, F64_COPYSIGN, false)
      UN(i32_trunc_f32_s, I32_TRUNC_F32_S)
      UN(i32_trunc_f32_u, I32_TRUNC_F32_U)
      UN(i32_trunc_f64_s, I32_TRUNC_F64_S)
      UN(i32_trunc_f64_u, I32_TRUNC_F64_U)
      UN(i64_extend_i32_s, I64_EXTEND_I32_S)
      UN(i64_extend_i32_u, I64_EXTEND_I32_U)
      UN(i64_trunc_f32_s, I64_TRUNC_F32_S)
      UN(i64_trunc_f32_u, I64_TRUNC_F32_U)
      UN(i64_trunc_f64_s, I64_TRUNC_F64_S)
      UN(i64_trunc_f64_u, I64_TRUNC_F64_U)
      UN(f32_convert_i32_s, F32_CONVERT_I32_S)
      UN(f32_convert_i32_u, F32_CONVERT_I32_U)
      UN(f32_convert_i64_s, F32_CONVERT_I64_S)
      UN(f32_convert_i64_u, F32_CONVERT_I64_U)
      UN(f32_demote_f64, F32_DEMOTE_F64)
      UN(f64_convert_i32_s, F64_CONVERT_I32_S)
      UN(f64_convert_i32_u, F64_CONVERT_I32_U)
      UN(f64_convert_i64_s, F64_CONVERT_I64_S)
      UN(f64_convert_i64_u, F64_CONVERT_I64_U)
      UN(f64_promote_f32, F64_PROMOTE_F32)
      UN(i32_extend8_s, I32_EXTEND8_S)
      UN(i32_extend16_s, I32_EXTEND16_S)
      UN(i64_extend8_s, I64_EXTEND8_S)
      UN(i64_extend16_s, I64_EXTEND16_S)
      UN(i64_extend32_s, I64_EXTEND32_S)
      UN(i32_trunc_sat_f32_s, I32_TRUNC_SAT_F32_S)
      UN(i32_trunc_sat_f32_u, I32_TRUNC_SAT_F32_U)
      UN(i32_trunc_sat_f64_s, I32_TRUNC_SAT_F64_S)
      UN(i32_trunc_sat_f64_u, I32_TRUNC_SAT_F64_U)
      UN(i64_trunc_sat_f32_s, I64_TRUNC_SAT_F32_S)
      UN(i64_trunc_sat_f32_u, I64_TRUNC_SAT_F32_U)
      UN(i64_trunc_sat_f64_s, I64_TRUNC_SAT_F64_S)
      UN(i64_trunc_sat_f64_u, I64_TRUNC_SAT_F64_U)
      UN(ref_is_null, REF_IS_NULL)
#undef UN
#undef BIN
#undef BINI
#undef CMPI

    /* slots hold bits, and an i32 reader only looks at the low half: no code */
    case QW_OP_i32_wrap_i64:
    case QW_OP_i32_reinterpret_f32:
    case QW_OP_i64_reinterpret_f64:
    case QW_OP_f32_reinterpret_i32:
    case QW_OP_f64_reinterpret_i64:
      if (live && c->st[c->sp - 1].kind == K_CONST && op == QW_OP_i32_wrap_i64)
        c->st[c->sp - 1].k &= 0xffffffffu;
      break;

    case QW_OP_ref_null:
      p++;
      if (live) push(c, K_CONST, 0, 0);
      break;
    case QW_OP_ref_func:
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      E(c, OP_REF_FUNC, home(c, c->sp), x);
      push_home(c);
      dst_is(c, c->sp - 1);
      break;

    case QW_OP_memory_init:
      qw__leb_u32(&p, end, &x);
      p++;
      if (live) sink(c, OP_MEMORY_INIT, 1, x, 0, 3);
      break;
    case QW_OP_data_drop:
      qw__leb_u32(&p, end, &x);
      if (live) E(c, OP_DATA_DROP, x);
      break;
    case QW_OP_memory_copy:
      p += 2;
      if (live) sink(c, OP_MEMORY_COPY, 0, 0, 0, 3);
      break;
    case QW_OP_memory_fill:
      p++;
      if (live) sink(c, OP_MEMORY_FILL, 0, 0, 0, 3);
      break;
    case QW_OP_table_init:
      qw__leb_u32(&p, end, &x); /* elem segment */
      qw__leb_u32(&p, end, &y); /* table */
      if (live) sink(c, OP_TABLE_INIT, 2, y, x, 3);
      break;
    case QW_OP_elem_drop:
      qw__leb_u32(&p, end, &x);
      if (live) E(c, OP_ELEM_DROP, x);
      break;
    case QW_OP_table_copy:
      qw__leb_u32(&p, end, &x);
      qw__leb_u32(&p, end, &y);
      if (live) sink(c, OP_TABLE_COPY, 2, x, y, 3);
      break;
    case QW_OP_table_grow: {
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      need_slots(c, 2);
      uint32_t dd = c->sp - 2;
      E(c, OP_TABLE_GROW, home(c, dd), x, c->st[dd].slot, c->st[dd + 1].slot);
      c->sp -= 2;
      push_home(c);
      dst_is(c, dd);
      break;
    }
    case QW_OP_table_size:
      qw__leb_u32(&p, end, &x);
      if (!live) break;
      E(c, OP_TABLE_SIZE, home(c, c->sp), x);
      push_home(c);
      dst_is(c, c->sp - 1);
      break;
    case QW_OP_table_fill:
      qw__leb_u32(&p, end, &x);
      if (live) sink(c, OP_TABLE_FILL, 1, x, 0, 3);
      break;
    default:
      return qb_fail(err, QB_INTERNAL, "compile: function %u: unexpected opcode 0x%x at 0x%x",
                     c->fidx, op, c->wofs);
    }
  }
  return QB_OK;
}

static void c_fini(C *c) {
  qb_free(c->code, (size_t)c->cap * sizeof *c->code);
  qb_free(c->pcm, (size_t)c->pccap * sizeof *c->pcm);
  qb_free(c->st, (size_t)c->stcap * sizeof *c->st);
  qb_free(c->cs, (size_t)c->cscap * sizeof *c->cs);
  qb_free(c->pt, (size_t)c->ptcap * sizeof *c->pt);
  qb_free(c->tmp, (size_t)c->tmpcap * sizeof *c->tmp);
  qb_free(c->kv, (size_t)c->kcap * sizeof *c->kv);
}

qb_code qw__compile(const qw_module *m, uint32_t defined_idx, qw__code **out, qb_err *err) {
  qw__func_decl *d = (qw__func_decl *)&m->funcs[defined_idx];
  qw__code *pub = atomic_load_explicit(&d->code, memory_order_acquire);
  if (pub) {
    *out = pub;
    return QB_OK;
  }
  *out = NULL;
  const qw__functype *ft = &m->types[d->type_idx];
  C c = {0};
  c.m = m;
  c.xlat = qw__interp_handlers();
  c.s0 = c.kbase = ft->nparams + d->nlocals;
  c.barrier = UINT32_MAX;
  qb_code rc = translate(&c, d, err);
  if (!rc && c.nk) {
    /* constants got slots: translate again with them between the locals and the stack */
    c.s0 += c.nk;
    c.kfrozen = true;
    c.n = c.npc = c.sp = c.maxsp = c.csp = c.npt = 0;
    c.last_has_dst = false;
    c.barrier = UINT32_MAX;
    rc = translate(&c, d, err);
  }
  if (rc) {
    c_fini(&c);
    return rc;
  }
  /* INIT is padded to a multiple of 4 slots (interp.c copies 4 at a time; the extra slots
  ** land in the operand stack, which holds nothing at entry) */
  uint32_t ninit = (d->nlocals + c.nk + 3) & ~3u;
  uint64_t nslots = (uint64_t)c.s0 + c.maxsp + 1;
  if (nslots < ft->nresults) nslots = ft->nresults;
  if (nslots < (uint64_t)ft->nparams + ninit) nslots = (uint64_t)ft->nparams + ninit;
  size_t bytes = sizeof(qw__code) + (size_t)ninit * 8 + (size_t)c.n * 4 + (size_t)c.npc * 12;
  qw__code *code = qb_malloc(bytes);
  if (!code) {
    c_fini(&c);
    return qb_fail(err, QB_NOMEM, "compile: out of memory");
  }
  uint64_t *init = (uint64_t *)(code + 1), *consts = init + d->nlocals;
  uint32_t *ops = (uint32_t *)(init + ninit);
  memset(init, 0, (size_t)ninit * 8);
  if (c.nk) memcpy(consts, c.kv, (size_t)c.nk * 8);
  if (c.n) memcpy(ops, c.code, (size_t)c.n * 4);
  if (c.npc) memcpy(ops + c.n, c.pcm, (size_t)c.npc * 12);
  *code = (qw__code){.ops = ops,
                     .nops = c.n,
                     .nparams = ft->nparams,
                     .nlocals = d->nlocals,
                     .nresults = ft->nresults,
                     .nslots = (uint32_t)nslots,
                     .func_index = m->nfunc_imports + defined_idx,
                     .npc = c.npc,
                     .pcmap = ops + c.n,
                     .alloc_bytes = bytes,
                     .nconsts = c.nk,
                     .consts = consts,
                     .ninit = ninit,
                     .init = init};
  c_fini(&c);
  qw__code *expected = NULL;
  if (!atomic_compare_exchange_strong_explicit(&d->code, &expected, code, memory_order_acq_rel,
                                               memory_order_acquire)) {
    qw__code_free(code); /* another thread won: use its translation */
    code = expected;
  }
  *out = code;
  return QB_OK;
}

void qw__code_free(qw__code *c) {
  if (c) qb_free(c, c->alloc_bytes);
}
