/* test_multipart.c: the multipart/form-data parser used by PUT /_udf/{name}: parts found with
** their names, types and binary data intact; every malformed body rejected with a reason,
** never read past its end (ASan watches the exact-size copies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define CT "multipart/form-data; boundary=XyZ"

/* Parse a heap copy of exactly LEN bytes, so ASan catches any read past the end. */
static qb_code parse(const char *ctype, const char *body, size_t len, qs_part *parts, size_t *n,
                     qb_arena *a, uint8_t **copy, qb_err *err) {
  *copy = malloc(len ? len : 1);
  memcpy(*copy, body, len);
  return qs__multipart_parse(ctype, *copy, len, a, parts, n, err);
}

static void multipart_finds_manifest_and_binary_wasm(void **state) {
  static const char body[] =
      "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"manifest\"\r\n"
      "Content-Type: application/json\r\n\r\n{\"kind\":\"score\"}\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"wasm\"; filename=\"m.wasm\"\r\n"
      "Content-Type: application/wasm\r\n\r\n\0asm\x01\0\0\0\r\n--XyZ--\r\n";
  qs_part parts[QS_PARTS_MAX];
  size_t n;
  qb_arena a;
  qb_arena_init(&a);
  uint8_t *copy;
  qb_err err;
  assert_int_equal(parse(CT, body, sizeof body - 1, parts, &n, &a, &copy, &err), QB_OK);
  assert_int_equal(n, 2);
  assert_string_equal(parts[0].name, "manifest");
  assert_string_equal(parts[0].type, "application/json");
  assert_int_equal(parts[0].len, 16);
  assert_memory_equal(parts[0].data, "{\"kind\":\"score\"}", 16);
  assert_string_equal(parts[1].name, "wasm");
  assert_string_equal(parts[1].filename, "m.wasm");
  assert_int_equal(parts[1].len, 8);
  assert_memory_equal(parts[1].data, "\0asm\x01\0\0\0", 8);
  free(copy);
  qb_arena_fini(&a);
}

static void multipart_accepts_a_quoted_boundary(void **state) {
  static const char body[] =
      "--a b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--a b--";
  qs_part parts[QS_PARTS_MAX];
  size_t n;
  qb_arena a;
  qb_arena_init(&a);
  uint8_t *copy;
  assert_int_equal(parse("multipart/form-data; boundary=\"a b\"", body, sizeof body - 1, parts,
                         &n, &a, &copy, NULL), QB_OK);
  assert_int_equal(n, 1);
  assert_int_equal(parts[0].len, 1);
  free(copy);
  qb_arena_fini(&a);
}

static void multipart_rejects_malformed_bodies(void **state) {
  static const char *const bad[] = {
      "",
      "--XyZ",
      "--XyZ\r\n",
      "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n",
      "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ndata without end",
      "--XyZ\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--XyZ--",
      "--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--",
      "--XyZjunk",
      "no boundary at all",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    qs_part parts[QS_PARTS_MAX];
    size_t n;
    qb_arena a;
    qb_arena_init(&a);
    uint8_t *copy;
    qb_err err;
    assert_int_equal(parse(CT, bad[i], strlen(bad[i]), parts, &n, &a, &copy, &err), QB_MALFORMED);
    assert_non_null(strstr(err.msg, "multipart: "));
    free(copy);
    qb_arena_fini(&a);
  }
}

static void multipart_needs_a_boundary_and_the_right_type(void **state) {
  qs_part parts[QS_PARTS_MAX];
  size_t n;
  qb_arena a;
  qb_arena_init(&a);
  qb_err err;
  assert_int_equal(qs__multipart_parse("multipart/form-data", (const uint8_t *)"x", 1, &a, parts,
                                       &n, &err), QB_MALFORMED);
  assert_non_null(strstr(err.msg, "boundary"));
  assert_int_equal(qs__multipart_parse("application/json", (const uint8_t *)"x", 1, &a, parts, &n,
                                       &err), QB_MALFORMED);
  qb_arena_fini(&a);
}

static void multipart_limits_the_number_of_parts(void **state) {
  char body[4096] = "";
  for (int i = 0; i < QS_PARTS_MAX + 1; i++)
    strcat(body, "--XyZ\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nv\r\n");
  strcat(body, "--XyZ--");
  qs_part parts[QS_PARTS_MAX];
  size_t n;
  qb_arena a;
  qb_arena_init(&a);
  uint8_t *copy;
  qb_err err;
  assert_int_equal(parse(CT, body, strlen(body), parts, &n, &a, &copy, &err), QB_MALFORMED);
  assert_int_equal(n, QS_PARTS_MAX);
  free(copy);
  qb_arena_fini(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(multipart_finds_manifest_and_binary_wasm),
      cmocka_unit_test(multipart_accepts_a_quoted_boundary),
      cmocka_unit_test(multipart_rejects_malformed_bodies),
      cmocka_unit_test(multipart_needs_a_boundary_and_the_right_type),
      cmocka_unit_test(multipart_limits_the_number_of_parts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
