/* udf_script.c: the adapter that makes deployed UDFs query-layer scripts, and the version pin
** map. A per-request qq_script_provider resolves `script.source` to a UDF of the registry: the
** first resolve of a name acquires the version the request pins (a coordinator's shard
** request) or else the current one, and keeps it for the rest of the request, so one search
** never mixes two versions, on one shard or across shards, even when a deploy or rollback
** lands while it runs. Anything that is not a deployed UDF falls through to expressions
** (QB_NOTFOUND without a message).
** Invariant: a udf_script holds its own reference on the qu_udf and owns its plan and exec;
** the query layer's columns are passed through without copies (qq_str and qu_str share one
** layout, checked below). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cluster.h"

_Static_assert(sizeof(qq_str) == sizeof(qu_str) && offsetof(qq_str, len) == offsetof(qu_str, len),
               "qq_str and qu_str must share a layout");
_Static_assert((int)QU_COL_F64 == (int)QQ_COL_F64 && (int)QU_COL_I64 == (int)QQ_COL_I64 &&
                   (int)QU_COL_STR == (int)QQ_COL_STR,
               "qu_col_type and qq_col_type must agree");

typedef struct udf_script {
  qq_script base;
  qu_udf *u;
  qu_plan *plan;
  qu_exec *x;
  qq_script_kind kind;
  uint32_t ncols;
  qu_col cols[QQ_BIND_MAX_ARGS];
  char *alt[QQ_BIND_MAX_ARGS]; /* "F.keyword" when a string param names text field F */
} udf_script;

static void set_alt(udf_script *s, uint32_t i, const char *field) {
  if (s->alt[i]) qb_free(s->alt[i], strlen(s->alt[i]) + 1);
  s->alt[i] = NULL;
  if (!field) return;
  size_t n = strlen(field) + sizeof ".keyword";
  if ((s->alt[i] = qb_malloc(n))) snprintf(s->alt[i], n, "%s.keyword", field);
}

static qb_code us_bind(qq_script *base, const qq_shard_info *info, qq_bind *out, qb_err *err) {
  udf_script *s = (udf_script *)base;
  out->nargs = s->ncols;
  for (uint32_t i = 0; i < s->ncols; i++) {
    const qu_colspec *c = qu_plan_col(s->plan, i);
    qq_arg *a = &out->args[i];
    a->kind = QQ_ARG_FIELD;
    a->type = (qq_col_type)c->type;
    a->field = c->field;
    a->has_missing = c->has_missing;
    a->missing_f64 = c->missing_f64;
    a->missing_i64 = c->missing_i64;
    a->missing_str.ptr = c->missing_str.ptr;
    a->missing_str.len = c->missing_str.len;
    set_alt(s, i, NULL);
    if (c->from_doc && info->field_type && info->field_type(info, c->field) == QQ_FIELD_NONE)
      return qb_fail(err, QB_INVALID, "%s: param %s: No field found for [%s] in mapping",
                     qu_udf_label(s->u), qu_manifest_param(qu_udf_manifest(s->u), c->param)->name,
                     c->field);
    if (c->type == QU_COL_STR && info->field_type) {
      qq_field_type ft = info->field_type(info, c->field);
      /* String columns come from keyword doc values. A text field read as a string uses its
      ** keyword sub-field (what dynamic mapping gives every string), as a user means
      ** "_source.title" to be the title. */
      if (ft == QQ_FIELD_TEXT && c->from_source) { /* "_source.F": the stored value, as named */
        a->kind = QQ_ARG_SOURCE;
        continue;
      }
      if (ft == QQ_FIELD_TEXT) {
        set_alt(s, i, c->field);
        if (!s->alt[i]) return qb_fail(err, QB_NOMEM, "out of memory");
        if (info->field_type(info, s->alt[i]) == QQ_FIELD_KEYWORD) {
          a->field = s->alt[i];
          continue;
        }
      }
      if (ft != QQ_FIELD_NONE && ft != QQ_FIELD_KEYWORD)
        return qb_fail(err, QB_INVAL, "%s: param %s reads field [%s], which is neither a keyword "
                       "field nor a text field with a keyword sub-field", qu_udf_label(s->u),
                       qu_manifest_param(qu_udf_manifest(s->u), c->param)->name, c->field);
    }
  }
  const qu_manifest *m = qu_udf_manifest(s->u);
  out->result = (s->kind == QQ_SCRIPT_TRANSFORM && qu_manifest_returns(m) == QU_STRING)
                    ? QQ_RESULT_STR
                    : QQ_RESULT_F64;
  return QB_OK;
}

static qb_code us_run(qq_script *base, const qq_block *in, qq_result_block *out, qb_err *err) {
  udf_script *s = (udf_script *)base;
  qb_code rc;
  if (!s->x) {
    if ((rc = qu_exec_new(s->u, s->plan, &s->x, err))) return rc;
    /* the query layer's reads put the colspec's missing value (us_bind passed it; 0 without
    ** one) where a document has none (query.h qq_col) */
    qu_exec_set_filled(s->x, 1);
  }
  if (in->ncols != s->ncols) return QB_NEVER(err);
  for (uint32_t i = 0; i < s->ncols; i++) {
    const qq_col *c = &in->cols[i];
    s->cols[i].f64 = c->f64;
    s->cols[i].i64 = c->i64;
    s->cols[i].str = (const qu_str *)c->str;
    s->cols[i].present = c->present;
  }
  qu_block blk = {.n = in->n, .score = in->score, .ncols = s->ncols, .cols = s->cols};
  qu_out o = {.f64 = out->f64, .keep = out->keep, .str = (qu_str *)out->str,
              .present = out->present};
  return qu_exec_run(s->x, &blk, &o, err);
}

static void us_free(qq_script *base) {
  udf_script *s = (udf_script *)base;
  if (!s) return;
  for (uint32_t i = 0; i < QQ_BIND_MAX_ARGS; i++) set_alt(s, i, NULL);
  qu_exec_free(s->x);
  qu_plan_free(s->plan);
  qu_udf_release(s->u);
  qb_free(s, sizeof *s);
}

static const qq_script_vtable udf_vt = {us_bind, us_run, us_free};

/* Which manifest kinds serve which script kinds. */
static int kind_fits(qu_kind k, qq_script_kind want) {
  switch (want) {
  case QQ_SCRIPT_SCORE: return k == QU_SCORE || k == QU_METRIC || k == QU_TRANSFORM;
  case QQ_SCRIPT_FILTER: return k == QU_FILTER;
  case QQ_SCRIPT_TRANSFORM: return 1;
  case QQ_SCRIPT_METRIC: return k == QU_METRIC || k == QU_SCORE || k == QU_TRANSFORM;
  }
  return 0;
}

static const char *want_name(qq_script_kind k) {
  static const char *const n[] = {"a score script", "a filter script", "a script field",
                                  "a metric aggregation script"};
  return (unsigned)k < 4 ? n[k] : "a script";
}

/* A coordinator's stand-in: the data nodes run the real script; the coordinator only parses. */
typedef struct stub_script {
  qq_script base;
  char label[80];
} stub_script;

static qb_code stub_bind(qq_script *base, const qq_shard_info *info, qq_bind *out, qb_err *err) {
  return qb_fail(err, QB_INTERNAL, "%s: this node runs no UDFs (a coordinator)", base->name);
}
static qb_code stub_run(qq_script *base, const qq_block *in, qq_result_block *out, qb_err *err) {
  return qb_fail(err, QB_INTERNAL, "%s: this node runs no UDFs (a coordinator)", base->name);
}
static void stub_free(qq_script *base) {
  if (base) qb_free(base, sizeof(stub_script));
}
static const qq_script_vtable stub_vt = {stub_bind, stub_run, stub_free};

/* The version of NAME this request uses, held in P (acquired on first use). */
static qb_code pin(qc_udf_provider *p, const char *name, qu_udf **out, qb_err *err) {
  *out = NULL;
  for (size_t i = 0; i < p->got.n; i++)
    if (!strcmp(p->got.pin[i].name, name)) {
      *out = p->held[i];
      return QB_OK;
    }
  if (p->got.n == QC_PINS_MAX)
    return qb_fail(err, QB_INVAL, "too many different UDFs in one request (at most %d)",
                   QC_PINS_MAX);
  uint32_t want = p->want ? qc_pins_get(p->want, name) : 0;
  qu_udf *u = NULL;
  qb_err e2;
  qb_code rc;
  if (!p->reg) {
    if (!p->current) return QB_NOTFOUND;
    if ((rc = p->current(p->ud, name, &want, &e2))) {
      if (rc != QB_NOTFOUND && err) *err = e2;
      return rc;
    }
  } else {
    rc = qu_registry_acquire(p->reg, name, want, &u, &e2);
    if (rc == QB_NOTFOUND && want) {
      /* pinned by the coordinator but not here (yet): fetch it, or fail this shard */
      if (!p->fetch)
        return qb_fail(err, QB_UNAVAILABLE, "udf %s v%u: not installed on this node", name, want);
      if ((rc = p->fetch(p->ud, name, want, &e2))) {
        if (err) *err = e2;
        qb_wrap(err, "udf %s v%u: ", name, want);
        return rc == QB_NOTFOUND ? QB_UNAVAILABLE : rc;
      }
      rc = qu_registry_acquire(p->reg, name, want, &u, &e2);
    }
    if (rc == QB_NOTFOUND && !want) return QB_NOTFOUND;
    if (rc) {
      if (err) *err = e2;
      return rc == QB_NOTFOUND ? QB_UNAVAILABLE : rc;
    }
    want = qu_udf_version(u);
  }
  if ((rc = qc_pins_set(&p->got, name, want, err))) {
    qu_udf_release(u);
    return rc;
  }
  p->held[p->got.n - 1] = u;
  *out = u;
  return QB_OK;
}

static qb_code resolve(qq_script_provider *pb, const char *source, const char *lang,
                       qq_script_kind kind, const struct json_t *params,
                       const struct json_t *ctx, qq_script **out, qb_err *err) {
  qc_udf_provider *p = (qc_udf_provider *)pb->ud;
  *out = NULL;
  if (lang && strcmp(lang, "wasm") && strcmp(lang, "udf")) return QB_NOTFOUND;
  if (!source || !qu_name_valid(source)) return QB_NOTFOUND;
  qu_udf *u = NULL;
  qb_code rc = pin(p, source, &u, err);
  if (rc) return rc;
  if (!u) { /* a coordinator: a stand-in named like the real one */
    stub_script *st = qb_calloc(1, sizeof *st);
    if (!st) return qb_fail(err, QB_NOMEM, "out of memory");
    snprintf(st->label, sizeof st->label, "%s v%u", source, qc_pins_get(&p->got, source));
    st->base.vt = &stub_vt;
    st->base.name = st->label;
    *out = &st->base;
    return QB_OK;
  }
  const qu_manifest *m = qu_udf_manifest(u);
  if (!kind_fits(qu_manifest_kind(m), kind))
    return qb_fail(err, QB_INVALID, "%s is a %s UDF and cannot be used as %s", qu_udf_label(u),
                   qu_kind_name(qu_manifest_kind(m)), want_name(kind));
  if (kind != QQ_SCRIPT_TRANSFORM && qu_manifest_returns(m) == QU_STRING)
    return qb_fail(err, QB_INVALID, "%s returns a string and cannot be used as %s",
                   qu_udf_label(u), want_name(kind));
  udf_script *s = qb_calloc(1, sizeof *s);
  if (!s) return qb_fail(err, QB_NOMEM, "out of memory");
  s->base.vt = &udf_vt;
  s->base.name = qu_udf_label(u);
  s->kind = kind;
  s->u = qu_udf_retain(u);
  rc = qu_plan_new(m, params, ctx, &s->plan, err);
  if (rc) goto fail;
  s->ncols = qu_plan_ncols(s->plan);
  if (s->ncols > QQ_BIND_MAX_ARGS) {
    rc = qb_fail(err, QB_INVAL, "%s: too many document columns (%u, at most %d)",
                 qu_udf_label(u), s->ncols, QQ_BIND_MAX_ARGS);
    goto fail;
  }
  *out = &s->base;
  return QB_OK;
fail:
  us_free(&s->base);
  return rc;
}

void qc_udf_provider_init(qc_udf_provider *p, qu_registry *reg, const qc_pins *want) {
  memset(p, 0, sizeof *p);
  p->base.resolve = resolve;
  p->base.ud = p;
  p->reg = reg;
  p->want = want;
}

void qc_udf_provider_fini(qc_udf_provider *p) {
  for (size_t i = 0; i < p->got.n; i++) qu_udf_release(p->held[i]);
  p->got.n = 0;
}

/* ---- pins ----------------------------------------------------------------------------------- */

uint32_t qc_pins_get(const qc_pins *p, const char *name) {
  for (size_t i = 0; p && i < p->n; i++)
    if (!strcmp(p->pin[i].name, name)) return p->pin[i].version;
  return 0;
}

qb_code qc_pins_set(qc_pins *p, const char *name, uint32_t version, qb_err *err) {
  if (strlen(name) >= sizeof p->pin[0].name)
    return qb_fail(err, QB_INVAL, "udf name [%.64s...] is too long", name);
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->pin[i].name, name)) {
      p->pin[i].version = version;
      return QB_OK;
    }
  if (p->n == QC_PINS_MAX)
    return qb_fail(err, QB_INVAL, "too many different UDFs in one request (at most %d)",
                   QC_PINS_MAX);
  snprintf(p->pin[p->n].name, sizeof p->pin[0].name, "%s", name);
  p->pin[p->n++].version = version;
  return QB_OK;
}

json_t *qc_pins_to_json(const qc_pins *p) {
  json_t *o = json_object();
  for (size_t i = 0; o && i < p->n; i++)
    if (json_object_set_new(o, p->pin[i].name, json_integer(p->pin[i].version))) {
      json_decref(o);
      return NULL;
    }
  return o;
}

qb_code qc_pins_from_json(const json_t *j, qc_pins *out, qb_err *err) {
  out->n = 0;
  if (!j || json_is_null(j)) return QB_OK;
  if (!json_is_object(j)) return qb_fail(err, QB_INVAL, "udf pins: expected an object");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)j, k, v) {
    json_int_t n = json_integer_value(v);
    if (!json_is_integer(v) || n < 1 || n > UINT32_MAX)
      return qb_fail(err, QB_INVAL, "udf pins: [%.64s] must be a version number >= 1", k);
    qb_code rc = qc_pins_set(out, k, (uint32_t)n, err);
    if (rc) return rc;
  }
  return QB_OK;
}
