/* jit.h: the native tier (prefix qj_): a validated qw_module -> LLVM IR -> native code, in
** process through ORC LLJIT, or a relocatable object for a target triple (AOT) that can be
** loaded back. Native code runs on the same qw_instance as the interpreter (same memory,
** globals, tables, imports), with the interpreter's semantics, traps and limits; calls
** between the tiers and traps across them work both ways.
**
** Lifetimes: a qj_code is refcounted. Its creator holds one reference; every instance it is
** attached to holds one until it is detached, another code is attached, or the instance is
** freed. The native code is freed when the last reference goes: attach/detach happen only
** between two calls on the instance (its one-thread rule), so no call can still be running
** in code that is freed (wasm_backend.h states the slot rule).
** Threads: qj_compile, qj_emit_object and qj_load_object may run on any thread, concurrently
** (each builds its own LLVM context); a qj_code may be attached to instances on any thread. */
#ifndef QJ_JIT_H
#define QJ_JIT_H

#include <stdbool.h>

#include "base.h"
#include "wasm.h"

typedef struct qj_code qj_code; /* the native code of one module */

/* Zeroed = defaults. */
typedef struct qj_options {
  int opt_level;                /* LLVM optimisation level 1..3; 0 = the default (2) */
  bool guard_pages;             /* opt-in: no bounds checks in code, a fault in the memory's
                                ** guard region is the trap (docs/jit.md). Default: every access
                                ** checked in code, so traps are exactly the interpreter's (with
                                ** guard pages LLVM may drop a trapping load whose value is
                                ** unused, and the differential test finds such modules) */
  bool udf;                     /* for the UDF layer (native_llvm.c): no code for the exports
                                ** it runs in the interpreter (qd_*, X__batch of an export X),
                                ** and entries only where it can enter through a slot: exports
                                ** without a block driver and call_indirect targets (docs/jit.md
                                ** "What is compiled"). Attached, the other functions run the
                                ** interpreter when called from outside native code */
  const char *export_name;      /* with UDF: the one export the UDF runs (the manifest's) is
                                ** the only root; NULL: every export but the ones above */
} qj_options;

/* Compile the defined functions of M (validated; it must outlive *OUT) that calls of its
** function exports can run to native code for this host, eagerly: the exports (OPT->udf: but
** the UDF layer's interpreter-only ones), closed over direct calls and over call_indirect to
** every function of the called signature (docs/jit.md "What is compiled"). The others keep the
** interpreter's code. *OUT: one reference, for qj_code_free. Errors: QB_UNAVAILABLE (the
** host has no LLVM target, or M uses an instruction the tier lacks: SIMD), QB_NOMEM,
** QB_INTERNAL (LLVM failed; ERR says how). */
qb_code qj_compile(const qw_module *m, const qj_options *opt, qj_code **out, qb_err *err);

/* Publish C's entries on INST (an instance of C's module): from the next call on, every
** function C compiled runs native code on INST, whichever tier calls it (the others run the
** interpreter; calls between them cross the tiers). INST takes a reference on C
** and drops the one of the code it had. Call only between calls on INST. Errors: QB_INVAL
** (another module), QB_CONFLICT (a call is running on INST), QB_UNAVAILABLE (C relies on
** guard pages and INST's memory is not guarded: the address space did not allow it). */
qb_code qj_attach(qj_code *c, qw_instance *inst, qb_err *err);

/* Every function of INST back to the interpreter (drops INST's reference, if any). Call only
** between calls. Errors: QB_CONFLICT (a call is running). */
qb_code qj_detach(qw_instance *inst, qb_err *err);

/* A relocatable ELF object with M's native code for TRIPLE ("x86_64-linux",
** "aarch64-linux", or a full LLVM triple), for a generic CPU of that architecture. *OBJ:
** allocated with qb_malloc, *LEN bytes, free with qj_buffer_free. Errors: QB_UNAVAILABLE
** (unknown target), QB_NOMEM, QB_INTERNAL. */
qb_code qj_emit_object(const qw_module *m, const char *triple, const qj_options *opt,
                       uint8_t **obj, size_t *len, qb_err *err);
void qj_buffer_free(uint8_t *obj, size_t len);

/* Load an object made by qj_emit_object for this host and module M: *OUT as qj_compile's.
** The object is trusted native code: check its origin first (the UDF layer verifies a
** signature and the module's hash). Errors: QB_INVAL (not for this ABI/module: wrong symbol
** set or ABI version), QB_CORRUPT (not a loadable object for this host), QB_NOMEM. */
qb_code qj_load_object(const qw_module *m, const uint8_t *obj, size_t len, qj_code **out,
                       qb_err *err);

/* The block driver of C's function export NAME (one result, numeric params), or NULL when it
** has none: runs N documents in one call through qj_block_call, bit for bit as N calls. */
void *qj_block_entry(qj_code *c, const char *name);
/* Does the block driver of export NAME have a check-free loop (docs/jit.md "Check-free block
** drivers")? *FUEL_PER_DOC (may be NULL): the fuel a document can charge at most, which a
** block must have for n documents to take it (else the checked loop runs). */
bool qj_block_checkfree(qj_code *c, const char *name, uint64_t *fuel_per_doc);
/* Run block driver B of C (qj_block_entry) on INST, an instance of C's module, between calls
** (C need not be attached: calls through the instance's slots run the tier it has):
** COLS[k][i] is parameter k of document i as a 64-bit cell, RES[i] gets the result cell. NULL,
** or the trap that stopped the block at its first trapping document (QW_TRAP_HOST when INST
** is another module's or its memory lacks the guard pages C relies on). */
const qw_trap *qj_block_call(qj_code *c, void *b, qw_instance *inst, size_t n,
                             const uint64_t *const *cols, uint64_t *res);

/* Has C code for function export NAME: its block driver or its entry (UDF mode compiles
** only some exports; an object records which)? */
bool qj_code_has_export(qj_code *c, const char *name);

/* C leaves memory bounds to guard pages (no explicit checks in its code). */
bool qj_code_guarded(const qj_code *c);

/* Another reference to C (returns C). */
qj_code *qj_code_ref(qj_code *c);
/* Drop one reference; the last one frees the native code. NULL-safe. */
void qj_code_free(qj_code *c);

/* Wall time qj_compile/qj_load_object spent on C, in nanoseconds; bytes of native code
** (the JIT's estimate: object size). */
uint64_t qj_code_compile_ns(const qj_code *c);
size_t qj_code_bytes(const qj_code *c);

/* This host's target triple, e.g. "x86_64-pc-linux-gnu" (static string). */
const char *qj_host_triple(void);

#endif
