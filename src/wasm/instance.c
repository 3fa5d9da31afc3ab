/* instance.c: instantiation (spec 4.5.4): match imports, allocate the module's functions,
** tables, memories and globals, evaluate global initialisers, apply active element and data
** segments in order, run the start function; then export lookup and the accessors embedders
** use. The instance and all its fixed-size arrays are one allocation (block_bytes).
** Invariant: every own table/memory is either fully initialised or all zeros, so
** qw_instance_free can clean up an instance at any point of a failed instantiation. */
#include "internal.h"

#include <stdalign.h>
#include <string.h>

static size_t carve(size_t *off, size_t count, size_t size) {
  size_t at = (*off + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
  *off = at + count * size;
  return at;
}

uint64_t qw__cexpr_eval(qw_instance *inst, const qw__cexpr *c) {
  switch (c->op) {
  case QW_C_I32:
  case QW_C_F32:
    return (uint32_t)c->bits;
  case QW_C_I64:
  case QW_C_F64:
    return c->bits;
  case QW_C_REF_NULL:
    return 0;
  case QW_C_REF_FUNC:
    return (uint64_t)(uintptr_t)inst->funcs[c->idx];
  case QW_C_GLOBAL_GET:
    return inst->globals[c->idx]->val;
  }
  return 0; /* validation rules out anything else */
}

static const char *kind_name(uint8_t k) {
  static const char *const names[] = {"function", "table", "memory", "global"};
  return k < 4 ? names[k] : "?";
}

/* spec 4.5.2 (import matching of limits): the provided limits are the current size and the
** declared maximum of the table or memory instance. */
static bool limits_match(uint32_t min, bool has_max, uint32_t max, const qw__limits *want) {
  if (min < want->min)
    return false;
  if (want->has_max && (!has_max || max > want->max))
    return false;
  return true;
}

static qb_code link_one(qw_instance *inst, uint32_t i, const qw_imports *imports, uint32_t *nf,
                        uint32_t *nt, uint32_t *nm, uint32_t *ng, qb_err *err) {
  const qw_module *m = inst->mod;
  const qw__import *im = &m->imports[i];
  const qw__import_entry *e = qw__imports_find(imports, im->module, im->name);
  const char *why = NULL;
  if (!e)
    return qb_fail(err, QB_UNLINKABLE, "import %u \"%s\" \"%s\": unknown import", i, im->module,
                   im->name);
  if (e->ext.kind != im->kind) {
    return qb_fail(err, QB_UNLINKABLE,
                   "import %u \"%s\" \"%s\": incompatible import type (expected a %s, got a %s)", i,
                   im->module, im->name, kind_name(im->kind), kind_name(e->ext.kind));
  }
  switch (im->kind) {
  case QW_KFUNC:
    if (e->ext.of.func->canon != m->types[im->type_idx].canon)
      why = "function types differ";
    else
      inst->funcs[(*nf)++] = e->ext.of.func;
    break;
  case QW_KTABLE: {
    qw__table *t = e->ext.of.table;
    if (t->elem != im->table.elem)
      why = "element types differ";
    else if (!limits_match(t->size, t->has_max, t->decl_max, &im->table.lim))
      why = "limits do not match";
    else
      inst->tables[(*nt)++] = t;
    break;
  }
  case QW_KMEMORY: {
    qw__memory *mem = e->ext.of.mem;
    if (!limits_match(mem->pages, mem->has_max, mem->decl_max, &im->mem))
      why = "limits do not match";
    else
      inst->mems[(*nm)++] = mem;
    break;
  }
  case QW_KGLOBAL: {
    qw__global *g = e->ext.of.global;
    if (g->type != im->global.type)
      why = "value types differ";
    else if (g->mut != im->global.mut)
      why = "mutability differs";
    else
      inst->globals[(*ng)++] = g;
    break;
  }
  }
  if (why)
    return qb_fail(err, QB_UNLINKABLE, "import %u \"%s\" \"%s\": incompatible import type (%s)", i,
                   im->module, im->name, why);
  return QB_OK;
}

/* spec 2.0: active segments are table.init/memory.init + drop, in order, element segments
** first; a failing one traps, and the ones before it stay applied. */
static qb_code init_segments(qw_instance *inst, qb_err *err) {
  const qw_module *m = inst->mod;
  uint32_t i, j;
  for (i = 0; i < m->nelems; i++) {
    const qw__elem *s = &m->elems[i];
    if (s->mode == QW_SEG_ACTIVE) {
      qw__table *t = inst->tables[s->table];
      uint32_t off = (uint32_t)qw__cexpr_eval(inst, &s->offset);
      if ((uint64_t)off + s->count > t->size)
        return qb_fail(err, QB_TRAP, "element segment %u: out of bounds table access", i);
      for (j = 0; j < s->count; j++)
        t->elems[off + j] = (void *)(uintptr_t)qw__cexpr_eval(inst, &s->items[j]);
    }
    if (s->mode != QW_SEG_PASSIVE)
      inst->elem_dropped[i] = 1;
  }
  for (i = 0; i < m->ndatas; i++) {
    const qw__data *d = &m->datas[i];
    if (d->mode != QW_SEG_ACTIVE)
      continue;
    qw__memory *mem = inst->mems[d->mem];
    uint32_t off = (uint32_t)qw__cexpr_eval(inst, &d->offset);
    if ((uint64_t)off + d->len > mem->size_bytes)
      return qb_fail(err, QB_TRAP, "data segment %u: out of bounds memory access", i);
    if (d->len)
      memcpy(mem->data + off, d->bytes, d->len);
    inst->data_dropped[i] = 1;
  }
  return QB_OK;
}

qb_code qw_instance_new(qw_module *m, const qw_imports *imports, const qw_limits *limits,
                        qw_instance **out, qb_err *err) {
  qw_instance *inst;
  size_t off = sizeof *inst, o_funcs, o_own_funcs, o_globals, o_own_globals, o_tables, o_own_tables,
         o_mems, o_own_mems, o_exports, o_edrop, o_ddrop, o_entries;
  uint32_t ndef_globals = m->nglobals - m->nglobal_imports;
  uint32_t ndef_tables = m->ntables - m->ntable_imports, ndef_mems = m->nmems - m->nmem_imports;
  uint32_t i, nf = 0, nt = 0, nm = 0, ng = 0;
  qb_code rc;
  *out = NULL;
  if (!m->validated)
    return qb_fail(err, QB_INVAL, "instance: module is not validated");
  o_entries = carve(&off, m->ndefined, sizeof(_Atomic(const qw__code *)));
  o_funcs = carve(&off, m->nfuncs, sizeof(qw_func *));
  o_own_funcs = carve(&off, m->ndefined, sizeof(qw_func));
  o_globals = carve(&off, m->nglobals, sizeof(qw__global *));
  o_own_globals = carve(&off, ndef_globals, sizeof(qw__global));
  o_tables = carve(&off, m->ntables, sizeof(qw__table *));
  o_own_tables = carve(&off, ndef_tables, sizeof(qw__table));
  o_mems = carve(&off, m->nmems, sizeof(qw__memory *));
  o_own_mems = carve(&off, ndef_mems, sizeof(qw__memory));
  o_exports = carve(&off, m->nexports, sizeof(qw_extern));
  o_edrop = carve(&off, m->nelems, 1);
  o_ddrop = carve(&off, m->ndatas, 1);
  if (!(inst = qb_calloc(1, off)))
    return qb_fail(err, QB_NOMEM, "instance: out of memory");
  inst->block_bytes = off;
#define AT(o) ((void *)((char *)inst + (o)))
  inst->entries = AT(o_entries);
  inst->funcs = AT(o_funcs);
  inst->own_funcs = AT(o_own_funcs);
  inst->globals = AT(o_globals);
  inst->own_globals = AT(o_own_globals);
  inst->tables = AT(o_tables);
  inst->own_tables = AT(o_own_tables);
  inst->mems = AT(o_mems);
  inst->own_mems = AT(o_own_mems);
  inst->exports = AT(o_exports);
  inst->elem_dropped = AT(o_edrop);
  inst->data_dropped = AT(o_ddrop);
#undef AT
  inst->mod = m;
  inst->exec = &inst->own_exec;
  qw__limits_resolve(&inst->limits, limits, m->engine ? qw__engine_limits(m->engine) : NULL);
  if (imports) {
    qw__imports_ref((qw_imports *)imports);
    inst->imports = (qw_imports *)imports;
    inst->wasi = imports->wasi;
  }

  /* imports first: they come first in every index space */
  for (i = 0; i < m->nimports; i++)
    if ((rc = link_one(inst, i, imports, &nf, &nt, &nm, &ng, err)))
      goto fail;
  for (i = 0; i < m->ndefined; i++) {
    qw_func *f = &inst->own_funcs[i];
    f->type = &m->types[m->funcs[i].type_idx];
    f->canon = f->type->canon;
    f->inst = inst;
    f->decl = &m->funcs[i];
    f->entry = &inst->entries[i];
    f->index = m->nfunc_imports + i;
    inst->funcs[nf++] = f;
  }
  for (i = 0; i < ndef_tables; i++) {
    const qw__tabletype *tt = &m->tables[m->ntable_imports + i];
    if ((rc = qw__table_init(&inst->own_tables[i], tt->elem, tt->lim.min, tt->lim.max,
                             tt->lim.has_max, inst->limits.max_table_elems, err)))
      goto wrap;
    inst->tables[nt++] = &inst->own_tables[i];
  }
  for (i = 0; i < ndef_mems; i++) {
    const qw__limits *l = &m->mems[m->nmem_imports + i];
    if ((rc = qw__memory_init(&inst->own_mems[i], l->min, l->max, l->has_max,
                              inst->limits.max_memory_pages, err)))
      goto wrap;
    inst->mems[nm++] = &inst->own_mems[i];
  }
  if (m->nmems) {
    inst->mem0_obj = inst->mems[0];
    inst->mem0 = inst->mems[0]->data;
  }
  /* spec 2.0: global initialisers may read imported globals only, so one pass in order */
  for (i = 0; i < ndef_globals; i++) {
    qw__global *g = &inst->own_globals[i];
    g->type = m->globals[i].type.type;
    g->mut = m->globals[i].type.mut;
    g->val = qw__cexpr_eval(inst, &m->globals[i].init);
    inst->globals[ng++] = g;
  }
  for (i = 0; i < m->nexports; i++) {
    const qw__export *x = &m->exports[i];
    qw_extern *e = &inst->exports[i];
    e->kind = x->kind;
    switch (x->kind) {
    case QW_KFUNC:
      e->of.func = inst->funcs[x->index];
      break;
    case QW_KTABLE:
      e->of.table = inst->tables[x->index];
      break;
    case QW_KMEMORY:
      e->of.mem = inst->mems[x->index];
      break;
    case QW_KGLOBAL:
      e->of.global = inst->globals[x->index];
      break;
    }
  }
  if ((rc = init_segments(inst, err)))
    goto trapped;
  if (m->start >= 0) {
    if ((rc = qw_func_call(inst->funcs[m->start], NULL, 0, NULL, 0, err))) {
      qb_wrap(err, "start function %u: ", (uint32_t)m->start);
      goto trapped;
    }
  }
  *out = inst;
  return QB_OK;

wrap:
  qb_wrap(err, "instance: ");
  goto fail;
trapped:
  /* spec 2.0: what was written to imported tables stays, so functions of this instance may
  ** be reachable from elsewhere: keep the instance alive until its module is freed. */
  if (m->ntable_imports) {
    qw_instance *head = atomic_load_explicit(&m->zombies, memory_order_relaxed);
    do
      inst->next_zombie = head;
    while (!atomic_compare_exchange_weak_explicit(&m->zombies, &head, inst, memory_order_release,
                                                  memory_order_relaxed));
    return rc;
  }
fail:
  qw_instance_free(inst);
  return rc;
}

void qw_instance_free(qw_instance *inst) {
  const qw_module *m;
  uint32_t i;
  if (!inst)
    return;
  m = inst->mod;
  for (i = 0; i < m->ntables - m->ntable_imports; i++)
    qw__table_fini(&inst->own_tables[i]);
  for (i = 0; i < m->nmems - m->nmem_imports; i++)
    qw__memory_fini(&inst->own_mems[i]);
  qw__exec_fini(&inst->own_exec);
  if (inst->tier_owner && inst->tier_release) /* the native tier's reference (native.c) */
    inst->tier_release(inst->tier_owner);
  if (inst->imports)
    qw_imports_free(inst->imports);
  qb_free(inst, inst->block_bytes);
}

/* module.c: free the instances that qw_instance_new had to keep alive. */
void qw__module_free_zombies(qw_module *m) {
  qw_instance *z = atomic_exchange_explicit(&m->zombies, NULL, memory_order_acquire), *next;
  for (; z; z = next) {
    next = z->next_zombie;
    qw_instance_free(z);
  }
}

/* ---- exports and accessors ------------------------------------------------------------------ */

qw_extern *qw_instance_export_n(qw_instance *inst, const char *name, size_t len) {
  uint32_t i;
  for (i = 0; i < inst->mod->nexports; i++) {
    const qw__export *x = &inst->mod->exports[i];
    if (x->name_len == len && !memcmp(x->name, name, len))
      return &inst->exports[i];
  }
  return NULL;
}

qw_extern *qw_instance_export(qw_instance *inst, const char *name) {
  return qw_instance_export_n(inst, name, strlen(name));
}

qw_kind qw_extern_kind(const qw_extern *x) {
  return (qw_kind)x->kind;
}

qw_func *qw_extern_func(qw_extern *x) {
  return x && x->kind == QW_KFUNC ? x->of.func : NULL;
}

qw_func *qw_instance_func(qw_instance *inst, const char *export_name) {
  return qw_extern_func(qw_instance_export(inst, export_name));
}

void qw_func_sig(const qw_func *f, qw_sig *out) {
  out->nparams = f->type->nparams;
  out->nresults = f->type->nresults;
  out->params = f->type->types;
  out->results = f->type->types + f->type->nparams;
}

uint8_t *qw_instance_memory(qw_instance *inst, size_t *size_bytes) {
  if (!inst->mem0_obj) {
    if (size_bytes)
      *size_bytes = 0;
    return NULL;
  }
  if (size_bytes)
    *size_bytes = (size_t)inst->mem0_obj->size_bytes;
  return inst->mem0_obj->data;
}

qb_code qw_extern_global_get(const qw_extern *x, qw_val *out, qb_err *err) {
  const qw__global *g;
  if (!x || x->kind != QW_KGLOBAL)
    return qb_fail(err, QB_INVAL, "extern is not a global");
  g = x->of.global;
  memset(out, 0, sizeof *out);
  out->type = (qw_type)g->type;
  switch (g->type) {
  case QW_I32:
  case QW_F32:
    out->of.i32 = (uint32_t)g->val;
    break;
  case QW_FUNCREF:
  case QW_EXTERNREF:
    out->of.ref = (void *)(uintptr_t)g->val;
    break;
  default:
    out->of.i64 = g->val;
    break;
  }
  return QB_OK;
}

size_t qw_instance_memory_bytes(const qw_instance *inst) {
  const qw_module *m = inst->mod;
  size_t n = inst->block_bytes + inst->own_exec.alloc_bytes;
  uint32_t i;
  for (i = 0; i < m->ntables - m->ntable_imports; i++)
    n += (size_t)inst->own_tables[i].cap * sizeof(void *);
  for (i = 0; i < m->nmems - m->nmem_imports; i++)
    n += (size_t)inst->own_mems[i].size_bytes;
  return n;
}
