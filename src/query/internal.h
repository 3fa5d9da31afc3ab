/* internal.h: what the files of src/query share (qq__ names). Not for other layers.
** The request owns one arena (parse tree, plan, scripts' column buffers) and the parsed body
** (json_t), which the tree points into: both die together in qq_request_free.
** Partials are JSON documents (the wire format between data node and coordinator is the
** in-memory format), so merge and render work on one representation. */
#ifndef QQ_INTERNAL_H
#define QQ_INTERNAL_H

#include "query.h"

#include <jansson.h>

/* ---- scripts as the plan uses them ------------------------------------------------------------ */

typedef struct qq__script {
  qq_script *s;           /* owned; freed with the request */
  qq_script_kind kind;
  const char *source;     /* for messages */
  qq_bind bind;           /* for the current shard */
  int bound;
  uint32_t field_id[QQ_BIND_MAX_ARGS]; /* resolved per shard; UINT32_MAX = unmapped */
  qq_col cols[QQ_BIND_MAX_ARGS];
  /* per-arg buffers of QQ_BLOCK_MAX elements (arena) */
  double *f64[QQ_BIND_MAX_ARGS];
  int64_t *i64[QQ_BIND_MAX_ARGS];
  qq_str *str[QQ_BIND_MAX_ARGS];
  uint8_t *present[QQ_BIND_MAX_ARGS];
  int64_t *ords;          /* scratch for keyword reads */
  double *res;            /* results */
  uint8_t *keep, *res_present;
  qq_str *res_str;
  /* QQ_ARG_SOURCE: one document's _source, and the block's string values (reset per block) */
  qb_buf src_doc, src_bytes;
  size_t *src_off[QQ_BIND_MAX_ARGS]; /* a value's offset in src_bytes; SIZE_MAX: none */
  size_t *src_len[QQ_BIND_MAX_ARGS]; /* and its length */
  struct qq__script *next; /* all scripts of the request */
} qq__script;

/* ---- the parse tree ----------------------------------------------------------------------------- */

typedef enum qq__qkind {
  QK_MATCH_ALL, QK_MATCH_NONE, QK_TERM, QK_TERMS, QK_MATCH, QK_RANGE, QK_EXISTS, QK_IDS, QK_BOOL,
  QK_CONST, QK_FSCORE, QK_SCRIPT_SCORE, QK_SCRIPT, QK_DISMAX, QK_PREFIX, QK_WILDCARD,
  QK_PHRASE, QK_PHRASE_PREFIX, QK_CROSS, /* phrase.c, cross_fields.c */
  QK_FUZZY, QK_REGEXP, QK_BOOSTING /* fuzzy.c, regexp.c */
} qq__qkind;

/* The options of the queries in fuzzy.c and regexp.c, and match's analyzer and fuzziness */
typedef struct qq__re qq__re; /* a compiled regexp (regexp.c) */
typedef struct qq__xq {
  const char *analyzer;    /* match: the analyzer named in the query (NULL: the field's) */
  int fuzzy;               /* match: "fuzziness" given (fuzzy: always 1) */
  int edits;               /* 0..2; -1: AUTO (auto_lo, auto_hi) */
  int auto_lo, auto_hi;
  uint32_t prefix_len, max_exp;
  int transpositions;
  qq__re *re;              /* regexp */
  struct qq__query *negative; /* boosting */
  double negative_boost;
} qq__xq;

typedef enum { FV_NONE, FV_LOG, FV_LOG1P, FV_LOG2P, FV_LN, FV_LN1P, FV_LN2P, FV_SQUARE, FV_SQRT,
               FV_RECIPROCAL } qq__fvmod;
typedef enum { SM_MULTIPLY, SM_SUM, SM_AVG, SM_FIRST, SM_MAX, SM_MIN } qq__score_mode;
typedef enum { BM_MULTIPLY, BM_REPLACE, BM_SUM, BM_AVG, BM_MAX, BM_MIN } qq__boost_mode;

typedef struct qq__query qq__query;

typedef struct qq__func {
  qq__query *filter;       /* NULL = every doc */
  double weight;           /* 1 when absent */
  enum { FN_WEIGHT, FN_SCRIPT, FN_FVF } kind;
  qq__script *script;
  const char *field;       /* FN_FVF */
  double factor;
  qq__fvmod modifier;
  int has_missing;
  double missing;
} qq__func;

struct qq__query {
  qq__qkind kind;
  float boost;             /* 1 unless given */
  const char *field;
  const char *path;        /* where in the body, for messages ("query.bool.must[1].term") */
  /* term / terms / ids / range / match */
  const json_t *value;     /* term: the value; terms/ids: the array */
  const json_t *gt, *gte, *lt, *lte;
  const char *text;        /* match */
  int op_and;
  const char *msm;         /* minimum_should_match as written (NULL = default) */
  double tie_breaker;      /* dis_max */
  /* bool (dis_max: its queries are in should) */
  qq__query **must, **should, **must_not, **filter;
  size_t nmust, nshould, nmust_not, nfilter;
  /* constant_score, function_score, script_score: the wrapped query */
  qq__query *child;
  /* function_score */
  qq__func *funcs;
  size_t nfuncs;
  qq__score_mode score_mode;
  qq__boost_mode boost_mode;
  double max_boost;
  int has_min_score;
  double min_score;
  /* script_score, script */
  qq__script *script;
  /* match_phrase, match_phrase_prefix (phrase.c); cross_fields (QK_CROSS: its QK_MATCH
  ** children in should give the fields and boosts) */
  uint32_t slop, max_expansions;
  qq__xq *x;               /* fuzzy, regexp, boosting; match's analyzer and fuzziness (or NULL) */
};

/* ---- sort, source filter, script fields, aggregations ------------------------------------------- */

typedef enum { SK_SCORE, SK_DOC, SK_FIELD, SK_SHARD_DOC } qq__sort_kind; /* SK_SHARD_DOC: paging.c */
typedef struct qq__sort {
  qq__sort_kind kind;
  const char *field;
  int desc;
  enum { MISSING_LAST, MISSING_FIRST, MISSING_VALUE } missing;
  const json_t *missing_value;
  int unmapped_ok; /* "unmapped_type" given: an unmapped field sorts as missing, else an error */
} qq__sort;

typedef struct qq__script_field {
  const char *name;
  qq__script *script;
} qq__script_field;

typedef enum { AG_TERMS, AG_AVG, AG_SUM, AG_MIN, AG_MAX, AG_STATS, AG_VALUE_COUNT, AG_HISTOGRAM,
               AG_DATE_HISTOGRAM,
               /* issue 12 §4 (aggs_int.h, agg_*.c) */
               AG_CARDINALITY, AG_PERCENTILES, AG_PERCENTILE_RANKS, AG_EXTENDED_STATS, AG_WEIGHTED_AVG,
               AG_TOP_HITS, AG_RANGE, AG_DATE_RANGE, AG_FILTER, AG_FILTERS, AG_MISSING, AG_GLOBAL,
               AG_COMPOSITE, AG_AVG_BUCKET, AG_SUM_BUCKET, AG_MAX_BUCKET, AG_MIN_BUCKET,
               AG_BUCKET_SORT } qq__agg_kind;
#define QQ__AGG_BUCKETS(k) ((k) == AG_TERMS || (k) == AG_HISTOGRAM || (k) == AG_DATE_HISTOGRAM)
/* every kind that has buckets (and so may have sub-aggregations) */
#define QQ__AGG_MULTI(k) (QQ__AGG_BUCKETS(k) || ((k) >= AG_RANGE && (k) <= AG_COMPOSITE))

typedef struct qq__agg {
  const char *name;
  qq__agg_kind kind;
  const char *field;       /* or NULL with a script */
  qq__script *script;      /* METRIC kind */
  const json_t *missing;   /* metric "missing" value */
  uint32_t size;           /* terms */
  enum { ORD_COUNT, ORD_KEY, ORD_SUB } order;  /* terms: bucket order, then _key asc */
  int order_desc;
  const char *order_sub;   /* ORD_SUB: a single-value metric sub-aggregation's name */
  size_t order_subi;
  uint64_t min_doc_count;  /* terms: default 1; histograms: default 0 (empty buckets filled) */
  double interval, offset; /* histogram; date_histogram fixed_interval in ms (calendar: 0) */
  char cal_unit;           /* date_histogram calendar_interval: y q M w d h m s, or 0 */
  const char *format;      /* date_histogram: key_as_string's "format" (NULL: ISO 8601) */
  int has_order;
  struct qq__agg *subs;    /* terms: metric sub-aggregations */
  size_t nsubs;
  struct qq__xagg *x;      /* the options of the kinds of issue 12 §4 (aggs_int.h; NULL: none) */
} qq__agg;

/* ---- the request --------------------------------------------------------------------------------- */

struct qq_request {
  qb_arena arena;
  const qq_env *env;
  json_t *body;             /* parsed body; the tree points into it */
  int for_count;
  qq__query *query;
  uint32_t from, size;
  qq__sort *sort;
  size_t nsort;             /* 0 = by score */
  int track_scores;
  int want_version, want_seq_no; /* "version", "seq_no_primary_term": hits carry them */
  int64_t track_total;      /* -1 = exact (true), 0 = don't (false), N = lower bound */
  uint64_t timeout_ns;      /* "timeout": a shard stops collecting past it (timed_out); 0: none */
  int source_mode;          /* 1 = whole, 0 = none, 2 = filtered */
  const char **src_incl, **src_excl;
  size_t nsrc_incl, nsrc_excl;
  qq__script_field *script_fields;
  size_t nscript_fields;
  qq__agg *aggs;
  size_t naggs;
  int has_min_score;
  double min_score;
  qq__script *scripts;      /* all scripts, for free */
  json_t *made;             /* queries the request wrote itself (query_string): an array */
  const qq_term_stats *term_stats; /* NULL: the shard's own (qq_request_set_term_stats) */
  struct qq__hl *highlight; /* "highlight" (highlight.c); NULL: none */
  struct qq__paging *pg;    /* search_after, post_filter, collapse, rescore, ... (paging.c); NULL: none */
  uint32_t shard_index;     /* _shard_doc's high half (qq_request_set_shard_index); 0 */
  int has_shard_index;
  int raw_source;           /* whole _source may be spliced raw (qq_request_raw_source) */
  int hits_text;            /* plain hits may be written as text (qq_request_hits_text) */
};

/* source_raw.c: 1 when S (N bytes) is UTF-8 by jansson's rules (what json_stringn accepts) */
int qq__utf8_ok(const char *s, size_t n);

/* dsl.c */
qb_code qq__parse(qq_request *req, const json_t *body, qb_err *err);
/* dsl.c's parse context, for the query parsers in other files */
typedef struct qq__pctx qq__pctx;
qb_code qq__parse_sub(qq__pctx *p, const json_t *j, const char *where, qq__query **out);
qq__query *qq__newq(qq__pctx *p, qq__qkind k);
qq_request *qq__pctx_req(qq__pctx *p);
qb_err *qq__pctx_err(qq__pctx *p);
/* A query's "boost" (a number >= 0) into *BOOST (1 when absent) */
qb_code qq__get_boost(qq__pctx *p, const json_t *o, const char *qname, float *boost);
/* fuzzy.c: the fuzzy and boosting queries; match's analyzer / fuzziness options (*TAKEN = 1
** when K is one of them) */
qb_code qq__parse_fuzzy(qq__pctx *p, const json_t *body, qq__query *q);
qb_code qq__parse_boosting(qq__pctx *p, const json_t *body, qq__query *q);
qb_code qq__match_option(qq__pctx *p, qq__query *q, const char *k, const json_t *v, int *taken);
/* regexp.c */
qb_code qq__parse_regexp(qq__pctx *p, const json_t *body, qq__query *q);
/* 1 when RE matches all of S[0..LEN) (UTF-8) */
int qq__re_match(const qq__re *re, const char *s, size_t len);
/* qstring.c: query_string and simple_query_string, rewritten into the query DSL (kept in
** req->made) and parsed as such */
qb_code qq__parse_qstring(qq__pctx *p, const json_t *body, int simple, qq__query **out);
/* date.c: what qi_date_parse reads ("2024-01-31", "2024-01-31T10:00:00Z", "...+02:00", epoch
** ms) plus date math ("now-1d/d", "2024-01-15||+1M") -> *MS (UTC). QB_INVAL when unreadable. */
qb_code qq__parse_date(const char *s, int64_t *ms);
/* Calendar rounding for date_histogram: MS down to its UNIT (y q M w d h m s), and one UNIT on */
int64_t qq__date_floor(int64_t ms, char unit);
int64_t qq__date_next(int64_t ms, char unit);
/* Dates by an Elasticsearch "format": named ones (strict_date_optional_time, epoch_millis,
** date, ...) or a Java-style pattern of y M d H m s S X Z and 'literals'; "a||b" prints by a.
** format -1 when FORMAT has what we cannot print (check says so in a QB_INVAL first). */
int qq__date_format(const char *format, int64_t ms, char *out, size_t cap);
qb_code qq__date_format_check(const char *format, qb_err *err);

/* scripts.c: per-shard binding and block evaluation */
typedef struct qq__shard qq__shard;
qb_code qq__script_bind(qq__script *sc, qq__shard *sh, qb_err *err);
/* Run SC over docs DOCS[0..n) of segment SEG with scores SCORE (may be NULL); results in sc->res /
** keep / res_str / res_present. */
qb_code qq__script_run(qq__script *sc, qq__shard *sh, const qi_segment *seg, uint32_t seg_base,
                       const uint32_t *docs, const double *score, size_t n, qb_err *err);

/* A term's BM25 weight on a shard, computed once for all its segments (issue 14: per segment it
** cost a doc_freq over every segment and a 256-entry cache each time) */
typedef struct qq__wcache {
  struct qq__wcache *next;
  uint32_t field;
  float boost;
  const char *term;         /* arena copy */
  size_t len;
  qi_bm25 w;
  int64_t *ords;            /* the term's ordinal in each segment of the snapshot, -1: absent */
  size_t nords;
} qq__wcache;

struct qq__shard {
  qq__wcache *wcache;       /* the weights computed so far (arena) */
  void *xcache;             /* fuzzy.c: term expansions computed so far (arena) */
  qq_request *req;
  const qi_snapshot *snap;
  const char *index_name;
  uint32_t shard_id;
  qb_arena *ar;             /* the request's */
  qq_shard_info info;
};

/* exec.c: matching + scoring iterators over one segment */
typedef struct qq__it qq__it;
struct qq__it {
  uint32_t doc;             /* current doc; QI_NO_MORE_DOCS past the end */
  uint32_t (*next)(qq__it *);
  uint32_t (*advance)(qq__it *, uint32_t target);
  double (*score)(qq__it *);
  uint64_t cost;
};

typedef struct qq__seg_ctx {
  qq__shard *sh;
  const qi_segment *seg;
  uint32_t seg_index;
  uint64_t base;            /* doc base of the segment in the snapshot */
  uint32_t max_doc;
  qb_code rc;               /* sticky failure from inside an iterator (scripts) */
  double min_comp;          /* collector: a doc must score above this to enter the top hits
                            ** (-inf until the heap is full and the count may stop) */
  int skipped;              /* MaxScore skipped documents: the hit count is a lower bound */
  qb_err *err;
  qi_postings **postings;   /* to free */
  size_t npostings, cap_postings;
} qq__seg_ctx;

/* Build the iterator of Q for one segment. SCORING = 0: scores are not needed. */
qb_code qq__it_build(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err);
/* The top-level iterator when hits are sorted by score and the count may become a lower bound:
** a pure disjunction of terms becomes a MaxScore iterator that reads cx->min_comp and skips
** documents that cannot beat it (setting cx->skipped); anything else as qq__it_build. */
qb_code qq__it_build_top(qq__seg_ctx *cx, const qq__query *q, qq__it **out, qb_err *err);
void qq__seg_ctx_fini(qq__seg_ctx *cx);

/* iter.c: iterator primitives (NULL = out of memory) */
void *qq__xalloc(qq__seg_ctx *cx, size_t n);  /* from the request arena */
uint32_t qq__none_next(qq__it *it);
double qq__zero_score(qq__it *it);
qq__it *qq__mk_none(qq__seg_ctx *cx);
qq__it *qq__mk_all(qq__seg_ctx *cx, double boost);           /* all live docs, constant score */
qq__it *qq__mk_list(qq__seg_ctx *cx, const uint32_t *docs, size_t n, double boost);
qq__it *qq__mk_boost(qq__seg_ctx *cx, qq__it *c, double boost, int constant);
qq__it *qq__mk_conj(qq__seg_ctx *cx, qq__it **c, size_t n, qq__it **scoring, size_t nscoring);
qq__it *qq__mk_disj(qq__seg_ctx *cx, qq__it **c, size_t n, size_t msm);
qq__it *qq__mk_opt(qq__seg_ctx *cx, qq__it *req, qq__it *opt);  /* req + opt's score if on doc */
qq__it *qq__mk_excl(qq__seg_ctx *cx, qq__it *req, qq__it *ex);  /* req minus ex */
/* one term of an inverted field, BM25 with BOOST in the weight; absent term: the empty iterator */
qb_code qq__mk_term(qq__seg_ctx *cx, const qi_field_info *fi, const char *term, size_t len,
                    float boost, int scoring, qq__it **out, qb_err *err);

typedef struct qq__dlist {
  uint32_t *d;
  size_t n, cap;
} qq__dlist;
int qq__dl_push(qq__seg_ctx *cx, qq__dlist *l, uint32_t doc); /* -1: out of memory */
void qq__dl_norm(qq__dlist *l);                                /* sort + dedupe */

static inline int qq__is_live(qq__seg_ctx *cx, uint32_t d) { return qi_segment_is_live(cx->seg, d); }

typedef struct qq__term_it {
  qq__it it;
  qi_postings *p;
  const qi_bm25 *w;     /* the shard's (qq__wcache); NULL when not scoring */
  const uint8_t *norms; /* NULL: no norms (norm 1) */
} qq__term_it;
uint32_t qq__term_next(qq__it *it);
uint32_t qq__term_adv(qq__it *it, uint32_t t);
double qq__term_score(qq__it *it);

/* A disjunction: doc = smallest child doc; a doc matches when >= msm children are on it. */
typedef struct qq__disj_it {
  qq__it it;
  qq__it **c;
  size_t n;
  size_t msm;
  int started;
} qq__disj_it;
uint32_t qq__disj_next(qq__it *it);
uint32_t qq__disj_adv(qq__it *it, uint32_t t);
double qq__disj_score(qq__it *it);

/* fuzzy.c: the fuzzy, regexp and boosting iterators; one term of match with fuzziness; a leaf
** whose field is a pattern ("*", "title*": query_string's fields) over the matching fields */
qb_code qq__build_x(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err);
qb_code qq__mk_fuzzy_term(qq__seg_ctx *cx, const qq__query *q, const qi_field_info *fi,
                          const char *term, size_t len, int scoring, qq__it **out, qb_err *err);
qb_code qq__build_field_pattern(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out,
                                qb_err *err);

/* exec.c / exec_script.c: node -> iterator */
qb_code qq__build(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err);
qb_code qq__build_buffered(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err);
/* The next() of the buffered script nodes: an iterator with it->next == qq__buf_next is one.
** qq__buf_take hands the collector the docs (and final scores) of such a node from its current
** doc (not NO_MORE_DOCS) on, at most MAX (>= 1) of them, within its computed block, in order;
** the node then stands on the last one returned (next() goes on after it). The arrays stay
** valid until the node's next call. */
uint32_t qq__buf_next(qq__it *it);
size_t qq__buf_take(qq__it *it, size_t max, const uint32_t **docs, const double **scores);

/* aggs_collect.c: one shard's aggregations */
typedef struct qq__aggs_state qq__aggs_state;
qb_code qq__aggs_new(qq_request *req, qq__shard *sh, qq__aggs_state **out, qb_err *err);
qb_code qq__aggs_collect(qq__aggs_state *st, const qi_segment *seg, uint32_t seg_index,
                         uint64_t base, const uint32_t *docs, const double *scores, size_t n,
                         qb_err *err);
qb_code qq__aggs_segment_done(qq__aggs_state *st, const qi_segment *seg, qb_err *err);
/* The shard's partial aggregations as JSON (new reference) */
qb_code qq__aggs_partial(qq__aggs_state *st, json_t **out, qb_err *err);
void qq__aggs_free(qq__aggs_state *st);
/* aggs_merge.c: the partial shape (its top comment), merge, render. A metric's running state,
** as collected on a shard and as merged (min/max start at +-INFINITY). */
typedef struct qq__mstate {
  uint64_t count;
  double sum, min, max;
} qq__mstate;
/* M as a metric partial (IS_DATE: the field is a date, rendered with *_as_string); NULL: OOM */
json_t *qq__mstate_json(const qq__mstate *m, int is_date);
/* Merge partial agg JSONs (N; NULL entries skipped) and render the final "aggregations" object */
qb_code qq__aggs_render(qq_request *req, json_t *const *parts, size_t n, json_t **out, qb_err *err);

/* source.c */
json_t *qq__source_filter(const qq_request *req, json_t *src);
/* 1 when glob PAT (`*` any run, `?` one byte) matches all LEN bytes of S */
int qq__glob(const char *pat, const char *s, size_t len);

/* json_fast.c: json_loadb(TEXT, LEN, FLAGS, JE) -- the same tree, the same errors -- read by a
** quick reader when the text is in its common subset (FLAGS: JSON_DECODE_ANY,
** JSON_REJECT_DUPLICATES; anything else is passed on to jansson) */
json_t *qq__json_load(const char *text, size_t len, int flags, json_error_t *je);

/* phrase.c: match_phrase / match_phrase_prefix ({"FIELD": text or {...}}) into Q (kind set by
** the caller), and their iterators. qq__phrase_match: phrase frequency over one document's
** positions (Lucene's exact and sloppy matchers); ON_MATCH (may be NULL) gets each match's
** window of token positions. */
qb_code qq__parse_phrase(qq_request *req, const json_t *j, const char *qname, qq__query *q, qb_err *err);
qb_code qq__build_phrase(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err);
/* IT (any iterator) is the request's top-level one: a phrase iterator then skips documents that
** cannot beat the collector's cx->min_comp (setting cx->skipped), as MaxScore does */
void qq__phrase_top(qq__it *it);
typedef struct qq__pp_in {
  const uint32_t *pos;   /* the term's positions in the document, ascending */
  uint32_t n;            /* >= 1 */
  uint32_t offset;       /* its position in the query */
  int grp;               /* slots with the same single term share a group (>= 0); -1: none */
} qq__pp_in;
double qq__phrase_match(const qq__pp_in *in, size_t n, uint32_t slop,
                        void (*on_match)(void *ud, uint32_t lo, uint32_t hi), void *ud);
/* keep P for the segment's end (freed with it), or free it and fail (phrase.c) */
qb_code qq__keep_postings(qq__seg_ctx *cx, qi_postings *p, qb_err *err);
/* exec.c: minimum_should_match SPEC over N clauses (*OUT untouched when SPEC is NULL) */
qb_code qq__msm(const char *spec, size_t n, size_t *out, qb_err *err);
/* exec.c: dis_max over C[0..n) (n >= 1, none-iterators dropped already): the best child's score
** plus TIE times the others' (Lucene's DisjunctionMaxQuery); NULL when out of memory */
qq__it *qq__mk_dismax(qq__seg_ctx *cx, qq__it **c, size_t n, double tie, int scoring);
/* cross_fields.c: multi_match type cross_fields (QK_CROSS) */
qb_code qq__build_cross(qq__seg_ctx *cx, const qq__query *q, int scoring, qq__it **out, qb_err *err);
/* highlight.c: the body's "highlight" object, and one hit's "highlight" (HJ gets the key when a
** field has fragments); SRC: the hit's stored _source text (NULL/0: read it here) */
qb_code qq__parse_highlight(qq_request *req, const json_t *v, qb_err *err);
qb_code qq__highlight_hit(qq__shard *sh, const qi_segment *seg, uint32_t doc, const char *src,
                          size_t srclen, json_t *hj, qb_err *err);
/* ---- deep pagination and result shaping: paging.c (parse, search_after), collapse.c, rescore.c */

typedef struct qq__rescore {
  uint32_t window;          /* window_size (default 10) */
  qq__query *query;         /* rescore_query */
  double qw, rqw;           /* query_weight, rescore_query_weight (1, 1) */
  enum { RS_TOTAL, RS_MULTIPLY, RS_AVG, RS_MAX, RS_MIN } mode;
} qq__rescore;

typedef struct qq__paging {
  const json_t *after;      /* search_after: one value per sort key (NULL: none) */
  qq__query *post_filter;   /* NULL: none */
  uint64_t terminate_after; /* 0: none */
  const char *collapse;     /* collapse.field (NULL: none) */
  qq__rescore *rescore;     /* applied in order */
  size_t nrescore;
  uint32_t window;          /* the largest window_size */
} qq__paging;

/* dsl.c: parse one query at WHERE (for post_filter and rescore_query) */
qb_code qq__parse_query(qq_request *req, const json_t *j, const char *where, qq__query **out, qb_err *err);
/* paging.c: 1 when K is one of the body keys paging.c parses; parse it; check the request once
** the whole body is read (search_after against sort, from, the combinations Elasticsearch
** refuses) */
int qq__paging_key(const char *k);
qb_code qq__paging_parse(qq_request *req, const char *k, const json_t *v, qb_err *err);
qb_code qq__paging_check(qq_request *req, qb_err *err);

/* collapse.c: the groups of one shard, a slot per distinct value of the collapse field */
typedef struct qq__collapse qq__collapse;
qb_code qq__collapse_new(qq_request *req, const qi_snapshot *snap, qq__collapse **out, qb_err *err);
void qq__collapse_free(qq__collapse *c);
/* The slot of each of DOCS[0..n) of SEG (segment-local) into SLOTS; *NSLOTS grows with new
** keys (a slot number == the previous *NSLOTS is new) */
qb_code qq__collapse_slots(qq__collapse *c, const qi_segment *seg, const uint32_t *docs, size_t n,
                           uint32_t *slots, size_t *nslots, qb_err *err);
/* The collapse value of DOC of SEG as a hit's fields entry ([value] or [null]); NULL: OOM */
json_t *qq__collapse_value(qq__collapse *c, const qi_segment *seg, uint32_t doc);

/* rescore.c: re-score N hits (SEGS/DOCS in the snapshot, SCORES in and out) by RS */
qb_code qq__rescore_apply(qq__shard *sh, const qq__rescore *rs, const uint32_t *segs,
                          const uint32_t *docs, double *scores, size_t n, qb_err *err);

/* small helpers */
qq_field_type qq__field_type(const qi_field_info *fi);

#endif
