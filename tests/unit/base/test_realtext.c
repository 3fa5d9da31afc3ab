/* test_realtext.c: qb_real_text (src/base/realtext.c) against the plain definition it speeds up:
** the fewest digits P (1..17) whose printf("%.*e", P - 1) strtod reads back as the same
** double, found by trying every P, then laid out as JavaScript does. On seeded doubles of
** every kind: any bits, float-valued ones (scores), few-digit decimals (prices), halves (ties),
** and the neighbours of every power of ten in the fast path's range. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base.h"

/* the definition: every precision tried, the first that reads back */
static void reference(double v, char out[64]) {
  char e[64], dig[24];
  int nd = 0, neg = 0, p;
  for (p = 1; p < 17; p++) {
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    if (strtod(e, NULL) == v) break;
  }
  snprintf(e, sizeof e, "%.*e", p - 1, v);
  const char *s = e;
  if (*s == '-') neg = 1, s++;
  for (; *s && *s != 'e'; s++)
    if (*s != '.') dig[nd++] = *s;
  int ex = atoi(s + 1);
  while (nd > 1 && dig[nd - 1] == '0') nd--;
  char *w = out;
  if (neg) *w++ = '-';
  if (ex >= -6 && ex < 21) {
    if (ex < 0) {
      *w++ = '0', *w++ = '.';
      for (int i = 0; i < -ex - 1; i++) *w++ = '0';
      memcpy(w, dig, (size_t)nd), w += nd;
    } else {
      for (int i = 0; i <= ex; i++) *w++ = i < nd ? dig[i] : '0';
      *w++ = '.';
      if (nd > ex + 1) memcpy(w, dig + ex + 1, (size_t)(nd - ex - 1)), w += nd - ex - 1;
      else *w++ = '0';
    }
  } else {
    *w++ = dig[0];
    if (nd > 1) *w++ = '.', memcpy(w, dig + 1, (size_t)(nd - 1)), w += nd - 1;
    w += snprintf(w, 8, "e%c%d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
  }
  *w = 0;
}

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void check(double v) {
  char got[QB_REAL_TEXT], want[64];
  int n = qb_real_text(v, got);
  reference(v, want);
  if (strcmp(got, want) || n != (int)strlen(got)) fail_msg("%.17g: got %s, want %s", v, got, want);
}

static void shortest_text_equals_the_definition(void **st) {
  (void)st;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 150000; i++) {
    double v;
    uint64_t u = rnd(&seed);
    switch (i % 5) {
    case 0: memcpy(&v, &u, 8); break;                                          /* any bits */
    case 1: v = (double)(float)pow(10, -6.0 + 22.0 * (double)(u >> 11) / 9007199254740992.0); break;
    case 2: v = (double)(u % 100000000) / pow(10, (double)(rnd(&seed) % 12)); break; /* prices */
    case 3: v = ldexp((double)(u % 1000000) + 0.5, -(int)(rnd(&seed) % 40)); break;  /* halves */
    default: v = pow(10, -5.5 + 21.0 * (double)(u >> 11) / 9007199254740992.0);    /* log-uniform */
    }
    if (!isfinite(v)) continue;
    check(i & 1 ? -v : v);
  }
  for (int e = -6; e <= 16; e++) { /* just below and above each power of ten */
    double p = pow(10, e), lo = p, hi = p;
    for (int j = 0; j < 40; j++) {
      check(lo);
      check(hi);
      lo = nextafter(lo, 0);
      hi = nextafter(hi, INFINITY);
    }
  }
  check(0.0);
  check(-0.0);
  check(5e-324);
  check(1.7976931348623157e308);
}

/* qb_int_text writes what "%lld" writes (json_out.c used snprintf before it) */
static void integers_print_as_printf_does(void **st) {
  (void)st;
  uint64_t seed = 0x2545f4914f6cdd1dull;
  const int64_t edge[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1,
                          1000000000000000000ll, -999999999999999999ll};
  for (int i = 0; i < 100000 + (int)(sizeof edge / sizeof *edge); i++) {
    int64_t v;
    if (i < (int)(sizeof edge / sizeof *edge)) v = edge[i];
    else {
      uint64_t u = rnd(&seed);
      v = (int64_t)(u >> (u % 64)); /* every magnitude */
      if (u & 1) v = -v;
    }
    char got[QB_INT_TEXT], want[32];
    int n = qb_int_text(v, got);
    snprintf(want, sizeof want, "%lld", (long long)v);
    if (strcmp(got, want) || n != (int)strlen(want)) fail_msg("%s: got %s", want, got);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(shortest_text_equals_the_definition),
      cmocka_unit_test(integers_print_as_printf_does),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
