/* test_aggs_merge.c: the coordinator's merge of partial aggregations. The fixture's documents
** are indexed three times: all of them, and split in two indexes (odd and even ids). Merging the
** two halves' partials, after a trip through JSON text as over the wire, must give what the
** whole index gives: terms (with metric and bucket sub-aggregations), avg, min/max, stats,
** value_count, histogram and date_histogram. The values are exact in binary, so sums do not
** depend on the order they are added in. */
#include "fixture.h"

static const char *body =
    "{\"size\":0,\"aggs\":{"
    "\"tags\":{\"terms\":{\"field\":\"tag\"},\"aggs\":{\"avg_price\":{\"avg\":{\"field\":\"price\"}},"
    "\"st\":{\"stats\":{\"field\":\"popularity\"}},\"act\":{\"terms\":{\"field\":\"active\"}}}},"
    "\"avg_price\":{\"avg\":{\"field\":\"price\"}},\"min_days\":{\"min\":{\"field\":\"days\"}},"
    "\"max_days\":{\"max\":{\"field\":\"days\"}},\"max_date\":{\"max\":{\"field\":\"date\"}},"
    "\"s\":{\"stats\":{\"field\":\"price\"}},\"vc\":{\"value_count\":{\"field\":\"tag\"}},"
    "\"h\":{\"histogram\":{\"field\":\"price\",\"interval\":5},\"aggs\":{\"n\":{\"sum\":{\"field\":\"days\"}}}},"
    "\"dh\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"month\"}},"
    "\"pop\":{\"terms\":{\"field\":\"popularity\"}}}}";

/* the aggregations of issue 12 §4: rendered from two halves as from the whole */
static const char *body2 =
    "{\"size\":0,\"aggs\":{\"c\":{\"cardinality\":{\"field\":\"tag\"}},"
    "\"cp\":{\"cardinality\":{\"field\":\"price\",\"precision_threshold\":1}},"
    "\"pc\":{\"percentiles\":{\"field\":\"price\"}},\"pr\":{\"percentile_ranks\":{\"field\":\"price\",\"values\":[5]}},"
    "\"es\":{\"extended_stats\":{\"field\":\"price\"}},"
    "\"wa\":{\"weighted_avg\":{\"value\":{\"field\":\"price\"},\"weight\":{\"field\":\"days\"}}},"
    "\"th\":{\"top_hits\":{\"size\":2,\"sort\":[{\"price\":\"desc\"}]}},"
    "\"r\":{\"range\":{\"field\":\"price\",\"ranges\":[{\"to\":5},{\"from\":5}]},"
    "\"aggs\":{\"c\":{\"cardinality\":{\"field\":\"tag\"}}}},"
    "\"f\":{\"filters\":{\"filters\":{\"a\":{\"term\":{\"tag\":\"animal\"}}},\"other_bucket\":true}},"
    "\"m\":{\"missing\":{\"field\":\"tag\"}},\"g\":{\"global\":{},\"aggs\":{\"mx\":{\"max\":{\"field\":\"price\"}}}},"
    "\"co\":{\"composite\":{\"size\":2,\"sources\":[{\"t\":{\"terms\":{\"field\":\"tag\"}}}]}},"
    "\"t\":{\"terms\":{\"field\":\"tag\"},\"aggs\":{\"s\":{\"sum\":{\"field\":\"price\"}},"
    "\"bs\":{\"bucket_sort\":{\"sort\":[{\"s\":\"desc\"}],\"size\":1}}}},"
    "\"sb\":{\"sum_bucket\":{\"buckets_path\":\"t>s\"}}}}";

typedef struct three {
  fx whole, half[2];
} three;

/* an index in F holding the fixture docs whose index i has (i % MOD == REM); MOD 1: all */
static int build(fx *f, int mod, int rem) {
  qb_err err;
  snprintf(f->dir, sizeof f->dir, "/tmp/qq_aggm_XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  strcat(f->dir, "/idx");
  if (qi_index_create(f->dir, fx_mapping, NULL, &f->ix, &err)) return -1;
  for (int i = 0; i < FX_NDOCS; i++) {
    char id[8];
    if (i % mod != rem) continue;
    snprintf(id, sizeof id, "%d", i + 1);
    if (qi_index_put(f->ix, id, fx_docs[i], strlen(fx_docs[i]), NULL, &err)) return -1;
  }
  if (qi_index_refresh(f->ix, &err)) return -1;
  f->snap = qi_index_snapshot(f->ix);
  return 0;
}

static int setup(void **state) {
  three *t = calloc(1, sizeof *t);
  if (build(&t->whole, 1, 0) || build(&t->half[0], 2, 0) || build(&t->half[1], 2, 1)) return -1;
  *state = t;
  return 0;
}

static int teardown(void **state) {
  three *t = *state;
  void *p;
  p = calloc(1, sizeof(fx)), memcpy(p, &t->whole, sizeof(fx)), fx_teardown(&p);
  for (int i = 0; i < 2; i++) p = calloc(1, sizeof(fx)), memcpy(p, &t->half[i], sizeof(fx)), fx_teardown(&p);
  free(t);
  return 0;
}

static void assert_same_json(json_t *got, json_t *want, const char *what) {
  if (!json_equal(got, want)) {
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS), *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
    fail_msg("%s:\n got  %s\n want %s", what, g, w);
  }
}

/* A shard's partial, as the coordinator receives it: serialised, sent as text, read back */
static json_t *shard_aggs(qq_request *req, fx *f, uint32_t shard) {
  qq_partial *p;
  json_t *j, *back, *aggs;
  qb_err err;
  char *text;
  if (qq_shard_search(req, f->snap, "test", shard, &p, &err)) fail_msg("shard: %s", err.msg);
  assert_int_equal(qq_partial_to_json(p, &j, &err), QB_OK);
  text = json_dumps(j, JSON_COMPACT);
  back = json_loads(text, 0, NULL);
  assert_non_null(back);
  aggs = json_incref(json_object_get(back, "aggs"));
  assert_non_null(aggs);
  free(text);
  json_decref(j);
  json_decref(back);
  qq_partial_free(p);
  return aggs;
}

static int cmp_key(const void *a, const void *b) {
  const json_t *x = json_object_get(*(json_t *const *)a, "key"), *y = json_object_get(*(json_t *const *)b, "key");
  if (json_is_string(x)) return strcmp(json_string_value(x), json_string_value(y));
  return json_number_value(x) < json_number_value(y) ? -1 : json_number_value(x) > json_number_value(y);
}

/* J with every partial's buckets sorted by key (a shard lists them in any order) */
static void canon(json_t *j) {
  const char *k;
  json_t *v;
  if (!json_is_object(j)) return;
  json_object_foreach(j, k, v) {
    if (!strcmp(k, "buckets") && json_is_array(v)) {
      size_t n = json_array_size(v);
      json_t **b = calloc(n + 1, sizeof *b);
      for (size_t i = 0; i < n; i++) b[i] = json_incref(json_array_get(v, i));
      qsort(b, n, sizeof *b, cmp_key);
      json_array_clear(v);
      for (size_t i = 0; i < n; i++) {
        canon(json_object_get(b[i], "subs"));
        json_array_append_new(v, b[i]);
      }
      free(b);
    } else {
      canon(v);
    }
  }
}

/* The whole pipeline: a search over the two halves renders what a search over the whole does */
static void two_shards_render_like_one(void **st) {
  three *t = *st;
  json_t *one = fx_search(&t->whole, body), *two;
  const qi_snapshot *snaps[2] = {t->half[0].snap, t->half[1].snap};
  qb_err err;
  assert_int_equal(qq_search(NULL, "test", snaps, 2, body, strlen(body), &two, &err), QB_OK);
  assert_same_json(json_object_get(two, "aggregations"), json_object_get(one, "aggregations"), "aggregations");
  /* and they are the ones the fixture promises */
  assert_json_num(one, "aggregations.avg_price.value", (5.5 + 1.25 + 20 + 7 + 3) / 5);
  assert_json_num(one, "aggregations.min_days.value", 1);
  assert_json_num(one, "aggregations.max_days.value", 30);
  assert_json_str(one, "aggregations.max_date.value_as_string", "2024-03-01T00:00:00.000Z");
  assert_json_num(one, "aggregations.s.count", 5);
  assert_json_num(one, "aggregations.s.sum", 36.75);
  assert_json_str(one, "aggregations.tags.buckets.0.key", "animal");
  assert_json_num(one, "aggregations.tags.buckets.0.doc_count", 3);
  assert_json_num(one, "aggregations.vc.value", 6);
  json_decref(one);
  json_decref(two);
}

/* qq_aggs_merge: the halves' partials merge into the whole's partial, which renders the same */
static void merged_partials_equal_the_whole_index_partial(void **st) {
  three *t = *st;
  qq_request *req;
  qb_err err;
  json_t *whole, *halves[2], *merged, *again;
  assert_int_equal(qq_request_parse(NULL, body, strlen(body), 0, &req, &err), QB_OK);
  whole = shard_aggs(req, &t->whole, 0);
  halves[0] = shard_aggs(req, &t->half[0], 0);
  halves[1] = shard_aggs(req, &t->half[1], 1);
  assert_int_equal(qq_aggs_merge(req, (const json_t *const *)halves, 2, &merged, &err), QB_OK);
  canon(whole);
  canon(merged);
  assert_same_json(merged, whole, "merge(half0, half1)");
  /* a merged partial merges again (staged merges), and a missing shard adds nothing */
  json_t *parts[3] = {merged, NULL, NULL};
  assert_int_equal(qq_aggs_merge(req, (const json_t *const *)parts, 3, &again, &err), QB_OK);
  canon(again);
  assert_same_json(again, whole, "merge(merge(...), none)");
  json_decref(again);
  /* halves merged in the other order */
  json_t *rev[2] = {halves[1], halves[0]};
  assert_int_equal(qq_aggs_merge(req, (const json_t *const *)rev, 2, &again, &err), QB_OK);
  canon(again);
  assert_same_json(again, whole, "merge(half1, half0)");
  json_decref(again);
  /* the merged partial renders as the search over the whole index does */
  json_t *pj = json_pack("{s:s, s:i, s:i, s:n, s:[], s:O}", "index", "test", "shard", 0, "total", 6,
                         "max_score", "hits", "aggs", merged);
  qq_partial *p;
  json_t *res, *one = fx_search(&t->whole, body);
  assert_int_equal(qq_partial_from_json(pj, &p, &err), QB_OK);
  assert_int_equal(qq_response_render(req, &p, 1, 0, &res, &err), QB_OK);
  assert_same_json(json_object_get(res, "aggregations"), json_object_get(one, "aggregations"), "render(merged)");
  qq_partial_free(p);
  json_decref(pj);
  json_decref(res);
  json_decref(one);
  json_decref(merged);
  json_decref(whole);
  json_decref(halves[0]);
  json_decref(halves[1]);
  qq_request_free(req);
}

/* The new kinds: two shards render like one, and so does a staged merge of their partials */
static void new_kinds_merge_like_one_shard(void **st) {
  three *t = *st;
  json_t *one = fx_search(&t->whole, body2), *two;
  const qi_snapshot *snaps[2] = {t->half[0].snap, t->half[1].snap};
  qb_err err;
  assert_int_equal(qq_search(NULL, "test", snaps, 2, body2, strlen(body2), &two, &err), QB_OK);
  assert_same_json(json_object_get(two, "aggregations"), json_object_get(one, "aggregations"), "aggregations");
  qq_request *req;
  json_t *halves[2], *merged, *parts[2];
  assert_int_equal(qq_request_parse(NULL, body2, strlen(body2), 0, &req, &err), QB_OK);
  halves[0] = shard_aggs(req, &t->half[0], 0);
  halves[1] = shard_aggs(req, &t->half[1], 1);
  parts[0] = halves[1];
  parts[1] = NULL;
  assert_int_equal(qq_aggs_merge(req, (const json_t *const *)parts, 2, &merged, &err), QB_OK);
  parts[0] = halves[0];
  parts[1] = merged;
  json_t *m2;
  assert_int_equal(qq_aggs_merge(req, (const json_t *const *)parts, 2, &m2, &err), QB_OK);
  json_t *pj = json_pack("{s:s, s:i, s:i, s:n, s:[], s:O}", "index", "test", "shard", 0, "total", 6, "max_score",
                         "hits", "aggs", m2);
  qq_partial *p;
  json_t *res;
  assert_int_equal(qq_partial_from_json(pj, &p, &err), QB_OK);
  assert_int_equal(qq_response_render(req, &p, 1, 0, &res, &err), QB_OK);
  assert_same_json(json_object_get(res, "aggregations"), json_object_get(one, "aggregations"), "render(merge(merge))");
  assert_json_num(one, "aggregations.c.value", 3);
  assert_json_num(one, "aggregations.g.doc_count", 6);
  qq_partial_free(p);
  json_decref(pj);
  json_decref(res);
  json_decref(m2);
  json_decref(merged);
  json_decref(halves[0]);
  json_decref(halves[1]);
  qq_request_free(req);
  json_decref(one);
  json_decref(two);
}

/* No shards: every aggregation is there, empty */
static void merging_nothing_gives_empty_partials(void **st) {
  qq_request *req;
  qb_err err;
  json_t *m;
  (void)st;
  assert_int_equal(qq_request_parse(NULL, body, strlen(body), 0, &req, &err), QB_OK);
  assert_int_equal(qq_aggs_merge(req, NULL, 0, &m, &err), QB_OK);
  assert_json_num(m, "avg_price.count", 0);
  assert_true(json_is_null(fx_path(m, "avg_price.min")));
  assert_int_equal(json_array_size(fx_path(m, "tags.buckets")), 0);
  json_decref(m);
  qq_request_free(req);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(two_shards_render_like_one),
      cmocka_unit_test(merged_partials_equal_the_whole_index_partial),
      cmocka_unit_test(merging_nothing_gives_empty_partials),
      cmocka_unit_test(new_kinds_merge_like_one_shard),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
