/* h_search.c: _search and _count over one or several indexes ("products", "a,b", "logs-*",
** "_all", or none for every index). The body is parsed once; each index is searched on one
** snapshot (so searches run in parallel with writes and refreshes) and the partials are merged
** into one response. A per-request UDF provider (udf_script.c) pins every UDF's version for the
** whole request, across all the indexes it touches. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Resolve EXPR (NULL = all) into T (the node's shard source). Replies and returns 0 on
** failure. */
static int resolve(qs_req *r, const char *expr, qc_shards *t) {
  char missing[256] = "";
  qb_err err;
  qc_shards_init(t);
  qb_code rc = qc_node_resolve(r->srv->node, expr, qs__arg_bool(r, "ignore_unavailable"), t,
                               missing, &err);
  if (!rc) return 1;
  qc_shards_fini(t);
  if (rc == QB_NOTFOUND) qs__reply_no_index(r, missing);
  else if (rc == QB_LIMIT) qs__reply_error(r, 400, "illegal_argument_exception", "%s", err.msg);
  else qs__reply_err(r, &err);
  return 0;
}

/* "a,b,c" -> ["a", "b", "c"] (empty items dropped). */
static json_t *csv_array(const char *v) {
  json_t *a = json_array();
  for (const char *p = v; a && *p;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n) json_array_append_new(a, json_stringn(p, n));
    p += n + (c ? 1 : 0);
  }
  return a;
}

json_t *qs__url_source(qs_req *r) {
  const char *src = qs__arg(r, "_source"), *inc = qs__arg(r, "_source_includes"),
             *exc = qs__arg(r, "_source_excludes");
  if (!src && !inc && !exc) return NULL;
  int flag = src && (!strcmp(src, "false") || !strcmp(src, "true"));
  if (flag && (!strcmp(src, "false") || (!inc && !exc))) return json_boolean(!strcmp(src, "true"));
  json_t *v = json_object();
  if (v && (inc || (src && !flag))) json_object_set_new(v, "includes", csv_array(inc ? inc : src));
  if (v && exc) json_object_set_new(v, "excludes", csv_array(exc));
  return v;
}

/* ?sort=f1:desc,f2 -> [{"f1": {"order": "desc"}}, "f2"] (the query parser checks the order). */
static json_t *sort_array(const char *v) {
  json_t *items = csv_array(v), *a = json_array(), *it;
  size_t i;
  if (!items || !a) return json_decref(items), json_decref(a), NULL;
  json_array_foreach(items, i, it) {
    const char *f = json_string_value(it), *colon = strrchr(f, ':');
    if (!colon) {
      json_array_append(a, it);
      continue;
    }
    json_t *one = json_object();
    if (one) json_object_set_new(one, "order", json_string(colon + 1));
    json_t *by = json_object();
    if (by) json_object_setn_new(by, f, (size_t)(colon - f), one);
    json_array_append_new(a, by);
  }
  json_decref(items);
  return a;
}

void qs__query_env(qs_req *r, qc_udf_provider *prov, qq_env *env) {
  qc_udf_provider_for(prov, r->srv->node);
  memset(env, 0, sizeof *env);
  env->scripts = &prov->base;
  env->error_type = qs__error_type;
  env->script_value_max = r->srv->script_value_max;
  env->script_response_max = r->srv->script_response_max;
}

/* URI parameters of _search and _count that mean nothing without ?q=: ignoring them would
** answer another question than the one asked. 0 after a reply. */
static int refuse_params(qs_req *r) {
  static const char *const need_q[] = {"df", "default_operator", "analyzer"};
  for (size_t i = 0; i < sizeof need_q / sizeof *need_q; i++)
    if (!qs__arg(r, "q") && qs__arg(r, need_q[i])) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "request parameter [%s] is only served with [q]", need_q[i]);
      return 0;
    }
  return 1;
}

/* Elasticsearch's URI parameters ?size=, ?from=, ?sort=f[:asc|desc],..., ?_source=(true|false|
** f,...), ?_source_includes=, ?_source_excludes= and ?timeout= folded into the body when it lacks them
** (the official clients send some of them in the URL). Returns a new body text in *OWNED
** (qs__json_free) or leaves the body as it is; 0 after a reply. */
static int uri_params(qs_req *r, char **owned) {
  *owned = NULL;
  const char *size = qs__arg(r, "size"), *from = qs__arg(r, "from"), *sort = qs__arg(r, "sort");
  const char *src = qs__arg(r, "_source"), *inc = qs__arg(r, "_source_includes"),
             *exc = qs__arg(r, "_source_excludes"), *tmo = qs__arg(r, "timeout");
  const char *q = qs__arg(r, "q");
  if (!size && !from && !sort && !src && !inc && !exc && !tmo && !q) return 1;
  json_t *body;
  if (!qs__body_object(r, &body)) return 0;
  if (!body) body = json_object();
  if (q) { /* URI search: the query_string query (qstring.c) */
    if (json_object_get(body, "query")) {
      json_decref(body);
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "request parameter [q] and a [query] in the body cannot both be given");
      return 0;
    }
    json_t *qs = json_pack("{s:s}", "query", q);
    const char *df = qs__arg(r, "df"), *op = qs__arg(r, "default_operator"), *an = qs__arg(r, "analyzer");
    if (qs && df) json_object_set_new(qs, "default_field", json_string(df));
    if (qs && op) json_object_set_new(qs, "default_operator", json_string(op));
    if (qs && an) json_object_set_new(qs, "analyzer", json_string(an));
    json_object_set_new(body, "query", json_pack("{s:o}", "query_string", qs));
  }
  const char *keys[2] = {"size", "from"}, *vals[2] = {size, from};
  for (int i = 0; i < 2; i++) {
    if (!vals[i] || json_object_get(body, keys[i])) continue;
    char *end;
    long long v = strtoll(vals[i], &end, 10);
    if (*end || end == vals[i]) {
      json_decref(body);
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "Failed to parse int parameter [%s] with value [%s]", keys[i], vals[i]);
      return 0;
    }
    json_object_set_new(body, keys[i], json_integer(v));
  }
  if (sort && !json_object_get(body, "sort")) json_object_set_new(body, "sort", sort_array(sort));
  if (tmo && !json_object_get(body, "timeout")) json_object_set_new(body, "timeout", json_string(tmo));
  if ((src || inc || exc) && !json_object_get(body, "_source"))
    json_object_set_new(body, "_source", qs__url_source(r));
  *owned = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(body);
  if (!*owned) {
    qs__reply_error(r, 429, "circuit_breaking_exception", "out of memory");
    return 0;
  }
  return 1;
}

/* The response when no index matched. */
static json_t *empty_response(int count, uint64_t took_ms) {
  if (count)
    return json_pack("{s:i, s:{s:i, s:i, s:i, s:i}}", "count", 0, "_shards", "total", 0,
                     "successful", 0, "skipped", 0, "failed", 0);
  return json_pack("{s:I, s:b, s:{s:i, s:i, s:i, s:i}, s:{s:{s:i, s:s}, s:n, s:[]}}", "took",
                   (json_int_t)took_ms, "timed_out", 0, "_shards", "total", 0, "successful", 0,
                   "skipped", 0, "failed", 0, "hits", "total", "value", 0, "relation", "eq",
                   "max_score", "hits");
}

/* ?search_type=: query_then_fetch (each shard scores with its own term statistics) or
** dfs_query_then_fetch (the shards' statistics are gathered first: scores equal one shard's).
** *DFS: 1 for the latter; 0 after a reply. */
static int search_type(qs_req *r, int *dfs) {
  const char *st = qs__arg(r, "search_type");
  *dfs = st && !strcmp(st, "dfs_query_then_fetch");
  if (!st || *dfs || !strcmp(st, "query_then_fetch")) return 1;
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "No search type for [%.100s]: search_type is query_then_fetch or "
                  "dfs_query_then_fetch", st);
  return 0;
}

static void search(qs_req *r, int count) {
  char *owned = NULL;
  int dfs;
  if (!refuse_params(r) || !search_type(r, &dfs) || !uri_params(r, &owned)) return;
  if (!count && qs__view_search(r, owned ? owned : r->body, owned ? strlen(owned) : r->body_len)) {
    qs__json_free(owned); /* ?scroll= and "pit" searches (h_scroll.c) answered it */
    return;
  }
  qc_shards t;
  char *expanded = NULL; /* aliases and patterns as concrete names (h_alias.c) */
  json_t *afilter = NULL;
  if (!qs__alias_expand(r, r->ncaps ? r->caps[0] : NULL, &expanded, &afilter)) {
    qs__json_free(owned);
    return;
  }
  int ok = resolve(r, expanded ? expanded : r->ncaps ? r->caps[0] : NULL, &t);
  qs__alias_expand_free(expanded);
  if (ok && afilter) { /* a filtered alias: its filter joins the query */
    char *fb = qs__alias_filter_body(owned ? owned : r->body, owned ? strlen(owned) : r->body_len,
                                     afilter);
    if (fb) {
      qs__json_free(owned);
      owned = fb;
    }
  }
  json_decref(afilter);
  json_t *xq = NULL; /* explain: true (h_explain.c) */
  if (ok && !count && !qs__explain_take(r, &owned, &xq)) {
    qc_shards_fini(&t);
    ok = 0;
  }
  if (!ok) {
    qs__json_free(owned);
    return;
  }
  const char *body = owned ? owned : r->body;
  size_t len = owned ? strlen(owned) : r->body_len;
  uint64_t t0 = qb_now_ns();
  qc_udf_provider prov;
  qq_env env;
  qs__query_env(r, &prov, &env);
  json_t *out = NULL;
  qb_buf text; /* the response, when it is written as text (qq_response_render_text) */
  qb_buf_init(&text);
  qb_err err;
  qb_err_clear(&err);
  qq_request *req = NULL;
  qq_partial **parts = qb_calloc(t.n ? t.n : 1, sizeof *parts);
  qb_code rc = parts ? QB_OK : qb_fail(&err, QB_NOMEM, "out of memory");
  /* the request is parsed once: its errors fail it; then each shard fails on its own */
  qs__env_window(r->srv, &t, &env); /* index.max_result_window (h_settings.c) */
  if (!rc) rc = qq_request_parse(&env, body, len, count, &req, &err);
  /* the response goes straight to the compact writer: stored _source may be copied as it is */
  int as_text = !rc && !count && !xq && !qs__arg_bool(r, "pretty");
  if (as_text) {
    qq_request_raw_source(req);
    qq_request_hits_text(req); /* plain hits as text, not trees (issue 14) */
  }
  json_t *stats = NULL; /* dfs_query_then_fetch: every shard's term statistics, summed */
  if (!rc && dfs && !count && t.n > 1)
    rc = qc_node_dfs(r->srv->node, req, body, len, &prov.got, &t, &stats, &err);
  if (!rc)
    rc = qc_node_search_dfs(r->srv->node, req, body, len, count, &prov.got, stats, &t, parts,
                            &err);
  json_decref(stats);
  uint64_t took_ms = (qb_now_ns() - t0) / 1000000u;
  size_t nparts = rc ? 0 : t.n;
  if (!rc) {
    if (nparts && as_text)
      rc = qq_response_render_text(req, parts, nparts, took_ms, &text, &out, &err);
    else if (nparts) rc = qq_response_render(req, parts, nparts, took_ms, &out, &err);
    else out = empty_response(count, took_ms);
  }
  for (size_t i = 0; i < nparts; i++) qq_partial_free(parts[i]);
  qb_free(parts, (t.n ? t.n : 1) * sizeof *parts);
  qq_request_free(req);
  uint64_t slow_ms = r->srv->slow_search_ms ? r->srv->slow_search_ms : 1000;
  if (took_ms >= slow_ms) { /* the slow log: the request's id tags the line */
    char udfs[256] = "";
    for (size_t i = 0, w = 0; i < prov.got.n && w < sizeof udfs; i++)
      w += (size_t)snprintf(udfs + w, sizeof udfs - w, "%s%s v%u", i ? ", " : "",
                            prov.got.pin[i].name, (unsigned)prov.got.pin[i].version);
    qb_log(QB_WARN, "slow %s: %llu ms (threshold %llu ms) on [%s]%s%s%s", count ? "count" : "search",
           (unsigned long long)took_ms, (unsigned long long)slow_ms,
           r->ncaps ? r->caps[0] : "_all", udfs[0] ? ", UDFs " : "", udfs,
           rc ? " (failed)" : "");
  }
  qc_udf_provider_fini(&prov);
  qc_shards_fini(&t);
  qs__json_free(owned);
  if (!count) qs__metrics_search(r->srv, qb_now_ns() - t0, rc == QB_OK);
  if (rc) {
    json_decref(xq);
    qb_buf_fini(&text);
    if (rc == QB_TRAP || rc == QB_LIMIT) qb_log(QB_WARN, "search failed: %s", err.msg);
    return qs__reply_err(r, &err);
  }
  if (!out && text.data) return qs__reply_buf(r, 200, &text); /* as text: taken as it is */
  qb_buf_fini(&text);
  if (xq) { /* each hit's _explanation */
    char why[512];
    int st = qs__explain_hits(r, xq, out, why);
    json_decref(xq);
    if (st) {
      json_decref(out);
      return qs__reply_error(r, st, "illegal_argument_exception", "%s", why);
    }
  }
  qs__reply_json(r, 200, out);
}

void qs__h_search(qs_req *r) { search(r, 0); }
void qs__h_count(qs_req *r) { search(r, 1); }

/* _msearch: NDJSON pairs of a header ({"index": "a" | ["a", "b"]}, may be {}) and a search
** body; each runs as its own search (its own UDF pins) and fails on its own, as in
** Elasticsearch: {"took", "responses": [response | {"error", "status"}]}. */
void qs__h_msearch(qs_req *r) {
  uint64_t t0 = qb_now_ns();
  const char *p = r->body, *end = r->body + r->body_len;
  json_t *responses = json_array();
  size_t line = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    line++;
    size_t hl = (size_t)(le - p);
    while (hl && (p[hl - 1] == '\r' || p[hl - 1] == ' ')) hl--;
    if (!hl) {
      p = nl ? nl + 1 : end;
      continue;
    }
    json_error_t je;
    json_t *head = json_loadb(p, hl, 0, &je);
    if (!json_is_object(head)) {
      json_decref(head);
      json_decref(responses);
      return qs__reply_error(r, 400, "x_content_parse_exception", "_msearch line %zu: %s", line,
                             head ? "header must be an object" : je.text);
    }
    p = nl ? nl + 1 : end;
    nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    le = nl ? nl : end;
    const char *body = p;
    size_t blen = p < end ? (size_t)(le - p) : 0;
    p = nl ? nl + 1 : end;
    line++;
    /* the target: the header's index (a string or an array), else the URL's */
    char target[4096];
    const char *expr = r->ncaps ? r->caps[0] : NULL;
    json_t *ix = json_object_get(head, "index");
    if (json_is_string(ix)) {
      snprintf(target, sizeof target, "%s", json_string_value(ix));
      expr = target;
    } else if (json_is_array(ix) && json_array_size(ix)) {
      size_t k, used = 0;
      json_t *v;
      target[0] = 0;
      json_array_foreach(ix, k, v) {
        if (json_is_string(v) && used < sizeof target)
          used += (size_t)snprintf(target + used, sizeof target - used, "%s%s", k ? "," : "",
                                   json_string_value(v));
      }
      expr = target;
    }
    json_t *res = NULL;
    const char *caps[1] = {expr};
    int status;
    /* a header's search_type must be the URL's (each search of the request runs with that) */
    const char *st = json_string_value(json_object_get(head, "search_type"));
    const char *url_st = qs__arg(r, "search_type");
    if (json_object_get(head, "search_type") &&
        (!st || strcmp(st, url_st ? url_st : "query_then_fetch"))) {
      char why[300];
      snprintf(why, sizeof why, "_msearch line %zu: [search_type] in a header is served only "
               "as the URL's ?search_type= (give it there)", line - 1);
      res = qs__error_json(400, "illegal_argument_exception", why);
      status = 400;
    } else {
      status = qs__subrequest(r, qs__h_search, caps, expr ? 1 : 0, body, blen, &res);
    }
    if (!res) res = qs__error_json(500, "exception", "search gave no response");
    json_object_set_new(res, "status", json_integer(status));
    json_array_append_new(responses, res);
    json_decref(head);
  }
  qs__reply_json(r, 200, json_pack("{s:I, s:o}", "took",
                                   (json_int_t)((qb_now_ns() - t0) / 1000000u), "responses",
                                   responses));
}

/* _delete_by_query: refresh the target indexes, then per index search the query in batches of
** 1000 ids (in index order) and delete each batch in one transaction, refreshing between
** batches, until the query matches nothing. Documents written meanwhile may survive, as in
** Elasticsearch (which works on a snapshot). */
#define DBQ_BATCH 1000
void qs__h_delete_by_query(qs_req *r) {
  uint64_t t0 = qb_now_ns();
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_t *query = json_object_get(body, "query");
  if (!json_is_object(query)) {
    json_decref(body);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: query is missing;");
  }
  char *expanded = NULL; /* aliases as their indexes, a filtered alias's filter joins (h_alias.c) */
  json_t *afilter = NULL;
  if (!qs__alias_expand(r, r->caps[0], &expanded, &afilter)) {
    json_decref(body);
    return;
  }
  json_t *sb = json_pack("{s:O, s:i, s:b, s:[s]}", "query", query, "size", DBQ_BATCH, "_source",
                         0, "sort", "_doc");
  if (sb && afilter)
    json_object_set_new(sb, "query", json_pack("{s:{s:[O], s:[o]}}", "bool", "must", query,
                                               "filter", afilter));
  else json_decref(afilter);
  char *sbody = sb ? json_dumps(sb, JSON_COMPACT) : NULL;
  json_decref(sb);
  json_decref(body);
  qc_shards T, *t = &T;
  if (!sbody) {
    qs__alias_expand_free(expanded);
    return qs__reply_error(r, 429, "circuit_breaking_exception", "out of memory");
  }
  int found = resolve(r, expanded ? expanded : r->caps[0], t);
  qs__alias_expand_free(expanded);
  if (!found) goto out;
  uint64_t deleted = 0, batches = 0;
  json_t *failures = json_array();
  for (size_t i = 0; i < t->n; i++) {
    qb_err err;
    if (!t->s[i].local) continue; /* the embedded default's shards are all local */
    qi_index *ix = t->s[i].local;
    const char *iname = t->s[i].index;
    qs__refresh_now(r->srv, ix, iname, &err);
    for (;;) {
      const char *caps[1] = {iname};
      json_t *res = NULL;
      int status = qs__subrequest(r, qs__h_search, caps, 1, sbody, strlen(sbody), &res);
      if (status != 200) {
        json_decref(failures);
        qc_shards_fini(t);
        qs__reply_json(r, status, res);
        goto out;
      }
      json_t *hits = json_object_get(json_object_get(res, "hits"), "hits");
      size_t nhits = json_array_size(hits), n_ok = 0;
      qi_bulk *b = NULL;
      if (nhits && qi_bulk_begin(ix, &b, &err) == QB_OK) {
        size_t k;
        json_t *h;
        json_array_foreach(hits, k, h) {
          const char *id = json_string_value(json_object_get(h, "_id"));
          qi_write_result w;
          if (id && qi_bulk_delete(b, id, &w, NULL) == QB_OK) n_ok++;
        }
        if (qi_bulk_commit(b, &err)) {
          n_ok = 0;
          json_array_append_new(failures, json_pack("{s:s, s:s}", "index", iname, "cause",
                                                    err.msg));
        }
        batches++;
      } else if (nhits) {
        json_array_append_new(failures, json_pack("{s:s, s:s}", "index", iname, "cause",
                                                  err.msg));
      }
      json_decref(res);
      deleted += n_ok;
      if (!n_ok) break; /* nothing matched, or nothing could be deleted: stop */
      qs__refresh_now(r->srv, ix, iname, &err);
      if (nhits < DBQ_BATCH) break;
    }
  }
  qc_shards_fini(t);
  qs__reply_json(r, 200, json_pack("{s:I, s:b, s:I, s:I, s:I, s:i, s:i, s:{s:i, s:i}, s:o}",
                                   "took", (json_int_t)((qb_now_ns() - t0) / 1000000u),
                                   "timed_out", 0, "total", (json_int_t)deleted, "deleted",
                                   (json_int_t)deleted, "batches", (json_int_t)batches,
                                   "version_conflicts", 0, "noops", 0, "retries", "bulk", 0,
                                   "search", 0, "failures", failures));
out:
  qs__json_free(sbody);
}
