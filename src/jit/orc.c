/* orc.c: LLVM plumbing of the native tier: target set-up (x86_64 and AArch64), target
** machines for the host or a named triple, the optimisation pipeline, one ORC LLJIT per
** qj_code with the runtime functions defined as absolute symbols, and the public calls of
** jit.h (compile, attach, objects, references). Invariant: a qj_code's entries point into
** its LLJIT, which is disposed only when the last reference goes (jit.h's rule). */
#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* qj_block_entry's handle: a driver and what qj_block_call needs to run it */
typedef struct qj_driver {
  struct qj_driver *next;
  qw_native_fn fn;           /* qj_b<D> */
  uint32_t nparams;
  bool fast;                 /* has the check-free loop and no checked one: the flag protocol */
  char name[];               /* the export */
} qj_driver;

struct qj_code {
  _Atomic uint32_t refs;
  pthread_mutex_t mu;        /* guards DRIVERS */
  qj_driver *drivers;
  const qw_module *m;
  LLVMOrcLLJITRef jit;
  uint32_t nd;               /* defined functions = stubs */
  qw_native_stub **stubs;
  uint64_t compile_ns;
  size_t bytes;
  bool guard;                /* memory accesses unchecked: needs guarded memories */
};

/* Each architecture's LLVM target is set up on first use (a fresh process that only loads a
** cached object sets up the host's alone: part of the restart path) */
static pthread_once_t x86_once = PTHREAD_ONCE_INIT, a64_once = PTHREAD_ONCE_INIT;
static void init_x86(void) {
  LLVMInitializeX86TargetInfo();
  LLVMInitializeX86Target();
  LLVMInitializeX86TargetMC();
  LLVMInitializeX86AsmPrinter();
}
static void init_a64(void) {
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
}

/* the target for triple T (a full LLVM triple), set up */
static void init_for(const char *t) {
  if (!strncmp(t, "x86_64", 6)) pthread_once(&x86_once, init_x86);
  else if (!strncmp(t, "aarch64", 7) || !strncmp(t, "arm64", 5)) pthread_once(&a64_once, init_a64);
}

qb_code qj__targets_init(qb_err *err) {
  init_for(qj_host_triple());
  return QB_OK;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static qb_code llvm_fail(qb_err *err, LLVMErrorRef e, const char *what) {
  char *msg = LLVMGetErrorMessage(e);
  qb_code rc = qb_fail(err, QB_INTERNAL, "jit: %s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return rc;
}

static const char *full_triple(const char *t) {
  if (!strcmp(t, "x86_64-linux")) return "x86_64-unknown-linux-gnu";
  if (!strcmp(t, "aarch64-linux")) return "aarch64-unknown-linux-gnu";
  return t;
}

/* guard pages when asked for and the fault handler can be installed */
static bool use_guard(const qj_options *o) {
  return o && o->guard_pages && qw_native_guard_init();
}

static int opt_level(const qj_options *o) {
  int l = o && o->opt_level ? o->opt_level : 2;
  return l < 1 ? 1 : l > 3 ? 3 : l;
}

/* The host's CPU name and features, asked once and only for code generation: LLVM finds them
** with CPUID, which a virtual machine traps (~0.3 ms of every qj_load_object went there,
** through LLJIT's own host detection) */
static char *host_cpu, *host_feat;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static void fill_host(void) {
  host_cpu = LLVMGetHostCPUName();
  host_feat = LLVMGetHostCPUFeatures();
}

LLVMTargetMachineRef qj__machine(const char *triple, bool host, int opt, qb_err *err) {
  char *msg = NULL;
  LLVMTargetRef target;
  LLVMTargetMachineRef tm = NULL;
  if (host) pthread_once(&host_once, fill_host);
  const char *t = host ? qj_host_triple() : full_triple(triple);
  init_for(t);
  if (LLVMGetTargetFromTriple(t, &target, &msg)) {
    qb_fail(err, QB_UNAVAILABLE, "jit: no target for %s: %s", t, msg ? msg : "?");
  } else {
    LLVMCodeGenOptLevel lv = opt >= 3 ? LLVMCodeGenLevelAggressive
                             : opt == 1 ? LLVMCodeGenLevelLess : LLVMCodeGenLevelDefault;
    tm = LLVMCreateTargetMachine(target, t, host ? host_cpu : "generic", host ? host_feat : "",
                                 lv, LLVMRelocPIC, LLVMCodeModelDefault);
    if (!tm) qb_fail(err, QB_UNAVAILABLE, "jit: cannot make a target machine for %s", t);
  }
  LLVMDisposeMessage(msg);
  return tm;
}

#define NVF "instcombine<no-verify-fixpoint>"
/* docs/jit.md "Optimisation level and compile time": a short pipeline for 1 and 2 (the
** default) in two parts with the loop versioning of hoist.c between them; LLVM's own for 3.
** globaldce first: a qj_f<D> that only a skipped entry or checked loop would call (UDF mode,
** check-free drivers) costs nothing more */
static const char *const pipe_a =
    "globaldce,function(sroa,early-cse,simplifycfg," NVF "),cgscc(inline),"
    "function(sroa,early-cse<memssa>," NVF ",simplifycfg,gvn,loop-mssa(loop-rotate,licm),"
    "loop(indvars),lcssa)";
static const char *const pipe_b[2] = {"function(" NVF ",simplifycfg)",
                                      "function(" NVF ",simplifycfg<switch-to-lookup>,loop-vectorize,loop-unroll,"
                                      NVF ",simplifycfg)"};

static qb_code run_passes(LLVMModuleRef mod, const char *pipe, LLVMTargetMachineRef tm, qb_err *err) {
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(mod, pipe, tm, po);
  LLVMDisposePassBuilderOptions(po);
  return e ? llvm_fail(err, e, "optimisation") : QB_OK;
}

qb_code qj__optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, bool hoist, bool *redo,
                     qb_err *err) {
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    qb_code rc = qb_fail(err, QB_INTERNAL, "jit: invalid IR: %.180s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return rc;
  }
  LLVMDisposeMessage(msg);
  msg = NULL;
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, dl);
  LLVMDisposeTargetData(dl);
  /* debugging knobs (docs/jit.md): QJ_DUMP_IR=PREFIX writes the IR before/after the passes
  ** (and PREFIX.mid.ll after hoist.c), QJ_PIPELINE replaces the pass list, QJ_NO_HOIST turns
  ** hoist.c off */
  hoist = hoist && !getenv("QJ_NO_HOIST");
  *redo = false;
  const char *dump = getenv("QJ_DUMP_IR"), *pipe = getenv("QJ_PIPELINE");
  char path[512];
  if (dump) {
    snprintf(path, sizeof path, "%s.pre.ll", dump);
    LLVMPrintModuleToFile(mod, path, NULL);
  }
  qb_code rc;
  if (pipe && *pipe) {
    rc = run_passes(mod, pipe, tm, err);
  } else if (opt >= 3) {
    rc = run_passes(mod, "default<O3>", tm, err);
  } else if (!(rc = run_passes(mod, pipe_a, tm, err))) {
    if (hoist && qj__hoist_module(mod, LLVMGetModuleContext(mod)) &&
        LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
      /* a module hoist.c left invalid (a bug): the caller lowers it again, unversioned */
      if (getenv("QJ_TIMING")) fprintf(stderr, "qj: hoisting left invalid IR: %.300s\n", msg);
      LLVMDisposeMessage(msg);
      *redo = true;
      return qb_fail(err, QB_INTERNAL, "jit: loop versioning left invalid IR");
    }
    LLVMDisposeMessage(msg);
    if (dump) { /* between the two parts: what hoist.c made */
      snprintf(path, sizeof path, "%s.mid.ll", dump);
      LLVMPrintModuleToFile(mod, path, NULL);
    }
    rc = run_passes(mod, pipe_b[opt - 1], tm, err);
  }
  if (dump && !rc) {
    snprintf(path, sizeof path, "%s.post.ll", dump);
    LLVMPrintModuleToFile(mod, path, NULL);
  }
  return rc;
}

/* ---- the code handle ------------------------------------------------------------------------- */

static qb_code new_jit(qj_code *c, qb_err *err) {
  LLVMOrcJITTargetMachineBuilderRef jtmb;
  LLVMOrcLLJITBuilderRef b;
  LLVMErrorRef e;
  /* The LLJIT only links objects (its IR layer is never used), but building it makes a target
  ** machine from this builder for the data layout. A generic CPU without a feature list: with
  ** the host's (~200 features, each closed over the ones it implies) that machine's subtarget
  ** cost most of a qj_load_object, and DetectHost asks CPUID, which a VM traps */
  const char *ht = qj_host_triple();
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(ht, &target, &msg)) {
    qb_code rc = qb_fail(err, QB_UNAVAILABLE, "jit: no target for %s: %s", ht, msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return rc;
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, ht, "generic", "",
                                                    LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  if (!tm) return qb_fail(err, QB_UNAVAILABLE, "jit: cannot make a target machine for %s", ht);
  jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm); /* takes TM */
  b = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, jtmb);
  if ((e = LLVMOrcCreateLLJIT(&c->jit, b))) return llvm_fail(err, e, "LLJIT");
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(c->jit);
  size_t n;
  const qw_brt_sym *rt = qw_backend_runtime(&n);
  LLVMOrcCSymbolMapPair pairs[n];
  for (size_t i = 0; i < n; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(c->jit, rt[i].name);
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)rt[i].addr;
    pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  if ((e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, n))))
    return llvm_fail(err, e, "runtime symbols");
  /* libc (memcpy/memset, nearbyint & co. that LLVM may call) */
  LLVMOrcDefinitionGeneratorRef gen;
  if ((e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
           &gen, LLVMOrcLLJITGetGlobalPrefix(c->jit), NULL, NULL)))
    return llvm_fail(err, e, "process symbols");
  LLVMOrcJITDylibAddGenerator(jd, gen);
  return QB_OK;
}

static qj_code *code_new(const qw_module *m) {
  qj_code *c = qb_calloc(1, sizeof *c);
  if (!c) return NULL;
  qw_bcounts n = qw_bmod_counts(m);
  c->m = m;
  c->nd = n.nfuncs - n.nfunc_imports;
  c->refs = 1;
  pthread_mutex_init(&c->mu, NULL);
  if (!(c->stubs = qb_calloc(c->nd + 1, sizeof *c->stubs))) {
    pthread_mutex_destroy(&c->mu);
    qb_free(c, sizeof *c);
    return NULL;
  }
  return c;
}

static void code_destroy(qj_code *c) {
  for (uint32_t i = 0; i < c->nd; i++) qw_native_stub_free(c->stubs[i]);
  qb_free(c->stubs, (c->nd + 1) * sizeof *c->stubs);
  if (c->jit) LLVMOrcDisposeLLJIT(c->jit);
  for (qj_driver *d = c->drivers, *nx; d; d = nx) {
    nx = d->next;
    qb_free(d, sizeof *d + strlen(d->name) + 1);
  }
  pthread_mutex_destroy(&c->mu);
  qb_free(c, sizeof *c);
}

/* entries qj_e<D> -> stubs; the ABI marks first when CHECK (objects from elsewhere) */
static qb_code bind(qj_code *c, bool check, qb_err *err) {
  char name[32];
  LLVMOrcExecutorAddress a;
  LLVMErrorRef e;
  if (check) {
    if ((e = LLVMOrcLLJITLookup(c->jit, &a, "qj_abi"))) {
      LLVMConsumeError(e);
      return qb_fail(err, QB_INVAL, "jit: object: no ABI mark (not made by qj_emit_object)");
    }
    if (*(const uint32_t *)(uintptr_t)a != QW_BACKEND_ABI)
      return qb_fail(err, QB_INVAL, "jit: object: engine ABI %u, this engine has %u",
                     *(const uint32_t *)(uintptr_t)a, QW_BACKEND_ABI);
    if ((e = LLVMOrcLLJITLookup(c->jit, &a, "qj_nfuncs"))) {
      LLVMConsumeError(e);
      return qb_fail(err, QB_INVAL, "jit: object: no function count");
    }
    if (*(const uint32_t *)(uintptr_t)a != c->nd)
      return qb_fail(err, QB_INVAL, "jit: object: %u functions, the module has %u",
                     *(const uint32_t *)(uintptr_t)a, c->nd);
    if ((e = LLVMOrcLLJITLookup(c->jit, &a, "qj_guard"))) {
      LLVMConsumeError(e);
      return qb_fail(err, QB_INVAL, "jit: object: no bounds mode");
    }
    c->guard = *(const uint32_t *)(uintptr_t)a != 0;
    if (c->guard && !qw_native_guard_init())
      return qb_fail(err, QB_INVAL, "jit: object: relies on guard pages, unavailable here");
  }
  /* qj_sel[D] != 0: D has an entry (select.c); the others keep the interpreter's (NULL stub).
  ** An object from before qj_sel has an entry for every function. */
  const uint8_t *sel = NULL;
  if ((e = LLVMOrcLLJITLookup(c->jit, &a, "qj_sel"))) LLVMConsumeError(e);
  else sel = (const uint8_t *)(uintptr_t)a;
  qb_code rc = QB_OK;
  for (uint32_t d = 0; d < c->nd && !rc; d++) {
    if (sel && !sel[d]) continue;
    snprintf(name, sizeof name, "qj_e%u", d);
    if ((e = LLVMOrcLLJITLookup(c->jit, &a, name))) {
      if (!check) {
        rc = llvm_fail(err, e, name);
      } else {
        LLVMConsumeError(e);
        rc = qb_fail(err, QB_INVAL, "jit: object: no entry %s", name);
      }
      break;
    }
    rc = qw_native_stub_new(c->m, d, (qw_native_fn)(uintptr_t)a, &c->stubs[d], err);
  }
  return rc;
}

/* Host target machines, one pool per level: creating one (host CPU name and features) costs
** ~0.5 ms and a TargetMachine is not safe for concurrent use, so a compile takes one out and
** puts it back. The pool is bounded; machines beyond it are disposed. */
#define TM_POOL 4
static pthread_mutex_t tm_mu = PTHREAD_MUTEX_INITIALIZER;
static LLVMTargetMachineRef tm_pool[3][TM_POOL];
static int tm_n[3];

static LLVMTargetMachineRef tm_take(int ol, qb_err *err) {
  LLVMTargetMachineRef tm = NULL;
  pthread_mutex_lock(&tm_mu);
  if (tm_n[ol - 1]) tm = tm_pool[ol - 1][--tm_n[ol - 1]];
  pthread_mutex_unlock(&tm_mu);
  return tm ? tm : qj__machine(NULL, true, ol, err);
}

static void tm_give(int ol, LLVMTargetMachineRef tm) {
  if (!tm) return;
  pthread_mutex_lock(&tm_mu);
  if (tm_n[ol - 1] < TM_POOL) tm_pool[ol - 1][tm_n[ol - 1]++] = tm, tm = NULL;
  pthread_mutex_unlock(&tm_mu);
  if (tm) LLVMDisposeTargetMachine(tm);
}

/* lowering and the pipeline into L->mod; once more without loop versioning if that failed */
static qb_code lower_opt(qj__lower *L, const qw_module *m, LLVMContextRef cx, bool guard,
                         const qj_options *opt, LLVMTargetMachineRef tm, int ol, qb_err *err) {
  qb_code rc = QB_OK;
  for (int round = 0; round < 2; round++) {
    uint64_t t = cpu_ns();
    rc = qj__lower_module(L, m, cx, guard, opt, err);
    qj__lower_fini(L);
    L->lower_ns = cpu_ns() - t;
    bool redo = false;
    if (!rc) rc = qj__optimize(L->mod, tm, ol, round == 0, &redo, err);
    if (!redo) break;
    LLVMDisposeModule(L->mod);
    L->mod = NULL;
  }
  return rc;
}

/* M's code for the host as an object (lowering, the pipeline, code generation with a pooled
** machine); *PH gets the CPU time of each phase when PH is not NULL */
static qb_code host_object(const qw_module *m, int ol, bool guard, const qj_options *opt,
                           LLVMMemoryBufferRef *mb, uint64_t ph[4], qb_err *err) {
  qj__lower L = {0};
  uint64_t t0 = cpu_ns();
  LLVMContextRef cx = LLVMContextCreate();
  LLVMTargetMachineRef tm = tm_take(ol, err);
  qb_code rc = tm ? lower_opt(&L, m, cx, guard, opt, tm, ol, err) : QB_UNAVAILABLE;
  uint64_t t1 = t0 + L.lower_ns;
  uint64_t t2 = cpu_ns();
  if (!rc) {
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, L.mod, LLVMObjectFile, &msg, mb))
      rc = qb_fail(err, QB_INTERNAL, "jit: code generation: %.180s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
  }
  uint64_t t3 = cpu_ns();
  tm_give(ol, tm);
  if (L.mod) LLVMDisposeModule(L.mod);
  LLVMContextDispose(cx);
  if (ph) ph[0] = t1 - t0, ph[1] = t2 - t1, ph[2] = t3 - t2;
  return rc;
}

qb_code qj_compile(const qw_module *m, const qj_options *opt, qj_code **out, qb_err *err) {
  uint64_t t0 = now_ns(), ph[4] = {0};
  int ol = opt_level(opt);
  LLVMMemoryBufferRef mb = NULL;
  *out = NULL;
  if (!qw_bmod_counts(m).validated) return qb_fail(err, QB_INVAL, "jit: module is not validated");
  qj__targets_init(err);
  qj_code *c = code_new(m);
  if (!c) return qb_fail(err, QB_NOMEM, "jit: out of memory");
  c->guard = use_guard(opt);
  qb_code rc = host_object(m, ol, c->guard, opt, &mb, ph, err);
  uint64_t t1 = cpu_ns();
  if (!rc) rc = new_jit(c, err);
  if (!rc) {
    c->bytes = LLVMGetBufferSize(mb);
    /* the JIT takes the buffer */
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(c->jit, LLVMOrcLLJITGetMainJITDylib(c->jit), mb);
    mb = NULL;
    if (e) rc = llvm_fail(err, e, "adding the object");
  }
  if (mb) LLVMDisposeMemoryBuffer(mb);
  if (!rc) rc = bind(c, false, err); /* links the object */
  ph[3] = cpu_ns() - t1;
  if (getenv("QJ_TIMING"))
    fprintf(stderr, "qj: O%d cpu: lower %.2f opt %.2f codegen %.2f link %.2f ms\n", ol,
            ph[0] * 1e-6, ph[1] * 1e-6, ph[2] * 1e-6, ph[3] * 1e-6);
  if (rc) {
    code_destroy(c);
    return rc;
  }
  c->compile_ns = now_ns() - t0;
  *out = c;
  return QB_OK;
}

static void release(void *owner) { qj_code_free(owner); }

qb_code qj_attach(qj_code *c, qw_instance *inst, qb_err *err) {
  if (qw_instance_module_of(inst) != c->m)
    return qb_fail(err, QB_INVAL, "jit: the code is for another module");
  if (c->guard && !qw_instance_guarded(inst))
    return qb_fail(err, QB_UNAVAILABLE,
                   "jit: the code relies on guard pages and the instance's memory has none");
  qj_code_ref(c);
  qb_code rc = qw_native_publish(inst, c->stubs, c, release, err);
  if (rc) qj_code_free(c);
  return rc;
}

qb_code qj_detach(qw_instance *inst, qb_err *err) {
  return qw_native_publish(inst, NULL, NULL, NULL, err);
}

qj_code *qj_code_ref(qj_code *c) {
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

void qj_code_free(qj_code *c) {
  if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) code_destroy(c);
}

bool qj_code_guarded(const qj_code *c) { return c->guard; }

/* The address of symbol PREFIX<D> for function export NAME (D: its defined index), or 0. */
static uintptr_t export_sym(qj_code *c, const char *name, const char *prefix) {
  uint32_t cnt = qw_module_export_count(c->m), nimp = qw_bmod_counts(c->m).nfunc_imports;
  qw_port p;
  char sym[32];
  for (uint32_t i = 0; i < cnt; i++) {
    qw_module_export(c->m, i, &p);
    if (p.kind != QW_KFUNC || strcmp(p.name, name) || p.index < nimp) continue;
    snprintf(sym, sizeof sym, "%s%u", prefix, p.index - nimp);
    LLVMOrcExecutorAddress a;
    LLVMErrorRef e = LLVMOrcLLJITLookup(c->jit, &a, sym);
    if (e) {
      LLVMConsumeError(e);
      return 0;
    }
    return (uintptr_t)a;
  }
  return 0;
}

bool qj_code_has_export(qj_code *c, const char *name) {
  return export_sym(c, name, "qj_b") || export_sym(c, name, "qj_e");
}

void *qj_block_entry(qj_code *c, const char *name) {
  qw_native_fn fn = (qw_native_fn)export_sym(c, name, "qj_b");
  if (!fn) return NULL;
  qj_driver *d;
  pthread_mutex_lock(&c->mu);
  for (d = c->drivers; d && strcmp(d->name, name); d = d->next) {
  }
  if (!d) {
    qw_port p = {0};
    for (uint32_t i = 0, cnt = qw_module_export_count(c->m); i < cnt; i++) {
      qw_module_export(c->m, i, &p);
      if (p.kind == QW_KFUNC && !strcmp(p.name, name)) break;
    }
    size_t nl = strlen(name) + 1;
    if ((d = qb_malloc(sizeof *d + nl))) {
      d->fn = fn;
      d->nparams = p.sig.nparams;
      d->fast = export_sym(c, name, "qj_cf") != 0;
      memcpy(d->name, name, nl);
      d->next = c->drivers;
      c->drivers = d;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return d;
}

bool qj_block_checkfree(qj_code *c, const char *name, uint64_t *fuel_per_doc) {
  const uint64_t *k = (const uint64_t *)export_sym(c, name, "qj_cf");
  if (k && fuel_per_doc) *fuel_per_doc = *k;
  return k != NULL;
}

const qw_trap *qj_block_call(qj_code *c, void *b, qw_instance *inst, size_t n,
                             const uint64_t *const *cols, uint64_t *res) {
  const qj_driver *d = b;
  if (qw_instance_module_of(inst) != c->m || (c->guard && !qw_instance_guarded(inst)))
    return QW_TRAP_HOST;
  if (!d->fast) return qw_native_block_call(inst, d->fn, n, cols, res);
  /* a check-free driver sets FLAG when its once-per-block test fails (fuel short of the
  ** block's bound, an interrupt pending, too little depth or stack, RES overlapping a column):
  ** then the interpreter runs the block, one call per document as the checked loop would
  ** (lower_call.c qj__emit_block); that block is about to run out or be interrupted */
  uint64_t flag = 0;
  const uint64_t *cf[d->nparams + 1];
  for (uint32_t k = 0; k < d->nparams; k++) cf[k] = cols[k];
  cf[d->nparams] = &flag;
  const qw_trap *t = qw_native_block_call(inst, d->fn, n, cf, res);
  if (t || !flag) return t;
  if (getenv("QJ_BLOCK_DEBUG"))
    fprintf(stderr, "block: %s: the check-free test failed, %zu documents in the interpreter\n",
            d->name, n);
  qw_func *f = qw_instance_func(inst, d->name);
  if (!f) return QW_TRAP_HOST;
  uint64_t slots[d->nparams + 1];
  for (size_t i = 0; i < n; i++) {
    for (uint32_t k = 0; k < d->nparams; k++) slots[k] = cols[k][i];
    if ((t = qw_func_call_raw(f, slots))) return t;
    res[i] = slots[0];
  }
  return NULL;
}
uint64_t qj_code_compile_ns(const qj_code *c) { return c->compile_ns; }
size_t qj_code_bytes(const qj_code *c) { return c->bytes; }

static char host_triple[96];
static pthread_once_t triple_once = PTHREAD_ONCE_INIT;
static void fill_triple(void) {
  char *t = LLVMGetDefaultTargetTriple();
  snprintf(host_triple, sizeof host_triple, "%s", t);
  LLVMDisposeMessage(t);
}
const char *qj_host_triple(void) {
  pthread_once(&triple_once, fill_triple);
  return host_triple;
}

/* ---- objects --------------------------------------------------------------------------------- */

qb_code qj_emit_object(const qw_module *m, const char *triple, const qj_options *opt,
                       uint8_t **obj, size_t *len, qb_err *err) {
  qb_code rc;
  qj__lower L = {0};
  int ol = opt_level(opt);
  *obj = NULL, *len = 0;
  qj__targets_init(err);
  LLVMTargetMachineRef tm = qj__machine(triple, false, ol, err);
  if (!tm) return QB_UNAVAILABLE;
  LLVMContextRef cx = LLVMContextCreate();
  rc = lower_opt(&L, m, cx, use_guard(opt), opt, tm, ol, err);
  if (!rc) {
    char *msg = NULL;
    LLVMMemoryBufferRef mb = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, L.mod, LLVMObjectFile, &msg, &mb)) {
      rc = qb_fail(err, QB_INTERNAL, "jit: object for %s: %s", triple, msg ? msg : "?");
    } else {
      size_t n = LLVMGetBufferSize(mb);
      if (!(*obj = qb_malloc(n))) rc = qb_fail(err, QB_NOMEM, "jit: out of memory");
      else memcpy(*obj, LLVMGetBufferStart(mb), n), *len = n;
      LLVMDisposeMemoryBuffer(mb);
    }
    LLVMDisposeMessage(msg);
  }
  if (L.mod) LLVMDisposeModule(L.mod);
  LLVMContextDispose(cx);
  LLVMDisposeTargetMachine(tm);
  return rc;
}

void qj_buffer_free(uint8_t *obj, size_t len) { qb_free(obj, len); }

/* ELF e_machine of this host */
#if defined(__x86_64__)
#define HOST_MACHINE 62
#elif defined(__aarch64__)
#define HOST_MACHINE 183
#else
#define HOST_MACHINE 0
#endif

qb_code qj_load_object(const qw_module *m, const uint8_t *obj, size_t len, qj_code **out,
                       qb_err *err) {
  qb_code rc;
  uint64_t t0 = now_ns();
  *out = NULL;
  if (len < 64 || memcmp(obj, "\177ELF", 4) || obj[4] != 2 || obj[5] != 1)
    return qb_fail(err, QB_CORRUPT, "jit: object: not a 64-bit little-endian ELF file");
  unsigned mach = obj[18] | obj[19] << 8;
  if (mach != HOST_MACHINE)
    return qb_fail(err, QB_INVAL, "jit: object: for another target (ELF machine %u, this host %u)",
                   mach, HOST_MACHINE);
  if (!qw_bmod_counts(m).validated) return qb_fail(err, QB_INVAL, "jit: module is not validated");
  qj__targets_init(err);
  qj_code *c = code_new(m);
  if (!c) return qb_fail(err, QB_NOMEM, "jit: out of memory");
  rc = new_jit(c, err);
  if (!rc) {
    LLVMMemoryBufferRef mb =
        LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)obj, len, "qj-object");
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(c->jit, LLVMOrcLLJITGetMainJITDylib(c->jit), mb);
    if (e) {
      char *msg = LLVMGetErrorMessage(e);
      rc = qb_fail(err, QB_CORRUPT, "jit: object: %s", msg);
      LLVMDisposeErrorMessage(msg);
    }
  }
  if (!rc) rc = bind(c, true, err);
  if (rc) {
    code_destroy(c);
    return rc;
  }
  c->bytes = len;
  c->compile_ns = now_ns() - t0;
  *out = c;
  return QB_OK;
}
