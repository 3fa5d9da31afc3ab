/* aggs.c: aggregations. On a shard: terms (keyword ordinals per segment mapped to shard buckets,
** or numeric keys) with metric sub-aggregations, and the metrics avg/sum/min/max/stats/
** value_count over a field or a METRIC script, collected a block of matching docs at a time.
** A shard's result is a partial JSON (count/sum/min/max per metric; every bucket of a terms
** agg, so the merge is exact: doc_count_error_upper_bound is always 0). The coordinator merges
** partials and renders Elasticsearch's response shapes. */
#define _GNU_SOURCE /* qsort_r */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mstate {
  uint64_t count;
  double sum, min, max;
} mstate;

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
  /* value_count counts without values: min/max stay infinite there, and JSON has no infinity */
  json_t *j = json_pack("{s:I, s:f, s:o, s:o}", "count", (json_int_t)m->count, "sum", isfinite(m->sum) ? m->sum : 0.0,
                        "min", m->count && isfinite(m->min) ? json_real(m->min) : json_null(), "max",
                        m->count && isfinite(m->max) ? json_real(m->max) : json_null());
  if (j && s->mapped && !s->a->script && s->fi.type == QI_DATE && json_object_set_new(j, "date", json_true())) {
    json_decref(j);
    return NULL;
  }
  return j;
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

/* ---- merge + render -------------------------------------------------------------------------------- */

static void mmerge(mstate *m, const json_t *p, int *is_date) {
  if (!json_is_object(p)) return;
  if (json_is_true(json_object_get(p, "date"))) *is_date = 1;
  uint64_t c = (uint64_t)json_integer_value(json_object_get(p, "count"));
  if (!c) return;
  m->count += c;
  m->sum += json_number_value(json_object_get(p, "sum"));
  const json_t *mn = json_object_get(p, "min"), *mx = json_object_get(p, "max");
  if (json_is_number(mn) && json_number_value(mn) < m->min) m->min = json_number_value(mn);
  if (json_is_number(mx) && json_number_value(mx) > m->max) m->max = json_number_value(mx);
}


static int set_value(json_t *o, const char *k, int has, double v, int is_date) {
  if (json_object_set_new(o, k, has ? json_real(v) : json_null())) return -1;
  if (is_date && has) {
    char buf[48], name[64];
    qi_date_format((int64_t)llround(v), buf, sizeof buf);
    snprintf(name, sizeof name, "%s_as_string", k);
    if (json_object_set_new(o, name, json_string(buf))) return -1;
  }
  return 0;
}

static json_t *render_metric(const qq__agg *a, const mstate *m, int is_date) {
  json_t *o = json_object();
  int rc = 0;
  if (!o) return NULL;
  switch (a->kind) {
  case AG_AVG: rc = set_value(o, "value", m->count > 0, m->count ? m->sum / (double)m->count : 0, is_date); break;
  case AG_SUM: rc = set_value(o, "value", 1, m->sum, is_date); break;
  case AG_MIN: rc = set_value(o, "value", m->count > 0, m->min, is_date); break;
  case AG_MAX: rc = set_value(o, "value", m->count > 0, m->max, is_date); break;
  case AG_VALUE_COUNT: rc = json_object_set_new(o, "value", json_integer((json_int_t)m->count)); break;
  case AG_STATS:
    rc = json_object_set_new(o, "count", json_integer((json_int_t)m->count)) ||
         set_value(o, "min", m->count > 0, m->min, 0) || set_value(o, "max", m->count > 0, m->max, 0) ||
         set_value(o, "avg", m->count > 0, m->count ? m->sum / (double)m->count : 0, 0) ||
         set_value(o, "sum", 1, m->sum, 0);
    if (!rc && is_date && m->count) {
      char buf[48];
      qi_date_format((int64_t)llround(m->min), buf, sizeof buf);
      rc = json_object_set_new(o, "min_as_string", json_string(buf));
      qi_date_format((int64_t)llround(m->max), buf, sizeof buf);
      rc = rc || json_object_set_new(o, "max_as_string", json_string(buf));
      qi_date_format((int64_t)llround(m->sum / (double)m->count), buf, sizeof buf);
      rc = rc || json_object_set_new(o, "avg_as_string", json_string(buf));
    }
    break;
  default: break;
  }
  if (rc) {
    json_decref(o);
    return NULL;
  }
  return o;
}

typedef struct mbucket {
  json_t *key;
  uint64_t doc_count;
  mstate *subs;    /* nsubs: merged metric subs */
  json_t **cparts; /* nsubs: for bucket subs, a JSON array of the children's partials */
} mbucket;

static double metric_value(const qq__agg *a, const mstate *m, int *has) {
  *has = m->count > 0 || a->kind == AG_SUM || a->kind == AG_VALUE_COUNT;
  switch (a->kind) {
  case AG_AVG: return m->count ? m->sum / (double)m->count : 0;
  case AG_SUM: return m->sum;
  case AG_MIN: return m->min;
  case AG_MAX: return m->max;
  case AG_VALUE_COUNT: return (double)m->count;
  default: return 0;
  }
}

static int cmp_key(const mbucket *x, const mbucket *y) {
  /* keys of one aggregation share a type; a foreign partial may not: strings sort after numbers */
  if (json_is_string(x->key) != json_is_string(y->key)) return json_is_string(x->key) ? 1 : -1;
  if (json_is_string(x->key)) return strcmp(json_string_value(x->key), json_string_value(y->key));
  double p = json_number_value(x->key), q = json_number_value(y->key);
  return p < q ? -1 : p > q;
}

/* the terms order (count desc by default), then _key asc */
static int cmp_mbucket(const void *pa, const void *pb, void *ud) {
  const qq__agg *a = ud;
  const mbucket *x = pa, *y = pb;
  int c = 0;
  if (a->order == ORD_COUNT) {
    c = x->doc_count < y->doc_count ? -1 : x->doc_count > y->doc_count;
  } else if (a->order == ORD_KEY) {
    c = cmp_key(x, y);
  } else {
    int hx, hy;
    double vx = metric_value(&a->subs[a->order_subi], &x->subs[a->order_subi], &hx);
    double vy = metric_value(&a->subs[a->order_subi], &y->subs[a->order_subi], &hy);
    if (hx != hy) return hx ? -1 : 1; /* buckets without a value go last */
    c = vx < vy ? -1 : vx > vy;
  }
  if (a->order_desc) c = -c;
  return c ? c : cmp_key(x, y);
}

typedef struct merged {
  mbucket *mb;
  size_t nb, cap;
  const char *kind;
  uint64_t all;       /* docs over all buckets */
  int sub_date[64];   /* a->nsubs <= 64: checked by the parser */
  json_t *index;
} merged;

static void merged_fini(const qq__agg *a, merged *m) {
  for (size_t i = 0; i < m->nb; i++) {
    qb_free(m->mb[i].subs, a->nsubs * sizeof *m->mb[i].subs);
    if (m->mb[i].cparts) {
      for (size_t k = 0; k < a->nsubs; k++) json_decref(m->mb[i].cparts[k]);
      qb_free(m->mb[i].cparts, a->nsubs * sizeof *m->mb[i].cparts);
    }
  }
  qb_free(m->mb, m->cap * sizeof *m->mb);
  json_decref(m->index);
}

static int has_bucket_subs(const qq__agg *a) {
  for (size_t k = 0; k < a->nsubs; k++)
    if (QQ__AGG_BUCKETS(a->subs[k].kind)) return 1;
  return 0;
}

/* Merge the buckets of A from its partials APARTS[0..N) (NULL entries skipped; keys compared
** exactly). -1: out of memory */
static int merge_buckets(const qq__agg *a, const json_t *const *aparts, size_t n, merged *M) {
  int nested = has_bucket_subs(a);
  memset(M, 0, sizeof *M);
  if (!(M->index = json_object())) return -1;
  for (size_t p = 0; p < n; p++) {
    const json_t *pa = aparts[p];
    const json_t *bs = json_object_get(pa, "buckets");
    if (!M->kind && json_is_string(json_object_get(pa, "kind"))) M->kind = json_string_value(json_object_get(pa, "kind"));
    for (size_t i = 0; i < json_array_size(bs); i++) {
      const json_t *b = json_array_get(bs, i);
      json_t *key = json_object_get(b, "key");
      char kbuf[64];
      const char *ks;
      if (!key) continue;
      if (json_is_string(key)) ks = json_string_value(key);
      else if (json_is_integer(key)) { snprintf(kbuf, sizeof kbuf, "\x01%lld", (long long)json_integer_value(key)); ks = kbuf; }
      else { snprintf(kbuf, sizeof kbuf, "\x02%.17g", json_number_value(key)); ks = kbuf; }
      json_t *slot = json_object_get(M->index, ks);
      size_t bi;
      if (slot) {
        bi = (size_t)json_integer_value(slot);
      } else {
        if (M->nb == M->cap) {
          size_t nc = M->cap ? M->cap * 2 : 64;
          mbucket *nm = qb_realloc(M->mb, M->cap * sizeof *nm, nc * sizeof *nm);
          if (!nm) return -1;
          M->mb = nm;
          M->cap = nc;
        }
        bi = M->nb++;
        mbucket *m = &M->mb[bi];
        memset(m, 0, sizeof *m);
        m->key = key;
        if (a->nsubs) {
          if (!(m->subs = qb_calloc(a->nsubs, sizeof *m->subs))) return -1;
          for (size_t k = 0; k < a->nsubs; k++) {
            m->subs[k].min = INFINITY;
            m->subs[k].max = -INFINITY;
          }
        }
        if (nested) {
          if (!(m->cparts = qb_calloc(a->nsubs, sizeof *m->cparts))) return -1;
          for (size_t k = 0; k < a->nsubs; k++)
            if (QQ__AGG_BUCKETS(a->subs[k].kind) && !(m->cparts[k] = json_array())) return -1;
        }
        if (json_object_set_new(M->index, ks, json_integer((json_int_t)bi))) return -1;
      }
      mbucket *m = &M->mb[bi];
      uint64_t dc = (uint64_t)json_integer_value(json_object_get(b, "doc_count"));
      m->doc_count += dc;
      M->all += dc;
      const json_t *subs = json_object_get(b, "subs");
      for (size_t k = 0; k < a->nsubs; k++) {
        json_t *sp = json_object_get(subs, a->subs[k].name);
        if (m->cparts && m->cparts[k]) {
          if (sp && json_array_append(m->cparts[k], sp)) return -1;
        } else {
          mmerge(&m->subs[k], sp, &M->sub_date[k]);
        }
      }
    }
  }
  return 0;
}

static json_t *render_agg(const qq__agg *a, const json_t *const *aparts, size_t n, qb_err *err);

static int add_bucket_json(const qq__agg *a, json_t *buckets, json_t *key, int date_key, int bool_key,
                           const mbucket *m, const int *sub_date, qb_err *err) {
  json_t *bj = json_object();
  char buf[48];
  if (!bj || json_array_append_new(buckets, bj)) return -1;
  if (date_key || bool_key) {
    if (date_key) qi_date_format(json_integer_value(key), buf, sizeof buf);
    else snprintf(buf, sizeof buf, "%s", json_integer_value(key) ? "true" : "false");
    /* date_histogram puts key_as_string first, terms after key (as Elasticsearch does) */
    if (date_key && a->kind == AG_DATE_HISTOGRAM && json_object_set_new(bj, "key_as_string", json_string(buf)))
      return -1;
    if (json_object_set(bj, "key", key)) return -1;
    if (a->kind != AG_DATE_HISTOGRAM && json_object_set_new(bj, "key_as_string", json_string(buf))) return -1;
  } else if (json_object_set(bj, "key", key)) {
    return -1;
  }
  if (json_object_set_new(bj, "doc_count", json_integer((json_int_t)(m ? m->doc_count : 0)))) return -1;
  for (size_t k = 0; k < a->nsubs; k++) {
    json_t *mj;
    if (QQ__AGG_BUCKETS(a->subs[k].kind)) {
      json_t *arr = m && m->cparts ? m->cparts[k] : NULL;
      size_t cn = json_array_size(arr);
      const json_t *cp[cn ? cn : 1];
      for (size_t i = 0; i < cn; i++) cp[i] = json_array_get(arr, i);
      mj = render_agg(&a->subs[k], cp, cn, err);
    } else {
      mstate empty = {0, 0, INFINITY, -INFINITY};
      mj = render_metric(&a->subs[k], m ? &m->subs[k] : &empty, sub_date[k]);
    }
    if (!mj || json_object_set_new(bj, a->subs[k].name, mj)) return -1;
  }
  return 0;
}

static json_t *render_terms(const qq__agg *a, const json_t *const *aparts, size_t n, qb_err *err) {
  merged M;
  json_t *out = NULL;
  if (merge_buckets(a, aparts, n, &M)) goto fail;
  if (M.nb) qsort_r(M.mb, M.nb, sizeof *M.mb, cmp_mbucket, (void *)a);
  json_t *buckets = json_array();
  uint64_t shown = 0;
  out = json_pack("{s:i, s:I, s:o}", "doc_count_error_upper_bound", 0, "sum_other_doc_count", (json_int_t)0,
                  "buckets", buckets);
  if (!out) goto fail;
  int is_date = M.kind && !strcmp(M.kind, "date"), is_bool = M.kind && !strcmp(M.kind, "boolean");
  for (size_t i = 0, shown_n = 0; i < M.nb && shown_n < a->size; i++) {
    if (M.mb[i].doc_count < a->min_doc_count) continue;
    shown_n++;
    if (add_bucket_json(a, buckets, M.mb[i].key, is_date, is_bool, &M.mb[i], M.sub_date, err)) goto fail;
    shown += M.mb[i].doc_count;
  }
  json_object_set_new(out, "sum_other_doc_count", json_integer((json_int_t)(M.all - shown)));
  goto done;
fail:
  json_decref(out);
  out = NULL;
done:
  merged_fini(a, &M);
  return out;
}

static int cmp_mbucket_key(const void *pa, const void *pb) { return cmp_key(pa, pb); }

#define QQ_MAX_BUCKETS 65536 /* Elasticsearch's search.max_buckets */

/* histogram / date_histogram: buckets by key asc; with min_doc_count 0 the empty buckets
** between the first and the last key are filled in, as Elasticsearch does */
static json_t *render_histogram(const qq__agg *a, const json_t *const *aparts, size_t n, qb_err *err) {
  merged M;
  json_t *out = NULL, *buckets = NULL;
  int date = a->kind == AG_DATE_HISTOGRAM;
  size_t emitted = 0;
  if (merge_buckets(a, aparts, n, &M)) goto nomem;
  if (M.nb) qsort(M.mb, M.nb, sizeof *M.mb, cmp_mbucket_key);
  if (!(buckets = json_array()) || !(out = json_pack("{s:O}", "buckets", buckets))) goto nomem;
  for (size_t i = 0; i < M.nb; i++) {
    if (M.mb[i].doc_count >= a->min_doc_count) {
      if (++emitted > QQ_MAX_BUCKETS) goto toomany;
      if (add_bucket_json(a, buckets, M.mb[i].key, date, 0, &M.mb[i], M.sub_date, err)) goto fail;
    }
    if (a->min_doc_count || i + 1 == M.nb) continue;
    /* empty buckets up to the next key */
    if (date) {
      int64_t k = json_integer_value(M.mb[i].key), next = json_integer_value(M.mb[i + 1].key);
      for (;;) {
        int64_t k2 = a->cal_unit ? qq__date_next(k, a->cal_unit) : k + (int64_t)a->interval;
        if (k2 <= k || k2 >= next) break;
        k = k2;
        if (++emitted > QQ_MAX_BUCKETS) goto toomany;
        json_t *kj = json_integer(k);
        int r = !kj || add_bucket_json(a, buckets, kj, 1, 0, NULL, M.sub_date, err);
        json_decref(kj);
        if (r) goto fail;
      }
    } else {
      double k0 = json_number_value(M.mb[i].key), next = json_number_value(M.mb[i + 1].key);
      double steps = floor((next - k0) / a->interval + 0.5);
      for (double j = 1; j < steps; j++) {
        if (++emitted > QQ_MAX_BUCKETS) goto toomany;
        json_t *kj = json_real(k0 + j * a->interval);
        int r = !kj || add_bucket_json(a, buckets, kj, 0, 0, NULL, M.sub_date, err);
        json_decref(kj);
        if (r) goto fail;
      }
    }
  }
  json_decref(buckets);
  merged_fini(a, &M);
  return out;
toomany:
  qb_fail(err, QB_INVAL, "too_many_buckets: aggregation [%s] would create more than %d buckets", a->name, QQ_MAX_BUCKETS);
  goto fail;
nomem:
  qb_fail(err, QB_NOMEM, "query: out of memory");
fail:
  json_decref(buckets);
  json_decref(out);
  merged_fini(a, &M);
  return NULL;
}

/* Merge A's partials and render it; NULL with ERR set (out of memory when ERR has no code) */
static json_t *render_agg(const qq__agg *a, const json_t *const *aparts, size_t n, qb_err *err) {
  if (a->kind == AG_TERMS) return render_terms(a, aparts, n, err);
  if (a->kind == AG_HISTOGRAM || a->kind == AG_DATE_HISTOGRAM) return render_histogram(a, aparts, n, err);
  mstate m = {0, 0, INFINITY, -INFINITY};
  int is_date = 0;
  for (size_t p = 0; p < n; p++) mmerge(&m, aparts[p], &is_date);
  return render_metric(a, &m, is_date);
}

qb_code qq__aggs_render(qq_request *req, json_t *const *parts, size_t n, json_t **out, qb_err *err) {
  json_t *o = json_object();
  const json_t **aparts = qb_calloc(n ? n : 1, sizeof *aparts);
  qb_code rc = QB_OK;
  *out = NULL;
  if (!o || !aparts) {
    rc = nomem(err);
    goto done;
  }
  for (size_t i = 0; i < req->naggs; i++) {
    const qq__agg *a = &req->aggs[i];
    qb_err e2;
    qb_err_clear(&e2);
    for (size_t p = 0; p < n; p++) aparts[p] = parts[p] ? json_object_get(parts[p], a->name) : NULL;
    json_t *aj = render_agg(a, aparts, n, &e2);
    if (!aj || json_object_set_new(o, a->name, aj)) {
      if (e2.code && e2.code != QB_NOMEM) {
        if (err) *err = e2;
        rc = e2.code;
      } else {
        rc = nomem(err);
      }
      goto done;
    }
  }
  *out = o;
  o = NULL;
done:
  json_decref(o);
  qb_free(aparts, (n ? n : 1) * sizeof *aparts);
  return rc;
}
