/* fixture.h: a small real index in a temp dir, built through the index API, and helpers to run
** searches against it. Included by the query tests (one test file = one executable). */
#ifndef QQ_TEST_FIXTURE_H
#define QQ_TEST_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"

#define assert_near(a, b, rel)                                                                  \
  do {                                                                                          \
    double a_ = (a), b_ = (b);                                                                  \
    if (!(fabs(a_ - b_) <= (rel) * fabs(b_) + 1e-12))                                            \
      fail_msg("%s = %.9g, expected %.9g", #a, a_, b_);                                         \
  } while (0)

#define K1 1.2
#define B 0.75

/* Lucene's BM25 for one term, by the formula (no (k1+1) factor since Lucene 8) */
static inline double bm25(double N, double df, double tf, double dl, double avgdl) {
  double idf = log(1 + (N - df + 0.5) / (df + 0.5));
  return idf * tf / (tf + K1 * (1 - B + B * dl / avgdl));
}

typedef struct fx {
  char dir[256];
  qi_index *ix;
  qi_snapshot *snap;
} fx;

static const char *fx_mapping =
    "{\"mappings\":{\"properties\":{\"title\":{\"type\":\"text\"},\"tag\":{\"type\":\"keyword\"},"
    "\"popularity\":{\"type\":\"long\"},\"days\":{\"type\":\"integer\"},\"price\":{\"type\":\"double\"},"
    "\"date\":{\"type\":\"date\"},\"active\":{\"type\":\"boolean\"},\"user\":{\"properties\":{\"name\":"
    "{\"type\":\"keyword\"},\"age\":{\"type\":\"long\"}}}}}}";

/* The documents: ids 1..6. Title lengths: 3, 2, 2, 4, 1, 3. */
static const char *fx_docs[] = {
    "{\"title\":\"quick brown fox\",\"tag\":\"animal\",\"popularity\":10,\"days\":3,\"price\":5.5,"
    "\"date\":\"2024-01-01\",\"active\":true,\"user\":{\"name\":\"ann\",\"age\":30}}",
    "{\"title\":\"quick fox\",\"tag\":\"animal\",\"popularity\":100,\"days\":10,\"price\":1.25,"
    "\"date\":\"2024-02-01\",\"active\":false,\"user\":{\"name\":\"bob\",\"age\":40}}",
    "{\"title\":\"lazy dog\",\"tag\":\"pet\",\"popularity\":1,\"days\":30,\"price\":20,"
    "\"date\":\"2023-06-15T12:00:00Z\",\"active\":true}",
    "{\"title\":\"quick quick dog jumps\",\"tag\":\"pet\",\"popularity\":0,\"days\":1,\"price\":7,"
    "\"date\":\"2024-03-01\"}",
    "{\"title\":\"cat\",\"tag\":\"animal\",\"days\":5}",
    "{\"title\":\"brown dog sleeps\",\"tag\":\"other\",\"popularity\":50,\"price\":3,\"active\":false}",
};
#define FX_NDOCS 6
#define FX_AVGDL (15.0 / 6.0)

static QB_UNUSED int fx_setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  qb_err err;
  snprintf(f->dir, sizeof f->dir, "/tmp/qq_test_XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  strcat(f->dir, "/idx");
  if (qi_index_create(f->dir, fx_mapping, NULL, &f->ix, &err)) {
    fprintf(stderr, "create: %s\n", err.msg);
    return -1;
  }
  for (int i = 0; i < FX_NDOCS; i++) {
    char id[8];
    snprintf(id, sizeof id, "%d", i + 1);
    if (qi_index_put(f->ix, id, fx_docs[i], strlen(fx_docs[i]), NULL, &err)) {
      fprintf(stderr, "put %s: %s\n", id, err.msg);
      return -1;
    }
  }
  if (qi_index_refresh(f->ix, &err)) return -1;
  qi_index_wait_merges(f->ix); /* no persister thread allocates while a test counts allocations */
  f->snap = qi_index_snapshot(f->ix);
  *state = f;
  return 0;
}

static QB_UNUSED int fx_teardown(void **state) {
  fx *f = *state;
  char cmd[300];
  qi_snapshot_release(f->snap);
  qi_index_close(f->ix);
  qi_index_destroy(f->dir, NULL);
  *strrchr(f->dir, '/') = 0;
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  if (system(cmd)) {}
  free(f);
  return 0;
}

/* Search BODY; fail the test on error. Returns the response (decref it). */
static QB_UNUSED json_t *fx_search_env(fx *f, const qq_env *env, const char *body) {
  json_t *out = NULL;
  qb_err err;
  const qi_snapshot *snaps[1] = {f->snap};
  qb_code rc = qq_search(env, "test", snaps, 1, body, strlen(body), &out, &err);
  if (rc) fail_msg("search %s: %s (%s)", body, err.msg, qb_code_name(rc));
  return out;
}
static QB_UNUSED json_t *fx_search(fx *f, const char *body) { return fx_search_env(f, NULL, body); }

/* Search expecting failure: returns the ES error body and sets *STATUS. */
/* The error of a search expected to fail, shaped as Elasticsearch's with the qb_code's name as
** its type ({"error": {"root_cause": [{type, reason}], type, reason}}): the query layer picks
** the code, the server's table (tests/unit/server) maps it to an HTTP status and a type. */
static QB_UNUSED json_t *fx_search_error(fx *f, const qq_env *env, const char *body, qb_code *code) {
  json_t *out = NULL;
  qb_err err;
  const qi_snapshot *snaps[1] = {f->snap};
  qb_code rc = qq_search(env, "test", snaps, 1, body, strlen(body), &out, &err);
  if (!rc) {
    char *s = json_dumps(out, JSON_COMPACT);
    fail_msg("search %s: succeeded, expected an error: %s", body, s);
  }
  if (code) *code = rc;
  const char *t = qb_code_name(rc);
  return json_pack("{s:{s:[{s:s, s:s}], s:s, s:s}}", "error", "root_cause", "type", t, "reason",
                   err.msg, "type", t, "reason", err.msg);
}

/* "1,2,3": the _ids of the hits in order */
static QB_UNUSED const char *fx_ids(json_t *res) {
  static char buf[256];
  json_t *hits = json_object_get(json_object_get(res, "hits"), "hits");
  buf[0] = 0;
  for (size_t i = 0; i < json_array_size(hits); i++) {
    if (i) strcat(buf, ",");
    strcat(buf, json_string_value(json_object_get(json_array_get(hits, i), "_id")));
  }
  return buf;
}

static QB_UNUSED double fx_score(json_t *res, size_t i) {
  json_t *hits = json_object_get(json_object_get(res, "hits"), "hits");
  return json_number_value(json_object_get(json_array_get(hits, i), "_score"));
}

static QB_UNUSED json_t *fx_hit(json_t *res, size_t i) {
  return json_array_get(json_object_get(json_object_get(res, "hits"), "hits"), i);
}

static QB_UNUSED long long fx_total(json_t *res) {
  return json_integer_value(json_object_get(json_object_get(json_object_get(res, "hits"), "total"), "value"));
}

/* json_pack-free path lookup: "a.b.0.c" */
static QB_UNUSED json_t *fx_path(json_t *j, const char *path) {
  char buf[256], *save, *tok;
  snprintf(buf, sizeof buf, "%s", path);
  for (tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
    if (json_is_array(j)) j = json_array_get(j, (size_t)atoi(tok));
    else j = json_object_get(j, tok);
  }
  return j;
}

static QB_UNUSED void assert_json_str(json_t *j, const char *path, const char *want) {
  json_t *v = fx_path(j, path);
  if (!json_is_string(v) || strcmp(json_string_value(v), want)) {
    char *s = json_dumps(j, JSON_COMPACT);
    fail_msg("%s: expected \"%s\" in %s", path, want, s);
  }
}

static QB_UNUSED void assert_json_num(json_t *j, const char *path, double want) {
  json_t *v = fx_path(j, path);
  if (!json_is_number(v) || fabs(json_number_value(v) - want) > 1e-9 * fabs(want) + 1e-12) {
    char *s = json_dumps(j, JSON_COMPACT);
    fail_msg("%s: expected %.10g in %s", path, want, s);
  }
}

#endif
