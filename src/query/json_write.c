/* json_write.c: JSON text for responses, from jansson trees, with numbers as the client wrote them.
** jansson prints a real with a fixed precision (17 digits), so a _source value 1.36 came back as
** 1.3600000000000001 (issue 13 #10); here a real is printed with the fewest significant digits
** that read back as the same double, as Elasticsearch's JSON layer does, so every number a
** client sent in its shortest form comes back byte for byte. Layout otherwise follows jansson's
** (compact: no spaces; pretty: JSON_INDENT(2)), key order is insertion order, and UTF-8 is
** passed through. Invariant: the output parses back to an equal tree; recursion is bounded by
** QQ_JSON_MAX_DEPTH (trees come from jansson's parser, which stops at 2048 levels, or from us).
** Here, not in the server, so the query layer writes a response's hits and head as text with the
** same function the server writes every other response with (qq_request_hits_text). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define QQ_JSON_MAX_DEPTH 4096

static void put_string(qb_buf *b, const char *s, size_t n) { qb_json_string(b, s, n); }

static void newline(qb_buf *b, int pretty, int depth) {
  if (!pretty) return;
  qb_buf_append(b, "\n", 1);
  for (int i = 0; i < depth; i++) qb_buf_append(b, "  ", 2);
}

static int write_value(qb_buf *b, const json_t *j, int pretty, int depth) {
  char num[48];
  if (depth > QQ_JSON_MAX_DEPTH) return -1;
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
  case JSON_STRING: {
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n >= QQ_RAW_JSON_LEN && !memcmp(s, QQ_RAW_JSON, QQ_RAW_JSON_LEN)) {
      /* a hit's _source the query layer checked is printed as it is (qq_request_raw_source) */
      if (!pretty) return qb_buf_append(b, s + QQ_RAW_JSON_LEN, n - QQ_RAW_JSON_LEN), 0;
      json_t *t = json_loadb(s + QQ_RAW_JSON_LEN, n - QQ_RAW_JSON_LEN, 0, NULL); /* pretty: laid out */
      int rc = t ? write_value(b, t, pretty, depth) : -1;
      json_decref(t);
      return rc;
    }
    put_string(b, s, n);
    return 0;
  }
  case JSON_INTEGER: /* json_int_t is long long (JSON_INTEGER_IS_LONG_LONG): "%lld" */
    qb_buf_append(b, num, (size_t)qb_int_text(json_integer_value(j), num));
    return 0;
  case JSON_REAL: qb_buf_append(b, num, (size_t)qb_real_text(json_real_value(j), num)); return 0;
  case JSON_TRUE: qb_buf_puts(b, "true"); return 0;
  case JSON_FALSE: qb_buf_puts(b, "false"); return 0;
  case JSON_NULL: qb_buf_puts(b, "null"); return 0;
  }
  return -1;
}

qb_code qq_json_write(const json_t *j, int pretty, qb_buf *out, qb_err *err) {
  if (!j) return qb_fail(err, QB_INVAL, "json: no value");
  if (write_value(out, j, pretty, 0))
    return qb_fail(err, QB_LIMIT, "json: nested deeper than %d levels", QQ_JSON_MAX_DEPTH);
  if (out->failed) return qb_fail(err, QB_NOMEM, "json: out of memory");
  return QB_OK;
}
