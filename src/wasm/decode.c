/* decode.c: the WebAssembly 2.0 binary format (spec chapter 5) -> struct qw_module. Every
** section is decoded here except function bodies, of which only the local declarations and the
** bounds are read; validate.c walks the instructions (and reports their malformed encodings).
** Untrusted input: every count is checked against the bytes left before anything is allocated
** (an item takes at least one byte), and everything lives in the module's arena.
** Errors are QB_MALFORMED with the spec suite's wording, QB_LIMIT for our implementation
** limits (internal.h), QB_NOMEM. */
#include "internal.h"
#include "wasm_backend.h"

#include <pthread.h>
#include <string.h>

typedef struct rd {
  const uint8_t *p, *end; /* the current section (or the whole module between sections) */
  const uint8_t *base;    /* module start, for offsets in messages */
  const char *where;      /* "type section", ... */
  qw_module *m;
  qb_err *err;
  uint64_t local_budget;  /* local types the module may still declare (see read_code) */
  const uint8_t *late_at; /* a count mismatch the spec reports only after the last section */
  const char *late_rule;
} rd;

#define TRY(x)                                                                                     \
  do {                                                                                             \
    qb_code rc_ = (x);                                                                             \
    if (rc_)                                                                                       \
      return rc_;                                                                                  \
  } while (0)

static qb_code bad(rd *r, const uint8_t *at, const char *rule) {
  return qb_fail(r->err, QB_MALFORMED, "%s: offset 0x%zx: %s", r->where, (size_t)(at - r->base),
                 rule);
}

static qb_code limit(rd *r, const uint8_t *at, const char *what, uint64_t n, uint64_t max) {
  return qb_fail(r->err, QB_LIMIT, "%s: offset 0x%zx: too many %s (%llu, at most %llu)", r->where,
                 (size_t)(at - r->base), what, (unsigned long long)n, (unsigned long long)max);
}

static qb_code nomem(rd *r) {
  return qb_fail(r->err, QB_NOMEM, "%s: out of memory", r->where);
}

static qb_code u8(rd *r, uint8_t *out) {
  if (r->p >= r->end)
    return bad(r, r->p, "unexpected end of section or function");
  *out = *r->p++;
  return QB_OK;
}

static qb_code u32(rd *r, uint32_t *out) {
  const char *why;
  if (QB_LIKELY(qw__leb_u32(&r->p, r->end, out)))
    return QB_OK;
  why = qw__leb_why(r->p, r->end, 32);
  if (r->end != r->base + r->m->len && !strcmp(why, "unexpected end"))
    why = "unexpected end of section or function";
  return bad(r, r->p, why);
}

/* A vector's length: each of its items needs at least MIN_BYTES bytes, so a count larger than
** the bytes left is malformed before anything is allocated for it. */
static qb_code count(rd *r, uint32_t min_bytes, uint32_t max, const char *what, uint32_t *out) {
  const uint8_t *at = r->p;
  TRY(u32(r, out));
  if ((uint64_t)*out * min_bytes > (uint64_t)(r->end - r->p))
    return bad(r, at, "unexpected end of section or function (length out of bounds)");
  if (*out > max)
    return limit(r, at, what, *out, max);
  return QB_OK;
}

/* spec 5.2.4: names are UTF-8 (no overlongs, no surrogates, at most U+10FFFF) */
static bool utf8_ok(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    uint32_t cp, min;
    size_t k, j;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xe0) == 0xc0)
      k = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
      k = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
      k = 3, cp = c & 0x07, min = 0x10000;
    else
      return false;
    if (n - i <= k)
      return false;
    for (j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80)
        return false;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += k + 1;
  }
  return true;
}

static qb_code name(rd *r, char **out, uint32_t *len) {
  uint32_t n;
  const uint8_t *at = r->p;
  TRY(u32(r, &n));
  if (n > (size_t)(r->end - r->p))
    return bad(r, at, "length out of bounds");
  if (!utf8_ok(r->p, n))
    return bad(r, r->p, "malformed UTF-8 encoding");
  if (out && !(*out = qb_arena_strndup(&r->m->arena, (const char *)r->p, n)))
    return nomem(r);
  if (len)
    *len = n;
  r->p += n;
  return QB_OK;
}

static qb_code valtype(rd *r, uint8_t *out) {
  const uint8_t *at = r->p;
  TRY(u8(r, out));
  switch (*out) {
  case QW_I32:
  case QW_I64:
  case QW_F32:
  case QW_F64:
  case QW_FUNCREF:
  case QW_EXTERNREF:
    return QB_OK;
  case QW_V128:
    return bad(r, at, "v128 (SIMD) is not supported");
  }
  return bad(r, at, "malformed value type");
}

static qb_code reftype(rd *r, uint8_t *out) {
  const uint8_t *at = r->p;
  TRY(u8(r, out));
  if (*out != QW_FUNCREF && *out != QW_EXTERNREF)
    return bad(r, at, "malformed reference type");
  return QB_OK;
}

/* spec 5.3.7: flag 0 = min, 1 = min max (other flags belong to later proposals) */
static qb_code limits(rd *r, qw__limits *out) {
  uint8_t flag = 0;
  const uint8_t *at = r->p;
  TRY(u8(r, &flag));
  if (flag & 0x80)
    return bad(r, at, "integer representation too long");
  if (flag > 1)
    return bad(r, at, "integer too large");
  TRY(u32(r, &out->min));
  out->has_max = flag == 1;
  out->max = 0;
  if (out->has_max)
    TRY(u32(r, &out->max));
  return QB_OK;
}

static qb_code tabletype(rd *r, qw__tabletype *out) {
  TRY(reftype(r, &out->elem));
  return limits(r, &out->lim);
}

static qb_code globaltype(rd *r, qw__globaltype *out) {
  uint8_t mut = 0;
  const uint8_t *at;
  TRY(valtype(r, &out->type));
  at = r->p;
  TRY(u8(r, &mut));
  if (mut > 1)
    return bad(r, at, "malformed mutability");
  out->mut = mut;
  return QB_OK;
}

/* ---- instructions (only to find where a constant expression ends) -------------------------- */

/* Immediate kind per opcode, from opcodes.def; 0xff = no such instruction. */
static uint8_t imm1[256], immfc[32];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void fill_tables(void) {
  memset(imm1, 0xff, sizeof imm1);
  memset(immfc, 0xff, sizeof immfc);
#define QW_OP(code, ident, name, imm, sig, align)                                                  \
  if ((code) < 0x100)                                                                              \
    imm1[(code)&0xff] = QW_IMM_##imm;                                                              \
  else                                                                                             \
    immfc[(code)&0x1f] = QW_IMM_##imm;
#include "opcodes.def"
}

static void init_tables(void) {
  pthread_once(&tables_once, fill_tables);
}

int qw__imm_kind(uint32_t code) {
  init_tables();
  if (code < 0x100)
    return imm1[code] == 0xff ? -1 : imm1[code];
  if (code >= 0xfc00 && code < 0xfc00 + sizeof immfc)
    return immfc[code - 0xfc00] == 0xff ? -1 : immfc[code - 0xfc00];
  return -1;
}

/* Skips one instruction (decoded by insn.c, the one decoder); *DEPTH follows block nesting
** (end at 0 sets *DONE). Only the encoding is checked here; validate.c does the rest. */
static qb_code skip_instr(rd *r, uint32_t *depth, bool *done) {
  qw_insn in;
  const uint8_t *at = r->p;
  if (!qw_insn_next(&r->p, r->end, r->base, &in))
    return bad(r, in.why ? r->base + in.why_at : at, in.why ? in.why : "illegal opcode");
  if (in.op == QW_OP_block || in.op == QW_OP_loop || in.op == QW_OP_if) {
    ++*depth;
  } else if (in.op == QW_OP_end) {
    if (*depth == 0)
      *done = true;
    else
      --*depth;
  }
  return QB_OK;
}

/* A constant expression (spec 3.3.10): recognised when it is one constant instruction + end;
** otherwise QW_C_OTHER (validate.c explains). Either way R ends up after its `end`. */
static qb_code cexpr(rd *r, qw__cexpr *c) {
  const uint8_t *start = r->p, *q = r->p;
  uint32_t depth = 0;
  bool done = false;
  qw_insn in;
  c->offset = (uint32_t)(start - r->base);
  c->op = QW_C_OTHER;
  c->idx = 0;
  c->bits = 0;
  if (qw_insn_next(&q, r->end, r->base, &in) && q < r->end && *q == 0x0b) {
    bool ok = true;
    switch (in.op) {
    case QW_OP_i32_const: c->op = QW_C_I32, c->bits = (uint32_t)in.k; break;
    case QW_OP_i64_const: c->op = QW_C_I64, c->bits = in.k; break;
    case QW_OP_f32_const: c->op = QW_C_F32, c->bits = in.k; break;
    case QW_OP_f64_const: c->op = QW_C_F64, c->bits = in.k; break;
    case QW_OP_ref_null:
      ok = in.a == QW_FUNCREF || in.a == QW_EXTERNREF;
      c->op = QW_C_REF_NULL, c->idx = in.a;
      break;
    case QW_OP_ref_func: c->op = QW_C_REF_FUNC, c->idx = in.a; break;
    case QW_OP_global_get: c->op = QW_C_GLOBAL_GET, c->idx = in.a; break;
    default: ok = false; break;
    }
    if (ok) {
      r->p = q + 1;
      return QB_OK;
    }
    c->op = QW_C_OTHER;
    c->idx = 0;
    c->bits = 0;
  }
  while (!done)
    TRY(skip_instr(r, &depth, &done));
  return QB_OK;
}

/* ---- sections ------------------------------------------------------------------------------ */

static qb_code read_types(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i, j;
  TRY(count(r, 1, QW_MAX_TYPES, "types", &n));
  if (!(m->types = qb_arena_array(&m->arena, n, sizeof *m->types)))
    return nomem(r);
  for (i = 0; i < n; i++) {
    qw__functype *t = &m->types[i];
    uint32_t np, nr;
    uint8_t form = 0;
    const uint8_t *at = r->p, *pp, *rp;
    TRY(u8(r, &form));
    if (form != 0x60)
      return bad(r, at, "malformed function type (integer representation too long)");
    TRY(count(r, 1, QW_MAX_PARAMS, "parameters", &np));
    pp = r->p;
    for (j = 0; j < np; j++)
      TRY(valtype(r, &form));
    TRY(count(r, 1, QW_MAX_RESULTS, "results", &nr));
    rp = r->p;
    for (j = 0; j < nr; j++)
      TRY(valtype(r, &form));
    if (!(t->types = qb_arena_alloc(&m->arena, (size_t)np + nr)))
      return nomem(r);
    memcpy(t->types, pp, np);
    memcpy(t->types + np, rp, nr);
    t->nparams = np;
    t->nresults = nr;
    TRY(qw__engine_canon(m->engine, t->types, np, nr, &t->canon, r->err));
    m->ntypes = i + 1;
  }
  return QB_OK;
}

static qb_code read_imports(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i;
  TRY(count(r, 1, QW_MAX_IMPORTS, "imports", &n));
  if (!(m->imports = qb_arena_array(&m->arena, n, sizeof *m->imports)))
    return nomem(r);
  for (i = 0; i < n; i++) {
    qw__import *im = &m->imports[i];
    const uint8_t *at;
    TRY(name(r, &im->module, NULL));
    TRY(name(r, &im->name, NULL));
    at = r->p;
    TRY(u8(r, &im->kind));
    switch (im->kind) {
    case QW_KFUNC:
      TRY(u32(r, &im->type_idx));
      m->nfunc_imports++;
      break;
    case QW_KTABLE:
      TRY(tabletype(r, &im->table));
      m->ntable_imports++;
      break;
    case QW_KMEMORY:
      TRY(limits(r, &im->mem));
      m->nmem_imports++;
      break;
    case QW_KGLOBAL:
      TRY(globaltype(r, &im->global));
      m->nglobal_imports++;
      break;
    default:
      return bad(r, at, "malformed import kind");
    }
    m->nimports = i + 1;
  }
  return QB_OK;
}

/* Allocates the index spaces once the number of definitions of each kind is known, and copies
** the imported entries to their front. Idempotent. */
static qb_code spaces(rd *r, uint32_t ndef_funcs, uint32_t ndef_tables, uint32_t ndef_mems,
                      uint32_t ndef_globals, int which) {
  qw_module *m = r->m;
  uint32_t i, f = 0, t = 0, me = 0, g = 0;
  if (which == QW_KFUNC && !m->func_types) {
    m->nfuncs = m->nfunc_imports + ndef_funcs;
    if (m->nfuncs > QW_MAX_FUNCS)
      return limit(r, r->p, "functions", m->nfuncs, QW_MAX_FUNCS);
    if (!(m->func_types = qb_arena_array(&m->arena, m->nfuncs, sizeof *m->func_types)))
      return nomem(r);
  } else if (which == QW_KTABLE && !m->tables) {
    m->ntables = m->ntable_imports + ndef_tables;
    if (m->ntables > QW_MAX_TABLES)
      return limit(r, r->p, "tables", m->ntables, QW_MAX_TABLES);
    if (!(m->tables = qb_arena_array(&m->arena, m->ntables, sizeof *m->tables)))
      return nomem(r);
  } else if (which == QW_KMEMORY && !m->mems) {
    m->nmems = m->nmem_imports + ndef_mems;
    if (!(m->mems = qb_arena_array(&m->arena, m->nmems, sizeof *m->mems)))
      return nomem(r);
  } else if (which == QW_KGLOBAL && !m->global_types) {
    m->nglobals = m->nglobal_imports + ndef_globals;
    if (m->nglobals > QW_MAX_GLOBALS)
      return limit(r, r->p, "globals", m->nglobals, QW_MAX_GLOBALS);
    if (!(m->global_types = qb_arena_array(&m->arena, m->nglobals, sizeof *m->global_types)))
      return nomem(r);
  } else {
    return QB_OK;
  }
  for (i = 0; i < m->nimports; i++) {
    qw__import *im = &m->imports[i];
    if (im->kind == QW_KFUNC) {
      if (which == QW_KFUNC)
        m->func_types[f] = im->type_idx;
      f++;
    } else if (im->kind == QW_KTABLE) {
      if (which == QW_KTABLE)
        m->tables[t] = im->table;
      t++;
    } else if (im->kind == QW_KMEMORY) {
      if (which == QW_KMEMORY)
        m->mems[me] = im->mem;
      me++;
    } else {
      if (which == QW_KGLOBAL)
        m->global_types[g] = im->global;
      g++;
    }
  }
  return QB_OK;
}

static qb_code read_funcs(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i;
  TRY(count(r, 1, QW_MAX_FUNCS, "functions", &n));
  TRY(spaces(r, n, 0, 0, 0, QW_KFUNC));
  if (!(m->funcs = qb_arena_array(&m->arena, n, sizeof *m->funcs)))
    return nomem(r);
  m->ndefined = n;
  for (i = 0; i < n; i++) {
    TRY(u32(r, &m->funcs[i].type_idx));
    m->func_types[m->nfunc_imports + i] = m->funcs[i].type_idx;
  }
  return QB_OK;
}

static qb_code read_tables(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i;
  TRY(count(r, 1, QW_MAX_TABLES, "tables", &n));
  TRY(spaces(r, 0, n, 0, 0, QW_KTABLE));
  for (i = 0; i < n; i++)
    TRY(tabletype(r, &m->tables[m->ntable_imports + i]));
  return QB_OK;
}

static qb_code read_mems(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i;
  /* several memories are invalid, not malformed: decode them, validate.c says "multiple
  ** memories"; 2 bytes each bounds the count */
  TRY(count(r, 1, UINT32_MAX, "memories", &n));
  TRY(spaces(r, 0, 0, n, 0, QW_KMEMORY));
  for (i = 0; i < n; i++)
    TRY(limits(r, &m->mems[m->nmem_imports + i]));
  return QB_OK;
}

static qb_code read_globals(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i;
  TRY(count(r, 1, QW_MAX_GLOBALS, "globals", &n));
  TRY(spaces(r, 0, 0, 0, n, QW_KGLOBAL));
  if (!(m->globals = qb_arena_array(&m->arena, n, sizeof *m->globals)))
    return nomem(r);
  for (i = 0; i < n; i++) {
    TRY(globaltype(r, &m->globals[i].type));
    m->global_types[m->nglobal_imports + i] = m->globals[i].type;
    TRY(cexpr(r, &m->globals[i].init));
  }
  return QB_OK;
}

static qb_code read_exports(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i;
  TRY(count(r, 1, QW_MAX_EXPORTS, "exports", &n));
  if (!(m->exports = qb_arena_array(&m->arena, n, sizeof *m->exports)))
    return nomem(r);
  for (i = 0; i < n; i++) {
    qw__export *x = &m->exports[i];
    const uint8_t *at;
    TRY(name(r, &x->name, &x->name_len));
    at = r->p;
    TRY(u8(r, &x->kind));
    if (x->kind > QW_KGLOBAL)
      return bad(r, at, "malformed export kind");
    TRY(u32(r, &x->index));
    m->nexports = i + 1;
  }
  return QB_OK;
}

static qb_code read_start(rd *r) {
  uint32_t f;
  TRY(u32(r, &f));
  r->m->start = f;
  return QB_OK;
}

/* spec 5.5.12: eight encodings, told apart by a u32 whose bits say passive/declarative (0),
** explicit table index (1) and expressions instead of function indices (2). */
static qb_code read_elems(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i, j;
  TRY(count(r, 1, QW_MAX_ELEMS, "element segments", &n));
  if (!(m->elems = qb_arena_array(&m->arena, n, sizeof *m->elems)))
    return nomem(r);
  for (i = 0; i < n; i++) {
    qw__elem *s = &m->elems[i];
    uint32_t flags;
    const uint8_t *at = r->p;
    TRY(u32(r, &flags));
    if (flags > 7)
      return bad(r, at, "malformed elements segment kind");
    s->type = QW_FUNCREF;
    if (flags & 1)
      s->mode = (flags & 2) ? QW_SEG_DECLARATIVE : QW_SEG_PASSIVE;
    else
      s->mode = QW_SEG_ACTIVE;
    if (s->mode == QW_SEG_ACTIVE) {
      if (flags & 2)
        TRY(u32(r, &s->table));
      TRY(cexpr(r, &s->offset));
    }
    if (flags & 3) { /* an explicit element kind / reference type follows */
      if (flags & 4) {
        TRY(reftype(r, &s->type));
      } else {
        uint8_t k = 0;
        at = r->p;
        TRY(u8(r, &k));
        if (k != 0)
          return bad(r, at, "malformed element kind");
      }
    }
    TRY(count(r, 1, UINT32_MAX, "elements", &s->count));
    if (!(s->items = qb_arena_array(&m->arena, s->count, sizeof *s->items)))
      return nomem(r);
    for (j = 0; j < s->count; j++) {
      if (flags & 4) {
        TRY(cexpr(r, &s->items[j]));
      } else {
        s->items[j].op = QW_C_REF_FUNC;
        s->items[j].offset = (uint32_t)(r->p - r->base);
        TRY(u32(r, &s->items[j].idx));
      }
    }
    m->nelems = i + 1;
  }
  return QB_OK;
}

static qb_code read_datacount(rd *r) {
  TRY(u32(r, &r->m->datacount));
  r->m->has_datacount = true;
  return QB_OK;
}

/* Local declarations are runs (count, type); the sum may be huge in few bytes, so besides the
** per-function limit the module has a budget proportional to its size. */
static qb_code read_code(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i, j;
  const uint8_t *at = r->p;
  TRY(count(r, 1, QW_MAX_FUNCS, "function bodies", &n));
  if (n != m->ndefined) { /* reported after the other sections, as the spec does */
    r->late_at = at;
    r->late_rule = "function and code section have inconsistent lengths";
    r->p = r->end;
    return QB_OK;
  }
  m->code_bytes = (uint32_t)(r->end - at);
  for (i = 0; i < n; i++) {
    qw__func_decl *f = &m->funcs[i];
    uint32_t size, nruns;
    uint64_t total = 0;
    const uint8_t *body_end, *runs, *save_end = r->end;
    at = r->p;
    TRY(u32(r, &size));
    if (size > (size_t)(r->end - r->p))
      return bad(r, at, "length out of bounds");
    if (size > QW_MAX_FUNC_SIZE)
      return limit(r, at, "bytes in a function", size, QW_MAX_FUNC_SIZE);
    body_end = r->p + size;
    r->end = body_end;
    TRY(count(r, 1, UINT32_MAX, "local declarations", &nruns));
    runs = r->p;
    for (j = 0; j < nruns; j++) {
      uint32_t c;
      uint8_t t;
      TRY(u32(r, &c));
      TRY(valtype(r, &t));
      total += c;
      if (total > UINT32_MAX)
        return bad(r, at, "too many locals");
    }
    if (total > QW_MAX_LOCALS)
      return limit(r, at, "locals", total, QW_MAX_LOCALS);
    if (total > r->local_budget)
      return limit(r, at, "locals in the module", total, r->local_budget);
    r->local_budget -= total;
    f->nlocals = (uint32_t)total;
    if (!(f->local_types = qb_arena_alloc(&m->arena, total ? total : 1)))
      return nomem(r);
    {
      const uint8_t *q = runs;
      uint32_t k = 0, c;
      for (j = 0; j < nruns; j++) {
        qw__leb_u32(&q, body_end, &c);
        memset(f->local_types + k, *q++, c);
        k += c;
      }
    }
    f->body = r->p;
    f->body_end = body_end;
    f->body_offset = (uint32_t)(r->p - r->base);
    r->p = body_end;
    r->end = save_end;
  }
  return QB_OK;
}

static qb_code read_datas(rd *r) {
  qw_module *m = r->m;
  uint32_t n, i;
  const uint8_t *at = r->p;
  TRY(count(r, 1, QW_MAX_DATAS, "data segments", &n));
  if (m->has_datacount && n != m->datacount && !r->late_rule) {
    r->late_at = at;
    r->late_rule = "data count and data section have inconsistent lengths";
  }
  if (!(m->datas = qb_arena_array(&m->arena, n, sizeof *m->datas)))
    return nomem(r);
  for (i = 0; i < n; i++) {
    qw__data *d = &m->datas[i];
    uint32_t flags;
    at = r->p;
    TRY(u32(r, &flags));
    if (flags > 2)
      return bad(r, at, "malformed data segment kind");
    d->mode = flags == 1 ? QW_SEG_PASSIVE : QW_SEG_ACTIVE;
    if (flags == 2)
      TRY(u32(r, &d->mem));
    if (flags != 1)
      TRY(cexpr(r, &d->offset));
    at = r->p;
    TRY(u32(r, &d->len));
    if (d->len > (size_t)(r->end - r->p))
      return bad(r, at, "unexpected end of section or function (length out of bounds)");
    d->bytes = r->p;
    r->p += d->len;
    m->ndatas = i + 1;
  }
  return QB_OK;
}

static qb_code read_custom(rd *r) {
  TRY(name(r, NULL, NULL));
  r->p = r->end;
  return QB_OK;
}

/* ---- the module ---------------------------------------------------------------------------- */

static const struct {
  uint8_t rank; /* order of appearance (spec 5.5.2); 0 = custom, may appear anywhere */
  const char *name;
  qb_code (*read)(rd *);
} sections[13] = {
    [0] = {0, "custom section", read_custom},
    [1] = {1, "type section", read_types},
    [2] = {2, "import section", read_imports},
    [3] = {3, "function section", read_funcs},
    [4] = {4, "table section", read_tables},
    [5] = {5, "memory section", read_mems},
    [6] = {6, "global section", read_globals},
    [7] = {7, "export section", read_exports},
    [8] = {8, "start section", read_start},
    [9] = {9, "element section", read_elems},
    [12] = {10, "data count section", read_datacount},
    [10] = {11, "code section", read_code},
    [11] = {12, "data section", read_datas},
};

static void mark_ref(qw_module *m, const qw__cexpr *c) {
  if (c->op == QW_C_REF_FUNC && c->idx < m->nfuncs)
    m->declared_refs[c->idx] = 1;
}

qb_code qw__decode(qw_module *m, qb_err *err) {
  rd r = {.p = m->bytes,
          .end = m->bytes + m->len,
          .base = m->bytes,
          .where = "module",
          .m = m,
          .err = err};
  static const uint8_t magic[4] = {0, 'a', 's', 'm'}, version[4] = {1, 0, 0, 0};
  unsigned last = 0;
  uint32_t i, j;
  bool have_code = false;
  r.local_budget = (uint64_t)m->len * 16 + (1u << 20);
  m->start = -1;
  init_tables();
  if (m->len < 4)
    return bad(&r, r.end, "unexpected end");
  if (memcmp(m->bytes, magic, 4))
    return bad(&r, r.p, "magic header not detected");
  if (m->len < 8)
    return bad(&r, r.end, "unexpected end");
  if (memcmp(m->bytes + 4, version, 4))
    return bad(&r, r.p + 4, "unknown binary version");
  r.p += 8;
  while (r.p < r.end) {
    const uint8_t *at = r.p, *file_end = r.end;
    uint8_t id = *r.p++;
    uint32_t size;
    r.where = "module";
    if (id > 12)
      return bad(&r, at, "malformed section id");
    if (sections[id].rank) {
      if (sections[id].rank <= last)
        return bad(&r, at, "unexpected content after last section");
      last = sections[id].rank;
    }
    TRY(u32(&r, &size));
    if (size > (size_t)(r.end - r.p))
      return bad(&r, at, "section size mismatch (length out of bounds)");
    r.where = sections[id].name;
    r.end = r.p + size;
    /* the index spaces before the first section that needs them */
    if (id != 0 && sections[id].rank > 3)
      TRY(spaces(&r, 0, 0, 0, 0, QW_KFUNC));
    if (id != 0 && sections[id].rank > 4)
      TRY(spaces(&r, 0, 0, 0, 0, QW_KTABLE));
    if (id != 0 && sections[id].rank > 5)
      TRY(spaces(&r, 0, 0, 0, 0, QW_KMEMORY));
    if (id != 0 && sections[id].rank > 6)
      TRY(spaces(&r, 0, 0, 0, 0, QW_KGLOBAL));
    TRY(sections[id].read(&r));
    if (r.p != r.end)
      return bad(&r, r.p, "section size mismatch");
    if (id == 10)
      have_code = true;
    r.end = file_end;
  }
  r.where = "module";
  if (r.late_rule)
    return bad(&r, r.late_at, r.late_rule);
  TRY(spaces(&r, 0, 0, 0, 0, QW_KFUNC));
  TRY(spaces(&r, 0, 0, 0, 0, QW_KTABLE));
  TRY(spaces(&r, 0, 0, 0, 0, QW_KMEMORY));
  TRY(spaces(&r, 0, 0, 0, 0, QW_KGLOBAL));
  if (m->ndefined && !have_code)
    return bad(&r, r.end, "function and code section have inconsistent lengths");
  if (m->has_datacount && m->datacount != m->ndatas && !m->datas)
    return bad(&r, r.end, "data count and data section have inconsistent lengths");
  /* spec C.refs: functions named outside function bodies */
  if (!(m->declared_refs = qb_arena_alloc(&m->arena, m->nfuncs ? m->nfuncs : 1)))
    return nomem(&r);
  for (i = 0; i < m->nexports; i++)
    if (m->exports[i].kind == QW_KFUNC && m->exports[i].index < m->nfuncs)
      m->declared_refs[m->exports[i].index] = 1;
  for (i = 0; i < m->nglobals - m->nglobal_imports; i++)
    mark_ref(m, &m->globals[i].init);
  for (i = 0; i < m->nelems; i++)
    for (j = 0; j < m->elems[i].count; j++)
      mark_ref(m, &m->elems[i].items[j]);
  return QB_OK;
}
