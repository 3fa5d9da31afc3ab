/* agg_buckets.c: the bucket kinds of issue 12 §4: range, date_range, filter, filters, missing,
** global and composite. They reuse the collector's buckets (aggs_collect.c) and the merge's
** (aggs_merge.c), so sub-aggregations of every kind work under them and partials merge as a
** terms' do. Keys in partials: range / filters buckets are keyed by their index ("0", "1", ...;
** filters' other bucket is index n), filter / missing / global have the one bucket "0", and a
** composite bucket's key is the JSON text of its array of source values. A shard's composite
** partial holds its first `size` buckets after `after` in composite order: the first `size`
** of all shards are among them, so the merge is exact. global runs over every live document
** of each segment when the segment is done (the query's matches are not its input). */
#define _GNU_SOURCE /* qsort_r */
#include "aggs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

int qq__agg_is_xbucket(qq__agg_kind k) { return k >= AG_RANGE && k <= AG_COMPOSITE; }

static size_t nbuckets(const qq__agg *a) {
  switch (a->kind) {
  case AG_RANGE: case AG_DATE_RANGE: return a->x->nranges;
  case AG_FILTERS: return a->x->nfilters + (a->x->other ? 1 : 0);
  case AG_COMPOSITE: return 0;
  default: return 1;
  }
}

qb_code qq__xb_init(qq__shard *sh, qq__agst *s, qb_err *err) {
  qq__aggs_state tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.sh = sh;
  s->kk = KEY_STR;
  if ((s->a->kind == AG_RANGE || s->a->kind == AG_DATE_RANGE) && s->mapped &&
      (s->fi.dv == QI_DV_KEYWORD || s->fi.dv == QI_DV_NONE))
    return qb_fail(err, QB_INVAL, "Field [%s] of type [%s] is not supported for aggregation [%s]", s->a->field,
                   s->fi.dv == QI_DV_KEYWORD ? "keyword" : "text", s->a->kind == AG_RANGE ? "range" : "date_range");
  for (size_t i = 0; i < nbuckets(s->a); i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    if (qq__bucket_get(&tmp, s, k, strlen(k), 0, 0) != (long)i) return nomem(err);
  }
  return QB_OK;
}

void qq__xb_free(qq__agst *s) { (void)s; }

void qq__fcache_free(qq__aggs_state *st) {
  for (size_t i = 0; i < st->nfc; i++) qb_free(st->fc[i].bits, st->fc[i].words * sizeof *st->fc[i].bits);
  qb_free(st->fc, st->capfc * sizeof *st->fc);
  st->fc = NULL;
  st->nfc = st->capfc = 0;
}

static size_t seg_index_of(const qi_snapshot *snap, const qi_segment *seg) {
  size_t n = qi_snapshot_segment_count(snap);
  for (size_t i = 0; i < n; i++)
    if (qi_snapshot_segment(snap, i) == seg) return i;
  return 0;
}

/* The matches of Q in SEG as a bitset (cached for the segment); NULL with ERR set */
static const uint64_t *filter_bits(qq__aggs_state *st, const qq__query *q, const qi_segment *seg, qb_err *err) {
  for (size_t i = 0; i < st->nfc; i++)
    if (st->fc[i].q == q && st->fc[i].seg == seg) return st->fc[i].bits;
  if (st->nfc == st->capfc) {
    size_t nc = st->capfc ? st->capfc * 2 : 8;
    qq__fcache *n = qb_realloc(st->fc, st->capfc * sizeof *n, nc * sizeof *n);
    if (!n) {
      nomem(err);
      return NULL;
    }
    st->fc = n;
    st->capfc = nc;
  }
  uint32_t max_doc = qi_segment_max_doc(seg);
  size_t words = (size_t)max_doc / 64 + 1;
  uint64_t *bits = qb_calloc(words, sizeof *bits);
  if (!bits) {
    nomem(err);
    return NULL;
  }
  qq__seg_ctx cx;
  memset(&cx, 0, sizeof cx);
  cx.sh = st->sh;
  cx.seg = seg;
  cx.seg_index = (uint32_t)seg_index_of(st->sh->snap, seg);
  cx.base = qi_snapshot_doc_base(st->sh->snap, cx.seg_index);
  cx.max_doc = max_doc;
  cx.err = err;
  cx.min_comp = -INFINITY;
  qq__it *it;
  qb_code rc = qq__it_build(&cx, q, 0, &it, err);
  if (!rc) {
    for (uint32_t d = it->next(it); d != QI_NO_MORE_DOCS; d = it->next(it))
      if (d < max_doc) bits[d / 64] |= (uint64_t)1 << (d % 64);
    rc = cx.rc;
  }
  qq__seg_ctx_fini(&cx);
  if (rc) {
    qb_free(bits, words * sizeof *bits);
    return NULL;
  }
  st->fc[st->nfc++] = (qq__fcache){q, seg, bits, words};
  return bits;
}

static int bit(const uint64_t *b, uint32_t d) { return (int)((b[d / 64] >> (d % 64)) & 1); }

/* ---- composite keys -------------------------------------------------------------------------- */

typedef struct cval {
  int kind;        /* 0 string, 1 long, 2 double */
  const char *s;
  size_t sl;
  int64_t i;
  double d;
} cval;

static int cval_cmp_json(const cval *v, const json_t *j) {
  if (v->kind == 0) {
    const char *o = json_is_string(j) ? json_string_value(j) : "";
    size_t ol = strlen(o), l = v->sl < ol ? v->sl : ol;
    int c = memcmp(v->s, o, l);
    if (!c) c = v->sl < ol ? -1 : v->sl > ol;
    return c < 0 ? -1 : c > 0;
  }
  double x = v->kind == 1 ? (double)v->i : v->d, y = json_number_value(j);
  if (v->kind == 1 && json_is_integer(j)) return v->i < json_integer_value(j) ? -1 : v->i > json_integer_value(j);
  return x < y ? -1 : x > y;
}

/* a source's after value in the key's own terms (date strings are parsed) */
static json_t *after_value(const qq__csrc *src, const json_t *v) {
  if (src->kind == 2 && json_is_string(v)) {
    int64_t ms;
    if (!qq__parse_date(json_string_value(v), &ms)) return json_integer(ms);
  }
  return json_incref((json_t *)v);
}

/* the values of doc DOCS[I] for each source; 0: a source has none (the doc has no bucket) */
static int composite_vals(qq__agst *s, const qi_segment *seg, uint32_t doc, const qi_field_info *fis,
                          const int *mapped, cval *out) {
  const qq__xagg *x = s->a->x;
  for (size_t k = 0; k < x->nsrc; k++) {
    const qq__csrc *src = &x->src[k];
    const qi_field_info *fi = &fis[k];
    cval *v = &out[k];
    if (!mapped[k] || fi->dv == QI_DV_NONE) return 0;
    if (fi->dv == QI_DV_KEYWORD) {
      const uint32_t *ords;
      if (!qi_dv_doc_ords(seg, fi->id, doc, &ords)) return 0;
      v->kind = 0;
      v->s = qi_dv_ord_term(seg, fi->id, ords[0], &v->sl);
      if (src->kind) return 0;
      continue;
    }
    uint8_t pr;
    if (src->kind == 1 || fi->type == QI_DOUBLE || fi->type == QI_FLOAT) {
      double d;
      qi_dv_read_f64(seg, fi->id, &doc, 1, &d, &pr);
      if (!pr) return 0;
      if (src->kind == 1) d = floor(d / src->interval) * src->interval;
      v->kind = 2;
      v->d = d;
    } else {
      int64_t i;
      qi_dv_read_i64(seg, fi->id, &doc, 1, &i, &pr);
      if (!pr) return 0;
      if (src->kind == 2) i = qq__tz_floor(src->tz, i, src->cal, (int64_t)src->interval, 0);
      v->kind = 1;
      v->i = i;
    }
  }
  return 1;
}

typedef struct cctx {
  qi_field_info fi[16];
  int mapped[16];
  json_t *after[16];
  int has_after;
} cctx;

/* the composite's per-shard data, kept in S->x */
static cctx *composite_ctx(qq__aggs_state *st, qq__agst *s, qb_err *err) {
  if (s->x) return s->x;
  const qq__xagg *x = s->a->x;
  cctx *c = qb_arena_alloc(st->sh->ar, sizeof *c);
  if (!c) {
    nomem(err);
    return NULL;
  }
  memset(c, 0, sizeof *c);
  for (size_t k = 0; k < x->nsrc; k++) {
    c->mapped[k] = !qi_snapshot_field(st->sh->snap, x->src[k].field, &c->fi[k]);
    if (c->mapped[k] && c->fi[k].dv == QI_DV_NONE) {
      qb_fail(err, QB_INVAL, "Text fields are not optimised for operations that require per-document field data like "
              "aggregations and sorting: [%s]", x->src[k].field);
      return NULL;
    }
  }
  s->x = c;
  return c;
}

static qb_code composite_block(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base,
                               const uint32_t *docs, const double *scores, size_t n, qb_err *err) {
  const qq__xagg *x = s->a->x;
  cctx *c = composite_ctx(st, s, err);
  if (!c) return err->code;
  cval v[16];
  qb_buf kb;
  qb_code rc = QB_OK;
  qb_buf_init(&kb);
  if ((rc = qq__bucket_subs_values(st, s, seg, base, docs, scores, n, err))) return rc;
  for (size_t i = 0; i < n; i++) {
    if (!composite_vals(s, seg, docs[i], c->fi, c->mapped, v)) continue;
    if (x->after) { /* only keys after "after" */
      int cmp = 0;
      for (size_t k = 0; k < x->nsrc && !cmp; k++) {
        json_t *av = after_value(&x->src[k], json_object_get(x->after, x->src[k].name));
        cmp = cval_cmp_json(&v[k], av);
        json_decref(av);
        if (x->src[k].desc) cmp = -cmp;
      }
      if (cmp <= 0) continue;
    }
    qb_buf_reset(&kb);
    int bad = qb_buf_append(&kb, "[", 1);
    for (size_t k = 0; k < x->nsrc && !bad; k++) {
      char num[48];
      if (k) bad |= qb_buf_append(&kb, ",", 1);
      if (v[k].kind == 0) {
        json_t *sj = json_stringn(v[k].s, v[k].sl);
        size_t need = sj ? json_dumpb(sj, NULL, 0, JSON_ENCODE_ANY) : 0;
        if (!need || qb_buf_reserve(&kb, need)) {
          json_decref(sj);
          bad = 1;
          break;
        }
        json_dumpb(sj, kb.data + kb.len, need, JSON_ENCODE_ANY);
        kb.len += need;
        kb.data[kb.len] = 0;
        json_decref(sj);
      } else {
        if (v[k].kind == 1) snprintf(num, sizeof num, "%lld", (long long)v[k].i);
        else snprintf(num, sizeof num, "%.17g", v[k].d);
        if (v[k].kind == 2 && !strpbrk(num, ".en")) strcat(num, ".0");
        bad |= qb_buf_append(&kb, num, strlen(num));
      }
    }
    bad |= qb_buf_append(&kb, "]", 1);
    if (bad) {
      rc = nomem(err);
      break;
    }
    long bi = qq__bucket_get(st, s, kb.data, kb.len, 0, 0);
    if (bi < 0) {
      rc = nomem(err);
      break;
    }
    if ((rc = qq__bucket_hit(st, s, bi, i, seg, base, docs, scores, err))) break;
  }
  qb_buf_fini(&kb);
  return rc;
}

qb_code qq__xb_collect(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base, const uint32_t *docs,
                       const double *scores, size_t n, qb_err *err) {
  const qq__agg *a = s->a;
  const qq__xagg *x = a->x;
  qb_code rc;
  if (a->kind == AG_GLOBAL) return QB_OK; /* segment_done */
  if (a->kind == AG_COMPOSITE) return composite_block(st, s, seg, base, docs, scores, n, err);
  if ((rc = qq__bucket_subs_values(st, s, seg, base, docs, scores, n, err))) return rc;
  if (a->kind == AG_RANGE || a->kind == AG_DATE_RANGE) {
    double v[QQ_BLOCK_MAX];
    uint8_t pr[QQ_BLOCK_MAX];
    if ((rc = qq__metric_values(st, s, seg, base, docs, scores, n, v, pr, err))) return rc;
    for (size_t i = 0; i < n; i++) {
      if (!pr[i]) continue;
      for (size_t r = 0; r < x->nranges; r++) {
        const qq__xrange *q = &x->ranges[r];
        if ((q->has_from && v[i] < q->from) || (q->has_to && v[i] >= q->to)) continue;
        if ((rc = qq__bucket_hit(st, s, (long)r, i, seg, base, docs, scores, err))) return rc;
      }
    }
    return QB_OK;
  }
  if (a->kind == AG_MISSING) {
    for (size_t i = 0; i < n; i++) {
      if (!qq__agg_doc_has_value(s, seg, docs[i]) && (rc = qq__bucket_hit(st, s, 0, i, seg, base, docs, scores, err))) return rc;
    }
    return QB_OK;
  }
  /* filter / filters */
  const uint64_t *fb[1024];
  for (size_t f = 0; f < x->nfilters; f++)
    if (!(fb[f] = filter_bits(st, x->filters[f], seg, err))) return err->code ? err->code : nomem(err);
  for (size_t i = 0; i < n; i++) {
    int any = 0;
    for (size_t f = 0; f < x->nfilters; f++)
      if (bit(fb[f], docs[i])) {
        any = 1;
        if ((rc = qq__bucket_hit(st, s, (long)f, i, seg, base, docs, scores, err))) return rc;
      }
    if (!any && x->other && (rc = qq__bucket_hit(st, s, (long)x->nfilters, i, seg, base, docs, scores, err))) return rc;
  }
  return QB_OK;
}

qb_code qq__xb_segment_done(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, qb_err *err) {
  if (s->a->kind != AG_GLOBAL) return QB_OK;
  uint32_t max_doc = qi_segment_max_doc(seg);
  uint64_t base = qi_snapshot_doc_base(st->sh->snap, seg_index_of(st->sh->snap, seg));
  uint32_t docs[QQ_BLOCK_MAX];
  size_t n = 0;
  qb_code rc;
  for (uint32_t d = 0; d <= max_doc; d++) {
    if (d < max_doc && qi_segment_is_live(seg, d)) docs[n++] = d;
    if (n && (n == QQ_BLOCK_MAX || d == max_doc)) {
      if ((rc = qq__bucket_subs_values(st, s, seg, base, docs, NULL, n, err))) return rc;
      for (size_t i = 0; i < n; i++)
        if ((rc = qq__bucket_hit(st, s, 0, i, seg, base, docs, NULL, err))) return rc;
      n = 0;
    }
  }
  return QB_OK;
}

/* composite order of two key texts' arrays */
static int ckey_cmp(const qq__xagg *x, const json_t *p, const json_t *q) {
  for (size_t k = 0; k < x->nsrc; k++) {
    const json_t *a = json_array_get(p, k), *b = json_array_get(q, k);
    int c;
    if (json_is_string(a) && json_is_string(b)) c = strcmp(json_string_value(a), json_string_value(b));
    else {
      double u = json_number_value(a), v = json_number_value(b);
      c = u < v ? -1 : u > v;
    }
    c = c < 0 ? -1 : c > 0;
    if (x->src[k].desc) c = -c;
    if (c) return c;
  }
  return 0;
}

typedef struct ckey {
  json_t *arr;   /* decoded key */
  size_t i;      /* index in the source list */
} ckey;

static int ckey_qcmp(const void *pa, const void *pb, void *ud) {
  return ckey_cmp(ud, ((const ckey *)pa)->arr, ((const ckey *)pb)->arr);
}

/* the order of the N keys (strings of JSON arrays) KEYS[i]: ORDER[0..n) (NULL: out of memory) */
static ckey *ckeys_sorted(const qq__xagg *x, json_t *const *keys, size_t n) {
  ckey *v = qb_malloc((n ? n : 1) * sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0; i < n; i++) {
    json_error_t je;
    const char *t = json_is_string(keys[i]) ? json_string_value(keys[i]) : "[]";
    v[i].arr = json_loads(t, 0, &je);
    if (!v[i].arr) v[i].arr = json_array();
    v[i].i = i;
  }
  if (n) qsort_r(v, n, sizeof *v, ckey_qcmp, (void *)x);
  return v;
}

static void ckeys_free(ckey *v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) json_decref(v[i].arr);
  qb_free(v, (n ? n : 1) * sizeof *v);
}

json_t *qq__xb_partial(const qq__agst *s) {
  json_t *p = qq__buckets_partial(s, "string");
  if (!p || s->a->kind != AG_COMPOSITE) return p;
  /* a composite sends its first `size` buckets */
  json_t *bs = json_object_get(p, "buckets");
  size_t n = json_array_size(bs);
  json_t **keys = qb_malloc((n ? n : 1) * sizeof *keys);
  if (!keys) goto fail;
  for (size_t i = 0; i < n; i++) keys[i] = json_object_get(json_array_get(bs, i), "key");
  ckey *v = ckeys_sorted(s->a->x, keys, n);
  qb_free(keys, (n ? n : 1) * sizeof *keys);
  json_t *nb = json_array();
  if (!v || !nb) {
    ckeys_free(v, n);
    json_decref(nb);
    goto fail;
  }
  for (size_t i = 0; i < n && i < s->a->x->size; i++)
    if (json_array_append(nb, json_array_get(bs, v[i].i))) {
      ckeys_free(v, n);
      json_decref(nb);
      goto fail;
    }
  ckeys_free(v, n);
  if (json_object_set_new(p, "buckets", nb)) goto fail;
  return p;
fail:
  json_decref(p);
  return NULL;
}

/* M's buckets in composite order (M.mb reordered) */
static int composite_sort(const qq__agg *a, qq__merged *M) {
  json_t **keys = qb_malloc((M->nb ? M->nb : 1) * sizeof *keys);
  if (!keys) return -1;
  for (size_t i = 0; i < M->nb; i++) keys[i] = M->mb[i].key;
  ckey *v = ckeys_sorted(a->x, keys, M->nb);
  qb_free(keys, (M->nb ? M->nb : 1) * sizeof *keys);
  qq__mbucket *nb = v ? qb_malloc((M->nb ? M->nb : 1) * sizeof *nb) : NULL;
  if (!nb) {
    ckeys_free(v, M->nb);
    return -1;
  }
  for (size_t i = 0; i < M->nb; i++) nb[i] = M->mb[v[i].i];
  if (M->nb) memcpy(M->mb, nb, M->nb * sizeof *nb);
  qb_free(nb, (M->nb ? M->nb : 1) * sizeof *nb);
  ckeys_free(v, M->nb);
  /* the index points at old positions: rebuild it */
  json_object_clear(M->index);
  for (size_t i = 0; i < M->nb; i++)
    if (json_is_string(M->mb[i].key) && json_object_set_new(M->index, json_string_value(M->mb[i].key), json_integer((json_int_t)i)))
      return -1;
  return 0;
}

json_t *qq__xb_merge(const qq__agg *a, const json_t *aparts) {
  qq__merged M;
  json_t *out = NULL;
  if (!qq__merge_buckets(a, aparts, &M) && (a->kind != AG_COMPOSITE || !composite_sort(a, &M)))
    out = qq__merged_partial(a, &M, "string", a->kind == AG_COMPOSITE ? a->x->size : M.nb);
  qq__merged_fini(a, &M);
  return out;
}

/* the rendered value of composite source K from its key value V */
static json_t *csrc_value(const qq__csrc *src, const json_t *v) {
  if (src->kind == 2 && src->format && json_is_integer(v)) {
    char buf[64];
    qq__tz_format(src->tz, src->format, json_integer_value(v), buf, sizeof buf);
    return json_string(buf);
  }
  return json_incref((json_t *)v);
}

static json_t *render_composite(const qq__agg *a, qq__merged *M, qb_err *err) {
  const qq__xagg *x = a->x;
  json_t *bs = json_array(), *out = json_pack("{s:o}", "buckets", bs), *last = NULL;
  if (!out || composite_sort(a, M)) goto fail;
  for (size_t i = 0; i < M->nb && i < x->size; i++) {
    json_error_t je;
    json_t *arr = json_loads(json_string_value(M->mb[i].key), 0, &je);
    json_t *key = json_object(), *bj = json_object();
    int bad = !arr || !key || !bj || json_array_append_new(bs, bj) || json_object_set_new(bj, "key", key);
    for (size_t k = 0; !bad && k < x->nsrc; k++)
      bad = json_object_set_new(key, x->src[k].name, csrc_value(&x->src[k], json_array_get(arr, k)));
    json_decref(arr);
    if (bad || qq__bucket_body(a, bj, &M->mb[i], M->sub_date, err)) goto fail;
    last = key;
  }
  if (last && json_object_set(out, "after_key", last)) goto fail;
  if (qq__bucket_sort_apply(a, out, err)) goto fail;
  return out;
fail:
  json_decref(out);
  return NULL;
}

static int set_num(json_t *o, const char *k, double v) { return json_object_set_new(o, k, json_real(v)); }

json_t *qq__xb_render(const qq__agg *a, const json_t *aparts, qb_err *err) {
  const qq__xagg *x = a->x;
  qq__merged M;
  json_t *out = NULL;
  char key[24];
  if (qq__merge_buckets(a, aparts, &M)) goto done;
  if (a->kind == AG_COMPOSITE) {
    out = render_composite(a, &M, err);
    goto done;
  }
  if (a->kind == AG_FILTER || a->kind == AG_MISSING || a->kind == AG_GLOBAL) {
    if (!(out = json_object()) || qq__bucket_body(a, out, qq__merged_find(&M, "0"), M.sub_date, err)) {
      json_decref(out);
      out = NULL;
    }
    goto done;
  }
  int keyed = a->kind == AG_FILTERS ? !x->anon && x->keyed : x->keyed;
  json_t *bs = keyed ? json_object() : json_array();
  if (!(out = json_pack("{s:o}", "buckets", bs))) goto done;
  for (size_t i = 0; i < nbuckets(a); i++) {
    snprintf(key, sizeof key, "%zu", i);
    json_t *bj = json_object();
    const char *name = NULL;
    int bad = !bj;
    if (a->kind == AG_FILTERS) {
      name = i < x->nfilters ? (x->anon ? NULL : x->fnames[i]) : (x->other_key ? x->other_key : "_other_");
      if (!keyed && name) bad = bad || json_object_set_new(bj, "key", json_string(name));
    } else {
      const qq__xrange *r = &x->ranges[i];
      char buf[64];
      name = r->key;
      if (!keyed) bad = bad || json_object_set_new(bj, "key", json_string(r->key));
      if (r->has_from) {
        bad = bad || set_num(bj, "from", r->from);
        if (a->kind == AG_DATE_RANGE) {
          qq__tz_format(NULL, x->format, (int64_t)r->from, buf, sizeof buf);
          bad = bad || json_object_set_new(bj, "from_as_string", json_string(buf));
        }
      }
      if (r->has_to) {
        bad = bad || set_num(bj, "to", r->to);
        if (a->kind == AG_DATE_RANGE) {
          qq__tz_format(NULL, x->format, (int64_t)r->to, buf, sizeof buf);
          bad = bad || json_object_set_new(bj, "to_as_string", json_string(buf));
        }
      }
    }
    bad = bad || (keyed ? json_object_set_new(bs, name ? name : key, bj) : json_array_append_new(bs, bj));
    if (bad || qq__bucket_body(a, bj, qq__merged_find(&M, key), M.sub_date, err)) {
      json_decref(out);
      out = NULL;
      goto done;
    }
  }
done:
  qq__merged_fini(a, &M);
  return out;
}
