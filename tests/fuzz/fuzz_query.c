/* fuzz_query.c: `_search` bodies -> qq_search over a small real index (text, keyword, numeric,
** date and boolean fields, three segments, a deleted document). Any byte string must give a
** response or an Elasticsearch-shaped error: no crash, no leak, no hang. The index is built
** once per process in a temporary directory and removed at exit. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index.h"
#include "query.h"

static char dir[64];
static qi_index *ix;

static void cleanup(void) {
  char cmd[128];
  qi_index_close(ix);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) { /* best effort */
  }
}

static void put(const char *id, const char *json) {
  qb_err err;
  if (qi_index_put(ix, id, json, strlen(json), NULL, &err)) {
    fprintf(stderr, "fuzz_query: put %s: %s\n", id, err.msg);
    abort();
  }
}

static void setup(void) {
  static const char *docs[] = {
      ("{\"title\":\"fast red laptop\",\"tag\":\"a\",\"price\":999.5,\"days\":3,\"on\":true,"
       "\"when\":\"2024-01-15\"}"),
      "{\"title\":\"laptop bag\",\"tag\":[\"b\",\"a\"],\"price\":30,\"days\":120,\"on\":false}",
      "{\"title\":\"Grüße aus Köln\",\"tag\":\"c\",\"price\":-1,\"when\":1700000000000}",
      "{\"title\":\"red red red\",\"days\":0}",
      "{\"other\":{\"nested\":\"value\"},\"price\":1e300}",
  };
  qb_err err;
  char id[8];
  size_t i;
  strcpy(dir, "/tmp/fuzz_query.XXXXXX");
  if (!mkdtemp(dir)) abort();
  if (qi_index_create(dir,
                      "{\"mappings\":{\"properties\":{\"title\":{\"type\":\"text\"},"
                      "\"tag\":{\"type\":\"keyword\"},\"price\":{\"type\":\"double\"},"
                      "\"days\":{\"type\":\"integer\"},\"on\":{\"type\":\"boolean\"},"
                      "\"when\":{\"type\":\"date\"}}}}",
                      NULL, &ix, &err)) {
    fprintf(stderr, "fuzz_query: create: %s\n", err.msg);
    abort();
  }
  for (i = 0; i < 15; i++) {
    snprintf(id, sizeof id, "%zu", i);
    put(id, docs[i % 5]);
    if (i % 5 == 4 && qi_index_refresh(ix, &err)) abort(); /* three segments */
  }
  if (qi_index_delete(ix, "7", NULL, &err) || qi_index_refresh(ix, &err)) abort();
  atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qq_env env = {0};
  qi_snapshot *snap;
  const qi_snapshot *snaps[1];
  json_t *out = NULL;
  qb_err err;
  if (!ix) setup();
  env.arena_limit_bytes = 64u << 20;
  snaps[0] = snap = qi_index_snapshot(ix);
  if (qq_search(&env, "fuzz", snaps, 1, (const char *)data, size, &out, &err) != QB_OK)
    out = json_pack("{s:s, s:s}", "code", qb_code_name(err.code), "reason", err.msg);
  if (out && getenv("QD_FUZZ_PRINT")) { /* triage: what the input gave */
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%.2000s\n", text ? text : "(null)");
    { json_free_t jf; json_get_alloc_funcs(NULL, &jf); jf(text); }
  }
  json_decref(out);
  if (qq_count(&env, "fuzz", snaps, 1, (const char *)data, size, &out, &err) == QB_OK)
    json_decref(out);
  qi_snapshot_release(snap);
  return 0;
}
