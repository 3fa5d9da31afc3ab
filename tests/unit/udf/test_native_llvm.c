/* test_native_llvm.c: the real native tier (native_llvm.c over src/jit, LLVM) under the UDF
** layer: custom_score compiles in the background, passes the verified swap and serves native
** code with results bit for bit the interpreter's; native code keeps the sandbox's limits (an
** endless loop ends in the fuel trap, and the same instance serves the next block); the hook's
** fields (triple, canonical CPU features) and a missing export's error; the compile limits
** (a module past one stays interpreted, saying why) and the compile's reported peak memory;
** code per export (the hook compiles only the export an entry names). */
#include "udf_test_util.h"

#include <math.h>

#define BLOCK 64

static qu_compiler *llvm_compiler(const qu_compiler_options *o) {
  qu_native_ops ops;
  qu_compiler *c = NULL;
  qb_err err = {0};
  if (qu_native_llvm(&ops, &err)) fail_msg("hook: %s", err.msg);
  if (qu_compiler_new(&ops, o, &c, &err)) fail_msg("compiler: %s", err.msg);
  return c;
}

static qu_udf *load_with(qw_engine *e, const qu_manifest *m, const char *text, qu_compiler *c,
                         uint64_t fuel) {
  size_t len;
  uint8_t *b = wat(text, &len);
  qu_options o = {0};
  qu_udf *u = NULL;
  qb_err err = {0};
  o.compiler = c;
  o.fuel_per_doc = fuel;
  if (qu_udf_load(e, m, 3, b, len, &o, &u, &err)) fail_msg("load: %s", err.msg);
  free(b);
  return u;
}

static qu_plan *plan_of(const qu_manifest *m, const char *params) {
  json_t *p = json_of(params);
  json_t *c = json_of("{\"user\": {\"tier\": 1}}");
  qu_plan *plan = NULL;
  qb_err err = {0};
  if (qu_plan_new(m, p, c, &plan, &err)) fail_msg("plan: %s", err.msg);
  json_decref(p);
  json_decref(c);
  return plan;
}

static const char custom_params[] = "{\"boost_factor\": 1.2, \"recency_days\": \"_source.days\","
                                    " \"user_tier\": \"_context.user.tier\"}";

/* Block B of custom_score's inputs (odd values included: negative and huge days, NaN score). */
static qb_code run_block(qu_exec *x, size_t b, double *res, qb_err *err) {
  double score[BLOCK];
  int64_t days[BLOCK];
  uint8_t present[BLOCK];
  for (size_t i = 0; i < BLOCK; i++) {
    size_t d = b * BLOCK + i;
    score[i] = d % 97 == 5 ? NAN : (double)(d % 1000) / 7 - 3;
    days[i] = d % 13 == 0 ? -(int64_t)d : (int64_t)(d % 800) * (d % 17 == 0 ? 100000 : 1);
    present[i] = d % 11 != 0;
  }
  qu_col col = {NULL, days, NULL, present};
  qu_block in = {BLOCK, score, 1, &col};
  qu_out out = {res, NULL, NULL, NULL};
  return qu_exec_run(x, &in, &out, err);
}

static void run_ok(qu_exec *x, size_t b, double *res) {
  qb_err err = {0};
  if (run_block(x, b, res, &err)) fail_msg("block %zu: %s", b, err.msg);
}

static int same_bits(double a, double b) { return !memcmp(&a, &b, sizeof a); }

static void custom_score_goes_native_bit_for_bit(void **state) {
  (void)state;
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_compiler *c = llvm_compiler(NULL);
  enum { N = 40 };
  double want[N * BLOCK], res[BLOCK];
  /* the interpreter's answers: a version without a compiler */
  qu_udf *ui = load_with(e, m, custom_score_wat, NULL, 0);
  qu_plan *p = plan_of(m, custom_params);
  qu_exec *x = NULL;
  qb_err err = {0};
  if (qu_exec_new(ui, p, &x, &err)) fail_msg("exec: %s", err.msg);
  for (size_t b = 0; b < N; b++) run_ok(x, b, want + b * BLOCK);
  qu_exec_free(x);
  qu_udf_release(ui);

  qu_udf *u = load_with(e, m, custom_score_wat, c, 0);
  if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
  qu_compiler_wait_idle(c);
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  if (st.state != QU_NATIVE_VERIFYING) fail_msg("state %s: %s", qu_native_state_name(st.state),
                                                st.reason);
  for (size_t b = 0; b < N; b++) {
    run_ok(x, b, res);
    for (size_t i = 0; i < BLOCK; i++)
      if (!same_bits(res[i], want[b * BLOCK + i]))
        fail_msg("block %zu doc %zu: %.17g, interpreter %.17g", b, i, res[i], want[b * BLOCK + i]);
  }
  qu_udf_tier_status(u, &st);
  assert_int_equal(st.state, QU_NATIVE_READY);
  assert_string_equal(qu_origin_name(st.origin), "native-jit");
  assert_int_equal(st.verified_blocks, 8);
  qu_stats s;
  qu_udf_stats(u, &s);
  assert_int_equal(s.mode, QU_TIER_NATIVE);
  assert_int_equal(s.verify_mismatches, 0);
  assert_int_equal(s.blocks[QU_TIER_NATIVE], N - 8);
  assert_int_equal(s.calls[QU_TIER_NATIVE], (N - 8) * BLOCK);
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

/* Spins for ever on a negative score, else doubles it. */
static const char spin_wat[] =
    "(module (func (export \"spin\") (param $s f64) (result f64)\n"
    "  (if (f64.lt (local.get $s) (f64.const 0)) (then (loop (br 0))))\n"
    "  (f64.mul (local.get $s) (f64.const 2))))";
static const char spin_manifest[] =
    "{\"name\": \"spin\", \"export\": \"spin\", \"kind\": \"score\","
    " \"params\": [{\"name\": \"s\", \"type\": \"f64\", \"default\": \"_score\"}],"
    " \"returns\": \"f64\"}";

static qb_code spin_block(qu_exec *x, double first, double *res, qb_err *err) {
  double score[BLOCK];
  for (size_t i = 0; i < BLOCK; i++) score[i] = i ? (double)i : first;
  qu_block in = {BLOCK, score, 0, NULL};
  qu_out out = {res, NULL, NULL, NULL};
  return qu_exec_run(x, &in, &out, err);
}

static void native_code_keeps_the_fuel_limit(void **state) {
  (void)state;
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(spin_manifest);
  /* pinned native, no verification: the load compiles and native code serves at once */
  qu_compiler_options o = {.pin = QU_PIN_NATIVE, .verify_blocks = UINT32_MAX};
  qu_compiler *c = llvm_compiler(&o);
  qu_udf *u = load_with(e, m, spin_wat, c, 100000);
  qu_plan *p = plan_of(m, "{}");
  qu_exec *x = NULL;
  qb_err err = {0};
  double res[BLOCK];
  if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  assert_int_equal(st.state, QU_NATIVE_READY);
  if (spin_block(x, 0.5, res, &err)) fail_msg("block: %s", err.msg);
  assert_true(res[0] == 1.0 && res[BLOCK - 1] == 2.0 * (BLOCK - 1));
  for (int round = 0; round < 2; round++) {
    assert_int_equal(spin_block(x, -1, res, &err), QB_LIMIT);
    assert_non_null(strstr(err.msg, "fuel"));
    if (spin_block(x, 3, res, &err)) fail_msg("after the trap: %s", err.msg); /* same instance */
    assert_true(res[0] == 6.0);
  }
  qu_stats s;
  qu_udf_stats(u, &s);
  assert_int_equal(s.blocks[QU_TIER_INTERP], 0);
  assert_true(s.calls[QU_TIER_NATIVE] >= 3 * BLOCK);
  qu_exec_free(x);
  qu_plan_free(p);
  qu_udf_release(u);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

/* The compile limits: a module past one stays on the interpreter with the reason (and still
** serves); under them it compiles and the compile's peak memory is reported. */
static void compile_limits_fall_back_to_the_interpreter(void **state) {
  (void)state;
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(spin_manifest);
  static const struct {
    qu_compiler_options o;
    const char *why;
  } cases[] = {
      {{.pin = QU_PIN_NATIVE, .max_functions = 1}, NULL}, /* spin has one: at the limit */
      {{.pin = QU_PIN_NATIVE, .max_code_bytes = 8}, "bytes of code, over the JIT's limit of 8"},
      {{.pin = QU_PIN_NATIVE, .max_body_bytes = 4}, "a function body of"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    qu_compiler *c = llvm_compiler(&cases[k].o);
    qu_udf *u = load_with(e, m, spin_wat, c, 100000);
    qu_tier_status st;
    qu_udf_tier_status(u, &st);
    if (!cases[k].why) {
      if (st.state != QU_NATIVE_VERIFYING && st.state != QU_NATIVE_READY)
        fail_msg("case %zu: %s: %s", k, qu_native_state_name(st.state), st.reason);
      qu_stats s;
      qu_udf_stats(u, &s);
      /* LLVM needs some memory: a probe that sees none is broken */
      assert_true(st.compile_memory_bytes > 0);
      assert_true(s.compile_memory_bytes == st.compile_memory_bytes);
      assert_true(st.compile_memory_bytes < (512u << 20)); /* a tiny module, bounded */
    } else {
      assert_int_equal(st.state, QU_NATIVE_FAILED);
      if (!strstr(st.reason, cases[k].why)) fail_msg("case %zu: reason \"%s\"", k, st.reason);
      assert_string_equal(qu_origin_name(st.origin), "interpreter");
      qu_plan *p = plan_of(m, "{}");
      qu_exec *x = NULL;
      qb_err err = {0};
      double res[BLOCK];
      if (qu_exec_new(u, p, &x, &err)) fail_msg("exec: %s", err.msg);
      if (spin_block(x, 0.5, res, &err)) fail_msg("interpreted block: %s", err.msg);
      assert_true(res[0] == 1.0);
      qu_exec_free(x);
      qu_plan_free(p);
    }
    qu_udf_release(u);
    qu_compiler_free(c);
  }
  qu_manifest_free(m);
  qw_engine_free(e);
}

/* Every kind of argument column a block driver reads, against the interpreter bit for bit:
** an i32 param from an i64 column (values past 32 bits wrap), f64 and i64 columns, a constant
** and _score; columns with and without present flags in turn on one exec (a column passed as
** the block's own array one block, copied the next) and blocks of varying sizes; then columns
** whose missing values are filled in already (qu_exec_set_filled: passed as they are). */
static const char mix_wat[] =
    "(module (func (export \"mix\") (param $a i32) (param $b f64) (param $c i64) (param $k f64)"
    "  (param $s f64) (result f64)\n"
    "  (f64.add (f64.add (f64.mul (f64.convert_i32_s (local.get $a)) (local.get $k))\n"
    "                    (local.get $b))\n"
    "           (f64.add (f64.mul (f64.convert_i64_s (local.get $c)) (f64.const 0.5))\n"
    "                    (local.get $s)))))";
static const char mix_manifest[] =
    "{\"name\": \"mix\", \"export\": \"mix\", \"kind\": \"score\","
    " \"params\": [{\"name\": \"a\", \"type\": \"i32\", \"missing\": 7},"
    "              {\"name\": \"b\", \"type\": \"f64\", \"missing\": 0.25},"
    "              {\"name\": \"c\", \"type\": \"i64\", \"missing\": -3},"
    "              {\"name\": \"k\", \"type\": \"f64\"},"
    "              {\"name\": \"s\", \"type\": \"f64\", \"default\": \"_score\"}],"
    " \"returns\": \"f64\"}";

/* FILL: put the manifest's missing values where present is 0 (qu_exec_set_filled's promise) */
static void mix_run_f(qu_exec *x, const qu_plan *p, size_t n, int with_present, size_t salt,
                      double *res, int fill) {
  static double score[QU_BLOCK_MAX], f[QU_BLOCK_MAX];
  static int64_t iv[QU_BLOCK_MAX], cv[QU_BLOCK_MAX];
  static uint8_t pa[QU_BLOCK_MAX], pb[QU_BLOCK_MAX], pc[QU_BLOCK_MAX];
  for (size_t i = 0; i < n; i++) {
    size_t d = i + salt;
    score[i] = (double)(d % 101) / 3;
    f[i] = d % 29 == 0 ? NAN : (double)d * 1.25 - 40;
    iv[i] = d % 3 == 0 ? (int64_t)0x100000000ll * (int64_t)(d % 5 + 1) + (int64_t)d
            : d % 3 == 1 ? -(int64_t)d : (int64_t)0x7fffffffll + (int64_t)d;
    cv[i] = (int64_t)d * 1000003 - (d % 2 ? (int64_t)1 << 40 : 0);
    pa[i] = d % 7 != 0;
    pb[i] = d % 5 != 0;
    pc[i] = d % 3 != 0;
    if (fill && with_present) {
      if (!pa[i]) iv[i] = 7;
      if (!pb[i]) f[i] = 0.25;
      if (!pc[i]) cv[i] = -3;
    }
  }
  qu_col cols[3];
  assert_int_equal(qu_plan_ncols(p), 3);
  for (uint32_t k = 0; k < 3; k++) {
    const char *fld = qu_plan_col(p, k)->field;
    qu_col c = {NULL, NULL, NULL, NULL};
    if (!strcmp(fld, "a")) c = (qu_col){NULL, iv, NULL, with_present ? pa : NULL};
    else if (!strcmp(fld, "b")) c = (qu_col){f, NULL, NULL, with_present ? pb : NULL};
    else c = (qu_col){NULL, cv, NULL, with_present ? pc : NULL};
    cols[k] = c;
  }
  qu_block in = {n, score, 3, cols};
  uint8_t present[QU_BLOCK_MAX];
  qu_out out = {res, NULL, NULL, present};
  qb_err err = {0};
  memset(present, 0, n);
  if (qu_exec_run(x, &in, &out, &err)) fail_msg("block of %zu: %s", n, err.msg);
  for (size_t i = 0; i < n; i++) assert_int_equal(present[i], 1);
}

static void mix_run(qu_exec *x, const qu_plan *p, size_t n, int with_present, size_t salt,
                    double *res) {
  mix_run_f(x, p, n, with_present, salt, res, 0);
}

static void block_columns_read_as_the_interpreter_does(void **state) {
  (void)state;
  static const size_t sizes[] = {1, QU_BLOCK_MAX, 5, 64, QU_BLOCK_MAX, 3, 200};
  enum { NB = sizeof sizes / sizeof *sizes };
  static double want[2 * NB][QU_BLOCK_MAX], got[QU_BLOCK_MAX];
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(mix_manifest);
  qu_plan *p = plan_of(m, "{\"a\": \"_source.a\", \"b\": \"_source.b\", \"c\": \"_source.c\","
                          " \"k\": 2.5}");
  qu_compiler_options o = {.pin = QU_PIN_NATIVE, .verify_blocks = UINT32_MAX};
  qu_compiler *c = llvm_compiler(&o);
  qu_udf *ui = load_with(e, m, mix_wat, NULL, 0), *un = load_with(e, m, mix_wat, c, 0);
  qu_exec *xi = NULL, *xn = NULL;
  qb_err err = {0};
  if (qu_exec_new(ui, p, &xi, &err) || qu_exec_new(un, p, &xn, &err)) fail_msg("exec: %s", err.msg);
  qu_tier_status st;
  qu_udf_tier_status(un, &st);
  if (st.state != QU_NATIVE_READY) fail_msg("state %s: %s", qu_native_state_name(st.state),
                                            st.reason);
  for (size_t r = 0; r < 2 * NB; r++) mix_run(xi, p, sizes[r % NB], (int)(r & 1), r * 37, want[r]);
  for (size_t r = 0; r < 2 * NB; r++) {
    mix_run(xn, p, sizes[r % NB], (int)(r & 1), r * 37, got);
    for (size_t i = 0; i < sizes[r % NB]; i++)
      if (!same_bits(got[i], want[r][i]))
        fail_msg("block %zu (%zu docs, present %d) doc %zu: native %.17g, interpreter %.17g", r,
                 sizes[r % NB], (int)(r & 1), i, got[i], want[r][i]);
  }
  /* the query layer's columns: missing values filled in already, passed to the driver as is */
  qu_exec_set_filled(xn, 1);
  for (size_t r = 0; r < 2 * NB; r++) {
    mix_run_f(xn, p, sizes[r % NB], (int)(r & 1), r * 37, got, 1);
    for (size_t i = 0; i < sizes[r % NB]; i++)
      if (!same_bits(got[i], want[r][i]))
        fail_msg("filled block %zu (%zu docs, present %d) doc %zu: native %.17g, interpreter "
                 "%.17g", r, sizes[r % NB], (int)(r & 1), i, got[i], want[r][i]);
  }
  qu_stats s;
  qu_udf_stats(un, &s);
  assert_int_equal(s.blocks[QU_TIER_NATIVE], 4 * NB);
  assert_int_equal(s.blocks[QU_TIER_INTERP], 0);
  qu_exec_free(xi);
  qu_exec_free(xn);
  qu_udf_release(ui);
  qu_udf_release(un);
  qu_plan_free(p);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
}

static void the_hook_describes_this_host(void **state) {
  (void)state;
  qu_native_ops ops;
  qb_err err = {0};
  assert_int_equal(qu_native_llvm(&ops, &err), QB_OK);
  assert_string_equal(ops.name, "llvm");
  assert_true(ops.abi_version > 0);
#if defined(__x86_64__)
  assert_string_equal(ops.triple, "x86_64-linux");
#elif defined(__aarch64__)
  assert_string_equal(ops.triple, "aarch64-linux");
#endif
  assert_true(strlen(ops.cpu_features) < 64);
  /* canonical: "+a,+b" in sorted order, no duplicates */
  char prev[32] = "";
  for (const char *f = ops.cpu_features; *f;) {
    assert_int_equal(*f, '+');
    const char *end = strchr(f, ',');
    size_t n = end ? (size_t)(end - f) : strlen(f);
    char cur[32];
    assert_true(n > 1 && n < sizeof cur);
    memcpy(cur, f + 1, n - 1);
    cur[n - 1] = 0;
    assert_true(strcmp(prev, cur) < 0);
    memcpy(prev, cur, n);
    f = end ? end + 1 : f + n;
  }
  qw_engine *e = engine_new();
  qw_module *mod = module_of(e, custom_score_wat);
  qu_native *n = NULL;
  assert_int_equal(ops.compile(ops.ud, mod, &n, &err), QB_OK);
  qu_native_entry ne;
  assert_int_equal(ops.entry(ops.ud, n, "nope", &ne, &err), QB_NOTFOUND);
  assert_int_equal(ops.entry(ops.ud, n, "custom_score", &ne, &err), QB_OK);
  assert_true(ne.block && !ne.doc);
  qb_buf obj;
  qb_buf_init(&obj);
  assert_int_equal(ops.emit(ops.ud, n, &obj, &err), QB_OK);
  qu_native *n2 = NULL;
  assert_int_equal(ops.load(ops.ud, mod, (const uint8_t *)obj.data, obj.len, &n2, &err), QB_OK);
  /* a truncated object is an error, not a crash */
  qu_native *n3 = NULL;
  assert_int_not_equal(ops.load(ops.ud, mod, (const uint8_t *)obj.data, obj.len / 2, &n3, &err),
                       QB_OK);
  assert_null(n3);
  qb_buf_fini(&obj);
  ops.free(ops.ud, n2);
  ops.free(ops.ud, n);
  qw_module_free(mod);
  qw_engine_free(e);
}

/* The hook compiles only the export an entry names (and what it reaches), on that entry: a
** second export of the same module, and an export an object loaded back was not compiled for
** (compiled then), give the right results too. */
static void each_export_gets_code_of_its_own(void **state) {
  (void)state;
  static const char two[] =
      "(module (memory 1)"
      " (func $big (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))"
      " (func (export \"a\") (param i32) (result i32) (i32.add (local.get 0) (i32.const 7)))"
      " (func (export \"b\") (param i32) (result i32) (call $big (local.get 0))))";
  qu_native_ops ops;
  qb_err err = {0};
  assert_int_equal(qu_native_llvm(&ops, &err), QB_OK);
  qw_engine *e = engine_new();
  qw_module *mod = module_of(e, two);
  qw_instance *inst = NULL;
  assert_int_equal(qw_instance_new(mod, NULL, NULL, &inst, &err), QB_OK);
  uint64_t col[3] = {1, 20, 300}, res[3];
  const uint64_t *cols[1] = {col};
  qu_native *n = NULL, *n2 = NULL;
  qu_native_entry na, nb, nb2;
  assert_int_equal(ops.compile(ops.ud, mod, &n, &err), QB_OK);
  assert_int_equal(ops.entry(ops.ud, n, "a", &na, &err), QB_OK);
  assert_int_equal(ops.entry(ops.ud, n, "b", &nb, &err), QB_OK);
  assert_null(na.block(na.code, inst, 3, cols, res));
  for (int i = 0; i < 3; i++) assert_int_equal(res[i], col[i] + 7);
  assert_null(nb.block(nb.code, inst, 3, cols, res));
  for (int i = 0; i < 3; i++) assert_int_equal(res[i], col[i] * 3);
  qb_buf obj;
  qb_buf_init(&obj);
  assert_int_equal(ops.emit(ops.ud, n, &obj, &err), QB_OK); /* made for "a" */
  assert_int_equal(ops.load(ops.ud, mod, (const uint8_t *)obj.data, obj.len, &n2, &err), QB_OK);
  qb_buf_fini(&obj);
  assert_int_equal(ops.entry(ops.ud, n2, "b", &nb2, &err), QB_OK);
  assert_null(nb2.block(nb2.code, inst, 3, cols, res));
  for (int i = 0; i < 3; i++) assert_int_equal(res[i], col[i] * 3);
  ops.free(ops.ud, n2);
  ops.free(ops.ud, n);
  qw_instance_free(inst);
  qw_module_free(mod);
  qw_engine_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(custom_score_goes_native_bit_for_bit),
      cmocka_unit_test(native_code_keeps_the_fuel_limit),
      cmocka_unit_test(compile_limits_fall_back_to_the_interpreter),
      cmocka_unit_test(the_hook_describes_this_host),
      cmocka_unit_test(block_columns_read_as_the_interpreter_does),
      cmocka_unit_test(each_export_gets_code_of_its_own),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
