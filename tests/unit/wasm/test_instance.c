/* test_instance.c: instantiation (instance.c, memory.c, table.c): memories that grow in place
** within their limits, data and element segments (and their traps, spec 2.0 semantics),
** global initialisers, start functions, exports, accounting and out-of-memory behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* Fixtures: wat2wasm output of the WAT in each comment. */
/* (module (memory (export "mem") 1 2) (data (i32.const 16) "hello") (table (export "tab") 10
 * funcref) (global (export "g7") i32 (i32.const 7)) (func (export "nop"))) */
static const uint8_t m_basic[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x00, 0x04, 0x04, 0x01, 0x70, 0x00, 0x0a, 0x05, 0x04, 0x01, 0x01,
    0x01, 0x02, 0x06, 0x06, 0x01, 0x7f, 0x00, 0x41, 0x07, 0x0b, 0x07, 0x18, 0x04, 0x03,
    0x6d, 0x65, 0x6d, 0x02, 0x00, 0x03, 0x74, 0x61, 0x62, 0x01, 0x00, 0x02, 0x67, 0x37,
    0x03, 0x00, 0x03, 0x6e, 0x6f, 0x70, 0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
    0x0b, 0x0b, 0x01, 0x00, 0x41, 0x10, 0x0b, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
};

/* (module (memory 1) (func (export "f") (param i32 i64) (result f64) f64.const 1)) */
static const uint8_t m_sig[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7e, 0x01,
    0x7c, 0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00,
    0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, 0x0b,
};

/* (module (memory 300)) */
static const uint8_t m_big_memory[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x04, 0x01, 0x00, 0xac, 0x02,
};

/* (module (memory 1)) */
static const uint8_t m_one_page[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01,
};

/* (module (memory (import "a" "mem") 1) (data (i32.const 0) "ok") (data (i32.const 65535) "xy")) */
static const uint8_t m_data_oob[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x01, 0x01, 0x61,
    0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x01, 0x0b, 0x11, 0x02, 0x00, 0x41, 0x00,
    0x0b, 0x02, 0x6f, 0x6b, 0x00, 0x41, 0xff, 0xff, 0x03, 0x0b, 0x02, 0x78, 0x79,
};

/* (module (table (import "a" "tab") 10 funcref) (func $f (result i32) i32.const 42) (elem
 * (i32.const 7) $f) (elem (i32.const 8) $f $f $f $f $f)) */
static const uint8_t m_elem_oob[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
    0x02, 0x0b, 0x01, 0x01, 0x61, 0x03, 0x74, 0x61, 0x62, 0x01, 0x70, 0x00, 0x0a, 0x03, 0x02,
    0x01, 0x00, 0x09, 0x11, 0x02, 0x00, 0x41, 0x07, 0x0b, 0x01, 0x00, 0x00, 0x41, 0x08, 0x0b,
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x2a, 0x0b,
};

/* (module (global (import "a" "g7") i32) (global (export "copy") i32 (global.get 0)) (global
 * (export "l") i64 (i64.const -5)) (global (export "f") f32 (f32.const 1.5)) (global (export "d")
 * (mut f64) (f64.const -2.25)) (global (export "r") funcref (ref.func $f)) (global (export "n")
 * externref (ref.null extern)) (func $f)) */
static const uint8_t m_globals[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x02, 0x09,
    0x01, 0x01, 0x61, 0x02, 0x67, 0x37, 0x03, 0x7f, 0x00, 0x03, 0x02, 0x01, 0x00, 0x06, 0x29, 0x06,
    0x7f, 0x00, 0x23, 0x00, 0x0b, 0x7e, 0x00, 0x42, 0x7b, 0x0b, 0x7d, 0x00, 0x43, 0x00, 0x00, 0xc0,
    0x3f, 0x0b, 0x7c, 0x01, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc0, 0x0b, 0x70, 0x00,
    0xd2, 0x00, 0x0b, 0x6f, 0x00, 0xd0, 0x6f, 0x0b, 0x07, 0x1c, 0x06, 0x04, 0x63, 0x6f, 0x70, 0x79,
    0x03, 0x01, 0x01, 0x6c, 0x03, 0x02, 0x01, 0x66, 0x03, 0x03, 0x01, 0x64, 0x03, 0x04, 0x01, 0x72,
    0x03, 0x05, 0x01, 0x6e, 0x03, 0x06, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
};

/* (module (table (export "t") 2 5 funcref) (table (export "e") 1 externref)) */
static const uint8_t m_tables[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x70, 0x01, 0x02, 0x05,
    0x6f, 0x00, 0x01, 0x07, 0x09, 0x02, 0x01, 0x74, 0x01, 0x00, 0x01, 0x65, 0x01, 0x01,
};

/* (module (global (export "g") (mut i32) (i32.const 0)) (func $s i32.const 5 global.set 0) (start
 * $s)) */
static const uint8_t m_start[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02,
    0x01, 0x00, 0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b, 0x07, 0x05, 0x01, 0x01, 0x67, 0x03,
    0x00, 0x08, 0x01, 0x00, 0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x05, 0x24, 0x00, 0x0b,
};

/* (module (func $s unreachable) (start $s)) */
static const uint8_t m_start_trap[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x00, 0x08, 0x01, 0x00, 0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b,
};

/* (module (memory (export "mem") 1) (table (export "t") 1 funcref) (global (export "g") (mut i32)
 * (i32.const 3)) (elem (i32.const 0) $f) (data (i32.const 0) "x") (func $f (export "f"))) */
static const uint8_t m_oom[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x00, 0x04, 0x04, 0x01, 0x70, 0x00, 0x01, 0x05, 0x03, 0x01, 0x00,
    0x01, 0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x03, 0x0b, 0x07, 0x13, 0x04, 0x03, 0x6d,
    0x65, 0x6d, 0x02, 0x00, 0x01, 0x74, 0x01, 0x00, 0x01, 0x67, 0x03, 0x00, 0x01, 0x66,
    0x00, 0x00, 0x09, 0x07, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 0x00, 0x0a, 0x04, 0x01,
    0x02, 0x00, 0x0b, 0x0b, 0x07, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 0x78,
};

static qw_engine *eng;

static int setup(void **state) {
  (void)state;
  return qw_engine_new(NULL, &eng, NULL) == QB_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  qw_engine_free(eng);
  return 0;
}

static qw_module *load(const uint8_t *b, size_t n) {
  qw_module *m;
  qb_err err;
  if (qw_module_load(eng, b, n, &m, &err))
    fail_msg("load: %s", err.msg);
  return m;
}
#define LOAD(a) load(a, sizeof a)

static qw_instance *instantiate(qw_module *m, const qw_imports *im, const qw_limits *lim) {
  qw_instance *inst;
  qb_err err;
  if (qw_instance_new(m, im, lim, &inst, &err))
    fail_msg("instantiate: %s", err.msg);
  return inst;
}

static void instance_applies_data_segments_to_its_memory(void **state) {
  qw_module *m = LOAD(m_basic);
  qw_instance *inst = instantiate(m, NULL, NULL);
  size_t size;
  uint8_t *mem = qw_instance_memory(inst, &size);
  (void)state;
  assert_non_null(mem);
  assert_int_equal(size, 65536);
  assert_memory_equal(mem + 16, "hello", 5);
  assert_int_equal(mem[15], 0);
  assert_int_equal(mem[65535], 0);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void memory_grows_in_place_up_to_its_declared_maximum(void **state) {
  qw_module *m = LOAD(m_basic);
  qw_instance *inst = instantiate(m, NULL, NULL);
  uint8_t *before = qw_instance_memory(inst, NULL), *after;
  size_t size;
  (void)state;
  assert_int_equal(qw__memory_grow(inst->mem0_obj, 0), 1);
  assert_int_equal(qw__memory_grow(inst->mem0_obj, 1), 1);
  after = qw_instance_memory(inst, &size);
  assert_ptr_equal(before, after);
  assert_ptr_equal(inst->mem0, after);
  assert_int_equal(size, 2 * 65536);
  assert_int_equal(after[2 * 65536 - 1], 0); /* new pages are zero and writable */
  after[2 * 65536 - 1] = 9;
  /* spec: growing past the maximum gives -1 and changes nothing */
  assert_int_equal(qw__memory_grow(inst->mem0_obj, 1), -1);
  assert_int_equal(qw__memory_grow(inst->mem0_obj, UINT32_MAX), -1);
  assert_int_equal(inst->mem0_obj->pages, 2);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void memory_cap_from_limits_bounds_growth_of_unbounded_memory(void **state) {
  qw_module *m = LOAD(m_one_page);
  qw_limits lim = {.max_memory_pages = 3};
  qw_instance *inst = instantiate(m, NULL, &lim);
  (void)state;
  assert_int_equal(qw__memory_grow(inst->mem0_obj, 2), 1);
  assert_int_equal(qw__memory_grow(inst->mem0_obj, 1), -1);
  assert_int_equal(inst->mem0_obj->pages, 3);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void memory_minimum_above_the_cap_fails_with_limit(void **state) {
  qw_module *m = LOAD(m_big_memory);
  qw_instance *inst;
  qb_err err;
  qw_limits lim = {.max_memory_pages = 400};
  (void)state;
  assert_int_equal(qw_instance_new(m, NULL, NULL, &inst, &err), QB_LIMIT);
  assert_null(inst);
  assert_non_null(strstr(err.msg, "300 pages"));
  inst = instantiate(m, NULL, &lim);
  qw_instance_free(inst);
  qw_module_free(m);
}

/* spec 2.0: segments are applied in order; the failing one traps, earlier ones stay. */
static void data_segment_out_of_bounds_traps_and_earlier_segments_stay(void **state) {
  qw_module *a = LOAD(m_basic), *b = LOAD(m_data_oob);
  qw_instance *ia = instantiate(a, NULL, NULL), *ib;
  qw_imports *im;
  qb_err err;
  uint8_t *mem;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_instance(im, "a", ia, NULL), QB_OK);
  assert_int_equal(qw_instance_new(b, im, NULL, &ib, &err), QB_TRAP);
  assert_null(ib);
  assert_non_null(strstr(err.msg, "out of bounds memory access"));
  mem = qw_instance_memory(ia, NULL);
  assert_memory_equal(mem, "ok", 2);
  assert_int_equal(mem[65535], 0);
  qw_imports_free(im);
  qw_module_free(b);
  qw_instance_free(ia);
  qw_module_free(a);
}

static void element_segment_out_of_bounds_traps_and_written_functions_stay_callable(void **state) {
  qw_module *a = LOAD(m_basic), *b = LOAD(m_elem_oob);
  qw_instance *ia = instantiate(a, NULL, NULL), *ib;
  qw_imports *im;
  qw__table *t;
  qb_err err;
  qw_val r;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_instance(im, "a", ia, NULL), QB_OK);
  assert_int_equal(qw_instance_new(b, im, NULL, &ib, &err), QB_TRAP);
  assert_null(ib);
  assert_non_null(strstr(err.msg, "out of bounds table access"));
  t = qw_instance_export(ia, "tab")->of.table;
  assert_null(t->elems[6]);
  assert_non_null(t->elems[7]);
  assert_null(t->elems[8]);
  assert_int_equal(qw_func_call((qw_func *)t->elems[7], NULL, 0, &r, 1, &err), QB_OK);
  assert_int_equal(r.of.i32, 42);
  qw_imports_free(im);
  qw_instance_free(ia);
  qw_module_free(a);
  qw_module_free(b); /* frees the instance kept for the table's sake */
}

static void globals_are_initialised_from_constants_and_imported_globals(void **state) {
  qw_module *a = LOAD(m_basic), *b = LOAD(m_globals);
  qw_instance *ia = instantiate(a, NULL, NULL), *ib;
  qw_imports *im;
  qw_val v;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_instance(im, "a", ia, NULL), QB_OK);
  ib = instantiate(b, im, NULL);
  assert_int_equal(qw_extern_global_get(qw_instance_export(ib, "copy"), &v, NULL), QB_OK);
  assert_int_equal(v.type, QW_I32);
  assert_int_equal(v.of.i32, 7);
  assert_int_equal(qw_extern_global_get(qw_instance_export(ib, "l"), &v, NULL), QB_OK);
  assert_int_equal(v.type, QW_I64);
  assert_true((int64_t)v.of.i64 == -5);
  assert_int_equal(qw_extern_global_get(qw_instance_export(ib, "f"), &v, NULL), QB_OK);
  assert_true(qw_val_f32(v) == 1.5f);
  assert_int_equal(qw_extern_global_get(qw_instance_export(ib, "d"), &v, NULL), QB_OK);
  assert_true(qw_val_f64(v) == -2.25);
  assert_int_equal(qw_extern_global_get(qw_instance_export(ib, "r"), &v, NULL), QB_OK);
  assert_int_equal(v.type, QW_FUNCREF);
  assert_ptr_equal(v.of.ref, ib->funcs[0]);
  assert_int_equal(qw_extern_global_get(qw_instance_export(ib, "n"), &v, NULL), QB_OK);
  assert_int_equal(v.type, QW_EXTERNREF);
  assert_null(v.of.ref);
  assert_int_equal(qw_extern_global_get(qw_instance_export(ia, "mem"), &v, NULL), QB_INVAL);
  qw_instance_free(ib);
  qw_imports_free(im);
  qw_instance_free(ia);
  qw_module_free(a);
  qw_module_free(b);
}

static void tables_grow_up_to_their_maximum_and_fill_new_slots(void **state) {
  qw_module *m = LOAD(m_tables);
  qw_instance *inst = instantiate(m, NULL, NULL);
  qw__table *t = qw_instance_export(inst, "t")->of.table, *e;
  int marker;
  (void)state;
  assert_int_equal(t->size, 2);
  assert_int_equal(t->elem, QW_FUNCREF);
  assert_int_equal(qw__table_grow(t, 3, inst->funcs[0]), 2);
  assert_int_equal(t->size, 5);
  assert_null(t->elems[1]);
  assert_ptr_equal(t->elems[4], inst->funcs[0]);
  assert_int_equal(qw__table_grow(t, 1, NULL), -1);
  assert_int_equal(qw__table_grow(t, 0, NULL), 5);
  /* no declared maximum: bounded by qw_limits.max_table_elems (default 1,000,000) */
  e = qw_instance_export(inst, "e")->of.table;
  assert_int_equal(qw__table_grow(e, 1000, &marker), 1);
  assert_ptr_equal(e->elems[1000], &marker);
  assert_int_equal(qw__table_grow(e, 1000000, NULL), -1);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void exports_are_found_by_name_with_their_signatures(void **state) {
  qw_module *m = LOAD(m_sig);
  qw_instance *inst = instantiate(m, NULL, NULL);
  qw_func *f;
  qw_sig sig;
  (void)state;
  assert_null(qw_instance_export(inst, "g"));
  assert_null(qw_instance_export_n(inst, "f\0", 2)); /* names are compared with their length */
  assert_non_null(qw_instance_export_n(inst, "fx", 1));
  assert_null(qw_instance_func(inst, "nope"));
  f = qw_instance_func(inst, "f");
  assert_non_null(f);
  assert_int_equal(qw_extern_kind(qw_instance_export(inst, "f")), QW_KFUNC);
  qw_func_sig(f, &sig);
  assert_int_equal(sig.nparams, 2);
  assert_int_equal(sig.params[0], QW_I32);
  assert_int_equal(sig.params[1], QW_I64);
  assert_int_equal(sig.nresults, 1);
  assert_int_equal(sig.results[0], QW_F64);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void start_function_runs_during_instantiation(void **state) {
  qw_module *m = LOAD(m_start), *t = LOAD(m_start_trap);
  qw_instance *inst = instantiate(m, NULL, NULL);
  qw_val v;
  qb_err err;
  (void)state;
  assert_int_equal(qw_extern_global_get(qw_instance_export(inst, "g"), &v, NULL), QB_OK);
  assert_int_equal(v.of.i32, 5);
  qw_instance_free(inst);
  assert_int_equal(qw_instance_new(t, NULL, NULL, &inst, &err), QB_TRAP);
  assert_null(inst);
  assert_non_null(strstr(err.msg, "unreachable"));
  qw_module_free(m);
  qw_module_free(t);
}

static void instance_counts_its_memory_and_tables(void **state) {
  qw_module *m = LOAD(m_basic);
  qw_instance *inst = instantiate(m, NULL, NULL);
  size_t n = qw_instance_memory_bytes(inst);
  (void)state;
  assert_true(n >= 65536 + 10 * sizeof(void *));
  qw__memory_grow(inst->mem0_obj, 1);
  assert_int_equal(qw_instance_memory_bytes(inst), n + 65536);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void instance_needs_a_validated_module(void **state) {
  qw_module *m;
  qw_instance *inst;
  (void)state;
  assert_int_equal(qw_module_decode(eng, m_basic, sizeof m_basic, &m, NULL), QB_OK);
  assert_int_equal(qw_instance_new(m, NULL, NULL, &inst, NULL), QB_INVAL);
  assert_int_equal(qw_module_validate(m, NULL), QB_OK);
  assert_int_equal(qw_instance_new(m, NULL, NULL, &inst, NULL), QB_OK);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void instantiation_fails_cleanly_for_every_allocation_failure(void **state) {
  qw_module *m = LOAD(m_oom);
  size_t before = qb_alloc_live_bytes();
  uint64_t k;
  (void)state;
  for (k = 1;; k++) {
    qw_instance *inst;
    qb_err err;
    qb_code rc;
    qb_alloc_fail_after(k);
    rc = qw_instance_new(m, NULL, NULL, &inst, &err);
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      qw_instance_free(inst);
      break;
    }
    if (rc != QB_NOMEM)
      fail_msg("allocation %llu: %s %s", (unsigned long long)k, qb_code_name(rc), err.msg);
    assert_null(inst);
    assert_int_equal(qb_alloc_live_bytes(), before);
  }
  assert_true(k > 1);
  assert_int_equal(qb_alloc_live_bytes(), before);
  qw_module_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(instance_applies_data_segments_to_its_memory),
      cmocka_unit_test(memory_grows_in_place_up_to_its_declared_maximum),
      cmocka_unit_test(memory_cap_from_limits_bounds_growth_of_unbounded_memory),
      cmocka_unit_test(memory_minimum_above_the_cap_fails_with_limit),
      cmocka_unit_test(data_segment_out_of_bounds_traps_and_earlier_segments_stay),
      cmocka_unit_test(element_segment_out_of_bounds_traps_and_written_functions_stay_callable),
      cmocka_unit_test(globals_are_initialised_from_constants_and_imported_globals),
      cmocka_unit_test(tables_grow_up_to_their_maximum_and_fill_new_slots),
      cmocka_unit_test(exports_are_found_by_name_with_their_signatures),
      cmocka_unit_test(start_function_runs_during_instantiation),
      cmocka_unit_test(instance_counts_its_memory_and_tables),
      cmocka_unit_test(instance_needs_a_validated_module),
      cmocka_unit_test(instantiation_fails_cleanly_for_every_allocation_failure),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
