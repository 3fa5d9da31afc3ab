/* compile_mem.c: how much memory a native compile takes. LLVM allocates through malloc/new, not
** qb_alloc, so the probe is the process's own: the resident-set high-water mark (VmHWM), reset
** to the current RSS before the compile (/proc/self/clear_refs "5") and read after it, minus
** the RSS at the start. It is process-wide: a search or a second compile thread running at the
** same time counts too, so the figure is an upper bound of the compile's peak. Where the reset
** is refused (no /proc, an old kernel), glibc's mallinfo2 in-use delta at the end stands in (a
** lower bound: memory LLVM already freed is missed); the note says which. */
#define _GNU_SOURCE
#include "internal.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static uint64_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "re");
  unsigned long long size = 0, res = 0;
  if (!f) return 0;
  if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
  fclose(f);
  return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t hwm_bytes(void) {
  FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  unsigned long long kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) {
      sscanf(line + 6, "%llu", &kb);
      break;
    }
  fclose(f);
  return kb * 1024;
}

static uint64_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

void qu__mem_begin(qu__mem *m) {
  memset(m, 0, sizeof *m);
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    m->hwm_reset = write(fd, "5", 1) == 1;
    close(fd);
  }
  m->rss0 = rss_bytes();
  m->heap0 = heap_in_use();
}

uint64_t qu__mem_end(const qu__mem *m) {
  if (m->hwm_reset) {
    uint64_t hwm = hwm_bytes();
    return hwm > m->rss0 ? hwm - m->rss0 : 0;
  }
  uint64_t heap = heap_in_use();
  return heap > m->heap0 ? heap - m->heap0 : 0;
}
