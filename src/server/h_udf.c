/* h_udf.c: the UDF routes (DESIGN.md §6): deploy (multipart manifest + wasm, or a raw
** application/wasm body with manifest fields as query parameters), list, status, versions,
** rollback, delete and _test. The registry validates before it stores, so a rejected deploy
** leaves every version as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static json_t *info_json(const qu_version_info *v) {
  char label[16];
  snprintf(label, sizeof label, "v%u", v->version);
  return json_pack("{s:s, s:I, s:s, s:b, s:s, s:I, s:s, s:s, s:I}", "name", v->name, "version",
                   (json_int_t)v->version, "version_label", label, "current", v->current,
                   "sha256", v->sha256, "size", (json_int_t)v->size_bytes, "kind",
                   qu_kind_name(v->kind), "export", v->export_name, "created_ms",
                   (json_int_t)v->created_ms);
}

/* Manifest fields given as query parameters (raw deploys, or to override a multipart one). */
static int query_manifest(qs_req *r, json_t *m) {
  static const char *const keys[] = {"export", "kind", "returns", "description"};
  for (size_t i = 0; i < 4; i++) {
    const char *v = qs__arg(r, keys[i]);
    if (v) json_object_set_new(m, keys[i], json_string(v));
  }
  const char *params = qs__arg(r, "params");
  if (params) {
    json_error_t je;
    json_t *pj = json_loads(params, 0, &je);
    if (!json_is_array(pj)) {
      json_decref(pj);
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "query parameter [params] must be a JSON array of {name, type, ...}");
      return 0;
    }
    json_object_set_new(m, "params", pj);
  }
  return 1;
}

/* The uploaded native artifact for this node's architecture and its signature (multipart parts
** native-x86_64 / native-aarch64, signature-<arch> or signature). */
typedef struct native_parts {
  const uint8_t *art, *sig, *arch_sig;
  size_t art_len, sig_len, arch_sig_len;
} native_parts;

#if defined(__aarch64__)
#define NODE_ARCH "aarch64"
#else
#define NODE_ARCH "x86_64"
#endif

static void native_part(native_parts *np, const qs_part *p) {
  if (!strcmp(p->name, "native-" NODE_ARCH)) np->art = p->data, np->art_len = p->len;
  else if (!strcmp(p->name, "signature-" NODE_ARCH)) np->arch_sig = p->data, np->arch_sig_len = p->len;
  else if (!strcmp(p->name, "signature")) np->sig = p->data, np->sig_len = p->len;
}

/* Offer the artifact to the registry: it is used only when signed by a trusted key and made for
** this module and node; the outcome (or why not) shows in GET /_udf/{name}. */
static void offer_native(qs_req *r, const char *name, uint32_t version, const native_parts *np) {
  if (!np->art) return;
  const uint8_t *sig = np->arch_sig ? np->arch_sig : np->sig;
  size_t sig_len = np->arch_sig ? np->arch_sig_len : np->sig_len;
  qu_registry_offer_artifact(qc_node_registry(r->srv->node), name, version, np->art, np->art_len, sig, sig_len, NULL);
}

void qs__h_udf_put(qs_req *r) {
  const char *name = r->caps[0];
  uint64_t t0 = qb_now_ns();
  const uint8_t *wasm = (const uint8_t *)r->body;
  size_t wasm_len = r->body_len;
  json_t *manifest = NULL;
  native_parts np = {0};
  qb_arena arena;
  qb_arena_init(&arena);
  if (!strncasecmp(r->content_type, "multipart/form-data", 19)) {
    qs_part parts[QS_PARTS_MAX];
    size_t n = 0;
    qb_err err;
    if (qs__multipart_parse(r->content_type, (const uint8_t *)r->body, r->body_len, &arena, parts,
                            &n, &err)) {
      qs__reply_error(r, 400, "parsing_exception", "%s", err.msg);
      goto out;
    }
    wasm = NULL;
    for (size_t i = 0; i < n; i++) {
      for (size_t k = 0; k < i; k++) {
        if (!strcmp(parts[k].name, parts[i].name)) {
          qs__reply_error(r, 400, "illegal_argument_exception",
                          "multipart deploy has two [%.64s] parts", parts[i].name);
          goto out;
        }
      }
      if (!strcmp(parts[i].name, "wasm")) {
        wasm = parts[i].data;
        wasm_len = parts[i].len;
      } else if (!strcmp(parts[i].name, "manifest")) {
        json_error_t je;
        manifest = json_loadb((const char *)parts[i].data, parts[i].len, 0, &je);
        if (!json_is_object(manifest)) {
          qs__reply_code(r, QB_PARSE, "manifest part: %s",
                         manifest ? "must be a JSON object" : je.text);
          goto out;
        }
      }
      native_part(&np, &parts[i]); /* offered after the deploy (DESIGN §4) */
    }
    if (!wasm) {
      qs__reply_error(r, 400, "illegal_argument_exception", "multipart deploy has no [wasm] part");
      goto out;
    }
  }
  if (!wasm_len) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "deploy needs a WebAssembly module: a multipart [wasm] part or an "
                    "application/wasm body");
    goto out;
  }
  if (!manifest) manifest = json_object();
  if (!query_manifest(r, manifest)) goto out;
  json_t *given = json_object_get(manifest, "name");
  if (given && (!json_is_string(given) || strcmp(json_string_value(given), name))) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "manifest name [%s] does not match the URL's [%s]",
                    json_is_string(given) ? json_string_value(given) : "?", name);
    goto out;
  }
  json_object_set_new(manifest, "name", json_string(name));
  char *mtext = json_dumps(manifest, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  if (!mtext) {
    qs__reply_code(r, QB_NOMEM, "out of memory");
    goto out;
  }
  if (qc_node_routes(r->srv->node)) { /* a coordinator: etcd and every data node */
    json_t *res;
    int st = qc_udf_deploy(r->srv->node, name, mtext, strlen(mtext), wasm, wasm_len, &res);
    qs__json_free(mtext);
    qs__reply_cluster(r, st, res);
    goto out;
  }
  qu_version_info info;
  qb_err err;
  qb_code rc = qu_registry_deploy(qc_node_registry(r->srv->node), name, mtext, strlen(mtext), wasm, wasm_len, &info,
                                  &err);
  qs__json_free(mtext);
  if (rc) {
    qb_log(QB_INFO, "UDF deploy rejected: %s: %s", name, err.msg);
    qs__reply_err(r, &err);
    goto out;
  }
  offer_native(r, name, info.version, &np);
  /* Load the new version now, so the first search does not pay for it. */
  uint64_t t1 = qb_now_ns();
  qu_udf *u = NULL;
  const char *status = "ready";
  qu_tier_status ts = {0}; /* its `artifact`: what became of an uploaded one, in the answer too */
  if (qu_registry_acquire(qc_node_registry(r->srv->node), name, info.version, &u, &err) == QB_OK) {
    qu_udf_tier_status(u, &ts);
    qu_udf_release(u);
  } else status = "failed";
  double load_ms = (double)(qb_now_ns() - t1) / 1e6;
  json_t *j = info_json(&info);
  json_object_set_new(j, "acknowledged", json_true());
  json_object_set_new(j, "took", json_integer((json_int_t)((qb_now_ns() - t0) / 1000000u)));
  json_t *nj = json_pack("{s:s, s:s, s:f}", "status", status, "tier", "interpreter", "load_ms",
                         load_ms);
  if (ts.artifact[0]) json_object_set_new(nj, "artifact", json_string(ts.artifact));
  json_object_set_new(j, "nodes", json_pack("{s:o}", r->srv->node_name, nj));
  qb_buf mb;
  qb_buf_init(&mb);
  qu_version_info again;
  if (qu_registry_get(qc_node_registry(r->srv->node), name, info.version, &again, &mb, NULL, NULL) == QB_OK && mb.data)
    json_object_set_new(j, "manifest", json_loadb(mb.data, mb.len, 0, NULL));
  qb_buf_fini(&mb);
  qs__reply_json(r, 200, j);
out:
  json_decref(manifest);
  qb_arena_fini(&arena);
}

static int list_cb(void *ud, const qu_version_info *info) {
  json_array_append_new(ud, info_json(info));
  return 0;
}

void qs__h_udf_list(qs_req *r) {
  json_t *arr = json_array();
  qb_err err;
  if (qu_registry_list(qc_node_registry(r->srv->node), list_cb, arr, &err)) {
    json_decref(arr);
    return qs__reply_err(r, &err);
  }
  qs__reply_json(r, 200, json_pack("{s:o}", "udfs", arr));
}

/* "v3", "3" or 3 -> 3; 0 when not a version. */
static uint32_t parse_version(json_t *v) {
  if (json_is_integer(v)) {
    json_int_t n = json_integer_value(v);
    return n > 0 && n <= UINT32_MAX ? (uint32_t)n : 0;
  }
  if (!json_is_string(v)) return 0;
  const char *s = json_string_value(v);
  if (*s == 'v' || *s == 'V') s++;
  char *end;
  unsigned long n = strtoul(s, &end, 10);
  return (*s && !*end && n > 0 && n <= UINT32_MAX) ? (uint32_t)n : 0;
}

typedef struct stats_find {
  const char *name;
  json_t *out;
  const char *tier; /* static string */
} stats_find;

static void stats_cb(void *ud, const qu_stats *s) {
  stats_find *f = ud;
  if (strcmp(s->name, f->name)) return;
  uint64_t calls = 0, errors = 0, n = 0;
  double sum = 0;
  json_t *modes = json_object();
  for (int t = 0; t < QU_TIER_COUNT; t++) {
    calls += s->calls[t];
    errors += s->errors[t];
    n += s->hist_count[t];
    sum += s->hist_sum_seconds[t];
    json_object_set_new(modes, qu_tier_name((qu_tier)t),
                        json_pack("{s:I, s:I, s:I}", "calls", (json_int_t)s->calls[t], "errors",
                                  (json_int_t)s->errors[t], "blocks", (json_int_t)s->blocks[t]));
  }
  f->tier = qu_tier_name(s->mode);
  f->out = json_pack("{s:I, s:I, s:f, s:o, s:{s:I, s:I, s:I}}", "calls", (json_int_t)calls,
                     "errors", (json_int_t)errors, "avg_call_seconds", n ? sum / (double)n : 0.0,
                     "by_mode", modes, "memory", "module_bytes", (json_int_t)s->module_bytes,
                     "instance_bytes", (json_int_t)s->instance_bytes, "instances",
                     (json_int_t)s->instances);
}

/* This node's tier for VERSION of NAME (docs/rest-api.md): where its code comes from, the
** native tier's state, compile time and peak memory, cache hit, and why native code is not
** used. */
static json_t *node_tier_json(qu_registry *reg, const char *name, uint32_t version) {
  qu_tier_status st;
  qb_err err;
  if (qu_registry_tier_status(reg, name, version, &st, &err))
    return json_pack("{s:s, s:s}", "tier", "interpreter", "status", "ready");
  json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:b, s:i}", "tier", qu_origin_name(st.origin),
                        "status", "ready", "native", qu_native_state_name(st.state),
                        "compile_ms", st.compile_ms, "cache_hit", st.cache_hit,
                        "verified_blocks", (int)st.verified_blocks);
  json_object_set_new(o, "compile_memory_bytes", json_integer((json_int_t)st.compile_memory_bytes));
  if (st.reason[0]) json_object_set_new(o, "reason", json_string(st.reason));
  if (st.artifact[0]) json_object_set_new(o, "artifact", json_string(st.artifact));
  return o;
}

void qs__h_udf_get(qs_req *r) {
  const char *name = r->caps[0];
  qu_version_info info;
  qb_buf mb;
  qb_buf_init(&mb);
  qb_err err;
  uint32_t version = 0; /* ?version=vN shows a stored version; default: the current one */
  if (qs__arg(r, "version")) {
    json_t *v = json_string(qs__arg(r, "version"));
    version = parse_version(v);
    json_decref(v);
    if (!version)
      return qs__reply_error(r, 400, "illegal_argument_exception", "bad version [%.32s]",
                             qs__arg(r, "version"));
  }
  if (qu_registry_get(qc_node_registry(r->srv->node), name, version, &info, &mb, NULL, &err)) {
    qb_buf_fini(&mb);
    return qs__reply_err(r, &err);
  }
  json_t *j = info_json(&info);
  const char *desc = "";
  json_t *m = mb.data ? json_loadb(mb.data, mb.len, 0, NULL) : NULL;
  if (json_is_string(json_object_get(m, "description")))
    desc = json_string_value(json_object_get(m, "description"));
  json_object_set_new(j, "description", json_string(desc));
  stats_find f = {name, NULL, "interpreter"};
  qu_registry_stats(qc_node_registry(r->srv->node), stats_cb, &f);
  json_object_set_new(j, "tier", json_string(f.tier));
  json_object_set_new(j, "manifest", m ? m : json_object());
  json_object_set_new(j, "nodes", json_pack("{s:o}", r->srv->node_name,
                                            node_tier_json(qc_node_registry(r->srv->node), name, info.version)));
  json_object_set_new(j, "stats", f.out ? f.out : json_pack("{s:i, s:i}", "calls", 0, "errors", 0));
  qb_buf_fini(&mb);
  qs__reply_json(r, 200, j);
}

void qs__h_udf_versions(qs_req *r) {
  const char *name = r->caps[0];
  json_t *arr = json_array();
  qb_err err;
  if (qu_registry_versions(qc_node_registry(r->srv->node), name, list_cb, arr, &err)) {
    json_decref(arr);
    return qs__reply_err(r, &err);
  }
  json_int_t current = 0;
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (json_is_true(json_object_get(v, "current")))
      current = json_integer_value(json_object_get(v, "version"));
  }
  qs__reply_json(r, 200, json_pack("{s:s, s:I, s:o}", "name", name, "current", current,
                                   "versions", arr));
}

void qs__h_udf_rollback(qs_req *r) {
  const char *name = r->caps[0];
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_t *to = json_object_get(body, "to");
  if (!to) to = json_object_get(body, "version");
  uint32_t v = parse_version(to);
  json_decref(body);
  if (!v && qs__arg(r, "to")) {
    json_t *s = json_string(qs__arg(r, "to"));
    v = parse_version(s);
    json_decref(s);
  }
  if (!v) return qs__reply_error(r, 400, "illegal_argument_exception",
                                 "rollback needs {\"to\": \"vN\"} naming a stored version");
  qu_version_info before;
  qb_err err;
  if (qu_registry_get(qc_node_registry(r->srv->node), name, 0, &before, NULL, NULL, &err)) return qs__reply_err(r, &err);
  if (qu_registry_rollback(qc_node_registry(r->srv->node), name, v, &err)) return qs__reply_err(r, &err);
  qb_log(QB_INFO, "UDF rolled back: %s (v%u -> v%u)", name, before.version, v);
  qu_version_info info;
  if (qu_registry_get(qc_node_registry(r->srv->node), name, 0, &info, NULL, NULL, &err)) return qs__reply_err(r, &err);
  json_t *j = info_json(&info);
  json_object_set_new(j, "acknowledged", json_true());
  json_object_set_new(j, "previous", json_integer(before.version));
  qs__reply_json(r, 200, j);
}

void qs__h_udf_delete(qs_req *r) {
  const char *name = r->caps[0];
  qb_err err;
  /* the registry logs the one "UDF deleted" line */
  if (qu_registry_delete(qc_node_registry(r->srv->node), name, &err)) return qs__reply_err(r, &err);
  qs__reply_json(r, 200, json_pack("{s:b, s:s}", "acknowledged", 1, "name", name));
}

void qs__h_udf_test(qs_req *r) {
  const char *name = r->caps[0];
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) body = json_pack("{s:{}}", "args");
  uint32_t version = 0;
  if (qs__arg(r, "version")) {
    json_t *s = json_string(qs__arg(r, "version"));
    version = parse_version(s);
    json_decref(s);
  }
  qu_udf *u = NULL;
  qb_err err;
  if (qu_registry_acquire(qc_node_registry(r->srv->node), name, version, &u, &err)) {
    json_decref(body);
    return qs__reply_err(r, &err);
  }
  qb_buf res;
  qb_buf_init(&res);
  uint64_t t0 = qb_now_ns();
  qb_code rc = qu_udf_test(u, body, &res, &err);
  uint64_t ns = qb_now_ns() - t0;
  if (rc) {
    qs__reply_err(r, &err);
  } else {
    json_t *val = res.data ? json_loadb(res.data, res.len, JSON_DECODE_ANY, NULL) : NULL;
    char label[16];
    snprintf(label, sizeof label, "v%u", qu_udf_version(u));
    qs__reply_json(r, 200, json_pack("{s:s, s:I, s:s, s:o, s:f}", "name", name, "version",
                                     (json_int_t)qu_udf_version(u), "version_label", label,
                                     "result", val ? val : json_null(), "took_ms",
                                     (double)ns / 1e6));
  }
  qb_buf_fini(&res);
  qu_udf_release(u);
  json_decref(body);
}
