/* catalog.c: named indexes under one data directory: DATA/indices/<name>/ holds each index.
** The catalog keeps one reference to every open index; callers take their own with
** qi_catalog_get. Deleting drops the catalog's reference and marks the index so its files go
** when the last reference is released. An index that cannot be opened (damage found at open)
** stays listed, with its reason, so nothing recreates it empty over its files: every get
** answers QB_CORRUPT until it is deleted (issue 13 #7). Creation is atomic: an index is built
** in DATA/indices/.new-<name> and renamed into place, so a failed create leaves no stub
** (issue 13 #6); leftover .new-* folders are removed at open. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct entry {
  char name[256];
  qi_index *ix;     /* NULL when damaged */
  char *damage;     /* why it could not be opened (qb_malloc'd), or NULL */
  uint64_t retry_ns; /* a failed index: when it may next be reopened */
} entry;

struct qi_catalog {
  pthread_mutex_t lock;
  char *dir; /* DATA/indices */
  qi_options opt;
  entry *e;  /* sorted by name */
  size_t n, cap;
};

static qb_code check_name(const char *name, qb_err *err) {
  size_t n = strlen(name), i;
  if (!n) return qb_fail(err, QB_INVAL, "invalid_index_name_exception: index name must not be empty");
  if (n > 255)
    return qb_fail(err, QB_INVAL, "invalid_index_name_exception: index name [%.40s...] is too long", name);
  if (!strcmp(name, ".") || !strcmp(name, ".."))
    return qb_fail(err, QB_INVAL, "invalid_index_name_exception: index name must not be '.' or '..'");
  if (name[0] == '-' || name[0] == '_' || name[0] == '+')
    return qb_fail(err, QB_INVAL, "invalid_index_name_exception: index name [%s] must not start with '_', '-', or '+'", name);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (strchr("\\/*?\"<>| ,#:", c) || c < 0x20)
      return qb_fail(err, QB_INVAL, "invalid_index_name_exception: index name [%s] must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, #, :]", name);
    if (c >= 'A' && c <= 'Z')
      return qb_fail(err, QB_INVAL, "invalid_index_name_exception: index name [%s] must be lowercase", name);
  }
  return QB_OK;
}

static long find(const qi_catalog *c, const char *name, size_t *pos) {
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int r = strcmp(c->e[mid].name, name);
    if (!r) {
      *pos = mid;
      return (long)mid;
    }
    if (r < 0) lo = mid + 1;
    else hi = mid;
  }
  *pos = lo;
  return -1;
}

static qb_code insert_entry(qi_catalog *c, const char *name, qi_index *ix, const char *damage,
                            qb_err *err) {
  size_t pos;
  if (find(c, name, &pos) >= 0) return qb_fail(err, QB_CONFLICT, "index [%s] already exists", name);
  if (qi__grow((void **)&c->e, &c->cap, c->n + 1, sizeof *c->e))
    return qb_fail(err, QB_NOMEM, "catalog: out of memory");
  char *why = NULL;
  if (damage) {
    size_t n = strlen(damage);
    if (!(why = qb_malloc(n + 1))) return qb_fail(err, QB_NOMEM, "catalog: out of memory");
    memcpy(why, damage, n + 1);
  }
  memmove(c->e + pos + 1, c->e + pos, (c->n - pos) * sizeof *c->e);
  snprintf(c->e[pos].name, sizeof c->e[pos].name, "%s", name);
  c->e[pos].ix = ix;
  c->e[pos].damage = why;
  c->e[pos].retry_ns = 0;
  c->n++;
  return QB_OK;
}

static qb_code insert(qi_catalog *c, const char *name, qi_index *ix, qb_err *err) {
  return insert_entry(c, name, ix, NULL, err);
}

static void entry_fini(entry *e) {
  if (e->damage) qb_free(e->damage, strlen(e->damage) + 1);
  e->damage = NULL;
}

/* Remove DIR and every file directly in it (a leftover .new-* folder of a failed create). */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[4600];
  if (!d) return;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* An index directory without docs.db: a crashed create (nothing else in it) or damage (its
** segment or commit files are there but its store is gone). */
static int has_index_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int found = 0;
  if (!d) return 0;
  while (!found && (de = readdir(d)) != NULL)
    found = !strncmp(de->d_name, "seg_", 4) || !strcmp(de->d_name, "segments") ||
            !strncmp(de->d_name, "docs.db", 7);
  closedir(d);
  return found;
}

static int mkdirs(const char *path) {
  char tmp[4096];
  size_t i, n = strlen(path);
  if (n >= sizeof tmp) return -1;
  memcpy(tmp, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == 0) {
      char ch = tmp[i];
      tmp[i] = 0;
      if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
      tmp[i] = ch;
    }
  }
  return 0;
}

qb_code qi_catalog_open(const char *data_dir, const qi_options *opt, qi_catalog **out,
                        qb_err *err) {
  qi_catalog *c;
  DIR *d;
  struct dirent *de;
  char path[4096];
  size_t n;
  qb_code rc = QB_OK;
  *out = NULL;
  if (snprintf(path, sizeof path, "%s/indices", data_dir) >= (int)sizeof path - 300)
    return qb_fail(err, QB_INVAL, "data directory path too long");
  if (mkdirs(path)) return qb_fail(err, QB_IO, "cannot create %s: %s", path, strerror(errno));
  if (!(c = qb_calloc(1, sizeof *c))) return qb_fail(err, QB_NOMEM, "catalog: out of memory");
  n = strlen(path);
  if (!(c->dir = qb_malloc(n + 1))) {
    qb_free(c, sizeof *c);
    return qb_fail(err, QB_NOMEM, "catalog: out of memory");
  }
  memcpy(c->dir, path, n + 1);
  if (opt) c->opt = *opt;
  pthread_mutex_init(&c->lock, NULL);
  if (!(d = opendir(path))) {
    qi_catalog_close(c);
    return qb_fail(err, QB_IO, "cannot read %s: %s", path, strerror(errno));
  }
  while ((de = readdir(d)) != NULL) {
    char ipath[4400];
    qi_index *ix;
    if (!strncmp(de->d_name, ".new-", 5)) { /* a create that did not finish: never acknowledged */
      snprintf(ipath, sizeof ipath, "%s/%s", path, de->d_name);
      qb_log(QB_WARN, "index %s: removing the leftover of an unfinished create", ipath);
      remove_tree(ipath);
      continue;
    }
    if (de->d_name[0] == '.' || check_name(de->d_name, NULL)) continue;
    snprintf(ipath, sizeof ipath, "%s/%s", path, de->d_name);
    qb_err oerr;
    rc = qi_index_open(ipath, opt, &ix, &oerr);
    if (rc == QB_NOTFOUND && !has_index_files(ipath)) { /* an empty folder: not an index */
      rc = QB_OK;
      continue;
    }
    if (rc == QB_NOTFOUND)
      snprintf(oerr.msg, sizeof oerr.msg, "docs.db is missing, but the folder still holds the "
               "index's segment files: its documents are gone; restore docs.db or delete the index");
    if (rc == QB_NOMEM) {
      if (err) *err = oerr;
      break;
    }
    if (rc) {
      /* Damage is shown, never papered over: the node starts, the index is listed red and
      ** refuses requests, and its files stay as they are for the operator. */
      qb_log(QB_ERROR, "index [%s] is damaged and will not serve: %s", de->d_name, oerr.msg);
      ix = NULL;
    }
    if ((rc = insert_entry(c, de->d_name, ix, ix ? NULL : oerr.msg, err))) {
      qi_index_close(ix);
      break;
    }
  }
  closedir(d);
  if (rc) {
    qi_catalog_close(c);
    return rc;
  }
  *out = c;
  return QB_OK;
}

void qi_catalog_close(qi_catalog *c) {
  size_t i;
  if (!c) return;
  for (i = 0; i < c->n; i++) {
    qi_index_release(c->e[i].ix);
    entry_fini(&c->e[i]);
  }
  qb_free(c->e, c->cap * sizeof *c->e);
  qb_free(c->dir, strlen(c->dir) + 1);
  pthread_mutex_destroy(&c->lock);
  qb_free(c, sizeof *c);
}

qb_code qi_catalog_create(qi_catalog *c, const char *name, const char *body_json, qi_index **out,
                          qb_err *err) {
  char path[4400];
  qi_index *ix;
  size_t pos;
  qb_code rc;
  if (out) *out = NULL;
  if ((rc = check_name(name, err))) return rc;
  pthread_mutex_lock(&c->lock);
  if (find(c, name, &pos) >= 0) {
    pthread_mutex_unlock(&c->lock);
    return qb_fail(err, QB_CONFLICT,
                   "resource_already_exists_exception: index [%s] already exists", name);
  }
  /* Built under a name no open can mistake for an index, then renamed: a create that fails
  ** anywhere (disk full, a bad body, a crash) leaves nothing behind. */
  char tmp[4400];
  snprintf(path, sizeof path, "%s/%s", c->dir, name);
  snprintf(tmp, sizeof tmp, "%s/.new-%s", c->dir, name);
  remove_tree(tmp);
  rc = qi_index_create(tmp, body_json, &c->opt, &ix, err);
  if (!rc) {
    qi_index_close(ix);
    ix = NULL;
    if (rename(tmp, path))
      rc = qb_fail(err, QB_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    else if ((rc = qi_index_open(path, &c->opt, &ix, err)))
      qi_index_destroy(path, NULL);
  }
  if (rc) remove_tree(tmp);
  if (!rc && (rc = insert(c, name, ix, err))) {
    qi__index_remove_on_free(ix);
    qi_index_close(ix);
  }
  if (!rc && out) *out = qi_index_retain(ix);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

qb_code qi_catalog_get(qi_catalog *c, const char *name, qi_index **out, qb_err *err) {
  size_t pos;
  long i;
  *out = NULL;
  pthread_mutex_lock(&c->lock);
  i = find(c, name, &pos);
  if (i >= 0 && c->e[i].damage) {
    qb_code rc = qb_fail(err, QB_CORRUPT, "index [%s] is damaged: %s", name, c->e[i].damage);
    pthread_mutex_unlock(&c->lock);
    return rc;
  }
  qi_index *stale = NULL;
  if (i >= 0 && qi__index_failed(c->e[i].ix) && qb_now_ns() >= c->e[i].retry_ns) {
    /* A write failed after changing memory (disk full): the store rolled it back, so the store
    ** is right and memory is not. Reopen from the store, at most once a second, so writes work
    ** again once space returns, without a restart (issue 13 #6). Searches that still hold the
    ** old instance finish on it; it writes nothing more. */
    char path[4400];
    qi_index *fresh;
    qb_err oerr;
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    c->e[i].retry_ns = qb_now_ns() + 1000000000ull;
    if (qi_index_open(path, &c->opt, &fresh, &oerr) == QB_OK) {
      stale = c->e[i].ix;
      c->e[i].ix = fresh;
      qb_log(QB_INFO, "index [%s] reopened from its store after a failed write", name);
    } else {
      qb_log(QB_WARN, "index [%s]: reopening after a failed write: %s", name, oerr.msg);
    }
  }
  if (i >= 0) *out = qi_index_retain(c->e[i].ix);
  pthread_mutex_unlock(&c->lock);
  qi_index_release(stale);
  if (i < 0) return qb_fail(err, QB_NOTFOUND, "index_not_found_exception: no such index [%s]", name);
  return QB_OK;
}

qb_code qi_catalog_delete(qi_catalog *c, const char *name, qb_err *err) {
  size_t pos;
  long i;
  qi_index *ix;
  pthread_mutex_lock(&c->lock);
  i = find(c, name, &pos);
  if (i < 0) {
    pthread_mutex_unlock(&c->lock);
    return qb_fail(err, QB_NOTFOUND, "index_not_found_exception: no such index [%s]", name);
  }
  ix = c->e[i].ix;
  int damaged = c->e[i].damage != NULL;
  entry_fini(&c->e[i]);
  memmove(c->e + i, c->e + i + 1, (c->n - (size_t)i - 1) * sizeof *c->e);
  c->n--;
  if (damaged) { /* nothing is open: remove its files now (the operator's way out) */
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    qb_log(QB_WARN, "index [%s]: the damaged index was deleted", name);
    pthread_mutex_unlock(&c->lock);
    return qi_index_destroy(path, err);
  }
  pthread_mutex_unlock(&c->lock);
  qi__index_remove_on_free(ix);
  qi_index_release(ix);
  return QB_OK;
}

qb_code qi_catalog_list_json(qi_catalog *c, qb_buf *out, qb_err *err) {
  size_t i;
  pthread_mutex_lock(&c->lock);
  qb_buf_puts(out, "[");
  for (i = 0; i < c->n; i++) {
    json_t *s = json_string(c->e[i].name);
    char *t = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    qb_buf_printf(out, "%s%s", i ? "," : "", t ? t : "\"\"");
    qi__json_free(t);
    json_decref(s);
  }
  qb_buf_puts(out, "]");
  pthread_mutex_unlock(&c->lock);
  return out->failed ? qb_fail(err, QB_NOMEM, "catalog: out of memory") : QB_OK;
}

size_t qi_catalog_count(qi_catalog *c) {
  size_t n;
  pthread_mutex_lock(&c->lock);
  n = c->n;
  pthread_mutex_unlock(&c->lock);
  return n;
}

qb_code qi_catalog_name(qi_catalog *c, size_t i, char name[256], qb_err *err) {
  qb_code rc = QB_OK;
  pthread_mutex_lock(&c->lock);
  if (i < c->n) memcpy(name, c->e[i].name, 256);
  else rc = qb_fail(err, QB_NOTFOUND, "catalog: no index number %zu", i);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

int qi_catalog_damaged(qi_catalog *c, const char *name, char *why, size_t cap) {
  size_t pos;
  long i;
  int damaged = 0;
  pthread_mutex_lock(&c->lock);
  i = find(c, name, &pos);
  if (i >= 0 && c->e[i].damage) {
    damaged = 1;
    if (why && cap) snprintf(why, cap, "%s", c->e[i].damage);
  }
  pthread_mutex_unlock(&c->lock);
  return damaged;
}
