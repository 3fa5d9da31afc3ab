/* h_script.c: the scripts of _update, _update_by_query and _reindex. Two kinds:
**  - an expression on the document, Painless-shaped but only what this small language does:
**    statements `ctx._source.F = E`, `+=`, `-=`, `*=`, `/=`, `ctx._source.F++` / `--`,
**    `ctx.op = 'noop' | 'delete'`, separated by ';'; E is arithmetic (+ - * / %, parentheses,
**    unary -) over numbers, 'strings' (+ joins them), true/false/null, params.X and
**    ctx._source.G. Anything else (if, loops, method calls, ...) is refused with a 400 naming
**    the construct: it is never half-run.
**  - a deployed UDF (its name as the source): a transform returning a string, run on each
**    document as script_fields runs it (its bindings: doc['F'], "_source.F", params); the
**    string is a JSON object merged into the document (a partial update, as "doc" in _update).
**    The UDF runs through a search of the documents' ids, so it reads what is refreshed. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct qs__script {
  char *source; /* qb_malloc'd */
  json_t *params;
  json_t *raw;  /* the script object as given (for the UDF's script_fields) */
  int udf;
};

#define SRC_MAX 16384

/* ---- the expression language ------------------------------------------------------------------ */

typedef struct px {
  const char *s, *p;
  json_t *src;    /* ctx._source; NULL: parse only */
  json_t *params;
  int op;         /* 0 index, 1 noop, 2 delete */
  char *why;      /* 512 */
  int failed, depth;
} px;

static int fail(px *x, const char *fmt, const char *tok) {
  if (x->failed) return 0;
  x->failed = 1;
  char t[48];
  size_t n = 0;
  while (tok[n] && n < 40 && tok[n] != ';' && tok[n] != '\n') n++;
  snprintf(t, sizeof t, "%.*s%s", (int)n, tok, tok[n] && tok[n] != ';' ? "..." : "");
  char head[256];
  snprintf(head, sizeof head, fmt, t);
  snprintf(x->why, 512,
           "script: %s at offset %d; not supported (this node runs ctx._source.F = / += / -= / "
           "*= / /= expressions over numbers, strings, params.X and ctx._source.G, ++/--, "
           "ctx.op = 'noop'|'delete', or a deployed UDF's name; not Painless)",
           head, (int)(tok - x->s));
  return 0;
}

static void ws(px *x) {
  while (isspace((unsigned char)*x->p)) x->p++;
}

static int word(px *x, const char *w) {
  ws(x);
  size_t n = strlen(w);
  if (strncmp(x->p, w, n) || isalnum((unsigned char)x->p[n]) || x->p[n] == '_') return 0;
  x->p += n;
  return 1;
}

/* An identifier or ['name'] after '.'; into OUT (256). */
static int member(px *x, char out[256]) {
  ws(x);
  if (*x->p == '.') {
    x->p++;
    const char *b = x->p;
    while (isalnum((unsigned char)*x->p) || *x->p == '_' || *x->p == '@') x->p++;
    if (x->p == b || x->p - b > 255) return fail(x, "expected a field name after [.]: [%s]", b);
    snprintf(out, 256, "%.*s", (int)(x->p - b), b);
    return 1;
  }
  if (*x->p == '[') {
    x->p++;
    ws(x);
    char q = *x->p;
    if (q != '\'' && q != '"') return fail(x, "expected a quoted name in []: [%s]", x->p);
    const char *b = ++x->p;
    while (*x->p && *x->p != q) x->p++;
    if (!*x->p || x->p - b > 255) return fail(x, "unterminated name: [%s]", b);
    snprintf(out, 256, "%.*s", (int)(x->p - b), b);
    x->p++;
    ws(x);
    if (*x->p != ']') return fail(x, "expected ]: [%s]", x->p);
    x->p++;
    return 1;
  }
  return fail(x, "expected .name or ['name']: [%s]", x->p);
}

/* ctx._source.a.b: the object holding the last name (created along the way when CREATE) and
** the name; *PARENT NULL when parsing only or the path is missing. */
static int source_path(px *x, json_t **parent, char last[256], int create) {
  json_t *obj = x->src;
  if (!member(x, last)) return 0;
  for (;;) {
    ws(x);
    if (*x->p != '.' && *x->p != '[') break;
    const char *save = x->p;
    char next[256];
    if (!member(x, next)) return 0;
    if (!strcmp(next, "length") || (*x->p == '(')) {
      x->p = save;
      return fail(x, "method or property [%s]", save + 1);
    }
    if (obj) {
      json_t *child = json_object_get(obj, last);
      if (!json_is_object(child) && create) {
        child = json_object();
        json_object_set_new(obj, last, child);
      }
      obj = json_is_object(child) ? child : NULL;
    }
    memcpy(last, next, 256);
  }
  ws(x);
  if (*x->p == '(') return fail(x, "method call [%s]", x->p);
  *parent = obj;
  return 1;
}

static json_t *expr(px *x);

static json_t *factor(px *x) {
  ws(x);
  if (++x->depth > 64) return fail(x, "nested too deeply: [%s]", x->p), NULL;
  json_t *v = NULL;
  const char *at = x->p;
  if (*x->p == '(') {
    x->p++;
    v = expr(x);
    ws(x);
    if (!x->failed && *x->p != ')') fail(x, "expected ): [%s]", x->p);
    else x->p++;
  } else if (*x->p == '-') {
    x->p++;
    json_t *a = factor(x);
    if (!x->failed && a && !json_is_number(a)) fail(x, "unary - on a value that is not a number: [%s]", at);
    else if (a) v = json_is_integer(a) ? json_integer(-json_integer_value(a)) : json_real(-json_number_value(a));
    json_decref(a);
    if (!a && !x->failed) v = json_null();
  } else if (isdigit((unsigned char)*x->p) || (*x->p == '.' && isdigit((unsigned char)x->p[1]))) {
    char *end;
    const char *b = x->p;
    while (isdigit((unsigned char)*x->p)) x->p++;
    if (*x->p == '.' || *x->p == 'e' || *x->p == 'E') v = json_real(strtod(b, &end));
    else v = json_integer(strtoll(b, &end, 10));
    x->p = end;
    if (*x->p == 'L' || *x->p == 'l' || *x->p == 'd' || *x->p == 'D' || *x->p == 'f' || *x->p == 'F') x->p++;
  } else if (*x->p == '\'' || *x->p == '"') {
    char q = *x->p++;
    const char *b = x->p;
    while (*x->p && *x->p != q && *x->p != '\\') x->p++;
    if (*x->p != q) fail(x, "unterminated string or an escape: [%s]", b - 1);
    else v = json_stringn(b, (size_t)(x->p++ - b));
  } else if (word(x, "true")) {
    v = json_true();
  } else if (word(x, "false")) {
    v = json_false();
  } else if (word(x, "null")) {
    v = json_null();
  } else if (word(x, "params")) {
    char name[256];
    if (member(x, name)) {
      json_t *pv = json_object_get(x->params, name);
      if (!pv) fail(x, "params has no such entry: [%s]", at);
      else v = json_deep_copy(pv);
    }
  } else if (word(x, "ctx")) {
    char name[256];
    if (member(x, name) && strcmp(name, "_source")) fail(x, "ctx member [%s]", at);
    json_t *parent = NULL;
    if (!x->failed && source_path(x, &parent, name, 0)) {
      json_t *fv = parent ? json_object_get(parent, name) : NULL;
      v = fv ? json_deep_copy(fv) : json_null();
    }
  } else {
    fail(x, "the construct [%s]", at);
  }
  x->depth--;
  if (!v && !x->failed) fail(x, "out of memory [%s]", at);
  return x->failed ? (json_decref(v), NULL) : v;
}

/* V as Painless would join it to a string. */
static const char *str_of(json_t *v, char buf[64]) {
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_integer(v)) snprintf(buf, 64, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) snprintf(buf, 64, "%.17g", json_real_value(v));
  else snprintf(buf, 64, "%s", json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
  return buf;
}

/* A op B (op one of + - * / %): numbers (integers stay integers, Java-style / and %), or +
** joining strings. */
static json_t *arith(px *x, char op, json_t *a, json_t *b, const char *at) {
  json_t *v = NULL;
  if (!x->src) v = json_null(); /* parse only */
  else if (op == '+' && (json_is_string(a) || json_is_string(b))) {
    char na[64], nb[64];
    const char *sa = str_of(a, na), *sb = str_of(b, nb);
    v = json_sprintf("%s%s", sa, sb);
  } else if (!json_is_number(a) || !json_is_number(b)) {
    fail(x, "arithmetic on a value that is not a number (a missing field is null): [%s]", at);
  } else if (json_is_integer(a) && json_is_integer(b)) {
    long long p = json_integer_value(a), q = json_integer_value(b);
    if ((op == '/' || op == '%') && !q) fail(x, "division by zero: [%s]", at);
    else v = json_integer(op == '+' ? p + q : op == '-' ? p - q : op == '*' ? p * q
                          : op == '/' ? p / q : p % q);
  } else {
    double p = json_number_value(a), q = json_number_value(b);
    v = json_real(op == '+' ? p + q : op == '-' ? p - q : op == '*' ? p * q
                  : op == '/' ? p / q : fmod(p, q));
    if (!isfinite(json_real_value(v))) {
      json_decref(v);
      v = NULL;
      fail(x, "the result is not a finite number: [%s]", at);
    }
  }
  json_decref(a);
  json_decref(b);
  return x->failed ? (json_decref(v), NULL) : v;
}

static json_t *term(px *x) {
  json_t *a = factor(x);
  for (;;) {
    ws(x);
    char op = *x->p;
    if (!a || (op != '*' && op != '/' && op != '%') || x->p[1] == '=') return a;
    const char *at = x->p++;
    json_t *b = factor(x);
    if (!b) return json_decref(a), NULL;
    a = arith(x, op, a, b, at);
  }
}

static json_t *expr(px *x) {
  json_t *a = term(x);
  for (;;) {
    ws(x);
    char op = *x->p;
    if (!a || (op != '+' && op != '-') || x->p[1] == '=' || x->p[1] == op) return a;
    const char *at = x->p++;
    json_t *b = term(x);
    if (!b) return json_decref(a), NULL;
    a = arith(x, op, a, b, at);
  }
}

static int statement(px *x) {
  ws(x);
  const char *at = x->p;
  if (!word(x, "ctx")) return fail(x, "the statement [%s]", at);
  char name[256];
  if (!member(x, name)) return 0;
  if (!strcmp(name, "op")) {
    ws(x);
    if (*x->p != '=' || x->p[1] == '=') return fail(x, "expected ctx.op = '...': [%s]", at);
    x->p++;
    json_t *v = factor(x);
    const char *s = json_string_value(v);
    int ok = s && (!strcmp(s, "noop") || !strcmp(s, "none") || !strcmp(s, "delete") ||
                   !strcmp(s, "index"));
    if (ok) x->op = !strcmp(s, "delete") ? 2 : !strcmp(s, "index") ? 0 : 1;
    json_decref(v);
    return ok ? 1 : fail(x, "ctx.op must be 'noop', 'delete' or 'index': [%s]", at);
  }
  if (strcmp(name, "_source")) return fail(x, "ctx member [%s]", at);
  json_t *parent = NULL;
  if (!source_path(x, &parent, name, 1)) return 0;
  ws(x);
  char op = *x->p;
  json_t *v = NULL;
  const char *opat = x->p;
  if ((op == '+' || op == '-') && x->p[1] == op) { /* ++ / -- */
    x->p += 2;
    json_t *old = parent ? json_object_get(parent, name) : NULL;
    v = arith(x, op, old ? json_incref(old) : json_null(), json_integer(1), opat);
  } else if (op == '=' && x->p[1] != '=') {
    x->p++;
    v = expr(x);
  } else if (strchr("+-*/", op) && op && x->p[1] == '=') {
    x->p += 2;
    json_t *b = expr(x);
    json_t *old = parent ? json_object_get(parent, name) : NULL;
    v = b ? arith(x, op, old ? json_incref(old) : json_null(), b, opat) : NULL;
  } else {
    return fail(x, "expected an assignment (=, +=, -=, *=, /=, ++, --): [%s]", opat);
  }
  if (!v) return 0;
  if (x->src && parent) json_object_set_new(parent, name, v);
  else json_decref(v);
  return 1;
}

static int program(px *x) {
  for (;;) {
    ws(x);
    if (!*x->p) return 1;
    if (!statement(x)) return 0;
    ws(x);
    if (*x->p == ';') x->p++;
    else if (*x->p) return fail(x, "the construct [%s]", x->p);
  }
}

/* ---- the script object ------------------------------------------------------------------------- */

static int is_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
  return 1;
}

int qs__script_new(json_t *script, qs__script **out, char reason[512]) {
  *out = NULL;
  const char *src = json_string_value(script);
  json_t *params = NULL;
  if (json_is_object(script)) {
    const char *k;
    json_t *v;
    json_object_foreach(script, k, v) {
      if (!strcmp(k, "source") || !strcmp(k, "params")) continue;
      if (!strcmp(k, "lang") && json_is_string(v) &&
          (!strcmp(json_string_value(v), "painless") || !strcmp(json_string_value(v), "expression")))
        continue;
      snprintf(reason, 512, "script: [%.64s]%s is not supported (served: source, params, lang "
               "painless|expression)", k, !strcmp(k, "id") ? " (stored scripts)" : "");
      return 400;
    }
    src = json_string_value(json_object_get(script, "source"));
    params = json_object_get(script, "params");
    if (params && !json_is_object(params)) {
      snprintf(reason, 512, "script: [params] must be an object");
      return 400;
    }
  }
  if (!src || strlen(src) > SRC_MAX) {
    snprintf(reason, 512, src ? "script: source longer than %d bytes" : "script: [source] is missing",
             SRC_MAX);
    return 400;
  }
  qs__script *s = qb_calloc(1, sizeof *s);
  size_t n = strlen(src);
  if (!s || !(s->source = qb_malloc(n + 1))) {
    qb_free(s, sizeof *s);
    snprintf(reason, 512, "out of memory");
    return 429;
  }
  memcpy(s->source, src, n + 1);
  s->params = params ? json_incref(params) : json_object();
  s->udf = is_name(src) && strncmp(src, "ctx", 3);
  s->raw = json_pack("{s:s, s:O}", "source", src, "params", s->params);
  if (!s->udf) { /* checked whole now: nothing is changed by a script that cannot run */
    px x = {.s = src, .p = src, .params = s->params, .why = reason};
    if (!program(&x)) {
      qs__script_free(s);
      return 400;
    }
  }
  *out = s;
  return 0;
}

void qs__script_free(qs__script *s) {
  if (!s) return;
  qb_free(s->source, strlen(s->source) + 1);
  json_decref(s->params);
  json_decref(s->raw);
  qb_free(s, sizeof *s);
}

int qs__script_is_udf(const qs__script *s) { return s->udf; }

int qs__script_run(const qs__script *s, json_t *source, int *op, char reason[512]) {
  px x = {.s = s->source, .p = s->source, .src = source, .params = s->params, .why = reason};
  int ok = program(&x);
  *op = x.op;
  return ok ? 0 : 400;
}

int qs__script_merge(json_t *source, json_t *patch, const char *id, char reason[512]) {
  const char *text = json_string_value(patch);
  json_error_t je;
  json_t *p = text ? json_loads(text, 0, &je) : NULL;
  if (!json_is_object(p)) {
    json_decref(p);
    snprintf(reason, 512, "the UDF's result for [%.200s] is not a JSON object as a string: "
             "it must return the fields to set, e.g. {\"n\": 2}", id);
    return 400;
  }
  const char *k;
  json_t *v;
  json_object_foreach(p, k, v) {
    json_t *old = json_object_get(source, k);
    if (json_is_object(old) && json_is_object(v)) json_object_update_recursive(old, v);
    else json_object_set(source, k, v);
  }
  json_decref(p);
  return 0;
}

int qs__script_udf(qs_req *r, const qs__script *s, const char *index, json_t *ids, json_t **out,
                   char reason[512]) {
  *out = NULL;
  json_t *body = json_pack("{s:{s:{s:O}}, s:I, s:b, s:{s:{s:O}}}", "query", "ids", "values", ids,
                           "size", (json_int_t)json_array_size(ids), "_source", 0,
                           "script_fields", "_qd_update", "script", s->raw);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text) return snprintf(reason, 512, "out of memory"), 429;
  const char *caps[1] = {index};
  json_t *res = NULL;
  int status = qs__subrequest(r, qs__h_search, caps, 1, text, strlen(text), &res);
  qs__json_free(text);
  if (status != 200) {
    const char *why = json_string_value(json_object_get(json_object_get(res, "error"), "reason"));
    snprintf(reason, 512, "%s", why ? why : "the UDF's search failed");
    json_decref(res);
    return status;
  }
  json_t *map = json_object(), *h;
  size_t i;
  json_array_foreach(json_object_get(json_object_get(res, "hits"), "hits"), i, h) {
    json_t *f = json_array_get(json_object_get(json_object_get(h, "fields"), "_qd_update"), 0);
    const char *id = json_string_value(json_object_get(h, "_id"));
    if (id) json_object_set(map, id, f ? f : json_null());
  }
  json_t *fails = json_object_get(json_object_get(res, "_shards"), "failures");
  if (json_array_size(fails)) {
    const char *why = json_string_value(
        json_object_get(json_object_get(json_array_get(fails, 0), "reason"), "reason"));
    snprintf(reason, 512, "the UDF failed: %s", why ? why : "(no reason)");
    json_decref(map);
    json_decref(res);
    return 400;
  }
  json_decref(res);
  *out = map;
  return 0;
}
