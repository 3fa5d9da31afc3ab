/* engine.c: the engine object (default limits), the function-type intern table, value helpers
** and the names of types and opcodes. The intern table gives every structurally distinct
** function type one id (qw__functype.canon), so import matching and call_indirect compare two
** integers. It is process-wide rather than per engine because host functions (qw_imports) are
** made without an engine yet must compare with any module's types. Invariant: ids are dense,
** start at 0 and are never reused; the table only grows, under `lock`, and lives as long as
** the process (one entry per distinct signature ever seen). */
#include "internal.h"

#include <pthread.h>
#include <string.h>

typedef struct canon_entry {
  uint32_t hash;
  uint32_t nparams, nresults;
  uint8_t *types; /* nparams + nresults bytes */
} canon_entry;

struct qw_engine {
  qw_limits limits; /* defaults for instances, zeros already replaced */
};

static struct intern {
  pthread_mutex_t lock; /* guards everything below */
  canon_entry *entries; /* by id; count used, cap allocated */
  uint32_t count, cap;
  uint32_t *slots; /* open addressing: id + 1, 0 = empty; nslots is a power of two */
  uint32_t nslots;
} intern = {.lock = PTHREAD_MUTEX_INITIALIZER};

void qw__limits_resolve(qw_limits *out, const qw_limits *in, const qw_limits *dflt) {
  qw_limits d = {QW_DEFAULT_MAX_PAGES, QW_DEFAULT_CALL_DEPTH, QW_DEFAULT_STACK_BYTES, 0,
                 QW_DEFAULT_TABLE_ELEMS};
  if (!dflt)
    dflt = &d;
  qw_limits r = in ? *in : *dflt;
  if (!r.max_memory_pages)
    r.max_memory_pages = dflt->max_memory_pages ? dflt->max_memory_pages : d.max_memory_pages;
  if (r.max_memory_pages > QW_MAX_PAGES)
    r.max_memory_pages = QW_MAX_PAGES;
  if (!r.max_call_depth)
    r.max_call_depth = dflt->max_call_depth ? dflt->max_call_depth : d.max_call_depth;
  if (!r.max_stack_bytes)
    r.max_stack_bytes = dflt->max_stack_bytes ? dflt->max_stack_bytes : d.max_stack_bytes;
  if (!r.fuel)
    r.fuel = dflt->fuel;
  if (!r.max_table_elems)
    r.max_table_elems = dflt->max_table_elems ? dflt->max_table_elems : d.max_table_elems;
  *out = r;
}

qb_code qw_engine_new(const qw_limits *defaults, qw_engine **out, qb_err *err) {
  qw_engine *e;
  *out = NULL;
  if (!(e = qb_calloc(1, sizeof *e)))
    return qb_fail(err, QB_NOMEM, "engine: out of memory");
  qw__limits_resolve(&e->limits, defaults, NULL);
  *out = e;
  return QB_OK;
}

void qw_engine_free(qw_engine *e) {
  if (e)
    qb_free(e, sizeof *e);
}

const qw_limits *qw__engine_limits(const qw_engine *e) {
  return &e->limits;
}

static uint32_t hash_type(const uint8_t *types, uint32_t np, uint32_t nr) {
  uint32_t h = 2166136261u ^ np ^ (nr << 16), i;
  for (i = 0; i < np + nr; i++)
    h = (h ^ types[i]) * 16777619u;
  return h ? h : 1;
}

/* Doubles the slot array (or makes the first one); NOMEM leaves the table as it was. */
static bool rehash(struct intern *e) {
  uint32_t n = e->nslots ? e->nslots * 2 : 64, i;
  uint32_t *s = qb_calloc(n, sizeof *s);
  if (!s)
    return false;
  for (i = 0; i < e->count; i++) {
    uint32_t j = e->entries[i].hash & (n - 1);
    while (s[j])
      j = (j + 1) & (n - 1);
    s[j] = i + 1;
  }
  qb_free(e->slots, (size_t)e->nslots * sizeof *e->slots);
  e->slots = s;
  e->nslots = n;
  return true;
}

qb_code qw__engine_canon(qw_engine *eng, const uint8_t *types, uint32_t nparams, uint32_t nresults,
                         uint32_t *out, qb_err *err) {
  uint32_t h = hash_type(types, nparams, nresults), j;
  size_t n = (size_t)nparams + nresults;
  qb_code rc = QB_OK;
  (void)eng;
  struct intern *e = &intern;
  pthread_mutex_lock(&e->lock);
  if (e->nslots) {
    for (j = h & (e->nslots - 1); e->slots[j]; j = (j + 1) & (e->nslots - 1)) {
      canon_entry *c = &e->entries[e->slots[j] - 1];
      if (c->hash == h && c->nparams == nparams && c->nresults == nresults &&
          (n == 0 || memcmp(c->types, types, n) == 0)) {
        *out = e->slots[j] - 1;
        goto done;
      }
    }
  }
  if ((uint64_t)(e->count + 1) * 2 > e->nslots && !rehash(e))
    goto nomem;
  if (e->count == e->cap) {
    uint32_t ncap = e->cap ? e->cap * 2 : 64;
    canon_entry *ne;
    if (ncap > UINT32_MAX / 2)
      goto nomem;
    ne = qb_realloc(e->entries, (size_t)e->cap * sizeof *ne, (size_t)ncap * sizeof *ne);
    if (!ne)
      goto nomem;
    e->entries = ne;
    e->cap = ncap;
  }
  {
    canon_entry *c = &e->entries[e->count];
    c->types = qb_malloc(n);
    if (!c->types)
      goto nomem;
    if (n)
      memcpy(c->types, types, n);
    c->hash = h;
    c->nparams = nparams;
    c->nresults = nresults;
    for (j = h & (e->nslots - 1); e->slots[j]; j = (j + 1) & (e->nslots - 1)) {
    }
    e->slots[j] = e->count + 1;
    *out = e->count++;
  }
done:
  pthread_mutex_unlock(&e->lock);
  return rc;
nomem:
  pthread_mutex_unlock(&e->lock);
  return qb_fail(err, QB_NOMEM, "engine: out of memory interning a function type");
}

/* ---- names ---------------------------------------------------------------------------------- */

const char *qw_type_name(qw_type t) {
  switch (t) {
  case QW_I32:
    return "i32";
  case QW_I64:
    return "i64";
  case QW_F32:
    return "f32";
  case QW_F64:
    return "f64";
  case QW_V128:
    return "v128";
  case QW_FUNCREF:
    return "funcref";
  case QW_EXTERNREF:
    return "externref";
  }
  return "?";
}

const char *qw__op_name(uint32_t code) {
  switch (code) {
#define QW_OP(code, ident, name, imm, sig, align)                                                  \
  case code:                                                                                       \
    return name;
#include "opcodes.def"
  }
  return NULL;
}

/* ---- values --------------------------------------------------------------------------------- */

qw_val qw_i32(int32_t v) {
  return (qw_val){.type = QW_I32, .of.i32 = (uint32_t)v};
}
qw_val qw_i64(int64_t v) {
  return (qw_val){.type = QW_I64, .of.i64 = (uint64_t)v};
}
qw_val qw_f32(float v) {
  qw_val r = {.type = QW_F32};
  memcpy(&r.of.f32_bits, &v, 4);
  return r;
}
qw_val qw_f64(double v) {
  qw_val r = {.type = QW_F64};
  memcpy(&r.of.f64_bits, &v, 8);
  return r;
}
float qw_val_f32(qw_val v) {
  float f;
  memcpy(&f, &v.of.f32_bits, 4);
  return f;
}
double qw_val_f64(qw_val v) {
  double d;
  memcpy(&d, &v.of.f64_bits, 8);
  return d;
}
