/* test_validate.c: the validator (validate.c): typing of bodies with the spec's wording and the
** place in the message, unreachable code, control frames and block types, index spaces,
** instruction-level malformed encodings, and the module-level rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

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

/* ---- a tiny module builder ----------------------------------------------------------------- */

typedef struct mb {
  uint8_t b[2048];
  size_t n;
} mb;

static void put(mb *m, const void *p, size_t n) {
  assert_true(m->n + n <= sizeof m->b);
  memcpy(m->b + m->n, p, n);
  m->n += n;
}
static void put1(mb *m, uint8_t x) {
  put(m, &x, 1);
}
static void leb(mb *m, uint32_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    put1(m, b | (v ? 0x80 : 0));
  } while (v);
}
static void section(mb *m, uint8_t id, const mb *content) {
  put1(m, id);
  leb(m, (uint32_t)content->n);
  put(m, content->b, content->n);
}

enum { MEM = 1, GLOBALS = 2, TABLE = 4, DATACOUNT = 8, EXPORT0 = 16, EXTRA_TYPE = 32 };

static uint8_t vt(char c) {
  switch (c) {
  case 'i':
    return QW_I32;
  case 'l':
    return QW_I64;
  case 'f':
    return QW_F32;
  case 'd':
    return QW_F64;
  case 'r':
    return QW_FUNCREF;
  default:
    return QW_EXTERNREF;
  }
}

static void functype(mb *s, const char *sig) {
  const char *colon = strchr(sig, ':');
  size_t i;
  put1(s, 0x60);
  leb(s, (uint32_t)(colon - sig));
  for (i = 0; sig + i < colon; i++)
    put1(s, vt(sig[i]));
  leb(s, (uint32_t)strlen(colon + 1));
  for (i = 0; colon[1 + i]; i++)
    put1(s, vt(colon[1 + i]));
}

/* A module with one function of type SIG ("ii:i" = (i32 i32) -> i32) and body BODY (locals
** declarations included, final end included). FLAGS add: memory 0 (1 page), globals (0: i32
** const, 1: mut i32), table 0 (funcref, 1), a data count of 1 and a passive data segment,
** an export of function 0, a second type "i:ii" (type 1). */
static void build(mb *m, const char *sig, const uint8_t *body, size_t n, unsigned flags) {
  mb s = {.n = 0};
  static const uint8_t hdr[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  m->n = 0;
  put(m, hdr, 8);
  leb(&s, flags & EXTRA_TYPE ? 2 : 1);
  functype(&s, sig);
  if (flags & EXTRA_TYPE)
    functype(&s, "i:ii");
  section(m, 1, &s);
  s.n = 0;
  put(&s, "\x01\x00", 2);
  section(m, 3, &s);
  if (flags & TABLE) {
    s.n = 0;
    put(&s, "\x01\x70\x00\x01", 4);
    section(m, 4, &s);
  }
  if (flags & MEM) {
    s.n = 0;
    put(&s, "\x01\x00\x01", 3);
    section(m, 5, &s);
  }
  if (flags & GLOBALS) {
    s.n = 0;
    put(&s, "\x02\x7f\x00\x41\x07\x0b\x7f\x01\x41\x00\x0b", 11);
    section(m, 6, &s);
  }
  if (flags & EXPORT0) {
    s.n = 0;
    put(&s, "\x01\x01\x66\x00\x00", 5);
    section(m, 7, &s);
  }
  if (flags & DATACOUNT) {
    s.n = 0;
    put1(&s, 1);
    section(m, 12, &s);
  }
  s.n = 0;
  put1(&s, 1);
  leb(&s, (uint32_t)n);
  put(&s, body, n);
  section(m, 10, &s);
  if (flags & DATACOUNT) {
    s.n = 0;
    put(&s, "\x01\x01\x02hi", 5);
    section(m, 11, &s);
  }
}

static void expect_bytes(const uint8_t *b, size_t n, qb_code code, const char *want) {
  qw_module *m = NULL;
  qb_err err;
  qb_code rc = qw_module_load(eng, b, n, &m, &err);
  if (rc != code || (want && !strstr(err.msg, want)))
    fail_msg("got %s \"%s\", want %s \"%s\"", qb_code_name(rc), rc ? err.msg : "",
             qb_code_name(code), want ? want : "");
  qw_module_free(m);
}

#define BODY(code, want, sig, flags, ...)                                                          \
  do {                                                                                             \
    static const uint8_t body_[] = {__VA_ARGS__};                                                  \
    mb m_;                                                                                         \
    build(&m_, sig, body_, sizeof body_, flags);                                                   \
    expect_bytes(m_.b, m_.n, code, want);                                                          \
  } while (0)

#define MODULE(code, want, ...)                                                                    \
  do {                                                                                             \
    static const uint8_t b_[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, __VA_ARGS__};     \
    expect_bytes(b_, sizeof b_, code, want);                                                       \
  } while (0)

/* ---- bodies --------------------------------------------------------------------------------- */

static void validate_accepts_a_well_typed_body(void **state) {
  (void)state;
  /* local.get 0, local.get 1, i32.add */
  BODY(QB_OK, NULL, "ii:i", 0, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b);
  /* locals: 2 f64; f64.add of them, drop; i32.const 0 */
  BODY(QB_OK, NULL, ":i", 0, 0x01, 0x02, 0x7c, 0x20, 0x00, 0x20, 0x01, 0xa0, 0x1a, 0x41, 0x00,
       0x0b);
}

static void validate_names_function_offset_and_instruction_in_type_mismatch(void **state) {
  mb m;
  qw_module *mod;
  qb_err err;
  /* f64.const 0, i32.const 1, i32.add */
  static const uint8_t body[] = {0x00, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0x01, 0x6a, 0x0b};
  (void)state;
  build(&m, ":i", body, sizeof body, 0);
  assert_int_equal(qw_module_load(eng, m.b, m.n, &mod, &err), QB_INVALID);
  /* i32.add is the 13th byte of the body, which is the last 14 bytes of the module */
  char want[160];
  snprintf(
      want, sizeof want,
      "code section: function 0 at offset 0x%zx: type mismatch in i32.add (expected i32, got f64)",
      m.n - 2);
  assert_string_equal(err.msg, want);
}

static void validate_rejects_missing_and_extra_results(void **state) {
  (void)state;
  BODY(QB_INVALID, "type mismatch", ":i", 0, 0x00, 0x0b);
  BODY(QB_INVALID, "type mismatch", ":", 0, 0x00, 0x41, 0x00, 0x0b);
  BODY(QB_INVALID, "type mismatch", ":i", 0, 0x00, 0x42, 0x00, 0x0b);
}

static void validate_allows_any_operands_after_unreachable(void **state) {
  (void)state;
  /* unreachable, i32.add, drop, select, f32.neg (pops unknown) -> stays polymorphic */
  BODY(QB_OK, NULL, ":i", 0, 0x00, 0x00, 0x6a, 0x1a, 0x1b, 0x0b);
  BODY(QB_OK, NULL, ":l", 0, 0x00, 0x00, 0x0f, 0x0b); /* unreachable, return */
  BODY(QB_INVALID, "type mismatch in return (expected i64, got nothing)", ":l", 0, 0x00, 0x0f,
       0x0b);
  /* but a known operand must still match: unreachable, i64.const 0, i32.eqz */
  BODY(QB_INVALID, "type mismatch in i32.eqz (expected i32, got i64)", ":", 0, 0x00, 0x00, 0x42,
       0x00, 0x45, 0x1a, 0x0b);
}

static void validate_checks_block_results_and_branches(void **state) {
  (void)state;
  /* block (result i32) i32.const 1 br 0 end */
  BODY(QB_OK, NULL, ":i", 0, 0x00, 0x02, 0x7f, 0x41, 0x01, 0x0c, 0x00, 0x0b, 0x0b);
  /* block (result i32) br 0 end: the branch carries nothing */
  BODY(QB_INVALID, "type mismatch in br", ":i", 0, 0x00, 0x02, 0x7f, 0x0c, 0x00, 0x0b, 0x0b);
  /* a loop's label takes its params: i32.const 1, loop (type 1: i32 -> i32 i32) drop br 0 end */
  BODY(QB_INVALID, "type mismatch in br", ":ii", EXTRA_TYPE, 0x00, 0x41, 0x01, 0x03, 0x01, 0x1a,
       0x0c, 0x00, 0x0b, 0x0b);
  BODY(QB_OK, NULL, ":ii", EXTRA_TYPE, 0x00, 0x41, 0x01, 0x03, 0x01, 0x0c, 0x00, 0x0b, 0x0b);
  BODY(QB_INVALID, "unknown label 2 in br", ":", 0, 0x00, 0x02, 0x40, 0x0c, 0x02, 0x0b, 0x0b);
}

static void validate_checks_multi_value_block_types(void **state) {
  (void)state;
  /* type 1 = (i32) -> (i32 i32): i32.const 5, block (type 1) local... dup via local.tee */
  BODY(QB_OK, NULL, ":ii", EXTRA_TYPE, 0x01, 0x01, 0x7f, 0x41, 0x05, 0x02, 0x01, 0x22, 0x00, 0x20,
       0x00, 0x0b, 0x0b);
  /* a block type index that does not exist */
  BODY(QB_INVALID, "unknown type", ":", 0, 0x00, 0x02, 0x05, 0x0b, 0x0b);
  /* block (type 1) without its i32 param on the stack */
  BODY(QB_INVALID, "type mismatch", ":ii", EXTRA_TYPE, 0x00, 0x02, 0x01, 0x41, 0x00, 0x41, 0x00,
       0x0b, 0x0b);
}

static void validate_requires_if_without_else_to_keep_its_types(void **state) {
  (void)state;
  /* i32.const 1, if (result i32) i32.const 2 end */
  BODY(QB_INVALID, "type mismatch", ":i", 0, 0x00, 0x41, 0x01, 0x04, 0x7f, 0x41, 0x02, 0x0b, 0x0b);
  /* with the else it is fine */
  BODY(QB_OK, NULL, ":i", 0, 0x00, 0x41, 0x01, 0x04, 0x7f, 0x41, 0x02, 0x05, 0x41, 0x03, 0x0b,
       0x0b);
  BODY(QB_MALFORMED, "else without if", ":", 0, 0x00, 0x05, 0x0b);
}

static void validate_checks_br_table_arity_and_types(void **state) {
  (void)state;
  /* block (result i32) block  i32.const 0 i32.const 0 br_table 0 1  end end: arity 0 vs 1 */
  BODY(QB_INVALID, "type mismatch in br_table", ":i", 0, 0x00, 0x02, 0x7f, 0x02, 0x40, 0x41, 0x00,
       0x41, 0x00, 0x0e, 0x01, 0x00, 0x01, 0x0b, 0x41, 0x00, 0x0b, 0x0b);
  /* same arity: fine */
  BODY(QB_OK, NULL, ":i", 0, 0x00, 0x02, 0x7f, 0x41, 0x07, 0x41, 0x00, 0x0e, 0x01, 0x00, 0x01, 0x0b,
       0x0b);
}

static void validate_checks_select_with_and_without_type(void **state) {
  (void)state;
  /* ref.null func x2, i32.const 1, select (untyped): references need the typed form */
  BODY(QB_INVALID, "type mismatch in select", ":", 0, 0x00, 0xd0, 0x70, 0xd0, 0x70, 0x41, 0x01,
       0x1b, 0x1a, 0x0b);
  BODY(QB_OK, NULL, ":", 0, 0x00, 0xd0, 0x70, 0xd0, 0x70, 0x41, 0x01, 0x1c, 0x01, 0x70, 0x1a, 0x0b);
  BODY(QB_INVALID, "invalid result arity", ":", 0, 0x00, 0x41, 0x01, 0x41, 0x01, 0x41, 0x01, 0x1c,
       0x02, 0x7f, 0x7f, 0x1a, 0x0b);
  BODY(QB_INVALID, "type mismatch in select (expected i32, got i64)", ":", 0, 0x00, 0x41, 0x01,
       0x42, 0x01, 0x41, 0x01, 0x1b, 0x1a, 0x0b);
}

static void validate_rejects_unknown_indices(void **state) {
  (void)state;
  BODY(QB_INVALID, "unknown local 2 in local.get", "i:", 0, 0x01, 0x01, 0x7f, 0x20, 0x02, 0x1a,
       0x0b);
  BODY(QB_INVALID, "unknown global 0 in global.get", ":", 0, 0x00, 0x23, 0x00, 0x1a, 0x0b);
  BODY(QB_INVALID, "unknown function 1 in call", ":", 0, 0x00, 0x10, 0x01, 0x0b);
  BODY(QB_INVALID, "unknown memory 0 in i32.load", ":", 0, 0x00, 0x41, 0x00, 0x28, 0x02, 0x00, 0x1a,
       0x0b);
  BODY(QB_INVALID, "unknown table 0 in table.get", ":", 0, 0x00, 0x41, 0x00, 0x25, 0x00, 0x1a,
       0x0b);
  BODY(QB_INVALID, "unknown type 3 in call_indirect", ":", TABLE, 0x00, 0x41, 0x00, 0x11, 0x03,
       0x00, 0x0b);
  BODY(QB_INVALID, "unknown data segment 1 in data.drop", ":", MEM | DATACOUNT, 0x00, 0xfc, 0x09,
       0x01, 0x0b);
  BODY(QB_INVALID, "unknown elem segment 0 in elem.drop", ":", 0, 0x00, 0xfc, 0x0d, 0x00, 0x0b);
}

static void validate_rejects_alignment_larger_than_natural(void **state) {
  (void)state;
  /* i32.load16_u with align 2^2 */
  BODY(QB_INVALID, "alignment must not be larger than natural", ":", MEM, 0x00, 0x41, 0x00, 0x2f,
       0x02, 0x00, 0x1a, 0x0b);
  BODY(QB_OK, NULL, ":", MEM, 0x00, 0x41, 0x00, 0x2f, 0x01, 0x00, 0x1a, 0x0b);
  BODY(QB_MALFORMED, "malformed memop flags", ":", MEM, 0x00, 0x41, 0x00, 0x28, 0x20, 0x00, 0x1a,
       0x0b);
}

static void validate_rejects_set_of_immutable_global(void **state) {
  (void)state;
  BODY(QB_INVALID, "global is immutable", ":", GLOBALS, 0x00, 0x41, 0x00, 0x24, 0x00, 0x0b);
  BODY(QB_OK, NULL, ":", GLOBALS, 0x00, 0x41, 0x00, 0x24, 0x01, 0x0b);
}

static void validate_reports_bad_instruction_encodings_as_malformed(void **state) {
  (void)state;
  BODY(QB_MALFORMED, "illegal opcode", ":", 0, 0x00, 0x06, 0x0b);
  BODY(QB_MALFORMED, "illegal opcode", ":", 0, 0x00, 0xfc, 0x12, 0x0b);
  BODY(QB_MALFORMED, "illegal opcode", ":", 0, 0x00, 0xfd, 0x00, 0x0b); /* SIMD prefix */
  BODY(QB_MALFORMED, "zero byte expected", ":", MEM, 0x00, 0x3f, 0x01, 0x1a, 0x0b);
  BODY(QB_MALFORMED, "integer representation too long", ":", 0, 0x00, 0x41, 0x80, 0x80, 0x80, 0x80,
       0x80, 0x00, 0x1a, 0x0b);
  BODY(QB_MALFORMED, "integer too large", ":", 0, 0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x70, 0x1a,
       0x0b);
  BODY(QB_MALFORMED, "malformed reference type", ":", 0, 0x00, 0xd0, 0x7f, 0x1a, 0x0b);
}

static void validate_rejects_body_without_end_or_with_trailing_bytes(void **state) {
  (void)state;
  BODY(QB_MALFORMED, "unexpected end of section or function", ":", 0, 0x00, 0x01);
  BODY(QB_MALFORMED, "section size mismatch", ":", 0, 0x00, 0x0b, 0x01);
}

static void validate_requires_declared_function_references(void **state) {
  (void)state;
  BODY(QB_INVALID, "undeclared function reference", ":", 0, 0x00, 0xd2, 0x00, 0x1a, 0x0b);
  BODY(QB_OK, NULL, ":", EXPORT0, 0x00, 0xd2, 0x00, 0x1a, 0x0b); /* exported = declared */
}

static void validate_requires_data_count_for_memory_init(void **state) {
  (void)state;
  BODY(QB_OK, NULL, ":", MEM | DATACOUNT, 0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x08,
       0x00, 0x00, 0x0b);
  /* data.drop with a data section but no data count section (binary.wast) */
  MODULE(QB_MALFORMED, "data count section required", 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03,
         0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x00, 0x0a, 0x07, 0x01, 0x05, 0x00, 0xfc, 0x09,
         0x00, 0x0b, 0x0b, 0x03, 0x01, 0x01, 0x00);
}

/* ---- module-level rules --------------------------------------------------------------------- */

static void validate_rejects_multiple_memories_and_bad_limits(void **state) {
  (void)state;
  MODULE(QB_INVALID, "multiple memories", 0x05, 0x05, 0x02, 0x00, 0x00, 0x00, 0x00);
  MODULE(QB_INVALID, "memory size must be at most 65536 pages (4GiB)", 0x05, 0x05, 0x01, 0x00, 0x81,
         0x80, 0x04);
  MODULE(QB_INVALID, "size minimum must not be greater than maximum", 0x05, 0x04, 0x01, 0x01, 0x02,
         0x01);
  MODULE(QB_INVALID, "size minimum must not be greater than maximum", 0x04, 0x05, 0x01, 0x70, 0x01,
         0x02, 0x01);
  /* several tables are fine (reference types) */
  MODULE(QB_OK, NULL, 0x04, 0x07, 0x02, 0x70, 0x00, 0x01, 0x6f, 0x00, 0x01);
}

static void validate_rejects_duplicate_export_names(void **state) {
  (void)state;
  MODULE(QB_INVALID, "duplicate export name \"m\"", 0x05, 0x03, 0x01, 0x00, 0x00, 0x07, 0x09, 0x02,
         0x01, 'm', 0x02, 0x00, 0x01, 'm', 0x02, 0x00);
  MODULE(QB_OK, NULL, 0x05, 0x03, 0x01, 0x00, 0x00, 0x07, 0x09, 0x02, 0x01, 'm', 0x02, 0x00, 0x01,
         'n', 0x02, 0x00);
  MODULE(QB_INVALID, "unknown memory 0", 0x07, 0x05, 0x01, 0x01, 'm', 0x02, 0x00);
}

static void validate_checks_constant_expressions(void **state) {
  (void)state;
  /* global i32 (i32.const 1 i32.const 2 i32.add): not constant in 2.0 */
  MODULE(QB_INVALID, "constant expression required", 0x06, 0x09, 0x01, 0x7f, 0x00, 0x41, 0x01, 0x41,
         0x02, 0x6a, 0x0b);
  /* two constants: one too many */
  MODULE(QB_INVALID, "type mismatch", 0x06, 0x08, 0x01, 0x7f, 0x00, 0x41, 0x01, 0x41, 0x02, 0x0b);
  /* empty */
  MODULE(QB_INVALID, "type mismatch", 0x06, 0x04, 0x01, 0x7f, 0x00, 0x0b);
  /* wrong type */
  MODULE(QB_INVALID, "type mismatch", 0x06, 0x06, 0x01, 0x7f, 0x00, 0x42, 0x00, 0x0b);
  /* global.get of a global defined in the module: only imports are visible */
  MODULE(QB_INVALID, "unknown global 0", 0x06, 0x0b, 0x02, 0x7f, 0x00, 0x41, 0x00, 0x0b, 0x7f, 0x00,
         0x23, 0x00, 0x0b);
  /* global.get of a mutable imported global */
  MODULE(QB_INVALID, "constant expression required", 0x02, 0x08, 0x01, 0x01, 'm', 0x01, 'g', 0x03,
         0x7f, 0x01, 0x06, 0x06, 0x01, 0x7f, 0x00, 0x23, 0x00, 0x0b);
  /* ... of an immutable one: fine */
  MODULE(QB_OK, NULL, 0x02, 0x08, 0x01, 0x01, 'm', 0x01, 'g', 0x03, 0x7f, 0x00, 0x06, 0x06, 0x01,
         0x7f, 0x00, 0x23, 0x00, 0x0b);
}

static void validate_checks_start_function(void **state) {
  (void)state;
  /* type 0 = (i32) -> (); func 0; start 0 */
  MODULE(QB_INVALID, "start function", 0x01, 0x05, 0x01, 0x60, 0x01, 0x7f, 0x00, 0x03, 0x02, 0x01,
         0x00, 0x08, 0x01, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  MODULE(QB_INVALID, "unknown function 1", 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01,
         0x00, 0x08, 0x01, 0x01, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  MODULE(QB_OK, NULL, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x08, 0x01, 0x00,
         0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
}

static void validate_checks_element_segments(void **state) {
  (void)state;
  /* externref table, active funcref segment: type mismatch */
  MODULE(QB_INVALID, "type mismatch", 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
         0x04, 0x04, 0x01, 0x6f, 0x00, 0x01, 0x09, 0x07, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 0x00,
         0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  /* segment for a table that does not exist */
  MODULE(QB_INVALID, "unknown table 0", 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
         0x09, 0x07, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  /* a function index out of range in a segment */
  MODULE(QB_INVALID, "unknown function 5", 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01,
         0x00, 0x04, 0x04, 0x01, 0x70, 0x00, 0x01, 0x09, 0x07, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01,
         0x05, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
}

static void validate_fails_cleanly_for_every_allocation_failure(void **state) {
  static const uint8_t body[] = {0x00, 0x02, 0x7f, 0x02, 0x7f, 0x02, 0x7f,
                                 0x41, 0x01, 0x0b, 0x0b, 0x0b, 0x0b};
  mb m;
  uint64_t k;
  size_t before;
  (void)state;
  build(&m, ":i", body, sizeof body, GLOBALS | EXPORT0 | MEM);
  expect_bytes(m.b, m.n, QB_OK, NULL);
  before = qb_alloc_live_bytes();
  for (k = 1;; k++) {
    qw_module *mod;
    qb_err err;
    qb_code rc;
    qb_alloc_fail_after(k);
    rc = qw_module_load(eng, m.b, m.n, &mod, &err);
    qb_alloc_fail_after(0);
    if (rc == QB_OK) {
      qw_module_free(mod);
      break;
    }
    assert_int_equal(rc, QB_NOMEM);
    assert_int_equal(qb_alloc_live_bytes(), before);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(validate_accepts_a_well_typed_body),
      cmocka_unit_test(validate_names_function_offset_and_instruction_in_type_mismatch),
      cmocka_unit_test(validate_rejects_missing_and_extra_results),
      cmocka_unit_test(validate_allows_any_operands_after_unreachable),
      cmocka_unit_test(validate_checks_block_results_and_branches),
      cmocka_unit_test(validate_checks_multi_value_block_types),
      cmocka_unit_test(validate_requires_if_without_else_to_keep_its_types),
      cmocka_unit_test(validate_checks_br_table_arity_and_types),
      cmocka_unit_test(validate_checks_select_with_and_without_type),
      cmocka_unit_test(validate_rejects_unknown_indices),
      cmocka_unit_test(validate_rejects_alignment_larger_than_natural),
      cmocka_unit_test(validate_rejects_set_of_immutable_global),
      cmocka_unit_test(validate_reports_bad_instruction_encodings_as_malformed),
      cmocka_unit_test(validate_rejects_body_without_end_or_with_trailing_bytes),
      cmocka_unit_test(validate_requires_declared_function_references),
      cmocka_unit_test(validate_requires_data_count_for_memory_init),
      cmocka_unit_test(validate_rejects_multiple_memories_and_bad_limits),
      cmocka_unit_test(validate_rejects_duplicate_export_names),
      cmocka_unit_test(validate_checks_constant_expressions),
      cmocka_unit_test(validate_checks_start_function),
      cmocka_unit_test(validate_checks_element_segments),
      cmocka_unit_test(validate_fails_cleanly_for_every_allocation_failure),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
