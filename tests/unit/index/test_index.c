/* test_index.c: the shard as a whole: refresh visibility, updates and deletes by _id,
** merges that keep results identical, doc values block reads, reopen after close, snapshots
** isolated from later writes, the catalog, and writers racing searchers. */
#include "support.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
                                    "golf", "hotel", "india", "juliet", "kilo", "lima"};

static void make_doc(int i, char *doc, size_t cap) {
  size_t n = 0;
  int k;
  n += (size_t)snprintf(doc + n, cap - n, "{\"body\":\"");
  for (k = 0; k < 3 + i % 9; k++)
    n += (size_t)snprintf(doc + n, cap - n, "%s%s", k ? " " : "", words[(i * 7 + k * k) % 12]);
  snprintf(doc + n, cap - n, "\",\"price\":%d.5,\"tier\":%d,\"tag\":\"t%d\"}", i % 100, i % 3,
           i % 4);
}

static qi_index *mk(char *dir, const qi_options *opt) {
  qi_index *ix = NULL;
  qb_err err;
  assert_non_null(tmpdir_new(dir));
  if (qi_index_create(dir,
                      "{\"mappings\":{\"properties\":{\"body\":{\"type\":\"text\"},\"price\":{"
                      "\"type\":\"double\"},\"tier\":{\"type\":\"integer\"},\"tag\":{\"type\":"
                      "\"keyword\"}}}}",
                      opt, &ix, &err))
    fail_msg("create: %s", err.msg);
  return ix;
}

static void put_range(qi_index *ix, int from, int to) {
  char doc[512], id[32];
  qb_err err;
  qi_bulk *b;
  int i;
  assert_int_equal(qi_bulk_begin(ix, &b, &err), QB_OK);
  for (i = from; i < to; i++) {
    make_doc(i, doc, sizeof doc);
    snprintf(id, sizeof id, "%d", i);
    if (qi_bulk_put(b, id, doc, strlen(doc), NULL, &err)) fail_msg("put: %s", err.msg);
  }
  if (qi_bulk_commit(b, &err)) fail_msg("commit: %s", err.msg);
}

static size_t count_term(qi_index *ix, const char *t) {
  qi_snapshot *s = qi_index_snapshot(ix);
  hit h[1];
  size_t n = search_or(s, "body", &t, 1, h, 1);
  qi_snapshot_release(s);
  return n;
}

static void writes_become_searchable_on_refresh(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_write_result r;
  qb_buf b;
  qb_err err;
  uint64_t ver, seq;
  (void)state;
  qb_buf_init(&b);
  assert_int_equal(qi_index_put(ix, "a", "{\"body\":\"hello there\"}", strlen("{\"body\":\"hello there\"}"), &r, &err), QB_OK);
  assert_int_equal(r.version, 1);
  assert_int_equal(r.seq_no, 0);
  assert_int_equal(r.created, 1);
  assert_int_equal(count_term(ix, "hello"), 0);
  /* realtime get sees it before refresh */
  assert_int_equal(qi_index_get(ix, "a", &b, &ver, &seq, &err), QB_OK);
  assert_string_equal(b.data, "{\"body\":\"hello there\"}");
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  assert_int_equal(count_term(ix, "hello"), 1);
  /* generated ids are 20 characters */
  assert_int_equal(qi_index_put(ix, NULL, "{\"body\":\"x\"}", 12, &r, &err), QB_OK);
  assert_int_equal(strlen(r.id), 20);
  assert_int_equal(r.seq_no, 1);
  qb_buf_fini(&b);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void updates_and_deletes_by_id(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_write_result r;
  qi_snapshot *s;
  qb_buf b;
  qb_err err;
  hit h[4];
  const char *t = "first";
  uint64_t ver;
  (void)state;
  qb_buf_init(&b);
  assert_int_equal(qi_index_put(ix, "a", "{\"body\":\"first\"}", strlen("{\"body\":\"first\"}"), &r, &err), QB_OK);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  /* update a refreshed doc and a buffered one */
  assert_int_equal(qi_index_put(ix, "a", "{\"body\":\"second\"}", strlen("{\"body\":\"second\"}"), &r, &err), QB_OK);
  assert_int_equal(r.version, 2);
  assert_int_equal(r.created, 0);
  assert_int_equal(qi_index_put(ix, "b", "{\"body\":\"first\"}", strlen("{\"body\":\"first\"}"), &r, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "b", "{\"body\":\"third\"}", strlen("{\"body\":\"third\"}"), &r, &err), QB_OK);
  assert_int_equal(qi_index_doc_count(ix), 2);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  assert_int_equal(count_term(ix, "first"), 0);
  assert_int_equal(count_term(ix, "second"), 1);
  assert_int_equal(count_term(ix, "third"), 1);
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_doc_count(s), 2);
  /* deleted docs still count in the statistics until merged (Lucene's rule): b's old version
  ** counts; a's old segment had nothing live left and was dropped */
  assert_int_equal(qi_snapshot_doc_freq(s, 0, t, 5), 1);
  qi_snapshot_release(s);
  assert_int_equal(qi_index_get(ix, "a", &b, &ver, NULL, &err), QB_OK);
  assert_int_equal(ver, 2);
  assert_int_equal(qi_index_delete(ix, "a", &r, &err), QB_OK);
  assert_int_equal(r.version, 3);
  assert_int_equal(qi_index_delete(ix, "a", &r, &err), QB_NOTFOUND);
  assert_int_equal(qi_index_get(ix, "a", &b, NULL, NULL, &err), QB_NOTFOUND);
  assert_int_equal(count_term(ix, "second"), 1); /* not refreshed yet */
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  assert_int_equal(count_term(ix, "second"), 0);
  s = qi_index_snapshot(ix);
  assert_int_equal(search_or(s, "body", &t, 1, h, 4), 0);
  qi_snapshot_release(s);
  qb_buf_fini(&b);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

/* Every posting of TERM lies inside its block, under the block's max freq and over its min norm. */
static void check_blocks(qi_snapshot *s, const char *term) {
  qi_field_info fi;
  size_t i;
  assert_int_equal(qi_snapshot_field(s, "body", &fi), QB_OK);
  for (i = 0; i < qi_snapshot_segment_count(s); i++) {
    const qi_segment *seg = qi_snapshot_segment(s, i);
    const uint8_t *norms = qi_segment_norms(seg, fi.id);
    qi_postings *p = NULL;
    qi_block_info bi;
    uint32_t d;
    assert_int_equal(qi_postings_open_term(seg, fi.id, term, strlen(term), &p, NULL), QB_OK);
    if (!p) continue;
    while ((d = qi_postings_next(p)) != QI_NO_MORE_DOCS) {
      assert_int_equal(qi_postings_block_for(p, d, &bi), 1);
      assert_true(bi.first_doc <= d && d <= bi.last_doc);
      assert_true(qi_postings_freq(p) <= bi.max_freq);
      assert_true(norms[d] >= bi.min_norm);
    }
    qi_postings_free(p);
  }
}

static void merge_keeps_results_identical(void **state) {
  char dir[4096];
  qi_options opt = {0};
  qi_index *ix;
  qi_snapshot *s;
  qi_index_stats st;
  hit a[50], b[50];
  const char *q[2] = {"delta", "kilo"};
  size_t na, nb, i;
  qb_err err;
  (void)state;
  opt.max_buffered_docs = 500;
  opt.no_auto_merge = 1;
  ix = mk(dir, &opt);
  put_range(ix, 0, 3000);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_segment_count(s), 6);
  na = search_or(s, "body", q, 2, a, 50);
  qi_snapshot_release(s);
  assert_int_equal(qi_index_force_merge(ix, 1, &err), QB_OK);
  qi_index_stats_get(ix, &st);
  assert_int_equal(st.segments, 1);
  s = qi_index_snapshot(ix);
  nb = search_or(s, "body", q, 2, b, 50);
  check_blocks(s, "delta");
  check_blocks(s, "alpha");
  qi_snapshot_release(s);
  assert_true(na > 100);
  assert_int_equal(na, nb);
  for (i = 0; i < 50; i++) {
    assert_string_equal(a[i].id, b[i].id);
    assert_true(a[i].score == b[i].score);
    assert_int_equal(a[i].gdoc, b[i].gdoc);
  }
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void merge_drops_deleted_docs_and_keeps_doc_values(void **state) {
  char dir[4096];
  qi_options opt = {0};
  qi_index *ix;
  qi_snapshot *s;
  const qi_segment *seg;
  qi_field_info fp, ft, fg;
  qb_err err;
  uint32_t docs[3];
  double pv[3];
  int64_t tv[3], ov[3];
  uint8_t pr[3];
  size_t len;
  const char *term, *id;
  int i;
  char key[16];
  (void)state;
  opt.max_buffered_docs = 100;
  opt.max_segments = 3;
  opt.merge_factor = 4;
  ix = mk(dir, &opt);
  put_range(ix, 0, 1000);
  for (i = 0; i < 1000; i += 2) {
    snprintf(key, sizeof key, "%d", i);
    assert_int_equal(qi_index_delete(ix, key, NULL, &err), QB_OK);
  }
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  assert_int_equal(qi_index_force_merge(ix, 1, &err), QB_OK);
  s = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_segment_count(s), 1);
  assert_int_equal(qi_snapshot_max_doc(s), 500);
  assert_int_equal(qi_snapshot_doc_count(s), 500);
  seg = qi_snapshot_segment(s, 0);
  assert_int_equal(qi_snapshot_field(s, "price", &fp), QB_OK);
  assert_int_equal(qi_snapshot_field(s, "tier", &ft), QB_OK);
  assert_int_equal(qi_snapshot_field(s, "tag", &fg), QB_OK);
  assert_int_equal(fg.dv, QI_DV_KEYWORD);
  docs[0] = 0;
  docs[1] = 1;
  docs[2] = 499;
  qi_dv_read_f64(seg, fp.id, docs, 3, pv, pr);
  qi_dv_read_i64(seg, ft.id, docs, 3, tv, NULL);
  qi_dv_read_ord(seg, fg.id, docs, 3, ov);
  for (i = 0; i < 3; i++) {
    int orig;
    id = qi_segment_doc_id(seg, docs[i], NULL);
    orig = atoi(id);
    assert_int_equal(orig % 2, 1);
    assert_true(pv[i] == orig % 100 + 0.5 && pr[i] == 1);
    assert_int_equal(tv[i], orig % 3);
    term = qi_dv_ord_term(seg, fg.id, (uint32_t)ov[i], &len);
    snprintf(key, sizeof key, "t%d", orig % 4);
    assert_int_equal(len, strlen(key));
    assert_memory_equal(term, key, len);
  }
  assert_int_equal(qi_dv_ord_count(seg, fg.id), 2); /* only t1 and t3 remain */
  qi_snapshot_release(s);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void auto_merge_bounds_the_segment_count(void **state) {
  char dir[4096];
  qi_options opt = {0};
  qi_index *ix;
  qi_index_stats st;
  qb_err err;
  int r;
  (void)state;
  opt.max_buffered_docs = 20;
  opt.max_segments = 4;
  opt.merge_factor = 3;
  ix = mk(dir, &opt);
  for (r = 0; r < 30; r++) {
    put_range(ix, r * 50, r * 50 + 50);
    assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
    qi_index_wait_merges(ix); /* merges run in the background */
    qi_index_stats_get(ix, &st);
    assert_true(st.segments <= 4);
  }
  assert_true(st.merges > 0);
  assert_int_equal(count_term(ix, "alpha") + 0 > 0, 1);
  assert_int_equal(qi_index_doc_count(ix), 1500);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void doc_values_read_blocks_and_keywords(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_snapshot *s;
  const qi_segment *seg;
  qi_field_info fp, fg;
  qb_err err;
  uint32_t docs[4] = {3, 0, 2, 1};
  double pv[4];
  int64_t iv[4];
  uint8_t pr[4];
  const uint32_t *ords;
  const uint8_t *present;
  size_t len;
  (void)state;
  assert_int_equal(qi_index_put(ix, "0", "{\"price\":1.25,\"tag\":[\"b\",\"a\",\"b\"]}", strlen("{\"price\":1.25,\"tag\":[\"b\",\"a\",\"b\"]}"), NULL, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "1", "{\"tag\":\"c\"}", strlen("{\"tag\":\"c\"}"), NULL, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "2", "{\"price\":[7,-2.5]}", strlen("{\"price\":[7,-2.5]}"), NULL, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "3", "{\"price\":1e300}", strlen("{\"price\":1e300}"), NULL, &err), QB_OK);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  s = qi_index_snapshot(ix);
  seg = qi_snapshot_segment(s, 0);
  qi_snapshot_field(s, "price", &fp);
  qi_snapshot_field(s, "tag", &fg);
  qi_dv_read_f64(seg, fp.id, docs, 4, pv, pr);
  assert_true(pv[0] == 1e300 && pv[1] == 1.25 && pv[2] == -2.5 && pv[3] == 0);
  assert_true(pr[0] && pr[1] && pr[2] && !pr[3]);
  qi_dv_read_i64(seg, fp.id, docs, 4, iv, pr);
  assert_true(iv[0] == INT64_MAX && iv[1] == 1 && iv[2] == -2);
  assert_non_null(qi_dv_f64_column(seg, fp.id, &present));
  assert_null(qi_dv_i64_column(seg, fp.id, NULL));
  assert_int_equal(present[1], 0);
  assert_int_equal(qi_dv_kind_of(seg, fp.id), QI_DV_F64);
  assert_int_equal(qi_dv_ord_count(seg, fg.id), 3);
  assert_int_equal(qi_dv_doc_ords(seg, fg.id, 0, &ords), 2); /* a, b (deduplicated) */
  assert_int_equal(ords[0], 0);
  assert_int_equal(ords[1], 1);
  assert_memory_equal(qi_dv_ord_term(seg, fg.id, 2, &len), "c", 1);
  assert_int_equal(qi_dv_doc_ords(seg, fg.id, 2, &ords), 0);
  /* keyword terms are searchable as single terms */
  assert_int_equal(qi_snapshot_doc_freq(s, fg.id, "b", 1), 1);
  qi_snapshot_release(s);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void reopen_after_close_restores_everything(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_snapshot *s;
  hit a[20], b[20];
  const char *q[2] = {"echo", "lima"};
  size_t na, nb, i;
  qb_buf buf;
  qb_err err;
  uint64_t ver;
  qi_write_result r;
  (void)state;
  qb_buf_init(&buf);
  put_range(ix, 0, 700);
  assert_int_equal(qi_index_put(ix, "5", "{\"body\":\"echo echo echo\",\"extra\":\"dyn\"}", strlen("{\"body\":\"echo echo echo\",\"extra\":\"dyn\"}"), NULL, &err), QB_OK);
  assert_int_equal(qi_index_delete(ix, "6", NULL, &err), QB_OK);
  /* merged, so the statistics no longer count deleted docs, as after a rebuild */
  assert_int_equal(qi_index_force_merge(ix, 1, &err), QB_OK);
  s = qi_index_snapshot(ix);
  na = search_or(s, "body", q, 2, a, 20);
  qi_snapshot_release(s);
  qi_index_close(ix);
  if (qi_index_open(dir, NULL, &ix, &err)) fail_msg("open: %s", err.msg);
  assert_int_equal(qi_index_doc_count(ix), 699);
  assert_int_equal(qi_index_get(ix, "5", &buf, &ver, NULL, &err), QB_OK);
  assert_int_equal(ver, 2);
  qb_buf_reset(&buf);
  qi_index_mapping_json(ix, &buf, NULL);
  assert_non_null(strstr(buf.data, "\"extra\":{\"type\":\"text\""));
  s = qi_index_snapshot(ix);
  nb = search_or(s, "body", q, 2, b, 20);
  qi_snapshot_release(s);
  assert_int_equal(na, nb);
  for (i = 0; i < 20; i++) {
    assert_string_equal(a[i].id, b[i].id);
    assert_true(a[i].score == b[i].score);
    assert_int_equal(a[i].gdoc, b[i].gdoc);
  }
  /* seq_no keeps counting after reopen */
  assert_int_equal(qi_index_put(ix, "new", "{}", strlen("{}"), &r, &err), QB_OK);
  assert_int_equal(r.seq_no, 702);
  qi_index_close(ix);
  assert_int_equal(qi_index_open("/nonexistent/dir", NULL, &ix, &err), QB_NOTFOUND);
  qb_buf_fini(&buf);
  tmpdir_remove(dir);
}

static void snapshots_are_isolated_from_later_writes(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_snapshot *old, *cur;
  qb_err err;
  qb_buf b;
  (void)state;
  qb_buf_init(&b);
  put_range(ix, 0, 100);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  old = qi_index_snapshot(ix);
  put_range(ix, 100, 200);
  assert_int_equal(qi_index_delete(ix, "0", NULL, &err), QB_OK);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  cur = qi_index_snapshot(ix);
  assert_int_equal(qi_snapshot_doc_count(old), 100);
  assert_true(qi_segment_is_live(qi_snapshot_segment(old, 0), 0));
  assert_int_equal(qi_snapshot_doc_count(cur), 199);
  assert_false(qi_segment_is_live(qi_snapshot_segment(cur, 0), 0));
  /* _source through a snapshot comes from the store */
  assert_int_equal(qi_snapshot_source(cur, qi_snapshot_segment(cur, 0), 1, &b, &err), QB_OK);
  assert_non_null(strstr(b.data, "\"tag\":\"t1\""));
  qi_snapshot_release(cur);
  qi_snapshot_release(old);
  qb_buf_fini(&b);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void a_snapshot_keeps_its_index_alive_after_close(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_snapshot *s;
  const char *t = "alpha";
  hit h[4];
  qb_buf b;
  qb_err err;
  (void)state;
  qb_buf_init(&b);
  put_range(ix, 0, 50);
  assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  s = qi_index_snapshot(ix);
  qi_index_close(ix);
  assert_true(search_or(s, "body", &t, 1, h, 4) > 0);
  assert_int_equal(qi_snapshot_source(s, qi_snapshot_segment(s, 0), 3, &b, &err), QB_OK);
  assert_non_null(strstr(b.data, "\"tier\":0"));
  qi_snapshot_release(s); /* frees the index */
  qb_buf_fini(&b);
  tmpdir_remove(dir);
}

static void conditional_writes_conflict_like_elasticsearch(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_write_cond create = {.create_only = 1}, ifseq = {.has_if_seq_no = 1};
  qi_write_result r;
  qi_bulk *b;
  qb_err err;
  const char *d = "{\"body\":\"x\"}";
  (void)state;
  assert_int_equal(qi_index_put_if(ix, "a", d, strlen(d), &create, &r, &err), QB_OK);
  assert_int_equal(r.seq_no, 0);
  assert_int_equal(qi_index_put_if(ix, "a", d, strlen(d), &create, &r, &err), QB_CONFLICT);
  assert_string_equal(err.msg, "[a]: version conflict, document already exists (current version [1])");
  ifseq.if_seq_no = 7;
  assert_int_equal(qi_index_put_if(ix, "a", d, strlen(d), &ifseq, &r, &err), QB_CONFLICT);
  assert_non_null(strstr(err.msg, "required seqNo [7]"));
  assert_non_null(strstr(err.msg, "current document has seqNo [0]"));
  ifseq.if_seq_no = 0;
  assert_int_equal(qi_index_put_if(ix, "a", d, strlen(d), &ifseq, &r, &err), QB_OK);
  assert_int_equal(r.version, 2);
  assert_int_equal(r.seq_no, 1);
  assert_int_equal(qi_index_delete_if(ix, "a", &ifseq, &r, &err), QB_CONFLICT);
  ifseq.if_seq_no = 1;
  assert_int_equal(qi_bulk_begin(ix, &b, &err), QB_OK);
  assert_int_equal(qi_bulk_put_if(b, "b", d, strlen(d), &create, &r, &err), QB_OK);
  assert_int_equal(qi_bulk_put_if(b, "b", d, strlen(d), &create, &r, &err), QB_CONFLICT);
  assert_int_equal(qi_bulk_delete_if(b, "a", &ifseq, &r, &err), QB_OK);
  assert_int_equal(qi_bulk_commit(b, &err), QB_OK);
  assert_int_equal(qi_index_doc_count(ix), 1);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

/* A replica stores its primary's versions (qi_write_cond.has_version), and they survive a
** reopen. */
static void a_given_version_is_stored_as_is(void **state) {
  char dir[4096];
  qi_index *ix = mk(dir, NULL);
  qi_write_cond v = {.has_version = 1, .version = 7};
  qi_write_result r;
  qi_bulk *b;
  qb_err err;
  uint64_t ver = 0;
  const char *d = "{\"body\":\"x\"}";
  (void)state;
  assert_int_equal(qi_index_put_if(ix, "a", d, strlen(d), &v, &r, &err), QB_OK);
  assert_int_equal(r.version, 7);
  assert_true(r.created);
  v.version = 3; /* lower: a primary's history is the truth, not ours */
  assert_int_equal(qi_bulk_begin(ix, &b, &err), QB_OK);
  assert_int_equal(qi_bulk_put_if(b, "a", d, strlen(d), &v, &r, &err), QB_OK);
  assert_int_equal(qi_bulk_commit(b, &err), QB_OK);
  assert_int_equal(r.version, 3);
  assert_false(r.created);
  assert_int_equal(qi_index_put(ix, "a", d, strlen(d), &r, &err), QB_OK);
  assert_int_equal(r.version, 4);
  qi_index_close(ix);
  assert_int_equal(qi_index_open(dir, NULL, &ix, &err), QB_OK);
  qb_buf src;
  qb_buf_init(&src);
  assert_int_equal(qi_index_get(ix, "a", &src, &ver, NULL, &err), QB_OK);
  assert_int_equal(ver, 4);
  qb_buf_fini(&src);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

typedef struct race {
  qi_index *ix;
  int stop;
} race;

static void *searcher(void *arg) {
  race *r = arg;
  hit h[10];
  const char *q[2] = {"alpha", "golf"};
  size_t last = 0, n;
  while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
    qi_snapshot *s = qi_index_snapshot(r->ix);
    n = search_or(s, "body", q, 2, h, 10);
    if (n < last) abort(); /* documents are only added */
    last = n;
    qi_snapshot_release(s);
  }
  return NULL;
}

static void searches_run_while_writes_and_refreshes_continue(void **state) {
  char dir[4096];
  qi_options opt = {0};
  qi_index *ix;
  pthread_t th[2];
  race r;
  qb_err err;
  int i;
  (void)state;
  opt.max_buffered_docs = 64;
  opt.max_segments = 4;
  ix = mk(dir, &opt);
  r.ix = ix;
  r.stop = 0;
  for (i = 0; i < 2; i++) pthread_create(&th[i], NULL, searcher, &r);
  for (i = 0; i < 40; i++) {
    put_range(ix, i * 25, i * 25 + 25);
    assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  }
  __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
  for (i = 0; i < 2; i++) pthread_join(th[i], NULL);
  assert_int_equal(qi_index_doc_count(ix), 1000);
  qi_index_close(ix);
  tmpdir_remove(dir);
}

static void catalog_creates_lists_and_deletes_indexes(void **state) {
  char dir[4096], name[256];
  qi_catalog *c;
  qi_index *ix;
  qb_buf b;
  qb_err err;
  (void)state;
  qb_buf_init(&b);
  tmpdir_new(dir);
  assert_int_equal(qi_catalog_open(dir, NULL, &c, &err), QB_OK);
  assert_int_equal(qi_catalog_create(c, "products", NULL, &ix, &err), QB_OK);
  assert_int_equal(qi_index_put(ix, "1", "{\"title\":\"laptop\"}", strlen("{\"title\":\"laptop\"}"), NULL, &err), QB_OK);
  qi_index_release(ix);
  assert_int_equal(qi_catalog_create(c, "logs", NULL, NULL, &err), QB_OK);
  assert_int_equal(qi_catalog_create(c, "logs", NULL, NULL, &err), QB_CONFLICT);
  assert_int_equal(qi_catalog_create(c, "Bad", NULL, NULL, &err), QB_INVAL);
  assert_int_equal(qi_catalog_create(c, "_x", NULL, NULL, &err), QB_INVAL);
  assert_int_equal(qi_catalog_create(c, "a/b", NULL, NULL, &err), QB_INVAL);
  assert_int_equal(qi_catalog_create(c, "..", NULL, NULL, &err), QB_INVAL);
  qi_catalog_list_json(c, &b, NULL);
  assert_string_equal(b.data, "[\"logs\",\"products\"]");
  qi_catalog_close(c);
  /* reopen: both come back, with their documents */
  assert_int_equal(qi_catalog_open(dir, NULL, &c, &err), QB_OK);
  assert_int_equal(qi_catalog_count(c), 2);
  assert_int_equal(qi_catalog_name(c, 1, name, &err), QB_OK);
  assert_string_equal(name, "products");
  assert_int_equal(qi_catalog_get(c, "products", &ix, &err), QB_OK);
  assert_int_equal(qi_index_doc_count(ix), 1);
  assert_int_equal(qi_catalog_delete(c, "products", &err), QB_OK);
  assert_int_equal(qi_index_doc_count(ix), 1); /* still usable by its holder */
  qi_index_release(ix);
  assert_int_equal(qi_catalog_get(c, "products", &ix, &err), QB_NOTFOUND);
  assert_int_equal(qi_catalog_delete(c, "products", &err), QB_NOTFOUND);
  qi_catalog_close(c);
  assert_int_equal(qi_catalog_open(dir, NULL, &c, &err), QB_OK);
  assert_int_equal(qi_catalog_count(c), 1);
  qi_catalog_close(c);
  qb_buf_fini(&b);
  tmpdir_remove(dir);
}

/* The term dictionary's sampled first step (qi__fseg.sample): every term is found, with its
** document frequency, and no absent one, in segments from the builder, from a merge and read
** back from disk, with many terms sharing their first 8 bytes (equal sample keys) and keys
** at the ends of the range. */
static void tag_value(int i, char *out, size_t cap) {
  static const char *const pre[] = {"prefix00", "prefix00-", "p", "prefix0", "zz\x7f", "a"};
  snprintf(out, cap, "%s%d", pre[i % 6], i / 6);
}

static void check_tags(qi_index *ix, int n, const char *when) {
  qi_snapshot *s = qi_index_snapshot(ix);
  qi_field_info fi;
  char t[64];
  assert_int_equal(qi_snapshot_field(s, "tag", &fi), QB_OK);
  for (int i = 0; i < n; i++) {
    tag_value(i, t, sizeof t);
    uint64_t df = qi_snapshot_doc_freq(s, fi.id, t, strlen(t));
    if (df != (uint64_t)(i % 7 == 0 ? 2 : 1)) fail_msg("%s: [%s] df %llu", when, t, (unsigned long long)df);
  }
  static const char *const absent[] = {"", "prefix00-", "prefix00x", "prefix0", "zz", "zz\x7f\x7f", "\x01", "\xff", "prefix00-99999", "p-1", "b"};
  for (size_t k = 0; k < sizeof absent / sizeof *absent; k++)
    if (qi_snapshot_doc_freq(s, fi.id, absent[k], strlen(absent[k])))
      fail_msg("%s: absent [%s] found", when, absent[k]);
  qi_snapshot_release(s);
}

static void sampled_term_lookup_finds_every_term_and_no_other(void **state) {
  char dir[256], doc[128], id[32], t[64];
  qi_options opt = {0};
  qb_err err;
  qi_index *ix;
  const int n = 1500;
  (void)state;
  opt.no_auto_merge = 1;
  ix = mk(dir, &opt);
  for (int part = 0; part < 3; part++) { /* three segments */
    qi_bulk *b;
    assert_int_equal(qi_bulk_begin(ix, &b, &err), QB_OK);
    for (int i = part; i < n; i += 3) {
      tag_value(i, t, sizeof t);
      for (int c = 0; c < (i % 7 == 0 ? 2 : 1); c++) {
        snprintf(doc, sizeof doc, "{\"tag\":\"%s\"}", t);
        snprintf(id, sizeof id, "%d-%d", i, c);
        if (qi_bulk_put(b, id, doc, strlen(doc), NULL, &err)) fail_msg("put: %s", err.msg);
      }
    }
    assert_int_equal(qi_bulk_commit(b, &err), QB_OK);
    assert_int_equal(qi_index_refresh(ix, &err), QB_OK);
  }
  check_tags(ix, n, "three built segments");
  assert_int_equal(qi_index_force_merge(ix, 1, &err), QB_OK);
  check_tags(ix, n, "merged");
  qi_index_close(ix);
  assert_int_equal(qi_index_open(dir, &opt, &ix, &err), QB_OK);
  check_tags(ix, n, "reopened");
  qi_index_close(ix);
  tmpdir_remove(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(writes_become_searchable_on_refresh),
      cmocka_unit_test(updates_and_deletes_by_id),
      cmocka_unit_test(merge_keeps_results_identical),
      cmocka_unit_test(merge_drops_deleted_docs_and_keeps_doc_values),
      cmocka_unit_test(auto_merge_bounds_the_segment_count),
      cmocka_unit_test(doc_values_read_blocks_and_keywords),
      cmocka_unit_test(reopen_after_close_restores_everything),
      cmocka_unit_test(snapshots_are_isolated_from_later_writes),
      cmocka_unit_test(a_snapshot_keeps_its_index_alive_after_close),
      cmocka_unit_test(conditional_writes_conflict_like_elasticsearch),
      cmocka_unit_test(a_given_version_is_stored_as_is),
      cmocka_unit_test(searches_run_while_writes_and_refreshes_continue),
      cmocka_unit_test(catalog_creates_lists_and_deletes_indexes),
      cmocka_unit_test(sampled_term_lookup_finds_every_term_and_no_other),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
