/* date.c: the one reader of date strings, Elasticsearch's default date format
** (strict_date_optional_time||epoch_millis), for both the index (document values, dynamic date
** detection in mapping.c) and the query layer (range bounds, date math anchors, `missing`), so a
** string means the same instant wherever it appears. Also the civil-date arithmetic both use
** (H. Hinnant's algorithms, valid for any year) and the one rendering of a date
** (qi_date_format). No date math here: that is a query feature (src/query/date.c).
** Invariant: a string is read as ISO first and as epoch millis only when that fails, so "2024"
** is a year and "20240" is 20240 ms, in every caller. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

int64_t qi_date_from_civil(int64_t y, unsigned m, unsigned d) {
  int64_t era;
  unsigned yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void qi_date_to_civil(int64_t days, int64_t *y, unsigned *m, unsigned *d) {
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* N decimal digits at S[*I] (all of them inside LEN) into *OUT; 0 when they are not there. */
static int digits(const char *s, size_t len, size_t *i, int n, int *out) {
  int v = 0, k;
  for (k = 0; k < n; k++) {
    if (*i >= len || s[*i] < '0' || s[*i] > '9') return 0;
    v = v * 10 + (s[(*i)++] - '0');
  }
  *out = v;
  return 1;
}

/* strict_date_optional_time: yyyy[-MM[-dd]][THH[:mm[:ss[(.|,)fraction]]][Z|(+|-)HH[[:]mm]]].
** Fractions take 1..9 digits (milliseconds kept, the rest truncated); the day must exist in
** its month; a zone comes only after a time. FULL requires at least yyyy-MM-dd (what dynamic
** mappings take for a date). */
static qb_code parse_iso(const char *s, size_t len, int full, int64_t *ms) {
  size_t i = 0;
  int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0, frac = 0, tzh = 0, tzm = 0, sign = 1, dim;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!digits(s, len, &i, 4, &y)) return QB_INVAL;
  if (i < len && s[i] == '-') {
    i++;
    if (!digits(s, len, &i, 2, &mo)) return QB_INVAL;
    if (i < len && s[i] == '-') {
      i++;
      if (!digits(s, len, &i, 2, &d)) return QB_INVAL;
    } else if (full) {
      return QB_INVAL;
    }
  } else if (full) {
    return QB_INVAL;
  }
  if (mo < 1 || mo > 12) return QB_INVAL;
  dim = mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
  if (d < 1 || d > dim) return QB_INVAL;
  if (i < len && s[i] == 'T') {
    i++;
    if (!digits(s, len, &i, 2, &h)) return QB_INVAL;
    if (i < len && s[i] == ':') {
      i++;
      if (!digits(s, len, &i, 2, &mi)) return QB_INVAL;
      if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, &sec)) return QB_INVAL;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
          int nd = 0, scale = 100;
          i++;
          while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (nd < 3) frac += (s[i] - '0') * scale;
            scale /= 10;
            nd++;
            i++;
          }
          if (!nd || nd > 9) return QB_INVAL;
        }
      }
    }
    if (h > 23 || mi > 59 || sec > 59) return QB_INVAL;
    if (i < len && s[i] == 'Z') {
      i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
      sign = s[i++] == '-' ? -1 : 1;
      if (!digits(s, len, &i, 2, &tzh)) return QB_INVAL;
      if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, &tzm)) return QB_INVAL;
      } else if (i < len && !digits(s, len, &i, 2, &tzm)) {
        return QB_INVAL;
      }
      if (tzh > 23 || tzm > 59) return QB_INVAL;
    }
  }
  if (i != len) return QB_INVAL;
  *ms = ((qi_date_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec) -
         sign * (tzh * 3600 + tzm * 60)) * 1000 + frac;
  return QB_OK;
}

/* epoch_millis: an optional sign and 1..19 digits that fit an int64. */
static qb_code parse_epoch(const char *s, size_t len, int64_t *ms) {
  size_t i = 0;
  int neg = 0;
  uint64_t v = 0, lim;
  if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == len) return QB_INVAL;
  lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < len; i++) {
    unsigned dg = (unsigned)(s[i] - '0');
    if (dg > 9 || v > (lim - dg) / 10) return QB_INVAL;
    v = v * 10 + dg;
  }
  *ms = neg ? (int64_t)(0 - v) : (int64_t)v;
  return QB_OK;
}

qb_code qi_date_parse(const char *s, size_t len, int64_t *ms) {
  if (!parse_iso(s, len, 0, ms)) return QB_OK;
  return parse_epoch(s, len, ms);
}

qb_code qi__date_detect(const char *s, size_t len, int64_t *ms) { return parse_iso(s, len, 1, ms); }

void qi_date_format(int64_t ms, char *buf, size_t cap) {
  /* days rounded down and the ms into that day, without overflow at INT64_MIN (a document may
  ** hold any int64) */
  int64_t days = ms / 86400000 - (ms % 86400000 < 0), rem = ms % 86400000, y;
  unsigned m, d;
  if (rem < 0) rem += 86400000;
  qi_date_to_civil(days, &y, &m, &d);
  snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
           (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}
