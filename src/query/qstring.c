/* qstring.c: query_string (Lucene's classic query syntax) and simple_query_string, rewritten into
** the query DSL and parsed as any body is: field:value, fields with boosts ("title^2": a dis_max
** over them, most_fields: their sum), AND/OR/NOT, && || !, +/-, (groups), field:(groups),
** "phrases" (match_phrase; "..."~N: slop N), wildcards (* ?: a wildcard or prefix query, lowercased),
** term~N (fuzzy), /regexp/, ranges [a TO b], {a TO b}, >=x, >x, <x, <=x, ^boost, _exists_:field.
** Without fields or default_field every indexed field is searched ("*", as Elasticsearch's
** index.query.default_field). The clauses combine as Lucene's QueryParserBase.addClause does
** under default_operator. A syntax error is QB_SYNTAX (query_shard_exception). The JSON made
** lives in req->made for the request's life (the parse tree points into it). */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64
#define MAX_QDEPTH 32

typedef struct qsctx {
  const char *src;          /* the whole query, for messages */
  const char *s;            /* where the scan is */
  int op_and;               /* default_operator */
  int simple;
  const char *fields[MAX_FIELDS];
  double boosts[MAX_FIELDS];
  size_t nfields;
  int most;                 /* type most_fields */
  double tie;
  const char *analyzer;
  json_t *fuzziness;        /* "fuzziness" for term~ (default AUTO) */
  int fz_prefix, fz_max, fz_transp; /* -1: not given */
  int depth;
  qb_err *err;
} qsctx;

enum { OCC_MUST, OCC_SHOULD, OCC_NOT };

static qb_code fail(qsctx *c, const char *why) {
  return qb_fail(c->err, QB_SYNTAX, "Failed to parse query [%s]: Cannot parse '%s': %s at character %d",
                 c->src, c->src, why, (int)(c->s - c->src));
}

static qb_code nomem(qsctx *c) { return qb_fail(c->err, QB_NOMEM, "query: out of memory"); }

static void skip_ws(qsctx *c) { while (*c->s && isspace((unsigned char)*c->s)) c->s++; }

static int term_char(char ch, int simple) {
  if (!ch || isspace((unsigned char)ch)) return 0;
  if (simple) return !strchr("+|\"()~", ch);
  return !strchr("+-!(){}[]^\"~:\\/&|", ch);
}

/* ---- leaves ------------------------------------------------------------------------------------- */

static char *lower_dup(const char *s, size_t n) {
  char *o = malloc(n + 1);
  size_t i;
  if (!o) return NULL;
  for (i = 0; i < n; i++) o[i] = (char)tolower((unsigned char)s[i]);
  o[n] = 0;
  return o;
}

enum { L_TERM, L_PHRASE, L_WILD, L_FUZZY, L_REGEXP, L_RANGE, L_EXISTS };

typedef struct leafspec {
  int kind;
  const char *text;    /* NUL-terminated, unescaped */
  const char *fuzz;    /* L_FUZZY: "AUTO", "1", ... (NULL: the query's fuzziness) */
  json_t *lo, *hi;     /* L_RANGE (borrowed; NULL: open) */
  int lo_incl, hi_incl;
  int slop;            /* L_PHRASE: "..."~N */
} leafspec;

/* The slop of "..."~N: N when it is a whole number (at most 10,000), else 0 */
static int phrase_slop(int has_tilde, const char *fuzz) {
  char *e;
  long v;
  if (!has_tilde || !*fuzz) return 0;
  v = strtol(fuzz, &e, 10);
  return *e || v < 0 ? 0 : v > 10000 ? 10000 : (int)v;
}

static json_t *boosted(json_t *q, double boost) {
  if (!q || boost == 1.0) return q;
  return json_pack("{s:{s:[o], s:f}}", "bool", "must", q, "boost", boost);
}

static json_t *leaf_one(qsctx *c, const char *field, const leafspec *l) {
  json_t *o = NULL, *inner;
  switch (l->kind) {
  case L_TERM:
    inner = json_pack("{s:s}", "query", l->text);
    if (inner && c->op_and) json_object_set_new(inner, "operator", json_string("and"));
    if (inner && c->analyzer) json_object_set_new(inner, "analyzer", json_string(c->analyzer));
    o = json_pack("{s:{s:o}}", "match", field, inner);
    break;
  case L_PHRASE: /* Lucene: a quoted string is a phrase; "..."~N its slop */
    inner = json_pack("{s:s, s:i}", "query", l->text, "slop", l->slop);
    if (inner && c->analyzer) json_object_set_new(inner, "analyzer", json_string(c->analyzer));
    o = json_pack("{s:{s:o}}", "match_phrase", field, inner);
    break;
  case L_WILD: {
    char *lw = lower_dup(l->text, strlen(l->text));
    size_t n = lw ? strlen(lw) : 0;
    if (!lw) return NULL;
    if (n && lw[n - 1] == '*' && !strpbrk(lw, "?") && strchr(lw, '*') == lw + n - 1) {
      lw[n - 1] = 0;
      o = json_pack("{s:{s:{s:s}}}", "prefix", field, "value", lw);
    } else {
      o = json_pack("{s:{s:{s:s}}}", "wildcard", field, "value", lw);
    }
    free(lw);
    break;
  }
  case L_FUZZY: {
    char *lw = lower_dup(l->text, strlen(l->text));
    if (!lw) return NULL;
    inner = json_pack("{s:s}", "value", lw);
    free(lw);
    if (!inner) return NULL;
    if (l->fuzz) json_object_set_new(inner, "fuzziness", json_string(l->fuzz));
    else if (c->fuzziness) json_object_set(inner, "fuzziness", c->fuzziness);
    if (c->fz_prefix >= 0) json_object_set_new(inner, "prefix_length", json_integer(c->fz_prefix));
    if (c->fz_max >= 0) json_object_set_new(inner, "max_expansions", json_integer(c->fz_max));
    if (c->fz_transp >= 0) json_object_set_new(inner, "transpositions", json_boolean(c->fz_transp));
    o = json_pack("{s:{s:o}}", "fuzzy", field, inner);
    break;
  }
  case L_REGEXP: o = json_pack("{s:{s:{s:s}}}", "regexp", field, "value", l->text); break;
  case L_RANGE:
    inner = json_object();
    if (!inner) return NULL;
    if (l->lo) json_object_set(inner, l->lo_incl ? "gte" : "gt", l->lo);
    if (l->hi) json_object_set(inner, l->hi_incl ? "lte" : "lt", l->hi);
    o = json_pack("{s:{s:o}}", "range", field, inner);
    break;
  case L_EXISTS: o = json_pack("{s:{s:s}}", "exists", "field", l->text); break;
  }
  return o;
}

/* The leaf over FIELD (NULL: the query's fields) */
static json_t *leaf(qsctx *c, const char *field, const leafspec *l) {
  size_t i;
  if (field || l->kind == L_EXISTS) return leaf_one(c, field ? field : "*", l);
  if (!c->nfields) return leaf_one(c, "*", l);
  if (c->nfields == 1) return boosted(leaf_one(c, c->fields[0], l), c->boosts[0]);
  json_t *qs = json_array();
  if (!qs) return NULL;
  for (i = 0; i < c->nfields; i++) {
    json_t *q = boosted(leaf_one(c, c->fields[i], l), c->boosts[i]);
    if (!q || json_array_append_new(qs, q)) {
      json_decref(qs);
      return NULL;
    }
  }
  return json_pack("{s:{s:o, s:f}}", "dis_max", "queries", qs, "tie_breaker", c->most ? 1.0 : c->tie);
}

/* ---- clauses into a bool ------------------------------------------------------------------------ */

typedef struct clauses {
  json_t *q[256];
  int occ[256];
  size_t n;
} clauses;

/* Lucene's QueryParserBase.addClause: CONJ 0 none, 1 AND, 2 OR; MODS 0 none, 1 +, 2 - / NOT */
static qb_code add_clause(qsctx *c, clauses *cl, int conj, int mods, json_t *q) {
  int required, prohibited;
  if (cl->n == 256) {
    json_decref(q);
    return fail(c, "more than 256 clauses in one group");
  }
  if (cl->n && conj == 1 && cl->occ[cl->n - 1] != OCC_NOT) cl->occ[cl->n - 1] = OCC_MUST;
  if (cl->n && c->op_and && conj == 2 && cl->occ[cl->n - 1] != OCC_NOT) cl->occ[cl->n - 1] = OCC_SHOULD;
  if (!c->op_and) {
    prohibited = mods == 2;
    required = mods == 1;
    if (conj == 1 && !prohibited) required = 1;
  } else {
    prohibited = mods == 2;
    required = !prohibited && conj != 2;
  }
  cl->q[cl->n] = q;
  cl->occ[cl->n++] = required && !prohibited ? OCC_MUST : !prohibited ? OCC_SHOULD : OCC_NOT;
  return QB_OK;
}

static json_t *to_bool(clauses *cl) {
  json_t *must = json_array(), *should = json_array(), *not = json_array(), *b;
  size_t i;
  if (cl->n == 1 && cl->occ[0] != OCC_NOT) {
    json_decref(must);
    json_decref(should);
    json_decref(not);
    return cl->q[0];
  }
  for (i = 0; i < cl->n; i++)
    json_array_append_new(cl->occ[i] == OCC_MUST ? must : cl->occ[i] == OCC_SHOULD ? should : not, cl->q[i]);
  b = json_object();
  if (json_array_size(must)) json_object_set(b, "must", must);
  if (json_array_size(should)) json_object_set(b, "should", should);
  if (json_array_size(not)) json_object_set(b, "must_not", not);
  json_decref(must);
  json_decref(should);
  json_decref(not);
  return json_pack("{s:o}", "bool", b);
}

static void clauses_free(clauses *cl) {
  size_t i;
  for (i = 0; i < cl->n; i++) json_decref(cl->q[i]);
  cl->n = 0;
}

/* ---- query_string ------------------------------------------------------------------------------- */

/* A term's text up to a special character, unescaped, into a malloc'd string. *WILD: has * or ? */
static char *scan_term(qsctx *c, int *wild) {
  const char *st = c->s;
  size_t cap = strlen(st) + 1, n = 0;
  char *o = malloc(cap);
  *wild = 0;
  if (!o) return NULL;
  while (*c->s) {
    char ch = *c->s;
    if (ch == '\\' && c->s[1]) {
      o[n++] = c->s[1];
      c->s += 2;
      continue;
    }
    if (!c->simple && (ch == '-' || ch == '+') && c->s != st) { o[n++] = ch; c->s++; continue; }
    if (!c->simple && ch == '*') { *wild = 1; o[n++] = ch; c->s++; continue; }
    if (!term_char(ch, c->simple)) break;
    if (ch == '*' || ch == '?') *wild = 1;
    o[n++] = ch;
    c->s++;
  }
  o[n] = 0;
  return o;
}

static int word_is(qsctx *c, const char *w) {
  size_t n = strlen(w);
  return !strncmp(c->s, w, n) && (!c->s[n] || isspace((unsigned char)c->s[n]) || c->s[n] == '(');
}

static qb_code parse_group(qsctx *c, const char *field, json_t **out);

/* ^N after a clause */
static qb_code opt_boost(qsctx *c, json_t **q) {
  if (*c->s != '^') return QB_OK;
  char *end;
  double b = strtod(c->s + 1, &end);
  if (end == c->s + 1 || b < 0 || !isfinite(b)) return fail(c, "expected a boost after '^'");
  c->s = end;
  if (!(*q = boosted(*q, b))) return nomem(c);
  return QB_OK;
}

/* ~N after a term or phrase: *FUZZ gets "N" or "" for a bare ~ */
static qb_code opt_tilde(qsctx *c, char *fuzz, size_t cap, int *has) {
  *has = 0;
  if (*c->s != '~') return QB_OK;
  c->s++;
  *has = 1;
  size_t n = 0;
  while ((isdigit((unsigned char)*c->s) || *c->s == '.') && n + 1 < cap) fuzz[n++] = *c->s++;
  fuzz[n] = 0;
  return QB_OK;
}

static json_t *range_bound(const char *s) {
  if (!strcmp(s, "*")) return NULL;
  return json_string(s);
}

static qb_code parse_range(qsctx *c, const char *field, json_t **out) {
  int lo_incl = *c->s == '[';
  char *a, *b;
  int w;
  c->s++;
  skip_ws(c);
  if (*c->s == '"') { /* quoted bound */
    const char *e = strchr(c->s + 1, '"');
    if (!e) return fail(c, "unterminated quoted range bound");
    a = strndup(c->s + 1, (size_t)(e - c->s - 1));
    c->s = e + 1;
  } else {
    const char *e = c->s;
    while (*e && !isspace((unsigned char)*e) && *e != ']' && *e != '}') e++;
    a = strndup(c->s, (size_t)(e - c->s));
    c->s = e;
  }
  if (!a) return nomem(c);
  skip_ws(c);
  if (strncmp(c->s, "TO", 2) || !isspace((unsigned char)c->s[2])) {
    free(a);
    return fail(c, "expected 'TO' in a range");
  }
  c->s += 2;
  skip_ws(c);
  if (*c->s == '"') {
    const char *e = strchr(c->s + 1, '"');
    if (!e) { free(a); return fail(c, "unterminated quoted range bound"); }
    b = strndup(c->s + 1, (size_t)(e - c->s - 1));
    c->s = e + 1;
  } else {
    const char *e = c->s;
    while (*e && !isspace((unsigned char)*e) && *e != ']' && *e != '}') e++;
    b = strndup(c->s, (size_t)(e - c->s));
    c->s = e;
  }
  (void)w;
  if (!b) { free(a); return nomem(c); }
  skip_ws(c);
  if (*c->s != ']' && *c->s != '}') {
    free(a);
    free(b);
    return fail(c, "expected ']' or '}' to close a range");
  }
  leafspec l = {.kind = L_RANGE, .lo = range_bound(a), .hi = range_bound(b), .lo_incl = lo_incl,
                .hi_incl = *c->s == ']'};
  c->s++;
  free(a);
  free(b);
  *out = leaf(c, field, &l);
  json_decref(l.lo);
  json_decref(l.hi);
  return *out ? QB_OK : nomem(c);
}

static qb_code parse_clause(qsctx *c, const char *field, json_t **out) {
  qb_code rc;
  char fuzz[16];
  int has_tilde, wild;
  *out = NULL;
  skip_ws(c);
  /* field: */
  if (!field && term_char(*c->s, 0)) {
    const char *e = c->s;
    while (*e && (term_char(*e, 0) || (*e == '\\' && e[1]))) e += *e == '\\' ? 2 : 1;
    if (*e == ':' && e > c->s) {
      char name[256];
      size_t n = 0;
      for (const char *p = c->s; p < e && n + 1 < sizeof name; p++) {
        if (*p == '\\') p++;
        name[n++] = *p;
      }
      name[n] = 0;
      c->s = e + 1;
      skip_ws(c);
      if (!strcmp(name, "_exists_")) {
        int w2;
        char *t = scan_term(c, &w2);
        if (!t) return nomem(c);
        if (!*t) { free(t); return fail(c, "expected a field name after _exists_:"); }
        leafspec l = {.kind = L_EXISTS, .text = t};
        *out = leaf(c, NULL, &l);
        free(t);
        return *out ? opt_boost(c, out) : nomem(c);
      }
      /* the field name must outlive this call: keep it in the JSON made (a string) */
      json_t *fn = json_string(name);
      if (!fn) return nomem(c);
      rc = parse_clause(c, json_string_value(fn), out);
      json_decref(fn); /* the JSON made has copied it */
      return rc;
    }
  }
  if (*c->s == '(') {
    c->s++;
    if (++c->depth > MAX_QDEPTH) return fail(c, "groups nested too deeply");
    if ((rc = parse_group(c, field, out))) return rc;
    c->depth--;
    skip_ws(c);
    if (*c->s != ')') {
      json_decref(*out);
      *out = NULL;
      return fail(c, "expected ')'");
    }
    c->s++;
    return opt_boost(c, out);
  }
  if (*c->s == '"') {
    const char *e = c->s + 1;
    char *t;
    size_t n = 0;
    while (*e && *e != '"') e += (*e == '\\' && e[1]) ? 2 : 1;
    if (!*e) return fail(c, "unterminated phrase (a '\"' is missing)");
    if (!(t = malloc((size_t)(e - c->s) + 1))) return nomem(c);
    for (const char *p = c->s + 1; p < e; p++) {
      if (*p == '\\' && p + 1 < e) p++;
      t[n++] = *p;
    }
    t[n] = 0;
    c->s = e + 1;
    opt_tilde(c, fuzz, sizeof fuzz, &has_tilde); /* proximity: "..."~N is the phrase's slop */
    leafspec l = {.kind = L_PHRASE, .text = t, .slop = phrase_slop(has_tilde, fuzz)};
    *out = leaf(c, field, &l);
    free(t);
    return *out ? opt_boost(c, out) : nomem(c);
  }
  if (!c->simple && (*c->s == '[' || *c->s == '{')) {
    if ((rc = parse_range(c, field, out))) return rc;
    return opt_boost(c, out);
  }
  if (!c->simple && (*c->s == '>' || *c->s == '<')) {
    int gt = *c->s == '>', incl = c->s[1] == '=';
    char *t;
    c->s += incl ? 2 : 1;
    if (!(t = scan_term(c, &wild))) return nomem(c);
    if (!*t) { free(t); return fail(c, "expected a value after a comparison"); }
    json_t *v = json_string(t);
    free(t);
    leafspec l = {.kind = L_RANGE, .lo = gt ? v : NULL, .hi = gt ? NULL : v, .lo_incl = incl, .hi_incl = incl};
    *out = leaf(c, field, &l);
    json_decref(v);
    return *out ? opt_boost(c, out) : nomem(c);
  }
  if (!c->simple && *c->s == '/') {
    const char *e = c->s + 1;
    while (*e && *e != '/') e += (*e == '\\' && e[1]) ? 2 : 1;
    if (!*e) return fail(c, "unterminated regular expression (a '/' is missing)");
    char *t = strndup(c->s + 1, (size_t)(e - c->s - 1));
    if (!t) return nomem(c);
    c->s = e + 1;
    leafspec l = {.kind = L_REGEXP, .text = t};
    *out = leaf(c, field, &l);
    free(t);
    return *out ? opt_boost(c, out) : nomem(c);
  }
  char *t = scan_term(c, &wild);
  if (!t) return nomem(c);
  if (!*t) {
    free(t);
    return fail(c, *c->s ? "unexpected character" : "unexpected end of the query");
  }
  if (!c->simple && wild && t[0] == '*' && !t[1]) { /* field:* is exists, *: match_all */
    free(t);
    if (field) {
      leafspec l = {.kind = L_EXISTS, .text = field};
      *out = leaf(c, NULL, &l);
    } else {
      *out = json_pack("{s:{}}", "match_all");
    }
    return *out ? opt_boost(c, out) : nomem(c);
  }
  opt_tilde(c, fuzz, sizeof fuzz, &has_tilde);
  leafspec l = {.kind = has_tilde ? L_FUZZY : wild ? L_WILD : L_TERM, .text = t,
                .fuzz = has_tilde && *fuzz ? fuzz : NULL};
  if (has_tilde && *fuzz && strcmp(fuzz, "0") && strcmp(fuzz, "1") && strcmp(fuzz, "2")) {
    free(t);
    return fail(c, "a fuzzy edit distance is 0, 1 or 2");
  }
  *out = leaf(c, field, &l);
  free(t);
  return *out ? opt_boost(c, out) : nomem(c);
}

/* Clauses up to ')' or the end */
static qb_code parse_group(qsctx *c, const char *field, json_t **out) {
  clauses *cl = calloc(1, sizeof *cl);
  qb_code rc = QB_OK;
  if (!cl) return nomem(c);
  for (;;) {
    int conj = 0, mods = 0;
    json_t *q;
    skip_ws(c);
    if (!*c->s || *c->s == ')') break;
    if (word_is(c, "AND") || !strncmp(c->s, "&&", 2)) {
      conj = 1;
      c->s += *c->s == '&' ? 2 : 3;
    } else if (word_is(c, "OR") || !strncmp(c->s, "||", 2)) {
      conj = 2;
      c->s += 2;
    }
    if (conj) {
      if (!cl->n) { rc = fail(c, "a query cannot start with AND or OR"); break; }
      skip_ws(c);
      if (!*c->s || *c->s == ')') { rc = fail(c, "expected a clause after AND or OR"); break; }
    }
    if (*c->s == '+') { mods = 1; c->s++; }
    else if (*c->s == '-' || *c->s == '!') { mods = 2; c->s++; }
    else if (word_is(c, "NOT")) {
      mods = 2;
      c->s += 3;
      skip_ws(c);
      if (!*c->s || *c->s == ')') { rc = fail(c, "expected a clause after NOT"); break; }
    }
    if ((rc = parse_clause(c, field, &q))) break;
    if ((rc = add_clause(c, cl, conj, mods, q))) break;
  }
  if (!rc && !cl->n) {
    *out = json_pack("{s:{}}", "match_none");
  } else if (!rc) {
    *out = to_bool(cl);
    cl->n = 0;
  }
  clauses_free(cl);
  free(cl);
  if (!rc && !*out) rc = nomem(c);
  return rc;
}

/* ---- simple_query_string ------------------------------------------------------------------------- */

/* Left to right, as Lucene's SimpleQueryParser: "a b" joins by default_operator, "a + b" by AND,
** "a | b" by OR, "-a" negates, (groups), "phrase", prefix*, term~N. Never fails on syntax: a
** stray operator is skipped. */
static json_t *combine(json_t *top, json_t *q, int and_op) {
  const char *key = and_op ? "must" : "should";
  json_t *b = json_object_get(top, "bool");
  if (b && json_object_size(b) == 1 && json_is_array(json_object_get(b, key)) &&
      json_object_get(top, "_qs_made")) {
    json_array_append_new(json_object_get(b, key), q);
    return top;
  }
  json_t *n = json_pack("{s:{s:[o,o]}, s:b}", "bool", key, top, q, "_qs_made", 1);
  return n;
}

static void strip_marks(json_t *j) {
  const char *k;
  json_t *v;
  size_t i;
  if (json_is_object(j)) {
    json_object_del(j, "_qs_made");
    json_object_foreach(j, k, v) strip_marks(v);
  } else if (json_is_array(j)) {
    json_array_foreach(j, i, v) strip_marks(v);
  }
}

static qb_code simple_group(qsctx *c, json_t **out) {
  json_t *top = NULL;
  int pending = -1; /* -1: default operator; 1 AND; 0 OR */
  qb_code rc = QB_OK;
  for (;;) {
    int neg = 0, wild = 0, has_tilde = 0;
    char fuzz[16];
    json_t *q = NULL;
    skip_ws(c);
    if (!*c->s || *c->s == ')') break;
    if (*c->s == '+') { pending = 1; c->s++; continue; }
    if (*c->s == '|') { pending = 0; c->s++; continue; }
    while (*c->s == '-') { neg = !neg; c->s++; }
    if (*c->s == '(') {
      c->s++;
      if (++c->depth > MAX_QDEPTH) { rc = fail(c, "groups nested too deeply"); break; }
      if ((rc = simple_group(c, &q))) break;
      c->depth--;
      if (*c->s == ')') c->s++;
    } else if (*c->s == '"') {
      const char *e = strchr(c->s + 1, '"');
      char *t = e ? strndup(c->s + 1, (size_t)(e - c->s - 1)) : strdup(c->s + 1);
      if (!t) { rc = nomem(c); break; }
      c->s = e ? e + 1 : c->s + strlen(c->s);
      opt_tilde(c, fuzz, sizeof fuzz, &has_tilde);
      leafspec l = {.kind = L_PHRASE, .text = t, .slop = phrase_slop(has_tilde, fuzz)};
      q = *t ? leaf(c, NULL, &l) : NULL;
      free(t);
      if (!q) continue;
    } else {
      char *t = scan_term(c, &wild);
      if (!t) { rc = nomem(c); break; }
      if (!*t) { free(t); if (*c->s) c->s++; continue; }
      opt_tilde(c, fuzz, sizeof fuzz, &has_tilde);
      size_t n = strlen(t);
      int prefix = n > 1 && t[n - 1] == '*';
      leafspec l = {.kind = has_tilde ? L_FUZZY : prefix ? L_WILD : L_TERM, .text = t,
                    .fuzz = has_tilde && *fuzz && (!strcmp(fuzz, "0") || !strcmp(fuzz, "1") || !strcmp(fuzz, "2")) ? fuzz : NULL};
      if (!prefix && l.kind == L_WILD) l.kind = L_TERM;
      q = leaf(c, NULL, &l);
      free(t);
    }
    if (!q) { rc = nomem(c); break; }
    if (neg && !(q = json_pack("{s:{s:[o]}}", "bool", "must_not", q))) { rc = nomem(c); break; }
    int and_op = pending < 0 ? c->op_and : pending;
    top = top ? combine(top, q, and_op) : q;
    if (!top) { rc = nomem(c); break; }
    pending = -1;
  }
  if (rc) {
    json_decref(top);
    return rc;
  }
  *out = top ? top : json_pack("{s:{}}", "match_none");
  return *out ? QB_OK : nomem(c);
}

/* ---- the options --------------------------------------------------------------------------------- */

static qb_code field_list(qsctx *c, const char *qname, const json_t *v) {
  size_t i;
  const json_t *f;
  if (json_is_string(v)) { /* default_field */
    c->fields[0] = json_string_value(v);
    c->boosts[0] = 1;
    c->nfields = 1;
  } else if (json_is_array(v)) {
    if (json_array_size(v) > MAX_FIELDS) return qb_fail(c->err, QB_INVAL, "[%s] more than %d fields", qname, MAX_FIELDS);
    c->nfields = 0;
    json_array_foreach(v, i, f) {
      if (!json_is_string(f)) return qb_fail(c->err, QB_MALFORMED, "[%s] [fields] must be strings", qname);
      c->fields[c->nfields] = json_string_value(f);
      c->boosts[c->nfields] = 1;
      c->nfields++;
    }
  } else {
    return qb_fail(c->err, QB_MALFORMED, "[%s] [fields] must be an array of strings", qname);
  }
  return QB_OK;
}

/* "title^2" -> "title" (kept in MADE) and 2 */
static qb_code split_boosts(qsctx *c, const char *qname, json_t *made) {
  for (size_t i = 0; i < c->nfields; i++) {
    const char *caret = strchr(c->fields[i], '^');
    if (!caret) continue;
    char *end;
    double b = strtod(caret + 1, &end);
    if (*end || b < 0) return qb_fail(c->err, QB_INVAL, "[%s] bad field boost in [%s]", qname, c->fields[i]);
    json_t *s = json_stringn(c->fields[i], (size_t)(caret - c->fields[i]));
    if (!s || json_array_append_new(made, s)) return nomem(c);
    c->fields[i] = json_string_value(s);
    c->boosts[i] = b;
  }
  return QB_OK;
}

qb_code qq__parse_qstring(qq__pctx *p, const json_t *body, int simple, qq__query **out) {
  qq_request *req = qq__pctx_req(p);
  qb_err *err = qq__pctx_err(p);
  const char *qname = simple ? "simple_query_string" : "query_string";
  const char *k, *msm = NULL;
  json_t *v, *text = NULL, *made, *tree = NULL;
  float boost = 1;
  qb_code rc;
  qsctx c;
  memset(&c, 0, sizeof c);
  c.simple = simple;
  c.err = err;
  c.fz_prefix = c.fz_max = c.fz_transp = -1;
  *out = NULL;
  if (!json_is_object(body)) return qb_fail(err, QB_MALFORMED, "[%s] query malformed, no start_object after query name", qname);
  if (!req->made && !(req->made = json_array())) return qb_fail(err, QB_NOMEM, "query: out of memory");
  made = req->made;
  json_object_foreach((json_t *)body, k, v) {
    if (!strcmp(k, "query")) text = v;
    else if (!strcmp(k, "fields")) { if ((rc = field_list(&c, qname, v))) return rc; }
    else if (!simple && !strcmp(k, "default_field")) {
      if (!json_is_string(v)) return qb_fail(err, QB_MALFORMED, "[%s] [default_field] must be a string", qname);
      if (!json_object_get(body, "fields") && (rc = field_list(&c, qname, v))) return rc;
    } else if (!strcmp(k, "default_operator")) {
      const char *s = json_is_string(v) ? json_string_value(v) : "";
      if (!strcasecmp(s, "and")) c.op_and = 1;
      else if (strcasecmp(s, "or")) return qb_fail(err, QB_INVAL, "[%s] unknown default_operator [%s], expected [AND] or [OR]", qname, s);
    } else if (!strcmp(k, "analyzer")) {
      if (!json_is_string(v)) return qb_fail(err, QB_MALFORMED, "[%s] [analyzer] must be a string", qname);
      c.analyzer = json_string_value(v);
    } else if (!strcmp(k, "boost")) {
      if ((rc = qq__get_boost(p, body, qname, &boost))) return rc;
    } else if (!strcmp(k, "minimum_should_match")) {
      if (json_is_string(v)) msm = json_string_value(v);
      else if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        if (!(msm = qb_arena_strdup(&req->arena, buf))) return qb_fail(err, QB_NOMEM, "query: out of memory");
      } else return qb_fail(err, QB_MALFORMED, "[%s] [minimum_should_match] must be a number or string", qname);
    } else if (!simple && !strcmp(k, "fuzziness")) {
      c.fuzziness = v;
    } else if (!strcmp(k, "fuzzy_prefix_length") || !strcmp(k, "fuzzy_max_expansions")) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 10000)
        return qb_fail(err, QB_INVAL, "[%s] [%s] must be a non-negative integer", qname, k);
      if (k[6] == 'p') c.fz_prefix = (int)json_integer_value(v);
      else c.fz_max = (int)json_integer_value(v);
    } else if (!strcmp(k, "fuzzy_transpositions")) {
      if (!json_is_boolean(v)) return qb_fail(err, QB_MALFORMED, "[%s] [fuzzy_transpositions] must be a boolean", qname);
      c.fz_transp = json_is_true(v);
    } else if (!simple && !strcmp(k, "type")) {
      const char *t = json_is_string(v) ? json_string_value(v) : "";
      if (!strcmp(t, "most_fields")) c.most = 1;
      else if (strcmp(t, "best_fields")) return qb_fail(err, QB_INVAL, "[%s] type [%s] is not supported (best_fields, most_fields)", qname, t);
    } else if (!simple && !strcmp(k, "tie_breaker")) {
      if (!json_is_number(v)) return qb_fail(err, QB_MALFORMED, "[%s] [tie_breaker] must be a number", qname);
      c.tie = json_number_value(v);
    } else if (!simple && !strcmp(k, "allow_leading_wildcard")) {
      if (!json_is_true(v)) return qb_fail(err, QB_INVAL, "[%s] [allow_leading_wildcard] is not supported as [false]", qname);
    } else if (!strcmp(k, "analyze_wildcard")) {
      if (!json_is_false(v)) return qb_fail(err, QB_INVAL, "[%s] [analyze_wildcard] is not supported as [true] (wildcard terms are lowercased, not analyzed)", qname);
    } else if (simple && !strcmp(k, "flags")) {
      const char *f = json_is_string(v) ? json_string_value(v) : "";
      if (strcmp(f, "ALL")) return qb_fail(err, QB_INVAL, "[%s] [flags] [%s] is not supported (ALL only)", qname, f);
    } else if (!strcmp(k, "auto_generate_synonyms_phrase_query")) {
      if (!json_is_boolean(v)) return qb_fail(err, QB_MALFORMED, "[%s] [%s] must be a boolean", qname, k);
    } else if (!strcmp(k, "lenient")) {
      if (!json_is_boolean(v)) return qb_fail(err, QB_MALFORMED, "[%s] [lenient] must be a boolean", qname);
      if (json_is_true(v)) return qb_fail(err, QB_INVAL, "[%s] [lenient] is not supported as [true] (numeric fields are left out of \"*\" searches either way)", qname);
    } else {
      return qb_fail(err, QB_MALFORMED, "[%s] query does not support [%s]", qname, k);
    }
  }
  if (!json_is_string(text)) return qb_fail(err, QB_MALFORMED, "[%s] must be provided with a [query]", qname);
  if ((rc = split_boosts(&c, qname, made))) return rc;
  c.src = c.s = json_string_value(text);
  rc = simple ? simple_group(&c, &tree) : parse_group(&c, NULL, &tree);
  if (!rc && !simple && *c.s) rc = fail(&c, "unbalanced ')'");
  if (rc) {
    json_decref(tree);
    return rc;
  }
  if (simple) strip_marks(tree);
  if (msm && json_is_object(json_object_get(tree, "bool")))
    json_object_set_new(json_object_get(tree, "bool"), "minimum_should_match", json_string(msm));
  if (!(tree = boosted(tree, boost)) || json_array_append_new(made, tree))
    return qb_fail(err, QB_NOMEM, "query: out of memory");
  return qq__parse_sub(p, tree, qname, out);
}
