/* module.c: the module object: load (copy + decode.c + validate.c), free, and the inspection
** calls (imports, exports, sizes). A module is immutable once loaded except for the lazily
** compiled code of its functions, which compile.c publishes with CAS and which is freed here. */
#include "internal.h"

#include <string.h>

qb_code qw_module_decode(qw_engine *e, const uint8_t *bytes, size_t len, qw_module **out,
                         qb_err *err) {
  qw_module *m;
  qb_code rc;
  *out = NULL;
  if (!bytes && len)
    return qb_fail(err, QB_INVAL, "module: no bytes");
  if (!(m = qb_calloc(1, sizeof *m)))
    return qb_fail(err, QB_NOMEM, "module: out of memory");
  qb_arena_init(&m->arena);
  m->engine = e;
  m->start = -1;
  m->len = len;
  if (!(m->bytes = qb_malloc(len ? len : 1))) {
    rc = qb_fail(err, QB_NOMEM, "module: out of memory copying %zu bytes", len);
    goto fail;
  }
  if (len)
    memcpy(m->bytes, bytes, len);
  if ((rc = qw__decode(m, err)))
    goto fail;
  *out = m;
  return QB_OK;
fail:
  qw_module_free(m);
  return rc;
}

qb_code qw_module_validate(qw_module *m, qb_err *err) {
  if (m->validated)
    return QB_OK;
  return qw__validate(m, err);
}

qb_code qw_module_load(qw_engine *e, const uint8_t *bytes, size_t len, qw_module **out,
                       qb_err *err) {
  qw_module *m;
  qb_code rc;
  *out = NULL;
  if ((rc = qw_module_decode(e, bytes, len, &m, err)))
    return rc;
  if ((rc = qw__validate(m, err))) {
    qw_module_free(m);
    return rc;
  }
  *out = m;
  return QB_OK;
}

void qw_module_free(qw_module *m) {
  uint32_t i;
  if (!m)
    return;
  qw__module_free_zombies(m);
  for (i = 0; m->funcs && i < m->ndefined; i++) {
    qw__code *c = atomic_load_explicit(&m->funcs[i].code, memory_order_acquire);
    if (c)
      qw__code_free(c);
  }
  qb_arena_fini(&m->arena);
  qb_free(m->bytes, m->len ? m->len : 1);
  qb_free(m, sizeof *m);
}

/* ---- inspection ---------------------------------------------------------------------------- */

uint32_t qw_module_import_count(const qw_module *m) {
  return m->nimports;
}
uint32_t qw_module_export_count(const qw_module *m) {
  return m->nexports;
}

static void sig_of(const qw_module *m, uint32_t type_idx, qw_sig *out) {
  memset(out, 0, sizeof *out);
  if (type_idx >= m->ntypes)
    return;
  const qw__functype *t = &m->types[type_idx];
  out->nparams = t->nparams;
  out->nresults = t->nresults;
  out->params = t->types;
  out->results = t->types + t->nparams;
}

void qw_module_import(const qw_module *m, uint32_t i, qw_port *out) {
  const qw__import *im = &m->imports[i];
  memset(out, 0, sizeof *out);
  out->kind = (qw_kind)im->kind;
  out->module = im->module;
  out->name = im->name;
  switch (im->kind) {
  case QW_KFUNC:
    sig_of(m, im->type_idx, &out->sig);
    out->index = im->type_idx;
    break;
  case QW_KTABLE:
    out->type = im->table.elem;
    out->min = im->table.lim.min, out->max = im->table.lim.max,
    out->has_max = im->table.lim.has_max;
    break;
  case QW_KMEMORY:
    out->min = im->mem.min, out->max = im->mem.max, out->has_max = im->mem.has_max;
    break;
  case QW_KGLOBAL:
    out->type = im->global.type;
    out->mut = im->global.mut;
    break;
  }
}

void qw_module_export(const qw_module *m, uint32_t i, qw_port *out) {
  const qw__export *x = &m->exports[i];
  uint32_t k = x->index;
  memset(out, 0, sizeof *out);
  out->kind = (qw_kind)x->kind;
  out->name = x->name;
  out->index = k;
  switch (x->kind) {
  case QW_KFUNC:
    if (k < m->nfuncs)
      sig_of(m, m->func_types[k], &out->sig);
    break;
  case QW_KTABLE:
    if (k < m->ntables) {
      out->type = m->tables[k].elem;
      out->min = m->tables[k].lim.min, out->max = m->tables[k].lim.max;
      out->has_max = m->tables[k].lim.has_max;
    }
    break;
  case QW_KMEMORY:
    if (k < m->nmems) {
      out->min = m->mems[k].min, out->max = m->mems[k].max, out->has_max = m->mems[k].has_max;
    }
    break;
  case QW_KGLOBAL:
    if (k < m->nglobals)
      out->type = m->global_types[k].type, out->mut = m->global_types[k].mut;
    break;
  }
}

void qw_module_get_info(const qw_module *m, qw_module_info *out) {
  memset(out, 0, sizeof *out);
  out->size_bytes = m->len;
  out->ntypes = m->ntypes;
  out->nfuncs = m->nfuncs;
  out->nimported_funcs = m->nfunc_imports;
  out->ntables = m->ntables;
  out->nmemories = m->nmems;
  out->nglobals = m->nglobals;
  out->nelems = m->nelems;
  out->ndatas = m->ndatas;
  out->code_bytes = m->code_bytes;
  for (uint32_t i = 0; i < m->ndefined; i++) {
    size_t n = m->funcs[i].body ? (size_t)(m->funcs[i].body_end - m->funcs[i].body) : 0;
    if (n > out->max_body_bytes) out->max_body_bytes = (uint32_t)n;
  }
  out->start_func = m->start;
}
