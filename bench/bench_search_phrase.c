/* bench_search_phrase.c: the phrase and highlight rows of bench_search (issue 12), through
** bench_search_phrase(), which bench_search.c calls on the snapshot it has built.
**   search/phrase2_qq_p50, search/phrase3_qq_p50  SC_QUERIES exact 2- and 3-word phrases
**       (sc_phrase: words of a corpus document, so each occurs) as match_phrase through
**       qq_search, top 10, against Xapian's OP_PHRASE on the same corpus indexed with positions
**       (xapian_ref ... phrase, a second child). Median over RUNS runs of a run's p50, after a
**       warm-up; goal: at or under Xapian's. Over at most BENCH_SEARCH_PHRASE_DOCS (100000)
**       documents (Xapian indexes positions slowly): above that, both sides get an index of the
**       first that many documents of their own.
**   search/highlight_top10  the or2 match queries with _source, then the same with
**       "highlight": {"fields": {"body": {}}}: the added p50 (goal < 200 us for 10 hits). */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_search_corpus.h"
#include "index.h"
#ifdef BENCH_HAVE_QQ
#include <jansson.h>

#include "query.h"
#endif

#define PH_RUNS 5

void bench_search_phrase(const qi_snapshot *s, const sc_corpus *c, uint64_t n, const char *self, const char *base);

#ifdef BENCH_HAVE_QQ
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, sc_cmp_double);
  return v[n / 2];
}

typedef struct xph {
  double index_s, p50[4], p99[4];
  unsigned long long hits[4];
} xph;

static int run_xapian_phrase(const char *self, uint64_t n, const char *dir, xph *x) {
  char cmd[16384], line[512], bin[4096];
  const char *env = getenv("BENCH_SEARCH_XAPIAN");
  memset(x, 0, sizeof *x);
  if (env && *env) snprintf(bin, sizeof bin, "%s", env);
  else {
    const char *sl = strrchr(self, '/');
    snprintf(bin, sizeof bin, "%.*sxapian_ref", sl ? (int)(sl - self + 1) : 0, self);
  }
  if (access(bin, X_OK)) return -1;
  snprintf(cmd, sizeof cmd, "'%s' /usr/share/dict/words %llu '%s' 10000 %d phrase", bin, (unsigned long long)n, dir,
           PH_RUNS);
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    int k;
    double a, b;
    unsigned long long h;
    if (sscanf(line, "xphrase index %lf", &a) == 1) x->index_s = a;
    else if (sscanf(line, "xphrase %d %lf %lf %llu", &k, &a, &b, &h) == 4 && k >= 2 && k <= 3) {
      x->p50[k] = a;
      x->p99[k] = b;
      x->hits[k] = h;
    }
  }
  return pclose(f) == 0 && x->p50[2] > 0 ? 0 : -1;
}

/* p50 and p99 (medians over runs) of BODY(q) for q < SC_QUERIES; hits: the last run's total */
typedef int (*body_fn)(const sc_corpus *c, int q, uint64_t n, char *out, size_t cap, int k);

static int time_bodies(const qi_snapshot *s, const sc_corpus *c, uint64_t n, body_fn fn, int k, double *m50,
                       double *m99, unsigned long long *hits, qb_err *err) {
  qq_env qenv;
  const qi_snapshot *snaps[1] = {s};
  double ql[SC_QUERIES], q50[PH_RUNS], q99[PH_RUNS];
  int fails = 0;
  memset(&qenv, 0, sizeof qenv);
  for (int r = 0; r <= PH_RUNS; r++) {
    *hits = 0;
    for (int q = 0; q < SC_QUERIES; q++) {
      char body[1024];
      json_t *out = NULL;
      int bl = fn(c, q, n, body, sizeof body, k);
      double q0 = now_s();
      if (qq_search(&qenv, "bench", snaps, 1, body, (size_t)bl, &out, err)) fails++;
      ql[q] = (now_s() - q0) * 1e6;
      json_t *t = json_object_get(json_object_get(json_object_get(out, "hits"), "total"), "value");
      *hits += (unsigned long long)json_integer_value(t);
      json_decref(out);
    }
    qsort(ql, SC_QUERIES, sizeof *ql, sc_cmp_double);
    if (r) {
      q50[r - 1] = sc_pct(ql, SC_QUERIES, 50);
      q99[r - 1] = sc_pct(ql, SC_QUERIES, 99);
    }
  }
  *m50 = median(q50, PH_RUNS);
  *m99 = median(q99, PH_RUNS);
  return fails;
}

static int phrase_body(const sc_corpus *c, int q, uint64_t n, char *out, size_t cap, int k) {
  char ph[256], text[121 * 16];
  sc_phrase(c, q, k, n, ph, text);
  return snprintf(out, cap, "{\"size\":10,\"_source\":false,\"query\":{\"match_phrase\":{\"body\":\"%s\"}}}", ph);
}

static int or2_body(const sc_corpus *c, int q, uint64_t n, char *out, size_t cap, int hl) {
  const char *a, *b;
  (void)n;
  sc_query(c, q, &a, &b);
  return snprintf(out, cap, "{\"size\":10,\"query\":{\"match\":{\"body\":\"%s %s\"}}%s}", a, b,
                  hl ? ",\"highlight\":{\"fields\":{\"body\":{}}}" : "");
}

/* Our index of the first N corpus documents in DIR (the phrase rows' own, when the main one is
** larger than their cap); NULL on failure */
static qi_index *own_index(const sc_corpus *c, uint64_t n, const char *dir) {
  qi_options opt = {0};
  qi_index *ix;
  qb_err err;
  char text[121 * 16], json[8192];
  opt.max_buffered_docs = 100000;
  if (qi_index_create(dir, "{\"mappings\":{\"properties\":{\"body\":{\"type\":\"text\"}}}}", &opt, &ix, &err))
    return NULL;
  for (uint64_t i = 0; i < n;) {
    qi_bulk *b;
    uint64_t end = i + 10000 < n ? i + 10000 : n;
    if (qi_bulk_begin(ix, &b, &err)) break;
    for (; i < end; i++) {
      sc_doc d;
      sc_doc_make(c, i, &d, text);
      int len = snprintf(json, sizeof json, "{\"body\":\"%s\"}", d.text);
      if (qi_bulk_put(b, d.id, json, (size_t)len, NULL, &err)) break;
    }
    if (qi_bulk_commit(b, &err) || qi_index_refresh(ix, &err)) break;
  }
  qi_index_wait_merges(ix);
  return ix;
}

void bench_search_phrase(const qi_snapshot *s, const sc_corpus *c, uint64_t n, const char *self, const char *base) {
  char dir[4200], odir[4200];
  xph x;
  qb_err err;
  /* Xapian indexes positions at about a third of its rate without them: the phrase rows use at
  ** most BENCH_SEARCH_PHRASE_DOCS (default 100000) documents, both sides on the same ones */
  const char *cap_env = getenv("BENCH_SEARCH_PHRASE_DOCS");
  uint64_t cap = cap_env && *cap_env ? strtoull(cap_env, NULL, 10) : 100000, pn = n < cap ? n : cap;
  qi_index *own = NULL;
  qi_snapshot *own_s = NULL;
  const qi_snapshot *ps = s;
  if (pn < n) {
    snprintf(odir, sizeof odir, "%s/phrase_ours", base);
    if (!(own = own_index(c, pn, odir))) {
      printf("search/phrase  skipped: could not build the %llu-document index\n", (unsigned long long)pn);
      return;
    }
    ps = own_s = qi_index_snapshot(own);
  }
  printf("# phrase rows over %llu documents\n", (unsigned long long)pn);
  snprintf(dir, sizeof dir, "%s/xapian_phrase", base);
  int have_x = !getenv("BENCH_SEARCH_NO_XAPIAN_PHRASE") && run_xapian_phrase(self, pn, dir, &x) == 0;
  if (have_x) printf("# xapian phrase index (with positions): %.1fs\n", x.index_s);
  for (int k = 2; k <= 3; k++) {
    double m50, m99;
    unsigned long long hits;
    qb_err_clear(&err);
    int fails = time_bodies(ps, c, pn, phrase_body, k, &m50, &m99, &hits, &err);
    if (fails) printf("search/phrase%d_qq_p50  query layer failed on %d queries: %s\n", k, fails, err.msg);
    else if (have_x)
      printf("search/phrase%d_qq_p50  ours %.1fus  xapian %.1fus  %.2fx xapian (goal <= 1x)  med/%d  p99 %.1fus vs "
             "%.1fus  hits %llu (xapian estimates %llu)\n", k, m50, x.p50[k], m50 / x.p50[k], PH_RUNS, m99, x.p99[k],
             hits, x.hits[k]);
    else printf("search/phrase%d_qq_p50  ours %.1fus  med/%d  p99 %.1fus  hits %llu (xapian_ref not available)\n", k,
                m50, PH_RUNS, m99, hits);
    fflush(stdout);
  }
  qi_snapshot_release(own_s);
  qi_index_close(own);
  double b50, b99, h50, h99;
  unsigned long long hb, hh;
  qb_err_clear(&err);
  int fails = time_bodies(s, c, n, or2_body, 0, &b50, &b99, &hb, &err);
  fails += time_bodies(s, c, n, or2_body, 1, &h50, &h99, &hh, &err);
  if (fails) printf("search/highlight_top10  query layer failed on %d queries: %s\n", fails, err.msg);
  else
    printf("search/highlight_top10  +%.1fus (goal < 200us)  p50 %.1fus with highlight vs %.1fus without (both "
           "with _source)  med/%d\n", h50 - b50, h50, b50, PH_RUNS);
  fflush(stdout);
}
#else
void bench_search_phrase(const qi_snapshot *s, const sc_corpus *c, uint64_t n, const char *self, const char *base) {
  (void)s, (void)c, (void)n, (void)self, (void)base;
  printf("search/phrase  skipped: the query layer is not built (QD_BENCH_SEARCH_QQ)\n");
}
#endif
