/* exec.c: the executor. A qu_plan is compiled once (qu_exec_new) into one op per param that
** says where its slot value comes from; qu_exec_run reads the version's current entry once
** (tier.c) and runs the whole block on it: the interpreter fills a preallocated slot array per
** document and calls qw_func_call_raw (no allocation, lookup or lock per call), or calls the
** batch export once per block with the columns copied into the guest; native code gets the
** block's argument columns in one call (or one call per document); a block being verified runs
** on both and compares. Invariant: the instance an exec holds has never trapped; any failure
** of a block discards it (qu__inst_checkin with discard), so the next block starts on a fresh
** one. */
#include "udf.h"

#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef enum opk {
  OP_CONST,      /* slots[s] = bits */
  OP_SCORE_F64,  /* the block's _score, converted to the param type */
  OP_SCORE_F32,
  OP_SCORE_I32,
  OP_SCORE_I64,
  OP_COL_F64,    /* F64 column -> f64 param (missing: bits) */
  OP_COL_F32,    /* F64 column -> f32 param */
  OP_COL_I64,    /* I64 column -> i64 param */
  OP_COL_I32,    /* I64 column -> i32 param (wraps, as i32.wrap_i64) */
  OP_STR_CONST,  /* slots[s], slots[s+1] = guest ptr, len (placed per block) */
  OP_STR_COL     /* guest ptr/len per document from the block's staging arrays */
} opk;

typedef struct op {
  uint8_t kind;
  uint8_t type;     /* qu_type of the param */
  uint32_t slot;    /* first wasm param slot */
  uint32_t col;     /* column index (OP_COL_*, OP_STR_COL) */
  uint32_t sidx;    /* OP_STR_*: index into the string staging arrays */
  uint64_t bits;    /* OP_CONST: the value; OP_COL_*: the missing value */
  qu_str str;       /* OP_STR_CONST: the bytes; OP_STR_COL: the missing bytes */
  uint32_t gptr;    /* OP_STR_CONST: guest address for this block */
} op;

struct qu_exec {
  qu_udf *u;
  const qu_plan *plan;
  qu__inst *inst;         /* checked out at the first run; NULL after a failure */
  uint32_t nops;
  op *ops;
  uint32_t nslots;        /* max(wasm params, results, 3 for the batch call) */
  uint64_t *slots;
  uint32_t nstr;          /* string params */
  uint32_t *gptr, *glen;  /* [nstr * QU_BLOCK_MAX] guest ptr/len of each doc's string */
  qb_buf strout;          /* string results of the last run */
  size_t *stroff;         /* [QU_BLOCK_MAX] offsets into strout, SIZE_MAX = null */
  size_t *strlen_;        /* [QU_BLOCK_MAX] their lengths */
  uint32_t nrun;          /* blocks run, for timing samples */
  int alloc_failed;       /* the last guest_alloc got 0 from qd_alloc */
  int discard;            /* the block succeeded but the instance must not be reused */
  uint32_t nargs;         /* wasm params of the export (m->nslots) */
  uint64_t *acols;        /* native: [nargs * QU_BLOCK_MAX] argument columns, at first use */
  const uint64_t **argv;  /* native: nargs column pointers (into acols or the block's own) */
  int consts_filled;      /* native: OP_CONST columns of acols hold their value already */
  int filled;             /* qu_exec_set_filled: missing values are in the columns already */
  uint64_t *res, *res2;   /* native, verify: [QU_BLOCK_MAX] raw result slots */
};

static uint64_t f64_bits(double d) {
  uint64_t b;
  memcpy(&b, &d, 8);
  return b;
}
static uint64_t f32_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}
static double bits_f64(uint64_t b) {
  double d;
  memcpy(&d, &b, 8);
  return d;
}
static float bits_f32(uint64_t b) {
  uint32_t w = (uint32_t)b;
  float f;
  memcpy(&f, &w, 4);
  return f;
}

/* double -> i64 saturating, NaN -> 0 (as i64.trunc_sat_f64_s): a C cast would be undefined. */
static int64_t sat_i64(double d) {
  if (!(d == d)) return 0;
  if (d >= 9223372036854775807.0) return INT64_MAX;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)d;
}
static int32_t sat_i32(double d) {
  if (!(d == d)) return 0;
  if (d >= 2147483647.0) return INT32_MAX;
  if (d <= -2147483648.0) return INT32_MIN;
  return (int32_t)d;
}

/* A numeric value of TYPE as a slot (i32 zero-extended, floats as bits). */
static uint64_t slot_of(qu_type t, int64_t i, double f) {
  switch (t) {
  case QU_I32: return (uint32_t)(int32_t)i;
  case QU_I64: return (uint64_t)i;
  case QU_F32: return f32_bits((float)f);
  default: return f64_bits(f);
  }
}

qb_code qu_exec_new(qu_udf *u, const qu_plan *plan, qu_exec **out, qb_err *err) {
  const qu_manifest *m = u->m;
  qu_exec *x;
  *out = NULL;
  if (plan->m->nparams != m->nparams || strcmp(plan->m->name, m->name) ||
      strcmp(plan->m->export_name, m->export_name))
    return qb_fail(err, QB_INVAL, "udf %s: the plan was made for another manifest", u->label);
  for (uint32_t i = 0; i < m->nparams; i++)
    if (plan->m->params[i].type != m->params[i].type)
      return qb_fail(err, QB_INVAL, "udf %s: the plan was made for another manifest",
                     u->label);
  if (!(x = qb_calloc(1, sizeof *x))) goto nomem;
  x->u = u;
  x->plan = plan;
  x->nops = m->nparams;
  x->nslots = m->nslots > 3 ? m->nslots : 3;
  x->nargs = m->nslots;
  qb_buf_init(&x->strout);
  if ((x->nops && !(x->ops = qb_calloc(x->nops, sizeof *x->ops))) ||
      !(x->slots = qb_calloc(x->nslots, sizeof *x->slots)))
    goto nomem_x;
  uint32_t slot = 0;
  for (uint32_t i = 0; i < m->nparams; i++) {
    const qu__bound *b = &plan->params[i];
    op *o = &x->ops[i];
    qu_type t = m->params[i].type;
    o->type = (uint8_t)t;
    o->slot = slot;
    slot += t == QU_STRING ? 2 : 1;
    if (t == QU_STRING) {
      o->sidx = x->nstr++;
      if (b->src == QU__COL) {
        const qu_colspec *c = &plan->cols[b->col];
        o->kind = OP_STR_COL;
        o->col = b->col;
        if (c->has_missing) o->str = c->missing_str;
      } else {
        /* _score for a string param: the plan only allows literals and fields */
        o->kind = OP_STR_CONST;
        o->str = b->s;
      }
      continue;
    }
    switch (b->src) {
    case QU__CONST:
      o->kind = OP_CONST;
      o->bits = slot_of(t, b->i, b->f);
      break;
    case QU__SCORE:
      o->kind = t == QU_F64 ? OP_SCORE_F64 : t == QU_F32 ? OP_SCORE_F32
                : t == QU_I32 ? OP_SCORE_I32 : OP_SCORE_I64;
      break;
    case QU__COL: {
      const qu_colspec *c = &plan->cols[b->col];
      o->col = b->col;
      o->kind = t == QU_F64 ? OP_COL_F64 : t == QU_F32 ? OP_COL_F32
                : t == QU_I32 ? OP_COL_I32 : OP_COL_I64;
      o->bits = c->has_missing ? slot_of(t, c->missing_i64, c->missing_f64) : 0;
      break;
    }
    }
  }
  /* slot layout: the params fill slots 0..nslots-1 in order (a string takes two), and the
  ** slot array also holds the results and the batch call's three arguments */
  QB_ASSERT(slot == m->nslots);
  QB_ASSERT(x->nslots >= slot && x->nslots >= 3);
  if (x->nstr && (!(x->gptr = qb_calloc((size_t)x->nstr * QU_BLOCK_MAX, sizeof(uint32_t))) ||
                  !(x->glen = qb_calloc((size_t)x->nstr * QU_BLOCK_MAX, sizeof(uint32_t)))))
    goto nomem_x;
  if (m->returns == QU_STRING && (!(x->stroff = qb_calloc(QU_BLOCK_MAX, sizeof(size_t))) ||
                                  !(x->strlen_ = qb_calloc(QU_BLOCK_MAX, sizeof(size_t)))))
    goto nomem_x;
  x->u = qu_udf_retain(u);
  *out = x;
  return QB_OK;
nomem_x:
  x->u = NULL;
  qu_exec_free(x);
nomem:
  return qb_fail(err, QB_NOMEM, "udf %s: out of memory", u->label);
}

void qu_exec_set_filled(qu_exec *x, int on) { x->filled = on != 0; }

void qu_exec_free(qu_exec *x) {
  if (!x) return;
  if (x->u) {
    qu__inst_checkin(x->u, x->inst, 0);
    qu_udf_release(x->u);
  }
  qb_free(x->ops, x->nops * sizeof *x->ops);
  qb_free(x->slots, x->nslots * sizeof *x->slots);
  qb_free(x->gptr, (size_t)x->nstr * QU_BLOCK_MAX * sizeof(uint32_t));
  qb_free(x->glen, (size_t)x->nstr * QU_BLOCK_MAX * sizeof(uint32_t));
  qb_free(x->stroff, x->stroff ? QU_BLOCK_MAX * sizeof(size_t) : 0);
  qb_free(x->strlen_, x->strlen_ ? QU_BLOCK_MAX * sizeof(size_t) : 0);
  if (x->res) {
    qb_free(x->acols, (size_t)x->nargs * QU_BLOCK_MAX * sizeof *x->acols);
    qb_free(x->argv, (x->nargs ? x->nargs : 1) * sizeof *x->argv);
    qb_free(x->res, 2 * QU_BLOCK_MAX * sizeof *x->res);
  }
  qb_buf_fini(&x->strout);
  qb_free(x, sizeof *x);
}

/* ---- failures -------------------------------------------------------------------------------- */

static qb_code trap_fail(qu_exec *x, const qw_trap *t, qb_err *err) {
  const char *msg = qw_trap_message(t);
  qb_code code = qw_trap_code(t);
  if (t == QW_TRAP_EXIT)
    return qb_fail(err, QB_TRAP, "UDF %s trapped: proc_exit(%d)", x->u->label,
                   qw_instance_exit_code(x->inst->wi));
  if (code == QB_LIMIT) {
    if (strstr(msg, "fuel")) return qb_fail(err, QB_LIMIT, "UDF %s exceeded its fuel budget",
                                            x->u->label);
    if (strstr(msg, "interrupt"))
      return qb_fail(err, QB_LIMIT, "UDF %s exceeded its time budget", x->u->label);
    return qb_fail(err, QB_LIMIT, "UDF %s exceeded a limit: %s", x->u->label, msg);
  }
  if (code == QB_NOMEM) return qb_fail(err, QB_NOMEM, "UDF %s: out of memory", x->u->label);
  return qb_fail(err, code == QB_OK ? QB_TRAP : code, "UDF %s trapped: %s", x->u->label, msg);
}

/* ---- guest memory ---------------------------------------------------------------------------- */

/* qd_reset(), then qd_alloc(TOTAL) -> *BASE, checked against the memory's size. */
static qb_code guest_alloc(qu_exec *x, size_t total, uint32_t *base, qb_err *err) {
  qu__inst *in = x->inst;
  const qw_trap *t;
  size_t msize;
  *base = 0;
  if (in->reset && (t = qw_func_call_raw(in->reset, x->slots))) return trap_fail(x, t, err);
  if (!total) return QB_OK;
  if (total > INT32_MAX)
    return qb_fail(err, QB_LIMIT, "UDF %s: a block's arguments need %zu bytes (at most 2 GiB)",
                   x->u->label, total);
  x->slots[0] = (uint32_t)total;
  if ((t = qw_func_call_raw(in->alloc, x->slots))) return trap_fail(x, t, err);
  uint32_t p = (uint32_t)x->slots[0];
  qw_instance_memory(in->wi, &msize);
  if (!p) x->alloc_failed = 1;
  if (!p || (uint64_t)p + total > msize)
    return qb_fail(err, QB_LIMIT,
                   "UDF %s could not allocate %zu bytes for its arguments (qd_alloc returned %u)",
                   x->u->label, total, p);
  *base = p;
  return QB_OK;
}

/* The string of op O for document I (missing docs take the op's missing bytes). */
static qu_str doc_str(const op *o, const qu_block *in, size_t i) {
  const qu_col *c = &in->cols[o->col];
  if ((c->present && !c->present[i]) || !c->str[i].ptr) return o->str;
  return c->str[i];
}

/* Copy the block's string arguments into the guest and fill gptr/glen (per-doc mode). */
static qb_code stage_strings(qu_exec *x, const qu_block *in, qb_err *err) {
  size_t total = 0;
  uint32_t base;
  qb_code rc;
  for (uint32_t k = 0; k < x->nops; k++) {
    const op *o = &x->ops[k];
    if (o->kind == OP_STR_CONST) total += o->str.len;
    else if (o->kind == OP_STR_COL)
      for (size_t i = 0; i < in->n; i++) total += doc_str(o, in, i).len;
  }
  if ((rc = guest_alloc(x, total, &base, err))) return rc;
  uint8_t *mem = qw_instance_memory(x->inst->wi, NULL);
  uint32_t at = base;
  QB_ASSERT(total == 0 || mem);
  for (uint32_t k = 0; k < x->nops; k++) {
    op *o = &x->ops[k];
    if (o->kind == OP_STR_CONST) {
      if (o->str.len) memcpy(mem + at, o->str.ptr, o->str.len);
      o->gptr = at;
      at += (uint32_t)o->str.len;
    } else if (o->kind == OP_STR_COL) {
      uint32_t *gp = x->gptr + (size_t)o->sidx * QU_BLOCK_MAX;
      uint32_t *gl = x->glen + (size_t)o->sidx * QU_BLOCK_MAX;
      for (size_t i = 0; i < in->n; i++) {
        qu_str s = doc_str(o, in, i);
        if (s.len) memcpy(mem + at, s.ptr, s.len);
        gp[i] = at;
        gl[i] = (uint32_t)s.len;
        at += (uint32_t)s.len;
      }
    }
  }
  QB_ASSERT(at == base + total); /* staged exactly what was counted */
  return QB_OK;
}

/* The slot value of numeric op O for document I. */
QB_INLINE uint64_t op_value(const op *o, const qu_block *in, size_t i) {
  const qu_col *c;
  switch (o->kind) {
  case OP_SCORE_F64: return f64_bits(in->score[i]);
  case OP_SCORE_F32: return f32_bits((float)in->score[i]);
  case OP_SCORE_I32: return (uint32_t)sat_i32(in->score[i]);
  case OP_SCORE_I64: return (uint64_t)sat_i64(in->score[i]);
  case OP_COL_F64:
    c = &in->cols[o->col];
    return (c->present && !c->present[i]) ? o->bits : f64_bits(c->f64[i]);
  case OP_COL_F32:
    c = &in->cols[o->col];
    return (c->present && !c->present[i]) ? o->bits : f32_bits((float)c->f64[i]);
  case OP_COL_I64:
    c = &in->cols[o->col];
    return (c->present && !c->present[i]) ? o->bits : (uint64_t)c->i64[i];
  case OP_COL_I32:
    c = &in->cols[o->col];
    return (c->present && !c->present[i]) ? o->bits : (uint32_t)c->i64[i];
  default: return o->bits; /* OP_CONST */
  }
}

/* Fill the call slots of document I. */
QB_INLINE void fill_slots(const qu_exec *x, const qu_block *in, size_t i, uint64_t *slots) {
  for (uint32_t k = 0; k < x->nops; k++) {
    const op *o = &x->ops[k];
    if (o->kind == OP_STR_CONST) {
      slots[o->slot] = o->gptr;
      slots[o->slot + 1] = o->str.len;
    } else if (o->kind == OP_STR_COL) {
      slots[o->slot] = x->gptr[(size_t)o->sidx * QU_BLOCK_MAX + i];
      slots[o->slot + 1] = x->glen[(size_t)o->sidx * QU_BLOCK_MAX + i];
    } else {
      slots[o->slot] = op_value(o, in, i);
    }
  }
}

/* Store the result slot R of document I into OUT. String results are copied out of the guest
** (into strout; pointers fixed up at the end of the block). */
static qb_code put_result(qu_exec *x, uint64_t r, size_t i, qu_out *out, qb_err *err) {
  const qu_manifest *m = x->u->m;
  double v;
  switch (m->returns) {
  case QU_I32: v = (double)(int32_t)(uint32_t)r; break;
  case QU_I64: v = (double)(int64_t)r; break;
  case QU_F32: v = (double)bits_f32(r); break;
  case QU_F64: v = bits_f64(r); break;
  default: {
    if (r == UINT64_MAX) {
      x->stroff[i] = SIZE_MAX;
      if (out->present) out->present[i] = 0;
      return QB_OK;
    }
    uint32_t p = (uint32_t)(r >> 32), len = (uint32_t)r;
    size_t msize;
    uint8_t *mem = qw_instance_memory(x->inst->wi, &msize);
    if ((uint64_t)p + len > msize)
      return qb_fail(err, QB_TRAP,
                     "UDF %s trapped: its string result (ptr %u, len %u) is out of bounds of "
                     "its memory", x->u->label, p, len);
    x->stroff[i] = x->strout.len;
    x->strlen_[i] = len;
    if (qb_buf_append(&x->strout, mem + p, len))
      return qb_fail(err, QB_NOMEM, "udf %s: out of memory", x->u->label);
    if (out->present) out->present[i] = 1;
    return QB_OK;
  }
  }
  /* qu_exec_run left exactly one of f64/keep (the kind's own when given): a filter can feed a
  ** score context (0/1) and a number a filter (non-zero keeps; NaN keeps nothing) */
  if (out->keep) out->keep[i] = m->returns == QU_I32 ? (uint32_t)r != 0 : (v != 0 && v == v);
  else out->f64[i] = v;
  if (out->present) out->present[i] = 1;
  return QB_OK;
}

static void fix_strings(qu_exec *x, size_t n, qu_out *out) {
  for (size_t i = 0; i < n; i++) {
    if (x->stroff[i] == SIZE_MAX) {
      out->str[i].ptr = NULL;
      out->str[i].len = 0;
    } else {
      out->str[i].ptr = x->strout.data ? x->strout.data + x->stroff[i] : "";
      out->str[i].len = x->strlen_[i];
    }
  }
}

/* ---- per-document mode ------------------------------------------------------------------------ */

static qb_code run_docs(qu_exec *x, const qu_block *in, qu_out *out, qb_err *err) {
  qb_code rc;
  qw_func *fn = x->inst->fn;
  uint64_t *slots = x->slots;
  size_t n = in->n;
  if (x->nstr && (rc = stage_strings(x, in, err))) return rc;
  if (x->u->m->returns != QU_STRING && out->f64) {
    /* the hot loop for numbers: fill, call, convert */
    qu_type rt = x->u->m->returns;
    double *f = out->f64;
    for (size_t i = 0; i < n; i++) {
      fill_slots(x, in, i, slots);
      const qw_trap *t = qw_func_call_raw(fn, slots);
      if (QB_UNLIKELY(t != NULL)) return trap_fail(x, t, err);
      uint64_t r = slots[0];
      f[i] = rt == QU_F64 ? bits_f64(r) : rt == QU_F32 ? (double)bits_f32(r)
             : rt == QU_I32 ? (double)(int32_t)(uint32_t)r : (double)(int64_t)r;
    }
    if (out->present) memset(out->present, 1, n);
    return QB_OK;
  }
  for (size_t i = 0; i < n; i++) {
    fill_slots(x, in, i, slots);
    const qw_trap *t = qw_func_call_raw(fn, slots);
    if (QB_UNLIKELY(t != NULL)) return trap_fail(x, t, err);
    if ((rc = put_result(x, slots[0], i, out, err))) return rc;
  }
  if (x->u->m->returns == QU_STRING) fix_strings(x, n, out);
  return QB_OK;
}

/* ---- batch mode (SDK ABI v1: name__batch(i32 n, i32 args, i32 out)) -------------------------- */

static size_t elem_size(qu_type t) { return (t == QU_I32 || t == QU_F32) ? 4 : 8; }
static size_t align8(size_t v) { return (v + 7) & ~(size_t)7; }

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static qb_code run_batch(qu_exec *x, const qu_block *in, qu_out *out, qb_err *err) {
  const qu_manifest *m = x->u->m;
  size_t n = in->n, total, strbytes = 0, args_off = 0, out_off, str_off;
  size_t col_off[64];
  uint32_t base;
  qb_code rc;
  /* layout: [args: nparams u32][col 0]...[col k-1][out][string bytes], each part 8-aligned */
  QB_ASSERT(m->nparams <= QB_COUNTOF(col_off));
  total = align8(m->nparams * 4);
  for (uint32_t k = 0; k < m->nparams; k++) {
    col_off[k] = total;
    total += align8(n * elem_size(m->params[k].type));
    const op *o = &x->ops[k];
    if (o->kind == OP_STR_CONST) strbytes += o->str.len * n;
    else if (o->kind == OP_STR_COL)
      for (size_t i = 0; i < n; i++) strbytes += doc_str(o, in, i).len;
  }
  out_off = total;
  total += align8(n * (m->returns == QU_STRING ? 8 : elem_size(m->returns)));
  str_off = total;
  total += strbytes;
  if ((rc = guest_alloc(x, total, &base, err))) return rc;
  uint8_t *mem = qw_instance_memory(x->inst->wi, NULL) + base;
  uint32_t sat = (uint32_t)(base + str_off);
  for (uint32_t k = 0; k < m->nparams; k++) {
    const op *o = &x->ops[k];
    uint8_t *col = mem + col_off[k];
    put32(mem + args_off + 4 * k, (uint32_t)(base + col_off[k]));
    for (size_t i = 0; i < n; i++) {
      if (o->type == QU_STRING) {
        qu_str s = o->kind == OP_STR_CONST ? o->str : doc_str(o, in, i);
        if (s.len) memcpy(mem + (sat - base), s.ptr, s.len);
        put32(col + 8 * i, sat);
        put32(col + 8 * i + 4, (uint32_t)s.len);
        sat += (uint32_t)s.len;
        continue;
      }
      uint64_t v = op_value(o, in, i);
      if (elem_size((qu_type)o->type) == 4) put32(col + 4 * i, (uint32_t)v);
      else put64(col + 8 * i, v);
    }
  }
  QB_ASSERT(sat == base + total); /* the strings end the layout */
  x->slots[0] = (uint32_t)n;
  x->slots[1] = base + (uint32_t)args_off;
  x->slots[2] = base + (uint32_t)out_off;
  const qw_trap *t = qw_func_call_raw(x->inst->batch, x->slots);
  if (t) return trap_fail(x, t, err);
  mem = qw_instance_memory(x->inst->wi, NULL) + base + out_off;
  for (size_t i = 0; i < n; i++) {
    uint64_t r;
    if (m->returns == QU_STRING || elem_size(m->returns) == 8) {
      memcpy(&r, mem + 8 * i, 8);
    } else {
      uint32_t w;
      memcpy(&w, mem + 4 * i, 4);
      r = w;
    }
    if ((rc = put_result(x, r, i, out, err))) return rc;
  }
  if (m->returns == QU_STRING) fix_strings(x, n, out);
  return QB_OK;
}

/* ---- native code and verification ------------------------------------------------------------ */

/* The buffers native blocks need, made at the first one (most execs never run native code). */
static qb_code native_buffers(qu_exec *x, qb_err *err) {
  if (x->res) return QB_OK;
  size_t cells = (size_t)x->nargs * QU_BLOCK_MAX;
  if ((cells && !(x->acols = qb_calloc(cells, sizeof *x->acols))) ||
      !(x->argv = qb_calloc(x->nargs ? x->nargs : 1, sizeof *x->argv)) ||
      !(x->res = qb_calloc(2 * QU_BLOCK_MAX, sizeof *x->res))) {
    qb_free(x->acols, cells * sizeof *x->acols);
    qb_free(x->argv, (x->nargs ? x->nargs : 1) * sizeof *x->argv);
    x->acols = NULL;
    x->argv = NULL;
    return qb_fail(err, QB_NOMEM, "udf %s: out of memory", x->u->label);
  }
  x->res2 = x->res + QU_BLOCK_MAX;
  for (uint32_t k = 0; k < x->nargs; k++) x->argv[k] = x->acols + (size_t)k * QU_BLOCK_MAX;
  return QB_OK;
}

/* The argument columns of a block-driver call: a column the block already has as 64-bit
** cells with the bits the driver reads (the f64 score, an f64/i64 column, an i32 column as
** i64: the driver truncates), with no missing value to put in (no PRESENT, or FILLED), is
** passed as is, without a copy; constants are filled once per exec; the rest (missing values,
** conversions, strings) is copied into acols. */
static void block_cols(qu_exec *x, const qu_block *in) {
  size_t n = in->n;
  for (uint32_t k = 0; k < x->nops; k++) {
    const op *o = &x->ops[k];
    uint64_t *c = x->acols + (size_t)o->slot * QU_BLOCK_MAX;
    const qu_col *col = o->kind >= OP_COL_F64 && o->kind <= OP_COL_I32 ? &in->cols[o->col] : NULL;
    x->argv[o->slot] = c;
    switch (o->kind) {
    case OP_SCORE_F64: x->argv[o->slot] = (const uint64_t *)(const void *)in->score; break;
    case OP_CONST:
      if (!x->consts_filled)
        for (size_t i = 0; i < QU_BLOCK_MAX; i++) c[i] = o->bits;
      break;
    case OP_COL_F64:
      if (!col->present || x->filled) x->argv[o->slot] = (const uint64_t *)(const void *)col->f64;
      else
        for (size_t i = 0; i < n; i++) c[i] = col->present[i] ? f64_bits(col->f64[i]) : o->bits;
      break;
    case OP_COL_I64:
    case OP_COL_I32:
      if (!col->present || x->filled) {
        x->argv[o->slot] = (const uint64_t *)(const void *)col->i64;
      } else {
        const int64_t *v = col->i64;
        const uint8_t *pr = col->present;
        uint64_t miss = o->bits;
        for (size_t i = 0; i < n; i++) c[i] = pr[i] ? (uint64_t)v[i] : miss;
      }
      break;
    case OP_STR_CONST:
      for (size_t i = 0; i < n; i++) c[i] = o->gptr;
      for (size_t i = 0; i < n; i++) c[QU_BLOCK_MAX + i] = o->str.len;
      x->argv[o->slot + 1] = c + QU_BLOCK_MAX;
      break;
    case OP_STR_COL: {
      const uint32_t *gp = x->gptr + (size_t)o->sidx * QU_BLOCK_MAX;
      const uint32_t *gl = x->glen + (size_t)o->sidx * QU_BLOCK_MAX;
      for (size_t i = 0; i < n; i++) c[i] = gp[i];
      for (size_t i = 0; i < n; i++) c[QU_BLOCK_MAX + i] = gl[i];
      x->argv[o->slot + 1] = c + QU_BLOCK_MAX;
      break;
    }
    default:
      for (size_t i = 0; i < n; i++) c[i] = op_value(o, in, i);
    }
  }
  x->consts_filled = 1;
}

/* Run entry NE over the block into RES (strings staged already). */
static const qw_trap *native_call(qu_exec *x, const qu_native_entry *ne, const qu_block *in,
                                  uint64_t *res) {
  qw_instance *wi = x->inst->wi;
  if (ne->block) {
    block_cols(x, in);
    return ne->block(ne->code, wi, in->n, x->argv, res);
  }
  for (size_t i = 0; i < in->n; i++) {
    fill_slots(x, in, i, x->slots);
    const qw_trap *t = ne->doc(ne->code, wi, x->slots);
    if (t) return t;
    res[i] = x->slots[0];
  }
  return NULL;
}

/* Raw result slots RES of the block into OUT. */
static qb_code put_results(qu_exec *x, const uint64_t *res, size_t n, qu_out *out,
                           qb_err *err) {
  qu_type rt = x->u->m->returns;
  qb_code rc;
  if (rt != QU_STRING && out->f64) {
    double *f = out->f64;
    for (size_t i = 0; i < n; i++) {
      uint64_t r = res[i];
      f[i] = rt == QU_F64 ? bits_f64(r) : rt == QU_F32 ? (double)bits_f32(r)
             : rt == QU_I32 ? (double)(int32_t)(uint32_t)r : (double)(int64_t)r;
    }
    if (out->present) memset(out->present, 1, n);
    return QB_OK;
  }
  for (size_t i = 0; i < n; i++)
    if ((rc = put_result(x, res[i], i, out, err))) return rc;
  if (rt == QU_STRING) fix_strings(x, n, out);
  return QB_OK;
}

static qb_code run_native(qu_exec *x, const qu__entry *e, const qu_block *in, qu_out *out,
                          qb_err *err) {
  qb_code rc;
  if ((rc = native_buffers(x, err))) return rc;
  if (x->nstr && (rc = stage_strings(x, in, err))) return rc;
  /* an f64 result straight into the caller's array (the driver writes f64 bits as cells) */
  if (e->ne.block && x->u->m->returns == QU_F64 && out->f64) {
    const qw_trap *t = native_call(x, &e->ne, in, (uint64_t *)(void *)out->f64);
    if (QB_UNLIKELY(t != NULL)) return trap_fail(x, t, err);
    if (out->present) memset(out->present, 1, in->n);
    return QB_OK;
  }
  const qw_trap *t = native_call(x, &e->ne, in, x->res);
  if (QB_UNLIKELY(t != NULL)) return trap_fail(x, t, err);
  return put_results(x, x->res, in->n, out, err);
}

/* Do results A (the interpreter's, strings copied into strout) and B (native, strings in the
** guest's memory) agree bit for bit? WHY gets the first difference. */
static int same_results(qu_exec *x, const uint64_t *a, const uint64_t *b, size_t n, char *why,
                        size_t whylen) {
  qu_type rt = x->u->m->returns;
  uint64_t mask = (rt == QU_I32 || rt == QU_F32) ? 0xffffffffu : UINT64_MAX;
  for (size_t i = 0; i < n; i++) {
    if (rt != QU_STRING) {
      if ((a[i] & mask) == (b[i] & mask)) continue;
      snprintf(why, whylen, "document %zu of a block: interpreter 0x%llx, native 0x%llx", i,
               (unsigned long long)(a[i] & mask), (unsigned long long)(b[i] & mask));
      return 0;
    }
    size_t msize;
    const uint8_t *mem = qw_instance_memory(x->inst->wi, &msize);
    uint32_t p = (uint32_t)(b[i] >> 32), len = (uint32_t)b[i];
    int anull = x->stroff[i] == SIZE_MAX, bnull = b[i] == UINT64_MAX;
    if (anull && bnull) continue;
    if (anull != bnull || (uint64_t)p + len > msize || len != x->strlen_[i] ||
        (len && memcmp(mem + p, x->strout.data + x->stroff[i], len))) {
      snprintf(why, whylen, "document %zu of a block: the string results differ", i);
      return 0;
    }
  }
  return 1;
}

/* A block of the verification window: the interpreter's per-document results are served (the
** scalar export: what native code compiles), then native code runs the same inputs on the same
** instance (strings staged again after qd_reset) and the two are compared. Native code that
** traps or differs is a mismatch, never a failed block. */
static qb_code run_verify(qu_exec *x, const qu__entry *e, const qu_block *in, qu_out *out,
                          uint64_t fuel, qb_err *err) {
  qb_code rc;
  size_t n = in->n;
  char why[160];
  if ((rc = native_buffers(x, err))) return rc;
  if (x->nstr && (rc = stage_strings(x, in, err))) return rc;
  for (size_t i = 0; i < n; i++) {
    fill_slots(x, in, i, x->slots);
    const qw_trap *t = qw_func_call_raw(x->inst->fn, x->slots);
    if (QB_UNLIKELY(t != NULL)) return trap_fail(x, t, err);
    x->res[i] = x->slots[0];
  }
  if ((rc = put_results(x, x->res, n, out, err))) return rc;
  /* the user's results are final; whatever happens below only decides the swap */
  qb_err scratch;
  qw_instance_set_fuel(x->inst->wi, fuel);
  if (x->nstr && stage_strings(x, in, &scratch)) {
    x->discard = 1; /* inconclusive: the guest's allocator, not native code */
    return QB_OK;
  }
  const qw_trap *t = native_call(x, &e->ne, in, x->res2);
  if (t) {
    snprintf(why, sizeof why, "native code trapped (%s) where the interpreter did not",
             qw_trap_message(t));
    x->discard = 1;
    qu__tier_verified(x->u, 0, why);
    return QB_OK;
  }
  int same = same_results(x, x->res, x->res2, n, why, sizeof why);
  if (!same) x->discard = 1; /* code that computes wrong may also have written wrong */
  qu__tier_verified(x->u, same, why);
  return QB_OK;
}

/* ---- the entry --------------------------------------------------------------------------------- */

static qb_code check_block(const qu_exec *x, const qu_block *in, const qu_out *out,
                           qb_err *err) {
  const qu_plan *p = x->plan;
  const qu_manifest *m = x->u->m;
  if (in->n > QU_BLOCK_MAX || in->ncols != p->ncols || (p->ncols && !in->cols) ||
      (p->uses_score && !in->score))
    return qb_fail(err, QB_INVAL, "udf %s: malformed block (n %zu, %zu columns, plan has %u)",
                   x->u->label, in->n, in->ncols, p->ncols);
  for (uint32_t c = 0; c < p->ncols; c++) {
    const qu_col *col = &in->cols[c];
    const void *arr = p->cols[c].type == QU_COL_F64 ? (const void *)col->f64
                      : p->cols[c].type == QU_COL_I64 ? (const void *)col->i64
                                                       : (const void *)col->str;
    if (!arr)
      return qb_fail(err, QB_INVAL, "udf %s: block column %u (%s) has no values", x->u->label,
                     c, p->cols[c].field);
  }
  int ok = m->returns == QU_STRING ? out->str != NULL : (out->f64 || out->keep);
  if (!ok)
    return qb_fail(err, QB_INVAL, "udf %s: no output array for a %s result", x->u->label,
                   qu_type_name(m->returns));
  return QB_OK;
}

qb_code qu_exec_run(qu_exec *x, const qu_block *in, qu_out *out, qb_err *err) {
  qu_udf *u = x->u;
  qb_code rc;
  uint64_t t0 = 0;
  if (!in->n) return QB_OK;
  if ((rc = check_block(x, in, out, err))) return rc;
  /* the tier this block runs on, to its end (internal.h: the tier rule) */
  const qu__entry *e = atomic_load_explicit(&u->entry, memory_order_acquire);
  qu_tier tier = e->kind == QU__E_NATIVE ? QU_TIER_NATIVE : QU_TIER_INTERP;
  if (!x->inst && (rc = qu__inst_checkout(u, &x->inst, err))) goto count;
  /* one numeric destination: the kind's own array when given (a filter's KEEP, the others'
  ** F64), else the other one */
  qu_out o = *out;
  if (o.keep && o.f64) {
    if (u->m->kind == QU_FILTER) o.f64 = NULL;
    else o.keep = NULL;
  }
  int timed = (x->nrun++ % u->opts.timing_sample) == 0;
  if (timed) t0 = qb_now_ns();
  qb_buf_reset(&x->strout);
  uint64_t fuel;
  if (__builtin_mul_overflow(u->opts.fuel_per_doc, (uint64_t)in->n + 1, &fuel)) fuel = UINT64_MAX;
  qu__deadline dl;
  uint64_t timeout_ms = u->opts.block_timeout_ms ? u->opts.block_timeout_ms : 1000;
  for (int attempt = 0;; attempt++) {
    qw_instance_set_fuel(x->inst->wi, fuel);
    qu__deadline_arm(&dl, x->inst->wi, timeout_ms);
    x->alloc_failed = 0;
    if (QB_LIKELY(e->kind == QU__E_INTERP))
      rc = x->inst->batch ? run_batch(x, in, &o, err) : run_docs(x, in, &o, err);
    else if (e->kind == QU__E_NATIVE)
      rc = run_native(x, e, in, &o, err);
    else
      rc = run_verify(x, e, in, &o, fuel, err);
    if (qu__deadline_disarm(&dl) && rc == QB_LIMIT && strstr(err ? err->msg : "", "time budget"))
      rc = qb_fail(err, QB_LIMIT, "UDF %s ran past its deadline of %llu ms for a block of %zu "
                   "documents", u->label, (unsigned long long)timeout_ms, in->n);
    /* ABI v1 2.1: a module whose memory ran out (qd_alloc gave 0) is re-instantiated, once */
    if (!rc || !x->alloc_failed || attempt) break;
    qu__inst_checkin(u, x->inst, 1);
    x->inst = NULL;
    if ((rc = qu__inst_checkout(u, &x->inst, err))) goto count;
    qb_buf_reset(&x->strout);
  }
  if (rc || x->discard) {
    qu__inst_checkin(u, x->inst, 1); /* never reuse an instance that failed mid-call */
    x->inst = NULL;
    x->discard = 0;
  }
  if (!rc && timed) qu__stats_observe(u->stats, tier, (qb_now_ns() - t0) / in->n);
  QB_ASSERT(!rc || !x->inst); /* an exec never keeps a failed instance (nor a discarded one) */
count:
  atomic_fetch_add_explicit(&u->stats->blocks[tier], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&u->stats->calls[tier], in->n, memory_order_relaxed);
  if (rc) atomic_fetch_add_explicit(&u->stats->errors[tier], 1, memory_order_relaxed);
  return rc;
}
