/* test_oom.c: every allocation of a manifest parse, a plan, a load and a first run fails in
** turn (qb_alloc_fail_after, SQLite's test_malloc.c style): each failing run returns QB_NOMEM,
** leaves nothing behind (ASan checks leaks at exit), and a later run succeeds. The same for a
** version on the native tier (the fake one, pinned native so nothing runs on another thread):
** the compiler with its cache, the load that compiles and stores, a verified and a native run. */
#include "udf_test_util.h"

#include "fake_native.h"

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

static void native_tier_survives_every_failed_allocation(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = wat(custom_score_wat, &len);
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  json_t *params = json_of("{\"boost_factor\": 2, \"recency_days\": 30, \"user_tier\": 1}");
  char dir[] = "/tmp/qu_oomXXXXXX", cmd[64];
  assert_non_null(mkdtemp(dir));
  qu_plan *p;
  qb_err err = {0};
  assert_int_equal(qu_plan_new(m, params, NULL, &p, &err), QB_OK);
  {
    qu_udf *u;
    assert_int_equal(qu_udf_load(e, m, 1, b, len, NULL, &u, &err), QB_OK);
    qu_udf_release(u);
  }
  int done = 0;
  for (uint64_t k = 1; !done; k++) {
    fake f = {0};
    qu_compiler *c = NULL;
    qu_udf *u = NULL;
    qu_exec *x = NULL;
    double score = 3, res = 0;
    qu_block in = {1, &score, 0, NULL};
    qu_out out = {&res, NULL, NULL, NULL};
    qu_compiler_options co = {.pin = QU_PIN_NATIVE, .verify_blocks = 1, .cache_dir = dir};
    size_t live = qb_alloc_live_bytes();
    qb_alloc_fail_after(k);
    qb_code rc = qu_compiler_new(fake_ops(&f), &co, &c, &err);
    qu_options o = {.compiler = c};
    if (!rc) rc = qu_udf_load(e, m, 1, b, len, &o, &u, &err);
    if (!rc) rc = qu_exec_new(u, p, &x, &err);
    if (!rc) rc = qu_exec_run(x, &in, &out, &err); /* verified */
    if (!rc) rc = qu_exec_run(x, &in, &out, &err); /* native, when the first one swapped */
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      assert_true(res == custom_score_c(3, 2, 30, 1));
      qu_stats s;
      qu_udf_stats(u, &s);
      done = s.calls[QU_TIER_NATIVE] == 1; /* a failed compile or cache write is no error */
    } else if (rc != QB_NOMEM) {
      fail_msg("allocation %llu: %s %s", (unsigned long long)k, qb_code_name(rc), err.msg);
    }
    qu_exec_free(x);
    qu_udf_release(u);
    qu_compiler_free(c);
    if (qb_alloc_live_bytes() != live)
      fail_msg("allocation %llu failing (%s): %zu bytes left behind", (unsigned long long)k,
               qb_code_name(rc), qb_alloc_live_bytes() - live);
    assert_true(k < 100000);
  }
  qu_plan_free(p);
  json_decref(params);
  qu_manifest_free(m);
  qw_engine_free(e);
  free(b);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  json_set_alloc_funcs(qb_sized_malloc, qb_sized_free); /* OOM runs reach inside jansson too */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(manifest_parse_survives_every_failed_allocation),
      cmocka_unit_test(plan_survives_every_failed_allocation),
      cmocka_unit_test(load_and_first_run_survive_every_failed_allocation),
      cmocka_unit_test(native_tier_survives_every_failed_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
