/* conns.c: the connection guard (issue 13 #2). libmicrohttpd is event-driven, so slow clients
** hold no worker thread, but they hold sockets: its default cap (FD_SETSIZE - 4, about 1,020)
** let 1,000 slowloris connections lock every other client out. This file sizes the caps (total
** and per client address) from the process's descriptor limit, and runs a reaper thread that
** closes a connection whose request has been in one phase for longer than that phase's
** deadline: the request line and headers, the body, or an idle keep-alive wait.
** Invariant: a tracked connection's fd is valid while it is on the list: MHD reports
** MHD_CONNECTION_NOTIFY_CLOSED (which unlinks it, under mu) before it closes the socket, and
** the reaper only shutdown()s sockets under mu, never close()s them, so MHD still owns every fd
** and frees the connection through its own path. */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"

struct qs__conn {
  struct qs__conn *prev, *next;
  int fd;
  int phase;          /* QS_PHASE_* */
  uint64_t since_ns;  /* when the connection entered PHASE */
};

static uint64_t now_ns(void) { return qb_now_ns(); }

void qs__conns_limits(qs_server *s, const qs_options *opt) {
  qs__conns *g = &s->conns;
  struct rlimit rl;
  rlim_t fds = 1024;
  /* Sockets are the resource a slow client takes: use every descriptor the system grants. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rlim_t want = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;
      struct rlimit up = {want, rl.rlim_max};
      if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl.rlim_cur = want;
    }
    fds = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur;
  }
  /* Keep 256 descriptors for stores, segment files, logs and outgoing connections. */
  unsigned room = fds > 512 ? (unsigned)(fds - 256) : (unsigned)(fds / 2);
  g->max_conns = opt && opt->max_connections ? opt->max_connections : 10000;
  if (g->max_conns > room) g->max_conns = room;
  g->max_per_client = opt && opt->max_connections_per_client ? opt->max_connections_per_client
                                                             : 1000;
  if (g->max_per_client > g->max_conns) g->max_per_client = g->max_conns;
  g->header_timeout_ms = opt && opt->header_timeout_ms ? opt->header_timeout_ms : 10000;
  g->body_timeout_ms = opt && opt->body_timeout_ms ? opt->body_timeout_ms : 60000;
  g->idle_timeout_ms = opt && opt->idle_timeout_ms ? opt->idle_timeout_ms : 60000;
  g->fd_limit = (uint64_t)fds;
}

/* MHD_OPTION_NOTIFY_CONNECTION: track every connection from accept to close. */
void qs__conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code) {
  qs_server *s = cls;
  qs__conns *g = &s->conns;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    qs__conn *k = qb_calloc(1, sizeof *k);
    *socket_context = k;
    if (!k) return; /* untracked: MHD's own idle timeout still applies */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k->fd = ci ? ci->connect_fd : -1;
    k->phase = QS_PHASE_IDLE;
    k->since_ns = now_ns();
    pthread_mutex_lock(&g->mu);
    k->next = g->head;
    if (g->head) g->head->prev = k;
    g->head = k;
    g->open++;
    pthread_mutex_unlock(&g->mu);
    __atomic_fetch_add(&g->accepted, 1, __ATOMIC_RELAXED);
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    qs__conn *k = *socket_context;
    if (!k) return;
    pthread_mutex_lock(&g->mu);
    if (k->prev) k->prev->next = k->next;
    else g->head = k->next;
    if (k->next) k->next->prev = k->prev;
    g->open--;
    pthread_mutex_unlock(&g->mu);
    qb_free(k, sizeof *k);
    *socket_context = NULL;
  }
}

void qs__conn_phase(qs_server *s, struct MHD_Connection *c, int phase) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  qs__conn *k = ci ? ci->socket_context : NULL;
  if (!k) return;
  pthread_mutex_lock(&s->conns.mu);
  k->phase = phase;
  k->since_ns = now_ns();
  pthread_mutex_unlock(&s->conns.mu);
}

static void *reaper(void *arg) {
  qs_server *s = arg;
  qs__conns *g = &s->conns;
  pthread_mutex_lock(&g->mu);
  while (!g->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 250 * 1000000L; /* deadlines are kept to within a quarter second */
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    if (g->stopping) break;
    uint64_t now = now_ns();
    for (qs__conn *k = g->head; k; k = k->next) {
      uint64_t limit_ms;
      int which;
      switch (k->phase) {
      case QS_PHASE_HEADERS: limit_ms = g->header_timeout_ms; which = 0; break;
      case QS_PHASE_BODY: limit_ms = g->body_timeout_ms; which = 1; break;
      case QS_PHASE_IDLE: limit_ms = g->idle_timeout_ms; which = 2; break;
      default: continue; /* a handler is running: its own deadlines apply */
      }
      if (k->fd < 0 || now - k->since_ns < limit_ms * 1000000u) continue;
      /* Wakes MHD's poll on this socket with EOF; MHD closes it and reports CLOSED. */
      shutdown(k->fd, SHUT_RDWR);
      k->phase = QS_PHASE_REAPED;
      __atomic_fetch_add(&g->reaped[which], 1, __ATOMIC_RELAXED);
    }
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

qb_code qs__conns_start(qs_server *s, qb_err *err) {
  qs__conns *g = &s->conns;
  if (pthread_create(&g->thread, NULL, reaper, s))
    return qb_fail(err, QB_NOMEM, "server: cannot start the connection reaper thread");
  g->started = 1;
  return QB_OK;
}

void qs__conns_stop(qs_server *s) {
  qs__conns *g = &s->conns;
  if (!g->started) return;
  pthread_mutex_lock(&g->mu);
  g->stopping = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
  pthread_join(g->thread, NULL);
  g->started = 0;
}

/* MHD_OPTION_EXTERNAL_LOGGER: MHD's messages ("Connection was closed by remote side with
** incomplete request", one per slow client) are a client's doing, so they go to DEBUG, where a
** flood of them costs a level check. */
void qs__conns_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  if (!qb_log_enabled(QB_DEBUG)) return;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
  qb_log(QB_DEBUG, "http: %s", line);
}
