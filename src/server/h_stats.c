/* h_stats.c: GET /_cluster/stats and /_nodes/stats on one node, in Elasticsearch's shapes, from
** the figures the node keeps: each index's documents, deleted documents, store bytes and
** segments (qi_index_stats, as _stats gives them), and the server's counters that /metrics
** also shows (documents indexed, searches and their time, refreshes, HTTP connections).
** A cluster coordinator answers 400 (its data nodes hold the figures). */
#include <string.h>

#include "internal.h"

typedef struct totals {
  uint64_t indexes, docs, deleted, bytes, segments;
} totals;

static void sum_indexes(qs_server *s, totals *t) {
  memset(t, 0, sizeof *t);
  qi_catalog *cat = qc_node_catalog(s->node);
  for (size_t i = 0, n = qi_catalog_count(cat); i < n; i++) {
    char name[256];
    qi_index *ix;
    if (qi_catalog_name(cat, i, name, NULL) || qi_catalog_get(cat, name, &ix, NULL)) continue;
    qi_index_stats st;
    qi_index_stats_get(ix, &st);
    qi_index_release(ix);
    t->indexes++;
    t->docs += st.live_docs;
    t->deleted += st.deleted_docs;
    t->bytes += st.disk_bytes;
    t->segments += st.segments;
  }
}

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

void qs__h_cluster_stats(qs_req *r) {
  if (!qs__local_only(r)) return;
  totals t;
  sum_indexes(r->srv, &t);
  json_t *indices = json_pack(
      "{s:I, s:{s:I, s:I, s:f}, s:{s:I, s:I}, s:{s:I}, s:{s:I}}", "count", (json_int_t)t.indexes,
      "shards", "total", (json_int_t)t.indexes, "primaries", (json_int_t)t.indexes, "replication",
      0.0, "docs", "count", (json_int_t)t.docs, "deleted", (json_int_t)t.deleted, "store",
      "size_in_bytes", (json_int_t)t.bytes, "segments", "count", (json_int_t)t.segments);
  json_t *nodes = json_pack("{s:{s:i, s:i, s:i, s:i, s:i}, s:[s]}", "count", "total", 1, "data", 1,
                            "master", 1, "ingest", 1, "coordinating_only", 0, "versions",
                            QS_VERSION);
  qs__reply_json(r, 200, json_pack("{s:{s:i, s:i, s:i}, s:s, s:I, s:s, s:o, s:o}", "_nodes",
                                   "total", 1, "successful", 1, "failed", 0, "cluster_name",
                                   "quidditch", "timestamp", (json_int_t)qb_wall_ms(), "status",
                                   "green", "indices", indices, "nodes", nodes));
}

void qs__h_nodes_stats(qs_req *r) {
  if (!qs__local_only(r)) return;
  qs_server *s = r->srv;
  totals t;
  sum_indexes(s, &t);
  char addr[300];
  snprintf(addr, sizeof addr, "%s:%u", s->host, (unsigned)s->port);
  json_t *indices = json_pack(
      "{s:{s:I, s:I}, s:{s:I}, s:{s:I}, s:{s:I, s:I, s:I}, s:{s:I}, s:{s:I}}", "docs", "count",
      (json_int_t)t.docs, "deleted", (json_int_t)t.deleted, "store", "size_in_bytes",
      (json_int_t)t.bytes, "indexing", "index_total", (json_int_t)ld(&s->m.docs_indexed),
      "search", "query_total", (json_int_t)ld(&s->m.search_count), "query_time_in_millis",
      (json_int_t)(ld(&s->m.search_sum_ns) / 1000000u), "query_failed",
      (json_int_t)ld(&s->m.search_errors), "refresh", "total", (json_int_t)ld(&s->m.refreshes),
      "segments", "count", (json_int_t)t.segments);
  json_t *node = json_pack("{s:s, s:s, s:s, s:[s,s,s], s:I, s:o, s:{s:I, s:I}}", "name",
                           s->node_name, "transport_address", addr, "host", s->host, "roles",
                           "master", "data", "ingest", "timestamp", (json_int_t)qb_wall_ms(),
                           "indices", indices, "http", "current_open",
                           (json_int_t)ld(&s->conns.open), "total_opened",
                           (json_int_t)ld(&s->conns.accepted));
  qs__reply_json(r, 200, json_pack("{s:{s:i, s:i, s:i}, s:s, s:{s:o}}", "_nodes", "total", 1,
                                   "successful", 1, "failed", 0, "cluster_name", "quidditch",
                                   "nodes", s->node_name, node));
}
