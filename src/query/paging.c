/* paging.c: the body keys of deep pagination and result shaping: search_after, post_filter,
** terminate_after, collapse and rescore, parsed into the request's qq__paging, and the checks
** Elasticsearch makes on their combinations (with its messages). The shard half is in search.c
** (search_after, post_filter, terminate_after), collapse.c and rescore.c; the coordinator half
** (collapse across shards, terminated_early) in response.c. */
#include "internal.h"

#include <string.h>

static const char *const keys[] = {"search_after", "post_filter", "terminate_after", "collapse",
                                   "rescore"};

int qq__paging_key(const char *k) {
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!strcmp(k, keys[i])) return 1;
  return 0;
}

static qq__paging *pg_of(qq_request *req) {
  if (!req->pg && (req->pg = qb_arena_alloc(&req->arena, sizeof *req->pg)))
    memset(req->pg, 0, sizeof *req->pg);
  return req->pg;
}

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

static qb_code get_count(const json_t *v, const char *what, int64_t max, uint64_t *out, qb_err *err) {
  if (!json_is_integer(v))
    return qb_fail(err, QB_MALFORMED, "[%s] must be an integer", what);
  json_int_t i = json_integer_value(v);
  if (i < 0 || i > max)
    return qb_fail(err, QB_INVAL, "[%s] must be between 0 and %lld, got [%lld]", what,
                   (long long)max, (long long)i);
  *out = (uint64_t)i;
  return QB_OK;
}

static qb_code parse_collapse(qq_request *req, qq__paging *pg, const json_t *v, qb_err *err) {
  const char *k;
  json_t *x;
  if (!json_is_object(v)) return qb_fail(err, QB_MALFORMED, "[collapse] must be an object");
  json_object_foreach((json_t *)v, k, x) {
    if (!strcmp(k, "field")) {
      if (!json_is_string(x)) return qb_fail(err, QB_MALFORMED, "[collapse] [field] must be a string");
      pg->collapse = json_string_value(x);
    } else if (!strcmp(k, "max_concurrent_group_searches")) {
      uint64_t n; /* how many inner_hits searches run at once: without inner_hits, nothing */
      qb_code rc = get_count(x, "collapse.max_concurrent_group_searches", INT32_MAX, &n, err);
      if (rc) return rc;
    } else if (!strcmp(k, "inner_hits")) {
      return qb_fail(err, QB_INVAL, "[collapse] [inner_hits] is not supported: each group's top "
                     "hit is returned; search a group's other hits with a term filter on it");
    } else {
      return qb_fail(err, QB_MALFORMED, "[collapse] unknown field [%s]", k);
    }
  }
  (void)req;
  if (!pg->collapse) return qb_fail(err, QB_MALFORMED, "[collapse] requires a [field]");
  return QB_OK;
}

static qb_code parse_rescore_one(qq_request *req, const json_t *v, qq__rescore *rs, qb_err *err) {
  const char *k, *qk;
  json_t *x, *qv;
  qb_code rc;
  memset(rs, 0, sizeof *rs);
  rs->window = 10;
  rs->qw = rs->rqw = 1;
  if (!json_is_object(v)) return qb_fail(err, QB_MALFORMED, "[rescore] must be an object or an array of objects");
  int has_query = 0;
  json_object_foreach((json_t *)v, k, x) {
    if (!strcmp(k, "window_size")) {
      uint64_t w;
      if ((rc = get_count(x, "window_size", INT32_MAX, &w, err))) return rc;
      rs->window = (uint32_t)w;
    } else if (!strcmp(k, "query")) {
      if (!json_is_object(x)) return qb_fail(err, QB_MALFORMED, "[rescore] [query] must be an object");
      has_query = 1;
      json_object_foreach(x, qk, qv) {
        if (!strcmp(qk, "rescore_query")) {
          if ((rc = qq__parse_query(req, qv, "rescore.query.rescore_query", &rs->query, err))) return rc;
        } else if (!strcmp(qk, "query_weight") || !strcmp(qk, "rescore_query_weight")) {
          if (!json_is_number(qv)) return qb_fail(err, QB_MALFORMED, "[rescore] [%s] must be a number", qk);
          *(qk[0] == 'q' ? &rs->qw : &rs->rqw) = json_number_value(qv);
        } else if (!strcmp(qk, "score_mode")) {
          static const char *const m[] = {"total", "multiply", "avg", "max", "min"};
          const char *s = json_is_string(qv) ? json_string_value(qv) : "";
          size_t i;
          for (i = 0; i < 5 && strcmp(s, m[i]); i++) {}
          if (i == 5) return qb_fail(err, QB_INVAL, "[rescore] illegal score_mode [%s]", s);
          rs->mode = (int)i;
        } else {
          return qb_fail(err, QB_MALFORMED, "[rescore] [query] unknown field [%s]", qk);
        }
      }
      if (!rs->query) return qb_fail(err, QB_MALFORMED, "[rescore] [query] requires [rescore_query]");
    } else {
      return qb_fail(err, QB_MALFORMED, "[rescore] unknown field [%s]: the rescorer is [query] "
                     "(its rescore_query may be a script_score or function_score with a UDF)", k);
    }
  }
  if (!has_query) return qb_fail(err, QB_MALFORMED, "missing rescore type: [rescore] needs [query]");
  return QB_OK;
}

qb_code qq__paging_parse(qq_request *req, const char *k, const json_t *v, qb_err *err) {
  qq__paging *pg = pg_of(req);
  if (!pg) return nomem(err);
  if (!strcmp(k, "search_after")) {
    if (!json_is_array(v) || !json_array_size(v))
      return qb_fail(err, QB_MALFORMED, "[search_after] must be a non-empty array of sort values");
    for (size_t i = 0; i < json_array_size(v); i++) {
      const json_t *x = json_array_get(v, i);
      if (json_is_object(x) || json_is_array(x))
        return qb_fail(err, QB_MALFORMED, "[search_after] values must be strings, numbers, booleans or null");
    }
    pg->after = v;
    return QB_OK;
  }
  if (!strcmp(k, "post_filter")) return qq__parse_query(req, v, "post_filter", &pg->post_filter, err);
  if (!strcmp(k, "terminate_after")) return get_count(v, "terminate_after", INT64_MAX, &pg->terminate_after, err);
  if (!strcmp(k, "collapse")) return parse_collapse(req, pg, v, err);
  /* rescore: one object or an array, applied in order */
  size_t n = json_is_array(v) ? json_array_size(v) : 1;
  if (!n || n > 16) return qb_fail(err, QB_INVAL, "[rescore] takes 1 to 16 rescorers");
  if (!(pg->rescore = qb_arena_array(&req->arena, n, sizeof *pg->rescore))) return nomem(err);
  pg->nrescore = n;
  for (size_t i = 0; i < n; i++) {
    qb_code rc = parse_rescore_one(req, json_is_array(v) ? json_array_get(v, i) : v, &pg->rescore[i], err);
    if (rc) return rc;
    if (pg->rescore[i].window > pg->window) pg->window = pg->rescore[i].window;
  }
  return QB_OK;
}

qb_code qq__paging_check(qq_request *req, qb_err *err) {
  qq__paging *pg = req->pg;
  int pinned = req->env && req->env->pinned_view;
  for (size_t i = 0; i < req->nsort; i++)
    if (req->sort[i].kind == SK_SHARD_DOC && !pinned)
      return qb_fail(err, QB_INVAL, "[_shard_doc] sort field cannot be used without [point in time]");
  if (!pg) return QB_OK;
  if (pg->after) {
    size_t nv = json_array_size(pg->after), ns = req->nsort ? req->nsort : 1;
    if (req->from) return qb_fail(err, QB_INVAL, "[from] parameter must be set to 0 when [search_after] is used");
    if (nv != ns) return qb_fail(err, QB_INVAL, "search_after has %zu value(s) but sort has %zu.", nv, ns);
  }
  if (pg->nrescore) {
    if (req->nsort && !(req->nsort == 1 && req->sort[0].kind == SK_SCORE && req->sort[0].desc))
      return qb_fail(err, QB_INVAL, "Cannot use [sort] option in conjunction with [rescore].");
    uint32_t max = req->env && req->env->max_result_window ? req->env->max_result_window : 10000;
    if (pg->window > max)
      return qb_fail(err, QB_INVAL, "Rescore window [%u] is too large. It must be less than [%u].",
                     pg->window, max);
  }
  if (pg->collapse) {
    if (pg->nrescore) return qb_fail(err, QB_INVAL, "cannot use `collapse` in conjunction with `rescore`");
    if (pg->after) return qb_fail(err, QB_INVAL, "cannot use `collapse` in conjunction with `search_after`");
  }
  return QB_OK;
}
