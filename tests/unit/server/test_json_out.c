/* test_json_out.c: response JSON text (json_out.c): numbers come back as clients write them
** (the fewest digits that read back as the same double, JavaScript's layout), strings are
** escaped as JSON requires, and the text parses back to an equal tree, compact and pretty. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static char *text_of(const json_t *j, int pretty) {
  qb_buf b;
  qb_buf_init(&b);
  assert_int_equal(qs__json_write(j, pretty, &b, NULL), QB_OK);
  qb_buf_append(&b, "", 1);
  char *s = strdup(b.data);
  qb_buf_fini(&b);
  return s;
}

static void reals_print_as_written(void **st) {
  (void)st;
  static const struct { double v; const char *want; } m[] = {
      {1.36, "1.36"}, {0.1, "0.1"}, {100.0, "100.0"}, {0.0, "0.0"}, {-0.0, "-0.0"},
      {-2.5e-7, "-2.5e-7"}, {0.000001, "0.000001"}, {6.02e23, "6.02e+23"},
      {123456789012345678901.0, "123456789012345680000.0"}, {1e21, "1e+21"},
      {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
      {0.29537409543991089, "0.2953740954399109"},
  };
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    json_t *j = json_real(m[i].v);
    char *t = text_of(j, 0);
    if (strcmp(t, m[i].want)) fail_msg("%.17g: got %s, want %s", m[i].v, t, m[i].want);
    free(t);
    json_decref(j);
  }
}

static void every_real_reads_back_as_the_same_double(void **st) {
  (void)st;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double v;
    memcpy(&v, &x, sizeof v);
    if (!isfinite(v)) continue;
    if (i % 2) v = (double)(int64_t)(x % 2000001) / 1000.0 - 1000.0; /* "typed" values too */
    json_t *j = json_real(v);
    char *t = text_of(j, 0);
    double back = strtod(t, NULL);
    if (memcmp(&back, &v, sizeof v)) fail_msg("%.17g printed as %s reads back as %.17g", v, t, back);
    free(t);
    json_decref(j);
  }
}

static void trees_read_back_equal_compact_and_pretty(void **st) {
  (void)st;
  const char *src = "{\"a\":[1,2.5,\"x\\\"y\\\\z\\n\\u0001\\u007f\",true,false,null,{}],"
                    "\"b\":{\"c\":[],\"d\":\"Gr\xc3\xbc\xc3\x9f" "e\"},\"e\":-7}";
  json_t *j = json_loads(src, 0, NULL);
  assert_non_null(j);
  char *c = text_of(j, 0), *p = text_of(j, 1);
  assert_string_equal(c, "{\"a\":[1,2.5,\"x\\\"y\\\\z\\n\\u0001\x7f\",true,false,null,{}],"
                         "\"b\":{\"c\":[],\"d\":\"Gr\xc3\xbc\xc3\x9f" "e\"},\"e\":-7}");
  /* jansson's JSON_INDENT(2) layout, which ?pretty printed before */
  char *want = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  assert_string_equal(p, want);
  free(want);
  json_t *a = json_loads(c, 0, NULL), *b = json_loads(p, 0, NULL);
  assert_true(json_equal(a, j) && json_equal(b, j));
  json_decref(a);
  json_decref(b);
  free(c);
  free(p);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reals_print_as_written),
      cmocka_unit_test(every_real_reads_back_as_the_same_double),
      cmocka_unit_test(trees_read_back_equal_compact_and_pretty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
