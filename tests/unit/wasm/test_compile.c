/* test_compile.c: the translator (compile.c) on its own: what the threaded code looks like
** (local.get emits nothing, compare+branch and address adds are fused, constants get slots),
** publication of one translation per function across threads, the code-to-wasm offset map,
** and out-of-memory behaviour (every failing allocation gives QB_NOMEM and leaks nothing). */
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

#include "internal.h"
#include "../../support/wat2wasm.h"

enum {
#define IOP(n) OP_##n,
#include "iops.def"
  OP__COUNT
};

static qw_engine *eng;
static qw_module *mod;

static uint8_t *wat2wasm(const char *wat, size_t *len) { return qd_wat2wasm("compile", wat, len); }

static void load_wat(const char *wat) {
  size_t len = 0;
  qb_err err;
  if (system("command -v wat2wasm >/dev/null 2>&1")) skip();
  uint8_t *b = wat2wasm(wat, &len);
  assert_non_null(b);
  assert_int_equal(qw_engine_new(NULL, &eng, &err), QB_OK);
  if (qw_module_load(eng, b, len, &mod, &err)) fail_msg("load: %s", err.msg);
  free(b);
}

static int teardown(void **state) {
  (void)state;
  qw_module_free(mod);
  qw_engine_free(eng);
  mod = NULL, eng = NULL;
  return 0;
}

/* The op at unit PC of C, as an OP_ number; operand N of the op at PC; where the op after an
** op with N operands starts (the handler takes QW_OPW units). */
static int op_at(const qw__code *c, uint32_t pc) {
  const void *const *h = qw__interp_handlers();
  const void *p;
  if (!h) return (int)c->ops[pc];
  memcpy(&p, &c->ops[pc], sizeof p);
  for (int i = 0; i < OP__COUNT; i++)
    if (h[i] == p) return i;
  return -1;
}
#define OPND(c, pc, n) ((c)->ops[(pc) + QW_OPX + (n)])
#define NEXT(pc, n) ((pc) + QW_OPW + (n))

static qw__code *compiled(uint32_t i) {
  qw__code *c = NULL;
  qb_err err;
  if (qw__compile(mod, i, &c, &err)) fail_msg("compile: %s", err.msg);
  return c;
}

static void compile_resolves_locals_to_slots_without_code(void **state) {
  (void)state;
  load_wat("(module (func (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))");
  qw__code *c = compiled(0);
  /* [I32_ADD d 0 1] [RET1 d]: no code for the two local.get */
  assert_int_equal(c->nops, NEXT(NEXT(0, 3), 1));
  assert_int_equal(op_at(c, 0), OP_I32_ADD);
  assert_int_equal(OPND(c, 0, 2), 0);
  assert_int_equal(OPND(c, 0, 3), 1);
  assert_int_equal(op_at(c, NEXT(0, 3)), OP_RET1);
  assert_int_equal(c->nparams, 2);
  assert_true(c->nslots >= 3);
}

static void compile_fuses_compare_and_branch_and_retargets_local_set(void **state) {
  (void)state;
  load_wat("(module (func (param i32) (local i32)\n"
           " (loop (local.set 1 (i32.add (local.get 1) (i32.const 1)))\n"
           "       (br_if 0 (i32.lt_u (local.get 1) (local.get 0))))))");
  qw__code *c = compiled(0);
  /* the add goes straight into local 1, and fuses with the compare and the branch:
  ** [ADDI_BR_LT_U 1 1 1 0 0] [RET] */
  assert_int_equal(op_at(c, 0), OP_ADDI_BR_LT_U);
  assert_int_equal(OPND(c, 0, 1), 1);
  assert_int_equal(OPND(c, 0, 2), 1);
  assert_int_equal(OPND(c, 0, 3), 1);
  assert_int_equal(OPND(c, 0, 4), 0);
  assert_int_equal((int32_t)OPND(c, 0, 5), 0); /* back to the loop header, itself */
  assert_int_equal(op_at(c, NEXT(0, 5)), OP_RET);
  assert_int_equal(c->nops, NEXT(NEXT(0, 5), 0));
}

/* The counter's compare may name it on either side; a label between add and branch (here the
** loop header) keeps them apart. */
static void compile_fuses_counter_only_within_a_block_of_code(void **state) {
  (void)state;
  load_wat("(module (func (param i32 i32) (result i32)\n"
           " (local.set 0 (i32.add (local.get 0) (i32.const 3)))\n"
           " (loop (br_if 0 (i32.gt_s (local.get 1) (local.get 0))))\n"
           " (local.get 0)))");
  qw__code *c = compiled(0);
  assert_int_equal(op_at(c, 0), OP_I32_ADD_I);
  assert_int_equal(op_at(c, NEXT(0, 3)), OP_BR_I32_GT_S);
}

static void compile_gives_float_constants_slots(void **state) {
  (void)state;
  load_wat("(module (func (param f64) (result f64)\n"
           " (f64.add (f64.mul (local.get 0) (f64.const 2.5)) (f64.const 2.5))))");
  qw__code *c = compiled(0);
  assert_int_equal(c->nconsts, 1); /* one slot for both uses of 2.5 */
  double k;
  memcpy(&k, &c->consts[0], 8);
  assert_true(k == 2.5);
  /* x * 2.5 + 2.5 is one multiply-add: [F64_MULADD d k 0 k] */
  assert_int_equal(op_at(c, 0), OP_F64_MULADD);
  assert_int_equal(OPND(c, 0, 2), c->nparams + c->nlocals); /* the constant's slot */
  assert_int_equal(OPND(c, 0, 3), 0);
  assert_int_equal(OPND(c, 0, 4), c->nparams + c->nlocals);
}

static void compile_folds_address_adds_into_loads(void **state) {
  (void)state;
  load_wat("(module (memory 1) (func (param i32) (result i32)\n"
           " (i32.load offset=4 (i32.add (local.get 0) (i32.const 1024)))))");
  qw__code *c = compiled(0);
  assert_int_equal(op_at(c, 0), OP_I32_LOAD_A);
  assert_int_equal(OPND(c, 0, 2), 0);
  assert_int_equal(OPND(c, 0, 3), 1024);
  assert_int_equal(OPND(c, 0, 4), 4);
}

static void compile_maps_code_back_to_wasm_offsets(void **state) {
  (void)state;
  load_wat("(module (memory 1) (func (param i32) (result i32)\n"
           " (i32.div_u (i32.load (local.get 0)) (local.get 0))))");
  qw__code *c = compiled(0);
  const qw__func_decl *d = &mod->funcs[0];
  assert_true(c->npc >= 2);
  for (uint32_t i = 0; i < c->npc; i++) {
    assert_true(c->pcmap[3 * i + 1] >= d->body_offset);
    assert_true(c->pcmap[3 * i + 1] < d->body_offset + (uint32_t)(d->body_end - d->body));
    assert_int_equal(c->pcmap[3 * i + 2], 0);
    if (i) assert_true(c->pcmap[3 * i] > c->pcmap[3 * i - 3]);
  }
  assert_int_equal(c->func_index, 0);
}

static void *compile_thread(void *arg) {
  qw__code *c = NULL;
  if (qw__compile(mod, 0, &c, NULL)) return NULL;
  *(qw__code **)arg = c;
  return NULL;
}

static void compile_publishes_one_translation_per_function(void **state) {
  (void)state;
  load_wat("(module (func (param i32) (result i32) (i32.mul (local.get 0) (local.get 0))))");
  pthread_t th[4];
  qw__code *got[4] = {0};
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, compile_thread, &got[i]), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  qw__code *pub = atomic_load(&mod->funcs[0].code);
  assert_non_null(pub);
  for (int i = 0; i < 4; i++) assert_ptr_equal(got[i], pub);
  assert_ptr_equal(compiled(0), pub);
}

static void compile_out_of_memory_fails_cleanly_at_every_allocation(void **state) {
  (void)state;
  load_wat("(module (memory 1) (func (param i32 f64) (result f64) (local i64)\n"
           " (block (loop (br_if 1 (i32.eqz (local.get 0)))\n"
           "   (local.set 1 (f64.add (local.get 1) (f64.const 0.5)))\n"
           "   (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br 0)))\n"
           " (block (block (br_table 0 0 1 (local.get 0)))) (local.get 1)))");
  for (uint64_t k = 1;; k++) {
    size_t before = qb_alloc_live_bytes();
    qw__code *c = NULL;
    qb_err err;
    qb_alloc_fail_after(k);
    qb_code rc = qw__compile(mod, 0, &c, &err);
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      assert_non_null(c);
      assert_true(k > 1);
      break;
    }
    assert_int_equal(rc, QB_NOMEM);
    assert_null(c);
    assert_null(atomic_load(&mod->funcs[0].code));
    assert_int_equal(qb_alloc_live_bytes(), before);
    assert_true(k < 1000);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(compile_resolves_locals_to_slots_without_code, teardown),
      cmocka_unit_test_teardown(compile_fuses_compare_and_branch_and_retargets_local_set, teardown),
      cmocka_unit_test_teardown(compile_fuses_counter_only_within_a_block_of_code, teardown),
      cmocka_unit_test_teardown(compile_gives_float_constants_slots, teardown),
      cmocka_unit_test_teardown(compile_folds_address_adds_into_loads, teardown),
      cmocka_unit_test_teardown(compile_maps_code_back_to_wasm_offsets, teardown),
      cmocka_unit_test_teardown(compile_publishes_one_translation_per_function, teardown),
      cmocka_unit_test_teardown(compile_out_of_memory_fails_cleanly_at_every_allocation, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
