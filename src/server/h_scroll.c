/* h_scroll.c: searches over a pinned view: scroll contexts (`_search?scroll=`, `_search/scroll`)
** and points in time (`POST /{index}/_pit`, `DELETE /_pit`, `"pit"` in a `_search` body).
** A context holds a reference to one snapshot per shard, so every page searches the same
** segments and live documents whatever is written meanwhile. A scroll pages by the search_after
** of its last hit, with the `_shard_doc` tiebreaker (shard position << 32 | doc number in the
** snapshot) appended to its sort, so each document comes exactly once. Contexts are bounded in
** number (QS_CTX_MAX of each kind) and expire keep_alive after their last use (swept on every
** use of the table and by the refresher, once a refresh interval). Cluster mode: a view pins local snapshots only, so a search whose shards
** are on other nodes answers 400 naming scroll / point in time. */
#define _GNU_SOURCE /* memmem */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"

#define QS_CTX_MAX 500                             /* search.max_open_scroll_context */
#define QS_KEEP_MAX_NS (24ULL * 3600 * 1000000000) /* search.max_keep_alive: 1d */

enum { CTX_SCROLL, CTX_PIT };

typedef struct vctx {
  int refs;            /* the table's one, and one per request using it (under the table's mu) */
  int kind, busy;
  char id[48];
  uint64_t expires_ns, keep_ns;
  size_t n, ncap;      /* the pinned view: a snapshot per shard (ncap: allocated, >= 1) */
  qi_snapshot **snaps;
  char (*index)[256];
  uint32_t *shard;
  /* scroll: the body each page runs (sort + tiebreaker, no from), the last hit's sort values,
  ** how many sort values the user asked for (-1: none: the hits get no sort array) */
  json_t *body, *after;
  int user_nsort;
  int pages;
} vctx;

typedef struct qs__ctxs {
  pthread_mutex_t mu;
  vctx *slot[2 * QS_CTX_MAX];
  size_t count[2];
} qs__ctxs;

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

static qs__ctxs *table(qs_server *s) {
  qs__ctxs *t = __atomic_load_n(&s->ctxs, __ATOMIC_ACQUIRE);
  if (t) return t;
  pthread_mutex_lock(&create_mu);
  if (!(t = s->ctxs) && (t = qb_calloc(1, sizeof *t))) {
    pthread_mutex_init(&t->mu, NULL);
    __atomic_store_n(&s->ctxs, t, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&create_mu);
  return t;
}

static void ctx_free(vctx *c) {
  for (size_t i = 0; c->snaps && i < c->n; i++) qi_snapshot_release(c->snaps[i]);
  qb_free(c->snaps, c->ncap * sizeof *c->snaps);
  qb_free(c->index, c->ncap * sizeof *c->index);
  qb_free(c->shard, c->ncap * sizeof *c->shard);
  json_decref(c->body);
  json_decref(c->after);
  qb_free(c, sizeof *c);
}

/* under t->mu: drop a reference; the last one frees */
static void unref_locked(vctx *c) {
  if (--c->refs == 0) ctx_free(c);
}

static void release(qs__ctxs *t, vctx *c) {
  pthread_mutex_lock(&t->mu);
  c->busy = 0;
  unref_locked(c);
  pthread_mutex_unlock(&t->mu);
}

/* under t->mu: forget the contexts past their keep_alive */
static void sweep_locked(qs__ctxs *t) {
  uint64_t now = qb_now_ns();
  for (size_t i = 0; i < 2 * QS_CTX_MAX; i++) {
    vctx *c = t->slot[i];
    if (c && c->expires_ns < now && !c->busy) {
      t->slot[i] = NULL;
      t->count[c->kind]--;
      unref_locked(c);
    }
  }
}

void qs__ctxs_sweep(qs_server *s) {
  qs__ctxs *t = __atomic_load_n(&s->ctxs, __ATOMIC_ACQUIRE);
  if (!t) return;
  pthread_mutex_lock(&t->mu);
  sweep_locked(t);
  pthread_mutex_unlock(&t->mu);
}

void qs__ctxs_free(qs_server *s) {
  qs__ctxs *t = s->ctxs;
  if (!t) return;
  for (size_t i = 0; i < 2 * QS_CTX_MAX; i++)
    if (t->slot[i]) unref_locked(t->slot[i]);
  pthread_mutex_destroy(&t->mu);
  qb_free(t, sizeof *t);
  s->ctxs = NULL;
}

/* "1m", "30s", "500ms", "2h", "1d", "100micros", "10nanos" -> ns; 0 when unreadable */
static uint64_t duration_ns(const char *v) {
  static const struct { const char *u; uint64_t ns; } units[] = {
      {"nanos", 1}, {"micros", 1000}, {"ms", 1000000}, {"s", 1000000000ULL},
      {"m", 60000000000ULL}, {"h", 3600000000000ULL}, {"d", 86400000000000ULL}};
  char *end;
  if (!v || !*v || *v == '-') return 0;
  unsigned long long n = strtoull(v, &end, 10);
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    if (!strcmp(end, units[i].u)) return n ? n * units[i].ns : 0;
  return 0;
}

/* KEEP (text) as *NS, or 0 after a 400 */
static int keep_alive(qs_req *r, const char *what, const char *keep, uint64_t *ns) {
  *ns = duration_ns(keep);
  if (!*ns) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "failed to parse setting [%s] with value [%.64s] as a time value: a number "
                    "and a unit (ms, s, m, h, d)", what, keep ? keep : "");
    return 0;
  }
  if (*ns > QS_KEEP_MAX_NS) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "Keep alive for request (%.64s) is too large. It must be less than (1d). This "
                    "limit can be set by changing the [search.max_keep_alive] cluster level "
                    "setting.", keep);
    return 0;
  }
  return 1;
}

/* A cluster coordinator has no pinned views (its shards are on other nodes): 1 after a 400 */
static int coord_refused(qs_req *r, const char *what) {
  if (!qc_node_routes(r->srv->node)) return 0;
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "[%s] is not supported through a cluster coordinator: page with search_after "
                  "(a sort with a tiebreaker field) instead", what);
  return 1;
}

static void reply_missing(qs_req *r, const char *id) {
  qs__reply_error(r, 404, "search_context_missing_exception", "No search context found for id [%.64s]",
                  id ? id : "");
}

/* A new context of KIND pinning a snapshot of every shard of T (all local), in the table;
** NULL after a reply. The caller holds one reference (release). */
static vctx *ctx_open(qs_req *r, int kind, const qc_shards *sh, uint64_t keep_ns) {
  qs__ctxs *t = table(r->srv);
  for (size_t i = 0; i < sh->n; i++)
    if (!sh->s[i].local) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "[%s] is not supported through a cluster coordinator: shard [%s][%u] is on "
                      "node [%s]; page with search_after (sort with a tiebreaker field) instead",
                      kind == CTX_SCROLL ? "scroll" : "point in time", sh->s[i].index,
                      sh->s[i].shard_id, sh->s[i].node);
      return NULL;
    }
  vctx *c = t ? qb_calloc(1, sizeof *c) : NULL;
  if (c) {
    c->ncap = sh->n ? sh->n : 1;
    c->snaps = qb_calloc(c->ncap, sizeof *c->snaps);
    c->index = qb_calloc(c->ncap, sizeof *c->index);
    c->shard = qb_calloc(c->ncap, sizeof *c->shard);
  }
  unsigned char rnd[16];
  if (!c || !c->snaps || !c->index || !c->shard || getrandom(rnd, sizeof rnd, 0) != sizeof rnd) {
    if (c) ctx_free(c);
    qs__reply_error(r, 429, "circuit_breaking_exception", "out of memory");
    return NULL;
  }
  c->n = sh->n;
  for (size_t i = 0; i < sh->n; i++) {
    c->snaps[i] = qi_index_snapshot(sh->s[i].local);
    memcpy(c->index[i], sh->s[i].index, sizeof c->index[i]);
    c->shard[i] = sh->s[i].shard_id;
  }
  c->kind = kind;
  c->keep_ns = keep_ns;
  c->expires_ns = qb_now_ns() + keep_ns;
  c->user_nsort = -1;
  int w = snprintf(c->id, sizeof c->id, "%s", kind == CTX_SCROLL ? "qds" : "qdp");
  for (size_t i = 0; i < sizeof rnd; i++) w += snprintf(c->id + w, sizeof c->id - (size_t)w, "%02x", rnd[i]);
  pthread_mutex_lock(&t->mu);
  sweep_locked(t);
  size_t i = 0;
  if (t->count[kind] < QS_CTX_MAX)
    for (; i < 2 * QS_CTX_MAX && t->slot[i]; i++) {}
  if (t->count[kind] >= QS_CTX_MAX || i == 2 * QS_CTX_MAX) {
    pthread_mutex_unlock(&t->mu);
    ctx_free(c);
    qs__reply_error(r, 429, "es_rejected_execution_exception",
                    "Trying to create too many %s contexts. Must be less than or equal to: [%d]. "
                    "Close the ones you no longer need (DELETE %s).",
                    kind == CTX_SCROLL ? "scroll" : "point in time", QS_CTX_MAX,
                    kind == CTX_SCROLL ? "/_search/scroll" : "/_pit");
    return NULL;
  }
  t->slot[i] = c;
  t->count[kind]++;
  c->refs = 2;
  c->busy = 1;
  pthread_mutex_unlock(&t->mu);
  return c;
}

/* The live context ID of KIND with a reference for the caller (extending its keep_alive by
** KEEP_NS when not 0), or NULL (unknown or expired). BUSY: 1 when it serves a page already. */
static vctx *ctx_get(qs_server *s, int kind, const char *id, uint64_t keep_ns, int *busy) {
  qs__ctxs *t = table(s);
  vctx *c = NULL;
  *busy = 0;
  if (!t || !id) return NULL;
  pthread_mutex_lock(&t->mu);
  sweep_locked(t);
  for (size_t i = 0; i < 2 * QS_CTX_MAX; i++)
    if (t->slot[i] && t->slot[i]->kind == kind && !strcmp(t->slot[i]->id, id)) c = t->slot[i];
  if (c && kind == CTX_SCROLL && c->busy) {
    *busy = 1;
    c = NULL;
  } else if (c) {
    c->refs++;
    if (kind == CTX_SCROLL) c->busy = 1;
    if (keep_ns) c->keep_ns = keep_ns;
    c->expires_ns = qb_now_ns() + c->keep_ns;
  }
  pthread_mutex_unlock(&t->mu);
  return c;
}

/* Remove ID of KIND (NULL: every one of KIND) from the table; the number removed */
static size_t ctx_close(qs_server *s, int kind, const char *id) {
  qs__ctxs *t = table(s);
  size_t n = 0;
  if (!t) return 0;
  pthread_mutex_lock(&t->mu);
  sweep_locked(t);
  for (size_t i = 0; i < 2 * QS_CTX_MAX; i++) {
    vctx *c = t->slot[i];
    if (c && c->kind == kind && (!id || !strcmp(c->id, id))) {
      t->slot[i] = NULL;
      t->count[kind]--;
      unref_locked(c);
      n++;
    }
  }
  pthread_mutex_unlock(&t->mu);
  return n;
}

/* Search BODY on C's pinned view; *OUT the response; 0 after a reply */
static int view_search(qs_req *r, vctx *c, const json_t *body, json_t **out) {
  char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(17));
  qc_udf_provider prov;
  qq_env env;
  qq_request *req = NULL;
  qb_err err;
  uint64_t t0 = qb_now_ns();
  qb_err_clear(&err);
  *out = NULL;
  if (!text) {
    qs__reply_error(r, 429, "circuit_breaking_exception", "out of memory");
    return 0;
  }
  qs__query_env(r, &prov, &env);
  env.pinned_view = 1;
  for (size_t i = 0; i < c->n; i++) qs__env_window_named(r->srv, c->index[i], &env);
  qq_partial **parts = qb_calloc(c->n ? c->n : 1, sizeof *parts);
  qb_code rc = parts ? qq_request_parse(&env, text, strlen(text), 0, &req, &err)
                     : qb_fail(&err, QB_NOMEM, "out of memory");
  for (size_t i = 0; !rc && i < c->n; i++) {
    qb_err e;
    qb_err_clear(&e);
    qq_request_set_shard_index(req, (uint32_t)i);
    if (qq_shard_search(req, c->snaps[i], c->index[i], c->shard[i], &parts[i], &e))
      rc = qq_partial_failed(c->index[i], c->shard[i], &e, &parts[i], &err);
  }
  if (!rc && c->n) rc = qq_response_render(req, parts, c->n, (qb_now_ns() - t0) / 1000000u, out, &err);
  if (!rc && !c->n)
    *out = json_pack("{s:i, s:b, s:{s:i, s:i, s:i, s:i}, s:{s:{s:i, s:s}, s:n, s:[]}}", "took", 0,
                     "timed_out", 0, "_shards", "total", 0, "successful", 0, "skipped", 0, "failed",
                     0, "hits", "total", "value", 0, "relation", "eq", "max_score", "hits");
  for (size_t i = 0; parts && i < c->n; i++) qq_partial_free(parts[i]);
  qb_free(parts, (c->n ? c->n : 1) * sizeof *parts);
  qq_request_free(req);
  qc_udf_provider_fini(&prov);
  qs__json_free(text);
  qs__metrics_search(r->srv, qb_now_ns() - t0, rc == QB_OK);
  if (rc) {
    qs__reply_err(r, &err);
    return 0;
  }
  if (!*out) {
    qs__reply_error(r, 429, "circuit_breaking_exception", "out of memory");
    return 0;
  }
  return 1;
}

/* {"K": ID, ...RES}: the id first, as Elasticsearch answers; takes RES */
static json_t *with_id(const char *k, const char *id, json_t *res) {
  json_t *o = json_object();
  if (o && !json_object_set_new(o, k, json_string(id)) && !json_object_update(o, res)) {
    json_decref(res);
    return o;
  }
  json_decref(o);
  return res;
}

/* BODY's sort as an array (a copy), or NULL when it has none */
static json_t *sort_copy(const json_t *body) {
  const json_t *s = json_object_get(body, "sort");
  if (!s) return NULL;
  return json_is_array(s) ? json_deep_copy(s) : json_pack("[O]", s);
}

static int sort_names(const json_t *sort, const char *name) {
  size_t i;
  const json_t *v;
  json_array_foreach(sort, i, v) {
    const char *k = json_is_string(v) ? json_string_value(v)
                    : json_is_object(v) ? json_object_iter_key(json_object_iter((json_t *)v)) : NULL;
    if (k && !strcmp(k, name)) return 1;
  }
  return 0;
}

/* One page of scroll C: run its body after its last hit; reply with the hits. 0 when it
** failed (replied) */
static int scroll_page(qs_req *r, vctx *c) {
  json_t *b = json_deep_copy(c->body), *res;
  if (!b) {
    qs__reply_error(r, 429, "circuit_breaking_exception", "out of memory");
    return 0;
  }
  if (c->pages) {
    json_object_del(b, "aggs");
    json_object_del(b, "aggregations");
  }
  if (c->after) json_object_set(b, "search_after", c->after);
  int ok = view_search(r, c, b, &res);
  json_decref(b);
  if (!ok) return 0;
  c->pages++;
  json_t *hits = json_object_get(json_object_get(res, "hits"), "hits");
  size_t n = json_array_size(hits), i;
  json_t *h;
  if (n) {
    json_decref(c->after);
    c->after = json_deep_copy(json_object_get(json_array_get(hits, n - 1), "sort"));
  }
  json_array_foreach(hits, i, h) { /* the tiebreaker was ours: the user sees their sort only */
    json_t *sa = json_object_get(h, "sort");
    if (c->user_nsort < 0) json_object_del(h, "sort");
    else if (sa) json_array_remove(sa, json_array_size(sa) - 1);
  }
  qs__reply_json(r, 200, with_id("_scroll_id", c->id, res));
  return 1;
}

/* The _search hook (h_search.c): ?scroll= and "pit" searches. 1 when it answered R. */
int qs__view_search(qs_req *r, const char *body, size_t len) {
  const char *scroll = qs__arg(r, "scroll");
  int has_pit = len && memmem(body, len, "\"pit\"", 5);
  if (!scroll && !has_pit) return 0;
  json_t *b = NULL;
  json_error_t je;
  if (len && !(b = json_loadb(body, len, 0, &je))) return 0; /* the search reports it */
  if (!b) b = json_object();
  if (!json_is_object(b) || (!scroll && !json_object_get(b, "pit"))) {
    json_decref(b);
    return 0;
  }
  const json_t *pit = json_object_get(b, "pit");
  if (coord_refused(r, scroll ? "scroll" : "point in time")) return json_decref(b), 1;
  static const struct { const char *key, *why; } refused[] = {
      {"pit", "using [point in time] is not allowed in a scroll context"},
      {"search_after", "[search_after] cannot be used in a scroll context"},
      {"collapse", "cannot use `collapse` in a scroll context"},
      {"rescore", "[rescore] is not supported in a scroll context here: scroll pages by its sort"},
      {"from", "using [from] is not allowed in a scroll context"}};
  for (size_t i = 0; scroll && i < sizeof refused / sizeof *refused; i++) {
    const json_t *v = json_object_get(b, refused[i].key);
    if (v && !(i == 4 && json_is_integer(v) && json_integer_value(v) == 0)) {
      json_decref(b);
      qs__reply_error(r, 400, "action_request_validation_exception", "Validation Failed: 1: %s;",
                      refused[i].why);
      return 1;
    }
  }
  if (scroll) {
    uint64_t keep;
    json_t *tt = json_object_get(b, "track_total_hits");
    if (json_is_false(tt)) {
      json_decref(b);
      qs__reply_error(r, 400, "action_request_validation_exception",
                      "Validation Failed: 1: disabling [track_total_hits] is not allowed in a "
                      "scroll context;");
      return 1;
    }
    if (!keep_alive(r, "scroll", scroll, &keep)) return json_decref(b), 1;
    qc_shards t;
    char missing[256] = "";
    qb_err err;
    qc_shards_init(&t);
    qb_code rc = qc_node_resolve(r->srv->node, r->ncaps ? r->caps[0] : NULL,
                                 qs__arg_bool(r, "ignore_unavailable"), &t, missing, &err);
    if (rc) {
      qc_shards_fini(&t);
      json_decref(b);
      if (rc == QB_NOTFOUND) qs__reply_no_index(r, missing);
      else qs__reply_err(r, &err);
      return 1;
    }
    vctx *c = ctx_open(r, CTX_SCROLL, &t, keep);
    qc_shards_fini(&t);
    if (!c) return json_decref(b), 1;
    json_t *sort = sort_copy(b);
    c->user_nsort = sort ? (int)json_array_size(sort) : -1;
    if (!sort) sort = json_pack("[s]", "_score");
    json_array_append_new(sort, json_string("_shard_doc"));
    json_object_set_new(b, "sort", sort);
    json_object_del(b, "from");
    if (!tt) json_object_set_new(b, "track_total_hits", json_true());
    c->body = b;
    if (!scroll_page(r, c)) { /* a first page that failed leaves no context behind */
      char id[sizeof c->id];
      memcpy(id, c->id, sizeof id);
      release(table(r->srv), c);
      ctx_close(r->srv, CTX_SCROLL, id);
      return 1;
    }
    release(table(r->srv), c);
    return 1;
  }
  /* a point in time: {"id", "keep_alive"} */
  const char *id = json_string_value(json_object_get(pit, "id"));
  const char *ka = json_string_value(json_object_get(pit, "keep_alive"));
  uint64_t keep = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)pit, k, v) {
    if (strcmp(k, "id") && strcmp(k, "keep_alive")) {
      qs__reply_error(r, 400, "x_content_parse_exception", "[pit] unknown field [%s]", k);
      json_decref(b); /* after the reply: K is B's */
      return 1;
    }
  }
  if (!id) {
    json_decref(b);
    qs__reply_error(r, 400, "x_content_parse_exception", "[pit] requires a string [id]");
    return 1;
  }
  if (r->ncaps) {
    json_decref(b);
    qs__reply_error(r, 400, "action_request_validation_exception",
                    "Validation Failed: 1: [indices] cannot be used with point in time. Do not "
                    "specify any index with point in time.;");
    return 1;
  }
  if (ka && !keep_alive(r, "keep_alive", ka, &keep)) return json_decref(b), 1;
  int busy;
  vctx *c = ctx_get(r->srv, CTX_PIT, id, keep, &busy);
  if (!c) {
    reply_missing(r, id); /* ID is B's */
    json_decref(b);
    return 1;
  }
  json_t *sort = sort_copy(b), *res;
  if (sort && !sort_names(sort, "_shard_doc")) json_array_append_new(sort, json_string("_shard_doc"));
  if (sort) json_object_set_new(b, "sort", sort);
  json_object_del(b, "pit");
  if (view_search(r, c, b, &res)) qs__reply_json(r, 200, with_id("pit_id", c->id, res));
  json_decref(b);
  release(table(r->srv), c);
  return 1;
}

/* POST|GET /_search/scroll[/{id}]: {"scroll_id", "scroll"} in the body or ?scroll_id=, ?scroll= */
void qs__h_scroll(qs_req *r) {
  json_t *b;
  if (coord_refused(r, "scroll") || !qs__body_object(r, &b)) return;
  const char *id = r->ncaps ? r->caps[0] : qs__arg(r, "scroll_id");
  const char *keep = qs__arg(r, "scroll");
  const char *k;
  json_t *v;
  json_object_foreach(b, k, v) {
    if (!strcmp(k, "scroll_id") && json_is_string(v)) id = json_string_value(v);
    else if (!strcmp(k, "scroll") && json_is_string(v)) keep = json_string_value(v);
    else {
      qs__reply_error(r, 400, "x_content_parse_exception", "[scroll] unknown field [%s] (or not a string)", k);
      json_decref(b);
      return;
    }
  }
  uint64_t keep_ns = 0;
  if (!id) {
    json_decref(b);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: scrollId is missing;");
  }
  if (keep && !keep_alive(r, "scroll", keep, &keep_ns)) return json_decref(b);
  int busy;
  vctx *c = ctx_get(r->srv, CTX_SCROLL, id, keep_ns, &busy);
  if (busy)
    qs__reply_error(r, 409, "illegal_state_exception", "scroll [%.64s] is serving another page; "
                    "a scroll is read one page at a time", id);
  else if (!c) reply_missing(r, id);
  else {
    scroll_page(r, c);
    release(table(r->srv), c);
  }
  json_decref(b);
}

/* DELETE /_search/scroll[/{id}]: {"scroll_id": id | [ids]}, or "_all" */
void qs__h_scroll_clear(qs_req *r) {
  json_t *b;
  if (coord_refused(r, "scroll") || !qs__body_object(r, &b)) return;
  json_t *ids = json_array();
  if (r->ncaps) {
    const char *p = r->caps[0];
    while (*p) { /* comma-separated */
      const char *e = strchr(p, ',');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      json_array_append_new(ids, json_stringn(p, n));
      p += n + (e ? 1 : 0);
    }
  }
  json_t *sv = json_object_get(b, "scroll_id");
  if (json_is_string(sv)) json_array_append(ids, sv);
  else if (json_is_array(sv)) json_array_extend(ids, sv);
  const char *k;
  json_t *v;
  json_object_foreach(b, k, v) {
    if (strcmp(k, "scroll_id")) {
      qs__reply_error(r, 400, "x_content_parse_exception", "[clear_scroll] unknown field [%s]", k);
      json_decref(b); /* after the reply: K is B's */
      json_decref(ids);
      return;
    }
  }
  if (!json_array_size(ids)) {
    json_decref(b);
    json_decref(ids);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: no scroll ids specified;");
  }
  size_t freed = 0, i;
  json_array_foreach(ids, i, v) {
    const char *id = json_string_value(v);
    if (!id) continue;
    freed += ctx_close(r->srv, CTX_SCROLL, !strcmp(id, "_all") ? NULL : id);
  }
  json_decref(b);
  json_decref(ids);
  qs__reply_json(r, freed ? 200 : 404, json_pack("{s:b, s:I}", "succeeded", 1, "num_freed",
                                                 (json_int_t)freed));
}

/* POST /{index}/_pit?keep_alive= */
void qs__h_pit_open(qs_req *r) {
  uint64_t keep;
  const char *ka = qs__arg(r, "keep_alive");
  if (coord_refused(r, "point in time")) return;
  if (!ka)
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: [keep_alive] is not specified;");
  if (!keep_alive(r, "keep_alive", ka, &keep)) return;
  qc_shards t;
  char missing[256] = "";
  qb_err err;
  qc_shards_init(&t);
  qb_code rc = qc_node_resolve(r->srv->node, r->caps[0], qs__arg_bool(r, "ignore_unavailable"),
                               &t, missing, &err);
  if (rc) {
    qc_shards_fini(&t);
    if (rc == QB_NOTFOUND) return qs__reply_no_index(r, missing);
    return qs__reply_err(r, &err);
  }
  vctx *c = ctx_open(r, CTX_PIT, &t, keep);
  qc_shards_fini(&t);
  if (!c) return;
  qs__reply_json(r, 200, json_pack("{s:s}", "id", c->id));
  release(table(r->srv), c);
}

/* DELETE /_pit {"id": ...} */
void qs__h_pit_close(qs_req *r) {
  json_t *b;
  if (coord_refused(r, "point in time") || !qs__body_object(r, &b)) return;
  const char *id = json_string_value(json_object_get(b, "id"));
  if (!id || json_object_size(b) != 1) {
    json_decref(b);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: the body must be {\"id\": \"<point in time id>\"};");
  }
  size_t freed = ctx_close(r->srv, CTX_PIT, id);
  json_decref(b);
  qs__reply_json(r, freed ? 200 : 404, json_pack("{s:b, s:I}", "succeeded", freed ? 1 : 0,
                                                 "num_freed", (json_int_t)freed));
}
