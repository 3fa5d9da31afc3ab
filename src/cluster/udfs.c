/* udfs.c: the UDF registry's cluster half, in etcd: store a version (chunked bytes, then one
** txn for its metadata and the current pointer), move the current pointer (rollback), remove
** a UDF; and a data node's side: install a version from etcd into its local registry (on a
** push, on a shard request pinning a version it lacks, and for every current UDF before it
** serves). Invariant: a version's metadata exists in etcd only once all its bytes do, and a
** data node installs bytes only when their SHA-256 is the one the metadata names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  qb_code rc = qc_udf_current(n, name, version, &e);
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
  for (size_t i = 0; i < chunks; i++) {
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
    qc_txn_op ops[2] = {{.key = vkey, .value = text, .len = strlen(text)},
                        {.key = ckey, .value = cur, .len = strlen(cur)}};
    rc = qc_etcd_txn(n->etcd, &absent, 1, ops, 2, NULL, err);
    free(text);
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
