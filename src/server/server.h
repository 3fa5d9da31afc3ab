/* server.h: the HTTP API of a Quidditch node (layer src/server, prefix qs_). In the embedded
** default one process is coordinator and data node at once: an Elasticsearch-compatible
** REST API over the index catalog (src/index), searches through the query layer (src/query)
** with deployed WebAssembly UDFs plugged in as scripts (src/udf), UDF management routes,
** cluster banners and Prometheus metrics. docs/rest-api.md lists every route.
**
** Threads: a qs_server serves requests on its own thread pool (libmicrohttpd) and refreshes
** dirty indexes on a background thread. qs_server_new and qs_server_free are called from one
** thread (the program's main thread); nothing else of the API is needed while it serves. */
#ifndef QS_SERVER_H
#define QS_SERVER_H

#include <stdint.h>

#include "base.h"

typedef struct qs_server qs_server;

/* Zeroed = the embedded default. */
typedef struct qs_options {
  const char *listen;           /* "HOST:PORT"; NULL = "127.0.0.1:9200"; port 0 = any free */
  const char *data_dir;         /* NULL = "./data" (created when missing) */
  const char *node_name;        /* NULL = "node-1": log lines, banners and metric labels */
  uint32_t threads;             /* HTTP worker threads; 0 = the number of CPUs (at least 2) */
  uint32_t refresh_interval_ms; /* dirty indexes become searchable within this; 0 = 1000 */
  int sync_normal;              /* 1: SQLite synchronous=NORMAL (survives a killed process,
                                ** not a power cut); 0: FULL */
  int role;                     /* 0 = the embedded default; 1 data, 2 coord, 3 both (qc_role) */
  const char *etcd;             /* "http://HOST:PORT" of etcd: required for a cluster role */
  uint32_t lease_ttl_s;         /* a cluster node's etcd lease; 0 = 5 s */
  /* The connection guard (docs/operations.md); 0 = the default given. */
  uint32_t max_connections;     /* open connections in all; 10000, at most the fd limit - 256;
                                ** past it a new connection is closed at once */
  uint32_t max_connections_per_client; /* per client IP address; 1000 */
  uint32_t header_timeout_ms;   /* request line to the end of the headers; 10000 */
  uint32_t body_timeout_ms;     /* end of the headers to the end of the body; 60000 */
  uint32_t idle_timeout_ms;     /* a keep-alive connection with no request; 60000 */
  /* The flood-stage disk watermark, in percent of the data directory's filesystem: at or
  ** above FLOOD, writes answer 429 cluster_block_exception until usage is below HIGH. */
  uint32_t disk_flood_stage_pct; /* 0 = 95 */
  uint32_t disk_high_pct;        /* 0 = 90 */
  /* Access (docs/operations.md): users and API keys with roles read/write/admin, hashed with
  ** crypto_pwhash. NULL = no credentials: allowed only when LISTEN is a loopback address. */
  const char *auth_file;
  /* The secret nodes of one cluster share (docs/cluster.md): a coordinator sends it with every
  ** call to another node; a node refuses /_internal routes without it (401) and takes a call
  ** that carries it as the cluster's own. Required for a cluster role with auth_file. The
  ** file holds the secret alone (at least 16 characters; trailing whitespace dropped). */
  const char *cluster_secret_file;
  const char *tls_cert_file;     /* PEM; with tls_key_file, the node serves HTTPS only */
  const char *tls_key_file;
  /* Worker pools (docs/operations.md): searches and scripts, writes and management; cheap
  ** reads run on the HTTP threads. 0 = the default given. */
  uint32_t search_threads;      /* the number of CPUs, at least 2 */
  uint32_t write_threads;       /* half the CPUs, at least 1 */
  uint32_t search_queue;        /* 1000 queued searches; past it 429 */
  uint32_t write_queue;         /* 10000 queued writes; past it 429 */
  /* The UDF native tier (docs/udf.md §10): "auto" (NULL: the interpreter at once, LLVM
  ** native code after a background compile and a verified swap), "interp" (never compile),
  ** "native" (compile when a version loads); its code cache is DATA/cache. */
  const char *udf_tier;
  const char *trusted_keys_dir; /* *.pub keys whose signed AOT artifacts load; NULL = none */
  /* UDF budgets and storage bounds (qu_options, docs/operations.md); 0 = the default given. */
  uint64_t udf_fuel_per_doc;     /* 10,000,000 units per document */
  uint64_t udf_memory_bytes;     /* linear memory per instance, 16 MiB (whole 64 KiB pages) */
  uint32_t udf_call_depth;       /* wasm frames per call, 10000 */
  uint32_t udf_block_timeout_ms; /* wall clock per block, 1000 */
  uint64_t udf_max_module_bytes; /* a deploy's module, 10 MiB */
  uint32_t udf_versions_kept;    /* per UDF, 10 */
  uint32_t udf_idle_unload_ms;   /* 300000 */
  /* script_fields results: one string value, and all of one shard's response (the request
  ** breaker); 0 = 1 MiB and 64 MiB. */
  uint64_t script_value_max_bytes;
  uint64_t script_response_max_bytes;
  uint32_t slow_search_ms;       /* a search or count taking this long is a WARN line naming
                                 ** its request and UDFs (the slow log); 0 = 1000 */
} qs_options;

/* Open the data directory (indexes, UDF registry), bind the listening socket and start
** serving. OPT may be NULL. Logs "listening on HOST:PORT" at INFO. A cluster role then joins
** the cluster through etcd (docs/cluster.md). *OUT: free with qs_server_free. Errors: QB_INVAL
** (bad listen address), QB_IO (data directory, bind), QB_CORRUPT (a store is not ours),
** QB_UNAVAILABLE (etcd unreachable), QB_CONFLICT (the node name is taken by a live node),
** QB_NOMEM. Refuses (QB_INVAL) to listen on an address outside 127.0.0.0/8 without an auth
** file. On failure nothing is left running. */
qb_code qs_server_new(const qs_options *opt, qs_server **out, qb_err *err);

/* Add (or replace) user NAME (API_KEY = 0: HTTP Basic with password SECRET) or API key NAME
** (API_KEY = 1: `Authorization: ApiKey base64(NAME:SECRET)`) with ROLE ("read", "write" or
** "admin") to the auth file at PATH (created, mode 0600, written atomically). Only a
** crypto_pwhash hash of SECRET is stored. A running node reads the file at start, and again
** on SIGHUP or within a refresh interval of a change (qs_server_reload_auth).
** Errors: QB_INVAL (role, name, a secret under 8 bytes), QB_IO, QB_NOMEM. */
qb_code qs_auth_add(const char *path, int api_key, const char *name, const char *secret,
                    const char *role, qb_err *err);

/* Read the auth file again (quidditch serve does on SIGHUP; the node also notices a changed file
** within a refresh interval): the new users and API keys apply to the next request; a file
** that does not load is logged at ERROR and the old credentials stay. A node without an auth
** file logs that there is none. Any thread. */
void qs_server_reload_auth(qs_server *s);

/* The port actually listened on (useful with port 0). */
uint16_t qs_server_port(const qs_server *s);

/* Stop accepting requests, finish the ones in flight, stop the refresher, close the stores
** (every acknowledged write is already durable) and free S. NULL does nothing. */
void qs_server_free(qs_server *s);

#endif
