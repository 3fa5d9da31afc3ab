/* test_interp.c: the interpreter (compile.c + interp.c) through the public API: WAT modules
** (wat2wasm, run at test time; the tests skip when it is missing) exercise control flow,
** multi-value, the slot allocator's aliasing hazards (locals named by pending stack entries,
** results copied over parameters), numeric corner cases with the spec's traps, bulk memory,
** tables and references. Each test states the rule it pins down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wasm.h"
#include "../../support/wat2wasm.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static qw_engine *eng;
static qw_module *mod;
static qw_instance *inst;

static uint8_t *wat2wasm(const char *wat, size_t *len) { return qd_wat2wasm("interp", wat, len); }

/* Instantiate WAT into the globals above; skips the test when wat2wasm is missing. */
#define LOAD(wat)                                                           \
  do {                                                                      \
    if (system("command -v wat2wasm >/dev/null 2>&1")) skip();              \
    load_wat(wat);                                                          \
  } while (0)

static void load_wat(const char *wat) {
  size_t len = 0;
  uint8_t *b = wat2wasm(wat, &len);
  qb_err err;
  assert_non_null(b);
  assert_int_equal(qw_engine_new(NULL, &eng, &err), QB_OK);
  if (qw_module_load(eng, b, len, &mod, &err)) fail_msg("load: %s", err.msg);
  free(b);
  if (qw_instance_new(mod, NULL, NULL, &inst, &err)) fail_msg("instantiate: %s", err.msg);
}

static int teardown(void **state) {
  (void)state;
  qw_instance_free(inst);
  qw_module_free(mod);
  qw_engine_free(eng);
  inst = NULL, mod = NULL, eng = NULL;
  return 0;
}

/* Call export NAME with up to 4 i64-or-i32 args given as slots; returns the trap or NULL and
** the first result slot in *R. */
static const qw_trap *callv(const char *name, uint64_t *r, int n, ...) {
  qw_func *f = qw_instance_func(inst, name);
  uint64_t slots[8] = {0};
  va_list ap;
  if (!f) fail_msg("no export %s", name);
  va_start(ap, n);
  for (int i = 0; i < n; i++) slots[i] = va_arg(ap, uint64_t);
  va_end(ap);
  const qw_trap *t = qw_func_call_raw(f, slots);
  if (r) *r = slots[0];
  return t;
}
#define U(x) ((uint64_t)(x))
#define I32R(name, ...) ({ uint64_t r_; assert_null(callv(name, &r_, __VA_ARGS__)); (int32_t)(uint32_t)r_; })
#define I64R(name, ...) ({ uint64_t r_; assert_null(callv(name, &r_, __VA_ARGS__)); (int64_t)r_; })
#define TRAPS(msg, name, ...) assert_string_equal(qw_trap_message(callv(name, NULL, __VA_ARGS__)), msg)

static uint64_t f64b(double d) {
  uint64_t b;
  memcpy(&b, &d, 8);
  return b;
}
static double bf64(uint64_t b) {
  double d;
  memcpy(&d, &b, 8);
  return d;
}
static uint64_t f32b(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void interp_runs_recursion_and_loops(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func $fib (export \"fib\") (param i32) (result i32)\n"
       "  (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))\n"
       "   (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))\n"
       "                  (call $fib (i32.sub (local.get 0) (i32.const 2)))))))\n"
       " (func (export \"sum\") (param i32) (result i64) (local i64)\n"
       "  (block (loop (br_if 1 (i32.eqz (local.get 0)))\n"
       "   (local.set 1 (i64.add (local.get 1) (i64.extend_i32_u (local.get 0))))\n"
       "   (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br 0)))\n"
       "  (local.get 1)))");
  assert_int_equal(I32R("fib", 1, U(20)), 6765);
  assert_int_equal(I64R("sum", 1, U(100000)), 5000050000LL);
}

/* A pending local.get must read the value from before a later local.set/tee of that local. */
static void interp_keeps_local_reads_before_later_writes(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func (export \"swap_sub\") (param i32 i32) (result i32)\n"
       "  (local.get 0) (local.get 1) (local.set 0) (local.get 0) (i32.sub))\n"
       " (func (export \"tee\") (param i32) (result i32)\n"
       "  (local.get 0) (local.tee 0 (i32.const 100)) (i32.add) (local.get 0) (i32.add))\n"
       " (func (export \"in_block\") (param i32) (result i32)\n"
       "  (local.get 0) (block (local.set 0 (i32.const 7))) (local.get 0) (i32.mul)))");
  assert_int_equal(I32R("swap_sub", 2, U(10), U(3)), 7); /* 10 - 3 */
  assert_int_equal(I32R("tee", 1, U(5)), 205);
  assert_int_equal(I32R("in_block", 1, U(6)), 42);
}

/* Results land in slots 0.. which may be parameters still to be read (ret moves). */
static void interp_returns_multiple_values_over_params(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func $swap (export \"swap\") (param i32 i32) (result i32 i32) (local.get 1) (local.get 0))\n"
       " (func (export \"three\") (result i32 i64 i32) (i32.const 1) (i64.const -2) (i32.const 3))\n"
       " (func (export \"use\") (param i32 i32) (result i32)\n"
       "  (call $swap (local.get 0) (local.get 1)) (i32.sub))\n"
       " (func (export \"blk\") (param i32) (result i32)\n"
       "  (i32.const 10) (local.get 0)\n"
       "  (block (param i32 i32) (result i32 i32) (br_if 0 (i32.const 1)) (drop) (i32.const 99))\n"
       "  (i32.sub))\n"
       " (func (export \"ifp\") (param i32) (result i32)\n"
       "  (i32.const 5) (i32.const 3) (local.get 0)\n"
       "  (if (param i32 i32) (result i32) (then (i32.add)) (else (i32.sub)))))");
  uint64_t s[4] = {1, 2, 0, 0};
  assert_null(qw_func_call_raw(qw_instance_func(inst, "swap"), s));
  assert_int_equal(s[0], 2);
  assert_int_equal(s[1], 1);
  assert_null(qw_func_call_raw(qw_instance_func(inst, "three"), s));
  assert_int_equal((uint32_t)s[0], 1);
  assert_int_equal((int64_t)s[1], -2);
  assert_int_equal((uint32_t)s[2], 3);
  assert_int_equal(I32R("use", 2, U(3), U(10)), 7);
  assert_int_equal(I32R("blk", 1, U(4)), 6);
  assert_int_equal(I32R("ifp", 1, U(1)), 8);
  assert_int_equal(I32R("ifp", 1, U(0)), 2);
}

static void interp_br_table_carries_values_to_each_target(void **state) {
  (void)state;
  LOAD("(module (func (export \"f\") (param i32) (result i32)\n"
       " (block (result i32) (block (result i32) (block (result i32)\n"
       "   (i32.const 7) (local.get 0) (br_table 0 1 2 2))\n"
       "   (i32.const 100) (i32.add) (return))\n"
       "  (i32.const 200) (i32.add) (return))\n"
       " (i32.const 300) (i32.add)))");
  assert_int_equal(I32R("f", 1, U(0)), 107);
  assert_int_equal(I32R("f", 1, U(1)), 207);
  assert_int_equal(I32R("f", 1, U(2)), 307);
  assert_int_equal(I32R("f", 1, U(99)), 307);
}

static void interp_traps_with_the_spec_wording(void **state) {
  (void)state;
  LOAD("(module (memory 1)\n"
       " (func (export \"div\") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))\n"
       " (func (export \"rem\") (param i32 i32) (result i32) (i32.rem_s (local.get 0) (local.get 1)))\n"
       " (func (export \"div64\") (param i64 i64) (result i64) (i64.div_u (local.get 0) (local.get 1)))\n"
       " (func (export \"trunc\") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))\n"
       " (func (export \"unr\") (unreachable))\n"
       " (func (export \"ld\") (param i32) (result i32) (i32.load offset=1 (local.get 0)))\n"
       " (func (export \"st\") (param i32) (i64.store (local.get 0) (i64.const 1))))");
  TRAPS("integer divide by zero", "div", 2, U(1), U(0));
  TRAPS("integer overflow", "div", 2, U(0x80000000u), U(0xffffffffu));
  assert_int_equal(I32R("rem", 2, U(0x80000000u), U(0xffffffffu)), 0);
  TRAPS("integer divide by zero", "div64", 2, U(1), U(0));
  TRAPS("invalid conversion to integer", "trunc", 1, f64b(0.0 / 0.0));
  TRAPS("integer overflow", "trunc", 1, f64b(2147483648.0));
  assert_int_equal(I32R("trunc", 1, f64b(-2147483648.9)), INT32_MIN);
  TRAPS("unreachable", "unr", 0);
  /* effective addresses are 64-bit: 0xffffffff + 1 does not wrap to 0 */
  TRAPS("out of bounds memory access", "ld", 1, U(0xffffffffu));
  TRAPS("out of bounds memory access", "ld", 1, U(65532));
  assert_int_equal(I32R("ld", 1, U(65531)), 0);
  TRAPS("out of bounds memory access", "st", 1, U(65529));
}

static void interp_float_min_max_and_rounding_follow_the_spec(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func (export \"min\") (param f64 f64) (result f64) (f64.min (local.get 0) (local.get 1)))\n"
       " (func (export \"max\") (param f64 f64) (result f64) (f64.max (local.get 0) (local.get 1)))\n"
       " (func (export \"near\") (param f64) (result f64) (f64.nearest (local.get 0)))\n"
       " (func (export \"neg\") (param f32) (result f32) (f32.neg (local.get 0)))\n"
       " (func (export \"sat\") (param f32) (result i32) (i32.trunc_sat_f32_u (local.get 0)))\n"
       " (func (export \"sats\") (param f64) (result i64) (i64.trunc_sat_f64_s (local.get 0))))");
  uint64_t r;
  assert_null(callv("min", &r, 2, f64b(0.0), f64b(-0.0)));
  assert_int_equal(r, f64b(-0.0));
  assert_null(callv("max", &r, 2, f64b(-0.0), f64b(0.0)));
  assert_int_equal(r, f64b(0.0));
  assert_null(callv("min", &r, 2, f64b(1.0), f64b(0.0 / 0.0)));
  assert_true(bf64(r) != bf64(r));
  assert_null(callv("near", &r, 1, f64b(2.5)));
  assert_true(bf64(r) == 2.0);
  assert_null(callv("near", &r, 1, f64b(-3.5)));
  assert_true(bf64(r) == -4.0);
  /* neg flips the sign bit only, NaN payload kept */
  assert_null(callv("neg", &r, 1, U(0x7fa00001u)));
  assert_int_equal((uint32_t)r, 0xffa00001u);
  assert_int_equal((uint32_t)I32R("sat", 1, f32b(-5.0f)), 0);
  assert_int_equal((uint32_t)I32R("sat", 1, f32b(1e20f)), 0xffffffffu);
  assert_int_equal((uint32_t)I32R("sat", 1, f32b(0.0f / 0.0f)), 0);
  assert_int_equal(I64R("sats", 1, f64b(-1e300)), INT64_MIN);
}

static void interp_constants_fold_and_get_slots(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func (export \"k\") (param i64) (result i64)\n"
       "  (i64.add (i64.mul (local.get 0) (i64.const 0x123456789)) (i64.const -1)))\n"
       " (func (export \"kl\") (param i32) (result i32) (i32.sub (i32.const 100) (local.get 0)))\n"
       " (func (export \"sel\") (param i32) (result f64)\n"
       "  (select (f64.const 1.5) (f64.const -2.5) (local.get 0)))\n"
       " (func (export \"cmpk\") (param i32) (result i32) (i32.lt_s (i32.const 5) (local.get 0))))");
  assert_int_equal(I64R("k", 1, U(2)), 2 * 0x123456789LL - 1);
  assert_int_equal(I32R("kl", 1, U(1)), 99);
  uint64_t r;
  assert_null(callv("sel", &r, 1, U(1)));
  assert_true(bf64(r) == 1.5);
  assert_null(callv("sel", &r, 1, U(0)));
  assert_true(bf64(r) == -2.5);
  assert_int_equal(I32R("cmpk", 1, U(6)), 1);
  assert_int_equal(I32R("cmpk", 1, U(5)), 0);
}

/* Loads fold the i32.add that computes their address, but the add still wraps at 32 bits. */
static void interp_folded_address_add_wraps_at_32_bits(void **state) {
  (void)state;
  LOAD("(module (memory 1) (data (i32.const 0) \"\\2a\")\n"
       " (func (export \"ld\") (param i32) (result i32)\n"
       "  (i32.load8_u offset=0 (i32.add (local.get 0) (i32.const 1))))\n"
       " (func (export \"madd\") (param f64 i32) (result f64)\n"
       "  (f64.add (local.get 0) (f64.load (local.get 1)))))");
  assert_int_equal(I32R("ld", 1, U(0xffffffffu)), 42);
  TRAPS("out of bounds memory access", "ld", 1, U(0xffff));
  uint64_t r;
  assert_null(callv("madd", &r, 2, f64b(1.0), U(8)));
  assert_true(bf64(r) == 1.0);
  TRAPS("out of bounds memory access", "madd", 2, f64b(1.0), U(65529));
}

/* Loop counters fused with their compare+branch, with the counter on either side, an
** immediate bound, a non-zero test and a register step; results match the plain loops. */
static void interp_counter_loops_fused_with_their_branch(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func (export \"up\") (param i32) (result i32) (local i32 i32)\n"
       "  (loop (local.set 2 (i32.add (local.get 2) (local.get 1)))\n"
       "        (br_if 0 (i32.gt_s (local.get 0) (local.tee 1 (i32.add (local.get 1) (i32.const 1))))))\n"
       "  (local.get 2))\n"
       " (func (export \"imm\") (result i32) (local i32)\n"
       "  (loop (br_if 0 (i32.lt_u (local.tee 0 (i32.add (local.get 0) (i32.const 7))) (i32.const 100))))\n"
       "  (local.get 0))\n"
       " (func (export \"down\") (param i32) (result i32) (local i32)\n"
       "  (loop (local.set 1 (i32.add (local.get 1) (i32.const 2)))\n"
       "        (br_if 0 (local.tee 0 (i32.add (local.get 0) (i32.const -1)))))\n"
       "  (local.get 1))\n"
       " (func (export \"step\") (param i32 i32) (result i32) (local i32)\n"
       "  (loop (br_if 0 (i32.lt_s (local.tee 2 (i32.add (local.get 2) (local.get 1))) (local.get 0))))\n"
       "  (local.get 2)))");
  assert_int_equal(I32R("up", 1, U(10)), 45);
  assert_int_equal(I32R("imm", 0), 105);
  assert_int_equal(I32R("down", 1, U(5)), 10);
  assert_int_equal(I32R("step", 2, U(100), U(8)), 104);
}

/* Small leaf functions are translated into their callers: locals start at zero on every
** call, `return` and branches to the function's label leave it, results land where the
** call's would, and a trap names the callee. */
static void interp_inlined_calls_behave_like_calls(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func $acc (param i32) (result i32) (local i32)\n"
       "  (local.set 1 (i32.add (local.get 1) (local.get 0))) (local.get 1))\n"
       " (func $early (param i32) (result i32 i32)\n"
       "  (if (i32.eqz (local.get 0)) (then (return (i32.const 1) (i32.const 2))))\n"
       "  (i32.const 3) (local.get 0) (br_if 0 (i32.eq (local.get 0) (i32.const 7)))\n"
       "  (drop) (drop) (i32.const 5) (local.get 0))\n"
       " (func $div (param i32) (result i32) (i32.div_u (i32.const 10) (local.get 0)))\n"
       " (func (export \"twice\") (param i32) (result i32)\n"
       "  (i32.add (call $acc (local.get 0)) (call $acc (local.get 0))))\n"
       " (func (export \"early\") (param i32) (result i32)\n"
       "  (call $early (local.get 0)) (i32.sub))\n"
       " (func (export \"div\") (param i32) (result i32) (i32.add (i32.const 1) (call $div (local.get 0))))\n"
       " (func $bump (param i32 i32) (result i32) (local.set 0 (i32.add (local.get 0) (local.get 1))) (local.get 0))\n"
       " (func (export \"keep\") (param i32) (result i32) (local i32)\n"
       "  (local.set 1 (call $bump (local.get 0) (i32.const 5)))\n"
       "  (i32.add (i32.mul (local.get 0) (i32.const 1000)) (local.get 1))))");
  assert_int_equal(I32R("twice", 1, U(21)), 42);
  assert_int_equal(I32R("early", 1, U(0)), -1); /* 1 - 2 */
  assert_int_equal(I32R("early", 1, U(7)), -4); /* 3 - 7 */
  assert_int_equal(I32R("early", 1, U(9)), -4); /* 5 - 9 */
  assert_int_equal(I32R("div", 1, U(5)), 3);
  TRAPS("integer divide by zero", "div", 1, U(0));
  assert_non_null(strstr(qw_instance_trap_where(inst), "function 2 at offset"));
  /* the callee writes its parameter: the caller's local it came from stays */
  assert_int_equal(I32R("keep", 1, U(7)), 7012);
}

/* `p[i] += x` becomes one load-add-store step; other offsets or addresses must not fuse. */
static void interp_accumulates_into_memory(void **state) {
  (void)state;
  LOAD("(module (memory 1)\n"
       " (func (export \"acc\") (param i32 f64)\n"
       "  (f64.store offset=8 (local.get 0) (f64.add (local.get 1) (f64.load offset=8 (local.get 0)))))\n"
       " (func (export \"acc2\") (param i32 i32)\n"
       "  (i32.store (local.get 0) (i32.add (local.get 1) (i32.load offset=4 (local.get 0)))))\n"
       " (func (export \"accf\") (param i32 f64)\n"
       "  (f64.store (local.get 0) (f64.mul (local.get 1) (f64.load (i32.add (local.get 0) (i32.const 8))))))\n"
       " (func (export \"getf\") (param i32) (result f64) (f64.load (local.get 0)))\n"
       " (func (export \"axpy\") (param i32 f64)\n"
       "  (f64.store (local.get 0) (f64.add (f64.mul (local.get 1) (f64.load (i32.const 8))) (f64.load (local.get 0)))))\n"
       " (func (export \"dot\") (param f64 i32) (result f64)\n"
       "  (f64.add (local.get 0) (f64.mul (f64.load (local.get 1)) (f64.load (local.get 1)))))\n"
       " (func (export \"fma\") (param f64 f64 f64) (result f64)\n"
       "  (f64.add (f64.mul (local.get 0) (local.get 1)) (local.get 2)))\n"
       " (func (export \"geti\") (param i32) (result i32) (i32.load (local.get 0))))");
  uint64_t r;
  assert_null(callv("acc", NULL, 2, U(0), f64b(1.5)));
  assert_null(callv("acc", NULL, 2, U(0), f64b(2.0)));
  assert_null(callv("getf", &r, 1, U(8)));
  assert_true(bf64(r) == 3.5);
  assert_null(callv("accf", NULL, 2, U(0), f64b(2.0)));
  assert_null(callv("getf", &r, 1, U(0)));
  assert_true(bf64(r) == 7.0);
  assert_null(callv("axpy", NULL, 2, U(16), f64b(3.0))); /* mem[16] += 3 * mem[8] */
  assert_null(callv("getf", &r, 1, U(16)));
  assert_true(bf64(r) == 10.5);
  assert_null(callv("dot", &r, 2, f64b(0.5), U(8))); /* 0.5 + mem[8] * mem[8] */
  assert_true(bf64(r) == 12.75);
  /* rounded twice, as two wasm ops: (1 + 2^-52) * (1 - 2^-53) + -1 is 2^-53 exactly only with
  ** a fused multiply-add; separately the product rounds to 1 and the sum is 0 */
  assert_null(callv("fma", &r, 3, f64b(1.0 + 0x1p-52), f64b(1.0 - 0x1p-53), f64b(-1.0)));
  assert_true(bf64(r) == 0.0);
  TRAPS("out of bounds memory access", "axpy", 2, U(65530), f64b(1.0));
  assert_null(callv("acc2", NULL, 2, U(100), U(5)));  /* reads 104, writes 100 */
  assert_int_equal(I32R("geti", 1, U(100)), 5);
  TRAPS("out of bounds memory access", "acc", 2, U(65528), f64b(1.0));
}

static void interp_bulk_memory_tables_and_refs(void **state) {
  (void)state;
  LOAD("(module (memory 1) (data $d \"hello\")\n"
       " (table $t 4 funcref) (elem $e func $a $b)\n"
       " (type $v (func (result i32)))\n"
       " (func $a (result i32) (i32.const 1)) (func $b (result i32) (i32.const 2))\n"
       " (func (export \"init\") (param i32) (memory.init $d (local.get 0) (i32.const 0) (i32.const 5)))\n"
       " (func (export \"copy\") (memory.copy (i32.const 1) (i32.const 0) (i32.const 4)))\n"
       " (func (export \"fill\") (param i32 i32) (memory.fill (local.get 0) (i32.const 7) (local.get 1)))\n"
       " (func (export \"b\") (param i32) (result i32) (i32.load8_u (local.get 0)))\n"
       " (func (export \"drop\") (data.drop $d))\n"
       " (func (export \"tinit\") (table.init $t $e (i32.const 1) (i32.const 0) (i32.const 2)))\n"
       " (func (export \"ci\") (param i32) (result i32) (call_indirect (type $v) (local.get 0)))\n"
       " (func (export \"grow\") (result i32) (table.grow $t (ref.func $a) (i32.const 2)))\n"
       " (func (export \"null\") (param i32) (result i32) (ref.is_null (table.get $t (local.get 0))))\n"
       " (func (export \"mgrow\") (param i32) (result i32) (memory.grow (local.get 0))))");
  assert_null(callv("init", NULL, 1, U(0)));
  assert_int_equal(I32R("b", 1, U(4)), 'o');
  assert_null(callv("copy", NULL, 0));
  assert_int_equal(I32R("b", 1, U(1)), 'h');
  assert_null(callv("fill", NULL, 2, U(65535), U(1)));
  assert_int_equal(I32R("b", 1, U(65535)), 7);
  TRAPS("out of bounds memory access", "fill", 2, U(65535), U(2));
  assert_null(callv("drop", NULL, 0));
  TRAPS("out of bounds memory access", "init", 1, U(0));
  TRAPS("uninitialized element", "ci", 1, U(0));
  TRAPS("undefined element", "ci", 1, U(4));
  assert_null(callv("tinit", NULL, 0));
  assert_int_equal(I32R("ci", 1, U(1)), 1);
  assert_int_equal(I32R("ci", 1, U(2)), 2);
  assert_int_equal(I32R("null", 1, U(0)), 1);
  assert_int_equal(I32R("grow", 0), 4);
  assert_int_equal(I32R("ci", 1, U(5)), 1);
  TRAPS("out of bounds table access", "null", 1, U(6));
  /* memory.grow: old size, the base stays put; -1 past the cap (256 pages) */
  assert_int_equal(I32R("mgrow", 1, U(1)), 1);
  assert_int_equal(I32R("b", 1, U(65535)), 7);
  assert_int_equal(I32R("mgrow", 1, U(1000)), -1);
}

static void interp_call_indirect_checks_the_signature(void **state) {
  (void)state;
  LOAD("(module (table 2 funcref) (elem (i32.const 0) $i $l)\n"
       " (type $ti (func (param i32) (result i32)))\n"
       " (func $i (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))\n"
       " (func $l (param i64) (result i64) (local.get 0))\n"
       " (func (export \"ci\") (param i32 i32) (result i32)\n"
       "  (call_indirect (type $ti) (local.get 1) (local.get 0))))");
  assert_int_equal(I32R("ci", 2, U(0), U(14)), 42);
  TRAPS("indirect call type mismatch", "ci", 2, U(1), U(14));
}

/* Unbounded recursion traps; the instance stays usable afterwards. */
static void interp_deep_recursion_traps_and_recovers(void **state) {
  (void)state;
  LOAD("(module\n"
       " (func $r (export \"r\") (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))\n"
       " (func $d (export \"d\") (param i32) (result i32)\n"
       "  (if (result i32) (local.get 0) (then (i32.add (call $d (i32.sub (local.get 0) (i32.const 1))) (i32.const 1))) (else (i32.const 0)))))");
  TRAPS("call stack exhausted", "r", 1, U(0));
  assert_int_equal(I32R("d", 1, U(5000)), 5000);
  TRAPS("call stack exhausted", "d", 1, U(20000));
  assert_int_equal(I32R("d", 1, U(10)), 10);
}

/* Code after an unconditional branch is never run and never breaks translation. */
static void interp_skips_dead_code(void **state) {
  (void)state;
  LOAD("(module (func (export \"f\") (param i32) (result i32)\n"
       " (block (result i32) (br 0 (i32.const 1)) (i32.add) (block (loop (br 0))) (unreachable))\n"
       " (local.get 0) (i32.add) (return) (drop) (br 0)))");
  assert_int_equal(I32R("f", 1, U(41)), 42);
}

static void interp_globals_and_sign_extension(void **state) {
  (void)state;
  LOAD("(module (global $g (mut i64) (i64.const 5))\n"
       " (func (export \"f\") (param i32) (result i64)\n"
       "  (global.set $g (i64.add (global.get $g) (i64.extend8_s (i64.extend_i32_u (local.get 0)))))\n"
       "  (global.get $g))\n"
       " (func (export \"e16\") (param i32) (result i32) (i32.extend16_s (local.get 0)))\n"
       " (func (export \"wrap\") (param i64) (result i32) (i32.add (i32.wrap_i64 (local.get 0)) (i32.const 1))))");
  assert_int_equal(I64R("f", 1, U(0xff)), 4);
  assert_int_equal(I64R("f", 1, U(0x10)), 20);
  assert_int_equal(I32R("e16", 1, U(0x8000)), -32768);
  assert_int_equal(I32R("wrap", 1, U(0x1ffffffffull)), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(interp_runs_recursion_and_loops, teardown),
      cmocka_unit_test_teardown(interp_keeps_local_reads_before_later_writes, teardown),
      cmocka_unit_test_teardown(interp_returns_multiple_values_over_params, teardown),
      cmocka_unit_test_teardown(interp_br_table_carries_values_to_each_target, teardown),
      cmocka_unit_test_teardown(interp_traps_with_the_spec_wording, teardown),
      cmocka_unit_test_teardown(interp_float_min_max_and_rounding_follow_the_spec, teardown),
      cmocka_unit_test_teardown(interp_constants_fold_and_get_slots, teardown),
      cmocka_unit_test_teardown(interp_folded_address_add_wraps_at_32_bits, teardown),
      cmocka_unit_test_teardown(interp_counter_loops_fused_with_their_branch, teardown),
      cmocka_unit_test_teardown(interp_inlined_calls_behave_like_calls, teardown),
      cmocka_unit_test_teardown(interp_accumulates_into_memory, teardown),
      cmocka_unit_test_teardown(interp_bulk_memory_tables_and_refs, teardown),
      cmocka_unit_test_teardown(interp_call_indirect_checks_the_signature, teardown),
      cmocka_unit_test_teardown(interp_deep_recursion_traps_and_recovers, teardown),
      cmocka_unit_test_teardown(interp_skips_dead_code, teardown),
      cmocka_unit_test_teardown(interp_globals_and_sign_extension, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
