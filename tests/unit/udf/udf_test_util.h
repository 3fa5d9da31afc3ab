/* udf_test_util.h: shared helpers of the udf unit tests (not a test itself: only test_*.c are
** tests). WAT text -> wasm bytes with wat2wasm at test time, an engine, and small manifest
** helpers. Tests call malloc/free freely (only src/ goes through qb_malloc). */
#ifndef UDF_TEST_UTIL_H
#define UDF_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "udf.h"

/* WAT -> wasm bytes (malloc'ed; *LEN set). Fails the test when wat2wasm fails. */
QB_UNUSED static uint8_t *wat(const char *text, size_t *len) {
  char dir[] = "/tmp/qu_watXXXXXX", in[64], out[64], cmd[256];
  FILE *f;
  uint8_t *bytes;
  long n;
  assert_non_null(mkdtemp(dir));
  snprintf(in, sizeof in, "%s/m.wat", dir);
  snprintf(out, sizeof out, "%s/m.wasm", dir);
  assert_non_null(f = fopen(in, "w"));
  fputs(text, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "wat2wasm --enable-all %s -o %s", in, out);
  assert_int_equal(system(cmd), 0);
  assert_non_null(f = fopen(out, "rb"));
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  assert_non_null(bytes = malloc((size_t)n + 1));
  assert_int_equal(fread(bytes, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  unlink(in);
  unlink(out);
  rmdir(dir);
  *len = (size_t)n;
  return bytes;
}

QB_UNUSED static qw_engine *engine_new(void) {
  qw_engine *e = NULL;
  qb_err err = {0};
  assert_int_equal(qw_engine_new(NULL, &e, &err), QB_OK);
  return e;
}

QB_UNUSED static qw_module *module_of(qw_engine *e, const char *text) {
  size_t len;
  uint8_t *b = wat(text, &len);
  qw_module *m = NULL;
  qb_err err = {0};
  if (qw_module_load(e, b, len, &m, &err)) fail_msg("module: %s", err.msg);
  free(b);
  return m;
}

QB_UNUSED static qu_manifest *manifest_of(const char *json) {
  qu_manifest *m = NULL;
  qb_err err = {0};
  if (qu_manifest_parse(json, strlen(json), &m, &err)) fail_msg("manifest: %s", err.msg);
  return m;
}

QB_UNUSED static json_t *json_of(const char *text) {
  json_error_t jerr;
  json_t *j = json_loads(text, 0, &jerr);
  if (!j) fail_msg("json: %s", jerr.text);
  return j;
}

/* The DESIGN §5 example UDF, as WAT: bm25 * boost / (1 + days / 365) * (tier == 1 ? 1.5 : 1) */
#define CUSTOM_SCORE_FUNC                                                                      \
  "  (func $score (export \"custom_score\") (param $bm25 f64) (param $boost f64)\n"             \
  "        (param $days i32) (param $tier i32) (result f64)\n"                                  \
  "    (f64.mul\n"                                                                              \
  "      (f64.div (f64.mul (local.get $bm25) (local.get $boost))\n"                             \
  "               (f64.add (f64.const 1)\n"                                                     \
  "                        (f64.div (f64.convert_i32_s (local.get $days)) (f64.const 365))))\n" \
  "      (select (f64.const 1.5) (f64.const 1)\n"                                               \
  "              (i32.eq (local.get $tier) (i32.const 1)))))\n"

static const char custom_score_wat[] = "(module\n" CUSTOM_SCORE_FUNC ")\n";

QB_UNUSED static double custom_score_c(double bm25, double boost, int32_t days, int32_t tier) {
  return bm25 * boost / (1 + (double)days / 365) * (tier == 1 ? 1.5 : 1);
}

static const char custom_score_manifest[] =
    "{\"name\": \"custom_score\", \"export\": \"custom_score\", \"kind\": \"score\","
    " \"description\": \"recency and tier boosts\","
    " \"params\": [{\"name\": \"bm25_score\", \"type\": \"f64\", \"default\": \"_score\"},"
    "              {\"name\": \"boost_factor\", \"type\": \"f64\"},"
    "              {\"name\": \"recency_days\", \"type\": \"i32\", \"missing\": 365},"
    "              {\"name\": \"user_tier\", \"type\": \"i32\", \"default\": 3}],"
    " \"returns\": \"f64\"}";

/* A bump allocator as the SDK provides it (qd_alloc/qd_reset), for string UDFs in WAT. */
#define QD_ALLOC_WAT                                                                           \
  "  (memory (export \"memory\") 1)\n"                                                         \
  "  (global $heap (mut i32) (i32.const 1024))\n"                                              \
  "  (func $qd_alloc (export \"qd_alloc\") (param $n i32) (result i32) (local $p i32)\n"                 \
  "    (local.set $p (global.get $heap))\n"                                                    \
  "    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $n))\n"          \
  "                                        (i32.const 7)) (i32.const -8)))\n"                  \
  "    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))\n"             \
  "      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)\n"   \
  "                  (i32.shl (memory.size) (i32.const 16))) (i32.const 16)) (i32.const 1)))\n" \
  "                (i32.const 0)) (then (return (i32.const 0))))))\n"                          \
  "    (local.get $p))\n"                                                                      \
  "  (func (export \"qd_reset\") (global.set $heap (i32.const 1024)))\n"

#endif
