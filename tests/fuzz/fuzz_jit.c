/* fuzz_jit.c: libFuzzer target for the native tier (src/jit) on untrusted modules. Bytes that
** load (decode + validate) are compiled to native code with qj_compile; the module is
** instantiated twice with stub imports (function imports return zeros; a module importing
** anything else is skipped), one instance interpreted and one with the native code attached,
** and every exported function is called on both with zero arguments, then with numbers from
** the input, under FUZZ_FUEL fuel, 16 pages and a shallow call depth. Native code must never
** crash or hang, and must agree with the interpreter: the same outcome code, the same results
** bit for bit (NaNs: both NaN, see compare()), the same trap wording (calls that ran out of
** fuel on either tier are not compared beyond that: both must say so). Inputs over MAX_INPUT bytes are skipped (LLVM's
** compile time grows with the module, not the fuzzer's budget). Also built without libFuzzer
** with replay_main.c: CTest fuzz_jit_regress replays corpus/jit/ and
** tests/data/regress/fuzz_jit-*. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "engine_harness.h"
#include "wasm.h"

#define FUZZ_FUEL 10000
#define FUZZ_PAGES 16
#define MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A function import: results are zero. UD is the result count. */
static const qw_trap *stub(void *ud, qw_instance *caller, const uint64_t *args,
                           uint64_t *results) {
  (void)caller, (void)args;
  for (uintptr_t i = 0; i < (uintptr_t)ud; i++)
    results[i] = 0;
  return NULL;
}

static qw_engine *engine(void) { return fuzz_engine("fuzz_jit", FUZZ_PAGES, FUZZ_FUEL); }

static int is_nan32(uint32_t b) { return (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu); }
static int is_nan64(uint64_t b) {
  return (b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0xfffffffffffffull);
}

/* Both outcomes of one call must agree; abort with both on stderr when they do not. Two NaNs
** agree whatever their bits: LLVM's constant folding gives +NaN where x86 gives -NaN, a known
** JIT difference (tests/data/diff/KNOWN) that tests/diff/ tracks; here it would stop every
** run at its first 0/0. */
static void compare(const char *name, qb_code r1, const qb_err *e1, const qw_val *v1,
                    qb_code r2, const qb_err *e2, const qw_val *v2, uint32_t nres) {
  int same = r1 == r2;
  if (same && r1 == QB_OK) {
    for (uint32_t k = 0; k < nres && same; k++) {
      if (v1[k].type == QW_F32 && is_nan32(v1[k].of.i32))
        same = is_nan32(v2[k].of.i32);
      else if (v1[k].type == QW_F64 && is_nan64(v1[k].of.i64))
        same = is_nan64(v2[k].of.i64);
      else if (v1[k].type == QW_I32 || v1[k].type == QW_F32)
        same = v1[k].of.i32 == v2[k].of.i32;
      else if (v1[k].type == QW_I64 || v1[k].type == QW_F64)
        same = v1[k].of.i64 == v2[k].of.i64;
      else
        same = (v1[k].of.ref == NULL) == (v2[k].of.ref == NULL);
    }
  } else if (same && r1 == QB_TRAP) {
    same = !strcmp(e1->msg, e2->msg);
  }
  if (!same) {
    fprintf(stderr, "fuzz_jit: %s: interpreter %s (%s), native %s (%s)\n", name,
            qb_code_name(r1), r1 ? e1->msg : "ok", qb_code_name(r2), r2 ? e2->msg : "ok");
    for (uint32_t k = 0; r1 == QB_OK && r2 == QB_OK && k < nres; k++)
      fprintf(stderr, "  result %u: interpreter 0x%llx, native 0x%llx\n", k,
              (unsigned long long)v1[k].of.i64, (unsigned long long)v2[k].of.i64);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qw_engine *e = engine();
  qw_module *m = NULL;
  qw_instance *ii = NULL, *ij = NULL;
  qw_imports *im = NULL;
  qj_code *code = NULL;
  qb_err err;

  if (size > MAX_INPUT || qw_module_load(e, data, size, &m, &err))
    return 0;
  for (uint32_t i = 0; i < qw_module_import_count(m); i++) {
    qw_port p;
    qw_module_import(m, i, &p);
    if (p.kind != QW_KFUNC)
      goto out; /* a table, memory or global import: nothing to give it */
  }
  qb_code rc = qj_compile(m, NULL, &code, &err);
  if (rc) {
    /* QB_UNAVAILABLE (SIMD: not in the tier) is the only expected refusal of a valid module */
    if (rc != QB_UNAVAILABLE && rc != QB_NOMEM) {
      fprintf(stderr, "fuzz_jit: qj_compile refused a valid module: %s\n", err.msg);
      abort();
    }
    goto out;
  }
  if (qw_imports_new(&im, &err))
    goto out;
  for (uint32_t i = 0; i < qw_module_import_count(m); i++) {
    qw_port p;
    qw_module_import(m, i, &p);
    if (qw_imports_add_host(im, p.module, p.name, p.sig.params, p.sig.nparams, p.sig.results,
                            p.sig.nresults, stub, (void *)(uintptr_t)p.sig.nresults, &err))
      goto out;
  }
  if (qw_instance_new(m, im, NULL, &ii, &err) || qw_instance_new(m, im, NULL, &ij, &err))
    goto out; /* unlinkable, trap in the start function, ... */
  if (qj_attach(code, ij, &err)) {
    fprintf(stderr, "fuzz_jit: qj_attach: %s\n", err.msg);
    abort();
  }
  for (uint32_t i = 0; i < qw_module_export_count(m); i++) {
    qw_port p;
    qw_func *fi, *fj;
    qw_sig sig;
    qw_val args[64], r1[64], r2[64];
    qw_module_export(m, i, &p);
    if (p.kind != QW_KFUNC || !(fi = qw_instance_func(ii, p.name)) ||
        !(fj = qw_instance_func(ij, p.name)))
      continue;
    qw_func_sig(fi, &sig);
    if (sig.nparams > 64 || sig.nresults > 64)
      continue;
    for (int round = 0; round < 2; round++) {
      for (uint32_t k = 0; k < sig.nparams; k++) {
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
      qb_err e1, e2;
      qw_instance_set_fuel(ii, FUZZ_FUEL);
      qw_instance_set_fuel(ij, FUZZ_FUEL);
      qb_code c1 = qw_func_call(fi, args, sig.nparams, r1, sig.nresults, &e1);
      qb_code c2 = qw_func_call(fj, args, sig.nparams, r2, sig.nresults, &e2);
      compare(p.name, c1, &e1, r1, c2, &e2, r2, sig.nresults);
    }
  }
out:
  qw_instance_free(ij);
  qw_instance_free(ii);
  qj_code_free(code);
  qw_imports_free(im);
  qw_module_free(m);
  return 0;
}
