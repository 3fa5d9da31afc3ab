/* test_mapping.c: explicit and dynamic mappings, type coercion, and rejected documents that
** leave the index unchanged. */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static qi_index *mk(char *dir, const char *body) {
  qi_index *ix = NULL;
  qb_err err;
  assert_non_null(tmpdir_new(dir));
  if (qi_index_create(dir, body, NULL, &ix, &err)) fail_msg("create: %s", err.msg);
  return ix;
}

static void done(qi_index *ix, const char *dir) {
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static char *mapping(qi_index *ix, qb_buf *b) {
  qb_buf_reset(b);
  assert_int_equal(qi_index_mapping_json(ix, b, NULL), QB_OK);
  return b->data;
}

static void put_ok(qi_index *ix, const char *id, const char *json) {
  qb_err err;
  if (qi_index_put(ix, id, json, strlen(json), NULL, &err)) fail_msg("put %s: %s", id, err.msg);
}

static void dynamic_mapping_follows_elasticsearch(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qb_buf b;
  (void)state;
  qb_buf_init(&b);
  put_ok(ix, "1",
         "{\"title\":\"Hello World\",\"n\":5,\"f\":1.5,\"ok\":true,\"when\":\"2024-01-02T03:04:05Z\","
         "\"tags\":[\"a\",\"b\"],\"user\":{\"name\":\"x\",\"age\":3},\"nothing\":null}");
  assert_string_equal(
      mapping(ix, &b),
      "{\"properties\":{\"title\":{\"type\":\"text\",\"fields\":{\"keyword\":{\"type\":\"keyword\","
      "\"ignore_above\":256}}},\"n\":{\"type\":\"long\"},\"f\":{\"type\":\"float\"},\"ok\":{\"type\":"
      "\"boolean\"},\"when\":{\"type\":\"date\"},\"tags\":{\"type\":\"text\",\"fields\":{\"keyword\":{"
      "\"type\":\"keyword\",\"ignore_above\":256}}},\"user\":{\"properties\":{\"name\":{\"type\":"
      "\"text\",\"fields\":{\"keyword\":{\"type\":\"keyword\",\"ignore_above\":256}}},\"age\":{"
      "\"type\":\"long\"}}}}}");
  qb_buf_fini(&b);
  done(ix, dir);
}

static void explicit_mapping_round_trips(void **state) {
  char dir[4096];
  const char *m = "{\"properties\":{\"name\":{\"type\":\"keyword\"},\"price\":{\"type\":\"double\"},"
                  "\"qty\":{\"type\":\"integer\"},\"at\":{\"type\":\"date\"},\"body\":{\"type\":"
                  "\"text\"},\"meta\":{\"properties\":{\"v\":{\"type\":\"long\"}}}}}";
  char body[1024];
  qi_index *ix;
  qb_buf b;
  (void)state;
  snprintf(body, sizeof body, "{\"settings\":{\"number_of_shards\":1},\"mappings\":%s}", m);
  ix = mk(dir, body);
  qb_buf_init(&b);
  assert_string_equal(mapping(ix, &b), m);
  qb_buf_reset(&b);
  qi_index_settings_json(ix, &b, NULL);
  assert_string_equal(b.data, "{\"number_of_shards\":1}");
  qb_buf_fini(&b);
  done(ix, dir);
}

static void rejected_document_changes_nothing(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, "{\"mappings\":{\"properties\":{\"price\":{\"type\":\"long\"}}}}");
  qi_snapshot *s;
  qb_buf b;
  qb_err err;
  const char *bad = "{\"newfield\":\"x\",\"price\":\"abc\"}";
  (void)state;
  qb_buf_init(&b);
  assert_int_equal(qi_index_put(ix, "1", bad, strlen(bad), NULL, &err), QB_INVAL);
  assert_non_null(strstr(err.msg, "failed to parse field [price] of type [long]"));
  assert_non_null(strstr(err.msg, "'abc'"));
  assert_string_equal(mapping(ix, &b), "{\"properties\":{\"price\":{\"type\":\"long\"}}}");
  assert_int_equal(qi_index_doc_count(ix), 0);
  assert_int_equal(qi_index_get(ix, "1", &b, NULL, NULL, &err), QB_NOTFOUND);
  assert_int_equal(qi_index_refresh(ix, NULL), QB_OK);
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_max_doc(s), 0);
  qi_snapshot_release(s);
  /* not an object, bad JSON, empty id */
  assert_int_equal(qi_index_put(ix, "2", "[1]", 3, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_put(ix, "2", "{\"a\":", 5, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_put(ix, "", "{}", 2, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_put(ix, "2", "{\"_id\":1}", 9, NULL, &err), QB_INVAL);
  /* the same field cannot be an object and a value */
  put_ok(ix, "3", "{\"o\":{\"x\":1}}");
  assert_int_equal(qi_index_put(ix, "4", "{\"o\":5}", 7, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_put(ix, "4", "{\"price\":{\"x\":1}}", 17, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_doc_count(ix), 1);
  qb_buf_fini(&b);
  done(ix, dir);
}

static void values_are_coerced_like_elasticsearch(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, "{\"mappings\":{\"properties\":{\"l\":{\"type\":\"long\"},\"i\":{\"type\":"
                         "\"integer\"},\"d\":{\"type\":\"double\"},\"b\":{\"type\":\"boolean\"},"
                         "\"t\":{\"type\":\"date\"},\"k\":{\"type\":\"keyword\"}}}}");
  qi_snapshot *s;
  const qi_segment *seg;
  qi_field_info fi;
  qb_err err;
  int64_t iv[4];
  double dv[4];
  uint8_t pr[4];
  uint32_t docs[4] = {0, 1, 2, 3};
  (void)state;
  put_ok(ix, "a", "{\"l\":\"42\",\"i\":7.9,\"d\":\"2.5\",\"b\":\"true\",\"t\":\"1970-01-02\",\"k\":12}");
  put_ok(ix, "b", "{\"l\":-3,\"d\":1,\"b\":false,\"t\":1000,\"k\":[\"z\",\"y\"]}");
  put_ok(ix, "c", "{\"t\":\"2024-02-29T12:00:00.250+01:00\",\"l\":[9,4,6]}");
  put_ok(ix, "d", "{}");
  assert_int_equal(qi_index_put(ix, "x", "{\"i\":3000000000}", 16, NULL, &err), QB_INVAL);
  assert_non_null(strstr(err.msg, "[i] of type [integer]"));
  assert_int_equal(qi_index_put(ix, "x", "{\"b\":\"yes\"}", 11, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_put(ix, "x", "{\"t\":\"2024-02-30\"}", 18, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_put(ix, "x", "{\"d\":\"1e999\"}", 13, NULL, &err), QB_INVAL);
  assert_int_equal(qi_index_refresh(ix, NULL), QB_OK);
  s = qi_index_snapshot(ix);
  seg = qi_snapshot_segment(s, 0);
  assert_int_equal(qi_snapshot_field(s, "l", &fi), QB_OK);
  qi_dv_read_i64(seg, fi.id, docs, 4, iv, pr);
  assert_int_equal(iv[0], 42);
  assert_int_equal(iv[1], -3);
  assert_int_equal(iv[2], 4); /* multi-valued: the smallest */
  assert_int_equal(pr[3], 0);
  assert_int_equal(qi_snapshot_field(s, "i", &fi), QB_OK);
  qi_dv_read_i64(seg, fi.id, docs, 2, iv, pr);
  assert_int_equal(iv[0], 7); /* truncated */
  assert_int_equal(pr[1], 0);
  assert_int_equal(qi_snapshot_field(s, "d", &fi), QB_OK);
  qi_dv_read_f64(seg, fi.id, docs, 2, dv, pr);
  assert_true(dv[0] == 2.5 && dv[1] == 1.0);
  assert_int_equal(qi_snapshot_field(s, "b", &fi), QB_OK);
  qi_dv_read_i64(seg, fi.id, docs, 2, iv, pr);
  assert_true(iv[0] == 1 && iv[1] == 0 && pr[1] == 1);
  assert_int_equal(qi_snapshot_field(s, "t", &fi), QB_OK);
  qi_dv_read_i64(seg, fi.id, docs, 3, iv, pr);
  assert_int_equal(iv[0], 86400000);
  assert_int_equal(iv[1], 1000);
  /* 2024-02-29T11:00:00.250Z = 19782 days * 86400000 + 11 h + 250 ms */
  assert_int_equal(iv[2], 19782LL * 86400000 + 11 * 3600000 + 250);
  qi_snapshot_release(s);
  done(ix, dir);
}

static void put_mapping_adds_fields_and_refuses_type_changes(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, "{\"mappings\":{\"properties\":{\"a\":{\"type\":\"long\"}}}}");
  qb_err err;
  qb_buf b;
  const char *add = "{\"properties\":{\"b\":{\"type\":\"keyword\"}}}";
  const char *chg = "{\"properties\":{\"a\":{\"type\":\"text\"},\"c\":{\"type\":\"long\"}}}";
  const char *unk = "{\"properties\":{\"z\":{\"type\":\"banana\"}}}";
  (void)state;
  qb_buf_init(&b);
  assert_int_equal(qi_index_put_mapping(ix, add, strlen(add), &err), QB_OK);
  assert_int_equal(qi_index_put_mapping(ix, chg, strlen(chg), &err), QB_INVAL);
  assert_string_equal(err.msg, "mapper [a] cannot be changed from type [long] to [text]");
  assert_int_equal(qi_index_put_mapping(ix, unk, strlen(unk), &err), QB_INVAL);
  assert_string_equal(err.msg, "no handler for type [banana] declared on field [z]");
  assert_string_equal(mapping(ix, &b),
                      "{\"properties\":{\"a\":{\"type\":\"long\"},\"b\":{\"type\":\"keyword\"}}}");
  qb_buf_fini(&b);
  done(ix, dir);
}

/* Random byte soup and mutated documents: every one is accepted or rejected, never a crash. */
static void create_rejects_an_unknown_top_level_key_by_name(void **state) {
  char dir[256];
  qi_index *ix = NULL;
  qb_err err;
  (void)state;
  assert_non_null(tmpdir_new(dir));
  assert_int_equal(qi_index_create(dir, "{\"bogus_key\": 1}", NULL, &ix, &err), QB_INVAL);
  assert_null(ix);
  assert_non_null(strstr(err.msg, "unknown key [bogus_key]"));
  tmpdir_remove(dir);
}

static void random_documents_never_crash(void **state) {
  static const char alpha[] = "{}[]\":,.-+eE0123456789 abcnulltruefalse\\u00\xc3\xa9\xff";
  static const char *seeds[] = {
      "{\"a\":1,\"b\":\"x y\",\"c\":[1,2,{\"d\":true}],\"e\":null,\"f\":2.5e3}",
      "{\"t\":\"2024-01-01T00:00:00Z\",\"o\":{\"p\":{\"q\":\"r\"}}}"};
  char dir[4096], doc[256];
  qi_index *ix = mk(dir, NULL);
  uint64_t r = 88172645463325252ull;
  qb_err err;
  int i, k;
  (void)state;
  for (i = 0; i < 3000; i++) {
    size_t n;
    if (i % 2) {
      n = 1 + (size_t)(r % 120);
      for (k = 0; k < (int)n; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        doc[k] = alpha[r % (sizeof alpha - 1)];
      }
    } else {
      const char *sd = seeds[(i / 2) % 2];
      n = strlen(sd);
      memcpy(doc, sd, n);
      for (k = 0; k < 3; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        doc[r % n] = alpha[(r >> 20) % (sizeof alpha - 1)];
      }
    }
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    qi_index_put(ix, (r & 3) ? "x" : "y", doc, n, NULL, &err);
    if (i % 500 == 0) assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  }
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  assert_true(qi_index_doc_count(ix) <= 2);
  done(ix, dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dynamic_mapping_follows_elasticsearch),
      cmocka_unit_test(explicit_mapping_round_trips),
      cmocka_unit_test(rejected_document_changes_nothing),
      cmocka_unit_test(values_are_coerced_like_elasticsearch),
      cmocka_unit_test(put_mapping_adds_fields_and_refuses_type_changes),
      cmocka_unit_test(create_rejects_an_unknown_top_level_key_by_name),
      cmocka_unit_test(random_documents_never_crash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
