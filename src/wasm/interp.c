/* interp.c: runs compile.c's threaded code. One dispatch function, run(), whose handlers live
** in ops_*.inc (each included exactly once) behind vmcase/vmbreak, so that computed goto
** (default, gnu11 labels-as-values) and a plain switch (QW_DISPATCH_SWITCH) share the bodies.
** Calls between functions of one instance stay inside run() (return records in ex->frames);
** host functions and other instances' functions go through qw__invoke, which recurses.
** Invariant: a trap leaves run() by `goto trap` with PC still on the trapping instruction,
** so the location is found in code->pcmap once, on the way out; nothing here allocates,
** locks, logs or formats, except the first call of a function, which compiles it. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* spec: every float operation rounds on its own; never fuse a * b + c into one FMA */
#ifdef __clang__
#pragma clang fp contract(off)
#endif

enum {
#define IOP(n) OP_##n,
#include "iops.def"
  OP__COUNT
};

/* ---- slot access: every slot is 64 bits; an i32/f32 lives in the low half. Writes always
** store all 64 bits (zero-extended) so a later 64-bit move never waits on a partial store. */
#define S(i) fp[i]
#define U32(i) ((uint32_t)fp[i])
#define I32(i) ((int32_t)(uint32_t)fp[i])
#define U64(i) (fp[i])
#define I64(i) ((int64_t)fp[i])
#define SETU32(i, v) (fp[i] = (uint64_t)(uint32_t)(v))
#define SETU64(i, v) (fp[i] = (uint64_t)(v))

QB_INLINE float getf32(const uint64_t *p) {
  uint32_t b = (uint32_t)*p;
  float f;
  memcpy(&f, &b, 4);
  return f;
}
QB_INLINE double getf64(const uint64_t *p) {
  double d;
  memcpy(&d, p, 8);
  return d;
}
QB_INLINE void setf32(uint64_t *p, float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  *p = b;
}
QB_INLINE void setf64(uint64_t *p, double d) { memcpy(p, &d, 8); }
#define F32(i) getf32(fp + (i))
#define F64(i) getf64(fp + (i))
#define SETF32(i, v) setf32(fp + (i), (v))
#define SETF64(i, v) setf64(fp + (i), (v))

/* ---- float helpers with the spec's NaN and signed-zero rules ---- */
/* spec: ceil/floor/trunc of a NaN give an arithmetic (quiet) NaN. gcc -O2 inlines these as
** bit tricks that pass a signalling NaN through unchanged, so quiet it first (x + x). */
static float f32_ceil(float x) { return x != x ? x + x : ceilf(x); }
static float f32_floor(float x) { return x != x ? x + x : floorf(x); }
static float f32_trunc(float x) { return x != x ? x + x : truncf(x); }
static double f64_ceil(double x) { return x != x ? x + x : ceil(x); }
static double f64_floor(double x) { return x != x ? x + x : floor(x); }
static double f64_trunc(double x) { return x != x ? x + x : trunc(x); }

static float f32_min(float a, float b) {
  if (a != a || b != b) return a + b; /* spec: NaN in, (arithmetic) NaN out */
  if (a == b) { /* -0 vs +0: min is -0 */
    uint32_t x, y;
    memcpy(&x, &a, 4), memcpy(&y, &b, 4);
    x |= y;
    memcpy(&a, &x, 4);
    return a;
  }
  return a < b ? a : b;
}
static float f32_max(float a, float b) {
  if (a != a || b != b) return a + b;
  if (a == b) {
    uint32_t x, y;
    memcpy(&x, &a, 4), memcpy(&y, &b, 4);
    x &= y;
    memcpy(&a, &x, 4);
    return a;
  }
  return a > b ? a : b;
}
static double f64_min(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) {
    uint64_t x, y;
    memcpy(&x, &a, 8), memcpy(&y, &b, 8);
    x |= y;
    memcpy(&a, &x, 8);
    return a;
  }
  return a < b ? a : b;
}
static double f64_max(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) {
    uint64_t x, y;
    memcpy(&x, &a, 8), memcpy(&y, &b, 8);
    x &= y;
    memcpy(&a, &x, 8);
    return a;
  }
  return a > b ? a : b;
}

/* ---- slow paths, kept out of run() so its hot loop stays small ---- */

/* The first call of a function through INST's entry slot: compile (or take the module's
** published code) and fill the slot. */
static QB_NOINLINE const qw__code *compile_slow(qw_instance *inst, uint32_t defined_idx) {
  qw__code *c = NULL;
  if (qw__compile(inst->mod, defined_idx, &c, NULL)) return NULL;
  atomic_store_explicit(&inst->entries[defined_idx], c, memory_order_release);
  return c;
}

/* Where PC is in wasm terms: the pcmap entry at or before it (function index, byte offset). */
static void trap_where(const qw__code *code, const uint32_t *pc, uint32_t *func, uint32_t *off) {
  uint32_t at = (uint32_t)(pc - code->ops), lo = 0, hi = code->npc;
  *func = code->func_index, *off = 0;
  if (!hi) return;
  while (hi - lo > 1) { /* last entry with unit offset <= AT */
    uint32_t mid = lo + (hi - lo) / 2;
    if (code->pcmap[3 * mid] <= at) lo = mid;
    else hi = mid;
  }
  *off = code->pcmap[3 * lo + 1];
  *func = code->pcmap[3 * lo + 2];
}

static QB_NOINLINE const qw_trap *mem_fill(qw__memory *m, uint32_t d, uint32_t v, uint32_t n) {
  if ((uint64_t)d + n > m->size_bytes) return QW_TRAP_OOB_MEMORY;
  memset(m->data + d, (int)(v & 0xff), n);
  return NULL;
}
static QB_NOINLINE const qw_trap *mem_copy(qw__memory *m, uint32_t d, uint32_t s, uint32_t n) {
  if ((uint64_t)d + n > m->size_bytes || (uint64_t)s + n > m->size_bytes)
    return QW_TRAP_OOB_MEMORY;
  memmove(m->data + d, m->data + s, n);
  return NULL;
}
static QB_NOINLINE const qw_trap *mem_init(qw_instance *inst, uint32_t seg, uint32_t d,
                                           uint32_t s, uint32_t n) {
  const qw__data *ds = &inst->mod->datas[seg];
  uint64_t len = inst->data_dropped[seg] ? 0 : ds->len;
  qw__memory *m = inst->mem0_obj;
  if ((uint64_t)s + n > len || (uint64_t)d + n > m->size_bytes) return QW_TRAP_OOB_MEMORY;
  if (n) memcpy(m->data + d, ds->bytes + s, n);
  return NULL;
}
static QB_NOINLINE const qw_trap *tab_fill(qw__table *t, uint32_t i, void *v, uint32_t n) {
  if ((uint64_t)i + n > t->size) return QW_TRAP_OOB_TABLE;
  for (uint32_t k = 0; k < n; k++) t->elems[i + k] = v;
  return NULL;
}
static QB_NOINLINE const qw_trap *tab_copy(qw__table *dt, qw__table *st, uint32_t d, uint32_t s,
                                           uint32_t n) {
  if ((uint64_t)d + n > dt->size || (uint64_t)s + n > st->size) return QW_TRAP_OOB_TABLE;
  if (n) memmove(dt->elems + d, st->elems + s, (size_t)n * sizeof(void *));
  return NULL;
}
static QB_NOINLINE const qw_trap *tab_init(qw_instance *inst, uint32_t ti, uint32_t seg,
                                           uint32_t d, uint32_t s, uint32_t n) {
  const qw__elem *es = &inst->mod->elems[seg];
  uint64_t len = inst->elem_dropped[seg] ? 0 : es->count;
  qw__table *t = inst->tables[ti];
  if ((uint64_t)s + n > len || (uint64_t)d + n > t->size) return QW_TRAP_OOB_TABLE;
  for (uint32_t k = 0; k < n; k++)
    t->elems[d + k] = (void *)(uintptr_t)qw__cexpr_eval(inst, &es->items[s + k]);
  return NULL;
}

/* ---- the dispatch loop ---- */

#ifdef QW_DISPATCH_SWITCH
#define vmdispatch() \
  dispatch:          \
  switch (pc[0])
#define vmcase(n) case OP_##n:
#define vmbreak(k) \
  do {             \
    pc += (k);     \
    goto dispatch; \
  } while (0)
#define vmdefault default: __builtin_unreachable();
#else
/* the handler's address is in the op's first two units (8 bytes, 4-byte aligned) */
QB_INLINE const void *handler_at(const uint32_t *pc) {
  const void *h;
  memcpy(&h, pc, sizeof h);
  return h;
}
#define vmdispatch() goto *handler_at(pc);
#define vmcase(n) L_##n:
#define vmbreak(k)                 \
  do {                             \
    pc += (k);                     \
    goto *handler_at(pc);          \
  } while (0)
#define vmdefault
#endif

#define TRAP(T) \
  do {          \
    t = (T);    \
    goto trap;  \
  } while (0)

/* The budget check at every call and loop back-edge: one decrement and one test of the
** interrupt flag (two predicted branches); which of the two fired is sorted out at
** `out_of_fuel`. */
#define FUEL()                                                                          \
  do {                                                                                  \
    if (QB_UNLIKELY(--fuel < 0) ||                                                      \
        QB_UNLIKELY(atomic_load_explicit(&ex->interrupt, memory_order_relaxed) != 0))   \
      goto out_of_fuel;                                                                 \
  } while (0)

/* Bulk memory and table ops pay for their length too, so that a loop of them cannot run for
** seconds on a small budget: one unit per 64 KiB of memory (or 8192 table entries) on top of
** the op's own unit. Charged before the op runs. */
#define FUEL_BULK(units)                                                                \
  do {                                                                                  \
    fuel -= (int64_t)(units);                                                           \
    FUEL();                                                                             \
  } while (0)

/* A taken branch: displacement J (units, relative to the op); a backward one pays fuel. */
#define JUMP(j)                          \
  do {                                   \
    int32_t j_ = (int32_t)(j);           \
    if (QB_UNLIKELY(j_ <= 0)) FUEL();    \
    vmbreak(j_);                         \
  } while (0)


/* Run CODE on frame FP (arguments in place, locals zeroed) in INST. EX == NULL: fill optable
** and return. (gcc: the short frame-init loop in CALL must stay a loop, not a memcpy call
** that spills the loop's registers.) */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns", "fp-contract=off")))
#endif
static const qw_trap *run(qw__exec *ex, qw_instance *inst, const qw__code *code, uint64_t *fp) {
#ifndef QW_DISPATCH_SWITCH
  static const void *const labels[OP__COUNT] = {
#define IOP(n) &&L_##n,
#include "iops.def"
  };
  if (QB_UNLIKELY(!ex)) { /* qw__interp_handlers asks for the table */
    *(const void *const **)(void *)fp = labels;
    return NULL;
  }
#else
  if (QB_UNLIKELY(!ex)) return NULL;
#endif
  const qw_trap *t;
  const uint32_t *pc = code->ops;
  qw_func *f;             /* call scratch, shared by the call handlers */
  uint64_t *nfp;
  const uint32_t *ret;
  const qw__code *c;
  int64_t fuel = ex->fuel;
  qw__frame *const fr0 = ex->fr;
  qw__frame *fr = fr0;
  qw__frame *const frames_end = ex->frames_end;
  uint64_t *const stack_end = ex->stack_end;
  uint8_t *const mem = inst->mem0;
  uint64_t msize = inst->mem0_obj ? inst->mem0_obj->size_bytes : 0;
  qw__global **const globals = inst->globals;
  _Atomic(const qw__code *) *const entries = inst->entries;

  if (QB_UNLIKELY(fr >= frames_end)) return QW_TRAP_STACK_EXHAUSTED;
  fr->ret_pc = NULL; /* the entry frame returns to qw__invoke */

  for (;;) {
    vmdispatch() {
#include "ops_control.inc"
#include "ops_memory.inc"
#include "ops_numeric.inc"
#include "ops_convert.inc"
#include "ops_ref.inc"
      vmdefault
    }
  }

out_of_fuel:
  if (fuel < 0) {
    t = QW_TRAP_FUEL;
  } else {
    atomic_store_explicit(&ex->interrupt, 0, memory_order_relaxed); /* delivered once */
    t = QW_TRAP_INTERRUPTED;
  }
  fuel = fuel < 0 ? -1 : fuel;
trap:
  if (!ex->trap_inst) {
    ex->trap_inst = inst;
    trap_where(code, pc, &ex->trap_func, &ex->trap_offset);
  }
  ex->fuel = fuel;
  ex->fr = fr0;
  return t;
done:
  ex->fuel = fuel;
  ex->fr = fr0;
  return NULL;
}

const void *const *qw__interp_handlers(void) {
#ifdef QW_DISPATCH_SWITCH
  return NULL;
#else
  const void *const *table = NULL;
  run(NULL, NULL, NULL, (uint64_t *)(void *)&table); /* the static label table's address */
  return table;
#endif
}

const qw_trap *qw__invoke(qw__exec *ex, qw_func *f, uint64_t *args) {
  if (f->host) return f->host(f->host_ud, NULL, args, args);
  qw_instance *inst = f->inst;
  if (QB_UNLIKELY(!ex->ready) && qw__exec_setup(ex, &inst->limits, NULL)) return QW_TRAP_NOMEM;
  const qw__code *c = atomic_load_explicit(f->entry, memory_order_acquire);
  if (QB_UNLIKELY(!c)) {
    if (!(c = compile_slow(inst, f->index - inst->mod->nfunc_imports))) return QW_TRAP_NOMEM;
  }
  /* The call's unit of fuel (calls inside run() pay in CALL), and the interrupt flag. */
  if (QB_UNLIKELY((--ex->fuel < 0) | atomic_load_explicit(&ex->interrupt, memory_order_relaxed))) {
    if (!ex->trap_inst) { /* where: the callee's entry */
      ex->trap_inst = inst;
      ex->trap_func = f->index;
      ex->trap_offset = f->decl->body_offset;
    }
    if (ex->fuel < 0) {
      ex->fuel = -1;
      return QW_TRAP_FUEL;
    }
    atomic_store_explicit(&ex->interrupt, 0, memory_order_relaxed);
    return QW_TRAP_INTERRUPTED;
  }
  /* The native stack: only nested qw__invoke (cross-instance calls) recurse in C. */
  char probe;
  bool outer = ex->fr == ex->frames;
  if (outer) ex->cstack_limit = (uintptr_t)&probe - (256u << 10);
  else if (QB_UNLIKELY((uintptr_t)&probe < ex->cstack_limit)) return QW_TRAP_STACK_EXHAUSTED;

  /* ARGS normally lies in EX's stack (the contract); copy it in when a caller passed its own
  ** buffer (the start function, tests). */
  uint64_t *fp = args;
  bool copied = false;
  if (QB_UNLIKELY(args < ex->stack || args >= ex->stack_end)) {
    fp = outer ? ex->stack : ex->top;
    if (!fp || fp + c->nparams > ex->stack_end) return QW_TRAP_STACK_EXHAUSTED;
    memcpy(fp, args, (size_t)c->nparams * 8);
    copied = true;
  }
  if (QB_UNLIKELY(fp + c->nslots > ex->stack_end)) return QW_TRAP_STACK_EXHAUSTED;
  if (c->native) { /* native code: straight to the boundary */
    const qw_trap *t = qw__native_run(ex, inst, c, fp);
    if (copied && !t) memcpy(args, fp, (size_t)c->nresults * 8);
    return t;
  }
  { /* as CALL does: locals zero, constants in their slots */
    uint64_t *dst = fp + c->nparams;
    const uint64_t *src = c->init;
    for (uint32_t i = 0, n = c->ninit; i < n; i += 4) {
      uint64_t x0 = src[i], x1 = src[i + 1], x2 = src[i + 2], x3 = src[i + 3];
      dst[i] = x0, dst[i + 1] = x1, dst[i + 2] = x2, dst[i + 3] = x3;
    }
  }
  qw__exec *prev = inst->exec;
  inst->exec = ex;
  const qw_trap *t = run(ex, inst, c, fp);
  inst->exec = prev;
  if (copied && !t) memcpy(args, fp, (size_t)c->nresults * 8);
  return t;
}
