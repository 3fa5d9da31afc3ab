/* wasm.h: Quidditch's WebAssembly engine (prefix qw_), usable as a library on its own with
** src/base. WebAssembly 2.0 without SIMD: a decoder, a validator, a lazily compiling fast
** interpreter, the runtime (memories, tables, globals, linking, host functions), sandbox
** limits and a WASI preview1 sandbox.
**
** Objects and threads:
**   qw_engine    process-wide settings and the function-type intern table. Any thread.
**   qw_module    decoded + validated bytes. Immutable after load (functions are compiled
**                lazily, published atomically): share freely across threads and instances.
**   qw_instance  a module's runtime state. One thread at a time (pooled by the UDF layer).
**   qw_imports   a list of values to link an instance against. Built by one thread.
**   qw_extern    a function, table, memory or global of an instance (or a host function),
**                borrowed from its owner: valid until that owner is freed.
**
** Errors follow base.h: calls return a qb_code and fill a caller-owned qb_err.
**   QB_MALFORMED  the bytes are not a WebAssembly binary (spec "assert_malformed" wording)
**   QB_INVALID    the module does not validate (spec "assert_invalid" wording)
**   QB_UNLINKABLE imports do not match (spec "assert_unlinkable": "unknown import",
**                 "incompatible import type")
**   QB_TRAP       a trap; err->msg is the spec's wording ("integer divide by zero", ...)
**   QB_LIMIT      a sandbox limit: memory cap, fuel/deadline, call depth ("call stack
**                 exhausted" is reported as QB_TRAP, as the spec expects)
**   QB_NOMEM      out of memory
** Messages name the place: "code section: function 7 at offset 0x1a3: type mismatch". */
#ifndef QW_WASM_H
#define QW_WASM_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef struct qw_engine qw_engine;
typedef struct qw_module qw_module;
typedef struct qw_instance qw_instance;
typedef struct qw_imports qw_imports;
typedef struct qw_extern qw_extern;
typedef struct qw_func qw_func;

/* Value types, with their binary encodings. */
typedef enum qw_type {
  QW_I32 = 0x7f,
  QW_I64 = 0x7e,
  QW_F32 = 0x7d,
  QW_F64 = 0x7c,
  QW_V128 = 0x7b, /* decoded so it can be rejected cleanly; no SIMD yet */
  QW_FUNCREF = 0x70,
  QW_EXTERNREF = 0x6f
} qw_type;

const char *qw_type_name(qw_type t); /* "i32", ..., "funcref", "externref" */

/* A typed value. Floats are kept as bits so NaN payloads survive. A funcref is a qw_func*
** (NULL is ref.null func); an externref is an opaque host pointer (NULL is ref.null extern). */
typedef struct qw_val {
  qw_type type;
  union {
    uint32_t i32;
    uint64_t i64;
    uint32_t f32_bits;
    uint64_t f64_bits;
    void *ref;
  } of;
} qw_val;

qw_val qw_i32(int32_t v);
qw_val qw_i64(int64_t v);
qw_val qw_f32(float v);
qw_val qw_f64(double v);
float qw_val_f32(qw_val v);
double qw_val_f64(qw_val v);

/* ---- engine -------------------------------------------------------------------------------- */

/* Sandbox limits. A zeroed struct means the defaults shown. */
typedef struct qw_limits {
  uint32_t max_memory_pages; /* per memory; 0 = 256 pages (16 MiB). memory.grow past it gives
                                -1; a module whose minimum exceeds it fails to instantiate */
  uint32_t max_call_depth;   /* wasm frames per call; 0 = 10000 ("call stack exhausted") */
  uint32_t max_stack_bytes;  /* value stack per call; 0 = 1 MiB */
  uint64_t fuel;             /* 0 = unlimited. Fuel is spent one unit per loop back-edge and
                                per call; at 0 the call traps with QB_LIMIT "fuel exhausted" */
  uint32_t max_table_elems;  /* per table; 0 = 1,000,000 */
} qw_limits;

qb_code qw_engine_new(const qw_limits *defaults, qw_engine **out, qb_err *err);
void qw_engine_free(qw_engine *e); /* after every module and instance made from it */

/* ---- modules ------------------------------------------------------------------------------- */

/* Decode+validate BYTES (copied; the caller may free them). *OUT: immutable, shareable across
** threads; free with qw_module_free after its instances. Errors: QB_MALFORMED/QB_INVALID
** (message has the offset and the rule), QB_LIMIT (implementation limits), QB_NOMEM. */
qb_code qw_module_load(qw_engine *e, const uint8_t *bytes, size_t len, qw_module **out,
                       qb_err *err);
/* Decode only (for tools that want to tell malformed from invalid). *OUT is NULL on error. */
qb_code qw_module_decode(qw_engine *e, const uint8_t *bytes, size_t len, qw_module **out,
                         qb_err *err);
qb_code qw_module_validate(qw_module *m, qb_err *err);
void qw_module_free(qw_module *m);

/* Extern kinds, with their binary encodings. */
typedef enum qw_kind { QW_KFUNC = 0, QW_KTABLE = 1, QW_KMEMORY = 2, QW_KGLOBAL = 3 } qw_kind;

/* Function signature: borrowed pointers into the module (or host func), valid as long as it. */
typedef struct qw_sig {
  uint32_t nparams, nresults;
  const uint8_t *params;  /* qw_type values */
  const uint8_t *results;
} qw_sig;

/* Description of an import or export, for inspection and for linking. */
typedef struct qw_port {
  qw_kind kind;
  const char *module; /* imports only; NUL-terminated copies owned by the module */
  const char *name;
  qw_sig sig;                 /* QW_KFUNC */
  uint8_t type;               /* QW_KGLOBAL: value type; QW_KTABLE: element ref type */
  uint8_t mut;                /* QW_KGLOBAL */
  uint32_t min, max;          /* QW_KTABLE, QW_KMEMORY */
  uint8_t has_max;
  uint32_t index;             /* exports: index in the kind's index space */
} qw_port;

uint32_t qw_module_import_count(const qw_module *m);
uint32_t qw_module_export_count(const qw_module *m);
void qw_module_import(const qw_module *m, uint32_t i, qw_port *out);
void qw_module_export(const qw_module *m, uint32_t i, qw_port *out);

/* Sizes, for `qwasm inspect`. */
typedef struct qw_module_info {
  size_t size_bytes;
  uint32_t ntypes, nfuncs, nimported_funcs, ntables, nmemories, nglobals, nelems, ndatas;
  uint32_t code_bytes;
  uint32_t max_body_bytes; /* the largest function body (instructions), for compile limits */
  int64_t start_func; /* -1 when none */
} qw_module_info;
void qw_module_get_info(const qw_module *m, qw_module_info *out);

/* ---- host functions and imports ------------------------------------------------------------ */

/* A host function. ARGS holds the parameters as 64-bit slots (i32 in the low half, floats as
** bits, refs as pointers); the function writes its results to RESULTS (may alias ARGS). CALLER
** is the calling instance (for its memory: qw_instance_memory), or NULL when called from the
** embedder. Return NULL on success, or a trap: qw_trap_new_host / a static QW_TRAP_*. */
/* A trap descriptor. Defined here (not opaque) because the static QW_TRAP_* arrays below
** need a complete type; compare traps by pointer, read them with qw_trap_message/code. */
typedef struct qw_trap {
  qb_code code;       /* QB_TRAP, or QB_LIMIT for fuel/interrupt */
  const char *msg;    /* the spec's wording */
} qw_trap;
typedef const qw_trap *(*qw_host_fn)(void *ud, qw_instance *caller, const uint64_t *args,
                                     uint64_t *results);

/* Static traps a host function may return. */
extern const qw_trap QW_TRAP_UNREACHABLE[1], QW_TRAP_EXIT[1], QW_TRAP_HOST[1];
/* The trap's wording and code. */
const char *qw_trap_message(const qw_trap *t);
qb_code qw_trap_code(const qw_trap *t);

/* An import list. Names are copied. Later entries with the same (module, name) win. */
qb_code qw_imports_new(qw_imports **out, qb_err *err);
void qw_imports_free(qw_imports *im);
/* Define a host function with signature PARAMS -> RESULTS (arrays of qw_type). */
qb_code qw_imports_add_host(qw_imports *im, const char *module, const char *name,
                            const uint8_t *params, uint32_t nparams, const uint8_t *results,
                            uint32_t nresults, qw_host_fn fn, void *ud, qb_err *err);
/* Add an extern of another instance (linking between instances). */
qb_code qw_imports_add_extern(qw_imports *im, const char *module, const char *name,
                              qw_extern *ext, qb_err *err);
/* Add every export of INST under module name MODULE (the spec suite's `register`). */
qb_code qw_imports_add_instance(qw_imports *im, const char *module, qw_instance *inst,
                                qb_err *err);
/* Add the WASI preview1 sandbox (module "wasi_snapshot_preview1"; DESIGN.md §4): no files,
** no network, no environment; fd_write to fd 1/2 goes to the log (rate-limited) or to the
** sink set by qw_wasi_set_output; clock_time_get and random_get work; proc_exit ends the call
** with QW_TRAP_EXIT (exit code from qw_instance_exit_code); everything else returns ENOSYS or
** EBADF. ARGV is given to args_get (may be NULL). */
qb_code qw_imports_add_wasi(qw_imports *im, int argc, const char *const *argv, qb_err *err);
/* Where WASI fd_write output goes for instances linked after this call: FN(ud, fd, p, n).
** NULL = the log. Used by `qwasm run`, which passes stdout/stderr through. */
typedef void (*qw_wasi_output_fn)(void *ud, int fd, const char *p, size_t n);
void qw_wasi_set_output(qw_imports *im, qw_wasi_output_fn fn, void *ud);

/* ---- instances ----------------------------------------------------------------------------- */

/* Instantiate M with IMPORTS (may be NULL when M imports nothing) and LIMITS (NULL = the
** engine's defaults): link, allocate, initialise globals, tables and memory, run the start
** function. M must outlive the instance. Errors: QB_UNLINKABLE, QB_TRAP (start function or
** out-of-bounds segment: the instance is not created), QB_LIMIT, QB_NOMEM. */
qb_code qw_instance_new(qw_module *m, const qw_imports *imports, const qw_limits *limits,
                        qw_instance **out, qb_err *err);
void qw_instance_free(qw_instance *inst);

/* Look up an export by name. NULL when absent. Borrowed: valid until the instance is freed. */
qw_extern *qw_instance_export(qw_instance *inst, const char *name);
/* The same for a name of LEN bytes, which may contain NUL (export names are any UTF-8). */
qw_extern *qw_instance_export_n(qw_instance *inst, const char *name, size_t len);
qw_kind qw_extern_kind(const qw_extern *x);
/* The function behind a QW_KFUNC extern, NULL for other kinds. */
qw_func *qw_extern_func(qw_extern *x);
qw_func *qw_instance_func(qw_instance *inst, const char *export_name);
void qw_func_sig(const qw_func *f, qw_sig *out);

/* Call F with NARGS typed ARGS (types must match exactly: QB_INVAL otherwise); results go to
** RESULTS (room for the signature's count). Runs on the calling thread; the instance that
** owns F must not be used by another thread meanwhile. Errors: QB_TRAP (err->msg = the trap's
** wording; the instance stays usable), QB_LIMIT (fuel/deadline), QB_INVAL, QB_NOMEM. */
qb_code qw_func_call(qw_func *f, const qw_val *args, uint32_t nargs, qw_val *results,
                     uint32_t nresults, qb_err *err);
/* The fast path for embedders that call the same function many times (the UDF layer): args
** and results as 64-bit slots (as qw_host_fn), no checks of types or counts, no allocation.
** SLOTS must hold max(nparams, nresults) slots. Returns NULL or the trap. */
const qw_trap *qw_func_call_raw(qw_func *f, uint64_t *slots);
/* Where the last trap of INST happened ("function 12 at offset 0x3f1"), "" when none. */
const char *qw_instance_trap_where(const qw_instance *inst);
/* Exit code given to WASI proc_exit by the last call (when it returned QW_TRAP_EXIT). */
int qw_instance_exit_code(const qw_instance *inst);

/* Fuel: the budget for the next calls (0 = unlimited), and what is left. Any thread may call
** qw_instance_interrupt to make the running call trap ("interrupted", QB_LIMIT) at its next
** back-edge or call: the epoch-style deadline the UDF layer uses. */
void qw_instance_set_fuel(qw_instance *inst, uint64_t fuel);
uint64_t qw_instance_fuel(const qw_instance *inst);
void qw_instance_interrupt(qw_instance *inst);
/* Withdraw an interrupt no call has taken yet (a deadline that fired just as its call returned),
** so the next call does not trap on it. Call it from the thread that runs INST, between calls. */
void qw_instance_interrupt_clear(qw_instance *inst);

/* Memory 0 of INST (NULL/0 when none); the pointer is stable for the instance's lifetime
** (memory is reserved up to its cap), the size changes with memory.grow. */
uint8_t *qw_instance_memory(qw_instance *inst, size_t *size_bytes);

/* Globals, for the spec runner's `get` and for linking. */
qb_code qw_extern_global_get(const qw_extern *x, qw_val *out, qb_err *err);

/* Bytes allocated for INST (memory, tables, stacks), for quidditch_udf_memory_bytes. */
size_t qw_instance_memory_bytes(const qw_instance *inst);

#endif
