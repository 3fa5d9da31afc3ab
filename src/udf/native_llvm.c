/* native_llvm.c: the native tier's compiler hook (qu_native_ops) on top of src/jit: compile is
** qj_compile in UDF mode (jit.h qj_options.udf), done by the first entry call for the export it
** names, so only that export and what it reaches is compiled; emit/load are
** qj_emit_object/qj_load_object for this host's triple (an entry for an export a loaded object
** lacks compiles it), free drops the qj_code. An export's entry is a block function that, for one block, attaches the code to
** the instance (qj_attach), calls the export once per document through qw_func_call_raw
** (which then runs native code through the instance's entry slots) and detaches it again.
** Invariant: an instance carries native entries only inside one of our block calls. So the
** verified swap's interpreter runs (exec.c, on the same instance) and a version put back on
** the interpreter after a mismatch really run the interpreter, and no marker of "attached"
** per instance is needed (jit.h has no query for it, and a pointer-keyed marker would go
** stale when the pool frees an instance and a new one gets its address). The cost is two
** passes of release stores over the module's entry slots per block (up to QU_BLOCK_MAX
** documents). Exports with a JIT block driver (one result, numeric params: jit.h
** qj_block_entry) skip all that: the block is one call of the driver, the export inlined in a
** loop over the columns, on the instance as it is (no attach). */
#include "udf.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "jit.h"

/* qj_load_object checks its own ABI tag inside the object too. 3: objects have entries only
** where the UDF layer uses them (qj_sel) and check-free drivers without a checked loop (they
** read a flag pointer after the columns: an older qj_block_call does not pass it) */
#define ABI_VERSION 3u
#define MAX_SLOTS 256  /* max(params, results) of an export the entry accepts */

typedef struct export_entry {
  struct export_entry *next;
  struct qu_native *owner;
  qj_code *code;              /* one reference: the code with this export (usually N's) */
  void *driver;               /* the export's JIT block driver (qj_block_entry), or NULL */
  uint32_t nparams, nslots;
  char name[]; /* the export's name */
} export_entry;

struct qu_native {
  qj_code *code;      /* NULL until the first op_entry when compiled (op_compile defers) */
  char *export_name;  /* the export CODE was compiled for (NULL: loaded, or all) */
  const qw_module *m; /* outlives N: the version's module */
  pthread_mutex_t mu; /* guards ENTRIES */
  export_entry *entries;
};

typedef struct llvm_hook {
  char triple[32];
  char cpu[64];
} llvm_hook;

static llvm_hook hook; /* one per process: the host does not change */
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

/* The UDF layer's compile (jit.h qj_options.udf): no code for what it runs in the interpreter,
** and only the export it runs (EXPORT; NULL: every other export). */
static qj_options udf_opts(const char *export_name) {
  return (qj_options){.udf = true, .export_name = export_name};
}

static qu_native *wrap(const qw_module *m, qj_code *code, qb_err *err) {
  qu_native *n = qb_calloc(1, sizeof *n);
  if (!n) {
    qj_code_free(code);
    qb_fail(err, QB_NOMEM, "jit: out of memory");
    return NULL;
  }
  n->code = code;
  n->m = m;
  pthread_mutex_init(&n->mu, NULL);
  return n;
}

/* The compile happens in op_entry, which names the export the UDF runs (pool.c calls it right
** after, on the same thread): only that export and what it reaches is compiled (a module's other
** exports, a self-test say, can be most of its code). */
static qb_code op_compile(void *ud, const qw_module *module, qu_native **out, qb_err *err) {
  (void)ud;
  return (*out = wrap(module, NULL, err)) ? QB_OK : QB_NOMEM;
}

static qb_code op_load(void *ud, const qw_module *module, const uint8_t *object, size_t len,
                       qu_native **out, qb_err *err) {
  (void)ud;
  qj_code *code;
  qb_code rc = qj_load_object(module, object, len, &code, err);
  if (rc) return rc;
  return (*out = wrap(module, code, err)) ? QB_OK : QB_NOMEM;
}

static qb_code op_emit(void *ud, qu_native *n, qb_buf *object, qb_err *err) {
  const llvm_hook *h = ud;
  uint8_t *obj;
  size_t len;
  pthread_mutex_lock(&n->mu);
  qj_options o = udf_opts(n->export_name);
  qb_code rc = qj_emit_object(n->m, h->triple, &o, &obj, &len, err);
  pthread_mutex_unlock(&n->mu);
  if (rc) return rc;
  rc = qb_buf_append(object, obj, len);
  qj_buffer_free(obj, len);
  return rc ? qb_fail(err, rc, "jit: out of memory") : QB_OK;
}

static void op_free(void *ud, qu_native *n) {
  (void)ud;
  if (!n) return;
  for (export_entry *e = n->entries, *nx; e; e = nx) {
    nx = e->next;
    qj_code_free(e->code);
    qb_free(e, sizeof *e + strlen(e->name) + 1);
  }
  qj_code_free(n->code);
  if (n->export_name) qb_free(n->export_name, strlen(n->export_name) + 1);
  pthread_mutex_destroy(&n->mu);
  qb_free(n, sizeof *n);
}

/* One block: attach, one native call per document, detach (the file's invariant). */
static const qw_trap *block_fn(void *code, qw_instance *inst, size_t n,
                               const uint64_t *const *args, uint64_t *results) {
  export_entry *e = code;
  qb_err err;
  qw_func *f = qw_instance_func(inst, e->name);
  if (!f || qj_attach(e->code, inst, &err)) return QW_TRAP_HOST;
  uint64_t slots[MAX_SLOTS];
  const qw_trap *t = NULL;
  for (size_t i = 0; i < n && !t; i++) {
    for (uint32_t k = 0; k < e->nparams; k++) slots[k] = args[k][i];
    t = qw_func_call_raw(f, slots);
    results[i] = slots[0];
  }
  (void)qj_detach(inst, &err); /* between calls: cannot conflict */
  return t;
}

/* One block through the JIT's block driver: the export inlined in a loop over the columns. */
static const qw_trap *driver_fn(void *code, qw_instance *inst, size_t n,
                                const uint64_t *const *args, uint64_t *results) {
  export_entry *e = code;
  return qj_block_call(e->code, e->driver, inst, n, args, results);
}

static qb_code op_entry(void *ud, qu_native *n, const char *export_name, qu_native_entry *out,
                        qb_err *err) {
  (void)ud;
  qw_port p = {0};
  uint32_t i, cnt = qw_module_export_count(n->m);
  for (i = 0; i < cnt; i++) {
    qw_module_export(n->m, i, &p);
    if (p.kind == QW_KFUNC && !strcmp(p.name, export_name)) break;
  }
  if (i == cnt) return qb_fail(err, QB_NOTFOUND, "jit: no function export %.64s", export_name);
  uint32_t nslots = p.sig.nparams > p.sig.nresults ? p.sig.nparams : p.sig.nresults;
  if (nslots > MAX_SLOTS)
    return qb_fail(err, QB_UNAVAILABLE, "jit: export %.64s has more than %d params or results",
                   export_name, MAX_SLOTS);
  size_t nl = strlen(export_name) + 1;
  export_entry *e = qb_calloc(1, sizeof *e + nl);
  if (!e) return qb_fail(err, QB_NOMEM, "jit: out of memory");
  memcpy(e->name, export_name, nl);
  e->owner = n;
  e->nparams = p.sig.nparams;
  e->nslots = nslots;
  qb_code rc = QB_OK;
  qj_options o = udf_opts(export_name);
  pthread_mutex_lock(&n->mu);
  if (!n->code) { /* op_compile's deferred compile, for this export */
    if (!(n->export_name = qb_malloc(nl))) rc = qb_fail(err, QB_NOMEM, "jit: out of memory");
    else if ((rc = qj_compile(n->m, &o, &n->code, err)))
      qb_free(n->export_name, nl), n->export_name = NULL;
    else memcpy(n->export_name, export_name, nl);
  }
  if (!rc && qj_code_has_export(n->code, export_name)) e->code = qj_code_ref(n->code);
  else if (!rc) /* loaded, or compiled for another export: code of its own */
    rc = qj_compile(n->m, &o, &e->code, err);
  if (!rc) e->next = n->entries, n->entries = e;
  pthread_mutex_unlock(&n->mu);
  if (rc) {
    qb_free(e, sizeof *e + nl);
    return rc;
  }
  e->driver = qj_block_entry(e->code, export_name);
  memset(out, 0, sizeof *out);
  out->block = e->driver ? driver_fn : block_fn;
  out->code = e;
  return QB_OK;
}

/* ---- the host: triple and CPU features (canonical: sorted, "+name" joined by commas) ------ */

static void fill_hook(void) {
  const char *t = qj_host_triple();
  const char *arch = !strncmp(t, "x86_64", 6) ? "x86_64" : !strncmp(t, "aarch64", 7) ? "aarch64"
                                                                                      : NULL;
  if (arch) snprintf(hook.triple, sizeof hook.triple, "%s-linux", arch);
  else snprintf(hook.triple, sizeof hook.triple, "%.31s", t);
  hook.cpu[0] = 0;
#if defined(__x86_64__)
  /* the features LLVM's x86 code generator picks instructions by, in sorted order */
  __builtin_cpu_init();
  static const char *const names[] = {"avx", "avx2", "avx512f", "bmi2", "fma", "popcnt",
                                      "sse4.2"};
  const int on[] = {__builtin_cpu_supports("avx"),     __builtin_cpu_supports("avx2"),
                    __builtin_cpu_supports("avx512f"), __builtin_cpu_supports("bmi2"),
                    __builtin_cpu_supports("fma"),     __builtin_cpu_supports("popcnt"),
                    __builtin_cpu_supports("sse4.2")};
  size_t len = 0;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (on[i] && len < sizeof hook.cpu)
      len += (size_t)snprintf(hook.cpu + len, sizeof hook.cpu - len, "%s+%s", len ? "," : "",
                              names[i]);
#elif defined(__aarch64__)
  snprintf(hook.cpu, sizeof hook.cpu, "+neon");
#endif
}

qb_code qu_native_llvm(qu_native_ops *out, qb_err *err) {
  pthread_once(&hook_once, fill_hook);
  if (!hook.triple[0]) return qb_fail(err, QB_UNAVAILABLE, "jit: no host triple");
  memset(out, 0, sizeof *out);
  out->ud = &hook;
  out->name = "llvm";
  out->abi_version = ABI_VERSION;
  out->triple = hook.triple;
  out->cpu_features = hook.cpu;
  out->compile = op_compile;
  out->entry = op_entry;
  out->free = op_free;
  out->emit = op_emit;
  out->load = op_load;
  return QB_OK;
}
