/* repl.h: what the replication files of src/cluster share (docs/cluster.md, "Replication").
** oplog.c owns a local shard's replication state (terms, checkpoints, the persisted log of its
** operations), replicate.c the primary's writes, apply.c a copy's applies, recovery.c a primary
** bringing a copy to its history (recovery of a returning copy, resync after a promotion),
** orphans.c a returning node's copies the shard map no longer assigns to it.
**
** The op log of a shard copy: the _ids of its operations LOG_FIRST..LOCAL_CKPT, one per
** sequence number, kept in DATA/replication/<local>.oplog (one JSON line [seq, "id"] per
** operation, appended after each batch, rewritten when truncated or when it passes OPLOG_MAX)
** so that it survives a restart. It is a hint: read back, only a run that ends exactly at the
** local checkpoint counts; anything else is dropped and the copy recovers by a full copy. */
#ifndef QC_REPL_H
#define QC_REPL_H

#include <stdio.h>

#include "internal.h"

#define QC__CKPT_GAP UINT64_MAX /* ckpt_term after a gap in the operations */
#define QC__OPLOG_MAX 200000     /* operations a copy keeps (the newer half once past it) */

typedef struct qc__rshard {
  char local[256];
  pthread_mutex_t mu; /* serializes the shard's writes (primary) and applies (copy) */
  uint64_t max_term;
  int64_t local_ckpt, global_ckpt; /* -1: none yet */
  uint64_t ckpt_term;              /* the term of the operation at local_ckpt */
  uint64_t synced_term;            /* on a primary: the term its resync of the copies ran in */
  json_t *log;                     /* the _ids of operations log_first..local_ckpt */
  int64_t log_first;
  FILE *logf;                      /* the op log file, open for appending; NULL: not yet */
  /* on a primary: copies it added to the in-sync set under term ADDED_TERM (its view of the
  ** set in the metadata cache may not show them yet) */
  char added[8][64];
  int nadded;
  uint64_t added_term;
  struct qc__rshard *next;
} qc__rshard;

/* oplog.c */
qc__rshard *qc__rstate(qc_node *n, const char *local); /* made on first use; NULL: no memory */
void qc__ckpt_save(qc_node *n, qc__rshard *s);
/* Log IDS (borrowed, strings) as operations FIRST, FIRST+1, ...; a FIRST that does not follow
** the log starts a new one there. */
void qc__oplog_append(qc_node *n, qc__rshard *s, int64_t first, json_t *ids);
/* An empty log that starts at FIRST. */
void qc__oplog_restart(qc_node *n, qc__rshard *s, int64_t first);
/* Keep the operations up to UPTO (the rest are rewritten by a resync). */
void qc__oplog_truncate(qc_node *n, qc__rshard *s, int64_t upto);
/* 1 when the log holds every operation above FROM up to the local checkpoint. */
int qc__oplog_covers(const qc__rshard *s, int64_t from);
/* The distinct _ids of the operations above FROM (the log must cover it); NULL: no memory. */
json_t *qc__oplog_ids_above(const qc__rshard *s, int64_t from);
/* Forget LOCAL's replication state and remove its files (its copy was deleted). */
void qc__repl_forget(qc_node *n, const char *local);

/* replicate.c */
qc__rshard *qc__write_rs(qc_write *w); /* the shard a replicated write holds, its term */
uint64_t qc__write_term(qc_write *w);
int qc__split_local(const char *local, char index[256], uint32_t *shard);
/* The operation that brings a copy to ID's current state in IX: {"id", "v", "src"} or, once
** deleted, {"id", "del": true}; with "seq" unless SEQ is -1. */
qb_code qc__doc_op(qi_index *ix, const char *id, int64_t seq, json_t **out, qb_err *err);
/* Add NODE to (ADD) or remove NODES from the in-sync set of INDEX's SHARD, only while PRIMARY
** is the primary of TERM; the primary's own record of the copies it added follows. */
qb_code qc__in_sync_change(qc_node *n, qc__rshard *rs, const char *index, uint32_t shard,
                           uint64_t term, const char **nodes, size_t nn, int add, qb_err *err);
/* 1 when NODE is in the in-sync set of SH as this primary knows it. */
int qc__copy_in_sync(qc__rshard *rs, json_t *sh, const char *node, uint64_t term);

/* recovery.c: bring every other in-sync copy of the shard to this new primary's history
** (called by qc_write_begin with the shard held, once per term): a copy that cannot be
** resynced leaves the in-sync set (and recovers). */
qb_code qc__resync(qc_node *n, qc__rshard *rs, const char *index, uint32_t shard, uint64_t term,
                   qb_err *err);

#endif
