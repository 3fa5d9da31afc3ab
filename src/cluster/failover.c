/* failover.c: the leader coordinator's allocator (docs/cluster.md, "Failover and recovery").
** A thread on every coordinator that acts while this one leads, every 200 ms:
**  - a shard whose primary's node left (its lease expired) gets an in-sync copy on a live node
**    promoted: it moves to copies[0] under primary_term + 1, and the old primary leaves the
**    in-sync set (it must recover before it serves again);
**  - a replica whose node left leaves the in-sync set (writes stop waiting for it) and is
**    marked with the time it left; after index.unassigned.node_left.delayed_timeout (default
**    60 s) it is re-allocated to a live data node that holds no copy of the shard; a copy
**    with no node is allocated at once;
**  - a copy on a live node that is not in sync is recovered from its primary
**    (POST /_internal/recover on the primary's node, qc_recover_copy);
**  - a primary that stepped down (it left the in-sync set after a write failed on its own
**    store, e.g. a full disk) is replaced by an in-sync copy as one whose node left;
**  - the primary of each new term is asked to resync its in-sync copies (recovery.c).
** Recoveries and resyncs (synchronous calls to a primary: minutes for a full copy, or hung on a
** node paused by SIGSTOP) run on a second thread, so promotions never wait behind them.
** Every change is a compare-and-swap of the index's metadata (qc__sm_update), so a leader
** that lost its lease in between cannot overwrite its successor's decisions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define TICK_MS 200
#define RECOVERY_RETRY_MS 3000

struct qc__allocator {
  qc_node *n;
  pthread_t th, rth; /* th: promotions and placement (fix); rth: recoveries and resyncs */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  json_t *tried; /* rth only: "index/shard/node" -> ms of the last recovery attempt */
  json_t *resynced; /* rth only: "index/shard" -> the primary term its primary resynced */
};

typedef struct live {
  qc_member m[256];
  size_t n;
  int64_t now;
  int quiet; /* a trial run on a copy: no logging */
} live;

static int is_live(const live *l, const char *node) {
  if (!node || !*node) return 0;
  for (size_t i = 0; i < l->n; i++)
    if (l->m[i].data && !strcmp(l->m[i].name, node)) return 1;
  return 0;
}

/* "60s", "500ms", "1m", "2h" or a number of milliseconds; DEF when absent or malformed. */
static int64_t parse_time_ms(json_t *v, int64_t def) {
  if (json_is_integer(v)) return json_integer_value(v);
  const char *s = json_string_value(v);
  if (!s || !*s) return def;
  char *end;
  double x = strtod(s, &end);
  if (end == s || x < 0) return def;
  if (!strcmp(end, "ms") || !*end) return (int64_t)x;
  if (!strcmp(end, "s")) return (int64_t)(x * 1000);
  if (!strcmp(end, "m")) return (int64_t)(x * 60000);
  if (!strcmp(end, "h")) return (int64_t)(x * 3600000);
  return def;
}

int64_t qc__delayed_timeout_ms(json_t *meta) {
  json_t *st = json_object_get(meta, "settings");
  json_t *v = json_object_get(st, "index.unassigned.node_left.delayed_timeout");
  if (!v) v = json_object_get(st, "unassigned.node_left.delayed_timeout");
  if (!v) {
    json_t *ix = json_object_get(st, "index");
    v = json_object_get(json_object_get(json_object_get(ix, "unassigned"), "node_left"),
                        "delayed_timeout");
  }
  return parse_time_ms(v, 60000);
}

static int holds(json_t *sh, const char *node) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(sh, "copies"), i, c)
    if (!strcmp(json_string_value(json_object_get(c, "node")) ?: "", node)) return 1;
  return 0;
}

/* A live data node without a copy of SH, the one holding the fewest copies of META. */
static const char *spare_node(const live *l, json_t *meta, json_t *sh) {
  const char *best = NULL;
  size_t bestload = (size_t)-1;
  for (size_t i = 0; i < l->n; i++) {
    if (!l->m[i].data || holds(sh, l->m[i].name)) continue;
    size_t load = 0, k;
    json_t *s2;
    json_array_foreach(json_object_get(meta, "shards"), k, s2) load += holds(s2, l->m[i].name);
    if (load < bestload) best = l->m[i].name, bestload = load;
  }
  return best;
}

/* The allocation decisions for META (qc_sm_fn): 1 when it changed. */
static int fix(json_t *meta, void *ud, qb_err *err) {
  (void)err;
  const live *l = ud;
  int64_t delay = qc__delayed_timeout_ms(meta);
  const char *name = json_string_value(json_object_get(meta, "name")) ?: "?";
  int changed = 0;
  size_t i;
  json_t *sh;
  json_array_foreach(json_object_get(meta, "shards"), i, sh) {
    json_t *copies = json_object_get(sh, "copies");
    uint32_t id = (uint32_t)json_integer_value(json_object_get(sh, "shard"));
    const char *pri = qc__sm_primary(sh);
    /* a primary whose node left, or that stepped down (it left the in-sync set itself after a
    ** write failed on its store, e.g. a full disk) */
    int gone = !is_live(l, pri), down = !gone && !qc__sm_in_sync(sh, pri);
    if (gone || down) {
      for (size_t k = 1; k < json_array_size(copies); k++) {
        json_t *c = json_array_get(copies, k);
        const char *nn = json_string_value(json_object_get(c, "node"));
        if (!is_live(l, nn) || !qc__sm_in_sync(sh, nn)) continue;
        json_t *old = json_incref(json_array_get(copies, 0));
        json_incref(c);
        json_array_set_new(copies, 0, c);
        json_array_set_new(copies, k, old);
        uint64_t term = qc__sm_term(sh) + 1;
        json_object_set_new(sh, "primary_term", json_integer((json_int_t)term));
        const char *on = json_string_value(json_object_get(old, "node"));
        if (on && *on) qc__sm_in_sync_del(sh, on);
        if (!l->quiet)
          qb_log(QB_WARN, "[%s][%u]: primary [%s] %s; promoted the in-sync copy on [%s] (term "
               "%llu)", name, id, on ? on : "", down ? "stepped down" : "left", nn,
               (unsigned long long)term);
        changed = 1;
        down = 0;
        break;
      }
      if (down && json_array_size(json_object_get(sh, "in_sync")) == 0) {
        /* it stepped down while the only other in-sync copy was dying: it is the best copy
        ** left, so it stays the primary (its writes keep failing while its store does) */
        qc__sm_in_sync_add(sh, pri);
        if (!l->quiet)
          qb_log(QB_WARN, "[%s][%u]: primary [%s] stepped down but no in-sync copy is left to "
                 "promote; it stays the primary", name, id, pri);
        changed = 1;
      }
    }
    for (size_t k = 0; k < json_array_size(copies); k++) {
      json_t *c = json_array_get(copies, k);
      const char *nn = json_string_value(json_object_get(c, "node")) ?: "";
      if (is_live(l, nn)) {
        if (json_object_get(c, "left_ms")) json_object_del(c, "left_ms"), changed = 1;
        continue;
      }
      if (k == 0) continue; /* a primary with no live in-sync copy: wait for it (red) */
      if (*nn && qc__sm_in_sync_del(sh, nn)) changed = 1;
      json_t *left = json_object_get(c, "left_ms");
      if (*nn && !left) {
        json_object_set_new(c, "left_ms", json_integer(l->now));
        changed = 1;
        continue;
      }
      if (*nn && l->now - json_integer_value(left) < delay) continue;
      const char *to = spare_node(l, meta, sh);
      if (!to) continue;
      if (!l->quiet)
        qb_log(QB_INFO, "[%s][%u]: copy %s re-allocated to [%s]", name, id,
             *nn ? "of a node that left" : "(unassigned)", to);
      json_object_set_new(c, "node", json_string(to));
      json_object_del(c, "left_ms");
      changed = 1;
    }
    qc__sm_normalize(sh);
  }
  return changed;
}

/* Have the live primary PRI of shard ID resync its in-sync copies once per primary term (after
** a promotion; the primary's first write would otherwise do it). */
static void resync(struct qc__allocator *a, const char *name, uint32_t id, json_t *sh,
                   const char *pri) {
  char key[400], url[128];
  snprintf(key, sizeof key, "%s/%u", name, id);
  json_int_t term = (json_int_t)qc__sm_term(sh);
  if (json_integer_value(json_object_get(a->resynced, key)) == term ||
      json_array_size(json_object_get(sh, "in_sync")) < 2 || !qc__member_url(a->n, pri, url))
    return;
  const char *body = "{\"resync\":true}";
  qc_call call = {.method = "POST", .body = body, .len = strlen(body)};
  snprintf(call.url, sizeof call.url, "%s/_internal/recover/%s/%u", url, name, id);
  qc_fanout(&call, 1, 120000, NULL);
  if (call.status == 200) json_object_set_new(a->resynced, key, json_integer(term));
  else
    qb_log(QB_WARN, "[%s][%u]: the resync of term %lld on [%s] failed (HTTP %d): %.*s", name, id,
           (long long)term, pri, call.status, (int)(call.resp.len < 200 ? call.resp.len : 200),
           call.resp.data ? call.resp.data : call.error);
  qc_call_fini(&call);
}

/* Ask the primary of each copy that is on a live node but not in sync to recover it. */
static void recoveries(struct qc__allocator *a, const live *l, const char *name, json_t *meta) {
  size_t i;
  json_t *sh;
  json_array_foreach(json_object_get(meta, "shards"), i, sh) {
    const char *pri = qc__sm_primary(sh);
    if (!is_live(l, pri) || !qc__sm_in_sync(sh, pri)) continue;
    uint32_t id = (uint32_t)json_integer_value(json_object_get(sh, "shard"));
    resync(a, name, id, sh, pri);
    size_t k;
    json_t *c;
    json_array_foreach(json_object_get(sh, "copies"), k, c) {
      const char *nn = json_string_value(json_object_get(c, "node"));
      if (!k || !is_live(l, nn) || qc__sm_in_sync(sh, nn)) continue;
      char key[600], url[128];
      snprintf(key, sizeof key, "%s/%u/%s", name, id, nn);
      json_int_t last = json_integer_value(json_object_get(a->tried, key));
      if (last && l->now - last < RECOVERY_RETRY_MS) continue;
      json_object_set_new(a->tried, key, json_integer(l->now));
      if (!qc__member_url(a->n, pri, url)) continue;
      char body[200];
      snprintf(body, sizeof body, "{\"target\":\"%s\"}", nn);
      qc_call call = {.method = "POST", .body = body, .len = strlen(body)};
      snprintf(call.url, sizeof call.url, "%s/_internal/recover/%s/%u", url, name, id);
      qc_fanout(&call, 1, 120000, NULL);
      if (call.status != 200)
        qb_log(QB_WARN, "[%s][%u]: recovery of the copy on [%s] from [%s] failed (HTTP %d): %.*s",
               name, id, nn, pri, call.status,
               (int)(call.resp.len < 200 ? call.resp.len : 200),
               call.resp.data ? call.resp.data : call.error);
      else json_object_del(a->tried, key);
      qc_call_fini(&call);
    }
  }
}

/* The live members and the time of one pass; NULL when out of memory (qb_free with its size) */
static live *live_now(qc_node *n) {
  live *l = qb_calloc(1, sizeof *l);
  if (!l) return NULL;
  size_t cnt = qc_node_members(n, l->m, 256);
  l->n = cnt < 256 ? cnt : 256;
  l->now = qb_wall_ms();
  return l;
}

static void pass(struct qc__allocator *a) {
  qc_node *n = a->n;
  live *l = live_now(n);
  if (!l) return;
  json_t *all = qc_node_indexes(n);
  const char *name;
  json_t *meta;
  json_object_foreach(all, name, meta) {
    json_t *trial = json_deep_copy(meta);
    l->quiet = 1;
    int todo = trial && fix(trial, l, NULL) > 0;
    l->quiet = 0;
    json_decref(trial);
    if (todo) {
      qb_err err;
      qb_err_clear(&err);
      if (qc__sm_update(n, name, fix, l, &err) && err.code != QB_NOTFOUND)
        qb_log(QB_WARN, "allocator: index [%s]: %s", name, err.msg);
    }
  }
  json_decref(all);
  qb_free(l, sizeof *l);
}

/* The recoveries and resyncs of one tick, on their own thread: each is a synchronous call to a
** primary that may take minutes (a full copy) or hang (a node paused by SIGSTOP keeps its
** connections open), and promotions must not wait behind it. */
static void recover_pass(struct qc__allocator *a) {
  qc_node *n = a->n;
  live *l = live_now(n);
  if (!l) return;
  json_t *all = qc_node_indexes(n);
  const char *name;
  json_t *meta;
  json_object_foreach(all, name, meta) {
    if (!qc_node_is_leader(n)) break;
    recoveries(a, l, name, meta);
  }
  json_decref(all);
  qb_free(l, sizeof *l);
}

static void run_loop(struct qc__allocator *a, void (*fn)(struct qc__allocator *)) {
  pthread_mutex_lock(&a->mu);
  while (!a->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += TICK_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    if (a->stop) break;
    pthread_mutex_unlock(&a->mu);
    if (qc_node_is_leader(a->n)) fn(a);
    pthread_mutex_lock(&a->mu);
  }
  pthread_mutex_unlock(&a->mu);
}

static void *loop(void *arg) {
  run_loop(arg, pass);
  return NULL;
}

static void *recover_loop(void *arg) {
  run_loop(arg, recover_pass);
  return NULL;
}

qb_code qc__alloc_start(qc_node *n, qb_err *err) {
  struct qc__allocator *a = qb_calloc(1, sizeof *a);
  if (!a || !(a->tried = json_object()) || !(a->resynced = json_object())) {
    if (a) json_decref(a->tried);
    qb_free(a, sizeof *a);
    return qb_fail(err, QB_NOMEM, "out of memory");
  }
  a->n = n;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  if (pthread_create(&a->th, NULL, loop, a)) {
    json_decref(a->tried);
    json_decref(a->resynced);
    qb_free(a, sizeof *a);
    return qb_fail(err, QB_NOMEM, "allocator: cannot start its thread");
  }
  if (pthread_create(&a->rth, NULL, recover_loop, a)) {
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    json_decref(a->tried);
    json_decref(a->resynced);
    qb_free(a, sizeof *a);
    return qb_fail(err, QB_NOMEM, "allocator: cannot start its recovery thread");
  }
  n->alloc = a;
  return QB_OK;
}

void qc__alloc_stop(qc_node *n) {
  struct qc__allocator *a = n->alloc;
  if (!a) return;
  pthread_mutex_lock(&a->mu);
  a->stop = 1;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->th, NULL);
  pthread_join(a->rth, NULL); /* may wait for a recovery call in flight (its timeout bounds it) */
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
  json_decref(a->tried);
  json_decref(a->resynced);
  qb_free(a, sizeof *a);
  n->alloc = NULL;
}
