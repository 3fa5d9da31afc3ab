/* test_topk.c: top-k collection on a larger generated index (several segments): MaxScore
** pruning (track_total_hits false or reached) returns exactly the hits and scores of the
** exhaustive search, and reports the total as a lower bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"

#define NDOCS 6000

static char dir[256];
static uint16_t doc_words[NDOCS]; /* bit k: words[k] occurs in doc i (kept for the reference) */
static qi_index *ix;
static qi_snapshot *snap;

static const char *words[] = {"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta",
                              "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi"};

static int setup(void **st) {
  qb_err err;
  qi_options opt = {.max_buffered_docs = 1500, .sync_normal = 1, .no_auto_merge = 1};
  qi_bulk *b;
  (void)st;
  snprintf(dir, sizeof dir, "/tmp/qq_topk_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  strcat(dir, "/idx");
  if (qi_index_create(dir, "{\"mappings\":{\"properties\":{\"body\":{\"type\":\"text\"},\"n\":{\"type\":\"long\"}}}}",
                      &opt, &ix, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  srand(3);
  if (qi_bulk_begin(ix, &b, &err)) return -1;
  for (int i = 0; i < NDOCS; i++) {
    char doc[1024], id[16];
    size_t len = (size_t)snprintf(doc, sizeof doc, "{\"n\":%d,\"body\":\"", i);
    int nw = 1 + rand() % 20;
    for (int w = 0; w < nw; w++) {
      /* skewed: early words are common, late ones rare */
      int k = rand() % 16;
      k = k * (rand() % 16) / 15;
      len += (size_t)snprintf(doc + len, sizeof doc - len, "%s%s", w ? " " : "", words[k]);
      doc_words[i] |= (uint16_t)(1u << k);
    }
    len += (size_t)snprintf(doc + len, sizeof doc - len, "\"}");
    snprintf(id, sizeof id, "d%d", i);
    if (qi_bulk_put(b, id, doc, len, NULL, &err)) return -1;
  }
  if (qi_bulk_commit(b, &err) || qi_index_refresh(ix, &err)) return -1;
  snap = qi_index_snapshot(ix);
  return 0;
}

static int teardown(void **st) {
  char cmd[300];
  (void)st;
  qi_snapshot_release(snap);
  qi_index_close(ix);
  *strrchr(dir, '/') = 0;
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) {}
  return 0;
}

static json_t *search(const char *body) {
  json_t *out;
  qb_err err;
  const qi_snapshot *snaps[1] = {snap};
  if (qq_search(NULL, "t", snaps, 1, body, strlen(body), &out, &err)) fail_msg("%s: %s", body, err.msg);
  return out;
}

static void same_hits(json_t *a, json_t *b) {
  json_t *ha = json_object_get(json_object_get(a, "hits"), "hits");
  json_t *hb = json_object_get(json_object_get(b, "hits"), "hits");
  assert_int_equal(json_array_size(ha), json_array_size(hb));
  for (size_t i = 0; i < json_array_size(ha); i++) {
    json_t *x = json_array_get(ha, i), *y = json_array_get(hb, i);
    const char *ix_ = json_string_value(json_object_get(x, "_id")), *iy = json_string_value(json_object_get(y, "_id"));
    double sx = json_number_value(json_object_get(x, "_score")), sy = json_number_value(json_object_get(y, "_score"));
    if (strcmp(ix_, iy) || sx != sy) fail_msg("hit %zu: %s %.9g vs %s %.9g", i, ix_, sx, iy, sy);
  }
}

static void maxscore_returns_the_exhaustive_top_hits(void **st) {
  (void)st;
  static const char *queries[] = {"alpha pi", "beta omicron xi", "gamma delta", "pi xi nu mu", "alpha beta gamma delta eps"};
  for (size_t q = 0; q < sizeof queries / sizeof *queries; q++) {
    for (int size = 1; size <= 50; size *= 7) {
      char b1[256], b2[256];
      snprintf(b1, sizeof b1, "{\"query\":{\"match\":{\"body\":\"%s\"}},\"size\":%d,\"track_total_hits\":true}", queries[q], size);
      snprintf(b2, sizeof b2, "{\"query\":{\"match\":{\"body\":\"%s\"}},\"size\":%d,\"track_total_hits\":false}", queries[q], size);
      json_t *exact = search(b1), *pruned = search(b2);
      same_hits(exact, pruned);
      assert_true(json_equal(json_object_get(json_object_get(exact, "hits"), "max_score"),
                             json_object_get(json_object_get(pruned, "hits"), "max_score")));
      json_decref(exact);
      json_decref(pruned);
    }
  }
}

static void bool_should_of_terms_prunes_the_same_way(void **st) {
  (void)st;
  const char *b1 = "{\"query\":{\"bool\":{\"should\":[{\"term\":{\"body\":\"pi\"}},{\"match\":{\"body\":\"alpha\"}},"
                   "{\"term\":{\"body\":{\"value\":\"xi\",\"boost\":3}}}]}},\"size\":10,\"track_total_hits\":true}";
  const char *b2 = "{\"query\":{\"bool\":{\"should\":[{\"term\":{\"body\":\"pi\"}},{\"match\":{\"body\":\"alpha\"}},"
                   "{\"term\":{\"body\":{\"value\":\"xi\",\"boost\":3}}}]}},\"size\":10,\"track_total_hits\":100}";
  json_t *exact = search(b1), *pruned = search(b2);
  same_hits(exact, pruned);
  json_t *t = json_object_get(json_object_get(pruned, "hits"), "total");
  assert_int_equal(json_integer_value(json_object_get(t, "value")), 100);
  assert_string_equal(json_string_value(json_object_get(t, "relation")), "gte");
  assert_true(json_integer_value(json_object_get(json_object_get(json_object_get(exact, "hits"), "total"), "value")) > 100);
  json_decref(exact);
  json_decref(pruned);
}

static void exact_count_below_the_threshold_stays_eq(void **st) {
  (void)st;
  json_t *r = search("{\"query\":{\"match\":{\"body\":\"pi omicron\"}},\"size\":3,\"track_total_hits\":100000}");
  json_t *t = json_object_get(json_object_get(r, "hits"), "total");
  assert_string_equal(json_string_value(json_object_get(t, "relation")), "eq");
  json_t *e = search("{\"query\":{\"match\":{\"body\":\"pi omicron\"}},\"size\":0,\"track_total_hits\":true}");
  assert_true(json_equal(t, json_object_get(json_object_get(e, "hits"), "total")));
  json_decref(r);
  json_decref(e);
}

static long long shard_total(const char *body, int *gte) {
  qq_request *req;
  qq_partial *p;
  json_t *j;
  qb_err err;
  assert_int_equal(qq_request_parse(NULL, body, strlen(body), 0, &req, &err), QB_OK);
  assert_int_equal(qq_shard_search(req, snap, "t", 0, &p, &err), QB_OK);
  assert_int_equal(qq_partial_to_json(p, &j, &err), QB_OK);
  long long t = json_integer_value(json_object_get(j, "total"));
  *gte = json_is_true(json_object_get(j, "total_gte"));
  json_decref(j);
  qq_partial_free(p);
  qq_request_free(req);
  return t;
}

static void maxscore_skips_documents_that_cannot_compete(void **st) {
  int gte_exact, gte_pruned;
  (void)st;
  long long exact = shard_total("{\"query\":{\"match\":{\"body\":\"alpha pi\"}},\"size\":3,\"track_total_hits\":true}", &gte_exact);
  long long pruned = shard_total("{\"query\":{\"match\":{\"body\":\"alpha pi\"}},\"size\":3,\"track_total_hits\":false}", &gte_pruned);
  if (!(pruned < exact / 2)) fail_msg("collected %lld of %lld matches: no pruning", pruned, exact);
  assert_false(gte_exact);
  assert_true(gte_pruned);
}

/* Random bool queries of term clauses: the hit set equals a brute-force evaluation. */
static int rand_clauses(char *buf, size_t cap, int n, uint16_t *bits) {
  int len = 0;
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    int k = rand() % 16;
    bits[i] = (uint16_t)(1u << k);
    len += snprintf(buf + len, cap - (size_t)len, "%s{\"term\":{\"body\":\"%s\"}}", i ? "," : "", words[k]);
  }
  return len;
}

static void bool_queries_match_a_brute_force_reference(void **st) {
  (void)st;
  srand(99);
  for (int round = 0; round < 150; round++) {
    uint16_t must[3], should[4], mnot[2], filt[2];
    int nm = rand() % 3, ns = rand() % 4, nn = rand() % 3, nf = rand() % 3, msm = -1;
    char body[4096], a[512], b[512], c[512], d[512];
    rand_clauses(a, sizeof a, nm, must);
    rand_clauses(b, sizeof b, ns, should);
    rand_clauses(c, sizeof c, nn, mnot);
    rand_clauses(d, sizeof d, nf, filt);
    char msms[48] = "";
    if (ns && rand() % 2) {
      msm = rand() % (ns + 1);
      snprintf(msms, sizeof msms, ",\"minimum_should_match\":%d", msm);
    }
    snprintf(body, sizeof body, "{\"size\":10000,\"_source\":false,\"track_total_hits\":true,\"sort\":[\"_doc\"],"
             "\"query\":{\"bool\":{\"must\":[%s],\"should\":[%s],\"must_not\":[%s],\"filter\":[%s]%s}}}",
             a, b, c, d, msms);
    int eff = msm >= 0 ? msm : 0;
    if (nm + nf == 0 && ns && eff < 1) eff = 1; /* only should clauses: at least one */
    /* reference */
    static int want[NDOCS];
    int nwant = 0;
    for (int i = 0; i < NDOCS; i++) {
      uint16_t w = doc_words[i];
      int ok = 1, cnt = 0;
      for (int k = 0; k < nm; k++) ok &= (w & must[k]) != 0;
      for (int k = 0; k < nf; k++) ok &= (w & filt[k]) != 0;
      for (int k = 0; k < nn; k++) ok &= (w & mnot[k]) == 0;
      for (int k = 0; k < ns; k++) cnt += (w & should[k]) != 0;
      if (nm + nf + ns + nn == 0) ok = 1; /* {} matches all */
      if (ok && cnt >= eff) want[nwant++] = i;
    }
    json_t *r = search(body);
    json_t *hits = json_object_get(json_object_get(r, "hits"), "hits");
    long long total = json_integer_value(json_object_get(json_object_get(json_object_get(r, "hits"), "total"), "value"));
    if (total != nwant || (int)json_array_size(hits) != (nwant < 10000 ? nwant : 10000))
      fail_msg("%s: %lld hits, reference %d", body, total, nwant);
    for (int i = 0; i < nwant && i < 10000; i++) {
      int got = atoi(json_string_value(json_object_get(json_array_get(hits, (size_t)i), "_id")) + 1);
      if (got != want[i]) fail_msg("%s: hit %d is d%d, reference d%d", body, i, got, want[i]);
    }
    json_decref(r);
  }
}

/* hits from several segments, in sort order: script_fields runs per segment, in doc order */
static void script_fields_span_segments(void **st) {
  (void)st;
  json_t *r = search("{\"size\":40,\"_source\":false,\"sort\":[{\"n\":\"desc\"}],\"query\":{\"range\":"
                     "{\"n\":{\"gte\":1480,\"lt\":1520}}},\"script_fields\":{\"x\":{\"script\":\"doc['n'].value * 2\"}}}");
  json_t *hits = json_object_get(json_object_get(r, "hits"), "hits");
  assert_int_equal(json_array_size(hits), 40);
  for (size_t i = 0; i < 40; i++) {
    json_t *h = json_array_get(hits, i);
    int n = atoi(json_string_value(json_object_get(h, "_id")) + 1);
    assert_int_equal(n, 1519 - (int)i);
    double x = json_number_value(json_array_get(json_object_get(json_object_get(h, "fields"), "x"), 0));
    if (x != 2.0 * n) fail_msg("hit %zu (d%d): x = %g", i, n, x);
  }
  json_decref(r);
}

/* runs last: it deletes documents from the shared index */
static void deleted_documents_never_match(void **st) {
  qb_err err;
  (void)st;
  for (int i = 0; i < 100; i++) {
    char id[16];
    snprintf(id, sizeof id, "d%d", i * 37);
    assert_int_equal(qi_index_delete(ix, id, NULL, &err), QB_OK);
  }
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  qi_snapshot_release(snap);
  snap = qi_index_snapshot(ix);
  json_t *r = search("{\"track_total_hits\":true,\"size\":0}");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(r, "hits"), "total"), "value")), NDOCS - 100);
  json_decref(r);
  r = search("{\"query\":{\"ids\":{\"values\":[\"d37\",\"d38\"]}}}");
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(r, "hits"), "hits"), 0), "_id")), "d38");
  assert_int_equal(json_array_size(json_object_get(json_object_get(r, "hits"), "hits")), 1);
  json_decref(r);
  const char *qs[] = {"{\"query\":{\"match\":{\"body\":\"alpha pi\"}},\"size\":10000,\"_source\":false}",
                      "{\"query\":{\"range\":{\"n\":{\"lt\":1000}}},\"size\":10000,\"_source\":false}",
                      "{\"query\":{\"bool\":{\"must_not\":{\"range\":{\"n\":{\"gte\":1000}}}}},\"size\":10000,\"_source\":false}"};
  for (size_t q = 0; q < 3; q++) {
    r = search(qs[q]);
    json_t *hits = json_object_get(json_object_get(r, "hits"), "hits");
    for (size_t i = 0; i < json_array_size(hits); i++) {
      int n = atoi(json_string_value(json_object_get(json_array_get(hits, i), "_id")) + 1);
      if (n % 37 == 0 && n / 37 < 100) fail_msg("%s: deleted doc d%d matched", qs[q], n);
    }
    if (q) assert_int_equal(json_array_size(hits), 1000 - 28); /* d0, d37, ..., d999 */
    json_decref(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(maxscore_returns_the_exhaustive_top_hits),
      cmocka_unit_test(bool_should_of_terms_prunes_the_same_way),
      cmocka_unit_test(exact_count_below_the_threshold_stays_eq),
      cmocka_unit_test(maxscore_skips_documents_that_cannot_compete),
      cmocka_unit_test(bool_queries_match_a_brute_force_reference),
      cmocka_unit_test(script_fields_span_segments),
      cmocka_unit_test(deleted_documents_never_match),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
