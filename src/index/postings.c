/* postings.c: iterating one term's postings in one segment, block by block. A block of up to
** QI_BLOCK_SIZE postings is decoded into plain arrays (docs, freqs) as far as it is read, so
** next() is an array step; advance() first skips whole blocks on their last_doc (skip data),
** then decodes and scans only up to its target.
** Encoding (see builder.c): per posting varint((doc - prev) << 1 | (freq == 1)), then
** varint(freq) when freq != 1; prev is the previous posting's doc, -1 for the first. */
#include "internal.h"

#include <string.h>

struct qi_postings {
  const qi__term *t;
  const qi__skip *sk;
  const uint8_t *base;   /* the term's first posting byte */
  const uint64_t *live;  /* NULL: all live */
  uint32_t blk;          /* loaded block; UINT32_MAX before the first */
  uint32_t n, i;         /* postings in the loaded block, index of the current one */
  uint32_t dec;          /* postings of the block decoded so far (i < dec once one is) */
  uint32_t prev;         /* the last decoded doc (the previous block's last before any) */
  const uint8_t *cur;    /* the next undecoded posting's bytes */
  uint32_t doc, freq;
  uint32_t docs[QI_BLOCK_SIZE], freqs[QI_BLOCK_SIZE];
  const uint8_t *pos_base; /* the term's positions, NULL when the field has none */
  const uint8_t *pos_cur;  /* positions of docs[pos_idx] in the loaded block */
  uint32_t pos_idx;
};

static const qi__fseg *fseg(const qi_segment *seg, uint32_t field) {
  return field < seg->core->nfields ? &seg->core->f[field] : NULL;
}

qb_code qi_postings_open(const qi_segment *seg, uint32_t field, uint32_t ord, qi_postings **out,
                         qb_err *err) {
  const qi__fseg *f = fseg(seg, field);
  qi_postings *p;
  *out = NULL;
  if (!f || ord >= f->nterms)
    return qb_fail(err, QB_INVAL, "postings: field %u term %u out of range", field, ord);
  if (!(p = qb_malloc(sizeof *p))) return qb_fail(err, QB_NOMEM, "postings: out of memory");
  p->t = &f->terms[ord];
  p->sk = f->skips + p->t->skip;
  p->base = f->post + p->t->post_off;
  p->pos_base = f->pos ? f->pos + p->t->pos_off : NULL;
  p->pos_cur = NULL;
  p->pos_idx = 0;
  p->live = seg->live ? seg->live->bits : NULL;
  p->blk = UINT32_MAX;
  p->n = p->i = p->dec = p->prev = 0;
  p->cur = NULL;
  p->doc = QI_NO_MORE_DOCS;
  p->freq = 0;
  *out = p;
  return QB_OK;
}

qb_code qi_postings_open_term(const qi_segment *seg, uint32_t field, const char *term, size_t len,
                              qi_postings **out, qb_err *err) {
  const qi__fseg *f = fseg(seg, field);
  int64_t o;
  *out = NULL;
  if (!f || (o = qi__fseg_find(f, term, len)) < 0) return QB_OK;
  return qi_postings_open(seg, field, (uint32_t)o, out, err);
}

void qi_postings_free(qi_postings *p) { qb_free(p, sizeof *p); }

/* Block K becomes the loaded one, decoded lazily: an advance() into a block of a frequent term
** usually wants a doc in its first part, and the rest is never read (a conjunction led by a
** rarer term visits many blocks that way). */
static void load(qi_postings *p, uint32_t k) {
  p->cur = p->base + p->sk[k].offset;
  p->prev = k ? p->sk[k - 1].last_doc : UINT32_MAX;
  p->n = (k + 1 < p->t->nskips) ? QI_BLOCK_SIZE : p->t->df - k * QI_BLOCK_SIZE;
  p->dec = 0;
  p->blk = k;
  if (p->pos_base) {
    p->pos_cur = p->pos_base + p->sk[k].pos_offset;
    p->pos_idx = 0;
  }
}

/* Decode the loaded block's next posting (dec < n). */
static inline void decode1(qi_postings *p) {
  uint64_t v, fq;
  const uint8_t *s = qi__get_varint(p->cur, &v);
  uint32_t j = p->dec++;
  p->docs[j] = p->prev += (uint32_t)(v >> 1);
  if (v & 1) {
    p->freqs[j] = 1;
  } else {
    s = qi__get_varint(s, &fq);
    p->freqs[j] = (uint32_t)fq;
  }
  p->cur = s;
}

static inline int live(const qi_postings *p, uint32_t d) {
  return !p->live || (p->live[d >> 6] >> (d & 63)) & 1;
}

uint32_t qi_postings_next(qi_postings *p) {
  for (;;) {
    if (p->blk != UINT32_MAX && p->i + 1 < p->n) {
      if (++p->i == p->dec) decode1(p);
    } else {
      uint32_t k = p->blk == UINT32_MAX ? 0 : p->blk + 1;
      if (k >= p->t->nskips) {
        p->blk = p->t->nskips;
        p->n = p->i = 0;
        p->freq = 0;
        return p->doc = QI_NO_MORE_DOCS;
      }
      load(p, k);
      p->i = 0;
      decode1(p);
    }
    p->doc = p->docs[p->i];
    p->freq = p->freqs[p->i];
    if (live(p, p->doc)) return p->doc;
  }
}

uint32_t qi_postings_advance(qi_postings *p, uint32_t target) {
  uint32_t k, nsk = p->t->nskips;
  if (p->blk != UINT32_MAX && p->doc != QI_NO_MORE_DOCS && p->doc >= target) return p->doc;
  if (p->blk != UINT32_MAX && p->blk >= nsk) return QI_NO_MORE_DOCS;
  k = p->blk == UINT32_MAX ? 0 : p->blk;
  if (p->sk[k].last_doc < target) {
    /* gallop then binary search over the skip entries */
    uint32_t lo = k + 1, hi, step = 1;
    while (lo + step < nsk && p->sk[lo + step].last_doc < target) {
      lo += step;
      step *= 2;
    }
    hi = lo + step < nsk ? lo + step : nsk;
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      if (p->sk[mid].last_doc < target) lo = mid + 1;
      else hi = mid;
    }
    k = lo;
    if (k >= nsk) {
      p->blk = nsk;
      p->n = p->i = 0;
      p->freq = 0;
      return p->doc = QI_NO_MORE_DOCS;
    }
  }
  if (k != p->blk) {
    load(p, k);
    p->i = 0;
    decode1(p);
  }
  while (p->docs[p->i] < target) /* the block's last doc is >= target */
    if (++p->i == p->dec) decode1(p);
  p->doc = p->docs[p->i];
  p->freq = p->freqs[p->i];
  if (live(p, p->doc)) return p->doc;
  return qi_postings_next(p);
}

uint32_t qi_postings_doc(const qi_postings *p) { return p->doc; }
uint32_t qi_postings_freq(const qi_postings *p) { return p->freq; }
uint32_t qi_postings_doc_freq(const qi_postings *p) { return p->t->df; }

uint32_t qi_postings_positions(qi_postings *p, uint32_t *out, uint32_t max) {
  const uint8_t *q;
  uint64_t v;
  uint32_t j, n, pos = 0;
  if (!p->pos_base || p->blk == UINT32_MAX || p->blk >= p->t->nskips) return 0;
  /* skip the positions of the block's earlier documents (lazily: only when asked). A varint
  ** ends at a byte below 0x80, so skipping K of them is counting K such bytes, eight at a time
  ** while at least eight remain (then the eight bytes read all belong to them) */
  uint64_t need = 0;
  for (; p->pos_idx < p->i; p->pos_idx++) need += p->freqs[p->pos_idx];
  q = p->pos_cur;
  while (need >= 8) {
    uint64_t w;
    memcpy(&w, q, 8);
    need -= (uint64_t)__builtin_popcountll(~w & 0x8080808080808080ull);
    q += 8;
  }
  for (; need; q++) need -= !(*q & 0x80);
  p->pos_cur = q;
  n = p->freqs[p->i];
  q = p->pos_cur;
  for (j = 0; j < n; j++) {
    q = qi__get_varint(q, &v);
    pos += (uint32_t)v;
    if (j < max) out[j] = pos;
  }
  return n;
}

static void info(const qi__skip *s, qi_block_info *out) {
  out->first_doc = s->first_doc;
  out->last_doc = s->last_doc;
  out->max_freq = s->max_freq;
  out->min_norm = s->min_norm;
}

int qi_postings_block_for(const qi_postings *p, uint32_t target, qi_block_info *out) {
  uint32_t lo = (p->blk == UINT32_MAX || p->blk >= p->t->nskips) ? 0 : p->blk, hi = p->t->nskips;
  if (lo < hi && p->sk[lo].last_doc >= target && (lo == 0 || p->sk[lo - 1].last_doc < target)) {
    info(&p->sk[lo], out);
    return 1;
  }
  if (lo < hi && p->sk[lo].last_doc >= target) lo = 0;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (p->sk[mid].last_doc < target) lo = mid + 1;
    else hi = mid;
  }
  if (lo >= p->t->nskips) return 0;
  info(&p->sk[lo], out);
  return 1;
}

void qi_postings_term_bound(const qi_postings *p, qi_block_info *out) {
  out->first_doc = p->sk[0].first_doc;
  out->last_doc = p->sk[p->t->nskips - 1].last_doc;
  out->max_freq = p->t->max_freq;
  out->min_norm = p->t->min_norm;
}

uint32_t qi_postings_block_count(const qi_postings *p) { return p->t->nskips; }

void qi_postings_block(const qi_postings *p, uint32_t i, qi_block_info *out) {
  if (i >= p->t->nskips) {
    memset(out, 0, sizeof *out);
    return;
  }
  info(&p->sk[i], out);
}
