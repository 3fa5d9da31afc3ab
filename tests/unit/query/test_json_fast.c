/* test_json_fast.c: the quick JSON reader (src/query/json_fast.c) against jansson's json_loadb,
** which it stands in for on every stored _source and request body: on each text below, and on
** 20,000 seeded mutations of them (bytes flipped, cut, duplicated), both must accept or both
** reject, with equal trees, equal key order, and equal integer/real types. */
#include "fixture.h"

#include "internal.h"

static const char *const texts[] = {
    "{}", "[]", " { } ", "{\"a\":1}", "{\"a\":1,\"b\":[1,2,3],\"c\":{\"d\":null}}",
    "{\"body\":\"the quick brown fox\",\"price\":12.5,\"days\":3,\"tier\":-0}",
    "[true,false,null]", "[1.0,-0.0,1e10,1E-5,2.5e+3,0.000001,123456789012345678]",
    "[9223372036854775807]", "[9223372036854775808]", "[-9223372036854775808]",
    "[-9223372036854775809]", "[1e400]", "[-1e400]", "[1e-400]", "[01]", "[1.]", "[.5]",
    "[-]", "[1e]", "[+1]", "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "{\"a\":\"\\u00e9\"}",
    "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\x\"}", "{\"\xc3\xa9t\xc3\xa9\":\"\xe2\x82\xac\"}",
    "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
    "{\"a\":\"\xf0\x9f\x98\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":\"tab\there\"}",
    "{\"a\":1,\"a\":2}", "{\"b\":1,\"a\":2,\"b\":3}", "{\"a\" 1}", "{\"a\":1,}", "[1,]", "[1 2]",
    "{a:1}", "{\"a\":tru}", "{\"a\":nul}", "\"str\"", "3", "-1.5", "null", "", "   ", "{} x",
    "{}{}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{\"k\":\"" "a long key value aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    "{\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\":1}",
    "{\"a\":[{\"b\":[{\"c\":\"d\\\\\"}]}],\"e\":1.25}", "\t\n\r{\"a\" : [ 1 , 2 ] }\n",
};

/* equal trees with equal types and key order (json_equal ignores order and int vs real) */
static int same(const json_t *a, const json_t *b) {
  if (json_typeof(a) != json_typeof(b)) return 0;
  switch (json_typeof(a)) {
  case JSON_OBJECT: {
    if (json_object_size(a) != json_object_size(b)) return 0;
    void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
    for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia), ib = json_object_iter_next((json_t *)b, ib))
      if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) ||
          !same(json_object_iter_value(ia), json_object_iter_value(ib)))
        return 0;
    return !ia && !ib;
  }
  case JSON_ARRAY:
    if (json_array_size(a) != json_array_size(b)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!same(json_array_get(a, i), json_array_get(b, i))) return 0;
    return 1;
  case JSON_REAL: {
    double x = json_real_value(a), y = json_real_value(b);
    return memcmp(&x, &y, sizeof x) == 0; /* -0.0 stays -0.0 */
  }
  default: return json_equal((json_t *)a, (json_t *)b);
  }
}

static int check(const char *s, size_t n, int flags) {
  json_error_t e1, e2;
  json_t *a = qq__json_load(s, n, flags, &e1), *b = json_loadb(s, n, flags, &e2);
  int ok = (!a && !b) || (a && b && same(a, b));
  if (!ok) fprintf(stderr, "differs (flags %d): %.*s\n", flags, (int)n, s);
  if (!a && !b && strcmp(e1.text, e2.text)) ok = 0, fprintf(stderr, "message differs: %s\n", e1.text);
  json_decref(a);
  json_decref(b);
  return ok;
}

static void test_same_as_jansson(void **state) {
  (void)state;
  static const int flags[3] = {0, JSON_DECODE_ANY, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES};
  int bad = 0;
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
    for (int f = 0; f < 3; f++) bad += !check(texts[i], strlen(texts[i]), flags[f]);
  assert_int_equal(bad, 0);
}

static void test_mutations(void **state) {
  (void)state;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  char buf[512];
  int bad = 0;
  static const char alphabet[] = "{}[]\",:\\ 0123456789.eE+-truefalsnul\x80\xc3\xa9\xff\t\n";
  for (int it = 0; it < 20000; it++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const char *t = texts[x % (sizeof texts / sizeof *texts)];
    size_t n = strlen(t) < sizeof buf ? strlen(t) : sizeof buf - 1;
    memcpy(buf, t, n);
    for (int m = 0; m < 1 + (int)(x >> 60 & 3); m++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t at = n ? (size_t)(x >> 8) % n : 0;
      switch (x & 3) {
      case 0: if (n) buf[at] = alphabet[(x >> 32) % (sizeof alphabet - 1)]; break;
      case 1: n = at; break;
      case 2: if (n + 1 < sizeof buf) memmove(buf + at + 1, buf + at, n - at), n++; break;
      default: if (n) memmove(buf + at, buf + at + 1, n - at - 1), n--; break;
      }
    }
    bad += !check(buf, n, (x >> 40) & 1 ? JSON_DECODE_ANY | JSON_REJECT_DUPLICATES : 0);
  }
  assert_int_equal(bad, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_as_jansson),
      cmocka_unit_test(test_mutations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
