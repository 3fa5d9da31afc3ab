/* h_cluster.c: the node-level routes of the embedded default (and of a data node, about
** itself): the banner at /, _cluster/health, _nodes, and _cat/indices|nodes|shards with
** Elasticsearch's columns, plus the _cat renderer (?v, ?format=json) that the coordinator's
** versions (h_coord.c) share. One node holds every shard, so health is green unless an index
** was found damaged at open (red: its primary cannot be served). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void qs__h_root(qs_req *r) {
  qs_server *s = r->srv;
  json_t *j = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s}, s:s}",
                        "name", s->node_name, "cluster_name", "quidditch", "cluster_uuid",
                        "quidditch-embedded", "version", "number", QS_VERSION, "build_flavor",
                        "default", "build_type", "quidditch", "build_hash", "quidditch",
                        "lucene_version", "compatible", "build_snapshot", 0,
                        "minimum_wire_compatibility_version", "7.17.0",
                        "minimum_index_compatibility_version", "7.0.0", "tagline",
                        "You Know, for Search (with WebAssembly UDFs)");
  json_object_set_new(json_object_get(j, "version"), "distribution", json_string("quidditch"));
  json_object_set_new(json_object_get(j, "version"), "compatibility",
                      json_string("8.x-compatible"));
  qs__reply_json(r, 200, j);
}

/* Indexes found damaged at open (qi_catalog_damaged) count as unassigned primaries: red. */
static size_t damaged_count(qi_catalog *cat) {
  size_t d = 0;
  for (size_t i = 0, n = qi_catalog_count(cat); i < n; i++) {
    char name[256];
    if (!qi_catalog_name(cat, i, name, NULL) && qi_catalog_damaged(cat, name, NULL, 0)) d++;
  }
  return d;
}

void qs__h_health(qs_req *r) {
  qi_catalog *cat = qc_node_catalog(r->srv->node);
  size_t n = qi_catalog_count(cat), bad = damaged_count(cat);
  qs__reply_json(r, 200,
                 json_pack("{s:s, s:s, s:b, s:i, s:i, s:I, s:I, s:i, s:i, s:I, s:i, s:i, s:f}",
                           "cluster_name", "quidditch", "status", bad ? "red" : "green",
                           "timed_out", 0, "number_of_nodes", 1, "number_of_data_nodes", 1,
                           "active_primary_shards", (json_int_t)(n - bad), "active_shards",
                           (json_int_t)(n - bad), "relocating_shards", 0, "initializing_shards",
                           0, "unassigned_shards", (json_int_t)bad, "number_of_pending_tasks", 0,
                           "delayed_unassigned_shards", 0, "active_shards_percent_as_number",
                           n ? 100.0 * (double)(n - bad) / (double)n : 100.0));
}

void qs__h_nodes(qs_req *r) {
  qs_server *s = r->srv;
  char addr[300];
  snprintf(addr, sizeof addr, "%s:%u", s->host, (unsigned)s->port);
  json_t *node = json_pack("{s:s, s:s, s:s, s:s, s:[s,s,s], s:{s:s, s:i}, s:{s:s}, s:I}", "name",
                           s->node_name, "transport_address", addr, "host", s->host, "version",
                           QS_VERSION, "roles", "master", "data", "ingest", "http",
                           "publish_address", addr, "threads", (int)s->threads, "attributes",
                           "udf_tiers", "interpreter", "start_time_ms", (json_int_t)s->started_ms);
  qs__reply_json(r, 200, json_pack("{s:{s:i, s:i, s:i}, s:s, s:{s:o}}", "_nodes", "total", 1,
                                   "successful", 1, "failed", 0, "cluster_name", "quidditch",
                                   "nodes", s->node_name, node));
}

void qs__reply_cat(qs_req *r, const char *const *cols, size_t n, json_t *rows) {
  const char *fmt = qs__arg(r, "format");
  if (fmt && !strcmp(fmt, "json")) return qs__reply_json(r, 200, rows);
  size_t width[32] = {0};
  int head = qs__arg_bool(r, "v");
  if (n > 32) n = 32;
  size_t i, k;
  json_t *row;
  for (k = 0; k < n; k++) width[k] = head ? strlen(cols[k]) : 0;
  json_array_foreach(rows, i, row) {
    for (k = 0; k < n; k++) {
      const char *v = json_string_value(json_object_get(row, cols[k]));
      size_t l = v ? strlen(v) : 0;
      if (l > width[k]) width[k] = l;
    }
  }
  qb_buf t;
  qb_buf_init(&t);
  if (head) {
    for (k = 0; k < n; k++) {
      if (k + 1 < n) qb_buf_printf(&t, "%-*s ", (int)width[k], cols[k]);
      else qb_buf_puts(&t, cols[k]);
    }
    qb_buf_puts(&t, "\n");
  }
  json_array_foreach(rows, i, row) {
    for (k = 0; k < n; k++) {
      const char *v = json_string_value(json_object_get(row, cols[k]));
      if (!v) v = "";
      if (k + 1 < n) qb_buf_printf(&t, "%-*s ", (int)width[k], v);
      else qb_buf_puts(&t, v);
    }
    qb_buf_puts(&t, "\n");
  }
  json_decref(rows);
  qs__reply_text(r, 200, "text/plain; charset=UTF-8", t.data ? t.data : "", t.len);
  qb_buf_fini(&t);
}

static const char *const index_cols[] = {"health", "status", "index", "uuid", "pri", "rep",
                                         "docs.count", "docs.deleted", "store.size",
                                         "pri.store.size"};

void qs__h_cat_indices(qs_req *r) {
  json_t *arr = json_array();
  qi_catalog *cat = qc_node_catalog(r->srv->node);
  for (size_t i = 0, n = qi_catalog_count(cat); i < n; i++) {
    char name[256];
    qi_index *ix;
    if (qi_catalog_name(cat, i, name, NULL)) continue;
    if (qi_catalog_damaged(cat, name, NULL, 0)) {
      json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:s, s:s}",
                                           "health", "red", "status", "open", "index", name,
                                           "uuid", name, "pri", "1", "rep", "0", "docs.count",
                                           "docs.deleted", "", "store.size", "",
                                           "pri.store.size", ""));
      continue;
    }
    if (qi_catalog_get(cat, name, &ix, NULL)) continue;
    char count[32];
    snprintf(count, sizeof count, "%llu", (unsigned long long)qi_index_doc_count(ix));
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                         "health", "green", "status", "open", "index", name,
                                         "uuid", name, "pri", "1", "rep", "0", "docs.count",
                                         count, "docs.deleted", "0", "store.size", "",
                                         "pri.store.size", ""));
    qi_index_release(ix);
  }
  qs__reply_cat(r, index_cols, sizeof index_cols / sizeof *index_cols, arr);
}

static const char *const node_cols[] = {"ip", "heap.percent", "ram.percent", "cpu", "load_1m",
                                        "load_5m", "load_15m", "node.role", "master", "name"};

void qs__h_cat_nodes(qs_req *r) {
  qs_server *s = r->srv;
  json_t *arr = json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}]", "ip", s->host,
                          "heap.percent", "", "ram.percent", "", "cpu", "", "load_1m", "",
                          "load_5m", "", "load_15m", "", "node.role", "dm", "master", "*",
                          "name", s->node_name);
  qs__reply_cat(r, node_cols, sizeof node_cols / sizeof *node_cols, arr);
}

static const char *const shard_cols[] = {"index", "shard", "prirep", "state", "docs", "store",
                                         "ip", "node"};

void qs__h_cat_shards(qs_req *r) {
  json_t *arr = json_array();
  qi_catalog *cat = qc_node_catalog(r->srv->node);
  for (size_t i = 0, n = qi_catalog_count(cat); i < n; i++) {
    char name[256];
    qi_index *ix;
    if (qi_catalog_name(cat, i, name, NULL) || qi_catalog_get(cat, name, &ix, NULL)) continue;
    char count[32], store[32];
    snprintf(count, sizeof count, "%llu", (unsigned long long)qi_index_doc_count(ix));
    qi_index_stats st; /* the store as Elasticsearch's _cat prints sizes: 208b, 5.2kb, 1.1mb */
    qi_index_stats_get(ix, &st);
    double v = (double)st.disk_bytes;
    const char *unit = "b";
    for (const char *const *u = (const char *const[]){"kb", "mb", "gb", "tb", NULL}; *u && v >= 1024; u++)
      v /= 1024, unit = *u;
    snprintf(store, sizeof store, unit[0] == 'b' ? "%.0f%s" : "%.1f%s", v, unit);
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "index",
                                         name, "shard", "0", "prirep", "p", "state", "STARTED",
                                         "docs", count, "store", store, "ip", r->srv->host, "node",
                                         r->srv->node_name));
    qi_index_release(ix);
  }
  qs__reply_cat(r, shard_cols, sizeof shard_cols / sizeof *shard_cols, arr);
}

/* The column lists, for h_coord.c. */
const char *const *qs__cat_cols(int which, size_t *n) {
  switch (which) {
  case 0: *n = sizeof index_cols / sizeof *index_cols; return index_cols;
  case 1: *n = sizeof node_cols / sizeof *node_cols; return node_cols;
  default: *n = sizeof shard_cols / sizeof *shard_cols; return shard_cols;
  }
}
