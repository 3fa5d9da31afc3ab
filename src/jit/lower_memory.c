/* lower_memory.c: loads, stores, memory.size/grow, bulk memory, tables and references -> IR.
** The effective address is computed in 64 bits (u32 address + u32 offset never wraps). With
** guard pages (L->guard) that is all: memory 0's reservation covers every such address and
** an access past the committed size faults, which native.c turns into the trap. With explicit
** checks ea + size must not pass memory 0's current size, kept in an alloca that is re-read
** after calls and memory.grow (the base never moves).
** Accesses are byte-aligned loads/stores (wasm alignment is a hint); the host is little-endian.
** Bulk memory, tables and segments go through the runtime (qw_rt_*), which traps and charges
** fuel by length exactly as the interpreter does. */
#include "internal.h"

static LLVMValueRef address(qj__lower *L, LLVMValueRef a32, uint64_t offset, unsigned size) {
  LLVMValueRef ea = LLVMBuildAdd(L->b, LLVMBuildZExt(L->b, a32, L->i64, ""), qj__i64(L, offset), "ea");
  if (L->guard) return LLVMBuildGEP2(L->b, L->i8, L->mem, &ea, 1, "");
  LLVMValueRef last = LLVMBuildAdd(L->b, ea, qj__i64(L, size), "");
  LLVMValueRef ms = LLVMBuildLoad2(L->b, L->i64, L->msize, "");
  qj__trap_if(L, LLVMBuildICmp(L->b, LLVMIntUGT, last, ms, ""), QW_BT_OOB_MEMORY);
  return LLVMBuildGEP2(L->b, L->i8, L->mem, &ea, 1, "");
}

typedef struct access {
  unsigned size;     /* bytes */
  uint8_t wt;        /* wasm type of the value */
  int ext;           /* loads: 1 sign-extend, 0 zero-extend (narrow loads only) */
} access;

static const access loads[14] = {
    {4, QW_I32, 0}, {8, QW_I64, 0}, {4, QW_F32, 0}, {8, QW_F64, 0}, {1, QW_I32, 1},
    {1, QW_I32, 0}, {2, QW_I32, 1}, {2, QW_I32, 0}, {1, QW_I64, 1}, {1, QW_I64, 0},
    {2, QW_I64, 1}, {2, QW_I64, 0}, {4, QW_I64, 1}, {4, QW_I64, 0}};
static const access stores[9] = {{4, QW_I32, 0}, {8, QW_I64, 0}, {4, QW_F32, 0},
                                 {8, QW_F64, 0}, {1, QW_I32, 0}, {2, QW_I32, 0},
                                 {1, QW_I64, 0}, {2, QW_I64, 0}, {4, QW_I64, 0}};

static void load(qj__lower *L, const access *a, uint64_t offset) {
  LLVMValueRef p = address(L, qj__pop(L), offset, a->size);
  LLVMTypeRef wt = qj__vtype(L, a->wt);
  bool narrow = a->size < (a->wt == QW_I64 || a->wt == QW_F64 ? 8u : 4u);
  LLVMTypeRef lt = narrow ? LLVMIntTypeInContext(L->cx, a->size * 8) : wt;
  LLVMValueRef v = LLVMBuildLoad2(L->b, lt, p, "");
  LLVMSetAlignment(v, 1);
  if (narrow) v = a->ext ? LLVMBuildSExt(L->b, v, wt, "") : LLVMBuildZExt(L->b, v, wt, "");
  qj__push(L, v, a->wt);
}

static void store(qj__lower *L, const access *a, uint64_t offset) {
  LLVMValueRef v = qj__pop(L);
  LLVMValueRef p = address(L, qj__pop(L), offset, a->size);
  bool narrow = a->size < (a->wt == QW_I64 || a->wt == QW_F64 ? 8u : 4u);
  if (narrow) v = LLVMBuildTrunc(L->b, v, LLVMIntTypeInContext(L->cx, a->size * 8), "");
  LLVMValueRef s = LLVMBuildStore(L->b, v, p);
  LLVMSetAlignment(s, 1);
}

/* a runtime call that may trap: fuel out before, back after; FUNC/OFF appended */
static LLVMValueRef rt(qj__lower *L, int id, LLVMValueRef *a, unsigned n, bool loc) {
  LLVMValueRef args[10];
  args[0] = L->env;
  for (unsigned i = 0; i < n; i++) args[1 + i] = a[i];
  if (loc) {
    args[1 + n] = qj__i32(L, L->func_index);
    args[2 + n] = qj__i32(L, L->off);
  }
  qj__sync_out(L);
  LLVMValueRef r = qj__call_rt(L, id, args, 1 + n + (loc ? 2 : 0));
  qj__sync_in(L);
  return r;
}

bool qj__lower_memory(qj__lower *L, const qw_insn *in) {
  uint32_t op = in->op;
  LLVMValueRef a[6];
  if (op >= 0x28 && op <= 0x35) return load(L, &loads[op - 0x28], in->k), true;
  if (op >= 0x36 && op <= 0x3e) return store(L, &stores[op - 0x36], in->k), true;
  switch (op) {
  case 0x3f: /* memory.size */
    qj__push(L, LLVMBuildTrunc(L->b, LLVMBuildLShr(L->b, LLVMBuildLoad2(L->b, L->i64, L->msize, ""),
                                                   qj__i64(L, 16), ""), L->i32, ""), QW_I32);
    return true;
  case 0x40: /* memory.grow: spec, a failure gives -1, not a trap */
    a[0] = qj__pop(L);
    qj__push(L, rt(L, QJ_RT_MEMORY_GROW, a, 1, false), QW_I32);
    return true;
  case 0xfc08: /* memory.init seg: d s n */
    a[3] = qj__pop(L), a[2] = qj__pop(L), a[1] = qj__pop(L), a[0] = qj__i32(L, in->a);
    rt(L, QJ_RT_MEMORY_INIT, a, 4, true);
    return true;
  case 0xfc09: a[0] = qj__i32(L, in->a); rt(L, QJ_RT_DATA_DROP, a, 1, false); return true;
  case 0xfc0a: /* memory.copy d s n */
  case 0xfc0b: /* memory.fill d v n */
    a[2] = qj__pop(L), a[1] = qj__pop(L), a[0] = qj__pop(L);
    rt(L, op == 0xfc0a ? QJ_RT_MEMORY_COPY : QJ_RT_MEMORY_FILL, a, 3, true);
    return true;
  case 0x25: /* table.get */
    a[1] = qj__pop(L), a[0] = qj__i32(L, in->a);
    qj__push(L, rt(L, QJ_RT_TABLE_GET, a, 2, true), qw_bmod_table(L->m, in->a).elem);
    return true;
  case 0x26: /* table.set i v */
    a[2] = qj__pop(L), a[1] = qj__pop(L), a[0] = qj__i32(L, in->a);
    rt(L, QJ_RT_TABLE_SET, a, 3, true);
    return true;
  case 0xfc0c: /* table.init seg table: d s n */
    a[4] = qj__pop(L), a[3] = qj__pop(L), a[2] = qj__pop(L);
    a[0] = qj__i32(L, in->b), a[1] = qj__i32(L, in->a);
    rt(L, QJ_RT_TABLE_INIT, a, 5, true);
    return true;
  case 0xfc0d: a[0] = qj__i32(L, in->a); rt(L, QJ_RT_ELEM_DROP, a, 1, false); return true;
  case 0xfc0e: /* table.copy dst src: d s n */
    a[4] = qj__pop(L), a[3] = qj__pop(L), a[2] = qj__pop(L);
    a[0] = qj__i32(L, in->a), a[1] = qj__i32(L, in->b);
    rt(L, QJ_RT_TABLE_COPY, a, 5, true);
    return true;
  case 0xfc0f: /* table.grow: init n */
    a[2] = qj__pop(L), a[1] = qj__pop(L), a[0] = qj__i32(L, in->a);
    qj__push(L, rt(L, QJ_RT_TABLE_GROW, a, 3, false), QW_I32);
    return true;
  case 0xfc10: a[0] = qj__i32(L, in->a); qj__push(L, rt(L, QJ_RT_TABLE_SIZE, a, 1, false), QW_I32); return true;
  case 0xfc11: /* table.fill i v n */
    a[3] = qj__pop(L), a[2] = qj__pop(L), a[1] = qj__pop(L), a[0] = qj__i32(L, in->a);
    rt(L, QJ_RT_TABLE_FILL, a, 4, true);
    return true;
  case 0xd0: qj__push(L, qj__i64(L, 0), (uint8_t)in->a); return true; /* ref.null */
  case 0xd1: /* ref.is_null */
    qj__push(L, LLVMBuildZExt(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, qj__pop(L), qj__i64(L, 0), ""),
                              L->i32, ""), QW_I32);
    return true;
  case 0xd2: { /* ref.func: the function instance's address */
    LLVMValueRef idx = qj__i64(L, in->a);
    LLVMValueRef slot = LLVMBuildGEP2(L->b, L->ptr, L->funcs, &idx, 1, "");
    qj__push(L, LLVMBuildPtrToInt(L->b, LLVMBuildLoad2(L->b, L->ptr, slot, ""), L->i64, ""),
             QW_FUNCREF);
    return true;
  }
  }
  return false;
}
