/* exec.c: the plan for one segment: each query node becomes an iterator over matching docs in
** ascending order (next/advance) with a score at the current doc, as Lucene's Scorers. Leaves
** read the index (postings scored with BM25 through qi_bm25; doc-values filters materialized
** into sorted doc lists); bool nodes combine them (conjunction by leapfrog, disjunction with
** minimum_should_match, exclusion, required + optional); function_score, script_score and
** script queries buffer QQ_BLOCK_MAX docs of their child and compute a block at a time.
** Scores follow Lucene: each scorer returns a float, sums are taken in double and rounded to
** float. Invariant: an iterator's doc only grows; advance(t) with t <= doc stays put. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NMD QI_NO_MORE_DOCS

static void *xalloc(qq__seg_ctx *cx, size_t n) { return qb_arena_alloc(cx->sh->ar, n); }

/* ---- empty, all, doc lists ------------------------------------------------------------------ */

static uint32_t none_next(qq__it *it) { return it->doc = NMD; }
static uint32_t none_adv(qq__it *it, uint32_t t) { (void)t; return it->doc = NMD; }
static double zero_score(qq__it *it) { (void)it; return 0; }

static qq__it *mk_none(qq__seg_ctx *cx) {
  qq__it *it = xalloc(cx, sizeof *it);
  if (!it) return NULL;
  it->doc = NMD;
  it->next = none_next;
  it->advance = none_adv;
  it->score = zero_score;
  return it;
}

typedef struct all_it {
  qq__it it;
  const qi_segment *seg;
  uint32_t max_doc;
  int started;
  const uint64_t *live;
  double boost;
} all_it;

static uint32_t all_adv(qq__it *it, uint32_t t) {
  all_it *a = (all_it *)it;
  if (a->started && it->doc >= t) return it->doc;
  a->started = 1;
  for (uint32_t d = t; d < a->max_doc; d++)
    if (!a->live || (a->live[d >> 6] >> (d & 63) & 1)) return it->doc = d;
  return it->doc = NMD;
}
static uint32_t all_next(qq__it *it) {
  all_it *a = (all_it *)it;
  if (!a->started) return all_adv(it, 0);
  return it->doc == NMD ? NMD : all_adv(it, it->doc + 1);
}
static double all_score(qq__it *it) { return ((all_it *)it)->boost; }

static qq__it *mk_all(qq__seg_ctx *cx, double boost) {
  all_it *a = xalloc(cx, sizeof *a);
  if (!a) return NULL;
  a->seg = cx->seg;
  a->max_doc = cx->max_doc;
  a->live = qi_segment_live_bits(cx->seg);
  a->boost = boost;
  a->it.next = all_next;
  a->it.advance = all_adv;
  a->it.score = all_score;
  a->it.cost = cx->max_doc;
  return &a->it;
}

/* A sorted, duplicate-free list of live docs with a constant score. */
typedef struct list_it {
  qq__it it;
  const uint32_t *docs;
  size_t n, pos;
  int started;
  double boost;
} list_it;

static uint32_t list_next(qq__it *it) {
  list_it *l = (list_it *)it;
  if (l->started) l->pos++;
  l->started = 1;
  return it->doc = l->pos < l->n ? l->docs[l->pos] : NMD;
}
static uint32_t list_adv(qq__it *it, uint32_t t) {
  list_it *l = (list_it *)it;
  if (l->started && it->doc >= t) return it->doc;
  l->started = 1;
  /* galloping would be faster; lists are short next to postings */
  while (l->pos < l->n && l->docs[l->pos] < t) l->pos++;
  return it->doc = l->pos < l->n ? l->docs[l->pos] : NMD;
}
static double list_score(qq__it *it) { return ((list_it *)it)->boost; }

static qq__it *mk_list(qq__seg_ctx *cx, const uint32_t *docs, size_t n, double boost) {
  list_it *l = xalloc(cx, sizeof *l);
  if (!l) return NULL;
  l->docs = docs;
  l->n = n;
  l->boost = boost;
  l->it.next = list_next;
  l->it.advance = list_adv;
  l->it.score = list_score;
  l->it.cost = n;
  return &l->it;
}

/* A growable doc list in the arena (doubling; old copies stay in the arena, which is fine for
** one request). */
typedef struct dlist {
  uint32_t *d;
  size_t n, cap;
} dlist;

static int dl_push(qq__seg_ctx *cx, dlist *l, uint32_t doc) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 256;
    uint32_t *nd = qb_arena_array(cx->sh->ar, nc, sizeof *nd);
    if (!nd) return -1;
    if (l->n) memcpy(nd, l->d, l->n * sizeof *nd);
    l->d = nd;
    l->cap = nc;
  }
  l->d[l->n++] = doc;
  return 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* sort + dedupe */
static void dl_norm(dlist *l) {
  size_t i, j = 0;
  if (!l->n) return;
  qsort(l->d, l->n, sizeof *l->d, cmp_u32);
  for (i = 0; i < l->n; i++)
    if (!j || l->d[j - 1] != l->d[i]) l->d[j++] = l->d[i];
  l->n = j;
}

static int is_live(qq__seg_ctx *cx, uint32_t d) { return qi_segment_is_live(cx->seg, d); }

/* ---- term postings with BM25 ------------------------------------------------------------------ */

typedef struct term_it {
  qq__it it;
  qi_postings *p;
  qi_bm25 w;
  const uint8_t *norms; /* NULL: no norms (norm 1) */
} term_it;

static uint32_t term_next(qq__it *it) { return it->doc = qi_postings_next(((term_it *)it)->p); }
static uint32_t term_adv(qq__it *it, uint32_t t) {
  return it->doc = qi_postings_advance(((term_it *)it)->p, t);
}
static double term_score(qq__it *it) {
  term_it *t = (term_it *)it;
  uint8_t norm = t->norms ? t->norms[it->doc] : 1;
  return qi_bm25_score(&t->w, qi_postings_freq(t->p), norm);
}

static qb_code keep_postings(qq__seg_ctx *cx, qi_postings *p, qb_err *err) {
  if (cx->npostings == cx->cap_postings) {
    size_t nc = cx->cap_postings ? cx->cap_postings * 2 : 16;
    qi_postings **np = qb_realloc(cx->postings, cx->cap_postings * sizeof *np, nc * sizeof *np);
    if (!np) {
      qi_postings_free(p);
      return qb_fail(err, QB_NOMEM, "query: out of memory");
    }
    cx->postings = np;
    cx->cap_postings = nc;
  }
  cx->postings[cx->npostings++] = p;
  return QB_OK;
}

void qq__seg_ctx_fini(qq__seg_ctx *cx) {
  for (size_t i = 0; i < cx->npostings; i++) qi_postings_free(cx->postings[i]);
  qb_free(cx->postings, cx->cap_postings * sizeof *cx->postings);
  cx->postings = NULL;
  cx->npostings = cx->cap_postings = 0;
}

/* Iterator of one term of an inverted field, scored with BM25 (boost in the weight) */
static qb_code mk_term(qq__seg_ctx *cx, const qi_field_info *fi, const char *term, size_t len,
                       float boost, int scoring, qq__it **out, qb_err *err) {
  qi_postings *p;
  qb_code rc;
  *out = NULL;
  if ((rc = qi_postings_open_term(cx->seg, fi->id, term, len, &p, err))) return rc;
  if (!p) return (*out = mk_none(cx)) ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory");
  if ((rc = keep_postings(cx, p, err))) return rc;
  term_it *t = xalloc(cx, sizeof *t);
  if (!t) return qb_fail(err, QB_NOMEM, "query: out of memory");
  t->p = p;
  if (scoring) {
    qi_field_stats fs;
    qi_snapshot_field_stats(cx->sh->snap, fi->id, &fs);
    qi_bm25_init(&t->w, boost, &fs, qi_snapshot_doc_freq(cx->sh->snap, fi->id, term, len), -1, -1);
    t->norms = fi->has_norms ? qi_segment_norms(cx->seg, fi->id) : NULL;
  }
  t->it.next = term_next;
  t->it.advance = term_adv;
  t->it.score = scoring ? term_score : zero_score;
  t->it.cost = qi_postings_doc_freq(p);
  *out = &t->it;
  return QB_OK;
}

/* ---- conjunction, disjunction, exclusion, optional ------------------------------------------ */

typedef struct conj_it {
  qq__it it;
  qq__it **c;     /* sorted by cost, cheapest leads */
  size_t n;
  qq__it **sc;    /* the ones that score */
  size_t nsc;
} conj_it;

static uint32_t conj_align(conj_it *cj, uint32_t d) {
  for (;;) {
    size_t i;
    if (d == NMD) return cj->it.doc = NMD;
    for (i = 1; i < cj->n; i++) {
      uint32_t o = cj->c[i]->advance(cj->c[i], d);
      if (o != d) {
        d = cj->c[0]->advance(cj->c[0], o);
        break;
      }
    }
    if (i == cj->n) return cj->it.doc = d;
  }
}
static uint32_t conj_next(qq__it *it) {
  conj_it *cj = (conj_it *)it;
  return conj_align(cj, cj->c[0]->next(cj->c[0]));
}
static uint32_t conj_adv(qq__it *it, uint32_t t) {
  conj_it *cj = (conj_it *)it;
  return conj_align(cj, cj->c[0]->advance(cj->c[0], t));
}
static double conj_score(qq__it *it) {
  conj_it *cj = (conj_it *)it;
  double s = 0;
  for (size_t i = 0; i < cj->nsc; i++) s += cj->sc[i]->score(cj->sc[i]);
  return (float)s;
}

static int cmp_cost(const void *a, const void *b) {
  const qq__it *x = *(qq__it *const *)a, *y = *(qq__it *const *)b;
  return x->cost < y->cost ? -1 : x->cost > y->cost;
}

/* A disjunction: doc = smallest child doc; a doc matches when >= msm children are on it. */
typedef struct disj_it {
  qq__it it;
  qq__it **c;
  size_t n;
  size_t msm;
  int started;
} disj_it;

static uint32_t disj_settle(disj_it *dj) {
  for (;;) {
    uint32_t m = NMD;
    size_t cnt = 0;
    for (size_t i = 0; i < dj->n; i++) {
      uint32_t d = dj->c[i]->doc;
      if (d < m) { m = d; cnt = 1; }
      else if (d == m) cnt++;
    }
    if (m == NMD || cnt >= dj->msm) return dj->it.doc = m;
    for (size_t i = 0; i < dj->n; i++)
      if (dj->c[i]->doc == m) dj->c[i]->next(dj->c[i]);
  }
}
static uint32_t disj_next(qq__it *it) {
  disj_it *dj = (disj_it *)it;
  if (!dj->started) {
    dj->started = 1;
    for (size_t i = 0; i < dj->n; i++) dj->c[i]->next(dj->c[i]);
  } else {
    uint32_t cur = it->doc;
    if (cur == NMD) return NMD;
    for (size_t i = 0; i < dj->n; i++)
      if (dj->c[i]->doc == cur) dj->c[i]->next(dj->c[i]);
  }
  return disj_settle(dj);
}
static uint32_t disj_adv(qq__it *it, uint32_t t) {
  disj_it *dj = (disj_it *)it;
  if (dj->started && it->doc >= t) return it->doc;
  dj->started = 1;
  for (size_t i = 0; i < dj->n; i++) dj->c[i]->advance(dj->c[i], t);
  return disj_settle(dj);
}
static double disj_score(qq__it *it) {
  disj_it *dj = (disj_it *)it;
  double s = 0;
  for (size_t i = 0; i < dj->n; i++)
    if (dj->c[i]->doc == it->doc) s += dj->c[i]->score(dj->c[i]);
  return (float)s;
}

typedef struct excl_it {
  qq__it it;
  qq__it *req, *ex;
  int ex_started;
} excl_it;

static uint32_t excl_settle(excl_it *e, uint32_t d) {
  while (d != NMD) {
    uint32_t x = e->ex->advance(e->ex, d);
    if (x != d) break;
    d = e->req->next(e->req);
  }
  return e->it.doc = d;
}
static uint32_t excl_next(qq__it *it) {
  excl_it *e = (excl_it *)it;
  return excl_settle(e, e->req->next(e->req));
}
static uint32_t excl_adv(qq__it *it, uint32_t t) {
  excl_it *e = (excl_it *)it;
  return excl_settle(e, e->req->advance(e->req, t));
}
static double excl_score(qq__it *it) {
  excl_it *e = (excl_it *)it;
  return e->req->score(e->req);
}

typedef struct opt_it {
  qq__it it;
  qq__it *req, *opt;
} opt_it;

static uint32_t opt_next(qq__it *it) {
  opt_it *o = (opt_it *)it;
  return it->doc = o->req->next(o->req);
}
static uint32_t opt_adv(qq__it *it, uint32_t t) {
  opt_it *o = (opt_it *)it;
  return it->doc = o->req->advance(o->req, t);
}
static double opt_score(qq__it *it) {
  opt_it *o = (opt_it *)it;
  double s = o->req->score(o->req);
  if (o->opt->doc != NMD && o->opt->advance(o->opt, it->doc) == it->doc) s += o->opt->score(o->opt);
  return (float)s;
}

/* score = child score * boost (Lucene's BoostQuery), or a constant when CONSTANT */
typedef struct boost_it {
  qq__it it;
  qq__it *c;
  double boost;
  int constant;
} boost_it;

static uint32_t boost_next(qq__it *it) { return it->doc = ((boost_it *)it)->c->next(((boost_it *)it)->c); }
static uint32_t boost_adv(qq__it *it, uint32_t t) {
  return it->doc = ((boost_it *)it)->c->advance(((boost_it *)it)->c, t);
}
static double boost_score(qq__it *it) {
  boost_it *b = (boost_it *)it;
  if (b->constant) return b->boost;
  return (float)(b->c->score(b->c) * b->boost);
}

static qq__it *mk_boost(qq__seg_ctx *cx, qq__it *c, double boost, int constant) {
  if (!constant && boost == 1.0) return c;
  boost_it *b = xalloc(cx, sizeof *b);
  if (!b) return NULL;
  b->c = c;
  b->boost = boost;
  b->constant = constant;
  b->it.next = boost_next;
  b->it.advance = boost_adv;
  b->it.score = boost_score;
  b->it.cost = c->cost;
  return &b->it;
}

static qq__it *mk_conj(qq__seg_ctx *cx, qq__it **c, size_t n, qq__it **sc, size_t nsc) {
  if (n == 1 && nsc <= 1 && (nsc == 0 || sc[0] == c[0])) {
    if (nsc == 0 && c[0]->score != zero_score) return mk_boost(cx, c[0], 0, 1);
    return c[0];
  }
  conj_it *cj = xalloc(cx, sizeof *cj);
  if (!cj) return NULL;
  qsort(c, n, sizeof *c, cmp_cost);
  cj->c = c;
  cj->n = n;
  cj->sc = sc;
  cj->nsc = nsc;
  cj->it.next = conj_next;
  cj->it.advance = conj_adv;
  cj->it.score = conj_score;
  cj->it.cost = c[0]->cost;
  return &cj->it;
}

static qq__it *mk_disj(qq__seg_ctx *cx, qq__it **c, size_t n, size_t msm) {
  /* children that match nothing (absent terms, unmapped fields) only cost time: drop them */
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (c[i]->next != none_next) c[k++] = c[i];
  n = k;
  if (!n || msm > n) return mk_none(cx);
  if (n == 1 && msm <= 1) return c[0];
  disj_it *dj = xalloc(cx, sizeof *dj);
  if (!dj) return NULL;
  dj->c = c;
  dj->n = n;
  dj->msm = msm ? msm : 1;
  dj->it.next = disj_next;
  dj->it.advance = disj_adv;
  dj->it.score = disj_score;
  for (size_t i = 0; i < n; i++) dj->it.cost += c[i]->cost;
  return &dj->it;
}

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
  dlist l = {0};
  const uint8_t *present = NULL;
  if (fi->dv == QI_DV_I64) {
    const int64_t *col = qi_dv_i64_column(cx->seg, fi->id, &present);
    /* compare in integer space: exact for longs beyond 2^53 */
    int64_t ilo = INT64_MIN, ihi = INT64_MAX;
    if (lo > -INFINITY) {
      double c = lo_incl ? ceil(lo) : floor(lo) + 1;
      ilo = c >= 9.2233720368547758e18 ? INT64_MAX : c <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)c;
      if (c >= 9.2233720368547758e18) { *out = mk_none(cx); return *out ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory"); }
    }
    if (hi < INFINITY) {
      double c = hi_incl ? floor(hi) : ceil(hi) - 1;
      if (c < -9.2233720368547758e18) { *out = mk_none(cx); return *out ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory"); }
      ihi = c >= 9.2233720368547758e18 ? INT64_MAX : (int64_t)c;
    }
    if (col)
      for (uint32_t d = 0; d < cx->max_doc; d++)
        if (present[d] && col[d] >= ilo && col[d] <= ihi && is_live(cx, d) && dl_push(cx, &l, d) < 0)
          return qb_fail(err, QB_NOMEM, "query: out of memory");
  } else {
    const double *col = qi_dv_f64_column(cx->seg, fi->id, &present);
    if (col)
      for (uint32_t d = 0; d < cx->max_doc; d++) {
        double v = col[d];
        if (!present[d]) continue;
        if (lo_incl ? !(v >= lo) : !(v > lo)) continue;
        if (hi_incl ? !(v <= hi) : !(v < hi)) continue;
        if (is_live(cx, d) && dl_push(cx, &l, d) < 0) return qb_fail(err, QB_NOMEM, "query: out of memory");
      }
  }
  *out = mk_list(cx, l.d, l.n, boost);
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

/* Union of the postings of several terms of an inverted field, constant score */
static qb_code terms_union(qq__seg_ctx *cx, const qi_field_info *fi, const json_t *arr, double boost,
                           qq__it **out, qb_err *err) {
  dlist l = {0};
  char buf[64];
  for (size_t i = 0; i < json_array_size(arr); i++) {
    size_t len;
    const char *t = term_bytes(json_array_get(arr, i), buf, sizeof buf, &len);
    qi_postings *p;
    qb_code rc = qi_postings_open_term(cx->seg, fi->id, t, len, &p, err);
    if (rc) return rc;
    if (!p) continue;
    for (uint32_t d = qi_postings_next(p); d != NMD; d = qi_postings_next(p))
      if (dl_push(cx, &l, d) < 0) {
        qi_postings_free(p);
        return qb_fail(err, QB_NOMEM, "query: out of memory");
      }
    qi_postings_free(p);
  }
  dl_norm(&l);
  *out = mk_list(cx, l.d, l.n, boost);
  return *out ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory");
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

static qb_code build(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err);

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

static qb_code build_leaf_field(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out,
                                qb_err *err) {
  qi_field_info fi;
  qb_code rc;
  double boost = q->boost;
  if (qi_snapshot_field(cx->sh->snap, q->field, &fi)) { /* unmapped: nothing matches */
    *out = mk_none(cx);
    return *out ? QB_OK : nomem(err);
  }
  switch (q->kind) {
  case QK_TERM:
    if (fi.indexed) {
      char buf[64];
      size_t len;
      const char *t = term_bytes(q->value, buf, sizeof buf, &len);
      return mk_term(cx, &fi, t, len, q->boost, scoring, out, err);
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
      if (!n) return (*out = mk_none(cx)) ? QB_OK : nomem(err);
      *out = mk_boost(cx, mk_disj(cx, c, n, 1), boost, 1);
      return *out ? QB_OK : nomem(err);
    }
    break;
  case QK_RANGE: {
    double lo = -INFINITY, hi = INFINITY;
    int lo_incl = 1, hi_incl = 1;
    if (is_numeric(&fi)) {
      if (q->gt && !json_is_null(q->gt)) { if ((rc = value_num(&fi, q->gt, &lo, err))) return rc; lo_incl = 0; }
      if (q->gte && !json_is_null(q->gte)) { if ((rc = value_num(&fi, q->gte, &lo, err))) return rc; lo_incl = 1; }
      if (q->lt && !json_is_null(q->lt)) { if ((rc = value_num(&fi, q->lt, &hi, err))) return rc; hi_incl = 0; }
      if (q->lte && !json_is_null(q->lte)) { if ((rc = value_num(&fi, q->lte, &hi, err))) return rc; hi_incl = 1; }
      return numeric_filter(cx, &fi, lo, lo_incl, hi, hi_incl, boost, out, err);
    }
    if (fi.type == QI_KEYWORD) { /* term-range over the sorted dictionary */
      char b1[64], b2[64];
      size_t l1 = 0, l2 = 0;
      const json_t *lov = q->gt ? q->gt : q->gte, *hiv = q->lt ? q->lt : q->lte;
      const char *ls = lov ? term_bytes(lov, b1, sizeof b1, &l1) : NULL;
      const char *hs = hiv ? term_bytes(hiv, b2, sizeof b2, &l2) : NULL;
      uint32_t nt = qi_segment_term_count(cx->seg, fi.id);
      uint32_t ord = ls ? qi_segment_term_seek(cx->seg, fi.id, ls, l1) : 0;
      dlist l = {0};
      for (; ord < nt; ord++) {
        size_t tl;
        const char *t = qi_segment_term(cx->seg, fi.id, ord, &tl);
        size_t m = tl < l1 ? tl : l1;
        if (ls && q->gt && tl == l1 && !memcmp(t, ls, m)) continue;
        if (hs) {
          size_t m2 = tl < l2 ? tl : l2;
          int c = memcmp(t, hs, m2);
          if (!c) c = tl < l2 ? -1 : tl > l2;
          if (c > 0 || (c == 0 && q->lt)) break;
        }
        qi_postings *p;
        if ((rc = qi_postings_open(cx->seg, fi.id, ord, &p, err))) return rc;
        for (uint32_t d = qi_postings_next(p); d != NMD; d = qi_postings_next(p))
          if (dl_push(cx, &l, d) < 0) {
            qi_postings_free(p);
            return nomem(err);
          }
        qi_postings_free(p);
      }
      dl_norm(&l);
      *out = mk_list(cx, l.d, l.n, boost);
      return *out ? QB_OK : nomem(err);
    }
    break;
  }
  case QK_EXISTS: {
    dlist l = {0};
    const uint8_t *present = NULL;
    if (fi.dv == QI_DV_I64) qi_dv_i64_column(cx->seg, fi.id, &present);
    else if (fi.dv == QI_DV_F64) qi_dv_f64_column(cx->seg, fi.id, &present);
    const uint8_t *norms = fi.has_norms ? qi_segment_norms(cx->seg, fi.id) : NULL;
    for (uint32_t d = 0; d < cx->max_doc; d++) {
      int has;
      if (present) has = present[d];
      else if (norms) has = norms[d] != 0;
      else if (fi.dv == QI_DV_KEYWORD) {
        const uint32_t *ords;
        has = qi_dv_doc_ords(cx->seg, fi.id, d, &ords) > 0;
      } else has = 0;
      if (has && is_live(cx, d) && dl_push(cx, &l, d) < 0) return nomem(err);
    }
    *out = mk_list(cx, l.d, l.n, boost);
    return *out ? QB_OK : nomem(err);
  }
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
    if ((rc = qi_analyze(fi.analyzer == QI_ANALYZER_NONE ? QI_ANALYZER_KEYWORD : fi.analyzer, q->text,
                         strlen(q->text), on_tok, &ts, err)))
      return rc;
    if (!ts.n) return (*out = mk_none(cx)) ? QB_OK : nomem(err); /* zero_terms_query: none */
    qq__it **c = qb_arena_array(cx->sh->ar, ts.n, sizeof *c);
    if (!c) return nomem(err);
    for (size_t i = 0; i < ts.n; i++)
      if ((rc = mk_term(cx, &fi, ts.t[i], ts.len[i], q->boost, scoring, &c[i], err))) return rc;
    if (ts.n == 1) { *out = c[0]; return QB_OK; }
    size_t msm = 1;
    if (q->op_and) msm = ts.n;
    else if (q->msm && (rc = calc_msm(q->msm, ts.n, &msm, err))) return rc;
    if (msm > ts.n) return (*out = mk_none(cx)) ? QB_OK : nomem(err);
    if (msm == ts.n) {
      qq__it **sc = qb_arena_array(cx->sh->ar, ts.n, sizeof *sc);
      if (!sc) return nomem(err);
      memcpy(sc, c, ts.n * sizeof *c);
      *out = mk_conj(cx, c, ts.n, scoring ? sc : NULL, scoring ? ts.n : 0);
    } else {
      *out = mk_disj(cx, c, ts.n, msm);
    }
    return *out ? QB_OK : nomem(err);
  }
  default:
    break;
  }
  /* a query the field's type cannot answer: nothing matches, as Elasticsearch does for e.g. a
  ** term query on a text field's missing subfield; a type mismatch on numbers fails above */
  *out = mk_none(cx);
  return *out ? QB_OK : nomem(err);
}

static qb_code build_ids(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err) {
  dlist l = {0};
  size_t n = json_array_size(q->value);
  /* a scan of the segment's _ids; fine for the handful of ids a request names */
  for (uint32_t d = 0; d < cx->max_doc && n; d++) {
    size_t len;
    const char *id = qi_segment_doc_id(cx->seg, d, &len);
    if (!id || !is_live(cx, d)) continue;
    for (size_t i = 0; i < n; i++) {
      const json_t *v = json_array_get(q->value, i);
      if (json_is_string(v) && json_string_length(v) == len && !memcmp(json_string_value(v), id, len)) {
        if (dl_push(cx, &l, d) < 0) return nomem(err);
        break;
      }
    }
  }
  *out = mk_list(cx, l.d, l.n, q->boost);
  return *out ? QB_OK : nomem(err);
}

static qb_code build_bool(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  size_t nreq = q->nmust + q->nfilter, msm = 0, i, k = 0, nsc = 0;
  qb_code rc;
  if (!nreq && !q->nshould && !q->nmust_not) { /* {} matches everything, score 1 */
    *out = mk_all(cx, q->boost);
    return *out ? QB_OK : nomem(err);
  }
  if (q->msm) {
    if ((rc = calc_msm(q->msm, q->nshould, &msm, err))) return rc;
  } else if (!nreq) {
    msm = q->nshould ? 1 : 0;
  }
  if (msm > q->nshould) return (*out = mk_none(cx)) ? QB_OK : nomem(err);
  qq__it **req = qb_arena_array(cx->sh->ar, nreq + 2, sizeof *req);
  qq__it **sc = qb_arena_array(cx->sh->ar, nreq + 2, sizeof *sc);
  qq__it **sh = qb_arena_array(cx->sh->ar, q->nshould + 1, sizeof *sh);
  if (!req || !sc || !sh) return nomem(err);
  for (i = 0; i < q->nmust; i++) {
    if ((rc = build(cx, q->must[i], scoring, &req[k], err))) return rc;
    if (scoring) sc[nsc++] = req[k];
    k++;
  }
  for (i = 0; i < q->nfilter; i++)
    if ((rc = build(cx, q->filter[i], 0, &req[k++], err))) return rc;
  for (i = 0; i < q->nshould; i++)
    if ((rc = build(cx, q->should[i], scoring, &sh[i], err))) return rc;
  qq__it *should = q->nshould ? mk_disj(cx, sh, q->nshould, msm ? msm : 1) : NULL;
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
    main = mk_all(cx, 0);
  } else {
    main = mk_conj(cx, req, k, sc, nsc);
  }
  if (!main) return nomem(err);
  if (should && scoring) {
    opt_it *o = xalloc(cx, sizeof *o);
    if (!o) return nomem(err);
    o->req = main;
    o->opt = should;
    o->it.next = opt_next;
    o->it.advance = opt_adv;
    o->it.score = opt_score;
    o->it.cost = main->cost;
    main = &o->it;
  }
  if (q->nmust_not) {
    qq__it **ex = qb_arena_array(cx->sh->ar, q->nmust_not, sizeof *ex);
    if (!ex) return nomem(err);
    for (i = 0; i < q->nmust_not; i++)
      if ((rc = build(cx, q->must_not[i], 0, &ex[i], err))) return rc;
    excl_it *e = xalloc(cx, sizeof *e);
    if (!e) return nomem(err);
    e->req = main;
    e->ex = mk_disj(cx, ex, q->nmust_not, 1);
    if (!e->ex) return nomem(err);
    e->ex->advance(e->ex, 0); /* position: advance() below relies on a started iterator */
    e->it.next = excl_next;
    e->it.advance = excl_adv;
    e->it.score = excl_score;
    e->it.cost = main->cost;
    main = &e->it;
  }
  *out = scoring ? mk_boost(cx, main, q->boost, 0) : main;
  return *out ? QB_OK : nomem(err);
}

/* ---- buffered script nodes: function_score, script_score, script -------------------------------- */

typedef struct buf_it {
  qq__it it;
  qq__seg_ctx *cx;
  const qq__query *q;
  qq__it *child;
  qq__it **ffilter;       /* function_score: per function filter iterator (NULL = all) */
  int scoring;
  int started;
  size_t n, pos;
  uint32_t docs[QQ_BLOCK_MAX];
  double cs[QQ_BLOCK_MAX];  /* child scores */
  double fs[QQ_BLOCK_MAX];  /* final scores */
  double fac[QQ_BLOCK_MAX], tot[QQ_BLOCK_MAX], wsum[QQ_BLOCK_MAX], mx[QQ_BLOCK_MAX], mn[QQ_BLOCK_MAX];
  uint32_t cnt[QQ_BLOCK_MAX];
  uint8_t keep[QQ_BLOCK_MAX];
  uint8_t fmatch[QQ_BLOCK_MAX];
} buf_it;

static double fvf_apply(qq__fvmod m, double v) {
  switch (m) {
  case FV_NONE: return v;
  case FV_LOG: return log10(v);
  case FV_LOG1P: return log10(v + 1);
  case FV_LOG2P: return log10(v + 2);
  case FV_LN: return log(v);
  case FV_LN1P: return log1p(v);
  case FV_LN2P: return log(v + 2);
  case FV_SQUARE: return v * v;
  case FV_SQRT: return sqrt(v);
  case FV_RECIPROCAL: return 1.0 / v;
  }
  return v;
}

static qb_code fail_script(qq__seg_ctx *cx, qq__script *sc, qb_code rc) {
  (void)sc;
  cx->rc = rc;
  return rc;
}

/* Compute fs[] and keep[] for the block */
static qb_code buf_compute(buf_it *b) {
  qq__seg_ctx *cx = b->cx;
  const qq__query *q = b->q;
  size_t n = b->n, i;
  qb_code rc;
  memset(b->keep, 1, n);
  if (q->kind == QK_SCRIPT) {
    if ((rc = qq__script_run(q->script, cx->sh, cx->seg, (uint32_t)cx->base, b->docs, b->cs, n, cx->err)))
      return fail_script(cx, q->script, rc);
    for (i = 0; i < n; i++) {
      b->keep[i] = q->script->keep[i] != 0;
      b->fs[i] = q->boost;
    }
    return QB_OK;
  }
  if (q->kind == QK_SCRIPT_SCORE) {
    if ((rc = qq__script_run(q->script, cx->sh, cx->seg, (uint32_t)cx->base, b->docs, b->cs, n, cx->err)))
      return fail_script(cx, q->script, rc);
    for (i = 0; i < n; i++) {
      double v = q->script->res[i];
      if (v < 0 || v != v) {
        cx->rc = qb_fail(cx->err, QB_TRAP, "script [%.80s]: script score function must not produce negative scores, "
                         "but got: [%g] (doc %u)", q->script->source, v, b->docs[i]);
        return cx->rc;
      }
      b->fs[i] = (float)((float)v * q->boost);
      if (q->has_min_score && (float)v < q->min_score) b->keep[i] = 0;
    }
    return QB_OK;
  }
  /* function_score */
  int single = q->nfuncs == 1 && !q->funcs[0].filter;
  for (i = 0; i < n && !single; i++) {
    b->fac[i] = 1;
    b->tot[i] = 0;
    b->wsum[i] = 0;
    b->mx[i] = -INFINITY;
    b->mn[i] = INFINITY;
    b->cnt[i] = 0;
  }
  for (size_t f = 0; f < q->nfuncs; f++) {
    const qq__func *fn = &q->funcs[f];
    double val[QQ_BLOCK_MAX];
    if (b->ffilter[f]) {
      qq__it *fi = b->ffilter[f];
      for (i = 0; i < n; i++) b->fmatch[i] = fi->doc != QI_NO_MORE_DOCS && fi->advance(fi, b->docs[i]) == b->docs[i];
    } else {
      memset(b->fmatch, 1, n);
    }
    if (fn->kind == FN_SCRIPT) {
      if ((rc = qq__script_run(fn->script, cx->sh, cx->seg, (uint32_t)cx->base, b->docs, b->cs, n, cx->err)))
        return fail_script(cx, fn->script, rc);
      for (i = 0; i < n; i++) {
        double v = fn->script->res[i];
        if (b->fmatch[i] && (v < 0 || v != v)) {
          cx->rc = qb_fail(cx->err, QB_TRAP, "script [%.80s]: script score function must not produce negative scores, "
                           "but got: [%g] (doc %u)", fn->script->source, v, b->docs[i]);
          return cx->rc;
        }
        val[i] = v * fn->weight;
      }
    } else if (fn->kind == FN_FVF) {
      qi_field_info fi;
      double raw[QQ_BLOCK_MAX];
      uint8_t pr[QQ_BLOCK_MAX];
      if (qi_snapshot_field(cx->sh->snap, fn->field, &fi) || (fi.dv != QI_DV_I64 && fi.dv != QI_DV_F64)) {
        memset(pr, 0, n);
        memset(raw, 0, n * sizeof *raw);
      } else {
        qi_dv_read_f64(cx->seg, fi.id, b->docs, n, raw, pr);
      }
      for (i = 0; i < n; i++) {
        double v = raw[i];
        if (!pr[i]) {
          if (!b->fmatch[i]) continue;
          if (!fn->has_missing) {
            cx->rc = qb_fail(cx->err, QB_INVAL, "field_value_factor: missing value for field [%s]", fn->field);
            return cx->rc;
          }
          v = fn->missing;
        }
        double r = fvf_apply(fn->modifier, v * fn->factor);
        if (b->fmatch[i] && (r != r || isinf(r))) {
          cx->rc = qb_fail(cx->err, QB_INVAL, "field_value_factor: result of field modification [%s(%g * %g)] "
                           "must be a number", (const char *[]){"none", "log", "log1p", "log2p", "ln", "ln1p",
                           "ln2p", "square", "sqrt", "reciprocal"}[fn->modifier], v, fn->factor);
          return cx->rc;
        }
        val[i] = r * fn->weight;
      }
    } else {
      for (i = 0; i < n; i++) val[i] = fn->weight;
    }
    if (single) { /* Elasticsearch: one function without a filter ignores score_mode */
      memcpy(b->fac, val, n * sizeof *val);
      continue;
    }
    for (i = 0; i < n; i++) {
      if (!b->fmatch[i]) continue;
      double v = val[i];
      switch (q->score_mode) {
      case SM_FIRST: if (!b->cnt[i]) b->fac[i] = v; break;
      case SM_MULTIPLY: b->fac[i] *= v; break;
      default:
        b->tot[i] += v;
        b->wsum[i] += fn->weight;
        if (v > b->mx[i]) b->mx[i] = v;
        if (v < b->mn[i]) b->mn[i] = v;
      }
      b->cnt[i]++;
    }
  }
  for (i = 0; i < n; i++) {
    double fac = b->fac[i];
    if (!single && b->cnt[i]) switch (q->score_mode) {
      case SM_SUM: fac = b->tot[i]; break;
      case SM_AVG: fac = b->tot[i] / b->wsum[i]; break;
      case SM_MAX: fac = b->mx[i]; break;
      case SM_MIN: fac = b->mn[i]; break;
      default: break;
      }
    if (fac > q->max_boost) fac = q->max_boost;
    double qs = b->cs[i], s;
    switch (q->boost_mode) {
    case BM_MULTIPLY: s = qs * fac; break;
    case BM_REPLACE: s = fac; break;
    case BM_SUM: s = qs + fac; break;
    case BM_AVG: s = (qs + fac) / 2.0; break;
    case BM_MAX: s = qs > fac ? qs : fac; break;
    default: s = qs < fac ? qs : fac; break;
    }
    s = (float)s;
    if (q->has_min_score && s < q->min_score) b->keep[i] = 0;
    b->fs[i] = (float)(s * q->boost);
  }
  return QB_OK;
}

static uint32_t buf_fill(buf_it *b, uint32_t d) {
  for (;;) {
    size_t n = 0, j = 0;
    while (d != NMD) {
      b->docs[n] = d;
      b->cs[n] = b->scoring || b->q->kind != QK_SCRIPT ? b->child->score(b->child) : 0;
      if (++n == QQ_BLOCK_MAX) break;
      d = b->child->next(b->child);
    }
    b->n = n;
    b->pos = 0;
    if (!n) return b->it.doc = NMD;
    if (buf_compute(b)) {
      b->n = 0;
      return b->it.doc = NMD; /* cx->rc holds the failure */
    }
    for (size_t i = 0; i < n; i++)
      if (b->keep[i]) {
        b->docs[j] = b->docs[i];
        b->fs[j] = b->fs[i];
        j++;
      }
    b->n = j;
    if (j) return b->it.doc = b->docs[0];
    if (d == NMD) return b->it.doc = NMD;
    d = b->child->next(b->child);
  }
}

static uint32_t buf_next(qq__it *it) {
  buf_it *b = (buf_it *)it;
  if (!b->started) {
    b->started = 1;
    return buf_fill(b, b->child->next(b->child));
  }
  if (it->doc == NMD) return NMD;
  if (b->pos + 1 < b->n) return it->doc = b->docs[++b->pos];
  return buf_fill(b, b->child->doc == NMD ? NMD : b->child->next(b->child));
}

static uint32_t buf_adv(qq__it *it, uint32_t t) {
  buf_it *b = (buf_it *)it;
  if (b->started && it->doc >= t) return it->doc;
  if (!b->started) {
    b->started = 1;
    return buf_fill(b, b->child->advance(b->child, t));
  }
  while (b->pos < b->n && b->docs[b->pos] < t) b->pos++;
  if (b->pos < b->n) return it->doc = b->docs[b->pos];
  if (b->child->doc == NMD) return it->doc = NMD;
  return buf_fill(b, b->child->doc >= t ? b->child->next(b->child) : b->child->advance(b->child, t));
}

static double buf_score(qq__it *it) {
  buf_it *b = (buf_it *)it;
  return b->fs[b->pos];
}

static qb_code build_buffered(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qb_code rc;
  buf_it *b = xalloc(cx, sizeof *b);
  if (!b) return nomem(err);
  b->cx = cx;
  b->q = q;
  b->scoring = scoring;
  if (q->kind == QK_SCRIPT) {
    b->child = mk_all(cx, 0);
    if (!b->child) return nomem(err);
  } else if ((rc = build(cx, q->child, 1, &b->child, err))) {
    return rc;
  }
  if (q->kind == QK_FSCORE) {
    if (!(b->ffilter = qb_arena_array(cx->sh->ar, q->nfuncs + 1, sizeof *b->ffilter))) return nomem(err);
    for (size_t f = 0; f < q->nfuncs; f++)
      if (q->funcs[f].filter) {
        if ((rc = build(cx, q->funcs[f].filter, 0, &b->ffilter[f], err))) return rc;
        b->ffilter[f]->advance(b->ffilter[f], 0);
      }
  }
  b->it.next = buf_next;
  b->it.advance = buf_adv;
  b->it.score = buf_score;
  b->it.cost = b->child->cost;
  *out = &b->it;
  return QB_OK;
}

/* ---- dis_max ------------------------------------------------------------------------------------ */

/* max of the matching children's scores + tie_breaker * the others' (Lucene's DisjunctionMaxQuery) */
typedef struct dmax_it {
  disj_it d;
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

static qb_code build_dismax(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qb_code rc;
  size_t n = q->nshould, k = 0;
  qq__it **c = qb_arena_array(cx->sh->ar, n + 1, sizeof *c);
  if (!c) return nomem(err);
  for (size_t i = 0; i < n; i++) {
    if ((rc = build(cx, q->should[i], scoring, &c[k], err))) return rc;
    if (c[k]->next != none_next) k++;
  }
  if (!k) return (*out = mk_none(cx)) ? QB_OK : nomem(err);
  dmax_it *m = xalloc(cx, sizeof *m);
  if (!m) return nomem(err);
  m->d.c = c;
  m->d.n = k;
  m->d.msm = 1;
  m->tie = q->tie_breaker;
  m->d.it.next = disj_next;
  m->d.it.advance = disj_adv;
  m->d.it.score = scoring ? dmax_score : zero_score;
  for (size_t i = 0; i < k; i++) m->d.it.cost += c[i]->cost;
  *out = scoring ? mk_boost(cx, &m->d.it, q->boost, 0) : &m->d.it;
  return *out ? QB_OK : nomem(err);
}

/* prefix / wildcard over a keyword or text field's term dictionary: a constant-score union */
static qb_code build_pattern(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err) {
  qi_field_info fi;
  dlist l = {0};
  qb_code rc;
  const char *pat = json_string_value(q->value);
  size_t plen = json_string_length(q->value);
  if (qi_snapshot_field(cx->sh->snap, q->field, &fi) || !fi.indexed)
    return (*out = mk_none(cx)) ? QB_OK : nomem(err);
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
    qi_postings *p;
    if ((rc = qi_postings_open(cx->seg, fi.id, ord, &p, err))) return rc;
    for (uint32_t d = qi_postings_next(p); d != NMD; d = qi_postings_next(p))
      if (dl_push(cx, &l, d) < 0) {
        qi_postings_free(p);
        return nomem(err);
      }
    qi_postings_free(p);
  }
  dl_norm(&l);
  *out = mk_list(cx, l.d, l.n, q->boost);
  return *out ? QB_OK : nomem(err);
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

static qb_code build(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qb_code rc;
  switch (q->kind) {
  case QK_MATCH_ALL: *out = mk_all(cx, q->boost); break;
  case QK_MATCH_NONE: *out = mk_none(cx); break;
  case QK_TERM: case QK_TERMS: case QK_MATCH: case QK_RANGE: case QK_EXISTS:
    return build_leaf_field(cx, q, scoring, out, err);
  case QK_IDS: return build_ids(cx, q, out, err);
  case QK_BOOL: return build_bool(cx, q, scoring, out, err);
  case QK_CONST: {
    qq__it *c;
    if ((rc = build(cx, q->child, 0, &c, err))) return rc;
    *out = mk_boost(cx, c, q->boost, 1);
    break;
  }
  case QK_FSCORE: case QK_SCRIPT_SCORE: case QK_SCRIPT:
    return build_buffered(cx, q, scoring, out, err);
  case QK_DISMAX: return build_dismax(cx, q, scoring, out, err);
  case QK_PREFIX: case QK_WILDCARD: return build_pattern(cx, q, out, err);
  }
  return *out ? QB_OK : nomem(err);
}

qb_code qq__it_build(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  return build(cx, q, scoring, out, err);
}

/* ---- MaxScore over a top-level disjunction of terms ------------------------------------------- */

/* Terms sorted by their score bound, ascending. The first `ness` terms are non-essential: the
** sum of their bounds (ub[ness-1]) cannot beat min_comp, so a doc matching only them cannot
** enter the top hits; candidates come from the essential terms only, and non-essential terms
** are advanced to a candidate only while its score can still become competitive. A returned
** doc's score is summed in clause order in double and rounded to float, exactly as disj_score
** does, so pruning never changes a score. */
typedef struct ms_it {
  qq__it it;
  qq__seg_ctx *cx;
  term_it **t;       /* by bound ascending */
  double *bound, *ub; /* ub[i] = bound[0] + ... + bound[i] */
  size_t n, ness;
  size_t *order;     /* the original clause order, for the score sum */
  double cur_score;
  int started;
  double last_min;
  /* block-max data per term (sorted position): the block holding the first posting >= the
  ** last candidate, and its score bound */
  uint32_t *bfirst, *blast;
  double *bbound;
} ms_it;

/* Block-max check (as Lucene's block-max MaxScore): the sum over all terms of the bound of the
** block that could hold C. When it cannot beat min_comp, return the first doc after the range
** where these bounds hold (so the caller skips [C, return)); else return C. */
static uint32_t ms_blockmax_skip(ms_it *m, uint32_t c) {
  double sum = 0;
  uint32_t upto = NMD - 1;
  for (size_t i = 0; i < m->n; i++) {
    if (m->blast[i] == NMD || c > m->blast[i]) {
      qi_block_info bi;
      term_it *t = m->t[i];
      if (!qi_postings_block_for(t->p, c, &bi)) {
        m->bfirst[i] = NMD;
        m->blast[i] = NMD - 1; /* no posting >= c: bound 0 to the end */
        m->bbound[i] = 0;
      } else {
        m->bfirst[i] = bi.first_doc;
        m->blast[i] = bi.last_doc;
        m->bbound[i] = qi_bm25_score(&t->w, bi.max_freq, t->norms ? bi.min_norm : 1);
      }
    }
    if (c >= m->bfirst[i]) {
      sum += m->bbound[i];
      if (m->blast[i] < upto) upto = m->blast[i];
    } else if (m->bfirst[i] - 1 < upto) {
      upto = m->bfirst[i] - 1;
    }
  }
  if (sum * (1 + 1e-9) > m->cx->min_comp) return c;
  return upto + 1;
}

static void ms_update(ms_it *m) {
  double mc = m->cx->min_comp;
  if (mc == m->last_min) return;
  m->last_min = mc;
  while (m->ness < m->n - 1 && m->ub[m->ness] * (1 + 1e-9) <= mc) m->ness++;
}

static uint32_t ms_find(ms_it *m) {
  for (;;) {
    ms_update(m);
    uint32_t c = NMD;
    for (size_t i = m->ness; i < m->n; i++)
      if (m->t[i]->it.doc < c) c = m->t[i]->it.doc;
    if (c == NMD) return m->it.doc = NMD;
    if (m->cx->min_comp > -INFINITY) {
      uint32_t to = ms_blockmax_skip(m, c);
      if (to != c) {
        m->cx->skipped = 1;
        for (size_t i = m->ness; i < m->n; i++)
          if (m->t[i]->it.doc < to) term_adv(&m->t[i]->it, to);
        continue;
      }
    }
    /* essential part */
    double sc[64];
    double part = 0;
    for (size_t i = m->ness; i < m->n; i++) {
      sc[i] = 0;
      if (m->t[i]->it.doc == c) part += (sc[i] = term_score(&m->t[i]->it));
    }
    int competitive = 1;
    for (size_t j = m->ness; j-- > 0;) {
      if ((part + m->ub[j]) * (1 + 1e-9) <= m->cx->min_comp) {
        competitive = 0;
        break;
      }
      sc[j] = 0;
      if (m->t[j]->it.doc < c) term_adv(&m->t[j]->it, c);
      if (m->t[j]->it.doc == c) part += (sc[j] = term_score(&m->t[j]->it));
    }
    if (competitive) {
      /* the exact score, summed in clause order like disj_score; non-essential terms not on c
      ** (or not advanced because the doc lost) contribute nothing */
      double s = 0;
      for (size_t k = 0; k < m->n; k++) s += sc[m->order[k]];
      m->cur_score = (float)s;
      m->it.doc = c;
      /* move the essential terms on c forward for the next call */
      return c;
    }
    m->cx->skipped = 1;
    for (size_t i = m->ness; i < m->n; i++)
      if (m->t[i]->it.doc == c) term_next(&m->t[i]->it);
  }
}

static uint32_t ms_next(qq__it *it) {
  ms_it *m = (ms_it *)it;
  if (!m->started) {
    m->started = 1;
    for (size_t i = 0; i < m->n; i++) term_next(&m->t[i]->it);
  } else {
    if (it->doc == NMD) return NMD;
    for (size_t i = 0; i < m->n; i++)
      if (m->t[i]->it.doc == it->doc) term_next(&m->t[i]->it);
  }
  return ms_find(m);
}

static uint32_t ms_adv(qq__it *it, uint32_t t) {
  (void)t;
  return ms_next(it); /* only used at the top level, which calls next */
}

static double ms_score(qq__it *it) { return ((ms_it *)it)->cur_score; }

qb_code qq__it_build_top(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err) {
  qq__it *it;
  qb_code rc;
  if ((rc = build(cx, q, 1, &it, err))) return rc;
  *out = it;
  /* a disjunction (msm 1) whose children are all term iterators */
  if (it->next != disj_next || it->score != disj_score) return QB_OK; /* not dis_max */
  disj_it *dj = (disj_it *)it;
  if (dj->msm > 1 || dj->n < 2 || dj->n > 64) return QB_OK;
  for (size_t i = 0; i < dj->n; i++)
    if (dj->c[i]->next != term_next || dj->c[i]->score != term_score) return QB_OK;
  ms_it *m = xalloc(cx, sizeof *m);
  if (!m || !(m->t = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->t)) ||
      !(m->bound = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->bound)) ||
      !(m->ub = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->ub)) ||
      !(m->order = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->order)) ||
      !(m->bfirst = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->bfirst)) ||
      !(m->blast = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->blast)) ||
      !(m->bbound = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->bbound)))
    return nomem(err);
  for (size_t i = 0; i < dj->n; i++) m->blast[i] = NMD; /* no block yet */
  m->n = dj->n;
  for (size_t i = 0; i < m->n; i++) {
    term_it *t = (term_it *)dj->c[i];
    qi_block_info bi;
    qi_postings_term_bound(t->p, &bi);
    m->t[i] = t;
    m->bound[i] = qi_bm25_score(&t->w, bi.max_freq, t->norms ? bi.min_norm : 1);
    m->order[i] = i;
  }
  /* sort by bound (insertion sort: few terms), remembering the clause order */
  for (size_t i = 1; i < m->n; i++)
    for (size_t j = i; j > 0 && m->bound[j] < m->bound[j - 1]; j--) {
      term_it *tt = m->t[j]; m->t[j] = m->t[j - 1]; m->t[j - 1] = tt;
      double bb = m->bound[j]; m->bound[j] = m->bound[j - 1]; m->bound[j - 1] = bb;
      size_t oo = m->order[j]; m->order[j] = m->order[j - 1]; m->order[j - 1] = oo;
    }
  /* order[k] must map clause k -> sorted position */
  {
    size_t *pos = qb_arena_array(cx->sh->ar, m->n, sizeof *pos);
    if (!pos) return nomem(err);
    for (size_t i = 0; i < m->n; i++) pos[m->order[i]] = i;
    m->order = pos;
  }
  double acc = 0;
  for (size_t i = 0; i < m->n; i++) m->ub[i] = (acc += m->bound[i]);
  m->cx = cx;
  m->last_min = NAN;
  m->it.next = ms_next;
  m->it.advance = ms_adv;
  m->it.score = ms_score;
  m->it.cost = it->cost;
  *out = &m->it;
  return QB_OK;
}
