/* h_analyze.c: GET|POST /_analyze and /{index}/_analyze (Elasticsearch's analyze API) through
** qi_index_analyze. Without an index only the built-in analyzers are known; a cluster
** coordinator serves /_analyze itself and refuses /{index}/_analyze with a 400 naming it (the
** index's analyzers live on its data nodes). */
#include "internal.h"

void qs__h_analyze(qs_req *r) {
  qi_index *ix = NULL;
  qb_buf out;
  qb_err err;
  qb_code rc;
  if (r->ncaps) {
    if (qc_node_routes(r->srv->node))
      return qs__reply_error(r, 400, "illegal_argument_exception",
                             "[%s %s] is not served by a cluster coordinator yet: use /_analyze "
                             "with a built-in analyzer, or ask a data node", r->method, r->path);
    if (!(ix = qs__index_open(r, r->caps[0], 0))) return;
  }
  if (!r->body_len) {
    qi_index_release(ix);
    return qs__reply_error(r, 400, "parse_exception", "request body or source parameter is required");
  }
  qb_buf_init(&out);
  qb_err_clear(&err);
  rc = qi_index_analyze(ix, r->body, r->body_len, &out, &err);
  qi_index_release(ix);
  if (rc) {
    qb_buf_fini(&out);
    if (rc == QB_MALFORMED) return qs__reply_error(r, 400, "x_content_parse_exception", "%s", err.msg);
    return qs__reply_err(r, &err);
  }
  qs__reply_text(r, 200, "application/json", out.data, out.len);
  qb_buf_fini(&out);
}
