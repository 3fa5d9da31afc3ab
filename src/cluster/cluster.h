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
typedef struct qc_node qc_node;
typedef struct qc_etcd qc_etcd;

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
/* The provider a search on node N starts with: the local registry's current versions (the
** embedded default, a data node), or on a coordinator of a cluster the current versions in
** etcd with stand-ins (the shards run the real ones, pinned to GOT). */
void qc_udf_provider_for(qc_udf_provider *p, qc_node *n);

/* ==== the node handle (node.c) ================================================================= */


/* What a node does. The embedded default is one process with every index as one local shard
** and no etcd; the others are cluster roles on etcd (DESIGN §1, §7). */
typedef enum qc_role {
  QC_EMBEDDED = 0,
  QC_DATA = 1,  /* holds shards, runs UDFs, registers under nodes/ with a lease */
  QC_COORD = 2, /* no state: routes, scatters, gathers; one coordinator is the leader */
  QC_BOTH = 3
} qc_role;

/* Zeroed = the embedded default's node. */
typedef struct qc_node_options {
  const char *data_dir; /* required: DIR/indices (catalog), DIR/udf/registry.db */
  const char *name;     /* NULL = "node-1" */
  int sync_normal;      /* qi_options.sync_normal */
  qc_role role;
  const char *etcd;     /* "http://HOST:PORT": required for a cluster role */
  uint32_t lease_ttl_s; /* the node's etcd lease; 0 = 5 s */
  qu_compiler *compiler; /* the UDF native tier, or NULL (interpreter only). The node owns it
                         ** from qc_node_open on, even when the open fails, and frees it after
                         ** the registry's versions and before the engine. */
  const qu_options *udf; /* UDF budgets and storage bounds (copied; its compiler is ignored);
                         ** NULL = the defaults */
  size_t script_value_max;    /* qq_env.script_value_max for shard searches; 0 = 1 MiB */
  size_t script_response_max; /* qq_env.script_response_max; 0 = 64 MiB */
} qc_node_options;

/* Open the node's stores under OPT->data_dir (created when missing); a cluster role also
** connects to etcd and checks the metadata's schema version. *OUT: free with qc_node_close.
** Errors: QB_IO, QB_CORRUPT (a store is not ours, or the etcd metadata's schema is another
** version), QB_UNAVAILABLE (etcd unreachable: the reason names it), QB_NOMEM. */
qb_code qc_node_open(const qc_node_options *opt, qc_node **out, qb_err *err);

/* Join the cluster once the node listens at URL ("http://HOST:PORT"): a data node first
** installs every current UDF from etcd, then registers nodes/<name> under its lease; a
** coordinator watches the metadata and campaigns for leadership. The embedded default does
** nothing. Errors: QB_CONFLICT (another live node has this name), QB_UNAVAILABLE (etcd). */
qb_code qc_node_join(qc_node *n, const char *url, qb_err *err);

qc_role qc_node_role(const qc_node *n);
/* 1 for a coordinator of a cluster (routes requests to data nodes). */
int qc_node_routes(const qc_node *n);
/* 1 when this coordinator holds the leader key (it alone allocates shards). */
int qc_node_is_leader(qc_node *n);
/* The etcd client (NULL in the embedded default). Borrowed. */
qc_etcd *qc_node_etcd(qc_node *n);

/* A live member of the cluster, as registered under nodes/. */
typedef struct qc_member {
  char name[64];
  char url[128];
  int data, coord;
  int64_t started_ms;
} qc_member;
/* The live members, by name, into OUT (at most MAX); returns how many there are. */
size_t qc_node_members(qc_node *n, qc_member *out, size_t max);
/* The leader coordinator; QB_NOTFOUND when there is none right now. */
qb_code qc_node_leader(qc_node *n, qc_member *out, qb_err *err);
/* Index metadata: NAME's object {"name", "settings", "mappings", "body", "shards": [{"shard",
** "primary_term", "copies": [{"node", "primary", "state"}]}], "created_ms"} as a new
** reference, or NULL when there is no such index. */
struct json_t *qc_node_index_meta(qc_node *n, const char *name);
/* The same metadata shared, not copied (a search reads it on every request): a reference to
** json_decref and never change, since other requests read the same object. */
struct json_t *qc_node_index_meta_view(qc_node *n, const char *name);
/* Every index's metadata: {name: meta, ...}, a new reference (NULL when out of memory). */
struct json_t *qc_node_indexes(qc_node *n);
/* Close; no request may still use N. NULL does nothing. */
void qc_node_close(qc_node *n);

const char *qc_node_name(const qc_node *n);
/* The local shards (every index of the embedded default is one local shard). Borrowed. */
qi_catalog *qc_node_catalog(qc_node *n);
/* The local UDF registry. Borrowed. */
qu_registry *qc_node_registry(qc_node *n);
/* The UDF native tier (NULL: interpreter only). Borrowed. */
qu_compiler *qc_node_compiler(qc_node *n);

/* ==== shard sources (shards.c) ================================================================= */

#define QC_ALT_MAX 4
/* One shard a request targets. LOCAL set: the shard is in this node's catalog (a reference,
** released by qc_shards_fini); else URL names the data node that holds it. */
typedef struct qc_shard {
  char index[256];
  uint32_t shard_id;
  char node[64];    /* the node that holds the copy ("" = this one) */
  char url[128];    /* "http://HOST:PORT" of that node; "" when LOCAL */
  qi_index *local;
  /* the other in-sync copies on live nodes, tried in order when the first one fails */
  uint8_t nalt;
  char alt_node[QC_ALT_MAX][64];
  char alt_url[QC_ALT_MAX][128];
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

/* The catalog name a data node keeps shard SHARD of INDEX under: "index~shard" ('~' is not
** allowed in a cluster's index names, so no user index can clash). */
void qc_shard_local_name(const char *index, uint32_t shard, char out[256]);

/* A data node's half of a search: REQ/LEN is a shard request {"index", "shard", "count",
** "body" (the _search body text), "pins" (qc_pins)}; *OUT gets the shard's partial as JSON
** (qq_partial_to_json), a failure partial when the shard failed, e.g. on a pinned UDF version
** this node lacks and cannot fetch. *WIRE (may be NULL) is set to the request's "wire" (1: the
** coordinator reads the binary form, qc_wire_encode; 2: that, and it splices raw _source,
** qc_wire_encode_raw; 0: text JSON). Errors: QB_INVAL (not a
** shard request), QB_NOMEM. */
qb_code qc_node_serve_shard(qc_node *n, const char *req, size_t len, struct json_t **out,
                            int *wire, qb_err *err);

/* Run REQ (parsed from BODY/LEN, a `_count` when FOR_COUNT) on every shard of SH: local shards
** one after the other on REQ itself, remote ones in parallel, each remote shard request
** carrying BODY and PINS. PARTS[i] (SH->n entries) gets shard i's partial, a failure partial
** when it failed (the policy above). Errors: QB_NOMEM only (nothing in PARTS is then set). */
qb_code qc_node_search(qc_node *n, qq_request *req, const char *body, size_t len, int for_count,
                       const qc_pins *pins, const qc_shards *sh, qq_partial **parts,
                       qb_err *err);

/* search_type=dfs_query_then_fetch (dfs.c). Phase one: every shard of SH reports the term
** statistics REQ's query scores with (local shards run on REQ, remote ones get BODY and PINS),
** summed into *STATS (a new object; a shard that fails here is left out: it fails again in
** phase two, where it is reported). Errors: QB_NOMEM only. */
qb_code qc_node_dfs(qc_node *n, qq_request *req, const char *body, size_t len,
                    const qc_pins *pins, const qc_shards *sh, struct json_t **stats,
                    qb_err *err);
/* Phase two: qc_node_search with the global statistics DFS (NULL: each shard's own), so
** scores equal those of one shard holding every document. */
qb_code qc_node_search_dfs(qc_node *n, qq_request *req, const char *body, size_t len,
                           int for_count, const qc_pins *pins, const struct json_t *dfs,
                           const qc_shards *sh, qq_partial **parts, qb_err *err);

/* ==== the etcd v3 client (etcd.c) ============================================================== */

/* etcd (3.4) over its v3 JSON gateway, with libcurl. Keys and values are bytes (base64 on the
** wire). Every call is synchronous with the handle's timeout; any thread. Errors:
** QB_UNAVAILABLE (etcd unreachable or answering 5xx: the reason names the endpoint),
** QB_CORRUPT (an answer that is not etcd's), QB_CONFLICT (a txn compare failed), QB_NOMEM. */

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
** unreachable too long, or restarted without it) qc_lease_ok turns 0 until the thread has a
** new lease (qc_lease_id changes); then it calls ON_NEW (may be NULL) from that thread, so the
** owner can put its keys again under the new lease. Stop revokes the lease. */
typedef struct qc_lease qc_lease;
qb_code qc_lease_start(qc_etcd *e, uint32_t ttl_s, void (*on_new)(void *ud), void *ud,
                       qc_lease **out, qb_err *err);
int64_t qc_lease_id(const qc_lease *l);
int qc_lease_ok(const qc_lease *l);
/* 1 while the lease is certainly alive in etcd: ok, and etcd accepted a renewal sent less than
** the TTL ago (a process that was paused or cut off knows at once that it may have lost it). */
int qc_lease_fresh(const qc_lease *l);
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

/* ==== fan-out: parallel HTTP requests to other nodes (fanout.c) ================================ */

/* One request of a fan-out. The caller fills METHOD, URL and BODY/LEN (borrowed for the call);
** qc_fanout fills STATUS (0 when no answer came: then ERROR says why) and RESP (the answer's
** body; qb_buf_fini it). */
typedef struct qc_call {
  const char *method;
  char url[512];
  const char *body;
  size_t len;
  const char *ctype;  /* NULL = application/json */
  int status;
  qb_buf resp;
  char error[200];
  uint64_t took_ns;
} qc_call;

/* Run the N calls at once (libcurl multi) and wait for all, each bounded by TIMEOUT_MS (0 =
** 30000). Errors: QB_NOMEM only; a failed call is reported in its STATUS/ERROR. */
qb_code qc_fanout(qc_call *calls, size_t n, uint32_t timeout_ms, qb_err *err);
void qc_call_fini(qc_call *c);
/* The cluster's shared secret (NULL: none), sent by every later fan-out in this process as
** the header QC_SECRET_HEADER; copied. One node per process, so one secret. */
#define QC_SECRET_HEADER "X-Quidditch-Cluster-Secret"
void qc_fanout_secret(const char *secret);
/* The request id the fan-outs of this thread carry as X-Opaque-Id (so a data node's log lines
** name the coordinator's request): FN(ARG) is asked when a fan-out starts (FN NULL: none). The
** server sets it with its log tag, for the request the thread runs. */
void qc_fanout_request_id(const char *(*fn)(void *arg), void *arg);
/* The timeout of a search's shard requests (docs/cluster.md): the search's own "timeout" in
** BODY/LEN (a shard stops collecting then and answers timed_out) plus QC_SHARD_GRACE_MS for
** its answer to travel, else QC_SHARD_TIMEOUT_MS. A shard past it fails over to its next copy. */
#define QC_SHARD_TIMEOUT_MS 10000u
#define QC_SHARD_GRACE_MS 1000u
uint32_t qc_shard_timeout_ms(const char *body, size_t len);

/* ==== the binary partial (wire.c) ============================================================== */

/* A shard's partial as the tagged binary form of its JSON tree ("QDP" and QC_WIRE_VERSION, then
** the value; the format: wire.c), the data node's answer to a shard request with "wire": 1. */
#define QC_WIRE_VERSION 1
#define QC_WIRE_MAX_DEPTH 2048 /* as jansson's parser */
/* Append J's form to OUT. QB_INVAL (nested too deep), QB_NOMEM. */
qb_code qc_wire_encode(const struct json_t *j, qb_buf *out, qb_err *err);
/* The same, for a coordinator that asked for raw _source ("raw": 1, RAW_SOURCE 1): a hit's
** _source tree (hits[i]._source) is sent as raw JSON (tag 8) when its compact text is what the
** coordinator's writer prints for it (qq_json_canonical), else as a tree. */
qb_code qc_wire_encode_raw(const struct json_t *j, int raw_source, qb_buf *out, qb_err *err);
/* 1 when P/LEN starts as a binary partial (else it is text JSON). */
int qc_wire_is(const void *p, size_t len);
/* Read P/LEN (untrusted) back into *OUT (a new tree). QB_CORRUPT naming what is wrong and where
** (a wrong version, a truncated or damaged value, bytes after it), QB_NOMEM. */
qb_code qc_wire_decode(const void *p, size_t len, struct json_t **out, qb_err *err);

/* ==== routing (route.c) ======================================================================== */

/* MurmurHash3 x86_32 of LEN bytes at P with SEED. */
uint32_t qc_murmur3_32(const void *p, size_t len, uint32_t seed);
/* The shard of a document, as Elasticsearch routes: murmur3_x86_32 (seed 0) of the routing
** string's UTF-16 code units (little-endian), floorMod the number of shards (ES 9.4's
** function; the routing is the _id unless ?routing= is given). ROUTING is UTF-8; invalid
** UTF-8 bytes count as one unit each. */
uint32_t qc_route_shard(const char *routing, size_t len, uint32_t nshards);

/* ==== UDFs in etcd (udfs.c) ==================================================================== */

/* Store a validated UDF in etcd as the next version of NAME and make it current: the module
** bytes in chunks under etcd's request limit (content-addressed by SHA-256), then one txn
** that creates udf/<name>/v/<N> and sets current (retried on a race with another
** coordinator). MANIFEST_JSON is the completed manifest. *VERSION: N. */
qb_code qc_udf_store(qc_node *n, const char *name, const char *manifest_json,
                     const uint8_t *wasm, size_t len, const char *sha256_hex,
                     uint32_t *version, qb_err *err);
/* Make VERSION of NAME current in etcd (QB_NOTFOUND when it is not stored). */
qb_code qc_udf_set_current(qc_node *n, const char *name, uint32_t version, qb_err *err);
/* Remove NAME and its versions from etcd (the blobs stay: another version may share them). */
qb_code qc_udf_remove(qc_node *n, const char *name, qb_err *err);
/* Install NAME vVERSION from etcd into the local registry (a data node; CURRENT: make it
** current here too); a version already installed is left as it is. */
qb_code qc_udf_install(qc_node *n, const char *name, uint32_t version, int current,
                       qb_err *err);
/* NAME's current version in etcd (QB_NOTFOUND when NAME is not deployed). */
qb_code qc_udf_current(qc_node *n, const char *name, uint32_t *version, qb_err *err);

/* ==== a coordinator's routes (coord.c) ========================================================= */

/* Each returns the HTTP status and sets *OUT to the response body (a new json_t; NULL only
** when out of memory), in Elasticsearch's shapes (a data node's error answer passes through
** as it came). When this coordinator itself fails the request (no leader, a node that does
** not answer, a bad argument, out of memory) it returns 0 and *OUT is {"code": qb_code,
** "reason": "..."}: the server answers that through its one error table, as the node's own
** errors. QUERY is the request's raw query string (NULL when none), passed on to the data
** nodes. */

/* PUT /{index}: on the leader, place settings.number_of_shards (default 1) shards on live data
** nodes (distinct nodes first, then the least loaded), create them there (a mapping a data
** node refuses is refused as a whole, leaving nothing behind), then store the metadata with
** its shard map in one txn; on another coordinator, forward to the leader. */
int qc_index_create(qc_node *n, const char *name, const char *body, size_t len,
                    struct json_t **out);
/* DELETE /{index}: remove the metadata (a txn), then the shards on their nodes. */
int qc_index_delete(qc_node *n, const char *name, struct json_t **out);
/* A request for one document (PATH_OP "_doc", "_create" or "_update"; ID may be NULL for
** POST /{index}/_doc, then one is generated), routed to its shard (qc_route_shard of ROUTING,
** or of the id) and forwarded to the shard's node; "_index" in the answer is the index's. */
int qc_doc_route(qc_node *n, const char *method, const char *index, const char *path_op,
                 const char *id, const char *routing, const char *query, const char *body,
                 size_t len, struct json_t **out);
/* _bulk: split per shard, the parts sent in parallel, the items answered in request order. */
int qc_bulk(qc_node *n, const char *index, const char *query, const char *body, size_t len,
            struct json_t **out);
/* _refresh of the indexes EXPR names (NULL = all), on every shard. */
int qc_refresh(qc_node *n, const char *expr, struct json_t **out);
/* GET /{index} and GET /{index}/_mapping (SUFFIX "" or "/_mapping"): shard 0's answer under
** the index's name, with the cluster's settings. */
int qc_index_get(qc_node *n, const char *name, const char *suffix, struct json_t **out);
/* PUT /{index}/_mapping on every shard (the first refusal is the answer), then the merged
** mapping into the index metadata. */
int qc_mapping_put(qc_node *n, const char *index, const char *body, size_t len,
                   struct json_t **out);
/* _delete_by_query on every shard of the indexes EXPR names, each data node deleting on its
** own shard; the counts summed, a failed shard in "failures". */
int qc_delete_by_query(qc_node *n, const char *expr, const char *query, const char *body,
                       size_t len, struct json_t **out);
/* Per-shard document counts from every live data node: {"index": {"0": N, ...}, ...}. */
struct json_t *qc_shard_docs(qc_node *n);

/* A coordinator's UDF routes (udfs.c), answered as qc_index_create is. Deploy: validate
** MANIFEST_JSON + WASM (decode, validate, manifest completed and checked against the module)
** before anything is stored, store the next version in etcd (qc_udf_store), push it to
** every live data node at once (each installs it from etcd and loads it: the interpreter is
** then ready) and answer with every node's status and time. */
int qc_udf_deploy(qc_node *n, const char *name, const char *manifest_json, size_t manifest_len,
                  const uint8_t *wasm, size_t len, struct json_t **out);
/* Make VERSION current in etcd and on every live data node. */
int qc_udf_rollback(qc_node *n, const char *name, uint32_t version, struct json_t **out);
/* Remove NAME from etcd and every live data node. */
int qc_udf_delete(qc_node *n, const char *name, struct json_t **out);
/* GET /_udf/{name}: the current version in etcd and each data node's status of it. */
int qc_udf_status(qc_node *n, const char *name, struct json_t **out);
/* GET /_udf: every UDF's current version in etcd. */
int qc_udf_list(qc_node *n, struct json_t **out);
/* GET /_udf/{name}/_versions: every version stored in etcd, in version order. */
int qc_udf_versions(qc_node *n, const char *name, struct json_t **out);
/* POST /_udf/{name}/_test: run VERSION (0 = the current one in etcd) on a live data node,
** which installs it from etcd first when it lacks it; the answer names that node. */
int qc_udf_test(qc_node *n, const char *name, uint32_t version, const char *body, size_t len,
                struct json_t **out);

/* ==== the UDF registry behind one interface (registry.c) ====================================== */

/* Where a node's UDF versions are the source of truth: SQLite (the node's qu_registry) in the
** embedded default, etcd in a cluster (data nodes then mirror versions into their SQLite
** registry, qc_udf_install). The coordinator's routes and the search's version resolution
** go through this interface, so both stores serve the same code. */
typedef struct qc_registry_ops {
  const char *kind; /* "sqlite" or "etcd" */
  /* NAME's current version; QB_NOTFOUND (no message needed) when NAME is not deployed. */
  qb_code (*current)(void *impl, const char *name, uint32_t *version, qb_err *err);
  /* Store a validated version (MANIFEST completed and checked, SHA256 of WASM in hex) as the
  ** next version of NAME and make it current. */
  qb_code (*store)(void *impl, const char *name, const char *manifest, const uint8_t *wasm,
                   size_t len, const char *sha256, uint32_t *version, qb_err *err);
  /* Make VERSION current (QB_NOTFOUND when it is not stored). */
  qb_code (*set_current)(void *impl, const char *name, uint32_t version, qb_err *err);
  /* Remove NAME and its versions (QB_NOTFOUND when absent). */
  qb_code (*remove)(void *impl, const char *name, qb_err *err);
} qc_registry_ops;

typedef struct qc_registry {
  const qc_registry_ops *ops;
  void *impl;
} qc_registry;

/* The node's source of truth for UDF versions (borrowed, lives as long as N). */
const qc_registry *qc_node_udf_registry(qc_node *n);


/* ==== replication: primary-backup per shard (replicate.c, failover.c; docs/cluster.md) ======= */

/* A write on a data node's local shard ("index~N"), as Elasticsearch's primary does it: BEGIN
** checks that this node is the shard's primary in the metadata, under a live lease, and
** serializes the shard's writes (one at a time, so every copy applies them in one order);
** the caller applies the write to its local index and notes every _id it touched; FINISH
** gives each touched document's resulting state (source and version, or deleted) the next
** sequence numbers under the primary term, sends them to every other in-sync copy at once and
** waits until each has them durably; a copy that fails is removed from the in-sync set in etcd
** (a compare-and-swap of the index's metadata) before FINISH returns. Only a FINISH that
** returned QB_OK may be acknowledged. END releases the shard.
** BEGIN gives *OUT NULL (and QB_OK) when LOCAL is not a replicated shard (the embedded default,
** or a name without '~'). Errors: QB_UNAVAILABLE (not the primary, stale term, lease lost, a
** copy refused our term, the in-sync set could not be changed: the reason says which). */
typedef struct qc_write qc_write;
qb_code qc_write_begin(qc_node *n, const char *local, qc_write **out, qb_err *err);
qb_code qc_write_note(qc_write *w, const char *id, qb_err *err);
/* The copies refresh once they applied the write (the request had ?refresh). */
void qc_write_refresh(qc_write *w);
/* *TOTAL: the shard's copies (assigned ones), *OK: the copies that have the write, *TERM: the
** primary term it was written under. */
qb_code qc_write_finish(qc_write *w, uint32_t *total, uint32_t *ok, uint64_t *term,
                        qb_err *err);
/* The write failed on this primary's own store (REASON, e.g. a full disk): FINISH also makes
** it leave the in-sync set (when another copy is in it), so that the leader promotes one, and
** BEGIN refuses further writes until then. */
void qc_write_local_failed(qc_write *w, const char *reason);
void qc_write_end(qc_write *w);

/* A copy's half: BODY/LEN is {"term", "primary", "ops": [{"seq", "id", "v", "src"} or {"seq",
** "id", "del": true}], "gckpt" (the primary's global checkpoint), "reset": {create body}
** (recovery: the shard is re-created first), "ckpt" and "log": {"from", "ids"} (the end of a
** recovery or resync: this copy's checkpoint and op log become the primary's), "probe": true
** (only answer where this copy stands, apply.c)}: refused with QB_CONFLICT when TERM is older
** than the newest this copy knows (its metadata or an earlier request), else applied durably
** in one batch. *OUT: {"local_checkpoint", "refresh": bool (the primary asked the copies to
** refresh)}.
** Errors: QB_INVAL (not such a request), QB_CONFLICT (stale term), QB_IO (disk), QB_NOMEM. */
qb_code qc_replica_apply(qc_node *n, const char *index, uint32_t shard, const char *body,
                         size_t len, struct json_t **out, qb_err *err);

/* The primary's half of recovery: copy every document of the shard (with its version) to the
** copy on node TARGET (which re-creates its shard first), holding the shard's writes, then add
** TARGET to the in-sync set; by the operations above the last one both agree on when both op
** logs reach it. TARGET NULL: only make sure this new primary resynced its in-sync copies.
** Errors: as qc_write_begin, QB_UNAVAILABLE (TARGET failed). */
qb_code qc_recover_copy(qc_node *n, const char *index, uint32_t shard, const char *target,
                        struct json_t **out, qb_err *err);

/* Per-copy document counts from every live data node: {node: {"index~N": docs}}. */
struct json_t *qc_copy_docs(qc_node *n);

#endif
