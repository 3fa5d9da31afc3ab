/* expr_vec.c: the vector kernels of the expression engine. Each op is one tight loop over a
** block of documents (no per-document dispatch), written so gcc vectorizes it (built with
** -O3 -fno-math-errno, see CMakeLists.txt). log has a branch-free polynomial version (fdlibm's,
** error < 1 ulp) because libm's scalar log would dominate a typical scoring expression;
** inputs outside the normal positive range fall back to libm in a second pass.
** Invariant (expr_int.h): dst is scratch; a, b, c may equal dst (element-wise ops are safe). */
#include "expr_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

const char *qq__xop_name(unsigned op) {
  static const char *const names[] = {
#define QQ__X(n, s) #n,
      QQ_XOPS(QQ__X)
#undef QQ__X
  };
  return op < QX__COUNT ? names[op] : "?";
}

/* ---- fast natural logarithm ------------------------------------------------------------------ */

static inline uint64_t asu64(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}
static inline double asf64(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* fdlibm e_log.c, rewritten without branches (musl's formulation): x = 2^k * z with z in
** [sqrt(2)/2, sqrt(2)), log(z) = f - hfsq + s*(hfsq+R). Valid for normal positive finite x. */
QB_INLINE double log_core(double x) {
  static const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10,
                      Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                      Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                      Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                      Lg7 = 1.479819860511658591e-01;
  uint64_t ix = asu64(x);
  /* OFF is the bit pattern of ~sqrt(2)/2: z's exponent becomes 0 or -1 */
  uint64_t tmp = ix - 0x3fe6a09e00000000ULL;
  int64_t k = (int64_t)tmp >> 52;
  double z = asf64(ix - (tmp & (0xfffULL << 52)));
  /* k to double without cvtsi2sd (not vectorizable for i64 on SSE2): magic-number trick */
  double dk = asf64(0x4330000000000000ULL + (uint64_t)(k + 0x80000)) - (4503599627370496.0 + 524288.0);
  double f = z - 1.0;
  double s = f / (2.0 + f);
  double zz = s * s, w = zz * zz;
  double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  double t2 = zz * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  double R = t2 + t1, hfsq = 0.5 * f * f;
  return s * (hfsq + R) + dk * ln2_lo - hfsq + f + dk * ln2_hi;
}

/* D may equal A: the rare inputs outside the normal range are found first, then each element
** is read before it is written */
QB_INLINE void vlog(double *d, const double *a, double k, size_t n) { /* log(a + k) */
  size_t i;
  int bad = 0;
  for (i = 0; i < n; i++) bad |= !(a[i] + k >= DBL_MIN && a[i] + k <= DBL_MAX);
  if (QB_LIKELY(!bad)) {
    for (i = 0; i < n; i++) d[i] = log_core(a[i] + k);
    return;
  }
  for (i = 0; i < n; i++) {
    double x = a[i] + k;
    d[i] = x >= DBL_MIN && x <= DBL_MAX ? log_core(x) : log(x);
  }
}

/* ---- the interpreter of programs ---------------------------------------------------------- */

#define LOOP for (size_t i = 0; i < nb; i++)

static double sgn(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; }
static double logn(double base, double x) { return log(x) / log(base); }

/* The body is compiled twice on x86-64 (baseline SSE2 and AVX2, picked once at run time), so the
** loops use 4-wide vectors where the CPU has them. fp-contract is off for the file (CMake), so
** both variants round identically: results never depend on the machine. */
QB_INLINE void xrun_body(const qq__xins *ins, size_t n, double *const *reg,
                         const uint8_t *const *mask, size_t nb) {
  for (size_t pc = 0; pc < n; pc++) {
    const qq__xins *p = &ins[pc];
    double *d = reg[p->dst];
    const double *a = reg[p->a], *b = reg[p->b], *c = reg[p->c];
    const double k = p->k;
    switch ((qq__xop)p->op) {
    case QX_BCAST: LOOP d[i] = k; break;
    case QX_COPY: if (d != a) memcpy(d, a, nb * sizeof *d); break;
    case QX_EMPTY: {
      const uint8_t *m = mask[p->a];
      LOOP d[i] = m[i] ? 0.0 : 1.0;
      break;
    }
    case QX_ADD: LOOP d[i] = a[i] + b[i]; break;
    case QX_SUB: LOOP d[i] = a[i] - b[i]; break;
    case QX_MUL: LOOP d[i] = a[i] * b[i]; break;
    case QX_DIV: LOOP d[i] = a[i] / b[i]; break;
    case QX_MOD: LOOP d[i] = fmod(a[i], b[i]); break;
    case QX_ADDK: LOOP d[i] = a[i] + k; break;
    case QX_SUBK: LOOP d[i] = a[i] - k; break;
    case QX_RSUBK: LOOP d[i] = k - a[i]; break;
    case QX_MULK: LOOP d[i] = a[i] * k; break;
    case QX_DIVK: LOOP d[i] = a[i] / k; break;
    case QX_RDIVK: LOOP d[i] = k / a[i]; break;
    case QX_MODK: LOOP d[i] = fmod(a[i], k); break;
    case QX_LT: LOOP d[i] = a[i] < b[i] ? 1.0 : 0.0; break;
    case QX_LE: LOOP d[i] = a[i] <= b[i] ? 1.0 : 0.0; break;
    case QX_GT: LOOP d[i] = a[i] > b[i] ? 1.0 : 0.0; break;
    case QX_GE: LOOP d[i] = a[i] >= b[i] ? 1.0 : 0.0; break;
    case QX_EQ: LOOP d[i] = a[i] == b[i] ? 1.0 : 0.0; break;
    case QX_NE: LOOP d[i] = a[i] != b[i] ? 1.0 : 0.0; break;
    case QX_AND: LOOP d[i] = ((a[i] != 0.0) & (b[i] != 0.0)) ? 1.0 : 0.0; break;
    case QX_OR: LOOP d[i] = ((a[i] != 0.0) | (b[i] != 0.0)) ? 1.0 : 0.0; break;
    case QX_LTK: LOOP d[i] = a[i] < k ? 1.0 : 0.0; break;
    case QX_LEK: LOOP d[i] = a[i] <= k ? 1.0 : 0.0; break;
    case QX_GTK: LOOP d[i] = a[i] > k ? 1.0 : 0.0; break;
    case QX_GEK: LOOP d[i] = a[i] >= k ? 1.0 : 0.0; break;
    case QX_EQK: LOOP d[i] = a[i] == k ? 1.0 : 0.0; break;
    case QX_NEK: LOOP d[i] = a[i] != k ? 1.0 : 0.0; break;
    /* Java's Math.min/max: NaN wins, and fmin/fmax would drop it */
    case QX_MINK: LOOP d[i] = a[i] != a[i] ? a[i] : a[i] < k ? a[i] : k; break;
    case QX_MAXK: LOOP d[i] = a[i] != a[i] ? a[i] : a[i] > k ? a[i] : k; break;
    case QX_POWK:
      if (k == 2.0) { LOOP d[i] = a[i] * a[i]; }
      else if (k == 0.5) { LOOP d[i] = sqrt(a[i]); }
      else { LOOP d[i] = pow(a[i], k); }
      break;
    case QX_NEG: LOOP d[i] = -a[i]; break;
    case QX_NOT: LOOP d[i] = a[i] == 0.0 ? 1.0 : 0.0; break;
    case QX_SELECT: LOOP d[i] = a[i] != 0.0 ? b[i] : c[i]; break;
    case QX_LOG: vlog(d, a, 0.0, nb); break;
    case QX_LOGK: vlog(d, a, k, nb); break;
    case QX_MADD: LOOP d[i] = a[i] * b[i] + c[i]; break;
    case QX_MULKADD: LOOP d[i] = a[i] * k + b[i]; break;
    case QX_KMADD: LOOP d[i] = a[i] * k + b[i] * c[i]; break; /* both products rounded, then added */
    case QX_LOG10:
      vlog(d, a, 0.0, nb);
      LOOP d[i] *= 0.43429448190325182765;
      break;
    case QX_LOG1P: LOOP d[i] = log1p(a[i]); break;
    case QX_SQRT: LOOP d[i] = sqrt(a[i]); break;
    case QX_EXP: LOOP d[i] = exp(a[i]); break;
    case QX_ABS: LOOP d[i] = fabs(a[i]); break;
    case QX_FLOOR: LOOP d[i] = floor(a[i]); break;
    case QX_CEIL: LOOP d[i] = ceil(a[i]); break;
    case QX_ROUND: LOOP d[i] = floor(a[i] + 0.5); break; /* Java's Math.round */
    case QX_SIN: LOOP d[i] = sin(a[i]); break;
    case QX_COS: LOOP d[i] = cos(a[i]); break;
    case QX_TAN: LOOP d[i] = tan(a[i]); break;
    case QX_ASIN: LOOP d[i] = asin(a[i]); break;
    case QX_ACOS: LOOP d[i] = acos(a[i]); break;
    case QX_ATAN: LOOP d[i] = atan(a[i]); break;
    case QX_SINH: LOOP d[i] = sinh(a[i]); break;
    case QX_COSH: LOOP d[i] = cosh(a[i]); break;
    case QX_TANH: LOOP d[i] = tanh(a[i]); break;
    case QX_ASINH: LOOP d[i] = asinh(a[i]); break;
    case QX_ACOSH: LOOP d[i] = acosh(a[i]); break;
    case QX_ATANH: LOOP d[i] = atanh(a[i]); break;
    case QX_SIGNUM: LOOP d[i] = sgn(a[i]); break;
    case QX_CBRT: LOOP d[i] = cbrt(a[i]); break;
    case QX_MIN: LOOP d[i] = a[i] != a[i] ? a[i] : b[i] != b[i] ? b[i] : a[i] < b[i] ? a[i] : b[i]; break;
    case QX_MAX: LOOP d[i] = a[i] != a[i] ? a[i] : b[i] != b[i] ? b[i] : a[i] > b[i] ? a[i] : b[i]; break;
    case QX_POW: LOOP d[i] = pow(a[i], b[i]); break;
    case QX_ATAN2: LOOP d[i] = atan2(a[i], b[i]); break;
    case QX_HYPOT: LOOP d[i] = hypot(a[i], b[i]); break;
    case QX_LOGN: LOOP d[i] = logn(a[i], b[i]); break;
    case QX__COUNT: break;
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void xrun_avx2(const qq__xins *ins, size_t n, double *const *reg,
                                                      const uint8_t *const *mask, size_t nb) {
  xrun_body(ins, n, reg, mask, nb);
}
static void xrun_base(const qq__xins *ins, size_t n, double *const *reg, const uint8_t *const *mask,
                      size_t nb) {
  xrun_body(ins, n, reg, mask, nb);
}
typedef void (*xrun_fn)(const qq__xins *, size_t, double *const *, const uint8_t *const *, size_t);

void qq__xrun(const qq__xins *ins, size_t n, double *const *reg, const uint8_t *const *mask,
              size_t nb) {
  xrun_fn fn = __builtin_cpu_supports("avx2") ? xrun_avx2 : xrun_base; /* a load and a test */
  fn(ins, n, reg, mask, nb);
}
#else
void qq__xrun(const qq__xins *ins, size_t n, double *const *reg, const uint8_t *const *mask,
              size_t nb) {
  xrun_body(ins, n, reg, mask, nb);
}
#endif

double qq__xfold(unsigned op, double a, double b, double c, double k) {
  double r[4] = {0, a, b, c};
  double *reg[4] = {&r[0], &r[1], &r[2], &r[3]};
  qq__xins ins = {(uint8_t)op, 0, 1, 2, 3, k};
  qq__xrun(&ins, 1, reg, NULL, 1);
  return r[0];
}
