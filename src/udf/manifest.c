/* manifest.c: manifest JSON -> qu_manifest (parse + validate), completion from an export's
** signature, the deploy-time checks against a module, and canonical JSON out. Nothing here
** runs WebAssembly. Invariant: a qu_manifest that exists has passed every rule of
** qu_manifest_parse, so later layers never re-check names, types or kinds. */
#include "udf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const kind_names[] = {"score", "filter", "transform", "metric"};
static const char *const type_names[] = {"i32", "i64", "f32", "f64", "string"};

const char *qu_kind_name(qu_kind k) {
  return (unsigned)k < QB_COUNTOF(kind_names) ? kind_names[k] : "?";
}
const char *qu_type_name(qu_type t) {
  return (unsigned)t < QB_COUNTOF(type_names) ? type_names[t] : "?";
}

int qu_name_valid(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

qw_type qu__wasm_type(qu_type t) {
  switch (t) {
  case QU_I64: return QW_I64;
  case QU_F32: return QW_F32;
  case QU_F64: return QW_F64;
  default: return QW_I32;
  }
}

static int parse_type(const char *s, qu_type *out) {
  for (unsigned i = 0; i < QB_COUNTOF(type_names); i++)
    if (!strcmp(s, type_names[i])) return *out = (qu_type)i, 1;
  return 0;
}

qb_code qu__literal(const json_t *j, qu_type t, int64_t *i, double *f, const char **s,
                    size_t *slen, qb_err *err) {
  *i = 0;
  *f = 0;
  if (t == QU_STRING) {
    if (!json_is_string(j)) return qb_fail(err, QB_INVAL, "expected a string");
    *s = json_string_value(j);
    *slen = json_string_length(j);
    return QB_OK;
  }
  double d;
  if (json_is_integer(j)) d = (double)json_integer_value(j);
  else if (json_is_real(j)) d = json_real_value(j);
  else if (json_is_boolean(j)) d = json_is_true(j);
  else return qb_fail(err, QB_INVAL, "expected a number (%s)", qu_type_name(t));
  if (t == QU_F32 || t == QU_F64) {
    *f = d;
    return QB_OK;
  }
  if (json_is_integer(j)) {
    *i = json_integer_value(j);
  } else {
    if (d != trunc(d) || !(d >= -9.2233720368547758e18 && d < 9.2233720368547758e18))
      return qb_fail(err, QB_INVAL, "expected an integer (%s), got %g", qu_type_name(t), d);
    *i = (int64_t)d;
  }
  if (t == QU_I32 && (*i < INT32_MIN || *i > INT32_MAX))
    return qb_fail(err, QB_INVAL, "%lld does not fit in i32", (long long)*i);
  *f = (double)*i;
  return QB_OK;
}

/* A default/missing value that is a source (not a literal) for a param: checked in bind.c.
** Here: strings starting with these are sources, so they need no type check. */
static int is_source(const json_t *j) {
  if (json_is_object(j)) return 1;
  if (!json_is_string(j)) return 0;
  const char *s = json_string_value(j);
  return !strcmp(s, "_score") || !strncmp(s, "_source.", 8) || !strncmp(s, "_context.", 9) ||
         !strncmp(s, "doc[", 4);
}

static char *dup_str(qb_arena *a, const char *s) { return qb_arena_strdup(a, s ? s : ""); }

void qu_manifest_free(qu_manifest *m) {
  if (!m) return;
  for (uint32_t i = 0; i < m->nparams; i++) {
    if (m->dflt_json) json_decref(m->dflt_json[i]);
    if (m->missing_json) json_decref(m->missing_json[i]);
  }
  qb_arena arena = m->arena;
  qb_arena_fini(&arena);
}

/* The manifest's scalar fields (name, export, kind, description, returns) from ROOT into M */
static qb_code parse_scalars(const json_t *root, qu_manifest *m, qb_err *err) {
#define NOMEM() return qb_fail(err, QB_NOMEM, "manifest: out of memory")
#define BAD(...) return qb_fail(err, QB_INVAL, __VA_ARGS__)
  json_t *jname = json_object_get(root, "name");
  if (!jname) BAD("manifest: name: missing");
  if (!json_is_string(jname)) BAD("manifest: name: expected a string");
  if (!qu_name_valid(json_string_value(jname)))
    BAD("manifest: name: \"%.64s\" is not a valid udf name (1-64 of A-Z a-z 0-9 _ . -)",
        json_string_value(jname));
  if (!(m->name = dup_str(&m->arena, json_string_value(jname)))) NOMEM();

  json_t *jexp = json_object_get(root, "export");
  if (jexp && !json_is_string(jexp)) BAD("manifest: export: expected a string");
  const char *exp = jexp ? json_string_value(jexp) : m->name;
  if (!*exp || strlen(exp) > 64) BAD("manifest: export: must be 1-64 characters");
  if (!(m->export_name = dup_str(&m->arena, exp))) NOMEM();

  json_t *jkind = json_object_get(root, "kind");
  m->kind = QU_SCORE;
  if (jkind) {
    unsigned k;
    if (!json_is_string(jkind)) BAD("manifest: kind: expected a string");
    for (k = 0; k < QB_COUNTOF(kind_names); k++)
      if (!strcmp(json_string_value(jkind), kind_names[k])) break;
    if (k == QB_COUNTOF(kind_names))
      BAD("manifest: kind: unknown kind \"%.64s\" (expected score, filter, transform or "
          "metric)", json_string_value(jkind));
    m->kind = (qu_kind)k;
  }

  json_t *jdesc = json_object_get(root, "description");
  if (jdesc && !json_is_string(jdesc)) BAD("manifest: description: expected a string");
  if (!(m->description = dup_str(&m->arena, jdesc ? json_string_value(jdesc) : ""))) NOMEM();

  json_t *jret = json_object_get(root, "returns");
  if (!jret) BAD("manifest: returns: missing");
  if (!json_is_string(jret) || !parse_type(json_string_value(jret), &m->returns))
    BAD("manifest: returns: unknown type %s%.64s%s (expected i32, i64, f32, f64 or string)",
        json_is_string(jret) ? "\"" : "", json_is_string(jret) ? json_string_value(jret) : "?",
        json_is_string(jret) ? "\"" : "");
  if (m->kind == QU_FILTER && m->returns != QU_I32)
    BAD("manifest: returns: a filter returns i32 (non-zero keeps the document), not %s",
        qu_type_name(m->returns));
  if (m->returns == QU_STRING && m->kind != QU_TRANSFORM)
    BAD("manifest: returns: only a transform may return a string (kind is %s)",
        qu_kind_name(m->kind));
  return QB_OK;
#undef NOMEM
#undef BAD
}

static qb_code from_json(const json_t *root, qu_manifest **out, qb_err *err) {
  qb_arena a;
  qu_manifest *m;
  qb_code rc;
  const char *key;
  json_t *v;
  *out = NULL;
  if (!json_is_object(root)) return qb_fail(err, QB_INVAL, "manifest: expected a JSON object");
  json_object_foreach((json_t *)root, key, v) {
    if (strcmp(key, "name") && strcmp(key, "export") && strcmp(key, "kind") &&
        strcmp(key, "description") && strcmp(key, "params") && strcmp(key, "returns") &&
        strcmp(key, "lang"))
      return qb_fail(err, QB_INVAL,
                     "manifest: unknown field \"%.64s\" (expected name, export, kind, "
                     "description, params, returns)", key);
  }
  qb_arena_init(&a);
  if (!(m = qb_arena_alloc(&a, sizeof *m))) {
    qb_arena_fini(&a);
    return qb_fail(err, QB_NOMEM, "manifest: out of memory");
  }
  m->arena = a;
#define NOMEM()                                                                                 \
  do {                                                                                          \
    rc = qb_fail(err, QB_NOMEM, "manifest: out of memory");                                     \
    goto fail;                                                                                  \
  } while (0)
#define BAD(...)                                                                                \
  do {                                                                                          \
    rc = qb_fail(err, QB_INVAL, __VA_ARGS__);                                                   \
    goto fail;                                                                                  \
  } while (0)

  if ((rc = parse_scalars(root, m, err))) goto fail;

  json_t *jparams = json_object_get(root, "params");
  if (jparams && !json_is_array(jparams)) BAD("manifest: params: expected an array");
  size_t np = jparams ? json_array_size(jparams) : 0;
  if (np > 64) BAD("manifest: params: %zu params (at most 64)", np);
  m->nparams = (uint32_t)np;
  if (np) {
    if (!(m->params = qb_arena_array(&m->arena, np, sizeof *m->params)) ||
        !(m->dflt_json = qb_arena_array(&m->arena, np, sizeof(json_t *))) ||
        !(m->missing_json = qb_arena_array(&m->arena, np, sizeof(json_t *))))
      NOMEM();
  }
  for (size_t i = 0; i < np; i++) {
    json_t *jp = json_array_get(jparams, i), *jn, *jt;
    qu_param *p = &m->params[i];
    if (!json_is_object(jp)) BAD("manifest: params[%zu]: expected an object", i);
    json_object_foreach(jp, key, v) {
      if (strcmp(key, "name") && strcmp(key, "type") && strcmp(key, "default") &&
          strcmp(key, "missing") && strcmp(key, "description"))
        BAD("manifest: params[%zu]: unknown field \"%.64s\" (expected name, type, default, "
            "missing)", i, key);
    }
    jn = json_object_get(jp, "name");
    if (!json_is_string(jn) || !json_string_length(jn) || json_string_length(jn) > 64)
      BAD("manifest: params[%zu].name: expected a string of 1-64 characters", i);
    if (!(p->name = dup_str(&m->arena, json_string_value(jn)))) NOMEM();
    for (size_t k = 0; k < i; k++)
      if (!strcmp(m->params[k].name, p->name))
        BAD("manifest: params[%zu].name: duplicate param \"%.64s\"", i, p->name);
    jt = json_object_get(jp, "type");
    if (!jt) BAD("manifest: params[%zu].type: missing", i);
    if (!json_is_string(jt) || !parse_type(json_string_value(jt), &p->type))
      BAD("manifest: params[%zu].type: unknown type %s%.64s%s (expected i32, i64, f32, f64 or "
          "string)", i, json_is_string(jt) ? "\"" : "",
          json_is_string(jt) ? json_string_value(jt) : "?", json_is_string(jt) ? "\"" : "");
    m->nslots += p->type == QU_STRING ? 2 : 1;
    for (int w = 0; w < 2; w++) {
      const char *what = w ? "missing" : "default";
      json_t *jv = json_object_get(jp, what);
      if (!jv) continue;
      if (json_is_null(jv)) BAD("manifest: params[%zu].%s: null is not a value", i, what);
      if (w && is_source(jv))
        BAD("manifest: params[%zu].missing: must be a literal %s", i, qu_type_name(p->type));
      if (!is_source(jv)) {
        int64_t iv;
        double fv;
        const char *sv;
        size_t sl;
        if ((rc = qu__literal(jv, p->type, &iv, &fv, &sv, &sl, err))) {
          qb_wrap(err, "manifest: params[%zu].%s: ", i, what);
          goto fail;
        }
      }
      char *text = json_dumps(jv, JSON_ENCODE_ANY | JSON_COMPACT);
      if (!text) NOMEM();
      const char *copy = qb_arena_strdup(&m->arena, text);
      qu__json_free(text);
      if (!copy) NOMEM();
      if (w) {
        p->missing = copy;
        m->missing_json[i] = json_incref(jv);
      } else {
        p->dflt = copy;
        m->dflt_json[i] = json_incref(jv);
      }
    }
  }
  *out = m;
  return QB_OK;
fail:
  qu_manifest_free(m);
  return rc;
#undef NOMEM
#undef BAD
}

qb_code qu_manifest_parse(const char *json, size_t len, qu_manifest **out, qb_err *err) {
  json_error_t jerr;
  uint64_t failed = qb_alloc_failures(); /* jansson may report running out as bad JSON */
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  *out = NULL;
  if (!root && qb_alloc_failures() != failed)
    return qb_fail(err, QB_NOMEM, "manifest: out of memory parsing JSON");
  if (!root)
    return qb_fail(err, QB_INVAL, "manifest: invalid JSON at line %d column %d: %s", jerr.line,
                   jerr.column, jerr.text);
  qb_code rc = from_json(root, out, err);
  json_decref(root);
  return rc;
}

const char *qu_manifest_name(const qu_manifest *m) { return m->name; }
const char *qu_manifest_export(const qu_manifest *m) { return m->export_name; }
const char *qu_manifest_description(const qu_manifest *m) { return m->description; }
qu_kind qu_manifest_kind(const qu_manifest *m) { return m->kind; }
qu_type qu_manifest_returns(const qu_manifest *m) { return m->returns; }
uint32_t qu_manifest_nparams(const qu_manifest *m) { return m->nparams; }
const qu_param *qu_manifest_param(const qu_manifest *m, uint32_t i) {
  return i < m->nparams ? &m->params[i] : NULL;
}

static json_t *to_json(const qu_manifest *m) {
  json_t *root = json_object(), *params = json_array();
  if (!root || !params) goto fail;
  if (json_object_set_new(root, "name", json_string(m->name)) ||
      json_object_set_new(root, "export", json_string(m->export_name)) ||
      json_object_set_new(root, "kind", json_string(qu_kind_name(m->kind))) ||
      json_object_set_new(root, "description", json_string(m->description)))
    goto fail;
  for (uint32_t i = 0; i < m->nparams; i++) {
    const qu_param *p = &m->params[i];
    json_t *jp = json_object();
    if (!jp || json_array_append_new(params, jp) ||
        json_object_set_new(jp, "name", json_string(p->name)) ||
        json_object_set_new(jp, "type", json_string(qu_type_name(p->type))))
      goto fail;
    if (m->dflt_json[i] && json_object_set(jp, "default", m->dflt_json[i])) goto fail;
    if (m->missing_json[i] && json_object_set(jp, "missing", m->missing_json[i])) goto fail;
  }
  if (json_object_set(root, "params", params) ||
      json_object_set_new(root, "returns", json_string(qu_type_name(m->returns))))
    goto fail;
  json_decref(params);
  return root;
fail:
  json_decref(params);
  json_decref(root);
  return NULL;
}

qb_code qu_manifest_json(const qu_manifest *m, qb_buf *out) {
  json_t *root = to_json(m);
  char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  if (!text) return QB_NOMEM;
  qb_code rc = qb_buf_puts(out, text);
  qu__json_free(text);
  return rc;
}

qb_code qu__manifest_clone(const qu_manifest *m, qu_manifest **out, qb_err *err) {
  json_t *root = to_json(m);
  *out = NULL;
  if (!root) return qb_fail(err, QB_NOMEM, "manifest: out of memory");
  qb_code rc = from_json(root, out, err);
  json_decref(root);
  return rc;
}

/* ---- the module side ------------------------------------------------------------------------ */

static int find_export(const qw_module *mod, const char *name, qw_port *out) {
  uint32_t n = qw_module_export_count(mod);
  for (uint32_t i = 0; i < n; i++) {
    qw_module_export(mod, i, out);
    if (!strcmp(out->name, name)) return 1;
  }
  return 0;
}

/* The error for an export NAME the module lacks (or that is not a function), naming the
** functions it does export, so a typo is one glance away. */
static qb_code export_error(const qw_module *mod, const char *name, qb_err *err) {
  qw_port p;
  if (find_export(mod, name, &p))
    return qb_fail(err, QB_INVALID, "export %.64s: not a function", name);
  char list[256] = "";
  size_t len = 0;
  uint32_t n = qw_module_export_count(mod), shown = 0;
  for (uint32_t i = 0; i < n && len < sizeof list - 1; i++) {
    qw_module_export(mod, i, &p);
    if (p.kind != QW_KFUNC) continue;
    int w = snprintf(list + len, sizeof list - len, "%s%.64s", shown++ ? ", " : "", p.name);
    len += w > 0 ? (size_t)w : 0;
  }
  if (len >= sizeof list - 1) memcpy(list + sizeof list - 4, "...", 4);
  return qb_fail(err, QB_INVALID, "export %.64s: not found in the module (its functions: %s)",
                 name, shown ? list : "none");
}

static int sig_is(const qw_sig *s, const char *params, const char *results) {
  /* PARAMS/RESULTS: strings of 'i' (i32), 'I' (i64), 'f' (f32), 'F' (f64) */
  size_t np = strlen(params), nr = strlen(results);
  if (s->nparams != np || s->nresults != nr) return 0;
  for (size_t k = 0; k < np + nr; k++) {
    char c = k < np ? params[k] : results[k - np];
    uint8_t t = k < np ? s->params[k] : s->results[k - np];
    uint8_t want = c == 'i' ? QW_I32 : c == 'I' ? QW_I64 : c == 'f' ? QW_F32 : QW_F64;
    if (t != want) return 0;
  }
  return 1;
}

static const char *wtype(uint8_t t) { return qw_type_name((qw_type)t); }

qb_code qu_manifest_check(const qu_manifest *m, const qw_module *mod, qb_err *err) {
  qw_port p;
  uint32_t nimp = qw_module_import_count(mod);
  for (uint32_t i = 0; i < nimp; i++) {
    qw_module_import(mod, i, &p);
    if (p.kind != QW_KFUNC || strcmp(p.module, "wasi_snapshot_preview1"))
      return qb_fail(err, QB_INVALID,
                     "import %.64s.%.64s: a udf may import only wasi_snapshot_preview1 "
                     "functions", p.module, p.name);
  }
  if (!find_export(mod, m->export_name, &p) || p.kind != QW_KFUNC)
    return export_error(mod, m->export_name, err);
  uint32_t slot = 0;
  for (uint32_t i = 0; i < m->nparams; i++) {
    const qu_param *q = &m->params[i];
    uint32_t need = q->type == QU_STRING ? 2 : 1;
    for (uint32_t k = 0; k < need; k++, slot++) {
      uint8_t want = qu__wasm_type(q->type);
      if (slot >= p.sig.nparams)
        return qb_fail(err, QB_INVALID,
                       "export %.64s: the manifest has %u wasm params (a string counts two), "
                       "the module %u", m->export_name, m->nslots, p.sig.nparams);
      if (p.sig.params[slot] != want)
        return qb_fail(err, QB_INVALID,
                       "export %.64s: param %u (%.64s) is %s in the manifest but %s in the "
                       "module", m->export_name, i, q->name,
                       q->type == QU_STRING ? "string (i32 ptr, i32 len)" : qu_type_name(q->type),
                       wtype(p.sig.params[slot]));
    }
  }
  if (slot != p.sig.nparams)
    return qb_fail(err, QB_INVALID,
                   "export %.64s: the manifest has %u wasm params (a string counts two), the "
                   "module %u", m->export_name, slot, p.sig.nparams);
  uint8_t want_ret = m->returns == QU_STRING ? QW_I64 : qu__wasm_type(m->returns);
  if (p.sig.nresults != 1 || p.sig.results[0] != want_ret)
    return qb_fail(err, QB_INVALID,
                   "export %.64s: returns %s in the manifest but %s%s in the module",
                   m->export_name,
                   m->returns == QU_STRING ? "string (i64 ptr << 32 | len)"
                                           : qu_type_name(m->returns),
                   p.sig.nresults == 1 ? wtype(p.sig.results[0]) : "",
                   p.sig.nresults == 1 ? "" : p.sig.nresults ? "several results" : "nothing");
  int has_string = m->returns == QU_STRING;
  for (uint32_t i = 0; i < m->nparams; i++) has_string |= m->params[i].type == QU_STRING;
  if (find_export(mod, "_start", &p))
    return qb_fail(err, QB_INVALID,
                   "export _start: a udf is a library, not a WASI command (build with "
                   "-Wl,--no-entry or -mexec-model=reactor)");
  if (find_export(mod, "_initialize", &p) && (p.kind != QW_KFUNC || !sig_is(&p.sig, "", "")))
    return qb_fail(err, QB_INVALID, "export _initialize: must be a function () -> ()");
  int has_alloc = find_export(mod, "qd_alloc", &p);
  if (has_alloc && (p.kind != QW_KFUNC || !sig_is(&p.sig, "i", "i")))
    return qb_fail(err, QB_INVALID, "export qd_alloc: must be a function (i32) -> i32");
  if (has_string && !has_alloc)
    return qb_fail(err, QB_INVALID,
                   "export qd_alloc: missing (a udf with string params must export "
                   "qd_alloc(len) -> ptr, as the SDKs do)");
  if (has_string && !(find_export(mod, "memory", &p) && p.kind == QW_KMEMORY))
    return qb_fail(err, QB_INVALID,
                   "export memory: missing (a udf with strings must export its memory)");
  if (find_export(mod, "qd_reset", &p) && (p.kind != QW_KFUNC || !sig_is(&p.sig, "", "")))
    return qb_fail(err, QB_INVALID, "export qd_reset: must be a function () -> ()");
  if (find_export(mod, "qd_abi_version", &p) && (p.kind != QW_KFUNC || !sig_is(&p.sig, "", "i")))
    return qb_fail(err, QB_INVALID, "export qd_abi_version: must be a function () -> i32");
  char bname[80];
  snprintf(bname, sizeof bname, "%s__batch", m->export_name);
  if (find_export(mod, bname, &p)) {
    if (p.kind != QW_KFUNC || !sig_is(&p.sig, "iii", ""))
      return qb_fail(err, QB_INVALID,
                     "export %.70s: the batch form must be (i32 n, i32 args, i32 out) -> ()",
                     bname);
    if (!has_alloc)
      return qb_fail(err, QB_INVALID,
                     "export %.70s: the batch form needs qd_alloc to pass its columns", bname);
    if (!(find_export(mod, "memory", &p) && p.kind == QW_KMEMORY))
      return qb_fail(err, QB_INVALID,
                     "export memory: missing (a udf with a batch form must export its memory)");
  }
  return QB_OK;
}

/* ---- completion from the signature ----------------------------------------------------------- */

static qu_type from_wasm(uint8_t t, int *ok) {
  *ok = 1;
  switch (t) {
  case QW_I32: return QU_I32;
  case QW_I64: return QU_I64;
  case QW_F32: return QU_F32;
  case QW_F64: return QU_F64;
  default: *ok = 0; return QU_I32;
  }
}

qb_code qu_manifest_complete(const char *given, size_t len, const char *name,
                             const qw_module *mod, qu_manifest **out, qb_err *err) {
  json_error_t jerr;
  json_t *root;
  qb_code rc;
  qw_port p;
  *out = NULL;
  if (given && len) {
    uint64_t failed = qb_alloc_failures();
    root = json_loadb(given, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && qb_alloc_failures() != failed)
      return qb_fail(err, QB_NOMEM, "manifest: out of memory parsing JSON");
    if (!root)
      return qb_fail(err, QB_INVAL, "manifest: invalid JSON at line %d column %d: %s",
                     jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
      json_decref(root);
      return qb_fail(err, QB_INVAL, "manifest: expected a JSON object");
    }
  } else if (!(root = json_object())) {
    return qb_fail(err, QB_NOMEM, "manifest: out of memory");
  }
#define BAD(code, ...)                                                                          \
  do {                                                                                          \
    rc = qb_fail(err, code, __VA_ARGS__);                                                       \
    goto done;                                                                                  \
  } while (0)
  if (name && json_object_set_new(root, "name", json_string(name)))
    BAD(QB_NOMEM, "manifest: out of memory");
  json_t *jname = json_object_get(root, "name");
  if (!jname) BAD(QB_INVAL, "manifest: name: missing");
  json_t *jexp = json_object_get(root, "export");
  const char *exp = json_is_string(jexp) ? json_string_value(jexp)
                    : json_is_string(jname) ? json_string_value(jname) : NULL;
  /* a missing export is the error to report, not the manifest fields it would have filled */
  if (exp && !(find_export(mod, exp, &p) && p.kind == QW_KFUNC)) {
    rc = export_error(mod, exp, err);
    goto done;
  }
  if (exp) {
    /* params: fill the ones the user left out (or their types) from the signature */
    json_t *jparams = json_object_get(root, "params");
    if (!jparams) {
      if (!(jparams = json_array()) || json_object_set_new(root, "params", jparams))
        BAD(QB_NOMEM, "manifest: out of memory");
      for (uint32_t i = 0; i < p.sig.nparams; i++) {
        int ok;
        qu_type t = from_wasm(p.sig.params[i], &ok);
        char pname[16];
        if (!ok)
          BAD(QB_INVALID, "export %.64s: param %u has type %s, which a udf cannot take", exp, i,
              wtype(p.sig.params[i]));
        snprintf(pname, sizeof pname, "p%u", i);
        if (json_array_append_new(jparams, json_pack("{s:s,s:s}", "name", pname, "type",
                                                     qu_type_name(t))))
          BAD(QB_NOMEM, "manifest: out of memory");
      }
    } else if (json_is_array(jparams)) {
      uint32_t slot = 0;
      for (size_t i = 0; i < json_array_size(jparams); i++) {
        json_t *jp = json_array_get(jparams, i), *jt;
        if (!json_is_object(jp)) break;
        jt = json_object_get(jp, "type");
        if (!jt && slot < p.sig.nparams) {
          int ok;
          qu_type t = from_wasm(p.sig.params[slot], &ok);
          if (ok && json_object_set_new(jp, "type", json_string(qu_type_name(t))))
            BAD(QB_NOMEM, "manifest: out of memory");
        }
        jt = json_object_get(jp, "type");
        slot += json_is_string(jt) && !strcmp(json_string_value(jt), "string") ? 2 : 1;
      }
    }
    if (!json_object_get(root, "returns") && p.sig.nresults == 1) {
      int ok;
      qu_type t = from_wasm(p.sig.results[0], &ok);
      json_t *jk = json_object_get(root, "kind");
      /* an i64 result of a transform is the SDK's packed string */
      if (t == QU_I64 && json_is_string(jk) && !strcmp(json_string_value(jk), "transform"))
        t = QU_STRING;
      if (ok && json_object_set_new(root, "returns", json_string(qu_type_name(t))))
        BAD(QB_NOMEM, "manifest: out of memory");
    }
    if (!json_object_get(root, "kind")) {
      json_t *jr = json_object_get(root, "returns");
      const char *k = json_is_string(jr) && !strcmp(json_string_value(jr), "string")
                          ? "transform" : "score";
      if (json_object_set_new(root, "kind", json_string(k)))
        BAD(QB_NOMEM, "manifest: out of memory");
    }
  }
  if ((rc = from_json(root, out, err))) goto done;
  if ((rc = qu_manifest_check(*out, mod, err))) {
    qu_manifest_free(*out);
    *out = NULL;
  }
done:
  json_decref(root);
  return rc;
#undef BAD
}
