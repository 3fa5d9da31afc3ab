/* apply.c: a copy's half of replication (docs/cluster.md, "Replication"): a primary's
** numbered operations applied durably in one batch with the primary's versions, a probe of
** where this copy stands (checkpoints and the _ids its op log holds above the point it surely
** agrees on with the asking primary), and the chunks of a recovery or resync (a full copy
** re-creates the shard first; the last chunk sets the checkpoint and the op log). Refused with
** 409: an older term than the newest this copy knows, a node that is not the primary of its
** term, any request while this node is itself the primary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

typedef qc__rshard rshard;

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
  rshard *rs = qc__rstate(n, local);
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
  if (json_is_true(json_object_get(q, "probe"))) { /* a primary asks where this copy stands */
    qi_index *px = NULL;
    int has = qi_catalog_get(n->cat, local, &px, NULL) == QB_OK;
    qi_index_release(px);
    /* FROM: the last operation this copy and the asking primary surely agree on (every
    ** operation up to a global checkpoint either knows was acknowledged, so every in-sync
    ** copy had it); IDS: what this copy holds above it, null when its log does not say */
    json_t *above = json_object_get(q, "above");
    int64_t a = rs->global_ckpt < rs->local_ckpt ? rs->global_ckpt : rs->local_ckpt;
    if (json_is_integer(above) && json_integer_value(above) < a) a = json_integer_value(above);
    json_t *ids = has && qc__oplog_covers(rs, a) ? qc__oplog_ids_above(rs, a) : NULL;
    *out = json_pack("{s:I, s:I, s:I, s:b, s:I, s:o}", "local_checkpoint",
                     (json_int_t)rs->local_ckpt, "global_checkpoint", (json_int_t)rs->global_ckpt,
                     "ckpt_term", (json_int_t)rs->ckpt_term, "has_shard", has, "from",
                     (json_int_t)a, "ids", ids ? ids : json_null());
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
    qc__oplog_truncate(n, rs, -1);
  }
  qi_index *ix = NULL;
  if ((rc = qi_catalog_get(n->cat, local, &ix, err))) {
    if (rc == QB_NOTFOUND)
      rc = qb_fail(err, QB_UNAVAILABLE, "[%s][%u]: no copy on node [%s]", index, shard, n->name);
    goto out;
  }
  int64_t last = rs->local_ckpt, first_seq = -2;
  json_t *seqids = json_array(); /* the _ids of the numbered operations, in order */
  if (!seqids) {
    qi_index_release(ix);
    rc = qb_fail(err, QB_NOMEM, "out of memory");
    goto out;
  }
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
      if (json_is_integer(sqj) && id) json_array_append_new(seqids, json_string(id));
      if (sq > last) last = sq;
    }
    rc = qi_bulk_commit(b, err);
    if (!rc && first.code) rc = qb_fail(err, first.code, "[%s][%u] on [%s]: %s", index, shard,
                                        n->name, first.msg);
  }
  qi_index_release(ix);
  if (rc) {
    json_decref(seqids);
    goto out;
  }
  json_t *ck = json_object_get(q, "ckpt"), *gk = json_object_get(q, "gckpt");
  /* the checkpoint means "every operation up to it is here" only while they came without a
  ** gap: after one only a recovery's explicit checkpoint makes it meaningful again */
  if (json_is_integer(ck)) {
    /* the end of a recovery or resync: this copy now holds the primary's state as of CKPT, and
    ** its log becomes the primary's above LOG.from */
    int64_t x = json_integer_value(ck);
    json_t *lg = json_object_get(q, "log"), *lids = json_object_get(lg, "ids");
    json_int_t lf = json_integer_value(json_object_get(lg, "from"));
    int good = json_is_array(lids) && lf >= -1 && lf + (json_int_t)json_array_size(lids) == x;
    size_t i;
    json_t *v;
    json_array_foreach(lids, i, v) good &= json_is_string(v);
    rs->ckpt_term = (uint64_t)term;
    rs->local_ckpt = x;
    if (good) {
      qc__oplog_truncate(n, rs, lf);
      qc__oplog_append(n, rs, lf + 1, lids);
    } else {
      qc__oplog_restart(n, rs, x + 1);
    }
  } else if (first_seq != -2) {
    int contiguous = first_seq == rs->local_ckpt + 1 && rs->ckpt_term != QC__CKPT_GAP;
    rs->ckpt_term = contiguous ? (uint64_t)term : QC__CKPT_GAP;
    qc__oplog_append(n, rs, first_seq, seqids); /* a gap starts a new run */
    rs->local_ckpt = last;
  }
  json_decref(seqids);
  if (json_is_integer(gk))
    rs->global_ckpt = json_integer_value(gk) < rs->local_ckpt ? json_integer_value(gk)
                                                                 : rs->local_ckpt;
  qc__ckpt_save(n, rs);
  *out = json_pack("{s:I, s:b}", "local_checkpoint", (json_int_t)rs->local_ckpt, "refresh",
                   json_is_true(json_object_get(q, "refresh")));
  if (!*out) rc = qb_fail(err, QB_NOMEM, "out of memory");
out:
  pthread_mutex_unlock(&rs->mu);
  json_decref(q);
  return rc;
}

