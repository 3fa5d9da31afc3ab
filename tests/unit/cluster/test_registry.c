/* test_registry.c: the UDF registry interface on the embedded default's node (its SQLite
** store): store makes the next version current, set_current rolls back, remove forgets the
** name, a version the store lacks is refused; the node picks SQLite without etcd. (The etcd
** implementation runs in tests/integration/test_cluster.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

/* (module (func (export "one") (param f64) (result f64) f64.const 1)) */
static const uint8_t one_wasm[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06,
                                   0x01, 0x60, 0x01, 0x7c, 0x01, 0x7c, 0x03, 0x02, 0x01, 0x00,
                                   0x07, 0x07, 0x01, 0x03, 'o',  'n',  'e',  0x00, 0x00, 0x0a,
                                   0x0d, 0x01, 0x0b, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0xf0, 0x3f, 0x0b};
static const char *manifest = "{\"name\":\"one\",\"kind\":\"score\",\"params\":[{\"name\":\"s\","
                              "\"type\":\"f64\",\"default\":\"_score\"}],\"returns\":\"f64\"}";

static void the_sqlite_registry_versions_a_udf_through_the_interface(void **state) {
  char dir[64];
  snprintf(dir, sizeof dir, "/tmp/qd-registry-XXXXXX");
  assert_non_null(mkdtemp(dir));
  qc_node_options opt = {.data_dir = dir};
  qc_node *n;
  qb_err err;
  assert_int_equal(qc_node_open(&opt, &n, &err), QB_OK);
  const qc_registry *r = qc_node_udf_registry(n);
  assert_string_equal(r->ops->kind, "sqlite");
  uint32_t v = 0;
  assert_int_equal(r->ops->current(r->impl, "one", &v, &err), QB_NOTFOUND);
  assert_int_equal(r->ops->store(r->impl, "one", manifest, one_wasm, sizeof one_wasm, NULL, &v,
                                 &err), QB_OK);
  assert_int_equal(v, 1);
  assert_int_equal(r->ops->store(r->impl, "one", manifest, one_wasm, sizeof one_wasm, NULL, &v,
                                 &err), QB_OK);
  assert_int_equal(v, 2);
  assert_int_equal(r->ops->current(r->impl, "one", &v, &err), QB_OK);
  assert_int_equal(v, 2);
  assert_int_equal(r->ops->set_current(r->impl, "one", 1, &err), QB_OK);
  assert_int_equal(r->ops->current(r->impl, "one", &v, &err), QB_OK);
  assert_int_equal(v, 1);
  assert_int_equal(r->ops->set_current(r->impl, "one", 9, &err), QB_NOTFOUND);
  assert_int_equal(r->ops->store(r->impl, "one", manifest, one_wasm, sizeof one_wasm,
                                 "00deadbeef", &v, &err), QB_INTERNAL); /* a wrong SHA-256 */
  assert_int_equal(r->ops->remove(r->impl, "one", &err), QB_OK);
  assert_int_equal(r->ops->current(r->impl, "one", &v, &err), QB_NOTFOUND);
  assert_int_equal(r->ops->remove(r->impl, "one", &err), QB_NOTFOUND);
  qc_node_close(n);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_sqlite_registry_versions_a_udf_through_the_interface),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
