/* arena.c: bump allocation in chunks for objects that die together. Chunks grow geometrically
** up to 1 MiB; an allocation larger than that gets a chunk of its own. */
#include "base.h"

#include <string.h>

struct qb_arena_chunk {
  qb_arena_chunk *next;
  size_t size; /* usable bytes after the header */
  size_t used;
  _Alignas(16) unsigned char data[];
};

void qb_arena_init(qb_arena *a) { memset(a, 0, sizeof *a); }

void *qb_arena_alloc(qb_arena *a, size_t size) {
  qb_arena_chunk *c = a->head;
  size_t need = (size + 15) & ~(size_t)15;
  void *p;
  if (need < size) return NULL;
  if (a->limit_bytes && (need > a->limit_bytes || a->used_bytes > a->limit_bytes - need))
    return NULL;
  if (!c || c->size - c->used < need) {
    size_t csize = c ? c->size * 2 : 4096;
    if (csize > (1u << 20)) csize = 1u << 20;
    if (csize < need) csize = need;
    if (csize > SIZE_MAX - sizeof *c) return NULL;
    c = qb_malloc(sizeof *c + csize);
    if (!c) return NULL;
    c->size = csize;
    c->used = 0;
    /* keep the chunk with the most free room at the head */
    if (a->head && need == csize) {
      c->next = a->head->next;
      a->head->next = c;
    } else {
      c->next = a->head;
      a->head = c;
    }
  }
  p = c->data + c->used;
  c->used += need;
  a->used_bytes += need;
  memset(p, 0, size);
  return p;
}

void *qb_arena_array(qb_arena *a, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return NULL;
  return qb_arena_alloc(a, total ? total : 1);
}

char *qb_arena_strndup(qb_arena *a, const char *s, size_t n) {
  char *p;
  if (n == SIZE_MAX) return NULL;
  p = qb_arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *qb_arena_strdup(qb_arena *a, const char *s) { return qb_arena_strndup(a, s, strlen(s)); }

void qb_arena_fini(qb_arena *a) {
  qb_arena_chunk *c = a->head, *next;
  for (; c; c = next) {
    next = c->next;
    qb_free(c, sizeof *c + c->size);
  }
  a->head = NULL;
  a->used_bytes = 0;
}
