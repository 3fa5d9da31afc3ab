/* aot.c: offline (AOT) artifacts: a module's native code for a named target wrapped in the
** native-code container (artifact.c), as `qwasm compile` and `qctl udf compile` write them and a
** node loads them (qu_registry_offer_artifact). The object is for the target's generic CPU, so
** the container names no CPU features: it matches every node of that triple. */
#include "udf.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "jit.h"

const char *qu_aot_target(const char *name) {
  static const char *const known[] = {"x86_64-linux", "aarch64-linux"};
  for (size_t i = 0; name && i < QB_COUNTOF(known); i++)
    if (!strcmp(name, known[i])) return known[i];
  return NULL;
}

qb_code qu_aot_compile(const uint8_t *wasm, size_t len, const char *target, qb_buf *out,
                       qb_err *err) {
  const char *t = qu_aot_target(target);
  qu_native_ops ops;
  qw_engine *e = NULL;
  qw_module *m = NULL;
  uint8_t *obj = NULL;
  size_t olen = 0;
  qb_code rc;
  if (!t)
    return qb_fail(err, QB_INVAL, "unknown target \"%s\" (x86_64-linux or aarch64-linux)",
                   target ? target : "");
  if ((rc = qu_native_llvm(&ops, err))) return rc; /* the ABI version nodes check */
  if (sodium_init() < 0) return qb_fail(err, QB_INTERNAL, "libsodium failed to initialise");
  if ((rc = qw_engine_new(NULL, &e, err))) return rc;
  if ((rc = qw_module_load(e, wasm, len, &m, err))) goto out;
  if ((rc = qj_emit_object(m, t, NULL, &obj, &olen, err))) goto out;
  qu_artifact a;
  memset(&a, 0, sizeof a);
  a.abi_version = ops.abi_version;
  a.flags = QU_ARTIFACT_AOT;
  crypto_hash_sha256(a.module_sha256, wasm, len);
  snprintf(a.triple, sizeof a.triple, "%s", t);
  a.object = obj;
  a.object_len = olen;
  rc = qu_artifact_write(&a, out, err);
out:
  if (obj) qj_buffer_free(obj, olen);
  qw_module_free(m);
  qw_engine_free(e);
  return rc;
}
