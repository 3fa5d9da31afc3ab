/* shardmap.c: the shard map inside an index's metadata (docs/cluster.md, "Replication"): per
** shard {"shard", "primary_term", "copies": [{"node", "primary", "state", "left_ms"}],
** "in_sync": [node, ...]}, and changes to it as compare-and-swap transactions on the index's
** key in etcd (the leader's failovers and allocations, a primary dropping a copy that failed
** a write or adding one that recovered).
** Invariant: copies[0] is the primary; a node holds at most one copy of a shard; in_sync names
** only nodes that hold a copy. A copy's node is "" while it is unassigned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

json_t *qc__sm_shard(json_t *meta, uint32_t shard) {
  size_t i;
  json_t *sh;
  json_array_foreach(json_object_get(meta, "shards"), i, sh)
    if (json_integer_value(json_object_get(sh, "shard")) == (json_int_t)shard) return sh;
  return NULL;
}

const char *qc__sm_primary(json_t *sh) {
  return json_string_value(json_object_get(json_array_get(json_object_get(sh, "copies"), 0),
                                           "node"));
}

uint64_t qc__sm_term(json_t *sh) {
  json_int_t t = json_integer_value(json_object_get(sh, "primary_term"));
  return t > 0 ? (uint64_t)t : 1;
}

/* in_sync as given, or (metadata written before replicas) every assigned copy. */
int qc__sm_in_sync(json_t *sh, const char *node) {
  if (!node || !*node) return 0;
  json_t *is = json_object_get(sh, "in_sync");
  size_t i;
  json_t *v;
  if (!json_is_array(is)) {
    json_array_foreach(json_object_get(sh, "copies"), i, v)
      if (!strcmp(json_string_value(json_object_get(v, "node")) ?: "", node)) return 1;
    return 0;
  }
  json_array_foreach(is, i, v) if (!strcmp(json_string_value(v) ?: "", node)) return 1;
  return 0;
}

/* Make in_sync explicit (older metadata had none). */
static json_t *in_sync_array(json_t *sh) {
  json_t *is = json_object_get(sh, "in_sync");
  if (json_is_array(is)) return is;
  is = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(sh, "copies"), i, c) {
    const char *nn = json_string_value(json_object_get(c, "node"));
    if (nn && *nn) json_array_append_new(is, json_string(nn));
  }
  json_object_set_new(sh, "in_sync", is);
  return is;
}

int qc__sm_in_sync_del(json_t *sh, const char *node) {
  json_t *is = in_sync_array(sh);
  for (size_t i = 0; i < json_array_size(is); i++)
    if (!strcmp(json_string_value(json_array_get(is, i)) ?: "", node)) {
      json_array_remove(is, i);
      return 1;
    }
  return 0;
}

int qc__sm_in_sync_add(json_t *sh, const char *node) {
  if (qc__sm_in_sync(sh, node)) return 0;
  json_array_append_new(in_sync_array(sh), json_string(node));
  return 1;
}

/* Refresh each copy's "primary" flag and "state" from its position and in_sync. */
void qc__sm_normalize(json_t *sh) {
  size_t i;
  json_t *c;
  in_sync_array(sh);
  json_array_foreach(json_object_get(sh, "copies"), i, c) {
    const char *nn = json_string_value(json_object_get(c, "node")) ?: "";
    json_object_set_new(c, "primary", json_boolean(i == 0));
    json_object_set_new(c, "state", json_string(!*nn ? "UNASSIGNED"
                                                : qc__sm_in_sync(sh, nn) ? "STARTED"
                                                                         : "INITIALIZING"));
  }
}

qb_code qc__sm_update(qc_node *n, const char *index, qc_sm_fn fn, void *ud, qb_err *err) {
  char key[512];
  snprintf(key, sizeof key, "%sindexes/%s", QC_PREFIX, index);
  for (int attempt = 0; attempt < 20; attempt++) {
    qc_kvs k;
    qb_code rc = qc_etcd_get(n->etcd, key, &k, err);
    if (rc) return rc;
    if (!k.n) {
      qc_kvs_fini(&k);
      return qb_fail(err, QB_NOTFOUND, "no such index [%s]", index);
    }
    int64_t rev = k.kv[0].mod_revision;
    json_t *meta = json_loadb(k.kv[0].value, k.kv[0].value_len, 0, NULL);
    qc_kvs_fini(&k);
    if (!json_is_object(meta)) {
      json_decref(meta);
      return qb_fail(err, QB_CORRUPT, "index [%s]: metadata in etcd is not an object", index);
    }
    int ch = fn(meta, ud, err);
    if (ch <= 0) {
      json_decref(meta);
      return ch < 0 ? (err && err->code ? err->code : QB_CONFLICT) : QB_OK;
    }
    char *text = json_dumps(meta, JSON_COMPACT);
    if (!text) {
      json_decref(meta);
      return qb_fail(err, QB_NOMEM, "out of memory");
    }
    qc_txn_cmp cmp = {key, rev};
    qc_txn_op put = {.key = key, .value = text, .len = strlen(text)};
    rc = qc_etcd_txn(n->etcd, &cmp, 1, &put, 1, NULL, err);
    qc__json_free(text);
    if (rc == QB_OK) qc__index_cache_put(n, index, meta);
    json_decref(meta);
    if (rc != QB_CONFLICT) return rc;
  }
  return qb_fail(err, QB_CONFLICT, "index [%s]: the shard map kept changing under us", index);
}
