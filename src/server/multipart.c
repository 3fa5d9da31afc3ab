/* multipart.c: a bounded parser for multipart/form-data bodies (RFC 7578), what
** `PUT /_udf/{name}` receives from qctl and curl -F. Works on the whole body in memory; every
** read is checked against the end of the body, and part data is never copied.
** Invariant: a part's data is the bytes between the CRLF that ends its headers and the
** CRLF "--" boundary that follows; a missing closing delimiter is an error. */
#include <string.h>
#include <strings.h>

#include "internal.h"

static const uint8_t *find(const uint8_t *hay, size_t n, const char *needle, size_t m) {
  if (m == 0 || n < m) return NULL;
  for (size_t i = 0; i + m <= n; i++) {
    const uint8_t *p = memchr(hay + i, needle[0], n - m - i + 1);
    if (!p) return NULL;
    if (!memcmp(p, needle, m)) return p;
    i = (size_t)(p - hay);
  }
  return NULL;
}

/* The value of parameter KEY (e.g. boundary, name) in a header value: key=token or
** key="quoted". Copied into ARENA; NULL when absent. */
static const char *param(const char *v, size_t n, const char *key, qb_arena *a) {
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl < n; i++) {
    if ((i == 0 || v[i - 1] == ';' || v[i - 1] == ' ' || v[i - 1] == '\t') &&
        !strncasecmp(v + i, key, kl) && v[i + kl] == '=') {
      size_t s = i + kl + 1, e;
      if (s < n && v[s] == '"') {
        s++;
        for (e = s; e < n && v[e] != '"'; e++) {}
        if (e >= n) return NULL;
      } else {
        for (e = s; e < n && v[e] != ';' && v[e] != ' ' && v[e] != '\t' && v[e] != '\r'; e++) {}
      }
      return qb_arena_strndup(a, v + s, e - s);
    }
  }
  return NULL;
}

qb_code qs__multipart_parse(const char *ctype, const uint8_t *body, size_t len, qb_arena *arena,
                            qs_part *parts, size_t *nparts, qb_err *err) {
  *nparts = 0;
  if (!ctype || strncasecmp(ctype, "multipart/form-data", 19))
    return qb_fail(err, QB_MALFORMED, "multipart: content-type is not multipart/form-data");
  const char *b = param(ctype, strlen(ctype), "boundary", arena);
  if (!b || !*b || strlen(b) > 200)
    return qb_fail(err, QB_MALFORMED, "multipart: no boundary in content-type");
  char delim[210];
  size_t dl = (size_t)snprintf(delim, sizeof delim, "--%s", b);
  /* The first delimiter may be preceded by a preamble. */
  const uint8_t *p = find(body, len, delim, dl), *end = body + len;
  if (!p) return qb_fail(err, QB_MALFORMED, "multipart: boundary not found in the body");
  char next[214];
  size_t nl = (size_t)snprintf(next, sizeof next, "\r\n--%s", b);
  p += dl;
  for (;;) {
    if ((size_t)(end - p) >= 2 && p[0] == '-' && p[1] == '-') return QB_OK; /* close delimiter */
    /* transport padding, then CRLF */
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if ((size_t)(end - p) < 2 || p[0] != '\r' || p[1] != '\n')
      return qb_fail(err, QB_MALFORMED, "multipart: expected CRLF after a boundary");
    p += 2;
    if (*nparts == QS_PARTS_MAX)
      return qb_fail(err, QB_MALFORMED, "multipart: more than %d parts", QS_PARTS_MAX);
    qs_part *part = &parts[*nparts];
    memset(part, 0, sizeof *part);
    /* headers */
    for (;;) {
      const uint8_t *eol = find(p, (size_t)(end - p), "\r\n", 2);
      if (!eol) return qb_fail(err, QB_MALFORMED, "multipart: unterminated part headers");
      size_t hl = (size_t)(eol - p);
      const char *h = (const char *)p;
      p = eol + 2;
      if (hl == 0) break;
      const char *colon = memchr(h, ':', hl);
      if (!colon) return qb_fail(err, QB_MALFORMED, "multipart: header line without ':'");
      size_t kl = (size_t)(colon - h);
      const char *v = colon + 1;
      size_t vl = hl - kl - 1;
      while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
      if (kl == 19 && !strncasecmp(h, "Content-Disposition", 19)) {
        part->name = param(v, vl, "name", arena);
        part->filename = param(v, vl, "filename", arena);
      } else if (kl == 12 && !strncasecmp(h, "Content-Type", 12)) {
        part->type = qb_arena_strndup(arena, v, vl);
      }
    }
    if (!part->name) return qb_fail(err, QB_MALFORMED, "multipart: part %zu has no name",
                                    *nparts + 1);
    const uint8_t *q = find(p, (size_t)(end - p), next, nl);
    if (!q) return qb_fail(err, QB_MALFORMED, "multipart: part [%s] is not terminated by the "
                           "boundary", part->name);
    part->data = p;
    part->len = (size_t)(q - p);
    (*nparts)++;
    p = q + nl;
  }
}
