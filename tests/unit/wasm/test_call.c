/* test_call.c: the entry points from C (call.c): typed calls with their argument checks,
** the raw slot path, trap locations, the sandbox budgets (fuel, interrupt from another thread,
** call depth), host functions (including one that calls back into wasm) and calls between
** instances. WAT modules go through wat2wasm at test time; the tests skip without it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "wasm.h"
#include "../../support/wat2wasm.h"

static qw_engine *eng;
static qw_module *mods[4];
static qw_instance *insts[4];
static qw_imports *imps;

static uint8_t *wat2wasm(const char *wat, size_t *len) { return qd_wat2wasm("call", wat, len); }

#define NEED_WAT2WASM() \
  do {                  \
    if (system("command -v wat2wasm >/dev/null 2>&1")) skip(); \
  } while (0)

/* Instantiate WAT as instance I with the import list IMPS (may be NULL) and LIMITS. */
static qw_instance *inst_wat(int i, const char *wat, const qw_limits *limits) {
  size_t len = 0;
  qb_err err;
  uint8_t *b = wat2wasm(wat, &len);
  assert_non_null(b);
  if (!eng) assert_int_equal(qw_engine_new(NULL, &eng, &err), QB_OK);
  if (qw_module_load(eng, b, len, &mods[i], &err)) fail_msg("load: %s", err.msg);
  free(b);
  if (qw_instance_new(mods[i], imps, limits, &insts[i], &err)) fail_msg("instance: %s", err.msg);
  return insts[i];
}

static int teardown(void **state) {
  (void)state;
  for (int i = 3; i >= 0; i--) {
    qw_instance_free(insts[i]);
    insts[i] = NULL;
  }
  for (int i = 3; i >= 0; i--) {
    qw_module_free(mods[i]);
    mods[i] = NULL;
  }
  qw_imports_free(imps);
  imps = NULL;
  qw_engine_free(eng);
  eng = NULL;
  return 0;
}

static const char loops_wat[] =
    "(module\n"
    " (func (export \"spin\") (loop (br 0)))\n"
    " (func (export \"add\") (param i32 f64) (result f64) (f64.add (f64.convert_i32_s (local.get 0)) (local.get 1)))\n"
    " (func (export \"count\") (param i32) (result i32) (local i32)\n"
    "  (loop (local.set 1 (i32.add (local.get 1) (i32.const 1))) (br_if 0 (i32.lt_u (local.get 1) (local.get 0))))\n"
    "  (local.get 1))\n"
    " (func (export \"div\") (param i32) (result i32) (nop) (i32.div_u (i32.const 1) (local.get 0))))";

static void call_checks_argument_count_and_types(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qw_instance *in = inst_wat(0, loops_wat, NULL);
  qw_func *f = qw_instance_func(in, "add");
  qw_val args[2] = {qw_i32(40), qw_f64(2.5)}, res[1];
  qb_err err;
  assert_int_equal(qw_func_call(f, args, 2, res, 1, &err), QB_OK);
  assert_int_equal(res[0].type, QW_F64);
  assert_true(qw_val_f64(res[0]) == 42.5);
  assert_int_equal(qw_func_call(f, args, 1, res, 1, &err), QB_INVAL);
  assert_string_equal(err.msg, "call: expected 2 arguments, got 1");
  args[1] = qw_f32(2.5f);
  assert_int_equal(qw_func_call(f, args, 2, res, 1, &err), QB_INVAL);
  assert_string_equal(err.msg, "call: argument 1: expected f64, got f32");
  args[1] = qw_f64(1);
  assert_int_equal(qw_func_call(f, args, 2, res, 0, &err), QB_INVAL);
}

static void call_raw_uses_slots_in_place(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qw_instance *in = inst_wat(0, loops_wat, NULL);
  uint64_t s[2] = {(uint32_t)-2, 0};
  double d = 0.5;
  memcpy(&s[1], &d, 8);
  assert_null(qw_func_call_raw(qw_instance_func(in, "add"), s));
  memcpy(&d, &s[0], 8);
  assert_true(d == -1.5);
}

static void call_trap_names_the_function_and_offset(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qw_instance *in = inst_wat(0, loops_wat, NULL);
  qw_val a = qw_i32(0), r;
  qb_err err;
  assert_int_equal(qw_func_call(qw_instance_func(in, "div"), &a, 1, &r, 1, &err), QB_TRAP);
  assert_string_equal(err.msg, "integer divide by zero");
  assert_non_null(strstr(qw_instance_trap_where(in), "function 3 at offset 0x"));
  /* the instance stays usable */
  a = qw_i32(1);
  assert_int_equal(qw_func_call(qw_instance_func(in, "div"), &a, 1, &r, 1, &err), QB_OK);
  assert_int_equal(r.of.i32, 1);
}

static void call_fuel_ends_an_infinite_loop(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qw_limits lim = {.fuel = 1000};
  qw_instance *in = inst_wat(0, loops_wat, &lim);
  qb_err err;
  assert_int_equal(qw_instance_fuel(in), 1000);
  assert_int_equal(qw_func_call(qw_instance_func(in, "spin"), NULL, 0, NULL, 0, &err), QB_LIMIT);
  assert_string_equal(err.msg, "fuel exhausted");
  assert_int_equal(qw_instance_fuel(in), 0);
  /* spent: the next call stops at its entry, which is where it says it stopped */
  assert_int_equal(qw_func_call(qw_instance_func(in, "spin"), NULL, 0, NULL, 0, &err), QB_LIMIT);
  assert_non_null(strstr(qw_instance_trap_where(in), "function 0 at offset 0x"));
  /* one unit per call and per back-edge: count(10) = 1 call + 9 back-edges */
  qw_instance_set_fuel(in, 10);
  qw_val a = qw_i32(10), r;
  assert_int_equal(qw_func_call(qw_instance_func(in, "count"), &a, 1, &r, 1, &err), QB_OK);
  assert_int_equal(r.of.i32, 10);
  assert_int_equal(qw_instance_fuel(in), 0);
  qw_instance_set_fuel(in, 10);
  a = qw_i32(11);
  assert_int_equal(qw_func_call(qw_instance_func(in, "count"), &a, 1, &r, 1, &err), QB_LIMIT);
  qw_instance_set_fuel(in, 0); /* unlimited */
  assert_int_equal(qw_instance_fuel(in), UINT64_MAX);
  assert_int_equal(qw_func_call(qw_instance_func(in, "count"), &a, 1, &r, 1, &err), QB_OK);
}

static void call_fuel_charges_bulk_memory_by_length(void **state) {
  /* 200 fills of 1 MiB: 200 back-edges + 200 ops = ~400 units if a fill were one unit, but
  ** 200 * (1 + 16) + 200 = 3600 when a fill pays per 64 KiB: a 1000-unit budget must trap. */
  static const char *wat =
      "(module (memory 16)"
      " (func (export \"fills\") (param $n i32) (local $i i32)"
      "  (loop $l (memory.fill (i32.const 0) (i32.const 7) (i32.const 1048576))"
      "   (local.set $i (i32.add (local.get $i) (i32.const 1)))"
      "   (br_if $l (i32.lt_u (local.get $i) (local.get $n))))))";
  (void)state;
  NEED_WAT2WASM();
  qw_limits lim = {.fuel = 1000, .max_memory_pages = 16};
  qw_instance *in = inst_wat(0, wat, &lim);
  qb_err err;
  qw_val a = qw_i32(200);
  assert_int_equal(qw_func_call(qw_instance_func(in, "fills"), &a, 1, NULL, 0, &err), QB_LIMIT);
  assert_string_equal(err.msg, "fuel exhausted");
  /* a few fills fit: 20 * 18 = 360 units */
  qw_instance_set_fuel(in, 1000);
  a = qw_i32(20);
  assert_int_equal(qw_func_call(qw_instance_func(in, "fills"), &a, 1, NULL, 0, &err), QB_OK);
}

static void *interrupter(void *arg) {
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  qw_instance_interrupt(arg);
  return NULL;
}

static void call_interrupt_from_another_thread_ends_the_loop(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qw_instance *in = inst_wat(0, loops_wat, NULL);
  pthread_t th;
  qb_err err;
  assert_int_equal(pthread_create(&th, NULL, interrupter, in), 0);
  assert_int_equal(qw_func_call(qw_instance_func(in, "spin"), NULL, 0, NULL, 0, &err), QB_LIMIT);
  assert_string_equal(err.msg, "interrupted");
  pthread_join(th, NULL);
  /* delivered once: the next call runs normally */
  qw_val a = qw_i32(5), r;
  assert_int_equal(qw_func_call(qw_instance_func(in, "count"), &a, 1, &r, 1, &err), QB_OK);
}

/* ---- host functions ---- */

static int host_calls;
static qw_instance *reenter;

static const qw_trap *host_twice(void *ud, qw_instance *caller, const uint64_t *args,
                                 uint64_t *results) {
  (void)ud;
  host_calls++;
  assert_non_null(caller);
  if ((uint32_t)args[0] == 13) return QW_TRAP_HOST;
  if ((uint32_t)args[0] == 100 && reenter) { /* call back into wasm from the host */
    uint64_t s[2] = {7, 0};
    const qw_trap *t = qw_func_call_raw(qw_instance_func(reenter, "plain"), s);
    if (t) return t;
    results[0] = (uint32_t)(s[0] + 1000);
    return NULL;
  }
  results[0] = (uint32_t)args[0] * 2;
  return NULL;
}

static void call_host_functions_trap_and_reenter(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qb_err err;
  static const uint8_t i32t[] = {QW_I32};
  assert_int_equal(qw_imports_new(&imps, &err), QB_OK);
  assert_int_equal(qw_imports_add_host(imps, "env", "twice", i32t, 1, i32t, 1, host_twice, NULL, &err),
                   QB_OK);
  qw_instance *in = inst_wat(0,
                             "(module (import \"env\" \"twice\" (func $t (param i32) (result i32)))\n"
                             " (func (export \"f\") (param i32) (result i32)\n"
                             "  (i32.add (call $t (local.get 0)) (i32.const 1)))\n"
                             " (func (export \"plain\") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3))))",
                             NULL);
  qw_val a = qw_i32(20), r;
  assert_int_equal(qw_func_call(qw_instance_func(in, "f"), &a, 1, &r, 1, &err), QB_OK);
  assert_int_equal(r.of.i32, 41);
  a = qw_i32(13);
  assert_int_equal(qw_func_call(qw_instance_func(in, "f"), &a, 1, &r, 1, &err), QB_TRAP);
  assert_string_equal(err.msg, "host function trapped");
  reenter = in;
  a = qw_i32(100);
  assert_int_equal(qw_func_call(qw_instance_func(in, "f"), &a, 1, &r, 1, &err), QB_OK);
  assert_int_equal(r.of.i32, 1022);
  reenter = NULL;
  assert_int_equal(host_calls, 3);
}

/* B imports A's function: the call runs A's code on B's execution context. */
static void call_crosses_instances(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qb_err err;
  qw_instance *a = inst_wat(0,
                            "(module (memory (export \"m\") 1)\n"
                            " (func (export \"get\") (param i32) (result i32) (i32.load (local.get 0)))\n"
                            " (func $r (export \"rec\") (param i32) (result i32) (call $r (local.get 0))))",
                            NULL);
  assert_int_equal(qw_imports_new(&imps, &err), QB_OK);
  assert_int_equal(qw_imports_add_instance(imps, "a", a, &err), QB_OK);
  qw_instance *b = inst_wat(1,
                            "(module (import \"a\" \"get\" (func $g (param i32) (result i32)))\n"
                            " (import \"a\" \"rec\" (func $r (param i32) (result i32)))\n"
                            " (import \"a\" \"m\" (memory 1))\n"
                            " (func (export \"f\") (param i32) (result i32)\n"
                            "  (i32.store (i32.const 8) (local.get 0)) (call $g (i32.const 8)))\n"
                            " (func (export \"oob\") (result i32) (call $g (i32.const 65535)))\n"
                            " (func (export \"deep\") (result i32) (call $r (i32.const 0))))",
                            NULL);
  qw_val v = qw_i32(1234), r;
  assert_int_equal(qw_func_call(qw_instance_func(b, "f"), &v, 1, &r, 1, &err), QB_OK);
  assert_int_equal(r.of.i32, 1234);
  assert_int_equal(qw_func_call(qw_instance_func(b, "oob"), NULL, 0, &r, 1, &err), QB_TRAP);
  assert_string_equal(err.msg, "out of bounds memory access");
  assert_int_equal(qw_func_call(qw_instance_func(b, "deep"), NULL, 0, &r, 1, &err), QB_TRAP);
  assert_string_equal(err.msg, "call stack exhausted");
  assert_int_equal(qw_func_call(qw_instance_func(b, "f"), &v, 1, &r, 1, &err), QB_OK);
}

static void call_depth_limit_comes_from_the_limits(void **state) {
  (void)state;
  NEED_WAT2WASM();
  qw_limits lim = {.max_call_depth = 50};
  qw_instance *in = inst_wat(0,
                             "(module (func $d (export \"d\") (param i32) (result i32)\n"
                             "  (if (result i32) (local.get 0) (then (call $d (i32.sub (local.get 0) (i32.const 1)))) (else (i32.const 9)))))",
                             &lim);
  qw_val a = qw_i32(48), r;
  qb_err err;
  assert_int_equal(qw_func_call(qw_instance_func(in, "d"), &a, 1, &r, 1, &err), QB_OK);
  a = qw_i32(60);
  assert_int_equal(qw_func_call(qw_instance_func(in, "d"), &a, 1, &r, 1, &err), QB_TRAP);
  assert_string_equal(err.msg, "call stack exhausted");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(call_checks_argument_count_and_types, teardown),
      cmocka_unit_test_teardown(call_raw_uses_slots_in_place, teardown),
      cmocka_unit_test_teardown(call_trap_names_the_function_and_offset, teardown),
      cmocka_unit_test_teardown(call_fuel_ends_an_infinite_loop, teardown),
      cmocka_unit_test_teardown(call_fuel_charges_bulk_memory_by_length, teardown),
      cmocka_unit_test_teardown(call_interrupt_from_another_thread_ends_the_loop, teardown),
      cmocka_unit_test_teardown(call_host_functions_trap_and_reenter, teardown),
      cmocka_unit_test_teardown(call_crosses_instances, teardown),
      cmocka_unit_test_teardown(call_depth_limit_comes_from_the_limits, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
