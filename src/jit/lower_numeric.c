/* lower_numeric.c: constants, integer and float arithmetic and comparisons -> IR, with the
** interpreter's semantics (interp.c, ops_numeric.inc): division traps before LLVM's undefined
** cases (x/0, INT_MIN/-1; INT_MIN rem -1 is 0), shift counts masked, min/max with NaN
** propagation (a + b) and -0 < +0 on bits, ceil/floor/trunc/nearest quiet a NaN with x + x,
** abs/neg/copysign on bits (LLVM's fabs/fneg/copysign are bit operations). No fast-math flag
** is ever set, so nothing is contracted into an FMA or reassociated. */
#include <math.h>
#include <stdio.h>

#include "internal.h"

static LLVMValueRef fconst(qj__lower *L, LLVMTypeRef t, uint64_t bits) {
  LLVMTypeRef it = t == L->f32 ? L->i32 : L->i64;
  return LLVMConstBitCast(LLVMConstInt(it, bits, 0), t);
}

static void cmp(qj__lower *L, LLVMIntPredicate p) {
  LLVMValueRef b = qj__pop(L), a = qj__pop(L);
  qj__push(L, LLVMBuildZExt(L->b, LLVMBuildICmp(L->b, p, a, b, ""), L->i32, ""), QW_I32);
}

static void fcmp(qj__lower *L, LLVMRealPredicate p) {
  LLVMValueRef b = qj__pop(L), a = qj__pop(L);
  qj__push(L, LLVMBuildZExt(L->b, LLVMBuildFCmp(L->b, p, a, b, ""), L->i32, ""), QW_I32);
}

static LLVMValueRef unary_intr(qj__lower *L, const char *name, LLVMValueRef a, bool flag) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[2] = {a, LLVMConstInt(L->i1, 0, 0)};
  return qj__intrinsic(L, name, &t, 1, args, flag ? 2 : 1);
}

/* integer division and remainder, trapping as the interpreter does */
static LLVMValueRef divrem(qj__lower *L, LLVMTypeRef t, int kind, LLVMValueRef a,
                           LLVMValueRef b) {
  LLVMValueRef zero = LLVMConstInt(t, 0, 0), m1 = LLVMConstAllOnes(t);
  qj__trap_if(L, LLVMBuildICmp(L->b, LLVMIntEQ, b, zero, ""), QW_BT_DIV_ZERO);
  unsigned bits = LLVMGetIntTypeWidth(t);
  LLVMValueRef min = LLVMConstInt(t, 1ull << (bits - 1), 0);
  switch (kind) {
  case 0: /* div_s */
    qj__trap_if(L,
                LLVMBuildAnd(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, a, min, ""),
                             LLVMBuildICmp(L->b, LLVMIntEQ, b, m1, ""), ""),
                QW_BT_INT_OVERFLOW);
    return LLVMBuildSDiv(L->b, a, b, "");
  case 1: return LLVMBuildUDiv(L->b, a, b, "");
  case 2: { /* rem_s: x rem -1 is 0; never ask LLVM for INT_MIN srem -1 */
    LLVMValueRef safe = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, b, m1, ""),
                                        LLVMConstInt(t, 1, 0), b, "");
    return LLVMBuildSRem(L->b, a, safe, "");
  }
  default: return LLVMBuildURem(L->b, a, b, "");
  }
}

static bool int_op(qj__lower *L, uint32_t op, LLVMTypeRef t, uint8_t wt) {
  /* op relative to i32.clz (0x67) / i64.clz (0x79) */
  LLVMValueRef a, b, r;
  if (op <= 2) {
    a = qj__pop(L);
    r = unary_intr(L, op == 0 ? "llvm.ctlz" : op == 1 ? "llvm.cttz" : "llvm.ctpop", a, op < 2);
    qj__push(L, r, wt);
    return true;
  }
  b = qj__pop(L), a = qj__pop(L);
  LLVMValueRef mask = LLVMConstInt(t, LLVMGetIntTypeWidth(t) - 1, 0);
  switch (op) {
  case 3: r = LLVMBuildAdd(L->b, a, b, ""); break;
  case 4: r = LLVMBuildSub(L->b, a, b, ""); break;
  case 5: r = LLVMBuildMul(L->b, a, b, ""); break;
  case 6: case 7: case 8: case 9: r = divrem(L, t, (int)op - 6, a, b); break;
  case 10: r = LLVMBuildAnd(L->b, a, b, ""); break;
  case 11: r = LLVMBuildOr(L->b, a, b, ""); break;
  case 12: r = LLVMBuildXor(L->b, a, b, ""); break;
  case 13: r = LLVMBuildShl(L->b, a, LLVMBuildAnd(L->b, b, mask, ""), ""); break;
  case 14: r = LLVMBuildAShr(L->b, a, LLVMBuildAnd(L->b, b, mask, ""), ""); break;
  case 15: r = LLVMBuildLShr(L->b, a, LLVMBuildAnd(L->b, b, mask, ""), ""); break;
  case 16: case 17: {
    LLVMValueRef args[3] = {a, a, b};
    r = qj__intrinsic(L, op == 16 ? "llvm.fshl" : "llvm.fshr", &t, 1, args, 3);
    break;
  }
  default: return false;
  }
  qj__push(L, r, wt);
  return true;
}

/* The hardware quiets a signalling NaN in every arithmetic op, as the interpreter's do; LLVM
** folds x - 0, x + -0, x * 1, x / 1 (and x * -1, x / -1 to -x), which would pass it through.
** (x86 has no llvm.canonicalize in LLVM 19.) So a constant operand that is +-0 or +-1 is read
** from a global LLVM cannot see the value of (external, writable, never written): the op
** stays.
** The same global hides +-inf (and a negative sqrt operand): LLVM folds 0/0, inf-inf, 0*inf,
** inf/inf and sqrt(-x) of known operands to +NaN, where x86 gives its default NaN (sign set),
** as the interpreter does (tests/data/diff/nan-constant-fold.wat). Zeroed float locals start
** from it too (qj__opaque_zero), so a read-before-write local does not fold either. Other constants fold
** nothing of that kind. */
static LLVMValueRef opaque_k(qj__lower *L, LLVMValueRef k, bool negative) {
  if (!LLVMIsAConstantFP(k)) return k;
  LLVMTypeRef t = LLVMTypeOf(k);
  LLVMBool lossy;
  double v = LLVMConstRealGetDouble(k, &lossy);
  if (!(v == 0.0 || v == 1.0 || v == -1.0 || isinf(v) || (negative && v < 0))) return k;
  char name[48];
  if (isinf(v) || fabs(v) > 1.0 || (v != 0.0 && fabs(v) < 1.0))
    snprintf(name, sizeof name, "qj_k%s_%016llx", t == L->f32 ? "f" : "d",
             (unsigned long long)(union { double d; uint64_t u; }){v}.u);
  else
    snprintf(name, sizeof name, "qj_k%s_%s%d", t == L->f32 ? "f" : "d", signbit(v) ? "m" : "p",
             (int)fabs(v));
  LLVMValueRef g = LLVMGetNamedGlobal(L->mod, name);
  if (!g) {
    g = LLVMAddGlobal(L->mod, t, name);
    LLVMSetInitializer(g, k);
  }
  return LLVMBuildLoad2(L->b, t, g, "");
}

static LLVMValueRef opaque(qj__lower *L, LLVMValueRef k) { return opaque_k(L, k, false); }

LLVMValueRef qj__opaque_zero(qj__lower *L, LLVMTypeRef t) {
  return opaque(L, LLVMConstNull(t));
}

/* x != x ? x + x : F(x) */
static LLVMValueRef quiet_round(qj__lower *L, const char *name, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef r = qj__intrinsic(L, name, &t, 1, &x, 1);
  LLVMValueRef nan = LLVMBuildFCmp(L->b, LLVMRealUNO, x, x, "");
  return LLVMBuildSelect(L->b, nan, LLVMBuildFAdd(L->b, x, x, ""), r, "");
}

/* interp.c f32_min/f64_min (MAX: f32_max): NaN -> a + b; a == b -> bits or'ed (min) / and'ed
** (max), so -0 < +0; else the smaller/larger */
static LLVMValueRef minmax(qj__lower *L, LLVMValueRef a, LLVMValueRef b, bool max) {
  LLVMTypeRef t = LLVMTypeOf(a), it = t == L->f32 ? L->i32 : L->i64;
  LLVMValueRef ai = LLVMBuildBitCast(L->b, a, it, ""), bi = LLVMBuildBitCast(L->b, b, it, "");
  LLVMValueRef eqv = LLVMBuildBitCast(
      L->b, max ? LLVMBuildAnd(L->b, ai, bi, "") : LLVMBuildOr(L->b, ai, bi, ""), t, "");
  LLVMValueRef pick = LLVMBuildSelect(
      L->b, LLVMBuildFCmp(L->b, max ? LLVMRealOGT : LLVMRealOLT, a, b, ""), a, b, "");
  LLVMValueRef r = LLVMBuildSelect(L->b, LLVMBuildFCmp(L->b, LLVMRealOEQ, a, b, ""), eqv, pick, "");
  LLVMValueRef nan = LLVMBuildFCmp(L->b, LLVMRealUNO, a, b, "");
  return LLVMBuildSelect(L->b, nan, LLVMBuildFAdd(L->b, a, b, ""), r, "");
}

static bool float_op(qj__lower *L, uint32_t op, uint8_t wt) {
  /* op relative to f32.abs (0x8b) / f64.abs (0x99) */
  LLVMValueRef a, b, r;
  if (op <= 6) {
    a = qj__pop(L);
    LLVMTypeRef t = LLVMTypeOf(a);
    switch (op) {
    case 0: r = qj__intrinsic(L, "llvm.fabs", &t, 1, &a, 1); break;
    case 1: r = LLVMBuildFNeg(L->b, a, ""); break;
    case 2: r = quiet_round(L, "llvm.ceil", a); break;
    case 3: r = quiet_round(L, "llvm.floor", a); break;
    case 4: r = quiet_round(L, "llvm.trunc", a); break;
    case 5: r = quiet_round(L, "llvm.nearbyint", a); break;
    default:
      a = opaque_k(L, a, true);
      r = qj__intrinsic(L, "llvm.sqrt", &t, 1, &a, 1);
      break;
    }
    qj__push(L, r, wt);
    return true;
  }
  b = qj__pop(L), a = qj__pop(L);
  switch (op) {
  case 7: r = LLVMBuildFAdd(L->b, opaque(L, a), opaque(L, b), ""); break;
  case 8: r = LLVMBuildFSub(L->b, opaque(L, a), opaque(L, b), ""); break;
  case 9: r = LLVMBuildFMul(L->b, opaque(L, a), opaque(L, b), ""); break;
  case 10: r = LLVMBuildFDiv(L->b, opaque(L, a), opaque(L, b), ""); break;
  case 11: r = minmax(L, a, b, false); break;
  case 12: r = minmax(L, a, b, true); break;
  case 13: {
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[2] = {a, b};
    r = qj__intrinsic(L, "llvm.copysign", &t, 1, args, 2);
    break;
  }
  default: return false;
  }
  qj__push(L, r, wt);
  return true;
}

static const LLVMIntPredicate icmps[10] = {LLVMIntEQ,  LLVMIntNE,  LLVMIntSLT, LLVMIntULT,
                                           LLVMIntSGT, LLVMIntUGT, LLVMIntSLE, LLVMIntULE,
                                           LLVMIntSGE, LLVMIntUGE};
static const LLVMRealPredicate fcmps[6] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                           LLVMRealOGT, LLVMRealOLE, LLVMRealOGE};

bool qj__lower_numeric(qj__lower *L, const qw_insn *in) {
  uint32_t op = in->op;
  switch (op) {
  case 0x41: qj__push(L, LLVMConstInt(L->i32, (uint32_t)in->k, 0), QW_I32); return true;
  case 0x42: qj__push(L, LLVMConstInt(L->i64, in->k, 0), QW_I64); return true;
  case 0x43: qj__push(L, fconst(L, L->f32, in->k), QW_F32); return true;
  case 0x44: qj__push(L, fconst(L, L->f64, in->k), QW_F64); return true;
  case 0x45:
  case 0x50: {
    LLVMValueRef a = qj__pop(L);
    LLVMValueRef z = LLVMConstNull(LLVMTypeOf(a));
    qj__push(L, LLVMBuildZExt(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, a, z, ""), L->i32, ""), QW_I32);
    return true;
  }
  }
  if (op >= 0x46 && op <= 0x4f) return cmp(L, icmps[op - 0x46]), true;
  if (op >= 0x51 && op <= 0x5a) return cmp(L, icmps[op - 0x51]), true;
  if (op >= 0x5b && op <= 0x60) return fcmp(L, fcmps[op - 0x5b]), true;
  if (op >= 0x61 && op <= 0x66) return fcmp(L, fcmps[op - 0x61]), true;
  if (op >= 0x67 && op <= 0x78) return int_op(L, op - 0x67, L->i32, QW_I32);
  if (op >= 0x79 && op <= 0x8a) return int_op(L, op - 0x79, L->i64, QW_I64);
  if (op >= 0x8b && op <= 0x98) return float_op(L, op - 0x8b, QW_F32);
  if (op >= 0x99 && op <= 0xa6) return float_op(L, op - 0x99, QW_F64);
  return false;
}
