/* orphans.c: a returning data node deletes its shard copies that the shard map no longer
** assigns to it (docs/cluster.md, "Failover and recovery"): a copy re-allocated to another
** node after index.unassigned.node_left.delayed_timeout, or of an index deleted while the node
** was away. Run once at join, before the node registers (so no copy can be assigned to it
** meanwhile), and each candidate is checked against etcd's current map of its index: a copy
** is deleted only when etcd answered and its index is gone or lists no copy of that shard on
** this node. */
#include <stdio.h>
#include <string.h>

#include "repl.h"

/* 1: LOCAL (a shard "index~N") is not assigned to this node in etcd; 0 assigned or unknown. */
static int orphaned(qc_node *n, const char *local, char why[400]) {
  char index[256], key[400];
  uint32_t shard;
  if (!qc__split_local(local, index, &shard)) return 0;
  snprintf(key, sizeof key, "%sindexes/%s", QC_PREFIX, index);
  qc_kvs k;
  qb_err err;
  if (qc_etcd_get(n->etcd, key, &k, &err)) {
    qb_log(QB_WARN, "shard copy [%s] kept: etcd did not say whether it is still assigned here "
           "(%s)", local, err.msg);
    return 0;
  }
  int gone = 0;
  if (!k.n) {
    gone = 1;
    snprintf(why, 400, "index [%s] no longer exists", index);
  } else {
    json_t *meta = json_loadb(k.kv[0].value, k.kv[0].value_len, 0, NULL);
    json_t *sh = meta ? qc__sm_shard(meta, shard) : NULL;
    if (meta && !sh) {
      gone = 1;
      snprintf(why, 400, "index [%s] has no shard %u", index, shard);
    }
    size_t i;
    json_t *c;
    int mine = 0;
    json_array_foreach(json_object_get(sh, "copies"), i, c)
      mine |= !strcmp(json_string_value(json_object_get(c, "node")) ?: "", n->name);
    if (sh && !mine) {
      gone = 1;
      snprintf(why, 400, "the shard map of [%s] assigns shard %u to other nodes", index, shard);
    }
    json_decref(meta);
  }
  qc_kvs_fini(&k);
  return gone;
}

void qc__orphans_sweep(qc_node *n) {
  size_t cnt = qi_catalog_count(n->cat);
  char(*names)[256] = cnt ? qb_calloc(cnt, 256) : NULL;
  size_t k = 0;
  for (size_t i = 0; names && i < cnt; i++)
    if (!qi_catalog_name(n->cat, i, names[k], NULL) && strchr(names[k], '~')) k++;
  for (size_t i = 0; i < k; i++) {
    char why[400] = "";
    if (!orphaned(n, names[i], why)) continue;
    qb_err err;
    if (qi_catalog_delete(n->cat, names[i], &err) && err.code != QB_NOTFOUND) {
      qb_log(QB_WARN, "orphaned shard copy [%s] (%s) could not be deleted: %s", names[i], why,
             err.msg);
      continue;
    }
    qc__repl_forget(n, names[i]);
    qb_log(QB_INFO, "deleted orphaned shard copy [%s]: %s", names[i], why);
  }
  if (names) qb_free(names, cnt * 256);
}
