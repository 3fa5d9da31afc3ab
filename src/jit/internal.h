/* internal.h: src/jit's shared internals: the lowering context (one per module being lowered)
** and the per-family lowering entry points (lower_*.c), the ORC/object plumbing (orc.c).
** Names are qj__. Nothing outside src/jit includes this file.
**
** IR shape (docs/jit.md): each selected defined function D (select.c) becomes `qj_f<D>(ptr env, params...)`
** returning void, one value or a struct of its results; `qj_e<D>(ptr env, ptr slots)` is its
** entry (qw_native_fn) for the interpreter, C and the runtime. Locals and label values are
** allocas (SROA/mem2reg turn them into SSA); fuel lives in an alloca and is written back to
** env->fuel before every call and trap, re-read after calls. */
#ifndef QJ_INTERNAL_H
#define QJ_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "jit.h"
#include "wasm_backend.h"

/* control frame kinds */
enum { QJ_FUNC, QJ_BLOCK, QJ_LOOP, QJ_IF };

typedef struct qj__ctrl {
  uint8_t kind;
  bool dead;                 /* the rest of this frame is unreachable (after br, return, ...) */
  uint32_t height;           /* value-stack height below the frame's params */
  uint32_t nparams, nresults;
  const uint8_t *params, *results;
  LLVMBasicBlockRef label;   /* branch target: loop header, else the end */
  LLVMBasicBlockRef end;     /* after the frame */
  LLVMBasicBlockRef els;     /* if: the else arm, until `else` is seen; NULL otherwise */
  LLVMValueRef *lvals;       /* allocas of the label's values (loop: params; else results) */
  LLVMValueRef *rvals;       /* allocas of the results at the end (== lvals unless a loop) */
  LLVMValueRef *pvals;       /* if: the param values, for the else arm */
  LLVMValueRef *vals;        /* one allocation behind lvals/rvals/pvals */
  uint32_t vcap;             /* entries in VALS */
} qj__ctrl;

typedef struct qj__lower {
  const qw_module *m;
  qw_bcounts n;
  LLVMContextRef cx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, vd;
  LLVMTypeRef env_ty;        /* qw_native_env's public prefix, as LLVM sees it */
  uint8_t *sel;              /* select.c: QJ_SEL_* of each defined function, ndefined */
  bool udf;                  /* qj_options.udf: select.c's UDF mode, entries only where used */
  const char *only;          /* qj_options.export_name (UDF mode) */
  LLVMValueRef *fns;         /* qj_f<D>, ndefined (NULL for those not selected) */
  LLVMTypeRef *fn_tys;
  LLVMValueRef rt[24];       /* runtime functions, by enum below */
  LLVMTypeRef rt_ty[24];
  /* the function being lowered */
  uint32_t d, func_index;
  qw_bfunc bf;
  qw_bfunctype ft;
  LLVMValueRef fn, env;
  LLVMValueRef *locals;      /* allocas, params first */
  uint8_t *local_types;
  uint32_t nlocals;          /* params included */
  uint32_t loc_cap;          /* entries allocated in LOCALS and LOCAL_TYPES */
  LLVMValueRef fuel;         /* alloca i64 */
  LLVMValueRef msize;        /* alloca i64: memory 0's size in bytes */
  LLVMValueRef mem;          /* memory 0's base */
  LLVMValueRef globals, interrupt, funcs;
  LLVMValueRef *stack;       /* the wasm value stack, as IR values */
  uint8_t *stypes;
  uint32_t sp, scap;
  qj__ctrl *ctl;
  uint32_t nctl, ctlcap;
  uint32_t off;              /* byte offset of the instruction being lowered */
  LLVMBasicBlockRef trap_bb[QW_BT__COUNT]; /* this function's shared trap blocks (or NULL) */
  LLVMValueRef trap_at[QW_BT__COUNT];      /* their phi of the trapping instruction's offset */
  bool guard;                /* bounds left to guard pages: no explicit checks */
  /* check-free variants (blockscan.c): qj_g<D>(env, params..., ptr fuel) for the functions a
  ** check-free block loop reaches; NULL for the others */
  LLVMValueRef *gfns;
  LLVMTypeRef *gfn_tys;
  bool nocheck;              /* lowering a qj_g<D>: no budget, depth or stack checks; a trap
                             ** writes the counter (GFUEL) back as env->fuel */
  bool nocheck_bad;          /* a qj_g<D> needed a budget or runtime call (a scan bug): unused */
  LLVMValueRef gfuel;        /* qj_g<D>'s fuel counter (ptr i64), charged 1 per call */
  bool oom;
  qb_err *err;
  uint64_t lower_ns;         /* orc.c: CPU time of the lowering */
} qj__lower;

enum {
  QJ_RT_TRAP, QJ_RT_BUDGET, QJ_RT_CALL, QJ_RT_CALL_INDIRECT, QJ_RT_MEMORY_GROW,
  QJ_RT_MEMORY_FILL, QJ_RT_MEMORY_COPY, QJ_RT_MEMORY_INIT, QJ_RT_DATA_DROP, QJ_RT_TABLE_GET,
  QJ_RT_TABLE_SET, QJ_RT_TABLE_SIZE, QJ_RT_TABLE_GROW, QJ_RT_TABLE_FILL, QJ_RT_TABLE_COPY,
  QJ_RT_TABLE_INIT, QJ_RT_ELEM_DROP, QJ_RT__COUNT
};

/* lower_func.c: the module -> IR driver; stack and helpers shared by the families */
/* GUARD: memory accesses unchecked (guard pages); the object records it as qj_guard */
/* OPT: udf and export_name are used (may be NULL). The module gets `i8 qj_sel[ndefined]`: 1 where qj_e<D> exists */
qb_code qj__lower_module(qj__lower *L, const qw_module *m, LLVMContextRef cx, bool guard,
                         const qj_options *opt, qb_err *err);
void qj__lower_fini(qj__lower *L);
LLVMTypeRef qj__vtype(qj__lower *L, uint8_t t);
void qj__push(qj__lower *L, LLVMValueRef v, uint8_t t);
LLVMValueRef qj__pop(qj__lower *L);
LLVMValueRef qj__i32(qj__lower *L, uint64_t k);
LLVMValueRef qj__i64(qj__lower *L, uint64_t k);
/* lower_numeric.c: a float zero LLVM cannot fold (a load of an opaque global) */
LLVMValueRef qj__opaque_zero(qj__lower *L, LLVMTypeRef t);
/* a cold block that traps with T (enum qw_btrap) when COND holds; continues otherwise */
void qj__trap_if(qj__lower *L, LLVMValueRef cond, uint32_t t);
void qj__trap(qj__lower *L, uint32_t t); /* unconditional, leaves the builder in a dead block */
LLVMValueRef qj__call_rt(qj__lower *L, int rt, LLVMValueRef *args, unsigned n);
void qj__sync_out(qj__lower *L); /* fuel -> env before a call or trap */
void qj__sync_in(qj__lower *L);  /* fuel and memory size back after a call */
LLVMValueRef qj__env_field(qj__lower *L, size_t off, LLVMTypeRef t); /* load a public env field */
LLVMValueRef qj__alloca(qj__lower *L, LLVMTypeRef t, const char *name); /* in the entry block */
LLVMBasicBlockRef qj__block(qj__lower *L, const char *name);
LLVMValueRef qj__intrinsic(qj__lower *L, const char *name, LLVMTypeRef *tys, unsigned ntys,
                           LLVMValueRef *args, unsigned nargs);

/* the families: each returns true when it lowered IN (false: not its instruction) */
bool qj__lower_control(qj__lower *L, const qw_insn *in, const uint8_t *end);
bool qj__lower_memory(qj__lower *L, const qw_insn *in);
bool qj__lower_numeric(qj__lower *L, const qw_insn *in);
bool qj__lower_convert(qj__lower *L, const qw_insn *in);
bool qj__lower_call(qj__lower *L, const qw_insn *in);
/* lower_call.c: the budget check of a call or back-edge; the entry wrapper of function D */
void qj__budget(qj__lower *L);
/* lower_control.c: a value as a 64-bit cell (slot, global) and back */
LLVMValueRef qj__to_cell(qj__lower *L, LLVMValueRef v, uint8_t t);
LLVMValueRef qj__from_cell(qj__lower *L, LLVMValueRef v, uint8_t t);
void qj__emit_entry(qj__lower *L, uint32_t d);
/* blockscan.c: static bounds of one document of a check-free export, on every path */
typedef struct qj_block_bounds {
  uint64_t fuel;   /* units charged at most (the entry's one included) */
  uint64_t depth;  /* longest chain of nested direct calls (depth_left needed) */
  uint64_t stack;  /* native stack bytes its frames can take at most */
} qj_block_bounds;
/* Is export D (defined index) check-free (GUARD: the code relies on guard pages)? *OK, *OUT the bounds, REACH[f] = 1 for each defined
** function it can run (nd entries, others untouched). Errors: QB_NOMEM. */
qb_code qj__block_scan(const qw_module *m, uint32_t d, bool guard, qj_block_bounds *out,
                       uint8_t *reach, bool *ok, qb_err *err);
/* lower_call.c: qj_b<D>, UDF-shaped exports; FAST: bounds of its check-free loop (qj_g<D>
** lowered), or NULL for the checked loop alone */
void qj__emit_block(qj__lower *L, uint32_t d, const qj_block_bounds *fast);
/* lower_control.c: open the function's own frame; close it at the final end */
void qj__func_begin(qj__lower *L);

/* select.c: SEL[D] (ndefined entries) for each defined function of M: QJ_SEL_CODE when the tier
** compiles it (what calls of the roots can run), QJ_SEL_ROOT for a root (a function export;
** UDF: but those the UDF layer runs in the interpreter), QJ_SEL_INDIRECT when a call_indirect
** of the set can call it, QJ_SEL_HOT when it is reached without a call right before
** `unreachable` (UDF mode; all selected otherwise). lower_func.c adds QJ_SEL_DRIVER (a block driver was emitted) and
** QJ_SEL_ENTRY (it has a qj_e<D>). Errors: QB_NOMEM, QB_INTERNAL. */
enum { QJ_SEL_CODE = 1, QJ_SEL_ROOT = 2, QJ_SEL_INDIRECT = 4, QJ_SEL_DRIVER = 8, QJ_SEL_ENTRY = 16,
       QJ_SEL_HOT = 32 };
qb_code qj__select(const qw_module *m, bool udf, const char *only, uint8_t *sel, qb_err *err);

/* orc.c */
qb_code qj__targets_init(qb_err *err);
LLVMTargetMachineRef qj__machine(const char *triple, bool host, int opt, qb_err *err);
/* HOIST: run hoist.c between the two parts; *REDO: it failed, lower again without it */
qb_code qj__optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, bool hoist, bool *redo,
                     qb_err *err);

/* hoist.c: version counted leaf loops without their budget and bounds checks; the count */
unsigned qj__hoist_module(LLVMModuleRef mod, LLVMContextRef cx);

#endif
