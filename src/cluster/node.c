/* node.c: one node's handle: the stores under its data directory (the index catalog, which
** holds its local shards, and the UDF registry on one engine) and, in a cluster role, its
** etcd client and cluster view (meta.c). The server keeps this one handle instead of separate
** catalog/engine/registry fields, so the embedded default and the cluster roles are the same
** handler code over different nodes.
** Invariant: a node is fully open (every store, etcd reached) or not at all. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static qb_code mkdirs(const char *path, qb_err *err) {
  char tmp[1100];
  size_t n = strlen(path);
  if (n >= sizeof tmp) return qb_fail(err, QB_IO, "data directory path too long");
  memcpy(tmp, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == 0) {
      char c = tmp[i];
      tmp[i] = 0;
      if (mkdir(tmp, 0755) && errno != EEXIST)
        return qb_fail(err, QB_IO, "data directory %s: %s", tmp, strerror(errno));
      tmp[i] = c;
    }
  }
  return QB_OK;
}

qb_code qc_node_open(const qc_node_options *opt, qc_node **out, qb_err *err) {
  *out = NULL;
  if (!opt || !opt->data_dir) {
    if (opt) qu_compiler_free(opt->compiler);
    return qb_fail(err, QB_INVAL, "node: no data directory");
  }
  qc_node *n = qb_calloc(1, sizeof *n);
  if (!n) {
    qu_compiler_free(opt->compiler);
    return qb_fail(err, QB_NOMEM, "node: out of memory");
  }
  n->compiler = opt->compiler;
  snprintf(n->name, sizeof n->name, "%s", opt->name ? opt->name : "node-1");
  snprintf(n->data_dir, sizeof n->data_dir, "%s", opt->data_dir);
  n->role = opt->role;
  pthread_mutex_init(&n->mu, NULL);
  qc__repl_init(n);
  qb_code rc;
  if (n->role != QC_EMBEDDED && (rc = qc__meta_open(n, opt, err))) goto fail;
  if ((rc = mkdirs(n->data_dir, err))) goto fail;
  qi_options iopt = {0};
  iopt.sync_normal = opt->sync_normal ? 1 : 0;
  if ((rc = qi_catalog_open(n->data_dir, &iopt, &n->cat, err))) {
    qb_wrap(err, "data directory %s: ", n->data_dir);
    goto fail;
  }
  if ((rc = qw_engine_new(NULL, &n->engine, err))) goto fail;
  char regpath[1200];
  snprintf(regpath, sizeof regpath, "%s/udf", n->data_dir);
  if ((rc = mkdirs(regpath, err))) goto fail;
  snprintf(regpath, sizeof regpath, "%s/udf/registry.db", n->data_dir);
  qu_options uopt = {0};
  if (opt->udf) uopt = *opt->udf;
  n->udf_opts = uopt;
  n->udf_opts.compiler = NULL; /* a _test load stays on the interpreter */
  uopt.compiler = n->compiler;
  n->script_value_max = opt->script_value_max;
  n->script_response_max = opt->script_response_max;
  if ((rc = qu_registry_open(n->engine, regpath, &uopt, &n->reg, err))) {
    qb_wrap(err, "udf registry %s: ", regpath);
    goto fail;
  }
  qc__registry_init(n);
  *out = n;
  return QB_OK;
fail:
  qc_node_close(n);
  return rc;
}

void qc_node_close(qc_node *n) {
  if (!n) return;
  if (n->role != QC_EMBEDDED) qc__meta_close(n);
  qu_registry_close(n->reg);
  qu_compiler_free(n->compiler); /* after the registry (its versions), before the engine */
  if (n->engine) qw_engine_free(n->engine);
  qi_catalog_close(n->cat);
  qc__repl_free(n);
  pthread_mutex_destroy(&n->mu);
  qb_free(n, sizeof *n);
}

const char *qc_node_name(const qc_node *n) { return n->name; }
qi_catalog *qc_node_catalog(qc_node *n) { return n->cat; }
qu_registry *qc_node_registry(qc_node *n) { return n->reg; }
qu_compiler *qc_node_compiler(qc_node *n) { return n->compiler; }
