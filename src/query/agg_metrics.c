/* agg_metrics.c: the metric kinds of issue 12 §4 on a shard, in a merge and in the response:
** cardinality (agg_hll.c), percentiles and percentile_ranks (agg_tdigest.c), extended_stats,
** weighted_avg and top_hits; and the compiled include/exclude expressions of a terms.
** Partials (one aggregation):
**   cardinality       {"hll": {"p", "t", "set": [h...] | "reg": "hex"}}
**   percentile(s/_ranks) {"td": {"c", "m": [...], "w": [...], "min", "max"}}
**   extended_stats    {"count", "sum", "min", "max", "sum_sq"}
**   weighted_avg      {"sw", "swv", "n"}
**   top_hits          {"total", "hits": [{..., "k": sort value, "g": doc, "sh": shard}]}
** A merge of partials is a partial of the same shape. */
#define _GNU_SOURCE /* qsort_r */
#include "aggs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct th_hit {
  int has;               /* the sort value exists */
  double v;              /* numeric sort value or score */
  const char *sv;        /* keyword sort value (segment bytes) */
  size_t svl;
  double score;
  const qi_segment *seg;
  uint32_t doc;
  uint64_t gdoc;
} th_hit;

typedef struct xst {
  qq__shard *sh;
  qq__hll *hll;
  uint64_t *ordh;        /* cardinality over a keyword: the segment's ordinal hashes (0: not yet) */
  uint32_t nordh;
  const qi_segment *hseg;
  qq__td *td;
  double sumsq;
  double sw, swv;
  uint64_t wn;
  th_hit *h;             /* top_hits: the best k, best first */
  size_t nh, k;
  uint64_t total;
  double max_score;
  int sort_kw;           /* the sort field is a keyword */
  qi_field_info sfi;
  int smapped;
  regex_t inc, exc;      /* terms */
  int has_inc, has_exc;
} xst;

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

qb_code qq__x_init(qq__shard *sh, qq__agst *s, qb_err *err) {
  const qq__agg *a = s->a;
  const qq__xagg *x = a->x;
  xst *t = qb_calloc(1, sizeof *t);
  if (!t) return nomem(err);
  s->x = t;
  t->sh = sh;
  t->max_score = -INFINITY;
  switch (a->kind) {
  case AG_CARDINALITY:
    if (!(t->hll = qq__hll_new(x->hll_p, x->threshold))) return nomem(err);
    break;
  case AG_PERCENTILES: case AG_PERCENTILE_RANKS:
    if (!(t->td = qq__td_new(x->compression))) return nomem(err);
    break;
  case AG_WEIGHTED_AVG:
    s->mapped2 = !qi_snapshot_field(sh->snap, x->wfield, &s->fi2);
    if (s->mapped2 && (s->fi2.dv == QI_DV_KEYWORD || s->fi2.dv == QI_DV_NONE))
      return qb_fail(err, QB_INVAL, "Field [%s] of type [%s] is not supported for aggregation [weighted_avg]", x->wfield,
                     s->fi2.dv == QI_DV_KEYWORD ? "keyword" : "text");
    break;
  case AG_TOP_HITS:
    t->k = (size_t)x->from + x->size;
    if (t->k && !(t->h = qb_calloc(t->k, sizeof *t->h))) return nomem(err);
    if (x->nsort && strcmp(x->sort[0].field, "_score") && strcmp(x->sort[0].field, "_doc")) {
      t->smapped = !qi_snapshot_field(sh->snap, x->sort[0].field, &t->sfi);
      if (t->smapped && t->sfi.dv == QI_DV_NONE)
        return qb_fail(err, QB_INVAL, "Text fields are not optimised for operations that require per-document field data "
                       "like aggregations and sorting: [%s]", x->sort[0].field);
      t->sort_kw = t->smapped && t->sfi.dv == QI_DV_KEYWORD;
    }
    break;
  case AG_TERMS:
    if (x && x->inc_re) {
      if (regcomp(&t->inc, x->inc_re, REG_EXTENDED | REG_NOSUB)) return qb_fail(err, QB_INVAL, "bad [include]");
      t->has_inc = 1;
    }
    if (x && x->exc_re) {
      if (regcomp(&t->exc, x->exc_re, REG_EXTENDED | REG_NOSUB)) return qb_fail(err, QB_INVAL, "bad [exclude]");
      t->has_exc = 1;
    }
    break;
  default: break;
  }
  return QB_OK;
}

void qq__x_free(qq__agst *s) {
  xst *t = s->x;
  if (!t) return;
  qq__hll_free(t->hll);
  qb_free(t->ordh, t->nordh * sizeof *t->ordh);
  qq__td_free(t->td);
  qb_free(t->h, t->k * sizeof *t->h);
  if (t->has_inc) regfree(&t->inc);
  if (t->has_exc) regfree(&t->exc);
  qb_free(t, sizeof *t);
  s->x = NULL;
}

int qq__terms_keep(const qq__agst *s, const char *term, size_t len) {
  const qq__xagg *x = s->a->x;
  const xst *t = s->x;
  if (!x) return 1;
  if (x->ninc || x->nexc) {
    int in = !x->ninc && !(t && t->has_inc);
    for (size_t i = 0; i < x->ninc && !in; i++) in = strlen(x->inc[i]) == len && !memcmp(x->inc[i], term, len);
    for (size_t i = 0; i < x->nexc; i++)
      if (strlen(x->exc[i]) == len && !memcmp(x->exc[i], term, len)) return 0;
    if (!in && !(t && t->has_inc)) return 0;
    if (x->ninc && in) return 1;
  }
  if (!t || (!t->has_inc && !t->has_exc)) return 1;
  char small[512], *buf = len < sizeof small ? small : qb_malloc(len + 1);
  if (!buf) return 1;
  memcpy(buf, term, len);
  buf[len] = 0;
  int keep = (!t->has_inc || !regexec(&t->inc, buf, 0, NULL, 0)) && (!t->has_exc || regexec(&t->exc, buf, 0, NULL, 0));
  if (buf != small) qb_free(buf, len + 1);
  return keep;
}

static uint64_t hash_double(double v) {
  if (v == 0) v = 0;
  if (v == (double)(int64_t)v && fabs(v) < 9.2e18) { /* whole numbers hash as the long they are */
    int64_t i = (int64_t)v;
    return qq__murmur3_64(&i, sizeof i, 0);
  }
  return qq__murmur3_64(&v, sizeof v, 0);
}

static qb_code cardinality_block(qq__aggs_state *st, qq__agst *s, xst *t, const qi_segment *seg, uint64_t base,
                                 const uint32_t *docs, const double *scores, size_t n, qb_err *err) {
  const qq__agg *a = s->a;
  if (!a->script && s->mapped && s->fi.dv == QI_DV_KEYWORD && s->nested) { /* per bucket: no cache */
    for (size_t i = 0; i < n; i++) {
      const uint32_t *ords;
      uint32_t c = qi_dv_doc_ords(seg, s->fi.id, docs[i], &ords);
      if (!c && json_is_string(a->missing)) {
        const char *mv = json_string_value(a->missing);
        if (qq__hll_add(t->hll, qq__murmur3_64(mv, strlen(mv), 0))) return nomem(err);
      }
      for (uint32_t j = 0; j < c; j++) {
        size_t len;
        const char *term = qi_dv_ord_term(seg, s->fi.id, ords[j], &len);
        if (qq__hll_add(t->hll, qq__murmur3_64(term, len, 0))) return nomem(err);
      }
    }
    return QB_OK;
  }
  if (!a->script && s->mapped && s->fi.dv == QI_DV_KEYWORD) {
    if (t->hseg != seg) {
      qb_free(t->ordh, t->nordh * sizeof *t->ordh);
      uint32_t no = qi_dv_ord_count(seg, s->fi.id);
      t->nordh = no ? no : 1;
      if (!(t->ordh = qb_calloc(t->nordh, sizeof *t->ordh))) {
        t->nordh = 0;
        t->hseg = NULL;
        return nomem(err);
      }
      t->hseg = seg;
    }
    for (size_t i = 0; i < n; i++) {
      const uint32_t *ords;
      uint32_t c = qi_dv_doc_ords(seg, s->fi.id, docs[i], &ords);
      if (!c && json_is_string(a->missing)) {
        const char *mv = json_string_value(a->missing);
        if (qq__hll_add(t->hll, qq__murmur3_64(mv, strlen(mv), 0))) return nomem(err);
      }
      for (uint32_t j = 0; j < c; j++) {
        uint32_t o = ords[j];
        if (o >= t->nordh) continue;
        if (!t->ordh[o]) {
          size_t len;
          const char *term = qi_dv_ord_term(seg, s->fi.id, o, &len);
          uint64_t h = qq__murmur3_64(term, len, 0);
          t->ordh[o] = h ? h : 1;
        }
        if (qq__hll_add(t->hll, t->ordh[o])) return nomem(err);
      }
    }
    return QB_OK;
  }
  double v[QQ_BLOCK_MAX];
  uint8_t pr[QQ_BLOCK_MAX];
  qb_code rc = qq__metric_values(st, s, seg, base, docs, scores, n, v, pr, err);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++)
    if (pr[i] && qq__hll_add(t->hll, hash_double(v[i]))) return nomem(err);
  return QB_OK;
}

/* -1, 0, 1: X before, equal to, after Y in the top_hits order */
static int th_cmp(const qq__xagg *x, int kw, const th_hit *p, const th_hit *q) {
  if (p->has != q->has) return p->has ? -1 : 1; /* missing values last */
  int c = 0;
  if (p->has) {
    if (kw) {
      size_t l = p->svl < q->svl ? p->svl : q->svl;
      c = memcmp(p->sv, q->sv, l);
      if (!c) c = p->svl < q->svl ? -1 : p->svl > q->svl;
      c = c < 0 ? -1 : c > 0;
    } else {
      c = p->v < q->v ? -1 : p->v > q->v;
    }
    int desc = x->nsort ? x->sort[0].desc : 1;
    if (desc) c = -c;
  }
  if (c) return c;
  return p->gdoc < q->gdoc ? -1 : p->gdoc > q->gdoc;
}

static void th_offer(const qq__xagg *x, xst *t, const th_hit *h) {
  if (!t->k) return;
  if (t->nh == t->k && th_cmp(x, t->sort_kw, h, &t->h[t->nh - 1]) >= 0) return;
  size_t i = t->nh < t->k ? t->nh++ : t->k - 1;
  while (i > 0 && th_cmp(x, t->sort_kw, h, &t->h[i - 1]) < 0) {
    t->h[i] = t->h[i - 1];
    i--;
  }
  t->h[i] = *h;
}

static qb_code top_hits_block(qq__agst *s, xst *t, const qi_segment *seg, uint64_t base, const uint32_t *docs,
                              const double *scores, size_t n) {
  const qq__xagg *x = s->a->x;
  const char *sf = x->nsort ? x->sort[0].field : "_score";
  double v[QQ_BLOCK_MAX];
  uint8_t pr[QQ_BLOCK_MAX];
  int by_field = strcmp(sf, "_score") && strcmp(sf, "_doc");
  if (by_field && t->smapped && !t->sort_kw) qi_dv_read_f64(seg, t->sfi.id, docs, n, v, pr);
  for (size_t i = 0; i < n; i++) {
    th_hit h;
    memset(&h, 0, sizeof h);
    h.score = scores && scores[i] == scores[i] ? scores[i] : NAN;
    h.seg = seg;
    h.doc = docs[i];
    h.gdoc = base + docs[i];
    if (h.score == h.score && h.score > t->max_score) t->max_score = h.score;
    t->total++;
    if (!by_field) {
      h.has = !strcmp(sf, "_score");
      h.v = h.score == h.score ? h.score : 0;
    } else if (t->sort_kw) {
      const uint32_t *ords;
      if (qi_dv_doc_ords(seg, t->sfi.id, docs[i], &ords)) {
        h.sv = qi_dv_ord_term(seg, t->sfi.id, ords[0], &h.svl);
        h.has = 1;
      }
    } else if (t->smapped) {
      h.has = pr[i];
      h.v = v[i];
    }
    th_offer(x, t, &h);
  }
  return QB_OK;
}

qb_code qq__x_collect(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base, const uint32_t *docs,
                      const double *scores, size_t n, qb_err *err) {
  xst *t = s->x;
  const qq__agg *a = s->a;
  double v[QQ_BLOCK_MAX], w[QQ_BLOCK_MAX];
  uint8_t pr[QQ_BLOCK_MAX], pw[QQ_BLOCK_MAX];
  qb_code rc;
  if (!t) return QB_OK;
  switch (a->kind) {
  case AG_CARDINALITY: return cardinality_block(st, s, t, seg, base, docs, scores, n, err);
  case AG_TOP_HITS: return top_hits_block(s, t, seg, base, docs, scores, n);
  case AG_WEIGHTED_AVG:
    if (!s->mapped || s->fi.dv == QI_DV_NONE || s->fi.dv == QI_DV_KEYWORD) memset(pr, 0, n);
    else qi_dv_read_f64(seg, s->fi.id, docs, n, v, pr);
    if (!s->mapped2) memset(pw, 0, n);
    else qi_dv_read_f64(seg, s->fi2.id, docs, n, w, pw);
    for (size_t i = 0; i < n; i++) {
      if (!pr[i] && a->x->vmissing) { v[i] = json_number_value(a->x->vmissing); pr[i] = 1; }
      if (!pw[i] && a->x->wmissing) { w[i] = json_number_value(a->x->wmissing); pw[i] = 1; }
      if (!pr[i] || !pw[i]) continue;
      t->sw += w[i];
      t->swv += w[i] * v[i];
      t->wn++;
    }
    return QB_OK;
  default: break;
  }
  if ((rc = qq__metric_values(st, s, seg, base, docs, scores, n, v, pr, err))) return rc;
  for (size_t i = 0; i < n; i++) {
    if (!pr[i]) continue;
    if (t->td) {
      if (qq__td_add(t->td, v[i], 1)) return nomem(err);
    } else if (a->kind == AG_EXTENDED_STATS) {
      qq__mstate *m = &s->m;
      m->count++;
      m->sum += v[i];
      if (v[i] < m->min) m->min = v[i];
      if (v[i] > m->max) m->max = v[i];
      t->sumsq += v[i] * v[i];
    }
  }
  return QB_OK;
}

qb_code qq__x_segment_done(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, qb_err *err) {
  (void)st;
  (void)seg;
  (void)err;
  xst *t = s->x;
  if (t && t->ordh) {
    qb_free(t->ordh, t->nordh * sizeof *t->ordh);
    t->ordh = NULL;
    t->nordh = 0;
    t->hseg = NULL;
  }
  return QB_OK;
}

/* ---- partials ----------------------------------------------------------------------------------- */

static json_t *th_hit_json(const qq__agst *s, const xst *t, const th_hit *h) {
  const qq__xagg *x = s->a->x;
  size_t idlen;
  const char *id = qi_segment_doc_id(h->seg, h->doc, &idlen);
  const char *sf = x->nsort ? x->sort[0].field : "_score";
  int by_score = !strcmp(sf, "_score");
  json_t *k = !h->has ? json_null() : h->sv ? json_stringn(h->sv, h->svl) : json_real(h->v);
  json_t *o = json_pack("{s:s, s:s%, s:o, s:o, s:I, s:I}", "_index", t->sh->index_name ? t->sh->index_name : "",
                        "_id", id ? id : "", id ? idlen : (size_t)0, "_score",
                        by_score && h->score == h->score ? json_real((float)h->score) : json_null(), "k", k, "g",
                        (json_int_t)h->gdoc, "sh", (json_int_t)t->sh->shard_id);
  if (!o) return NULL;
  if (x->nsort && !by_score) {
    json_t *sv = h->has ? (h->sv ? json_stringn(h->sv, h->svl) : json_real(h->v)) : json_null();
    if (!strcmp(sf, "_doc")) {
      json_decref(sv);
      sv = json_integer((json_int_t)h->gdoc);
    } else if (h->has && !h->sv && t->smapped && t->sfi.type != QI_DOUBLE && t->sfi.type != QI_FLOAT) {
      json_decref(sv);
      sv = json_integer((json_int_t)h->v);
    }
    if (json_object_set_new(o, "sort", json_pack("[o]", sv))) goto fail;
  }
  if (!(x->source && json_is_false(x->source))) {
    qb_buf b;
    qb_err e;
    qb_buf_init(&b);
    qb_err_clear(&e);
    if (!qi_snapshot_source(t->sh->snap, h->seg, h->doc, &b, &e)) {
      json_error_t je;
      json_t *src = qq__json_load(b.data, b.len, 0, &je);
      if (src && x->source && qq_source_apply(x->source, &src, &e)) {
        json_decref(src);
        src = NULL;
      }
      if (src && json_object_set_new(o, "_source", src)) {
        qb_buf_fini(&b);
        goto fail;
      }
    }
    qb_buf_fini(&b);
  }
  return o;
fail:
  json_decref(o);
  return NULL;
}

json_t *qq__x_partial(const qq__agst *s) {
  const xst *t = s->x;
  const qq__agg *a = s->a;
  if (!t) return json_object();
  switch (a->kind) {
  case AG_CARDINALITY: return json_pack("{s:o}", "hll", qq__hll_json(t->hll));
  case AG_PERCENTILES: case AG_PERCENTILE_RANKS: return json_pack("{s:o}", "td", qq__td_json(t->td));
  case AG_EXTENDED_STATS: {
    json_t *j = qq__mstate_json(&s->m, 0);
    if (j && json_object_set_new(j, "sum_sq", json_real(t->sumsq))) {
      json_decref(j);
      return NULL;
    }
    return j;
  }
  case AG_WEIGHTED_AVG: return json_pack("{s:f, s:f, s:I}", "sw", t->sw, "swv", t->swv, "n", (json_int_t)t->wn);
  case AG_TOP_HITS: {
    json_t *hits = json_array();
    json_t *o = json_pack("{s:I, s:o, s:o}", "total", (json_int_t)t->total, "max_score",
                          isfinite(t->max_score) ? json_real((float)t->max_score) : json_null(), "hits", hits);
    for (size_t i = 0; o && i < t->nh; i++) {
      json_t *h = th_hit_json(s, t, &t->h[i]);
      if (!h || json_array_append_new(hits, h)) {
        json_decref(o);
        return NULL;
      }
    }
    return o;
  }
  default: return json_object();
  }
}

/* ---- merge and render --------------------------------------------------------------------------- */

typedef struct msum {
  qq__mstate m;
  double sumsq, sw, swv;
  uint64_t wn, total;
  double max_score;
} msum;

static void sum_parts(const json_t *aparts, msum *r) {
  memset(r, 0, sizeof *r);
  r->m.min = INFINITY;
  r->m.max = -INFINITY;
  r->max_score = -INFINITY;
  for (size_t i = 0; i < json_array_size(aparts); i++) {
    const json_t *p = json_array_get(aparts, i);
    uint64_t c = (uint64_t)json_integer_value(json_object_get(p, "count"));
    if (c) {
      r->m.count += c;
      r->m.sum += json_number_value(json_object_get(p, "sum"));
      const json_t *mn = json_object_get(p, "min"), *mx = json_object_get(p, "max");
      if (json_is_number(mn) && json_number_value(mn) < r->m.min) r->m.min = json_number_value(mn);
      if (json_is_number(mx) && json_number_value(mx) > r->m.max) r->m.max = json_number_value(mx);
      r->sumsq += json_number_value(json_object_get(p, "sum_sq"));
    }
    r->sw += json_number_value(json_object_get(p, "sw"));
    r->swv += json_number_value(json_object_get(p, "swv"));
    r->wn += (uint64_t)json_integer_value(json_object_get(p, "n"));
    r->total += (uint64_t)json_integer_value(json_object_get(p, "total"));
    const json_t *ms = json_object_get(p, "max_score");
    if (json_is_number(ms) && json_number_value(ms) > r->max_score) r->max_score = json_number_value(ms);
  }
}

static qq__hll *merged_hll(const qq__agg *a, const json_t *aparts) {
  qq__hll *h = qq__hll_new(a->x->hll_p, a->x->threshold);
  for (size_t i = 0; h && i < json_array_size(aparts); i++)
    if (qq__hll_merge_json(h, json_object_get(json_array_get(aparts, i), "hll"))) {
      qq__hll_free(h);
      return NULL;
    }
  return h;
}

static qq__td *merged_td(const qq__agg *a, const json_t *aparts) {
  qq__td *t = qq__td_new(a->x->compression);
  for (size_t i = 0; t && i < json_array_size(aparts); i++)
    if (qq__td_merge_json(t, json_object_get(json_array_get(aparts, i), "td"))) {
      qq__td_free(t);
      return NULL;
    }
  return t;
}

typedef struct thm {
  const json_t *h;
} thm;

static int thm_cmp(const void *pa, const void *pb, void *ud) {
  const qq__agg *a = ud;
  const json_t *x = ((const thm *)pa)->h, *y = ((const thm *)pb)->h;
  const json_t *kx = json_object_get(x, "k"), *ky = json_object_get(y, "k");
  int c = 0;
  if (json_is_null(kx) != json_is_null(ky)) return json_is_null(kx) ? 1 : -1;
  if (!json_is_null(kx)) {
    if (json_is_string(kx) && json_is_string(ky)) c = strcmp(json_string_value(kx), json_string_value(ky));
    else {
      double p = json_number_value(kx), q = json_number_value(ky);
      c = p < q ? -1 : p > q;
    }
    c = c < 0 ? -1 : c > 0;
    if (a->x->nsort ? a->x->sort[0].desc : 1) c = -c;
  }
  if (c) return c;
  json_int_t sx = json_integer_value(json_object_get(x, "sh")), sy = json_integer_value(json_object_get(y, "sh"));
  if (sx != sy) return sx < sy ? -1 : 1;
  json_int_t gx = json_integer_value(json_object_get(x, "g")), gy = json_integer_value(json_object_get(y, "g"));
  return gx < gy ? -1 : gx > gy;
}

/* the best from+size hits of all the partials, best first (a new array; NULL: out of memory) */
static json_t *merged_hits(const qq__agg *a, const json_t *aparts, size_t skip, int strip) {
  size_t n = 0, keep = (size_t)a->x->from + a->x->size;
  for (size_t i = 0; i < json_array_size(aparts); i++) n += json_array_size(json_object_get(json_array_get(aparts, i), "hits"));
  thm *v = qb_malloc((n ? n : 1) * sizeof *v);
  json_t *out = json_array();
  if (!v || !out) goto fail;
  n = 0;
  for (size_t i = 0; i < json_array_size(aparts); i++) {
    const json_t *hs = json_object_get(json_array_get(aparts, i), "hits");
    for (size_t j = 0; j < json_array_size(hs); j++) v[n++].h = json_array_get(hs, j);
  }
  if (n) qsort_r(v, n, sizeof *v, thm_cmp, (void *)a);
  for (size_t i = skip; i < n && i < keep; i++) {
    json_t *h = strip ? json_deep_copy(v[i].h) : json_incref((json_t *)v[i].h);
    if (h && strip) {
      json_object_del(h, "k");
      json_object_del(h, "g");
      json_object_del(h, "sh");
    }
    if (!h || json_array_append_new(out, h)) goto fail;
  }
  qb_free(v, (n ? n : 1) * sizeof *v);
  return out;
fail:
  qb_free(v, (n ? n : 1) * sizeof *v);
  json_decref(out);
  return NULL;
}

json_t *qq__x_merge(const qq__agg *a, const json_t *aparts) {
  msum r;
  switch (a->kind) {
  case AG_CARDINALITY: {
    qq__hll *h = merged_hll(a, aparts);
    json_t *o = h ? json_pack("{s:o}", "hll", qq__hll_json(h)) : NULL;
    qq__hll_free(h);
    return o;
  }
  case AG_PERCENTILES: case AG_PERCENTILE_RANKS: {
    qq__td *t = merged_td(a, aparts);
    json_t *o = t ? json_pack("{s:o}", "td", qq__td_json(t)) : NULL;
    qq__td_free(t);
    return o;
  }
  case AG_EXTENDED_STATS: {
    sum_parts(aparts, &r);
    json_t *j = qq__mstate_json(&r.m, 0);
    if (j && json_object_set_new(j, "sum_sq", json_real(r.sumsq))) {
      json_decref(j);
      return NULL;
    }
    return j;
  }
  case AG_WEIGHTED_AVG:
    sum_parts(aparts, &r);
    return json_pack("{s:f, s:f, s:I}", "sw", r.sw, "swv", r.swv, "n", (json_int_t)r.wn);
  case AG_TOP_HITS: {
    sum_parts(aparts, &r);
    json_t *hits = merged_hits(a, aparts, 0, 0);
    return hits ? json_pack("{s:I, s:o, s:o}", "total", (json_int_t)r.total, "max_score",
                            isfinite(r.max_score) ? json_real(r.max_score) : json_null(), "hits", hits) : NULL;
  }
  default: return json_object();
  }
}

static json_t *num_or_null(int has, double v) { return has && isfinite(v) ? json_real(v) : json_null(); }

static json_t *render_pct(const qq__agg *a, const json_t *aparts) {
  qq__td *t = merged_td(a, aparts);
  const qq__xagg *x = a->x;
  if (!t) return NULL;
  int empty = qq__td_count(t) == 0;
  json_t *vals = x->keyed ? json_object() : json_array();
  json_t *o = json_pack("{s:o}", "values", vals);
  for (size_t i = 0; o && i < x->npercents; i++) {
    char key[64];
    qq__fmt_double(x->percents[i], key, sizeof key);
    double v = a->kind == AG_PERCENTILES ? qq__td_quantile(t, x->percents[i] / 100) : qq__td_cdf(t, x->percents[i]) * 100;
    json_t *vj = num_or_null(!empty, v);
    int bad = x->keyed ? json_object_set_new(vals, key, vj)
                       : json_array_append_new(vals, json_pack("{s:f, s:o}", "key", x->percents[i], "value", vj));
    if (bad) {
      json_decref(o);
      o = NULL;
    }
  }
  qq__td_free(t);
  return o;
}

json_t *qq__x_render(const qq__agg *a, const json_t *aparts, qb_err *err) {
  msum r;
  (void)err;
  switch (a->kind) {
  case AG_CARDINALITY: {
    qq__hll *h = merged_hll(a, aparts);
    json_t *o = h ? json_pack("{s:I}", "value", (json_int_t)qq__hll_count(h)) : NULL;
    qq__hll_free(h);
    return o;
  }
  case AG_PERCENTILES: case AG_PERCENTILE_RANKS: return render_pct(a, aparts);
  case AG_EXTENDED_STATS: {
    sum_parts(aparts, &r);
    uint64_t n = r.m.count;
    int has = n > 0;
    double avg = has ? r.m.sum / (double)n : 0;
    double var = has ? r.sumsq / (double)n - avg * avg : 0;
    if (var < 0) var = 0;
    double vs = n > 1 ? var * (double)n / (double)(n - 1) : has ? 0 : 0;
    double sd = sqrt(var), sds = sqrt(vs), sg = a->x->sigma;
    json_t *b = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "upper", num_or_null(has, avg + sg * sd), "lower",
                          num_or_null(has, avg - sg * sd), "upper_population", num_or_null(has, avg + sg * sd),
                          "lower_population", num_or_null(has, avg - sg * sd), "upper_sampling",
                          num_or_null(n > 1, avg + sg * sds), "lower_sampling", num_or_null(n > 1, avg - sg * sds));
    return json_pack("{s:I, s:o, s:o, s:o, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "count", (json_int_t)n, "min",
                     num_or_null(has, r.m.min), "max", num_or_null(has, r.m.max), "avg", num_or_null(has, avg), "sum",
                     r.m.sum, "sum_of_squares", num_or_null(has, r.sumsq), "variance", num_or_null(has, var),
                     "variance_population", num_or_null(has, var), "variance_sampling", num_or_null(n > 1, vs),
                     "std_deviation", num_or_null(has, sd), "std_deviation_population", num_or_null(has, sd),
                     "std_deviation_sampling", num_or_null(n > 1, sds), "std_deviation_bounds", b);
  }
  case AG_WEIGHTED_AVG:
    sum_parts(aparts, &r);
    return json_pack("{s:o}", "value", num_or_null(r.wn > 0 && r.sw != 0, r.swv / r.sw));
  case AG_TOP_HITS: {
    sum_parts(aparts, &r);
    json_t *hits = merged_hits(a, aparts, a->x->from, 1);
    const qq__xagg *x = a->x;
    int by_score = !x->nsort || !strcmp(x->sort[0].field, "_score");
    return hits ? json_pack("{s:{s:{s:I, s:s}, s:o, s:o}}", "hits", "total", "value", (json_int_t)r.total,
                            "relation", "eq", "max_score",
                            by_score && isfinite(r.max_score) ? json_real(r.max_score) : json_null(), "hits", hits)
                : NULL;
  }
  default: return json_object();
  }
}
