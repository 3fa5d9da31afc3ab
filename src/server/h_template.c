/* h_template.c: composable index templates, as Elasticsearch's. PUT/GET/DELETE
** /_component_template/{name} ({template: {settings, mappings, aliases}, version, _meta}) and
** /_index_template/{name} ({index_patterns, priority, composed_of, template, version, _meta}),
** kept in the node's metadata (meta.c). When an index is created (PUT /{index} or a first
** write), the matching index template with the highest priority applies: its components in
** order, then its own template, then the request's body, each merged over the one before
** (objects merge key by key, the later value wins). The legacy /_template answers 400.
** One node: a coordinator answers 400. */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Merge object SRC over DST (recursively for objects; other values replace). */
static void merge_over(json_t *dst, const json_t *src) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)src, k, v) {
    json_t *d = json_object_get(dst, k);
    if (json_is_object(d) && json_is_object(v)) merge_over(d, v);
    else json_object_set_new(dst, k, json_deep_copy(v));
  }
}

/* {settings, mappings, aliases}: 0 after a reply naming what is not served. */
static int template_body_ok(qs_req *r, json_t *t) {
  if (!t) return 1;
  if (!json_is_object(t)) {
    qs__reply_error(r, 400, "parsing_exception", "[template] must be an object");
    return 0;
  }
  const char *k;
  json_t *v;
  json_object_foreach(t, k, v) {
    if (strcmp(k, "settings") && strcmp(k, "mappings") && strcmp(k, "aliases")) {
      qs__reply_error(r, 400, "parsing_exception",
                      "[template] unknown field [%.64s] (served: settings, mappings, aliases)", k);
      return 0;
    }
  }
  json_t *m = json_object_get(t, "mappings");
  if (m && !json_is_object(m)) {
    qs__reply_error(r, 400, "parsing_exception", "[mappings] must be an object");
    return 0;
  }
  return qs__settings_check(r, json_object_get(t, "settings")) &&
         qs__aliases_check(r, json_object_get(t, "aliases"));
}

typedef struct put_ctx {
  const char *section, *name;
  json_t *value; /* NULL: delete */
  int missing;
} put_ctx;

static qb_code put(json_t *doc, void *ud, qb_err *err) {
  (void)err;
  put_ctx *c = ud;
  json_t *sec = qs__meta_section(doc, c->section);
  if (c->value) return json_object_set(sec, c->name, c->value) ? QB_NOMEM : QB_OK;
  c->missing = json_object_del(sec, c->name) != 0;
  return QB_OK;
}

static void store(qs_req *r, const char *section, json_t *value) {
  put_ctx c = {section, r->caps[0], value, 0};
  qb_err err;
  if (qs__meta_update(r->srv, put, &c, &err)) return qs__reply_err(r, &err);
  if (c.missing) {
    const char *what = !strcmp(section, "index_templates") ? "index template" : "component template";
    return qs__reply_error(r, 404, "resource_not_found_exception", "%s matching [%.200s] not found",
                           what, r->caps[0]);
  }
  qb_log(QB_INFO, "%s %s: %s", value ? "stored" : "deleted", section, r->caps[0]);
  qs__reply_json(r, 200, json_pack("{s:b}", "acknowledged", 1));
}

/* 0 after a reply when BODY has a key outside KEYS (NULL-terminated). */
static int keys_ok(qs_req *r, json_t *body, const char *const *keys, const char *what) {
  const char *k;
  json_t *v;
  json_object_foreach(body, k, v) {
    int ok = 0;
    for (size_t i = 0; keys[i]; i++) ok |= !strcmp(keys[i], k);
    if (!ok) {
      qs__reply_error(r, 400, "x_content_parse_exception", "[%s] unknown field [%.64s]", what, k);
      return 0;
    }
  }
  return 1;
}

void qs__h_component_template_put(qs_req *r) {
  static const char *const keys[] = {"template", "version", "_meta", NULL};
  if (!qs__local_only(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body || !json_object_get(body, "template")) {
    json_decref(body);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: template is missing;");
  }
  if (keys_ok(r, body, keys, "component_template") &&
      template_body_ok(r, json_object_get(body, "template")))
    store(r, "component_templates", body);
  json_decref(body);
}

void qs__h_index_template_put(qs_req *r) {
  static const char *const keys[] = {"index_patterns", "priority", "composed_of", "template",
                                     "version", "_meta", NULL};
  if (!qs__local_only(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) body = json_object();
  json_t *pats = json_object_get(body, "index_patterns"), *prio = json_object_get(body, "priority");
  json_t *comp = json_object_get(body, "composed_of");
  size_t i;
  json_t *v;
  if (!keys_ok(r, body, keys, "index_template")) goto out;
  if (json_is_string(pats)) { /* one pattern may be given as a string */
    json_object_set_new(body, "index_patterns", json_pack("[O]", pats));
    pats = json_object_get(body, "index_patterns");
  }
  if (!json_is_array(pats) || !json_array_size(pats)) {
    qs__reply_error(r, 400, "action_request_validation_exception",
                    "Validation Failed: 1: index patterns are missing;");
    goto out;
  }
  json_array_foreach(pats, i, v) {
    if (!json_is_string(v) || !json_string_length(v)) {
      qs__reply_error(r, 400, "illegal_argument_exception", "[index_patterns] must be strings");
      goto out;
    }
  }
  if (prio && (!json_is_integer(prio) || json_integer_value(prio) < 0)) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "[priority] must be a non-negative integer");
    goto out;
  }
  if (!template_body_ok(r, json_object_get(body, "template"))) goto out;
  json_t *comps = qs__meta_get(r->srv, "component_templates");
  if (comp && !json_is_array(comp)) {
    json_decref(comps);
    qs__reply_error(r, 400, "illegal_argument_exception", "[composed_of] must be an array");
    goto out;
  }
  json_array_foreach(comp, i, v) {
    if (!json_is_string(v) || !json_object_get(comps, json_string_value(v))) {
      json_decref(comps);
      qs__reply_error(r, 400, "invalid_index_template_exception",
                      "index_template [%.200s] invalid, cause [index template [%.200s] specifies "
                      "component templates [%.200s] that do not exist]",
                      r->caps[0], r->caps[0], json_is_string(v) ? json_string_value(v) : "?");
      goto out;
    }
  }
  json_decref(comps);
  /* two templates of one priority may not share a pattern: which applies would be a guess */
  json_t *all = qs__meta_get(r->srv, "index_templates");
  const char *other;
  json_t *t;
  json_int_t p = prio ? json_integer_value(prio) : 0;
  json_object_foreach(all, other, t) {
    json_t *op = json_object_get(t, "priority");
    if (!strcmp(other, r->caps[0]) || (op ? json_integer_value(op) : 0) != p) continue;
    size_t k;
    json_t *a, *b;
    json_array_foreach(pats, i, a) json_array_foreach(json_object_get(t, "index_patterns"), k, b) {
      if (!json_equal(a, b)) continue;
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "index template [%.200s] has index patterns [%.200s] matching patterns from "
                      "existing templates [%.200s] that have the same priority [%lld]; use a "
                      "different priority", r->caps[0], json_string_value(a), other, (long long)p);
      json_decref(all); /* after the reply: OTHER is one of its keys */
      goto out;
    }
  }
  json_decref(all);
  store(r, "index_templates", body);
out:
  json_decref(body);
}

static void get_templates(qs_req *r, const char *section, const char *list, const char *item) {
  if (!qs__local_only(r)) return;
  json_t *all = qs__meta_get(r->srv, section), *out = json_array();
  const char *name;
  json_t *t;
  json_object_foreach(all, name, t) {
    if (r->ncaps && fnmatch(r->caps[0], name, 0)) continue;
    json_array_append_new(out, json_pack("{s:s, s:O}", "name", name, item, t));
  }
  json_decref(all);
  if (r->ncaps && !json_array_size(out) && !strchr(r->caps[0], '*')) {
    json_decref(out);
    return qs__reply_error(r, 404, "resource_not_found_exception", "%s [%.200s] not found",
                           !strcmp(section, "index_templates") ? "index template"
                                                                : "component template",
                           r->caps[0]);
  }
  qs__reply_json(r, 200, json_pack("{s:o}", list, out));
}

void qs__h_index_template_get(qs_req *r) {
  get_templates(r, "index_templates", "index_templates", "index_template");
}
void qs__h_component_template_get(qs_req *r) {
  get_templates(r, "component_templates", "component_templates", "component_template");
}

void qs__h_index_template_delete(qs_req *r) {
  if (qs__local_only(r)) store(r, "index_templates", NULL);
}

void qs__h_component_template_delete(qs_req *r) {
  if (!qs__local_only(r)) return;
  json_t *all = qs__meta_get(r->srv, "index_templates");
  const char *name;
  json_t *t;
  json_object_foreach(all, name, t) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(t, "composed_of"), i, c) {
      if (json_is_string(c) && !strcmp(json_string_value(c), r->caps[0])) {
        qs__reply_error(r, 400, "illegal_argument_exception",
                        "component templates [%.200s] cannot be removed as they are still in use "
                        "by index templates [%.200s]", r->caps[0], name);
        json_decref(all);
        return;
      }
    }
  }
  json_decref(all);
  store(r, "component_templates", NULL);
}

void qs__h_legacy_template(qs_req *r) {
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "legacy index templates (/_template) are not supported: use composable "
                  "templates, PUT /_index_template/{name} and /_component_template/{name}");
}

/* ---- applied at creation --------------------------------------------------------------------- */

json_t *qs__template_compose(qs_server *s, const char *index, json_t *body) {
  json_t *all = qs__meta_get(s, "index_templates");
  const char *name, *best = NULL;
  json_t *t, *bt = NULL;
  json_int_t bp = -1;
  json_object_foreach(all, name, t) {
    size_t i;
    json_t *p;
    int match = 0;
    json_array_foreach(json_object_get(t, "index_patterns"), i, p) match |= !fnmatch(json_string_value(p), index, 0);
    json_int_t prio = json_integer_value(json_object_get(t, "priority"));
    if (match && prio > bp) best = name, bt = t, bp = prio;
  }
  json_t *out = json_object();
  if (bt) {
    json_t *comps = qs__meta_get(s, "component_templates");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(bt, "composed_of"), i, c) {
      json_t *ct = json_object_get(json_object_get(comps, json_string_value(c)), "template");
      if (json_is_object(ct)) merge_over(out, ct);
    }
    json_decref(comps);
    if (json_is_object(json_object_get(bt, "template"))) merge_over(out, json_object_get(bt, "template"));
    qb_log(QB_INFO, "index %s: index template [%s] applies", index, best);
  }
  if (body) merge_over(out, body);
  json_decref(all);
  return out;
}

qb_code qs__index_create(qs_server *s, const char *name, const char *body, size_t len,
                         qi_index **out, qb_err *err) {
  *out = NULL;
  if (qs__is_alias(s, name))
    return qb_fail(err, QB_INVAL, "Invalid index name [%s], already exists as alias", name);
  json_t *given = NULL;
  if (body && len) {
    json_error_t je;
    if (!(given = json_loadb(body, len, 0, &je)) || !json_is_object(given)) {
      json_decref(given);
      return qb_fail(err, QB_INVAL, "the create-index body is not a JSON object");
    }
  }
  json_t *full = qs__template_compose(s, name, given);
  json_decref(given);
  json_t *aliases = json_incref(json_object_get(full, "aliases"));
  json_object_del(full, "aliases");
  char *text = json_object_size(full) ? json_dumps(full, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
  json_decref(full);
  qb_code rc = qi_catalog_create(qc_node_catalog(s->node), name, text, out, err);
  if (text) qs__json_free(text);
  if (!rc && (rc = qs__aliases_add(s, name, aliases, err))) {
    qi_index_release(*out);
    *out = NULL;
    qi_catalog_delete(qc_node_catalog(s->node), name, NULL);
  }
  json_decref(aliases);
  return rc;
}
