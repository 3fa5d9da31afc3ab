/* agg_tz.c: time zones for date_histogram's time_zone: fixed offsets ("+01:00", "-0530",
** "UTC") and IANA names read from the system's tzdata (/usr/share/zoneinfo, TZif version 2+
** 64-bit transitions; after the last transition the last offset holds, so rules past 2037 in a
** "fat" file, or past the last in a "slim" one, are not followed: docs/rest-api.md says so).
** Buckets are rounded in local time and keyed by the UTC instant of their local start, as in
** Elasticsearch; key_as_string prints the local time with its offset. */
#include "aggs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef QQ_ZONEINFO
#define QQ_ZONEINFO "/usr/share/zoneinfo"
#endif

static int64_t fdiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static int fixed_offset(const char *s, int64_t *ms) {
  if (!strcmp(s, "UTC") || !strcmp(s, "Z") || !strcmp(s, "GMT") || !strcmp(s, "Etc/UTC") || !strcmp(s, "UCT")) {
    *ms = 0;
    return 1;
  }
  if (s[0] != '+' && s[0] != '-') return 0;
  int h = 0, m = 0;
  const char *p = s + 1;
  if (!(p[0] >= '0' && p[0] <= '9')) return 0;
  h = p[0] - '0';
  p++;
  if (*p >= '0' && *p <= '9') h = h * 10 + (*p++ - '0');
  if (*p == ':') p++;
  if (*p) {
    if (!(p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9') || p[2]) return 0;
    m = (p[0] - '0') * 10 + (p[1] - '0');
  }
  if (h > 18 || m > 59) return 0;
  *ms = (int64_t)(h * 3600 + m * 60) * 1000 * (s[0] == '-' ? -1 : 1);
  return 1;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

/* the TZif file's 64-bit block into TZ; -1 when it is not one we read */
static int read_tzif(qb_arena *ar, const uint8_t *d, size_t len, qq__tz *tz) {
  if (len < 44 || memcmp(d, "TZif", 4) || d[4] < '2') return -1;
  uint32_t c[6];
  for (int i = 0; i < 6; i++) c[i] = be32(d + 20 + 4 * i);
  size_t v1 = (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] + (size_t)c[2] * 8 + c[1] + c[0];
  size_t h2 = 44 + v1;
  if (len < h2 + 44 || memcmp(d + h2, "TZif", 4)) return -1;
  for (int i = 0; i < 6; i++) c[i] = be32(d + h2 + 20 + 4 * i);
  uint32_t isut = c[0], isstd = c[1], leap = c[2], ntime = c[3], ntype = c[4], nchar = c[5];
  const uint8_t *p = d + h2 + 44;
  size_t need = (size_t)ntime * 9 + (size_t)ntype * 6 + nchar + (size_t)leap * 12 + isstd + isut;
  if (ntype == 0 || ntime > 100000 || (size_t)(d + len - p) < need) return -1;
  const uint8_t *times = p, *idx = p + (size_t)ntime * 8, *types = idx + ntime;
  tz->ntrans = ntime;
  if (!(tz->at = qb_arena_array(ar, ntime + 1, sizeof *tz->at)) || !(tz->off = qb_arena_array(ar, ntime + 1, sizeof *tz->off)))
    return -1;
  for (uint32_t i = 0; i < ntime; i++) {
    uint8_t ti = idx[i];
    if (ti >= ntype) return -1;
    tz->at[i] = be64(times + 8 * (size_t)i) * 1000;
    tz->off[i] = (int64_t)(int32_t)be32(types + 6 * (size_t)ti) * 1000;
  }
  tz->off0 = (int64_t)(int32_t)be32(types) * 1000;
  return 0;
}

qb_code qq__tz_parse(qb_arena *ar, const char *name, qq__tz *tz, qb_err *err) {
  memset(tz, 0, sizeof *tz);
  tz->name = name;
  if (fixed_offset(name, &tz->fixed_ms)) return QB_OK;
  size_t n = strlen(name);
  int ok = n > 0 && n < 128 && name[0] != '/' && !strstr(name, "..");
  for (size_t i = 0; ok && i < n; i++) {
    char ch = name[i];
    ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' ||
         ch == '-' || ch == '+';
  }
  if (!ok) return qb_fail(err, QB_INVAL, "Unknown time-zone ID: %s", name);
  char path[256];
  snprintf(path, sizeof path, "%s/%s", QQ_ZONEINFO, name);
  FILE *f = fopen(path, "rb");
  if (!f) return qb_fail(err, QB_INVAL, "Unknown time-zone ID: %s", name);
  uint8_t *buf = qb_malloc(1 << 20);
  size_t len = buf ? fread(buf, 1, 1 << 20, f) : 0;
  fclose(f);
  if (!buf) return qb_fail(err, QB_NOMEM, "query: out of memory");
  int bad = read_tzif(ar, buf, len, tz);
  qb_free(buf, 1 << 20);
  if (bad) return qb_fail(err, QB_INVAL, "Unknown time-zone ID: %s (its tzdata file cannot be read)", name);
  return QB_OK;
}

int64_t qq__tz_offset(const qq__tz *tz, int64_t utc) {
  if (!tz) return 0;
  if (!tz->ntrans) return tz->at ? tz->off0 : tz->fixed_ms;
  if (utc < tz->at[0]) return tz->off0;
  size_t lo = 0, hi = tz->ntrans; /* the last transition at or before utc */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (tz->at[mid] <= utc) lo = mid;
    else hi = mid;
  }
  return tz->off[lo];
}

int64_t qq__tz_to_utc(const qq__tz *tz, int64_t local) {
  if (!tz) return local;
  int64_t o1 = qq__tz_offset(tz, local - qq__tz_offset(tz, local));
  return local - o1;
}

int64_t qq__tz_floor(const qq__tz *tz, int64_t ms, char cal, int64_t interval, int64_t offset) {
  int64_t t = ms - offset;
  int64_t local = t + qq__tz_offset(tz, t);
  int64_t lf = cal ? qq__date_floor(local, cal) : fdiv(local, interval > 0 ? interval : 1) * (interval > 0 ? interval : 1);
  return qq__tz_to_utc(tz, lf) + offset;
}

int64_t qq__tz_next(const qq__tz *tz, int64_t key, char cal, int64_t interval, int64_t offset) {
  int64_t t = key - offset;
  int64_t local = t + qq__tz_offset(tz, t);
  int64_t ln = cal ? qq__date_next(local, cal) : local + interval;
  return qq__tz_to_utc(tz, ln) + offset;
}

void qq__tz_format(const qq__tz *tz, const char *format, int64_t utc, char *out, size_t cap) {
  int64_t off = qq__tz_offset(tz, utc);
  if (!format || qq__date_format(format, utc + off, out, cap)) qi_date_format(utc + off, out, cap);
  if (!off) return;
  int64_t a = off < 0 ? -off : off;
  int hh = (int)(a / 3600000), mm = (int)(a % 3600000 / 60000);
  char sign = off < 0 ? '-' : '+';
  size_t n = strlen(out);
  char *z5 = strstr(out, "+0000");
  if (n && out[n - 1] == 'Z' && n + 6 < cap) snprintf(out + n - 1, cap - (n - 1), "%c%02d:%02d", sign, hh, mm);
  else if (z5) {
    char tmp[8];
    snprintf(tmp, sizeof tmp, "%c%02d%02d", sign, hh, mm);
    memcpy(z5, tmp, 5);
  }
}
