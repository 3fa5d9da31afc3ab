/* insn.c: the one instruction decoder of the engine's back ends (wasm_backend.h): opcode and
** immediates of one instruction from code bytes, by the immediate kinds of opcodes.def. It
** checks the binary encoding only (LEB128 lengths, the end of the code); typing is
** validate.c's job. Invariant: on success *P has advanced past exactly one instruction. */
#include <string.h>

#include "internal.h"
#include "wasm_backend.h"

bool qw_insn_next(const uint8_t **pp, const uint8_t *end, const uint8_t *base, qw_insn *o) {
  const uint8_t *p = *pp;
  uint32_t x, n;
  int32_t v32;
  int64_t v64;
  if (p >= end) return false;
  memset(o, 0, sizeof *o);
  o->offset = (uint32_t)(p - base);
  o->op = *p++;
  if (o->op == 0xfc || o->op == 0xfd) {
    if (!qw__leb_u32(&p, end, &x)) return false;
    if (x >= 0x100) return false;
    o->op = o->op << 8 | x;
  }
  switch (qw__imm_kind(o->op)) {
  case QW_IMM_NONE: break;
  case QW_IMM_BLOCK:
    if (p >= end) return false;
    if (*p == 0x40) o->bt = -64, p++;
    else if ((*p & 0xc0) == 0x40) o->bt = (int64_t)*p++ - 256; /* a value type byte */
    else if (!qw__leb_s33(&p, end, &o->bt)) return false;
    break;
  case QW_IMM_LABEL: case QW_IMM_FUNC: case QW_IMM_LOCAL: case QW_IMM_GLOBAL:
  case QW_IMM_TABLE: case QW_IMM_DATA: case QW_IMM_ELEM:
    if (!qw__leb_u32(&p, end, &o->a)) return false;
    break;
  case QW_IMM_BR_TABLE:
    if (!qw__leb_u32(&p, end, &o->a)) return false;
    o->tbl = p;
    for (n = 0; n <= o->a; n++)
      if (!qw__leb_u32(&p, end, &x)) return false;
    break;
  case QW_IMM_CALL_INDIRECT: case QW_IMM_TABLEINIT: case QW_IMM_TABLECOPY:
    if (!qw__leb_u32(&p, end, &o->a) || !qw__leb_u32(&p, end, &o->b)) return false;
    break;
  case QW_IMM_MEM:
    if (!qw__leb_u32(&p, end, &o->a) || !qw__leb_u32(&p, end, &x)) return false;
    o->k = x;
    break;
  case QW_IMM_MEMIDX:
    if (p >= end) return false;
    o->a = *p++;
    break;
  case QW_IMM_I32:
    if (!qw__leb_s32(&p, end, &v32)) return false;
    o->k = (uint64_t)(int64_t)v32;
    break;
  case QW_IMM_I64:
    if (!qw__leb_s64(&p, end, &v64)) return false;
    o->k = (uint64_t)v64;
    break;
  case QW_IMM_F32: {
    uint32_t b;
    if (end - p < 4) return false;
    memcpy(&b, p, 4), p += 4;
    o->k = b;
    break;
  }
  case QW_IMM_F64:
    if (end - p < 8) return false;
    memcpy(&o->k, p, 8), p += 8;
    break;
  case QW_IMM_SELECT_T:
    if (!qw__leb_u32(&p, end, &o->nsel) || (uint64_t)(end - p) < o->nsel) return false;
    o->tbl = p;
    p += o->nsel;
    break;
  case QW_IMM_REFTYPE:
    if (p >= end) return false;
    o->a = *p++;
    break;
  case QW_IMM_MEMINIT:
    if (!qw__leb_u32(&p, end, &o->a) || p >= end) return false;
    o->b = *p++;
    break;
  case QW_IMM_MEMCOPY:
    if (end - p < 2) return false;
    o->a = p[0], o->b = p[1], p += 2;
    break;
  default: return false; /* illegal opcode (and SIMD, which has no kinds here) */
  }
  *pp = p;
  return true;
}

uint32_t qw_insn_br_target(const qw_insn *in, const uint8_t *end, uint32_t i) {
  const uint8_t *p = in->tbl;
  uint32_t x = 0;
  for (uint32_t k = 0; k <= i; k++)
    if (!qw__leb_u32(&p, end, &x)) return 0;
  return x;
}

void qw_insn_br_targets(const qw_insn *in, const uint8_t *end, uint32_t *out) {
  const uint8_t *p = in->tbl;
  for (uint32_t k = 0; k <= in->a; k++)
    if (!qw__leb_u32(&p, end, &out[k])) out[k] = 0;
}
