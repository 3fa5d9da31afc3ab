/* test_scripts.c: scripts in queries: function_score (script_score, field_value_factor, weight,
** filters, score_mode, boost_mode), the script_score query, the script filter, script_fields
** and metric aggregations with a script; once with expressions and once with a test provider
** (a fake "UDF" written against the qq_script vtable, as the UDF layer will be), including a
** provider whose script traps. */
#include "fixture.h"

/* ---- a fake UDF provider ---------------------------------------------------------------------- */

typedef struct fake {
  qq_script base;
  qq_script_kind kind;
  int which;        /* 0 custom_score, 1 keep_even, 2 label, 3 price_x2, 4 trap */
  double boost;     /* params.boost_factor */
  double tier;      /* _context.user.tier */
  char strbuf[QQ_BLOCK_MAX][32];
} fake;

static int fake_frees;

static qb_code fake_bind(qq_script *s, const qq_shard_info *info, qq_bind *b, qb_err *err) {
  fake *f = (fake *)s;
  switch (f->which) {
  case 0:
    if (info->field_type(info, "popularity") != QQ_FIELD_LONG) return qb_fail(err, QB_INVAL, "popularity is not a long");
    b->args[0] = (qq_arg){.kind = QQ_ARG_SCORE, .type = QQ_COL_F64};
    b->args[1] = (qq_arg){.kind = QQ_ARG_FIELD, .type = QQ_COL_I64, .field = "popularity", .has_missing = 1, .missing_i64 = 7};
    b->args[2] = (qq_arg){.kind = QQ_ARG_CONST, .type = QQ_COL_F64, .missing_f64 = f->boost};
    b->nargs = 3;
    break;
  case 1:
    b->args[0] = (qq_arg){.kind = QQ_ARG_FIELD, .type = QQ_COL_I64, .field = "days"};
    b->nargs = 1;
    break;
  case 2:
    b->args[0] = (qq_arg){.kind = QQ_ARG_FIELD, .type = QQ_COL_STR, .field = "tag"};
    b->nargs = 1;
    b->result = QQ_RESULT_STR;
    break;
  case 3:
    b->args[0] = (qq_arg){.kind = QQ_ARG_FIELD, .type = QQ_COL_F64, .field = "price"};
    b->nargs = 1;
    break;
  default:
    b->nargs = 0;
  }
  return QB_OK;
}

static qb_code fake_run(qq_script *s, const qq_block *in, qq_result_block *out, qb_err *err) {
  fake *f = (fake *)s;
  for (size_t i = 0; i < in->n; i++) {
    switch (f->which) {
    case 0: /* score * boost + popularity (missing 7) + tier */
      out->f64[i] = in->cols[0].f64[i] * in->cols[2].f64[i] + (double)in->cols[1].i64[i] + f->tier;
      break;
    case 1: out->keep[i] = in->cols[0].present[i] && in->cols[0].i64[i] % 2 == 0; break;
    case 2:
      if (!in->cols[0].present[i]) {
        out->str[i] = (qq_str){NULL, 0};
      } else {
        int n = snprintf(f->strbuf[i], sizeof f->strbuf[i], "tag:%.*s", (int)in->cols[0].str[i].len, in->cols[0].str[i].ptr);
        out->str[i] = (qq_str){f->strbuf[i], (size_t)n};
      }
      break;
    case 3:
      out->f64[i] = 2 * in->cols[0].f64[i];
      out->present[i] = in->cols[0].present[i];
      break;
    default:
      return qb_fail(err, QB_TRAP, "udf trap: wasm trap: unreachable executed");
    }
  }
  return QB_OK;
}

static void fake_free(qq_script *s) {
  fake_frees++;
  free(s);
}

static const qq_script_vtable fake_vt = {fake_bind, fake_run, fake_free};

static qb_code fake_resolve(qq_script_provider *p, const char *source, const char *lang, qq_script_kind kind,
                            const json_t *params, const json_t *ctx, qq_script **out, qb_err *err) {
  static const char *const names[] = {"custom_score", "keep_even", "label", "price_x2", "trap"};
  (void)p;
  (void)lang;
  for (int i = 0; i < 5; i++)
    if (!strcmp(source, names[i])) {
      fake *f = calloc(1, sizeof *f);
      f->base.vt = &fake_vt;
      f->base.name = names[i];
      f->kind = kind;
      f->which = i;
      f->boost = 1;
      json_t *b = params ? json_object_get(params, "boost_factor") : NULL;
      if (b && !json_is_number(b)) {
        free(f);
        return qb_fail(err, QB_INVAL, "param [boost_factor] must be a number");
      }
      if (b) f->boost = json_number_value(b);
      json_t *tier = ctx ? json_object_get(json_object_get(ctx, "user"), "tier") : NULL;
      if (tier) f->tier = json_number_value(tier);
      *out = &f->base;
      return QB_OK;
    }
  return QB_NOTFOUND;
}

static qq_script_provider provider = {fake_resolve, NULL};
static const qq_env penv = {.scripts = &provider};

/* ---- expressions --------------------------------------------------------------------------------- */

static double fox(double dl) { return bm25(6, 2, 1, dl, FX_AVGDL); }

static void function_score_script_score_multiplies_by_default(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"function_score\":{\"query\":{\"match\":{\"title\":\"fox\"}},"
                             "\"script_score\":{\"script\":{\"source\":\"log(1 + doc['popularity'].value) * params.w\","
                             "\"params\":{\"w\":2}}}}}}");
  /* doc 2: fox(2) * 2 ln(101); doc 1: fox(3) * 2 ln(11) */
  assert_string_equal(fx_ids(r), "2,1");
  assert_near(fx_score(r, 0), fox(2) * 2 * log(101), 1e-5);
  assert_near(fx_score(r, 1), fox(3) * 2 * log(11), 1e-5);
  json_decref(r);
}

static void function_score_boost_mode_replace_uses_the_function(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"function_score\":{\"query\":{\"match_all\":{}},\"boost_mode\":\"replace\","
                             "\"script_score\":{\"script\":\"doc['days'].value\"}}},\"size\":3}");
  assert_string_equal(fx_ids(r), "3,2,5"); /* days 30, 10, 5 */
  assert_near(fx_score(r, 0), 30, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"function_score\":{\"query\":{\"match\":{\"title\":\"fox\"}},\"boost_mode\":\"sum\","
                     "\"script_score\":{\"script\":\"_score * 10\"},\"boost\":2}}}");
  assert_near(fx_score(r, 0), 2 * (fox(2) + 10 * fox(2)), 1e-5);
  json_decref(r);
}

static void field_value_factor_applies_factor_then_modifier(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"function_score\":{\"query\":{\"term\":{\"tag\":\"animal\"}},"
                             "\"field_value_factor\":{\"field\":\"popularity\",\"factor\":2,\"modifier\":\"log1p\","
                             "\"missing\":4},\"boost_mode\":\"replace\"}}}");
  /* log10(2v + 1): doc 2 (100) 201, doc 1 (10) 21, doc 5 (missing 4) 9 */
  assert_string_equal(fx_ids(r), "2,1,5");
  assert_near(fx_score(r, 0), log10(201), 1e-6);
  assert_near(fx_score(r, 2), log10(9), 1e-6);
  json_decref(r);
}

static void function_score_functions_with_filters_and_score_modes(void **st) {
  const char *q = "{\"query\":{\"function_score\":{\"query\":{\"term\":{\"tag\":\"animal\"}},\"boost_mode\":\"replace\","
                  "\"score_mode\":\"%s\",\"functions\":["
                  "{\"filter\":{\"match\":{\"title\":\"fox\"}},\"weight\":3},"
                  "{\"filter\":{\"range\":{\"days\":{\"gte\":5}}},\"weight\":5},"
                  "{\"script_score\":{\"script\":\"doc['days'].value\"},\"weight\":2}]}},\"sort\":[\"_doc\"],\"track_scores\":true}";
  char body[1024];
  /* doc 1: fox, days 3 -> 3, -, 6; doc 2: fox, days 10 -> 3, 5, 20; doc 5: days 5 -> -, 5, 10 */
  static const struct { const char *mode; double s1, s2, s5; } cases[] = {
      {"sum", 9, 28, 15}, {"multiply", 18, 300, 50}, {"max", 6, 20, 10},
      {"min", 3, 3, 5},   {"first", 3, 3, 5},        {"avg", 9.0 / 5, 28.0 / 10, 15.0 / 7},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(body, sizeof body, q, cases[i].mode);
    json_t *r = fx_search(*st, body);
    assert_string_equal(fx_ids(r), "1,2,5");
    assert_near(fx_score(r, 0), cases[i].s1, 1e-6);
    assert_near(fx_score(r, 1), cases[i].s2, 1e-6);
    assert_near(fx_score(r, 2), cases[i].s5, 1e-6);
    json_decref(r);
  }
}

static void function_score_min_score_and_max_boost(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"function_score\":{\"query\":{\"match_all\":{}},\"boost_mode\":\"replace\","
                             "\"script_score\":{\"script\":\"doc['days'].value\"},\"min_score\":5,\"max_boost\":20}}}");
  assert_string_equal(fx_ids(r), "3,2,5"); /* 6 has no days: 0 < 5 */
  assert_near(fx_score(r, 0), 20, 1e-9);
  assert_int_equal(fx_total(r), 3);
  json_decref(r);
}

static void script_score_query_replaces_the_score(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"script_score\":{\"query\":{\"match\":{\"title\":\"fox\"}},"
                             "\"script\":{\"source\":\"_score * 2 + doc['price'].value\"}}}}");
  assert_string_equal(fx_ids(r), "1,2");
  assert_near(fx_score(r, 0), 2 * fox(3) + 5.5, 1e-5);
  assert_near(fx_score(r, 1), 2 * fox(2) + 1.25, 1e-5);
  json_decref(r);
}

static void script_query_filters_in_bool_filter(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"bool\":{\"must\":{\"match_all\":{}},\"filter\":{\"script\":{\"script\":"
                             "\"doc['days'].value > 4 && !doc['days'].empty\"}}}}}");
  assert_string_equal(fx_ids(r), "2,3,5");
  assert_near(fx_score(r, 0), 1, 1e-9);
  json_decref(r);
}

static void script_fields_compute_values_per_hit(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"ids\":{\"values\":[\"1\",\"2\"]}},\"script_fields\":{"
                             "\"twice\":{\"script\":\"doc['price'].value * 2\"},\"p\":{\"script\":{\"source\":\"x + 1\","
                             "\"params\":{\"x\":41}}}}}");
  assert_json_num(r, "hits.hits.0.fields.twice.0", 11);
  assert_json_num(r, "hits.hits.1.fields.twice.0", 2.5);
  assert_json_num(r, "hits.hits.1.fields.p.0", 42);
  assert_non_null(fx_path(r, "hits.hits.0._source"));
  json_decref(r);
}

static void metric_aggregations_take_a_script(void **st) {
  json_t *r = fx_search(*st, "{\"size\":0,\"aggs\":{\"a\":{\"avg\":{\"script\":\"doc['days'].value * 2\"}},"
                             "\"m\":{\"max\":{\"script\":{\"source\":\"doc['popularity'].value + k\",\"params\":{\"k\":1}}}}}}");
  /* expressions read missing as 0: days 3,10,30,1,5,0 */
  assert_json_num(r, "aggregations.a.value", 2.0 * 49 / 6);
  assert_json_num(r, "aggregations.m.value", 101);
  json_decref(r);
}

static void expression_params_read_fields_context_and_score(void **st) {
  json_t *r = fx_search(*st, "{\"query\":{\"script_score\":{\"query\":{\"ids\":{\"values\":[\"1\",\"5\"]}},"
                             "\"script\":{\"source\":\"pop + days * tier + s\",\"params\":{\"pop\":{\"field\":\"popularity\","
                             "\"missing\":1000},\"days\":\"doc['days']\",\"tier\":\"_context.user.tier\",\"s\":\"_score\"}}}},"
                             "\"context\":{\"user\":{\"tier\":2}},\"sort\":[\"_doc\"],\"track_scores\":true}");
  /* doc 1: 10 + 3*2 + 1; doc 5: missing popularity 1000 + 5*2 + 1 */
  assert_string_equal(fx_ids(r), "1,5");
  assert_near(fx_score(r, 0), 17, 1e-9);
  assert_near(fx_score(r, 1), 1011, 1e-9);
  json_decref(r);
  r = fx_search(*st, "{\"query\":{\"script_score\":{\"query\":{\"ids\":{\"values\":[\"2\"]}},"
                     "\"script\":{\"source\":\"p * 2\",\"params\":{\"p\":\"_source.price\"}}}}}");
  assert_near(fx_score(r, 0), 2.5, 1e-9);
  json_decref(r);
}

/* ---- the provider ---------------------------------------------------------------------------------- */

static void provider_scores_with_bound_columns_params_and_context(void **st) {
  json_t *r = fx_search_env(*st, &penv,
                            "{\"query\":{\"function_score\":{\"query\":{\"match\":{\"title\":\"fox dog\"}},\"boost_mode\":\"replace\","
                            "\"script_score\":{\"script\":{\"source\":\"custom_score\",\"params\":{\"boost_factor\":1000}}}}},"
                            "\"context\":{\"user\":{\"tier\":0.5}}}");
  /* doc 2: 1000 * fox(2) + 100 + 0.5; doc 4 (dog, popularity 0): 1000*dog(4) + 0.5 */
  assert_string_equal(json_string_value(fx_path(r, "hits.hits.0._id")), "2");
  assert_near(fx_score(r, 0), 1000 * fox(2) + 100.5, 1e-5);
  json_decref(r);
  r = fx_search_env(*st, &penv, "{\"query\":{\"script_score\":{\"query\":{\"term\":{\"tag\":\"animal\"}},"
                                "\"script\":{\"source\":\"custom_score\",\"lang\":\"wasm\"}}},\"sort\":[\"_doc\"],\"track_scores\":true}");
  /* animal: 1 (10), 2 (100), 5 (missing -> 7); score = bm25 + pop */
  double s = bm25(6, 3, 1, 1, 1);
  assert_string_equal(fx_ids(r), "1,2,5");
  assert_near(fx_score(r, 2), s + 7, 1e-5);
  json_decref(r);
}

static void provider_filters_transforms_and_aggregates(void **st) {
  json_t *r = fx_search_env(*st, &penv, "{\"query\":{\"bool\":{\"filter\":[{\"script\":{\"script\":\"keep_even\"}}]}},"
                                        "\"script_fields\":{\"l\":{\"script\":\"label\"}},"
                                        "\"aggs\":{\"p\":{\"sum\":{\"script\":\"price_x2\"}},\"s\":{\"stats\":{\"script\":\"price_x2\"}}}}");
  assert_string_equal(fx_ids(r), "2,3"); /* days 10, 30 */
  assert_json_str(r, "hits.hits.0.fields.l.0", "tag:animal");
  assert_json_str(r, "hits.hits.1.fields.l.0", "tag:pet");
  assert_json_num(r, "aggregations.p.value", 2 * (1.25 + 20));
  assert_json_num(r, "aggregations.s.count", 2);
  json_decref(r);
  r = fx_search_env(*st, &penv, "{\"size\":0,\"aggs\":{\"s\":{\"stats\":{\"script\":\"price_x2\"}}}}");
  /* prices 5.5 1.25 20 7 - 3: doc 5 has none (present 0, skipped) */
  assert_json_num(r, "aggregations.s.count", 5);
  assert_json_num(r, "aggregations.s.sum", 2 * (5.5 + 1.25 + 20 + 7 + 3));
  assert_json_num(r, "aggregations.s.min", 2.5);
  json_decref(r);
}

static void provider_unknown_source_falls_back_to_expressions(void **st) {
  json_t *r = fx_search_env(*st, &penv, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},"
                                        "\"script\":\"doc['days'].value\"}},\"size\":1}");
  assert_near(fx_score(r, 0), 30, 1e-9);
  json_decref(r);
}

static void trapping_udf_fails_the_request_with_a_trap(void **st) {
  qb_code code;
  json_t *e = fx_search_error(*st, &penv, "{\"query\":{\"function_score\":{\"query\":{\"match_all\":{}},"
                                          "\"script_score\":{\"script\":\"trap\"}}}}", &code);
  assert_int_equal(code, QB_TRAP);
  const char *reason = json_string_value(fx_path(e, "error.reason"));
  assert_non_null(strstr(reason, "trap"));
  assert_non_null(strstr(reason, "unreachable executed"));
  json_decref(e);
}

static void unknown_wasm_udf_is_an_invalid_script(void **st) {
  qb_code code;
  json_t *e = fx_search_error(*st, &penv, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},"
                                          "\"script\":{\"source\":\"nope\",\"lang\":\"wasm\"}}}}", &code);
  assert_int_equal(code, QB_INVALID);
  assert_non_null(strstr(json_string_value(fx_path(e, "error.reason")), "unknown udf [nope]"));
  json_decref(e);
  e = fx_search_error(*st, &penv, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},"
                                  "\"script\":{\"source\":\"custom_score\",\"params\":{\"boost_factor\":\"x\"}}}}}", &code);
  assert_int_equal(code, QB_INVAL);
  json_decref(e);
}

static void scripts_are_freed_with_the_request(void **st) {
  int before = fake_frees;
  json_t *r = fx_search_env(*st, &penv, "{\"query\":{\"script\":{\"script\":\"keep_even\"}},"
                                        "\"script_fields\":{\"l\":{\"script\":\"label\"}}}");
  json_decref(r);
  assert_int_equal(fake_frees - before, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(function_score_script_score_multiplies_by_default),
      cmocka_unit_test(function_score_boost_mode_replace_uses_the_function),
      cmocka_unit_test(field_value_factor_applies_factor_then_modifier),
      cmocka_unit_test(function_score_functions_with_filters_and_score_modes),
      cmocka_unit_test(function_score_min_score_and_max_boost),
      cmocka_unit_test(script_score_query_replaces_the_score),
      cmocka_unit_test(script_query_filters_in_bool_filter),
      cmocka_unit_test(script_fields_compute_values_per_hit),
      cmocka_unit_test(metric_aggregations_take_a_script),
      cmocka_unit_test(expression_params_read_fields_context_and_score),
      cmocka_unit_test(provider_scores_with_bound_columns_params_and_context),
      cmocka_unit_test(provider_filters_transforms_and_aggregates),
      cmocka_unit_test(provider_unknown_source_falls_back_to_expressions),
      cmocka_unit_test(trapping_udf_fails_the_request_with_a_trap),
      cmocka_unit_test(unknown_wasm_udf_is_an_invalid_script),
      cmocka_unit_test(scripts_are_freed_with_the_request),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
