/* test_oom.c: every allocation of a manifest parse, a plan, a load and a first run fails in
** turn (qb_alloc_fail_after, SQLite's test_malloc.c style): each failing run returns QB_NOMEM,
** leaves nothing behind (ASan checks leaks at exit), and a later run succeeds. */
#include "udf_test_util.h"

static void manifest_parse_survives_every_failed_allocation(void **state) {
  size_t before = qb_alloc_live_bytes();
  int in_jansson = 0; /* runs whose failed allocation was jansson's (main installs the hook) */
  (void)state;
  for (uint64_t k = 1;; k++) {
    qu_manifest *m = NULL;
    qb_err err = {0};
    qb_alloc_fail_after(k);
    qb_code rc = qu_manifest_parse(custom_score_manifest, strlen(custom_score_manifest), &m, &err);
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      qu_manifest_free(m);
      assert_true(k > 1);
      break;
    }
    if (rc != QB_NOMEM)
      fail_msg("allocation %llu: %s: %s", (unsigned long long)k, qb_code_name(rc), err.msg);
    assert_null(m);
    assert_int_equal(qb_alloc_live_bytes(), before);
    if (!strcmp(err.msg, "manifest: out of memory parsing JSON")) in_jansson++;
  }
  assert_true(in_jansson > 0);
}

static void plan_survives_every_failed_allocation(void **state) {
  (void)state;
  qu_manifest *m = manifest_of(custom_score_manifest);
  json_t *params = json_of("{\"boost_factor\": 1.2, \"recency_days\": \"_source.days\"}");
  for (uint64_t k = 1;; k++) {
    qu_plan *p = NULL;
    qb_err err = {0};
    qb_alloc_fail_after(k);
    qb_code rc = qu_plan_new(m, params, NULL, &p, &err);
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      qu_plan_free(p);
      break;
    }
    assert_int_equal(rc, QB_NOMEM);
    assert_null(p);
  }
  json_decref(params);
  qu_manifest_free(m);
}

static void load_and_first_run_survive_every_failed_allocation(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = wat(custom_score_wat, &len);
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  json_t *params = json_of("{\"boost_factor\": 2, \"recency_days\": 30, \"user_tier\": 1}");
  qu_plan *p;
  qb_err err = {0};
  assert_int_equal(qu_plan_new(m, params, NULL, &p, &err), QB_OK);
  /* warm up once: the engine's type intern table grows on first use and stays */
  {
    qu_udf *u;
    assert_int_equal(qu_udf_load(e, m, 1, b, len, NULL, &u, &err), QB_OK);
    qu_udf_release(u);
  }
  int done = 0;
  for (uint64_t k = 1; !done; k++) {
    qu_udf *u = NULL;
    qu_exec *x = NULL;
    double score = 3, res = 0;
    qu_block in = {1, &score, 0, NULL};
    qu_out out = {&res, NULL, NULL, NULL};
    size_t live = qb_alloc_live_bytes();
    qb_alloc_fail_after(k);
    qb_code rc = qu_udf_load(e, m, 1, b, len, NULL, &u, &err);
    if (!rc) rc = qu_exec_new(u, p, &x, &err);
    if (!rc) rc = qu_exec_run(x, &in, &out, &err);
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      assert_true(res == custom_score_c(3, 2, 30, 1));
      done = 1;
    } else if (rc != QB_NOMEM) {
      fail_msg("allocation %llu: %s %s", (unsigned long long)k, qb_code_name(rc), err.msg);
    }
    qu_exec_free(x);
    qu_udf_release(u);
    if (qb_alloc_live_bytes() != live)
      fail_msg("allocation %llu failing (%s): %zu bytes left behind", (unsigned long long)k,
               qb_code_name(rc), qb_alloc_live_bytes() - live);
  }
  qu_plan_free(p);
  json_decref(params);
  qu_manifest_free(m);
  qw_engine_free(e);
  free(b);
}

int main(void) {
  json_set_alloc_funcs(qb_sized_malloc, qb_sized_free); /* OOM runs reach inside jansson too */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(manifest_parse_survives_every_failed_allocation),
      cmocka_unit_test(plan_survives_every_failed_allocation),
      cmocka_unit_test(load_and_first_run_survive_every_failed_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
