/* h_index.c: index routes: create (mappings, settings), delete, exists, get, mappings, refresh,
** plus the helpers that open an index for a request (auto-creating it for writes) and apply a
** write's ?refresh. A bad request is rejected before the catalog is touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int settings_served(qs_req *r, const json_t *settings, const char *prefix);

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
    rc = qs__index_create(r->srv, name, NULL, 0, &ix, &err); /* templates apply */
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
  if (!settings_served(r, json_object_get(body, "settings"), "")) {
    json_decref(body);
    return;
  }
  if (!qs__aliases_check(r, json_object_get(body, "aliases"))) { /* h_alias.c */
    json_decref(body);
    return;
  }
  json_decref(body);
  qi_index *ix = NULL;
  qb_err err;
  if (qs__is_alias(r->srv, name))
    return qs__reply_error(r, 400, "invalid_index_name_exception",
                           "Invalid index name [%s], already exists as alias", name);
  /* the matching index template, then the body, then the aliases (h_template.c) */
  qb_code rc = qs__index_create(r->srv, name, r->body_len ? r->body : NULL, r->body_len, &ix, &err);
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

/* The index settings this node serves, at the values it serves: every other one is refused, as
** Elasticsearch refuses an unknown setting, rather than stored and ignored. SETTINGS may nest
** ({"index": {"number_of_shards": 1}}) or not; PREFIX is the dotted path so far. 0 after a
** reply. */
int qs__settings_check(qs_req *r, const json_t *settings) {
  return settings_served(r, settings, "");
}

static int settings_served(qs_req *r, const json_t *settings, const char *prefix) {
  const char *k;
  json_t *v;
  if (!settings) return 1;
  if (!json_is_object(settings)) {
    qs__reply_error(r, 400, "illegal_argument_exception", "[settings] must be an object");
    return 0;
  }
  json_object_foreach((json_t *)settings, k, v) {
    char raw[256], path[sizeof raw + 8];
    snprintf(raw, sizeof raw, "%s%s", prefix, k);
    if (json_is_object(v)) {
      char sub[sizeof raw + 1];
      snprintf(sub, sizeof sub, "%s.", raw);
      if (!settings_served(r, v, sub)) return 0;
      continue;
    }
    /* {"index": {"x": 1}}, {"index.x": 1} and {"x": 1} all name index.x */
    snprintf(path, sizeof path, "%s%s", strncmp(raw, "index.", 6) ? "index." : "", raw);
    if (!strncmp(path, "index.analysis.", 15)) continue; /* checked by the index (analyzers.c) */
    const char *text = json_is_string(v) ? json_string_value(v) : NULL;
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : text ? strtoll(text, NULL, 10) : -1;
    if (!strcmp(path, "index.number_of_shards")) {
      if (n == 1) continue;
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "[index.number_of_shards] is [%lld] but a single node serves one shard per "
                      "index: start a cluster (docs/cluster.md) for more", (long long)n);
      return 0;
    }
    if (!strcmp(path, "index.number_of_replicas")) {
      if (n == 0) continue;
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "[index.number_of_replicas] must be 0 on a single node (it keeps no "
                      "copies): start a cluster (docs/cluster.md) for replicas");
      return 0;
    }
    int dyn = qs__setting_dynamic(r, path, v); /* refresh_interval, max_result_window */
    if (dyn > 0) continue;
    if (dyn == 0) return 0;
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "unknown setting [%.200s]: this node serves index.number_of_shards (1), "
                    "index.number_of_replicas (0), index.refresh_interval and "
                    "index.max_result_window", path);
    return 0;
  }
  return 1;
}

void qs__h_index_delete(qs_req *r) {
  const char *name = r->caps[0];
  qb_err err;
  qb_code rc = qi_catalog_delete(qc_node_catalog(r->srv->node), name, &err);
  if (rc == QB_NOTFOUND) return qs__reply_no_index(r, name);
  if (rc) return qs__reply_err(r, &err);
  qs__index_forget(r->srv, name); /* its aliases and closed mark (h_alias.c) */
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
    qs__settings_normalize(settings); /* h_settings.c: strings under "index" */
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
    json_t *j = json_pack("{s:{s:o, s:o, s:o}}", name, "aliases", qs__aliases_of(r->srv, name),
                          "mappings", load_json(&m),
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
