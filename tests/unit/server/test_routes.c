/* test_routes.c: the router over routes.def (literal rows before captures, 405 vs no route),
** Elasticsearch's index-name rules and the error body shape. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static int match(const char *method, const char *path, const char **caps, size_t *ncaps) {
  static char buf[512];
  return qs__route_match(method, path, buf, caps, ncaps);
}

static void routes_prefer_literal_rows_over_captures(void **state) {
  const char *caps[QS_MAX_CAPTURES];
  size_t n;
  assert_int_equal(match("POST", "/_bulk", caps, &n), QS_R_BULK);
  assert_int_equal(n, 0);
  assert_int_equal(match("GET", "/_udf", caps, &n), QS_R_UDF_LIST);
  assert_int_equal(match("GET", "/metrics", caps, &n), QS_R_METRICS);
  assert_int_equal(match("GET", "/_cluster/health", caps, &n), QS_R_HEALTH);
}

static void routes_capture_index_id_and_udf_name(void **state) {
  const char *caps[QS_MAX_CAPTURES];
  size_t n;
  assert_int_equal(match("PUT", "/products/_doc/42", caps, &n), QS_R_DOC_PUT);
  assert_int_equal(n, 2);
  assert_string_equal(caps[0], "products");
  assert_string_equal(caps[1], "42");
  assert_int_equal(match("POST", "/_udf/custom_score/_rollback", caps, &n), QS_R_UDF_ROLLBACK);
  assert_string_equal(caps[0], "custom_score");
  assert_int_equal(match("GET", "/products/_search", caps, &n), QS_R_SEARCH_GET);
  assert_int_equal(match("POST", "/products/_doc", caps, &n), QS_R_DOC_POST);
  assert_int_equal(match("HEAD", "/products", caps, &n), QS_R_INDEX_HEAD);
}

static void routes_decode_segments_after_splitting(void **state) {
  const char *caps[QS_MAX_CAPTURES];
  size_t n;
  assert_int_equal(match("GET", "/products/_doc/a%2Fb%20c", caps, &n), QS_R_DOC_GET);
  assert_string_equal(caps[1], "a/b c");
  assert_int_equal(match("GET", "/products/_doc/100%", caps, &n), QS_R_DOC_GET);
  assert_string_equal(caps[1], "100%");
  assert_int_equal(match("GET", "/products/%5Fsearch", caps, &n), QS_R_SEARCH_GET);
}

static void routes_ignore_a_trailing_slash(void **state) {
  const char *caps[QS_MAX_CAPTURES];
  size_t n;
  assert_int_equal(match("GET", "/products/_search/", caps, &n), QS_R_SEARCH_GET);
  assert_int_equal(match("GET", "/", caps, &n), QS_R_ROOT);
}

static void routes_tell_wrong_method_from_unknown_path(void **state) {
  const char *caps[QS_MAX_CAPTURES];
  size_t n;
  assert_int_equal(match("PATCH", "/products", caps, &n), -2);
  assert_int_equal(match("GET", "/a/b/c/d", caps, &n), -1);
  assert_int_equal(match("GET", "/a/b/c/d/e/f/g/h/i/j", caps, &n), -1);
  assert_int_equal(match("GET", "/products//_search", caps, &n), -1);
}

static void index_names_follow_elasticsearch_rules(void **state) {
  char why[256];
  assert_true(qs__index_name_ok("products-2024.01", why));
  assert_false(qs__index_name_ok("Products", why));
  assert_non_null(strstr(why, "must be lowercase"));
  assert_false(qs__index_name_ok("_hidden", why));
  assert_false(qs__index_name_ok("a,b", why));
  assert_false(qs__index_name_ok("..", why));
  assert_false(qs__index_name_ok("", why));
  char longname[300];
  memset(longname, 'a', 299);
  longname[299] = 0;
  assert_false(qs__index_name_ok(longname, why));
}

static void error_json_has_elasticsearch_shape(void **state) {
  json_t *j = qs__error_json(404, "index_not_found_exception", "no such index [x]");
  assert_non_null(j);
  json_t *e = json_object_get(j, "error");
  assert_string_equal(json_string_value(json_object_get(e, "type")), "index_not_found_exception");
  assert_string_equal(json_string_value(json_object_get(e, "reason")), "no such index [x]");
  json_t *rc = json_array_get(json_object_get(e, "root_cause"), 0);
  assert_string_equal(json_string_value(json_object_get(rc, "type")), "index_not_found_exception");
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(routes_prefer_literal_rows_over_captures),
      cmocka_unit_test(routes_capture_index_id_and_udf_name),
      cmocka_unit_test(routes_decode_segments_after_splitting),
      cmocka_unit_test(routes_ignore_a_trailing_slash),
      cmocka_unit_test(routes_tell_wrong_method_from_unknown_path),
      cmocka_unit_test(index_names_follow_elasticsearch_rules),
      cmocka_unit_test(error_json_has_elasticsearch_shape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
