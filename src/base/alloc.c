/* alloc.c: the process-wide allocator hook (lua_Alloc's shape) plus live-byte accounting and a
** fail-after-N switch for the OOM tests, and the sized malloc/free pair for C libraries that
** cannot pass sizes back. Every allocation in the tree goes through here. */
#include "base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

static qb_alloc_fn hook = default_alloc;
static void *hook_ud;
static _Atomic size_t live;
static _Atomic uint64_t fail_at;  /* 0 = off; else the count at which allocation fails */
static _Atomic uint64_t count;
static _Thread_local uint64_t failures; /* this thread's failed allocations */

void qb_alloc_set(qb_alloc_fn fn, void *ud) {
  hook = fn ? fn : default_alloc;
  hook_ud = fn ? ud : NULL;
}

uint64_t qb_alloc_fail_after(uint64_t n) {
  uint64_t seen = atomic_exchange(&count, 0);
  atomic_store(&fail_at, n);
  return seen;
}

static int should_fail(void) {
  uint64_t c = atomic_fetch_add_explicit(&count, 1, memory_order_relaxed) + 1;
  uint64_t f = atomic_load_explicit(&fail_at, memory_order_relaxed);
  return f != 0 && c >= f;
}

void *qb_realloc(void *ptr, size_t osize, size_t nsize) {
  void *p;
  if (nsize == 0) {
    if (ptr) {
      hook(hook_ud, ptr, osize, 0);
      atomic_fetch_sub_explicit(&live, osize, memory_order_relaxed);
    }
    return NULL;
  }
  if (QB_UNLIKELY(should_fail())) {
    failures++;
    return NULL;
  }
  p = hook(hook_ud, ptr, ptr ? osize : 0, nsize);
  if (!p) {
    failures++;
    return NULL;
  }
  atomic_fetch_add_explicit(&live, nsize, memory_order_relaxed);
  if (ptr) atomic_fetch_sub_explicit(&live, osize, memory_order_relaxed);
  return p;
}

void *qb_malloc(size_t size) { return qb_realloc(NULL, 0, size ? size : 1); }

void *qb_calloc(size_t n, size_t size) {
  size_t total;
  void *p;
  if (__builtin_mul_overflow(n, size, &total)) return NULL;
  p = qb_malloc(total);
  if (p) memset(p, 0, total ? total : 1);
  return p;
}

void qb_free(void *ptr, size_t size) {
  if (ptr) qb_realloc(ptr, size ? size : 1, 0);
}

/* The header keeps 16-byte alignment (max_align_t) for what follows it. */
#define SIZED_HEADER 16

void *qb_sized_malloc(size_t size) {
  size_t total;
  unsigned char *p;
  if (__builtin_add_overflow(size, (size_t)SIZED_HEADER, &total)) return NULL;
  if (!(p = qb_malloc(total))) return NULL;
  memcpy(p, &total, sizeof total);
  return p + SIZED_HEADER;
}

void qb_sized_free(void *ptr) {
  size_t total;
  unsigned char *p = ptr;
  if (!p) return;
  p -= SIZED_HEADER;
  memcpy(&total, p, sizeof total);
  qb_free(p, total);
}

uint64_t qb_alloc_failures(void) { return failures; }

size_t qb_alloc_live_bytes(void) { return atomic_load_explicit(&live, memory_order_relaxed); }
