/* spec.c: `qwasm spec DIR...`, the WebAssembly spec-suite runner. Reads wast2json output
** (DIR/<name>/<name>.json, or DIR/<name>.json) with jansson and runs every command against the
** engine. Each file runs in a child process that reports one line per assertion through a pipe,
** so an engine crash or hang costs that file's remaining assertions, not the run. Invariant:
** the child reports assertions in file order, one line each ("P", "S", "F <line> <why>"), plus
** "X <line> <why>" for a failed module/register/action command, and "D" when it finished. */
#include "spec.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jit.h"
#include "spectest.h"
#include "wasm.h"

/* ---- options and results ------------------------------------------------------------------ */

typedef struct known {
  char *key; /* "file.json:LINE" */
  int hit;
} known;

static struct {
  int verbose;
  int no_fork;
  int jit; /* --tier jit: every module's instance runs native code (compiled after it started) */
  unsigned timeout_s;
  known *known;
  size_t nknown;
  FILE *emit; /* --emit-known: every failure in known_failures.txt format */
  unsigned long passed, failed, skipped, unexpected, known_failed;
} S;

static int is_assertion(const char *type) {
  return strncmp(type, "assert_", 7) == 0;
}

static known *known_find(const char *key) {
  size_t i;
  for (i = 0; i < S.nknown; i++)
    if (!strcmp(S.known[i].key, key))
      return &S.known[i];
  return NULL;
}

static int load_known(const char *path) {
  FILE *f = fopen(path, "r");
  char line[1024];
  if (!f) {
    fprintf(stderr, "qwasm spec: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  while (fgets(line, sizeof line, f)) {
    char *p = line, *end;
    known *k;
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '#' || *p == '\n' || !*p)
      continue;
    for (end = p; *end && *end != ' ' && *end != '\t' && *end != '\n'; end++) {
    }
    *end = 0;
    if (!(k = realloc(S.known, (S.nknown + 1) * sizeof *k)))
      abort();
    S.known = k;
    S.known[S.nknown].key = strdup(p);
    S.known[S.nknown++].hit = 0;
  }
  fclose(f);
  return 0;
}

/* One failure FILE:LINE WHY, as reported by a child or by the parent after a crash. */
static void record_failure(const char *file, long line, const char *why) {
  char key[512];
  known *k;
  snprintf(key, sizeof key, "%s:%ld", file, line);
  k = known_find(key);
  S.failed++;
  if (k) {
    k->hit = 1;
    S.known_failed++;
  } else {
    S.unexpected++;
  }
  if (S.emit)
    fprintf(S.emit, "%s %s\n", key, why);
  if (S.verbose || (!k && S.nknown))
    printf("FAIL %s %s%s\n", key, why, k ? " (known)" : "");
}

/* ---- the child: running one file ---------------------------------------------------------- */

typedef struct named {
  char *name;
  qw_module *mod;
  qw_instance *inst;
} named;

typedef struct run {
  FILE *out;       /* the report pipe */
  const char *dir; /* the JSON's folder, for module file names */
  qw_engine *eng;
  qw_imports *im; /* spectest + every `register`ed instance */
  qw_module *st_mod;
  qw_instance *st_inst;
  named *mods; /* every module ever instantiated (freed at the end) */
  size_t nmods;
  qw_instance *cur; /* the most recent module's instance; NULL if it failed */
  qw_limits lim;    /* the spec's limits, not the sandbox's (memories grow to 4 GiB) */
} run;

static void report(run *r, char kind, long line, const char *fmt, ...) QB_PRINTF(4, 5);
static void report(run *r, char kind, long line, const char *fmt, ...) {
  char why[600];
  va_list ap;
  size_t i;
  if (kind == 'P' || kind == 'S') {
    fprintf(r->out, "%c\n", kind);
  } else {
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    for (i = 0; why[i]; i++)
      if (why[i] == '\n' || why[i] == '\r')
        why[i] = ' ';
    fprintf(r->out, "%c %ld %s\n", kind, line, why);
  }
  fflush(r->out);
}

/* Load the module file FNAME (relative to the JSON's folder). */
static qb_code load(run *r, const char *fname, qw_module **m, qb_err *err) {
  char path[4096];
  uint8_t *buf;
  size_t len;
  qb_code rc;
  *m = NULL;
  snprintf(path, sizeof path, "%s/%s", r->dir, fname ? fname : "?");
  if (!fname || read_file(path, &buf, &len))
    return qb_fail(err, QB_IO, "cannot read %s", path);
  rc = qw_module_load(r->eng, buf, len, m, err);
  free(buf);
  return rc;
}

static qw_instance *find_inst(run *r, const char *name) {
  size_t i;
  if (!name)
    return r->cur;
  for (i = r->nmods; i-- > 0;)
    if (r->mods[i].name && !strcmp(r->mods[i].name, name))
      return r->mods[i].inst;
  return NULL;
}

/* A value from JSON. Returns 0, or -1 for something we cannot represent (v128: skipped),
** or -2 for junk. Externref N is the host pointer N+1 (0 stays null). */
static int parse_val(json_t *j, qw_val *v) {
  const char *type = json_string_value(json_object_get(j, "type"));
  json_t *jv = json_object_get(j, "value");
  const char *s = json_string_value(jv);
  if (!type)
    return -2;
  memset(v, 0, sizeof *v);
  if (!strcmp(type, "v128"))
    return -1;
  if (!strcmp(type, "i32"))
    v->type = QW_I32, v->of.i32 = s ? (uint32_t)strtoull(s, NULL, 10) : 0;
  else if (!strcmp(type, "i64"))
    v->type = QW_I64, v->of.i64 = s ? strtoull(s, NULL, 10) : 0;
  else if (!strcmp(type, "f32"))
    v->type = QW_F32, v->of.f32_bits = s ? (uint32_t)strtoull(s, NULL, 10) : 0;
  else if (!strcmp(type, "f64"))
    v->type = QW_F64, v->of.f64_bits = s ? strtoull(s, NULL, 10) : 0;
  else if (!strcmp(type, "externref"))
    v->type = QW_EXTERNREF,
    v->of.ref = (!s || !strcmp(s, "null")) ? NULL : (void *)(uintptr_t)(strtoull(s, NULL, 10) + 1);
  else if (!strcmp(type, "funcref"))
    v->type = QW_FUNCREF, v->of.ref = NULL;
  else
    return -2;
  return 0;
}

static int has_v128(json_t *arr) {
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x) {
    const char *t = json_string_value(json_object_get(x, "type"));
    if (t && !strcmp(t, "v128"))
      return 1;
  }
  return 0;
}

static void fmt_val(char *buf, size_t n, const qw_val *v, qw_type t) {
  switch (t) {
  case QW_I32:
    snprintf(buf, n, "i32:%u", v->of.i32);
    break;
  case QW_I64:
    snprintf(buf, n, "i64:%llu", (unsigned long long)v->of.i64);
    break;
  case QW_F32: {
    float f;
    memcpy(&f, &v->of.f32_bits, 4);
    snprintf(buf, n, "f32:%.9g (0x%08x)", (double)f, v->of.f32_bits);
    break;
  }
  case QW_F64: {
    double d;
    memcpy(&d, &v->of.f64_bits, 8);
    snprintf(buf, n, "f64:%.17g (0x%016llx)", d, (unsigned long long)v->of.f64_bits);
    break;
  }
  case QW_FUNCREF:
    snprintf(buf, n, "funcref:%s", v->of.ref ? "func" : "null");
    break;
  case QW_EXTERNREF:
    if (v->of.ref)
      snprintf(buf, n, "externref:%llu", (unsigned long long)((uintptr_t)v->of.ref - 1));
    else
      snprintf(buf, n, "externref:null");
    break;
  default:
    snprintf(buf, n, "?%d", (int)t);
    break;
  }
}

/* Does GOT match the JSON EXPECTED (with nan:canonical / nan:arithmetic patterns)? */
static int val_matches(json_t *expected, const qw_val *got, char *why, size_t n) {
  const char *type = json_string_value(json_object_get(expected, "type"));
  const char *s = json_string_value(json_object_get(expected, "value"));
  qw_val want;
  char g[96], w[96];
  int ok;
  if (!type)
    return snprintf(why, n, "bad expected value"), 0;
  if (s && !strncmp(s, "nan:", 4)) {
    int canon = !strcmp(s, "nan:canonical");
    if (got->type != (!strcmp(type, "f32") ? QW_F32 : QW_F64))
      return snprintf(why, n, "got a %s, expected a %s", qw_type_name(got->type), type), 0;
    if (!strcmp(type, "f32")) {
      uint32_t b = got->of.f32_bits;
      ok = canon ? (b & 0x7fffffffu) == 0x7fc00000u : (b & 0x7fc00000u) == 0x7fc00000u;
      fmt_val(g, sizeof g, got, QW_F32);
    } else {
      uint64_t b = got->of.f64_bits;
      ok = canon ? (b & 0x7fffffffffffffffull) == 0x7ff8000000000000ull
                 : (b & 0x7ff8000000000000ull) == 0x7ff8000000000000ull;
      fmt_val(g, sizeof g, got, QW_F64);
    }
    if (!ok)
      snprintf(why, n, "got %s, expected %s", g, s);
    return ok;
  }
  if (parse_val(expected, &want))
    return snprintf(why, n, "bad expected value"), 0;
  if (got->type != want.type)
    return snprintf(why, n, "got a %s, expected a %s", qw_type_name(got->type),
                    qw_type_name(want.type)),
           0;
  switch (want.type) {
  case QW_I32:
    ok = got->of.i32 == want.of.i32;
    break;
  case QW_F32:
    ok = got->of.f32_bits == want.of.f32_bits;
    break;
  case QW_I64:
    ok = got->of.i64 == want.of.i64;
    break;
  case QW_F64:
    ok = got->of.f64_bits == want.of.f64_bits;
    break;
  case QW_EXTERNREF:
    ok = got->of.ref == want.of.ref;
    break;
  case QW_FUNCREF:
    ok = s && !strcmp(s, "null") ? got->of.ref == NULL : got->of.ref != NULL;
    break;
  default:
    ok = 0;
  }
  if (!ok) {
    fmt_val(g, sizeof g, got, want.type);
    fmt_val(w, sizeof w, &want, want.type);
    snprintf(why, n, "got %s, expected %s", g, w);
  }
  return ok;
}

/* Perform ACTION. Returns the engine's code; results in RES/NRES. -1 in *SKIP for v128. */
static qb_code do_action(run *r, json_t *action, qw_val *res, uint32_t *nres, int *skip,
                         qb_err *err) {
  const char *type = json_string_value(json_object_get(action, "type"));
  const char *field = json_string_value(json_object_get(action, "field"));
  size_t field_len = json_string_length(json_object_get(action, "field")); /* may hold NUL */
  const char *modname = json_string_value(json_object_get(action, "module"));
  qw_instance *inst = find_inst(r, modname);
  *nres = 0;
  *skip = 0;
  qb_err_clear(err);
  if (!type || !field)
    return qb_fail(err, QB_INVAL, "bad action");
  if (!inst)
    return qb_fail(err, QB_NOTFOUND, "no module %s (it failed to instantiate)",
                   modname ? modname : "(current)");
  if (!strcmp(type, "get")) {
    qw_extern *x = qw_instance_export_n(inst, field, field_len);
    if (!x || qw_extern_kind(x) != QW_KGLOBAL)
      return qb_fail(err, QB_NOTFOUND, "no global export \"%s\"", field);
    *nres = 1;
    return qw_extern_global_get(x, &res[0], err);
  }
  if (!strcmp(type, "invoke")) {
    json_t *jargs = json_object_get(action, "args"), *ja;
    qw_val args[64];
    qw_extern *fx = qw_instance_export_n(inst, field, field_len);
    qw_func *f = fx ? qw_extern_func(fx) : NULL;
    qw_sig sig;
    size_t i;
    if (!f)
      return qb_fail(err, QB_NOTFOUND, "no function export \"%s\"", field);
    if (json_array_size(jargs) > 64)
      return qb_fail(err, QB_INVAL, "too many arguments");
    json_array_foreach(jargs, i, ja) {
      int pr = parse_val(ja, &args[i]);
      if (pr == -1)
        return *skip = 1, QB_OK;
      if (pr)
        return qb_fail(err, QB_INVAL, "bad argument %zu", i);
    }
    qw_func_sig(f, &sig);
    if (sig.nresults > 64)
      return qb_fail(err, QB_INVAL, "too many results");
    *nres = sig.nresults;
    return qw_func_call(f, args, (uint32_t)json_array_size(jargs), res, sig.nresults, err);
  }
  return qb_fail(err, QB_INVAL, "unknown action type %s", type);
}

/* The engine's trap message MSG matches the suite's TEXT when one contains the other's start:
** "uninitialized element 2" is reported as "uninitialized element". */
static int trap_text_matches(const char *msg, const char *text) {
  size_t n = strlen(msg);
  if (!text || strstr(msg, text))
    return 1;
  return n > 0 && strncmp(text, msg, n) == 0;
}

static void add_module(run *r, const char *name, qw_module *m, qw_instance *inst) {
  named *nm = realloc(r->mods, (r->nmods + 1) * sizeof *nm);
  if (!nm)
    abort();
  r->mods = nm;
  nm[r->nmods].name = name ? strdup(name) : NULL;
  nm[r->nmods].mod = m;
  nm[r->nmods++].inst = inst;
}

static const char *code_name(qb_code c) {
  return qb_code_name(c);
}

static void run_command(run *r, json_t *cmd) {
  const char *type = json_string_value(json_object_get(cmd, "type"));
  long line = (long)json_integer_value(json_object_get(cmd, "line"));
  const char *fname = json_string_value(json_object_get(cmd, "filename"));
  const char *text = json_string_value(json_object_get(cmd, "text"));
  json_t *action = json_object_get(cmd, "action");
  qb_err err;
  qw_module *m = NULL;
  qw_instance *inst = NULL;
  qw_val res[64];
  uint32_t nres, i;
  int skip;
  qb_code rc;
  char why[400];
  if (!type)
    return;
  qb_err_clear(&err);

  if (!strcmp(type, "module")) {
    const char *name = json_string_value(json_object_get(cmd, "name"));
    r->cur = NULL;
    if ((rc = load(r, fname, &m, &err)) || (rc = qw_instance_new(m, r->im, &r->lim, &inst, &err))) {
      report(r, 'X', line, "module %s: %s: %s", fname ? fname : "?", code_name(rc), err.msg);
      if (m)
        add_module(r, NULL, m, NULL); /* see assert_uninstantiable */
      return;
    }
    if (S.jit) { /* after instantiation (the start function ran interpreted) */
      qj_code *jc = NULL;
      if ((rc = qj_compile(m, NULL, &jc, &err)) || (rc = qj_attach(jc, inst, &err))) {
        qj_code_free(jc);
        report(r, 'X', line, "module %s: jit: %s: %s", fname ? fname : "?", code_name(rc), err.msg);
        qw_instance_free(inst);
        add_module(r, NULL, m, NULL);
        return;
      }
      qj_code_free(jc); /* the instance holds its own reference */
    }
    add_module(r, name, m, inst);
    r->cur = inst;
  } else if (!strcmp(type, "register")) {
    const char *as = json_string_value(json_object_get(cmd, "as"));
    const char *name = json_string_value(json_object_get(cmd, "name"));
    qw_instance *x = find_inst(r, name);
    if (!x || !as) {
      report(r, 'X', line, "register %s: no such module", as ? as : "?");
      return;
    }
    if ((rc = qw_imports_add_instance(r->im, as, x, &err)))
      report(r, 'X', line, "register %s: %s: %s", as, code_name(rc), err.msg);
  } else if (!strcmp(type, "action")) {
    rc = do_action(r, action, res, &nres, &skip, &err);
    if (rc)
      report(r, 'X', line, "action: %s: %s", code_name(rc), err.msg);
  } else if (!strcmp(type, "assert_return")) {
    json_t *exp = json_object_get(cmd, "expected");
    if (has_v128(exp))
      return report(r, 'S', line, NULL);
    rc = do_action(r, action, res, &nres, &skip, &err);
    if (skip)
      return report(r, 'S', line, NULL);
    if (rc)
      return report(r, 'F', line, "assert_return %s: %s: %s",
                    json_string_value(json_object_get(action, "field")), code_name(rc), err.msg);
    if (nres != json_array_size(exp))
      return report(r, 'F', line, "assert_return %s: %u results, expected %zu",
                    json_string_value(json_object_get(action, "field")), nres,
                    json_array_size(exp));
    for (i = 0; i < nres; i++)
      if (!val_matches(json_array_get(exp, i), &res[i], why, sizeof why))
        return report(r, 'F', line, "assert_return %s: result %u: %s",
                      json_string_value(json_object_get(action, "field")), i, why);
    report(r, 'P', line, NULL);
  } else if (!strcmp(type, "assert_trap") || !strcmp(type, "assert_exhaustion")) {
    int exh = type[7] == 'e';
    rc = do_action(r, action, res, &nres, &skip, &err);
    if (skip)
      return report(r, 'S', line, NULL);
    if (rc == QB_OK)
      return report(r, 'F', line, "%s %s: returned, expected trap \"%s\"", type,
                    json_string_value(json_object_get(action, "field")), text);
    if ((rc != QB_TRAP && !(exh && rc == QB_LIMIT)) || !trap_text_matches(err.msg, text))
      return report(r, 'F', line, "%s %s: %s: \"%s\", expected trap \"%s\"", type,
                    json_string_value(json_object_get(action, "field")), code_name(rc), err.msg,
                    text);
    report(r, 'P', line, NULL);
  } else if (!strcmp(type, "assert_invalid") || !strcmp(type, "assert_malformed")) {
    const char *mt = json_string_value(json_object_get(cmd, "module_type"));
    qb_code want = type[7] == 'i' ? QB_INVALID : QB_MALFORMED;
    if (mt && strcmp(mt, "binary"))
      return report(r, 'S', line, NULL); /* text format */
    rc = load(r, fname, &m, &err);
    qw_module_free(m);
    if (rc == want)
      return report(r, 'P', line, NULL);
    if (rc == QB_OK)
      return report(r, 'F', line, "%s %s: loaded, expected %s \"%s\"", type, fname, code_name(want),
                    text);
    report(r, 'F', line, "%s %s: %s: \"%s\", expected %s \"%s\"", type, fname, code_name(rc),
           err.msg, code_name(want), text);
  } else if (!strcmp(type, "assert_unlinkable") || !strcmp(type, "assert_uninstantiable")) {
    qb_code want = type[9] == 'l' ? QB_UNLINKABLE : QB_TRAP;
    if ((rc = load(r, fname, &m, &err)))
      return report(r, 'F', line, "%s %s: load failed: %s: %s", type, fname, code_name(rc),
                    err.msg);
    rc = qw_instance_new(m, r->im, &r->lim, &inst, &err);
    if (rc == QB_OK) {
      /* keep it: its start function may have changed shared state, as the suite expects */
      add_module(r, NULL, m, inst);
      return report(r, 'F', line, "%s %s: instantiated, expected \"%s\"", type, fname, text);
    }
    /* kept to the end of the file: a failed instantiation may already have put its functions
    ** in imported tables (spec 2.0), and the engine keeps them alive with the module */
    add_module(r, NULL, m, NULL);
    if (rc != want)
      return report(r, 'F', line, "%s %s: %s: \"%s\", expected %s \"%s\"", type, fname,
                    code_name(rc), err.msg, code_name(want), text);
    report(r, 'P', line, NULL);
  } else if (is_assertion(type)) {
    report(r, 'F', line, "unknown command %s", type);
  }
}

/* Run one JSON file, reporting to OUT. Returns 0, or -1 when the file cannot be read. */
static int run_file(const char *path, FILE *out) {
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr), *cmds, *cmd;
  run r;
  qb_err err;
  char *slash;
  size_t i;
  memset(&r, 0, sizeof r);
  r.out = out;
  r.lim.max_memory_pages = 65536;
  if (!root) {
    fprintf(out, "X 0 cannot parse JSON: %s\n", jerr.text);
    return -1;
  }
  r.dir = strdup(path);
  slash = strrchr((char *)r.dir, '/');
  if (slash)
    *slash = 0;
  else
    strcpy((char *)r.dir, ".");
  if (qw_engine_new(NULL, &r.eng, &err) || qw_imports_new(&r.im, &err) ||
      spectest_new(r.eng, &r.st_mod, &r.st_inst, &err) ||
      qw_imports_add_instance(r.im, "spectest", r.st_inst, &err)) {
    fprintf(out, "X 0 engine setup: %s\n", err.msg);
    fflush(out);
    /* fall through: every command then fails as "no module" or reports its own error */
  }
  cmds = json_object_get(root, "commands");
  json_array_foreach(cmds, i, cmd) run_command(&r, cmd);
  fprintf(out, "D\n");
  fflush(out);
  for (i = r.nmods; i-- > 0;)
    qw_instance_free(r.mods[i].inst);
  for (i = 0; i < r.nmods; i++) {
    qw_module_free(r.mods[i].mod);
    free(r.mods[i].name);
  }
  free(r.mods);
  qw_imports_free(r.im);
  qw_instance_free(r.st_inst);
  qw_module_free(r.st_mod);
  qw_engine_free(r.eng);
  free((char *)r.dir);
  json_decref(root);
  return 0;
}

/* ---- the parent: one child per file ------------------------------------------------------- */

/* The file's assertions, in order: line, and whether the runner skips it whatever the engine
** does (text modules, v128 values), so a crash does not turn those into failures. */
typedef struct aline {
  long line;
  int skip;
} aline;

static int json_has_v128(json_t *cmd) {
  json_t *a = json_object_get(cmd, "action");
  return has_v128(json_object_get(cmd, "expected")) || (a && has_v128(json_object_get(a, "args")));
}

static aline *assertion_lines(const char *path, size_t *n) {
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr), *cmd;
  aline *lines = NULL;
  size_t i;
  *n = 0;
  if (!root)
    return NULL;
  json_array_foreach(json_object_get(root, "commands"), i, cmd) {
    const char *t = json_string_value(json_object_get(cmd, "type"));
    const char *mt = json_string_value(json_object_get(cmd, "module_type"));
    if (t && is_assertion(t)) {
      aline *l = realloc(lines, (*n + 1) * sizeof *l);
      if (!l)
        abort();
      lines = l;
      lines[*n].line = (long)json_integer_value(json_object_get(cmd, "line"));
      lines[(*n)++].skip = (mt && strcmp(mt, "binary")) || json_has_v128(cmd);
    }
  }
  json_decref(root);
  return lines;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

static void spec_file(const char *path) {
  const char *file = base_name(path);
  size_t nlines, done = 0;
  aline *lines = assertion_lines(path, &nlines);
  unsigned long p0 = S.passed, f0 = S.failed, s0 = S.skipped;
  int fds[2], status = 0, finished = 0;
  long last_line = 0;
  pid_t pid;
  FILE *in;
  char buf[1024];

  if (!strncmp(file, "simd_", 5)) { /* no SIMD yet: every assertion is skipped */
    S.skipped += nlines;
    if (S.verbose)
      printf("%s: %zu skipped (SIMD)\n", file, nlines);
    free(lines);
    return;
  }
  fflush(stdout);
  if (S.no_fork) {
    FILE *tmp = tmpfile();
    if (!tmp)
      abort();
    run_file(path, tmp);
    rewind(tmp);
    in = tmp;
    pid = -1;
  } else {
    if (pipe(fds))
      abort();
    if ((pid = fork()) < 0)
      abort();
    if (pid == 0) {
      FILE *out;
      close(fds[0]);
      out = fdopen(fds[1], "w");
      if (S.timeout_s)
        alarm(S.timeout_s);
      run_file(path, out);
      fclose(out);
      _exit(0);
    }
    close(fds[1]);
    in = fdopen(fds[0], "r");
  }
  while (fgets(buf, sizeof buf, in)) {
    char *nl = strchr(buf, '\n'), *why;
    long line;
    if (nl)
      *nl = 0;
    switch (buf[0]) {
    case 'P':
      S.passed++, done++;
      break;
    case 'S':
      S.skipped++, done++;
      break;
    case 'D':
      finished = 1;
      break;
    case 'F':
    case 'X':
      line = strtol(buf + 2, &why, 10);
      if (*why == ' ')
        why++;
      record_failure(file, line, why);
      if (buf[0] == 'F')
        done++;
      last_line = line;
      break;
    default:
      break;
    }
    if ((buf[0] == 'P' || buf[0] == 'S') && done <= nlines)
      last_line = lines[done - 1].line;
  }
  fclose(in);
  if (pid > 0)
    waitpid(pid, &status, 0);
  if (!finished || (pid > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))) {
    char how[64], why[200];
    long at = done < nlines ? lines[done].line : last_line;
    if (pid > 0 && WIFSIGNALED(status))
      snprintf(how, sizeof how, "%s",
               WTERMSIG(status) == SIGALRM ? "timed out" : strsignal(WTERMSIG(status)));
    else
      snprintf(how, sizeof how, "exit %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    for (; done < nlines; done++) {
      if (lines[done].skip) {
        S.skipped++;
        continue;
      }
      if (lines[done].line == at)
        snprintf(why, sizeof why, "runner died (%s) at or before this assertion", how);
      else
        snprintf(why, sizeof why, "not run: runner died (%s) at line %ld", how, at);
      record_failure(file, lines[done].line, why);
    }
  }
  if (S.verbose)
    printf("%s: %lu passed, %lu failed, %lu skipped\n", file, S.passed - p0, S.failed - f0,
           S.skipped - s0);
  free(lines);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DIR/<x>/<x>.json for every subfolder, and DIR/NAME.json; sorted, for a stable order. */
static void spec_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **paths = NULL;
  size_t n = 0, i;
  struct stat st;
  if (!d) {
    if (!stat(dir, &st) && S_ISREG(st.st_mode)) {
      spec_file(dir);
    } else {
      fprintf(stderr, "qwasm spec: cannot open %s: %s\n", dir, strerror(errno));
      S.failed++, S.unexpected++;
    }
    return;
  }
  while ((e = readdir(d))) {
    char path[4096];
    size_t len = strlen(e->d_name);
    if (e->d_name[0] == '.')
      continue;
    if (len > 5 && !strcmp(e->d_name + len - 5, ".json"))
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    else
      snprintf(path, sizeof path, "%s/%s/%s.json", dir, e->d_name, e->d_name);
    if (stat(path, &st) || !S_ISREG(st.st_mode))
      continue;
    paths = realloc(paths, (n + 1) * sizeof *paths);
    if (!paths)
      abort();
    paths[n++] = strdup(path);
  }
  closedir(d);
  qsort(paths, n, sizeof *paths, cmp_str);
  for (i = 0; i < n; i++) {
    spec_file(paths[i]);
    free(paths[i]);
  }
  free(paths);
}

static void spec_usage(FILE *f) {
  fprintf(f,
          "usage: qwasm spec [-v] [--known FILE] [--emit-known FILE] [--no-fork] [--timeout S] "
          "DIR|FILE.json...\n"
          "  runs every command of DIR/*/*.json (wast2json output); ends with\n"
          "  `spec: N passed, M failed, K skipped` (assertions). SIMD files are skipped.\n"
          "  -v               list every failure as FILE.json:LINE and why\n"
          "  --known FILE     known failures (`file.json:LINE reason` per line): the exit status\n"
          "                   is 0 when every failure is listed there\n"
          "  --emit-known F   write every failure to F in that format\n"
          "  --no-fork        run files in this process (for debuggers; a crash ends the run)\n"
          "  --timeout S      seconds per file (default 300; 0 = none)\n"
          "  --tier interp|jit  the tier every module runs on (default interp)\n");
}

int spec_main(int argc, char **argv) {
  int i, ndirs = 0;
  size_t k;
  unsigned long fixed = 0;
  S.timeout_s = 300;
  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
      S.verbose = 1;
    else if (!strcmp(a, "--no-fork"))
      S.no_fork = 1;
    else if (!strcmp(a, "--tier") && i + 1 < argc) {
      const char *t = argv[++i];
      if (strcmp(t, "interp") && strcmp(t, "jit")) {
        fprintf(stderr, "qwasm spec: --tier: interp or jit, not %s\n", t);
        return 2;
      }
      S.jit = !strcmp(t, "jit");
    }
    else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return spec_usage(stdout), 0;
    else if (!strcmp(a, "--known") && i + 1 < argc) {
      if (load_known(argv[++i]))
        return 2;
    } else if (!strcmp(a, "--emit-known") && i + 1 < argc) {
      if (!(S.emit = fopen(argv[++i], "w"))) {
        fprintf(stderr, "qwasm spec: cannot write %s: %s\n", argv[i], strerror(errno));
        return 2;
      }
    } else if (!strcmp(a, "--timeout") && i + 1 < argc) {
      S.timeout_s = (unsigned)strtoul(argv[++i], NULL, 10);
    } else if (a[0] == '-') {
      fprintf(stderr, "qwasm spec: unknown option %s\n", a);
      spec_usage(stderr);
      return 2;
    } else {
      ndirs++;
    }
  }
  if (!ndirs) {
    spec_usage(stderr);
    return 2;
  }
  for (i = 0; i < argc; i++) {
    if (argv[i][0] == '-') {
      if (!strcmp(argv[i], "--known") || !strcmp(argv[i], "--emit-known") ||
          !strcmp(argv[i], "--timeout") || !strcmp(argv[i], "--tier"))
        i++;
      continue;
    }
    spec_dir(argv[i]);
  }
  if (S.emit)
    fclose(S.emit);
  for (k = 0; k < S.nknown; k++)
    if (!S.known[k].hit) {
      fixed++;
      if (S.verbose)
        printf("FIXED %s (listed as known, now passes or was not run)\n", S.known[k].key);
    }
  if (S.nknown)
    printf("spec: %lu known failures, %lu unexpected; %lu listed ones no longer fail\n",
           S.known_failed, S.unexpected, fixed);
  printf("spec: %lu passed, %lu failed, %lu skipped\n", S.passed, S.failed, S.skipped);
  for (k = 0; k < S.nknown; k++)
    free(S.known[k].key);
  free(S.known);
  return S.nknown ? (S.unexpected ? 1 : 0) : (S.failed ? 1 : 0);
}
