/* http.c: the router over routes.def and the helpers every handler uses to read a request and
** write its one response (JSON bodies, Elasticsearch error shapes, query-string arguments).
** Invariant: every response body is JSON unless a handler sets out_type (only /metrics). */
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

const qs_route qs__routes[QS_ROUTE_COUNT] = {
#define QS_ROUTE(id, m, p, h, big) [QS_R_##id] = {m, p, h, big},
#include "routes.def"
#undef QS_ROUTE
};

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Length of the valid UTF-8 sequence at S (1-4), or 0 when it is not one (overlong forms,
** surrogates and code points past U+10FFFF are not). */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
    if (c == 0xed && s[1] >= 0xa0) return 0; /* surrogate */
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
    if (c == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
    if (c == 0xf4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
    return 4;
  }
  return 0;
}

int qs__utf8_ok(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    size_t k = utf8_len(p); /* reads stop at the NUL that ends every string we are given */
    if (!k || k > (size_t)(end - p)) return 0;
    p += k;
  }
  return 1;
}

void qs__printable(const char *s, char *out, size_t cap) {
  size_t w = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p && w + 4 < cap; p++) {
    if (*p >= 0x20 && *p < 0x7f) out[w++] = (char)*p;
    else w += (size_t)snprintf(out + w, cap - w, "%%%02X", *p);
  }
  if (cap) out[w < cap ? w : cap - 1] = 0;
}

/* Percent-decode S in place (never longer); a '%' not followed by two hex digits stays. Returns
** 0 when the decoded segment holds a NUL or is not valid UTF-8: a path names things (indexes,
** UDFs, _ids) that are stored and shown, so such bytes are refused before any handler runs
** (issue 13 #5: `PUT /a%00b` created index `a`, `PUT /%FF%FE` stored an unprintable name). */
static int unescape(char *s) {
  char *w = s, *start = s;
  int nul = 0;
  for (const char *p = s; *p; p++) {
    int hi, lo;
    if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
      *w = (char)(hi * 16 + lo);
      nul |= !*w;
      w++;
      p += 2;
    } else {
      *w++ = *p;
    }
  }
  *w = 0;
  return !nul && qs__utf8_ok(start, (size_t)(w - start));
}

/* Split PATH (in CAPBUF, still percent-encoded) into segments, ignoring a trailing '/', and
** decode each segment: an _id may contain an encoded '/' ("a%2Fb"). */
static size_t split(char *buf, char **segs, size_t max) {
  size_t n = 0;
  char *p = buf;
  while (*p == '/') p++;
  while (*p) {
    if (n == max) return max + 1;
    segs[n++] = p;
    char *slash = strchr(p, '/');
    if (!slash) break;
    *slash = 0;
    p = slash + 1;
  }
  for (size_t i = 0; i < n; i++)
    if (!unescape(segs[i])) return SIZE_MAX;
  return n;
}

static int pattern_match(const char *pattern, char **segs, size_t nsegs,
                         const char *caps[QS_MAX_CAPTURES], size_t *ncaps) {
  size_t i = 0, nc = 0;
  const char *p = pattern;
  while (*p == '/') p++;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (i >= nsegs) return 0;
    if (p[0] == '{') {
      if (!segs[i][0] || nc == QS_MAX_CAPTURES) return 0;
      caps[nc++] = segs[i];
    } else if (strlen(segs[i]) != len || memcmp(segs[i], p, len)) {
      return 0;
    }
    i++;
    p += len;
    while (*p == '/') p++;
  }
  if (i != nsegs) return 0;
  *ncaps = nc;
  return 1;
}

/* Each route's number of path segments, so a request is matched only against the routes of
** its own length (138 patterns, tried in turn, cost ~8k instructions a request; issue 14). */
static unsigned char route_nsegs[QS_ROUTE_COUNT];
static pthread_once_t route_nsegs_once = PTHREAD_ONCE_INIT;

static void route_nsegs_init(void) {
  for (int i = 0; i < QS_ROUTE_COUNT; i++) {
    unsigned n = 0;
    for (const char *p = qs__routes[i].pattern; *p;) {
      while (*p == '/') p++;
      if (!*p) break;
      n++;
      while (*p && *p != '/') p++;
    }
    route_nsegs[i] = (unsigned char)(n < 255 ? n : 255);
  }
}

int qs__route_match(const char *method, const char *path, char *capbuf,
                    const char *caps[QS_MAX_CAPTURES], size_t *ncaps) {
  char *segs[8];
  strcpy(capbuf, path);
  size_t nsegs = split(capbuf, segs, 8);
  *ncaps = 0;
  if (nsegs == SIZE_MAX) return -3;
  if (nsegs > 8) return -1;
  pthread_once(&route_nsegs_once, route_nsegs_init);
  int path_matched = 0;
  for (int i = 0; i < QS_ROUTE_COUNT; i++) {
    const char *tmp[QS_MAX_CAPTURES];
    size_t nc;
    if (route_nsegs[i] != nsegs || !pattern_match(qs__routes[i].pattern, segs, nsegs, tmp, &nc))
      continue;
    if (strcmp(qs__routes[i].method, method)) {
      path_matched = 1;
      continue;
    }
    memcpy(caps, tmp, nc * sizeof *caps);
    *ncaps = nc;
    return i;
  }
  return path_matched ? -2 : -1;
}

const char *qs__arg(qs_req *r, const char *key) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int qs__arg_bool(qs_req *r, const char *key) {
  const char *v = qs__arg(r, key);
  if (!v) {
    /* "?pretty" without a value: MHD reports the key with a NULL value. */
    return MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), NULL,
                                         NULL) == MHD_YES;
  }
  return !*v || !strcmp(v, "true") || !strcmp(v, "1");
}

void qs__reply_json(qs_req *r, int status, json_t *j) {
  qb_buf_reset(&r->out);
  if (!j) {
    r->status = 500;
    qb_buf_puts(&r->out, "{\"error\":{\"type\":\"exception\",\"reason\":\"out of memory\"},"
                         "\"status\":500}");
    return;
  }
  int pretty = qs__arg_bool(r, "pretty");
  r->status = status;
  qb_buf_reserve(&r->out, 8192); /* a page of hits without a dozen doublings (issue 14) */
  if (qs__json_write(j, pretty, &r->out, NULL)) { /* numbers as written: json_out.c */
    r->status = 500;
    qb_buf_reset(&r->out);
  }
  json_decref(j);
  if (r->out.len && qs__arg_bool(r, "pretty")) qb_buf_puts(&r->out, "\n");
}

void qs__reply_buf(qs_req *r, int status, qb_buf *body) {
  qb_buf_fini(&r->out);
  r->out = *body; /* taken, not copied */
  qb_buf_init(body);
  r->status = status;
  if (r->out.failed) {
    qb_buf_reset(&r->out);
    qs__reply_code(r, QB_NOMEM, "out of memory writing the response");
  }
}

void qs__reply_text(qs_req *r, int status, const char *type, const char *text, size_t len) {
  qb_buf_reset(&r->out);
  r->status = status;
  r->out_type = type;
  if (qb_buf_append(&r->out, text, len)) r->status = 500;
}

json_t *qs__error_json(int status, const char *type, const char *reason) {
  json_t *cause = json_pack("{s:s, s:s}", "type", type, "reason", reason);
  return json_pack("{s:{s:[o], s:s, s:s}, s:i}", "error", "root_cause", cause, "type", type,
                   "reason", reason, "status", status);
}

void qs__reply_error(qs_req *r, int status, const char *type, const char *fmt, ...) {
  char reason[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  qs__reply_json(r, status, qs__error_json(status, type, reason));
}

int qs__body_object(qs_req *r, json_t **out) {
  *out = NULL;
  const char *p = r->body;
  size_t n = r->body_len;
  while (n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++, n--;
  if (!n) return 1;
  json_error_t je;
  uint64_t failed = qb_alloc_failures(); /* jansson may report running out as bad JSON */
  json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, &je);
  if (!j) {
    if (qb_alloc_failures() != failed)
      qs__reply_code(r, QB_NOMEM, "out of memory parsing the body");
    else qs__reply_code(r, QB_PARSE, "[%d:%d] %s", je.line, je.column, je.text);
    return 0;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    qs__reply_error(r, 400, "parsing_exception", "request body must be a JSON object");
    return 0;
  }
  *out = j;
  return 1;
}

int qs__index_name_ok(const char *name, char reason[256]) {
  size_t n = strlen(name);
  if (!n) return snprintf(reason, 256, "Invalid index name [], must not be empty"), 0;
  if (n > 255)
    return snprintf(reason, 256, "Invalid index name [%.40s...], index name is too long", name), 0;
  if (!strcmp(name, ".") || !strcmp(name, ".."))
    return snprintf(reason, 256, "Invalid index name [%.2s], must not be '.' or '..'", name), 0;
  if (name[0] == '-' || name[0] == '_' || name[0] == '+')
    return snprintf(reason, 256, "Invalid index name [%.100s], must not start with '_', '-', or '+'",
                    name), 0;
  for (const char *p = name; *p; p++) {
    if (*p >= 'A' && *p <= 'Z')
      return snprintf(reason, 256, "Invalid index name [%.100s], must be lowercase", name), 0;
    if (strchr("\\/*?\"<>| ,#:", *p))
      return snprintf(reason, 256,
                      "Invalid index name [%.100s], must not contain the following characters "
                      "[ , \", *, \\, <, |, ,, >, /, ?, #, :]", name), 0;
  }
  return 1;
}

void qs__reply_no_index(qs_req *r, const char *name) {
  char reason[300];
  snprintf(reason, sizeof reason, "no such index [%.256s]", name);
  json_t *cause = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "index_not_found_exception",
                            "reason", reason, "resource.type", "index_or_alias", "resource.id",
                            name, "index", name);
  json_t *j = json_pack("{s:{s:[o], s:s, s:s, s:s, s:s, s:s}, s:i}", "error", "root_cause", cause,
                        "type", "index_not_found_exception", "reason", reason, "resource.type",
                        "index_or_alias", "resource.id", name, "index", name, "status", 404);
  qs__reply_json(r, 404, j);
}

int qs__subrequest(qs_req *r, qs_handler h, const char *const *caps, size_t ncaps,
                   const char *body, size_t len, json_t **out) {
  qs_req sub = *r;
  sub.ncaps = ncaps < QS_MAX_CAPTURES ? ncaps : QS_MAX_CAPTURES;
  for (size_t i = 0; i < sub.ncaps; i++) sub.caps[i] = caps[i];
  sub.body = body ? body : "";
  sub.body_len = body ? len : 0;
  sub.status = 0;
  sub.out_type = NULL;
  qb_buf_init(&sub.out);
  /* on a coordinator the sub-request goes where its route would (h_coord.c), e.g. _mget's gets */
  int routed = 0;
  if (qc_node_routes(r->srv->node))
    for (int id = 0; id < QS_ROUTE_COUNT && !routed; id++) {
      const qs_route *rt = &qs__routes[id];
      size_t nc = 0;
      for (const char *p = rt->pattern; *p; p++) nc += *p == '{';
      if (rt->handler != h || nc != sub.ncaps) continue;
      sub.route = id;
      sub.method = rt->method;
      routed = 1;
      if (!qs__coord(&sub)) h(&sub);
    }
  if (!routed && qs__alias_caps(&sub, h)) h(&sub);
  *out = sub.out.len ? json_loadb(sub.out.data, sub.out.len, 0, NULL) : NULL;
  qb_buf_fini(&sub.out);
  return sub.status ? sub.status : 500;
}
