/* test_registry.c: the versioned registry on a real SQLite file in a temp dir: deploy, list,
** versions, get, rollback, delete, all persisted across a reopen; pinned handles across
** deploys; the cache sharing one loaded version. */
#include "udf_test_util.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
  char dir[64], path[96];
  qw_engine *e;
  qu_registry *r;
  uint8_t *v1, *v2;
  size_t v1_len, v2_len;
} fixture;

/* Two versions of the same UDF: constant results 1 and 2 (plus the param, to use it). */
static const char v1_wat[] =
    "(module (func (export \"answer\") (param f64) (result f64)"
    " (f64.add (local.get 0) (f64.const 1))))";
static const char v2_wat[] =
    "(module (func (export \"answer\") (param f64) (result f64)"
    " (f64.add (local.get 0) (f64.const 2))))";
static const char answer_manifest[] =
    "{\"name\": \"answer\", \"returns\": \"f64\", \"params\": [{\"name\": \"x\", \"type\": "
    "\"f64\", \"default\": 0}]}";

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  qb_err err = {0};
  strcpy(f->dir, "/tmp/qu_regXXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/udf.db", f->dir);
  f->e = engine_new();
  if (qu_registry_open(f->e, f->path, NULL, &f->r, &err)) fail_msg("open: %s", err.msg);
  f->v1 = wat(v1_wat, &f->v1_len);
  f->v2 = wat(v2_wat, &f->v2_len);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char cmd[128];
  qu_registry_close(f->r);
  qw_engine_free(f->e);
  free(f->v1);
  free(f->v2);
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void reopen(fixture *f) {
  qb_err err = {0};
  qu_registry_close(f->r);
  f->r = NULL;
  if (qu_registry_open(f->e, f->path, NULL, &f->r, &err)) fail_msg("reopen: %s", err.msg);
}

static uint32_t deploy(fixture *f, const uint8_t *wasm, size_t len) {
  qu_version_info info;
  qb_err err = {0};
  if (qu_registry_deploy(f->r, NULL, answer_manifest, strlen(answer_manifest), wasm, len, &info,
                         &err))
    fail_msg("deploy: %s", err.msg);
  assert_string_equal(info.name, "answer");
  assert_int_equal(info.current, 1);
  assert_int_equal(info.size_bytes, len);
  assert_int_equal(strlen(info.sha256), 64);
  return info.version;
}

typedef struct rows {
  int n;
  qu_version_info info[8];
} rows;

static int collect(void *ud, const qu_version_info *info) {
  rows *r = ud;
  if (r->n < 8) r->info[r->n++] = *info;
  return 0;
}

static void deploys_number_versions_and_survive_reopen(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  assert_int_equal(deploy(f, f->v1, f->v1_len), 1);
  assert_int_equal(deploy(f, f->v2, f->v2_len), 2);
  reopen(f);
  rows r = {0};
  assert_int_equal(qu_registry_versions(f->r, "answer", collect, &r, &err), QB_OK);
  assert_int_equal(r.n, 2);
  assert_int_equal(r.info[0].version, 1);
  assert_int_equal(r.info[0].current, 0);
  assert_int_equal(r.info[1].version, 2);
  assert_int_equal(r.info[1].current, 1);
  assert_int_equal(r.info[0].kind, QU_SCORE);
  assert_string_equal(r.info[0].export_name, "answer");
  assert_string_not_equal(r.info[0].sha256, r.info[1].sha256);
  assert_true(r.info[1].created_ms >= r.info[0].created_ms);
  rows l = {0};
  assert_int_equal(qu_registry_list(f->r, collect, &l, &err), QB_OK);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.info[0].version, 2);
  /* get: the stored manifest is the completed one, and the bytes are the deployed ones */
  qb_buf man, wasm;
  qu_version_info info;
  qb_buf_init(&man);
  qb_buf_init(&wasm);
  assert_int_equal(qu_registry_get(f->r, "answer", 1, &info, &man, &wasm, &err), QB_OK);
  assert_int_equal(info.version, 1);
  assert_int_equal(wasm.len, f->v1_len);
  assert_memory_equal(wasm.data, f->v1, f->v1_len);
  assert_non_null(strstr(man.data, "\"export\":\"answer\""));
  qb_buf_fini(&man);
  qb_buf_fini(&wasm);
  assert_int_equal(qu_registry_get(f->r, "answer", 7, &info, NULL, NULL, &err), QB_NOTFOUND);
  assert_string_equal(err.msg, "udf answer: no version v7");
  assert_int_equal(qu_registry_get(f->r, "nope", 0, &info, NULL, NULL, &err), QB_NOTFOUND);
  assert_string_equal(err.msg, "udf nope: no such udf");
}

/* issue 13 #9: storage is bounded: the newest versions_kept and the current one stay, a module
** over max_module_bytes is refused, and an idle loaded version is unloaded and reloads */
static void storage_is_bounded_by_versions_kept_and_module_size(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  qu_options o = {0};
  o.versions_kept = 3;
  o.max_module_bytes = f->v1_len + 8;
  o.idle_unload_ms = 1;
  qu_registry_close(f->r);
  if (qu_registry_open(f->e, f->path, &o, &f->r, &err)) fail_msg("open: %s", err.msg);
  for (int i = 0; i < 7; i++) deploy(f, i % 2 ? f->v2 : f->v1, i % 2 ? f->v2_len : f->v1_len);
  assert_int_equal(qu_registry_rollback(f->r, "answer", 5, &err), QB_OK);
  deploy(f, f->v1, f->v1_len); /* v8: kept 6, 7, 8; v5 was current until now, so it goes too */
  rows r = {0};
  assert_int_equal(qu_registry_versions(f->r, "answer", collect, &r, &err), QB_OK);
  assert_int_equal(r.n, 3);
  assert_int_equal(r.info[0].version, 6);
  assert_int_equal(r.info[2].version, 8);
  assert_int_equal(qu_registry_rollback(f->r, "answer", 2, &err), QB_NOTFOUND);
  assert_int_equal(qu_registry_rollback(f->r, "answer", 6, &err), QB_OK);
  deploy(f, f->v1, f->v1_len); /* v9; the current v6 is kept although it is not among the newest */
  rows r2 = {0};
  assert_int_equal(qu_registry_versions(f->r, "answer", collect, &r2, &err), QB_OK);
  assert_int_equal(r2.n, 3);
  assert_int_equal(r2.info[0].version, 7);
  /* too big a module */
  uint8_t *big = calloc(1, f->v1_len + 100);
  memcpy(big, f->v1, f->v1_len);
  qu_version_info info;
  assert_int_equal(qu_registry_deploy(f->r, NULL, answer_manifest, strlen(answer_manifest), big,
                                      f->v1_len + 100, &info, &err), QB_LIMIT);
  assert_non_null(strstr(err.msg, "larger than the limit"));
  free(big);
  /* idle unload: a version acquired, released, idle past 1 ms, is unloaded at the next sweep
  ** and loads again on demand with the same results */
  qu_udf *u, *again;
  assert_int_equal(qu_registry_acquire(f->r, "answer", 0, &u, &err), QB_OK);
  qu_udf_release(u);
  usleep(1100000); /* the sweep runs at most once a second */
  assert_int_equal(qu_registry_acquire(f->r, "answer", 0, &again, &err), QB_OK);
  assert_int_equal(qu_udf_version(again), 9);
  qu_udf_release(again);
}

static void rollback_makes_an_old_version_current_and_persists(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  qu_version_info info;
  deploy(f, f->v1, f->v1_len);
  deploy(f, f->v2, f->v2_len);
  assert_int_equal(qu_registry_rollback(f->r, "answer", 1, &err), QB_OK);
  reopen(f);
  assert_int_equal(qu_registry_get(f->r, "answer", 0, &info, NULL, NULL, &err), QB_OK);
  assert_int_equal(info.version, 1);
  assert_int_equal(info.current, 1);
  /* a new deploy goes past the highest version, not past the current one */
  assert_int_equal(deploy(f, f->v2, f->v2_len), 3);
  assert_int_equal(qu_registry_rollback(f->r, "answer", 9, &err), QB_NOTFOUND);
  assert_string_equal(err.msg, "udf answer: no version v9");
  assert_int_equal(qu_registry_rollback(f->r, "ghost", 1, &err), QB_NOTFOUND);
}

static void delete_removes_every_version_and_persists(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  qu_version_info info;
  deploy(f, f->v1, f->v1_len);
  deploy(f, f->v2, f->v2_len);
  assert_int_equal(qu_registry_delete(f->r, "answer", &err), QB_OK);
  reopen(f);
  assert_int_equal(qu_registry_get(f->r, "answer", 0, &info, NULL, NULL, &err), QB_NOTFOUND);
  rows l = {0};
  assert_int_equal(qu_registry_list(f->r, collect, &l, &err), QB_OK);
  assert_int_equal(l.n, 0);
  assert_int_equal(qu_registry_delete(f->r, "answer", &err), QB_NOTFOUND);
  /* the name can be deployed again, from v1 */
  assert_int_equal(deploy(f, f->v2, f->v2_len), 1);
}

static void failed_deploy_stores_nothing(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  const char *bad = "{\"name\": \"answer\", \"returns\": \"i32\"}";
  assert_int_equal(qu_registry_deploy(f->r, NULL, bad, strlen(bad), f->v1, f->v1_len, NULL, &err),
                   QB_INVALID);
  assert_string_equal(err.msg, "export answer: returns i32 in the manifest but f64 in the module");
  uint8_t junk[] = {0, 'a', 's', 'm', 9, 9, 9, 9};
  assert_int_equal(qu_registry_deploy(f->r, NULL, answer_manifest, strlen(answer_manifest), junk,
                                      sizeof junk, NULL, &err),
                   QB_MALFORMED);
  rows l = {0};
  assert_int_equal(qu_registry_list(f->r, collect, &l, &err), QB_OK);
  assert_int_equal(l.n, 0);
}

static qb_code deploy_wat(fixture *f, const char *text, qb_err *err) {
  size_t len;
  uint8_t *b = wat(text, &len);
  qb_code rc = qu_registry_deploy(f->r, "answer", NULL, 0, b, len, NULL, err);
  free(b);
  return rc;
}

static void deploy_instantiates_once_to_check_linking_start_and_abi(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  /* a WASI function imported with the wrong signature does not link */
  assert_int_equal(deploy_wat(f,
                              "(module (import \"wasi_snapshot_preview1\" \"random_get\""
                              " (func (param f64))) (func (export \"answer\") (result f64)"
                              " (f64.const 1)))", &err),
                   QB_UNLINKABLE);
  assert_non_null(strstr(err.msg, "UDF answer failed to instantiate: "));
  /* a module speaking another ABI is refused */
  assert_int_equal(deploy_wat(f,
                              "(module (func (export \"qd_abi_version\") (result i32)"
                              " (i32.const 2)) (func (export \"answer\") (result f64)"
                              " (f64.const 1)))", &err),
                   QB_INVALID);
  assert_string_equal(err.msg, "UDF answer speaks ABI 2 (qd_abi_version); this host speaks 1");
  /* a start function that traps */
  assert_int_equal(deploy_wat(f,
                              "(module (func $s unreachable) (start $s)"
                              " (func (export \"answer\") (result f64) (f64.const 1)))", &err),
                   QB_TRAP);
  /* _initialize runs before anything else */
  assert_int_equal(deploy_wat(f,
                              "(module (func (export \"_initialize\") unreachable)"
                              " (func (export \"answer\") (result f64) (f64.const 1)))", &err),
                   QB_TRAP);
  assert_string_equal(err.msg, "UDF answer trapped in _initialize: unreachable");
  /* a memory minimum over the cap (256 pages by default) */
  assert_int_equal(deploy_wat(f,
                              "(module (memory 300) (func (export \"answer\") (result f64)"
                              " (f64.const 1)))", &err),
                   QB_LIMIT);
  rows l = {0};
  assert_int_equal(qu_registry_list(f->r, collect, &l, &err), QB_OK);
  assert_int_equal(l.n, 0);
}

static void deploy_with_only_a_name_fills_the_manifest(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  qu_version_info info;
  qb_buf man;
  /* the export is named answer, so the name alone finds it */
  assert_int_equal(qu_registry_deploy(f->r, "answer", NULL, 0, f->v1, f->v1_len, &info, &err),
                   QB_OK);
  qb_buf_init(&man);
  assert_int_equal(qu_registry_get(f->r, "answer", 0, NULL, &man, NULL, &err), QB_OK);
  assert_string_equal(man.data,
                      "{\"name\":\"answer\",\"export\":\"answer\",\"kind\":\"score\","
                      "\"description\":\"\",\"params\":[{\"name\":\"p0\",\"type\":\"f64\"}],"
                      "\"returns\":\"f64\"}");
  qb_buf_fini(&man);
}

/* The result of U with x = 0, as JSON text (static buffer). */
static const char *run_once(qu_udf *u) {
  static char text[64];
  json_t *body = json_of("{\"args\": {\"x\": 0}}");
  qb_buf out;
  qb_err err = {0};
  qb_buf_init(&out);
  if (qu_udf_test(u, body, &out, &err)) fail_msg("test: %s", err.msg);
  snprintf(text, sizeof text, "%s", out.data);
  qb_buf_fini(&out);
  json_decref(body);
  return text;
}

static void acquire_shares_the_loaded_version_and_pins_it(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  qu_udf *a, *b, *c, *old;
  deploy(f, f->v1, f->v1_len);
  assert_int_equal(qu_registry_acquire(f->r, "answer", 0, &a, &err), QB_OK);
  assert_int_equal(qu_registry_acquire(f->r, "answer", 0, &b, &err), QB_OK);
  assert_ptr_equal(a, b); /* one loaded module per version */
  assert_int_equal(qu_udf_version(a), 1);
  assert_string_equal(qu_udf_label(a), "answer v1");
  deploy(f, f->v2, f->v2_len);
  /* the search that holds A still has v1; a new search gets v2 */
  assert_int_equal(qu_udf_version(a), 1);
  assert_int_equal(qu_registry_acquire(f->r, "answer", 0, &c, &err), QB_OK);
  assert_int_equal(qu_udf_version(c), 2);
  /* and each runs its own code */
  assert_string_equal(run_once(a), "1");
  assert_string_equal(run_once(c), "2");
  /* the coordinator may pin an explicit version */
  assert_int_equal(qu_registry_acquire(f->r, "answer", 1, &old, &err), QB_OK);
  assert_ptr_equal(old, a);
  qu_udf_release(old);
  qu_udf_release(b);
  qu_udf_release(a); /* v1 is freed here (ASan would see a leak otherwise) */
  assert_int_equal(qu_registry_acquire(f->r, "ghost", 0, &b, &err), QB_NOTFOUND);
  assert_string_equal(err.msg, "udf ghost: no such udf");
  /* a deleted udf keeps working for the search that holds it */
  assert_int_equal(qu_registry_delete(f->r, "answer", &err), QB_OK);
  assert_int_equal(qu_udf_version(c), 2);
  assert_string_equal(run_once(c), "2");
  assert_int_equal(qu_registry_acquire(f->r, "answer", 0, &b, &err), QB_NOTFOUND);
  qu_udf_release(c);
}

static void install_mirrors_a_given_version(void **state) {
  fixture *f = *state;
  qb_err err = {0};
  qu_version_info info;
  assert_int_equal(qu_registry_install(f->r, answer_manifest, strlen(answer_manifest), 5, f->v1,
                                       f->v1_len, 1, &err), QB_OK);
  assert_int_equal(qu_registry_install(f->r, answer_manifest, strlen(answer_manifest), 5, f->v1,
                                       f->v1_len, 1, &err), QB_OK);
  assert_int_equal(qu_registry_install(f->r, answer_manifest, strlen(answer_manifest), 5, f->v2,
                                       f->v2_len, 1, &err), QB_CONFLICT);
  assert_int_equal(qu_registry_get(f->r, "answer", 0, &info, NULL, NULL, &err), QB_OK);
  assert_int_equal(info.version, 5);
  assert_int_equal(deploy(f, f->v2, f->v2_len), 6);
}

typedef struct racer {
  fixture *f;
  int stop;
  int runs;
  char failure[300]; /* cmocka asserts only on the main thread: failures are reported here */
} racer;

/* Acquire the current version, run it, check it gives its own version's answer, release. */
static void *race(void *arg) {
  racer *rc = arg;
  while (!__atomic_load_n(&rc->stop, __ATOMIC_ACQUIRE)) {
    qu_udf *u;
    qb_err err = {0};
    if (qu_registry_acquire(rc->f->r, "answer", 0, &u, &err)) continue;
    char want[16];
    snprintf(want, sizeof want, "%u", qu_udf_version(u));
    const char *got = NULL;
    static __thread char text[64];
    json_t *body = json_of("{\"args\": {\"x\": 0}}");
    qb_buf out;
    qb_buf_init(&out);
    if (!qu_udf_test(u, body, &out, &err)) {
      snprintf(text, sizeof text, "%s", out.data);
      got = text;
    }
    qb_buf_fini(&out);
    json_decref(body);
    if (!got || strcmp(got, want))
      snprintf(rc->failure, sizeof rc->failure, "v%u answered %s", qu_udf_version(u),
               got ? got : err.msg);
    qu_udf_release(u);
    if (rc->failure[0]) break;
    rc->runs++;
  }
  return NULL;
}

static void concurrent_searches_each_see_one_whole_version_during_deploys(void **state) {
  fixture *f = *state;
  enum { V = 12 };
  uint8_t *w[V + 1];
  size_t wl[V + 1];
  for (int v = 1; v <= V; v++) {
    char text[256];
    snprintf(text, sizeof text,
             "(module (func (export \"answer\") (param f64) (result f64)"
             " (f64.add (local.get 0) (f64.const %d))))", v);
    w[v] = wat(text, &wl[v]);
  }
  deploy(f, w[1], wl[1]);
  racer rc[2] = {{f, 0, 0, ""}, {f, 0, 0, ""}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, race, &rc[i]), 0);
  qb_err err = {0};
  for (int v = 2; v <= V; v++) {
    assert_int_equal(deploy(f, w[v], wl[v]), (uint32_t)v);
    if (v % 4 == 0) assert_int_equal(qu_registry_rollback(f->r, "answer", (uint32_t)v - 1, &err), QB_OK);
  }
  for (int i = 0; i < 2; i++) __atomic_store_n(&rc[i].stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  assert_string_equal(rc[0].failure, "");
  assert_string_equal(rc[1].failure, "");
  assert_true(rc[0].runs + rc[1].runs > 0);
  for (int v = 1; v <= V; v++) free(w[v]);
}

static void a_file_that_is_not_a_registry_is_reported_not_overwritten(void **state) {
  fixture *f = *state;
  char path[128];
  qu_registry *r = (qu_registry *)1;
  qb_err err = {0};
  snprintf(path, sizeof path, "%s/junk.db", f->dir);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  for (int i = 0; i < 200; i++) fputs("this is not sqlite ", fp);
  fclose(fp);
  assert_int_equal(qu_registry_open(f->e, path, NULL, &r, &err), QB_CORRUPT);
  assert_null(r);
  assert_non_null(strstr(err.msg, "udf registry: "));
  snprintf(path, sizeof path, "%s/no/such/dir/udf.db", f->dir);
  assert_int_equal(qu_registry_open(f->e, path, NULL, &r, &err), QB_IO);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(deploys_number_versions_and_survive_reopen),
      T(rollback_makes_an_old_version_current_and_persists),
      T(storage_is_bounded_by_versions_kept_and_module_size),
      T(delete_removes_every_version_and_persists),
      T(failed_deploy_stores_nothing),
      T(deploy_with_only_a_name_fills_the_manifest),
      T(deploy_instantiates_once_to_check_linking_start_and_abi),
      T(acquire_shares_the_loaded_version_and_pins_it),
      T(install_mirrors_a_given_version),
      T(a_file_that_is_not_a_registry_is_reported_not_overwritten),
      T(concurrent_searches_each_see_one_whole_version_during_deploys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
