/* aggs_collect.c: aggregations on one shard. Bucket aggregations (terms over keyword ordinals
** per segment mapped to shard buckets, or numeric keys; histogram; date_histogram) with metric
** and bucket sub-aggregations, and the metrics avg/sum/min/max/stats/value_count over a field
** or a METRIC script, collected a block of matching docs at a time. The shard's result is the
** partial JSON whose shape aggs_merge.c defines (qq__mstate_json, internal.h); merging and
** rendering are aggs_merge.c's. Invariant: a shard keeps every bucket it saw (no shard_size
** cut), so the coordinator's merge is exact (doc_count_error_upper_bound is always 0). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef qq__mstate mstate;

typedef struct bucket {
  const char *key; /* keyword: bytes (arena) */
  size_t klen;
  int64_t ikey;    /* long/date/boolean */
  double dkey;     /* double */
  uint64_t doc_count;
  mstate *subs;    /* nsubs: the metric sub-aggregations */
  struct agst *child; /* nsubs: the bucket sub-aggregations' states (NULL when there are none) */
} bucket;

typedef enum { KEY_STR, KEY_LONG, KEY_DOUBLE, KEY_DATE, KEY_BOOL } keykind;

typedef struct agst {
  const qq__agg *a;
  qi_field_info fi;
  int mapped;
  mstate m;
  /* terms */
  keykind kk;
  bucket *b;
  size_t nb, capb;
  uint32_t *slots; /* bucket index + 1, open addressing */
  size_t nslots;
  int32_t *ord2b;  /* current segment: ordinal -> bucket, -1 = not yet */
  uint32_t nords;
  struct agst *subs;   /* templates: metric subs read their field through these; bucket subs
                       ** are copied into each bucket's child states */
  double *vals;    /* per sub: QQ_BLOCK_MAX values */
  uint8_t *pres;
  int has_bucket_subs;
  int nested;      /* a child state (fed one doc at a time): keyword keys by string, no ord map */
} agst;

struct qq__aggs_state {
  qq__shard *sh;
  agst *ag;
  size_t n;
};

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

static const char *agg_type_name(qq__agg_kind k) {
  static const char *const n[] = {"terms", "avg", "sum", "min", "max", "stats", "value_count",
                                  "histogram", "date_histogram"};
  return n[k];
}

static qb_code init_one(qq__shard *sh, const qq__agg *a, agst *s, qb_err *err) {
  s->a = a;
  s->m.min = INFINITY;
  s->m.max = -INFINITY;
  if (a->field) {
    s->mapped = !qi_snapshot_field(sh->snap, a->field, &s->fi);
    if (s->mapped && s->fi.type == QI_TEXT)
      return qb_fail(err, QB_INVAL, "Text fields are not optimised for operations that require per-document field data "
                     "like aggregations and sorting, so these operations are disabled by default. Please use a keyword "
                     "field instead. Alternatively, set fielddata=true on [%s] in order to load field data by "
                     "uninverting the inverted index.", a->field);
    if (s->mapped && s->fi.dv == QI_DV_KEYWORD && a->kind != AG_TERMS && a->kind != AG_VALUE_COUNT)
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
      qb_code rc = init_one(sh, &a->subs[i], &s->subs[i], err);
      if (rc) return rc;
      if (QQ__AGG_BUCKETS(a->subs[i].kind)) s->has_bucket_subs = 1;
    }
  }
  return QB_OK;
}

qb_code qq__aggs_new(qq_request *req, qq__shard *sh, qq__aggs_state **out, qb_err *err) {
  qq__aggs_state *st = qb_arena_alloc(sh->ar, sizeof *st);
  *out = NULL;
  if (!st || !(st->ag = qb_arena_array(sh->ar, req->naggs, sizeof *st->ag))) return nomem(err);
  st->sh = sh;
  st->n = req->naggs;
  for (size_t i = 0; i < st->n; i++) {
    qb_code rc = init_one(sh, &req->aggs[i], &st->ag[i], err);
    if (rc) {
      qq__aggs_free(st);
      return rc;
    }
  }
  *out = st;
  return QB_OK;
}

static void free_one(agst *s) {
  for (size_t i = 0; s->has_bucket_subs && i < s->nb; i++)
    for (size_t k = 0; s->b[i].child && k < s->a->nsubs; k++)
      if (QQ__AGG_BUCKETS(s->a->subs[k].kind)) free_one(&s->b[i].child[k]);
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
}

/* Metric values of a block: VALS/PRES (n each) from the field or the script */
static qb_code metric_values(qq__aggs_state *st, agst *s, const qi_segment *seg, uint64_t base,
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
static long bucket_get(qq__aggs_state *st, agst *s, const char *k, size_t kl, int64_t ik, double dk) {
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
      if (!QQ__AGG_BUCKETS(s->a->subs[k].kind)) continue;
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
    }
  }
  s->slots[h] = (uint32_t)s->nb + 1;
  return (long)s->nb++;
}

static qb_code collect_terms(qq__aggs_state *st, agst *s, const qi_segment *seg, uint64_t base,
                             const uint32_t *docs, const double *scores, size_t n, qb_err *err);

/* Doc DOCS[I] falls in bucket BI: count it, feed the metric subs (values computed for the block)
** and the bucket subs (this one doc) */
static qb_code bucket_hit(qq__aggs_state *st, agst *s, long bi, size_t i, const qi_segment *seg,
                          uint64_t base, const uint32_t *docs, const double *scores, qb_err *err) {
  bucket *b = &s->b[bi];
  b->doc_count++;
  for (size_t k = 0; k < s->a->nsubs; k++) {
    if (b->child && QQ__AGG_BUCKETS(s->a->subs[k].kind)) {
      qb_code rc = collect_terms(st, &b->child[k], seg, base, docs + i, scores ? scores + i : NULL, 1, err);
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
  if (!s->mapped || s->fi.dv == QI_DV_NONE) return QB_OK;
  for (size_t k = 0; k < s->a->nsubs; k++)
    if (!QQ__AGG_BUCKETS(s->a->subs[k].kind) &&
        (rc = metric_values(st, &s->subs[k], seg, base, docs, scores, n, s->vals + k * QQ_BLOCK_MAX,
                            s->pres + k * QQ_BLOCK_MAX, err)))
      return rc;
  if (s->kk == KEY_STR && s->nested) { /* one doc at a time: keys by string */
    for (size_t i = 0; i < n; i++) {
      const uint32_t *ords;
      uint32_t c = qi_dv_doc_ords(seg, s->fi.id, docs[i], &ords);
      for (uint32_t j = 0; j < c; j++) {
        size_t len;
        const char *t = qi_dv_ord_term(seg, s->fi.id, ords[j], &len);
        long bi = bucket_get(st, s, t, len, 0, 0);
        if (bi < 0) return nomem(err);
        if ((rc = bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) return rc;
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
        if (s->ord2b[o] < 0) {
          size_t len;
          const char *t = qi_dv_ord_term(seg, s->fi.id, o, &len);
          long bi = bucket_get(st, s, t, len, 0, 0);
          if (bi < 0) return nomem(err);
          s->ord2b[o] = (int32_t)bi;
        }
        if ((rc = bucket_hit(st, s, s->ord2b[o], i, seg, base, docs, scores, err))) return rc;
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
      long bi = bucket_get(st, s, NULL, 0, 0, key);
      if (bi < 0) return nomem(err);
      if ((rc = bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) return rc;
    }
  } else {
    int64_t v[QQ_BLOCK_MAX];
    qi_dv_read_i64(seg, s->fi.id, docs, n, v, pr);
    for (size_t i = 0; i < n; i++) {
      if (!pr[i]) continue;
      int64_t key = v[i];
      if (a->kind == AG_DATE_HISTOGRAM) {
        if (a->cal_unit) key = qq__date_floor(key, a->cal_unit);
        else {
          int64_t iv = (int64_t)a->interval;
          key = (key >= 0 ? key / iv : -((-key + iv - 1) / iv)) * iv;
        }
      }
      long bi = bucket_get(st, s, NULL, 0, key, 0);
      if (bi < 0) return nomem(err);
      if ((rc = bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) return rc;
    }
  }
  return QB_OK;
}

qb_code qq__aggs_collect(qq__aggs_state *st, const qi_segment *seg, uint32_t seg_index, uint64_t base,
                         const uint32_t *docs, const double *scores, size_t n, qb_err *err) {
  double vals[QQ_BLOCK_MAX];
  uint8_t pres[QQ_BLOCK_MAX];
  qb_code rc;
  (void)seg_index;
  for (size_t i = 0; i < st->n; i++) {
    agst *s = &st->ag[i];
    if (QQ__AGG_BUCKETS(s->a->kind)) {
      if ((rc = collect_terms(st, s, seg, base, docs, scores, n, err))) return rc;
      continue;
    }
    if ((rc = metric_values(st, s, seg, base, docs, scores, n, vals, pres, err))) return rc;
    if (s->a->kind == AG_VALUE_COUNT) {
      for (size_t j = 0; j < n; j++)
        if (pres[j]) s->m.count += s->fi.dv == QI_DV_KEYWORD && !s->a->script ? (uint64_t)vals[j] : 1;
    } else {
      for (size_t j = 0; j < n; j++)
        if (pres[j]) madd(&s->m, vals[j]);
    }
  }
  return QB_OK;
}

qb_code qq__aggs_segment_done(qq__aggs_state *st, const qi_segment *seg, qb_err *err) {
  (void)seg;
  (void)err;
  for (size_t i = 0; i < st->n; i++) {
    agst *s = &st->ag[i];
    qb_free(s->ord2b, s->nords * sizeof *s->ord2b);
    s->ord2b = NULL;
    s->nords = 0;
  }
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
static json_t *agg_partial(const agst *s) {
  if (!QQ__AGG_BUCKETS(s->a->kind)) return mstate_json(s, &s->m);
  json_t *bs = json_array();
  json_t *aj = json_pack("{s:s, s:o}", "kind", kind_name(s->kk), "buckets", bs);
  for (size_t k = 0; aj && k < s->nb; k++) {
    const bucket *b = &s->b[k];
    json_t *bj = json_pack("{s:o, s:I}", "key", key_json(s, b), "doc_count", (json_int_t)b->doc_count);
    json_t *sj = s->a->nsubs ? json_object() : NULL;
    int bad = !bj || json_array_append_new(bs, bj) || (s->a->nsubs && (!sj || json_object_set_new(bj, "subs", sj)));
    for (size_t k2 = 0; !bad && k2 < s->a->nsubs; k2++) {
      json_t *v = b->child && QQ__AGG_BUCKETS(s->a->subs[k2].kind) ? agg_partial(&b->child[k2])
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
    json_t *aj = agg_partial(&st->ag[i]);
    if (!aj || json_object_set_new(o, st->ag[i].a->name, aj)) {
      json_decref(o);
      return nomem(err);
    }
  }
  *out = o;
  return QB_OK;
}
