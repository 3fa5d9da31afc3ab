/* agg_tdigest.c: the t-digest of percentiles and percentile_ranks (Dunning's merging digest,
** written here from the paper). Values go to a buffer; a full buffer is sorted with the
** centroids and merged greedily under the k1 scale function k(q) = C/(2 pi) asin(2q - 1)
** (C the compression): a centroid spans at most one unit of k, so centroids are small in the
** tails and the extreme values stay singletons. quantile(q) interpolates between centroid
** centres (the centre of a centroid of weight w sits at its cumulative weight + w/2), and
** between min / max and the outer centroids. With fewer values than the digest keeps as
** singletons this is exact: rank h = q * n - 1/2 (Hazen's definition) between sorted values.
** cdf(x) interpolates the same way (ties: the weight below plus half the weight equal).
** Partials carry the centroids; merging re-adds them, so a merge is a digest of all values. */
#include "aggs_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cent {
  double m, w;
} cent;

struct qq__td {
  double comp;
  cent *c;        /* sorted by mean */
  size_t n, cap;
  cent *buf;
  size_t nb, capb;
  double total, min, max;
};

qq__td *qq__td_new(double compression) {
  qq__td *t = qb_calloc(1, sizeof *t);
  if (!t) return NULL;
  t->comp = compression < 20 ? 20 : compression > 10000 ? 10000 : compression;
  t->capb = (size_t)(t->comp * 32);
  t->min = INFINITY;
  t->max = -INFINITY;
  return t;
}

void qq__td_free(qq__td *t) {
  if (!t) return;
  qb_free(t->c, t->cap * sizeof *t->c);
  qb_free(t->buf, t->capb * sizeof *t->buf);
  qb_free(t, sizeof *t);
}


/* sort by mean, inline (qsort's calls through a pointer were most of a digest's cost) */
static void sort_cents(cent *v, size_t n) {
  while (n > 16) {
    double piv = v[n / 2].m, a = v[0].m, c = v[n - 1].m; /* median of three */
    if ((a <= piv && piv <= c) || (c <= piv && piv <= a)) {
    } else if ((piv <= a && a <= c) || (c <= a && a <= piv)) piv = a;
    else piv = c;
    size_t i = 0, j = n - 1;
    for (;;) {
      while (v[i].m < piv) i++;
      while (v[j].m > piv) j--;
      if (i >= j) break;
      cent t = v[i];
      v[i] = v[j];
      v[j] = t;
      i++;
      j--;
    }
    /* recurse into the smaller side, loop on the larger */
    size_t left = j + 1;
    if (left < n - left) {
      sort_cents(v, left);
      v += left;
      n -= left;
    } else {
      sort_cents(v + left, n - left);
      n = left;
    }
  }
  for (size_t i = 1; i < n; i++) {
    cent x = v[i];
    size_t j = i;
    while (j > 0 && v[j - 1].m > x.m) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = x;
  }
}

/* the largest q a centroid starting at Q0 may reach: k(q) - k(q0) <= 1 for the k1 scale
** k(q) = C/(2 pi) asin(2q - 1), so one sin per centroid, not one asin per value */
static double qlimit(const qq__td *t, double q0) {
  double a = asin(2 * q0 - 1) + 2 * M_PI / t->comp;
  return a >= M_PI / 2 ? 1 : (sin(a) + 1) / 2;
}

/* merge the buffer into the centroids (both sorted, then one pass) */
static int compress(qq__td *t) {
  if (!t->nb) return 0;
  size_t all = t->n + t->nb;
  cent *v = qb_malloc(all * sizeof *v);
  if (!v) return -1;
  sort_cents(t->buf, t->nb);
  double total = t->total;
  for (size_t i = 0; i < t->nb; i++) total += t->buf[i].w;
  size_t a = 0, b = 0, out = 0;
  double before = 0, lim = 0; /* the weight of the finished centroids; the current one's q limit */
  while (a < t->n || b < t->nb) {
    cent x = b >= t->nb || (a < t->n && t->c[a].m <= t->buf[b].m) ? t->c[a++] : t->buf[b++];
    if (out && (before + v[out - 1].w + x.w) / total <= lim) {
      cent *c = &v[out - 1];
      double w = c->w + x.w;
      c->m += (x.m - c->m) * x.w / w;
      c->w = w;
    } else {
      if (out) before += v[out - 1].w;
      lim = qlimit(t, before / total);
      v[out++] = x;
    }
  }
  if (out > t->cap) {
    cent *nc = qb_realloc(t->c, t->cap * sizeof *nc, out * sizeof *nc);
    if (!nc) {
      qb_free(v, all * sizeof *v);
      return -1;
    }
    t->c = nc;
    t->cap = out;
  }
  memcpy(t->c, v, out * sizeof *v);
  t->n = out;
  t->nb = 0;
  t->total = total;
  qb_free(v, all * sizeof *v);
  return 0;
}

int qq__td_add(qq__td *t, double x, double w) {
  if (!(w > 0) || x != x) return 0;
  if (!t->buf && !(t->buf = qb_malloc(t->capb * sizeof *t->buf))) return -1;
  if (t->nb == t->capb && compress(t)) return -1;
  t->buf[t->nb++] = (cent){x, w};
  if (x < t->min) t->min = x;
  if (x > t->max) t->max = x;
  return 0;
}

uint64_t qq__td_count(qq__td *t) {
  double s = t->total;
  for (size_t i = 0; i < t->nb; i++) s += t->buf[i].w;
  return (uint64_t)llround(s);
}

double qq__td_quantile(qq__td *t, double q) {
  if (compress(t) || !t->n) return NAN;
  if (t->n == 1 || q <= 0) return q <= 0 ? t->min : t->c[0].m;
  if (q >= 1) return t->max;
  double idx = q * t->total;
  const cent *c = t->c;
  if (idx < c[0].w / 2) return t->min + (c[0].m - t->min) * idx / (c[0].w / 2);
  double cum = 0; /* weight before centroid i */
  for (size_t i = 0; i + 1 < t->n; i++) {
    double ci = cum + c[i].w / 2, cn = cum + c[i].w + c[i + 1].w / 2;
    if (idx < cn) return c[i].m + (c[i + 1].m - c[i].m) * (idx - ci) / (cn - ci);
    cum += c[i].w;
  }
  double last = t->total - c[t->n - 1].w / 2;
  double rest = t->total - last;
  return c[t->n - 1].m + (t->max - c[t->n - 1].m) * (rest > 0 ? (idx - last) / rest : 0);
}

double qq__td_cdf(qq__td *t, double x) {
  if (compress(t) || !t->n) return NAN;
  if (x < t->min) return 0;
  if (x > t->max) return 1;
  const cent *c = t->c;
  double below = 0, eq = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (c[i].m < x) below += c[i].w;
    else if (c[i].m == x) eq += c[i].w;
  }
  if (eq > 0) return (below + eq / 2) / t->total;
  double cum = 0;
  if (x < c[0].m) return (c[0].m > t->min ? (x - t->min) / (c[0].m - t->min) : 0) * c[0].w / 2 / t->total;
  for (size_t i = 0; i + 1 < t->n; i++) {
    double ci = cum + c[i].w / 2, cn = cum + c[i].w + c[i + 1].w / 2;
    if (x < c[i + 1].m) return (ci + (cn - ci) * (x - c[i].m) / (c[i + 1].m - c[i].m)) / t->total;
    cum += c[i].w;
  }
  double last = t->total - c[t->n - 1].w / 2;
  double span = t->max - c[t->n - 1].m;
  return (last + (span > 0 ? (x - c[t->n - 1].m) / span : 1) * (t->total - last)) / t->total;
}

json_t *qq__td_json(qq__td *t) {
  if (compress(t)) return NULL;
  json_t *m = json_array(), *w = json_array();
  json_t *o = json_pack("{s:f, s:o, s:o}", "c", t->comp, "m", m, "w", w);
  if (!o) return NULL;
  for (size_t i = 0; i < t->n; i++)
    if (json_array_append_new(m, json_real(t->c[i].m)) || json_array_append_new(w, json_real(t->c[i].w))) {
      json_decref(o);
      return NULL;
    }
  if (t->n && (json_object_set_new(o, "min", json_real(t->min)) || json_object_set_new(o, "max", json_real(t->max)))) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int qq__td_merge_json(qq__td *t, const json_t *j) {
  const json_t *m = json_object_get(j, "m"), *w = json_object_get(j, "w");
  size_t n = json_array_size(m);
  if (n != json_array_size(w)) return 0; /* damaged: ignored */
  for (size_t i = 0; i < n; i++)
    if (qq__td_add(t, json_number_value(json_array_get(m, i)), json_number_value(json_array_get(w, i)))) return -1;
  const json_t *mn = json_object_get(j, "min"), *mx = json_object_get(j, "max");
  if (json_is_number(mn) && json_number_value(mn) < t->min) t->min = json_number_value(mn);
  if (json_is_number(mx) && json_number_value(mx) > t->max) t->max = json_number_value(mx);
  return 0;
}
