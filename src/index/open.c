/* open.c: creating, opening and destroying an index directory: the create body, the stored
** settings and mapping, loading segment files, and replaying the store past them (index.c's
** writer state, in internal.h). Invariant: after a successful open, the _id map holds exactly
** the documents the store holds, each at its newest (segment, doc). */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static qi_index *index_alloc(const char *dir, const qi_options *opt) {
  qi_index *ix = qb_calloc(1, sizeof *ix);
  size_t n = strlen(dir);
  int fd;
  if (!ix) return NULL;
  if (!(ix->dir = qb_malloc(n + 1))) {
    qb_free(ix, sizeof *ix);
    return NULL;
  }
  memcpy(ix->dir, dir, n + 1);
  atomic_init(&ix->refs, 1);
  if (opt) ix->opt = *opt;
  pthread_mutex_init(&ix->lock, NULL);
  pthread_mutex_init(&ix->snap_lock, NULL);
  pthread_cond_init(&ix->merge_cv, NULL);
  pthread_cond_init(&ix->idle_cv, NULL);
  pthread_cond_init(&ix->persist_cv, NULL);
  pthread_cond_init(&ix->persist_idle_cv, NULL);
  ix->merge_fail_gen = UINT64_MAX;
  ix->id_seed = (uint64_t)qb_now_ns() ^ ((uint64_t)getpid() << 32);
  if ((fd = open("/dev/urandom", O_RDONLY)) >= 0) {
    if (read(fd, &ix->id_seed, sizeof ix->id_seed) < 0) ix->id_seed ^= 0x5bd1e995;
    close(fd);
  }
  return ix;
}

static qb_code set_settings(qi_index *ix, const char *s, size_t n, qb_err *err) {
  if (!(ix->settings = qb_malloc(n + 1))) return qb_fail(err, QB_NOMEM, "settings: out of memory");
  memcpy(ix->settings, s, n);
  ix->settings[n] = 0;
  ix->settings_len = n;
  return QB_OK;
}

/* Load the segments named by the commit file. On any problem, none are kept (full replay):
** *WATERMARK (where replay starts) is then 0, while *COMMITTED keeps what the commit file says
** was acknowledged, for the damage check. Each loaded segment starts with every document
** deleted: replay confirms (revives) the copies the store still holds at the same _seq_no. */
static void load_segments(qi_index *ix, uint64_t *watermark, uint64_t *committed) {
  uint32_t *nos = NULL, sc = 0;
  size_t n = 0, i;
  uint64_t wm = 0;
  qb_err err;
  qb_code rc;
  *watermark = *committed = 0;
  rc = qi__commit_read(ix->dir, &nos, &n, &wm, &sc, &err);
  if (rc == QB_NOTFOUND) return;
  if (rc) {
    qb_log(QB_WARN, "index %s: %s; rebuilding from the store", ix->dir, err.msg);
    return;
  }
  *committed = wm;
  if (qi__grow((void **)&ix->segs, &ix->segcap, n + 1, sizeof *ix->segs)) goto drop;
  for (i = 0; i < n; i++) {
    char path[4400];
    qi__seg *seg;
    uint64_t *bits;
    size_t nw;
    snprintf(path, sizeof path, "%s/seg_%08x.qis", ix->dir, nos[i]);
    if (qi__seg_read(path, 1, &seg, &err)) {
      qb_log(QB_WARN, "index %s: %s; rebuilding from the store", ix->dir, err.msg);
      goto drop;
    }
    if (seg->seg_no != nos[i] || seg->nfields > ix->map.nfields) {
      qb_log(QB_WARN, "index %s: segment %08x does not match the mapping; rebuilding", ix->dir,
             nos[i]);
      qi__seg_release(seg);
      goto drop;
    }
    nw = ((size_t)seg->max_doc + 63) / 64;
    if (!(bits = qb_calloc(nw ? nw : 1, sizeof *bits))) {
      qi__seg_release(seg);
      goto drop;
    }
    if (!nw) { /* qi__wseg_fini frees max_doc-sized bitmaps */
      qb_free(bits, sizeof *bits);
      bits = NULL;
    }
    ix->segs[ix->nseg++] =
        (wseg){.core = seg, .bits = bits, .ndel = seg->max_doc, .dirty = 1, .persisted = 1};
    if (nos[i] >= sc) sc = nos[i] + 1;
  }
  ix->seg_counter = sc;
  *watermark = wm;
  ix->committed_gen = ix->seg_gen;
  ix->committed_seq = ix->flushed_seq = wm;
  qb_free(nos, n * sizeof *nos);
  return;
drop:
  for (i = 0; i < ix->nseg; i++) qi__wseg_fini(&ix->segs[i]);
  ix->nseg = 0;
  if (sc > ix->seg_counter) ix->seg_counter = sc;
  qb_free(nos, n * sizeof *nos);
}

/* Revive the copy of ID at _seq_no SEQ in the loaded segments (the first NLOADED); 1 if found. */
static int confirm(qi_index *ix, size_t nloaded, const char *id, size_t len, uint64_t seq) {
  size_t i;
  for (i = 0; i < nloaded; i++) {
    wseg *w = &ix->segs[i];
    int64_t d = qi__seg_lookup(w->core, NULL, id, len, seq);
    if (d < 0) continue;
    if (w->bits && !((w->bits[d / 64] >> (d % 64)) & 1)) {
      w->bits[d / 64] |= 1ull << (d % 64);
      w->ndel--;
    }
    return 1;
  }
  return 0;
}

/* Bring the in-memory index up to the store: documents at or past WATERMARK (and any the
** segments lack) are indexed into the buffer, replacing older copies; segment documents the
** store no longer holds (deleted or updated since) are deleted. */
static qb_code replay(qi_index *ix, uint64_t watermark, qb_err *err) {
  sqlite3_stmt *s = NULL, *one = NULL;
  qb_code rc = QB_OK;
  int r;
  size_t i, nloaded = ix->nseg;
  uint64_t max_seq = 0, skipped = 0, replayed = 0;
  if (sqlite3_prepare_v2(ix->st.db,
                         "SELECT seq,id,version,CASE WHEN seq >= ?1 THEN source END FROM docs "
                         "ORDER BY seq", -1, &s, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(ix->st.db, "SELECT source FROM docs WHERE seq=?1", -1, &one, NULL) !=
          SQLITE_OK) {
    rc = qb_fail(err, QB_CORRUPT, "document store: %s", sqlite3_errmsg(ix->st.db));
    goto out;
  }
  sqlite3_bind_int64(s, 1, (sqlite3_int64)watermark);
  while ((r = sqlite3_step(s)) == SQLITE_ROW) {
    uint64_t seq = (uint64_t)sqlite3_column_int64(s, 0);
    const char *id = (const char *)sqlite3_column_text(s, 1);
    uint64_t ver = (uint64_t)sqlite3_column_int64(s, 2);
    const char *src = (const char *)sqlite3_column_blob(s, 3);
    size_t len = (size_t)sqlite3_column_bytes(s, 3);
    json_t *doc;
    qi__parsed p;
    ident *e = NULL;
    qb_err ierr;
    if (!id || qi__check_id(id, NULL)) {
      skipped++;
      continue;
    }
    if (seq + 1 > max_seq) max_seq = seq + 1;
    if (confirm(ix, nloaded, id, strlen(id), seq)) continue;
    if (!src) { /* below the watermark yet missing from the segments */
      sqlite3_bind_int64(one, 1, (sqlite3_int64)seq);
      if (sqlite3_step(one) == SQLITE_ROW) {
        src = (const char *)sqlite3_column_blob(one, 0);
        len = (size_t)sqlite3_column_bytes(one, 0);
      }
    }
    uint64_t failed = qb_alloc_failures(); /* out of memory is not a damaged document */
    doc = src ? json_loadb(src, len, 0, NULL) : NULL;
    sqlite3_reset(one);
    if (!doc && qb_alloc_failures() != failed) {
      rc = qb_fail(err, QB_NOMEM, "open: out of memory");
      break;
    }
    if (!doc) {
      skipped++;
      continue;
    }
    qi__parsed_init(&p);
    qb_code prc = qi__parse_doc(&ix->map, doc, id, &p, &ierr);
    if (prc == QB_NOMEM) {
      rc = qb_fail(err, QB_NOMEM, "open: out of memory");
    } else if (prc) {
      qb_log(QB_WARN, "index %s: stored document [%s] no longer fits the mapping: %s", ix->dir,
             id, ierr.msg);
      skipped++;
    } else if ((rc = qi__mapping_commit(&ix->map, &p, err)) ||
               !(e = qi__id_insert(ix, id, strlen(id))) || /* the store holds each _id once */
               (rc = qi__builder_add(ix->buf, &ix->map, &p, id, seq, ver, err))) {
      if (!rc) rc = qb_fail(err, QB_NOMEM, "open: out of memory");
    } else {
      e->seg_no = ix->buf_seg_no;
      e->doc = qi__builder_docs(ix->buf) - 1;
      e->version = ver;
      e->seq = seq;
      replayed++;
      if (qi__builder_docs(ix->buf) >=
          (ix->opt.max_buffered_docs ? ix->opt.max_buffered_docs : 50000))
        rc = qi__flush_buffer(ix, err);
    }
    qi__parsed_fini(&p);
    json_decref(doc);
    if (rc) break;
  }
  if (!rc && r != SQLITE_DONE)
    rc = qb_fail(err, QB_CORRUPT, "document store: %s", sqlite3_errmsg(ix->st.db));
  /* what the segments hold but the store does not (any more) stays deleted */
  ix->live_count = 0;
  for (i = 0; i < ix->nseg; i++) {
    wseg *w = &ix->segs[i];
    if (w->bits && !w->ndel) {
      qb_free(w->bits, (((size_t)w->core->max_doc + 63) / 64) * sizeof *w->bits);
      w->bits = NULL;
    }
    ix->live_count += w->core->max_doc - w->ndel;
  }
  ix->live_count += ix->nids;
  if (max_seq > ix->next_seq) ix->next_seq = max_seq;
  if (skipped)
    qb_log(QB_WARN, "index %s: %llu stored documents skipped", ix->dir, (unsigned long long)skipped);
  qb_log(QB_DEBUG, "index %s: %zu segments loaded, %llu documents replayed", ix->dir, ix->nseg,
         (unsigned long long)replayed);
out:
  sqlite3_finalize(s);
  sqlite3_finalize(one);
  return rc;
}

static qb_code open_locked(qi_index *ix, qb_err *err) {
  qb_buf b;
  qb_code rc;
  json_t *j;
  uint64_t watermark = 0, committed = 0;
  qb_buf_init(&b);
  rc = qi__store_meta_get(&ix->st, "next_seq", &b, err);
  if (!rc) ix->next_seq = strtoull(b.data, NULL, 10);
  else if (rc != QB_NOTFOUND) goto done;
  qb_buf_reset(&b);
  rc = qi__store_meta_get(&ix->st, "settings", &b, err);
  if (rc == QB_NOTFOUND) rc = set_settings(ix, "{}", 2, err);
  else if (!rc) rc = set_settings(ix, b.data, b.len, err);
  if (rc) goto done;
  qb_buf_reset(&b);
  rc = qi__store_meta_get(&ix->st, "mappings", &b, err);
  if (rc == QB_NOTFOUND) {
    rc = QB_OK;
  } else if (!rc) {
    uint64_t failed = qb_alloc_failures();
    if (!(j = json_loadb(b.data, b.len, 0, NULL))) {
      rc = qb_alloc_failures() != failed
               ? qb_fail(err, QB_NOMEM, "open: out of memory")
               : qb_fail(err, QB_CORRUPT, "index %s: stored mapping is not JSON", ix->dir);
      goto done;
    }
    rc = qi__mapping_merge_json(&ix->map, j, err);
    json_decref(j);
    if (rc && rc != QB_NOMEM) {
      qb_wrap(err, "index %s: stored mapping: ", ix->dir);
      rc = QB_CORRUPT;
      if (err) err->code = QB_CORRUPT;
      goto done;
    }
  }
  load_segments(ix, &watermark, &committed);
  /* The commit file is written only after the store committed every operation below its
  ** watermark, so a store behind it lost acknowledged writes (a damaged or deleted docs.db-wal
  ** after a crash). Replaying would quietly roll them back: refuse to open instead (issue 13 #7). */
  if (committed > ix->next_seq) {
    rc = qb_fail(err, QB_CORRUPT,
                 "the document store is behind the commit file (store next_seq %llu, committed "
                 "watermark %llu): %llu acknowledged operations are missing from docs.db "
                 "(docs.db-wal damaged or deleted?); restore the index or delete it",
                 (unsigned long long)ix->next_seq, (unsigned long long)committed,
                 (unsigned long long)(committed - ix->next_seq));
    goto done;
  }
  if (!(ix->buf = qi__builder_new(ix->seg_counter))) {
    rc = qb_fail(err, QB_NOMEM, "open: out of memory");
    goto done;
  }
  ix->buf_seg_no = ix->seg_counter++;
  if ((rc = replay(ix, watermark, err))) goto done;
  rc = qi__refresh_locked(ix, err);
done:
  qb_buf_fini(&b);
  return rc;
}

/* Nobody else sees IX yet, but the writer's helpers run as everywhere: under ix->lock. */
static qb_code open_common(qi_index *ix, qb_err *err) {
  qb_code rc;
  qi__lock(ix);
  rc = open_locked(ix, err);
  qi__unlock(ix);
  return rc;
}

qb_code qi_index_open(const char *dir, const qi_options *opt, qi_index **out, qb_err *err) {
  qi_index *ix;
  qb_code rc;
  struct stat stt;
  char path[4096];
  *out = NULL;
  snprintf(path, sizeof path, "%s/docs.db", dir);
  if (stat(path, &stt)) return qb_fail(err, QB_NOTFOUND, "no such index [%s]", dir);
  if (!(ix = index_alloc(dir, opt))) return qb_fail(err, QB_NOMEM, "open: out of memory");
  if ((rc = qi__store_open(&ix->st, dir, 0, ix->opt.sync_normal, err)) ||
      (rc = open_common(ix, err))) {
    qi__index_free(ix);
    return rc;
  }
  qi__merger_start(ix);
  qi__persister_start(ix);
  *out = ix;
  return QB_OK;
}

qb_code qi_index_create(const char *dir, const char *body_json, const qi_options *opt,
                        qi_index **out, qb_err *err) {
  qi_index *ix = NULL;
  json_t *body = NULL, *settings, *mappings;
  json_error_t jerr;
  qi__mapping probe = {0};
  struct stat stt;
  char path[4096], *sj = NULL; /* jansson's, NULL for no settings */
  qb_code rc;
  qb_buf mb;
  *out = NULL;
  if (body_json && *body_json) {
    const char *k;
    json_t *v;
    uint64_t failed = qb_alloc_failures();
    body = json_loads(body_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!body && qb_alloc_failures() != failed)
      return qb_fail(err, QB_NOMEM, "create: out of memory");
    if (!body || !json_is_object(body)) {
      json_decref(body);
      return qb_fail(err, QB_INVAL, "failed to parse index body: %s",
                     body ? "not a JSON object" : jerr.text);
    }
    json_object_foreach(body, k, v) {
      if (strcmp(k, "settings") && strcmp(k, "mappings") && strcmp(k, "aliases")) {
        qb_fail(err, QB_INVAL, "unknown key [%s] for create index", k); /* K dies with BODY */
        json_decref(body);
        return QB_INVAL;
      }
    }
  }
  settings = body ? json_object_get(body, "settings") : NULL;
  mappings = body ? json_object_get(body, "mappings") : NULL;
  if (settings && !json_is_object(settings)) {
    json_decref(body);
    return qb_fail(err, QB_INVAL, "settings must be a JSON object");
  }
  /* validate the mapping before touching the disk */
  if ((rc = qi__mapping_merge_json(&probe, mappings, err))) {
    qi__mapping_fini(&probe);
    json_decref(body);
    return rc;
  }
  qi__mapping_fini(&probe);
  if (mkdir(dir, 0755) && errno != EEXIST) {
    json_decref(body);
    return qb_fail(err, QB_IO, "cannot create index directory %s: %s", dir, strerror(errno));
  }
  snprintf(path, sizeof path, "%s/docs.db", dir);
  if (!stat(path, &stt)) {
    json_decref(body);
    return qb_fail(err, QB_CONFLICT, "index [%s] already exists", dir);
  }
  if (!(ix = index_alloc(dir, opt))) {
    json_decref(body);
    return qb_fail(err, QB_NOMEM, "create: out of memory");
  }
  sj = settings ? json_dumps(settings, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  qb_buf_init(&mb);
  if ((rc = qi__mapping_merge_json(&ix->map, mappings, err)) ||
      (rc = qi__mapping_to_json(&ix->map, &mb, err)))
    goto fail;
  if (settings && !sj) {
    rc = qb_fail(err, QB_NOMEM, "create: out of memory");
    goto fail;
  }
  if ((rc = qi__store_open(&ix->st, dir, 1, ix->opt.sync_normal, err)) ||
      (rc = qi__store_begin(&ix->st, err)) ||
      (rc = qi__store_meta_put(&ix->st, "settings", sj ? sj : "{}", err)) ||
      (rc = qi__store_meta_put(&ix->st, "mappings", mb.data, err)) ||
      (rc = qi__store_commit(&ix->st, err)))
    goto fail;
  qi__mapping_fini(&ix->map);
  if ((rc = open_common(ix, err))) goto fail;
  qi__merger_start(ix);
  qi__persister_start(ix);
  qi__json_free(sj);
  qb_buf_fini(&mb);
  json_decref(body);
  *out = ix;
  return QB_OK;
fail:
  qi__json_free(sj);
  qb_buf_fini(&mb);
  json_decref(body);
  qi__index_free(ix);
  return rc;
}

qb_code qi_index_destroy(const char *dir, qb_err *err) {
  char path[4400];
  DIR *d = opendir(dir);
  struct dirent *de;
  if (!d) return errno == ENOENT ? QB_OK : qb_fail(err, QB_IO, "cannot read %s: %s", dir, strerror(errno));
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, "docs.db", 7) && strncmp(de->d_name, "seg_", 4) &&
        strncmp(de->d_name, "segments", 8))
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (unlink(path) && errno != ENOENT) {
      closedir(d);
      return qb_fail(err, QB_IO, "cannot remove %s: %s", path, strerror(errno));
    }
  }
  closedir(d);
  if (rmdir(dir) && errno != ENOENT)
    return qb_fail(err, QB_IO, "cannot remove %s: %s", dir, strerror(errno));
  return QB_OK;
}
