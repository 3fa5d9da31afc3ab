/* validate.c: module validation (spec chapter 3) and the one walk over each function body
** (the algorithm of the spec's appendix A.3: an operand stack whose entries may be "unknown"
** in unreachable code, and a stack of control frames). The walk also reports the malformed
** encodings of instructions (illegal opcodes, bad immediates), which decode.c leaves to it.
** Constant expressions that decode.c could not recognise are walked the same way in constant
** mode. Speed: one pass, no allocation per instruction; the stacks live in a context reused
** across functions. Invariant after success: every index, type and immediate in every body is
** in range and well typed, so compile.c checks nothing again. */
#include "internal.h"
#include "wasm_backend.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNKNOWN 0 /* operand type in unreachable code: matches anything */

typedef struct ctrl {
  uint16_t opcode; /* 0x02 block, 0x03 loop, 0x04 if, 0x05 else, 0 function */
  bool unreachable;
  uint8_t inl;     /* the result type when RESULTS is NULL and NRESULTS is 1 */
  uint32_t height; /* operand stack height at entry (params popped) */
  const uint8_t *params, *results;
  uint32_t nparams, nresults;
} ctrl;

typedef struct vctx {
  const qw_module *m;
  qb_err *err;
  const uint8_t *p, *end; /* the code being walked */
  const uint8_t *op_at;   /* the current instruction */
  uint32_t op;            /* its opcode (0xfc00|n for prefixed ones) */
  const char *where;      /* "global section" ..., or NULL inside function FUNC */
  uint32_t func;          /* function index (in the function space) */
  bool constant;          /* constant expression mode */
  uint8_t *vals;          /* operand stack */
  uint32_t nvals, vcap;
  ctrl *ctrls;
  uint32_t nctrls, ccap;
  uint8_t *locals; /* params then declared locals of the current function */
  uint32_t nlocals, lcap;
  uint8_t *tmp; /* br_table: the label types popped */
  uint32_t tcap;
  uint32_t *tg; /* br_table: its targets, decoded by insn.c */
  uint32_t tgcap;
} vctx;

/* ---- signatures from opcodes.def --------------------------------------------------------------
 */

typedef struct sigdef {
  uint8_t np, nr;
  uint8_t p[3];
  uint8_t r;
} sigdef;

static const sigdef sigs[QW_SIG_COUNT] = {
    [QW_SIG_SPECIAL] = {0, 0, {0, 0, 0}, 0},
#define QW_SIG(id, np, p0, p1, p2, nr, r0) [QW_SIG_##id] = {np, nr, {p0, p1, p2}, r0},
#include "opcodes.def"
};

typedef struct opinfo {
  uint8_t imm, sig, align, legal;
} opinfo;

static opinfo ops1[256], opsfc[32];
static pthread_once_t ops_once = PTHREAD_ONCE_INIT;

static void init_ops(void) {
#define QW_OP(code, ident, name, imm, sig, align)                                                  \
  if ((code) < 0x100)                                                                              \
    ops1[(code)&0xff] = (opinfo){QW_IMM_##imm, QW_SIG_##sig, align, 1};                            \
  else                                                                                             \
    opsfc[(code)&0x1f] = (opinfo){QW_IMM_##imm, QW_SIG_##sig, align, 1};
#include "opcodes.def"
}

/* ---- errors --------------------------------------------------------------------------------- */

static const char *tname(uint8_t t) {
  return t == UNKNOWN ? "unknown" : qw_type_name((qw_type)t);
}

static const char *opname(vctx *v) {
  const char *n = qw__op_name(v->op);
  return n ? n : "?";
}

static qb_code verr(vctx *v, qb_code code, const uint8_t *at, const char *fmt, ...) QB_PRINTF(4, 5);
static qb_code verr(vctx *v, qb_code code, const uint8_t *at, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!at)
    at = v->op_at;
  if (v->where)
    return qb_fail(v->err, code, "%s: offset 0x%zx: %s", v->where, (size_t)(at - v->m->bytes), msg);
  return qb_fail(v->err, code, "code section: function %u at offset 0x%zx: %s", v->func,
                 (size_t)(at - v->m->bytes), msg);
}

#define TRY(x)                                                                                     \
  do {                                                                                             \
    qb_code rc_ = (x);                                                                             \
    if (rc_)                                                                                       \
      return rc_;                                                                                  \
  } while (0)

static qb_code nomem(vctx *v) {
  return qb_fail(v->err, QB_NOMEM, "validate: out of memory");
}

/* ---- immediates: decoded by insn.c (wasm_backend.h); checked here -------------------------- */

#define AT(off) (v->m->bytes + (off)) /* an offset of qw_insn as a position for verr */

static qb_code valtype_ok(vctx *v, uint8_t t, uint32_t at) {
  switch (t) {
  case QW_I32:
  case QW_I64:
  case QW_F32:
  case QW_F64:
  case QW_FUNCREF:
  case QW_EXTERNREF:
    return QB_OK;
  case QW_V128:
    return verr(v, QB_MALFORMED, AT(at), "v128 (SIMD) is not supported");
  }
  return verr(v, QB_MALFORMED, AT(at), "malformed value type 0x%02x", t);
}

static qb_code zero_ok(vctx *v, uint32_t byte, uint32_t at) {
  if (byte)
    return verr(v, QB_MALFORMED, AT(at), "zero byte expected in %s", opname(v));
  return QB_OK;
}

/* ---- the operand and control stacks ------------------------------------------------------------
 */

static QB_NOINLINE qb_code grow_vals(vctx *v) {
  uint32_t ncap = v->vcap ? v->vcap * 2 : 256;
  uint8_t *n = qb_realloc(v->vals, v->vcap, ncap);
  if (!n)
    return nomem(v);
  v->vals = n;
  v->vcap = ncap;
  return QB_OK;
}

static inline qb_code push(vctx *v, uint8_t t) {
  if (QB_UNLIKELY(v->nvals == v->vcap))
    TRY(grow_vals(v));
  v->vals[v->nvals++] = t;
  return QB_OK;
}

static qb_code mismatch(vctx *v, uint8_t want, uint8_t got, bool nothing) {
  if (nothing)
    return verr(v, QB_INVALID, NULL, "type mismatch in %s (expected %s, got nothing)", opname(v),
                tname(want));
  return verr(v, QB_INVALID, NULL, "type mismatch in %s (expected %s, got %s)", opname(v),
              tname(want), tname(got));
}

/* Pops one operand of any type into *OUT (UNKNOWN in unreachable code). */
static inline qb_code pop_any(vctx *v, uint8_t *out) {
  ctrl *c = &v->ctrls[v->nctrls - 1];
  *out = UNKNOWN;
  if (QB_UNLIKELY(v->nvals == c->height)) {
    if (c->unreachable) {
      *out = UNKNOWN;
      return QB_OK;
    }
    return verr(v, QB_INVALID, NULL, "type mismatch in %s (expected a value, got nothing)",
                opname(v));
  }
  *out = v->vals[--v->nvals];
  return QB_OK;
}

static inline qb_code pop(vctx *v, uint8_t want) {
  ctrl *c = &v->ctrls[v->nctrls - 1];
  uint8_t got;
  if (QB_UNLIKELY(v->nvals == c->height)) {
    if (c->unreachable)
      return QB_OK;
    return mismatch(v, want, 0, true);
  }
  got = v->vals[--v->nvals];
  if (QB_UNLIKELY(got != want && got != UNKNOWN && want != UNKNOWN))
    return mismatch(v, want, got, false);
  return QB_OK;
}

static qb_code pop_n(vctx *v, const uint8_t *types, uint32_t n) {
  while (n--)
    TRY(pop(v, types[n]));
  return QB_OK;
}

static qb_code push_n(vctx *v, const uint8_t *types, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; i++)
    TRY(push(v, types[i]));
  return QB_OK;
}

static qb_code push_ctrl(vctx *v, uint16_t opcode, const uint8_t *params, uint32_t np,
                         const uint8_t *results, uint32_t nr, uint8_t inl) {
  ctrl *c;
  if (v->nctrls == v->ccap) {
    uint32_t ncap = v->ccap ? v->ccap * 2 : 64;
    ctrl *n = qb_realloc(v->ctrls, (size_t)v->ccap * sizeof *n, (size_t)ncap * sizeof *n);
    if (!n)
      return nomem(v);
    v->ctrls = n;
    v->ccap = ncap;
  }
  c = &v->ctrls[v->nctrls++];
  c->opcode = opcode;
  c->unreachable = false;
  c->inl = inl;
  c->params = params;
  c->nparams = np;
  c->results = results; /* NULL with nr == 1: the type is INL (block type t) */
  c->nresults = nr;
  c->height = v->nvals;
  return push_n(v, params, np);
}

static inline const uint8_t *results(const ctrl *c) {
  return c->results ? c->results : &c->inl;
}

/* Pops the innermost frame after checking that exactly its results are on the stack. */
static qb_code pop_ctrl(vctx *v, ctrl *out) {
  ctrl *c = &v->ctrls[v->nctrls - 1];
  TRY(pop_n(v, results(c), c->nresults));
  if (v->nvals != c->height)
    return verr(v, QB_INVALID, NULL,
                "type mismatch in %s (%u values left on the stack, "
                "expected %u)",
                opname(v), v->nvals - c->height + c->nresults, c->nresults);
  *out = *c;
  v->nctrls--;
  return QB_OK;
}

static void set_unreachable(vctx *v) {
  ctrl *c = &v->ctrls[v->nctrls - 1];
  v->nvals = c->height;
  c->unreachable = true;
}

static inline void label_types(const ctrl *c, const uint8_t **types, uint32_t *n) {
  if (c->opcode == 0x03)
    *types = c->params, *n = c->nparams;
  else
    *types = results(c), *n = c->nresults;
}

static qb_code label(vctx *v, uint32_t depth, uint32_t at) {
  if (depth >= v->nctrls)
    return verr(v, QB_INVALID, AT(at), "unknown label %u in %s", depth, opname(v));
  return QB_OK;
}

/* ---- index checks ------------------------------------------------------------------------------
 */

static qb_code need_mem(vctx *v, uint32_t idx) {
  if (idx >= v->m->nmems)
    return verr(v, QB_INVALID, NULL, "unknown memory %u in %s", idx, opname(v));
  return QB_OK;
}

static qb_code table_ok(vctx *v, uint32_t idx, uint32_t at) {
  if (idx >= v->m->ntables)
    return verr(v, QB_INVALID, AT(at), "unknown table %u in %s", idx, opname(v));
  return QB_OK;
}

static qb_code func_ok(vctx *v, uint32_t idx, uint32_t at) {
  if (idx >= v->m->nfuncs)
    return verr(v, QB_INVALID, AT(at), "unknown function %u in %s", idx, opname(v));
  return QB_OK;
}

static qb_code global_ok(vctx *v, uint32_t idx, uint32_t at) {
  /* spec 2.0: a constant expression sees only imported globals */
  if (idx >= (v->constant ? v->m->nglobal_imports : v->m->nglobals))
    return verr(v, QB_INVALID, AT(at), "unknown global %u in %s", idx, opname(v));
  return QB_OK;
}

/* spec 5.5.16: memory.init and data.drop need the data count section. A module without data
** segments is let through to the "unknown data segment" rule instead: wabt (which converts the
** spec suite's text modules) omits the section when there is no data. */
static qb_code data_idx(vctx *v, const uint8_t *at, uint32_t idx) {
  if (!v->m->has_datacount && v->m->ndatas)
    return verr(v, QB_MALFORMED, at, "data count section required for %s", opname(v));
  if (idx >= (v->m->has_datacount ? v->m->datacount : 0))
    return verr(v, QB_INVALID, at, "unknown data segment %u in %s", idx, opname(v));
  return QB_OK;
}

static qb_code elem_ok(vctx *v, uint32_t idx, uint32_t at) {
  if (idx >= v->m->nelems)
    return verr(v, QB_INVALID, AT(at), "unknown elem segment %u in %s", idx, opname(v));
  return QB_OK;
}

static const qw__functype *functype(vctx *v, uint32_t func) {
  return &v->m->types[v->m->func_types[func]];
}

/* Block type (spec 5.4.1): 0x40, a value type, or a type index as s33 (decoded in IN). */
static qb_code blocktype(vctx *v, const qw_insn *in, const uint8_t **params, uint32_t *np,
                         const uint8_t **results, uint32_t *nr, uint8_t *inl) {
  *params = *results = NULL;
  *np = *nr = 0;
  *inl = 0;
  if (in->bt_form == 0)
    return QB_OK;
  if (in->bt_form == 1) {
    *inl = (uint8_t)(in->bt + 256);
    TRY(valtype_ok(v, *inl, in->at1));
    *nr = 1;
    return QB_OK;
  }
  if (in->bt < 0 || (uint64_t)in->bt >= v->m->ntypes)
    return verr(v, QB_INVALID, AT(in->at1), "unknown type %lld in %s", (long long)in->bt,
                opname(v));
  const qw__functype *t = &v->m->types[in->bt];
  *params = t->types;
  *np = t->nparams;
  *results = t->types + t->nparams;
  *nr = t->nresults;
  return QB_OK;
}

static qb_code memarg(vctx *v, const qw_insn *in, uint32_t natural) {
  if (in->a >= 32)
    return verr(v, QB_MALFORMED, AT(in->at1), "malformed memop flags in %s", opname(v));
  TRY(need_mem(v, 0));
  if (in->a > natural)
    return verr(v, QB_INVALID, AT(in->at1),
                "alignment must not be larger than natural in %s (2^%u > 2^%u)", opname(v), in->a,
                natural);
  return QB_OK;
}

static bool is_num(uint8_t t) {
  return t == UNKNOWN || t == QW_I32 || t == QW_I64 || t == QW_F32 || t == QW_F64;
}
static bool is_ref(uint8_t t) {
  return t == UNKNOWN || t == QW_FUNCREF || t == QW_EXTERNREF;
}

/* ---- the walk ----------------------------------------------------------------------------------
 */

/* The walk's jobs, one per family of instructions. Each checks the immediates insn.c decoded
** (indexes, zero bytes, types) and types the operands; *DONE: the outermost frame ended. */

/* Plain ops: a fixed stack signature from opcodes.def (numeric, memory, conversions, bulk). */
static qb_code plain(vctx *v, const qw_insn *in, opinfo oi) {
  const qw_module *m = v->m;
  const sigdef *s = &sigs[oi.sig];
  uint32_t x = in->a, y = in->b;
  switch (oi.imm) {
  case QW_IMM_NONE:
  case QW_IMM_I32:
  case QW_IMM_I64:
  case QW_IMM_F32:
  case QW_IMM_F64:
    break;
  case QW_IMM_MEM:
    TRY(memarg(v, in, oi.align));
    break;
  case QW_IMM_MEMIDX:
    TRY(zero_ok(v, in->a, in->at1));
    TRY(need_mem(v, 0));
    break;
  case QW_IMM_MEMINIT:
    TRY(zero_ok(v, in->b, in->at2));
    TRY(need_mem(v, 0));
    TRY(data_idx(v, AT(in->at1), x));
    break;
  case QW_IMM_DATA:
    TRY(data_idx(v, AT(in->at1), x));
    break;
  case QW_IMM_MEMCOPY:
    TRY(zero_ok(v, in->a, in->at1));
    TRY(zero_ok(v, in->b, in->at2));
    TRY(need_mem(v, 0));
    break;
  case QW_IMM_TABLEINIT:
    TRY(table_ok(v, y, in->at2));
    if (x >= m->nelems)
      return verr(v, QB_INVALID, AT(in->at1), "unknown elem segment %u in table.init", x);
    if (m->elems[x].type != m->tables[y].elem)
      return verr(v, QB_INVALID, NULL,
                  "type mismatch in table.init (elem segment %u is %s, "
                  "table %u is %s)",
                  x, tname(m->elems[x].type), y, tname(m->tables[y].elem));
    break;
  case QW_IMM_ELEM:
    TRY(elem_ok(v, x, in->at1));
    break;
  case QW_IMM_TABLECOPY:
    TRY(table_ok(v, x, in->at1));
    TRY(table_ok(v, y, in->at2));
    if (m->tables[x].elem != m->tables[y].elem)
      return verr(v, QB_INVALID, NULL,
                  "type mismatch in table.copy (table %u is %s, table %u "
                  "is %s)",
                  x, tname(m->tables[x].elem), y, tname(m->tables[y].elem));
    break;
  case QW_IMM_TABLE:
    TRY(table_ok(v, x, in->at1));
    break;
  default:
    return QB_NEVER(v->err);
  }
  /* pop p[np-1] .. p[0] */
  switch (s->np) {
  case 3:
    TRY(pop(v, s->p[2])); /* fall through */
  case 2:
    TRY(pop(v, s->p[1])); /* fall through */
  case 1:
    TRY(pop(v, s->p[0])); /* fall through */
  default:
    break;
  }
  if (s->nr)
    TRY(push(v, s->r));
  return QB_OK;
}

/* br_table (spec A.3): every target has the default's arity and accepts the operands. */
static qb_code br_table(vctx *v, const qw_insn *in) {
  const uint8_t *t, *dt;
  uint32_t n, dn, cnt = in->a, i, j;
  if (cnt + 1 > v->tgcap) {
    uint32_t *nt = qb_realloc(v->tg, (size_t)v->tgcap * sizeof *nt, ((size_t)cnt + 1) * sizeof *nt);
    if (!nt)
      return nomem(v);
    v->tg = nt;
    v->tgcap = cnt + 1;
  }
  qw_insn_br_targets(in, v->end, v->tg);
  for (i = 0; i <= cnt; i++) /* the last one is the default */
    TRY(label(v, v->tg[i], in->at1));
  label_types(&v->ctrls[v->nctrls - 1 - v->tg[cnt]], &dt, &dn);
  TRY(pop(v, QW_I32));
  if (dn > v->tcap) {
    uint8_t *nt = qb_realloc(v->tmp, v->tcap, dn);
    if (!nt)
      return nomem(v);
    v->tmp = nt;
    v->tcap = dn;
  }
  for (i = 0; i < cnt; i++) {
    uint32_t y = v->tg[i];
    label_types(&v->ctrls[v->nctrls - 1 - y], &t, &n);
    if (n != dn)
      return verr(v, QB_INVALID, NULL,
                  "type mismatch in br_table (label %u has %u "
                  "values, the default %u)",
                  y, n, dn);
    for (j = n; j-- > 0;)
      TRY(pop_any(v, &v->tmp[j]));
    for (j = 0; j < n; j++) {
      if (v->tmp[j] != t[j] && v->tmp[j] != UNKNOWN)
        return mismatch(v, t[j], v->tmp[j], false);
    }
    for (j = 0; j < n; j++)
      TRY(push(v, v->tmp[j]));
  }
  TRY(pop_n(v, dt, dn));
  set_unreachable(v);
  return QB_OK;
}

/* Control: blocks, branches, return, unreachable. *HANDLED: it was one of these. */
static qb_code control(vctx *v, const qw_insn *in, bool *handled, bool *done) {
  uint32_t x = in->a;
  *handled = true;
  switch (v->op) {
  case QW_OP_unreachable:
    set_unreachable(v);
    return QB_OK;
  case QW_OP_nop:
    return QB_OK;
  case QW_OP_block:
  case QW_OP_loop:
  case QW_OP_if: {
    const uint8_t *pt, *rt;
    uint32_t np, nr;
    uint8_t inl;
    TRY(blocktype(v, in, &pt, &np, &rt, &nr, &inl));
    if (v->op == QW_OP_if)
      TRY(pop(v, QW_I32));
    TRY(pop_n(v, pt, np));
    return push_ctrl(v, (uint16_t)v->op, pt, np, rt, nr, inl);
  }
  case QW_OP_else: {
    ctrl c;
    if (v->ctrls[v->nctrls - 1].opcode != QW_OP_if)
      return verr(v, QB_MALFORMED, NULL, "else without if");
    TRY(pop_ctrl(v, &c));
    return push_ctrl(v, QW_OP_else, c.params, c.nparams, c.results, c.nresults, c.inl);
  }
  case QW_OP_end: {
    ctrl c;
    TRY(pop_ctrl(v, &c));
    /* an if without else must map its params to its results unchanged */
    if (c.opcode == QW_OP_if &&
        (c.nparams != c.nresults || (c.nparams && memcmp(c.params, results(&c), c.nparams))))
      return verr(v, QB_INVALID, NULL,
                  "type mismatch in if without else (params and results "
                  "differ)");
    if (v->nctrls == 0) {
      *done = true; /* the caller checks what follows */
      return QB_OK;
    }
    return push_n(v, results(&c), c.nresults);
  }
  case QW_OP_br: {
    const uint8_t *t;
    uint32_t n;
    TRY(label(v, x, in->at1));
    label_types(&v->ctrls[v->nctrls - 1 - x], &t, &n);
    TRY(pop_n(v, t, n));
    set_unreachable(v);
    return QB_OK;
  }
  case QW_OP_br_if: {
    const uint8_t *t;
    uint32_t n;
    TRY(label(v, x, in->at1));
    TRY(pop(v, QW_I32));
    label_types(&v->ctrls[v->nctrls - 1 - x], &t, &n);
    TRY(pop_n(v, t, n));
    return push_n(v, t, n);
  }
  case QW_OP_br_table:
    return br_table(v, in);
  case QW_OP_return: {
    const ctrl *f = &v->ctrls[0];
    TRY(pop_n(v, results(f), f->nresults));
    set_unreachable(v);
    return QB_OK;
  }
  }
  *handled = false;
  return QB_OK;
}

/* Calls. */
static qb_code calls(vctx *v, const qw_insn *in, bool *handled) {
  const qw_module *m = v->m;
  const qw__functype *ft;
  uint32_t x = in->a, y = in->b;
  *handled = true;
  switch (v->op) {
  case QW_OP_call:
    TRY(func_ok(v, x, in->at1));
    ft = functype(v, x);
    TRY(pop_n(v, ft->types, ft->nparams));
    return push_n(v, ft->types + ft->nparams, ft->nresults);
  case QW_OP_call_indirect:
    TRY(table_ok(v, y, in->at2));
    if (x >= m->ntypes)
      return verr(v, QB_INVALID, AT(in->at1), "unknown type %u in call_indirect", x);
    if (m->tables[y].elem != QW_FUNCREF)
      return verr(v, QB_INVALID, NULL, "type mismatch in call_indirect (table %u is not funcref)",
                  y);
    ft = &m->types[x];
    TRY(pop(v, QW_I32));
    TRY(pop_n(v, ft->types, ft->nparams));
    return push_n(v, ft->types + ft->nparams, ft->nresults);
  }
  *handled = false;
  return QB_OK;
}

/* Operands and variables: drop, select, locals, globals, tables, references. */
static qb_code variables(vctx *v, const qw_insn *in) {
  const qw_module *m = v->m;
  uint32_t x = in->a;
  switch (v->op) {
  case QW_OP_drop: {
    uint8_t t;
    return pop_any(v, &t);
  }
  case QW_OP_select: {
    uint8_t t1, t2;
    TRY(pop(v, QW_I32));
    TRY(pop_any(v, &t1));
    TRY(pop_any(v, &t2));
    if (!is_num(t1) || !is_num(t2))
      return verr(v, QB_INVALID, NULL,
                  "type mismatch in select (operands must be numeric "
                  "without a type annotation, got %s and %s)",
                  tname(t2), tname(t1));
    if (t1 != t2 && t1 != UNKNOWN && t2 != UNKNOWN)
      return mismatch(v, t2, t1, false);
    return push(v, t1 == UNKNOWN ? t2 : t1);
  }
  case QW_OP_select_t: {
    uint8_t t;
    if (in->nsel != 1)
      return verr(v, QB_INVALID, AT(in->at1), "invalid result arity in select (%u types)",
                  in->nsel);
    t = in->tbl[0];
    TRY(valtype_ok(v, t, in->at2));
    TRY(pop(v, QW_I32));
    TRY(pop(v, t));
    TRY(pop(v, t));
    return push(v, t);
  }
  case QW_OP_local_get:
  case QW_OP_local_set:
  case QW_OP_local_tee: {
    uint8_t t;
    if (x >= v->nlocals)
      return verr(v, QB_INVALID, AT(in->at1), "unknown local %u in %s", x, opname(v));
    t = v->locals[x];
    if (v->op == QW_OP_local_get)
      return push(v, t);
    TRY(pop(v, t));
    if (v->op == QW_OP_local_tee)
      TRY(push(v, t));
    return QB_OK;
  }
  case QW_OP_global_get:
    TRY(global_ok(v, x, in->at1));
    if (v->constant && m->global_types[x].mut)
      return verr(v, QB_INVALID, NULL, "constant expression required (global %u is mutable)", x);
    return push(v, m->global_types[x].type);
  case QW_OP_global_set:
    TRY(global_ok(v, x, in->at1));
    if (!m->global_types[x].mut)
      return verr(v, QB_INVALID, NULL, "global is immutable (global.set %u)", x);
    return pop(v, m->global_types[x].type);
  case QW_OP_table_get:
    TRY(table_ok(v, x, in->at1));
    TRY(pop(v, QW_I32));
    return push(v, m->tables[x].elem);
  case QW_OP_table_set:
    TRY(table_ok(v, x, in->at1));
    TRY(pop(v, m->tables[x].elem));
    return pop(v, QW_I32);
  case QW_OP_table_grow:
    TRY(table_ok(v, x, in->at1));
    TRY(pop(v, QW_I32));
    TRY(pop(v, m->tables[x].elem));
    return push(v, QW_I32);
  case QW_OP_table_fill:
    TRY(table_ok(v, x, in->at1));
    TRY(pop(v, QW_I32));
    TRY(pop(v, m->tables[x].elem));
    return pop(v, QW_I32);
  case QW_OP_ref_null:
    if (x != QW_FUNCREF && x != QW_EXTERNREF)
      return verr(v, QB_MALFORMED, AT(in->at1), "malformed reference type 0x%02x", x);
    return push(v, (uint8_t)x);
  case QW_OP_ref_is_null: {
    uint8_t t;
    TRY(pop_any(v, &t));
    if (!is_ref(t))
      return verr(v, QB_INVALID, NULL,
                  "type mismatch in ref.is_null (expected a reference, "
                  "got %s)",
                  tname(t));
    return push(v, QW_I32);
  }
  case QW_OP_ref_func:
    TRY(func_ok(v, x, in->at1));
    /* spec C.refs: only functions named outside function bodies; constant expressions
    ** themselves are such places */
    if (!v->constant && !m->declared_refs[x])
      return verr(v, QB_INVALID, NULL, "undeclared function reference %u in ref.func", x);
    return push(v, QW_FUNCREF);
  }
  return QB_NEVER(v->err);
}

/* Walks instructions from v->p until the outermost frame (already pushed) ends: decodes each
** with insn.c (the one decoder), checks constant-expression mode, hands it to its family. */
static qb_code walk(vctx *v) {
  for (;;) {
    qw_insn in;
    opinfo oi;
    bool handled, done = false;
    v->op_at = v->p;
    if (QB_UNLIKELY(v->p >= v->end)) {
      if (v->where)
        return verr(v, QB_MALFORMED, v->p, "unexpected end");
      return verr(v, QB_MALFORMED, v->p,
                  "unexpected end of section or function "
                  "(END opcode expected)");
    }
    if (!qw_insn_next(&v->p, v->end, v->m->bytes, &in)) {
      if (in.why)
        return verr(v, QB_MALFORMED, AT(in.why_at), "%s", in.why);
      if (in.op >> 8 == 0xfc)
        return verr(v, QB_MALFORMED, v->op_at, "illegal opcode 0xfc %u", in.a);
      return verr(v, QB_MALFORMED, v->op_at, "illegal opcode 0x%02x", in.op >> 8 ? in.op >> 8 : in.op);
    }
    v->op = in.op;
    oi = in.op >> 8 ? opsfc[in.op & 0x1f] : ops1[in.op];
    if (v->constant) {
      switch (v->op) {
      case QW_OP_i32_const:
      case QW_OP_i64_const:
      case QW_OP_f32_const:
      case QW_OP_f64_const:
      case QW_OP_ref_null:
      case QW_OP_ref_func:
      case QW_OP_global_get:
      case QW_OP_end:
        break;
      default:
        return verr(v, QB_INVALID, NULL, "constant expression required (%s is not constant)",
                    opname(v));
      }
    }
    if (oi.sig != QW_SIG_SPECIAL) {
      TRY(plain(v, &in, oi));
      continue;
    }
    TRY(control(v, &in, &handled, &done));
    if (done)
      return QB_OK;
    if (handled)
      continue;
    TRY(calls(v, &in, &handled));
    if (!handled)
      TRY(variables(v, &in));
  }
}

/* ---- module-level checks -----------------------------------------------------------------------
 */

/* A constant expression of type WANT (spec 3.3.10), starting at C->offset. */
static qb_code cexpr(vctx *v, const qw__cexpr *c, uint8_t want) {
  const qw_module *m = v->m;
  const uint8_t *at = m->bytes + c->offset;
  uint8_t got = 0;
  v->op_at = at;
  switch (c->op) {
  case QW_C_I32:
    got = QW_I32;
    break;
  case QW_C_I64:
    got = QW_I64;
    break;
  case QW_C_F32:
    got = QW_F32;
    break;
  case QW_C_F64:
    got = QW_F64;
    break;
  case QW_C_REF_NULL:
    got = (uint8_t)c->idx;
    break;
  case QW_C_REF_FUNC:
    if (c->idx >= m->nfuncs)
      return verr(v, QB_INVALID, at, "unknown function %u in ref.func", c->idx);
    got = QW_FUNCREF;
    break;
  case QW_C_GLOBAL_GET:
    if (c->idx >= m->nglobal_imports)
      return verr(v, QB_INVALID, at, "unknown global %u in global.get", c->idx);
    if (m->global_types[c->idx].mut)
      return verr(v, QB_INVALID, at, "constant expression required (global %u is mutable)", c->idx);
    got = m->global_types[c->idx].type;
    break;
  default: { /* walk it to say what is wrong */
    qb_code rc;
    v->p = at;
    v->end = m->bytes + m->len;
    v->constant = true;
    v->nvals = 0;
    v->nctrls = 0;
    v->nlocals = 0;
    if ((rc = push_ctrl(v, 0, NULL, 0, NULL, 1, want)))
      return rc;
    rc = walk(v);
    v->constant = false;
    if (rc)
      return rc;
    return verr(v, QB_INTERNAL, at, "constant expression not decoded");
  }
  }
  if (got != want)
    return verr(v, QB_INVALID, at, "type mismatch in constant expression (expected %s, got %s)",
                tname(want), tname(got));
  return QB_OK;
}

static qb_code check_limits(vctx *v, const qw__limits *l, bool memory, const char *what,
                            uint32_t i) {
  if (memory && (l->min > QW_MAX_PAGES || (l->has_max && l->max > QW_MAX_PAGES)))
    return verr(v, QB_INVALID, v->m->bytes, "%s %u: memory size must be at most 65536 pages (4GiB)",
                what, i);
  if (l->has_max && l->min > l->max)
    return verr(v, QB_INVALID, v->m->bytes, "%s %u: size minimum must not be greater than maximum",
                what, i);
  return QB_OK;
}

static qb_code check_func(vctx *v, uint32_t defined) {
  const qw_module *m = v->m;
  const qw__func_decl *f = &m->funcs[defined];
  const qw__functype *t = &m->types[f->type_idx];
  uint32_t n = t->nparams + f->nlocals;
  qb_code rc;
  v->where = NULL;
  v->func = m->nfunc_imports + defined;
  v->constant = false;
  if (n > v->lcap) {
    uint8_t *nl = qb_realloc(v->locals, v->lcap, n);
    if (!nl)
      return nomem(v);
    v->locals = nl;
    v->lcap = n;
  }
  if (t->nparams)
    memcpy(v->locals, t->types, t->nparams);
  if (f->nlocals)
    memcpy(v->locals + t->nparams, f->local_types, f->nlocals);
  v->nlocals = n;
  v->p = f->body;
  v->end = f->body_end;
  v->op_at = v->p;
  v->op = QW_OP_end;
  v->nvals = 0;
  v->nctrls = 0;
  TRY(push_ctrl(v, 0, NULL, 0, t->types + t->nparams, t->nresults, 0));
  if ((rc = walk(v)))
    return rc;
  if (v->p != v->end)
    return verr(v, QB_MALFORMED, v->p, "section size mismatch (bytes after the function's end)");
  return QB_OK;
}

/* spec 3.4.10: export names are unique. A hash set of indices, one allocation. */
static qb_code export_names(vctx *v) {
  const qw_module *m = v->m;
  uint32_t n = 16, i, *set;
  qb_code rc = QB_OK;
  while (n < m->nexports * 2u)
    n *= 2;
  if (!(set = qb_calloc(n, sizeof *set)))
    return nomem(v);
  for (i = 0; i < m->nexports && !rc; i++) {
    const char *s = m->exports[i].name;
    uint32_t len = m->exports[i].name_len, h = 2166136261u, j, k;
    for (k = 0; k < len; k++)
      h = (h ^ (uint8_t)s[k]) * 16777619u;
    for (j = h & (n - 1); set[j]; j = (j + 1) & (n - 1))
      if (m->exports[set[j] - 1].name_len == len && !memcmp(m->exports[set[j] - 1].name, s, len)) {
        rc = verr(v, QB_INVALID, m->bytes, "duplicate export name \"%s\"", s);
        break;
      }
    if (!rc)
      set[j] = i + 1;
  }
  qb_free(set, (size_t)n * sizeof *set);
  return rc;
}

static qb_code check_module(vctx *v) {
  const qw_module *m = v->m;
  uint32_t i, j;
  const uint8_t *at0 = m->bytes;

  v->where = "import section";
  for (i = 0; i < m->nimports; i++) {
    const qw__import *im = &m->imports[i];
    if (im->kind == QW_KFUNC && im->type_idx >= m->ntypes)
      return verr(v, QB_INVALID, at0, "import %u: unknown type %u", i, im->type_idx);
    if (im->kind == QW_KTABLE)
      TRY(check_limits(v, &im->table.lim, false, "import", i));
    if (im->kind == QW_KMEMORY)
      TRY(check_limits(v, &im->mem, true, "import", i));
  }
  v->where = "function section";
  for (i = 0; i < m->ndefined; i++)
    if (m->funcs[i].type_idx >= m->ntypes)
      return verr(v, QB_INVALID, at0, "function %u: unknown type %u", m->nfunc_imports + i,
                  m->funcs[i].type_idx);
  v->where = "table section";
  for (i = m->ntable_imports; i < m->ntables; i++)
    TRY(check_limits(v, &m->tables[i].lim, false, "table", i));
  v->where = "memory section";
  if (m->nmems > 1)
    return verr(v, QB_INVALID, at0, "multiple memories (%u)", m->nmems);
  for (i = m->nmem_imports; i < m->nmems; i++)
    TRY(check_limits(v, &m->mems[i], true, "memory", i));
  v->where = "global section";
  for (i = 0; i < m->nglobals - m->nglobal_imports; i++)
    TRY(cexpr(v, &m->globals[i].init, m->globals[i].type.type));
  v->where = "export section";
  for (i = 0; i < m->nexports; i++) {
    const qw__export *x = &m->exports[i];
    static const char *const kinds[] = {"function", "table", "memory", "global"};
    uint32_t lim = x->kind == QW_KFUNC     ? m->nfuncs
                   : x->kind == QW_KTABLE  ? m->ntables
                   : x->kind == QW_KMEMORY ? m->nmems
                                           : m->nglobals;
    if (x->index >= lim)
      return verr(v, QB_INVALID, at0, "export \"%s\": unknown %s %u", x->name, kinds[x->kind],
                  x->index);
  }
  if (m->nexports > 1)
    TRY(export_names(v));
  v->where = "start section";
  if (m->start >= 0) {
    const qw__functype *t;
    if ((uint64_t)m->start >= m->nfuncs)
      return verr(v, QB_INVALID, at0, "unknown function %lld as start function",
                  (long long)m->start);
    t = functype(v, (uint32_t)m->start);
    if (t->nparams || t->nresults)
      return verr(v, QB_INVALID, at0, "start function %lld must take and return nothing",
                  (long long)m->start);
  }
  v->where = "element section";
  for (i = 0; i < m->nelems; i++) {
    const qw__elem *s = &m->elems[i];
    if (s->mode == QW_SEG_ACTIVE) {
      if (s->table >= m->ntables)
        return verr(v, QB_INVALID, m->bytes + s->offset.offset, "elem segment %u: unknown table %u",
                    i, s->table);
      TRY(cexpr(v, &s->offset, QW_I32));
      if (m->tables[s->table].elem != s->type)
        return verr(v, QB_INVALID, m->bytes + s->offset.offset,
                    "type mismatch: elem segment %u "
                    "is %s, table %u is %s",
                    i, tname(s->type), s->table, tname(m->tables[s->table].elem));
    }
    for (j = 0; j < s->count; j++)
      TRY(cexpr(v, &s->items[j], s->type));
  }
  v->where = "data section";
  for (i = 0; i < m->ndatas; i++) {
    const qw__data *d = &m->datas[i];
    if (d->mode != QW_SEG_ACTIVE)
      continue;
    if (d->mem >= m->nmems)
      return verr(v, QB_INVALID, m->bytes + d->offset.offset, "data segment %u: unknown memory %u",
                  i, d->mem);
    TRY(cexpr(v, &d->offset, QW_I32));
  }
  for (i = 0; i < m->ndefined; i++)
    TRY(check_func(v, i));
  return QB_OK;
}

qb_code qw__validate(qw_module *m, qb_err *err) {
  vctx v;
  qb_code rc;
  if (m->validated)
    return QB_OK;
  pthread_once(&ops_once, init_ops);
  memset(&v, 0, sizeof v);
  v.m = m;
  v.err = err;
  rc = check_module(&v);
  qb_free(v.vals, v.vcap);
  qb_free(v.ctrls, (size_t)v.ccap * sizeof *v.ctrls);
  qb_free(v.locals, v.lcap);
  qb_free(v.tmp, v.tcap);
  qb_free(v.tg, (size_t)v.tgcap * sizeof *v.tg);
  if (rc == QB_OK)
    m->validated = true;
  return rc;
}
