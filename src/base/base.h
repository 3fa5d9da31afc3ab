/* base.h: the bottom layer every other layer uses: error codes and messages, the allocator
** hook, arenas, growable buffers and the log sink. Depends on nothing but the C library, so
** base + wasm (libqwasm) works as a library on its own.
**
** Threads: qb_err/qb_buf/qb_arena are owned by one thread at a time. The allocator hook and
** the log sink are process-wide; install them once at start-up, before threads run. */
#ifndef QB_BASE_H
#define QB_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* ---- errors ------------------------------------------------------------------------------- */

/* One table of codes (libuv's UV_ERRNO_MAP): yields the enum and qb_code_name. Two codes are
** easy to confuse: QB_PARSE is content a client sent that is not even well-formed (a request
** body or manifest that is not JSON: the client's fault), QB_CORRUPT is data we stored or a
** peer sent us that is damaged (a store, a segment, a shard result: ours to look at). The HTTP
** status and Elasticsearch type of each code live in src/server/errors.c. */
#define QB_ERRORS(X)                                                                             \
  X(OK) X(NOMEM) X(INVAL) X(MALFORMED) X(INVALID) X(TRAP) X(LIMIT) X(NOTFOUND) X(CONFLICT)      \
  X(IO) X(CORRUPT) X(UNAVAILABLE) X(INTERNAL) X(UNLINKABLE) X(EXHAUSTED) X(PARSE) \
  X(SYNTAX) /* a query string (query_string, ?q=) that does not parse */

typedef enum qb_code {
#define QB__X(n) QB_##n,
  QB_ERRORS(QB__X)
#undef QB__X
  QB_CODE_COUNT
} qb_code;

/* A code to branch on and a reason for a human. The caller owns it, so reporting never
** allocates. Messages are lowercase, no final period, and name the thing, place and rule. */
typedef struct qb_err {
  qb_code code;
  char msg[240];
} qb_err;

/* "OK", "NOMEM", ... for CODE; "?" when out of range. */
const char *qb_code_name(qb_code code);

/* Set ERR (may be NULL) to CODE and the formatted message; returns CODE, so a caller can
** write `return qb_fail(err, QB_MALFORMED, "...", ...)`. */
qb_code qb_fail(qb_err *err, qb_code code, const char *fmt, ...) QB_PRINTF(3, 4);
qb_code qb_failv(qb_err *err, qb_code code, const char *fmt, va_list ap);

/* Put the formatted prefix in front of ERR's message, keeping its code (truncates safely). */
void qb_wrap(qb_err *err, const char *fmt, ...) QB_PRINTF(2, 3);

/* Reset ERR to QB_OK and an empty message. */
void qb_err_clear(qb_err *err);

/* Release builds: a "can't happen" branch returns QB_INTERNAL naming the source line. */
#define QB_NEVER(err) qb_fail((err), QB_INTERNAL, "internal error at %s:%d", __FILE__, __LINE__)

/* Invariants a file's comments state, checked where QB_ASSERTS is defined (the build defines
** it in Debug and sanitizer builds, and in Release with -DQD_ASSERTS=ON): a false COND prints
** "assertion failed: COND (file:line, function)" on stderr and aborts. Elsewhere COND is
** compiled (so it stays type-checked and its helpers count as used) but never evaluated: it
** may be costly, and must have no side effects.
** QB_ASSERT is for the program's own invariants; untrusted input gets qb_fail, and a
** can't-happen branch Release must survive gets QB_NEVER. QB_IF_ASSERTS(x) keeps X (a
** declaration or statement that only the checks use, e.g. a lock owner) in checked builds. */
#ifdef QB_ASSERTS
#define QB_ASSERT(cond) ((cond) ? (void)0 : qb_assert_fail(#cond, __FILE__, __LINE__, __func__))
#define QB_IF_ASSERTS(x) x
#else
#define QB_ASSERT(cond) ((void)(0 && (cond)))
#define QB_IF_ASSERTS(x)
#endif
_Noreturn void qb_assert_fail(const char *cond, const char *file, int line, const char *func);

/* ---- allocation --------------------------------------------------------------------------- */

/* One function for malloc, realloc and free, shaped like lua_Alloc: NSIZE == 0 frees PTR
** (returns NULL); otherwise (re)allocates PTR from OSIZE to NSIZE bytes and returns NULL on
** failure, leaving PTR untouched. OSIZE is exact when PTR != NULL, so a hook can count bytes
** without hidden headers. */
typedef void *(*qb_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* Install the process-wide hook (NULL restores the default, built on realloc/free). */
void qb_alloc_set(qb_alloc_fn fn, void *ud);

/* Through the hook. qb_malloc/qb_calloc return NULL on failure or on size overflow;
** qb_free(NULL, n) does nothing. qb_calloc zeroes. */
void *qb_malloc(size_t size);
void *qb_calloc(size_t count, size_t size);
void *qb_realloc(void *ptr, size_t osize, size_t nsize);
void qb_free(void *ptr, size_t size);

/* A malloc/free pair over the hook for C libraries that take allocator callbacks and never
** pass a size back (jansson: json_set_alloc_funcs(qb_sized_malloc, qb_sized_free), installed
** once at start-up by each program and test, before any JSON exists). Each block carries its
** size in a 16-byte header, so its bytes (header included) count in qb_alloc_live_bytes and
** fail-after-N reaches it. qb_sized_free(NULL) does nothing; never mix with qb_free. */
void *qb_sized_malloc(size_t size);
void qb_sized_free(void *ptr);

/* Total bytes currently allocated through the hook (all threads: the sum of per-thread
** counters, exact when no other thread allocates meanwhile). */
size_t qb_alloc_live_bytes(void);

/* How many allocations failed in the calling thread so far. A library that reports running out
** of memory as something else (jansson's parser says "string expected") is told apart by
** comparing this before and after the call. */
uint64_t qb_alloc_failures(void);

/* Test hook: make the Nth allocation from now fail (1 = the next one); 0 disables. Used by
** the OOM tests (SQLite's test_malloc.c). Returns how many allocations happened since the last
** call to qb_alloc_fail_after while it was armed (n > 0; unarmed, allocations are not counted). */
uint64_t qb_alloc_fail_after(uint64_t n);

/* ---- arenas ------------------------------------------------------------------------------- */

/* Bump allocator for things that die together (a module's metadata, a request's plan). Nothing
** in an arena is freed on its own. Zero-initialise, or qb_arena_init. */
typedef struct qb_arena_chunk qb_arena_chunk;
typedef struct qb_arena {
  qb_arena_chunk *head;  /* newest chunk, NULL when empty */
  size_t used_bytes;     /* total bytes handed out */
  size_t limit_bytes;    /* 0 = no limit; past it allocation fails as out of memory */
} qb_arena;

void qb_arena_init(qb_arena *a);
/* SIZE bytes aligned to 16, zeroed; NULL when out of memory or past the limit. */
void *qb_arena_alloc(qb_arena *a, size_t size);
/* COUNT*SIZE bytes, zeroed; NULL on overflow too. */
void *qb_arena_array(qb_arena *a, size_t count, size_t size);
/* Copy of the N bytes at S plus a terminating NUL. */
char *qb_arena_strndup(qb_arena *a, const char *s, size_t n);
char *qb_arena_strdup(qb_arena *a, const char *s);
void qb_arena_fini(qb_arena *a);

/* ---- growable byte buffers ---------------------------------------------------------------- */

typedef struct qb_buf {
  char *data;     /* NUL-terminated when non-NULL */
  size_t len;     /* bytes used, not counting the NUL */
  size_t cap;     /* bytes allocated */
  int failed;     /* sticky: an append ran out of memory; later appends do nothing */
} qb_buf;

void qb_buf_init(qb_buf *b);
void qb_buf_fini(qb_buf *b);
/* Appends return QB_OK or QB_NOMEM (and set b->failed). */
qb_code qb_buf_append(qb_buf *b, const void *p, size_t n);
qb_code qb_buf_puts(qb_buf *b, const char *s);
qb_code qb_buf_printf(qb_buf *b, const char *fmt, ...) QB_PRINTF(2, 3);
qb_code qb_buf_reserve(qb_buf *b, size_t extra);
void qb_buf_reset(qb_buf *b);

/* ---- sizes -------------------------------------------------------------------------------- */

/* N bytes for people, into OUT (returned): "521 B" (exact below 1 KiB), "2.3 KiB", "15.0 MiB". */
#define QB_SIZE_STR 16
const char *qb_size_str(uint64_t n, char out[QB_SIZE_STR]);

/* ---- logging ------------------------------------------------------------------------------ */

typedef enum qb_level { QB_DEBUG, QB_INFO, QB_WARN, QB_ERROR } qb_level;

/* The sink receives one formatted line (no trailing newline). Until one is installed, qb_log
** does nothing, so the engine used as a library stays silent. */
typedef void (*qb_log_fn)(void *ud, qb_level level, const char *line);

void qb_log_set(qb_log_fn fn, void *ud, qb_level min_level);
/* The stock sink: "2026-05-15T10:22:03.123Z [NODE] LEVEL: msg" to stderr. NODE may be NULL. */
void qb_log_stderr(void *node_name, qb_level level, const char *line);
int qb_log_enabled(qb_level level);
void qb_log(qb_level level, const char *fmt, ...) QB_PRINTF(2, 3);
const char *qb_level_name(qb_level level);
/* Tag this thread's log lines (with the id of the request it runs): while set, each line
** qb_log writes on this thread starts "[request TAG] ". FN(ARG) gives the tag only when a line
** is written, so a request that logs nothing pays nothing. FN NULL clears the tag. */
typedef const char *(*qb_log_tag_fn)(void *arg);
void qb_log_set_tag(qb_log_tag_fn fn, void *arg);

/* ---- time --------------------------------------------------------------------------------- */

/* Monotonic nanoseconds, and wall-clock milliseconds since the epoch. */
uint64_t qb_now_ns(void);
int64_t qb_wall_ms(void);

/* ---- numbers as text ----------------------------------------------------------------------- */

/* V (finite) with the fewest significant digits (1..17) that strtod reads back as V, laid out as
** JavaScript prints numbers (fixed notation for 1e-6 <= |V| < 1e21, else d.ddde+N), with ".0"
** on an integral value: 1.36, 100.0, 0.000001, 2.5e-7, 6.02e+23. NUL-terminated; the length. */
#define QB_REAL_TEXT 48
int qb_real_text(double v, char out[QB_REAL_TEXT]);

/* V in decimal, as printf's "%lld" writes it; NUL-terminated; the length. */
#define QB_INT_TEXT 24
int qb_int_text(int64_t v, char out[QB_INT_TEXT]);

/* S (N bytes, passed through as they are: the caller has checked it is UTF-8) appended to B as
** a JSON string: quoted, with \" \\ \n \r \t \b \f and \u00XX for the other control bytes, as
** jansson's compact writer escapes (without JSON_ENSURE_ASCII). The one string writer of the
** JSON writer (query/json_write.c) and of hits the query layer writes as text (search.c). */
void qb_json_string(qb_buf *b, const char *s, size_t n);
/* Per byte, how a JSON string holds it: 1 as it is (printable ASCII but '"' and '\\'), 2 a
** byte of a UTF-8 sequence (0x80..0xff), 0 one to escape or end on (a control byte, '"', '\\').
** Shared by the string writer and the query layer's fast reader (json_fast.c). */
extern const unsigned char qb_json_plain[256];

#endif
