/* test_merger.c: background merges. Under concurrent writes (puts, updates, deletes, refreshes)
** and searches, every snapshot holds each live _id exactly once and its counts agree, and the
** end state has exactly the documents written; a merge whose file cannot be written (injected
** disk-full) leaves the old segments serving and is retried once the segments change; closing
** an index with merges due joins the merge thread. */
#include "support.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define NIDS 600

typedef struct shared {
  qi_index *ix;
  int stop;
  int bad;          /* a snapshot broke an invariant */
  unsigned checked; /* snapshots checked */
} shared;

static void put(qi_index *ix, int id, int round) {
  char key[16], doc[96];
  qb_err err;
  snprintf(key, sizeof key, "%d", id);
  snprintf(doc, sizeof doc, "{\"body\":\"common w%d r%d\",\"n\":%d}", id % 7, round, id);
  if (qi_index_put(ix, key, doc, strlen(doc), NULL, &err)) fail_msg("put %s: %s", key, err.msg);
}

/* Within one snapshot: the live docs are distinct _ids, their number is the doc count, and the
** term every document has matches each of them. */
static int snapshot_consistent(qi_snapshot *s) {
  unsigned char seen[NIDS] = {0};
  uint64_t live = 0;
  size_t i;
  const char *t = "common";
  hit h[1];
  for (i = 0; i < qi_snapshot_segment_count(s); i++) {
    const qi_segment *seg = qi_snapshot_segment(s, i);
    uint32_t d;
    for (d = 0; d < qi_segment_max_doc(seg); d++) {
      int id;
      if (!qi_segment_is_live(seg, d)) continue;
      id = atoi(qi_segment_doc_id(seg, d, NULL));
      if (id < 0 || id >= NIDS || seen[id]++) return 0;
      if (qi_segment_find_id(seg, qi_segment_doc_id(seg, d, NULL),
                             strlen(qi_segment_doc_id(seg, d, NULL))) != (int64_t)d)
        return 0;
      live++;
    }
  }
  return live == qi_snapshot_doc_count(s) && search_or(s, "body", &t, 1, h, 1) == live;
}

static void *searcher(void *arg) {
  shared *sh = arg;
  while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
    qi_snapshot *s = qi_index_snapshot(sh->ix);
    if (!snapshot_consistent(s)) __atomic_store_n(&sh->bad, 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&sh->checked, 1, __ATOMIC_RELAXED);
    qi_snapshot_release(s);
  }
  return NULL;
}

static void merges_under_concurrent_writes_and_searches(void **state) {
  char dir[4096], key[16];
  qi_options opt = {0};
  qi_index *ix;
  qi_index_stats st;
  qi_snapshot *s;
  pthread_t th[2];
  shared sh = {0};
  unsigned char want[NIDS] = {0};
  uint64_t nwant = 0;
  unsigned seed = 12345;
  qb_err err;
  int i, k;
  (void)state;
  opt.max_buffered_docs = 40;
  opt.max_segments = 4;
  opt.merge_factor = 3;
  tmpdir_new(dir);
  assert_int_equal(qi_index_create(dir, NULL, &opt, &ix, &err), QB_OK);
  sh.ix = ix;
  for (i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, searcher, &sh), 0);
  for (i = 0; i < 4000; i++) {
    int id;
    seed = seed * 1103515245u + 12345u;
    id = (int)((seed >> 8) % NIDS);
    if ((seed >> 4) % 5 == 0 && want[id]) { /* delete */
      snprintf(key, sizeof key, "%d", id);
      assert_int_equal(qi_index_delete(ix, key, NULL, &err), QB_OK);
      want[id] = 0;
      nwant--;
    } else { /* create or update */
      put(ix, id, i);
      if (!want[id]) nwant++;
      want[id] = 1;
    }
    if (i % 97 == 0) assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
    assert_int_equal(qi_index_doc_count(ix), nwant);
  }
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  qi_index_wait_merges(ix);
  __atomic_store_n(&sh.stop, 1, __ATOMIC_RELEASE);
  for (i = 0; i < 2; i++) pthread_join(th[i], NULL);
  assert_int_equal(sh.bad, 0);
  assert_true(sh.checked > 0);
  qi_index_stats_get(ix, &st);
  assert_true(st.merges > 0);
  assert_true(st.segments <= 4);
  assert_int_equal(st.live_docs, nwant);
  s = qi_index_snapshot(ix);
  assert_true(snapshot_consistent(s));
  assert_int_equal(qi_snapshot_doc_count(s), nwant);
  for (k = 0; k < NIDS; k++) { /* exactly the documents written: found iff wanted */
    size_t j, found = 0;
    snprintf(key, sizeof key, "%d", k);
    for (j = 0; j < qi_snapshot_segment_count(s); j++) {
      const qi_segment *seg = qi_snapshot_segment(s, j);
      int64_t d = qi_segment_find_id(seg, key, strlen(key));
      found += d >= 0 && qi_segment_is_live(seg, (uint32_t)d);
    }
    assert_int_equal(found, want[k]);
  }
  qi_snapshot_release(s);
  qi_index_close(ix);
  /* and the files agree after a restart */
  assert_int_equal(qi_index_open(dir, &opt, &ix, &err), QB_OK);
  assert_int_equal(qi_index_doc_count(ix), nwant);
  s = qi_index_snapshot(ix);
  assert_true(snapshot_consistent(s));
  qi_snapshot_release(s);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void round_of(qi_index *ix, int from, int to) {
  qb_err err;
  int i;
  for (i = from; i < to; i++) put(ix, i, 0);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
}

static void a_failed_merge_leaves_the_old_segments_serving(void **state) {
  char dir[4096];
  qi_options opt = {0};
  qi_index *ix;
  qi_index_stats st;
  qi_snapshot *s;
  qb_err err;
  (void)state;
  opt.max_segments = 3;
  opt.merge_factor = 3;
  tmpdir_new(dir);
  assert_int_equal(qi_index_create(dir, NULL, &opt, &ix, &err), QB_OK);
  round_of(ix, 0, 50);
  round_of(ix, 50, 100);
  round_of(ix, 100, 150);
  qi_index_wait_merges(ix);
  qi_index_stats_get(ix, &st);
  assert_int_equal(st.segments, 3);
  assert_int_equal(st.merges, 0);
  setenv("QD_TEST_SEGMENT_WRITE_FAIL", "1", 1); /* the disk is full from now on */
  round_of(ix, 150, 200);                      /* 4 segments: a merge starts and fails */
  qi_index_wait_merges(ix);
  qi_index_stats_get(ix, &st);
  assert_int_equal(st.merges, 0);
  assert_int_equal(st.segments, 4);
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_segment_count(s), 4);
  assert_int_equal(qi_snapshot_doc_count(s), 200);
  {
    const char *t = "common";
    hit h[1];
    assert_int_equal(search_or(s, "body", &t, 1, h, 1), 200);
  }
  qi_snapshot_release(s);
  assert_int_equal(qi_index_delete(ix, "7", NULL, &err), QB_OK); /* writes still go on */
  unsetenv("QD_TEST_SEGMENT_WRITE_FAIL");
  round_of(ix, 200, 210); /* the segments changed: the merge is tried again and succeeds */
  qi_index_wait_merges(ix);
  qi_index_stats_get(ix, &st);
  assert_true(st.merges > 0);
  assert_true(st.segments <= 3);
  assert_int_equal(st.live_docs, 209);
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_doc_count(s), 209);
  assert_true(snapshot_consistent(s));
  qi_snapshot_release(s);
  qi_index_close(ix);
  assert_int_equal(qi_index_open(dir, &opt, &ix, &err), QB_OK);
  assert_int_equal(qi_index_doc_count(ix), 209);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void closing_with_merges_due_joins_the_merge_thread(void **state) {
  char dir[4096];
  qi_options opt = {0};
  qi_index *ix;
  qb_err err;
  int r;
  (void)state;
  opt.max_segments = 2;
  opt.merge_factor = 2;
  tmpdir_new(dir);
  assert_int_equal(qi_index_create(dir, NULL, &opt, &ix, &err), QB_OK);
  for (r = 0; r < 12; r++) round_of(ix, r * 40, r * 40 + 40);
  qi_index_close(ix); /* merges may be running: close stops and joins them */
  assert_int_equal(qi_index_open(dir, &opt, &ix, &err), QB_OK);
  assert_int_equal(qi_index_doc_count(ix), 480);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(merges_under_concurrent_writes_and_searches),
      cmocka_unit_test(a_failed_merge_leaves_the_old_segments_serving),
      cmocka_unit_test(closing_with_merges_due_joins_the_merge_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
