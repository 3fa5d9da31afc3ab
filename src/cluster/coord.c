/* coord.c: what a coordinator does with writes and index administration: index creation and
** deletion (the leader places shards; others forward to it), documents routed to their shard
** by murmur3, _bulk split per shard and sent in parallel with the items answered in request
** order, refresh on every shard, and per-shard counts for the _cat APIs. Searches are
** shards.c's. Invariant: a data node is always addressed by the local name of the shard
** ("index~N", qc_shard_local_name), and "_index" in what goes back to the client is the
** index's own name. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"

#define MAX_SHARDS 1024

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER; /* the leader's allocations */

/* This coordinator's own failure (cluster.h): 0 with *OUT = {"code", "reason"}, which the
** server answers through its one error table. */
static int fail(json_t **out, qb_code code, const char *fmt, ...) QB_PRINTF(3, 4);
static int fail(json_t **out, qb_code code, const char *fmt, ...) {
  char reason[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  *out = json_pack("{s:i, s:s}", "code", (int)code, "reason", reason);
  return 0;
}

/* The call's answer as JSON (or an error naming the node when it gave none). */
static int answer(qc_call *c, const char *node, json_t **out) {
  if (!c->status)
    return fail(out, QB_UNAVAILABLE, "node [%s] did not answer: %s", node,
                 c->error);
  json_error_t je;
  *out = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len, 0, &je);
  if (!*out && c->resp.len)
    return fail(out, QB_CORRUPT, "node [%s] answered HTTP %d without JSON", node,
                 c->status);
  if (!*out) *out = json_object();
  return c->status;
}

/* One call to URL (METHOD, BODY); the answer into *OUT. */
static int call1(const char *method, const char *url, const char *body, size_t len,
                 const char *ctype, const char *node, json_t **out) {
  qc_call c = {.method = method, .body = body, .len = len, .ctype = ctype};
  snprintf(c.url, sizeof c.url, "%s", url);
  qb_err err;
  if (qc_fanout(&c, 1, 0, &err)) return fail(out, QB_NOMEM, "%s", err.msg);
  int st = answer(&c, node, out);
  qc_call_fini(&c);
  return st;
}

/* Rename "_index" (when it is LOCAL's) to INDEX in J. */
static void fix_index(json_t *j, const char *index) {
  if (json_is_string(json_object_get(j, "_index")))
    json_object_set_new(j, "_index", json_string(index));
}

/* ---- index creation ---------------------------------------------------------------------- */

static int shard_count(json_t *settings, json_int_t *out) {
  json_t *v = json_object_get(settings, "number_of_shards");
  if (!v) v = json_object_get(json_object_get(settings, "index"), "number_of_shards");
  if (!v) {
    *out = 1;
    return 1;
  }
  if (json_is_string(v)) {
    char *end;
    *out = strtoll(json_string_value(v), &end, 10);
    if (*end) return 0;
  } else if (json_is_integer(v)) {
    *out = json_integer_value(v);
  } else {
    return 0;
  }
  return *out >= 1 && *out <= MAX_SHARDS;
}

/* Place NSH shards on the data nodes M[0..NM): distinct nodes first, then the least loaded
** (counting every index's shards), ties by name. NODE[i] gets shard i's node. */
static void place(qc_node *n, const qc_member *m, size_t nm, json_int_t nsh, const char **node) {
  size_t load[256] = {0}, mine[256] = {0};
  json_t *all = qc_node_indexes(n);
  const char *k;
  json_t *meta;
  json_object_foreach(all, k, meta) {
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(meta, "shards"), i, sh) {
      size_t c;
      json_t *cp;
      json_array_foreach(json_object_get(sh, "copies"), c, cp) {
        const char *nn = json_string_value(json_object_get(cp, "node"));
        for (size_t x = 0; nn && x < nm; x++)
          if (!strcmp(m[x].name, nn)) load[x]++;
      }
    }
  }
  json_decref(all);
  for (json_int_t s = 0; s < nsh; s++) {
    size_t best = 0;
    for (size_t x = 1; x < nm; x++)
      if (mine[x] < mine[best] || (mine[x] == mine[best] && load[x] < load[best])) best = x;
    node[s] = m[best].name;
    mine[best]++;
    load[best]++;
  }
}

/* Delete the shards 0..NSH) of NAME on the nodes NODE[] (best effort). */
static void drop_shards(qc_node *n, const char *name, json_int_t nsh, const char **node) {
  qc_call *c = qb_calloc((size_t)nsh, sizeof *c);
  if (!c) return;
  size_t k = 0;
  for (json_int_t s = 0; s < nsh; s++) {
    char url[128];
    if (!node[s] || !qc__member_url(n, node[s], url)) continue;
    c[k].method = "DELETE";
    snprintf(c[k].url, sizeof c[k].url, "%s/_internal/shard/%s/%lld", url, name, (long long)s);
    k++;
  }
  qc_fanout(c, k, 0, NULL);
  for (size_t i = 0; i < k; i++) qc_call_fini(&c[i]);
  qb_free(c, (size_t)nsh * sizeof *c);
}

static int create_on_leader(qc_node *n, const char *name, const char *body, size_t len,
                            json_t **out) {
  json_error_t je;
  json_t *b = len ? json_loadb(body, len, 0, &je) : json_object();
  if (!json_is_object(b)) {
    json_decref(b);
    return fail(out, QB_PARSE, "create index body: %s",
                 len ? je.text : "not an object");
  }
  json_int_t nsh;
  if (!shard_count(json_object_get(b, "settings"), &nsh)) {
    json_decref(b);
    return fail(out, QB_INVAL,
                 "Failed to parse value for setting [index.number_of_shards]: must be an "
                 "integer from 1 to %d", MAX_SHARDS);
  }
  qc_member m[256];
  size_t nm = 0, total = qc_node_members(n, m, 256);
  for (size_t i = 0; i < total && i < 256; i++)
    if (m[i].data) m[nm++] = m[i];
  if (!nm) {
    json_decref(b);
    return fail(out, QB_UNAVAILABLE,
                 "no live data node to place index [%s] on", name);
  }
  json_t *exists = qc_node_index_meta(n, name);
  if (exists) {
    json_decref(exists);
    json_decref(b);
    return fail(out, QB_CONFLICT, "index [%s] already exists", name);
  }
  const char **node = qb_calloc((size_t)nsh, sizeof *node);
  qc_call *c = qb_calloc((size_t)nsh, sizeof *c);
  int status = 200;
  if (!node || !c) {
    status = fail(out, QB_NOMEM, "out of memory");
    goto out;
  }
  place(n, m, nm, nsh, node);
  /* create every shard first: a mapping the data nodes refuse leaves nothing behind */
  for (json_int_t s = 0; s < nsh; s++) {
    char url[128] = "";
    qc__member_url(n, node[s], url);
    c[s].method = "PUT";
    snprintf(c[s].url, sizeof c[s].url, "%s/_internal/shard/%s/%lld", url, name, (long long)s);
    c[s].body = body;
    c[s].len = len;
  }
  qc_fanout(c, (size_t)nsh, 0, NULL);
  for (json_int_t s = 0; s < nsh; s++) {
    if (c[s].status == 200) continue;
    status = answer(&c[s], node[s], out);
    if (status == 200) status = 500;
    drop_shards(n, name, nsh, node);
    goto out;
  }
  json_t *shards = json_array(), *settings = json_deep_copy(json_object_get(b, "settings"));
  if (!settings) settings = json_object();
  json_object_set_new(settings, "number_of_shards", json_integer(nsh));
  for (json_int_t s = 0; s < nsh; s++)
    json_array_append_new(shards, json_pack("{s:I, s:i, s:[{s:s, s:b, s:s}]}", "shard",
                                            (json_int_t)s, "primary_term", 1, "copies", "node",
                                            node[s], "primary", 1, "state", "STARTED"));
  /* replicas (replicas.c): copies on other nodes, settings.number_of_replicas */
  if ((status = qc__replicas_place(n, name, body, len, settings, shards, m, nm, out)) != 200) {
    json_decref(shards);
    json_decref(settings);
    drop_shards(n, name, nsh, node);
    goto out;
  }
  json_t *mappings = json_object_get(b, "mappings");
  mappings = mappings ? json_incref(mappings) : json_object();
  json_t *meta = json_pack("{s:s, s:o, s:o, s:O, s:o, s:I}", "name", name, "settings", settings,
                           "mappings", mappings, "body", b, "shards", shards, "created_ms",
                           (json_int_t)qb_wall_ms());
  char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
  char key[512];
  snprintf(key, sizeof key, "%sindexes/%s", QC_PREFIX, name);
  qc_txn_cmp absent = {key, 0};
  qc_txn_op put = {.key = key, .value = text, .len = text ? strlen(text) : 0};
  qb_err err;
  qb_code rc = text ? qc_etcd_txn(n->etcd, &absent, 1, &put, 1, NULL, &err)
                    : qb_fail(&err, QB_NOMEM, "out of memory");
  qc__json_free(text);
  if (rc) {
    drop_shards(n, name, nsh, node);
    qc__replicas_drop(n, name, meta); /* replicas.c */
    json_decref(meta);
    status = rc == QB_CONFLICT ? fail(out, QB_CONFLICT,
                                       "index [%s] already exists", name)
                               : fail(out, QB_UNAVAILABLE, "%s", err.msg);
    goto out;
  }
  qc__index_cache_put(n, name, meta);
  json_decref(meta);
  qb_log(QB_INFO, "index created: %s (%lld shards on %zu data nodes)", name, (long long)nsh,
         nm < (size_t)nsh ? nm : (size_t)nsh);
  *out = json_pack("{s:b, s:b, s:s}", "acknowledged", 1, "shards_acknowledged", 1, "index", name);
out:
  if (c)
    for (json_int_t s = 0; s < nsh; s++) qc_call_fini(&c[s]);
  qb_free(c, (size_t)nsh * sizeof *c);
  qb_free(node, (size_t)nsh * sizeof *node);
  json_decref(b);
  return status;
}

/* Forward to the leader coordinator. */
static int to_leader(qc_node *n, const char *method, const char *path, const char *body,
                     size_t len, json_t **out) {
  qc_member l;
  qb_err err;
  if (qc_node_leader(n, &l, &err))
    return fail(out, QB_UNAVAILABLE, "%s", err.msg);
  if (!strcmp(l.name, n->name)) /* our own old lease (etcd was away): never forward to self */
    return fail(out, QB_UNAVAILABLE,
                 "this coordinator is re-establishing its leadership; retry");
  char url[600];
  snprintf(url, sizeof url, "%s%s", l.url, path);
  return call1(method, url, body, len, NULL, l.name, out);
}

int qc_index_create(qc_node *n, const char *name, const char *body, size_t len, json_t **out) {
  if (strchr(name, '~'))
    return fail(out, QB_INVAL,
                 "Invalid index name [%s], must not contain '~' in a cluster", name);
  if (!qc_node_is_leader(n)) {
    char path[300];
    snprintf(path, sizeof path, "/%s", name);
    return to_leader(n, "PUT", path, body, len, out);
  }
  pthread_mutex_lock(&create_mu);
  int st = create_on_leader(n, name, body, len, out);
  pthread_mutex_unlock(&create_mu);
  return st;
}

int qc_index_delete(qc_node *n, const char *name, json_t **out) {
  json_t *meta = qc_node_index_meta(n, name);
  if (!meta)
    return fail(out, QB_NOTFOUND, "no such index [%s]", name);
  char key[512];
  snprintf(key, sizeof key, "%sindexes/%s", QC_PREFIX, name);
  qb_err err;
  if (qc_etcd_delete(n->etcd, key, 0, NULL, &err)) {
    json_decref(meta);
    return fail(out, QB_UNAVAILABLE, "%s", err.msg);
  }
  qc__index_cache_put(n, name, NULL);
  json_t *shards = json_object_get(meta, "shards");
  size_t nsh = json_array_size(shards);
  const char **node = qb_calloc(nsh ? nsh : 1, sizeof *node);
  for (size_t i = 0; node && i < nsh; i++) {
    json_t *cp = json_array_get(json_object_get(json_array_get(shards, i), "copies"), 0);
    node[i] = json_string_value(json_object_get(cp, "node"));
  }
  if (node) drop_shards(n, name, (json_int_t)nsh, node);
  qc__replicas_drop(n, name, meta); /* replicas.c */
  qb_free(node, (nsh ? nsh : 1) * sizeof *node);
  json_decref(meta);
  qb_log(QB_INFO, "index deleted: %s", name);
  *out = json_pack("{s:b}", "acknowledged", 1);
  return 200;
}

/* ---- documents ----------------------------------------------------------------------------- */

/* The node URL of shard SHARD of META into URL (and its node name); 0 when unassigned. */
static int shard_url(qc_node *n, json_t *meta, uint32_t shard, char url[128], const char **node) {
  json_t *sh = json_array_get(json_object_get(meta, "shards"), shard);
  json_t *cp = json_array_get(json_object_get(sh, "copies"), 0);
  *node = json_string_value(json_object_get(cp, "node"));
  if (!*node) *node = "?";
  return json_object_get(cp, "node") && qc__member_url(n, *node, url);
}

static uint32_t nshards(json_t *meta) {
  size_t k = json_array_size(json_object_get(meta, "shards"));
  return k ? (uint32_t)k : 1;
}

/* A new document id: 20 URL-safe base64 characters of random bytes, as Elasticsearch's are. */
static void new_id(char out[21]) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint8_t r[20];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
    for (int i = 0; i < 20; i++) r[i] = (uint8_t)(qb_now_ns() >> (i % 8));
  for (int i = 0; i < 20; i++) out[i] = a[r[i] & 63];
  out[20] = 0;
}

/* META of INDEX, creating the index (dynamic mappings, one shard) when AUTOCREATE. */
static json_t *index_meta(qc_node *n, const char *index, int autocreate) {
  json_t *meta = qc_node_index_meta(n, index);
  if (meta || !autocreate) return meta;
  json_t *res = NULL;
  int st = qc_index_create(n, index, NULL, 0, &res);
  json_decref(res);
  if (st == 200) qb_log(QB_INFO, "index created: %s (dynamic mappings)", index);
  return qc_node_index_meta(n, index);
}

int qc_doc_route(qc_node *n, const char *method, const char *index, const char *path_op,
                 const char *id, const char *routing, const char *query, const char *body,
                 size_t len, json_t **out) {
  int write = strcmp(method, "GET") && strcmp(method, "HEAD");
  json_t *meta = index_meta(n, index, write && strcmp(method, "DELETE"));
  if (!meta) return fail(out, QB_NOTFOUND, "no such index [%s]", index);
  char gen[21];
  if (!id) {
    new_id(gen);
    id = gen;
  }
  const char *r = routing ? routing : id;
  uint32_t shard = qc_route_shard(r, strlen(r), nshards(meta));
  char url[128], local[256], full[1400];
  const char *node;
  int ok = shard_url(n, meta, shard, url, &node);
  char nodebuf[64]; /* NODE points into META */
  snprintf(nodebuf, sizeof nodebuf, "%s", node);
  node = nodebuf;
  json_decref(meta);
  if (!ok)
    return fail(out, QB_UNAVAILABLE,
                 "[%s][%u] primary shard is not active (node [%s] is not in the cluster)", index,
                 shard, node);
  qc_shard_local_name(index, shard, local);
  char eid[600];
  size_t o = 0;
  for (const char *p = id; *p && o + 4 < sizeof eid; p++) { /* percent-encode the id */
    unsigned char ch = (unsigned char)*p;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '_' || ch == '.' || ch == '~')
      eid[o++] = (char)ch;
    else
      o += (size_t)snprintf(eid + o, sizeof eid - o, "%%%02X", ch);
  }
  eid[o] = 0;
  snprintf(full, sizeof full, "%s/%s/%s/%s%s%s", url, local, path_op, eid, query ? "?" : "",
           query ? query : "");
  if (!strcmp(method, "POST") && !strcmp(path_op, "_doc")) method = "PUT";
  int st = call1(method, full, body, len, NULL, node, out);
  fix_index(*out, index);
  return st;
}

/* ---- _bulk ------------------------------------------------------------------------------------ */

typedef struct bitem {
  size_t part;     /* which per-shard request */
  size_t pos;      /* its position there */
  json_t *error;   /* set when the coordinator already failed it */
  char action[8];
} bitem;

typedef struct bpart {
  char index[256];
  uint32_t shard;
  char url[128];
  const char *node;
  qb_buf body;
  size_t n;
} bpart;

int qc_bulk(qc_node *n, const char *index, const char *query, const char *body, size_t len,
            json_t **out) {
  uint64_t t0 = qb_now_ns();
  bitem *items = NULL;
  bpart *parts = NULL;
  size_t nitems = 0, capitems = 0, nparts = 0, capparts = 0;
  json_t *metas = json_object(); /* index -> meta (or null: missing) */
  int status = 200;
  const char *p = body, *end = body + len;
  size_t line = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
    line++;
    size_t hl = (size_t)(le - p);
    while (hl && (p[hl - 1] == '\r' || p[hl - 1] == ' ')) hl--;
    if (!hl) {
      p = nl ? nl + 1 : end;
      continue;
    }
    json_error_t je;
    json_t *act = json_loadb(p, hl, 0, &je);
    const char *kind = NULL;
    json_t *am = NULL;
    if (json_is_object(act) && json_object_size(act) == 1) {
      kind = json_object_iter_key(json_object_iter(act));
      am = json_object_iter_value(json_object_iter(act));
    }
    if (!kind || !json_is_object(am) ||
        (strcmp(kind, "index") && strcmp(kind, "create") && strcmp(kind, "update") &&
         strcmp(kind, "delete"))) {
      json_decref(act);
      status = fail(out, QB_INVAL,
                     "Malformed action/metadata line [%zu], expected one of [index, create, "
                     "update, delete]", line);
      goto done;
    }
    p = nl ? nl + 1 : end;
    const char *src = NULL;
    size_t slen = 0;
    if (strcmp(kind, "delete")) {
      const char *nl2 = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
      src = p;
      slen = p < end ? (size_t)((nl2 ? nl2 : end) - p) : 0;
      p = nl2 ? nl2 + 1 : end;
      line++;
    }
    if (nitems == capitems) {
      size_t nc = capitems ? capitems * 2 : 64;
      bitem *ni = qb_realloc(items, capitems * sizeof *ni, nc * sizeof *ni);
      if (!ni) {
        json_decref(act);
        status = fail(out, QB_NOMEM, "out of memory");
        goto done;
      }
      items = ni;
      capitems = nc;
    }
    bitem *it = &items[nitems++];
    memset(it, 0, sizeof *it);
    snprintf(it->action, sizeof it->action, "%s", kind);
    const char *ix = json_string_value(json_object_get(am, "_index"));
    if (!ix) ix = index;
    const char *id = json_string_value(json_object_get(am, "_id"));
    const char *routing = json_string_value(json_object_get(am, "routing"));
    if (!routing) routing = json_string_value(json_object_get(am, "_routing"));
    char gen[21];
    if (!ix) {
      it->error = json_pack("{s:s, s:s}", "type", "action_request_validation_exception",
                            "reason", "Validation Failed: 1: index is missing;");
      json_decref(act);
      continue;
    }
    if (!id && (!strcmp(kind, "index") || !strcmp(kind, "create"))) {
      new_id(gen);
      id = gen;
      json_object_set_new(am, "_id", json_string(id));
    }
    json_t *meta = json_object_get(metas, ix);
    if (!meta) {
      meta = index_meta(n, ix, strcmp(kind, "delete") != 0);
      json_object_set_new(metas, ix, meta ? meta : json_null());
    }
    if (!json_is_object(meta)) {
      it->error = json_pack("{s:s, s:s, s:s}", "type", "index_not_found_exception", "reason",
                            "no such index", "index", ix);
      json_decref(act);
      continue;
    }
    const char *r = routing ? routing : id ? id : "";
    uint32_t shard = qc_route_shard(r, strlen(r), nshards(meta));
    size_t k;
    for (k = 0; k < nparts; k++)
      if (parts[k].shard == shard && !strcmp(parts[k].index, ix)) break;
    if (k == nparts) {
      if (nparts == capparts) {
        size_t nc = capparts ? capparts * 2 : 16;
        bpart *np = qb_realloc(parts, capparts * sizeof *np, nc * sizeof *np);
        if (!np) {
          json_decref(act);
          status = fail(out, QB_NOMEM, "out of memory");
          goto done;
        }
        parts = np;
        capparts = nc;
      }
      bpart *bp = &parts[nparts++];
      memset(bp, 0, sizeof *bp);
      snprintf(bp->index, sizeof bp->index, "%s", ix);
      bp->shard = shard;
      qb_buf_init(&bp->body);
      if (!shard_url(n, meta, shard, bp->url, &bp->node)) bp->url[0] = 0;
    }
    bpart *bp = &parts[k];
    if (!bp->url[0]) {
      it->error = json_pack("{s:s, s:s, s:s}", "type", "unavailable_shards_exception", "reason",
                            "primary shard is not active", "index", ix);
      json_decref(act);
      continue;
    }
    json_object_del(am, "_index");
    char *a = json_dumps(act, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(act);
    if (!a || qb_buf_puts(&bp->body, a) || qb_buf_puts(&bp->body, "\n") ||
        (src && (qb_buf_append(&bp->body, src, slen) || qb_buf_puts(&bp->body, "\n")))) {
      qc__json_free(a);
      status = fail(out, QB_NOMEM, "out of memory");
      goto done;
    }
    qc__json_free(a);
    it->part = k;
    it->pos = bp->n++;
  }
  /* send every shard's part at once */
  qc_call *calls = qb_calloc(nparts ? nparts : 1, sizeof *calls);
  json_t **answers = qb_calloc(nparts ? nparts : 1, sizeof *answers);
  if (!calls || !answers) {
    qb_free(calls, (nparts ? nparts : 1) * sizeof *calls);
    qb_free(answers, (nparts ? nparts : 1) * sizeof *answers);
    status = fail(out, QB_NOMEM, "out of memory");
    goto done;
  }
  size_t ncalls = 0;
  for (size_t k = 0; k < nparts; k++) {
    if (!parts[k].n) continue;
    char local[256];
    qc_shard_local_name(parts[k].index, parts[k].shard, local);
    calls[k].method = "POST";
    snprintf(calls[k].url, sizeof calls[k].url, "%s/%s/_bulk%s%s", parts[k].url, local,
             query ? "?" : "", query ? query : "");
    calls[k].body = parts[k].body.data;
    calls[k].len = parts[k].body.len;
    calls[k].ctype = "application/x-ndjson";
    ncalls++;
  }
  /* the calls with no body are not sent: compact them to the front, then put them back */
  qc_call *send = qb_calloc(ncalls ? ncalls : 1, sizeof *send);
  size_t *which = qb_calloc(ncalls ? ncalls : 1, sizeof *which);
  size_t s = 0;
  for (size_t k = 0; send && which && k < nparts; k++)
    if (calls[k].method) {
      send[s] = calls[k];
      which[s++] = k;
    }
  if (send && which) qc_fanout(send, s, 0, NULL);
  for (size_t i = 0; send && which && i < s; i++) {
    answer(&send[i], parts[which[i]].node, &answers[which[i]]);
    qc_call_fini(&send[i]);
  }
  qb_free(send, (ncalls ? ncalls : 1) * sizeof *send);
  qb_free(which, (ncalls ? ncalls : 1) * sizeof *which);
  int errors = 0;
  json_t *res_items = json_array();
  for (size_t i = 0; i < nitems; i++) {
    bitem *it = &items[i];
    json_t *r;
    if (it->error) {
      json_t *e = it->error;
      int st = !strcmp(json_string_value(json_object_get(e, "type")), "index_not_found_exception")
                   ? 404
                   : !strcmp(json_string_value(json_object_get(e, "type")),
                             "unavailable_shards_exception")
                         ? 503
                         : 400;
      r = json_pack("{s:{s:i, s:o}}", it->action, "status", st, "error", e);
      it->error = NULL;
      errors = 1;
    } else {
      json_t *a = answers[it->part];
      json_t *one = json_array_get(json_object_get(a, "items"), it->pos);
      if (one) {
        r = json_deep_copy(one);
        json_t *inner = json_object_iter_value(json_object_iter(r));
        fix_index(inner, parts[it->part].index);
        if (json_object_get(inner, "error")) errors = 1;
      } else {
        const char *reason =
            json_string_value(json_object_get(json_object_get(a, "error"), "reason"));
        if (!reason) reason = json_string_value(json_object_get(a, "reason"));
        r = json_pack("{s:{s:s, s:i, s:{s:s, s:s}}}", it->action, "_index",
                      parts[it->part].index, "status", 503, "error", "type",
                      "node_not_connected_exception", "reason",
                      reason ? reason : "the shard's node gave no answer for this item");
        errors = 1;
      }
    }
    json_array_append_new(res_items, r);
  }
  for (size_t k = 0; k < nparts; k++) json_decref(answers[k]);
  qb_free(calls, (nparts ? nparts : 1) * sizeof *calls);
  qb_free(answers, (nparts ? nparts : 1) * sizeof *answers);
  *out = json_pack("{s:I, s:b, s:o}", "took", (json_int_t)((qb_now_ns() - t0) / 1000000u),
                   "errors", errors, "items", res_items);
done:
  for (size_t i = 0; i < nitems; i++) json_decref(items[i].error);
  for (size_t k = 0; k < nparts; k++) qb_buf_fini(&parts[k].body);
  qb_free(items, capitems * sizeof *items);
  qb_free(parts, capparts * sizeof *parts);
  json_decref(metas);
  return status;
}

/* ---- refresh, index get, counts ---------------------------------------------------------- */

int qc_refresh(qc_node *n, const char *expr, json_t **out) {
  qc_shards sh;
  qc_shards_init(&sh);
  char missing[256] = "";
  qb_err err;
  qb_code rc = qc_node_resolve(n, expr, 0, &sh, missing, &err);
  if (rc) {
    qc_shards_fini(&sh);
    return rc == QB_NOTFOUND ? fail(out, QB_NOTFOUND, "no such index [%s]",
                                     missing)
                             : fail(out, QB_INVAL, "%s", err.msg);
  }
  qc_call *c = qb_calloc(sh.n ? sh.n * (1 + QC_ALT_MAX) : 1, sizeof *c);
  size_t k = 0, ok = 0;
  for (size_t i = 0; c && i < sh.n; i++) {
    if (!sh.s[i].url[0]) continue;
    char local[256];
    qc_shard_local_name(sh.s[i].index, sh.s[i].shard_id, local);
    c[k].method = "POST";
    snprintf(c[k].url, sizeof c[k].url, "%s/%s/_refresh", sh.s[i].url, local);
    k++;
  }
  size_t k0 = k;
  k += qc__refresh_copies(&sh, c ? c + k : NULL, sh.n * QC_ALT_MAX); /* replicas.c */
  if (c) qc_fanout(c, k, 0, NULL);
  for (size_t i = 0; c && i < k; i++) {
    if (c[i].status == 200) ok++;
    qc_call_fini(&c[i]);
  }
  qb_free(c, (sh.n ? sh.n * (1 + QC_ALT_MAX) : 1) * sizeof *c);
  size_t total = sh.n + (k - k0);
  qc_shards_fini(&sh);
  *out = json_pack("{s:{s:I, s:I, s:I}}", "_shards", "total", (json_int_t)total, "successful",
                   (json_int_t)ok, "failed", (json_int_t)(total - ok));
  return 200;
}

int qc_index_get(qc_node *n, const char *name, const char *suffix, json_t **out) {
  json_t *meta = qc_node_index_meta(n, name);
  if (!meta) return fail(out, QB_NOTFOUND, "no such index [%s]", name);
  char url[128], local[256], full[700];
  const char *node;
  if (!shard_url(n, meta, 0, url, &node)) {
    json_decref(meta);
    return fail(out, QB_UNAVAILABLE, "[%s][0] is not active", name);
  }
  qc_shard_local_name(name, 0, local);
  snprintf(full, sizeof full, "%s/%s%s", url, local, suffix);
  json_t *res;
  int st = call1("GET", full, NULL, 0, NULL, node, &res);
  if (st != 200) {
    json_decref(meta);
    *out = res;
    return st;
  }
  json_t *body = json_object_get(res, local);
  json_t *fixed = json_object();
  if (body) {
    json_t *set = json_object_get(body, "settings");
    json_t *ix = json_object_get(set, "index");
    json_t *ms = json_object_get(meta, "settings");
    if (json_is_object(ix)) {
      char v[32];
      snprintf(v, sizeof v, "%lld",
               (long long)json_integer_value(json_object_get(ms, "number_of_shards")));
      json_object_set_new(ix, "number_of_shards", json_string(v));
      snprintf(v, sizeof v, "%lld",
               (long long)json_integer_value(json_object_get(ms, "number_of_replicas")));
      json_object_set_new(ix, "number_of_replicas", json_string(v));
      json_object_set_new(ix, "provided_name", json_string(name));
    }
    json_object_set(fixed, name, body);
  }
  json_decref(res);
  json_decref(meta);
  *out = fixed;
  return 200;
}

json_t *qc_shard_docs(qc_node *n) {
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256), k = 0;
  if (nm > 256) nm = 256;
  qc_call c[256];
  memset(c, 0, sizeof c);
  json_t *res = json_object();
  for (size_t i = 0; i < nm; i++) {
    if (!m[i].data) continue;
    if ((n->role & QC_DATA) && !strcmp(m[i].name, n->name)) {
      /* this node's own shards, from its catalog: over HTTP its /_cat/indices is the
      ** coordinator's, which would ask every node again, itself included */
      for (size_t x = 0, cnt = qi_catalog_count(n->cat); res && x < cnt; x++) {
        char ln[256];
        qi_index *ix;
        const char *tilde;
        if (qi_catalog_name(n->cat, x, ln, NULL) || !(tilde = strrchr(ln, '~')) ||
            qi_catalog_get(n->cat, ln, &ix, NULL))
          continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(tilde - ln), ln);
        json_t *per = json_object_get(res, name);
        if (!per) json_object_set_new(res, name, per = json_object());
        json_object_set_new(per, tilde + 1, json_integer((json_int_t)qi_index_doc_count(ix)));
        qi_index_release(ix);
      }
      continue;
    }
    c[k].method = "GET";
    snprintf(c[k].url, sizeof c[k].url, "%s/_cat/indices?format=json", m[i].url);
    k++;
  }
  qc_fanout(c, k, 5000, NULL);
  for (size_t i = 0; i < k; i++) {
    json_t *arr = c[i].status == 200 ? json_loadb(c[i].resp.data, c[i].resp.len, 0, NULL) : NULL;
    size_t j;
    json_t *row;
    json_array_foreach(arr, j, row) {
      const char *ix = json_string_value(json_object_get(row, "index"));
      const char *tilde = ix ? strrchr(ix, '~') : NULL;
      if (!tilde) continue;
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)(tilde - ix), ix);
      json_t *per = json_object_get(res, name);
      if (!per) json_object_set_new(res, name, per = json_object());
      const char *cnt = json_string_value(json_object_get(row, "docs.count"));
      json_object_set_new(per, tilde + 1, json_integer(cnt ? strtoll(cnt, NULL, 10) : 0));
    }
    json_decref(arr);
    qc_call_fini(&c[i]);
  }
  return res;
}

/* ---- mappings, delete by query -------------------------------------------------------------- */

/* Every shard of INDEX (live ones) as calls of METHOD to /{local}SUFFIX[?QUERY] with BODY;
** *NSH: the index's shard count. NULL with *OUT set on a failure. */
static qc_call *shard_calls(qc_node *n, const char *index, const char *method, const char *suffix,
                            const char *query, const char *body, size_t len, size_t *ncalls,
                            size_t *nsh, json_t **out) {
  json_t *meta = qc_node_index_meta(n, index);
  if (!meta) {
    fail(out, QB_NOTFOUND, "no such index [%s]", index);
    return NULL;
  }
  *nsh = json_array_size(json_object_get(meta, "shards"));
  qc_call *c = qb_calloc(*nsh ? *nsh : 1, sizeof *c);
  if (!c) {
    json_decref(meta);
    fail(out, QB_NOMEM, "out of memory");
    return NULL;
  }
  size_t k = 0;
  for (uint32_t s = 0; s < *nsh; s++) {
    char url[128], local[256];
    const char *node;
    if (!shard_url(n, meta, s, url, &node)) {
      qb_free(c, (*nsh ? *nsh : 1) * sizeof *c);
      fail(out, QB_UNAVAILABLE,
           "[%s][%u] primary shard is not active (node [%s] is not in the cluster)", index, s,
           node);
      json_decref(meta);
      return NULL;
    }
    qc_shard_local_name(index, s, local);
    c[k].method = method;
    snprintf(c[k].url, sizeof c[k].url, "%s/%s%s%s%s", url, local, suffix, query ? "?" : "",
             query ? query : "");
    c[k].body = body;
    c[k].len = len;
    k++;
  }
  json_decref(meta);
  *ncalls = k;
  return c;
}

int qc_mapping_put(qc_node *n, const char *index, const char *body, size_t len,
                   json_t **out) {
  size_t k, nsh;
  qc_call *c = shard_calls(n, index, "PUT", "/_mapping", NULL, body, len, &k, &nsh, out);
  if (!c) return 0;
  qc_fanout(c, k, 0, NULL);
  int st = 200;
  for (size_t i = 0; i < k && st == 200; i++)
    if (c[i].status != 200) {
      st = answer(&c[i], index, out); /* the first refusal, as the data node gave it */
      if (st == 200) { /* unreachable */
        json_decref(*out);
        st = fail(out, QB_UNAVAILABLE, "shard %zu of [%s] did not take the mapping", i, index);
      }
    }
  for (size_t i = 0; i < k; i++) qc_call_fini(&c[i]);
  qb_free(c, (nsh ? nsh : 1) * sizeof *c);
  if (st != 200) return st;
  /* the index metadata keeps the merged mapping (shard 0's view of it) */
  json_t *m = NULL;
  if (qc_index_get(n, index, "/_mapping", &m) == 200) {
    json_t *mappings = json_object_get(json_object_get(m, index), "mappings");
    char key[512];
    snprintf(key, sizeof key, "%sindexes/%s", QC_PREFIX, index);
    for (int tries = 0; mappings && tries < 5; tries++) {
      qc_kvs kv;
      qb_err err;
      if (qc_etcd_get(n->etcd, key, &kv, &err) || kv.n != 1) {
        qc_kvs_fini(&kv);
        break;
      }
      json_t *meta = json_loadb(kv.kv[0].value, kv.kv[0].value_len, 0, NULL);
      int64_t rev = kv.kv[0].mod_revision;
      qc_kvs_fini(&kv);
      if (!json_is_object(meta)) {
        json_decref(meta);
        break;
      }
      json_object_set(meta, "mappings", mappings);
      if (json_is_object(json_object_get(meta, "body")))
        json_object_set(json_object_get(meta, "body"), "mappings", mappings);
      char *text = json_dumps(meta, JSON_COMPACT);
      qc_txn_cmp cmp = {key, rev};
      qc_txn_op put = {.key = key, .value = text, .len = text ? strlen(text) : 0};
      qb_code rc = text ? qc_etcd_txn(n->etcd, &cmp, 1, &put, 1, NULL, &err) : QB_NOMEM;
      qc__json_free(text);
      if (!rc) qc__index_cache_put(n, index, meta);
      json_decref(meta);
      if (rc != QB_CONFLICT) break;
    }
  }
  json_decref(m);
  *out = json_pack("{s:b}", "acknowledged", 1);
  return 200;
}

int qc_delete_by_query(qc_node *n, const char *expr, const char *query, const char *body,
                       size_t len, json_t **out) {
  uint64_t t0 = qb_now_ns();
  qc_shards sh;
  qc_shards_init(&sh);
  char missing[256] = "";
  qb_err err;
  qb_code rc = qc_node_resolve(n, expr, 0, &sh, missing, &err);
  if (rc) {
    qc_shards_fini(&sh);
    return rc == QB_NOTFOUND ? fail(out, QB_NOTFOUND, "no such index [%s]", missing)
                             : fail(out, rc, "%s", err.msg);
  }
  for (size_t i = 0; i < sh.n; i++)
    if (!sh.s[i].url[0]) {
      int st = fail(out, QB_UNAVAILABLE,
                    "[%s][%u] primary shard is not active (node [%s] is not in the cluster)",
                    sh.s[i].index, sh.s[i].shard_id, sh.s[i].node);
      qc_shards_fini(&sh);
      return st;
    }
  qc_call *c = qb_calloc(sh.n ? sh.n : 1, sizeof *c);
  if (!c) {
    qc_shards_fini(&sh);
    return fail(out, QB_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < sh.n; i++) {
    char local[256];
    qc_shard_local_name(sh.s[i].index, sh.s[i].shard_id, local);
    c[i].method = "POST";
    snprintf(c[i].url, sizeof c[i].url, "%s/%s/_delete_by_query%s%s", sh.s[i].url, local,
             query ? "?" : "", query ? query : "");
    c[i].body = body;
    c[i].len = len;
  }
  qc_fanout(c, sh.n, 0, NULL);
  json_int_t deleted = 0, batches = 0;
  json_t *failures = json_array();
  int st = 200;
  for (size_t i = 0; i < sh.n; i++) {
    json_t *a = NULL;
    int s = answer(&c[i], sh.s[i].node, &a);
    if (s == 200) {
      deleted += json_integer_value(json_object_get(a, "deleted"));
      batches += json_integer_value(json_object_get(a, "batches"));
      size_t k;
      json_t *f;
      json_array_foreach(json_object_get(a, "failures"), k, f) {
        json_object_set_new(f, "index", json_string(sh.s[i].index));
        json_object_set_new(f, "shard", json_integer(sh.s[i].shard_id));
        json_array_append(failures, f);
      }
      json_decref(a);
    } else if (st == 200 && s >= 400 && s < 500) {
      st = s; /* a refused request (a bad query) is refused as the data node said */
      *out = a;
    } else {
      const char *reason = json_string_value(json_object_get(json_object_get(a, "error"), "reason"));
      if (!reason) reason = json_string_value(json_object_get(a, "reason"));
      json_array_append_new(failures, json_pack("{s:s, s:I, s:s, s:s}", "index", sh.s[i].index,
                                                "shard", (json_int_t)sh.s[i].shard_id, "node",
                                                sh.s[i].node, "cause", reason ? reason : "?"));
      json_decref(a);
    }
  }
  for (size_t i = 0; i < sh.n; i++) qc_call_fini(&c[i]);
  qb_free(c, (sh.n ? sh.n : 1) * sizeof *c);
  qc_shards_fini(&sh);
  if (st != 200) {
    json_decref(failures);
    return st;
  }
  *out = json_pack("{s:I, s:b, s:I, s:I, s:I, s:i, s:i, s:{s:i, s:i}, s:o}", "took",
                   (json_int_t)((qb_now_ns() - t0) / 1000000u), "timed_out", 0, "total",
                   deleted, "deleted", deleted, "batches", batches, "version_conflicts", 0,
                   "noops", 0, "retries", "bulk", 0, "search", 0, "failures", failures);
  return 200;
}
