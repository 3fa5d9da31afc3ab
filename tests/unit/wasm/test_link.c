/* test_link.c: import lists and import matching (link.c, instance.c): the spec's "unknown
** import" / "incompatible import type" rules for every kind, limits subtyping, function type
** identity through canonical ids, host functions and their lifetime, out-of-memory behaviour. */
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

/* (module (import "env" "inc" (func $inc (param i32) (result i32))) (func (export "call") (param
 * i32) (result i32) local.get 0 call $inc)) */
static const uint8_t m_call_host[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7f,
    0x01, 0x7f, 0x02, 0x0b, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x69, 0x6e, 0x63, 0x00,
    0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x08, 0x01, 0x04, 0x63, 0x61, 0x6c, 0x6c, 0x00,
    0x01, 0x0a, 0x08, 0x01, 0x06, 0x00, 0x20, 0x00, 0x10, 0x00, 0x0b,
};

/* (module (import "env" "f" (func (param i64) (result i32)))) */
static const uint8_t m_import_i64[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7e,
    0x01, 0x7f, 0x02, 0x09, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x01, 0x66, 0x00, 0x00,
};

/* (module (import "env" "missing" (func))) */
static const uint8_t m_import_missing[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x02, 0x0f,
    0x01, 0x03, 0x65, 0x6e, 0x76, 0x07, 0x6d, 0x69, 0x73, 0x73, 0x69, 0x6e, 0x67, 0x00, 0x00,
};

/* (module (import "a" "mem" (memory 1 1))) */
static const uint8_t m_mem_1_1[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0b, 0x01,
    0x01, 0x61, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x01, 0x01, 0x01,
};

/* (module (import "a" "mem" (memory 2))) */
static const uint8_t m_mem_2[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0a,
    0x01, 0x01, 0x61, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x02,
};

/* (module (import "a" "mem" (memory 1 3))) */
static const uint8_t m_mem_1_3[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0b, 0x01,
    0x01, 0x61, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x01, 0x01, 0x03,
};

/* (module (import "a" "mem" (memory 0))) */
static const uint8_t m_mem_0[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0a,
    0x01, 0x01, 0x61, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x00,
};

/* (module (import "a" "tab" (table 10 externref))) */
static const uint8_t m_tab_extern[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0b, 0x01,
    0x01, 0x61, 0x03, 0x74, 0x61, 0x62, 0x01, 0x6f, 0x00, 0x0a,
};

/* (module (import "a" "tab" (table 5 funcref))) */
static const uint8_t m_tab_5[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0b, 0x01,
    0x01, 0x61, 0x03, 0x74, 0x61, 0x62, 0x01, 0x70, 0x00, 0x05,
};

/* (module (import "a" "g7" (global (mut i32)))) */
static const uint8_t m_global_mut[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x09,
    0x01, 0x01, 0x61, 0x02, 0x67, 0x37, 0x03, 0x7f, 0x01,
};

/* (module (import "a" "g7" (global i64))) */
static const uint8_t m_global_i64[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x09,
    0x01, 0x01, 0x61, 0x02, 0x67, 0x37, 0x03, 0x7e, 0x00,
};

/* (module (import "a" "g7" (func))) */
static const uint8_t m_kind_func[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60,
    0x00, 0x00, 0x02, 0x08, 0x01, 0x01, 0x61, 0x02, 0x67, 0x37, 0x00, 0x00,
};

static qw_engine *eng;
static qw_module *exporter; /* m_basic: exports mem (1..2 pages), tab (10 funcref), g7 */
static qw_instance *exp_inst;

static int setup(void **state) {
  (void)state;
  if (qw_engine_new(NULL, &eng, NULL))
    return -1;
  if (qw_module_load(eng, m_basic, sizeof m_basic, &exporter, NULL))
    return -1;
  return qw_instance_new(exporter, NULL, NULL, &exp_inst, NULL) ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  qw_instance_free(exp_inst);
  qw_module_free(exporter);
  qw_engine_free(eng);
  return 0;
}

/* Instantiates BYTES against the exporter registered as "a" plus IM's own entries (may be
** NULL); checks the code and that the message contains WANT. */
static void link(const uint8_t *b, size_t n, qw_imports *extra, qb_code code, const char *want) {
  qw_module *m;
  qw_instance *inst;
  qw_imports *im = extra;
  qb_err err;
  qb_code rc;
  if (qw_module_load(eng, b, n, &m, &err))
    fail_msg("load: %s", err.msg);
  if (!im) {
    assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
    assert_int_equal(qw_imports_add_instance(im, "a", exp_inst, NULL), QB_OK);
  }
  rc = qw_instance_new(m, im, NULL, &inst, &err);
  if (rc != code || (want && !strstr(err.msg, want)))
    fail_msg("got %s \"%s\", want %s \"%s\"", qb_code_name(rc), rc ? err.msg : "",
             qb_code_name(code), want ? want : "");
  qw_instance_free(inst);
  if (!extra)
    qw_imports_free(im);
  qw_module_free(m);
}
#define LINK(bytes, code, want) link(bytes, sizeof bytes, NULL, code, want)

static const qw_trap *inc(void *ud, qw_instance *caller, const uint64_t *args, uint64_t *results) {
  (void)caller;
  if (ud)
    ++*(int *)ud;
  results[0] = (uint32_t)((uint32_t)args[0] + 1);
  return NULL;
}

static void link_reports_unknown_import_with_its_names(void **state) {
  (void)state;
  LINK(m_import_missing, QB_UNLINKABLE, "\"env\" \"missing\": unknown import");
  link(m_import_missing, sizeof m_import_missing, NULL, QB_UNLINKABLE, "unknown import");
}

static void link_rejects_an_extern_of_another_kind(void **state) {
  (void)state;
  LINK(m_kind_func, QB_UNLINKABLE, "incompatible import type (expected a function, got a global)");
}

static void link_matches_function_types_exactly(void **state) {
  static const uint8_t i32[] = {QW_I32};
  qw_imports *im;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_host(im, "env", "f", i32, 1, i32, 1, inc, NULL, NULL), QB_OK);
  link(m_import_i64, sizeof m_import_i64, im, QB_UNLINKABLE, "incompatible import type");
  assert_int_equal(qw_imports_add_host(im, "env", "inc", i32, 1, i32, 1, inc, NULL, NULL), QB_OK);
  link(m_call_host, sizeof m_call_host, im, QB_OK, NULL);
  qw_imports_free(im);
}

static void link_checks_memory_limits_subtyping(void **state) {
  (void)state;
  /* the exporter's memory is 1 page, maximum 2 */
  LINK(m_mem_1_3, QB_OK, NULL);
  LINK(m_mem_0, QB_OK, NULL);
  LINK(m_mem_1_1, QB_UNLINKABLE, "incompatible import type");
  LINK(m_mem_2, QB_UNLINKABLE, "incompatible import type");
}

static void link_sees_the_current_size_of_a_grown_memory(void **state) {
  qw__memory *mem = qw_instance_export(exp_inst, "mem")->of.mem;
  (void)state;
  assert_int_equal(qw__memory_grow(mem, 1), 1);
  LINK(m_mem_2, QB_OK, NULL); /* spec: an import sees the memory's current size */
}

static void link_checks_table_element_type_and_limits(void **state) {
  (void)state;
  LINK(m_tab_extern, QB_UNLINKABLE, "incompatible import type");
  LINK(m_tab_5, QB_OK, NULL);
}

static void link_checks_global_type_and_mutability(void **state) {
  (void)state;
  LINK(m_global_mut, QB_UNLINKABLE, "incompatible import type");
  LINK(m_global_i64, QB_UNLINKABLE, "incompatible import type");
}

static void later_entries_with_the_same_name_win(void **state) {
  static const uint8_t i32[] = {QW_I32}, i64[] = {QW_I64};
  qw_imports *im;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_host(im, "env", "f", i32, 1, i32, 1, inc, NULL, NULL), QB_OK);
  assert_int_equal(qw_imports_add_host(im, "env", "f", i64, 1, i32, 1, inc, NULL, NULL), QB_OK);
  link(m_import_i64, sizeof m_import_i64, im, QB_OK, NULL);
  assert_ptr_equal(qw__imports_find(im, "env", "f"), &im->v[1]);
  assert_null(qw__imports_find(im, "env", "g"));
  qw_imports_free(im);
}

static void host_functions_outlive_the_import_list(void **state) {
  static const uint8_t i32[] = {QW_I32};
  qw_imports *im;
  qw_module *m;
  qw_instance *inst;
  qw_val arg = qw_i32(41), r;
  int calls = 0;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_host(im, "env", "inc", i32, 1, i32, 1, inc, &calls, NULL), QB_OK);
  assert_int_equal(qw_module_load(eng, m_call_host, sizeof m_call_host, &m, NULL), QB_OK);
  assert_int_equal(qw_instance_new(m, im, NULL, &inst, NULL), QB_OK);
  qw_imports_free(im); /* the instance keeps what it linked */
  assert_int_equal(qw_func_call(qw_instance_func(inst, "call"), &arg, 1, &r, 1, NULL), QB_OK);
  assert_int_equal(r.of.i32, 42);
  assert_int_equal(calls, 1);
  qw_instance_free(inst);
  qw_module_free(m);
}

static void host_function_signatures_are_checked(void **state) {
  static const uint8_t bad[] = {0x40}, v128[] = {QW_V128};
  qw_imports *im;
  qb_err err;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_host(im, "env", "f", bad, 1, NULL, 0, inc, NULL, &err), QB_INVAL);
  assert_int_equal(qw_imports_add_host(im, "env", "f", NULL, 0, v128, 1, inc, NULL, &err),
                   QB_INVAL);
  assert_int_equal(qw_imports_add_host(im, "env", "f", NULL, 0, NULL, 0, NULL, NULL, &err),
                   QB_INVAL);
  assert_int_equal(im->n, 0);
  qw_imports_free(im);
  qw_imports_free(NULL);
}

static void host_function_has_the_canonical_id_of_its_signature(void **state) {
  static const uint8_t t[] = {QW_I64, QW_I32};
  qw_imports *im;
  uint32_t id;
  qw_sig sig;
  (void)state;
  assert_int_equal(qw_imports_new(&im, NULL), QB_OK);
  assert_int_equal(qw_imports_add_host(im, "env", "f", t, 1, t + 1, 1, inc, NULL, NULL), QB_OK);
  assert_int_equal(qw__engine_canon(eng, t, 1, 1, &id, NULL), QB_OK);
  assert_int_equal(im->v[0].host->canon, id);
  assert_int_equal(im->v[0].host->type->canon, id);
  qw_func_sig(im->v[0].host, &sig);
  assert_int_equal(sig.nparams, 1);
  assert_int_equal(sig.params[0], QW_I64);
  assert_int_equal(sig.results[0], QW_I32);
  qw_imports_free(im);
}

static void imports_fail_cleanly_for_every_allocation_failure(void **state) {
  static const uint8_t t[] = {QW_F32, QW_F64, QW_I32};
  size_t before;
  uint64_t k;
  qw_imports *warm;
  (void)state;
  /* intern the signature once (the table is process-wide and only grows) */
  assert_int_equal(qw_imports_new(&warm, NULL), QB_OK);
  assert_int_equal(qw_imports_add_host(warm, "m", "n", t, 2, t + 2, 1, inc, NULL, NULL), QB_OK);
  qw_imports_free(warm);
  before = qb_alloc_live_bytes();
  for (k = 1;; k++) {
    qw_imports *im = NULL;
    qb_code rc;
    qb_alloc_fail_after(k);
    rc = qw_imports_new(&im, NULL);
    if (!rc)
      rc = qw_imports_add_host(im, "m", "n", t, 2, t + 2, 1, inc, NULL, NULL);
    if (!rc)
      rc = qw_imports_add_instance(im, "a", exp_inst, NULL);
    qb_alloc_fail_after(0);
    qw_imports_free(im);
    if (rc == QB_OK)
      break;
    assert_int_equal(rc, QB_NOMEM);
    assert_int_equal(qb_alloc_live_bytes(), before);
  }
  assert_true(k > 4);
  assert_int_equal(qb_alloc_live_bytes(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(link_reports_unknown_import_with_its_names),
      cmocka_unit_test(link_rejects_an_extern_of_another_kind),
      cmocka_unit_test(link_matches_function_types_exactly),
      cmocka_unit_test(link_checks_memory_limits_subtyping),
      cmocka_unit_test(link_sees_the_current_size_of_a_grown_memory),
      cmocka_unit_test(link_checks_table_element_type_and_limits),
      cmocka_unit_test(link_checks_global_type_and_mutability),
      cmocka_unit_test(later_entries_with_the_same_name_win),
      cmocka_unit_test(host_functions_outlive_the_import_list),
      cmocka_unit_test(host_function_signatures_are_checked),
      cmocka_unit_test(host_function_has_the_canonical_id_of_its_signature),
      cmocka_unit_test(imports_fail_cleanly_for_every_allocation_failure),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
