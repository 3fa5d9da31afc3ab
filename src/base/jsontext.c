/* jsontext.c: a JSON string's text (qb_json_string), shared by the server's JSON writer
** (src/query/json_write.c) and the query layer's hits written as text (src/query/search.c), so
** both print a string the same way, byte for byte. */
#include "base.h"

const unsigned char qb_json_plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0), /* 0x00..0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20..0x2f: '"' */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50..0x5f: '\\' */
    R16(1), R16(1),
    R16(2), R16(2), R16(2), R16(2), R16(2), R16(2), R16(2), R16(2), /* 0x80..0xff: UTF-8 */
#undef R16
};

void qb_json_string(qb_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t run = 0;
  qb_buf_append(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    if (qb_json_plain[c]) { /* the common bytes: one table test each (issue 14) */
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
