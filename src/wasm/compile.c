/* compile.c: validated body -> threaded code for interp.c (layout: iops.def and
** docs/interpreter.md). Every operand becomes a frame-slot index here; interp.c never sees the
** wasm value stack. Locals are slots 0..s0-1; operand-stack depth d lives in "home" slot s0+d.
** A virtual stack entry says where its value is now: in its home slot, still in a local
** (local.get emits nothing) or still a constant (folded into _I forms or moved when needed).
** Invariants: (1) at every label (block/loop/if boundaries, branch targets) each live entry
** is in its home slot or is a constant, so all paths into a label agree; (2) an entry that
** names local x is moved to its home slot before anything writes x; (3) on every path a slot
** is written before it is read, as validate.c's type stack has already proven.
** This file walks the opcodes (and inlines small leaf calls); compile_emit.c holds the
** machinery it calls (emission, virtual stack, branches, operators and their folds). */
#include "compile.h"

/* ---- the translator ---- */

static qb_code body(C *c, const uint8_t *p, const uint8_t *end, uint32_t stop, qb_err *err);

static qb_code translate(C *c, const qw__func_decl *d, qb_err *err) {
  const qw__functype *ft = &c->m->types[d->type_idx];
  c->nresults = ft->nresults;
  c->lmap = NULL;
  c->inl = UINT32_MAX;
  c->fidx = c->m->nfunc_imports + (uint32_t)(d - c->m->funcs);
  qw__tr_push_ctl(c, C_FUNC, 0, ft->nresults);
  qb_code rc = body(c, d->body, d->body_end, 0, err);
  if (rc) return rc;
  if (c->oom) return qb_fail(err, QB_NOMEM, "compile: out of memory");
  if (c->csp != 0) return QB_NEVER(err);
  return QB_OK;
}

/* ---- inlining small leaf functions ---- */

/* Is the validated body [P, END) free of calls? (decoded by insn.c)
** *WRITTEN: bit x set when local x < 64 is the target of a local.set/tee. */
static bool leaf_body(const qw_module *m, const uint8_t *p, const uint8_t *end,
                      uint64_t *written) {
  qw_insn in;
  *written = 0;
  while (p < end) {
    if (!qw_insn_next(&p, end, m->bytes, &in)) return false;
    if (in.op == QW_OP_call || in.op == QW_OP_call_indirect) return false;
    if ((in.op == QW_OP_local_set || in.op == QW_OP_local_tee) && in.a < 64)
      *written |= (uint64_t)1 << in.a;
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
bool qw__call_inlined(const qw_module *m, uint32_t x) {
  if (x < m->nfunc_imports) return false;
  const qw__func_decl *d = &m->funcs[x - m->nfunc_imports];
  uint64_t written;
  return d->body_end - d->body <= INLINE_MAX_BYTES && d->nlocals <= INLINE_MAX_LOCALS &&
         m->types[d->type_idx].nparams <= INLINE_MAX_PARAMS &&
         leaf_body(m, d->body, d->body_end, &written);
}

/* (inside an inlined body nothing is inlined, but a leaf has no calls to inline anyway) */
static bool inlinable(const C *c, uint32_t x) {
  return c->inl == UINT32_MAX && qw__call_inlined(c->m, x);
}

static qb_code inline_call(C *c, uint32_t x, qb_err *err) {
  const qw__func_decl *d = &c->m->funcs[x - c->m->nfunc_imports];
  const qw__functype *ft = &c->m->types[d->type_idx];
  uint32_t np = ft->nparams, base = c->sp - np, save_fidx = c->fidx;
  uint64_t written = 0;
  leaf_body(c->m, d->body, d->body_end, &written);
  /* a parameter the callee never writes reads the argument where it is (a caller's local or
  ** a constant slot: the callee cannot change either); the others get their home slot */
  for (uint32_t i = 0; i < np; i++) {
    if (written >> i & 1) qw__tr_mat(c, base + i);
    else qw__tr_slot_for(c, base + i); /* a constant gets its constant slot (or goes home) */
    c->lmap_buf[i] = c->st[base + i].slot;
  }
  for (uint32_t i = 0; i < d->nlocals; i++) { /* its locals: zero, below its operand stack */
    qw__tr_push_home(c);
    c->lmap_buf[np + i] = qw__tr_home(c, c->sp - 1);
    E(c, OP_MOVK32, qw__tr_home(c, c->sp - 1), 0);
  }
  if (c->oom || !qw__tr_push_ctl(c, C_INLINE, c->sp - base, ft->nresults)) return QB_OK;
  c->inl = c->csp - 1;
  c->lmap = c->lmap_buf;
  c->fidx = x;
  qb_code rc = body(c, d->body, d->body_end, c->csp - 1, err);
  c->inl = UINT32_MAX;
  c->lmap = NULL;
  c->fidx = save_fidx;
  return rc;
}

/* The families of body(): each translates IN when it is one of its instructions and says so
** (false: not mine). LIVE: the current frame is reachable; dead code is parsed, not emitted. */

/* Control: structured blocks, branches, return. */
static bool control(C *c, const qw_insn *in, const uint8_t *end, bool live) {
  const qw_module *m = c->m;
  uint32_t op = in->op, x = 0;
  ctl *cur = &c->cs[c->csp - 1];
  switch (op) {
    case QW_OP_unreachable:
      if (!live) break;
      E0(c, OP_UNREACHABLE);
      qw__tr_unreachable_rest(c);
      break;
    case QW_OP_nop:
      break;
    case QW_OP_block:
    case QW_OP_loop:
    case QW_OP_if: {
      uint32_t np, nr;
      qw__tr_blocktype(m, in->bt, &np, &nr);
      if (!live) {
        qw__tr_push_ctl(c, C_BLOCK, 0, 0);
        break;
      }
      qw__tr_settle(c, np, op == QW_OP_if ? 1 : 0);
      if (op == QW_OP_if) {
        uint32_t at, from = qw__tr_cond_br(c, false, &at);
        ctl *t = qw__tr_push_ctl(c, C_IF, np, nr);
        if (!t) break;
        if (!GROW(c, c->pt, c->ptcap, (uint64_t)c->npt + 1)) break;
        c->pt[c->npt] = (patch){at, from, -1};
        t->else_patch = (int32_t)c->npt++;
      } else {
        ctl *t = qw__tr_push_ctl(c, op == QW_OP_loop ? C_LOOP : C_BLOCK, np, nr);
        if (t && op == QW_OP_loop) {
          t->loop_pos = c->n;
          qw__tr_label_here(c);
        }
      }
      break;
    }
    case QW_OP_else:
      if (cur->skip) break;
      if (live) {
        qw__tr_moves(c, cur->nresults, cur->height);
        uint32_t at = E(c, OP_BR, 0);
        qw__tr_add_patch(c, cur, at + QW_OPX + 1, at);
        cur = &c->cs[c->csp - 1]; /* the patch list may have moved the frames */
      }
      if (cur->else_patch >= 0) qw__tr_bind_patches(c, cur->else_patch);
      cur->else_patch = -1;
      qw__tr_label_here(c);
      cur->dead = false;
      c->sp = cur->height;
      qw__tr_push_homes(c, cur->nparams);
      break;
    case QW_OP_end: {
      if (cur->skip) {
        c->csp--;
        break;
      }
      if (cur->kind == C_FUNC) {
        if (live) qw__tr_ret(c);
        c->csp--;
        break;
      }
      QB_ASSERT(!live || c->sp >= cur->height + cur->nresults); /* the results are there */
      if (live) qw__tr_moves(c, cur->nresults, cur->height);
      if (cur->else_patch >= 0) { /* if without else: the params are the results, in place */
        c->pt[cur->else_patch].next = cur->patches;
        cur->patches = cur->else_patch;
      }
      if (cur->patches >= 0) {
        qw__tr_bind_patches(c, cur->patches);
        qw__tr_label_here(c);
      }
      c->sp = cur->height;
      uint32_t nr = cur->nresults;
      c->csp--;
      qw__tr_push_homes(c, nr);
      break;
    }
    case QW_OP_br:
      x = in->a;
      if (!live) break;
      qw__tr_br_to(c, x);
      qw__tr_unreachable_rest(c);
      break;
    case QW_OP_br_if: {
      x = in->a;
      if (!live) break;
      ctl *t = &c->cs[c->csp - 1 - x];
      uint32_t n = qw__tr_arity(t), at, from;
      c->sp--;
      bool direct = t->kind != C_FUNC && qw__tr_in_place(c, n, t->height);
      c->sp++;
      if (direct) {
        from = qw__tr_cond_br(c, true, &at);
        qw__tr_link_to(c, &c->cs[c->csp - 1 - x], at, from);
      } else { /* skip over the moves when not taken */
        from = qw__tr_cond_br(c, false, &at);
        qw__tr_br_to(c, x);
        if (!c->oom && at < c->n) c->code[at] = c->n - from;
        qw__tr_label_here(c);
      }
      break;
    }
    case QW_OP_br_table: {
      uint32_t n = in->a;
      if (!GROW(c, c->tmp, c->tmpcap, (uint64_t)n + 1)) break;
      qw_insn_br_targets(in, end, c->tmp);
      if (!live) break;
      qw__tr_need_slots(c, 1);
      uint32_t s = qw__tr_slot_at(c, 1);
      c->sp--;
      uint32_t u[2] = {s, n};
      uint32_t from = qw__tr_emitv(c, OP_BR_TABLE, 2, u);
      for (uint32_t i = 0; i <= n && !c->oom; i++) {
        if (!GROW(c, c->code, c->cap, (uint64_t)c->n + 1)) break;
        c->code[c->n++] = 0;
      }
      c->last_end = c->n;
      if (c->oom) break;
      /* direct entries first; the others get a stub (moves + br) after the table */
      for (uint32_t i = 0; i <= n; i++) {
        ctl *t = &c->cs[c->csp - 1 - c->tmp[i]];
        if (t->kind != C_FUNC && qw__tr_in_place(c, qw__tr_arity(t), t->height))
          qw__tr_link_to(c, t, from + QW_OPX + 3 + i, from);
      }
      for (uint32_t i = 0; i <= n && !c->oom; i++) {
        ctl *t = &c->cs[c->csp - 1 - c->tmp[i]];
        if (t->kind != C_FUNC && qw__tr_in_place(c, qw__tr_arity(t), t->height)) continue;
        if (i > 0 && c->tmp[i - 1] == c->tmp[i]) { /* same target as the previous entry */
          c->code[from + QW_OPX + 3 + i] = c->code[from + QW_OPX + 2 + i];
          continue;
        }
        qw__tr_label_here(c);
        c->code[from + QW_OPX + 3 + i] = c->n - from;
        qw__tr_br_to(c, c->tmp[i]);
      }
      qw__tr_unreachable_rest(c);
      break;
    }
    case QW_OP_return:
      if (!live) break;
      if (c->inl != UINT32_MAX) qw__tr_br_to(c, c->csp - 1 - c->inl); /* inlined: to its end */
      else qw__tr_ret(c);
      qw__tr_unreachable_rest(c);
      break;
  default: return false;
  }
  (void)x;
  return true;
}

/* Calls: inlined small leaves, CALL, CALL_IMPORT, CALL_INDIRECT. */
static bool calls(C *c, const qw_insn *in, bool live, qb_code *rc, qb_err *err) {
  const qw_module *m = c->m;
  uint32_t op = in->op, x = 0, y = 0;
  switch (op) {
    case QW_OP_call: {
      x = in->a;
      if (!live) break;
      const qw__functype *t = &m->types[m->func_types[x]];
      if (inlinable(c, x)) {
        *rc = inline_call(c, x, err);
      } else if (x < m->nfunc_imports)
        qw__tr_call(c, OP_CALL_IMPORT, x, 0, t->nparams, t->nresults, false);
      else qw__tr_call(c, OP_CALL, x - m->nfunc_imports, 0, t->nparams, t->nresults, false);
      break;
    }
    case QW_OP_call_indirect: {
      x = in->a;
      y = in->b;
      if (!live) break;
      const qw__functype *t = &m->types[x];
      qw__tr_call(c, OP_CALL_INDIRECT, t->canon, y, t->nparams, t->nresults, true);
      break;
    }
  default: return false;
  }
  (void)y;
  return true;
}

/* Variables and operand moves: drop, select, locals, globals, table.get/set, references. */
static bool variables(C *c, const qw_insn *in, bool live) {
  uint32_t op = in->op, x = 0;
  switch (op) {
    case QW_OP_drop:
      if (live) c->sp--;
      break;
    case QW_OP_select_t: /* fall through: the type is validate.c's business */
    case QW_OP_select: {
      if (!live) break;
      qw__tr_need_slots(c, 3);
      uint32_t dd = c->sp - 3, o = c->last_op;
      if (c->st[dd + 2].kind == K_HOME && qw__tr_last_is(c, OP__COUNT, dd + 2) &&
          ((o >= OP_I32_EQ && o <= OP_I32_GE_U) || (o >= OP_I32_EQ_I && o <= OP_I32_GE_U_I))) {
        /* the condition is the compare just emitted: fold it into the select */
        uint32_t x = c->code[c->last_start + QW_OPX + 2], y = c->code[c->last_start + QW_OPX + 3];
        uint32_t so = o <= OP_I32_GE_U ? OP_SEL_I32_EQ + (o - OP_I32_EQ)
                                       : OP_SEL_I32_EQ_I + (o - OP_I32_EQ_I);
        qw__tr_drop_last(c);
        E(c, so, qw__tr_home(c, dd), c->st[dd].slot, c->st[dd + 1].slot, x, y);
      } else {
        E(c, OP_SELECT, qw__tr_home(c, dd), c->st[dd].slot, c->st[dd + 1].slot, c->st[dd + 2].slot);
      }
      c->sp -= 3;
      qw__tr_push_home(c);
      qw__tr_dst_is(c, dd);
      break;
    }
    case QW_OP_local_get:
      x = in->a;
      if (live) qw__tr_push(c, K_LOCAL, c->lmap ? c->lmap[x] : x, 0);
      break;
    case QW_OP_local_set:
    case QW_OP_local_tee:
      x = in->a;
      if (live) qw__tr_local_set(c, c->lmap ? c->lmap[x] : x, op == QW_OP_local_tee);
      break;
    case QW_OP_global_get:
      x = in->a;
      if (!live) break;
      E(c, OP_GLOBAL_GET, qw__tr_home(c, c->sp), x);
      qw__tr_push_home(c);
      qw__tr_dst_is(c, c->sp - 1);
      break;
    case QW_OP_global_set:
      x = in->a;
      if (live) qw__tr_sink(c, OP_GLOBAL_SET, 1, x, 0, 1);
      break;
    case QW_OP_table_get:
      x = in->a;
      if (!live) break;
      qw__tr_need_slots(c, 1);
      E(c, OP_TABLE_GET, qw__tr_home(c, c->sp - 1), x, qw__tr_slot_at(c, 1));
      c->sp--;
      qw__tr_push_home(c);
      qw__tr_dst_is(c, c->sp - 1);
      break;
    case QW_OP_table_set:
      x = in->a;
      if (live) qw__tr_sink(c, OP_TABLE_SET, 1, x, 0, 2);
      break;

    case QW_OP_ref_null:
      if (live) qw__tr_push(c, K_CONST, 0, 0);
      break;
    case QW_OP_ref_func:
      x = in->a;
      if (!live) break;
      E(c, OP_REF_FUNC, qw__tr_home(c, c->sp), x);
      qw__tr_push_home(c);
      qw__tr_dst_is(c, c->sp - 1);
      break;

  default: return false;
  }
  return true;
}

/* Memory and tables: loads, stores, size/grow, bulk memory, segments, table ops. */
static bool memory(C *c, const qw_insn *in, bool live) {
  uint32_t op = in->op, x = 0, y = 0;
  switch (op) {
#define LD(W, O)                         \
  case QW_OP_##W:                        \
    if (live) qw__tr_load(c, OP_##O, (uint32_t)in->k);        \
    break;
#define ST(W, O)                         \
  case QW_OP_##W:                        \
    if (live) qw__tr_store(c, OP_##O, (uint32_t)in->k);       \
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
      if (!live) break;
      E(c, OP_MEMORY_SIZE, qw__tr_home(c, c->sp));
      qw__tr_push_home(c);
      qw__tr_dst_is(c, c->sp - 1);
      break;
    case QW_OP_memory_grow:
      if (live) qw__tr_unop(c, OP_MEMORY_GROW);
      break;
    case QW_OP_memory_init:
      x = in->a;
      if (live) qw__tr_sink(c, OP_MEMORY_INIT, 1, x, 0, 3);
      break;
    case QW_OP_data_drop:
      x = in->a;
      if (live) E(c, OP_DATA_DROP, x);
      break;
    case QW_OP_memory_copy:
      if (live) qw__tr_sink(c, OP_MEMORY_COPY, 0, 0, 0, 3);
      break;
    case QW_OP_memory_fill:
      if (live) qw__tr_sink(c, OP_MEMORY_FILL, 0, 0, 0, 3);
      break;
    case QW_OP_table_init:
      x = in->a; /* elem segment */
      y = in->b; /* table */
      if (live) qw__tr_sink(c, OP_TABLE_INIT, 2, y, x, 3);
      break;
    case QW_OP_elem_drop:
      x = in->a;
      if (live) E(c, OP_ELEM_DROP, x);
      break;
    case QW_OP_table_copy:
      x = in->a;
      y = in->b;
      if (live) qw__tr_sink(c, OP_TABLE_COPY, 2, x, y, 3);
      break;
    case QW_OP_table_grow: {
      x = in->a;
      if (!live) break;
      qw__tr_need_slots(c, 2);
      uint32_t dd = c->sp - 2;
      E(c, OP_TABLE_GROW, qw__tr_home(c, dd), x, c->st[dd].slot, c->st[dd + 1].slot);
      c->sp -= 2;
      qw__tr_push_home(c);
      qw__tr_dst_is(c, dd);
      break;
    }
    case QW_OP_table_size:
      x = in->a;
      if (!live) break;
      E(c, OP_TABLE_SIZE, qw__tr_home(c, c->sp), x);
      qw__tr_push_home(c);
      qw__tr_dst_is(c, c->sp - 1);
      break;
    case QW_OP_table_fill:
      x = in->a;
      if (live) qw__tr_sink(c, OP_TABLE_FILL, 1, x, 0, 3);
      break;
  default: return false;
  }
  (void)y;
  return true;
}

/* Numbers: constants, arithmetic, comparisons, conversions (and their immediate forms). */
static bool numeric(C *c, const qw_insn *in, bool live) {
  uint32_t op = in->op;
  switch (op) {
    case QW_OP_i32_const:
      if (live) qw__tr_push(c, K_CONST, 0, (uint32_t)in->k);
      break;
    case QW_OP_i64_const:
    case QW_OP_f32_const: /* bits, zero-extended */
    case QW_OP_f64_const:
      if (live) qw__tr_push(c, K_CONST, 0, in->k);
      break;
#define UN(W, O)                \
  case QW_OP_##W:               \
    if (live) qw__tr_unop(c, OP_##O);  \
    break;
#define BIN(W, O, WIDE)                       \
  case QW_OP_##W:                             \
    if (live) qw__tr_binop(c, OP_##O, 0, 0, WIDE);   \
    break;
#define BINI(W, O, REV, WIDE)                                      \
  case QW_OP_##W:                                                  \
    if (live) qw__tr_binop(c, OP_##O, OP_##O##_I, REV, WIDE);             \
    break;
#define CMPI(W, O, BASE, IBASE, WIDE)                                                              \
  case QW_OP_##W:                                                                                  \
    if (live)                                                                                      \
      qw__tr_binop(c, OP_##O, OP_##O##_I, OP_##IBASE + qw__tr_rev10[OP_##O - OP_##BASE], WIDE);    \
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
      if (live) qw__tr_binop_m(c, OP_I32_ADD, OP_I32_ADD_I, OP_I32_ADD_I, false, OP_I32_ADD_M,
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
      if (live) qw__tr_binop_m(c, OP_I64_ADD, OP_I64_ADD_I, OP_I64_ADD_I, true, OP_I64_ADD_M,
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
    if (live) qw__tr_binop_m(c, OP_##O, 0, 0, false, OP_##O##_M, OP_##LD, COMM);  \
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

  default: return false;
  }
  return true;
}

/* Translate instructions from P until the ctl stack is back to STOP entries. Decoding is
** insn.c's (wasm_backend.h), shared with the JIT; a body that does not decode was not
** validated, which is QB_INTERNAL here. */
static qb_code body(C *c, const uint8_t *p, const uint8_t *end, uint32_t stop, qb_err *err) {
  const qw_module *m = c->m;
  qw_insn in;
  while (p < end && c->csp > stop && !c->oom) {
    if (!qw_insn_next(&p, end, m->bytes, &in))
      return qb_fail(err, QB_INTERNAL, "compile: function %u: undecodable at 0x%x", c->fidx,
                     (uint32_t)(p - m->bytes));
    c->wofs = in.offset;
    bool live = !c->cs[c->csp - 1].dead;
    qb_code rc = QB_OK;
    if (control(c, &in, end, live) || calls(c, &in, live, &rc, err) ||
        variables(c, &in, live) || memory(c, &in, live) || numeric(c, &in, live)) {
      if (rc) return rc;
      continue;
    }
    return qb_fail(err, QB_INTERNAL, "compile: function %u: unexpected opcode 0x%x at 0x%x",
                   c->fidx, in.op, c->wofs);
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
