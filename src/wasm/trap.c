/* trap.c: the static trap descriptors (compared by pointer, wasm3's M3Result style) with the
** spec's wording, and their accessors. A trap is never allocated: interp.c returns one of
** these up the call chain and call.c turns it into a qb_err. */
#include "internal.h"

#define TRAP(name, code, msg) const qw_trap name[1] = {{code, msg}}

TRAP(QW_TRAP_UNREACHABLE, QB_TRAP, "unreachable");
TRAP(QW_TRAP_EXIT, QB_TRAP, "exit");
TRAP(QW_TRAP_HOST, QB_TRAP, "host function trapped");
TRAP(QW_TRAP_DIV_ZERO, QB_TRAP, "integer divide by zero");
TRAP(QW_TRAP_INT_OVERFLOW, QB_TRAP, "integer overflow");
TRAP(QW_TRAP_BAD_CONVERSION, QB_TRAP, "invalid conversion to integer");
TRAP(QW_TRAP_OOB_MEMORY, QB_TRAP, "out of bounds memory access");
TRAP(QW_TRAP_OOB_TABLE, QB_TRAP, "out of bounds table access");
TRAP(QW_TRAP_UNDEFINED_ELEMENT, QB_TRAP, "undefined element");
TRAP(QW_TRAP_UNINIT_ELEMENT, QB_TRAP, "uninitialized element");
TRAP(QW_TRAP_INDIRECT_MISMATCH, QB_TRAP, "indirect call type mismatch");
TRAP(QW_TRAP_STACK_EXHAUSTED, QB_TRAP, "call stack exhausted");
TRAP(QW_TRAP_FUEL, QB_LIMIT, "fuel exhausted");
TRAP(QW_TRAP_INTERRUPTED, QB_LIMIT, "interrupted");
TRAP(QW_TRAP_NULL_REF, QB_TRAP, "null reference");
TRAP(QW_TRAP_NOMEM, QB_NOMEM, "out of memory");

const char *qw_trap_message(const qw_trap *t) { return t ? t->msg : ""; }

qb_code qw_trap_code(const qw_trap *t) { return t ? t->code : QB_OK; }
