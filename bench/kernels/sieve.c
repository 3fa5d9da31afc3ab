/* sieve.c: sieve of Eratosthenes over a static byte array: loads, stores, loops. */
#include "kernels.h"

#define SIEVE_MAX (4 << 20)
static uint8_t composite[SIEVE_MAX];

KEXPORT(k_sieve) int32_t k_sieve(int32_t n, int32_t rounds) {
  int32_t count = 0, r, i, j;
  if (n > SIEVE_MAX)
    n = SIEVE_MAX;
  for (r = 0; r < rounds; r++) {
    for (i = 0; i < n; i++)
      composite[i] = 0;
    count = 0;
    for (i = 2; i < n; i++) {
      if (composite[i])
        continue;
      count++;
      for (j = i + i; j < n; j += i)
        composite[j] = 1;
    }
  }
  return count;
}
