/* builder.c: the in-memory buffer. Documents are inverted as they arrive: each (field, term)
** gets a postings builder whose bytes are already in the final block format (delta varints,
** blocks of QI_BLOCK_SIZE with skip data), plus columns for norms and doc values. Freezing
** sorts the term dictionaries and copies everything into one arena: an immutable qi__seg.
** Invariant: documents are added in increasing local doc number, so deltas are >= 1. */
#define _GNU_SOURCE /* qsort_r */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct pb {
  uint8_t *bytes;
  uint32_t len, cap;
  uint32_t df, last_doc;
  uint64_t ttf;
  uint32_t cur_doc, cur_freq; /* the document being counted; cur_doc UINT32_MAX = none */
  qi__skip *skips;            /* finished blocks (only once df > QI_BLOCK_SIZE) */
  uint32_t nskips, skcap;
  uint32_t blk_first, blk_off, blk_max, blk_n;
  uint8_t blk_min_norm, min_norm;
  uint32_t max_freq;
  uint32_t field;
  uint32_t term_off, term_len; /* in b->terms */
  uint8_t *pos;                /* positions stream (text fields) */
  uint32_t pos_len, pos_cap, blk_pos_off;
} pb;

typedef struct fb {
  uint8_t *norms;
  size_t ncap;
  int64_t *i64;
  double *f64;
  uint8_t *present;
  size_t dvcap, pcap; /* elements allocated in i64/f64, in present */
  uint32_t *kw; /* (doc, pb) pairs in doc order */
  size_t nkw, kwcap;
  uint64_t doc_count, sum_ttf, sum_df;
  uint32_t cur_len;   /* tokens of the current document */
  uint32_t pos_base;  /* position of the current value's first token (multi-valued: +100 gap) */
  uint32_t pos_next;  /* one past the last position used in the current document */
  uint8_t touched;    /* has tokens in the current document */
  uint8_t used;       /* occurs in this buffer */
  qi_dv_kind dv;
} fb;

struct qi__builder {
  uint32_t seg_no, ndocs;
  pb *pbs;
  size_t npb, pbcap;
  uint32_t *hash; /* pb index + 1, 0 = empty */
  size_t hcap;    /* power of two */
  char *terms;
  size_t tlen, tcap;
  fb *fields;
  size_t nfields, fcap;
  /* per-document */
  uint32_t *touched; /* pb indexes seen in the current document */
  size_t ntouched, tocap;
  uint64_t *dpos;    /* (pb << 32 | position) of the current document's text tokens */
  size_t ndpos, dposcap;
  /* documents */
  char *ids;
  size_t idlen, idcap;
  uint32_t *id_off;
  size_t id_offcap;
  uint64_t *seq, *ver;
  size_t seqcap, vercap;
};

static uint64_t hash_term(uint32_t field, const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull ^ field;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

qi__builder *qi__builder_new(uint32_t seg_no) {
  qi__builder *b = qb_calloc(1, sizeof *b);
  if (!b) return NULL;
  b->seg_no = seg_no;
  b->hcap = 1024;
  if (!(b->hash = qb_calloc(b->hcap, sizeof *b->hash))) {
    qb_free(b, sizeof *b);
    return NULL;
  }
  return b;
}

void qi__builder_free(qi__builder *b) {
  size_t i;
  if (!b) return;
  for (i = 0; i < b->npb; i++) {
    qb_free(b->pbs[i].bytes, b->pbs[i].cap);
    qb_free(b->pbs[i].skips, b->pbs[i].skcap * sizeof(qi__skip));
    qb_free(b->pbs[i].pos, b->pbs[i].pos_cap);
  }
  for (i = 0; i < b->fcap; i++) {
    fb *f = &b->fields[i];
    qb_free(f->norms, f->ncap);
    qb_free(f->i64, f->dvcap * sizeof *f->i64);
    qb_free(f->f64, f->dvcap * sizeof *f->f64);
    qb_free(f->present, f->pcap);
    qb_free(f->kw, f->kwcap * sizeof *f->kw);
  }
  qb_free(b->fields, b->fcap * sizeof *b->fields);
  qb_free(b->pbs, b->pbcap * sizeof *b->pbs);
  qb_free(b->hash, b->hcap * sizeof *b->hash);
  qb_free(b->terms, b->tcap);
  qb_free(b->touched, b->tocap * sizeof *b->touched);
  qb_free(b->dpos, b->dposcap * sizeof *b->dpos);
  qb_free(b->ids, b->idcap);
  qb_free(b->id_off, b->id_offcap * sizeof *b->id_off);
  qb_free(b->seq, b->seqcap * sizeof *b->seq);
  qb_free(b->ver, b->vercap * sizeof *b->ver);
  qb_free(b, sizeof *b);
}

uint32_t qi__builder_docs(const qi__builder *b) { return b->ndocs; }

static qb_code rehash(qi__builder *b) {
  size_t ncap = b->hcap * 2, i;
  uint32_t *h = qb_calloc(ncap, sizeof *h);
  if (!h) return QB_NOMEM;
  for (i = 0; i < b->npb; i++) {
    pb *p = &b->pbs[i];
    size_t k = hash_term(p->field, b->terms + p->term_off, p->term_len) & (ncap - 1);
    while (h[k]) k = (k + 1) & (ncap - 1);
    h[k] = (uint32_t)i + 1;
  }
  qb_free(b->hash, b->hcap * sizeof *b->hash);
  b->hash = h;
  b->hcap = ncap;
  return QB_OK;
}

/* The postings builder of (FIELD, TERM), created when new. */
static pb *term_pb(qi__builder *b, uint32_t field, const char *s, size_t n, uint32_t *idx) {
  size_t k = hash_term(field, s, n) & (b->hcap - 1);
  uint32_t e;
  pb *p;
  while ((e = b->hash[k])) {
    p = &b->pbs[e - 1];
    if (p->field == field && p->term_len == n && !memcmp(b->terms + p->term_off, s, n)) {
      *idx = e - 1;
      return p;
    }
    k = (k + 1) & (b->hcap - 1);
  }
  if (b->npb >= UINT32_MAX - 1 || b->tlen + n > UINT32_MAX) return NULL;
  if (qi__grow((void **)&b->pbs, &b->pbcap, b->npb + 1, sizeof *b->pbs)) return NULL;
  if (qi__grow((void **)&b->terms, &b->tcap, b->tlen + n + 1, 1)) return NULL;
  p = &b->pbs[b->npb];
  memset(p, 0, sizeof *p);
  p->field = field;
  p->term_off = (uint32_t)b->tlen;
  p->term_len = (uint32_t)n;
  p->cur_doc = UINT32_MAX;
  p->min_norm = 255;
  qi__cpy(b->terms + b->tlen, s, n);
  b->tlen += n;
  b->hash[k] = (uint32_t)b->npb + 1;
  *idx = (uint32_t)b->npb;
  b->npb++;
  if (b->npb * 2 > b->hcap && rehash(b)) return NULL;
  return &b->pbs[*idx];
}

static qb_code post_add(pb *p, uint32_t doc, uint32_t freq, uint8_t norm) {
  uint8_t tmp[24];
  size_t n;
  uint32_t delta = doc - (p->df ? p->last_doc : UINT32_MAX);
  if (!p->blk_n) {
    p->blk_first = doc;
    p->blk_off = p->len;
    p->blk_pos_off = p->pos_len;
    p->blk_max = 0;
    p->blk_min_norm = 255;
  }
  n = qi__put_varint(tmp, ((uint64_t)delta << 1) | (freq == 1));
  if (freq != 1) n += qi__put_varint(tmp + n, freq);
  if (p->len + n > p->cap) {
    size_t cap = p->cap;
    if (qi__grow((void **)&p->bytes, &cap, p->len + n, 1)) return QB_NOMEM;
    if (cap > UINT32_MAX) return QB_NOMEM;
    p->cap = (uint32_t)cap;
  }
  qi__cpy(p->bytes + p->len, tmp, n);
  p->len += (uint32_t)n;
  if (freq > p->blk_max) p->blk_max = freq;
  if (norm && norm < p->blk_min_norm) p->blk_min_norm = norm;
  if (freq > p->max_freq) p->max_freq = freq;
  if (norm && norm < p->min_norm) p->min_norm = norm;
  p->df++;
  p->ttf += freq;
  p->last_doc = doc;
  if (++p->blk_n == QI_BLOCK_SIZE) {
    size_t cap = p->skcap;
    if (qi__grow((void **)&p->skips, &cap, p->nskips + 1, sizeof *p->skips)) return QB_NOMEM;
    p->skcap = (uint32_t)cap;
    p->skips[p->nskips++] = (qi__skip){p->blk_first, doc, p->blk_off, p->blk_max,
                                       p->blk_min_norm == 255 ? 1 : p->blk_min_norm,
                                       p->blk_pos_off};
    p->blk_n = 0;
  }
  return QB_OK;
}

static fb *field_b(qi__builder *b, uint32_t id, qi_dv_kind dv) {
  if (qi__grow((void **)&b->fields, &b->fcap, (size_t)id + 1, sizeof *b->fields)) return NULL;
  if (b->nfields <= id) b->nfields = (size_t)id + 1;
  b->fields[id].dv = dv;
  b->fields[id].used = 1;
  return &b->fields[id];
}

typedef struct tokctx {
  qi__builder *b;
  const qi__field *f;
  fb *fb;
  uint32_t doc;
} tokctx;

static qb_code on_token(void *ud, const qi_token *t, qb_err *err) {
  tokctx *c = ud;
  qi__builder *b = c->b;
  uint32_t idx;
  pb *p = term_pb(b, c->f->id, t->term, t->len, &idx);
  if (!p) return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
  if (p->cur_doc != c->doc) {
    p->cur_doc = c->doc;
    p->cur_freq = 1;
    if (qi__grow((void **)&b->touched, &b->tocap, b->ntouched + 1, sizeof *b->touched))
      return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
    b->touched[b->ntouched++] = idx;
    if (c->f->dv == QI_DV_KEYWORD) {
      fb *f = c->fb;
      if (qi__grow((void **)&f->kw, &f->kwcap, f->nkw + 2, sizeof *f->kw))
        return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
      f->kw[f->nkw++] = c->doc;
      f->kw[f->nkw++] = idx;
    }
  } else if (c->f->type != QI_KEYWORD) {
    p->cur_freq++;
  }
  if (c->f->has_norms) { /* text: keep the position */
    uint32_t pos = c->fb->pos_base + t->position;
    if (qi__grow((void **)&b->dpos, &b->dposcap, b->ndpos + 1, sizeof *b->dpos))
      return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
    b->dpos[b->ndpos++] = (uint64_t)idx << 32 | pos;
    if (pos + 1 > c->fb->pos_next) c->fb->pos_next = pos + 1;
  }
  c->fb->cur_len++;
  c->fb->touched = 1;
  return QB_OK;
}

static qb_code set_dv(fb *f, uint32_t doc, const qi__value *v) {
  size_t need = (size_t)doc + 1;
  if (need > f->dvcap || need > f->pcap) {
    if (f->dv == QI_DV_F64) {
      if (qi__grow((void **)&f->f64, &f->dvcap, need, sizeof *f->f64)) return QB_NOMEM;
    } else if (qi__grow((void **)&f->i64, &f->dvcap, need, sizeof *f->i64)) {
      return QB_NOMEM;
    }
    if (qi__grow((void **)&f->present, &f->pcap, need, 1)) return QB_NOMEM;
  }
  if (f->dv == QI_DV_F64) {
    double d = v->is_float ? v->f : (double)v->i;
    if (!f->present[doc] || d < f->f64[doc]) f->f64[doc] = d;
  } else {
    if (!f->present[doc] || v->i < f->i64[doc]) f->i64[doc] = v->i;
  }
  f->present[doc] = 1;
  return QB_OK;
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

qb_code qi__builder_add(qi__builder *b, const qi__mapping *m, const qi__parsed *p, const char *id,
                        uint64_t seq, uint64_t ver, qb_err *err) {
  uint32_t doc = b->ndocs;
  size_t i, idl = strlen(id);
  qb_code rc;
  tokctx c;
  /* document metadata */
  if (qi__grow((void **)&b->ids, &b->idcap, b->idlen + idl + 1, 1) ||
      qi__grow((void **)&b->id_off, &b->id_offcap, (size_t)doc + 2, sizeof *b->id_off) ||
      qi__grow((void **)&b->seq, &b->seqcap, (size_t)doc + 1, sizeof *b->seq) ||
      qi__grow((void **)&b->ver, &b->vercap, (size_t)doc + 1, sizeof *b->ver))
    return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
  if (b->idlen + idl + 1 > UINT32_MAX) return qb_fail(err, QB_LIMIT, "index buffer: too large");
  b->id_off[doc] = (uint32_t)b->idlen;
  qi__cpy(b->ids + b->idlen, id, idl + 1);
  b->idlen += idl + 1;
  b->id_off[doc + 1] = (uint32_t)b->idlen;
  b->seq[doc] = seq;
  b->ver[doc] = ver;
  b->ntouched = 0;
  b->ndpos = 0;
  c.b = b;
  c.doc = doc;
  for (i = 0; i < p->nvals; i++) {
    const qi__value *v = &p->vals[i];
    const qi__field *f = m->fields[v->field];
    fb *fbp = field_b(b, f->id, f->dv);
    if (!fbp) return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
    if (f->indexed) {
      c.f = f;
      c.fb = fbp;
      /* Elasticsearch's position_increment_gap: values of one field are 100 positions apart */
      fbp->pos_base = fbp->pos_next ? fbp->pos_next + 100 : 0;
      if ((rc = f->analyzer == QI_ANALYZER_CHAIN
                    ? qi_chain_analyze(f->ichain, v->s, v->len, on_token, &c, err)
                    : qi_analyze(f->analyzer, v->s, v->len, on_token, &c, err))) {
        qb_wrap(err, "field [%s]: ", f->name);
        return rc;
      }
    }
    if ((f->dv == QI_DV_I64 || f->dv == QI_DV_F64) && set_dv(fbp, doc, v))
      return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
  }
  /* postings of this document, with the field's norm */
  for (i = 0; i < b->ntouched; i++) {
    pb *t = &b->pbs[b->touched[i]];
    fb *f = &b->fields[t->field];
    uint8_t norm = f->dv == QI_DV_KEYWORD ? 1 : qi_smallfloat_int_to_byte4(f->cur_len);
    if (post_add(t, doc, t->cur_freq, norm)) return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
    f->sum_df++;
    if (f->dv == QI_DV_KEYWORD) f->sum_ttf++;
  }
  /* positions, grouped by term in position order, appended after each term's posting */
  if (b->ndpos) {
    size_t k = 0;
    qsort(b->dpos, b->ndpos, sizeof *b->dpos, cmp_u64);
    while (k < b->ndpos) {
      uint32_t idx = (uint32_t)(b->dpos[k] >> 32), prev = 0;
      pb *t = &b->pbs[idx];
      for (; k < b->ndpos && (uint32_t)(b->dpos[k] >> 32) == idx; k++) {
        uint32_t pos = (uint32_t)b->dpos[k];
        uint8_t tmp[8];
        size_t n = qi__put_varint(tmp, pos - prev);
        prev = pos;
        if (t->pos_len + n > t->pos_cap) {
          size_t cap = t->pos_cap;
          if (qi__grow((void **)&t->pos, &cap, t->pos_len + n, 1) || cap > UINT32_MAX)
            return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
          t->pos_cap = (uint32_t)cap;
        }
        memcpy(t->pos + t->pos_len, tmp, n);
        t->pos_len += (uint32_t)n;
      }
    }
  }
  for (i = 0; i < b->nfields; i++) {
    fb *f = &b->fields[i];
    if (!f->touched) continue;
    f->touched = 0;
    f->doc_count++;
    if (f->dv != QI_DV_KEYWORD) {
      size_t cap = f->ncap;
      f->sum_ttf += f->cur_len;
      if (qi__grow((void **)&f->norms, &cap, (size_t)doc + 1, 1))
        return qb_fail(err, QB_NOMEM, "index buffer: out of memory");
      f->ncap = cap;
      f->norms[doc] = qi_smallfloat_int_to_byte4(f->cur_len);
    }
    f->cur_len = 0;
  }
  for (i = 0; i < b->nfields; i++) b->fields[i].pos_next = 0;
  b->ndocs++;
  return QB_OK;
}

/* ---- freeze ---------------------------------------------------------------------------------- */

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

/* Sorting terms: each carries its first 8 bytes as a big-endian key (zero-padded, which orders
** as memcmp-then-length does), so most comparisons are one integer compare; ties go to the
** bytes. Terms are sorted as (key, index) pairs, which keeps the sort in cache. */
typedef struct skey {
  uint64_t key;
  uint32_t idx;
} skey;

static int cmp_skey(const void *x, const void *y, void *arg) {
  const skey *a = x, *c = y;
  const qi__builder *b = arg;
  if (a->key != c->key) return a->key < c->key ? -1 : 1;
  const pb *p = &b->pbs[a->idx], *q = &b->pbs[c->idx];
  uint32_t n = p->term_len < q->term_len ? p->term_len : q->term_len;
  int r = memcmp(b->terms + p->term_off, b->terms + q->term_off, n);
  if (r) return r;
  return p->term_len < q->term_len ? -1 : p->term_len > q->term_len;
}

/* Sort the builder indexes IDX (N of them) by term bytes; KEYS has room for N. */
static void sort_terms(const qi__builder *b, uint32_t *idx, size_t n, skey *keys) {
  size_t i, k;
  for (i = 0; i < n; i++) {
    const pb *p = &b->pbs[idx[i]];
    const uint8_t *t = (const uint8_t *)b->terms + p->term_off;
    uint64_t key = 0;
    for (k = 0; k < 8; k++) key = key << 8 | (k < p->term_len ? t[k] : 0);
    keys[i] = (skey){key, idx[i]};
  }
  qsort_r(keys, n, sizeof *keys, cmp_skey, (void *)b);
  for (i = 0; i < n; i++) idx[i] = keys[i].idx;
}

qb_code qi__builder_freeze(qi__builder *b, uint32_t nfields, qi__seg **out, qb_err *err) {
  qi__seg *s;
  uint32_t *idx = NULL, *ord_of = NULL, *cnt = NULL;
  skey *keys = NULL;
  size_t *start = NULL;
  size_t i, f, nd = b->ndocs;
  *out = NULL;
  if (!b->ndocs) return QB_OK;
  if (b->nfields > nfields) nfields = (uint32_t)b->nfields;
  if (!(s = qb_calloc(1, sizeof *s))) return qb_fail(err, QB_NOMEM, "freeze: out of memory");
  qb_arena_init(&s->arena);
  atomic_init(&s->refs, 1);
  s->seg_no = b->seg_no;
  s->max_doc = b->ndocs;
  s->nfields = nfields;
  if (!(s->f = qb_arena_array(&s->arena, nfields ? nfields : 1, sizeof *s->f))) goto oom;
  /* documents */
  if (!(s->id_off = qb_arena_array(&s->arena, nd + 1, sizeof *s->id_off)) ||
      !(s->ids = qb_arena_alloc(&s->arena, b->idlen)) ||
      !(s->seq = qb_arena_array(&s->arena, nd, sizeof *s->seq)) ||
      !(s->ver = qb_arena_array(&s->arena, nd, sizeof *s->ver)))
    goto oom;
  qi__cpy(s->id_off, b->id_off, (nd + 1) * sizeof *s->id_off);
  qi__cpy(s->ids, b->ids, b->idlen);
  qi__cpy(s->seq, b->seq, nd * sizeof *s->seq);
  qi__cpy(s->ver, b->ver, nd * sizeof *s->ver);
  /* group builder terms by field */
  if (!(idx = qb_malloc((b->npb + 1) * sizeof *idx)) ||
      !(ord_of = qb_malloc((b->npb + 1) * sizeof *ord_of)) ||
      !(keys = qb_malloc((b->npb + 1) * sizeof *keys)) ||
      !(cnt = qb_calloc(nfields + 1, sizeof *cnt)) ||
      !(start = qb_calloc(nfields + 2, sizeof *start)))
    goto oom;
  for (i = 0; i < b->npb; i++) cnt[b->pbs[i].field]++;
  for (f = 0; f < nfields; f++) start[f + 1] = start[f] + cnt[f];
  for (f = 0; f < nfields; f++) cnt[f] = 0;
  for (i = 0; i < b->npb; i++) {
    uint32_t fl = b->pbs[i].field;
    idx[start[fl] + cnt[fl]++] = (uint32_t)i;
  }
  for (f = 0; f < nfields && f < b->nfields; f++) {
    fb *fbp = &b->fields[f];
    qi__fseg *fs = &s->f[f];
    uint32_t *ti = idx + start[f], nt = (uint32_t)(start[f + 1] - start[f]), t;
    size_t tbytes = 0, pbytes = 0, nsk = 0, toff = 0, poff = 0, skoff = 0, posbytes = 0, posoff = 0;
    if (!fbp->used) continue;
    fs->present = 1;
    fs->dv = fbp->dv;
    fs->doc_count = fbp->doc_count;
    fs->sum_ttf = fbp->sum_ttf;
    fs->sum_df = fbp->sum_df;
    if (nt) {
      sort_terms(b, ti, nt, keys);
      for (t = 0; t < nt; t++) {
        pb *p = &b->pbs[ti[t]];
        ord_of[ti[t]] = t;
        tbytes += p->term_len;
        pbytes += p->len;
        posbytes += p->pos_len;
        nsk += p->nskips + (p->blk_n ? 1 : 0);
      }
      if (pbytes > UINT32_MAX * (size_t)16) goto oom;
      fs->nterms = nt;
      if (!(fs->term_off = qb_arena_array(&s->arena, (size_t)nt + 1, sizeof *fs->term_off)) ||
          !(fs->term_bytes = qb_arena_alloc(&s->arena, tbytes + 1)) ||
          !(fs->terms = qb_arena_array(&s->arena, nt, sizeof *fs->terms)) ||
          !(fs->post = qb_arena_alloc(&s->arena, pbytes + 8)) ||
          !(fs->skips = qb_arena_array(&s->arena, nsk, sizeof *fs->skips)) ||
          (posbytes && !(fs->pos = qb_arena_alloc(&s->arena, posbytes))))
        goto oom;
      fs->pos_len = posbytes;
      for (t = 0; t < nt; t++) {
        pb *p = &b->pbs[ti[t]];
        qi__term *te = &fs->terms[t];
        fs->term_off[t] = (uint32_t)toff;
        qi__cpy(fs->term_bytes + toff, b->terms + p->term_off, p->term_len);
        toff += p->term_len;
        te->post_off = poff;
        te->pos_off = posoff;
        if (p->pos_len) memcpy(fs->pos + posoff, p->pos, p->pos_len);
        posoff += p->pos_len;
        te->ttf = p->ttf;
        te->df = p->df;
        te->skip = (uint32_t)skoff;
        te->max_freq = p->max_freq;
        te->min_norm = p->min_norm == 255 ? 1 : p->min_norm;
        qi__cpy(fs->post + poff, p->bytes, p->len);
        poff += p->len;
        qi__cpy(fs->skips + skoff, p->skips, p->nskips * sizeof *p->skips);
        skoff += p->nskips;
        if (p->blk_n)
          fs->skips[skoff++] = (qi__skip){p->blk_first, p->last_doc, p->blk_off, p->blk_max,
                                          p->blk_min_norm == 255 ? 1 : p->blk_min_norm,
                                          p->blk_pos_off};
        te->nskips = (uint32_t)(skoff - te->skip);
      }
      fs->term_off[nt] = (uint32_t)toff;
      fs->post_len = poff;
    }
    if (fbp->norms) {
      if (!(fs->norms = qb_arena_alloc(&s->arena, nd))) goto oom;
      qi__cpy(fs->norms, fbp->norms, fbp->ncap < nd ? fbp->ncap : nd);
    }
    if (fbp->dv == QI_DV_I64 || fbp->dv == QI_DV_F64) {
      size_t have = fbp->dvcap < nd ? fbp->dvcap : nd;
      if (fbp->pcap < have) have = fbp->pcap;
      if (!(fs->dv_present = qb_arena_alloc(&s->arena, nd))) goto oom;
      qi__cpy(fs->dv_present, fbp->present, have);
      if (fbp->dv == QI_DV_I64) {
        if (!(fs->i64 = qb_arena_array(&s->arena, nd, sizeof *fs->i64))) goto oom;
        qi__cpy(fs->i64, fbp->i64, have * sizeof *fs->i64);
      } else {
        if (!(fs->f64 = qb_arena_array(&s->arena, nd, sizeof *fs->f64))) goto oom;
        qi__cpy(fs->f64, fbp->f64, have * sizeof *fs->f64);
      }
    } else if (fbp->dv == QI_DV_KEYWORD) {
      /* pairs are in doc order: count, fill, then sort + dedupe each doc's ordinals */
      size_t k, w = 0;
      if (!(fs->ord_off = qb_arena_array(&s->arena, nd + 1, sizeof *fs->ord_off)) ||
          !(fs->ords = qb_arena_array(&s->arena, fbp->nkw / 2 + 1, sizeof *fs->ords)))
        goto oom;
      for (k = 0; k < fbp->nkw; k += 2) fs->ord_off[fbp->kw[k] + 1]++;
      for (k = 0; k < nd; k++) fs->ord_off[k + 1] += fs->ord_off[k];
      for (k = 0; k < fbp->nkw; k += 2) fs->ords[k / 2] = ord_of[fbp->kw[k + 1]];
      for (k = 0; k < nd; k++) {
        uint32_t a = fs->ord_off[k], e = fs->ord_off[k + 1], j;
        qsort(fs->ords + a, e - a, sizeof *fs->ords, cmp_u32);
        fs->ord_off[k] = (uint32_t)w;
        for (j = a; j < e; j++)
          if (j == a || fs->ords[j] != fs->ords[j - 1]) fs->ords[w++] = fs->ords[j];
      }
      fs->ord_off[nd] = (uint32_t)w;
    }
  }
  if (qi__seg_finish(s, 0)) goto oom;
  qb_free(idx, (b->npb + 1) * sizeof *idx);
  qb_free(ord_of, (b->npb + 1) * sizeof *ord_of);
  qb_free(keys, (b->npb + 1) * sizeof *keys);
  qb_free(cnt, (nfields + 1) * sizeof *cnt);
  qb_free(start, (nfields + 2) * sizeof *start);
  *out = s;
  return QB_OK;
oom:
  qb_free(idx, (b->npb + 1) * sizeof *idx);
  qb_free(ord_of, (b->npb + 1) * sizeof *ord_of);
  qb_free(keys, (b->npb + 1) * sizeof *keys);
  qb_free(cnt, (nfields + 1) * sizeof *cnt);
  qb_free(start, (nfields + 2) * sizeof *start);
  qb_arena_fini(&s->arena);
  qb_free(s, sizeof *s);
  return qb_fail(err, QB_NOMEM, "freeze: out of memory");
}

/* ---- segment lifetime and term lookup --------------------------------------------------------- */

qi__seg *qi__seg_retain(qi__seg *s) {
  qi__ref(&s->refs);
  return s;
}

void qi__seg_release(qi__seg *s) {
  if (!s || !qi__unref(&s->refs)) return;
  if (s->map) munmap(s->map, s->map_len);
  qb_arena_fini(&s->arena);
  qb_free(s, sizeof *s);
}

static int cmp_term(const qi__fseg *f, uint32_t ord, const char *t, size_t n) {
  const char *a = f->term_bytes + f->term_off[ord];
  size_t an = f->term_off[ord + 1] - f->term_off[ord], m = an < n ? an : n;
  int r = m ? memcmp(a, t, m) : 0;
  if (r) return r;
  return an < n ? -1 : an > n;
}

uint32_t qi__fseg_seek(const qi__fseg *f, const char *term, size_t len) {
  uint32_t lo = 0, hi = f->nterms;
  if (f->sample) { /* the stretch between the last sample keyed below TERM's key and the first
                   ** keyed above it: every term before is less, every term after greater */
    uint64_t key = qi__term_key(term, len);
    uint32_t a = 0, z = f->nsample;
    while (a < z) { /* the first sample keyed >= KEY */
      uint32_t mid = a + (z - a) / 2;
      if (f->sample[mid] < key) a = mid + 1;
      else z = mid;
    }
    uint32_t b = a;
    z = f->nsample;
    while (b < z) { /* the first sample keyed > KEY */
      uint32_t mid = b + (z - b) / 2;
      if (f->sample[mid] <= key) b = mid + 1;
      else z = mid;
    }
    lo = a ? (a - 1) * QI__TERM_SAMPLE + 1 : 0;
    hi = b < f->nsample ? b * QI__TERM_SAMPLE : f->nterms;
  }
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (cmp_term(f, mid, term, len) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

int64_t qi__fseg_find(const qi__fseg *f, const char *term, size_t len) {
  uint32_t o = qi__fseg_seek(f, term, len);
  return (o < f->nterms && !cmp_term(f, o, term, len)) ? (int64_t)o : -1;
}

qi__live *qi__live_new(uint32_t max_doc, const uint64_t *copy_from) {
  size_t nw = ((size_t)max_doc + 63) / 64;
  qi__live *l = qb_malloc(sizeof *l + nw * sizeof(uint64_t));
  size_t i;
  if (!l) return NULL;
  atomic_init(&l->refs, 1);
  l->nwords = nw;
  l->ndel = 0;
  if (copy_from) {
    qi__cpy(l->bits, copy_from, nw * sizeof(uint64_t));
  } else {
    for (i = 0; i < nw; i++) l->bits[i] = ~0ull;
    if (max_doc % 64) l->bits[nw - 1] = (1ull << (max_doc % 64)) - 1;
  }
  return l;
}

void qi__live_release(qi__live *l) {
  if (!l || !qi__unref(&l->refs)) return;
  qb_free(l, sizeof *l + l->nwords * sizeof(uint64_t));
}
