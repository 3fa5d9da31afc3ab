/* bind.c: a manifest + one request's params and context -> a qu_plan: per param a constant,
** a document column or _score, and the list of columns the caller must fill per block.
** Context values are resolved here, once per request; nothing here looks at documents.
** Invariant: every param of the manifest has exactly one bound source in a finished plan. */
#include "udf.h"

#include <assert.h>
#include <string.h>

#include "internal.h"

void qu_plan_free(qu_plan *p) {
  if (!p) return;
  qb_arena a = p->arena;
  qb_arena_fini(&a);
}

uint32_t qu_plan_ncols(const qu_plan *p) { return p->ncols; }
const qu_colspec *qu_plan_col(const qu_plan *p, uint32_t i) {
  return i < p->ncols ? &p->cols[i] : NULL;
}
int qu_plan_uses_score(const qu_plan *p) { return p->uses_score; }

void qu_plan_binding(const qu_plan *p, uint32_t i, qu_binding *out) {
  const qu__bound *b = &p->params[i];
  assert(i < p->m->nparams);
  memset(out, 0, sizeof *out);
  out->source = b->src == QU__COL ? QU_SRC_FIELD : b->src == QU__SCORE ? QU_SRC_SCORE
                                                                        : QU_SRC_CONST;
  out->type = b->type;
  out->col = b->col;
  out->i64 = b->i;
  out->f64 = b->f;
  out->str = b->s;
}

/* "doc['F']" or doc["F"] -> F (into BUF); 0 when S is not that shape. */
static int doc_field(const char *s, char *buf, size_t cap) {
  size_t n = strlen(s);
  if (n < 8 || strncmp(s, "doc[", 4) || s[n - 1] != ']') return 0;
  char q = s[4];
  if ((q != '\'' && q != '"') || s[n - 2] != q) return 0;
  size_t flen = n - 7;
  if (flen == 0 || flen >= cap) return 0;
  memcpy(buf, s + 5, flen);
  buf[flen] = 0;
  return 1;
}

/* CONTEXT.a.b for PATH "a.b"; NULL when absent. */
static const json_t *context_get(const json_t *ctx, const char *path) {
  char seg[128];
  const json_t *cur = ctx;
  while (cur && *path) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (n == 0 || n >= sizeof seg) return NULL;
    memcpy(seg, path, n);
    seg[n] = 0;
    cur = json_is_object(cur) ? json_object_get(cur, seg) : NULL;
    path += n + (dot ? 1 : 0);
  }
  return cur;
}

typedef struct bctx {
  qu_plan *p;
  const qu_manifest *m;
  const json_t *context;
  qb_err *err;
} bctx;

static qb_code bad(bctx *b, uint32_t i, const char *fmt, const char *what) {
  return qb_fail(b->err, QB_INVAL, "udf %s: param %s: %s%s", b->m->name, b->m->params[i].name,
                 fmt, what ? what : "");
}

/* Set param I to the literal J. */
static qb_code set_const(bctx *b, uint32_t i, const json_t *j) {
  qu__bound *d = &b->p->params[i];
  const char *s = NULL;
  size_t sl = 0;
  qb_code rc = qu__literal(j, b->m->params[i].type, &d->i, &d->f, &s, &sl, b->err);
  if (rc) {
    qb_wrap(b->err, "udf %s: param %s: ", b->m->name, b->m->params[i].name);
    return rc;
  }
  d->src = QU__CONST;
  if (s) {
    if (!(d->s.ptr = qb_arena_strndup(&b->p->arena, s, sl)))
      return qb_fail(b->err, QB_NOMEM, "udf %s: out of memory", b->m->name);
    d->s.len = sl;
  }
  return QB_OK;
}

/* Param I reads document field FIELD; MISSING (may be NULL) overrides the manifest's. */
static qb_code set_field(bctx *b, uint32_t i, const char *field, const json_t *missing) {
  qu_plan *p = b->p;
  const qu_param *q = &b->m->params[i];
  qu_colspec *c;
  if (!*field) return bad(b, i, "empty field name", NULL);
  if (p->ncols >= b->m->nparams) return QB_NEVER(b->err);
  c = &p->cols[p->ncols];
  memset(c, 0, sizeof *c);
  if (!(c->field = qb_arena_strdup(&p->arena, field)))
    return qb_fail(b->err, QB_NOMEM, "udf %s: out of memory", b->m->name);
  c->type = q->type == QU_STRING ? QU_COL_STR
            : (q->type == QU_F32 || q->type == QU_F64) ? QU_COL_F64 : QU_COL_I64;
  c->param = i;
  if (!missing) missing = b->m->missing_json[i];
  if (missing) {
    int64_t iv;
    double fv;
    const char *s = NULL;
    size_t sl = 0;
    if (qu__literal(missing, q->type, &iv, &fv, &s, &sl, b->err)) {
      qb_wrap(b->err, "udf %s: param %s: missing: ", b->m->name, q->name);
      return QB_INVAL;
    }
    c->has_missing = 1;
    c->missing_i64 = iv;
    c->missing_f64 = fv;
    if (s) {
      if (!(c->missing_str.ptr = qb_arena_strndup(&p->arena, s, sl)))
        return qb_fail(b->err, QB_NOMEM, "udf %s: out of memory", b->m->name);
      c->missing_str.len = sl;
    }
  }
  p->params[i].src = QU__COL;
  p->params[i].col = p->ncols++;
  return QB_OK;
}

/* Bind param I to V (a value from params or the manifest default). FROM_DEFAULT: V came from
** the manifest, so a context miss cannot fall back to the default again. */
static qb_code bind_one(bctx *b, uint32_t i, const json_t *v, int from_default) {
  char field[256];
  if (json_is_object(v)) {
    const json_t *jf = json_object_get(v, "field"), *jm = json_object_get(v, "missing");
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)v, key, x) {
      if (strcmp(key, "field") && strcmp(key, "missing"))
        return bad(b, i, "unknown key in a field binding (expected field, missing): ", key);
    }
    if (!json_is_string(jf)) return bad(b, i, "{\"field\": ...} needs a string field name", NULL);
    return set_field(b, i, json_string_value(jf), jm);
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (!strcmp(s, "_score")) {
      if (b->m->params[i].type == QU_STRING)
        return bad(b, i, "_score is a number, the param is a string", NULL);
      b->p->params[i].src = QU__SCORE;
      b->p->uses_score = 1;
      return QB_OK;
    }
    if (!strncmp(s, "_source.", 8)) {
      qb_code rc = set_field(b, i, s + 8, NULL);
      if (!rc) b->p->cols[b->p->ncols - 1].from_source = 1;
      return rc;
    }
    if (doc_field(s, field, sizeof field)) {
      qb_code rc = set_field(b, i, field, NULL);
      if (!rc) b->p->cols[b->p->ncols - 1].from_doc = 1;
      return rc;
    }
    if (!strncmp(s, "_context.", 9)) {
      const json_t *cv = b->context ? context_get(b->context, s + 9) : NULL;
      if (cv && !json_is_null(cv)) return set_const(b, i, cv);
      if (b->m->missing_json[i]) return set_const(b, i, b->m->missing_json[i]);
      const json_t *d = b->m->dflt_json[i];
      if (!from_default && d && !json_is_object(d) &&
          !(json_is_string(d) && b->m->params[i].type != QU_STRING))
        return set_const(b, i, d);
      return bad(b, i, s, " is not in the request context and the param has no default");
    }
    if (!strncmp(s, "doc[", 4))
      return bad(b, i, "malformed field reference (expected doc['field']): ", s);
  }
  if (json_is_null(v)) return bad(b, i, "null is not a value", NULL);
  return set_const(b, i, v);
}

qb_code qu_plan_new(const qu_manifest *m, const json_t *params, const json_t *context,
                    qu_plan **out, qb_err *err) {
  qb_arena a;
  qu_plan *p;
  qb_code rc = QB_OK;
  *out = NULL;
  if (params && !json_is_object(params) && !json_is_null(params))
    return qb_fail(err, QB_INVAL, "udf %s: params: expected an object", m->name);
  if (json_is_object(params)) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v) {
      uint32_t i;
      for (i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, key)) break;
      if (i == m->nparams)
        return qb_fail(err, QB_INVAL, "udf %s: params: unknown param \"%.64s\"", m->name, key);
    }
  }
  qb_arena_init(&a);
  if (!(p = qb_arena_alloc(&a, sizeof *p))) goto nomem;
  p->arena = a;
  p->m = m;
  if (m->nparams && (!(p->params = qb_arena_array(&p->arena, m->nparams, sizeof *p->params)) ||
                     !(p->cols = qb_arena_array(&p->arena, m->nparams, sizeof *p->cols)))) {
    qu_plan_free(p);
    return qb_fail(err, QB_NOMEM, "udf %s: out of memory", m->name);
  }
  bctx b = {p, m, json_is_object(context) ? context : NULL, err};
  for (uint32_t i = 0; i < m->nparams && !rc; i++) {
    const json_t *v = json_is_object(params) ? json_object_get(params, m->params[i].name) : NULL;
    p->params[i].type = m->params[i].type;
    if (v) rc = bind_one(&b, i, v, 0);
    else if (m->dflt_json[i]) rc = bind_one(&b, i, m->dflt_json[i], 1);
    else
      rc = qb_fail(err, QB_INVAL, "udf %s: param %s: no value (not in params and no default)",
                   m->name, m->params[i].name);
  }
  if (rc) {
    qu_plan_free(p);
    return rc;
  }
  *out = p;
  return QB_OK;
nomem:
  qb_arena_fini(&a);
  return qb_fail(err, QB_NOMEM, "udf %s: out of memory", m->name);
}
