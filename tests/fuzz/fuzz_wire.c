/* fuzz_wire.c: binary shard partials as a coordinator reads them from the network (wire.c,
** src/cluster): any bytes decode to a tree or QB_CORRUPT/QB_NOMEM, never a crash, leak or
** sanitizer report; a tree that decodes encodes back to bytes that decode to an equal tree,
** and reading it as a partial (qq_partial_from_json_take) and rendering it as one shard's
** answer to `{}` gives a response or an error. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *j = NULL;
  qb_err err;
  qb_code rc = qc_wire_decode(data, size, &j, &err);
  if (rc) {
    if (j || (rc != QB_CORRUPT && rc != QB_NOMEM)) abort();
    return 0;
  }
  qb_buf b;
  qb_buf_init(&b);
  json_t *again = NULL;
  if (qc_wire_encode(j, &b, &err) || qc_wire_decode(b.data, b.len, &again, &err) ||
      !json_equal(j, again))
    abort();
  json_decref(again);
  qb_buf_fini(&b);
  qq_request *req = NULL;
  qq_partial *p = NULL;
  if (qq_request_parse(NULL, "{}", 2, 0, &req, &err) != QB_OK) {
    json_decref(j);
    return 0;
  }
  if (qq_partial_from_json_take(j, &p, &err) == QB_OK) { /* J is taken either way */
    json_t *out = NULL;
    if (qq_response_render(req, &p, 1, 1, &out, &err) == QB_OK) json_decref(out);
    qq_partial_free(p);
  }
  qq_request_free(req);
  return 0;
}
