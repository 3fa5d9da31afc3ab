/* test_decode.c: the binary decoder (decode.c, leb.c, module.c): every malformed rule with the
** spec's wording, boundaries, inspection, bounded allocation and out-of-memory behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* (module
**   (type $t (func (param i32 i64) (result f64)))
**   (import "env" "host" (func $h (param i32) (result i32)))
**   (import "env" "g" (global $g i32))
**   (table $tab 4 8 funcref)
**   (memory 1 3)
**   (global $m (mut i64) (i64.const 42))
**   (global i32 (global.get $g))
**   (export "add" (func $add))
**   (export "mem" (memory 0))
**   (export "tab" (table $tab))
**   (export "m" (global $m))
**   (elem (i32.const 1) $add $h)
**   (elem declare func $f2)
**   (data (i32.const 16) "hello")
**   (data "passive")
**   (func $add (param i32 i32) (result i32) (local f32 f64)
**     local.get 0 local.get 1 i32.add)
**   (func $f2 (type $t) (local i32)
**     ref.func $f2 drop
**     f64.const 1.5)
**   (func (export "loop") (param i32) (result i32)
**     (block $b
**       (loop $l
**         local.get 0 i32.eqz br_if $b
**         local.get 0 i32.const 1 i32.sub local.set 0
**         br $l))
**     local.get 0)
** ) */
static const uint8_t m_rich[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x12, 0x03, 0x60, 0x02, 0x7f, 0x7e, 0x01,
    0x7c, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x02, 0x15, 0x02, 0x03,
    0x65, 0x6e, 0x76, 0x04, 0x68, 0x6f, 0x73, 0x74, 0x00, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x01, 0x67,
    0x03, 0x7f, 0x00, 0x03, 0x04, 0x03, 0x02, 0x00, 0x01, 0x04, 0x05, 0x01, 0x70, 0x01, 0x04, 0x08,
    0x05, 0x04, 0x01, 0x01, 0x01, 0x03, 0x06, 0x0b, 0x02, 0x7e, 0x01, 0x42, 0x2a, 0x0b, 0x7f, 0x00,
    0x23, 0x00, 0x0b, 0x07, 0x1e, 0x05, 0x03, 0x61, 0x64, 0x64, 0x00, 0x01, 0x03, 0x6d, 0x65, 0x6d,
    0x02, 0x00, 0x03, 0x74, 0x61, 0x62, 0x01, 0x00, 0x01, 0x6d, 0x03, 0x01, 0x04, 0x6c, 0x6f, 0x6f,
    0x70, 0x00, 0x03, 0x09, 0x0c, 0x02, 0x00, 0x41, 0x01, 0x0b, 0x02, 0x01, 0x00, 0x03, 0x00, 0x01,
    0x02, 0x0a, 0x37, 0x03, 0x0b, 0x02, 0x01, 0x7d, 0x01, 0x7c, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b,
    0x10, 0x01, 0x01, 0x7f, 0xd2, 0x02, 0x1a, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f,
    0x0b, 0x18, 0x00, 0x02, 0x40, 0x03, 0x40, 0x20, 0x00, 0x45, 0x0d, 0x01, 0x20, 0x00, 0x41, 0x01,
    0x6b, 0x21, 0x00, 0x0c, 0x00, 0x0b, 0x0b, 0x20, 0x00, 0x0b, 0x0b, 0x14, 0x02, 0x00, 0x41, 0x10,
    0x0b, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x01, 0x07, 0x70, 0x61, 0x73, 0x73, 0x69, 0x76, 0x65,
};

#define HDR 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00

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

/* Decodes BYTES and checks the code and that the message contains WANT (NULL: success). */
static void expect(const uint8_t *bytes, size_t len, qb_code code, const char *want) {
  qw_module *m = NULL;
  qb_err err;
  qb_code rc = qw_module_load(eng, bytes, len, &m, &err);
  if (rc != code || (want && !strstr(err.msg, want)))
    fail_msg("got %s \"%s\", want %s \"%s\"", qb_code_name(rc), rc ? err.msg : "",
             qb_code_name(code), want ? want : "");
  if (rc == QB_OK) {
    assert_non_null(m);
    qw_module_free(m);
  } else {
    assert_null(m);
  }
}
#define EXPECT(code, want, ...)                                                                    \
  do {                                                                                             \
    static const uint8_t b_[] = {__VA_ARGS__};                                                     \
    expect(b_, sizeof b_, code, want);                                                             \
  } while (0)

/* ---- LEB128 -------------------------------------------------------------------------------- */

static void leb_u32_reads_boundaries_and_rejects_overlong_and_too_large(void **state) {
  static const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0x0f},
                       big[] = {0xff, 0xff, 0xff, 0xff, 0x1f},
                       longer[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, padded[] = {0x80, 0x00},
                       cut[] = {0x80, 0x80};
  const uint8_t *p;
  uint32_t v;
  (void)state;
  p = max;
  assert_true(qw__leb_u32(&p, max + 5, &v));
  assert_int_equal(v, UINT32_MAX);
  assert_ptr_equal(p, max + 5);
  p = padded;
  assert_true(qw__leb_u32(&p, padded + 2, &v));
  assert_int_equal(v, 0);
  p = big;
  assert_false(qw__leb_u32(&p, big + 5, &v));
  assert_ptr_equal(p, big);
  assert_string_equal(qw__leb_why(big, big + 5, 32), "integer too large");
  p = longer;
  assert_false(qw__leb_u32(&p, longer + 6, &v));
  assert_string_equal(qw__leb_why(longer, longer + 6, 32), "integer representation too long");
  p = cut;
  assert_false(qw__leb_u32(&p, cut + 2, &v));
  assert_string_equal(qw__leb_why(cut, cut + 2, 32), "unexpected end");
}

static void leb_signed_readers_sign_extend_and_check_unused_bits(void **state) {
  static const uint8_t m1[] = {0x7f}, s32min[] = {0x80, 0x80, 0x80, 0x80, 0x78},
                       s32bad[] = {0x80, 0x80, 0x80, 0x80, 0x70},
                       s64min[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f},
                       s64bad[] = {0x80, 0x80, 0x80, 0x80, 0x80,
                                   0x80, 0x80, 0x80, 0x80, 0x01 | 0x02},
                       s33[] = {0xff, 0xff, 0xff, 0xff, 0x0f},
                       s33bad[] = {0xff, 0xff, 0xff, 0xff, 0x2f};
  const uint8_t *p;
  int32_t v32;
  int64_t v64;
  (void)state;
  p = m1;
  assert_true(qw__leb_s32(&p, m1 + 1, &v32));
  assert_int_equal(v32, -1);
  p = s32min;
  assert_true(qw__leb_s32(&p, s32min + 5, &v32));
  assert_int_equal(v32, INT32_MIN);
  p = s32bad;
  assert_false(qw__leb_s32(&p, s32bad + 5, &v32));
  p = s64min;
  assert_true(qw__leb_s64(&p, s64min + 10, &v64));
  assert_true(v64 == INT64_MIN);
  p = s64bad;
  assert_false(qw__leb_s64(&p, s64bad + 10, &v64));
  p = s33;
  assert_true(qw__leb_s33(&p, s33 + 5, &v64));
  assert_true(v64 == 0xffffffffll);
  p = s33bad;
  assert_false(qw__leb_s33(&p, s33bad + 5, &v64));
}

/* ---- preamble and sections ------------------------------------------------------------------ */

static void decode_accepts_empty_module(void **state) {
  (void)state;
  EXPECT(QB_OK, NULL, HDR);
}

static void decode_rejects_short_input_as_unexpected_end(void **state) {
  (void)state;
  expect(NULL, 0, QB_MALFORMED, "unexpected end");
  EXPECT(QB_MALFORMED, "unexpected end", 0x00, 0x61, 0x73);
  EXPECT(QB_MALFORMED, "unexpected end", 0x00, 0x61, 0x73, 0x6d, 0x01);
}

static void decode_rejects_wrong_magic_and_version(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "magic header not detected", 0x00, 0x41, 0x53, 0x4d, 0x01, 0, 0, 0);
  EXPECT(QB_MALFORMED, "unknown binary version", 0x00, 0x61, 0x73, 0x6d, 0x02, 0, 0, 0);
}

static void decode_rejects_section_id_above_twelve(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "malformed section id", HDR, 0x0d, 0x00);
}

static void decode_rejects_section_longer_than_module(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "section size mismatch", HDR, 0x01, 0x05, 0x00);
}

static void decode_rejects_section_with_bytes_left_over(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "section size mismatch", HDR, 0x01, 0x02, 0x00, 0x00);
}

static void decode_rejects_sections_out_of_order_or_repeated(void **state) {
  (void)state;
  /* memory before table */
  EXPECT(QB_MALFORMED, "unexpected content after last section", HDR, 0x05, 0x01, 0x00, 0x04, 0x01,
         0x00);
  /* two type sections */
  EXPECT(QB_MALFORMED, "unexpected content after last section", HDR, 0x01, 0x01, 0x00, 0x01, 0x01,
         0x00);
  /* data count goes between element and code */
  EXPECT(QB_MALFORMED, "unexpected content after last section", HDR, 0x0a, 0x01, 0x00, 0x0c, 0x01,
         0x00);
}

static void decode_skips_custom_sections_anywhere_but_checks_their_names(void **state) {
  (void)state;
  EXPECT(QB_OK, NULL, HDR, 0x00, 0x04, 0x01, 'x', 0xaa, 0xbb, 0x01, 0x01, 0x00, 0x00, 0x02, 0x01,
         'y');
  EXPECT(QB_MALFORMED, "malformed UTF-8 encoding", HDR, 0x00, 0x02, 0x01, 0xff);
  EXPECT(QB_MALFORMED, "malformed UTF-8 encoding", HDR, 0x00, 0x03, 0x02, 0xc0,
         0x80); /* overlong */
  EXPECT(QB_MALFORMED, "malformed UTF-8 encoding", HDR, 0x00, 0x04, 0x03, 0xed, 0xa0,
         0x80); /* surrogate */
  EXPECT(QB_MALFORMED, "length out of bounds", HDR, 0x00, 0x02, 0x05, 'x');
  EXPECT(QB_OK, NULL, HDR, 0x00, 0x05, 0x04, 0xf0, 0x9f, 0x98, 0x80); /* U+1F600 */
}

static void decode_reports_leb_rules_in_section_headers(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "integer representation too long", HDR, 0x01, 0x81, 0x80, 0x80, 0x80, 0x80,
         0x00);
  EXPECT(QB_MALFORMED, "integer too large", HDR, 0x01, 0x80, 0x80, 0x80, 0x80, 0x70);
}

/* ---- section contents ----------------------------------------------------------------------- */

static void decode_rejects_malformed_import_kind(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "malformed import kind", HDR, 0x02, 0x05, 0x01, 0x00, 0x00, 0x04, 0x00);
}

static void decode_rejects_malformed_mutability(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "malformed mutability", HDR, 0x06, 0x06, 0x01, 0x7f, 0x02, 0x41, 0x00, 0x0b);
}

static void decode_rejects_malformed_reference_type(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "malformed reference type", HDR, 0x04, 0x04, 0x01, 0x7f, 0x00, 0x00);
}

static void decode_rejects_limits_flag_above_one(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "integer too large", HDR, 0x05, 0x03, 0x01, 0x02, 0x00);
  EXPECT(QB_MALFORMED, "integer representation too long", HDR, 0x05, 0x04, 0x01, 0x81, 0x00, 0x00);
}

static void decode_rejects_v128_cleanly(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "v128", HDR, 0x01, 0x05, 0x01, 0x60, 0x01, 0x7b, 0x00);
}

static void decode_rejects_function_and_code_count_mismatch(void **state) {
  (void)state;
  /* one function declared, no code section */
  EXPECT(QB_MALFORMED, "function and code section have inconsistent lengths", HDR, 0x01, 0x04, 0x01,
         0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00);
  /* a body without a function */
  EXPECT(QB_MALFORMED, "function and code section have inconsistent lengths", HDR, 0x0a, 0x04, 0x01,
         0x02, 0x00, 0x0b);
}

static void decode_rejects_data_count_mismatch(void **state) {
  (void)state;
  EXPECT(QB_MALFORMED, "data count and data section have inconsistent lengths", HDR, 0x0c, 0x01,
         0x01);
  EXPECT(QB_MALFORMED, "data count and data section have inconsistent lengths", HDR, 0x05, 0x03,
         0x01, 0x00, 0x01, 0x0c, 0x01, 0x02, 0x0b, 0x07, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 'a');
}

static void decode_rejects_too_many_locals(void **state) {
  (void)state;
  /* 0xffffffff i32 + 2 i64: the sum passes 2^32 */
  EXPECT(QB_MALFORMED, "too many locals", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01,
         0x00, 0x0a, 0x0c, 0x01, 0x0a, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f, 0x02, 0x7e, 0x0b);
  /* 100000 locals is below 2^32 but above our limit */
  EXPECT(QB_LIMIT, "too many locals", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01,
         0x00, 0x0a, 0x08, 0x01, 0x06, 0x01, 0xa0, 0x8d, 0x06, 0x7f, 0x0b);
}

static void decode_rejects_huge_counts_before_allocating(void **state) {
  size_t before = qb_alloc_live_bytes();
  (void)state;
  qb_alloc_fail_after(0);
  /* 2^32-1 types announced in a 5-byte section */
  EXPECT(QB_MALFORMED, "unexpected end", HDR, 0x01, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f);
  EXPECT(QB_MALFORMED, "unexpected end", HDR, 0x07, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f);
  EXPECT(QB_MALFORMED, "length out of bounds", HDR, 0x0b, 0x07, 0x01, 0x01, 0xff, 0xff, 0xff, 0xff,
         0x0f);
  assert_int_equal(qb_alloc_live_bytes(), before);
}

static void decode_finds_illegal_opcode_in_constant_expression(void **state) {
  (void)state;
  /* binary.wast: a global initializer without `end` runs into the code section's id */
  EXPECT(QB_MALFORMED, "illegal opcode", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x06, 0x07, 0x01,
         0x7f, 0x00, 0x41, 0x00, 0x0a, 0x0b, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
}

/* ---- inspection ---------------------------------------------------------------------------- */

static void module_describes_its_imports_exports_and_sizes(void **state) {
  qw_module *m;
  qw_port port;
  qw_module_info info;
  (void)state;
  assert_int_equal(qw_module_load(eng, m_rich, sizeof m_rich, &m, NULL), QB_OK);
  assert_int_equal(qw_module_import_count(m), 2);
  qw_module_import(m, 0, &port);
  assert_int_equal(port.kind, QW_KFUNC);
  assert_string_equal(port.module, "env");
  assert_string_equal(port.name, "host");
  assert_int_equal(port.sig.nparams, 1);
  assert_int_equal(port.sig.params[0], QW_I32);
  assert_int_equal(port.sig.nresults, 1);
  qw_module_import(m, 1, &port);
  assert_int_equal(port.kind, QW_KGLOBAL);
  assert_int_equal(port.type, QW_I32);
  assert_int_equal(port.mut, 0);
  assert_int_equal(qw_module_export_count(m), 5);
  qw_module_export(m, 0, &port);
  assert_string_equal(port.name, "add");
  assert_int_equal(port.index, 1);
  assert_int_equal(port.sig.nparams, 2);
  qw_module_export(m, 1, &port);
  assert_int_equal(port.kind, QW_KMEMORY);
  assert_int_equal(port.min, 1);
  assert_int_equal(port.max, 3);
  assert_true(port.has_max);
  qw_module_export(m, 3, &port);
  assert_int_equal(port.kind, QW_KGLOBAL);
  assert_int_equal(port.type, QW_I64);
  assert_int_equal(port.mut, 1);
  qw_module_get_info(m, &info);
  assert_int_equal(info.size_bytes, sizeof m_rich);
  assert_int_equal(info.nfuncs, 4);
  assert_int_equal(info.nimported_funcs, 1);
  assert_int_equal(info.ntables, 1);
  assert_int_equal(info.nmemories, 1);
  assert_int_equal(info.nglobals, 3);
  assert_int_equal(info.nelems, 2);
  assert_int_equal(info.ndatas, 2);
  assert_true(info.start_func == -1);
  assert_true(info.code_bytes > 0);
  qw_module_free(m);
}

static void equal_function_types_share_a_canonical_id(void **state) {
  qw_module *m;
  (void)state;
  assert_int_equal(qw_module_load(eng, m_rich, sizeof m_rich, &m, NULL), QB_OK);
  /* type 1 is (i32) -> i32 for the import; type 2 is (i32 i32) -> i32 */
  uint8_t t[] = {QW_I32, QW_I32, QW_I32}, u[] = {QW_I32, QW_I32};
  uint32_t a, b;
  assert_int_equal(qw__engine_canon(eng, t, 2, 1, &a, NULL), QB_OK);
  assert_int_equal(qw__engine_canon(NULL, u, 1, 1, &b, NULL), QB_OK);
  assert_int_not_equal(a, b);
  assert_int_equal(m->types[m->func_types[1]].canon, a);
  assert_int_equal(m->types[m->func_types[0]].canon, b);
  qw_module_free(m);
}

static void module_keeps_its_own_copy_of_the_bytes(void **state) {
  uint8_t copy[sizeof m_rich];
  qw_module *m;
  qw_port port;
  (void)state;
  memcpy(copy, m_rich, sizeof copy);
  assert_int_equal(qw_module_load(eng, copy, sizeof copy, &m, NULL), QB_OK);
  memset(copy, 0xee, sizeof copy);
  qw_module_export(m, 0, &port);
  assert_string_equal(port.name, "add");
  assert_int_equal(m->funcs[0].body[0], 0x20); /* local.get */
  qw_module_free(m);
}

/* ---- out of memory -------------------------------------------------------------------------- */

static void load_fails_cleanly_for_every_allocation_failure(void **state) {
  uint64_t k;
  size_t before;
  qw_module *m;
  qb_err err;
  (void)state;
  /* intern the module's function types first: the table is process-wide and only grows */
  assert_int_equal(qw_module_load(eng, m_rich, sizeof m_rich, &m, NULL), QB_OK);
  qw_module_free(m);
  before = qb_alloc_live_bytes();
  for (k = 1;; k++) {
    qb_code rc;
    qb_alloc_fail_after(k);
    rc = qw_module_load(eng, m_rich, sizeof m_rich, &m, &err);
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      qw_module_free(m);
      break;
    }
    if (rc != QB_NOMEM)
      fail_msg("allocation %llu: %s %s", (unsigned long long)k, qb_code_name(rc), err.msg);
    assert_null(m);
    assert_int_equal(qb_alloc_live_bytes(), before);
  }
  assert_true(k > 3);
  assert_int_equal(qb_alloc_live_bytes(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(leb_u32_reads_boundaries_and_rejects_overlong_and_too_large),
      cmocka_unit_test(leb_signed_readers_sign_extend_and_check_unused_bits),
      cmocka_unit_test(decode_accepts_empty_module),
      cmocka_unit_test(decode_rejects_short_input_as_unexpected_end),
      cmocka_unit_test(decode_rejects_wrong_magic_and_version),
      cmocka_unit_test(decode_rejects_section_id_above_twelve),
      cmocka_unit_test(decode_rejects_section_longer_than_module),
      cmocka_unit_test(decode_rejects_section_with_bytes_left_over),
      cmocka_unit_test(decode_rejects_sections_out_of_order_or_repeated),
      cmocka_unit_test(decode_skips_custom_sections_anywhere_but_checks_their_names),
      cmocka_unit_test(decode_reports_leb_rules_in_section_headers),
      cmocka_unit_test(decode_rejects_malformed_import_kind),
      cmocka_unit_test(decode_rejects_malformed_mutability),
      cmocka_unit_test(decode_rejects_malformed_reference_type),
      cmocka_unit_test(decode_rejects_limits_flag_above_one),
      cmocka_unit_test(decode_rejects_v128_cleanly),
      cmocka_unit_test(decode_rejects_function_and_code_count_mismatch),
      cmocka_unit_test(decode_rejects_data_count_mismatch),
      cmocka_unit_test(decode_rejects_too_many_locals),
      cmocka_unit_test(decode_rejects_huge_counts_before_allocating),
      cmocka_unit_test(decode_finds_illegal_opcode_in_constant_expression),
      cmocka_unit_test(module_describes_its_imports_exports_and_sizes),
      cmocka_unit_test(equal_function_types_share_a_canonical_id),
      cmocka_unit_test(module_keeps_its_own_copy_of_the_bytes),
      cmocka_unit_test(load_fails_cleanly_for_every_allocation_failure),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
