/* udfs.c: the UDF registry's cluster half, in etcd: store a version (chunked bytes, then one
** txn for its metadata and the current pointer), move the current pointer (rollback), remove
** a UDF; and a data node's side: install a version from etcd into its local registry (on a
** push, on a shard request pinning a version it lacks, and for every current UDF before it
** serves). Invariant: a version's metadata exists in etcd only once all its bytes do, and a
** data node installs bytes only when their SHA-256 is the one the metadata names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

static void ukey(char *out, size_t cap, const char *name, const char *rest) {
  snprintf(out, cap, "%sudf/%s%s", QC_PREFIX, name, rest);
}

qb_code qc_udf_current(qc_node *n, const char *name, uint32_t *version, qb_err *err) {
  char key[256];
  ukey(key, sizeof key, name, "/current");
  qc_kvs k;
  qb_code rc = qc_etcd_get(n->etcd, key, &k, err);
  if (rc) return rc;
  *version = k.n ? (uint32_t)strtoul(k.kv[0].value, NULL, 10) : 0;
  qc_kvs_fini(&k);
  return *version ? QB_OK : QB_NOTFOUND;
}

qb_code qc__udf_current(void *node, const char *name, uint32_t *version, qb_err *err) {
  qc_node *n = node;
  qb_err e;
  qb_code rc = n->udfs.ops->current(n->udfs.impl, name, version, &e);
  if (rc && rc != QB_NOTFOUND && err) *err = e;
  return rc;
}

/* Highest version stored for NAME (0: none). */
static qb_code max_version(qc_node *n, const char *name, uint32_t *out, qb_err *err) {
  char key[256];
  ukey(key, sizeof key, name, "/v/");
  qc_kvs k;
  qb_code rc = qc_etcd_range(n->etcd, key, 1, &k, err);
  if (rc) return rc;
  *out = 0;
  size_t pl = strlen(key);
  for (size_t i = 0; i < k.n; i++) {
    uint32_t v = (uint32_t)strtoul(k.kv[i].key + pl, NULL, 10);
    if (v > *out) *out = v;
  }
  qc_kvs_fini(&k);
  return QB_OK;
}

qb_code qc_udf_store(qc_node *n, const char *name, const char *manifest_json,
                     const uint8_t *wasm, size_t len, const char *sha256_hex,
                     uint32_t *version, qb_err *err) {
  size_t chunks = (len + QC_CHUNK_BYTES - 1) / QC_CHUNK_BYTES;
  qb_code rc;
  /* a module of one chunk goes in the version's txn: one etcd write (one raft fsync) per
  ** deploy instead of two (deploy to ready, issue 10) */
  char bkey[256];
  snprintf(bkey, sizeof bkey, "%sblobs/%s/0", QC_PREFIX, sha256_hex);
  for (size_t i = 0; chunks > 1 && i < chunks; i++) {
    char key[256];
    snprintf(key, sizeof key, "%sblobs/%s/%zu", QC_PREFIX, sha256_hex, i);
    size_t off = i * QC_CHUNK_BYTES, m = len - off < QC_CHUNK_BYTES ? len - off : QC_CHUNK_BYTES;
    if ((rc = qc_etcd_put(n->etcd, key, wasm + off, m, 0, NULL, err))) return rc;
  }
  for (int attempt = 0; attempt < 8; attempt++) {
    uint32_t v;
    if ((rc = max_version(n, name, &v, err))) return rc;
    v++;
    json_t *meta = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I}", "version", (json_int_t)v,
                             "manifest", manifest_json, "sha256", sha256_hex, "size",
                             (json_int_t)len, "chunks", (json_int_t)chunks, "created_ms",
                             (json_int_t)qb_wall_ms());
    char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (!text) return qb_fail(err, QB_NOMEM, "out of memory");
    char vkey[256], ckey[256], vrest[32], cur[16];
    snprintf(vrest, sizeof vrest, "/v/%u", v);
    ukey(vkey, sizeof vkey, name, vrest);
    ukey(ckey, sizeof ckey, name, "/current");
    snprintf(cur, sizeof cur, "%u", v);
    qc_txn_cmp absent = {vkey, 0};
    qc_txn_op ops[3] = {{.key = vkey, .value = text, .len = strlen(text)},
                        {.key = ckey, .value = cur, .len = strlen(cur)},
                        {.key = bkey, .value = (const char *)wasm, .len = len}};
    rc = qc_etcd_txn(n->etcd, &absent, 1, ops, chunks == 1 ? 3 : 2, NULL, err);
    qc__json_free(text);
    if (rc == QB_CONFLICT) continue; /* another coordinator took v: take the next one */
    if (!rc) *version = v;
    return rc;
  }
  return qb_fail(err, QB_CONFLICT, "udf %s: too many concurrent deploys", name);
}

qb_code qc_udf_set_current(qc_node *n, const char *name, uint32_t version, qb_err *err) {
  char vkey[256], ckey[256], vrest[32], cur[16];
  snprintf(vrest, sizeof vrest, "/v/%u", version);
  ukey(vkey, sizeof vkey, name, vrest);
  ukey(ckey, sizeof ckey, name, "/current");
  qc_kvs k;
  qb_code rc = qc_etcd_get(n->etcd, vkey, &k, err);
  if (rc) return rc;
  int64_t rev = k.n ? k.kv[0].mod_revision : 0;
  qc_kvs_fini(&k);
  if (!rev) return qb_fail(err, QB_NOTFOUND, "udf %s: no version v%u", name, version);
  snprintf(cur, sizeof cur, "%u", version);
  qc_txn_cmp same = {vkey, rev}; /* the version still exists */
  qc_txn_op put = {.key = ckey, .value = cur, .len = strlen(cur)};
  return qc_etcd_txn(n->etcd, &same, 1, &put, 1, NULL, err);
}

qb_code qc_udf_remove(qc_node *n, const char *name, qb_err *err) {
  char key[256];
  ukey(key, sizeof key, name, "/");
  int64_t deleted = 0;
  qb_code rc = qc_etcd_delete(n->etcd, key, 1, &deleted, err);
  if (!rc && !deleted) return qb_fail(err, QB_NOTFOUND, "udf %s: no such udf", name);
  return rc;
}

qb_code qc_udf_install(qc_node *n, const char *name, uint32_t version, int current,
                       qb_err *err) {
  qu_version_info info;
  if (qu_registry_get(n->reg, name, version, &info, NULL, NULL, NULL) == QB_OK) {
    if (current && !info.current) return qu_registry_rollback(n->reg, name, version, err);
    return QB_OK;
  }
  char vkey[256], vrest[32];
  snprintf(vrest, sizeof vrest, "/v/%u", version);
  ukey(vkey, sizeof vkey, name, vrest);
  qc_kvs k;
  qb_code rc = qc_etcd_get(n->etcd, vkey, &k, err);
  if (rc) return rc;
  json_t *meta = k.n ? json_loadb(k.kv[0].value, k.kv[0].value_len, 0, NULL) : NULL;
  qc_kvs_fini(&k);
  if (!meta) return qb_fail(err, QB_NOTFOUND, "udf %s: no version v%u in the cluster", name,
                            version);
  const char *manifest = json_string_value(json_object_get(meta, "manifest"));
  const char *sha = json_string_value(json_object_get(meta, "sha256"));
  json_int_t size = json_integer_value(json_object_get(meta, "size"));
  json_int_t chunks = json_integer_value(json_object_get(meta, "chunks"));
  qb_buf wasm;
  qb_buf_init(&wasm);
  if (!manifest || !sha || strlen(sha) != 64 || size < 0 || chunks < 0 ||
      chunks != (size + QC_CHUNK_BYTES - 1) / QC_CHUNK_BYTES) {
    rc = qb_fail(err, QB_CORRUPT, "udf %s v%u: bad metadata in etcd", name, version);
    goto out;
  }
  for (json_int_t i = 0; i < chunks; i++) {
    char key[256];
    snprintf(key, sizeof key, "%sblobs/%s/%lld", QC_PREFIX, sha, (long long)i);
    if ((rc = qc_etcd_get(n->etcd, key, &k, err))) goto out;
    if (!k.n) {
      qc_kvs_fini(&k);
      rc = qb_fail(err, QB_CORRUPT, "udf %s v%u: chunk %lld missing in etcd", name, version,
                   (long long)i);
      goto out;
    }
    rc = qb_buf_append(&wasm, k.kv[0].value, k.kv[0].value_len);
    qc_kvs_fini(&k);
    if (rc) {
      rc = qb_fail(err, QB_NOMEM, "out of memory");
      goto out;
    }
  }
  if ((json_int_t)wasm.len != size) {
    rc = qb_fail(err, QB_CORRUPT, "udf %s v%u: %zu bytes in etcd, metadata says %lld", name,
                 version, wasm.len, (long long)size);
    goto out;
  }
  rc = qu_registry_install(n->reg, manifest, strlen(manifest), version,
                           (const uint8_t *)(wasm.data ? wasm.data : ""), wasm.len, current, err);
  if (!rc && qu_registry_get(n->reg, name, version, &info, NULL, NULL, err) == QB_OK &&
      strcmp(info.sha256, sha)) {
    qu_registry_delete(n->reg, name, NULL); /* never keep bytes that are not the ones named */
    rc = qb_fail(err, QB_CORRUPT, "udf %s v%u: SHA-256 of the bytes in etcd is %s, metadata "
                 "says %s", name, version, info.sha256, sha);
  }
  if (!rc) qb_log(QB_INFO, "UDF installed from etcd: %s (v%u, %zu bytes)", name, version, wasm.len);
out:
  qb_buf_fini(&wasm);
  json_decref(meta);
  return rc;
}

qb_code qc__udf_fetch(void *node, const char *name, uint32_t version, qb_err *err) {
  qc_node *n = node;
  uint32_t cur = 0;
  qc_udf_current(n, name, &cur, NULL);
  return qc_udf_install(n, name, version, cur == version, err);
}

qb_code qc__udf_sync_all(qc_node *n, qb_err *err) {
  char key[256];
  snprintf(key, sizeof key, "%sudf/", QC_PREFIX);
  qc_kvs k;
  qb_code rc = qc_etcd_range(n->etcd, key, 0, &k, err);
  if (rc) return rc;
  size_t pl = strlen(key), synced = 0;
  for (size_t i = 0; i < k.n && !rc; i++) {
    const char *rest = k.kv[i].key + pl;
    const char *slash = strchr(rest, '/');
    if (!slash || strcmp(slash, "/current")) continue;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(slash - rest), rest);
    uint32_t v = (uint32_t)strtoul(k.kv[i].value, NULL, 10);
    if (v && !(rc = qc_udf_install(n, name, v, 1, err))) synced++;
  }
  qc_kvs_fini(&k);
  if (!rc && synced) qb_log(QB_INFO, "synced %zu current UDFs from etcd", synced);
  return rc;
}

void qc_udf_provider_for(qc_udf_provider *p, qc_node *n) {
  if (!qc_node_routes(n)) {
    qc_udf_provider_init(p, n->reg, NULL);
    return;
  }
  qc_udf_provider_init(p, NULL, NULL);
  p->current = qc__udf_current;
  p->ud = n;
}

/* ---- a coordinator's UDF routes ------------------------------------------------------------ */

/* This coordinator's own failure (cluster.h): 0 with *OUT = {"code", "reason"}. */
static int fail(json_t **out, qb_code code, const char *reason) {
  *out = json_pack("{s:i, s:s}", "code", (int)code, "reason", reason);
  return 0;
}

static int code_error(json_t **out, const qb_err *err) { return fail(out, err->code, err->msg); }

/* Push to every live data node: POST /_internal/udf/NAME/_sync BODY, or DELETE
** /_internal/udf/NAME when BODY is NULL. Returns {"node": {"status", "took_ms" | "reason"}}
** and counts the nodes that took it in *OK. */
static json_t *push(qc_node *n, const char *name, const char *body, size_t *ok, size_t *total) {
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256), k = 0;
  if (nm > 256) nm = 256;
  qc_call *c = qb_calloc(nm ? nm : 1, sizeof *c);
  const char *who[256];
  json_t *res = json_object();
  *ok = *total = 0;
  if (!c || !res) {
    qb_free(c, (nm ? nm : 1) * sizeof *c);
    return res;
  }
  for (size_t i = 0; i < nm; i++) {
    if (!m[i].data) continue;
    c[k].method = body ? "POST" : "DELETE";
    snprintf(c[k].url, sizeof c[k].url, "%s/_internal/udf/%s%s", m[i].url, name,
             body ? "/_sync" : "");
    c[k].body = body;
    c[k].len = body ? strlen(body) : 0;
    who[k++] = m[i].name;
  }
  qc_fanout(c, k, 0, NULL);
  for (size_t i = 0; i < k; i++) {
    json_t *a = c[i].status ? json_loadb(c[i].resp.data ? c[i].resp.data : "", c[i].resp.len, 0,
                                         NULL)
                            : NULL;
    double ms = (double)c[i].took_ns / 1e6;
    json_t *one;
    if (c[i].status == 200) {
      one = json_pack("{s:s, s:s, s:f, s:f}", "status", body ? "ready" : "deleted", "tier",
                      "interpreter", "took_ms", ms, "install_ms",
                      json_number_value(json_object_get(a, "took_ms")));
      (*ok)++;
    } else {
      const char *reason =
          json_string_value(json_object_get(json_object_get(a, "error"), "reason"));
      one = json_pack("{s:s, s:s, s:f}", "status", "failed", "reason",
                      reason ? reason : c[i].error[0] ? c[i].error : "no answer", "took_ms", ms);
    }
    json_object_set_new(res, who[i], one);
    json_decref(a);
    qc_call_fini(&c[i]);
  }
  *total = k;
  qb_free(c, (nm ? nm : 1) * sizeof *c);
  return res;
}

int qc_udf_deploy(qc_node *n, const char *name, const char *manifest_json, size_t manifest_len,
                  const uint8_t *wasm, size_t len, json_t **out) {
  uint64_t t0 = qb_now_ns();
  qb_err err;
  qw_module *mod = NULL;
  qu_manifest *m = NULL;
  qu_udf *u = NULL;
  qb_buf mj;
  qb_buf_init(&mj);
  int st = 200;
  /* everything is checked before anything is stored */
  qb_code rc = qw_module_load(n->engine, wasm, len, &mod, &err);
  if (!rc) rc = qu_manifest_complete(manifest_json, manifest_len, name, mod, &m, &err);
  if (!rc) rc = qu_udf_load(n->engine, m, 0, wasm, len, &n->udf_opts, &u, &err);
  if (!rc && qu_manifest_json(m, &mj)) rc = qb_fail(&err, QB_NOMEM, "out of memory");
  if (rc) {
    qb_log(QB_INFO, "UDF deploy rejected: %s: %s", name, err.msg);
    st = code_error(out, &err);
    goto done;
  }
  uint8_t h[crypto_hash_sha256_BYTES];
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  crypto_hash_sha256(h, wasm, len);
  for (size_t i = 0; i < sizeof h; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
  uint32_t v = 0;
  char *mtext = qb_malloc(mj.len + 1);
  if (!mtext) {
    st = fail(out, QB_NOMEM, "out of memory");
    goto done;
  }
  memcpy(mtext, mj.data, mj.len);
  mtext[mj.len] = 0;
  rc = n->udfs.ops->store(n->udfs.impl, name, mtext, wasm, len, hex, &v, &err);
  if (rc) {
    qb_free(mtext, mj.len + 1);
    st = code_error(out, &err);
    goto done;
  }
  char sz[QB_SIZE_STR];
  qb_log(QB_INFO, "UDF deployed: %s (v%u, %s), pushing to the data nodes", name, v,
         qb_size_str(len, sz));
  char body[64];
  snprintf(body, sizeof body, "{\"version\":%u,\"current\":true}", v);
  size_t ok, total;
  json_t *nodes = push(n, name, body, &ok, &total);
  char label[16];
  snprintf(label, sizeof label, "v%u", v);
  *out = json_pack("{s:b, s:s, s:I, s:s, s:b, s:s, s:I, s:s, s:s, s:I, s:o, s:I, s:I, s:o}",
                   "acknowledged", 1, "name", name, "version", (json_int_t)v, "version_label",
                   label, "current", 1, "sha256", hex, "size", (json_int_t)len, "kind",
                   qu_kind_name(qu_manifest_kind(m)), "export", qu_manifest_export(m),
                   "took", (json_int_t)((qb_now_ns() - t0) / 1000000u), "nodes", nodes,
                   "nodes_ready", (json_int_t)ok, "nodes_total", (json_int_t)total, "manifest",
                   json_loads(mtext, 0, NULL));
  qb_free(mtext, mj.len + 1);
done:
  qb_buf_fini(&mj);
  qu_udf_release(u);
  qu_manifest_free(m);
  qw_module_free(mod);
  return st;
}

int qc_udf_rollback(qc_node *n, const char *name, uint32_t version, json_t **out) {
  qb_err err;
  uint32_t before = 0;
  qb_code rc = n->udfs.ops->current(n->udfs.impl, name, &before, &err);
  if (rc == QB_NOTFOUND) {
    char why[200];
    snprintf(why, sizeof why, "udf %s: no such udf", name);
    return fail(out, QB_NOTFOUND, why);
  }
  if (!rc) rc = n->udfs.ops->set_current(n->udfs.impl, name, version, &err);
  if (rc) return code_error(out, &err);
  qb_log(QB_INFO, "UDF rolled back: %s (v%u -> v%u)", name, before, version);
  char body[64];
  snprintf(body, sizeof body, "{\"version\":%u,\"current\":true}", version);
  size_t ok, total;
  json_t *nodes = push(n, name, body, &ok, &total);
  *out = json_pack("{s:b, s:s, s:I, s:I, s:o, s:I, s:I}", "acknowledged", 1, "name", name,
                   "version", (json_int_t)version, "previous", (json_int_t)before, "nodes",
                   nodes, "nodes_ready", (json_int_t)ok, "nodes_total", (json_int_t)total);
  return 200;
}

int qc_udf_delete(qc_node *n, const char *name, json_t **out) {
  qb_err err;
  if (n->udfs.ops->remove(n->udfs.impl, name, &err)) return code_error(out, &err);
  qb_log(QB_INFO, "UDF deleted: %s", name);
  size_t ok, total;
  json_t *nodes = push(n, name, NULL, &ok, &total);
  *out = json_pack("{s:b, s:o}", "acknowledged", 1, "nodes", nodes);
  return 200;
}

int qc_udf_status(qc_node *n, const char *name, json_t **out) {
  uint32_t v;
  qb_err err;
  qb_code rc = qc_udf_current(n, name, &v, &err);
  if (rc == QB_NOTFOUND) {
    char why[200];
    snprintf(why, sizeof why, "udf %s: no such udf", name);
    return fail(out, QB_NOTFOUND, why);
  }
  if (rc) return code_error(out, &err);
  char key[256], rest[32];
  snprintf(rest, sizeof rest, "/v/%u", v);
  ukey(key, sizeof key, name, rest);
  qc_kvs k;
  if ((rc = qc_etcd_get(n->etcd, key, &k, &err))) return code_error(out, &err);
  json_t *meta = k.n ? json_loadb(k.kv[0].value, k.kv[0].value_len, 0, NULL) : json_object();
  qc_kvs_fini(&k);
  /* each data node's view: its registry's current version of NAME */
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256), c = 0;
  if (nm > 256) nm = 256;
  qc_call calls[256];
  const char *who[256];
  memset(calls, 0, sizeof calls);
  for (size_t i = 0; i < nm; i++) {
    if (!m[i].data) continue;
    calls[c].method = "GET";
    snprintf(calls[c].url, sizeof calls[c].url, "%s/_udf/%s", m[i].url, name);
    who[c++] = m[i].name;
  }
  qc_fanout(calls, c, 5000, NULL);
  json_t *nodes = json_object();
  for (size_t i = 0; i < c; i++) {
    json_t *a = calls[i].status == 200 ? json_loadb(calls[i].resp.data, calls[i].resp.len, 0, NULL)
                                       : NULL;
    json_int_t have = json_integer_value(json_object_get(a, "version"));
    json_t *one = json_pack("{s:s, s:I, s:s}", "status",
                            !a ? "missing" : have == (json_int_t)v ? "ready" : "stale", "version",
                            have, "tier", "interpreter");
    json_t *stats = json_object_get(a, "stats");
    if (stats) json_object_set(one, "stats", stats);
    json_object_set_new(nodes, who[i], one);
    json_decref(a);
    qc_call_fini(&calls[i]);
  }
  const char *manifest = json_string_value(json_object_get(meta, "manifest"));
  *out = json_pack("{s:s, s:I, s:O, s:O, s:o, s:o}", "name", name, "version", (json_int_t)v,
                   "sha256", json_object_get(meta, "sha256") ?: json_null(), "size",
                   json_object_get(meta, "size") ?: json_null(), "manifest",
                   manifest ? json_loads(manifest, 0, NULL) : json_null(), "nodes", nodes);
  json_decref(meta);
  return 200;
}

int qc_udf_list(qc_node *n, json_t **out) {
  char key[256];
  snprintf(key, sizeof key, "%sudf/", QC_PREFIX);
  qc_kvs k;
  qb_err err;
  if (qc_etcd_range(n->etcd, key, 0, &k, &err)) return code_error(out, &err);
  json_t *arr = json_array();
  size_t pl = strlen(key);
  for (size_t i = 0; i < k.n; i++) {
    const char *rest = k.kv[i].key + pl, *slash = strchr(rest, '/');
    if (!slash || strcmp(slash, "/current")) continue;
    json_array_append_new(arr, json_pack("{s:s%, s:I, s:b}", "name", rest,
                                         (size_t)(slash - rest), "version",
                                         (json_int_t)strtoll(k.kv[i].value, NULL, 10),
                                         "current", 1));
  }
  qc_kvs_fini(&k);
  *out = json_pack("{s:o}", "udfs", arr);
  return 200;
}

int qc_udf_versions(qc_node *n, const char *name, json_t **out) {
  uint32_t cur = 0;
  qb_err err;
  qb_code rc = qc_udf_current(n, name, &cur, &err);
  if (rc == QB_NOTFOUND) {
    char why[200];
    snprintf(why, sizeof why, "udf %s: no such udf", name);
    return fail(out, QB_NOTFOUND, why);
  }
  if (rc) return code_error(out, &err);
  char key[256];
  ukey(key, sizeof key, name, "/v/");
  qc_kvs k;
  if ((rc = qc_etcd_range(n->etcd, key, 0, &k, &err))) return code_error(out, &err);
  json_t *arr = json_array();
  for (size_t i = 0; i < k.n; i++) {
    json_t *v = json_loadb(k.kv[i].value, k.kv[i].value_len, 0, NULL);
    json_int_t ver = json_integer_value(json_object_get(v, "version"));
    const char *mt = json_string_value(json_object_get(v, "manifest"));
    json_t *m = mt ? json_loads(mt, 0, NULL) : NULL;
    char label[16];
    snprintf(label, sizeof label, "v%lld", (long long)ver);
    const char *kind = json_string_value(json_object_get(m, "kind"));
    const char *exp = json_string_value(json_object_get(m, "export"));
    json_t *row = json_pack("{s:s, s:I, s:s, s:b, s:O, s:O, s:s, s:s, s:O}", "name", name,
                            "version", ver, "version_label", label, "current",
                            ver == (json_int_t)cur, "sha256",
                            json_object_get(v, "sha256") ?: json_null(), "size",
                            json_object_get(v, "size") ?: json_null(), "kind", kind ? kind : "",
                            "export", exp ? exp : name, "created_ms",
                            json_object_get(v, "created_ms") ?: json_null());
    json_decref(m);
    json_decref(v);
    if (!row) continue;
    /* in version order (the keys sort as text: v/10 before v/2) */
    size_t at = json_array_size(arr);
    while (at && json_integer_value(json_object_get(json_array_get(arr, at - 1), "version")) > ver)
      at--;
    json_array_insert_new(arr, at, row);
  }
  qc_kvs_fini(&k);
  *out = json_pack("{s:s, s:I, s:o}", "name", name, "current", (json_int_t)cur, "versions", arr);
  return 200;
}

int qc_udf_test(qc_node *n, const char *name, uint32_t version, const char *body, size_t len,
                json_t **out) {
  qb_err err;
  if (!version) {
    qb_code rc = qc_udf_current(n, name, &version, &err);
    if (rc == QB_NOTFOUND) {
      char why[200];
      snprintf(why, sizeof why, "udf %s: no such udf", name);
      return fail(out, QB_NOTFOUND, why);
    }
    if (rc) return code_error(out, &err);
  }
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256), d;
  if (nm > 256) nm = 256;
  for (d = 0; d < nm && !m[d].data; d++) {}
  if (d == nm) return fail(out, QB_UNAVAILABLE, "no live data node to run the test on");
  /* the data node installs the version from etcd (if it lacks it), then runs it */
  qc_call c[2];
  memset(c, 0, sizeof c);
  char sync[64];
  snprintf(sync, sizeof sync, "{\"version\":%u}", version);
  c[0].method = "POST";
  snprintf(c[0].url, sizeof c[0].url, "%s/_internal/udf/%s/_sync", m[d].url, name);
  c[0].body = sync;
  c[0].len = strlen(sync);
  qc_fanout(&c[0], 1, 0, NULL);
  int st;
  if (c[0].status != 200) {
    json_t *a = c[0].status ? json_loadb(c[0].resp.data, c[0].resp.len, 0, NULL) : NULL;
    st = a ? c[0].status : fail(out, QB_UNAVAILABLE, c[0].error[0] ? c[0].error : "no answer");
    if (a) *out = a;
    qc_call_fini(&c[0]);
    return st;
  }
  qc_call_fini(&c[0]);
  c[1].method = "POST";
  snprintf(c[1].url, sizeof c[1].url, "%s/_udf/%s/_test?version=%u", m[d].url, name, version);
  c[1].body = body ? body : "";
  c[1].len = body ? len : 0;
  qc_fanout(&c[1], 1, 0, NULL);
  json_t *a = c[1].status ? json_loadb(c[1].resp.data ? c[1].resp.data : "", c[1].resp.len, 0,
                                       NULL) : NULL;
  st = a ? c[1].status : fail(out, QB_UNAVAILABLE, c[1].error[0] ? c[1].error : "no JSON answer");
  if (a) {
    json_object_set_new(a, "node", json_string(m[d].name));
    *out = a;
  }
  qc_call_fini(&c[1]);
  return st;
}
