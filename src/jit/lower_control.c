/* lower_control.c: structured control flow, locals, globals, select and drop -> IR. Each
** frame's label values travel through allocas (lvals/rvals): a branch stores the top values
** into the target's allocas and jumps; the frame's end block reloads them, so no phi is built
** by hand (SROA makes them). Loop back-edges pay the budget check (fuel + interrupt) exactly
** where the interpreter does: on a taken branch to a loop label.
** Invariant: after an instruction that ends control (br, br_table, return, unreachable) the
** frame is marked dead and lower_func.c skips to its else/end; the builder is never used in
** between, and every block left without a terminator gets `unreachable` at the end. */
#include <string.h>

#include "internal.h"

static qj__ctrl *push_ctrl(qj__lower *L, uint8_t kind, uint32_t np, const uint8_t *params,
                           uint32_t nr, const uint8_t *results) {
  if (L->nctl == L->ctlcap) {
    uint32_t nc = L->ctlcap ? 2 * L->ctlcap : 16;
    qj__ctrl *c = qb_realloc(L->ctl, L->ctlcap * sizeof *c, nc * sizeof *c);
    if (!c) {
      L->oom = true;
      return NULL;
    }
    memset(c + L->ctlcap, 0, (nc - L->ctlcap) * sizeof *c);
    L->ctl = c, L->ctlcap = nc;
  }
  qj__ctrl *c = &L->ctl[L->nctl];
  uint32_t need = 2 * (np + nr) + 1;
  if (c->vcap < need) {
    qb_free(c->vals, c->vcap * sizeof(LLVMValueRef));
    c->vals = qb_malloc(need * sizeof(LLVMValueRef));
    c->vcap = c->vals ? need : 0;
    if (!c->vals) {
      L->oom = true;
      return NULL;
    }
  }
  L->nctl++;
  c->kind = kind;
  c->dead = false;
  c->nparams = np, c->params = params;
  c->nresults = nr, c->results = results;
  c->height = L->sp >= np ? L->sp - np : 0;
  c->rvals = c->vals;
  for (uint32_t i = 0; i < nr; i++) c->rvals[i] = qj__alloca(L, qj__vtype(L, results[i]), "res");
  if (kind == QJ_LOOP) {
    c->lvals = c->vals + nr;
    for (uint32_t i = 0; i < np; i++) c->lvals[i] = qj__alloca(L, qj__vtype(L, params[i]), "lp");
  } else {
    c->lvals = c->rvals;
  }
  c->pvals = c->vals + nr + np;
  for (uint32_t i = 0; i < np; i++) c->pvals[i] = L->stack[c->height + i];
  c->els = NULL;
  c->end = qj__block(L, "end");
  c->label = c->end;
  return c;
}

static uint32_t arity(const qj__ctrl *c) { return c->kind == QJ_LOOP ? c->nparams : c->nresults; }

/* store the top N stack values (not popped) into VALS */
static void store_top(qj__lower *L, LLVMValueRef *vals, uint32_t n) {
  for (uint32_t i = 0; i < n && L->sp >= n; i++)
    LLVMBuildStore(L->b, L->stack[L->sp - n + i], vals[i]);
}

/* a taken branch to C: values, the budget for a back-edge, the jump */
static void branch(qj__lower *L, qj__ctrl *c) {
  store_top(L, c->lvals, arity(c));
  if (c->kind == QJ_LOOP) qj__budget(L);
  LLVMBuildBr(L->b, c->label);
}

/* [] -> [t]: the result list is one byte of this table (stable, unlike any frame) */
static const uint8_t value_types[256] = {
    [QW_I32] = QW_I32, [QW_I64] = QW_I64, [QW_F32] = QW_F32, [QW_F64] = QW_F64,
    [QW_V128] = QW_V128, [QW_FUNCREF] = QW_FUNCREF, [QW_EXTERNREF] = QW_EXTERNREF};

static void block_type(qj__lower *L, int64_t bt, uint32_t *np, const uint8_t **ps, uint32_t *nr,
                       const uint8_t **rs) {
  *np = 0, *nr = 0, *ps = NULL, *rs = NULL;
  if (bt == -64) return;
  if (bt < 0) {
    *nr = 1, *rs = &value_types[(uint8_t)(bt + 256)];
    return;
  }
  qw_bfunctype t = qw_bmod_type(L->m, (uint32_t)bt);
  *np = t.nparams, *ps = t.params, *nr = t.nresults, *rs = t.results;
}

void qj__func_begin(qj__lower *L) {
  qj__ctrl *c = push_ctrl(L, QJ_FUNC, 0, NULL, L->ft.nresults, L->ft.results);
  (void)c;
}

static void end_frame(qj__lower *L) {
  qj__ctrl *c = &L->ctl[L->nctl - 1];
  if (!c->dead) {
    store_top(L, c->rvals, c->nresults);
    LLVMBuildBr(L->b, c->end);
  }
  if (c->kind == QJ_IF && c->els) { /* no else arm: the params are the results */
    LLVMPositionBuilderAtEnd(L->b, c->els);
    for (uint32_t i = 0; i < c->nresults && i < c->nparams; i++)
      LLVMBuildStore(L->b, c->pvals[i], c->rvals[i]);
    LLVMBuildBr(L->b, c->end);
  }
  L->sp = c->height;
  LLVMPositionBuilderAtEnd(L->b, c->end);
  LLVMValueRef r[c->nresults + 1];
  for (uint32_t i = 0; i < c->nresults; i++)
    r[i] = LLVMBuildLoad2(L->b, qj__vtype(L, c->results[i]), c->rvals[i], "");
  L->nctl--;
  if (c->kind == QJ_FUNC) {
    if (!L->nocheck) qj__sync_out(L); /* a qj_g<D>'s counter goes back after the whole loop */
    if (c->nresults == 0) LLVMBuildRetVoid(L->b);
    else if (c->nresults == 1) LLVMBuildRet(L->b, r[0]);
    else LLVMBuildAggregateRet(L->b, r, c->nresults);
    /* every block left open (dead code after traps) ends in `unreachable` */
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(L->fn); bb; bb = LLVMGetNextBasicBlock(bb))
      if (!LLVMGetBasicBlockTerminator(bb)) {
        LLVMPositionBuilderAtEnd(L->b, bb);
        LLVMBuildUnreachable(L->b);
      }
    return;
  }
  for (uint32_t i = 0; i < c->nresults; i++) qj__push(L, r[i], c->results[i]);
}

LLVMValueRef qj__from_cell(qj__lower *L, LLVMValueRef v, uint8_t t) {
  switch (t) {
  case QW_I32: return LLVMBuildTrunc(L->b, v, L->i32, "");
  case QW_F32: return LLVMBuildBitCast(L->b, LLVMBuildTrunc(L->b, v, L->i32, ""), L->f32, "");
  case QW_F64: return LLVMBuildBitCast(L->b, v, L->f64, "");
  default: return v;
  }
}

LLVMValueRef qj__to_cell(qj__lower *L, LLVMValueRef v, uint8_t t) {
  switch (t) {
  case QW_I32: return LLVMBuildZExt(L->b, v, L->i64, "");
  case QW_F32: return LLVMBuildZExt(L->b, LLVMBuildBitCast(L->b, v, L->i32, ""), L->i64, "");
  case QW_F64: return LLVMBuildBitCast(L->b, v, L->i64, "");
  default: return v;
  }
}

static LLVMValueRef global_cell(qj__lower *L, uint32_t g) {
  LLVMValueRef idx = qj__i64(L, g);
  LLVMValueRef slot = LLVMBuildGEP2(L->b, L->ptr, L->globals, &idx, 1, "");
  return LLVMBuildLoad2(L->b, L->ptr, slot, "cell");
}

bool qj__lower_control(qj__lower *L, const qw_insn *in, const uint8_t *end) {
  qj__ctrl *c = L->nctl ? &L->ctl[L->nctl - 1] : NULL;
  switch (in->op) {
  case 0x00: /* unreachable */
    qj__trap(L, QW_BT_UNREACHABLE);
    c->dead = true;
    return true;
  case 0x01: return true; /* nop */
  case 0x02:              /* block */
  case 0x03:              /* loop */
  case 0x04: {            /* if */
    uint32_t np, nr;
    const uint8_t *ps, *rs;
    LLVMValueRef cond = in->op == 0x04 ? qj__pop(L) : NULL;
    block_type(L, in->bt, &np, &ps, &nr, &rs);
    qj__ctrl *n = push_ctrl(L, in->op == 0x02 ? QJ_BLOCK : in->op == 0x03 ? QJ_LOOP : QJ_IF, np,
                            ps, nr, rs);
    if (!n) return true;
    if (in->op == 0x03) {
      LLVMBasicBlockRef head = qj__block(L, "loop");
      store_top(L, n->lvals, np);
      LLVMBuildBr(L->b, head);
      LLVMPositionBuilderAtEnd(L->b, head);
      L->sp = n->height;
      for (uint32_t i = 0; i < np; i++)
        qj__push(L, LLVMBuildLoad2(L->b, qj__vtype(L, ps[i]), n->lvals[i], ""), ps[i]);
      n->label = head;
    } else if (in->op == 0x04) {
      LLVMBasicBlockRef then = qj__block(L, "then");
      n->els = qj__block(L, "else");
      LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntNE, cond, qj__i32(L, 0), ""), then,
                      n->els);
      LLVMPositionBuilderAtEnd(L->b, then);
    }
    return true;
  }
  case 0x05: /* else */
    if (!c->dead) {
      store_top(L, c->rvals, c->nresults);
      LLVMBuildBr(L->b, c->end);
    }
    LLVMPositionBuilderAtEnd(L->b, c->els);
    c->els = NULL;
    c->dead = false;
    L->sp = c->height;
    for (uint32_t i = 0; i < c->nparams; i++) qj__push(L, c->pvals[i], c->params[i]);
    return true;
  case 0x0b: end_frame(L); return true;
  case 0x0c: /* br */
    branch(L, &L->ctl[L->nctl - 1 - in->a]);
    c->dead = true;
    return true;
  case 0x0d: { /* br_if */
    qj__ctrl *t = &L->ctl[L->nctl - 1 - in->a];
    LLVMValueRef cond = LLVMBuildICmp(L->b, LLVMIntNE, qj__pop(L), qj__i32(L, 0), "");
    LLVMBasicBlockRef cont = qj__block(L, "cont");
    if (!arity(t) && t->kind != QJ_LOOP) {
      LLVMBuildCondBr(L->b, cond, t->label, cont);
    } else {
      LLVMBasicBlockRef take = qj__block(L, "take");
      LLVMBuildCondBr(L->b, cond, take, cont);
      LLVMPositionBuilderAtEnd(L->b, take);
      branch(L, t);
    }
    LLVMPositionBuilderAtEnd(L->b, cont);
    return true;
  }
  case 0x0e: { /* br_table */
    LLVMValueRef idx = qj__pop(L);
    uint32_t n = in->a;
    LLVMBasicBlockRef here = LLVMGetInsertBlock(L->b);
    LLVMBasicBlockRef *by_depth = qb_calloc(L->nctl, sizeof *by_depth);
    if (!by_depth) {
      L->oom = true;
      return true;
    }
    uint32_t dd = qw_insn_br_target(in, end, n);
    LLVMBasicBlockRef dflt = by_depth[dd] = qj__block(L, "brt");
    LLVMValueRef sw = LLVMBuildSwitch(L->b, idx, dflt, n);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t d = qw_insn_br_target(in, end, i);
      if (!by_depth[d]) by_depth[d] = qj__block(L, "brt");
      LLVMAddCase(sw, qj__i32(L, i), by_depth[d]);
    }
    for (uint32_t d = 0; d < L->nctl; d++) {
      if (!by_depth[d]) continue;
      LLVMPositionBuilderAtEnd(L->b, by_depth[d]);
      branch(L, &L->ctl[L->nctl - 1 - d]);
    }
    (void)here;
    qb_free(by_depth, L->nctl * sizeof *by_depth);
    c->dead = true;
    return true;
  }
  case 0x0f: /* return */
    branch(L, &L->ctl[0]);
    c->dead = true;
    return true;
  case 0x1a: { /* drop; with guard pages a dropped load still has to fault (LLVM would delete it) */
    LLVMValueRef v = qj__pop(L);
    if (L->guard && (LLVMIsAZExtInst(v) || LLVMIsASExtInst(v))) v = LLVMGetOperand(v, 0);
    if (L->guard && LLVMIsALoadInst(v)) LLVMSetVolatile(v, 1);
    return true;
  }
  case 0x1b:                           /* select */
  case 0x1c: {                         /* select t */
    LLVMValueRef cond = qj__pop(L), b = qj__pop(L);
    uint8_t t = L->stypes[L->sp - 1];
    LLVMValueRef a = qj__pop(L);
    cond = LLVMBuildICmp(L->b, LLVMIntNE, cond, qj__i32(L, 0), "");
    qj__push(L, LLVMBuildSelect(L->b, cond, a, b, ""), t);
    return true;
  }
  case 0x20: /* local.get */
    qj__push(L, LLVMBuildLoad2(L->b, qj__vtype(L, L->local_types[in->a]), L->locals[in->a], ""),
             L->local_types[in->a]);
    return true;
  case 0x21: LLVMBuildStore(L->b, qj__pop(L), L->locals[in->a]); return true;
  case 0x22: LLVMBuildStore(L->b, L->stack[L->sp - 1], L->locals[in->a]); return true;
  case 0x23: { /* global.get */
    uint8_t t = qw_bmod_global(L->m, in->a, NULL);
    LLVMValueRef v = LLVMBuildLoad2(L->b, L->i64, global_cell(L, in->a), "");
    qj__push(L, qj__from_cell(L, v, t), t);
    return true;
  }
  case 0x24: { /* global.set */
    uint8_t t = qw_bmod_global(L->m, in->a, NULL);
    LLVMValueRef v = qj__pop(L);
    LLVMBuildStore(L->b, qj__to_cell(L, v, t), global_cell(L, in->a));
    return true;
  }
  }
  return false;
}
