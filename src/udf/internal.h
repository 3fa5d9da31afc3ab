/* internal.h: what the files of src/udf share (never included outside this folder). The
** structs behind udf.h's opaque types, the statistics cells, and the pool's instance record.
** Invariant: a qu_udf's module, manifest and imports never change after qu__udf_new; only its
** refcount, pool and statistics do (atomics or the pool mutex). */
#ifndef QU_INTERNAL_H
#define QU_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>

#include "udf.h"

/* ---- manifests (manifest.c) ------------------------------------------------------------- */

struct qu_manifest {
  qb_arena arena;          /* every string and the params array */
  const char *name, *export_name, *description;
  qu_kind kind;
  qu_type returns;
  uint32_t nparams;
  qu_param *params;
  json_t **dflt_json;      /* nparams parsed "default" values (NULL = none); owned */
  json_t **missing_json;   /* nparams parsed "missing" values */
  uint32_t nslots;         /* wasm params of the export (a string counts two) */
};

/* QW type of a numeric qu_type (QU_STRING gives QW_I32 for each half). */
qw_type qu__wasm_type(qu_type t);
/* Convert JSON literal J to param type T into *I / *F / *S (borrowed from J). Error message
** names what was expected, the caller prefixes the place. */
qb_code qu__literal(const json_t *j, qu_type t, int64_t *i, double *f, const char **s,
                    size_t *slen, qb_err *err);

/* ---- plans (bind.c) ---------------------------------------------------------------------- */

typedef enum qu__src { QU__CONST, QU__COL, QU__SCORE } qu__src;

typedef struct qu__bound {
  qu__src src;
  qu_type type;
  uint32_t col;          /* QU__COL: index into plan->cols */
  int64_t i;             /* QU__CONST numeric values (the one of TYPE) */
  double f;
  qu_str s;              /* QU__CONST string; bytes in the plan's arena */
} qu__bound;

struct qu_plan {
  qb_arena arena;
  const qu_manifest *m;
  qu__bound *params;     /* m->nparams */
  uint32_t ncols;
  qu_colspec *cols;
  int uses_score;
};

/* ---- statistics (udf.c) -------------------------------------------------------------------- */

typedef struct qu__stats {
  struct qu__stats *next;   /* registry's list */
  char name[65];
  _Atomic uint32_t version;
  _Atomic uint64_t calls[QU_TIER_COUNT], errors[QU_TIER_COUNT], blocks[QU_TIER_COUNT];
  _Atomic uint64_t hist[QU_TIER_COUNT][QU_HIST_BUCKETS + 1];
  _Atomic uint64_t hist_count[QU_TIER_COUNT];
  _Atomic uint64_t hist_sum_ns[QU_TIER_COUNT];
  _Atomic uint64_t module_bytes, instance_bytes, instances;
} qu__stats;

/* Record one sampled per-document duration of NS nanoseconds. */
void qu__stats_observe(qu__stats *s, qu_tier t, uint64_t ns);
void qu__stats_snapshot(const qu__stats *s, qu_stats *out);

/* ---- loaded versions and their pools (udf.c) ----------------------------------------------- */

/* One pooled instance with its exports resolved once. */
typedef struct qu__inst {
  qw_instance *wi;
  qw_func *fn;           /* the export */
  qw_func *batch;        /* <export>__batch or NULL */
  qw_func *alloc;        /* qd_alloc or NULL */
  qw_func *reset;        /* qd_reset or NULL */
  size_t bytes;          /* charged to stats->instance_bytes */
} qu__inst;

struct qu_udf {
  _Atomic uint32_t refs;
  qu_registry *reg;      /* owner of the cache entry, NULL when standalone */
  struct qu_udf *next;   /* registry cache list (under reg->mu) */
  int reg_current;       /* the registry holds a reference: the current version */
  int dead;              /* deleted/replaced in the registry: acquire must not match it */
  qw_engine *engine;
  qu_manifest *m;        /* owned copy */
  uint32_t version;
  char label[96];        /* "custom_score v3" */
  qw_module *mod;
  size_t wasm_bytes;
  qu_options opts;       /* defaults applied */
  qw_limits limits;
  qw_imports *imports;   /* WASI sandbox; read-only after load */
  int has_batch;
  qu__stats *stats;      /* the registry's per-name cell, or OWN_STATS */
  qu__stats own_stats;
  pthread_mutex_t pool_mu;
  qu__inst **idle;       /* opts.max_idle_instances slots */
  uint32_t nidle;
};

qb_code qu__udf_new(qw_engine *e, const qu_manifest *m, uint32_t version, const uint8_t *wasm,
                    size_t len, const qu_options *opts, qu__stats *stats, qu_udf **out,
                    qb_err *err);
void qu__udf_destroy(qu_udf *u);
/* Pool: an instance ready to call (from the free list or new), and back (or freed when the
** free list is full). DISCARD frees it: after a trap or budget failure. */
qb_code qu__inst_checkout(qu_udf *u, qu__inst **out, qb_err *err);
void qu__inst_checkin(qu_udf *u, qu__inst *in, int discard);

/* registry.c: drop a reference of a registry-owned version (under the registry's lock). */
void qu__registry_release(qu_registry *r, qu_udf *u);

/* manifest.c: a deep copy. */
qb_code qu__manifest_clone(const qu_manifest *m, qu_manifest **out, qb_err *err);

/* Free a buffer jansson allocated for us (json_dumps) with the function jansson allocates with:
** qb_sized_free once a program installed it (json_set_alloc_funcs, base.h), free() before. */
static inline void qu__json_free(void *p) {
  json_free_t f;
  json_get_alloc_funcs(NULL, &f);
  f(p);
}

#endif
