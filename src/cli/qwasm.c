/* qwasm.c: the engine on its own, from the command line (DESIGN.md §1): validate, run (an
** export with arguments, or a WASI command's _start), inspect, and the spec-suite runner (in
** spec.c). Every error is one line on stderr and a non-zero exit: 1 for a failure of the
** module or the call, 2 for bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit.h"
#include "spec.h"
#include "udf.h"
#include "wasm.h"

static const char *prog = "qwasm";

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: qwasm <command> [options]\n"
      "\n"
      "commands:\n"
      "  validate FILE.wasm             decode and validate; prints \"FILE: valid\" or the error\n"
      "  run FILE.wasm [options] [ARGS...]\n"
      "                                 run a WASI command's _start (ARGS become its argv),\n"
      "                                 or with --invoke NAME the export NAME with ARGS\n"
      "                                 parsed per its parameter types; prints `42 : i32`\n"
      "      --invoke NAME              the export to call\n"
      "      --fuel N                   budget: loop back-edges + calls (default unlimited)\n"
      "      --max-pages N              memory cap in 64 KiB pages (default 256 = 16 MiB)\n"
      "      --max-depth N              call depth (default 10000)\n"
      "      --tier interp|jit          interpreter (default), or compile to native code first\n"
      "  inspect FILE.wasm              imports, exports with signatures, section sizes\n"
      "  compile FILE.wasm --target T --out F [--sign KEY]\n"
      "                                 an AOT artifact: FILE's native code for target T\n"
      "                                 (x86_64-linux or aarch64-linux, from any host) in the\n"
      "                                 container a node loads; --sign KEY also writes F.sig\n"
      "  spec [-v] [--known F] DIR...   run the spec suite's wast2json output (qwasm spec -h)\n"
      "  help                           this text\n"
      "\n"
      "exit status: 0 ok (run: the WASI exit code), 1 invalid module / trap / error, 2 usage\n");
}

static int die(int code, const char *fmt, ...) QB_PRINTF(2, 3);
static int die(int code, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return code;
}

int read_file(const char *path, uint8_t **buf, size_t *len) {
  FILE *f = fopen(path, "rb");
  long n;
  *buf = NULL;
  if (!f)
    return -1;
  if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
    fclose(f);
    return -1;
  }
  *buf = malloc((size_t)n + 1);
  if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
    free(*buf);
    *buf = NULL;
    fclose(f);
    if (!errno)
      errno = EIO;
    return -1;
  }
  fclose(f);
  *len = (size_t)n;
  return 0;
}

/* Load FILE into *M with engine *E. Prints the error and returns non-zero on failure. */
static int load(const char *file, const qw_limits *lim, qw_engine **e, qw_module **m) {
  uint8_t *buf;
  size_t len;
  qb_err err;
  qb_code rc;
  *e = NULL;
  *m = NULL;
  if (read_file(file, &buf, &len))
    return die(1, "%s: %s", file, strerror(errno));
  if ((rc = qw_engine_new(lim, e, &err))) {
    free(buf);
    return die(1, "engine: %s", err.msg);
  }
  rc = qw_module_load(*e, buf, len, m, &err);
  free(buf);
  if (rc) {
    fprintf(stderr, "%s: %s\n", file, err.msg);
    qw_engine_free(*e);
    *e = NULL;
    return 1;
  }
  return 0;
}

/* ---- validate ----------------------------------------------------------------------------- */

static int cmd_validate(int argc, char **argv) {
  int i, bad = 0;
  if (argc < 1)
    return usage(stderr), 2;
  for (i = 0; i < argc; i++) {
    qw_engine *e;
    qw_module *m;
    if (load(argv[i], NULL, &e, &m)) {
      bad = 1;
      continue;
    }
    printf("%s: valid\n", argv[i]);
    qw_module_free(m);
    qw_engine_free(e);
  }
  return bad;
}

/* ---- signatures and values ---------------------------------------------------------------- */

static void print_types(FILE *f, const uint8_t *t, uint32_t n) {
  uint32_t i;
  fputc('(', f);
  for (i = 0; i < n; i++)
    fprintf(f, "%s%s", i ? ", " : "", qw_type_name((qw_type)t[i]));
  fputc(')', f);
}

static void print_sig(FILE *f, const qw_sig *s) {
  print_types(f, s->params, s->nparams);
  fputs(" -> ", f);
  print_types(f, s->results, s->nresults);
}

/* Parse S as a value of type T. Integers: decimal or 0x hex, signed or unsigned; floats: C
** syntax plus nan/inf; refs: only "null". */
static int parse_arg(const char *s, qw_type t, qw_val *v) {
  char *end;
  memset(v, 0, sizeof *v);
  v->type = t;
  errno = 0;
  switch (t) {
  case QW_I32:
  case QW_I64: {
    int neg = s[0] == '-';
    uint64_t u;
    if (neg) {
      long long x = strtoll(s, &end, 0);
      u = (uint64_t)x;
      if (t == QW_I32 && x < INT32_MIN)
        errno = ERANGE;
    } else {
      u = strtoull(s, &end, 0);
      if (t == QW_I32 && u > UINT32_MAX)
        errno = ERANGE;
    }
    if (end == s || *end || errno)
      return -1;
    if (t == QW_I32)
      v->of.i32 = (uint32_t)u;
    else
      v->of.i64 = u;
    return 0;
  }
  case QW_F32: {
    float x = strtof(s, &end);
    if (end == s || *end)
      return -1;
    *v = qw_f32(x);
    return 0;
  }
  case QW_F64: {
    double x = strtod(s, &end);
    if (end == s || *end)
      return -1;
    *v = qw_f64(x);
    return 0;
  }
  case QW_FUNCREF:
  case QW_EXTERNREF:
    if (strcmp(s, "null"))
      return -1;
    v->of.ref = NULL;
    return 0;
  default:
    return -1;
  }
}

static void print_val(const qw_val *v, qw_type t) {
  switch (t) {
  case QW_I32:
    printf("%" PRId32 " : i32\n", (int32_t)v->of.i32);
    break;
  case QW_I64:
    printf("%" PRId64 " : i64\n", (int64_t)v->of.i64);
    break;
  case QW_F32: {
    float f;
    memcpy(&f, &v->of.f32_bits, 4);
    if (isnan(f))
      printf("nan:0x%x : f32\n", v->of.f32_bits & 0x7fffffu);
    else
      printf("%.9g : f32\n", (double)f);
    break;
  }
  case QW_F64: {
    double d;
    memcpy(&d, &v->of.f64_bits, 8);
    if (isnan(d))
      printf("nan:0x%" PRIx64 " : f64\n", v->of.f64_bits & (uint64_t)0xfffffffffffffull);
    else
      printf("%.17g : f64\n", d);
    break;
  }
  case QW_FUNCREF:
    printf("%s : funcref\n", v->of.ref ? "<func>" : "null");
    break;
  case QW_EXTERNREF:
    if (v->of.ref)
      printf("%p : externref\n", v->of.ref);
    else
      printf("null : externref\n");
    break;
  default:
    printf("? : %s\n", qw_type_name(t));
    break;
  }
}

/* ---- run ---------------------------------------------------------------------------------- */

static void pass_through(void *ud, int fd, const char *p, size_t n) {
  FILE *f = fd == 2 ? stderr : stdout;
  fwrite(p, 1, n, f);
  if (fd == 2)
    fflush(stderr);
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (!s)
    return die(2, "%s needs a value", opt), -1;
  *out = strtoull(s, &end, 0);
  if (end == s || *end || errno || s[0] == '-')
    return die(2, "%s: bad number \"%s\"", opt, s), -1;
  return 0;
}

/* `qwasm run`'s command line. Options are table-driven: to add one, give it a field here (if it
** needs one), a setter and a row in run_opts[], and a line in usage(). */
typedef struct run_cmd {
  const char *file, *invoke;
  qw_limits lim;
  char **rest; /* the arguments after FILE: the WASI argv, or the --invoke arguments */
  int nrest;
  int jit; /* --tier jit: compile to native code (src/jit) before the call */
} run_cmd;

/* Store option NAME's value VAL (NULL when the command line ended) into R: 0, or the exit
** status after saying why */
typedef int (*run_setter)(run_cmd *r, const char *name, const char *val);

static int set_invoke(run_cmd *r, const char *name, const char *val) {
  (void)name;
  if (!val)
    return die(2, "--invoke needs a name");
  r->invoke = val;
  return 0;
}

static int set_fuel(run_cmd *r, const char *name, const char *val) {
  uint64_t n;
  if (parse_u64(name, val, &n))
    return 2;
  r->lim.fuel = n;
  return 0;
}

static int set_max_pages(run_cmd *r, const char *name, const char *val) {
  uint64_t n;
  if (parse_u64(name, val, &n))
    return 2;
  if (n > 65536)
    return die(2, "--max-pages: at most 65536");
  r->lim.max_memory_pages = (uint32_t)n;
  return 0;
}

static int set_max_depth(run_cmd *r, const char *name, const char *val) {
  uint64_t n;
  if (parse_u64(name, val, &n) || n > UINT32_MAX)
    return 2;
  r->lim.max_call_depth = (uint32_t)n;
  return 0;
}

static int set_tier(run_cmd *r, const char *name, const char *val) {
  if (!val || (strcmp(val, "interp") && strcmp(val, "jit")))
    return die(2, "%s: interp or jit", name);
  r->jit = !strcmp(val, "jit");
  return 0;
}

static const struct run_opt {
  const char *name; /* every option takes one value */
  run_setter set;
} run_opts[] = {
    {"--invoke", set_invoke},
    {"--fuel", set_fuel},
    {"--max-pages", set_max_pages},
    {"--max-depth", set_max_depth},
    {"--tier", set_tier},
};

/* ARGV into R (R->rest has room for ARGC). Options may come before or after FILE; `--` ends
** them; an unknown `--x` before FILE is an error, after it an argument. 0 or the exit status. */
static int run_parse(int argc, char **argv, run_cmd *r) {
  int opts = 1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const struct run_opt *o = NULL;
    for (size_t j = 0; opts && j < QB_COUNTOF(run_opts); j++)
      if (!strcmp(a, run_opts[j].name))
        o = &run_opts[j];
    if (o) {
      int st = o->set(r, a, i + 1 < argc ? argv[i + 1] : NULL);
      if (st)
        return st;
      i++;
    } else if (opts && !strcmp(a, "--")) {
      opts = 0;
    } else if (opts && a[0] == '-' && a[1] == '-' && !r->file) {
      return die(2, "run: unknown option %s", a);
    } else if (!r->file) {
      r->file = a;
    } else {
      r->rest[r->nrest++] = argv[i];
    }
  }
  if (!r->file)
    return usage(stderr), 2;
  return 0;
}

/* The imports of M: the WASI sandbox is all a command-line run can offer (its argv: FILE and
** the arguments, unless --invoke). *IM: free with qw_imports_free. 0 or the exit status. */
static int run_imports(const run_cmd *r, qw_module *m, qw_imports **im, int *uses_wasi) {
  qb_err err;
  qb_code rc;
  *uses_wasi = 0;
  for (uint32_t k = 0; k < qw_module_import_count(m); k++) {
    qw_port p;
    qw_module_import(m, k, &p);
    if (strcmp(p.module, "wasi_snapshot_preview1"))
      return die(1, "%s: unknown import %s.%s (qwasm run provides only wasi_snapshot_preview1)",
                 r->file, p.module, p.name);
    *uses_wasi = 1;
  }
  if ((rc = qw_imports_new(im, &err)))
    return die(1, "%s", err.msg);
  if (*uses_wasi) {
    const char **wargv = calloc((size_t)r->nrest + 2, sizeof *wargv);
    if (!wargv)
      return die(1, "out of memory");
    wargv[0] = r->file;
    for (int i = 0; i < r->nrest && !r->invoke; i++)
      wargv[i + 1] = r->rest[i];
    qw_wasi_set_output(*im, pass_through, NULL);
    rc = qw_imports_add_wasi(*im, r->invoke ? 1 : r->nrest + 1, wargv, &err);
    free(wargv);
    if (rc)
      return die(1, "%s", err.msg);
  }
  return 0;
}

/* A WASI command: call _start; the exit status is the command's */
static int run_start(const run_cmd *r, qw_instance *inst) {
  qw_func *f = qw_instance_func(inst, "_start");
  qw_sig sig;
  uint64_t slots[1] = {0};
  const qw_trap *t;
  if (!f)
    return die(2, "%s: no _start export (a WASI command); use --invoke NAME", r->file);
  qw_func_sig(f, &sig);
  if (sig.nparams || sig.nresults)
    return die(1, "%s: _start must have type () -> ()", r->file);
  t = qw_func_call_raw(f, slots);
  fflush(stdout);
  if (!t)
    return 0;
  if (t == QW_TRAP_EXIT)
    return qw_instance_exit_code(inst) & 0xff;
  const char *where = qw_instance_trap_where(inst);
  return die(1, "%s: %s: %s%s%s%s", r->file, qw_trap_code(t) == QB_LIMIT ? "limit" : "trap",
             qw_trap_message(t), where[0] ? " (in " : "", where, where[0] ? ")" : "");
}

/* --invoke NAME: parse the arguments per its parameter types, call it, print the results */
static int run_invoke(const run_cmd *r, qw_instance *inst, int uses_wasi) {
  qw_func *f = qw_instance_func(inst, r->invoke);
  qw_sig sig;
  qw_val *args = NULL, *res = NULL;
  qb_err err;
  qb_code rc;
  int status;
  uint32_t k;
  if (!f)
    return die(1, "%s: no exported function \"%s\"", r->file, r->invoke);
  qw_func_sig(f, &sig);
  if ((uint32_t)r->nrest != sig.nparams) {
    fprintf(stderr, "%s: %s expects %u argument%s, got %d; its type is ", prog, r->invoke,
            sig.nparams, sig.nparams == 1 ? "" : "s", r->nrest);
    print_sig(stderr, &sig);
    fputc('\n', stderr);
    return 2;
  }
  args = calloc(sig.nparams + 1, sizeof *args);
  res = calloc(sig.nresults + 1, sizeof *res);
  if (!args || !res) {
    status = die(1, "out of memory");
    goto out;
  }
  for (k = 0; k < sig.nparams; k++)
    if (parse_arg(r->rest[k], (qw_type)sig.params[k], &args[k])) {
      status = die(2, "argument %u: \"%s\" is not a valid %s", k + 1, r->rest[k],
                   qw_type_name((qw_type)sig.params[k]));
      goto out;
    }
  rc = qw_func_call(f, args, sig.nparams, res, sig.nresults, &err);
  fflush(stdout);
  if (rc == QB_OK) {
    for (k = 0; k < sig.nresults; k++)
      print_val(&res[k], (qw_type)sig.results[k]);
    status = 0;
  } else if (uses_wasi && !strcmp(err.msg, qw_trap_message(QW_TRAP_EXIT))) {
    status = qw_instance_exit_code(inst) & 0xff;
  } else {
    const char *where = qw_instance_trap_where(inst);
    status = die(1, "%s: %s: %s%s%s%s", r->file,
                 rc == QB_TRAP    ? "trap"
                 : rc == QB_LIMIT ? "limit"
                                  : qb_code_name(rc),
                 err.msg, where[0] ? " (in " : "", where, where[0] ? ")" : "");
  }
out:
  free(args);
  free(res);
  return status;
}

static int cmd_run(int argc, char **argv) {
  run_cmd r;
  int status, uses_wasi = 0;
  qw_engine *e = NULL;
  qw_module *m = NULL;
  qw_imports *im = NULL;
  qw_instance *inst = NULL;
  qb_err err;
  memset(&r, 0, sizeof r);
  if (!(r.rest = calloc((size_t)argc + 1, sizeof *r.rest)))
    return die(1, "out of memory");
  if ((status = run_parse(argc, argv, &r)))
    goto out;
  status = 1;
  if (load(r.file, &r.lim, &e, &m) || (status = run_imports(&r, m, &im, &uses_wasi)))
    goto out;
  if (qw_instance_new(m, im, &r.lim, &inst, &err)) {
    status = die(1, "%s: %s", r.file, err.msg);
    goto out;
  }
  if (r.lim.fuel)
    qw_instance_set_fuel(inst, r.lim.fuel);
  if (r.jit) { /* eagerly, before the call (the start function, if any, ran interpreted) */
    qj_code *jc = NULL;
    if (qj_compile(m, NULL, &jc, &err) || qj_attach(jc, inst, &err)) {
      qj_code_free(jc);
      status = die(1, "%s: %s", r.file, err.msg);
      goto out;
    }
    qj_code_free(jc); /* the instance holds its reference */
  }
  status = r.invoke ? run_invoke(&r, inst, uses_wasi) : run_start(&r, inst);
out:
  qw_instance_free(inst);
  qw_imports_free(im);
  qw_module_free(m);
  qw_engine_free(e);
  free(r.rest);
  return status;
}

/* ---- inspect ------------------------------------------------------------------------------ */

static const char *section_name(uint8_t id) {
  static const char *const names[] = {"custom", "type",   "import",   "function", "table",
                                      "memory", "global", "export",   "start",    "element",
                                      "code",   "data",   "datacount"};
  return id < QB_COUNTOF(names) ? names[id] : "unknown";
}

static int leb(const uint8_t **p, const uint8_t *end, uint32_t *out) {
  uint32_t v = 0;
  int shift = 0;
  while (*p < end && shift < 35) {
    uint8_t b = *(*p)++;
    v |= (uint32_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80))
      return *out = v, 0;
  }
  return -1;
}

static const char *kind_name(qw_kind k) {
  switch (k) {
  case QW_KFUNC:
    return "func";
  case QW_KTABLE:
    return "table";
  case QW_KMEMORY:
    return "memory";
  case QW_KGLOBAL:
    return "global";
  }
  return "?";
}

static void print_port(const qw_port *p) {
  switch (p->kind) {
  case QW_KFUNC:
    print_sig(stdout, &p->sig);
    break;
  case QW_KGLOBAL:
    printf("%s%s", p->mut ? "mut " : "", qw_type_name((qw_type)p->type));
    break;
  case QW_KTABLE:
    printf("%s %u", qw_type_name((qw_type)p->type), p->min);
    if (p->has_max)
      printf("..%u", p->max);
    break;
  case QW_KMEMORY:
    printf("%u", p->min);
    if (p->has_max)
      printf("..%u", p->max);
    printf(" pages");
    break;
  }
}

static int cmd_inspect(int argc, char **argv) {
  const char *file;
  uint8_t *buf;
  size_t len;
  qw_engine *e;
  qw_module *m;
  qw_module_info info;
  const uint8_t *p, *end;
  uint32_t k;
  if (argc != 1)
    return usage(stderr), 2;
  file = argv[0];
  if (load(file, NULL, &e, &m))
    return 1;
  if (read_file(file, &buf, &len))
    return die(1, "%s: %s", file, strerror(errno));
  qw_module_get_info(m, &info);
  printf("%s: %zu bytes\n", file, len);
  printf("sections:\n");
  p = buf + 8;
  end = buf + len;
  while (p < end) {
    uint8_t id = *p++;
    uint32_t size;
    const uint8_t *body;
    if (leb(&p, end, &size) || size > (size_t)(end - p))
      break;
    body = p;
    if (id == 0) {
      uint32_t nlen;
      const uint8_t *q = body;
      if (!leb(&q, body + size, &nlen) && nlen <= (size_t)(body + size - q))
        printf("  %-10s %8u bytes  \"%.*s\"\n", "custom", size, (int)nlen, (const char *)q);
      else
        printf("  %-10s %8u bytes\n", "custom", size);
    } else {
      printf("  %-10s %8u bytes\n", section_name(id), size);
    }
    p = body + size;
  }
  printf("imports (%u):\n", qw_module_import_count(m));
  for (k = 0; k < qw_module_import_count(m); k++) {
    qw_port port;
    qw_module_import(m, k, &port);
    printf("  %-6s %s.%s ", kind_name(port.kind), port.module, port.name);
    print_port(&port);
    putchar('\n');
  }
  printf("exports (%u):\n", qw_module_export_count(m));
  for (k = 0; k < qw_module_export_count(m); k++) {
    qw_port port;
    qw_module_export(m, k, &port);
    printf("  %-6s %s ", kind_name(port.kind), port.name);
    print_port(&port);
    printf("  [%s %u]\n", kind_name(port.kind), port.index);
  }
  printf("types %u, functions %u (%u imported), tables %u, memories %u, globals %u, "
         "element segments %u, data segments %u, code %u bytes\n",
         info.ntypes, info.nfuncs, info.nimported_funcs, info.ntables, info.nmemories,
         info.nglobals, info.nelems, info.ndatas, info.code_bytes);
  if (info.start_func >= 0)
    printf("start: function %" PRId64 "\n", info.start_func);
  free(buf);
  qw_module_free(m);
  qw_engine_free(e);
  return 0;
}

/* ---- compile (AOT) ------------------------------------------------------------------------ */

static int write_all(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int bad = fwrite(p, 1, n, f) != n;
  if (fclose(f) || bad) return -1;
  return 0;
}

static int cmd_compile(int argc, char **argv) {
  const char *file = NULL, *target = NULL, *outp = NULL, *key = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = !strcmp(a, "--target") ? &target
                        : !strcmp(a, "--out")  ? &outp
                        : !strcmp(a, "--sign") ? &key
                                               : NULL;
    if (slot) {
      if (i + 1 >= argc) return die(2, "compile: %s needs a value", a);
      *slot = argv[++i];
    } else if (a[0] == '-' && a[1] == '-') {
      return die(2, "compile: unknown option %s", a);
    } else if (!file) {
      file = a;
    } else {
      return die(2, "compile: one module at a time (got %s and %s)", file, a);
    }
  }
  if (!file || !target || !outp)
    return die(2, "usage: qwasm compile FILE.wasm --target x86_64-linux|aarch64-linux --out F "
                  "[--sign KEY]");
  if (!qu_aot_target(target))
    return die(2, "compile: unknown target \"%s\" (x86_64-linux or aarch64-linux)", target);
  uint8_t *wasm;
  size_t len;
  if (read_file(file, &wasm, &len)) return die(1, "%s: %s", file, strerror(errno));
  qb_buf art;
  qb_err err;
  qb_buf_init(&art);
  uint64_t t0 = qb_now_ns();
  qb_code rc = qu_aot_compile(wasm, len, target, &art, &err);
  free(wasm);
  if (rc) {
    qb_buf_fini(&art);
    return die(1, "%s: %s", file, err.msg);
  }
  int status = 0;
  uint8_t sig[QU_SIG_BYTES];
  char sp[4096];
  snprintf(sp, sizeof sp, "%s.sig", outp);
  /* sign first: a key that does not work leaves no unsigned artifact behind */
  if (key && qu_artifact_sign(key, (const uint8_t *)art.data, art.len, sig, &err)) {
    status = die(1, "%s", err.msg);
  } else if (write_all(outp, art.data, art.len)) {
    status = die(1, "%s: %s", outp, strerror(errno));
  } else {
    printf("%s: %s artifact, %zu bytes, compiled in %.1f ms\n", outp, target, art.len,
           (double)(qb_now_ns() - t0) / 1e6);
    if (key && write_all(sp, sig, sizeof sig))
      status = die(1, "%s: %s", sp, strerror(errno));
    else if (key)
      printf("%s: signature\n", sp);
  }
  qb_buf_fini(&art);
  return status;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  const char *cmd;
  qb_log_set(qb_log_stderr, NULL, QB_WARN);
  if (argc < 2)
    return usage(stderr), 2;
  cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
    return usage(stdout), 0;
  if (!strcmp(cmd, "validate"))
    return cmd_validate(argc - 2, argv + 2);
  if (!strcmp(cmd, "run"))
    return cmd_run(argc - 2, argv + 2);
  if (!strcmp(cmd, "inspect"))
    return cmd_inspect(argc - 2, argv + 2);
  if (!strcmp(cmd, "compile"))
    return cmd_compile(argc - 2, argv + 2);
  if (!strcmp(cmd, "spec"))
    return spec_main(argc - 2, argv + 2);
  fprintf(stderr, "%s: unknown command \"%s\" (try qwasm --help)\n", prog, cmd);
  return 2;
}
