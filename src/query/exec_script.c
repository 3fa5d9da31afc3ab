/* exec_script.c: the scripted nodes of a segment plan: function_score, script_score and the
** script filter pull QQ_BLOCK_MAX documents of their child, compute the block at once (doc
** values read as columns, one script run per block: scripts.c) and then serve the kept docs
** one at a time, or a run of them at once to the collector (qq__buf_take). Invariant: when a block fails, the node ends (doc = NO_MORE_DOCS) with the
** failure in cx->rc, which the collector checks after the segment. */
#include "internal.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NMD QI_NO_MORE_DOCS

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

/* ---- buffered script nodes: function_score, script_score, script -------------------------------- */

#define PF_MAX 4

/* function_score's per-document accumulators across several functions (or filtered ones);
** allocated only for such queries, so the common single function leaves them out */
typedef struct fs_acc {
  double fac[QQ_BLOCK_MAX], tot[QQ_BLOCK_MAX], wsum[QQ_BLOCK_MAX], mx[QQ_BLOCK_MAX], mn[QQ_BLOCK_MAX];
  uint32_t cnt[QQ_BLOCK_MAX];
  uint8_t fmatch[QQ_BLOCK_MAX];
} fs_acc;

typedef struct buf_it {
  qq__it it;
  qq__seg_ctx *cx;
  const qq__query *q;
  qq__it *child;
  qq__it **ffilter;       /* function_score: per function filter iterator (NULL = all) */
  fs_acc *acc;            /* function_score, unless one script function without a filter */
  int scoring;
  int started;
  int all_kept;           /* buf_compute kept every doc of the block: no compaction */
  int pf_ready;           /* pf[] resolved (once the scripts are bound on this shard) */
  size_t npf;
  const char *pf[PF_MAX]; /* numeric doc-values columns the scripts read (8 bytes a doc) */
  size_t n, pos;
  uint32_t docs[QQ_BLOCK_MAX];
  double cs[QQ_BLOCK_MAX];  /* child scores */
  double fs[QQ_BLOCK_MAX];  /* final scores */
  uint8_t keep[QQ_BLOCK_MAX];
} buf_it;

static double fvf_apply(qq__fvmod m, double v) {
  switch (m) {
  case FV_NONE: return v;
  case FV_LOG: return log10(v);
  case FV_LOG1P: return log10(v + 1);
  case FV_LOG2P: return log10(v + 2);
  case FV_LN: return log(v);
  case FV_LN1P: return log1p(v);
  case FV_LN2P: return log(v + 2);
  case FV_SQUARE: return v * v;
  case FV_SQRT: return sqrt(v);
  case FV_RECIPROCAL: return 1.0 / v;
  }
  return v;
}

static qb_code fail_script(qq__seg_ctx *cx, qq__script *sc, qb_code rc) {
  (void)sc;
  cx->rc = rc;
  return rc;
}

/* A script score must be a finite number >= 0 (Elasticsearch refuses negative ones; an
** infinite one would be capped silently at max_boost, so it is refused too). The message names
** the document by _id, as the user knows it. */
static qb_code bad_score(qq__seg_ctx *cx, const qq__script *sc, double v, uint32_t doc) {
  size_t idl = 0;
  const char *id = qi_segment_doc_id(cx->seg, doc, &idl);
  char got[32];
  if (v != v) snprintf(got, sizeof got, "NaN");
  else if (isinf(v)) snprintf(got, sizeof got, "%sInfinity", v < 0 ? "-" : "");
  else snprintf(got, sizeof got, "%g", v);
  cx->rc = qb_fail(cx->err, QB_TRAP, "script [%.80s]: script score function must produce a finite, "
                   "non-negative score, but got [%s] for document [%.*s]", sc->source, got,
                   (int)(id ? (idl > 100 ? 100 : idl) : 1), id ? id : "?");
  return cx->rc;
}
#define SCORE_OK(v) ((v) >= 0 && (v) <= DBL_MAX) /* false for NaN, negative, +inf */

/* function_score with one script function and no filter, the common case: the arithmetic of
** the general path in buf_compute (score_mode ignored, fac = v * weight capped at max_boost,
** then boost_mode, float rounding, min_score, boost), bit for bit, in one pass over the block
** without the per-function arrays. */
static qb_code compute_one_script(buf_it *b, const qq__func *fn) {
  qq__seg_ctx *cx = b->cx;
  const qq__query *q = b->q;
  size_t n = b->n, i;
  qb_code rc;
  if ((rc = qq__script_run(fn->script, cx->sh, cx->seg, (uint32_t)cx->base, b->docs, b->cs, n, cx->err)))
    return fail_script(cx, fn->script, rc);
  const double *res = fn->script->res;
  const double w = fn->weight, maxb = q->max_boost;
  const float boost = q->boost;
  int bad = 0;
  for (i = 0; i < n; i++) bad |= !SCORE_OK(res[i]); /* branch-free, vectorizes */
  if (bad)
    for (i = 0; i < n; i++)
      if (!SCORE_OK(res[i])) return bad_score(cx, fn->script, res[i], b->docs[i]);
  double *fs = b->fs;
  const double *cs = b->cs;
#define FAC(i) (res[i] * w > maxb ? maxb : res[i] * w)
  switch (q->boost_mode) {
  case BM_REPLACE: for (i = 0; i < n; i++) fs[i] = (float)FAC(i); break;
  case BM_MULTIPLY: for (i = 0; i < n; i++) fs[i] = (float)(cs[i] * FAC(i)); break;
  case BM_SUM: for (i = 0; i < n; i++) fs[i] = (float)(cs[i] + FAC(i)); break;
  case BM_AVG: for (i = 0; i < n; i++) fs[i] = (float)((cs[i] + FAC(i)) / 2.0); break;
  case BM_MAX: for (i = 0; i < n; i++) fs[i] = (float)(cs[i] > FAC(i) ? cs[i] : FAC(i)); break;
  default: for (i = 0; i < n; i++) fs[i] = (float)(cs[i] < FAC(i) ? cs[i] : FAC(i)); break;
  }
#undef FAC
  /* fs[i] holds s = (float)combine(...); then min_score on s and the boost, as buf_compute */
  b->all_kept = !q->has_min_score;
  if (q->has_min_score)
    for (i = 0; i < n; i++) b->keep[i] = !(fs[i] < q->min_score);
  if (boost != 1.0f)
    for (i = 0; i < n; i++) fs[i] = (float)(fs[i] * boost);
  return QB_OK;
}

/* Compute fs[] and keep[] for the block */
static qb_code buf_compute(buf_it *b) {
  qq__seg_ctx *cx = b->cx;
  const qq__query *q = b->q;
  size_t n = b->n, i;
  qb_code rc;
  memset(b->keep, 1, n);
  if (q->kind == QK_SCRIPT) {
    if ((rc = qq__script_run(q->script, cx->sh, cx->seg, (uint32_t)cx->base, b->docs, b->cs, n, cx->err)))
      return fail_script(cx, q->script, rc);
    for (i = 0; i < n; i++) {
      b->keep[i] = q->script->keep[i] != 0;
      b->fs[i] = q->boost;
    }
    b->all_kept = 0;
    return QB_OK;
  }
  if (q->kind == QK_SCRIPT_SCORE) {
    if ((rc = qq__script_run(q->script, cx->sh, cx->seg, (uint32_t)cx->base, b->docs, b->cs, n, cx->err)))
      return fail_script(cx, q->script, rc);
    for (i = 0; i < n; i++) {
      double v = q->script->res[i];
      if (!SCORE_OK(v)) return bad_score(cx, q->script, v, b->docs[i]);
      b->fs[i] = (float)((float)v * q->boost);
      if (q->has_min_score && (float)v < q->min_score) b->keep[i] = 0;
    }
    b->all_kept = !q->has_min_score;
    return QB_OK;
  }
  /* function_score */
  int single = q->nfuncs == 1 && !q->funcs[0].filter;
  if (single && q->funcs[0].kind == FN_SCRIPT) return compute_one_script(b, &q->funcs[0]);
  fs_acc *A = b->acc;
  b->all_kept = !q->has_min_score;
  for (i = 0; i < n && !single; i++) {
    A->fac[i] = 1;
    A->tot[i] = 0;
    A->wsum[i] = 0;
    A->mx[i] = -INFINITY;
    A->mn[i] = INFINITY;
    A->cnt[i] = 0;
  }
  for (size_t f = 0; f < q->nfuncs; f++) {
    const qq__func *fn = &q->funcs[f];
    double val[QQ_BLOCK_MAX];
    if (b->ffilter[f]) {
      qq__it *fi = b->ffilter[f];
      for (i = 0; i < n; i++) A->fmatch[i] = fi->doc != QI_NO_MORE_DOCS && fi->advance(fi, b->docs[i]) == b->docs[i];
    } else {
      memset(A->fmatch, 1, n);
    }
    if (fn->kind == FN_SCRIPT) {
      if ((rc = qq__script_run(fn->script, cx->sh, cx->seg, (uint32_t)cx->base, b->docs, b->cs, n, cx->err)))
        return fail_script(cx, fn->script, rc);
      for (i = 0; i < n; i++) {
        double v = fn->script->res[i];
        if (A->fmatch[i] && !SCORE_OK(v)) return bad_score(cx, fn->script, v, b->docs[i]);
        val[i] = v * fn->weight;
      }
    } else if (fn->kind == FN_FVF) {
      qi_field_info fi;
      double raw[QQ_BLOCK_MAX];
      uint8_t pr[QQ_BLOCK_MAX];
      if (qi_snapshot_field(cx->sh->snap, fn->field, &fi) || (fi.dv != QI_DV_I64 && fi.dv != QI_DV_F64)) {
        memset(pr, 0, n);
        memset(raw, 0, n * sizeof *raw);
      } else {
        qi_dv_read_f64(cx->seg, fi.id, b->docs, n, raw, pr);
      }
      for (i = 0; i < n; i++) {
        double v = raw[i];
        if (!pr[i]) {
          if (!A->fmatch[i]) continue;
          if (!fn->has_missing) {
            cx->rc = qb_fail(cx->err, QB_INVAL, "field_value_factor: missing value for field [%s]", fn->field);
            return cx->rc;
          }
          v = fn->missing;
        }
        double r = fvf_apply(fn->modifier, v * fn->factor);
        if (A->fmatch[i] && (r != r || isinf(r))) {
          cx->rc = qb_fail(cx->err, QB_INVAL, "field_value_factor: result of field modification [%s(%g * %g)] "
                           "must be a number", (const char *[]){"none", "log", "log1p", "log2p", "ln", "ln1p",
                           "ln2p", "square", "sqrt", "reciprocal"}[fn->modifier], v, fn->factor);
          return cx->rc;
        }
        val[i] = r * fn->weight;
      }
    } else {
      for (i = 0; i < n; i++) val[i] = fn->weight;
    }
    if (single) { /* Elasticsearch: one function without a filter ignores score_mode */
      memcpy(A->fac, val, n * sizeof *val);
      continue;
    }
    for (i = 0; i < n; i++) {
      if (!A->fmatch[i]) continue;
      double v = val[i];
      switch (q->score_mode) {
      case SM_FIRST: if (!A->cnt[i]) A->fac[i] = v; break;
      case SM_MULTIPLY: A->fac[i] *= v; break;
      default:
        A->tot[i] += v;
        A->wsum[i] += fn->weight;
        if (v > A->mx[i]) A->mx[i] = v;
        if (v < A->mn[i]) A->mn[i] = v;
      }
      A->cnt[i]++;
    }
  }
  for (i = 0; i < n; i++) {
    double fac = A->fac[i];
    if (!single && A->cnt[i]) switch (q->score_mode) {
      case SM_SUM: fac = A->tot[i]; break;
      case SM_AVG: fac = A->tot[i] / A->wsum[i]; break;
      case SM_MAX: fac = A->mx[i]; break;
      case SM_MIN: fac = A->mn[i]; break;
      default: break;
      }
    if (fac > q->max_boost) fac = q->max_boost;
    double qs = b->cs[i], s;
    switch (q->boost_mode) {
    case BM_MULTIPLY: s = qs * fac; break;
    case BM_REPLACE: s = fac; break;
    case BM_SUM: s = qs + fac; break;
    case BM_AVG: s = (qs + fac) / 2.0; break;
    case BM_MAX: s = qs > fac ? qs : fac; break;
    default: s = qs < fac ? qs : fac; break;
    }
    s = (float)s;
    if (q->has_min_score && s < q->min_score) b->keep[i] = 0;
    b->fs[i] = (float)(s * q->boost);
  }
  return QB_OK;
}

/* The numeric columns the node's scripts read in this segment, so that buf_fill can prefetch
** each doc's values while it pulls the docs from the child (a scattered read per doc and
** column otherwise waits for memory in qi_dv_read_* once the index outgrows the cache). Known
** once the scripts are bound: from the second block of a shard on. */
static void pf_resolve(buf_it *b) {
  const qq__query *q = b->q;
  qq__script *scs[PF_MAX];
  size_t nsc = 0;
  if (q->kind == QK_FSCORE) {
    for (size_t f = 0; f < q->nfuncs && nsc < PF_MAX; f++)
      if (q->funcs[f].kind == FN_SCRIPT) scs[nsc++] = q->funcs[f].script;
  } else {
    scs[nsc++] = q->script;
  }
  for (size_t k = 0; k < nsc; k++)
    if (!scs[k]->bound) return;
  b->pf_ready = 1;
  for (size_t k = 0; k < nsc; k++)
    for (size_t i = 0; i < scs[k]->bind.nargs && b->npf < PF_MAX; i++) {
      uint32_t fid = scs[k]->field_id[i];
      const void *col;
      if (fid == UINT32_MAX || scs[k]->bind.args[i].type == QQ_COL_STR) continue;
      if (!(col = qi_dv_f64_column(b->cx->seg, fid, NULL))) col = qi_dv_i64_column(b->cx->seg, fid, NULL);
      if (col) b->pf[b->npf++] = col;
    }
}

static uint32_t buf_fill(buf_it *b, uint32_t d) {
  qq__it *c = b->child;
  const int want_cs = b->scoring || b->q->kind != QK_SCRIPT;
  if (!b->pf_ready) pf_resolve(b);
  for (;;) {
    size_t n = 0, j = 0;
    if (want_cs && b->npf) {
      while (d != NMD) {
        for (size_t k = 0; k < b->npf; k++) __builtin_prefetch(b->pf[k] + (size_t)d * 8);
        b->docs[n] = d;
        b->cs[n] = c->score(c);
        if (++n == QQ_BLOCK_MAX) break;
        d = c->next(c);
      }
    } else if (want_cs) {
      while (d != NMD) {
        b->docs[n] = d;
        b->cs[n] = c->score(c);
        if (++n == QQ_BLOCK_MAX) break;
        d = c->next(c);
      }
    } else {
      while (d != NMD) {
        b->docs[n] = d;
        b->cs[n] = 0;
        if (++n == QQ_BLOCK_MAX) break;
        d = c->next(c);
      }
    }
    b->n = n;
    b->pos = 0;
    if (!n) return b->it.doc = NMD;
    if (buf_compute(b)) {
      b->n = 0;
      return b->it.doc = NMD; /* cx->rc holds the failure */
    }
    if (b->all_kept) return b->it.doc = b->docs[0];
    for (size_t i = 0; i < n; i++)
      if (b->keep[i]) {
        b->docs[j] = b->docs[i];
        b->fs[j] = b->fs[i];
        j++;
      }
    b->n = j;
    if (j) return b->it.doc = b->docs[0];
    if (d == NMD) return b->it.doc = NMD;
    d = c->next(c);
  }
}

uint32_t qq__buf_next(qq__it *it) {
  buf_it *b = (buf_it *)it;
  if (!b->started) {
    b->started = 1;
    return buf_fill(b, b->child->next(b->child));
  }
  if (it->doc == NMD) return NMD;
  if (b->pos + 1 < b->n) return it->doc = b->docs[++b->pos];
  return buf_fill(b, b->child->doc == NMD ? NMD : b->child->next(b->child));
}

static uint32_t buf_adv(qq__it *it, uint32_t t) {
  buf_it *b = (buf_it *)it;
  if (b->started && it->doc >= t) return it->doc;
  if (!b->started) {
    b->started = 1;
    return buf_fill(b, b->child->advance(b->child, t));
  }
  while (b->pos < b->n && b->docs[b->pos] < t) b->pos++;
  if (b->pos < b->n) return it->doc = b->docs[b->pos];
  if (b->child->doc == NMD) return it->doc = NMD;
  return buf_fill(b, b->child->doc >= t ? b->child->next(b->child) : b->child->advance(b->child, t));
}

static double buf_score(qq__it *it) {
  buf_it *b = (buf_it *)it;
  return b->fs[b->pos];
}

size_t qq__buf_take(qq__it *it, size_t max, const uint32_t **docs, const double **scores) {
  buf_it *b = (buf_it *)it;
  size_t m = b->n - b->pos;
  assert(it->next == qq__buf_next && it->doc != NMD && b->pos < b->n && max > 0);
  if (m > max) m = max;
  *docs = b->docs + b->pos;
  *scores = b->fs + b->pos;
  b->pos += m - 1;
  it->doc = b->docs[b->pos];
  return m;
}

qb_code qq__build_buffered(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  qb_code rc;
  buf_it *b = qq__xalloc(cx, sizeof *b);
  if (!b) return nomem(err);
  b->cx = cx;
  b->q = q;
  b->scoring = scoring;
  if (q->kind == QK_SCRIPT) {
    b->child = qq__mk_all(cx, 0);
    if (!b->child) return nomem(err);
  } else if ((rc = qq__build(cx, q->child, 1, &b->child, err))) {
    return rc;
  }
  if (q->kind == QK_FSCORE && !(q->nfuncs == 1 && !q->funcs[0].filter && q->funcs[0].kind == FN_SCRIPT) &&
      !(b->acc = qq__xalloc(cx, sizeof *b->acc)))
    return nomem(err);
  if (q->kind == QK_FSCORE) {
    if (!(b->ffilter = qb_arena_array(cx->sh->ar, q->nfuncs + 1, sizeof *b->ffilter))) return nomem(err);
    for (size_t f = 0; f < q->nfuncs; f++)
      if (q->funcs[f].filter) {
        if ((rc = qq__build(cx, q->funcs[f].filter, 0, &b->ffilter[f], err))) return rc;
        b->ffilter[f]->advance(b->ffilter[f], 0);
      }
  }
  b->it.next = qq__buf_next;
  b->it.advance = buf_adv;
  b->it.score = buf_score;
  b->it.cost = b->child->cost;
  *out = &b->it;
  return QB_OK;
}
