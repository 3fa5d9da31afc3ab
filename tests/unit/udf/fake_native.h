/* fake_native.h: a stand-in native tier for the udf tests (not a test itself). Its "native code"
** runs the export through the interpreter on the instance it is given, so a correct fake gives
** the interpreter's results bit for bit; a broken one flips the low bit of document 3's result
** in every block; a failing one cannot compile. Its objects are "FAKEOBJ1" + the compile's
** serial number, padded to OBJ_LEN bytes, and its load refuses anything else. Counts compiles,
** loads and frees, so the tests can tell a cache hit from a compile. */
#ifndef FAKE_NATIVE_H
#define FAKE_NATIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "udf.h"

typedef struct fake {
  int broken;           /* flip a bit of document 3's result */
  int fail_compile;     /* compile returns an error */
  int per_doc;          /* give a DOC entry instead of a BLOCK one */
  int no_loaded_entry;  /* an object loaded from the cache gives no entry */
  size_t obj_len;       /* emitted object size (0 = 64) */
  uint32_t abi;         /* 0 = 1 */
  const char *triple;   /* NULL = "x86_64-linux" */
  const char *features; /* NULL = "+sse2,+avx2" */
  _Atomic int compiles, loads, frees, blocks;
  qu_native_ops ops;
  /* a gate: with GATED set, compile says it entered and waits until OPEN */
  int gated, entered, open;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} fake;

QB_UNUSED static void fake_gate_init(fake *f) {
  f->gated = 1;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
}
QB_UNUSED static void fake_wait_entered(fake *f) {
  pthread_mutex_lock(&f->mu);
  while (!f->entered) pthread_cond_wait(&f->cv, &f->mu);
  pthread_mutex_unlock(&f->mu);
}
QB_UNUSED static void fake_open(fake *f) {
  pthread_mutex_lock(&f->mu);
  f->open = 1;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

typedef struct fake_native {
  fake *f;
  int loaded; /* came from fake_load, not fake_compile */
  char export_name[80];
} fake_native;

static qb_code fake_compile(void *ud, const qw_module *module, qu_native **out, qb_err *err) {
  fake *f = ud;
  (void)module;
  if (f->gated) {
    pthread_mutex_lock(&f->mu);
    f->entered = 1;
    pthread_cond_broadcast(&f->cv);
    while (!f->open) pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
  }
  if (f->fail_compile) return qb_fail(err, QB_INVALID, "fake: cannot compile this module");
  fake_native *n = calloc(1, sizeof *n);
  n->f = f;
  atomic_fetch_add(&f->compiles, 1);
  *out = (qu_native *)n;
  return QB_OK;
}

static const qw_trap *fake_doc(void *code, qw_instance *inst, uint64_t *slots) {
  fake_native *n = code;
  qw_func *fn = qw_instance_func(inst, n->export_name);
  return qw_func_call_raw(fn, slots);
}

static const qw_trap *fake_block(void *code, qw_instance *inst, size_t count,
                                 const uint64_t *const *args, uint64_t *results) {
  fake_native *n = code;
  qw_func *fn = qw_instance_func(inst, n->export_name);
  qw_sig sig;
  uint64_t slots[32];
  qw_func_sig(fn, &sig);
  atomic_fetch_add(&n->f->blocks, 1);
  for (size_t i = 0; i < count; i++) {
    for (uint32_t k = 0; k < sig.nparams; k++) slots[k] = args[k][i];
    const qw_trap *t = qw_func_call_raw(fn, slots);
    if (t) return t;
    results[i] = slots[0];
    if (n->f->broken && i == 3) results[i] ^= 1;
  }
  return NULL;
}

static qb_code fake_entry(void *ud, qu_native *nat, const char *export_name,
                          qu_native_entry *out, qb_err *err) {
  fake *f = ud;
  fake_native *n = (fake_native *)nat;
  if (f->no_loaded_entry && n->loaded)
    return qb_fail(err, QB_NOTFOUND, "fake: this object has no export %s", export_name);
  snprintf(n->export_name, sizeof n->export_name, "%s", export_name);
  memset(out, 0, sizeof *out);
  if (f->per_doc) out->doc = fake_doc;
  else out->block = fake_block;
  out->code = n;
  return QB_OK;
}

static void fake_free(void *ud, qu_native *nat) {
  fake *f = ud;
  atomic_fetch_add(&f->frees, 1);
  free(nat);
}

static qb_code fake_emit(void *ud, qu_native *nat, qb_buf *object, qb_err *err) {
  fake *f = ud;
  size_t len = f->obj_len ? f->obj_len : 64;
  char *obj = calloc(1, len);
  (void)nat;
  snprintf(obj, len, "FAKEOBJ1 %d", atomic_load(&f->compiles));
  qb_code rc = qb_buf_append(object, obj, len);
  free(obj);
  return rc ? qb_fail(err, QB_NOMEM, "fake: out of memory") : QB_OK;
}

static qb_code fake_load(void *ud, const qw_module *module, const uint8_t *object, size_t len,
                         qu_native **out, qb_err *err) {
  fake *f = ud;
  (void)module;
  if (len < 8 || memcmp(object, "FAKEOBJ1", 8))
    return qb_fail(err, QB_MALFORMED, "fake: not a fake object");
  fake_native *n = calloc(1, sizeof *n);
  n->f = f;
  n->loaded = 1;
  atomic_fetch_add(&f->loads, 1);
  *out = (qu_native *)n;
  return QB_OK;
}

/* Fill F's ops (F zeroed by the caller, options set). */
QB_UNUSED static const qu_native_ops *fake_ops(fake *f) {
  f->ops.ud = f;
  f->ops.name = "fake";
  f->ops.abi_version = f->abi ? f->abi : 1;
  f->ops.triple = f->triple ? f->triple : "x86_64-linux";
  f->ops.cpu_features = f->features ? f->features : "+sse2,+avx2";
  f->ops.compile = fake_compile;
  f->ops.entry = fake_entry;
  f->ops.free = fake_free;
  f->ops.emit = fake_emit;
  f->ops.load = fake_load;
  return &f->ops;
}

#endif
