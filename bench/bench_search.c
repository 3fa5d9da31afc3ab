/* bench_search.c: the search benchmark, ours vs Xapian (bench/xapian_ref.cc, run as a child).
** Cases:
**   search/index        indexing rate: N docs in bulk batches of 10000 (each one SQLite
**                       transaction, fsync'd), then a refresh; Xapian: replace_document + a
**                       commit() every 10000 docs. One run each (N = 1M takes a while).
**   search/or2_p50      p50 latency of 200 two-term OR match queries, top 10, BM25
**   search/or2_p99      p99 of the same. Ours: block-max WAND over the postings API (what the
**                       query layer does), see topk_or below; median of 5 runs after a warm-up.
**   search/or2_best_p99 p99 over each query's best time in the 5 runs: on a shared machine a
**                       query preempted for a scheduler tick (4 ms) dominates the plain p99.
**   search/or2_qq_p50   the same queries as JSON `match` queries through src/query (qq_search),
**                       when the query layer is built (BENCH_HAVE_QQ)
**   search/{none,rare,and2}_qq_p50  per-query floor through qq_search: match_none, one rare term
**                       (sc_rare: ranks 10000..40000), two-term AND (match operator and, the or2
**                       pairs); Xapian's rare and AND from xapian_ref (bench_qq_latency below)
**   search/open         reopening our index (segment files + id scan of the store)
**   search/refresh_during_merge  p50/max of the refreshes (one per bulk batch) that ran while a
**                       background merge was in progress (goal < 50 ms)
**   search/rss_load     RssAnon/RssFile/VmRSS of this process (/proc/self/status) once the index
**                       is loaded and its merges settled; search/rss_reopen the same in a fresh
**                       process that reopened the index and ran the queries (a restart). Goal:
**                       RssAnon (memory beyond the page cache) < 200 MiB at 1M documents.
**   search/phrase{2,3}_qq_p50, search/highlight_top10  bench_search_phrase.c (a weak hook)
**   search/script_score owned by the query helper: bench_search_script_score() below is a weak
**                       hook that a bench/bench_search_script.c may define.
** Usage: bench_search [N]  (or BENCH_SEARCH_DOCS=N; default 1000000; `make bench-large`: 10M). BENCH_SEARCH_XAPIAN=path
** overrides the xapian_ref binary (default: next to this one). For profiling (perf record -p):
** BENCH_SEARCH_QQ_ONLY=K indexes, then runs only the qq_search floor rows K times and exits;
** BENCH_SEARCH_QQ_KIND=none|rare|and2 keeps one of those rows. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
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

#define BATCH 10000
#define RUNS 5
#define TOPK 10

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(p);
}

/* ---- top-k disjunction with block-max WAND ------------------------------------------------ */

typedef struct hit {
  float score;
  uint64_t gdoc;
  const qi_segment *seg;
  uint32_t doc;
} hit;

typedef struct heap {
  hit h[TOPK];
  int n;
} heap;

/* worse = lower score, then later doc */
static int worse(const hit *a, const hit *b) {
  return a->score < b->score || (a->score == b->score && a->gdoc > b->gdoc);
}

static void heap_push(heap *hp, hit x) {
  int i, c;
  if (hp->n < TOPK) {
    i = hp->n++;
    while (i && worse(&x, &hp->h[(i - 1) / 2])) {
      hp->h[i] = hp->h[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    hp->h[i] = x;
    return;
  }
  if (!worse(&hp->h[0], &x)) return;
  i = 0;
  for (;;) {
    c = 2 * i + 1;
    if (c >= TOPK) break;
    if (c + 1 < TOPK && worse(&hp->h[c + 1], &hp->h[c])) c++;
    if (!worse(&hp->h[c], &x)) break;
    hp->h[i] = hp->h[c];
    i = c;
  }
  hp->h[i] = x;
}

typedef struct cur {
  qi_postings *p;
  const qi_bm25 *w;
  float ub;      /* whole-list bound */
  uint32_t doc;
  int term;      /* index in the query, to sum scores in query order */
} cur;

#define MAXT 8

/* Top TOPK of the OR of NT terms (already analyzed) in FIELD over snapshot S. Returns the
** number of hits written to OUT (sorted best first). */
static int topk_or(qi_snapshot *s, uint32_t field, const char *const *terms, int nt, hit *out) {
  qi_field_stats st;
  qi_bm25 w[MAXT];
  heap hp = {.n = 0};
  size_t si, nseg = qi_snapshot_segment_count(s);
  int i, j;
  qi_snapshot_field_stats(s, field, &st);
  for (i = 0; i < nt; i++)
    qi_bm25_init(&w[i], 1.0f, &st, qi_snapshot_doc_freq(s, field, terms[i], strlen(terms[i])), -1, -1);
  for (si = 0; si < nseg; si++) {
    const qi_segment *seg = qi_snapshot_segment(s, si);
    const uint8_t *norms = qi_segment_norms(seg, field);
    uint64_t base = qi_snapshot_doc_base(s, si);
    cur c[MAXT];
    int nc = 0;
    for (i = 0; i < nt; i++) {
      qi_postings *p = NULL;
      qi_block_info bi;
      qi_postings_open_term(seg, field, terms[i], strlen(terms[i]), &p, NULL);
      if (!p) continue;
      qi_postings_term_bound(p, &bi);
      c[nc].p = p;
      c[nc].w = &w[i];
      c[nc].ub = qi_bm25_score(&w[i], bi.max_freq, bi.min_norm) * 1.00001f;
      c[nc].term = i;
      c[nc].doc = qi_postings_next(p);
      if (c[nc].doc == QI_NO_MORE_DOCS) qi_postings_free(p);
      else nc++;
    }
    while (nc) {
      float theta = hp.n == TOPK ? hp.h[0].score : -1.0f, acc = 0, bsum = 0;
      uint32_t pivot, next;
      int pi = -1;
      /* insertion sort by doc (few cursors) */
      for (i = 1; i < nc; i++)
        for (j = i; j > 0 && c[j].doc < c[j - 1].doc; j--) {
          cur t = c[j];
          c[j] = c[j - 1];
          c[j - 1] = t;
        }
      for (i = 0; i < nc; i++) {
        acc += c[i].ub;
        if (acc > theta) {
          pi = i;
          break;
        }
      }
      if (pi < 0) break;
      pivot = c[pi].doc;
      while (pi + 1 < nc && c[pi + 1].doc == pivot) pi++;
      /* block-max check over the cursors up to the pivot */
      next = pi + 1 < nc ? c[pi + 1].doc : QI_NO_MORE_DOCS;
      for (i = 0; i <= pi; i++) {
        qi_block_info bi;
        if (qi_postings_block_for(c[i].p, pivot, &bi)) {
          bsum += qi_bm25_score(c[i].w, bi.max_freq, bi.min_norm) * 1.00001f;
          if (bi.last_doc + 1 < next) next = bi.last_doc + 1;
        }
      }
      if (bsum <= theta) {
        /* nothing in [pivot, next) can compete: skip the cursors past it */
        for (i = 0; i <= pi; i++) c[i].doc = qi_postings_advance(c[i].p, next);
      } else if (c[0].doc == pivot) {
        float sc[MAXT] = {0}, total = 0;
        for (i = 0; i <= pi; i++) {
          sc[c[i].term] = qi_bm25_score(c[i].w, qi_postings_freq(c[i].p), norms ? norms[pivot] : 1);
          c[i].doc = qi_postings_next(c[i].p);
        }
        for (i = 0; i < nt; i++) total += sc[i];
        if (total > theta) heap_push(&hp, (hit){total, base + pivot, seg, pivot});
      } else {
        for (i = 0; i < pi && c[i].doc < pivot; i++) c[i].doc = qi_postings_advance(c[i].p, pivot);
      }
      for (i = 0; i < nc;) {
        if (c[i].doc == QI_NO_MORE_DOCS) {
          qi_postings_free(c[i].p);
          c[i] = c[--nc];
        } else {
          i++;
        }
      }
    }
    for (i = 0; i < nc; i++) qi_postings_free(c[i].p);
  }
  /* pop in order */
  {
    int n = hp.n;
    for (i = n - 1; i >= 0; i--) {
      out[i] = hp.h[0];
      hp.h[0] = hp.h[--hp.n];
      {
        int k = 0, ch;
        hit x = hp.h[0];
        for (;;) {
          ch = 2 * k + 1;
          if (ch >= hp.n) break;
          if (ch + 1 < hp.n && worse(&hp.h[ch + 1], &hp.h[ch])) ch++;
          if (!worse(&hp.h[ch], &x)) break;
          hp.h[k] = hp.h[ch];
          k = ch;
        }
        if (hp.n) hp.h[k] = x;
      }
    }
    return n;
  }
}

/* Exhaustive reference for checking topk_or on a few queries. */
static int exhaustive_or(qi_snapshot *s, uint32_t field, const char *const *terms, int nt,
                         hit *out) {
  qi_field_stats st;
  qi_bm25 w[MAXT];
  heap hp = {.n = 0};
  size_t si;
  int i;
  qi_snapshot_field_stats(s, field, &st);
  for (i = 0; i < nt; i++)
    qi_bm25_init(&w[i], 1.0f, &st, qi_snapshot_doc_freq(s, field, terms[i], strlen(terms[i])), -1, -1);
  for (si = 0; si < qi_snapshot_segment_count(s); si++) {
    const qi_segment *seg = qi_snapshot_segment(s, si);
    uint32_t maxd = qi_segment_max_doc(seg), d;
    const uint8_t *norms = qi_segment_norms(seg, field);
    float *sc = calloc((size_t)maxd * MAXT, sizeof *sc);
    char *m = calloc(maxd, 1);
    for (i = 0; i < nt; i++) {
      qi_postings *p = NULL;
      qi_postings_open_term(seg, field, terms[i], strlen(terms[i]), &p, NULL);
      if (!p) continue;
      while ((d = qi_postings_next(p)) != QI_NO_MORE_DOCS) {
        sc[(size_t)d * MAXT + (size_t)i] = qi_bm25_score(&w[i], qi_postings_freq(p), norms ? norms[d] : 1);
        m[d] = 1;
      }
      qi_postings_free(p);
    }
    for (d = 0; d < maxd; d++) {
      float t = 0;
      if (!m[d]) continue;
      for (i = 0; i < nt; i++) t += sc[(size_t)d * MAXT + (size_t)i];
      heap_push(&hp, (hit){t, qi_snapshot_doc_base(s, si) + d, seg, d});
    }
    free(sc);
    free(m);
  }
  for (i = hp.n - 1; i >= 0; i--) {
    /* selection: take the worst remaining each time */
    int k, best = 0;
    for (k = 1; k <= i; k++)
      if (worse(&hp.h[k], &hp.h[best])) best = k;
    out[i] = hp.h[best];
    hp.h[best] = hp.h[i];
  }
  return hp.n;
}

/* ---- the script_score hook (query layer) ------------------------------------------------- */

/* Defined by bench/bench_search_script.c (the query helper's) when present: runs the
** script_score cases on the index built here and prints their lines. */
/* bench/bench_search_phrase.c's phrase and highlight rows, when it is linked in */
__attribute__((weak)) void bench_search_phrase(const qi_snapshot *s, const sc_corpus *c, uint64_t n,
                                               const char *self, const char *base);
__attribute__((weak)) void bench_search_script_score(qi_index *ix, const sc_corpus *c,
                                                     uint64_t ndocs);

/* ---- main --------------------------------------------------------------------------------- */

static char g_base[4096]; /* the temp directory, removed on exit and on SIGINT/SIGTERM */

static void on_signal(int sig) {
  (void)sig;
  if (g_base[0]) nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  _exit(130);
}

typedef struct xres {
  double index_s;
  double p50[RUNS + 1], p99[RUNS + 1];
  double best50, best99;
  int runs;
  char top[20][TOPK][16];
  int ntop[20];
  double xq[2][2]; /* rare, and2: p50, p99 (0: not reported) */
} xres;

/* A "xq rare|and2 p50 p99" line of xapian_ref into X; 0 when LINE is one */
static int parse_xq(const char *line, xres *x) {
  char kind[16];
  double a, b;
  if (sscanf(line, "xq %15s %lf %lf", kind, &a, &b) != 3) return -1;
  int k = !strcmp(kind, "rare") ? 0 : !strcmp(kind, "and2") ? 1 : -1;
  if (k >= 0) {
    x->xq[k][0] = a;
    x->xq[k][1] = b;
  }
  return 0;
}

static int run_xapian(const char *self, uint64_t n, const char *dir, xres *x) {
  char cmd[16384], line[4096], bin[4096];
  const char *env = getenv("BENCH_SEARCH_XAPIAN");
  FILE *f;
  memset(x, 0, sizeof *x);
  if (env && *env) {
    snprintf(bin, sizeof bin, "%s", env);
  } else {
    const char *sl = strrchr(self, '/');
    snprintf(bin, sizeof bin, "%.*sxapian_ref", sl ? (int)(sl - self + 1) : 0, self);
  }
  if (access(bin, X_OK)) return -1;
  snprintf(cmd, sizeof cmd, "'%s' /usr/share/dict/words %llu '%s' %d %d", bin,
           (unsigned long long)n, dir, BATCH, RUNS);
  if (!(f = popen(cmd, "r"))) return -1;
  while (fgets(line, sizeof line, f)) {
    int r, q;
    double a, b;
    if (!parse_xq(line, x)) continue;
    if (sscanf(line, "index %lf", &a) == 1) x->index_s = a;
    else if (sscanf(line, "best %lf %lf", &a, &b) == 2) {
      x->best50 = a;
      x->best99 = b;
    }
    else if (sscanf(line, "run %d %lf %lf", &r, &a, &b) == 3 && r <= RUNS) {
      x->p50[r] = a;
      x->p99[r] = b;
      x->runs = r;
    } else if (sscanf(line, "top %d", &q) == 1 && q < 20) {
      char *t = strtok(line + 4, " \n");
      t = strtok(NULL, " \n");
      while (t && x->ntop[q] < TOPK) {
        snprintf(x->top[q][x->ntop[q]++], 16, "%s", t);
        t = strtok(NULL, " \n");
      }
    }
  }
  return pclose(f) == 0 && x->index_s > 0 ? 0 : -1;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, sc_cmp_double);
  return v[n / 2];
}

static void minmax(const double *v, int n, double *lo, double *hi) {
  int i;
  *lo = *hi = v[0];
  for (i = 1; i < n; i++) {
    if (v[i] < *lo) *lo = v[i];
    if (v[i] > *hi) *hi = v[i];
  }
}

/* ---- memory and refresh figures (issue 14) ------------------------------------------------- */

typedef struct rss {
  double anon, file, total; /* MiB */
} rss;

static int rss_read(rss *out) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v;
  memset(out, 0, sizeof *out);
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "RssAnon: %ld kB", &v) == 1) out->anon = (double)v / 1024;
    else if (sscanf(line, "RssFile: %ld kB", &v) == 1) out->file = (double)v / 1024;
    else if (sscanf(line, "VmRSS: %ld kB", &v) == 1) out->total = (double)v / 1024;
  }
  fclose(f);
  return 0;
}

static void rss_print(const char *name, uint64_t n, const char *what) {
  rss r;
  if (rss_read(&r)) {
    printf("%s  skipped: no /proc/self/status\n", name);
    return;
  }
  printf("%s  ours RssAnon %.0f MiB  RssFile %.0f MiB  VmRSS %.0f MiB  %llu docs  %s  "
         "(goal RssAnon < 200 MiB at 1M)\n",
         name, r.anon, r.file, r.total, (unsigned long long)n, what);
  fflush(stdout);
}

/* Refresh times, split by whether a background merge was running when the refresh began. */
typedef struct refresh_log {
  double *during, *idle;
  size_t nd, ni, cap;
} refresh_log;

static void refresh_timed(qi_index *ix, refresh_log *l) {
  qi_index_stats st;
  qb_err err;
  double t0;
  int merging;
  qi_index_stats_get(ix, &st);
  merging = st.merges_running > 0;
  t0 = now_s();
  if (qi_index_refresh(ix, &err)) fprintf(stderr, "bench_search: refresh: %s\n", err.msg);
  t0 = (now_s() - t0) * 1e3;
  if (l->nd == l->cap || l->ni == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 256;
    l->during = realloc(l->during, l->cap * sizeof *l->during);
    l->idle = realloc(l->idle, l->cap * sizeof *l->idle);
  }
  if (merging) l->during[l->nd++] = t0;
  else l->idle[l->ni++] = t0;
}

static void refresh_print(refresh_log *l) {
  if (l->nd) {
    qsort(l->during, l->nd, sizeof *l->during, sc_cmp_double);
    printf("search/refresh_during_merge  ours p50 %.1fms  max %.1fms  (goal < 50 ms)  %zu "
           "refreshes during a merge",
           sc_pct(l->during, l->nd, 50), l->during[l->nd - 1], l->nd);
  } else {
    printf("search/refresh_during_merge  no refresh ran during a merge");
  }
  if (l->ni) {
    qsort(l->idle, l->ni, sizeof *l->idle, sc_cmp_double);
    printf("  (without: p50 %.1fms max %.1fms, %zu)", sc_pct(l->idle, l->ni, 50),
           l->idle[l->ni - 1], l->ni);
    if (l->nd) /* 1x: a running merge does not slow a refresh down */
      printf("  during/without p50 %.2fx", sc_pct(l->during, l->nd, 50) / sc_pct(l->idle, l->ni, 50));
  }
  printf("\n");
  fflush(stdout);
  free(l->during);
  free(l->idle);
}

/* `bench_search --reopen-rss DIR N`: a fresh process (a restart) opens the index, runs the
** queries once and prints its RSS. */
static int reopen_rss_main(const char *dir, uint64_t n) {
  sc_corpus c;
  qi_index *ix;
  qi_options opt = {0};
  qi_snapshot *s;
  qi_field_info fi;
  qb_err err;
  int q;
  if (sc_load(&c, "/usr/share/dict/words")) return 1;
  if (qi_index_open(dir, &opt, &ix, &err)) {
    printf("search/rss_reopen  failed: %s\n", err.msg);
    return 1;
  }
  rss_print("search/rss_reopen", qi_index_doc_count(ix), "after open");
  s = qi_index_snapshot(ix);
  qi_snapshot_field(s, "body", &fi);
  for (q = 0; q < SC_QUERIES; q++) {
    const char *t[2];
    hit h[TOPK];
    sc_query(&c, q, &t[0], &t[1]);
    (void)topk_or(s, fi.id, t, 2, h);
  }
  qi_snapshot_release(s);
  rss_print("search/rss_reopen", n, "after open + 200 queries");
  qi_index_close(ix);
  sc_free(&c);
  return 0;
}

static void reopen_rss(const char *self, const char *dir, uint64_t n) {
  char cmd[9000];
  fflush(stdout);
  snprintf(cmd, sizeof cmd, "'%s' --reopen-rss '%s' %llu", self, dir, (unsigned long long)n);
  if (system(cmd)) printf("search/rss_reopen  failed to run %s\n", self);
  fflush(stdout);
}

#ifdef BENCH_HAVE_QQ
/* The per-query floor through qq_search (issue 14): match_none, a rare term, a two-term AND;
** SC_QUERIES each, median over RUNS runs of each run's p50 (p99 alongside), after a warm-up;
** ratios to Xapian's rare-term and OP_AND times when X has them. */
static void bench_qq_latency(const qi_snapshot *s, const sc_corpus *c, const xres *x) {
  static const char *const names[3] = {"none", "rare", "and2"};
  qq_env qenv;
  const qi_snapshot *snaps[1] = {s};
  memset(&qenv, 0, sizeof qenv);
  const char *only = getenv("BENCH_SEARCH_QQ_KIND"); /* none|rare|and2: that row alone */
  for (int kind = 0; kind < 3; kind++) {
    if (only && strcmp(only, names[kind])) continue;
    double ql[SC_QUERIES], q50[RUNS], q99[RUNS], lo, hi, m50, m99;
    int fails = 0;
    qb_err err;
    qb_err_clear(&err);
    for (int r = 0; r <= RUNS; r++) {
      for (int q = 0; q < SC_QUERIES; q++) {
        const char *t[2];
        char body[256];
        json_t *out = NULL;
        int bl;
        sc_query(c, q, &t[0], &t[1]);
        if (kind == 0)
          bl = snprintf(body, sizeof body, "{\"size\":10,\"_source\":false,\"query\":{\"match_none\":{}}}");
        else if (kind == 1)
          bl = snprintf(body, sizeof body, "{\"size\":10,\"_source\":false,\"query\":{\"match\":{\"body\":\"%s\"}}}",
                        sc_rare(c, q));
        else
          bl = snprintf(body, sizeof body,
                        "{\"size\":10,\"_source\":false,\"query\":{\"match\":{\"body\":{\"query\":\"%s %s\","
                        "\"operator\":\"and\"}}}}", t[0], t[1]);
        double q0 = now_s();
        if (qq_search(&qenv, "bench", snaps, 1, body, (size_t)bl, &out, &err)) fails++;
        ql[q] = (now_s() - q0) * 1e6;
        json_decref(out);
      }
      qsort(ql, SC_QUERIES, sizeof *ql, sc_cmp_double);
      if (r) {
        q50[r - 1] = sc_pct(ql, SC_QUERIES, 50);
        q99[r - 1] = sc_pct(ql, SC_QUERIES, 99);
      }
    }
    minmax(q50, RUNS, &lo, &hi);
    m50 = median(q50, RUNS);
    m99 = median(q99, RUNS);
    if (fails) {
      printf("search/%s_qq_p50  query layer failed on %d queries: %s\n", names[kind], fails, err.msg);
    } else if (kind && x && x->xq[kind - 1][0] > 0) {
      printf("search/%s_qq_p50  ours %.1fus  xapian %.1fus  %.2fx xapian (goal <= 1x)  med/%d [%.1f..%.1f]  "
             "p99 %.1fus vs %.1fus\n", names[kind], m50, x->xq[kind - 1][0], m50 / x->xq[kind - 1][0], RUNS, lo, hi,
             m99, x->xq[kind - 1][1]);
    } else {
      printf("search/%s_qq_p50  ours %.1fus  med/%d [%.1f..%.1f]  p99 %.1fus\n", names[kind], m50, RUNS, lo, hi, m99);
    }
    fflush(stdout);
  }
}
#endif

int main(int argc, char **argv) {
  uint64_t n = 1000000, i;
  const char *env = getenv("BENCH_SEARCH_DOCS");
  char base[4096], ours_dir[4200], xap_dir[4200];
  sc_corpus c;
  qi_index *ix;
  qi_options opt = {0};
  qb_err err;
  char *text = malloc(121 * 16), *json = malloc(8192);
  double t0, t1, ours_rate, p50[RUNS], p99[RUNS], lat[SC_QUERIES], best[SC_QUERIES], lo, hi;
  qi_snapshot *s;
  qi_field_info fi;
  xres x;
  int have_x, r, q, mism = 0;
  const char *tmp = getenv("TMPDIR");
  refresh_log rl = {0};
  if (argc > 3 && !strcmp(argv[1], "--reopen-rss"))
    return reopen_rss_main(argv[2], strtoull(argv[3], NULL, 10));
  if (argc > 1) n = strtoull(argv[1], NULL, 10);
  else if (env && *env) n = strtoull(env, NULL, 10);
  if (n < 1000) n = 1000;
  if (sc_load(&c, "/usr/share/dict/words")) {
    printf("search/index  skipped: /usr/share/dict/words (wamerican) missing\n");
    return 0;
  }
  snprintf(base, sizeof base, "%s/bench_search_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(base)) return 1;
  snprintf(g_base, sizeof g_base, "%s", base);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_signal);
  snprintf(ours_dir, sizeof ours_dir, "%s/ours", base);
  snprintf(xap_dir, sizeof xap_dir, "%s/xapian", base);
  printf("# search: %llu docs of 80..120 Zipf words (vocabulary %zu), batches of %d, seed %#x\n",
         (unsigned long long)n, c.nwords, BATCH, SC_SEED);
  fflush(stdout);

  /* ours: index */
  opt.max_buffered_docs = 100000;
  if (qi_index_create(ours_dir,
                      "{\"mappings\":{\"properties\":{\"body\":{\"type\":\"text\"},\"price\":{"
                      "\"type\":\"double\"},\"days\":{\"type\":\"integer\"},\"tier\":{\"type\":"
                      "\"integer\"}}}}",
                      &opt, &ix, &err)) {
    fprintf(stderr, "bench_search: %s\n", err.msg);
    return 1;
  }
  t0 = now_s();
  for (i = 0; i < n;) {
    qi_bulk *b;
    uint64_t end = i + BATCH < n ? i + BATCH : n;
    if (qi_bulk_begin(ix, &b, &err)) break;
    for (; i < end; i++) {
      sc_doc d;
      int len;
      sc_doc_make(&c, i, &d, text);
      len = snprintf(json, 8192, "{\"body\":\"%s\",\"price\":%.2f,\"days\":%d,\"tier\":%d}", d.text,
                     d.price, (int)d.days, (int)d.tier);
      if (qi_bulk_put(b, d.id, json, (size_t)len, NULL, &err)) {
        fprintf(stderr, "bench_search: put %s: %s\n", d.id, err.msg);
        return 1;
      }
    }
    if (qi_bulk_commit(b, &err)) {
      fprintf(stderr, "bench_search: commit: %s\n", err.msg);
      return 1;
    }
    refresh_timed(ix, &rl); /* as the server's 1 s refresher would: merges run behind */
  }
  if (qi_index_refresh(ix, &err)) {
    fprintf(stderr, "bench_search: refresh: %s\n", err.msg);
    return 1;
  }
  t1 = now_s();
  qi_index_wait_merges(ix); /* the figures below on the settled index */
  refresh_print(&rl);
  rss_print("search/rss_load", n, "after loading and merging");
  ours_rate = (double)n / (t1 - t0);
  s = qi_index_snapshot(ix);
  qi_snapshot_field(s, "body", &fi);
  fprintf(stderr, "# ours: indexed in %.1f s, %zu segments\n", t1 - t0, qi_snapshot_segment_count(s));
#ifdef BENCH_HAVE_QQ
  if (getenv("BENCH_SEARCH_QQ_ONLY")) { /* profiling: the qq_search floor rows alone, N times */
    for (long k = strtol(getenv("BENCH_SEARCH_QQ_ONLY"), NULL, 10); k > 0; k--)
      bench_qq_latency(s, &c, NULL);
    qi_snapshot_release(s);
    qi_index_close(ix);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
  }
#endif

  /* ours: queries; first check WAND against the exhaustive reference */
  for (q = 0; q < 10; q++) {
    const char *t[2];
    hit a[TOPK], b2[TOPK];
    int na, nb, k;
    sc_query(&c, q, &t[0], &t[1]);
    na = topk_or(s, fi.id, t, 2, a);
    nb = exhaustive_or(s, fi.id, t, 2, b2);
    if (na != nb) mism++;
    for (k = 0; k < na && k < nb; k++)
      if (a[k].gdoc != b2[k].gdoc || a[k].score != b2[k].score) mism++;
  }
  for (r = 0; r <= RUNS; r++) {
    for (q = 0; q < SC_QUERIES; q++) {
      const char *t[2];
      hit h[TOPK];
      double q0 = now_s();
      int k, nh;
      sc_query(&c, q, &t[0], &t[1]);
      nh = topk_or(s, fi.id, t, 2, h);
      for (k = 0; k < nh; k++) (void)qi_segment_doc_id(h[k].seg, h[k].doc, NULL);
      lat[q] = (now_s() - q0) * 1e6;
      if (r == 1 || (r > 1 && lat[q] < best[q])) best[q] = lat[q];
    }
    if (r == RUNS && getenv("BENCH_SEARCH_SLOW")) { /* the slowest queries, for tuning */
      for (q = 0; q < SC_QUERIES; q++)
        if (lat[q] > 3 * sc_pct(p50, r - 1 ? (size_t)(r - 1) : 1, 50) && lat[q] > 1000) {
          const char *t[2];
          sc_query(&c, q, &t[0], &t[1]);
          fprintf(stderr, "# slow q%d %.0fus %s(df %llu) %s(df %llu)\n", q, lat[q], t[0],
                  (unsigned long long)qi_snapshot_doc_freq(s, fi.id, t[0], strlen(t[0])), t[1],
                  (unsigned long long)qi_snapshot_doc_freq(s, fi.id, t[1], strlen(t[1])));
        }
    }
    qsort(lat, SC_QUERIES, sizeof *lat, sc_cmp_double);
    if (r) {
      p50[r - 1] = sc_pct(lat, SC_QUERIES, 50);
      p99[r - 1] = sc_pct(lat, SC_QUERIES, 99);
    }
  }

  /* xapian */
  have_x = run_xapian(argv[0], n, xap_dir, &x) == 0;
  if (have_x) {
    double xr = (double)n / x.index_s;
    printf("search/index  ours %.0f docs/s  xapian %.0f docs/s  %.2fx (goal >= 0.67x)  1 run\n",
           ours_rate, xr, ours_rate / xr);
  } else {
    printf("search/index  ours %.0f docs/s  xapian (xapian_ref not available)  1 run\n", ours_rate);
  }
  {
    double m50, m99, x50 = 0, x99 = 0, l2, h2;
    double c50[RUNS], c99[RUNS];
    memcpy(c50, p50, sizeof c50);
    memcpy(c99, p99, sizeof c99);
    minmax(p50, RUNS, &lo, &hi);
    minmax(p99, RUNS, &l2, &h2);
    m50 = median(c50, RUNS);
    m99 = median(c99, RUNS);
    if (have_x && x.runs >= 1) {
      double xa[RUNS + 1], xb[RUNS + 1];
      memcpy(xa, x.p50 + 1, (size_t)x.runs * sizeof *xa);
      memcpy(xb, x.p99 + 1, (size_t)x.runs * sizeof *xb);
      x50 = median(xa, x.runs);
      x99 = median(xb, x.runs);
      printf("search/or2_p50  ours %.1fus  xapian %.1fus  %.2fx xapian (goal <= 1x)  med/%d [%.1f..%.1f]\n",
             m50, x50, m50 / x50, RUNS, lo, hi);
      printf("search/or2_p99  ours %.1fus  xapian %.1fus  %.2fx xapian (goal <= 1x)  med/%d [%.1f..%.1f]\n",
             m99, x99, m99 / x99, RUNS, l2, h2);
      qsort(best, SC_QUERIES, sizeof *best, sc_cmp_double);
      printf("search/or2_best_p99  ours %.1fus  xapian %.1fus  %.2fx xapian (goal <= 1x)  p99 of each "
             "query's best of %d (p50 %.1fus vs %.1fus)\n",
             sc_pct(best, SC_QUERIES, 99), x.best99, sc_pct(best, SC_QUERIES, 99) / x.best99, RUNS,
             sc_pct(best, SC_QUERIES, 50), x.best50);
    } else {
      printf("search/or2_p50  ours %.1fus  med/%d [%.1f..%.1f]\n", m50, RUNS, lo, hi);
      printf("search/or2_p99  ours %.1fus  med/%d [%.1f..%.1f]\n", m99, RUNS, l2, h2);
    }
  }
  printf("# or2: block-max WAND over qi_postings (ours) vs Xapian OP_OR get_mset(0,10); WAND == "
         "exhaustive BM25 on 10 queries: %s\n", mism ? "MISMATCH" : "yes");
  if (have_x) {
    /* how alike the rankings are (different BM25 variants: Lucene's vs Xapian's) */
    double ov = 0;
    for (q = 0; q < 20; q++) {
      const char *t[2];
      hit h[TOPK];
      int nh, k, m;
      sc_query(&c, q, &t[0], &t[1]);
      nh = topk_or(s, fi.id, t, 2, h);
      for (k = 0; k < nh; k++) {
        const char *id = qi_segment_doc_id(h[k].seg, h[k].doc, NULL);
        for (m = 0; m < x.ntop[q]; m++)
          if (!strcmp(id, x.top[q][m])) ov += 1;
      }
    }
    printf("# top-10 overlap with Xapian over 20 queries: %.0f%%\n", ov / (20.0 * TOPK) * 100.0);
  }
#ifdef BENCH_HAVE_QQ
  {
    qq_env qenv;
    double ql[SC_QUERIES], q50[RUNS], q99[RUNS], m50, m99;
    const qi_snapshot *snaps[1] = {s};
    int fails = 0;
    memset(&qenv, 0, sizeof qenv);
    for (r = 0; r <= RUNS; r++) {
      for (q = 0; q < SC_QUERIES; q++) {
        const char *t[2];
        char body[256];
        json_t *out = NULL;
        double q0;
        int bl;
        sc_query(&c, q, &t[0], &t[1]);
        bl = snprintf(body, sizeof body,
                      "{\"size\":10,\"_source\":false,\"query\":{\"match\":{\"body\":\"%s %s\"}}}",
                      t[0], t[1]);
        q0 = now_s();
        if (qq_search(&qenv, "bench", snaps, 1, body, (size_t)bl, &out, &err)) fails++;
        ql[q] = (now_s() - q0) * 1e6;
        json_decref(out);
      }
      qsort(ql, SC_QUERIES, sizeof *ql, sc_cmp_double);
      if (r) {
        q50[r - 1] = sc_pct(ql, SC_QUERIES, 50);
        q99[r - 1] = sc_pct(ql, SC_QUERIES, 99);
      }
    }
    minmax(q50, RUNS, &lo, &hi);
    m50 = median(q50, RUNS);
    m99 = median(q99, RUNS);
    if (fails) {
      printf("search/or2_qq_p50  query layer failed on %d queries: %s\n", fails, err.msg);
    } else if (have_x) {
      double xa[RUNS + 1];
      memcpy(xa, x.p50 + 1, (size_t)x.runs * sizeof *xa);
      printf("search/or2_qq_p50  ours %.1fus  xapian %.1fus  %.2fx xapian (goal <= 1x)  med/%d [%.1f..%.1f]  p99 %.1fus\n",
             m50, median(xa, x.runs), m50 / median(xa, x.runs), RUNS, lo, hi, m99);
    } else {
      printf("search/or2_qq_p50  ours %.1fus  med/%d [%.1f..%.1f]  p99 %.1fus\n", m50, RUNS, lo, hi, m99);
    }
  }
  bench_qq_latency(s, &c, have_x ? &x : NULL);
#endif
  if (bench_search_phrase) bench_search_phrase(s, &c, n, argv[0], base);
  qi_snapshot_release(s);
  if (bench_search_script_score) bench_search_script_score(ix, &c, n);
  qi_index_close(ix);
  reopen_rss(argv[0], ours_dir, n);
  /* reopen: segment files load, the store is scanned for ids only */
  t0 = now_s();
  if (!qi_index_open(ours_dir, &opt, &ix, &err)) {
    t1 = now_s();
    printf("search/open  ours %.2fs for %llu docs (segment files + id scan; Xapian opens lazily)  1 run\n",
           t1 - t0, (unsigned long long)qi_index_doc_count(ix));
    qi_index_close(ix);
  } else {
    printf("search/open  failed: %s\n", err.msg);
  }
  nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  sc_free(&c);
  free(text);
  free(json);
  return 0;
}
