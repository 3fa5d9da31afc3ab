/* bm25.c: BM25 as Lucene >= 8 (BM25Similarity/BM25Scorer) computes it, and SmallFloat's
** one-byte length encoding. Arithmetic follows Lucene's types: idf in double rounded to float,
** avgdl as float of a double quotient, the norm cache and the score in float. */
#include "index.h"

#include <math.h>

/* SmallFloat.longToInt4: 4 significant bits, 3 of them stored, shift in the upper bits. */
static uint32_t long_to_int4(uint64_t i) {
  unsigned bits = i ? 64 - (unsigned)__builtin_clzll(i) : 0;
  unsigned shift;
  uint32_t enc;
  if (bits < 4) return (uint32_t)i; /* subnormal */
  shift = bits - 4;
  enc = (uint32_t)(i >> shift) & 0x07;
  return enc | ((shift + 1) << 3);
}

static uint64_t int4_to_long(uint32_t i) {
  uint64_t bits = i & 0x07;
  int shift = (int)(i >> 3) - 1;
  return shift == -1 ? bits : (bits | 0x08) << shift;
}

/* MAX_INT4 = longToInt4(Integer.MAX_VALUE) = 231, NUM_FREE_VALUES = 255 - 231 = 24 */
#define NUM_FREE_VALUES 24u

uint8_t qi_smallfloat_int_to_byte4(uint32_t i) {
  if (i > INT32_MAX) i = INT32_MAX;
  if (i < NUM_FREE_VALUES) return (uint8_t)i;
  return (uint8_t)(NUM_FREE_VALUES + long_to_int4(i - NUM_FREE_VALUES));
}

uint32_t qi_smallfloat_byte4_to_int(uint8_t b) {
  if (b < NUM_FREE_VALUES) return b;
  return (uint32_t)(NUM_FREE_VALUES + int4_to_long(b - NUM_FREE_VALUES));
}

float qi_bm25_idf(uint64_t doc_count, uint64_t doc_freq) {
  return (float)log(1.0 + ((double)doc_count - (double)doc_freq + 0.5) / ((double)doc_freq + 0.5));
}

void qi_bm25_init(qi_bm25 *w, float boost, const qi_field_stats *stats, uint64_t doc_freq,
                  float k1, float b) {
  unsigned i;
  w->k1 = k1 < 0 ? 1.2f : k1;
  w->b = b < 0 ? 0.75f : b;
  w->idf = qi_bm25_idf(stats->doc_count, doc_freq);
  w->avgdl = stats->doc_count
                 ? (float)((double)stats->sum_total_term_freq / (double)stats->doc_count)
                 : 1.0f;
  if (!(w->avgdl > 0)) w->avgdl = 1.0f;
  w->weight = boost * w->idf;
  for (i = 0; i < 256; i++)
    w->cache[i] = 1.0f / (w->k1 * ((1.0f - w->b) +
                                   w->b * (float)qi_smallfloat_byte4_to_int((uint8_t)i) / w->avgdl));
}

void qi_bm25_score_block(const qi_bm25 *w, const uint32_t *freqs, const uint8_t *norms, size_t n,
                         float *out) {
  size_t i;
  for (i = 0; i < n; i++) out[i] = qi_bm25_score(w, freqs[i], norms[i]);
}
