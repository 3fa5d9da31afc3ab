/* maxscore.c: top-k early termination for a top-level disjunction of terms sorted by score:
** MaxScore (essential / non-essential terms by their score bounds) with block-max skipping,
** reading the collector's min competitive score from cx->min_comp. A returned document's score
** is summed exactly as the plain disjunction sums it, so pruning never changes results. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NMD QI_NO_MORE_DOCS

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

/* ---- MaxScore over a top-level disjunction of terms ------------------------------------------- */

/* Terms sorted by their score bound, ascending. The first `ness` terms are non-essential: the
** sum of their bounds (ub[ness-1]) cannot beat min_comp, so a doc matching only them cannot
** enter the top hits; candidates come from the essential terms only, and non-essential terms
** are advanced to a candidate only while its score can still become competitive. A returned
** doc's score is summed in clause order in double and rounded to float, exactly as qq__disj_score
** does, so pruning never changes a score. */
typedef struct ms_it {
  qq__it it;
  qq__seg_ctx *cx;
  qq__term_it **t;       /* by bound ascending */
  double *bound, *ub; /* ub[i] = bound[0] + ... + bound[i] */
  size_t n, ness;
  size_t *order;     /* the original clause order, for the score sum */
  double cur_score;
  int started;
  double last_min;
  /* block-max data per term (sorted position): the block holding the first posting >= the
  ** last candidate, and its score bound */
  uint32_t *bfirst, *blast;
  double *bbound;
} ms_it;

/* Block-max check (as Lucene's block-max MaxScore): the sum over all terms of the bound of the
** block that could hold C. When it cannot beat min_comp, return the first doc after the range
** where these bounds hold (so the caller skips [C, return)); else return C. */
static uint32_t ms_blockmax_skip(ms_it *m, uint32_t c) {
  double sum = 0;
  uint32_t upto = NMD - 1;
  for (size_t i = 0; i < m->n; i++) {
    if (m->blast[i] == NMD || c > m->blast[i]) {
      qi_block_info bi;
      qq__term_it *t = m->t[i];
      if (!qi_postings_block_for(t->p, c, &bi)) {
        m->bfirst[i] = NMD;
        m->blast[i] = NMD - 1; /* no posting >= c: bound 0 to the end */
        m->bbound[i] = 0;
      } else {
        m->bfirst[i] = bi.first_doc;
        m->blast[i] = bi.last_doc;
        m->bbound[i] = qi_bm25_score(t->w, bi.max_freq, t->norms ? bi.min_norm : 1);
      }
    }
    if (c >= m->bfirst[i]) {
      sum += m->bbound[i];
      if (m->blast[i] < upto) upto = m->blast[i];
    } else if (m->bfirst[i] - 1 < upto) {
      upto = m->bfirst[i] - 1;
    }
  }
  if (sum * (1 + 1e-9) > m->cx->min_comp) return c;
  return upto + 1;
}

static void ms_update(ms_it *m) {
  double mc = m->cx->min_comp;
  if (mc == m->last_min) return;
  m->last_min = mc;
  while (m->ness < m->n - 1 && m->ub[m->ness] * (1 + 1e-9) <= mc) m->ness++;
}

static uint32_t ms_find(ms_it *m) {
  for (;;) {
    ms_update(m);
    uint32_t c = NMD;
    for (size_t i = m->ness; i < m->n; i++)
      if (m->t[i]->it.doc < c) c = m->t[i]->it.doc;
    if (c == NMD) return m->it.doc = NMD;
    if (m->cx->min_comp > -INFINITY) {
      uint32_t to = ms_blockmax_skip(m, c);
      if (to != c) {
        m->cx->skipped = 1;
        for (size_t i = m->ness; i < m->n; i++)
          if (m->t[i]->it.doc < to) qq__term_adv(&m->t[i]->it, to);
        continue;
      }
    }
    /* essential part */
    double sc[64];
    double part = 0;
    for (size_t i = m->ness; i < m->n; i++) {
      sc[i] = 0;
      if (m->t[i]->it.doc == c) part += (sc[i] = qq__term_score(&m->t[i]->it));
    }
    int competitive = 1;
    for (size_t j = m->ness; j-- > 0;) {
      if ((part + m->ub[j]) * (1 + 1e-9) <= m->cx->min_comp) {
        competitive = 0;
        break;
      }
      sc[j] = 0;
      if (m->t[j]->it.doc < c) qq__term_adv(&m->t[j]->it, c);
      if (m->t[j]->it.doc == c) part += (sc[j] = qq__term_score(&m->t[j]->it));
    }
    if (competitive) {
      /* the exact score, summed in clause order like qq__disj_score; non-essential terms not on c
      ** (or not advanced because the doc lost) contribute nothing */
      double s = 0;
      for (size_t k = 0; k < m->n; k++) s += sc[m->order[k]];
      m->cur_score = (float)s;
      m->it.doc = c;
      /* move the essential terms on c forward for the next call */
      return c;
    }
    m->cx->skipped = 1;
    for (size_t i = m->ness; i < m->n; i++)
      if (m->t[i]->it.doc == c) qq__term_next(&m->t[i]->it);
  }
}

static uint32_t ms_next(qq__it *it) {
  ms_it *m = (ms_it *)it;
  if (!m->started) {
    m->started = 1;
    for (size_t i = 0; i < m->n; i++) qq__term_next(&m->t[i]->it);
  } else {
    if (it->doc == NMD) return NMD;
    for (size_t i = 0; i < m->n; i++)
      if (m->t[i]->it.doc == it->doc) qq__term_next(&m->t[i]->it);
  }
  return ms_find(m);
}

static uint32_t ms_adv(qq__it *it, uint32_t t) {
  (void)t;
  return ms_next(it); /* only used at the top level, which calls next */
}

static double ms_score(qq__it *it) { return ((ms_it *)it)->cur_score; }

qb_code qq__it_build_top(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err) {
  qq__it *it;
  qb_code rc;
  if ((rc = qq__build(cx, q, 1, &it, err))) return rc;
  *out = it;
  qq__phrase_top(it);
  /* a disjunction (msm 1) whose children are all term iterators */
  if (it->next != qq__disj_next || it->score != qq__disj_score) return QB_OK; /* not dis_max */
  qq__disj_it *dj = (qq__disj_it *)it;
  if (dj->msm > 1 || dj->n < 2 || dj->n > 64) return QB_OK;
  for (size_t i = 0; i < dj->n; i++)
    if (dj->c[i]->next != qq__term_next || dj->c[i]->score != qq__term_score) return QB_OK;
  ms_it *m = qq__xalloc(cx, sizeof *m);
  if (!m || !(m->t = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->t)) ||
      !(m->bound = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->bound)) ||
      !(m->ub = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->ub)) ||
      !(m->order = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->order)) ||
      !(m->bfirst = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->bfirst)) ||
      !(m->blast = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->blast)) ||
      !(m->bbound = qb_arena_array(cx->sh->ar, dj->n, sizeof *m->bbound)))
    return nomem(err);
  for (size_t i = 0; i < dj->n; i++) m->blast[i] = NMD; /* no block yet */
  m->n = dj->n;
  for (size_t i = 0; i < m->n; i++) {
    qq__term_it *t = (qq__term_it *)dj->c[i];
    qi_block_info bi;
    qi_postings_term_bound(t->p, &bi);
    m->t[i] = t;
    m->bound[i] = qi_bm25_score(t->w, bi.max_freq, t->norms ? bi.min_norm : 1);
    m->order[i] = i;
  }
  /* sort by bound (insertion sort: few terms), remembering the clause order */
  for (size_t i = 1; i < m->n; i++)
    for (size_t j = i; j > 0 && m->bound[j] < m->bound[j - 1]; j--) {
      qq__term_it *tt = m->t[j]; m->t[j] = m->t[j - 1]; m->t[j - 1] = tt;
      double bb = m->bound[j]; m->bound[j] = m->bound[j - 1]; m->bound[j - 1] = bb;
      size_t oo = m->order[j]; m->order[j] = m->order[j - 1]; m->order[j - 1] = oo;
    }
  /* order[k] must map clause k -> sorted position */
  {
    size_t *pos = qb_arena_array(cx->sh->ar, m->n, sizeof *pos);
    if (!pos) return nomem(err);
    for (size_t i = 0; i < m->n; i++) pos[m->order[i]] = i;
    m->order = pos;
  }
  double acc = 0;
  for (size_t i = 0; i < m->n; i++) m->ub[i] = (acc += m->bound[i]);
  m->cx = cx;
  m->last_min = NAN;
  m->it.next = ms_next;
  m->it.advance = ms_adv;
  m->it.score = ms_score;
  m->it.cost = it->cost;
  *out = &m->it;
  return QB_OK;
}
