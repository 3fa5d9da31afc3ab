/* bench_search_corpus.h: the synthetic corpus and query set of the search benchmark, shared
** by bench_search.c (C) and xapian_ref.cc (C++) so both index byte-identical text. Written in
** the common subset of C and C++; everything is deterministic from the seed.
** Corpus: the lowercase ASCII words of /usr/share/dict/words (wamerican), shuffled by the seed,
** the first SC_VOCAB of them ranked; each document draws 80..120 words from a Zipf(s = 1)
** distribution over the ranks, plus price (f64), days (i32) and tier (i32).
** Queries: SC_QUERIES two-term OR queries, both terms from ranks [SC_QMIN, SC_QMAX) (also run
** as two-term AND); SC_QUERIES rare-term queries from ranks [SC_RMIN, SC_RMAX) (sc_rare). */
#ifndef BENCH_SEARCH_CORPUS_H
#define BENCH_SEARCH_CORPUS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SC_VOCAB 50000
#define SC_QUERIES 200
#define SC_QMIN 300
#define SC_QMAX 3000
#define SC_SEED 0x51dd17c4u

typedef struct sc_corpus {
  char **words;     /* by rank */
  size_t nwords;
  double *cdf;      /* nwords entries, cdf[nwords-1] == 1 */
  char *pool;       /* word storage */
} sc_corpus;

static inline uint64_t sc_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static inline uint64_t sc_next(uint64_t *s) { return sc_mix((*s)++ * 0x2545f4914f6cdd1dull); }

/* 0 on success. */
static inline int sc_load(sc_corpus *c, const char *dict) {
  FILE *f = fopen(dict, "r");
  char line[256];
  size_t cap = 1 << 17, n = 0, used = 0, i;
  uint64_t s = SC_SEED;
  double sum = 0, acc = 0;
  if (!f) return -1;
  c->pool = (char *)malloc(4u << 20);
  c->words = (char **)malloc(cap * sizeof *c->words);
  while (fgets(line, sizeof line, f)) {
    size_t l = strcspn(line, "\r\n"), k;
    int ok = l >= 2 && l <= 15;
    line[l] = 0;
    for (k = 0; ok && k < l; k++) ok = line[k] >= 'a' && line[k] <= 'z';
    if (!ok || n == cap || used + l + 1 > (4u << 20)) continue;
    if (n && !strcmp(c->words[n - 1], line)) continue;
    memcpy(c->pool + used, line, l + 1);
    c->words[n++] = c->pool + used;
    used += l + 1;
  }
  fclose(f);
  for (i = n; i > 1; i--) { /* Fisher-Yates with the seed */
    size_t j = (size_t)(sc_next(&s) % i);
    char *t = c->words[i - 1];
    c->words[i - 1] = c->words[j];
    c->words[j] = t;
  }
  c->nwords = n < SC_VOCAB ? n : SC_VOCAB;
  c->cdf = (double *)malloc(c->nwords * sizeof *c->cdf);
  for (i = 0; i < c->nwords; i++) sum += 1.0 / (double)(i + 1);
  for (i = 0; i < c->nwords; i++) {
    acc += 1.0 / (double)(i + 1) / sum;
    c->cdf[i] = acc;
  }
  c->cdf[c->nwords - 1] = 1.0;
  return c->nwords < 1000 ? -1 : 0;
}

static inline void sc_free(sc_corpus *c) {
  free(c->words);
  free(c->cdf);
  free(c->pool);
}

static inline size_t sc_rank(const sc_corpus *c, uint64_t *s) {
  double u = (double)(sc_next(s) >> 11) * (1.0 / 9007199254740992.0);
  size_t lo = 0, hi = c->nwords - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c->cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

typedef struct sc_doc {
  char id[24];
  char *text; /* body, words separated by single spaces */
  size_t len;
  double price;
  int32_t days, tier;
} sc_doc;

/* Document I into D; TEXT must hold 121 * 16 bytes. */
static inline void sc_doc_make(const sc_corpus *c, uint64_t i, sc_doc *d, char *text) {
  uint64_t s = sc_mix(SC_SEED ^ (i * 0x9e3779b97f4a7c15ull));
  int n = 80 + (int)(sc_next(&s) % 41), k;
  size_t len = 0;
  for (k = 0; k < n; k++) {
    const char *w = c->words[sc_rank(c, &s)];
    size_t l = strlen(w);
    if (k) text[len++] = ' ';
    memcpy(text + len, w, l);
    len += l;
  }
  text[len] = 0;
  snprintf(d->id, sizeof d->id, "%llu", (unsigned long long)i);
  d->text = text;
  d->len = len;
  d->price = (double)(sc_next(&s) % 100000) / 100.0;
  d->days = (int32_t)(sc_next(&s) % 3650);
  d->tier = (int32_t)(sc_next(&s) % 5);
}

/* Query Q's two terms. */
static inline void sc_query(const sc_corpus *c, int q, const char **a, const char **b) {
  uint64_t s = sc_mix(SC_SEED ^ 0xabcdefull ^ ((uint64_t)q << 20));
  size_t ra = SC_QMIN + (size_t)(sc_next(&s) % (SC_QMAX - SC_QMIN)), rb;
  do rb = SC_QMIN + (size_t)(sc_next(&s) % (SC_QMAX - SC_QMIN));
  while (rb == ra);
  *a = c->words[ra];
  *b = c->words[rb];
}

/* Rare-term query Q's term: ranks [SC_RMIN, SC_RMAX) (about 0.2..1 per 1,000 documents). */
#define SC_RMIN 10000
#define SC_RMAX 40000
static inline const char *sc_rare(const sc_corpus *c, int q) {
  uint64_t s = sc_mix(SC_SEED ^ 0x7a11ull ^ ((uint64_t)q << 24));
  size_t r = SC_RMIN + (size_t)(sc_next(&s) % (SC_RMAX - SC_RMIN));
  return c->words[r < c->nwords ? r : c->nwords - 1];
}

/* Phrase query Q of K (2..3) words: K consecutive words of document Q * 7919 % N at an offset
** drawn from the seed, so every phrase occurs at least once; words separated by one space in
** OUT (64 * K bytes). TEXT: scratch of 121 * 16 bytes. */
static inline void sc_phrase(const sc_corpus *c, int q, int k, uint64_t n, char *out, char *text) {
  sc_doc d;
  uint64_t s = sc_mix(SC_SEED ^ 0x9a5eull ^ ((uint64_t)q << 16) ^ (uint64_t)k);
  sc_doc_make(c, ((uint64_t)q * 7919u) % n, &d, text);
  int nw = 1;
  for (size_t i = 0; i < d.len; i++) nw += d.text[i] == ' ';
  int start = (int)(sc_next(&s) % (uint64_t)(nw - k + 1)), w = 0;
  size_t i = 0, o = 0;
  for (; i < d.len && w < start; i++) w += d.text[i] == ' ';
  for (w = 0; i < d.len; i++) {
    if (d.text[i] == ' ' && ++w == k) break;
    out[o++] = d.text[i];
  }
  out[o] = 0;
}
static inline int sc_cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* Percentile P (0..100) of N sorted values. */
static inline double sc_pct(const double *sorted, size_t n, double p) {
  size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
  return sorted[i < n ? i : n - 1];
}

#endif
