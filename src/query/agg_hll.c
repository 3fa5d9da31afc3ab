/* agg_hll.c: the cardinality aggregation's counter. Values are hashed with MurmurHash3
** (x64_128, seed 0, the first 64 bits; written here from the published algorithm). Below the
** precision_threshold the counter keeps the set of hashes, so the count is exact (up to 64-bit
** hash collisions), as Elasticsearch's linear counting is; past it, the set becomes 2^p
** HyperLogLog registers (p from the threshold, 4..18) and the count an estimate by Ertl's
** improved estimator over the register histogram (in place of HLL++'s bias tables; 64-bit
** hashes need no large-range correction). Standard error 1.04 / sqrt(2^p): 0.81% at the
** default p = 14. Partials carry the set or the registers; merging takes the union or the
** register-wise maximum, so a merge of shards equals one shard with all their values. */
#include "aggs_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

uint64_t qq__murmur3_64(const void *data, size_t len, uint64_t seed) {
  const uint8_t *p = data;
  const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  uint64_t h1 = seed, h2 = seed;
  size_t nblocks = len / 16;
  for (size_t i = 0; i < nblocks; i++) {
    uint64_t k1, k2;
    memcpy(&k1, p + i * 16, 8);
    memcpy(&k2, p + i * 16 + 8, 8);
    k1 *= c1; k1 = rotl(k1, 31); k1 *= c2; h1 ^= k1;
    h1 = rotl(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
    k2 *= c2; k2 = rotl(k2, 33); k2 *= c1; h2 ^= k2;
    h2 = rotl(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
  }
  const uint8_t *t = p + nblocks * 16;
  uint64_t k1 = 0, k2 = 0;
  switch (len & 15) {
  case 15: k2 ^= (uint64_t)t[14] << 48; /* fall through */
  case 14: k2 ^= (uint64_t)t[13] << 40; /* fall through */
  case 13: k2 ^= (uint64_t)t[12] << 32; /* fall through */
  case 12: k2 ^= (uint64_t)t[11] << 24; /* fall through */
  case 11: k2 ^= (uint64_t)t[10] << 16; /* fall through */
  case 10: k2 ^= (uint64_t)t[9] << 8;   /* fall through */
  case 9: k2 ^= (uint64_t)t[8];
    k2 *= c2; k2 = rotl(k2, 33); k2 *= c1; h2 ^= k2;
    /* fall through */
  case 8: k1 ^= (uint64_t)t[7] << 56; /* fall through */
  case 7: k1 ^= (uint64_t)t[6] << 48; /* fall through */
  case 6: k1 ^= (uint64_t)t[5] << 40; /* fall through */
  case 5: k1 ^= (uint64_t)t[4] << 32; /* fall through */
  case 4: k1 ^= (uint64_t)t[3] << 24; /* fall through */
  case 3: k1 ^= (uint64_t)t[2] << 16; /* fall through */
  case 2: k1 ^= (uint64_t)t[1] << 8;  /* fall through */
  case 1: k1 ^= (uint64_t)t[0];
    k1 *= c1; k1 = rotl(k1, 31); k1 *= c2; h1 ^= k1;
    break;
  default: break;
  }
  h1 ^= (uint64_t)len;
  h2 ^= (uint64_t)len;
  h1 += h2;
  h2 += h1;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 += h2;
  return h1;
}

struct qq__hll {
  int p;
  uint32_t threshold;
  uint64_t *set;      /* open addressing; 0 = empty (hash 0 is stored as 1) */
  size_t nset, capset;
  uint8_t *reg;       /* 2^p registers once past the threshold */
};

qq__hll *qq__hll_new(int p, uint32_t threshold) {
  qq__hll *h = qb_calloc(1, sizeof *h);
  if (!h) return NULL;
  h->p = p < 4 ? 4 : p > 18 ? 18 : p;
  h->threshold = threshold;
  return h;
}

void qq__hll_free(qq__hll *h) {
  if (!h) return;
  qb_free(h->set, h->capset * sizeof *h->set);
  qb_free(h->reg, (size_t)1 << h->p);
  qb_free(h, sizeof *h);
}

static void reg_add(qq__hll *h, uint64_t x) {
  size_t idx = (size_t)(x >> (64 - h->p));
  uint64_t w = (x << h->p) | ((uint64_t)1 << (h->p - 1)); /* a stop bit: rho <= 64 - p + 1 */
  uint8_t rho = (uint8_t)(__builtin_clzll(w) + 1);
  if (rho > h->reg[idx]) h->reg[idx] = rho;
}

static int to_registers(qq__hll *h) {
  if (h->reg) return 0;
  if (!(h->reg = qb_calloc((size_t)1 << h->p, 1))) return -1;
  for (size_t i = 0; i < h->capset; i++)
    if (h->set[i]) reg_add(h, h->set[i]);
  qb_free(h->set, h->capset * sizeof *h->set);
  h->set = NULL;
  h->capset = h->nset = 0;
  return 0;
}

static int set_add(qq__hll *h, uint64_t x) {
  if ((h->nset + 1) * 2 > h->capset) {
    size_t nc = h->capset ? h->capset * 2 : 64;
    uint64_t *ns = qb_calloc(nc, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < h->capset; i++) {
      uint64_t v = h->set[i];
      if (!v) continue;
      size_t j = (size_t)(fmix(v) & (nc - 1));
      while (ns[j]) j = (j + 1) & (nc - 1);
      ns[j] = v;
    }
    qb_free(h->set, h->capset * sizeof *h->set);
    h->set = ns;
    h->capset = nc;
  }
  size_t j = (size_t)(fmix(x) & (h->capset - 1));
  while (h->set[j]) {
    if (h->set[j] == x) return 0;
    j = (j + 1) & (h->capset - 1);
  }
  h->set[j] = x;
  h->nset++;
  return 0;
}

int qq__hll_add(qq__hll *h, uint64_t x) {
  if (!x) x = 1;
  if (h->reg) {
    reg_add(h, x);
    return 0;
  }
  if (set_add(h, x)) return -1;
  return h->nset > h->threshold ? to_registers(h) : 0;
}

/* Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
** sketches", 2017): from the histogram of register values, accurate over the whole range
** without HLL++'s empirical bias tables or a switch from linear counting */
static double ertl_sigma(double x) {
  if (x == 1) return INFINITY;
  double y = 1, z = x, zo;
  do {
    x *= x;
    zo = z;
    z += x * y;
    y += y;
  } while (z != zo);
  return z;
}

static double ertl_tau(double x) {
  if (x == 0 || x == 1) return 0;
  double y = 1, z = 1 - x, zo;
  do {
    x = sqrt(x);
    zo = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
  } while (z != zo);
  return z / 3;
}

uint64_t qq__hll_count(const qq__hll *h) {
  if (!h->reg) return h->nset;
  size_t m = (size_t)1 << h->p;
  int q = 64 - h->p;
  double c[66];
  memset(c, 0, sizeof c);
  for (size_t i = 0; i < m; i++) c[h->reg[i] > q + 1 ? q + 1 : h->reg[i]]++;
  double dm = (double)m;
  double z = dm * ertl_tau(1 - c[q + 1] / dm);
  for (int k = q; k >= 1; k--) z = 0.5 * (z + c[k]);
  z += dm * ertl_sigma(c[0] / dm);
  return (uint64_t)llround(dm * dm / (2 * log(2)) / z);
}

json_t *qq__hll_json(const qq__hll *h) {
  json_t *o = json_pack("{s:i, s:I}", "p", h->p, "t", (json_int_t)h->threshold);
  if (!o) return NULL;
  if (h->reg) {
    size_t m = (size_t)1 << h->p;
    char *hex = qb_malloc(2 * m + 1);
    static const char dig[] = "0123456789abcdef";
    if (!hex) goto fail;
    for (size_t i = 0; i < m; i++) {
      hex[2 * i] = dig[h->reg[i] >> 4];
      hex[2 * i + 1] = dig[h->reg[i] & 15];
    }
    int bad = json_object_set_new(o, "reg", json_stringn(hex, 2 * m));
    qb_free(hex, 2 * m + 1);
    if (bad) goto fail;
  } else {
    json_t *a = json_array();
    if (!a || json_object_set_new(o, "set", a)) goto fail;
    for (size_t i = 0; i < h->capset; i++)
      if (h->set[i] && json_array_append_new(a, json_integer((json_int_t)h->set[i]))) goto fail;
  }
  return o;
fail:
  json_decref(o);
  return NULL;
}

static int hexv(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

int qq__hll_merge_json(qq__hll *h, const json_t *j) {
  const json_t *set = json_object_get(j, "set"), *reg = json_object_get(j, "reg");
  for (size_t i = 0; i < json_array_size(set); i++)
    if (qq__hll_add(h, (uint64_t)json_integer_value(json_array_get(set, i)))) return -1;
  if (json_is_string(reg)) {
    int p = (int)json_integer_value(json_object_get(j, "p"));
    size_t m = (size_t)1 << h->p;
    if (p != h->p || json_string_length(reg) != 2 * m) return 0; /* not ours: ignored */
    if (to_registers(h)) return -1;
    const char *s = json_string_value(reg);
    for (size_t i = 0; i < m; i++) {
      int a = hexv(s[2 * i]), b = hexv(s[2 * i + 1]);
      if (a < 0 || b < 0) continue;
      uint8_t v = (uint8_t)(a * 16 + b);
      if (v > 64 - h->p + 1) v = (uint8_t)(64 - h->p + 1);
      if (v > h->reg[i]) h->reg[i] = v;
    }
  }
  return 0;
}
