/* fib.c: recursive Fibonacci: calls and returns, nothing else. */
#include "kernels.h"

KEXPORT(k_fib) int32_t k_fib(int32_t n) {
  return n < 2 ? n : k_fib(n - 1) + k_fib(n - 2);
}
