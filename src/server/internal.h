/* internal.h: what the files of src/server share. server.c owns the daemon and the request
** life cycle, http.c the request/response helpers and the router, the h_*.c files the route
** handlers, multipart.c the form-data parser, metrics.c the counters and /metrics. The node's
** stores and the UDF adapter are src/cluster's (one qc_node handle).
** errors.c holds the one table from qb_code to HTTP status and Elasticsearch type.
**
** A request (qs_req) is handled by one worker thread from start to end: the handler reads
** the captured path segments and the body, and sets exactly one response (qs__reply_*). */
#ifndef QS_INTERNAL_H
#define QS_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "cluster.h"
#include "index.h"
#include "query.h"
#include "server.h"
#include "udf.h"
#include "wasm.h"

#define QS_VERSION "8.11.0" /* the Elasticsearch version clients are told we are compatible with */
#define QS_BODY_MAX (10u << 20)      /* request body bound, most routes */
#define QS_BODY_MAX_BIG (100u << 20) /* _bulk, UDF deploy */
#define QS_MAX_CAPTURES 4
#define QS_RID_MAX 72 /* a request id, with its NUL */

/* ---- routes ------------------------------------------------------------------------------- */

typedef struct qs_req qs_req;
typedef void (*qs_handler)(qs_req *r);

typedef enum qs_route_id {
#define QS_ROUTE(id, m, p, h, big) QS_R_##id,
#include "routes.def"
#undef QS_ROUTE
  QS_ROUTE_COUNT
} qs_route_id;

typedef struct qs_route {
  const char *method;
  const char *pattern;
  qs_handler handler;
  int big_body;
} qs_route;

extern const qs_route qs__routes[QS_ROUTE_COUNT];

/* Find the route for METHOD and PATH (as sent: percent-encoded, without the query string;
** segments are split first, then decoded, so "/i/_doc/a%2Fb" captures "a/b"). Captured segments go to CAPS (pointers into CAPBUF, a
** copy of PATH the caller provides with at least strlen(PATH)+1 bytes). Returns the route id,
** -1 when no pattern matches PATH, -2 when a pattern matches but not with this method, -3 when
** a segment decodes to a NUL byte or to invalid UTF-8. */
int qs__route_match(const char *method, const char *path, char *capbuf,
                    const char *caps[QS_MAX_CAPTURES], size_t *ncaps);
/* json_out.c: append J as JSON text to OUT (PRETTY: two-space indents, as jansson's
** JSON_INDENT(2)); reals get the fewest digits that read back as the same double, so numbers
** come back as clients wrote them. Errors: QB_LIMIT (nested too deeply), QB_NOMEM. */
qb_code qs__json_write(const json_t *j, int pretty, qb_buf *out, qb_err *err);
/* 1 when S[0..N) is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
int qs__utf8_ok(const char *s, size_t n);
/* S with every byte outside printable ASCII written as %XX, cut to fit OUT[CAP] (for messages). */
void qs__printable(const char *s, char *out, size_t cap);

/* ---- the server ----------------------------------------------------------------------------- */

/* Counters for /metrics; every field is updated with relaxed atomics. */
#define QS_SEARCH_BUCKETS 12
#define QS_STATUS_SLOTS 13          /* statuses counted by name; the rest count as "other" */
typedef struct qs_metrics {
  uint64_t http[QS_ROUTE_COUNT][QS_STATUS_SLOTS]; /* per route, per status (metrics.c) */
  uint64_t http_other[QS_ROUTE_COUNT];
  uint64_t unrouted;                 /* requests no route matched */
  uint64_t search_hist[QS_SEARCH_BUCKETS + 1];
  uint64_t search_count;
  uint64_t search_sum_ns;
  uint64_t search_errors;
  uint64_t docs_indexed;
  uint64_t refreshes;
} qs_metrics;

/* conns.c: the connection guard. Phases of a tracked connection: */
enum { QS_PHASE_IDLE,     /* accepted or between keep-alive requests: until the request line */
       QS_PHASE_HEADERS,  /* request line read (MHD's URI callback): until the headers end */
       QS_PHASE_BODY,     /* headers read: until the body ends */
       QS_PHASE_HANDLING, /* a handler runs (no deadline here; UDFs have their own) */
       QS_PHASE_REAPED }; /* shut down by the reaper; MHD closes it */
typedef struct qs__conn qs__conn;
typedef struct qs__conns {
  pthread_mutex_t mu;   /* guards head, open, every qs__conn's fields, stopping */
  pthread_cond_t cv;
  qs__conn *head;       /* every open connection MHD told us of */
  uint64_t open;
  int stopping, started;
  pthread_t thread;
  unsigned max_conns, max_per_client;   /* given to MHD */
  uint64_t header_timeout_ms, body_timeout_ms, idle_timeout_ms;
  uint64_t fd_limit;                    /* RLIMIT_NOFILE after raising it */
  uint64_t accepted;                    /* relaxed atomics, for /metrics */
  uint64_t reaped[3];                   /* headers, body, idle */
} qs__conns;
/* Size the caps and deadlines from OPT and the descriptor limit (raising the soft limit to the
** hard one). Call before MHD_start_daemon. */
void qs__conns_limits(qs_server *s, const qs_options *opt);
qb_code qs__conns_start(qs_server *s, qb_err *err); /* the reaper thread */
void qs__conns_stop(qs_server *s);                  /* after MHD_stop_daemon */
void qs__conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
/* The connection of C enters PHASE (QS_PHASE_*), now. */
void qs__conn_phase(qs_server *s, struct MHD_Connection *c, int phase);
void qs__conns_mhd_log(void *cls, const char *fmt, va_list ap);

/* auth.c: users and API keys with roles (NULL = no auth file: everything allowed). */
enum { QS_ROLE_READ = 1, QS_ROLE_WRITE = 2, QS_ROLE_ADMIN = 4 };
typedef struct qs__auth qs__auth;
/* Load the auth file at PATH. Errors: QB_INVAL (unreadable, malformed, empty), QB_NOMEM. */
qb_code qs__auth_open(const char *path, qs__auth **out, qb_err *err);
void qs__auth_free(qs__auth *a);
/* 1 when R's credentials allow its route; else 0 after answering 401/403 security_exception. */
int qs__auth_check(qs_req *r);
/* Load the auth file again and swap the new credentials in (the cache of verified headers is
** emptied); on any error the old ones stay. *USERS, *KEYS (may be NULL): what it holds now. */
qb_code qs__auth_reload(qs__auth *a, size_t *users, size_t *keys, qb_err *err);
/* 1 once per change of the auth file (mtime, size, inode) since it was last loaded. */
int qs__auth_changed(qs__auth *a);
const char *qs__auth_path(const qs__auth *a);
/* Hold (LOCK 1) or release (0) the auth file for a read-modify-write (apikeys.c). */
void qs__auth_lock_file(qs__auth *a, int lock);
/* The API keys now loaded, as GET /_security/api_key lists them (never a hash); NULL: memory. */
json_t *qs__auth_keys(qs__auth *a);
/* Write J to PATH atomically (a temporary file, fsync, rename), mode 0600. */
qb_code qs__auth_write(const char *path, const json_t *j, qb_err *err);
/* apikeys.c: reload the auth file (WHY: "SIGHUP", "the file changed"), logging the outcome; a
** malformed file is an ERROR and the old credentials stay. */
void qs__auth_reload_logged(qs_server *s, const char *why);
/* The refresher, once per interval: reload when the auth file changed. */
void qs__auth_watch(qs_server *s);
/* h_internal.c: the cluster's shared secret. Open: read OPT->cluster_secret_file into
** S->cluster_secret and hand it to the fan-out (every call to another node carries it);
** QB_INVAL when it is unreadable or short, or when a cluster role has an auth file but no
** secret. Check (auth.c's hook, before users): 1 when R carries the secret (a call from
** another node of the cluster: allowed), 0 after a 401 (an /_internal route without it while
** the node has a secret or credentials), -1 when users decide. */
#define QS_CLUSTER_SECRET_MAX 1024
qb_code qs__cluster_secret_open(qs_server *s, const qs_options *opt, qb_err *err);
int qs__cluster_auth(qs_req *r);
void qs__cluster_secret_free(qs_server *s);

/* pools.c: worker pools by kind of request. */
typedef struct qs__pool qs__pool;
typedef void (*qs__job_fn)(void *arg);
typedef struct qs__pool_stat {
  const char *name;
  size_t threads, queued, max_queue;
  uint64_t rejected, completed;
} qs__pool_stat;
/* NTHREADS workers (their niceness raised by NICE) and a queue of at most MAX_QUEUE jobs. */
qb_code qs__pool_new(const char *name, size_t nthreads, size_t max_queue, int nice,
                     qs__pool **out, qb_err *err);
/* Run what is queued, then stop and free the workers. NULL does nothing. */
/* Stop: no more jobs are taken (qs__pool_submit refuses), the queue drains and the threads
** are joined; the pool stays allocated, so a late submit is refused rather than a use after
** free. Free stops first when it was not. */
void qs__pool_stop(qs__pool *p);
void qs__pool_free(qs__pool *p);
/* Queue RUN(ARG); 0 when the queue is full (or out of memory): RUN will never be called. */
int qs__pool_submit(qs__pool *p, qs__job_fn run, void *arg);
void qs__pool_stats(qs__pool *p, qs__pool_stat *out);
/* The pool R's route runs on, or NULL: a cheap read, run on the HTTP thread. */
qs__pool *qs__pool_for(qs_req *r);

/* disk.c: the flood-stage watermark. */
typedef struct qs__disk {
  unsigned flood_pct, high_pct; /* block adds at >= flood, lift below high */
  int blocked;                  /* relaxed atomics */
  uint64_t used_pm;             /* last measured usage, per mille */
} qs__disk;
void qs__disk_init(qs_server *s, const qs_options *opt);
void qs__disk_check(qs_server *s); /* the refresher thread, once per interval */
/* 1 (after answering 429 cluster_block_exception) when R adds data while the block is on. */
int qs__disk_refuse(qs_req *r);

struct qs_server {
  char host[256];
  uint16_t port;
  char data_dir[1024];
  char node_name[64];
  uint32_t threads;
  uint32_t refresh_interval_ms;
  int64_t started_ms;

  qc_node *node;        /* the local shards (catalog) and the UDF registry */
  qu_compiler *compiler; /* the native tier until qc_node_open takes it */
  struct MHD_Daemon *mhd;

  pthread_mutex_t mu;   /* guards dirty*, stopping */
  pthread_cond_t cv;
  int stopping;
  int closing;          /* atomic: qs_server_free began; new connections are refused */
  int refresher_started;
  pthread_t refresher;
  char **dirty;         /* names of indexes written since their last refresh */
  size_t ndirty, capdirty;
  uint64_t *dirty_since; /* CLOCK_MONOTONIC ns when dirty[i] was marked (capdirty slots) */
  int refresh_kick;      /* under mu: the refresher looks again before it sleeps */

  qs_metrics m;
  qs__conns conns;
  qs__disk disk;
  qs__auth *auth;       /* NULL: open (loopback only) */
  char *cluster_secret; /* NULL: none (h_internal.c); qb_malloc'd, CLUSTER_SECRET_MAX + 1 */
  qs__pool *search_pool, *write_pool;
  size_t script_value_max, script_response_max; /* qq_env's (0: the query layer's default) */
  uint64_t rid_next;    /* request ids made so far (reqid.c; relaxed atomics) */
  uint32_t slow_search_ms; /* a search taking this long is logged at WARN (0: 1000) */
  char *tls_cert, *tls_key; /* PEM text when serving HTTPS (qb_malloc'd) */
  struct qs__meta *meta;    /* aliases, closed indexes, templates (meta.c) */
  size_t tls_cert_len, tls_key_len;
  struct qs__ctxs *ctxs;  /* scroll and point-in-time contexts (h_scroll.c); made on first use */
};

/* Remember that index NAME has unrefreshed writes (the refresher makes them searchable). */
void qs__mark_dirty(qs_server *s, const char *name);
/* Refresh index NAME now (and forget it is dirty). */
qb_code qs__refresh_now(qs_server *s, qi_index *ix, const char *name, qb_err *err);

/* ---- requests and responses ----------------------------------------------------------------- */

struct qs_req {
  qs_server *srv;
  struct MHD_Connection *conn;
  const char *method;
  const char *path;
  int route;                       /* qs_route_id */
  const char *caps[QS_MAX_CAPTURES];
  size_t ncaps;
  const char *body;                /* NUL-terminated; "" when there is none */
  size_t body_len;
  const char *content_type;        /* "" when absent */
  const char *query;               /* the raw query string (after '?'), NULL when none */
  uint64_t start_ns;
  const json_t *src_spec;          /* an _mget item's "_source" for its GET (else the URL's) */
  char alias_to[256];              /* caps[0] when it named an alias (h_alias.c) */

  int status;                      /* response */
  qb_buf out;
  const char *out_type;            /* NULL = application/json */
  char rid[QS_RID_MAX];            /* the request id once made ("" until then: reqid.c) */
  int rid_from_client;             /* RID is the client's X-Opaque-Id */
};

/* reqid.c: R's id (its client's X-Opaque-Id, else one made for it), made on first use. */
const char *qs__req_id(qs_req *r);
/* Tag this thread's log lines with R's id (NULL: stop tagging). */
void qs__req_tag(qs_req *r);
/* params.c: the URL parameters ROUTE serves ("" none, NULL: no row, a defect), and the check
** the router makes before a handler: 0 after a 400 naming the first one not served. */
const char *qs__route_params(int route);
int qs__params_check(qs_req *r);

/* h_search.c: the query layer's env for R's request: the node's deployed UDFs as scripts (PROV,
** qc_udf_provider_fini after the request), the error table, the result limits. */
void qs__query_env(qs_req *r, qc_udf_provider *prov, qq_env *env);

/* h_search.c: ?_source=true|false|f1,f2, ?_source_includes= and ?_source_excludes=
** (comma-separated) as a `_source` spec; NULL when R has none. false wins, as in
** Elasticsearch; _source_includes wins over ?_source's list. */
json_t *qs__url_source(qs_req *r);

/* A query-string argument, or NULL. */
const char *qs__arg(qs_req *r, const char *key);
/* 1 when ?KEY is "true" or present and empty, 0 when "false" or absent. */
int qs__arg_bool(qs_req *r, const char *key);

/* Responses. reply_json takes J's reference (J NULL: out of memory -> 500). */
void qs__reply_json(qs_req *r, int status, json_t *j);
/* Reply with BODY, a JSON text the caller wrote (compact, as qs__json_write would): taken,
** BODY is left empty. */
void qs__reply_buf(qs_req *r, int status, qb_buf *body);
void qs__reply_text(qs_req *r, int status, const char *type, const char *text, size_t len);
/* {"error":{"root_cause":[{type,reason}],"type","reason"},"status"}: an Elasticsearch error. */
void qs__reply_error(qs_req *r, int status, const char *type, const char *fmt, ...)
    QB_PRINTF(4, 5);
/* ---- errors (errors.c): the one qb_code -> status + Elasticsearch type table -------------- */

typedef struct qs_error {
  int status;        /* HTTP status */
  const char *type;  /* Elasticsearch error type, static */
} qs_error;

/* The status and type for CODE answered on ROUTE (a qs_route_id; -1: none in particular). */
qs_error qs__error_for(qb_code code, int route);
/* The type alone (no route): qq_env.error_type for the query layer's _shards.failures. */
const char *qs__error_type(qb_code code);
/* The Elasticsearch error for ERR, status and type from the table, ERR's message as reason.
** A 500 is logged at ERROR (method, path, code, reason). */
void qs__reply_err(qs_req *r, const qb_err *err);
/* The same for CODE with a formatted reason. */
void qs__reply_code(qs_req *r, qb_code code, const char *fmt, ...) QB_PRINTF(3, 4);
/* h_coord.c: answer a coordinator route's result (cluster.h): STATUS and J as they are, or,
** for STATUS 0, J's {"code", "reason"} through the error table. Takes J. */
void qs__reply_cluster(qs_req *r, int status, json_t *j);
/* h_index.c: 400 resource_already_exists_exception for index NAME (Elasticsearch's shape). */
void qs__reply_exists(qs_req *r, const char *name);
/* The error body as a new json object (for _bulk items and tests). */
json_t *qs__error_json(int status, const char *type, const char *reason);

/* Run handler H as a sub-request of R (same connection and query string) with the captures
** CAPS[0..NCAPS) and BODY/LEN (borrowed). Returns its HTTP status; *OUT gets its JSON response
** (a new reference, NULL when it had no body). For _msearch and _mget. */
int qs__subrequest(qs_req *r, qs_handler h, const char *const *caps, size_t ncaps,
                   const char *body, size_t len, json_t **out);

/* Parse the body as a JSON object (empty body: *OUT NULL and 1). On bad JSON replies
** x_content_parse_exception (or parsing_exception when it is not an object) and returns 0. */
int qs__body_object(qs_req *r, json_t **out);

/* Elasticsearch's index-name rules; on failure fills REASON (256 bytes) and returns 0. */
int qs__index_name_ok(const char *name, char reason[256]);
/* Reply index_not_found_exception for NAME. */
void qs__reply_no_index(qs_req *r, const char *name);

/* The index NAME as a reference (qi_index_release it), or NULL after replying: a bad name
** (invalid_index_name_exception) or index_not_found_exception. AUTOCREATE: create a missing
** index with dynamic mappings first (as Elasticsearch's action.auto_create_index). */
qi_index *qs__index_open(qs_req *r, const char *name, int autocreate);
/* After a write to NAME: refresh now when ?refresh=true|wait_for (wait_for is served as true),
** else mark the index dirty for the refresher. Returns the "forced_refresh" flag. */
int qs__after_write(qs_req *r, qi_index *ix, const char *name);

/* A partial update (_update and _bulk's update action): BODY {"doc", "doc_as_upsert", "upsert"}
** applied to ID. Returns 0 and fills RES, or an HTTP status with TYPE and REASON. */
int qs__update_doc(qi_index *ix, const char *index, const char *id, json_t *body,
                   qi_write_result *res, const char **type, char reason[512]);

/* A coordinator of a cluster (h_coord.c): handle R when its route is one the coordinator
** serves differently from the embedded default (index administration, documents, _bulk,
** refresh, cluster APIs, UDF deploys); 0 leaves R to the route's handler (_search, _count,
** _msearch: the same handler code over the node's shard source). */
int qs__coord(qs_req *r);
/* _cat output: ROWS (an array of objects with the columns COLS[0..N) as strings) as a text
** table (aligned, a header with ?v) or JSON with ?format=json. Takes ROWS. */
/* h_replica.c: a write on a replicated shard's local name runs inside the shard's replicated
** write (1: handled and answered; 0: not such a write, run the route's handler). */
int qs__replica_wrap(qs_req *r);
/* h_replica.c: R, a write on a shard this node is the primary of, is refused by the flood-stage
** watermark (disk.c): the primary steps down so that an in-sync copy elsewhere takes its writes. */
void qs__replica_blocked(qs_req *r, const char *reason);
/* h_replica.c: a coordinator's _cluster/health and _cat/shards over every copy (answer; 1). */
int qs__replica_health(qs_req *r);
int qs__replica_cat_shards(qs_req *r);
void qs__reply_cat(qs_req *r, const char *const *cols, size_t n, json_t *rows);
/* The columns of _cat/indices (WHICH 0), _cat/nodes (1), _cat/shards (2). */
const char *const *qs__cat_cols(int which, size_t *n);


/* ---- the node's index metadata (meta.c): aliases, closed indexes, templates ---------------- */
typedef struct qs__meta qs__meta;
/* Load DATA/meta.json (missing: empty). Errors: QB_CORRUPT (not a JSON object), QB_IO. */
qb_code qs__meta_open(qs_server *s, qb_err *err);
void qs__meta_close(qs_server *s);
/* A copy of SECTION ({} when absent); json_decref it. */
json_t *qs__meta_get(qs_server *s, const char *section);
/* A copy of SECTION's entry KEY, or NULL (a cheap lookup: every document request asks). */
json_t *qs__meta_get_key(qs_server *s, const char *section, const char *key);
/* FN changes a copy of the whole document; when it returns QB_OK the copy is written to disk
** and replaces it, else (or when the write fails) nothing changes. One update at a time. */
typedef qb_code (*qs__meta_fn)(json_t *doc, void *ud, qb_err *err);
qb_code qs__meta_update(qs_server *s, qs__meta_fn fn, void *ud, qb_err *err);
/* DOC's SECTION object (created when absent; borrowed). */
json_t *qs__meta_section(json_t *doc, const char *section);

/* h_alias.c. 0 after replying 400 on a cluster coordinator (the route is one node's). */
int qs__local_only(qs_req *r);
int qs__index_is_closed(qs_server *s, const char *index);
void qs__reply_closed(qs_req *r, const char *index); /* 400 index_closed_exception */
int qs__is_alias(qs_server *s, const char *name);
/* Alias NAME's index for a write (WRITE: its write index) or a one-document read, into OUT:
** 1; 0 when NAME is no alias; -1 with REASON when the alias has no such index. */
int qs__alias_resolve_one(qs_server *s, const char *name, int write, char out[256], char *reason,
                          size_t cap);
/* Before handler H runs: a document route's {index} naming an alias becomes its index, and a
** closed index is refused. 0 after a reply. */
int qs__alias_caps(qs_req *r, qs_handler h);
/* A search's index expression EXPR (NULL: all) with aliases and patterns expanded to concrete
** names (closed indexes skipped by patterns, refused by name), in *OUT (qs__alias_expand_free;
** NULL on a coordinator: use EXPR), and the aliases' filter for the whole request in *FILTER
** (NULL: none). 0 after a reply. */
int qs__alias_expand(qs_req *r, const char *expr, char **out, json_t **filter);
void qs__alias_expand_free(char *expr);
/* The search body BODY/LEN with its query ANDed with FILTER (json_dumps text; NULL when BODY is
** not an object: the search reports it). */
char *qs__alias_filter_body(const char *body, size_t len, json_t *filter);
/* {alias: props} of INDEX (a new object). */
json_t *qs__aliases_of(qs_server *s, const char *index);
/* A create body's or template's "aliases": 0 after a 400 naming what is wrong. */
int qs__aliases_check(qs_req *r, json_t *aliases);
qb_code qs__aliases_add(qs_server *s, const char *index, json_t *aliases, qb_err *err);
/* After INDEX was deleted: its aliases and closed mark go. */
void qs__index_forget(qs_server *s, const char *index);

/* h_template.c: create index NAME with BODY/LEN (NULL: none) over the matching index template,
** then add the aliases they name. Errors: those of qi_catalog_create; QB_INVAL when NAME is an
** alias. */
qb_code qs__index_create(qs_server *s, const char *name, const char *body, size_t len,
                         qi_index **out, qb_err *err);
/* The create body for INDEX: the matching template's pieces with BODY (borrowed; NULL) over
** them. A new object. */
json_t *qs__template_compose(qs_server *s, const char *index, json_t *body);
/* h_index.c: index settings this node serves; 0 after a 400 naming one it does not. */
int qs__settings_check(qs_req *r, const json_t *settings);
/* h_script.c: the scripts of _update, _update_by_query and _reindex (an expression on
** ctx._source, or a deployed UDF's name). New: 0, or an HTTP status with REASON. */
typedef struct qs__script qs__script;
int qs__script_new(json_t *script, qs__script **out, char reason[512]);
void qs__script_free(qs__script *s);
int qs__script_is_udf(const qs__script *s);
/* An expression on SOURCE (changed in place); *OP 0 index, 1 noop, 2 delete. 0 or 400. */
int qs__script_run(const qs__script *s, json_t *source, int *op, char reason[512]);
/* A UDF on the documents IDS (an array of strings) of INDEX: *OUT {id: its result}; 0 or an
** HTTP status with REASON. */
int qs__script_udf(qs_req *r, const qs__script *s, const char *index, json_t *ids, json_t **out,
                   char reason[512]);
/* Merge a UDF's result PATCH (a string holding a JSON object) into SOURCE: 0 or 400. */
int qs__script_merge(json_t *source, json_t *patch, const char *id, char reason[512]);
/* h_explain.c: the BM25 explanation of document ID of INDEX for QUERY (NULL: match_all) in
** *OUT, *MATCHED; 0, 404 (no such index or document) or 400 (a query, option or field not
** explained) with REASON. */
int qs__explain_doc(qs_req *r, const char *index, const char *id, json_t *query, int *matched,
                    json_t **out, char reason[512]);
/* `explain: true` in a search body: taken out of the body (*OWNED, the body text to search,
** replaced) with the query to explain in *QUERY (NULL: not asked); 0 after a reply. Then
** qs__explain_hits adds each hit's "_explanation" to RESPONSE: 0 or a status with REASON. */
int qs__explain_take(qs_req *r, char **owned, json_t **query);
int qs__explain_hits(qs_req *r, json_t *query, json_t *response, char reason[512]);
/* h_reindex.c: POST /{index}/_update/{id} with a "script" (h_doc.c hands it over). */
void qs__update_scripted(qs_req *r, json_t *body);

/* ---- handlers (one prototype per routes.def row) ----------------------------------------- */
#define QS_ROUTE(id, m, p, h, big) void h(qs_req *r);
#include "routes.def"
#undef QS_ROUTE

/* ---- multipart/form-data (multipart.c) -------------------------------------------------- */

typedef struct qs_part {
  const char *name;      /* form field name (NUL-terminated, in the parser's copy) */
  const char *filename;  /* NULL when absent */
  const char *type;      /* Content-Type of the part, NULL when absent */
  const uint8_t *data;   /* borrowed from the body */
  size_t len;
} qs_part;

#define QS_PARTS_MAX 8
/* Split BODY (LEN bytes) of Content-Type CTYPE into at most QS_PARTS_MAX parts. Names, file
** names and types are copied into ARENA; data points into BODY. Errors: QB_MALFORMED with the
** rule broken ("multipart: no boundary in content-type"). */
qb_code qs__multipart_parse(const char *ctype, const uint8_t *body, size_t len, qb_arena *arena,
                            qs_part *parts, size_t *nparts, qb_err *err);

/* ---- metrics (metrics.c) ------------------------------------------------------------------ */

void qs__metrics_http(qs_server *s, int route, int status);
void qs__metrics_search(qs_server *s, uint64_t ns, int ok);

/* ---- scroll and point in time (h_scroll.c) ------------------------------------------------ */

/* The _search hook: a ?scroll= or "pit" search over BODY/LEN (the body after the URL's
** parameters); 1 when it answered R, 0 for an ordinary search. */
int qs__view_search(qs_req *r, const char *body, size_t len);
/* Forget the contexts past their keep_alive (the refresher, once a refresh interval). */
void qs__ctxs_sweep(qs_server *s);
/* Release every context (qs_server_free, before the node closes). */
void qs__ctxs_free(qs_server *s);

/* Free a buffer jansson allocated for us (json_dumps) with the function jansson allocates with:
** qb_sized_free once a program installed it (json_set_alloc_funcs, base.h), free() before. */
static inline void qs__json_free(void *p) {
  json_free_t f;
  json_get_alloc_funcs(NULL, &f);
  f(p);
}

/* h_settings.c: the dynamic index settings (refresh_interval, max_result_window,
** number_of_replicas). qs__setting_dynamic: 1 when PATH ("index.x") is one and V a good value,
** 0 after a 400 naming it, -1 when it is none of them (for the creation checks). */
int qs__setting_dynamic(qs_req *r, const char *path, const json_t *v);
/* IX's refresh interval in ms (-1: periodic refresh disabled); *GIVEN 0 when unset (the
** server's interval applies). */
int64_t qs__index_refresh_ms(qi_index *ix, int *given);
/* IX's index.max_result_window; 0 when unset (10000). */
uint32_t qs__index_max_window(qi_index *ix);
/* ENV->max_result_window lowered to the smallest set by T's local shards' or INDEX's index. */
void qs__env_window(qs_server *s, const qc_shards *t, qq_env *env);
void qs__env_window_named(qs_server *s, const char *index, qq_env *env);
/* The settings as GET shows them: scalar settings as strings under "index". */
void qs__settings_normalize(json_t *settings);
/* h_manage.c: the index names of a path's {index} (NULL: all) as a JSON array; NULL after a
** reply. */
json_t *qs__manage_index_names(qs_req *r, const char *spec);
/* server.c: the refresher looks at the dirty indexes' intervals again now. */
void qs__refresher_kick(qs_server *s);

#endif
