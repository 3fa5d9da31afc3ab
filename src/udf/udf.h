/* udf.h: the UDF layer (prefix qu_): a WebAssembly module plus a manifest, deployed by name
** with versions, bound to a search request's params and context, and run over blocks of
** documents on pooled instances of the engine (src/wasm). Knows nothing of HTTP, the cluster
** or the query syntax: the server's adapter turns a qq_script call into the calls below
** (docs/udf.md has the design, docs/udf-authoring.md the guest ABI).
**
** Objects and threads:
**   qu_manifest  a parsed + validated manifest. Immutable after parse: share freely.
**   qu_registry  the versioned store (SQLite, WAL) plus the cache of loaded versions and the
**                per-UDF statistics. Any thread (one internal mutex; SQLite in serialized
**                mode). Close it only after every qu_udf from it has been released.
**   qu_udf       one loaded version of one UDF: its manifest, its immutable qw_module, a pool
**                of instances and its statistics. Refcounted, any thread. A search pins the
**                version it started with by holding a qu_udf; a deploy during the search does
**                not change what that handle runs; the version is freed with its last handle.
**   qu_plan      a manifest bound to one request's params and context: constants resolved,
**                the document columns listed. Immutable after creation: share freely.
**   qu_exec      a plan running on one instance: one thread at a time (a script of one
**                request). Holds one instance, checked out of the udf's pool at its first
**                run and given back at qu_exec_free.
**   qu_compiler  the native tier (optional): the program's compiler hook, a pool of 1-2
**                low-priority threads, the native-code cache, the trust list. Any thread;
**                outlives every registry and version that uses it. A version's blocks switch
**                from the interpreter to native code between two blocks (docs/udf.md §10).
**
** Errors (base.h): every call returns a qb_code and fills a caller-owned qb_err.
**   QB_INVAL     bad input from a user: manifest, params, context, args ("udf x: ...")
**   QB_INVALID   the module does not fit its manifest (signature, imports, exports) or does
**                not validate; QB_MALFORMED when the bytes are not WebAssembly
**   QB_NOTFOUND  no such UDF or version
**   QB_TRAP      the UDF trapped: "UDF custom_score v3 trapped: integer divide by zero"
**   QB_LIMIT     the UDF ran out of its budget: "UDF custom_score v3 exceeded its fuel budget"
**   QB_IO/QB_CORRUPT  the registry's SQLite file; QB_NOMEM */
#ifndef QU_UDF_H
#define QU_UDF_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "wasm.h"

/* jansson's json_t, without including jansson.h here (callers that pass JSON include it). */
struct json_t;

typedef struct qu_manifest qu_manifest;
typedef struct qu_registry qu_registry;
typedef struct qu_udf qu_udf;
typedef struct qu_plan qu_plan;
typedef struct qu_exec qu_exec;
typedef struct qu_compiler qu_compiler;

/* ==== manifests ============================================================================== */

/* What a UDF is for (DESIGN §5). */
typedef enum qu_kind {
  QU_SCORE,     /* returns a number: the document's score */
  QU_FILTER,    /* returns i32: non-zero keeps the document */
  QU_TRANSFORM, /* returns a number or a string (script_fields) */
  QU_METRIC     /* returns a number fed to a metric aggregation */
} qu_kind;

/* Parameter and return types. A string is (ptr i32, len i32) in the module's memory. */
typedef enum qu_type { QU_I32, QU_I64, QU_F32, QU_F64, QU_STRING } qu_type;

const char *qu_kind_name(qu_kind k); /* "score", "filter", "transform", "metric" */
const char *qu_type_name(qu_type t); /* "i32", "i64", "f32", "f64", "string" */

/* A string: LEN bytes at PTR, not NUL-terminated (same layout as the query layer's qq_str).
** PTR NULL means "no value". */
typedef struct qu_str {
  const char *ptr;
  size_t len;
} qu_str;

/* One declared parameter. DFLT and MISSING are the manifest's JSON text ("_score", "3",
** "\"abc\"", ...), NULL when absent. Borrowed from the manifest. */
typedef struct qu_param {
  const char *name;
  qu_type type;
  const char *dflt;    /* "default": a literal or a source ("_score", "_source.F", ...) */
  const char *missing; /* "missing": the value for documents without the field */
} qu_param;

/* The UDF name rule, the one place it is written: 1 when NAME is 1..64 bytes of [A-Za-z0-9_.-]
** (so it is safe in a URL path, a file name and a log line); 0 otherwise or for NULL. Manifests,
** the registry and the script adapter that resolves a search's "source" all ask this. */
int qu_name_valid(const char *name);

/* Parse and validate manifest JSON (DESIGN §5): "name" (1-64 of [A-Za-z0-9_.-]), "export"
** (default: name), "kind" (default "score"), "description", "params" [{name, type, default,
** missing}], "returns" (i32|i64|f32|f64|string). Rules: a filter returns i32; only a transform
** may return a string; parameter names are unique; a default/missing fits its type. *OUT is
** owned by the caller (qu_manifest_free). Errors: QB_INVAL with the field named
** ("manifest: params[1].type: unknown type \"float\" (expected i32, i64, f32, f64 or
** string)"), QB_NOMEM. */
qb_code qu_manifest_parse(const char *json, size_t len, qu_manifest **out, qb_err *err);

/* What `qctl udf deploy` does when the user gives only some fields: complete GIVEN (manifest
** JSON, may lack params/returns/kind/export; "name" is required unless NAME is given) from the
** export's WASM signature in MODULE: params p0..pN with the signature's types, returns from its
** result. What GIVEN names explicitly wins (and must then match the signature: see
** qu_manifest_check). NAME, when not NULL, overrides/sets "name". *OUT as qu_manifest_parse. */
qb_code qu_manifest_complete(const char *given, size_t len, const char *name,
                             const qw_module *module, qu_manifest **out, qb_err *err);

/* Deploy-time checks of M against MODULE: the export exists and is a function; its signature
** matches the params (a string param = two i32: ptr, len) and the result (a string result =
** one i64: ptr << 32 | len, UINT64_MAX for "no value"); every import is a function of
** "wasi_snapshot_preview1"; qd_alloc (i32 -> i32) and a memory named "memory" are exported
** when a param or the result is a string; a `<export>__batch` export, when present, is
** (i32 n, i32 args, i32 out) -> () and comes with qd_alloc and memory (ABI v1,
** docs/udf-authoring.md); qd_reset () -> (), qd_abi_version () -> i32 and _initialize
** () -> () when exported; no _start (a WASI command is not a library). Static only: the
** registry's deploy also instantiates once (linking, start, _initialize, ABI version).
** Errors: QB_INVALID naming the rule ("export custom_score: param 2 (recency_days) is i32 in
** the manifest but f64 in the module"). */
qb_code qu_manifest_check(const qu_manifest *m, const qw_module *module, qb_err *err);

void qu_manifest_free(qu_manifest *m);

/* Accessors: borrowed, valid until qu_manifest_free. */
const char *qu_manifest_name(const qu_manifest *m);
const char *qu_manifest_export(const qu_manifest *m);
const char *qu_manifest_description(const qu_manifest *m); /* "" when absent */
qu_kind qu_manifest_kind(const qu_manifest *m);
qu_type qu_manifest_returns(const qu_manifest *m);
uint32_t qu_manifest_nparams(const qu_manifest *m);
const qu_param *qu_manifest_param(const qu_manifest *m, uint32_t i);
/* The manifest as canonical JSON (every field spelled out), appended to OUT. */
qb_code qu_manifest_json(const qu_manifest *m, qb_buf *out);

/* ==== binding: request params + context -> a call plan ====================================== */

/* Document column element types the plan asks for (same values as the query layer's
** qq_col_type: F64, I64, STR). i32/i64 params read I64 columns, f32/f64 params F64 columns,
** string params STR columns. */
typedef enum qu_col_type { QU_COL_F64, QU_COL_I64, QU_COL_STR } qu_col_type;

/* One document column the plan needs; the caller fills column I of every block with it. */
typedef struct qu_colspec {
  const char *field;   /* document field name (from "_source.F", "doc['F']" or {"field"}) */
  qu_col_type type;
  int has_missing;     /* 1: documents without a value take the MISSING_* value */
  double missing_f64;  /* QU_COL_F64 */
  int64_t missing_i64; /* QU_COL_I64 */
  qu_str missing_str;  /* QU_COL_STR; bytes owned by the plan */
  uint32_t param;      /* which manifest param it feeds */
  int from_doc;        /* 1: named as doc['F'], so an unmapped F is an error (Elasticsearch's) */
  int from_source;     /* 1: named as _source.F, so a text F is read from the stored _source */
} qu_colspec;

/* Bind manifest M (borrowed: must outlive the plan) to a request. PARAMS is the script's
** "params" object, CONTEXT the request's top-level "context" object (both may be NULL;
** borrowed for the call only). Each param's source, first match wins:
**   PARAMS[name]: a literal (number, boolean, string for string params), or a source:
**     "_score", "_source.F", "doc['F']" (or doc["F"]): the document's field F,
**     "_context.a.b": CONTEXT.a.b, resolved now (absent: the manifest "missing", then a
**       literal "default", else an error), {"field": "F", "missing": v}
**   the manifest "default" (a literal or a source, as above)
**   else the error: QB_INVAL "udf custom_score: param boost_factor: no value (not in params
**   and no default)".
** A document without a value for a field column gets the binding's "missing", else the
** manifest's "missing", else 0 ("" for strings). Unknown keys in PARAMS are an error.
** *OUT owned by the caller (qu_plan_free). Errors: QB_INVAL naming the UDF and param, QB_NOMEM. */
qb_code qu_plan_new(const qu_manifest *m, const struct json_t *params,
                    const struct json_t *context, qu_plan **out, qb_err *err);
void qu_plan_free(qu_plan *p);
/* The document columns, in the order the blocks must carry them. Borrowed from the plan. */
uint32_t qu_plan_ncols(const qu_plan *p);
const qu_colspec *qu_plan_col(const qu_plan *p, uint32_t i);
/* 1 when some param reads _score (the caller then passes scores in qu_block.score). */
int qu_plan_uses_score(const qu_plan *p);

/* How param I was bound (for explanations, debugging and tests). */
typedef enum qu_source { QU_SRC_CONST, QU_SRC_FIELD, QU_SRC_SCORE } qu_source;
typedef struct qu_binding {
  qu_source source;
  qu_type type;   /* the param's type */
  uint32_t col;   /* QU_SRC_FIELD: index of its column (qu_plan_col) */
  int64_t i64;    /* QU_SRC_CONST: the value, for i32/i64 params (f64 holds it too) */
  double f64;     /* QU_SRC_CONST: the value, for f32/f64 params */
  qu_str str;     /* QU_SRC_CONST string; bytes owned by the plan */
} qu_binding;
/* Fill OUT for param I (< the manifest's nparams). */
void qu_plan_binding(const qu_plan *p, uint32_t i, qu_binding *out);

/* ==== blocks: the executor's input and output ================================================ */

/* Up to this many documents per qu_exec_run (the query layer sends at most QQ_BLOCK_MAX). */
#define QU_BLOCK_MAX 1024

/* One column of a block (qq_col without its type: the plan says it). Exactly the array of the
** plan's colspec type is read. PRESENT: n bytes, 1 = the doc has a value; NULL = all present. */
typedef struct qu_col {
  const double *f64;
  const int64_t *i64;
  const qu_str *str;
  const uint8_t *present;
} qu_col;

/* N documents with the plan's columns (borrowed for the call). */
typedef struct qu_block {
  size_t n;             /* 1..QU_BLOCK_MAX */
  const double *score;  /* n current scores; may be NULL when !qu_plan_uses_score */
  size_t ncols;         /* == qu_plan_ncols */
  const qu_col *cols;
} qu_block;

/* Where results go: arrays of at least n entries, provided by the caller (NULL = not wanted).
** A string result goes to STR (bytes owned by the qu_exec, valid until its next run or free;
** {NULL, 0} for the ABI's "no value", with PRESENT 0). A number goes to ONE of F64 (integers
** converted) or KEEP (1 when non-zero: a filter's i32; for floats, non-zero and not NaN): the
** kind's own array when given (a filter's KEEP, the others' F64), else the other one, so a
** filter can feed a score context and a number a filter; the array not chosen is left alone.
** PRESENT (may be NULL) is set per filled doc. */
typedef struct qu_out {
  double *f64;
  uint8_t *keep;
  qu_str *str;
  uint8_t *present;
} qu_out;

/* ==== the native tier: a compiler hook, the background pool, the cache, artifacts ========== */

/* Each loaded version has one current entry, the code its blocks run: the interpreter first,
** native code once a compiler registered through qu_native_ops has produced it and the first
** blocks agreed bit for bit with the interpreter (docs/udf.md §10). Nothing here is used when
** no qu_compiler is given in qu_options: every version then stays on the interpreter. */

/* One module compiled to native code: opaque to this layer, owned by the hook. */
typedef struct qu_native qu_native;

/* The native code of one export, bound to an instance at each call (native code runs on the
** same qw_instance as the interpreter: same memory, globals, tables, fuel, host functions).
** Exactly one of DOC and BLOCK is set.
**   DOC    one call: SLOTS in/out as qw_func_call_raw (the params, then slots[0] the result).
**   BLOCK  N documents (1..QU_BLOCK_MAX): ARGS[k][i] is wasm param slot k of document i (a
**          string param is two slots, ptr and len, already in the guest's memory);
**          RESULTS[i] gets document i's result slot (i32/f32 in the low 32 bits).
** Both return NULL or the trap that ended the call, with qw_func_call_raw's meaning (fuel and
** interrupts included). CODE is qu_native_entry.code. */
typedef const qw_trap *(*qu_native_doc_fn)(void *code, qw_instance *inst, uint64_t *slots);
typedef const qw_trap *(*qu_native_block_fn)(void *code, qw_instance *inst, size_t n,
                                             const uint64_t *const *args, uint64_t *results);
typedef struct qu_native_entry {
  qu_native_doc_fn doc;
  qu_native_block_fn block;
  void *code; /* owned by the qu_native it came from; valid until ops->free of it */
} qu_native_entry;

/* The compiler, as the program registers it (src/jit implements it). Every call may come from
** the pool's threads, several at once for different modules; each returns QB_OK or fills ERR.
** Every function but EMIT and LOAD is required. */
typedef struct qu_native_ops {
  void *ud;
  const char *name;          /* for logs: "llvm" */
  uint32_t abi_version;      /* the engine ABI native code depends on (artifacts, the cache) */
  const char *triple;        /* this host's target: "x86_64-linux" (at most 31 bytes) */
  const char *cpu_features;  /* canonical, e.g. "+avx2,+bmi2,+fma" (at most 63 bytes) */
  /* Compile MODULE (validated: everything the interpreter runs) to native code for this
  ** host, bounded in time and memory by the hook. */
  qb_code (*compile)(void *ud, const qw_module *module, qu_native **out, qb_err *err);
  /* The entry of function export EXPORT of N (a UDF's export). */
  qb_code (*entry)(void *ud, qu_native *n, const char *export_name, qu_native_entry *out,
                   qb_err *err);
  /* Free N: only once no block can still run its code (this layer guarantees it). */
  void (*free)(void *ud, qu_native *n);
  /* The relocatable object of N for this host, appended to OBJECT (the cache stores it). */
  qb_code (*emit)(void *ud, qu_native *n, qb_buf *object, qb_err *err);
  /* Native code for MODULE from an object EMIT made (here, or an AOT compiler for this
  ** triple/CPU). The bytes passed the container's checks; they are still the hook's to
  ** check as an object: a malformed one is an error, never a crash. */
  qb_code (*load)(void *ud, const qw_module *module, const uint8_t *object, size_t len,
                  qu_native **out, qb_err *err);
} qu_native_ops;

/* The LLVM compiler (src/jit) as a hook (native_llvm.c): fills *OUT for this host (triple
** "x86_64-linux"/"aarch64-linux", CPU features like "+avx,+avx2,+fma"). Its entries are block
** functions that attach the native code to the instance for the block only; an export with one
** result and numeric params runs through the JIT's block driver (the export inlined in a loop
** over the columns), others make one call per document. Errors: QB_UNAVAILABLE (no host triple). */
qb_code qu_native_llvm(qu_native_ops *out, qb_err *err);

/* Which tiers serve (`--udf-tier`). */
typedef enum qu_tier_pin {
  QU_PIN_AUTO = 0, /* interpreter at once, native code after a background compile + check */
  QU_PIN_INTERP,   /* never compile */
  QU_PIN_NATIVE    /* compile when the version loads, in the loading thread (the load waits;
                      a failed compile is logged and the version stays on the interpreter) */
} qu_tier_pin;

typedef struct qu_compiler_options {
  qu_tier_pin pin;
  uint32_t threads;          /* background compile threads: 1 or 2; 0 = 1 */
  int nice;                  /* their nice value: 0 = 19 (the lowest priority); -1 = unchanged */
  uint32_t verify_blocks;    /* blocks run on both tiers before native code serves: 0 = 8;
                                UINT32_MAX = none (native code serves at once) */
  uint32_t max_queue;        /* versions waiting to compile: 0 = 256; more are not compiled */
  const char *cache_dir;     /* DATA/cache (created when needed); NULL = no cache */
  uint64_t cache_max_bytes;  /* 0 = 256 MiB */
  const char *trusted_keys_dir; /* `--trusted-keys DIR`: *.pub files (qu_keys_generate); NULL =
                                   no key is trusted: uploaded artifacts are never loaded */
  /* What the JIT compiles (LLVM's time and memory grow with these; a module past one stays
  ** on the interpreter, with the reason in qu_tier_status): */
  uint32_t max_functions;    /* defined functions; 0 = 10,000 */
  uint32_t max_code_bytes;   /* the code section; 0 = 4 MiB */
  uint32_t max_body_bytes;   /* one function body; 0 = 256 KiB */
} qu_compiler_options;

/* The background compiler: OPS (copied; OPS->ud must outlive the compiler), a pool of
** low-priority threads, the cache and the trust list. Pass it in qu_options.compiler; it must
** outlive every registry and version that uses it. Errors: QB_INVAL (ops incomplete, threads
** > 2, a triple or features too long), QB_IO (the cache folder, the keys folder), QB_MALFORMED
** (a key file: "trusted keys: k1.pub: not an Ed25519 public key (64 hex digits)"), QB_NOMEM. */
qb_code qu_compiler_new(const qu_native_ops *ops, const qu_compiler_options *opts,
                        qu_compiler **out, qb_err *err);
/* Waits for the compile running now, drops the queued ones (their versions stay interpreted),
** joins the threads. NULL does nothing. */
void qu_compiler_free(qu_compiler *c);
/* Block until no compile is queued or running (tests, tools, `qwasm run --tier jit`). */
void qu_compiler_wait_idle(qu_compiler *c);

/* The native-code cache's counters (quidditch_udf_cache_*). */
typedef struct qu_cache_stats {
  uint64_t hits, misses, evictions; /* quidditch_udf_cache_{hits,misses,evictions}_total */
  uint64_t rejected;  /* entries found corrupt, truncated or for another ABI/target: removed */
  uint64_t size_bytes, entries;     /* quidditch_udf_cache_size_bytes, _entries */
} qu_cache_stats;
void qu_compiler_cache_stats(qu_compiler *c, qu_cache_stats *out); /* zeros without a cache */

/* Where a version's code comes from now (GET /_udf/{name}). */
typedef enum qu_origin {
  QU_ORIGIN_INTERP,  /* "interpreter" */
  QU_ORIGIN_JIT,     /* "native-jit": compiled on this node */
  QU_ORIGIN_CACHE,   /* "native-cache": this node's cache */
  QU_ORIGIN_AOT      /* "native-aot": an uploaded, signed artifact */
} qu_origin;
const char *qu_origin_name(qu_origin o);

typedef enum qu_native_state {
  QU_NATIVE_OFF,       /* no compiler, or pinned to the interpreter */
  QU_NATIVE_QUEUED,    /* waiting for a pool thread */
  QU_NATIVE_COMPILING,
  QU_NATIVE_VERIFYING, /* native code runs beside the interpreter on the first blocks */
  QU_NATIVE_READY,     /* blocks run native code */
  QU_NATIVE_FAILED     /* compile failed, queue full, or a verification mismatch: REASON */
} qu_native_state;
const char *qu_native_state_name(qu_native_state s); /* "off", "queued", ..., "failed" */

/* One loaded version's tier, for GET /_udf/{name} and `qctl udf status`. */
typedef struct qu_tier_status {
  qu_origin origin;          /* the code new blocks start on */
  qu_native_state state;
  double compile_ms;         /* the background job's wall time (cache load or compile) */
  uint64_t compile_memory_bytes; /* its peak memory (qu_stats.compile_memory_bytes) */
  int cache_hit;             /* 1: the code came from the cache */
  uint32_t verified_blocks;  /* blocks compared so far / of VERIFY_TARGET */
  uint32_t verify_target;
  char reason[200];          /* why native code is not used ("" when it is, or not yet) */
  char artifact[200];        /* what became of an uploaded artifact ("" when none) */
} qu_tier_status;
void qu_udf_tier_status(qu_udf *u, qu_tier_status *out);

/* ---- artifacts (AOT files and cache entries share one container) ---- */

/* The container (little-endian; docs/udf.md §11):
**   0 magic "QDNATIV1" | 8 u32 format 1 | 12 u32 ABI version | 16 u32 flags (bit 0: AOT) |
**   20 u32 0 | 24 [32] module SHA-256 | 56 [32] triple, NUL-padded | 88 [64] CPU features,
**   NUL-padded | 152 u64 object length | 160 [32] SHA-256 of bytes 0..159 and the object |
**   192 object bytes
** It is untrusted input: qu_artifact_parse checks every field and the checksum. */
#define QU_ARTIFACT_HEADER 192
#define QU_ARTIFACT_MAX_OBJECT (256u << 20)
#define QU_ARTIFACT_AOT 1u

typedef struct qu_artifact {
  uint32_t abi_version, flags;
  uint8_t module_sha256[32];
  char triple[32];          /* NUL-terminated */
  char cpu_features[64];    /* NUL-terminated */
  const uint8_t *object;    /* borrowed from the parsed bytes */
  size_t object_len;
} qu_artifact;

/* Parse BYTES as a container into OUT (OBJECT points into BYTES). Errors: QB_MALFORMED ("native
** artifact: bad magic", "...: truncated (header says 4096 object bytes, 100 present)"),
** QB_CORRUPT ("native artifact: checksum mismatch"). Never reads past LEN. */
qb_code qu_artifact_parse(const uint8_t *bytes, size_t len, qu_artifact *out, qb_err *err);
/* Append the container of A (its OBJECT/OBJECT_LEN are the object) to OUT. QB_INVAL when a
** string does not fit, QB_LIMIT over QU_ARTIFACT_MAX_OBJECT, QB_NOMEM. */
qb_code qu_artifact_write(const qu_artifact *a, qb_buf *out, qb_err *err);

/* Ed25519 (libsodium). Key files (qu_keys_generate): DIR/NAME.pub holds 64 hex digits and a
** newline, DIR/NAME.key 128 (mode 0600). A signature is 64 bytes over the whole container
** (the file `qctl` uploads as `signature`, raw or as 128 hex digits). */
#define QU_SIG_BYTES 64
/* Make a key pair NAME.key/NAME.pub in DIR (created when needed); never overwrites: QB_CONFLICT
** when either file exists. PUB_PATH/KEY_PATH (may be NULL) get the paths (4096 bytes). */
qb_code qu_keys_generate(const char *dir, const char *name, char *pub_path, char *key_path,
                         qb_err *err);
/* Sign BYTES with the secret key file KEY_PATH: SIG gets QU_SIG_BYTES. */
qb_code qu_artifact_sign(const char *key_path, const uint8_t *bytes, size_t len,
                         uint8_t sig[QU_SIG_BYTES], qb_err *err);

/* AOT: the container of WASM's native code for TARGET ("x86_64-linux" or "aarch64-linux", any
** host can make either), flag AOT, no CPU features (the target's generic CPU), appended to OUT;
** sign it with qu_artifact_sign (`qwasm compile`, `qctl udf compile`; aot.c). Errors: QB_INVAL
** (unknown target), QB_MALFORMED/QB_INVALID (the module), QB_UNAVAILABLE (the JIT lacks an
** instruction the module uses), QB_NOMEM, QB_INTERNAL. */
qb_code qu_aot_compile(const uint8_t *wasm, size_t len, const char *target, qb_buf *out,
                       qb_err *err);
/* TARGET's canonical name ("x86_64-linux", "aarch64-linux"), or NULL when it is none of them. */
const char *qu_aot_target(const char *target);

/* Offer an uploaded artifact (and its detached signature, raw or hex; may be NULL) for version
** VERSION of NAME in R. The node uses it only when it is signed by a key in the compiler's
** trust list, parses, and matches the version's module SHA-256, the hook's ABI version, the
** node's triple and CPU features; it then goes into the native-code cache (flag AOT) and the
** version's compile job loads it from there. Otherwise the reason is logged (WARN) and kept
** for qu_udf_tier_status (`artifact`); the version compiles its WASM itself. Returns QB_OK
** when the artifact was accepted, else the reason's code (QB_UNAVAILABLE: no compiler or
** cache; QB_INVALID: unsigned, untrusted or wrong signature; QB_MALFORMED/QB_CORRUPT: the
** container; QB_CONFLICT: another module, ABI or target; QB_NOTFOUND: no such version).
** Call it before the version is first acquired (the server: right after the deploy). */
qb_code qu_registry_offer_artifact(qu_registry *r, const char *name, uint32_t version,
                                   const uint8_t *artifact, size_t len, const uint8_t *sig,
                                   size_t sig_len, qb_err *err);

/* ==== options, loaded versions, execution ==================================================== */

/* Sandbox and pool settings; a zeroed struct means the defaults shown. */
typedef struct qu_options {
  uint64_t fuel_per_doc;       /* 0 = 10,000,000 units (loop back-edges + calls) per document;
                                  a block gets n times this */
  uint32_t max_memory_pages;   /* 0 = 256 (16 MiB) per instance */
  uint32_t max_idle_instances; /* idle instances kept per version; 0 = 16 */
  uint32_t timing_sample;      /* time 1 block in N for the latency histogram; 0 = 64, 1 = all */
  int no_batch;                /* 1 = ignore `<export>__batch` exports (tests, benchmarks) */
  uint32_t block_timeout_ms;   /* wall clock one block may take; past it the call is
                                  interrupted (QB_LIMIT "ran past its deadline"); 0 = 1000 */
  uint32_t max_call_depth;     /* wasm frames per call; 0 = the engine's 10000 (deeper is a
                                  "call stack exhausted" trap) */
  /* Storage bounds (issue 13 #9): */
  uint64_t max_module_bytes;   /* a deploy's module; larger is QB_LIMIT; 0 = 10 MiB */
  uint32_t versions_kept;      /* per UDF: the newest N and the current one are kept, older
                                  ones pruned at each deploy; 0 = 10 */
  uint32_t idle_unload_ms;     /* a loaded current version (module, idle instances) unused
                                  this long is unloaded, reloaded on next use; 0 = 300000 */
  qu_compiler *compiler;       /* the native tier (qu_compiler_new); NULL = interpreter only */
} qu_options;

/* Load one version outside any registry (tests, tools, a node's _test entry): decode +
** validate WASM (not kept: the engine copies what it needs), check the manifest against it
** (qu_manifest_check). VERSION names it in messages ("name vN"; 0: just "name"). ENGINE must
** outlive the handle; M is copied. *OUT has one reference and its own statistics. No instance
** is made until the first run. Errors: those of qw_module_load and qu_manifest_check (wrapped:
** "udf custom_score v3: ..."), QB_NOMEM. Any thread. */
qb_code qu_udf_load(qw_engine *engine, const qu_manifest *m, uint32_t version,
                    const uint8_t *wasm, size_t len, const qu_options *opts, qu_udf **out,
                    qb_err *err);
/* References. Any thread. The last release frees the version (its instances and module). */
qu_udf *qu_udf_retain(qu_udf *u);
void qu_udf_release(qu_udf *u);
/* Borrowed from the handle, valid while it is held. */
const qu_manifest *qu_udf_manifest(const qu_udf *u);
const char *qu_udf_name(const qu_udf *u);
uint32_t qu_udf_version(const qu_udf *u);
const char *qu_udf_label(const qu_udf *u); /* "custom_score v3", for messages */
const qw_module *qu_udf_module(const qu_udf *u);
/* 1 when the module exports the batch form and the options allow it. */
int qu_udf_has_batch(const qu_udf *u);

/* A plan running on U. Takes a reference on U (released by qu_exec_free); PLAN is borrowed
** and must outlive the exec and be made from U's manifest. The instance is checked out
** lazily. One thread at a time. Errors: QB_INVAL (plan of another manifest), QB_NOMEM. */
qb_code qu_exec_new(qu_udf *u, const qu_plan *plan, qu_exec **out, qb_err *err);
/* Gives the instance back to U's pool; NULL does nothing. */
void qu_exec_free(qu_exec *x);
/* ON: the blocks X gets have their missing values filled: in every numeric column, where
** PRESENT is 0 the value already is the colspec's missing value (0 without one), as the query
** layer's block reads leave it (query.h qq_col). The native tier then gives such columns to
** its block driver as they are instead of copying them. Default off. */
void qu_exec_set_filled(qu_exec *x, int on);

/* Run the UDF over the N documents of IN into OUT: one qw_func_call_raw per document on a
** preallocated slot array (no allocation, no lookup per call), or one call of
** `<export>__batch` per block. Strings are copied into the guest with qd_alloc after a
** qd_reset per block (a qd_alloc that gives 0 is retried once on a fresh instance). The block
** gets fuel_per_doc * (n + 1) of fuel. N == 0 does nothing. Errors: QB_TRAP / QB_LIMIT with
** "UDF custom_score v3 trapped: integer divide by zero", "UDF custom_score v3 exceeded its
** fuel budget" (the instance is discarded, never reused; the next run gets a fresh one),
** QB_INVAL (a malformed block), QB_NOMEM. OUT is undefined after an error. */
qb_code qu_exec_run(qu_exec *x, const qu_block *in, qu_out *out, qb_err *err);

/* Run U once with ARGS_BODY (`{"args": {"boost_factor": 1.2, ...}}` or the args object
** itself; DESIGN §6 POST /_udf/{name}/_test): each arg is bound like a search param; a field
** source reads ARGS[field] (absent: missing); "_score" reads ARGS["_score"] (default 0).
** Appends the result's JSON (a number, a string, or true/false for a filter) to RESULT_JSON.
** Errors: those of qu_plan_new and qu_exec_run. Any thread. */
qb_code qu_udf_test(qu_udf *u, const struct json_t *args_body, qb_buf *result_json,
                    qb_err *err);

/* ==== statistics (for /metrics: the server formats them) ===================================== */

/* Execution tiers, the `mode` label. */
typedef enum qu_tier { QU_TIER_INTERP, QU_TIER_NATIVE, QU_TIER_COUNT } qu_tier;
const char *qu_tier_name(qu_tier t); /* "interpreter", "native" */

/* Histogram bucket upper bounds in seconds (Prometheus `le`), +Inf implied after the last. */
#define QU_HIST_BUCKETS 12
extern const double qu_hist_bounds[QU_HIST_BUCKETS];

/* A snapshot of one UDF's counters (summed over its versions in a registry). Durations are of
** one call per document (a sampled block's time divided by its documents). */
typedef struct qu_stats {
  const char *name;                          /* borrowed for the callback */
  qu_tier mode;                              /* tier running now: quidditch_udf_execution_mode */
  uint32_t version;                          /* current (registry) or loaded version */
  uint64_t calls[QU_TIER_COUNT];             /* documents evaluated: quidditch_udf_calls_total */
  uint64_t errors[QU_TIER_COUNT];            /* failed blocks (traps, budgets) */
  uint64_t blocks[QU_TIER_COUNT];            /* qu_exec_run calls */
  uint64_t hist[QU_TIER_COUNT][QU_HIST_BUCKETS + 1]; /* sampled observations per bucket
                                                       (not cumulative; last = +Inf) */
  uint64_t hist_count[QU_TIER_COUNT];        /* sampled observations */
  double hist_sum_seconds[QU_TIER_COUNT];
  uint64_t module_bytes;                     /* wasm bytes of loaded versions: {type="module"} */
  uint64_t instance_bytes;                   /* live instances' memory: {type="instances"} */
  uint64_t instances;                        /* live instances (pooled + in use) */
  uint64_t compiles;           /* native code installed (compiled or loaded) */
  uint64_t compile_failures;   /* compiles that failed (quidditch_udf_compilation_status 0) */
  uint64_t verify_mismatches;  /* native code that disagreed with the interpreter */
  double compile_seconds;      /* the last compile's (or load's) wall time */
  uint64_t compile_memory_bytes; /* the last compile's (or load's) peak memory: the process's
                                    RSS high-water growth during it (an upper bound) */
} qu_stats;

/* Snapshot of a standalone handle's counters. */
void qu_udf_stats(const qu_udf *u, qu_stats *out);

/* ==== the registry ============================================================================ */

/* One stored version. Strings are copies in the struct. */
typedef struct qu_version_info {
  char name[65];
  uint32_t version;        /* 1, 2, ... */
  int current;             /* 1 for the version searches use */
  char sha256[65];         /* lowercase hex of the wasm bytes */
  uint64_t size_bytes;     /* wasm bytes */
  int64_t created_ms;      /* wall clock, ms since the epoch */
  qu_kind kind;
  char export_name[65];
} qu_version_info;

/* Open (creating when needed) the registry at PATH, a SQLite file in WAL mode. ENGINE must
** outlive the registry; OPTS (may be NULL) applies to every version loaded from it. Errors:
** QB_IO (cannot open/create), QB_CORRUPT (not our schema), QB_NOMEM. */
qb_code qu_registry_open(qw_engine *engine, const char *path, const qu_options *opts,
                         qu_registry **out, qb_err *err);
/* Close; every qu_udf acquired from it must have been released. NULL does nothing. */
void qu_registry_close(qu_registry *r);

/* Validate and store a new version of the UDF MANIFEST_JSON names (completed from the
** signature as qu_manifest_complete does; NAME, when not NULL, overrides the manifest's) and
** make it current: v1 for a new name, else one past the highest version ever stored. Nothing
** is stored when a check fails. Stores the wasm, the completed manifest, the SHA-256, the size
** and the time. INFO (may be NULL) describes the new version. Logs
** "UDF deployed: custom_score (v3, 75 KB)". Errors: those of qu_manifest_complete/_check and
** qw_module_load, QB_IO. */
qb_code qu_registry_deploy(qu_registry *r, const char *name, const char *manifest_json,
                           size_t manifest_len, const uint8_t *wasm, size_t len,
                           qu_version_info *info, qb_err *err);
/* Store VERSION exactly as given (a data node mirroring its coordinator's versions); make it
** current when CURRENT. Storing the same bytes again is a no-op; different bytes under an
** existing version are QB_CONFLICT. */
qb_code qu_registry_install(qu_registry *r, const char *manifest_json, size_t manifest_len,
                            uint32_t version, const uint8_t *wasm, size_t len, int current,
                            qb_err *err);

/* Called once per row by list/versions; INFO is valid for the call only. Non-zero stops. */
typedef int (*qu_version_fn)(void *ud, const qu_version_info *info);
/* Every UDF's current version, by name. */
qb_code qu_registry_list(qu_registry *r, qu_version_fn fn, void *ud, qb_err *err);
/* Every version of NAME, oldest first. QB_NOTFOUND when the name is unknown. */
qb_code qu_registry_versions(qu_registry *r, const char *name, qu_version_fn fn, void *ud,
                             qb_err *err);
/* VERSION of NAME (0 = current) into INFO; MANIFEST_JSON and WASM (each may be NULL) get the
** stored manifest text and bytes appended. QB_NOTFOUND: "udf x: no such udf" / "udf x: no
** version v7". */
qb_code qu_registry_get(qu_registry *r, const char *name, uint32_t version,
                        qu_version_info *info, qb_buf *manifest_json, qb_buf *wasm,
                        qb_err *err);
/* Make VERSION of NAME current. QB_NOTFOUND when absent. */
qb_code qu_registry_rollback(qu_registry *r, const char *name, uint32_t version, qb_err *err);
/* Delete NAME and all its versions. Handles already acquired keep working until released.
** QB_NOTFOUND when absent. */
qb_code qu_registry_delete(qu_registry *r, const char *name, qb_err *err);

/* The loaded version of NAME (VERSION 0 = the current one) as a pinned handle with one
** reference (qu_udf_release). Loads and caches the module on first use; later calls share it.
** Errors: QB_NOTFOUND ("udf x: no such udf"), the load errors. Any thread. */
qb_code qu_registry_acquire(qu_registry *r, const char *name, uint32_t version, qu_udf **out,
                            qb_err *err);

/* The tier of VERSION (0 = current) of NAME on this node: the loaded version's
** qu_udf_tier_status, or state "off" with reason "not loaded on this node yet" (and what became
** of an uploaded artifact). QB_NOTFOUND when the name is unknown. */
qb_code qu_registry_tier_status(qu_registry *r, const char *name, uint32_t version,
                                qu_tier_status *out, qb_err *err);

/* Statistics of every UDF seen since open and not deleted since (calls survive deploys and
** rollbacks; a deleted UDF is left out until it is deployed again). FN is called with the
** registry's lock held: do not call back into the registry. */
typedef void (*qu_stats_fn)(void *ud, const qu_stats *s);
void qu_registry_stats(qu_registry *r, qu_stats_fn fn, void *ud);

#endif
