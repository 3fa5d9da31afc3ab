/* bench_aggs.c: cardinality and percentiles over N documents (default 1M; issue 12's
** performance goal), through qq_search on one shard, against the exact answer.
** Corpus (seeded, made here): u = a long with about 0.43 N distinct values (hash of i mod N/2),
** tag = a keyword of 50,000 distinct values, p = a double uniform in [0, 1000).
** Cases (median of RUNS after a warm-up):
**   aggs/cardinality_u     cardinality of u at the default precision_threshold (3000: HLL, p 14)
**   aggs/cardinality_tag   the same over the keyword
**   aggs/cardinality_u40k  precision_threshold 40000 (p 18)
**   aggs/percentiles_p     percentiles 1,5,25,50,75,95,99 of p (t-digest, compression 100)
** Each line: time, then ratios to two references timed in the same run:
**   value_count  the same field through qq_search as value_count (the floor: reading values)
**   exact        the exact answer computed here from the doc values (read, sort, count or pick)
** and the error against the exact answer: |estimate - exact| / exact for cardinality, and the
** largest rank error |rank(estimate) - q| over the percents for percentiles. */
#define _GNU_SOURCE
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "query.h"

#define RUNS 5
#define BATCH 50000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(p);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct str {
  const char *p;
  size_t n;
} str;

static int cmp_s(const void *a, const void *b) {
  const str *x = a, *y = b;
  size_t l = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->p, y->p, l);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* run BODY RUNS times (after one warm-up): the median seconds, the last response in *OUT */
static double timed(const qi_snapshot *s, const char *body, json_t **out) {
  qq_env env;
  double t[RUNS];
  memset(&env, 0, sizeof env);
  *out = NULL;
  for (int r = -1; r < RUNS; r++) {
    qb_err err;
    json_t *res = NULL;
    double t0 = now_s();
    if (qq_search(&env, "bench", &s, 1, body, strlen(body), &res, &err)) {
      fprintf(stderr, "bench_aggs: %s: %s\n", body, err.msg);
      exit(1);
    }
    if (r >= 0) t[r] = now_s() - t0;
    json_decref(*out);
    *out = res;
  }
  return median(t, RUNS);
}

static json_t *agg(json_t *res) { return json_object_get(json_object_get(res, "aggregations"), "a"); }

/* every value of numeric FIELD in S (n of them) */
static double *read_all(const qi_snapshot *s, const char *field, size_t *n) {
  qi_field_info fi;
  size_t cap = 1 << 20, k = 0;
  double *v = malloc(cap * sizeof *v);
  if (qi_snapshot_field(s, field, &fi)) exit(1);
  for (size_t si = 0; si < qi_snapshot_segment_count(s); si++) {
    const qi_segment *seg = qi_snapshot_segment(s, si);
    uint32_t md = qi_segment_max_doc(seg);
    uint32_t docs[128];
    double vals[128];
    uint8_t pr[128];
    for (uint32_t d = 0; d < md;) {
      size_t m = 0;
      for (; d < md && m < 128; d++)
        if (qi_segment_is_live(seg, d)) docs[m++] = d;
      qi_dv_read_f64(seg, fi.id, docs, m, vals, pr);
      for (size_t i = 0; i < m; i++)
        if (pr[i]) {
          if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
          v[k++] = vals[i];
        }
    }
  }
  *n = k;
  return v;
}

static size_t distinct_d(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_d);
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += !i || v[i] != v[i - 1];
  return c;
}

static size_t exact_tags(const qi_snapshot *s) {
  qi_field_info fi;
  size_t cap = 1 << 20, k = 0;
  str *v = malloc(cap * sizeof *v);
  if (qi_snapshot_field(s, "tag", &fi)) exit(1);
  for (size_t si = 0; si < qi_snapshot_segment_count(s); si++) {
    const qi_segment *seg = qi_snapshot_segment(s, si);
    uint32_t md = qi_segment_max_doc(seg);
    for (uint32_t d = 0; d < md; d++) {
      const uint32_t *o;
      if (!qi_segment_is_live(seg, d) || !qi_dv_doc_ords(seg, fi.id, d, &o)) continue;
      if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
      v[k].p = qi_dv_ord_term(seg, fi.id, o[0], &v[k].n);
      k++;
    }
  }
  qsort(v, k, sizeof *v, cmp_s);
  size_t c = 0;
  for (size_t i = 0; i < k; i++) c += !i || cmp_s(&v[i], &v[i - 1]);
  free(v);
  return c;
}

static void card_line(const char *name, const qi_snapshot *s, const char *field, int thr, double vc_s,
                      double exact_s, size_t exact) {
  char body[256];
  json_t *res;
  if (thr) snprintf(body, sizeof body, "{\"size\":0,\"aggs\":{\"a\":{\"cardinality\":{\"field\":\"%s\","
                                       "\"precision_threshold\":%d}}}}", field, thr);
  else snprintf(body, sizeof body, "{\"size\":0,\"aggs\":{\"a\":{\"cardinality\":{\"field\":\"%s\"}}}}", field);
  double t = timed(s, body, &res);
  double est = (double)json_integer_value(json_object_get(agg(res), "value"));
  int p = thr ? (int)ceil(log2(thr)) + 2 : 14;
  if (p > 18) p = 18;
  printf("%-22s %9.2f ms  value_count %.2fx  exact %.2fx  error %.4f%% (estimate %.0f, exact %zu; "
         "standard error %.2f%%)\n", name, t * 1e3, t / vc_s, t / exact_s, fabs(est - (double)exact) / (double)exact * 100,
         est, exact, 104.0 / sqrt(pow(2, p)));
  json_decref(res);
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  char base[] = "/tmp/bench_aggs_XXXXXX", dir[64], json[256];
  qb_err err;
  qi_index *ix;
  qi_options opt;
  if (!mkdtemp(base)) return 1;
  snprintf(dir, sizeof dir, "%s/ix", base);
  memset(&opt, 0, sizeof opt);
  opt.max_buffered_docs = 100000;
  if (qi_index_create(dir, "{\"mappings\":{\"properties\":{\"u\":{\"type\":\"long\"},\"p\":{\"type\":\"double\"},"
                           "\"tag\":{\"type\":\"keyword\"}}}}", &opt, &ix, &err)) {
    fprintf(stderr, "bench_aggs: %s\n", err.msg);
    return 1;
  }
  printf("# aggs: %llu docs (u: hash mod %llu, tag: 50000 values, p: uniform [0,1000)), median of %d runs\n",
         (unsigned long long)n, (unsigned long long)(n / 2 ? n / 2 : 1), RUNS);
  fflush(stdout);
  double t0 = now_s();
  for (uint64_t i = 0; i < n;) {
    qi_bulk *b;
    uint64_t end = i + BATCH < n ? i + BATCH : n;
    if (qi_bulk_begin(ix, &b, &err)) return 1;
    for (; i < end; i++) {
      char id[24];
      uint64_t h = mix(i);
      snprintf(id, sizeof id, "%llu", (unsigned long long)i);
      int len = snprintf(json, sizeof json, "{\"u\":%llu,\"tag\":\"t%llu\",\"p\":%.6f}",
                         (unsigned long long)(h % (n / 2 ? n / 2 : 1)), (unsigned long long)(mix(h) % 50000),
                         (double)(mix(h ^ 7) >> 11) / 9007199254740992.0 * 1000);
      if (qi_bulk_put(b, id, json, (size_t)len, NULL, &err)) {
        fprintf(stderr, "bench_aggs: put: %s\n", err.msg);
        return 1;
      }
    }
    if (qi_bulk_commit(b, &err) || qi_index_refresh(ix, &err)) {
      fprintf(stderr, "bench_aggs: %s\n", err.msg);
      return 1;
    }
  }
  qi_index_wait_merges(ix);
  printf("# loaded in %.1f s\n", now_s() - t0);
  qi_snapshot *s = qi_index_snapshot(ix);
  json_t *res;
  double vc_u = timed(s, "{\"size\":0,\"aggs\":{\"a\":{\"value_count\":{\"field\":\"u\"}}}}", &res);
  json_decref(res);
  double vc_t = timed(s, "{\"size\":0,\"aggs\":{\"a\":{\"value_count\":{\"field\":\"tag\"}}}}", &res);
  json_decref(res);
  double vc_p = timed(s, "{\"size\":0,\"aggs\":{\"a\":{\"value_count\":{\"field\":\"p\"}}}}", &res);
  json_decref(res);
  /* the exact answers, timed */
  size_t nu, np;
  double te = now_s();
  double *u = read_all(s, "u", &nu);
  size_t exact_u = distinct_d(u, nu);
  double ex_u = now_s() - te;
  te = now_s();
  size_t exact_t = exact_tags(s);
  double ex_t = now_s() - te;
  te = now_s();
  double *p = read_all(s, "p", &np);
  qsort(p, np, sizeof *p, cmp_d);
  double ex_p = now_s() - te;
  printf("# references: value_count u %.2f ms, tag %.2f ms, p %.2f ms; exact (read + sort) u %.2f ms, tag %.2f ms, "
         "p %.2f ms\n", vc_u * 1e3, vc_t * 1e3, vc_p * 1e3, ex_u * 1e3, ex_t * 1e3, ex_p * 1e3);
  card_line("aggs/cardinality_u", s, "u", 0, vc_u, ex_u, exact_u);
  card_line("aggs/cardinality_tag", s, "tag", 0, vc_t, ex_t, exact_t);
  card_line("aggs/cardinality_u40k", s, "u", 40000, vc_u, ex_u, exact_u);
  static const double q[] = {1, 5, 25, 50, 75, 95, 99};
  double t = timed(s, "{\"size\":0,\"aggs\":{\"a\":{\"percentiles\":{\"field\":\"p\"}}}}", &res);
  double worst = 0, worst_v = 0;
  json_t *vals = json_object_get(agg(res), "values");
  for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
    char k[16];
    snprintf(k, sizeof k, "%.1f", q[i]);
    double v = json_number_value(json_object_get(vals, k));
    size_t lo = 0, hi = np; /* rank of v: values <= v */
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (p[mid] <= v) lo = mid + 1;
      else hi = mid;
    }
    double err_r = fabs((double)lo / (double)np - q[i] / 100);
    if (err_r > worst) {
      worst = err_r;
      worst_v = q[i];
    }
  }
  printf("%-22s %9.2f ms  value_count %.2fx  exact %.2fx  rank error at most %.4f%% (at p%g)\n", "aggs/percentiles_p",
         t * 1e3, t / vc_p, t / ex_p, worst * 100, worst_v);
  json_decref(res);
  free(u);
  free(p);
  qi_snapshot_release(s);
  qi_index_close(ix);
  nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}
