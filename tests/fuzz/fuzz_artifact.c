/* fuzz_artifact.c: byte strings as native artifacts (the container AOT uploads and cache entries
** share, src/udf/artifact.c). Any input must parse or give a clear error: no crash, no read past
** the input, no leak. An input that parses must describe itself exactly: writing the parsed
** fields back gives the same bytes; and it goes through the node's target check (the CPU
** feature list is parsed there) against a fixed x86_64 node. Seeded with a real container
** (tests/fuzz/corpus/artifact/: a clang-19 x86_64 object of custom_score in a container, and
** the AOT artifacts `qwasm compile` writes of custom_score for x86_64-linux and aarch64-linux).
** The object inside is not loaded here: a node loads one only after its signature (or, for
** the cache, its checksum) verified, so the LLVM object loader never sees a mutated input.
** A mutated input almost never keeps a valid checksum, so each input is tried twice: as is,
** and with its checksum fixed up, so the fields behind the checksum get fuzzed too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "udf.h"

static void one(const uint8_t *data, size_t size) {
  qu_artifact a;
  qb_err err = {0};
  qb_code rc = qu_artifact_parse(data, size, &a, &err);
  if (rc) {
    if (rc != QB_MALFORMED && rc != QB_CORRUPT) abort(); /* the two documented codes */
    if (!err.msg[0]) abort();
    return;
  }
  if (a.object != data + QU_ARTIFACT_HEADER || a.object_len != size - QU_ARTIFACT_HEADER) abort();
  if (strlen(a.triple) >= sizeof a.triple || strlen(a.cpu_features) >= sizeof a.cpu_features)
    abort();
  qb_buf again;
  qb_buf_init(&again);
  if (qu_artifact_write(&a, &again, &err) || again.len != size || memcmp(again.data, data, size))
    abort();
  qb_buf_fini(&again);
  static const char *const nodes[][2] = {
      {"x86_64-linux", "+sse2,+avx2,+fma"}, {"x86_64-linux", ""}, {"aarch64-linux", "+neon"}};
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    qu__key k;
    memcpy(k.module_sha256, a.module_sha256, 32);
    k.abi_version = a.abi_version;
    k.triple = nodes[i][0];
    k.cpu_features = nodes[i][1];
    rc = qu__artifact_match(&a, &k, &err);
    if (rc != QB_OK && rc != QB_CONFLICT) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size);
  if (size < QU_ARTIFACT_HEADER || size > QU_ARTIFACT_HEADER + (1u << 20)) return 0;
  uint8_t *fixed = malloc(size);
  if (!fixed) return 0;
  memcpy(fixed, data, size);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, fixed, 160);
  crypto_hash_sha256_update(&st, fixed + QU_ARTIFACT_HEADER, size - QU_ARTIFACT_HEADER);
  crypto_hash_sha256_final(&st, fixed + 160);
  one(fixed, size);
  free(fixed);
  return 0;
}
