/* test_errors.c: the one qb_code -> HTTP status + Elasticsearch type table (errors.c): every code
** has a row, the client's faults answer 4xx and ours 5xx (a corrupt store is 500, a malformed
** body 400), and the UDF routes' own types. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static int route_of(const char *method, const char *path) {
  static char buf[512];
  const char *caps[QS_MAX_CAPTURES];
  size_t n;
  return qs__route_match(method, path, buf, caps, &n);
}

static void every_code_has_a_status_and_an_elasticsearch_type(void **state) {
  for (int c = 0; c < QB_CODE_COUNT; c++) {
    for (int route = -1; route < QS_ROUTE_COUNT; route++) {
      qs_error e = qs__error_for((qb_code)c, route);
      if (e.status < 400 || e.status > 599)
        fail_msg("%s on route %d: status %d", qb_code_name((qb_code)c), route, e.status);
      if (!e.type || !strstr(e.type, "exception"))
        fail_msg("%s on route %d: type %s", qb_code_name((qb_code)c), route, e.type ? e.type : "NULL");
    }
    assert_string_equal(qs__error_type((qb_code)c), qs__error_for((qb_code)c, -1).type);
  }
  /* a code from a damaged peer result is out of range: still an answer, ours to look at */
  assert_int_equal(qs__error_for((qb_code)9999, -1).status, 500);
  assert_int_equal(qs__error_for((qb_code)-1, -1).status, 500);
}

static void a_corrupt_store_is_ours_and_answers_500(void **state) {
  qs_error e = qs__error_for(QB_CORRUPT, route_of("POST", "/products/_search"));
  assert_int_equal(e.status, 500);
  assert_string_equal(e.type, "exception");
  assert_int_equal(qs__error_for(QB_CORRUPT, route_of("PUT", "/_udf/x")).status, 500);
  assert_int_equal(qs__error_for(QB_IO, -1).status, 500);
  assert_int_equal(qs__error_for(QB_INTERNAL, -1).status, 500);
  /* an error reply without an error is our bug, not a success */
  assert_int_equal(qs__error_for(QB_OK, -1).status, 500);
}

static void a_malformed_body_is_the_clients_and_answers_400(void **state) {
  static const struct { qb_code code; int status; const char *type; } m[] = {
      {QB_PARSE, 400, "x_content_parse_exception"}, {QB_MALFORMED, 400, "parsing_exception"},
      {QB_INVAL, 400, "illegal_argument_exception"}, {QB_INVALID, 400, "script_exception"},
      {QB_TRAP, 400, "script_exception"},            {QB_LIMIT, 400, "script_exception"},
      {QB_NOTFOUND, 404, "index_not_found_exception"},
      {QB_CONFLICT, 409, "version_conflict_engine_exception"},
      {QB_NOMEM, 429, "circuit_breaking_exception"}, {QB_EXHAUSTED, 429, "circuit_breaking_exception"},
      {QB_UNAVAILABLE, 503, "unavailable_shards_exception"},
  };
  int search = route_of("POST", "/products/_search");
  assert_true(search >= 0);
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    qs_error e = qs__error_for(m[i].code, search);
    if (e.status != m[i].status || strcmp(e.type, m[i].type))
      fail_msg("%s: %d %s, expected %d %s", qb_code_name(m[i].code), e.status, e.type, m[i].status,
               m[i].type);
  }
}

static void udf_routes_answer_module_errors_as_illegal_arguments(void **state) {
  int put = route_of("PUT", "/_udf/custom_score"), get = route_of("GET", "/_udf/custom_score");
  int test = route_of("POST", "/_udf/custom_score/_test");
  assert_true(put >= 0 && get >= 0 && test >= 0);
  assert_string_equal(qs__error_for(QB_MALFORMED, put).type, "illegal_argument_exception");
  assert_string_equal(qs__error_for(QB_INVALID, put).type, "illegal_argument_exception");
  assert_string_equal(qs__error_for(QB_UNLINKABLE, put).type, "illegal_argument_exception");
  assert_int_equal(qs__error_for(QB_UNLINKABLE, put).status, 400);
  assert_string_equal(qs__error_for(QB_NOTFOUND, get).type, "resource_not_found_exception");
  assert_int_equal(qs__error_for(QB_NOTFOUND, get).status, 404);
  assert_string_equal(qs__error_for(QB_TRAP, test).type, "script_exception");
  assert_string_equal(qs__error_for(QB_PARSE, put).type, "x_content_parse_exception");
  /* the same codes elsewhere keep the search API's types */
  assert_string_equal(qs__error_for(QB_INVALID, route_of("GET", "/i/_search")).type, "script_exception");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_code_has_a_status_and_an_elasticsearch_type),
      cmocka_unit_test(a_corrupt_store_is_ours_and_answers_500),
      cmocka_unit_test(a_malformed_body_is_the_clients_and_answers_400),
      cmocka_unit_test(udf_routes_answer_module_errors_as_illegal_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
