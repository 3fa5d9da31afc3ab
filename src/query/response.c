/* response.c: the coordinator half: merge shard partials (top hits by the request's sort, then
** shard, then doc; totals; aggregations) and render Elasticsearch's `_search` / `_count` bodies;
** the all-local qq_search / qq_count. A failed shard keeps its qb_code; the type shown in
** `_shards.failures` comes from qq_env.error_type (the server's table), never from here. */
#define _GNU_SOURCE /* qsort_r */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

json_t *qq__partial_json(const qq_partial *p);
int qq__partial_hit_key(const qq_partial *p, size_t k, double *score, json_int_t *doc);

/* ---- collapse and terminate_after across shards (paging.c's coordinator half) ------------------ */

/* 1 when a shard stopped at terminate_after */
static int qq__any_terminated(qq_partial *const *parts, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (json_is_true(json_object_get(qq__partial_json(parts[i]), "terminated_early"))) return 1;
  return 0;
}

/* Keep the first (best) hit of each collapse value among the merged, sorted hits ALL (records
** of SIZE bytes whose first member is the hit's json_t *) */
static qb_code qq__collapse_merge(const qq_request *req, void *all, size_t *n, size_t size, qb_err *err) {
  json_t *seen = json_object();
  size_t m = 0;
  char *base = all;
  if (!seen) return qb_fail(err, QB_NOMEM, "query: out of memory");
  for (size_t i = 0; i < *n; i++) {
    json_t *h = *(json_t **)(void *)(base + i * size);
    json_t *v = json_object_get(json_object_get(h, "fields"), req->pg->collapse);
    char *key = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!key) {
      json_decref(seen);
      return qb_fail(err, QB_NOMEM, "query: out of memory");
    }
    int dup = json_object_get(seen, key) != NULL;
    if (!dup) json_object_set_new(seen, key, json_true());
    json_free_t jfree;
    json_get_alloc_funcs(NULL, &jfree); /* jansson's allocator (the program may install one) */
    jfree(key);
    if (dup) continue;
    if (m != i) memcpy(base + m * size, base + i * size, size);
    m++;
  }
  json_decref(seen);
  *n = m;
  return QB_OK;
}

/* ---- merging hits ---------------------------------------------------------------------------- */

typedef struct mhit {
  json_t *h;      /* borrowed from the partial */
  size_t shard;   /* position of its partial */
  double score;   /* its _score and _doc, read once (not per comparison) */
  json_int_t doc;
} mhit;

static int cmp_json_val(const qq__sort *s, const json_t *a, const json_t *b) {
  int am = !a || json_is_null(a), bm = !b || json_is_null(b);
  if (am || bm) {
    if (am && bm) return 0;
    int first = s->missing == MISSING_FIRST;
    return am ? (first ? -1 : 1) : (first ? 1 : -1);
  }
  int c;
  if (json_is_string(a) && json_is_string(b)) {
    size_t la = json_string_length(a), lb = json_string_length(b), m = la < lb ? la : lb;
    c = memcmp(json_string_value(a), json_string_value(b), m);
    if (!c) c = la < lb ? -1 : la > lb;
  } else if (json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b);
    c = x < y ? -1 : x > y;
  } else {
    double x = json_number_value(a), y = json_number_value(b);
    c = x < y ? -1 : x > y;
  }
  return s->desc ? -c : c;
}

static int cmp_mhit(const void *pa, const void *pb, void *ud) {
  const qq_request *req = ud;
  const mhit *a = pa, *b = pb;
  if (!req->nsort) {
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
  } else {
    const json_t *sa = json_object_get(a->h, "sort"), *sb = json_object_get(b->h, "sort");
    for (size_t i = 0; i < req->nsort; i++) {
      qq__sort s = req->sort[i];
      if (s.kind == SK_SCORE) s.missing = MISSING_LAST;
      int c = cmp_json_val(&s, json_array_get(sa, i), json_array_get(sb, i));
      if (c) return c;
    }
  }
  if (a->shard != b->shard) return a->shard < b->shard ? -1 : 1;
  return a->doc < b->doc ? -1 : a->doc > b->doc;
}

static void int_text(qb_buf *b, json_int_t v) {
  char num[QB_INT_TEXT];
  qb_buf_append(b, num, (size_t)qb_int_text(v, num));
}

/* The whole response as text (qq_request_hits_text) appended to TEXT, or when TEXT is NULL
** as a QQ_RAW_JSON string in *OUT: what qq_json_write prints for the tree qq_response_render
** builds below, key for key, when there are no failures, aggregations or collapse (the caller
** checked). The page's text hits are copied, the others written (without _doc) by
** qq_json_write. 0, or -1 when out of memory. */
static int render_text(const qq_request *req, qq_partial *const *parts, size_t n, mhit *all,
                       size_t nall, uint64_t total, int total_gte, int has_max, double max_score,
                       int timed_out, uint64_t took_ms, qb_buf *text, json_t **out) {
  qb_buf own, *b = text ? text : &own;
  char num[QB_REAL_TEXT];
  if (!text) {
    qb_buf_init(&own);
    qb_buf_reserve(&own, 8192);
    qb_buf_append(&own, QQ_RAW_JSON, QQ_RAW_JSON_LEN);
  } else {
    size_t need = 512; /* the page's text hits and the head: one allocation */
    for (size_t i = req->from; i < nall && i < (size_t)req->from + req->size; i++)
      need += json_string_length(all[i].h) + 1;
    qb_buf_reserve(text, need);
  }
  qb_buf_append(b, "{\"took\":", 8);
  int_text(b, (json_int_t)took_ms);
  qb_buf_puts(b, timed_out ? ",\"timed_out\":true" : ",\"timed_out\":false");
  if (req->pg && req->pg->terminate_after)
    qb_buf_puts(b, qq__any_terminated(parts, n) ? ",\"terminated_early\":true"
                                                 : ",\"terminated_early\":false");
  qb_buf_puts(b, ",\"_shards\":{\"total\":");
  int_text(b, (json_int_t)n);
  qb_buf_puts(b, ",\"successful\":");
  int_text(b, (json_int_t)n);
  qb_buf_puts(b, ",\"skipped\":0,\"failed\":0},\"hits\":{");
  if (req->track_total) {
    int gte = req->track_total > 0 && (total > (uint64_t)req->track_total || total_gte);
    qb_buf_puts(b, "\"total\":{\"value\":");
    int_text(b, (json_int_t)(gte ? (uint64_t)req->track_total : total));
    qb_buf_puts(b, gte ? ",\"relation\":\"gte\"}," : ",\"relation\":\"eq\"},");
  }
  qb_buf_puts(b, "\"max_score\":");
  if (has_max) qb_buf_append(b, num, (size_t)qb_real_text(max_score, num));
  else qb_buf_puts(b, "null");
  qb_buf_puts(b, ",\"hits\":[");
  for (size_t i = req->from, k = 0; i < nall && i < (size_t)req->from + req->size; i++, k++) {
    json_t *h = all[i].h;
    const char *s = json_string_value(h);
    if (k) qb_buf_append(b, ",", 1);
    if (s && json_string_length(h) >= QQ_RAW_JSON_LEN && !memcmp(s, QQ_RAW_JSON, QQ_RAW_JSON_LEN)) {
      qb_buf_append(b, s + QQ_RAW_JSON_LEN, json_string_length(h) - QQ_RAW_JSON_LEN);
      continue;
    }
    json_object_del(h, "_doc");
    if (qq_json_write(h, 0, b, NULL)) b->failed = 1;
  }
  qb_buf_puts(b, "]}}");
  if (text) return text->failed ? -1 : 0;
  *out = own.failed ? NULL : json_stringn_nocheck(own.data, own.len);
  qb_buf_fini(&own);
  return *out ? 0 : -1;
}

static qb_code render(qq_request *req, qq_partial *const *parts, size_t n, uint64_t took_ms,
                      qb_buf *text, json_t **out, qb_err *err);

qb_code qq_response_render(qq_request *req, qq_partial *const *parts, size_t n, uint64_t took_ms,
                           json_t **out, qb_err *err) {
  return render(req, parts, n, took_ms, NULL, out, err);
}

qb_code qq_response_render_text(qq_request *req, qq_partial *const *parts, size_t n,
                                uint64_t took_ms, qb_buf *text, json_t **out, qb_err *err) {
  return render(req, parts, n, took_ms, text, out, err);
}

static qb_code render(qq_request *req, qq_partial *const *parts, size_t n, uint64_t took_ms,
                      qb_buf *text, json_t **out, qb_err *err) {
  json_t *res = NULL, *failures = NULL, **aggparts = NULL;
  mhit *all = NULL;
  size_t nall = 0, cap = 0, nfail = 0, first_fail = SIZE_MAX;
  uint64_t total = 0;
  int total_gte = 0; /* some shard skipped documents: its count is a lower bound */
  double max_score = -INFINITY;
  int has_max = 0;
  qb_code rc = QB_OK;
  *out = NULL;
  if (!(failures = json_array())) goto nomem;
  if (!(aggparts = qb_calloc(n ? n : 1, sizeof *aggparts))) goto nomem;
  for (size_t i = 0; i < n; i++) {
    json_t *p = qq__partial_json(parts[i]);
    json_t *f = json_object_get(p, "failure");
    if (f) {
      qb_code code = (qb_code)json_integer_value(json_object_get(f, "code"));
      const char *reason = json_string_value(json_object_get(f, "reason"));
      const char *type = req->env && req->env->error_type ? req->env->error_type(code) : NULL;
      if (!type) type = "exception";
      const char *node = json_string_value(json_object_get(p, "node")); /* set by a coordinator */
      json_t *fj = json_pack("{s:O, s:O, s:s, s:{s:s, s:s}}", "shard", json_object_get(p, "shard"), "index",
                             json_object_get(p, "index"), "node", node ? node : "local", "reason", "type",
                             type, "reason", reason ? reason : "");
      if (!fj || json_array_append_new(failures, fj)) goto nomem;
      if (first_fail == SIZE_MAX) first_fail = i;
      nfail++;
      continue;
    }
    total += (uint64_t)json_integer_value(json_object_get(p, "total"));
    if (json_is_true(json_object_get(p, "total_gte"))) total_gte = 1;
    json_t *ms = json_object_get(p, "max_score");
    if (json_is_number(ms)) {
      double v = json_number_value(ms);
      if (!has_max || v > max_score) max_score = v;
      has_max = 1;
    }
    aggparts[i] = json_object_get(p, "aggs");
    json_t *hs = json_object_get(p, "hits");
    for (size_t k = 0; k < json_array_size(hs); k++) {
      if (nall == cap) {
        size_t nc = cap ? cap * 2 : 64;
        mhit *na = qb_realloc(all, cap * sizeof *na, nc * sizeof *na);
        if (!na) goto nomem;
        all = na;
        cap = nc;
      }
      json_t *h = json_array_get(hs, k);
      double sc;
      json_int_t doc;
      if (qq__partial_hit_key(parts[i], k, &sc, &doc)) /* a hit written as text (search.c) */
        all[nall++] = (mhit){h, i, sc, doc};
      else
        all[nall++] = (mhit){h, i, json_number_value(json_object_get(h, "_score")),
                             json_integer_value(json_object_get(h, "_doc"))};
    }
  }
  if (n && nfail == n) { /* every shard failed: the request fails with the first error */
    json_t *f = json_object_get(qq__partial_json(parts[first_fail]), "failure");
    rc = qb_fail(err, (qb_code)json_integer_value(json_object_get(f, "code")), "%s",
                 json_string_value(json_object_get(f, "reason")));
    goto done;
  }
  if (req->hits_text && !req->for_count && !req->naggs && !nfail &&
      !(req->pg && req->pg->collapse) && (!has_max || isfinite(max_score))) {
    int timed_out = 0; /* any shard that stopped at the request's timeout */
    for (size_t i = 0; i < n; i++)
      timed_out |= json_is_true(json_object_get(qq__partial_json(parts[i]), "timed_out"));
    if (nall) qsort_r(all, nall, sizeof *all, cmp_mhit, req);
    if (render_text(req, parts, n, all, nall, total, total_gte, has_max, max_score, timed_out,
                    took_ms, text, out))
      goto nomem;
    goto done;
  }
  /* built key by key: json_pack reads its format on every call (a fixed cost, issue 14) */
  json_t *shards = json_object();
  if (!shards || json_object_set_new_nocheck(shards, "total", json_integer((json_int_t)n)) ||
      json_object_set_new_nocheck(shards, "successful", json_integer((json_int_t)(n - nfail))) ||
      json_object_set_new_nocheck(shards, "skipped", json_integer(0)) ||
      json_object_set_new_nocheck(shards, "failed", json_integer((json_int_t)nfail))) {
    json_decref(shards);
    goto nomem;
  }
  if (nfail && json_object_set(shards, "failures", failures)) {
    json_decref(shards);
    goto nomem;
  }
  if (req->for_count) {
    res = json_pack("{s:I, s:o}", "count", (json_int_t)total, "_shards", shards);
    if (!res) goto nomem;
    goto ok;
  }
  int timed_out = 0; /* any shard that stopped at the request's timeout */
  for (size_t i = 0; i < n; i++)
    timed_out |= json_is_true(json_object_get(qq__partial_json(parts[i]), "timed_out"));
  if ((res = json_object()) &&
      (json_object_set_new_nocheck(res, "took", json_integer((json_int_t)took_ms)) ||
       json_object_set_new_nocheck(res, "timed_out", json_boolean(timed_out)) ||
       (req->pg && req->pg->terminate_after &&
        json_object_set_new_nocheck(res, "terminated_early", json_boolean(qq__any_terminated(parts, n)))))) {
    json_decref(res);
    res = NULL;
  }
  if (!res) {
    json_decref(shards);
  } else if (json_object_set_new_nocheck(res, "_shards", shards)) { /* takes SHARDS, also on failure */
    json_decref(res);
    res = NULL;
  }
  json_t *hits = json_object(), *harr = json_array();
  if (!res || !hits || !harr) {
    json_decref(hits);
    json_decref(harr);
    goto nomem;
  }
  if (json_object_set_new(res, "hits", hits)) { /* set_new takes HITS, also when it fails */
    json_decref(harr);
    goto nomem;
  }
  if (req->track_total) {
    json_t *t;
    int gte = req->track_total > 0 && (total > (uint64_t)req->track_total || total_gte);
    if ((t = json_object()) &&
        (json_object_set_new_nocheck(t, "value", json_integer((json_int_t)(gte ? (uint64_t)req->track_total : total))) ||
         json_object_set_new_nocheck(t, "relation", json_string_nocheck(gte ? "gte" : "eq")))) {
      json_decref(t);
      t = NULL;
    }
    if (!t || json_object_set_new(hits, "total", t)) {
      json_decref(harr);
      goto nomem;
    }
  }
  if (json_object_set_new(hits, "max_score", has_max ? json_real(max_score) : json_null())) {
    json_decref(harr);
    goto nomem;
  }
  if (json_object_set_new(hits, "hits", harr)) goto nomem;
  if (nall) qsort_r(all, nall, sizeof *all, cmp_mhit, req);
  if (req->pg && req->pg->collapse && (rc = qq__collapse_merge(req, all, &nall, sizeof *all, err))) goto done;
  /* the winners move into the response (no copy): PARTS lose their _doc keys (query.h) */
  for (size_t i = req->from; i < nall && i < (size_t)req->from + req->size; i++) {
    json_t *h = all[i].h;
    if (json_is_object(h)) json_object_del(h, "_doc"); /* a text hit has none */
    if (json_array_append(harr, h)) goto nomem;
  }
  if (req->naggs) {
    json_t *aj;
    if ((rc = qq__aggs_render(req, aggparts, n, &aj, err))) goto done;
    if (json_object_set_new(res, "aggregations", aj)) goto nomem;
  }
ok:
  *out = res;
  res = NULL;
  goto done;
nomem:
  rc = qb_fail(err, QB_NOMEM, "query: out of memory");
done:
  json_decref(res);
  json_decref(failures);
  qb_free(aggparts, (n ? n : 1) * sizeof *aggparts);
  qb_free(all, cap * sizeof *all);
  return rc;
}

/* ---- all-local entry points ------------------------------------------------------------------- */

static qb_code run_local(const qq_env *env, const char *index_name, const qi_snapshot *const *snaps,
                         size_t n, const char *body, size_t len, int for_count, json_t **out, qb_err *err) {
  uint64_t t0 = qb_now_ns();
  qq_request *req;
  qq_partial **parts;
  qb_code rc;
  *out = NULL;
  if ((rc = qq_request_parse(env, body, len, for_count, &req, err))) return rc;
  if (!(parts = qb_calloc(n ? n : 1, sizeof *parts))) {
    qq_request_free(req);
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    qb_err e;
    qb_err_clear(&e);
    /* one policy (Elasticsearch's, as the cluster's): a shard that fails is a _shards.failures
    ** entry; the request fails only when every shard did (qq_response_render) */
    if ((rc = qq_shard_search(req, snaps[i], index_name, (uint32_t)i, &parts[i], &e)) &&
        (rc = qq_partial_failed(index_name, (uint32_t)i, &e, &parts[i], err)))
      goto done;
  }
  rc = qq_response_render(req, parts, n, (qb_now_ns() - t0) / 1000000, out, err);
done:
  for (size_t i = 0; i < n; i++) qq_partial_free(parts[i]);
  qb_free(parts, (n ? n : 1) * sizeof *parts);
  qq_request_free(req);
  return rc;
}

qb_code qq_search(const qq_env *env, const char *index_name, const qi_snapshot *const *snaps, size_t n,
                  const char *body, size_t len, json_t **out, qb_err *err) {
  return run_local(env, index_name, snaps, n, body, len, 0, out, err);
}

qb_code qq_count(const qq_env *env, const char *index_name, const qi_snapshot *const *snaps, size_t n,
                 const char *body, size_t len, json_t **out, qb_err *err) {
  return run_local(env, index_name, snaps, n, body, len, 1, out, err);
}
