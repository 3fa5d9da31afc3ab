/* lower_call.c: calls -> IR, the budget check, and each function's entry wrapper. A call to a
** function of the module is a direct LLVM call (native to native, arguments in registers),
** after the interpreter's checks: call depth (env->depth_left) and one unit of fuel plus the
** interrupt flag. Imports and call_indirect go through the runtime (qw_rt_call*), which finds
** the callee's tier through its entry slot and charges fuel as the interpreter's call_out.
** Invariant: fuel is written to env before anything that can read it (calls, traps) and read
** back after calls; the native stack is checked at every function's entry (lower_func.c). */
#include <stddef.h>
#include <stdio.h>

#include "internal.h"

void qj__budget(qj__lower *L) {
  LLVMValueRef f = LLVMBuildSub(L->b, LLVMBuildLoad2(L->b, L->i64, L->fuel, ""), qj__i64(L, 1), "");
  LLVMBuildStore(L->b, f, L->fuel);
  LLVMValueRef intr = LLVMBuildLoad2(L->b, L->i32, L->interrupt, "intr");
  LLVMSetOrdering(intr, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(intr, 4);
  LLVMValueRef bad = LLVMBuildOr(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, f, qj__i64(L, 0), ""),
                                 LLVMBuildICmp(L->b, LLVMIntNE, intr, qj__i32(L, 0), ""), "");
  LLVMBasicBlockRef slow = qj__block(L, "budget"), ok = qj__block(L, "go");
  LLVMBuildCondBr(L->b, bad, slow, ok);
  LLVMPositionBuilderAtEnd(L->b, slow);
  qj__sync_out(L);
  LLVMValueRef a[3] = {L->env, qj__i32(L, L->func_index), qj__i32(L, L->off)};
  qj__call_rt(L, QJ_RT_BUDGET, a, 3);
  LLVMBuildUnreachable(L->b);
  LLVMPositionBuilderAtEnd(L->b, ok);
}

static void push_results(qj__lower *L, LLVMValueRef r, qw_bfunctype t) {
  if (t.nresults == 1) qj__push(L, r, t.results[0]);
  else
    for (uint32_t i = 0; i < t.nresults; i++)
      qj__push(L, LLVMBuildExtractValue(L->b, r, i, ""), t.results[i]);
}

static void call_direct(qj__lower *L, uint32_t d) {
  qw_bfunctype t = qw_bmod_type(L->m, qw_bmod_func(L->m, d).type_idx);
  LLVMValueRef args[t.nparams + 1];
  args[0] = L->env;
  for (uint32_t i = t.nparams; i > 0; i--) args[i] = qj__pop(L);
  LLVMValueRef dp = LLVMBuildGEP2(L->b, L->i8, L->env,
                                  &(LLVMValueRef){qj__i64(L, offsetof(qw_native_env, depth_left))},
                                  1, "");
  LLVMValueRef depth = LLVMBuildLoad2(L->b, L->i64, dp, "depth");
  qj__trap_if(L, LLVMBuildICmp(L->b, LLVMIntSLE, depth, qj__i64(L, 0), ""), QW_BT_STACK_EXHAUSTED);
  qj__budget(L);
  LLVMBuildStore(L->b, LLVMBuildSub(L->b, depth, qj__i64(L, 1), ""), dp);
  qj__sync_out(L);
  LLVMValueRef r = LLVMBuildCall2(L->b, L->fn_tys[d], L->fns[d], args, t.nparams + 1, "");
  LLVMBuildStore(L->b, depth, dp);
  qj__sync_in(L);
  push_results(L, r, t);
}

/* through the runtime: arguments and results in a slot buffer */
static void call_rt(qj__lower *L, qw_bfunctype t, int id, LLVMValueRef *lead, unsigned nlead) {
  uint32_t n = t.nparams > t.nresults ? t.nparams : t.nresults;
  LLVMValueRef buf = qj__alloca(L, LLVMArrayType(L->i64, n ? n : 1), "slots");
  LLVMValueRef elem = nlead == 3 ? lead[2] : NULL; /* call_indirect: the element index is on top */
  if (elem) lead[2] = qj__pop(L);
  for (uint32_t i = t.nparams; i > 0; i--) {
    LLVMValueRef v = qj__pop(L), idx = qj__i64(L, i - 1);
    LLVMBuildStore(L->b, qj__to_cell(L, v, t.params[i - 1]),
                   LLVMBuildGEP2(L->b, L->i64, buf, &idx, 1, ""));
  }
  LLVMValueRef args[8];
  unsigned k = 0;
  args[k++] = L->env;
  for (unsigned i = 0; i < nlead; i++) args[k++] = lead[i];
  args[k++] = buf;
  args[k++] = qj__i32(L, L->func_index);
  args[k++] = qj__i32(L, L->off);
  qj__sync_out(L);
  qj__call_rt(L, id, args, k);
  qj__sync_in(L);
  for (uint32_t i = 0; i < t.nresults; i++) {
    LLVMValueRef idx = qj__i64(L, i);
    LLVMValueRef v = LLVMBuildLoad2(L->b, L->i64, LLVMBuildGEP2(L->b, L->i64, buf, &idx, 1, ""), "");
    qj__push(L, qj__from_cell(L, v, t.results[i]), t.results[i]);
  }
}

bool qj__lower_call(qj__lower *L, const qw_insn *in) {
  if (in->op == 0x10) {
    if (in->a >= L->n.nfunc_imports) {
      call_direct(L, in->a - L->n.nfunc_imports);
    } else {
      LLVMValueRef lead[1] = {qj__i32(L, in->a)};
      call_rt(L, qw_bmod_type(L->m, qw_bmod_func_type(L->m, in->a)), QJ_RT_CALL, lead, 1);
    }
    return true;
  }
  if (in->op == 0x11) { /* call_indirect type table */
    LLVMValueRef lead[3] = {qj__i32(L, in->b), qj__i32(L, in->a), qj__i32(L, 0)};
    call_rt(L, qw_bmod_type(L->m, in->a), QJ_RT_CALL_INDIRECT, lead, 3);
    return true;
  }
  return false;
}

void qj__emit_entry(qj__lower *L, uint32_t d) {
  char name[32];
  snprintf(name, sizeof name, "qj_e%u", d);
  LLVMTypeRef pt[2] = {L->ptr, L->ptr};
  LLVMTypeRef ety = LLVMFunctionType(L->vd, pt, 2, 0);
  LLVMValueRef e = LLVMAddFunction(L->mod, name, ety);
  qw_bfunctype t = qw_bmod_type(L->m, qw_bmod_func(L->m, d).type_idx);
  LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(L->cx, e, "entry");
  LLVMPositionBuilderAtEnd(L->b, bb);
  LLVMValueRef env = LLVMGetParam(e, 0), slots = LLVMGetParam(e, 1);
  LLVMValueRef args[t.nparams + 1];
  args[0] = env;
  for (uint32_t i = 0; i < t.nparams; i++) {
    LLVMValueRef idx = qj__i64(L, i);
    LLVMValueRef v = LLVMBuildLoad2(L->b, L->i64, LLVMBuildGEP2(L->b, L->i64, slots, &idx, 1, ""), "");
    args[i + 1] = qj__from_cell(L, v, t.params[i]);
  }
  LLVMValueRef r = LLVMBuildCall2(L->b, L->fn_tys[d], L->fns[d], args, t.nparams + 1, "");
  for (uint32_t i = 0; i < t.nresults; i++) {
    LLVMValueRef v = t.nresults == 1 ? r : LLVMBuildExtractValue(L->b, r, i, "");
    LLVMValueRef idx = qj__i64(L, i);
    LLVMBuildStore(L->b, qj__to_cell(L, v, t.results[i]),
                   LLVMBuildGEP2(L->b, L->i64, slots, &idx, 1, ""));
  }
  LLVMBuildRetVoid(L->b);
}

/* The block driver of export function D (one result, numeric params): `qj_b<D>(env, slots)`
** with slots[0] = n, slots[1] = the argument columns (nparams pointers to n 64-bit cells),
** slots[2] = the n result cells. Document i does what one call through the entry does, in the
** same order: one unit of fuel and the interrupt flag as qw__invoke charges before entering
** (a trap there is placed at the callee's entry), then qj_f<D> inlined, its result as a cell.
** A trap stops the block: the documents before it have their results. */
void qj__emit_block(qj__lower *L, uint32_t d) {
  char name[32];
  snprintf(name, sizeof name, "qj_b%u", d);
  qw_bfunc bf = qw_bmod_func(L->m, d);
  qw_bfunctype t = qw_bmod_type(L->m, bf.type_idx);
  LLVMTypeRef pt[2] = {L->ptr, L->ptr};
  LLVMValueRef e = LLVMAddFunction(L->mod, name, LLVMFunctionType(L->vd, pt, 2, 0));
  LLVMValueRef env = LLVMGetParam(e, 0), slots = LLVMGetParam(e, 1);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->cx, e, "entry");
  LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(L->cx, e, "doc");
  LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(L->cx, e, "budget");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(L->cx, e, "call");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->cx, e, "done");
  LLVMPositionBuilderAtEnd(L->b, entry);
  LLVMValueRef n = LLVMBuildLoad2(L->b, L->i64, slots, "n");
  LLVMValueRef one = qj__i64(L, 1), two = qj__i64(L, 2);
  LLVMValueRef cols = LLVMBuildLoad2(L->b, L->ptr, LLVMBuildGEP2(L->b, L->i64, slots, &one, 1, ""), "");
  LLVMValueRef res = LLVMBuildLoad2(L->b, L->ptr, LLVMBuildGEP2(L->b, L->i64, slots, &two, 1, ""), "");
  LLVMValueRef col[t.nparams + 1];
  for (uint32_t k = 0; k < t.nparams; k++) {
    LLVMValueRef ki = qj__i64(L, k);
    col[k] = LLVMBuildLoad2(L->b, L->ptr, LLVMBuildGEP2(L->b, L->ptr, cols, &ki, 1, ""), "");
  }
  LLVMValueRef interrupt = LLVMBuildLoad2(
      L->b, L->ptr,
      LLVMBuildGEP2(L->b, L->i8, env, &(LLVMValueRef){qj__i64(L, offsetof(qw_native_env, interrupt))}, 1, ""),
      "");
  LLVMValueRef fuelp =
      LLVMBuildGEP2(L->b, L->i8, env, &(LLVMValueRef){qj__i64(L, offsetof(qw_native_env, fuel))}, 1, "");
  LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, n, qj__i64(L, 0), ""), done, loop);
  LLVMPositionBuilderAtEnd(L->b, loop);
  LLVMValueRef i = LLVMBuildPhi(L->b, L->i64, "i");
  LLVMValueRef f = LLVMBuildSub(L->b, LLVMBuildLoad2(L->b, L->i64, fuelp, ""), one, "");
  LLVMBuildStore(L->b, f, fuelp);
  LLVMValueRef intr = LLVMBuildLoad2(L->b, L->i32, interrupt, "intr");
  LLVMSetOrdering(intr, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(intr, 4);
  LLVMBuildCondBr(L->b,
                  LLVMBuildOr(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, f, qj__i64(L, 0), ""),
                              LLVMBuildICmp(L->b, LLVMIntNE, intr, qj__i32(L, 0), ""), ""),
                  slow, body);
  LLVMPositionBuilderAtEnd(L->b, slow);
  LLVMValueRef a[3] = {env, qj__i32(L, L->n.nfunc_imports + d), qj__i32(L, bf.body_offset)};
  qj__call_rt(L, QJ_RT_BUDGET, a, 3);
  LLVMBuildUnreachable(L->b);
  LLVMPositionBuilderAtEnd(L->b, body);
  LLVMValueRef args[t.nparams + 1];
  args[0] = env;
  for (uint32_t k = 0; k < t.nparams; k++) {
    LLVMValueRef v = LLVMBuildLoad2(L->b, L->i64, LLVMBuildGEP2(L->b, L->i64, col[k], &i, 1, ""), "");
    args[k + 1] = qj__from_cell(L, v, t.params[k]);
  }
  LLVMValueRef r = LLVMBuildCall2(L->b, L->fn_tys[d], L->fns[d], args, t.nparams + 1, "");
  unsigned ai = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
  LLVMAddCallSiteAttribute(r, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->cx, ai, 0));
  LLVMBuildStore(L->b, qj__to_cell(L, r, t.results[0]), LLVMBuildGEP2(L->b, L->i64, res, &i, 1, ""));
  LLVMValueRef next = LLVMBuildAdd(L->b, i, one, "");
  LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntULT, next, n, ""), loop, done);
  LLVMValueRef zero = qj__i64(L, 0);
  LLVMBasicBlockRef from[2] = {entry, body};
  LLVMValueRef vals[2] = {zero, next};
  LLVMAddIncoming(i, vals, from, 2);
  LLVMPositionBuilderAtEnd(L->b, done);
  LLVMBuildRetVoid(L->b);
}
