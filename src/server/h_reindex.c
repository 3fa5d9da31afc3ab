/* h_reindex.c (stub until written) */
#include "internal.h"
void qs__h_reindex(qs_req *r) { qs__reply_error(r, 400, "illegal_argument_exception", "[_reindex] is not served yet"); }
void qs__h_update_by_query(qs_req *r) { qs__reply_error(r, 400, "illegal_argument_exception", "[_update_by_query] is not served yet"); }
void qs__h_explain(qs_req *r) { qs__reply_error(r, 400, "illegal_argument_exception", "[_explain] is not served yet"); }
