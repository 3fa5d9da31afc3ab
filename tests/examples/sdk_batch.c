/* sdk_batch.c: not an example; exercises every arity (1..8) and every type token of the C SDK's
** QD_BATCH so test_examples.mjs can check each generated __batch against its scalar function.
** fN(a1..aN) mixes the types and is sensitive to every argument and its position. */
#include "quidditch.h"

QD_EXPORT(f1) double f1(int32_t a) { return a * 1.5; }
QD_EXPORT(f2) float f2(float a, int64_t b) { return a * 2.0f + (float)b; }
QD_EXPORT(f3) int64_t f3(int64_t a, int32_t b, const char *s, uint32_t n) {
  uint64_t h = (uint64_t)a * 31u + (uint64_t)(int64_t)b; /* unsigned: wraps, no UB */
  for (uint32_t i = 0; i < n; i++) h = h * 131u + (unsigned char)s[i];
  return (int64_t)h;
}
QD_EXPORT(f4) int32_t f4(int32_t a, int32_t b, int32_t c, int32_t d) { return a - 2 * b + 3 * c - 4 * d; }
QD_EXPORT(f5) double f5(double a, float b, int64_t c, int32_t d, double e) {
  return a + 2.0 * b + 3.0 * (double)c + 4.0 * d + 5.0 * e;
}
QD_EXPORT(f6) double f6(double a, double b, double c, double d, double e, double f) {
  return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
}
QD_EXPORT(f7) int64_t f7(int32_t a, int64_t b, int32_t c, int64_t d, int32_t e, int64_t f, int32_t g) {
  return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g;
}
QD_EXPORT(f8) qd_strret f8(const char *s, uint32_t n, int32_t b, int32_t c, int32_t d, int32_t e,
                           int32_t f, int32_t g, const char *t, uint32_t m) {
  /* returns s when b+c+d+e+f+g is even, else t (a copy either way) */
  int32_t sum = b + c + d + e + f + g;
  return sum % 2 == 0 ? qd_str_dup(s, n) : qd_str_dup(t, m);
}

QD_BATCH(f1, f64, i32)
QD_BATCH(f2, f32, f32, i64)
QD_BATCH(f3, i64, i64, i32, str)
QD_BATCH_FILTER(f4, i32, i32, i32, i32)
QD_BATCH_SCORE(f5, f64, f64, f32, i64, i32, f64)
QD_BATCH_METRIC(f6, f64, f64, f64, f64, f64, f64, f64)
QD_BATCH(f7, i64, i32, i64, i32, i64, i32, i64, i32)
QD_BATCH_TRANSFORM(f8, str, str, i32, i32, i32, i32, i32, i32, str)
