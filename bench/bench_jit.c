/* bench_jit.c: what the native tier costs to get to native code, per module (STYLE.md
** "Benchmarks"): for each .wasm given (default: the example UDFs in build/examples/udfs), the
** wall time of qj_compile at -O1, -O2 (the default) and -O3 as the UDF layer calls it
** (qj_options.udf, the export named by the file name up to its first dot: native_llvm.c),
** with its CPU time, of qj_emit_object for x86_64
** and aarch64, and of qj_load_object of the x86_64 object (the cache/AOT path). Median of 5
** after one warm-up, with min and max. Benchmarks report; they never fail.
**
** Cases:
**   jit/compile_O<n>/<file>   qj_compile, in process (LLJIT), level n     goal < 20 ms (O2)
**   jit/object_<arch>/<file>  qj_emit_object for <arch>-linux
**   jit/load/<file>           qj_load_object of the x86_64 object          goal < 2 ms
**
** Usage: bench_jit [--quick] [FILE.wasm...] */
#include <glob.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "wasm.h"

#ifndef BENCH_UDF_DIR
#define BENCH_UDF_DIR "build/examples/udfs"
#endif

static int runs = 5, warmup = 1;

/* this process's CPU time: on a shared machine it says what a compile costs better than the
** wall clock (compilation is single-threaded) */
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, const char *file, double *t, int n, double goal_ms) {
  qsort(t, (size_t)n, sizeof *t, cmp_d);
  double med = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
  char goal[48] = "";
  if (goal_ms > 0)
    snprintf(goal, sizeof goal, "  %s (goal <%g ms)", med < goal_ms ? "meets goal" : "MISSES goal",
             goal_ms);
  printf("jit/%-12s %-28s %7.2f ms%s  med/%d [%.2f..%.2f]\n", what, file, med, goal, n, t[0],
         t[n - 1]);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void bench_file(qw_engine *e, const char *path) {
  const char *file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  size_t len;
  uint8_t *bytes = read_file(path, &len);
  qw_module *m = NULL;
  qb_err err;
  double t[8];
  if (!bytes || qw_module_load(e, bytes, len, &m, &err)) {
    printf("jit/%s: cannot load: %s\n", file, bytes ? err.msg : "unreadable");
    free(bytes);
    return;
  }
  free(bytes);
  /* the UDF's export, as its manifest names it: the file name up to the first dot (the
  ** examples are <udf>.<language>.wasm) when the module exports that; else every export */
  char udf_name[64];
  const char *only = NULL;
  snprintf(udf_name, sizeof udf_name, "%.*s", (int)strcspn(file, "."), file);
  for (uint32_t i = 0, ne = qw_module_export_count(m); i < ne; i++) {
    qw_port p;
    qw_module_export(m, i, &p);
    if (p.kind == QW_KFUNC && !strcmp(p.name, udf_name)) only = udf_name;
  }
  for (int lv = 1; lv <= 3; lv++) {
    qj_options o = {.opt_level = lv, .udf = true, .export_name = only};
    char what[24];
    int n = 0;
    double cpu[8];
    for (int i = -warmup; i < runs; i++) {
      qj_code *c = NULL;
      uint64_t t0 = qb_now_ns(), c0 = cpu_ns();
      if (qj_compile(m, &o, &c, &err)) {
        printf("jit/%s: compile: %s\n", file, err.msg);
        qw_module_free(m);
        return;
      }
      if (i >= 0) cpu[n] = (double)(cpu_ns() - c0) * 1e-6, t[n++] = (double)(qb_now_ns() - t0) * 1e-6;
      qj_code_free(c);
    }
    snprintf(what, sizeof what, "compile_O%d", lv);
    report(what, file, t, n, lv == 2 ? 20 : 0);
    snprintf(what, sizeof what, "cpu_O%d", lv);
    report(what, file, cpu, n, 0);
  }
  uint8_t *obj = NULL;
  size_t olen = 0;
  const qj_options udf = {.udf = true, .export_name = only};
  const char *arch[2] = {"x86_64", "aarch64"};
  for (int a = 0; a < 2; a++) {
    char triple[32], what[24];
    int n = 0;
    snprintf(triple, sizeof triple, "%s-linux", arch[a]);
    for (int i = -warmup; i < runs; i++) {
      uint8_t *o = NULL;
      size_t ol = 0;
      uint64_t t0 = qb_now_ns();
      if (qj_emit_object(m, triple, &udf, &o, &ol, &err)) {
        printf("jit/%s: object %s: %s\n", file, triple, err.msg);
        break;
      }
      if (i >= 0) t[n++] = (double)(qb_now_ns() - t0) * 1e-6;
      if (a == 0 && !obj) obj = o, olen = ol;
      else qj_buffer_free(o, ol);
    }
    snprintf(what, sizeof what, "object_%s", arch[a]);
    if (n) report(what, file, t, n, 0);
  }
  if (obj) {
    int n = 0;
    for (int i = -warmup; i < runs; i++) {
      qj_code *c = NULL;
      uint64_t t0 = qb_now_ns();
      if (qj_load_object(m, obj, olen, &c, &err)) {
        printf("jit/%s: load: %s\n", file, err.msg);
        break;
      }
      if (i >= 0) t[n++] = (double)(qb_now_ns() - t0) * 1e-6;
      qj_code_free(c);
    }
    if (n) report("load", file, t, n, 2);
    printf("jit/object_size %-28s %zu bytes (x86_64)\n", file, olen);
    qj_buffer_free(obj, olen);
  }
  qw_module_free(m);
}

int main(int argc, char **argv) {
  qw_engine *e;
  qb_err err;
  int nfiles = 0;
  if (qw_engine_new(NULL, &e, &err)) return 1;
  printf("bench_jit: host %s\n", qj_host_triple());
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) runs = 1, warmup = 0;
    else bench_file(e, argv[i]), nfiles++;
  }
  if (!nfiles) {
    glob_t g;
    if (!glob(BENCH_UDF_DIR "/*.wasm", 0, NULL, &g)) {
      for (size_t i = 0; i < g.gl_pathc; i++) bench_file(e, g.gl_pathv[i]);
      globfree(&g);
    } else {
      printf("bench_jit: no modules in %s (build the udf_examples target)\n", BENCH_UDF_DIR);
    }
  }
  qw_engine_free(e);
  return 0;
}
