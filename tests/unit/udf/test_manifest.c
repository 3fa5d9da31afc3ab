/* test_manifest.c: manifest parsing and validation, completion from an export's signature,
** and the deploy-time checks against a module (signature, WASI-only imports, qd_alloc). */
#include "udf_test_util.h"

static void expect_parse_error(const char *json, const char *msg) {
  qu_manifest *m = (qu_manifest *)1;
  qb_err err = {0};
  assert_int_equal(qu_manifest_parse(json, strlen(json), &m, &err), QB_INVAL);
  assert_null(m);
  assert_string_equal(err.msg, msg);
}

static void manifest_example_from_the_design_parses(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(custom_score_manifest);
  assert_string_equal(qu_manifest_name(m), "custom_score");
  assert_string_equal(qu_manifest_export(m), "custom_score");
  assert_string_equal(qu_manifest_description(m), "recency and tier boosts");
  assert_int_equal(qu_manifest_kind(m), QU_SCORE);
  assert_int_equal(qu_manifest_returns(m), QU_F64);
  assert_int_equal(qu_manifest_nparams(m), 4);
  assert_string_equal(qu_manifest_param(m, 0)->name, "bm25_score");
  assert_string_equal(qu_manifest_param(m, 0)->dflt, "\"_score\"");
  assert_null(qu_manifest_param(m, 1)->dflt);
  assert_int_equal(qu_manifest_param(m, 2)->type, QU_I32);
  assert_string_equal(qu_manifest_param(m, 2)->missing, "365");
  assert_string_equal(qu_manifest_param(m, 3)->dflt, "3");
  assert_null(qu_manifest_param(m, 4));
  qb_buf b;
  qb_buf_init(&b);
  assert_int_equal(qu_manifest_json(m, &b), QB_OK);
  qu_manifest *again = manifest_of(b.data);
  assert_int_equal(qu_manifest_nparams(again), 4);
  assert_string_equal(qu_manifest_param(again, 3)->dflt, "3");
  qb_buf_fini(&b);
  qu_manifest_free(again);
  qu_manifest_free(m);
}

static void manifest_errors_name_the_field_and_the_rule(void **state) {
  (void)state;
  expect_parse_error("{\"name\": \"x\"", "manifest: invalid JSON at line 1 column 12: "
                                          "'}' expected near end of file");
  expect_parse_error("[1]", "manifest: expected a JSON object");
  expect_parse_error("{\"returns\": \"f64\"}", "manifest: name: missing");
  expect_parse_error("{\"name\": \"a b\", \"returns\": \"f64\"}",
                     "manifest: name: \"a b\" is not a valid udf name (1-64 of A-Z a-z 0-9 _ . -)");
  expect_parse_error("{\"name\": \"x\"}", "manifest: returns: missing");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"float\"}",
                     "manifest: returns: unknown type \"float\" (expected i32, i64, f32, f64 or "
                     "string)");
  expect_parse_error("{\"name\": \"x\", \"kind\": \"sort\", \"returns\": \"f64\"}",
                     "manifest: kind: unknown kind \"sort\" (expected score, filter, transform "
                     "or metric)");
  expect_parse_error("{\"name\": \"x\", \"kind\": \"filter\", \"returns\": \"f64\"}",
                     "manifest: returns: a filter returns i32 (non-zero keeps the document), "
                     "not f64");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"string\"}",
                     "manifest: returns: only a transform may return a string (kind is score)");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"f64\", \"params\": [{\"name\": \"a\", "
                     "\"type\": \"float\"}]}",
                     "manifest: params[0].type: unknown type \"float\" (expected i32, i64, f32, "
                     "f64 or string)");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"f64\", \"params\": [{\"name\": \"a\", "
                     "\"type\": \"f64\"}, {\"name\": \"a\", \"type\": \"i32\"}]}",
                     "manifest: params[1].name: duplicate param \"a\"");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"f64\", \"params\": [{\"name\": \"a\", "
                     "\"type\": \"i32\", \"default\": 1.5}]}",
                     "manifest: params[0].default: expected an integer (i32), got 1.5");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"f64\", \"params\": [{\"name\": \"a\", "
                     "\"type\": \"i32\", \"missing\": \"_score\"}]}",
                     "manifest: params[0].missing: must be a literal i32");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"f64\", \"parms\": []}",
                     "manifest: unknown field \"parms\" (expected name, export, kind, "
                     "description, params, returns)");
  expect_parse_error("{\"name\": \"x\", \"returns\": \"f64\", \"params\": [{\"type\": \"f64\"}]}",
                     "manifest: params[0].name: expected a string of 1-64 characters");
}

/* The one name rule (qu_name_valid), asked by manifests, the registry and the search adapter. */
static void name_rule_takes_1_to_64_of_the_safe_characters(void **state) {
  char name[80];
  (void)state;
  assert_true(qu_name_valid("custom_score"));
  assert_true(qu_name_valid("A-z.0_9"));
  memset(name, 'a', 64);
  name[64] = 0;
  assert_true(qu_name_valid(name));
  name[64] = 'a';
  name[65] = 0;
  assert_false(qu_name_valid(name)); /* 65 bytes */
  assert_false(qu_name_valid(""));
  assert_false(qu_name_valid(NULL));
  assert_false(qu_name_valid("a b"));
  assert_false(qu_name_valid("a/b"));
  assert_false(qu_name_valid("caf\xc3\xa9"));
}

static void export_defaults_to_the_name_and_kind_to_score(void **state) {
  (void)state;
  qu_manifest *m = manifest_of("{\"name\": \"f\", \"returns\": \"f32\"}");
  assert_string_equal(qu_manifest_export(m), "f");
  assert_int_equal(qu_manifest_kind(m), QU_SCORE);
  assert_int_equal(qu_manifest_nparams(m), 0);
  qu_manifest_free(m);
}

static void check(const char *manifest, const char *module_wat, qb_code want, const char *msg) {
  qw_engine *e = engine_new();
  qw_module *mod = module_of(e, module_wat);
  qu_manifest *m = manifest_of(manifest);
  qb_err err = {0};
  assert_int_equal(qu_manifest_check(m, mod, &err), want);
  if (msg) assert_string_equal(err.msg, msg);
  qu_manifest_free(m);
  qw_module_free(mod);
  qw_engine_free(e);
}

static void matching_signature_passes_the_check(void **state) {
  (void)state;
  check(custom_score_manifest, custom_score_wat, QB_OK, NULL);
}

static void signature_mismatch_is_rejected(void **state) {
  (void)state;
  check("{\"name\": \"custom_score\", \"returns\": \"f64\", \"params\": ["
        "{\"name\": \"a\", \"type\": \"f64\"}, {\"name\": \"b\", \"type\": \"f64\"},"
        "{\"name\": \"recency_days\", \"type\": \"f64\"}, {\"name\": \"d\", \"type\": \"i32\"}]}",
        custom_score_wat, QB_INVALID,
        "export custom_score: param 2 (recency_days) is f64 in the manifest but i32 in the "
        "module");
  check("{\"name\": \"custom_score\", \"returns\": \"f64\", \"params\": ["
        "{\"name\": \"a\", \"type\": \"f64\"}]}",
        custom_score_wat, QB_INVALID,
        "export custom_score: the manifest has 1 wasm params (a string counts two), the module 4");
  check("{\"name\": \"custom_score\", \"returns\": \"i32\", \"params\": ["
        "{\"name\": \"a\", \"type\": \"f64\"}, {\"name\": \"b\", \"type\": \"f64\"},"
        "{\"name\": \"c\", \"type\": \"i32\"}, {\"name\": \"d\", \"type\": \"i32\"}]}",
        custom_score_wat, QB_INVALID,
        "export custom_score: returns i32 in the manifest but f64 in the module");
  check("{\"name\": \"nope\", \"returns\": \"f64\"}", custom_score_wat, QB_INVALID,
        "export nope: not found in the module (its functions: custom_score)");
  check("{\"name\": \"mem\", \"returns\": \"f64\"}", "(module (memory (export \"mem\") 1))",
        QB_INVALID, "export mem: not a function");
}

static void string_param_is_two_i32_and_needs_qd_alloc(void **state) {
  (void)state;
  const char *man = "{\"name\": \"len\", \"returns\": \"i32\", \"params\": ["
                    "{\"name\": \"s\", \"type\": \"string\"}]}";
  check(man, "(module (func (export \"len\") (param i32 i32) (result i32) (local.get 1)))",
        QB_INVALID,
        "export qd_alloc: missing (a udf with string params must export qd_alloc(len) -> ptr, "
        "as the SDKs do)");
  check(man, "(module " QD_ALLOC_WAT
             " (func (export \"len\") (param i32 i32) (result i32) (local.get 1)))",
        QB_OK, NULL);
  check(man, "(module " QD_ALLOC_WAT
             " (func (export \"len\") (param i32) (result i32) (local.get 0)))",
        QB_INVALID,
        "export len: the manifest has 2 wasm params (a string counts two), the module 1");
}

static void only_wasi_function_imports_are_allowed(void **state) {
  (void)state;
  const char *man = "{\"name\": \"f\", \"returns\": \"i32\"}";
  check(man,
        "(module (import \"env\" \"now\" (func (result i64)))"
        " (func (export \"f\") (result i32) (i32.const 1)))",
        QB_INVALID, "import env.now: a udf may import only wasi_snapshot_preview1 functions");
  check(man,
        "(module (import \"wasi_snapshot_preview1\" \"memory\" (memory 1))"
        " (func (export \"f\") (result i32) (i32.const 1)))",
        QB_INVALID,
        "import wasi_snapshot_preview1.memory: a udf may import only wasi_snapshot_preview1 "
        "functions");
  check(man,
        "(module (import \"wasi_snapshot_preview1\" \"fd_write\""
        " (func (param i32 i32 i32 i32) (result i32)))"
        " (func (export \"f\") (result i32) (i32.const 1)))",
        QB_OK, NULL);
}

static void batch_export_must_have_the_sdk_signature(void **state) {
  (void)state;
  check("{\"name\": \"f\", \"returns\": \"i32\", \"params\": [{\"name\": \"x\", \"type\": "
        "\"i32\"}]}",
        "(module " QD_ALLOC_WAT " (func (export \"f\") (param i32) (result i32) (local.get 0))"
        " (func (export \"f__batch\") (param i32 i32) ))",
        QB_INVALID, "export f__batch: the batch form must be (i32 n, i32 args, i32 out) -> ()");
}

static void completion_fills_params_and_returns_from_the_signature(void **state) {
  (void)state;
  qw_engine *e = engine_new();
  qw_module *mod = module_of(e, custom_score_wat);
  qu_manifest *m = NULL;
  qb_err err = {0};
  assert_int_equal(qu_manifest_complete(NULL, 0, "custom_score", mod, &m, &err), QB_OK);
  assert_int_equal(qu_manifest_kind(m), QU_SCORE);
  assert_int_equal(qu_manifest_returns(m), QU_F64);
  assert_int_equal(qu_manifest_nparams(m), 4);
  assert_string_equal(qu_manifest_param(m, 0)->name, "p0");
  assert_int_equal(qu_manifest_param(m, 0)->type, QU_F64);
  assert_string_equal(qu_manifest_param(m, 3)->name, "p3");
  assert_int_equal(qu_manifest_param(m, 3)->type, QU_I32);
  qu_manifest_free(m);
  /* what the user names wins: names without types get the signature's types */
  const char *given = "{\"name\": \"x\", \"export\": \"custom_score\", \"kind\": \"metric\","
                      " \"params\": [{\"name\": \"bm25\"}, {\"name\": \"boost\", \"default\": 2},"
                      " {\"name\": \"days\"}, {\"name\": \"tier\"}]}";
  assert_int_equal(qu_manifest_complete(given, strlen(given), NULL, mod, &m, &err), QB_OK);
  assert_string_equal(qu_manifest_name(m), "x");
  assert_int_equal(qu_manifest_kind(m), QU_METRIC);
  assert_string_equal(qu_manifest_param(m, 1)->name, "boost");
  assert_int_equal(qu_manifest_param(m, 1)->type, QU_F64);
  assert_string_equal(qu_manifest_param(m, 1)->dflt, "2");
  assert_int_equal(qu_manifest_param(m, 2)->type, QU_I32);
  qu_manifest_free(m);
  /* an explicit type that contradicts the module is still an error */
  given = "{\"params\": [{\"name\": \"a\", \"type\": \"i64\"}]}";
  assert_int_equal(qu_manifest_complete(given, strlen(given), "custom_score", mod, &m, &err),
                   QB_INVALID);
  assert_null(m);
  assert_string_equal(err.msg,
                      "export custom_score: param 0 (a) is i64 in the manifest but f64 in the "
                      "module");
  /* a missing export is what is reported, not the manifest fields it would have filled */
  given = "{\"name\": \"x\", \"export\": \"custom_scor\"}";
  assert_int_equal(qu_manifest_complete(given, strlen(given), NULL, mod, &m, &err), QB_INVALID);
  assert_null(m);
  assert_string_equal(err.msg, "export custom_scor: not found in the module (its functions: "
                               "custom_score)");
  qw_module_free(mod);
  qw_engine_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(manifest_example_from_the_design_parses),
      cmocka_unit_test(manifest_errors_name_the_field_and_the_rule),
      cmocka_unit_test(name_rule_takes_1_to_64_of_the_safe_characters),
      cmocka_unit_test(export_defaults_to_the_name_and_kind_to_score),
      cmocka_unit_test(matching_signature_passes_the_check),
      cmocka_unit_test(signature_mismatch_is_rejected),
      cmocka_unit_test(string_param_is_two_i32_and_needs_qd_alloc),
      cmocka_unit_test(only_wasi_function_imports_are_allowed),
      cmocka_unit_test(batch_export_must_have_the_sdk_signature),
      cmocka_unit_test(completion_fills_params_and_returns_from_the_signature),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
