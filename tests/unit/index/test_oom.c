/* test_oom.c: allocation k fails, for k = 1, 2, ... until the operation succeeds. Every failing
** run returns an error (never crashes), and once the index is closed no byte allocated through
** the qb_alloc hook is left (SQLite and jansson allocate on their own). */
#include "support.h"

#include <jansson.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const char *doc = "{\"title\":\"Hello brave new world\",\"n\":3,\"tags\":[\"a\",\"b\"],"
                         "\"when\":\"2024-05-01\",\"price\":2.5}";

/* create, put, bulk, refresh, snapshot + postings, merge, close; OK only if all succeeded */
static qb_code scenario(const char *dir) {
  qi_index *ix = NULL;
  qi_bulk *b = NULL;
  qi_snapshot *s;
  qi_postings *p = NULL;
  qi_options opt = {0};
  qb_err err;
  qb_code rc;
  opt.no_auto_merge = 1;
  if ((rc = qi_index_create(dir, NULL, &opt, &ix, &err))) return rc;
  if ((rc = qi_index_put(ix, "1", doc, strlen(doc), NULL, &err))) goto out;
  if ((rc = qi_index_refresh(ix, &err))) goto out;
  if ((rc = qi_bulk_begin(ix, &b, &err))) goto out;
  rc = qi_bulk_put(b, "2", doc, strlen(doc), NULL, &err);
  if (!rc) rc = qi_bulk_delete(b, "1", NULL, &err);
  {
    qb_code rc2 = qi_bulk_commit(b, &err);
    if (!rc) rc = rc2;
  }
  if (rc) goto out;
  if ((rc = qi_index_refresh(ix, &err))) goto out;
  s = qi_index_snapshot(ix);
  {
    qi_field_info fi;
    if (!(rc = qi_snapshot_field(s, "title", &fi)) && qi_snapshot_segment_count(s) > 0) {
      rc = qi_postings_open_term(qi_snapshot_segment(s, qi_snapshot_segment_count(s) - 1), fi.id,
                                 "brave", 5, &p, &err);
      if (!rc && (!p || qi_postings_next(p) != 0)) rc = QB_INTERNAL;
      qi_postings_free(p);
    }
  }
  qi_snapshot_release(s);
  if (rc) goto out;
  rc = qi_index_force_merge(ix, 1, &err);
out:
  qi_index_close(ix);
  return rc;
}

static void every_failed_allocation_is_an_error_without_leaks(void **state) {
  char dir[4096];
  size_t base = qb_alloc_live_bytes();
  uint64_t k;
  qb_code rc = QB_NOMEM;
  (void)state;
  for (k = 1; k < 5000 && rc; k++) {
    tmpdir_new(dir);
    qb_alloc_fail_after(k);
    rc = scenario(dir);
    qb_alloc_fail_after(0);
    if (rc && rc != QB_NOMEM && rc != QB_IO) fail_msg("allocation %llu: code %d", (unsigned long long)k, rc);
    if (qb_alloc_live_bytes() != base)
      fail_msg("allocation %llu failing leaked %zu bytes", (unsigned long long)k,
               qb_alloc_live_bytes() - base);
    tmpdir_remove(dir);
  }
  assert_int_equal(rc, QB_OK);
}

int main(void) {
  json_set_alloc_funcs(qb_sized_malloc, qb_sized_free); /* OOM runs reach inside jansson too */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_failed_allocation_is_an_error_without_leaks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
