/* test_bind.c: binding a manifest to a request's params and context: literals, fields,
** _score, _context paths, {"field", "missing"}, manifest defaults and missing values, and the
** errors that name the UDF and the param. No WebAssembly runs here. */
#include "udf_test_util.h"

static qu_binding bound(const qu_plan *p, uint32_t i) {
  qu_binding b;
  qu_plan_binding(p, i, &b);
  return b;
}

static qu_plan *plan_of(qu_manifest *m, const char *params, const char *context) {
  json_t *p = params ? json_of(params) : NULL, *c = context ? json_of(context) : NULL;
  qu_plan *plan = NULL;
  qb_err err = {0};
  if (qu_plan_new(m, p, c, &plan, &err)) fail_msg("plan: %s", err.msg);
  json_decref(p);
  json_decref(c);
  return plan;
}

static void expect_bind_error(qu_manifest *m, const char *params, const char *context,
                              const char *msg) {
  json_t *p = params ? json_of(params) : NULL, *c = context ? json_of(context) : NULL;
  qu_plan *plan = (qu_plan *)1;
  qb_err err = {0};
  assert_int_equal(qu_plan_new(m, p, c, &plan, &err), QB_INVAL);
  assert_null(plan);
  assert_string_equal(err.msg, msg);
  json_decref(p);
  json_decref(c);
}

static void design_example_binds_literal_field_context_and_defaults(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_plan *p = plan_of(m,
                       "{\"boost_factor\": 1.2, \"recency_days\": \"_source.days_since_created\","
                       " \"user_tier\": \"_context.user.tier\"}",
                       "{\"user\": {\"tier\": 1}}");
  /* bm25_score: manifest default "_score" */
  assert_int_equal(bound(p, 0).source, QU_SRC_SCORE);
  assert_true(qu_plan_uses_score(p));
  assert_int_equal(bound(p, 1).source, QU_SRC_CONST);
  assert_true(bound(p, 1).f64 == 1.2);
  /* recency_days: one I64 column with the manifest's missing value */
  assert_int_equal(qu_plan_ncols(p), 1);
  const qu_colspec *c = qu_plan_col(p, 0);
  assert_string_equal(c->field, "days_since_created");
  assert_int_equal(c->type, QU_COL_I64);
  assert_int_equal(c->has_missing, 1);
  assert_int_equal(c->missing_i64, 365);
  assert_int_equal(c->param, 2);
  assert_int_equal(bound(p, 2).source, QU_SRC_FIELD);
  /* user_tier: resolved from the context now */
  assert_int_equal(bound(p, 3).source, QU_SRC_CONST);
  assert_int_equal(bound(p, 3).i64, 1);
  assert_null(qu_plan_col(p, 1));
  qu_plan_free(p);
  qu_manifest_free(m);
}

static void all_field_reference_spellings_give_a_column(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(
      "{\"name\": \"f\", \"returns\": \"f64\", \"params\": [{\"name\": \"a\", \"type\": \"f32\"},"
      " {\"name\": \"b\", \"type\": \"i64\"}, {\"name\": \"c\", \"type\": \"string\"},"
      " {\"name\": \"d\", \"type\": \"f64\", \"missing\": 7}]}");
  qu_plan *p = plan_of(m,
                       "{\"a\": \"doc['price']\", \"b\": \"doc[\\\"stock\\\"]\","
                       " \"c\": {\"field\": \"brand\", \"missing\": \"none\"},"
                       " \"d\": {\"field\": \"rating\", \"missing\": 2.5}}",
                       NULL);
  assert_int_equal(qu_plan_ncols(p), 4);
  assert_string_equal(qu_plan_col(p, 0)->field, "price");
  assert_int_equal(qu_plan_col(p, 0)->type, QU_COL_F64);
  assert_int_equal(qu_plan_col(p, 0)->has_missing, 0);
  assert_string_equal(qu_plan_col(p, 1)->field, "stock");
  assert_int_equal(qu_plan_col(p, 1)->type, QU_COL_I64);
  assert_string_equal(qu_plan_col(p, 2)->field, "brand");
  assert_int_equal(qu_plan_col(p, 2)->type, QU_COL_STR);
  assert_int_equal(qu_plan_col(p, 2)->has_missing, 1);
  assert_int_equal(qu_plan_col(p, 2)->missing_str.len, 4);
  assert_memory_equal(qu_plan_col(p, 2)->missing_str.ptr, "none", 4);
  /* the binding's missing wins over the manifest's */
  assert_true(qu_plan_col(p, 3)->missing_f64 == 2.5);
  assert_false(qu_plan_uses_score(p));
  qu_plan_free(p);
  qu_manifest_free(m);
}

static void context_miss_falls_back_to_missing_then_default_then_fails(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(
      "{\"name\": \"f\", \"returns\": \"f64\", \"params\": ["
      " {\"name\": \"a\", \"type\": \"i32\", \"missing\": 4},"
      " {\"name\": \"b\", \"type\": \"i32\", \"default\": 9},"
      " {\"name\": \"c\", \"type\": \"i32\"}]}");
  qu_plan *p = plan_of(m,
                       "{\"a\": \"_context.x\", \"b\": \"_context.user.nope\", \"c\": "
                       "\"_context.user.age\"}",
                       "{\"user\": {\"age\": 41}}");
  assert_int_equal(bound(p, 0).i64, 4);
  assert_int_equal(bound(p, 1).i64, 9);
  assert_int_equal(bound(p, 2).i64, 41);
  qu_plan_free(p);
  expect_bind_error(m, "{\"a\": 1, \"b\": 2, \"c\": \"_context.user.age\"}", NULL,
                    "udf f: param c: _context.user.age is not in the request context and the "
                    "param has no default");
  qu_manifest_free(m);
}

static void missing_required_param_names_the_udf_and_the_param(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(custom_score_manifest);
  expect_bind_error(m, "{}", NULL,
                    "udf custom_score: param boost_factor: no value (not in params and no "
                    "default)");
  expect_bind_error(m, NULL, NULL,
                    "udf custom_score: param boost_factor: no value (not in params and no "
                    "default)");
  qu_manifest_free(m);
}

static void bad_params_are_clear_errors(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(custom_score_manifest);
  expect_bind_error(m, "{\"boost_factor\": 1, \"bost\": 2}", NULL,
                    "udf custom_score: params: unknown param \"bost\"");
  expect_bind_error(m, "{\"boost_factor\": \"high\"}", NULL,
                    "udf custom_score: param boost_factor: expected a number (f64)");
  expect_bind_error(m, "{\"boost_factor\": 1, \"recency_days\": 3, \"user_tier\": 1.5}", NULL,
                    "udf custom_score: param user_tier: expected an integer (i32), got 1.5");
  expect_bind_error(m, "{\"boost_factor\": 1, \"recency_days\": 3, \"user_tier\": 5000000000}", NULL,
                    "udf custom_score: param user_tier: 5000000000 does not fit in i32");
  expect_bind_error(m, "{\"boost_factor\": 1, \"recency_days\": 3, \"user_tier\": \"doc[price]\"}", NULL,
                    "udf custom_score: param user_tier: malformed field reference (expected "
                    "doc['field']): doc[price]");
  expect_bind_error(m, "{\"boost_factor\": {\"fld\": \"x\"}}", NULL,
                    "udf custom_score: param boost_factor: unknown key in a field binding "
                    "(expected field, missing): fld");
  expect_bind_error(m, "{\"boost_factor\": {\"field\": \"x\", \"missing\": \"a\"}}", NULL,
                    "udf custom_score: param boost_factor: missing: expected a number (f64)");
  expect_bind_error(m, "{\"boost_factor\": null}", NULL,
                    "udf custom_score: param boost_factor: null is not a value");
  qu_manifest_free(m);
}

static void a_string_param_cannot_take_the_score(void **state) {
  (void)state;
  qu_manifest *m = manifest_of("{\"name\": \"s\", \"kind\": \"transform\", \"returns\": "
                               "\"string\", \"params\": [{\"name\": \"t\", \"type\": \"string\"}]}");
  expect_bind_error(m, "{\"t\": \"_score\"}", NULL,
                    "udf s: param t: _score is a number, the param is a string");
  qu_plan *p = plan_of(m, "{\"t\": \"plain text\"}", NULL);
  assert_int_equal(bound(p, 0).source, QU_SRC_CONST);
  assert_int_equal(bound(p, 0).str.len, 10);
  assert_memory_equal(bound(p, 0).str.ptr, "plain text", 10);
  qu_plan_free(p);
  qu_manifest_free(m);
}

static void booleans_bind_as_zero_or_one(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_plan *p = plan_of(m, "{\"boost_factor\": true, \"recency_days\": 3, \"user_tier\": false}", NULL);
  assert_true(bound(p, 1).f64 == 1.0);
  assert_int_equal(bound(p, 3).i64, 0);
  qu_plan_free(p);
  qu_manifest_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(design_example_binds_literal_field_context_and_defaults),
      cmocka_unit_test(all_field_reference_spellings_give_a_column),
      cmocka_unit_test(context_miss_falls_back_to_missing_then_default_then_fails),
      cmocka_unit_test(missing_required_param_names_the_udf_and_the_param),
      cmocka_unit_test(bad_params_are_clear_errors),
      cmocka_unit_test(booleans_bind_as_zero_or_one),
      cmocka_unit_test(a_string_param_cannot_take_the_score),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
