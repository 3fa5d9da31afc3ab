/* call.c: the entry points from C into wasm: qw_func_call (typed, checked), qw_func_call_raw
** (the UDF layer's fast path: no checks, no allocation), the execution context's setup, and
** the fuel/interrupt/trap-location accessors. The value stack and the return records are
** allocated once per instance, on its first call (or by qw__exec_setup), and reused.
** Re-entry (a host function calling back into wasm) continues above the running frames. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "wasm_backend.h"

/* Fuel starts from the limits unless qw_instance_set_fuel already set it. */
static void fuel_init(qw__exec *ex, const qw_limits *l) {
  if (ex->fuel != 0 || ex->fuel_limited) return;
  ex->fuel_limited = l->fuel != 0;
  ex->fuel = l->fuel ? (l->fuel > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)l->fuel) : INT64_MAX;
}

qb_code qw__exec_setup(qw__exec *ex, const qw_limits *limits, qb_err *err) {
  if (ex->ready) return QB_OK;
  qw_limits l;
  qw__limits_resolve(&l, limits, NULL);
  size_t nslots = l.max_stack_bytes / sizeof(uint64_t);
  if (nslots < 64) nslots = 64;
  uint32_t depth = l.max_call_depth ? l.max_call_depth : QW_DEFAULT_CALL_DEPTH;
  uint64_t *stack = qb_malloc(nslots * sizeof(uint64_t));
  qw__frame *frames = qb_malloc((size_t)depth * sizeof(qw__frame));
  if (!stack || !frames) {
    qb_free(stack, nslots * sizeof(uint64_t));
    qb_free(frames, (size_t)depth * sizeof(qw__frame));
    return qb_fail(err, QB_NOMEM, "call: out of memory for the value stack (%zu bytes)",
                   nslots * sizeof(uint64_t));
  }
  ex->stack = stack;
  ex->stack_end = stack + nslots;
  ex->frames = ex->fr = frames;
  ex->frames_end = frames + depth;
  ex->top = NULL;
  ex->max_depth = depth;
  ex->depth = 0;
  ex->alloc_bytes = nslots * sizeof(uint64_t) + (size_t)depth * sizeof(qw__frame);
  fuel_init(ex, &l);
  ex->ready = true;
  return QB_OK;
}

void qw__exec_fini(qw__exec *ex) {
  if (!ex || !ex->ready) return;
  qb_free(ex->stack, (size_t)(ex->stack_end - ex->stack) * sizeof(uint64_t));
  qb_free(ex->frames, (size_t)(ex->frames_end - ex->frames) * sizeof(qw__frame));
  ex->stack = ex->stack_end = NULL;
  ex->frames = ex->frames_end = ex->fr = NULL;
  ex->alloc_bytes = 0;
  ex->ready = false;
}

static void note_where(qw_instance *inst, const qw__exec *ex) {
  if (ex->trap_inst && ex->trap_func == UINT32_MAX) /* a guard-page fault in native code */
    snprintf(inst->trap_where, sizeof inst->trap_where, "native code (memory guard page)");
  else if (ex->trap_inst)
    snprintf(inst->trap_where, sizeof inst->trap_where, "function %u at offset 0x%x",
             ex->trap_func, ex->trap_offset);
  else
    snprintf(inst->trap_where, sizeof inst->trap_where, "host function");
}

/* Where the arguments of a new call go: the stack's bottom, or above the running frames when
** a host function re-enters. NULL when N slots do not fit. */
static uint64_t *call_base(qw__exec *ex, uint32_t n) {
  bool outer = ex->fr == ex->frames;
  uint64_t *base = outer ? ex->stack : ex->top;
  if (!base || base + n > ex->stack_end) return NULL;
  if (outer) ex->trap_inst = NULL;
  return base;
}

const qw_trap *qw_func_call_raw(qw_func *f, uint64_t *slots) {
  if (f->host) return f->host(f->host_ud, NULL, slots, slots);
  qw_instance *inst = f->inst;
  qw__exec *ex = inst->exec;
  if (QB_UNLIKELY(!ex->ready) && qw__exec_setup(ex, &inst->limits, NULL)) return QW_TRAP_NOMEM;
  uint32_t np = f->type->nparams, nr = f->type->nresults;
  uint64_t *base = call_base(ex, np > nr ? np : nr);
  if (QB_UNLIKELY(!base)) return QW_TRAP_STACK_EXHAUSTED;
  for (uint32_t i = 0; i < np; i++) base[i] = slots[i];
  const qw_trap *t = qw__invoke(ex, f, base);
  if (QB_UNLIKELY(t != NULL)) {
    note_where(inst, ex);
    return t;
  }
  for (uint32_t i = 0; i < nr; i++) slots[i] = base[i];
  return NULL;
}

const qw_trap *qw_native_block_call(qw_instance *inst, qw_native_fn fn, size_t n,
                                    const uint64_t *const *cols, uint64_t *res) {
  qw__exec *ex = inst->exec;
  if (QB_UNLIKELY(!ex->ready) && qw__exec_setup(ex, &inst->limits, NULL)) return QW_TRAP_NOMEM;
  if (QB_UNLIKELY(ex->fr != ex->frames)) return QW_TRAP_HOST; /* outermost calls only */
  uint64_t *fp = call_base(ex, 3);
  if (QB_UNLIKELY(!fp)) return QW_TRAP_STACK_EXHAUSTED;
  char probe;
  ex->cstack_limit = (uintptr_t)&probe - (256u << 10);
  fp[0] = n, fp[1] = (uint64_t)(uintptr_t)cols, fp[2] = (uint64_t)(uintptr_t)res;
  qw__code c;
  memset(&c, 0, sizeof c);
  c.native = fn;
  c.nslots = 3;
  const qw_trap *t = qw__native_run(ex, inst, &c, fp);
  if (QB_UNLIKELY(t != NULL)) note_where(inst, ex);
  return t;
}

static uint64_t val_bits(const qw_val *v) {
  switch (v->type) {
  case QW_I32: return v->of.i32;
  case QW_F32: return v->of.f32_bits;
  case QW_I64: return v->of.i64;
  case QW_F64: return v->of.f64_bits;
  default: return (uint64_t)(uintptr_t)v->of.ref;
  }
}

static qw_val bits_val(uint8_t type, uint64_t b) {
  qw_val v;
  memset(&v, 0, sizeof v);
  v.type = (qw_type)type;
  switch (type) {
  case QW_I32: v.of.i32 = (uint32_t)b; break;
  case QW_F32: v.of.f32_bits = (uint32_t)b; break;
  case QW_I64: v.of.i64 = b; break;
  case QW_F64: v.of.f64_bits = b; break;
  default: v.of.ref = (void *)(uintptr_t)b; break;
  }
  return v;
}

qb_code qw_func_call(qw_func *f, const qw_val *args, uint32_t nargs, qw_val *results,
                     uint32_t nresults, qb_err *err) {
  const qw__functype *ft = f->type;
  uint32_t np = ft->nparams, nr = ft->nresults, n = np > nr ? np : nr;
  if (nargs != np)
    return qb_fail(err, QB_INVAL, "call: expected %u argument%s, got %u", np,
                   np == 1 ? "" : "s", nargs);
  for (uint32_t i = 0; i < np; i++)
    if (args[i].type != (qw_type)ft->types[i])
      return qb_fail(err, QB_INVAL, "call: argument %u: expected %s, got %s", i,
                     qw_type_name((qw_type)ft->types[i]), qw_type_name(args[i].type));
  if (nresults < nr)
    return qb_fail(err, QB_INVAL, "call: room for %u result%s needed, got %u", nr,
                   nr == 1 ? "" : "s", nresults);

  const qw_trap *t;
  uint64_t *base, small[16], *heap = NULL;
  qw_instance *inst = f->inst;
  if (f->host) { /* a host function called from C: no instance, no stack */
    base = n <= 16 ? small : (heap = qb_malloc((size_t)n * 8));
    if (!base) return qb_fail(err, QB_NOMEM, "call: out of memory");
    for (uint32_t i = 0; i < np; i++) base[i] = val_bits(&args[i]);
    t = f->host(f->host_ud, NULL, base, base);
  } else {
    qw__exec *ex = inst->exec;
    qb_code rc;
    if (!ex->ready && (rc = qw__exec_setup(ex, &inst->limits, err))) return rc;
    if (!(base = call_base(ex, n)))
      return qb_fail(err, QB_TRAP, "%s", QW_TRAP_STACK_EXHAUSTED->msg);
    for (uint32_t i = 0; i < np; i++) base[i] = val_bits(&args[i]);
    t = qw__invoke(ex, f, base);
    if (t) note_where(inst, ex);
  }
  if (!t)
    for (uint32_t i = 0; i < nr; i++) results[i] = bits_val(ft->types[np + i], base[i]);
  qb_free(heap, (size_t)n * 8);
  if (t) return qb_fail(err, t->code, "%s", t->msg);
  return QB_OK;
}

const char *qw_instance_trap_where(const qw_instance *inst) { return inst->trap_where; }

int qw_instance_exit_code(const qw_instance *inst) { return inst->exit_code; }

void qw_instance_set_fuel(qw_instance *inst, uint64_t fuel) {
  qw__exec *ex = &inst->own_exec;
  ex->fuel_limited = fuel != 0;
  ex->fuel = fuel ? (fuel > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)fuel) : INT64_MAX;
}

/* What is left; UINT64_MAX when unlimited, 0 when spent. */
uint64_t qw_instance_fuel(const qw_instance *inst) {
  const qw__exec *ex = &inst->own_exec;
  if (!ex->fuel_limited && ex->fuel == 0) /* not started yet: the limits decide */
    return inst->limits.fuel ? inst->limits.fuel : UINT64_MAX;
  if (!ex->fuel_limited) return UINT64_MAX;
  return ex->fuel < 0 ? 0 : (uint64_t)ex->fuel;
}

void qw_instance_interrupt(qw_instance *inst) {
  atomic_store_explicit(&inst->own_exec.interrupt, 1, memory_order_relaxed);
  qw__exec *ex = inst->exec; /* the running call's context, when entered through another */
  if (ex && ex != &inst->own_exec) atomic_store_explicit(&ex->interrupt, 1, memory_order_relaxed);
}

void qw_instance_interrupt_clear(qw_instance *inst) {
  atomic_store_explicit(&inst->own_exec.interrupt, 0, memory_order_relaxed);
}
