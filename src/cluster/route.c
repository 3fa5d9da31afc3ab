/* route.c: document routing as Elasticsearch does it: MurmurHash3 (x86, 32-bit; Austin
** Appleby's public-domain algorithm, written here from its description) of the routing
** string's UTF-16 code units in little-endian byte order, seed 0, floorMod the number of
** shards. Invariant: the same routing string always gives the same shard for a given count. */
#include <string.h>

#include "internal.h"

static uint32_t rotl(uint32_t x, int r) { return x << r | x >> (32 - r); }

uint32_t qc_murmur3_32(const void *data, size_t len, uint32_t seed) {
  const uint8_t *p = data;
  const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
  uint32_t h = seed;
  size_t nblocks = len / 4;
  for (size_t i = 0; i < nblocks; i++) {
    uint32_t k = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                 (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
    k *= c1;
    k = rotl(k, 15);
    k *= c2;
    h ^= k;
    h = rotl(h, 13);
    h = h * 5 + 0xe6546b64u;
  }
  const uint8_t *tail = p + nblocks * 4;
  uint32_t k = 0;
  switch (len & 3) {
  case 3: k ^= (uint32_t)tail[2] << 16; /* fall through */
  case 2: k ^= (uint32_t)tail[1] << 8;  /* fall through */
  case 1:
    k ^= tail[0];
    k *= c1;
    k = rotl(k, 15);
    k *= c2;
    h ^= k;
  }
  h ^= (uint32_t)len;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* Incremental murmur3 over the UTF-16LE bytes, so no buffer bounds the routing length. */
typedef struct mm {
  uint32_t h, len;
  uint8_t blk[4];
  int nb;
} mm;

static void mm_byte(mm *m, uint8_t b) {
  m->blk[m->nb++] = b;
  m->len++;
  if (m->nb == 4) {
    uint32_t k = (uint32_t)m->blk[0] | (uint32_t)m->blk[1] << 8 | (uint32_t)m->blk[2] << 16 |
                 (uint32_t)m->blk[3] << 24;
    k *= 0xcc9e2d51u;
    k = rotl(k, 15);
    k *= 0x1b873593u;
    m->h ^= k;
    m->h = rotl(m->h, 13);
    m->h = m->h * 5 + 0xe6546b64u;
    m->nb = 0;
  }
}

static uint32_t mm_end(mm *m) {
  uint32_t k = 0, h = m->h;
  switch (m->nb) {
  case 3: k ^= (uint32_t)m->blk[2] << 16; /* fall through */
  case 2: k ^= (uint32_t)m->blk[1] << 8;  /* fall through */
  case 1:
    k ^= m->blk[0];
    k *= 0xcc9e2d51u;
    k = rotl(k, 15);
    k *= 0x1b873593u;
    h ^= k;
  }
  h ^= m->len;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static void mm_unit(mm *m, uint32_t u) {
  mm_byte(m, (uint8_t)u);
  mm_byte(m, (uint8_t)(u >> 8));
}

uint32_t qc_route_shard(const char *routing, size_t len, uint32_t nshards) {
  if (nshards <= 1) return 0;
  const uint8_t *s = (const uint8_t *)routing;
  mm m = {0};
  for (size_t i = 0; i < len;) {
    uint32_t cp = s[i];
    size_t k = 1;
    if (cp >= 0xf0 && cp < 0xf8 && i + 3 < len) {
      cp = (uint32_t)(s[i] & 7) << 18 | (uint32_t)(s[i + 1] & 63) << 12 |
           (uint32_t)(s[i + 2] & 63) << 6 | (s[i + 3] & 63);
      k = 4;
    } else if (cp >= 0xe0 && cp < 0xf0 && i + 2 < len) {
      cp = (uint32_t)(s[i] & 15) << 12 | (uint32_t)(s[i + 1] & 63) << 6 | (s[i + 2] & 63);
      k = 3;
    } else if (cp >= 0xc0 && cp < 0xe0 && i + 1 < len) {
      cp = (uint32_t)(s[i] & 31) << 6 | (s[i + 1] & 63);
      k = 2;
    }
    i += k;
    if (cp >= 0x10000) { /* a surrogate pair, as Java's String holds it */
      uint32_t v = cp - 0x10000;
      mm_unit(&m, 0xd800 + (v >> 10));
      mm_unit(&m, 0xdc00 + (v & 0x3ff));
    } else {
      mm_unit(&m, cp);
    }
  }
  int32_t h = (int32_t)mm_end(&m), n = (int32_t)nshards, r = h % n; /* Java's floorMod */
  if (r < 0) r += n;
  return (uint32_t)r;
}
