/* h_doc.c: single-document routes: index (PUT/POST _doc, with or without id), _create, get,
** delete and _update (partial doc merge, doc_as_upsert). Responses follow Elasticsearch's
** shapes (_index, _id, _version, result, _shards, _seq_no, _primary_term). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static json_t *write_json(const char *index, const qi_write_result *w, const char *result,
                          int forced) {
  json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:{s:i, s:i, s:i}, s:I, s:i}", "_index", index,
                        "_id", w->id, "_version", (json_int_t)w->version, "result", result,
                        "_shards", "total", 1, "successful", 1, "failed", 0, "_seq_no",
                        (json_int_t)w->seq_no, "_primary_term", 1);
  if (j && forced) json_object_set_new(j, "forced_refresh", json_true());
  return j;
}

/* Reply to a failed write of a document. */
static void write_error(qs_req *r, const qb_err *err) {
  /* a document that does not fit its mapping: the write API's own, more precise type */
  if (err->code == QB_INVAL) qs__reply_error(r, 400, "mapper_parsing_exception", "%s", err->msg);
  else qs__reply_err(r, err);
}

/* ?if_seq_no=N (with ?if_primary_term, always 1 here) into COND; 0 after replying. */
static int seq_no_arg(qs_req *r, qi_write_cond *cond) {
  const char *v = qs__arg(r, "if_seq_no");
  if (!v) return 1;
  char *end;
  unsigned long long n = strtoull(v, &end, 10);
  if (!*v || *end || *v == '-') {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "Failed to parse long parameter [if_seq_no] with value [%.64s]", v);
    return 0;
  }
  cond->has_if_seq_no = 1;
  cond->if_seq_no = n;
  return 1;
}

/* Put BODY_TEXT under ID (NULL: generated) and reply. */
static void put_doc(qs_req *r, const char *index, const char *id, int create) {
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) return qs__reply_error(r, 400, "action_request_validation_exception",
                                    "Validation Failed: 1: source is missing;");
  json_decref(body);
  /* Check the id before an index may be auto-created: a bad request changes nothing. */
  if (id && (!*id || strlen(id) > QI_ID_MAX))
    return qs__reply_error(r, 400, "illegal_argument_exception",
                           "id [%.64s...] is too long, must be no longer than 512 bytes but was: "
                           "%zu", id, strlen(id));
  qi_write_cond cond = {0};
  cond.create_only = create ? 1 : 0;
  if (!seq_no_arg(r, &cond)) return;
  qi_index *ix = qs__index_open(r, index, 1);
  if (!ix) return;
  qb_err err;
  qi_write_result w;
  memset(&w, 0, sizeof w);
  if (qi_index_put_if(ix, id, r->body, r->body_len, &cond, &w, &err)) {
    write_error(r, &err);
  } else {
    __atomic_fetch_add(&r->srv->m.docs_indexed, 1, __ATOMIC_RELAXED);
    int forced = qs__after_write(r, ix, index);
    qs__reply_json(r, w.created ? 201 : 200,
                   write_json(index, &w, w.created ? "created" : "updated", forced));
  }
  qi_index_release(ix);
}

void qs__h_doc_put(qs_req *r) {
  const char *op = qs__arg(r, "op_type");
  put_doc(r, r->caps[0], r->ncaps > 1 ? r->caps[1] : NULL, op && !strcmp(op, "create"));
}

void qs__h_doc_create(qs_req *r) { put_doc(r, r->caps[0], r->caps[1], 1); }

void qs__h_doc_get(qs_req *r) {
  const char *index = r->caps[0], *id = r->caps[1];
  json_t *url_spec = r->src_spec ? NULL : qs__url_source(r);
  const json_t *spec = r->src_spec ? r->src_spec : url_spec;
  qi_index *ix = qs__index_open(r, index, 0);
  if (!ix) {
    json_decref(url_spec);
    return;
  }
  qb_buf src;
  qb_buf_init(&src);
  uint64_t version = 0, seq = 0;
  qb_err err;
  qb_code rc = qi_index_get(ix, id, &src, &version, &seq, &err);
  if (rc == QB_NOTFOUND) {
    qs__reply_json(r, 404, json_pack("{s:s, s:s, s:b}", "_index", index, "_id", id, "found", 0));
  } else if (rc) {
    qs__reply_err(r, &err);
  } else {
    json_t *source = json_loadb(src.data ? src.data : "{}", src.len, 0, NULL);
    if (!source) source = json_object();
    if (spec && qq_source_apply(spec, &source, &err)) {
      json_decref(source);
      qs__reply_err(r, &err);
    } else {
      json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:i, s:b}", "_index", index, "_id", id,
                            "_version", (json_int_t)version, "_seq_no", (json_int_t)seq,
                            "_primary_term", 1, "found", 1);
      if (j && source) json_object_set_new(j, "_source", source);
      else json_decref(source);
      qs__reply_json(r, 200, j);
    }
  }
  qb_buf_fini(&src);
  qi_index_release(ix);
  json_decref(url_spec);
}

void qs__h_doc_delete(qs_req *r) {
  const char *index = r->caps[0], *id = r->caps[1];
  qi_write_cond cond = {0};
  if (!seq_no_arg(r, &cond)) return;
  qi_index *ix = qs__index_open(r, index, 0);
  if (!ix) return;
  qi_write_result w;
  memset(&w, 0, sizeof w);
  qb_err err;
  qb_code rc = qi_index_delete_if(ix, id, &cond, &w, &err);
  if (rc == QB_NOTFOUND) {
    snprintf(w.id, sizeof w.id, "%s", id);
    qs__reply_json(r, 404, write_json(index, &w, "not_found", 0));
  } else if (rc) {
    write_error(r, &err);
  } else {
    snprintf(w.id, sizeof w.id, "%s", id);
    int forced = qs__after_write(r, ix, index);
    qs__reply_json(r, 200, write_json(index, &w, "deleted", forced));
  }
  qi_index_release(ix);
}

/* Merge PATCH into TARGET recursively (objects merge, everything else replaces), as
** Elasticsearch's partial update does. */
static void merge(json_t *target, json_t *patch) {
  const char *k;
  json_t *v;
  json_object_foreach(patch, k, v) {
    json_t *old = json_object_get(target, k);
    if (json_is_object(old) && json_is_object(v)) merge(old, v);
    else json_object_set(target, k, v);
  }
}

/* An update: DOC merged into the stored source of ID (or UPSERT / DOC when missing and
** allowed). Returns 0 and fills RES, or the HTTP status of the failure with TYPE/REASON.
** Shared with _bulk. */
int qs__update_doc(qi_index *ix, const char *index, const char *id, json_t *body,
                   qi_write_result *res, const char **type, char reason[512]) {
  json_t *doc = json_object_get(body, "doc");
  json_t *upsert = json_object_get(body, "upsert");
  int as_upsert = json_is_true(json_object_get(body, "doc_as_upsert"));
  if (json_object_get(body, "script")) {
    *type = "illegal_argument_exception";
    snprintf(reason, 512, "scripted updates are served by POST /{index}/_update/{id}, not in "
             "_bulk: use a partial doc here");
    return 400;
  }
  if (!json_is_object(doc)) {
    *type = "action_request_validation_exception";
    snprintf(reason, 512, "Validation Failed: 1: script or doc is missing;");
    return 400;
  }
  qb_buf src;
  qb_buf_init(&src);
  qb_err err;
  json_t *merged = NULL;
  int status = 0;
  qb_code rc = qi_index_get(ix, id, &src, NULL, NULL, &err);
  if (rc == QB_NOTFOUND) {
    if (as_upsert) merged = json_deep_copy(doc);
    else if (json_is_object(upsert)) merged = json_deep_copy(upsert);
    else {
      *type = "document_missing_exception";
      snprintf(reason, 512, "[%.256s]: document missing", id);
      status = 404;
      goto out;
    }
  } else if (rc) {
    qs_error e = qs__error_for(rc, -1);
    *type = e.type, status = e.status;
    snprintf(reason, 512, "%s", err.msg);
    goto out;
  } else {
    merged = json_loadb(src.data ? src.data : "{}", src.len, 0, NULL);
    if (!json_is_object(merged)) {
      json_decref(merged);
      merged = json_object();
    }
    merge(merged, doc);
  }
  /* the merged document is stored with its numbers as written (json_out.c), not widened to
  ** 17 digits */
  qb_buf text;
  qb_buf_init(&text);
  if (!merged || qs__json_write(merged, 0, &text, NULL)) {
    qb_buf_fini(&text);
    *type = "circuit_breaking_exception";
    snprintf(reason, 512, "out of memory");
    status = 429;
    goto out;
  }
  rc = qi_index_put(ix, id, text.data, text.len, res, &err);
  qb_buf_fini(&text);
  if (rc) {
    qs_error e = qs__error_for(rc, -1);
    *type = rc == QB_INVAL ? "mapper_parsing_exception" : e.type, status = e.status;
    snprintf(reason, 512, "%s", err.msg);
  }
out:
  (void)index;
  json_decref(merged);
  qb_buf_fini(&src);
  return status;
}

void qs__h_doc_update(qs_req *r) {
  const char *index = r->caps[0], *id = r->caps[1];
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) return qs__reply_error(r, 400, "action_request_validation_exception",
                                    "Validation Failed: 1: script or doc is missing;");
  if (json_object_get(body, "script")) { /* h_reindex.c */
    qs__update_scripted(r, body);
    json_decref(body);
    return;
  }
  /* Only an upsert may create the index: a missing document changes nothing. */
  int upsert = json_is_true(json_object_get(body, "doc_as_upsert")) ||
               json_is_object(json_object_get(body, "upsert"));
  qi_index *ix = qs__index_open(r, index, upsert);
  if (!ix) {
    json_decref(body);
    return;
  }
  qi_write_result w;
  memset(&w, 0, sizeof w);
  const char *type = NULL;
  char reason[512];
  int status = qs__update_doc(ix, index, id, body, &w, &type, reason);
  if (status) {
    qs__reply_error(r, status, type, "%s", reason);
  } else {
    int forced = qs__after_write(r, ix, index);
    qs__reply_json(r, w.created ? 201 : 200,
                   write_json(index, &w, w.created ? "created" : "updated", forced));
  }
  json_decref(body);
  qi_index_release(ix);
}

/* _mget: {"docs": [{"_index", "_id"}, ...]} or, with an index in the URL, {"ids": [...]}; each
** document is fetched as GET /{index}/_doc/{id} would. */
void qs__h_mget(qs_req *r) {
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_t *docs = json_object_get(body, "docs"), *ids = json_object_get(body, "ids");
  if (!json_is_array(docs) && !(json_is_array(ids) && r->ncaps)) {
    json_decref(body);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: no documents to get;");
  }
  /* every key is served or refused: an ignored one would answer another question */
  const char *k;
  json_t *v;
  json_object_foreach(body, k, v) {
    if (strcmp(k, "docs") && strcmp(k, "ids")) { /* K lives in BODY: reply, then free */
      qs__reply_error(r, 400, "parsing_exception", "Unknown key [%.64s] in the _mget body", k);
      json_decref(body);
      return;
    }
  }
  for (size_t i = 0; json_is_array(docs) && i < json_array_size(docs); i++) {
    json_object_foreach(json_array_get(docs, i), k, v) {
      if (strcmp(k, "_index") && strcmp(k, "_id") && strcmp(k, "_source") && strcmp(k, "routing")) {
        qs__reply_error(r, 400, "parsing_exception", "[docs] item %zu: unsupported field "
                        "[%.64s] (served: _index, _id, _source, routing)", i, k);
        json_decref(body);
        return;
      }
    }
  }
  json_t *out = json_array();
  size_t n = json_is_array(docs) ? json_array_size(docs) : json_array_size(ids);
  for (size_t i = 0; i < n; i++) {
    const char *index = r->ncaps ? r->caps[0] : NULL, *id = NULL;
    char idbuf[32];
    json_t *d = json_is_array(docs) ? json_array_get(docs, i) : NULL;
    json_t *jid = d ? json_object_get(d, "_id") : json_array_get(ids, i);
    if (d && json_is_string(json_object_get(d, "_index")))
      index = json_string_value(json_object_get(d, "_index"));
    if (json_is_string(jid)) id = json_string_value(jid);
    else if (json_is_integer(jid)) {
      snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(jid));
      id = idbuf;
    }
    if (!index || !id) {
      json_array_append_new(out, json_pack("{s:s?, s:s?, s:{s:s, s:s}}", "_index", index, "_id",
                                           id, "error", "type",
                                           "action_request_validation_exception", "reason",
                                           !index ? "index is missing" : "id is missing"));
      continue;
    }
    const char *caps[2] = {index, id};
    json_t *res = NULL;
    /* an item's own "_source" wins over the URL's */
    r->src_spec = d ? json_object_get(d, "_source") : NULL;
    int status = qs__subrequest(r, qs__h_doc_get, caps, 2, NULL, 0, &res);
    r->src_spec = NULL;
    if (res && status >= 400 && json_object_get(res, "error")) {
      /* an item error carries the cause, not the HTTP envelope */
      json_t *item = json_pack("{s:s, s:s, s:O}", "_index", index, "_id", id, "error",
                               json_object_get(res, "error"));
      json_decref(res);
      res = item;
    }
    json_array_append_new(out, res ? res : json_pack("{s:s, s:s, s:b}", "_index", index, "_id",
                                                     id, "found", 0));
  }
  json_decref(body);
  qs__reply_json(r, 200, json_pack("{s:o}", "docs", out));
}
