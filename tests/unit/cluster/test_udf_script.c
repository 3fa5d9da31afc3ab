/* test_udf_script.c: the adapter between the query layer's scripts and deployed UDFs, without
** HTTP: a UDF named in script.source scores documents; the first resolve pins the version for
** the rest of the request even when a deploy lands in between; unknown names fall through to
** expressions (or fail with lang "wasm"); a UDF of the wrong kind is refused by name. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

#define DBL_LEN 47 /* bytes of the module below */

/* (module (func (export "dbl") (param f64) (result f64) local.get 0 f64.const K f64.mul)) */
static void dbl_module(uint8_t out[DBL_LEN], double k) {
  static const uint8_t head[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
                                 0x01, 0x06, 0x01, 0x60, 0x01, 0x7c, 0x01, 0x7c,
                                 0x03, 0x02, 0x01, 0x00,
                                 0x07, 0x07, 0x01, 0x03, 'd',  'b',  'l',  0x00, 0x00,
                                 0x0a, 0x10, 0x01, 0x0e, 0x00, 0x20, 0x00, 0x44};
  memcpy(out, head, sizeof head);
  memcpy(out + sizeof head, &k, 8); /* little-endian hosts (x86_64, aarch64) */
  out[sizeof head + 8] = 0xa2;      /* f64.mul */
  out[sizeof head + 9] = 0x0b;      /* end */
}

static const char *manifest = "{\"name\":\"dbl\",\"kind\":\"score\",\"params\":[{\"name\":\"s\","
                              "\"type\":\"f64\",\"default\":\"_score\"}],\"returns\":\"f64\"}";

typedef struct fixture {
  char dir[64];
  qw_engine *eng;
  qu_registry *reg;
  qi_index *ix;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/qd-udfscript-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char path[128];
  qb_err err;
  assert_int_equal(qw_engine_new(NULL, &f->eng, &err), QB_OK);
  snprintf(path, sizeof path, "%s/registry.db", f->dir);
  assert_int_equal(qu_registry_open(f->eng, path, NULL, &f->reg, &err), QB_OK);
  snprintf(path, sizeof path, "%s/index", f->dir);
  assert_int_equal(qi_index_create(path, "{\"mappings\":{\"properties\":{\"t\":{\"type\":\"text\"}}}}",
                                   NULL, &f->ix, &err), QB_OK);
  const char *docs[] = {"{\"t\":\"red laptop\"}", "{\"t\":\"laptop laptop bag\"}", "{\"t\":\"x\"}"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(qi_index_put(f->ix, NULL, docs[i], strlen(docs[i]), NULL, &err), QB_OK);
  assert_int_equal(qi_index_refresh(f->ix, &err), QB_OK);
  uint8_t wasm[64];
  dbl_module(wasm, 2.0);
  assert_int_equal(qu_registry_deploy(f->reg, "dbl", manifest, strlen(manifest), wasm, DBL_LEN,
                                      NULL, &err), QB_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  qi_index_close(f->ix);
  qu_registry_close(f->reg);
  qw_engine_free(f->eng);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* Run BODY on the index through a fresh provider (one request). */
static qb_code search(fixture *f, const char *body, json_t **out, qb_err *err) {
  qc_udf_provider p;
  qc_udf_provider_init(&p, f->reg, NULL);
  qq_env env = {.scripts = &p.base};
  qi_snapshot *snap = qi_index_snapshot(f->ix);
  const qi_snapshot *const snaps[1] = {snap};
  qb_code rc = qq_search(&env, "t", snaps, 1, body, strlen(body), out, err);
  qi_snapshot_release(snap);
  qc_udf_provider_fini(&p);
  return rc;
}

static double score_of(json_t *res, const char *id) {
  size_t i;
  json_t *h;
  json_array_foreach(json_object_get(json_object_get(res, "hits"), "hits"), i, h) {
    if (!strcmp(json_string_value(json_object_get(h, "_id")), id))
      return json_number_value(json_object_get(h, "_score"));
  }
  fail_msg("no hit %s", id);
  return 0;
}

#define MATCH "{\"match\":{\"t\":\"laptop\"}}"
#define FSCORE(src, lang)                                                                      \
  "{\"query\":{\"function_score\":{\"query\":" MATCH ",\"script_score\":{\"script\":{"       \
  "\"source\":\"" src "\"" lang "}},\"boost_mode\":\"replace\"}}}"

static void udf_named_in_source_scores_documents(void **state) {
  fixture *f = *state;
  json_t *plain, *udf;
  qb_err err;
  assert_int_equal(search(f, "{\"query\":" MATCH "}", &plain, &err), QB_OK);
  assert_int_equal(search(f, FSCORE("dbl", ""), &udf, &err), QB_OK);
  size_t i;
  json_t *h;
  json_array_foreach(json_object_get(json_object_get(plain, "hits"), "hits"), i, h) {
    const char *id = json_string_value(json_object_get(h, "_id"));
    double want = 2 * json_number_value(json_object_get(h, "_score"));
    if (score_of(udf, id) != want) fail_msg("doc %s: got %.17g, want %.17g", id, score_of(udf, id), want);
  }
  json_decref(plain);
  json_decref(udf);
}

static void unknown_names_fall_through_to_expressions(void **state) {
  fixture *f = *state;
  json_t *res;
  qb_err err;
  assert_int_equal(search(f, FSCORE("_score * 3", ""), &res, &err), QB_OK);
  json_decref(res);
  assert_int_not_equal(search(f, FSCORE("nosuchudf", ",\"lang\":\"wasm\""), &res, &err), QB_OK);
  assert_non_null(strstr(err.msg, "nosuchudf"));
}

static void first_resolve_pins_the_version_for_the_request(void **state) {
  fixture *f = *state;
  qc_udf_provider p;
  qc_udf_provider_init(&p, f->reg, NULL);
  qq_script *a = NULL, *b = NULL;
  qb_err err;
  assert_int_equal(p.base.resolve(&p.base, "dbl", NULL, QQ_SCRIPT_SCORE, NULL, NULL, &a, &err),
                   QB_OK);
  uint8_t wasm[64];
  dbl_module(wasm, 5.0);
  qu_version_info info;
  assert_int_equal(qu_registry_deploy(f->reg, "dbl", manifest, strlen(manifest), wasm, DBL_LEN,
                                      &info, &err), QB_OK);
  assert_int_equal(info.version, 2);
  assert_int_equal(p.base.resolve(&p.base, "dbl", NULL, QQ_SCRIPT_SCORE, NULL, NULL, &b, &err),
                   QB_OK);
  assert_string_equal(a->name, "dbl v1");
  assert_string_equal(b->name, "dbl v1");
  a->vt->free(a);
  b->vt->free(b);
  qc_udf_provider_fini(&p);
  /* a new request sees v2 */
  qc_udf_provider_init(&p, f->reg, NULL);
  assert_int_equal(p.base.resolve(&p.base, "dbl", NULL, QQ_SCRIPT_SCORE, NULL, NULL, &a, &err),
                   QB_OK);
  assert_string_equal(a->name, "dbl v2");
  a->vt->free(a);
  qc_udf_provider_fini(&p);
}

static void a_score_udf_is_refused_as_a_filter(void **state) {
  fixture *f = *state;
  qc_udf_provider p;
  qc_udf_provider_init(&p, f->reg, NULL);
  qq_script *a = NULL;
  qb_err err;
  assert_int_equal(p.base.resolve(&p.base, "dbl", NULL, QQ_SCRIPT_FILTER, NULL, NULL, &a, &err),
                   QB_INVALID);
  assert_null(a);
  assert_non_null(strstr(err.msg, "dbl v"));
  assert_non_null(strstr(err.msg, "filter"));
  qc_udf_provider_fini(&p);
}

static void bad_params_name_the_udf(void **state) {
  fixture *f = *state;
  json_t *res;
  qb_err err;
  const char *body = "{\"query\":{\"function_score\":{\"query\":" MATCH ",\"script_score\":{"
                     "\"script\":{\"source\":\"dbl\",\"params\":{\"nope\":1}}}}}}";
  assert_int_equal(search(f, body, &res, &err), QB_INVAL);
  assert_non_null(strstr(err.msg, "dbl"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(udf_named_in_source_scores_documents, setup, teardown),
      cmocka_unit_test_setup_teardown(unknown_names_fall_through_to_expressions, setup, teardown),
      cmocka_unit_test_setup_teardown(first_resolve_pins_the_version_for_the_request, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_score_udf_is_refused_as_a_filter, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_params_name_the_udf, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
