/* fanout.c: parallel HTTP requests from this node to others (libcurl multi): the scatter of
** searches and bulk requests, shard creation, UDF pushes, cluster statistics. Each thread
** keeps one multi handle for its fan-outs (freed when the thread ends), so its connection
** cache keeps the connections to the data nodes open from one search to the next: a search
** then costs no TCP handshake per shard; the easy handles are kept too, reset and reused.
** Invariant: qc_fanout returns only when every call has its status (or error) and body, and
** leaves no easy handle in the thread's multi handle. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SPARE_MAX 32 /* easy handles a thread keeps between fan-outs */

/* A thread's fan-out state: its multi handle (whose connection cache keeps the connections to
** the other nodes open) and the easy handles of its last fan-outs, reset and reused. */
typedef struct tl_state {
  CURLM *m;
  CURL *spare[SPARE_MAX];
  size_t nspare;
  int busy; /* a fan-out of this thread is under way in M */
} tl_state;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t tl_key;
static void tl_free(void *p) {
  tl_state *t = p;
  for (size_t i = 0; i < t->nspare; i++) curl_easy_cleanup(t->spare[i]);
  curl_multi_cleanup(t->m);
  qb_free(t, sizeof *t);
}
static void init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  pthread_key_create(&tl_key, tl_free);
}

/* This thread's state (made on first use); NULL when out of memory. */
static tl_state *thread_state(void) {
  tl_state *t = pthread_getspecific(tl_key);
  if (t) return t;
  if (!(t = qb_calloc(1, sizeof *t))) return NULL;
  if (!(t->m = curl_multi_init())) {
    qb_free(t, sizeof *t);
    return NULL;
  }
  curl_multi_setopt(t->m, CURLMOPT_MAXCONNECTS, 64L);
  pthread_setspecific(tl_key, t);
  return t;
}

static CURL *easy_get(tl_state *t) {
  if (!t->nspare) return curl_easy_init();
  CURL *h = t->spare[--t->nspare];
  curl_easy_reset(h);
  return h;
}

static void easy_put(tl_state *t, CURL *h) {
  if (t->nspare < SPARE_MAX) t->spare[t->nspare++] = h;
  else curl_easy_cleanup(h);
}

/* The cluster secret's header line ("" = none); set at start and stop, read by fan-outs. */
static pthread_mutex_t secret_mu = PTHREAD_MUTEX_INITIALIZER;
static char secret_hdr[1200];

void qc_fanout_secret(const char *secret) {
  pthread_mutex_lock(&secret_mu);
  if (secret) snprintf(secret_hdr, sizeof secret_hdr, "%s: %.1100s", QC_SECRET_HEADER, secret);
  else memset(secret_hdr, 0, sizeof secret_hdr);
  pthread_mutex_unlock(&secret_mu);
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
  qc_call *c = ud;
  return qb_buf_append(&c->resp, p, sz * nm) ? 0 : sz * nm;
}

void qc_call_fini(qc_call *c) { qb_buf_fini(&c->resp); }

/* The request id of this thread's fan-outs (X-Opaque-Id), asked for when one starts. */
static __thread const char *(*rid_fn)(void *);
static __thread void *rid_arg;

void qc_fanout_request_id(const char *(*fn)(void *arg), void *arg) {
  rid_fn = fn;
  rid_arg = fn ? arg : NULL;
}

/* A fan-out under way: its calls' easy handles and headers in a multi handle (the thread's, or
** its own when the thread's is busy with an outer fan-out). */
struct qc__fan {
  tl_state *t;
  CURLM *m;
  int own_m, running;
  size_t n;
  qc_call *calls;
  CURL **h;
  struct curl_slist **hdrs;
  uint64_t t0;
};

qb_code qc__fanout_start(qc_call *calls, size_t n, uint32_t timeout_ms, qc__fan **out,
                         qb_err *err) {
  pthread_once(&once, init);
  *out = NULL;
  tl_state *t = thread_state();
  qc__fan *f = qb_calloc(1, sizeof *f);
  CURL **h = n ? qb_calloc(n, sizeof *h) : NULL;
  struct curl_slist **hdrs = n ? qb_calloc(n, sizeof *hdrs) : NULL;
  if (!t || !f || (n && (!h || !hdrs))) {
    qb_free(f, sizeof *f);
    qb_free(h, n * sizeof *h);
    qb_free(hdrs, n * sizeof *hdrs);
    return qb_fail(err, QB_NOMEM, "fan-out: out of memory");
  }
  f->t = t;
  if (t->busy) { /* nested in a fan-out of this thread: a multi handle of its own */
    f->m = curl_multi_init();
    f->own_m = 1;
  } else {
    f->m = t->m;
    t->busy = 1;
  }
  f->n = n;
  f->calls = calls;
  f->h = h;
  f->hdrs = hdrs;
  f->t0 = qb_now_ns();
  char rid[160] = "";
  const char *id = rid_fn ? rid_fn(rid_arg) : NULL;
  if (id && *id) snprintf(rid, sizeof rid, "X-Opaque-Id: %.140s", id);
  for (size_t i = 0; i < n; i++) {
    qc_call *c = &calls[i];
    qb_buf_init(&c->resp);
    c->status = 0;
    c->error[0] = 0;
    if (!f->m || !(h[i] = easy_get(t))) {
      snprintf(c->error, sizeof c->error, "out of memory");
      continue;
    }
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", c->ctype ? c->ctype : "application/json");
    hdrs[i] = curl_slist_append(NULL, ct);
    hdrs[i] = curl_slist_append(hdrs[i], "Expect:");
    if (rid[0]) hdrs[i] = curl_slist_append(hdrs[i], rid);
    pthread_mutex_lock(&secret_mu);
    if (secret_hdr[0]) hdrs[i] = curl_slist_append(hdrs[i], secret_hdr);
    pthread_mutex_unlock(&secret_mu);
    curl_easy_setopt(h[i], CURLOPT_URL, c->url);
    curl_easy_setopt(h[i], CURLOPT_CUSTOMREQUEST, c->method);
    if (c->body) {
      curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, c->body);
      curl_easy_setopt(h[i], CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
    } else if (!strcmp(c->method, "HEAD")) {
      curl_easy_setopt(h[i], CURLOPT_NOBODY, 1L);
    }
    curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdrs[i]);
    curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h[i], CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h[i], CURLOPT_PRIVATE, c);
    curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, (long)(timeout_ms ? timeout_ms : 30000));
    curl_easy_setopt(h[i], CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h[i], CURLOPT_TCP_NODELAY, 1L); /* small requests: no Nagle delay */
    curl_easy_setopt(h[i], CURLOPT_PROXY, ""); /* nodes talk directly, whatever http_proxy says */
    curl_multi_add_handle(f->m, h[i]);
  }
  /* send what can be sent now, so the nodes work while the caller does (a local shard) */
  f->running = 1;
  if (f->m && curl_multi_perform(f->m, &f->running) != CURLM_OK) f->running = 0;
  *out = f;
  return QB_OK;
}

/* Record the calls that finished (their status, error and time). */
static void collect(qc__fan *f) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(f->m, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    qc_call *c = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
    if (!c) continue;
    c->took_ns = qb_now_ns() - f->t0;
    if (msg->data.result != CURLE_OK) {
      snprintf(c->error, sizeof c->error, "%s", curl_easy_strerror(msg->data.result));
      c->status = 0;
    } else {
      long st = 0;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
      c->status = (int)st;
    }
  }
}

void qc__fanout_wait(qc__fan *f) {
  if (!f) return;
  CURLM *m = f->m;
  /* each call's time is its own (read as it ends), not the slowest one's */
  while (m && f->running) {
    curl_multi_poll(m, NULL, 0, 100, NULL);
    if (curl_multi_perform(m, &f->running) != CURLM_OK) break;
    collect(f);
  }
  if (m) collect(f);
  for (size_t i = 0; i < f->n; i++) {
    if (f->h[i]) {
      curl_multi_remove_handle(m, f->h[i]);
      easy_put(f->t, f->h[i]);
    }
    curl_slist_free_all(f->hdrs[i]);
    if (!f->calls[i].status && !f->calls[i].error[0])
      snprintf(f->calls[i].error, sizeof f->calls[i].error, "no answer");
  }
  if (f->own_m) curl_multi_cleanup(m);
  else f->t->busy = 0;
  qb_free(f->h, f->n * sizeof *f->h);
  qb_free(f->hdrs, f->n * sizeof *f->hdrs);
  qb_free(f, sizeof *f);
}

qb_code qc_fanout(qc_call *calls, size_t n, uint32_t timeout_ms, qb_err *err) {
  if (!n) return QB_OK;
  qc__fan *f;
  qb_code rc = qc__fanout_start(calls, n, timeout_ms, &f, err);
  if (rc) return rc;
  qc__fanout_wait(f);
  return QB_OK;
}
