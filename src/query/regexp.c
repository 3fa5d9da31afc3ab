/* regexp.c: the regexp query. Lucene's syntax (anchored at both ends of the term; code points):
** literals, '\' escapes, '.', '?', '*', '+', '{n}', '{n,}', '{n,m}', '|', '(...)', '[...]' classes
** with ranges and '^', '"..."' quoted strings. Lucene's optional operators ('~' '&' '<n-m>' '@'
** '#' under flags ALL, the default) are refused with a 400 naming them; flags NONE makes them
** literals. Compiled to a Thompson NFA and matched by simulation: time is at most the term's
** length times the states (bounded by MAX_STATES), memory the states, whatever the pattern. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERN 1000  /* index.max_regex_length's default */
#define MAX_STATES 20000
#define MAX_DEPTH 64

enum { S_EMPTY, S_SPLIT, S_CHAR, S_ANY, S_CLASS, S_MATCH };

typedef struct st {
  int op;
  int out, out1;
  uint32_t c;           /* S_CHAR */
  int r0, nr, neg;      /* S_CLASS: ranges[r0 .. r0+nr) */
} st;

struct qq__re {
  st *s;
  int n;
  uint32_t (*ranges)[2];
  int nranges;
  int start;
};

typedef struct rparse {
  qq__re *re;
  qb_arena *ar;
  int cap, rcap;
  const uint32_t *p;
  size_t n, i;
  int literal_ops; /* flags NONE */
  int depth;
  qb_err *err;
  const char *src;
} rparse;

typedef struct frag { int start, end; } frag; /* end: an S_EMPTY whose out is patched */

static int add(rparse *r, int op) {
  qq__re *re = r->re;
  if (re->n >= MAX_STATES) return -1;
  if (re->n == r->cap) {
    int nc = r->cap ? r->cap * 2 : 64;
    st *ns = qb_arena_array(r->ar, (size_t)nc, sizeof *ns);
    if (!ns) return -2;
    if (re->n) memcpy(ns, re->s, (size_t)re->n * sizeof *ns);
    re->s = ns;
    r->cap = nc;
  }
  re->s[re->n] = (st){op, -1, -1, 0, 0, 0, 0};
  return re->n++;
}

static qb_code too_big(rparse *r, int code) {
  if (code == -2) return qb_fail(r->err, QB_NOMEM, "query: out of memory");
  return qb_fail(r->err, QB_INVAL, "[regexp] query: [%s] is too complex (more than %d states)", r->src, MAX_STATES);
}

static qb_code syntax(rparse *r, const char *why) {
  return qb_fail(r->err, QB_INVAL, "[regexp] query: invalid regular expression [%s] at character %zu: %s",
                 r->src, r->i, why);
}

/* a fragment of one consuming state OP */
static qb_code one(rparse *r, int op, uint32_t c, frag *f) {
  int a = add(r, op), e = add(r, S_EMPTY);
  if (a < 0 || e < 0) return too_big(r, a < 0 ? a : e);
  r->re->s[a].c = c;
  r->re->s[a].out = e;
  *f = (frag){a, e};
  return QB_OK;
}

static qb_code empty(rparse *r, frag *f) {
  int e = add(r, S_EMPTY);
  if (e < 0) return too_big(r, e);
  *f = (frag){e, e};
  return QB_OK;
}

static void cat(rparse *r, frag *a, frag b) {
  r->re->s[a->end].out = b.start;
  a->end = b.end;
}

static qb_code alt(rparse *r, frag *out);

static int reserved(uint32_t c) { return c == '~' || c == '&' || c == '<' || c == '@' || c == '#'; }
static int special(uint32_t c) {
  return c == '.' || c == '?' || c == '*' || c == '+' || c == '{' || c == '}' || c == '|' ||
         c == '(' || c == ')' || c == '[' || c == ']' || c == '"' || c == '\\';
}

static qb_code add_range(rparse *r, uint32_t lo, uint32_t hi) {
  qq__re *re = r->re;
  if (re->nranges == r->rcap) {
    int nc = r->rcap ? r->rcap * 2 : 16;
    uint32_t (*nr)[2] = qb_arena_array(r->ar, (size_t)nc, sizeof *nr);
    if (!nr) return qb_fail(r->err, QB_NOMEM, "query: out of memory");
    if (re->nranges) memcpy(nr, re->ranges, (size_t)re->nranges * sizeof *nr);
    re->ranges = nr;
    r->rcap = nc;
  }
  re->ranges[re->nranges][0] = lo;
  re->ranges[re->nranges][1] = hi;
  re->nranges++;
  return QB_OK;
}

static qb_code cls(rparse *r, frag *f) {
  qb_code rc;
  int neg = 0, r0 = r->re->nranges;
  if (r->i < r->n && r->p[r->i] == '^') { neg = 1; r->i++; }
  int first = 1;
  while (r->i < r->n && (r->p[r->i] != ']' || first)) {
    uint32_t lo = r->p[r->i++], hi;
    first = 0;
    if (lo == '\\') {
      if (r->i >= r->n) return syntax(r, "expected a character after '\\'");
      lo = r->p[r->i++];
    }
    hi = lo;
    if (r->i + 1 < r->n && r->p[r->i] == '-' && r->p[r->i + 1] != ']') {
      r->i++;
      hi = r->p[r->i++];
      if (hi == '\\') {
        if (r->i >= r->n) return syntax(r, "expected a character after '\\'");
        hi = r->p[r->i++];
      }
      if (hi < lo) return syntax(r, "a class range is out of order");
    }
    if ((rc = add_range(r, lo, hi))) return rc;
  }
  if (r->i >= r->n) return syntax(r, "expected ']'");
  r->i++;
  if ((rc = one(r, S_CLASS, 0, f))) return rc;
  r->re->s[f->start].r0 = r0;
  r->re->s[f->start].nr = r->re->nranges - r0;
  r->re->s[f->start].neg = neg;
  return QB_OK;
}

static qb_code atom(rparse *r, frag *f) {
  uint32_t c = r->p[r->i];
  qb_code rc;
  if (!r->literal_ops && reserved(c)) {
    char why[96];
    snprintf(why, sizeof why, "the optional operator [%c] is not supported (flags NONE makes it a literal)", (char)c);
    return syntax(r, why);
  }
  r->i++;
  switch (c) {
  case '.': return one(r, S_ANY, 0, f);
  case '[': return cls(r, f);
  case '(':
    if (++r->depth > MAX_DEPTH) return syntax(r, "groups nested too deeply");
    if (r->i < r->n && r->p[r->i] == ')') rc = empty(r, f);
    else rc = alt(r, f);
    r->depth--;
    if (rc) return rc;
    if (r->i >= r->n || r->p[r->i] != ')') return syntax(r, "expected ')'");
    r->i++;
    return QB_OK;
  case '"': {
    if ((rc = empty(r, f))) return rc;
    while (r->i < r->n && r->p[r->i] != '"') {
      frag g;
      if ((rc = one(r, S_CHAR, r->p[r->i++], &g))) return rc;
      cat(r, f, g);
    }
    if (r->i >= r->n) return syntax(r, "expected '\"'");
    r->i++;
    return QB_OK;
  }
  case '\\':
    if (r->i >= r->n) return syntax(r, "expected a character after '\\'");
    return one(r, S_CHAR, r->p[r->i++], f);
  case '*': case '+': case '?': case '{': case '}': case ')': case '|': case ']':
    r->i--;
    return syntax(r, "unexpected operator");
  default: return one(r, S_CHAR, c, f);
  }
}

static int number(rparse *r, int *out) {
  long v = 0;
  size_t s = r->i;
  while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9' && v < 100000) v = v * 10 + (long)(r->p[r->i++] - '0');
  *out = (int)v;
  return r->i > s;
}

/* F* as a fragment */
static qb_code star(rparse *r, frag *f) {
  int sp = add(r, S_SPLIT), e = add(r, S_EMPTY);
  if (sp < 0 || e < 0) return too_big(r, sp < 0 ? sp : e);
  r->re->s[sp].out = f->start;
  r->re->s[sp].out1 = e;
  r->re->s[f->end].out = sp;
  *f = (frag){sp, e};
  return QB_OK;
}

static qb_code opt(rparse *r, frag *f) {
  int sp = add(r, S_SPLIT), e = add(r, S_EMPTY);
  if (sp < 0 || e < 0) return too_big(r, sp < 0 ? sp : e);
  r->re->s[sp].out = f->start;
  r->re->s[sp].out1 = e;
  r->re->s[f->end].out = e;
  *f = (frag){sp, e};
  return QB_OK;
}

static qb_code repeat(rparse *r, frag *f) {
  size_t at = r->i;
  qb_code rc;
  if ((rc = atom(r, f))) return rc;
  while (r->i < r->n) {
    uint32_t c = r->p[r->i];
    if (c == '*') { r->i++; if ((rc = star(r, f))) return rc; }
    else if (c == '?') { r->i++; if ((rc = opt(r, f))) return rc; }
    else if (c == '+') { /* F F* */
      size_t end = ++r->i;
      frag g;
      r->i = at;
      if ((rc = atom(r, &g)) || (rc = star(r, &g))) return rc;
      r->i = end;
      cat(r, f, g);
    } else if (c == '{') {
      int lo, hi, k;
      r->i++;
      if (!number(r, &lo)) return syntax(r, "expected a number after '{'");
      hi = lo;
      if (r->i < r->n && r->p[r->i] == ',') {
        r->i++;
        if (!number(r, &hi)) hi = -1;
      }
      if (r->i >= r->n || r->p[r->i] != '}') return syntax(r, "expected '}'");
      if (hi >= 0 && hi < lo) return syntax(r, "a repeat's maximum is below its minimum");
      if (lo > MAX_STATES || hi > MAX_STATES) return too_big(r, -1);
      size_t end = ++r->i;
      frag res;
      if ((rc = empty(r, &res))) return rc;
      /* F{lo,hi}: lo copies, then (hi - lo) optional ones or a star */
      for (k = 0; k < (hi < 0 ? lo : hi); k++) {
        frag g;
        if (k == 0) g = *f;
        else {
          r->i = at;
          if ((rc = atom(r, &g))) return rc;
        }
        if (k >= lo && (rc = opt(r, &g))) return rc;
        cat(r, &res, g);
      }
      if (hi < 0) {
        frag g;
        if (lo == 0) g = *f;
        else {
          r->i = at;
          if ((rc = atom(r, &g))) return rc;
        }
        if ((rc = star(r, &g))) return rc;
        cat(r, &res, g);
      }
      r->i = end;
      *f = res;
    } else break;
    at = (size_t)-1; /* a repeat of a repeat re-parses from the atom: keep it simple, refuse */
    if (r->i < r->n && (r->p[r->i] == '+' || r->p[r->i] == '{'))
      return syntax(r, "a counted repeat must follow an atom (use a group)");
  }
  return QB_OK;
}

static qb_code concat(rparse *r, frag *f) {
  qb_code rc;
  if ((rc = empty(r, f))) return rc;
  while (r->i < r->n && r->p[r->i] != '|' && r->p[r->i] != ')') {
    frag g;
    if ((rc = repeat(r, &g))) return rc;
    cat(r, f, g);
  }
  return QB_OK;
}

static qb_code alt(rparse *r, frag *out) {
  qb_code rc;
  if ((rc = concat(r, out))) return rc;
  while (r->i < r->n && r->p[r->i] == '|') {
    frag g;
    r->i++;
    if ((rc = concat(r, &g))) return rc;
    int sp = add(r, S_SPLIT), e = add(r, S_EMPTY);
    if (sp < 0 || e < 0) return too_big(r, sp < 0 ? sp : e);
    r->re->s[sp].out = out->start;
    r->re->s[sp].out1 = g.start;
    r->re->s[out->end].out = e;
    r->re->s[g.end].out = e;
    *out = (frag){sp, e};
  }
  return QB_OK;
}

static size_t decode_all(const char *s, size_t len, uint32_t *out, size_t cap) {
  size_t i = 0, n = 0;
  while (i < len && n < cap) {
    unsigned char c = (unsigned char)s[i];
    size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2, k;
    uint32_t v;
    if (i + l > len) l = len - i;
    v = l == 1 ? c : (uint32_t)(c & (0x3F >> (l - 1)));
    for (k = 1; k < l; k++) v = (v << 6) | ((unsigned char)s[i + k] & 0x3F);
    out[n++] = v;
    i += l;
  }
  return i < len ? cap + 1 : n;
}

qb_code qq__parse_regexp(qq__pctx *p, const json_t *body, qq__query *q) {
  qb_err *err = qq__pctx_err(p);
  qq_request *req = qq__pctx_req(p);
  const char *k;
  json_t *v, *o;
  qb_code rc;
  int literal_ops = 0;
  if (!json_is_object(body) || json_object_size(body) != 1)
    return qb_fail(err, QB_MALFORMED, "[regexp] query malformed: one field per query");
  q->field = json_object_iter_key(json_object_iter((json_t *)body));
  o = json_object_iter_value(json_object_iter((json_t *)body));
  if (!json_is_object(o)) {
    q->value = o;
  } else {
    json_object_foreach(o, k, v) {
      if (!strcmp(k, "value")) q->value = v;
      else if (!strcmp(k, "boost")) { if ((rc = qq__get_boost(p, o, "regexp", &q->boost))) return rc; }
      else if (!strcmp(k, "flags")) {
        const char *f = json_is_string(v) ? json_string_value(v) : "?";
        if (!strcmp(f, "NONE")) literal_ops = 1;
        else if (strcmp(f, "ALL") && *f)
          return qb_fail(err, QB_INVAL, "[regexp] query: [flags] [%s] is not supported (ALL or NONE)", f);
      } else if (!strcmp(k, "flags_value")) {
        if (!json_is_integer(v)) return qb_fail(err, QB_MALFORMED, "[regexp] query: [flags_value] must be an integer");
        if (json_integer_value(v) == 0) literal_ops = 1;
        else if (json_integer_value(v) != 0xffff && json_integer_value(v) != -1)
          return qb_fail(err, QB_INVAL, "[regexp] query: [flags_value] %lld is not supported (ALL or NONE)", (long long)json_integer_value(v));
      } else if (!strcmp(k, "max_determinized_states")) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
          return qb_fail(err, QB_INVAL, "[regexp] query: [max_determinized_states] must be a positive integer");
      } else if (!strcmp(k, "rewrite")) {
        const char *rw = json_is_string(v) ? json_string_value(v) : "";
        if (strncmp(rw, "constant_score", 14))
          return qb_fail(err, QB_INVAL, "[regexp] query: [rewrite] [%s] is not supported (constant_score only)", rw);
      } else if (!strcmp(k, "case_insensitive")) {
        if (!json_is_false(v)) return qb_fail(err, QB_INVAL, "[regexp] query: [case_insensitive] is not supported as [true]");
      } else {
        return qb_fail(err, QB_MALFORMED, "[regexp] query does not support [%s]", k);
      }
    }
  }
  if (!json_is_string(q->value))
    return qb_fail(err, QB_MALFORMED, "[regexp] query: [value] of field [%s] must be a string", q->field);
  uint32_t *cps = qb_arena_array(&req->arena, MAX_PATTERN + 1, sizeof *cps);
  qq__re *re = qb_arena_alloc(&req->arena, sizeof *re);
  if (!cps || !re || !(q->x = qb_arena_alloc(&req->arena, sizeof *q->x)))
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  memset(q->x, 0, sizeof *q->x);
  memset(re, 0, sizeof *re);
  size_t n = decode_all(json_string_value(q->value), json_string_length(q->value), cps, MAX_PATTERN);
  if (n > MAX_PATTERN)
    return qb_fail(err, QB_INVAL, "The length of regex [%zu] used in the Regexp Query request has exceeded the allowed maximum of [%d]",
                   json_string_length(q->value), MAX_PATTERN);
  rparse r = {re, &req->arena, 0, 0, cps, n, 0, literal_ops, 0, err, json_string_value(q->value)};
  frag f;
  if ((rc = alt(&r, &f))) return rc;
  if (r.i < r.n) return syntax(&r, "unexpected ')'");
  int m = add(&r, S_MATCH);
  if (m < 0) return too_big(&r, m);
  re->s[f.end].out = m;
  re->start = f.start;
  q->x->re = re;
  (void)special;
  return QB_OK;
}

/* ---- matching -------------------------------------------------------------------------------- */

static int in_class(const qq__re *re, const st *s, uint32_t c) {
  int i, hit = 0;
  for (i = 0; i < s->nr && !hit; i++) hit = c >= re->ranges[s->r0 + i][0] && c <= re->ranges[s->r0 + i][1];
  return hit != s->neg;
}

/* Add state I and what it reaches without consuming to list L (marks: gen) */
static void addst(const qq__re *re, int i, int *l, int *nl, unsigned *mark, unsigned gen, int *stack) {
  int sp = 0;
  stack[sp++] = i;
  while (sp) {
    int k = stack[--sp];
    if (k < 0 || mark[k] == gen) continue;
    mark[k] = gen;
    const st *s = &re->s[k];
    if (s->op == S_EMPTY) stack[sp++] = s->out;
    else if (s->op == S_SPLIT) {
      stack[sp++] = s->out1;
      stack[sp++] = s->out;
    } else l[(*nl)++] = k;
  }
}

#define SMALL 512 /* states matched without allocating */

int qq__re_match(const qq__re *re, const char *s, size_t len) {
  size_t n = (size_t)re->n, i = 0;
  int sa[SMALL], sb[SMALL], sst[2 * SMALL + 2];
  unsigned smark[SMALL];
  int small = n <= SMALL;
  int *a = small ? sa : malloc(n * sizeof *a), *b = small ? sb : malloc(n * sizeof *b);
  int *stack = small ? sst : malloc((2 * n + 2) * sizeof *stack);
  unsigned *mark = small ? smark : calloc(n, sizeof *mark), gen = 1;
  int na = 0, nb, k, hit = 0;
  if (small) memset(smark, 0, n * sizeof *smark);
  if (!a || !b || !stack || !mark) goto out; /* out of memory: no match */
  addst(re, re->start, a, &na, mark, gen, stack);
  while (i < len && na) {
    unsigned char c0 = (unsigned char)s[i];
    size_t l = c0 < 0x80 ? 1 : c0 >= 0xF0 ? 4 : c0 >= 0xE0 ? 3 : 2, j;
    uint32_t c;
    if (i + l > len) l = len - i;
    c = l == 1 ? c0 : (uint32_t)(c0 & (0x3F >> (l - 1)));
    for (j = 1; j < l; j++) c = (c << 6) | ((unsigned char)s[i + j] & 0x3F);
    i += l;
    gen++;
    nb = 0;
    for (k = 0; k < na; k++) {
      const st *x = &re->s[a[k]];
      if ((x->op == S_CHAR && x->c == c) || x->op == S_ANY || (x->op == S_CLASS && in_class(re, x, c)))
        addst(re, x->out, b, &nb, mark, gen, stack);
    }
    int *t = a;
    a = b;
    b = t;
    na = nb;
  }
  if (i == len)
    for (k = 0; k < na; k++)
      if (re->s[a[k]].op == S_MATCH) hit = 1;
out:
  if (!small) {
    free(a);
    free(b);
    free(stack);
    free(mark);
  }
  return hit;
}
