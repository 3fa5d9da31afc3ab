/* h_search.c: _search and _count on one index. Each request searches one snapshot of the
** index (so it runs in parallel with writes and refreshes) with a per-request UDF provider
** (udf_script.c) that pins every UDF's version for the whole request. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ?size= and ?from= (Elasticsearch's URI parameters) folded into the body when it lacks them.
** Returns a new body text in *OWNED (free()) or leaves the body as it is; 0 after a reply. */
static int uri_params(qs_req *r, char **owned) {
  *owned = NULL;
  const char *size = qs__arg(r, "size"), *from = qs__arg(r, "from");
  if (!size && !from) return 1;
  json_t *body;
  if (!qs__body_object(r, &body)) return 0;
  if (!body) body = json_object();
  const char *keys[2] = {"size", "from"}, *vals[2] = {size, from};
  for (int i = 0; i < 2; i++) {
    if (!vals[i] || json_object_get(body, keys[i])) continue;
    char *end;
    long long v = strtoll(vals[i], &end, 10);
    if (*end || end == vals[i]) {
      json_decref(body);
      qs__reply_error(r, 400, "illegal_argument_exception", "Failed to parse int parameter [%s] "
                      "with value [%s]", keys[i], vals[i]);
      return 0;
    }
    json_object_set_new(body, keys[i], json_integer(v));
  }
  *owned = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(body);
  if (!*owned) {
    qs__reply_error(r, 429, "circuit_breaking_exception", "out of memory");
    return 0;
  }
  return 1;
}

static void search(qs_req *r, int count) {
  const char *name = r->caps[0];
  char *owned = NULL;
  if (!count && !uri_params(r, &owned)) return;
  qi_index *ix = qs__index_open(r, name, 0);
  if (!ix) {
    free(owned);
    return;
  }
  const char *body = owned ? owned : r->body;
  size_t len = owned ? strlen(owned) : r->body_len;
  uint64_t t0 = qb_now_ns();
  qi_snapshot *snap = qi_index_snapshot(ix);
  qs_udf_provider prov;
  qs__udf_provider_init(&prov, r->srv->reg);
  qq_env env;
  memset(&env, 0, sizeof env);
  env.scripts = &prov.base;
  json_t *out = NULL;
  qb_err err;
  qb_err_clear(&err);
  const qi_snapshot *const snaps[1] = {snap};
  qb_code rc = count ? qq_count(&env, name, snaps, 1, body, len, &out, &err)
                     : qq_search(&env, name, snaps, 1, body, len, &out, &err);
  qi_snapshot_release(snap);
  qs__udf_provider_fini(&prov);
  qi_index_release(ix);
  free(owned);
  if (!count) qs__metrics_search(r->srv, qb_now_ns() - t0, rc == QB_OK);
  if (rc) {
    if (rc == QB_TRAP || rc == QB_LIMIT) qb_log(QB_WARN, "search on [%s] failed: %s", name, err.msg);
    return qs__reply_err(r, &err);
  }
  qs__reply_json(r, 200, out);
}

void qs__h_search(qs_req *r) { search(r, 0); }
void qs__h_count(qs_req *r) { search(r, 1); }
