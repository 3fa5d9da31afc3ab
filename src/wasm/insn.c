/* insn.c: the one instruction decoder of the engine's back ends (wasm_backend.h): opcode and
** immediates of one instruction from code bytes, by the immediate kinds of opcodes.def. It
** checks the binary encoding only (LEB128 lengths, the end of the code); typing is
** validate.c's job. Invariant: on success *P has advanced past exactly one instruction. */
#include <string.h>

#include "internal.h"
#include "wasm_backend.h"

#define END_MSG "unexpected end of section or function"

/* fail with WHY at AT */
static bool bad(qw_insn *o, const uint8_t *base, const uint8_t *at, const char *why) {
  o->why = why;
  o->why_at = (uint32_t)(at - base);
  return false;
}

static bool u32(const uint8_t **p, const uint8_t *end, const uint8_t *base, qw_insn *o,
                uint32_t *out) {
  const uint8_t *at = *p;
  if (QB_LIKELY(qw__leb_u32(p, end, out))) return true;
  return bad(o, base, at, qw__leb_why(at, end, 32));
}

bool qw_insn_next(const uint8_t **pp, const uint8_t *end, const uint8_t *base, qw_insn *o) {
  const uint8_t *p = *pp;
  uint32_t x, n;
  int32_t v32;
  int64_t v64;
  memset(o, 0, sizeof *o);
  if (p >= end) return bad(o, base, p, END_MSG);
  o->offset = (uint32_t)(p - base);
  o->op = *p++;
  if (o->op == 0xfc || o->op == 0xfd) {
    if (!u32(&p, end, base, o, &x)) return false;
    o->op = o->op << 8 | (x < 0x100 ? x : 0xff);
  }
  o->at1 = (uint32_t)(p - base);
#define U32(out) if (!u32(&p, end, base, o, (out))) return false
#define BYTE(out)                                          \
  do {                                                     \
    if (p >= end) return bad(o, base, p, END_MSG);          \
    (out) = *p++;                                          \
  } while (0)
  switch (qw__imm_kind(o->op)) {
  case QW_IMM_NONE: break;
  case QW_IMM_BLOCK: {
    const uint8_t *at = p;
    if (p >= end) return bad(o, base, p, END_MSG);
    if (*p == 0x40) o->bt = -64, o->bt_form = 0, p++;
    else if ((*p & 0xc0) == 0x40) o->bt = (int64_t)*p++ - 256, o->bt_form = 1;
    else if (!qw__leb_s33(&p, end, &o->bt)) return bad(o, base, at, qw__leb_why(at, end, 33));
    else o->bt_form = 2;
    break;
  }
  case QW_IMM_LABEL: case QW_IMM_FUNC: case QW_IMM_LOCAL: case QW_IMM_GLOBAL:
  case QW_IMM_TABLE: case QW_IMM_DATA: case QW_IMM_ELEM:
    U32(&o->a);
    break;
  case QW_IMM_BR_TABLE: {
    const uint8_t *at = p;
    U32(&o->a);
    if (o->a > (size_t)(end - p)) return bad(o, base, at, END_MSG);
    o->tbl = p;
    for (n = 0; n <= o->a; n++) U32(&x);
    break;
  }
  case QW_IMM_CALL_INDIRECT: case QW_IMM_TABLEINIT: case QW_IMM_TABLECOPY:
    U32(&o->a);
    o->at2 = (uint32_t)(p - base);
    U32(&o->b);
    break;
  case QW_IMM_MEM:
    U32(&o->a);
    o->at2 = (uint32_t)(p - base);
    U32(&x);
    o->k = x;
    break;
  case QW_IMM_MEMIDX: BYTE(o->a); break;
  case QW_IMM_I32: {
    const uint8_t *at = p;
    if (!qw__leb_s32(&p, end, &v32)) return bad(o, base, at, qw__leb_why(at, end, 32));
    o->k = (uint64_t)(int64_t)v32;
    break;
  }
  case QW_IMM_I64: {
    const uint8_t *at = p;
    if (!qw__leb_s64(&p, end, &v64)) return bad(o, base, at, qw__leb_why(at, end, 64));
    o->k = (uint64_t)v64;
    break;
  }
  case QW_IMM_F32: {
    uint32_t b;
    if (end - p < 4) return bad(o, base, p, END_MSG);
    memcpy(&b, p, 4), p += 4;
    o->k = b;
    break;
  }
  case QW_IMM_F64:
    if (end - p < 8) return bad(o, base, p, END_MSG);
    memcpy(&o->k, p, 8), p += 8;
    break;
  case QW_IMM_SELECT_T:
    U32(&o->nsel);
    o->at2 = (uint32_t)(p - base);
    if ((uint64_t)(end - p) < o->nsel) return bad(o, base, p, END_MSG);
    o->tbl = p;
    p += o->nsel;
    break;
  case QW_IMM_REFTYPE: BYTE(o->a); break;
  case QW_IMM_MEMINIT:
    U32(&o->a);
    o->at2 = (uint32_t)(p - base);
    BYTE(o->b);
    break;
  case QW_IMM_MEMCOPY:
    BYTE(o->a);
    o->at2 = (uint32_t)(p - base);
    BYTE(o->b);
    break;
  default: return false; /* illegal opcode (SIMD included): WHY stays NULL */
  }
#undef U32
#undef BYTE
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
