/* meta.c: a cluster node's view of the metadata in etcd: the schema check at open; joining
** (register nodes/<name> under the node's lease, refusing a name a live node holds); the
** leader campaign of coordinators (create-if-absent of the leader key under the lease, again
** whenever the key goes); and caches of the members and the index metadata, loaded with one
** range and kept current by watch streams from the revision after it.
** Invariant: the caches change only under n->mu, from the watch threads or at join; readers
** take copies (json_deep_copy) under the same lock, or a view (the search path): a reference
** to the cached metadata object itself. A cached index object is never changed in place (a
** change replaces it, and what is put is a copy), so a view stays valid and unchanged for as
** long as its holder keeps it, and jansson's reference counts are atomic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void key_of(char *out, size_t cap, const char *rest) {
  snprintf(out, cap, "%s%s", QC_PREFIX, rest);
}

/* ---- open: the schema -------------------------------------------------------------------- */

qb_code qc__meta_open(qc_node *n, const qc_node_options *opt, qb_err *err) {
  if (!opt->etcd) return qb_fail(err, QB_INVAL, "a cluster role needs --etcd http://HOST:PORT");
  n->ttl_s = opt->lease_ttl_s ? opt->lease_ttl_s : 5;
  n->members = json_object();
  n->indexes = json_object();
  if (!n->members || !n->indexes) return qb_fail(err, QB_NOMEM, "out of memory");
  qb_code rc = qc_etcd_open(opt->etcd, 2000, &n->etcd, err);
  if (rc) return rc;
  char key[256];
  key_of(key, sizeof key, "schema");
  char want[64];
  snprintf(want, sizeof want, "{\"version\":%d}", QC_SCHEMA_VERSION);
  qc_txn_cmp absent = {key, 0};
  qc_txn_op put = {.key = key, .value = want, .len = strlen(want)};
  rc = qc_etcd_txn(n->etcd, &absent, 1, &put, 1, NULL, err);
  if (rc == QB_CONFLICT) { /* already there: must be ours */
    qc_kvs k;
    if ((rc = qc_etcd_get(n->etcd, key, &k, err))) return rc;
    json_t *j = k.n ? json_loadb(k.kv[0].value, k.kv[0].value_len, 0, NULL) : NULL;
    json_int_t v = json_integer_value(json_object_get(j, "version"));
    json_decref(j);
    qc_kvs_fini(&k);
    if (v != QC_SCHEMA_VERSION)
      return qb_fail(err, QB_CORRUPT, "etcd at %s: cluster metadata schema version %lld under %s, "
                     "this build reads version %d", opt->etcd, (long long)v, QC_PREFIX,
                     QC_SCHEMA_VERSION);
    rc = QB_OK;
  }
  return rc;
}

void qc__meta_close(qc_node *n) {
  qc__alloc_stop(n);
  qc_watch_stop(n->w_nodes);
  qc_watch_stop(n->w_indexes);
  qc_watch_stop(n->w_leader);
  n->w_nodes = n->w_indexes = n->w_leader = NULL;
  if (n->lease) {
    /* leave at once (the lease revoke drops nodes/<name> and a held leader key) */
    qc_lease_stop(n->lease);
    n->lease = NULL;
  }
  qc_etcd_close(n->etcd);
  n->etcd = NULL;
  json_decref(n->members);
  json_decref(n->indexes);
  n->members = n->indexes = NULL;
}

/* ---- the caches ---------------------------------------------------------------------------- */

/* Apply one kv (a put, or a delete when DELETED) to the caches. Called with n->mu held. */
static void apply(qc_node *n, int deleted, const qc_kv *kv) {
  size_t pl = strlen(QC_PREFIX);
  if (kv->key_len < pl || memcmp(kv->key, QC_PREFIX, pl)) return;
  const char *rest = kv->key + pl;
  json_t *map = NULL;
  const char *name = NULL;
  if (!strncmp(rest, "nodes/", 6)) map = n->members, name = rest + 6;
  else if (!strncmp(rest, "indexes/", 8)) map = n->indexes, name = rest + 8;
  else if (!strcmp(rest, "leader")) {
    n->leader[0] = n->leader_url[0] = 0;
    n->is_leader = 0;
    if (!deleted) {
      json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
      snprintf(n->leader, sizeof n->leader, "%s",
               json_string_value(json_object_get(j, "name")) ?: "");
      snprintf(n->leader_url, sizeof n->leader_url, "%s",
               json_string_value(json_object_get(j, "url")) ?: "");
      n->is_leader = n->lease && kv->lease == qc_lease_id(n->lease);
      json_decref(j);
    }
    return;
  }
  if (!map || !*name) return;
  if (deleted) {
    json_object_del(map, name);
    return;
  }
  json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
  if (json_is_object(j)) json_object_set_new(map, name, j);
  else json_decref(j);
}

static void campaign(qc_node *n);

static void on_watch(void *ud, int deleted, const qc_kv *kv) {
  qc_node *n = ud;
  pthread_mutex_lock(&n->mu);
  apply(n, deleted, kv);
  int vacant = !n->leader[0];
  pthread_mutex_unlock(&n->mu);
  if (vacant && (n->role & QC_COORD)) campaign(n); /* the leader went: try to take over */
}

/* Load every key under REST into the caches; the watch resumes after *REV. */
static qb_code load(qc_node *n, const char *rest, int64_t *rev, qb_err *err) {
  char key[256];
  key_of(key, sizeof key, rest);
  qc_kvs k;
  qb_code rc = qc_etcd_range(n->etcd, key, 0, &k, err);
  if (rc) return rc;
  pthread_mutex_lock(&n->mu);
  for (size_t i = 0; i < k.n; i++) apply(n, 0, &k.kv[i]);
  pthread_mutex_unlock(&n->mu);
  *rev = k.revision;
  qc_kvs_fini(&k);
  return QB_OK;
}

/* Try to become the leader: create the leader key under this node's lease if it is absent. */
static void campaign(qc_node *n) {
  if (!n->lease || !n->url[0]) return;
  char key[256], val[300];
  key_of(key, sizeof key, "leader");
  snprintf(val, sizeof val, "{\"name\":\"%s\",\"url\":\"%s\"}", n->name, n->url);
  qc_txn_cmp absent = {key, 0};
  qc_txn_op put = {.key = key, .value = val, .len = strlen(val), .lease = qc_lease_id(n->lease)};
  qb_err err;
  qb_code rc = qc_etcd_txn(n->etcd, &absent, 1, &put, 1, NULL, &err);
  if (rc == QB_OK) {
    pthread_mutex_lock(&n->mu);
    n->is_leader = 1;
    snprintf(n->leader, sizeof n->leader, "%s", n->name);
    snprintf(n->leader_url, sizeof n->leader_url, "%s", n->url);
    pthread_mutex_unlock(&n->mu);
    qb_log(QB_INFO, "elected leader coordinator (allocates shards)");
  } else if (rc != QB_CONFLICT) {
    qb_log(QB_WARN, "leader campaign failed: %s", err.msg);
  }
}

/* ---- join ---------------------------------------------------------------------------------- */

/* The node's key under the current lease (a txn: the name must be free, or, when MINE_OK,
** held by this node's own earlier registration: same URL and start time). */
static qb_code put_registration(qc_node *n, int mine_ok, qb_err *err) {
  char key[256], rest[128];
  snprintf(rest, sizeof rest, "nodes/%s", n->name);
  key_of(key, sizeof key, rest);
  json_t *reg = json_pack("{s:s, s:s, s:[], s:I}", "name", n->name, "url", n->url, "roles",
                          "started_ms", (json_int_t)n->started_ms);
  json_t *roles = json_object_get(reg, "roles");
  if (n->role & QC_DATA) json_array_append_new(roles, json_string("data"));
  if (n->role & QC_COORD) json_array_append_new(roles, json_string("coord"));
  char *text = reg ? json_dumps(reg, JSON_COMPACT) : NULL;
  json_decref(reg);
  if (!text) return qb_fail(err, QB_NOMEM, "out of memory");
  qc_txn_cmp absent = {key, 0};
  qc_txn_op put = {.key = key, .value = text, .len = strlen(text),
                   .lease = qc_lease_id(n->lease)};
  qb_code rc = qc_etcd_txn(n->etcd, &absent, 1, &put, 1, NULL, err);
  qc__json_free(text);
  if (rc == QB_CONFLICT) {
    qc_kvs k;
    char other[128] = "?";
    int mine = 0;
    int64_t rev = 0;
    if (qc_etcd_get(n->etcd, key, &k, NULL) == QB_OK) {
      if (k.n) {
        json_t *j = json_loadb(k.kv[0].value, k.kv[0].value_len, 0, NULL);
        snprintf(other, sizeof other, "%s", json_string_value(json_object_get(j, "url")) ?: "?");
        mine = !strcmp(other, n->url) &&
               json_integer_value(json_object_get(j, "started_ms")) == n->started_ms;
        rev = k.kv[0].mod_revision;
        json_decref(j);
      }
      qc_kvs_fini(&k);
    }
    if (mine && mine_ok) { /* our key under the old lease (etcd revived it): move it over */
      char *again = NULL;
      json_t *reg2 = json_pack("{s:s, s:s, s:[], s:I}", "name", n->name, "url", n->url, "roles",
                               "started_ms", (json_int_t)n->started_ms);
      json_t *roles2 = json_object_get(reg2, "roles");
      if (n->role & QC_DATA) json_array_append_new(roles2, json_string("data"));
      if (n->role & QC_COORD) json_array_append_new(roles2, json_string("coord"));
      again = reg2 ? json_dumps(reg2, JSON_COMPACT) : NULL;
      json_decref(reg2);
      if (!again) return qb_fail(err, QB_NOMEM, "out of memory");
      qc_txn_cmp same = {key, rev};
      qc_txn_op put2 = {.key = key, .value = again, .len = strlen(again),
                        .lease = qc_lease_id(n->lease)};
      rc = qc_etcd_txn(n->etcd, &same, 1, &put2, 1, NULL, err);
      qc__json_free(again);
      return rc;
    }
    return qb_fail(err, QB_CONFLICT, "node name [%s] is taken by a live node at %s (names are "
                   "unique in a cluster; that node's lease expires %u s after it dies)",
                   n->name, other, n->ttl_s);
  }
  return rc;
}

/* The lease expired (etcd was away longer than the TTL) and the lease thread has a new one:
** register again, and campaign again when a coordinator. */
static void on_new_lease(void *ud) {
  qc_node *n = ud;
  pthread_mutex_lock(&n->mu);
  n->is_leader = 0;
  pthread_mutex_unlock(&n->mu);
  qb_err err;
  if (put_registration(n, 1, &err)) qb_log(QB_ERROR, "re-registering in etcd: %s", err.msg);
  else qb_log(QB_INFO, "re-registered in the cluster under a new lease");
  if (n->role & QC_COORD) campaign(n);
}

qb_code qc_node_join(qc_node *n, const char *url, qb_err *err) {
  if (n->role == QC_EMBEDDED) return QB_OK;
  snprintf(n->url, sizeof n->url, "%s", url);
  qb_code rc;
  if (n->role & QC_DATA) qc__orphans_sweep(n); /* before registering (orphans.c) */
  if ((n->role & QC_DATA) && (rc = qc__udf_sync_all(n, err))) {
    qb_wrap(err, "syncing UDFs from etcd: ");
    return rc;
  }
  if ((rc = qc_lease_start(n->etcd, n->ttl_s, on_new_lease, n, &n->lease, err))) return rc;
  n->started_ms = qb_wall_ms();
  if ((rc = put_registration(n, 0, err))) return rc;
  int64_t r1, r2, r3;
  if ((rc = load(n, "nodes/", &r1, err)) || (rc = load(n, "indexes/", &r2, err)) ||
      (rc = load(n, "leader", &r3, err)))
    return rc;
  char wk[256];
  key_of(wk, sizeof wk, "nodes/");
  if ((rc = qc_watch_start(n->etcd, wk, r1 + 1, on_watch, n, &n->w_nodes, err))) return rc;
  key_of(wk, sizeof wk, "indexes/");
  if ((rc = qc_watch_start(n->etcd, wk, r2 + 1, on_watch, n, &n->w_indexes, err))) return rc;
  key_of(wk, sizeof wk, "leader");
  if ((rc = qc_watch_start(n->etcd, wk, r3 + 1, on_watch, n, &n->w_leader, err))) return rc;
  n->joined = 1;
  if (n->role & QC_COORD) campaign(n);
  if ((n->role & QC_COORD) && (rc = qc__alloc_start(n, err))) return rc;
  qb_log(QB_INFO, "joined the cluster at %s as %s%s", qc_etcd_endpoint(n->etcd),
         n->role == QC_BOTH ? "data+coord" : n->role == QC_DATA ? "data" : "coord",
         qc_node_is_leader(n) ? " (leader)" : "");
  return QB_OK;
}

/* ---- readers ------------------------------------------------------------------------------- */

qc_role qc_node_role(const qc_node *n) { return n->role; }
int qc_node_routes(const qc_node *n) { return (n->role & QC_COORD) != 0; }
qc_etcd *qc_node_etcd(qc_node *n) { return n->etcd; }

int qc_node_is_leader(qc_node *n) {
  if (!n->etcd) return 0;
  pthread_mutex_lock(&n->mu);
  int v = n->is_leader && n->lease && qc_lease_ok(n->lease);
  pthread_mutex_unlock(&n->mu);
  return v;
}

static void member_of(const char *name, json_t *j, qc_member *m) {
  memset(m, 0, sizeof *m);
  snprintf(m->name, sizeof m->name, "%s", name);
  snprintf(m->url, sizeof m->url, "%s", json_string_value(json_object_get(j, "url")) ?: "");
  m->started_ms = json_integer_value(json_object_get(j, "started_ms"));
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(j, "roles"), i, r) {
    if (json_is_string(r) && !strcmp(json_string_value(r), "data")) m->data = 1;
    if (json_is_string(r) && !strcmp(json_string_value(r), "coord")) m->coord = 1;
  }
}

static int cmp_member(const void *a, const void *b) {
  return strcmp(((const qc_member *)a)->name, ((const qc_member *)b)->name);
}

size_t qc_node_members(qc_node *n, qc_member *out, size_t max) {
  if (!n->etcd) return 0;
  size_t cnt = 0;
  const char *k;
  json_t *v;
  pthread_mutex_lock(&n->mu);
  json_object_foreach(n->members, k, v) {
    if (cnt < max) member_of(k, v, &out[cnt]);
    cnt++;
  }
  pthread_mutex_unlock(&n->mu);
  qsort(out, cnt < max ? cnt : max, sizeof *out, cmp_member);
  return cnt;
}

int qc__member_url(qc_node *n, const char *name, char url[128]) {
  pthread_mutex_lock(&n->mu);
  json_t *j = n->members ? json_object_get(n->members, name) : NULL;
  const char *u = json_string_value(json_object_get(j, "url"));
  if (u) snprintf(url, 128, "%s", u);
  pthread_mutex_unlock(&n->mu);
  return u != NULL;
}

qb_code qc_node_leader(qc_node *n, qc_member *out, qb_err *err) {
  memset(out, 0, sizeof *out);
  if (!n->etcd) return qb_fail(err, QB_NOTFOUND, "no cluster");
  pthread_mutex_lock(&n->mu);
  int have = n->leader[0] != 0;
  snprintf(out->name, sizeof out->name, "%s", n->leader);
  snprintf(out->url, sizeof out->url, "%s", n->leader_url);
  pthread_mutex_unlock(&n->mu);
  out->coord = 1;
  if (!have) return qb_fail(err, QB_NOTFOUND, "no leader coordinator is elected right now");
  return QB_OK;
}

json_t *qc_node_index_meta(qc_node *n, const char *name) {
  if (!n->etcd) return NULL;
  pthread_mutex_lock(&n->mu);
  json_t *j = json_deep_copy(json_object_get(n->indexes, name));
  pthread_mutex_unlock(&n->mu);
  if (j || strlen(name) > 200) return j;
  /* not seen yet (another coordinator created it a moment ago): ask etcd */
  char key[256], rest[220];
  snprintf(rest, sizeof rest, "indexes/%s", name);
  key_of(key, sizeof key, rest);
  qc_kvs k;
  if (qc_etcd_get(n->etcd, key, &k, NULL)) return NULL;
  if (k.n) {
    j = json_loadb(k.kv[0].value, k.kv[0].value_len, 0, NULL);
    if (!json_is_object(j)) json_decref(j), j = NULL;
  }
  qc_kvs_fini(&k);
  return j;
}

json_t *qc__index_meta_view(qc_node *n, const char *name) {
  if (!n->etcd) return NULL;
  pthread_mutex_lock(&n->mu);
  json_t *j = json_incref(json_object_get(n->indexes, name));
  pthread_mutex_unlock(&n->mu);
  return j ? j : qc_node_index_meta(n, name);
}

json_t *qc_node_index_meta_view(qc_node *n, const char *name) {
  return qc__index_meta_view(n, name);
}

json_t *qc__indexes_view(qc_node *n) {
  json_t *v = json_object();
  if (!v || !n->etcd) return v;
  const char *k;
  json_t *meta;
  pthread_mutex_lock(&n->mu);
  json_object_foreach(n->indexes, k, meta) {
    if (json_object_set(v, k, meta)) {
      json_decref(v);
      v = NULL;
      break;
    }
  }
  pthread_mutex_unlock(&n->mu);
  return v;
}

void qc__index_cache_put(qc_node *n, const char *name, json_t *meta) {
  json_t *copy = meta ? json_deep_copy(meta) : NULL; /* the caller may change its own later */
  pthread_mutex_lock(&n->mu);
  if (copy) json_object_set_new(n->indexes, name, copy);
  else json_object_del(n->indexes, name);
  pthread_mutex_unlock(&n->mu);
}

json_t *qc_node_indexes(qc_node *n) {
  if (!n->etcd) return json_object();
  pthread_mutex_lock(&n->mu);
  json_t *j = json_deep_copy(n->indexes);
  pthread_mutex_unlock(&n->mu);
  return j;
}
