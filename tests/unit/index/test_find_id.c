/* test_find_id.c: qi_segment_find_id, the per-segment _id table: every document found in the
** segment that holds it and nowhere else, updates inside one buffer (two copies of an _id, the
** live one wins), deletes, merges, and segments loaded from files or rebuilt from the store. */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static qi_index *mk(char *dir, const qi_options *opt) {
  qi_index *ix = NULL;
  qb_err err;
  assert_non_null(tmpdir_new(dir));
  if (qi_index_create(dir, "{\"mappings\":{\"properties\":{\"body\":{\"type\":\"text\"}}}}", opt,
                      &ix, &err))
    fail_msg("create: %s", err.msg);
  return ix;
}

static void put(qi_index *ix, const char *id, const char *body) {
  char doc[256];
  qb_err err;
  int n = snprintf(doc, sizeof doc, "{\"body\":\"%s\"}", body);
  if (qi_index_put(ix, id, doc, (size_t)n, NULL, &err)) fail_msg("put %s: %s", id, err.msg);
}

static void refresh(qi_index *ix) {
  qb_err err;
  if (qi_index_refresh(ix, &err)) fail_msg("refresh: %s", err.msg);
}

/* The live document with _id ID in S: its segment number in *SEG and its doc, or -1 (then
** *SEG is untouched). Fails the test if a segment returns a doc whose _id is not ID. */
static int64_t find_live(qi_snapshot *s, const char *id, size_t len, size_t *seg) {
  size_t i, nlive = 0;
  int64_t found = -1;
  for (i = 0; i < qi_snapshot_segment_count(s); i++) {
    const qi_segment *g = qi_snapshot_segment(s, i);
    int64_t d = qi_segment_find_id(g, id, len);
    size_t l;
    const char *got;
    if (d < 0) continue;
    assert_true(d < (int64_t)qi_segment_max_doc(g));
    got = qi_segment_doc_id(g, (uint32_t)d, &l);
    if (l != len || memcmp(got, id, len))
      fail_msg("segment %zu: find_id(%.*s) gave doc %lld with _id %s", i, (int)len, id,
               (long long)d, got);
    if (qi_segment_is_live(g, (uint32_t)d)) {
      nlive++;
      found = d;
      *seg = i;
    }
  }
  if (nlive > 1) fail_msg("_id %.*s live in %zu segments", (int)len, id, nlive);
  return found;
}

/* Every document of S is found under its own _id, in its own segment, at its own number. */
static void check_all_found(qi_snapshot *s) {
  size_t i;
  uint32_t d;
  for (i = 0; i < qi_snapshot_segment_count(s); i++) {
    const qi_segment *g = qi_snapshot_segment(s, i);
    for (d = 0; d < qi_segment_max_doc(g); d++) {
      size_t len, seg = SIZE_MAX;
      const char *id = qi_segment_doc_id(g, d, &len);
      if (!qi_segment_is_live(g, d)) continue;
      if (find_live(s, id, len, &seg) != (int64_t)d || seg != i)
        fail_msg("_id %s (segment %zu doc %u) not found where it is", id, i, d);
    }
  }
}

static void find_id_finds_each_document_in_its_segment_only(void **state) {
  char dir[4096], id[32];
  qi_options opt = {0};
  qi_index *ix;
  qi_snapshot *s;
  size_t seg, i;
  int k;
  (void)state;
  opt.no_auto_merge = 1;
  ix = mk(dir, &opt);
  for (k = 0; k < 3000; k++) {
    snprintf(id, sizeof id, "%d", k);
    put(ix, id, "x");
    if (k % 1000 == 999) refresh(ix);
  }
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_segment_count(s), 3);
  check_all_found(s);
  assert_int_equal(find_live(s, "1500", 4, &seg), 500);
  assert_int_equal(seg, 1);
  /* absent ids, and prefixes / extensions of present ones, are found nowhere */
  for (i = 0; i < qi_snapshot_segment_count(s); i++) {
    const qi_segment *g = qi_snapshot_segment(s, i);
    assert_int_equal(qi_segment_find_id(g, "3000", 4), -1);
    assert_int_equal(qi_segment_find_id(g, "150", 2), i == 0 ? 15 : -1); /* "15" */
    assert_int_equal(qi_segment_find_id(g, "1500x", 5), -1);
    assert_int_equal(qi_segment_find_id(g, "", 0), -1);
    assert_int_equal(qi_segment_find_id(g, "abc", 3), -1);
  }
  qi_snapshot_release(s);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void find_id_takes_any_bytes_up_to_the_longest_id(void **state) {
  char dir[4096], longid[QI_ID_MAX + 1];
  qi_index *ix = mk(dir, NULL);
  qi_snapshot *s;
  size_t seg = SIZE_MAX;
  (void)state;
  memset(longid, 'z', QI_ID_MAX);
  longid[QI_ID_MAX] = 0;
  put(ix, longid, "a");
  put(ix, "caf\xc3\xa9 \xe6\x97\xa5", "b");
  put(ix, "with space/and?query", "c");
  refresh(ix);
  s = qi_index_snapshot(ix);
  assert_int_equal(find_live(s, longid, QI_ID_MAX, &seg), 0);
  assert_int_equal(find_live(s, longid, QI_ID_MAX - 1, &seg), -1);
  assert_int_equal(find_live(s, "caf\xc3\xa9 \xe6\x97\xa5", 9, &seg), 1);
  assert_int_equal(find_live(s, "caf\xc3\xa9", 5, &seg), -1);
  assert_int_equal(find_live(s, "with space/and?query", 20, &seg), 2);
  qi_snapshot_release(s);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void find_id_prefers_the_live_copy_of_an_updated_document(void **state) {
  char dir[4096];
  qi_options opt = {0};
  qi_index *ix;
  qi_snapshot *before, *after;
  const qi_segment *g;
  qb_err err;
  size_t seg = SIZE_MAX;
  (void)state;
  opt.no_auto_merge = 1;
  ix = mk(dir, &opt);
  /* two copies of "a" in one buffer: doc 0 (deleted by the update) and doc 2 */
  put(ix, "a", "one");
  put(ix, "b", "keeps the segment alive");
  put(ix, "a", "two");
  refresh(ix);
  before = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_segment_count(before), 1);
  g = qi_snapshot_segment(before, 0);
  assert_int_equal(qi_segment_max_doc(g), 3);
  assert_int_equal(qi_segment_find_id(g, "a", 1), 2);
  assert_true(qi_segment_is_live(g, 2));
  assert_int_equal(find_live(before, "b", 1, &seg), 1);
  /* deleted everywhere: the newest copy comes back, not live; older snapshots keep theirs */
  assert_int_equal(qi_index_delete(ix, "a", NULL, &err), QB_OK);
  refresh(ix);
  after = qi_index_snapshot(ix);
  g = qi_snapshot_segment(after, 0);
  assert_int_equal(qi_segment_find_id(g, "a", 1), 2);
  assert_false(qi_segment_is_live(g, 2));
  assert_int_equal(find_live(after, "a", 1, &seg), -1);
  assert_int_equal(find_live(before, "a", 1, &seg), 2);
  /* updated again into a new segment: live there, a deleted copy in the old one */
  put(ix, "a", "three");
  refresh(ix);
  qi_snapshot_release(after);
  after = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_segment_count(after), 2);
  assert_int_equal(find_live(after, "a", 1, &seg), 0);
  assert_int_equal(seg, 1);
  qi_snapshot_release(before);
  qi_snapshot_release(after);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void find_id_works_after_merge_and_reopen(void **state) {
  char dir[4096], id[32];
  qi_options opt = {0};
  qi_index *ix;
  qi_snapshot *s;
  qb_err err;
  size_t seg = SIZE_MAX;
  int k, pass;
  (void)state;
  opt.no_auto_merge = 1;
  ix = mk(dir, &opt);
  for (k = 0; k < 600; k++) {
    snprintf(id, sizeof id, "doc-%d", k);
    put(ix, id, "x");
    if (k % 200 == 199) refresh(ix);
  }
  for (k = 0; k < 600; k += 3) { /* deletes and updates across segments */
    snprintf(id, sizeof id, "doc-%d", k);
    if (k % 2) put(ix, id, "updated");
    else assert_int_equal(qi_index_delete(ix, id, NULL, &err), QB_OK);
  }
  assert_int_equal(qi_index_force_merge(ix, 1, &err), QB_OK);
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_segment_count(s), 1);
  assert_int_equal(qi_segment_max_doc(qi_snapshot_segment(s, 0)), 500);
  check_all_found(s);
  assert_int_equal(find_live(s, "doc-0", 5, &seg), -1);
  assert_true(find_live(s, "doc-3", 5, &seg) >= 0);
  qi_snapshot_release(s);
  qi_index_close(ix);
  /* pass 0: segment files load; pass 1: no_persist, a rebuild from the store */
  for (pass = 0; pass < 2; pass++) {
    opt.no_persist = (uint8_t)pass;
    if (qi_index_open(dir, &opt, &ix, &err)) fail_msg("open: %s", err.msg);
    s = qi_index_snapshot(ix);
    assert_int_equal(qi_snapshot_doc_count(s), 500);
    check_all_found(s);
    for (k = 0; k < 600; k++) {
      int64_t d;
      snprintf(id, sizeof id, "doc-%d", k);
      d = find_live(s, id, strlen(id), &seg);
      if ((d >= 0) != (k % 3 != 0 || k % 2 != 0))
        fail_msg("pass %d: doc-%d found %lld", pass, k, (long long)d);
    }
    qi_snapshot_release(s);
    qi_index_close(ix);
  }
  tmpdir_remove(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(find_id_finds_each_document_in_its_segment_only),
      cmocka_unit_test(find_id_takes_any_bytes_up_to_the_longest_id),
      cmocka_unit_test(find_id_prefers_the_live_copy_of_an_updated_document),
      cmocka_unit_test(find_id_works_after_merge_and_reopen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
