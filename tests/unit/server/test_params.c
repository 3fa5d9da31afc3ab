/* test_params.c: every route in routes.def has a row in params.c's table of the URL parameters
** it serves (a route without one would take any parameter and silently ignore it). */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void every_route_lists_the_parameters_it_serves(void **state) {
  (void)state;
  int missing = 0;
  for (int i = 0; i < QS_ROUTE_COUNT; i++)
    if (!qs__route_params(i)) {
      fprintf(stderr, "route %s %s has no row in src/server/params.c\n", qs__routes[i].method,
              qs__routes[i].pattern);
      missing++;
    }
  assert_int_equal(missing, 0);
}

static void search_routes_serve_their_documented_parameters(void **state) {
  (void)state;
  const char *p = qs__route_params(QS_R_SEARCH);
  assert_non_null(strstr(p, "_source_includes"));
  assert_non_null(strstr(p, "search_type"));
  assert_null(strstr(qs__route_params(QS_R_DOC_PUT), "version_type"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_route_lists_the_parameters_it_serves),
      cmocka_unit_test(search_routes_serve_their_documented_parameters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
