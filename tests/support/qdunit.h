/* qdunit.h: what every cmocka unit test binary shares. tests/CMakeLists.txt force-includes it
** (-include) into each tests/unit/<layer>/test_*.c, so the test files stay plain cmocka:
**
** - One test alone: `build/tests/unit_wasm_test_call NAME` or `QD_TEST=NAME ctest -R wasm/`
**   runs only the tests whose name matches NAME (a glob: `*`, `?`; cmocka_set_test_filter).
**   A name that matches no test is an error (exit 1), not an empty pass.
** - Honest skips: a test that calls cmocka's skip() (a tool such as wat2wasm is missing) makes
**   the binary exit 77 when nothing failed, which CTest reports as skipped (SKIP_RETURN_CODE
**   77), never as passed. A failure still wins: exit 1.
**
** Invariant: cmocka_run_group_tests and skip() below are the only ones the test files see
** (cmocka.h is included here first; its include guard makes the files' own #include a no-op). */
#ifndef QD_TEST_QDUNIT_H
#define QD_TEST_QDUNIT_H

/* Included before anything of the test file, so its feature macros come too late: ask for all
** of glibc here (POSIX 2008, XSI, BSD and GNU: nftw, mkdtemp, fork, ...). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static int qd_unit_skipped;     /* a test called skip() */
static const char *qd_unit_arg; /* argv[1], when given */

/* glibc hands init_array functions main's arguments: the test files keep `int main(void)`. */
__attribute__((constructor)) static void qd_unit_args(int argc, char **argv, char **envp) {
  (void)envp;
  if (argc > 1 && argv) qd_unit_arg = argv[1];
}

static int qd_unit_run(const char *group, const struct CMUnitTest *tests, size_t n,
                       CMFixtureFunction setup, CMFixtureFunction teardown) {
  const char *filter = qd_unit_arg ? qd_unit_arg : getenv("QD_TEST");
  if (filter && *filter) {
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) hits += tests[i].name && !fnmatch(filter, tests[i].name, 0);
    if (!hits) {
      fprintf(stderr, "%s: no test matches [%s]; its tests are:\n", group, filter);
      for (size_t i = 0; i < n; i++) fprintf(stderr, "  %s\n", tests[i].name);
      return 1;
    }
    cmocka_set_test_filter(filter);
  }
  int failed = _cmocka_run_group_tests(group, tests, n, setup, teardown);
  if (failed) return 1;
  return qd_unit_skipped ? 77 : 0;
}

#undef skip
#define skip()                                                                                     \
  do {                                                                                             \
    qd_unit_skipped = 1;                                                                           \
    _skip(__FILE__, __LINE__);                                                                     \
  } while (0)

#undef cmocka_run_group_tests
#define cmocka_run_group_tests(tests, setup, teardown)                                             \
  qd_unit_run(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif
