/* h_coord.c: a coordinator's routes (role coord or both), where the cluster differs from the
** embedded default: index administration and documents go to src/cluster's coordinator
** (coord.c: the leader places shards, documents route by murmur3), the cluster APIs read the
** membership and shard map from etcd, UDF deploys go to etcd and every data node. Searches
** are not here: _search/_count/_msearch run the same handler over the node's shard source.
** Requests naming a shard's local name ("index~N") are a data node's own (role both). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void qs__reply_cluster(qs_req *r, int status, json_t *j) {
  if (!status) { /* the coordinator's own failure: through the error table */
    const char *reason = json_string_value(json_object_get(j, "reason"));
    qb_code code = j ? (qb_code)json_integer_value(json_object_get(j, "code")) : QB_NOMEM;
    if (r->route == QS_R_INDEX_PUT && code == QB_CONFLICT) qs__reply_exists(r, r->caps[0]);
    else qs__reply_code(r, code, "%s", reason ? reason : "out of memory");
    json_decref(j);
    return;
  }
  if (!j) {
    qs__reply_code(r, QB_NOMEM, "out of memory");
    return;
  }
  qs__reply_json(r, status, j);
}

static void reply(qs_req *r, int status, json_t *j) {
  if (!strcmp(r->method, "HEAD")) {
    json_decref(j);
    r->status = status ? status : 500;
    return;
  }
  qs__reply_cluster(r, status, j);
}

static int index_ok(qs_req *r, const char *name) {
  char reason[256];
  if (strchr(name, '~'))
    snprintf(reason, sizeof reason, "Invalid index name [%.180s], must not contain '~' in a cluster",
             name);
  else if (qs__index_name_ok(name, reason))
    return 1;
  qs__reply_error(r, 400, "invalid_index_name_exception", "%s", reason);
  return 0;
}

/* ?version=vN or N; 0 when absent, -1 when not a version (after a reply). */
static long long version_arg(qs_req *r) {
  const char *v = qs__arg(r, "version");
  if (!v) return 0;
  char *end;
  long long n = strtoll(v + (v[0] == 'v' || v[0] == 'V'), &end, 10);
  if (*end || n < 1 || n > UINT32_MAX) {
    qs__reply_error(r, 400, "illegal_argument_exception", "[version] is not a version: [%.100s]",
                    v);
    return -1;
  }
  return n;
}

static void doc(qs_req *r, const char *method, const char *op, const char *id) {
  json_t *out;
  int st = qc_doc_route(r->srv->node, method, r->caps[0], op, id, qs__arg(r, "routing"), r->query,
                        r->body_len ? r->body : NULL, r->body_len, &out);
  reply(r, st, out);
}

/* ---- cluster APIs ---------------------------------------------------------------------- */

typedef struct counts {
  size_t active, unassigned, nodes, data;
} counts;

static void count_shards(qc_node *n, counts *c, json_t *all) {
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256);
  memset(c, 0, sizeof *c);
  c->nodes = nm;
  for (size_t i = 0; i < nm && i < 256; i++) c->data += m[i].data;
  const char *k;
  json_t *meta;
  json_object_foreach(all, k, meta) {
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(meta, "shards"), i, sh) {
      json_t *cp = json_array_get(json_object_get(sh, "copies"), 0);
      char url[128];
      const char *node = json_string_value(json_object_get(cp, "node"));
      int live = 0;
      for (size_t x = 0; node && x < nm && x < 256; x++) live |= !strcmp(m[x].name, node);
      (void)url;
      if (live) c->active++;
      else c->unassigned++;
    }
  }
}

static void health(qs_req *r) {
  if (qs__replica_health(r)) return; /* h_replica.c: every copy */
  json_t *all = qc_node_indexes(r->srv->node);
  counts c;
  count_shards(r->srv->node, &c, all);
  json_decref(all);
  size_t total = c.active + c.unassigned;
  double pct = total ? 100.0 * (double)c.active / (double)total : 100.0;
  /* no replicas yet: a missing copy is a missing primary (red) */
  qs__reply_json(r, 200,
                 json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:i, s:i, s:I, s:i, s:i, s:f}",
                           "cluster_name", "quidditch", "status", c.unassigned ? "red" : "green",
                           "timed_out", 0, "number_of_nodes", (json_int_t)c.nodes,
                           "number_of_data_nodes", (json_int_t)c.data, "active_primary_shards",
                           (json_int_t)c.active, "active_shards", (json_int_t)c.active,
                           "relocating_shards", 0, "initializing_shards", 0, "unassigned_shards",
                           (json_int_t)c.unassigned, "number_of_pending_tasks", 0,
                           "delayed_unassigned_shards", 0, "active_shards_percent_as_number",
                           pct));
}

static json_t *roles_json(const qc_member *m) {
  json_t *a = json_array();
  if (m->data) json_array_append_new(a, json_string("data"));
  if (m->coord) {
    json_array_append_new(a, json_string("master"));
    json_array_append_new(a, json_string("coordinating"));
  }
  return a;
}

static const char *host_of(const char *url, char out[128]) {
  const char *p = strstr(url, "://");
  snprintf(out, 128, "%s", p ? p + 3 : url);
  char *colon = strrchr(out, ':');
  if (colon) *colon = 0;
  return out;
}

static void nodes(qs_req *r) {
  qc_member m[256], leader;
  size_t nm = qc_node_members(r->srv->node, m, 256);
  int have_leader = qc_node_leader(r->srv->node, &leader, NULL) == QB_OK;
  json_t *all = json_object();
  for (size_t i = 0; i < nm && i < 256; i++) {
    char host[128];
    const char *addr = strstr(m[i].url, "://") ? strstr(m[i].url, "://") + 3 : m[i].url;
    json_object_set_new(all, m[i].name,
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:s}, s:I, s:b}", "name",
                                  m[i].name, "transport_address", addr, "host",
                                  host_of(m[i].url, host), "ip", host, "version", QS_VERSION,
                                  "roles", roles_json(&m[i]), "http", "publish_address", addr,
                                  "start_time_ms", (json_int_t)m[i].started_ms, "leader",
                                  have_leader && !strcmp(leader.name, m[i].name)));
  }
  qs__reply_json(r, 200, json_pack("{s:{s:I, s:I, s:i}, s:s, s:o}", "_nodes", "total",
                                   (json_int_t)nm, "successful", (json_int_t)nm, "failed", 0,
                                   "cluster_name", "quidditch", "nodes", all));
}

static void cat_nodes(qs_req *r) {
  qc_member m[256], leader;
  size_t nm = qc_node_members(r->srv->node, m, 256);
  int have_leader = qc_node_leader(r->srv->node, &leader, NULL) == QB_OK;
  json_t *rows = json_array();
  for (size_t i = 0; i < nm && i < 256; i++) {
    char host[128], role[8];
    snprintf(role, sizeof role, "%s%s", m[i].data ? "d" : "", m[i].coord ? "m" : "");
    if (!role[0]) snprintf(role, sizeof role, "-");
    json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                          "ip", host_of(m[i].url, host), "heap.percent", "",
                                          "ram.percent", "", "cpu", "", "load_1m", "", "load_5m",
                                          "", "load_15m", "", "node.role", role, "master",
                                          have_leader && !strcmp(leader.name, m[i].name) ? "*"
                                                                                         : "-",
                                          "name", m[i].name));
  }
  size_t nc;
  const char *const *cols = qs__cat_cols(1, &nc);
  qs__reply_cat(r, cols, nc, rows);
}

static void cat_shards_or_indices(qs_req *r, int indices) {
  if (!indices && qs__replica_cat_shards(r)) return; /* h_replica.c: every copy */
  qc_node *n = r->srv->node;
  json_t *all = qc_node_indexes(n), *docs = qc_shard_docs(n), *rows = json_array();
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256);
  /* in index name order */
  size_t cnt = json_object_size(all), k = 0;
  const char **names = qb_calloc(cnt ? cnt : 1, sizeof *names);
  const char *key;
  json_t *meta;
  json_object_foreach(all, key, meta) if (names) names[k++] = key;
  for (size_t i = 1; i < k; i++)
    for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      const char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  for (size_t x = 0; x < k; x++) {
    const char *name = names[x];
    meta = json_object_get(all, name);
    json_t *per = json_object_get(docs, name);
    json_int_t total = 0;
    size_t live = 0, nsh = 0, i;
    json_t *sh;
    json_array_foreach(json_object_get(meta, "shards"), i, sh) {
      nsh++;
      json_int_t id = json_integer_value(json_object_get(sh, "shard"));
      json_t *cp = json_array_get(json_object_get(sh, "copies"), 0);
      const char *node = json_string_value(json_object_get(cp, "node"));
      const char *url = NULL;
      for (size_t y = 0; node && y < nm && y < 256; y++)
        if (!strcmp(m[y].name, node)) url = m[y].url;
      char sid[16], dc[32] = "", host[128] = "";
      snprintf(sid, sizeof sid, "%lld", (long long)id);
      json_t *d = json_object_get(per, sid);
      if (d) snprintf(dc, sizeof dc, "%lld", (long long)json_integer_value(d));
      total += json_integer_value(d);
      if (url) live++, host_of(url, host);
      if (!indices)
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                              "index", name, "shard", sid, "prirep", "p",
                                              "state", url ? "STARTED" : "UNASSIGNED", "docs",
                                              dc, "store", "", "ip", host, "node",
                                              url && node ? node : ""));
    }
    if (indices) {
      char pri[16], rep[16], dc[32];
      snprintf(pri, sizeof pri, "%zu", nsh);
      snprintf(rep, sizeof rep, "%lld", (long long)json_integer_value(json_object_get(
                                            json_object_get(meta, "settings"), "number_of_replicas")));
      snprintf(dc, sizeof dc, "%lld", (long long)total);
      json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                            "health", live == nsh ? "green" : "red", "status",
                                            "open", "index", name, "uuid", name, "pri", pri,
                                            "rep", rep, "docs.count", dc, "docs.deleted", "0",
                                            "store.size", "", "pri.store.size", ""));
    }
  }
  qb_free(names, (cnt ? cnt : 1) * sizeof *names);
  json_decref(all);
  json_decref(docs);
  size_t nc;
  const char *const *cols = qs__cat_cols(indices ? 0 : 2, &nc);
  qs__reply_cat(r, cols, nc, rows);
}

/* ---- the dispatcher ------------------------------------------------------------------------ */

int qs__coord(qs_req *r) {
  json_t *out;
  int st;
  /* a shard's local name: the data node half of this process (role both) */
  if (r->ncaps && strchr(r->caps[0], '~')) return 0;
  switch (r->route) {
  case QS_R_HEALTH: health(r); return 1;
  case QS_R_NODES: nodes(r); return 1;
  case QS_R_CAT_NODES: cat_nodes(r); return 1;
  case QS_R_CAT_SHARDS: cat_shards_or_indices(r, 0); return 1;
  case QS_R_CAT_INDICES: cat_shards_or_indices(r, 1); return 1;
  case QS_R_INDEX_PUT:
    if (!index_ok(r, r->caps[0])) return 1;
    st = qc_index_create(r->srv->node, r->caps[0], r->body, r->body_len, &out);
    reply(r, st, out);
    return 1;
  case QS_R_INDEX_DELETE:
    st = qc_index_delete(r->srv->node, r->caps[0], &out);
    reply(r, st, out);
    return 1;
  case QS_R_INDEX_HEAD: {
    json_t *meta = qc_node_index_meta_view(r->srv->node, r->caps[0]);
    r->status = meta ? 200 : 404;
    json_decref(meta);
    return 1;
  }
  case QS_R_INDEX_GET:
  case QS_R_MAPPING_GET:
    st = qc_index_get(r->srv->node, r->caps[0], r->route == QS_R_INDEX_GET ? "" : "/_mapping",
                      &out);
    reply(r, st, out);
    return 1;
  case QS_R_DOC_POST: doc(r, "POST", "_doc", NULL); return 1;
  case QS_R_DOC_PUT: case QS_R_DOC_POST_ID: doc(r, "PUT", "_doc", r->caps[1]); return 1;
  case QS_R_DOC_GET: case QS_R_DOC_HEAD: doc(r, r->method, "_doc", r->caps[1]); return 1;
  case QS_R_DOC_DELETE: doc(r, "DELETE", "_doc", r->caps[1]); return 1;
  case QS_R_DOC_CREATE: case QS_R_DOC_CREATE_POST: doc(r, "PUT", "_create", r->caps[1]); return 1;
  case QS_R_DOC_UPDATE: doc(r, "POST", "_update", r->caps[1]); return 1;
  case QS_R_BULK: case QS_R_BULK_PUT: case QS_R_INDEX_BULK: case QS_R_INDEX_BULK_PUT:
    st = qc_bulk(r->srv->node, r->ncaps ? r->caps[0] : NULL, r->query, r->body, r->body_len,
                 &out);
    reply(r, st, out);
    return 1;
  case QS_R_REFRESH_ALL: case QS_R_REFRESH: case QS_R_REFRESH_GET:
    st = qc_refresh(r->srv->node, r->ncaps ? r->caps[0] : NULL, &out);
    reply(r, st, out);
    return 1;
  case QS_R_UDF_LIST:
    st = qc_udf_list(r->srv->node, &out);
    reply(r, st, out);
    return 1;
  case QS_R_UDF_GET:
    st = qc_udf_status(r->srv->node, r->caps[0], &out);
    reply(r, st, out);
    return 1;
  case QS_R_UDF_DELETE:
    st = qc_udf_delete(r->srv->node, r->caps[0], &out);
    reply(r, st, out);
    return 1;
  case QS_R_UDF_ROLLBACK: {
    json_t *body;
    if (!qs__body_object(r, &body)) return 1;
    json_t *to = json_object_get(body, "to");
    if (!to) to = json_object_get(body, "version");
    const char *sv = json_string_value(to);
    long long v = json_is_integer(to) ? json_integer_value(to)
                  : sv ? strtoll(sv + (sv[0] == 'v'), NULL, 10) : 0;
    json_decref(body);
    if (v < 1 || v > UINT32_MAX) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "rollback needs {\"to\": \"vN\"} naming a stored version");
      return 1;
    }
    st = qc_udf_rollback(r->srv->node, r->caps[0], (uint32_t)v, &out);
    reply(r, st, out);
    return 1;
  }
  case QS_R_UDF_VERSIONS:
    st = qc_udf_versions(r->srv->node, r->caps[0], &out);
    reply(r, st, out);
    return 1;
  case QS_R_UDF_TEST: {
    long long v = version_arg(r);
    if (v < 0) return 1;
    st = qc_udf_test(r->srv->node, r->caps[0], (uint32_t)v, r->body, r->body_len, &out);
    reply(r, st, out);
    return 1;
  }
  case QS_R_MAPPING_PUT:
    st = qc_mapping_put(r->srv->node, r->caps[0], r->body, r->body_len, &out);
    reply(r, st, out);
    return 1;
  case QS_R_DELETE_BY_QUERY:
    st = qc_delete_by_query(r->srv->node, r->caps[0], r->query, r->body, r->body_len, &out);
    reply(r, st, out);
    return 1;
  /* _mget runs the node's handler: its per-document gets come back here (qs__subrequest) */
  default: return 0;
  }
}
