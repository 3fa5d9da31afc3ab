/* server.c: a node's life cycle. Opens the node (src/cluster: the index catalog and the UDF
** registry under the data directory), runs libmicrohttpd with a thread pool,
** turns each HTTP request into a qs_req for its route's handler, and refreshes dirty indexes
** once per refresh interval on a background thread.
** Invariant: a request body is held whole in memory, bounded by its route's limit before it
** is read (Content-Length) and while it is read (chunked); a handler never sees a partial one. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- per-connection request state ----------------------------------------------------------- */

typedef struct conn_ctx {
  int started;     /* the access handler has seen this request */
  char *raw;       /* the request path as sent (percent-encoded), from the URI log callback */
  size_t raw_size;
  char *query;     /* the query string as sent (after '?'), NULL when none */
  size_t query_size;
  uint64_t start_ns;
  size_t limit;
  int too_big;
  qb_buf body;
  /* a request run by a worker pool (pools.c) while its connection is suspended */
  int job;            /* JOB_NONE, JOB_RUNNING (a worker owns req), JOB_DONE (req answered) */
  qs_req req;
  char *capbuf;       /* caps (and req.caps) point into it */
  size_t capbuf_size;
  int route;          /* qs__route_match's answer for this request (-4: out of memory) */
  const char *caps[QS_MAX_CAPTURES];
  size_t ncaps;
} conn_ctx;
enum { JOB_NONE, JOB_RUNNING, JOB_DONE };

/* The request's route, matched once when its headers are in (its body limit depends on it) and
** kept for the handler: CX->capbuf holds the decoded segments CX->caps point into. */
static int route_once(conn_ctx *cx, const char *method, const char *path) {
  size_t n = strlen(path) + 1;
  if (!(cx->capbuf = qb_malloc(n))) return cx->route = -4; /* out of memory */
  cx->capbuf_size = n;
  return cx->route = qs__route_match(method, path, cx->capbuf, cx->caps, &cx->ncaps);
}

static size_t body_limit(const conn_ctx *cx) {
  return (cx->route >= 0 && qs__routes[cx->route].big_body) ? QS_BODY_MAX_BIG : QS_BODY_MAX;
}

/* A reply body handed to MHD (not copied): freed through the allocator when MHD is done */
typedef struct owned_body {
  char *data;
  size_t cap;
} owned_body;

static void owned_body_free(void *cls) {
  owned_body *o = cls;
  qb_free(o->data, o->cap);
  qb_free(o, sizeof *o);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, qs_req *r) {
  const char *data = r->out.data ? r->out.data : "";
  struct MHD_Response *resp = NULL;
  owned_body *o;
  /* a page of hits (tens of KiB) goes to MHD as it is: a copy and an allocation fewer (issue 14) */
  if (r->out.data && r->out.len >= 4096 && (o = qb_malloc(sizeof *o))) {
    o->data = r->out.data;
    o->cap = r->out.cap;
    resp = MHD_create_response_from_buffer_with_free_callback_cls(r->out.len, r->out.data,
                                                                  owned_body_free, o);
    if (resp) qb_buf_init(&r->out); /* MHD owns it now */
    else qb_free(o, sizeof *o);
  }
  if (!resp)
    resp = MHD_create_response_from_buffer(r->out.len, (void *)data, MHD_RESPMEM_MUST_COPY);
  if (!resp) return MHD_NO;
  const char *type = r->out_type;
  if (!type) {
    /* The official clients ask for the versioned media type; answer in kind, as 8.x does. */
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    type = accept && strstr(accept, "vnd.elasticsearch+json")
               ? "application/vnd.elasticsearch+json;compatible-with=8"
               : "application/json; charset=UTF-8";
  }
  MHD_add_response_header(resp, "Content-Type", type);
  if (r->status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"quidditch\"");
  /* an error names its request (as its log lines do); a client's X-Opaque-Id is echoed */
  if (r->status >= 400 || r->rid[0] ||
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Opaque-Id")) {
    const char *id = qs__req_id(r);
    MHD_add_response_header(resp, r->rid_from_client ? "X-Opaque-Id" : "X-Request-Id", id);
  }
  /* The official Elasticsearch clients refuse a server without this header. */
  MHD_add_response_header(resp, "X-elastic-product", "Elasticsearch");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result finish(qs_server *s, struct MHD_Connection *c, qs_req *r) {
  enum MHD_Result ret = send_reply(c, r);
  qs__metrics_http(s, r->route, r->status);
  if (qb_log_enabled(QB_DEBUG))
    qb_log(QB_DEBUG, "%s %s -> %d (%.3f ms)", r->method, r->path, r->status,
           (double)(qb_now_ns() - r->start_ns) / 1e6);
  qb_buf_fini(&r->out);
  return ret;
}

static void req_init(qs_req *r, qs_server *s, struct MHD_Connection *c, const char *method,
                     const char *path, uint64_t start_ns) {
  memset(r, 0, sizeof *r);
  r->srv = s;
  r->conn = c;
  r->method = method;
  r->path = path;
  r->route = -1;
  r->body = "";
  r->content_type = "";
  r->start_ns = start_ns;
  qb_buf_init(&r->out);
}

/* Called once per request with the URI as sent, before MHD decodes it: keep its path, so
** routing splits on the real '/' and only then decodes each segment. The return value becomes
** the request's *con_cls. */
/* New connections are refused once the server is closing. This stands in for
** MHD_quiesce_daemon, which races with MHD's own epoll workers (libmicrohttpd 0.9.75 aborts the
** process with "Failed to remove listen FD from epoll set" when a worker removes the listening
** socket first). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len) {
  (void)addr, (void)len;
  qs_server *s = cls;
  return __atomic_load_n(&s->closing, __ATOMIC_ACQUIRE) ? MHD_NO : MHD_YES;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  qs__conn_phase(cls, c, QS_PHASE_HEADERS);
  conn_ctx *cx = qb_calloc(1, sizeof *cx);
  if (!cx) return NULL;
  size_t n = strcspn(uri, "?");
  if ((cx->raw = qb_malloc(n + 1))) {
    memcpy(cx->raw, uri, n);
    cx->raw[n] = 0;
    cx->raw_size = n + 1;
  }
  if (uri[n] == '?' && (cx->query = qb_malloc(strlen(uri + n + 1) + 1))) {
    cx->query_size = strlen(uri + n + 1) + 1;
    memcpy(cx->query, uri + n + 1, cx->query_size);
  }
  return cx;
}

/* Framing the server refuses before reading a body (issue 13 #10): two Content-Length headers
** that disagree (request smuggling), and a Transfer-Encoding other than chunked (MHD would wait
** for a body it cannot delimit). Returns NULL when the framing is fine, else the reason; *STATUS
** gets the HTTP status. */
typedef struct framing { const char *first; int conflict; const char *te; } framing;

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
  framing *f = cls;
  (void)kind;
  if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
    if (f->first && strcmp(f->first, value ? value : "")) f->conflict = 1;
    if (!f->first) f->first = value ? value : "";
  } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) && value &&
             strcasecmp(value, "chunked")) {
    f->te = value;
  }
  return MHD_YES;
}

static const char *bad_framing(struct MHD_Connection *c, int *status, char *why, size_t cap) {
  framing f = {NULL, 0, NULL};
  MHD_get_connection_values(c, MHD_HEADER_KIND, framing_header, &f);
  if (f.conflict) {
    *status = 400;
    return snprintf(why, cap, "conflicting Content-Length headers"), why;
  }
  if (f.te) {
    char shown[64];
    qs__printable(f.te, shown, sizeof shown);
    *status = 501;
    return snprintf(why, cap, "unsupported Transfer-Encoding [%s]: only chunked is", shown), why;
  }
  return NULL;
}

/* Authentication, the URL parameters (params.c), the disk block, then the route's handler. */
static void run_route(qs_req *r) {
  qs__req_tag(r); /* every line logged while it runs names the request */
  /* a coordinator of a cluster routes what is not the same code in both (h_coord.c) */
  if (qs__auth_check(r) && qs__params_check(r) && !qs__disk_refuse(r) &&
      (!qc_node_routes(r->srv->node) || !qs__coord(r)) &&
      !qs__replica_wrap(r) && /* h_replica.c: a write on a replicated shard */
      qs__alias_caps(r, qs__routes[r->route].handler)) /* h_alias.c: {index} as an alias */
    qs__routes[r->route].handler(r);
  if (!r->status) qs__reply_code(r, QB_INTERNAL, "handler gave no response");
  qs__req_tag(NULL);
}

/* A worker runs a suspended connection's request, then hands it back to MHD, which calls
** on_request again to send the response (JOB_DONE). */
static void run_job(void *arg) {
  conn_ctx *cx = arg;
  run_route(&cx->req);
  struct MHD_Connection *c = cx->req.conn;
  __atomic_store_n(&cx->job, JOB_DONE, __ATOMIC_RELEASE);
  MHD_resume_connection(c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls) {
  qs_server *s = cls;
  conn_ctx *cx = *con_cls;
  qs_req r;
  if (!cx || !cx->started) {
    if (!cx && !(cx = qb_calloc(1, sizeof *cx))) return MHD_NO;
    *con_cls = cx;
    cx->started = 1;
    qs__conn_phase(s, c, QS_PHASE_BODY);
    cx->start_ns = qb_now_ns();
    qb_buf_init(&cx->body);
    route_once(cx, method, cx->raw ? cx->raw : url);
    cx->limit = body_limit(cx);
    char why[128];
    int fst;
    if (bad_framing(c, &fst, why, sizeof why)) {
      req_init(&r, s, c, method, url, cx->start_ns);
      qs__reply_error(&r, fst, fst == 400 ? "illegal_argument_exception" : "exception", "%s", why);
      cx->too_big = 2; /* answered: ignore the body; MHD closes the connection */
      return finish(s, c, &r);
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
      errno = 0;
      unsigned long long n = strtoull(cl, NULL, 10);
      if (errno == 0 && n > cx->limit) cx->too_big = 1; /* drain it, then answer 413 */
      if (errno == 0 && n > ((unsigned long long)1 << 30)) {
        /* Too large to drain: answer before reading; MHD then closes the connection (the
        ** client may see a reset instead of the 413). */
        req_init(&r, s, c, method, url, cx->start_ns);
        qs__reply_error(&r, 413, "content_too_long_exception",
                        "request body of %llu bytes is larger than the limit of %zu bytes", n,
                        cx->limit);
        cx->too_big = 2;
        return finish(s, c, &r);
      }
    }
    return MHD_YES;
  }
  if (*upload_size) {
    if (!cx->too_big) {
      if (cx->body.len + *upload_size > cx->limit) {
        cx->too_big = 1;
        qb_buf_fini(&cx->body);
      } else if (qb_buf_append(&cx->body, upload_data, *upload_size)) {
        cx->too_big = 3; /* out of memory */
        qb_buf_fini(&cx->body);
      }
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (cx->too_big == 2) return MHD_YES; /* already answered */
  if (__atomic_load_n(&cx->job, __ATOMIC_ACQUIRE) == JOB_DONE) { /* back from a worker */
    enum MHD_Result ret = finish(s, c, &cx->req);
    qb_free(cx->capbuf, cx->capbuf_size);
    cx->capbuf = NULL;
    cx->job = JOB_NONE;
    return ret;
  }
  if (cx->job == JOB_RUNNING) return MHD_YES; /* not ours until the worker resumes it */
  qs__conn_phase(s, c, QS_PHASE_HANDLING);

  if (cx->raw) url = cx->raw;
  req_init(&r, s, c, method, url, cx->start_ns);
  if (cx->too_big == 1) {
    qs__reply_error(&r, 413, "content_too_long_exception",
                    "request body is larger than the limit of %zu bytes", cx->limit);
    return finish(s, c, &r);
  }
  if (cx->too_big == 3) {
    qs__reply_code(&r, QB_NOMEM, "out of memory reading the body");
    return finish(s, c, &r);
  }
  if (cx->query && *cx->query) r.query = cx->query;
  if (cx->body.data) {
    r.body = cx->body.data;
    r.body_len = cx->body.len;
  }
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (ct) r.content_type = ct;

  if (cx->route == -4) return MHD_NO; /* out of memory matching it */
  int id = cx->route;
  r.ncaps = id >= 0 ? cx->ncaps : 0;
  memcpy(r.caps, cx->caps, sizeof r.caps);
  char shown[512], mshown[64];
  if (id < 0) { /* the URI as sent may hold any byte: show it escaped, so the reply is JSON */
    qs__printable(url, shown, sizeof shown);
    qs__printable(method, mshown, sizeof mshown);
  }
  if (id == -1) {
    qs__reply_error(&r, 400, "illegal_argument_exception",
                    "no handler found for uri [%s] and method [%s]", shown, mshown);
  } else if (id == -2) {
    qs__reply_error(&r, 405, "illegal_argument_exception",
                    "Incorrect HTTP method for uri [%s] and method [%s]", shown, mshown);
  } else if (id == -3) {
    qs__reply_error(&r, 400, "illegal_argument_exception",
                    "uri [%s]: a path segment decodes to a NUL byte or to invalid UTF-8", shown);
  } else {
    r.route = id;
    qs__pool *pool = qs__pool_for(&r);
    if (pool) {
      cx->req = r;
      cx->job = JOB_RUNNING;
      MHD_suspend_connection(c);
      if (qs__pool_submit(pool, run_job, cx)) return MHD_YES;
      MHD_resume_connection(c);
      cx->job = JOB_NONE;
      qs__pool_stat st;
      qs__pool_stats(pool, &st);
      if (__atomic_load_n(&s->closing, __ATOMIC_ACQUIRE))
        qs__reply_error(&r, 503, "node_closed_exception", "node %s is shutting down",
                        s->node_name);
      else
        qs__reply_error(&r, 429, "es_rejected_execution_exception",
                      "rejected execution: the %s pool's queue is full (%zu queued of at most %zu)",
                      st.name, st.queued, st.max_queue);
    } else {
      run_route(&r);
    }
  }
  enum MHD_Result ret = finish(s, c, &r);
  qb_free(cx->capbuf, cx->capbuf_size);
  cx->capbuf = NULL;
  (void)version;
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  conn_ctx *cx = *con_cls;
  qs__conn_phase(cls, c, QS_PHASE_IDLE); /* keep-alive: waiting for the next request */
  if (!cx) return;
  /* A pooled request whose client left before its answer went out: MHD ends the connection
  ** after the worker resumed it (JOB_DONE) without calling on_request again. While a worker
  ** runs it (JOB_RUNNING) the connection is suspended, and MHD ends no suspended connection. */
  if (__atomic_load_n(&cx->job, __ATOMIC_ACQUIRE) == JOB_DONE) qb_buf_fini(&cx->req.out);
  qb_buf_fini(&cx->body);
  qb_free(cx->capbuf, cx->capbuf_size);
  qb_free(cx->raw, cx->raw_size);
  qb_free(cx->query, cx->query_size);
  qb_free(cx, sizeof *cx);
  *con_cls = NULL;
}

/* ---- refresh ------------------------------------------------------------------------------ */

/* Add NAME, dirty since SINCE, under s->mu; an entry already there keeps the earlier time. */
static void dirty_add_locked(qs_server *s, const char *name, uint64_t since) {
  for (size_t i = 0; i < s->ndirty; i++)
    if (!strcmp(s->dirty[i], name)) {
      if (since < s->dirty_since[i]) s->dirty_since[i] = since;
      return;
    }
  if (s->ndirty == s->capdirty) {
    size_t ncap = s->capdirty ? s->capdirty * 2 : 16;
    char **nd = qb_malloc(ncap * sizeof *nd);
    uint64_t *ns = qb_malloc(ncap * sizeof *ns);
    if (!nd || !ns) { /* the next write or an explicit refresh catches up */
      qb_free(nd, nd ? ncap * sizeof *nd : 0);
      qb_free(ns, ns ? ncap * sizeof *ns : 0);
      return;
    }
    if (s->ndirty) {
      memcpy(nd, s->dirty, s->ndirty * sizeof *nd);
      memcpy(ns, s->dirty_since, s->ndirty * sizeof *ns);
    }
    qb_free(s->dirty, s->capdirty * sizeof *nd);
    qb_free(s->dirty_since, s->capdirty * sizeof *ns);
    s->dirty = nd;
    s->dirty_since = ns;
    s->capdirty = ncap;
  }
  size_t len = strlen(name) + 1;
  char *copy = qb_malloc(len);
  if (!copy) return;
  memcpy(copy, name, len);
  s->dirty_since[s->ndirty] = since;
  s->dirty[s->ndirty++] = copy;
  /* an index with a short refresh_interval must not wait for the server's tick */
  s->refresh_kick = 1;
  pthread_cond_signal(&s->cv);
}

void qs__mark_dirty(qs_server *s, const char *name) {
  pthread_mutex_lock(&s->mu);
  dirty_add_locked(s, name, qb_now_ns());
  pthread_mutex_unlock(&s->mu);
}

void qs__refresher_kick(qs_server *s) {
  pthread_mutex_lock(&s->mu);
  s->refresh_kick = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void forget_dirty(qs_server *s, const char *name) {
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->ndirty; i++) {
    if (!strcmp(s->dirty[i], name)) {
      qb_free(s->dirty[i], strlen(s->dirty[i]) + 1);
      s->ndirty--;
      s->dirty[i] = s->dirty[s->ndirty];
      s->dirty_since[i] = s->dirty_since[s->ndirty];
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
}

qb_code qs__refresh_now(qs_server *s, qi_index *ix, const char *name, qb_err *err) {
  /* Forget first: a write racing with this refresh marks the index dirty again. */
  forget_dirty(s, name);
  qb_code rc = qi_index_refresh(ix, err);
  if (rc == QB_OK) __atomic_fetch_add(&s->m.refreshes, 1, __ATOMIC_RELAXED);
  else qs__mark_dirty(s, name);
  return rc;
}

/* The refresher: every server tick (refresh_interval_ms) the chores, and the dirty indexes
** without an index.refresh_interval of their own; an index with one is refreshed once it has
** been dirty that long, and never by this thread with -1 (explicit _refresh and ?refresh= still
** do). It sleeps until the next tick or the next index due, whichever is first. */
static void *refresher(void *arg) {
  qs_server *s = arg;
  uint64_t tick = (uint64_t)s->refresh_interval_ms * 1000000u;
  uint64_t chores_due = qb_now_ns() + tick, wake = chores_due;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    if (!s->refresh_kick) {
      struct timespec ts;
      uint64_t now = qb_now_ns(), d = wake > now ? wake - now : 0;
      clock_gettime(CLOCK_MONOTONIC, &ts); /* s->cv waits on CLOCK_MONOTONIC */
      uint64_t ns = (uint64_t)ts.tv_nsec + d;
      ts.tv_sec += (time_t)(ns / 1000000000u);
      ts.tv_nsec = (long)(ns % 1000000000u);
      pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    s->refresh_kick = 0;
    if (s->stopping) break;
    pthread_mutex_unlock(&s->mu);
    uint64_t now = qb_now_ns();
    int ticked = now >= chores_due;
    if (ticked) {
      qs__disk_check(s);
      qs__auth_watch(s);
      qs__ctxs_sweep(s); /* expired scroll and PIT contexts let their snapshots go */
      chores_due = now + tick;
    }
    wake = chores_due;
    pthread_mutex_lock(&s->mu);
    char **list = s->dirty;
    uint64_t *since = s->dirty_since;
    size_t n = s->ndirty, cap = s->capdirty;
    s->dirty = NULL;
    s->dirty_since = NULL;
    s->ndirty = s->capdirty = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
      qi_index *ix;
      qb_err err;
      if (qi_catalog_get(qc_node_catalog(s->node), list[i], &ix, &err) == QB_OK) {
        int given;
        int64_t ms = qs__index_refresh_ms(ix, &given); /* h_settings.c */
        uint64_t due = given && ms > 0 ? since[i] + (uint64_t)ms * 1000000u : since[i];
        if ((given && ms < 0) || (given ? now < due : !ticked)) {
          pthread_mutex_lock(&s->mu); /* not yet (or not by this thread): it stays dirty */
          int kick = s->refresh_kick; /* not a new write: the wake below covers it */
          dirty_add_locked(s, list[i], since[i]);
          s->refresh_kick = kick;
          pthread_mutex_unlock(&s->mu);
          if (given && ms > 0 && due < wake) wake = due;
        } else if (qi_index_refresh(ix, &err) == QB_OK) {
          __atomic_fetch_add(&s->m.refreshes, 1, __ATOMIC_RELAXED);
        } else {
          qb_log(QB_WARN, "refresh of index [%s] failed: %s", list[i], err.msg);
          pthread_mutex_lock(&s->mu);
          int kick = s->refresh_kick; /* retried when due again, not at once */
          dirty_add_locked(s, list[i], qb_now_ns());
          s->refresh_kick = kick;
          pthread_mutex_unlock(&s->mu);
        }
        qi_index_release(ix);
      }
      qb_free(list[i], strlen(list[i]) + 1);
    }
    qb_free(list, cap * sizeof *list);
    qb_free(since, cap * sizeof *since);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static qb_code parse_listen(qs_server *s, const char *listen, struct sockaddr_in *sa, qb_err *err) {
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen || !colon[1])
    return qb_fail(err, QB_INVAL, "listen address [%s]: expected HOST:PORT", listen);
  size_t hl = (size_t)(colon - listen);
  if (hl >= sizeof s->host) return qb_fail(err, QB_INVAL, "listen address: host too long");
  memcpy(s->host, listen, hl);
  s->host[hl] = 0;
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (errno || *end || port < 0 || port > 65535)
    return qb_fail(err, QB_INVAL, "listen address [%s]: bad port", listen);
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(s->host, NULL, &hints, &res) || !res)
    return qb_fail(err, QB_INVAL, "listen address [%s]: cannot resolve host", listen);
  memcpy(sa, res->ai_addr, sizeof *sa);
  freeaddrinfo(res);
  sa->sin_port = htons((uint16_t)port);
  s->port = (uint16_t)port;
  return QB_OK;
}

/* PATH's bytes, NUL-terminated, for MHD's in-memory TLS options (at most 1 MiB). */
static qb_code read_pem(const char *path, char **out, size_t *len, qb_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return qb_fail(err, QB_IO, "TLS: cannot open %s: %s", path, strerror(errno));
  char *buf = qb_malloc((1u << 20) + 1);
  size_t n = buf ? fread(buf, 1, 1u << 20, f) : 0;
  int big = buf && n == (1u << 20);
  fclose(f);
  if (!buf) return qb_fail(err, QB_NOMEM, "TLS: out of memory");
  if (!n || big) {
    qb_free(buf, (1u << 20) + 1);
    return qb_fail(err, QB_INVAL, "TLS: %s is %s", path, n ? "larger than 1 MiB" : "empty");
  }
  char *t = qb_malloc(n + 1);
  if (t) memcpy(t, buf, n), t[n] = 0;
  qb_free(buf, (1u << 20) + 1);
  if (!t) return qb_fail(err, QB_NOMEM, "TLS: out of memory");
  *out = t;
  *len = n + 1;
  return QB_OK;
}

/* The UDF native tier: the LLVM hook in a background compiler, cache DATA/cache. A host the
** JIT cannot serve runs the interpreter (a WARN says why); bad settings stop the start. */
static qb_code udf_compiler(qs_server *s, const qs_options *opt, qb_err *err) {
  const char *t = opt->udf_tier ? opt->udf_tier : "auto";
  qu_compiler_options co = {0};
  if (!strcmp(t, "auto")) co.pin = QU_PIN_AUTO;
  else if (!strcmp(t, "interp")) co.pin = QU_PIN_INTERP;
  else if (!strcmp(t, "native")) co.pin = QU_PIN_NATIVE;
  else return qb_fail(err, QB_INVAL, "--udf-tier %.32s: expected interp, native or auto", t);
  qu_native_ops ops;
  qb_err e2;
  if (qu_native_llvm(&ops, &e2)) {
    qb_log(QB_WARN, "UDF native tier unavailable (%s): UDFs run on the interpreter", e2.msg);
    return QB_OK;
  }
  char cache[1100];
  snprintf(cache, sizeof cache, "%s/cache", s->data_dir);
  co.cache_dir = cache;
  co.trusted_keys_dir = opt->trusted_keys_dir;
  qb_code rc = qu_compiler_new(&ops, &co, &s->compiler, err);
  if (rc) return rc;
  qb_log(QB_INFO, "UDF tier %s: native compiler %s for %s (%s), cache %s", t, ops.name,
         ops.triple, ops.cpu_features[0] ? ops.cpu_features : "no extra CPU features", cache);
  return QB_OK;
}

qb_code qs_server_new(const qs_options *opt, qs_server **out, qb_err *err) {
  qs_options dflt = {0};
  if (!opt) opt = &dflt;
  *out = NULL;
  qs_server *s = qb_calloc(1, sizeof *s);
  if (!s) return qb_fail(err, QB_NOMEM, "server: out of memory");
  pthread_mutex_init(&s->mu, NULL);
  {
    pthread_condattr_t ca; /* the refresher's deadlines are monotonic */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
  }
  pthread_mutex_init(&s->conns.mu, NULL);
  pthread_cond_init(&s->conns.cv, NULL);
  qs__conns_limits(s, opt);
  qs__disk_init(s, opt);
  s->started_ms = qb_wall_ms();
  snprintf(s->node_name, sizeof s->node_name, "%s", opt->node_name ? opt->node_name : "node-1");
  snprintf(s->data_dir, sizeof s->data_dir, "%s", opt->data_dir ? opt->data_dir : "./data");
  s->refresh_interval_ms = opt->refresh_interval_ms ? opt->refresh_interval_ms : 1000;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  s->threads = opt->threads ? opt->threads : (uint32_t)(ncpu > 2 ? ncpu : 2);

  struct sockaddr_in sa;
  qb_code rc;
  if ((rc = parse_listen(s, opt->listen ? opt->listen : "127.0.0.1:9200", &sa, err))) goto fail;
  int loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
  if (opt->auth_file && (rc = qs__auth_open(opt->auth_file, &s->auth, err))) goto fail;
  if ((rc = qs__cluster_secret_open(s, opt, err))) goto fail;
  if (!s->auth && !loopback) {
    rc = qb_fail(err, QB_INVAL, "refusing to listen on %s without credentials: anyone who can "
                 "reach it could deploy UDFs and delete indexes; give --auth-file (users and API "
                 "keys: `quidditch auth add-user`), or listen on 127.0.0.1", s->host);
    goto fail;
  }
  if ((opt->tls_cert_file != NULL) != (opt->tls_key_file != NULL)) {
    rc = qb_fail(err, QB_INVAL, "TLS needs both a certificate and a key (--tls-cert, --tls-key)");
    goto fail;
  }
  if (opt->tls_cert_file) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      rc = qb_fail(err, QB_INVAL, "TLS: this libmicrohttpd was built without GnuTLS");
      goto fail;
    }
    if ((rc = read_pem(opt->tls_cert_file, &s->tls_cert, &s->tls_cert_len, err)) ||
        (rc = read_pem(opt->tls_key_file, &s->tls_key, &s->tls_key_len, err)))
      goto fail;
  }
  if ((rc = udf_compiler(s, opt, err))) goto fail;
  qu_options uopt = {.fuel_per_doc = opt->udf_fuel_per_doc,
                     .max_memory_pages = opt->udf_memory_bytes > (4ull << 30) ? 65536u
                         : (uint32_t)((opt->udf_memory_bytes + 65535) >> 16),
                     .max_call_depth = opt->udf_call_depth,
                     .block_timeout_ms = opt->udf_block_timeout_ms,
                     .max_module_bytes = opt->udf_max_module_bytes,
                     .versions_kept = opt->udf_versions_kept,
                     .idle_unload_ms = opt->udf_idle_unload_ms};
  s->script_value_max = (size_t)opt->script_value_max_bytes;
  s->script_response_max = (size_t)opt->script_response_max_bytes;
  s->slow_search_ms = opt->slow_search_ms;
  qc_node_options nopt = {.data_dir = s->data_dir, .name = s->node_name,
                          .sync_normal = opt->sync_normal, .role = (qc_role)opt->role,
                          .etcd = opt->etcd, .lease_ttl_s = opt->lease_ttl_s,
                          .compiler = s->compiler, .udf = &uopt,
                          .script_value_max = s->script_value_max,
                          .script_response_max = s->script_response_max};
  s->compiler = NULL; /* the node owns it now */
  if ((rc = qc_node_open(&nopt, &s->node, err))) goto fail;
  if ((rc = qs__meta_open(s, err))) goto fail;
  /* Indexes reopened from disk are searchable at once. */
  qi_catalog *cat = qc_node_catalog(s->node);
  for (size_t i = 0, n = qi_catalog_count(cat); i < n; i++) {
    char name[256];
    qi_index *ix;
    if (qi_catalog_name(cat, i, name, NULL) == QB_OK &&
        qi_catalog_get(cat, name, &ix, NULL) == QB_OK) {
      qi_index_refresh(ix, NULL);
      qi_index_release(ix);
    }
  }

  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t st = opt->search_threads ? opt->search_threads : (size_t)(cpus > 2 ? cpus : 2);
  size_t wt = opt->write_threads ? opt->write_threads : (size_t)(cpus > 2 ? cpus / 2 : 1);
  if ((rc = qs__pool_new("search", st, opt->search_queue ? opt->search_queue : 1000, 0,
                         &s->search_pool, err)) ||
      (rc = qs__pool_new("write", wt, opt->write_queue ? opt->write_queue : 10000, 0,
                         &s->write_pool, err)))
    goto fail;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
  /* TLS options only when serving HTTPS (MHD refuses them otherwise) */
  struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
                                  {MHD_OPTION_END, 0, NULL}};
  if (s->tls_cert) {
    flags |= MHD_USE_TLS;
    tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
    tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
  }
  s->mhd = MHD_start_daemon(flags, s->port, on_accept, s, on_request, s,
                            MHD_OPTION_ARRAY, tls,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->threads,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                            MHD_OPTION_NOTIFY_CONNECTION, qs__conns_notify, s,
                            MHD_OPTION_CONNECTION_LIMIT, s->conns.max_conns,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->conns.max_per_client,
                            MHD_OPTION_EXTERNAL_LOGGER, qs__conns_mhd_log, s,
                            /* MHD's own inactivity timeout backs the reaper up */
                            MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)((s->conns.idle_timeout_ms + 999) / 1000 + 1),
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
  if (!s->mhd) {
    rc = qb_fail(err, QB_IO, "cannot listen on %s:%u (address in use or not permitted)",
                 s->host, (unsigned)s->port);
    goto fail;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  if (di && di->port) s->port = di->port;
  qs__disk_check(s); /* a node that starts on a full disk starts blocked */
  if (pthread_create(&s->refresher, NULL, refresher, s)) {
    rc = qb_fail(err, QB_NOMEM, "server: cannot start the refresh thread");
    goto fail;
  }
  s->refresher_started = 1;
  if ((rc = qs__conns_start(s, err))) goto fail;
  if (!s->auth)
    qb_log(QB_WARN, "security is off: anyone who can connect to %s:%u can deploy UDFs and delete "
           "indexes (fine on loopback; give --auth-file before listening anywhere else)", s->host,
           (unsigned)s->port);
  qb_log(QB_INFO, "listening on %s:%u (data %s, %u threads)", s->host, (unsigned)s->port,
         s->data_dir, (unsigned)s->threads);
  qb_log(QB_INFO, "connections: at most %u (%u per client address; fd limit %llu), deadlines: "
         "headers %llu ms, body %llu ms, idle %llu ms", s->conns.max_conns,
         s->conns.max_per_client, (unsigned long long)s->conns.fd_limit,
         (unsigned long long)s->conns.header_timeout_ms, (unsigned long long)s->conns.body_timeout_ms,
         (unsigned long long)s->conns.idle_timeout_ms);
  char url[300];
  snprintf(url, sizeof url, "http://%s:%u", s->host, (unsigned)s->port);
  if ((rc = qc_node_join(s->node, url, err))) goto fail;
  *out = s;
  return QB_OK;
fail:
  qs_server_free(s);
  return rc;
}

uint16_t qs_server_port(const qs_server *s) { return s->port; }

void qs_server_free(qs_server *s) {
  if (!s) return;
  /* Refuse new connections, let the workers finish (they resume their suspended connections;
  ** a request that comes late on an open connection is refused by the stopped pool), then
  ** stop MHD, which waits for the requests in flight, and only then free the pools. */
  __atomic_store_n(&s->closing, 1, __ATOMIC_RELEASE);
  qs__pool_stop(s->search_pool);
  qs__pool_stop(s->write_pool);
  if (s->mhd) MHD_stop_daemon(s->mhd);
  qs__pool_free(s->search_pool);
  qs__pool_free(s->write_pool);
  s->search_pool = s->write_pool = NULL;
  qs__conns_stop(s);
  if (s->refresher_started) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->refresher, NULL);
  }
  for (size_t i = 0; i < s->ndirty; i++) qb_free(s->dirty[i], strlen(s->dirty[i]) + 1);
  qb_free(s->dirty, s->capdirty * sizeof *s->dirty);
  qb_free(s->dirty_since, s->capdirty * sizeof *s->dirty_since);
  qs__ctxs_free(s); /* their snapshots, before the node's indexes close */
  qc_node_close(s->node);
  qs__meta_close(s);
  qu_compiler_free(s->compiler); /* when the node never took it */
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->conns.cv);
  pthread_mutex_destroy(&s->conns.mu);
  qs__auth_free(s->auth);
  qs__cluster_secret_free(s);
  if (s->tls_cert) qb_free(s->tls_cert, s->tls_cert_len);
  if (s->tls_key) {
    memset(s->tls_key, 0, s->tls_key_len);
    qb_free(s->tls_key, s->tls_key_len);
  }
  qb_free(s, sizeof *s);
}
