/* matmul.c: dense n x n double matrix multiply-accumulate (i-k-j order): f64 loads, stores, mul,
 * add. */
#include "kernels.h"

#define MAT_MAX 512
static double a[MAT_MAX * MAT_MAX], b[MAT_MAX * MAT_MAX], c[MAT_MAX * MAT_MAX];

KEXPORT(k_matmul) double k_matmul(int32_t n, int32_t rounds) {
  int32_t i, j, k, r;
  double trace = 0;
  if (n > MAT_MAX)
    n = MAT_MAX;
  for (i = 0; i < n * n; i++) {
    a[i] = (double)(i % 17) * 0.25;
    b[i] = (double)(i % 13) * 0.5 - 1.0;
    c[i] = 0;
  }
  for (r = 0; r < rounds; r++) /* c += a * b, ROUNDS times */
    for (i = 0; i < n; i++)
      for (k = 0; k < n; k++) {
        double aik = a[i * n + k];
        for (j = 0; j < n; j++)
          c[i * n + j] += aik * b[k * n + j];
      }
  for (i = 0; i < n; i++)
    trace += c[i * n + i];
  return trace;
}
