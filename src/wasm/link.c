/* link.c: import lists (qw_imports): host functions, externs of other instances, whole
** instances (the spec suite's `register`). qw_instance_new matches a module's imports against
** a list (instance.c); WASI's entries are added by wasi.c through qw_imports_add_host.
** Lifetime: a list is reference-counted; every instance linked against it holds a reference,
** so its host functions (and wasi.c's state) stay valid while those instances live, even after
** qw_imports_free. Externs of other instances stay borrowed: those must outlive the importer. */
#include "internal.h"

#include <string.h>

/* A host function and its private signature, allocated together. */
typedef struct host_block {
  qw_func f;
  qw__functype type;
  size_t size_bytes;
  uint8_t types[];
} host_block;

qb_code qw_imports_new(qw_imports **out, qb_err *err) {
  qw_imports *im = qb_calloc(1, sizeof *im);
  *out = NULL;
  if (!im)
    return qb_fail(err, QB_NOMEM, "imports: out of memory");
  atomic_init(&im->refs, 1);
  *out = im;
  return QB_OK;
}

static void really_free(qw_imports *im) {
  uint32_t i;
  for (i = 0; i < im->n; i++) {
    qw__import_entry *e = &im->v[i];
    qb_free(e->module, strlen(e->module) + 1);
    qb_free(e->name, strlen(e->name) + 1);
    if (e->host) {
      host_block *b = (host_block *)e->host;
      qb_free(b, b->size_bytes);
    }
  }
  qb_free(im->v, (size_t)im->cap * sizeof *im->v);
  if (im->wasi && im->wasi_free)
    im->wasi_free(im->wasi);
  qb_free(im, sizeof *im);
}

void qw_imports_free(qw_imports *im) {
  if (im && atomic_fetch_sub_explicit(&im->refs, 1, memory_order_acq_rel) == 1)
    really_free(im);
}

void qw__imports_ref(qw_imports *im) {
  atomic_fetch_add_explicit(&im->refs, 1, memory_order_relaxed);
}

const qw__import_entry *qw__imports_find(const qw_imports *im, const char *module,
                                         const char *name) {
  uint32_t i;
  if (!im)
    return NULL;
  for (i = im->n; i-- > 0;)
    if (!strcmp(im->v[i].name, name) && !strcmp(im->v[i].module, module))
      return &im->v[i];
  return NULL;
}

static char *dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = qb_malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

/* Appends an entry with copies of the names; *OUT points at it. */
static qb_code push(qw_imports *im, const char *module, const char *name, qw__import_entry **out,
                    qb_err *err) {
  qw__import_entry *e;
  if (!module || !name)
    return qb_fail(err, QB_INVAL, "imports: missing module or name");
  if (im->n == im->cap) {
    uint32_t ncap = im->cap ? im->cap * 2 : 16;
    qw__import_entry *nv =
        qb_realloc(im->v, (size_t)im->cap * sizeof *nv, (size_t)ncap * sizeof *nv);
    if (!nv)
      return qb_fail(err, QB_NOMEM, "imports: out of memory");
    im->v = nv;
    im->cap = ncap;
  }
  e = &im->v[im->n];
  memset(e, 0, sizeof *e);
  if (!(e->module = dup(module)) || !(e->name = dup(name))) {
    if (e->module)
      qb_free(e->module, strlen(module) + 1);
    return qb_fail(err, QB_NOMEM, "imports: out of memory");
  }
  im->n++;
  *out = e;
  return QB_OK;
}

static bool valtype_ok(uint8_t t) {
  return t == QW_I32 || t == QW_I64 || t == QW_F32 || t == QW_F64 || t == QW_FUNCREF ||
         t == QW_EXTERNREF;
}

qb_code qw_imports_add_host(qw_imports *im, const char *module, const char *name,
                            const uint8_t *params, uint32_t nparams, const uint8_t *results,
                            uint32_t nresults, qw_host_fn fn, void *ud, qb_err *err) {
  host_block *b;
  qw__import_entry *e;
  size_t size;
  uint32_t i, canon;
  qb_code rc;
  if (!fn)
    return qb_fail(err, QB_INVAL, "imports: %s.%s: no host function", module, name);
  if (nparams > QW_MAX_PARAMS || nresults > QW_MAX_RESULTS)
    return qb_fail(err, QB_INVAL, "imports: %s.%s: too many parameters or results", module, name);
  for (i = 0; i < nparams + nresults; i++)
    if (!valtype_ok(i < nparams ? params[i] : results[i - nparams]))
      return qb_fail(err, QB_INVAL, "imports: %s.%s: bad value type", module, name);
  size = sizeof *b + nparams + nresults;
  if (!(b = qb_calloc(1, size)))
    return qb_fail(err, QB_NOMEM, "imports: out of memory");
  b->size_bytes = size;
  if (nparams)
    memcpy(b->types, params, nparams);
  if (nresults)
    memcpy(b->types + nparams, results, nresults);
  if ((rc = qw__engine_canon(NULL, b->types, nparams, nresults, &canon, err)))
    goto fail;
  b->type = (qw__functype){nparams, nresults, b->types, canon};
  b->f.type = &b->type;
  b->f.canon = canon;
  b->f.host = fn;
  b->f.host_ud = ud;
  if ((rc = push(im, module, name, &e, err)))
    goto fail;
  e->host = &b->f;
  e->ext.kind = QW_KFUNC;
  e->ext.of.func = &b->f;
  return QB_OK;
fail:
  qb_free(b, size);
  return rc;
}

qb_code qw_imports_add_extern(qw_imports *im, const char *module, const char *name, qw_extern *ext,
                              qb_err *err) {
  qw__import_entry *e;
  qb_code rc;
  if (!ext)
    return qb_fail(err, QB_INVAL, "imports: %s.%s: no extern", module, name);
  if ((rc = push(im, module, name, &e, err)))
    return rc;
  e->ext = *ext;
  return QB_OK;
}

qb_code qw_imports_add_instance(qw_imports *im, const char *module, qw_instance *inst,
                                qb_err *err) {
  uint32_t i;
  qb_code rc;
  for (i = 0; i < inst->mod->nexports; i++)
    if ((rc =
             qw_imports_add_extern(im, module, inst->mod->exports[i].name, &inst->exports[i], err)))
      return rc;
  return QB_OK;
}
