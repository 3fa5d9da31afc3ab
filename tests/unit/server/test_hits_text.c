/* test_hits_text.c: hits written as text (issue 14; qq_request_hits_text in src/query/search.c)
** must change no response: on a seeded corpus of varied _ids (quotes, backslashes, control bytes,
** UTF-8) and sources (canonical and not), in several segments with deletions,
** every request below, on one shard and on two, is rendered with and without the text path and
** written by the compact writer (qq_json_write); the bytes must be equal. The plain requests must
** take the text path, hits and whole response (or this compared nothing), and a text partial
** turned back into JSON (qq_partial_to_json) must equal the tree path's. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#define NDOCS 400

typedef struct tx {
  char dir[256];
  qi_index *ix;
  qi_snapshot *snap;
} tx;

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next_rand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

static const char *const words[] = {"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta",
                                    "theta", "iota", "kappa", "rare1", "rare2"};

/* the _id of document I: mostly plain, some with bytes the writer escapes or passes through */
static void doc_id(int i, char *out, size_t cap) {
  static const char *const odd[] = {"q\"uote", "back\\slash", "tab\tid", "nl\nid", "ctl\x01id",
                                    "\xc3\xbcn\xc3\xaf", "sp ace", "slash/x", "\xe2\x82\xac",
                                    "del\x7f"};
  if (i % 7 == 3) snprintf(out, cap, "%s-%d", odd[(i / 7) % (sizeof odd / sizeof *odd)], i);
  else snprintf(out, cap, "d%d", i);
}

/* document I's source: canonical text, or a form the writer would print otherwise */
static void doc_source(int i, char *out, size_t cap) {
  char title[200] = "";
  int nw = 1 + (int)(next_rand() % 6);
  for (int k = 0; k < nw; k++) {
    size_t w = next_rand() % (sizeof words / sizeof *words);
    if (w >= 10 && next_rand() % 8) w = next_rand() % 10; /* the rare words stay rare */
    strcat(title, k ? " " : "");
    strcat(title, words[w]);
  }
  int n = (int)(next_rand() % 1000) - 200;
  switch (i % 5) {
  case 0: snprintf(out, cap, "{\"title\":\"%s\",\"n\":%d,\"r\":%d.25}", title, n, n); break;
  case 1: /* a real not in its shortest form */
    snprintf(out, cap, "{\"title\":\"%s\",\"n\":%d,\"r\":1.50}", title, n);
    break;
  case 2: snprintf(out, cap, "{ \"title\": \"%s\", \"n\": %d }", title, n); break; /* spaces */
  case 3:
    snprintf(out, cap, "{\"title\":\"%s\",\"n\":%d,\"tags\":[\"a\",\"b\\\"c\"],\"o\":{\"x\":null,"
             "\"y\":[true,false],\"z\":0.1}}", title, n);
    break;
  default: /* a \u escape */
    snprintf(out, cap, "{\"title\":\"%s \\u00e9\",\"n\":%d}", title, n);
    break;
  }
}

static int setup(void **state) {
  tx *t = calloc(1, sizeof *t);
  qb_err err;
  snprintf(t->dir, sizeof t->dir, "/tmp/qs_hits_text_XXXXXX");
  if (!t || !mkdtemp(t->dir)) return -1;
  strcat(t->dir, "/idx");
  if (qi_index_create(t->dir, "{\"mappings\":{\"properties\":{\"title\":{\"type\":\"text\"},"
                              "\"n\":{\"type\":\"long\"}}}}", NULL, &t->ix, &err))
    return fprintf(stderr, "create: %s\n", err.msg), -1;
  for (int i = 0; i < NDOCS; i++) {
    char id[64], src[512];
    doc_id(i, id, sizeof id);
    doc_source(i, src, sizeof src);
    if (qi_index_put(t->ix, id, src, strlen(src), NULL, &err))
      return fprintf(stderr, "put %s: %s\n", id, err.msg), -1;
    if (i % 97 == 96 && qi_index_refresh(t->ix, &err)) return -1; /* several segments */
  }
  for (int i = 5; i < NDOCS; i += 31) { /* deletions inside the segments */
    char id[64];
    doc_id(i, id, sizeof id);
    if (qi_index_delete(t->ix, id, NULL, &err)) return fprintf(stderr, "delete: %s\n", err.msg), -1;
  }
  if (qi_index_refresh(t->ix, &err)) return -1;
  qi_index_wait_merges(t->ix);
  t->snap = qi_index_snapshot(t->ix);
  *state = t;
  return 0;
}

static int teardown(void **state) {
  tx *t = *state;
  char cmd[300];
  if (!t) return 0;
  qi_snapshot_release(t->snap);
  qi_index_close(t->ix);
  qi_index_destroy(t->dir, NULL);
  *strrchr(t->dir, '/') = 0;
  snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
  if (system(cmd)) {}
  free(t);
  return 0;
}

json_t *qq__partial_json(const qq_partial *p); /* search.c: a partial's own tree */

/* MODE 0: the tree path (raw _source only, as before); 1: hits as text; 2: hits as text, the
** response into the reply's buffer (qq_response_render_text). BODY on NSHARDS shards
** (the same snapshot: equal scores meet in the merge); the response's compact text in OUT.
** *TEXT_HITS: how many of the partials' hits were text; *TEXT_ROOT: the response was text. */
static void render(tx *t, const char *body, int mode, size_t nshards, qb_buf *out,
                   size_t *text_hits, int *text_root) {
  qq_request *req;
  qq_partial *parts[2] = {NULL, NULL};
  json_t *res = NULL;
  qb_err err;
  if (qq_request_parse(NULL, body, strlen(body), 0, &req, &err))
    fail_msg("parse %s: %s", body, err.msg);
  qq_request_raw_source(req);
  if (mode) qq_request_hits_text(req);
  for (size_t s = 0; s < nshards; s++)
    if (qq_shard_search(req, t->snap, "idx-\"q\"", (uint32_t)s, &parts[s], &err))
      fail_msg("search %s: %s", body, err.msg);
  *text_hits = 0;
  for (size_t s = 0; s < nshards; s++) {
    json_t *hits = json_object_get(qq__partial_json(parts[s]), "hits");
    for (size_t i = 0; i < json_array_size(hits); i++)
      *text_hits += json_is_string(json_array_get(hits, i));
  }
  qb_buf_init(out);
  if (mode == 2) { /* straight into the reply's buffer */
    if (qq_response_render_text(req, parts, nshards, 0, out, &res, &err))
      fail_msg("render %s: %s", body, err.msg);
    *text_root = !res;
    if (res && qs__json_write(res, 0, out, &err)) fail_msg("write: %s", err.msg);
  } else {
    if (qq_response_render(req, parts, nshards, 0, &res, &err))
      fail_msg("render %s: %s", body, err.msg);
    *text_root = json_is_string(res);
    if (qs__json_write(res, 0, out, &err)) fail_msg("write: %s", err.msg);
  }
  json_decref(res);
  for (size_t s = 0; s < nshards; s++) qq_partial_free(parts[s]);
  qq_request_free(req);
}

static const char *const plain_bodies[] = {
    "{\"query\":{\"match\":{\"title\":\"alpha\"}}}",
    "{\"query\":{\"match\":{\"title\":\"rare1\"}}}",
    "{\"query\":{\"match\":{\"title\":\"beta gamma\"}},\"size\":40}",
    "{\"query\":{\"match_all\":{}},\"size\":60,\"from\":17}",
    "{\"query\":{\"term\":{\"title\":\"delta\"}},\"version\":true,\"seq_no_primary_term\":true}",
    "{\"query\":{\"match\":{\"title\":\"eta\"}},\"_source\":false,\"size\":25}",
    "{\"query\":{\"constant_score\":{\"filter\":{\"term\":{\"title\":\"theta\"}}}},\"size\":30}",
    "{\"query\":{\"bool\":{\"filter\":{\"range\":{\"n\":{\"gte\":100}}}}},\"size\":30}",
    ("{\"query\":{\"match\":{\"title\":\"iota kappa\"}},\"min_score\":0.5,"
     "\"track_total_hits\":false}"),
    "{\"query\":{\"match\":{\"title\":\"alpha\"}},\"track_total_hits\":5}",
    "{\"query\":{\"match_all\":{}},\"terminate_after\":50,\"size\":5}",
    "{\"query\":{\"match\":{\"title\":\"rare2\"}},\"timeout\":\"10s\",\"from\":2}",
};

/* requests the text path must leave to hit_json (and still answer the same) */
static const char *const other_bodies[] = {
    "{\"query\":{\"match_none\":{}}}",
    "{\"query\":{\"match\":{\"title\":\"alpha\"}},\"size\":0}",
    "{\"query\":{\"match\":{\"title\":\"alpha\"}},\"_source\":[\"n\"]}",
    "{\"query\":{\"match_all\":{}},\"sort\":[{\"n\":\"desc\"}],\"size\":20}",
    "{\"query\":{\"match\":{\"title\":\"zeta\"}},\"sort\":[\"_score\"],\"track_scores\":true}",
    "{\"query\":{\"match\":{\"title\":\"beta\"}},\"highlight\":{\"fields\":{\"title\":{}}}}",
    ("{\"query\":{\"match\":{\"title\":\"gamma\"}},"
     "\"script_fields\":{\"m\":{\"script\":\"doc['n'].value * 2\"}}}"),
    "{\"query\":{\"match_all\":{}},\"collapse\":{\"field\":\"n\"},\"size\":15}",
};

static void compare(tx *t, const char *body, size_t *text_total, int *roots) {
  for (size_t nshards = 1; nshards <= 2; nshards++) {
    qb_buf a, b;
    size_t ta, tb;
    int ra, rb;
    json_t *pa = NULL, *pb = NULL;
    render(t, body, 0, nshards, &a, &tb, &rb);
    if (tb || rb) fail_msg("%s: the tree path gave %zu text hits, text root %d", body, tb, rb);
    render(t, body, 2, nshards, &b, &ta, &ra);
    if (a.len != b.len || memcmp(a.data, b.data, a.len))
      fail_msg("%s on %zu shard(s): the response in the buffer differs\ntree: %s\ntext: %s", body,
               nshards, a.data, b.data);
    *roots += ra;
    qb_buf_fini(&b);
    render(t, body, 1, nshards, &b, &ta, &ra);
    *roots += ra;
    if (a.len != b.len || memcmp(a.data, b.data, a.len))
      fail_msg("%s on %zu shard(s): the responses differ\ntree: %s\ntext: %s", body, nshards,
               a.data, b.data);
    *text_total += ta;
    qb_buf_fini(&a);
    qb_buf_fini(&b);
    /* a partial read by someone else than the renderer: the tree path's shape */
    qq_request *req;
    qq_partial *p;
    qb_err err;
    for (int mode = 0; mode < 2; mode++) {
      assert_int_equal(qq_request_parse(NULL, body, strlen(body), 0, &req, &err), QB_OK);
      qq_request_raw_source(req);
      if (mode) qq_request_hits_text(req);
      assert_int_equal(qq_shard_search(req, t->snap, "idx", 0, &p, &err), QB_OK);
      assert_int_equal(qq_partial_to_json(p, mode ? &pb : &pa, &err), QB_OK);
      if (mode) { /* and the taking form gives the same */
        json_t *taken = qq_partial_to_json_take(p);
        if (!json_equal(taken, pb)) fail_msg("%s: qq_partial_to_json_take differs", body);
        json_decref(taken);
      } else {
        qq_partial_free(p);
      }
      qq_request_free(req);
    }
    /* compared as the writer prints them: a tree hit's _source is a raw string, a text hit's
    ** comes back parsed */
    qb_buf_init(&a);
    qb_buf_init(&b);
    assert_int_equal(qs__json_write(pa, 0, &a, &err), QB_OK);
    assert_int_equal(qs__json_write(pb, 0, &b, &err), QB_OK);
    if (a.len != b.len || memcmp(a.data, b.data, a.len))
      fail_msg("%s: the text partial as JSON differs\ntree: %s\ntext: %s", body, a.data, b.data);
    if (strstr(a.data, "\"_id\":") && !strstr(a.data, "\"_doc\":"))
      fail_msg("%s: no _doc in the partial: %s", body, a.data);
    qb_buf_fini(&a);
    qb_buf_fini(&b);
    json_decref(pa);
    json_decref(pb);
  }
}

static void plain_hits_as_text_print_the_same(void **state) {
  tx *t = *state;
  for (size_t i = 0; i < sizeof plain_bodies / sizeof *plain_bodies; i++) {
    size_t text = 0;
    int roots = 0;
    compare(t, plain_bodies[i], &text, &roots);
    if (!text) fail_msg("%s: no hit took the text path", plain_bodies[i]);
    if (roots != 4) fail_msg("%s: the response was text %d times of 4", plain_bodies[i], roots);
  }
}

static void other_requests_keep_their_trees(void **state) {
  tx *t = *state;
  for (size_t i = 0; i < sizeof other_bodies / sizeof *other_bodies; i++) {
    size_t text = 0;
    int roots = 0;
    compare(t, other_bodies[i], &text, &roots);
    if (text) fail_msg("%s: %zu hits took the text path", other_bodies[i], text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_hits_as_text_print_the_same),
      cmocka_unit_test(other_requests_keep_their_trees),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
