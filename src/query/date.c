/* date.c: date math on top of the index layer's one date reader (qi_date_parse, so a query
** bound means the instant a document with the same string holds): "now-7d/d",
** "2024-01-15||+1M/M", and the calendar rounding of date_histogram. All in UTC milliseconds
** since the epoch; civil dates through qi_date_from_civil/qi_date_to_civil. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Date math keeps every intermediate time within +-1e16 ms (about 316,000 years) and every
** step within 1e9 units, so no product or sum below can overflow int64 (found by fuzz_query:
** "250021||-1000000000000000000000M/d"). Out of range is a bad date, not a wrap. */
#define MATH_LIMIT_MS 10000000000000000LL
#define MATH_LIMIT_N 1000000000LL
#define MATH_LIMIT_YEARS 300000

/* Elasticsearch date math on T (UTC): a sequence of +N<unit>, -N<unit>, /<unit> (round down),
** units y M w d h H m s. */
static qb_code date_math(const char *p, int64_t *t) {
  while (*p) {
    char op = *p++;
    long long n = 1;
    if (*t > MATH_LIMIT_MS || *t < -MATH_LIMIT_MS) return QB_INVAL;
    if (op == '+' || op == '-') {
      char *end;
      n = strtoll(p, &end, 10);
      if (end == p || n > MATH_LIMIT_N || n < -MATH_LIMIT_N) return QB_INVAL;
      p = end;
    } else if (op != '/') {
      return QB_INVAL;
    }
    char u = *p++;
    int64_t days = floor_div(*t, 86400000), rem = *t - days * 86400000, y;
    unsigned mo, d;
    qi_date_to_civil(days, &y, &mo, &d);
    if (op == '/') {
      switch (u) {
      case 'y': *t = qi_date_from_civil(y, 1, 1) * 86400000; break;
      case 'M': *t = qi_date_from_civil(y, mo, 1) * 86400000; break;
      case 'w': { int64_t wd = floor_div(days + 3, 7) * 7 - 3; *t = wd * 86400000; break; } /* Monday */
      case 'd': *t = days * 86400000; break;
      case 'h': case 'H': *t = floor_div(*t, 3600000) * 3600000; break;
      case 'm': *t = floor_div(*t, 60000) * 60000; break;
      case 's': *t = floor_div(*t, 1000) * 1000; break;
      default: return QB_INVAL;
      }
      continue;
    }
    if (op == '-') n = -n;
    switch (u) {
    case 'y': case 'M': {
      int64_t months = y * 12 + (mo - 1) + (u == 'y' ? n * 12 : n);
      int64_t ny = floor_div(months, 12);
      unsigned nm = (unsigned)(months - ny * 12) + 1;
      if (ny > MATH_LIMIT_YEARS || ny < -MATH_LIMIT_YEARS) return QB_INVAL;
      static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      unsigned md = mdays[nm - 1] + (nm == 2 && ((ny % 4 == 0 && ny % 100 != 0) || ny % 400 == 0));
      *t = qi_date_from_civil(ny, nm, d > md ? md : d) * 86400000 + rem;
      break;
    }
    case 'w': *t += n * 7 * 86400000LL; break;
    case 'd': *t += n * 86400000LL; break;
    case 'h': case 'H': *t += n * 3600000LL; break;
    case 'm': *t += n * 60000LL; break;
    case 's': *t += n * 1000LL; break;
    default: return QB_INVAL;
    }
  }
  return *t > MATH_LIMIT_MS || *t < -MATH_LIMIT_MS ? QB_INVAL : QB_OK;
}

qb_code qq__parse_date(const char *s, int64_t *ms) {
  /* "now" and "<date>||<math>" (Elasticsearch date math) */
  if (!strncmp(s, "now", 3)) {
    *ms = qb_wall_ms();
    return date_math(s + 3, ms);
  }
  const char *bars = strstr(s, "||");
  if (bars) {
    if (qi_date_parse(s, (size_t)(bars - s), ms)) return QB_INVAL;
    return date_math(bars + 2, ms);
  }
  return qi_date_parse(s, strlen(s), ms);
}

int64_t qq__date_floor(int64_t ms, char unit) {
  char op[3] = {'/', unit == 'q' ? 'M' : unit, 0};
  int64_t t = ms;
  if (date_math(op, &t)) return ms;
  if (unit == 'q') { /* back to the quarter's first month */
    int64_t y;
    unsigned m, d;
    qi_date_to_civil(floor_div(t, 86400000), &y, &m, &d);
    t = qi_date_from_civil(y, m - (m - 1) % 3, 1) * 86400000;
  }
  return t;
}

int64_t qq__date_next(int64_t ms, char unit) {
  char op[4] = {'+', unit == 'q' ? '3' : '1', unit == 'q' ? 'M' : unit, 0};
  int64_t t = ms;
  if (date_math(op, &t)) return ms + 1;
  return t;
}
