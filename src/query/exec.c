/* exec.c: query nodes -> iterators for one segment (iter.c's primitives): term-level leaves
** (match, term, terms, range, exists, ids, prefix, wildcard) read the index -- postings scored
** with BM25, doc-values filters materialized into sorted doc lists -- and bool, dis_max and
** constant_score combine them; scripted nodes are exec_script.c's. Invariant: a node that can
** match nothing in a segment becomes the empty iterator, which disjunctions drop. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NMD QI_NO_MORE_DOCS

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

/* ---- minimum_should_match ---------------------------------------------------------------------- */

/* Elasticsearch's Queries.calculateMinShouldMatch for the simple forms: "2", "-1", "75%", "-25%". */
static qb_code calc_msm(const char *spec, size_t n, size_t *out, qb_err *err) {
  char *end;
  if (!spec) return QB_OK;
  const char *s = spec;
  while (*s == ' ') s++;
  if (strchr(s, '<')) return qb_fail(err, QB_INVAL, "minimum_should_match [%s]: conditional forms are not supported", spec);
  double v = strtod(s, &end);
  if (end == s) return qb_fail(err, QB_INVAL, "minimum_should_match [%s] is not a number or percentage", spec);
  long r;
  if (*end == '%') {
    double calc = v * (double)n / 100.0; /* ES truncates toward zero on both sides */
    r = v < 0 ? (long)n + (long)calc : (long)calc;
    end++;
  } else {
    r = (long)v;
    if (r < 0) r = (long)n + r;
  }
  if (*end) return qb_fail(err, QB_INVAL, "minimum_should_match [%s] is not a number or percentage", spec);
  *out = r < 0 ? 0 : (size_t)r;
  return QB_OK;
}

qb_code qq__msm(const char *spec, size_t n, size_t *out, qb_err *err) { return calc_msm(spec, n, out, err); }

/* ---- leaves needing the mapping ----------------------------------------------------------------- */

qq_field_type qq__field_type(const qi_field_info *fi) {
  switch (fi->type) {
  case QI_TEXT: return QQ_FIELD_TEXT;
  case QI_KEYWORD: return QQ_FIELD_KEYWORD;
  case QI_LONG: return QQ_FIELD_LONG;
  case QI_INTEGER: return QQ_FIELD_INTEGER;
  case QI_DOUBLE: return QQ_FIELD_DOUBLE;
  case QI_FLOAT: return QQ_FIELD_FLOAT;
  case QI_BOOLEAN: return QQ_FIELD_BOOLEAN;
  case QI_DATE: return QQ_FIELD_DATE;
  }
  return QQ_FIELD_NONE;
}

static int is_numeric(const qi_field_info *fi) { return fi->dv == QI_DV_I64 || fi->dv == QI_DV_F64; }

/* A JSON value as a number for FIELD FI (dates parsed, booleans 0/1). */
static qb_code value_num(const qi_field_info *fi, const json_t *v, double *out, qb_err *err) {
  if (fi->type == QI_DATE && json_is_string(v)) {
    int64_t ms;
    if (qq__parse_date(json_string_value(v), &ms))
      return qb_fail(err, QB_INVAL, "failed to parse date field [%s] with format [strict_date_optional_time||epoch_millis]",
                     json_string_value(v));
    *out = (double)ms;
    return QB_OK;
  }
  if (fi->type == QI_BOOLEAN) {
    if (json_is_boolean(v)) { *out = json_is_true(v); return QB_OK; }
    if (json_is_string(v) && !strcmp(json_string_value(v), "true")) { *out = 1; return QB_OK; }
    if (json_is_string(v) && !strcmp(json_string_value(v), "false")) { *out = 0; return QB_OK; }
    return qb_fail(err, QB_INVAL, "Can't parse boolean value for field [%s], expected [true] or [false]", fi->name);
  }
  if (json_is_number(v)) { *out = json_number_value(v); return QB_OK; }
  if (json_is_string(v)) {
    char *end;
    const char *s = json_string_value(v);
    double d = strtod(s, &end);
    if (*s && !*end) { *out = d; return QB_OK; }
  }
  return qb_fail(err, QB_INVAL, "failed to create query: For input string: \"%s\" (field [%s] is of type [%s])",
                 json_is_string(v) ? json_string_value(v) : "?", fi->name, qi_type_name(fi->type));
}

/* Docs whose numeric doc value V (any of... the first) satisfies lo/hi bounds. */
static qb_code numeric_filter(qq__seg_ctx *cx, const qi_field_info *fi, double lo, int lo_incl, double hi,
                              int hi_incl, double boost, qq__it **out, qb_err *err) {
  qq__dlist l = {0};
  const uint8_t *present = NULL;
  if (fi->dv == QI_DV_I64) {
    const int64_t *col = qi_dv_i64_column(cx->seg, fi->id, &present);
    /* compare in integer space: exact for longs beyond 2^53 */
    int64_t ilo = INT64_MIN, ihi = INT64_MAX;
    if (lo > -INFINITY) {
      double c = lo_incl ? ceil(lo) : floor(lo) + 1;
      ilo = c >= 9.2233720368547758e18 ? INT64_MAX : c <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)c;
      if (c >= 9.2233720368547758e18) { *out = qq__mk_none(cx); return *out ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory"); }
    }
    if (hi < INFINITY) {
      double c = hi_incl ? floor(hi) : ceil(hi) - 1;
      if (c < -9.2233720368547758e18) { *out = qq__mk_none(cx); return *out ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory"); }
      ihi = c >= 9.2233720368547758e18 ? INT64_MAX : (int64_t)c;
    }
    if (col)
      for (uint32_t d = 0; d < cx->max_doc; d++)
        if (present[d] && col[d] >= ilo && col[d] <= ihi && qq__is_live(cx, d) && qq__dl_push(cx, &l, d) < 0)
          return qb_fail(err, QB_NOMEM, "query: out of memory");
  } else {
    const double *col = qi_dv_f64_column(cx->seg, fi->id, &present);
    if (col)
      for (uint32_t d = 0; d < cx->max_doc; d++) {
        double v = col[d];
        if (!present[d]) continue;
        if (lo_incl ? !(v >= lo) : !(v > lo)) continue;
        if (hi_incl ? !(v <= hi) : !(v < hi)) continue;
        if (qq__is_live(cx, d) && qq__dl_push(cx, &l, d) < 0) return qb_fail(err, QB_NOMEM, "query: out of memory");
      }
  }
  *out = qq__mk_list(cx, l.d, l.n, boost);
  return *out ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory");
}

/* The term bytes of a JSON value for an inverted field (numbers as written, booleans) */
static const char *term_bytes(const json_t *v, char *buf, size_t cap, size_t *len) {
  if (json_is_string(v)) {
    *len = json_string_length(v);
    return json_string_value(v);
  }
  if (json_is_integer(v)) snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) snprintf(buf, cap, "%.17g", json_real_value(v));
  else if (json_is_true(v)) snprintf(buf, cap, "true");
  else if (json_is_false(v)) snprintf(buf, cap, "false");
  else buf[0] = 0;
  *len = strlen(buf);
  return buf;
}

/* The constant-score postings union behind terms, keyword ranges, prefix and wildcard: each
** matching term's documents go into one list (union_add), which union_list sorts, dedupes and
** turns into an iterator. */
static qb_code union_add(qq__seg_ctx *cx, qi_postings *p, qq__dlist *l, qb_err *err) {
  qb_code rc = QB_OK;
  if (!p) return QB_OK; /* an absent term */
  for (uint32_t d = qi_postings_next(p); d != NMD; d = qi_postings_next(p))
    if (qq__dl_push(cx, l, d) < 0) {
      rc = nomem(err);
      break;
    }
  qi_postings_free(p);
  return rc;
}

/* Term ORD of field FIELD's dictionary into L */
static qb_code union_add_ord(qq__seg_ctx *cx, uint32_t field, uint32_t ord, qq__dlist *l, qb_err *err) {
  qi_postings *p;
  qb_code rc = qi_postings_open(cx->seg, field, ord, &p, err);
  return rc ? rc : union_add(cx, p, l, err);
}

static qb_code union_list(qq__seg_ctx *cx, qq__dlist *l, double boost, qq__it **out, qb_err *err) {
  qq__dl_norm(l); /* terms overlap: sorted, each doc once */
  *out = qq__mk_list(cx, l->d, l->n, boost);
  return *out ? QB_OK : nomem(err);
}

/* Union of the postings of several terms of an inverted field, constant score */
static qb_code terms_union(qq__seg_ctx *cx, const qi_field_info *fi, const json_t *arr, double boost,
                           qq__it **out, qb_err *err) {
  qq__dlist l = {0};
  char buf[64];
  for (size_t i = 0; i < json_array_size(arr); i++) {
    size_t len;
    const char *t = term_bytes(json_array_get(arr, i), buf, sizeof buf, &len);
    qi_postings *p;
    qb_code rc = qi_postings_open_term(cx->seg, fi->id, t, len, &p, err);
    if (rc || (rc = union_add(cx, p, &l, err))) return rc;
  }
  return union_list(cx, &l, boost, out, err);
}

/* analysis of match text into terms (arena copies) */
typedef struct toks {
  qq__seg_ctx *cx;
  const char **t;
  size_t *len;
  size_t n, cap;
} toks;

static qb_code on_tok(void *ud, const qi_token *tok, qb_err *err) {
  toks *ts = ud;
  if (ts->n == ts->cap) {
    size_t nc = ts->cap ? ts->cap * 2 : 16;
    const char **nt = qb_arena_array(ts->cx->sh->ar, nc, sizeof *nt);
    size_t *nl = qb_arena_array(ts->cx->sh->ar, nc, sizeof *nl);
    if (!nt || !nl) return qb_fail(err, QB_NOMEM, "query: out of memory");
    if (ts->n) {
      memcpy(nt, ts->t, ts->n * sizeof *nt);
      memcpy(nl, ts->len, ts->n * sizeof *nl);
    }
    ts->t = nt;
    ts->len = nl;
    ts->cap = nc;
  }
  if (!(ts->t[ts->n] = qb_arena_strndup(ts->cx->sh->ar, tok->term, tok->len)))
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  ts->len[ts->n++] = tok->len;
  return QB_OK;
}

/* range on a numeric or date field: the bounds read for the field's type (dates through
** qq__parse_date), then a doc-values filter */
static qb_code numeric_range(qq__seg_ctx *cx, const qq__query *q, const qi_field_info *fi, double boost,
                             qq__it **out, qb_err *err) {
  double lo = -INFINITY, hi = INFINITY;
  int lo_incl = 1, hi_incl = 1;
  qb_code rc;
  if (q->gt && !json_is_null(q->gt)) { if ((rc = value_num(fi, q->gt, &lo, err))) return rc; lo_incl = 0; }
  if (q->gte && !json_is_null(q->gte)) { if ((rc = value_num(fi, q->gte, &lo, err))) return rc; lo_incl = 1; }
  if (q->lt && !json_is_null(q->lt)) { if ((rc = value_num(fi, q->lt, &hi, err))) return rc; hi_incl = 0; }
  if (q->lte && !json_is_null(q->lte)) { if ((rc = value_num(fi, q->lte, &hi, err))) return rc; hi_incl = 1; }
  return numeric_filter(cx, fi, lo, lo_incl, hi, hi_incl, boost, out, err);
}

/* range on a keyword field: a term-range over the sorted dictionary, as a postings union */
static qb_code keyword_range(qq__seg_ctx *cx, const qq__query *q, const qi_field_info *fi, double boost,
                             qq__it **out, qb_err *err) {
  char b1[64], b2[64];
  size_t l1 = 0, l2 = 0;
  qb_code rc;
  const json_t *lov = q->gt ? q->gt : q->gte, *hiv = q->lt ? q->lt : q->lte;
  const char *ls = lov ? term_bytes(lov, b1, sizeof b1, &l1) : NULL;
  const char *hs = hiv ? term_bytes(hiv, b2, sizeof b2, &l2) : NULL;
  uint32_t nt = qi_segment_term_count(cx->seg, fi->id);
  uint32_t ord = ls ? qi_segment_term_seek(cx->seg, fi->id, ls, l1) : 0;
  qq__dlist l = {0};
  for (; ord < nt; ord++) {
    size_t tl;
    const char *t = qi_segment_term(cx->seg, fi->id, ord, &tl);
    size_t m = tl < l1 ? tl : l1;
    if (ls && q->gt && tl == l1 && !memcmp(t, ls, m)) continue;
    if (hs) {
      size_t m2 = tl < l2 ? tl : l2;
      int c = memcmp(t, hs, m2);
      if (!c) c = tl < l2 ? -1 : tl > l2;
      if (c > 0 || (c == 0 && q->lt)) break;
    }
    if ((rc = union_add_ord(cx, fi->id, ord, &l, err))) return rc;
  }
  return union_list(cx, &l, boost, out, err);
}

/* exists: live docs with a doc value, a norm (text) or a keyword ordinal in the field */
static qb_code build_exists(qq__seg_ctx *cx, const qi_field_info *fi, double boost, qq__it **out,
                            qb_err *err) {
  qq__dlist l = {0};
  const uint8_t *present = NULL;
  if (fi->dv == QI_DV_I64) qi_dv_i64_column(cx->seg, fi->id, &present);
  else if (fi->dv == QI_DV_F64) qi_dv_f64_column(cx->seg, fi->id, &present);
  const uint8_t *norms = fi->has_norms ? qi_segment_norms(cx->seg, fi->id) : NULL;
  for (uint32_t d = 0; d < cx->max_doc; d++) {
    int has;
    if (present) has = present[d];
    else if (norms) has = norms[d] != 0;
    else if (fi->dv == QI_DV_KEYWORD) {
      const uint32_t *ords;
      has = qi_dv_doc_ords(cx->seg, fi->id, d, &ords) > 0;
    } else has = 0;
    if (has && qq__is_live(cx, d) && qq__dl_push(cx, &l, d) < 0) return nomem(err);
  }
  *out = qq__mk_list(cx, l.d, l.n, boost);
  return *out ? QB_OK : nomem(err);
}

static qb_code build_leaf_field(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out,
                                qb_err *err) {
  qi_field_info fi;
  qb_code rc;
  double boost = q->boost;
  if (qi_snapshot_field(cx->sh->snap, q->field, &fi)) { /* unmapped: nothing matches */
    *out = qq__mk_none(cx);
    return *out ? QB_OK : nomem(err);
  }
  switch (q->kind) {
  case QK_TERM:
    if (fi.indexed) {
      char buf[64];
      size_t len;
      const char *t = term_bytes(q->value, buf, sizeof buf, &len);
      return qq__mk_term(cx, &fi, t, len, q->boost, scoring, out, err);
    } else if (is_numeric(&fi)) {
      double v;
      if ((rc = value_num(&fi, q->value, &v, err))) return rc;
      return numeric_filter(cx, &fi, v, 1, v, 1, boost, out, err);
    }
    break;
  case QK_TERMS:
    if (fi.indexed) return terms_union(cx, &fi, q->value, boost, out, err);
    if (is_numeric(&fi)) {
      size_t n = json_array_size(q->value);
      qq__it **c = qb_arena_array(cx->sh->ar, n + 1, sizeof *c);
      if (!c) return nomem(err);
      for (size_t i = 0; i < n; i++) {
        double v;
        if ((rc = value_num(&fi, json_array_get(q->value, i), &v, err)) ||
            (rc = numeric_filter(cx, &fi, v, 1, v, 1, boost, &c[i], err)))
          return rc;
      }
      if (!n) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
      *out = qq__mk_boost(cx, qq__mk_disj(cx, c, n, 1), boost, 1);
      return *out ? QB_OK : nomem(err);
    }
    break;
  case QK_RANGE:
    if (is_numeric(&fi)) return numeric_range(cx, q, &fi, boost, out, err);
    if (fi.type == QI_KEYWORD) return keyword_range(cx, q, &fi, boost, out, err);
    break;
  case QK_EXISTS: return build_exists(cx, &fi, boost, out, err);
  case QK_MATCH: {
    if (!q->text) { /* a number or boolean: a term query */
      qq__query t = *q;
      t.kind = QK_TERM;
      return build_leaf_field(cx, &t, scoring, out, err);
    }
    if (!fi.indexed) {
      if (is_numeric(&fi)) {
        qq__query t = *q;
        json_t *s = json_string(q->text);
        if (!s) return nomem(err);
        t.kind = QK_TERM;
        t.value = s;
        rc = build_leaf_field(cx, &t, scoring, out, err);
        json_decref(s);
        return rc;
      }
      break;
    }
    toks ts = {cx, NULL, NULL, 0, 0};
    const qi_chain *ch = fi.search_chain;
    if (q->x && q->x->analyzer && !(ch = qi_snapshot_chain(cx->sh->snap, q->x->analyzer)))
      return qb_fail(err, QB_INVAL, "[match] analyzer [%s] not found", q->x->analyzer);
    if ((rc = ch ? qi_chain_analyze(ch, q->text, strlen(q->text), on_tok, &ts, err)
                 : qi_analyze(fi.analyzer == QI_ANALYZER_NONE ? QI_ANALYZER_KEYWORD : fi.analyzer,
                              q->text, strlen(q->text), on_tok, &ts, err)))
      return rc;
    if (!ts.n) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err); /* zero_terms_query: none */
    qq__it **c = qb_arena_array(cx->sh->ar, ts.n, sizeof *c);
    if (!c) return nomem(err);
    for (size_t i = 0; i < ts.n; i++)
      if ((rc = q->x && q->x->fuzzy
                    ? qq__mk_fuzzy_term(cx, q, &fi, ts.t[i], ts.len[i], scoring, &c[i], err)
                    : qq__mk_term(cx, &fi, ts.t[i], ts.len[i], q->boost, scoring, &c[i], err)))
        return rc;
    if (ts.n == 1) { *out = c[0]; return QB_OK; }
    size_t msm = 1;
    if (q->op_and) msm = ts.n;
    else if (q->msm && (rc = calc_msm(q->msm, ts.n, &msm, err))) return rc;
    if (msm > ts.n) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
    if (msm == ts.n) {
      qq__it **sc = qb_arena_array(cx->sh->ar, ts.n, sizeof *sc);
      if (!sc) return nomem(err);
      memcpy(sc, c, ts.n * sizeof *c);
      *out = qq__mk_conj(cx, c, ts.n, scoring ? sc : NULL, scoring ? ts.n : 0);
    } else {
      *out = qq__mk_disj(cx, c, ts.n, msm);
    }
    return *out ? QB_OK : nomem(err);
  }
  default:
    break;
  }
  /* a query the field's type cannot answer: nothing matches, as Elasticsearch does for e.g. a
  ** term query on a text field's missing subfield; a type mismatch on numbers fails above */
  *out = qq__mk_none(cx);
  return *out ? QB_OK : nomem(err);
}

static qb_code build_ids(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err) {
  qq__dlist l = {0};
  size_t n = json_array_size(q->value);
  /* one hash probe per named _id (qi_segment_find_id), whatever the segment's size */
  for (size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(q->value, i);
    int64_t d;
    if (!json_is_string(v)) continue;
    d = qi_segment_find_id(cx->seg, json_string_value(v), json_string_length(v));
    if (d < 0 || !qq__is_live(cx, (uint32_t)d)) continue;
    if (qq__dl_push(cx, &l, (uint32_t)d) < 0) return nomem(err);
  }
  return union_list(cx, &l, q->boost, out, err); /* values in any order, maybe repeated */
}

static qb_code build_bool(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  size_t nreq = q->nmust + q->nfilter, msm = 0, i, k = 0, nsc = 0;
  qb_code rc;
  if (!nreq && !q->nshould && !q->nmust_not) { /* {} matches everything, score 1 */
    *out = qq__mk_all(cx, q->boost);
    return *out ? QB_OK : nomem(err);
  }
  if (q->msm && (rc = calc_msm(q->msm, q->nshould, &msm, err))) return rc;
  /* Lucene: without required clauses, at least one should clause must match, whatever msm */
  if (!nreq && q->nshould && msm < 1) msm = 1;
  if (msm > q->nshould) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  qq__it **req = qb_arena_array(cx->sh->ar, nreq + 2, sizeof *req);
  qq__it **sc = qb_arena_array(cx->sh->ar, nreq + 2, sizeof *sc);
  qq__it **sh = qb_arena_array(cx->sh->ar, q->nshould + 1, sizeof *sh);
  if (!req || !sc || !sh) return nomem(err);
  for (i = 0; i < q->nmust; i++) {
    if ((rc = qq__build(cx, q->must[i], scoring, &req[k], err))) return rc;
    if (scoring) sc[nsc++] = req[k];
    k++;
  }
  for (i = 0; i < q->nfilter; i++)
    if ((rc = qq__build(cx, q->filter[i], 0, &req[k++], err))) return rc;
  for (i = 0; i < q->nshould; i++)
    if ((rc = qq__build(cx, q->should[i], scoring, &sh[i], err))) return rc;
  qq__it *should = q->nshould ? qq__mk_disj(cx, sh, q->nshould, msm ? msm : 1) : NULL;
  if (q->nshould && !should) return nomem(err);
  qq__it *main;
  if (msm > 0) { /* the should disjunction is required */
    req[k++] = should;
    if (scoring) sc[nsc++] = should;
    should = NULL;
  }
  if (k == 0) {
    /* only must_not (+ optional should, which cannot happen: msm would be 1): match all, score 0
    ** (Elasticsearch adds a match_all FILTER clause) */
    main = qq__mk_all(cx, 0);
  } else {
    main = qq__mk_conj(cx, req, k, sc, nsc);
  }
  if (!main) return nomem(err);
  if (should && scoring) {
    if (!(main = qq__mk_opt(cx, main, should))) return nomem(err);
  }
  if (q->nmust_not) {
    qq__it **ex = qb_arena_array(cx->sh->ar, q->nmust_not, sizeof *ex);
    if (!ex) return nomem(err);
    for (i = 0; i < q->nmust_not; i++)
      if ((rc = qq__build(cx, q->must_not[i], 0, &ex[i], err))) return rc;
    qq__it *exd = qq__mk_disj(cx, ex, q->nmust_not, 1);
    if (!exd || !(main = qq__mk_excl(cx, main, exd))) return nomem(err);
  }
  *out = scoring ? qq__mk_boost(cx, main, q->boost, 0) : main;
  return *out ? QB_OK : nomem(err);
}

/* ---- dis_max ------------------------------------------------------------------------------------ */

/* max of the matching children's scores + tie_breaker * the others' (Lucene's DisjunctionMaxQuery) */
typedef struct dmax_it {
  qq__disj_it d;
  double tie;
} dmax_it;

static double dmax_score(qq__it *it) {
  dmax_it *m = (dmax_it *)it;
  double sum = 0, mx = 0;
  int any = 0;
  for (size_t i = 0; i < m->d.n; i++)
    if (m->d.c[i]->doc == it->doc) {
      double s = (float)m->d.c[i]->score(m->d.c[i]);
      sum += s;
      if (!any || s > mx) mx = s;
      any = 1;
    }
  return (float)(mx + (sum - mx) * m->tie);
}

qq__it *qq__mk_dismax(qq__seg_ctx *cx, qq__it **c, size_t n, double tie, int scoring) {
  dmax_it *m = qq__xalloc(cx, sizeof *m);
  if (!m) return NULL;
  memset(m, 0, sizeof *m);
  m->d.c = c;
  m->d.n = n;
  m->d.msm = 1;
  m->tie = tie;
  m->d.it.next = qq__disj_next;
  m->d.it.advance = qq__disj_adv;
  m->d.it.score = scoring ? dmax_score : qq__zero_score;
  for (size_t i = 0; i < n; i++) m->d.it.cost += c[i]->cost;
  return &m->d.it;
}

static qb_code build_dismax(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qb_code rc;
  size_t n = q->nshould, k = 0;
  qq__it **c = qb_arena_array(cx->sh->ar, n + 1, sizeof *c);
  if (!c) return nomem(err);
  for (size_t i = 0; i < n; i++) {
    if ((rc = qq__build(cx, q->should[i], scoring, &c[k], err))) return rc;
    if (c[k]->next != qq__none_next) k++;
  }
  if (!k) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  qq__it *d = qq__mk_dismax(cx, c, k, q->tie_breaker, scoring);
  if (!d) return nomem(err);
  *out = scoring ? qq__mk_boost(cx, d, q->boost, 0) : d;
  return *out ? QB_OK : nomem(err);
}

/* prefix / wildcard over a keyword or text field's term dictionary: a constant-score union */
static qb_code build_pattern(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err) {
  qi_field_info fi;
  qq__dlist l = {0};
  qb_code rc;
  const char *pat = json_string_value(q->value);
  size_t plen = json_string_length(q->value);
  if (qi_snapshot_field(cx->sh->snap, q->field, &fi) || !fi.indexed)
    return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  uint32_t nt = qi_segment_term_count(cx->seg, fi.id);
  /* the literal prefix of the pattern bounds the scan */
  size_t lit = plen;
  if (q->kind == QK_WILDCARD)
    for (lit = 0; lit < plen && pat[lit] != '*' && pat[lit] != '?'; lit++) {}
  for (uint32_t ord = qi_segment_term_seek(cx->seg, fi.id, pat, lit); ord < nt; ord++) {
    size_t tl;
    const char *t = qi_segment_term(cx->seg, fi.id, ord, &tl);
    if (tl < lit || memcmp(t, pat, lit)) break;
    if (q->kind == QK_WILDCARD && !qq__glob(pat, t, tl)) continue;
    if ((rc = union_add_ord(cx, fi.id, ord, &l, err))) return rc;
  }
  return union_list(cx, &l, q->boost, out, err);
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

qb_code qq__build(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qb_code rc;
  if (q->field && strchr(q->field, '*') && q->kind != QK_EXISTS)
    return qq__build_field_pattern(cx, q, scoring, out, err);
  switch (q->kind) {
  case QK_MATCH_ALL: *out = qq__mk_all(cx, q->boost); break;
  case QK_MATCH_NONE: *out = qq__mk_none(cx); break;
  case QK_TERM: case QK_TERMS: case QK_MATCH: case QK_RANGE: case QK_EXISTS:
    return build_leaf_field(cx, q, scoring, out, err);
  case QK_IDS: return build_ids(cx, q, out, err);
  case QK_BOOL: return build_bool(cx, q, scoring, out, err);
  case QK_CONST: {
    qq__it *c;
    if ((rc = qq__build(cx, q->child, 0, &c, err))) return rc;
    *out = qq__mk_boost(cx, c, q->boost, 1);
    break;
  }
  case QK_FSCORE: case QK_SCRIPT_SCORE: case QK_SCRIPT:
    return qq__build_buffered(cx, q, scoring, out, err);
  case QK_DISMAX: return build_dismax(cx, q, scoring, out, err);
  case QK_PREFIX: case QK_WILDCARD: return build_pattern(cx, q, out, err);
  case QK_PHRASE: case QK_PHRASE_PREFIX: return qq__build_phrase(cx, q, scoring, out, err);
  case QK_CROSS: return qq__build_cross(cx, q, scoring, out, err);
  case QK_FUZZY: case QK_REGEXP: case QK_BOOSTING: return qq__build_x(cx, q, scoring, out, err);
  }
  return *out ? QB_OK : nomem(err);
}

qb_code qq__it_build(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  return qq__build(cx, q, scoring, out, err);
}
