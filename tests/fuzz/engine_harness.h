/* engine_harness.h: the one engine of the module-running fuzz targets (fuzz_module, fuzz_jit),
** made on first use and kept for the process: PAGES of memory at most, FUEL per call, a shallow
** call depth and native stack, so a fuzzed module ends quickly whatever it does. */
#ifndef QD_FUZZ_ENGINE_HARNESS_H
#define QD_FUZZ_ENGINE_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm.h"

/* The fuzz targets' limits, for the engine and for each instance. */
static qw_limits fuzz_limits(uint32_t pages, uint64_t fuel) {
  qw_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.max_memory_pages = pages;
  lim.max_call_depth = 400;
  lim.max_stack_bytes = 256 * 1024;
  lim.max_table_elems = 10000;
  lim.fuel = fuel;
  return lim;
}

static qw_engine *fuzz_engine(const char *target, uint32_t pages, uint64_t fuel) {
  static qw_engine *e;
  if (!e) {
    qw_limits lim = fuzz_limits(pages, fuel);
    qb_err err;
    if (qw_engine_new(&lim, &e, &err)) {
      fprintf(stderr, "%s: engine: %s\n", target, err.msg);
      abort();
    }
  }
  return e;
}

#endif
