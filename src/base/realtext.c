/* realtext.c: a double as the shortest text that reads back as it (issue 13 #10, issue 14),
** laid out as JavaScript prints numbers; json_out.c writes reals with it and the query layer
** checks stored _source against it before splicing it raw (source_raw.c). */
#include "base.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* V with the fewest significant digits (1..17) that strtod reads back as V, laid out as
** JavaScript prints numbers (fixed notation for 1e-6 <= |V| < 1e21, else d.ddde+N), with ".0"
** on an integral value so it stays a real: 1.36, 100.0, 0.000001, 2.5e-7, 6.02e+23. */
int qb_real_text(double v, char out[QB_REAL_TEXT]) {
  char e[40], dig[24];
  int nd = 0, neg = 0, lo = 1, hi = 17;
  /* 15 digits first: when they read back as V (a normal double or 0), V is the double nearest
  ** a decimal D of at most 15 significant digits (DBL_DIG), and the fewest digits are D's
  ** without its trailing zeros, which the digit loop below strips (two such decimals never
  ** share a double, so no shorter rounding reads back): one conversion for the reals clients
  ** write (prices, 1.36). Else 16 or 17 (scores: float values need them), the bisection's
  ** answer in that range. Subnormals (fewer digits read back) keep the bisection. */
  if (v == 0 || fabs(v) >= DBL_MIN) {
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
  const char *s = e;
  if (*s == '-') neg = 1, s++;
  for (; *s && *s != 'e' && nd < 20; s++)
    if (*s != '.') dig[nd++] = *s;
  int ex = *s == 'e' ? atoi(s + 1) : 0;
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
