/* fuzz_partial.c: shard results as a coordinator reads them from the network (issue 13, "the
** shard-result JSON the cluster will parse"). The input's first line is the `_search` body the
** coordinator parsed (sort, paging and aggregation definitions come from it; a line that does
** not parse stands for {}); each later line is one shard's partial (qq_partial_to_json's
** shape). Partials are read back, rendered together into one response and their aggregations
** merged: any bytes give a response or an error, never a crash, leak or sanitizer report. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define MAX_PARTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  const char *nl = memchr(p, '\n', size);
  size_t blen = nl ? (size_t)(nl - p) : size;
  qq_request *req = NULL;
  qb_err err;
  if (qq_request_parse(NULL, p, blen, 0, &req, &err) != QB_OK &&
      qq_request_parse(NULL, "{}", 2, 0, &req, &err) != QB_OK)
    return 0;
  qq_partial *parts[MAX_PARTS];
  json_t *aggs[MAX_PARTS];
  size_t n = 0;
  p = nl ? nl + 1 : end;
  while (p < end && n < MAX_PARTS) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
    json_t *j = json_loadb(p, len, 0, NULL);
    p = e ? e + 1 : end;
    if (!j) continue;
    if (qq_partial_from_json(j, &parts[n], &err) == QB_OK) {
      aggs[n] = json_incref(json_object_get(j, "aggs"));
      n++;
    }
    json_decref(j);
  }
  json_t *out = NULL;
  if (n && qq_response_render(req, parts, n, 1, &out, &err) == QB_OK) json_decref(out);
  out = NULL;
  if (n && qq_aggs_merge(req, (const json_t *const *)aggs, n, &out, &err) == QB_OK)
    json_decref(out);
  for (size_t i = 0; i < n; i++) {
    qq_partial_free(parts[i]);
    json_decref(aggs[i]);
  }
  qq_request_free(req);
  return 0;
}
