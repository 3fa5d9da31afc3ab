/* h_cluster.c: the node-level routes: the banner at /, _cluster/health, _nodes and
** _cat/indices. One node holds every shard, so health is green unless an index failed. */
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

void qs__h_health(qs_req *r) {
  size_t n = qi_catalog_count(qc_node_catalog(r->srv->node));
  qs__reply_json(r, 200,
                 json_pack("{s:s, s:s, s:b, s:i, s:i, s:I, s:I, s:i, s:i, s:i, s:i, s:i, s:f}",
                           "cluster_name", "quidditch", "status", "green", "timed_out", 0,
                           "number_of_nodes", 1, "number_of_data_nodes", 1,
                           "active_primary_shards", (json_int_t)n, "active_shards",
                           (json_int_t)n, "relocating_shards", 0, "initializing_shards", 0,
                           "unassigned_shards", 0, "number_of_pending_tasks", 0,
                           "delayed_unassigned_shards", 0, "active_shards_percent_as_number",
                           100.0));
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

void qs__h_cat_indices(qs_req *r) {
  json_t *arr = json_array();
  for (size_t i = 0, n = qi_catalog_count(qc_node_catalog(r->srv->node)); i < n; i++) {
    char name[256];
    qi_index *ix;
    if (qi_catalog_name(qc_node_catalog(r->srv->node), i, name, NULL) || qi_catalog_get(qc_node_catalog(r->srv->node), name, &ix, NULL))
      continue;
    char count[32];
    snprintf(count, sizeof count, "%llu", (unsigned long long)qi_index_doc_count(ix));
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "health", "green",
                                         "status", "open", "index", name, "pri", "1", "rep", "0",
                                         "docs.count", count));
    qi_index_release(ix);
  }
  if (qs__arg(r, "format") && !strcmp(qs__arg(r, "format"), "json"))
    return qs__reply_json(r, 200, arr);
  qb_buf t;
  qb_buf_init(&t);
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    qb_buf_printf(&t, "green open %s 1 0 %s\n", json_string_value(json_object_get(v, "index")),
                  json_string_value(json_object_get(v, "docs.count")));
  }
  json_decref(arr);
  qs__reply_text(r, 200, "text/plain; charset=UTF-8", t.data ? t.data : "", t.len);
  qb_buf_fini(&t);
}
