/* store.c: the durable document store, one SQLite database in WAL mode per index
** (DIR/docs.db). Schema (docs/index.md): meta(key, value) for format, settings, mappings and
** next_seq; docs(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, version, source) where seq is the
** document's _seq_no, so a scan in rowid order replays the index in write order. Two
** connections: the writer (under the index lock) and a reader (under rlock) for gets. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define FORMAT "quidditch-index-1"
#define READER_MMAP "268435456" /* bytes of docs.db the reader connection maps */

static qb_code sqerr(qb_err *err, sqlite3 *db, const char *what) {
  int ec = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
  qb_code c = (ec & 0xff) == SQLITE_CORRUPT || (ec & 0xff) == SQLITE_NOTADB ? QB_CORRUPT
              : (ec & 0xff) == SQLITE_NOMEM                               ? QB_NOMEM
                                                                          : QB_IO;
  return qb_fail(err, c, "document store: %s: %s", what, db ? sqlite3_errmsg(db) : "open failed");
}

static qb_code exec(sqlite3 *db, const char *sql, qb_err *err) {
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) return sqerr(err, db, sql);
  return QB_OK;
}

static qb_code prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, qb_err *err) {
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return sqerr(err, db, "prepare");
  return QB_OK;
}

qb_code qi__store_open(qi__store *st, const char *dir, int create, int sync_normal, qb_err *err) {
  char path[4096];
  qb_code rc;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  memset(st, 0, sizeof *st);
  pthread_mutex_init(&st->rlock, NULL);
  if (snprintf(path, sizeof path, "%s/docs.db", dir) >= (int)sizeof path)
    return qb_fail(err, QB_INVAL, "index directory path too long");
  if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
    rc = create ? sqerr(err, st->db, path) : qb_fail(err, QB_NOTFOUND, "no index in %s", dir);
    goto fail;
  }
  sqlite3_busy_timeout(st->db, 10000);
  if ((rc = exec(st->db, "PRAGMA journal_mode=WAL", err))) goto fail;
  if ((rc = exec(st->db, sync_normal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL",
                 err)))
    goto fail;
  if (create) {
    if ((rc = exec(st->db,
                   "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS docs(seq INTEGER PRIMARY KEY, id TEXT NOT NULL "
                   "UNIQUE, version INTEGER NOT NULL, source TEXT NOT NULL);"
                   "INSERT OR IGNORE INTO meta VALUES('format','" FORMAT "');"
                   "INSERT OR IGNORE INTO meta VALUES('next_seq','0');",
                   err)))
      goto fail;
  }
  {
    sqlite3_stmt *s = NULL;
    int ok = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key='format'", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) &&
        !strcmp((const char *)sqlite3_column_text(s, 0), FORMAT))
      ok = 1;
    sqlite3_finalize(s);
    if (!ok) {
      rc = qb_fail(err, QB_CORRUPT, "%s is not a quidditch index store (format %s)", path, FORMAT);
      goto fail;
    }
  }
  if ((rc = prep(st->db, "INSERT OR REPLACE INTO docs(seq,id,version,source) VALUES(?,?,?,?)",
                 &st->ins, err)) ||
      (rc = prep(st->db, "DELETE FROM docs WHERE id=?", &st->del, err)) ||
      (rc = prep(st->db, "SELECT version,seq FROM docs WHERE id=?", &st->sel_id, err)) ||
      (rc = prep(st->db, "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)", &st->meta_put,
                 err)))
    goto fail;
  if (sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    rc = sqerr(err, st->rdb, "open reader");
    goto fail;
  }
  sqlite3_busy_timeout(st->rdb, 10000);
  /* the reader maps the first 256 MiB of the file (issue 14): a search's _source reads then
  ** copy no pages through pread into SQLite's cache. Page cache, not heap; past 256 MiB reads
  ** go through pread as before. A failure leaves it unmapped (still correct). */
  sqlite3_exec(st->rdb, "PRAGMA mmap_size=" READER_MMAP, NULL, NULL, NULL);
  if ((rc = prep(st->rdb, "SELECT source,version,seq FROM docs WHERE id=?", &st->rsel, err)) ||
      (rc = prep(st->rdb, "SELECT id,source FROM docs WHERE seq=?", &st->rsel_seq, err)) ||
      (rc = prep(st->rdb, "BEGIN", &st->rbegin, err)) || (rc = prep(st->rdb, "COMMIT", &st->rend, err)))
    goto fail;
  return QB_OK;
fail:
  qi__store_close(st);
  return rc;
}

void qi__store_close(qi__store *st) {
  sqlite3_finalize(st->ins);
  sqlite3_finalize(st->del);
  sqlite3_finalize(st->sel_id);
  sqlite3_finalize(st->meta_put);
  sqlite3_finalize(st->rsel);
  sqlite3_finalize(st->rsel_seq);
  sqlite3_finalize(st->rbegin);
  sqlite3_finalize(st->rend);
  if (st->rdb) sqlite3_close(st->rdb);
  if (st->db) sqlite3_close(st->db);
  pthread_mutex_destroy(&st->rlock);
  memset(st, 0, sizeof *st);
}

qb_code qi__store_begin(qi__store *st, qb_err *err) {
  qb_code rc = exec(st->db, "BEGIN IMMEDIATE", err);
  if (!rc) st->in_txn = 1;
  return rc;
}

qb_code qi__store_commit(qi__store *st, qb_err *err) {
  qb_code rc = exec(st->db, "COMMIT", err);
  if (rc) qi__store_rollback(st);
  st->in_txn = 0;
  return rc;
}

void qi__store_rollback(qi__store *st) {
  if (sqlite3_get_autocommit(st->db) == 0) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  st->in_txn = 0;
}

qb_code qi__store_meta_put(qi__store *st, const char *key, const char *val, qb_err *err) {
  int r;
  sqlite3_bind_text(st->meta_put, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st->meta_put, 2, val, -1, SQLITE_STATIC);
  r = sqlite3_step(st->meta_put);
  sqlite3_reset(st->meta_put);
  sqlite3_clear_bindings(st->meta_put);
  return r == SQLITE_DONE ? QB_OK : sqerr(err, st->db, "write meta");
}

qb_code qi__store_meta_get(qi__store *st, const char *key, qb_buf *out, qb_err *err) {
  sqlite3_stmt *s = NULL;
  qb_code rc = QB_OK;
  int r;
  if ((rc = prep(st->db, "SELECT value FROM meta WHERE key=?", &s, err))) return rc;
  sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
  r = sqlite3_step(s);
  if (r == SQLITE_ROW) {
    const void *p = sqlite3_column_blob(s, 0);
    if (qb_buf_append(out, p ? p : "", (size_t)sqlite3_column_bytes(s, 0)))
      rc = qb_fail(err, QB_NOMEM, "document store: out of memory");
  } else if (r == SQLITE_DONE) {
    rc = QB_NOTFOUND;
  } else {
    rc = sqerr(err, st->db, "read meta");
  }
  sqlite3_finalize(s);
  return rc;
}

qb_code qi__store_put(qi__store *st, const char *id, uint64_t seq, uint64_t version,
                      const char *src, size_t len, qb_err *err) {
  int r;
  sqlite3_bind_int64(st->ins, 1, (sqlite3_int64)seq);
  sqlite3_bind_text(st->ins, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st->ins, 3, (sqlite3_int64)version);
  sqlite3_bind_text(st->ins, 4, src, (int)len, SQLITE_STATIC);
  r = sqlite3_step(st->ins);
  sqlite3_reset(st->ins);
  sqlite3_clear_bindings(st->ins);
  return r == SQLITE_DONE ? QB_OK : sqerr(err, st->db, "write document");
}

qb_code qi__store_delete(qi__store *st, const char *id, qb_err *err) {
  int r;
  sqlite3_bind_text(st->del, 1, id, -1, SQLITE_STATIC);
  r = sqlite3_step(st->del);
  sqlite3_reset(st->del);
  sqlite3_clear_bindings(st->del);
  return r == SQLITE_DONE ? QB_OK : sqerr(err, st->db, "delete document");
}

qb_code qi__store_get(qi__store *st, const char *id, qb_buf *src, uint64_t *version, uint64_t *seq,
                      qb_err *err) {
  qb_code rc = QB_OK;
  int r;
  pthread_mutex_lock(&st->rlock);
  sqlite3_bind_text(st->rsel, 1, id, -1, SQLITE_STATIC);
  r = sqlite3_step(st->rsel);
  if (r == SQLITE_ROW) {
    const void *p = sqlite3_column_blob(st->rsel, 0);
    if (src && qb_buf_append(src, p ? p : "", (size_t)sqlite3_column_bytes(st->rsel, 0)))
      rc = qb_fail(err, QB_NOMEM, "document store: out of memory");
    if (version) *version = (uint64_t)sqlite3_column_int64(st->rsel, 1);
    if (seq) *seq = (uint64_t)sqlite3_column_int64(st->rsel, 2);
  } else if (r == SQLITE_DONE) {
    rc = qb_fail(err, QB_NOTFOUND, "document [%s] not found", id);
  } else {
    rc = sqerr(err, st->rdb, "read document");
  }
  sqlite3_reset(st->rsel);
  sqlite3_clear_bindings(st->rsel);
  pthread_mutex_unlock(&st->rlock);
  return rc;
}

/* one statement run to its end (BEGIN, COMMIT on the reader) */
static int run1(sqlite3_stmt *s) {
  int r = sqlite3_step(s);
  sqlite3_reset(s);
  return r == SQLITE_DONE;
}

/* the source of ID by id (rsel) appended to OUT; *GOT: 1 found, 0 gone */
static qb_code get_by_id(qi__store *st, const char *id, qb_buf *out, int *got, qb_err *err) {
  qb_code rc = QB_OK;
  int r;
  *got = 0;
  sqlite3_bind_text(st->rsel, 1, id, -1, SQLITE_STATIC);
  r = sqlite3_step(st->rsel);
  if (r == SQLITE_ROW) {
    const void *p = sqlite3_column_blob(st->rsel, 0);
    if (qb_buf_append(out, p ? p : "", (size_t)sqlite3_column_bytes(st->rsel, 0)))
      rc = qb_fail(err, QB_NOMEM, "document store: out of memory");
    *got = 1;
  } else if (r != SQLITE_DONE) {
    rc = sqerr(err, st->rdb, "read document");
  }
  sqlite3_reset(st->rsel);
  sqlite3_clear_bindings(st->rsel);
  return rc;
}

/* By rowid (the table's own b-tree; the id index is not walked), the row's id checked: a row
** of that seq holds the document's newest version unless it was replaced (new seq) or deleted
** since, which the id lookup then answers as qi__store_get does. One read transaction (one
** lock and WAL snapshot, not one a document). */
qb_code qi__store_get_many(qi__store *st, const uint64_t *seqs, const char *const *ids, size_t n,
                           qb_buf *out, size_t *off, size_t *len, qb_err *err) {
  qb_code rc = QB_OK;
  pthread_mutex_lock(&st->rlock);
  int txn = run1(st->rbegin); /* without it (it cannot fail but on OOM) each read takes its own */
  for (size_t i = 0; i < n && !rc; i++) {
    size_t at = out->len;
    int r, got = 0;
    sqlite3_bind_int64(st->rsel_seq, 1, (sqlite3_int64)seqs[i]);
    r = sqlite3_step(st->rsel_seq);
    if (r == SQLITE_ROW) {
      const char *rid = (const char *)sqlite3_column_text(st->rsel_seq, 0);
      if (rid && !strcmp(rid, ids[i])) {
        const void *p = sqlite3_column_blob(st->rsel_seq, 1);
        if (qb_buf_append(out, p ? p : "", (size_t)sqlite3_column_bytes(st->rsel_seq, 1)))
          rc = qb_fail(err, QB_NOMEM, "document store: out of memory");
        got = 1;
      }
    } else if (r != SQLITE_DONE) {
      rc = sqerr(err, st->rdb, "read document");
    }
    sqlite3_reset(st->rsel_seq);
    if (!rc && !got) rc = get_by_id(st, ids[i], out, &got, err);
    off[i] = at;
    len[i] = got > 0 ? out->len - at : SIZE_MAX;
  }
  if (txn) run1(st->rend);
  pthread_mutex_unlock(&st->rlock);
  return rc;
}

qb_code qi__store_checkpoint(qi__store *st, qb_err *err) {
  if (sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
    return sqerr(err, st->db, "checkpoint");
  return QB_OK;
}
