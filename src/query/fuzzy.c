/* fuzzy.c: the fuzzy query and match's fuzziness (Levenshtein distance over the term dictionary,
** with Damerau's adjacent transpositions unless turned off, on code points, as Lucene's
** FuzzyQuery), the boosting query, the regexp query's scan of the dictionary (regexp.c compiles
** and matches), and leaves whose field is a pattern ("*": every indexed field, as
** query_string's default field). A fuzzy term expands once per shard, over every segment's
** dictionary, to at most max_expansions terms (closest first, then in term order); each scores
** as a term query with the boost times Lucene's similarity 1 - edits / min(length, term
** length) (Lucene also blends the terms' document frequencies: not done here). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CPS 256
#define MAX_EXPANSIONS_LIMIT 10000

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

/* ---- parsing --------------------------------------------------------------------------------- */

static int opt_uint(const json_t *v, uint32_t *out) {
  if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= INT32_MAX) {
    *out = (uint32_t)json_integer_value(v);
    return 1;
  }
  if (json_is_string(v)) {
    char *end;
    long n = strtol(json_string_value(v), &end, 10);
    if (*json_string_value(v) && !*end && n >= 0 && n <= INT32_MAX) { *out = (uint32_t)n; return 1; }
  }
  return 0;
}

static qq__xq *xq(qq__pctx *p, qq__query *q) {
  if (!q->x && (q->x = qb_arena_alloc(&qq__pctx_req(p)->arena, sizeof *q->x))) {
    memset(q->x, 0, sizeof *q->x);
    q->x->edits = -1;
    q->x->auto_lo = 3;
    q->x->auto_hi = 6;
    q->x->max_exp = 50;
    q->x->transpositions = 1;
  }
  return q->x;
}

/* "fuzziness": 0, 1, 2, "AUTO", "AUTO:low,high" */
static qb_code fuzziness(qq__pctx *p, const char *qname, const json_t *v, qq__xq *x) {
  qb_err *err = qq__pctx_err(p);
  const char *s = json_is_string(v) ? json_string_value(v) : NULL;
  char buf[32];
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    s = buf;
  }
  if (!s) return qb_fail(err, QB_MALFORMED, "[%s] query: [fuzziness] must be a number or AUTO", qname);
  if (!strncmp(s, "AUTO", 4) || !strncmp(s, "auto", 4)) {
    x->edits = -1;
    if (!s[4]) return QB_OK;
    int lo, hi, n = 0;
    if (s[4] == ':' && sscanf(s + 5, "%d,%d%n", &lo, &hi, &n) == 2 && !s[5 + n] && lo >= 0 && hi >= lo) {
      x->auto_lo = lo;
      x->auto_hi = hi;
      return QB_OK;
    }
    return qb_fail(err, QB_INVAL, "[%s] query: failed to parse [fuzziness] [%s]: AUTO, AUTO:low,high, 0, 1 or 2", qname, s);
  }
  if ((!strcmp(s, "0") || !strcmp(s, "1") || !strcmp(s, "2"))) {
    x->edits = s[0] - '0';
    return QB_OK;
  }
  return qb_fail(err, QB_INVAL, "[%s] query: [fuzziness] [%s] is not supported: AUTO, AUTO:low,high, 0, 1 or 2 edits", qname, s);
}

static qb_code constant_rewrite(qq__pctx *p, const char *qname, const char *k, const json_t *v) {
  const char *rw = json_is_string(v) ? json_string_value(v) : "";
  if (!strncmp(rw, "constant_score", 14) || !strncmp(rw, "top_terms", 9) || !strcmp(rw, "scoring_boolean"))
    return QB_OK; /* the expansion is bounded by max_expansions whichever rewrite is named */
  return qb_fail(qq__pctx_err(p), QB_INVAL, "[%s] query: [%s] [%s] is not supported", qname, k, rw);
}

qb_code qq__match_option(qq__pctx *p, qq__query *q, const char *k, const json_t *v, int *taken) {
  qb_err *err = qq__pctx_err(p);
  qq__xq *x;
  *taken = 0;
  if (strcmp(k, "analyzer") && strcmp(k, "fuzziness") && strcmp(k, "prefix_length") &&
      strcmp(k, "max_expansions") && strcmp(k, "fuzzy_transpositions") && strcmp(k, "fuzzy_rewrite"))
    return QB_OK;
  *taken = 1;
  if (!(x = xq(p, q))) return nomem(err);
  if (!strcmp(k, "analyzer")) {
    if (!json_is_string(v)) return qb_fail(err, QB_MALFORMED, "[match] query: [analyzer] must be a string");
    x->analyzer = json_string_value(v);
  } else if (!strcmp(k, "fuzziness")) {
    x->fuzzy = 1;
    return fuzziness(p, "match", v, x);
  } else if (!strcmp(k, "prefix_length")) {
    if (!opt_uint(v, &x->prefix_len)) return qb_fail(err, QB_INVAL, "[match] query: [prefix_length] must be a non-negative integer");
  } else if (!strcmp(k, "max_expansions")) {
    if (!opt_uint(v, &x->max_exp) || !x->max_exp || x->max_exp > MAX_EXPANSIONS_LIMIT)
      return qb_fail(err, QB_INVAL, "[match] query: [max_expansions] must be 1 to %d", MAX_EXPANSIONS_LIMIT);
  } else if (!strcmp(k, "fuzzy_transpositions")) {
    if (!json_is_boolean(v)) return qb_fail(err, QB_MALFORMED, "[match] query: [fuzzy_transpositions] must be a boolean");
    x->transpositions = json_is_true(v);
  } else {
    return constant_rewrite(p, "match", k, v);
  }
  return QB_OK;
}

/* {"fuzzy": {"F": "v"}} or {"fuzzy": {"F": {"value": "v", ...}}} */
qb_code qq__parse_fuzzy(qq__pctx *p, const json_t *body, qq__query *q) {
  qb_err *err = qq__pctx_err(p);
  const char *k;
  json_t *v, *o;
  qb_code rc;
  qq__xq *x = xq(p, q);
  if (!x) return nomem(err);
  x->fuzzy = 1;
  if (!json_is_object(body) || json_object_size(body) != 1)
    return qb_fail(err, QB_MALFORMED, "[fuzzy] query malformed: one field per query");
  q->field = json_object_iter_key(json_object_iter((json_t *)body));
  o = json_object_iter_value(json_object_iter((json_t *)body));
  if (!json_is_object(o)) {
    q->value = o;
  } else {
    json_object_foreach(o, k, v) {
      if (!strcmp(k, "value")) q->value = v;
      else if (!strcmp(k, "boost")) { if ((rc = qq__get_boost(p, o, "fuzzy", &q->boost))) return rc; }
      else if (!strcmp(k, "fuzziness")) { if ((rc = fuzziness(p, "fuzzy", v, x))) return rc; }
      else if (!strcmp(k, "prefix_length")) {
        if (!opt_uint(v, &x->prefix_len)) return qb_fail(err, QB_INVAL, "[fuzzy] query: [prefix_length] must be a non-negative integer");
      } else if (!strcmp(k, "max_expansions")) {
        if (!opt_uint(v, &x->max_exp) || !x->max_exp || x->max_exp > MAX_EXPANSIONS_LIMIT)
          return qb_fail(err, QB_INVAL, "[fuzzy] query: [max_expansions] must be 1 to %d", MAX_EXPANSIONS_LIMIT);
      } else if (!strcmp(k, "transpositions")) {
        if (!json_is_boolean(v)) return qb_fail(err, QB_MALFORMED, "[fuzzy] query: [transpositions] must be a boolean");
        x->transpositions = json_is_true(v);
      } else if (!strcmp(k, "rewrite")) {
        if ((rc = constant_rewrite(p, "fuzzy", k, v))) return rc;
      } else {
        return qb_fail(err, QB_MALFORMED, "[fuzzy] query does not support [%s]", k);
      }
    }
  }
  if (!json_is_string(q->value) && !json_is_number(q->value))
    return qb_fail(err, QB_MALFORMED, "[fuzzy] query: [value] of field [%s] must be a string", q->field);
  return QB_OK;
}

qb_code qq__parse_boosting(qq__pctx *p, const json_t *body, qq__query *q) {
  qb_err *err = qq__pctx_err(p);
  const char *k;
  json_t *v, *pos = NULL, *neg = NULL, *nb = NULL;
  qb_code rc;
  qq__xq *x = xq(p, q);
  if (!x) return nomem(err);
  if (!json_is_object(body)) return qb_fail(err, QB_MALFORMED, "[boosting] query malformed, no start_object after query name");
  json_object_foreach((json_t *)body, k, v) {
    if (!strcmp(k, "positive")) pos = v;
    else if (!strcmp(k, "negative")) neg = v;
    else if (!strcmp(k, "negative_boost")) nb = v;
    else if (!strcmp(k, "boost")) { if ((rc = qq__get_boost(p, body, "boosting", &q->boost))) return rc; }
    else return qb_fail(err, QB_MALFORMED, "[boosting] query does not support [%s]", k);
  }
  if (!pos) return qb_fail(err, QB_MALFORMED, "[boosting] query requires 'positive' query to be set'");
  if (!neg) return qb_fail(err, QB_MALFORMED, "[boosting] query requires 'negative' query to be set'");
  if (!nb || !json_is_number(nb) || json_number_value(nb) < 0)
    return qb_fail(err, QB_MALFORMED, "[boosting] query requires 'negative_boost' to be set to be a positive value'");
  x->negative_boost = json_number_value(nb);
  if ((rc = qq__parse_sub(p, pos, "boosting.positive", &q->child))) return rc;
  return qq__parse_sub(p, neg, "boosting.negative", &x->negative);
}

/* ---- edit distance --------------------------------------------------------------------------- */

static size_t to_cps(const char *s, size_t len, uint32_t *out, size_t cap) {
  size_t i = 0, n = 0;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    uint32_t v;
    size_t k, l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (n == cap) return cap + 1;
    if (i + l > len) l = len - i;
    v = l == 1 ? c : (uint32_t)(c & (0x3F >> (l - 1)));
    for (k = 1; k < l; k++) v = (v << 6) | ((unsigned char)s[i + k] & 0x3F);
    out[n++] = v;
    i += l;
  }
  return n;
}

/* Levenshtein distance of A and B (optimal string alignment when TR), or K + 1 when above K */
static int distance(const uint32_t *a, size_t n, const uint32_t *b, size_t m, int k, int tr) {
  int rows[3][MAX_CPS + 2];
  int *pp = rows[0], *pr = rows[1], *cur = rows[2];
  size_t i, j;
  if ((n > m ? n - m : m - n) > (size_t)k) return k + 1;
  for (j = 0; j <= m; j++) pr[j] = (int)j;
  for (i = 1; i <= n; i++) {
    int lo = (int)i;
    cur[0] = (int)i;
    for (j = 1; j <= m; j++) {
      int c = pr[j - 1] + (a[i - 1] != b[j - 1]);
      if (pr[j] + 1 < c) c = pr[j] + 1;
      if (cur[j - 1] + 1 < c) c = cur[j - 1] + 1;
      if (tr && i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < c)
        c = pp[j - 2] + 1;
      cur[j] = c;
      if (c < lo) lo = c;
    }
    if (lo > k) return k + 1;
    int *t = pp;
    pp = pr;
    pr = cur;
    cur = t;
  }
  return pr[m];
}

typedef struct xterm {
  const char *t;
  size_t len;
  int ed;
  float sim;
} xterm;

typedef struct xcache {
  struct xcache *next;
  const qq__query *q;
  uint32_t field;
  const char *key;
  size_t klen;
  xterm *terms;
  size_t n;
} xcache;

static int cmp_xterm(const void *x, const void *y) {
  const xterm *a = x, *b = y;
  if (a->ed != b->ed) return a->ed - b->ed;
  size_t m = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->t, b->t, m);
  return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* The expansion of TERM for Q in field FI over the whole shard (cached per shard). */
static qb_code expand(qq__seg_ctx *cx, const qq__query *q, const qi_field_info *fi,
                      const char *term, size_t len, const xcache **out, qb_err *err) {
  qq__shard *sh = cx->sh;
  const qq__xq *x = q->x;
  uint32_t qc[MAX_CPS + 1], tc[MAX_CPS + 1];
  size_t qn, i, s, n = 0, cap = 0;
  xterm *cand = NULL;
  xcache *c;
  int k;
  for (c = sh->xcache; c; c = c->next)
    if (c->q == q && c->field == fi->id && c->klen == len && !memcmp(c->key, term, len)) {
      *out = c;
      return QB_OK;
    }
  qn = to_cps(term, len, qc, MAX_CPS);
  if (qn > MAX_CPS) qn = MAX_CPS; /* a longer term matches itself only (edits 0 below) */
  k = x->edits >= 0 ? x->edits : (int)qn < x->auto_lo ? 0 : (int)qn < x->auto_hi ? 1 : 2;
  size_t pfx = x->prefix_len < qn ? x->prefix_len : qn, pbytes = 0;
  for (i = 0; i < pfx; i++) pbytes += qc[i] < 0x80 ? 1 : qc[i] < 0x800 ? 2 : qc[i] < 0x10000 ? 3 : 4;
  if (!(c = qb_arena_alloc(sh->ar, sizeof *c))) return nomem(err);
  memset(c, 0, sizeof *c);
  c->q = q;
  c->field = fi->id;
  c->key = qb_arena_strndup(sh->ar, term, len);
  c->klen = len;
  if (!c->key) return nomem(err);
  for (s = 0; s < qi_snapshot_segment_count(sh->snap); s++) {
    const qi_segment *seg = qi_snapshot_segment(sh->snap, s);
    uint32_t nt = qi_segment_term_count(seg, fi->id), ord;
    if (k == 0) {
      if (qi_segment_term_find(seg, fi->id, term, len) < 0) continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        xterm *nc = realloc(cand, cap * sizeof *nc);
        if (!nc) { free(cand); return nomem(err); }
        cand = nc;
      }
      cand[n++] = (xterm){term, len, 0, 1.0f};
      continue;
    }
    for (ord = qi_segment_term_seek(seg, fi->id, term, pbytes); ord < nt; ord++) {
      size_t tl, tn;
      const char *t = qi_segment_term(seg, fi->id, ord, &tl);
      if (tl < pbytes || memcmp(t, term, pbytes)) break;
      if ((tn = to_cps(t, tl, tc, MAX_CPS)) > MAX_CPS) continue;
      int d = distance(qc, qn, tc, tn, k, x->transpositions);
      if (d > k) continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        xterm *nc = realloc(cand, cap * sizeof *nc);
        if (!nc) { free(cand); return nomem(err); }
        cand = nc;
      }
      size_t mn = tn < qn ? tn : qn;
      cand[n++] = (xterm){t, tl, d, mn ? 1.0f - (float)d / (float)mn : 0.0f};
    }
  }
  if (n) qsort(cand, n, sizeof *cand, cmp_xterm);
  if (!(c->terms = qb_arena_array(sh->ar, n ? n : 1, sizeof *c->terms))) { free(cand); return nomem(err); }
  for (i = 0; i < n && c->n < x->max_exp; i++) {
    if (c->n && c->terms[c->n - 1].len == cand[i].len && !memcmp(c->terms[c->n - 1].t, cand[i].t, cand[i].len))
      continue; /* the same term from another segment */
    c->terms[c->n] = cand[i];
    if (!(c->terms[c->n].t = qb_arena_strndup(sh->ar, cand[i].t, cand[i].len))) { free(cand); return nomem(err); }
    c->n++;
  }
  free(cand);
  c->next = sh->xcache;
  sh->xcache = c;
  *out = c;
  return QB_OK;
}

qb_code qq__mk_fuzzy_term(qq__seg_ctx *cx, const qq__query *q, const qi_field_info *fi,
                          const char *term, size_t len, int scoring, qq__it **out, qb_err *err) {
  const xcache *c;
  qb_code rc;
  size_t i;
  if ((rc = expand(cx, q, fi, term, len, &c, err))) return rc;
  if (!c->n) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  qq__it **its = qb_arena_array(cx->sh->ar, c->n, sizeof *its);
  if (!its) return nomem(err);
  for (i = 0; i < c->n; i++)
    if ((rc = qq__mk_term(cx, fi, c->terms[i].t, c->terms[i].len, q->boost * c->terms[i].sim,
                          scoring, &its[i], err)))
      return rc;
  if (c->n == 1) { *out = its[0]; return QB_OK; }
  return (*out = qq__mk_disj(cx, its, c->n, 1)) ? QB_OK : nomem(err);
}

/* ---- boosting -------------------------------------------------------------------------------- */

typedef struct boo_it {
  qq__it it;
  qq__it *pos, *neg;
  double nb;
} boo_it;

static uint32_t boo_next(qq__it *it) { return it->doc = ((boo_it *)it)->pos->next(((boo_it *)it)->pos); }
static uint32_t boo_adv(qq__it *it, uint32_t t) {
  return it->doc = ((boo_it *)it)->pos->advance(((boo_it *)it)->pos, t);
}
static double boo_score(qq__it *it) {
  boo_it *b = (boo_it *)it;
  double s = b->pos->score(b->pos);
  if (b->neg->doc != QI_NO_MORE_DOCS && b->neg->advance(b->neg, it->doc) == it->doc) s *= b->nb;
  return (float)s;
}

/* ---- the dispatch ---------------------------------------------------------------------------- */

static qb_code term_union(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err) {
  qi_field_info fi;
  qq__dlist l = {0};
  qb_code rc;
  if (qi_snapshot_field(cx->sh->snap, q->field, &fi) || !fi.indexed)
    return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  uint32_t nt = qi_segment_term_count(cx->seg, fi.id);
  for (uint32_t ord = 0; ord < nt; ord++) {
    size_t tl;
    const char *t = qi_segment_term(cx->seg, fi.id, ord, &tl);
    qi_postings *p;
    if (!qq__re_match(q->x->re, t, tl)) continue;
    if ((rc = qi_postings_open(cx->seg, fi.id, ord, &p, err))) return rc;
    for (uint32_t d = qi_postings_next(p); d != QI_NO_MORE_DOCS; d = qi_postings_next(p))
      if (qq__dl_push(cx, &l, d) < 0) {
        qi_postings_free(p);
        return nomem(err);
      }
    qi_postings_free(p);
  }
  qq__dl_norm(&l);
  return (*out = qq__mk_list(cx, l.d, l.n, q->boost)) ? QB_OK : nomem(err);
}

qb_code qq__build_x(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qb_code rc;
  if (q->kind == QK_REGEXP) return term_union(cx, q, out, err);
  if (q->kind == QK_BOOSTING) {
    boo_it *b = qq__xalloc(cx, sizeof *b);
    if (!b) return nomem(err);
    if ((rc = qq__build(cx, q->child, scoring, &b->pos, err)) ||
        (rc = qq__build(cx, q->x->negative, 0, &b->neg, err)))
      return rc;
    b->nb = q->x->negative_boost;
    b->it.next = boo_next;
    b->it.advance = boo_adv;
    b->it.score = scoring ? boo_score : qq__zero_score;
    b->it.cost = b->pos->cost;
    *out = scoring ? qq__mk_boost(cx, &b->it, q->boost, 0) : &b->it;
    return *out ? QB_OK : nomem(err);
  }
  /* fuzzy: the value as it is (a term-level query: not analyzed) */
  qi_field_info fi;
  char buf[64];
  const char *t = buf;
  size_t len;
  if (qi_snapshot_field(cx->sh->snap, q->field, &fi) || !fi.indexed)
    return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  if (json_is_string(q->value)) {
    t = json_string_value(q->value);
    len = json_string_length(q->value);
  } else {
    len = (size_t)snprintf(buf, sizeof buf, "%g", json_number_value(q->value));
  }
  return qq__mk_fuzzy_term(cx, q, &fi, t, len, scoring, out, err);
}

/* ---- fields by pattern ----------------------------------------------------------------------- */

qb_code qq__build_field_pattern(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out,
                                qb_err *err) {
  size_t nf = qi_snapshot_field_count(cx->sh->snap), n = 0, i;
  qq__query *d = qq__xalloc(cx, sizeof *d);
  qq__query **kids = qb_arena_array(cx->sh->ar, nf ? nf : 1, sizeof *kids);
  if (!d || !kids) return nomem(err);
  for (i = 0; i < nf; i++) {
    qi_field_info fi;
    if (qi_snapshot_field_by_id(cx->sh->snap, (uint32_t)i, &fi) || !fi.indexed) continue;
    if (!qq__glob(q->field, fi.name, strlen(fi.name))) continue;
    /* all fields: text and keyword ones (lenient: numbers and dates are left out) */
    qq__query *c = qq__xalloc(cx, sizeof *c);
    if (!c) return nomem(err);
    *c = *q;
    c->field = fi.name;
    kids[n++] = c;
  }
  if (!n) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  memset(d, 0, sizeof *d);
  d->kind = QK_DISMAX;
  d->boost = 1;
  d->should = kids;
  d->nshould = n;
  d->path = q->path;
  return qq__build(cx, d, scoring, out, err);
}
