/* cluster.h: the cluster glue (layer src/cluster, prefix qc_), between the layers that know one
** shard (index, query, udf) and the HTTP API (server). DESIGN.md §2 and §7; docs/cluster.md.
**
**   qc_node          one node's handle: its local shards (the index catalog), the engine and
**                    the UDF registry; in a cluster also its etcd client and metadata view
**   qc_pins          UDF name -> version map: what one search runs, on every shard
**   qc_udf_provider  deployed UDFs as query-layer scripts, pinned per request
**   qc_shards        the shards a search targets, each local or on a remote data node
**   qc_node_search   scatter one parsed request to its shards, one partial per shard
**
** Shard failures follow one policy, Elasticsearch's (allow_partial_search_results=true):
** whatever fails on a shard (a script trap, a bad value for its mapping, an unreachable node)
** becomes that shard's failure partial, rendered in `_shards.failures` while the other shards'
** hits are returned; only when every shard failed does the request fail, with the first
** shard's error. Errors of the request itself (bad JSON, unknown query) fail it before any
** shard runs.
**
** Threads: qc_node is "any thread". A qc_udf_provider belongs to one request (one thread). */
#ifndef QC_CLUSTER_H
#define QC_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "index.h"
#include "query.h"
#include "udf.h"

struct json_t;

/* ==== UDF version pins ========================================================================= */

#define QC_PINS_MAX 16
typedef struct qc_pin {
  char name[65];
  uint32_t version; /* >= 1 */
} qc_pin;
typedef struct qc_pins {
  size_t n;
  qc_pin pin[QC_PINS_MAX];
} qc_pins;

/* The version pinned for NAME, 0 when none. */
uint32_t qc_pins_get(const qc_pins *p, const char *name);
/* Pin NAME to VERSION (replacing an earlier pin). QB_INVAL when full or the name is too long. */
qb_code qc_pins_set(qc_pins *p, const char *name, uint32_t version, qb_err *err);
/* {"name": version, ...} (a new object; NULL when out of memory). */
struct json_t *qc_pins_to_json(const qc_pins *p);
/* Read {"name": version, ...} (NULL J = no pins). QB_INVAL on another shape. */
qb_code qc_pins_from_json(const struct json_t *j, qc_pins *out, qb_err *err);

/* ==== the UDF adapter (udf_script.c) =========================================================== */

/* Called when a request pins a version the local registry lacks: install it (a data node
** fetches it from etcd) and return QB_OK, or fail with the reason (QB_NOTFOUND: no such
** version anywhere). */
typedef qb_code (*qc_fetch_fn)(void *ud, const char *name, uint32_t version, qb_err *err);
/* Called on a node without a registry (a coordinator) to learn NAME's current version:
** QB_NOTFOUND (no message) when NAME is not a deployed UDF. */
typedef qb_code (*qc_current_fn)(void *ud, const char *name, uint32_t *version, qb_err *err);

/* A per-request script provider. The first resolve of a UDF name pins a version for the rest
** of the request: the one WANT gives for that name when WANT pins it (a shard request from a
** coordinator), else the registry's current one. GOT collects the versions this request uses
** (what a coordinator sends with every shard request). With REG NULL (a coordinator that runs
** no UDF), CURRENT names the versions and resolve returns stand-in scripts that fail if run:
** the request is parsed to be merged, the shards run the real ones. Embeds the
** qq_script_provider handed to qq_env.scripts. */
typedef struct qc_udf_provider {
  qq_script_provider base;
  qu_registry *reg;
  const qc_pins *want;        /* borrowed; NULL = current versions */
  qc_fetch_fn fetch;          /* may be NULL: a missing pinned version fails the shard */
  qc_current_fn current;      /* REG == NULL only */
  void *ud;                   /* for FETCH and CURRENT */
  qc_pins got;
  qu_udf *held[QC_PINS_MAX];  /* references on the versions in GOT (REG != NULL) */
} qc_udf_provider;

void qc_udf_provider_init(qc_udf_provider *p, qu_registry *reg, const qc_pins *want);
/* Release the versions held; the scripts the query layer freed no longer need them. */
void qc_udf_provider_fini(qc_udf_provider *p);

/* ==== the node handle (node.c) ================================================================= */

typedef struct qc_node qc_node;

/* Zeroed = the embedded default's node. */
typedef struct qc_node_options {
  const char *data_dir; /* required: DIR/indices (catalog), DIR/udf/registry.db */
  const char *name;     /* NULL = "node-1" */
  int sync_normal;      /* qi_options.sync_normal */
} qc_node_options;

/* Open the node's stores under OPT->data_dir (created when missing). *OUT: free with
** qc_node_close. Errors: QB_IO, QB_CORRUPT (a store is not ours), QB_NOMEM. */
qb_code qc_node_open(const qc_node_options *opt, qc_node **out, qb_err *err);
/* Close; no request may still use N. NULL does nothing. */
void qc_node_close(qc_node *n);

const char *qc_node_name(const qc_node *n);
/* The local shards (every index of the embedded default is one local shard). Borrowed. */
qi_catalog *qc_node_catalog(qc_node *n);
/* The local UDF registry. Borrowed. */
qu_registry *qc_node_registry(qc_node *n);

/* ==== shard sources (shards.c) ================================================================= */

/* One shard a request targets. LOCAL set: the shard is in this node's catalog (a reference,
** released by qc_shards_fini); else URL names the data node that holds it. */
typedef struct qc_shard {
  char index[256];
  uint32_t shard_id;
  char node[64];    /* the node that holds the copy ("" = this one) */
  char url[128];    /* "http://HOST:PORT" of that node; "" when LOCAL */
  qi_index *local;
} qc_shard;

typedef struct qc_shards {
  size_t n, cap;
  qc_shard *s;
} qc_shards;

void qc_shards_init(qc_shards *s);
void qc_shards_fini(qc_shards *s);

/* The shards of the indexes EXPR names ("a", "a,b", "logs-*", "_all"; NULL = all), in index
** name order then shard order, into OUT (appended; duplicates dropped). IGNORE_UNAVAILABLE:
** a missing concrete name is skipped. Errors: QB_NOTFOUND ("no such index [x]", MISSING gets
** the name, 256 bytes), QB_LIMIT (more than 1024 shards), QB_NOMEM. */
qb_code qc_node_resolve(qc_node *n, const char *expr, int ignore_unavailable, qc_shards *out,
                        char missing[256], qb_err *err);

/* Run REQ (parsed from BODY/LEN, a `_count` when FOR_COUNT) on every shard of SH: local shards
** one after the other on REQ itself, remote ones in parallel, each remote shard request
** carrying BODY and PINS. PARTS[i] (SH->n entries) gets shard i's partial, a failure partial
** when it failed (the policy above). Errors: QB_NOMEM only (nothing in PARTS is then set). */
qb_code qc_node_search(qc_node *n, qq_request *req, const char *body, size_t len, int for_count,
                       const qc_pins *pins, const qc_shards *sh, qq_partial **parts,
                       qb_err *err);

/* ==== the etcd v3 client (etcd.c) ============================================================== */

/* etcd (3.4) over its v3 JSON gateway, with libcurl. Keys and values are bytes (base64 on the
** wire). Every call is synchronous with the handle's timeout; any thread. Errors:
** QB_UNAVAILABLE (etcd unreachable or answering 5xx: the reason names the endpoint),
** QB_CORRUPT (an answer that is not etcd's), QB_CONFLICT (a txn compare failed), QB_NOMEM. */
typedef struct qc_etcd qc_etcd;

/* Connect to ENDPOINT ("http://HOST:PORT"), checking that etcd answers within TIMEOUT_MS
** (0 = 2000). *OUT: free with qc_etcd_close. */
qb_code qc_etcd_open(const char *endpoint, uint32_t timeout_ms, qc_etcd **out, qb_err *err);
void qc_etcd_close(qc_etcd *e);
const char *qc_etcd_endpoint(const qc_etcd *e);

typedef struct qc_kv {
  char *key;              /* NUL-terminated copies (values may hold NULs: use value_len) */
  size_t key_len;
  char *value;
  size_t value_len;
  int64_t create_revision, mod_revision, version, lease;
} qc_kv;

typedef struct qc_kvs {
  size_t n;
  qc_kv *kv;
  int64_t revision;       /* the store's revision when read */
} qc_kvs;
void qc_kvs_fini(qc_kvs *k);

/* KEY's value (OUT->n 0 or 1). */
qb_code qc_etcd_get(qc_etcd *e, const char *key, qc_kvs *out, qb_err *err);
/* Every key starting with PREFIX, in key order (KEYS_ONLY: values left empty). */
qb_code qc_etcd_range(qc_etcd *e, const char *prefix, int keys_only, qc_kvs *out, qb_err *err);
/* KEY = VALUE/LEN, attached to LEASE (0 = none). *REVISION (may be NULL): the new revision. */
qb_code qc_etcd_put(qc_etcd *e, const char *key, const void *value, size_t len, int64_t lease,
                    int64_t *revision, qb_err *err);
/* Delete KEY, or every key under it when PREFIX. *DELETED (may be NULL): how many. */
qb_code qc_etcd_delete(qc_etcd *e, const char *key, int prefix, int64_t *deleted, qb_err *err);

/* A transaction: if every compare holds, apply every op, atomically; else QB_CONFLICT and
** nothing changes. A compare is on a key's mod_revision (0 = the key does not exist). */
typedef struct qc_txn_cmp {
  const char *key;
  int64_t mod_revision;
} qc_txn_cmp;
typedef struct qc_txn_op {
  int del;                /* 0: put KEY = VALUE/LEN (LEASE); 1: delete KEY (PREFIX: the range) */
  const char *key;
  const void *value;
  size_t len;
  int64_t lease;
  int prefix;
} qc_txn_op;
qb_code qc_etcd_txn(qc_etcd *e, const qc_txn_cmp *cmp, size_t ncmp, const qc_txn_op *ops,
                    size_t nops, int64_t *revision, qb_err *err);

/* Leases. Grant one of TTL_S seconds; renew it once (QB_NOTFOUND: it expired); revoke it
** (its keys go at once). */
qb_code qc_etcd_lease_grant(qc_etcd *e, uint32_t ttl_s, int64_t *id, qb_err *err);
qb_code qc_etcd_lease_keepalive(qc_etcd *e, int64_t id, qb_err *err);
qb_code qc_etcd_lease_revoke(qc_etcd *e, int64_t id, qb_err *err);

/* A lease kept alive by a thread (renewed every TTL/3). When it expires anyway (etcd was
** unreachable too long) ON_LOST is called once from that thread (may be NULL) and qc_lease_ok
** turns 0. Stop revokes it. */
typedef struct qc_lease qc_lease;
qb_code qc_lease_start(qc_etcd *e, uint32_t ttl_s, void (*on_lost)(void *ud), void *ud,
                       qc_lease **out, qb_err *err);
int64_t qc_lease_id(const qc_lease *l);
int qc_lease_ok(const qc_lease *l);
void qc_lease_stop(qc_lease *l);

/* A watch stream on every key under PREFIX from revision FROM (0 = now), on its own thread:
** FN(UD, DELETED, KV) per event, in revision order (KV borrowed for the call). The stream
** reconnects after a failure from the revision after the last one seen. */
typedef struct qc_watch qc_watch;
typedef void (*qc_watch_fn)(void *ud, int deleted, const qc_kv *kv);
qb_code qc_watch_start(qc_etcd *e, const char *prefix, int64_t from, qc_watch_fn fn, void *ud,
                       qc_watch **out, qb_err *err);
/* Stop the stream; no FN call runs after it returns. NULL does nothing. */
void qc_watch_stop(qc_watch *w);

#endif
