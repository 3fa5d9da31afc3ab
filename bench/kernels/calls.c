/* calls.c: a loop making N direct calls to a small function that is kept out of line. */
#include "kernels.h"

KNOINLINE static int32_t mix(int32_t a, int32_t b, int32_t c) {
  return (a ^ b) + c * 3;
}

KEXPORT(k_calls) int32_t k_calls(int32_t n) {
  int32_t acc = 1, i;
  for (i = 0; i < n; i++)
    acc = mix(acc, i, acc >> 3);
  return acc;
}
