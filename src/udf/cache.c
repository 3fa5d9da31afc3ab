/* cache.c: the native-code cache on disk (DATA/cache/). One file per entry, named by the
** SHA-256 of its key (module SHA-256, engine ABI version, triple, CPU features) plus ".qdn",
** holding an artifact container (artifact.c) around the object the hook emitted. Writes go to
** a temp file that is fsynced, renamed over the name and the folder fsynced, so a crash leaves
** the old entry, the new one or a stray temp file (removed at open), never a torn entry. Reads
** check everything (qu_artifact_parse + the key's fields); an entry that fails is removed,
** counted and recompiled, never loaded. Size is bounded: past max_bytes the least recently
** used entries go (use order kept in memory, and in the files' mtimes across restarts).
** Invariant: INDEX lists exactly the entries this process believes are on disk and SIZE is
** the sum of their sizes; both change only under MU. */
#define _GNU_SOURCE
#include "udf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define NAME_LEN 68 /* 64 hex + ".qdn" */
#define MAX_ENTRIES 100000

typedef struct centry {
  char name[NAME_LEN + 1];
  uint64_t size;
  uint64_t tick; /* last use: larger is more recent */
  int64_t mtime_ns;
} centry;

struct qu__cache {
  pthread_mutex_t mu;
  char dir[4096];
  uint64_t max_bytes;
  centry *index;
  uint32_t n, cap;
  uint64_t tick, size, tmpseq;
  int64_t last_stamp;  /* the last mtime given (ns): each one later than the one before */
  uint64_t hits, misses, evictions, rejected;
};

static void key_name(const qu__key *k, char name[NAME_LEN + 1]) {
  crypto_hash_sha256_state st;
  uint8_t h[32], abi[4];
  for (int i = 0; i < 4; i++) abi[i] = (uint8_t)(k->abi_version >> (8 * i));
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, k->module_sha256, 32);
  crypto_hash_sha256_update(&st, abi, 4);
  crypto_hash_sha256_update(&st, (const uint8_t *)k->triple, strlen(k->triple) + 1);
  crypto_hash_sha256_update(&st, (const uint8_t *)k->cpu_features, strlen(k->cpu_features) + 1);
  crypto_hash_sha256_final(&st, h);
  sodium_bin2hex(name, 65, h, 32);
  memcpy(name + 64, ".qdn", 5);
}

static void path_of(const qu__cache *c, const char *name, char *out, size_t n) {
  snprintf(out, n, "%s/%s", c->dir, name);
}

static centry *find(qu__cache *c, const char *name) {
  for (uint32_t i = 0; i < c->n; i++)
    if (!strcmp(c->index[i].name, name)) return &c->index[i];
  return NULL;
}

static void drop(qu__cache *c, centry *e, int unlink_file) {
  char path[4400];
  if (unlink_file) {
    path_of(c, e->name, path, sizeof path);
    unlink(path);
  }
  c->size -= e->size;
  *e = c->index[--c->n];
}

static qb_code add(qu__cache *c, const char *name, uint64_t size, uint64_t tick) {
  centry *e = find(c, name);
  if (e) {
    c->size -= e->size;
  } else {
    if (c->n == c->cap) {
      uint32_t cap = c->cap ? c->cap * 2 : 64;
      centry *p = qb_realloc(c->index, c->cap * sizeof *p, cap * sizeof *p);
      if (!p) return QB_NOMEM;
      c->index = p;
      c->cap = cap;
    }
    e = &c->index[c->n++];
    memcpy(e->name, name, NAME_LEN + 1);
  }
  e->size = size;
  e->tick = tick;
  c->size += size;
  return QB_OK;
}

/* Evict the least recently used entries while over the bound. */
static void evict(qu__cache *c) {
  while (c->size > c->max_bytes && c->n) {
    centry *lru = &c->index[0];
    for (uint32_t i = 1; i < c->n; i++)
      if (c->index[i].tick < lru->tick) lru = &c->index[i];
    qb_log(QB_INFO, "native cache: evicted %s (%llu bytes)", lru->name,
           (unsigned long long)lru->size);
    drop(c, lru, 1);
    c->evictions++;
  }
}

static int by_mtime(const void *a, const void *b) {
  const centry *x = a, *y = b;
  return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

static qb_code mkdirs(const char *dir, qb_err *err) {
  char p[4096];
  size_t n = strlen(dir);
  if (!n || n >= sizeof p) return qb_fail(err, QB_INVAL, "native cache: bad folder name");
  memcpy(p, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i]) continue;
    char ch = p[i];
    p[i] = 0;
    if (mkdir(p, 0755) && errno != EEXIST)
      return qb_fail(err, QB_IO, "native cache: cannot create %s: %s", p, strerror(errno));
    p[i] = ch;
  }
  return QB_OK;
}

qb_code qu__cache_open(const char *dir, uint64_t max_bytes, qu__cache **out, qb_err *err) {
  qu__cache *c;
  qb_code rc;
  DIR *d;
  struct dirent *de;
  *out = NULL;
  if (strlen(dir) >= sizeof c->dir - NAME_LEN - 32)
    return qb_fail(err, QB_INVAL, "native cache: folder name too long");
  if ((rc = mkdirs(dir, err))) return rc;
  if (!(d = opendir(dir)))
    return qb_fail(err, QB_IO, "native cache: cannot open %s: %s", dir, strerror(errno));
  if (!(c = qb_calloc(1, sizeof *c))) {
    closedir(d);
    return qb_fail(err, QB_NOMEM, "native cache: out of memory");
  }
  pthread_mutex_init(&c->mu, NULL);
  snprintf(c->dir, sizeof c->dir, "%s", dir);
  c->max_bytes = max_bytes;
  while ((de = readdir(d))) {
    char path[4400];
    struct stat st;
    path_of(c, de->d_name, path, sizeof path);
    if (!strncmp(de->d_name, ".tmp-", 5)) { /* a write a crash interrupted */
      unlink(path);
      continue;
    }
    size_t len = strlen(de->d_name);
    if (len != NAME_LEN || strcmp(de->d_name + 64, ".qdn") || stat(path, &st) ||
        !S_ISREG(st.st_mode) || c->n >= MAX_ENTRIES)
      continue;
    if (add(c, de->d_name, (uint64_t)st.st_size, 0)) {
      closedir(d);
      qu__cache_close(c);
      return qb_fail(err, QB_NOMEM, "native cache: out of memory");
    }
    c->index[c->n - 1].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  }
  closedir(d);
  /* the use order survives restarts in the mtimes (a hit touches its file) */
  if (c->n) qsort(c->index, c->n, sizeof *c->index, by_mtime);
  for (uint32_t i = 0; i < c->n; i++) {
    c->index[i].tick = ++c->tick;
    if (c->index[i].mtime_ns > c->last_stamp) c->last_stamp = c->index[i].mtime_ns;
  }
  evict(c);
  *out = c;
  return QB_OK;
}

void qu__cache_close(qu__cache *c) {
  if (!c) return;
  qb_free(c->index, c->cap * sizeof *c->index);
  pthread_mutex_destroy(&c->mu);
  qb_free(c, sizeof *c);
}

/* Read PATH whole into BUF, refusing more than an artifact can be. */
static qb_code read_entry(const char *path, qb_buf *buf, qb_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) return qb_fail(err, QB_NOTFOUND, "gone");
  if (fstat(fd, &st) || st.st_size < 0 ||
      (uint64_t)st.st_size > QU_ARTIFACT_HEADER + (uint64_t)QU_ARTIFACT_MAX_OBJECT) {
    close(fd);
    return qb_fail(err, QB_MALFORMED, "entry too large (%lld bytes)", (long long)st.st_size);
  }
  if (qb_buf_reserve(buf, (size_t)st.st_size)) {
    close(fd);
    return qb_fail(err, QB_NOMEM, "out of memory");
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf->data + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  buf->len = got;
  buf->data[got] = 0;
  return QB_OK;
}

/* Give PATH an mtime later than any given before (under MU), so the use order is on disk even
** when several uses fall in one tick of the file system's clock. */
static void stamp(qu__cache *c, const char *path) {
  struct timespec now, ts[2];
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
  if (ns <= c->last_stamp) ns = c->last_stamp + 1;
  c->last_stamp = ns;
  ts[0].tv_sec = ts[1].tv_sec = ns / 1000000000;
  ts[0].tv_nsec = ts[1].tv_nsec = ns % 1000000000;
  utimensat(AT_FDCWD, path, ts, 0);
}

static void reject_locked(qu__cache *c, centry *e, const char *why) {
  qb_log(QB_WARN, "native cache: entry %s rejected and removed: %s", e->name, why);
  drop(c, e, 1);
  c->rejected++;
}

qb_code qu__cache_get(qu__cache *c, const qu__key *k, qb_buf *buf, qu_artifact *a) {
  char name[NAME_LEN + 1], path[4400];
  qb_err err = {0};
  qb_code rc;
  key_name(k, name);
  path_of(c, name, path, sizeof path);
  pthread_mutex_lock(&c->mu);
  centry *e = find(c, name);
  if (!e) {
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    return QB_NOTFOUND;
  }
  qb_buf_reset(buf);
  rc = read_entry(path, buf, &err);
  if (rc == QB_NOTFOUND) { /* removed behind our back */
    drop(c, e, 0);
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    return QB_NOTFOUND;
  }
  if (!rc) rc = qu_artifact_parse((const uint8_t *)buf->data, buf->len, a, &err);
  if (!rc) rc = qu__artifact_match(a, k, &err);
  if (rc == QB_NOMEM) {
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    return QB_NOTFOUND;
  }
  if (rc) {
    reject_locked(c, e, err.msg);
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    return QB_NOTFOUND;
  }
  e->tick = ++c->tick;
  c->hits++;
  stamp(c, path); /* the use order, for the next start */
  pthread_mutex_unlock(&c->mu);
  return QB_OK;
}

void qu__cache_reject(qu__cache *c, const qu__key *k, const char *why) {
  char name[NAME_LEN + 1];
  key_name(k, name);
  pthread_mutex_lock(&c->mu);
  centry *e = find(c, name);
  if (e) {
    reject_locked(c, e, why);
    if (c->hits) c->hits--; /* the get that found it counted a hit: it was a miss after all */
    c->misses++;
  }
  pthread_mutex_unlock(&c->mu);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

qb_code qu__cache_put(qu__cache *c, const qu__key *k, uint32_t flags, const uint8_t *object,
                      size_t len, qb_err *err) {
  char name[NAME_LEN + 1], path[4400], tmp[4500];
  qu_artifact a;
  qb_buf out;
  qb_code rc;
  memset(&a, 0, sizeof a);
  a.abi_version = k->abi_version;
  a.flags = flags;
  memcpy(a.module_sha256, k->module_sha256, 32);
  snprintf(a.triple, sizeof a.triple, "%s", k->triple);
  snprintf(a.cpu_features, sizeof a.cpu_features, "%s", k->cpu_features);
  a.object = object;
  a.object_len = len;
  qb_buf_init(&out);
  if ((rc = qu_artifact_write(&a, &out, err))) {
    qb_buf_fini(&out);
    return rc;
  }
  key_name(k, name);
  path_of(c, name, path, sizeof path);
  pthread_mutex_lock(&c->mu);
  snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%d-%llu", c->dir, name, (int)getpid(),
           (unsigned long long)++c->tmpseq);
  pthread_mutex_unlock(&c->mu);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = qb_fail(err, QB_IO, "native cache: cannot create %s: %s", tmp, strerror(errno));
    qb_buf_fini(&out);
    return rc;
  }
  if (write_all(fd, out.data, out.len) || fsync(fd)) {
    rc = qb_fail(err, QB_IO, "native cache: cannot write %s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    qb_buf_fini(&out);
    return rc;
  }
  close(fd);
  pthread_mutex_lock(&c->mu);
  if (rename(tmp, path)) {
    rc = qb_fail(err, QB_IO, "native cache: cannot rename to %s: %s", path, strerror(errno));
    unlink(tmp);
  } else {
    int dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    stamp(c, path);
    if (add(c, name, out.len, ++c->tick)) {
      unlink(path); /* not indexed: do not leave it unaccounted */
      rc = qb_fail(err, QB_NOMEM, "native cache: out of memory");
    } else {
      evict(c);
    }
  }
  pthread_mutex_unlock(&c->mu);
  qb_buf_fini(&out);
  return rc;
}

void qu__cache_stats(qu__cache *c, qu_cache_stats *out) {
  pthread_mutex_lock(&c->mu);
  out->hits = c->hits;
  out->misses = c->misses;
  out->evictions = c->evictions;
  out->rejected = c->rejected;
  out->size_bytes = c->size;
  out->entries = c->n;
  pthread_mutex_unlock(&c->mu);
}
