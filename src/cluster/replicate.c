/* replicate.c: primary-backup replication of a shard's writes, as Elasticsearch does it
** (docs/cluster.md, "Replication"). Each local shard ("index~N") has a replication state
** (oplog.c): a mutex that serializes the shard's writes on its primary (so every copy applies
** them in one order) and its applies on a copy, the highest primary term seen, the local and
** global checkpoints, and the op log. The primary gives each touched document the next
** sequence number and sends its resulting state (source + version, or deleted), not the
** request, with its global checkpoint: a copy ends up with the primary's versions whatever
** the operation was. A primary whose own store fails a write steps down (leaves the in-sync
** set) so that the leader promotes a copy; a new primary resyncs its copies first (recovery.c).
** Invariant: a write is acknowledged only after every copy in the in-sync set has it durably,
** or has been removed from the set in etcd; a copy refuses a request of an older term than
** the newest it knows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

#define REPL_TIMEOUT_MS 5000
/* The test-only hook (an explicit environment flag, never set outside tests): a primary
** applies a write of an _id starting with "qd-partial-" locally, forwards it to every in-sync
** copy but the first replica, and fails it (not acknowledged), as a primary that died
** mid-replication would leave it; test_replicas uses it to check the resync after a promotion. */
#define TEST_PARTIAL_ENV "QD_TEST_PARTIAL_REPLICATION"
#define TEST_PARTIAL_ID "qd-partial-"

typedef qc__rshard rshard;

/* "index~N" into INDEX and *SHARD; 0 when LOCAL is not a shard's local name. */
int qc__split_local(const char *local, char index[256], uint32_t *shard) {
  const char *t = strrchr(local, '~');
  if (!t || t == local || (size_t)(t - local) > 240) return 0;
  char *end;
  unsigned long v = strtoul(t + 1, &end, 10);
  if (!t[1] || *end || v > 1023) return 0;
  snprintf(index, 256, "%.*s", (int)(t - local), local);
  *shard = (uint32_t)v;
  return 1;
}

/* ---- the primary ------------------------------------------------------------------------- */

struct qc_write {
  qc_node *n;
  rshard *rs;
  char index[256], local[256];
  uint32_t shard;
  uint64_t term;
  json_t *ids; /* array of the touched _ids, in order */
  int refresh;  /* the copies refresh after applying (the request asked for a refresh) */
  char failed[300]; /* a local write failed (disk): the reason; this primary steps down */
};

qc__rshard *qc__write_rs(qc_write *w) { return w->rs; }
uint64_t qc__write_term(qc_write *w) { return w->term; }

void qc_write_local_failed(qc_write *w, const char *reason) {
  if (w && !w->failed[0]) snprintf(w->failed, sizeof w->failed, "%s", reason ? reason : "?");
}

void qc_write_refresh(qc_write *w) {
  if (w) w->refresh = 1;
}

qb_code qc_write_begin(qc_node *n, const char *local, qc_write **out, qb_err *err) {
  *out = NULL;
  char index[256];
  uint32_t shard;
  if (!n->etcd || !(n->role & QC_DATA) || !qc__split_local(local, index, &shard)) return QB_OK;
  json_t *meta = qc_node_index_meta(n, index);
  json_t *sh = meta ? qc__sm_shard(meta, shard) : NULL;
  if (!sh) {
    json_decref(meta);
    return qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: the cluster has no such shard", index, shard);
  }
  const char *pri = qc__sm_primary(sh);
  uint64_t term = qc__sm_term(sh);
  if (!pri || strcmp(pri, n->name)) {
    qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: node [%s] is not the primary (the primary of term "
            "%llu is [%s])", index, shard, n->name, (unsigned long long)term, pri ? pri : "");
    json_decref(meta);
    return QB_UNAVAILABLE;
  }
  if (!qc__sm_in_sync(sh, n->name)) {
    json_decref(meta);
    return qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: node [%s] stepped down as the primary of term "
                   "%llu (a local write failed); an in-sync copy is being promoted", index,
                   shard, n->name, (unsigned long long)term);
  }
  json_decref(meta);
  if (!n->lease || !qc_lease_fresh(n->lease))
    return qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: node [%s] lost its lease in etcd and may no "
                   "longer be the primary", index, shard, n->name);
  rshard *rs = qc__rstate(n, local);
  qc_write *w = qb_calloc(1, sizeof *w);
  json_t *ids = json_array();
  if (!rs || !w || !ids) {
    qb_free(w, sizeof *w);
    json_decref(ids);
    return qb_fail(err, QB_NOMEM, "out of memory");
  }
  pthread_mutex_lock(&rs->mu);
  if (term < rs->max_term) {
    pthread_mutex_unlock(&rs->mu);
    qb_free(w, sizeof *w);
    json_decref(ids);
    return qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: primary term %llu is stale (term %llu exists)",
                   index, shard, (unsigned long long)term, (unsigned long long)rs->max_term);
  }
  if (term > rs->max_term) {
    rs->max_term = term;
    qc__ckpt_save(n, rs);
  }
  if (rs->synced_term != term) { /* a new primary (or this one restarted): resync first */
    qb_code rc = qc__resync(n, rs, index, shard, term, err);
    if (rc) {
      pthread_mutex_unlock(&rs->mu);
      qb_free(w, sizeof *w);
      json_decref(ids);
      return rc;
    }
    rs->synced_term = term;
  }
  w->n = n;
  w->rs = rs;
  w->term = term;
  w->shard = shard;
  w->ids = ids;
  snprintf(w->index, sizeof w->index, "%s", index);
  snprintf(w->local, sizeof w->local, "%s", local);
  *out = w;
  return QB_OK;
}

qb_code qc_write_note(qc_write *w, const char *id, qb_err *err) {
  if (!w) return QB_OK;
  if (json_array_append_new(w->ids, json_string(id)))
    return qb_fail(err, QB_NOMEM, "out of memory");
  return QB_OK;
}

void qc_write_end(qc_write *w) {
  if (!w) return;
  pthread_mutex_unlock(&w->rs->mu);
  json_decref(w->ids);
  qb_free(w, sizeof *w);
}

typedef struct drop_ctx {
  uint32_t shard;
  uint64_t term;
  const char *primary;
  const char **nodes;
  size_t n;
  int add; /* 1: add NODES to in_sync instead */
} drop_ctx;

/* Remove (or add) copies in the in-sync set, only while the primary and term are ours. */
static int change_in_sync(json_t *meta, void *ud, qb_err *err) {
  drop_ctx *c = ud;
  json_t *sh = qc__sm_shard(meta, c->shard);
  const char *pri = sh ? qc__sm_primary(sh) : NULL;
  if (!pri || strcmp(pri, c->primary) || qc__sm_term(sh) != c->term) {
    qb_fail(err, QB_UNAVAILABLE, "shard %u: [%s] is no longer the primary of term %llu", c->shard,
            c->primary, (unsigned long long)c->term);
    return -1;
  }
  int ch = 0;
  for (size_t i = 0; i < c->n; i++)
    ch |= c->add ? qc__sm_in_sync_add(sh, c->nodes[i]) : qc__sm_in_sync_del(sh, c->nodes[i]);
  qc__sm_normalize(sh);
  return ch;
}

static int was_added(rshard *rs, const char *node, uint64_t term) {
  if (rs->added_term != term) return 0;
  for (int i = 0; i < rs->nadded; i++)
    if (!strcmp(rs->added[i], node)) return 1;
  return 0;
}

static void set_added(rshard *rs, const char *node, uint64_t term, int on) {
  if (rs->added_term != term) rs->nadded = 0, rs->added_term = term;
  for (int i = 0; i < rs->nadded; i++)
    if (!strcmp(rs->added[i], node)) {
      if (!on) memmove(rs->added[i], rs->added[i + 1], (size_t)(--rs->nadded - i) * 64);
      return;
    }
  if (on && rs->nadded < 8) snprintf(rs->added[rs->nadded++], 64, "%s", node);
}

int qc__copy_in_sync(rshard *rs, json_t *sh, const char *node, uint64_t term) {
  return qc__sm_in_sync(sh, node) || was_added(rs, node, term);
}

qb_code qc__in_sync_change(qc_node *n, rshard *rs, const char *index, uint32_t shard,
                           uint64_t term, const char **nodes, size_t nn, int add, qb_err *err) {
  drop_ctx dc = {shard, term, n->name, nodes, nn, add};
  qb_code rc = qc__sm_update(n, index, change_in_sync, &dc, err);
  for (size_t i = 0; !rc && i < nn; i++) set_added(rs, nodes[i], term, add);
  return rc;
}

/* The primary leaves the in-sync set of its shard (qc_sm_fn) when another copy is in it, so
** that the leader promotes one; 0 (nothing changed) when it is the only one. */
static int step_down(json_t *meta, void *ud, qb_err *err) {
  drop_ctx *c = ud;
  json_t *sh = qc__sm_shard(meta, c->shard);
  const char *pri = sh ? qc__sm_primary(sh) : NULL;
  if (!pri || strcmp(pri, c->primary) || qc__sm_term(sh) != c->term) {
    qb_fail(err, QB_UNAVAILABLE, "shard %u: [%s] is no longer the primary of term %llu", c->shard,
            c->primary, (unsigned long long)c->term);
    return -1;
  }
  size_t i, others = 0;
  json_t *cp;
  json_array_foreach(json_object_get(sh, "copies"), i, cp) {
    const char *nn = json_string_value(json_object_get(cp, "node"));
    others += i && nn && *nn && qc__sm_in_sync(sh, nn);
  }
  if (!others) return 0;
  int ch = qc__sm_in_sync_del(sh, c->primary);
  qc__sm_normalize(sh);
  return ch;
}

static int test_partial(qc_write *w) {
  const char *e = getenv(TEST_PARTIAL_ENV);
  if (!e || strcmp(e, "1")) return 0;
  size_t i;
  json_t *v;
  json_array_foreach(w->ids, i, v)
    if (!strncmp(json_string_value(v), TEST_PARTIAL_ID, strlen(TEST_PARTIAL_ID))) return 1;
  return 0;
}

/* Send BODY to every in-sync copy of W's shard but this one; TOTAL and OK as qc_write_finish.
** A copy that fails is dropped from the in-sync set; a copy that refuses the term fails it. */
static qb_code send_to_copies(qc_write *w, const char *body, uint32_t *total, uint32_t *ok,
                              qb_err *err) {
  qc_node *n = w->n;
  json_t *meta = qc_node_index_meta(n, w->index);
  json_t *sh = meta ? qc__sm_shard(meta, w->shard) : NULL;
  if (!sh) {
    json_decref(meta);
    return qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: the shard is gone", w->index, w->shard);
  }
  qc_call calls[16];
  const char *cnode[16], *failed[16];
  size_t nc = 0, nf = 0, i;
  json_t *c;
  int partial = test_partial(w);
  *total = 1;
  *ok = 1;
  memset(calls, 0, sizeof calls);
  json_array_foreach(json_object_get(sh, "copies"), i, c) {
    const char *nn = json_string_value(json_object_get(c, "node"));
    if (!nn || !*nn || !strcmp(nn, n->name)) continue;
    (*total)++;
    if (nc == 16) continue;
    /* in sync: in this node's view of the set, or added by this primary a moment ago (its
    ** view may not show it yet); a copy out of the set gets nothing, so its checkpoint stays
    ** exact and it can recover from the operations above it */
    if (!qc__copy_in_sync(w->rs, sh, nn, w->term)) continue;
    if (partial && i == 1) continue; /* the test hook: the first replica misses it */
    char url[128];
    if (!qc__member_url(n, nn, url)) {
      failed[nf++] = nn;
      continue;
    }
    cnode[nc] = nn;
    calls[nc].method = "POST";
    snprintf(calls[nc].url, sizeof calls[nc].url, "%s/_internal/replica/%s/%u", url, w->index,
             w->shard);
    calls[nc].body = body;
    calls[nc].len = strlen(body);
    nc++;
  }
  qb_code rc = qc_fanout(calls, nc, REPL_TIMEOUT_MS, err);
  int stale = 0;
  char why[300] = "";
  for (i = 0; !rc && i < nc; i++) {
    if (calls[i].status == 200) {
      (*ok)++;
      continue;
    }
    if (calls[i].status == 409) {
      stale = 1;
      snprintf(why, sizeof why, "%.*s", (int)(calls[i].resp.len < 200 ? calls[i].resp.len : 200),
               calls[i].resp.data ? calls[i].resp.data : "");
    }
    if (calls[i].status)
      qb_log(QB_WARN, "[%s][%u]: copy on [%s] failed a write (HTTP %d); dropping it from the "
             "in-sync set", w->index, w->shard, cnode[i], calls[i].status);
    else
      qb_log(QB_WARN, "[%s][%u]: copy on [%s] did not answer (%s); dropping it from the in-sync "
             "set", w->index, w->shard, cnode[i], calls[i].error);
    failed[nf++] = cnode[i];
  }
  if (!rc && stale) {
    rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: a copy refused primary term %llu (a newer "
                 "primary exists): %s", w->index, w->shard, (unsigned long long)w->term, why);
  } else if (!rc && nf) {
    qb_err e;
    qb_err_clear(&e);
    if (qc__in_sync_change(n, w->rs, w->index, w->shard, w->term, failed, nf, 0, &e))
      rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: %zu copies failed the write and could not be "
                   "removed from the in-sync set: %s", w->index, w->shard, nf, e.msg);
  }
  if (!rc && partial)
    rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: not acknowledged (test hook %s: the first "
                 "replica was skipped)", w->index, w->shard, TEST_PARTIAL_ENV);
  for (i = 0; i < nc; i++) qc_call_fini(&calls[i]);
  json_decref(meta);
  return rc;
}

qb_code qc__doc_op(qi_index *ix, const char *id, int64_t seq, json_t **out, qb_err *err) {
  qb_buf src;
  qb_buf_init(&src);
  uint64_t ver = 0;
  qb_err e;
  qb_code g = qi_index_get(ix, id, &src, &ver, NULL, &e);
  json_t *op = NULL;
  if (g == QB_OK)
    op = json_pack("{s:s, s:I, s:s%}", "id", id, "v", (json_int_t)ver, "src",
                   src.data ? src.data : "{}", src.len);
  else if (g == QB_NOTFOUND)
    op = json_pack("{s:s, s:b}", "id", id, "del", 1);
  qb_buf_fini(&src);
  if (op && seq >= 0) json_object_set_new(op, "seq", json_integer((json_int_t)seq));
  if ((*out = op)) return QB_OK;
  return g && g != QB_NOTFOUND ? qb_fail(err, g, "%s", e.msg) : qb_fail(err, QB_NOMEM, "out of memory");
}

/* A local write failed: leave the in-sync set so that the leader promotes another copy. */
static void step_down_now(qc_write *w) {
  drop_ctx dc = {w->shard, w->term, w->n->name, NULL, 0, 0};
  qb_err e;
  qb_err_clear(&e);
  qb_code rc = qc__sm_update(w->n, w->index, step_down, &dc, &e);
  if (rc)
    qb_log(QB_ERROR, "[%s][%u]: a write failed on this primary (%s) and it could not step down: "
           "%s", w->index, w->shard, w->failed, e.msg);
  else
    qb_log(QB_WARN, "[%s][%u]: a write failed on this primary (%s); it left the in-sync set so "
           "that an in-sync copy is promoted", w->index, w->shard, w->failed);
}

qb_code qc_write_finish(qc_write *w, uint32_t *total, uint32_t *ok, uint64_t *term,
                        qb_err *err) {
  *total = *ok = 1;
  *term = w ? w->term : 1;
  if (w && w->failed[0] && !json_array_size(w->ids)) step_down_now(w);
  if (!w || !json_array_size(w->ids)) return QB_OK;
  qc_node *n = w->n;
  qi_index *ix;
  qb_code rc = qi_catalog_get(n->cat, w->local, &ix, err);
  if (rc) return rc;
  json_t *ops = json_array(), *seen = json_object(), *ids = json_array();
  size_t i;
  json_t *v;
  int64_t seq = w->rs->local_ckpt, first = seq + 1;
  json_array_foreach(w->ids, i, v) {
    const char *id = json_string_value(v);
    if (json_object_get(seen, id)) continue; /* one operation per _id: its resulting state */
    json_object_set_new(seen, id, json_true());
    json_t *op;
    if ((rc = qc__doc_op(ix, id, ++seq, &op, err))) break;
    json_array_append_new(ops, op);
    json_array_append(ids, v);
  }
  qi_index_release(ix);
  json_decref(seen);
  char *body = NULL;
  if (!rc) {
    json_t *req = json_pack("{s:I, s:s, s:o, s:b, s:I}", "term", (json_int_t)w->term, "primary",
                            n->name, "ops", ops, "refresh", w->refresh, "gckpt",
                            (json_int_t)w->rs->global_ckpt);
    ops = NULL;
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) rc = qb_fail(err, QB_NOMEM, "out of memory");
  }
  json_decref(ops);
  if (!rc) {
    qc__oplog_append(n, w->rs, first, ids);
    w->rs->local_ckpt = seq; /* applied here already */
    w->rs->ckpt_term = w->term;
    rc = send_to_copies(w, body, total, ok, err);
    if (!rc) w->rs->global_ckpt = seq;
    qc__ckpt_save(n, w->rs);
  }
  json_decref(ids);
  if (body) qc__json_free(body);
  if (w->failed[0]) step_down_now(w);
  return rc;
}
