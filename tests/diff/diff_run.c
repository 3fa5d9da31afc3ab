/* diff_run.c: one side of the differential test (tests/diff/difftest.py). For each module
** FILE (made by binaryen's `wasm-opt -ttf`), instantiate it with the `fuzzing-support` logging
** imports, call every exported function in export order with zero arguments (calling
** `hangLimitInitializer` before each, as binaryen's own shell does), and print one line per
** event: every log call, every result or trap, and at the end the exported memory's size and
** FNV-1a checksum. run_v8.js prints the same lines from node's V8, so the three outputs
** (interpreter, JIT, V8) compare line by line.
**
**   diff_run --tier interp|jit [--opt 1..3] FILE...
**
** Lines: `module FILE`, `log i32 4294967295` (values as unsigned bits), `call NAME`,
** `result i32 7 f64 4607182418800017408` (floats as bits), `trap CLASS|MESSAGE` (CLASS is
** coarse so that V8's wording compares: V8 says "float unrepresentable in integer range" both
** where the spec says "integer overflow" and "invalid conversion to integer"), `memory PAGES
** HASH`, `skip REASON` (the module is not for this comparison: an unknown import, a limit).
** On the JIT, every other export that has a block driver (jit.h qj_block_entry: one result,
** numeric params) runs as a block of one document through qj_block_call instead of the
** entry, so the drivers (check-free ones included) are compared with the interpreter too.
** Exit 0, or 2 for bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "wasm.h"

static int read_file(const char *path, uint8_t **buf, size_t *len) {
  FILE *f = fopen(path, "rb");
  long n;
  *buf = NULL;
  if (!f)
    return -1;
  if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
      !(*buf = malloc((size_t)n + 1)) || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
    free(*buf);
    *buf = NULL;
    fclose(f);
    return -1;
  }
  fclose(f);
  *len = (size_t)n;
  return 0;
}

/* Every call's budget: -ttf modules end their loops and recursion with a hang limit, so fuel
** only guards against a module that would not; running out is a `skip`, not a result */
#define CALL_FUEL 100000000ull

/* ---- fuzzing-support: print the value's bits ---------------------------------------------- */

static const qw_trap *log_i32(void *ud, qw_instance *c, const uint64_t *a, uint64_t *r) {
  (void)ud, (void)c, (void)r;
  printf("log i32 %u\n", (uint32_t)a[0]);
  return NULL;
}
static const qw_trap *log_i64(void *ud, qw_instance *c, const uint64_t *a, uint64_t *r) {
  (void)ud, (void)c, (void)r;
  printf("log i64 %llu\n", (unsigned long long)a[0]);
  return NULL;
}
static const qw_trap *log_f32(void *ud, qw_instance *c, const uint64_t *a, uint64_t *r) {
  (void)ud, (void)c, (void)r;
  printf("log f32 %u\n", (uint32_t)a[0]);
  return NULL;
}
static const qw_trap *log_f64(void *ud, qw_instance *c, const uint64_t *a, uint64_t *r) {
  (void)ud, (void)c, (void)r;
  printf("log f64 %llu\n", (unsigned long long)a[0]);
  return NULL;
}

/* The coarse class of a trap message (run_v8.js maps V8's wording to the same names) */
static const char *trap_class(const char *msg) {
  static const struct {
    const char *needle, *cls;
  } map[] = {
      {"unreachable", "unreachable"},
      {"divide by zero", "div0"},
      {"integer overflow", "arith"}, /* V8 words a float-to-int overflow like a NaN's */
      {"invalid conversion", "arith"},
      {"out of bounds memory", "memory"},
      {"table", "table"},
      {"undefined element", "table"},
      {"uninitialized element", "table"},
      {"indirect call", "table"},
      {"call stack exhausted", "stack"},
  };
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (strstr(msg, map[i].needle))
      return map[i].cls;
  return "other";
}

static void print_vals(const qw_val *v, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    switch (v[i].type) {
    case QW_I32:
      printf(" i32 %u", v[i].of.i32);
      break;
    case QW_F32:
      printf(" f32 %u", v[i].of.f32_bits);
      break;
    case QW_I64:
      printf(" i64 %llu", (unsigned long long)v[i].of.i64);
      break;
    case QW_F64:
      printf(" f64 %llu", (unsigned long long)v[i].of.f64_bits);
      break;
    default:
      printf(" ref %s", v[i].of.ref ? "nonnull" : "null");
      break;
    }
  }
}

/* Call F with zero arguments; print the result or the trap. 1 when a limit ended the call */
static int call_zero(qw_func *f) {
  qw_sig sig;
  qw_val args[64], res[64];
  qb_err err;
  qb_code rc;
  qw_func_sig(f, &sig);
  if (sig.nparams > 64 || sig.nresults > 64)
    return printf("skip too many parameters\n"), 1;
  for (uint32_t i = 0; i < sig.nparams; i++) {
    memset(&args[i], 0, sizeof args[i]);
    args[i].type = (qw_type)sig.params[i];
  }
  rc = qw_func_call(f, args, sig.nparams, res, sig.nresults, &err);
  if (rc == QB_OK) {
    printf("result");
    print_vals(res, sig.nresults);
    printf("\n");
    return 0;
  }
  if (rc == QB_TRAP) {
    printf("trap %s|%s\n", trap_class(err.msg), err.msg);
    return 0;
  }
  printf("skip %s: %s\n", qb_code_name(rc), err.msg);
  return 1;
}

/* Export NAME as one document through block driver B of C: the lines call_zero prints. */
static int call_block(qj_code *c, void *b, qw_instance *inst, qw_func *f) {
  qw_sig sig;
  uint64_t zero[64] = {0}, res = 0;
  const uint64_t *cols[64];
  qw_func_sig(f, &sig);
  if (sig.nparams > 64) return printf("skip too many parameters\n"), 1;
  for (uint32_t i = 0; i < sig.nparams; i++) cols[i] = &zero[i];
  const qw_trap *t = qj_block_call(c, b, inst, 1, cols, &res);
  if (t) {
    if (qw_trap_code(t) != QB_TRAP && qw_trap_code(t) != QB_LIMIT && qw_trap_code(t) != QB_OK)
      return printf("skip %s: %s\n", qb_code_name(qw_trap_code(t)), qw_trap_message(t)), 1;
    printf("trap %s|%s\n", trap_class(qw_trap_message(t)), qw_trap_message(t));
    return 0;
  }
  qw_val v;
  memset(&v, 0, sizeof v);
  v.type = (qw_type)sig.results[0];
  if (v.type == QW_I32) v.of.i32 = (uint32_t)res;
  else if (v.type == QW_F32) v.of.f32_bits = (uint32_t)res;
  else if (v.type == QW_I64) v.of.i64 = res;
  else v.of.f64_bits = res;
  printf("result");
  print_vals(&v, 1);
  printf("\n");
  return 0;
}

static uint32_t fnv1a(const uint8_t *p, size_t n) { /* 32-bit FNV-1a, as run_v8.js */
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

static qj_options jit_opt; /* --opt N: LLVM's level (diff/ttf uses 1: the compile dominates) */

static void run_one(qw_engine *e, const char *file, int jit) {
  uint8_t *buf = NULL;
  size_t len = 0;
  qw_module *m = NULL;
  qw_imports *im = NULL;
  qw_instance *inst = NULL;
  qb_err err;
  static const uint8_t ti32[] = {QW_I32}, ti64[] = {QW_I64}, tf32[] = {QW_F32},
                       tf64[] = {QW_F64};
  printf("module %s\n", file);
  if (read_file(file, &buf, &len)) {
    printf("skip unreadable\n");
    return;
  }
  if (qw_module_load(e, buf, len, &m, &err)) {
    /* binaryen made it, V8 takes it: a module we refuse is a finding, not a skip */
    printf("invalid %s\n", err.msg);
    goto out;
  }
  for (uint32_t k = 0; k < qw_module_import_count(m); k++) {
    qw_port p;
    qw_module_import(m, k, &p);
    if (strcmp(p.module, "fuzzing-support") ||
        (strcmp(p.name, "log-i32") && strcmp(p.name, "log-i64") && strcmp(p.name, "log-f32") &&
         strcmp(p.name, "log-f64"))) {
      printf("skip import %s.%s\n", p.module, p.name);
      goto out;
    }
  }
  if (qw_imports_new(&im, &err) ||
      qw_imports_add_host(im, "fuzzing-support", "log-i32", ti32, 1, NULL, 0, log_i32, NULL,
                          &err) ||
      qw_imports_add_host(im, "fuzzing-support", "log-i64", ti64, 1, NULL, 0, log_i64, NULL,
                          &err) ||
      qw_imports_add_host(im, "fuzzing-support", "log-f32", tf32, 1, NULL, 0, log_f32, NULL,
                          &err) ||
      qw_imports_add_host(im, "fuzzing-support", "log-f64", tf64, 1, NULL, 0, log_f64, NULL,
                          &err)) {
    printf("skip imports: %s\n", err.msg);
    goto out;
  }
  if (qw_instance_new(m, im, NULL, &inst, &err)) {
    printf("instantiate %s\n", trap_class(err.msg));
    goto out;
  }
  qj_code *code = NULL; /* the instance's reference keeps it */
  if (jit) {
    qj_code *c = NULL;
    if (qj_compile(m, &jit_opt, &c, &err) || qj_attach(c, inst, &err)) {
      qj_code_free(c);
      printf("skip jit: %s\n", err.msg);
      goto out;
    }
    code = c;
    qj_code_free(c);
  }
  {
    qw_func *hang = qw_instance_func(inst, "hangLimitInitializer");
    for (uint32_t k = 0; k < qw_module_export_count(m); k++) {
      qw_port p;
      qw_module_export(m, k, &p);
      if (p.kind != QW_KFUNC)
        continue;
      qw_func *f = qw_instance_func(inst, p.name);
      if (!f)
        continue;
      if (hang) { /* its result line is printed too, as run_v8.js does */
        qw_instance_set_fuel(inst, CALL_FUEL);
        if (call_zero(hang))
          goto out;
      }
      printf("call %s\n", p.name);
      qw_instance_set_fuel(inst, CALL_FUEL);
      void *b = code && k % 2 == 0 ? qj_block_entry(code, p.name) : NULL;
      if (b ? call_block(code, b, inst, f) : call_zero(f))
        goto out;
    }
  }
  {
    qw_extern *x = qw_instance_export(inst, "memory");
    if (x && qw_extern_kind(x) == QW_KMEMORY) {
      size_t size = 0;
      uint8_t *mem = qw_instance_memory(inst, &size);
      printf("memory %zu %u\n", size / 65536, fnv1a(mem, size));
    }
  }
out:
  fflush(stdout);
  qw_instance_free(inst);
  qw_imports_free(im);
  qw_module_free(m);
  free(buf);
}

int main(int argc, char **argv) {
  qw_engine *e;
  qb_err err;
  int jit;
  qw_limits lim;
  if (argc < 3 || strcmp(argv[1], "--tier") ||
      (strcmp(argv[2], "interp") && strcmp(argv[2], "jit"))) {
    fprintf(stderr, "usage: diff_run --tier interp|jit [--opt 1..3] FILE...\n");
    return 2;
  }
  jit = !strcmp(argv[2], "jit");
  int first = 3;
  if (argc > 4 && !strcmp(argv[3], "--opt")) {
    jit_opt.opt_level = atoi(argv[4]);
    if (jit_opt.opt_level < 1 || jit_opt.opt_level > 3) {
      fprintf(stderr, "diff_run: --opt 1..3\n");
      return 2;
    }
    first = 5;
  }
  memset(&lim, 0, sizeof lim);
  if (qw_engine_new(&lim, &e, &err)) {
    fprintf(stderr, "diff_run: %s\n", err.msg);
    return 1;
  }
  for (int i = first; i < argc; i++)
    run_one(e, argv[i], jit);
  qw_engine_free(e);
  return 0;
}
