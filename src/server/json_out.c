/* json_out.c: the server's JSON text for responses is the query layer's writer
** (src/query/json_write.c: numbers as the client wrote them, jansson's layout, raw _source and
** text hits copied as they are), so the hits the query layer writes as text and every other
** response come from one function. */
#include "internal.h"

qb_code qs__json_write(const json_t *j, int pretty, qb_buf *out, qb_err *err) {
  return qq_json_write(j, pretty, out, err);
}
