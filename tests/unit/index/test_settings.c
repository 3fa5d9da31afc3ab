/* test_settings.c: qi_index_settings_set: the new settings are served and stored (a reopened
** index has them), and a refused change (analysis, not an object) leaves both as they were. */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const char *settings(qi_index *ix, qb_buf *b) {
  qb_buf_reset(b);
  assert_int_equal(qi_index_settings_json(ix, b, NULL), QB_OK);
  assert_int_equal(qb_buf_append(b, "", 1), QB_OK); /* a C string */
  return b->data;
}

static void set_is_served_and_survives_reopen(void **state) {
  char dir[4096];
  qi_index *ix = NULL;
  qb_err err;
  qb_buf b;
  (void)state;
  qb_buf_init(&b);
  assert_non_null(tmpdir_new(dir));
  const char *body = "{\"settings\":{\"number_of_shards\":1,\"analysis\":{\"analyzer\":{\"a\":"
                     "{\"type\":\"custom\",\"tokenizer\":\"standard\"}}}}}";
  if (qi_index_create(dir, body, NULL, &ix, &err)) fail_msg("create: %s", err.msg);
  const char *next = "{\"number_of_shards\":1,\"analysis\":{\"analyzer\":{\"a\":{\"type\":"
                     "\"custom\",\"tokenizer\":\"standard\"}}},\"index\":{\"refresh_interval\":"
                     "\"-1\"}}";
  if (qi_index_settings_set(ix, next, strlen(next), &err)) fail_msg("set: %s", err.msg);
  assert_string_equal(settings(ix, &b), next);
  /* the analysis cannot change on an open index; nothing else of the call applies either */
  const char *bad = "{\"index\":{\"refresh_interval\":\"1s\"}}";
  assert_int_equal(qi_index_settings_set(ix, bad, strlen(bad), &err), QB_INVAL);
  assert_non_null(strstr(err.msg, "analysis"));
  assert_int_equal(qi_index_settings_set(ix, "[1]", 3, &err), QB_INVAL);
  assert_int_equal(qi_index_settings_set(ix, "{", 1, &err), QB_INVAL);
  assert_string_equal(settings(ix, &b), next);
  qi_index_close(ix);
  ix = NULL;
  if (qi_index_open(dir, NULL, &ix, &err)) fail_msg("reopen: %s", err.msg);
  assert_string_equal(settings(ix, &b), next);
  /* dropping the analysis is a change too: refused; an index without analysis takes any object */
  const char *plain = "{\"index\":{\"max_result_window\":\"7\"}}";
  assert_int_equal(qi_index_settings_set(ix, plain, strlen(plain), &err), QB_INVAL);
  qi_index_close(ix);
  tmpdir_remove(dir);
  assert_non_null(tmpdir_new(dir));
  if (qi_index_create(dir, NULL, NULL, &ix, &err)) fail_msg("create: %s", err.msg);
  if (qi_index_settings_set(ix, plain, strlen(plain), &err)) fail_msg("set: %s", err.msg);
  qi_index_close(ix);
  if (qi_index_open(dir, NULL, &ix, &err)) fail_msg("reopen: %s", err.msg);
  assert_string_equal(settings(ix, &b), plain);
  qi_index_close(ix);
  tmpdir_remove(dir);
  qb_buf_fini(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(set_is_served_and_survives_reopen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
