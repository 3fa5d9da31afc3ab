/* test_wire.c: the binary partial a data node sends a coordinator (wire.c): a partial's tree
** (hits with scores and sort values, totals, aggregation partials, a failure) reads back equal,
** reals bit for bit; and bytes from a peer that are not a well-formed partial are refused with
** QB_CORRUPT naming the damage: every truncation of a good one, a wrong header or version,
** unknown tags, lengths past the end, overlong numbers, strings and keys that are not UTF-8,
** NUL in a key, reals that are not finite, nesting past the limit, bytes after the value. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

static const char *partial_text =
    "{\"index\":\"bench\",\"shard\":2,\"total\":{\"value\":1250,\"relation\":\"eq\"},"
    "\"max_score\":3.2071280479431152,\"hits\":[{\"_id\":\"17\",\"_score\":3.2071280479431152,"
    "\"sort\":[3.2071280479431152,-9223372036854775807,\"z\\u00e9ta\",null,true],\"_doc\":42,"
    "\"_source\":{\"t\":\"alpha delta\",\"n\":17,\"f\":1.36,\"neg\":-5,\"deep\":{\"a\":[[],{}]}}}],"
    "\"aggs\":{\"by\":{\"buckets\":[{\"key\":\"alpha\",\"doc_count\":7}],\"sum\":1e300,"
    "\"min\":-0.0,\"small\":5e-324}},\"timed_out\":false}";

static json_t *partial(void) {
  json_error_t je;
  json_t *j = json_loads(partial_text, 0, &je);
  if (!j) fail_msg("fixture: %s", je.text);
  return j;
}

static void encode(const json_t *j, qb_buf *b) {
  qb_err err;
  qb_buf_init(b);
  if (qc_wire_encode(j, b, &err)) fail_msg("encode: %s", err.msg);
}

static void expect_corrupt(const void *p, size_t len, const char *want) {
  json_t *j = (json_t *)1;
  qb_err err;
  qb_err_clear(&err);
  qb_code rc = qc_wire_decode(p, len, &j, &err);
  if (rc != QB_CORRUPT) fail_msg("decoded (rc %d) %zu bytes that should be refused (%s)", rc, len, want);
  assert_null(j);
  if (want && !strstr(err.msg, want)) fail_msg("error [%s] does not say [%s]", err.msg, want);
}

static void a_partial_reads_back_equal(void **state) {
  (void)state;
  json_t *j = partial();
  qb_buf b;
  encode(j, &b);
  assert_true(qc_wire_is(b.data, b.len));
  assert_false(qc_wire_is("{\"shard\":0}", 11));
  assert_true(b.len < strlen(partial_text)); /* compact: smaller than the text */
  json_t *back = NULL;
  qb_err err;
  assert_int_equal(qc_wire_decode(b.data, b.len, &back, &err), QB_OK);
  assert_true(json_equal(j, back));
  /* reals bit for bit (the text form rounds through digits) */
  json_t *h = json_array_get(json_object_get(back, "hits"), 0);
  assert_true(json_real_value(json_object_get(h, "_score")) == 3.2071280479431152);
  assert_true(json_real_value(json_object_get(json_object_get(json_object_get(back, "aggs"), "by"),
                                              "small")) == 5e-324);
  assert_true(signbit(json_real_value(
      json_object_get(json_object_get(json_object_get(back, "aggs"), "by"), "min"))));
  assert_int_equal(json_integer_value(json_array_get(json_object_get(h, "sort"), 1)),
                   -9223372036854775807LL);
  /* key order kept (a partial's hits keep their fields' order) */
  const char *first = json_object_iter_key(json_object_iter(back));
  assert_string_equal(first, "index");
  /* and it becomes a partial */
  qq_partial *p = NULL;
  assert_int_equal(qq_partial_from_json_take(back, &p, &err), QB_OK);
  qq_partial_free(p);
  json_decref(j);
  qb_buf_fini(&b);
}

static void a_failure_partial_and_extremes_read_back(void **state) {
  (void)state;
  json_t *vals = json_pack("{s:i, s:{s:s, s:i}, s:[I, I, I, s, s#]}", "shard", 0, "failure",
                           "reason", "node [dn1]: boom \"quoted\"\n", "code", 12, "x",
                           (json_int_t)INT64_MIN, (json_int_t)INT64_MAX, (json_int_t)0, "",
                           "a\0b", (int)3);
  qb_buf b;
  encode(vals, &b);
  json_t *back = NULL;
  qb_err err;
  assert_int_equal(qc_wire_decode(b.data, b.len, &back, &err), QB_OK);
  assert_true(json_equal(vals, back));
  assert_int_equal(json_string_length(json_array_get(json_object_get(back, "x"), 4)), 3);
  json_decref(back);
  json_decref(vals);
  qb_buf_fini(&b);
}

static void every_truncation_is_refused(void **state) {
  (void)state;
  json_t *j = partial();
  qb_buf b;
  encode(j, &b);
  for (size_t n = 0; n < b.len; n++) expect_corrupt(b.data, n, NULL);
  /* and one byte more */
  qb_buf_append(&b, "", 1);
  expect_corrupt(b.data, b.len, "bytes after the value");
  json_decref(j);
  qb_buf_fini(&b);
}

static void damaged_bytes_are_refused_with_the_reason(void **state) {
  (void)state;
  expect_corrupt("", 0, "no QDP header");
  expect_corrupt("{\"shard\":1}", 11, "no QDP header");
  expect_corrupt("QDP", 3, "version -1");
  expect_corrupt("QDP\x02\x00", 5, "version 2");
  expect_corrupt("QDP\x01\x09", 5, "unknown value tag");
  expect_corrupt("QDP\x01\xff", 5, "unknown value tag");
  /* a string, an array, an object longer than what is left */
  expect_corrupt("QDP\x01\x05\x05" "abc", 9, "past the end");
  expect_corrupt("QDP\x01\x06\xff\xff\xff\xff\x0f", 10, "past the end");
  expect_corrupt("QDP\x01\x07\x01", 6, "past the end");
  /* an integer of more than 64 bits, and one never ending */
  expect_corrupt("QDP\x01\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 15, "over 64 bits");
  expect_corrupt("QDP\x01\x03\x80\x80", 7, "truncated number");
  /* strings and keys that are not UTF-8, a NUL in a key */
  expect_corrupt("QDP\x01\x05\x02\xc3\x28", 8, "not UTF-8");
  expect_corrupt("QDP\x01\x07\x01\x02\xff\xfe\x00", 10, "key that is not UTF-8");
  expect_corrupt("QDP\x01\x07\x01\x03" "a\0b" "\x00", 11, "NUL");
  /* a real that is not finite: NaN and +inf */
  expect_corrupt("QDP\x01\x04\x00\x00\x00\x00\x00\x00\xf8\x7f", 13, "not finite");
  expect_corrupt("QDP\x01\x04\x00\x00\x00\x00\x00\x00\xf0\x7f", 13, "not finite");
  expect_corrupt("QDP\x01\x04\x00\x00", 7, "truncated real");
}

/* A hit's raw _source (QQ_RAW_JSON, "raw": 1) travels as its text (tag 8) and reads back as
** the same marked string; raw text that the coordinator's writer would not print back byte
** for byte (damaged, not JSON, spaces) is refused, never copied into a response. */
static void a_raw_source_reads_back_marked_and_bad_raw_text_is_refused(void **state) {
  (void)state;
  const char *text = "{\"t\":\"alpha\",\"n\":17}";
  char marked[64];
  memcpy(marked, QQ_RAW_JSON, QQ_RAW_JSON_LEN);
  memcpy(marked + QQ_RAW_JSON_LEN, text, strlen(text));
  json_t *j = json_pack("{s:[{s:o}]}", "hits", "_source",
                        json_stringn_nocheck(marked, QQ_RAW_JSON_LEN + strlen(text)));
  assert_non_null(j);
  qb_buf b;
  encode(j, &b);
  char want[32] = {8, (char)strlen(text)}; /* tag 8, the length, the text unmarked */
  memcpy(want + 2, text, strlen(text));
  assert_non_null(memmem(b.data, b.len, want, 2 + strlen(text)));
  assert_null(memmem(b.data, b.len, "qq-raw", 6));
  json_t *back = NULL;
  qb_err err;
  assert_int_equal(qc_wire_decode(b.data, b.len, &back, &err), QB_OK);
  assert_true(json_equal(j, back)); /* the same marked string */
  json_decref(back);
  json_decref(j);
  qb_buf_fini(&b);
  expect_corrupt("QDP\x01\x08\x05" "{\"a\":", 11, "not canonical");   /* cut short */
  expect_corrupt("QDP\x01\x08\x03" "abc", 9, "not canonical");          /* not JSON */
  expect_corrupt("QDP\x01\x08\x08" "{\"a\": 1}", 14, "not canonical"); /* a space */
  expect_corrupt("QDP\x01\x08\x09" "{\"a\":1}", 13, "past the end");
}

/* For a coordinator that splices raw _source: a hit's _source tree goes as raw JSON when its
** compact text is what the writer prints (here: the stored text had spaces), else as a tree (a
** real or a string that needs an escape: the writer's forms of those are its own); only
** hits[i]._source, and only when asked. */
static void a_source_tree_goes_raw_when_its_compact_text_is_canonical(void **state) {
  (void)state;
  json_error_t je;
  json_t *j = json_loads("{\"index\":\"i\",\"hits\":[{\"_index\":\"i\",\"_source\":"
                         "{\"t\": \"alpha d\\u00e9lta\", \"n\": 17, \"a\": [true, null]}},"
                         "{\"_index\":\"i\",\"_source\":{\"f\": 1.36}},"
                         "{\"_index\":\"i\",\"_source\":{\"q\": \"say \\\"hi\\\"\"}}],"
                         "\"aggs\":{\"_source\":{\"x\":1}}}", 0, &je);
  assert_non_null(j);
  qb_buf b;
  qb_buf_init(&b);
  qb_err err;
  assert_int_equal(qc_wire_encode_raw(j, 1, &b, &err), QB_OK);
  const char *text = "{\"t\":\"alpha d\xc3\xa9lta\",\"n\":17,\"a\":[true,null]}";
  char want[64] = {8, (char)strlen(text)};
  memcpy(want + 2, text, strlen(text));
  assert_non_null(memmem(b.data, b.len, want, 2 + strlen(text)));
  assert_null(memmem(b.data, b.len, "{\"f\":", 5)); /* the real: a tree (tag 7), not text */
  assert_null(memmem(b.data, b.len, "{\"x\":", 5)); /* not a hit's _source */
  assert_null(memmem(b.data, b.len, "{\"q\":", 5)); /* an escape: a tree */
  json_t *back = NULL;
  assert_int_equal(qc_wire_decode(b.data, b.len, &back, &err), QB_OK);
  json_t *h0 = json_array_get(json_object_get(back, "hits"), 0);
  json_t *h1 = json_array_get(json_object_get(back, "hits"), 1);
  const char *s0 = json_string_value(json_object_get(h0, "_source"));
  assert_non_null(s0);
  assert_memory_equal(s0, QQ_RAW_JSON, QQ_RAW_JSON_LEN);
  assert_string_equal(s0 + QQ_RAW_JSON_LEN, text);
  assert_true(json_equal(json_object_get(h1, "_source"),
                         json_object_get(json_array_get(json_object_get(j, "hits"), 1), "_source")));
  /* the hits' equal "_index" strings are one value, as the shard's were */
  assert_ptr_equal(json_object_get(h0, "_index"), json_object_get(h1, "_index"));
  assert_string_equal(json_string_value(json_object_get(h1, "_index")), "i");
  json_decref(back);
  /* not asked: every _source a tree, and the partial reads back equal */
  qb_buf_reset(&b);
  assert_int_equal(qc_wire_encode_raw(j, 0, &b, &err), QB_OK);
  assert_null(memmem(b.data, b.len, want, 2 + strlen(text)));
  assert_int_equal(qc_wire_decode(b.data, b.len, &back, &err), QB_OK);
  assert_true(json_equal(j, back));
  json_decref(back);
  json_decref(j);
  qb_buf_fini(&b);
}

static void nesting_past_the_limit_is_refused(void **state) {
  (void)state;
  size_t depth = QC_WIRE_MAX_DEPTH + 2, len = 4 + 2 * depth + 1;
  unsigned char *p = malloc(len);
  memcpy(p, "QDP\x01", 4);
  for (size_t i = 0; i < depth; i++) p[4 + 2 * i] = 6, p[5 + 2 * i] = 1; /* [[[... */
  p[len - 1] = 0;                                                         /* null */
  expect_corrupt(p, len, "nested too deep");
  /* at the limit it reads */
  size_t ok = QC_WIRE_MAX_DEPTH, olen = 4 + 2 * ok + 1;
  p[4 + 2 * ok] = 0;
  json_t *j = NULL;
  qb_err err;
  assert_int_equal(qc_wire_decode(p, olen, &j, &err), QB_OK);
  /* and encoding a tree deeper than the limit is refused */
  json_t *deep = json_array();
  for (size_t i = 0; i < (size_t)QC_WIRE_MAX_DEPTH + 1; i++) {
    json_t *a = json_array();
    json_array_append_new(a, deep);
    deep = a;
  }
  qb_buf b;
  qb_buf_init(&b);
  assert_int_equal(qc_wire_encode(deep, &b, &err), QB_INVAL);
  qb_buf_fini(&b);
  json_decref(deep);
  json_decref(j);
  free(p);
}

static void random_damage_never_crashes(void **state) {
  (void)state;
  json_t *j = partial();
  qb_buf b;
  encode(j, &b);
  unsigned seed = 12345;
  for (int round = 0; round < 20000; round++) {
    char *c = malloc(b.len);
    memcpy(c, b.data, b.len);
    for (int k = 0; k < 1 + round % 4; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = 4 + (seed >> 8) % (b.len - 4);
      c[at] = (char)(seed >> 3);
    }
    json_t *out = NULL;
    qb_err err;
    qb_code rc = qc_wire_decode(c, b.len, &out, &err);
    if (rc != QB_OK && rc != QB_CORRUPT) fail_msg("round %d: rc %d", round, rc);
    assert_true((rc == QB_OK) == (out != NULL));
    json_decref(out);
    free(c);
  }
  json_decref(j);
  qb_buf_fini(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_partial_reads_back_equal),
      cmocka_unit_test(a_failure_partial_and_extremes_read_back),
      cmocka_unit_test(every_truncation_is_refused),
      cmocka_unit_test(damaged_bytes_are_refused_with_the_reason),
      cmocka_unit_test(a_raw_source_reads_back_marked_and_bad_raw_text_is_refused),
      cmocka_unit_test(a_source_tree_goes_raw_when_its_compact_text_is_canonical),
      cmocka_unit_test(nesting_past_the_limit_is_refused),
      cmocka_unit_test(random_damage_never_crashes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
