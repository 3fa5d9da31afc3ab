/* quidditch.h: the Quidditch UDF SDK for C, guest side (ABI v1, docs/udf-authoring.md).
** One header, nothing to link: it gives a UDF module the exports the host expects (qd_alloc,
** qd_reset, qd_abi_version), string helpers, and QD_BATCH() to generate a UDF's batch form.
** Works with `clang --target=wasm32 -nostdlib -Wl,--no-entry` (no libc at all) and with
** wasi-libc (`--target=wasm32-wasi -mexec-model=reactor`). Include it from any number of files:
** the allocator is defined weak, so the linker keeps one copy.
**
** Invariant of the allocator: every pointer qd_alloc returned stays valid, and is never handed
** out twice, until the next qd_reset; nothing is freed on its own (a bump allocator). */
#ifndef QUIDDITCH_H
#define QUIDDITCH_H

#if !defined(__wasm32__)
#error "quidditch.h targets wasm32: build with clang --target=wasm32 or --target=wasm32-wasi"
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* C++ UDFs: export with extern "C" QD_EXPORT(name) ... too */
#endif

#define QD_ABI_VERSION 1

/* ---- Exports ------------------------------------------------------------------------------ */

/* Put in front of a function definition to export it under NAME:
**   QD_EXPORT(custom_score) double custom_score(double bm25, double boost, int32_t d, int32_t t)
** The host calls it by that name (the manifest's "export"). */
#define QD_EXPORT(name) __attribute__((export_name(#name), used))

/* ---- Strings ------------------------------------------------------------------------------- */

/* A string parameter arrives as two parameters (const char *ptr, uint32_t len): UTF-8 bytes
** in the module's memory, not NUL-terminated, read-only, valid until qd_reset. When len is 0,
** ptr may be anything. qd_str bundles the two for helpers. */
typedef struct qd_str {
  const char *ptr;
  uint32_t len;
} qd_str;

/* A string result is an i64 (uint64_t in C): (ptr << 32) | len. The bytes must stay valid until
** the module is called again (the host copies them at once); qd_alloc'ed memory always does.
** QD_STR_NULL means "no value" (the field is left out of the hit's `fields`). */
typedef uint64_t qd_strret;
#define QD_STR_NULL ((qd_strret)UINT64_MAX)

static inline qd_str qd_str_of(const char *ptr, uint32_t len) {
  qd_str s = {ptr, len};
  return s;
}

/* Pack bytes at PTR (in this module's memory) as a string result; no copy. */
static inline qd_strret qd_str_return(const void *ptr, uint32_t len) {
  return ((uint64_t)(uintptr_t)ptr << 32) | (uint64_t)len;
}

/* ---- Allocator ------------------------------------------------------------------------------ */

/* Bytes of the static arena qd_alloc serves first (in .bss: it costs memory pages, not module
** size). Define before including to change it. Bigger requests take more chunks, see below. */
#ifndef QD_ARENA_SIZE
#define QD_ARENA_SIZE 65536
#endif

/* Exported: LEN bytes, 8-byte aligned, valid until qd_reset; 0 when LEN < 0 or memory is
** exhausted (the host then fails the call with a clear error). Also for the UDF's own use,
** e.g. to build a string result. */
QD_EXPORT(qd_alloc) int32_t qd_alloc(int32_t len);

/* Exported: forget every qd_alloc since the last reset. The host calls it between blocks of
** documents; the memory is reused, never returned. */
QD_EXPORT(qd_reset) void qd_reset(void);

/* Exported: the ABI this module speaks (1). The host treats a module without it as ABI 1. */
QD_EXPORT(qd_abi_version) int32_t qd_abi_version(void);

/* qd_alloc typed as a pointer, for C callers. */
static inline void *qd_alloc_bytes(uint32_t len) {
  return (void *)(uintptr_t)qd_alloc(len > INT32_MAX ? -1 : (int32_t)len);
}

/* Copy LEN bytes into qd_alloc'ed memory and return them as a string result. */
static inline qd_strret qd_str_dup(const void *ptr, uint32_t len) {
  char *dst = (char *)qd_alloc_bytes(len);
  if (!dst) __builtin_trap(); /* out of memory: trap rather than return garbage */
  __builtin_memcpy(dst, ptr, len);
  return qd_str_return(dst, len);
}

/* The allocator hands out a chain of chunks; each starts with this header and its data follows.
** The first chunk is a static arena. Later ones come from wasi-libc's malloc when the module is
** built with wasi-libc (its malloc owns the memory it grows, so we must not grow behind its
** back), else from memory.grow. Chunks are kept for reuse after qd_reset and never freed.
**
** Which one is decided at compile time by __wasi__ (clang --target=wasm32-wasi), not by a weak
** reference to malloc: a weak declaration here would make the UDF's own malloc calls weak too,
** so wasm-ld would not pull malloc out of libc.a and every call to it would become
** `unreachable`. Define QD_NO_LIBC_MALLOC to use memory.grow under wasm32-wasi -nostdlib. */
#if defined(__wasi__) && !defined(QD_NO_LIBC_MALLOC)
#define QD__LIBC_MALLOC 1
extern void *malloc(size_t);
#else
#define QD__LIBC_MALLOC 0
#endif
typedef struct qd__chunk {
  struct qd__chunk *next;
  uint32_t size; /* bytes of data after the 16-byte header */
  uint32_t pad[2];
} qd__chunk;

__attribute__((weak, aligned(16))) unsigned char qd__arena[QD_ARENA_SIZE];
__attribute__((weak)) qd__chunk *qd__cur;  /* chunk being filled; NULL before the first call */
__attribute__((weak)) uint32_t qd__off;    /* bytes used in *qd__cur's data */

__attribute__((weak)) qd__chunk *qd__chunk_new(uint32_t want) {
  qd__chunk *c;
  if (want > 0x7fff0000u) return 0;
  if (QD__LIBC_MALLOC) {
#if QD__LIBC_MALLOC
    c = (qd__chunk *)malloc(sizeof(qd__chunk) + want);
    if (!c) return 0;
    c->size = want;
#endif
  } else {
    uint32_t pages = (uint32_t)((sizeof(qd__chunk) + (uint64_t)want + 0xffff) >> 16);
    size_t old = __builtin_wasm_memory_grow(0, pages);
    if (old == (size_t)-1) return 0;
    c = (qd__chunk *)(uintptr_t)(old << 16);
    c->size = (uint32_t)((pages << 16) - sizeof(qd__chunk));
  }
  c->next = 0;
  return c;
}

__attribute__((weak)) int32_t qd_alloc(int32_t len) {
  uint32_t need;
  if (len < 0) return 0;
  need = ((uint32_t)len + 7u) & ~7u;
  if (!qd__cur) {
    qd__cur = (qd__chunk *)qd__arena;
    qd__cur->size = QD_ARENA_SIZE - sizeof(qd__chunk);
    qd__off = 0;
  }
  for (;;) {
    if (qd__cur->size - qd__off >= need) {
      unsigned char *p = (unsigned char *)(qd__cur + 1) + qd__off;
      qd__off += need;
      return (int32_t)(uintptr_t)p;
    }
    if (!qd__cur->next) {
      /* at least double what the chain can hold, so a growing workload takes few chunks */
      uint32_t want = need > qd__cur->size * 2u ? need : qd__cur->size * 2u;
      if (!(qd__cur->next = qd__chunk_new(want)) && !(qd__cur->next = qd__chunk_new(need)))
        return 0;
    }
    qd__cur = qd__cur->next;
    qd__off = 0;
  }
}

__attribute__((weak)) void qd_reset(void) {
  qd__cur = (qd__chunk *)qd__arena; /* the arena is always the chain's first chunk */
  if (!qd__cur->size) qd__cur->size = QD_ARENA_SIZE - sizeof(qd__chunk);
  qd__off = 0;
}

__attribute__((weak)) int32_t qd_abi_version(void) { return QD_ABI_VERSION; }

/* ---- memcpy & co. without libc ------------------------------------------------------------- */

/* clang turns struct copies, array zeroing, some loops and __builtin_memcpy into calls to these;
** without libc (--target=wasm32 -nostdlib) nobody else defines them. Weak and byte-wise (the
** no_builtin attribute stops clang from turning these loops back into calls to themselves).
** With --target=wasm32-wasi, wasi-libc's faster ones are used instead. Define
** QD_NO_MEM_FUNCTIONS to supply your own. */
#if !defined(__wasi__) && !defined(QD_NO_MEM_FUNCTIONS)
__attribute__((weak, no_builtin)) void *memcpy(void *__restrict dst,
                                              const void *__restrict src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  while (n--) *d++ = *s++;
  return dst;
}
__attribute__((weak, no_builtin)) void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  if (d < s)
    while (n--) *d++ = *s++;
  else
    while (n--) d[n] = s[n];
  return dst;
}
__attribute__((weak, no_builtin)) void *memset(void *dst, int c, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
__attribute__((weak, no_builtin)) int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}
#endif

/* ---- Math without libc (each is one WebAssembly instruction) --------------------------------- */

static inline double qd_sqrt(double x) { return __builtin_sqrt(x); }
static inline double qd_fabs(double x) { return __builtin_fabs(x); }
static inline double qd_floor(double x) { return __builtin_floor(x); }
static inline double qd_ceil(double x) { return __builtin_ceil(x); }
static inline double qd_trunc(double x) { return __builtin_trunc(x); }
static inline double qd_nearest(double x) { return __builtin_rint(x); }
/* f64.min/f64.max: NaN if either is NaN (unlike fmin/fmax) */
static inline double qd_min(double a, double b) { return __builtin_wasm_min_f64(a, b); }
static inline double qd_max(double a, double b) { return __builtin_wasm_max_f64(a, b); }

/* ---- Batch form ------------------------------------------------------------------------------ */

/* QD_BATCH(name, R, T1, ..., Tk) defines and exports `name__batch(n, args, out)` calling the
** scalar UDF `name` for n documents:
**   args: k column pointers (uint32_t each); column j holds n values of type Tj
**   out:  n values of type R
** Types are ABI tokens: i32 i64 f32 f64, and str (a column of qd_str {ptr,len}, passed on to
** `name` as two parameters; as R: a column of packed qd_strret). Up to 8 parameters.
**   QD_BATCH(custom_score, f64, f64, f64, i32, i32)
** The kind-named forms say what the UDF is; QD_BATCH_FILTER's result is i32 (0 drops). */
#define QD_BATCH(name, R, ...) QD__CAT(QD__BATCH, QD__NARGS(__VA_ARGS__))(name, R, __VA_ARGS__)
#define QD_BATCH_SCORE(name, R, ...) QD_BATCH(name, R, __VA_ARGS__)
#define QD_BATCH_METRIC(name, R, ...) QD_BATCH(name, R, __VA_ARGS__)
#define QD_BATCH_TRANSFORM(name, R, ...) QD_BATCH(name, R, __VA_ARGS__)
#define QD_BATCH_FILTER(name, ...) QD_BATCH(name, i32, __VA_ARGS__)

#define QD__CT_i32 int32_t
#define QD__CT_i64 int64_t
#define QD__CT_f32 float
#define QD__CT_f64 double
#define QD__CT_str qd_str
#define QD__RT_i32 int32_t
#define QD__RT_i64 int64_t
#define QD__RT_f32 float
#define QD__RT_f64 double
#define QD__RT_str qd_strret
#define QD__ARG_i32(x) x
#define QD__ARG_i64(x) x
#define QD__ARG_f32(x) x
#define QD__ARG_f64(x) x
#define QD__ARG_str(x) (x).ptr, (x).len

#define QD__CAT(a, b) QD__CAT_(a, b)
#define QD__CAT_(a, b) a##b
#define QD__NARGS(...) QD__NARGS_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define QD__NARGS_(a1, a2, a3, a4, a5, a6, a7, a8, N, ...) N

#define QD__COL(j, t) const QD__CT_##t *c##j = (const QD__CT_##t *)(uintptr_t)args[j - 1];
#define QD__ARG(j, t) QD__ARG_##t(c##j[i])
#define QD__HEAD(name, R)                                                                   \
  QD_EXPORT(name##__batch) void name##__batch(int32_t n, const uint32_t *args, QD__RT_##R *out)
#define QD__LOOP(name, ...) for (int32_t i = 0; i < n; i++) out[i] = name(__VA_ARGS__);

#define QD__BATCH1(name, R, t1) \
  QD__HEAD(name, R) { QD__COL(1, t1) QD__LOOP(name, QD__ARG(1, t1)) }
#define QD__BATCH2(name, R, t1, t2)                 \
  QD__HEAD(name, R) {                               \
    QD__COL(1, t1) QD__COL(2, t2)                   \
    QD__LOOP(name, QD__ARG(1, t1), QD__ARG(2, t2))  \
  }
#define QD__BATCH3(name, R, t1, t2, t3)                             \
  QD__HEAD(name, R) {                                               \
    QD__COL(1, t1) QD__COL(2, t2) QD__COL(3, t3)                    \
    QD__LOOP(name, QD__ARG(1, t1), QD__ARG(2, t2), QD__ARG(3, t3))  \
  }
#define QD__BATCH4(name, R, t1, t2, t3, t4)                                         \
  QD__HEAD(name, R) {                                                               \
    QD__COL(1, t1) QD__COL(2, t2) QD__COL(3, t3) QD__COL(4, t4)                     \
    QD__LOOP(name, QD__ARG(1, t1), QD__ARG(2, t2), QD__ARG(3, t3), QD__ARG(4, t4))  \
  }
#define QD__BATCH5(name, R, t1, t2, t3, t4, t5)                                       \
  QD__HEAD(name, R) {                                                                 \
    QD__COL(1, t1) QD__COL(2, t2) QD__COL(3, t3) QD__COL(4, t4) QD__COL(5, t5)        \
    QD__LOOP(name, QD__ARG(1, t1), QD__ARG(2, t2), QD__ARG(3, t3), QD__ARG(4, t4),    \
             QD__ARG(5, t5))                                                          \
  }
#define QD__BATCH6(name, R, t1, t2, t3, t4, t5, t6)                                        \
  QD__HEAD(name, R) {                                                                      \
    QD__COL(1, t1) QD__COL(2, t2) QD__COL(3, t3) QD__COL(4, t4) QD__COL(5, t5)             \
    QD__COL(6, t6)                                                                         \
    QD__LOOP(name, QD__ARG(1, t1), QD__ARG(2, t2), QD__ARG(3, t3), QD__ARG(4, t4),         \
             QD__ARG(5, t5), QD__ARG(6, t6))                                               \
  }
#define QD__BATCH7(name, R, t1, t2, t3, t4, t5, t6, t7)                                    \
  QD__HEAD(name, R) {                                                                      \
    QD__COL(1, t1) QD__COL(2, t2) QD__COL(3, t3) QD__COL(4, t4) QD__COL(5, t5)             \
    QD__COL(6, t6) QD__COL(7, t7)                                                          \
    QD__LOOP(name, QD__ARG(1, t1), QD__ARG(2, t2), QD__ARG(3, t3), QD__ARG(4, t4),         \
             QD__ARG(5, t5), QD__ARG(6, t6), QD__ARG(7, t7))                               \
  }
#define QD__BATCH8(name, R, t1, t2, t3, t4, t5, t6, t7, t8)                                \
  QD__HEAD(name, R) {                                                                      \
    QD__COL(1, t1) QD__COL(2, t2) QD__COL(3, t3) QD__COL(4, t4) QD__COL(5, t5)             \
    QD__COL(6, t6) QD__COL(7, t7) QD__COL(8, t8)                                           \
    QD__LOOP(name, QD__ARG(1, t1), QD__ARG(2, t2), QD__ARG(3, t3), QD__ARG(4, t4),         \
             QD__ARG(5, t5), QD__ARG(6, t6), QD__ARG(7, t7), QD__ARG(8, t8))               \
  }

#ifdef __cplusplus
}
#endif
#endif /* QUIDDITCH_H */
