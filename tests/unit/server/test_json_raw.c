/* test_json_raw.c: a stored _source goes into a response as it is only when that changes
** nothing (issue 14; src/query/source_raw.c): every text qq_json_canonical accepts must be
** JSON that jansson reads and the server's compact writer (json_out.c) prints back byte for
** byte; on the texts below, on 20,000 seeded mutations of them, and on reals written every way.
** And it must accept the common shapes, or the fast path would never be taken. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static const char *const accepted[] = {
    "{}", "{\"a\":1}", "{\"a\":[]}", "{\"a\":{}}", "{\"a\":1,\"b\":[1,2,3],\"c\":{\"d\":null}}",
    "{\"body\":\"the quick brown fox jumps over the lazy dog\",\"price\":12.5,\"days\":3,\"tier\":-7}",
    "{\"a\":[true,false,null]}", "{\"r\":[1.0,-0.0,0.0,0.000001,100.0,1e+21,2.5e-7,6.02e+23,0.1]}",
    "{\"i\":[123456789012345678,-123456789012345678,0]}",
    "{\"s\":\"\\\"\\\\\\n\\r\\t\\b\\f\"}", "{\"\xc3\xa9t\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}",
    "{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}", "{\"del\":\"\x7f\"}",
    "{\"long\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
};

static const char *const refused[] = {
    "", "[]", "[1]", "\"s\"", "3", " {}", "{} ", "{ }", "{\"a\": 1}", "{\"a\" :1}", "{\"a\":1 }",
    "{\"a\":1,\"a\":2}", "{\"b\":{\"x\":1,\"x\":1}}", "{\"a\":\"\\u00e9\"}", "{\"a\":\"\\/\"}",
    "{\"a\":\"\\u0001\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\xe2\x82\"}", "{\"a\":-0}", "{\"a\":1.50}", "{\"a\":1.00}", "{\"a\":1e5}", "{\"a\":1E+21}",
    "{\"a\":0.0000001}", "{\"a\":1.3600000000000001}", "{\"a\":12345678901234567890}",
    "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e400}", "{\"a\":tru}", "{\"a\":1,}",
    "{\"a\":[1,]}", "{\"a\" 1}", "{a:1}", "{\"a\":1}{}", "{\"a\":\"x", "{\"a\":", "{\"title\":\"dam",
};

/* 1 when TEXT reads as JSON and prints back as it is (what qq_json_canonical promises) */
static int round_trips(const char *text, size_t n) {
  json_t *j = json_loadb(text, n, 0, NULL);
  if (!j) return 0;
  qb_buf b;
  qb_buf_init(&b);
  int ok = qs__json_write(j, 0, &b, NULL) == QB_OK && b.len == n && !memcmp(b.data, text, n);
  qb_buf_fini(&b);
  json_decref(j);
  return ok;
}

static void common_sources_are_accepted(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
    if (!qq_json_canonical(accepted[i], strlen(accepted[i]))) fail_msg("refused: %s", accepted[i]);
    if (!round_trips(accepted[i], strlen(accepted[i]))) fail_msg("does not print back: %s", accepted[i]);
  }
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    if (qq_json_canonical(refused[i], strlen(refused[i]))) fail_msg("accepted: %s", refused[i]);
}

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void accepted_mutations_print_back(void **st) {
  (void)st;
  uint64_t seed = 0x5eedf00dull;
  char buf[512];
  size_t nacc = 0;
  for (int k = 0; k < 20000; k++) {
    const char *base = accepted[rnd(&seed) % (sizeof accepted / sizeof *accepted)];
    size_t n = strlen(base);
    memcpy(buf, base, n);
    for (int m = 1 + (int)(rnd(&seed) % 3); m-- > 0 && n;) {
      size_t at = rnd(&seed) % n;
      switch (rnd(&seed) % 4) {
      case 0: buf[at] = (char)(rnd(&seed) & 0xff); break;                 /* a byte changed */
      case 1: buf[at] = "{}[]\",:.-0159eE\\ \x80tn"[rnd(&seed) % 20]; break; /* a likely one */
      case 2: n = at; break;                                               /* cut */
      default:                                                             /* a byte doubled */
        if (n + 1 < sizeof buf) {
          memmove(buf + at + 1, buf + at, n - at);
          n++;
        }
      }
    }
    if (qq_json_canonical(buf, n)) {
      nacc++;
      if (!round_trips(buf, n)) fail_msg("accepted but does not print back: %.*s", (int)n, buf);
    }
  }
  assert_true(nacc > 100); /* some mutations stay canonical: the check above ran */
}

/* reals: every literal way of writing a double, accepted exactly when it is the writer's */
static void reals_are_accepted_exactly_in_the_writers_form(void **st) {
  (void)st;
  uint64_t seed = 0xabcdef12345ull;
  char lit[64], text[96], want[QB_REAL_TEXT];
  for (int k = 0; k < 200000; k++) {
    double v;
    switch (k % 4) {
    case 0: { /* a price-like decimal, printed with 0..17 decimals */
      int dec = (int)(rnd(&seed) % 18);
      v = (double)(rnd(&seed) % 10000000) / pow(10, (double)(rnd(&seed) % 9));
      if (rnd(&seed) & 1) v = -v;
      snprintf(lit, sizeof lit, "%.*f", dec, v);
      break;
    }
    case 1: { /* a float-valued double (a score), %.17g or %.9g */
      uint32_t u = (uint32_t)rnd(&seed) & 0x7fffffffu;
      float f;
      memcpy(&f, &u, 4);
      if (!isfinite(f)) continue;
      snprintf(lit, sizeof lit, (rnd(&seed) & 1) ? "%.17g" : "%.9g", (double)f);
      break;
    }
    case 2: { /* any double, its shortest text */
      uint64_t u = rnd(&seed);
      memcpy(&v, &u, 8);
      if (!isfinite(v)) continue;
      qb_real_text(v, lit);
      break;
    }
    default: { /* tiny and huge fixed layouts, around the writer's 1e-6 and 1e21 limits */
      int e = (int)(rnd(&seed) % 30) - 9;
      snprintf(lit, sizeof lit, "%.*f", e < 0 ? -e + (int)(rnd(&seed) % 3) : 1,
               (double)(1 + rnd(&seed) % 999) * pow(10, e));
    }
    }
    if (!strchr(lit, '.') && !strchr(lit, 'e')) continue; /* an integer: not a real */
    v = strtod(lit, NULL);
    int n = snprintf(text, sizeof text, "{\"v\":%s}", lit);
    qb_real_text(v, want);
    int canon = !strcmp(want, lit);
    if (qq_json_canonical(text, (size_t)n) != canon)
      fail_msg("%s: %s (the writer prints %s)", lit, canon ? "refused" : "accepted", want);
    if (canon && !round_trips(text, (size_t)n)) fail_msg("%s does not print back", text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(common_sources_are_accepted),
      cmocka_unit_test(accepted_mutations_print_back),
      cmocka_unit_test(reals_are_accepted_exactly_in_the_writers_form),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
