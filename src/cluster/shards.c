/* shards.c: shard sources. Resolves an index expression into the shards a request targets
** (each local, in this node's catalog, or on a remote data node: a coordinator reads the
** shard map of the index metadata) and runs one parsed request on them, one partial per
** shard. Local shards run one after the other on the caller's request (its scripts are per
** request); remote shards get the request's body and UDF pins, all at once (fanout.c), and
** answer with their partial (qc_node_serve_shard, the data node's half).
** Invariant: qc_node_search sets every PARTS[i], a failure partial when shard i failed
** (Elasticsearch's policy, cluster.h), or sets none and fails with QB_NOMEM. */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SHARDS_MAX 1024

void qc_shards_init(qc_shards *s) { memset(s, 0, sizeof *s); }

/* Each thread keeps the array of its last shard list for the next one: a shard is ~1.3 KB, so
** the array is a large allocation, which costs malloc a consolidation of its fast bins on
** every search (5% of a coordinator's CPU in the profile). Freed when the thread ends. */
#define SPARE_CAP 64
typedef struct spare {
  qc_shard *s;
  size_t cap;
} spare;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static pthread_key_t spare_key;
static void spare_free(void *p) {
  spare *sp = p;
  qb_free(sp->s, sp->cap * sizeof *sp->s);
  qb_free(sp, sizeof *sp);
}
static void spare_init(void) { pthread_key_create(&spare_key, spare_free); }

void qc_shards_fini(qc_shards *s) {
  for (size_t i = 0; i < s->n; i++) qi_index_release(s->s[i].local);
  pthread_once(&spare_once, spare_init);
  spare *sp = pthread_getspecific(spare_key);
  if (s->s && !sp && s->cap <= SPARE_CAP && (sp = qb_calloc(1, sizeof *sp)))
    pthread_setspecific(spare_key, sp);
  if (s->s && sp && !sp->s && s->cap <= SPARE_CAP) {
    sp->s = s->s;
    sp->cap = s->cap;
  } else {
    qb_free(s->s, s->cap * sizeof *s->s);
  }
  memset(s, 0, sizeof *s);
}

/* Copy SRC into DST (CAP bytes), cut to fit. */
static void copy(char *dst, size_t cap, const char *src) {
  size_t n = src ? strnlen(src, cap - 1) : 0;
  memcpy(dst, src ? src : "", n);
  dst[n] = 0;
}

/* Append a shard (taking LOCAL's reference, released on failure too). */
static qb_code add(qc_shards *s, const char *index, uint32_t shard_id, const char *node,
                   const char *url, qi_index *local, qb_err *err) {
  for (size_t i = 0; i < s->n; i++)
    if (s->s[i].shard_id == shard_id && !strcmp(s->s[i].index, index)) {
      qi_index_release(local);
      return QB_OK;
    }
  if (s->n == SHARDS_MAX) {
    qi_index_release(local);
    return qb_fail(err, QB_LIMIT, "a search may target at most %d shards", SHARDS_MAX);
  }
  if (!s->cap) {
    pthread_once(&spare_once, spare_init);
    spare *sp = pthread_getspecific(spare_key);
    if (sp && sp->s) {
      s->s = sp->s;
      s->cap = sp->cap;
      sp->s = NULL;
    }
  }
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    qc_shard *ns = qb_realloc(s->s, s->cap * sizeof *ns, nc * sizeof *ns);
    if (!ns) {
      qi_index_release(local);
      return qb_fail(err, QB_NOMEM, "out of memory");
    }
    s->s = ns;
    s->cap = nc;
  }
  qc_shard *x = &s->s[s->n++];
  copy(x->index, sizeof x->index, index);
  x->shard_id = shard_id;
  copy(x->node, sizeof x->node, node);
  copy(x->url, sizeof x->url, url);
  x->local = local;
  x->nalt = 0;
  return QB_OK;
}

void qc_shard_local_name(const char *index, uint32_t shard, char out[256]) {
  snprintf(out, 256, "%.240s~%u", index, shard);
}

/* Every shard of the index META names: its in-sync copies on live nodes, the first chosen
** round-robin (so searches spread over the copies), the others kept as alternates to retry
** on; a shard with no such copy has no url (its failure names the primary's node). */
static qb_code add_meta(qc_node *n, const char *name, json_t *meta, qc_shards *out, qb_err *err) {
  static unsigned rr;
  int both = (n->role & QC_COORD) && (n->role & QC_DATA);
  size_t i;
  json_t *sh;
  json_array_foreach(json_object_get(meta, "shards"), i, sh) {
    uint32_t id = (uint32_t)json_integer_value(json_object_get(sh, "shard"));
    const char *pri = qc__sm_primary(sh);
    const char *node[1 + QC_ALT_MAX];
    char url[1 + QC_ALT_MAX][128];
    size_t k, nc = 0;
    json_t *c;
    json_array_foreach(json_object_get(sh, "copies"), k, c) {
      const char *nn = json_string_value(json_object_get(c, "node"));
      if (nc == 1 + QC_ALT_MAX || !nn || !*nn || !qc__sm_in_sync(sh, nn)) continue;
      if (!qc__member_url(n, nn, url[nc])) continue;
      node[nc++] = nn;
    }
    if (!nc) {
      qb_code rc = add(out, name, id, pri ? pri : "", "", NULL, err);
      if (rc) return rc;
      continue;
    }
    size_t first = nc, before = out->n;
    qi_index *local = NULL;
    for (size_t a = 0; both && a < nc; a++) /* this node holds a copy: search it in-process */
      if (!strcmp(node[a], n->name)) {
        char ln[256];
        qc_shard_local_name(name, id, ln);
        if (!qi_catalog_get(n->cat, ln, &local, NULL)) first = a;
        break;
      }
    if (first == nc) first = __atomic_fetch_add(&rr, 1, __ATOMIC_RELAXED) % nc;
    qb_code rc = add(out, name, id, node[first], url[first], local, err);
    if (rc) return rc;
    if (out->n == before) continue; /* a duplicate */
    qc_shard *x = &out->s[out->n - 1];
    for (size_t a = 1; a < nc; a++) {
      size_t j = (first + a) % nc;
      copy(x->alt_node[x->nalt], sizeof x->alt_node[0], node[j]);
      copy(x->alt_url[x->nalt], sizeof x->alt_url[0], url[j]);
      x->nalt++;
    }
  }
  return QB_OK;
}

static qb_code resolve_cluster(qc_node *n, const char *expr, int ignore, qc_shards *out,
                               char missing[256], qb_err *err) {
  char buf[4096];
  qb_code rc = QB_OK;
  snprintf(buf, sizeof buf, "%s", expr ? expr : "_all");
  json_t *all = NULL;
  for (char *save = NULL, *part = strtok_r(buf, ",", &save); part && !rc;
       part = strtok_r(NULL, ",", &save)) {
    if (!strcmp(part, "_all") || strchr(part, '*')) {
      const char *pat = strcmp(part, "_all") ? part : "*";
      if (!all && !(all = qc__indexes_view(n))) return qb_fail(err, QB_NOMEM, "out of memory");
      /* in name order, as the embedded default's catalog gives them */
      size_t cnt = json_object_size(all), m = 0;
      const char **names = qb_calloc(cnt ? cnt : 1, sizeof *names);
      if (!names) rc = qb_fail(err, QB_NOMEM, "out of memory");
      const char *k;
      json_t *v;
      json_object_foreach(all, k, v) if (names && !fnmatch(pat, k, 0)) names[m++] = k;
      for (size_t i = 1; i < m; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
          const char *t = names[j];
          names[j] = names[j - 1];
          names[j - 1] = t;
        }
      for (size_t i = 0; i < m && !rc; i++)
        rc = add_meta(n, names[i], json_object_get(all, names[i]), out, err);
      qb_free(names, (cnt ? cnt : 1) * sizeof *names);
      continue;
    }
    json_t *meta = qc__index_meta_view(n, part); /* read only, no copy (meta.c) */
    if (!meta) {
      if (ignore) continue;
      if (missing) snprintf(missing, 256, "%s", part);
      rc = qb_fail(err, QB_NOTFOUND, "no such index [%s]", part);
      break;
    }
    rc = add_meta(n, part, meta, out, err);
    json_decref(meta);
  }
  json_decref(all);
  return rc;
}

qb_code qc_node_resolve(qc_node *n, const char *expr, int ignore_unavailable, qc_shards *out,
                        char missing[256], qb_err *err) {
  if (qc_node_routes(n)) return resolve_cluster(n, expr, ignore_unavailable, out, missing, err);
  char buf[4096];
  qb_code rc;
  snprintf(buf, sizeof buf, "%s", expr ? expr : "_all");
  for (char *save = NULL, *part = strtok_r(buf, ",", &save); part;
       part = strtok_r(NULL, ",", &save)) {
    if (!strcmp(part, "_all") || strchr(part, '*')) {
      const char *pat = strcmp(part, "_all") ? part : "*";
      for (size_t i = 0, cnt = qi_catalog_count(n->cat); i < cnt; i++) {
        char name[256];
        qi_index *ix;
        if (qi_catalog_name(n->cat, i, name, NULL) || fnmatch(pat, name, 0)) continue;
        if (qi_catalog_get(n->cat, name, &ix, NULL)) continue;
        if ((rc = add(out, name, 0, n->name, NULL, ix, err))) return rc;
      }
      continue;
    }
    qi_index *ix;
    rc = qi_catalog_get(n->cat, part, &ix, err);
    if (rc == QB_NOTFOUND && ignore_unavailable) continue;
    if (rc == QB_NOTFOUND && missing) snprintf(missing, 256, "%s", part);
    if (rc) return rc;
    if ((rc = add(out, part, 0, n->name, NULL, ix, err))) return rc;
  }
  return QB_OK;
}

/* Shard SH failed on NODE with E: its failure partial, naming the node. */
static qb_code failed(const qc_shard *sh, const char *node, const qb_err *e, qq_partial **out,
                      qb_err *err) {
  qq_partial *p;
  json_t *j;
  qb_code rc = qq_partial_failed(sh->index, sh->shard_id, e, &p, err);
  if (rc || !node || !*node) {
    *out = rc ? NULL : p;
    return rc;
  }
  j = qq_partial_to_json_take(p);
  json_object_set_new(j, "node", json_string(node));
  if ((rc = qq_partial_from_json_take(j, &p, err))) return rc;
  *out = p;
  return rc;
}

int qc__shard_remote(const qc_shard *x, const qc_pins *pins) {
  if (!x->url[0]) return 0;
  /* a local copy runs in-process on the coordinator's request, unless the search pins UDFs:
  ** the coordinator's request does not hold them runnable, so it goes to this node's own
  ** data-node half over HTTP */
  return !x->local || (pins && pins->n);
}

json_t *qc__call_json(const qc_call *c, qb_err *err) {
  json_t *j = NULL;
  const char *d = c->resp.data ? c->resp.data : "";
  if (qc_wire_is(d, c->resp.len)) {
    if (qc_wire_decode(d, c->resp.len, &j, err)) return NULL;
    return j;
  }
  json_error_t je;
  if (!(j = json_loadb(d, c->resp.len, 0, &je)))
    qb_fail(err, QB_CORRUPT, "shard result: not JSON: %s", je.text);
  return j;
}

/* The answer of a remote shard: its partial, or a failure partial with the reason. */
static qb_code remote_result(const qc_shard *x, qc_call *c, qq_partial **out, qb_err *err) {
  qb_err e;
  qb_err_clear(&e);
  if (!c->status) {
    qb_fail(&e, QB_UNAVAILABLE, "node [%s] at %s did not answer: %s", x->node, x->url, c->error);
    return failed(x, x->node, &e, out, err);
  }
  qb_err de;
  json_t *j = qc__call_json(c, &de);
  if (c->status == 200 && j) { /* the read answer becomes the partial, uncopied */
    if (!qq_partial_from_json_take(j, out, &e)) return QB_OK;
    j = NULL;
  }
  if (c->status != 200) {
    const char *reason = json_string_value(json_object_get(json_object_get(j, "error"), "reason"));
    qb_fail(&e, c->status >= 500 ? QB_UNAVAILABLE : QB_INVAL, "node [%s]: HTTP %d: %s", x->node,
            c->status, reason ? reason : "no reason given");
  } else if (!j && de.code == QB_NOMEM) {
    json_decref(j);
    return qb_fail(err, QB_NOMEM, "%s", de.msg);
  } else if (!j) {
    qb_fail(&e, QB_CORRUPT, "node [%s]: %s", x->node, de.msg);
  } else if (!e.msg[0]) {
    qb_fail(&e, QB_CORRUPT, "node [%s]: the shard's answer is not a partial result", x->node);
  }
  json_decref(j);
  return failed(x, x->node, &e, out, err);
}

/* 1 when call C of a shard request failed (no answer, a 5xx, or a failure partial). */
static int call_failed(const qc_call *c) {
  if (c->status != 200) return 1;
  if (!c->resp.data || !memmem(c->resp.data, c->resp.len, "failure", 7)) return 0;
  qb_err e;
  json_t *j = qc__call_json(c, &e);
  int f = !j || json_object_get(j, "failure") != NULL;
  json_decref(j);
  return f;
}

/* When shard X's call C failed, send it again to X's other copies in turn; C (and X's node
** and url, for the failure's message) end as the first copy that answered, or the last one. */
static void retry_copies(qc_shard *x, qc_call *c, uint32_t timeout_ms) {
  for (size_t a = 0; a < x->nalt && call_failed(c); a++) {
    qc_call again = *c;
    qb_buf_init(&again.resp);
    snprintf(again.url, sizeof again.url, "%s/_internal/search", x->alt_url[a]);
    if (qc_fanout(&again, 1, timeout_ms, NULL)) break;
    qb_log(QB_DEBUG, "shard [%s][%u]: copy on [%s] failed, retried on [%s]: %d", x->index,
           x->shard_id, x->node, x->alt_node[a], again.status);
    qc_call_fini(c);
    *c = again;
    snprintf(x->node, sizeof x->node, "%s", x->alt_node[a]);
    snprintf(x->url, sizeof x->url, "%s", x->alt_url[a]);
  }
}

qb_code qc_node_search(qc_node *n, qq_request *req, const char *body, size_t len, int for_count,
                       const qc_pins *pins, const qc_shards *sh, qq_partial **parts,
                       qb_err *err) {
  return qc_node_search_dfs(n, req, body, len, for_count, pins, NULL, sh, parts, err);
}

qb_code qc__shard_calls(const qc_shards *sh, const char *body, size_t len, int for_count,
                        int raw, const qc_pins *pins, const json_t *dfs, qc_call *calls,
                        char **texts, qb_err *err) {
  /* what every shard gets is written once; each request is its index and shard, then that.
  ** "wire": the answer comes back in the binary form (wire.c) */
  json_t *pj = qc_pins_to_json(pins ? pins : &(qc_pins){0});
  json_t *q = pj ? json_pack("{s:b, s:s%, s:O, s:i}", "count", for_count, "body",
                             body ? body : "", len, "pins", pj, "wire", QC_WIRE_VERSION)
                 : NULL;
  if (q && dfs) json_object_set(q, "dfs", (json_t *)dfs);
  if (q && raw) json_object_set_new(q, "raw", json_true());
  char *rest = q ? json_dumps(q, JSON_COMPACT) : NULL;
  json_decref(q);
  json_decref(pj);
  if (!rest) return qb_fail(err, QB_NOMEM, "out of memory");
  size_t rlen = strlen(rest), r = 0;
  json_malloc_t jm;
  json_get_alloc_funcs(&jm, NULL);
  qb_code rc = QB_OK;
  for (size_t i = 0; i < sh->n && !rc; i++) {
    const qc_shard *x = &sh->s[i];
    if (!qc__shard_remote(x, pins)) continue;
    json_t *ij = json_string(x->index);
    char *iq = ij ? json_dumps(ij, JSON_ENCODE_ANY) : NULL;
    json_decref(ij);
    size_t cap = (iq ? strlen(iq) : 0) + rlen + 40;
    if (!iq || !(texts[r] = jm(cap))) {
      qc__json_free(iq);
      rc = qb_fail(err, QB_NOMEM, "out of memory");
      break;
    }
    int w = snprintf(texts[r], cap, "{\"index\":%s,\"shard\":%u,%s", iq, x->shard_id, rest + 1);
    qc__json_free(iq);
    calls[r].method = "POST";
    snprintf(calls[r].url, sizeof calls[r].url, "%s/_internal/search", x->url);
    calls[r].body = texts[r];
    calls[r].len = (size_t)w;
    r++;
  }
  qc__json_free(rest);
  return rc;
}

/* ---- shard timeouts ---------------------------------------------------------------------------- */

/* An Elasticsearch time value ("500ms", "2s", "1m", a bare number of ms) in ms; -1 when it
** means none ("-1"), -2 when it does not read as one. */
static int64_t time_value_ms(const json_t *v) {
  if (json_is_integer(v)) return json_integer_value(v) < 0 ? -1 : json_integer_value(v);
  const char *t = json_string_value(v);
  if (!t) return -2;
  char *end;
  double x = strtod(t, &end);
  if (end == t) return -2;
  if (x < 0) return -1;
  static const struct { const char *unit; double ms; } units[] = {
      {"", 1}, {"nanos", 1e-6}, {"micros", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4},
      {"h", 3.6e6}, {"d", 8.64e7}};
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    if (!strcmp(end, units[i].unit)) {
      double ms = x * units[i].ms;
      return ms > 86400e3 ? 86400000 : (int64_t)ms;
    }
  return -2;
}

uint32_t qc_shard_timeout_ms(const char *body, size_t len) {
  if (!body || !len || !memmem(body, len, "\"timeout\"", 9)) return QC_SHARD_TIMEOUT_MS;
  json_t *j = json_loadb(body, len, 0, NULL);
  int64_t ms = time_value_ms(json_object_get(j, "timeout"));
  json_decref(j);
  if (ms < 0) return QC_SHARD_TIMEOUT_MS; /* none, or not a time (the parse refused it) */
  return (uint32_t)ms + QC_SHARD_GRACE_MS;
}

/* ---- the scatter ------------------------------------------------------------------------------- */

qb_code qc_node_search_dfs(qc_node *n, qq_request *req, const char *body, size_t len,
                           int for_count, const qc_pins *pins, const json_t *dfs,
                           const qc_shards *sh, qq_partial **parts, qb_err *err) {
  (void)n;
  qb_code rc = QB_OK;
  qq_term_stats ts;
  if (dfs) qc__dfs_apply(&ts, dfs);
  size_t i, nremote = 0;
  qc_call *calls = NULL;
  char **texts = NULL;
  qc__fan *fan = NULL;
  for (i = 0; i < sh->n; i++) {
    parts[i] = NULL;
    if (qc__shard_remote(&sh->s[i], pins)) nremote++;
  }
  uint32_t tmo = nremote ? qc_shard_timeout_ms(body, len) : 0;
  if (nremote) { /* sent first: the data nodes work while the local shards run here */
    calls = qb_calloc(nremote, sizeof *calls);
    texts = qb_calloc(nremote, sizeof *texts);
    if (!calls || !texts) {
      rc = qb_fail(err, QB_NOMEM, "out of memory");
      goto nomem;
    }
    if ((rc = qc__shard_calls(sh, body, len, for_count, qq_request_raw_source_on(req), pins,
                                dfs, calls, texts, err)) ||
        (rc = qc__fanout_start(calls, nremote, tmo, &fan, err)))
      goto nomem;
  }
  for (i = 0; i < sh->n; i++) {
    qc_shard *x = &sh->s[i];
    if (!x->local || qc__shard_remote(x, pins)) continue;
    qb_err e;
    qb_err_clear(&e);
    qi_snapshot *snap = qi_index_snapshot(x->local);
    if (dfs) qq_request_set_term_stats(req, &ts);
    rc = qq_shard_search(req, snap, x->index, x->shard_id, &parts[i], &e);
    qq_request_set_term_stats(req, NULL);
    qi_snapshot_release(snap);
    if (rc && (rc = failed(x, x->node, &e, &parts[i], err))) goto nomem;
  }
  qc__fanout_wait(fan);
  fan = NULL;
  size_t r = 0;
  for (i = 0; i < sh->n; i++) {
    qc_shard *x = &sh->s[i];
    qb_err e;
    qb_err_clear(&e);
    if (qc__shard_remote(x, pins)) {
      retry_copies(x, &calls[r], tmo);
      if ((rc = remote_result(x, &calls[r++], &parts[i], err))) goto nomem;
    } else if (!x->local) {
      qb_fail(&e, QB_UNAVAILABLE, "shard [%s][%u] has no live copy (its node [%s] is not in "
              "the cluster)", x->index, x->shard_id, x->node);
      if ((rc = failed(x, x->node, &e, &parts[i], err))) goto nomem;
    }
  }
  goto out;
nomem:
  qc__fanout_wait(fan);
  for (i = 0; i < sh->n; i++) {
    qq_partial_free(parts[i]);
    parts[i] = NULL;
  }
out:
  for (i = 0; i < nremote; i++) {
    if (calls) qc_call_fini(&calls[i]);
    if (texts && texts[i]) qc__json_free(texts[i]);
  }
  qb_free(calls, nremote * sizeof *calls);
  qb_free(texts, nremote * sizeof *texts);
  return rc;
}

/* ---- the data node's half -------------------------------------------------------------------- */

qb_code qc_node_serve_shard(qc_node *n, const char *req, size_t len, json_t **out, int *wire,
                            qb_err *err) {
  *out = NULL;
  if (wire) *wire = 0;
  json_error_t je;
  json_t *q = json_loadb(req, len, 0, &je);
  const char *index = json_string_value(json_object_get(q, "index"));
  json_t *shj = json_object_get(q, "shard");
  const char *body = json_string_value(json_object_get(q, "body"));
  size_t blen = json_string_length(json_object_get(q, "body"));
  int for_count = json_is_true(json_object_get(q, "count"));
  json_t *dfs = json_object_get(q, "dfs"); /* "collect" (phase one) or the global statistics */
  json_t *collected = json_is_string(dfs) ? json_object() : NULL;
  qq_term_stats ts;
  if (collected) qc__dfs_collector(&ts, collected);
  else if (json_is_object(dfs)) qc__dfs_apply(&ts, dfs);
  qc_pins pins;
  qb_code rc;
  if (!index || !json_is_integer(shj) || json_integer_value(shj) < 0 || !body) {
    json_decref(q);
    return qb_fail(err, QB_INVAL, "shard request: needs index, shard and body");
  }
  if (wire) *wire = json_integer_value(json_object_get(q, "wire")) == QC_WIRE_VERSION;
  if ((rc = qc_pins_from_json(json_object_get(q, "pins"), &pins, err))) {
    json_decref(q);
    return rc;
  }
  qc_shard x = {0};
  snprintf(x.index, sizeof x.index, "%s", index);
  x.shard_id = (uint32_t)json_integer_value(shj);
  snprintf(x.node, sizeof x.node, "%s", n->name);
  char local[256];
  qc_shard_local_name(index, x.shard_id, local);
  qc_udf_provider prov;
  qc_udf_provider_init(&prov, n->reg, &pins);
  if (n->etcd) {
    prov.fetch = qc__udf_fetch;
    prov.ud = n;
  }
  qq_env env = {.scripts = &prov.base, .script_value_max = n->script_value_max,
                .script_response_max = n->script_response_max};
  qq_request *r = NULL;
  qq_partial *p = NULL;
  qi_index *ix = NULL;
  qb_err e;
  qb_err_clear(&e);
  rc = qi_catalog_get(n->cat, local, &ix, &e);
  if (rc == QB_NOTFOUND)
    qb_fail(&e, QB_UNAVAILABLE, "shard [%s][%u] is not on node [%s]", index, x.shard_id, n->name);
  if (!rc) rc = qq_request_parse(&env, body, blen, for_count, &r, &e);
  if (!rc && wire && *wire && json_is_true(json_object_get(q, "raw"))) {
    qq_request_raw_source(r); /* the coordinator copies the hits' _source as it is (wire.c) */
    *wire = 2;
  }
  if (!rc) {
    qi_snapshot *snap = qi_index_snapshot(ix);
    if (collected || json_is_object(dfs)) qq_request_set_term_stats(r, &ts);
    rc = qq_shard_search(r, snap, index, x.shard_id, &p, &e);
    qi_snapshot_release(snap);
  }
  if (collected && !rc) { /* phase one of dfs_query_then_fetch: the statistics only */
    *out = json_pack("{s:O}", "dfs", collected);
    if (!*out) rc = qb_fail(err, QB_NOMEM, "out of memory");
    goto out;
  }
  if (rc && (rc = failed(&x, n->name, &e, &p, err))) goto out;
  *out = qq_partial_to_json_take(p); /* handed over, not copied */
  p = NULL;
  if (!*out) rc = qb_fail(err, QB_NOMEM, "out of memory");
out:
  json_decref(collected);
  qq_partial_free(p);
  qq_request_free(r);
  qc_udf_provider_fini(&prov);
  qi_index_release(ix);
  json_decref(q);
  return rc;
}
