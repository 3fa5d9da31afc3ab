/* search.c: one request on one shard: per segment, drive the plan's iterator, gather matches in
** blocks of QQ_BLOCK_MAX (for aggregations and sort values), keep the top from+size in a
** bounded heap, then fetch the winners (_id, filtered _source, script_fields) into the
** shard's partial result (JSON, see internal.h). Also the request's parse entry point.
** Invariant: hits are ranked by the request's sort keys, then by snapshot doc number (Lucene's
** tie-break), so results are deterministic. */
#define _GNU_SOURCE /* qsort_r */
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests ------------------------------------------------------------------------------- */

qb_code qq_request_parse(const qq_env *env, const char *body, size_t len, int for_count,
                         qq_request **out, qb_err *err) {
  qq_request *req;
  json_error_t je;
  qb_code rc;
  *out = NULL;
  if (!(req = qb_malloc(sizeof *req))) return qb_fail(err, QB_NOMEM, "query: out of memory");
  memset(req, 0, sizeof *req);
  qb_arena_init(&req->arena);
  req->arena.limit_bytes = env && env->arena_limit_bytes ? env->arena_limit_bytes : ((size_t)512 << 20);
  req->env = env;
  req->for_count = for_count;
  if (len == 0 || !body) {
    req->body = json_object();
  } else {
    /* DECODE_ANY so "[1]" and "3" are found and rejected below with the right type */
    uint64_t failed = qb_alloc_failures(); /* jansson may report running out as bad JSON */
    req->body = qq__json_load(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!req->body && qb_alloc_failures() != failed) {
      rc = qb_fail(err, QB_NOMEM, "query: out of memory");
      goto fail;
    }
    if (!req->body) {
      rc = qb_fail(err, QB_PARSE, "failed to parse the request body: %s at line %d, column %d (position %d)",
                   je.text, je.line, je.column, je.position);
      goto fail;
    }
  }
  if (!req->body) {
    rc = qb_fail(err, QB_NOMEM, "query: out of memory");
    goto fail;
  }
  if ((rc = qq__parse(req, req->body, err))) goto fail;
  *out = req;
  return QB_OK;
fail:
  qq_request_free(req);
  return rc;
}

void qq_request_set_term_stats(qq_request *req, const qq_term_stats *ts) { req->term_stats = ts; }

void qq_request_raw_source(qq_request *req) { req->raw_source = 1; }

void qq_request_hits_text(qq_request *req) { req->hits_text = 1; }

int qq_request_raw_source_on(const qq_request *req) { return req && req->raw_source; }

void qq_request_set_shard_index(qq_request *req, uint32_t ix) {
  req->shard_index = ix;
  req->has_shard_index = 1;
}

void qq_request_free(qq_request *req) {
  if (!req) return;
  for (qq__script *s = req->scripts; s; s = s->next) {
    s->s->vt->free(s->s);
    qb_buf_fini(&s->src_doc);
    qb_buf_fini(&s->src_bytes);
  }
  json_decref(req->body);
  json_decref(req->made);
  qb_arena_fini(&req->arena);
  qb_free(req, sizeof *req);
}

/* ---- partials --------------------------------------------------------------------------------- */

/* KEYS: when the shard wrote hits as text (qq_request_hits_text), every hit's _score and _doc
** in "hits" order (the text holds neither _doc nor a number to read back); NULL otherwise. */
typedef struct hit_key {
  double score;
  json_int_t doc;
} hit_key;

struct qq_partial {
  json_t *j;
  hit_key *keys;
  size_t nkeys;
};

static void keys_free(qq_partial *p) {
  qb_free(p->keys, p->nkeys * sizeof *p->keys);
  p->keys = NULL;
  p->nkeys = 0;
}

void qq_partial_free(qq_partial *p) {
  if (!p) return;
  json_decref(p->j);
  keys_free(p);
  qb_free(p, sizeof *p);
}

/* 1 when hit K of P's "hits" was written with its keys beside it (*SCORE, *DOC) */
int qq__partial_hit_key(const qq_partial *p, size_t k, double *score, json_int_t *doc);
int qq__partial_hit_key(const qq_partial *p, size_t k, double *score, json_int_t *doc) {
  if (!p->keys || k >= p->nkeys) return 0;
  *score = p->keys[k].score;
  *doc = p->keys[k].doc;
  return 1;
}

/* J's text hits (P's keys) back into objects with their _doc, as every reader of a partial's
** JSON expects them. 0, or -1 when out of memory. */
static int untext(json_t *j, const qq_partial *p) {
  json_t *hits = json_object_get(j, "hits");
  for (size_t k = 0; k < json_array_size(hits) && k < p->nkeys; k++) {
    json_t *h = json_array_get(hits, k);
    if (!json_is_string(h)) continue;
    const char *s = json_string_value(h);
    size_t n = json_string_length(h);
    if (n < QQ_RAW_JSON_LEN || memcmp(s, QQ_RAW_JSON, QQ_RAW_JSON_LEN)) continue;
    json_t *o = json_loadb(s + QQ_RAW_JSON_LEN, n - QQ_RAW_JSON_LEN, 0, NULL);
    if (!o || json_object_set_new(o, "_doc", json_integer(p->keys[k].doc)) ||
        json_array_set_new(hits, k, o))
      return -1;
  }
  return 0;
}

static qb_code partial_wrap(json_t *j, qq_partial **out, qb_err *err) {
  qq_partial *p;
  *out = NULL;
  if (!j || !(p = qb_malloc(sizeof *p))) {
    json_decref(j);
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  }
  p->j = j;
  p->keys = NULL;
  p->nkeys = 0;
  *out = p;
  return QB_OK;
}

qb_code qq_partial_failed(const char *index_name, uint32_t shard_id, const qb_err *e,
                          qq_partial **out, qb_err *err) {
  json_t *j = json_pack("{s:s, s:i, s:{s:s, s:i}}", "index", index_name ? index_name : "", "shard",
                        (json_int_t)shard_id, "failure", "reason", e ? e->msg : "unknown", "code",
                        (json_int_t)(e ? e->code : QB_INTERNAL));
  return partial_wrap(j, out, err);
}

qb_code qq_partial_to_json(const qq_partial *p, json_t **out, qb_err *err) {
  if (!(*out = json_deep_copy(p->j)) || (p->keys && untext(*out, p))) {
    json_decref(*out);
    *out = NULL;
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  }
  return QB_OK;
}

json_t *qq_partial_to_json_take(qq_partial *p) {
  json_t *j = p ? p->j : NULL;
  if (j && p->keys && untext(j, p)) {
    json_decref(j);
    j = NULL;
  }
  if (p) {
    keys_free(p);
    qb_free(p, sizeof *p);
  }
  return j;
}

qb_code qq_partial_from_json(const json_t *j, qq_partial **out, qb_err *err) {
  *out = NULL;
  if (!json_is_object(j) || !json_is_integer(json_object_get(j, "shard")))
    return qb_fail(err, QB_CORRUPT, "shard result: not a partial result object");
  if (!json_object_get(j, "failure") && !json_is_array(json_object_get(j, "hits")))
    return qb_fail(err, QB_CORRUPT, "shard result: [hits] missing");
  return partial_wrap(json_deep_copy(j), out, err);
}

qb_code qq_partial_from_json_take(json_t *j, qq_partial **out, qb_err *err) {
  *out = NULL;
  if (!json_is_object(j) || !json_is_integer(json_object_get(j, "shard")) ||
      (!json_object_get(j, "failure") && !json_is_array(json_object_get(j, "hits")))) {
    json_decref(j);
    return qb_fail(err, QB_CORRUPT, "shard result: not a partial result object with [hits]");
  }
  return partial_wrap(j, out, err);
}

json_t *qq__partial_json(const qq_partial *p);
json_t *qq__partial_json(const qq_partial *p) { return p->j; }

/* ---- the top-k heap ------------------------------------------------------------------------------ */

typedef struct sval {
  uint8_t missing;
  uint8_t is_str;
  uint8_t is_int;
  double num;
  int64_t i64;
  const char *str;
  size_t len;
} sval;

typedef struct hit {
  double score;
  uint64_t gdoc;
  uint32_t seg, doc;
  sval *sv; /* nsort values */
} hit;

typedef struct topk {
  const qq_request *req;
  hit *h;   /* binary heap, the worst hit at the root */
  size_t n, k;
  sval *svpool;
} topk;

static int cmp_sval(const qq__sort *s, const sval *a, const sval *b) {
  if (a->missing || b->missing) {
    if (a->missing && b->missing) return 0;
    int first = s->missing == MISSING_FIRST;
    return a->missing ? (first ? -1 : 1) : (first ? 1 : -1); /* independent of the order */
  }
  int c;
  if (a->is_str) {
    size_t m = a->len < b->len ? a->len : b->len;
    c = memcmp(a->str, b->str, m);
    if (!c) c = a->len < b->len ? -1 : a->len > b->len;
  } else if (a->is_int && b->is_int) {
    c = a->i64 < b->i64 ? -1 : a->i64 > b->i64;
  } else {
    c = a->num < b->num ? -1 : a->num > b->num;
  }
  return s->desc ? -c : c;
}

/* <0: A ranks before B */
static int cmp_hit(const qq_request *req, const hit *a, const hit *b) {
  if (!req->nsort) {
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
  } else {
    for (size_t i = 0; i < req->nsort; i++) {
      const qq__sort *s = &req->sort[i];
      int c = 0;
      if (s->kind == SK_SCORE) c = a->score == b->score ? 0 : (a->score > b->score) == s->desc ? -1 : 1;
      else if (s->kind == SK_DOC || s->kind == SK_SHARD_DOC) c = a->gdoc == b->gdoc ? 0 : (a->gdoc < b->gdoc) != s->desc ? -1 : 1;
      else c = cmp_sval(s, &a->sv[i], &b->sv[i]);
      if (c) return c;
    }
  }
  return a->gdoc < b->gdoc ? -1 : a->gdoc > b->gdoc;
}

static void heap_swap(topk *t, size_t i, size_t j) {
  hit x = t->h[i];
  t->h[i] = t->h[j];
  t->h[j] = x;
}

/* heap order: parent ranks after children (worst at root) */
static void sift_up(topk *t, size_t i) {
  while (i) {
    size_t p = (i - 1) / 2;
    if (cmp_hit(t->req, &t->h[p], &t->h[i]) >= 0) break;
    heap_swap(t, p, i);
    i = p;
  }
}
static void sift_down(topk *t, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, w = i;
    if (l < t->n && cmp_hit(t->req, &t->h[l], &t->h[w]) > 0) w = l;
    if (r < t->n && cmp_hit(t->req, &t->h[r], &t->h[w]) > 0) w = r;
    if (w == i) break;
    heap_swap(t, i, w);
    i = w;
  }
}

static void topk_add(topk *t, const hit *c) {
  size_t ns = t->req->nsort;
  if (!t->k) return;
  if (t->n < t->k) {
    hit *dst = &t->h[t->n];
    sval *keep = t->svpool + t->n * ns;
    *dst = *c;
    dst->sv = keep;
    if (ns) memcpy(keep, c->sv, ns * sizeof *keep);
    t->n++;
    sift_up(t, t->n - 1);
    return;
  }
  if (cmp_hit(t->req, c, &t->h[0]) >= 0) return; /* not better than the worst kept */
  sval *keep = t->h[0].sv;
  t->h[0] = *c;
  t->h[0].sv = keep;
  if (ns) memcpy(keep, c->sv, ns * sizeof *keep);
  sift_down(t, 0);
}

static int cmp_hit_qsort_req(const void *a, const void *b, void *req) {
  return cmp_hit(req, a, b);
}

/* ---- per-block sort values ------------------------------------------------------------------------ */

typedef struct sortcol {
  qi_field_info fi;
  int mapped;
} sortcol;

static void read_sort_values(const qq_request *req, const sortcol *sc, const qi_segment *seg,
                             const uint32_t *docs, size_t n, sval *out /* n * nsort */) {
  size_t ns = req->nsort;
  double f[QQ_BLOCK_MAX];
  int64_t iv[QQ_BLOCK_MAX];
  uint8_t pr[QQ_BLOCK_MAX];
  for (size_t k = 0; k < ns; k++) {
    const qq__sort *s = &req->sort[k];
    if (s->kind != SK_FIELD) continue;
    const sortcol *c = &sc[k];
    if (!c->mapped || c->fi.dv == QI_DV_NONE) {
      memset(pr, 0, n);
    } else if (c->fi.dv == QI_DV_I64) {
      qi_dv_read_i64(seg, c->fi.id, docs, n, iv, pr);
    } else if (c->fi.dv == QI_DV_F64) {
      qi_dv_read_f64(seg, c->fi.id, docs, n, f, pr);
    } else {
      qi_dv_read_ord(seg, c->fi.id, docs, n, iv);
      for (size_t i = 0; i < n; i++) pr[i] = iv[i] >= 0;
    }
    for (size_t i = 0; i < n; i++) {
      sval *v = &out[i * ns + k];
      memset(v, 0, sizeof *v);
      if (!pr[i]) {
        if (s->missing == MISSING_VALUE && s->missing_value) {
          const json_t *mv = s->missing_value;
          if (json_is_string(mv)) {
            v->is_str = 1;
            v->str = json_string_value(mv);
            v->len = json_string_length(mv);
          } else if (json_is_integer(mv)) {
            v->is_int = 1;
            v->i64 = json_integer_value(mv);
            v->num = (double)v->i64;
          } else {
            v->num = json_number_value(mv);
          }
        } else {
          v->missing = 1;
        }
        continue;
      }
      if (c->fi.dv == QI_DV_I64) {
        v->is_int = 1;
        v->i64 = iv[i];
        v->num = (double)iv[i];
      } else if (c->fi.dv == QI_DV_F64) {
        v->num = f[i];
      } else {
        v->is_str = 1;
        v->str = qi_dv_ord_term(seg, c->fi.id, (uint32_t)iv[i], &v->len);
      }
    }
  }
}

/* ---- fetch ------------------------------------------------------------------------------------------ */

static json_t *sval_json(const qq__sort *s, const hit *h, const sval *v, uint64_t shard_ix) {
  if (s->kind == SK_SCORE) return json_real((float)h->score);
  if (s->kind == SK_SHARD_DOC) return json_integer((json_int_t)(shard_ix << 32 | h->gdoc));
  if (s->kind == SK_DOC) return json_integer((json_int_t)h->gdoc);
  if (v->missing) return json_null();
  if (v->is_str) return json_stringn(v->str, v->len);
  if (v->is_int) return json_integer(v->i64);
  return json_real(v->num);
}

typedef struct sfpair {
  uint32_t doc;
  size_t hit;
} sfpair;

static int cmp_pair(const void *a, const void *b) {
  const sfpair *x = a, *y = b;
  return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* Bounds on what script_fields may return (issue 13 #4: a transform returning its whole 16 MiB
** memory as a string, at size 50, took the node to 10.75 GB). One value over the first is a
** script error naming the document; the request's total over the second trips the request
** breaker (429 circuit_breaking_exception), as Elasticsearch's does, before the host runs short. */
#define SF_VALUE_MAX ((size_t)1 << 20)    /* default of qq_env.script_value_max */
#define SF_REQUEST_MAX ((size_t)64 << 20) /* default of qq_env.script_response_max */

static size_t sf_value_max(const qq_request *req) {
  return req->env && req->env->script_value_max ? req->env->script_value_max : SF_VALUE_MAX;
}
static size_t sf_request_max(const qq_request *req) {
  return req->env && req->env->script_response_max ? req->env->script_response_max
                                                    : SF_REQUEST_MAX;
}

static qb_code sf_too_big(qq__shard *sh, const qi_segment *seg, uint32_t doc, const char *field,
                          size_t len, qb_err *err) {
  size_t idl = 0;
  const char *id = qi_segment_doc_id(seg, doc, &idl);
  return qb_fail(err, QB_LIMIT, "script_fields [%s]: the value for document [%.*s] is %zu bytes, "
                 "larger than the limit of %zu bytes per value", field,
                 (int)(id ? (idl > 100 ? 100 : idl) : 1), id ? id : "?", len,
                 sf_value_max(sh->req));
}

static qb_code fetch_script_fields(qq__shard *sh, hit *hits, size_t n, json_t **fields, qb_err *err) {
  const qq_request *req = sh->req;
  size_t total = 0;
  size_t nseg = qi_snapshot_segment_count(sh->snap);
  sfpair *pairs = qb_arena_array(sh->ar, n + 1, sizeof *pairs);
  uint32_t docs[QQ_BLOCK_MAX];
  double scores[QQ_BLOCK_MAX];
  qb_code rc;
  if (!pairs) return qb_fail(err, QB_NOMEM, "query: out of memory");
  for (size_t s = 0; s < nseg; s++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (hits[i].seg == s) pairs[m++] = (sfpair){hits[i].doc, i};
    if (!m) continue;
    qsort(pairs, m, sizeof *pairs, cmp_pair);
    const qi_segment *seg = qi_snapshot_segment(sh->snap, s);
    for (size_t off = 0; off < m; off += QQ_BLOCK_MAX) {
      size_t b = m - off < QQ_BLOCK_MAX ? m - off : QQ_BLOCK_MAX;
      for (size_t i = 0; i < b; i++) {
        docs[i] = pairs[off + i].doc;
        scores[i] = hits[pairs[off + i].hit].score;
      }
      for (size_t f = 0; f < req->nscript_fields; f++) {
        qq__script *sc = req->script_fields[f].script;
        if ((rc = qq__script_run(sc, sh, seg, (uint32_t)qi_snapshot_doc_base(sh->snap, s), docs, scores, b, err)))
          return rc;
        for (size_t i = 0; i < b; i++) {
          json_t *v;
          size_t hi = pairs[off + i].hit;
          if (!sc->res_present[i]) v = json_null();
          else if (sc->bind.result == QQ_RESULT_STR) {
            size_t len = sc->res_str[i].ptr ? sc->res_str[i].len : 0;
            if (len > sf_value_max(req))
              return sf_too_big(sh, seg, docs[i], req->script_fields[f].name, len, err);
            if ((total += len) > sf_request_max(req))
              return qb_fail(err, QB_NOMEM, "[request] Data too large: script_fields would take "
                             "more than the limit of %zu bytes in this response",
                             sf_request_max(req));
            v = sc->res_str[i].ptr ? json_stringn(sc->res_str[i].ptr, len) : json_null();
          }
          else v = json_real(sc->res[i]);
          if (!fields[hi] && !(fields[hi] = json_object()))
            return json_decref(v), qb_fail(err, QB_NOMEM, "query: out of memory");
          if (!v || json_object_set_new(fields[hi], req->script_fields[f].name, json_pack("[o]", v)))
            return qb_fail(err, QB_NOMEM, "query: out of memory");
        }
      }
    }
  }
  return QB_OK;
}

/* ---- the shard search ------------------------------------------------------------------------------- */

/* One request on one shard, as it runs: the collector's state and its per-block scratch. */
typedef struct shard_run {
  qq_request *req;
  const qi_snapshot *snap;
  qq__shard sh;
  qq__seg_ctx cx;          /* the segment being searched */
  topk tk;
  qq__aggs_state *aggs;    /* NULL: no aggregations */
  sortcol *scol;           /* nsort */
  sval *bsv;               /* QQ_BLOCK_MAX * nsort: the block's sort values (NULL: no sort) */
  uint32_t bdocs[QQ_BLOCK_MAX];  /* the block's docs (segment-local) */
  double bscores[QQ_BLOCK_MAX];  /* their scores (NAN when not needed) */
  size_t ns;               /* req->nsort */
  uint64_t total;          /* matches counted */
  double max_score;
  int need_scores, can_prune, skipped;
  uint64_t deadline_ns;    /* qb_now_ns() past which collection stops (req->timeout_ns); 0: none */
  int timed_out;
  json_t *index_j;         /* "_index" of every hit (hit_json), made once */
  /* deep pagination and result shaping (req->pg; paging.c, collapse.c, rescore.c) */
  qq__it *pf_it;           /* post_filter on the current segment (NULL: none) */
  int pf_started;
  uint64_t collected;      /* terminate_after: matches collected so far */
  int terminated;          /* stopped at terminate_after */
  int presorted;           /* the heap is sorted already (rescore) */
  sval *after_sv;          /* search_after, one value per sort key (nsort, or 1: the score) */
  int has_after;
  qq__collapse *col;       /* collapse: the groups' slots */
  hit *groups;             /* each group's best hit, by slot */
  sval *gsv;               /* their sort values (nsort per group) */
  size_t ngroups, gcap;    /* groups[0..ngroups) are set or unset (seg == UINT32_MAX) */
  size_t nslots;           /* the slots qq__collapse_slots gave out */
  uint32_t slots[QQ_BLOCK_MAX];
} shard_run;

static uint64_t shard_ix(const shard_run *r) {
  return r->req->has_shard_index ? r->req->shard_index : r->sh.shard_id;
}

/* ---- search_after, post_filter, terminate_after, collapse ------------------------------------ */

/* search_after's value K (JSON) as a sort value of the shard's sort key K */
static qb_code after_value(shard_run *r, size_t k, const json_t *v, sval *out, qb_err *err) {
  const qq_request *req = r->req;
  const qq__sort *s = req->nsort ? &req->sort[k] : NULL;
  memset(out, 0, sizeof *out);
  if (s && s->kind == SK_FIELD && r->scol[k].mapped && r->scol[k].fi.dv == QI_DV_KEYWORD) {
    if (json_is_null(v)) out->missing = 1;
    else if (json_is_string(v)) {
      out->is_str = 1;
      out->str = json_string_value(v);
      out->len = json_string_length(v);
    } else {
      return qb_fail(err, QB_INVAL, "Failed to parse search_after value for field [%s]: a keyword "
                     "field sorts by strings", s->field);
    }
    return QB_OK;
  }
  if (s && s->kind == SK_FIELD && (!r->scol[k].mapped || json_is_null(v))) {
    out->missing = 1;
    return QB_OK;
  }
  if (json_is_integer(v)) {
    out->is_int = 1;
    out->i64 = json_integer_value(v);
    out->num = (double)out->i64;
  } else if (json_is_real(v)) {
    out->num = json_real_value(v);
  } else if (json_is_boolean(v)) {
    out->is_int = 1;
    out->i64 = json_is_true(v);
    out->num = (double)out->i64;
  } else if (json_is_string(v)) {
    char *end;
    const char *t = json_string_value(v);
    out->num = strtod(t, &end);
    if (!*t || *end)
      return qb_fail(err, QB_INVAL, "Failed to parse search_after value [%s] for sort key %zu", t, k);
    long long ll = strtoll(t, &end, 10);
    if (!*end) {
      out->is_int = 1;
      out->i64 = ll;
    }
  } else {
    return qb_fail(err, QB_INVAL, "Failed to parse search_after value for sort key %zu", k);
  }
  return QB_OK;
}

static qb_code paging_init(shard_run *r, qb_err *err) {
  const qq__paging *pg = r->req->pg;
  qb_code rc;
  if (pg->after) {
    size_t nv = json_array_size(pg->after);
    if (!(r->after_sv = qb_arena_array(&r->req->arena, nv + 1, sizeof *r->after_sv)))
      return qb_fail(err, QB_NOMEM, "query: out of memory");
    for (size_t k = 0; k < nv; k++)
      if ((rc = after_value(r, k, json_array_get(pg->after, k), &r->after_sv[k], err))) return rc;
    r->has_after = 1;
  }
  if (pg->collapse && (rc = qq__collapse_new(r->req, r->snap, &r->col, err))) return rc;
  return QB_OK;
}

/* 1 when H ranks strictly after the search_after values (ties are skipped, as Elasticsearch) */
static int after_ok(const shard_run *r, const hit *h) {
  const qq_request *req = r->req;
  size_t ns = req->nsort ? req->nsort : 1;
  for (size_t k = 0; k < ns; k++) {
    const qq__sort *s = req->nsort ? &req->sort[k] : NULL;
    const sval *a = &r->after_sv[k];
    int c;
    if (!s || s->kind == SK_SCORE) { /* hits show float scores: compare those */
      double hs = (float)h->score, as = a->num;
      c = hs == as ? 0 : (hs > as) == (s ? s->desc : 1) ? -1 : 1;
    } else if (s->kind == SK_DOC || s->kind == SK_SHARD_DOC) {
      int64_t hv = (int64_t)(s->kind == SK_DOC ? h->gdoc : shard_ix(r) << 32 | h->gdoc);
      int64_t av = a->is_int ? a->i64 : (int64_t)a->num;
      c = hv == av ? 0 : (hv < av) != s->desc ? -1 : 1;
    } else {
      c = cmp_sval(s, &h->sv[k], a);
    }
    if (c) return c > 0;
  }
  return 0;
}

/* post_filter: keep the block's docs the filter matches (the aggregations saw them all) */
static size_t post_filter(shard_run *r, size_t n) {
  qq__it *p = r->pf_it;
  size_t m = 0;
  if (!r->pf_started) {
    r->pf_started = 1;
    p->next(p);
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t d = r->bdocs[i];
    if (p->doc < d) p->advance(p, d);
    if (p->doc != d) continue;
    r->bdocs[m] = d;
    r->bscores[m++] = r->bscores[i];
  }
  return m;
}

/* collapse: H (of the block's slot SLOT) becomes its group's best if it beats it */
static qb_code collapse_offer(shard_run *r, uint32_t slot, const hit *h, qb_err *err) {
  size_t ns = r->ns;
  if (slot >= r->gcap) {
    size_t nc = r->gcap ? r->gcap * 2 : 256;
    while (nc <= slot) nc *= 2;
    hit *ng = qb_realloc(r->groups, r->gcap * sizeof *ng, nc * sizeof *ng);
    if (!ng) return qb_fail(err, QB_NOMEM, "query: out of memory (collapse groups)");
    r->groups = ng;
    if (ns) {
      sval *nv = qb_realloc(r->gsv, r->gcap * ns * sizeof *nv, nc * ns * sizeof *nv);
      if (!nv) return qb_fail(err, QB_NOMEM, "query: out of memory (collapse groups)");
      r->gsv = nv;
    }
    r->gcap = nc;
  }
  for (; r->ngroups <= slot; r->ngroups++) r->groups[r->ngroups].seg = UINT32_MAX;
  if (r->groups[slot].seg != UINT32_MAX) {
    hit old = r->groups[slot];
    old.sv = ns ? r->gsv + (size_t)slot * ns : NULL;
    if (cmp_hit(r->req, h, &old) >= 0) return QB_OK;
  }
  r->groups[slot] = *h;
  r->groups[slot].sv = NULL; /* set from gsv when offered to the heap (gsv may move) */
  if (ns) memcpy(r->gsv + (size_t)slot * ns, h->sv, ns * sizeof *h->sv);
  return QB_OK;
}

static void collapse_done(shard_run *r) {
  for (size_t g = 0; g < r->ngroups; g++) {
    hit h = r->groups[g];
    if (h.seg == UINT32_MAX) continue;
    h.sv = r->ns ? r->gsv + g * r->ns : NULL;
    topk_add(&r->tk, &h);
  }
}

/* rescore: the heap sorted, its first window_size hits re-scored and re-sorted, per rescorer */
static qb_code rescore_run(shard_run *r, qb_err *err) {
  topk *tk = &r->tk;
  const qq__paging *pg = r->req->pg;
  if (!tk->n) return QB_OK;
  qsort_r(tk->h, tk->n, sizeof *tk->h, cmp_hit_qsort_req, r->req);
  r->presorted = 1;
  uint32_t *segs = qb_arena_array(&r->req->arena, tk->n, sizeof *segs);
  uint32_t *docs = qb_arena_array(&r->req->arena, tk->n, sizeof *docs);
  double *sc = qb_arena_array(&r->req->arena, tk->n, sizeof *sc);
  if (!segs || !docs || !sc) return qb_fail(err, QB_NOMEM, "query: out of memory");
  for (size_t k = 0; k < pg->nrescore; k++) {
    size_t w = pg->rescore[k].window < tk->n ? pg->rescore[k].window : tk->n;
    for (size_t i = 0; i < w; i++) {
      segs[i] = tk->h[i].seg;
      docs[i] = tk->h[i].doc;
      sc[i] = tk->h[i].score;
    }
    qb_code rc = qq__rescore_apply(&r->sh, &pg->rescore[k], segs, docs, sc, w, err);
    if (rc) return rc;
    for (size_t i = 0; i < w; i++) tk->h[i].score = sc[i];
    qsort_r(tk->h, w, sizeof *tk->h, cmp_hit_qsort_req, r->req); /* the rest stays after */
  }
  r->max_score = -INFINITY;
  for (size_t i = 0; i < tk->n; i++)
    if (tk->h[i].score > r->max_score) r->max_score = tk->h[i].score;
  return QB_OK;
}

/* Plan-independent setup: scoring/pruning flags, the top-k heap, block scratch, sort columns
** (a text field cannot be sorted on) and the aggregation states */
static qb_code run_init(shard_run *r, qq_request *req, const qi_snapshot *snap, const char *index_name,
                        uint32_t shard_id, qb_err *err) {
  size_t ns = req->nsort;
  /* the block scratch (3 KiB) is written before it is read: not cleared, and not taken from
  ** the arena (a fixed cost every query paid: a 12 KiB zeroed allocation, issue 14) */
  memset(r, 0, offsetof(shard_run, bdocs));
  memset(&r->ns, 0, sizeof *r - offsetof(shard_run, ns));
  r->req = req;
  r->snap = snap;
  r->ns = ns;
  r->max_score = -INFINITY;
  if (req->timeout_ns) r->deadline_ns = qb_now_ns() + req->timeout_ns;
  r->need_scores = !ns || req->track_scores || req->has_min_score;
  /* MaxScore may skip documents once the count has reached track_total_hits (DESIGN: ES's
  ** lower bound) when nothing else needs every match */
  r->can_prune = !ns && !req->naggs && !req->has_min_score && req->track_total >= 0 && !req->for_count;
  r->sh.req = req;
  r->sh.snap = snap;
  r->sh.index_name = index_name;
  r->sh.shard_id = shard_id;
  r->sh.ar = &req->arena;
  for (size_t i = 0; i < ns; i++)
    if (req->sort[i].kind == SK_SCORE) r->need_scores = 1;
  for (qq__script *s = req->scripts; s; s = s->next) s->bound = 0;
  r->tk.req = req;
  r->tk.k = req->for_count ? 0 : (size_t)req->from + req->size;
  if (req->pg && !req->for_count && req->pg->window > r->tk.k) r->tk.k = req->pg->window;
  if (req->pg) r->can_prune = 0; /* a bar from the heap's worst would not hold for these */
  r->tk.h = qb_arena_array(&req->arena, r->tk.k + 1, sizeof *r->tk.h);
  r->tk.svpool = qb_arena_array(&req->arena, (r->tk.k + 1) * (ns + 1), sizeof *r->tk.svpool);
  r->scol = qb_arena_array(&req->arena, ns + 1, sizeof *r->scol);
  if (ns) r->bsv = qb_arena_array(&req->arena, QQ_BLOCK_MAX * ns, sizeof *r->bsv);
  if (!r->tk.h || !r->tk.svpool || !r->scol || (ns && !r->bsv))
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  for (size_t i = 0; i < ns; i++)
    if (req->sort[i].kind == SK_FIELD) {
      sortcol *sc = &r->scol[i];
      sc->mapped = !qi_snapshot_field(snap, req->sort[i].field, &sc->fi);
      if (!sc->mapped && !req->sort[i].unmapped_ok)
        return qb_fail(err, QB_INVAL, "No mapping found for [%s] in order to sort on", req->sort[i].field);
      if (sc->mapped && sc->fi.type == QI_TEXT)
        return qb_fail(err, QB_INVAL, "Text fields are not optimised for operations that require per-document field "
                       "data like aggregations and sorting, so these operations are disabled by default. Please use "
                       "a keyword field instead. Alternatively, set fielddata=true on [%s] in order to load field "
                       "data by uninverting the inverted index.", req->sort[i].field);
    }
  if (req->pg && !req->for_count) {
    qb_code rc = paging_init(r, err);
    if (rc) return rc;
  }
  if (req->naggs && !req->for_count) return qq__aggs_new(req, &r->sh, &r->aggs, err);
  return QB_OK;
}

/* Once the heap is full and the count exact enough, a doc must beat the heap's worst */
static void run_raise_bar(shard_run *r) {
  if (r->can_prune && r->tk.k && r->tk.n == r->tk.k && r->total >= (uint64_t)r->req->track_total)
    r->cx.min_comp = r->tk.h[0].score;
}

/* Append a scripted node's run of docs (from qq__buf_take) to the block at *N, with scores as
** needed and min_score applied */
static void block_add_run(shard_run *r, size_t *n, const uint32_t *td, const double *ts, size_t m) {
  const qq_request *req = r->req;
  if (!r->need_scores) {
    memcpy(r->bdocs + *n, td, m * sizeof *td);
    for (size_t j = 0; j < m; j++) r->bscores[*n + j] = NAN;
    *n += m;
  } else if (!req->has_min_score) {
    memcpy(r->bdocs + *n, td, m * sizeof *td);
    memcpy(r->bscores + *n, ts, m * sizeof *ts);
    *n += m;
  } else {
    for (size_t j = 0; j < m; j++)
      if (ts[j] >= req->min_score) {
        r->bdocs[*n] = td[j];
        r->bscores[(*n)++] = ts[j];
      }
  }
}

/* The block's N matches of segment S: counted, sort values read, aggregated, offered to top-k */
static qb_code block_flush(shard_run *r, size_t s, size_t n, qb_err *err) {
  qb_code rc;
  const qq__paging *pg = r->req->pg;
  if (pg && pg->terminate_after) { /* counts the query's matches, before post_filter */
    uint64_t left = pg->terminate_after - r->collected;
    if (n > left) {
      n = (size_t)left;
      r->terminated = 1;
    }
    r->collected += n;
  }
  if (r->aggs && (rc = qq__aggs_collect(r->aggs, r->cx.seg, (uint32_t)s, r->cx.base, r->bdocs,
                                        r->need_scores ? r->bscores : NULL, n, err)))
    return rc;
  if (r->pf_it) n = post_filter(r, n);
  r->total += n;
  if (r->ns) read_sort_values(r->req, r->scol, r->cx.seg, r->bdocs, n, r->bsv);
  if (r->col && (rc = qq__collapse_slots(r->col, r->cx.seg, r->bdocs, n, r->slots, &r->nslots, err)))
    return rc;
  for (size_t i = 0; i < n; i++) {
    hit h = {r->bscores[i], r->cx.base + r->bdocs[i], (uint32_t)s, r->bdocs[i], r->bsv ? r->bsv + i * r->ns : NULL};
    if (r->need_scores && r->bscores[i] > r->max_score) r->max_score = r->bscores[i];
    if (r->has_after && !after_ok(r, &h)) continue;
    if (!r->col) topk_add(&r->tk, &h);
    else if ((rc = collapse_offer(r, r->slots[i], &h, err))) return rc;
  }
  run_raise_bar(r);
  return QB_OK;
}

/* Segment S: build the plan's iterator and drive it, a block of matches at a time */
static qb_code search_segment(shard_run *r, size_t s, qb_err *err) {
  const qq_request *req = r->req;
  qq__seg_ctx *cx = &r->cx;
  qq__it *it;
  qb_code rc;
  size_t n = 0;
  memset(cx, 0, sizeof *cx);
  cx->sh = &r->sh;
  cx->seg = qi_snapshot_segment(r->snap, s);
  cx->seg_index = (uint32_t)s;
  cx->base = qi_snapshot_doc_base(r->snap, s);
  cx->max_doc = qi_segment_max_doc(cx->seg);
  cx->err = err;
  if (!qi_segment_live_count(cx->seg)) return QB_OK;
  cx->min_comp = -INFINITY;
  run_raise_bar(r);
  if ((rc = r->can_prune ? qq__it_build_top(cx, req->query, &it, err)
                         : qq__it_build(cx, req->query, r->need_scores, &it, err)))
    return rc;
  r->pf_it = NULL;
  r->pf_started = 0;
  if (req->pg && req->pg->post_filter && (rc = qq__it_build(cx, req->pg->post_filter, 0, &r->pf_it, err)))
    return rc;
  /* a scripted node computes its docs a block at a time: take them as runs, not one by one */
  const int take = it->next == qq__buf_next;
  for (uint32_t d = it->next(it);; d = it->next(it)) {
    if (d != QI_NO_MORE_DOCS && take) {
      const uint32_t *td;
      const double *ts;
      size_t m = qq__buf_take(it, QQ_BLOCK_MAX - n, &td, &ts);
      block_add_run(r, &n, td, ts, m);
    } else if (d != QI_NO_MORE_DOCS) {
      double sc = r->need_scores ? it->score(it) : NAN;
      if (req->has_min_score && !(sc >= req->min_score)) continue;
      r->bdocs[n] = d;
      r->bscores[n] = sc;
      n++;
    }
    if (n && (n == QQ_BLOCK_MAX || d == QI_NO_MORE_DOCS)) {
      if ((rc = block_flush(r, s, n, err))) return rc;
      n = 0;
      if (r->terminated) break;
      /* checked once a block (a clock read per 128 matches): past the request's timeout the
      ** shard answers what it has collected, as Elasticsearch's timed_out does */
      if (r->deadline_ns && qb_now_ns() > r->deadline_ns) {
        r->timed_out = 1;
        break;
      }
    }
    if (d == QI_NO_MORE_DOCS) break;
  }
  if (cx->rc) return cx->rc;
  r->skipped |= cx->skipped;
  if (r->aggs && (rc = qq__aggs_segment_done(r->aggs, cx->seg, err))) return rc;
  qq__seg_ctx_fini(cx);
  return QB_OK;
}

/* Whether hits carry their score (sorted by score, or track_scores) */
static int run_shows_scores(const shard_run *r) {
  const qq_request *req = r->req;
  return r->need_scores && (!r->ns || req->track_scores || req->sort[0].kind == SK_SCORE);
}

/* Hit H rendered for the partial: _index, _id, _version/_seq_no, _score, _source (its stored
** text SRC, SRCLEN bytes; SRC NULL: none, deleted since), FIELDS (taken; may be NULL), sort
** values, _doc. RAW: scratch for a raw _source's marked text (qq_request_raw_source). */
static qb_code hit_json(shard_run *r, const hit *h, const char *index_name, json_t *fields,
                        const char *src, size_t srclen, qb_buf *raw, json_t **out, qb_err *err) {
  const qq_request *req = r->req;
  const qi_segment *seg = qi_snapshot_segment(r->snap, h->seg);
  size_t idlen;
  const char *id = qi_segment_doc_id(seg, h->doc, &idlen);
  qb_code rc;
  json_t *hj = *out = json_object();
  if (!hj) goto nomem;
  /* one _index string for all the shard's hits (shared, not copied per hit) */
  if (!r->index_j && !(r->index_j = json_string(index_name ? index_name : ""))) goto nomem;
  if (json_object_set(hj, "_index", r->index_j) ||
      json_object_set_new(hj, "_id", json_stringn(id ? id : "", id ? idlen : 0)) ||
      (req->want_version &&
       json_object_set_new(hj, "_version", json_integer((json_int_t)qi_segment_doc_version(seg, h->doc)))) ||
      (req->want_seq_no &&
       (json_object_set_new(hj, "_seq_no", json_integer((json_int_t)qi_segment_doc_seq_no(seg, h->doc))) ||
        json_object_set_new(hj, "_primary_term", json_integer(1)))) ||
      json_object_set_new(hj, "_score", run_shows_scores(r) ? json_real((float)h->score) : json_null()))
    goto nomem;
  if (req->source_mode && src) { /* no SRC: deleted since the snapshot, no _source (a realtime miss) */
    json_t *sj;
    if (req->raw_source && req->source_mode == 1 && !req->highlight && qq_json_canonical(src, srclen)) {
      /* printed as it is stored (source_raw.c): no tree built, parsed or printed */
      qb_buf_reset(raw);
      qb_buf_append(raw, QQ_RAW_JSON, QQ_RAW_JSON_LEN);
      qb_buf_append(raw, src, srclen);
      if (raw->failed || !(sj = json_stringn_nocheck(raw->data, raw->len))) goto nomem;
    } else {
      json_error_t je;
      uint64_t failed = qb_alloc_failures();
      sj = qq__json_load(src, srclen, 0, &je);
      if (!sj && qb_alloc_failures() != failed) goto nomem;
      if (!sj) {
        rc = qb_fail(err, QB_CORRUPT, "document [%s]: stored _source is not JSON: %s", id ? id : "?", je.text);
        goto fail;
      }
      if (req->source_mode == 2) sj = qq__source_filter(req, sj);
    }
    if (!sj || json_object_set_new(hj, "_source", sj)) goto nomem;
  }
  if (fields && json_object_set_new(hj, "fields", fields)) {
    fields = NULL;
    goto nomem;
  }
  fields = NULL;
  if (r->ns) {
    json_t *sa = json_array();
    if (!sa || json_object_set_new(hj, "sort", sa)) goto nomem;
    for (size_t k = 0; k < r->ns; k++)
      if (json_array_append_new(sa, sval_json(&req->sort[k], h, &h->sv[k], shard_ix(r)))) goto nomem;
  }
  if (json_object_set_new(hj, "_doc", json_integer((json_int_t)h->gdoc))) goto nomem;
  return QB_OK;
nomem:
  rc = qb_fail(err, QB_NOMEM, "query: out of memory");
fail:
  json_decref(fields);
  json_decref(hj);
  *out = NULL;
  return rc;
}

/* Whether the run's hits may be written as text (qq_request_hits_text): only what hit_json
** renders from the hit alone (no fields, sort values, highlight, collapse or filtered _source) */
static int run_hits_text(const shard_run *r) {
  const qq_request *req = r->req;
  return req->hits_text && req->raw_source && req->source_mode <= 1 && !req->highlight &&
         !req->nscript_fields && !r->col && !r->ns;
}

static void int_text(qb_buf *b, json_int_t v) {
  char num[QB_INT_TEXT];
  qb_buf_append(b, num, (size_t)qb_int_text(v, num)); /* as json_write.c prints it */
}

/* Hit H as text into *OUT (a QQ_RAW_JSON string): what the compact writer (json_write.c) prints
** for hit_json's object without its _doc, the same strings (qb_json_string) and numbers
** (qb_int_text, qb_real_text) in the same order; a _source not in canonical form is read and
** written by qq_json_write, as the tree would be. 0 done; 1 when this hit takes hit_json
** instead (an _id or index name jansson would refuse, a score that is not finite, a _source
** that does not read, or out of memory on the way: hit_json then reports it); -1 out of
** memory. */
static int hit_text(shard_run *r, const hit *h, const char *index_name, const char *src,
                    size_t srclen, qb_buf *raw, json_t **out) {
  const qq_request *req = r->req;
  const qi_segment *seg = qi_snapshot_segment(r->snap, h->seg);
  const char *ix = index_name ? index_name : "";
  size_t idlen, ixlen = strlen(ix);
  const char *id = qi_segment_doc_id(seg, h->doc, &idlen);
  int scores = run_shows_scores(r);
  double score = (float)h->score; /* json_real((float)score), as hit_json stores it */
  char num[QB_REAL_TEXT];
  *out = NULL;
  if (!id) id = "", idlen = 0;
  if (!qq__utf8_ok(id, idlen) || !qq__utf8_ok(ix, ixlen) || (scores && !isfinite(score)))
    return 1;
  qb_buf_reset(raw);
  qb_buf_append(raw, QQ_RAW_JSON "{\"_index\":", QQ_RAW_JSON_LEN + 10);
  qb_json_string(raw, ix, ixlen);
  qb_buf_append(raw, ",\"_id\":", 7);
  qb_json_string(raw, id, idlen);
  if (req->want_version) {
    qb_buf_puts(raw, ",\"_version\":");
    int_text(raw, (json_int_t)qi_segment_doc_version(seg, h->doc));
  }
  if (req->want_seq_no) {
    qb_buf_puts(raw, ",\"_seq_no\":");
    int_text(raw, (json_int_t)qi_segment_doc_seq_no(seg, h->doc));
    qb_buf_puts(raw, ",\"_primary_term\":1");
  }
  qb_buf_puts(raw, ",\"_score\":");
  if (scores) qb_buf_append(raw, num, (size_t)qb_real_text(score, num));
  else qb_buf_puts(raw, "null");
  if (req->source_mode && src) {
    qb_buf_puts(raw, ",\"_source\":");
    if (qq_json_canonical(src, srclen)) {
      qb_buf_append(raw, src, srclen); /* as the writer would print it */
    } else { /* read and written as hit_json's tree would be; damage: hit_json reports it */
      json_t *sj = qq__json_load(src, srclen, 0, NULL);
      int bad = !sj || qq_json_write(sj, 0, raw, NULL);
      json_decref(sj);
      if (bad) return 1;
    }
  }
  qb_buf_append(raw, "}", 1);
  if (raw->failed || !(*out = json_stringn_nocheck(raw->data, raw->len))) return -1;
  return 0;
}

/* The winners, best first, as the partial's "hits" array *OUT; *KEYS: their scores and _doc
** when some are text (run_hits_text), else NULL (tk->n entries, qb_free) */
static qb_code fetch_hits(shard_run *r, const char *index_name, json_t **out, hit_key **keys,
                          qb_err *err) {
  qq_request *req = r->req;
  topk *tk = &r->tk;
  json_t *hits_j, **fields = NULL;
  qb_buf src, raw;
  size_t *soff = NULL, *slen = NULL;
  qb_code rc = QB_OK;
  int text = run_hits_text(r);
  *keys = NULL;
  if (tk->n && !r->presorted) qsort_r(tk->h, tk->n, sizeof *tk->h, cmp_hit_qsort_req, req);
  if (!(hits_j = *out = json_array())) return qb_fail(err, QB_NOMEM, "query: out of memory");
  if (text && tk->n && !(*keys = qb_malloc(tk->n * sizeof **keys))) {
    json_decref(hits_j);
    *out = NULL;
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  }
  qb_buf_init(&src);
  qb_buf_init(&raw);
  /* the coordinator applies `from` after merging, so a shard returns its whole top from+size */
  if (tk->n && req->nscript_fields) {
    if (!(fields = qb_arena_array(&req->arena, tk->n, sizeof *fields))) {
      rc = qb_fail(err, QB_NOMEM, "query: out of memory");
      goto done;
    }
    if ((rc = fetch_script_fields(&r->sh, tk->h, tk->n, fields, err))) goto done;
  }
  if (tk->n && req->source_mode) { /* every hit's stored text in one read of the store */
    const qi_segment **segs = qb_arena_array(&req->arena, tk->n, sizeof *segs);
    uint32_t *docs = qb_arena_array(&req->arena, tk->n, sizeof *docs);
    soff = qb_arena_array(&req->arena, tk->n, sizeof *soff);
    slen = qb_arena_array(&req->arena, tk->n, sizeof *slen);
    if (!segs || !docs || !soff || !slen) {
      rc = qb_fail(err, QB_NOMEM, "query: out of memory");
      goto done;
    }
    for (size_t i = 0; i < tk->n; i++) {
      segs[i] = qi_snapshot_segment(r->snap, tk->h[i].seg);
      docs[i] = tk->h[i].doc;
    }
    if ((rc = qi_snapshot_sources(r->snap, segs, docs, tk->n, &src, soff, slen, err))) goto done;
  }
  for (size_t i = 0; i < tk->n; i++) {
    json_t *hj;
    const char *sp = soff && slen[i] != SIZE_MAX ? src.data + soff[i] : NULL;
    size_t sl = sp ? slen[i] : 0;
    if (text) {
      (*keys)[i] = (hit_key){(float)tk->h[i].score, (json_int_t)tk->h[i].gdoc};
      int t = hit_text(r, &tk->h[i], index_name, sp, sl, &raw, &hj);
      if (t < 0) {
        rc = qb_fail(err, QB_NOMEM, "query: out of memory");
        goto done;
      }
      if (!t) {
        if (json_array_append_new(hits_j, hj)) {
          rc = qb_fail(err, QB_NOMEM, "query: out of memory");
          goto done;
        }
        continue;
      }
    }
    rc = hit_json(r, &tk->h[i], index_name, fields ? fields[i] : NULL, sp, sl, &raw, &hj, err);
    if (fields) fields[i] = NULL; /* taken by hit_json */
    if (rc) goto done;
    if (req->highlight &&
        (rc = qq__highlight_hit(&r->sh, qi_snapshot_segment(r->snap, tk->h[i].seg), tk->h[i].doc,
                                sp, sl, hj, err))) {
      json_decref(hj);
      goto done;
    }
    if (r->col) { /* the group's value, as Elasticsearch shows it: fields.F = [value] */
      json_t *fo = json_object_get(hj, "fields"), *cv;
      cv = qq__collapse_value(r->col, qi_snapshot_segment(r->snap, tk->h[i].seg), tk->h[i].doc);
      if (!fo && !json_object_set_new(hj, "fields", json_object())) fo = json_object_get(hj, "fields");
      if (!cv || !fo || json_object_set_new(fo, req->pg->collapse, cv)) {
        json_decref(hj);
        rc = qb_fail(err, QB_NOMEM, "query: out of memory");
        goto done;
      }
    }
    if (json_array_append_new(hits_j, hj)) {
      rc = qb_fail(err, QB_NOMEM, "query: out of memory");
      goto done;
    }
  }
done:
  if (fields)
    for (size_t i = 0; i < tk->n; i++) json_decref(fields[i]);
  qb_buf_fini(&src);
  qb_buf_fini(&raw);
  if (rc) {
    json_decref(hits_j);
    *out = NULL;
    qb_free(*keys, tk->n * sizeof **keys);
    *keys = NULL;
  }
  return rc;
}

qb_code qq_shard_search(qq_request *req, const qi_snapshot *snap, const char *index_name,
                        uint32_t shard_id, qq_partial **out, qb_err *err) {
  shard_run r;
  qb_code rc;
  json_t *res = NULL, *hits_j = NULL;
  hit_key *keys = NULL;
  *out = NULL;
  if ((rc = run_init(&r, req, snap, index_name, shard_id, err))) goto done;
  size_t nseg = qi_snapshot_segment_count(snap);
  for (size_t s = 0; s < nseg && !r.timed_out && !r.terminated; s++)
    if ((rc = search_segment(&r, s, err))) goto done;
  if (r.col) collapse_done(&r);
  if (req->pg && req->pg->nrescore && !req->for_count && (rc = rescore_run(&r, err))) goto done;
  if ((rc = fetch_hits(&r, index_name, &hits_j, &keys, err))) goto done;
  if (!(res = json_object()) ||
      json_object_set_new(res, "index", json_string(index_name ? index_name : "")) ||
      json_object_set_new(res, "shard", json_integer(shard_id)) ||
      json_object_set_new(res, "total", json_integer((json_int_t)r.total)) ||
      (r.skipped && json_object_set_new(res, "total_gte", json_true())) ||
      (r.timed_out && json_object_set_new(res, "timed_out", json_true())) ||
      (r.terminated && json_object_set_new(res, "terminated_early", json_true())) ||
      json_object_set_new(res, "max_score", run_shows_scores(&r) && r.total ? json_real((float)r.max_score) : json_null()) ||
      json_object_set(res, "hits", hits_j))
    goto nomem;
  if (r.aggs) {
    json_t *aj;
    if ((rc = qq__aggs_partial(r.aggs, &aj, err))) goto done;
    if (json_object_set_new(res, "aggs", aj)) goto nomem;
  }
  rc = partial_wrap(res, out, err);
  res = NULL;
  if (!rc && keys) { /* the text hits' scores and _doc go with them (qq__partial_hit_key) */
    (*out)->keys = keys;
    (*out)->nkeys = r.tk.n;
    keys = NULL;
  }
  goto done;
nomem:
  rc = qb_fail(err, QB_NOMEM, "query: out of memory");
done:
  qq__seg_ctx_fini(&r.cx);
  qq__aggs_free(r.aggs);
  qq__collapse_free(r.col);
  qb_free(r.groups, r.gcap * sizeof *r.groups);
  qb_free(r.gsv, r.gcap * r.ns * sizeof *r.gsv);
  json_decref(r.index_j);
  json_decref(hits_j);
  json_decref(res);
  if (keys) qb_free(keys, r.tk.n * sizeof *keys);
  return rc;
}
