/* backend.c: the read-only module view of wasm_backend.h, for the native tier. Each call
** copies out of the decoded module (internal.h); nothing here allocates. Invariant: callers
** pass indexes below the counts of qw_bmod_counts, which a validated module guarantees for
** every index its bodies use. */
#include "internal.h"
#include "wasm_backend.h"

qw_bcounts qw_bmod_counts(const qw_module *m) {
  qw_bcounts c = {0};
  c.start = -1;
  if (!m->validated) return c;
  c.ntypes = m->ntypes, c.nimports = m->nimports;
  c.nfuncs = m->nfuncs, c.nfunc_imports = m->nfunc_imports;
  c.nglobals = m->nglobals, c.nglobal_imports = m->nglobal_imports;
  c.ntables = m->ntables, c.nmems = m->nmems;
  c.nelems = m->nelems, c.ndatas = m->ndatas;
  c.start = m->start;
  c.validated = true;
  return c;
}

qw_bfunctype qw_bmod_type(const qw_module *m, uint32_t i) {
  const qw__functype *t = &m->types[i];
  qw_bfunctype o = {t->nparams, t->nresults, t->types, t->types + t->nparams};
  return o;
}

uint32_t qw_bmod_func_type(const qw_module *m, uint32_t i) { return m->func_types[i]; }

qw_bfunc qw_bmod_func(const qw_module *m, uint32_t d) {
  const qw__func_decl *f = &m->funcs[d];
  qw_bfunc o = {f->type_idx, f->nlocals, f->local_types, f->body, f->body_end, f->body_offset};
  return o;
}

bool qw_bmod_call_free(const qw_module *m, uint32_t i) { return qw__call_inlined(m, i); }

qw_bimport qw_bmod_import(const qw_module *m, uint32_t i) {
  const qw__import *im = &m->imports[i];
  qw_bimport o = {im->module, im->name, im->kind, im->type_idx};
  return o;
}

uint8_t qw_bmod_global(const qw_module *m, uint32_t i, bool *mut) {
  if (mut) *mut = m->global_types[i].mut;
  return m->global_types[i].type;
}

qw_blimits qw_bmod_table(const qw_module *m, uint32_t i) {
  const qw__tabletype *t = &m->tables[i];
  qw_blimits o = {t->lim.min, t->lim.max, t->lim.has_max, t->elem};
  return o;
}

qw_blimits qw_bmod_memory(const qw_module *m, uint32_t i) {
  const qw__limits *l = &m->mems[i];
  qw_blimits o = {l->min, l->max, l->has_max, 0};
  return o;
}

uint8_t qw_bmod_elem_mode(const qw_module *m, uint32_t i) { return m->elems[i].mode; }
uint8_t qw_bmod_data_mode(const qw_module *m, uint32_t i) { return m->datas[i].mode; }

const uint8_t *qw_bmod_bytes(const qw_module *m, size_t *len) {
  *len = m->len;
  return m->bytes;
}

const qw_module *qw_instance_module_of(const qw_instance *inst) { return inst->mod; }
