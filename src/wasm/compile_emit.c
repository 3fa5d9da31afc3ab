/* compile_emit.c: the translator's machinery (compile.h): emission of threaded code with the
** pc map, the virtual stack and its slots (home, local, constant), labels, branches and
** their value moves, and the operators with their super-instruction folds. compile.c walks
** the opcodes and calls these. Invariants: see compile.c's opening comment. */
#include "compile.h"

bool qw__tr_grow(C *c, void **p, uint32_t *cap, uint64_t need, size_t elsz) {
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

/* ---- emission ---- */

uint32_t qw__tr_emitv(C *c, uint32_t op, uint32_t nargs, const uint32_t *args) {
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

/* The last instruction wrote the home slot of DEPTH through operand 1 (local.set may
** retarget it). */
void qw__tr_dst_is(C *c, uint32_t depth) {
  c->last_has_dst = true;
  c->last_dst_depth = depth;
}

uint32_t qw__tr_home(const C *c, uint32_t depth) { return c->s0 + depth; }

/* Is the last instruction OP (any op when OP == OP__COUNT), with its result in the home slot
** of DEPTH and nothing (no label) after it? Then a consumer may fold it into itself. */
bool qw__tr_last_is(const C *c, uint32_t op, uint32_t depth) {
  return c->last_has_dst && c->last_dst_depth == depth && c->last_end == c->n &&
         c->barrier != c->n && !c->oom && (op == OP__COUNT || c->last_op == op);
}

/* Is the last instruction OP, with no label after it (its result's depth not checked)? */
static bool last_is_op(const C *c, uint32_t op) {
  return c->last_end == c->n && c->barrier != c->n && !c->oom && c->last_op == op;
}

/* Drop the last instruction (its consumer has folded it in). */
void qw__tr_drop_last(C *c) {
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
void qw__tr_label_here(C *c) {
  c->barrier = c->n;
  c->last_has_dst = false;
}

/* ---- the virtual stack ---- */

void qw__tr_push(C *c, uint8_t kind, uint32_t slot, uint64_t k) {
  if (!GROW(c, c->st, c->stcap, (uint64_t)c->sp + 1)) return;
  uint32_t h = qw__tr_home(c, c->sp);
  c->st[c->sp] = (ent){kind, kind == K_HOME ? h : slot, k};
  c->sp++;
  if (c->sp > c->maxsp) c->maxsp = c->sp;
}
void qw__tr_push_home(C *c) { qw__tr_push(c, K_HOME, 0, 0); }
void qw__tr_push_homes(C *c, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) qw__tr_push_home(c);
}

/* About to overwrite slot DST: a constant move into it just before (an inlined call's
** zeroed local, set at once) is dead. */
static void overwrite(C *c, uint32_t dst) {
  if (c->last_end == c->n && c->barrier != c->n && !c->oom &&
      (c->last_op == OP_MOVK32 || c->last_op == OP_MOVK64) &&
      c->code[c->last_start + QW_OPX + 1] == dst)
    qw__tr_drop_last(c);
}

static void movk(C *c, uint32_t dst, uint64_t k) {
  overwrite(c, dst);
  if (k >> 32) E(c, OP_MOVK64, dst, (uint32_t)k, (uint32_t)(k >> 32));
  else E(c, OP_MOVK32, dst, (uint32_t)k);
}

/* Put entry I in its home slot. */
void qw__tr_mat(C *c, uint32_t i) {
  ent *e = &c->st[i];
  uint32_t h = qw__tr_home(c, i);
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
void qw__tr_slot_for(C *c, uint32_t i) {
  ent *e = &c->st[i];
  if (e->kind != K_CONST) return;
  uint32_t ks = kslot(c, e->k);
  if (ks != UINT32_MAX) e->slot = ks;
  else qw__tr_mat(c, i);
}
void qw__tr_need_slots(C *c, uint32_t n) {
  for (uint32_t i = c->sp - n; i < c->sp; i++) qw__tr_slot_for(c, i);
}
uint32_t qw__tr_slot_at(C *c, uint32_t fromtop) { return c->st[c->sp - fromtop].slot; }

/* ---- labels and branches ---- */

void qw__tr_add_patch(C *c, ctl *t, uint32_t at, uint32_t from) {
  if (!GROW(c, c->pt, c->ptcap, (uint64_t)c->npt + 1)) return;
  c->pt[c->npt] = (patch){at, from, t->patches};
  t->patches = (int32_t)c->npt++;
}

/* Point the displacement at code[AT] (of the instruction at FROM) to label T. */
void qw__tr_link_to(C *c, ctl *t, uint32_t at, uint32_t from) {
  if (c->oom || at >= c->n) return;
  if (t->kind == C_LOOP) {
    QB_ASSERT(t->loop_pos <= from); /* a loop's label is behind: the displacement is <= 0 */
    c->code[at] = (uint32_t)((int32_t)t->loop_pos - (int32_t)from);
  } else {
    qw__tr_add_patch(c, t, at, from);
  }
}

void qw__tr_bind_patches(C *c, int32_t p) {
  for (; p >= 0; p = c->pt[p].next) {
    /* forward branches only: bound at their label, after the branch, inside the code */
    QB_ASSERT(c->oom || (c->pt[p].from <= c->n && c->pt[p].at < c->n));
    if (!c->oom && c->pt[p].at < c->n) c->code[c->pt[p].at] = c->n - c->pt[p].from;
  }
}

uint32_t qw__tr_arity(const ctl *t) { return t->kind == C_LOOP ? t->nparams : t->nresults; }

bool qw__tr_in_place(C *c, uint32_t n, uint32_t height) {
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    if (e->kind != K_HOME || e->slot != qw__tr_home(c, height + i)) return false;
  }
  return true;
}

/* Copy the top N values to the homes of HEIGHT.. (a branch to a block/loop label). Stack
** sources sit at the same or higher slots, so copying upwards is safe; a source still in a
** local that an earlier copy overwrites (an inlined call's locals lie where its results go)
** is first saved in its own home slot. The virtual stack is not changed. */
void qw__tr_moves(C *c, uint32_t n, uint32_t height) {
  uint32_t d0 = qw__tr_home(c, height);
  if (n == 1 && c->st[c->sp - 1].kind == K_HOME && c->st[c->sp - 1].slot != d0 &&
      qw__tr_last_is(c, OP__COUNT, c->sp - 1)) { /* its producer writes the target directly */
    c->code[c->last_start + QW_OPX + 1] = d0;
    c->last_has_dst = false;
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    if (e->kind == K_LOCAL && e->slot >= d0 && e->slot < d0 + i)
      E(c, OP_MOV, qw__tr_home(c, c->sp - n + i), e->slot);
  }
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    uint32_t d = d0 + i, src = e->slot;
    if (e->kind == K_LOCAL && e->slot >= d0 && e->slot < d0 + i)
      src = qw__tr_home(c, c->sp - n + i);
    if (e->kind == K_CONST) movk(c, d, e->k);
    else if (src != d) E(c, OP_MOV, d, src);
  }
}

/* Copy the function's results to slots 0..n-1 and return. A result still in local l < i
** would be overwritten before it is read: it goes through its home slot first. The virtual
** stack is not changed (this may run on one path only, e.g. br_if). */
void qw__tr_ret(C *c) {
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
    if (e->kind == K_LOCAL && e->slot < i) E(c, OP_MOV, qw__tr_home(c, c->sp - n + i), e->slot);
  }
  for (uint32_t i = 0; i < n; i++) {
    const ent *e = &c->st[c->sp - n + i];
    uint32_t src = e->slot;
    if (e->kind == K_LOCAL && e->slot < i) src = qw__tr_home(c, c->sp - n + i);
    if (e->kind == K_CONST) movk(c, i, e->k);
    else if (src != i) E(c, OP_MOV, i, src);
  }
  E0(c, OP_RET);
}

/* Unconditional branch to the label REL levels out (moves included). */
void qw__tr_br_to(C *c, uint32_t rel) {
  ctl *t = &c->cs[c->csp - 1 - rel];
  if (t->kind == C_FUNC) {
    qw__tr_ret(c);
    return;
  }
  qw__tr_moves(c, qw__tr_arity(t), t->height);
  uint32_t at = E(c, OP_BR, 0);
  qw__tr_link_to(c, &c->cs[c->csp - 1 - rel], at + QW_OPX + 1, at);
}

/* Compare ops that fuse with a following conditional branch. */
const uint8_t qw__tr_neg10[10] = {1, 0, 8, 9, 6, 7, 4, 5, 2, 3}; /* eq ne lt_s lt_u gt_s ... */
const uint8_t qw__tr_rev10[10] = {0, 1, 4, 5, 2, 3, 8, 9, 6, 7}; /* a OP b == b REV(OP) a */

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
      else if (y == d) other = x, i = qw__tr_rev10[i];
      else i = 10;
      if (i < 10) fused = (lo == OP_I32_ADD_I ? OP_ADDI_BR_EQ : OP_ADD_BR_EQ) + (int)i;
    } else if (br >= OP_BR_I32_EQ_I && br <= OP_BR_I32_GE_U_I && x == d && lo == OP_I32_ADD_I) {
      fused = OP_ADDI_BR_EQ_I + (int)(br - OP_BR_I32_EQ_I), other = y;
    } else if (br == OP_BR_NZ && x == d && lo == OP_I32_ADD_I) {
      qw__tr_drop_last(c);
      at0 = E(c, OP_ADDI_BR_NZ, d, a, k, 0);
      *at = at0 + QW_OPX + 4;
      return at0;
    }
    if (fused >= 0) {
      qw__tr_drop_last(c);
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
uint32_t qw__tr_cond_br(C *c, bool on_true, uint32_t *at) {
  const ent *e = &c->st[c->sp - 1];
  uint32_t o = c->last_op;
  if (e->kind == K_HOME && c->last_has_dst && c->last_dst_depth == c->sp - 1 &&
      c->last_end == c->n && c->barrier != c->n && !c->oom) {
    uint32_t a = c->code[c->last_start + QW_OPX + 2], b = 0;
    int fused = -1, nargs = 2;
    if (o >= OP_I32_EQ && o <= OP_I32_GE_U) {
      uint32_t i = o - OP_I32_EQ;
      fused = OP_BR_I32_EQ + (on_true ? i : qw__tr_neg10[i]);
    } else if (o >= OP_I32_EQ_I && o <= OP_I32_GE_U_I) {
      uint32_t i = o - OP_I32_EQ_I;
      fused = OP_BR_I32_EQ_I + (on_true ? i : qw__tr_neg10[i]);
    } else if (o >= OP_I64_EQ && o <= OP_I64_GE_U) {
      uint32_t i = o - OP_I64_EQ;
      fused = OP_BR_I64_EQ + (on_true ? i : qw__tr_neg10[i]);
    } else if (o == OP_I32_EQZ) {
      fused = on_true ? OP_BR_Z : OP_BR_NZ, nargs = 1;
    } else if (o == OP_I64_EQZ) {
      fused = on_true ? OP_BR_I64_EQZ : OP_BR_I64_NEZ, nargs = 1;
    }
    if (fused >= 0) {
      if (nargs == 2) b = c->code[c->last_start + QW_OPX + 3];
      qw__tr_drop_last(c); /* the compare */
      c->sp--;
      return emit_cbr(c, (uint32_t)fused, a, b, (uint32_t)nargs, at);
    }
  }
  qw__tr_need_slots(c, 1);
  uint32_t s = qw__tr_slot_at(c, 1);
  c->sp--;
  return emit_cbr(c, on_true ? OP_BR_NZ : OP_BR_Z, s, 0, 1, at);
}

/* ---- blocks ---- */

ctl *qw__tr_push_ctl(C *c, uint8_t kind, uint32_t np, uint32_t nr) {
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
void qw__tr_settle(C *c, uint32_t np, uint32_t below) {
  uint32_t from = c->inl != UINT32_MAX ? c->cs[c->inl].height : 0;
  for (uint32_t i = from; i + below < c->sp; i++)
    if (c->st[i].kind == K_LOCAL || (i + below + np >= c->sp && c->st[i].kind == K_CONST))
      qw__tr_mat(c, i);
#ifdef QB_ASSERTS
  for (uint32_t i = from; i + below < c->sp && !c->oom; i++) /* invariant (3) of compile.c */
    QB_ASSERT(c->st[i].kind != K_LOCAL);
#endif
}

void qw__tr_blocktype(const qw_module *m, int64_t bt, uint32_t *np, uint32_t *nr) {
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
void qw__tr_binop_m(C *c, uint32_t o, uint32_t oi, uint32_t orv, bool wide, uint32_t om,
                    uint32_t ld, bool comm) {
  ent *a = &c->st[c->sp - 2], *b = &c->st[c->sp - 1];
  uint32_t d = c->sp - 2;
  if (o == OP_F64_ADD && (b->kind == K_HOME || a->kind == K_HOME)) {
    qw__tr_need_slots(c, 2);
    int side = -1; /* which operand is a product just computed */
    if (b->kind == K_HOME &&
        (qw__tr_last_is(c, OP_F64_MUL, d + 1) || qw__tr_last_is(c, OP_F64_MUL_M, d + 1)))
      side = 1;
    else if (a->kind == K_HOME &&
             (qw__tr_last_is(c, OP_F64_MUL, d) || qw__tr_last_is(c, OP_F64_MUL_M, d)))
      side = 0;
    if (side >= 0) {
      bool mem = c->last_op == OP_F64_MUL_M;
      uint32_t u[6], cs = c->st[side ? d : d + 1].slot;
      for (uint32_t i = 0; i < (mem ? 4u : 2u); i++)
        u[2 + i] = c->code[c->last_start + QW_OPX + 2 + i];
      u[0] = qw__tr_home(c, d), u[1] = cs;
      qw__tr_drop_last(c);
      qw__tr_emitv(c, mem ? OP_F64_MULADD_M : OP_F64_MULADD, mem ? 6 : 4, u);
      c->sp -= 2;
      qw__tr_push_home(c);
      qw__tr_dst_is(c, d);
      return;
    }
  }
  if (om && (b->kind == K_HOME || a->kind == K_HOME)) {
    qw__tr_need_slots(c, 2);
    int side = -1;
    uint32_t lda = ld - OP_I32_LOAD + OP_I32_LOAD_A; /* the same load with a folded add */
    if (b->kind == K_HOME && (qw__tr_last_is(c, ld, d + 1) || qw__tr_last_is(c, lda, d + 1)))
      side = 1;
    else if (comm && a->kind == K_HOME && (qw__tr_last_is(c, ld, d) || qw__tr_last_is(c, lda, d)))
      side = 0;
    if (side >= 0) {
      bool folded = c->last_op == lda;
      uint32_t addr = c->code[c->last_start + QW_OPX + 2],
               k = folded ? c->code[c->last_start + QW_OPX + 3] : 0;
      uint32_t off = c->code[c->last_start + QW_OPX + (folded ? 4 : 3)];
      uint32_t other = c->st[side ? d : d + 1].slot;
      qw__tr_drop_last(c);
      E(c, om, qw__tr_home(c, d), other, addr, k, off);
      c->sp -= 2;
      qw__tr_push_home(c);
      qw__tr_dst_is(c, d);
      return;
    }
  }
  if (oi && b->kind == K_CONST && (!wide || fits_i32(b->k))) {
    uint32_t k = (uint32_t)b->k;
    qw__tr_slot_for(c, d);
    E(c, oi, qw__tr_home(c, d), c->st[d].slot, k);
  } else if (orv && a->kind == K_CONST && b->kind != K_CONST && (!wide || fits_i32(a->k))) {
    uint32_t k = (uint32_t)a->k;
    E(c, orv, qw__tr_home(c, d), b->slot, k);
  } else {
    qw__tr_need_slots(c, 2);
    E(c, o, qw__tr_home(c, d), c->st[d].slot, c->st[d + 1].slot);
  }
  c->sp -= 2;
  qw__tr_push_home(c);
  qw__tr_dst_is(c, d);
}

void qw__tr_binop(C *c, uint32_t o, uint32_t oi, uint32_t orv, bool wide) {
  qw__tr_binop_m(c, o, oi, orv, wide, 0, 0, false);
}

void qw__tr_unop(C *c, uint32_t o) {
  qw__tr_need_slots(c, 1);
  uint32_t d = c->sp - 1;
  E(c, o, qw__tr_home(c, d), c->st[d].slot);
  c->sp--;
  qw__tr_push_home(c);
  qw__tr_dst_is(c, d);
}

/* An op with N stack operands and no result: [op imm... slots...] */
void qw__tr_sink(C *c, uint32_t o, uint32_t nimm, uint32_t i0, uint32_t i1, uint32_t n) {
  uint32_t u[8], k = 0;
  qw__tr_need_slots(c, n);
  if (nimm > 0) u[k++] = i0;
  if (nimm > 1) u[k++] = i1;
  for (uint32_t i = 0; i < n; i++) u[k++] = c->st[c->sp - n + i].slot;
  qw__tr_emitv(c, o, k, u);
  c->sp -= n;
}

void qw__tr_local_set(C *c, uint32_t x, bool tee) {
  for (uint32_t i = 0; i + 1 < c->sp; i++)
    if (c->st[i].kind == K_LOCAL && c->st[i].slot == x) qw__tr_mat(c, i);
#ifdef QB_ASSERTS
  for (uint32_t i = 0; i + 1 < c->sp && !c->oom; i++) /* invariant (2) of compile.c */
    QB_ASSERT(!(c->st[i].kind == K_LOCAL && c->st[i].slot == x));
#endif
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
  if (tee) qw__tr_push(c, K_LOCAL, x, 0);
}

void qw__tr_load(C *c, uint32_t o, uint32_t off) {
  qw__tr_need_slots(c, 1);
  uint32_t d = c->sp - 1;
  if (c->st[d].kind == K_HOME && qw__tr_last_is(c, OP_I32_ADD_I, d)) { /* fold the address add */
    uint32_t a = c->code[c->last_start + QW_OPX + 2], k = c->code[c->last_start + QW_OPX + 3];
    qw__tr_drop_last(c);
    E(c, o - OP_I32_LOAD + OP_I32_LOAD_A, qw__tr_home(c, d), a, k, off);
  } else {
    E(c, o, qw__tr_home(c, d), c->st[d].slot, off);
  }
  c->sp--;
  qw__tr_push_home(c);
  qw__tr_dst_is(c, d);
}

void qw__tr_store(C *c, uint32_t o, uint32_t off) {
  qw__tr_need_slots(c, 2);
  uint32_t lo = c->last_op, acc = 0;
  if (c->st[c->sp - 1].kind == K_HOME && qw__tr_last_is(c, OP__COUNT, c->sp - 1)) {
    if (o == OP_I32_STORE)
      acc = lo == OP_I32_ADD_M ? OP_I32_ADD_ACC : lo == OP_F32_ADD_M ? OP_F32_ADD_ACC : 0;
    if (o == OP_I64_STORE)
      acc = lo == OP_I64_ADD_M ? OP_I64_ADD_ACC : lo == OP_F64_ADD_M ? OP_F64_ADD_ACC : 0;
  }
  if (acc && c->code[c->last_start + QW_OPX + 3] == qw__tr_slot_at(c, 2) &&
      c->code[c->last_start + QW_OPX + 4] == 0 &&
      c->code[c->last_start + QW_OPX + 5] == off) { /* x = a + mem[p]; mem[p] = x */
    uint32_t a = c->code[c->last_start + QW_OPX + 2];
    qw__tr_drop_last(c);
    if (acc == OP_F64_ADD_ACC && a >= c->s0 && last_is_op(c, OP_F64_MUL_M) &&
        c->code[c->last_start + QW_OPX + 1] == a) { /* a = x * mem[q] just before: fold it */
      const uint32_t *m = &c->code[c->last_start + QW_OPX];
      uint32_t x = m[2], q = m[3], kq = m[4], oq = m[5];
      qw__tr_drop_last(c);
      E(c, OP_F64_MULADD_ACC, qw__tr_slot_at(c, 2), 0, off, x, q, kq, oq);
    } else {
      E(c, acc, qw__tr_slot_at(c, 2), a, 0, off);
    }
  } else if (c->st[c->sp - 2].kind == K_HOME && qw__tr_last_is(c, OP_I32_ADD_I, c->sp - 2)) {
    uint32_t a = c->code[c->last_start + QW_OPX + 2], k = c->code[c->last_start + QW_OPX + 3];
    qw__tr_drop_last(c);
    E(c, o - OP_I32_STORE + OP_I32_STORE_A, a, qw__tr_slot_at(c, 1), k, off);
  } else {
    E(c, o, qw__tr_slot_at(c, 2), qw__tr_slot_at(c, 1), off);
  }
  c->sp -= 2;
}

/* Call with NP args on top (they become the callee's frame) and NR results. */
void qw__tr_call(C *c, uint32_t o, uint32_t imm0, uint32_t imm1, uint32_t np, uint32_t nr,
                 bool indirect) {
  uint32_t base = c->sp - np - (indirect ? 1 : 0);
  for (uint32_t i = base; i < base + np; i++) qw__tr_mat(c, i);
  if (indirect) {
    qw__tr_need_slots(c, 1);
    E(c, o, imm0, imm1, qw__tr_home(c, base), qw__tr_slot_at(c, 1));
  } else {
    E(c, o, imm0, qw__tr_home(c, base));
  }
  c->sp = base;
  qw__tr_push_homes(c, nr);
}

void qw__tr_unreachable_rest(C *c) {
  ctl *t = &c->cs[c->csp - 1];
  t->dead = true;
  c->sp = t->height; /* the stack below the block is untouched in dead code */
}
