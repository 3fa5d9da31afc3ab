/* realtext.c: a double as the shortest text that reads back as it (issue 13 #10, issue 14),
** laid out as JavaScript prints numbers; the JSON writer (query/json_write.c) prints reals
** with it and the query layer checks stored _source against it before splicing it raw
** (source_raw.c). Also an int64's text (qb_int_text). */
#include "base.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

/* The correctly rounded P-digit decimal of V, when V = M * 2^E (M < 2^53, E < 0) and V * 10^K
** (K = P - 1 - the decimal exponent) stays below 2^123: D = round(M * 10^K / 2^-E), ties to
** even, as printf rounds. *READS_BACK: whether strtod of it gives V again, decided exactly: D
** reads back iff |D * 2^-E - M * 10^K| < 10^K / 2 (a tie: iff M is even); M = 2^52 (whose lower
** gap is half as wide) is not taken here. 0 done, -1 out of range. */
static int digits_at(uint64_t m, int e, int p, int *ex10, uint64_t *d, int *reads_back) {
  int s = -e;
  for (int tries = 0; tries < 3; tries++) {
    int k = p - 1 - *ex10;
    if (k < 0 || k > 21 || s < 1 || s > 69) return -1;
    u128 pk = 1;
    for (int i = 0; i < k; i++) pk *= 10;
    u128 x = (u128)m * pk, q = x >> s, r = x - (q << s), half = (u128)1 << (s - 1);
    uint64_t lo = 1;
    for (int i = 1; i < p; i++) lo *= 10;
    if (q < lo) { /* the exponent guess (from log10) was one too high */
      (*ex10)--;
      continue;
    }
    if (q >= (u128)lo * 10) { /* one too low */
      (*ex10)++;
      continue;
    }
    if (r > half || (r == half && (q & 1))) q++;
    u128 y = q << s, diff = y > x ? y - x : x - y;
    *reads_back = 2 * diff < pk || (2 * diff == pk && !(m & 1));
    if (q == (u128)lo * 10) { /* rounded up to 10^P: printf writes 1.000...e(exponent + 1) */
      q = lo;
      (*ex10)++;
    }
    *d = (uint64_t)q;
    return 0;
  }
  return -1;
}

/* V's digits (DIG, *ND of them, no trailing zeros yet) and decimal exponent for 1e-5 <= V < 1e15
** (positive): 15, 16 or 17 digits, the fewest that read back, as the snprintf + strtod trials
** find them but in integer arithmetic (a score is a float: it needs 16 or 17, and printf's
** multi-precision digits cost ~8,000 instructions a real). 0 done, -1 not taken. */
static int fast_digits(double v, char dig[24], int *nd, int *ex) {
  int e2;
  double f = frexp(v, &e2); /* v = f * 2^e2, f in [0.5, 1) */
  uint64_t m = (uint64_t)ldexp(f, 53), d = 0;
  int e = e2 - 53, ex10 = (int)floor(log10(v)), rb = 0;
  if (m == (1ull << 52)) return -1;
  for (int p = 15; p <= 17; p++) {
    int x10 = ex10;
    if (digits_at(m, e, p, &x10, &d, &rb)) return -1;
    if (rb || p == 17) {
      if (!rb) return -1; /* 17 digits always read back: not reached */
      for (int i = p - 1; i >= 0; i--, d /= 10) dig[i] = (char)('0' + d % 10);
      *nd = p;
      *ex = x10;
      return 0;
    }
  }
  return -1;
}

/* V with the fewest significant digits (1..17) that strtod reads back as V, laid out as
** JavaScript prints numbers (fixed notation for 1e-6 <= |V| < 1e21, else d.ddde+N), with ".0"
** on an integral value so it stays a real: 1.36, 100.0, 0.000001, 2.5e-7, 6.02e+23. */
int qb_real_text(double v, char out[QB_REAL_TEXT]) {
  char e[40], dig[24];
  int nd = 0, neg = 0, lo = 1, hi = 17, ex = 0;
  /* 15 digits first: when they read back as V (a normal double or 0), V is the double nearest
  ** a decimal D of at most 15 significant digits (DBL_DIG), and the fewest digits are D's
  ** without its trailing zeros, which the digit loop below strips (two such decimals never
  ** share a double, so no shorter rounding reads back): one conversion for the reals clients
  ** write (prices, 1.36). Else 16 or 17 (scores: float values need them), the bisection's
  ** answer in that range. Subnormals (fewer digits read back) keep the bisection. */
  double av = fabs(v);
  if (av >= 1e-5 && av < 1e15 && !fast_digits(av, dig, &nd, &ex)) {
    neg = signbit(v) != 0;
    goto layout;
  }
  if (v == 0 || av >= DBL_MIN) {
    snprintf(e, sizeof e, "%.14e", v);
    if (strtod(e, NULL) != v) {
      snprintf(e, sizeof e, "%.15e", v);
      if (strtod(e, NULL) != v) snprintf(e, sizeof e, "%.16e", v);
    }
  } else {
    /* the fewest digits, by bisection: if P digits read back as V, so do P + 1 (the nearest
    ** (P+1)-digit number is at least as near as the nearest P-digit one) */
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      snprintf(e, sizeof e, "%.*e", mid - 1, v);
      if (strtod(e, NULL) == v) hi = mid;
      else lo = mid + 1;
    }
    snprintf(e, sizeof e, "%.*e", lo - 1, v);
  }
  {
    const char *s = e;
    if (*s == '-') neg = 1, s++;
    for (; *s && *s != 'e' && nd < 20; s++)
      if (*s != '.') dig[nd++] = *s;
    ex = *s == 'e' ? atoi(s + 1) : 0;
  }
layout:
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
  return (int)(w - out);
}

int qb_int_text(int64_t v, char out[QB_INT_TEXT]) {
  char tmp[QB_INT_TEXT];
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
  int n = 0, w = 0;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) out[w++] = '-';
  while (n) out[w++] = tmp[--n];
  out[w] = 0;
  return w;
}
