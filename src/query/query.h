/* query.h: the query layer's public surface. An Elasticsearch `_search` body (JSON) becomes a
** parse tree, then a plan per shard, then a mergeable partial result per shard, then the
** `_search` response. Also the script plug-in point (qq_script_provider / qq_script) through
** which expressions and WebAssembly UDFs (bound by the server, src/server/udf_script.c) score,
** filter, transform and aggregate blocks of documents. The layer knows nothing of HTTP, the
** cluster or WebAssembly.
**
** Pipeline (docs/query.md):
**   qq_request_parse   body -> qq_request (parse tree, scripts resolved+compiled; shard-free)
**   qq_shard_search    qq_request x one shard snapshot -> qq_partial (top-k with sort values,
**                      total hits, partial aggregations) -- the data-node half
**   qq_response_render qq_request x partials[] -> the `_search` response -- the coordinator half
**   qq_search          the three above for local snapshots, in one call
**
** Errors: every call returns a qb_code and fills a qb_err; the server maps the code to an HTTP
** status and Elasticsearch type (src/server/errors.c). The layer knows no HTTP status.
**
** Threads: a qq_request is used by one thread at a time; qq_shard_search may run for different
** shards of one request one after the other, not concurrently (scripts are per request).
** Partials are independent objects and may be built on different threads from *different*
** qq_request objects parsed from the same body (what a data node does per shard request). */
#ifndef QQ_QUERY_H
#define QQ_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "index.h"

/* jansson's json_t, without including jansson.h here (the server and tests include it). */
struct json_t;

/* Documents per block: scripts and vector expressions see at most this many docs per call. */
#define QQ_BLOCK_MAX 256

/* ==== the script plug-in point =============================================================== */

/* What a script is used for. The same source may be resolved for several kinds. */
typedef enum qq_script_kind {
  QQ_SCRIPT_SCORE,     /* function_score.script_score, script_score query: f64 per doc */
  QQ_SCRIPT_FILTER,    /* script query (bool.filter): keep mask per doc */
  QQ_SCRIPT_TRANSFORM, /* script_fields: f64 or string per doc */
  QQ_SCRIPT_METRIC     /* metric aggregation `script`: f64 per doc */
} qq_script_kind;

/* Field types, as the shard's mapping declares them (DESIGN §6). */
typedef enum qq_field_type {
  QQ_FIELD_NONE = 0, /* not mapped */
  QQ_FIELD_TEXT,     /* analyzed, no doc values */
  QQ_FIELD_KEYWORD,
  QQ_FIELD_LONG,
  QQ_FIELD_INTEGER,
  QQ_FIELD_DOUBLE,
  QQ_FIELD_FLOAT,
  QQ_FIELD_BOOLEAN,
  QQ_FIELD_DATE /* milliseconds since the epoch, as i64 */
} qq_field_type;

/* Column element types a script may ask for. */
typedef enum qq_col_type {
  QQ_COL_F64, /* numeric fields converted to double; booleans 0/1; dates in ms */
  QQ_COL_I64, /* numeric fields truncated toward zero; booleans 0/1; dates in ms */
  QQ_COL_STR  /* keyword fields (bytes, not NUL-terminated) */
} qq_col_type;

/* A string: LEN bytes at PTR (not NUL-terminated). PTR is NULL for "no value". */
typedef struct qq_str {
  const char *ptr;
  size_t len;
} qq_str;

/* Where an argument column's values come from. */
typedef enum qq_arg_kind {
  QQ_ARG_FIELD, /* the doc value of FIELD for each doc (first value when multi-valued) */
  QQ_ARG_SCORE, /* the doc's _score as computed so far (f64; 0 where there is no scoring) */
  QQ_ARG_CONST, /* one value for every doc, filled once, never refilled */
  QQ_ARG_DOCID, /* the doc's number in the shard snapshot (segment base + doc; i64 or f64) */
  QQ_ARG_SOURCE /* FIELD (a dotted path) as each doc's stored _source holds it (first value of an
                ** array; strings for QQ_COL_STR, numbers for the others): for text fields,
                ** which have no doc values. One store read and JSON parse per document. */
} qq_arg_kind;

/* One argument column a script needs, declared by qq_script_vtable.bind. */
typedef struct qq_arg {
  qq_arg_kind kind;
  qq_col_type type;   /* wanted element type; the query layer converts */
  const char *field;  /* QQ_ARG_FIELD: field name; owned by the script, valid until its free */
  int has_missing;    /* QQ_ARG_FIELD: 1 = docs without a value get MISSING_* (present = 0) */
  double missing_f64; /* values used for docs without a value (and QQ_ARG_CONST's value): */
  int64_t missing_i64;   /* 0 / 0 / {NULL,0} unless has_missing (or CONST) says otherwise */
  qq_str missing_str;    /* bytes owned by the script */
} qq_arg;

#define QQ_BIND_MAX_ARGS 32

/* Result element type of a TRANSFORM script (others always give f64 / keep). */
typedef enum qq_result_type { QQ_RESULT_F64, QQ_RESULT_STR } qq_result_type;

/* Filled in by bind. The query layer zeroes it before the call. */
typedef struct qq_bind {
  size_t nargs;                    /* 0..QQ_BIND_MAX_ARGS */
  qq_arg args[QQ_BIND_MAX_ARGS];   /* block columns, in this order, in qq_block.cols */
  qq_result_type result;           /* TRANSFORM only */
} qq_bind;

/* What a script can know about the shard it is bound to. Valid during bind only. */
typedef struct qq_shard_info {
  const char *index_name; /* may be "" */
  uint32_t shard_id;
  uint64_t doc_count;     /* live documents */
  /* The mapped type of FIELD in this shard (QQ_FIELD_NONE when unmapped). */
  qq_field_type (*field_type)(const struct qq_shard_info *info, const char *field);
  const void *impl;       /* for field_type; do not touch */
} qq_shard_info;

/* One column of a block. Exactly one of f64/i64/str is set, per qq_arg.type. */
typedef struct qq_col {
  qq_col_type type;
  const double *f64;       /* n values; missing ones hold the arg's missing value (default 0) */
  const int64_t *i64;
  const qq_str *str;
  const uint8_t *present;  /* n bytes: 1 = the doc has a value, 0 = missing; never NULL */
} qq_col;

/* The input of one run: N documents of one segment (ascending doc numbers) with their columns.
** Everything is borrowed for the duration of the call. */
typedef struct qq_block {
  size_t n;                /* 1..QQ_BLOCK_MAX */
  const uint32_t *doc_ids; /* segment-local doc numbers (informative; use QQ_ARG_DOCID to key) */
  const double *score;     /* current _score per doc (0 when the context does not score) */
  size_t ncols;            /* == bind's nargs */
  const qq_col *cols;
} qq_block;

/* The output of one run: the query layer provides arrays of QQ_BLOCK_MAX entries; the script
** fills the first n of the one its kind uses. */
typedef struct qq_result_block {
  double *f64;    /* SCORE, METRIC, TRANSFORM with QQ_RESULT_F64 */
  uint8_t *keep;  /* FILTER: non-zero keeps the doc */
  qq_str *str;    /* TRANSFORM with QQ_RESULT_STR: bytes owned by the script, valid until its
                  ** next run or free; {NULL,0} gives a null value */
  uint8_t *present; /* METRIC, TRANSFORM: 0 = no value for this doc (skipped by the metric /
                  ** null in script_fields); the query layer sets all to 1 before the call */
} qq_result_block;

typedef struct qq_script qq_script;

/* The vtable every script implementation provides. */
typedef struct qq_script_vtable {
  /* Declare the argument columns (OUT, zeroed by the caller) for the shard INFO. Called once
  ** per shard, before the first run on that shard (not at all when no document of the shard
  ** reaches the script); called again for the next shard.
  ** Errors: QB_INVAL (e.g. a field of the wrong type: the request fails with
  ** illegal_argument_exception), QB_INVALID (script_exception), QB_NOMEM. */
  qb_code (*bind)(qq_script *s, const qq_shard_info *info, qq_bind *out, qb_err *err);
  /* Compute the results for the docs of IN into OUT (see qq_result_block). Must not keep IN's
  ** pointers. Errors: QB_TRAP (the script failed: reason names the script and the cause),
  ** QB_LIMIT (ran out of its budget); both fail the request with script_exception. */
  qb_code (*run)(qq_script *s, const qq_block *in, qq_result_block *out, qb_err *err);
  /* Release the script; NULL does nothing. */
  void (*free)(qq_script *s);
} qq_script_vtable;

/* A resolved script: implementations embed this as their first member. One request, one
** thread at a time. */
struct qq_script {
  const qq_script_vtable *vt;
  const char *name;  /* for error messages ("custom_score v3"); owned by the script */
};

/* A source of scripts other than expressions (the UDF layer's adapter, tests). */
typedef struct qq_script_provider qq_script_provider;
struct qq_script_provider {
  /* Resolve SOURCE for KIND. LANG is the script's "lang" (NULL when absent). PARAMS is the
  ** script's "params" object (or NULL); REQUEST_CONTEXT the request's top-level "context"
  ** object (or NULL); both are borrowed for the call only (copy what you keep). On success
  ** *OUT is a new script owned by the query layer (freed through its vtable at the end of the
  ** request). Return QB_NOTFOUND (without a message) when SOURCE is not one of yours: the
  ** query layer then compiles it as an expression, unless LANG is "wasm" (then the request
  ** fails: script_exception "unknown udf [SOURCE]"). Other errors fail the request: QB_INVAL
  ** -> illegal_argument_exception (bad params), QB_INVALID/QB_TRAP/QB_LIMIT ->
  ** script_exception. Called from the request's thread. */
  qb_code (*resolve)(qq_script_provider *p, const char *source, const char *lang,
                     qq_script_kind kind, const struct json_t *params,
                     const struct json_t *request_context, qq_script **out, qb_err *err);
  void *ud; /* for the provider */
};

/* ---- expressions (the built-in script implementation) ---------------------------------------- */

/* Compile SOURCE (an expression, docs/query.md) for KIND with PARAMS (an object or NULL;
** numeric and boolean values are folded in as constants). *OUT is owned by the caller (free
** it with (*out)->vt->free). Errors: QB_INVALID with "<reason> at position N" (script_exception),
** QB_NOMEM. */
qb_code qq_expr_compile(const char *source, qq_script_kind kind, const struct json_t *params,
                        qq_script **out, qb_err *err);

/* For benchmarks and tests: disassembly of a compiled expression's vector program into BUF. */
qb_code qq_expr_disasm(const qq_script *s, qb_buf *buf);

/* ==== requests, shard partials, responses ===================================================== */

/* Filter one document's *SRC (owned; replaced, or set to NULL for false) by an Elasticsearch
** `_source` SPEC: true/NULL (all), false (none), a pattern or an array of patterns (includes),
** or {"includes": ..., "excludes": ...}; patterns are dotted paths with `*`, as in a search.
** For GET _doc and _mget items. QB_MALFORMED names a bad SPEC. */
qb_code qq_source_apply(const struct json_t *spec, struct json_t **src, qb_err *err);

typedef struct qq_env {
  qq_script_provider *scripts; /* NULL: expressions only */
  size_t arena_limit_bytes;    /* per request; 0 = 512 MiB */
  uint32_t max_result_window;  /* from + size limit; 0 = 10000 (as index.max_result_window) */
  /* The Elasticsearch type of a failed shard's code, for `_shards.failures[].reason.type` (the
  ** server's table); NULL: "exception". */
  const char *(*error_type)(qb_code code);
  /* script_fields results (issue 13 #4): a string value longer than SCRIPT_VALUE_MAX bytes fails
  ** the request (QB_LIMIT naming the field and _id); string values of one shard's response
  ** adding up to more than SCRIPT_RESPONSE_MAX trip the request breaker (QB_NOMEM). 0 = 1 MiB
  ** and 64 MiB. */
  size_t script_value_max;
  size_t script_response_max;
  /* 1: the request searches a point in time or a scroll's pinned view, where the `_shard_doc`
  ** sort (Elasticsearch's PIT tiebreaker) is allowed; 0: it is refused */
  int pinned_view;
} qq_env;

typedef struct qq_request qq_request;
typedef struct qq_partial qq_partial;

/* Parse the `_search` (or `_count` when FOR_COUNT) body BODY/LEN (not kept; LEN == 0 means an
** empty body = match_all) and resolve its scripts through ENV (ENV is borrowed for the life of
** the request). *OUT: free with qq_request_free. Errors: QB_PARSE (not JSON, or not an
** object), QB_MALFORMED (unknown query, key or aggregation, wrong shape), QB_INVAL (a bad
** value), QB_INVALID/QB_TRAP (a script does not compile or failed), QB_NOMEM. */
qb_code qq_request_parse(const qq_env *env, const char *body, size_t len, int for_count,
                         qq_request **out, qb_err *err);
void qq_request_free(qq_request *req);

/* External term statistics (search_type=dfs_query_then_fetch): when a request has them, BM25
** asks them for each scored field's statistics and each term's document frequency, handing
** in the shard's own values, and uses what they leave there. So a collector can record what a
** shard has (phase one) and a coordinator's global sums can replace them (phase two): scores
** then equal those of one shard holding every document. A term absent from a segment is still
** asked about (with the shard's values), so a shard contributes every field the query scores.
** Called on the thread running qq_shard_search; borrowed while REQ lives. */
typedef struct qq_term_stats {
  void *ud;
  void (*field)(void *ud, const char *field, qi_field_stats *io);
  void (*term)(void *ud, const char *field, const char *term, size_t len, uint64_t *doc_freq);
} qq_term_stats;
/* Use TS (NULL: the shard's own statistics, the default) in REQ's next shard searches. */
void qq_request_set_term_stats(qq_request *req, const qq_term_stats *ts);

/* Raw _source (issue 14): after this call, REQ's shard searches may give a hit's whole
** `_source` (no filtering, no highlight) as a JSON string whose value is QQ_RAW_JSON followed
** by the stored text, when that text is checked to be exactly what the server's compact JSON
** writer would print for its tree (qq_json_canonical): the writer then copies it as it is,
** not parsing and printing it. Only for a response written compactly as rendered (not pretty,
** not read back by anyone: explain, scroll and cluster partials do not use it). Damaged text
** is never raw: it fails the shard as before. */
void qq_request_raw_source(qq_request *req);
/* Hits as text (issue 14): after this call (and qq_request_raw_source), REQ's shard searches
** on this process may give a plain hit (no highlight, script_fields, collapse or sort values;
** _source whole or none) as a JSON string whose value is QQ_RAW_JSON followed by the whole hit's
** text as the compact writer prints it (its _score and _doc kept beside it for the merge): no
** tree is built for it, freed or walked; qq_response_render then gives the whole response as
** one such string when no shard failed and there are no aggregations or collapse. Only for
** partials that qq_response_render merges here and a response the compact writer prints
** (qq_partial_to_json turns such hits back into objects). */
void qq_request_hits_text(qq_request *req);
/* 1 after qq_request_raw_source(REQ): a coordinator asks its shards for raw _source too. */
int qq_request_raw_source_on(const qq_request *req);
#define QQ_RAW_JSON "\xff\x00qq-raw" /* 8 bytes no JSON text's string holds (0xff is not UTF-8) */
#define QQ_RAW_JSON_LEN 8
/* 1 when TEXT (LEN bytes) is a JSON object that json_loadb reads and the server's compact
** writer (qq_json_write) prints back byte for byte: no whitespace, no duplicate key,
** escapes only \" \\ \n \r \t \b \f, valid UTF-8, integers in int64 without "-0", reals in
** their shortest form (qb_real_text), at most 64 levels and 256 open keys. 0 otherwise,
** including for every text that is not JSON. */
int qq_json_canonical(const char *text, size_t len);

/* J as JSON text appended to OUT: compact (no spaces) or PRETTY (jansson's JSON_INDENT(2)),
** keys in insertion order, UTF-8 passed through, every real in its shortest form (qb_real_text)
** and every integer as "%lld"; a QQ_RAW_JSON string is copied as it is when compact (it is
** laid out when pretty). The server writes all its responses with it (json_out.c).
** Errors: QB_INVAL (J NULL), QB_LIMIT (nested past 4096 levels), QB_NOMEM. */
qb_code qq_json_write(const struct json_t *j, int pretty, qb_buf *out, qb_err *err);

/* The `_shard_doc` sort value of REQ's next shard searches is (IX << 32) | the doc's number in
** the snapshot: IX is the shard's position among the searched shards (default: the shard id). */
void qq_request_set_shard_index(qq_request *req, uint32_t ix);

/* Run REQ on one shard snapshot SNAP (borrowed during the call) of index INDEX_NAME, shard
** SHARD_ID. *OUT holds the shard's top from+size hits (doc ids, scores, sort values, their
** _source and fields already rendered), its total hit count and its partial aggregations;
** it is independent of SNAP afterwards. Free with qq_partial_free.
** Errors: QB_INVAL (a value does not fit the shard's mapping, e.g. a bad date for a date
** field, or a script's bind refused a field: the request's fault), QB_TRAP/QB_LIMIT (a script
** failed), QB_IO/QB_CORRUPT (the index, e.g. a stored _source that is not JSON), QB_NOMEM.
** The coordinator may turn a failed shard into a `_shards.failures` entry with
** qq_partial_failed (qq_search and the cluster do that for every shard error:
** Elasticsearch's policy, src/cluster/cluster.h). */
qb_code qq_shard_search(qq_request *req, const qi_snapshot *snap, const char *index_name,
                        uint32_t shard_id, qq_partial **out, qb_err *err);

/* A partial standing for a shard that failed with ERR (rendered in _shards.failures). */
qb_code qq_partial_failed(const char *index_name, uint32_t shard_id, const qb_err *err,
                          qq_partial **out, qb_err *err_out);
void qq_partial_free(qq_partial *p);

/* Serialise a partial (for the wire between data node and coordinator) and read it back. The
** JSON is an internal format (docs/query.md): both ends must run the same version. A partial
** read back is only checked for its shape; rendering a damaged one gives a wrong or failed
** response, never a crash. Reading back: QB_CORRUPT when J is not a partial (damaged on the
** way or by a peer: not the client's fault), QB_NOMEM. */
qb_code qq_partial_to_json(const qq_partial *p, struct json_t **out, qb_err *err);
qb_code qq_partial_from_json(const struct json_t *j, qq_partial **out, qb_err *err);
/* As qq_partial_to_json, handing over P's tree instead of copying it: P is freed, the caller
** owns the result (NULL when P is NULL). For a data node that answers with its partial. */
struct json_t *qq_partial_to_json_take(qq_partial *p);
/* As qq_partial_from_json, taking the caller's reference on J (also when it fails) instead of
** copying it: for a coordinator that parsed a shard's answer only to read it back. */
qb_code qq_partial_from_json_take(struct json_t *j, qq_partial **out, qb_err *err);

/* Merge PARTS (N, borrowed; the hits that make the page move into *OUT without their "_doc"
** keys: render a set of partials once, then free them) and render the `_search` response into
** *OUT (a new json_t the caller json_decrefs): took (TOOK_MS), timed_out, _shards, hits, aggregations. REQ must be
** parsed from the same body as the shards' requests (sort, paging, track_total_hits and the
** aggregation definitions come from it). When every shard failed, fails with the first shard's
** error instead. For a `_count` request, renders {"count", "_shards"}. Errors: QB_INVAL
** (too_many_buckets), QB_NOMEM, or the shards' error. */
qb_code qq_response_render(qq_request *req, qq_partial *const *parts, size_t n,
                           uint64_t took_ms, struct json_t **out, qb_err *err);
/* qq_response_render, but a response it would give as one text (qq_request_hits_text) is
** appended to TEXT as the compact writer would print it, and *OUT is then NULL: the server
** replies with TEXT as it is, not copying it into a string and out again. */
qb_code qq_response_render_text(qq_request *req, qq_partial *const *parts, size_t n,
                                uint64_t took_ms, qb_buf *text, struct json_t **out, qb_err *err);

/* Merge the partial aggregations of N shards into one partial of the same shape, for a
** coordinator that merges in stages (per node, then across nodes) or keeps a running merge.
** PARTS[i] (borrowed; NULL: skipped) is a shard partial's "aggs" object as qq_partial_to_json
** gives it (its shape: docs/query.md, "The partial result"); a merged partial can be merged
** again, and rendering a merge of merges equals rendering all the shards' partials at once.
** REQ gives the aggregation definitions (parse the body on the coordinator too). *OUT: a new
** object (json_decref it). Errors: QB_NOMEM. Any thread, one REQ at a time. */
qb_code qq_aggs_merge(const qq_request *req, const struct json_t *const *parts, size_t n,
                      struct json_t **out, qb_err *err);

/* All of the above for local snapshots: parse BODY, search each of SNAPS[0..N) (shard i has
** id i), merge, render into *OUT. */
qb_code qq_search(const qq_env *env, const char *index_name, const qi_snapshot *const *snaps,
                  size_t n, const char *body, size_t len, struct json_t **out, qb_err *err);
/* The `_count` API: {"count": N, "_shards": {...}} (BODY may hold only "query"). */
qb_code qq_count(const qq_env *env, const char *index_name, const qi_snapshot *const *snaps,
                 size_t n, const char *body, size_t len, struct json_t **out, qb_err *err);

#endif
