/* metrics.c: counters kept by the server and the Prometheus text exposition at /metrics
** (DESIGN.md §8 names): HTTP requests per route and status, search latency, indexing, and the
** UDF layer's statistics (calls, errors, sampled latency histogram, memory, execution mode).
** Counters are relaxed atomics bumped on the request path; /metrics reads them without locks,
** so one scrape may be a few increments behind, never torn. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const int status_slots[QS_STATUS_SLOTS] = {200, 201, 400, 401, 403, 404, 405,
                                                  409, 413, 429, 500, 501, 503};
static const double search_bounds[QS_SEARCH_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                       0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

void qs__metrics_http(qs_server *s, int route, int status) {
  if (route < 0 || route >= QS_ROUTE_COUNT) {
    __atomic_fetch_add(&s->m.unrouted, 1, __ATOMIC_RELAXED);
    return;
  }
  for (int i = 0; i < QS_STATUS_SLOTS; i++) {
    if (status_slots[i] == status) {
      __atomic_fetch_add(&s->m.http[route][i], 1, __ATOMIC_RELAXED);
      return;
    }
  }
  __atomic_fetch_add(&s->m.http_other[route], 1, __ATOMIC_RELAXED);
}

void qs__metrics_search(qs_server *s, uint64_t ns, int ok) {
  double sec = (double)ns / 1e9;
  int b = 0;
  while (b < QS_SEARCH_BUCKETS && sec > search_bounds[b]) b++;
  __atomic_fetch_add(&s->m.search_hist[b], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->m.search_count, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->m.search_sum_ns, ns, __ATOMIC_RELAXED);
  if (!ok) __atomic_fetch_add(&s->m.search_errors, 1, __ATOMIC_RELAXED);
}

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static void head(qb_buf *b, const char *name, const char *type, const char *help) {
  qb_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct udf_emit {
  qb_buf *b;
  const char *node;
  int part; /* which family this pass writes */
} udf_emit;

static void udf_cb(void *ud, const qu_stats *st) {
  udf_emit *e = ud;
  qb_buf *b = e->b;
  for (int t = 0; t < QU_TIER_COUNT; t++) {
    const char *mode = qu_tier_name((qu_tier)t);
    switch (e->part) {
    case 0:
      qb_buf_printf(b, "quidditch_udf_calls_total{udf=\"%s\",mode=\"%s\",node=\"%s\"} %llu\n",
                    st->name, mode, e->node, (unsigned long long)st->calls[t]);
      break;
    case 1:
      qb_buf_printf(b, "quidditch_udf_errors_total{udf=\"%s\",mode=\"%s\",node=\"%s\"} %llu\n",
                    st->name, mode, e->node, (unsigned long long)st->errors[t]);
      break;
    case 2: {
      uint64_t cum = 0;
      for (int i = 0; i < QU_HIST_BUCKETS; i++) {
        cum += st->hist[t][i];
        qb_buf_printf(b,
                      "quidditch_udf_execution_duration_seconds_bucket{udf=\"%s\",mode=\"%s\","
                      "node=\"%s\",le=\"%g\"} %llu\n",
                      st->name, mode, e->node, qu_hist_bounds[i], (unsigned long long)cum);
      }
      cum += st->hist[t][QU_HIST_BUCKETS];
      qb_buf_printf(b,
                    "quidditch_udf_execution_duration_seconds_bucket{udf=\"%s\",mode=\"%s\","
                    "node=\"%s\",le=\"+Inf\"} %llu\n",
                    st->name, mode, e->node, (unsigned long long)cum);
      qb_buf_printf(b,
                    "quidditch_udf_execution_duration_seconds_sum{udf=\"%s\",mode=\"%s\","
                    "node=\"%s\"} %.9g\n",
                    st->name, mode, e->node, st->hist_sum_seconds[t]);
      qb_buf_printf(b,
                    "quidditch_udf_execution_duration_seconds_count{udf=\"%s\",mode=\"%s\","
                    "node=\"%s\"} %llu\n",
                    st->name, mode, e->node, (unsigned long long)st->hist_count[t]);
      break;
    }
    default:
      break;
    }
  }
  switch (e->part) {
  case 3:
    qb_buf_printf(b, "quidditch_udf_memory_bytes{udf=\"%s\",type=\"module\"} %llu\n", st->name,
                  (unsigned long long)st->module_bytes);
    qb_buf_printf(b, "quidditch_udf_memory_bytes{udf=\"%s\",type=\"instances\"} %llu\n",
                  st->name, (unsigned long long)st->instance_bytes);
    break;
  case 4:
    qb_buf_printf(b, "quidditch_udf_instances{udf=\"%s\",node=\"%s\"} %llu\n", st->name, e->node,
                  (unsigned long long)st->instances);
    break;
  case 5: /* the tier running now: 0 = interpreter, 1 = native */
    qb_buf_printf(b, "quidditch_udf_execution_mode{udf=\"%s\",node=\"%s\"} %d\n", st->name,
                  e->node, (int)st->mode);
    break;
  case 6:
    qb_buf_printf(b, "quidditch_udf_current_version{udf=\"%s\",node=\"%s\"} %u\n", st->name,
                  e->node, st->version);
    break;
  case 7: /* 1 = native code ready; this node compiles nothing yet (no JIT tier) */
    qb_buf_printf(b, "quidditch_udf_compilation_status{udf=\"%s\",node=\"%s\"} %d\n", st->name,
                  e->node, st->mode == QU_TIER_NATIVE);
    break;
  case 8:
    qb_buf_printf(b, "quidditch_udf_compile_memory_bytes{udf=\"%s\",node=\"%s\"} %llu\n",
                  st->name, e->node, (unsigned long long)st->compile_memory_bytes);
    break;
  default:
    break;
  }
}

void qs__h_metrics(qs_req *r) {
  qs_server *s = r->srv;
  const char *node = s->node_name;
  qb_buf b;
  qb_buf_init(&b);

  head(&b, "quidditch_http_requests_total", "counter", "HTTP requests by route and status.");
  for (int i = 0; i < QS_ROUTE_COUNT; i++) {
    for (int k = 0; k < QS_STATUS_SLOTS; k++) {
      uint64_t v = ld(&s->m.http[i][k]);
      if (v)
        qb_buf_printf(&b, "quidditch_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\","
                          "node=\"%s\"} %llu\n",
                      qs__routes[i].method, qs__routes[i].pattern, status_slots[k], node,
                      (unsigned long long)v);
    }
    uint64_t v = ld(&s->m.http_other[i]);
    if (v)
      qb_buf_printf(&b, "quidditch_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\","
                        "node=\"%s\"} %llu\n",
                    qs__routes[i].method, qs__routes[i].pattern, node, (unsigned long long)v);
  }
  qb_buf_printf(&b, "quidditch_http_requests_total{method=\"\",route=\"unmatched\",status=\"400\","
                    "node=\"%s\"} %llu\n",
                node, (unsigned long long)ld(&s->m.unrouted));

  pthread_mutex_lock(&s->conns.mu);
  uint64_t open_conns = s->conns.open;
  pthread_mutex_unlock(&s->conns.mu);
  head(&b, "quidditch_http_connections_open", "gauge", "Open HTTP connections.");
  qb_buf_printf(&b, "quidditch_http_connections_open{node=\"%s\"} %llu\n", node,
                (unsigned long long)open_conns);
  head(&b, "quidditch_http_connections_max", "gauge",
       "The connection cap (a connection past it is closed at once).");
  qb_buf_printf(&b, "quidditch_http_connections_max{node=\"%s\"} %u\n", node, s->conns.max_conns);
  head(&b, "quidditch_http_connections_accepted_total", "counter", "HTTP connections accepted.");
  qb_buf_printf(&b, "quidditch_http_connections_accepted_total{node=\"%s\"} %llu\n", node,
                (unsigned long long)ld(&s->conns.accepted));
  head(&b, "quidditch_http_connections_reaped_total", "counter",
       "Connections closed by the server for missing a deadline, by phase.");
  static const char *const phases[3] = {"headers", "body", "idle"};
  for (int i = 0; i < 3; i++)
    qb_buf_printf(&b, "quidditch_http_connections_reaped_total{phase=\"%s\",node=\"%s\"} %llu\n",
                  phases[i], node, (unsigned long long)ld(&s->conns.reaped[i]));

  qs__pool *pools[2] = {s->search_pool, s->write_pool};
  qs__pool_stat ps[2];
  for (int i = 0; i < 2; i++) qs__pool_stats(pools[i], &ps[i]);
  head(&b, "quidditch_thread_pool_threads", "gauge", "Workers of each request pool.");
  for (int i = 0; i < 2; i++)
    qb_buf_printf(&b, "quidditch_thread_pool_threads{pool=\"%s\",node=\"%s\"} %zu\n", ps[i].name,
                  node, ps[i].threads);
  head(&b, "quidditch_thread_pool_queue", "gauge", "Requests waiting for a worker.");
  for (int i = 0; i < 2; i++)
    qb_buf_printf(&b, "quidditch_thread_pool_queue{pool=\"%s\",node=\"%s\"} %zu\n", ps[i].name,
                  node, ps[i].queued);
  head(&b, "quidditch_thread_pool_completed_total", "counter", "Requests a pool ran.");
  for (int i = 0; i < 2; i++)
    qb_buf_printf(&b, "quidditch_thread_pool_completed_total{pool=\"%s\",node=\"%s\"} %llu\n",
                  ps[i].name, node, (unsigned long long)ps[i].completed);
  head(&b, "quidditch_thread_pool_rejected_total", "counter",
       "Requests refused with 429 because a pool's queue was full.");
  for (int i = 0; i < 2; i++)
    qb_buf_printf(&b, "quidditch_thread_pool_rejected_total{pool=\"%s\",node=\"%s\"} %llu\n",
                  ps[i].name, node, (unsigned long long)ps[i].rejected);
  head(&b, "quidditch_disk_used_ratio", "gauge", "Used share of the data directory's filesystem.");
  qb_buf_printf(&b, "quidditch_disk_used_ratio{node=\"%s\"} %.3f\n", node,
                (double)ld(&s->disk.used_pm) / 1000.0);
  head(&b, "quidditch_disk_watermark_exceeded", "gauge",
       "1 while the flood-stage watermark blocks writes.");
  qb_buf_printf(&b, "quidditch_disk_watermark_exceeded{node=\"%s\"} %d\n", node,
                __atomic_load_n(&s->disk.blocked, __ATOMIC_RELAXED));

  head(&b, "quidditch_search_duration_seconds", "histogram", "Search request latency.");
  uint64_t cum = 0;
  for (int i = 0; i < QS_SEARCH_BUCKETS; i++) {
    cum += ld(&s->m.search_hist[i]);
    qb_buf_printf(&b, "quidditch_search_duration_seconds_bucket{node=\"%s\",le=\"%g\"} %llu\n",
                  node, search_bounds[i], (unsigned long long)cum);
  }
  cum += ld(&s->m.search_hist[QS_SEARCH_BUCKETS]);
  qb_buf_printf(&b, "quidditch_search_duration_seconds_bucket{node=\"%s\",le=\"+Inf\"} %llu\n",
                node, (unsigned long long)cum);
  qb_buf_printf(&b, "quidditch_search_duration_seconds_sum{node=\"%s\"} %.9g\n", node,
                (double)ld(&s->m.search_sum_ns) / 1e9);
  qb_buf_printf(&b, "quidditch_search_duration_seconds_count{node=\"%s\"} %llu\n", node,
                (unsigned long long)ld(&s->m.search_count));
  head(&b, "quidditch_search_errors_total", "counter", "Searches that failed.");
  qb_buf_printf(&b, "quidditch_search_errors_total{node=\"%s\"} %llu\n", node,
                (unsigned long long)ld(&s->m.search_errors));
  head(&b, "quidditch_indexing_operations_total", "counter", "Document write operations.");
  qb_buf_printf(&b, "quidditch_indexing_operations_total{node=\"%s\"} %llu\n", node,
                (unsigned long long)ld(&s->m.docs_indexed));
  head(&b, "quidditch_refresh_total", "counter", "Index refreshes (new searchable snapshots).");
  qb_buf_printf(&b, "quidditch_refresh_total{node=\"%s\"} %llu\n", node,
                (unsigned long long)ld(&s->m.refreshes));

  head(&b, "quidditch_index_docs", "gauge", "Live documents per index.");
  for (size_t i = 0, n = qi_catalog_count(qc_node_catalog(s->node)); i < n; i++) {
    char name[256];
    qi_index *ix;
    if (qi_catalog_name(qc_node_catalog(s->node), i, name, NULL) || qi_catalog_get(qc_node_catalog(s->node), name, &ix, NULL))
      continue;
    qb_buf_printf(&b, "quidditch_index_docs{index=\"%s\",node=\"%s\"} %llu\n", name, node,
                  (unsigned long long)qi_index_doc_count(ix));
    qi_index_release(ix);
  }

  static const struct {
    const char *name, *type, *help;
  } fams[] = {
      {"quidditch_udf_calls_total", "counter", "Documents evaluated by a UDF, per execution mode."},
      {"quidditch_udf_errors_total", "counter", "UDF blocks that trapped or ran out of budget."},
      {"quidditch_udf_execution_duration_seconds", "histogram",
       "Sampled time of one UDF call per document."},
      {"quidditch_udf_memory_bytes", "gauge", "UDF memory: module bytes and live instances."},
      {"quidditch_udf_instances", "gauge", "Live UDF instances (pooled and in use)."},
      {"quidditch_udf_execution_mode", "gauge", "Execution tier: 0 interpreter, 1 native."},
      {"quidditch_udf_current_version", "gauge", "Version searches use."},
      {"quidditch_udf_compilation_status", "gauge", "1 when native code serves the UDF."},
      {"quidditch_udf_compile_memory_bytes", "gauge",
       "Peak memory of the last native compile (process RSS high-water growth)."},
  };
  for (int p = 0; p < (int)(sizeof fams / sizeof *fams); p++) {
    head(&b, fams[p].name, fams[p].type, fams[p].help);
    udf_emit e = {&b, node, p};
    qu_registry_stats(qc_node_registry(s->node), udf_cb, &e);
  }
  /* DESIGN §8's native-code cache (zeros without a native tier, so dashboards and alert rules
  ** see zeros, not missing data). */
  qu_cache_stats cs;
  qu_compiler_cache_stats(qc_node_compiler(s->node), &cs);
  const uint64_t cval[] = {cs.hits, cs.misses, cs.evictions, cs.size_bytes, cs.entries};
  static const struct {
    const char *name, *type, *help;
  } cache[] = {
      {"quidditch_udf_cache_hits_total", "counter", "Native-code cache hits."},
      {"quidditch_udf_cache_misses_total", "counter", "Native-code cache misses."},
      {"quidditch_udf_cache_evictions_total", "counter", "Native-code cache evictions."},
      {"quidditch_udf_cache_size_bytes", "gauge", "Native-code cache size."},
      {"quidditch_udf_cache_entries", "gauge", "Native-code cache entries."},
  };
  for (size_t i = 0; i < sizeof cache / sizeof *cache; i++) {
    head(&b, cache[i].name, cache[i].type, cache[i].help);
    qb_buf_printf(&b, "%s{node=\"%s\"} %llu\n", cache[i].name, node,
                  (unsigned long long)cval[i]);
  }
  head(&b, "quidditch_memory_allocated_bytes", "gauge", "Bytes allocated through the qb_alloc hook.");
  qb_buf_printf(&b, "quidditch_memory_allocated_bytes{node=\"%s\"} %zu\n", node,
                qb_alloc_live_bytes());
  if (b.failed) qs__reply_code(r, QB_NOMEM, "out of memory");
  else qs__reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
                      b.len);
  qb_buf_fini(&b);
}
