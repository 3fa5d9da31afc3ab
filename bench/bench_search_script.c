/* bench_search_script.c: the script_score cases of the search benchmark, the weak hook
** bench_search_script_score() that bench_search.c calls on the index it has built.
** Cases:
**   search/or2_script_p50   p50 latency of the 200 two-term `match` queries of the corpus, top 10,
**                           wrapped in function_score/script_score with boost_mode replace and
**                           SCRIPT below (an expression over the price and days doc values),
**                           through qq_search; "plain" is the same match without the script.
**                           Both count every match (track_total_hits: true): a script over all
**                           matches rules out early termination, so the plain side must not use
**                           it either, or the difference would not be the script's.
**   search/or2_script_p99   p99 of the same; or2_script_best_p99: p99 of each query's best run
**   search/or2_script_cost  (script latency - plain latency) / documents scored (the exact hit
**                           count), per query, median over the queries: what the expression
**                           costs per document end to end (doc-values reads, block buffering,
**                           the vector program, the combine). Goal < 3 ns/doc (the issue's).
**                           A comment line splits it with SCRIPT0 (no doc values) in the same
**                           loop: what function_score itself costs vs the doc-values reads.
** Per run, each query runs plain then scripted back to back (both see the same machine load);
** 5 runs after one warm-up. Xapian has no scripted scoring, so there is no reference line.
** Checked, not timed: for a few queries the scripted top 10 equals SCRIPT applied by hand to
** every plain match (_score from the plain response, price/days regenerated from the corpus
** generator by _id), ranked best first with ties on the document number (= _id order here). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_search_corpus.h"
#include "index.h"
#ifdef BENCH_HAVE_QQ
#include <jansson.h>

#include "query.h"
#endif

void bench_search_script_score(qi_index *ix, const sc_corpus *c, uint64_t ndocs);

#ifndef BENCH_HAVE_QQ
void bench_search_script_score(qi_index *ix, const sc_corpus *c, uint64_t ndocs) {
  (void)ix;
  (void)c;
  (void)ndocs;
  printf("search/or2_script_p50  skipped: the query layer is not built (QD_BENCH_SEARCH_QQ=OFF)\n");
}
#else

#define RUNS 5
#define TOPK 10
#define NCHECK 5      /* queries whose top 10 is checked by hand */
#define W 0.001       /* params.w */
#define SCRIPT "_score * log(1 + doc['price'].value) + params.w * doc['days'].value"
#define SCRIPT0 "_score * params.w" /* the split: function_score without doc values */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The request body of query Q: plain match, or wrapped in function_score with SCRIPT when
** SCRIPTED is 1, with SCRIPT0 when 2. */
static int body_of(const sc_corpus *c, int q, int scripted, size_t size, char *buf, size_t cap) {
  const char *a, *b;
  sc_query(c, q, &a, &b);
  if (!scripted)
    return snprintf(buf, cap,
                    "{\"size\":%zu,\"_source\":false,\"track_total_hits\":true,"
                    "\"query\":{\"match\":{\"body\":\"%s %s\"}}}",
                    size, a, b);
  return snprintf(buf, cap,
                  "{\"size\":%zu,\"_source\":false,\"track_total_hits\":true,"
                  "\"query\":{\"function_score\":{\"query\":{\"match\":{\"body\":\"%s %s\"}},"
                  "\"script_score\":{\"script\":{\"source\":\"%s\",\"params\":{\"w\":%g}}},"
                  "\"boost_mode\":\"replace\"}}}",
                  size, a, b, scripted == 2 ? SCRIPT0 : SCRIPT, W);
}

/* Run one body; *TOTAL gets hits.total.value (relation must be "eq"). Returns the response or
** NULL (message printed). */
static json_t *run(const qq_env *env, const qi_snapshot *s, const char *body, int len,
                   uint64_t *total) {
  const qi_snapshot *snaps[1] = {s};
  json_t *out = NULL, *t;
  const char *rel;
  qb_err err;
  if (qq_search(env, "bench", snaps, 1, body, (size_t)len, &out, &err)) {
    printf("search/or2_script_p50  failed: %s\n", err.msg);
    return NULL;
  }
  t = json_object_get(json_object_get(out, "hits"), "total");
  rel = json_string_value(json_object_get(t, "relation"));
  if (!rel || strcmp(rel, "eq")) {
    printf("search/or2_script_p50  failed: hits.total is not exact\n");
    json_decref(out);
    return NULL;
  }
  *total = (uint64_t)json_integer_value(json_object_get(t, "value"));
  return out;
}

typedef struct cand {
  float score;
  uint64_t id;
} cand;

static int cand_cmp(const void *x, const void *y) { /* best first, then lower _id */
  const cand *a = x, *b = y;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->id > b->id) - (a->id < b->id);
}

/* The check: 0 when the scripted top 10 of query Q is SCRIPT applied by hand to all plain
** matches; else prints why and returns -1. *MAXREL: largest relative score difference. */
static int check_query(const qq_env *env, const qi_snapshot *s, const sc_corpus *c, int q,
                       char *body, size_t cap, double *maxrel) {
  uint64_t tp = 0, ts = 0, i;
  json_t *plain, *scr, *ph, *sh;
  cand *cd;
  char *text;
  int len, rc = 0;
  size_t k, n;
  len = body_of(c, q, 0, 0, body, cap);
  if (!(plain = run(env, s, body, len, &tp))) return -1;
  json_decref(plain);
  len = body_of(c, q, 0, (size_t)tp, body, cap); /* every match, with its _score */
  if (!(plain = run(env, s, body, len, &tp))) return -1;
  len = body_of(c, q, 1, TOPK, body, cap);
  if (!(scr = run(env, s, body, len, &ts))) {
    json_decref(plain);
    return -1;
  }
  ph = json_object_get(json_object_get(plain, "hits"), "hits");
  sh = json_object_get(json_object_get(scr, "hits"), "hits");
  n = json_array_size(ph);
  cd = malloc((n ? n : 1) * sizeof *cd);
  text = malloc(121 * 16);
  for (k = 0; k < n; k++) {
    json_t *h = json_array_get(ph, k);
    sc_doc d;
    double sc = json_real_value(json_object_get(h, "_score"));
    i = strtoull(json_string_value(json_object_get(h, "_id")), NULL, 10);
    sc_doc_make(c, i, &d, text);
    /* _score is the plain BM25 float; the script's double result becomes the float score */
    cd[k].score = (float)((double)(float)sc * log(1 + d.price) + W * (double)d.days);
    cd[k].id = i;
  }
  qsort(cd, n, sizeof *cd, cand_cmp);
  if (ts != tp || n != tp) {
    printf("# script_score check q%d: totals differ: scripted %llu, plain %llu, plain hits %zu\n", q,
           (unsigned long long)ts, (unsigned long long)tp, n);
    rc = -1;
  }
  for (k = 0; !rc && k < TOPK && k < n; k++) {
    json_t *h = json_array_get(sh, k);
    uint64_t id = h ? strtoull(json_string_value(json_object_get(h, "_id")), NULL, 10) : UINT64_MAX;
    double got = h ? json_real_value(json_object_get(h, "_score")) : NAN;
    double rel = fabs(got - cd[k].score) / (cd[k].score > 0 ? cd[k].score : 1);
    if (rel > *maxrel) *maxrel = rel;
    /* a 1-ulp difference in log() may reorder exact ties only: accept a differing _id then */
    if (id != cd[k].id && !(rel < 1e-6 && k + 1 < n && fabsf(cd[k].score - cd[k + 1].score) <= 1e-6f * cd[k].score)) {
      printf("# script_score check q%d rank %zu: scripted _id %llu score %.9g, by hand _id %llu "
             "score %.9g\n", q, k, (unsigned long long)id, got, (unsigned long long)cd[k].id,
             (double)cd[k].score);
      rc = -1;
    }
    if (rel > 1e-6) {
      printf("# script_score check q%d rank %zu: score %.9g vs %.9g by hand\n", q, k, got,
             (double)cd[k].score);
      rc = -1;
    }
  }
  if (!rc && json_array_size(sh) != (n < TOPK ? n : TOPK)) {
    printf("# script_score check q%d: %zu scripted hits for %zu matches\n", q, json_array_size(sh), n);
    rc = -1;
  }
  free(cd);
  free(text);
  json_decref(plain);
  json_decref(scr);
  return rc;
}

static double median_of(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, sc_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void minmax(const double *v, int n, double *lo, double *hi) {
  int i;
  *lo = *hi = v[0];
  for (i = 1; i < n; i++) {
    if (v[i] < *lo) *lo = v[i];
    if (v[i] > *hi) *hi = v[i];
  }
}

void bench_search_script_score(qi_index *ix, const sc_corpus *c, uint64_t ndocs) {
  qq_env env;
  qi_snapshot *s = qi_index_snapshot(ix);
  static double pl[RUNS][SC_QUERIES], sl[RUNS][SC_QUERIES], zl[RUNS][SC_QUERIES];
  double tmp[SC_QUERIES], p50[RUNS], p99[RUNS], sp50[RUNS], sp99[RUNS], cost[RUNS];
  double med_pl[SC_QUERIES], med_sl[SC_QUERIES], per_q[SC_QUERIES], per_z[SC_QUERIES], lo, hi, maxrel = 0, hits_sum = 0;
  uint64_t hits[SC_QUERIES], hmin = 0, hmax = 0;
  char body[1024];
  int r, q, bad = 0, checked = 0;
  memset(&env, 0, sizeof env);
  env.max_result_window = 1u << 30; /* the check fetches every match */

  for (q = 0; q < NCHECK; q++, checked++)
    if (check_query(&env, s, c, q, body, sizeof body, &maxrel)) bad++;

  for (r = 0; r <= RUNS; r++) {
    for (q = 0; q < SC_QUERIES; q++) {
      uint64_t tp = 0, ts = 0, tz = 0;
      json_t *o;
      double t0, t1, t2, t3, t4, t5;
      int len = body_of(c, q, 0, TOPK, body, sizeof body);
      t0 = now_s();
      o = run(&env, s, body, len, &tp);
      t1 = now_s();
      if (!o) goto out;
      json_decref(o);
      len = body_of(c, q, 1, TOPK, body, sizeof body);
      t2 = now_s();
      o = run(&env, s, body, len, &ts);
      t3 = now_s();
      if (!o) goto out;
      json_decref(o);
      len = body_of(c, q, 2, TOPK, body, sizeof body);
      t4 = now_s();
      o = run(&env, s, body, len, &tz);
      t5 = now_s();
      if (!o) goto out;
      json_decref(o);
      if (ts != tp || tz != tp) {
        printf("search/or2_script_p50  failed: q%d scripted total %llu != plain %llu\n", q,
               (unsigned long long)ts, (unsigned long long)tp);
        goto out;
      }
      hits[q] = ts;
      if (r) {
        pl[r - 1][q] = (t1 - t0) * 1e6;
        sl[r - 1][q] = (t3 - t2) * 1e6;
        zl[r - 1][q] = (t5 - t4) * 1e6;
      }
    }
  }
  for (r = 0; r < RUNS; r++) {
    memcpy(tmp, pl[r], sizeof tmp);
    qsort(tmp, SC_QUERIES, sizeof *tmp, sc_cmp_double);
    p50[r] = sc_pct(tmp, SC_QUERIES, 50);
    p99[r] = sc_pct(tmp, SC_QUERIES, 99);
    memcpy(tmp, sl[r], sizeof tmp);
    qsort(tmp, SC_QUERIES, sizeof *tmp, sc_cmp_double);
    sp50[r] = sc_pct(tmp, SC_QUERIES, 50);
    sp99[r] = sc_pct(tmp, SC_QUERIES, 99);
    for (q = 0; q < SC_QUERIES; q++)
      tmp[q] = hits[q] ? (sl[r][q] - pl[r][q]) * 1e3 / (double)hits[q] : 0;
    cost[r] = median_of(tmp, SC_QUERIES);
  }
  /* the headline cost: per query, median over runs of each side, then median over queries */
  for (q = 0; q < SC_QUERIES; q++) {
    double a[RUNS], b[RUNS];
    for (r = 0; r < RUNS; r++) {
      a[r] = pl[r][q];
      b[r] = sl[r][q];
    }
    med_pl[q] = median_of(a, RUNS);
    med_sl[q] = median_of(b, RUNS);
    per_q[q] = hits[q] ? (med_sl[q] - med_pl[q]) * 1e3 / (double)hits[q] : 0;
    for (r = 0; r < RUNS; r++) a[r] = zl[r][q];
    per_z[q] = hits[q] ? (median_of(a, RUNS) - med_pl[q]) * 1e3 / (double)hits[q] : 0;
    hits_sum += (double)hits[q];
    if (!q || hits[q] < hmin) hmin = hits[q];
    if (!q || hits[q] > hmax) hmax = hits[q];
  }
  {
    double m50, m99, s50, s99, l2, h2, cm;
    double c1[RUNS], c2[RUNS], c3[RUNS], c4[RUNS], c5[RUNS];
    memcpy(c1, p50, sizeof c1);
    memcpy(c2, p99, sizeof c2);
    memcpy(c3, sp50, sizeof c3);
    memcpy(c4, sp99, sizeof c4);
    memcpy(c5, cost, sizeof c5);
    m50 = median_of(c1, RUNS);
    m99 = median_of(c2, RUNS);
    s50 = median_of(c3, RUNS);
    s99 = median_of(c4, RUNS);
    minmax(sp50, RUNS, &lo, &hi);
    printf("search/or2_script_p50  ours %.1fus  plain %.1fus  %+.1fus for the script (xapian: no "
           "scripted scoring)  med/%d [%.1f..%.1f]\n",
           s50, m50, s50 - m50, RUNS, lo, hi);
    minmax(sp99, RUNS, &lo, &hi);
    printf("search/or2_script_p99  ours %.1fus  plain %.1fus  %+.1fus for the script (xapian: no "
           "scripted scoring)  med/%d [%.1f..%.1f]\n",
           s99, m99, s99 - m99, RUNS, lo, hi);
    memcpy(tmp, per_q, sizeof tmp);
    cm = median_of(tmp, SC_QUERIES);
    {
      /* each query's best of the runs: a query preempted for a scheduler tick (4 ms) on a
      ** shared machine decides a plain p99 over 200 queries otherwise (bench_search.c does the
      ** same in or2_best_p99) */
      double bp[SC_QUERIES], bs[SC_QUERIES];
      for (q = 0; q < SC_QUERIES; q++) {
        bp[q] = pl[0][q];
        bs[q] = sl[0][q];
        for (r = 1; r < RUNS; r++) {
          if (pl[r][q] < bp[q]) bp[q] = pl[r][q];
          if (sl[r][q] < bs[q]) bs[q] = sl[r][q];
        }
      }
      qsort(bp, SC_QUERIES, sizeof *bp, sc_cmp_double);
      qsort(bs, SC_QUERIES, sizeof *bs, sc_cmp_double);
      printf("search/or2_script_best_p99  ours %.1fus  plain %.1fus  %+.1fus for the script  p99 of "
             "each query's best of %d (p50 %.1fus vs %.1fus)\n",
             sc_pct(bs, SC_QUERIES, 99), sc_pct(bp, SC_QUERIES, 99),
             sc_pct(bs, SC_QUERIES, 99) - sc_pct(bp, SC_QUERIES, 99), RUNS,
             sc_pct(bs, SC_QUERIES, 50), sc_pct(bp, SC_QUERIES, 50));
    }
    minmax(cost, RUNS, &l2, &h2);
    printf("search/or2_script_cost  ours %.2f ns/doc  (goal < 3 ns/doc)  median over %d queries of "
           "(script - plain) / docs scored (mean %.0f docs/query); xapian: no equivalent  "
           "per-run medians [%.2f..%.2f]\n",
           cm, SC_QUERIES, hits_sum / SC_QUERIES, l2, h2);
    {
      /* the same split by least squares over the queries: (script - plain) = fixed + slope *
      ** docs; the fixed part is per request (parse and compile the expression, bind) */
      double mx = hits_sum / SC_QUERIES, my = 0, sxx = 0, sxy = 0, slope, fixed;
      for (q = 0; q < SC_QUERIES; q++) my += med_sl[q] - med_pl[q];
      my /= SC_QUERIES;
      for (q = 0; q < SC_QUERIES; q++) {
        double dx = (double)hits[q] - mx;
        sxx += dx * dx;
        sxy += dx * (med_sl[q] - med_pl[q] - my);
      }
      slope = sxx > 0 ? sxy / sxx : 0;
      fixed = my - slope * mx;
      printf("# or2_script_cost by least squares over the %d queries: %.2f ns/doc + %.1fus per "
             "request (docs scored per query %llu..%llu)\n",
             SC_QUERIES, slope * 1e3, fixed, (unsigned long long)hmin, (unsigned long long)hmax);
    }
  }
  {
    double z;
    memcpy(tmp, per_z, sizeof tmp);
    z = median_of(tmp, SC_QUERIES);
    memcpy(tmp, per_q, sizeof tmp);
    printf("# or2_script_cost split: function_score with [%s] (no doc values) %.2f ns/doc; the "
           "rest, %.2f ns/doc, is reading price and days, the longer program and its compile and bind\n",
           SCRIPT0, z, median_of(tmp, SC_QUERIES) - z);
  }
  printf("# or2_script: function_score{match, script_score [%s] (w=%g), boost_mode replace} vs "
         "the plain match, both track_total_hits:true (no early termination), %llu docs; "
         "scripted top-10 == formula by hand over all plain matches on %d queries: %s "
         "(max rel. score diff %.1e)\n",
         SCRIPT, W, (unsigned long long)ndocs, checked, bad ? "MISMATCH" : "yes", maxrel);
out:
  qi_snapshot_release(s);
}
#endif
