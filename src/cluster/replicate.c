/* replicate.c: primary-backup replication of a shard's writes, as Elasticsearch does it
** (docs/cluster.md, "Replication"). On a data node each local shard ("index~N") has a
** replication state: a mutex that serializes the shard's writes on its primary (so every copy
** applies them in one order) and its applies on a copy, the highest primary term seen, and
** the local and global checkpoints (the last sequence number applied here, and the last one
** every in-sync copy has), kept in DATA/replication/<local>.ckpt.
** The primary sends each touched document's resulting state (source + version, or deleted),
** not the request: a copy ends up with the primary's versions whatever the operation was.
** Invariant: a write is acknowledged only after every copy in the in-sync set has it durably,
** or has been removed from the set in etcd; a copy refuses a request of an older term than
** the newest it knows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define REPL_TIMEOUT_MS 5000
#define RECOVERY_CHUNK 500
#define CKPT_GAP UINT64_MAX /* ckpt_term after a gap in the operations: recover by a full copy */

typedef struct qc__rshard {
  char local[256];
  pthread_mutex_t mu;
  uint64_t max_term;
  int64_t local_ckpt, global_ckpt; /* -1: none yet */
  uint64_t ckpt_term;              /* the term of the operation at local_ckpt */
  /* on a primary: the _ids of its operations LOG_FIRST.. of term LOG_TERM (ops-based recovery) */
  json_t *log;
  int64_t log_first;
  uint64_t log_term;
  /* on a primary: copies it added to the in-sync set under term ADDED_TERM (its view of the
  ** set in the metadata cache may not show them yet) */
  char added[8][64];
  int nadded;
  uint64_t added_term;
  struct qc__rshard *next;
} rshard;

void qc__repl_init(qc_node *n) { pthread_mutex_init(&n->repl_mu, NULL); }

void qc__repl_free(qc_node *n) {
  for (rshard *s = n->rshards, *nx; s; s = nx) {
    nx = s->next;
    pthread_mutex_destroy(&s->mu);
    json_decref(s->log);
    qb_free(s, sizeof *s);
  }
  n->rshards = NULL;
  pthread_mutex_destroy(&n->repl_mu);
}

static void ckpt_path(qc_node *n, const char *local, char *out, size_t cap) {
  snprintf(out, cap, "%s/replication/%s.ckpt", n->data_dir, local);
}

static void ckpt_load(qc_node *n, rshard *s) {
  char p[1400];
  ckpt_path(n, s->local, p, sizeof p);
  FILE *f = fopen(p, "r");
  s->local_ckpt = s->global_ckpt = -1;
  if (!f) return;
  unsigned long long t, ct = 0;
  long long l, g;
  if (fscanf(f, "%llu %lld %lld %llu", &t, &l, &g, &ct) >= 3) {
    s->max_term = t;
    s->local_ckpt = l;
    s->global_ckpt = g;
    s->ckpt_term = ct;
  }
  fclose(f);
}

/* Written after each batch (write + rename, not fsynced: a hint for recovery, the documents'
** durability is the index's). */
static void ckpt_save(qc_node *n, rshard *s) {
  char p[1400], tmp[1500];
  snprintf(p, sizeof p, "%s/replication", n->data_dir);
  if (mkdir(p, 0755) && errno != EEXIST) return;
  ckpt_path(n, s->local, p, sizeof p);
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "%llu %lld %lld %llu\n", (unsigned long long)s->max_term, (long long)s->local_ckpt,
          (long long)s->global_ckpt, (unsigned long long)s->ckpt_term);
  if (fclose(f) == 0) rename(tmp, p);
}

/* The state of LOCAL, made on first use. NULL when out of memory. */
static rshard *rstate(qc_node *n, const char *local) {
  pthread_mutex_lock(&n->repl_mu);
  rshard *s;
  for (s = n->rshards; s; s = s->next)
    if (!strcmp(s->local, local)) break;
  if (!s && (s = qb_calloc(1, sizeof *s))) {
    snprintf(s->local, sizeof s->local, "%s", local);
    pthread_mutex_init(&s->mu, NULL);
    ckpt_load(n, s);
    s->next = n->rshards;
    n->rshards = s;
  }
  pthread_mutex_unlock(&n->repl_mu);
  return s;
}

/* "index~N" into INDEX and *SHARD; 0 when LOCAL is not a shard's local name. */
static int split_local(const char *local, char index[256], uint32_t *shard) {
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
};

void qc_write_refresh(qc_write *w) {
  if (w) w->refresh = 1;
}

qb_code qc_write_begin(qc_node *n, const char *local, qc_write **out, qb_err *err) {
  *out = NULL;
  char index[256];
  uint32_t shard;
  if (!n->etcd || !(n->role & QC_DATA) || !split_local(local, index, &shard)) return QB_OK;
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
  json_decref(meta);
  if (!n->lease || !qc_lease_fresh(n->lease))
    return qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: node [%s] lost its lease in etcd and may no "
                   "longer be the primary", index, shard, n->name);
  rshard *rs = rstate(n, local);
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
    ckpt_save(n, rs);
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
  int add; /* 1: add NODES[0] to in_sync instead */
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
  int sync[16];
  size_t nc = 0, nf = 0, i;
  json_t *c;
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
    int in = qc__sm_in_sync(sh, nn) || was_added(w->rs, nn, w->term);
    if (!in) continue;
    char url[128];
    if (!qc__member_url(n, nn, url)) {
      failed[nf++] = nn;
      continue;
    }
    sync[nc] = in;
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
    if (!sync[i]) continue;
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
    drop_ctx dc = {w->shard, w->term, n->name, failed, nf, 0};
    qb_err e;
    qb_err_clear(&e);
    if (qc__sm_update(n, w->index, change_in_sync, &dc, &e))
      rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: %zu copies failed the write and could not be "
                   "removed from the in-sync set: %s", w->index, w->shard, nf, e.msg);
    else
      for (i = 0; i < nf; i++) set_added(w->rs, failed[i], w->term, 0);
  }
  for (i = 0; i < nc; i++) qc_call_fini(&calls[i]);
  json_decref(meta);
  return rc;
}

#define LOG_MAX 200000 /* operations a primary remembers for ops-based recovery */

/* Remember the _ids of W's operations (sequence numbers local_ckpt+1..LAST). */
static void log_ops(qc_write *w, int64_t last) {
  rshard *rs = w->rs;
  int64_t first = rs->local_ckpt + 1;
  if (!rs->log || rs->log_term != w->term || rs->log_first + (int64_t)json_array_size(rs->log) !=
                                                 first) {
    json_decref(rs->log);
    rs->log = json_array();
    rs->log_first = first;
    rs->log_term = w->term;
  }
  if (!rs->log) return;
  json_t *seen = json_object();
  size_t i;
  json_t *v;
  int64_t seq = first;
  json_array_foreach(w->ids, i, v) {
    const char *id = json_string_value(v);
    if (json_object_get(seen, id)) continue; /* one op per _id, as qc_write_finish numbers them */
    json_object_set_new(seen, id, json_true());
    json_array_append(rs->log, v);
    seq++;
  }
  json_decref(seen);
  if (seq != last + 1) { /* cannot happen: the log would not match the numbers; drop it */
    json_decref(rs->log);
    rs->log = NULL;
    return;
  }
  size_t n = json_array_size(rs->log);
  if (n > LOG_MAX) { /* keep the newer half */
    json_t *keep = json_array();
    for (size_t k = n / 2; k < n; k++) json_array_append(keep, json_array_get(rs->log, k));
    json_decref(rs->log);
    rs->log = keep;
    rs->log_first += (int64_t)(n / 2);
  }
}


/* The operation that brings a copy to ID's current state in IX: {"id", "v", "src"} or, once
** deleted, {"id", "del": true}; with "seq" unless SEQ is -1, in *OP. */
static qb_code doc_op(qi_index *ix, const char *id, int64_t seq, json_t **out, qb_err *err) {
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

qb_code qc_write_finish(qc_write *w, uint32_t *total, uint32_t *ok, uint64_t *term,
                        qb_err *err) {
  *total = *ok = 1;
  *term = w ? w->term : 1;
  if (!w || !json_array_size(w->ids)) return QB_OK;
  qc_node *n = w->n;
  qi_index *ix;
  qb_code rc = qi_catalog_get(n->cat, w->local, &ix, err);
  if (rc) return rc;
  json_t *ops = json_array(), *seen = json_object();
  size_t i;
  json_t *v;
  int64_t seq = w->rs->local_ckpt;
  json_array_foreach(w->ids, i, v) {
    const char *id = json_string_value(v);
    if (json_object_get(seen, id)) continue;
    json_object_set_new(seen, id, json_true());
    json_t *op;
    if ((rc = doc_op(ix, id, ++seq, &op, err))) break;
    json_array_append_new(ops, op);
  }
  qi_index_release(ix);
  json_decref(seen);
  char *body = NULL;
  if (!rc) {
    json_t *req = json_pack("{s:I, s:s, s:o, s:b}", "term", (json_int_t)w->term, "primary",
                            n->name, "ops", ops, "refresh", w->refresh);
    ops = NULL;
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) rc = qb_fail(err, QB_NOMEM, "out of memory");
  }
  json_decref(ops);
  if (!rc) {
    log_ops(w, seq);
    w->rs->local_ckpt = seq; /* applied here already */
    w->rs->ckpt_term = w->term;
    rc = send_to_copies(w, body, total, ok, err);
    if (!rc) w->rs->global_ckpt = seq;
    ckpt_save(n, w->rs);
  }
  if (body) qc__json_free(body);
  return rc;
}

/* ---- a copy -------------------------------------------------------------------------------- */

qb_code qc_replica_apply(qc_node *n, const char *index, uint32_t shard, const char *body,
                         size_t len, json_t **out, qb_err *err) {
  *out = NULL;
  json_error_t je;
  json_t *q = json_loadb(body, len, 0, &je);
  json_t *ops = json_object_get(q, "ops"), *reset = json_object_get(q, "reset");
  json_int_t term = json_integer_value(json_object_get(q, "term"));
  const char *from = json_string_value(json_object_get(q, "primary"));
  if (!json_is_object(q) || term < 1 || !from || (ops && !json_is_array(ops)) ||
      (reset && !json_is_object(reset))) {
    json_decref(q);
    return qb_fail(err, QB_INVAL, "replica request: needs term, primary and ops");
  }
  char local[256];
  qc_shard_local_name(index, shard, local);
  rshard *rs = rstate(n, local);
  if (!rs) {
    json_decref(q);
    return qb_fail(err, QB_NOMEM, "out of memory");
  }
  pthread_mutex_lock(&rs->mu);
  qb_code rc = QB_OK;
  json_t *meta = qc_node_index_meta(n, index);
  json_t *sh = meta ? qc__sm_shard(meta, shard) : NULL;
  uint64_t known = rs->max_term, mterm = sh ? qc__sm_term(sh) : 0;
  const char *mpri = sh ? qc__sm_primary(sh) : NULL;
  if (mterm > known) known = mterm;
  if ((uint64_t)term < known) {
    rc = qb_fail(err, QB_CONFLICT, "[%s][%u]: primary term %lld of [%s] is stale: this copy on "
                 "[%s] knows term %llu", index, shard, (long long)term, from, n->name,
                 (unsigned long long)known);
  } else if ((uint64_t)term == mterm && mpri && strcmp(mpri, from)) {
    rc = qb_fail(err, QB_CONFLICT, "[%s][%u]: [%s] is not the primary of term %lld ([%s] is)",
                 index, shard, from, (long long)term, mpri);
  } else if (mpri && !strcmp(mpri, n->name) && (uint64_t)term <= mterm) {
    rc = qb_fail(err, QB_CONFLICT, "[%s][%u]: this node [%s] is the primary of term %llu", index,
                 shard, n->name, (unsigned long long)mterm);
  }
  json_decref(meta);
  if (rc) goto out;
  if ((uint64_t)term > rs->max_term) rs->max_term = (uint64_t)term;
  if (json_is_true(json_object_get(q, "probe"))) { /* recovery asks where this copy stands */
    qi_index *px = NULL;
    int has = qi_catalog_get(n->cat, local, &px, NULL) == QB_OK;
    qi_index_release(px);
    *out = json_pack("{s:I, s:I, s:b}", "local_checkpoint", (json_int_t)rs->local_ckpt,
                     "ckpt_term", (json_int_t)rs->ckpt_term, "has_shard", has);
    if (!*out) rc = qb_fail(err, QB_NOMEM, "out of memory");
    goto out;
  }
  if (reset) {
    char *text = json_dumps(reset, JSON_COMPACT);
    if (!text) {
      rc = qb_fail(err, QB_NOMEM, "out of memory");
      goto out;
    }
    rc = qi_catalog_delete(n->cat, local, err);
    if (rc == QB_NOTFOUND) rc = QB_OK;
    qi_index *nix = NULL;
    if (!rc) rc = qi_catalog_create(n->cat, local, text, &nix, err);
    qc__json_free(text);
    qi_index_release(nix);
    if (rc) goto out;
    rs->local_ckpt = rs->global_ckpt = -1;
    rs->ckpt_term = 0;
  }
  qi_index *ix = NULL;
  if ((rc = qi_catalog_get(n->cat, local, &ix, err))) {
    if (rc == QB_NOTFOUND)
      rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: no copy on node [%s]", index, shard, n->name);
    goto out;
  }
  int64_t last = rs->local_ckpt, first_seq = -2;
  if (json_array_size(ops)) {
    qi_bulk *b;
    if ((rc = qi_bulk_begin(ix, &b, err))) {
      qi_index_release(ix);
      goto out;
    }
    size_t i;
    json_t *op;
    qb_err first;
    qb_err_clear(&first);
    json_array_foreach(ops, i, op) {
      const char *id = json_string_value(json_object_get(op, "id"));
      json_t *src = json_object_get(op, "src");
      json_int_t v = json_integer_value(json_object_get(op, "v"));
      qb_err e;
      qb_code irc;
      if (!id) irc = qb_fail(&e, QB_INVAL, "op %zu has no id", i);
      else if (json_is_true(json_object_get(op, "del"))) {
        irc = qi_bulk_delete(b, id, NULL, &e);
        if (irc == QB_NOTFOUND) irc = QB_OK;
      } else if (!json_is_string(src) || v < 1) {
        irc = qb_fail(&e, QB_INVAL, "op %zu has no source or version", i);
      } else {
        qi_write_cond cond = {0};
        cond.has_version = 1;
        cond.version = (uint64_t)v;
        irc = qi_bulk_put_if(b, id, json_string_value(src), json_string_length(src), &cond, NULL,
                             &e);
      }
      if (irc && !first.code) first = e, first.code = irc;
      json_t *sqj = json_object_get(op, "seq");
      json_int_t sq = json_integer_value(sqj);
      if (json_is_integer(sqj) && first_seq == -2) first_seq = sq;
      if (sq > last) last = sq;
    }
    rc = qi_bulk_commit(b, err);
    if (!rc && first.code) rc = qb_fail(err, first.code, "[%s][%u] on [%s]: %s", index, shard,
                                        n->name, first.msg);
  }
  qi_index_release(ix);
  if (rc) goto out;
  json_t *ck = json_object_get(q, "ckpt");
  /* the checkpoint means "every operation up to it is here" only while they came without a
  ** gap (a copy out of the in-sync set gets writes too, and misses those before): after a gap
  ** only a recovery's explicit checkpoint makes it meaningful again */
  if (json_is_integer(ck)) {
    rs->ckpt_term = (uint64_t)term;
  } else if (first_seq != -2) {
    int contiguous = first_seq == rs->local_ckpt + 1 && rs->ckpt_term != CKPT_GAP;
    rs->ckpt_term = contiguous ? (uint64_t)term : CKPT_GAP;
  }
  rs->local_ckpt = json_is_integer(ck) ? json_integer_value(ck) : last;
  ckpt_save(n, rs);
  *out = json_pack("{s:I, s:b}", "local_checkpoint", (json_int_t)rs->local_ckpt, "refresh",
                   json_is_true(json_object_get(q, "refresh")));
  if (!*out) rc = qb_fail(err, QB_NOMEM, "out of memory");
out:
  pthread_mutex_unlock(&rs->mu);
  json_decref(q);
  return rc;
}

/* ---- recovery: the primary copies its shard to a copy ------------------------------------- */

static qb_code send_chunk(const char *url, json_t *req, qb_err *err) {
  char *text = json_dumps(req, JSON_COMPACT);
  if (!text) return qb_fail(err, QB_NOMEM, "out of memory");
  qc_call c = {.method = "POST", .body = text, .len = strlen(text)};
  snprintf(c.url, sizeof c.url, "%s", url);
  qb_code rc = qc_fanout(&c, 1, 60000, err);
  if (!rc && c.status != 200)
    rc = qb_fail(err, QB_UNAVAILABLE, "recovery target at %s answered %d: %.*s", url, c.status,
                 (int)(c.resp.len < 200 ? c.resp.len : 200), c.resp.data ? c.resp.data : "");
  qc_call_fini(&c);
  qc__json_free(text);
  return rc;
}

/* Where the copy at URL stands: *CKPT its local checkpoint, 1 when it may recover from the
** operations above it (it has the shard and its last operation is of this primary's term, so
** everything up to it came from this primary in order), 0 for a full copy. */
static int probe(qc_write *w, const char *url, int64_t *ckpt) {
  char body[400];
  snprintf(body, sizeof body, "{\"term\":%llu,\"primary\":\"%s\",\"probe\":true}",
           (unsigned long long)w->term, w->n->name);
  qc_call c = {.method = "POST", .body = body, .len = strlen(body)};
  snprintf(c.url, sizeof c.url, "%s", url);
  int ok = 0;
  if (!qc_fanout(&c, 1, 10000, NULL) && c.status == 200) {
    json_t *j = json_loadb(c.resp.data, c.resp.len, 0, NULL);
    *ckpt = json_integer_value(json_object_get(j, "local_checkpoint"));
    rshard *rs = w->rs;
    ok = json_is_true(json_object_get(j, "has_shard")) &&
         (uint64_t)json_integer_value(json_object_get(j, "ckpt_term")) == w->term &&
         rs->log && rs->log_term == w->term && *ckpt >= rs->log_first - 1 &&
         *ckpt <= rs->local_ckpt;
    json_decref(j);
  }
  qc_call_fini(&c);
  return ok;
}

/* Send the copy at URL the current state of every document of the operations above FROM. */
static qb_code ops_recovery(qc_write *w, qi_index *ix, const char *url, int64_t from,
                            size_t *sent, qb_err *err) {
  rshard *rs = w->rs;
  json_t *ops = json_array(), *seen = json_object();
  qb_code rc = QB_OK;
  size_t n = json_array_size(rs->log);
  for (size_t k = (size_t)(from + 1 - rs->log_first); !rc && k <= n; k++) {
    if (k < n) {
      const char *id = json_string_value(json_array_get(rs->log, k));
      if (json_object_get(seen, id)) continue;
      json_object_set_new(seen, id, json_true());
      json_t *op;
      if (!(rc = doc_op(ix, id, -1, &op, err))) json_array_append_new(ops, op);
      if (rc || json_array_size(ops) < RECOVERY_CHUNK) continue;
    }
    json_t *req = json_pack("{s:I, s:s, s:O}", "term", (json_int_t)w->term, "primary",
                            w->n->name, "ops", ops);
    if (k == n) {
      json_object_set_new(req, "ckpt", json_integer((json_int_t)rs->local_ckpt));
      json_object_set_new(req, "refresh", json_true());
    }
    rc = send_chunk(url, req, err);
    json_decref(req);
    *sent += json_array_size(ops);
    json_array_clear(ops);
  }
  json_decref(ops);
  json_decref(seen);
  return rc;
}

qb_code qc_recover_copy(qc_node *n, const char *index, uint32_t shard, const char *target,
                        json_t **out, qb_err *err) {
  *out = NULL;
  char local[256], turl[128], url[400];
  qc_shard_local_name(index, shard, local);
  if (!qc__member_url(n, target, turl))
    return qb_fail(err, QB_UNAVAILABLE, "recovery target [%s] is not in the cluster", target);
  snprintf(url, sizeof url, "%s/_internal/replica/%s/%u", turl, index, shard);
  qc_write *w;
  qb_code rc = qc_write_begin(n, local, &w, err);
  if (rc) return rc;
  if (!w) return qb_fail(err, QB_INVAL, "[%s] is not a replicated shard", local);
  uint64_t t0 = qb_now_ns();
  qi_index *ix = NULL;
  qi_snapshot *snap = NULL;
  json_t *ops = NULL, *reset = NULL;
  size_t sent = 0;
  qb_buf mj, sj, src;
  qb_buf_init(&mj);
  qb_buf_init(&sj);
  qb_buf_init(&src);
  int64_t from = -1;
  int by_ops = probe(w, url, &from);
  if (by_ops) {
    if (!(rc = qi_catalog_get(n->cat, local, &ix, err)))
      rc = ops_recovery(w, ix, url, from, &sent, err);
    goto in_sync;
  }
  if ((rc = qi_catalog_get(n->cat, local, &ix, err)) || (rc = qi_index_refresh(ix, err)) ||
      (rc = qi_index_mapping_json(ix, &mj, err)) || (rc = qi_index_settings_json(ix, &sj, err)))
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
      json_t *req = json_pack("{s:I, s:s, s:O}", "term", (json_int_t)w->term, "primary", n->name,
                              "ops", ops);
      if (first) json_object_set(req, "reset", reset);
      first = 0;
      rc = send_chunk(url, req, err);
      json_decref(req);
      sent += json_array_size(ops);
      json_array_clear(ops);
    }
  }
  if (!rc) {
    json_t *req = json_pack("{s:I, s:s, s:O, s:I}", "term", (json_int_t)w->term, "primary",
                            n->name, "ops", ops, "ckpt", (json_int_t)w->rs->local_ckpt);
    if (first) json_object_set(req, "reset", reset);
    json_object_set_new(req, "refresh", json_true());
    rc = send_chunk(url, req, err);
    json_decref(req);
    sent += json_array_size(ops);
  }
in_sync:
  if (!rc) {
    const char *nodes[1] = {target};
    drop_ctx dc = {shard, w->term, n->name, nodes, 1, 1};
    rc = qc__sm_update(n, index, change_in_sync, &dc, err);
    if (!rc) set_added(w->rs, target, w->term, 1);
  }
  if (!rc) {
    double ms = (double)(qb_now_ns() - t0) / 1e6;
    qb_log(QB_INFO, "[%s][%u]: recovered the copy on [%s] (%s: %zu documents, %.1f ms); it is "
           "in sync", index, shard, target, by_ops ? "operations above its checkpoint" :
           "full copy", sent, ms);
    *out = json_pack("{s:s, s:I, s:s, s:s, s:I, s:f}", "index", index, "shard",
                     (json_int_t)shard, "target", target, "kind", by_ops ? "operations" : "full",
                     "documents", (json_int_t)sent, "took_ms", ms);
  }
out:
  json_decref(ops);
  json_decref(reset);
  qi_snapshot_release(snap);
  qi_index_release(ix);
  qb_buf_fini(&mj);
  qb_buf_fini(&sj);
  qb_buf_fini(&src);
  qc_write_end(w);
  return rc;
}

/* ---- per-copy document counts ---------------------------------------------------------- */

json_t *qc_copy_docs(qc_node *n) {
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256), k = 0;
  if (nm > 256) nm = 256;
  qc_call *c = qb_calloc(nm ? nm : 1, sizeof *c);
  const char **who = qb_calloc(nm ? nm : 1, sizeof *who);
  json_t *res = json_object();
  for (size_t i = 0; c && who && i < nm; i++) {
    if (!m[i].data) continue;
    c[k].method = "GET";
    snprintf(c[k].url, sizeof c[k].url, "%s/_cat/indices?format=json", m[i].url);
    who[k++] = m[i].name;
  }
  if (c && who) qc_fanout(c, k, 5000, NULL);
  for (size_t i = 0; c && who && i < k; i++) {
    json_t *arr = c[i].status == 200 ? json_loadb(c[i].resp.data, c[i].resp.len, 0, NULL) : NULL;
    json_t *per = json_object();
    size_t j;
    json_t *row;
    json_array_foreach(arr, j, row) {
      const char *ix = json_string_value(json_object_get(row, "index"));
      const char *cnt = json_string_value(json_object_get(row, "docs.count"));
      if (ix && strchr(ix, '~'))
        json_object_set_new(per, ix, json_integer(cnt ? strtoll(cnt, NULL, 10) : 0));
    }
    json_object_set_new(res, who[i], per);
    json_decref(arr);
    qc_call_fini(&c[i]);
  }
  qb_free(c, (nm ? nm : 1) * sizeof *c);
  qb_free(who, (nm ? nm : 1) * sizeof *who);
  return res;
}
