/* etcd.c: an etcd v3 client over the JSON gateway (etcd 3.4: the kv, lease and watch routes),
** /v3/watch), with libcurl and jansson. Keys and values travel base64-encoded; int64 fields
** come back as strings (protobuf's JSON mapping) and are read either way. Each call uses its
** own easy handle, so any thread may call; leases and watches run on their own threads.
** Invariant: every answer is checked for its shape before use; a malformed one is QB_CORRUPT,
** never a crash. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct qc_etcd {
  char endpoint[256];
  uint32_t timeout_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- base64 ------------------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const void *data, size_t n) {
  const uint8_t *p = data;
  size_t out_len = 4 * ((n + 2) / 3);
  char *o = qb_malloc(out_len + 1), *w = o;
  if (!o) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    *w++ = b64[v >> 18 & 63];
    *w++ = b64[v >> 12 & 63];
    *w++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
    *w++ = i + 2 < n ? b64[v & 63] : '=';
  }
  *w = 0;
  return o;
}

static int b64_val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Decode S into a new NUL-terminated buffer (*LEN bytes before the NUL); NULL when bad/OOM. */
static char *b64_decode(const char *s, size_t *len, size_t *alloc) {
  size_t n = strlen(s);
  *alloc = n / 4 * 3 + 4;
  char *o = qb_malloc(*alloc), *w = o;
  if (!o) return NULL;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '=') break;
    int v = b64_val(s[i]);
    if (v < 0) {
      qb_free(o, *alloc);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *w++ = (char)(acc >> bits & 0xff);
    }
  }
  *w = 0;
  *len = (size_t)(w - o);
  return o;
}

/* ---- one request ------------------------------------------------------------------------ */

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
  qb_buf *b = ud;
  return qb_buf_append(b, p, sz * nm) ? 0 : sz * nm;
}

/* POST BODY (a JSON object, consumed) to PATH; *OUT: the answer object. */
static qb_code call(qc_etcd *e, const char *path, json_t *body, json_t **out, qb_err *err) {
  *out = NULL;
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text) return qb_fail(err, QB_NOMEM, "etcd: out of memory");
  char url[512];
  snprintf(url, sizeof url, "%s%s", e->endpoint, path);
  CURL *c = curl_easy_init();
  qb_buf b;
  qb_buf_init(&b);
  qb_code rc = QB_OK;
  if (!c) {
    qc__json_free(text);
    return qb_fail(err, QB_NOMEM, "etcd: cannot make a curl handle");
  }
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, ""); /* etcd directly, whatever http_proxy says */
  CURLcode cc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK) {
    rc = qb_fail(err, QB_UNAVAILABLE, "etcd at %s is unreachable: %s", e->endpoint,
                 curl_easy_strerror(cc));
  } else {
    json_error_t je;
    json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, &je);
    if (!json_is_object(j)) {
      rc = qb_fail(err, status >= 500 ? QB_UNAVAILABLE : QB_CORRUPT,
                   "etcd at %s: %s answered HTTP %ld, not a JSON object", e->endpoint, path,
                   status);
      json_decref(j);
    } else if (status != 200) {
      const char *m = json_string_value(json_object_get(j, "error"));
      if (!m) m = json_string_value(json_object_get(j, "message"));
      rc = qb_fail(err, status >= 500 ? QB_UNAVAILABLE : QB_INVAL, "etcd at %s: %s: HTTP %ld: %s",
                   e->endpoint, path, status, m ? m : "error");
      json_decref(j);
    } else {
      *out = j;
    }
  }
  curl_slist_free_all(hdr);
  curl_easy_cleanup(c);
  qb_buf_fini(&b);
  qc__json_free(text);
  return rc;
}

/* An int64 field (string or number), 0 when absent. */
static int64_t i64(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  if (json_is_integer(v)) return json_integer_value(v);
  if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
  return 0;
}

static json_t *b64_json(const void *p, size_t n) {
  char *s = b64_encode(p, n);
  json_t *j = s ? json_string(s) : NULL;
  if (s) qb_free(s, strlen(s) + 1);
  return j;
}

static json_t *i64_json(int64_t v) {
  char s[32];
  snprintf(s, sizeof s, "%lld", (long long)v);
  return json_string(s);
}

/* The end of the range of keys starting with PREFIX: PREFIX with its last byte + 1. */
static json_t *range_end(const char *prefix) {
  size_t n = strlen(prefix);
  char buf[1024];
  if (n >= sizeof buf) return NULL;
  memcpy(buf, prefix, n);
  while (n && (uint8_t)buf[n - 1] == 0xff) n--;
  if (!n) return b64_json("", 1); /* "\0": every key */
  buf[n - 1] = (char)((uint8_t)buf[n - 1] + 1);
  return b64_json(buf, n);
}

void qc_kvs_fini(qc_kvs *k) {
  for (size_t i = 0; i < k->n; i++) {
    qb_free(k->kv[i].key, k->kv[i].key_len + 1);
    qb_free(k->kv[i].value, k->kv[i].value_len + 1);
  }
  qb_free(k->kv, k->n * sizeof *k->kv);
  memset(k, 0, sizeof *k);
}

/* kv JSON -> K (copies). */
static qb_code kv_read(const json_t *j, qc_kv *k, qb_err *err) {
  memset(k, 0, sizeof *k);
  const char *key = json_string_value(json_object_get(j, "key"));
  const char *val = json_string_value(json_object_get(j, "value"));
  size_t a1, a2;
  if (!key) return qb_fail(err, QB_CORRUPT, "etcd: a kv without a key");
  if (!(k->key = b64_decode(key, &k->key_len, &a1))) goto bad;
  /* b64_decode allocated a1 bytes; qc_kvs_fini frees key_len + 1: shrink to match */
  char *kk = qb_realloc(k->key, a1, k->key_len + 1);
  if (kk) k->key = kk;
  else goto bad;
  if (!(k->value = b64_decode(val ? val : "", &k->value_len, &a2))) goto bad;
  char *vv = qb_realloc(k->value, a2, k->value_len + 1);
  if (vv) k->value = vv;
  else goto bad;
  k->create_revision = i64(j, "create_revision");
  k->mod_revision = i64(j, "mod_revision");
  k->version = i64(j, "version");
  k->lease = i64(j, "lease");
  return QB_OK;
bad:
  qb_free(k->key, k->key ? k->key_len + 1 : 0);
  memset(k, 0, sizeof *k);
  return qb_fail(err, QB_CORRUPT, "etcd: a kv that is not base64");
}

static qb_code kvs_read(const json_t *res, qc_kvs *out, qb_err *err) {
  memset(out, 0, sizeof *out);
  out->revision = i64(json_object_get(res, "header"), "revision");
  const json_t *arr = json_object_get(res, "kvs");
  size_t n = json_array_size(arr);
  if (!n) return QB_OK;
  if (!(out->kv = qb_calloc(n, sizeof *out->kv))) return qb_fail(err, QB_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    qb_code rc = kv_read(json_array_get(arr, i), &out->kv[i], err);
    if (rc) {
      out->n = n; /* the entries after I are zeroed: fini frees what was read */
      qc_kvs_fini(out);
      return rc;
    }
  }
  out->n = n;
  return QB_OK;
}

/* ---- kv ----------------------------------------------------------------------------------- */

qb_code qc_etcd_open(const char *endpoint, uint32_t timeout_ms, qc_etcd **out, qb_err *err) {
  *out = NULL;
  pthread_once(&curl_once, curl_init);
  if (!endpoint || strncmp(endpoint, "http://", 7) || strlen(endpoint) >= 200)
    return qb_fail(err, QB_INVAL, "etcd endpoint [%s]: expected http://HOST:PORT",
                   endpoint ? endpoint : "");
  qc_etcd *e = qb_calloc(1, sizeof *e);
  if (!e) return qb_fail(err, QB_NOMEM, "etcd: out of memory");
  snprintf(e->endpoint, sizeof e->endpoint, "%s", endpoint);
  size_t n = strlen(e->endpoint);
  while (n && e->endpoint[n - 1] == '/') e->endpoint[--n] = 0;
  e->timeout_ms = timeout_ms ? timeout_ms : 2000;
  qc_kvs k;
  qb_code rc = qc_etcd_get(e, "/quidditch/ping", &k, err);
  if (rc) {
    qb_free(e, sizeof *e);
    return rc;
  }
  qc_kvs_fini(&k);
  *out = e;
  return QB_OK;
}

void qc_etcd_close(qc_etcd *e) {
  if (e) qb_free(e, sizeof *e);
}

const char *qc_etcd_endpoint(const qc_etcd *e) { return e->endpoint; }

static qb_code range(qc_etcd *e, const char *key, int prefix, int keys_only, qc_kvs *out,
                     qb_err *err) {
  memset(out, 0, sizeof *out);
  json_t *b = json_pack("{s:o}", "key", b64_json(key, strlen(key))), *res;
  if (b && prefix) json_object_set_new(b, "range_end", range_end(key));
  if (b && keys_only) json_object_set_new(b, "keys_only", json_true());
  qb_code rc = call(e, "/v3/kv/range", b, &res, err);
  if (rc) return rc;
  rc = kvs_read(res, out, err);
  json_decref(res);
  return rc;
}

qb_code qc_etcd_get(qc_etcd *e, const char *key, qc_kvs *out, qb_err *err) {
  return range(e, key, 0, 0, out, err);
}

qb_code qc_etcd_range(qc_etcd *e, const char *prefix, int keys_only, qc_kvs *out, qb_err *err) {
  return range(e, prefix, 1, keys_only, out, err);
}

static json_t *put_json(const char *key, const void *value, size_t len, int64_t lease) {
  json_t *b = json_pack("{s:o, s:o}", "key", b64_json(key, strlen(key)), "value",
                        b64_json(value ? value : "", len));
  if (b && lease) json_object_set_new(b, "lease", i64_json(lease));
  return b;
}

qb_code qc_etcd_put(qc_etcd *e, const char *key, const void *value, size_t len, int64_t lease,
                    int64_t *revision, qb_err *err) {
  json_t *res;
  qb_code rc = call(e, "/v3/kv/put", put_json(key, value, len, lease), &res, err);
  if (rc) return rc;
  if (revision) *revision = i64(json_object_get(res, "header"), "revision");
  json_decref(res);
  return QB_OK;
}

static json_t *del_json(const char *key, int prefix) {
  json_t *b = json_pack("{s:o}", "key", b64_json(key, strlen(key)));
  if (b && prefix) json_object_set_new(b, "range_end", range_end(key));
  return b;
}

qb_code qc_etcd_delete(qc_etcd *e, const char *key, int prefix, int64_t *deleted, qb_err *err) {
  json_t *res;
  qb_code rc = call(e, "/v3/kv/deleterange", del_json(key, prefix), &res, err);
  if (rc) return rc;
  if (deleted) *deleted = i64(res, "deleted");
  json_decref(res);
  return QB_OK;
}

qb_code qc_etcd_txn(qc_etcd *e, const qc_txn_cmp *cmp, size_t ncmp, const qc_txn_op *ops,
                    size_t nops, int64_t *revision, qb_err *err) {
  json_t *b = json_object(), *ca = json_array(), *sa = json_array(), *res;
  if (!b || !ca || !sa) {
    json_decref(b), json_decref(ca), json_decref(sa);
    return qb_fail(err, QB_NOMEM, "etcd: out of memory");
  }
  for (size_t i = 0; i < ncmp; i++)
    json_array_append_new(ca, json_pack("{s:o, s:s, s:o, s:s}", "key",
                                        b64_json(cmp[i].key, strlen(cmp[i].key)), "target",
                                        "MOD", "mod_revision", i64_json(cmp[i].mod_revision),
                                        "result", "EQUAL"));
  for (size_t i = 0; i < nops; i++) {
    const qc_txn_op *o = &ops[i];
    json_array_append_new(sa, o->del ? json_pack("{s:o}", "request_delete_range",
                                                 del_json(o->key, o->prefix))
                                     : json_pack("{s:o}", "request_put",
                                                 put_json(o->key, o->value, o->len, o->lease)));
  }
  json_object_set_new(b, "compare", ca);
  json_object_set_new(b, "success", sa);
  qb_code rc = call(e, "/v3/kv/txn", b, &res, err);
  if (rc) return rc;
  if (revision) *revision = i64(json_object_get(res, "header"), "revision");
  if (!json_is_true(json_object_get(res, "succeeded")))
    rc = qb_fail(err, QB_CONFLICT, "etcd: txn compare failed (the keys changed meanwhile)");
  json_decref(res);
  return rc;
}

/* ---- leases ------------------------------------------------------------------------------ */

qb_code qc_etcd_lease_grant(qc_etcd *e, uint32_t ttl_s, int64_t *id, qb_err *err) {
  json_t *res;
  qb_code rc = call(e, "/v3/lease/grant", json_pack("{s:o}", "TTL", i64_json(ttl_s)), &res, err);
  if (rc) return rc;
  *id = i64(res, "ID");
  json_decref(res);
  if (!*id) return qb_fail(err, QB_CORRUPT, "etcd: lease grant without an ID");
  return QB_OK;
}

qb_code qc_etcd_lease_keepalive(qc_etcd *e, int64_t id, qb_err *err) {
  json_t *res;
  qb_code rc = call(e, "/v3/lease/keepalive", json_pack("{s:o}", "ID", i64_json(id)), &res, err);
  if (rc) return rc;
  int64_t ttl = i64(json_object_get(res, "result"), "TTL");
  json_decref(res);
  if (ttl <= 0) return qb_fail(err, QB_NOTFOUND, "etcd: lease %lld expired", (long long)id);
  return QB_OK;
}

qb_code qc_etcd_lease_revoke(qc_etcd *e, int64_t id, qb_err *err) {
  json_t *res;
  qb_code rc = call(e, "/v3/lease/revoke", json_pack("{s:o}", "ID", i64_json(id)), &res, err);
  if (!rc) json_decref(res);
  return rc;
}

struct qc_lease {
  qc_etcd *e;
  int64_t id;
  uint32_t ttl_s;
  void (*on_lost)(void *ud);
  void *ud;
  int ok, stopping;
  int64_t renewed_ms; /* wall ms just before the last keep-alive etcd accepted (atomic) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
};

static void *lease_loop(void *arg) {
  qc_lease *l = arg;
  uint64_t period_ms = l->ttl_s * 1000u / 3;
  if (!period_ms) period_ms = 300;
  int64_t last_ok = qb_wall_ms();
  pthread_mutex_lock(&l->mu);
  while (!l->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + period_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    if (l->stopping) break;
    int64_t id = l->id;
    int was_ok = l->ok;
    pthread_mutex_unlock(&l->mu);
    qb_err err;
    qb_code rc;
    if (was_ok) {
      int64_t before = qb_wall_ms();
      rc = qc_etcd_lease_keepalive(l->e, id, &err);
      if (!rc) last_ok = qb_wall_ms();
      if (!rc) __atomic_store_n(&l->renewed_ms, before, __ATOMIC_RELAXED);
      int lost = rc == QB_NOTFOUND || qb_wall_ms() - last_ok > (int64_t)l->ttl_s * 1000;
      pthread_mutex_lock(&l->mu);
      if (lost) {
        l->ok = 0;
        qb_log(QB_WARN, "etcd lease %lld lost: %s", (long long)id, err.msg);
      }
      continue;
    }
    /* lost: a new lease as soon as etcd answers, then the owner re-registers under it */
    int64_t nid, before = qb_wall_ms();
    rc = qc_etcd_lease_grant(l->e, l->ttl_s, &nid, &err);
    if (!rc) __atomic_store_n(&l->renewed_ms, before, __ATOMIC_RELAXED);
    pthread_mutex_lock(&l->mu);
    if (rc || l->stopping) continue;
    l->id = nid;
    l->ok = 1;
    last_ok = qb_wall_ms();
    qb_log(QB_INFO, "etcd lease renewed as %lld", (long long)nid);
    if (l->on_lost) {
      pthread_mutex_unlock(&l->mu);
      l->on_lost(l->ud);
      pthread_mutex_lock(&l->mu);
    }
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

qb_code qc_lease_start(qc_etcd *e, uint32_t ttl_s, void (*on_lost)(void *ud), void *ud,
                       qc_lease **out, qb_err *err) {
  *out = NULL;
  qc_lease *l = qb_calloc(1, sizeof *l);
  if (!l) return qb_fail(err, QB_NOMEM, "etcd: out of memory");
  l->renewed_ms = qb_wall_ms();
  qb_code rc = qc_etcd_lease_grant(e, ttl_s ? ttl_s : 5, &l->id, err);
  if (rc) {
    qb_free(l, sizeof *l);
    return rc;
  }
  l->e = e;
  l->ttl_s = ttl_s ? ttl_s : 5;
  l->on_lost = on_lost;
  l->ud = ud;
  l->ok = 1;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  if (pthread_create(&l->th, NULL, lease_loop, l)) {
    qc_etcd_lease_revoke(e, l->id, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    qb_free(l, sizeof *l);
    return qb_fail(err, QB_NOMEM, "etcd: cannot start the lease thread");
  }
  *out = l;
  return QB_OK;
}

int64_t qc_lease_id(const qc_lease *l) { return __atomic_load_n(&l->id, __ATOMIC_RELAXED); }

int qc_lease_ok(const qc_lease *l) { return __atomic_load_n(&l->ok, __ATOMIC_RELAXED); }

int qc_lease_fresh(const qc_lease *l) {
  return qc_lease_ok(l) && qb_wall_ms() - __atomic_load_n(&l->renewed_ms, __ATOMIC_RELAXED) <
                               (int64_t)l->ttl_s * 1000;
}

void qc_lease_stop(qc_lease *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stopping = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->th, NULL);
  qc_etcd_lease_revoke(l->e, l->id, NULL);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  qb_free(l, sizeof *l);
}

/* ---- watch ------------------------------------------------------------------------------- */

struct qc_watch {
  qc_etcd *e;
  char prefix[512];
  int64_t next_rev;   /* the revision to resume from */
  qc_watch_fn fn;
  void *ud;
  int stopping;
  pthread_t th;
  qb_buf line;        /* the stream's current partial line */
};

/* One JSON message of the stream: {"result": {"events": [...]}}. */
static void watch_message(qc_watch *w, const char *p, size_t n) {
  json_error_t je;
  json_t *j = json_loadb(p, n, 0, &je);
  json_t *evs = json_object_get(json_object_get(j, "result"), "events");
  size_t i;
  json_t *ev;
  json_array_foreach(evs, i, ev) {
    qc_kv kv;
    if (kv_read(json_object_get(ev, "kv"), &kv, NULL)) continue;
    const char *type = json_string_value(json_object_get(ev, "type"));
    int deleted = type && !strcmp(type, "DELETE");
    if (kv.mod_revision >= w->next_rev) w->next_rev = kv.mod_revision + 1;
    w->fn(w->ud, deleted, &kv);
    qb_free(kv.key, kv.key_len + 1);
    qb_free(kv.value, kv.value_len + 1);
  }
  json_decref(j);
}

static size_t on_stream(char *p, size_t sz, size_t nm, void *ud) {
  qc_watch *w = ud;
  size_t n = sz * nm;
  if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) return 0;
  if (qb_buf_append(&w->line, p, n)) return 0;
  for (;;) {
    char *nl = w->line.data ? memchr(w->line.data, '\n', w->line.len) : NULL;
    if (!nl) break;
    size_t len = (size_t)(nl - w->line.data);
    watch_message(w, w->line.data, len);
    memmove(w->line.data, nl + 1, w->line.len - len - 1);
    w->line.len -= len + 1;
  }
  return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  qc_watch *w = ud;
  return __atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static void *watch_loop(void *arg) {
  qc_watch *w = arg;
  char url[512];
  snprintf(url, sizeof url, "%s/v3/watch", w->e->endpoint);
  while (!__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
    json_t *cr = json_pack("{s:o, s:o}", "key", b64_json(w->prefix, strlen(w->prefix)),
                           "range_end", range_end(w->prefix));
    if (cr && w->next_rev) json_object_set_new(cr, "start_revision", i64_json(w->next_rev));
    json_t *b = json_pack("{s:o}", "create_request", cr);
    char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    CURL *c = text ? curl_easy_init() : NULL;
    if (c) {
      w->line.len = 0;
      curl_easy_setopt(c, CURLOPT_URL, url);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
      curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(c, CURLOPT_PROXY, "");
      curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
      curl_easy_perform(c); /* returns when the stream ends, fails or is stopped */
      curl_easy_cleanup(c);
    }
    qc__json_free(text);
    /* etcd gone or restarted: try again shortly, from where the stream stopped */
    for (int i = 0; i < 10 && !__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE); i++) {
      struct timespec ts = {0, 20 * 1000000};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

qb_code qc_watch_start(qc_etcd *e, const char *prefix, int64_t from, qc_watch_fn fn, void *ud,
                       qc_watch **out, qb_err *err) {
  *out = NULL;
  if (strlen(prefix) >= 512) return qb_fail(err, QB_INVAL, "etcd watch: prefix too long");
  qc_watch *w = qb_calloc(1, sizeof *w);
  if (!w) return qb_fail(err, QB_NOMEM, "etcd: out of memory");
  w->e = e;
  snprintf(w->prefix, sizeof w->prefix, "%s", prefix);
  w->next_rev = from;
  w->fn = fn;
  w->ud = ud;
  qb_buf_init(&w->line);
  if (pthread_create(&w->th, NULL, watch_loop, w)) {
    qb_free(w, sizeof *w);
    return qb_fail(err, QB_NOMEM, "etcd: cannot start the watch thread");
  }
  *out = w;
  return QB_OK;
}

void qc_watch_stop(qc_watch *w) {
  if (!w) return;
  __atomic_store_n(&w->stopping, 1, __ATOMIC_RELEASE);
  pthread_join(w->th, NULL);
  qb_buf_fini(&w->line);
  qb_free(w, sizeof *w);
}
