/* test_search.c: each query type against a real index (fixture.h), with expected hits and
** BM25 scores derived by hand; bool combinations; sort, from/size, _source, track_total_hits. */
#include "fixture.h"

/* title "fox": docs 1 (dl 3) and 2 (dl 2); N = 6, df = 2 */
static void match_scores_equal_bm25_by_hand(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"match\":{\"title\":\"fox\"}}}");
  assert_string_equal(fx_ids(r), "2,1");
  assert_near(fx_score(r, 0), bm25(6, 2, 1, 2, FX_AVGDL), 1e-5);
  assert_near(fx_score(r, 1), bm25(6, 2, 1, 3, FX_AVGDL), 1e-5);
  assert_near(json_number_value(fx_path(r, "hits.max_score")), bm25(6, 2, 1, 2, FX_AVGDL), 1e-5);
  assert_int_equal(fx_total(r), 2);
  assert_json_str(r, "hits.total.relation", "eq");
  assert_json_str(r, "hits.hits.0._index", "test");
  assert_json_str(r, "hits.hits.0._source.title", "quick fox");
  assert_json_num(r, "_shards.total", 1);
  assert_json_num(r, "_shards.successful", 1);
  assert_true(json_is_false(json_object_get(r, "timed_out")));
  json_decref(r);
}

/* "quick dog": quick in 1,2,4 (tf 2 in 4); dog in 3,4,6 */
static void match_sums_term_scores_over_should_clauses(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"match\":{\"title\":\"quick dog\"}}}");
  double q1 = bm25(6, 3, 1, 3, FX_AVGDL), q2 = bm25(6, 3, 1, 2, FX_AVGDL), q4 = bm25(6, 3, 2, 4, FX_AVGDL);
  double d3 = bm25(6, 3, 1, 2, FX_AVGDL), d4 = bm25(6, 3, 1, 4, FX_AVGDL), d6 = bm25(6, 3, 1, 3, FX_AVGDL);
  assert_int_equal(fx_total(r), 5);
  assert_string_equal(fx_ids(r), "4,2,3,1,6");
  assert_near(fx_score(r, 0), q4 + d4, 1e-5);
  assert_near(fx_score(r, 1), q2, 1e-5);
  assert_near(fx_score(r, 2), d3, 1e-5);
  assert_near(fx_score(r, 3), q1, 1e-5);
  assert_near(fx_score(r, 4), d6, 1e-5);
  json_decref(r);
}

static void match_operator_and_requires_every_term(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"match\":{\"title\":{\"query\":\"quick dog\",\"operator\":\"and\"}}}}");
  assert_string_equal(fx_ids(r), "4");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"match\":{\"title\":{\"query\":\"quick brown dog\",\"minimum_should_match\":2}}}}");
  assert_string_equal(fx_ids(r), "1,6,4"); /* brown (df 2) outweighs quick+quick in a longer title */
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"match\":{\"title\":{\"query\":\"quick brown dog\",\"minimum_should_match\":\"-34%\"}}}}");
  assert_string_equal(fx_ids(r), "1,6,4"); /* 3 - trunc(1.02) = 2 */
  json_decref(r);
}

static void match_boost_multiplies_the_score(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"match\":{\"title\":{\"query\":\"fox\",\"boost\":2.5}}}}");
  assert_near(fx_score(r, 0), 2.5 * bm25(6, 2, 1, 2, FX_AVGDL), 1e-5);
  json_decref(r);
}

static void term_on_keyword_scores_with_bm25_without_norms(void **st) {
  /* keyword: no norms (dl = 1), avgdl = 1 (one term per doc) */
  json_t *r = fx_search(*st, "{\"query\":{\"term\":{\"tag\":\"pet\"}}}");
  assert_string_equal(fx_ids(r), "3,4");
  assert_near(fx_score(r, 0), bm25(6, 2, 1, 1, 1), 1e-5);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"term\":{\"tag\":{\"value\":\"PET\"}}}}");
  assert_int_equal(fx_total(r), 0);
  json_decref(r);
}

static void term_and_terms_on_numbers_match_doc_values(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"term\":{\"popularity\":100}}}");
  assert_string_equal(fx_ids(r), "2");
  assert_near(fx_score(r, 0), 1.0, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"terms\":{\"days\":[1,3,99]}}}");
  assert_string_equal(fx_ids(r), "1,4");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"terms\":{\"tag\":[\"pet\",\"other\"],\"boost\":3}}}");
  assert_string_equal(fx_ids(r), "3,4,6");
  assert_near(fx_score(r, 0), 3.0, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"term\":{\"active\":true}}}");
  assert_string_equal(fx_ids(r), "1,3");
  json_decref(r);
}

static void range_filters_numbers_and_dates(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"range\":{\"popularity\":{\"gte\":10,\"lt\":100}}}}");
  assert_string_equal(fx_ids(r), "1,6");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"range\":{\"price\":{\"gt\":5.5}}}}");
  assert_string_equal(fx_ids(r), "3,4");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"range\":{\"price\":{\"lte\":5.5}}}}");
  assert_string_equal(fx_ids(r), "1,2,6");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"range\":{\"date\":{\"gte\":\"2024-01-01\",\"lt\":\"2024-03-01T00:00:00Z\"}}}}");
  assert_string_equal(fx_ids(r), "1,2");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"range\":{\"date\":{\"lt\":1704067200000}}}}");
  assert_string_equal(fx_ids(r), "3");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"range\":{\"date\":{\"gte\":\"2023-12-31||+1d\",\"lt\":\"2024-01-15||+1M/M\"}}}}");
  assert_string_equal(fx_ids(r), "1"); /* [2024-01-01, 2024-02-01): doc 2 is on 2024-02-01 */
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"range\":{\"date\":{\"lte\":\"now-1d/d\"}}}}");
  assert_int_equal(fx_total(r), 4); /* every dated doc is in the past */
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"range\":{\"tag\":{\"gte\":\"b\",\"lt\":\"p\"}}}}");
  assert_string_equal(fx_ids(r), "6");
  json_decref(r);
}

static void exists_and_ids_select_documents(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"exists\":{\"field\":\"popularity\"}}}");
  assert_string_equal(fx_ids(r), "1,2,3,4,6");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"exists\":{\"field\":\"user.name\"}}}");
  assert_string_equal(fx_ids(r), "1,2");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"exists\":{\"field\":\"title\"}}}");
  assert_int_equal(fx_total(r), 6);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"5\",\"2\",\"nope\",\"5\",\"\"]}}}");
  assert_string_equal(fx_ids(r), "2,5");
  assert_int_equal(fx_total(r), 2);
  json_decref(r);
}

/* An _id updated inside one refresh has two copies in one segment (the older deleted), and one
** deleted in a later refresh stays in its segment: ids must find only the live copy, once. */
static void ids_finds_only_the_live_copy_of_an_updated_document(void **st) {
  char dir[64] = "/tmp/qq_ids_XXXXXX", cmd[128];
  qi_index *ix;
  qi_snapshot *snap;
  json_t *out;
  qb_err err;
  const char *body = "{\"query\":{\"ids\":{\"values\":[\"a\",\"c\",\"a\",\"b\"]}}}";
  const char *doc = "{\"title\":\"x\"}";
  (void)st;
  assert_non_null(mkdtemp(dir));
  strcat(dir, "/idx");
  assert_int_equal(qi_index_create(dir, NULL, NULL, &ix, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "a", doc, strlen(doc), NULL, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "b", doc, strlen(doc), NULL, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "c", doc, strlen(doc), NULL, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "a", doc, strlen(doc), NULL, &err), QB_OK);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  assert_int_equal(qi_index_delete(ix, "c", NULL, &err), QB_OK);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  snap = qi_index_snapshot(ix);
  assert_int_equal(qq_search(NULL, "test", (const qi_snapshot *const *)&snap, 1, body, strlen(body),
                             &out, &err), QB_OK);
  assert_string_equal(fx_ids(out), "b,a"); /* equal scores: b is doc 1, the live a doc 3 */
  assert_int_equal(fx_total(out), 2);
  json_decref(out);
  qi_snapshot_release(snap);
  qi_index_close(ix);
  *strrchr(dir, '/') = 0;
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) {}
}

static void match_all_and_constant_score_give_the_boost(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"match_all\":{}}}");
  assert_int_equal(fx_total(r), 6);
  assert_near(fx_score(r, 0), 1.0, 1e-9);
  assert_string_equal(fx_ids(r), "1,2,3,4,5,6");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"constant_score\":{\"filter\":{\"match\":{\"title\":\"fox\"}},\"boost\":1.5}}}");
  assert_string_equal(fx_ids(r), "1,2");
  assert_near(fx_score(r, 1), 1.5, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{}");
  assert_int_equal(fx_total(r), 6);
  json_decref(r);
}

static void bool_combines_must_filter_should_and_must_not(void **st) {
  /* must quick (1,2,4), filter tag animal (1,2,5), must_not popularity 100 (2) -> 1;
  ** should brown adds its score for 1 */
  json_t *r = fx_search(*st, "{\"query\":{\"bool\":{\"must\":{\"match\":{\"title\":\"quick\"}},"
                             "\"filter\":[{\"term\":{\"tag\":\"animal\"}}],\"must_not\":[{\"term\":{\"popularity\":100}}],"
                             "\"should\":[{\"match\":{\"title\":\"brown\"}}]}}}");
  assert_string_equal(fx_ids(r), "1");
  assert_near(fx_score(r, 0), bm25(6, 3, 1, 3, FX_AVGDL) + bm25(6, 2, 1, 3, FX_AVGDL), 1e-5);
  json_decref(r);
  /* only should: at least one must match */
  r = fx_search(*st, "{\"query\":{\"bool\":{\"should\":[{\"term\":{\"tag\":\"pet\"}},{\"term\":{\"tag\":\"other\"}}]}}}");
  assert_int_equal(fx_total(r), 3);
  json_decref(r);
  /* should with minimum_should_match 2 */
  r = fx_search(*st, "{\"query\":{\"bool\":{\"should\":[{\"match\":{\"title\":\"dog\"}},{\"match\":{\"title\":\"brown\"}},"
                     "{\"match\":{\"title\":\"quick\"}}],\"minimum_should_match\":2}}}");
  assert_string_equal(fx_ids(r), "1,6,4");
  json_decref(r);
  /* only should clauses: one must match even with minimum_should_match 0 (Lucene) */
  r = fx_search(*st, "{\"query\":{\"bool\":{\"should\":[{\"term\":{\"tag\":\"pet\"}}],\"minimum_should_match\":0}}}");
  assert_string_equal(fx_ids(r), "3,4");
  json_decref(r);
  r = fx_search(*st, "{\"size\":\"2\",\"from\":\"1\"}");
  assert_string_equal(fx_ids(r), "2,3");
  json_decref(r);
  /* filter only: score 0; must_not only: all others, score 0 */
  r = fx_search(*st, "{\"query\":{\"bool\":{\"filter\":{\"term\":{\"tag\":\"pet\"}}}}}");
  assert_string_equal(fx_ids(r), "3,4");
  assert_near(fx_score(r, 0), 0, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"bool\":{\"must_not\":{\"term\":{\"tag\":\"animal\"}}}}}");
  assert_string_equal(fx_ids(r), "3,4,6");
  json_decref(r);
  /* boost on bool multiplies */
  r = fx_search(*st, "{\"query\":{\"bool\":{\"must\":{\"match\":{\"title\":\"fox\"}},\"boost\":2}}}");
  assert_near(fx_score(r, 0), 2 * bm25(6, 2, 1, 2, FX_AVGDL), 1e-5);
  json_decref(r);
  /* nested bool */
  r = fx_search(*st, "{\"query\":{\"bool\":{\"must\":[{\"bool\":{\"should\":[{\"term\":{\"tag\":\"pet\"}},"
                     "{\"term\":{\"tag\":\"other\"}}]}}],\"must_not\":[{\"match\":{\"title\":\"lazy\"}}]}}}");
  assert_int_equal(fx_total(r), 2);
  json_decref(r);
}

static void dis_max_and_multi_match_take_the_best_field(void **st) {
  double fox2 = bm25(6, 2, 1, 2, FX_AVGDL), animal = bm25(6, 3, 1, 1, 1);
  json_t *r = fx_search(*st, "{\"query\":{\"dis_max\":{\"queries\":[{\"match\":{\"title\":\"fox\"}},"
                             "{\"term\":{\"tag\":\"animal\"}}],\"tie_breaker\":0.5}}}");
  assert_string_equal(fx_ids(r), "2,1,5");
  assert_near(fx_score(r, 0), fox2 + 0.5 * animal, 1e-5);
  assert_near(fx_score(r, 2), animal, 1e-5);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"multi_match\":{\"query\":\"fox\",\"fields\":[\"title^3\",\"tag\"]}}}");
  assert_string_equal(fx_ids(r), "2,1");
  assert_near(fx_score(r, 0), 3 * fox2, 1e-5);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"multi_match\":{\"query\":\"animal\",\"fields\":[\"title\",\"tag\"],"
                     "\"type\":\"most_fields\"}}}");
  assert_string_equal(fx_ids(r), "1,2,5");
  assert_near(fx_score(r, 0), animal, 1e-5);
  json_decref(r);
}

static void prefix_and_wildcard_scan_the_term_dictionary(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"prefix\":{\"tag\":\"an\"}}}");
  assert_string_equal(fx_ids(r), "1,2,5");
  assert_near(fx_score(r, 0), 1, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"prefix\":{\"title\":{\"value\":\"qu\",\"boost\":2}}}}");
  assert_string_equal(fx_ids(r), "1,2,4");
  assert_near(fx_score(r, 0), 2, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"wildcard\":{\"tag\":\"p?t\"}}}");
  assert_string_equal(fx_ids(r), "3,4");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"wildcard\":{\"tag\":{\"value\":\"*th*\"}}}}");
  assert_string_equal(fx_ids(r), "6");
  json_decref(r);
}

static void sort_by_field_with_missing_and_paging(void **st) {
  json_t *r = fx_search(*st, "{\"sort\":[{\"popularity\":\"desc\"}]}");
  assert_string_equal(fx_ids(r), "2,6,1,3,4,5"); /* 5 has no popularity: last */
  assert_true(json_is_null(json_object_get(fx_hit(r, 0), "_score")));
  assert_true(json_is_null(fx_path(r, "hits.max_score")));
  assert_json_num(r, "hits.hits.0.sort.0", 100);
  json_decref(r);
  r = fx_search(*st, "{\"sort\":[{\"popularity\":{\"order\":\"asc\",\"missing\":\"_first\"}}],\"from\":1,\"size\":2}");
  assert_string_equal(fx_ids(r), "4,3");
  json_decref(r);
  r = fx_search(*st, "{\"sort\":[{\"tag\":\"asc\"},{\"days\":\"desc\"}],\"size\":3}");
  assert_string_equal(fx_ids(r), "2,5,1");
  assert_json_str(r, "hits.hits.0.sort.0", "animal");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"match\":{\"title\":\"quick dog\"}},\"from\":2,\"size\":2}");
  assert_string_equal(fx_ids(r), "3,1");
  assert_int_equal(fx_total(r), 5);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"match\":{\"title\":\"quick dog\"}},\"size\":0}");
  assert_string_equal(fx_ids(r), "");
  assert_int_equal(fx_total(r), 5);
  json_decref(r);
  r = fx_search(*st, "{\"sort\":[\"_score\",{\"price\":\"asc\"}],\"query\":{\"term\":{\"tag\":\"animal\"}}}");
  assert_string_equal(fx_ids(r), "2,1,5");
  json_decref(r);
}

static void source_filtering_includes_and_excludes_paths(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"1\"]}},\"_source\":false}");
  assert_null(json_object_get(fx_hit(r, 0), "_source"));
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"1\"]}},\"_source\":[\"title\",\"user.*\"]}");
  json_t *src = json_object_get(fx_hit(r, 0), "_source");
  assert_int_equal(json_object_size(src), 2);
  assert_json_str(src, "user.name", "ann");
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"1\"]}},\"_source\":{\"includes\":[\"u*\",\"p*\"],"
                     "\"excludes\":[\"user.age\",\"price\"]}}");
  src = json_object_get(fx_hit(r, 0), "_source");
  assert_int_equal(json_object_size(src), 2);
  assert_int_equal(json_object_size(json_object_get(src, "user")), 1);
  assert_json_num(src, "popularity", 10);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"1\"]}},\"_source\":\"user.name\"}");
  src = json_object_get(fx_hit(r, 0), "_source");
  assert_json_str(src, "user.name", "ann");
  assert_int_equal(json_object_size(src), 1);
  json_decref(r);
}

static void version_and_seq_no_are_added_on_request(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"3\"]}},\"version\":true,\"seq_no_primary_term\":true}");
  assert_json_num(r, "hits.hits.0._version", 1);
  assert_json_num(r, "hits.hits.0._seq_no", 2); /* the third put */
  assert_json_num(r, "hits.hits.0._primary_term", 1);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"3\"]}}}");
  assert_null(fx_path(r, "hits.hits.0._version"));
  json_decref(r);
}

static void track_total_hits_follows_elasticsearch(void **st) {
  json_t *r = fx_search(*st, "{\"track_total_hits\":3}");
  assert_int_equal(fx_total(r), 3);
  assert_json_str(r, "hits.total.relation", "gte");
  json_decref(r);
  r = fx_search(*st, "{\"track_total_hits\":false}");
  assert_null(fx_path(r, "hits.total"));
  json_decref(r);
  r = fx_search(*st, "{\"track_total_hits\":true}");
  assert_int_equal(fx_total(r), 6);
  assert_json_str(r, "hits.total.relation", "eq");
  json_decref(r);
}

static void count_counts_matches(void **st) {
  fx *f = *st;
  json_t *out;
  qb_err err;
  const qi_snapshot *snaps[1] = {f->snap};
  const char *body = "{\"query\":{\"term\":{\"tag\":\"animal\"}}}";
  assert_int_equal(qq_count(NULL, "test", snaps, 1, body, strlen(body), &out, &err), QB_OK);
  assert_json_num(out, "count", 3);
  assert_json_num(out, "_shards.successful", 1);
  json_decref(out);
}

static void two_shards_merge_by_score_then_shard(void **st) {
  fx *f = *st;
  json_t *out;
  qb_err err;
  const qi_snapshot *snaps[2] = {f->snap, f->snap}; /* the same data twice */
  const char *body = "{\"query\":{\"match\":{\"title\":\"quick dog\"}},\"size\":4,"
                     "\"aggs\":{\"t\":{\"terms\":{\"field\":\"tag\"}}}}";
  assert_int_equal(qq_search(NULL, "test", snaps, 2, body, strlen(body), &out, &err), QB_OK);
  assert_string_equal(fx_ids(out), "4,4,2,3"); /* ties: shard, then doc */
  assert_json_num(out, "hits.total.value", 10);
  assert_json_num(out, "_shards.total", 2);
  assert_json_num(out, "hits.hits.1._score", fx_score(out, 0));
  assert_json_str(out, "aggregations.t.buckets.0.key", "animal"); /* 4 = 4: key asc */
  assert_json_num(out, "aggregations.t.buckets.0.doc_count", 4);
  json_decref(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(match_scores_equal_bm25_by_hand),
      cmocka_unit_test(match_sums_term_scores_over_should_clauses),
      cmocka_unit_test(match_operator_and_requires_every_term),
      cmocka_unit_test(match_boost_multiplies_the_score),
      cmocka_unit_test(term_on_keyword_scores_with_bm25_without_norms),
      cmocka_unit_test(term_and_terms_on_numbers_match_doc_values),
      cmocka_unit_test(range_filters_numbers_and_dates),
      cmocka_unit_test(exists_and_ids_select_documents),
      cmocka_unit_test(ids_finds_only_the_live_copy_of_an_updated_document),
      cmocka_unit_test(match_all_and_constant_score_give_the_boost),
      cmocka_unit_test(bool_combines_must_filter_should_and_must_not),
      cmocka_unit_test(dis_max_and_multi_match_take_the_best_field),
      cmocka_unit_test(prefix_and_wildcard_scan_the_term_dictionary),
      cmocka_unit_test(sort_by_field_with_missing_and_paging),
      cmocka_unit_test(source_filtering_includes_and_excludes_paths),
      cmocka_unit_test(version_and_seq_no_are_added_on_request),
      cmocka_unit_test(track_total_hits_follows_elasticsearch),
      cmocka_unit_test(count_counts_matches),
      cmocka_unit_test(two_shards_merge_by_score_then_shard),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
