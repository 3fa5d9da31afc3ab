/* auth.c: who may do what (issue 13 #8), in the spirit of Elasticsearch's security: users
** (HTTP Basic) and API keys (`Authorization: ApiKey base64(id:key)`), each with roles `read`,
** `write` (implies read) and `admin` (everything: UDFs, index create/delete, mappings). The
** auth file (JSON, `--auth-file`) holds only libsodium crypto_pwhash_str hashes. Verifying one
** costs ~50 ms by design, so a verified Authorization header is remembered (keyed by its
** BLAKE2b digest, never the secret) for AUTH_CACHE_S seconds.
** Invariant: with no auth file every request is allowed (a loopback-only node, said loudly at
** start; server.c refuses to start on any other address without one); with one, every request
** passes qs__auth_check before its handler runs.
** The credentials can be replaced while the node serves (qs__auth_reload: SIGHUP, a changed
** file, an API key created over REST in apikeys.c): a new set is loaded whole or not at all,
** swapped in under MU, and the cache of verified headers is emptied, so a removed or
** invalidated credential stops working at once. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define AUTH_CACHE 64
#define AUTH_CACHE_S 300

typedef struct cred {
  char *name;
  char *hash;     /* crypto_pwhash_str output */
  unsigned roles; /* QS_ROLE_* bits */
  int is_key;
  /* API keys (apikeys.c): a display name, when it was made, when it expires and when it was
  ** invalidated (ms since the epoch; 0: not given, never, not). An invalidated or expired key
  ** fails authentication but is still listed. */
  char *label;    /* NULL: the key's id */
  int64_t created_ms, expires_ms, invalidated_ms;
} cred;

typedef struct cached {
  uint8_t digest[32];
  uint64_t until_ns;
  unsigned roles;
  char name[64];
} cached;

struct qs__auth {
  cred *c;                   /* guarded by mu (replaced whole by a reload) */
  size_t n;
  pthread_mutex_t mu;
  cached cache[AUTH_CACHE];
  size_t next;
  char *path;                /* the auth file */
  pthread_mutex_t file_mu;   /* serialises read-modify-write of the file (apikeys.c) */
  int lock_fd;               /* PATH.lock, flock'ed while file_mu is held (-1: none) */
  struct stat seen;          /* the file as last loaded (qs__auth_changed) */
};

static unsigned role_bit(const char *r) {
  if (!strcmp(r, "read")) return QS_ROLE_READ;
  if (!strcmp(r, "write")) return QS_ROLE_READ | QS_ROLE_WRITE;
  if (!strcmp(r, "admin")) return QS_ROLE_READ | QS_ROLE_WRITE | QS_ROLE_ADMIN;
  return 0;
}

static void free_creds(cred *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    qb_free(c[i].name, strlen(c[i].name) + 1);
    qb_free(c[i].hash, strlen(c[i].hash) + 1);
    if (c[i].label) qb_free(c[i].label, strlen(c[i].label) + 1);
  }
  qb_free(c, n * sizeof *c);
}

static char *dup_str(const char *s) {
  size_t n = strlen(s);
  char *d = qb_malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

/* {"users": {NAME: {"hash": H, "roles": [R...]}}, "api_keys": {ID: {...}}} */
static qb_code load(const char *path, cred **out, size_t *nout, qb_err *err) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  *out = NULL;
  *nout = 0;
  if (!j) return qb_fail(err, QB_INVAL, "auth file %s: %s (line %d)", path, je.text, je.line);
  size_t total = 0;
  static const char *const sections[2] = {"users", "api_keys"};
  for (int k = 0; k < 2; k++) {
    json_t *o = json_object_get(j, sections[k]);
    if (o && !json_is_object(o)) {
      json_decref(j);
      return qb_fail(err, QB_INVAL, "auth file %s: [%s] must be an object", path, sections[k]);
    }
    total += json_object_size(o);
  }
  cred *c = total ? qb_calloc(total, sizeof *c) : NULL;
  if (total && !c) {
    json_decref(j);
    return qb_fail(err, QB_NOMEM, "auth file: out of memory");
  }
  size_t n = 0;
  qb_code rc = QB_OK;
  for (int k = 0; k < 2 && !rc; k++) {
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(j, sections[k]), name, v) {
      const char *h = json_string_value(json_object_get(v, "hash"));
      json_t *roles = json_object_get(v, "roles");
      unsigned bits = 0;
      size_t i;
      json_t *r;
      if (!h || strncmp(h, "$argon2", 7) || !json_is_array(roles) || strlen(name) >= 64) {
        rc = qb_fail(err, QB_INVAL, "auth file %s: %s [%s] needs a crypto_pwhash \"hash\" and "
                     "\"roles\" (and a name under 64 bytes)", path, sections[k], name);
        break;
      }
      json_array_foreach(roles, i, r) {
        unsigned b = json_is_string(r) ? role_bit(json_string_value(r)) : 0;
        if (!b) {
          rc = qb_fail(err, QB_INVAL, "auth file %s: %s [%s]: unknown role (read, write, admin)",
                       path, sections[k], name);
          break;
        }
        bits |= b;
      }
      if (rc) break;
      if (!(c[n].name = dup_str(name)) || !(c[n].hash = dup_str(h))) {
        if (c[n].name) qb_free(c[n].name, strlen(c[n].name) + 1);
        rc = qb_fail(err, QB_NOMEM, "auth file: out of memory");
        break;
      }
      c[n].roles = bits;
      c[n].is_key = k == 1;
      const char *label = json_string_value(json_object_get(v, "name"));
      if (k == 1 && label && !(c[n].label = dup_str(label))) {
        qb_free(c[n].name, strlen(c[n].name) + 1);
        qb_free(c[n].hash, strlen(c[n].hash) + 1);
        rc = qb_fail(err, QB_NOMEM, "auth file: out of memory");
        break;
      }
      c[n].created_ms = json_integer_value(json_object_get(v, "creation"));
      c[n].expires_ms = json_integer_value(json_object_get(v, "expiration"));
      c[n].invalidated_ms = json_integer_value(json_object_get(v, "invalidated"));
      n++;
    }
  }
  json_decref(j);
  if (rc) {
    free_creds(c, n);
    return rc;
  }
  *out = c;
  *nout = n;
  return QB_OK;
}

static int usable(const cred *c, int64_t now_ms) {
  return !c->invalidated_ms && (!c->expires_ms || c->expires_ms > now_ms);
}

/* The credentials of PATH, with at least one usable; ST gets the file's stat. */
static qb_code load_checked(const char *path, cred **out, size_t *nout, struct stat *st,
                            qb_err *err) {
  if (stat(path, st)) memset(st, 0, sizeof *st);
  qb_code rc = load(path, out, nout, err);
  if (rc) return rc;
  int64_t now = qb_wall_ms();
  for (size_t i = 0; i < *nout; i++)
    if (usable(&(*out)[i], now)) return QB_OK;
  free_creds(*out, *nout);
  *out = NULL;
  *nout = 0;
  return qb_fail(err, QB_INVAL, "auth file %s: no users and no usable api_keys", path);
}

qb_code qs__auth_open(const char *path, qs__auth **out, qb_err *err) {
  *out = NULL;
  if (sodium_init() < 0) return qb_fail(err, QB_INTERNAL, "auth: libsodium init failed");
  qs__auth *a = qb_calloc(1, sizeof *a);
  if (!a) return qb_fail(err, QB_NOMEM, "auth: out of memory");
  qb_code rc = load_checked(path, &a->c, &a->n, &a->seen, err);
  if (!rc && !(a->path = dup_str(path))) rc = qb_fail(err, QB_NOMEM, "auth: out of memory");
  if (rc) {
    free_creds(a->c, a->n);
    qb_free(a, sizeof *a);
    return rc;
  }
  pthread_mutex_init(&a->mu, NULL);
  pthread_mutex_init(&a->file_mu, NULL);
  a->lock_fd = -1;
  *out = a;
  return QB_OK;
}

void qs__auth_free(qs__auth *a) {
  if (!a) return;
  free_creds(a->c, a->n);
  pthread_mutex_destroy(&a->mu);
  pthread_mutex_destroy(&a->file_mu);
  qb_free(a->path, strlen(a->path) + 1);
  qb_free(a, sizeof *a);
}

const char *qs__auth_path(const qs__auth *a) { return a->path; }

qb_code qs__auth_reload(qs__auth *a, size_t *users, size_t *keys, qb_err *err) {
  cred *c, *old;
  size_t n, oldn;
  struct stat st;
  qb_code rc = load_checked(a->path, &c, &n, &st, err);
  if (rc) return rc;
  pthread_mutex_lock(&a->mu);
  old = a->c, oldn = a->n;
  a->c = c, a->n = n;
  a->seen = st;
  memset(a->cache, 0, sizeof a->cache); /* what was verified may be gone */
  pthread_mutex_unlock(&a->mu);
  free_creds(old, oldn);
  if (users || keys) {
    size_t u = 0;
    for (size_t i = 0; i < n; i++) u += !c[i].is_key;
    if (users) *users = u;
    if (keys) *keys = n - u;
  }
  return QB_OK;
}

int qs__auth_changed(qs__auth *a) {
  struct stat st;
  if (stat(a->path, &st)) return 0; /* gone: keep serving with what was loaded */
  pthread_mutex_lock(&a->mu);
  int changed = st.st_mtim.tv_sec != a->seen.st_mtim.tv_sec ||
                st.st_mtim.tv_nsec != a->seen.st_mtim.tv_nsec || st.st_size != a->seen.st_size ||
                st.st_ino != a->seen.st_ino;
  if (changed) a->seen = st; /* one attempt per change, good or bad */
  pthread_mutex_unlock(&a->mu);
  return changed;
}

/* PATH.lock, opened and flock'ed (LOCK_EX) so another process (`quidditch auth add-user`)
** changing the file waits for us and we for it; -1 when it cannot be (then only this process's
** changes are serialised). */
static int lock_path(const char *path) {
  char lp[4200];
  snprintf(lp, sizeof lp, "%s.lock", path);
  int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0 && flock(fd, LOCK_EX)) {
    close(fd);
    fd = -1;
  }
  return fd;
}

static void unlock_path(int fd) {
  if (fd >= 0) close(fd); /* closing releases the flock */
}

void qs__auth_lock_file(qs__auth *a, int lock) {
  if (lock) {
    pthread_mutex_lock(&a->file_mu);
    a->lock_fd = lock_path(a->path);
  } else {
    unlock_path(a->lock_fd);
    a->lock_fd = -1;
    pthread_mutex_unlock(&a->file_mu);
  }
}

json_t *qs__auth_keys(qs__auth *a) {
  json_t *arr = json_array();
  int64_t now = qb_wall_ms();
  pthread_mutex_lock(&a->mu);
  for (size_t i = 0; arr && i < a->n; i++) {
    const cred *c = &a->c[i];
    if (!c->is_key) continue;
    json_t *roles = json_array();
    static const char *const names[3] = {"read", "write", "admin"};
    for (int b = 2; b >= 0 && roles; b--) /* the highest role given implies the others */
      if (c->roles & (1u << b)) {
        json_array_append_new(roles, json_string(names[b]));
        break;
      }
    json_t *k = json_pack("{s:s, s:s, s:o, s:b, s:b}", "id", c->name, "name",
                          c->label ? c->label : c->name, "roles", roles ? roles : json_array(),
                          "invalidated", c->invalidated_ms != 0,
                          "expired", c->expires_ms && c->expires_ms <= now);
    if (k && c->created_ms) json_object_set_new(k, "creation", json_integer(c->created_ms));
    if (k && c->expires_ms) json_object_set_new(k, "expiration", json_integer(c->expires_ms));
    if (k && c->invalidated_ms)
      json_object_set_new(k, "invalidation", json_integer(c->invalidated_ms));
    if (!k || json_array_append_new(arr, k)) {
      json_decref(arr);
      arr = NULL;
    }
  }
  pthread_mutex_unlock(&a->mu);
  return arr;
}

/* What a route needs: admin for the UDF and index-level changes, write for documents, read for
** everything else (searches, gets, cluster info, metrics). */
static unsigned needs(const qs_req *r) {
  qs_handler h = qs__routes[r->route].handler;
  if (h == qs__h_udf_put || h == qs__h_udf_delete || h == qs__h_udf_rollback ||
      h == qs__h_index_create || h == qs__h_index_delete || h == qs__h_mapping_put ||
      h == qs__h_api_key_create || h == qs__h_api_key_get || h == qs__h_api_key_invalidate)
    return QS_ROLE_ADMIN;
  if (h == qs__h_bulk || h == qs__h_doc_put || h == qs__h_doc_create || h == qs__h_doc_update ||
      h == qs__h_doc_delete || h == qs__h_delete_by_query || h == qs__h_refresh)
    return QS_ROLE_WRITE;
  return QS_ROLE_READ;
}

/* NAME:SECRET from "Basic b64" or "ApiKey b64"; returns 1 (user) or 2 (key), 0 when malformed. */
static int decode(const char *hdr, char *name, size_t ncap, char *secret, size_t scap) {
  int kind;
  const char *b64;
  if (!strncmp(hdr, "Basic ", 6)) kind = 1, b64 = hdr + 6;
  else if (!strncmp(hdr, "ApiKey ", 7)) kind = 2, b64 = hdr + 7;
  else return 0;
  unsigned char raw[512];
  size_t n = 0;
  if (strlen(b64) > 680 ||
      sodium_base642bin(raw, sizeof raw - 1, b64, strlen(b64), " ", &n, NULL,
                        sodium_base64_VARIANT_ORIGINAL))
    return 0;
  raw[n] = 0;
  unsigned char *colon = memchr(raw, ':', n);
  if (!colon || (size_t)(colon - raw) >= ncap || n - (size_t)(colon - raw) > scap) return 0;
  memcpy(name, raw, (size_t)(colon - raw));
  name[colon - raw] = 0;
  memcpy(secret, colon + 1, n - (size_t)(colon - raw) - 1);
  secret[n - (size_t)(colon - raw) - 1] = 0;
  sodium_memzero(raw, sizeof raw);
  return memchr(name, 0, (size_t)(colon - raw)) ? 0 : kind;
}

int qs__auth_check(qs_req *r) {
  int node = qs__cluster_auth(r); /* another node of the cluster, or an internal route */
  if (node >= 0) return node;
  qs__auth *a = r->srv->auth;
  if (!a) return 1;
  const char *hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
  if (!hdr) {
    qs__reply_error(r, 401, "security_exception",
                    "missing authentication credentials for REST request [%s]", r->path);
    return 0;
  }
  uint8_t dg[32];
  crypto_generichash(dg, sizeof dg, (const unsigned char *)hdr, strlen(hdr), NULL, 0);
  unsigned roles = 0;
  char who[64] = "";
  uint64_t now = qb_now_ns();
  int hit = 0;
  pthread_mutex_lock(&a->mu);
  for (size_t i = 0; i < AUTH_CACHE; i++)
    if (a->cache[i].until_ns > now && !sodium_memcmp(a->cache[i].digest, dg, sizeof dg)) {
      roles = a->cache[i].roles;
      memcpy(who, a->cache[i].name, sizeof who);
      hit = 1;
      break;
    }
  pthread_mutex_unlock(&a->mu);
  if (!hit) {
    char name[64], secret[256], hash[crypto_pwhash_STRBYTES];
    int kind = decode(hdr, name, sizeof name, secret, sizeof secret);
    unsigned found = 0;
    int64_t expires = 0;
    pthread_mutex_lock(&a->mu); /* the set may be swapped by a reload: copy what we need */
    for (size_t i = 0; kind && i < a->n; i++)
      if (a->c[i].is_key == (kind == 2) && !strcmp(a->c[i].name, name)) {
        if (usable(&a->c[i], qb_wall_ms()) && strlen(a->c[i].hash) < sizeof hash) {
          found = a->c[i].roles;
          expires = a->c[i].expires_ms;
          memcpy(hash, a->c[i].hash, strlen(a->c[i].hash) + 1);
        }
        break;
      }
    pthread_mutex_unlock(&a->mu);
    if (found && !crypto_pwhash_str_verify(hash, secret, strlen(secret))) {
      roles = found;
      snprintf(who, sizeof who, "%s", name);
    }
    sodium_memzero(secret, sizeof secret);
    if (!roles) {
      qs__reply_error(r, 401, "security_exception",
                      "unable to authenticate user for REST request [%s]", r->path);
      return 0;
    }
    pthread_mutex_lock(&a->mu);
    cached *e = &a->cache[a->next++ % AUTH_CACHE];
    memcpy(e->digest, dg, sizeof dg);
    e->until_ns = now + (uint64_t)AUTH_CACHE_S * 1000000000ull;
    if (expires) { /* an expiring key is remembered no longer than it lives */
      int64_t left_ms = expires - qb_wall_ms();
      uint64_t left = left_ms > 0 ? (uint64_t)left_ms * 1000000ull : 0;
      if (left < (uint64_t)AUTH_CACHE_S * 1000000000ull) e->until_ns = now + left;
    }
    e->roles = roles;
    memcpy(e->name, who, sizeof e->name);
    pthread_mutex_unlock(&a->mu);
  }
  unsigned need = needs(r);
  if (!(roles & need)) {
    qs__reply_error(r, 403, "security_exception",
                    "action [%s %s] is unauthorized for user [%s]: it needs the [%s] role",
                    r->method, qs__routes[r->route].pattern, who,
                    need == QS_ROLE_ADMIN ? "admin" : need == QS_ROLE_WRITE ? "write" : "read");
    return 0;
  }
  return 1;
}

qb_code qs_auth_add(const char *path, int api_key, const char *name, const char *secret,
                    const char *role, qb_err *err) {
  if (sodium_init() < 0) return qb_fail(err, QB_INTERNAL, "auth: libsodium init failed");
  if (!role_bit(role)) return qb_fail(err, QB_INVAL, "unknown role [%s] (read, write, admin)", role);
  if (!*name || strlen(name) >= 64 || strchr(name, ':'))
    return qb_fail(err, QB_INVAL, "name [%s]: 1-63 bytes, no ':'", name);
  if (strlen(secret) < 8) return qb_fail(err, QB_INVAL, "a password or key has at least 8 bytes");
  json_error_t je;
  int lfd = lock_path(path); /* a running node's REST changes to the same file wait */
  json_t *j = json_load_file(path, 0, &je);
  if (!j) j = json_object();
  const char *sec = api_key ? "api_keys" : "users";
  json_t *o = json_object_get(j, sec);
  if (!o) json_object_set_new(j, sec, o = json_object());
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, secret, strlen(secret), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
    json_decref(j);
    unlock_path(lfd);
    return qb_fail(err, QB_NOMEM, "auth: crypto_pwhash_str ran out of memory");
  }
  json_object_set_new(o, name, json_pack("{s:s, s:[s]}", "hash", hash, "roles", role));
  qb_code rc = qs__auth_write(path, j, err);
  json_decref(j);
  unlock_path(lfd);
  return rc;
}

qb_code qs__auth_write(const char *path, const json_t *j, qb_err *err) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  qb_code rc = QB_OK;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600); /* hashes only, still private */
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  int bad = !f || json_dumpf(j, f, JSON_INDENT(2)) || fputc('\n', f) == EOF || fflush(f) ||
            fsync(fileno(f));
  if (f && fclose(f)) bad = 1;
  if (!f && fd >= 0) close(fd);
  if (bad || rename(tmp, path)) {
    rc = qb_fail(err, QB_IO, "cannot write %s: %s", path, strerror(errno));
    remove(tmp);
  }
  return rc;
}
