/* registry.c: the UDF registry behind one interface (qc_registry_ops), with two stores: the
** node's SQLite registry (qu_registry: the embedded default's source of truth) and etcd (a
** cluster's: udfs.c). Callers that need "which version is current", "store the next
** version", "roll back", "remove" use the interface and work on either.
** Invariant: both implementations make a stored version current in the same step, so a
** reader never sees a current version whose bytes are not stored. */
#include <string.h>

#include "internal.h"

/* ---- SQLite (qu_registry) ---------------------------------------------------------------- */

static qb_code sq_current(void *impl, const char *name, uint32_t *version, qb_err *err) {
  qu_version_info info;
  qb_code rc = qu_registry_get(impl, name, 0, &info, NULL, NULL, err);
  *version = rc ? 0 : info.version;
  return rc;
}

static qb_code sq_store(void *impl, const char *name, const char *manifest, const uint8_t *wasm,
                        size_t len, const char *sha256, uint32_t *version, qb_err *err) {
  qu_version_info info;
  qb_code rc = qu_registry_deploy(impl, name, manifest, strlen(manifest), wasm, len, &info, err);
  if (!rc && sha256 && strcmp(info.sha256, sha256))
    return qb_fail(err, QB_INTERNAL, "udf %s v%u: stored SHA-256 %s is not %s", name,
                   info.version, info.sha256, sha256);
  if (!rc) *version = info.version;
  return rc;
}

static qb_code sq_set_current(void *impl, const char *name, uint32_t version, qb_err *err) {
  return qu_registry_rollback(impl, name, version, err);
}

static qb_code sq_remove(void *impl, const char *name, qb_err *err) {
  return qu_registry_delete(impl, name, err);
}

static const qc_registry_ops sqlite_ops = {"sqlite", sq_current, sq_store, sq_set_current,
                                           sq_remove};

/* ---- etcd (udfs.c) ------------------------------------------------------------------------ */

static qb_code et_current(void *impl, const char *name, uint32_t *version, qb_err *err) {
  return qc_udf_current(impl, name, version, err);
}

static qb_code et_store(void *impl, const char *name, const char *manifest, const uint8_t *wasm,
                        size_t len, const char *sha256, uint32_t *version, qb_err *err) {
  return qc_udf_store(impl, name, manifest, wasm, len, sha256, version, err);
}

static qb_code et_set_current(void *impl, const char *name, uint32_t version, qb_err *err) {
  return qc_udf_set_current(impl, name, version, err);
}

static qb_code et_remove(void *impl, const char *name, qb_err *err) {
  return qc_udf_remove(impl, name, err);
}

static const qc_registry_ops etcd_ops = {"etcd", et_current, et_store, et_set_current,
                                         et_remove};

void qc__registry_init(qc_node *n) {
  if (n->etcd) n->udfs = (qc_registry){&etcd_ops, n};
  else n->udfs = (qc_registry){&sqlite_ops, n->reg};
}

const qc_registry *qc_node_udf_registry(qc_node *n) { return &n->udfs; }
