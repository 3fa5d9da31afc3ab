/* merger.c: background merges. Up to merge_threads threads (default 1) each pick an adjacent
** window of segments when the list is longer than max_segments, merge it outside ix->lock from
** the immutable cores and a copy of their live bits taken at the start, write and map the
** result, and swap it in under the lock: deletes made meanwhile are carried over through the
** doc map. Refresh and writes never wait for a merge; they only wake the threads. A merge that
** fails (disk full, out of memory) changes nothing: the inputs keep serving, the failure is
** logged, and no merge is retried before the segment list changes.
** Invariant: a segment marked merging stays in ix->segs, in place relative to its window,
** until the merge that marked it clears the mark. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

typedef struct job {
  size_t n;
  uint32_t *nos;       /* the inputs' segment numbers */
  qi__seg **cores;     /* retained */
  uint64_t **live;     /* copies of the writer's bits at the start (NULL: all live) */
  uint32_t **maps;     /* old doc -> new doc */
  uint32_t seg_no, nfields;
  qi__seg *out;
  uint64_t in_bytes;
  size_t slot;         /* in ix->merge_out */
} job;

static size_t words_of(const qi__seg *c) { return ((size_t)c->max_doc + 63) / 64; }

static void job_free(job *j) {
  size_t i;
  for (i = 0; i < j->n; i++) {
    if (j->live && j->live[i]) qb_free(j->live[i], words_of(j->cores[i]) * sizeof(uint64_t));
    if (j->maps && j->maps[i]) qb_free(j->maps[i], ((size_t)j->cores[i]->max_doc + 1) * 4);
    if (j->cores) qi__seg_release(j->cores[i]);
  }
  qb_free(j->nos, j->n * sizeof *j->nos);
  qb_free(j->cores, j->n * sizeof *j->cores);
  qb_free(j->live, j->n * sizeof *j->live);
  qb_free(j->maps, j->n * sizeof *j->maps);
  qi__seg_release(j->out);
  memset(j, 0, sizeof *j);
}

/* Index in ix->segs of the window for merging, or SIZE_MAX: none needed or possible. */
static size_t pick(qi_index *ix, size_t *width) {
  size_t maxs = qi__max_segments(ix), mf = qi__merge_factor(ix), best = SIZE_MAX, i, k;
  uint64_t best_sum = UINT64_MAX;
  if (ix->opt.no_auto_merge || ix->failed || ix->merge_hold || ix->nseg <= maxs ||
      ix->merge_fail_gen == ix->seg_gen)
    return SIZE_MAX;
  if (mf > ix->nseg) mf = ix->nseg;
  for (i = 0; i + mf <= ix->nseg; i++) {
    uint64_t sum = 0;
    for (k = i; k < i + mf && !ix->segs[k].merging; k++)
      sum += ix->segs[k].core->max_doc - ix->segs[k].ndel;
    if (k == i + mf && sum < best_sum) {
      best_sum = sum;
      best = i;
    }
  }
  *width = mf;
  return best;
}

/* Take the window at A (under the lock): mark it, retain its cores, copy its bits. */
static qb_code take(qi_index *ix, size_t a, size_t n, job *j) {
  size_t i;
  memset(j, 0, sizeof *j);
  if (!(j->nos = qb_calloc(n, sizeof *j->nos)) || !(j->cores = qb_calloc(n, sizeof *j->cores)) ||
      !(j->live = qb_calloc(n, sizeof *j->live)) || !(j->maps = qb_calloc(n, sizeof *j->maps))) {
    qb_free(j->nos, n * sizeof *j->nos);
    qb_free(j->cores, n * sizeof *j->cores);
    qb_free(j->live, n * sizeof *j->live);
    memset(j, 0, sizeof *j);
    return QB_NOMEM;
  }
  j->n = n;
  for (i = 0; i < n; i++) {
    wseg *w = &ix->segs[a + i];
    j->nos[i] = w->core->seg_no;
    j->cores[i] = qi__seg_retain(w->core);
    j->in_bytes += w->core->map_len;
    if (w->bits) {
      size_t nw = words_of(w->core);
      if (!(j->live[i] = qb_malloc(nw * sizeof(uint64_t)))) goto oom;
      memcpy(j->live[i], w->bits, nw * sizeof(uint64_t));
    }
    if (!(j->maps[i] = qb_malloc(((size_t)w->core->max_doc + 1) * 4))) goto oom;
  }
  for (i = 0; i < n; i++) ix->segs[a + i].merging = 1;
  j->seg_no = ix->seg_counter++;
  for (j->slot = 0; ix->merge_out[j->slot] != UINT32_MAX; j->slot++) {
  } /* at most nmthreads jobs run, so a slot is free */
  ix->merge_out[j->slot] = j->seg_no;
  j->nfields = (uint32_t)ix->map.nfields;
  return QB_OK;
oom:
  job_free(j);
  return QB_NOMEM;
}

/* Outside the lock: merge, write the file, map it. */
static qb_code run(qi_index *ix, job *j, qb_err *err) {
  qb_code rc;
  qi__seg *m;
  char path[4400];
  if ((rc = qi__merge(j->cores, (const uint64_t *const *)j->live, j->n, j->nfields, j->seg_no,
                      &j->out, j->maps, &ix->merge_stop, err)))
    return rc;
  if (!j->out || ix->opt.no_persist) return QB_OK;
  if ((rc = qi__seg_write(j->out, ix->dir, err))) return rc;
  snprintf(path, sizeof path, "%s/seg_%08x.qis", ix->dir, j->seg_no);
  if ((rc = qi__seg_read(path, 0, &m, err))) {
    unlink(path);
    return rc;
  }
  qi__seg_release(j->out); /* the heap copy goes; the mapped file replaces it */
  j->out = m;
  return QB_OK;
}

static size_t find_no(const qi_index *ix, uint32_t no) {
  size_t i;
  for (i = 0; i < ix->nseg; i++)
    if (ix->segs[i].core->seg_no == no) return i;
  return SIZE_MAX;
}

static void unmark(qi_index *ix, const job *j) {
  size_t i, k;
  for (i = 0; i < j->n; i++)
    if ((k = find_no(ix, j->nos[i])) != SIZE_MAX) ix->segs[k].merging = 0;
}

/* Under the lock: replace the window by the merged segment, with the deletes made since the
** start. QB_NOMEM leaves everything as it was. */
static qb_code install(qi_index *ix, job *j) {
  size_t a = find_no(ix, j->nos[0]), i, w;
  uint64_t *bits = NULL;
  uint32_t ndel = 0;
  QB_ASSERT(qi__locked(ix));
  QB_ASSERT(a != SIZE_MAX && a + j->n <= ix->nseg);
  if (j->out) {
    for (i = 0; i < j->n; i++) {
      const wseg *in = &ix->segs[a + i];
      QB_ASSERT(in->core->seg_no == j->nos[i] && in->merging);
      if (!in->bits) continue;
      for (w = 0; w < words_of(in->core); w++) {
        uint64_t gone = (j->live[i] ? j->live[i][w] : ~0ull) & ~in->bits[w];
        while (gone) {
          uint32_t d = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(gone)), nd;
          gone &= gone - 1;
          if (d >= in->core->max_doc || (nd = j->maps[i][d]) == UINT32_MAX) continue;
          if (!bits) {
            size_t nw = words_of(j->out), k;
            if (!(bits = qb_malloc(nw * sizeof *bits))) return QB_NOMEM;
            for (k = 0; k < nw; k++) bits[k] = ~0ull;
            if (j->out->max_doc % 64) bits[nw - 1] = (1ull << (j->out->max_doc % 64)) - 1;
          }
          if ((bits[nd / 64] >> (nd % 64)) & 1) {
            bits[nd / 64] &= ~(1ull << (nd % 64));
            ndel++;
          }
        }
      }
    }
  }
  for (i = a; i < a + j->n; i++) qi__wseg_fini(&ix->segs[i]);
  if (j->out) {
    ix->segs[a] = (wseg){.core = j->out, .bits = bits, .ndel = ndel, .dirty = 1,
                         .persisted = j->out->map != NULL};
    j->out = NULL;
    memmove(ix->segs + a + 1, ix->segs + a + j->n, (ix->nseg - a - j->n) * sizeof *ix->segs);
    ix->nseg -= j->n - 1;
  } else {
    memmove(ix->segs + a, ix->segs + a + j->n, (ix->nseg - a - j->n) * sizeof *ix->segs);
    ix->nseg -= j->n;
  }
  /* the window's cores are now only the job's (and old snapshots') */
  ix->merges++;
  ix->seg_gen++;
  return QB_OK;
}

static void lower_priority(void) {
#ifdef SYS_gettid
  /* Linux: a thread's own nice value; searches and indexing win the CPU */
  if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10)) { /* best effort */
  }
#endif
}

static void throttle(const qi_index *ix, uint64_t bytes, uint64_t t0) {
  uint64_t want, took = qb_now_ns() - t0;
  struct timespec ts;
  if (!ix->opt.merge_mb_per_sec) return;
  want = (uint64_t)((double)bytes / ((double)ix->opt.merge_mb_per_sec * 1048576.0) * 1e9);
  if (want <= took) return;
  want -= took;
  if (want > 10ull * 1000000000ull) want = 10ull * 1000000000ull;
  ts.tv_sec = (time_t)(want / 1000000000ull);
  ts.tv_nsec = (long)(want % 1000000000ull);
  while (nanosleep(&ts, &ts) && errno == EINTR && !atomic_load(&ix->merge_stop)) {
  }
}

static void *merge_main(void *arg) {
  qi_index *ix = arg;
  lower_priority();
  qi__lock(ix);
  while (!atomic_load(&ix->merge_stop)) {
    size_t width = 0, a = pick(ix, &width);
    job j;
    qb_err err;
    qb_code rc;
    uint64_t t0;
    if (a == SIZE_MAX) {
      qi__cond_wait(ix, &ix->merge_cv);
      continue;
    }
    if (take(ix, a, width, &j)) {
      qb_log(QB_WARN, "index %s: merge: out of memory; the segments stay as they are", ix->dir);
      ix->merge_fail_gen = ix->seg_gen;
      continue;
    }
    ix->merges_running++;
    qi__unlock(ix);
    t0 = qb_now_ns();
    qb_err_clear(&err);
    rc = run(ix, &j, &err);
    qi__lock(ix);
    if (!rc && (rc = install(ix, &j)) == QB_NOMEM) qb_fail(&err, rc, "merge: out of memory");
    if (rc) {
      unmark(ix, &j);
      if (rc != QB_UNAVAILABLE) {
        ix->merge_fail_gen = ix->seg_gen;
        qb_log(QB_ERROR, "index %s: merge of %zu segments failed (%s); they keep serving",
               ix->dir, j.n, err.msg);
      }
    } else {
      qb_err perr;
      ix->merge_out[j.slot] = UINT32_MAX; /* named by the segment list now */
      qi__persist_soon(ix); /* the commit file names the merged segment */
      if (qi__publish(ix, &perr))
        qb_log(QB_WARN, "index %s: merged, not yet published (%s)", ix->dir, perr.msg);
    }
    ix->merge_out[j.slot] = UINT32_MAX;
    ix->merges_running--;
    pthread_cond_broadcast(&ix->idle_cv);
    qi__unlock(ix);
    {
      uint64_t bytes = j.in_bytes;
      job_free(&j);
#ifdef __GLIBC__
      malloc_trim(0); /* the merge's heap (encoders, the unmapped copy) back to the system */
#endif
      throttle(ix, bytes, t0);
    }
    qi__lock(ix);
  }
  qi__unlock(ix);
  return NULL;
}

void qi__merger_start(qi_index *ix) {
  size_t n = ix->opt.merge_threads ? ix->opt.merge_threads : 1, i;
  if (ix->opt.no_auto_merge) return;
  if (!(ix->mthreads = qb_calloc(n, sizeof *ix->mthreads))) return;
  if (!(ix->merge_out = qb_malloc(n * sizeof *ix->merge_out))) {
    qb_free(ix->mthreads, n * sizeof *ix->mthreads);
    ix->mthreads = NULL;
    return;
  }
  for (i = 0; i < n; i++) ix->merge_out[i] = UINT32_MAX;
  for (i = 0; i < n; i++) {
    if (pthread_create(&ix->mthreads[i], NULL, merge_main, ix)) {
      qb_log(QB_WARN, "index %s: no merge thread (%s); merges run inside refresh", ix->dir,
             strerror(errno));
      break;
    }
  }
  qi__lock(ix);
  ix->nmthreads = i;
  pthread_cond_broadcast(&ix->merge_cv);
  qi__unlock(ix);
  if (!i) {
    qb_free(ix->mthreads, n * sizeof *ix->mthreads);
    qb_free(ix->merge_out, n * sizeof *ix->merge_out);
    ix->mthreads = NULL;
    ix->merge_out = NULL;
  }
}

void qi__merger_kick(qi_index *ix) {
  QB_ASSERT(qi__locked(ix));
  if (ix->nmthreads) pthread_cond_broadcast(&ix->merge_cv);
}

void qi__merger_stop(qi_index *ix) {
  size_t i, n = ix->nmthreads;
  if (!ix->mthreads) return;
  atomic_store(&ix->merge_stop, 1);
  pthread_mutex_lock(&ix->lock);
  pthread_cond_broadcast(&ix->merge_cv);
  pthread_mutex_unlock(&ix->lock);
  for (i = 0; i < n; i++) pthread_join(ix->mthreads[i], NULL);
  qb_free(ix->mthreads, (ix->opt.merge_threads ? ix->opt.merge_threads : 1) * sizeof *ix->mthreads);
  qb_free(ix->merge_out,
          (ix->opt.merge_threads ? ix->opt.merge_threads : 1) * sizeof *ix->merge_out);
  ix->mthreads = NULL;
  ix->merge_out = NULL;
  ix->nmthreads = 0;
}

void qi__merger_wait_idle(qi_index *ix) {
  QB_ASSERT(qi__locked(ix));
  while (ix->merges_running) qi__cond_wait(ix, &ix->idle_cv);
}

void qi_index_wait_merges(qi_index *ix) {
  size_t w;
  qi__lock(ix);
  while (ix->nmthreads && (ix->merges_running || pick(ix, &w) != SIZE_MAX)) {
    pthread_cond_broadcast(&ix->merge_cv);
    qi__cond_wait(ix, &ix->idle_cv);
  }
  qi__persister_wait_idle(ix); /* and their files are written */
  qi__unlock(ix);
}
