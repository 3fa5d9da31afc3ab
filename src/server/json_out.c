/* json_out.c: JSON text for responses, from jansson trees, with numbers as the client wrote them.
** jansson prints a real with a fixed precision (17 digits), so a _source value 1.36 came back as
** 1.3600000000000001 (issue 13 #10); here a real is printed with the fewest significant digits
** that read back as the same double, as Elasticsearch's JSON layer does, so every number a
** client sent in its shortest form comes back byte for byte. Layout otherwise follows jansson's
** (compact: no spaces; pretty: JSON_INDENT(2)), key order is insertion order, and UTF-8 is
** passed through. Invariant: the output parses back to an equal tree; recursion is bounded by
** QS_JSON_MAX_DEPTH (trees come from jansson's parser, which stops at 2048 levels, or from us). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define QS_JSON_MAX_DEPTH 4096

/* V with the fewest significant digits (1..17) that strtod reads back as V, laid out as
** JavaScript prints numbers (fixed notation for 1e-6 <= |V| < 1e21, else d.ddde+N), with ".0"
** on an integral value so it stays a real: 1.36, 100.0, 0.000001, 2.5e-7, 6.02e+23. */
static int real_text(double v, char out[48]) {
  char e[40], dig[24];
  int nd = 0, neg = 0, lo = 1, hi = 17;
  /* the fewest digits, by bisection: if P digits read back as V, so do P + 1 (the nearest
  ** (P+1)-digit number is at least as near as the nearest P-digit one); ~4 conversions, not up
  ** to 17 (two reals a hit: a fixed cost every search paid, issue 14) */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    snprintf(e, sizeof e, "%.*e", mid - 1, v);
    if (strtod(e, NULL) == v) hi = mid;
    else lo = mid + 1;
  }
  snprintf(e, sizeof e, "%.*e", lo - 1, v);
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

/* 1 for the bytes written as they are (not '"', '\\' or a control byte) */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0), /* 0x00..0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20..0x2f: '"' */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50..0x5f: '\\' */
    R16(1), R16(1),
    R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), /* 0x80..0xff: UTF-8 */
#undef R16
};

static void put_string(qb_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t run = 0;
  qb_buf_append(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    if (plain[c]) { /* the common bytes: one table test each (issue 14) */
      run++;
      continue;
    }
    char u[7];
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else if (c == '\b') esc = "\\b";
    else if (c == '\f') esc = "\\f";
    else if (c < 0x20) {
      u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15];
      u[6] = 0;
      esc = u;
    }
    if (!esc) {
      run++;
      continue;
    }
    if (run) qb_buf_append(b, s + i - run, run);
    run = 0;
    qb_buf_puts(b, esc);
  }
  if (run) qb_buf_append(b, s + n - run, run);
  qb_buf_append(b, "\"", 1);
}

static void newline(qb_buf *b, int pretty, int depth) {
  if (!pretty) return;
  qb_buf_append(b, "\n", 1);
  for (int i = 0; i < depth; i++) qb_buf_append(b, "  ", 2);
}

static int write_value(qb_buf *b, const json_t *j, int pretty, int depth) {
  char num[48];
  if (depth > QS_JSON_MAX_DEPTH) return -1;
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    int first = 1;
    if (!json_object_size(j)) return qb_buf_puts(b, "{}"), 0;
    qb_buf_append(b, "{", 1);
    json_object_foreach((json_t *)j, k, v) {
      if (!first) qb_buf_append(b, ",", 1);
      first = 0;
      newline(b, pretty, depth + 1);
      put_string(b, k, strlen(k));
      qb_buf_puts(b, pretty ? ": " : ":");
      if (write_value(b, v, pretty, depth + 1)) return -1;
    }
    newline(b, pretty, depth);
    qb_buf_append(b, "}", 1);
    return 0;
  }
  case JSON_ARRAY: {
    size_t i;
    json_t *v;
    if (!json_array_size(j)) return qb_buf_puts(b, "[]"), 0;
    qb_buf_append(b, "[", 1);
    json_array_foreach((json_t *)j, i, v) {
      if (i) qb_buf_append(b, ",", 1);
      newline(b, pretty, depth + 1);
      if (write_value(b, v, pretty, depth + 1)) return -1;
    }
    newline(b, pretty, depth);
    qb_buf_append(b, "]", 1);
    return 0;
  }
  case JSON_STRING: put_string(b, json_string_value(j), json_string_length(j)); return 0;
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    qb_buf_puts(b, num);
    return 0;
  case JSON_REAL: qb_buf_append(b, num, (size_t)real_text(json_real_value(j), num)); return 0;
  case JSON_TRUE: qb_buf_puts(b, "true"); return 0;
  case JSON_FALSE: qb_buf_puts(b, "false"); return 0;
  case JSON_NULL: qb_buf_puts(b, "null"); return 0;
  }
  return -1;
}

qb_code qs__json_write(const json_t *j, int pretty, qb_buf *out, qb_err *err) {
  if (!j) return qb_fail(err, QB_INVAL, "json: no value");
  if (write_value(out, j, pretty, 0))
    return qb_fail(err, QB_LIMIT, "json: nested deeper than %d levels", QS_JSON_MAX_DEPTH);
  if (out->failed) return qb_fail(err, QB_NOMEM, "json: out of memory");
  return QB_OK;
}
