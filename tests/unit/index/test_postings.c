/* test_postings.c: postings round-trip through the block codec, advance() over block
** boundaries, block-max data, and deleted documents skipped by the iterator. */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define NDOCS 5000

typedef struct fx {
  char dir[4096];
  qi_index *ix;
  qi_snapshot *s;
  const qi_segment *seg;
  uint32_t body;
} fx;

/* doc i contains "every" once, "even" (i % 2 == 0) (i % 5 + 1) times, "rare" when i % 997 == 3,
** and filler words so lengths vary. */
static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  qi_options opt = {0};
  qi_bulk *b;
  qi_field_info fi;
  qb_err err;
  int i, k;
  char id[32], doc[1024];
  opt.max_buffered_docs = 100000;
  tmpdir_new(f->dir);
  if (qi_index_create(f->dir, NULL, &opt, &f->ix, &err)) fail_msg("%s", err.msg);
  assert_int_equal(qi_bulk_begin(f->ix, &b, &err), QB_OK);
  for (i = 0; i < NDOCS; i++) {
    size_t n = 0;
    n += (size_t)snprintf(doc + n, sizeof doc - n, "{\"body\":\"every");
    if (i % 2 == 0)
      for (k = 0; k < i % 5 + 1; k++) n += (size_t)snprintf(doc + n, sizeof doc - n, " even");
    if (i % 997 == 3) n += (size_t)snprintf(doc + n, sizeof doc - n, " rare");
    for (k = 0; k < i % 13; k++) n += (size_t)snprintf(doc + n, sizeof doc - n, " filler%d", k);
    snprintf(doc + n, sizeof doc - n, "\",\"n\":%d}", i);
    snprintf(id, sizeof id, "d%d", i);
    if (qi_bulk_put(b, id, doc, strlen(doc), NULL, &err)) fail_msg("%s", err.msg);
  }
  assert_int_equal(qi_bulk_commit(b, &err), QB_OK);
  assert_int_equal(qi_index_refresh(f->ix, &err), QB_OK);
  f->s = qi_index_snapshot(f->ix);
  assert_int_equal(qi_snapshot_segment_count(f->s), 1);
  f->seg = qi_snapshot_segment(f->s, 0);
  assert_int_equal(qi_snapshot_field(f->s, "body", &fi), QB_OK);
  f->body = fi.id;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  qi_snapshot_release(f->s);
  qi_index_close(f->ix);
  tmpdir_remove(f->dir);
  free(f);
  return 0;
}

static qi_postings *open_term(fx *f, const char *t) {
  qi_postings *p = NULL;
  assert_int_equal(qi_postings_open_term(f->seg, f->body, t, strlen(t), &p, NULL), QB_OK);
  assert_non_null(p);
  return p;
}

static void next_returns_every_posting_with_its_freq(void **state) {
  fx *f = *state;
  qi_postings *p = open_term(f, "even");
  uint32_t d, want = 0, n = 0;
  assert_int_equal(qi_postings_doc_freq(p), NDOCS / 2);
  while ((d = qi_postings_next(p)) != QI_NO_MORE_DOCS) {
    assert_int_equal(d, want);
    assert_int_equal(qi_postings_freq(p), want % 5 + 1);
    want += 2;
    n++;
  }
  assert_int_equal(n, NDOCS / 2);
  assert_int_equal(qi_postings_next(p), QI_NO_MORE_DOCS);
  qi_postings_free(p);
}

static void advance_lands_on_first_doc_at_or_after_target(void **state) {
  fx *f = *state;
  qi_postings *p = open_term(f, "even");
  assert_int_equal(qi_postings_advance(p, 0), 0);
  assert_int_equal(qi_postings_advance(p, 0), 0); /* not backwards */
  assert_int_equal(qi_postings_advance(p, 1), 2);
  assert_int_equal(qi_postings_advance(p, 255), 256); /* next block */
  assert_int_equal(qi_postings_freq(p), 256 % 5 + 1);
  assert_int_equal(qi_postings_advance(p, 3001), 3002); /* skips many blocks */
  assert_int_equal(qi_postings_next(p), 3004);
  assert_int_equal(qi_postings_advance(p, NDOCS - 2), NDOCS - 2);
  assert_int_equal(qi_postings_advance(p, NDOCS), QI_NO_MORE_DOCS);
  qi_postings_free(p);
  p = open_term(f, "rare");
  assert_int_equal(qi_postings_advance(p, 4), 1000);
  assert_int_equal(qi_postings_advance(p, 3900), 3991);
  assert_int_equal(qi_postings_next(p), 4988);
  assert_int_equal(qi_postings_next(p), QI_NO_MORE_DOCS);
  qi_postings_free(p);
}

static void block_data_bounds_every_block(void **state) {
  fx *f = *state;
  qi_postings *p = open_term(f, "even");
  const uint8_t *norms = qi_segment_norms(f->seg, f->body);
  qi_block_info bi, all;
  uint32_t nb = qi_postings_block_count(p), k, d;
  assert_int_equal(nb, (NDOCS / 2 + QI_BLOCK_SIZE - 1) / QI_BLOCK_SIZE);
  qi_postings_term_bound(p, &all);
  assert_int_equal(all.max_freq, 5);
  for (k = 0; k < nb; k++) {
    qi_postings_block(p, k, &bi);
    assert_int_equal(bi.first_doc, k * QI_BLOCK_SIZE * 2);
    assert_true(bi.last_doc >= bi.first_doc);
  }
  /* every posting lies within its block's bounds */
  while ((d = qi_postings_next(p)) != QI_NO_MORE_DOCS) {
    assert_int_equal(qi_postings_block_for(p, d, &bi), 1);
    assert_true(bi.first_doc <= d && d <= bi.last_doc);
    assert_true(qi_postings_freq(p) <= bi.max_freq);
    assert_true(norms[d] >= bi.min_norm && norms[d] >= all.min_norm);
  }
  assert_int_equal(qi_postings_block_for(p, NDOCS + 5, &bi), 0);
  qi_postings_free(p);
}

static void term_dictionary_is_sorted_and_seekable(void **state) {
  fx *f = *state;
  uint32_t n = qi_segment_term_count(f->seg, f->body), i;
  size_t l0, l1;
  const char *a, *b;
  int64_t o;
  assert_true(n >= 15);
  for (i = 1; i < n; i++) {
    a = qi_segment_term(f->seg, f->body, i - 1, &l0);
    b = qi_segment_term(f->seg, f->body, i, &l1);
    assert_true(memcmp(a, b, l0 < l1 ? l0 : l1) < 0 || (memcmp(a, b, l0 < l1 ? l0 : l1) == 0 && l0 < l1));
  }
  o = qi_segment_term_find(f->seg, f->body, "every", 5);
  assert_true(o >= 0);
  assert_int_equal(qi_segment_term_doc_freq(f->seg, f->body, (uint32_t)o), NDOCS);
  assert_int_equal(qi_segment_term_find(f->seg, f->body, "nope", 4), -1);
  a = qi_segment_term(f->seg, f->body, qi_segment_term_seek(f->seg, f->body, "fil", 3), &l0);
  assert_true(l0 >= 6 && !memcmp(a, "filler", 6));
  assert_int_equal(qi_snapshot_doc_freq(f->s, f->body, "rare", 4), 6);
}

static void deleted_documents_are_skipped(void **state) {
  fx *f = *state;
  qi_snapshot *s2;
  qi_postings *p = NULL;
  const qi_segment *seg;
  qb_err err;
  uint32_t n = 0;
  assert_int_equal(qi_index_delete(f->ix, "d1000", NULL, &err), QB_OK);
  assert_int_equal(qi_index_delete(f->ix, "d3991", NULL, &err), QB_OK);
  assert_int_equal(qi_index_refresh(f->ix, &err), QB_OK);
  s2 = qi_index_snapshot(f->ix);
  seg = qi_snapshot_segment(s2, 0);
  assert_int_equal(qi_segment_live_count(seg), NDOCS - 2);
  assert_int_equal(qi_postings_open_term(seg, f->body, "rare", 4, &p, NULL), QB_OK);
  assert_int_equal(qi_postings_advance(p, 4), 1997);
  while (qi_postings_next(p) != QI_NO_MORE_DOCS) n++;
  assert_int_equal(n, 2); /* 2994, 4988 */
  qi_postings_free(p);
  /* the old snapshot still sees them */
  p = open_term(f, "rare");
  assert_int_equal(qi_postings_advance(p, 4), 1000);
  qi_postings_free(p);
  qi_snapshot_release(s2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(next_returns_every_posting_with_its_freq),
      cmocka_unit_test(advance_lands_on_first_doc_at_or_after_target),
      cmocka_unit_test(block_data_bounds_every_block),
      cmocka_unit_test(term_dictionary_is_sorted_and_seekable),
      cmocka_unit_test(deleted_documents_are_skipped),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
