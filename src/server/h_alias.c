/* h_alias.c: index aliases, as Elasticsearch serves them. An alias names one or more indexes,
** each with an optional filter (applied to searches through the alias) and is_write_index
** (the index writes through the alias go to; needed when it names several). They live in the
** node's metadata (meta.c, section "aliases": {alias: {index: {filter?, is_write_index?}}}).
** Routes: POST /_aliases (add, remove, remove_index; all or nothing), PUT/POST/GET/DELETE
** /{index}/_alias/{name}, GET /{index}/_alias, GET /_alias/{name}, GET /_alias, _cat/aliases.
** Resolution: a search's index expression is expanded here (aliases, patterns, closed
** indexes) before the node resolves it; a document route's {index} is rewritten to the alias's
** index (qs__alias_caps). One node's catalog: a cluster coordinator answers 400. */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int qs__local_only(qs_req *r) {
  if (!qc_node_routes(r->srv->node)) return 1;
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "[%s %s] is not served by a cluster coordinator yet (docs/cluster.md)", r->method,
                  r->path);
  return 0;
}

int qs__index_is_closed(qs_server *s, const char *index) {
  json_t *c = qs__meta_get_key(s, "closed", index);
  json_decref(c);
  return c != NULL;
}

void qs__reply_closed(qs_req *r, const char *index) {
  json_t *cause = json_pack("{s:s, s:s, s:s}", "type", "index_closed_exception", "reason",
                            "closed", "index", index);
  qs__reply_json(r, 400, json_pack("{s:{s:[o], s:s, s:s, s:s}, s:i}", "error", "root_cause",
                                   cause, "type", "index_closed_exception", "reason", "closed",
                                   "index", index, "status", 400));
}

static int index_exists(qs_server *s, const char *name) {
  qi_index *ix;
  if (qi_catalog_get(qc_node_catalog(s->node), name, &ix, NULL)) return 0;
  qi_index_release(ix);
  return 1;
}

/* ---- resolution ------------------------------------------------------------------------------ */

/* The index writes (WRITE) or single-document reads through alias A (its {index: props}) go
** to, in OUT; 0 with REASON when there is none. */
static int alias_target(const char *alias, json_t *a, int write, char out[256], char *reason,
                        size_t cap) {
  const char *k, *only = NULL;
  json_t *v;
  size_t n = json_object_size(a);
  json_object_foreach(a, k, v) {
    json_t *w = json_object_get(v, "is_write_index");
    if (write ? json_is_true(w) || (n == 1 && !json_is_false(w)) : n == 1) only = k;
  }
  if (only) {
    snprintf(out, 256, "%s", only);
    return 1;
  }
  if (write)
    snprintf(reason, cap, "no write index is defined for alias [%s]. The write index may be "
             "explicitly disabled using is_write_index=false or the alias points to multiple "
             "indices without one being designated as a write index", alias);
  else
    snprintf(reason, cap, "alias [%s] has more than one index associated with it, can't execute "
             "a single index op", alias);
  return 0;
}

int qs__alias_resolve_one(qs_server *s, const char *name, int write, char out[256], char *reason,
                          size_t cap) {
  json_t *a = qs__meta_get_key(s, "aliases", name);
  int rc = 0;
  if (a) rc = alias_target(name, a, write, out, reason, cap) ? 1 : -1;
  json_decref(a);
  return rc;
}

/* The handlers whose {index} names one index for a document or its mapping. */
static int single_index_handler(qs_handler h, int *write) {
  *write = h == qs__h_doc_put || h == qs__h_doc_delete || h == qs__h_doc_create ||
           h == qs__h_doc_update || h == qs__h_bulk;
  return *write || h == qs__h_doc_get || h == qs__h_source_get || h == qs__h_mget ||
         h == qs__h_explain;
}

int qs__alias_caps(qs_req *r, qs_handler h) {
  int write;
  if (!r->ncaps || !single_index_handler(h, &write) || qc_node_routes(r->srv->node)) return 1;
  char reason[512];
  int rc = qs__alias_resolve_one(r->srv, r->caps[0], write, r->alias_to, reason, sizeof reason);
  if (rc < 0) {
    qs__reply_error(r, 400, "illegal_argument_exception", "%s", reason);
    return 0;
  }
  if (rc > 0) r->caps[0] = r->alias_to;
  if (qs__index_is_closed(r->srv, r->caps[0])) {
    qs__reply_closed(r, r->caps[0]);
    return 0;
  }
  return 1;
}

/* Append NAME (with FILTER: NULL = none, the index is searched whole) to the expansion. */
static void expand_add(json_t *order, json_t *filters, const char *name, json_t *filter) {
  json_t *f = json_object_get(filters, name);
  if (!f) {
    json_array_append_new(order, json_string(name));
    json_object_set_new(filters, name, f = filter ? json_array() : json_null());
  }
  if (json_is_array(f)) {
    if (filter) json_array_append(f, filter);
    else json_object_set_new(filters, name, json_null()); /* named whole: no filter */
  }
}

static void expand_alias(json_t *order, json_t *filters, json_t *a) {
  const char *ix;
  json_t *p;
  json_object_foreach(a, ix, p) expand_add(order, filters, ix, json_object_get(p, "filter"));
}

int qs__alias_expand(qs_req *r, const char *expr, char **out, json_t **filter) {
  *out = NULL;
  *filter = NULL;
  if (qc_node_routes(r->srv->node)) return 1; /* a coordinator: names as given */
  if (expr && *expr && !strchr(expr, ',') && !strchr(expr, '*') && strcmp(expr, "_all")) {
    /* one name that is neither an alias nor closed: itself, as the loop below would give it,
    ** without copying the aliases and the closed set (~6k instructions a search; issue 14) */
    json_t *a = qs__meta_get_key(r->srv, "aliases", expr);
    json_t *c = qs__meta_get_key(r->srv, "closed", expr);
    int plain = !a && !c;
    json_decref(a);
    json_decref(c);
    if (plain) return 1;
  }
  json_t *aliases = qs__meta_get(r->srv, "aliases"), *closed = qs__meta_get(r->srv, "closed");
  json_t *order = json_array(), *filters = json_object();
  qi_catalog *cat = qc_node_catalog(r->srv->node);
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", expr ? expr : "_all");
  int ok = 1;
  for (char *save = NULL, *part = strtok_r(buf, ",", &save); part && ok;
       part = strtok_r(NULL, ",", &save)) {
    if (!strcmp(part, "_all") || strchr(part, '*')) {
      const char *pat = strcmp(part, "_all") ? part : "*";
      for (size_t i = 0, n = qi_catalog_count(cat); i < n; i++) {
        char name[256];
        if (qi_catalog_name(cat, i, name, NULL) || fnmatch(pat, name, 0)) continue;
        /* patterns skip closed and damaged indexes, as the node's own resolution does */
        if (!json_object_get(closed, name) && !qi_catalog_damaged(cat, name, NULL, 0))
          expand_add(order, filters, name, NULL);
      }
      const char *an;
      json_t *a;
      if (strcmp(part, "_all"))
        json_object_foreach(aliases, an, a) if (!fnmatch(pat, an, 0)) expand_alias(order, filters, a);
      continue;
    }
    json_t *a = json_object_get(aliases, part);
    if (a) {
      expand_alias(order, filters, a);
      continue;
    }
    if (json_object_get(closed, part)) {
      qs__reply_closed(r, part);
      ok = 0;
      break;
    }
    expand_add(order, filters, part, NULL);
  }
  /* closed indexes an alias names are refused too */
  size_t i;
  json_t *jn;
  json_array_foreach(order, i, jn) {
    if (ok && json_object_get(closed, json_string_value(jn))) {
      qs__reply_closed(r, json_string_value(jn));
      ok = 0;
    }
  }
  /* one filter for the whole request: the indexes must agree on it */
  json_t *first = NULL;
  json_array_foreach(order, i, jn) {
    json_t *f = json_object_get(filters, json_string_value(jn));
    if (!ok) break;
    if (!i) first = f;
    else if (!json_equal(first, f)) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "[%.200s] reaches indexes through aliases with different filters; search "
                      "them one alias at a time", expr ? expr : "_all");
      ok = 0;
    }
  }
  if (ok && json_is_array(first) && json_array_size(first)) {
    *filter = json_array_size(first) == 1
                  ? json_incref(json_array_get(first, 0))
                  : json_pack("{s:{s:O, s:i}}", "bool", "should", first, "minimum_should_match", 1);
  }
  if (ok) {
    qb_buf b;
    qb_buf_init(&b);
    json_array_foreach(order, i, jn) {
      if (i) qb_buf_append(&b, ",", 1);
      qb_buf_append(&b, json_string_value(jn), strlen(json_string_value(jn)));
    }
    *out = qb_malloc(b.len + 1);
    if (*out) {
      if (b.len) memcpy(*out, b.data, b.len);
      (*out)[b.len] = 0;
    }
    qb_buf_fini(&b);
    if (!*out) {
      json_decref(*filter);
      *filter = NULL;
      qs__reply_code(r, QB_NOMEM, "out of memory");
      ok = 0;
    }
  }
  json_decref(aliases);
  json_decref(closed);
  json_decref(order);
  json_decref(filters);
  return ok;
}

void qs__alias_expand_free(char *expr) {
  if (expr) qb_free(expr, strlen(expr) + 1);
}

char *qs__alias_filter_body(const char *body, size_t len, json_t *filter) {
  json_error_t je;
  json_t *b = len ? json_loadb(body, len, 0, &je) : json_object();
  if (!json_is_object(b)) {
    json_decref(b);
    return NULL; /* the search reports its own parse error on the original body */
  }
  json_t *q = json_object_get(b, "query");
  json_t *must = q ? json_incref(q) : json_pack("{s:{}}", "match_all");
  json_t *nq = json_pack("{s:{s:[o], s:[O]}}", "bool", "must", must, "filter", filter);
  json_object_set_new(b, "query", nq);
  char *out = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(b);
  return out;
}

json_t *qs__aliases_of(qs_server *s, const char *index) {
  json_t *all = qs__meta_get(s, "aliases"), *out = json_object();
  const char *an;
  json_t *a;
  json_object_foreach(all, an, a) {
    json_t *p = json_object_get(a, index);
    if (p) json_object_set(out, an, p);
  }
  json_decref(all);
  return out;
}

/* ---- changes --------------------------------------------------------------------------------- */

typedef struct alias_op {
  int kind; /* 0 add, 1 remove, 2 remove_index */
  json_t *indices, *aliases; /* arrays of concrete names / alias names or patterns */
  json_t *props;             /* add: {filter?, is_write_index?} */
  int must_exist;
} alias_op;

typedef struct alias_batch {
  qs_req *r;
  alias_op *ops;
  size_t n;
  int status;
  const char *type;
  char reason[600];
} alias_batch;

static qb_code batch_fail(alias_batch *b, int status, const char *type, qb_err *err,
                          const char *fmt, const char *a1, const char *a2) {
  b->status = status;
  b->type = type;
  snprintf(b->reason, sizeof b->reason, fmt, a1, a2 ? a2 : "");
  return qb_fail(err, QB_INVAL, "%s", b->reason);
}

/* Apply every op to DOC's aliases (the metadata copy): all succeed or the copy is dropped. */
static qb_code apply_batch(json_t *doc, void *ud, qb_err *err) {
  alias_batch *b = ud;
  json_t *aliases = qs__meta_section(doc, "aliases");
  for (size_t i = 0; i < b->n; i++) {
    alias_op *o = &b->ops[i];
    size_t k, j;
    json_t *ix, *al;
    json_array_foreach(o->indices, k, ix) {
      const char *iname = json_string_value(ix);
      if (o->kind == 2) { /* remove_index: its aliases go with it */
        const char *an;
        json_t *a, *tmp;
        json_object_foreach_safe(aliases, tmp, an, a) {
          json_object_del(a, iname);
          if (!json_object_size(a)) json_object_del(aliases, an);
        }
        continue;
      }
      json_array_foreach(o->aliases, j, al) {
        const char *an = json_string_value(al);
        if (o->kind == 0) {
          if (index_exists(b->r->srv, an))
            return batch_fail(b, 400, "invalid_alias_name_exception", err,
                              "Invalid alias name [%s]: an index or data stream exists with the "
                              "same name as the alias", an, NULL);
          json_t *a = json_object_get(aliases, an);
          if (!a) json_object_set_new(aliases, an, a = json_object());
          json_object_set(a, iname, o->props);
          continue;
        }
        /* remove: names may be patterns */
        int hit = 0;
        const char *name;
        json_t *a, *tmp;
        json_object_foreach_safe(aliases, tmp, name, a) {
          if (fnmatch(an, name, 0) || !json_object_get(a, iname)) continue;
          json_object_del(a, iname);
          hit = 1;
          if (!json_object_size(a)) json_object_del(aliases, name);
        }
        if (!hit && o->must_exist)
          return batch_fail(b, 404, "aliases_not_found_exception", err, "aliases [%s] missing", an,
                            NULL);
      }
    }
  }
  /* at most one write index per alias */
  const char *an;
  json_t *a;
  json_object_foreach(aliases, an, a) {
    size_t w = 0;
    const char *ix;
    json_t *p;
    json_object_foreach(a, ix, p) w += json_is_true(json_object_get(p, "is_write_index"));
    if (w > 1)
      return batch_fail(b, 400, "illegal_state_exception", err,
                        "alias [%s] has more than one write index", an, NULL);
  }
  return QB_OK;
}

/* NAME or NAMES of action item X as an array of strings; NULL (after a reply) when neither. */
static json_t *names_of(qs_req *r, json_t *x, const char *one, const char *many, int need) {
  json_t *v = json_object_get(x, one), *vs = json_object_get(x, many), *out = json_array();
  if (json_is_string(v)) json_array_append(out, v);
  size_t i;
  json_t *e;
  if (json_is_array(vs)) json_array_foreach(vs, i, e) if (json_is_string(e)) json_array_append(out, e);
  if (json_is_string(vs)) json_array_append(out, vs);
  if (need && !json_array_size(out)) {
    json_decref(out);
    qs__reply_error(r, 400, "action_request_validation_exception",
                    "Validation Failed: 1: [%s] is missing;", one);
    return NULL;
  }
  return out;
}

/* Concrete indexes NAMES (names or patterns) stand for; NULL after a 404. */
static json_t *concrete(qs_req *r, json_t *names) {
  json_t *out = json_array();
  qi_catalog *cat = qc_node_catalog(r->srv->node);
  size_t i;
  json_t *jn;
  json_array_foreach(names, i, jn) {
    const char *p = json_string_value(jn);
    if (strchr(p, '*') || !strcmp(p, "_all")) {
      for (size_t k = 0, n = qi_catalog_count(cat); k < n; k++) {
        char name[256];
        if (!qi_catalog_name(cat, k, name, NULL) && !fnmatch(strcmp(p, "_all") ? p : "*", name, 0))
          json_array_append_new(out, json_string(name));
      }
    } else if (index_exists(r->srv, p)) {
      json_array_append(out, jn);
    } else {
      json_decref(out);
      qs__reply_no_index(r, p);
      return NULL;
    }
  }
  return out;
}

/* The filter must be a query this node parses; 0 after a 400 naming what is wrong. */
static int filter_ok(qs_req *r, json_t *filter) {
  if (!filter) return 1;
  json_t *q = json_pack("{s:O}", "query", filter);
  char *text = q ? json_dumps(q, JSON_COMPACT) : NULL;
  json_decref(q);
  if (!text) return qs__reply_code(r, QB_NOMEM, "out of memory"), 0;
  qc_udf_provider prov;
  qq_env env;
  qs__query_env(r, &prov, &env);
  qq_request *req = NULL;
  qb_err err;
  qb_err_clear(&err);
  qb_code rc = qq_request_parse(&env, text, strlen(text), 1, &req, &err);
  qq_request_free(req);
  qc_udf_provider_fini(&prov);
  qs__json_free(text);
  if (!rc) return 1;
  qs__reply_error(r, 400, "illegal_argument_exception", "failed to parse filter for alias: %s",
                  err.msg);
  return 0;
}

/* Read one add/remove action's properties into O; 0 after a reply. */
static int read_action(qs_req *r, const char *kind, json_t *x, alias_op *o) {
  static const char *const add_keys[] = {"index", "indices", "alias", "aliases", "filter",
                                         "is_write_index", "must_exist", NULL};
  const char *k;
  json_t *v;
  if (!json_is_object(x)) {
    qs__reply_error(r, 400, "parsing_exception", "[%s] must be an object", kind);
    return 0;
  }
  json_object_foreach(x, k, v) {
    int known = 0;
    for (size_t i = 0; add_keys[i]; i++) known |= !strcmp(add_keys[i], k);
    if (!known || (o->kind && (!strcmp(k, "filter") || !strcmp(k, "is_write_index"))) ||
        (o->kind == 2 && strcmp(k, "index") && strcmp(k, "indices"))) {
      qs__reply_error(r, 400, "parsing_exception",
                      "[%s] unknown field [%.64s] (served: index, indices, alias, aliases%s)", kind,
                      k, o->kind ? ", must_exist" : ", filter, is_write_index");
      return 0;
    }
  }
  json_t *names = names_of(r, x, "index", "indices", 1);
  if (!names) return 0;
  o->indices = concrete(r, names);
  json_decref(names);
  if (!o->indices) return 0;
  if (o->kind != 2 && !(o->aliases = names_of(r, x, "alias", "aliases", 1))) return 0;
  o->must_exist = o->kind == 1 && !json_is_false(json_object_get(x, "must_exist"));
  if (o->kind) return 1;
  size_t i;
  json_array_foreach(o->aliases, i, v) {
    char reason[256];
    if (!qs__index_name_ok(json_string_value(v), reason) || strchr(json_string_value(v), '*')) {
      qs__reply_error(r, 400, "invalid_alias_name_exception", "Invalid alias name [%.200s]",
                      json_string_value(v));
      return 0;
    }
  }
  json_t *f = json_object_get(x, "filter"), *w = json_object_get(x, "is_write_index");
  if ((f && !json_is_object(f)) || (w && !json_is_boolean(w))) {
    qs__reply_error(r, 400, "parsing_exception",
                    f && !json_is_object(f) ? "[filter] must be an object"
                                            : "[is_write_index] must be true or false");
    return 0;
  }
  if (!filter_ok(r, f)) return 0;
  o->props = json_object();
  if (f) json_object_set(o->props, "filter", f);
  if (w) json_object_set(o->props, "is_write_index", w);
  return 1;
}

static void free_ops(alias_op *ops, size_t n) {
  for (size_t i = 0; i < n; i++) {
    json_decref(ops[i].indices);
    json_decref(ops[i].aliases);
    json_decref(ops[i].props);
  }
  qb_free(ops, (n ? n : 1) * sizeof *ops);
}

/* Run the batch; then delete remove_index's indexes. Replies either way. */
static void run_batch(qs_req *r, alias_op *ops, size_t n) {
  alias_batch b = {.r = r, .ops = ops, .n = n};
  qb_err err;
  qb_code rc = qs__meta_update(r->srv, apply_batch, &b, &err);
  if (rc && b.status) return qs__reply_error(r, b.status, b.type, "%s", b.reason);
  if (rc) return qs__reply_err(r, &err);
  for (size_t i = 0; i < n; i++) {
    size_t k;
    json_t *ix;
    if (ops[i].kind != 2) continue;
    json_array_foreach(ops[i].indices, k, ix) {
      if (qi_catalog_delete(qc_node_catalog(r->srv->node), json_string_value(ix), &err) == QB_OK) {
        qs__index_forget(r->srv, json_string_value(ix));
        qb_log(QB_INFO, "index deleted: %s (remove_index)", json_string_value(ix));
      }
    }
  }
  qs__reply_json(r, 200, json_pack("{s:b, s:b}", "acknowledged", 1, "errors", 0));
}

void qs__h_aliases_post(qs_req *r) {
  if (!qs__local_only(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_t *actions = json_object_get(body, "actions");
  if (!json_is_array(actions) || !json_array_size(actions) || json_object_size(body) != 1) {
    json_decref(body);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: no action specified;");
  }
  size_t n = json_array_size(actions), i;
  alias_op *ops = qb_calloc(n, sizeof *ops);
  if (!ops) {
    json_decref(body);
    return qs__reply_code(r, QB_NOMEM, "out of memory");
  }
  json_t *a;
  int ok = 1;
  json_array_foreach(actions, i, a) {
    const char *kind = json_object_size(a) == 1 ? json_object_iter_key(json_object_iter(a)) : NULL;
    int k = !kind ? -1 : !strcmp(kind, "add") ? 0 : !strcmp(kind, "remove") ? 1
            : !strcmp(kind, "remove_index") ? 2 : -1;
    if (k < 0) {
      qs__reply_error(r, 400, "parsing_exception",
                      "action %zu: [%.64s] is not an alias action (add, remove, remove_index)", i,
                      kind ? kind : "(one key expected)");
      ok = 0;
      break;
    }
    ops[i].kind = k;
    if (!read_action(r, kind, json_object_get(a, kind), &ops[i])) {
      ok = 0;
      break;
    }
  }
  if (ok) run_batch(r, ops, n);
  free_ops(ops, n);
  json_decref(body);
}

/* PUT /{index}/_alias/{name} {filter?, is_write_index?} */
void qs__h_alias_put(qs_req *r) {
  if (!qs__local_only(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_t *x = body ? json_deep_copy(body) : json_object();
  json_decref(body);
  if (json_object_get(x, "index") || json_object_get(x, "alias")) {
    json_decref(x);
    return qs__reply_error(r, 400, "parsing_exception",
                           "the index and alias are the URL's, not the body's");
  }
  json_object_set_new(x, "index", json_string(r->caps[0]));
  json_object_set_new(x, "alias", json_string(r->caps[1]));
  alias_op *ops = qb_calloc(1, sizeof *ops);
  if (!ops) {
    json_decref(x);
    return qs__reply_code(r, QB_NOMEM, "out of memory");
  }
  /* the index part may be a list: "a,b" */
  if (strchr(r->caps[0], ',')) {
    json_t *list = json_array();
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", r->caps[0]);
    for (char *s = NULL, *t = strtok_r(buf, ",", &s); t; t = strtok_r(NULL, ",", &s))
      json_array_append_new(list, json_string(t));
    json_object_del(x, "index");
    json_object_set_new(x, "indices", list);
  }
  if (read_action(r, "add", x, ops)) run_batch(r, ops, 1);
  free_ops(ops, 1);
  json_decref(x);
}

void qs__h_alias_delete(qs_req *r) {
  if (!qs__local_only(r)) return;
  json_t *x = json_pack("{s:s, s:s}", "index", r->caps[0], "alias", r->caps[1]);
  alias_op *ops = qb_calloc(1, sizeof *ops);
  if (!ops || !x) {
    json_decref(x);
    qb_free(ops, sizeof *ops);
    return qs__reply_code(r, QB_NOMEM, "out of memory");
  }
  ops->kind = 1;
  if (strchr(r->caps[0], ',') || strchr(r->caps[1], ',')) {
    json_decref(x);
    free_ops(ops, 1);
    return qs__reply_error(r, 400, "illegal_argument_exception",
                           "delete one alias of one index (or a pattern) at a time, or use "
                           "POST /_aliases");
  }
  if (read_action(r, "remove", x, ops)) run_batch(r, ops, 1);
  free_ops(ops, 1);
  json_decref(x);
}

/* GET [/{index}]/_alias[/{name}]: {index: {"aliases": {name: props}}}. */
void qs__h_alias_get(qs_req *r) {
  if (!qs__local_only(r)) return;
  const char *ispec = NULL, *aspec = NULL;
  if (r->route == QS_R_ALIAS_GET_ONE) ispec = r->caps[0], aspec = r->caps[1];
  else if (r->route == QS_R_ALIAS_GET_INDEX) ispec = r->caps[0];
  else if (r->ncaps) aspec = r->caps[0];
  json_t *names = json_array();
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", ispec ? ispec : "_all");
  for (char *s = NULL, *t = strtok_r(buf, ",", &s); t; t = strtok_r(NULL, ",", &s))
    json_array_append_new(names, json_string(t));
  json_t *ix = concrete(r, names);
  json_decref(names);
  if (!ix) return;
  json_t *all = qs__meta_get(r->srv, "aliases"), *out = json_object();
  size_t i, found = 0;
  json_t *jn;
  json_array_foreach(ix, i, jn) {
    const char *iname = json_string_value(jn), *an;
    json_t *a, *mine = json_object();
    json_object_foreach(all, an, a) {
      json_t *p = json_object_get(a, iname);
      if (!p) continue;
      int want = !aspec;
      if (aspec) {
        snprintf(buf, sizeof buf, "%s", aspec);
        for (char *s = NULL, *t = strtok_r(buf, ",", &s); t && !want; t = strtok_r(NULL, ",", &s))
          want = !strcmp(t, "_all") || !fnmatch(t, an, 0);
      }
      if (want) json_object_set(mine, an, p), found++;
    }
    /* with a name, only indexes holding it are listed (as Elasticsearch) */
    if (!aspec || json_object_size(mine))
      json_object_set_new(out, iname, json_pack("{s:o}", "aliases", mine));
    else json_decref(mine);
  }
  json_decref(ix);
  json_decref(all);
  if (aspec && !found && !strchr(aspec, '*')) {
    json_decref(out);
    char why[300];
    snprintf(why, sizeof why, "alias [%.256s] missing", aspec);
    return qs__reply_json(r, 404, json_pack("{s:s, s:i}", "error", why, "status", 404));
  }
  qs__reply_json(r, 200, out);
}

static const char *const alias_cols[] = {"alias", "index", "filter", "routing.index",
                                         "routing.search", "is_write_index"};

void qs__h_cat_aliases(qs_req *r) {
  if (!qs__local_only(r)) return;
  json_t *all = qs__meta_get(r->srv, "aliases"), *rows = json_array();
  const char *an, *ix;
  json_t *a, *p;
  json_object_foreach(all, an, a) {
    json_object_foreach(a, ix, p) {
      json_t *w = json_object_get(p, "is_write_index");
      json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "alias", an, "index",
                                            ix, "filter", json_object_get(p, "filter") ? "*" : "-",
                                            "routing.index", "-", "routing.search", "-",
                                            "is_write_index", w ? (json_is_true(w) ? "true" : "false")
                                                                : "-"));
    }
  }
  json_decref(all);
  qs__reply_cat(r, alias_cols, sizeof alias_cols / sizeof *alias_cols, rows);
}

/* ---- an index's own changes ---------------------------------------------------------------- */

static qb_code forget(json_t *doc, void *ud, qb_err *err) {
  (void)err;
  const char *index = ud, *an;
  json_t *aliases = qs__meta_section(doc, "aliases"), *a, *tmp;
  json_object_foreach_safe(aliases, tmp, an, a) {
    json_object_del(a, index);
    if (!json_object_size(a)) json_object_del(aliases, an);
  }
  json_object_del(qs__meta_section(doc, "closed"), index);
  return QB_OK;
}

void qs__index_forget(qs_server *s, const char *index) {
  qb_err err;
  if (qs__meta_update(s, forget, (void *)index, &err))
    qb_log(QB_ERROR, "index %s deleted, but its aliases could not be removed: %s", index, err.msg);
}

typedef struct add_ctx {
  const char *index;
  json_t *aliases; /* {name: props} */
} add_ctx;

static qb_code add_aliases(json_t *doc, void *ud, qb_err *err) {
  (void)err;
  add_ctx *c = ud;
  json_t *aliases = qs__meta_section(doc, "aliases");
  const char *an;
  json_t *p;
  json_object_foreach(c->aliases, an, p) {
    json_t *a = json_object_get(aliases, an);
    if (!a) json_object_set_new(aliases, an, a = json_object());
    json_object_set(a, c->index, p);
  }
  return QB_OK;
}

int qs__aliases_check(qs_req *r, json_t *aliases) {
  if (!aliases) return 1;
  if (!json_is_object(aliases)) {
    qs__reply_error(r, 400, "parsing_exception", "[aliases] must be an object");
    return 0;
  }
  const char *an;
  json_t *p;
  json_object_foreach(aliases, an, p) {
    char reason[256];
    if (!qs__index_name_ok(an, reason) || !json_is_object(p)) {
      qs__reply_error(r, 400, "invalid_alias_name_exception", "Invalid alias [%.200s]: %s", an,
                      json_is_object(p) ? reason : "its properties must be an object");
      return 0;
    }
    if (index_exists(r->srv, an)) {
      qs__reply_error(r, 400, "invalid_alias_name_exception",
                      "Invalid alias name [%.200s]: an index exists with the same name", an);
      return 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) {
      if ((!strcmp(k, "filter") && json_is_object(v)) ||
          (!strcmp(k, "is_write_index") && json_is_boolean(v)))
        continue;
      qs__reply_error(r, 400, "parsing_exception",
                      "alias [%.200s]: unsupported property [%.64s] (served: filter, "
                      "is_write_index)", an, k);
      return 0;
    }
    if (!filter_ok(r, json_object_get(p, "filter"))) return 0;
  }
  return 1;
}

qb_code qs__aliases_add(qs_server *s, const char *index, json_t *aliases, qb_err *err) {
  if (!aliases || !json_object_size(aliases)) return QB_OK;
  add_ctx c = {index, aliases};
  return qs__meta_update(s, add_aliases, &c, err);
}

int qs__is_alias(qs_server *s, const char *name) {
  json_t *a = qs__meta_get_key(s, "aliases", name);
  json_decref(a);
  return a != NULL;
}
