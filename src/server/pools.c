/* pools.c: worker pools by kind of request (issue 13 #3), so one kind cannot starve another:
** 4 slow UDF searches on 2 HTTP threads used to hold a plain _count for 26 s. Searches (and
** anything that runs a script: _search, _msearch, _delete_by_query, _udf/_test, a _count with a
** script) run on the search pool; writes and management (documents, _bulk, mappings, index and
** UDF changes, refreshes) on the write pool; cheap reads (GET /, health, _cat, metrics, gets, a
** plain _count, a plain search: plain_search) stay on libmicrohttpd's threads, which therefore
** never wait for slow work. On a coordinator those reads wait for data nodes or etcd, so they
** run on the search pool too.
** A pooled request's connection is suspended while a worker runs it and resumed when its
** response is ready (server.c); a full queue answers 429 es_rejected_execution_exception, as
** Elasticsearch's thread pools do.
** Invariant: a job is owned by the queue until a worker takes it, then by that worker until it
** calls its done function; the pool never touches a job after that. */
#define _GNU_SOURCE /* memmem */
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>

#include "internal.h"

typedef struct job {
  struct job *next;
  qs__job_fn run;
  void *arg;
} job;

struct qs__pool {
  const char *name;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job *head, *tail;
  size_t queued, max_queue;
  int stopping;
  size_t nthreads_joined; /* qs__pool_stop has joined the threads */
  size_t nthreads;
  pthread_t *threads;
  uint64_t rejected, completed; /* relaxed atomics, for /metrics */
  int nice;                     /* added niceness of the workers (0: as the server) */
};

static void *worker(void *arg) {
  qs__pool *p = arg;
  if (p->nice) setpriority(PRIO_PROCESS, 0, getpriority(PRIO_PROCESS, 0) + p->nice);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->head && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
    if (!p->head) break; /* stopping, and the queue is drained */
    job *j = p->head;
    p->head = j->next;
    if (!p->head) p->tail = NULL;
    p->queued--;
    pthread_mutex_unlock(&p->mu);
    j->run(j->arg);
    qb_free(j, sizeof *j);
    __atomic_fetch_add(&p->completed, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

qb_code qs__pool_new(const char *name, size_t nthreads, size_t max_queue, int nice,
                     qs__pool **out, qb_err *err) {
  *out = NULL;
  qs__pool *p = qb_calloc(1, sizeof *p);
  if (!p || !(p->threads = qb_calloc(nthreads, sizeof *p->threads))) {
    qb_free(p, sizeof *p);
    return qb_fail(err, QB_NOMEM, "server: out of memory for the %s pool", name);
  }
  p->name = name;
  p->max_queue = max_queue;
  p->nice = nice;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  for (; p->nthreads < nthreads; p->nthreads++)
    if (pthread_create(&p->threads[p->nthreads], NULL, worker, p)) {
      qs__pool_free(p);
      return qb_fail(err, QB_NOMEM, "server: cannot start the %s pool's threads", name);
    }
  *out = p;
  return QB_OK;
}

void qs__pool_stop(qs__pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  p->nthreads_joined = p->nthreads;
}

void qs__pool_free(qs__pool *p) {
  if (!p) return;
  if (p->nthreads_joined != p->nthreads) qs__pool_stop(p);
  qb_free(p->threads, (p->nthreads ? p->nthreads : 1) * sizeof *p->threads);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  qb_free(p, sizeof *p);
}

int qs__pool_submit(qs__pool *p, qs__job_fn run, void *arg) {
  job *j = qb_malloc(sizeof *j);
  if (!j) return 0;
  j->next = NULL;
  j->run = run;
  j->arg = arg;
  pthread_mutex_lock(&p->mu);
  if (p->queued >= p->max_queue || p->stopping) {
    pthread_mutex_unlock(&p->mu);
    qb_free(j, sizeof *j);
    __atomic_fetch_add(&p->rejected, 1, __ATOMIC_RELAXED);
    return 0;
  }
  if (p->tail) p->tail->next = j;
  else p->head = j;
  p->tail = j;
  p->queued++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return 1;
}

void qs__pool_stats(qs__pool *p, qs__pool_stat *out) {
  pthread_mutex_lock(&p->mu);
  out->queued = p->queued;
  pthread_mutex_unlock(&p->mu);
  out->name = p->name;
  out->threads = p->nthreads;
  out->max_queue = p->max_queue;
  out->rejected = __atomic_load_n(&p->rejected, __ATOMIC_RELAXED);
  out->completed = __atomic_load_n(&p->completed, __ATOMIC_RELAXED);
}

/* The number after KEY (a quoted member name) in BODY, into *V: 1 when found and read, 0 when
** KEY is absent, -1 when it is there but not followed by ": <digits>" (the caller stays safe) */
static int body_number(const char *body, size_t len, const char *key, long *v) {
  const char *k = memmem(body, len, key, strlen(key)), *end = body + len;
  if (!k) return 0;
  const char *p = k + strlen(key);
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end || *p++ != ':') return -1;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end || *p < '0' || *p > '9') return -1;
  for (*v = 0; p < end && *p >= '0' && *p <= '9' && *v < 1000000; p++) *v = *v * 10 + (*p - '0');
  return memmem(p, (size_t)(end - p), key, strlen(key)) ? -1 : 1; /* a second one: unsure */
}

#define W(s) {s, sizeof s - 1}
static const struct {
  const char *w;
  size_t n;
} pooled[] = {W("script"), W("agg"), W("highlight"), W("rescore"), W("collapse"), W("suggest"),
              W("sort"), W("pit"), W("search_after"), W("runtime"), W("knn"), W("explain"),
              W("profile"), W("wildcard"), W("regexp"), W("fuzzy"), W("prefix"),
              W("query_string"), W("more_like_this"), W("terms_set"), W("inner_hits"), W("udf")};
#undef W
/* by first letter, the pooled words that start with it (bit i: pooled[i]): the body is read
** once, trying only those (22 memmem passes were ~6k instructions a request) */
static uint32_t pooled_by_first[256];
static pthread_once_t pooled_once = PTHREAD_ONCE_INIT;

static void pooled_init(void) {
  for (size_t i = 0; i < sizeof pooled / sizeof *pooled; i++)
    pooled_by_first[(unsigned char)pooled[i].w[0]] |= (uint32_t)1 << i;
}

/* A plain search costs what a plain _count of its query costs, plus a page of at most 100
** hits, so it runs where a plain count does: on the HTTP thread that read it, without the two
** thread hand-offs a pooled request pays (issue 14: ~17 us of a ~100 us rare-term search).
** Whatever may run long stays pooled: a script or UDF, aggregations, highlight, rescore,
** collapse, sorting, queries that expand terms, a page past 100 hits, any URL parameter (?q=,
** ?scroll=, ...), a body over 1 KiB. Words are looked for anywhere in the body, so a query
** that merely mentions one (as a term) is pooled too: never the other way round. A body with
** a backslash is pooled: an escape could spell one of the words ("\u0073cript_score"). */
static int plain_search(const qs_req *r) {
  long size = 10, from = 0;
  if (r->query || r->body_len > 1024 || (r->body_len && memchr(r->body, '\\', r->body_len)))
    return 0;
  pthread_once(&pooled_once, pooled_init);
  for (size_t i = 0; i < r->body_len; i++)
    for (uint32_t m = pooled_by_first[(unsigned char)r->body[i]]; m; m &= m - 1) {
      size_t w = (size_t)__builtin_ctz(m);
      if (pooled[w].n <= r->body_len - i && !memcmp(r->body + i, pooled[w].w, pooled[w].n))
        return 0;
    }
  if (body_number(r->body, r->body_len, "\"size\"", &size) < 0 ||
      body_number(r->body, r->body_len, "\"from\"", &from) < 0)
    return 0;
  return size + from <= 100;
}

/* Which pool runs R: NULL for the cheap reads that stay on MHD's threads. */
qs__pool *qs__pool_for(qs_req *r) {
  qs_server *s = r->srv;
  qs_handler h = qs__routes[r->route].handler;
  /* a node that is coordinator and data node (--role both) calls itself: its data node's half
  ** (the /_internal routes, requests to a shard's local name "index~N") must not queue behind
  ** the coordinator's work that waits for it (one write thread: a deadlock), so it runs on
  ** MHD's threads */
  if (qc_node_routes(s->node) && (qc_node_role(s->node) & QC_DATA) &&
      (!strncmp(qs__routes[r->route].pattern, "/_internal/", 11) || strchr(r->path, '~')))
    return NULL;
  if (h == qs__h_search && !qc_node_routes(s->node) && plain_search(r)) return NULL;
  if (h == qs__h_search || h == qs__h_msearch || h == qs__h_delete_by_query ||
      h == qs__h_udf_test || h == qs__h_i_search) /* a shard's half of a cluster search */
    return s->search_pool;
  if (h == qs__h_count) /* a plain count is cheap; one with a script may not be */
    return r->body_len && memmem(r->body, r->body_len, "script", 6) ? s->search_pool : NULL;
  if (h == qs__h_bulk || h == qs__h_doc_put || h == qs__h_doc_create || h == qs__h_doc_update ||
      h == qs__h_doc_delete || h == qs__h_mapping_put || h == qs__h_index_create ||
      h == qs__h_index_delete || h == qs__h_udf_put || h == qs__h_udf_delete ||
      h == qs__h_udf_rollback || h == qs__h_refresh ||
      h == qs__h_api_key_create || h == qs__h_api_key_invalidate) /* crypto_pwhash, the file */
    return s->write_pool;
  if (h == qs__h_i_shard_put || h == qs__h_i_shard_delete || h == qs__h_i_udf_sync ||
      h == qs__h_i_udf_delete) /* a data node's half of index and UDF changes */
    return s->write_pool;
  /* a coordinator answers the other reads over the network (data nodes, etcd): not on MHD's
  ** threads either */
  if (qc_node_routes(s->node) && h != qs__h_root && h != qs__h_metrics) return s->search_pool;
  return NULL;
}
