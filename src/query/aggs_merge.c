/* aggs_merge.c: the coordinator's half of aggregations. It owns the partial-aggregation shape
** a shard returns (below; docs/query.md), merges the partials of N shards into one partial of
** the same shape (qq_aggs_merge, so merges can be staged: per node, then across nodes), and
** renders merged partials as Elasticsearch's response. Invariant: merging reads partials only
** through their JSON, so a partial that crossed the wire merges like a local one; every list
** of partials is a JSON array (no stack arrays sized by what shards sent).
**
** One aggregation's partial:
**   metric  {"count": N, "sum": S, "min": X|null, "max": X|null[, "date": true]}
**   bucket  {"kind": "string"|"long"|"double"|"date"|"boolean",
**            "buckets": [{"key": K, "doc_count": N[, "subs": {NAME: partial, ...}]}, ...]}
** K is a string (kind string), an integer (long, date in epoch ms, boolean 0/1) or a real
** (double, histogram); a shard lists every bucket it has, in any order. */
#define _GNU_SOURCE /* qsort_r */
#include "aggs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef qq__mstate mstate;

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

json_t *qq__mstate_json(const qq__mstate *m, int is_date) {
  /* value_count counts without values: min/max stay infinite there, and JSON has no infinity */
  json_t *j = json_pack("{s:I, s:f, s:o, s:o}", "count", (json_int_t)m->count, "sum", isfinite(m->sum) ? m->sum : 0.0,
                        "min", m->count && isfinite(m->min) ? json_real(m->min) : json_null(), "max",
                        m->count && isfinite(m->max) ? json_real(m->max) : json_null());
  if (j && is_date && json_object_set_new(j, "date", json_true())) {
    json_decref(j);
    return NULL;
  }
  return j;
}

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

typedef qq__mbucket mbucket;

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

typedef qq__merged merged;

void qq__merged_fini(const qq__agg *a, merged *m) {
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

static int child_kind(qq__agg_kind k) { return !QQ__AGG_SIMPLE(k) && !QQ__AGG_PIPE(k); }

static int has_bucket_subs(const qq__agg *a) {
  for (size_t k = 0; k < a->nsubs; k++)
    if (child_kind(a->subs[k].kind)) return 1;
  return 0;
}

mbucket *qq__merged_find(merged *M, const char *key) {
  json_t *slot = M->index ? json_object_get(M->index, key) : NULL;
  return slot ? &M->mb[json_integer_value(slot)] : NULL;
}

/* Merge the buckets of A from its partials, the JSON array APARTS (keys compared exactly).
** -1: out of memory */
int qq__merge_buckets(const qq__agg *a, const json_t *aparts, merged *M) {
  int nested = has_bucket_subs(a);
  memset(M, 0, sizeof *M);
  if (!(M->index = json_object())) return -1;
  for (size_t p = 0; p < json_array_size(aparts); p++) {
    const json_t *pa = json_array_get(aparts, p);
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
            if (child_kind(a->subs[k].kind) && !(m->cparts[k] = json_array())) return -1;
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
        if (QQ__AGG_PIPE(a->subs[k].kind)) continue;
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


static int add_bucket_json(const qq__agg *a, json_t *buckets, json_t *key, int date_key, int bool_key,
                           const mbucket *m, const int *sub_date, qb_err *err) {
  json_t *bj = json_object();
  char buf[48];
  if (!bj || json_array_append_new(buckets, bj)) return -1;
  if (date_key && a->x && a->x->tz) {
    qq__tz_format(a->x->tz, a->format, json_integer_value(key), buf, sizeof buf);
    if (a->kind == AG_DATE_HISTOGRAM && json_object_set_new(bj, "key_as_string", json_string(buf))) return -1;
    if (json_object_set(bj, "key", key)) return -1;
    if (a->kind != AG_DATE_HISTOGRAM && json_object_set_new(bj, "key_as_string", json_string(buf))) return -1;
  } else if (date_key || bool_key) {
    if (date_key && a->format) {
      if (qq__date_format(a->format, json_integer_value(key), buf, sizeof buf)) /* checked at parse */
        qi_date_format(json_integer_value(key), buf, sizeof buf);
    } else if (date_key) {
      qi_date_format(json_integer_value(key), buf, sizeof buf);
    }
    else snprintf(buf, sizeof buf, "%s", json_integer_value(key) ? "true" : "false");
    /* date_histogram puts key_as_string first, terms after key (as Elasticsearch does) */
    if (date_key && a->kind == AG_DATE_HISTOGRAM && json_object_set_new(bj, "key_as_string", json_string(buf)))
      return -1;
    if (json_object_set(bj, "key", key)) return -1;
    if (a->kind != AG_DATE_HISTOGRAM && json_object_set_new(bj, "key_as_string", json_string(buf))) return -1;
  } else if (json_object_set(bj, "key", key)) {
    return -1;
  }
  return qq__bucket_body(a, bj, m, sub_date, err);
}

int qq__bucket_body(const qq__agg *a, json_t *bj, const mbucket *m, const int *sub_date, qb_err *err) {
  if (json_object_set_new(bj, "doc_count", json_integer((json_int_t)(m ? m->doc_count : 0)))) return -1;
  for (size_t k = 0; k < a->nsubs; k++) {
    json_t *mj;
    if (QQ__AGG_PIPE(a->subs[k].kind)) continue;
    if (child_kind(a->subs[k].kind)) {
      mj = qq__render_agg(&a->subs[k], m && m->cparts ? m->cparts[k] : NULL, err);
    } else {
      mstate empty = {0, 0, INFINITY, -INFINITY};
      mj = render_metric(&a->subs[k], m ? &m->subs[k] : &empty, sub_date[k]);
    }
    if (!mj || json_object_set_new(bj, a->subs[k].name, mj)) return -1;
  }
  return a->nsubs && qq__pipes_apply(a->subs, a->nsubs, bj, err) ? -1 : 0;
}

static json_t *render_terms(const qq__agg *a, const json_t *aparts, qb_err *err) {
  merged M;
  json_t *out = NULL;
  if (qq__merge_buckets(a, aparts, &M)) goto fail;
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
  if (qq__bucket_sort_apply(a, out, err)) goto fail;
  goto done;
fail:
  json_decref(out);
  out = NULL;
done:
  qq__merged_fini(a, &M);
  return out;
}

static int cmp_mbucket_key(const void *pa, const void *pb) { return cmp_key(pa, pb); }

#define QQ_MAX_BUCKETS 65536 /* Elasticsearch's search.max_buckets */

/* histogram / date_histogram: buckets by key asc; with min_doc_count 0 the empty buckets
** between the first and the last key are filled in, as Elasticsearch does */
static json_t *render_histogram(const qq__agg *a, const json_t *aparts, qb_err *err) {
  merged M;
  json_t *out = NULL, *buckets = NULL;
  int date = a->kind == AG_DATE_HISTOGRAM;
  size_t emitted = 0;
  if (qq__merge_buckets(a, aparts, &M)) goto nomem;
  if (M.nb) qsort(M.mb, M.nb, sizeof *M.mb, cmp_mbucket_key);
  if (!(buckets = json_array()) || !(out = json_pack("{s:O}", "buckets", buckets))) goto nomem;
  const qq__xagg *x = a->x;
  const int xt = date && x && (x->tz || x->offset_ms);
  if (x && x->has_ebounds && !a->min_doc_count) { /* extended_bounds: empty buckets before the first */
    int64_t lo = date ? qq__tz_floor(x->tz, x->emin, a->cal_unit, (int64_t)a->interval, x->offset_ms) : 0;
    double dlo = date ? 0 : floor(((double)x->emin - a->offset) / a->interval) * a->interval + a->offset;
    double first = M.nb ? json_number_value(M.mb[0].key) : INFINITY;
    double hi = date ? (double)x->emax : (double)x->emax;
    for (;;) { /* bounded by QQ_MAX_BUCKETS and the strictly rising key */
      double k = date ? (double)lo : dlo;
      if (!(k < first) || k > hi) break;
      if (++emitted > QQ_MAX_BUCKETS) goto toomany;
      json_t *kj = date ? json_integer(lo) : json_real(dlo);
      int r = !kj || add_bucket_json(a, buckets, kj, date, 0, NULL, M.sub_date, err);
      json_decref(kj);
      if (r) goto fail;
      if (date) {
        int64_t n2 = xt ? qq__tz_next(x->tz, lo, a->cal_unit, (int64_t)a->interval, x->offset_ms)
                        : a->cal_unit ? qq__date_next(lo, a->cal_unit) : lo + (int64_t)a->interval;
        if (n2 <= lo) break;
        lo = n2;
      } else {
        dlo += a->interval;
      }
    }
  }
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
        int64_t k2 = xt ? qq__tz_next(x->tz, k, a->cal_unit, (int64_t)a->interval, x->offset_ms)
                        : a->cal_unit ? qq__date_next(k, a->cal_unit) : k + (int64_t)a->interval;
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
  if (x && x->has_ebounds && !a->min_doc_count && M.nb) { /* and after the last */
    if (date) {
      int64_t k = json_integer_value(M.mb[M.nb - 1].key);
      for (;;) {
        int64_t k2 = xt ? qq__tz_next(x->tz, k, a->cal_unit, (int64_t)a->interval, x->offset_ms)
                        : a->cal_unit ? qq__date_next(k, a->cal_unit) : k + (int64_t)a->interval;
        if (k2 <= k || k2 > x->emax) break;
        k = k2;
        if (++emitted > QQ_MAX_BUCKETS) goto toomany;
        json_t *kj = json_integer(k);
        int r = !kj || add_bucket_json(a, buckets, kj, 1, 0, NULL, M.sub_date, err);
        json_decref(kj);
        if (r) goto fail;
      }
    } else {
      for (double k = json_number_value(M.mb[M.nb - 1].key) + a->interval; k <= (double)x->emax; k += a->interval) {
        if (++emitted > QQ_MAX_BUCKETS) goto toomany;
        json_t *kj = json_real(k);
        int r = !kj || add_bucket_json(a, buckets, kj, 0, 0, NULL, M.sub_date, err);
        json_decref(kj);
        if (r) goto fail;
      }
    }
  }
  json_decref(buckets);
  qq__merged_fini(a, &M);
  if (qq__bucket_sort_apply(a, out, err)) {
    json_decref(out);
    return NULL;
  }
  return out;
toomany:
  qb_fail(err, QB_INVAL, "too_many_buckets: aggregation [%s] would create more than %d buckets", a->name, QQ_MAX_BUCKETS);
  goto fail;
nomem:
  qb_fail(err, QB_NOMEM, "query: out of memory");
fail:
  json_decref(buckets);
  json_decref(out);
  qq__merged_fini(a, &M);
  return NULL;
}

/* Merge A's partials (the JSON array APARTS; NULL: none) and render it; NULL with ERR set (out
** of memory when ERR has no code) */
json_t *qq__render_agg(const qq__agg *a, const json_t *aparts, qb_err *err) {
  if (qq__agg_is_xbucket(a->kind)) return qq__xb_render(a, aparts, err);
  if (!QQ__AGG_SIMPLE(a->kind) && !QQ__AGG_BUCKETS(a->kind)) return qq__x_render(a, aparts, err);
  if (a->kind == AG_TERMS) return render_terms(a, aparts, err);
  if (a->kind == AG_HISTOGRAM || a->kind == AG_DATE_HISTOGRAM) return render_histogram(a, aparts, err);
  mstate m = {0, 0, INFINITY, -INFINITY};
  int is_date = 0;
  for (size_t p = 0; p < json_array_size(aparts); p++) mmerge(&m, json_array_get(aparts, p), &is_date);
  return render_metric(a, &m, is_date);
}

/* ---- merge to a partial ---------------------------------------------------------------------- */

/* A's partials (the JSON array APARTS) as one partial of the same shape; NULL: out of memory.
** Recursion follows the request's aggregation tree (at most 4 bucket levels, dsl.c). */
json_t *qq__merge_agg(const qq__agg *a, const json_t *aparts) {
  if (qq__agg_is_xbucket(a->kind)) return qq__xb_merge(a, aparts);
  if (!QQ__AGG_SIMPLE(a->kind) && !QQ__AGG_BUCKETS(a->kind)) return qq__x_merge(a, aparts);
  if (!QQ__AGG_BUCKETS(a->kind)) {
    mstate m = {0, 0, INFINITY, -INFINITY};
    int is_date = 0;
    for (size_t p = 0; p < json_array_size(aparts); p++) mmerge(&m, json_array_get(aparts, p), &is_date);
    return qq__mstate_json(&m, is_date);
  }
  merged M;
  if (qq__merge_buckets(a, aparts, &M)) {
    qq__merged_fini(a, &M);
    return NULL;
  }
  json_t *out = qq__merged_partial(a, &M, M.kind ? M.kind : "string", M.nb);
  qq__merged_fini(a, &M);
  return out;
}

json_t *qq__merged_partial(const qq__agg *a, merged *Mp, const char *kind, size_t limit) {
  merged M = *Mp;
  json_t *bs = NULL, *out = NULL;
  if (!(bs = json_array()) || !(out = json_pack("{s:s, s:o}", "kind", kind, "buckets", bs))) goto fail;
  for (size_t i = 0; i < M.nb && i < limit; i++) {
    const mbucket *m = &M.mb[i];
    json_t *bj = json_pack("{s:O, s:I}", "key", m->key, "doc_count", (json_int_t)m->doc_count);
    json_t *sj = a->nsubs ? json_object() : NULL;
    if (!bj || json_array_append_new(bs, bj) || (a->nsubs && (!sj || json_object_set_new(bj, "subs", sj))))
      goto fail;
    for (size_t k = 0; k < a->nsubs; k++) {
      if (QQ__AGG_PIPE(a->subs[k].kind)) continue;
      json_t *v = m->cparts && m->cparts[k] ? qq__merge_agg(&a->subs[k], m->cparts[k])
                                             : qq__mstate_json(&m->subs[k], M.sub_date[k]);
      if (!v || json_object_set_new(sj, a->subs[k].name, v)) goto fail;
    }
  }
  return out;
fail: /* json_pack's "o" took BS, even when it failed */
  json_decref(out);
  return NULL;
}

/* The JSON array of aggregation A's partials in PARTS[0..N) (each a shard's "aggs" object;
** NULL entries and shards without A are skipped). NULL: out of memory. */
static json_t *agg_parts(const qq__agg *a, const json_t *const *parts, size_t n) {
  json_t *arr = json_array();
  for (size_t p = 0; arr && p < n; p++) {
    json_t *pa = parts[p] ? json_object_get(parts[p], a->name) : NULL;
    if (pa && json_array_append(arr, pa)) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

qb_code qq_aggs_merge(const qq_request *req, const json_t *const *parts, size_t n, json_t **out,
                      qb_err *err) {
  json_t *o = json_object();
  *out = NULL;
  if (!o) return nomem(err);
  for (size_t i = 0; i < req->naggs; i++) {
    const qq__agg *a = &req->aggs[i];
    if (QQ__AGG_PIPE(a->kind)) continue;
    json_t *arr = agg_parts(a, parts, n);
    json_t *aj = arr ? qq__merge_agg(a, arr) : NULL;
    json_decref(arr);
    if (!aj || json_object_set_new(o, a->name, aj)) {
      json_decref(o);
      return nomem(err);
    }
  }
  *out = o;
  return QB_OK;
}

qb_code qq__aggs_render(qq_request *req, json_t *const *parts, size_t n, json_t **out, qb_err *err) {
  json_t *o = json_object(), *aparts = NULL;
  qb_code rc = QB_OK;
  *out = NULL;
  if (!o) return nomem(err);
  for (size_t i = 0; i < req->naggs; i++) {
    const qq__agg *a = &req->aggs[i];
    qb_err e2;
    if (QQ__AGG_PIPE(a->kind)) continue;
    qb_err_clear(&e2);
    json_decref(aparts);
    if (!(aparts = agg_parts(a, (const json_t *const *)parts, n))) {
      rc = nomem(err);
      goto done;
    }
    json_t *aj = qq__render_agg(a, aparts, &e2);
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
  if ((rc = qq__pipes_apply(req->aggs, req->naggs, o, err))) goto done;
  *out = o;
  o = NULL;
done:
  json_decref(o);
  json_decref(aparts);
  return rc;
}
