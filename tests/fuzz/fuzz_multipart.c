/* fuzz_multipart.c: multipart/form-data bodies of PUT /_udf/{name} -> qs__multipart_parse. The
** input's first line is the Content-Type header value (so boundaries are fuzzed too), the rest
** the body, copied to a buffer of exactly its size so ASan sees any read past the end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size < 300 ? size : 300);
  char ctype[301];
  size_t cl = nl ? (size_t)(nl - data) : 0;
  memcpy(ctype, data, cl);
  ctype[cl] = 0;
  if (!nl) snprintf(ctype, sizeof ctype, "multipart/form-data; boundary=XyZ");
  size_t off = nl ? cl + 1 : 0, len = size - off;
  uint8_t *body = malloc(len ? len : 1);
  if (!body) return 0;
  memcpy(body, data + off, len);
  qb_arena a;
  qb_arena_init(&a);
  qs_part parts[QS_PARTS_MAX];
  size_t n = 0;
  qb_err err;
  if (qs__multipart_parse(ctype, body, len, &a, parts, &n, &err) == QB_OK) {
    for (size_t i = 0; i < n; i++) /* touch every byte the parser says is ours */
      for (size_t k = 0; k < parts[i].len; k++) (void)((const volatile uint8_t *)parts[i].data)[k];
  }
  qb_arena_fini(&a);
  free(body);
  return 0;
}
