/* segment.c: read-side accessors of snapshots and segments: fields, statistics, term
** dictionaries, document metadata and the _id lookup table, norms and doc values (block reads
** over plain arrays). Everything here reads immutable data and takes no lock; the _id table is
** built once, before its segment is published (qi__seg_index_ids), and stored in its file. */
#include "internal.h"

#include <math.h>
#include <string.h>

static const qi__fseg *fseg(const qi_segment *seg, uint32_t field) {
  const qi__fseg *f;
  if (field >= seg->core->nfields) return NULL;
  f = &seg->core->f[field];
  return f->present ? f : NULL;
}

/* ---- snapshot -------------------------------------------------------------------------------- */

qi_snapshot *qi_snapshot_retain(qi_snapshot *s) {
  qi__ref(&s->refs);
  qi_index_retain(s->ix);
  return s;
}

uint64_t qi_snapshot_doc_count(const qi_snapshot *s) { return s->live_docs; }
uint64_t qi_snapshot_max_doc(const qi_snapshot *s) { return s->max_doc; }
size_t qi_snapshot_segment_count(const qi_snapshot *s) { return s->nseg; }
const qi_segment *qi_snapshot_segment(const qi_snapshot *s, size_t i) {
  return i < s->nseg ? &s->segs[i] : NULL;
}
uint64_t qi_snapshot_doc_base(const qi_snapshot *s, size_t i) {
  return i < s->nseg ? s->base[i] : s->max_doc;
}

static void fill_info(const qi__field *f, qi_field_info *out) {
  out->name = f->name;
  out->id = f->id;
  out->type = f->type;
  out->analyzer = f->analyzer;
  out->dv = f->dv;
  out->indexed = f->indexed;
  out->has_norms = f->has_norms;
  out->has_positions = f->has_norms; /* text fields */
  out->index_chain = f->analyzer == QI_ANALYZER_CHAIN ? f->ichain : NULL;
  out->search_chain = f->analyzer == QI_ANALYZER_CHAIN ? f->schain : NULL;
}

qb_code qi_snapshot_field(const qi_snapshot *s, const char *name, qi_field_info *out) {
  size_t i;
  for (i = 0; i < s->nfields; i++)
    if (!strcmp(s->fields[i]->name, name)) {
      fill_info(s->fields[i], out);
      return QB_OK;
    }
  return QB_NOTFOUND;
}

size_t qi_snapshot_field_count(const qi_snapshot *s) { return s->nfields; }

qb_code qi_snapshot_field_by_id(const qi_snapshot *s, uint32_t id, qi_field_info *out) {
  if (id >= s->nfields) return QB_NOTFOUND;
  fill_info(s->fields[id], out);
  return QB_OK;
}

void qi_snapshot_field_stats(const qi_snapshot *s, uint32_t field, qi_field_stats *out) {
  if (field >= s->nfields) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = s->stats[field];
}

uint64_t qi_snapshot_doc_freq_ords(const qi_snapshot *s, uint32_t field, const char *term, size_t len,
                                   int64_t *ords) {
  uint64_t n = 0;
  for (size_t i = 0; i < s->nseg; i++) {
    const qi__fseg *f = fseg(&s->segs[i], field);
    int64_t o = f ? qi__fseg_find(f, term, len) : -1;
    if (o >= 0) n += f->terms[o].df;
    if (ords) ords[i] = o;
  }
  return n;
}

uint64_t qi_snapshot_doc_freq(const qi_snapshot *s, uint32_t field, const char *term,
                              size_t len) {
  return qi_snapshot_doc_freq_ords(s, field, term, len, NULL);
}

/* ---- segment --------------------------------------------------------------------------------- */

uint32_t qi_segment_max_doc(const qi_segment *seg) { return seg->core->max_doc; }
uint32_t qi_segment_live_count(const qi_segment *seg) {
  return seg->core->max_doc - (seg->live ? seg->live->ndel : 0);
}
int qi_segment_is_live(const qi_segment *seg, uint32_t doc) {
  if (doc >= seg->core->max_doc) return 0;
  return !seg->live || (int)((seg->live->bits[doc >> 6] >> (doc & 63)) & 1);
}
const uint64_t *qi_segment_live_bits(const qi_segment *seg) {
  return seg->live ? seg->live->bits : NULL;
}

const char *qi_segment_doc_id(const qi_segment *seg, uint32_t doc, size_t *len) {
  const qi__seg *c = seg->core;
  if (doc >= c->max_doc) return NULL;
  if (len) *len = c->id_off[doc + 1] - c->id_off[doc] - 1;
  return c->ids + c->id_off[doc];
}
/* ---- _id lookup ------------------------------------------------------------------------------ */

/* FNV-1a over the bytes, then a 64-bit finalizer so the low bits (the slot) depend on all of
** them: ids are often decimal counters that differ only in their last characters. */
static uint64_t id_hash(const char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

qb_code qi__seg_index_ids(qi__seg *s) {
  size_t slots = 8, need = (size_t)s->max_doc + s->max_doc / 2 + 1;
  uint32_t d;
  while (slots < need) slots <<= 1;
  if (!(s->id_hash = qb_arena_array(&s->arena, slots, sizeof *s->id_hash))) return QB_NOMEM;
  memset(s->id_hash, 0, slots * sizeof *s->id_hash);
  s->id_mask = slots - 1;
  /* in doc order, so a probe meets the copies of an _id (an update inside one buffer keeps
  ** the deleted older copy until a merge) oldest first */
  for (d = 0; d < s->max_doc; d++) {
    size_t i = (size_t)id_hash(s->ids + s->id_off[d], s->id_off[d + 1] - s->id_off[d] - 1) &
               s->id_mask;
    while (s->id_hash[i]) i = (i + 1) & s->id_mask;
    s->id_hash[i] = d + 1;
  }
  return QB_OK;
}

/* The sampled first step of FS's term lookup (qi__fseg.sample) in AR; 0, or -1 out of memory */
static int sample_terms(qi__fseg *fs, qb_arena *ar) {
  fs->sample = NULL;
  fs->nsample = 0;
  if (fs->nterms < 4 * QI__TERM_SAMPLE) return 0; /* a short dictionary: binary search alone */
  uint32_t n = (fs->nterms + QI__TERM_SAMPLE - 1) / QI__TERM_SAMPLE;
  if (!(fs->sample = qb_arena_array(ar, n, sizeof *fs->sample))) return -1;
  for (uint32_t k = 0; k < n; k++)
    fs->sample[k] = qi__term_key(fs->term_bytes + fs->term_off[k * QI__TERM_SAMPLE],
                                 fs->term_off[k * QI__TERM_SAMPLE + 1] - fs->term_off[k * QI__TERM_SAMPLE]);
  fs->nsample = n;
  return 0;
}

qb_code qi__seg_finish(qi__seg *s, int have_ids) {
  uint32_t f, d;
  for (f = 0; f < s->nfields; f++) {
    qi__fseg *fs = &s->f[f];
    fs->dv_dense = fs->dv_present && (fs->i64 || fs->f64) &&
                   (s->max_doc == 0 || !memchr(fs->dv_present, 0, s->max_doc));
    if (fs->nterms && sample_terms(fs, &s->arena)) return QB_NOMEM;
  }
  s->min_seq = UINT64_MAX;
  s->max_seq = 0;
  for (d = 0; d < s->max_doc; d++) {
    if (s->seq[d] < s->min_seq) s->min_seq = s->seq[d];
    if (s->seq[d] > s->max_seq) s->max_seq = s->seq[d];
  }
  return have_ids ? QB_OK : qi__seg_index_ids(s);
}

static inline int bit_live(const uint64_t *bits, uint32_t d) {
  return !bits || (int)((bits[d >> 6] >> (d & 63)) & 1);
}

int64_t qi__seg_lookup(const qi__seg *c, const uint64_t *bits, const char *id, size_t len,
                       uint64_t seq) {
  size_t i;
  uint32_t e;
  if (!c->id_hash) return -1;
  if (seq != UINT64_MAX && (seq < c->min_seq || seq > c->max_seq)) return -1;
  for (i = (size_t)id_hash(id, len) & c->id_mask; (e = c->id_hash[i]); i = (i + 1) & c->id_mask) {
    uint32_t d = e - 1;
    if (c->id_off[d + 1] - c->id_off[d] - 1 != len || memcmp(c->ids + c->id_off[d], id, len))
      continue;
    if (seq != UINT64_MAX ? c->seq[d] == seq : bit_live(bits, d)) return d;
  }
  return -1;
}

int64_t qi_segment_find_id(const qi_segment *seg, const char *id, size_t len) {
  const qi__seg *c = seg->core;
  int64_t found = -1;
  size_t i;
  uint32_t e;
  if (!c->id_hash) return -1;
  for (i = (size_t)id_hash(id, len) & c->id_mask; (e = c->id_hash[i]); i = (i + 1) & c->id_mask) {
    uint32_t d = e - 1;
    if (c->id_off[d + 1] - c->id_off[d] - 1 != len || memcmp(c->ids + c->id_off[d], id, len))
      continue;
    if (qi_segment_is_live(seg, d)) return d; /* at most one live copy per snapshot */
    found = d;                                /* else the newest deleted one */
  }
  return found;
}

uint64_t qi_segment_doc_seq_no(const qi_segment *seg, uint32_t doc) {
  return doc < seg->core->max_doc ? seg->core->seq[doc] : 0;
}
uint64_t qi_segment_doc_version(const qi_segment *seg, uint32_t doc) {
  return doc < seg->core->max_doc ? seg->core->ver[doc] : 0;
}

const uint8_t *qi_segment_norms(const qi_segment *seg, uint32_t field) {
  const qi__fseg *f = fseg(seg, field);
  return f ? f->norms : NULL;
}

uint32_t qi_segment_term_count(const qi_segment *seg, uint32_t field) {
  const qi__fseg *f = fseg(seg, field);
  return f ? f->nterms : 0;
}
const char *qi_segment_term(const qi_segment *seg, uint32_t field, uint32_t ord, size_t *len) {
  const qi__fseg *f = fseg(seg, field);
  if (!f || ord >= f->nterms) return NULL;
  if (len) *len = f->term_off[ord + 1] - f->term_off[ord];
  return f->term_bytes + f->term_off[ord];
}
uint32_t qi_segment_term_seek(const qi_segment *seg, uint32_t field, const char *term, size_t len) {
  const qi__fseg *f = fseg(seg, field);
  return f ? qi__fseg_seek(f, term, len) : 0;
}
int64_t qi_segment_term_find(const qi_segment *seg, uint32_t field, const char *term, size_t len) {
  const qi__fseg *f = fseg(seg, field);
  return f ? qi__fseg_find(f, term, len) : -1;
}
uint32_t qi_segment_term_doc_freq(const qi_segment *seg, uint32_t field, uint32_t ord) {
  const qi__fseg *f = fseg(seg, field);
  return f && ord < f->nterms ? f->terms[ord].df : 0;
}
uint64_t qi_segment_term_total_freq(const qi_segment *seg, uint32_t field, uint32_t ord) {
  const qi__fseg *f = fseg(seg, field);
  return f && ord < f->nterms ? f->terms[ord].ttf : 0;
}

/* ---- doc values ------------------------------------------------------------------------------ */

qi_dv_kind qi_dv_kind_of(const qi_segment *seg, uint32_t field) {
  const qi__fseg *f = fseg(seg, field);
  return f ? f->dv : QI_DV_NONE;
}

void qi_dv_read_f64(const qi_segment *seg, uint32_t field, const uint32_t *docs, size_t n,
                    double *out, uint8_t *present) {
  const qi__fseg *f = fseg(seg, field);
  size_t i;
  if (f && f->f64) {
    const double *v = f->f64;
    const uint8_t *p = f->dv_present;
    for (i = 0; i < n; i++) out[i] = v[docs[i]]; /* missing values are stored as 0 */
    if (present && f->dv_dense)
      memset(present, 1, n); /* no second scattered read per document */
    else if (present)
      for (i = 0; i < n; i++) present[i] = p[docs[i]];
  } else if (f && f->i64) {
    const int64_t *v = f->i64;
    const uint8_t *p = f->dv_present;
    for (i = 0; i < n; i++) out[i] = (double)v[docs[i]];
    if (present && f->dv_dense)
      memset(present, 1, n);
    else if (present)
      for (i = 0; i < n; i++) present[i] = p[docs[i]];
  } else {
    memset(out, 0, n * sizeof *out);
    if (present) memset(present, 0, n);
  }
}

static int64_t sat(double d) {
  if (d != d) return 0;
  if (d >= 9.2233720368547758e18) return INT64_MAX;
  if (d <= -9.2233720368547758e18) return INT64_MIN;
  return (int64_t)d;
}

void qi_dv_read_i64(const qi_segment *seg, uint32_t field, const uint32_t *docs, size_t n,
                    int64_t *out, uint8_t *present) {
  const qi__fseg *f = fseg(seg, field);
  size_t i;
  if (f && f->i64) {
    const int64_t *v = f->i64;
    const uint8_t *p = f->dv_present;
    for (i = 0; i < n; i++) out[i] = v[docs[i]];
    if (present && f->dv_dense)
      memset(present, 1, n);
    else if (present)
      for (i = 0; i < n; i++) present[i] = p[docs[i]];
  } else if (f && f->f64) {
    const double *v = f->f64;
    const uint8_t *p = f->dv_present;
    for (i = 0; i < n; i++) out[i] = sat(v[docs[i]]);
    if (present && f->dv_dense)
      memset(present, 1, n);
    else if (present)
      for (i = 0; i < n; i++) present[i] = p[docs[i]];
  } else {
    memset(out, 0, n * sizeof *out);
    if (present) memset(present, 0, n);
  }
}

const int64_t *qi_dv_i64_column(const qi_segment *seg, uint32_t field, const uint8_t **present) {
  const qi__fseg *f = fseg(seg, field);
  if (present) *present = f && f->i64 ? f->dv_present : NULL;
  return f ? f->i64 : NULL;
}

const double *qi_dv_f64_column(const qi_segment *seg, uint32_t field, const uint8_t **present) {
  const qi__fseg *f = fseg(seg, field);
  if (present) *present = f && f->f64 ? f->dv_present : NULL;
  return f ? f->f64 : NULL;
}

uint32_t qi_dv_ord_count(const qi_segment *seg, uint32_t field) {
  const qi__fseg *f = fseg(seg, field);
  return f && f->ord_off ? f->nterms : 0;
}

uint32_t qi_dv_doc_ords(const qi_segment *seg, uint32_t field, uint32_t doc,
                        const uint32_t **ords) {
  const qi__fseg *f = fseg(seg, field);
  if (!f || !f->ord_off || doc >= seg->core->max_doc) {
    *ords = NULL;
    return 0;
  }
  *ords = f->ords + f->ord_off[doc];
  return f->ord_off[doc + 1] - f->ord_off[doc];
}

const char *qi_dv_ord_term(const qi_segment *seg, uint32_t field, uint32_t ord, size_t *len) {
  return qi_segment_term(seg, field, ord, len);
}

void qi_dv_read_ord(const qi_segment *seg, uint32_t field, const uint32_t *docs, size_t n,
                    int64_t *out) {
  const qi__fseg *f = fseg(seg, field);
  size_t i;
  if (!f || !f->ord_off) {
    for (i = 0; i < n; i++) out[i] = -1;
    return;
  }
  for (i = 0; i < n; i++) {
    uint32_t a = f->ord_off[docs[i]], b = f->ord_off[docs[i] + 1];
    out[i] = a < b ? (int64_t)f->ords[a] : -1;
  }
}
