/* lower_convert.c: conversions, reinterpretations, sign extension and the saturating
** truncations -> IR, as ops_convert.inc: a trapping truncation checks NaN first ("invalid
** conversion to integer"), then the exclusive bounds LO < x < HI, exactly representable in
** the source type ("integer overflow"), so fptosi/fptoui only see values in range; the _sat
** forms are LLVM's fpto[su]i.sat (NaN -> 0, clamped), the same function. */
#include "internal.h"

typedef struct trunc_rule {
  uint32_t op;
  bool f64, i64, sign;
  double lo, hi;
} trunc_rule;

static const trunc_rule rules[] = {
    {0xa8, false, false, true, -2147483904.0, 2147483648.0},
    {0xa9, false, false, false, -1.0, 4294967296.0},
    {0xaa, true, false, true, -2147483649.0, 2147483648.0},
    {0xab, true, false, false, -1.0, 4294967296.0},
    {0xae, false, true, true, -9223373136366403584.0, 9223372036854775808.0},
    {0xaf, false, true, false, -1.0, 18446744073709551616.0},
    {0xb0, true, true, true, -9223372036854777856.0, 9223372036854775808.0},
    {0xb1, true, true, false, -1.0, 18446744073709551616.0},
};

static void trunc_trap(qj__lower *L, const trunc_rule *r) {
  LLVMValueRef x = qj__pop(L);
  LLVMTypeRef ft = r->f64 ? L->f64 : L->f32, it = r->i64 ? L->i64 : L->i32;
  qj__trap_if(L, LLVMBuildFCmp(L->b, LLVMRealUNO, x, x, ""), QW_BT_BAD_CONVERSION);
  LLVMValueRef ok = LLVMBuildAnd(L->b, LLVMBuildFCmp(L->b, LLVMRealOGT, x, LLVMConstReal(ft, r->lo), ""),
                                 LLVMBuildFCmp(L->b, LLVMRealOLT, x, LLVMConstReal(ft, r->hi), ""), "");
  qj__trap_if(L, LLVMBuildNot(L->b, ok, ""), QW_BT_INT_OVERFLOW);
  qj__push(L, r->sign ? LLVMBuildFPToSI(L->b, x, it, "") : LLVMBuildFPToUI(L->b, x, it, ""),
           r->i64 ? QW_I64 : QW_I32);
}

static void sat(qj__lower *L, bool f64, bool i64, bool sign) {
  LLVMValueRef x = qj__pop(L);
  LLVMTypeRef tys[2] = {i64 ? L->i64 : L->i32, f64 ? L->f64 : L->f32};
  qj__push(L, qj__intrinsic(L, sign ? "llvm.fptosi.sat" : "llvm.fptoui.sat", tys, 2, &x, 1),
           i64 ? QW_I64 : QW_I32);
}

static void sext(qj__lower *L, LLVMTypeRef t, LLVMTypeRef from, uint8_t wt) {
  LLVMValueRef x = qj__pop(L);
  qj__push(L, LLVMBuildSExt(L->b, LLVMBuildTrunc(L->b, x, from, ""), t, ""), wt);
}

bool qj__lower_convert(qj__lower *L, const qw_insn *in) {
  LLVMValueRef x;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (rules[i].op == in->op) return trunc_trap(L, &rules[i]), true;
  if (in->op >= 0xfc00 && in->op <= 0xfc07) {
    uint32_t k = in->op - 0xfc00; /* i32 f32 s/u, i32 f64 s/u, i64 f32 s/u, i64 f64 s/u */
    sat(L, (k >> 1) & 1, k >> 2, !(k & 1));
    return true;
  }
  switch (in->op) {
  case 0xa7: qj__push(L, LLVMBuildTrunc(L->b, qj__pop(L), L->i32, ""), QW_I32); return true;
  case 0xac: qj__push(L, LLVMBuildSExt(L->b, qj__pop(L), L->i64, ""), QW_I64); return true;
  case 0xad: qj__push(L, LLVMBuildZExt(L->b, qj__pop(L), L->i64, ""), QW_I64); return true;
  case 0xb2: case 0xb4: qj__push(L, LLVMBuildSIToFP(L->b, qj__pop(L), L->f32, ""), QW_F32); return true;
  case 0xb3: case 0xb5: qj__push(L, LLVMBuildUIToFP(L->b, qj__pop(L), L->f32, ""), QW_F32); return true;
  case 0xb6: qj__push(L, LLVMBuildFPTrunc(L->b, qj__pop(L), L->f32, ""), QW_F32); return true;
  case 0xb7: case 0xb9: qj__push(L, LLVMBuildSIToFP(L->b, qj__pop(L), L->f64, ""), QW_F64); return true;
  case 0xb8: case 0xba: qj__push(L, LLVMBuildUIToFP(L->b, qj__pop(L), L->f64, ""), QW_F64); return true;
  case 0xbb: { /* LLVM folds demote(promote(x)) to x, keeping a signalling NaN that the
               ** hardware (and the interpreter) quiets: times an opaque 1.0 (exact) */
    LLVMValueRef g = LLVMGetNamedGlobal(L->mod, "qj_kd_p1");
    if (!g) {
      g = LLVMAddGlobal(L->mod, L->f64, "qj_kd_p1");
      LLVMSetInitializer(g, LLVMConstReal(L->f64, 1.0));
    }
    LLVMValueRef x = LLVMBuildFPExt(L->b, qj__pop(L), L->f64, "");
    qj__push(L, LLVMBuildFMul(L->b, x, LLVMBuildLoad2(L->b, L->f64, g, ""), ""), QW_F64);
    return true;
  }
  case 0xbc: qj__push(L, LLVMBuildBitCast(L->b, qj__pop(L), L->i32, ""), QW_I32); return true;
  case 0xbd: qj__push(L, LLVMBuildBitCast(L->b, qj__pop(L), L->i64, ""), QW_I64); return true;
  case 0xbe: qj__push(L, LLVMBuildBitCast(L->b, qj__pop(L), L->f32, ""), QW_F32); return true;
  case 0xbf: qj__push(L, LLVMBuildBitCast(L->b, qj__pop(L), L->f64, ""), QW_F64); return true;
  case 0xc0: sext(L, L->i32, L->i8, QW_I32); return true;
  case 0xc1: sext(L, L->i32, LLVMInt16TypeInContext(L->cx), QW_I32); return true;
  case 0xc2: sext(L, L->i64, L->i8, QW_I64); return true;
  case 0xc3: sext(L, L->i64, LLVMInt16TypeInContext(L->cx), QW_I64); return true;
  case 0xc4: sext(L, L->i64, L->i32, QW_I64); return true;
  }
  (void)x;
  return false;
}
