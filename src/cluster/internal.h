/* internal.h: what the files of src/cluster share. node.c owns the node handle, meta.c the
** cluster view (membership, leader, index metadata cached from etcd watches), shards.c the
** shard sources and the scatter of one request, udf_script.c the UDF adapter and pins,
** etcd.c the etcd v3 client, fanout.c parallel HTTP, route.c document routing, registry.c
** the UDF registry interface over SQLite or etcd, udfs.c the etcd half of the UDF registry,
** dfs.c the term statistics of dfs_query_then_fetch.
**
** etcd layout (docs/cluster.md), every key under QC_PREFIX:
**   schema                 {"version": 1}
**   nodes/<name>           {"name", "url", "roles": [...], "started_ms"}  (the node's lease)
**   leader                 {"name", "url"}                               (the leader's lease)
**   indexes/<name>         index metadata with its shard map (qc_node_index_meta)
**   udf/<name>/current     "N"
**   udf/<name>/v/<N>       {"version", "manifest", "sha256", "size", "chunks", "created_ms"}
**   blobs/<sha256>/<i>     the module bytes, QC_CHUNK_BYTES per key (content-addressed, so
**                          two deploys racing for one version cannot mix their bytes) */
#ifndef QC_INTERNAL_H
#define QC_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "cluster.h"

#define QC_PREFIX "/quidditch/v1/"
#define QC_SCHEMA_VERSION 1
#define QC_CHUNK_BYTES (512u << 10) /* etcd's default request limit is 1.5 MiB; base64 4/3 */

struct qc_node {
  char name[64];
  char data_dir[1024];
  qi_catalog *cat;
  qw_engine *engine;
  qu_registry *reg;
  qu_compiler *compiler; /* owned; NULL: interpreter only */
  size_t script_value_max, script_response_max; /* qq_env's, for shard searches (0: default) */
  qu_options udf_opts;       /* the budgets, for versions loaded outside the registry (_test) */

  qc_role role;
  uint32_t ttl_s;
  qc_etcd *etcd;             /* NULL in the embedded default */
  char url[128];             /* where this node listens, once joined */
  qc_lease *lease;
  qc_watch *w_nodes, *w_indexes, *w_leader;
  int joined;
  qc_registry udfs;          /* the source of truth for UDF versions (registry.c) */
  int64_t started_ms;

  pthread_mutex_t mu;        /* guards what follows */
  json_t *members;           /* name -> registration object */
  json_t *indexes;           /* name -> metadata */
  char leader[64];           /* "" when none known */
  char leader_url[128];
  int is_leader;

  pthread_mutex_t repl_mu;   /* guards the list of replication states (replicate.c) */
  struct qc__rshard *rshards;
  struct qc__allocator *alloc; /* the leader's failover/allocation thread (failover.c) */
};

/* Free a buffer jansson allocated for us (json_dumps) with the function jansson allocates with:
** qb_sized_free once a program installed it (json_set_alloc_funcs, base.h), free() before. */
static inline void qc__json_free(void *p) {
  json_free_t f;
  json_get_alloc_funcs(NULL, &f);
  f(p);
}

/* fanout.c: qc_fanout in two halves: start the N calls (sent as far as they go without
** waiting), let the caller work, then wait for every answer (and free *F). Same contract as
** qc_fanout; a fan-out nested between the two runs on a multi handle of its own. */
typedef struct qc__fan qc__fan;
qb_code qc__fanout_start(qc_call *calls, size_t n, uint32_t timeout_ms, qc__fan **f,
                         qb_err *err);
void qc__fanout_wait(qc__fan *f);
/* registry.c: point N->udfs at SQLite (embedded) or etcd (cluster). */
void qc__registry_init(qc_node *n);
/* meta.c */
qb_code qc__meta_open(qc_node *n, const qc_node_options *opt, qb_err *err);
void qc__meta_close(qc_node *n);
/* The URL of live node NAME into URL (128 bytes); 0 when it is not live. */
int qc__member_url(qc_node *n, const char *name, char url[128]);
/* Put META (borrowed; NULL: remove) as NAME's cached metadata, right after this node wrote it. */
void qc__index_cache_put(qc_node *n, const char *name, json_t *meta);
/* Views of the cached metadata (meta.c's invariant): NAME's metadata object itself (a
** reference: json_decref it, never change it; fetched from etcd when not cached yet, NULL when
** absent), and every index's, as a new object of such shared values. */
json_t *qc__index_meta_view(qc_node *n, const char *name);
json_t *qc__indexes_view(qc_node *n);
/* udfs.c: install every current UDF from etcd into the local registry. */
qb_code qc__udf_sync_all(qc_node *n, qb_err *err);
/* udfs.c: install NAME vVERSION from etcd (QB_NOTFOUND: not in etcd). */
qb_code qc__udf_fetch(void *node, const char *name, uint32_t version, qb_err *err);
/* udfs.c: NAME's current version in etcd (QB_NOTFOUND without a message when none). */
qb_code qc__udf_current(void *node, const char *name, uint32_t *version, qb_err *err);

/* dfs.c: term statistics (search_type=dfs_query_then_fetch): record one shard's into INTO;
** use the global STATS (borrowed while TS is in use); add one shard's ONE into SUM. */
void qc__dfs_collector(qq_term_stats *ts, json_t *into);
void qc__dfs_apply(qq_term_stats *ts, const json_t *stats);
void qc__dfs_add(json_t *sum, const json_t *one);
/* shardmap.c: the shard map of an index's metadata (copies[0] is the primary). */
json_t *qc__sm_shard(json_t *meta, uint32_t shard);  /* borrowed; NULL when absent */
const char *qc__sm_primary(json_t *sh);              /* the primary's node, NULL/"" unassigned */
uint64_t qc__sm_term(json_t *sh);
int qc__sm_in_sync(json_t *sh, const char *node);
int qc__sm_in_sync_del(json_t *sh, const char *node); /* 1 when it was there */
int qc__sm_in_sync_add(json_t *sh, const char *node); /* 1 when it was not */
void qc__sm_normalize(json_t *sh);                    /* primary flags and states */
/* A change of one index's metadata: 1 changed (store it), 0 nothing to do, -1 refuse (ERR set). */
typedef int (*qc_sm_fn)(json_t *meta, void *ud, qb_err *err);
/* Read INDEX's metadata from etcd, let FN change it, store it if the key did not change in
** between (retried otherwise), and update the cache. */
qb_code qc__sm_update(qc_node *n, const char *index, qc_sm_fn fn, void *ud, qb_err *err);
/* oplog.c (the replication files share repl.h) */
void qc__repl_init(qc_node *n);
void qc__repl_free(qc_node *n);
/* orphans.c: delete this node's shard copies the shard map in etcd no longer assigns to it. */
void qc__orphans_sweep(qc_node *n);
/* replicas.c: add settings.number_of_replicas copies to the new index's SHARDS (created on
** their nodes now; in sync when that worked) and set SETTINGS.number_of_replicas; 200, or an
** error status with *OUT (a bad setting). */
int qc__replicas_place(qc_node *n, const char *name, const char *body, size_t len,
                       json_t *settings, json_t *shards, const qc_member *m, size_t nm,
                       json_t **out);
/* Fill C[0..MAX) with POST <copy>/<local>/_refresh for every alternate copy of SH's shards;
** returns how many (C NULL: none). */
size_t qc__refresh_copies(const qc_shards *sh, qc_call *c, size_t max);
/* shards.c: CALLS[0..) (and their bodies in TEXTS, qc__json_free each) for SH's remote
** shards, in order: POST /_internal/search with BODY, the pins and, when given, DFS (the
** statistics to use, or "collect"). RAW: the hits' `_source` may come back as raw JSON
** (wire.c; the request's qq_request_raw_source). */
qb_code qc__shard_calls(const qc_shards *sh, const char *body, size_t len, int for_count,
                        int raw, const qc_pins *pins, const json_t *dfs, qc_call *calls,
                        char **texts, qb_err *err);
/* 1 when shard X of a search pinning PINS goes over HTTP (a remote copy, or a local one while
** UDFs are pinned), 0 when it runs in-process (LOCAL) or has no copy. */
int qc__shard_remote(const qc_shard *x, const qc_pins *pins);
/* A shard call's answer as a tree: the binary form (wire.c) or text JSON; NULL with ERR
** (QB_CORRUPT naming the damage, QB_NOMEM). */
json_t *qc__call_json(const qc_call *c, qb_err *err);
/* Delete the replica copies of index META on their nodes (best effort). */
void qc__replicas_drop(qc_node *n, const char *name, json_t *meta);
/* failover.c: index.unassigned.node_left.delayed_timeout of META in ms (default 60 s). */
int64_t qc__delayed_timeout_ms(json_t *meta);
/* failover.c: the allocator thread of a coordinator (acts while it leads). */
qb_code qc__alloc_start(qc_node *n, qb_err *err);
void qc__alloc_stop(qc_node *n);

#endif
