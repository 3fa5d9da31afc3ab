/* hash.c: FNV-1a (32-bit) over a 1 MiB buffer: byte loads and a multiply chain. */
#include "kernels.h"

#define HASH_BYTES (1 << 20)
static uint8_t buf[HASH_BYTES];

KEXPORT(k_hash_init) void k_hash_init(void) {
  uint32_t x = 2463534242u, i;
  for (i = 0; i < HASH_BYTES; i++) { /* xorshift32 */
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    buf[i] = (uint8_t)x;
  }
}

KEXPORT(k_hash) int32_t k_hash(int32_t rounds) {
  uint32_t h = 2166136261u;
  int32_t r, i;
  for (r = 0; r < rounds; r++)
    for (i = 0; i < HASH_BYTES; i++)
      h = (h ^ buf[i]) * 16777619u;
  return (int32_t)h;
}
