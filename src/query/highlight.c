/* highlight.c: the search body's "highlight" (Elasticsearch's unified highlighter, its output
** shape and options: fields with wildcards, pre_tags/post_tags, fragment_size,
** number_of_fragments, require_field_match, order, encoder), computed on the shard when its
** hits are fetched, so a coordinator gets it with the hits.
** What matches: the query's terms (term, terms, match, multi_match, prefix, wildcard, and the
** clauses of bool -- not must_not --, dis_max, constant_score, function_score, script_score),
** analyzed for the field they query, and the field's analyzed value compared with them
** (require_field_match, the default: only terms of a query on that field). A phrase marks only
** its matched occurrences (the phrase.c matcher over the value's positions; a sloppy match
** marks the phrase's terms inside its window).
** Fragments: each value of the field (from _source; a multi-field such as title.keyword reads
** its parent) is cut into sentences (ending at . ! or ? before a space or the end); a sentence
** with a match no longer than fragment_size is one passage; a longer one gives passages of at
** most fragment_size bytes, from its start when the first match ends within fragment_size of
** it and otherwise from the match's word, to the end of the last whole word that fits. The
** number_of_fragments passages with the most marked tokens (earlier first on ties) are
** returned in text order (order: score: best first); number_of_fragments 0 returns each
** matching value whole. Each marked token is wrapped in the first pre/post tag. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NMD QI_NO_MORE_DOCS
#define HL_MAX_FIELDS 64
#define HL_MAX_TERMS 64

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

typedef struct hl_opts {
  const char *pre, *post;
  uint32_t frag_size, nfrags;
  int8_t require_field_match, order_score, html;
  uint8_t set; /* bits: which of the above were given (a field's override the global) */
} hl_opts;
enum { SET_PRE = 1, SET_POST = 2, SET_FS = 4, SET_NF = 8, SET_RFM = 16, SET_ORD = 32, SET_ENC = 64 };

typedef struct hl_field {
  const char *pattern;
  hl_opts o;
} hl_field;

typedef enum { HT_TERM, HT_PREFIX, HT_WILDCARD, HT_PHRASE } hl_kind;

typedef struct hl_term {
  const char *field;       /* the query's field */
  hl_kind kind;
  const char **t;          /* terms (HT_PHRASE: in order; the last a prefix when prefix_last) */
  size_t *len;
  uint32_t *qpos;          /* HT_PHRASE: query positions */
  size_t n;
  uint32_t slop;
  int prefix_last;
  struct hl_term *next;
} hl_term;

typedef struct qq__hl qq__hl;
struct qq__hl {
  hl_opts o;
  hl_field *f;
  size_t nf;
  /* per shard (the request's shards run one after the other) */
  const qq__shard *sh;
  const qi_snapshot *snap;
  hl_term *terms;
};

/* ---- parsing ----------------------------------------------------------------------------------- */

static qb_code tag(const json_t *v, const char *k, const char **out, qb_err *err) {
  if (json_is_array(v)) {
    if (!json_array_size(v) || !json_is_string(json_array_get(v, 0)))
      return qb_fail(err, QB_MALFORMED, "[highlight] [%s] must be a non-empty array of strings", k);
    for (size_t i = 0; i < json_array_size(v); i++)
      if (!json_is_string(json_array_get(v, i)))
        return qb_fail(err, QB_MALFORMED, "[highlight] [%s] must be a non-empty array of strings", k);
    *out = json_string_value(json_array_get(v, 0));
  } else if (json_is_string(v)) {
    *out = json_string_value(v);
  } else {
    return qb_fail(err, QB_MALFORMED, "[highlight] [%s] must be an array of strings", k);
  }
  return QB_OK;
}

static qb_code count(const json_t *v, const char *k, uint32_t min, uint32_t *out, qb_err *err) {
  if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min || json_integer_value(v) > (1 << 24))
    return qb_fail(err, QB_INVAL, "[highlight] [%s] must be an integer >= %u", k, min);
  *out = (uint32_t)json_integer_value(v);
  return QB_OK;
}

/* One options object (the top level when TOP; a field's otherwise) into O */
static qb_code parse_opts(const json_t *j, int top, hl_opts *o, const json_t **fields, qb_err *err) {
  const char *k;
  json_t *v;
  qb_code rc = QB_OK;
  json_object_foreach((json_t *)j, k, v) {
    if (!strcmp(k, "pre_tags")) { rc = tag(v, k, &o->pre, err); o->set |= SET_PRE; }
    else if (!strcmp(k, "post_tags")) { rc = tag(v, k, &o->post, err); o->set |= SET_POST; }
    else if (!strcmp(k, "fragment_size")) { rc = count(v, k, 1, &o->frag_size, err); o->set |= SET_FS; }
    else if (!strcmp(k, "number_of_fragments")) { rc = count(v, k, 0, &o->nfrags, err); o->set |= SET_NF; }
    else if (!strcmp(k, "require_field_match")) {
      if (!json_is_boolean(v)) return qb_fail(err, QB_MALFORMED, "[highlight] [require_field_match] must be a boolean");
      o->require_field_match = json_is_true(v);
      o->set |= SET_RFM;
    } else if (!strcmp(k, "type")) {
      const char *t = json_is_string(v) ? json_string_value(v) : "";
      if (strcmp(t, "unified"))
        return qb_fail(err, QB_INVAL, "[highlight] [type] [%s] is not supported: only the [unified] highlighter is available", t);
    } else if (!strcmp(k, "order")) {
      const char *t = json_is_string(v) ? json_string_value(v) : "";
      if (strcmp(t, "score") && strcmp(t, "none"))
        return qb_fail(err, QB_INVAL, "[highlight] unknown [order] [%s], expected [score] or [none]", t);
      o->order_score = !strcmp(t, "score");
      o->set |= SET_ORD;
    } else if (!strcmp(k, "encoder")) {
      const char *t = json_is_string(v) ? json_string_value(v) : "";
      if (strcmp(t, "default") && strcmp(t, "html"))
        return qb_fail(err, QB_INVAL, "[highlight] unknown [encoder] [%s], expected [default] or [html]", t);
      o->html = !strcmp(t, "html");
      o->set |= SET_ENC;
    } else if (!strcmp(k, "no_match_size")) {
      if (!json_is_integer(v) || json_integer_value(v) != 0)
        return qb_fail(err, QB_INVAL, "[highlight] [no_match_size] is not supported (only 0: no fragment without a match)");
    } else if (top && !strcmp(k, "fields")) {
      *fields = v;
    } else {
      return qb_fail(err, QB_MALFORMED, "[highlight] %s[%s] is not supported", top ? "" : "field option ", k);
    }
    if (rc) return rc;
  }
  return QB_OK;
}

qb_code qq__parse_highlight(qq_request *req, const json_t *v, qb_err *err) {
  qq__hl *h;
  const json_t *fields = NULL;
  qb_code rc;
  if (!json_is_object(v)) return qb_fail(err, QB_MALFORMED, "[highlight] must be an object");
  if (!(h = qb_arena_alloc(&req->arena, sizeof *h))) return nomem(err);
  memset(h, 0, sizeof *h);
  h->o = (hl_opts){"<em>", "</em>", 100, 5, 1, 0, 0, 0};
  if ((rc = parse_opts(v, 1, &h->o, &fields, err))) return rc;
  if (!fields) return qb_fail(err, QB_MALFORMED, "[highlight] requires [fields]");
  size_t n = json_is_object(fields) ? json_object_size(fields) : json_is_array(fields) ? json_array_size(fields) : 0;
  if (!json_is_object(fields) && !json_is_array(fields))
    return qb_fail(err, QB_MALFORMED, "[highlight] [fields] must be an object or an array of objects");
  if (n > HL_MAX_FIELDS) return qb_fail(err, QB_INVAL, "[highlight] at most %d fields", HL_MAX_FIELDS);
  if (!(h->f = qb_arena_array(&req->arena, n + 1, sizeof *h->f))) return nomem(err);
  const char *k;
  json_t *o;
  if (json_is_object(fields)) {
    json_object_foreach((json_t *)fields, k, o) {
      hl_field *f = &h->f[h->nf++];
      f->pattern = k;
      if (!json_is_object(o)) return qb_fail(err, QB_MALFORMED, "[highlight] field [%s] must be an object", k);
      if ((rc = parse_opts(o, 0, &f->o, NULL, err))) return rc;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      const json_t *e = json_array_get(fields, i);
      if (!json_is_object(e) || json_object_size(e) != 1)
        return qb_fail(err, QB_MALFORMED, "[highlight] [fields] array elements must be objects with one field");
      k = json_object_iter_key(json_object_iter((json_t *)e));
      o = json_object_iter_value(json_object_iter((json_t *)e));
      hl_field *f = &h->f[h->nf++];
      f->pattern = k;
      if (!json_is_object(o)) return qb_fail(err, QB_MALFORMED, "[highlight] field [%s] must be an object", k);
      if ((rc = parse_opts(o, 0, &f->o, NULL, err))) return rc;
    }
  }
  for (size_t i = 0; i < h->nf; i++) { /* a field's own options over the global ones */
    hl_opts *fo = &h->f[i].o, g = h->o;
    if (fo->set & SET_PRE) g.pre = fo->pre;
    if (fo->set & SET_POST) g.post = fo->post;
    if (fo->set & SET_FS) g.frag_size = fo->frag_size;
    if (fo->set & SET_NF) g.nfrags = fo->nfrags;
    if (fo->set & SET_RFM) g.require_field_match = fo->require_field_match;
    if (fo->set & SET_ORD) g.order_score = fo->order_score;
    if (fo->set & SET_ENC) g.html = fo->html;
    *fo = g;
  }
  req->highlight = h;
  return QB_OK;
}

/* ---- the query's terms, per shard -------------------------------------------------------------------- */

typedef struct collect {
  qq__shard *sh;
  qq__hl *h;
  qb_err *err;
  hl_term *cur;     /* being filled by on_tok */
  size_t cap;
} collect;

static hl_term *new_term(collect *c, const char *field, hl_kind kind, size_t cap) {
  hl_term *t = qb_arena_alloc(c->sh->ar, sizeof *t);
  if (!t) return NULL;
  memset(t, 0, sizeof *t);
  t->field = field;
  t->kind = kind;
  if (!(t->t = qb_arena_array(c->sh->ar, cap + 1, sizeof *t->t)) ||
      !(t->len = qb_arena_array(c->sh->ar, cap + 1, sizeof *t->len)) ||
      !(t->qpos = qb_arena_array(c->sh->ar, cap + 1, sizeof *t->qpos)))
    return NULL;
  t->next = c->h->terms;
  c->h->terms = t;
  return t;
}

static qb_code on_tok(void *ud, const qi_token *tok, qb_err *err) {
  collect *c = ud;
  hl_term *t = c->cur;
  if (t->n == HL_MAX_TERMS) return QB_OK; /* enough to mark */
  if (!(t->t[t->n] = qb_arena_strndup(c->sh->ar, tok->term, tok->len))) return nomem(err);
  t->len[t->n] = tok->len;
  t->qpos[t->n++] = tok->position;
  return QB_OK;
}

static qb_code add_text(collect *c, const char *field, const char *text, hl_kind kind, uint32_t slop, int prefix) {
  qi_field_info fi;
  if (qi_snapshot_field(c->sh->snap, field, &fi) || !fi.indexed) return QB_OK;
  hl_term *t = new_term(c, field, kind, HL_MAX_TERMS);
  if (!t) return nomem(c->err);
  t->slop = slop;
  t->prefix_last = prefix;
  c->cur = t;
  qb_code rc = qi_analyze(fi.analyzer == QI_ANALYZER_NONE ? QI_ANALYZER_KEYWORD : fi.analyzer, text, strlen(text),
                          on_tok, c, c->err);
  if (rc) return rc;
  if (kind == HT_PHRASE && t->n == 1) t->kind = prefix ? HT_PREFIX : HT_TERM;
  return QB_OK;
}

static qb_code add_value(collect *c, const char *field, const json_t *v, hl_kind kind) {
  char buf[64];
  const char *s;
  size_t len;
  if (json_is_string(v)) {
    s = json_string_value(v);
    len = json_string_length(v);
  } else if (json_is_integer(v)) {
    len = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    s = buf;
  } else if (json_is_true(v) || json_is_false(v)) {
    s = json_is_true(v) ? "true" : "false";
    len = strlen(s);
  } else {
    return QB_OK;
  }
  hl_term *t = new_term(c, field, kind, 1);
  if (!t || !(t->t[0] = qb_arena_strndup(c->sh->ar, s, len))) return nomem(c->err);
  t->len[0] = len;
  t->n = 1;
  return QB_OK;
}

static qb_code walk(collect *c, const qq__query *q, int depth) {
  qb_code rc = QB_OK;
  if (!q || depth > 64) return QB_OK;
  switch (q->kind) {
  case QK_TERM: return add_value(c, q->field, q->value, HT_TERM);
  case QK_TERMS:
    for (size_t i = 0; i < json_array_size(q->value) && !rc; i++)
      rc = add_value(c, q->field, json_array_get(q->value, i), HT_TERM);
    return rc;
  case QK_MATCH:
    if (q->text) return add_text(c, q->field, q->text, HT_TERM, 0, 0);
    return add_value(c, q->field, q->value, HT_TERM);
  case QK_PHRASE: case QK_PHRASE_PREFIX:
    if (q->text) return add_text(c, q->field, q->text, HT_PHRASE, q->slop, q->kind == QK_PHRASE_PREFIX);
    return add_value(c, q->field, q->value, HT_TERM);
  case QK_PREFIX: return add_value(c, q->field, q->value, HT_PREFIX);
  case QK_WILDCARD: return add_value(c, q->field, q->value, HT_WILDCARD);
  case QK_BOOL:
    for (size_t i = 0; i < q->nmust && !rc; i++) rc = walk(c, q->must[i], depth + 1);
    for (size_t i = 0; i < q->nshould && !rc; i++) rc = walk(c, q->should[i], depth + 1);
    for (size_t i = 0; i < q->nfilter && !rc; i++) rc = walk(c, q->filter[i], depth + 1);
    return rc;
  case QK_DISMAX: case QK_CROSS:
    for (size_t i = 0; i < q->nshould && !rc; i++) rc = walk(c, q->should[i], depth + 1);
    return rc;
  case QK_CONST: case QK_FSCORE: case QK_SCRIPT_SCORE: return walk(c, q->child, depth + 1);
  default: return QB_OK;
  }
}

/* ---- one value --------------------------------------------------------------------------------------- */

typedef struct htok {
  const char *t;   /* into the token buffer */
  uint32_t len, pos, start, end;
  uint8_t mark;
} htok;

typedef struct vtoks {
  htok *v;
  size_t n, cap;
  qb_buf bytes;    /* the terms' bytes */
} vtoks;

static qb_code on_vtok(void *ud, const qi_token *tok, qb_err *err) {
  vtoks *vt = ud;
  if (vt->n == vt->cap) {
    size_t nc = vt->cap ? vt->cap * 2 : 64;
    htok *nv = qb_realloc(vt->v, vt->cap * sizeof *nv, nc * sizeof *nv);
    if (!nv) return nomem(err);
    vt->v = nv;
    vt->cap = nc;
  }
  size_t off = vt->bytes.len;
  if (qb_buf_append(&vt->bytes, tok->term, tok->len)) return nomem(err);
  vt->v[vt->n++] = (htok){(const char *)(uintptr_t)off, tok->len, tok->position, tok->start_offset, tok->end_offset, 0};
  return QB_OK;
}

static int tok_is(const htok *k, const char *t, size_t len) { return k->len == len && !memcmp(k->t, t, len); }
static int tok_pre(const htok *k, const char *t, size_t len) { return k->len >= len && !memcmp(k->t, t, len); }

typedef struct phr_mark {
  vtoks *vt;
  const hl_term *t;
} phr_mark;

static int phrase_member(const hl_term *t, const htok *k) {
  for (size_t i = 0; i < t->n; i++)
    if (t->prefix_last && i == t->n - 1 ? tok_pre(k, t->t[i], t->len[i]) : tok_is(k, t->t[i], t->len[i])) return 1;
  return 0;
}

static void on_window(void *ud, uint32_t lo, uint32_t hi) {
  phr_mark *m = ud;
  size_t a = 0, z = m->vt->n; /* tokens are in position order: the first at LO or after */
  while (a < z) {
    size_t mid = a + (z - a) / 2;
    if (m->vt->v[mid].pos < lo) a = mid + 1;
    else z = mid;
  }
  for (size_t i = a; i < m->vt->n && m->vt->v[i].pos <= hi; i++) {
    htok *k = &m->vt->v[i];
    if (phrase_member(m->t, k)) k->mark = 1;
  }
}

/* mark the tokens of VT that term T matches; -1: out of memory */
static int mark(vtoks *vt, const hl_term *t) {
  if (t->kind != HT_PHRASE) {
    for (size_t i = 0; i < vt->n; i++) {
      htok *k = &vt->v[i];
      for (size_t j = 0; j < t->n && !k->mark; j++) {
        if (t->kind == HT_TERM) k->mark = tok_is(k, t->t[j], t->len[j]);
        else if (t->kind == HT_PREFIX) k->mark = tok_pre(k, t->t[j], t->len[j]);
        else k->mark = (uint8_t)qq__glob(t->t[j], k->t, k->len);
      }
    }
    return 0;
  }
  if (t->n < 2) return 0;
  qq__pp_in in[HL_MAX_TERMS];
  size_t total = 0, at = 0; /* the slots' positions, counted first: one array for all */
  for (size_t i = 0; i < t->n; i++) {
    int last = t->prefix_last && i == t->n - 1;
    size_t c = 0;
    for (size_t j = 0; j < vt->n; j++)
      c += last ? tok_pre(&vt->v[j], t->t[i], t->len[i]) : tok_is(&vt->v[j], t->t[i], t->len[i]);
    if (!c) return 0;
    total += c;
  }
  uint32_t *pos = qb_malloc(total * sizeof *pos);
  if (!pos) return -1;
  for (size_t i = 0; i < t->n; i++) {
    uint32_t *p = pos + at, np = 0;
    int last = t->prefix_last && i == t->n - 1;
    for (size_t j = 0; j < vt->n; j++)
      if (last ? tok_pre(&vt->v[j], t->t[i], t->len[i]) : tok_is(&vt->v[j], t->t[i], t->len[i])) p[np++] = vt->v[j].pos;
    at += np;
    in[i] = (qq__pp_in){p, np, t->qpos[i] - t->qpos[0], -1};
    for (size_t j = 0; j < i && !last; j++)
      if (!(t->prefix_last && j == t->n - 1) && t->len[j] == t->len[i] && !memcmp(t->t[j], t->t[i], t->len[i])) {
        in[i].grp = in[j].grp >= 0 ? in[j].grp : (int)j;
        in[j].grp = in[i].grp;
        break;
      }
  }
  phr_mark m = {vt, t};
  qq__phrase_match(in, t->n, t->slop, on_window, &m);
  qb_free(pos, total * sizeof *pos);
  return 0;
}

/* ---- fragments ---------------------------------------------------------------------------------------- */

typedef struct passage {
  size_t value;        /* which value of the field */
  uint32_t start, end;
  uint32_t score;
} passage;

typedef struct hctx {
  qb_buf out;
  passage *ps;
  size_t nps, cap;
} hctx;

static int add_passage(hctx *c, passage p) {
  if (c->nps == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 16;
    passage *np = qb_realloc(c->ps, c->cap * sizeof *np, nc * sizeof *np);
    if (!np) return -1;
    c->ps = np;
    c->cap = nc;
  }
  c->ps[c->nps++] = p;
  return 0;
}

static uint32_t score_range(const vtoks *vt, uint32_t s, uint32_t e) {
  uint32_t n = 0;
  for (size_t i = 0; i < vt->n; i++) n += vt->v[i].mark && vt->v[i].start >= s && vt->v[i].end <= e;
  return n;
}

/* the passages of one value (TEXT, LEN) with its marked tokens VT */
static int passages(hctx *c, size_t value, const char *text, size_t len, const vtoks *vt, uint32_t fs) {
  size_t s = 0;
  while (s < len) {
    while (s < len && isspace((unsigned char)text[s])) s++;
    if (s >= len) break;
    size_t e = s;
    while (e < len && !((text[e] == '.' || text[e] == '!' || text[e] == '?') &&
                        (e + 1 == len || isspace((unsigned char)text[e + 1]))))
      e++;
    if (e < len) e++; /* the punctuation belongs to the sentence */
    size_t te = e;
    while (te > s && isspace((unsigned char)text[te - 1])) te--;
    if (te - s <= fs) {
      uint32_t sc = score_range(vt, (uint32_t)s, (uint32_t)te);
      if (sc && add_passage(c, (passage){value, (uint32_t)s, (uint32_t)te, sc})) return -1;
    } else {
      uint32_t covered = (uint32_t)s;
      for (size_t i = 0; i < vt->n; i++) {
        const htok *m = &vt->v[i];
        if (!m->mark || m->start < covered || m->start < s || m->end > te) continue;
        uint32_t ps = m->end - s <= fs ? (uint32_t)s : m->start, pe = m->end;
        for (size_t j = i + 1; j < vt->n && vt->v[j].end <= te; j++)
          if (vt->v[j].end - ps <= fs) pe = vt->v[j].end;
          else break;
        if (add_passage(c, (passage){value, ps, pe, score_range(vt, ps, pe)})) return -1;
        covered = pe;
      }
    }
    s = e;
  }
  return 0;
}

static int put_text(qb_buf *b, const char *s, size_t n, int html) {
  if (!html) return qb_buf_append(b, s, n) ? -1 : 0;
  for (size_t i = 0; i < n; i++) {
    const char *r = NULL;
    switch (s[i]) {
    case '&': r = "&amp;"; break;
    case '<': r = "&lt;"; break;
    case '>': r = "&gt;"; break;
    case '"': r = "&quot;"; break;
    case '\'': r = "&#x27;"; break;
    case '/': r = "&#x2F;"; break;
    }
    if (r ? qb_buf_append(b, r, strlen(r)) : qb_buf_append(b, s + i, 1)) return -1;
  }
  return 0;
}

/* TEXT[s, e) with the marked tokens tagged, as a new JSON string */
static json_t *fragment(hctx *c, const char *text, uint32_t s, uint32_t e, const vtoks *vt, const hl_opts *o) {
  qb_buf *b = &c->out;
  uint32_t at = s;
  qb_buf_reset(b);
  for (size_t i = 0; i < vt->n; i++) {
    const htok *k = &vt->v[i];
    if (!k->mark || k->start < at || k->end > e) continue;
    if (put_text(b, text + at, k->start - at, o->html) || qb_buf_append(b, o->pre, strlen(o->pre)) ||
        put_text(b, text + k->start, k->end - k->start, o->html) || qb_buf_append(b, o->post, strlen(o->post)))
      return NULL;
    at = k->end;
  }
  if (put_text(b, text + at, e - at, o->html)) return NULL;
  return json_stringn(b->data ? b->data : "", b->len);
}

static int cmp_score(const void *a, const void *b) {
  const passage *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  if (x->value != y->value) return x->value < y->value ? -1 : 1;
  return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_pos(const void *a, const void *b) {
  const passage *x = a, *y = b;
  if (x->value != y->value) return x->value < y->value ? -1 : 1;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* ---- a hit ------------------------------------------------------------------------------------------ */

/* the value(s) at dotted PATH of SRC */
static const json_t *lookup(const json_t *src, const char *path) {
  const json_t *v = json_object_get(src, path);
  if (v) return v;
  const char *dot = strchr(path, '.');
  while (dot) {
    char head[256];
    size_t n = (size_t)(dot - path);
    if (n < sizeof head) {
      memcpy(head, path, n);
      head[n] = 0;
      const json_t *o = json_object_get(src, head);
      if (json_is_object(o) && (v = lookup(o, dot + 1))) return v;
    }
    dot = strchr(dot + 1, '.');
  }
  return NULL;
}

static qb_code terms_for_shard(qq__hl *h, qq__shard *sh, qb_err *err) {
  if (h->sh == sh && h->snap == sh->snap) return QB_OK;
  h->terms = NULL;
  h->sh = sh;
  h->snap = sh->snap;
  collect c = {sh, h, err, NULL, 0};
  return walk(&c, sh->req->query, 0);
}

/* FIELD's fragments of SRC into FRAGS */
static qb_code field_frags_v(qq__hl *h, const qi_field_info *fi, const hl_opts *o, const json_t *v, size_t nv,
                             hctx *c, vtoks *vts, json_t *frags, qb_err *err);

static qb_code field_frags(qq__hl *h, const qi_field_info *fi, const hl_opts *o, const json_t *src, hctx *c,
                           json_t *frags, qb_err *err) {
  const json_t *v = lookup(src, fi->name);
  if (!v) { /* a multi-field (title.keyword) highlights its parent's value */
    const char *dot = strrchr(fi->name, '.');
    char parent[256];
    if (dot && (size_t)(dot - fi->name) < sizeof parent) {
      memcpy(parent, fi->name, (size_t)(dot - fi->name));
      parent[dot - fi->name] = 0;
      v = lookup(src, parent);
    }
  }
  if (!v) return QB_OK;
  size_t nv = json_is_array(v) ? json_array_size(v) : 1;
  if (!nv) return QB_OK;
  vtoks *vts = qb_calloc(nv, sizeof *vts);
  if (!vts) return nomem(err);
  qb_code rc = field_frags_v(h, fi, o, v, nv, c, vts, frags, err);
  for (size_t i = 0; i < nv; i++) {
    qb_buf_fini(&vts[i].bytes);
    qb_free(vts[i].v, vts[i].cap * sizeof *vts[i].v);
  }
  qb_free(vts, nv * sizeof *vts);
  return rc;
}

static qb_code field_frags_v(qq__hl *h, const qi_field_info *fi, const hl_opts *o, const json_t *v, size_t nv,
                             hctx *c, vtoks *vts, json_t *frags, qb_err *err) {
  c->nps = 0;
  qb_code rc;
  for (size_t i = 0; i < nv; i++) {
    const json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
    if (!json_is_string(s)) continue;
    vtoks *vt = &vts[i];
    qb_buf_reset(&vt->bytes);
    if ((rc = qi_analyze(fi->analyzer == QI_ANALYZER_NONE ? QI_ANALYZER_KEYWORD : fi->analyzer, json_string_value(s),
                         json_string_length(s), on_vtok, vt, err)))
      return rc == QB_NOMEM ? rc : QB_OK; /* a value that does not analyze has nothing to mark */
    for (size_t k = 0; k < vt->n; k++) vt->v[k].t = vt->bytes.data + (uintptr_t)vt->v[k].t;
    int any = 0;
    for (const hl_term *t = h->terms; t; t = t->next) {
      if (o->require_field_match && strcmp(t->field, fi->name)) continue;
      if (mark(vt, t)) return nomem(err);
    }
    for (size_t k = 0; k < vt->n; k++) any |= vt->v[k].mark;
    if (!any) continue;
    if (!o->nfrags) {
      if (add_passage(c, (passage){i, 0, (uint32_t)json_string_length(s), 1})) return nomem(err);
    } else if (passages(c, i, json_string_value(s), json_string_length(s), vt, o->frag_size)) {
      return nomem(err);
    }
  }
  if (!c->nps) return QB_OK;
  size_t keep = c->nps;
  if (o->nfrags && keep > o->nfrags) {
    qsort(c->ps, c->nps, sizeof *c->ps, cmp_score);
    keep = o->nfrags;
  }
  qsort(c->ps, keep, sizeof *c->ps, o->order_score && o->nfrags ? cmp_score : cmp_pos);
  for (size_t i = 0; i < keep; i++) {
    const passage *p = &c->ps[i];
    const json_t *s = json_is_array(v) ? json_array_get(v, p->value) : v;
    json_t *f = fragment(c, json_string_value(s), p->start, p->end, &vts[p->value], o);
    if (!f || json_array_append_new(frags, f)) return nomem(err);
  }
  return QB_OK;
}

qb_code qq__highlight_hit(qq__shard *sh, const qi_segment *seg, uint32_t doc, const char *src,
                          size_t srclen, json_t *hj, qb_err *err) {
  qq__hl *h = sh->req->highlight;
  qb_code rc;
  qb_buf own;
  json_t *sj = NULL, *out = NULL;
  hctx c;
  memset(&c, 0, sizeof c);
  qb_buf_init(&own);
  qb_buf_init(&c.out);
  if ((rc = terms_for_shard(h, sh, err))) return rc;
  if (!h->terms) return QB_OK;
  if (!src || !srclen) {
    if ((rc = qi_snapshot_source(sh->snap, seg, doc, &own, err))) {
      qb_buf_fini(&own);
      return rc == QB_NOTFOUND ? QB_OK : rc;
    }
    src = own.data;
    srclen = own.len;
  }
  json_error_t je;
  const json_t *whole = sh->req->source_mode == 1 ? json_object_get(hj, "_source") : NULL;
  if (whole) sj = json_incref((json_t *)whole); /* the hit's own, unfiltered: not parsed twice */
  else if (!(sj = qq__json_load(src, srclen, 0, &je))) goto done; /* hit_json reports it */
  if (!json_is_object(sj)) goto done;
  size_t nfields = qi_snapshot_field_count(sh->snap);
  for (size_t i = 0; i < h->nf; i++) {
    const hl_field *f = &h->f[i];
    int wild = strchr(f->pattern, '*') || strchr(f->pattern, '?');
    for (size_t id = 0; id < (wild ? nfields : 1); id++) {
      qi_field_info fi;
      if (wild ? qi_snapshot_field_by_id(sh->snap, (uint32_t)id, &fi) || !qq__glob(f->pattern, fi.name, strlen(fi.name))
               : qi_snapshot_field(sh->snap, f->pattern, &fi))
        continue;
      if (fi.type != QI_TEXT && fi.type != QI_KEYWORD) continue;
      if (out && json_object_get(out, fi.name)) continue;
      json_t *frags = json_array();
      if (!frags) goto nomem;
      if ((rc = field_frags(h, &fi, &f->o, sj, &c, frags, err))) {
        json_decref(frags);
        goto done;
      }
      if (!json_array_size(frags)) {
        json_decref(frags);
        continue;
      }
      if ((!out && !(out = json_object())) || json_object_set_new(out, fi.name, frags)) goto nomem;
    }
  }
  if (out && json_object_set(hj, "highlight", out)) goto nomem;
  rc = QB_OK;
  goto done;
nomem:
  rc = nomem(err);
done:
  qb_free(c.ps, c.cap * sizeof *c.ps);
  qb_buf_fini(&c.out);
  qb_buf_fini(&own);
  json_decref(out);
  json_decref(sj);
  return rc;
}
