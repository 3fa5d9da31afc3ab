/* persist_bg.c: putting segments on disk. A refresh makes new documents visible from a heap
** segment and returns; the index's persister thread then writes the segment files outside
** ix->lock, maps them in place of the heap copies, and writes the commit file naming the list.
** The store stays the source of truth: a segment not yet on disk is rebuilt by replay on open,
** so nothing here can lose a document, only make an open slower. Without a persister (no merge
** threads, or it failed to start) refresh persists inline, under the lock, as before.
** Invariants: only one writer of segment files for the refresh path at a time (ix->persisting,
** under the lock); the commit file is written only under ix->lock, so the running merges' busy
** outputs (merge_out) are stable while it deletes what it no longer names. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The commit watermark: replay on open starts there. Every document with a smaller _seq_no is
** in a segment: next_seq when the buffer is empty, else the seq at the last flush. */
static uint64_t watermark(const qi_index *ix) {
  return ix->buf && qi__builder_docs(ix->buf) ? ix->flushed_seq : ix->next_seq;
}

/* Write the commit file when every segment is on disk and something changed. Under the lock. */
static void commit_locked(qi_index *ix) {
  uint32_t *nos;
  size_t i;
  uint64_t wm = watermark(ix);
  qb_err err;
  QB_ASSERT(qi__locked(ix));
  if (ix->opt.no_persist || ix->failed) return;
  for (i = 0; i < ix->nseg; i++)
    if (!ix->segs[i].persisted) return; /* the next pass commits */
  if (ix->committed_gen == ix->seg_gen && ix->committed_seq == wm) return;
  if (wm < ix->committed_seq) return; /* never move replay's start back */
  if (!(nos = qb_malloc((ix->nseg + 1) * sizeof *nos))) return;
  for (i = 0; i < ix->nseg; i++) nos[i] = ix->segs[i].core->seg_no;
  if (qi__commit_write(ix->dir, nos, ix->nseg, ix->merge_out, ix->merge_out ? ix->nmthreads : 0,
                       wm, ix->seg_counter, &err)) {
    qb_log(QB_WARN, "index %s: commit file not written (%s)", ix->dir, err.msg);
  } else {
    ix->committed_gen = ix->seg_gen;
    ix->committed_seq = wm;
  }
  qb_free(nos, (ix->nseg + 1) * sizeof *nos);
}

/* Write CORE's file and map it: the mapped copy, or NULL (logged) when either failed. */
static qi__seg *write_and_map(const qi_index *ix, const qi__seg *core) {
  char path[4400];
  qi__seg *m;
  qb_err err;
  if (qi__seg_write(core, ix->dir, &err)) {
    qb_log(QB_WARN, "index %s: segment not persisted (%s); it will be rebuilt on open", ix->dir,
           err.msg);
    return NULL;
  }
  snprintf(path, sizeof path, "%s/seg_%08x.qis", ix->dir, core->seg_no);
  if (qi__seg_read(path, 0, &m, &err)) {
    qb_log(QB_WARN, "index %s: %s; the segment stays in memory", ix->dir, err.msg);
    return NULL;
  }
  return m;
}

static size_t find_no(const qi_index *ix, uint32_t no) {
  size_t i;
  for (i = 0; i < ix->nseg; i++)
    if (ix->segs[i].core->seg_no == no) return i;
  return SIZE_MAX;
}

/* W's file is written and MAPPED (may be NULL: keep the heap copy): take it. */
static void adopt(wseg *w, qi__seg *mapped) {
  w->persisted = 1;
  if (!mapped) return;
  qi__seg_release(w->core); /* snapshots holding the heap copy keep it until released */
  w->core = mapped;
}

void qi__persist_locked(qi_index *ix) {
  size_t i;
  int changed = 0;
  QB_ASSERT(qi__locked(ix));
  while (ix->persisting) qi__cond_wait(ix, &ix->persist_idle_cv); /* one writer of seg files */
  /* A failed index may hold buffered operations its store never committed: a commit file
  ** written now would claim them (and open.c would then call the store damaged). */
  if (ix->opt.no_persist || ix->failed) return;
  for (i = 0; i < ix->nseg; i++) {
    wseg *w = &ix->segs[i];
    if (w->persisted) continue;
    if (w->core->map) { /* read from its file already */
      w->persisted = 1;
      continue;
    }
    qi__seg *m = write_and_map(ix, w->core);
    if (!m) return;
    adopt(w, m);
    changed = 1;
  }
  (void)changed;
  commit_locked(ix);
}

/* One pass of the persister: write what is not on disk, outside the lock. */
static void persist_pass(qi_index *ix) {
  qi__seg **cores = NULL, **mapped = NULL;
  size_t n = 0, i, k;
  int changed = 0;
  qb_err err;
  QB_ASSERT(qi__locked(ix));
  if (ix->opt.no_persist || ix->failed) return;
  for (i = 0; i < ix->nseg; i++) n += !ix->segs[i].persisted;
  if (n && (!(cores = qb_calloc(n, sizeof *cores)) || !(mapped = qb_calloc(n, sizeof *mapped)))) {
    qb_free(cores, n * sizeof *cores);
    qi__persist_locked(ix); /* out of memory: the old way */
    return;
  }
  for (i = 0, k = 0; i < ix->nseg; i++)
    if (!ix->segs[i].persisted) cores[k++] = qi__seg_retain(ix->segs[i].core);
  ix->persisting = 1;
  qi__unlock(ix);
  for (i = 0; i < n; i++) {
    mapped[i] = cores[i]->map ? NULL : write_and_map(ix, cores[i]);
    if (!cores[i]->map && !mapped[i]) break; /* disk full or the like: stop, logged */
  }
  qi__lock(ix);
  ix->persisting = 0;
  pthread_cond_broadcast(&ix->persist_idle_cv);
  for (i = 0; i < n; i++) {
    /* a merge or the removal of an empty segment may have replaced it meanwhile: its file is
    ** then garbage, deleted by the next commit */
    k = find_no(ix, cores[i]->seg_no);
    if (k != SIZE_MAX && ix->segs[k].core == cores[i] && !ix->segs[k].persisted &&
        (mapped[i] || cores[i]->map)) {
      adopt(&ix->segs[k], mapped[i]);
      mapped[i] = NULL;
      changed = 1;
    }
    qi__seg_release(mapped[i]);
    qi__seg_release(cores[i]);
  }
  qb_free(cores, n * sizeof *cores);
  qb_free(mapped, n * sizeof *mapped);
  commit_locked(ix);
  if (changed && qi__publish_cores(ix, &err)) /* searches read the mapped files from now on */
    qb_log(QB_WARN, "index %s: persisted, not yet published (%s)", ix->dir, err.msg);
}

static void free_dead(qi_index *ix) {
  size_t i;
  QB_ASSERT(qi__locked(ix));
  if (!ix->ndead) return;
  qi__builder **d = ix->dead;
  size_t n = ix->ndead, cap = ix->deadcap;
  ix->dead = NULL;
  ix->ndead = ix->deadcap = 0;
  qi__unlock(ix);
  for (i = 0; i < n; i++) qi__builder_free(d[i]);
  qb_free(d, cap * sizeof *d);
  qi__lock(ix);
}

static void *persist_main(void *arg) {
  qi_index *ix = arg;
  qi__lock(ix);
  for (;;) {
    free_dead(ix); /* the old buffers of refreshes: their free is not the writers' cost */
    if (ix->persist_want) { /* also when closing: a clean close leaves every file written */
      ix->persist_want = 0;
      persist_pass(ix);
      continue;
    }
    pthread_cond_broadcast(&ix->persist_idle_cv);
    if (ix->persist_stop) break;
    qi__cond_wait(ix, &ix->persist_cv);
  }
  qi__unlock(ix);
  return NULL;
}

void qi__persister_start(qi_index *ix) {
  if (ix->opt.no_persist) return;
  if (pthread_create(&ix->pthread, NULL, persist_main, ix)) {
    qb_log(QB_WARN, "index %s: no persister thread (%s); refresh writes segment files itself",
           ix->dir, strerror(errno));
    return;
  }
  qi__lock(ix);
  ix->persister = 1;
  qi__unlock(ix);
}

void qi__persister_stop(qi_index *ix) {
  if (!ix->persister) return;
  qi__lock(ix);
  ix->persist_stop = 1;
  pthread_cond_broadcast(&ix->persist_cv);
  qi__unlock(ix);
  pthread_join(ix->pthread, NULL);
  ix->persister = 0;
  qi__lock(ix);
  free_dead(ix);
  qi__unlock(ix);
}

void qi__persist_soon(qi_index *ix) {
  QB_ASSERT(qi__locked(ix));
  if (!ix->persister) {
    qi__persist_locked(ix);
    return;
  }
  ix->persist_want = 1;
  pthread_cond_broadcast(&ix->persist_cv);
}

void qi__retire_builder(qi_index *ix, qi__builder *b) {
  QB_ASSERT(qi__locked(ix));
  if (ix->persister &&
      !qi__grow((void **)&ix->dead, &ix->deadcap, ix->ndead + 1, sizeof *ix->dead)) {
    ix->dead[ix->ndead++] = b;
    pthread_cond_broadcast(&ix->persist_cv);
    return;
  }
  qi__builder_free(b);
}

void qi__persister_wait_idle(qi_index *ix) {
  QB_ASSERT(qi__locked(ix));
  while (ix->persister && (ix->persist_want || ix->persisting || ix->ndead))
    qi__cond_wait(ix, &ix->persist_idle_cv);
}
