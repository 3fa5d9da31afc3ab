/* h_internal.c: the data node's /_internal routes, called by coordinators (DESIGN §6): a
** shard's half of a search (with the coordinator's UDF pins), creating and deleting a shard
** (an index of the local catalog named "index~N"), and installing or removing a UDF version
** from etcd on a push. Documents reach shards through the ordinary routes under the shard's
** local name. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the cluster's shared secret ------------------------------------------------------------ */

qb_code qs__cluster_secret_open(qs_server *s, const qs_options *opt, qb_err *err) {
  const char *path = opt->cluster_secret_file;
  if (!path) {
    if (opt->role && opt->auth_file)
      return qb_fail(err, QB_INVAL, "a cluster node with --auth-file needs --cluster-secret-file "
                     "(the secret its nodes share for their internal calls, docs/cluster.md)");
    return QB_OK;
  }
  FILE *f = fopen(path, "rb");
  if (!f) return qb_fail(err, QB_INVAL, "cluster secret file %s: %s", path, strerror(errno));
  char *sec = qb_calloc(1, QS_CLUSTER_SECRET_MAX + 1);
  size_t n = sec ? fread(sec, 1, QS_CLUSTER_SECRET_MAX + 1, f) : 0;
  fclose(f);
  if (!sec) return qb_fail(err, QB_NOMEM, "out of memory");
  while (n && (sec[n - 1] == '\n' || sec[n - 1] == '\r' || sec[n - 1] == ' ' || sec[n - 1] == '\t'))
    sec[--n] = 0;
  const char *why = n > QS_CLUSTER_SECRET_MAX ? "is longer than 1024 bytes"
                    : n < 16                 ? "holds fewer than 16 characters"
                    : memchr(sec, 0, n) || strpbrk(sec, "\r\n") ? "holds a NUL byte or a line break"
                                                                 : NULL;
  if (why) {
    sodium_memzero(sec, QS_CLUSTER_SECRET_MAX + 1);
    qb_free(sec, QS_CLUSTER_SECRET_MAX + 1);
    return qb_fail(err, QB_INVAL, "cluster secret file %s %s", path, why);
  }
  s->cluster_secret = sec;
  qc_fanout_secret(sec);
  return QB_OK;
}

void qs__cluster_secret_free(qs_server *s) {
  if (!s->cluster_secret) return;
  qc_fanout_secret(NULL);
  sodium_memzero(s->cluster_secret, QS_CLUSTER_SECRET_MAX + 1);
  qb_free(s->cluster_secret, QS_CLUSTER_SECRET_MAX + 1);
  s->cluster_secret = NULL;
}

int qs__cluster_auth(qs_req *r) {
  const char *sec = r->srv->cluster_secret;
  int internal = !strncmp(qs__routes[r->route].pattern, "/_internal/", 11);
  if (sec) {
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, QC_SECRET_HEADER);
    size_t n = strlen(sec);
    if (h && strlen(h) == n && !sodium_memcmp(h, sec, n)) return 1;
  }
  if (internal && (sec || r->srv->auth)) {
    qs__reply_error(r, 401, "security_exception",
                    "[%s %s] is an internal route of the cluster: it needs the cluster's secret "
                    "(" QC_SECRET_HEADER ")", r->method, qs__routes[r->route].pattern);
    return 0;
  }
  return -1;
}

/* Only a data node serves /_internal (the embedded default and a coordinator hold no shards). */
static int data_node(qs_req *r) {
  if (qc_node_role(r->srv->node) & QC_DATA) return 1;
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "[%s %s] is a data node's internal route and this node is not one", r->method,
                  r->path);
  return 0;
}

void qs__h_i_search(qs_req *r) {
  if (!data_node(r)) return;
  json_t *out;
  qb_err err;
  int wire;
  uint64_t t0 = qb_now_ns();
  if (qc_node_serve_shard(r->srv->node, r->body, r->body_len, &out, &wire, &err))
    return qs__reply_err(r, &err);
  qs__metrics_search(r->srv, qb_now_ns() - t0, !json_object_get(out, "failure"));
  if (qb_log_enabled(QB_DEBUG)) /* tagged with the coordinator's request id (X-Opaque-Id) */
    qb_log(QB_DEBUG, "shard search for a coordinator: %.3f ms%s",
           (double)(qb_now_ns() - t0) / 1e6, json_object_get(out, "failure") ? " (failed)" : "");
  if (!wire) return qs__reply_json(r, 200, out); /* text JSON: the fallback and debug form */
  qb_buf b;
  qb_buf_init(&b);
  /* the coordinator asked for the binary form (2: and splices raw _source) */
  qb_code rc = qc_wire_encode_raw(out, wire == 2, &b, &err);
  json_decref(out);
  if (rc) {
    qb_buf_fini(&b);
    return qs__reply_err(r, &err);
  }
  qs__reply_text(r, 200, "application/x-quidditch-partial", b.data, b.len);
  qb_buf_fini(&b);
}

/* The shard's local name from the captures; 0 after replying. */
static int local_name(qs_req *r, char out[256]) {
  char *end;
  unsigned long id = strtoul(r->caps[1], &end, 10);
  if (*end || id > 1023 || strchr(r->caps[0], '~')) {
    qs__reply_error(r, 400, "illegal_argument_exception", "bad shard [%s][%s]", r->caps[0],
                    r->caps[1]);
    return 0;
  }
  qc_shard_local_name(r->caps[0], (uint32_t)id, out);
  return 1;
}

void qs__h_i_shard_put(qs_req *r) {
  char name[256];
  if (!data_node(r) || !local_name(r, name)) return;
  qi_index *ix = NULL;
  qb_err err;
  qb_code rc = qi_catalog_create(qc_node_catalog(r->srv->node), name,
                                 r->body_len ? r->body : NULL, &ix, &err);
  if (rc == QB_CONFLICT) rc = QB_OK; /* already here: a retried create */
  if (rc == QB_INVAL) return qs__reply_error(r, 400, "mapper_parsing_exception", "%s", err.msg);
  if (rc) return qs__reply_err(r, &err);
  qi_index_release(ix);
  qb_log(QB_INFO, "shard created: %s", name);
  qs__reply_json(r, 200, json_pack("{s:b, s:s}", "acknowledged", 1, "shard", name));
}

void qs__h_i_shard_delete(qs_req *r) {
  char name[256];
  if (!data_node(r) || !local_name(r, name)) return;
  qb_err err;
  qb_code rc = qi_catalog_delete(qc_node_catalog(r->srv->node), name, &err);
  if (rc && rc != QB_NOTFOUND) return qs__reply_err(r, &err);
  if (!rc) qb_log(QB_INFO, "shard deleted: %s", name);
  qs__reply_json(r, 200, json_pack("{s:b}", "acknowledged", 1));
}

/* {"version": N, "current": bool}: install NAME vN from etcd and load it (the interpreter
** tier is then ready); answers with the time it took. */
void qs__h_i_udf_sync(qs_req *r) {
  if (!data_node(r)) return;
  uint64_t t0 = qb_now_ns();
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_int_t v = json_integer_value(json_object_get(body, "version"));
  int current = json_is_true(json_object_get(body, "current"));
  json_decref(body);
  if (v < 1 || v > UINT32_MAX)
    return qs__reply_error(r, 400, "illegal_argument_exception", "udf sync needs a version");
  qb_err err;
  qc_node *n = r->srv->node;
  if (!qc_node_etcd(n))
    return qs__reply_error(r, 400, "illegal_argument_exception", "this node is not in a cluster");
  qb_code rc = qc_udf_install(n, r->caps[0], (uint32_t)v, current, &err);
  qu_udf *u = NULL;
  if (!rc) rc = qu_registry_acquire(qc_node_registry(n), r->caps[0], (uint32_t)v, &u, &err);
  if (rc) return qs__reply_err(r, &err);
  qu_udf_release(u);
  double ms = (double)(qb_now_ns() - t0) / 1e6;
  qs__reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:s, s:f}", "node", qc_node_name(n), "udf",
                                   r->caps[0], "version", v, "status", "ready", "took_ms", ms));
}

void qs__h_i_udf_delete(qs_req *r) {
  if (!data_node(r)) return;
  qb_err err;
  qb_code rc = qu_registry_delete(qc_node_registry(r->srv->node), r->caps[0], &err);
  if (rc && rc != QB_NOTFOUND) return qs__reply_err(r, &err);
  qs__reply_json(r, 200, json_pack("{s:b}", "acknowledged", 1));
}
