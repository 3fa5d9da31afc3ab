/* lower_func.c: module -> LLVM IR, the driver: declares every function, lowers each body
** instruction by instruction through the families (lower_*.c), and keeps the wasm value
** stack as IR values. Invariant: the body was validated, so every pop has a value (outside
** dead code, which is skipped), every index is in range and every frame is closed by `end`;
** a decoding failure here is QB_INTERNAL, never a crash. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

LLVMTypeRef qj__vtype(qj__lower *L, uint8_t t) {
  switch (t) {
  case QW_I32: return L->i32;
  case QW_F32: return L->f32;
  case QW_F64: return L->f64;
  default: return L->i64; /* i64, funcref, externref (pointers as integers) */
  }
}

LLVMValueRef qj__i32(qj__lower *L, uint64_t k) { return LLVMConstInt(L->i32, k, 0); }
LLVMValueRef qj__i64(qj__lower *L, uint64_t k) { return LLVMConstInt(L->i64, k, 0); }

void qj__push(qj__lower *L, LLVMValueRef v, uint8_t t) {
  if (L->sp == L->scap) {
    uint32_t nc = L->scap ? 2 * L->scap : 64;
    LLVMValueRef *s = qb_realloc(L->stack, L->scap * sizeof *s, nc * sizeof *s);
    uint8_t *ty = s ? qb_realloc(L->stypes, L->scap, nc) : NULL;
    if (!s || !ty) {
      if (s) L->stack = s;
      L->oom = true;
      return;
    }
    L->stack = s, L->stypes = ty, L->scap = nc;
  }
  L->stack[L->sp] = v;
  L->stypes[L->sp++] = t;
}

LLVMValueRef qj__pop(qj__lower *L) {
  if (!L->sp) { /* cannot happen in a validated body; keep going with a dummy */
    L->oom = true;
    return qj__i32(L, 0);
  }
  return L->stack[--L->sp];
}

LLVMBasicBlockRef qj__block(qj__lower *L, const char *name) {
  return LLVMAppendBasicBlockInContext(L->cx, L->fn, name);
}

LLVMValueRef qj__alloca(qj__lower *L, LLVMTypeRef t, const char *name) {
  LLVMBuilderRef ab = LLVMCreateBuilderInContext(L->cx);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(L->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(ab, first);
  else LLVMPositionBuilderAtEnd(ab, entry);
  LLVMValueRef a = LLVMBuildAlloca(ab, t, name);
  LLVMDisposeBuilder(ab);
  return a;
}

LLVMValueRef qj__env_field(qj__lower *L, size_t off, LLVMTypeRef t) {
  LLVMValueRef idx = qj__i64(L, off);
  LLVMValueRef p = LLVMBuildGEP2(L->b, L->i8, L->env, &idx, 1, "");
  return LLVMBuildLoad2(L->b, t, p, "");
}

static LLVMValueRef env_ptr(qj__lower *L, size_t off) {
  LLVMValueRef idx = qj__i64(L, off);
  return LLVMBuildGEP2(L->b, L->i8, L->env, &idx, 1, "");
}

void qj__sync_out(qj__lower *L) {
  /* in a qj_g<D> the fuel is the check-free loop's counter (the function's own alloca is
  ** never charged there) */
  LLVMBuildStore(L->b, LLVMBuildLoad2(L->b, L->i64, L->nocheck ? L->gfuel : L->fuel, "fuel"),
                 env_ptr(L, offsetof(qw_native_env, fuel)));
}

void qj__sync_in(qj__lower *L) {
  LLVMBuildStore(L->b, qj__env_field(L, offsetof(qw_native_env, fuel), L->i64), L->fuel);
  LLVMValueRef ms = qj__env_field(L, offsetof(qw_native_env, mem_size), L->ptr);
  LLVMBuildStore(L->b, LLVMBuildLoad2(L->b, L->i64, ms, "msize"), L->msize);
}

LLVMValueRef qj__call_rt(qj__lower *L, int rt, LLVMValueRef *args, unsigned n) {
  if (L->nocheck && rt != QJ_RT_TRAP) L->nocheck_bad = true; /* a trap is fine (blockscan.c) */
  return LLVMBuildCall2(L->b, L->rt_ty[rt], L->rt[rt], args, n, "");
}

void qj__trap(qj__lower *L, uint32_t t) {
  qj__sync_out(L);
  LLVMValueRef a[4] = {L->env, qj__i32(L, t), qj__i32(L, L->func_index), qj__i32(L, L->off)};
  qj__call_rt(L, QJ_RT_TRAP, a, 4);
  LLVMBuildUnreachable(L->b);
  LLVMPositionBuilderAtEnd(L->b, qj__block(L, "dead"));
}

/* One trap block per trap kind and function, entered from every site with the site's offset
** (a phi): a conditional trap costs the site one branch, and the IR stays small. */
void qj__trap_if(qj__lower *L, LLVMValueRef cond, uint32_t t) {
  LLVMBasicBlockRef here = LLVMGetInsertBlock(L->b), ok = qj__block(L, "ok");
  if (!L->trap_bb[t]) {
    L->trap_bb[t] = qj__block(L, "trap");
    LLVMPositionBuilderAtEnd(L->b, L->trap_bb[t]);
    L->trap_at[t] = LLVMBuildPhi(L->b, L->i32, "at");
    qj__sync_out(L);
    LLVMValueRef a[4] = {L->env, qj__i32(L, t), qj__i32(L, L->func_index), L->trap_at[t]};
    qj__call_rt(L, QJ_RT_TRAP, a, 4);
    LLVMBuildUnreachable(L->b);
    LLVMPositionBuilderAtEnd(L->b, here);
  }
  LLVMValueRef at = qj__i32(L, L->off);
  LLVMAddIncoming(L->trap_at[t], &at, &here, 1);
  LLVMBuildCondBr(L->b, cond, L->trap_bb[t], ok);
  LLVMPositionBuilderAtEnd(L->b, ok);
}

LLVMValueRef qj__intrinsic(qj__lower *L, const char *name, LLVMTypeRef *tys, unsigned ntys,
                           LLVMValueRef *args, unsigned nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(L->mod, id, tys, ntys);
  LLVMTypeRef ft = LLVMIntrinsicGetType(L->cx, id, tys, ntys);
  return LLVMBuildCall2(L->b, ft, f, args, nargs, "");
}

/* ---- declarations ---------------------------------------------------------------------------- */

static LLVMTypeRef func_type(qj__lower *L, uint32_t type_idx) {
  qw_bfunctype t = qw_bmod_type(L->m, type_idx);
  LLVMTypeRef ps[t.nparams + 1], ret;
  ps[0] = L->ptr;
  for (uint32_t i = 0; i < t.nparams; i++) ps[i + 1] = qj__vtype(L, t.params[i]);
  if (t.nresults == 0) ret = L->vd;
  else if (t.nresults == 1) ret = qj__vtype(L, t.results[0]);
  else {
    LLVMTypeRef rs[t.nresults];
    for (uint32_t i = 0; i < t.nresults; i++) rs[i] = qj__vtype(L, t.results[i]);
    ret = LLVMStructTypeInContext(L->cx, rs, t.nresults, 0);
  }
  return LLVMFunctionType(ret, ps, t.nparams + 1, 0);
}

static void declare_rt(qj__lower *L) {
  LLVMTypeRef P = L->ptr, I = L->i32, J = L->i64, V = L->vd;
#define RT(id, name, ret, ...)                                                           \
  do {                                                                                   \
    LLVMTypeRef a_[] = {__VA_ARGS__};                                                    \
    L->rt_ty[id] = LLVMFunctionType(ret, a_, sizeof a_ / sizeof a_[0], 0);               \
    L->rt[id] = LLVMAddFunction(L->mod, name, L->rt_ty[id]);                             \
  } while (0)
  RT(QJ_RT_TRAP, "qw_rt_trap", V, P, I, I, I);
  RT(QJ_RT_BUDGET, "qw_rt_budget", V, P, I, I);
  RT(QJ_RT_CALL, "qw_rt_call", V, P, I, P, I, I);
  RT(QJ_RT_CALL_INDIRECT, "qw_rt_call_indirect", V, P, I, I, I, P, I, I);
  RT(QJ_RT_MEMORY_GROW, "qw_rt_memory_grow", I, P, I);
  RT(QJ_RT_MEMORY_FILL, "qw_rt_memory_fill", V, P, I, I, I, I, I);
  RT(QJ_RT_MEMORY_COPY, "qw_rt_memory_copy", V, P, I, I, I, I, I);
  RT(QJ_RT_MEMORY_INIT, "qw_rt_memory_init", V, P, I, I, I, I, I, I);
  RT(QJ_RT_DATA_DROP, "qw_rt_data_drop", V, P, I);
  RT(QJ_RT_TABLE_GET, "qw_rt_table_get", J, P, I, I, I, I);
  RT(QJ_RT_TABLE_SET, "qw_rt_table_set", V, P, I, I, J, I, I);
  RT(QJ_RT_TABLE_SIZE, "qw_rt_table_size", I, P, I);
  RT(QJ_RT_TABLE_GROW, "qw_rt_table_grow", I, P, I, J, I);
  RT(QJ_RT_TABLE_FILL, "qw_rt_table_fill", V, P, I, I, J, I, I, I);
  RT(QJ_RT_TABLE_COPY, "qw_rt_table_copy", V, P, I, I, I, I, I, I, I);
  RT(QJ_RT_TABLE_INIT, "qw_rt_table_init", V, P, I, I, I, I, I, I, I);
  RT(QJ_RT_ELEM_DROP, "qw_rt_elem_drop", V, P, I);
#undef RT
  unsigned noret = LLVMGetEnumAttributeKindForName("noreturn", 8);
  unsigned cold = LLVMGetEnumAttributeKindForName("cold", 4);
  for (int id = QJ_RT_TRAP; id <= QJ_RT_BUDGET; id++) {
    LLVMAddAttributeAtIndex(L->rt[id], LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(L->cx, noret, 0));
    LLVMAddAttributeAtIndex(L->rt[id], LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(L->cx, cold, 0));
  }
}

/* ---- one function ----------------------------------------------------------------------------- */

static qb_code lower_body(qj__lower *L, uint32_t d) {
  L->d = d;
  L->func_index = L->n.nfunc_imports + d;
  L->bf = qw_bmod_func(L->m, d);
  L->ft = qw_bmod_type(L->m, L->bf.type_idx);
  L->fn = L->nocheck ? L->gfns[d] : L->fns[d];
  L->env = LLVMGetParam(L->fn, 0);
  L->gfuel = L->nocheck ? LLVMGetParam(L->fn, L->ft.nparams + 1) : NULL;
  L->sp = 0;
  L->nctl = 0;
  L->off = L->bf.body_offset;
  memset(L->trap_bb, 0, sizeof L->trap_bb);
  memset(L->trap_at, 0, sizeof L->trap_at);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->cx, L->fn, "entry");
  LLVMBasicBlockRef body = qj__block(L, "body");
  LLVMPositionBuilderAtEnd(L->b, entry); /* allocas go in front of this branch */
  LLVMBuildBr(L->b, body);
  LLVMPositionBuilderAtEnd(L->b, body);

  /* locals: params, then the declared ones (zero) */
  L->nlocals = L->ft.nparams + L->bf.nlocals;
  if (L->nlocals + 1 > L->loc_cap) {
    qb_free(L->locals, L->loc_cap * sizeof *L->locals), qb_free(L->local_types, L->loc_cap);
    L->loc_cap = L->nlocals + 1;
    L->locals = qb_malloc(L->loc_cap * sizeof *L->locals);
    L->local_types = qb_malloc(L->loc_cap);
    if (!L->locals || !L->local_types) {
      qb_free(L->locals, L->loc_cap * sizeof *L->locals), qb_free(L->local_types, L->loc_cap);
      L->locals = NULL, L->local_types = NULL, L->loc_cap = 0;
      return qb_fail(L->err, QB_NOMEM, "jit: out of memory");
    }
  }
  for (uint32_t i = 0; i < L->nlocals; i++) {
    uint8_t t = i < L->ft.nparams ? L->ft.params[i] : L->bf.local_types[i - L->ft.nparams];
    L->local_types[i] = t;
    L->locals[i] = qj__alloca(L, qj__vtype(L, t), "");
    LLVMBuildStore(L->b,
                   i < L->ft.nparams ? LLVMGetParam(L->fn, i + 1)
                   : (t == QW_F32 || t == QW_F64) ? qj__opaque_zero(L, qj__vtype(L, t))
                                                  : LLVMConstNull(qj__vtype(L, t)),
                   L->locals[i]);
  }
  L->fuel = qj__alloca(L, L->i64, "fuel");
  L->msize = qj__alloca(L, L->i64, "msize");
  L->mem = qj__env_field(L, offsetof(qw_native_env, mem), L->ptr);
  L->globals = qj__env_field(L, offsetof(qw_native_env, globals), L->ptr);
  L->funcs = qj__env_field(L, offsetof(qw_native_env, funcs), L->ptr);
  L->interrupt = qj__env_field(L, offsetof(qw_native_env, interrupt), L->ptr);
  qj__sync_in(L);
  if (!L->nocheck) { /* the native stack: a frame below the floor traps (recursion through cross-tier calls) */
    LLVMValueRef sp = qj__intrinsic(L, "llvm.stacksave", &L->ptr, 1, NULL, 0);
    LLVMValueRef lim = qj__env_field(L, offsetof(qw_native_env, cstack_limit), L->i64);
    qj__trap_if(L, LLVMBuildICmp(L->b, LLVMIntULT, LLVMBuildPtrToInt(L->b, sp, L->i64, ""), lim, ""),
                QW_BT_STACK_EXHAUSTED);
  }
  qj__func_begin(L);

  const uint8_t *p = L->bf.body, *end = L->bf.body_end, *base = qw_bmod_bytes(L->m, &(size_t){0});
  uint32_t skip = 0; /* nesting depth inside dead code */
  qw_insn in;
  while (L->nctl > 0) {
    if (p >= end || !qw_insn_next(&p, end, base, &in))
      return qb_fail(L->err, QB_INTERNAL, "jit: function %u: cannot decode at 0x%x",
                     L->func_index, (unsigned)(p - base));
    L->off = in.offset;
    if (L->ctl[L->nctl - 1].dead) { /* skip to the else/end that makes code live again */
      if (in.op == 0x02 || in.op == 0x03 || in.op == 0x04) {
        skip++;
        continue;
      }
      if (in.op == 0x0b && skip) {
        skip--;
        continue;
      }
      if (in.op != 0x0b && !(in.op == 0x05 && !skip)) continue;
    }
    if (qj__lower_control(L, &in, end) || qj__lower_numeric(L, &in) ||
        qj__lower_convert(L, &in) || qj__lower_memory(L, &in) || qj__lower_call(L, &in)) {
      if (L->oom) return qb_fail(L->err, QB_NOMEM, "jit: out of memory");
      continue;
    }
    if (in.op >= 0xfd00)
      return qb_fail(L->err, QB_UNAVAILABLE, "jit: function %u: SIMD is not supported",
                     L->func_index);
    return qb_fail(L->err, QB_INTERNAL, "jit: function %u at 0x%x: opcode 0x%x not lowered",
                   L->func_index, in.offset, in.op);
  }
  return QB_OK;
}

/* Block drivers for the exports a UDF can be (one result, numeric params); for those
** blockscan.c finds check-free, the qj_g<D> variants of what they reach, lowered without
** checks, and a check-free loop in the driver. */
static qb_code lower_blocks(qj__lower *L) {
  const qw_module *m = L->m;
  uint32_t nd = L->n.nfuncs - L->n.nfunc_imports, ne = qw_module_export_count(m), nb = 0;
  qb_code rc = QB_OK;
  uint32_t *drv = qb_calloc(ne + 1, sizeof *drv);   /* defined index of each driver */
  qj_block_bounds *bd = qb_calloc(ne + 1, sizeof *bd);
  bool *fast = qb_calloc(ne + 1, sizeof *fast);
  uint8_t *reach = qb_calloc(nd + 1, 1);
  L->gfns = qb_calloc(nd + 1, sizeof *L->gfns);
  L->gfn_tys = qb_calloc(nd + 1, sizeof *L->gfn_tys);
  if (!drv || !bd || !fast || !reach || !L->gfns || !L->gfn_tys) {
    rc = qb_fail(L->err, QB_NOMEM, "jit: out of memory");
    goto out;
  }
  for (uint32_t i = 0; i < ne; i++) {
    qw_port p;
    qw_module_export(m, i, &p);
    if (p.kind != QW_KFUNC || p.index < L->n.nfunc_imports || p.sig.nresults != 1) continue;
    /* the UDF ABI's own exports (qd_alloc, qd_abi_version...) are never run by blocks: a
    ** driver for them would only cost compile time (the entry still serves them) */
    if (!strncmp(p.name, "qd_", 3)) continue;
    bool ok = true;
    for (uint32_t k = 0; k < p.sig.nparams; k++)
      ok = ok && (p.sig.params[k] == QW_I32 || p.sig.params[k] == QW_I64 ||
                  p.sig.params[k] == QW_F32 || p.sig.params[k] == QW_F64);
    uint8_t rt = p.sig.results[0];
    ok = ok && (rt == QW_I32 || rt == QW_I64 || rt == QW_F32 || rt == QW_F64);
    uint32_t d = p.index - L->n.nfunc_imports;
    ok = ok && (L->sel[d] & QJ_SEL_ROOT); /* UDF mode: not one the interpreter runs */
    for (uint32_t j = 0; j < nb && ok; j++) ok = drv[j] != d; /* exported twice */
    if (!ok) continue;
    drv[nb] = d;
    if ((rc = qj__block_scan(m, d, L->guard, &bd[nb], reach, &fast[nb], L->err))) goto out;
    nb++;
  }
  /* the check-free variants: an extra trailing parameter, the fuel counter */
  char name[32];
  for (uint32_t d = 0; d < nd; d++) {
    if (!reach[d]) continue;
    LLVMTypeRef ft = L->fn_tys[d];
    unsigned np = LLVMCountParamTypes(ft);
    LLVMTypeRef ps[np + 1];
    LLVMGetParamTypes(ft, ps);
    ps[np] = L->ptr;
    L->gfn_tys[d] = LLVMFunctionType(LLVMGetReturnType(ft), ps, np + 1, 0);
    snprintf(name, sizeof name, "qj_g%u", d);
    L->gfns[d] = LLVMAddFunction(L->mod, name, L->gfn_tys[d]);
    LLVMSetLinkage(L->gfns[d], LLVMInternalLinkage);
  }
  L->nocheck = true;
  for (uint32_t d = 0; d < nd && !rc; d++)
    if (reach[d]) rc = lower_body(L, d);
  L->nocheck = false;
  if (rc) goto out;
  for (uint32_t j = 0; j < nb; j++) {
    bool f = fast[j] && !L->nocheck_bad;
    if (getenv("QJ_BLOCK_DEBUG"))
      fprintf(stderr, "block: function %u: %s (fuel %llu, depth %llu, stack %llu per document)\n",
              L->n.nfunc_imports + drv[j], f ? "check-free" : "checked",
              (unsigned long long)bd[j].fuel, (unsigned long long)bd[j].depth,
              (unsigned long long)bd[j].stack);
    qj__emit_block(L, drv[j], f ? &bd[j] : NULL);
    L->sel[drv[j]] |= QJ_SEL_DRIVER;
  }
out:
  qb_free(drv, (ne + 1) * sizeof *drv);
  qb_free(bd, (ne + 1) * sizeof *bd);
  qb_free(fast, (ne + 1) * sizeof *fast);
  qb_free(reach, nd + 1);
  return rc;
}

qb_code qj__lower_module(qj__lower *L, const qw_module *m, LLVMContextRef cx, bool guard,
                         const qj_options *opt, qb_err *err) {
  bool udf = opt && opt->udf;
  qb_code rc;
  char name[32];
  memset(L, 0, sizeof *L);
  L->guard = guard;
  L->udf = udf;
  L->only = udf ? opt->export_name : NULL;
  L->m = m;
  L->n = qw_bmod_counts(m);
  L->cx = cx;
  L->err = err;
  L->mod = LLVMModuleCreateWithNameInContext("qj", cx);
  L->b = LLVMCreateBuilderInContext(cx);
  L->i1 = LLVMInt1TypeInContext(cx), L->i8 = LLVMInt8TypeInContext(cx);
  L->i32 = LLVMInt32TypeInContext(cx), L->i64 = LLVMInt64TypeInContext(cx);
  L->f32 = LLVMFloatTypeInContext(cx), L->f64 = LLVMDoubleTypeInContext(cx);
  L->ptr = LLVMPointerTypeInContext(cx, 0), L->vd = LLVMVoidTypeInContext(cx);
  declare_rt(L);
  uint32_t nd = L->n.nfuncs - L->n.nfunc_imports;
  L->fns = qb_calloc(nd + 1, sizeof *L->fns);
  L->fn_tys = qb_calloc(nd + 1, sizeof *L->fn_tys);
  L->sel = qb_calloc(nd + 1, 1);
  if (!L->fns || !L->fn_tys || !L->sel) return qb_fail(err, QB_NOMEM, "jit: out of memory");
  if ((rc = qj__select(m, udf, L->only, L->sel, err))) return rc;
  for (uint32_t d = 0; d < nd; d++) {
    if (!L->sel[d]) continue;
    snprintf(name, sizeof name, "qj_f%u", d);
    L->fn_tys[d] = func_type(L, qw_bmod_func(m, d).type_idx);
    L->fns[d] = LLVMAddFunction(L->mod, name, L->fn_tys[d]);
    LLVMSetLinkage(L->fns[d], LLVMInternalLinkage);
    if (!(L->sel[d] & QJ_SEL_HOT)) { /* only on the way to a trap (select.c): cheap codegen */
      static const char *const attrs[] = {"optnone", "noinline", "cold"};
      for (int k = 0; k < 3; k++)
        LLVMAddAttributeAtIndex(
            L->fns[d], LLVMAttributeFunctionIndex,
            LLVMCreateEnumAttribute(cx, LLVMGetEnumAttributeKindForName(attrs[k], strlen(attrs[k])), 0));
    }
  }
  for (uint32_t d = 0; d < nd; d++)
    if (L->sel[d] && (rc = lower_body(L, d))) return rc;
  if ((rc = lower_blocks(L))) return rc;
  /* entries: all selected; UDF mode only those the UDF layer can enter through a slot (attached,
  ** native_llvm.c): an export without a block driver, a call_indirect target. Direct callees
  ** are called natively; an export with a driver is run by the driver alone. */
  LLVMValueRef *marks = qb_calloc(nd + 1, sizeof *marks);
  if (!marks) return qb_fail(err, QB_NOMEM, "jit: out of memory");
  for (uint32_t d = 0; d < nd; d++) {
    uint8_t s = L->sel[d];
    bool entry = s && (!udf || (s & QJ_SEL_INDIRECT) ||
                       ((s & QJ_SEL_ROOT) && !(s & QJ_SEL_DRIVER)));
    if (entry) qj__emit_entry(L, d), L->sel[d] |= QJ_SEL_ENTRY;
    marks[d] = LLVMConstInt(L->i8, entry, 0);
  }
  LLVMTypeRef sel_ty = LLVMArrayType(L->i8, nd);
  LLVMValueRef gs = LLVMAddGlobal(L->mod, sel_ty, "qj_sel");
  LLVMSetInitializer(gs, LLVMConstArray(L->i8, marks, nd));
  LLVMSetGlobalConstant(gs, 1);
  qb_free(marks, (nd + 1) * sizeof *marks);
  /* what qj_load_object checks: the ABI and the number of entries */
  LLVMValueRef g = LLVMAddGlobal(L->mod, L->i32, "qj_abi");
  LLVMSetInitializer(g, qj__i32(L, QW_BACKEND_ABI));
  LLVMSetGlobalConstant(g, 1);
  g = LLVMAddGlobal(L->mod, L->i32, "qj_nfuncs");
  LLVMSetInitializer(g, qj__i32(L, nd));
  LLVMSetGlobalConstant(g, 1);
  g = LLVMAddGlobal(L->mod, L->i32, "qj_guard");
  LLVMSetInitializer(g, qj__i32(L, guard));
  LLVMSetGlobalConstant(g, 1);
  return QB_OK;
}

void qj__lower_fini(qj__lower *L) {
  uint32_t nd = L->n.nfuncs - L->n.nfunc_imports;
  qb_free(L->fns, (nd + 1) * sizeof *L->fns);
  qb_free(L->fn_tys, (nd + 1) * sizeof *L->fn_tys);
  qb_free(L->sel, L->sel ? nd + 1 : 0);
  qb_free(L->gfns, L->gfns ? (nd + 1) * sizeof *L->gfns : 0);
  qb_free(L->gfn_tys, L->gfn_tys ? (nd + 1) * sizeof *L->gfn_tys : 0);
  qb_free(L->locals, L->loc_cap * sizeof *L->locals);
  qb_free(L->local_types, L->loc_cap);
  qb_free(L->stack, L->scap * sizeof *L->stack);
  qb_free(L->stypes, L->scap);
  for (uint32_t i = 0; i < L->ctlcap; i++) qb_free(L->ctl[i].vals, L->ctl[i].vcap * sizeof(LLVMValueRef));
  qb_free(L->ctl, L->ctlcap * sizeof *L->ctl);
  if (L->b) LLVMDisposeBuilder(L->b);
  L->b = NULL;
}
