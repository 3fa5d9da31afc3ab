/* phrase.c: phrase queries from the positions the index stores: match_phrase (Lucene's
** PhraseQuery, exact for slop 0, sloppy otherwise), match_phrase_prefix (Elasticsearch's
** MultiPhrasePrefixQuery: the last term expands to at most max_expansions dictionary terms,
** then Lucene's MultiPhraseQuery), and multi_match's phrase types, which are these per field.
** Scores are Lucene's: BM25 with the phrase frequency as freq (exact: the number of
** occurrences; sloppy: the sum of 1 / (1 + match length)) and idf the sum of the terms' idfs
** (every expansion's, for a prefix). A one-term phrase is a term query; a one-term prefix is
** the disjunction of its expansions' term queries, as Lucene rewrites them. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NMD QI_NO_MORE_DOCS
#define MAX_PHRASE_TERMS 64
#define MAX_EXPANSIONS_CAP 1024

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

/* ---- parsing ------------------------------------------------------------------------------------- */

static qb_code get_count(const json_t *v, const char *qname, const char *k, uint32_t cap, uint32_t *out,
                         qb_err *err) {
  json_int_t i;
  if (json_is_integer(v)) i = json_integer_value(v);
  else if (json_is_string(v)) {
    char *end;
    const char *s = json_string_value(v);
    long long ll = strtoll(s, &end, 10);
    if (!*s || *end) return qb_fail(err, QB_MALFORMED, "[%s] query: [%s] must be an integer", qname, k);
    i = (json_int_t)ll;
  } else {
    return qb_fail(err, QB_MALFORMED, "[%s] query: [%s] must be an integer", qname, k);
  }
  if (i < 0) return qb_fail(err, QB_INVAL, "[%s] query: [%s] must be >= 0, got [%lld]", qname, k, (long long)i);
  if ((uint64_t)i > cap) return qb_fail(err, QB_INVAL, "[%s] query: [%s] must be <= %u, got [%lld]", qname, k, cap, (long long)i);
  *out = (uint32_t)i;
  return QB_OK;
}

static qb_code get_boost(const json_t *v, const char *qname, float *out, qb_err *err) {
  double d;
  if (json_is_number(v)) d = json_number_value(v);
  else if (json_is_string(v)) {
    char *end;
    d = strtod(json_string_value(v), &end);
    if (*end || end == json_string_value(v)) return qb_fail(err, QB_MALFORMED, "[%s] query: [boost] must be a number", qname);
  } else {
    return qb_fail(err, QB_MALFORMED, "[%s] query: [boost] must be a number", qname);
  }
  if (d < 0) return qb_fail(err, QB_INVAL, "[%s] query: negative [boost] are not allowed", qname);
  *out = (float)d;
  return QB_OK;
}

/* The options served at one value (as dsl.c's fixed options) */
static qb_code fixed(const char *qname, const char *k, const json_t *v, int *hit, qb_err *err) {
  const char *s = json_is_string(v) ? json_string_value(v) : "";
  *hit = 1;
  if (!strcmp(k, "analyzer")) {
    if (strcmp(s, "standard"))
      return qb_fail(err, QB_INVAL, "[%s] query: [analyzer] is not supported as [%s]: only the [standard] analyzer is available", qname, s);
    return QB_OK;
  }
  if (!strcmp(k, "zero_terms_query")) {
    if (strcasecmp(s, "none"))
      return qb_fail(err, QB_INVAL, "[%s] query: [zero_terms_query] is not supported as [%s]: only [none] is supported", qname, s);
    return QB_OK;
  }
  if (!strcmp(k, "_name"))
    return qb_fail(err, QB_INVAL, "[%s] query: [_name] is not supported: named queries (matched_queries) are not supported", qname);
  *hit = 0;
  return QB_OK;
}

qb_code qq__parse_phrase(qq_request *req, const json_t *j, const char *qname, qq__query *q, qb_err *err) {
  const char *k, *field = NULL;
  json_t *v, *o = NULL;
  qb_code rc;
  int prefix = q->kind == QK_PHRASE_PREFIX, hit;
  (void)req;
  q->max_expansions = 50;
  if (!json_is_object(j)) return qb_fail(err, QB_MALFORMED, "[%s] query malformed, no start_object after query name", qname);
  json_object_foreach((json_t *)j, k, v) {
    if (field)
      return qb_fail(err, QB_MALFORMED, "[%s] query doesn't support multiple fields, found [%s] and [%s]", qname, field, k);
    field = k;
    o = v;
  }
  if (!field) return qb_fail(err, QB_MALFORMED, "[%s] query: no field specified", qname);
  q->field = field;
  const json_t *text = o;
  if (json_is_object(o)) {
    text = NULL;
    json_object_foreach(o, k, v) {
      if (!strcmp(k, "query")) text = v;
      else if (!strcmp(k, "slop")) { if ((rc = get_count(v, qname, k, 1u << 20, &q->slop, err))) return rc; }
      else if (prefix && !strcmp(k, "max_expansions")) {
        if ((rc = get_count(v, qname, k, MAX_EXPANSIONS_CAP, &q->max_expansions, err))) return rc;
        if (!q->max_expansions) return qb_fail(err, QB_INVAL, "[%s] query: [max_expansions] must be greater than 0", qname);
      } else if (!strcmp(k, "boost")) { if ((rc = get_boost(v, qname, &q->boost, err))) return rc; }
      else if ((rc = fixed(qname, k, v, &hit, err)) || hit) { if (rc) return rc; }
      else return qb_fail(err, QB_MALFORMED, "[%s] query does not support [%s]", qname, k);
    }
    if (!text) return qb_fail(err, QB_MALFORMED, "[%s] query: no [query] for field [%s]", qname, field);
  }
  if (json_is_string(text)) q->text = json_string_value(text);
  else if (json_is_number(text) || json_is_boolean(text)) q->value = text;
  else return qb_fail(err, QB_MALFORMED, "[%s] query: [query] of field [%s] must be a string, number or boolean", qname, field);
  return QB_OK;
}

/* ---- the matchers ---------------------------------------------------------------------------------- */

typedef struct pp {
  const uint32_t *p;
  uint32_t n, i;
  int64_t pos;      /* token position - offset */
  uint32_t offset, ord;
  int grp;
} pp;

static int pp_next(pp *x, int64_t *end) {
  if (++x->i >= x->n) return 0;
  x->pos = (int64_t)x->p[x->i] - x->offset;
  if (x->pos > *end) *end = x->pos;
  return 1;
}

/* queue order: position, then offset, then ord (Lucene's PhraseQueue) */
static int pp_less(const pp *a, const pp *b) {
  if (a->pos != b->pos) return a->pos < b->pos;
  if (a->offset != b->offset) return a->offset < b->offset;
  return a->ord < b->ord;
}

static pp *pop_min(pp *v, uint8_t *inq, size_t n) {
  pp *m = NULL;
  for (size_t i = 0; i < n; i++)
    if (inq[i] && (!m || pp_less(&v[i], m))) m = &v[i];
  if (m) inq[m - v] = 0;
  return m;
}

static int64_t top_pos(const pp *v, const uint8_t *inq, size_t n) {
  const pp *m = NULL;
  for (size_t i = 0; i < n; i++)
    if (inq[i] && (!m || pp_less(&v[i], m))) m = &v[i];
  return m ? m->pos : INT64_MAX;
}

/* another member of X's repeat group on the same token, or NULL */
static pp *collide(pp *v, size_t n, const pp *x) {
  if (x->grp < 0) return NULL;
  for (size_t i = 0; i < n; i++)
    if (&v[i] != x && v[i].grp == x->grp && v[i].pos + v[i].offset == x->pos + x->offset) return &v[i];
  return NULL;
}

/* Lucene's advanceRpts: while X collides, advance the lesser of the two */
static int resolve_rpts(pp *v, size_t n, pp *x, int64_t *end) {
  pp *o;
  while ((o = collide(v, n, x))) {
    pp *l = (x->pos < o->pos || (x->pos == o->pos && x->offset < o->offset)) ? x : o;
    if (!pp_next(l, end)) return 0;
    x = l;
  }
  return 1;
}

static void window(const pp *v, size_t n, uint32_t *lo, uint32_t *hi) {
  *lo = UINT32_MAX;
  *hi = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t t = v[i].p[v[i].i];
    if (t < *lo) *lo = t;
    if (t > *hi) *hi = t;
  }
}

double qq__phrase_match(const qq__pp_in *in, size_t n, uint32_t slop,
                        void (*on_match)(void *ud, uint32_t lo, uint32_t hi), void *ud) {
  pp v[MAX_PHRASE_TERMS];
  uint8_t inq[MAX_PHRASE_TERMS];
  float freq = 0; /* Lucene sums the sloppy weights in float */
  int rpts = 0;
  if (n < 2 || n > MAX_PHRASE_TERMS) return 0;
  if (!slop) { /* exact: every term at its offset from the first's position */
    uint32_t ix[MAX_PHRASE_TERMS] = {0};
    for (uint32_t a = 0; a < in[0].n; a++) {
      int64_t base = (int64_t)in[0].pos[a] - in[0].offset;
      size_t i;
      for (i = 1; i < n; i++) {
        int64_t want = base + in[i].offset;
        while (ix[i] < in[i].n && (int64_t)in[i].pos[ix[i]] < want) ix[i]++;
        if (ix[i] == in[i].n) return freq;
        if ((int64_t)in[i].pos[ix[i]] != want) break;
      }
      if (i == n) {
        freq += 1;
        if (on_match) {
          uint32_t lo = UINT32_MAX, hi = 0;
          for (size_t k = 0; k < n; k++) {
            uint32_t t = (uint32_t)(base + in[k].offset);
            if (t < lo) lo = t;
            if (t > hi) hi = t;
          }
          on_match(ud, lo, hi);
        }
      }
    }
    return freq;
  }
  /* sloppy (Lucene's SloppyPhraseMatcher): the queue's least position moves on while it stays
  ** the least; a configuration spanning at most SLOP (end - least) is a match */
  int64_t end = INT64_MIN;
  for (size_t i = 0; i < n; i++) {
    v[i] = (pp){in[i].pos, in[i].n, 0, (int64_t)in[i].pos[0] - in[i].offset, in[i].offset, (uint32_t)i, in[i].grp};
    if (in[i].grp >= 0) rpts = 1;
  }
  if (rpts) { /* the j-th member of a group (query order) starts at the term's j-th occurrence */
    for (size_t i = 0; i < n; i++) {
      if (v[i].grp < 0) continue;
      size_t j = 0;
      for (size_t k = 0; k < i; k++) j += v[k].grp == v[i].grp;
      for (size_t s = 0; s < j; s++)
        if (++v[i].i >= v[i].n) return 0;
      v[i].pos = (int64_t)v[i].p[v[i].i] - v[i].offset;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (v[i].pos > end) end = v[i].pos;
    inq[i] = 1;
  }
  uint32_t wlo = 0, whi = 0;
  pp *x = pop_min(v, inq, n);
  int64_t ml = end - x->pos, next = top_pos(v, inq, n);
  if (on_match) window(v, n, &wlo, &whi);
  for (;;) {
    if (!pp_next(x, &end) || (rpts && !resolve_rpts(v, n, x, &end))) break;
    if (x->pos > next) {
      inq[x - v] = 1;
      if (ml <= (int64_t)slop) {
        freq += 1.0f / (1.0f + (float)ml);
        if (on_match) on_match(ud, wlo, whi);
      }
      x = pop_min(v, inq, n);
      next = top_pos(v, inq, n);
      ml = end - x->pos;
      if (on_match) window(v, n, &wlo, &whi);
    } else if (end - x->pos < ml) {
      ml = end - x->pos;
      if (on_match) window(v, n, &wlo, &whi);
    }
  }
  if (ml <= (int64_t)slop) {
    freq += 1.0f / (1.0f + (float)ml);
    if (on_match) on_match(ud, wlo, whi);
  }
  return freq;
}

/* ---- analysis of the phrase ---------------------------------------------------------------------- */

typedef struct ptok {
  const char *t;
  size_t len;
  uint32_t pos;
} ptok;

typedef struct ptoks {
  qb_arena *ar;
  ptok *v;
  size_t n;
} ptoks;

static qb_code on_tok(void *ud, const qi_token *tok, qb_err *err) {
  ptoks *ts = ud;
  if (ts->n == MAX_PHRASE_TERMS)
    return qb_fail(err, QB_INVAL, "phrase query: more than %d terms", MAX_PHRASE_TERMS);
  if (!(ts->v[ts->n].t = qb_arena_strndup(ts->ar, tok->term, tok->len))) return nomem(err);
  ts->v[ts->n].len = tok->len;
  ts->v[ts->n].pos = tok->position;
  ts->n++;
  return QB_OK;
}

/* ---- the iterator ------------------------------------------------------------------------------- */

typedef struct slot {
  qi_postings **p;  /* several for an expanded prefix */
  size_t np;
  uint32_t doc;
  uint32_t offset;
  uint32_t *pos;
  uint32_t npos, cap;
  uint64_t cost;
  int grp;
} slot;

typedef struct phrase_it {
  qq__it it;
  qq__seg_ctx *cx;
  slot *s;          /* in query order */
  slot **lead;      /* by cost */
  size_t n;
  uint32_t slop;
  int started;
  double freq;
  int top;          /* the request's whole query: docs that cannot beat cx->min_comp are skipped */
  qi_bm25 w;
  const uint8_t *norms;
  qq__pp_in in[MAX_PHRASE_TERMS];
} phrase_it;

static uint32_t slot_adv(slot *s, uint32_t t) {
  if (s->np == 1) return s->doc = qi_postings_advance(s->p[0], t);
  uint32_t m = NMD;
  for (size_t i = 0; i < s->np; i++) {
    uint32_t d = qi_postings_doc(s->p[i]);
    if (d == NMD || d < t) d = qi_postings_advance(s->p[i], t);
    if (d < m) m = d;
  }
  return s->doc = m;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* the positions of S on its current doc; -1: out of memory */
static int slot_load(qq__seg_ctx *cx, slot *s) {
  uint32_t n = 0;
  for (size_t i = 0; i < s->np; i++) {
    if (qi_postings_doc(s->p[i]) != s->doc) continue;
    uint32_t k = qi_postings_freq(s->p[i]);
    if (n + k > s->cap) {
      uint32_t nc = (n + k) * 2;
      uint32_t *np = qb_arena_array(cx->sh->ar, nc, sizeof *np);
      if (!np) return -1;
      if (n) memcpy(np, s->pos, n * sizeof *np);
      s->pos = np;
      s->cap = nc;
    }
    n += qi_postings_positions(s->p[i], s->pos + n, s->cap - n);
  }
  if (s->np > 1 && n > 1) qsort(s->pos, n, sizeof *s->pos, cmp_u32);
  s->npos = n;
  return 0;
}

static uint32_t ph_adv(qq__it *it, uint32_t t) {
  phrase_it *ph = (phrase_it *)it;
  if (ph->started && it->doc != NMD && it->doc >= t) return it->doc;
  if (ph->started && it->doc == NMD) return NMD;
  ph->started = 1;
  slot **L = ph->lead;
  for (;;) {
    uint32_t d = slot_adv(L[0], t);
  again:
    if (d == NMD) return it->doc = NMD;
    for (size_t i = 1; i < ph->n; i++) {
      uint32_t o = slot_adv(L[i], d);
      if (o != d) {
        d = o == NMD ? NMD : slot_adv(L[0], o);
        goto again;
      }
    }
    /* all on D. At the top, once the collector has a bar: the score bound of the smallest term
    ** frequency (a phrase occurs at most that often, a sloppy match counts at most 1) */
    if (ph->top && ph->cx->min_comp > -INFINITY) {
      uint32_t mf = UINT32_MAX;
      for (size_t i = 0; i < ph->n; i++) {
        uint32_t f = 0;
        for (size_t e = 0; e < ph->s[i].np; e++)
          if (qi_postings_doc(ph->s[i].p[e]) == d) f += qi_postings_freq(ph->s[i].p[e]);
        if (f < mf) mf = f;
      }
      uint8_t norm = ph->norms ? ph->norms[d] : 1;
      float bound = ph->w.weight - ph->w.weight / (1.0f + (float)mf * ph->w.cache[norm]);
      if (bound <= ph->cx->min_comp) {
        ph->cx->skipped = 1;
        t = d + 1;
        continue;
      }
    }
    /* exact, three terms or more: the two rarest terms' positions first; most candidates
    ** fail there, and then the others' positions are never read */
    int pre = !ph->slop && ph->n > 2;
    if (pre) {
      qq__pp_in two[2];
      for (size_t k = 0; k < 2; k++) {
        if (slot_load(ph->cx, L[k])) {
          ph->cx->rc = qb_fail(ph->cx->err, QB_NOMEM, "query: out of memory");
          return it->doc = NMD;
        }
        two[k] = ph->in[L[k] - ph->s];
        two[k].pos = L[k]->pos;
        two[k].n = L[k]->npos;
      }
      if (qq__phrase_match(two, 2, 0, NULL, NULL) <= 0) {
        t = d + 1;
        continue;
      }
    }
    /* the phrase frequency from the positions */
    for (size_t i = 0; i < ph->n; i++) {
      if ((!pre || (&ph->s[i] != L[0] && &ph->s[i] != L[1])) && slot_load(ph->cx, &ph->s[i])) {
        ph->cx->rc = qb_fail(ph->cx->err, QB_NOMEM, "query: out of memory");
        return it->doc = NMD;
      }
      ph->in[i].pos = ph->s[i].pos;
      ph->in[i].n = ph->s[i].npos;
    }
    ph->freq = qq__phrase_match(ph->in, ph->n, ph->slop, NULL, NULL);
    if (ph->freq > 0) return it->doc = d;
    t = d + 1;
  }
}

static uint32_t ph_next(qq__it *it) {
  phrase_it *ph = (phrase_it *)it;
  if (!ph->started) return ph_adv(it, 0);
  if (it->doc == NMD) return NMD;
  return ph_adv(it, it->doc + 1);
}

static double ph_score(qq__it *it) {
  phrase_it *ph = (phrase_it *)it;
  uint8_t norm = ph->norms ? ph->norms[it->doc] : 1;
  const qi_bm25 *w = &ph->w;
  return w->weight - w->weight / (1.0f + (float)ph->freq * w->cache[norm]);
}

/* ---- building --------------------------------------------------------------------------------------- */

/* Document frequency of TERM over the shard (or the request's external statistics) */
static uint64_t term_df(qq__seg_ctx *cx, const qi_field_info *fi, const char *t, size_t len,
                        qi_field_stats *fs) {
  const qq_term_stats *ts = cx->sh->req->term_stats;
  uint64_t df = qi_snapshot_doc_freq(cx->sh->snap, fi->id, t, len);
  if (ts) {
    ts->field(ts->ud, fi->name, fs);
    ts->term(ts->ud, fi->name, t, len, &df);
  }
  return df;
}

/* The prefix's expansions over the shard: dictionary terms starting with it, segment by
** segment (in index order) until MAX distinct ones, as Elasticsearch's rewrite collects them */
static qb_code expand(qq__seg_ctx *cx, const qi_field_info *fi, const ptok *pre, uint32_t max,
                      ptok **out, size_t *n, qb_err *err) {
  size_t cap = max ? max : 1;
  ptok *v = qb_arena_array(cx->sh->ar, cap, sizeof *v);
  *n = 0;
  *out = v;
  if (!v) return nomem(err);
  size_t nseg = qi_snapshot_segment_count(cx->sh->snap);
  for (size_t s = 0; s < nseg && *n < max; s++) {
    const qi_segment *seg = qi_snapshot_segment(cx->sh->snap, s);
    uint32_t nt = qi_segment_term_count(seg, fi->id);
    for (uint32_t ord = qi_segment_term_seek(seg, fi->id, pre->t, pre->len); ord < nt && *n < max; ord++) {
      size_t tl;
      const char *t = qi_segment_term(seg, fi->id, ord, &tl);
      if (tl < pre->len || memcmp(t, pre->t, pre->len)) break;
      size_t k;
      for (k = 0; k < *n; k++)
        if (v[k].len == tl && !memcmp(v[k].t, t, tl)) break;
      if (k < *n) continue;
      if (!(v[*n].t = qb_arena_strndup(cx->sh->ar, t, tl))) return nomem(err);
      v[*n].len = tl;
      v[*n].pos = pre->pos;
      (*n)++;
    }
  }
  return QB_OK;
}

qb_code qq__keep_postings(qq__seg_ctx *cx, qi_postings *p, qb_err *err) {
  if (cx->npostings == cx->cap_postings) {
    size_t nc = cx->cap_postings ? cx->cap_postings * 2 : 16;
    qi_postings **np = qb_realloc(cx->postings, cx->cap_postings * sizeof *np, nc * sizeof *np);
    if (!np) {
      qi_postings_free(p);
      return nomem(err);
    }
    cx->postings = np;
    cx->cap_postings = nc;
  }
  cx->postings[cx->npostings++] = p;
  return QB_OK;
}

static qb_code none(qq__seg_ctx *cx, qq__it **out, qb_err *err) {
  return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
}

qb_code qq__build_phrase(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qi_field_info fi;
  qb_code rc;
  int prefix = q->kind == QK_PHRASE_PREFIX;
  if (qi_snapshot_field(cx->sh->snap, q->field, &fi)) return none(cx, out, err);
  if (!q->text || !fi.indexed) { /* numbers, booleans, fields without postings: a match query */
    qq__query m = *q;
    m.kind = QK_MATCH;
    return qq__build(cx, &m, scoring, out, err);
  }
  ptok toks[MAX_PHRASE_TERMS];
  ptoks ts = {cx->sh->ar, toks, 0};
  if ((rc = qi_analyze(fi.analyzer == QI_ANALYZER_NONE ? QI_ANALYZER_KEYWORD : fi.analyzer, q->text,
                       strlen(q->text), on_tok, &ts, err)))
    return rc;
  if (!ts.n) return none(cx, out, err); /* zero_terms_query: none */
  ptok *exp = NULL;
  size_t nexp = 0;
  if (prefix) {
    if ((rc = expand(cx, &fi, &toks[ts.n - 1], q->max_expansions, &exp, &nexp, err))) return rc;
    if (!nexp) return none(cx, out, err);
  }
  if (ts.n == 1) {
    if (!prefix) return qq__mk_term(cx, &fi, toks[0].t, toks[0].len, q->boost, scoring, out, err);
    qq__it **c = qb_arena_array(cx->sh->ar, nexp, sizeof *c);
    if (!c) return nomem(err);
    size_t k = 0;
    for (size_t i = 0; i < nexp; i++) {
      if ((rc = qq__mk_term(cx, &fi, exp[i].t, exp[i].len, q->boost, scoring, &c[k], err))) return rc;
      if (c[k]->next != qq__none_next) k++;
    }
    if (!k) return none(cx, out, err);
    if (k == 1) { *out = c[0]; return QB_OK; }
    return (*out = qq__mk_disj(cx, c, k, 1)) ? QB_OK : nomem(err);
  }
  if (!fi.has_positions)
    return qb_fail(err, QB_INVAL, "field:[%s] was indexed without position data; cannot run PhraseQuery (phrase=%s:\"%s\")",
                   fi.name, fi.name, q->text);
  phrase_it *ph = qq__xalloc(cx, sizeof *ph);
  slot *s = qb_arena_array(cx->sh->ar, ts.n, sizeof *s);
  slot **lead = qb_arena_array(cx->sh->ar, ts.n, sizeof *lead);
  if (!ph || !s || !lead) return nomem(err);
  memset(ph, 0, sizeof *ph);
  memset(s, 0, ts.n * sizeof *s);
  /* the weight first: every term's statistics, also when this segment lacks one */
  qi_field_stats fs;
  double idf = 0;
  if (scoring) {
    qi_snapshot_field_stats(cx->sh->snap, fi.id, &fs);
    for (size_t i = 0; i < ts.n; i++) {
      if (prefix && i == ts.n - 1) {
        for (size_t e = 0; e < nexp; e++) {
          uint64_t df = term_df(cx, &fi, exp[e].t, exp[e].len, &fs);
          idf += qi_bm25_idf(fs.doc_count, df);
        }
      } else {
        uint64_t df = term_df(cx, &fi, toks[i].t, toks[i].len, &fs);
        idf += qi_bm25_idf(fs.doc_count, df);
      }
    }
    qi_bm25_init(&ph->w, q->boost, &fs, 0, -1, -1);
    ph->w.idf = (float)idf;
    ph->w.weight = q->boost * ph->w.idf;
    ph->norms = fi.has_norms ? qi_segment_norms(cx->seg, fi.id) : NULL;
  }
  for (size_t i = 0; i < ts.n; i++) {
    slot *x = &s[i];
    int last = prefix && i == ts.n - 1;
    size_t k = last ? nexp : 1;
    if (!(x->p = qb_arena_array(cx->sh->ar, k, sizeof *x->p))) return nomem(err);
    for (size_t e = 0; e < k; e++) {
      const ptok *t = last ? &exp[e] : &toks[i];
      qi_postings *p;
      if ((rc = qi_postings_open_term(cx->seg, fi.id, t->t, t->len, &p, err))) return rc;
      if (!p) continue;
      if ((rc = qq__keep_postings(cx, p, err))) return rc;
      x->p[x->np++] = p;
      x->cost += qi_postings_doc_freq(p);
    }
    if (!x->np) return none(cx, out, err); /* a term this segment lacks: no phrase here */
    x->offset = toks[i].pos - toks[0].pos;
    x->doc = NMD;
    x->grp = -1;
    if (!last)
      for (size_t j = 0; j < i; j++)
        if (!(prefix && j == ts.n - 1) && toks[j].len == toks[i].len && !memcmp(toks[j].t, toks[i].t, toks[i].len)) {
          x->grp = s[j].grp >= 0 ? s[j].grp : (int)j;
          s[j].grp = x->grp;
          break;
        }
    lead[i] = x;
  }
  for (size_t i = 0; i < ts.n; i++) { /* by cost, cheapest leads (insertion sort: few terms) */
    for (size_t j = i; j > 0 && lead[j]->cost < lead[j - 1]->cost; j--) {
      slot *tmp = lead[j];
      lead[j] = lead[j - 1];
      lead[j - 1] = tmp;
    }
  }
  ph->cx = cx;
  ph->s = s;
  ph->lead = lead;
  ph->n = ts.n;
  ph->slop = q->slop;
  for (size_t i = 0; i < ts.n; i++) {
    ph->in[i].offset = s[i].offset;
    ph->in[i].grp = s[i].grp;
  }
  ph->it.doc = NMD;
  ph->it.next = ph_next;
  ph->it.advance = ph_adv;
  ph->it.score = scoring ? ph_score : qq__zero_score;
  ph->it.cost = lead[0]->cost;
  *out = &ph->it;
  return QB_OK;
}

void qq__phrase_top(qq__it *it) {
  if (it->next == ph_next && it->score == ph_score) ((phrase_it *)it)->top = 1;
}
