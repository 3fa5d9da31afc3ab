/* date.c: dates as Elasticsearch's default date format reads and writes them
** (strict_date_optional_time||epoch_millis), plus date math ("now-7d/d", "2024-01-15||+1M/M").
** All in UTC milliseconds since the epoch; civil-date arithmetic after H. Hinnant's algorithms,
** valid for any year. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) { /* H. Hinnant's algorithm */
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

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
    civil_from_days(days, &y, &mo, &d);
    if (op == '/') {
      switch (u) {
      case 'y': *t = days_from_civil(y, 1, 1) * 86400000; break;
      case 'M': *t = days_from_civil(y, mo, 1) * 86400000; break;
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
      *t = days_from_civil(ny, nm, d > md ? md : d) * 86400000 + rem;
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
    char anchor[64];
    size_t al = (size_t)(bars - s);
    if (al >= sizeof anchor) return QB_INVAL;
    memcpy(anchor, s, al);
    anchor[al] = 0;
    if (qq__parse_date(anchor, ms)) return QB_INVAL;
    return date_math(bars + 2, ms);
  }
  int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0, frac = 0, n = 0, tzh = 0, tzm = 0, sign = 0;
  const char *p = s;
  char *end;
  if (!*s) return QB_INVAL;
  /* all digits: epoch millis */
  long long v = strtoll(s, &end, 10);
  if (!*end && (end - s) > 4) { *ms = v; return QB_OK; }
  if (sscanf(p, "%4d%n", &y, &n) != 1 || n != 4) return QB_INVAL;
  p += n;
  if (*p == '-') {
    if (sscanf(p, "-%2d%n", &mo, &n) != 1 || n != 3) return QB_INVAL;
    p += n;
    if (*p == '-') {
      if (sscanf(p, "-%2d%n", &d, &n) != 1 || n != 3) return QB_INVAL;
      p += n;
    }
  }
  if (*p == 'T' || *p == ' ') {
    p++;
    if (sscanf(p, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5) return QB_INVAL;
    p += n;
    if (*p == ':') {
      if (sscanf(p, ":%2d%n", &sec, &n) != 1 || n != 3) return QB_INVAL;
      p += n;
      if (*p == '.') {
        int digits = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
          if (digits < 3) frac = frac * 10 + (*p - '0');
          digits++;
          p++;
        }
        if (!digits) return QB_INVAL;
        for (; digits < 3; digits++) frac *= 10;
      }
    }
  }
  if (*p == 'Z') p++;
  else if (*p == '+' || *p == '-') {
    sign = *p == '-' ? -1 : 1;
    p++;
    if (sscanf(p, "%2d:%2d%n", &tzh, &tzm, &n) == 2 && n == 5) p += n;
    else if (sscanf(p, "%2d%2d%n", &tzh, &tzm, &n) == 2 && n == 4) p += n;
    else return QB_INVAL;
  }
  if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
      sec < 0 || sec > 60 || tzh < 0 || tzm < 0)
    return QB_INVAL;
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  *ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + frac - sign * (tzh * 60 + tzm) * 60000LL;
  return QB_OK;
}


void qq__format_date(int64_t ms, char *buf, size_t cap) {
  int64_t days = floor_div(ms, 86400000), rem = ms - days * 86400000, y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d, (int)(rem / 3600000),
           (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

int64_t qq__date_floor(int64_t ms, char unit) {
  char op[3] = {'/', unit == 'q' ? 'M' : unit, 0};
  int64_t t = ms;
  if (date_math(op, &t)) return ms;
  if (unit == 'q') { /* back to the quarter's first month */
    int64_t y;
    unsigned m, d;
    civil_from_days(floor_div(t, 86400000), &y, &m, &d);
    t = days_from_civil(y, m - (m - 1) % 3, 1) * 86400000;
  }
  return t;
}

int64_t qq__date_next(int64_t ms, char unit) {
  char op[4] = {'+', unit == 'q' ? '3' : '1', unit == 'q' ? 'M' : unit, 0};
  int64_t t = ms;
  if (date_math(op, &t)) return ms + 1;
  return t;
}
