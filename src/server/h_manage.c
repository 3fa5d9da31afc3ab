/* h_manage.c: the index-management reads and chores an Elasticsearch user reaches for:
** GET /{index}/_source/{id} (GET /{index}/_settings: h_settings_get.c), GET /_stats and /{index}/_stats,
** POST /_flush and /{index}/_flush, POST /{index}/_forcemerge, GET /{index}/_validate/query,
** GET /_field_caps and /{index}/_field_caps, GET /_cat/health, /_cat/count (_cat/aliases: h_alias.c).
** These serve one node's catalog; a cluster coordinator does not serve them yet (400). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* 0 after replying 400 on a coordinator, which holds no shards of its own. */
static int local_only(qs_req *r) { return qs__local_only(r); }

/* The names a path's {index} (a name, a comma list, a pattern, _all) or, with NULL, every
** index, as a search resolves them (qc_node_resolve): a JSON array of strings, or NULL
** after the reply (a missing concrete name is 404). */
static json_t *index_names(qs_req *r, const char *spec) {
  qc_shards t;
  char missing[256] = "";
  qb_err err;
  char *expanded = NULL;
  json_t *filter = NULL; /* the management routes take the whole index */
  if (!qs__alias_expand(r, spec, &expanded, &filter)) return NULL;
  json_decref(filter);
  qc_shards_init(&t);
  qb_code rc = qc_node_resolve(r->srv->node, expanded ? expanded : spec, 0, &t, missing, &err);
  qs__alias_expand_free(expanded);
  json_t *out = rc ? NULL : json_array();
  for (size_t i = 0; out && i < t.n; i++) /* one shard per index on one node */
    json_array_append_new(out, json_string(t.s[i].index));
  qc_shards_fini(&t);
  if (rc == QB_NOTFOUND) qs__reply_no_index(r, missing);
  else if (rc) qs__reply_err(r, &err);
  else if (!out) qs__reply_code(r, QB_NOMEM, "out of memory");
  return out;
}

/* ---- GET /{index}/_source/{id} ---------------------------------------------------------------- */

void qs__h_source_get(qs_req *r) {
  if (!local_only(r)) return;
  json_t *doc = NULL;
  int status = qs__subrequest(r, qs__h_doc_get, (const char *const *)r->caps, 2, NULL, 0, &doc);
  if (status == 200 && json_is_object(json_object_get(doc, "_source"))) {
    qs__reply_json(r, 200, json_incref(json_object_get(doc, "_source")));
  } else if (status == 200) { /* ?_source=false: nothing to return, as Elasticsearch says */
    qs__reply_error(r, 400, "action_request_validation_exception",
                    "Validation Failed: 1: fetching source can not be disabled;");
  } else if (status == 404 && doc && !json_object_get(doc, "error")) {
    char why[400];
    snprintf(why, sizeof why, "Document not found [%s]/[%s]", r->caps[0], r->caps[1]);
    qs__reply_error(r, 404, "resource_not_found_exception", "%s", why);
  } else {
    r->status = status; /* the document GET's error, as it gave it */
    if (doc) qs__reply_json(r, status, json_incref(doc));
  }
  if (r->method[0] == 'H') qb_buf_reset(&r->out); /* HEAD: the status only */
  json_decref(doc);
}

/* ---- _stats -------------------------------------------------------------------------------------- */

static json_t *stats_of(const qi_index_stats *st) {
  return json_pack("{s:{s:I, s:I}, s:{s:I}, s:{s:I}, s:{s:I, s:I}, s:{s:I}}", "docs", "count",
                   (json_int_t)st->live_docs, "deleted", (json_int_t)st->deleted_docs, "store",
                   "size_in_bytes", (json_int_t)st->disk_bytes, "segments", "count",
                   (json_int_t)st->segments, "merges", "total", (json_int_t)st->merges, "current",
                   (json_int_t)st->merges_running, "refresh", "total",
                   (json_int_t)st->refreshes);
}

void qs__h_stats(qs_req *r) {
  if (!local_only(r)) return;
  json_t *names = index_names(r, r->ncaps ? r->caps[0] : NULL);
  if (!names) return;
  json_t *indices = json_object();
  qi_index_stats all = {0};
  size_t i, ok = 0;
  json_t *jn;
  json_array_foreach(names, i, jn) {
    qi_index *ix;
    if (qi_catalog_get(qc_node_catalog(r->srv->node), json_string_value(jn), &ix, NULL)) continue;
    qi_index_stats st;
    qi_index_stats_get(ix, &st);
    qi_index_release(ix);
    all.live_docs += st.live_docs;
    all.deleted_docs += st.deleted_docs;
    all.disk_bytes += st.disk_bytes;
    all.segments += st.segments;
    all.merges += st.merges;
    all.merges_running += st.merges_running;
    all.refreshes += st.refreshes;
    ok++;
    /* one node, no replicas: primaries and total are the same shards */
    json_object_set_new(indices, json_string_value(jn),
                        json_pack("{s:s, s:o, s:o}", "health", "green", "primaries", stats_of(&st),
                                  "total", stats_of(&st)));
  }
  json_decref(names);
  qs__reply_json(r, 200, json_pack("{s:{s:I, s:I, s:i}, s:{s:o, s:o}, s:o}", "_shards", "total",
                                   (json_int_t)ok, "successful", (json_int_t)ok, "failed", 0,
                                   "_all", "primaries", stats_of(&all), "total", stats_of(&all),
                                   "indices", indices));
}

/* ---- _flush, _forcemerge ------------------------------------------------------------------------- */

/* Every acknowledged write is already durable (SQLite, synchronous=FULL, docs/index.md); a
** flush checkpoints each store's WAL into its database file (qi_index_flush). */
void qs__h_flush(qs_req *r) {
  if (!local_only(r)) return;
  json_t *names = index_names(r, r->ncaps ? r->caps[0] : NULL);
  if (!names) return;
  json_int_t n = 0;
  size_t i;
  json_t *jn;
  qb_err err;
  json_array_foreach(names, i, jn) {
    qi_index *ix;
    if (qi_catalog_get(qc_node_catalog(r->srv->node), json_string_value(jn), &ix, &err)) continue;
    qb_code rc = qi_index_flush(ix, &err);
    qi_index_release(ix);
    if (rc) {
      json_decref(names);
      return qs__reply_err(r, &err);
    }
    n++;
  }
  json_decref(names);
  qs__reply_json(r, 200,
                 json_pack("{s:{s:I, s:I, s:i}}", "_shards", "total", n, "successful", n, "failed", 0));
}

void qs__h_forcemerge(qs_req *r) {
  if (!local_only(r)) return;
  const char *v = qs__arg(r, "max_num_segments");
  long long max = 1;
  if (v) {
    char *end;
    max = strtoll(v, &end, 10);
    if (!*v || *end || max < 1 || max > 1000000)
      return qs__reply_error(r, 400, "illegal_argument_exception",
                             "[max_num_segments] must be a positive integer, got [%.64s]", v);
  }
  json_t *names = index_names(r, r->ncaps ? r->caps[0] : NULL);
  if (!names) return;
  size_t i, done = 0;
  json_t *jn;
  qb_err err;
  json_array_foreach(names, i, jn) {
    qi_index *ix;
    if (qi_catalog_get(qc_node_catalog(r->srv->node), json_string_value(jn), &ix, &err)) continue;
    /* what was written but not refreshed is merged too, as Elasticsearch flushes first */
    qb_code rc = qs__refresh_now(r->srv, ix, json_string_value(jn), &err);
    if (!rc) rc = qi_index_force_merge(ix, (uint32_t)max, &err);
    qi_index_release(ix);
    if (rc) {
      json_decref(names);
      return qs__reply_err(r, &err);
    }
    done++;
  }
  json_decref(names);
  qb_log(QB_INFO, "force merge of %s to at most %lld segments: %zu indexes",
         r->ncaps ? r->caps[0] : "every index", max, done);
  qs__reply_json(r, 200, json_pack("{s:{s:I, s:I, s:i}}", "_shards", "total", (json_int_t)done,
                                   "successful", (json_int_t)done, "failed", 0));
}

/* ---- _validate/query ------------------------------------------------------------------------------ */

void qs__h_validate(qs_req *r) {
  if (!local_only(r)) return;
  json_t *names = index_names(r, r->ncaps ? r->caps[0] : NULL);
  if (!names) return;
  json_int_t n = (json_int_t)json_array_size(names);
  json_decref(names);
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  /* only {"query": ...}: the rest of a search body is not a query to validate */
  const char *k;
  json_t *v;
  json_object_foreach(body, k, v) {
    if (strcmp(k, "query")) { /* K lives in BODY: reply, then free */
      qs__reply_error(r, 400, "parsing_exception", "request does not support [%.64s] (only [query])", k);
      json_decref(body);
      return;
    }
  }
  json_decref(body);
  qc_udf_provider prov;
  qq_env env;
  qs__query_env(r, &prov, &env);
  qq_request *req = NULL;
  qb_err err;
  qb_err_clear(&err);
  qb_code rc = qq_request_parse(&env, r->body_len ? r->body : "{}", r->body_len ? r->body_len : 2,
                                1, &req, &err);
  qq_request_free(req);
  qc_udf_provider_fini(&prov);
  if (rc == QB_NOMEM) return qs__reply_err(r, &err);
  json_t *out = json_pack("{s:{s:I, s:I, s:i}, s:b}", "_shards", "total", n, "successful", n,
                          "failed", 0, "valid", !rc);
  if (rc && qs__arg_bool(r, "explain")) /* Elasticsearch's ?explain: why it is not valid */
    json_object_set_new(out, "error", json_string(err.msg));
  qs__reply_json(r, 200, out);
}

/* ---- _field_caps ---------------------------------------------------------------------------------- */

/* Add FIELDS (a mapping's "properties", below PREFIX) of one index to CAPS. */
static void caps_of(json_t *caps, json_t *props, const char *prefix, const char *const *want,
                    size_t nwant) {
  const char *k;
  json_t *f;
  json_object_foreach(props, k, f) {
    char path[512];
    snprintf(path, sizeof path, "%s%s", prefix, k);
    const char *type = json_string_value(json_object_get(f, "type"));
    if (json_is_object(json_object_get(f, "properties"))) {
      char sub[sizeof path + 1];
      snprintf(sub, sizeof sub, "%s.", path);
      caps_of(caps, json_object_get(f, "properties"), sub, want, nwant);
    }
    int wanted = 0;
    for (size_t i = 0; i < nwant && !wanted; i++) {
      size_t wl = strlen(want[i]);
      wanted = !strcmp(want[i], "*") || !strcmp(want[i], path) ||
               (wl && want[i][wl - 1] == '*' && !strncmp(want[i], path, wl - 1));
    }
    if (type && wanted) {
      json_t *byname = json_object_get(caps, path);
      if (!byname) json_object_set_new(caps, path, byname = json_object());
      if (!json_object_get(byname, type))
        json_object_set_new(byname, type,
                            json_pack("{s:s, s:b, s:b}", "type", type, "searchable", 1,
                                      "aggregatable", strcmp(type, "text") != 0));
    }
    json_t *fields = json_object_get(f, "fields"); /* multi-fields: title.keyword */
    if (json_is_object(fields)) {
      char sub[sizeof path + 1];
      snprintf(sub, sizeof sub, "%s.", path);
      caps_of(caps, fields, sub, want, nwant);
    }
  }
}

void qs__h_field_caps(qs_req *r) {
  if (!local_only(r)) return;
  const char *fields = qs__arg(r, "fields");
  if (!fields || !*fields)
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: no fields specified;");
  const char *want[64];
  char buf[2048];
  size_t nwant = 0;
  snprintf(buf, sizeof buf, "%s", fields);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && nwant < 64; t = strtok_r(NULL, ",", &save))
    want[nwant++] = t;
  json_t *names = index_names(r, r->ncaps ? r->caps[0] : NULL);
  if (!names) return;
  json_t *caps = json_object();
  size_t i;
  json_t *jn;
  json_array_foreach(names, i, jn) {
    const char *caps1[1] = {json_string_value(jn)};
    json_t *m = NULL;
    if (qs__subrequest(r, qs__h_mapping_get, caps1, 1, NULL, 0, &m) == 200)
      caps_of(caps, json_object_get(json_object_get(json_object_get(m, caps1[0]), "mappings"),
                                    "properties"),
              "", want, nwant);
    json_decref(m);
  }
  qs__reply_json(r, 200, json_pack("{s:o, s:o}", "indices", names, "fields", caps));
}

/* ---- _cat/health, _cat/count, _cat/aliases --------------------------------------------------------- */

static const char *const health_cols[] = {"epoch", "timestamp", "cluster", "status", "node.total",
                                          "node.data", "shards", "pri", "relo", "init",
                                          "unassign", "pending_tasks", "max_task_wait_time",
                                          "active_shards_percent"};

void qs__h_cat_health(qs_req *r) {
  if (!local_only(r)) return;
  json_t *h = NULL;
  if (qs__subrequest(r, qs__h_health, NULL, 0, NULL, 0, &h) != 200 || !h) {
    json_decref(h);
    return qs__reply_code(r, QB_INTERNAL, "cluster health failed");
  }
  int64_t now = qb_wall_ms();
  char epoch[24], ts[16], pct[16], shards[24], unassigned[24];
  snprintf(epoch, sizeof epoch, "%lld", (long long)(now / 1000));
  snprintf(ts, sizeof ts, "%02lld:%02lld:%02lld", (long long)(now / 3600000 % 24),
           (long long)(now / 60000 % 60), (long long)(now / 1000 % 60));
  snprintf(pct, sizeof pct, "%.1f%%",
           json_number_value(json_object_get(h, "active_shards_percent_as_number")));
  snprintf(shards, sizeof shards, "%lld", (long long)json_integer_value(json_object_get(h, "active_shards")));
  snprintf(unassigned, sizeof unassigned, "%lld",
           (long long)json_integer_value(json_object_get(h, "unassigned_shards")));
  json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                          "epoch", epoch, "timestamp", ts, "cluster", "quidditch", "status",
                          json_string_value(json_object_get(h, "status")), "node.total", "1",
                          "node.data", "1", "shards", shards, "pri", shards, "relo", "0", "init",
                          "0", "unassign", unassigned, "pending_tasks", "0", "max_task_wait_time",
                          "-", "active_shards_percent", pct);
  json_decref(h);
  qs__reply_cat(r, health_cols, sizeof health_cols / sizeof *health_cols, json_pack("[o]", row));
}

static const char *const count_cols[] = {"epoch", "timestamp", "count"};

void qs__h_cat_count(qs_req *r) {
  if (!local_only(r)) return;
  json_t *names = index_names(r, r->ncaps ? r->caps[0] : NULL);
  if (!names) return;
  uint64_t total = 0;
  size_t i;
  json_t *jn;
  json_array_foreach(names, i, jn) {
    qi_index *ix;
    if (qi_catalog_get(qc_node_catalog(r->srv->node), json_string_value(jn), &ix, NULL)) continue;
    total += qi_index_doc_count(ix);
    qi_index_release(ix);
  }
  json_decref(names);
  int64_t now = qb_wall_ms();
  char epoch[24], ts[16], count[24];
  snprintf(epoch, sizeof epoch, "%lld", (long long)(now / 1000));
  snprintf(ts, sizeof ts, "%02lld:%02lld:%02lld", (long long)(now / 3600000 % 24),
           (long long)(now / 60000 % 60), (long long)(now / 1000 % 60));
  snprintf(count, sizeof count, "%llu", (unsigned long long)total);
  qs__reply_cat(r, count_cols, 3,
                json_pack("[{s:s, s:s, s:s}]", "epoch", epoch, "timestamp", ts, "count", count));
}

json_t *qs__manage_index_names(qs_req *r, const char *spec) { return index_names(r, spec); }
