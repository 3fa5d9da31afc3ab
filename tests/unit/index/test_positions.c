/* test_positions.c: token positions of text fields, for phrase queries: round trip through the
** buffer, across blocks, through merges and through segment files; multi-valued fields keep
** Elasticsearch's position_increment_gap of 100; keyword fields keep none. */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void put(qi_index *ix, const char *id, const char *json) {
  qb_err err;
  if (qi_index_put(ix, id, json, strlen(json), NULL, &err)) fail_msg("put %s: %s", id, err.msg);
}

/* Positions of TERM in FIELD for doc ID (searched in every segment) into OUT; returns count,
** or -1 when the doc does not contain the term. */
static int positions_of(qi_snapshot *s, const char *field, const char *term, const char *id,
                        uint32_t *out) {
  qi_field_info fi;
  size_t i;
  if (qi_snapshot_field(s, field, &fi)) return -1;
  for (i = 0; i < qi_snapshot_segment_count(s); i++) {
    const qi_segment *seg = qi_snapshot_segment(s, i);
    qi_postings *p = NULL;
    uint32_t d;
    qi_postings_open_term(seg, fi.id, term, strlen(term), &p, NULL);
    if (!p) continue;
    while ((d = qi_postings_next(p)) != QI_NO_MORE_DOCS)
      if (!strcmp(qi_segment_doc_id(seg, d, NULL), id)) {
        int n = (int)qi_postings_positions(p, out, 64);
        qi_postings_free(p);
        return n;
      }
    qi_postings_free(p);
  }
  return -1;
}

static void positions_round_trip_with_the_value_gap(void **state) {
  char dir[4096];
  qi_index *ix;
  qi_snapshot *s;
  qi_field_info fi;
  uint32_t pos[64];
  qb_err err;
  (void)state;
  tmpdir_new(dir);
  assert_int_equal(qi_index_create(dir, NULL, NULL, &ix, &err), QB_OK);
  put(ix, "a", "{\"t\":\"the cat saw the other cat\",\"k\":\"the\"}");
  put(ix, "b", "{\"t\":[\"one cat\",\"\",\"cat two\"]}");
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  s = qi_index_snapshot(ix);
  assert_int_equal(positions_of(s, "t", "cat", "a", pos), 2);
  assert_int_equal(pos[0], 1);
  assert_int_equal(pos[1], 5);
  assert_int_equal(positions_of(s, "t", "the", "a", pos), 2);
  assert_int_equal(pos[0], 0);
  assert_int_equal(pos[1], 3);
  /* "one cat" = 0,1; the empty value adds nothing; "cat two" starts at 2 + 100 */
  assert_int_equal(positions_of(s, "t", "cat", "b", pos), 2);
  assert_int_equal(pos[0], 1);
  assert_int_equal(pos[1], 102);
  assert_int_equal(qi_snapshot_field(s, "t", &fi), QB_OK);
  assert_int_equal(fi.has_positions, 1);
  assert_int_equal(qi_snapshot_field(s, "t.keyword", &fi), QB_OK);
  assert_int_equal(fi.has_positions, 0);
  assert_int_equal(positions_of(s, "k.keyword", "the", "a", pos), 0); /* keyword: none */
  qi_snapshot_release(s);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

/* doc i: "w0 w1 ... " where word "x" appears at positions i % 7 and i % 7 + 3 + i % 5 */
static void make(int i, char *doc, size_t cap) {
  int a = i % 7, b = a + 3 + i % 5, k, n = b + 2;
  size_t len = (size_t)snprintf(doc, cap, "{\"t\":\"");
  for (k = 0; k < n; k++)
    len += (size_t)snprintf(doc + len, cap - len, "%s%s", k ? " " : "", (k == a || k == b) ? "x" : "y");
  snprintf(doc + len, cap - len, "\"}");
}

static void check_all(qi_index *ix, int from, int to, int step) {
  qi_snapshot *s = qi_index_snapshot(ix);
  qi_field_info fi;
  size_t i;
  int seen = 0;
  assert_int_equal(qi_snapshot_field(s, "t", &fi), QB_OK);
  for (i = 0; i < qi_snapshot_segment_count(s); i++) {
    const qi_segment *seg = qi_snapshot_segment(s, i);
    qi_postings *p = NULL;
    uint32_t d, pos[8];
    qi_postings_open_term(seg, fi.id, "x", 1, &p, NULL);
    assert_non_null(p);
    /* advance in strides, then read positions: the lazy skipping inside a block must hold */
    for (d = qi_postings_advance(p, 3); d != QI_NO_MORE_DOCS; d = qi_postings_advance(p, d + 3)) {
      int id = atoi(qi_segment_doc_id(seg, d, NULL));
      assert_int_equal(qi_postings_positions(p, pos, 8), 2);
      assert_int_equal(pos[0], id % 7);
      assert_int_equal(pos[1], id % 7 + 3 + id % 5);
      seen++;
    }
    qi_postings_free(p);
  }
  assert_true(seen > (to - from) / step / 4);
  qi_snapshot_release(s);
}

static void positions_survive_blocks_merges_and_reopen(void **state) {
  char dir[4096], doc[256], id[16];
  qi_index *ix;
  qi_options opt = {0};
  qb_err err;
  int i;
  (void)state;
  opt.max_buffered_docs = 700;
  opt.no_auto_merge = 1;
  tmpdir_new(dir);
  assert_int_equal(qi_index_create(dir, NULL, &opt, &ix, &err), QB_OK);
  for (i = 0; i < 3000; i++) {
    make(i, doc, sizeof doc);
    snprintf(id, sizeof id, "%d", i);
    put(ix, id, doc);
  }
  for (i = 0; i < 3000; i += 11) {
    snprintf(id, sizeof id, "%d", i);
    assert_int_equal(qi_index_delete(ix, id, NULL, &err), QB_OK);
  }
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  check_all(ix, 0, 3000, 3);
  assert_int_equal(qi_index_force_merge(ix, 1, &err), QB_OK);
  check_all(ix, 0, 3000, 3);
  qi_index_close(ix);
  assert_int_equal(qi_index_open(dir, &opt, &ix, &err), QB_OK);
  check_all(ix, 0, 3000, 3);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(positions_round_trip_with_the_value_gap),
      cmocka_unit_test(positions_survive_blocks_merges_and_reopen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
