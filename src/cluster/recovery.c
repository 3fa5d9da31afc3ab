/* recovery.c: a primary brings another copy of its shard to its own history (docs/cluster.md,
** "Failover and recovery"), holding the shard's writes meanwhile:
**  - recovery of a copy that is not in sync (returning, new, re-allocated): from the operations
**    above the point both agree on when both op logs cover it, else a full copy of every
**    document (the copy re-creates its shard first); then the copy joins the in-sync set;
**  - resync after a promotion (or a restart of the primary), as Elasticsearch's primary-replica
**    resync: every other in-sync copy gets the primary's state of each document either side
**    touched above that point, so a deposed primary's unacknowledged write that reached some
**    copies but not the new primary is overwritten (or deleted) there; a copy that cannot be
**    resynced leaves the in-sync set and recovers.
** The point both agree on is the lower of the two global checkpoints: every operation up to a
** global checkpoint was acknowledged, so every in-sync copy had it, in the same order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

#define RECOVERY_CHUNK 500

typedef struct peer {
  char url[400];
  int answered, has_shard;
  int64_t ckpt, from;
  json_t *ids; /* the copy's _ids above FROM; NULL when its log does not cover them */
  int status;
  char why[300];
} peer;

static qb_code send_chunk(const char *url, json_t *req, qb_err *err) {
  char *text = json_dumps(req, JSON_COMPACT);
  if (!text) return qb_fail(err, QB_NOMEM, "out of memory");
  qc_call c = {.method = "POST", .body = text, .len = strlen(text)};
  snprintf(c.url, sizeof c.url, "%s", url);
  qb_code rc = qc_fanout(&c, 1, 60000, err);
  if (!rc && c.status != 200)
    rc = qb_fail(err, c.status == 409 ? QB_CONFLICT : QB_UNAVAILABLE, "copy at %s answered %d: "
                 "%.*s", url, c.status, (int)(c.resp.len < 200 ? c.resp.len : 200),
                 c.resp.data ? c.resp.data : "");
  qc_call_fini(&c);
  qc__json_free(text);
  return rc;
}

/* Ask the copy at P->url where it stands. */
static void probe(qc_node *n, qc__rshard *rs, uint64_t term, peer *p) {
  char body[400];
  snprintf(body, sizeof body, "{\"term\":%llu,\"primary\":\"%s\",\"probe\":true,\"above\":%lld}",
           (unsigned long long)term, n->name, (long long)rs->global_ckpt);
  qc_call c = {.method = "POST", .body = body, .len = strlen(body)};
  snprintf(c.url, sizeof c.url, "%s", p->url);
  qb_err e;
  qb_err_clear(&e);
  p->answered = !qc_fanout(&c, 1, 5000, &e) && c.status == 200;
  p->status = c.status;
  if (p->answered) {
    json_t *j = json_loadb(c.resp.data, c.resp.len, 0, NULL);
    p->ckpt = json_integer_value(json_object_get(j, "local_checkpoint"));
    p->from = json_integer_value(json_object_get(j, "from"));
    p->has_shard = json_is_true(json_object_get(j, "has_shard"));
    json_t *ids = json_object_get(j, "ids");
    p->ids = json_is_array(ids) && json_is_integer(json_object_get(j, "from")) ? json_incref(ids)
                                                                              : NULL;
    json_decref(j);
  } else {
    snprintf(p->why, sizeof p->why, "%.*s", (int)(c.resp.len < 200 ? c.resp.len : 200),
             c.resp.data ? c.resp.data : c.error);
  }
  qc_call_fini(&c);
}

/* 1 when the copy of P can be brought to this primary's history by operations (a returning
** copy with no checkpoint, e.g. its file lost, may hold anything: it gets a full copy; an
** in-sync one, IN_SYNC, had every write). */
static int by_operations(const qc__rshard *rs, const peer *p, int in_sync) {
  return p->answered && p->has_shard && p->ids && (in_sync || p->ckpt >= 0) && p->from >= -1 &&
         qc__oplog_covers(rs, p->from);
}

/* The log entries of this primary above FROM (one _id per sequence number) and the end of a
** recovery or resync: REQ gets "ckpt", "gckpt", "log" and "refresh". */
static void finish_req(qc__rshard *rs, int64_t from, json_t *req) {
  json_t *ids = json_array();
  if (!qc__oplog_covers(rs, from)) from = rs->local_ckpt; /* the copy's log starts after it */
  for (int64_t s = from + 1; ids && s <= rs->local_ckpt; s++)
    json_array_append(ids, json_array_get(rs->log, (size_t)(s - rs->log_first)));
  json_object_set_new(req, "ckpt", json_integer((json_int_t)rs->local_ckpt));
  json_object_set_new(req, "gckpt", json_integer((json_int_t)rs->global_ckpt));
  json_object_set_new(req, "log", json_pack("{s:I, s:o}", "from", (json_int_t)from, "ids",
                                            ids ? ids : json_array()));
  json_object_set_new(req, "refresh", json_true());
}

/* Send the copy of P this primary's state of every document either side touched above
** P->from, then its checkpoint and log. */
static qb_code send_ops(qc_node *n, qc__rshard *rs, uint64_t term, qi_index *ix, const peer *p,
                        size_t *sent, qb_err *err) {
  json_t *mine = qc__oplog_ids_above(rs, p->from), *ops = json_array(), *seen = json_object();
  qb_code rc = mine && ops && seen ? QB_OK : qb_fail(err, QB_NOMEM, "out of memory");
  json_t *lists[2] = {mine, p->ids};
  size_t total = json_array_size(mine) + json_array_size(p->ids), k = 0;
  for (int l = 0; !rc && l < 2; l++) {
    size_t i;
    json_t *v;
    json_array_foreach(lists[l], i, v) {
      k++;
      const char *id = json_string_value(v);
      if (!id || json_object_get(seen, id)) {
        if (k < total) continue;
      } else {
        json_object_set_new(seen, id, json_true());
        json_t *op;
        if ((rc = qc__doc_op(ix, id, -1, &op, err))) break;
        json_array_append_new(ops, op);
        if (json_array_size(ops) < RECOVERY_CHUNK && k < total) continue;
      }
      json_t *req = json_pack("{s:I, s:s, s:O}", "term", (json_int_t)term, "primary", n->name,
                              "ops", ops);
      if (k == total) finish_req(rs, p->from, req);
      rc = send_chunk(p->url, req, err);
      json_decref(req);
      *sent += json_array_size(ops);
      json_array_clear(ops);
      if (rc) break;
    }
  }
  if (!rc && !total) { /* nothing touched: only the checkpoint and the log */
    json_t *req = json_pack("{s:I, s:s, s:[]}", "term", (json_int_t)term, "primary", n->name,
                            "ops");
    finish_req(rs, p->from, req);
    rc = send_chunk(p->url, req, err);
    json_decref(req);
  }
  json_decref(mine);
  json_decref(ops);
  json_decref(seen);
  return rc;
}

/* Send the copy at URL every live document (it re-creates its shard first). */
static qb_code full_copy(qc_node *n, qc__rshard *rs, uint64_t term, qi_index *ix,
                         const char *url, size_t *sent, qb_err *err) {
  qi_snapshot *snap = NULL;
  json_t *ops = NULL, *reset = NULL;
  qb_buf mj, sj, src;
  qb_buf_init(&mj);
  qb_buf_init(&sj);
  qb_buf_init(&src);
  qb_code rc;
  if ((rc = qi_index_refresh(ix, err)) || (rc = qi_index_mapping_json(ix, &mj, err)) ||
      (rc = qi_index_settings_json(ix, &sj, err)))
    goto out;
  json_t *mappings = json_loadb(mj.data ? mj.data : "{}", mj.len, 0, NULL);
  json_t *settings = json_loadb(sj.data ? sj.data : "{}", sj.len, 0, NULL);
  reset = json_pack("{s:o?, s:o?}", "settings", settings, "mappings", mappings);
  snap = qi_index_snapshot(ix);
  ops = json_array();
  int first = 1;
  for (size_t s = 0; !rc && s < qi_snapshot_segment_count(snap); s++) {
    const qi_segment *seg = qi_snapshot_segment(snap, s);
    for (uint32_t d = 0; !rc && d < qi_segment_max_doc(seg); d++) {
      if (!qi_segment_is_live(seg, d)) continue;
      size_t idlen;
      const char *id = qi_segment_doc_id(seg, d, &idlen);
      src.len = 0;
      if ((rc = qi_snapshot_source(snap, seg, d, &src, err))) break;
      json_array_append_new(ops, json_pack("{s:s%, s:I, s:s%}", "id", id, idlen, "v",
                                           (json_int_t)qi_segment_doc_version(seg, d), "src",
                                           src.data ? src.data : "{}", src.len));
      if (json_array_size(ops) < RECOVERY_CHUNK) continue;
      json_t *req = json_pack("{s:I, s:s, s:O}", "term", (json_int_t)term, "primary", n->name,
                              "ops", ops);
      if (first) json_object_set(req, "reset", reset);
      first = 0;
      rc = send_chunk(url, req, err);
      json_decref(req);
      *sent += json_array_size(ops);
      json_array_clear(ops);
    }
  }
  if (!rc) {
    json_t *req = json_pack("{s:I, s:s, s:O}", "term", (json_int_t)term, "primary", n->name,
                            "ops", ops);
    if (first) json_object_set(req, "reset", reset);
    finish_req(rs, rs->global_ckpt, req);
    rc = send_chunk(url, req, err);
    json_decref(req);
    *sent += json_array_size(ops);
  }
out:
  json_decref(ops);
  json_decref(reset);
  qi_snapshot_release(snap);
  qb_buf_fini(&mj);
  qb_buf_fini(&sj);
  qb_buf_fini(&src);
  return rc;
}

qb_code qc__resync(qc_node *n, qc__rshard *rs, const char *index, uint32_t shard, uint64_t term,
                   qb_err *err) {
  json_t *meta = qc_node_index_meta(n, index);
  json_t *sh = meta ? qc__sm_shard(meta, shard) : NULL;
  const char *drop[16];
  char dropped[16][64];
  size_t nd = 0, i, total = 0, copies = 0;
  json_t *c;
  qb_code rc = QB_OK;
  qi_index *ix = NULL;
  uint64_t t0 = qb_now_ns();
  json_array_foreach(json_object_get(sh, "copies"), i, c) {
    const char *nn = json_string_value(json_object_get(c, "node"));
    if (!nn || !*nn || !strcmp(nn, n->name) || !qc__copy_in_sync(rs, sh, nn, term)) continue;
    if (nd == 16) break;
    peer p = {0};
    char turl[128];
    qb_err e;
    qb_err_clear(&e);
    qb_code prc = QB_UNAVAILABLE;
    if (qc__member_url(n, nn, turl)) {
      snprintf(p.url, sizeof p.url, "%s/_internal/replica/%s/%u", turl, index, shard);
      probe(n, rs, term, &p);
      if (p.status == 409) {
        rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: the copy on [%s] refused primary term %llu "
                     "in the resync (a newer primary exists): %s", index, shard, nn,
                     (unsigned long long)term, p.why);
        json_decref(p.ids);
        break;
      }
      if (!ix && (rc = qi_catalog_get(n->cat, rs->local, &ix, err))) {
        json_decref(p.ids);
        break;
      }
      size_t sent = 0;
      if (by_operations(rs, &p, 1)) prc = send_ops(n, rs, term, ix, &p, &sent, &e);
      else qb_fail(&e, QB_UNAVAILABLE, "%s", p.answered ? "its op log does not reach the last "
                   "operation both agree on" : p.why);
      if (prc == QB_CONFLICT) {
        rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: resync refused: %s", index, shard, e.msg);
        json_decref(p.ids);
        break;
      }
      total += sent;
      copies += !prc;
    } else {
      qb_fail(&e, QB_UNAVAILABLE, "its node is not live");
    }
    json_decref(p.ids);
    if (prc) {
      qb_log(QB_WARN, "[%s][%u]: the copy on [%s] cannot be resynced to term %llu (%s); dropping "
             "it from the in-sync set", index, shard, nn, (unsigned long long)term, e.msg);
      snprintf(dropped[nd], 64, "%s", nn);
      drop[nd] = dropped[nd];
      nd++;
    }
  }
  qi_index_release(ix);
  json_decref(meta);
  if (!rc && nd && (rc = qc__in_sync_change(n, rs, index, shard, term, drop, nd, 0, err)))
    qb_wrap(err, "[%s][%u]: resync: ", index, shard);
  if (!rc && (copies || nd))
    qb_log(QB_INFO, "[%s][%u]: resynced %zu in-sync copies to primary term %llu (%zu documents, "
           "%.1f ms)", index, shard, copies, (unsigned long long)term, total,
           (double)(qb_now_ns() - t0) / 1e6);
  return rc;
}

qb_code qc_recover_copy(qc_node *n, const char *index, uint32_t shard, const char *target,
                        json_t **out, qb_err *err) {
  *out = NULL;
  char local[256], turl[128];
  qc_shard_local_name(index, shard, local);
  peer p = {0};
  if (target) {
    if (!qc__member_url(n, target, turl))
      return qb_fail(err, QB_UNAVAILABLE, "recovery target [%s] is not in the cluster", target);
    snprintf(p.url, sizeof p.url, "%s/_internal/replica/%s/%u", turl, index, shard);
  }
  qc_write *w;
  qb_code rc = qc_write_begin(n, local, &w, err); /* resyncs the in-sync copies first */
  if (rc) return rc;
  if (!w) return qb_fail(err, QB_INVAL, "[%s] is not a replicated shard", local);
  qc__rshard *rs = qc__write_rs(w);
  uint64_t term = qc__write_term(w);
  if (!target) {
    qc_write_end(w);
    *out = json_pack("{s:s, s:I, s:s, s:I}", "index", index, "shard", (json_int_t)shard,
                     "resynced", "done", "primary_term", (json_int_t)term);
    return *out ? QB_OK : qb_fail(err, QB_NOMEM, "out of memory");
  }
  uint64_t t0 = qb_now_ns();
  qi_index *ix = NULL;
  size_t sent = 0;
  probe(n, rs, term, &p);
  int ops = by_operations(rs, &p, 0);
  if (!(rc = qi_catalog_get(n->cat, local, &ix, err)))
    rc = ops ? send_ops(n, rs, term, ix, &p, &sent, err)
             : full_copy(n, rs, term, ix, p.url, &sent, err);
  qi_index_release(ix);
  json_decref(p.ids);
  if (!rc) {
    const char *nodes[1] = {target};
    rc = qc__in_sync_change(n, rs, index, shard, term, nodes, 1, 1, err);
  }
  if (!rc) {
    double ms = (double)(qb_now_ns() - t0) / 1e6;
    qb_log(QB_INFO, "[%s][%u]: recovered the copy on [%s] (%s: %zu documents, %.1f ms); it is "
           "in sync", index, shard, target, ops ? "operations above its checkpoint" :
           "full copy", sent, ms);
    *out = json_pack("{s:s, s:I, s:s, s:s, s:I, s:f}", "index", index, "shard",
                     (json_int_t)shard, "target", target, "kind", ops ? "operations" : "full",
                     "documents", (json_int_t)sent, "took_ms", ms);
  }
  qc_write_end(w);
  return rc;
}
