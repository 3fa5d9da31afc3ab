/* test_tier.c: the tier switch with a fake native tier (fake_native.h) on real modules: a
** version starts on the interpreter, compiles in the background, runs its first blocks on both
** tiers, then serves native code; a broken native entry is caught by the comparison (ERROR
** logged naming the UDF, counted, interpreter kept); a failed compile keeps the interpreter;
** pins; string params and results through both tiers; and the swap under four threads calling
** at once: no failed call and every result identical to the interpreter's. */
#include "udf_test_util.h"

#include <math.h>
#include <pthread.h>

#include "fake_native.h"

/* ---- the log: ERROR lines are kept for the assertions ---------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_error[512];
static int errors_logged;

static void sink(void *ud, qb_level level, const char *line) {
  (void)ud;
  if (level != QB_ERROR) return;
  pthread_mutex_lock(&log_mu);
  snprintf(last_error, sizeof last_error, "%s", line);
  errors_logged++;
  pthread_mutex_unlock(&log_mu);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static qu_compiler *compiler_of(fake *f, const qu_compiler_options *o) {
  qu_compiler *c = NULL;
  qb_err err = {0};
  if (qu_compiler_new(fake_ops(f), o, &c, &err)) fail_msg("compiler: %s", err.msg);
  return c;
}

static qu_udf *load_with(qw_engine *e, const qu_manifest *m, const char *text, qu_compiler *c) {
  size_t len;
  uint8_t *b = wat(text, &len);
  qu_options o = {0};
  qu_udf *u = NULL;
  qb_err err = {0};
  o.compiler = c;
  if (qu_udf_load(e, m, 3, b, len, &o, &u, &err)) fail_msg("load: %s", err.msg);
  free(b);
  return u;
}

static qu_plan *custom_plan(const qu_manifest *m) {
  json_t *p = json_of("{\"boost_factor\": 1.2, \"recency_days\": \"_source.days\","
                      " \"user_tier\": \"_context.user.tier\"}");
  json_t *c = json_of("{\"user\": {\"tier\": 1}}");
  qu_plan *plan = NULL;
  qb_err err = {0};
  if (qu_plan_new(m, p, c, &plan, &err)) fail_msg("plan: %s", err.msg);
  json_decref(p);
  json_decref(c);
  return plan;
}

#define BLOCK 64

/* Block number B of custom_score's inputs: 64 docs, scores and days from B. */
static void block_inputs(size_t b, double *score, int64_t *days, uint8_t *present) {
  for (size_t i = 0; i < BLOCK; i++) {
    size_t d = b * BLOCK + i;
    score[i] = (double)(d % 1000) / 7;
    days[i] = (int64_t)(d % 800);
    present[i] = d % 11 != 0;
  }
}

static void run_block(qu_exec *x, size_t b, double *res) {
  double score[BLOCK];
  int64_t days[BLOCK];
  uint8_t present[BLOCK];
  qb_err err = {0};
  block_inputs(b, score, days, present);
  qu_col col = {NULL, days, NULL, present};
  qu_block in = {BLOCK, score, 1, &col};
  qu_out out = {res, NULL, NULL, NULL};
  if (qu_exec_run(x, &in, &out, &err)) fail_msg("block %zu: %s", b, err.msg);
}

/* What the interpreter gives for block B (a version without a compiler). */
static void expected(qw_engine *e, const qu_manifest *m, size_t nblocks, double *want) {
  qu_udf *u = load_with(e, m, custom_score_wat, NULL);
  qu_plan *p = custom_plan(m);
  qu_exec *x = NULL;
  qb_err err = {0};
  if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
  for (size_t b = 0; b < nblocks; b++) run_block(x, b, want + b * BLOCK);
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u);
}

/* Blocks until U's compile job is done and its verification settled (or failed). */
static qu_tier_status settle(qu_udf *u, qu_exec *x, qu_compiler *c) {
  qu_tier_status st;
  double res[BLOCK];
  qu_compiler_wait_idle(c);
  for (size_t b = 0; b < 64; b++) {
    qu_udf_tier_status(u, &st);
    if (st.state != QU_NATIVE_VERIFYING) break;
    run_block(x, b, res);
  }
  qu_udf_tier_status(u, &st);
  return st;
}

static int same_bits(double a, double b) { return !memcmp(&a, &b, sizeof a); }

/* ---- tests ------------------------------------------------------------------------------------ */

static void a_correct_native_tier_takes_over_after_verification(void **state) {
  (void)state;
  fake f = {0};
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_compiler *c = compiler_of(&f, NULL);
  double want[40 * BLOCK], res[BLOCK];
  expected(e, m, 40, want);
  qu_udf *u = load_with(e, m, custom_score_wat, c);
  qu_plan *p = custom_plan(m);
  qu_exec *x = NULL;
  qb_err err = {0};
  if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
  qu_compiler_wait_idle(c);
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  assert_int_equal(st.state, QU_NATIVE_VERIFYING);
  assert_int_equal(st.verify_target, 8);
  assert_int_equal(atomic_load(&f.compiles), 1);
  for (size_t b = 0; b < 40; b++) {
    run_block(x, b, res);
    for (size_t i = 0; i < BLOCK; i++)
      if (!same_bits(res[i], want[b * BLOCK + i])) fail_msg("block %zu doc %zu differs", b, i);
    qu_udf_tier_status(u, &st);
    if (b < 7) assert_int_equal(st.state, QU_NATIVE_VERIFYING);
    else assert_int_equal(st.state, QU_NATIVE_READY); /* the 8th block swapped */
  }
  assert_int_equal(st.origin, QU_ORIGIN_JIT);
  assert_string_equal(qu_origin_name(st.origin), "native-jit");
  assert_string_equal(st.reason, "");
  assert_int_equal(st.verified_blocks, 8);
  qu_stats s;
  qu_udf_stats(u, &s);
  assert_int_equal(s.mode, QU_TIER_NATIVE);
  assert_int_equal(s.blocks[QU_TIER_INTERP], 8);  /* the verified ones served the interpreter */
  assert_int_equal(s.blocks[QU_TIER_NATIVE], 32);
  assert_int_equal(s.calls[QU_TIER_NATIVE], 32 * BLOCK);
  assert_int_equal(s.verify_mismatches, 0);
  assert_int_equal(s.compiles, 1);
  assert_int_equal(atomic_load(&f.blocks), 40); /* 8 compared + 32 served */
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u);
  assert_int_equal(atomic_load(&f.frees), 1); /* the native code went with the version */
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

static void a_broken_native_tier_is_caught_and_the_interpreter_kept(void **state) {
  (void)state;
  fake f = {.broken = 1};
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_compiler *c = compiler_of(&f, NULL);
  double want[20 * BLOCK], res[BLOCK];
  expected(e, m, 20, want);
  int errors_before = errors_logged;
  qu_udf *u = load_with(e, m, custom_score_wat, c);
  qu_plan *p = custom_plan(m);
  qu_exec *x = NULL;
  qb_err err = {0};
  if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
  qu_compiler_wait_idle(c);
  for (size_t b = 0; b < 20; b++) {
    run_block(x, b, res);
    for (size_t i = 0; i < BLOCK; i++)
      if (!same_bits(res[i], want[b * BLOCK + i])) fail_msg("block %zu doc %zu differs", b, i);
  }
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  assert_int_equal(st.state, QU_NATIVE_FAILED);
  assert_int_equal(st.origin, QU_ORIGIN_INTERP);
  assert_non_null(strstr(st.reason, "native code disagreed with the interpreter: document 3"));
  qu_stats s;
  qu_udf_stats(u, &s);
  assert_int_equal(s.verify_mismatches, 1);
  assert_int_equal(s.mode, QU_TIER_INTERP);
  assert_int_equal(s.calls[QU_TIER_NATIVE], 0);
  assert_int_equal(s.blocks[QU_TIER_INTERP], 20);
  assert_int_equal(atomic_load(&f.blocks), 1); /* compared once, never again */
  assert_int_equal(errors_logged, errors_before + 1);
  assert_non_null(strstr(last_error, "UDF custom_score v3: native code disagreed"));
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u);
  assert_int_equal(atomic_load(&f.frees), 1);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

static void a_failed_compile_keeps_the_interpreter(void **state) {
  (void)state;
  fake f = {.fail_compile = 1};
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_compiler *c = compiler_of(&f, NULL);
  qu_udf *u = load_with(e, m, custom_score_wat, c);
  qu_plan *p = custom_plan(m);
  qu_exec *x = NULL;
  qb_err err = {0};
  double res[BLOCK];
  if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
  qu_tier_status st = settle(u, x, c);
  assert_int_equal(st.state, QU_NATIVE_FAILED);
  assert_string_equal(st.reason, "compilation failed: fake: cannot compile this module");
  run_block(x, 0, res);
  qu_stats s;
  qu_udf_stats(u, &s);
  assert_int_equal(s.compile_failures, 1);
  assert_int_equal(s.calls[QU_TIER_NATIVE], 0);
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

static void pins_and_no_verification(void **state) {
  (void)state;
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_tier_status st;
  /* pinned to the interpreter: nothing compiles */
  fake f1 = {0};
  qu_compiler_options o1 = {.pin = QU_PIN_INTERP};
  qu_compiler *c1 = compiler_of(&f1, &o1);
  qu_udf *u1 = load_with(e, m, custom_score_wat, c1);
  qu_compiler_wait_idle(c1);
  qu_udf_tier_status(u1, &st);
  assert_int_equal(st.state, QU_NATIVE_OFF);
  assert_string_equal(st.reason, "the node is pinned to the interpreter");
  assert_int_equal(atomic_load(&f1.compiles), 0);
  qu_udf_release(u1);
  qu_compiler_free(c1);
  /* pinned native, no verification: the load compiles in this thread and serves at once */
  fake f2 = {.per_doc = 1};
  qu_compiler_options o2 = {.pin = QU_PIN_NATIVE, .verify_blocks = UINT32_MAX};
  qu_compiler *c2 = compiler_of(&f2, &o2);
  qu_udf *u2 = load_with(e, m, custom_score_wat, c2);
  qu_udf_tier_status(u2, &st);
  assert_int_equal(st.state, QU_NATIVE_READY);
  assert_int_equal(st.origin, QU_ORIGIN_JIT);
  double want[BLOCK], res[BLOCK];
  expected(e, m, 1, want);
  qu_plan *p = custom_plan(m);
  qu_exec *x = NULL;
  qb_err err = {0};
  if (qu_exec_new(u2, p, &x, &err)) fail_msg("exec: %s", err.msg);
  run_block(x, 0, res); /* the per-document native entry */
  for (size_t i = 0; i < BLOCK; i++) assert_true(same_bits(res[i], want[i]));
  qu_stats s;
  qu_udf_stats(u2, &s);
  assert_int_equal(s.calls[QU_TIER_NATIVE], BLOCK);
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u2);
  qu_compiler_free(c2);
  qu_manifest_free(m);
  qw_engine_free(e);
}

/* shout(text): upper-cased copy; "" -> no value. Strings go both ways through both tiers. */
static const char shout_wat[] =
    "(module\n" QD_ALLOC_WAT
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

static void strings_through_both_tiers(void **state) {
  (void)state;
  fake f = {0};
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(
      "{\"name\": \"shout\", \"kind\": \"transform\", \"returns\": \"string\", \"params\": ["
      " {\"name\": \"text\", \"type\": \"string\", \"default\": \"_source.title\"}]}");
  qu_compiler_options o = {.verify_blocks = 2};
  qu_compiler *c = compiler_of(&f, &o);
  qu_udf *u = load_with(e, m, shout_wat, c);
  qu_plan *p = NULL;
  qu_exec *x = NULL;
  qb_err err = {0};
  if (qu_plan_new(m, NULL, NULL, &p, &err) || qu_exec_new(u, p, &x, &err))
    fail_msg("exec: %s", err.msg);
  qu_compiler_wait_idle(c);
  qu_str in_s[3] = {{"hello", 5}, {"", 0}, {"Mixed Case 42", 13}};
  for (int round = 0; round < 5; round++) {
    qu_str res[3];
    uint8_t present[3];
    qu_col col = {NULL, NULL, in_s, NULL};
    qu_block in = {3, NULL, 1, &col};
    qu_out out = {NULL, NULL, res, present};
    if (qu_exec_run(x, &in, &out, &err)) fail_msg("run: %s", err.msg);
    assert_int_equal(res[0].len, 5);
    assert_memory_equal(res[0].ptr, "HELLO", 5);
    assert_null(res[1].ptr);
    assert_int_equal(present[1], 0);
    assert_memory_equal(res[2].ptr, "MIXED CASE 42", 13);
  }
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  assert_int_equal(st.state, QU_NATIVE_READY);
  qu_stats s;
  qu_udf_stats(u, &s);
  assert_int_equal(s.calls[QU_TIER_NATIVE], 9);
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

/* ---- a registry closing while its versions compile --------------------------------------------- */

static void *close_registry(void *arg) {
  qu_registry_close(arg);
  return NULL;
}

static void closing_a_registry_drops_its_queued_compiles(void **state) {
  (void)state;
  fake f = {0};
  fake_gate_init(&f);
  char dir[] = "/tmp/qu_tierXXXXXX", db[64];
  assert_non_null(mkdtemp(dir));
  snprintf(db, sizeof db, "%s/udf.db", dir);
  qw_engine *e = engine_new();
  qu_compiler *c = compiler_of(&f, NULL);
  qu_options o = {.compiler = c};
  qu_registry *r = NULL;
  qb_err err = {0};
  if (qu_registry_open(e, db, &o, &r, &err)) fail_msg("open: %s", err.msg);
  size_t len;
  uint8_t *b = wat(custom_score_wat, &len);
  qu_udf *u1 = NULL, *u2 = NULL;
  if (qu_registry_deploy(r, NULL, custom_score_manifest, strlen(custom_score_manifest), b, len,
                         NULL, &err) ||
      qu_registry_acquire(r, "custom_score", 0, &u1, &err))
    fail_msg("v1: %s", err.msg);
  fake_wait_entered(&f); /* v1 is compiling (and stays so until the gate opens) */
  if (qu_registry_deploy(r, NULL, custom_score_manifest, strlen(custom_score_manifest), b, len,
                         NULL, &err) ||
      qu_registry_acquire(r, "custom_score", 0, &u2, &err))
    fail_msg("v2: %s", err.msg);
  free(b);
  qu_tier_status st;
  qu_udf_tier_status(u2, &st);
  assert_int_equal(st.state, QU_NATIVE_QUEUED);
  qu_udf_release(u1);
  qu_udf_release(u2);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, close_registry, r), 0);
  fake_open(&f); /* the close waits for v1's compile, and drops v2's */
  pthread_join(th, NULL);
  /* v2 is dropped when the close reaches the queue first (the usual case), else compiled
  ** before the close finishes waiting; either way nothing is left running or leaked */
  int n = atomic_load(&f.compiles);
  assert_true(n == 1 || n == 2);
  assert_int_equal(atomic_load(&f.frees), n);
  qu_compiler_free(c);
  qw_engine_free(e);
  snprintf(db, sizeof db, "rm -rf %s", dir);
  assert_int_equal(system(db), 0);
}

/* ---- the swap under load ----------------------------------------------------------------------- */

#define THREADS 4
#define MAX_BLOCKS 200000 /* per thread: a bound, far above what a swap needs */
#define NBLK 100          /* distinct input blocks, cycled */

typedef struct worker {
  int id;
  qu_udf *u;
  const qu_plan *plan;
  const double *want;
  int failed;
  char why[300];
  size_t blocks, after_settle;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  qu_exec *x = NULL;
  qb_err err = {0};
  double score[BLOCK], res[BLOCK];
  int64_t days[BLOCK];
  uint8_t present[BLOCK];
  if (qu_exec_new(w->u, w->plan, &x, &err)) {
    w->failed = 1;
    snprintf(w->why, sizeof w->why, "exec: %s", err.msg);
    return NULL;
  }
  for (size_t k = 0; k < MAX_BLOCKS && w->after_settle < 200; k++) {
    size_t b = (k * 7 + (size_t)w->id) % NBLK;
    qu_tier_status st;
    qu_udf_tier_status(w->u, &st);
    int settled = st.state == QU_NATIVE_READY || st.state == QU_NATIVE_FAILED;
    block_inputs(b, score, days, present);
    qu_col col = {NULL, days, NULL, present};
    qu_block in = {BLOCK, score, 1, &col};
    qu_out out = {res, NULL, NULL, NULL};
    if (qu_exec_run(x, &in, &out, &err)) {
      w->failed = 1;
      snprintf(w->why, sizeof w->why, "block %zu failed: %s", b, err.msg);
      break;
    }
    for (size_t i = 0; i < BLOCK; i++)
      if (!same_bits(res[i], w->want[b * BLOCK + i])) {
        w->failed = 1;
        snprintf(w->why, sizeof w->why, "block %zu doc %zu: %.17g, want %.17g", b, i, res[i],
                 w->want[b * BLOCK + i]);
        break;
      }
    if (w->failed) break;
    w->blocks++;
    if (settled) w->after_settle++;
  }
  qu_exec_free(x);
  return NULL;
}

static void swap_under_concurrent_calls(int broken) {
  fake f = {.broken = broken};
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  static double want[NBLK * BLOCK];
  expected(e, m, NBLK, want);
  qu_compiler *c = compiler_of(&f, NULL);
  qu_udf *u = load_with(e, m, custom_score_wat, c); /* compiles while the threads run */
  qu_plan *p = custom_plan(m);
  worker w[THREADS];
  pthread_t th[THREADS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < THREADS; i++) {
    w[i].id = i;
    w[i].u = u;
    w[i].plan = p;
    w[i].want = want;
    assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < THREADS; i++)
    if (w[i].failed) fail_msg("thread %d: %s", i, w[i].why);
  for (int i = 0; i < THREADS; i++) assert_int_equal(w[i].after_settle, 200);
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  qu_stats s;
  qu_udf_stats(u, &s);
  uint64_t total = 0;
  for (int i = 0; i < THREADS; i++) total += w[i].blocks;
  assert_int_equal(s.blocks[QU_TIER_INTERP] + s.blocks[QU_TIER_NATIVE], total);
  assert_int_equal(s.errors[QU_TIER_INTERP] + s.errors[QU_TIER_NATIVE], 0);
  if (broken) {
    assert_int_equal(st.state, QU_NATIVE_FAILED);
    assert_int_equal(s.verify_mismatches, 1);
    assert_int_equal(s.blocks[QU_TIER_NATIVE], 0);
  } else {
    assert_int_equal(st.state, QU_NATIVE_READY);
    assert_int_equal(s.verify_mismatches, 0);
    assert_true(s.blocks[QU_TIER_NATIVE] >= THREADS * 200 - 8);
  }
  qu_plan_free(p);
  qu_udf_release(u);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

static void swap_under_load_correct(void **state) {
  (void)state;
  swap_under_concurrent_calls(0);
}
static void swap_under_load_broken(void **state) {
  (void)state;
  swap_under_concurrent_calls(1);
}

int main(void) {
  qb_log_set(sink, NULL, QB_INFO);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_correct_native_tier_takes_over_after_verification),
      cmocka_unit_test(a_broken_native_tier_is_caught_and_the_interpreter_kept),
      cmocka_unit_test(a_failed_compile_keeps_the_interpreter),
      cmocka_unit_test(pins_and_no_verification),
      cmocka_unit_test(strings_through_both_tiers),
      cmocka_unit_test(closing_a_registry_drops_its_queued_compiles),
      cmocka_unit_test(swap_under_load_correct),
      cmocka_unit_test(swap_under_load_broken),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
