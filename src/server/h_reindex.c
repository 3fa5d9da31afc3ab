/* h_reindex.c: the document rewrites that run a script (h_script.c) over stored documents:
** POST /{index}/_update/{id} with "script" (upsert, scripted_upsert), POST
** /{index}/_update_by_query and POST /_reindex (a local source index, query, max_docs,
** dest.op_type, conflicts). The documents are chosen first: every live document of the
** source's snapshot when there is no query, else the query's hits (at most 10,000, the search
** window: more is a 400 before anything changes). Then they are read from the store and
** written back in batches; optimistic concurrency (if_seq_no) turns a concurrent change into a
** version conflict, counted (conflicts=proceed) or stopping the run (abort, 409), as
** Elasticsearch reports them. One node's catalog: a cluster coordinator answers 400. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WINDOW 10000
#define PAGE 1000
#define BATCH 500

static json_t *write_json(const char *index, const char *id, const qi_write_result *w,
                          const char *result) {
  return json_pack("{s:s, s:s, s:I, s:s, s:{s:i, s:i, s:i}, s:I, s:i}", "_index", index, "_id", id,
                   "_version", (json_int_t)w->version, "result", result, "_shards", "total", 1,
                   "successful", 1, "failed", 0, "_seq_no", (json_int_t)w->seq_no,
                   "_primary_term", 1);
}

/* Put SOURCE under ID in IX with COND; 0, or the status with TYPE/REASON. */
static int put_json(qi_index *ix, const char *id, json_t *source, const qi_write_cond *cond,
                    qi_write_result *w, const char **type, char reason[512]) {
  qb_buf text;
  qb_buf_init(&text);
  qb_err err;
  qb_code rc = qs__json_write(source, 0, &text, &err);
  if (!rc) rc = qi_index_put_if(ix, id, text.data, text.len, cond, w, &err);
  qb_buf_fini(&text);
  if (!rc) return 0;
  qs_error e = qs__error_for(rc, -1);
  *type = rc == QB_INVAL ? "mapper_parsing_exception"
          : rc == QB_CONFLICT ? "version_conflict_engine_exception" : e.type;
  snprintf(reason, 512, "%s", err.msg);
  return rc == QB_CONFLICT ? 409 : e.status;
}

/* Run S on SOURCE of document ID of INDEX: *OP as qs__script_run. 0 or a status. */
static int run_one(qs_req *r, qi_index *ix, const qs__script *s, const char *index, const char *id,
                   json_t *source, int *op, char reason[512]) {
  *op = 0;
  if (!qs__script_is_udf(s)) return qs__script_run(s, source, op, reason);
  json_t *ids = json_pack("[s]", id), *res = NULL;
  int st = qs__script_udf(r, s, index, ids, &res, reason);
  if (!st && !json_object_get(res, id)) { /* written since the last refresh: refresh, again */
    qb_err err;
    json_decref(res);
    res = NULL;
    qs__refresh_now(r->srv, ix, index, &err);
    st = qs__script_udf(r, s, index, ids, &res, reason);
  }
  json_decref(ids);
  if (!st) {
    json_t *v = json_object_get(res, id);
    st = v ? qs__script_merge(source, v, id, reason)
           : (snprintf(reason, 512, "[%.200s]: the UDF saw no such document", id), 404);
  }
  json_decref(res);
  return st;
}

/* ---- _update with a script ---------------------------------------------------------------- */

void qs__update_scripted(qs_req *r, json_t *body) {
  const char *index = r->caps[0], *id = r->caps[1], *k;
  json_t *v;
  json_object_foreach(body, k, v) {
    if (strcmp(k, "script") && strcmp(k, "upsert") && strcmp(k, "scripted_upsert"))
      return qs__reply_error(r, 400, "x_content_parse_exception",
                             "[%.64s] is not served with a script (served: script, upsert, "
                             "scripted_upsert)", k);
  }
  json_t *upsert = json_object_get(body, "upsert");
  int scripted = json_is_true(json_object_get(body, "scripted_upsert"));
  if (upsert && !json_is_object(upsert))
    return qs__reply_error(r, 400, "x_content_parse_exception", "[upsert] must be an object");
  char reason[512];
  qs__script *s;
  int st = qs__script_new(json_object_get(body, "script"), &s, reason);
  if (st) return qs__reply_error(r, st, "illegal_argument_exception", "%s", reason);
  if (scripted && qs__script_is_udf(s)) {
    qs__script_free(s);
    return qs__reply_error(r, 400, "illegal_argument_exception",
                           "scripted_upsert runs expression scripts: a UDF rewrites stored "
                           "documents only");
  }
  qi_index *ix = qs__index_open(r, index, upsert != NULL);
  if (!ix) return qs__script_free(s);
  qb_buf src;
  qb_buf_init(&src);
  uint64_t version = 0, seq = 0;
  qb_err err;
  qb_code rc = qi_index_get(ix, id, &src, &version, &seq, &err);
  json_t *source = NULL;
  const char *type = "illegal_argument_exception";
  qi_write_cond cond = {0};
  qi_write_result w;
  memset(&w, 0, sizeof w);
  int op = 0;
  if (rc == QB_NOTFOUND && !upsert) {
    st = 404, type = "document_missing_exception";
    snprintf(reason, sizeof reason, "[%.256s]: document missing", id);
  } else if (rc == QB_NOTFOUND) {
    source = json_deep_copy(upsert);
    cond.create_only = 1;
    if (scripted) st = qs__script_run(s, source, &op, reason);
  } else if (rc) {
    qs_error e = qs__error_for(rc, -1);
    st = e.status, type = e.type;
    snprintf(reason, sizeof reason, "%s", err.msg);
  } else {
    source = json_loadb(src.data ? src.data : "{}", src.len, 0, NULL);
    if (!json_is_object(source)) {
      json_decref(source);
      source = json_object();
    }
    cond.has_if_seq_no = 1, cond.if_seq_no = seq;
    st = run_one(r, ix, s, index, id, source, &op, reason);
  }
  if (!st && op == 1) { /* noop: nothing is written */
    w.version = version, w.seq_no = seq;
    qs__reply_json(r, 200, write_json(index, id, &w, "noop"));
  } else if (!st && op == 2 && !cond.create_only) {
    if ((rc = qi_index_delete_if(ix, id, &cond, &w, &err))) {
      qs_error e = qs__error_for(rc, -1);
      qs__reply_error(r, rc == QB_CONFLICT ? 409 : e.status,
                      rc == QB_CONFLICT ? "version_conflict_engine_exception" : e.type, "%s", err.msg);
    } else {
      qs__after_write(r, ix, index);
      qs__reply_json(r, 200, write_json(index, id, &w, "deleted"));
    }
  } else if (!st && op == 2) {
    qs__reply_json(r, 200, write_json(index, id, &w, "noop"));
  } else if (!st && !(st = put_json(ix, id, source, &cond, &w, &type, reason))) {
    __atomic_fetch_add(&r->srv->m.docs_indexed, 1, __ATOMIC_RELAXED);
    int forced = qs__after_write(r, ix, index);
    json_t *j = write_json(index, id, &w, w.created ? "created" : "updated");
    if (forced) json_object_set_new(j, "forced_refresh", json_true());
    qs__reply_json(r, w.created ? 201 : 200, j);
  }
  if (st) qs__reply_error(r, st, type, "%s", reason);
  json_decref(source);
  qb_buf_fini(&src);
  qi_index_release(ix);
  qs__script_free(s);
}

/* ---- choosing the documents --------------------------------------------------------------- */

/* The documents EXPR (names, aliases, patterns) and QUERY (NULL: all) choose, at most MAX, as
** [[index, id], ...] in *OUT; 0 or an HTTP status with REASON (nothing changed). */
static int collect(qs_req *r, const char *expr, json_t *query, uint64_t max, json_t **out,
                   char reason[512]) {
  *out = NULL;
  char *names = NULL;
  json_t *filter = NULL;
  if (!qs__alias_expand(r, expr, &names, &filter)) return -1; /* replied */
  json_t *all = json_array();
  int st = 0;
  if (!query && !filter) { /* every live document of each index's snapshot: no window */
    qi_catalog *cat = qc_node_catalog(r->srv->node);
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", names ? names : expr);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t && !st; t = strtok_r(NULL, ",", &sv)) {
      qi_index *ix;
      qb_err err;
      if (qi_catalog_get(cat, t, &ix, &err)) {
        snprintf(reason, 512, "no such index [%.256s]", t);
        st = 404;
        break;
      }
      qs__refresh_now(r->srv, ix, t, &err);
      qi_snapshot *snap = qi_index_snapshot(ix);
      for (size_t g = 0; g < qi_snapshot_segment_count(snap); g++) {
        const qi_segment *seg = qi_snapshot_segment(snap, g);
        for (uint32_t d = 0; d < qi_segment_max_doc(seg) && json_array_size(all) < max; d++)
          if (qi_segment_is_live(seg, d))
            json_array_append_new(all, json_pack("[s,s]", t, qi_segment_doc_id(seg, d, NULL)));
      }
      qi_snapshot_release(snap);
      qi_index_release(ix);
    }
  } else { /* the query's hits, in index order, page by page */
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", names ? names : expr);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
      qi_index *ix;
      qb_err err;
      if (!qi_catalog_get(qc_node_catalog(r->srv->node), t, &ix, &err)) {
        qs__refresh_now(r->srv, ix, t, &err);
        qi_index_release(ix);
      }
    }
    const char *caps[1] = {expr};
    for (uint64_t from = 0; !st && json_array_size(all) < max; from += PAGE) {
      json_t *b = json_pack("{s:O, s:I, s:I, s:b, s:[s], s:b}", "query",
                            query ? query : json_pack("{s:{}}", "match_all"), "from",
                            (json_int_t)from, "size", (json_int_t)PAGE, "_source", 0, "sort",
                            "_doc", "track_total_hits", 1);
      if (!query) json_decref(json_object_get(b, "query")); /* the stand-in's own reference */
      char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
      json_decref(b);
      json_t *res = NULL;
      int s = text ? qs__subrequest(r, qs__h_search, caps, 1, text, strlen(text), &res) : 429;
      if (text) qs__json_free(text);
      if (s != 200) {
        const char *why = json_string_value(json_object_get(json_object_get(res, "error"), "reason"));
        snprintf(reason, 512, "%s", why ? why : "the search failed");
        st = s;
        json_decref(res);
        break;
      }
      json_t *hits = json_object_get(res, "hits");
      uint64_t total = (uint64_t)json_integer_value(json_object_get(json_object_get(hits, "total"), "value"));
      if (!from && total > WINDOW && max > WINDOW) {
        snprintf(reason, 512, "the query matches %llu documents, more than the %d this node "
                 "rewrites with a query in one request: give max_docs <= %d or split the query",
                 (unsigned long long)total, WINDOW, WINDOW);
        st = 400;
      }
      size_t i, n = json_array_size(json_object_get(hits, "hits"));
      json_t *h;
      json_array_foreach(json_object_get(hits, "hits"), i, h) {
        if (st || json_array_size(all) >= max) break;
        json_array_append_new(all, json_pack("[O,O]", json_object_get(h, "_index"),
                                             json_object_get(h, "_id")));
      }
      json_decref(res);
      if (n < PAGE) break;
    }
  }
  qs__alias_expand_free(names);
  json_decref(filter);
  if (st) {
    json_decref(all);
    return st;
  }
  *out = all;
  return 0;
}

/* ---- the run: read, script, write --------------------------------------------------------- */

typedef struct run {
  qs_req *r;
  const qs__script *script;
  int proceed;                 /* conflicts=proceed */
  uint64_t total, updated, created, deleted, noops, conflicts, batches;
  json_t *failures;
  int stop_status;             /* a failure that stops the run (409 on a conflict with abort) */
} run;

static void failure(run *R, const char *index, const char *id, int status, const char *type,
                    const char *reason) {
  json_array_append_new(R->failures, json_pack("{s:s, s:s, s:{s:s, s:s}, s:i}", "index", index,
                                               "id", id, "cause", "type", type, "reason", reason,
                                               "status", status));
}

/* The UDF's results for the documents of PAIRS[from..to) (all of one source index): {id: v}. */
static json_t *udf_batch(run *R, json_t *pairs, size_t from, size_t to, const char *index) {
  json_t *ids = json_array(), *res = NULL;
  for (size_t i = from; i < to; i++) json_array_append(ids, json_array_get(json_array_get(pairs, i), 1));
  char reason[512];
  int st = qs__script_udf(R->r, R->script, index, ids, &res, reason);
  json_decref(ids);
  if (st) {
    failure(R, index, "", st, "script_exception", reason);
    R->stop_status = st;
    return NULL;
  }
  return res;
}

/* Rewrite PAIRS (of source indexes) into DEST (NULL: each into its own index, as
** _update_by_query does) with OP_CREATE for dest.op_type=create. */
static void rewrite(run *R, json_t *pairs, const char *dest, int op_create) {
  qs_req *r = R->r;
  qi_catalog *cat = qc_node_catalog(r->srv->node);
  qi_index *dix = NULL;
  qb_err err;
  if (dest && (qs__index_create(r->srv, dest, NULL, 0, &dix, &err) == QB_CONFLICT))
    qi_catalog_get(cat, dest, &dix, &err);
  if (dest && !dix) {
    failure(R, dest, "", 500, qs__error_for(err.code, -1).type, err.msg);
    R->stop_status = qs__error_for(err.code, -1).status;
    return;
  }
  size_t n = json_array_size(pairs);
  for (size_t b0 = 0; b0 < n && !R->stop_status; b0 += BATCH) {
    size_t b1 = b0 + BATCH < n ? b0 + BATCH : n;
    R->batches++;
    json_t *udf = NULL;
    const char *udf_index = NULL;
    for (size_t i = b0; i < b1 && !R->stop_status; i++) {
      const char *sindex = json_string_value(json_array_get(json_array_get(pairs, i), 0));
      const char *id = json_string_value(json_array_get(json_array_get(pairs, i), 1));
      if (R->script && qs__script_is_udf(R->script) && (!udf_index || strcmp(udf_index, sindex))) {
        size_t j = i; /* this source index's run of documents in the batch */
        while (j < b1 && !strcmp(json_string_value(json_array_get(json_array_get(pairs, j), 0)), sindex)) j++;
        json_decref(udf);
        if (!(udf = udf_batch(R, pairs, i, j, sindex))) break;
        udf_index = sindex;
      }
      qi_index *six;
      if (qi_catalog_get(cat, sindex, &six, &err)) continue; /* deleted meanwhile */
      qb_buf src;
      qb_buf_init(&src);
      uint64_t seq = 0;
      qb_code rc = qi_index_get(six, id, &src, NULL, &seq, &err);
      R->total++;
      json_t *source = rc ? NULL : json_loadb(src.data ? src.data : "{}", src.len, 0, NULL);
      qb_buf_fini(&src);
      char reason[512];
      int op = 0, st = 0;
      const char *type = "script_exception";
      if (rc == QB_NOTFOUND) { /* deleted since it was chosen: a conflict, as Elasticsearch */
        R->conflicts++;
        if (!R->proceed) {
          failure(R, sindex, id, 409, "version_conflict_engine_exception", "document deleted meanwhile");
          R->stop_status = 409;
        }
      } else if (rc || !json_is_object(source)) {
        st = 500, type = "exception";
        snprintf(reason, sizeof reason, "%s", rc ? err.msg : "stored _source is not an object");
      } else if (R->script && qs__script_is_udf(R->script)) {
        json_t *v = json_object_get(udf, id);
        st = v ? qs__script_merge(source, v, id, reason) : 0;
        if (!v) op = 1; /* not refreshed into the UDF's view: left as it is */
      } else if (R->script) {
        st = qs__script_run(R->script, source, &op, reason);
      }
      if (!rc && !st && op == 1) R->noops++;
      if (!rc && !st && op != 1) {
        qi_index *tix = dest ? dix : six;
        const char *tname = dest ? dest : sindex;
        qi_write_cond cond = {0};
        if (dest) cond.create_only = (uint8_t)op_create;
        else cond.has_if_seq_no = 1, cond.if_seq_no = seq;
        qi_write_result w;
        memset(&w, 0, sizeof w);
        if (op == 2) {
          qb_code d = qi_index_delete_if(tix, id, dest ? NULL : &cond, &w, &err);
          if (!d) R->deleted++;
          else if (d == QB_CONFLICT) st = 409, type = "version_conflict_engine_exception",
                                     snprintf(reason, sizeof reason, "%s", err.msg);
          else if (d != QB_NOTFOUND) st = 500, type = "exception", snprintf(reason, sizeof reason, "%s", err.msg);
        } else {
          st = put_json(tix, id, source, &cond, &w, &type, reason);
          if (!st && w.created && dest) R->created++;
          else if (!st) R->updated++;
        }
        if (!st) {
          __atomic_fetch_add(&r->srv->m.docs_indexed, op != 2, __ATOMIC_RELAXED);
          qs__mark_dirty(r->srv, tname);
        }
        if (st == 409) {
          R->conflicts++;
          if (!R->proceed) {
            failure(R, tname, id, 409, type, reason);
            R->stop_status = 409;
          }
          st = 0;
        }
      }
      if (st) {
        failure(R, dest ? dest : sindex, id, st, type, reason);
        R->stop_status = st;
      }
      json_decref(source);
      qi_index_release(six);
    }
    json_decref(udf);
  }
  qi_index_release(dix);
}

static void reply_run(qs_req *r, run *R, uint64_t t0, int reindex) {
  json_t *j = json_pack("{s:I, s:b, s:I, s:I}", "took", (json_int_t)((qb_now_ns() - t0) / 1000000u),
                        "timed_out", 0, "total", (json_int_t)R->total, "updated",
                        (json_int_t)R->updated);
  if (reindex) json_object_set_new(j, "created", json_integer((json_int_t)R->created));
  json_t *rest = json_pack("{s:I, s:I, s:I, s:I, s:{s:i, s:i}, s:i, s:f, s:i, s:o}", "deleted",
                           (json_int_t)R->deleted, "batches", (json_int_t)R->batches,
                           "version_conflicts", (json_int_t)R->conflicts, "noops",
                           (json_int_t)R->noops, "retries", "bulk", 0, "search", 0,
                           "throttled_millis", 0, "requests_per_second", -1.0,
                           "throttled_until_millis", 0, "failures", R->failures);
  json_object_update(j, rest);
  json_decref(rest);
  R->failures = NULL;
  if (qs__arg_bool(r, "refresh")) {
    qb_err err;
    for (size_t i = 0, n = qi_catalog_count(qc_node_catalog(r->srv->node)); i < n; i++) {
      char name[256];
      qi_index *ix;
      if (qi_catalog_name(qc_node_catalog(r->srv->node), i, name, NULL) ||
          qi_catalog_get(qc_node_catalog(r->srv->node), name, &ix, NULL))
        continue;
      qs__refresh_now(r->srv, ix, name, &err); /* refresh clears the dirty mark */
      qi_index_release(ix);
    }
  }
  qs__reply_json(r, R->stop_status ? R->stop_status : 200, j);
}

/* conflicts: "abort" (default) or "proceed"; 0 after a 400. */
static int conflicts_of(qs_req *r, json_t *v, int *proceed) {
  const char *c = v ? json_string_value(v) : qs__arg(r, "conflicts");
  *proceed = c && !strcmp(c, "proceed");
  if (!c || *proceed || !strcmp(c, "abort")) return 1;
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "conflicts may only be \"proceed\" or \"abort\" but was [%.64s]", c);
  return 0;
}

/* max_docs (or its old name size) into *MAX; 0 after a 400. */
static int max_docs_of(qs_req *r, json_t *body, uint64_t *max) {
  json_t *m = json_object_get(body, "max_docs");
  if (!m) m = json_object_get(body, "size");
  *max = UINT64_MAX;
  if (!m) return 1;
  if (!json_is_integer(m) || json_integer_value(m) < 1) {
    qs__reply_error(r, 400, "action_request_validation_exception",
                    "Validation Failed: 1: maxDocs should be greater than 0;");
    return 0;
  }
  *max = (uint64_t)json_integer_value(m);
  return 1;
}

static int keys_ok(qs_req *r, json_t *obj, const char *what, const char *served) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    char pad[80];
    snprintf(pad, sizeof pad, " %s ", k);
    char list[300];
    snprintf(list, sizeof list, " %s ", served);
    if (!strstr(list, pad)) {
      qs__reply_error(r, 400, "parsing_exception", "[%s] unknown field [%.64s] (served: %s)", what,
                      k, served);
      return 0;
    }
  }
  return 1;
}

void qs__h_update_by_query(qs_req *r) {
  if (!qs__local_only(r)) return;
  uint64_t t0 = qb_now_ns();
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) body = json_object();
  run R = {.r = r, .failures = json_array()};
  qs__script *s = NULL;
  json_t *pairs = NULL;
  uint64_t max;
  char reason[512];
  if (!keys_ok(r, body, "_update_by_query", "query script max_docs conflicts") ||
      !conflicts_of(r, json_object_get(body, "conflicts"), &R.proceed) ||
      !max_docs_of(r, body, &max))
    goto out;
  int st = json_object_get(body, "script") ? qs__script_new(json_object_get(body, "script"), &s, reason) : 0;
  if (st) {
    qs__reply_error(r, st, "illegal_argument_exception", "%s", reason);
    goto out;
  }
  st = collect(r, r->caps[0], json_object_get(body, "query"), max, &pairs, reason);
  if (st < 0) goto out;
  if (st) {
    qs__reply_error(r, st, st == 404 ? "index_not_found_exception" : "illegal_argument_exception",
                    "%s", reason);
    goto out;
  }
  R.script = s;
  rewrite(&R, pairs, NULL, 0);
  qb_log(QB_INFO, "update_by_query on %s: %llu updated, %llu noops, %llu conflicts", r->caps[0],
         (unsigned long long)R.updated, (unsigned long long)R.noops, (unsigned long long)R.conflicts);
  reply_run(r, &R, t0, 0);
out:
  json_decref(R.failures);
  json_decref(pairs);
  json_decref(body);
  qs__script_free(s);
}

void qs__h_reindex(qs_req *r) {
  if (!qs__local_only(r)) return;
  uint64_t t0 = qb_now_ns();
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) body = json_object();
  run R = {.r = r, .failures = json_array()};
  qs__script *s = NULL;
  json_t *pairs = NULL;
  uint64_t max;
  char reason[512], expr[4096] = "";
  json_t *src = json_object_get(body, "source"), *dst = json_object_get(body, "dest");
  if (!keys_ok(r, body, "_reindex", "source dest script max_docs size conflicts") ||
      !conflicts_of(r, json_object_get(body, "conflicts"), &R.proceed) ||
      !max_docs_of(r, body, &max))
    goto out;
  if (!json_is_object(src) || !json_is_object(dst)) {
    qs__reply_error(r, 400, "action_request_validation_exception", "Validation Failed: 1: %s;",
                    !json_is_object(src) ? "use _reindex with a source" : "use _reindex with a destination");
    goto out;
  }
  /* source.remote (another cluster) is not served; size is the batch size: results are equal */
  if (!keys_ok(r, src, "source", "index query size") ||
      !keys_ok(r, dst, "dest", "index op_type"))
    goto out;
  json_t *si = json_object_get(src, "index");
  if (json_is_string(si)) snprintf(expr, sizeof expr, "%s", json_string_value(si));
  size_t i, used = 0;
  json_t *v;
  if (json_is_array(si)) json_array_foreach(si, i, v) if (json_is_string(v) && used < sizeof expr)
      used += (size_t)snprintf(expr + used, sizeof expr - used, "%s%s", i ? "," : "", json_string_value(v));
  const char *dest = json_string_value(json_object_get(dst, "index"));
  const char *opt = json_string_value(json_object_get(dst, "op_type"));
  if (!expr[0] || !dest) {
    qs__reply_error(r, 400, "action_request_validation_exception", "Validation Failed: 1: %s;",
                    !expr[0] ? "source.index is missing" : "index must be specified");
    goto out;
  }
  if (json_object_get(dst, "op_type") && (!opt || (strcmp(opt, "create") && strcmp(opt, "index")))) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "[dest.op_type] must be \"index\" or \"create\"");
    goto out;
  }
  char target[256], why[512], rsn[256];
  int al = qs__alias_resolve_one(r->srv, dest, 1, target, why, sizeof why);
  if (al < 0) {
    qs__reply_error(r, 400, "illegal_argument_exception", "%s", why);
    goto out;
  }
  if (al > 0) dest = target;
  if (!qs__index_name_ok(dest, rsn)) {
    qs__reply_error(r, 400, "invalid_index_name_exception", "%s", rsn);
    goto out;
  }
  if (qs__index_is_closed(r->srv, dest)) {
    qs__reply_closed(r, dest);
    goto out;
  }
  int st = json_object_get(body, "script") ? qs__script_new(json_object_get(body, "script"), &s, reason) : 0;
  if (st) {
    qs__reply_error(r, st, "illegal_argument_exception", "%s", reason);
    goto out;
  }
  st = collect(r, expr, json_object_get(src, "query"), max, &pairs, reason);
  if (st < 0) goto out;
  if (st) {
    qs__reply_error(r, st, st == 404 ? "index_not_found_exception" : "illegal_argument_exception",
                    "%s", reason);
    goto out;
  }
  json_array_foreach(pairs, i, v) {
    if (!strcmp(json_string_value(json_array_get(v, 0)), dest)) {
      qs__reply_error(r, 400, "action_request_validation_exception",
                      "Validation Failed: 1: reindex cannot write into an index its reading from "
                      "[%.200s];", dest);
      goto out;
    }
  }
  R.script = s;
  rewrite(&R, pairs, dest, opt && !strcmp(opt, "create"));
  qb_log(QB_INFO, "reindex %s -> %s: %llu created, %llu updated, %llu conflicts", expr, dest,
         (unsigned long long)R.created, (unsigned long long)R.updated,
         (unsigned long long)R.conflicts);
  reply_run(r, &R, t0, 1);
out:
  json_decref(R.failures);
  json_decref(pairs);
  json_decref(body);
  qs__script_free(s);
}
