/* rescore.c: the query rescorer on one shard. The top window_size hits (by the first query's
** score) are scored again by rescore_query and the two scores combined by score_mode with
** query_weight / rescore_query_weight, as Elasticsearch's QueryRescorer; a window hit that the
** rescore query does not match keeps query_weight * its score. The rescore query runs only on
** the window: its tree is copied with an ids filter (the window's _ids) under every scripted
** node (function_score, script_score, script), so a UDF there is called for the window's
** documents alone -- what makes rescore the place for an expensive UDF. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static qq__query *newq(qb_arena *ar, qq__qkind k) {
  qq__query *q = qb_arena_alloc(ar, sizeof *q);
  if (q) {
    memset(q, 0, sizeof *q);
    q->kind = k;
    q->boost = 1.0f;
    q->max_boost = 3.4028234663852886e38;
  }
  return q;
}

/* bool { must: [Q], filter: [IDS] }: Q's score on the window's documents only */
static qq__query *only(qb_arena *ar, qq__query *q, qq__query *ids) {
  qq__query *b = newq(ar, QK_BOOL);
  qq__query **m = qb_arena_array(ar, 1, sizeof *m), **f = qb_arena_array(ar, 1, sizeof *f);
  if (!b || !m || !f || !q) return NULL;
  m[0] = q;
  f[0] = ids;
  b->must = m;
  b->nmust = 1;
  b->filter = f;
  b->nfilter = 1;
  return b;
}

static int rewrite_list(qb_arena *ar, qq__query ***list, size_t n, qq__query *ids, int depth);

/* A copy of Q whose scripted nodes iterate their children on the window only */
static qq__query *rewrite(qb_arena *ar, const qq__query *q, qq__query *ids, int depth) {
  qq__query *c = qb_arena_alloc(ar, sizeof *c);
  if (!c || depth > 64) return NULL;
  *c = *q;
  if (q->child) {
    c->child = rewrite(ar, q->child, ids, depth + 1);
    if (c->child && (q->kind == QK_FSCORE || q->kind == QK_SCRIPT_SCORE || q->kind == QK_SCRIPT))
      c->child = only(ar, c->child, ids);
    if (!c->child) return NULL;
  }
  if (rewrite_list(ar, &c->must, c->nmust, ids, depth) ||
      rewrite_list(ar, &c->should, c->nshould, ids, depth) ||
      rewrite_list(ar, &c->must_not, c->nmust_not, ids, depth) ||
      rewrite_list(ar, &c->filter, c->nfilter, ids, depth))
    return NULL;
  return c;
}

static int rewrite_list(qb_arena *ar, qq__query ***list, size_t n, qq__query *ids, int depth) {
  if (!n) return 0;
  qq__query **nl = qb_arena_array(ar, n, sizeof *nl);
  if (!nl) return -1;
  for (size_t i = 0; i < n; i++)
    if (!(nl[i] = rewrite(ar, (*list)[i], ids, depth + 1))) return -1;
  *list = nl;
  return 0;
}

typedef struct wdoc {
  uint32_t seg, doc;
  size_t i;
} wdoc;

static int cmp_wdoc(const void *a, const void *b) {
  const wdoc *x = a, *y = b;
  if (x->seg != y->seg) return x->seg < y->seg ? -1 : 1;
  return x->doc < y->doc ? -1 : x->doc > y->doc;
}

static double combine(const qq__rescore *rs, double s1, double s2) {
  double a = rs->qw * s1, b = rs->rqw * s2;
  switch (rs->mode) {
  case RS_TOTAL: return a + b;
  case RS_MULTIPLY: return a * b;
  case RS_AVG: return (a + b) / 2;
  case RS_MAX: return a > b ? a : b;
  case RS_MIN: return a < b ? a : b;
  }
  return a + b;
}

qb_code qq__rescore_apply(qq__shard *sh, const qq__rescore *rs, const uint32_t *segs,
                          const uint32_t *docs, double *scores, size_t n, qb_err *err) {
  qb_arena *ar = sh->ar;
  qb_code rc = QB_OK;
  json_t *idv = json_array();
  wdoc *w = qb_arena_array(ar, n + 1, sizeof *w);
  double *s2 = qb_arena_array(ar, n + 1, sizeof *s2);
  uint8_t *hit = qb_arena_array(ar, n + 1, 1);
  qq__query *ids = newq(ar, QK_IDS), *q;
  if (!idv || !w || !s2 || !hit || !ids) goto nomem;
  memset(hit, 0, n);
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *id = qi_segment_doc_id(qi_snapshot_segment(sh->snap, segs[i]), docs[i], &len);
    if (id && json_array_append_new(idv, json_stringn(id, len))) goto nomem;
    w[i] = (wdoc){segs[i], docs[i], i};
  }
  ids->value = idv;
  ids->path = "rescore";
  if (!(q = only(ar, rewrite(ar, rs->query, ids, 0), ids))) goto nomem;
  qsort(w, n, sizeof *w, cmp_wdoc);
  for (size_t lo = 0; lo < n;) {
    size_t hi = lo;
    while (hi < n && w[hi].seg == w[lo].seg) hi++;
    qq__seg_ctx cx;
    qq__it *it;
    memset(&cx, 0, sizeof cx);
    cx.sh = sh;
    cx.seg = qi_snapshot_segment(sh->snap, w[lo].seg);
    cx.seg_index = w[lo].seg;
    cx.base = qi_snapshot_doc_base(sh->snap, w[lo].seg);
    cx.max_doc = qi_segment_max_doc(cx.seg);
    cx.err = err;
    cx.min_comp = -INFINITY;
    rc = qq__it_build(&cx, q, 1, &it, err);
    size_t k = lo;
    for (uint32_t d = rc ? QI_NO_MORE_DOCS : it->next(it); d != QI_NO_MORE_DOCS; d = it->next(it)) {
      while (k < hi && w[k].doc < d) k++;
      if (k == hi) break;
      if (w[k].doc == d) {
        s2[w[k].i] = it->score(it);
        hit[w[k].i] = 1;
      }
    }
    if (!rc && cx.rc) rc = cx.rc;
    qq__seg_ctx_fini(&cx);
    if (rc) goto done;
    lo = hi;
  }
  for (size_t i = 0; i < n; i++)
    scores[i] = hit[i] ? combine(rs, scores[i], s2[i]) : rs->qw * scores[i];
  goto done;
nomem:
  rc = qb_fail(err, QB_NOMEM, "query: out of memory");
done:
  json_decref(idv);
  return rc;
}
