/* agg_pipeline.c: pipeline aggregations, computed on the rendered response (after the merge,
** so they see every shard's buckets): the sibling pipelines avg_bucket, sum_bucket, max_bucket
** and min_bucket, and the parent pipeline bucket_sort. buckets_path is AGG[>AGG...][.METRIC]
** (also _count and _key); the first AGG names a multi-bucket sibling, the rest is read in each
** of its buckets: NAME gives NAME.value, NAME.M gives NAME.M (or NAME.values.M: percentiles).
** gap_policy skip leaves out buckets without a value; insert_zeros counts them as 0. */
#define _GNU_SOURCE /* qsort_r */
#include "aggs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the value at PATH (">"-separated, then ".metric") in bucket B; 0 when there is none */
static int bucket_value(const json_t *b, const char *path, double *out) {
  char buf[256];
  if (!path || !*path || !strcmp(path, "_count")) {
    *out = json_number_value(json_object_get(b, "doc_count"));
    return json_is_number(json_object_get(b, "doc_count"));
  }
  if (!strcmp(path, "_key")) {
    const json_t *k = json_object_get(b, "key");
    *out = json_number_value(k);
    return json_is_number(k);
  }
  snprintf(buf, sizeof buf, "%s", path);
  const json_t *cur = b;
  char *seg = buf;
  for (;;) {
    char *gt = strchr(seg, '>');
    if (gt) *gt = 0;
    char *dot = gt ? NULL : strchr(seg, '.');
    if (dot) *dot = 0;
    const json_t *sub = json_object_get(cur, seg);
    if (!sub) return 0;
    if (gt) { /* into a single-bucket aggregation */
      cur = sub;
      seg = gt + 1;
      continue;
    }
    const json_t *v;
    if (dot) {
      v = json_object_get(sub, dot + 1);
      if (!v && json_is_object(json_object_get(sub, "values"))) v = json_object_get(json_object_get(sub, "values"), dot + 1);
      if (!v && !strcmp(dot + 1, "_count")) v = json_object_get(sub, "doc_count");
    } else {
      v = json_object_get(sub, "value");
      if (!v) v = json_object_get(sub, "doc_count");
    }
    if (!json_is_number(v)) return 0;
    *out = json_number_value(v);
    return 1;
  }
}

static json_t *key_string(const json_t *b, const char *name) {
  const json_t *ks = json_object_get(b, "key_as_string");
  if (json_is_string(ks)) return json_incref((json_t *)ks);
  const json_t *k = json_object_get(b, "key");
  char buf[64];
  if (json_is_string(k)) return json_incref((json_t *)k);
  if (json_is_integer(k)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(k));
  else if (json_is_number(k)) qq__fmt_double(json_number_value(k), buf, sizeof buf);
  else if (name) return json_string(name);
  else if (json_is_object(k)) {
    char tb[1024];
    size_t n = json_dumpb(k, tb, sizeof tb - 1, JSON_COMPACT);
    tb[n < sizeof tb ? n : 0] = 0;
    return json_string(tb);
  } else buf[0] = 0;
  return json_string(buf);
}

static qb_code sibling(const qq__agg *p, json_t *obj, json_t **out, qb_err *err) {
  const qq__xagg *x = p->x;
  char first[256];
  const char *gt = strchr(x->path, '>');
  size_t l = gt ? (size_t)(gt - x->path) : strlen(x->path);
  if (l >= sizeof first) l = sizeof first - 1;
  memcpy(first, x->path, l);
  first[l] = 0;
  const char *rest = gt ? gt + 1 : "";
  const json_t *target = json_object_get(obj, first);
  const json_t *bs = json_object_get(target, "buckets");
  if (!target || (!json_is_array(bs) && !json_is_object(bs)))
    return qb_fail(err, QB_INVAL, "No aggregation found for path [%s]: [%s] is not a multi-bucket aggregation here", x->path, first);
  double acc = 0, best = 0;
  size_t n = 0;
  json_t *keys = json_array();
  if (!keys) return qb_fail(err, QB_NOMEM, "query: out of memory");
  size_t nb = json_is_array(bs) ? json_array_size(bs) : json_object_size(bs);
  void *it = json_is_object(bs) ? json_object_iter((json_t *)bs) : NULL;
  for (size_t i = 0; i < nb; i++) {
    const json_t *b = it ? json_object_iter_value(it) : json_array_get(bs, i);
    const char *name = it ? json_object_iter_key(it) : NULL;
    if (it) it = json_object_iter_next((json_t *)bs, it);
    double v;
    if (!bucket_value(b, rest, &v)) {
      if (!x->gap_zero) continue;
      v = 0;
    }
    n++;
    acc += v;
    if (p->kind == AG_MAX_BUCKET || p->kind == AG_MIN_BUCKET) {
      int better = n == 1 || (p->kind == AG_MAX_BUCKET ? v > best : v < best);
      if (better) {
        best = v;
        json_array_clear(keys);
      }
      if (better || v == best) json_array_append_new(keys, key_string(b, name));
    }
  }
  switch (p->kind) {
  case AG_AVG_BUCKET: *out = json_pack("{s:o}", "value", n ? json_real(acc / (double)n) : json_null()); break;
  case AG_SUM_BUCKET: *out = json_pack("{s:f}", "value", acc); break;
  default: *out = json_pack("{s:o, s:O}", "value", n ? json_real(best) : json_null(), "keys", keys); break;
  }
  json_decref(keys);
  return *out ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory");
}

qb_code qq__pipes_apply(const qq__agg *aggs, size_t n, json_t *obj, qb_err *err) {
  for (size_t i = 0; i < n; i++) {
    const qq__agg *p = &aggs[i];
    if (!QQ__AGG_PIPE(p->kind) || p->kind == AG_BUCKET_SORT) continue;
    json_t *v;
    qb_code rc = sibling(p, obj, &v, err);
    if (rc) return rc;
    if (json_object_set_new(obj, p->name, v)) return qb_fail(err, QB_NOMEM, "query: out of memory");
  }
  return QB_OK;
}

typedef struct sb {
  json_t *b;
  double v[8];
  int has[8];
  size_t i;
} sb;

static int sb_cmp(const void *pa, const void *pb, void *ud) {
  const qq__xagg *x = ud;
  const sb *p = pa, *q = pb;
  for (size_t k = 0; k < x->nsort; k++) {
    int c = p->v[k] < q->v[k] ? -1 : p->v[k] > q->v[k];
    if (x->sort[k].desc) c = -c;
    if (c) return c;
  }
  return p->i < q->i ? -1 : p->i > q->i;
}

qb_code qq__bucket_sort_apply(const qq__agg *parent, json_t *out, qb_err *err) {
  const qq__agg *p = NULL;
  for (size_t i = 0; i < parent->nsubs; i++)
    if (parent->subs[i].kind == AG_BUCKET_SORT) p = &parent->subs[i];
  json_t *bs = json_object_get(out, "buckets");
  if (!p || !json_is_array(bs)) return QB_OK;
  const qq__xagg *x = p->x;
  size_t n = json_array_size(bs), m = 0;
  sb *v = qb_malloc((n ? n : 1) * sizeof *v);
  json_t *nb = json_array();
  if (!v || !nb) goto nomem;
  for (size_t i = 0; i < n; i++) {
    sb *e = &v[m];
    int ok = 1;
    e->b = json_array_get(bs, i);
    e->i = i;
    for (size_t k = 0; k < x->nsort; k++) {
      const char *f = x->sort[k].field;
      if (!(e->has[k] = bucket_value(e->b, f, &e->v[k]))) {
        if (x->gap_zero) e->v[k] = 0;
        else ok = 0;
      }
    }
    if (ok) m++;
  }
  if (m && x->nsort) qsort_r(v, m, sizeof *v, sb_cmp, (void *)x);
  for (size_t i = x->from; i < m && i - x->from < x->size; i++)
    if (json_array_append(nb, v[i].b)) goto nomem;
  qb_free(v, (n ? n : 1) * sizeof *v);
  if (json_object_set_new(out, "buckets", nb)) return qb_fail(err, QB_NOMEM, "query: out of memory");
  return QB_OK;
nomem:
  qb_free(v, (n ? n : 1) * sizeof *v);
  json_decref(nb);
  return qb_fail(err, QB_NOMEM, "query: out of memory");
}
