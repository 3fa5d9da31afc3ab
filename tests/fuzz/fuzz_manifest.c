/* fuzz_manifest.c: UDF manifests (JSON from a deploy) -> qu_manifest_parse, and when it parses,
** a check against a real module (a score export f64(f64,f64) and qd_alloc). Any byte string
** must give a manifest or QB_INVAL with a message: no crash, no leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "udf.h"
#include "wasm.h"

/* (module (memory (export "memory") 1) (func (export "custom_score") (param f64 f64) (result f64)
**   local.get 0 local.get 1 f64.mul) (func (export "qd_alloc") (param i32) (result i32) i32.const 16)) */
static const uint8_t mod_bytes[] = { /* wat2wasm of the text above */
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x02, 0x60, 0x02, 0x7c, 0x7c,
    0x01, 0x7c, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x03, 0x03, 0x02, 0x00, 0x01, 0x05, 0x03, 0x01,
    0x00, 0x01, 0x07, 0x24, 0x03, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x0c,
    0x63, 0x75, 0x73, 0x74, 0x6f, 0x6d, 0x5f, 0x73, 0x63, 0x6f, 0x72, 0x65, 0x00, 0x00, 0x08,
    0x71, 0x64, 0x5f, 0x61, 0x6c, 0x6c, 0x6f, 0x63, 0x00, 0x01, 0x0a, 0x0e, 0x02, 0x07, 0x00,
    0x20, 0x00, 0x20, 0x01, 0xa2, 0x0b, 0x04, 0x00, 0x41, 0x10, 0x0b};

static qw_engine *eng;
static qw_module *mod;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qb_err err;
  if (!eng) {
    if (qw_engine_new(NULL, &eng, &err) ||
        qw_module_load(eng, mod_bytes, sizeof mod_bytes, &mod, &err)) {
      fprintf(stderr, "fuzz_manifest: setup: %s\n", err.msg);
      abort();
    }
  }
  qu_manifest *m = NULL;
  qb_code rc = qu_manifest_parse((const char *)data, size, &m, &err);
  if (rc == QB_OK) {
    (void)qu_manifest_check(m, mod, &err);
    qu_manifest_free(m);
  } else if (m || !err.msg[0]) {
    fprintf(stderr, "fuzz_manifest: failure %d without a message\n", (int)rc);
    abort();
  }
  m = NULL;
  if (qu_manifest_complete((const char *)data, size, "custom_score", mod, &m, &err) == QB_OK)
    qu_manifest_free(m);
  return 0;
}
