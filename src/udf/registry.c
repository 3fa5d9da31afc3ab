/* registry.c: UDF versions persisted in SQLite (WAL) and the cache of loaded versions.
** Schema (docs/udf.md):
**   qu_udfs(name PRIMARY KEY, current, last_version)
**   qu_versions(name, version, manifest, wasm, sha256, size, created_ms, kind, export)
** The cache is a list of qu_udf under MU. The registry holds one reference on each name's
** current version (reg_current); searches hold their own. Invariant: an entry is in the list
** exactly while its refcount is > 0, and refcounts of registry entries only change under MU,
** so acquire never revives a version that is being freed. */
#include "udf.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct qu_registry {
  pthread_mutex_t mu;
  sqlite3 *db;
  qw_engine *engine;
  qu_options opts;
  qu_udf *cache;      /* loaded versions */
  qu__stats *stats;   /* per name, kept until close */
  uint64_t swept_ns;  /* the last unload_idle sweep */
  char *seq_path;     /* PATH.seq: the watermark file (below); NULL for ":memory:" */
  uint64_t changes;   /* committed changes, as qu_meta and the watermark file say */
};

static const char *const schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS qu_udfs("
    "  name TEXT PRIMARY KEY, current INTEGER NOT NULL, last_version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS qu_versions("
    "  name TEXT NOT NULL, version INTEGER NOT NULL, manifest TEXT NOT NULL,"
    "  wasm BLOB NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL, kind TEXT NOT NULL, export TEXT NOT NULL,"
    "  PRIMARY KEY(name, version));"
    "CREATE TABLE IF NOT EXISTS qu_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

/* The watermark (issue 13 #7): every committed change bumps qu_meta.changes in its transaction,
** and then PATH.seq is rewritten (tmp + fsync + rename) with the new count. At open, a store
** whose count is below the file's lost acknowledged changes (a damaged or deleted
** registry.db-wal after a crash, or a deleted registry.db: a deploy reverted from v3 to v2, or
** every UDF gone without a word): the open fails with QB_CORRUPT and says what to do, instead
** of serving old versions. A store ahead of the file is normal (a crash between the commit and
** the file's rename). */
static uint64_t read_seq(const char *path, int *found) {
  FILE *f = fopen(path, "r");
  unsigned long long v = 0;
  *found = 0;
  if (!f) return 0;
  *found = fscanf(f, "%llu", &v) == 1;
  fclose(f);
  return v;
}

static void write_seq(qu_registry *r) {
  if (!r->seq_path) return;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", r->seq_path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return qb_log(QB_WARN, "udf registry: cannot write %s: %s", tmp, strerror(errno));
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)r->changes);
  int ok = write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, r->seq_path))
    qb_log(QB_WARN, "udf registry: cannot write %s: %s", r->seq_path, strerror(errno));
}

static qb_code db_fail(qu_registry *r, qb_err *err, const char *what) {
  int ec = sqlite3_errcode(r->db);
  qb_code code = (ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB) ? QB_CORRUPT
                 : ec == SQLITE_NOMEM ? QB_NOMEM : QB_IO;
  return qb_fail(err, code, "udf registry: %s: %s", what, sqlite3_errmsg(r->db));
}

qb_code qu_registry_open(qw_engine *engine, const char *path, const qu_options *opts,
                         qu_registry **out, qb_err *err) {
  qu_registry *r;
  *out = NULL;
  if (sodium_init() < 0) return qb_fail(err, QB_INTERNAL, "udf registry: libsodium init failed");
  if (!(r = qb_calloc(1, sizeof *r))) return qb_fail(err, QB_NOMEM, "udf registry: out of memory");
  pthread_mutex_init(&r->mu, NULL);
  r->engine = engine;
  if (opts) r->opts = *opts;
  int rc = sqlite3_open_v2(path, &r->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           NULL);
  if (rc != SQLITE_OK) {
    qb_code c = qb_fail(err, QB_IO, "udf registry: cannot open %s: %s", path,
                        r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
    qu_registry_close(r);
    return c;
  }
  sqlite3_busy_timeout(r->db, 5000);
  if (sqlite3_exec(r->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
    qb_code c = db_fail(r, err, path);
    qu_registry_close(r);
    return c;
  }
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(r->db, "SELECT v FROM qu_meta WHERE k = 'changes'", -1, &st, NULL) ==
      SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) r->changes = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  if (strcmp(path, ":memory:")) {
    size_t n = strlen(path);
    if (!(r->seq_path = qb_malloc(n + 5))) {
      qu_registry_close(r);
      return qb_fail(err, QB_NOMEM, "udf registry: out of memory");
    }
    memcpy(r->seq_path, path, n);
    memcpy(r->seq_path + n, ".seq", 5);
    int found;
    uint64_t mark = read_seq(r->seq_path, &found);
    if (found && mark > r->changes) {
      qb_code c = qb_fail(err, QB_CORRUPT, "udf registry %s is behind its watermark (%llu "
                          "committed changes recorded in %s, %llu in the store): acknowledged "
                          "deploys, rollbacks or deletes were lost (registry.db-wal damaged or "
                          "deleted?); restore the registry, or remove both files to start empty",
                          path, (unsigned long long)mark, r->seq_path,
                          (unsigned long long)r->changes);
      qb_log(QB_ERROR, "%s", err ? err->msg : "udf registry: behind its watermark");
      qu_registry_close(r);
      return c;
    }
  }
  *out = r;
  return QB_OK;
}

void qu_registry_close(qu_registry *r) {
  if (!r) return;
  /* no compile job of ours may outlive us */
  if (r->opts.compiler) qu__compiler_forget(r->opts.compiler, r);
  /* drop the registry's own references; every search handle must be gone already */
  while (r->cache) {
    qu_udf *u = r->cache;
    r->cache = u->next;
    u->reg = NULL;
    qu__udf_destroy(u);
  }
  while (r->stats) {
    qu__stats *s = r->stats;
    r->stats = s->next;
    qb_free(s, sizeof *s);
  }
  if (r->db) sqlite3_close(r->db);
  if (r->seq_path) qb_free(r->seq_path, strlen(r->seq_path) + 1);
  pthread_mutex_destroy(&r->mu);
  qb_free(r, sizeof *r);
}

/* ---- the cache (callers hold r->mu) -------------------------------------------------------- */

static void unlink_entry(qu_registry *r, qu_udf *u) {
  for (qu_udf **pp = &r->cache; *pp; pp = &(*pp)->next)
    if (*pp == u) {
      *pp = u->next;
      return;
    }
}

/* Drop one reference under MU; the last one unlinks and frees. */
static void release_locked(qu_registry *r, qu_udf *u) {
  uint32_t prev = atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel);
  QB_ASSERT(prev > 0);
  if (prev == 1) {
    unlink_entry(r, u);
    u->reg = NULL;
    qu__udf_destroy(u);
  }
}

void qu__registry_release(qu_registry *r, qu_udf *u) {
  pthread_mutex_lock(&r->mu);
  release_locked(r, u);
  pthread_mutex_unlock(&r->mu);
}

/* NAME's current version is no longer current (deploy, rollback, delete). DEAD: also make
** every loaded version of NAME unreachable (delete: a later v1 is different bytes). */
static void drop_current(qu_registry *r, const char *name, int dead) {
  qu_udf *u = r->cache, *next;
  for (; u; u = next) {
    next = u->next;
    if (strcmp(u->m->name, name)) continue;
    if (dead) u->dead = 1;
    if (u->reg_current) {
      u->reg_current = 0;
      release_locked(r, u);
    }
  }
}

static qu__stats *stats_for(qu_registry *r, const char *name) {
  qu__stats *s;
  for (s = r->stats; s; s = s->next)
    if (!strcmp(s->name, name)) {
      s->deleted = 0; /* only reached for a UDF the store holds: it was deployed again */
      return s;
    }
  if (!(s = qb_calloc(1, sizeof *s))) return NULL;
  snprintf(s->name, sizeof s->name, "%s", name);
  s->next = r->stats;
  r->stats = s;
  return s;
}

/* ---- SQL helpers ------------------------------------------------------------------------------ */

static qb_code prep(qu_registry *r, const char *sql, sqlite3_stmt **st, qb_err *err) {
  if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK) return db_fail(r, err, "prepare");
  return QB_OK;
}

/* Current and last version of NAME; QB_NOTFOUND when unknown. */
static qb_code head(qu_registry *r, const char *name, uint32_t *current, uint32_t *last,
                    qb_err *err) {
  sqlite3_stmt *st;
  qb_code rc;
  if ((rc = prep(r, "SELECT current, last_version FROM qu_udfs WHERE name = ?", &st, err)))
    return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    *current = (uint32_t)sqlite3_column_int64(st, 0);
    *last = (uint32_t)sqlite3_column_int64(st, 1);
    rc = QB_OK;
  } else if (s == SQLITE_DONE) {
    rc = qb_fail(err, QB_NOTFOUND, "udf %.64s: no such udf", name);
  } else {
    rc = db_fail(r, err, "read");
  }
  sqlite3_finalize(st);
  return rc;
}

static void fill_info(sqlite3_stmt *st, uint32_t current, qu_version_info *info) {
  /* columns: name, version, sha256, size, created_ms, kind, export */
  memset(info, 0, sizeof *info);
  snprintf(info->name, sizeof info->name, "%s", (const char *)sqlite3_column_text(st, 0));
  info->version = (uint32_t)sqlite3_column_int64(st, 1);
  snprintf(info->sha256, sizeof info->sha256, "%s", (const char *)sqlite3_column_text(st, 2));
  info->size_bytes = (uint64_t)sqlite3_column_int64(st, 3);
  info->created_ms = sqlite3_column_int64(st, 4);
  const char *k = (const char *)sqlite3_column_text(st, 5);
  for (int i = 0; i < 4; i++)
    if (k && !strcmp(k, qu_kind_name((qu_kind)i))) info->kind = (qu_kind)i;
  snprintf(info->export_name, sizeof info->export_name, "%s",
           (const char *)sqlite3_column_text(st, 6));
  info->current = info->version == current;
}

#define INFO_COLS "name, version, sha256, size, created_ms, kind, export"

static void sha256_hex(const uint8_t *p, size_t n, char hex[65]) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, p, n);
  sodium_bin2hex(hex, 65, h, sizeof h);
}

/* Insert VERSION (and the head row) inside a transaction the caller opened. */
static qb_code insert_version(qu_registry *r, const qu_manifest *m, const char *manifest_text,
                              uint32_t version, const uint8_t *wasm, size_t len,
                              const char *sha, int64_t now_ms, int make_current, qb_err *err) {
  sqlite3_stmt *st;
  qb_code rc;
  if ((rc = prep(r,
                 "INSERT INTO qu_versions(name, version, manifest, wasm, sha256, size, "
                 "created_ms, kind, export) VALUES(?,?,?,?,?,?,?,?,?)",
                 &st, err)))
    return rc;
  sqlite3_bind_text(st, 1, m->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_text(st, 3, manifest_text, -1, SQLITE_STATIC);
  sqlite3_bind_blob64(st, 4, wasm, len, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, sha, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, (sqlite3_int64)len);
  sqlite3_bind_int64(st, 7, now_ms);
  sqlite3_bind_text(st, 8, qu_kind_name(m->kind), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 9, m->export_name, -1, SQLITE_STATIC);
  int s = sqlite3_step(st);
  sqlite3_finalize(st);
  if (s != SQLITE_DONE) return db_fail(r, err, "insert version");
  if ((rc = prep(r,
                 "INSERT INTO qu_udfs(name, current, last_version) VALUES(?1, ?2, ?2) "
                 "ON CONFLICT(name) DO UPDATE SET "
                 "current = CASE WHEN ?3 THEN ?2 ELSE current END, "
                 "last_version = max(last_version, ?2)",
                 &st, err)))
    return rc;
  sqlite3_bind_text(st, 1, m->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_int(st, 3, make_current);
  s = sqlite3_step(st);
  sqlite3_finalize(st);
  if (s != SQLITE_DONE) return db_fail(r, err, "update head");
  return QB_OK;
}

static qb_code begin(qu_registry *r, qb_err *err) {
  if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return db_fail(r, err, "begin");
  return QB_OK;
}
static qb_code commit(qu_registry *r, qb_code rc, qb_err *err) {
  if (rc) {
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  char sql[96];
  snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO qu_meta VALUES('changes', %llu)",
           (unsigned long long)(r->changes + 1));
  if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    rc = db_fail(r, err, "commit");
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  r->changes++;
  write_seq(r); /* after the store has it: the file never claims more than the store holds */
  return rc;
}

/* Keep NAME's newest versions_kept versions and its current one; older ones go (inside the
** deploy's transaction, so a failed deploy prunes nothing). 507 versions of one UDF in a minute
** used to stay forever (issue 13 #9). */
static qb_code prune(qu_registry *r, const char *name, qb_err *err) {
  sqlite3_stmt *st;
  qb_code rc;
  uint32_t keep = r->opts.versions_kept ? r->opts.versions_kept : 10;
  if ((rc = prep(r, "DELETE FROM qu_versions WHERE name = ?1 AND version NOT IN "
                    "(SELECT current FROM qu_udfs WHERE name = ?1) AND version NOT IN "
                    "(SELECT version FROM qu_versions WHERE name = ?1 ORDER BY version DESC "
                    "LIMIT ?2)", &st, err)))
    return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, keep);
  if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(r, err, "prune");
  int pruned = sqlite3_changes(r->db);
  sqlite3_finalize(st);
  if (!rc && pruned)
    qb_log(QB_INFO, "UDF %s: %d old versions pruned (the newest %u and the current are kept)",
           name, pruned, keep);
  return rc;
}

/* Current versions loaded but unused for idle_unload_ms lose the registry's reference, so their
** module and idle instances are freed once no search holds them (20 big UDFs held 768 MB).
** Called under mu, from acquire, at most once a second. */
static void unload_idle(qu_registry *r, uint64_t now) {
  if (now - r->swept_ns < 1000000000u) return;
  r->swept_ns = now;
  uint64_t idle = (uint64_t)(r->opts.idle_unload_ms ? r->opts.idle_unload_ms : 300000) * 1000000u;
  qu_udf *u = r->cache, *next;
  for (; u; u = next) {
    next = u->next;
    if (u->reg_current && now - u->last_used_ns > idle) {
      qb_log(QB_INFO, "UDF %s v%u unloaded after %u ms unused (reloaded on next use)",
             u->m->name, u->version, (unsigned)(idle / 1000000u));
      u->reg_current = 0;
      release_locked(r, u); /* may free U */
    }
  }
}

/* ---- deploy / install ------------------------------------------------------------------------ */

/* Decode + validate + complete + check, outside the lock. */
static qb_code prepare_manifest(qu_registry *r, const char *name, const char *mjson,
                                size_t mlen, const uint8_t *wasm, size_t len, qu_manifest **m,
                                qb_buf *text, qb_err *err) {
  qw_module *mod;
  qb_code rc;
  *m = NULL;
  if (name && !qu_name_valid(name))
    return qb_fail(err, QB_INVAL, "udf: \"%.64s\" is not a valid udf name (1-64 of A-Z a-z 0-9 "
                   "_ . -)", name);
  uint64_t max = r->opts.max_module_bytes ? r->opts.max_module_bytes : (uint64_t)10 << 20;
  if (len > max)
    return qb_fail(err, QB_LIMIT, "udf %s: the module is %zu bytes, larger than the limit of "
                   "%llu bytes (max_module_bytes)", name ? name : "", len,
                   (unsigned long long)max);
  if ((rc = qw_module_load(r->engine, wasm, len, &mod, err))) {
    qb_wrap(err, "udf %s: module: ", name ? name : "");
    return rc;
  }
  rc = qu_manifest_complete(mjson, mjson ? mlen : 0, name, mod, m, err);
  qw_module_free(mod);
  if (rc) return rc;
  /* a trial instance: linking (WASI signatures), the start function, _initialize, the ABI
  ** version and the memory cap are checked now, not at the first search */
  qu_udf *trial;
  qu__inst *in;
  qu_options topts = r->opts;
  topts.compiler = NULL; /* the trial never runs a block */
  if (!(rc = qu__udf_new(r->engine, *m, 0, wasm, len, &topts, NULL, &trial, err))) {
    if (!(rc = qu__inst_checkout(trial, &in, err))) qu__inst_checkin(trial, in, 1);
    qu__udf_destroy(trial);
  }
  if (rc) {
    qu_manifest_free(*m);
    *m = NULL;
    return rc;
  }
  if (qu_manifest_json(*m, text)) {
    qu_manifest_free(*m);
    *m = NULL;
    return qb_fail(err, QB_NOMEM, "udf: out of memory");
  }
  return QB_OK;
}

qb_code qu_registry_deploy(qu_registry *r, const char *name, const char *manifest_json,
                           size_t manifest_len, const uint8_t *wasm, size_t len,
                           qu_version_info *info, qb_err *err) {
  qu_manifest *m;
  qb_buf text;
  qb_code rc;
  char sha[65];
  uint32_t cur = 0, last = 0, v = 0;
  qb_buf_init(&text);
  if ((rc = prepare_manifest(r, name, manifest_json, manifest_len, wasm, len, &m, &text, err))) {
    qb_buf_fini(&text);
    return rc;
  }
  sha256_hex(wasm, len, sha);
  int64_t now = qb_wall_ms();
  pthread_mutex_lock(&r->mu);
  if (!(rc = begin(r, err))) {
    rc = head(r, m->name, &cur, &last, err);
    if (rc == QB_NOTFOUND) rc = QB_OK;
    v = last + 1;
    if (!rc) rc = insert_version(r, m, text.data, v, wasm, len, sha, now, 1, err);
    if (!rc) rc = prune(r, m->name, err);
    rc = commit(r, rc, err);
  }
  if (!rc) {
    drop_current(r, m->name, 0);
    if (info) {
      memset(info, 0, sizeof *info);
      snprintf(info->name, sizeof info->name, "%s", m->name);
      info->version = v;
      info->current = 1;
      memcpy(info->sha256, sha, sizeof sha);
      info->size_bytes = len;
      info->created_ms = now;
      info->kind = m->kind;
      snprintf(info->export_name, sizeof info->export_name, "%s", m->export_name);
    }
  }
  pthread_mutex_unlock(&r->mu);
  char sz[QB_SIZE_STR];
  if (!rc) qb_log(QB_INFO, "UDF deployed: %s (v%u, %s)", m->name, v, qb_size_str(len, sz));
  qu_manifest_free(m);
  qb_buf_fini(&text);
  return rc;
}

qb_code qu_registry_install(qu_registry *r, const char *manifest_json, size_t manifest_len,
                            uint32_t version, const uint8_t *wasm, size_t len, int current,
                            qb_err *err) {
  qu_manifest *m;
  qb_buf text;
  qb_code rc;
  char sha[65];
  sqlite3_stmt *st;
  if (!version) return qb_fail(err, QB_INVAL, "udf: version must be 1 or more");
  qb_buf_init(&text);
  if ((rc = prepare_manifest(r, NULL, manifest_json, manifest_len, wasm, len, &m, &text, err))) {
    qb_buf_fini(&text);
    return rc;
  }
  sha256_hex(wasm, len, sha);
  pthread_mutex_lock(&r->mu);
  if (!(rc = begin(r, err))) {
    if (!(rc = prep(r, "SELECT sha256 FROM qu_versions WHERE name = ? AND version = ?", &st,
                    err))) {
      sqlite3_bind_text(st, 1, m->name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, version);
      int s = sqlite3_step(st);
      int exists = s == SQLITE_ROW;
      if (exists && strcmp((const char *)sqlite3_column_text(st, 0), sha))
        rc = qb_fail(err, QB_CONFLICT, "udf %s: v%u is already stored with other bytes",
                     m->name, version);
      else if (s != SQLITE_ROW && s != SQLITE_DONE)
        rc = db_fail(r, err, "read");
      sqlite3_finalize(st);
      if (!rc && !exists)
        rc = insert_version(r, m, text.data, version, wasm, len, sha, qb_wall_ms(), current,
                            err);
      if (!rc && exists && current) {
        if (!(rc = prep(r, "UPDATE qu_udfs SET current = ? WHERE name = ?", &st, err))) {
          sqlite3_bind_int64(st, 1, version);
          sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
          if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(r, err, "update head");
          sqlite3_finalize(st);
        }
      }
      if (!rc) rc = prune(r, m->name, err);
    }
    rc = commit(r, rc, err);
  }
  if (!rc && current) drop_current(r, m->name, 0);
  pthread_mutex_unlock(&r->mu);
  qu_manifest_free(m);
  qb_buf_fini(&text);
  return rc;
}

/* ---- reads ------------------------------------------------------------------------------------ */

qb_code qu_registry_list(qu_registry *r, qu_version_fn fn, void *ud, qb_err *err) {
  sqlite3_stmt *st;
  qb_code rc;
  pthread_mutex_lock(&r->mu);
  if (!(rc = prep(r,
                  "SELECT v.name, v.version, v.sha256, v.size, v.created_ms, v.kind, v.export "
                  "FROM qu_udfs u JOIN qu_versions v ON v.name = u.name AND v.version = "
                  "u.current ORDER BY u.name",
                  &st, err))) {
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
      qu_version_info info;
      fill_info(st, (uint32_t)sqlite3_column_int64(st, 1), &info);
      if (fn(ud, &info)) {
        s = SQLITE_DONE;
        break;
      }
    }
    if (s != SQLITE_DONE) rc = db_fail(r, err, "list");
    sqlite3_finalize(st);
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

qb_code qu_registry_versions(qu_registry *r, const char *name, qu_version_fn fn, void *ud,
                             qb_err *err) {
  sqlite3_stmt *st;
  qb_code rc;
  uint32_t cur, last;
  pthread_mutex_lock(&r->mu);
  if (!(rc = head(r, name, &cur, &last, err)) &&
      !(rc = prep(r, "SELECT " INFO_COLS " FROM qu_versions WHERE name = ? ORDER BY version",
                  &st, err))) {
    int s;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
      qu_version_info info;
      fill_info(st, cur, &info);
      if (fn(ud, &info)) {
        s = SQLITE_DONE;
        break;
      }
    }
    if (s != SQLITE_DONE) rc = db_fail(r, err, "versions");
    sqlite3_finalize(st);
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* Read VERSION (0 = current) of NAME under MU. */
static qb_code get_locked(qu_registry *r, const char *name, uint32_t version,
                          qu_version_info *info, qb_buf *manifest, qb_buf *wasm, qb_err *err) {
  sqlite3_stmt *st;
  qb_code rc;
  uint32_t cur, last;
  if ((rc = head(r, name, &cur, &last, err))) return rc;
  if (!version) version = cur;
  if ((rc = prep(r,
                 "SELECT " INFO_COLS ", manifest, wasm FROM qu_versions "
                 "WHERE name = ? AND version = ?",
                 &st, err)))
    return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    if (info) fill_info(st, cur, info);
    if (manifest && qb_buf_append(manifest, sqlite3_column_text(st, 7),
                                  (size_t)sqlite3_column_bytes(st, 7)))
      rc = qb_fail(err, QB_NOMEM, "udf: out of memory");
    if (!rc && wasm && qb_buf_append(wasm, sqlite3_column_blob(st, 8),
                                     (size_t)sqlite3_column_bytes(st, 8)))
      rc = qb_fail(err, QB_NOMEM, "udf: out of memory");
  } else if (s == SQLITE_DONE) {
    rc = qb_fail(err, QB_NOTFOUND, "udf %.64s: no version v%u", name, version);
  } else {
    rc = db_fail(r, err, "read");
  }
  sqlite3_finalize(st);
  return rc;
}

qb_code qu_registry_get(qu_registry *r, const char *name, uint32_t version,
                        qu_version_info *info, qb_buf *manifest_json, qb_buf *wasm,
                        qb_err *err) {
  pthread_mutex_lock(&r->mu);
  qb_code rc = get_locked(r, name, version, info, manifest_json, wasm, err);
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* ---- changes ---------------------------------------------------------------------------------- */

qb_code qu_registry_rollback(qu_registry *r, const char *name, uint32_t version, qb_err *err) {
  qb_code rc;
  qu_version_info info;
  sqlite3_stmt *st;
  if (!version) return qb_fail(err, QB_INVAL, "udf %.64s: rollback needs a version (v1, v2, ...)",
                               name);
  pthread_mutex_lock(&r->mu);
  if (!(rc = begin(r, err))) { /* a transaction of its own: it counts in the watermark */
    if (!(rc = get_locked(r, name, version, &info, NULL, NULL, err)) &&
        !(rc = prep(r, "UPDATE qu_udfs SET current = ? WHERE name = ?", &st, err))) {
      sqlite3_bind_int64(st, 1, version);
      sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
      if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(r, err, "rollback");
      sqlite3_finalize(st);
    }
    rc = commit(r, rc, err);
    if (!rc && !info.current) drop_current(r, name, 0);
  }
  pthread_mutex_unlock(&r->mu);
  if (!rc) qb_log(QB_INFO, "UDF rolled back: %s (now v%u)", name, version);
  return rc;
}

qb_code qu_registry_delete(qu_registry *r, const char *name, qb_err *err) {
  qb_code rc;
  uint32_t cur, last;
  pthread_mutex_lock(&r->mu);
  if (!(rc = begin(r, err))) {
    rc = head(r, name, &cur, &last, err);
    const char *sql[2] = {"DELETE FROM qu_versions WHERE name = ?",
                          "DELETE FROM qu_udfs WHERE name = ?"};
    for (int i = 0; i < 2 && !rc; i++) {
      sqlite3_stmt *st;
      if ((rc = prep(r, sql[i], &st, err))) break;
      sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
      if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(r, err, "delete");
      sqlite3_finalize(st);
    }
    rc = commit(r, rc, err);
  }
  if (!rc) {
    drop_current(r, name, 1);
    for (qu__stats *s = r->stats; s; s = s->next) /* kept (loaded code points at it), unlisted */
      if (!strcmp(s->name, name)) s->deleted = 1;
  }
  pthread_mutex_unlock(&r->mu);
  if (!rc) qb_log(QB_INFO, "UDF deleted: %s", name);
  return rc;
}

qb_code qu_registry_acquire(qu_registry *r, const char *name, uint32_t version, qu_udf **out,
                            qb_err *err) {
  qu_udf *u;
  qb_code rc;
  qb_buf mtext, wasm;
  qu_version_info info;
  qu_manifest *m = NULL;
  *out = NULL;
  pthread_mutex_lock(&r->mu);
  unload_idle(r, qb_now_ns());
  for (u = r->cache; u; u = u->next) {
    if (u->dead || strcmp(u->m->name, name)) continue;
    if (version ? u->version == version : u->reg_current) {
      u->last_used_ns = qb_now_ns();
      uint32_t prev = atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
      QB_ASSERT(prev > 0); /* the cache holds only entries with a reference */
      *out = u;
      pthread_mutex_unlock(&r->mu);
      return QB_OK;
    }
  }
  qb_buf_init(&mtext);
  qb_buf_init(&wasm);
  if ((rc = get_locked(r, name, version, &info, &mtext, &wasm, err))) goto done;
  if ((rc = qu_manifest_parse(mtext.data, mtext.len, &m, err))) {
    qb_wrap(err, "udf %s v%u: stored manifest: ", name, info.version);
    rc = QB_CORRUPT;
    if (err) err->code = QB_CORRUPT;
    goto done;
  }
  qu__stats *stats = stats_for(r, name);
  if (!stats) {
    rc = qb_fail(err, QB_NOMEM, "udf: out of memory");
    goto done;
  }
  if ((rc = qu__udf_new(r->engine, m, info.version, (const uint8_t *)wasm.data, wasm.len,
                        &r->opts, stats, &u, err)))
    goto done;
  u->reg = r;
  u->last_used_ns = qb_now_ns();
  u->next = r->cache;
  r->cache = u;
  if (info.current) {
    atomic_store(&stats->version, info.version);
    u->reg_current = 1; /* the registry's reference */
    atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
  }
  if (stats->artifact_version == info.version)
    memcpy(u->status.artifact, stats->artifact_note, sizeof u->status.artifact);
  *out = u;
done:
  pthread_mutex_unlock(&r->mu);
  if (!rc) qu__tier_start(u); /* outside the lock: a pinned-native compile takes a while */
  qu_manifest_free(m);
  qb_buf_fini(&mtext);
  qb_buf_fini(&wasm);
  return rc;
}

void qu_registry_stats(qu_registry *r, qu_stats_fn fn, void *ud) {
  pthread_mutex_lock(&r->mu);
  for (qu__stats *s = r->stats; s; s = s->next) {
    if (s->deleted) continue;
    qu_stats snap;
    qu__stats_snapshot(s, &snap);
    fn(ud, &snap);
  }
  pthread_mutex_unlock(&r->mu);
}

/* ---- the native tier: status and uploaded artifacts ----------------------------------------- */

qb_code qu_registry_tier_status(qu_registry *r, const char *name, uint32_t version,
                                qu_tier_status *out, qb_err *err) {
  qu_udf *u;
  uint32_t cur, last;
  qb_code rc;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&r->mu);
  if ((rc = head(r, name, &cur, &last, err))) {
    pthread_mutex_unlock(&r->mu);
    return rc;
  }
  if (!version) version = cur;
  for (u = r->cache; u; u = u->next)
    if (!u->dead && u->version == version && !strcmp(u->m->name, name)) break;
  if (u) {
    qu_udf_tier_status(u, out);
  } else {
    qu__stats *s = stats_for(r, name);
    out->origin = QU_ORIGIN_INTERP;
    out->state = QU_NATIVE_OFF;
    snprintf(out->reason, sizeof out->reason, "%s",
             r->opts.compiler ? "not loaded on this node yet" : "this node has no native compiler");
    if (s && s->artifact_version == version)
      memcpy(out->artifact, s->artifact_note, sizeof out->artifact);
  }
  pthread_mutex_unlock(&r->mu);
  return QB_OK;
}

/* Keep NOTE about VERSION's artifact for the status (under MU). */
static void artifact_note(qu_registry *r, const char *name, uint32_t version, const char *note) {
  qu__stats *s = stats_for(r, name);
  if (s) {
    s->artifact_version = version;
    snprintf(s->artifact_note, sizeof s->artifact_note, "%s", note);
  }
  for (qu_udf *u = r->cache; u; u = u->next)
    if (!u->dead && u->version == version && !strcmp(u->m->name, name)) {
      pthread_mutex_lock(&u->tier_mu);
      snprintf(u->status.artifact, sizeof u->status.artifact, "%s", note);
      pthread_mutex_unlock(&u->tier_mu);
    }
}

qb_code qu_registry_offer_artifact(qu_registry *r, const char *name, uint32_t version,
                                   const uint8_t *artifact, size_t len, const uint8_t *sig,
                                   size_t sig_len, qb_err *err) {
  qu_compiler *c = r->opts.compiler;
  qu_version_info info;
  qu_artifact a;
  qu__key key;
  uint8_t sha[32];
  qb_code rc;
  char note[200];
  qb_err local;
  if (!err) err = &local;
  pthread_mutex_lock(&r->mu);
  rc = get_locked(r, name, version, &info, NULL, NULL, err);
  pthread_mutex_unlock(&r->mu);
  if (rc) return rc;
  if (!c || !qu__compiler_cache(c))
    rc = qb_fail(err, QB_UNAVAILABLE, "this node has no native tier (with a cache)");
  else if (qu__compiler_pin(c) == QU_PIN_INTERP)
    rc = qb_fail(err, QB_UNAVAILABLE, "the node is pinned to the interpreter");
  else if (!(rc = qu__trust_verify(qu__compiler_trust(c), artifact, len, sig, sig_len, err)) &&
           !(rc = qu_artifact_parse(artifact, len, &a, err))) {
    size_t got = 0;
    if (sodium_hex2bin(sha, sizeof sha, info.sha256, 64, NULL, &got, NULL) || got != 32)
      rc = qb_fail(err, QB_CORRUPT, "udf %s v%u: stored hash is not hex", name, info.version);
    else {
      qu__key_of(c, sha, &key);
      if (!(rc = qu__artifact_match(&a, &key, err)))
        rc = qu__cache_put(qu__compiler_cache(c), &key, QU_ARTIFACT_AOT, a.object, a.object_len,
                           err);
    }
  }
  if (rc) {
    snprintf(note, sizeof note, "uploaded artifact not used: %.130s; the node runs the WASM",
             err->msg);
    qb_log(QB_WARN, "UDF %s v%u: %s", name, info.version, note);
  } else {
    snprintf(note, sizeof note, "uploaded artifact accepted (signed by a trusted key, %s)",
             a.triple);
    qb_log(QB_INFO, "UDF %s v%u: %s", name, info.version, note);
  }
  pthread_mutex_lock(&r->mu);
  artifact_note(r, name, info.version, note);
  pthread_mutex_unlock(&r->mu);
  return rc;
}
