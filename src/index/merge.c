/* merge.c: merge adjacent segments into one, dropping deleted documents. Documents keep their
** order (segment order, then doc order), so ties in top-k stay where they were; term
** dictionaries are merged in byte order and postings re-encoded in the block format of
** builder.c. Keyword ordinals are remapped through a per-segment old->new ordinal table. */
#include "internal.h"

#include <string.h>

typedef struct enc {
  uint8_t *post;
  size_t len, cap;
  qi__skip *sk;
  size_t nsk, skcap;
  qi__term *terms;
  size_t nterms, tcap;
  char *tb;
  size_t tblen, tbcap;
  uint32_t *toff;
  size_t toffcap;
  uint8_t *pos;       /* positions of the field being written */
  size_t plen, pcap;
  /* term being written */
  qi__term cur;
  uint32_t last, blk_n, blk_first, blk_off, blk_max, blk_pos_off;
  uint8_t blk_min;
} enc;

static void enc_free(enc *e) {
  qb_free(e->post, e->cap);
  qb_free(e->sk, e->skcap * sizeof *e->sk);
  qb_free(e->terms, e->tcap * sizeof *e->terms);
  qb_free(e->tb, e->tbcap);
  qb_free(e->toff, e->toffcap * sizeof *e->toff);
  qb_free(e->pos, e->pcap);
}

static void term_begin(enc *e) {
  memset(&e->cur, 0, sizeof e->cur);
  e->cur.post_off = e->len;
  e->cur.pos_off = e->plen;
  e->cur.skip = (uint32_t)e->nsk;
  e->cur.min_norm = 255;
  e->blk_n = 0;
}

static qb_code flush_blk(enc *e) {
  if (qi__grow((void **)&e->sk, &e->skcap, e->nsk + 1, sizeof *e->sk)) return QB_NOMEM;
  e->sk[e->nsk++] = (qi__skip){e->blk_first, e->last, e->blk_off, e->blk_max,
                               e->blk_min == 255 ? 1 : e->blk_min, e->blk_pos_off};
  e->blk_n = 0;
  return QB_OK;
}

/* POS/PLEN: the document's positions bytes (copied as they are: they are relative to the doc) */
static qb_code term_add(enc *e, uint32_t doc, uint32_t freq, uint8_t norm, const uint8_t *pos,
                        size_t plen) {
  uint32_t delta = doc - (e->cur.df ? e->last : UINT32_MAX);
  if (qi__grow((void **)&e->post, &e->cap, e->len + 24, 1)) return QB_NOMEM;
  if (plen && qi__grow((void **)&e->pos, &e->pcap, e->plen + plen, 1)) return QB_NOMEM;
  if (!e->blk_n) {
    e->blk_first = doc;
    e->blk_pos_off = (uint32_t)(e->plen - e->cur.pos_off);
    e->blk_off = (uint32_t)(e->len - e->cur.post_off);
    e->blk_max = 0;
    e->blk_min = 255;
  }
  e->len += qi__put_varint(e->post + e->len, ((uint64_t)delta << 1) | (freq == 1));
  if (freq != 1) e->len += qi__put_varint(e->post + e->len, freq);
  if (freq > e->blk_max) e->blk_max = freq;
  if (norm && norm < e->blk_min) e->blk_min = norm;
  if (freq > e->cur.max_freq) e->cur.max_freq = freq;
  if (norm && norm < e->cur.min_norm) e->cur.min_norm = norm;
  if (plen) {
    memcpy(e->pos + e->plen, pos, plen);
    e->plen += plen;
  }
  e->cur.df++;
  e->cur.ttf += freq;
  e->last = doc;
  if (++e->blk_n == QI_BLOCK_SIZE) return flush_blk(e);
  return QB_OK;
}

/* Finish the term (dropped when no live posting was written). 1 when kept. */
static qb_code term_end(enc *e, const char *t, size_t n, int *kept) {
  *kept = 0;
  if (!e->cur.df) return QB_OK;
  if (e->blk_n && flush_blk(e)) return QB_NOMEM;
  e->cur.nskips = (uint32_t)(e->nsk - e->cur.skip);
  if (e->cur.min_norm == 255) e->cur.min_norm = 1;
  if (qi__grow((void **)&e->terms, &e->tcap, e->nterms + 1, sizeof *e->terms) ||
      qi__grow((void **)&e->toff, &e->toffcap, e->nterms + 2, sizeof *e->toff) ||
      qi__grow((void **)&e->tb, &e->tbcap, e->tblen + n + 1, 1))
    return QB_NOMEM;
  e->toff[e->nterms] = (uint32_t)e->tblen;
  qi__cpy(e->tb + e->tblen, t, n);
  e->tblen += n;
  e->toff[e->nterms + 1] = (uint32_t)e->tblen;
  e->terms[e->nterms++] = e->cur;
  *kept = 1;
  return QB_OK;
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
  size_t m = an < bn ? an : bn;
  int r = m ? memcmp(a, b, m) : 0;
  if (r) return r;
  return an < bn ? -1 : an > bn;
}

static const char *term_at(const qi__fseg *f, uint32_t o, size_t *n) {
  *n = f->term_off[o + 1] - f->term_off[o];
  return f->term_bytes + f->term_off[o];
}

static inline int is_live(const uint64_t *l, uint32_t d) {
  return !l || (l[d >> 6] >> (d & 63)) & 1;
}

/* ---- the merge, by job: doc map, ids, per field: terms, then columns ------------------------ */

typedef struct mctx {
  qi__seg *const *segs;
  const uint64_t *const *live;
  size_t n;
  uint32_t **docmap;   /* [i][old doc] -> new doc, UINT32_MAX = dropped (the caller's arrays) */
  qi__seg *s;          /* the output */
  uint32_t total;      /* live documents = s->max_doc */
  uint32_t *cursor;    /* n: per input, the next term ordinal of the current field */
  uint32_t **ordmap;   /* n: per input, old -> new keyword ordinal (current field), or NULL */
  uint8_t *seen;       /* total: docs with a posting in the current field */
  const atomic_int *stop; /* set: give up (the index is closing); NULL: never */
  int stopped;
  enc e;
} mctx;

/* Field F of input I, or NULL when that segment predates the field */
static const qi__fseg *in_field(const mctx *m, size_t i, size_t f) {
  return f < m->segs[i]->nfields ? &m->segs[i]->f[f] : NULL;
}

/* Number the live documents in order; the bytes their _ids take */
static uint32_t map_docs(mctx *m, size_t *idbytes) {
  uint32_t total = 0;
  *idbytes = 0;
  for (size_t i = 0; i < m->n; i++)
    for (uint32_t d = 0; d < m->segs[i]->max_doc; d++) {
      if (is_live(m->live[i], d)) {
        m->docmap[i][d] = total++;
        *idbytes += m->segs[i]->id_off[d + 1] - m->segs[i]->id_off[d];
      } else {
        m->docmap[i][d] = UINT32_MAX;
      }
    }
  return total;
}

/* _id bytes, seq numbers and versions of the live docs */
static void copy_ids(mctx *m) {
  qi__seg *s = m->s;
  size_t off = 0;
  for (size_t i = 0; i < m->n; i++) {
    const qi__seg *in = m->segs[i];
    for (uint32_t d = 0; d < in->max_doc; d++) {
      uint32_t nd = m->docmap[i][d], l;
      if (nd == UINT32_MAX) continue;
      l = in->id_off[d + 1] - in->id_off[d];
      s->id_off[nd] = (uint32_t)off;
      qi__cpy(s->ids + off, in->ids + in->id_off[d], l);
      off += l;
      s->seq[nd] = in->seq[d];
      s->ver[nd] = in->ver[d];
    }
  }
  s->id_off[m->total] = (uint32_t)off;
}

/* The smallest term of field F at the inputs' cursors; NULL when all are done */
static const char *next_term(const mctx *m, size_t f, size_t *bn) {
  const char *best = NULL, *t;
  size_t tn;
  for (size_t i = 0; i < m->n; i++) {
    const qi__fseg *in = in_field(m, i, f);
    if (!in || !in->present || m->cursor[i] >= in->nterms) continue;
    t = term_at(in, m->cursor[i], &tn);
    if (!best || cmp_bytes(t, tn, best, *bn) < 0) {
      best = t;
      *bn = tn;
    }
  }
  return best;
}

/* Input I's postings of term ordinal O (field F) re-encoded into m->e for the live docs */
static qb_code copy_postings(mctx *m, size_t i, const qi__fseg *in, uint32_t o) {
  const qi__term *te = &in->terms[o];
  const uint8_t *p = in->post + te->post_off, *pp = in->pos ? in->pos + te->pos_off : NULL;
  uint32_t prev = UINT32_MAX;
  for (uint32_t k = 0; k < te->df; k++) {
    uint64_t v, fq = 1, x;
    uint32_t nd;
    const uint8_t *p0 = pp;
    p = qi__get_varint(p, &v);
    prev += (uint32_t)(v >> 1);
    if (!(v & 1)) p = qi__get_varint(p, &fq);
    if (pp)
      for (uint32_t j = 0; j < fq; j++) pp = qi__get_varint(pp, &x);
    if ((nd = m->docmap[i][prev]) == UINT32_MAX) continue;
    m->seen[nd] = 1;
    if (term_add(&m->e, nd, (uint32_t)fq, in->norms ? in->norms[prev] : 1, p0,
                 pp ? (size_t)(pp - p0) : 0))
      return QB_NOMEM;
  }
  return QB_OK;
}

/* Inverted index of field F: a k-way merge of the inputs' term dictionaries into m->e, with
** the old->new keyword ordinal maps (m->ordmap) for the columns */
static qb_code merge_terms(mctx *m, size_t f, int keyword) {
  enc *e = &m->e;
  const char *best, *t;
  size_t bn = 0, tn;
  memset(&e->cur, 0, sizeof e->cur);
  e->len = e->nsk = e->nterms = e->tblen = e->plen = 0;
  for (size_t i = 0; i < m->n; i++) {
    const qi__fseg *in = in_field(m, i, f);
    m->cursor[i] = 0;
    if (in && in->present && in->nterms && keyword &&
        !(m->ordmap[i] = qb_malloc((size_t)in->nterms * sizeof **m->ordmap)))
      return QB_NOMEM;
  }
  while ((best = next_term(m, f, &bn))) {
    int kept;
    if (m->stop && atomic_load_explicit(m->stop, memory_order_relaxed)) {
      m->stopped = 1;
      return QB_UNAVAILABLE;
    }
    term_begin(e);
    for (size_t i = 0; i < m->n; i++) {
      const qi__fseg *in = in_field(m, i, f);
      if (!in || !in->present || m->cursor[i] >= in->nterms) continue;
      t = term_at(in, m->cursor[i], &tn);
      if (!cmp_bytes(t, tn, best, bn) && copy_postings(m, i, in, m->cursor[i])) return QB_NOMEM;
    }
    /* best points into an input segment, still valid */
    if (term_end(e, best, bn, &kept)) return QB_NOMEM;
    for (size_t i = 0; i < m->n; i++) {
      const qi__fseg *in = in_field(m, i, f);
      if (!in || !in->present || m->cursor[i] >= in->nterms) continue;
      t = term_at(in, m->cursor[i], &tn);
      if (cmp_bytes(t, tn, best, bn)) continue;
      if (m->ordmap[i]) m->ordmap[i][m->cursor[i]] = kept ? (uint32_t)(e->nterms - 1) : UINT32_MAX;
      m->cursor[i]++;
    }
  }
  return QB_OK;
}

/* m->e's terms and postings into the output field FS (its arena) */
static qb_code store_terms(mctx *m, qi__fseg *fs) {
  const enc *e = &m->e;
  qb_arena *ar = &m->s->arena;
  if (!e->nterms) return QB_OK;
  fs->nterms = (uint32_t)e->nterms;
  if (!(fs->term_off = qb_arena_array(ar, e->nterms + 1, sizeof *fs->term_off)) ||
      !(fs->term_bytes = qb_arena_alloc(ar, e->tblen + 1)) ||
      !(fs->terms = qb_arena_array(ar, e->nterms, sizeof *fs->terms)) ||
      !(fs->post = qb_arena_alloc(ar, e->len + 8)) ||
      !(fs->skips = qb_arena_array(ar, e->nsk, sizeof *fs->skips)) ||
      (e->plen && !(fs->pos = qb_arena_alloc(ar, e->plen))))
    return QB_NOMEM;
  if (e->plen) memcpy(fs->pos, e->pos, e->plen);
  fs->pos_len = e->plen;
  qi__cpy(fs->term_off, e->toff, (e->nterms + 1) * sizeof *fs->term_off);
  qi__cpy(fs->term_bytes, e->tb, e->tblen);
  qi__cpy(fs->terms, e->terms, e->nterms * sizeof *fs->terms);
  qi__cpy(fs->post, e->post, e->len);
  qi__cpy(fs->skips, e->sk, e->nsk * sizeof *fs->skips);
  fs->post_len = e->len;
  for (size_t k = 0; k < e->nterms; k++) {
    fs->sum_ttf += e->terms[k].ttf;
    fs->sum_df += e->terms[k].df;
  }
  for (size_t k = 0; k < m->total; k++) fs->doc_count += m->seen[k];
  return QB_OK;
}

/* Per-document columns of field F (norms, numeric doc values, keyword ordinals through
** m->ordmap) for the live docs */
static qb_code merge_columns(mctx *m, size_t f, qi__fseg *fs, int norms) {
  qb_arena *ar = &m->s->arena;
  uint32_t total = m->total, w = 0;
  if (norms && !(fs->norms = qb_arena_alloc(ar, total))) return QB_NOMEM;
  if ((fs->dv == QI_DV_I64 || fs->dv == QI_DV_F64) &&
      (!(fs->dv_present = qb_arena_alloc(ar, total)) ||
       (fs->dv == QI_DV_I64 && !(fs->i64 = qb_arena_array(ar, total, 8))) ||
       (fs->dv == QI_DV_F64 && !(fs->f64 = qb_arena_array(ar, total, 8)))))
    return QB_NOMEM;
  if (fs->dv == QI_DV_KEYWORD) {
    size_t cnt = 0;
    for (size_t i = 0; i < m->n; i++) {
      const qi__fseg *in = in_field(m, i, f);
      if (in && in->present && in->ord_off) cnt += in->ord_off[m->segs[i]->max_doc];
    }
    if (!(fs->ord_off = qb_arena_array(ar, (size_t)total + 1, sizeof *fs->ord_off)) ||
        !(fs->ords = qb_arena_array(ar, cnt + 1, sizeof *fs->ords)))
      return QB_NOMEM;
  }
  for (size_t i = 0; i < m->n; i++) {
    const qi__fseg *in = in_field(m, i, f);
    const uint32_t *om = m->ordmap[i];
    int has = in && in->present;
    for (uint32_t d = 0; d < m->segs[i]->max_doc; d++) {
      uint32_t nd = m->docmap[i][d];
      if (nd == UINT32_MAX) continue;
      if (fs->norms) fs->norms[nd] = has && in->norms ? in->norms[d] : 0;
      if (fs->dv_present && has && in->dv_present && in->dv_present[d]) {
        fs->dv_present[nd] = 1;
        if (fs->i64) fs->i64[nd] = in->i64 ? in->i64[d] : (int64_t)in->f64[d];
        else fs->f64[nd] = in->f64 ? in->f64[d] : (double)in->i64[d];
      }
      if (fs->ord_off) {
        fs->ord_off[nd] = w;
        if (has && in->ord_off && om)
          for (uint32_t a = in->ord_off[d]; a < in->ord_off[d + 1]; a++)
            if (om[in->ords[a]] != UINT32_MAX) fs->ords[w++] = om[in->ords[a]];
      }
    }
  }
  if (fs->ord_off) fs->ord_off[total] = w;
  return QB_OK;
}

/* Free the ordinal maps of field F */
static void free_ordmaps(mctx *m, size_t f) {
  for (size_t i = 0; m->ordmap && i < m->n; i++)
    if (m->ordmap[i]) {
      qb_free(m->ordmap[i], (size_t)in_field(m, i, f)->nterms * sizeof **m->ordmap);
      m->ordmap[i] = NULL;
    }
}

/* Field F of the output: its inverted index and its columns */
static qb_code merge_field(mctx *m, size_t f) {
  qi__fseg *fs = &m->s->f[f];
  int any = 0, norms = 0;
  qb_code rc;
  for (size_t i = 0; i < m->n; i++) {
    const qi__fseg *in = in_field(m, i, f);
    if (!in || !in->present) continue;
    any = 1;
    fs->dv = in->dv;
    norms |= in->norms != NULL;
  }
  if (!any) return QB_OK;
  fs->present = 1;
  memset(m->seen, 0, m->total);
  if (!(rc = merge_terms(m, f, fs->dv == QI_DV_KEYWORD)) && !(rc = store_terms(m, fs)))
    rc = merge_columns(m, f, fs, norms);
  free_ordmaps(m, f);
  return rc;
}

qb_code qi__merge(qi__seg *const *segs, const uint64_t *const *live, size_t n, uint32_t nfields,
                  uint32_t seg_no, qi__seg **out, uint32_t **docmap, const atomic_int *stop,
                  qb_err *err) {
  mctx m;
  qi__seg *s = NULL;
  size_t idbytes, f;
  memset(&m, 0, sizeof m);
  m.segs = segs;
  m.live = live;
  m.n = n;
  m.docmap = docmap;
  m.stop = stop;
  *out = NULL;
  if (!(m.total = map_docs(&m, &idbytes))) return QB_OK;
  if (!(s = m.s = qb_calloc(1, sizeof *s))) goto oom;
  qb_arena_init(&s->arena);
  atomic_init(&s->refs, 1);
  s->seg_no = seg_no;
  s->max_doc = m.total;
  s->nfields = nfields;
  if (!(s->f = qb_arena_array(&s->arena, nfields ? nfields : 1, sizeof *s->f)) ||
      !(s->id_off = qb_arena_array(&s->arena, (size_t)m.total + 1, sizeof *s->id_off)) ||
      !(s->ids = qb_arena_alloc(&s->arena, idbytes)) ||
      !(s->seq = qb_arena_array(&s->arena, m.total, sizeof *s->seq)) ||
      !(s->ver = qb_arena_array(&s->arena, m.total, sizeof *s->ver)) ||
      !(m.cursor = qb_calloc(n, sizeof *m.cursor)) || !(m.ordmap = qb_calloc(n, sizeof *m.ordmap)) ||
      !(m.seen = qb_malloc(m.total)))
    goto oom;
  copy_ids(&m);
  for (f = 0; f < nfields; f++)
    if (merge_field(&m, f)) goto oom;
  if (qi__seg_finish(s, 0)) goto oom;
  enc_free(&m.e);
  qb_free(m.cursor, n * sizeof *m.cursor);
  qb_free(m.ordmap, n * sizeof *m.ordmap);
  qb_free(m.seen, m.total);
  *out = s;
  return QB_OK;
oom:
  enc_free(&m.e);
  qb_free(m.cursor, n * sizeof *m.cursor);
  qb_free(m.ordmap, n * sizeof *m.ordmap);
  if (m.seen) qb_free(m.seen, m.total);
  if (s) {
    qb_arena_fini(&s->arena);
    qb_free(s, sizeof *s);
  }
  if (m.stopped) return qb_fail(err, QB_UNAVAILABLE, "merge: stopped (the index is closing)");
  return qb_fail(err, QB_NOMEM, "merge: out of memory");
}
