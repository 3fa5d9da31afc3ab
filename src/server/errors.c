/* errors.c: the one table from qb_code to HTTP status and Elasticsearch error type, and the
** replies built on it. Every handler answers a qb_err through here (qs__reply_err), and the
** query layer gets the type names for `_shards.failures` from here (qq_env.error_type), so no
** other layer knows an HTTP status. Invariant: every qb_code has exactly one row (checked at
** compile time), and a code whose status is 500 is ours to look at, so its reply is logged
** at ERROR; the line names the request (its id: reqid.c), as the reply's X-Request-Id does.
**
** The type depends on the code only, with one exception written in the table: the UDF routes
** (/_udf...) answer a module that does not decode, validate or link as illegal_argument_exception
** (it is an argument of the deploy) and a missing UDF as resource_not_found_exception. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* X(code, status, type, type on the UDF routes or NULL for the same) */
#define QS_ERRORS(X)                                                                              \
  /* an error reply without an error is our bug */                                               \
  X(OK, 500, "exception", NULL)                                                                   \
  X(NOMEM, 429, "circuit_breaking_exception", NULL)                                               \
  X(INVAL, 400, "illegal_argument_exception", NULL)                                               \
  /* unknown query, key or aggregation; on /_udf, a wasm module that does not decode */          \
  X(MALFORMED, 400, "parsing_exception", "illegal_argument_exception")                            \
  /* a script that does not compile; on /_udf, a module that does not validate */                \
  X(INVALID, 400, "script_exception", "illegal_argument_exception")                               \
  X(TRAP, 400, "script_exception", NULL)                                                          \
  X(LIMIT, 400, "script_exception", NULL)                                                         \
  X(NOTFOUND, 404, "index_not_found_exception", "resource_not_found_exception")                   \
  X(CONFLICT, 409, "version_conflict_engine_exception", NULL)                                     \
  X(IO, 500, "exception", NULL)                                                                   \
  /* a store, segment, registry or shard result of ours is damaged: not the client's fault */   \
  X(CORRUPT, 500, "exception", NULL)                                                              \
  X(UNAVAILABLE, 503, "unavailable_shards_exception", NULL)                                       \
  X(INTERNAL, 500, "exception", NULL)                                                             \
  /* a UDF whose imports cannot be provided */                                                   \
  X(UNLINKABLE, 400, "script_exception", "illegal_argument_exception")                            \
  X(EXHAUSTED, 429, "circuit_breaking_exception", NULL)                                           \
  /* the body (or a part of it) is not JSON: Elasticsearch's XContentParseException */           \
  X(PARSE, 400, "x_content_parse_exception", NULL)                                                \
  /* query_string / ?q= syntax: Elasticsearch's QueryShardException around a ParseException */   \
  X(SYNTAX, 400, "query_shard_exception", NULL)

typedef struct row {
  int status;
  const char *type;
  const char *udf_type;
} row;

enum {
#define QS__X(c, s, t, u) ROW_##c,
  QS_ERRORS(QS__X)
#undef QS__X
  ROW_COUNT
};
_Static_assert((int)ROW_COUNT == (int)QB_CODE_COUNT, "errors.c: every qb_code needs one row in QS_ERRORS");

/* Indexed by code, so a row can be neither missing (the assert) nor misplaced. */
static const row rows[QB_CODE_COUNT] = {
#define QS__X(c, s, t, u) [QB_##c] = {s, t, u},
    QS_ERRORS(QS__X)
#undef QS__X
};

static int udf_route(int route) {
  return route >= 0 && route < QS_ROUTE_COUNT && !strncmp(qs__routes[route].pattern, "/_udf", 5);
}

qs_error qs__error_for(qb_code code, int route) {
  const row *w = &rows[(unsigned)code < QB_CODE_COUNT ? code : QB_INTERNAL];
  qs_error e = {w->status, w->type};
  if (w->udf_type && udf_route(route)) e.type = w->udf_type;
  return e;
}

const char *qs__error_type(qb_code code) { return qs__error_for(code, -1).type; }

static void reply(qs_req *r, qb_code code, const char *reason) {
  qs_error e = qs__error_for(code, r->route);
  if (e.status == 500)
    qb_log(QB_ERROR, "%s %s: %s: %s", r->method ? r->method : "?", r->path ? r->path : "?",
           qb_code_name(code), reason);
  qs__reply_json(r, e.status, qs__error_json(e.status, e.type, reason));
}

void qs__reply_err(qs_req *r, const qb_err *err) {
  qb_code code = err ? err->code : QB_INTERNAL;
  reply(r, code, err && err->msg[0] ? err->msg : qb_code_name(code));
}

void qs__reply_code(qs_req *r, qb_code code, const char *fmt, ...) {
  char reason[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  reply(r, code, reason);
}
