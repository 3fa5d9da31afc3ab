/* cross_fields.c: multi_match type cross_fields, as Elasticsearch builds it: the fields are
** grouped by analyzer; in a group the text is analyzed once and each term becomes one blended
** term (BlendedTermQuery.dismaxBlendedQuery): a dis_max (tie_breaker) of the term in every
** field of the group, each scored with a blended document frequency -- the largest over the
** fields, capped at the shard's max_doc and the smallest sum_total_term_freq of the fields that
** have the term, plus one for each step down to a less frequent field (Elasticsearch's tie
** break towards the more popular field). The terms combine as a bool (operator,
** minimum_should_match); several groups, and fields without postings (a match query each),
** as a dis_max of the groups. */
#include "internal.h"

#include <string.h>

#define NMD QI_NO_MORE_DOCS
#define MAX_XFIELDS 64
#define MAX_XTERMS 256

static qb_code nomem(qb_err *err) { return qb_fail(err, QB_NOMEM, "query: out of memory"); }

/* dis_max of C[0..n) (none-iterators dropped); *OUT none when all are */
static qb_code mk_dmx(qq__seg_ctx *cx, qq__it **c, size_t n, double tie, int scoring, qq__it **out, qb_err *err) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (c[i]->next != qq__none_next) c[k++] = c[i];
  if (!k) return (*out = qq__mk_none(cx)) ? QB_OK : nomem(err);
  if (k == 1) { *out = c[0]; return QB_OK; }
  return (*out = qq__mk_dismax(cx, c, k, tie, scoring)) ? QB_OK : nomem(err);
}

typedef struct xtoks {
  qb_arena *ar;
  const char *t[MAX_XTERMS];
  size_t len[MAX_XTERMS];
  size_t n;
} xtoks;

static qb_code on_tok(void *ud, const qi_token *tok, qb_err *err) {
  xtoks *ts = ud;
  if (ts->n == MAX_XTERMS) return qb_fail(err, QB_INVAL, "[multi_match] cross_fields: more than %d terms", MAX_XTERMS);
  if (!(ts->t[ts->n] = qb_arena_strndup(ts->ar, tok->term, tok->len))) return nomem(err);
  ts->len[ts->n++] = tok->len;
  return QB_OK;
}

/* One term in fields FI[0..n) (boosts B): the blended dis_max */
static qb_code blended(qq__seg_ctx *cx, const qi_field_info *fi, const float *b, size_t n, const char *t,
                       size_t len, double tie, int scoring, qq__it **out, qb_err *err) {
  const qq_term_stats *ts = cx->sh->req->term_stats;
  qi_field_stats fs[MAX_XFIELDS];
  uint64_t df[MAX_XFIELDS], adj[MAX_XFIELDS], max = 0, maxdoc = qi_snapshot_max_doc(cx->sh->snap);
  uint64_t min_sttf = UINT64_MAX;
  qb_code rc;
  for (size_t i = 0; i < n; i++) {
    qi_snapshot_field_stats(cx->sh->snap, fi[i].id, &fs[i]);
    df[i] = qi_snapshot_doc_freq(cx->sh->snap, fi[i].id, t, len);
    if (ts && scoring) {
      ts->field(ts->ud, fi[i].name, &fs[i]);
      ts->term(ts->ud, fi[i].name, t, len, &df[i]);
    }
    if (df[i] > max) max = df[i];
    if (df[i] && fs[i].sum_total_term_freq < min_sttf) min_sttf = fs[i].sum_total_term_freq;
    adj[i] = df[i];
  }
  if (maxdoc > min_sttf) maxdoc = min_sttf;
  if (n > 1 && max) {
    /* by df descending (stable), each step down to a smaller df adds one */
    size_t ord[MAX_XFIELDS];
    for (size_t i = 0; i < n; i++) {
      size_t j = i;
      for (; j > 0 && df[ord[j - 1]] < df[i]; j--) ord[j] = ord[j - 1];
      ord[j] = i;
    }
    uint64_t prev = df[ord[0]], actual = maxdoc < max ? maxdoc : max;
    for (size_t k = 0; k < n; k++) {
      uint64_t cur = df[ord[k]];
      if (!cur) break;
      if (prev > cur) actual++;
      adj[ord[k]] = maxdoc < actual ? maxdoc : actual;
      prev = cur;
    }
  }
  qq__it **c = qb_arena_array(cx->sh->ar, n, sizeof *c);
  if (!c) return nomem(err);
  for (size_t i = 0; i < n; i++) {
    qi_postings *p;
    if ((rc = qi_postings_open_term(cx->seg, fi[i].id, t, len, &p, err))) return rc;
    if (!p) {
      if (!(c[i] = qq__mk_none(cx))) return nomem(err);
      continue;
    }
    if ((rc = qq__keep_postings(cx, p, err))) return rc;
    qq__term_it *ti = qq__xalloc(cx, sizeof *ti);
    if (!ti) return nomem(err);
    memset(ti, 0, sizeof *ti);
    ti->p = p;
    if (scoring) {
      qi_bm25 *w = qq__xalloc(cx, sizeof *w);
      if (!w) return nomem(err);
      qi_bm25_init(w, b[i], &fs[i], adj[i], -1, -1);
      ti->w = w;
      ti->norms = fi[i].has_norms ? qi_segment_norms(cx->seg, fi[i].id) : NULL;
    }
    ti->it.doc = NMD;
    ti->it.next = qq__term_next;
    ti->it.advance = qq__term_adv;
    ti->it.score = scoring ? qq__term_score : qq__zero_score;
    ti->it.cost = qi_postings_doc_freq(p);
    c[i] = &ti->it;
  }
  return mk_dmx(cx, c, n, tie, scoring, out, err);
}

qb_code qq__build_cross(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err) {
  size_t n = q->nshould, ng = 0;
  qb_code rc;
  if (n > MAX_XFIELDS) return qb_fail(err, QB_INVAL, "[multi_match] cross_fields: at most %d fields", MAX_XFIELDS);
  qi_field_info fi[MAX_XFIELDS];
  float boost[MAX_XFIELDS];
  int mapped[MAX_XFIELDS], done[MAX_XFIELDS];
  qq__it **groups = qb_arena_array(cx->sh->ar, n + 1, sizeof *groups);
  if (!groups) return nomem(err);
  for (size_t i = 0; i < n; i++) {
    mapped[i] = !qi_snapshot_field(cx->sh->snap, q->should[i]->field, &fi[i]);
    boost[i] = q->should[i]->boost;
    done[i] = !mapped[i];
    if (mapped[i] && !fi[i].indexed) { /* numbers and the like: their own match query */
      if ((rc = qq__build(cx, q->should[i], scoring, &groups[ng++], err))) return rc;
      done[i] = 1;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (done[i]) continue;
    qi_field_info gf[MAX_XFIELDS];
    float gb[MAX_XFIELDS];
    size_t m = 0;
    for (size_t j = i; j < n; j++)
      if (!done[j] && fi[j].analyzer == fi[i].analyzer) {
        gf[m] = fi[j];
        gb[m++] = boost[j];
        done[j] = 1;
      }
    xtoks *ts = qb_arena_alloc(cx->sh->ar, sizeof *ts);
    if (!ts) return nomem(err);
    ts->ar = cx->sh->ar;
    ts->n = 0;
    const char *text = q->should[i]->text;
    if ((rc = qi_analyze(gf[0].analyzer == QI_ANALYZER_NONE ? QI_ANALYZER_KEYWORD : gf[0].analyzer, text,
                         strlen(text), on_tok, ts, err)))
      return rc;
    if (!ts->n) continue;
    qq__it **c = qb_arena_array(cx->sh->ar, ts->n, sizeof *c);
    if (!c) return nomem(err);
    for (size_t k = 0; k < ts->n; k++)
      if ((rc = blended(cx, gf, gb, m, ts->t[k], ts->len[k], q->tie_breaker, scoring, &c[k], err))) return rc;
    size_t msm = 1;
    if (q->should[i]->op_and) msm = ts->n;
    else if (q->should[i]->msm && (rc = qq__msm(q->should[i]->msm, ts->n, &msm, err))) return rc;
    if (msm < 1) msm = 1;
    qq__it *g;
    if (msm > ts->n) g = qq__mk_none(cx);
    else if (ts->n == 1) g = c[0];
    else if (msm == ts->n) {
      int any_none = 0;
      for (size_t k = 0; k < ts->n; k++) any_none |= c[k]->next == qq__none_next;
      qq__it **sc = qb_arena_array(cx->sh->ar, ts->n, sizeof *sc);
      if (!sc) return nomem(err);
      memcpy(sc, c, ts->n * sizeof *c);
      g = any_none ? qq__mk_none(cx) : qq__mk_conj(cx, c, ts->n, scoring ? sc : NULL, scoring ? ts->n : 0);
    } else {
      g = qq__mk_disj(cx, c, ts->n, msm);
    }
    if (!g) return nomem(err);
    groups[ng++] = g;
  }
  qq__it *it;
  if (!ng) it = qq__mk_none(cx);
  else if ((rc = mk_dmx(cx, groups, ng, q->tie_breaker, scoring, &it, err))) return rc;
  if (!it) return nomem(err);
  *out = scoring && q->boost != 1.0f ? qq__mk_boost(cx, it, q->boost, 0) : it;
  return *out ? QB_OK : nomem(err);
}
