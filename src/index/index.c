/* index.c: one shard's writer: puts, deletes and bulk batches (SQLite first, then the
** in-memory buffer), the _id map, refresh (buffer -> segment, deletes -> live bitmaps, merges,
** publish a snapshot, persist segments); opening is in open.c. Invariant: every write happens
** under ix->lock; the published snapshot pointer changes only under ix->snap_lock, so taking a
** snapshot never waits for a write. A live document's _id maps to exactly one (segment, doc). */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct qi_bulk {
  qi_index *ix;
};

/* ---- _id map (linear probing, backward-shift deletion) ---------------------------------------- */

static uint64_t hash_id(const char *s, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
  return h ^ (h >> 31);
}

ident *qi__id_find(qi_index *ix, const char *id, size_t len) {
  uint64_t h;
  size_t k;
  if (!ix->idcap) return NULL;
  h = hash_id(id, len);
  for (k = h & (ix->idcap - 1); ix->ids[k].id; k = (k + 1) & (ix->idcap - 1))
    if (ix->ids[k].hash == h && ix->ids[k].len == len && !memcmp(ix->ids[k].id, id, len))
      return &ix->ids[k];
  return NULL;
}

static qb_code id_grow(qi_index *ix) {
  size_t ncap = ix->idcap ? ix->idcap * 2 : 1024, i, k;
  ident *t = qb_calloc(ncap, sizeof *t);
  if (!t) return QB_NOMEM;
  for (i = 0; i < ix->idcap; i++) {
    if (!ix->ids[i].id) continue;
    for (k = ix->ids[i].hash & (ncap - 1); t[k].id; k = (k + 1) & (ncap - 1)) {
    }
    t[k] = ix->ids[i];
  }
  qb_free(ix->ids, ix->idcap * sizeof *ix->ids);
  ix->ids = t;
  ix->idcap = ncap;
  return QB_OK;
}

/* Insert ID (not present); returns the entry or NULL when out of memory. */
ident *qi__id_insert(qi_index *ix, const char *id, size_t len) {
  uint64_t h = hash_id(id, len);
  size_t k;
  char *copy;
  QB_ASSERT(qi__locked(ix));
  QB_ASSERT(!qi__id_find(ix, id, len)); /* one entry per _id */
  if ((ix->nids + 1) * 4 > ix->idcap * 3 && id_grow(ix)) return NULL;
  if (!(copy = qb_malloc(len + 1))) return NULL;
  memcpy(copy, id, len);
  copy[len] = 0;
  for (k = h & (ix->idcap - 1); ix->ids[k].id; k = (k + 1) & (ix->idcap - 1)) {
  }
  ix->ids[k] = (ident){copy, (uint32_t)len, 0, 0, h, 0, 0};
  ix->nids++;
  return &ix->ids[k];
}

void qi__id_remove(qi_index *ix, ident *e) {
  size_t mask = ix->idcap - 1, i = (size_t)(e - ix->ids), j = i, k;
  QB_ASSERT(qi__locked(ix));
  QB_ASSERT(e >= ix->ids && e < ix->ids + ix->idcap && e->id);
  qb_free(e->id, e->len + 1);
  e->id = NULL;
  ix->nids--;
  for (;;) {
    j = (j + 1) & mask;
    if (!ix->ids[j].id) break;
    k = ix->ids[j].hash & mask;
    /* move j back to i unless its home k lies cyclically in (i, j] */
    if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j)) continue;
    ix->ids[i] = ix->ids[j];
    ix->ids[j].id = NULL;
    i = j;
  }
}

void qi__id_clear(qi_index *ix) {
  size_t i;
  QB_ASSERT(qi__locked(ix));
  for (i = 0; i < ix->idcap; i++)
    if (ix->ids[i].id) qb_free(ix->ids[i].id, ix->ids[i].len + 1);
  qb_free(ix->ids, ix->idcap * sizeof *ix->ids);
  ix->ids = NULL;
  ix->idcap = ix->nids = 0;
}

int qi__id_locate(qi_index *ix, const char *id, size_t len, qi__idloc *out) {
  ident *e = qi__id_find(ix, id, len);
  size_t i;
  QB_ASSERT(qi__locked(ix));
  if (e) {
    *out = (qi__idloc){e, e->seg_no, e->doc, e->version, e->seq};
    return 1;
  }
  for (i = ix->nseg; i-- > 0;) { /* newest first: an updated document is usually recent */
    const wseg *w = &ix->segs[i];
    int64_t d = qi__seg_lookup(w->core, w->bits, id, len, UINT64_MAX);
    if (d >= 0) {
      *out = (qi__idloc){NULL, w->core->seg_no, (uint32_t)d, w->core->ver[d], w->core->seq[d]};
      return 1;
    }
  }
  return 0;
}

/* ---- deletes -------------------------------------------------------------------------------- */

static wseg *wseg_by_no(qi_index *ix, uint32_t seg_no) {
  size_t i;
  for (i = 0; i < ix->nseg; i++)
    if (ix->segs[i].core->seg_no == seg_no) return &ix->segs[i];
  return NULL;
}

qb_code qi__mark_deleted(qi_index *ix, uint32_t seg_no, uint32_t doc) {
  wseg *w;
  QB_ASSERT(qi__locked(ix));
  if (ix->buf && seg_no == ix->buf_seg_no) {
    size_t need = (size_t)doc / 64 + 1;
    if (qi__grow((void **)&ix->bdel, &ix->bdelcap, need, sizeof *ix->bdel)) return QB_NOMEM;
    ix->bdel[doc / 64] |= 1ull << (doc % 64);
    return QB_OK;
  }
  if (!(w = wseg_by_no(ix, seg_no))) return QB_INTERNAL;
  if (!w->bits) {
    size_t nw = ((size_t)w->core->max_doc + 63) / 64, i;
    if (!(w->bits = qb_malloc(nw * sizeof *w->bits))) return QB_NOMEM;
    for (i = 0; i < nw; i++) w->bits[i] = ~0ull;
    if (w->core->max_doc % 64) w->bits[nw - 1] = (1ull << (w->core->max_doc % 64)) - 1;
  }
  if ((w->bits[doc / 64] >> (doc % 64)) & 1) {
    w->bits[doc / 64] &= ~(1ull << (doc % 64));
    w->ndel++;
    w->dirty = 1;
  }
  return QB_OK;
}

void qi__wseg_fini(wseg *w) {
  if (w->bits) qb_free(w->bits, (((size_t)w->core->max_doc + 63) / 64) * sizeof *w->bits);
  qi__live_release(w->pub);
  qi__seg_release(w->core);
}

/* ---- buffer -> segment, merges, publish ----------------------------------------------------- */

qb_code qi__flush_buffer(qi_index *ix, qb_err *err) {
  qi__seg *s;
  qi__builder *nb;
  qb_code rc;
  uint32_t n;
  QB_ASSERT(qi__locked(ix));
  if (!ix->buf || !(n = qi__builder_docs(ix->buf))) return QB_OK;
  if (!(nb = qi__builder_new(ix->seg_counter)))
    return qb_fail(err, QB_NOMEM, "refresh: out of memory");
  if (qi__grow((void **)&ix->segs, &ix->segcap, ix->nseg + 1, sizeof *ix->segs)) {
    qi__builder_free(nb);
    return qb_fail(err, QB_NOMEM, "refresh: out of memory");
  }
  if ((rc = qi__builder_freeze(ix->buf, (uint32_t)ix->map.nfields, &s, err))) {
    qi__builder_free(nb);
    return rc;
  }
  ix->segs[ix->nseg] = (wseg){.core = s, .dirty = 1};
  ix->nseg++;
  ix->seg_gen++;
  ix->flushed_seq = ix->next_seq;
  qi__id_clear(ix); /* the buffer's documents are found through the new segment now */
  qi__retire_builder(ix, ix->buf); /* freed off the lock when a persister runs */
  ix->buf = nb;
  ix->buf_seg_no = ix->seg_counter++;
  if (ix->bdel) {
    uint32_t d;
    for (d = 0; d < n; d++)
      if (d / 64 < ix->bdelcap && (ix->bdel[d / 64] >> (d % 64)) & 1 &&
          qi__mark_deleted(ix, s->seg_no, d))
        __atomic_store_n(&ix->failed, 1, __ATOMIC_RELEASE); /* out of memory: a deleted doc would come back; stop writes */
    memset(ix->bdel, 0, ix->bdelcap * sizeof *ix->bdel);
  }
  return QB_OK;
}

/* Merge segments [A, B) of the writer's list into one. */
static qb_code merge_range(qi_index *ix, size_t a, size_t b, qb_err *err) {
  size_t n = b - a, i;
  qi__seg **cores = NULL, *out = NULL;
  const uint64_t **live = NULL;
  uint32_t **maps = NULL, seg_no;
  qb_code rc = QB_NOMEM;
  QB_ASSERT(qi__locked(ix));
  QB_ASSERT(a <= b && b <= ix->nseg);
  if (n < 1) return QB_OK;
  if (!(cores = qb_calloc(n, sizeof *cores)) || !(live = qb_calloc(n, sizeof *live)) ||
      !(maps = qb_calloc(n, sizeof *maps)))
    goto done;
  for (i = 0; i < n; i++) {
    cores[i] = ix->segs[a + i].core;
    live[i] = ix->segs[a + i].bits;
    if (!(maps[i] = qb_malloc(((size_t)cores[i]->max_doc + 1) * sizeof **maps))) goto done;
  }
  seg_no = ix->seg_counter++;
  if ((rc = qi__merge(cores, live, n, (uint32_t)ix->map.nfields, seg_no, &out, maps, NULL, err)))
    goto done;
  for (i = a; i < b; i++) {
    maps[i - a] = (qb_free(maps[i - a], ((size_t)cores[i - a]->max_doc + 1) * sizeof **maps), NULL);
    qi__wseg_fini(&ix->segs[i]);
  }
  if (out) {
    ix->segs[a] = (wseg){.core = out, .dirty = 1};
    memmove(ix->segs + a + 1, ix->segs + b, (ix->nseg - b) * sizeof *ix->segs);
    ix->nseg -= n - 1;
  } else {
    memmove(ix->segs + a, ix->segs + b, (ix->nseg - b) * sizeof *ix->segs);
    ix->nseg -= n;
  }
  ix->merges++;
  ix->seg_gen++;
  rc = QB_OK;
done:
  if (maps)
    for (i = 0; i < n; i++)
      if (maps[i]) qb_free(maps[i], ((size_t)cores[i]->max_doc + 1) * sizeof **maps);
  qb_free(maps, n * sizeof *maps);
  qb_free(live, n * sizeof *live);
  qb_free(cores, n * sizeof *cores);
  if (rc == QB_NOMEM && err && err->code != QB_NOMEM) qb_fail(err, QB_NOMEM, "merge: out of memory");
  return rc;
}

static uint64_t live_docs_of(const wseg *w) { return w->core->max_doc - w->ndel; }

/* Merge the adjacent window of up to WIDTH segments with the fewest live documents. */
static qb_code merge_smallest(qi_index *ix, size_t width, qb_err *err) {
  size_t best = 0, i, k;
  uint64_t best_sum = UINT64_MAX;
  if (width > ix->nseg) width = ix->nseg;
  for (i = 0; i + width <= ix->nseg; i++) {
    uint64_t sum = 0;
    for (k = i; k < i + width; k++) sum += live_docs_of(&ix->segs[k]);
    if (sum < best_sum) {
      best_sum = sum;
      best = i;
    }
  }
  return merge_range(ix, best, best + width, err);
}

size_t qi__max_segments(const qi_index *ix) {
  return ix->opt.max_segments ? ix->opt.max_segments : 12;
}

size_t qi__merge_factor(const qi_index *ix) {
  size_t mf = ix->opt.merge_factor ? ix->opt.merge_factor : 8;
  return mf < 2 ? 2 : mf;
}

/* Drop segments with nothing live, then wake the merger (or, without merge threads: at open,
** or when none could be started, merge here). */
static qb_code maybe_merge(qi_index *ix, qb_err *err) {
  size_t maxs = qi__max_segments(ix), mf = qi__merge_factor(ix);
  qb_code rc;
  size_t i;
  QB_ASSERT(qi__locked(ix));
  if (ix->opt.no_auto_merge) return QB_OK;
  /* segments with nothing live go at once */
  for (i = 0; i < ix->nseg; i++)
    if (!live_docs_of(&ix->segs[i]) && !ix->segs[i].merging) {
      qi__wseg_fini(&ix->segs[i]);
      memmove(ix->segs + i, ix->segs + i + 1, (ix->nseg - i - 1) * sizeof *ix->segs);
      ix->nseg--;
      ix->seg_gen++;
      i--;
    }
  if (ix->nmthreads) {
    if (ix->nseg > maxs) qi__merger_kick(ix);
    return QB_OK;
  }
  while (ix->nseg > maxs)
    if ((rc = merge_smallest(ix, mf, err))) return rc;
  return QB_OK;
}

static void snapshot_free(qi_snapshot *s) {
  size_t i;
  for (i = 0; i < s->nseg; i++) {
    qi__seg_release(s->segs[i].core);
    qi__live_release(s->segs[i].live);
  }
  qb_free(s->segs, s->segcap * sizeof *s->segs);
  qb_free(s->base, (s->segcap + 1) * sizeof *s->base);
  qb_free(s->fields, s->fcap * sizeof *s->fields);
  qb_free(s->stats, s->fcap * sizeof *s->stats);
  qb_free(s, sizeof *s);
}

/* The index's own reference (ix->cur) holds no reference to the index; every reference handed
** out (qi_index_snapshot, qi_snapshot_retain) also holds one on the index, so an index lives
** until its last snapshot is released (qi_snapshot_source needs the store). */
static void snapshot_unref(qi_snapshot *s) {
  if (!s || !qi__unref(&s->refs)) return;
  snapshot_free(s);
}

void qi_snapshot_release(qi_snapshot *s) {
  qi_index *ix;
  if (!s) return;
  ix = s->ix;
  snapshot_unref(s);
  qi_index_release(ix);
}

qb_code qi__publish(qi_index *ix, qb_err *err) {
  qi_snapshot *s = qb_calloc(1, sizeof *s), *old;
  size_t i, f, n = ix->nseg, nf = ix->map.nfields;
  QB_ASSERT(qi__locked(ix));
  if (!s) return qb_fail(err, QB_NOMEM, "refresh: out of memory");
  atomic_init(&s->refs, 1);
  s->ix = ix;
  s->nseg = n;
  s->nfields = nf;
  s->segcap = n ? n : 1;
  s->fcap = nf ? nf : 1;
  if (!(s->segs = qb_calloc(s->segcap, sizeof *s->segs)) ||
      !(s->base = qb_calloc(s->segcap + 1, sizeof *s->base)) ||
      !(s->fields = qb_calloc(s->fcap, sizeof *s->fields)) ||
      !(s->stats = qb_calloc(s->fcap, sizeof *s->stats))) {
    s->nseg = 0;
    snapshot_free(s);
    return qb_fail(err, QB_NOMEM, "refresh: out of memory");
  }
  /* allocate every new bitmap first, so failure leaves the writer as it was */
  for (i = 0; i < n; i++) {
    wseg *w = &ix->segs[i];
    if (w->bits && (w->dirty || !w->pub)) {
      qi__live *l = qi__live_new(w->core->max_doc, w->bits);
      if (!l) {
        s->nseg = i;
        snapshot_free(s);
        return qb_fail(err, QB_NOMEM, "refresh: out of memory");
      }
      l->ndel = w->ndel;
      qi__live_release(w->pub);
      w->pub = l;
    }
    w->dirty = 0;
    s->segs[i].core = qi__seg_retain(w->core);
    s->segs[i].live = w->pub;
    if (w->pub) qi__ref(&w->pub->refs);
    s->segs[i].snap = s;
    s->base[i] = s->max_doc;
    s->max_doc += w->core->max_doc;
    s->live_docs += w->core->max_doc - w->ndel;
    for (f = 0; f < nf && f < w->core->nfields; f++) {
      const qi__fseg *fs = &w->core->f[f];
      s->stats[f].doc_count += fs->doc_count;
      s->stats[f].sum_total_term_freq += fs->sum_ttf;
      s->stats[f].sum_doc_freq += fs->sum_df;
    }
  }
  s->base[n] = s->max_doc;
  if (nf) memcpy(s->fields, ix->map.fields, nf * sizeof *s->fields);
  pthread_mutex_lock(&ix->snap_lock);
  old = ix->cur;
  ix->cur = s;
  QB_ASSERT(old != s);
  pthread_mutex_unlock(&ix->snap_lock);
  snapshot_unref(old);
  ix->refreshes++;
  return QB_OK;
}

/* Publish the current snapshot again with each segment's core replaced by the writer's copy of
** the same segment when that one is mapped from its file (the persister adopted it): nothing
** else changes, so deletes and updates since the last refresh stay invisible (publishing the
** writer's bits here made a delete, or the old half of an update, visible before its refresh).
** Errors: QB_NOMEM (the old snapshot stays). */
qb_code qi__publish_cores(qi_index *ix, qb_err *err) {
  const qi_snapshot *cur = ix->cur;
  qi_snapshot *s = qb_calloc(1, sizeof *s), *old;
  size_t i, k;
  QB_ASSERT(qi__locked(ix));
  if (!s) return qb_fail(err, QB_NOMEM, "publish: out of memory");
  *s = *cur;
  atomic_init(&s->refs, 1);
  s->segs = qb_calloc(s->segcap, sizeof *s->segs);
  s->base = qb_calloc(s->segcap + 1, sizeof *s->base);
  s->fields = qb_calloc(s->fcap, sizeof *s->fields);
  s->stats = qb_calloc(s->fcap, sizeof *s->stats);
  if (!s->segs || !s->base || !s->fields || !s->stats) {
    s->nseg = 0;
    snapshot_free(s);
    return qb_fail(err, QB_NOMEM, "publish: out of memory");
  }
  memcpy(s->base, cur->base, (cur->nseg + 1) * sizeof *s->base);
  if (cur->nfields) memcpy(s->fields, cur->fields, cur->nfields * sizeof *s->fields);
  if (cur->nfields) memcpy(s->stats, cur->stats, cur->nfields * sizeof *s->stats);
  for (i = 0; i < cur->nseg; i++) {
    qi__seg *c = cur->segs[i].core;
    for (k = 0; k < ix->nseg; k++) {
      qi__seg *w = ix->segs[k].core;
      if (w != c && w->seg_no == c->seg_no && w->map && w->max_doc == c->max_doc) {
        c = w;
        break;
      }
    }
    s->segs[i].core = qi__seg_retain(c);
    s->segs[i].live = cur->segs[i].live;
    if (s->segs[i].live) qi__ref(&s->segs[i].live->refs);
    s->segs[i].snap = s;
  }
  pthread_mutex_lock(&ix->snap_lock);
  old = ix->cur;
  ix->cur = s;
  pthread_mutex_unlock(&ix->snap_lock);
  snapshot_unref(old);
  return QB_OK;
}

qb_code qi__refresh_locked(qi_index *ix, qb_err *err) {
  qb_code rc;
  QB_ASSERT(qi__locked(ix));
  /* A failed index's buffer may hold writes its store rolled back: never make them visible
  ** (issue 13 #6: a failed bulk left phantom documents). The catalog reopens it from the store. */
  if (ix->failed)
    return qb_fail(err, QB_IO, "index %s: a write could not be committed (disk full?); it is "
                               "reopened from its store on next use", ix->dir);
  if ((rc = qi__flush_buffer(ix, err)) || (rc = maybe_merge(ix, err))) return rc;
  if (!ix->persister) {
    qi__persist_locked(ix); /* first, so the snapshot reads the new segments from their files */
    return qi__publish(ix, err);
  }
  /* visible now from the heap copy; the persister writes and maps the files behind */
  rc = qi__publish(ix, err);
  qi__persist_soon(ix);
  return rc;
}

qb_code qi_index_refresh(qi_index *ix, qb_err *err) {
  qb_code rc;
  qi__lock(ix);
  rc = qi__refresh_locked(ix, err);
  qi__unlock(ix);
  return rc;
}

qb_code qi_index_force_merge(qi_index *ix, uint32_t max_segments, qb_err *err) {
  qb_code rc;
  if (!max_segments) max_segments = 1;
  qi__lock(ix);
  ix->merge_hold++; /* no new background merge; wait for the running ones */
  qi__merger_wait_idle(ix);
  rc = qi__flush_buffer(ix, err);
  while (!rc && ix->nseg > max_segments) rc = merge_smallest(ix, ix->nseg - max_segments + 1, err);
  if (!rc && ix->nseg == 1 && max_segments == 1 && ix->segs[0].ndel)
    rc = merge_range(ix, 0, 1, err);
  if (!rc) qi__persist_locked(ix);
  if (!rc) rc = qi__publish(ix, err);
  ix->merge_hold--;
  qi__merger_kick(ix);
  qi__unlock(ix);
  return rc;
}

qi_snapshot *qi_index_snapshot(qi_index *ix) {
  qi_snapshot *s;
  pthread_mutex_lock(&ix->snap_lock);
  s = ix->cur;
  qi__ref(&s->refs);
  qi_index_retain(ix);
  pthread_mutex_unlock(&ix->snap_lock);
  return s;
}

qb_code qi_snapshot_source(const qi_snapshot *s, const qi_segment *seg, uint32_t doc, qb_buf *out,
                           qb_err *err) {
  const char *id = qi_segment_doc_id(seg, doc, NULL);
  if (!id) return qb_fail(err, QB_INVAL, "document %u out of range", doc);
  return qi__store_get(&s->ix->st, id, out, NULL, NULL, err);
}

#define SOURCES_CHUNK 64 /* documents a store read (the seq and id arrays live on the stack) */

qb_code qi_snapshot_sources(const qi_snapshot *s, const qi_segment *const *segs, const uint32_t *docs,
                            size_t n, qb_buf *out, size_t *off, size_t *len, qb_err *err) {
  uint64_t seqs[SOURCES_CHUNK];
  const char *ids[SOURCES_CHUNK];
  for (size_t at = 0; at < n; at += SOURCES_CHUNK) {
    size_t m = n - at < SOURCES_CHUNK ? n - at : SOURCES_CHUNK;
    qb_code rc;
    for (size_t i = 0; i < m; i++) {
      if (!(ids[i] = qi_segment_doc_id(segs[at + i], docs[at + i], NULL)))
        return qb_fail(err, QB_INVAL, "document %u out of range", docs[at + i]);
      seqs[i] = qi_segment_doc_seq_no(segs[at + i], docs[at + i]);
    }
    if ((rc = qi__store_get_many(&s->ix->st, seqs, ids, m, out, off + at, len + at, err))) return rc;
  }
  return QB_OK;
}

/* ---- writes --------------------------------------------------------------------------------- */

qb_code qi__check_id(const char *id, qb_err *err) {
  size_t n = strlen(id);
  if (!n) return qb_fail(err, QB_INVAL, "if _id is specified it must not be empty");
  if (n > QI_ID_MAX)
    return qb_fail(err, QB_INVAL, "id [%.32s...] is too long, must be no longer than 512 bytes but was: %zu", id, n);
  return QB_OK;
}

static void gen_id(qi_index *ix, char out[21]) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint8_t raw[15];
  uint64_t t = (uint64_t)qb_wall_ms(), c = ++ix->id_counter, r = ix->id_seed ^ (c * 0x9e3779b97f4a7c15ull);
  int i;
  r ^= r >> 29;
  r *= 0xbf58476d1ce4e5b9ull;
  r ^= r >> 32;
  for (i = 0; i < 6; i++) raw[i] = (uint8_t)(t >> (40 - 8 * i));
  for (i = 0; i < 3; i++) raw[6 + i] = (uint8_t)(c >> (16 - 8 * i));
  for (i = 0; i < 6; i++) raw[9 + i] = (uint8_t)(r >> (8 * i));
  for (i = 0; i < 5; i++) {
    uint32_t v = (uint32_t)raw[3 * i] << 16 | (uint32_t)raw[3 * i + 1] << 8 | raw[3 * i + 2];
    out[4 * i] = b64[v >> 18];
    out[4 * i + 1] = b64[(v >> 12) & 63];
    out[4 * i + 2] = b64[(v >> 6) & 63];
    out[4 * i + 3] = b64[v & 63];
  }
  out[20] = 0;
}

/* After a failed statement inside a transaction: SQLite may have rolled it all back. */
static void check_txn(qi_index *ix) {
  if (ix->st.in_txn && sqlite3_get_autocommit(ix->st.db)) {
    __atomic_store_n(&ix->failed, 1, __ATOMIC_RELEASE);
    qb_log(QB_ERROR, "index %s: transaction rolled back by the store; reopen the index", ix->dir);
  }
}

/* One put inside an open transaction, applied to memory once its statements succeeded. */
/* QB_CONFLICT when COND does not hold for the current entry E (NULL: no such document). */
static qb_code check_cond(const char *id, const qi__idloc *e, const qi_write_cond *cond,
                          qb_err *err) {
  if (!cond) return QB_OK;
  if (cond->create_only && e)
    return qb_fail(err, QB_CONFLICT,
                   "[%s]: version conflict, document already exists (current version [%llu])", id,
                   (unsigned long long)e->version);
  if (cond->has_if_seq_no && (!e || e->seq != cond->if_seq_no)) {
    if (!e)
      return qb_fail(err, QB_CONFLICT,
                     "[%s]: version conflict, required seqNo [%llu], primary term [1]. but no "
                     "document was found", id, (unsigned long long)cond->if_seq_no);
    return qb_fail(err, QB_CONFLICT,
                   "[%s]: version conflict, required seqNo [%llu], primary term [1]. current "
                   "document has seqNo [%llu] and primary term [1]",
                   id, (unsigned long long)cond->if_seq_no, (unsigned long long)e->seq);
  }
  return QB_OK;
}

static qb_code put_item(qi_index *ix, const char *id, const char *json, size_t len,
                        const qi_write_cond *cond, qi_write_result *res, qb_err *err) {
  char gid[21];
  json_t *doc;
  json_error_t jerr;
  qi__parsed p;
  qi__idloc loc;
  ident *e;
  int found;
  uint64_t version, seq;
  size_t nnew;
  qb_code rc;
  QB_ASSERT(qi__locked(ix));
  if (ix->failed) return qb_fail(err, QB_IO, "index %s failed earlier; reopen it", ix->dir);
  if (!id) {
    gen_id(ix, gid);
    id = gid;
  } else if ((rc = qi__check_id(id, err))) {
    return rc;
  }
  if (!json) return qb_fail(err, QB_INVAL, "failed to parse: document is empty");
  uint64_t failed = qb_alloc_failures(); /* jansson may report running out as bad JSON */
  doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc && qb_alloc_failures() != failed)
    return qb_fail(err, QB_NOMEM, "index: out of memory");
  if (!doc)
    return qb_fail(err, QB_INVAL, "failed to parse: %s at line %d column %d", jerr.text,
                   jerr.line, jerr.column);
  qi__parsed_init(&p);
  if ((rc = qi__parse_doc(&ix->map, doc, id, &p, err))) goto done;
  found = qi__id_locate(ix, id, strlen(id), &loc);
  if ((rc = check_cond(id, found ? &loc : NULL, cond, err))) goto done;
  int existed = found;
  /* a replica stores the primary's version (has_version); otherwise one more than now */
  version = cond && cond->has_version && cond->version ? cond->version : found ? loc.version + 1 : 1;
  seq = ix->next_seq;
  if ((rc = qi__store_put(&ix->st, id, seq, version, json, len, err))) {
    check_txn(ix);
    goto done;
  }
  nnew = p.nnew;
  if (nnew) {
    qb_buf mj;
    if ((rc = qi__mapping_commit(&ix->map, &p, err))) goto fail_undo;
    qb_buf_init(&mj);
    rc = qi__mapping_to_json(&ix->map, &mj, err);
    if (!rc) rc = qi__store_meta_put(&ix->st, "mappings", mj.data, err);
    qb_buf_fini(&mj);
    if (rc) {
      /* give the fields back: they are the last NNEW of the mapping */
      size_t i;
      for (i = 0; i < nnew; i++) {
        qi__field *f = ix->map.fields[--ix->map.nfields];
        qb_free(f->name, f->name_len + 1);
        qb_free(f, sizeof *f);
      }
      goto fail_undo;
    }
  }
  /* durable-to-be: now apply to memory */
  if (found && (rc = qi__mark_deleted(ix, loc.seg_no, loc.doc))) goto mem_fail;
  if (!(e = found ? loc.e : NULL) && !(e = qi__id_insert(ix, id, strlen(id)))) {
    rc = QB_NOMEM;
    goto mem_fail;
  }
  if ((rc = qi__builder_add(ix->buf, &ix->map, &p, id, seq, version, err))) goto mem_fail;
  e->seg_no = ix->buf_seg_no;
  e->doc = qi__builder_docs(ix->buf) - 1;
  e->version = version;
  e->seq = seq;
  ix->next_seq++;
  if (!found) ix->live_count++;
  if (res) {
    snprintf(res->id, sizeof res->id, "%s", id);
    res->version = version;
    res->seq_no = seq;
    res->created = !existed;
  }
  if (qi__builder_docs(ix->buf) >=
      (ix->opt.max_buffered_docs ? ix->opt.max_buffered_docs : 50000))
    qi__flush_buffer(ix, NULL); /* on failure the buffer just keeps growing */
  rc = QB_OK;
  goto done;
fail_undo:
  /* the statement ran: undo it by deleting what we wrote; a failure here fails the index */
  if (qi__store_delete(&ix->st, id, NULL)) __atomic_store_n(&ix->failed, 1, __ATOMIC_RELEASE);
  goto done;
mem_fail:
  __atomic_store_n(&ix->failed, 1, __ATOMIC_RELEASE);
  if (rc == QB_NOMEM) qb_fail(err, QB_NOMEM, "index %s: out of memory while indexing; reopen it", ix->dir);
done:
  qi__parsed_fini(&p);
  json_decref(doc);
  return rc;
}

static qb_code delete_item(qi_index *ix, const char *id, const qi_write_cond *cond,
                           qi_write_result *res, qb_err *err) {
  qi__idloc loc, *e;
  qb_code rc;
  QB_ASSERT(qi__locked(ix));
  if (res) memset(res, 0, sizeof *res);
  if (ix->failed) return qb_fail(err, QB_IO, "index %s failed earlier; reopen it", ix->dir);
  if (!id) return qb_fail(err, QB_INVAL, "delete needs an _id");
  if ((rc = qi__check_id(id, err))) return rc;
  if (res) snprintf(res->id, sizeof res->id, "%s", id);
  e = qi__id_locate(ix, id, strlen(id), &loc) ? &loc : NULL;
  if (cond && cond->has_if_seq_no && (rc = check_cond(id, e, cond, err))) return rc;
  if (!e) return qb_fail(err, QB_NOTFOUND, "document [%s] not found", id);
  if ((rc = qi__store_delete(&ix->st, id, err))) {
    check_txn(ix);
    return rc;
  }
  if ((rc = qi__mark_deleted(ix, e->seg_no, e->doc))) {
    __atomic_store_n(&ix->failed, 1, __ATOMIC_RELEASE);
    return qb_fail(err, rc, "index %s: out of memory while deleting; reopen it", ix->dir);
  }
  if (res) {
    res->version = e->version + 1;
    res->seq_no = ix->next_seq;
    res->created = 1;
  }
  ix->next_seq++;
  if (e->e) qi__id_remove(ix, e->e);
  ix->live_count--;
  return QB_OK;
}

static qb_code commit_locked(qi_index *ix, qb_err *err) {
  char v[32];
  qb_code rc;
  QB_ASSERT(qi__locked(ix));
  snprintf(v, sizeof v, "%llu", (unsigned long long)ix->next_seq);
  if (!ix->st.in_txn) {
    __atomic_store_n(&ix->failed, 1, __ATOMIC_RELEASE);
    return qb_fail(err, QB_IO, "index %s: transaction lost; reopen the index", ix->dir);
  }
  if ((rc = qi__store_meta_put(&ix->st, "next_seq", v, err)) ||
      (rc = qi__store_commit(&ix->st, err))) {
    qi__store_rollback(&ix->st);
    __atomic_store_n(&ix->failed, 1, __ATOMIC_RELEASE);
    return rc;
  }
  return QB_OK;
}

qb_code qi_index_put(qi_index *ix, const char *id, const char *json, size_t len,
                     qi_write_result *res, qb_err *err) {
  return qi_index_put_if(ix, id, json, len, NULL, res, err);
}

qb_code qi_index_put_if(qi_index *ix, const char *id, const char *json, size_t len,
                        const qi_write_cond *cond, qi_write_result *res, qb_err *err) {
  qb_code rc;
  qi__lock(ix);
  if (ix->failed) {
    rc = qb_fail(err, QB_IO, "index %s failed earlier; reopen it", ix->dir);
  } else if (!(rc = qi__store_begin(&ix->st, err))) {
    rc = put_item(ix, id, json, len, cond, res, err);
    if (rc) {
      qi__store_rollback(&ix->st);
    } else {
      rc = commit_locked(ix, err);
    }
  }
  qi__unlock(ix);
  return rc;
}

qb_code qi_index_delete(qi_index *ix, const char *id, qi_write_result *res, qb_err *err) {
  return qi_index_delete_if(ix, id, NULL, res, err);
}

qb_code qi_index_delete_if(qi_index *ix, const char *id, const qi_write_cond *cond,
                           qi_write_result *res, qb_err *err) {
  qb_code rc;
  qi__lock(ix);
  if (ix->failed) {
    rc = qb_fail(err, QB_IO, "index %s failed earlier; reopen it", ix->dir);
  } else if (!(rc = qi__store_begin(&ix->st, err))) {
    rc = delete_item(ix, id, cond, res, err);
    if (rc) {
      qi__store_rollback(&ix->st);
    } else {
      rc = commit_locked(ix, err);
    }
  }
  qi__unlock(ix);
  return rc;
}

qb_code qi_bulk_begin(qi_index *ix, qi_bulk **out, qb_err *err) {
  qi_bulk *b;
  qb_code rc;
  *out = NULL;
  if (!(b = qb_malloc(sizeof *b))) return qb_fail(err, QB_NOMEM, "bulk: out of memory");
  b->ix = ix;
  qi__lock(ix);
  if (ix->failed) rc = qb_fail(err, QB_IO, "index %s failed earlier; reopen it", ix->dir);
  else rc = qi__store_begin(&ix->st, err);
  if (rc) {
    qi__unlock(ix);
    qb_free(b, sizeof *b);
    return rc;
  }
  *out = b;
  return QB_OK;
}

qb_code qi_bulk_put(qi_bulk *b, const char *id, const char *json, size_t len,
                    qi_write_result *res, qb_err *err) {
  return put_item(b->ix, id, json, len, NULL, res, err);
}

qb_code qi_bulk_put_if(qi_bulk *b, const char *id, const char *json, size_t len,
                       const qi_write_cond *cond, qi_write_result *res, qb_err *err) {
  return put_item(b->ix, id, json, len, cond, res, err);
}

qb_code qi_bulk_delete(qi_bulk *b, const char *id, qi_write_result *res, qb_err *err) {
  return delete_item(b->ix, id, NULL, res, err);
}

qb_code qi_bulk_delete_if(qi_bulk *b, const char *id, const qi_write_cond *cond,
                          qi_write_result *res, qb_err *err) {
  return delete_item(b->ix, id, cond, res, err);
}

qb_code qi_bulk_commit(qi_bulk *b, qb_err *err) {
  qi_index *ix = b->ix;
  qb_code rc = ix->failed ? qb_fail(err, QB_IO, "index %s failed during the batch; reopen it", ix->dir)
                          : commit_locked(ix, err);
  if (rc) qi__store_rollback(&ix->st);
  qi__unlock(ix);
  qb_free(b, sizeof *b);
  return rc;
}

/* ---- reads ---------------------------------------------------------------------------------- */

qb_code qi_index_get(qi_index *ix, const char *id, qb_buf *source, uint64_t *version,
                     uint64_t *seq_no, qb_err *err) {
  qb_code rc;
  if (!id || (rc = qi__check_id(id, err))) return id ? rc : qb_fail(err, QB_INVAL, "get needs an _id");
  return qi__store_get(&ix->st, id, source, version, seq_no, err);
}

uint64_t qi_index_doc_count(qi_index *ix) {
  uint64_t n;
  qi__lock(ix);
  n = ix->live_count;
  qi__unlock(ix);
  return n;
}

qb_code qi_index_mapping_json(qi_index *ix, qb_buf *out, qb_err *err) {
  qb_code rc;
  qi__lock(ix);
  rc = qi__mapping_to_json(&ix->map, out, err);
  qi__unlock(ix);
  return rc;
}

qb_code qi_index_put_mapping(qi_index *ix, const char *mapping_json, size_t len, qb_err *err) {
  json_t *j;
  json_error_t jerr;
  qb_code rc;
  size_t before;
  qb_buf mj;
  uint64_t failed = qb_alloc_failures();
  j = json_loadb(mapping_json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!j && qb_alloc_failures() != failed)
    return qb_fail(err, QB_NOMEM, "index: out of memory");
  if (!j)
    return qb_fail(err, QB_INVAL, "failed to parse mapping: %s", jerr.text);
  qi__lock(ix);
  before = ix->map.nfields;
  rc = qi__mapping_merge_json(&ix->map, j, err);
  if (!rc && ix->map.nfields != before) {
    qb_buf_init(&mj);
    if (!(rc = qi__mapping_to_json(&ix->map, &mj, err)) &&
        !(rc = qi__store_begin(&ix->st, err))) {
      if ((rc = qi__store_meta_put(&ix->st, "mappings", mj.data, err)))
        qi__store_rollback(&ix->st);
      else
        rc = qi__store_commit(&ix->st, err);
    }
    qb_buf_fini(&mj);
    if (rc) {
      while (ix->map.nfields > before) {
        qi__field *f = ix->map.fields[--ix->map.nfields];
        qb_free(f->name, f->name_len + 1);
        qb_free(f, sizeof *f);
      }
    } else {
      rc = qi__publish(ix, err); /* snapshots see the new fields */
    }
  }
  qi__unlock(ix);
  json_decref(j);
  return rc;
}

qb_code qi_index_settings_json(qi_index *ix, qb_buf *out, qb_err *err) {
  pthread_mutex_lock(&ix->snap_lock); /* qi_index_settings_set (settings.c) swaps the text */
  int bad = qb_buf_append(out, ix->settings, ix->settings_len) != 0;
  pthread_mutex_unlock(&ix->snap_lock);
  if (bad) return qb_fail(err, QB_NOMEM, "settings: out of memory");
  return QB_OK;
}

void qi_index_stats_get(qi_index *ix, qi_index_stats *out) {
  qi__lock(ix);
  out->live_docs = ix->live_count;
  out->buffered_docs = ix->buf ? qi__builder_docs(ix->buf) : 0;
  out->merges = ix->merges;
  out->refreshes = ix->refreshes;
  out->merges_running = (uint32_t)ix->merges_running;
  qi__unlock(ix);
  pthread_mutex_lock(&ix->snap_lock);
  out->segments = (uint32_t)ix->cur->nseg;
  out->deleted_docs = ix->cur->max_doc > ix->cur->live_docs ? ix->cur->max_doc - ix->cur->live_docs : 0;
  pthread_mutex_unlock(&ix->snap_lock);
  out->disk_bytes = 0;
  DIR *d = opendir(ix->dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    char path[4096];
    struct stat st;
    if (e->d_name[0] == '.') continue;
    if (snprintf(path, sizeof path, "%s/%s", ix->dir, e->d_name) < (int)sizeof path &&
        !stat(path, &st) && S_ISREG(st.st_mode))
      out->disk_bytes += (uint64_t)st.st_size;
  }
  if (d) closedir(d);
}

qb_code qi_index_flush(qi_index *ix, qb_err *err) {
  qb_code rc;
  qi__lock(ix);
  rc = qi__store_checkpoint(&ix->st, err);
  qi__unlock(ix);
  return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void qi__index_free(qi_index *ix) {
  size_t i;
  if (!ix) return;
  qi__persister_stop(ix); /* first: the threads use everything below */
  qi__merger_stop(ix);
  snapshot_unref(ix->cur);
  for (i = 0; i < ix->nseg; i++) qi__wseg_fini(&ix->segs[i]);
  qb_free(ix->segs, ix->segcap * sizeof *ix->segs);
  qi__builder_free(ix->buf);
  qb_free(ix->bdel, ix->bdelcap * sizeof *ix->bdel);
  for (i = 0; i < ix->idcap; i++)
    if (ix->ids[i].id) qb_free(ix->ids[i].id, ix->ids[i].len + 1);
  qb_free(ix->ids, ix->idcap * sizeof *ix->ids);
  ix->ids = NULL;
  qi__mapping_fini(&ix->map);
  qi__analysis_free(ix->analysis);
  qi__store_close(&ix->st);
  if (ix->remove_on_free) qi_index_destroy(ix->dir, NULL);
  qb_free(ix->settings, ix->settings_len + 1);
  qb_free(ix->dir, strlen(ix->dir) + 1);
  pthread_mutex_destroy(&ix->lock);
  pthread_mutex_destroy(&ix->snap_lock);
  pthread_cond_destroy(&ix->merge_cv);
  pthread_cond_destroy(&ix->idle_cv);
  pthread_cond_destroy(&ix->persist_cv);
  pthread_cond_destroy(&ix->persist_idle_cv);
  qb_free(ix, sizeof *ix);
}

qi_index *qi_index_retain(qi_index *ix) {
  qi__ref(&ix->refs);
  return ix;
}

void qi_index_release(qi_index *ix) {
  if (!ix || !qi__unref(&ix->refs)) return;
  qi__index_free(ix);
}

void qi_index_close(qi_index *ix) { qi_index_release(ix); }

void qi__index_remove_on_free(qi_index *ix) {
  qi__lock(ix);
  ix->remove_on_free = 1;
  qi__unlock(ix);
}

int qi__index_failed(qi_index *ix) { return __atomic_load_n(&ix->failed, __ATOMIC_ACQUIRE); }
