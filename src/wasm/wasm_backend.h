/* wasm_backend.h: the wasm layer's surface for the layer below it, the native tier (src/jit),
** and for nothing else. Three parts: a read-only view of a decoded, validated module; the
** instruction decoder that validate.c, compile.c and the JIT share (no one else decodes the
** LEB128 immediates of instructions); and the instance side native code runs against (its
** environment, the runtime functions it calls, entry slots and their publication).
** Invariant: everything here is valid only for a module that qw_module_load validated; the
** view's pointers live as long as the module. src/jit includes this, never internal.h. */
#ifndef QW_WASM_BACKEND_H
#define QW_WASM_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>

#include "wasm.h"

/* Changes whenever anything native code depends on changes (qw_native_env's layout, the
** runtime functions' names or signatures, the entry convention). Part of an AOT artifact's key. */
#define QW_BACKEND_ABI 2u /* 2: calls the interpreter inlines pay no fuel or depth in native code */

/* ---- the module, read-only ------------------------------------------------------------------ */

typedef struct qw_bfunctype {
  uint32_t nparams, nresults;
  const uint8_t *params, *results;  /* qw_type bytes */
} qw_bfunctype;

typedef struct qw_bfunc {            /* a defined function */
  uint32_t type_idx;
  uint32_t nlocals;                  /* declared locals, params excluded */
  const uint8_t *local_types;        /* nlocals qw_type bytes */
  const uint8_t *body, *body_end;    /* the instructions: first one .. one past the final end */
  uint32_t body_offset;              /* BODY's byte offset in the module (trap locations) */
} qw_bfunc;

typedef struct qw_bimport {
  const char *module, *name;
  uint8_t kind;                      /* qw_kind */
  uint32_t type_idx;                 /* QW_KFUNC */
} qw_bimport;

typedef struct qw_blimits {
  uint32_t min, max;
  bool has_max;
  uint8_t elem;                      /* tables: QW_FUNCREF / QW_EXTERNREF */
} qw_blimits;

typedef struct qw_bcounts {
  uint32_t ntypes, nimports;
  uint32_t nfuncs, nfunc_imports;    /* function index space: imports first */
  uint32_t nglobals, nglobal_imports;
  uint32_t ntables, nmems;
  uint32_t nelems, ndatas;
  int64_t start;                     /* function index, -1 when none */
  bool validated;                    /* false: M is not validated and everything else is 0 */
} qw_bcounts;

/* Counts of M's index spaces. M must be validated (else all zero). */
qw_bcounts qw_bmod_counts(const qw_module *m);
/* Type I (< ntypes). */
qw_bfunctype qw_bmod_type(const qw_module *m, uint32_t i);
/* Type index of function I of the index space (imports first). */
uint32_t qw_bmod_func_type(const qw_module *m, uint32_t i);
/* Defined function D (< nfuncs - nfunc_imports). */
qw_bfunc qw_bmod_func(const qw_module *m, uint32_t d);
/* Does a `call` of function I (index space) pay nothing: no fuel, no call depth? The
** interpreter inlines small leaf functions (compile.c) and charges such a call nothing, so
** native code must not either, for the same fuel left and the same traps. */
bool qw_bmod_call_free(const qw_module *m, uint32_t i);
qw_bimport qw_bmod_import(const qw_module *m, uint32_t i);
/* Global I's type (imports first); *MUT: mutable. */
uint8_t qw_bmod_global(const qw_module *m, uint32_t i, bool *mut);
qw_blimits qw_bmod_table(const qw_module *m, uint32_t i);
qw_blimits qw_bmod_memory(const qw_module *m, uint32_t i);
/* Segment modes (0 active, 1 passive, 2 declarative). */
uint8_t qw_bmod_elem_mode(const qw_module *m, uint32_t i);
uint8_t qw_bmod_data_mode(const qw_module *m, uint32_t i);
/* The module's binary (its own copy), e.g. to hash it. */
const uint8_t *qw_bmod_bytes(const qw_module *m, size_t *len);

/* ---- the shared instruction decoder --------------------------------------------------------- */

/* One instruction. OP is the opcode as in opcodes.def (0xFC-prefixed ones as 0xfc00|n, 0xFD
** (SIMD) as 0xfd00|n). Which immediates are set depends on the opcode's immediate kind. */
typedef struct qw_insn {
  uint32_t op;
  uint32_t offset;           /* byte offset of the opcode in the module */
  uint32_t a, b;             /* index, label depth, memarg align, (table, type), (seg, table)... */
  uint64_t k;                /* i32/i64 constant (sign-extended), float bits, memarg offset */
  int64_t bt;                /* block type: -64 (0x40) empty, -1..-n value type byte - 256, >= 0 type index */
  const uint8_t *tbl;        /* br_table: the LEB-encoded targets (A of them, then the default) */
  uint32_t nsel;             /* select t*: count of types; TBL points at them */
  uint8_t bt_form;           /* block type: 0 empty (0x40), 1 a value type byte, 2 an s33 index */
  uint32_t at1, at2;         /* byte offsets of the first and second immediate (messages) */
  const char *why;           /* on a decoding failure: the reason in the spec's wording, at
                                offset WHY_AT; NULL: an illegal opcode (OP says which) */
  uint32_t why_at;
} qw_insn;

/* Decode the instruction at *P (P < END) into *OUT and advance *P. BASE: the module's first
** byte (for the offsets). Returns false on a malformed encoding (a validated body never has
** one), with OUT->why/why_at set (validate.c reports them). Only the encoding is checked:
** index ranges, zero bytes, value types and alignment are the validator's. br_table targets
** stay encoded: read them with qw_insn_br_target(s). */
bool qw_insn_next(const uint8_t **p, const uint8_t *end, const uint8_t *base, qw_insn *out);
/* br_table target I (0..count; count = the default) of IN. */
uint32_t qw_insn_br_target(const qw_insn *in, const uint8_t *end, uint32_t i);
/* All count + 1 br_table targets of IN into OUT (the default last). */
void qw_insn_br_targets(const qw_insn *in, const uint8_t *end, uint32_t *out);

/* ---- the instance side: what native code runs against --------------------------------------- */

/* One host->native entry's environment, on the C stack of qw__invoke's boundary. Native code
** reads the public fields at fixed offsets (its layout is part of QW_BACKEND_ABI); the rest is
** the runtime's. Memory 0's base never moves (reserved up to its cap); its size changes only
** in memory.grow and in calls, after which native code re-reads *MEM_SIZE. */
typedef struct qw_native_env {
  uint8_t *mem;                  /* memory 0's data, or NULL */
  const uint64_t *mem_size;      /* memory 0's current size in bytes (points at 0 without one) */
  uint64_t *const *globals;      /* global I's cell; the cell starts with its 64-bit value */
  void *const *funcs;            /* function I's instance (a funcref value), imports first */
  int64_t fuel;                  /* units left; < 0 traps at the next check */
  _Atomic int *interrupt;        /* non-zero: trap "interrupted" at the next check */
  int64_t depth_left;            /* wasm calls left before "call stack exhausted" */
  uintptr_t cstack_limit;        /* native stack floor: a frame below it traps */
  /* runtime-private from here */
  qw_instance *inst;
  void *ex;                      /* qw__exec */
  void *jb;                      /* the boundary's jmp_buf */
  const qw_trap *trap;           /* set when the boundary is reached by a trap */
  uint64_t *top;                 /* first value-stack slot free for calls out */
  void *fr;                      /* the innermost return record at entry */
  int64_t depth0;                /* depth_left at entry */
  const uint8_t *mem_end;        /* end of memory 0's reservation (guard pages), or NULL */
  void *prev;                    /* the env of the enclosing boundary on this thread */
} qw_native_env;

/* A native function's entry: arguments in SLOTS[0..nparams), results written to
** SLOTS[0..nresults) (64-bit slots: i32/f32 in the low half, zero-extended; floats as bits;
** references as pointers). Returns normally, or leaves by a runtime function that traps. */
typedef void (*qw_native_fn)(qw_native_env *env, uint64_t *slots);

/* Trap ids native code passes to qw_rt_trap (the interpreter's descriptors, same wording). */
enum qw_btrap {
  QW_BT_UNREACHABLE, QW_BT_DIV_ZERO, QW_BT_INT_OVERFLOW, QW_BT_BAD_CONVERSION,
  QW_BT_OOB_MEMORY, QW_BT_OOB_TABLE, QW_BT_UNDEFINED_ELEMENT, QW_BT_UNINIT_ELEMENT,
  QW_BT_INDIRECT_MISMATCH, QW_BT_STACK_EXHAUSTED, QW_BT_NULL_REF, QW_BT__COUNT
};

/* Runtime functions native code calls by these names (qw_backend_runtime lists them with
** their addresses). FUNC/OFF: where in wasm terms (function index, module byte offset), for
** qw_instance_trap_where. Those marked "traps" leave through the boundary (longjmp) and never
** return on a trap; nothing between the boundary and them holds a lock or owns memory. */
/* traps with T (enum qw_btrap), always */
void qw_rt_trap(qw_native_env *env, uint32_t t, uint32_t func, uint32_t off)
    __attribute__((noreturn));
/* fuel < 0 or the interrupt flag was seen: traps "fuel exhausted" or "interrupted" */
void qw_rt_budget(qw_native_env *env, uint32_t func, uint32_t off) __attribute__((noreturn));
/* call function F of the index space (an import, or a defined function through its entry
** slot) with SLOTS as qw_native_fn's; traps with the callee's trap */
void qw_rt_call(qw_native_env *env, uint32_t f, uint64_t *slots, uint32_t func, uint32_t off);
/* call_indirect through table TAB, element I, expected type TYPE_IDX; traps as the spec says */
void qw_rt_call_indirect(qw_native_env *env, uint32_t tab, uint32_t type_idx, uint32_t i,
                         uint64_t *slots, uint32_t func, uint32_t off);
int32_t qw_rt_memory_grow(qw_native_env *env, uint32_t delta_pages);
/* bulk memory / tables: trap on failure, pay fuel by length as the interpreter does */
void qw_rt_memory_fill(qw_native_env *env, uint32_t d, uint32_t v, uint32_t n, uint32_t func,
                       uint32_t off);
void qw_rt_memory_copy(qw_native_env *env, uint32_t d, uint32_t s, uint32_t n, uint32_t func,
                       uint32_t off);
void qw_rt_memory_init(qw_native_env *env, uint32_t seg, uint32_t d, uint32_t s, uint32_t n,
                       uint32_t func, uint32_t off);
void qw_rt_data_drop(qw_native_env *env, uint32_t seg);
uint64_t qw_rt_table_get(qw_native_env *env, uint32_t tab, uint32_t i, uint32_t func,
                         uint32_t off);
void qw_rt_table_set(qw_native_env *env, uint32_t tab, uint32_t i, uint64_t v, uint32_t func,
                     uint32_t off);
uint32_t qw_rt_table_size(qw_native_env *env, uint32_t tab);
int32_t qw_rt_table_grow(qw_native_env *env, uint32_t tab, uint64_t init, uint32_t delta);
void qw_rt_table_fill(qw_native_env *env, uint32_t tab, uint32_t i, uint64_t v, uint32_t n,
                      uint32_t func, uint32_t off);
void qw_rt_table_copy(qw_native_env *env, uint32_t dt, uint32_t st, uint32_t d, uint32_t s,
                      uint32_t n, uint32_t func, uint32_t off);
void qw_rt_table_init(qw_native_env *env, uint32_t tab, uint32_t seg, uint32_t d, uint32_t s,
                      uint32_t n, uint32_t func, uint32_t off);
void qw_rt_elem_drop(qw_native_env *env, uint32_t seg);

typedef struct qw_brt_sym {
  const char *name;
  void *addr;
} qw_brt_sym;
/* The runtime functions above, by name, *N of them (static table). */
const qw_brt_sym *qw_backend_runtime(size_t *n);

/* ---- entry slots ---------------------------------------------------------------------------- */

/* Each defined function of an instance has one entry slot; every call from the interpreter,
** from C (qw_func_call*) and from qw_rt_call goes through it. It holds the interpreter's
** code (or NULL: compiled on first call) or a native entry published by a tier.
**
** Rule for freeing native code: a tier publishes with a release store and only while no call
** runs on the instance (an instance is used by one thread at a time, so "between two calls"
** on that thread). The instance then holds the tier's reference (OWNER, dropped by RELEASE
** when another owner is set, or the instance is freed); a call that starts after the store
** sees the new entries, and none that started before is still running. So code is freed only
** once no call can still see it. */
typedef struct qw_native_stub qw_native_stub; /* a function's native entry, as a slot holds it */

/* A stub for defined function D of M entering FN. Errors: QB_NOMEM. */
qb_code qw_native_stub_new(const qw_module *m, uint32_t d, qw_native_fn fn, qw_native_stub **out,
                           qb_err *err);
void qw_native_stub_free(qw_native_stub *s); /* NULL-safe; only once no slot holds it */

/* Publish STUBS (ndefined of them, one per defined function; NULL = back to the interpreter)
** on INST with release stores, and make OWNER the instance's tier reference: the previous
** owner's RELEASE is called. STUBS == NULL: every function back to the interpreter (OWNER
** must then be NULL). Errors: QB_CONFLICT when a call is running on INST; QB_INVAL when STUBS
** were made for another module. */
qb_code qw_native_publish(qw_instance *inst, qw_native_stub *const *stubs, void *owner,
                          void (*release)(void *owner), qb_err *err);
/* Guard pages. Code compiled without bounds checks relies on memory 0 being guarded (its
** reservation covers every u32 address + u32 offset, the uncommitted part faulting) and on
** this fault handler: a SIGSEGV/SIGBUS on this thread, while native code runs, at an address in
** the running instance's memory-0 reservation past its current size becomes the trap "out of
** bounds memory access" at the boundary (qw__native_run); any other fault goes to the handler
** installed before (chained: ASan's, or the default). Installed once per process; true when
** installed. */
bool qw_native_guard_init(void);
/* Memory 0 of INST is guarded (true when INST has no memory 0). */
bool qw_instance_guarded(const qw_instance *inst);
/* Run block driver FN (jit.h qj_block_entry) on INST through the trap boundary, as the
** outermost call: N documents, COLS[k][i] the cell of parameter k of document i, RES[i] its
** result cell. NULL, or the trap that stopped the block (qw_instance_trap_where set). */
const qw_trap *qw_native_block_call(qw_instance *inst, qw_native_fn fn, size_t n,
                                    const uint64_t *const *cols, uint64_t *res);
/* The module INST instantiates. */
const qw_module *qw_instance_module_of(const qw_instance *inst);

#endif
