/* h_bulk.c: POST /_bulk and /{index}/_bulk (NDJSON). The whole body is parsed and checked
** first, so a malformed request changes nothing; then items run in order, consecutive index,
** create and delete items of one index sharing one qi_bulk transaction (one fsync per run of
** items; create and if_seq_no are conditions the index checks per item). update items read
** the store, so they commit the running batch first.
** Invariant: an item's result is final only once its batch committed; a failed commit turns
** every item of that batch into an error. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

enum { OP_INDEX, OP_CREATE, OP_DELETE, OP_UPDATE };
static const char *const op_names[] = {"index", "create", "delete", "update"};

typedef struct op {
  int kind;
  json_t *meta;      /* the action's object (owned by the ops array) */
  const char *index; /* borrowed from meta or the URL */
  const char *id;    /* borrowed from meta; NULL: generated */
  const char *src;   /* source line (index/create/update), borrowed from the body */
  size_t src_len;
  qi_write_cond cond; /* create: create_only; "if_seq_no" in the action */
} op;

typedef struct bulk {
  qs_req *r;
  op *ops;
  size_t nops, cap;
  json_t *items;     /* one result per op */
  json_t *touched;   /* object: index names written */
  int errors;
  /* the running batch */
  qi_index *ix;
  const char *ix_name;
  qi_bulk *b;
  size_t *pend;      /* items of the running batch */
  size_t npend;
} bulk;

static int blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
  return 1;
}

/* Parse the body into B->ops. On failure, replies and returns 0. */
static int parse(bulk *B, const char *url_index) {
  qs_req *r = B->r;
  const char *p = r->body, *end = r->body + r->body_len;
  size_t line = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    line++;
    if (blank(p, (size_t)(le - p))) {
      p = nl ? nl + 1 : end;
      continue;
    }
    json_error_t je;
    uint64_t failed = qb_alloc_failures(); /* jansson may report running out as bad JSON */
    json_t *a = json_loadb(p, (size_t)(le - p), 0, &je);
    if (!a) {
      if (qb_alloc_failures() != failed) qs__reply_code(r, QB_NOMEM, "out of memory parsing _bulk");
      else qs__reply_code(r, QB_PARSE, "[%zu:%d] %s", line, je.column, je.text);
      return 0;
    }
    const char *key = NULL;
    json_t *meta = NULL;
    if (json_is_object(a) && json_object_size(a) == 1) {
      void *it = json_object_iter(a);
      key = json_object_iter_key(it);
      meta = json_object_iter_value(it);
    }
    int kind = -1;
    for (int k = 0; key && k < 4; k++)
      if (!strcmp(key, op_names[k])) kind = k;
    if (kind < 0 || !json_is_object(meta)) {
      json_decref(a);
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "Malformed action/metadata line [%zu], expected one of [create, delete, "
                      "index, update] with an object", line);
      return 0;
    }
    if (B->nops == B->cap) {
      size_t ncap = B->cap ? B->cap * 2 : 64;
      op *n = qb_realloc(B->ops, B->cap * sizeof *n, ncap * sizeof *n);
      if (!n) {
        json_decref(a);
        qs__reply_code(r, QB_NOMEM, "out of memory parsing _bulk");
        return 0;
      }
      B->ops = n;
      B->cap = ncap;
    }
    op *o = &B->ops[B->nops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->meta = a;
    json_t *jx = json_object_get(meta, "_index"), *jid = json_object_get(meta, "_id");
    o->index = json_is_string(jx) ? json_string_value(jx) : url_index;
    char target[256], why[512];
    int al = o->index ? qs__alias_resolve_one(r->srv, o->index, 1, target, why, sizeof why) : 0;
    if (al < 0) {
      qs__reply_error(r, 400, "illegal_argument_exception", "line %zu: %s", line, why);
      return 0;
    }
    if (al > 0) { /* an alias: its write index, kept in the item's meta */
      json_object_set_new(meta, "_index", json_string(target));
      o->index = json_string_value(json_object_get(meta, "_index"));
    }
    if (json_is_string(jid)) o->id = json_string_value(jid);
    else if (json_is_integer(jid)) {
      json_object_set_new(meta, "_id", json_sprintf("%lld", (long long)json_integer_value(jid)));
      o->id = json_string_value(json_object_get(meta, "_id"));
    }
    if (!o->index) {
      qs__reply_error(r, 400, "action_request_validation_exception",
                      "Validation Failed: 1: index is missing (line %zu);", line);
      return 0;
    }
    o->cond.create_only = kind == OP_CREATE;
    json_t *isn = json_object_get(meta, "if_seq_no");
    if (isn) {
      if (!json_is_integer(isn) || json_integer_value(isn) < 0) {
        qs__reply_error(r, 400, "illegal_argument_exception",
                        "if_seq_no on line %zu must be a non-negative integer", line);
        return 0;
      }
      o->cond.has_if_seq_no = 1;
      o->cond.if_seq_no = (uint64_t)json_integer_value(isn);
    }
    if ((kind == OP_DELETE || kind == OP_UPDATE) && !o->id) {
      qs__reply_error(r, 400, "action_request_validation_exception",
                      "Validation Failed: 1: id is missing (line %zu);", line);
      return 0;
    }
    p = nl ? nl + 1 : end;
    if (kind == OP_DELETE) continue;
    /* the source line */
    while (p < end) {
      nl = memchr(p, '\n', (size_t)(end - p));
      le = nl ? nl : end;
      line++;
      if (!blank(p, (size_t)(le - p))) break;
      p = nl ? nl + 1 : end;
    }
    if (p >= end) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "Validation Failed: the %s action on line %zu has no source line",
                      op_names[kind], line);
      return 0;
    }
    o->src = p;
    o->src_len = (size_t)(le - p);
    p = nl ? nl + 1 : end;
  }
  if (!B->nops) {
    qs__reply_error(r, 400, "action_request_validation_exception",
                    "Validation Failed: 1: no requests added;");
    return 0;
  }
  return 1;
}

static void set_item(bulk *B, size_t i, json_t *res) {
  json_array_set_new(B->items, i, json_pack("{s:o}", op_names[B->ops[i].kind], res));
}

static void item_error(bulk *B, size_t i, int status, const char *type, const char *reason) {
  op *o = &B->ops[i];
  json_t *res = json_pack("{s:s, s:s?, s:i, s:{s:s, s:s, s:s}}", "_index", o->index, "_id",
                          o->id, "status", status, "error", "type", type, "reason", reason,
                          "index", o->index);
  set_item(B, i, res);
  B->errors = 1;
}

static void item_ok(bulk *B, size_t i, const qi_write_result *w, const char *result, int status) {
  op *o = &B->ops[i];
  set_item(B, i, json_pack("{s:s, s:s, s:I, s:s, s:{s:i, s:i, s:i}, s:I, s:i, s:i}", "_index",
                           o->index, "_id", w->id, "_version", (json_int_t)w->version, "result",
                           result, "_shards", "total", 1, "successful", 1, "failed", 0,
                           "_seq_no", (json_int_t)w->seq_no, "_primary_term", 1, "status",
                           status));
}

static void item_fail_err(bulk *B, size_t i, const qb_err *err) {
  qs_error e = qs__error_for(err->code, -1);
  if (err->code == QB_INVAL) e.type = "mapper_parsing_exception"; /* as a single-document write */
  item_error(B, i, e.status, e.type, err->msg);
}

/* Commit the running batch (if any). */
static void flush(bulk *B) {
  if (!B->b) return;
  qb_err err;
  if (qi_bulk_commit(B->b, &err)) {
    for (size_t k = 0; k < B->npend; k++) item_fail_err(B, B->pend[k], &err);
  }
  B->b = NULL;
  B->npend = 0;
}

static void close_index(bulk *B) {
  flush(B);
  if (B->ix) qi_index_release(B->ix);
  B->ix = NULL;
  B->ix_name = NULL;
}

/* Make index NAME the current one; 0 and an item error when it can't be. */
static int use_index(bulk *B, size_t i, const char *name, int autocreate) {
  if (B->ix && !strcmp(B->ix_name, name)) return 1;
  close_index(B);
  char reason[256];
  if (!qs__index_name_ok(name, reason)) {
    item_error(B, i, 400, "invalid_index_name_exception", reason);
    return 0;
  }
  if (qs__index_is_closed(B->r->srv, name)) {
    item_error(B, i, 400, "index_closed_exception", "closed");
    return 0;
  }
  qb_err err;
  qb_code rc = qi_catalog_get(qc_node_catalog(B->r->srv->node), name, &B->ix, &err);
  if (rc == QB_NOTFOUND && autocreate) {
    rc = qs__index_create(B->r->srv, name, NULL, 0, &B->ix, &err); /* templates apply */
    if (rc == QB_OK) qb_log(QB_INFO, "index created: %s (dynamic mappings)", name);
    if (rc == QB_CONFLICT) rc = qi_catalog_get(qc_node_catalog(B->r->srv->node), name, &B->ix, &err);
  }
  if (rc == QB_NOTFOUND) {
    char why[300];
    snprintf(why, sizeof why, "no such index [%.256s]", name);
    item_error(B, i, 404, "index_not_found_exception", why);
    return 0;
  }
  if (rc) {
    item_fail_err(B, i, &err);
    return 0;
  }
  B->ix_name = name;
  json_object_set_new(B->touched, name, json_true());
  return 1;
}

static int begin(bulk *B, size_t i) {
  if (B->b) return 1;
  qb_err err;
  if (qi_bulk_begin(B->ix, &B->b, &err)) {
    item_fail_err(B, i, &err);
    return 0;
  }
  return 1;
}

static void run(bulk *B) {
  for (size_t i = 0; i < B->nops; i++) {
    op *o = &B->ops[i];
    qi_write_result w;
    memset(&w, 0, sizeof w);
    qb_err err;
    /* index and create items may create their index; update and delete never do */
    if (!use_index(B, i, o->index, o->kind == OP_INDEX || o->kind == OP_CREATE)) continue;
    switch (o->kind) {
    case OP_INDEX:
    case OP_CREATE:
      if (!begin(B, i)) break;
      if (qi_bulk_put_if(B->b, o->id, o->src, o->src_len, &o->cond, &w, &err)) {
        item_fail_err(B, i, &err);
      } else {
        item_ok(B, i, &w, w.created ? "created" : "updated", w.created ? 201 : 200);
        B->pend[B->npend++] = i;
      }
      break;
    case OP_DELETE: {
      if (!begin(B, i)) break;
      qb_code rc = qi_bulk_delete_if(B->b, o->id, &o->cond, &w, &err);
      snprintf(w.id, sizeof w.id, "%s", o->id);
      if (rc == QB_NOTFOUND) {
        item_ok(B, i, &w, "not_found", 404);
      } else if (rc) {
        item_fail_err(B, i, &err);
      } else {
        item_ok(B, i, &w, "deleted", 200);
        B->pend[B->npend++] = i;
      }
      break;
    }
    case OP_UPDATE: {
      flush(B);
      json_error_t je;
      json_t *body = json_loadb(o->src, o->src_len, 0, &je);
      if (!json_is_object(body)) {
        item_error(B, i, 400, "x_content_parse_exception", body ? "update body must be an object"
                                                                : je.text);
      } else {
        const char *type = NULL;
        char reason[512];
        int status = qs__update_doc(B->ix, o->index, o->id, body, &w, &type, reason);
        if (status) item_error(B, i, status, type, reason);
        else item_ok(B, i, &w, w.created ? "created" : "updated", w.created ? 201 : 200);
      }
      json_decref(body);
      break;
    }
    }
  }
  close_index(B);
}

void qs__h_bulk(qs_req *r) {
  bulk B;
  memset(&B, 0, sizeof B);
  B.r = r;
  uint64_t t0 = qb_now_ns();
  if (!parse(&B, r->ncaps ? r->caps[0] : NULL)) goto out;
  B.items = json_array();
  B.touched = json_object();
  B.pend = qb_malloc(B.nops * sizeof *B.pend);
  if (!B.items || !B.touched || !B.pend) {
    qs__reply_code(r, QB_NOMEM, "out of memory running _bulk");
    goto out;
  }
  for (size_t i = 0; i < B.nops; i++) json_array_append_new(B.items, json_null());
  run(&B);
  const char *name;
  json_t *v;
  json_object_foreach(B.touched, name, v) {
    qi_index *ix;
    if (qi_catalog_get(qc_node_catalog(r->srv->node), name, &ix, NULL) == QB_OK) {
      qs__after_write(r, ix, name);
      qi_index_release(ix);
    }
  }
  __atomic_fetch_add(&r->srv->m.docs_indexed, B.nops, __ATOMIC_RELAXED);
  json_t *j = json_pack("{s:I, s:b, s:O}", "took",
                        (json_int_t)((qb_now_ns() - t0) / 1000000u), "errors", B.errors, "items",
                        B.items);
  qs__reply_json(r, 200, j);
out:
  for (size_t i = 0; i < B.nops; i++) json_decref(B.ops[i].meta);
  qb_free(B.ops, B.cap * sizeof *B.ops);
  qb_free(B.pend, B.nops * sizeof *B.pend);
  json_decref(B.items);
  json_decref(B.touched);
}
