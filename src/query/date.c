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

/* ---- "format": dates as Elasticsearch's (Java) patterns print them ----------------------------- */

/* Named formats we print (and accept in a range query, whose dates qi_date_parse reads). */
static const struct { const char *name, *pattern; } named[] = {
    {"strict_date_optional_time", NULL}, {"date_optional_time", NULL},
    {"strict_date_time", NULL},          {"date_time", NULL},
    {"epoch_millis", "epoch_millis"},    {"epoch_second", "epoch_second"},
    {"strict_date", "yyyy-MM-dd"},       {"date", "yyyy-MM-dd"},
    {"basic_date", "yyyyMMdd"},          {"strict_year_month", "yyyy-MM"},
    {"year_month", "yyyy-MM"},           {"strict_year", "yyyy"},
    {"year", "yyyy"},                    {"strict_date_hour_minute_second", "yyyy-MM-dd'T'HH:mm:ss"},
    {"date_hour_minute_second", "yyyy-MM-dd'T'HH:mm:ss"},
};

/* Write T (UTC ms) by PATTERN into OUT; -1 on a letter we do not print. */
static int format_pattern(const char *pat, int64_t t, char *out, size_t cap) {
  int64_t days = floor_div(t, 86400000), ms = t - days * 86400000, y;
  unsigned mo, d;
  qi_date_to_civil(days, &y, &mo, &d);
  unsigned hh = (unsigned)(ms / 3600000), mi = (unsigned)(ms / 60000 % 60),
           ss = (unsigned)(ms / 1000 % 60), frac = (unsigned)(ms % 1000);
  size_t n = 0;
  if (cap) out[0] = 0;
  for (const char *p = pat; *p;) {
    char c = *p, tmp[32];
    size_t run = 1;
    while (p[run] == c) run++;
    tmp[0] = 0;
    if (c == '\'') { /* 'literal' ('' is a quote) */
      const char *e = p + 1;
      if (*e == '\'') {
        snprintf(tmp, sizeof tmp, "'");
        p += 2;
      } else {
        while (*e && *e != '\'') e++;
        if (!*e) return -1;
        size_t l = (size_t)(e - p - 1);
        if (n + l >= cap) return -1;
        memcpy(out + n, p + 1, l);
        n += l;
        out[n] = 0;
        p = e + 1;
        continue;
      }
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      switch (c) {
      case 'y': case 'u':
        if (run == 2) snprintf(tmp, sizeof tmp, "%02lld", (long long)((y % 100 + 100) % 100));
        else snprintf(tmp, sizeof tmp, "%0*lld", (int)run, (long long)y);
        break;
      case 'M': snprintf(tmp, sizeof tmp, "%0*u", (int)(run > 2 ? 2 : run), mo); if (run > 2) return -1; break;
      case 'd': snprintf(tmp, sizeof tmp, "%0*u", (int)run, d); if (run > 2) return -1; break;
      case 'H': snprintf(tmp, sizeof tmp, "%0*u", (int)run, hh); if (run > 2) return -1; break;
      case 'm': snprintf(tmp, sizeof tmp, "%0*u", (int)run, mi); if (run > 2) return -1; break;
      case 's': snprintf(tmp, sizeof tmp, "%0*u", (int)run, ss); if (run > 2) return -1; break;
      case 'S':
        if (run > 3) return -1;
        snprintf(tmp, sizeof tmp, "%03u", frac);
        tmp[run] = 0;
        break;
      case 'X': snprintf(tmp, sizeof tmp, "Z"); break;     /* UTC: ISO offset letter */
      case 'Z': snprintf(tmp, sizeof tmp, "+0000"); break; /* UTC: RFC 822 offset */
      default: return -1;
      }
      p += run;
    } else {
      tmp[0] = c;
      tmp[1] = 0;
      p++;
    }
    size_t l = strlen(tmp);
    if (n + l >= cap) return -1;
    memcpy(out + n, tmp, l + 1);
    n += l;
  }
  return 0;
}

qb_code qq__date_format_check(const char *format, qb_err *err) {
  char buf[128];
  for (const char *alt = format; alt && *alt;) { /* "yyyy-MM-dd||epoch_millis": each */
    const char *bar = strstr(alt, "||");
    size_t l = bar ? (size_t)(bar - alt) : strlen(alt);
    char one[128];
    if (l >= sizeof one) return qb_fail(err, QB_INVAL, "date format [%.64s] is too long", format);
    memcpy(one, alt, l);
    one[l] = 0;
    if (qq__date_format(one, 0, buf, sizeof buf))
      return qb_fail(err, QB_INVAL, "date format [%s] is not supported (named formats such as "
                     "strict_date_optional_time, epoch_millis, date, or patterns of y M d H m s S "
                     "and 'literals')", one);
    alt = bar ? bar + 2 : NULL;
  }
  return QB_OK;
}

int qq__date_format(const char *format, int64_t t, char *out, size_t cap) {
  const char *bar = strstr(format, "||"); /* the first of several formats prints */
  char first[128];
  if (bar) {
    size_t l = (size_t)(bar - format);
    if (l >= sizeof first) return -1;
    memcpy(first, format, l);
    first[l] = 0;
    format = first;
  }
  const char *pat = format;
  for (size_t i = 0; i < sizeof named / sizeof *named; i++)
    if (!strcmp(format, named[i].name)) {
      if (!named[i].pattern) {
        qi_date_format(t, out, cap);
        return 0;
      }
      pat = named[i].pattern;
      break;
    }
  if (!strcmp(pat, "epoch_millis")) return snprintf(out, cap, "%lld", (long long)t) >= (int)cap ? -1 : 0;
  if (!strcmp(pat, "epoch_second"))
    return snprintf(out, cap, "%lld", (long long)floor_div(t, 1000)) >= (int)cap ? -1 : 0;
  return format_pattern(pat, t, out, cap);
}
