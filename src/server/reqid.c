/* reqid.c: request ids (issue 13, logs). A request is known by the X-Opaque-Id its client sent
** (as Elasticsearch does: printable ASCII, cut to QS_RID_MAX - 1 bytes) or else by an id made
** here, "NODE-START-N" (the node's name, its start time in seconds as hex, a counter), unique
** across restarts without a syscall. The id is made only when something needs it: an error
** response (X-Request-Id), a log line written while the request runs (the thread's log tag,
** base.h), so a request that succeeds quietly costs one header lookup.
** Invariant: only the thread that owns the request (its handler's, then MHD's after the
** hand-back) reads or makes its id. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *qs__req_id(qs_req *r) {
  if (r->rid[0]) return r->rid;
  const char *o = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Opaque-Id");
  size_t w = 0;
  for (const unsigned char *p = (const unsigned char *)(o ? o : ""); *p && w + 1 < QS_RID_MAX; p++)
    if (*p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\') r->rid[w++] = (char)*p;
  r->rid[w] = 0;
  if (w) {
    r->rid_from_client = 1;
    return r->rid;
  }
  qs_server *s = r->srv;
  uint64_t n = __atomic_add_fetch(&s->rid_next, 1, __ATOMIC_RELAXED);
  snprintf(r->rid, QS_RID_MAX, "%.40s-%llx-%llu", s->node_name,
           (unsigned long long)(s->started_ms / 1000), (unsigned long long)n);
  return r->rid;
}

static const char *tag(void *arg) { return qs__req_id(arg); }

void qs__req_tag(qs_req *r) {
  if (r) qb_log_set_tag(tag, r);
  else qb_log_set_tag(NULL, NULL);
  qc_fanout_request_id(r ? tag : NULL, r); /* the data nodes log it too (X-Opaque-Id) */
}
