/* memory.c: linear memories. Each memory reserves its whole reachable range once
** (mmap PROT_NONE, MAP_NORESERVE: address space, not memory) and commits pages with mprotect as
** it grows, so qw__memory.data never moves and the interpreter may cache it across calls.
** On a 64-bit host the reservation is QW_GUARD_BYTES (8 GiB + 64 KiB) when the address space
** allows, so native code may leave bounds checks to the fault handler (native.c, guard pages);
** when that reservation fails the memory is reserved to its maximum only and is not guarded.
** Invariant: [data, data + size_bytes) is readable and writable, zero-filled when first
** committed; the rest of the reservation faults. */
#include "internal.h"

#include <string.h>
#include <sys/mman.h>

qb_code qw__memory_init(qw__memory *mem, uint32_t min, uint32_t decl_max, bool has_max,
                        uint32_t cap_pages, qb_err *err) {
  uint32_t max = cap_pages;
  void *p;
  memset(mem, 0, sizeof *mem);
  if (max > QW_MAX_PAGES)
    max = QW_MAX_PAGES;
  if (has_max && decl_max < max)
    max = decl_max;
  if (min > max)
    return qb_fail(err, QB_LIMIT, "memory: minimum of %u pages exceeds the limit of %u pages", min,
                   max);
  /* reserve at least one page so DATA is never NULL, even for a memory of size 0 */
  mem->reserved_bytes = (size_t)(max ? max : 1) * QW_PAGE_SIZE;
  p = MAP_FAILED;
  if (sizeof(size_t) >= 8) {
    p = mmap(NULL, QW_GUARD_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) mem->reserved_bytes = QW_GUARD_BYTES, mem->guarded = true;
  }
  if (p == MAP_FAILED)
    p = mmap(NULL, mem->reserved_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
  if (p == MAP_FAILED) {
    mem->reserved_bytes = 0;
    return qb_fail(err, QB_NOMEM, "memory: cannot reserve %u pages", max);
  }
  if (min && mprotect(p, (size_t)min * QW_PAGE_SIZE, PROT_READ | PROT_WRITE)) {
    munmap(p, mem->reserved_bytes);
    mem->reserved_bytes = 0, mem->guarded = false;
    return qb_fail(err, QB_NOMEM, "memory: cannot commit %u pages", min);
  }
  mem->data = p;
  mem->pages = min;
  mem->size_bytes = (uint64_t)min * QW_PAGE_SIZE;
  mem->max_pages = max;
  mem->decl_max = decl_max;
  mem->has_max = has_max;
  return QB_OK;
}

void qw__memory_fini(qw__memory *mem) {
  if (mem->data)
    munmap(mem->data, mem->reserved_bytes);
  memset(mem, 0, sizeof *mem);
}

int32_t qw__memory_grow(qw__memory *mem, uint32_t delta_pages) {
  uint32_t old = mem->pages;
  uint64_t want = (uint64_t)old + delta_pages;
  if (delta_pages == 0)
    return (int32_t)old;
  if (want > mem->max_pages)
    return -1; /* spec: a failed memory.grow gives -1, not a trap */
  if (mprotect(mem->data + mem->size_bytes, (size_t)delta_pages * QW_PAGE_SIZE,
               PROT_READ | PROT_WRITE))
    return -1;
  mem->pages = (uint32_t)want;
  mem->size_bytes = want * QW_PAGE_SIZE;
  return (int32_t)old;
}
