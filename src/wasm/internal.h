/* internal.h: the engine's shared internals: the decoded module (decode.c fills it,
** validate.c checks it, compile.c translates its bodies), the runtime objects (instance.c,
** memory.c, table.c, link.c build them; interp.c runs on them), traps and the execution
** context. Names are qw__ (double underscore). Nothing outside src/wasm includes this file.
**
** Who writes what:
**   decode.c    qw_module fields below, from bytes; no semantic checks beyond the binary format
**   validate.c  checks the decoded module; sets m->validated; compile.c may trust everything
**   compile.c   qw__func_decl.code (lazily, CAS-published); interp.c runs it
**   instance.c  qw_instance: link, allocate, initialise, start; exports
**   interp.c    qw__invoke(): runs a function on an execution context
**   wasi.c      the WASI preview1 host functions */
#ifndef QW_INTERNAL_H
#define QW_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "wasm.h"

/* ---- implementation limits (checked by decode.c; exceeding one is QB_LIMIT) ---------------- */
#define QW_MAX_TYPES 1000000u
#define QW_MAX_FUNCS 1000000u
#define QW_MAX_IMPORTS 100000u
#define QW_MAX_EXPORTS 100000u
#define QW_MAX_GLOBALS 1000000u
#define QW_MAX_TABLES 100000u
#define QW_MAX_ELEMS 100000u
#define QW_MAX_DATAS 100000u
#define QW_MAX_PARAMS 1000u
#define QW_MAX_RESULTS 1000u
#define QW_MAX_LOCALS 50000u   /* per function, params included */
#define QW_MAX_FUNC_SIZE (7654321u)
#define QW_PAGE_SIZE 65536u
#define QW_MAX_PAGES 65536u    /* spec maximum for a 32-bit memory */

/* ---- the decoded module -------------------------------------------------------------------- */

typedef struct qw__functype {
  uint32_t nparams, nresults;
  uint8_t *types;     /* nparams params, then nresults results (qw_type) */
  uint32_t canon;     /* engine-wide id: equal ids <=> structurally equal types */
} qw__functype;

typedef struct qw__limits {
  uint32_t min, max;
  bool has_max;
} qw__limits;

typedef struct qw__tabletype {
  uint8_t elem;       /* QW_FUNCREF or QW_EXTERNREF */
  qw__limits lim;
} qw__tabletype;

typedef struct qw__globaltype {
  uint8_t type;
  bool mut;
} qw__globaltype;

/* A constant expression. WebAssembly 2.0 allows exactly one instruction before `end`. */
typedef enum qw__cop {
  QW_C_I32, QW_C_I64, QW_C_F32, QW_C_F64, /* .bits */
  QW_C_REF_NULL,                          /* .idx = the ref type */
  QW_C_REF_FUNC,                          /* .idx = function index */
  QW_C_GLOBAL_GET                         /* .idx = global index (an import, spec 2.0) */
} qw__cop;
typedef struct qw__cexpr {
  uint8_t op;         /* qw__cop */
  uint32_t idx;
  uint64_t bits;
  uint32_t offset;    /* byte offset of the expression, for messages */
} qw__cexpr;

typedef struct qw__import {
  char *module, *name;       /* NUL-terminated; validated UTF-8 */
  uint8_t kind;              /* qw_kind */
  uint32_t type_idx;         /* QW_KFUNC */
  qw__tabletype table;       /* QW_KTABLE */
  qw__limits mem;            /* QW_KMEMORY */
  qw__globaltype global;     /* QW_KGLOBAL */
} qw__import;

typedef struct qw__export {
  char *name;
  uint8_t kind;
  uint32_t index;
  uint32_t name_len;         /* bytes in NAME (names may contain NUL) */
} qw__export;

typedef struct qw__code qw__code; /* compile.c's output, opaque to everyone else */
struct qw_native_env; /* wasm_backend.h */

/* A function defined in the module (not imported). */
typedef struct qw__func_decl {
  uint32_t type_idx;
  uint32_t nlocals;            /* declared locals, params excluded */
  uint8_t *local_types;        /* nlocals entries */
  const uint8_t *body;         /* first instruction (after the local declarations) */
  const uint8_t *body_end;     /* one past the final `end` */
  uint32_t body_offset;        /* offset of BODY within the module bytes, for messages */
  _Atomic(qw__code *) code;    /* NULL until compiled; set once with CAS (compile.c) */
} qw__func_decl;

typedef struct qw__global_decl {
  qw__globaltype type;
  qw__cexpr init;
} qw__global_decl;

enum { QW_SEG_ACTIVE, QW_SEG_PASSIVE, QW_SEG_DECLARATIVE };

typedef struct qw__elem {
  uint8_t mode;              /* QW_SEG_* */
  uint8_t type;              /* QW_FUNCREF or QW_EXTERNREF */
  uint32_t table;            /* active only */
  qw__cexpr offset;          /* active only */
  uint32_t count;
  qw__cexpr *items;          /* count expressions (ref.func f / ref.null t / global.get g) */
} qw__elem;

typedef struct qw__data {
  uint8_t mode;              /* QW_SEG_ACTIVE or QW_SEG_PASSIVE */
  uint32_t mem;
  qw__cexpr offset;
  const uint8_t *bytes;      /* into the module's copy of the binary */
  uint32_t len;
} qw__data;

struct qw_module {
  qw_engine *engine;
  qb_arena arena;            /* everything below lives here (and dies with the module) */
  uint8_t *bytes;            /* the module's own copy of the binary */
  size_t len;

  uint32_t ntypes;           qw__functype *types;
  uint32_t nimports;         qw__import *imports;
  /* index spaces: imports first, then definitions */
  uint32_t nfuncs, nfunc_imports;       uint32_t *func_types;   /* type index per function */
  uint32_t ndefined;                    qw__func_decl *funcs;   /* nfuncs - nfunc_imports */
  uint32_t ntables, ntable_imports;     qw__tabletype *tables;
  uint32_t nmems, nmem_imports;         qw__limits *mems;
  uint32_t nglobals, nglobal_imports;   qw__globaltype *global_types;
  qw__global_decl *globals;                                     /* nglobals - nglobal_imports */
  uint32_t nexports;         qw__export *exports;
  int64_t start;             /* -1 when none */
  uint32_t nelems;           qw__elem *elems;
  uint32_t ndatas;           qw__data *datas;
  bool has_datacount;        uint32_t datacount;
  uint32_t code_bytes;       /* size of the code section */
  bool validated;
  /* functions referenced outside function bodies (exports, elems, global inits): the only
  ** ones ref.func may name in a body (spec: C.refs) */
  uint8_t *declared_refs;    /* nfuncs bytes, 1 = declared */
  /* instance.c: instances whose instantiation trapped after writing
  ** their own function references into an imported table (spec 2.0 keeps those writes, so the
  ** functions must stay callable); freed with the module. Pushed with CAS. */
  _Atomic(qw_instance *) zombies;
};

/* LEB128 readers shared by decode.c and validate.c/compile.c. Advance *P; return false when
** the encoding is malformed or runs past END. */
bool qw__leb_u32(const uint8_t **p, const uint8_t *end, uint32_t *out);
bool qw__leb_s32(const uint8_t **p, const uint8_t *end, int32_t *out);
bool qw__leb_s64(const uint8_t **p, const uint8_t *end, int64_t *out);
bool qw__leb_s33(const uint8_t **p, const uint8_t *end, int64_t *out);

/* Canonical id for a function type (engine-wide intern table, thread-safe). */
qb_code qw__engine_canon(qw_engine *e, const uint8_t *types, uint32_t nparams,
                         uint32_t nresults, uint32_t *out, qb_err *err);

qb_code qw__decode(qw_module *m, qb_err *err);   /* decode.c: fills M from m->bytes */
qb_code qw__validate(qw_module *m, qb_err *err); /* validate.c */
/* compile.c: does the interpreter inline a call to function X (a small leaf; such a call pays
** no fuel and takes no call depth)? Validated M. */
bool qw__call_inlined(const qw_module *m, uint32_t x);

/* ---- traps --------------------------------------------------------------------------------- */

/* struct qw_trap { code, msg } is defined in wasm.h (the static arrays need it complete). */
/* Static descriptors (trap.c), compared by pointer. */
extern const qw_trap QW_TRAP_DIV_ZERO[1], QW_TRAP_INT_OVERFLOW[1], QW_TRAP_BAD_CONVERSION[1],
    QW_TRAP_OOB_MEMORY[1], QW_TRAP_OOB_TABLE[1], QW_TRAP_UNDEFINED_ELEMENT[1],
    QW_TRAP_UNINIT_ELEMENT[1], QW_TRAP_INDIRECT_MISMATCH[1], QW_TRAP_STACK_EXHAUSTED[1],
    QW_TRAP_FUEL[1], QW_TRAP_INTERRUPTED[1], QW_TRAP_NULL_REF[1];

/* ---- runtime objects ----------------------------------------------------------------------- */

/* A linear memory. DATA is reserved (mmap PROT_NONE) up to MAX_BYTES once, and committed as it
** grows, so DATA never moves: the interpreter may cache it across calls. */
typedef struct qw__memory {
  uint8_t *data;
  uint64_t size_bytes;       /* current size (pages * 64 KiB) */
  uint32_t pages, max_pages; /* max_pages = min(declared max, the limit) */
  uint32_t decl_max;         /* declared maximum (for import matching); has_max below */
  bool has_max;
  bool guarded;              /* reserved_bytes >= QW_GUARD_BYTES: no access of a 32-bit address
                             ** plus offset can leave the reservation (guard pages) */
  size_t reserved_bytes;
} qw__memory;

/* What a guarded memory reserves: any u32 address + u32 offset + 8 bytes, rounded to a page
** (address space only: PROT_NONE, MAP_NORESERVE) */
#define QW_GUARD_BYTES ((size_t)8 << 30 | (size_t)1 << 16)

/* A table of references (qw_func* or externref pointers; NULL = null). */
typedef struct qw__table {
  uint8_t elem;              /* QW_FUNCREF / QW_EXTERNREF */
  uint32_t size, max;        /* max = min(declared max, the limit) */
  uint32_t decl_max;
  bool has_max;
  void **elems;
  uint32_t cap;
} qw__table;

/* A global's cell. Imported globals point at the exporter's cell. */
typedef struct qw__global {
  uint64_t val;              /* i32 low half, floats as bits, refs as pointers. First: native
                                code reads a cell as its value (wasm_backend.h) */
  uint8_t type;
  bool mut;
} qw__global;

/* A function instance: what a funcref points at. */
struct qw_func {
  const qw__functype *type;  /* owned by the defining module, or by the host function */
  uint32_t canon;            /* = type->canon; call_indirect compares these */
  qw_instance *inst;         /* defining instance; NULL for host functions */
  qw__func_decl *decl;       /* defined functions: the declaration (decl->code lazily) */
  _Atomic(const struct qw__code *) *entry; /* defined functions: its slot in inst->entries */
  uint32_t index;            /* index in the defining module's function space */
  qw_host_fn host;           /* host functions only */
  void *host_ud;
};

struct qw_extern {
  uint8_t kind;              /* qw_kind */
  union {
    qw_func *func;
    qw__table *table;
    qw__memory *mem;
    qw__global *global;
  } of;
};

/* Execution context of one host->wasm call: the value stack and the budgets. Lives in the
** entered instance and is shared by every instance the call passes through. */
typedef struct qw__exec {
  uint64_t *stack;           /* value stack (slots) */
  uint64_t *stack_end;
  uint32_t depth, max_depth;
  int64_t fuel;              /* units left; < 0 traps. INT64_MAX when unlimited */
  _Atomic int interrupt;     /* set by another thread; checked with fuel */
  uint32_t trap_func;        /* where the last trap happened (function index, byte offset) */
  uint32_t trap_offset;
  qw_instance *trap_inst;
  /* call.c/interp.c own these (zero-initialised = not set up yet): qw__exec_setup() fills
  ** them, qw__exec_fini() frees them. */
  struct qw__frame *frames;  /* return records, max_depth entries */
  struct qw__frame *frames_end;
  struct qw__frame *fr;      /* innermost record while a call runs */
  uint64_t *top;             /* first free stack slot while a host function runs (re-entry) */
  uintptr_t cstack_limit;    /* native stack floor for nested qw__invoke (cross-instance) */
  size_t alloc_bytes;        /* bytes allocated for stack + frames */
  bool ready;                /* qw__exec_setup has run */
  bool fuel_limited;         /* false: fuel is INT64_MAX and never reported as spent */
} qw__exec;

struct qw_instance {
  /* hot fields first: the interpreter reads these */
  uint8_t *mem0;             /* memory 0's data (stable) or NULL */
  qw__memory *mem0_obj;
  qw__global **globals;      /* nglobals cells (imported ones point elsewhere) */
  qw__table **tables;
  qw_func **funcs;           /* nfuncs function instances (imports point elsewhere) */
  qw__memory **mems;
  qw__exec *exec;            /* the current call's context (own one, or the caller's) */
  qw__exec own_exec;
  const qw_module *mod;
  qw_limits limits;
  uint8_t *elem_dropped;     /* per elem segment (elem.drop; active segments after init) */
  uint8_t *data_dropped;     /* per data segment */
  qw_extern *exports;        /* nexports, in module order */
  qw_func *own_funcs;        /* the ndefined function instances */
  qw__global *own_globals;
  qw__table *own_tables;
  qw__memory *own_mems;
  int exit_code;             /* WASI proc_exit */
  char trap_where[96];
  void *wasi;                /* wasi.c state (output sink, rate limit), or NULL */
  qw_imports *imports;       /* the list linked against (a reference is held), or NULL */
  size_t block_bytes;        /* the one allocation holding the instance and its arrays */
  qw_instance *next_zombie;  /* see qw_module.zombies */
  /* Entry slots, one per defined function: the code every call of it runs (interpreter code,
  ** or a native stub, qw__code.native set); NULL until the first call compiles it. Written
  ** with release stores (native.c: qw_native_publish, only between calls; interp.c: after a
  ** lazy compile), read with acquire loads. The freeing rule is in wasm_backend.h. */
  _Atomic(const qw__code *) *entries;
  void *tier_owner;          /* holds the published native stubs (qw_native_publish) */
  void (*tier_release)(void *owner);
};

/* memory.c / table.c */
qb_code qw__memory_init(qw__memory *mem, uint32_t min, uint32_t decl_max, bool has_max,
                        uint32_t cap_pages, qb_err *err);
void qw__memory_fini(qw__memory *mem);
/* spec: returns the old page count, or -1 (not a trap) when growing is impossible */
int32_t qw__memory_grow(qw__memory *mem, uint32_t delta_pages);
qb_code qw__table_init(qw__table *t, uint8_t elem, uint32_t min, uint32_t decl_max,
                       bool has_max, uint32_t cap, qb_err *err);
void qw__table_fini(qw__table *t);
int32_t qw__table_grow(qw__table *t, uint32_t delta, void *init);

/* interp.c: run F with its arguments in EX's stack at ARGS (nparams slots); results are written
** to ARGS[0..nresults). Compiles F on first use. Returns NULL or the trap. Cross-instance and
** host calls go through here too. */
const qw_trap *qw__invoke(qw__exec *ex, qw_func *f, uint64_t *args);

/* compile.c: translate function DEFINED_IDX of M into threaded code (idempotent; thread-safe:
** the first finished translation is published with CAS, others are freed). */
qb_code qw__compile(const qw_module *m, uint32_t defined_idx, qw__code **out, qb_err *err);
void qw__code_free(qw__code *c);

/* instance.c: evaluate a constant expression in INST (globals already initialised). */
uint64_t qw__cexpr_eval(qw_instance *inst, const qw__cexpr *c);


/* ---- engine, LEB diagnostics, opcode table, import lists ----------------------------------- */

/* Default sandbox limits (wasm.h qw_limits: a zero field means these). */
#define QW_DEFAULT_MAX_PAGES 256u
#define QW_DEFAULT_CALL_DEPTH 10000u
#define QW_DEFAULT_STACK_BYTES (1u << 20)
#define QW_DEFAULT_TABLE_ELEMS 1000000u

/* engine.c. OUT = IN with zero fields taken from DFLT (NULL = the built-in defaults above);
** IN may be NULL (= DFLT). max_memory_pages is clamped to QW_MAX_PAGES. */
void qw__limits_resolve(qw_limits *out, const qw_limits *in, const qw_limits *dflt);
const qw_limits *qw__engine_limits(const qw_engine *e); /* resolved defaults */
/* Note: qw__engine_canon's ids are process-wide (E may be NULL), so host functions made
** without an engine compare with any module's types. */

/* leb.c: why a qw__leb_* read of a BITS-wide integer at P failed, in the spec's wording:
** "unexpected end", "integer representation too long" or "integer too large". */
const char *qw__leb_why(const uint8_t *p, const uint8_t *end, unsigned bits);

/* opcodes.def, expanded. QW_OP_<ident> is the opcode as in opcodes.def (0xfc00|n for the
** 0xFC-prefixed ones), so switch on it directly. */
enum qw__imm {
  QW_IMM_NONE, QW_IMM_BLOCK, QW_IMM_LABEL, QW_IMM_BR_TABLE, QW_IMM_FUNC, QW_IMM_CALL_INDIRECT,
  QW_IMM_LOCAL, QW_IMM_GLOBAL, QW_IMM_TABLE, QW_IMM_MEM, QW_IMM_MEMIDX, QW_IMM_I32,
  QW_IMM_I64, QW_IMM_F32, QW_IMM_F64, QW_IMM_SELECT_T, QW_IMM_REFTYPE, QW_IMM_MEMINIT,
  QW_IMM_DATA, QW_IMM_MEMCOPY, QW_IMM_TABLEINIT, QW_IMM_ELEM, QW_IMM_TABLECOPY
};
enum qw__sig {
  QW_SIG_SPECIAL,
#define QW_SIG(id, np, p0, p1, p2, nr, r0) QW_SIG_##id,
#include "opcodes.def"
  QW_SIG_COUNT
};
enum qw__op {
#define QW_OP(code, ident, name, imm, sig, align) QW_OP_##ident = code,
#include "opcodes.def"
};
/* engine.c: "i32.add" for an opcode as above; NULL when there is no such instruction. */
const char *qw__op_name(uint32_t code);
/* decode.c: the immediate kind (QW_IMM_*) of an opcode as above; -1 when it is illegal. */
int qw__imm_kind(uint32_t code);

/* decode.c: a constant expression that is not one constant instruction + `end` (e.g. an
** arithmetic op, several instructions, nothing): qw__cexpr.op == QW_C_OTHER and validate.c
** re-walks the bytes at .offset to report the spec's error. Never present after validation. */
#define QW_C_OTHER 0xff

/* link.c: an import list. Entries are searched from the back, so later ones win. */
typedef struct qw__import_entry {
  char *module, *name;       /* NUL-terminated copies (qb_malloc'd) */
  qw_extern ext;             /* what the entry provides */
  qw_func *host;             /* a host function owned by the list (ext.of.func == host), with
                                its private qw__functype (host->type) and canon id; or NULL */
} qw__import_entry;

struct qw_imports {
  qw__import_entry *v;
  uint32_t n, cap;
  /* wasi.c's: qw_wasi_set_output's sink, and its per-list state (freed with the list by
  ** wasi_free when set). qw_instance_new copies WASI into inst->wasi (borrowed). */
  qw_wasi_output_fn wasi_out;
  void *wasi_out_ud;
  void *wasi;
  void (*wasi_free)(void *wasi);
  _Atomic uint32_t refs;     /* qw_imports_free drops one; each linked instance holds one */
};
/* link.c: the entry for (MODULE, NAME), or NULL. */
const qw__import_entry *qw__imports_find(const qw_imports *im, const char *module,
                                         const char *name);
void qw__imports_ref(qw_imports *im); /* instance.c: keep IM alive (qw_imports_free drops it) */
/* instance.c: free M's zombie instances (module.c calls it from qw_module_free). */
void qw__module_free_zombies(qw_module *m);

/* ---- the interpreter tier (compile.c, interp.c, call.c) and the native boundary ----------- */

/* Threaded code of one defined function (compile.c makes it, interp.c runs it; layout in
** docs/interpreter.md). Immutable once published in qw__func_decl.code. */
struct qw__code {
  const uint32_t *ops;       /* instructions: [handler][operands...] in 32-bit units */
  uint32_t nops;             /* units in OPS */
  uint32_t nparams;          /* parameter slots */
  uint32_t nlocals;          /* declared locals (zeroed at entry), after the params */
  uint32_t nresults;
  uint32_t nslots;           /* frame size in 64-bit slots (locals + operand stack, >= nresults) */
  uint32_t func_index;       /* in the module's function space (for trap locations) */
  uint32_t npc;              /* triples in PCMAP */
  const uint32_t *pcmap;     /* (unit offset of an instruction, its wasm byte offset, its
                                function index: another one inside an inlined call), sorted */
  size_t alloc_bytes;        /* one allocation holds the struct, OPS, PCMAP and CONSTS */
  uint32_t nconsts;          /* constant slots, right after the locals; copied in at entry */
  const uint64_t *consts;
  uint32_t ninit;            /* nlocals + nconsts rounded up to a multiple of 4: slots nparams..
                                are set from INIT at entry (nslots >= nparams + ninit) */
  const uint64_t *init;      /* nlocals zeros, then the constants (CONSTS points into it) */
  /* a native stub (native.c) has ops = one NATIVE op, ninit = 0, nslots = max(params,
  ** results), and NATIVE set: the entry the op (and qw__invoke) calls; NULL otherwise */
  void (*native)(struct qw_native_env *env, uint64_t *slots);
};

/* A return record of one wasm frame (interp.c). */
typedef struct qw__frame {
  const uint32_t *ret_pc;    /* where the caller resumes; NULL = back to qw__invoke's caller */
  uint64_t *fp;              /* the caller's frame */
  const qw__code *code;      /* the caller's code */
} qw__frame;

/* native.c: the trap boundary both tiers share. Runs native entry C->native on frame FP
** (arguments in place; NSLOTS of it in use) with EX's budgets; a trap raised anywhere below
** (native code, the runtime functions, interpreted code they call) comes back here through
** the one longjmp (qw_rt_*), and is returned. EX->fuel is up to date afterwards. */
const qw_trap *qw__native_run(qw__exec *ex, qw_instance *inst, const qw__code *c, uint64_t *fp);
/* native.c: the trap descriptors native code names by enum qw_btrap */
const qw_trap *qw__btrap(uint32_t id);

/* call.c: give EX its value stack (LIMITS->max_stack_bytes) and return records
** (max_call_depth), fuel and depth limit from LIMITS (zero fields = defaults). Idempotent.
** instance.c may call it at instantiation; qw_func_call/qw__invoke call it lazily otherwise.
** Errors: QB_NOMEM. */
qb_code qw__exec_setup(qw__exec *ex, const qw_limits *limits, qb_err *err);
/* call.c: free what qw__exec_setup allocated (NULL-safe, idempotent). instance.c: call it on
** &inst->own_exec in qw_instance_free. */
void qw__exec_fini(qw__exec *ex);

/* trap.c: allocation failed while running (lazy compilation): QB_NOMEM "out of memory". */
extern const qw_trap QW_TRAP_NOMEM[1];

/* interp.c: in computed-goto builds, the address of each internal op's handler (compile.c
** stores these in the code, QW_OPW units each); NULL in switch builds (QW_DISPATCH_SWITCH),
** where the code stores op numbers (one unit). QW_OPX: operand unit N is at op + QW_OPX + N. */
const void *const *qw__interp_handlers(void);
#ifdef QW_DISPATCH_SWITCH
#define QW_OPW 1
#else
#define QW_OPW (sizeof(void *) / sizeof(uint32_t))
#endif
#define QW_OPX (QW_OPW - 1)

#endif
