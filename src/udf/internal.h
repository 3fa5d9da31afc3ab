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
  _Atomic int mode;                       /* qu_tier of the current version's entry */
  _Atomic uint64_t compiles, compile_failures, verify_mismatches, compile_ns;
  _Atomic uint64_t compile_mem_bytes;     /* the last compile's peak (compile_mem.c) */
  /* registry.c, under the registry's mutex: what became of an uploaded artifact */
  uint32_t artifact_version;
  char artifact_note[200];
  int deleted; /* under the mutex: the UDF was deleted; its series leave /metrics until a deploy */
} qu__stats;

/* The memory of one compile (compile_mem.c): begin before, end after; end gives the peak
** bytes the compile added to the process (an upper bound: the probe is process-wide). */
typedef struct qu__mem {
  uint64_t rss0, heap0;
  int hwm_reset;
} qu__mem;
void qu__mem_begin(qu__mem *m);
uint64_t qu__mem_end(const qu__mem *m);

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

/* ---- tiers (tier.c) ------------------------------------------------------------------------ */

typedef enum qu__ekind {
  QU__E_INTERP, /* the interpreter: the export (or its batch form) through qw_func_call_raw */
  QU__E_NATIVE, /* native code: NE */
  QU__E_VERIFY  /* the interpreter serves, native code runs the same block and is compared */
} qu__ekind;

typedef struct qu__entry {
  qu__ekind kind;
  qu_origin origin;
  qu_native_entry ne;    /* NATIVE, VERIFY */
} qu__entry;

struct qu_udf {
  _Atomic uint32_t refs;
  qu_registry *reg;      /* owner of the cache entry, NULL when standalone */
  struct qu_udf *next;   /* registry cache list (under reg->mu) */
  int reg_current;       /* the registry holds a reference: the current version */
  uint64_t last_used_ns; /* qb_now_ns() of the last acquire (under the registry's mu) */
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
  uint8_t sha256[32];    /* of the wasm bytes: the native cache's key */
  /* The tier rule. ENTRY is what a new block runs: published with a release store (under
  ** TIER_MU), read once per block with an acquire load, and the block runs to its end on what
  ** it read, so a swap never pauses or fails a block. Entries and native code are freed only
  ** in qu__udf_destroy: every block runs inside a qu_exec holding a reference on this version,
  ** so at the last release no block can still see them. A version changes entry at most twice
  ** (interpreter -> verify -> native, or back to the interpreter), so keeping the old ones
  ** until then costs nothing. */
  _Atomic(qu__entry *) entry;
  qu__entry e_interp, e_verify, e_native;
  qu_native *native;     /* owned: compiler->ops.free at destroy */
  pthread_mutex_t tier_mu;
  qu_tier_status status; /* under TIER_MU */
  _Atomic uint32_t verify_left; /* blocks still to compare while ENTRY is E_VERIFY */
};

qb_code qu__udf_new(qw_engine *e, const qu_manifest *m, uint32_t version, const uint8_t *wasm,
                    size_t len, const qu_options *opts, qu__stats *stats, qu_udf **out,
                    qb_err *err);
void qu__udf_destroy(qu_udf *u);
/* Pool: an instance ready to call (from the free list or new), and back (or freed when the
** free list is full). DISCARD frees it: after a trap or budget failure. */
qb_code qu__inst_checkout(qu_udf *u, qu__inst **out, qb_err *err);
void qu__inst_checkin(qu_udf *u, qu__inst *in, int discard);

/* tier.c: the interpreter entry and the status (at load). */
void qu__tier_init(qu_udf *u);
/* Start native compilation of U by its compiler (queued, or at once when pinned native); does
** nothing without a compiler or when pinned to the interpreter. Call once, after the version
** is registered (its stats cell's version set). */
void qu__tier_start(qu_udf *u);
/* The job's outcome: native code N (owned by U from now) with entry NE, or a failure. */
void qu__tier_install(qu_udf *u, qu_native *n, const qu_native_entry *ne, qu_origin origin,
                      int cache_hit, uint64_t ns, uint64_t mem_bytes);
void qu__tier_failed(qu_udf *u, const char *fmt, ...) QB_PRINTF(2, 3);
void qu__tier_set_state(qu_udf *u, qu_native_state st);
/* One verified block: OK 1 when both tiers agreed bit for bit, else WHY says where. */
void qu__tier_verified(qu_udf *u, int ok, const char *why);
/* Free U's native code (qu__udf_destroy). */
void qu__tier_fini(qu_udf *u);

/* ---- the compiler, its pool and cache (pool.c, cache.c, artifact.c) ------------------------ */

/* Queue U (takes a reference) or, pinned native, compile it now in this thread. */
void qu__compiler_submit(qu_compiler *c, qu_udf *u);
/* Drop the queued jobs of registry R's versions and wait for its running ones (close). */
void qu__compiler_forget(qu_compiler *c, qu_registry *r);
const qu_native_ops *qu__compiler_ops(const qu_compiler *c);
qu_tier_pin qu__compiler_pin(const qu_compiler *c);
uint32_t qu__compiler_verify_blocks(const qu_compiler *c);

typedef struct qu__cache qu__cache;
/* What an entry is for. */
typedef struct qu__key {
  uint8_t module_sha256[32];
  uint32_t abi_version;
  const char *triple, *cpu_features;
} qu__key;
qb_code qu__cache_open(const char *dir, uint64_t max_bytes, qu__cache **out, qb_err *err);
void qu__cache_close(qu__cache *c);
/* Look K up: QB_OK with the entry's container in BUF and A parsed from it (A->object points
** into BUF), QB_NOTFOUND on a miss; a corrupt, truncated or mismatched entry is removed,
** counted and logged, and reported as QB_NOTFOUND too (the caller compiles). */
qb_code qu__cache_get(qu__cache *c, const qu__key *k, qb_buf *buf, qu_artifact *a);
/* Store OBJECT for K atomically (temp file, fsync, rename); evicts the least recently used
** entries past the size bound. FLAGS: QU_ARTIFACT_AOT or 0. */
qb_code qu__cache_put(qu__cache *c, const qu__key *k, uint32_t flags, const uint8_t *object,
                      size_t len, qb_err *err);
/* Remove K's entry, just returned by qu__cache_get, whose object did not load: counted as
** rejected, and the get as a miss. */
void qu__cache_reject(qu__cache *c, const qu__key *k, const char *why);
void qu__cache_stats(qu__cache *c, qu_cache_stats *out);
qu__cache *qu__compiler_cache(qu_compiler *c);

/* The trust list: Ed25519 public keys. */
typedef struct qu__trust qu__trust;
qb_code qu__trust_load(const char *dir, qu__trust **out, qb_err *err);
void qu__trust_free(qu__trust *t);
/* QB_OK when SIG (raw 64 bytes or 128 hex digits) is a valid signature of BYTES by a trusted
** key; else QB_INVALID with the reason ("unsigned", "not signed by a trusted key"). */
qb_code qu__trust_verify(const qu__trust *t, const uint8_t *bytes, size_t len,
                         const uint8_t *sig, size_t sig_len, qb_err *err);
qu__trust *qu__compiler_trust(qu_compiler *c);
/* Check a parsed artifact against what this node runs: QB_CONFLICT naming the field. */
qb_code qu__artifact_match(const qu_artifact *a, const qu__key *k, qb_err *err);
void qu__key_of(qu_compiler *c, const uint8_t sha256[32], qu__key *out);

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

/* deadline.c: a running block's wall-clock deadline (the watchdog interrupts past it). */
typedef struct qu__deadline {
  struct qu__deadline *prev, *next;
  qw_instance *inst;
  uint64_t at_ns;
  int fired;
} qu__deadline;
/* Arm D for INST (the block starts now) and TIMEOUT_MS; D stays the caller's (on its stack). */
void qu__deadline_arm(qu__deadline *d, qw_instance *inst, uint64_t timeout_ms);
/* The block ended: take D off the watch; 1 when its deadline had passed (the call was
** interrupted, or the interrupt was withdrawn). */
int qu__deadline_disarm(qu__deadline *d);

#endif
