/* iter.c: the iterator primitives of a segment plan (Lucene's Scorer model): empty, all live
** docs, sorted doc lists, one term's postings scored with BM25 (qi_bm25), conjunction by
** leapfrog, disjunction with minimum_should_match, exclusion, required + optional, boost.
** Scores follow Lucene: each scorer returns a float; sums are taken in double and rounded to
** float. Invariant: an iterator's doc only grows; advance(t) with t <= doc stays put. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NMD QI_NO_MORE_DOCS

void *qq__xalloc(qq__seg_ctx *cx, size_t n) { return qb_arena_alloc(cx->sh->ar, n); }

/* ---- empty, all, doc lists ------------------------------------------------------------------ */

uint32_t qq__none_next(qq__it *it) { return it->doc = NMD; }
static uint32_t none_adv(qq__it *it, uint32_t t) { (void)t; return it->doc = NMD; }
double qq__zero_score(qq__it *it) { (void)it; return 0; }

qq__it *qq__mk_none(qq__seg_ctx *cx) {
  qq__it *it = qq__xalloc(cx, sizeof *it);
  if (!it) return NULL;
  it->doc = NMD;
  it->next = qq__none_next;
  it->advance = none_adv;
  it->score = qq__zero_score;
  return it;
}

typedef struct all_it {
  qq__it it;
  const qi_segment *seg;
  uint32_t max_doc;
  int started;
  const uint64_t *live;
  double boost;
} all_it;

static uint32_t all_adv(qq__it *it, uint32_t t) {
  all_it *a = (all_it *)it;
  if (a->started && it->doc >= t) return it->doc;
  a->started = 1;
  for (uint32_t d = t; d < a->max_doc; d++)
    if (!a->live || (a->live[d >> 6] >> (d & 63) & 1)) return it->doc = d;
  return it->doc = NMD;
}
static uint32_t all_next(qq__it *it) {
  all_it *a = (all_it *)it;
  if (!a->started) return all_adv(it, 0);
  return it->doc == NMD ? NMD : all_adv(it, it->doc + 1);
}
static double all_score(qq__it *it) { return ((all_it *)it)->boost; }

qq__it *qq__mk_all(qq__seg_ctx *cx, double boost) {
  all_it *a = qq__xalloc(cx, sizeof *a);
  if (!a) return NULL;
  a->seg = cx->seg;
  a->max_doc = cx->max_doc;
  a->live = qi_segment_live_bits(cx->seg);
  a->boost = boost;
  a->it.next = all_next;
  a->it.advance = all_adv;
  a->it.score = all_score;
  a->it.cost = cx->max_doc;
  return &a->it;
}

/* A sorted, duplicate-free list of live docs with a constant score. */
typedef struct list_it {
  qq__it it;
  const uint32_t *docs;
  size_t n, pos;
  int started;
  double boost;
} list_it;

static uint32_t list_next(qq__it *it) {
  list_it *l = (list_it *)it;
  if (l->started) l->pos++;
  l->started = 1;
  return it->doc = l->pos < l->n ? l->docs[l->pos] : NMD;
}
static uint32_t list_adv(qq__it *it, uint32_t t) {
  list_it *l = (list_it *)it;
  if (l->started && it->doc >= t) return it->doc;
  l->started = 1;
  /* galloping would be faster; lists are short next to postings */
  while (l->pos < l->n && l->docs[l->pos] < t) l->pos++;
  return it->doc = l->pos < l->n ? l->docs[l->pos] : NMD;
}
static double list_score(qq__it *it) { return ((list_it *)it)->boost; }

qq__it *qq__mk_list(qq__seg_ctx *cx, const uint32_t *docs, size_t n, double boost) {
  list_it *l = qq__xalloc(cx, sizeof *l);
  if (!l) return NULL;
  l->docs = docs;
  l->n = n;
  l->boost = boost;
  l->it.next = list_next;
  l->it.advance = list_adv;
  l->it.score = list_score;
  l->it.cost = n;
  return &l->it;
}

/* A growable doc list in the arena (doubling; old copies stay in the arena, which is fine for
** one request). */

int qq__dl_push(qq__seg_ctx *cx, qq__dlist *l, uint32_t doc) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 256;
    uint32_t *nd = qb_arena_array(cx->sh->ar, nc, sizeof *nd);
    if (!nd) return -1;
    if (l->n) memcpy(nd, l->d, l->n * sizeof *nd);
    l->d = nd;
    l->cap = nc;
  }
  l->d[l->n++] = doc;
  return 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* sort + dedupe */
void qq__dl_norm(qq__dlist *l) {
  size_t i, j = 0;
  if (!l->n) return;
  qsort(l->d, l->n, sizeof *l->d, cmp_u32);
  for (i = 0; i < l->n; i++)
    if (!j || l->d[j - 1] != l->d[i]) l->d[j++] = l->d[i];
  l->n = j;
}


/* ---- term postings with BM25 ------------------------------------------------------------------ */


uint32_t qq__term_next(qq__it *it) { return it->doc = qi_postings_next(((qq__term_it *)it)->p); }
uint32_t qq__term_adv(qq__it *it, uint32_t t) {
  return it->doc = qi_postings_advance(((qq__term_it *)it)->p, t);
}
double qq__term_score(qq__it *it) {
  qq__term_it *t = (qq__term_it *)it;
  uint8_t norm = t->norms ? t->norms[it->doc] : 1;
  return qi_bm25_score(t->w, qi_postings_freq(t->p), norm);
}

static qb_code keep_postings(qq__seg_ctx *cx, qi_postings *p, qb_err *err) {
  if (cx->npostings == cx->cap_postings) {
    size_t nc = cx->cap_postings ? cx->cap_postings * 2 : 16;
    qi_postings **np = qb_realloc(cx->postings, cx->cap_postings * sizeof *np, nc * sizeof *np);
    if (!np) {
      qi_postings_free(p);
      return qb_fail(err, QB_NOMEM, "query: out of memory");
    }
    cx->postings = np;
    cx->cap_postings = nc;
  }
  cx->postings[cx->npostings++] = p;
  return QB_OK;
}

void qq__seg_ctx_fini(qq__seg_ctx *cx) {
  for (size_t i = 0; i < cx->npostings; i++) qi_postings_free(cx->postings[i]);
  qb_free(cx->postings, cx->cap_postings * sizeof *cx->postings);
  cx->postings = NULL;
  cx->npostings = cx->cap_postings = 0;
}

/* The shard-wide BM25 weight of TERM in FIELD with BOOST (snapshot statistics), from the
** shard's cache or computed and kept there; NULL: out of memory */
/* The weight of TERM on FIELD with BOOST in SH's snapshot, and its ordinal in each segment
** (found once for the weight's document frequency, not again per segment); NULL: no memory */
static const qq__wcache *term_weight(qq__shard *sh, uint32_t field, const char *term, size_t len, float boost) {
  qq__wcache *c;
  qi_field_stats fs;
  for (c = sh->wcache; c; c = c->next)
    if (c->field == field && c->boost == boost && c->len == len && !memcmp(c->term, term, len)) return c;
  size_t nseg = qi_snapshot_segment_count(sh->snap);
  if (!(c = qb_arena_alloc(sh->ar, sizeof *c)) || !(c->term = qb_arena_strndup(sh->ar, term, len)) ||
      !(c->ords = qb_arena_array(sh->ar, nseg ? nseg : 1, sizeof *c->ords)))
    return NULL;
  c->field = field;
  c->boost = boost;
  c->len = len;
  c->nords = nseg;
  qi_snapshot_field_stats(sh->snap, field, &fs);
  qi_bm25_init(&c->w, boost, &fs, qi_snapshot_doc_freq_ords(sh->snap, field, term, len, c->ords), -1, -1);
  c->next = sh->wcache;
  sh->wcache = c;
  return c;
}

/* Iterator of one term of an inverted field, scored with BM25 (boost in the weight) */
qb_code qq__mk_term(qq__seg_ctx *cx, const qi_field_info *fi, const char *term, size_t len,
                       float boost, int scoring, qq__it **out, qb_err *err) {
  qi_postings *p = NULL;
  qb_code rc;
  *out = NULL;
  const qq_term_stats *ts = scoring ? cx->sh->req->term_stats : NULL;
  const qq__wcache *wc = NULL;
  int by_ord = 0;
  if (scoring && !ts) { /* the weight first: its lookup gives this segment's ordinal */
    if (!(wc = term_weight(cx->sh, fi->id, term, len, boost))) return qb_fail(err, QB_NOMEM, "query: out of memory");
    by_ord = cx->seg_index < wc->nords && qi_snapshot_segment(cx->sh->snap, cx->seg_index) == cx->seg;
  }
  if (by_ord) {
    int64_t o = wc->ords[cx->seg_index];
    if (o >= 0 && (rc = qi_postings_open(cx->seg, fi->id, (uint32_t)o, &p, err))) return rc;
  } else if ((rc = qi_postings_open_term(cx->seg, fi->id, term, len, &p, err))) {
    return rc;
  }
  qi_field_stats fs;
  uint64_t df = 0;
  if (ts) { /* dfs: the collector sees (or sets) the index-wide statistics of every term */
    qi_snapshot_field_stats(cx->sh->snap, fi->id, &fs);
    df = qi_snapshot_doc_freq(cx->sh->snap, fi->id, term, len);
    if (ts) { /* asked even when this segment lacks the term: the collector sees every field */
      ts->field(ts->ud, fi->name, &fs);
      ts->term(ts->ud, fi->name, term, len, &df);
    }
  }
  if (!p) return (*out = qq__mk_none(cx)) ? QB_OK : qb_fail(err, QB_NOMEM, "query: out of memory");
  if ((rc = keep_postings(cx, p, err))) return rc;
  qq__term_it *t = qq__xalloc(cx, sizeof *t);
  if (!t) return qb_fail(err, QB_NOMEM, "query: out of memory");
  t->p = p;
  if (scoring) {
    if (ts) {
      qi_bm25 *w = qq__xalloc(cx, sizeof *w);
      if (!w) return qb_fail(err, QB_NOMEM, "query: out of memory");
      qi_bm25_init(w, boost, &fs, df, -1, -1);
      t->w = w;
    } else {
      t->w = &wc->w;
    }
    t->norms = fi->has_norms ? qi_segment_norms(cx->seg, fi->id) : NULL;
  }
  t->it.next = qq__term_next;
  t->it.advance = qq__term_adv;
  t->it.score = scoring ? qq__term_score : qq__zero_score;
  t->it.cost = qi_postings_doc_freq(p);
  *out = &t->it;
  return QB_OK;
}

/* ---- conjunction, disjunction, exclusion, optional ------------------------------------------ */

typedef struct conj_it {
  qq__it it;
  qq__it **c;     /* sorted by cost, cheapest leads */
  size_t n;
  qq__it **sc;    /* the ones that score */
  size_t nsc;
} conj_it;

static uint32_t conj_align(conj_it *cj, uint32_t d) {
  for (;;) {
    size_t i;
    if (d == NMD) return cj->it.doc = NMD;
    for (i = 1; i < cj->n; i++) {
      uint32_t o = cj->c[i]->advance(cj->c[i], d);
      if (o != d) {
        d = cj->c[0]->advance(cj->c[0], o);
        break;
      }
    }
    if (i == cj->n) return cj->it.doc = d;
  }
}
static uint32_t conj_next(qq__it *it) {
  conj_it *cj = (conj_it *)it;
  return conj_align(cj, cj->c[0]->next(cj->c[0]));
}
static uint32_t conj_adv(qq__it *it, uint32_t t) {
  conj_it *cj = (conj_it *)it;
  return conj_align(cj, cj->c[0]->advance(cj->c[0], t));
}
static double conj_score(qq__it *it) {
  conj_it *cj = (conj_it *)it;
  double s = 0;
  for (size_t i = 0; i < cj->nsc; i++) s += cj->sc[i]->score(cj->sc[i]);
  return (float)s;
}

static int cmp_cost(const void *a, const void *b) {
  const qq__it *x = *(qq__it *const *)a, *y = *(qq__it *const *)b;
  return x->cost < y->cost ? -1 : x->cost > y->cost;
}


static uint32_t disj_settle(qq__disj_it *dj) {
  for (;;) {
    uint32_t m = NMD;
    size_t cnt = 0;
    for (size_t i = 0; i < dj->n; i++) {
      uint32_t d = dj->c[i]->doc;
      if (d < m) { m = d; cnt = 1; }
      else if (d == m) cnt++;
    }
    if (m == NMD || cnt >= dj->msm) return dj->it.doc = m;
    for (size_t i = 0; i < dj->n; i++)
      if (dj->c[i]->doc == m) dj->c[i]->next(dj->c[i]);
  }
}
uint32_t qq__disj_next(qq__it *it) {
  qq__disj_it *dj = (qq__disj_it *)it;
  if (!dj->started) {
    dj->started = 1;
    for (size_t i = 0; i < dj->n; i++) dj->c[i]->next(dj->c[i]);
  } else {
    uint32_t cur = it->doc;
    if (cur == NMD) return NMD;
    for (size_t i = 0; i < dj->n; i++)
      if (dj->c[i]->doc == cur) dj->c[i]->next(dj->c[i]);
  }
  return disj_settle(dj);
}
uint32_t qq__disj_adv(qq__it *it, uint32_t t) {
  qq__disj_it *dj = (qq__disj_it *)it;
  if (dj->started && it->doc >= t) return it->doc;
  dj->started = 1;
  for (size_t i = 0; i < dj->n; i++) dj->c[i]->advance(dj->c[i], t);
  return disj_settle(dj);
}
double qq__disj_score(qq__it *it) {
  qq__disj_it *dj = (qq__disj_it *)it;
  double s = 0;
  for (size_t i = 0; i < dj->n; i++)
    if (dj->c[i]->doc == it->doc) s += dj->c[i]->score(dj->c[i]);
  return (float)s;
}

typedef struct excl_it {
  qq__it it;
  qq__it *req, *ex;
  int ex_started;
} excl_it;

static uint32_t excl_settle(excl_it *e, uint32_t d) {
  while (d != NMD) {
    uint32_t x = e->ex->advance(e->ex, d);
    if (x != d) break;
    d = e->req->next(e->req);
  }
  return e->it.doc = d;
}
static uint32_t excl_next(qq__it *it) {
  excl_it *e = (excl_it *)it;
  return excl_settle(e, e->req->next(e->req));
}
static uint32_t excl_adv(qq__it *it, uint32_t t) {
  excl_it *e = (excl_it *)it;
  return excl_settle(e, e->req->advance(e->req, t));
}
static double excl_score(qq__it *it) {
  excl_it *e = (excl_it *)it;
  return e->req->score(e->req);
}

typedef struct opt_it {
  qq__it it;
  qq__it *req, *opt;
} opt_it;

static uint32_t opt_next(qq__it *it) {
  opt_it *o = (opt_it *)it;
  return it->doc = o->req->next(o->req);
}
static uint32_t opt_adv(qq__it *it, uint32_t t) {
  opt_it *o = (opt_it *)it;
  return it->doc = o->req->advance(o->req, t);
}
static double opt_score(qq__it *it) {
  opt_it *o = (opt_it *)it;
  double s = o->req->score(o->req);
  if (o->opt->doc != NMD && o->opt->advance(o->opt, it->doc) == it->doc) s += o->opt->score(o->opt);
  return (float)s;
}

/* score = child score * boost (Lucene's BoostQuery), or a constant when CONSTANT */
typedef struct boost_it {
  qq__it it;
  qq__it *c;
  double boost;
  int constant;
} boost_it;

static uint32_t boost_next(qq__it *it) { return it->doc = ((boost_it *)it)->c->next(((boost_it *)it)->c); }
static uint32_t boost_adv(qq__it *it, uint32_t t) {
  return it->doc = ((boost_it *)it)->c->advance(((boost_it *)it)->c, t);
}
static double boost_score(qq__it *it) {
  boost_it *b = (boost_it *)it;
  if (b->constant) return b->boost;
  return (float)(b->c->score(b->c) * b->boost);
}

qq__it *qq__mk_boost(qq__seg_ctx *cx, qq__it *c, double boost, int constant) {
  if (!constant && boost == 1.0) return c;
  boost_it *b = qq__xalloc(cx, sizeof *b);
  if (!b) return NULL;
  b->c = c;
  b->boost = boost;
  b->constant = constant;
  b->it.next = boost_next;
  b->it.advance = boost_adv;
  b->it.score = boost_score;
  b->it.cost = c->cost;
  return &b->it;
}

qq__it *qq__mk_conj(qq__seg_ctx *cx, qq__it **c, size_t n, qq__it **sc, size_t nsc) {
  if (n == 1 && nsc <= 1 && (nsc == 0 || sc[0] == c[0])) {
    if (nsc == 0 && c[0]->score != qq__zero_score) return qq__mk_boost(cx, c[0], 0, 1);
    return c[0];
  }
  conj_it *cj = qq__xalloc(cx, sizeof *cj);
  if (!cj) return NULL;
  qsort(c, n, sizeof *c, cmp_cost);
  cj->c = c;
  cj->n = n;
  cj->sc = sc;
  cj->nsc = nsc;
  cj->it.next = conj_next;
  cj->it.advance = conj_adv;
  cj->it.score = conj_score;
  cj->it.cost = c[0]->cost;
  return &cj->it;
}

qq__it *qq__mk_disj(qq__seg_ctx *cx, qq__it **c, size_t n, size_t msm) {
  /* children that match nothing (absent terms, unmapped fields) only cost time: drop them */
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (c[i]->next != qq__none_next) c[k++] = c[i];
  n = k;
  if (!n || msm > n) return qq__mk_none(cx);
  if (n == 1 && msm <= 1) return c[0];
  qq__disj_it *dj = qq__xalloc(cx, sizeof *dj);
  if (!dj) return NULL;
  dj->c = c;
  dj->n = n;
  dj->msm = msm ? msm : 1;
  dj->it.next = qq__disj_next;
  dj->it.advance = qq__disj_adv;
  dj->it.score = qq__disj_score;
  for (size_t i = 0; i < n; i++) dj->it.cost += c[i]->cost;
  return &dj->it;
}


qq__it *qq__mk_opt(qq__seg_ctx *cx, qq__it *req, qq__it *opt) {
  opt_it *o = qq__xalloc(cx, sizeof *o);
  if (!o) return NULL;
  o->req = req;
  o->opt = opt;
  o->it.next = opt_next;
  o->it.advance = opt_adv;
  o->it.score = opt_score;
  o->it.cost = req->cost;
  return &o->it;
}

qq__it *qq__mk_excl(qq__seg_ctx *cx, qq__it *req, qq__it *ex) {
  excl_it *e = qq__xalloc(cx, sizeof *e);
  if (!e) return NULL;
  e->req = req;
  e->ex = ex;
  ex->advance(ex, 0); /* started: excl_settle relies on advance() */
  e->it.next = excl_next;
  e->it.advance = excl_adv;
  e->it.score = excl_score;
  e->it.cost = req->cost;
  return &e->it;
}
