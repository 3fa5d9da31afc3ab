/* aggs_collect.c: aggregations on one shard. Bucket aggregations (terms over keyword ordinals
** per segment mapped to shard buckets, or numeric keys; histogram; date_histogram) with metric
** and bucket sub-aggregations, and the metrics avg/sum/min/max/stats/value_count over a field
** or a METRIC script, collected a block of matching docs at a time. The shard's result is the
** partial JSON whose shape aggs_merge.c defines (qq__mstate_json, internal.h); merging and
** rendering are aggs_merge.c's. Invariant: a shard keeps every bucket it saw (no shard_size
** cut), so the coordinator's merge is exact (doc_count_error_upper_bound is always 0). */
#include "aggs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef qq__mstate mstate;
typedef qq__bucket bucket;
typedef qq__agst agst;
typedef qq__keykind keykind;

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

static const char *agg_type_name(qq__agg_kind k) {
  static const char *const n[] = {"terms", "avg", "sum", "min", "max", "stats", "value_count",
                                  "histogram", "date_histogram", "cardinality", "percentiles",
                                  "percentile_ranks", "extended_stats", "weighted_avg", "top_hits",
                                  "range", "date_range", "filter", "filters", "missing", "global",
                                  "composite"};
  return k < QB_COUNTOF(n) ? n[k] : "pipeline";
}

/* a sub-aggregation with a state of its own in each bucket */
static int child_kind(qq__agg_kind k) { return !QQ__AGG_SIMPLE(k) && !QQ__AGG_PIPE(k); }
/* a field of type keyword may feed these */
static int keyword_ok(qq__agg_kind k) {
  return k == AG_TERMS || k == AG_VALUE_COUNT || k == AG_CARDINALITY || k == AG_MISSING || k == AG_TOP_HITS;
}

/* The new kinds' state of S (and a terms' compiled include/exclude) */
static qb_code x_any_init(qq__shard *sh, agst *s, qb_err *err) {
  qq__agg_kind k = s->a->kind;
  s->x = NULL;
  if (qq__agg_is_xbucket(k)) return qq__xb_init(sh, s, err);
  if (!QQ__AGG_SIMPLE(k) && !QQ__AGG_PIPE(k) && (!QQ__AGG_BUCKETS(k) || s->a->x)) return qq__x_init(sh, s, err);
  return QB_OK;
}

/* TEMPLATE: a sub-aggregation's template (its states are made per bucket from it) */
static qb_code init_one(qq__shard *sh, const qq__agg *a, agst *s, int template, qb_err *err) {
  s->a = a;
  s->m.min = INFINITY;
  s->m.max = -INFINITY;
  if (QQ__AGG_PIPE(a->kind)) return QB_OK;
  if (a->field) {
    s->mapped = !qi_snapshot_field(sh->snap, a->field, &s->fi);
    if (s->mapped && s->fi.type == QI_TEXT)
      return qb_fail(err, QB_INVAL, "Text fields are not optimised for operations that require per-document field data "
                     "like aggregations and sorting, so these operations are disabled by default. Please use a keyword "
                     "field instead. Alternatively, set fielddata=true on [%s] in order to load field data by "
                     "uninverting the inverted index.", a->field);
    if (s->mapped && s->fi.dv == QI_DV_KEYWORD && !keyword_ok(a->kind))
      return qb_fail(err, QB_INVAL, "Field [%s] of type [keyword] is not supported for aggregation [%s]", a->field,
                     agg_type_name(a->kind));
    if (s->mapped) {
      switch (s->fi.type) {
      case QI_KEYWORD: s->kk = KEY_STR; break;
      case QI_DOUBLE: case QI_FLOAT: s->kk = KEY_DOUBLE; break;
      case QI_DATE: s->kk = KEY_DATE; break;
      case QI_BOOLEAN: s->kk = KEY_BOOL; break;
      default: s->kk = KEY_LONG; break;
      }
      if (a->kind == AG_HISTOGRAM) s->kk = KEY_DOUBLE;
      if (a->kind == AG_DATE_HISTOGRAM) s->kk = KEY_DATE;
    }
  }
  if (a->nsubs) {
    if (!(s->subs = qb_arena_array(sh->ar, a->nsubs, sizeof *s->subs)) ||
        !(s->vals = qb_arena_array(sh->ar, a->nsubs * QQ_BLOCK_MAX, sizeof *s->vals)) ||
        !(s->pres = qb_arena_array(sh->ar, a->nsubs * QQ_BLOCK_MAX, 1)))
      return nomem(err);
    for (size_t i = 0; i < a->nsubs; i++) {
      qb_code rc = init_one(sh, &a->subs[i], &s->subs[i], 1, err);
      if (rc) return rc;
      if (child_kind(a->subs[i].kind)) s->has_bucket_subs = 1;
    }
  }
  return template ? QB_OK : x_any_init(sh, s, err);
}

qb_code qq__aggs_new(qq_request *req, qq__shard *sh, qq__aggs_state **out, qb_err *err) {
  qq__aggs_state *st = qb_arena_alloc(sh->ar, sizeof *st);
  *out = NULL;
  if (!st || !(st->ag = qb_arena_array(sh->ar, req->naggs, sizeof *st->ag))) return nomem(err);
  st->sh = sh;
  st->n = req->naggs;
  for (size_t i = 0; i < st->n; i++) {
    qb_code rc = init_one(sh, &req->aggs[i], &st->ag[i], 0, err);
    if (rc) {
      qq__aggs_free(st);
      return rc;
    }
  }
  *out = st;
  return QB_OK;
}

static void free_one(agst *s) {
  if (!s->a) return; /* never initialised: an earlier aggregation's init failed */
  for (size_t i = 0; s->has_bucket_subs && i < s->nb; i++)
    for (size_t k = 0; s->b[i].child && k < s->a->nsubs; k++)
      if (child_kind(s->a->subs[k].kind)) free_one(&s->b[i].child[k]);
  if (qq__agg_is_xbucket(s->a->kind)) qq__xb_free(s);
  else if (s->x) qq__x_free(s);
  s->x = NULL;
  qb_free(s->b, s->capb * sizeof *s->b);
  qb_free(s->slots, s->nslots * sizeof *s->slots);
  qb_free(s->ord2b, s->nords * sizeof *s->ord2b);
  s->b = NULL;
  s->slots = NULL;
  s->ord2b = NULL;
}

void qq__aggs_free(qq__aggs_state *st) {
  if (!st) return;
  for (size_t i = 0; i < st->n; i++) free_one(&st->ag[i]);
  qq__fcache_free(st);
}

/* Metric values of a block: VALS/PRES (n each) from the field or the script */
qb_code qq__metric_values(qq__aggs_state *st, agst *s, const qi_segment *seg, uint64_t base,
                             const uint32_t *docs, const double *scores, size_t n, double *vals,
                             uint8_t *pres, qb_err *err) {
  const qq__agg *a = s->a;
  if (a->script) {
    qb_code rc = qq__script_run(a->script, st->sh, seg, (uint32_t)base, docs, scores, n, err);
    if (rc) return rc;
    memcpy(vals, a->script->res, n * sizeof *vals);
    memcpy(pres, a->script->res_present, n);
  } else if (!s->mapped || s->fi.dv == QI_DV_NONE) {
    memset(pres, 0, n);
  } else if (s->fi.dv == QI_DV_KEYWORD) { /* value_count: docs with a value count their values */
    for (size_t i = 0; i < n; i++) {
      const uint32_t *o;
      uint32_t c = qi_dv_doc_ords(seg, s->fi.id, docs[i], &o);
      pres[i] = c ? 1 : 0;
      vals[i] = c;
    }
    return QB_OK;
  } else {
    qi_dv_read_f64(seg, s->fi.id, docs, n, vals, pres);
  }
  if (a->missing) {
    double mv = 0;
    if (json_is_number(a->missing)) mv = json_number_value(a->missing);
    else if (json_is_string(a->missing) && s->fi.type == QI_DATE) {
      int64_t ms;
      if (qq__parse_date(json_string_value(a->missing), &ms) == QB_OK) mv = (double)ms;
    }
    for (size_t i = 0; i < n; i++)
      if (!pres[i]) {
        vals[i] = mv;
        pres[i] = 1;
      }
  }
  return QB_OK;
}

static inline void madd(mstate *m, double v) {
  m->count++;
  m->sum += v;
  if (v < m->min) m->min = v;
  if (v > m->max) m->max = v;
}

static uint64_t hkey(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
  return h ^ (h >> 29);
}

static int bucket_eq(const agst *s, const bucket *b, const char *k, size_t kl, int64_t ik, double dk) {
  if (s->kk == KEY_STR) return b->klen == kl && !memcmp(b->key, k, kl);
  if (s->kk == KEY_DOUBLE) return b->dkey == dk || (b->dkey != b->dkey && dk != dk);
  return b->ikey == ik;
}

static uint64_t bucket_hash(const agst *s, const char *k, size_t kl, int64_t ik, double dk) {
  if (s->kk == KEY_STR) return hkey(k, kl);
  if (s->kk == KEY_DOUBLE) {
    if (dk == 0) dk = 0; /* -0 and 0 are one key */
    return hkey(&dk, sizeof dk);
  }
  return hkey(&ik, sizeof ik);
}

/* Find or add the bucket of a key; returns its index or -1 when out of memory */
long qq__bucket_get(qq__aggs_state *st, agst *s, const char *k, size_t kl, int64_t ik, double dk) {
  if (s->nb * 2 >= s->nslots) { /* grow the table */
    size_t ns = s->nslots ? s->nslots * 2 : 64;
    uint32_t *sl = qb_calloc(ns, sizeof *sl);
    if (!sl) return -1;
    for (size_t i = 0; i < s->nb; i++) {
      const bucket *b = &s->b[i];
      size_t h = bucket_hash(s, b->key, b->klen, b->ikey, b->dkey) & (ns - 1);
      while (sl[h]) h = (h + 1) & (ns - 1);
      sl[h] = (uint32_t)i + 1;
    }
    qb_free(s->slots, s->nslots * sizeof *s->slots);
    s->slots = sl;
    s->nslots = ns;
  }
  size_t h = bucket_hash(s, k, kl, ik, dk) & (s->nslots - 1);
  while (s->slots[h]) {
    bucket *b = &s->b[s->slots[h] - 1];
    if (bucket_eq(s, b, k, kl, ik, dk)) return (long)(s->slots[h] - 1);
    h = (h + 1) & (s->nslots - 1);
  }
  if (s->nb == s->capb) {
    size_t nc = s->capb ? s->capb * 2 : 32;
    bucket *nb = qb_realloc(s->b, s->capb * sizeof *nb, nc * sizeof *nb);
    if (!nb) return -1;
    s->b = nb;
    s->capb = nc;
  }
  bucket *b = &s->b[s->nb];
  memset(b, 0, sizeof *b);
  if (s->kk == KEY_STR) {
    if (!(b->key = qb_arena_strndup(st->sh->ar, k, kl))) return -1;
    b->klen = kl;
  }
  b->ikey = ik;
  b->dkey = dk;
  if (s->a->nsubs) {
    if (!(b->subs = qb_arena_array(st->sh->ar, s->a->nsubs, sizeof *b->subs))) return -1;
    for (size_t i = 0; i < s->a->nsubs; i++) {
      b->subs[i].min = INFINITY;
      b->subs[i].max = -INFINITY;
    }
  }
  if (s->has_bucket_subs) {
    if (!(b->child = qb_arena_array(st->sh->ar, s->a->nsubs, sizeof *b->child))) return -1;
    for (size_t k = 0; k < s->a->nsubs; k++) {
      if (!child_kind(s->a->subs[k].kind)) continue;
      agst *c = &b->child[k];
      *c = s->subs[k]; /* the template: field, key kind, its own templates and scratch */
      c->b = NULL;
      c->nb = c->capb = 0;
      c->slots = NULL;
      c->nslots = 0;
      c->ord2b = NULL;
      c->nords = 0;
      c->m = (mstate){0, 0, INFINITY, -INFINITY};
      c->nested = 1;
      c->x = NULL;
      qb_err e;
      qb_err_clear(&e);
      if (x_any_init(st->sh, c, &e)) return -1;
    }
  }
  s->slots[h] = (uint32_t)s->nb + 1;
  return (long)s->nb++;
}

static qb_code collect_terms(qq__aggs_state *st, agst *s, const qi_segment *seg, uint64_t base,
                             const uint32_t *docs, const double *scores, size_t n, qb_err *err);

/* Doc DOCS[I] falls in bucket BI: count it, feed the metric subs (values computed for the block)
** and the bucket subs (this one doc) */
int qq__agg_doc_has_value(const qq__agst *s, const qi_segment *seg, uint32_t doc) {
  if (s->mapped && s->fi.dv == QI_DV_KEYWORD) {
    const uint32_t *o;
    return qi_dv_doc_ords(seg, s->fi.id, doc, &o) > 0;
  }
  if (s->mapped && s->fi.dv != QI_DV_NONE) {
    double v;
    uint8_t pr;
    qi_dv_read_f64(seg, s->fi.id, &doc, 1, &v, &pr);
    return pr;
  }
  return 0;
}

qb_code qq__bucket_hit(qq__aggs_state *st, agst *s, long bi, size_t i, const qi_segment *seg,
                          uint64_t base, const uint32_t *docs, const double *scores, qb_err *err) {
  bucket *b = &s->b[bi];
  b->doc_count++;
  for (size_t k = 0; k < s->a->nsubs; k++) {
    if (QQ__AGG_PIPE(s->a->subs[k].kind)) continue;
    if (b->child && child_kind(s->a->subs[k].kind)) {
      qb_code rc = qq__collect_agg(st, &b->child[k], seg, base, docs + i, scores ? scores + i : NULL, 1, err);
      if (rc) return rc;
    } else if (s->pres[k * QQ_BLOCK_MAX + i]) {
      madd(&b->subs[k], s->vals[k * QQ_BLOCK_MAX + i]);
    }
  }
  return QB_OK;
}

static qb_code collect_terms(qq__aggs_state *st, agst *s, const qi_segment *seg, uint64_t base,
                             const uint32_t *docs, const double *scores, size_t n, qb_err *err) {
  qb_code rc;
  const qq__xagg *x = s->a->x;
  if (!s->mapped || s->fi.dv == QI_DV_NONE) {
    if (!x || !x->tmissing) return QB_OK;
  }
  if ((rc = qq__bucket_subs_values(st, s, seg, base, docs, scores, n, err))) return rc;
  if (x && x->tmissing) { /* terms "missing": docs without a value have a bucket of their own */
    for (size_t i = 0; i < n; i++) {
      if (qq__agg_doc_has_value(s, seg, docs[i])) continue;
      const json_t *mv = x->tmissing;
      long bi;
      if (s->kk == KEY_STR || !s->mapped) {
        char nb[64];
        const char *t = json_is_string(mv) ? json_string_value(mv) : nb;
        if (!json_is_string(mv)) snprintf(nb, sizeof nb, "%g", json_number_value(mv));
        bi = qq__bucket_get(st, s, t, strlen(t), 0, 0);
      } else if (s->kk == KEY_DOUBLE) {
        bi = qq__bucket_get(st, s, NULL, 0, 0, json_number_value(mv));
      } else {
        bi = qq__bucket_get(st, s, NULL, 0, (int64_t)json_number_value(mv), 0);
      }
      if (bi < 0) return nomem(err);
      if ((rc = qq__bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) return rc;
    }
    if (!s->mapped || s->fi.dv == QI_DV_NONE) return QB_OK;
  }
  if (s->kk == KEY_STR && s->nested) { /* one doc at a time: keys by string */
    for (size_t i = 0; i < n; i++) {
      const uint32_t *ords;
      uint32_t c = qi_dv_doc_ords(seg, s->fi.id, docs[i], &ords);
      for (uint32_t j = 0; j < c; j++) {
        size_t len;
        const char *t = qi_dv_ord_term(seg, s->fi.id, ords[j], &len);
        if (x && !qq__terms_keep(s, t, len)) continue;
        long bi = qq__bucket_get(st, s, t, len, 0, 0);
        if (bi < 0) return nomem(err);
        if ((rc = qq__bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) return rc;
      }
    }
    return QB_OK;
  }
  if (s->kk == KEY_STR) {
    if (!s->ord2b) {
      uint32_t no = qi_dv_ord_count(seg, s->fi.id);
      if (!(s->ord2b = qb_malloc((no ? no : 1) * sizeof *s->ord2b))) return nomem(err);
      memset(s->ord2b, 0xff, (no ? no : 1) * sizeof *s->ord2b);
      s->nords = no ? no : 1;
    }
    for (size_t i = 0; i < n; i++) {
      const uint32_t *ords;
      uint32_t c = qi_dv_doc_ords(seg, s->fi.id, docs[i], &ords);
      for (uint32_t j = 0; j < c; j++) {
        uint32_t o = ords[j];
        if (o >= s->nords) continue;
        if (s->ord2b[o] == -2) continue; /* left out by include/exclude */
        if (s->ord2b[o] < 0) {
          size_t len;
          const char *t = qi_dv_ord_term(seg, s->fi.id, o, &len);
          if (x && !qq__terms_keep(s, t, len)) {
            s->ord2b[o] = -2;
            continue;
          }
          long bi = qq__bucket_get(st, s, t, len, 0, 0);
          if (bi < 0) return nomem(err);
          s->ord2b[o] = (int32_t)bi;
        }
        if ((rc = qq__bucket_hit(st, s, s->ord2b[o], i, seg, base, docs, scores, err))) return rc;
      }
    }
    return QB_OK;
  }
  uint8_t pr[QQ_BLOCK_MAX];
  const qq__agg *a = s->a;
  if (s->kk == KEY_DOUBLE) {
    double v[QQ_BLOCK_MAX];
    qi_dv_read_f64(seg, s->fi.id, docs, n, v, pr);
    for (size_t i = 0; i < n; i++) {
      if (!pr[i]) continue;
      double key = v[i];
      if (a->kind == AG_HISTOGRAM) /* Elasticsearch's rounding */
        key = floor((key - a->offset) / a->interval) * a->interval + a->offset;
      long bi = qq__bucket_get(st, s, NULL, 0, 0, key);
      if (bi < 0) return nomem(err);
      if ((rc = qq__bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) return rc;
    }
  } else {
    int64_t v[QQ_BLOCK_MAX];
    qi_dv_read_i64(seg, s->fi.id, docs, n, v, pr);
    for (size_t i = 0; i < n; i++) {
      if (!pr[i]) continue;
      int64_t key = v[i];
      if (a->kind == AG_DATE_HISTOGRAM && x && (x->tz || x->offset_ms)) {
        key = qq__tz_floor(x->tz, key, a->cal_unit, (int64_t)a->interval, x->offset_ms);
      } else if (a->kind == AG_DATE_HISTOGRAM) {
        if (a->cal_unit) key = qq__date_floor(key, a->cal_unit);
        else {
          int64_t iv = (int64_t)a->interval;
          key = (key >= 0 ? key / iv : -((-key + iv - 1) / iv)) * iv;
        }
      }
      long bi = qq__bucket_get(st, s, NULL, 0, key, 0);
      if (bi < 0) return nomem(err);
      if ((rc = qq__bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) return rc;
    }
  }
  return QB_OK;
}

qb_code qq__bucket_subs_values(qq__aggs_state *st, agst *s, const qi_segment *seg, uint64_t base,
                               const uint32_t *docs, const double *scores, size_t n, qb_err *err) {
  qb_code rc;
  for (size_t k = 0; k < s->a->nsubs; k++)
    if (QQ__AGG_SIMPLE(s->a->subs[k].kind) &&
        (rc = qq__metric_values(st, &s->subs[k], seg, base, docs, scores, n, s->vals + k * QQ_BLOCK_MAX,
                                s->pres + k * QQ_BLOCK_MAX, err)))
      return rc;
  return QB_OK;
}

qb_code qq__collect_agg(qq__aggs_state *st, agst *s, const qi_segment *seg, uint64_t base,
                        const uint32_t *docs, const double *scores, size_t n, qb_err *err) {
  double vals[QQ_BLOCK_MAX];
  uint8_t pres[QQ_BLOCK_MAX];
  qb_code rc;
  if (QQ__AGG_PIPE(s->a->kind)) return QB_OK;
  if (QQ__AGG_BUCKETS(s->a->kind)) return collect_terms(st, s, seg, base, docs, scores, n, err);
  if (qq__agg_is_xbucket(s->a->kind)) return qq__xb_collect(st, s, seg, base, docs, scores, n, err);
  if (!QQ__AGG_SIMPLE(s->a->kind)) return qq__x_collect(st, s, seg, base, docs, scores, n, err);
  if ((rc = qq__metric_values(st, s, seg, base, docs, scores, n, vals, pres, err))) return rc;
  if (s->a->kind == AG_VALUE_COUNT) {
    for (size_t j = 0; j < n; j++)
      if (pres[j]) s->m.count += s->fi.dv == QI_DV_KEYWORD && !s->a->script ? (uint64_t)vals[j] : 1;
  } else {
    for (size_t j = 0; j < n; j++)
      if (pres[j]) madd(&s->m, vals[j]);
  }
  return QB_OK;
}

qb_code qq__aggs_collect(qq__aggs_state *st, const qi_segment *seg, uint32_t seg_index, uint64_t base,
                         const uint32_t *docs, const double *scores, size_t n, qb_err *err) {
  qb_code rc;
  (void)seg_index;
  for (size_t i = 0; i < st->n; i++)
    if ((rc = qq__collect_agg(st, &st->ag[i], seg, base, docs, scores, n, err))) return rc;
  return QB_OK;
}

qb_code qq__aggs_segment_done(qq__aggs_state *st, const qi_segment *seg, qb_err *err) {
  qb_code rc;
  for (size_t i = 0; i < st->n; i++) {
    agst *s = &st->ag[i];
    if (qq__agg_is_xbucket(s->a->kind) && (rc = qq__xb_segment_done(st, s, seg, err))) return rc;
    if (s->x && !qq__agg_is_xbucket(s->a->kind) && (rc = qq__x_segment_done(st, s, seg, err))) return rc;
    if (s->a->kind == AG_TERMS && s->a->min_doc_count == 0 && s->mapped && s->fi.dv == QI_DV_KEYWORD) {
      /* min_doc_count 0: every term of the segment has a bucket, matched or not */
      uint32_t no = qi_dv_ord_count(seg, s->fi.id);
      for (uint32_t o = 0; o < no; o++) {
        size_t len;
        const char *t = qi_dv_ord_term(seg, s->fi.id, o, &len);
        if (s->a->x && !qq__terms_keep(s, t, len)) continue;
        if (qq__bucket_get(st, s, t, len, 0, 0) < 0) return nomem(err);
      }
    }
    qb_free(s->ord2b, s->nords * sizeof *s->ord2b);
    s->ord2b = NULL;
    s->nords = 0;
  }
  qq__fcache_free(st); /* the filters' matches were this segment's */
  return QB_OK;
}

/* ---- partials ------------------------------------------------------------------------------------ */

static json_t *mstate_json(const agst *s, const mstate *m) {
  return qq__mstate_json(m, s->mapped && !s->a->script && s->fi.type == QI_DATE);
}

static const char *kind_name(keykind k) {
  static const char *const n[] = {"string", "long", "double", "date", "boolean"};
  return n[k];
}

static json_t *key_json(const agst *s, const bucket *b) {
  switch (s->kk) {
  case KEY_STR: return json_stringn(b->key, b->klen);
  case KEY_DOUBLE: return json_real(b->dkey);
  default: return json_integer(b->ikey);
  }
}

/* The partial of one aggregation state: a metric's mstate, or the buckets with their subs */
json_t *qq__agg_partial(const agst *s) {
  if (qq__agg_is_xbucket(s->a->kind)) return qq__xb_partial(s);
  if (!QQ__AGG_SIMPLE(s->a->kind) && !QQ__AGG_BUCKETS(s->a->kind)) return qq__x_partial(s);
  if (!QQ__AGG_BUCKETS(s->a->kind)) return mstate_json(s, &s->m);
  return qq__buckets_partial(s, kind_name(s->kk));
}

json_t *qq__buckets_partial(const agst *s, const char *kind) {
  json_t *bs = json_array();
  json_t *aj = json_pack("{s:s, s:o}", "kind", kind, "buckets", bs);
  for (size_t k = 0; aj && k < s->nb; k++) {
    const bucket *b = &s->b[k];
    json_t *bj = json_pack("{s:o, s:I}", "key", key_json(s, b), "doc_count", (json_int_t)b->doc_count);
    json_t *sj = s->a->nsubs ? json_object() : NULL;
    int bad = !bj || json_array_append_new(bs, bj) || (s->a->nsubs && (!sj || json_object_set_new(bj, "subs", sj)));
    for (size_t k2 = 0; !bad && k2 < s->a->nsubs; k2++) {
      if (QQ__AGG_PIPE(s->a->subs[k2].kind)) continue;
      json_t *v = b->child && child_kind(s->a->subs[k2].kind) ? qq__agg_partial(&b->child[k2])
                                                               : mstate_json(&s->subs[k2], &b->subs[k2]);
      bad = !v || json_object_set_new(sj, s->a->subs[k2].name, v);
    }
    if (bad) {
      json_decref(aj);
      return NULL;
    }
  }
  return aj;
}

qb_code qq__aggs_partial(qq__aggs_state *st, json_t **out, qb_err *err) {
  json_t *o = json_object();
  *out = NULL;
  if (!o) return nomem(err);
  for (size_t i = 0; i < st->n; i++) {
    if (QQ__AGG_PIPE(st->ag[i].a->kind)) continue;
    json_t *aj = qq__agg_partial(&st->ag[i]);
    if (!aj || json_object_set_new(o, st->ag[i].a->name, aj)) {
      json_decref(o);
      return nomem(err);
    }
  }
  *out = o;
  return QB_OK;
}
