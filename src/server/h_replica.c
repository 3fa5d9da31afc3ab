/* h_replica.c: replication on a data node and its view on a coordinator (docs/cluster.md,
** "Replication"). A write on a shard's local name ("index~N", sent by a coordinator to the
** shard's primary) runs its ordinary handler inside src/cluster's replicated write
** (qc_write_begin/finish: primary check, one write at a time per shard, the resulting
** documents sent to every in-sync copy before the answer); /_internal/replica applies a
** primary's operations on a copy; /_internal/recover copies a shard to a recovering copy (or,
** with {"resync": true}, has a new primary resync its in-sync copies); a write that fails on
** the primary's own store (a full disk) makes it step down;
** _cluster/health and _cat/shards show every copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int is_write_route(int route) {
  switch (route) {
  case QS_R_DOC_POST: case QS_R_DOC_PUT: case QS_R_DOC_POST_ID: case QS_R_DOC_DELETE:
  case QS_R_DOC_CREATE: case QS_R_DOC_CREATE_POST: case QS_R_DOC_UPDATE: case QS_R_INDEX_BULK:
  case QS_R_INDEX_BULK_PUT:
    return 1;
  default:
    return 0;
  }
}

/* _shards and _primary_term of one write result J (a document's answer or a bulk item's). */
static void set_shards(json_t *j, uint32_t total, uint32_t ok, uint64_t term) {
  if (!json_is_object(j) || !json_object_get(j, "_shards")) return;
  json_object_set_new(j, "_shards", json_pack("{s:I, s:I, s:i}", "total", (json_int_t)total,
                                              "successful", (json_int_t)ok, "failed", 0));
  json_object_set_new(j, "_primary_term", json_integer((json_int_t)term));
}

/* A write failed on this primary's own store (a 5xx other than 503, e.g. a full disk): the
** primary steps down (qc_write_local_failed) with the error's reason. */
static void local_failure(qc_write *w, json_t *res) {
  json_t *e = json_object_get(res, "error");
  const char *why = json_string_value(json_object_get(e, "reason"));
  qc_write_local_failed(w, why ? why : "a local write failed");
}

int qs__replica_wrap(qs_req *r) {
  qc_node *n = r->srv->node;
  if (!(qc_node_role(n) & QC_DATA) || !qc_node_etcd(n) || !is_write_route(r->route) ||
      !r->ncaps || !strchr(r->caps[0], '~'))
    return 0;
  qc_write *w;
  qb_err err;
  if (qc_write_begin(n, r->caps[0], &w, &err)) {
    qs__reply_err(r, &err);
    return 1;
  }
  if (!w) return 0;
  json_t *res = NULL;
  int st = qs__subrequest(r, qs__routes[r->route].handler, r->caps, r->ncaps, r->body,
                          r->body_len, &res);
  qb_code rc = QB_OK;
  json_t *items = json_object_get(res, "items");
  if (json_is_array(items)) {
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
      json_t *inner = json_object_iter_value(json_object_iter(it));
      json_int_t ist = json_integer_value(json_object_get(inner, "status"));
      const char *id = json_string_value(json_object_get(inner, "_id"));
      if (id && ist >= 200 && ist < 300 && !rc) rc = qc_write_note(w, id, &err);
      if (ist >= 500 && ist != 503) local_failure(w, inner);
    }
  } else if (st >= 200 && st < 300 && json_is_string(json_object_get(res, "_id"))) {
    rc = qc_write_note(w, json_string_value(json_object_get(res, "_id")), &err);
  } else if (st >= 500 && st != 503) {
    local_failure(w, res);
  }
  const char *rf = qs__arg(r, "refresh");
  if (rf && strcmp(rf, "false")) qc_write_refresh(w);
  uint32_t total = 1, ok = 1;
  uint64_t term = 1;
  if (!rc) rc = qc_write_finish(w, &total, &ok, &term, &err);
  qc_write_end(w);
  if (rc) {
    json_decref(res);
    qs__reply_err(r, &err);
    return 1;
  }
  if (json_is_array(items)) {
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
      set_shards(json_object_iter_value(json_object_iter(it)), total, ok, term);
  } else {
    set_shards(res, total, ok, term);
  }
  qs__reply_json(r, st, res ? res : json_object());
  return 1;
}

void qs__replica_blocked(qs_req *r, const char *reason) {
  qc_node *n = r->srv->node;
  if (!(qc_node_role(n) & QC_DATA) || !qc_node_etcd(n) || !is_write_route(r->route) ||
      !r->ncaps || !strchr(r->caps[0], '~'))
    return;
  qc_write *w;
  qb_err err;
  if (qc_write_begin(n, r->caps[0], &w, &err) || !w) return; /* not (or no longer) its primary */
  qc_write_local_failed(w, reason);
  uint32_t total, ok;
  uint64_t term;
  qc_write_finish(w, &total, &ok, &term, &err); /* nothing written: only the step-down */
  qc_write_end(w);
}

static int shard_of(qs_req *r, uint32_t *shard) {
  if (!(qc_node_role(r->srv->node) & QC_DATA) || !qc_node_etcd(r->srv->node)) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "[%s %s] is a data node's internal route and this node is not one", r->method,
                    r->path);
    return 0;
  }
  char *end;
  unsigned long id = strtoul(r->caps[1], &end, 10);
  if (*end || id > 1023 || strchr(r->caps[0], '~')) {
    qs__reply_error(r, 400, "illegal_argument_exception", "bad shard [%s][%s]", r->caps[0],
                    r->caps[1]);
    return 0;
  }
  *shard = (uint32_t)id;
  return 1;
}

void qs__h_i_replica(qs_req *r) {
  uint32_t shard;
  if (!shard_of(r, &shard)) return;
  json_t *out;
  qb_err err;
  qc_node *n = r->srv->node;
  qb_code rc = qc_replica_apply(n, r->caps[0], shard, r->body, r->body_len, &out, &err);
  if (rc == QB_CONFLICT)
    return qs__reply_error(r, 409, "illegal_state_exception", "%s", err.msg);
  if (rc) return qs__reply_err(r, &err);
  char local[256];
  qc_shard_local_name(r->caps[0], shard, local);
  qi_index *ix;
  if (json_is_true(json_object_get(out, "refresh")) &&
      !qi_catalog_get(qc_node_catalog(n), local, &ix, NULL)) {
    qi_index_refresh(ix, NULL);
    qi_index_release(ix);
  } else {
    qs__mark_dirty(r->srv, local);
  }
  qs__reply_json(r, 200, out);
}

void qs__h_i_recover(qs_req *r) {
  uint32_t shard;
  if (!shard_of(r, &shard)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  const char *target = json_string_value(json_object_get(body, "target"));
  int resync = json_is_true(json_object_get(body, "resync")); /* the new primary's resync */
  if (resync ? target != NULL : !target || !strcmp(target, qc_node_name(r->srv->node))) {
    json_decref(body);
    return qs__reply_error(r, 400, "illegal_argument_exception",
                           "recovery needs {\"target\": NODE}, another node than this one, or "
                           "{\"resync\": true}");
  }
  json_t *out;
  qb_err err;
  qb_code rc = qc_recover_copy(r->srv->node, r->caps[0], shard, target, &out, &err);
  json_decref(body);
  if (rc) return qs__reply_err(r, &err);
  qs__reply_json(r, 200, out);
}

/* ---- a coordinator's view of the copies ------------------------------------------------- */

static int live(const qc_member *m, size_t nm, const char *node, const char **url) {
  for (size_t i = 0; node && *node && i < nm; i++)
    if (m[i].data && !strcmp(m[i].name, node)) {
      if (url) *url = m[i].url;
      return 1;
    }
  return 0;
}

static int in_sync(json_t *sh, const char *node) {
  json_t *is = json_object_get(sh, "in_sync");
  if (!json_is_array(is)) return 1; /* metadata from before replicas: the one copy */
  size_t i;
  json_t *v;
  json_array_foreach(is, i, v) if (!strcmp(json_string_value(v) ?: "", node)) return 1;
  return 0;
}

/* "STARTED", "INITIALIZING" or "UNASSIGNED" for copy C of SH. */
static const char *copy_state(json_t *sh, json_t *c, const qc_member *m, size_t nm,
                              const char **url) {
  const char *node = json_string_value(json_object_get(c, "node"));
  if (!live(m, nm, node, url)) return "UNASSIGNED";
  return in_sync(sh, node) ? "STARTED" : "INITIALIZING";
}

int qs__replica_health(qs_req *r) {
  qc_node *n = r->srv->node;
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256);
  if (nm > 256) nm = 256;
  size_t data = 0, active = 0, apri = 0, init = 0, unas = 0, delayed = 0;
  int red = 0, yellow = 0;
  for (size_t i = 0; i < nm; i++) data += m[i].data;
  json_t *all = qc_node_indexes(n);
  const char *k;
  json_t *meta;
  int64_t now = qb_wall_ms();
  json_object_foreach(all, k, meta) {
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(meta, "shards"), i, sh) {
      size_t j;
      json_t *c;
      json_array_foreach(json_object_get(sh, "copies"), j, c) {
        const char *st = copy_state(sh, c, m, nm, NULL);
        if (!strcmp(st, "STARTED")) {
          active++;
          apri += j == 0;
          continue;
        }
        if (j == 0) red = 1;
        else yellow = 1;
        if (!strcmp(st, "INITIALIZING")) init++;
        else unas++;
        (void)now;
        if (j && json_object_get(c, "left_ms")) delayed++;
      }
    }
  }
  json_decref(all);
  size_t total = active + init + unas;
  double pct = total ? 100.0 * (double)active / (double)total : 100.0;
  qs__reply_json(r, 200,
                 json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:i, s:f}",
                           "cluster_name", "quidditch", "status",
                           red ? "red" : yellow ? "yellow" : "green", "timed_out", 0,
                           "number_of_nodes", (json_int_t)nm, "number_of_data_nodes",
                           (json_int_t)data, "active_primary_shards", (json_int_t)apri,
                           "active_shards", (json_int_t)active, "relocating_shards", 0,
                           "initializing_shards", (json_int_t)init, "unassigned_shards",
                           (json_int_t)unas, "delayed_unassigned_shards", (json_int_t)delayed,
                           "number_of_pending_tasks", 0, "active_shards_percent_as_number",
                           pct));
  return 1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int qs__replica_cat_shards(qs_req *r) {
  qc_node *n = r->srv->node;
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256);
  if (nm > 256) nm = 256;
  json_t *all = qc_node_indexes(n), *docs = qc_copy_docs(n), *rows = json_array();
  size_t cnt = json_object_size(all), k = 0;
  const char **names = qb_calloc(cnt ? cnt : 1, sizeof *names);
  const char *key;
  json_t *meta;
  json_object_foreach(all, key, meta) if (names) names[k++] = key;
  if (names) qsort(names, k, sizeof *names, cmp_str);
  for (size_t x = 0; names && x < k; x++) {
    meta = json_object_get(all, names[x]);
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(meta, "shards"), i, sh) {
      json_int_t id = json_integer_value(json_object_get(sh, "shard"));
      char sid[16], local[256];
      snprintf(sid, sizeof sid, "%lld", (long long)id);
      qc_shard_local_name(names[x], (uint32_t)id, local);
      size_t j;
      json_t *c;
      json_array_foreach(json_object_get(sh, "copies"), j, c) {
        const char *url = NULL, *node = json_string_value(json_object_get(c, "node")) ?: "";
        const char *st = copy_state(sh, c, m, nm, &url);
        char dc[32] = "", host[128] = "";
        json_t *d = json_object_get(json_object_get(docs, node), local);
        if (d && url) snprintf(dc, sizeof dc, "%lld", (long long)json_integer_value(d));
        if (url) {
          const char *p = strstr(url, "://");
          snprintf(host, sizeof host, "%s", p ? p + 3 : url);
          char *colon = strrchr(host, ':');
          if (colon) *colon = 0;
        }
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                              "index", names[x], "shard", sid, "prirep",
                                              j ? "r" : "p", "state", st, "docs", dc, "store",
                                              "", "ip", host, "node", url ? node : ""));
      }
    }
  }
  qb_free(names, (cnt ? cnt : 1) * sizeof *names);
  json_decref(all);
  json_decref(docs);
  size_t nc;
  const char *const *cols = qs__cat_cols(2, &nc);
  qs__reply_cat(r, cols, nc, rows);
  return 1;
}
