/* expr.c: the expression language (lang "expression"): source -> tree (Pratt parser) -> vector
** program (expr_int.h) with constants folded and params bound, once per request. The result is a
** qq_script like any UDF: bind declares the columns (_score, doc values as f64) and run executes
** the program over a block. Semantics follow Lucene expressions: every value is a double,
** comparisons and logic give 1/0, a missing doc value reads as 0 (`doc['f'].empty` tells).
** Invariant: compile errors carry the 0-based byte position in the source. */
#include "expr_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

/* ---- tree --------------------------------------------------------------------------------- */

typedef enum nkind { N_NUM, N_SCORE, N_FIELD, N_EMPTY, N_UN, N_BIN, N_TERN, N_CALL } nkind;

typedef struct node {
  nkind kind;
  int op;            /* N_UN/N_BIN: token char code or T_*; N_CALL: qq__xop */
  size_t pos;
  double num;        /* N_NUM */
  int col;           /* N_FIELD/N_EMPTY: field index */
  int height;        /* 1 for a leaf, else 1 + the highest child: bounds every walk below */
  struct node *a, *b, *c;
} node;

enum { T_EOF = 256, T_NUM, T_IDENT, T_STR, T_LE, T_GE, T_EQ, T_NE, T_AND, T_OR };

#define MAX_FIELDS 30
#define MAX_DEPTH 200   /* parser recursion (nesting of parentheses and unary operators) */
#define MAX_HEIGHT 256  /* tree height: code generation and folding recurse over the tree, and
                        ** a+b+c+... builds a left-deep tree without nesting in the source */

typedef struct parser {
  const char *src;
  size_t len, pos;      /* pos: next unread byte */
  int tok;              /* current token */
  size_t tpos;          /* its position */
  const char *tstr;     /* T_IDENT/T_STR: text and length */
  size_t tlen;
  double tnum;
  qb_arena *ar;
  qb_err *err;
  const json_t *params;
  const json_t *ctx;    /* the request's top-level "context" (for "_context.a.b" params) */
  const char *fields[MAX_FIELDS];
  size_t nfields;
  int uses_score;
  int depth;
  int failed;
} parser;

static int fail(parser *p, size_t pos, const char *fmt, const char *arg, size_t alen) {
  if (!p->failed) {
    char what[120];
    snprintf(what, sizeof what, fmt, (int)(alen > 60 ? 60 : alen), arg ? arg : "");
    qb_fail(p->err, QB_INVALID, "compile error: %s at position %zu", what, pos);
  }
  p->failed = 1;
  return -1;
}

static int isid0(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$'; }
static int isdig(int c) { return c >= '0' && c <= '9'; }

static void lex(parser *p) {
  const char *s = p->src;
  size_t n = p->len, i = p->pos;
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  p->tpos = i;
  if (i >= n) {
    p->tok = T_EOF;
    p->pos = i;
    return;
  }
  int c = (unsigned char)s[i];
  if (isdig(c) || (c == '.' && i + 1 < n && isdig((unsigned char)s[i + 1]))) {
    char buf[64];
    size_t j = i;
    if (c == '0' && j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X')) {
      j += 2;
      while (j < n && (isdig((unsigned char)s[j]) || ((s[j] | 32) >= 'a' && (s[j] | 32) <= 'f'))) j++;
    } else {
      while (j < n && (isdig((unsigned char)s[j]) || s[j] == '.')) j++;
      if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        while (j < n && isdig((unsigned char)s[j])) j++;
      }
    }
    if (j - i >= sizeof buf) {
      fail(p, i, "number too long", NULL, 0);
      p->tok = T_EOF;
      return;
    }
    memcpy(buf, s + i, j - i);
    buf[j - i] = 0;
    char *end;
    p->tnum = strtod(buf, &end);
    if (*end) {
      fail(p, i, "malformed number [%.*s]", buf, j - i);
      p->tok = T_EOF;
      return;
    }
    p->tok = T_NUM;
    p->pos = j;
    return;
  }
  if (isid0(c)) {
    size_t j = i + 1;
    while (j < n && (isid0((unsigned char)s[j]) || isdig((unsigned char)s[j]))) j++;
    p->tok = T_IDENT;
    p->tstr = s + i;
    p->tlen = j - i;
    p->pos = j;
    return;
  }
  if (c == '\'' || c == '"') {
    size_t j = i + 1;
    while (j < n && s[j] != c) j++;
    if (j >= n) {
      fail(p, i, "unterminated string", NULL, 0);
      p->tok = T_EOF;
      return;
    }
    p->tok = T_STR;
    p->tstr = s + i + 1;
    p->tlen = j - i - 1;
    p->pos = j + 1;
    return;
  }
  int c2 = i + 1 < n ? (unsigned char)s[i + 1] : 0;
  p->pos = i + 2;
  if (c == '<' && c2 == '=') { p->tok = T_LE; return; }
  if (c == '>' && c2 == '=') { p->tok = T_GE; return; }
  if (c == '=' && c2 == '=') { p->tok = T_EQ; return; }
  if (c == '!' && c2 == '=') { p->tok = T_NE; return; }
  if (c == '&' && c2 == '&') { p->tok = T_AND; return; }
  if (c == '|' && c2 == '|') { p->tok = T_OR; return; }
  p->pos = i + 1;
  if (strchr("+-*/%<>!?:()[].,", c)) {
    p->tok = c;
    return;
  }
  fail(p, i, "unexpected character [%.*s]", s + i, 1);
  p->tok = T_EOF;
}

static node *mk(parser *p, nkind k, size_t pos) {
  node *nd = qb_arena_alloc(p->ar, sizeof *nd);
  if (!nd) {
    if (!p->failed) qb_fail(p->err, QB_NOMEM, "expression: out of memory");
    p->failed = 1;
    return NULL;
  }
  nd->kind = k;
  nd->pos = pos;
  nd->height = 1;
  return nd;
}

/* ND's children are set: give it its height and refuse trees the walkers cannot afford. */
static node *grown(parser *p, node *nd) {
  int h = 0;
  if (nd->a && nd->a->height > h) h = nd->a->height;
  if (nd->b && nd->b->height > h) h = nd->b->height;
  if (nd->c && nd->c->height > h) h = nd->c->height;
  nd->height = h + 1;
  if (nd->height > MAX_HEIGHT)
    return fail(p, nd->pos, "expression too complex (more than 256 levels of operators)", NULL, 0),
           NULL;
  return nd;
}

static int expect(parser *p, int tok, const char *what) {
  if (p->tok != tok) return fail(p, p->tpos, "expected %.*s", what, strlen(what));
  lex(p);
  return 0;
}

static int idis(parser *p, const char *w) {
  return p->tok == T_IDENT && p->tlen == strlen(w) && !memcmp(p->tstr, w, p->tlen);
}

static const struct {
  const char *name;
  int op, arity;
} funcs[] = {
    {"log", QX_LOG, 1},     {"ln", QX_LOG, 1},       {"log10", QX_LOG10, 1}, {"log1p", QX_LOG1P, 1},
    {"logn", QX_LOGN, 2},   {"sqrt", QX_SQRT, 1},    {"exp", QX_EXP, 1},     {"abs", QX_ABS, 1},
    {"floor", QX_FLOOR, 1}, {"ceil", QX_CEIL, 1},    {"round", QX_ROUND, 1}, {"sin", QX_SIN, 1},
    {"cos", QX_COS, 1},     {"tan", QX_TAN, 1},      {"asin", QX_ASIN, 1},   {"acos", QX_ACOS, 1},
    {"atan", QX_ATAN, 1},   {"sinh", QX_SINH, 1},    {"cosh", QX_COSH, 1},   {"tanh", QX_TANH, 1},
    {"asinh", QX_ASINH, 1}, {"acosh", QX_ACOSH, 1},  {"atanh", QX_ATANH, 1}, {"signum", QX_SIGNUM, 1},
    {"cbrt", QX_CBRT, 1},   {"min", QX_MIN, 2},      {"max", QX_MAX, 2},     {"pow", QX_POW, 2},
    {"atan2", QX_ATAN2, 2}, {"hypot", QX_HYPOT, 2},
};

static node *expr(parser *p, int minprec);

static int field_index(parser *p, const char *name, size_t len, size_t pos) {
  for (size_t i = 0; i < p->nfields; i++)
    if (strlen(p->fields[i]) == len && !memcmp(p->fields[i], name, len)) return (int)i;
  if (p->nfields == MAX_FIELDS) return fail(p, pos, "too many fields (at most 30)", NULL, 0);
  char *f = qb_arena_strndup(p->ar, name, len);
  if (!f) return fail(p, pos, "out of memory", NULL, 0);
  p->fields[p->nfields] = f;
  return (int)p->nfields++;
}

/* doc['f'] then optional .value / .empty / .length / .size() / .min() / .max() */
static node *docref(parser *p, size_t pos) {
  lex(p); /* past "doc" */
  if (expect(p, '[', "[ after doc") < 0) return NULL;
  if (p->tok != T_STR) return fail(p, p->tpos, "expected a quoted field name in doc[...]", NULL, 0), NULL;
  int col = field_index(p, p->tstr, p->tlen, p->tpos);
  if (col < 0) return NULL;
  lex(p);
  if (expect(p, ']', "] after the field name") < 0) return NULL;
  node *nd = mk(p, N_FIELD, pos);
  if (!nd) return NULL;
  nd->col = col;
  if (p->tok == '.') {
    lex(p);
    if (p->tok != T_IDENT) return fail(p, p->tpos, "expected a member after doc[...].", NULL, 0), NULL;
    size_t mpos = p->tpos;
    if (idis(p, "value")) {
      lex(p);
    } else if (idis(p, "empty") || idis(p, "isEmpty")) {
      int call = idis(p, "isEmpty");
      nd->kind = N_EMPTY;
      lex(p);
      if (call && (expect(p, '(', "(") < 0 || expect(p, ')', ")") < 0)) return NULL;
    } else if (idis(p, "length") || idis(p, "size")) {
      int call = idis(p, "size");
      lex(p);
      if (call && (expect(p, '(', "(") < 0 || expect(p, ')', ")") < 0)) return NULL;
      /* single-valued doc values: length = 1 - empty */
      node *e = mk(p, N_EMPTY, mpos), *one = mk(p, N_NUM, mpos), *sub = mk(p, N_BIN, mpos);
      if (!e || !one || !sub) return NULL;
      e->col = col;
      one->num = 1;
      sub->op = '-';
      sub->a = one;
      sub->b = e;
      return sub;
    } else if (idis(p, "min") || idis(p, "max") || idis(p, "avg") || idis(p, "sum")) {
      lex(p);
      if (expect(p, '(', "(") < 0 || expect(p, ')', ")") < 0) return NULL;
    } else {
      return fail(p, mpos, "unknown member [%.*s] of doc[...]", p->tstr, p->tlen), NULL;
    }
  }
  return nd;
}

static node *num_node(parser *p, double v, size_t pos) {
  node *nd = mk(p, N_NUM, pos);
  if (nd) nd->num = v;
  return nd;
}

/* doc['F'] with MISSING for docs without a value: doc['F'].empty ? MISSING : doc['F'].value */
static node *field_node(parser *p, const char *f, size_t flen, const json_t *missing, size_t pos) {
  int col = field_index(p, f, flen, pos);
  if (col < 0) return NULL;
  node *v = mk(p, N_FIELD, pos);
  if (!v) return NULL;
  v->col = col;
  if (!missing) return v;
  node *e = mk(p, N_EMPTY, pos), *t = mk(p, N_TERN, pos), *m = num_node(p, json_number_value(missing), pos);
  if (!e || !t || !m) return NULL;
  e->col = col;
  t->a = e;
  t->b = m;
  t->c = v;
  return t;
}

/* A parameter's value (DESIGN §5): a number or boolean; "_score"; "doc['F']" or "_source.F"
** (the doc's field F); {"field": "F", "missing": v}; "_context.a.b" (from the request). */
static node *param(parser *p, const char *name, size_t len, size_t pos) {
  char key[128];
  if (len >= sizeof key) return fail(p, pos, "parameter name too long", NULL, 0), NULL;
  memcpy(key, name, len);
  key[len] = 0;
  json_t *v = p->params ? json_object_get(p->params, key) : NULL;
  if (!v) return fail(p, pos, "unknown variable [%.*s]", name, len), NULL;
  if (json_is_number(v)) return num_node(p, json_number_value(v), pos);
  if (json_is_boolean(v)) return num_node(p, json_is_true(v) ? 1 : 0, pos);
  if (json_is_object(v)) {
    json_t *f = json_object_get(v, "field"), *m = json_object_get(v, "missing");
    if (json_is_string(f) && (!m || json_is_number(m)))
      return field_node(p, json_string_value(f), json_string_length(f), m, pos);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t sl = json_string_length(v);
    if (!strcmp(s, "_score")) {
      node *nd = mk(p, N_SCORE, pos);
      p->uses_score = 1;
      return nd;
    }
    if (sl > 8 && !strncmp(s, "_source.", 8)) return field_node(p, s + 8, sl - 8, NULL, pos);
    if (sl > 7 && !strncmp(s, "doc[", 4) && (s[4] == '\'' || s[4] == '"') && s[sl - 1] == ']' &&
        s[sl - 2] == s[4])
      return field_node(p, s + 5, sl - 7, NULL, pos);
    if (sl > 9 && !strncmp(s, "_context.", 9)) {
      const json_t *c = p->ctx;
      char path[256];
      snprintf(path, sizeof path, "%s", s + 9);
      for (char *save, *tok = strtok_r(path, ".", &save); tok && c; tok = strtok_r(NULL, ".", &save))
        c = json_is_object(c) ? json_object_get(c, tok) : NULL;
      if (json_is_number(c)) return num_node(p, json_number_value(c), pos);
      if (json_is_boolean(c)) return num_node(p, json_is_true(c) ? 1 : 0, pos);
      return fail(p, pos, "request context has no number at [%.*s]", s, sl), NULL;
    }
  }
  return fail(p, pos, "parameter [%.*s] is not a number", name, len), NULL;
}

static node *primary(parser *p) {
  size_t pos = p->tpos;
  node *nd;
  if (++p->depth > MAX_DEPTH) return fail(p, pos, "expression nested too deeply", NULL, 0), NULL;
  switch (p->tok) {
  case T_NUM:
    if (!(nd = mk(p, N_NUM, pos))) return NULL;
    nd->num = p->tnum;
    lex(p);
    break;
  case '(':
    lex(p);
    if (!(nd = expr(p, 0))) return NULL;
    if (expect(p, ')', ")") < 0) return NULL;
    break;
  case '-': case '+': case '!': {
    int op = p->tok;
    lex(p);
    node *a = primary(p);
    if (!a) return NULL;
    if (op == '+') { nd = a; break; }
    if (!(nd = mk(p, N_UN, pos))) return NULL;
    nd->op = op;
    nd->a = a;
    if (!grown(p, nd)) return NULL;
    break;
  }
  case T_IDENT: {
    if (idis(p, "_score")) {
      if (!(nd = mk(p, N_SCORE, pos))) return NULL;
      p->uses_score = 1;
      lex(p);
      break;
    }
    if (idis(p, "doc")) { nd = docref(p, pos); break; }
    if (idis(p, "true") || idis(p, "false")) {
      if (!(nd = mk(p, N_NUM, pos))) return NULL;
      nd->num = idis(p, "true");
      lex(p);
      break;
    }
    if (idis(p, "params")) {
      lex(p);
      if (p->tok == '.') {
        lex(p);
        if (p->tok != T_IDENT) return fail(p, p->tpos, "expected a name after params.", NULL, 0), NULL;
      } else if (p->tok == '[') {
        lex(p);
        if (p->tok != T_STR) return fail(p, p->tpos, "expected a quoted name in params[...]", NULL, 0), NULL;
      } else {
        return fail(p, p->tpos, "expected . or [ after params", NULL, 0), NULL;
      }
      const char *nm = p->tstr;
      size_t nl = p->tlen, npos = p->tpos;
      int br = p->tok == T_STR;
      lex(p);
      if (br && expect(p, ']', "]") < 0) return NULL;
      nd = param(p, nm, nl, npos);
      break;
    }
    const char *nm = p->tstr;
    size_t nl = p->tlen;
    lex(p);
    if (nl == 4 && !memcmp(nm, "Math", 4) && p->tok == '.') { /* Math.log(x), as in Painless */
      lex(p);
      if (p->tok != T_IDENT) return fail(p, p->tpos, "expected a function after Math.", NULL, 0), NULL;
      nm = p->tstr;
      nl = p->tlen;
      pos = p->tpos;
      lex(p);
      if (p->tok != '(') return fail(p, p->tpos, "expected ( after Math.%.*s", nm, nl), NULL;
    }
    if (p->tok == '(') {
      size_t f;
      for (f = 0; f < QB_COUNTOF(funcs); f++)
        if (strlen(funcs[f].name) == nl && !memcmp(funcs[f].name, nm, nl)) break;
      if (f == QB_COUNTOF(funcs)) return fail(p, pos, "unknown function [%.*s]", nm, nl), NULL;
      lex(p);
      if (!(nd = mk(p, N_CALL, pos))) return NULL;
      nd->op = funcs[f].op;
      node *args[2] = {NULL, NULL};
      int na = 0;
      if (p->tok != ')') {
        for (;;) {
          node *a = expr(p, 0);
          if (!a) return NULL;
          if (na < 2) args[na] = a;
          na++;
          if (p->tok != ',') break;
          lex(p);
        }
      }
      if (expect(p, ')', ") after the arguments") < 0) return NULL;
      if (na != funcs[f].arity) {
        char w[64];
        snprintf(w, sizeof w, "%s expects %d argument%s, got %d", funcs[f].name, funcs[f].arity,
                 funcs[f].arity == 1 ? "" : "s", na);
        return fail(p, pos, "%.*s", w, strlen(w)), NULL;
      }
      nd->a = args[0];
      nd->b = args[1];
      if (!grown(p, nd)) return NULL;
      break;
    }
    nd = param(p, nm, nl, pos); /* Lucene expressions name params bare */
    break;
  }
  case T_EOF:
    return fail(p, pos, "unexpected end of expression", NULL, 0), NULL;
  default:
    return fail(p, pos, "unexpected token [%.*s]", p->src + pos, p->pos - pos), NULL;
  }
  p->depth--;
  return nd;
}

/* binary precedence; 0 = not a binary operator */
static int prec(int tok) {
  switch (tok) {
  case '?': return 1;
  case T_OR: return 2;
  case T_AND: return 3;
  case T_EQ: case T_NE: return 4;
  case '<': case '>': case T_LE: case T_GE: return 5;
  case '+': case '-': return 6;
  case '*': case '/': case '%': return 7;
  default: return 0;
  }
}

static node *expr(parser *p, int minprec) {
  node *l = primary(p);
  if (!l) return NULL;
  if (++p->depth > MAX_DEPTH) return fail(p, p->tpos, "expression nested too deeply", NULL, 0), NULL;
  for (;;) {
    int op = p->tok, pr = prec(op);
    if (!pr || pr < minprec) break;
    size_t pos = p->tpos;
    lex(p);
    node *nd;
    if (op == '?') { /* right-associative: a ? b : c ? d : e */
      node *t = expr(p, 0);
      if (!t || expect(p, ':', ": in ?:") < 0) return NULL;
      node *f = expr(p, 1);
      if (!f || !(nd = mk(p, N_TERN, pos))) return NULL;
      nd->a = l;
      nd->b = t;
      nd->c = f;
    } else {
      node *r = expr(p, pr + 1);
      if (!r || !(nd = mk(p, N_BIN, pos))) return NULL;
      nd->op = op;
      nd->a = l;
      nd->b = r;
    }
    if (!grown(p, nd)) return NULL;
    l = nd;
  }
  p->depth--;
  return l;
}

/* ---- code generation ---------------------------------------------------------------------- */

typedef struct gen {
  parser *p;
  qq__xins code[512];
  size_t ncode;
  unsigned nin;             /* input registers */
  int score_reg;            /* -1 when unused */
  int field_reg[MAX_FIELDS];
  uint8_t busy[QQ_XREG_MAX];
  unsigned nreg;            /* high-water mark of registers */
} gen;

typedef struct opnd {
  int is_k;
  double k;
  int reg;
} opnd;

static int ralloc(gen *g, size_t pos) {
  for (unsigned r = g->nin; r < QQ_XREG_MAX; r++)
    if (!g->busy[r]) {
      g->busy[r] = 1;
      if (r + 1 > g->nreg) g->nreg = r + 1;
      return (int)r;
    }
  return fail(g->p, pos, "expression too complex (out of registers)", NULL, 0);
}

static void rfree(gen *g, opnd o) {
  if (!o.is_k && o.reg >= (int)g->nin) g->busy[o.reg] = 0;
}

static int emit(gen *g, int op, int dst, int a, int b, int c, double k, size_t pos) {
  QB_ASSERT(dst >= (int)g->nin && dst < (int)g->nreg); /* dst is a scratch register */
  if (g->ncode == QB_COUNTOF(g->code)) return fail(g->p, pos, "expression too long", NULL, 0);
  g->code[g->ncode++] = (qq__xins){(uint8_t)op, (uint8_t)dst, (uint8_t)a, (uint8_t)b, (uint8_t)c, k};
  return 0;
}

/* O as a register (broadcasting a constant) */
static int inreg(gen *g, opnd *o, size_t pos) {
  if (!o->is_k) return 0;
  int r = ralloc(g, pos);
  if (r < 0 || emit(g, QX_BCAST, r, 0, 0, 0, o->k, pos) < 0) return -1;
  o->is_k = 0;
  o->reg = r;
  return 0;
}

static int binop_of(int tok) {
  switch (tok) {
  case '+': return QX_ADD; case '-': return QX_SUB; case '*': return QX_MUL;
  case '/': return QX_DIV; case '%': return QX_MOD; case '<': return QX_LT;
  case '>': return QX_GT; case T_LE: return QX_LE; case T_GE: return QX_GE;
  case T_EQ: return QX_EQ; case T_NE: return QX_NE; case T_AND: return QX_AND;
  case T_OR: return QX_OR; default: return -1;
  }
}

/* vector op VV with B constant: the VK op, or -1 */
static int vk_of(int op, int swapped) {
  switch (op) {
  case QX_ADD: return QX_ADDK;
  case QX_MUL: return QX_MULK;
  case QX_SUB: return swapped ? QX_RSUBK : QX_SUBK;
  case QX_DIV: return swapped ? QX_RDIVK : QX_DIVK;
  case QX_MOD: return swapped ? -1 : QX_MODK;
  case QX_LT: return swapped ? QX_GTK : QX_LTK;
  case QX_GT: return swapped ? QX_LTK : QX_GTK;
  case QX_LE: return swapped ? QX_GEK : QX_LEK;
  case QX_GE: return swapped ? QX_LEK : QX_GEK;
  case QX_EQ: return QX_EQK;
  case QX_NE: return QX_NEK;
  case QX_MIN: return QX_MINK;
  case QX_MAX: return QX_MAXK;
  case QX_POW: return swapped ? -1 : QX_POWK;
  default: return -1;
  }
}

static int gen_node(gen *g, const node *nd, opnd *out);

static int gen_bin(gen *g, int op, const node *an, const node *bn, size_t pos, opnd *out) {
  opnd a, b;
  if (gen_node(g, an, &a) < 0 || gen_node(g, bn, &b) < 0) return -1;
  if (a.is_k && b.is_k) {
    *out = (opnd){1, qq__xfold((unsigned)op, a.k, b.k, 0, 0), 0};
    return 0;
  }
  int vk = -1, dst;
  opnd v = a;
  double k = 0;
  if (b.is_k) vk = vk_of(op, 0), v = a, k = b.k;
  else if (a.is_k) vk = vk_of(op, 1), v = b, k = a.k;
  if (vk >= 0) {
    rfree(g, v);
    if ((dst = ralloc(g, pos)) < 0 || emit(g, vk, dst, v.reg, 0, 0, k, pos) < 0) return -1;
  } else {
    if (inreg(g, &a, pos) < 0 || inreg(g, &b, pos) < 0) return -1;
    rfree(g, a);
    rfree(g, b);
    if ((dst = ralloc(g, pos)) < 0 || emit(g, op, dst, a.reg, b.reg, 0, 0, pos) < 0) return -1;
  }
  *out = (opnd){0, 0, dst};
  return 0;
}

static int gen_un(gen *g, int op, const node *an, size_t pos, opnd *out) {
  opnd a;
  int dst;
  if (gen_node(g, an, &a) < 0) return -1;
  if (a.is_k) {
    *out = (opnd){1, qq__xfold((unsigned)op, a.k, 0, 0, 0), 0};
    return 0;
  }
  rfree(g, a);
  if ((dst = ralloc(g, pos)) < 0 || emit(g, op, dst, a.reg, 0, 0, 0, pos) < 0) return -1;
  *out = (opnd){0, 0, dst};
  return 0;
}

static int gen_node(gen *g, const node *nd, opnd *out) {
  switch (nd->kind) {
  case N_NUM: *out = (opnd){1, nd->num, 0}; return 0;
  case N_SCORE: *out = (opnd){0, 0, g->score_reg}; return 0;
  case N_FIELD: *out = (opnd){0, 0, g->field_reg[nd->col]}; return 0;
  case N_EMPTY: {
    int dst = ralloc(g, nd->pos);
    if (dst < 0 || emit(g, QX_EMPTY, dst, g->field_reg[nd->col], 0, 0, 0, nd->pos) < 0) return -1;
    *out = (opnd){0, 0, dst};
    return 0;
  }
  case N_UN: return gen_un(g, nd->op == '-' ? QX_NEG : QX_NOT, nd->a, nd->pos, out);
  case N_BIN: return gen_bin(g, binop_of(nd->op), nd->a, nd->b, nd->pos, out);
  case N_CALL:
    if (nd->b) return gen_bin(g, nd->op, nd->a, nd->b, nd->pos, out);
    return gen_un(g, nd->op, nd->a, nd->pos, out);
  case N_TERN: {
    opnd c, t, f;
    int dst;
    if (gen_node(g, nd->a, &c) < 0) return -1;
    if (c.is_k) return gen_node(g, c.k != 0 ? nd->b : nd->c, out);
    if (gen_node(g, nd->b, &t) < 0 || gen_node(g, nd->c, &f) < 0) return -1;
    if (inreg(g, &t, nd->pos) < 0 || inreg(g, &f, nd->pos) < 0) return -1;
    rfree(g, c);
    rfree(g, t);
    rfree(g, f);
    if ((dst = ralloc(g, nd->pos)) < 0 ||
        emit(g, QX_SELECT, dst, c.reg, t.reg, f.reg, 0, nd->pos) < 0)
      return -1;
    *out = (opnd){0, 0, dst};
    return 0;
  }
  }
  return -1;
}

/* Peephole: fuse an op into the next one when the next consumes its (scratch) result, so the
** block is walked once instead of twice: log(a+k), a*b+c, a*k+b, then a*k+b*c. A scratch
** result has exactly one reader (a tree), so the adjacent reader is the only one. */
static void fuse(gen *g) {
  size_t i, o = 0;
  for (i = 0; i < g->ncode; i++) {
    qq__xins a = g->code[i];
    if (i + 1 < g->ncode && a.dst >= g->nin) {
      qq__xins b = g->code[i + 1];
      int t = a.dst;
      if (a.op == QX_ADDK && b.op == QX_LOG && b.a == t) {
        g->code[o++] = (qq__xins){QX_LOGK, b.dst, a.a, 0, 0, a.k};
        i++;
        continue;
      }
      if ((a.op == QX_MULK || a.op == QX_MUL) && b.op == QX_ADD && (b.a == t) != (b.b == t)) {
        int other = b.a == t ? b.b : b.a;
        if (a.op == QX_MULK) g->code[o++] = (qq__xins){QX_MULKADD, b.dst, a.a, (uint8_t)other, 0, a.k};
        else g->code[o++] = (qq__xins){QX_MADD, b.dst, a.a, a.b, (uint8_t)other, 0};
        i++;
        continue;
      }
    }
    g->code[o++] = a;
  }
  g->ncode = o;
  /* a second round for what the first one made: a*b then c*k + (a*b) (MULKADD) in one pass.
  ** Same rounding: each product is rounded, then the sum (no contraction, see expr_vec.c). */
  for (i = 0, o = 0; i < g->ncode; i++) {
    qq__xins a = g->code[i];
    if (i + 1 < g->ncode && a.dst >= g->nin && a.op == QX_MUL) {
      qq__xins b = g->code[i + 1];
      int t = a.dst;
      if (b.op == QX_MULKADD && b.b == t && b.a != t) {
        g->code[o++] = (qq__xins){QX_KMADD, b.dst, b.a, a.a, a.b, b.k};
        i++;
        continue;
      }
    }
    g->code[o++] = a;
  }
  g->ncode = o;
}

/* expr_int.h's register layout, checked (QB_ASSERT) on every compiled program: inputs
** 0..NIN-1 are never written, every op writes a scratch register below NREG, and every
** register an op reads (RESULT too) was written before: an input, or an earlier op's dst. */
static int program_ok(const qq__xins *code, size_t n, unsigned nin, unsigned nreg, int result) {
  static const uint8_t nreads[QX__COUNT] = {
#define QQ__SH_K 0
#define QQ__SH_V 1
#define QQ__SH_M 1
#define QQ__SH_VK 1
#define QQ__SH_VV 2
#define QQ__SH_VVV 3
#define QQ__X(name, shape) QQ__SH_##shape,
      QQ_XOPS(QQ__X)
#undef QQ__X
#undef QQ__SH_K
#undef QQ__SH_V
#undef QQ__SH_M
#undef QQ__SH_VK
#undef QQ__SH_VV
#undef QQ__SH_VVV
  };
  uint8_t written[QQ_XREG_MAX] = {0};
  if (nin > nreg || nreg > QQ_XREG_MAX) return 0;
  for (unsigned r = 0; r < nin; r++) written[r] = 1;
  for (size_t i = 0; i < n; i++) {
    const qq__xins *c = &code[i];
    const uint8_t rd[3] = {c->a, c->b, c->c};
    if (c->op >= QX__COUNT || c->dst < nin || c->dst >= nreg) return 0;
    if (c->op == QX_EMPTY && c->a >= nin) return 0; /* the mask of an input column */
    for (unsigned j = 0; j < nreads[c->op]; j++)
      if (rd[j] >= nreg || !written[rd[j]]) return 0;
    written[c->dst] = 1;
  }
  return result >= 0 && (unsigned)result < nreg && written[result];
}

/* ---- the script ---------------------------------------------------------------------------- */

typedef struct xscript {
  qq_script base;
  qb_arena arena;
  qq_script_kind kind;
  qq__xins *code;
  size_t ncode;
  unsigned nin, nreg;
  int score_col;        /* input column of _score, -1 if unused */
  size_t nfields;
  const char *fields[MAX_FIELDS];
  int result_is_k;      /* the whole expression is a constant K */
  double result_k;
  int result_reg;       /* else: the register holding the result */
  double *scratch;      /* (nreg - nin) * QQ_BLOCK_MAX */
  char *source;
} xscript;

static qb_code xbind(qq_script *s, const qq_shard_info *info, qq_bind *out, qb_err *err) {
  xscript *x = (xscript *)s;
  size_t n = 0;
  if (x->score_col >= 0) out->args[n++] = (qq_arg){.kind = QQ_ARG_SCORE, .type = QQ_COL_F64};
  for (size_t i = 0; i < x->nfields; i++) {
    qq_field_type t = info && info->field_type ? info->field_type(info, x->fields[i]) : QQ_FIELD_DOUBLE;
    if (t == QQ_FIELD_TEXT || t == QQ_FIELD_KEYWORD)
      return qb_fail(err, QB_INVAL,
                     "expression [%.60s]: field [%s] is not numeric (expressions read numeric, "
                     "date and boolean doc values only)", x->source, x->fields[i]);
    /* an unmapped field is an error, as Elasticsearch's doc['F'] ("missing" is per document) */
    if (t == QQ_FIELD_NONE && info && info->field_type)
      return qb_fail(err, QB_INVALID, "No field found for [%s] in mapping", x->fields[i]);
    out->args[n++] = (qq_arg){.kind = QQ_ARG_FIELD, .type = QQ_COL_F64, .field = x->fields[i]};
  }
  out->nargs = n;
  out->result = QQ_RESULT_F64;
  return QB_OK;
}

static qb_code xrun(qq_script *s, const qq_block *in, qq_result_block *out, qb_err *err) {
  xscript *x = (xscript *)s;
  double *reg[QQ_XREG_MAX];
  const uint8_t *mask[QQ_XREG_MAX];
  size_t nb = in->n, i;
  int filter = x->kind == QQ_SCRIPT_FILTER;
  if (in->ncols != x->nin) return qb_fail(err, QB_INTERNAL, "expression: column count mismatch");
  if (x->result_is_k) {
    if (filter) memset(out->keep, x->result_k != 0.0, nb);
    else for (i = 0; i < nb; i++) out->f64[i] = x->result_k;
    return QB_OK;
  }
  for (i = 0; i < x->nin; i++) {
    reg[i] = (double *)in->cols[i].f64; /* inputs are never written (expr_int.h) */
    mask[i] = in->cols[i].present;
  }
  for (i = x->nin; i < x->nreg; i++) reg[i] = x->scratch + (i - x->nin) * QQ_BLOCK_MAX;
  /* the last op writes straight into the caller's result array */
  if (!filter && x->code[x->ncode - 1].dst == x->result_reg) reg[x->result_reg] = out->f64;
  qq__xrun(x->code, x->ncode, reg, mask, nb);
  const double *r = reg[x->result_reg];
  if (filter) {
    for (i = 0; i < nb; i++) out->keep[i] = r[i] != 0.0;
  } else if (r != out->f64) {
    memcpy(out->f64, r, nb * sizeof *r);
  }
  return QB_OK;
}

static void xfree(qq_script *s) {
  xscript *x = (xscript *)s;
  if (!x) return;
  qb_arena a = x->arena; /* x lives in its own arena */
  qb_arena_fini(&a);
}

static const qq_script_vtable xvt = {xbind, xrun, xfree};

qb_code qq_expr_compile(const char *source, qq_script_kind kind, const json_t *params,
                        qq_script **out, qb_err *err) {
  return qq__expr_compile(source, kind, params, NULL, out, err);
}

qb_code qq__expr_compile(const char *source, qq_script_kind kind, const json_t *params,
                         const json_t *ctx, qq_script **out, qb_err *err) {
  qb_arena ar;
  parser p;
  gen gs, *g = &gs; /* on the stack: code[] is written before it is read (emit, fuse) */
  xscript *x;
  opnd res;
  *out = NULL;
  qb_arena_init(&ar);
  if (!(x = qb_arena_alloc(&ar, sizeof *x))) goto nomem;
  memset(&p, 0, sizeof p);
  p.src = source;
  p.len = strlen(source);
  p.ar = &ar;
  p.err = err;
  p.params = params && json_is_object(params) ? params : NULL;
  p.ctx = ctx;
  lex(&p);
  node *root = p.failed ? NULL : expr(&p, 0);
  if (root && p.tok != T_EOF) fail(&p, p.tpos, "unexpected token [%.*s]", source + p.tpos, p.pos - p.tpos);
  if (p.failed || !root) goto fail;
  memset((char *)g + offsetof(gen, ncode), 0, sizeof *g - offsetof(gen, ncode));
  g->p = &p;
  g->score_reg = p.uses_score ? (int)g->nin++ : -1;
  for (size_t i = 0; i < p.nfields; i++) g->field_reg[i] = (int)g->nin++;
  g->nreg = g->nin;
  if (gen_node(g, root, &res) < 0) goto fail;
  if (!res.is_k && res.reg < (int)g->nin) { /* the result is an input column: copy it */
    int dst = ralloc(g, 0);
    if (dst < 0 || emit(g, QX_COPY, dst, res.reg, 0, 0, 0, 0) < 0) goto fail;
    res.reg = dst;
  }
  fuse(g);
  QB_ASSERT(res.is_k || program_ok(g->code, g->ncode, g->nin, g->nreg, res.reg));
  x->base.vt = &xvt;
  x->kind = kind;
  x->source = qb_arena_strdup(&ar, source);
  x->base.name = x->source;
  x->code = qb_arena_array(&ar, g->ncode ? g->ncode : 1, sizeof *x->code);
  x->scratch = qb_arena_array(&ar, (size_t)(g->nreg - g->nin) + 1, QQ_BLOCK_MAX * sizeof(double));
  if (!x->source || !x->code || !x->scratch) goto nomem;
  memcpy(x->code, g->code, g->ncode * sizeof *x->code);
  x->ncode = g->ncode;
  x->nin = g->nin;
  x->nreg = g->nreg;
  x->score_col = g->score_reg;
  x->nfields = p.nfields;
  for (size_t i = 0; i < p.nfields; i++) x->fields[i] = p.fields[i];
  x->result_is_k = res.is_k;
  x->result_k = res.k;
  x->result_reg = res.reg;
  x->arena = ar;
  *out = &x->base;
  return QB_OK;
nomem:
  qb_fail(err, QB_NOMEM, "expression: out of memory");
fail:
  qb_arena_fini(&ar);
  return err ? err->code : QB_INVALID;
}

qb_code qq_expr_disasm(const qq_script *s, qb_buf *buf) {
  const xscript *x = (const xscript *)s;
  if (!s || s->vt != &xvt) return QB_INVAL;
  qb_buf_printf(buf, "inputs %u, registers %u\n", x->nin, x->nreg);
  for (size_t i = 0; i < x->ncode; i++) {
    const qq__xins *c = &x->code[i];
    qb_buf_printf(buf, "%3zu  %-7s r%u <- r%u r%u r%u k=%g\n", i, qq__xop_name(c->op), c->dst, c->a,
                  c->b, c->c, c->k);
  }
  if (x->result_is_k) qb_buf_printf(buf, "result = %g\n", x->result_k);
  return buf->failed ? QB_NOMEM : QB_OK;
}
