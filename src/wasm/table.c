/* table.c: tables of references (qw_func * or externref pointers; NULL is null). The element
** array grows geometrically up to the table's maximum, which is its declared maximum capped by
** qw_limits.max_table_elems. Invariant: elems[0..size) are valid, cap >= size. Unlike memory,
** a table's ELEMS may move when it grows: nobody caches it across a table.grow. */
#include "internal.h"

#include <string.h>

qb_code qw__table_init(qw__table *t, uint8_t elem, uint32_t min, uint32_t decl_max, bool has_max,
                       uint32_t cap, qb_err *err) {
  uint32_t max = cap;
  memset(t, 0, sizeof *t);
  if (has_max && decl_max < max)
    max = decl_max;
  if (min > max)
    return qb_fail(err, QB_LIMIT, "table: minimum of %u elements exceeds the limit of %u", min,
                   max);
  if (!(t->elems = qb_calloc(min ? min : 1, sizeof *t->elems)))
    return qb_fail(err, QB_NOMEM, "table: out of memory for %u elements", min);
  t->elem = elem;
  t->size = min;
  t->cap = min ? min : 1;
  t->max = max;
  t->decl_max = decl_max;
  t->has_max = has_max;
  return QB_OK;
}

void qw__table_fini(qw__table *t) {
  if (t->elems)
    qb_free(t->elems, (size_t)t->cap * sizeof *t->elems);
  memset(t, 0, sizeof *t);
}

int32_t qw__table_grow(qw__table *t, uint32_t delta, void *init) {
  uint32_t old = t->size, i;
  uint64_t want = (uint64_t)old + delta;
  if (want > t->max)
    return -1; /* spec: table.grow past the maximum gives -1 */
  if (want > t->cap) {
    uint64_t ncap = (uint64_t)t->cap * 2;
    void **ne;
    if (ncap < want)
      ncap = want;
    if (ncap > t->max)
      ncap = t->max;
    ne = qb_realloc(t->elems, (size_t)t->cap * sizeof *ne, (size_t)ncap * sizeof *ne);
    if (!ne)
      return -1;
    t->elems = ne;
    t->cap = (uint32_t)ncap;
  }
  for (i = old; i < want; i++)
    t->elems[i] = init;
  t->size = (uint32_t)want;
  return (int32_t)old;
}
