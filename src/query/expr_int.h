/* expr_int.h: the expression engine's vector program, shared by expr.c (parse + compile) and
** expr_vec.c (the kernels that run it). A program is a straight line of ops over registers;
** each register is a column of QQ_BLOCK_MAX doubles. Registers 0..nin-1 are the script's
** input columns (borrowed from the qq_block, never written); nin.. are scratch. Invariant: an
** op's dst is always a scratch register, and every register is written before it is read. */
#ifndef QQ_EXPR_INT_H
#define QQ_EXPR_INT_H

#include "query.h"

/* One table of ops: name, operand shape. Shapes: V = dst=f(a), VV = dst=f(a,b), VK = dst=f(a,k),
** VVV = dst=f(a,b,c), K = dst=k (broadcast), M = dst=f(mask of input column a). */
#define QQ_XOPS(X)                                                                                 \
  X(BCAST, K) X(COPY, V) X(EMPTY, M)                                                              \
  X(ADD, VV) X(SUB, VV) X(MUL, VV) X(DIV, VV) X(MOD, VV)                                          \
  X(ADDK, VK) X(SUBK, VK) X(RSUBK, VK) X(MULK, VK) X(DIVK, VK) X(RDIVK, VK) X(MODK, VK)           \
  X(LT, VV) X(LE, VV) X(GT, VV) X(GE, VV) X(EQ, VV) X(NE, VV) X(AND, VV) X(OR, VV)               \
  X(LTK, VK) X(LEK, VK) X(GTK, VK) X(GEK, VK) X(EQK, VK) X(NEK, VK)                               \
  X(MINK, VK) X(MAXK, VK) X(POWK, VK)                                                             \
  X(NEG, V) X(NOT, V) X(SELECT, VVV)                                                               \
  X(LOG, V) X(LOG10, V) X(LOG1P, V) X(SQRT, V) X(EXP, V) X(ABS, V) X(FLOOR, V) X(CEIL, V)        \
  X(ROUND, V) X(SIN, V) X(COS, V) X(TAN, V) X(ASIN, V) X(ACOS, V) X(ATAN, V) X(SINH, V)           \
  X(COSH, V) X(TANH, V) X(ASINH, V) X(ACOSH, V) X(ATANH, V) X(SIGNUM, V) X(CBRT, V)               \
  X(MIN, VV) X(MAX, VV) X(POW, VV) X(ATAN2, VV) X(HYPOT, VV) X(LOGN, VV)                      \
  /* fused by the peephole pass (expr.c): log(a+k), a*b+c, a*k+b, a*k+b*c */                     \
  X(LOGK, VK) X(MADD, VVV) X(MULKADD, VV) X(KMADD, VVV)

typedef enum qq__xop {
#define QQ__X(n, s) QX_##n,
  QQ_XOPS(QQ__X)
#undef QQ__X
  QX__COUNT
} qq__xop;

typedef struct qq__xins {
  uint8_t op;     /* qq__xop */
  uint8_t dst, a, b, c;
  double k;       /* VK / K operand */
} qq__xins;

#define QQ_XREG_MAX 64 /* registers per program (inputs + scratch) */

/* qq_expr_compile with the request's "context" object CTX (may be NULL) for "_context.a.b"
** parameter values. */
qb_code qq__expr_compile(const char *source, qq_script_kind kind, const struct json_t *params,
                         const struct json_t *ctx, qq_script **out, qb_err *err);

/* Run INS[0..N) over NB docs; REG[i] points at register i's column. */
void qq__xrun(const qq__xins *ins, size_t n, double *const *reg, const uint8_t *const *mask,
              size_t nb);
/* Name of OP ("add"), for disassembly. */
const char *qq__xop_name(unsigned op);
/* Apply OP to scalars (constant folding): same kernels as qq__xrun, on one element. */
double qq__xfold(unsigned op, double a, double b, double c, double k);

#endif
