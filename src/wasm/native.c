/* native.c: the instance side of the native tier (wasm_backend.h): the trap boundary both
** tiers share (qw__native_run, the one setjmp; qw_rt_trap & co., the one longjmp), the runtime
** functions native code calls, entry stubs and their publication in an instance's slots.
** Invariant: between the boundary's setjmp and any longjmp to it, nothing holds a lock or
** owns memory outside the instance; the boundary restores the execution context (return
** records, fuel, inst->exec) itself, so frames skipped by the longjmp need no clean-up. */
#define _GNU_SOURCE /* pthread_getattr_np */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "internal.h"
#include "wasm_backend.h"

enum {
#define IOP(n) OP_##n,
#include "iops.def"
  OP__COUNT
};

static const uint64_t no_memory = 0;

/* The native stack floor of this thread: its lowest address plus a margin for the runtime,
** host functions and signal handlers. Found once per thread. */
static _Thread_local uintptr_t stack_floor;
static uintptr_t cstack_floor(void) {
  if (QB_LIKELY(stack_floor)) return stack_floor;
  pthread_attr_t a;
  void *lo = NULL;
  size_t size = 0;
  char probe;
  uintptr_t floor = (uintptr_t)&probe - (1u << 20);
  if (!pthread_getattr_np(pthread_self(), &a)) {
    if (!pthread_attr_getstack(&a, &lo, &size) && lo && size > (512u << 10))
      floor = (uintptr_t)lo + (256u << 10);
    pthread_attr_destroy(&a);
  }
  return stack_floor = floor;
}

const qw_trap *qw__btrap(uint32_t id) {
  static const qw_trap *const map[QW_BT__COUNT] = {
      [QW_BT_UNREACHABLE] = QW_TRAP_UNREACHABLE,
      [QW_BT_DIV_ZERO] = QW_TRAP_DIV_ZERO,
      [QW_BT_INT_OVERFLOW] = QW_TRAP_INT_OVERFLOW,
      [QW_BT_BAD_CONVERSION] = QW_TRAP_BAD_CONVERSION,
      [QW_BT_OOB_MEMORY] = QW_TRAP_OOB_MEMORY,
      [QW_BT_OOB_TABLE] = QW_TRAP_OOB_TABLE,
      [QW_BT_UNDEFINED_ELEMENT] = QW_TRAP_UNDEFINED_ELEMENT,
      [QW_BT_UNINIT_ELEMENT] = QW_TRAP_UNINIT_ELEMENT,
      [QW_BT_INDIRECT_MISMATCH] = QW_TRAP_INDIRECT_MISMATCH,
      [QW_BT_STACK_EXHAUSTED] = QW_TRAP_STACK_EXHAUSTED,
      [QW_BT_NULL_REF] = QW_TRAP_NULL_REF,
  };
  return id < QW_BT__COUNT ? map[id] : QW_TRAP_UNREACHABLE;
}

/* ---- guard pages ------------------------------------------------------------------------------ */

/* the innermost boundary's env on this thread while native code runs (NULL otherwise) */
static _Thread_local qw_native_env *cur_env;
static struct sigaction prev_segv, prev_bus;
static bool guard_ok;

static QB_NOINLINE __attribute__((noreturn)) void rt_raise(qw_native_env *env, const qw_trap *t,
                                                        uint32_t func, uint32_t off);

static void chain(int sig, siginfo_t *si, void *uc) {
  const struct sigaction *p = sig == SIGBUS ? &prev_bus : &prev_segv;
  if (p->sa_flags & SA_SIGINFO) {
    p->sa_sigaction(sig, si, uc);
  } else if (p->sa_handler == SIG_DFL || p->sa_handler == SIG_IGN) {
    /* back to the default action and return: the faulting instruction faults again */
    signal(sig, SIG_DFL);
  } else {
    p->sa_handler(sig);
  }
}

/* A fault is ours only on a thread inside a boundary, at an address of the running instance's
** memory-0 reservation past its committed size: then the faulting access is a wasm load or
** store of native code (the runtime's own memory functions check bounds before touching
** memory), and nothing between the boundary and here holds a lock or owns memory. */
static void on_fault(int sig, siginfo_t *si, void *uc) {
  qw_native_env *env = cur_env;
  const uint8_t *a = si->si_addr;
  if (env && env->mem_end && a >= env->mem + *env->mem_size && a < env->mem_end) {
    /* the place is not known from the PC: the boundary reports the function entered */
    rt_raise(env, QW_TRAP_OOB_MEMORY, UINT32_MAX, 0);
  }
  chain(sig, si, uc);
}

static void guard_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  /* SA_NODEFER: the handler leaves by longjmp, so the signal must not stay blocked; SA_ONSTACK
  ** uses the thread's alternate stack when it has one (ASan's); ours run well above the floor
  ** native code keeps free (cstack_floor), so they need none */
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  guard_ok = !sigaction(SIGSEGV, &sa, &prev_segv) && !sigaction(SIGBUS, &sa, &prev_bus);
}

bool qw_native_guard_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, guard_install);
  return guard_ok;
}

bool qw_instance_guarded(const qw_instance *inst) {
  return !inst->mem0_obj || inst->mem0_obj->guarded;
}

const qw_trap *qw__native_run(qw__exec *ex, qw_instance *inst, const qw__code *c, uint64_t *fp) {
  qw_native_env env;
  jmp_buf jb;
  ptrdiff_t left = ex->frames_end - ex->fr - 2; /* records for the calls out of native code */
  if (QB_UNLIKELY(left < 0)) return QW_TRAP_STACK_EXHAUSTED;
  env.mem = inst->mem0;
  env.mem_size = inst->mem0_obj ? &inst->mem0_obj->size_bytes : &no_memory;
  env.globals = (uint64_t *const *)inst->globals;
  env.funcs = (void *const *)inst->funcs;
  env.fuel = ex->fuel;
  env.interrupt = &ex->interrupt;
  env.depth_left = env.depth0 = left;
  env.cstack_limit = cstack_floor();
  env.inst = inst;
  env.ex = ex;
  env.jb = &jb;
  env.trap = NULL;
  env.top = fp + c->nslots;
  env.fr = ex->fr;
  env.mem_end = inst->mem0_obj && inst->mem0_obj->guarded
                    ? inst->mem0_obj->data + inst->mem0_obj->reserved_bytes
                    : NULL;
  env.prev = cur_env;
  qw__exec *prev = inst->exec;
  inst->exec = ex;
  /* C11 7.13.2.1: ENV is changed between setjmp and longjmp (raise sets trap, the code its fuel),
  ** so after a longjmp it is read through a volatile pointer, never from a copy the compiler
  ** kept (clang -O2 returned the NULL it had stored before setjmp) */
  qw_native_env *volatile penv = &env;
  cur_env = &env;
  if (!setjmp(jb)) c->native(&env, fp);
  cur_env = penv->prev;
  inst->exec = prev;
  ex->fuel = penv->fuel;
  ex->fr = penv->fr;
  return penv->trap;
}

/* ---- the runtime functions ------------------------------------------------------------------ */

static QB_NOINLINE __attribute__((noreturn)) void rt_raise(qw_native_env *env, const qw_trap *t,
                                                        uint32_t func, uint32_t off) {
  qw__exec *ex = env->ex;
  if (!ex->trap_inst) {
    ex->trap_inst = env->inst;
    ex->trap_func = func;
    ex->trap_offset = off;
  }
  env->trap = t;
  longjmp(*(jmp_buf *)env->jb, 1);
}

void qw_rt_trap(qw_native_env *env, uint32_t t, uint32_t func, uint32_t off) {
  rt_raise(env, qw__btrap(t), func, off);
}

void qw_rt_budget(qw_native_env *env, uint32_t func, uint32_t off) {
  if (env->fuel < 0) {
    env->fuel = -1;
    rt_raise(env, QW_TRAP_FUEL, func, off);
  }
  atomic_store_explicit(env->interrupt, 0, memory_order_relaxed); /* delivered once */
  rt_raise(env, QW_TRAP_INTERRUPTED, func, off);
}

/* F called from native code with arguments in SLOTS (not in the value stack): as the
** interpreter's call_out, on the return records above the native ones. */
static void call_out(qw_native_env *env, qw_func *f, uint64_t *slots, uint32_t func,
                     uint32_t off) {
  qw__exec *ex = env->ex;
  const qw_trap *t;
  if (!f->host && f->inst == env->inst) { /* native to native in this instance: no new boundary */
    const qw__code *c = atomic_load_explicit(f->entry, memory_order_acquire);
    if (c && c->native) {
      if (QB_UNLIKELY(--env->fuel < 0 ||
                      atomic_load_explicit(env->interrupt, memory_order_relaxed)))
        qw_rt_budget(env, func, off);
      if (QB_UNLIKELY(env->depth_left <= 0)) rt_raise(env, QW_TRAP_STACK_EXHAUSTED, func, off);
      env->depth_left--;
      c->native(env, slots);
      env->depth_left++;
      return;
    }
  }
  if (f->host) {
    if (QB_UNLIKELY(--env->fuel < 0 ||
                    atomic_load_explicit(env->interrupt, memory_order_relaxed)))
      qw_rt_budget(env, func, off);
    ex->fuel = env->fuel;
    ex->top = env->top;
    t = f->host(f->host_ud, env->inst, slots, slots);
    env->fuel = ex->fuel;
  } else {
    ex->fuel = env->fuel;
    ex->fr = (qw__frame *)env->fr + 1 + (env->depth0 - env->depth_left);
    ex->top = env->top;
    t = qw__invoke(ex, f, slots);
    env->fuel = ex->fuel;
    ex->fr = env->fr;
  }
  if (QB_UNLIKELY(t != NULL)) rt_raise(env, t, func, off);
}

void qw_rt_call(qw_native_env *env, uint32_t f, uint64_t *slots, uint32_t func, uint32_t off) {
  call_out(env, env->inst->funcs[f], slots, func, off);
}

void qw_rt_call_indirect(qw_native_env *env, uint32_t tab, uint32_t type_idx, uint32_t i,
                         uint64_t *slots, uint32_t func, uint32_t off) {
  qw_instance *inst = env->inst;
  const qw__table *tb = inst->tables[tab];
  if (QB_UNLIKELY(i >= tb->size)) rt_raise(env, QW_TRAP_UNDEFINED_ELEMENT, func, off);
  qw_func *f = (qw_func *)tb->elems[i];
  if (QB_UNLIKELY(!f)) rt_raise(env, QW_TRAP_UNINIT_ELEMENT, func, off);
  if (QB_UNLIKELY(f->canon != inst->mod->types[type_idx].canon))
    rt_raise(env, QW_TRAP_INDIRECT_MISMATCH, func, off);
  call_out(env, f, slots, func, off);
}

int32_t qw_rt_memory_grow(qw_native_env *env, uint32_t delta) {
  qw_instance *inst = env->inst;
  return inst->mem0_obj ? qw__memory_grow(inst->mem0_obj, delta) : -1;
}

/* bulk ops pay fuel by length as FUEL_BULK does in interp.c */
static void bulk_fuel(qw_native_env *env, uint64_t units, uint32_t func, uint32_t off) {
  env->fuel -= (int64_t)units + 1;
  if (QB_UNLIKELY(env->fuel < 0 || atomic_load_explicit(env->interrupt, memory_order_relaxed)))
    qw_rt_budget(env, func, off);
}

void qw_rt_memory_fill(qw_native_env *env, uint32_t d, uint32_t v, uint32_t n, uint32_t func,
                       uint32_t off) {
  qw__memory *m = env->inst->mem0_obj;
  bulk_fuel(env, n >> 16, func, off);
  if ((uint64_t)d + n > m->size_bytes) rt_raise(env, QW_TRAP_OOB_MEMORY, func, off);
  memset(m->data + d, (int)(v & 0xff), n);
}

void qw_rt_memory_copy(qw_native_env *env, uint32_t d, uint32_t s, uint32_t n, uint32_t func,
                       uint32_t off) {
  qw__memory *m = env->inst->mem0_obj;
  bulk_fuel(env, n >> 16, func, off);
  if ((uint64_t)d + n > m->size_bytes || (uint64_t)s + n > m->size_bytes)
    rt_raise(env, QW_TRAP_OOB_MEMORY, func, off);
  memmove(m->data + d, m->data + s, n);
}

void qw_rt_memory_init(qw_native_env *env, uint32_t seg, uint32_t d, uint32_t s, uint32_t n,
                       uint32_t func, uint32_t off) {
  qw_instance *inst = env->inst;
  const qw__data *ds = &inst->mod->datas[seg];
  uint64_t len = inst->data_dropped[seg] ? 0 : ds->len;
  qw__memory *m = inst->mem0_obj;
  bulk_fuel(env, n >> 16, func, off);
  if ((uint64_t)s + n > len || (uint64_t)d + n > m->size_bytes)
    rt_raise(env, QW_TRAP_OOB_MEMORY, func, off);
  if (n) memcpy(m->data + d, ds->bytes + s, n);
}

void qw_rt_data_drop(qw_native_env *env, uint32_t seg) { env->inst->data_dropped[seg] = 1; }

uint64_t qw_rt_table_get(qw_native_env *env, uint32_t tab, uint32_t i, uint32_t func,
                         uint32_t off) {
  qw__table *t = env->inst->tables[tab];
  if (i >= t->size) rt_raise(env, QW_TRAP_OOB_TABLE, func, off);
  return (uint64_t)(uintptr_t)t->elems[i];
}

void qw_rt_table_set(qw_native_env *env, uint32_t tab, uint32_t i, uint64_t v, uint32_t func,
                     uint32_t off) {
  qw__table *t = env->inst->tables[tab];
  if (i >= t->size) rt_raise(env, QW_TRAP_OOB_TABLE, func, off);
  t->elems[i] = (void *)(uintptr_t)v;
}

uint32_t qw_rt_table_size(qw_native_env *env, uint32_t tab) { return env->inst->tables[tab]->size; }

int32_t qw_rt_table_grow(qw_native_env *env, uint32_t tab, uint64_t init, uint32_t delta) {
  return qw__table_grow(env->inst->tables[tab], delta, (void *)(uintptr_t)init);
}

void qw_rt_table_fill(qw_native_env *env, uint32_t tab, uint32_t i, uint64_t v, uint32_t n,
                      uint32_t func, uint32_t off) {
  qw__table *t = env->inst->tables[tab];
  bulk_fuel(env, n >> 13, func, off);
  if ((uint64_t)i + n > t->size) rt_raise(env, QW_TRAP_OOB_TABLE, func, off);
  for (uint32_t k = 0; k < n; k++) t->elems[i + k] = (void *)(uintptr_t)v;
}

void qw_rt_table_copy(qw_native_env *env, uint32_t dti, uint32_t sti, uint32_t d, uint32_t s,
                      uint32_t n, uint32_t func, uint32_t off) {
  qw__table *dt = env->inst->tables[dti], *st = env->inst->tables[sti];
  bulk_fuel(env, n >> 13, func, off);
  if ((uint64_t)d + n > dt->size || (uint64_t)s + n > st->size)
    rt_raise(env, QW_TRAP_OOB_TABLE, func, off);
  if (n) memmove(dt->elems + d, st->elems + s, (size_t)n * sizeof(void *));
}

void qw_rt_table_init(qw_native_env *env, uint32_t ti, uint32_t seg, uint32_t d, uint32_t s,
                      uint32_t n, uint32_t func, uint32_t off) {
  qw_instance *inst = env->inst;
  const qw__elem *es = &inst->mod->elems[seg];
  uint64_t len = inst->elem_dropped[seg] ? 0 : es->count;
  qw__table *t = inst->tables[ti];
  bulk_fuel(env, n >> 13, func, off);
  if ((uint64_t)s + n > len || (uint64_t)d + n > t->size) rt_raise(env, QW_TRAP_OOB_TABLE, func, off);
  for (uint32_t k = 0; k < n; k++)
    t->elems[d + k] = (void *)(uintptr_t)qw__cexpr_eval(inst, &es->items[s + k]);
}

void qw_rt_elem_drop(qw_native_env *env, uint32_t seg) { env->inst->elem_dropped[seg] = 1; }

const qw_brt_sym *qw_backend_runtime(size_t *n) {
#define RT(name) {#name, (void *)name}
  static const qw_brt_sym syms[] = {
      RT(qw_rt_trap),        RT(qw_rt_budget),      RT(qw_rt_call),
      RT(qw_rt_call_indirect), RT(qw_rt_memory_grow), RT(qw_rt_memory_fill),
      RT(qw_rt_memory_copy), RT(qw_rt_memory_init), RT(qw_rt_data_drop),
      RT(qw_rt_table_get),   RT(qw_rt_table_set),   RT(qw_rt_table_size),
      RT(qw_rt_table_grow),  RT(qw_rt_table_fill),  RT(qw_rt_table_copy),
      RT(qw_rt_table_init),  RT(qw_rt_elem_drop),
  };
#undef RT
  *n = QB_COUNTOF(syms);
  return syms;
}

/* ---- stubs and publication ------------------------------------------------------------------ */

struct qw_native_stub {
  qw__code code;             /* what an entry slot holds; CODE.native = the entry */
  const qw_module *mod;
  uint32_t ops[QW_OPW];      /* one NATIVE op */
};

qb_code qw_native_stub_new(const qw_module *m, uint32_t d, qw_native_fn fn, qw_native_stub **out,
                           qb_err *err) {
  *out = NULL;
  if (d >= m->ndefined || !fn) return qb_fail(err, QB_INVAL, "native stub: no function %u", d);
  qw_native_stub *s = qb_calloc(1, sizeof *s);
  if (!s) return qb_fail(err, QB_NOMEM, "native stub: out of memory");
  const qw__functype *t = &m->types[m->funcs[d].type_idx];
#ifdef QW_DISPATCH_SWITCH
  s->ops[0] = OP_NATIVE;
#else
  const void *h = qw__interp_handlers()[OP_NATIVE];
  memcpy(s->ops, &h, sizeof h);
#endif
  s->code.ops = s->ops;
  s->code.nops = QW_OPW;
  s->code.nparams = t->nparams;
  s->code.nresults = t->nresults;
  s->code.nslots = t->nparams > t->nresults ? t->nparams : t->nresults;
  s->code.func_index = m->nfunc_imports + d;
  s->code.alloc_bytes = sizeof *s;
  s->code.native = fn;
  s->mod = m;
  *out = s;
  return QB_OK;
}

void qw_native_stub_free(qw_native_stub *s) {
  if (s) qb_free(s, sizeof *s);
}

qb_code qw_native_publish(qw_instance *inst, qw_native_stub *const *stubs, void *owner,
                          void (*release)(void *owner), qb_err *err) {
  const qw_module *m = inst->mod;
  const qw__exec *ex = inst->exec;
  if (ex != &inst->own_exec || (ex->ready && ex->fr != ex->frames))
    return qb_fail(err, QB_CONFLICT, "native tier: a call is running on the instance");
  if (stubs)
    for (uint32_t i = 0; i < m->ndefined; i++)
      if (stubs[i] && stubs[i]->mod != m)
        return qb_fail(err, QB_INVAL, "native tier: entries of another module");
  for (uint32_t i = 0; i < m->ndefined; i++) {
    const qw__code *c = stubs && stubs[i] ? &stubs[i]->code
                                          : atomic_load_explicit(&m->funcs[i].code,
                                                                 memory_order_acquire);
    atomic_store_explicit(&inst->entries[i], c, memory_order_release);
  }
  void *old = inst->tier_owner;
  void (*old_release)(void *) = inst->tier_release;
  inst->tier_owner = owner;
  inst->tier_release = release;
  if (old && old_release) old_release(old);
  return QB_OK;
}
