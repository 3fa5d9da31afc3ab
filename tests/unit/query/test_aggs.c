/* test_aggs.c: aggregations against a real index, with Elasticsearch's response shapes: terms
** (size, order by count then key, sum_other_doc_count, numeric/boolean/date keys), metrics
** (avg, sum, min, max, stats, value_count, missing), metrics nested under terms, aggregations
** restricted to the query's matches. */
#include "fixture.h"

static void terms_orders_by_count_then_key_and_counts_the_rest(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"tags\":{\"terms\":{\"field\":\"tag\",\"size\":2}}}}");
  /* animal 3, pet 2, other 1 */
  assert_json_str(r, "aggregations.tags.buckets.0.key", "animal");
  assert_json_num(r, "aggregations.tags.buckets.0.doc_count", 3);
  assert_json_str(r, "aggregations.tags.buckets.1.key", "pet");
  assert_json_num(r, "aggregations.tags.buckets.1.doc_count", 2);
  assert_int_equal(json_array_size(fx_path(r, "aggregations.tags.buckets")), 2);
  assert_json_num(r, "aggregations.tags.sum_other_doc_count", 1);
  assert_json_num(r, "aggregations.tags.doc_count_error_upper_bound", 0);
  assert_int_equal(json_array_size(fx_path(r, "hits.hits")), 0);
  json_decref(r);
}

static void terms_on_numbers_booleans_and_dates_render_keys(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"a\":{\"terms\":{\"field\":\"active\"}},"
                             "\"d\":{\"terms\":{\"field\":\"date\",\"size\":1}},\"p\":{\"terms\":{\"field\":\"price\",\"size\":1}}}}");
  /* active: false (2, 6), true (1, 3): tie -> key 0 first */
  assert_json_num(r, "aggregations.a.buckets.0.key", 0);
  assert_json_str(r, "aggregations.a.buckets.0.key_as_string", "false");
  assert_json_num(r, "aggregations.a.buckets.0.doc_count", 2);
  assert_json_num(r, "aggregations.d.buckets.0.key", 1686830400000.0); /* 2023-06-15T12:00Z, smallest */
  assert_json_str(r, "aggregations.d.buckets.0.key_as_string", "2023-06-15T12:00:00.000Z");
  assert_json_num(r, "aggregations.p.buckets.0.key", 1.25);
  json_decref(r);
}

static void metrics_match_elasticsearch_shapes(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"avg\":{\"avg\":{\"field\":\"price\"}},\"sum\":{\"sum\":{\"field\":\"price\"}},"
                             "\"min\":{\"min\":{\"field\":\"popularity\"}},\"max\":{\"max\":{\"field\":\"popularity\"}},"
                             "\"st\":{\"stats\":{\"field\":\"days\"}},\"vc\":{\"value_count\":{\"field\":\"tag\"}},"
                             "\"vcn\":{\"value_count\":{\"field\":\"popularity\"}},"
                             "\"miss\":{\"avg\":{\"field\":\"days\",\"missing\":100}}}}");
  double sum = 5.5 + 1.25 + 20 + 7 + 3;
  assert_json_num(r, "aggregations.avg.value", sum / 5);
  assert_json_num(r, "aggregations.sum.value", sum);
  assert_json_num(r, "aggregations.min.value", 0);
  assert_json_num(r, "aggregations.max.value", 100);
  assert_json_num(r, "aggregations.st.count", 5);
  assert_json_num(r, "aggregations.st.min", 1);
  assert_json_num(r, "aggregations.st.max", 30);
  assert_json_num(r, "aggregations.st.avg", 49.0 / 5);
  assert_json_num(r, "aggregations.st.sum", 49);
  assert_json_num(r, "aggregations.vc.value", 6);
  assert_json_num(r, "aggregations.vcn.value", 5);
  assert_json_num(r, "aggregations.miss.value", 149.0 / 6);
  json_decref(r);
}

static void metrics_over_no_documents_are_null_or_zero(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"term\":{\"tag\":\"nothing\"}},\"aggs\":{\"avg\":{\"avg\":{\"field\":\"price\"}},"
                             "\"sum\":{\"sum\":{\"field\":\"price\"}},\"min\":{\"min\":{\"field\":\"price\"}},"
                             "\"st\":{\"stats\":{\"field\":\"price\"}},\"t\":{\"terms\":{\"field\":\"tag\"}}}}");
  assert_true(json_is_null(fx_path(r, "aggregations.avg.value")));
  assert_json_num(r, "aggregations.sum.value", 0);
  assert_true(json_is_null(fx_path(r, "aggregations.min.value")));
  assert_json_num(r, "aggregations.st.count", 0);
  assert_true(json_is_null(fx_path(r, "aggregations.st.avg")));
  assert_int_equal(json_array_size(fx_path(r, "aggregations.t.buckets")), 0);
  json_decref(r);
}

static void metrics_nest_under_terms_buckets(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"tags\":{\"terms\":{\"field\":\"tag\"},\"aggs\":{"
                             "\"avg_price\":{\"avg\":{\"field\":\"price\"}},\"max_days\":{\"max\":{\"field\":\"days\"}},"
                             "\"pop\":{\"stats\":{\"field\":\"popularity\"}}}}}}");
  /* animal: 1, 2, 5: prices 5.5, 1.25, -; days 3, 10, 5; popularity 10, 100, - */
  assert_json_str(r, "aggregations.tags.buckets.0.key", "animal");
  assert_json_num(r, "aggregations.tags.buckets.0.avg_price.value", (5.5 + 1.25) / 2);
  assert_json_num(r, "aggregations.tags.buckets.0.max_days.value", 10);
  assert_json_num(r, "aggregations.tags.buckets.0.pop.count", 2);
  assert_json_num(r, "aggregations.tags.buckets.0.pop.sum", 110);
  /* pet: 3, 4 */
  assert_json_num(r, "aggregations.tags.buckets.1.avg_price.value", 13.5);
  /* other: 6, no days */
  assert_json_str(r, "aggregations.tags.buckets.2.key", "other");
  assert_true(json_is_null(fx_path(r, "aggregations.tags.buckets.2.max_days.value")));
  json_decref(r);
}

static void terms_order_by_key_count_or_metric_and_min_doc_count(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"k\":{\"terms\":{\"field\":\"tag\",\"order\":{\"_key\":\"desc\"}}},"
                             "\"c\":{\"terms\":{\"field\":\"tag\",\"order\":{\"_count\":\"asc\"}}},"
                             "\"m\":{\"terms\":{\"field\":\"tag\",\"order\":[{\"avg_price\":\"desc\"}]},\"aggs\":"
                             "{\"avg_price\":{\"avg\":{\"field\":\"price\"}}}},"
                             "\"min\":{\"terms\":{\"field\":\"tag\",\"min_doc_count\":2}}}}");
  assert_json_str(r, "aggregations.k.buckets.0.key", "pet");
  assert_json_str(r, "aggregations.k.buckets.2.key", "animal");
  assert_json_str(r, "aggregations.c.buckets.0.key", "other");
  assert_json_str(r, "aggregations.c.buckets.2.key", "animal");
  /* avg price: pet 13.5, animal 3.375, other 3 */
  assert_json_str(r, "aggregations.m.buckets.0.key", "pet");
  assert_json_str(r, "aggregations.m.buckets.1.key", "animal");
  assert_json_str(r, "aggregations.m.buckets.2.key", "other");
  assert_int_equal(json_array_size(fx_path(r, "aggregations.min.buckets")), 2);
  json_decref(r);
  qb_code code;
  json_t *e = fx_search_error(*st, NULL, "{\"aggs\":{\"t\":{\"terms\":{\"field\":\"tag\",\"order\":{\"nope\":\"asc\"}}}}}", &code);
  assert_int_equal(code, QB_INVAL);
  json_decref(e);
}

static void histogram_buckets_by_interval_and_fills_gaps(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"h\":{\"histogram\":{\"field\":\"price\",\"interval\":5},"
                             "\"aggs\":{\"m\":{\"max\":{\"field\":\"price\"}}}}}}");
  /* prices 5.5 1.25 20 7 3: 0 -> 2, 5 -> 2, 10 -> 0, 15 -> 0, 20 -> 1 */
  json_t *b = fx_path(r, "aggregations.h.buckets");
  assert_int_equal(json_array_size(b), 5);
  assert_json_num(r, "aggregations.h.buckets.0.key", 0);
  assert_json_num(r, "aggregations.h.buckets.0.doc_count", 2);
  assert_json_num(r, "aggregations.h.buckets.1.m.value", 7);
  assert_json_num(r, "aggregations.h.buckets.2.key", 10);
  assert_json_num(r, "aggregations.h.buckets.2.doc_count", 0);
  assert_true(json_is_null(fx_path(r, "aggregations.h.buckets.2.m.value")));
  assert_json_num(r, "aggregations.h.buckets.4.key", 20);
  json_decref(r);
}

static void date_histogram_buckets_by_calendar_and_fixed_intervals(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"m\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"month\"}},"
                             "\"m1\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"1M\",\"min_doc_count\":1},"
                             "\"aggs\":{\"p\":{\"avg\":{\"field\":\"price\"}}}},"
                             "\"q\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"quarter\"}},"
                             "\"f\":{\"date_histogram\":{\"field\":\"date\",\"fixed_interval\":\"1d\",\"min_doc_count\":1}}}}");
  /* 2023-06-15T12:00, 2024-01-01, 2024-02-01, 2024-03-01: June 2023 .. March 2024 = 10 months */
  assert_int_equal(json_array_size(fx_path(r, "aggregations.m.buckets")), 10);
  assert_json_str(r, "aggregations.m.buckets.0.key_as_string", "2023-06-01T00:00:00.000Z");
  assert_json_num(r, "aggregations.m.buckets.0.key", 1685577600000.0);
  assert_json_num(r, "aggregations.m.buckets.1.doc_count", 0);
  assert_json_str(r, "aggregations.m.buckets.9.key_as_string", "2024-03-01T00:00:00.000Z");
  assert_int_equal(json_array_size(fx_path(r, "aggregations.m1.buckets")), 4);
  assert_json_num(r, "aggregations.m1.buckets.1.p.value", 5.5);
  /* quarters: 2023-04, 2023-07 (empty), 2023-10 (empty), 2024-01 (3 docs) */
  assert_int_equal(json_array_size(fx_path(r, "aggregations.q.buckets")), 4);
  assert_json_str(r, "aggregations.q.buckets.0.key_as_string", "2023-04-01T00:00:00.000Z");
  assert_json_num(r, "aggregations.q.buckets.3.doc_count", 3);
  assert_json_str(r, "aggregations.f.buckets.0.key_as_string", "2023-06-15T00:00:00.000Z");
  json_decref(r);
  qb_code code;
  json_t *e = fx_search_error(*st, NULL, "{\"aggs\":{\"d\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"2M\"}}}}", &code);
  assert_int_equal(code, QB_INVAL);
  json_decref(e);
  e = fx_search_error(*st, NULL, "{\"aggs\":{\"d\":{\"date_histogram\":{\"field\":\"date\",\"fixed_interval\":\"1ms\"}}}}", &code);
  assert_non_null(strstr(json_string_value(fx_path(e, "error.reason")), "too_many_buckets"));
  json_decref(e);
}

static void bucket_aggregations_nest_and_merge_across_shards(void **st) {
  fx *f = *st;
  const char *body = "{\"size\":0,\"aggs\":{\"tags\":{\"terms\":{\"field\":\"tag\"},\"aggs\":{"
                     "\"act\":{\"terms\":{\"field\":\"active\"},\"aggs\":{\"p\":{\"avg\":{\"field\":\"price\"}}}},"
                     "\"mx\":{\"max\":{\"field\":\"days\"}}}},"
                     "\"months\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"month\",\"min_doc_count\":1},"
                     "\"aggs\":{\"t\":{\"terms\":{\"field\":\"tag\"}}}}}}";
  json_t *r = fx_search(f, body);
  /* animal: 1 (active, 5.5), 2 (inactive, 1.25), 5 (no active) */
  assert_json_str(r, "aggregations.tags.buckets.0.key", "animal");
  assert_json_num(r, "aggregations.tags.buckets.0.mx.value", 10);
  assert_int_equal(json_array_size(fx_path(r, "aggregations.tags.buckets.0.act.buckets")), 2);
  assert_json_str(r, "aggregations.tags.buckets.0.act.buckets.0.key_as_string", "false");
  assert_json_num(r, "aggregations.tags.buckets.0.act.buckets.0.p.value", 1.25);
  assert_json_num(r, "aggregations.tags.buckets.0.act.buckets.1.p.value", 5.5);
  /* pet: 3 (active), 4 (no active) */
  assert_int_equal(json_array_size(fx_path(r, "aggregations.tags.buckets.1.act.buckets")), 1);
  assert_json_str(r, "aggregations.months.buckets.0.t.buckets.0.key", "pet");
  json_decref(r);
  /* two shards holding the same documents: every count doubles, averages stay */
  const qi_snapshot *snaps[2] = {f->snap, f->snap};
  json_t *out;
  qb_err err;
  assert_int_equal(qq_search(NULL, "test", snaps, 2, body, strlen(body), &out, &err), QB_OK);
  assert_json_num(out, "aggregations.tags.buckets.0.doc_count", 6);
  assert_json_num(out, "aggregations.tags.buckets.0.act.buckets.0.doc_count", 2);
  assert_json_num(out, "aggregations.tags.buckets.0.act.buckets.1.p.value", 5.5);
  assert_json_num(out, "aggregations.months.buckets.0.t.buckets.0.doc_count", 2);
  json_decref(out);
}

static void aggregations_see_only_matching_documents(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"match\":{\"title\":\"dog\"}},\"aggs\":{\"tags\":{\"terms\":{\"field\":\"tag\"}},"
                             "\"s\":{\"sum\":{\"field\":\"popularity\"}}}}");
  /* dog: 3 (pet), 4 (pet), 6 (other) */
  assert_json_str(r, "aggregations.tags.buckets.0.key", "pet");
  assert_json_num(r, "aggregations.tags.buckets.0.doc_count", 2);
  assert_json_num(r, "aggregations.s.value", 51);
  json_decref(r);
}

static void date_metrics_carry_value_as_string(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"m\":{\"max\":{\"field\":\"date\"}}}}");
  assert_json_str(r, "aggregations.m.value_as_string", "2024-03-01T00:00:00.000Z");
  json_decref(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(terms_orders_by_count_then_key_and_counts_the_rest),
      cmocka_unit_test(terms_on_numbers_booleans_and_dates_render_keys),
      cmocka_unit_test(metrics_match_elasticsearch_shapes),
      cmocka_unit_test(metrics_over_no_documents_are_null_or_zero),
      cmocka_unit_test(metrics_nest_under_terms_buckets),
      cmocka_unit_test(terms_order_by_key_count_or_metric_and_min_doc_count),
      cmocka_unit_test(histogram_buckets_by_interval_and_fills_gaps),
      cmocka_unit_test(date_histogram_buckets_by_calendar_and_fixed_intervals),
      cmocka_unit_test(bucket_aggregations_nest_and_merge_across_shards),
      cmocka_unit_test(aggregations_see_only_matching_documents),
      cmocka_unit_test(date_metrics_carry_value_as_string),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
