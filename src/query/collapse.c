/* collapse.c: field collapsing on one shard. Every distinct value of the collapse field (a
** keyword or numeric field with doc values; documents without a value form one group, as in
** Elasticsearch) gets a slot; search.c keeps each slot's best hit and offers the groups' best
** hits to its top-k, so a shard returns its top groups. The coordinator keeps the first hit of
** each value across shards (response.c). The table holds the values' bytes by reference into
** the segments' dictionaries, which live as long as the snapshot searched. */
#include "internal.h"

#include <string.h>

typedef struct centry {
  uint64_t h;
  const char *p; /* keyword value (borrowed from a segment), or NULL */
  size_t len;
  uint64_t bits; /* numeric value (i64 or the f64's bits) */
  uint32_t slot; /* UINT32_MAX: empty */
} centry;

struct qq__collapse {
  qi_field_info fi;
  centry *t;
  size_t cap, used;
  uint32_t missing_slot; /* UINT32_MAX until a document without a value is seen */
};

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

static uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
  return mix(h);
}

qb_code qq__collapse_new(qq_request *req, const qi_snapshot *snap, qq__collapse **out, qb_err *err) {
  const char *f = req->pg->collapse;
  qq__collapse *c;
  qi_field_info fi;
  *out = NULL;
  if (qi_snapshot_field(snap, f, &fi))
    return qb_fail(err, QB_INVAL, "no mapping found for `%s` in order to collapse on", f);
  if (fi.type == QI_TEXT || fi.dv == QI_DV_NONE)
    return qb_fail(err, QB_INVAL, "unknown type for collapse field `%s`, only keywords and numbers are accepted", f);
  if (!(c = qb_calloc(1, sizeof *c))) return qb_fail(err, QB_NOMEM, "query: out of memory");
  c->fi = fi;
  c->missing_slot = UINT32_MAX;
  *out = c;
  return QB_OK;
}

void qq__collapse_free(qq__collapse *c) {
  if (!c) return;
  qb_free(c->t, c->cap * sizeof *c->t);
  qb_free(c, sizeof *c);
}

static int grow(qq__collapse *c) {
  size_t nc = c->cap ? c->cap * 2 : 1024;
  centry *nt = qb_malloc(nc * sizeof *nt);
  if (!nt) return -1;
  for (size_t i = 0; i < nc; i++) nt[i].slot = UINT32_MAX;
  for (size_t i = 0; i < c->cap; i++) {
    if (c->t[i].slot == UINT32_MAX) continue;
    size_t j = c->t[i].h & (nc - 1);
    while (nt[j].slot != UINT32_MAX) j = (j + 1) & (nc - 1);
    nt[j] = c->t[i];
  }
  qb_free(c->t, c->cap * sizeof *c->t);
  c->t = nt;
  c->cap = nc;
  return 0;
}

/* the slot of one value (P != NULL: keyword bytes; else BITS) */
static int lookup(qq__collapse *c, const char *p, size_t len, uint64_t bits, uint32_t *slot,
                  size_t *nslots) {
  if ((c->used + 1) * 4 > c->cap * 3 && grow(c)) return -1;
  uint64_t h = p ? hash_bytes(p, len) : mix(bits);
  size_t j = h & (c->cap - 1);
  for (;; j = (j + 1) & (c->cap - 1)) {
    centry *e = &c->t[j];
    if (e->slot == UINT32_MAX) break;
    if (e->h != h) continue;
    if (p ? (e->p && e->len == len && !memcmp(e->p, p, len)) : (!e->p && e->bits == bits)) {
      *slot = e->slot;
      return 0;
    }
  }
  c->t[j] = (centry){h, p, len, bits, (uint32_t)*nslots};
  c->used++;
  *slot = (uint32_t)(*nslots)++;
  return 0;
}

qb_code qq__collapse_slots(qq__collapse *c, const qi_segment *seg, const uint32_t *docs, size_t n,
                           uint32_t *slots, size_t *nslots, qb_err *err) {
  int64_t iv[QQ_BLOCK_MAX];
  double fv[QQ_BLOCK_MAX];
  uint8_t pr[QQ_BLOCK_MAX];
  if (c->fi.dv == QI_DV_KEYWORD) {
    qi_dv_read_ord(seg, c->fi.id, docs, n, iv);
    for (size_t i = 0; i < n; i++) pr[i] = iv[i] >= 0;
  } else if (c->fi.dv == QI_DV_F64) {
    qi_dv_read_f64(seg, c->fi.id, docs, n, fv, pr);
  } else {
    qi_dv_read_i64(seg, c->fi.id, docs, n, iv, pr);
  }
  for (size_t i = 0; i < n; i++) {
    int bad;
    if (!pr[i]) {
      if (c->missing_slot == UINT32_MAX) c->missing_slot = (uint32_t)(*nslots)++;
      slots[i] = c->missing_slot;
      continue;
    }
    if (c->fi.dv == QI_DV_KEYWORD) {
      size_t len;
      const char *p = qi_dv_ord_term(seg, c->fi.id, (uint32_t)iv[i], &len);
      bad = lookup(c, p ? p : "", p ? len : 0, 0, &slots[i], nslots);
    } else if (c->fi.dv == QI_DV_F64) {
      double d = fv[i] == 0 ? 0.0 : fv[i]; /* -0 and 0 are one value */
      uint64_t b;
      memcpy(&b, &d, sizeof b);
      bad = lookup(c, NULL, 0, b, &slots[i], nslots);
    } else {
      bad = lookup(c, NULL, 0, (uint64_t)iv[i], &slots[i], nslots);
    }
    if (bad) return qb_fail(err, QB_NOMEM, "query: out of memory (collapse groups)");
  }
  return QB_OK;
}

json_t *qq__collapse_value(qq__collapse *c, const qi_segment *seg, uint32_t doc) {
  json_t *v = NULL;
  uint8_t pr = 0;
  if (c->fi.dv == QI_DV_KEYWORD) {
    int64_t o;
    qi_dv_read_ord(seg, c->fi.id, &doc, 1, &o);
    size_t len = 0;
    const char *p = o >= 0 ? qi_dv_ord_term(seg, c->fi.id, (uint32_t)o, &len) : NULL;
    v = p ? json_stringn(p, len) : json_null();
  } else if (c->fi.dv == QI_DV_F64) {
    double d;
    qi_dv_read_f64(seg, c->fi.id, &doc, 1, &d, &pr);
    v = pr ? json_real(d) : json_null();
  } else {
    int64_t i;
    qi_dv_read_i64(seg, c->fi.id, &doc, 1, &i, &pr);
    v = pr ? json_integer(i) : json_null();
  }
  return v ? json_pack("[o]", v) : NULL;
}
