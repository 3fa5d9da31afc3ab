/* wire.c: the binary form of a shard's partial result on the wire between a data node and a
** coordinator (/_internal/search with "wire": 1). A partial is a JSON tree (query.h); text JSON
** cost the coordinator a fifth of its CPU per search in parsing (numbers, escapes), so a shard
** answers with the same tree in a compact tagged form instead, which reads back into jansson
** values without a parser. Text JSON stays the fallback (a shard that does not know "wire"
** answers JSON, and the coordinator reads both) and the debug path (curl the route without it).
**
** Format, version 1 ("QDP" then the version byte), then one value:
**   0 null   1 false   2 true
**   3 integer: zigzag varint (int64)        4 real: 8 bytes, IEEE 754 binary64, little-endian
**   5 string: varint length, UTF-8 bytes    6 array: varint count, the values
**   7 object: varint count, then count times (varint key length, key bytes, value)
**   8 raw JSON: varint length, the text of a hit's `_source` as the query layer marks it
**     (QQ_RAW_JSON, query.h), sent only to a coordinator that asked ("raw": 1): it reads back
**     as the same marked string, checked with qq_json_canonical, so the coordinator copies it
**     into its response without building its tree
** Varints are LEB128 (7 bits a byte, at most 10 bytes). Nothing may follow the value.
** Invariant: the bytes come from a peer, so they are untrusted: every length is checked against
** what is left, counts are bounded by the bytes left (a value takes at least one), strings and
** keys must be UTF-8 (keys without NUL), reals finite, nesting at most QC_WIRE_MAX_DEPTH (as
** jansson's parser); anything else is QB_CORRUPT naming the offset, never a crash. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

enum { T_NULL, T_FALSE, T_TRUE, T_INT, T_REAL, T_STR, T_ARR, T_OBJ, T_RAW };

static const char magic[4] = {'Q', 'D', 'P', QC_WIRE_VERSION};

/* ---- encoding -------------------------------------------------------------------------------- */

static void put_varint(qb_buf *b, uint64_t v) {
  unsigned char t[10];
  size_t n = 0;
  do {
    t[n] = v & 0x7f;
    v >>= 7;
    if (v) t[n] |= 0x80;
    n++;
  } while (v);
  qb_buf_append(b, t, n);
}

static void put_tag(qb_buf *b, int tag) {
  unsigned char t = (unsigned char)tag;
  qb_buf_append(b, &t, 1);
}

static void put_bytes(qb_buf *b, const char *s, size_t n) {
  put_varint(b, n);
  qb_buf_append(b, s, n);
}

/* Where a value sits in the partial: a hit's _source is sent raw when the coordinator asked */
enum { AT_ANY, AT_TOP, AT_HITS, AT_HIT, AT_SOURCE };

typedef struct enc {
  qb_buf *b;
  int raw;      /* the coordinator splices raw _source (it asked "raw") */
  qb_buf text;  /* scratch: a _source printed compact */
} enc;

/* S/N as a JSON string into T, when it needs no escape; 0 otherwise. */
static int print_str(qb_buf *t, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == '"' || c == '\\') return 0;
  }
  qb_buf_append(t, "\"", 1);
  qb_buf_append(t, s, n);
  qb_buf_append(t, "\"", 1);
  return 1;
}

/* J printed compact into T for the common values (no reals, no string that needs an escape:
** the writer's forms of those are its own); 0 for anything else, which then goes as a tree.
** jansson's own printer costs a hash table of the open containers per call. */
static int print_compact(const json_t *j, qb_buf *t, int depth) {
  if (depth > 64) return 0;
  switch (json_typeof(j)) {
  case JSON_NULL: return !qb_buf_append(t, "null", 4);
  case JSON_FALSE: return !qb_buf_append(t, "false", 5);
  case JSON_TRUE: return !qb_buf_append(t, "true", 4);
  case JSON_INTEGER: {
    char n[24];
    int w = snprintf(n, sizeof n, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    return !qb_buf_append(t, n, (size_t)w);
  }
  case JSON_REAL: return 0;
  case JSON_STRING: return print_str(t, json_string_value(j), json_string_length(j));
  case JSON_ARRAY: {
    qb_buf_append(t, "[", 1);
    for (size_t i = 0, n = json_array_size(j); i < n; i++)
      if ((i && qb_buf_append(t, ",", 1)) || !print_compact(json_array_get(j, i), t, depth + 1))
        return 0;
    return !qb_buf_append(t, "]", 1);
  }
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    int first = 1;
    qb_buf_append(t, "{", 1);
    json_object_foreach((json_t *)j, k, v) {
      if ((!first && qb_buf_append(t, ",", 1)) || !print_str(t, k, strlen(k)) ||
          qb_buf_append(t, ":", 1) || !print_compact(v, t, depth + 1))
        return 0;
      first = 0;
    }
    return !qb_buf_append(t, "}", 1);
  }
  }
  return 0;
}

/* A hit's _source tree (its stored text was not the compact form the coordinator's writer
** prints, so the shard parsed it) printed compact and sent as raw JSON when that text is what
** the writer would print for the tree (qq_json_canonical, which stays the judge of the
** printer's text): the coordinator then copies it into
** its response instead of reading, freeing and printing a tree per hit. 0: sent as a tree. */
static int encode_source_raw(const json_t *j, enc *e) {
  if (!json_is_object(j)) return 0;
  qb_buf_reset(&e->text);
  if (!print_compact(j, &e->text, 0) || e->text.failed ||
      !qq_json_canonical(e->text.data, e->text.len))
    return 0;
  put_tag(e->b, T_RAW);
  put_bytes(e->b, e->text.data, e->text.len);
  return 1;
}

static int encode(const json_t *j, enc *e, int depth, int at) {
  qb_buf *b = e->b;
  if (depth > QC_WIRE_MAX_DEPTH) return 0;
  if (at == AT_SOURCE && e->raw && encode_source_raw(j, e)) return 1;
  switch (json_typeof(j)) {
  case JSON_NULL: put_tag(b, T_NULL); return 1;
  case JSON_FALSE: put_tag(b, T_FALSE); return 1;
  case JSON_TRUE: put_tag(b, T_TRUE); return 1;
  case JSON_INTEGER: {
    int64_t v = json_integer_value(j);
    put_tag(b, T_INT);
    put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
    return 1;
  }
  case JSON_REAL: {
    double d = json_real_value(j);
    uint64_t u;
    memcpy(&u, &d, 8);
    unsigned char t[9] = {T_REAL};
    for (int i = 0; i < 8; i++) t[1 + i] = (unsigned char)(u >> (8 * i));
    qb_buf_append(b, t, 9);
    return 1;
  }
  case JSON_STRING: {
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n >= QQ_RAW_JSON_LEN && !memcmp(s, QQ_RAW_JSON, QQ_RAW_JSON_LEN)) {
      put_tag(b, T_RAW); /* a marked _source: its text, without the mark */
      put_bytes(b, s + QQ_RAW_JSON_LEN, n - QQ_RAW_JSON_LEN);
      return 1;
    }
    put_tag(b, T_STR);
    put_bytes(b, s, n);
    return 1;
  }
  case JSON_ARRAY: {
    size_t i;
    json_t *v;
    put_tag(b, T_ARR);
    put_varint(b, json_array_size(j));
    json_array_foreach((json_t *)j, i, v) if (!encode(v, e, depth + 1, at == AT_HITS ? AT_HIT : AT_ANY)) return 0;
    return 1;
  }
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    put_tag(b, T_OBJ);
    put_varint(b, json_object_size(j));
    json_object_foreach((json_t *)j, k, v) {
      put_bytes(b, k, strlen(k));
      int in = at == AT_TOP && !strcmp(k, "hits")     ? AT_HITS
               : at == AT_HIT && !strcmp(k, "_source") ? AT_SOURCE
                                                       : AT_ANY;
      if (!encode(v, e, depth + 1, in)) return 0;
    }
    return 1;
  }
  }
  return 0;
}

qb_code qc_wire_encode(const json_t *j, qb_buf *out, qb_err *err) {
  return qc_wire_encode_raw(j, 0, out, err);
}

qb_code qc_wire_encode_raw(const json_t *j, int raw_source, qb_buf *out, qb_err *err) {
  qb_buf_reserve(out, 4096); /* a 10-hit partial in one allocation, not a doubling per KB */
  qb_buf_append(out, magic, sizeof magic);
  enc e = {out, raw_source, {0}};
  int ok = j && encode(j, &e, 0, AT_TOP);
  qb_buf_fini(&e.text);
  if (!ok)
    return qb_fail(err, QB_INVAL, "partial wire: a tree nested deeper than %d levels",
                   QC_WIRE_MAX_DEPTH);
  if (out->failed) return qb_fail(err, QB_NOMEM, "partial wire: out of memory");
  return QB_OK;
}

/* ---- decoding -------------------------------------------------------------------------------- */

typedef struct rd {
  const unsigned char *p, *start, *end;
  qb_err *err;
  qb_code rc;
  json_t *index_s; /* the last "_index" string read: an equal one shares it, as the shard's
                   ** own hits do (a partial's hits name one index). The reader holds its own
                   ** reference: a duplicate key or a failed object frees the tree's. */
} rd;

static int bad(rd *r, const char *what) {
  if (!r->rc)
    r->rc = qb_fail(r->err, QB_CORRUPT, "shard result (binary, offset %zu): %s",
                    (size_t)(r->p - r->start), what);
  return 0;
}

static int get_varint(rd *r, uint64_t *v) {
  uint64_t x = 0;
  for (int s = 0; s < 70; s += 7) {
    if (r->p == r->end) return bad(r, "truncated number");
    unsigned char c = *r->p++;
    if (s == 63 && c > 1) return bad(r, "a number over 64 bits");
    x |= (uint64_t)(c & 0x7f) << s;
    if (!(c & 0x80)) {
      *v = x;
      return 1;
    }
  }
  return bad(r, "a number over 64 bits");
}

/* A length that fits in what is left (each of COUNT items takes at least MIN bytes). */
static int get_len(rd *r, size_t min, size_t *n) {
  uint64_t v;
  if (!get_varint(r, &v)) return 0;
  if (v > (uint64_t)(r->end - r->p) / min) return bad(r, "a length past the end");
  *n = (size_t)v;
  return 1;
}

static json_t *decode(rd *r, int depth);

/* The value of an "_index" key when it is a string equal to the last one: that one, shared
** (a new reference); NULL otherwise, with nothing read. */
static json_t *shared_index(rd *r) {
  const unsigned char *at = r->p;
  size_t n;
  if (!r->index_s || r->p == r->end || *r->p != T_STR) return NULL;
  r->p++;
  if (!get_len(r, 1, &n) || n != json_string_length(r->index_s) ||
      memcmp(r->p, json_string_value(r->index_s), n)) {
    r->p = at;
    r->rc = QB_OK; /* a bad length is reported by the ordinary read that follows */
    return NULL;
  }
  r->p += n;
  return json_incref(r->index_s);
}

static json_t *decode(rd *r, int depth) {
  if (depth > QC_WIRE_MAX_DEPTH) return bad(r, "nested too deep"), NULL;
  if (r->p == r->end) return bad(r, "truncated value"), NULL;
  int tag = *r->p++;
  switch (tag) {
  case T_NULL: return json_null();
  case T_FALSE: return json_false();
  case T_TRUE: return json_true();
  case T_INT: {
    uint64_t z;
    if (!get_varint(r, &z)) return NULL;
    json_t *j = json_integer((json_int_t)((z >> 1) ^ (~(z & 1) + 1)));
    return j ? j : (r->rc = qb_fail(r->err, QB_NOMEM, "out of memory"), NULL);
  }
  case T_REAL: {
    if (r->end - r->p < 8) return bad(r, "truncated real"), NULL;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    double d;
    memcpy(&d, &u, 8);
    if (!isfinite(d)) return bad(r, "a real that is not finite"), NULL;
    json_t *j = json_real(d);
    return j ? j : (r->rc = qb_fail(r->err, QB_NOMEM, "out of memory"), NULL);
  }
  case T_STR: {
    size_t n;
    if (!get_len(r, 1, &n)) return NULL;
    json_t *j = json_stringn((const char *)r->p, n); /* NULL: not UTF-8 (or out of memory) */
    if (!j) return bad(r, "a string that is not UTF-8"), NULL;
    r->p += n;
    return j;
  }
  case T_RAW: { /* printed as it is by the coordinator: it must be what its writer prints */
    size_t n;
    if (!get_len(r, 1, &n)) return NULL;
    if (!qq_json_canonical((const char *)r->p, n)) return bad(r, "raw JSON that is not canonical"), NULL;
    char small[1024]; /* most documents: no allocation for the marked text */
    char *m = n <= sizeof small - QQ_RAW_JSON_LEN ? small
              : n <= SIZE_MAX - QQ_RAW_JSON_LEN  ? qb_malloc(n + QQ_RAW_JSON_LEN)
                                                 : NULL;
    if (!m) return r->rc = qb_fail(r->err, QB_NOMEM, "out of memory"), NULL;
    memcpy(m, QQ_RAW_JSON, QQ_RAW_JSON_LEN);
    memcpy(m + QQ_RAW_JSON_LEN, r->p, n);
    json_t *j = json_stringn_nocheck(m, n + QQ_RAW_JSON_LEN);
    if (m != small) qb_free(m, n + QQ_RAW_JSON_LEN);
    if (!j) return r->rc = qb_fail(r->err, QB_NOMEM, "out of memory"), NULL;
    r->p += n;
    return j;
  }
  case T_ARR: {
    size_t n;
    if (!get_len(r, 1, &n)) return NULL;
    json_t *a = json_array();
    if (!a) return r->rc = qb_fail(r->err, QB_NOMEM, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) {
      json_t *v = decode(r, depth + 1);
      if (!v || json_array_append_new(a, v)) {
        json_decref(a);
        return v ? (r->rc = qb_fail(r->err, QB_NOMEM, "out of memory"), NULL) : NULL;
      }
    }
    return a;
  }
  case T_OBJ: {
    size_t n;
    if (!get_len(r, 2, &n)) return NULL; /* a key length and a value at least */
    json_t *o = json_object();
    if (!o) return r->rc = qb_fail(r->err, QB_NOMEM, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) {
      size_t kl;
      char small[64], *key = small;
      if (!get_len(r, 1, &kl)) goto fail;
      if (memchr(r->p, 0, kl)) {
        bad(r, "a key holding a NUL byte");
        goto fail;
      }
      if (kl >= sizeof small && !(key = qb_malloc(kl + 1))) {
        r->rc = qb_fail(r->err, QB_NOMEM, "out of memory");
        goto fail;
      }
      memcpy(key, r->p, kl);
      key[kl] = 0;
      const unsigned char *at = r->p;
      r->p += kl;
      int is_index = kl == 6 && !memcmp(key, "_index", 6);
      json_t *v = is_index ? shared_index(r) : NULL;
      if (!v && (v = decode(r, depth + 1)) && is_index && json_is_string(v)) {
        json_decref(r->index_s);
        r->index_s = json_incref(v);
      }
      int refused = v && json_object_set_new(o, key, v); /* refused: the key is not UTF-8 */
      if (key != small) qb_free(key, kl + 1);
      if (!v) goto fail;
      if (refused) {
        r->p = at;
        bad(r, "a key that is not UTF-8");
        goto fail;
      }
    }
    return o;
  fail:
    json_decref(o);
    return NULL;
  }
  default: return bad(r, "an unknown value tag"), NULL;
  }
}

int qc_wire_is(const void *p, size_t len) { return len >= 3 && !memcmp(p, magic, 3); }

qb_code qc_wire_decode(const void *p, size_t len, json_t **out, qb_err *err) {
  *out = NULL;
  if (!qc_wire_is(p, len))
    return qb_fail(err, QB_CORRUPT, "shard result: not a binary partial (no QDP header)");
  const unsigned char *b = p;
  if (len < 4 || b[3] != QC_WIRE_VERSION)
    return qb_fail(err, QB_CORRUPT, "shard result: binary partial version %d, this build reads "
                   "version %d", len < 4 ? -1 : b[3], QC_WIRE_VERSION);
  rd r = {b + 4, b, b + len, err, QB_OK, NULL};
  json_t *j = decode(&r, 0);
  json_decref(r.index_s);
  if (j && r.p != r.end) {
    bad(&r, "bytes after the value");
    json_decref(j);
    j = NULL;
  }
  if (!j) return r.rc ? r.rc : qb_fail(err, QB_CORRUPT, "shard result: damaged binary partial");
  *out = j;
  return QB_OK;
}
