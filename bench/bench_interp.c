/* bench_interp.c: the interpreter against native C and V8 on the same kernels, from one run
** (STYLE.md "Benchmarks"): each kernel is bench/kernels/<k>.c built to wasm32 and natively
** with -O2; V8 runs the same .wasm through bench/run_v8.mjs (node's start-up and compile are
** outside its timing). Every number is the median of 5 runs after one warm-up. Benchmarks
** report; they never fail.
**
** Cases:
**   interp/fib37          k_fib(37)                  recursive calls
**   interp/sieve4M        k_sieve(4 Mi, 6)           byte loads/stores, loops
**   interp/matmul400      k_matmul(400, 5)           f64 loads, mul, add
**   interp/fnv1a_1MiB     k_hash(64)                 FNV-1a over 1 MiB, 64 times
**   interp/calls50M       k_calls(50 M)              small direct calls
**   interp/score20M       k_score_loop(20 M)         custom_score called inside the module
**   interp/geomean        of the six ratios above    goal <= 8x native
**   udf/custom_score_in_module   ns per call, from interp/score20M      goal < 25 ns
**   udf/custom_score_host_call   one qw_func_call_raw from C, ns        goal < 40 ns
**   load/100KB            load + validate + instantiate a synthesized ~100 KB module, ms
**
**   jit/<kernel>          the same kernels on the native tier (src/jit), in the same run,
**                         interleaved with native and the interpreter; compile time shown
**   jit/geomean           goal <= 1.1x native, ahead of V8
**
** Usage: bench_interp [--quick] [--gen-module FILE]   (--quick: 1 run, no warm-up) */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jit.h"
#include "kernels.h"
#include "wasm.h"

#ifndef BENCH_WASM_DIR
#define BENCH_WASM_DIR "build/bench/wasm"
#endif
#ifndef BENCH_V8_SCRIPT
#define BENCH_V8_SCRIPT "bench/run_v8.mjs"
#endif
#ifndef BENCH_NODE
#define BENCH_NODE ""
#endif

#define MAX_RUNS 5
static int runs = MAX_RUNS, warmup = 1;

static double now_s(void) {
  return (double)qb_now_ns() * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct stat5 {
  double med, min, max;
  double result; /* the kernel's result, to check the three agree */
  int ok;
} stat5;

static stat5 summarize(double *t, int n, double result) {
  stat5 s;
  qsort(t, (size_t)n, sizeof *t, cmp_d);
  s.med = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
  s.min = t[0];
  s.max = t[n - 1];
  s.result = result;
  s.ok = 1;
  return s;
}

/* ---- the kernels ---------------------------------------------------------------------------- */

typedef struct kernel {
  const char *name; /* interp/<name> */
  const char *file; /* <file>.wasm */
  const char *init; /* export called once before timing, or NULL */
  const char *export;
  int nargs;
  int32_t args[2];
  int f64_result;
  double (*native)(const int32_t *args);
} kernel;

static double n_fib(const int32_t *a) {
  return k_fib(a[0]);
}
static double n_sieve(const int32_t *a) {
  return k_sieve(a[0], a[1]);
}
static double n_matmul(const int32_t *a) {
  return k_matmul(a[0], a[1]);
}
static double n_hash(const int32_t *a) {
  return k_hash(a[0]);
}
static double n_calls(const int32_t *a) {
  return k_calls(a[0]);
}
static double n_score(const int32_t *a) {
  return k_score_loop(a[0]);
}

#define SCORE_CALLS 20000000
static const kernel kernels[] = {
    {"fib37", "fib", NULL, "k_fib", 1, {37, 0}, 0, n_fib},
    {"sieve4M", "sieve", NULL, "k_sieve", 2, {4 << 20, 6}, 0, n_sieve},
    {"matmul400", "matmul", NULL, "k_matmul", 2, {400, 5}, 1, n_matmul},
    {"fnv1a_1MiB", "hash", "k_hash_init", "k_hash", 1, {64, 0}, 0, n_hash},
    {"calls50M", "calls", NULL, "k_calls", 1, {50000000, 0}, 0, n_calls},
    {"score20M", "udf", NULL, "k_score_loop", 1, {SCORE_CALLS, 0}, 1, n_score},
};

static int read_file(const char *path, uint8_t **buf, size_t *len) {
  FILE *f = fopen(path, "rb");
  long n;
  if (!f)
    return -1;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *buf = malloc((size_t)n + 1);
  if (n < 0 || !*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(*buf);
    return -1;
  }
  fclose(f);
  *len = (size_t)n;
  return 0;
}

/* Load DIR/FILE.wasm and instantiate it. Prints why and returns -1 on failure. */
static int ours_open(const char *file, bool jit, qw_engine **e, qw_module **m, qw_instance **inst,
                     double *compile_ms) {
  char path[1024];
  uint8_t *buf;
  size_t len;
  qb_err err;
  qw_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.max_memory_pages = 1024;
  *e = NULL, *m = NULL, *inst = NULL;
  snprintf(path, sizeof path, "%s/%s.wasm", BENCH_WASM_DIR, file);
  if (read_file(path, &buf, &len)) {
    snprintf(err.msg, sizeof err.msg, "cannot read %.200s", path);
    goto fail;
  }
  if (qw_engine_new(&lim, e, &err) || qw_module_load(*e, buf, len, m, &err) ||
      qw_instance_new(*m, NULL, &lim, inst, &err)) {
    free(buf);
    goto fail;
  }
  free(buf);
  if (jit) {
    qj_code *c = NULL;
    if (qj_compile(*m, NULL, &c, &err) || qj_attach(c, *inst, &err)) {
      qj_code_free(c);
      qw_instance_free(*inst);
      *inst = NULL;
      goto fail;
    }
    if (compile_ms) *compile_ms = (double)qj_code_compile_ns(c) * 1e-6;
    qj_code_free(c);
  }
  return 0;
fail:
  printf("  (ours: %s)\n", err.msg);
  qw_module_free(*m);
  qw_engine_free(*e);
  *e = NULL, *m = NULL;
  return -1;
}

static void ours_close(qw_engine *e, qw_module *m, qw_instance *inst) {
  qw_instance_free(inst);
  qw_module_free(m);
  qw_engine_free(e);
}

/* Native, the interpreter and the JIT, interleaved run by run so that all see the same machine
** load. */
static void time_native_and_ours(const kernel *k, stat5 *nat, stat5 *ours, stat5 *jit,
                                 double *compile_ms) {
  double tn[MAX_RUNS], to[MAX_RUNS], tj[MAX_RUNS], rn = 0, ro = 0;
  double (*volatile fn)(const int32_t *) = k->native; /* keep the call opaque */
  qw_engine *e[2];
  qw_module *m[2];
  qw_instance *inst[2];
  qw_func *f[2] = {NULL, NULL};
  qw_val args[2], res[2][1];
  qb_err err;
  int i, j, t;
  memset(ours, 0, sizeof *ours);
  memset(jit, 0, sizeof *jit);
  for (t = 0; t < 2; t++) {
    if (k->init)
      k_hash_init();
    if (!ours_open(k->file, t == 1, &e[t], &m[t], &inst[t], t ? compile_ms : NULL)) {
      if (k->init &&
          (!(f[t] = qw_instance_func(inst[t], k->init)) || qw_func_call(f[t], NULL, 0, NULL, 0, &err)))
        printf("  (ours: init %s failed)\n", k->init), f[t] = NULL;
      else if (!(f[t] = qw_instance_func(inst[t], k->export)))
        printf("  (ours: no export %s)\n", k->export);
    }
  }
  for (j = 0; j < k->nargs; j++)
    args[j] = qw_i32(k->args[j]);
  for (i = -warmup; i < runs; i++) {
    double t0 = now_s();
    rn = fn(k->args);
    if (i >= 0)
      tn[i] = now_s() - t0;
    for (t = 0; t < 2; t++) {
      if (!f[t])
        continue;
      t0 = now_s();
      if (qw_func_call(f[t], args, (uint32_t)k->nargs, res[t], 1, &err)) {
        printf("  (%s: %s: %s)\n", t ? "jit" : "ours", k->export, err.msg);
        f[t] = NULL;
      }
      if (i >= 0)
        (t ? tj : to)[i] = now_s() - t0;
    }
  }
  *nat = summarize(tn, runs, rn);
  for (t = 0; t < 2; t++) {
    if (f[t]) {
      ro = k->f64_result ? qw_val_f64(res[t][0]) : (double)(int32_t)res[t][0].of.i32;
      *(t ? jit : ours) = summarize(t ? tj : to, runs, ro);
    }
    if (e[t])
      ours_close(e[t], m[t], inst[t]);
  }
}

static stat5 time_v8(const kernel *k) {
  stat5 s = {0};
  char cmd[2048], line[256];
  double t[MAX_RUNS], r = 0;
  int n = 0;
  FILE *p;
  if (!BENCH_NODE[0])
    return s;
  snprintf(cmd, sizeof cmd, "'%s' '%s' '%s/%s.wasm' %d %s%s %s %d", BENCH_NODE, BENCH_V8_SCRIPT,
           BENCH_WASM_DIR, k->file, runs, k->init ? "--init " : "", k->init ? k->init : "",
           k->export, k->args[0]);
  if (k->nargs > 1)
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %d", k->args[1]);
  snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " 2>&1");
  if (!(p = popen(cmd, "r")))
    return s;
  while (fgets(line, sizeof line, p)) {
    double tt;
    char res[128];
    if (sscanf(line, "time %lf result %127s", &tt, res) == 2 && n < MAX_RUNS) {
      t[n++] = tt;
      r = strtod(res, NULL);
    } else {
      printf("  (v8: %s", line);
    }
  }
  pclose(p);
  if (n == runs)
    s = summarize(t, n, r);
  return s;
}

static int same_result(double a, double b) {
  return a == b || fabs(a - b) <= 1e-9 * fabs(a);
}

/* ---- custom_score from the host ------------------------------------------------------------- */

static void bench_host_call(bool jit) {
  const char *name = jit ? "udf/custom_score_host_call_jit" : "udf/custom_score_host_call";
  qw_engine *e;
  qw_module *m;
  qw_instance *inst;
  qw_func *f;
  double t[MAX_RUNS], sum = 0;
  const int calls = 1000000;
  int i, j;
  if (ours_open("udf", jit, &e, &m, &inst, NULL))
    return;
  if (!(f = qw_instance_func(inst, "custom_score"))) {
    printf("%s  ours n/a (no export)\n", name);
    ours_close(e, m, inst);
    return;
  }
  for (i = -warmup; i < runs; i++) {
    double t0 = now_s();
    for (j = 0; j < calls; j++) {
      uint64_t slots[4];
      double bm25 = 1.0 + (double)(j & 255) * 0.01, boost = 1.2, out;
      const qw_trap *trap;
      memcpy(&slots[0], &bm25, 8);
      memcpy(&slots[1], &boost, 8);
      slots[2] = (uint32_t)(j % 400);
      slots[3] = (uint32_t)((j & 3) + 1);
      if ((trap = qw_func_call_raw(f, slots))) {
        printf("%s  ours trapped: %s\n", name, qw_trap_message(trap));
        ours_close(e, m, inst);
        return;
      }
      memcpy(&out, &slots[0], 8);
      sum += out;
    }
    if (i >= 0)
      t[i] = (now_s() - t0) / calls * 1e9;
  }
  {
    stat5 s = summarize(t, runs, sum);
    printf("%s  ours %.1f ns/call (qw_func_call_raw)  %s (goal <%d ns)  "
           "med/%d [%.1f..%.1f]\n",
           name, s.med, s.med < (jit ? 20 : 40) ? "meets goal" : "MISSES goal", jit ? 20 : 40, runs,
           s.min, s.max);
  }
  ours_close(e, m, inst);
}

/* ---- a synthesized ~100 KB module ----------------------------------------------------------- */

typedef struct obuf {
  uint8_t *p;
  size_t n, cap;
} obuf;

static void ob_byte(obuf *b, uint8_t v) {
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 4096;
    if (!(b->p = realloc(b->p, b->cap)))
      abort();
  }
  b->p[b->n++] = v;
}
static void ob_bytes(obuf *b, const void *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    ob_byte(b, ((const uint8_t *)p)[i]);
}
static void ob_u32(obuf *b, uint32_t v) {
  do {
    uint8_t x = v & 0x7f;
    v >>= 7;
    ob_byte(b, x | (v ? 0x80 : 0));
  } while (v);
}
static void ob_s32(obuf *b, int32_t v) {
  for (;;) {
    uint8_t x = v & 0x7f;
    v >>= 7;
    if ((v == 0 && !(x & 0x40)) || (v == -1 && (x & 0x40))) {
      ob_byte(b, x);
      return;
    }
    ob_byte(b, x | 0x80);
  }
}
static void ob_section(obuf *out, uint8_t id, obuf *body) {
  ob_byte(out, id);
  ob_u32(out, (uint32_t)body->n);
  ob_bytes(out, body->p, body->n);
  body->n = 0;
}

/* N functions (i32, i32) -> i32 that mix their arguments, call the previous one and loop;
** every 8th is exported. Grows N until the module reaches TARGET bytes. */
static uint8_t *gen_module(size_t target, size_t *len) {
  obuf out = {0}, sec = {0}, body = {0};
  uint32_t nfuncs = (uint32_t)(target / 226), i, k, nexp = 0; /* a body is ~226 bytes */
  static const uint8_t head[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  ob_bytes(&out, head, sizeof head);
  ob_u32(&sec, 1); /* types */
  ob_bytes(&sec, (const uint8_t[]){0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f}, 6);
  ob_section(&out, 1, &sec);
  ob_u32(&sec, nfuncs); /* functions */
  for (i = 0; i < nfuncs; i++)
    ob_u32(&sec, 0);
  ob_section(&out, 3, &sec);
  for (i = 0; i < nfuncs; i += 8)
    nexp++;
  ob_u32(&sec, nexp); /* exports */
  for (i = 0; i < nfuncs; i += 8) {
    char name[16];
    int n = snprintf(name, sizeof name, "f%u", i);
    ob_u32(&sec, (uint32_t)n);
    ob_bytes(&sec, name, (size_t)n);
    ob_byte(&sec, 0x00);
    ob_u32(&sec, i);
  }
  ob_section(&out, 7, &sec);
  ob_u32(&sec, nfuncs); /* code */
  for (i = 0; i < nfuncs; i++) {
    ob_bytes(&body, (const uint8_t[]){0x01, 0x02, 0x7f}, 3); /* 2 i32 locals */
    ob_bytes(&body, (const uint8_t[]){0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x02}, 7);
    for (k = 0; k < 12; k++) { /* l2 = l2*c ^ p0 */
      ob_bytes(&body, (const uint8_t[]){0x20, 0x02, 0x41}, 3);
      ob_s32(&body, (int32_t)(i * 2654435761u + k * 40503u));
      ob_bytes(&body, (const uint8_t[]){0x6c, 0x20, 0x00, 0x73, 0x21, 0x02}, 6);
    }
    if (i > 0) { /* l3 = f(i-1)(l2, p1) */
      ob_bytes(&body, (const uint8_t[]){0x20, 0x02, 0x20, 0x01, 0x10}, 5);
      ob_u32(&body, i - 1);
      ob_bytes(&body, (const uint8_t[]){0x21, 0x03}, 2);
    }
    /* block: br_if out on l2, else l3 += 1 */
    ob_bytes(&body,
             (const uint8_t[]){0x02, 0x40, 0x20, 0x02, 0x0d, 0x00, 0x20, 0x03, 0x41, 0x01, 0x6a,
                               0x21, 0x03, 0x0b},
             14);
    /* loop: while (--l3 > 0) */
    ob_bytes(&body,
             (const uint8_t[]){0x03, 0x40, 0x20, 0x03, 0x41, 0x01, 0x6b, 0x22, 0x03, 0x41, 0x00,
                               0x4a, 0x0d, 0x00, 0x0b},
             15);
    ob_bytes(&body, (const uint8_t[]){0x20, 0x02, 0x20, 0x03, 0x6a, 0x0b}, 6);
    ob_u32(&sec, (uint32_t)body.n);
    ob_bytes(&sec, body.p, body.n);
    body.n = 0;
  }
  ob_section(&out, 10, &sec);
  free(sec.p);
  free(body.p);
  *len = out.n;
  return out.p;
}

static void bench_load(void) {
  size_t len;
  uint8_t *bytes = gen_module(100 * 1024, &len);
  qw_engine *e;
  qb_err err;
  double t[MAX_RUNS];
  const int reps = 20;
  int i, j;
  if (qw_engine_new(NULL, &e, &err)) {
    printf("load/100KB  ours n/a (%s)\n", err.msg);
    free(bytes);
    return;
  }
  for (i = -warmup; i < runs; i++) {
    double t0 = now_s();
    for (j = 0; j < reps; j++) {
      qw_module *m;
      qw_instance *inst;
      if (qw_module_load(e, bytes, len, &m, &err) || qw_instance_new(m, NULL, NULL, &inst, &err)) {
        printf("load/100KB  ours failed: %s\n", err.msg);
        qw_engine_free(e);
        free(bytes);
        return;
      }
      qw_instance_free(inst);
      qw_module_free(m);
    }
    if (i >= 0)
      t[i] = (now_s() - t0) / reps * 1e3;
  }
  {
    stat5 s = summarize(t, runs, 0);
    printf(
        "load/100KB  ours %.3f ms (load+validate+instantiate, %zu bytes, %zu KB)  %s (goal <1 ms)"
        "  med/%d [%.3f..%.3f]\n",
        s.med, len, len / 1024, s.med < 1 ? "meets goal" : "MISSES goal", runs, s.min, s.max);
  }
  qw_engine_free(e);
  free(bytes);
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  double lg_ours = 0, lg_v8 = 0, lg_jit = 0, lg_jv8 = 0;
  int n_ours = 0, n_v8 = 0, n_jit = 0, i;
  char jit_lines[8][256];
  int njl = 0;
  stat5 score_ours = {0}, score_native = {0}, score_v8 = {0};
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      runs = 1, warmup = 0;
    } else if (!strcmp(argv[i], "--gen-module") && i + 1 < argc) {
      size_t len;
      uint8_t *b = gen_module(100 * 1024, &len);
      FILE *f = fopen(argv[++i], "wb");
      if (!f || fwrite(b, 1, len, f) != len)
        return 1;
      fclose(f);
      free(b);
      return 0;
    } else {
      fprintf(stderr, "usage: bench_interp [--quick] [--gen-module FILE]\n");
      return 2;
    }
  }
#ifndef NDEBUG
  printf("bench_interp: WARNING: built without NDEBUG (not a Release build): numbers are not "
         "representative\n");
#endif
  if (!BENCH_NODE[0])
    printf("bench_interp: node not found at configure time: no V8 column\n");
  for (i = 0; i < (int)QB_COUNTOF(kernels); i++) {
    const kernel *k = &kernels[i];
    stat5 nat, ours, jit, v8 = time_v8(k);
    double cms = 0;
    time_native_and_ours(k, &nat, &ours, &jit, &cms);
    char v8s[32] = "n/a", warn[160] = "";
    if (v8.ok)
      snprintf(v8s, sizeof v8s, "%.3fs", v8.med);
    if ((ours.ok && !same_result(ours.result, nat.result)) ||
        (v8.ok && !same_result(v8.result, nat.result)))
      snprintf(warn, sizeof warn, "  RESULT MISMATCH (native %.17g ours %.17g)", nat.result,
               ours.result);
    if (ours.ok) {
      double ratio = ours.med / nat.med;
      printf("interp/%-11s ours %.3fs  native %.3fs  v8 %s  %.1fx native (goal <=8x)  "
             "med/%d [%.3f..%.3f]%s\n",
             k->name, ours.med, nat.med, v8s, ratio, runs, ours.min, ours.max, warn);
      lg_ours += log(ratio), n_ours++;
    } else {
      printf("interp/%-11s ours FAILED  native %.3fs  v8 %s\n", k->name, nat.med, v8s);
    }
    if (v8.ok)
      lg_v8 += log(v8.med / nat.med), n_v8++;
    if (jit.ok && njl < 8) {
      double ratio = jit.med / nat.med;
      snprintf(jit_lines[njl++], sizeof jit_lines[0],
               "jit/%-14s ours %.3fs  native %.3fs  v8 %s  %.2fx native (goal <=1.1x)  compile "
               "%.1f ms  med/%d [%.3f..%.3f]%s",
               k->name, jit.med, nat.med, v8s, ratio, cms, runs, jit.min, jit.max,
               same_result(jit.result, nat.result) ? "" : "  RESULT MISMATCH");
      lg_jit += log(ratio), n_jit++;
      if (v8.ok) lg_jv8 += log(v8.med / nat.med);
    }
    if (k->native == n_score)
      score_ours = ours, score_native = nat, score_v8 = v8;
    fflush(stdout);
  }
  if (n_ours)
    printf(
        "interp/geomean     ours %.1fx native over %d kernels  v8 %.1fx  (goal <=8x; references: "
        "wasm3 12.8x, WAMR fast-interp 16.3x, V8 1.3x)\n",
        exp(lg_ours / n_ours), n_ours, n_v8 ? exp(lg_v8 / n_v8) : 0.0);
  for (i = 0; i < njl; i++)
    printf("%s\n", jit_lines[i]);
  if (n_jit)
    printf("jit/geomean        ours %.2fx native over %d kernels  v8 %.2fx in the same run  (goal "
           "<=1.1x, ahead of V8; references: WAMR LLVM JIT 1.22x, V8 1.30x)\n",
           exp(lg_jit / n_jit), n_jit, n_v8 ? exp(lg_jv8 / n_jit) : 0.0);
  if (score_ours.ok) {
    double per = 1e9 / SCORE_CALLS;
    char v8s[32] = "n/a";
    if (score_v8.ok)
      snprintf(v8s, sizeof v8s, "%.1f ns", score_v8.med * per);
    printf("udf/custom_score_in_module  ours %.1f ns/call  native %.1f ns  v8 %s  %s (goal <25 ns; "
           "wasm3 38 ns, WAMR 45 ns)  med/%d [%.1f..%.1f]\n",
           score_ours.med * per, score_native.med * per, v8s,
           score_ours.med * per < 25 ? "meets goal" : "MISSES goal", runs, score_ours.min * per,
           score_ours.max * per);
  }
  bench_host_call(false);
  bench_host_call(true);
  bench_load();
  return 0;
}
