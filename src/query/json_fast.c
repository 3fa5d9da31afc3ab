/* json_fast.c: a quick reader of the common subset of JSON into jansson trees, for the texts
** every query reads (stored _source, request bodies). jansson's own reader costs ~150
** instructions a byte (issue 14: 85% of a 10-hit _search with _source was json_loadb of the
** sources). Invariant: this reader only ever accepts what json_loadb accepts, and builds the
** same tree; anything it is unsure of (\u escapes, control bytes, a number out of range, a
** syntax error, depth past jansson's limit, a duplicate key when they are refused) makes it
** give up, and the caller runs json_loadb, which then also gives the error message. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FAST_MAX_DEPTH 64 /* deeper: jansson's reader (its limit is 2048; this one recurses) */

typedef struct rd {
  const char *p, *end;
  int reject_dups;
  char *sbuf; /* unescaped strings (heap; grows) */
  size_t scap;
} rd;

static void ws(rd *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

/* The length of the valid UTF-8 sequence at S (at most N bytes), 0 when not one: jansson's
** rules (no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c >= 0xc2 && c <= 0xdf) return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[1] < 0xa0) return 0;
    if (c == 0xed && s[1] >= 0xa0) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
    if (c == 0xf0 && s[1] < 0x90) return 0;
    if (c == 0xf4 && s[1] >= 0x90) return 0;
    return 4;
  }
  return 0;
}

/* A string at r->p (on the opening quote): S and N point into the input when it has no escapes,
** else into r->sbuf. 0 on success. */
static int str(rd *r, const char **s, size_t *n) {
  const char *p = ++r->p, *start = p;
  size_t w = 0;
  int esc = 0;
  for (;;) {
    while (p < r->end && qb_json_plain[(unsigned char)*p] == 1) p++; /* ASCII: one test each */
    if (p >= r->end) return -1;
    unsigned char c = (unsigned char)*p;
    if (c == '"') break;
    if (c < 0x20) return -1;
    if (c == '\\') {
      esc = 1;
      if (p + 1 >= r->end) return -1;
      if (!strchr("\"\\/bfnrt", p[1]) || !p[1]) return -1; /* \u and the rest: jansson's */
      p += 2;
      continue;
    }
    if (c >= 0x80) {
      size_t k = utf8_seq((const unsigned char *)p, (size_t)(r->end - p));
      if (!k) return -1;
      p += k;
      continue;
    }
    p++;
  }
  r->p = p + 1;
  if (!esc) {
    *s = start;
    *n = (size_t)(p - start);
    return 0;
  }
  if ((size_t)(p - start) + 1 > r->scap) {
    size_t nc = (size_t)(p - start) + 64;
    char *nb = qb_realloc(r->sbuf, r->scap, nc);
    if (!nb) return -1;
    r->sbuf = nb;
    r->scap = nc;
  }
  for (const char *q = start; q < p; q++) {
    if (*q != '\\') {
      r->sbuf[w++] = *q;
      continue;
    }
    q++;
    switch (*q) {
    case 'b': r->sbuf[w++] = '\b'; break;
    case 'f': r->sbuf[w++] = '\f'; break;
    case 'n': r->sbuf[w++] = '\n'; break;
    case 'r': r->sbuf[w++] = '\r'; break;
    case 't': r->sbuf[w++] = '\t'; break;
    default: r->sbuf[w++] = *q; break; /* " \ / */
    }
  }
  *s = r->sbuf;
  *n = w;
  return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static json_t *num(rd *r) {
  const char *p = r->p, *s = p;
  int real = 0;
  char buf[64];
  if (p < r->end && *p == '-') p++;
  if (p >= r->end || !is_digit(*p)) return NULL;
  if (*p == '0') {
    p++;
    if (p < r->end && is_digit(*p)) return NULL;
  } else {
    while (p < r->end && is_digit(*p)) p++;
  }
  if (p < r->end && *p == '.') {
    real = 1;
    p++;
    if (p >= r->end || !is_digit(*p)) return NULL;
    while (p < r->end && is_digit(*p)) p++;
  }
  if (p < r->end && (*p == 'e' || *p == 'E')) {
    real = 1;
    p++;
    if (p < r->end && (*p == '+' || *p == '-')) p++;
    if (p >= r->end || !is_digit(*p)) return NULL;
    while (p < r->end && is_digit(*p)) p++;
  }
  if ((size_t)(p - s) >= sizeof buf) return NULL; /* long numbers: jansson's */
  memcpy(buf, s, (size_t)(p - s));
  buf[p - s] = 0;
  r->p = p;
  errno = 0;
  if (!real) {
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return NULL;
    return json_integer((json_int_t)v);
  }
  double d = strtod(buf, NULL);
  if (errno == ERANGE && (d > 1.0 || d < -1.0)) return NULL; /* overflow; underflow reads 0 */
  return json_real(d);
}

static json_t *value(rd *r, int depth);

static json_t *object(rd *r, int depth) {
  json_t *o = json_object();
  r->p++;
  ws(r);
  if (!o) return NULL;
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    return o;
  }
  for (;;) {
    const char *k;
    size_t kn;
    char kbuf[256], *key = kbuf;
    if (r->p >= r->end || *r->p != '"' || str(r, &k, &kn)) goto fail;
    if (memchr(k, 0, kn)) goto fail;
    if (kn >= sizeof kbuf && !(key = qb_malloc(kn + 1))) goto fail;
    memcpy(key, k, kn);
    key[kn] = 0;
    ws(r);
    json_t *v = NULL;
    if (r->p >= r->end || *r->p != ':') goto fail_key;
    r->p++;
    ws(r);
    if (r->reject_dups && json_object_get(o, key)) goto fail_key;
    if (!(v = value(r, depth + 1)) || json_object_set_new_nocheck(o, key, v)) goto fail_key;
    if (key != kbuf) qb_free(key, kn + 1);
    ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      ws(r);
      continue;
    }
    if (r->p < r->end && *r->p == '}') {
      r->p++;
      return o;
    }
    goto fail;
  fail_key:
    if (key != kbuf) qb_free(key, kn + 1);
    goto fail;
  }
fail:
  json_decref(o);
  return NULL;
}

static json_t *array(rd *r, int depth) {
  json_t *a = json_array();
  r->p++;
  ws(r);
  if (!a) return NULL;
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    return a;
  }
  for (;;) {
    json_t *v = value(r, depth + 1);
    if (!v || json_array_append_new(a, v)) break;
    ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      ws(r);
      continue;
    }
    if (r->p < r->end && *r->p == ']') {
      r->p++;
      return a;
    }
    break;
  }
  json_decref(a);
  return NULL;
}

static int word(rd *r, const char *w, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n)) return 0;
  r->p += n;
  return 1;
}

static json_t *value(rd *r, int depth) {
  if (depth > FAST_MAX_DEPTH || r->p >= r->end) return NULL;
  switch (*r->p) {
  case '{': return object(r, depth);
  case '[': return array(r, depth);
  case '"': {
    const char *s;
    size_t n;
    if (str(r, &s, &n)) return NULL;
    return json_stringn_nocheck(s, n);
  }
  case 't': return word(r, "true", 4) ? json_true() : NULL;
  case 'f': return word(r, "false", 5) ? json_false() : NULL;
  case 'n': return word(r, "null", 4) ? json_null() : NULL;
  default: return num(r);
  }
}

json_t *qq__json_load(const char *text, size_t len, int flags, json_error_t *je) {
  rd r = {text, text + len, (flags & JSON_REJECT_DUPLICATES) != 0, NULL, 0};
  json_t *j = NULL;
  ws(&r);
  if (r.p < r.end && ((flags & JSON_DECODE_ANY) || *r.p == '{' || *r.p == '[')) {
    /* out of memory on the way also falls back: jansson's reader reports it, as it did */
    j = value(&r, 1);
    ws(&r);
    if (j && r.p != r.end) {
      json_decref(j);
      j = NULL;
    }
  }
  qb_free(r.sbuf, r.scap);
  return j ? j : json_loadb(text, len, flags, je);
}
