/* aggs_int.h: what the aggregation files share (aggs_collect.c, aggs_merge.c, agg_*.c). Not
** for the rest of src/query. The collector keeps one state (qq__agst) per aggregation and per
** bucket that has sub-aggregations; the kinds of issue 12 §4 keep their own data in the
** qq__xagg of their definition (parsed, agg_parse.c) and in a state's x (collected). */
#ifndef QQ_AGGS_INT_H
#define QQ_AGGS_INT_H

#include "internal.h"

#include <regex.h>

/* ---- time zones (agg_tz.c) ------------------------------------------------------------------ */

typedef struct qq__tz {
  const char *name;       /* as given */
  int64_t fixed_ms;       /* fixed offset (ntrans == 0) */
  size_t ntrans;          /* tzdata: transitions at at[i] (UTC ms) to offset off[i] (ms) */
  int64_t *at, *off;
  int64_t off0;           /* before the first transition */
} qq__tz;

/* Read NAME ("UTC", "Z", "+01:00", "-0530", or an IANA name from the system's tzdata) into
** *OUT (arena). QB_INVAL naming it when unknown. */
qb_code qq__tz_parse(qb_arena *ar, const char *name, qq__tz *out, qb_err *err);
int64_t qq__tz_offset(const qq__tz *tz, int64_t utc_ms);       /* local - UTC, in ms */
int64_t qq__tz_to_utc(const qq__tz *tz, int64_t local_ms);     /* the UTC time of a local one */
/* date_histogram rounding in TZ (NULL: UTC): the key of MS's bucket, and the next bucket's key.
** CAL: a calendar unit (y q M w d h m s) or 0 for INTERVAL ms; OFFSET ms shifts the buckets. */
int64_t qq__tz_floor(const qq__tz *tz, int64_t ms, char cal, int64_t interval, int64_t offset);
int64_t qq__tz_next(const qq__tz *tz, int64_t key, char cal, int64_t interval, int64_t offset);
/* KEY formatted by FORMAT (NULL: strict_date_optional_time) in TZ (NULL: UTC), with the offset */
void qq__tz_format(const qq__tz *tz, const char *format, int64_t utc_ms, char *out, size_t cap);

/* ---- parsed definitions (agg_parse.c) ---------------------------------------------------------- */

typedef struct qq__xrange {
  int has_from, has_to;
  double from, to;        /* from inclusive, to exclusive; dates in ms */
  const char *key;        /* given or made (arena) */
} qq__xrange;

typedef struct qq__csrc {  /* a composite source */
  const char *name, *field;
  int kind;               /* 0 terms, 1 histogram, 2 date_histogram */
  int desc;
  double interval;        /* histogram; date_histogram fixed ms */
  char cal;               /* date_histogram calendar unit */
  const char *format;     /* date_histogram: keys as strings */
  const qq__tz *tz;
} qq__csrc;

typedef struct qq__xsort { /* top_hits / bucket_sort sort key */
  const char *field;      /* "_score", "_key", "_count" or a field / bucket path */
  int desc;
} qq__xsort;

typedef struct qq__xagg {
  /* cardinality */
  uint32_t threshold;     /* precision_threshold (exact below it) */
  int hll_p;              /* registers 2^p */
  /* percentiles / percentile_ranks */
  double *percents;       /* or the values of percentile_ranks */
  size_t npercents;
  int keyed;              /* also range / date_range / filters */
  double compression;
  /* extended_stats */
  double sigma;
  /* weighted_avg */
  const char *wfield;
  const json_t *vmissing, *wmissing;
  /* range / date_range */
  qq__xrange *ranges;
  size_t nranges;
  const char *format;     /* date_range, date_histogram keys */
  /* filter / filters */
  qq__query **filters;
  const char **fnames;
  size_t nfilters;
  int anon, other;
  const char *other_key;
  /* top_hits */
  uint32_t from, size;
  qq__xsort *sort;
  size_t nsort;
  const json_t *source;   /* _source spec (NULL: whole) */
  /* composite */
  qq__csrc *src;
  size_t nsrc;
  const json_t *after;    /* the "after" object (NULL: from the start) */
  /* pipelines */
  const char *path;       /* buckets_path */
  int gap_zero;           /* gap_policy insert_zeros */
  /* terms */
  const json_t *tmissing; /* "missing": the bucket of docs without a value */
  const char **inc, **exc;/* arrays of exact terms */
  size_t ninc, nexc;
  const char *inc_re, *exc_re; /* regular expressions (POSIX ERE, anchored) */
  int mdc0;               /* terms min_doc_count 0 */
  /* date_histogram */
  const qq__tz *tz;
  int64_t offset_ms;
  int has_ebounds;
  int64_t emin, emax;
} qq__xagg;

/* The kinds that keep no per-bucket metric state of the simple shape (mstate) */
#define QQ__AGG_SIMPLE(k) ((k) >= AG_AVG && (k) <= AG_VALUE_COUNT)
#define QQ__AGG_PIPE(k) ((k) >= AG_AVG_BUCKET)

/* dsl.c, for agg_parse.c (qq__pctx, qq__pctx_req and qq__pctx_err: internal.h) */
qb_code qq__pctx_query(qq__pctx *p, const json_t *j, const char *where, qq__query **out);
qb_code qq__pctx_script(qq__pctx *p, const json_t *j, const char *where, qq__script **out);
/* agg_parse.c: the kind of TYPE among the new ones (-1: none); parse BODY into G; the new
** options of terms and date_histogram (*HANDLED = 0: not one of them); checks after the subs */
int qq__agg_ext_kind(const char *type);
qb_code qq__agg_parse_ext(qq__pctx *p, qq__agg *g, const char *type, const json_t *body, int nested);
qb_code qq__agg_opt_ext(qq__pctx *p, qq__agg *g, const char *type, const char *k, const json_t *v,
                        int *handled);
qb_code qq__agg_check_ext(qq__pctx *p, qq__agg *g);

/* Java's Double.toString for the common range ("100.0") */
void qq__fmt_double(double v, char *out, size_t cap);

/* ---- collection (aggs_collect.c) ------------------------------------------------------------ */

typedef struct qq__bucket {
  const char *key; /* keyword: bytes (arena) */
  size_t klen;
  int64_t ikey;    /* long/date/boolean */
  double dkey;     /* double */
  uint64_t doc_count;
  qq__mstate *subs;    /* nsubs: the metric sub-aggregations */
  struct qq__agst *child; /* nsubs: the other sub-aggregations' states (NULL when none) */
} qq__bucket;

typedef enum { KEY_STR, KEY_LONG, KEY_DOUBLE, KEY_DATE, KEY_BOOL } qq__keykind;

typedef struct qq__agst {
  const qq__agg *a;
  qi_field_info fi;
  int mapped;
  qq__mstate m;
  qq__keykind kk;
  qq__bucket *b;
  size_t nb, capb;
  uint32_t *slots; /* bucket index + 1, open addressing */
  size_t nslots;
  int32_t *ord2b;  /* current segment: ordinal -> bucket, -1 = not yet */
  uint32_t nords;
  struct qq__agst *subs;   /* templates: metric subs read their field through these; other subs
                       ** are copied into each bucket's child states */
  double *vals;    /* per sub: QQ_BLOCK_MAX values */
  uint8_t *pres;
  int has_bucket_subs;
  int nested;      /* a child state (fed one doc at a time): keyword keys by string, no ord map */
  void *x;         /* the new kinds' state (agg_metrics.c, agg_buckets.c) */
  qi_field_info fi2;  /* weighted_avg's weight */
  int mapped2;
} qq__agst;

typedef struct qq__fcache { /* a filter's matches in the current segment (agg_buckets.c) */
  const qq__query *q;
  const qi_segment *seg;
  uint64_t *bits;
  size_t words;
} qq__fcache;

struct qq__aggs_state {
  qq__shard *sh;
  qq__agst *ag;
  size_t n;
  qq__fcache *fc;
  size_t nfc, capfc;
};
void qq__fcache_free(qq__aggs_state *st);

/* Find or add the bucket of a key; its index or -1 when out of memory */
long qq__bucket_get(qq__aggs_state *st, qq__agst *s, const char *k, size_t kl, int64_t ik, double dk);
/* DOCS[I] falls in bucket BI (the block's metric sub values are in s->vals) */
/* 1 when DOC of SEG has a value of S's field (aggs_collect.c) */
int qq__agg_doc_has_value(const qq__agst *s, const qi_segment *seg, uint32_t doc);
qb_code qq__bucket_hit(qq__aggs_state *st, qq__agst *s, long bi, size_t i, const qi_segment *seg,
                       uint64_t base, const uint32_t *docs, const double *scores, qb_err *err);
/* The metric sub values of a block (before qq__bucket_hit) */
qb_code qq__bucket_subs_values(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base,
                               const uint32_t *docs, const double *scores, size_t n, qb_err *err);
/* A metric's values of a block from its field (or FI) or its script */
qb_code qq__metric_values(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base,
                          const uint32_t *docs, const double *scores, size_t n, double *vals,
                          uint8_t *pres, qb_err *err);
/* Any aggregation over a block */
qb_code qq__collect_agg(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base,
                        const uint32_t *docs, const double *scores, size_t n, qb_err *err);
json_t *qq__agg_partial(const qq__agst *s);
json_t *qq__buckets_partial(const qq__agst *s, const char *kind); /* {"kind", "buckets"} */

/* agg_metrics.c / agg_buckets.c: the new kinds' states */
qb_code qq__x_init(qq__shard *sh, qq__agst *s, qb_err *err);
void qq__x_free(qq__agst *s);
qb_code qq__x_collect(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base,
                      const uint32_t *docs, const double *scores, size_t n, qb_err *err);
qb_code qq__x_segment_done(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, qb_err *err);
json_t *qq__x_partial(const qq__agst *s);
qb_code qq__xb_init(qq__shard *sh, qq__agst *s, qb_err *err);
qb_code qq__xb_collect(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, uint64_t base,
                       const uint32_t *docs, const double *scores, size_t n, qb_err *err);
qb_code qq__xb_segment_done(qq__aggs_state *st, qq__agst *s, const qi_segment *seg, qb_err *err);
json_t *qq__xb_partial(const qq__agst *s);
void qq__xb_free(qq__agst *s);
int qq__agg_is_xbucket(qq__agg_kind k);
/* terms include/exclude: 1 when term T (LEN bytes) has a bucket */
int qq__terms_keep(const qq__agst *s, const char *t, size_t len);

/* ---- merge and render (aggs_merge.c) -------------------------------------------------------- */

typedef struct qq__mbucket {
  json_t *key;
  uint64_t doc_count;
  qq__mstate *subs;    /* nsubs: merged metric subs */
  json_t **cparts; /* nsubs: for the other subs, a JSON array of the children's partials */
} qq__mbucket;

typedef struct qq__merged {
  qq__mbucket *mb;
  size_t nb, cap;
  const char *kind;
  uint64_t all;       /* docs over all buckets */
  int sub_date[64];   /* a->nsubs <= 64: checked by the parser */
  json_t *index;
} qq__merged;

int qq__merge_buckets(const qq__agg *a, const json_t *aparts, qq__merged *M);
void qq__merged_fini(const qq__agg *a, qq__merged *m);
qq__mbucket *qq__merged_find(qq__merged *M, const char *key);
/* A bucket's body: doc_count and the rendered subs (M NULL: an empty bucket) into BJ */
int qq__bucket_body(const qq__agg *a, json_t *bj, const qq__mbucket *m, const int *sub_date, qb_err *err);
json_t *qq__render_agg(const qq__agg *a, const json_t *aparts, qb_err *err);
json_t *qq__merge_agg(const qq__agg *a, const json_t *aparts);
/* the merged buckets M again as a bucket partial of KIND */
json_t *qq__merged_partial(const qq__agg *a, qq__merged *M, const char *kind, size_t limit);

/* agg_metrics.c / agg_buckets.c: merge and render the new kinds */
json_t *qq__x_merge(const qq__agg *a, const json_t *aparts);
json_t *qq__x_render(const qq__agg *a, const json_t *aparts, qb_err *err);
json_t *qq__xb_merge(const qq__agg *a, const json_t *aparts);
json_t *qq__xb_render(const qq__agg *a, const json_t *aparts, qb_err *err);
/* agg_pipeline.c: the sibling pipelines of AGGS[0..N) into the rendered level OBJ; a parent's
** bucket_sort over its rendered buckets (OUT: the rendered parent) */
qb_code qq__pipes_apply(const qq__agg *aggs, size_t n, json_t *obj, qb_err *err);
qb_code qq__bucket_sort_apply(const qq__agg *parent, json_t *out, qb_err *err);

/* agg_hll.c */
typedef struct qq__hll qq__hll;
uint64_t qq__murmur3_64(const void *data, size_t len, uint64_t seed);
qq__hll *qq__hll_new(int p, uint32_t threshold);
void qq__hll_free(qq__hll *h);
int qq__hll_add(qq__hll *h, uint64_t hash);         /* -1: out of memory */
uint64_t qq__hll_count(const qq__hll *h);
json_t *qq__hll_json(const qq__hll *h);
int qq__hll_merge_json(qq__hll *h, const json_t *j); /* -1: out of memory */

/* agg_tdigest.c */
typedef struct qq__td qq__td;
qq__td *qq__td_new(double compression);
void qq__td_free(qq__td *t);
int qq__td_add(qq__td *t, double x, double w);       /* -1: out of memory */
double qq__td_quantile(qq__td *t, double q);         /* NAN when empty */
double qq__td_cdf(qq__td *t, double x);              /* NAN when empty */
uint64_t qq__td_count(qq__td *t);
json_t *qq__td_json(qq__td *t);
int qq__td_merge_json(qq__td *t, const json_t *j);

#endif
