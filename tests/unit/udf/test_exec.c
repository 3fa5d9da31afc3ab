/* test_exec.c: the executor on real modules (WAT built with wat2wasm at test time): results
** equal values computed here, string params through qd_alloc, string results, the batch form,
** filters, traps with the exact message and a fresh instance afterwards, fuel, two threads,
** the _test entry and the statistics. */
#include "udf_test_util.h"

#include <math.h>
#include <pthread.h>

#define BATCH_FUNC(name)                                                                       \
  "  (func (export \"" name "__batch\") (param $n i32) (param $args i32) (param $out i32)\n"   \
  "    (local $i i32) (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)\n"       \
  "    (local.set $c0 (i32.load offset=0 (local.get $args)))\n"                                \
  "    (local.set $c1 (i32.load offset=4 (local.get $args)))\n"                                \
  "    (local.set $c2 (i32.load offset=8 (local.get $args)))\n"                                \
  "    (local.set $c3 (i32.load offset=12 (local.get $args)))\n"                               \
  "    (block $done (loop $l\n"                                                                \
  "      (br_if $done (i32.ge_s (local.get $i) (local.get $n)))\n"                             \
  "      (f64.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 3)))\n"       \
  "        (call $score\n"                                                                     \
  "          (f64.load (i32.add (local.get $c0) (i32.shl (local.get $i) (i32.const 3))))\n"    \
  "          (f64.load (i32.add (local.get $c1) (i32.shl (local.get $i) (i32.const 3))))\n"    \
  "          (i32.load (i32.add (local.get $c2) (i32.shl (local.get $i) (i32.const 2))))\n"    \
  "          (i32.load (i32.add (local.get $c3) (i32.shl (local.get $i) (i32.const 2))))))\n"  \
  "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"                              \
  "      (br $l))))\n"

static const char batch_wat[] = "(module\n" QD_ALLOC_WAT CUSTOM_SCORE_FUNC BATCH_FUNC("custom_score") ")";

/* A batch form that lies (writes -1 everywhere): tells which path ran. */
static const char lying_batch_wat[] =
    "(module\n" QD_ALLOC_WAT CUSTOM_SCORE_FUNC
    "  (func (export \"custom_score__batch\") (param $n i32) (param $args i32) (param $out i32)\n"
    "    (local $i i32)\n"
    "    (block $done (loop $l\n"
    "      (br_if $done (i32.ge_s (local.get $i) (local.get $n)))\n"
    "      (f64.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 3)))\n"
    "                 (f64.const -1))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br $l))))\n"
    ")";

typedef struct loaded {
  qw_engine *e;
  qu_manifest *m;
  qu_udf *u;
} loaded;

static loaded load(const char *manifest, const char *module_wat, const qu_options *opts) {
  loaded l;
  size_t len;
  uint8_t *b = wat(module_wat, &len);
  qb_err err = {0};
  l.e = engine_new();
  l.m = manifest_of(manifest);
  if (qu_udf_load(l.e, l.m, 3, b, len, opts, &l.u, &err)) fail_msg("load: %s", err.msg);
  free(b);
  return l;
}

static void unload(loaded *l) {
  qu_udf_release(l->u);
  qu_manifest_free(l->m);
  qw_engine_free(l->e);
}

static qu_plan *plan_of(const qu_manifest *m, const char *params, const char *context) {
  json_t *p = params ? json_of(params) : NULL, *c = context ? json_of(context) : NULL;
  qu_plan *plan = NULL;
  qb_err err = {0};
  if (qu_plan_new(m, p, c, &plan, &err)) fail_msg("plan: %s", err.msg);
  json_decref(p);
  json_decref(c);
  return plan;
}

static qu_exec *exec_of(qu_udf *u, const qu_plan *p) {
  qu_exec *x = NULL;
  qb_err err = {0};
  if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
  return x;
}

/* custom_score over N docs in blocks of BLOCK: doc i has score i/10, days i%500 (missing
** every 7th doc: the manifest's 365), tier 1 from the context. Checks every result. */
static void run_custom_score(qu_udf *u, const qu_manifest *m, size_t ndocs, size_t block,
                             double expect_override) {
  qu_plan *p = plan_of(m,
                       "{\"boost_factor\": 1.2, \"recency_days\": \"_source.days\","
                       " \"user_tier\": \"_context.user.tier\"}",
                       "{\"user\": {\"tier\": 1}}");
  qu_exec *x = exec_of(u, p);
  double *score = calloc(block, sizeof(double)), *res = calloc(block, sizeof(double));
  int64_t *days = calloc(block, sizeof(int64_t));
  uint8_t *present = calloc(block, 1);
  qb_err err = {0};
  for (size_t base = 0; base < ndocs; base += block) {
    size_t n = ndocs - base < block ? ndocs - base : block;
    for (size_t i = 0; i < n; i++) {
      size_t d = base + i;
      score[i] = (double)d / 10;
      days[i] = (int64_t)(d % 500);
      present[i] = d % 7 != 0;
      if (!present[i]) days[i] = -12345; /* must not be read */
    }
    qu_col col = {NULL, days, NULL, present};
    qu_block in = {n, score, 1, &col};
    qu_out out = {res, NULL, NULL, NULL};
    if (qu_exec_run(x, &in, &out, &err)) fail_msg("run: %s", err.msg);
    for (size_t i = 0; i < n; i++) {
      size_t d = base + i;
      double want = isnan(expect_override)
                        ? custom_score_c((double)d / 10, 1.2, d % 7 ? (int32_t)(d % 500) : 365, 1)
                        : expect_override;
      if (res[i] != want) fail_msg("doc %zu: got %.17g, want %.17g", d, res[i], want);
    }
  }
  qu_exec_free(x);
  qu_plan_free(p);
  free(score);
  free(res);
  free(days);
  free(present);
}

static void custom_score_results_equal_the_c_computation(void **state) {
  (void)state;
  loaded l = load(custom_score_manifest, custom_score_wat, NULL);
  assert_false(qu_udf_has_batch(l.u));
  run_custom_score(l.u, l.m, 1000, 256, NAN);
  run_custom_score(l.u, l.m, 5, 1, NAN);
  run_custom_score(l.u, l.m, 2048, QU_BLOCK_MAX, NAN);
  unload(&l);
}

static void batch_form_gives_the_same_results(void **state) {
  (void)state;
  loaded l = load(custom_score_manifest, batch_wat, NULL);
  assert_true(qu_udf_has_batch(l.u));
  run_custom_score(l.u, l.m, 1000, 256, NAN);
  run_custom_score(l.u, l.m, 2048, QU_BLOCK_MAX, NAN);
  unload(&l);
}

static void batch_form_is_used_when_exported_unless_disabled(void **state) {
  (void)state;
  loaded l = load(custom_score_manifest, lying_batch_wat, NULL);
  run_custom_score(l.u, l.m, 300, 256, -1.0);
  unload(&l);
  qu_options o = {0};
  o.no_batch = 1;
  l = load(custom_score_manifest, lying_batch_wat, &o);
  assert_false(qu_udf_has_batch(l.u));
  run_custom_score(l.u, l.m, 300, 256, NAN);
  unload(&l);
}

/* count(text, ch): how many bytes of TEXT equal CH's first byte (0 when CH is empty). */
static const char count_wat[] =
    "(module\n" QD_ALLOC_WAT
    "  (func (export \"count\") (param $p i32) (param $n i32) (param $c i32) (param $cn i32)\n"
    "        (result i32) (local $k i32) (local $i i32)\n"
    "    (if (i32.eqz (local.get $cn)) (then (return (i32.const 0))))\n"
    "    (block $done (loop $l\n"
    "      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"
    "      (if (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $i)))\n"
    "                  (i32.load8_u (local.get $c)))\n"
    "        (then (local.set $k (i32.add (local.get $k) (i32.const 1)))))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br $l)))\n"
    "    (local.get $k))\n"
    ")";
static const char count_manifest[] =
    "{\"name\": \"count\", \"kind\": \"metric\", \"returns\": \"i32\", \"params\": ["
    " {\"name\": \"text\", \"type\": \"string\", \"missing\": \"aaaa\"},"
    " {\"name\": \"ch\", \"type\": \"string\"}]}";

static size_t count_c(const char *s, size_t n, char c) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += s[i] == c;
  return k;
}

static void string_params_are_copied_in_through_qd_alloc(void **state) {
  (void)state;
  loaded l = load(count_manifest, count_wat, NULL);
  qu_plan *p = plan_of(l.m, "{\"text\": \"doc['title']\", \"ch\": \"a\"}", NULL);
  qu_exec *x = exec_of(l.u, p);
  enum { N = 200 };
  static char bufs[N][64];
  qu_str strs[N];
  uint8_t present[N];
  double res[N];
  qb_err err = {0};
  for (int round = 0; round < 3; round++) { /* qd_reset between blocks keeps memory bounded */
    for (int i = 0; i < N; i++) {
      snprintf(bufs[i], sizeof bufs[i], "banana %d alpaca %*s", i * round, i % 20, "a");
      strs[i].ptr = bufs[i];
      strs[i].len = strlen(bufs[i]);
      present[i] = i % 9 != 0;
    }
    qu_col col = {NULL, NULL, strs, present};
    qu_block in = {N, NULL, 1, &col};
    qu_out out = {res, NULL, NULL, NULL};
    if (qu_exec_run(x, &in, &out, &err)) fail_msg("run: %s", err.msg);
    for (int i = 0; i < N; i++) {
      double want = present[i] ? (double)count_c(bufs[i], strs[i].len, 'a') : 4;
      if (res[i] != want) fail_msg("doc %d: got %g, want %g", i, res[i], want);
    }
  }
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

/* shout(text) -> text upper-cased (ASCII) in a fresh qd_alloc copy; "" -> no value. */
static const char shout_wat[] =
    "(module\n"
    "  (func $yield (import \"wasi_snapshot_preview1\" \"sched_yield\") (result i32))\n"
    QD_ALLOC_WAT
    "  (func (export \"shout\") (param $p i32) (param $n i32) (result i64)\n"
    "        (local $d i32) (local $i i32) (local $c i32)\n"
    "    (if (i32.eqz (local.get $n)) (then (return (i64.const -1))))\n"
    "    (local.set $d (call $qd_alloc (local.get $n)))\n"
    "    (block $done (loop $l\n"
    "      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"
    "      (local.set $c (i32.load8_u (i32.add (local.get $p) (local.get $i))))\n"
    "      (if (i32.and (i32.ge_u (local.get $c) (i32.const 97))\n"
    "                   (i32.le_u (local.get $c) (i32.const 122)))\n"
    "        (then (local.set $c (i32.sub (local.get $c) (i32.const 32)))))\n"
    "      (i32.store8 (i32.add (local.get $d) (local.get $i)) (local.get $c))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br $l)))\n"
    "    (i64.or (i64.shl (i64.extend_i32_u (local.get $d)) (i64.const 32))\n"
    "            (i64.extend_i32_u (local.get $n))))\n"
    ")";
static const char shout_manifest[] =
    "{\"name\": \"shout\", \"kind\": \"transform\", \"returns\": \"string\", \"params\": ["
    " {\"name\": \"text\", \"type\": \"string\", \"default\": \"_source.title\"}]}";

static void string_results_are_copied_out(void **state) {
  (void)state;
  loaded l = load(shout_manifest, shout_wat, NULL);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  assert_int_equal(qu_plan_ncols(p), 1);
  qu_exec *x = exec_of(l.u, p);
  qu_str in_s[3] = {{"hello", 5}, {"", 0}, {"Mixed Case 42", 13}};
  qu_str res[3];
  uint8_t present[3];
  qb_err err = {0};
  qu_col col = {NULL, NULL, in_s, NULL};
  qu_block in = {3, NULL, 1, &col};
  qu_out out = {NULL, NULL, res, present};
  if (qu_exec_run(x, &in, &out, &err)) fail_msg("run: %s", err.msg);
  assert_int_equal(res[0].len, 5);
  assert_memory_equal(res[0].ptr, "HELLO", 5);
  assert_null(res[1].ptr);
  assert_int_equal(present[1], 0);
  assert_int_equal(res[2].len, 13);
  assert_memory_equal(res[2].ptr, "MIXED CASE 42", 13);
  assert_int_equal(present[2], 1);
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

static void filter_returns_a_keep_mask(void **state) {
  (void)state;
  loaded l = load("{\"name\": \"even\", \"kind\": \"filter\", \"returns\": \"i32\", \"params\": "
                  "[{\"name\": \"v\", \"type\": \"i64\", \"default\": \"_source.stock\"}]}",
                  "(module (func (export \"even\") (param i64) (result i32)"
                  " (i64.eqz (i64.rem_u (local.get 0) (i64.const 2)))))",
                  NULL);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  qu_exec *x = exec_of(l.u, p);
  int64_t v[6] = {0, 1, 2, 3, 10, 7};
  uint8_t keep[6];
  qb_err err = {0};
  qu_col col = {NULL, v, NULL, NULL};
  qu_block in = {6, NULL, 1, &col};
  qu_out out = {NULL, keep, NULL, NULL};
  if (qu_exec_run(x, &in, &out, &err)) fail_msg("run: %s", err.msg);
  uint8_t want[6] = {1, 0, 1, 0, 1, 0};
  assert_memory_equal(keep, want, 6);
  /* the same filter may feed a number context: 1 / 0 */
  double f[6];
  qu_out out2 = {f, NULL, NULL, NULL};
  if (qu_exec_run(x, &in, &out2, &err)) fail_msg("run: %s", err.msg);
  for (int i = 0; i < 6; i++) assert_true(f[i] == want[i]);
  /* given both (the query layer hands every array over), a filter fills only KEEP */
  double untouched[6] = {9, 9, 9, 9, 9, 9};
  memset(keep, 7, sizeof keep);
  qu_out both = {untouched, keep, NULL, NULL};
  if (qu_exec_run(x, &in, &both, &err)) fail_msg("run: %s", err.msg);
  assert_memory_equal(keep, want, 6);
  for (int i = 0; i < 6; i++) assert_true(untouched[i] == 9);
  qu_out none = {NULL, NULL, NULL, NULL};
  assert_int_equal(qu_exec_run(x, &in, &none, &err), QB_INVAL);
  assert_string_equal(err.msg, "udf even v3: no output array for a i32 result");
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

static const char div_manifest[] =
    "{\"name\": \"custom_score\", \"returns\": \"i32\", \"params\": "
    "[{\"name\": \"d\", \"type\": \"i32\", \"default\": \"_source.d\"}]}";
static const char div_wat[] =
    "(module (memory 1) (global $calls (mut i32) (i32.const 0))\n"
    "  (func (export \"custom_score\") (param i32) (result i32)\n"
    "    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))\n"
    "    (i32.add (i32.mul (global.get $calls) (i32.const 0))\n"
    "             (i32.div_s (i32.const 100) (local.get 0)))))";

static qb_code run_div(qu_exec *x, int64_t d, double *res, qb_err *err) {
  qu_col col = {NULL, &d, NULL, NULL};
  qu_block in = {1, NULL, 1, &col};
  qu_out out = {res, NULL, NULL, NULL};
  return qu_exec_run(x, &in, &out, err);
}

static void trap_fails_with_the_exact_message_and_the_next_call_gets_a_fresh_instance(void **s) {
  (void)s;
  loaded l = load(div_manifest, div_wat, NULL);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  qu_exec *x = exec_of(l.u, p);
  double r = 0;
  qb_err err = {0};
  assert_int_equal(run_div(x, 5, &r, &err), QB_OK);
  assert_true(r == 20);
  assert_int_equal(run_div(x, 0, &r, &err), QB_TRAP);
  assert_string_equal(err.msg, "UDF custom_score v3 trapped: integer divide by zero");
  qu_stats st;
  qu_udf_stats(l.u, &st);
  assert_int_equal(st.instances, 0); /* the trapped instance was freed, not pooled */
  assert_int_equal(st.errors[QU_TIER_INTERP], 1);
  assert_int_equal(run_div(x, 4, &r, &err), QB_OK);
  assert_true(r == 25);
  qu_udf_stats(l.u, &st);
  assert_int_equal(st.instances, 1);
  assert_int_equal(st.calls[QU_TIER_INTERP], 3);
  assert_int_equal(st.blocks[QU_TIER_INTERP], 3);
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

static void a_score_given_every_output_array_fills_only_f64(void **state) {
  (void)state;
  loaded l = load(div_manifest, div_wat, NULL);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  qu_exec *x = exec_of(l.u, p);
  int64_t d[2] = {5, 50};
  double f[2];
  uint8_t keep[2] = {7, 7}, present[2] = {0, 0};
  qu_str str[2] = {{"x", 1}, {"y", 1}};
  qb_err err = {0};
  qu_col col = {NULL, d, NULL, NULL};
  qu_block in = {2, NULL, 1, &col};
  qu_out out = {f, keep, str, present};
  if (qu_exec_run(x, &in, &out, &err)) fail_msg("run: %s", err.msg);
  assert_true(f[0] == 20 && f[1] == 2);
  assert_int_equal(keep[0], 7);
  assert_int_equal(keep[1], 7);
  assert_int_equal(present[0], 1);
  assert_int_equal(present[1], 1);
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

static void infinite_loop_ends_by_fuel(void **state) {
  (void)state;
  qu_options o = {0};
  o.fuel_per_doc = 10000;
  loaded l = load("{\"name\": \"spin\", \"returns\": \"f64\", \"params\": "
                  "[{\"name\": \"x\", \"type\": \"f64\", \"default\": \"_score\"}]}",
                  "(module (func (export \"spin\") (param f64) (result f64)"
                  " (loop $l (br $l)) (f64.const 0)))",
                  &o);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  qu_exec *x = exec_of(l.u, p);
  double score[4] = {1, 2, 3, 4}, res[4];
  qb_err err = {0};
  qu_block in = {4, score, 0, NULL};
  qu_out out = {res, NULL, NULL, NULL};
  assert_int_equal(qu_exec_run(x, &in, &out, &err), QB_LIMIT);
  assert_string_equal(err.msg, "UDF spin v3 exceeded its fuel budget");
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

/* issue 13 #3: fuel bounds work, not time: a block past its wall-clock deadline is interrupted
** by the watchdog, the error names the UDF and the deadline, and the next block runs normally */
static void a_block_past_its_deadline_is_interrupted(void **state) {
  (void)state;
  qu_options o = {0};
  o.fuel_per_doc = (uint64_t)1 << 60; /* no fuel limit to speak of */
  o.block_timeout_ms = 50;
  loaded l = load("{\"name\": \"spin\", \"returns\": \"f64\", \"params\": "
                  "[{\"name\": \"x\", \"type\": \"f64\", \"default\": \"_score\"}]}",
                  "(module (func (export \"spin\") (param f64) (result f64)"
                  " (if (f64.gt (local.get 0) (f64.const 0)) (then (loop $l (br $l))))"
                  " (local.get 0)))",
                  &o);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  qu_exec *x = exec_of(l.u, p);
  double score[2] = {1, 2}, res[2];
  qb_err err = {0};
  qu_block in = {2, score, 0, NULL};
  qu_out out = {res, NULL, NULL, NULL};
  assert_int_equal(qu_exec_run(x, &in, &out, &err), QB_LIMIT);
  assert_string_equal(err.msg, "UDF spin v3 ran past its deadline of 50 ms for a block of 2 documents");
  double zero[2] = {0, -1};
  qu_block ok = {2, zero, 0, NULL};
  if (qu_exec_run(x, &ok, &out, &err)) fail_msg("the next block: %s", err.msg);
  assert_true(res[0] == 0 && res[1] == -1);
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

static void memory_cap_applies_to_every_instance(void **state) {
  (void)state;
  qu_options o = {0};
  o.max_memory_pages = 4;
  /* grow(n) returns memory.grow's answer: the old size, or -1 past the cap */
  loaded l = load("{\"name\": \"grow\", \"returns\": \"i32\", \"params\": "
                  "[{\"name\": \"n\", \"type\": \"i32\", \"default\": \"_source.n\"}]}",
                  "(module (memory 1) (func (export \"grow\") (param i32) (result i32)"
                  " (memory.grow (local.get 0))))",
                  &o);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  qu_exec *x = exec_of(l.u, p);
  int64_t n[3] = {2, 5, 1};
  double res[3];
  qb_err err = {0};
  qu_col col = {NULL, n, NULL, NULL};
  qu_block in = {3, NULL, 1, &col};
  qu_out out = {res, NULL, NULL, NULL};
  if (qu_exec_run(x, &in, &out, &err)) fail_msg("run: %s", err.msg);
  assert_true(res[0] == 1);  /* 1 -> 3 pages */
  assert_true(res[1] == -1); /* 3 + 5 > 4: refused, not a trap */
  assert_true(res[2] == 3);  /* 3 -> 4 pages */
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

typedef struct worker {
  qu_udf *u;
  const qu_manifest *m;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  run_custom_score(w->u, w->m, 20000, 256, NAN);
  return NULL;
}

static void two_threads_call_one_version_concurrently(void **state) {
  (void)state;
  loaded l = load(custom_score_manifest, custom_score_wat, NULL);
  worker w = {l.u, l.m};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, work, &w), 0);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  qu_stats st;
  qu_udf_stats(l.u, &st);
  assert_int_equal(st.calls[QU_TIER_INTERP], 40000);
  assert_int_equal(st.errors[QU_TIER_INTERP], 0);
  assert_true(st.instances >= 1 && st.instances <= 2); /* pooled, reused */
  unload(&l);
}

static void test_entry_runs_once_from_json_args(void **state) {
  (void)state;
  loaded l = load(custom_score_manifest, custom_score_wat, NULL);
  json_t *body = json_of("{\"args\": {\"boost_factor\": 2, \"recency_days\": 365,"
                         " \"user_tier\": 1, \"_score\": 3.5}}");
  qb_buf out;
  qb_err err = {0};
  qb_buf_init(&out);
  if (qu_udf_test(l.u, body, &out, &err)) fail_msg("test: %s", err.msg);
  char want[64];
  snprintf(want, sizeof want, "%.17g", custom_score_c(3.5, 2, 365, 1));
  assert_string_equal(out.data, want);
  json_decref(body);
  /* a missing required arg is the binding's error */
  body = json_of("{\"args\": {\"recency_days\": 1}}");
  assert_int_equal(qu_udf_test(l.u, body, &out, &err), QB_INVAL);
  assert_string_equal(err.msg, "udf custom_score: param boost_factor: no value (not in params "
                               "and no default)");
  json_decref(body);
  qb_buf_fini(&out);
  unload(&l);
  /* a trap is reported as such */
  l = load(div_manifest, div_wat, NULL);
  body = json_of("{\"args\": {\"d\": 0}}");
  qb_buf_init(&out);
  assert_int_equal(qu_udf_test(l.u, body, &out, &err), QB_TRAP);
  assert_string_equal(err.msg, "UDF custom_score v3 trapped: integer divide by zero");
  json_decref(body);
  body = json_of("{\"args\": {\"d\": 7}}");
  assert_int_equal(qu_udf_test(l.u, body, &out, &err), QB_OK);
  assert_string_equal(out.data, "14");
  json_decref(body);
  qb_buf_fini(&out);
  unload(&l);
}

static void timing_is_sampled_into_the_histogram(void **state) {
  (void)state;
  qu_options o = {0};
  o.timing_sample = 4;
  loaded l = load(custom_score_manifest, custom_score_wat, &o);
  run_custom_score(l.u, l.m, 256 * 16, 256, NAN); /* 16 blocks, 1 in 4 timed */
  qu_stats st;
  qu_udf_stats(l.u, &st);
  assert_int_equal(st.blocks[QU_TIER_INTERP], 16);
  assert_int_equal(st.hist_count[QU_TIER_INTERP], 4);
  uint64_t sum = 0;
  for (int b = 0; b <= QU_HIST_BUCKETS; b++) sum += st.hist[QU_TIER_INTERP][b];
  assert_int_equal(sum, 4);
  assert_true(st.hist_sum_seconds[QU_TIER_INTERP] > 0);
  assert_int_equal(st.calls[QU_TIER_NATIVE], 0);
  assert_true(st.module_bytes > 0);
  assert_true(st.instance_bytes > 0);
  assert_string_equal(st.name, "custom_score");
  unload(&l);
}

static void malformed_blocks_are_rejected(void **state) {
  (void)state;
  loaded l = load(div_manifest, div_wat, NULL);
  qu_plan *p = plan_of(l.m, NULL, NULL);
  qu_exec *x = exec_of(l.u, p);
  double r;
  qb_err err = {0};
  qu_block in = {1, NULL, 0, NULL};
  qu_out out = {&r, NULL, NULL, NULL};
  assert_int_equal(qu_exec_run(x, &in, &out, &err), QB_INVAL);
  assert_string_equal(err.msg, "udf custom_score v3: malformed block (n 1, 0 columns, plan has 1)");
  qu_col col = {NULL, NULL, NULL, NULL};
  qu_block in2 = {1, NULL, 1, &col};
  assert_int_equal(qu_exec_run(x, &in2, &out, &err), QB_INVAL);
  assert_string_equal(err.msg, "udf custom_score v3: block column 0 (d) has no values");
  qu_exec_free(x);
  qu_plan_free(p);
  unload(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(custom_score_results_equal_the_c_computation),
      cmocka_unit_test(a_score_given_every_output_array_fills_only_f64),
      cmocka_unit_test(batch_form_gives_the_same_results),
      cmocka_unit_test(batch_form_is_used_when_exported_unless_disabled),
      cmocka_unit_test(string_params_are_copied_in_through_qd_alloc),
      cmocka_unit_test(string_results_are_copied_out),
      cmocka_unit_test(filter_returns_a_keep_mask),
      cmocka_unit_test(trap_fails_with_the_exact_message_and_the_next_call_gets_a_fresh_instance),
      cmocka_unit_test(infinite_loop_ends_by_fuel),
      cmocka_unit_test(a_block_past_its_deadline_is_interrupted),
      cmocka_unit_test(memory_cap_applies_to_every_instance),
      cmocka_unit_test(two_threads_call_one_version_concurrently),
      cmocka_unit_test(test_entry_runs_once_from_json_args),
      cmocka_unit_test(timing_is_sampled_into_the_histogram),
      cmocka_unit_test(malformed_blocks_are_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
