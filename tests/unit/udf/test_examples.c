/* test_examples.c: the example UDFs of examples/udfs (C, Rust, AssemblyScript, WAT, built by
** the build into $QD_BUILD_DIR/examples/udfs, listed in examples.txt) deployed through the
** registry with their own manifests and run through the executor, results checked against
** what docs/udf-authoring.md says each computes. Skips when the examples were not built. */
#include "udf_test_util.h"

#include <math.h>

typedef struct ex {
  char name[64], lang[16], file[128];
} ex;

static char dir[512];

static int list(ex *out, int max) {
  const char *b = getenv("QD_BUILD_DIR");
  char path[600], line[256];
  int n = 0;
  FILE *f;
  if (!b) return 0;
  snprintf(dir, sizeof dir, "%s/examples/udfs", b);
  snprintf(path, sizeof path, "%s/examples.txt", dir);
  if (!(f = fopen(path, "r"))) return 0;
  while (n < max && fgets(line, sizeof line, f))
    if (sscanf(line, "%63s %15s %127s", out[n].name, out[n].lang, out[n].file) == 3) n++;
  fclose(f);
  return n;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *p;
  long n;
  if (!f) fail_msg("cannot read %s", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc((size_t)n + 1);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  p[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return p;
}

typedef struct env {
  char dbdir[64];
  qw_engine *e;
  qu_registry *r;
} env;

/* Deploy example X (its manifest next to it) as a new version; returns the handle. */
static qu_udf *deploy_example(env *v, const ex *x, const qu_options *opts) {
  char path[700];
  size_t wlen, mlen;
  qb_err err = {0};
  qu_udf *u;
  if (!v->r) {
    char db[96];
    strcpy(v->dbdir, "/tmp/qu_exXXXXXX");
    assert_non_null(mkdtemp(v->dbdir));
    snprintf(db, sizeof db, "%s/udf.db", v->dbdir);
    v->e = engine_new();
    if (qu_registry_open(v->e, db, opts, &v->r, &err)) fail_msg("open: %s", err.msg);
  }
  snprintf(path, sizeof path, "%s/%s", dir, x->file);
  char *wasm = slurp(path, &wlen);
  snprintf(path, sizeof path, "%s/%s.json", dir, x->name);
  char *man = slurp(path, &mlen);
  if (qu_registry_deploy(v->r, NULL, man, mlen, (uint8_t *)wasm, wlen, NULL, &err))
    fail_msg("deploy %s (%s): %s", x->name, x->lang, err.msg);
  if (qu_registry_acquire(v->r, x->name, 0, &u, &err)) fail_msg("acquire: %s", err.msg);
  free(wasm);
  free(man);
  return u;
}

static void env_fini(env *v) {
  char cmd[128];
  if (!v->r) return;
  qu_registry_close(v->r);
  qw_engine_free(v->e);
  snprintf(cmd, sizeof cmd, "rm -rf %s", v->dbdir);
  assert_int_equal(system(cmd), 0);
}

static qu_exec *exec_for(qu_udf *u, const char *params, qu_plan **plan) {
  json_t *p = params ? json_of(params) : NULL;
  qu_exec *x;
  qb_err err = {0};
  if (qu_plan_new(qu_udf_manifest(u), p, NULL, plan, &err)) fail_msg("plan: %s", err.msg);
  if (qu_exec_new(u, *plan, &x, &err)) fail_msg("exec: %s", err.msg);
  json_decref(p);
  return x;
}

static double custom_score_doc(double bm25, double boost, int32_t days, int32_t tier) {
  double d = days < 0 ? 0.0 : (double)days;
  double t = tier == 1 ? 1.5 : tier == 2 ? 1.2 : tier == 3 ? 1.0 : 0.8;
  return bm25 * boost * (1.0 + 1.0 / (1.0 + d / 30.0)) * t;
}

static void check_custom_score(qu_udf *u, const ex *x) {
  qu_plan *p;
  qu_exec *e = exec_for(u, "{\"boost_factor\": 1.7, \"recency_days\": \"_source.days\","
                           " \"user_tier\": \"_source.tier\"}", &p);
  enum { N = 1000 };
  double score[N], res[N];
  int64_t days[N], tier[N];
  uint8_t present[N];
  qb_err err = {0};
  for (int i = 0; i < N; i++) {
    score[i] = i * 0.37;
    days[i] = (i * 13) % 400 - 20;
    tier[i] = i % 5;
    present[i] = i % 11 != 0;
  }
  qu_col cols[2] = {{NULL, days, NULL, present}, {NULL, tier, NULL, NULL}};
  for (int base = 0; base < N; base += 256) {
    int n = N - base < 256 ? N - base : 256;
    qu_col c2[2] = {{NULL, days + base, NULL, present + base}, {NULL, tier + base, NULL, NULL}};
    qu_block in = {(size_t)n, score + base, 2, c2};
    qu_out out = {res + base, NULL, NULL, NULL};
    if (qu_exec_run(e, &in, &out, &err)) fail_msg("%s: %s", x->lang, err.msg);
  }
  (void)cols;
  for (int i = 0; i < N; i++) {
    double want = custom_score_doc(i * 0.37, 1.7, present[i] ? (int32_t)days[i] : 365,
                                   (int32_t)tier[i]);
    if (res[i] != want) fail_msg("custom_score (%s) doc %d: %.17g != %.17g", x->lang, i, res[i], want);
  }
  qu_exec_free(e);
  qu_plan_free(p);
}

static void check_in_stock(qu_udf *u, const ex *x) {
  qu_plan *p;
  qu_exec *e = exec_for(u, "{\"max_price\": 50}", &p);
  int64_t stock[6] = {0, 1, 5, 3, -1, 2};
  double price[6] = {10, 10, 60, 50, 1, 49.99};
  uint8_t sp[6] = {1, 1, 1, 1, 1, 0}, keep[6];
  uint8_t want[6] = {0, 1, 0, 1, 0, 0}; /* doc 5: stock missing -> 0 */
  qb_err err = {0};
  qu_col c[2] = {{NULL, stock, NULL, sp}, {price, NULL, NULL, NULL}};
  qu_block in = {6, NULL, 2, c};
  qu_out out = {NULL, keep, NULL, NULL};
  if (qu_exec_run(e, &in, &out, &err)) fail_msg("%s: %s", x->lang, err.msg);
  assert_memory_equal(keep, want, 6);
  qu_exec_free(e);
  qu_plan_free(p);
}

static void check_strings(qu_udf *u, const ex *x, const char *in_s, const char *want) {
  qu_plan *p;
  qu_exec *e = exec_for(u, NULL, &p);
  qu_str s[2] = {{in_s, strlen(in_s)}, {NULL, 0}}, res[2];
  uint8_t present[2] = {1, 0}, op[2];
  qb_err err = {0};
  qu_col c = {NULL, NULL, s, present};
  qu_block in = {2, NULL, 1, &c};
  qu_out out = {NULL, NULL, res, op};
  if (qu_exec_run(e, &in, &out, &err)) fail_msg("%s %s: %s", x->name, x->lang, err.msg);
  if (res[0].len != strlen(want) || memcmp(res[0].ptr, want, res[0].len))
    fail_msg("%s (%s): got \"%.*s\", want \"%s\"", x->name, x->lang, (int)res[0].len,
             res[0].ptr ? res[0].ptr : "", want);
  qu_exec_free(e);
  qu_plan_free(p);
}

static void check_margin(qu_udf *u, const ex *x) {
  qu_plan *p;
  qu_exec *e = exec_for(u, NULL, &p);
  double price[4] = {100, 0, 80, -5}, cost[4] = {60, 10, 0, 1}, res[4];
  uint8_t cp[4] = {1, 1, 0, 1};
  double want[4] = {0.4, 0, 1, 0};
  qb_err err = {0};
  qu_col c[2] = {{price, NULL, NULL, NULL}, {cost, NULL, NULL, cp}};
  qu_block in = {4, NULL, 2, c};
  qu_out out = {res, NULL, NULL, NULL};
  if (qu_exec_run(e, &in, &out, &err)) fail_msg("%s: %s", x->lang, err.msg);
  for (int i = 0; i < 4; i++)
    if (fabs(res[i] - want[i]) > 1e-12) fail_msg("margin doc %d: %g != %g", i, res[i], want[i]);
  qu_exec_free(e);
  qu_plan_free(p);
}

static void check_trap_div(qu_udf *u, const ex *x) {
  qu_plan *p;
  qu_exec *e = exec_for(u, NULL, &p);
  int64_t items[2] = {10, 10}, box[2] = {3, 0};
  double res[2];
  qb_err err = {0};
  qu_col c[2] = {{NULL, items, NULL, NULL}, {NULL, box, NULL, NULL}};
  qu_block in = {1, NULL, 2, c};
  qu_out out = {res, NULL, NULL, NULL};
  if (qu_exec_run(e, &in, &out, &err)) fail_msg("%s: %s", x->lang, err.msg);
  assert_true(res[0] == 3);
  in.n = 2;
  assert_int_equal(qu_exec_run(e, &in, &out, &err), QB_TRAP);
  assert_string_equal(err.msg, "UDF trap_div v1 trapped: integer divide by zero");
  qu_exec_free(e);
  qu_plan_free(p);
}

static void check_infinite_loop(qu_udf *u, const ex *x) {
  qu_plan *p;
  qu_exec *e = exec_for(u, NULL, &p);
  double res[1];
  qb_err err = {0};
  qu_block in = {1, NULL, 0, NULL};
  qu_out out = {res, NULL, NULL, NULL};
  (void)x;
  assert_int_equal(qu_exec_run(e, &in, &out, &err), QB_LIMIT);
  /* fuel ends it, or on a slow (sanitizer) build the 1 s block deadline may come first */
  if (strcmp(err.msg, "UDF infinite_loop v1 exceeded its fuel budget") &&
      strncmp(err.msg, "UDF infinite_loop v1 ran past its deadline of 1000 ms", 53))
    fail_msg("infinite_loop: %s", err.msg);
  qu_exec_free(e);
  qu_plan_free(p);
}

static void every_built_example_deploys_and_computes_what_its_docs_say(void **state) {
  (void)state;
  ex xs[64];
  int n = list(xs, 64), ran = 0;
  if (!n) {
    print_message("examples not built ($QD_BUILD_DIR/examples/udfs/examples.txt): skipped\n");
    skip();
  }
  for (int i = 0; i < n; i++) {
    const ex *x = &xs[i];
    env v = {0};
    qu_options o = {0};
    o.fuel_per_doc = 1000000;
    qu_udf *u = deploy_example(&v, x, &o);
    if (!strcmp(x->name, "custom_score")) check_custom_score(u, x);
    else if (!strcmp(x->name, "in_stock_and_cheap")) check_in_stock(u, x);
    else if (!strcmp(x->name, "title_slug"))
      check_strings(u, x, "Caf\xc3\xa9 Cr\xc3\xa8me -- 2 Cups!", "caf\xc3\xa9-cr\xc3\xa8me-2-cups");
    else if (!strcmp(x->name, "title_upper")) check_strings(u, x, "hello World", "HELLO WORLD");
    else if (!strcmp(x->name, "margin")) check_margin(u, x);
    else if (!strcmp(x->name, "trap_div")) check_trap_div(u, x);
    else if (!strcmp(x->name, "infinite_loop")) check_infinite_loop(u, x);
    else print_message("example %s: no check here yet\n", x->name);
    ran++;
    qu_udf_release(u);
    env_fini(&v);
  }
  print_message("%d example modules run\n", ran);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_built_example_deploys_and_computes_what_its_docs_say),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
