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
static _Atomic uint64_t fail_at;  /* 0 = off; else the count at which allocation fails */
static _Atomic uint64_t count;    /* allocations since fail_at was armed */
static _Thread_local uint64_t failures; /* this thread's failed allocations */

/* Live bytes, one counter a thread (issue 14): a shared atomic took two locked read-modify-
** writes an allocation, on a cache line every thread writes (a search makes ~400 allocator
** calls, ~4 us of its CPU). A thread owns its slot and updates it with a plain load and store;
** qb_alloc_live_bytes sums the slots. A block freed by another thread than the one that
** allocated it moves the two slots apart, not the sum (arithmetic is modulo 2^64). Threads past
** LIVE_SLOTS share one atomic counter. Slots are not reused: a thread's net count stays in the
** sum after it exits, as it must. */
#define LIVE_SLOTS 128
typedef struct live_slot {
  _Alignas(64) _Atomic size_t bytes;
} live_slot;
static live_slot slots[LIVE_SLOTS];
static live_slot shared_slot;
static _Atomic unsigned slots_taken;
static _Thread_local live_slot *my_slot;

static void live_add(size_t delta) {
  live_slot *s = my_slot;
  if (QB_UNLIKELY(!s)) {
    unsigned i = atomic_fetch_add_explicit(&slots_taken, 1, memory_order_relaxed);
    s = my_slot = i < LIVE_SLOTS ? &slots[i] : &shared_slot;
  }
  if (QB_UNLIKELY(s == &shared_slot)) {
    atomic_fetch_add_explicit(&s->bytes, delta, memory_order_relaxed);
    return;
  }
  atomic_store_explicit(&s->bytes, atomic_load_explicit(&s->bytes, memory_order_relaxed) + delta,
                        memory_order_relaxed);
}

void qb_alloc_set(qb_alloc_fn fn, void *ud) {
  hook = fn ? fn : default_alloc;
  hook_ud = fn ? ud : NULL;
}

uint64_t qb_alloc_fail_after(uint64_t n) {
  uint64_t seen = atomic_exchange(&count, 0);
  atomic_store(&fail_at, n);
  return seen;
}

/* counted only while armed: the common case reads one line no one writes */
static int should_fail(void) {
  uint64_t f = atomic_load_explicit(&fail_at, memory_order_relaxed);
  if (QB_LIKELY(!f)) return 0;
  return atomic_fetch_add_explicit(&count, 1, memory_order_relaxed) + 1 >= f;
}

void *qb_realloc(void *ptr, size_t osize, size_t nsize) {
  void *p;
  if (nsize == 0) {
    if (ptr) {
      hook(hook_ud, ptr, osize, 0);
      live_add(-osize);
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
  live_add(ptr ? nsize - osize : nsize);
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

size_t qb_alloc_live_bytes(void) {
  size_t sum = atomic_load_explicit(&shared_slot.bytes, memory_order_relaxed);
  for (unsigned i = 0; i < LIVE_SLOTS; i++)
    sum += atomic_load_explicit(&slots[i].bytes, memory_order_relaxed);
  return sum;
}
