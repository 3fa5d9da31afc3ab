/* lower_call.c: calls -> IR, the budget check, and each function's entry wrapper. A call to a
** function of the module is a direct LLVM call (native to native, arguments in registers),
** after the interpreter's checks: call depth (env->depth_left) and one unit of fuel plus the
** interrupt flag; none for a small leaf the interpreter inlines (qw_bmod_call_free), which it
** charges nothing. Imports and call_indirect go through the runtime (qw_rt_call*), which finds
** the callee's tier through its entry slot and charges fuel as the interpreter's call_out.
** Invariant: fuel is written to env before anything that can read it (calls, traps) and read
** back after calls; the native stack is checked at every function's entry (lower_func.c). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

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
  /* a small leaf the interpreter inlines: its call pays no fuel and takes no depth there */
  bool free_call = qw_bmod_call_free(L->m, L->n.nfunc_imports + d);
  if (L->nocheck) { /* check-free: the unit is counted, the driver checked the bounds */
    LLVMValueRef ga[t.nparams + 2];
    memcpy(ga, args, sizeof args);
    ga[t.nparams + 1] = L->gfuel;
    if (!free_call)
      LLVMBuildStore(L->b, LLVMBuildSub(L->b, LLVMBuildLoad2(L->b, L->i64, L->gfuel, ""),
                                        qj__i64(L, 1), ""), L->gfuel);
    push_results(L, LLVMBuildCall2(L->b, L->gfn_tys[d], L->gfns[d], ga, t.nparams + 2, ""), t);
    return;
  }
  if (free_call) {
    qj__sync_out(L);
    LLVMValueRef r = LLVMBuildCall2(L->b, L->fn_tys[d], L->fns[d], args, t.nparams + 1, "");
    qj__sync_in(L);
    push_results(L, r, t);
    return;
  }
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

/* The check-free loop of driver D: `i64 qj_c<D>(env, i64 n, ptr noalias res, i64 fuel, ptr
** col...)` runs qj_g<D> for documents 0..n-1 and returns the fuel left, charged as the checked
** loop charges it (1 per document, 1 per call taken inside qj_g). The caller checked that
** nothing can trap or run out and that RES overlaps no column. */
static LLVMValueRef emit_fast_loop(qj__lower *L, uint32_t d, qw_bfunctype t) {
  char name[32];
  snprintf(name, sizeof name, "qj_c%u", d);
  LLVMTypeRef pt[t.nparams + 4];
  pt[0] = L->ptr, pt[1] = L->i64, pt[2] = L->ptr, pt[3] = L->i64;
  for (uint32_t k = 0; k < t.nparams; k++) pt[4 + k] = L->ptr;
  LLVMValueRef fn = LLVMAddFunction(L->mod, name, LLVMFunctionType(L->i64, pt, t.nparams + 4, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
  LLVMAddAttributeAtIndex(fn, 3, LLVMCreateEnumAttribute(L->cx, na, 0)); /* res (1-based) */
  /* kept out of line: inlined, the noalias becomes scope metadata that the loop vectorizer's
  ** access analysis does not use for loads of constant tables (a switch's lookup table) */
  unsigned ni = LLVMGetEnumAttributeKindForName("noinline", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->cx, ni, 0));
  LLVMValueRef env = LLVMGetParam(fn, 0), n = LLVMGetParam(fn, 1), res = LLVMGetParam(fn, 2);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->cx, fn, "entry");
  LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(L->cx, fn, "doc");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->cx, fn, "done");
  LLVMPositionBuilderAtEnd(L->b, entry);
  LLVMValueRef cnt = LLVMBuildAlloca(L->b, L->i64, "fuel");
  LLVMBuildStore(L->b, LLVMGetParam(fn, 3), cnt);
  LLVMBuildBr(L->b, loop);
  LLVMPositionBuilderAtEnd(L->b, loop);
  LLVMValueRef i = LLVMBuildPhi(L->b, L->i64, "i"), one = qj__i64(L, 1);
  LLVMValueRef args[t.nparams + 2];
  args[0] = env;
  for (uint32_t k = 0; k < t.nparams; k++) {
    LLVMValueRef v = LLVMBuildLoad2(L->b, L->i64,
                                    LLVMBuildGEP2(L->b, L->i64, LLVMGetParam(fn, 4 + k), &i, 1, ""), "");
    args[k + 1] = qj__from_cell(L, v, t.params[k]);
  }
  args[t.nparams + 1] = cnt;
  LLVMBuildStore(L->b, LLVMBuildSub(L->b, LLVMBuildLoad2(L->b, L->i64, cnt, ""), one, ""), cnt);
  LLVMValueRef r = LLVMBuildCall2(L->b, L->gfn_tys[d], L->gfns[d], args, t.nparams + 2, "");
  unsigned ai = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
  LLVMAddCallSiteAttribute(r, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->cx, ai, 0));
  LLVMBuildStore(L->b, qj__to_cell(L, r, t.results[0]), LLVMBuildGEP2(L->b, L->i64, res, &i, 1, ""));
  LLVMValueRef next = LLVMBuildAdd(L->b, i, one, "");
  LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntULT, next, n, ""), loop, done);
  LLVMBasicBlockRef from[2] = {entry, loop};
  LLVMValueRef vals[2] = {qj__i64(L, 0), next};
  LLVMAddIncoming(i, vals, from, 2);
  LLVMPositionBuilderAtEnd(L->b, done);
  LLVMBuildRet(L->b, LLVMBuildLoad2(L->b, L->i64, cnt, ""));
  return fn;
}

/* The block driver of export function D (one result, numeric params): `qj_b<D>(env, slots)`
** with slots[0] = n, slots[1] = the argument columns (nparams pointers to n 64-bit cells),
** slots[2] = the n result cells. Document i does what one call through the entry does, in the
** same order: one unit of fuel and the interrupt flag as qw__invoke charges before entering
** (a trap there is placed at the callee's entry), then qj_f<D> inlined, its result as a cell.
** A trap stops the block: the documents before it have their results.
** With FAST (blockscan.c found D check-free), the driver first tests, once: the interrupt flag
** clear, fuel >= n * FAST->fuel, depth_left >= FAST->depth and FAST->stack bytes of native
** stack above the floor. Then no document can trap, run out of fuel or depth, and the loop runs
** qj_g<D> (no checks) with the fuel charged in a counter as the checked loop charges it (1 per
** document and per call taken), written back after the loop: results and fuel left are the
** checked loop's. Otherwise the driver stores 1 through the pointer after the columns
** (cols[nparams], which qj_block_call adds) and returns: the block runs in the interpreter; a
** FAST driver has no checked loop. */
void qj__emit_block(qj__lower *L, uint32_t d, const qj_block_bounds *fast) {
  char name[32];
  snprintf(name, sizeof name, "qj_b%u", d);
  qw_bfunc bf = qw_bmod_func(L->m, d);
  qw_bfunctype t = qw_bmod_type(L->m, bf.type_idx);
  LLVMTypeRef pt[2] = {L->ptr, L->ptr};
  LLVMValueRef e = LLVMAddFunction(L->mod, name, LLVMFunctionType(L->vd, pt, 2, 0));
  LLVMValueRef env = LLVMGetParam(e, 0), slots = LLVMGetParam(e, 1);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->cx, e, "entry");
  LLVMBasicBlockRef test = fast ? LLVMAppendBasicBlockInContext(L->cx, e, "test") : NULL;
  LLVMBasicBlockRef floop = fast ? LLVMAppendBasicBlockInContext(L->cx, e, "fdoc") : NULL;
  LLVMBasicBlockRef checked = LLVMAppendBasicBlockInContext(L->cx, e, "checked");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->cx, e, "done");
  LLVMPositionBuilderAtEnd(L->b, entry);
  LLVMValueRef n = LLVMBuildLoad2(L->b, L->i64, slots, "n");
  LLVMValueRef one = qj__i64(L, 1), two = qj__i64(L, 2), zero = qj__i64(L, 0);
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
  LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, n, zero, ""), done, fast ? test : checked);
  if (fast) {
    /* qj_block_checkfree's mark: qj_cf<D>, the fuel bound per document */
    snprintf(name, sizeof name, "qj_cf%u", d);
    LLVMValueRef mark = LLVMAddGlobal(L->mod, L->i64, name);
    LLVMSetInitializer(mark, qj__i64(L, fast->fuel));
    LLVMSetGlobalConstant(mark, 1);
    /* the one test of the block */
    LLVMPositionBuilderAtEnd(L->b, test);
    LLVMValueRef f0 = LLVMBuildLoad2(L->b, L->i64, fuelp, "fuel0");
    LLVMValueRef intr = LLVMBuildLoad2(L->b, L->i32, interrupt, "intr");
    LLVMSetOrdering(intr, LLVMAtomicOrderingMonotonic);
    LLVMSetAlignment(intr, 4);
    LLVMValueRef dp = LLVMBuildGEP2(L->b, L->i8, env,
                                    &(LLVMValueRef){qj__i64(L, offsetof(qw_native_env, depth_left))},
                                    1, "");
    LLVMValueRef depth = LLVMBuildLoad2(L->b, L->i64, dp, "depth");
    LLVMValueRef lim = LLVMBuildLoad2(
        L->b, L->i64,
        LLVMBuildGEP2(L->b, L->i8, env, &(LLVMValueRef){qj__i64(L, offsetof(qw_native_env, cstack_limit))}, 1, ""),
        "floor");
    LLVMValueRef sp = LLVMBuildPtrToInt(L->b, qj__intrinsic(L, "llvm.stacksave", &L->ptr, 1, NULL, 0),
                                        L->i64, "sp");
    /* fuel >= 0 && n <= fuel / per-doc (unsigned), depth_left >= depth, sp - floor >= stack */
    LLVMValueRef okf = LLVMBuildAnd(
        L->b, LLVMBuildICmp(L->b, LLVMIntSGE, f0, zero, ""),
        LLVMBuildICmp(L->b, LLVMIntULE, n, LLVMBuildUDiv(L->b, f0, qj__i64(L, fast->fuel), ""), ""), "");
    LLVMValueRef okd = LLVMBuildICmp(L->b, LLVMIntSGE, depth, qj__i64(L, fast->depth), "");
    LLVMValueRef oks = LLVMBuildAnd(
        L->b, LLVMBuildICmp(L->b, LLVMIntUGE, sp, lim, ""),
        LLVMBuildICmp(L->b, LLVMIntUGE, LLVMBuildSub(L->b, sp, lim, ""), qj__i64(L, fast->stack), ""), "");
    LLVMValueRef go = LLVMBuildAnd(
        L->b, LLVMBuildAnd(L->b, okf, okd, ""),
        LLVMBuildAnd(L->b, oks, LLVMBuildICmp(L->b, LLVMIntEQ, intr, qj__i32(L, 0), ""), ""), "");
    /* res must not overlap a column: qj_c<D> declares it noalias (vectorising needs it) */
    go = LLVMBuildAnd(L->b, go, LLVMBuildICmp(L->b, LLVMIntULE, n, qj__i64(L, 1ull << 32), ""), "");
    LLVMValueRef bytes = LLVMBuildShl(L->b, n, qj__i64(L, 3), "");
    LLVMValueRef r0 = LLVMBuildPtrToInt(L->b, res, L->i64, ""), r1 = LLVMBuildAdd(L->b, r0, bytes, "");
    for (uint32_t k = 0; k < t.nparams; k++) {
      LLVMValueRef c0 = LLVMBuildPtrToInt(L->b, col[k], L->i64, "");
      LLVMValueRef c1 = LLVMBuildAdd(L->b, c0, bytes, "");
      go = LLVMBuildAnd(L->b, go,
                        LLVMBuildOr(L->b, LLVMBuildICmp(L->b, LLVMIntULE, r1, c0, ""),
                                    LLVMBuildICmp(L->b, LLVMIntULE, c1, r0, ""), ""), "");
    }
    LLVMBuildCondBr(L->b, go, floop, checked);
    LLVMPositionBuilderAtEnd(L->b, floop);
    LLVMValueRef fl = emit_fast_loop(L, d, t);
    LLVMValueRef ca[t.nparams + 4];
    ca[0] = env, ca[1] = n, ca[2] = res, ca[3] = f0;
    for (uint32_t k = 0; k < t.nparams; k++) ca[4 + k] = col[k];
    LLVMPositionBuilderAtEnd(L->b, floop);
    LLVMValueRef left = LLVMBuildCall2(L->b, LLVMGlobalGetValueType(fl), fl, ca, t.nparams + 4, "");
    LLVMBuildStore(L->b, left, fuelp);
    LLVMBuildRetVoid(L->b);
    /* a test failed: no checked loop here (it would be a second copy of the export to compile
    ** for a block that is about to run out or be interrupted); the driver sets the flag that
    ** qj_block_call passes after the columns, and the interpreter runs the block */
    LLVMPositionBuilderAtEnd(L->b, checked);
    LLVMValueRef np = qj__i64(L, t.nparams);
    LLVMValueRef flag = LLVMBuildLoad2(L->b, L->ptr, LLVMBuildGEP2(L->b, L->ptr, cols, &np, 1, ""), "");
    LLVMBuildStore(L->b, one, flag);
    LLVMBuildBr(L->b, done);
    LLVMPositionBuilderAtEnd(L->b, done);
    LLVMBuildRetVoid(L->b);
    return;
  }
  LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(L->cx, e, "doc");
  LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(L->cx, e, "budget");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(L->cx, e, "call");
  LLVMPositionBuilderAtEnd(L->b, checked);
  LLVMBuildBr(L->b, loop);
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
  LLVMBasicBlockRef from[2] = {checked, body};
  LLVMValueRef vals[2] = {zero, next};
  LLVMAddIncoming(i, vals, from, 2);
  LLVMPositionBuilderAtEnd(L->b, done);
  LLVMBuildRetVoid(L->b);
}
