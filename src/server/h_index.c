/* h_index.c: index routes: create (mappings, settings), delete, exists, get, mappings, refresh,
** plus the helpers that open an index for a request (auto-creating it for writes) and apply a
** write's ?refresh. A bad request is rejected before the catalog is touched. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

qi_index *qs__index_open(qs_req *r, const char *name, int autocreate) {
  char reason[256];
  qi_index *ix = NULL;
  qb_err err;
  if (!qs__index_name_ok(name, reason)) {
    if (!autocreate && qi_catalog_get(qc_node_catalog(r->srv->node), name, &ix, NULL) == QB_OK) return ix;
    qs__reply_error(r, 400, "invalid_index_name_exception", "%s", reason);
    return NULL;
  }
  qb_code rc = qi_catalog_get(qc_node_catalog(r->srv->node), name, &ix, &err);
  if (rc == QB_NOTFOUND && autocreate) {
    rc = qi_catalog_create(qc_node_catalog(r->srv->node), name, NULL, &ix, &err);
    if (rc == QB_OK) qb_log(QB_INFO, "index created: %s (dynamic mappings)", name);
    if (rc == QB_CONFLICT) rc = qi_catalog_get(qc_node_catalog(r->srv->node), name, &ix, &err); /* raced */
  }
  if (rc == QB_NOTFOUND) {
    qs__reply_no_index(r, name);
    return NULL;
  }
  if (rc) {
    qs__reply_err(r, &err);
    return NULL;
  }
  return ix;
}

int qs__after_write(qs_req *r, qi_index *ix, const char *name) {
  const char *v = qs__arg(r, "refresh");
  int force = qs__arg_bool(r, "refresh") || (v && !strcmp(v, "wait_for"));
  if (force) {
    qb_err err;
    if (qs__refresh_now(r->srv, ix, name, &err) == QB_OK) return 1;
  }
  qs__mark_dirty(r->srv, name);
  return 0;
}

void qs__reply_exists(qs_req *r, const char *name) {
  char why[300];
  snprintf(why, sizeof why, "index [%.250s] already exists", name);
  json_t *cause = json_pack("{s:s, s:s, s:s}", "type", "resource_already_exists_exception",
                            "reason", why, "index", name);
  qs__reply_json(r, 400, json_pack("{s:{s:[o], s:s, s:s, s:s}, s:i}", "error", "root_cause",
                                   cause, "type", "resource_already_exists_exception", "reason",
                                   why, "index", name, "status", 400));
}

void qs__h_index_create(qs_req *r) {
  const char *name = r->caps[0];
  char reason[256];
  json_t *body;
  if (!qs__index_name_ok(name, reason)) {
    qs__reply_error(r, 400, "invalid_index_name_exception", "%s", reason);
    return;
  }
  if (!qs__body_object(r, &body)) return;
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    if (strcmp(key, "settings") && strcmp(key, "mappings") && strcmp(key, "aliases")) {
      qs__reply_error(r, 400, "parse_exception", "unknown key [%.200s] for create index", key);
      json_decref(body);
      return;
    }
  }
  json_decref(body);
  qi_index *ix = NULL;
  qb_err err;
  qb_code rc = qi_catalog_create(qc_node_catalog(r->srv->node), name, r->body_len ? r->body : NULL, &ix, &err);
  if (rc == QB_CONFLICT) return qs__reply_exists(r, name);
  if (rc == QB_INVAL) {
    qs__reply_error(r, 400, "mapper_parsing_exception", "%s", err.msg);
    return;
  }
  if (rc) {
    qs__reply_err(r, &err);
    return;
  }
  qi_index_release(ix);
  qb_log(QB_INFO, "index created: %s", name);
  qs__reply_json(r, 200, json_pack("{s:b, s:b, s:s}", "acknowledged", 1,
                                   "shards_acknowledged", 1, "index", name));
}

void qs__h_index_delete(qs_req *r) {
  const char *name = r->caps[0];
  qb_err err;
  qb_code rc = qi_catalog_delete(qc_node_catalog(r->srv->node), name, &err);
  if (rc == QB_NOTFOUND) return qs__reply_no_index(r, name);
  if (rc) return qs__reply_err(r, &err);
  qb_log(QB_INFO, "index deleted: %s", name);
  qs__reply_json(r, 200, json_pack("{s:b}", "acknowledged", 1));
}

void qs__h_index_exists(qs_req *r) {
  qi_index *ix;
  if (qi_catalog_get(qc_node_catalog(r->srv->node), r->caps[0], &ix, NULL) == QB_OK) {
    qi_index_release(ix);
    r->status = 200;
  } else {
    r->status = 404;
  }
}

/* {"mappings": ..., "settings": ...} pieces of index IX as json objects. */
static json_t *load_json(qb_buf *b) {
  json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
  return j ? j : json_object();
}

void qs__h_index_get(qs_req *r) {
  const char *name = r->caps[0];
  qi_index *ix = qs__index_open(r, name, 0);
  if (!ix) return;
  qb_buf m, st;
  qb_buf_init(&m);
  qb_buf_init(&st);
  qb_err err;
  if (qi_index_mapping_json(ix, &m, &err) || qi_index_settings_json(ix, &st, &err)) {
    qs__reply_err(r, &err);
  } else {
    json_t *settings = load_json(&st);
    json_t *idx = json_object_get(settings, "index");
    if (!json_is_object(idx)) {
      idx = json_object();
      json_object_set_new(settings, "index", idx);
    }
    json_object_set_new(idx, "provided_name", json_string(name));
    if (!json_object_get(idx, "number_of_shards") && !json_object_get(settings, "number_of_shards"))
      json_object_set_new(idx, "number_of_shards", json_string("1"));
    if (!json_object_get(idx, "number_of_replicas") &&
        !json_object_get(settings, "number_of_replicas"))
      json_object_set_new(idx, "number_of_replicas", json_string("0"));
    json_t *j = json_pack("{s:{s:{}, s:o, s:o}}", name, "aliases", "mappings", load_json(&m),
                          "settings", settings);
    qs__reply_json(r, 200, j);
  }
  qb_buf_fini(&m);
  qb_buf_fini(&st);
  qi_index_release(ix);
}

void qs__h_mapping_get(qs_req *r) {
  const char *name = r->caps[0];
  qi_index *ix = qs__index_open(r, name, 0);
  if (!ix) return;
  qb_buf m;
  qb_buf_init(&m);
  qb_err err;
  if (qi_index_mapping_json(ix, &m, &err)) qs__reply_err(r, &err);
  else qs__reply_json(r, 200, json_pack("{s:{s:o}}", name, "mappings", load_json(&m)));
  qb_buf_fini(&m);
  qi_index_release(ix);
}

void qs__h_mapping_put(qs_req *r) {
  const char *name = r->caps[0];
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) return qs__reply_error(r, 400, "action_request_validation_exception",
                                    "Validation Failed: 1: mapping source is missing;");
  json_decref(body);
  qi_index *ix = qs__index_open(r, name, 0);
  if (!ix) return;
  qb_err err;
  qb_code rc = qi_index_put_mapping(ix, r->body, r->body_len, &err);
  if (rc) qs__reply_err(r, &err); /* QB_INVAL: illegal_argument_exception, from the table */
  else qs__reply_json(r, 200, json_pack("{s:b}", "acknowledged", 1));
  qi_index_release(ix);
}

void qs__h_refresh(qs_req *r) {
  qb_err err;
  size_t total = 0;
  if (r->ncaps) {
    qi_index *ix = qs__index_open(r, r->caps[0], 0);
    if (!ix) return;
    qb_code rc = qs__refresh_now(r->srv, ix, r->caps[0], &err);
    qi_index_release(ix);
    if (rc) return qs__reply_err(r, &err);
    total = 1;
  } else {
    for (size_t i = 0, n = qi_catalog_count(qc_node_catalog(r->srv->node)); i < n; i++) {
      char name[256];
      qi_index *ix;
      if (qi_catalog_name(qc_node_catalog(r->srv->node), i, name, NULL) ||
          qi_catalog_get(qc_node_catalog(r->srv->node), name, &ix, NULL))
        continue;
      if (qs__refresh_now(r->srv, ix, name, &err) == QB_OK) total++;
      qi_index_release(ix);
    }
  }
  qs__reply_json(r, 200, json_pack("{s:{s:I, s:I, s:i}}", "_shards", "total", (json_int_t)total,
                                   "successful", (json_int_t)total, "failed", 0));
}
