/* support.h: helpers shared by the index tests: temp directories, and a plain exhaustive
** BM25 disjunction over a snapshot (the reference the query layer's WAND must match). */
#ifndef QI_TEST_SUPPORT_H
#define QI_TEST_SUPPORT_H

#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index.h"

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(p);
}

/* A fresh temp directory in BUF (PATH_MAX). */
static inline char *tmpdir_new(char *buf) {
  const char *t = getenv("TMPDIR");
  snprintf(buf, 4096, "%s/qi_test_XXXXXX", t && *t ? t : "/tmp");
  return mkdtemp(buf);
}

static inline void tmpdir_remove(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

typedef struct hit {
  char id[64];
  float score;
  uint64_t gdoc;
} hit;

static int hit_cmp(const void *a, const void *b) {
  const hit *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->gdoc < y->gdoc ? -1 : x->gdoc > y->gdoc;
}

/* Score every live doc matching any of TERMS (already analyzed) in FIELD; sorted hits in OUT
** (up to MAX); returns the number of matching docs. */
static inline size_t search_or(qi_snapshot *s, const char *field, const char *const *terms,
                               size_t nterms, hit *out, size_t max) {
  qi_field_info fi;
  qi_field_stats st;
  size_t nseg = qi_snapshot_segment_count(s), i, t, total = 0, cap = 1024, n = 0;
  hit *all = malloc(cap * sizeof *all);
  if (qi_snapshot_field(s, field, &fi)) {
    free(all);
    return 0;
  }
  qi_snapshot_field_stats(s, fi.id, &st);
  for (i = 0; i < nseg; i++) {
    const qi_segment *seg = qi_snapshot_segment(s, i);
    uint32_t maxd = qi_segment_max_doc(seg), d;
    float *sc = calloc(maxd, sizeof *sc);
    char *m = calloc(maxd, 1);
    const uint8_t *norms = qi_segment_norms(seg, fi.id);
    for (t = 0; t < nterms; t++) {
      qi_bm25 w;
      qi_postings *p = NULL;
      qi_bm25_init(&w, 1.0f, &st, qi_snapshot_doc_freq(s, fi.id, terms[t], strlen(terms[t])), -1,
                   -1);
      qi_postings_open_term(seg, fi.id, terms[t], strlen(terms[t]), &p, NULL);
      if (!p) continue;
      while ((d = qi_postings_next(p)) != QI_NO_MORE_DOCS) {
        sc[d] += qi_bm25_score(&w, qi_postings_freq(p), norms ? norms[d] : 1);
        m[d] = 1;
      }
      qi_postings_free(p);
    }
    for (d = 0; d < maxd; d++) {
      if (!m[d]) continue;
      if (n == cap) all = realloc(all, (cap *= 2) * sizeof *all);
      snprintf(all[n].id, sizeof all[n].id, "%s", qi_segment_doc_id(seg, d, NULL));
      all[n].score = sc[d];
      all[n].gdoc = qi_snapshot_doc_base(s, i) + d;
      n++;
    }
    free(sc);
    free(m);
  }
  qsort(all, n, sizeof *all, hit_cmp);
  total = n;
  if (n > max) n = max;
  memcpy(out, all, n * sizeof *out);
  free(all);
  return total;
}

#endif
