/* test_jit.c: the native tier (src/jit) on real modules (wat2wasm at test time; skipped when
** it is missing): traps with the interpreter's wording and places, a tier switch between two
** calls on one instance, fuel and interrupt ending (loop (br 0)), calls and call_indirect
** across tiers and instances, a trap crossing the boundary, AOT objects for two targets and
** loading one back, compiles on two threads at once. Each test states the rule it pins down. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jit.h"
#include "wasm.h"
#include "../../support/wat2wasm.h"

typedef struct env {
  qw_engine *eng;
  qw_module *mod;
  qw_instance *inst;
} env;

#define NEED_WAT2WASM()                                               \
  do {                                                                \
    if (system("command -v wat2wasm >/dev/null 2>&1")) skip();        \
  } while (0)

static qw_module *load(qw_engine *eng, const char *wat) {
  size_t len = 0;
  uint8_t *b = qd_wat2wasm("jit", wat, &len);
  qb_err err;
  qw_module *m = NULL;
  assert_non_null(b);
  assert_int_equal(qw_module_load(eng, b, len, &m, &err), QB_OK);
  free(b);
  return m;
}

static void setup(env *e, const char *wat, const qw_imports *im) {
  qb_err err;
  assert_int_equal(qw_engine_new(NULL, &e->eng, &err), QB_OK);
  e->mod = load(e->eng, wat);
  assert_int_equal(qw_instance_new(e->mod, im, NULL, &e->inst, &err), QB_OK);
}

static void teardown(env *e) {
  qw_instance_free(e->inst);
  qw_module_free(e->mod);
  qw_engine_free(e->eng);
}

static bool jit_attach_with(env *e, const qj_options *o) {
  qj_code *c = NULL;
  qb_err err;
  assert_int_equal(qj_compile(e->mod, o, &c, &err), QB_OK);
  bool guarded = qj_code_guarded(c);
  assert_int_equal(qj_attach(c, e->inst, &err), QB_OK);
  qj_code_free(c);
  return guarded;
}

static void jit_attach(env *e) {
  qj_code *c = NULL;
  qb_err err;
  assert_int_equal(qj_compile(e->mod, NULL, &c, &err), QB_OK);
  assert_int_equal(qj_attach(c, e->inst, &err), QB_OK);
  qj_code_free(c); /* the instance holds its reference */
}

static qb_code call_i32(qw_instance *inst, const char *name, uint32_t a, uint32_t b, uint32_t *r,
                        qb_err *err) {
  qw_func *f = qw_instance_func(inst, name);
  assert_non_null(f);
  qw_val args[2] = {{.type = QW_I32, .of.i32 = a}, {.type = QW_I32, .of.i32 = b}};
  qw_val res[1];
  uint32_t np = 0;
  qw_sig sig;
  qw_func_sig(f, &sig);
  np = sig.nparams;
  qb_code rc = qw_func_call(f, args, np, res, 1, err);
  if (!rc && r) *r = res[0].of.i32;
  return rc;
}

/* ---- traps ---------------------------------------------------------------------------------- */

static const char *TRAPS =
    "(module (memory 1)"
    " (func (export \"div\") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))"
    " (func (export \"rem\") (param i32 i32) (result i32) (i32.rem_s (local.get 0) (local.get 1)))"
    " (func (export \"load\") (param i32 i32) (result i32) (i32.load offset=2 (local.get 0)))"
    " (func (export \"cvt\") (param i32 i32) (result i32)"
    "   (i32.trunc_f32_s (f32.div (f32.convert_i32_s (local.get 0)) (f32.convert_i32_s (local.get 1)))))"
    " (func (export \"unr\") (param i32 i32) (result i32) unreachable))";

/* Native traps carry the interpreter's code, wording and place (function, byte offset). With
** guard pages (opt-in, where the host has them) an out-of-bounds access is found by the
** fault handler, which does not know the place; with explicit checks it is exact. */
static void traps_match(bool explicit_bounds) {
  struct { const char *fn; uint32_t a, b; } cases[] = {
      {"div", 1, 0}, {"div", 0x80000000u, 0xffffffffu}, {"load", 65534, 0},
      {"load", 0xffffffffu, 0}, {"cvt", 0, 0}, {"cvt", 0x7fffffff, 1}, {"unr", 0, 0}};
  env in, nat;
  qj_options o = {.guard_pages = !explicit_bounds};
  setup(&in, TRAPS, NULL);
  setup(&nat, TRAPS, NULL);
  bool guarded = jit_attach_with(&nat, &o);
  if (explicit_bounds) assert_false(guarded);
#if defined(__x86_64__) || defined(__aarch64__)
  else assert_true(guarded); /* 64-bit hosts have guard pages, ASan builds too */
#endif
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    qb_err e1, e2;
    qb_code r1 = call_i32(in.inst, cases[i].fn, cases[i].a, cases[i].b, NULL, &e1);
    qb_code r2 = call_i32(nat.inst, cases[i].fn, cases[i].a, cases[i].b, NULL, &e2);
    assert_int_equal(r1, QB_TRAP);
    assert_int_equal(r2, r1);
    assert_string_equal(e2.msg, e1.msg);
    if (guarded && !strcmp(cases[i].fn, "load"))
      assert_string_equal(qw_instance_trap_where(nat.inst), "native code (memory guard page)");
    else
      assert_string_equal(qw_instance_trap_where(nat.inst), qw_instance_trap_where(in.inst));
  }
  uint32_t r = 1;
  assert_int_equal(call_i32(nat.inst, "rem", 0x80000000u, 0xffffffffu, &r, NULL), QB_OK);
  assert_int_equal(r, 0); /* spec: INT_MIN rem -1 is 0, no trap */
  /* after a guard-page trap the instance keeps working on the native tier */
  assert_int_equal(call_i32(nat.inst, "load", 0, 0, &r, NULL), QB_OK);
  teardown(&in);
  teardown(&nat);
}

static void jit_traps_match_the_interpreter(void **state) {
  NEED_WAT2WASM();
  traps_match(false);
}

static void jit_traps_match_the_interpreter_with_explicit_bounds(void **state) {
  NEED_WAT2WASM();
  traps_match(true);
}

/* ---- block drivers --------------------------------------------------------------------------- */

static const char *SCORE =
    "(module (memory 1)"
    " (func $w (param f64) (result f64) (f64.mul (local.get 0) (f64.const 0.75)))"
    " (func (export \"score\") (param f64 i32 f32) (result f64)"
    "   (if (i32.eq (local.get 1) (i32.const 13)) (then (unreachable)))"
    "   (f64.add (call $w (local.get 0))"
    "     (f64.add (f64.promote_f32 (f32.sqrt (local.get 2)))"
    "       (f64.convert_i32_s (i32.load (i32.and (local.get 1) (i32.const 1020)))))))"
    " (data (i32.const 0) \"\\01\\00\\00\\00\\ff\\ff\\ff\\ff\"))";

/* One block-driver call gives the bits of N calls through the entry (NaN from sqrt of a
** negative, -0, infinities), the same fuel left; a trap stops the block at that document with
** the per-call trap and the results before it. */
static void jit_block_driver_matches_one_call_per_document(void **state) {
  NEED_WAT2WASM();
  enum { N = 1000 };
  static uint64_t c0[N], c1[N], c2[N], res[N], want[N];
  const uint64_t *cols[3] = {c0, c1, c2};
  env e, per;
  setup(&e, SCORE, NULL);
  setup(&per, SCORE, NULL);
  jit_attach(&per);
  qj_code *c = NULL;
  qb_err err;
  assert_int_equal(qj_compile(e.mod, NULL, &c, &err), QB_OK);
  void *b = qj_block_entry(c, "score");
  assert_non_null(b);
  assert_null(qj_block_entry(c, "nope"));
  double xs[] = {1.5, -0.0, 1e308, -1e308, 0.0 / 0.0, 3.0};
  float fs[] = {2.0f, -1.0f, -0.0f, 1.0f / 0.0f, 16.0f};
  for (size_t i = 0; i < N; i++) {
    double x = xs[i % 6] * (double)(i + 1);
    float f = fs[i % 5];
    uint32_t fb;
    memcpy(&c0[i], &x, 8);
    c1[i] = (uint32_t)(i * 4); /* never 13 */
    memcpy(&fb, &f, 4);
    c2[i] = fb;
  }
  qw_func *f = qw_instance_func(per.inst, "score");
  qw_instance_set_fuel(per.inst, 1u << 20);
  qw_instance_set_fuel(e.inst, 1u << 20);
  for (size_t i = 0; i < N; i++) {
    uint64_t slots[3] = {c0[i], c1[i], c2[i]};
    assert_null(qw_func_call_raw(f, slots));
    want[i] = slots[0];
  }
  assert_null(qj_block_call(c, b, e.inst, N, cols, res));
  assert_memory_equal(res, want, sizeof res);
  assert_int_equal(qw_instance_fuel(e.inst), qw_instance_fuel(per.inst));
  /* a trap at document 500 */
  c1[500] = 13;
  memset(res, 0, sizeof res);
  const qw_trap *t = qj_block_call(c, b, e.inst, N, cols, res);
  uint64_t slots[3] = {c0[500], c1[500], c2[500]};
  const qw_trap *t1 = qw_func_call_raw(f, slots);
  assert_non_null(t);
  assert_ptr_equal(t, t1);
  assert_memory_equal(res, want, 500 * sizeof *res);
  assert_int_equal(res[500], 0);
  qj_code_free(c);
  teardown(&e);
  teardown(&per);
}

/* A check-free export: no loop, no memory, nothing that traps; a call taken on some documents
** only (the fuel charged varies per document: $w has too many locals for the interpreter to
** inline it, so its call pays a unit), a call the interpreter inlines ($tier: it pays nothing,
** in native code too), a br_table, a mutable global carried from document to document, NaN
** and -0 through float ops, trunc_sat. */
static const char *CHECKFREE =
    "(module (global $acc (mut i64) (i64.const 7))"
    " (func $w (param f64) (result f64) (local i32 i32 i32 i32 i32 i32 i32 i32 i32)"
    "   (f64.mul (local.get 0) (f64.const 0.75)))"
    " (func $tier (param i32) (result f64)"
    "   (block $o (block $b (block $a (br_table $a $b $o (local.get 0)))"
    "     (return (f64.const 1.5))) (return (f64.const -0.0))) (f64.const 0.8))"
    " (func (export \"score\") (param f64 i32 f32) (result f64)"
    "   (local $x f64)"
    "   (global.set $acc (i64.add (global.get $acc) (i64.extend_i32_u (local.get 1))))"
    "   (local.set $x (f64.promote_f32 (f32.sqrt (local.get 2))))"
    "   (if (i32.and (local.get 1) (i32.const 1))"
    "     (then (local.set $x (f64.add (local.get $x) (call $w (local.get 0))))))"
    "   (f64.add (f64.mul (local.get $x) (call $tier (i32.and (local.get 1) (i32.const 3))))"
    "     (f64.add (f64.convert_i64_s (global.get $acc))"
    "       (f64.convert_i32_s (i32.trunc_sat_f64_s (local.get 0))))))"
    " (func (export \"get\") (result i64) (global.get $acc))"
    " (memory 1) (data (i32.const 0) \"\\05\\00\\00\\00\\07\\00\\00\\00\")"
    " (func (export \"tab\") (param i32 i32 i32) (result i32)"
    "   (i32.add (i32.load (i32.shl (local.get 0) (i32.const 2)))"
    "     (i32.div_s (i32.const 1000) (local.get 1)))))";

/* Runs N documents of COLS through the interpreter's entry one call at a time, as the UDF layer
** would without a driver: results into OUT; the first trap, at *AT. */
static const qw_trap *interp_docs(qw_instance *inst, size_t n, const uint64_t *const *cols,
                                  uint64_t *out, size_t *at) {
  qw_func *f = qw_instance_func(inst, "score");
  for (size_t i = 0; i < n; i++) {
    uint64_t slots[3] = {cols[0][i], cols[1][i], cols[2][i]};
    const qw_trap *t = qw_func_call_raw(f, slots);
    if (t) {
      *at = i;
      return t;
    }
    out[i] = slots[0];
  }
  *at = n;
  return NULL;
}

static uint64_t get_acc(qw_instance *inst) {
  qw_val r[1];
  assert_int_equal(qw_func_call(qw_instance_func(inst, "get"), NULL, 0, r, 1, NULL), QB_OK);
  return r[0].of.i64;
}

/* The check-free loop (docs/jit.md): an export that cannot trap or loop runs its block without
** per-document checks, and still gives the interpreter's result bits, globals and fuel left;
** fuel that does not cover a block (and an interrupt) is found before the block starts, so the
** checked loop runs it and stops at the document where the interpreter stops, with the same
** trap; blocks before it ran whole on the check-free path. */
static void jit_checkfree_block_keeps_fuel_interrupt_and_results_exact(void **state) {
  NEED_WAT2WASM();
  enum { N = 1000 };
  static uint64_t c0[N], c1[N], c2[N], res[N], want[N];
  const uint64_t *cols[3] = {c0, c1, c2};
  env e, in;
  setup(&e, CHECKFREE, NULL);
  setup(&in, CHECKFREE, NULL);
  qj_code *c = NULL;
  qb_err err;
  assert_int_equal(qj_compile(e.mod, NULL, &c, &err), QB_OK);
  void *b = qj_block_entry(c, "score");
  assert_non_null(b);
  uint64_t per_doc = 0;
  assert_true(qj_block_checkfree(c, "score", &per_doc));
  assert_int_equal(per_doc, 2); /* the entry and $w; $tier is free */
  assert_true(qj_block_checkfree(c, "get", NULL)); /* no params, a global read */
  {
    env t;
    qj_code *tc = NULL;
    setup(&t, SCORE, NULL); /* a load, an unreachable and a call: traps are fine */
    assert_int_equal(qj_compile(t.mod, NULL, &tc, &err), QB_OK);
    assert_non_null(qj_block_entry(tc, "score"));
    assert_true(qj_block_checkfree(tc, "score", NULL));
    qj_code_free(tc);
    teardown(&t);
    /* a loop or an indirect call: the checked loop only */
    setup(&t, "(module (table 1 funcref) (type $t (func (result i32)))"
              " (func (export \"l\") (param i32) (result i32)"
              "   (loop (br_if 0 (i32.eqz (local.get 0)))) (local.get 0))"
              " (func (export \"ind\") (param i32) (result i32)"
              "   (call_indirect (type $t) (local.get 0))))", NULL);
    assert_int_equal(qj_compile(t.mod, NULL, &tc, &err), QB_OK);
    assert_non_null(qj_block_entry(tc, "l"));
    assert_false(qj_block_checkfree(tc, "l", NULL));
    assert_false(qj_block_checkfree(tc, "ind", NULL));
    qj_code_free(tc);
    teardown(&t);
  }
#if defined(__x86_64__) || defined(__aarch64__)
  { /* guard pages: a fault would not write the counted fuel back, so memory keeps it checked */
    qj_code *gc = NULL;
    qj_options go = {.guard_pages = true};
    assert_int_equal(qj_compile(e.mod, &go, &gc, &err), QB_OK);
    assert_true(qj_code_guarded(gc));
    assert_true(qj_block_checkfree(gc, "score", NULL));
    assert_false(qj_block_checkfree(gc, "tab", NULL));
    qj_code_free(gc);
  }
#endif
  double xs[] = {1.5, -0.0, 1e308, -1e308, 0.0 / 0.0, 3.0, -2.5e9};
  float fs[] = {2.0f, -1.0f, -0.0f, 1.0f / 0.0f, 16.0f};
  for (size_t i = 0; i < N; i++) {
    double x = xs[i % 7] * (double)(i + 1);
    float f = fs[i % 5];
    uint32_t fb;
    memcpy(&c0[i], &x, 8);
    c1[i] = (uint32_t)(i * 7 + i / 2);
    memcpy(&fb, &f, 4);
    c2[i] = fb;
  }
  /* fuel actually charged by one block (odd c1 take the extra call) */
  uint64_t charge = 0;
  for (size_t i = 0; i < N; i++) charge += 1 + (c1[i] & 1);
  assert_true(charge < N * per_doc);
  size_t at;
  /* 1. plenty of fuel: three blocks, each on the check-free path, bit for bit */
  qw_instance_set_fuel(e.inst, 1u << 30);
  qw_instance_set_fuel(in.inst, 1u << 30);
  for (int k = 0; k < 3; k++) {
    assert_null(interp_docs(in.inst, N, cols, want, &at));
    memset(res, 0, sizeof res);
    assert_null(qj_block_call(c, b, e.inst, N, cols, res));
    assert_memory_equal(res, want, sizeof res);
    assert_int_equal(qw_instance_fuel(e.inst), qw_instance_fuel(in.inst));
    assert_int_equal(get_acc(e.inst), get_acc(in.inst));
  }
  /* 2. fuel for two whole blocks on the check-free path (N * per_doc at the start of each) and
  ** a third that the fuel covers only in part: the third runs checked and traps where the
  ** interpreter does */
  uint64_t fuel = 2 * charge + charge / 2;
  assert_true(fuel - charge >= N * per_doc && fuel - 2 * charge < charge);
  qw_instance_set_fuel(e.inst, fuel);
  qw_instance_set_fuel(in.inst, fuel);
  for (int k = 0; k < 2; k++) {
    assert_null(interp_docs(in.inst, N, cols, want, &at));
    assert_null(qj_block_call(c, b, e.inst, N, cols, res));
    assert_memory_equal(res, want, sizeof res);
    assert_int_equal(qw_instance_fuel(e.inst), qw_instance_fuel(in.inst));
  }
  memset(res, 0, sizeof res);
  const qw_trap *ti = interp_docs(in.inst, N, cols, want, &at);
  const qw_trap *tn = qj_block_call(c, b, e.inst, N, cols, res);
  assert_non_null(ti);
  assert_ptr_equal(tn, ti);
  assert_non_null(strstr(qw_trap_message(tn), "fuel"));
  assert_true(at > 0 && at < N);
  assert_memory_equal(res, want, at * sizeof *res);
  assert_int_equal(res[at], 0);
  assert_int_equal(qw_instance_fuel(e.inst), qw_instance_fuel(in.inst));
  qw_instance_set_fuel(e.inst, 100);
  qw_instance_set_fuel(in.inst, 100);
  assert_int_equal(get_acc(e.inst), get_acc(in.inst));
  /* 3. an interrupt between two blocks stops the next one at its first document */
  qw_instance_set_fuel(e.inst, 1u << 30);
  qw_instance_set_fuel(in.inst, 1u << 30);
  qw_instance_interrupt(e.inst);
  qw_instance_interrupt(in.inst);
  res[0] = 42;
  ti = interp_docs(in.inst, N, cols, want, &at);
  tn = qj_block_call(c, b, e.inst, N, cols, res);
  assert_non_null(tn);
  assert_ptr_equal(tn, ti);
  assert_non_null(strstr(qw_trap_message(tn), "interrupt"));
  assert_int_equal(at, 0);
  assert_int_equal(res[0], 42);
  qw_instance_interrupt_clear(e.inst);
  qw_instance_interrupt_clear(in.inst);
  assert_int_equal(get_acc(e.inst), get_acc(in.inst));
  /* 4. and the block after it runs again, check-free, the same as the interpreter */
  assert_null(interp_docs(in.inst, N, cols, want, &at));
  assert_null(qj_block_call(c, b, e.inst, N, cols, res));
  assert_memory_equal(res, want, sizeof res);
  assert_int_equal(qw_instance_fuel(e.inst), qw_instance_fuel(in.inst));
  /* 5. traps inside a check-free loop (a bounds-checked load, a division): the block stops at
  ** the interpreter's document with its trap, place and fuel left, the results before it kept */
  {
    void *bt = qj_block_entry(c, "tab");
    assert_non_null(bt);
    assert_true(qj_block_checkfree(c, "tab", NULL));
    for (int k = 0; k < 3; k++) {
      for (size_t i = 0; i < N; i++) {
        c0[i] = i % 2;                             /* words 0 and 1 of the data */
        c1[i] = (uint32_t)(i % 9 + 1);
        c2[i] = 0;
      }
      if (k == 1) c1[600] = 0;                     /* integer divide by zero */
      if (k == 2) c0[300] = 16384;                 /* 16384 * 4 = 65536: out of bounds */
      qw_instance_set_fuel(e.inst, 1u << 20);
      qw_instance_set_fuel(in.inst, 1u << 20);
      qw_func *tf = qw_instance_func(in.inst, "tab");
      const qw_trap *t1 = NULL;
      for (at = 0; at < N && !t1; at++) {
        uint64_t sl[3] = {c0[at], c1[at], c2[at]};
        if (!(t1 = qw_func_call_raw(tf, sl))) want[at] = sl[0];
      }
      if (t1) at--;
      memset(res, 0, sizeof res);
      const qw_trap *t2 = qj_block_call(c, bt, e.inst, N, cols, res);
      assert_ptr_equal(t2, t1);
      assert_int_equal(at, k == 0 ? N : k == 1 ? 600 : 300);
      for (size_t i = 0; i < at; i++) assert_int_equal((uint32_t)res[i], (uint32_t)want[i]);
      if (at < N) {
        assert_int_equal(res[at], 0);
        assert_string_equal(qw_instance_trap_where(e.inst), qw_instance_trap_where(in.inst));
      }
      assert_int_equal(qw_instance_fuel(e.inst), qw_instance_fuel(in.inst));
    }
    for (size_t i = 0; i < N; i++) { /* the columns of the next case, as they were */
      double x = xs[i % 7] * (double)(i + 1);
      float f = fs[i % 5];
      uint32_t fb;
      memcpy(&c0[i], &x, 8);
      c1[i] = (uint32_t)(i * 7 + i / 2);
      memcpy(&fb, &f, 4);
      c2[i] = fb;
    }
    qw_instance_set_fuel(e.inst, 1u << 30);
    qw_instance_set_fuel(in.inst, 1u << 30);
  }
  /* 6. a result array overlapping a column is refused by the check-free test, not wrong */
  memcpy(res, c0, sizeof res);
  const uint64_t *cols2[3] = {res, c1, c2};
  assert_null(interp_docs(in.inst, N, cols, want, &at));
  assert_null(qj_block_call(c, b, e.inst, N, cols2, res));
  assert_memory_equal(res, want, sizeof res);
  qj_code_free(c);
  teardown(&e);
  teardown(&in);
}

/* ---- tier switch ---------------------------------------------------------------------------- */

static const char *COUNTER =
    "(module (memory (export \"mem\") 1) (global $g (mut i32) (i32.const 0))"
    " (func (export \"bump\") (param i32 i32) (result i32)"
    "   (global.set $g (i32.add (global.get $g) (local.get 0)))"
    "   (i32.store (i32.const 8) (i32.add (i32.load (i32.const 8)) (i32.const 1)))"
    "   (i32.add (global.get $g) (i32.load (i32.const 8)))))";

/* Attaching and detaching between two calls switches tiers; memory and globals carry over. */
static void jit_tier_switch_between_two_calls_on_one_instance(void **state) {
  NEED_WAT2WASM();
  env e;
  uint32_t r = 0;
  qb_err err;
  setup(&e, COUNTER, NULL);
  assert_int_equal(call_i32(e.inst, "bump", 10, 0, &r, NULL), QB_OK); /* interp: g=10, m=1 */
  assert_int_equal(r, 11);
  jit_attach(&e);
  assert_int_equal(call_i32(e.inst, "bump", 5, 0, &r, NULL), QB_OK); /* native: g=15, m=2 */
  assert_int_equal(r, 17);
  assert_int_equal(qj_detach(e.inst, &err), QB_OK);
  assert_int_equal(call_i32(e.inst, "bump", 1, 0, &r, NULL), QB_OK); /* interp: g=16, m=3 */
  assert_int_equal(r, 19);
  jit_attach(&e);
  jit_attach(&e); /* re-attaching drops the previous code's reference */
  assert_int_equal(call_i32(e.inst, "bump", 1, 0, &r, NULL), QB_OK);
  assert_int_equal(r, 21);
  teardown(&e); /* frees the attached code with the instance (ASan: no leak) */
}

/* ---- budgets --------------------------------------------------------------------------------- */

static const char *SPIN = "(module (func (export \"spin\") (param i32 i32) (result i32)"
                          " (loop (br 0)) (i32.const 0)))";

/* (loop (br 0)) in native code ends: with fuel, "fuel exhausted"; without, by an interrupt. */
static void jit_infinite_loop_ends_by_fuel(void **state) {
  NEED_WAT2WASM();
  env e;
  qb_err err;
  setup(&e, SPIN, NULL);
  jit_attach(&e);
  qw_instance_set_fuel(e.inst, 100000);
  assert_int_equal(call_i32(e.inst, "spin", 0, 0, NULL, &err), QB_LIMIT);
  assert_string_equal(err.msg, "fuel exhausted");
  assert_int_equal(qw_instance_fuel(e.inst), 0);
  teardown(&e);
}

/* Counted leaf loops run a copy without the budget and bounds checks when fuel, the interrupt
** flag and the address range allow the whole trip (src/jit/hoist.c); otherwise the checked
** loop. Either way each case ends as on the interpreter: result or trap (wording and place),
** fuel left and memory, including a huge counted loop under small fuel, a store running off
** the end of memory mid-loop and a `!=` loop whose step jumps over its bound. */
static const char *COUNTED =
    "(module (memory 1)"
    " (func (export \"fill\") (param $base i32) (param $n i32) (result i32) (local $i i32)"
    "   (loop $l"
    "     (i32.store (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 2)))"
    "                (i32.mul (local.get $i) (i32.const 3)))"
    "     (br_if $l (i32.lt_s (local.tee $i (i32.add (local.get $i) (i32.const 1)))"
    "                         (local.get $n))))"
    "   (local.get $i))"
    " (func (export \"skip\") (param $base i32) (param $n i32) (result i32) (local $i i32)"
    "   (loop $l"
    "     (i32.store8 (i32.add (local.get $base) (i32.and (local.get $i) (i32.const 1023)))"
    "                 (local.get $i))"
    "     (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 2)))"
    "                       (local.get $n))))"
    "   (local.get $i))"
    " (func (export \"down\") (param $base i32) (param $n i32) (result i32) (local $s i32)"
    "   (loop $l"
    "     (local.set $s (i32.add (local.get $s)"
    "       (i32.load16_u offset=6 (i32.add (local.get $base) (i32.mul (local.get $n) (i32.const 8))))))"
    "     (br_if $l (i32.gt_s (local.tee $n (i32.sub (local.get $n) (i32.const 1))) (i32.const 0))))"
    "   (local.get $s)))";

typedef struct loop_case {
  const char *fn;
  uint32_t a, b;
  uint64_t fuel;
} loop_case;

/* WAT's function on the JIT ends as on the interpreter: result or trap (wording and place),
** fuel left and memory */
static void same_as_interpreter(const char *wat, const loop_case *lc) {
  env in, nat;
  setup(&in, wat, NULL);
  setup(&nat, wat, NULL);
  jit_attach(&nat);
  qw_instance_set_fuel(in.inst, lc->fuel);
  qw_instance_set_fuel(nat.inst, lc->fuel);
  qb_err e1 = {0}, e2 = {0};
  uint32_t r1 = 0, r2 = 0;
  qb_code c1 = call_i32(in.inst, lc->fn, lc->a, lc->b, &r1, &e1);
  qb_code c2 = call_i32(nat.inst, lc->fn, lc->a, lc->b, &r2, &e2);
  print_message("%s(%u, %u) fuel %llu -> %d %s\n", lc->fn, lc->a, lc->b,
                (unsigned long long)lc->fuel, c1, c1 ? e1.msg : "ok");
  assert_int_equal(c2, c1);
  if (c1) {
    assert_string_equal(e2.msg, e1.msg);
    assert_string_equal(qw_instance_trap_where(nat.inst), qw_instance_trap_where(in.inst));
  } else {
    assert_int_equal(r2, r1);
  }
  assert_int_equal(qw_instance_fuel(nat.inst), qw_instance_fuel(in.inst));
  size_t n1, n2;
  uint8_t *m1 = qw_instance_memory(in.inst, &n1), *m2 = qw_instance_memory(nat.inst, &n2);
  assert_int_equal(n1, n2);
  assert_memory_equal(m1, m2, n1);
  teardown(&in);
  teardown(&nat);
}

static void jit_counted_loops_keep_fuel_and_bounds_exact(void **state) {
  NEED_WAT2WASM();
  loop_case cases[] = {
      {"fill", 0, 1000, 1u << 20},            /* the whole trip fits: the fast copy */
      {"fill", 0, 1000, 999},                 /* one unit short: fuel exhausted at the end */
      {"fill", 0, 1000, 1000},                /* exactly enough */
      {"fill", 0, 100000000, 5000},           /* a huge counted loop under small fuel */
      {"fill", 65536 - 400, 200, 1u << 20},   /* runs off the end of memory at i = 100 */
      {"fill", 65536 - 800, 200, 1u << 20},   /* ends exactly at the end */
      {"fill", 0xfffffff0u, 8, 1u << 20},     /* the address wraps in 32 bits */
      {"skip", 0, 1000, 1u << 20},            /* != with step 2, reached */
      {"skip", 0, 1001, 20000},               /* != with step 2, jumped over: runs out of fuel */
      {"down", 0, 5000, 1u << 20},            /* counts down to 0 */
      {"down", 0, 9000, 1u << 20},            /* its first load is out of bounds */
      {"down", 0, 5000, 100},                 /* counts down, fuel exhausted */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) same_as_interpreter(COUNTED, &cases[i]);
}

/* clang's wasm for `c[i*n+j] += x * b[k*n+j]` steps two pointers (p += 8, unrolled: p and p + 4)
** rather than indexing; such a loop's checks are hoisted and, in the unchecked copy, each
** address becomes one i64 form in the iteration (what lets LLVM vectorise it). Counted by
** QJ_HOIST_DEBUG's line for the compile; the copy runs only when the whole trip is in bounds,
** so a trip running off the end traps where the interpreter does. */
static const char *POINTERS =
    "(module (memory 1) (data (i32.const 0) \"\\01\\02\\03\\04\\05\\06\\07\\08\\09\")"
    " (func (export \"madd\") (param $p i32) (param $n i32) (result i32) (local $q i32) (local $i i32)"
    "   (local.set $q (i32.add (local.get $p) (i32.const 2048)))"
    "   (loop $l"
    "     (i32.store (local.get $q) (i32.add (i32.load (local.get $q))"
    "       (i32.add (local.get $i) (i32.mul (i32.load (local.get $p)) (i32.const 3)))))"
    "     (i32.store (i32.add (local.get $q) (i32.const 4)) (i32.add (i32.load (i32.add (local.get $q)"
    "       (i32.const 4))) (i32.mul (i32.load (i32.add (local.get $p) (i32.const 4))) (i32.const 5))))"
    "     (local.set $p (i32.add (local.get $p) (i32.const 8)))"
    "     (local.set $q (i32.add (local.get $q) (i32.const 8)))"
    "     (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 2))) (local.get $n))))"
    "   (local.get $i)))";

static void jit_pointer_loops_are_hoisted_and_trap_exactly(void **state) {
  NEED_WAT2WASM();
  /* the compile's QJ_HOIST_DEBUG lines, through a file in place of stderr */
  env e;
  setup(&e, POINTERS, NULL);
  FILE *log = tmpfile();
  assert_non_null(log);
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0 && dup2(fileno(log), 2) >= 0);
  setenv("QJ_HOIST_DEBUG", "1", 1);
  jit_attach(&e);
  unsetenv("QJ_HOIST_DEBUG");
  fflush(stderr);
  dup2(saved, 2), close(saved);
  teardown(&e);
  rewind(log);
  char line[256];
  unsigned blocks, hoisted = 0, widened = 0;
  while (fgets(line, sizeof line, log))
    if (sscanf(line, "hoist: versioned a loop of %u blocks, %u bounds checks hoisted, %u addresses widened",
               &blocks, &hoisted, &widened) == 3)
      break;
  fclose(log);
  print_message("pointer loop: %u checks hoisted, %u addresses widened\n", hoisted, widened);
  assert_true(hoisted >= 2);
  assert_true(widened >= 2);
  loop_case cases[] = {
      {"madd", 0, 1000, 1u << 20},             /* in bounds: the unchecked copy */
      {"madd", 0, 1000, 300},                  /* fuel exhausted mid-trip */
      {"madd", 65536 - 2048 - 800, 200, 1u << 20}, /* the last store ends at the end of memory */
      {"madd", 65536 - 2048 - 800, 202, 1u << 20}, /* one more trip: its load of q traps */
      {"madd", 65536 - 2048 - 804, 202, 1u << 20}, /* ... or its store to q + 4 */
      {"madd", 0, 1001, 1u << 20},             /* != jumped over: runs off the end of memory */
      {"madd", 0xfffff800u, 8, 1u << 20},      /* q wraps to 0, p is out of bounds */
      {"madd", 0xfffffff8u, 8, 1u << 20},      /* p + 4 wraps in 32 bits */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) same_as_interpreter(POINTERS, &cases[i]);
}

/* a counted loop too long to run unchecked (over hoist.c's trip limit) still sees an interrupt */
static const char *LONG = "(module (func (export \"spin\") (param i32 i32) (result i32) (local $i i32)"
                          " (loop $l (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i)"
                          " (i32.const 1))) (i32.const -1)))) (local.get $i)))";

static void *interrupter(void *p) {
  usleep(20000); /* not a timing assertion: the call ends whenever this lands */
  qw_instance_interrupt(p);
  return NULL;
}

static void jit_infinite_loop_ends_by_interrupt(void **state) {
  NEED_WAT2WASM();
  const char *mods[2] = {SPIN, LONG};
  for (int k = 0; k < 2; k++) {
    env e;
    qb_err err;
    pthread_t th;
    setup(&e, mods[k], NULL);
    jit_attach(&e);
    assert_int_equal(pthread_create(&th, NULL, interrupter, e.inst), 0);
    assert_int_equal(call_i32(e.inst, "spin", 0, 0, NULL, &err), QB_LIMIT);
    assert_string_equal(err.msg, "interrupted");
    pthread_join(th, NULL);
    teardown(&e);
  }
}

/* ---- across tiers ----------------------------------------------------------------------------- */

static const char *LIB = /* stays interpreted */
    "(module (type $t (func (param i32) (result i32)))"
    " (table (export \"t\") 4 funcref)"
    " (func (export \"dbl\") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))"
    " (func (export \"boom\") (param i32) (result i32) (i32.div_u (local.get 0) (i32.const 0)))"
    " (func (export \"call_t\") (param i32 i32) (result i32)"
    "   (call_indirect (type $t) (local.get 1) (local.get 0))))";

static const char *APP = /* runs native */
    "(module (type $t (func (param i32) (result i32)))"
    " (import \"lib\" \"dbl\" (func $dbl (type $t)))"
    " (import \"lib\" \"boom\" (func $boom (type $t)))"
    " (import \"lib\" \"t\" (table 4 funcref))"
    " (func $sq (type $t) (i32.mul (local.get 0) (local.get 0)))"
    " (elem (i32.const 0) $sq $dbl $boom)"
    " (func (export \"via\") (param i32 i32) (result i32)"
    "   (call_indirect (type $t) (local.get 1) (local.get 0)))"
    " (func (export \"both\") (param i32 i32) (result i32)"
    "   (i32.add (call $dbl (local.get 0)) (call $sq (local.get 0)))))";

/* call, call_indirect and traps across the tiers and instances. */
static void jit_calls_and_call_indirect_across_tiers(void **state) {
  NEED_WAT2WASM();
  env lib, app;
  qw_imports *im;
  qb_err err;
  uint32_t r = 0;
  setup(&lib, LIB, NULL);
  assert_int_equal(qw_imports_new(&im, &err), QB_OK);
  assert_int_equal(qw_imports_add_instance(im, "lib", lib.inst, &err), QB_OK);
  setup(&app, APP, im);
  jit_attach(&app);
  assert_int_equal(call_i32(app.inst, "via", 0, 7, &r, NULL), QB_OK); /* native -> native */
  assert_int_equal(r, 49);
  assert_int_equal(call_i32(app.inst, "via", 1, 7, &r, NULL), QB_OK); /* native -> interp */
  assert_int_equal(r, 14);
  assert_int_equal(call_i32(lib.inst, "call_t", 0, 9, &r, NULL), QB_OK); /* interp -> native */
  assert_int_equal(r, 81);
  assert_int_equal(call_i32(app.inst, "both", 3, 0, &r, NULL), QB_OK);
  assert_int_equal(r, 15);
  /* a trap in interpreted code called from native code crosses the boundary */
  assert_int_equal(call_i32(app.inst, "via", 2, 1, NULL, &err), QB_TRAP);
  assert_string_equal(err.msg, "integer divide by zero");
  assert_int_equal(call_i32(app.inst, "via", 3, 1, NULL, &err), QB_TRAP);
  assert_string_equal(err.msg, "uninitialized element");
  assert_int_equal(call_i32(app.inst, "via", 9, 1, NULL, &err), QB_TRAP);
  assert_string_equal(err.msg, "undefined element");
  /* and both instances still work afterwards */
  assert_int_equal(call_i32(app.inst, "via", 0, 5, &r, NULL), QB_OK);
  assert_int_equal(r, 25);
  assert_int_equal(call_i32(lib.inst, "call_t", 1, 5, &r, NULL), QB_OK);
  assert_int_equal(r, 10);
  teardown(&app);
  qw_imports_free(im);
  teardown(&lib);
}

/* ---- objects ---------------------------------------------------------------------------------- */

/* An object for each target; the host's loads back and runs; the other is refused. */
static void jit_objects_for_two_targets_and_one_loaded_back(void **state) {
  NEED_WAT2WASM();
  env e;
  qb_err err;
  uint8_t *x86 = NULL, *a64 = NULL;
  size_t nx = 0, na = 0;
  qj_code *c = NULL;
  uint32_t r = 0;
  setup(&e, COUNTER, NULL);
  assert_int_equal(qj_emit_object(e.mod, "x86_64-linux", NULL, &x86, &nx, &err), QB_OK);
  assert_int_equal(qj_emit_object(e.mod, "aarch64-linux", NULL, &a64, &na, &err), QB_OK);
  assert_true(nx > 64 && na > 64);
  assert_memory_equal(x86, "\177ELF", 4);
  assert_memory_equal(a64, "\177ELF", 4);
  assert_int_equal(x86[18] | x86[19] << 8, 62);  /* EM_X86_64 */
  assert_int_equal(a64[18] | a64[19] << 8, 183); /* EM_AARCH64 */
#if defined(__x86_64__)
  assert_int_equal(qj_load_object(e.mod, a64, na, &c, &err), QB_INVAL);
  assert_null(c);
  assert_int_equal(qj_load_object(e.mod, x86, nx, &c, &err), QB_OK);
  assert_int_equal(qj_attach(c, e.inst, &err), QB_OK);
  qj_code_free(c);
  assert_int_equal(call_i32(e.inst, "bump", 2, 0, &r, NULL), QB_OK);
  assert_int_equal(r, 3);
  /* a truncated object is an error, not a crash */
  assert_int_not_equal(qj_load_object(e.mod, x86, 40, &c, &err), QB_OK);
#endif
  qj_buffer_free(x86, nx);
  qj_buffer_free(a64, na);
  teardown(&e);
}

/* ---- threads ---------------------------------------------------------------------------------- */

typedef struct job {
  qw_module *mod;
  int ok;
} job;

static void *compile_and_run(void *p) {
  job *j = p;
  for (int k = 0; k < 3; k++) {
    qw_instance *inst = NULL;
    qj_code *c = NULL;
    qb_err err;
    uint32_t r = 0;
    if (qw_instance_new(j->mod, NULL, NULL, &inst, &err) || qj_compile(j->mod, NULL, &c, &err) ||
        qj_attach(c, inst, &err) || call_i32(inst, "bump", 4, 0, &r, &err) || r != 5) {
      qj_code_free(c);
      qw_instance_free(inst);
      return NULL;
    }
    qj_code_free(c);
    qw_instance_free(inst);
  }
  j->ok = 1;
  return NULL;
}

/* The UDF layer compiles on a background pool: compiles of one module on two threads at once,
** each attached to its own instance, all work. */
static void jit_compiles_run_concurrently_on_two_threads(void **state) {
  NEED_WAT2WASM();
  env e;
  pthread_t th[2];
  job jobs[2];
  setup(&e, COUNTER, NULL);
  for (int i = 0; i < 2; i++) {
    jobs[i] = (job){e.mod, 0};
    assert_int_equal(pthread_create(&th[i], NULL, compile_and_run, &jobs[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(jobs[i].ok, 1);
  }
  teardown(&e);
}

/* ---- UDF mode ------------------------------------------------------------------------------ */

static const char *UDF_MOD =
    "(module (memory (export \"memory\") 1) (global $bump (mut i32) (i32.const 1024))"
    " (type $t (func (param i32) (result i32)))"
    " (table 2 funcref) (elem (i32.const 0) $dbl $inc)"
    " (func $dbl (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))"
    " (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))"
    " (func $grow (param i32) (result i32) (global.get $bump)"
    "   (global.set $bump (i32.add (global.get $bump) (call $inc (local.get 0)))))"
    " (func (export \"qd_alloc\") (param i32) (result i32) (call $grow (local.get 0)))"
    " (func (export \"f\") (param i32 i32) (result i32) (i32.add (call $dbl (local.get 0))"
    "   (call_indirect (type $t) (local.get 0) (i32.and (local.get 1) (i32.const 1)))))"
    " (func (export \"f__batch\") (param i32 i32 i32)"
    "   (i32.store (local.get 2) (call $grow (local.get 0))))"
    " (func $boom (param i32) (global.set $bump (local.get 0)))"
    " (func (export \"h\") (param i32 i32) (result i32)"
    "   (if (i32.eq (local.get 0) (i32.const 7)) (then (call $boom (local.get 1)) unreachable))"
    "   (i32.mul (local.get 0) (i32.const 5))))";

/* UDF mode (qj_options.udf) compiles less than the default (no code for qd_alloc and the
** batch form, which the UDF layer runs in the interpreter, nor for what only they reach), and
** every export still gives the interpreter's results with the code attached, the left-out
** ones through the interpreter; so does an object made in UDF mode and loaded back. */
static void jit_udf_mode_leaves_interpreter_only_exports_out(void **state) {
  (void)state;
  NEED_WAT2WASM();
  env in, all, udf;
  qb_err err;
  qj_code *ca = NULL, *cu = NULL;
  qj_options uo = {.udf = true};
  setup(&in, UDF_MOD, NULL);
  setup(&all, UDF_MOD, NULL);
  setup(&udf, UDF_MOD, NULL);
  assert_int_equal(qj_compile(all.mod, NULL, &ca, &err), QB_OK);
  assert_int_equal(qj_compile(udf.mod, &uo, &cu, &err), QB_OK);
  assert_true(qj_code_bytes(cu) < qj_code_bytes(ca));
  assert_non_null(qj_block_entry(cu, "f"));
  assert_int_equal(qj_attach(ca, all.inst, &err), QB_OK);
  assert_int_equal(qj_attach(cu, udf.inst, &err), QB_OK);
  qj_code_free(ca);
  for (uint32_t i = 0; i < 4; i++) {
    uint32_t want, got_a, got_u;
    assert_int_equal(call_i32(in.inst, "f", 20 + i, i, &want, &err), QB_OK);
    assert_int_equal(call_i32(all.inst, "f", 20 + i, i, &got_a, &err), QB_OK);
    assert_int_equal(call_i32(udf.inst, "f", 20 + i, i, &got_u, &err), QB_OK);
    assert_int_equal(got_a, want);
    assert_int_equal(got_u, want);
    assert_int_equal(call_i32(in.inst, "qd_alloc", 8 * i, 0, &want, &err), QB_OK);
    assert_int_equal(call_i32(all.inst, "qd_alloc", 8 * i, 0, &got_a, &err), QB_OK);
    assert_int_equal(call_i32(udf.inst, "qd_alloc", 8 * i, 0, &got_u, &err), QB_OK);
    assert_int_equal(got_a, want);
    assert_int_equal(got_u, want);
  }
  /* the block driver of f, against per-document calls of the interpreter */
  uint64_t c0[3] = {5, 6, 7}, c1[3] = {0, 1, 2}, res[3];
  const uint64_t *cols[2] = {c0, c1};
  assert_null(qj_block_call(cu, qj_block_entry(cu, "f"), udf.inst, 3, cols, res));
  for (int i = 0; i < 3; i++) {
    uint32_t want;
    assert_int_equal(call_i32(in.inst, "f", (uint32_t)c0[i], (uint32_t)c1[i], &want, &err), QB_OK);
    assert_int_equal(res[i], want);
  }
  { /* a helper called right before `unreachable` (compiled at optnone): the same trap */
    uint64_t h0[3] = {1, 2, 7}, h1[3] = {0, 0, 9};
    const uint64_t *hc[2] = {h0, h1};
    void *hb = qj_block_entry(cu, "h");
    assert_non_null(hb);
    const qw_trap *tn = qj_block_call(cu, hb, udf.inst, 3, hc, res);
    assert_non_null(tn);
    assert_int_equal(res[0], 5);
    assert_int_equal(res[1], 10);
    uint32_t got;
    assert_int_equal(call_i32(in.inst, "h", 7, 9, &got, &err), QB_TRAP);
    qw_func *hf = qw_instance_func(in.inst, "h");
    uint64_t sl[2] = {7, 9};
    assert_ptr_equal(qw_func_call_raw(hf, sl), tn);
  }
#if defined(__x86_64__) || defined(__aarch64__)
  { /* the object keeps the set: loaded back, the same results */
    uint8_t *obj = NULL;
    size_t len = 0;
    qj_code *lc = NULL;
    assert_int_equal(qj_emit_object(udf.mod, qj_host_triple(), &uo, &obj, &len, &err), QB_OK);
    assert_int_equal(qj_load_object(udf.mod, obj, len, &lc, &err), QB_OK);
    qj_buffer_free(obj, len);
    assert_int_equal(qj_attach(lc, udf.inst, &err), QB_OK);
    qj_code_free(lc);
    uint32_t want, got;
    assert_int_equal(call_i32(in.inst, "f", 9, 1, &want, &err), QB_OK);
    assert_int_equal(call_i32(udf.inst, "f", 9, 1, &got, &err), QB_OK);
    assert_int_equal(got, want);
    assert_int_equal(call_i32(in.inst, "qd_alloc", 3, 0, &want, &err), QB_OK);
    assert_int_equal(call_i32(udf.inst, "qd_alloc", 3, 0, &got, &err), QB_OK);
    assert_int_equal(got, want);
  }
#endif
  qj_code_free(cu);
  teardown(&in);
  teardown(&all);
  teardown(&udf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(jit_traps_match_the_interpreter),
      cmocka_unit_test(jit_traps_match_the_interpreter_with_explicit_bounds),
      cmocka_unit_test(jit_block_driver_matches_one_call_per_document),
      cmocka_unit_test(jit_checkfree_block_keeps_fuel_interrupt_and_results_exact),
      cmocka_unit_test(jit_tier_switch_between_two_calls_on_one_instance),
      cmocka_unit_test(jit_infinite_loop_ends_by_fuel),
      cmocka_unit_test(jit_infinite_loop_ends_by_interrupt),
      cmocka_unit_test(jit_counted_loops_keep_fuel_and_bounds_exact),
      cmocka_unit_test(jit_pointer_loops_are_hoisted_and_trap_exactly),
      cmocka_unit_test(jit_calls_and_call_indirect_across_tiers),
      cmocka_unit_test(jit_objects_for_two_targets_and_one_loaded_back),
      cmocka_unit_test(jit_compiles_run_concurrently_on_two_threads),
      cmocka_unit_test(jit_udf_mode_leaves_interpreter_only_exports_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
