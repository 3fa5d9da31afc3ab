/* fuzz_module.c: libFuzzer target for the engine's one untrusted input, module bytes (DESIGN.md
** §4: any byte string yields a module or a clear error, never a crash, hang or unbounded
** allocation). Decodes and validates; if that works, instantiates with stub imports (WASI
** imports get the real sandbox, writing nowhere; other function imports return zeros; tables,
** memories and globals come from the spectest module; other imports skip the input) and calls
** every exported function with zero arguments, then with numbers from the input, under 10000
** fuel, 16 pages and a shallow call depth. Also built without libFuzzer, with replay_main.c,
** to replay tests/data/regress/ as a CTest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectest.h"
#include "engine_harness.h"
#include "wasm.h"

#define FUZZ_FUEL 10000
#define FUZZ_PAGES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A function import: results are zero. UD is the result count. */
static const qw_trap *stub(void *ud, qw_instance *caller, const uint64_t *args, uint64_t *results) {
  uintptr_t n = (uintptr_t)ud, i;
  for (i = 0; i < n; i++)
    results[i] = 0;
  return NULL;
}

static void discard(void *ud, int fd, const char *p, size_t n) {
  (void)ud, (void)fd, (void)p, (void)n;
}

static qw_engine *engine(void) { return fuzz_engine("fuzz_module", FUZZ_PAGES, FUZZ_FUEL); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qw_engine *e = engine();
  qw_module *m = NULL, *st_mod = NULL;
  qw_instance *inst = NULL, *st = NULL;
  qw_imports *im = NULL;
  qw_limits lim;
  qb_err err;
  uint32_t i, k;
  int need_spectest = 0, need_wasi = 0, round;

  if (qw_module_load(e, data, size, &m, &err))
    return 0;
  if (qw_imports_new(&im, &err))
    goto out;
  for (i = 0; i < qw_module_import_count(m); i++) {
    qw_port p;
    qw_module_import(m, i, &p);
    if (!strcmp(p.module, "wasi_snapshot_preview1")) {
      need_wasi = 1;
    } else if (p.kind != QW_KFUNC) {
      if (strcmp(p.module, "spectest"))
        goto out; /* cannot satisfy it: skip the input */
      need_spectest = 1;
    }
  }
  if (need_spectest) {
    if (spectest_new(e, &st_mod, &st, &err))
      goto out;
    if (qw_imports_add_instance(im, "spectest", st, &err))
      goto out;
  }
  if (need_wasi) {
    static const char *const argv[] = {"fuzz"};
    qw_wasi_set_output(im, discard, NULL);
    if (qw_imports_add_wasi(im, 1, argv, &err))
      goto out;
  }
  for (i = 0; i < qw_module_import_count(m); i++) {
    qw_port p;
    qw_module_import(m, i, &p);
    if (p.kind == QW_KFUNC && strcmp(p.module, "wasi_snapshot_preview1") &&
        qw_imports_add_host(im, p.module, p.name, p.sig.params, p.sig.nparams, p.sig.results,
                            p.sig.nresults, stub, (void *)(uintptr_t)p.sig.nresults, &err))
      goto out;
  }
  lim = fuzz_limits(FUZZ_PAGES, FUZZ_FUEL);
  if (qw_instance_new(m, im, &lim, &inst, &err))
    goto out; /* unlinkable, trap in start, ... */
  for (i = 0; i < qw_module_export_count(m); i++) {
    qw_port p;
    qw_func *f;
    qw_sig sig;
    qw_val args[64], res[64];
    qw_module_export(m, i, &p);
    if (p.kind != QW_KFUNC || !(f = qw_instance_func(inst, p.name)))
      continue;
    qw_func_sig(f, &sig);
    if (sig.nparams > 64 || sig.nresults > 64)
      continue;
    for (round = 0; round < 2; round++) {
      /* first zeros, then numbers taken from the input's tail (refs stay null) */
      for (k = 0; k < sig.nparams; k++) {
        uint64_t bits = 0;
        memset(&args[k], 0, sizeof args[k]);
        args[k].type = (qw_type)sig.params[k];
        if (round && size >= 8)
          memcpy(&bits, data + size - 8, 8), bits = bits * (k + 1) ^ k;
        if (args[k].type == QW_I32 || args[k].type == QW_F32)
          args[k].of.i32 = (uint32_t)bits;
        else if (args[k].type == QW_I64 || args[k].type == QW_F64)
          args[k].of.i64 = bits;
      }
      qw_instance_set_fuel(inst, FUZZ_FUEL);
      (void)qw_func_call(f, args, sig.nparams, res, sig.nresults, &err); /* traps are fine */
    }
  }
out:
  qw_instance_free(inst);
  qw_imports_free(im);
  qw_module_free(m);
  qw_instance_free(st);
  qw_module_free(st_mod);
  return 0;
}
