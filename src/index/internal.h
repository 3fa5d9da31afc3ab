/* internal.h: what the files of src/index share (qi__ names). Not for other layers.
** Invariant: a qi__seg is immutable once built (freeze or merge); its arrays live in its own
** arena or, once its file is written or loaded, in the read-only mapping of that file; only its
** refcount changes. Field structs are immutable once added to a mapping. */
#ifndef QI_INTERNAL_H
#define QI_INTERNAL_H

#include "index.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

/* ---- varints ---------------------------------------------------------------------------- */

static inline size_t qi__put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* Decodes from trusted (self-built) memory only. */
static inline const uint8_t *qi__get_varint(const uint8_t *p, uint64_t *out) {
  uint64_t v = 0;
  unsigned shift = 0;
  while (*p & 0x80) {
    v |= (uint64_t)(*p++ & 0x7f) << shift;
    shift += 7;
  }
  *out = v | ((uint64_t)*p++ << shift);
  return p;
}

/* memcpy that accepts (NULL, 0). */
static inline void qi__cpy(void *d, const void *s, size_t n) {
  if (n) memcpy(d, s, n);
}

/* ---- growable arrays through qb_realloc ------------------------------------------------- */

/* Ensure *PTR (of *CAP elements of ELEM bytes) holds at least NEED elements; new room zeroed. */
qb_code qi__grow(void **ptr, size_t *cap, size_t need, size_t elem);

/* ---- mapping ---------------------------------------------------------------------------- */

typedef struct qi__field {
  char *name;            /* full dotted path, qb_malloc'd */
  size_t name_len;
  uint32_t id;
  qi_type type;
  qi_analyzer analyzer;
  qi_dv_kind dv;
  uint8_t indexed, has_norms;
  int32_t parent;        /* multi-field ("title.keyword"): the id of "title"; else -1 */
  uint32_t ignore_above; /* keyword: longer values (in chars) are skipped; 0 = no limit */
  /* QI_ANALYZER_CHAIN: the analyzers (owned by the index's qi__analysis or built in), and the
  ** names the mapping gave ("" when not given: the index's default analyzer) */
  const qi_chain *ichain, *schain;
  char an_name[64], san_name[64];
} qi__field;

typedef struct qi__analysis qi__analysis;

typedef struct qi__mapping {
  qi__field **fields; /* by id */
  size_t nfields, cap;
  const qi__analysis *an; /* the analyzers field mappings may name (NULL: built-in ones) */
} qi__mapping;

void qi__mapping_fini(qi__mapping *m);
qi__field *qi__mapping_find(const qi__mapping *m, const char *name, size_t len);
/* Parse {"properties":{...}} into M (adds fields). All-or-nothing. */
qb_code qi__mapping_merge_json(qi__mapping *m, json_t *mappings, qb_err *err);
qb_code qi__mapping_to_json(const qi__mapping *m, qb_buf *out, qb_err *err);

/* One value of a parsed document. */
typedef struct qi__value {
  uint32_t field;
  uint8_t is_float;   /* numeric: 1 = f (double), 0 = i */
  const char *s;      /* text/keyword value (borrowed from the JSON or the scratch) */
  size_t len;
  int64_t i;
  double f;
} qi__value;

/* A document parsed against a mapping: values in field order of appearance, plus the fields
** the dynamic mapping would add (not yet in the mapping: ids from m->nfields on). */
typedef struct qi__parsed {
  qi__value *vals;
  size_t nvals, cap;
  qi__field **newf;   /* owned until committed into the mapping */
  size_t nnew, newcap;
  qb_arena scratch;   /* strings made from numbers etc. */
} qi__parsed;

void qi__parsed_init(qi__parsed *p);
void qi__parsed_fini(qi__parsed *p);
/* Parse DOC (a JSON object) against M. On error nothing changes in M. ID names the doc in
** messages. */
qb_code qi__parse_doc(const qi__mapping *m, json_t *doc, const char *id, qi__parsed *p,
                      qb_err *err);
/* Move P's new fields into M (cannot fail after qi__mapping_reserve). */
qb_code qi__mapping_commit(qi__mapping *m, qi__parsed *p, qb_err *err);

/* date.c: S as strict_date_optional_time with at least yyyy-MM-dd (no epoch millis): what a
** dynamic mapping takes for a date. QB_OK and *MS as qi_date_parse gives it, or QB_INVAL. */
qb_code qi__date_detect(const char *s, size_t len, int64_t *ms);

/* ---- analysis (analyze.c, analyzers.c, stem.c) ------------------------------------------- */

/* analyze.c's pieces: the standard tokenizer (LOWERCASE 0: terms keep their case), UTF-8
** decode (0: invalid) and encode, the simple lowercase mapping, and "is a letter" */
qb_code qi__std_tokenize(const char *text, size_t len, int lowercase, qi_token_fn fn, void *ud,
                         qb_err *err);
size_t qi__utf8_decode(const char *s, size_t i, size_t len, uint32_t *cp);
size_t qi__utf8_encode(uint32_t c, char *out);
uint32_t qi__lower_cp(uint32_t c);
int qi__is_letter_cp(uint32_t c);

/* The index's analyzers, built from its settings (settings.analysis or settings.index.analysis):
** immutable once built. Errors: QB_INVAL with the reason Elasticsearch gives. */
qb_code qi__analysis_build(json_t *settings, qi__analysis **out, qb_err *err);
void qi__analysis_free(qi__analysis *a);
/* NAME among A's analyzers (A may be NULL), then the built-in ones; NULL when none */
const qi_chain *qi__analysis_find(const qi__analysis *a, const char *name);
/* The analyzer a text field without "analyzer" gets (A's "default"), and its search analyzer
** ("default_search", else the default); NULL: the standard analyzer (QI_ANALYZER_STANDARD) */
const qi_chain *qi__analysis_default(const qi__analysis *a, int search);

/* A custom chain (tokenizer name + filter specs as in settings: names or objects; FDEFS: the
** named filter definitions, may be NULL), and its free; for _analyze */
qb_code qi__chain_custom(json_t *fdefs, const char *tokenizer, json_t *filters, const char *name,
                         const char *where, qi_chain **out, qb_err *err);
void qi__chain_free(qi_chain *c);
json_t *qi__analysis_filters(const qi__analysis *a);

/* stem.c: libstemmer, pooled. ALGO: a libstemmer algorithm name ("english", "porter", ...). */
typedef struct qi__stemmer qi__stemmer;
int qi__stem_known(const char *algo);
qi__stemmer *qi__stem_take(const char *algo); /* NULL: out of memory or unknown algorithm */
void qi__stem_give(const char *algo, qi__stemmer *s);
/* WORD's stem into OUT (CAP bytes); 0 when it cannot be had (keep the word) */
size_t qi__stem(qi__stemmer *s, const char *word, size_t len, char *out, size_t cap);

/* ---- segments --------------------------------------------------------------------------- */

typedef struct qi__skip {
  uint32_t first_doc, last_doc;
  uint32_t offset;    /* byte offset of the block in the term's postings */
  uint32_t max_freq;
  uint8_t min_norm;
  uint32_t pos_offset; /* byte offset of the block's first positions in the term's positions */
} qi__skip;

typedef struct qi__term {
  uint64_t post_off;  /* into fseg.post */
  uint64_t ttf;
  uint32_t df;
  uint32_t skip;      /* first skip entry in fseg.skips */
  uint32_t nskips;
  uint32_t max_freq;
  uint8_t min_norm;
  uint64_t pos_off;   /* into fseg.pos (text fields) */
} qi__term;

typedef struct qi__fseg {
  uint8_t present;     /* the field occurs in this segment */
  qi_dv_kind dv;
  /* inverted index */
  uint32_t nterms;
  uint32_t *term_off;  /* nterms + 1 offsets into term_bytes */
  char *term_bytes;
  qi__term *terms;
  uint8_t *post;
  size_t post_len;
  qi__skip *skips;
  uint8_t *pos;        /* positions: per posting, freq varints of position deltas; NULL: none */
  size_t pos_len;
  uint8_t *norms;      /* max_doc bytes or NULL */
  uint64_t doc_count, sum_ttf, sum_df;
  /* doc values */
  int64_t *i64;
  double *f64;
  uint8_t *dv_present;
  bool dv_dense;       /* every document has a value: block reads skip the present column */
  uint32_t *ord_off;   /* keyword: max_doc + 1 offsets into ords */
  uint32_t *ords;
  /* term lookup's first step (qi__seg_finish): the first 8 bytes, big-endian and zero-padded,
  ** of every QI__TERM_SAMPLE-th term (nsample of them; NULL: none, plain binary search). A
  ** small heap array searched first, so a lookup touches the mapped dictionary only within
  ** one stretch of terms instead of all over it */
  uint64_t *sample;
  uint32_t nsample;
} qi__fseg;
#define QI__TERM_SAMPLE 32

typedef struct qi__seg {
  atomic_uint refs;
  uint32_t seg_no;     /* unique within the index, increasing */
  uint32_t max_doc;
  uint32_t nfields;    /* fields known when built; ids >= nfields are absent */
  qi__fseg *f;
  uint32_t *id_off;    /* max_doc + 1 offsets into ids (each id NUL-terminated) */
  char *ids;
  uint64_t *seq;
  uint64_t *ver;
  uint32_t *id_hash;   /* _id -> doc: open addressing, linear probing; entries are doc + 1,
                       ** 0 = empty; id_mask + 1 slots (a power of two, at least 1.5 x max_doc) */
  size_t id_mask;
  uint64_t min_seq, max_seq; /* range of seq[] (open: which segment can hold a stored _seq_no) */
  void *map;           /* the segment file mapped read-only (arrays point into it), or NULL */
  size_t map_len;
  qb_arena arena;      /* the struct arrays, and every array when map is NULL */
} qi__seg;

/* Build S's id_hash from its ids (the last step of freeze and merge; files store the table).
** Errors: QB_NOMEM (S unchanged but for its arena). */
qb_code qi__seg_index_ids(qi__seg *s);
/* The read-side state of a finished segment (the _id hash unless HAVE_IDS, the dense flags of
** doc values, the seq range), computed once before it is published. */
qb_code qi__seg_finish(qi__seg *s, int have_ids);
/* Doc of core C whose _id is ID: with SEQ != UINT64_MAX the copy with that _seq_no, else the
** copy live in BITS (NULL: all live). -1 when none. */
int64_t qi__seg_lookup(const qi__seg *c, const uint64_t *bits, const char *id, size_t len,
                       uint64_t seq);
qi__seg *qi__seg_retain(qi__seg *s);
void qi__seg_release(qi__seg *s);
int64_t qi__fseg_find(const qi__fseg *f, const char *term, size_t len);
uint32_t qi__fseg_seek(const qi__fseg *f, const char *term, size_t len);
/* A term's sample key: its first 8 bytes, big-endian, zero-padded (monotone in term order) */
static inline uint64_t qi__term_key(const char *t, size_t n) {
  uint64_t k = 0;
  for (size_t i = 0; i < 8; i++) k = k << 8 | (i < n ? (unsigned char)t[i] : 0);
  return k;
}

/* Immutable, refcounted live-docs bitmap of one segment. */
typedef struct qi__live {
  atomic_uint refs;
  uint32_t ndel;
  size_t nwords;
  uint64_t bits[];
} qi__live;

qi__live *qi__live_new(uint32_t max_doc, const uint64_t *copy_from);
void qi__live_release(qi__live *l);

/* A segment as a snapshot sees it (this is what qi_segment is). */
struct qi_segment {
  qi__seg *core;
  qi__live *live;      /* NULL: all live */
  const struct qi_snapshot *snap;
};

/* ---- segment builder (the in-memory buffer) --------------------------------------------- */

typedef struct qi__builder qi__builder;
qi__builder *qi__builder_new(uint32_t seg_no);
void qi__builder_free(qi__builder *b);
uint32_t qi__builder_docs(const qi__builder *b);
/* Add a parsed document as local doc number qi__builder_docs(b). On failure (NOMEM) the
** builder is unusable. */
qb_code qi__builder_add(qi__builder *b, const qi__mapping *m, const qi__parsed *p, const char *id,
                        uint64_t seq, uint64_t ver, qb_err *err);
/* Build the immutable segment (NULL *OUT if the builder is empty). */
qb_code qi__builder_freeze(qi__builder *b, uint32_t nfields, qi__seg **out, qb_err *err);

/* Merge segments SEGS (with live-docs bitmaps LIVE[i], NULL = all live) into one new segment
** numbered SEG_NO with NFIELDS fields. DOCMAP[i] (caller-allocated, segs[i]->max_doc entries)
** gets the new number of each doc or UINT32_MAX when it was deleted. *OUT is NULL when no
** document is live. */
qb_code qi__merge(qi__seg *const *segs, const uint64_t *const *live, size_t n, uint32_t nfields,
                  uint32_t seg_no, qi__seg **out, uint32_t **docmap, const atomic_int *stop,
                  qb_err *err);

/* ---- snapshot --------------------------------------------------------------------------- */

struct qi_snapshot {
  atomic_uint refs;
  qi_index *ix;
  size_t nseg, segcap;  /* segcap: entries allocated in segs (base has segcap + 1) */
  qi_segment *segs;
  uint64_t *base;
  uint64_t max_doc, live_docs;
  size_t nfields, fcap;
  qi__field **fields;   /* copy of the pointer array (fields themselves owned by the index) */
  qi_field_stats *stats;
};

/* Segment files (persist.c). */
qb_code qi__seg_write(const qi__seg *s, const char *dir, qb_err *err);
/* Map the segment file PATH (read-only) into *OUT. VERIFY: check the checksum and decode every
** posting (files found at open); 0 only for a file this process has just written from memory
** (the structure is still bounds-checked). */
qb_code qi__seg_read(const char *path, int verify, qi__seg **out, qb_err *err);
/* The commit file naming SEG_NOS; other segment files are removed, but those numbered in BUSY
** (outputs of running merges, not yet named). */
qb_code qi__commit_write(const char *dir, const uint32_t *seg_nos, size_t n,
                         const uint32_t *busy, size_t nbusy, uint64_t watermark,
                         uint32_t seg_counter, qb_err *err);
qb_code qi__commit_read(const char *dir, uint32_t **seg_nos, size_t *n, uint64_t *watermark,
                        uint32_t *seg_counter, qb_err *err);

/* Delete the index's files when its last reference goes (catalog delete). */
void qi__index_remove_on_free(qi_index *ix);
/* 1 when a write failed after changing memory (ix->failed): the catalog replaces the index with
** one reopened from its store. Threads: any. */
int qi__index_failed(qi_index *ix);

/* ---- store (SQLite) --------------------------------------------------------------------- */

typedef struct qi__store {
  sqlite3 *db;           /* writer connection (under the index writer lock) */
  sqlite3 *rdb;          /* reader connection (under rlock) */
  pthread_mutex_t rlock;
  sqlite3_stmt *ins, *del, *sel_id, *meta_put, *rsel;
  sqlite3_stmt *rsel_seq, *rbegin, *rend; /* reader: a source by rowid; one read transaction */
  int in_txn;
} qi__store;

qb_code qi__store_open(qi__store *st, const char *dir, int create, int sync_normal, qb_err *err);
void qi__store_close(qi__store *st);
qb_code qi__store_begin(qi__store *st, qb_err *err);
qb_code qi__store_commit(qi__store *st, qb_err *err);
void qi__store_rollback(qi__store *st);
qb_code qi__store_meta_put(qi__store *st, const char *key, const char *val, qb_err *err);
/* Value of KEY (qb_buf appended) or QB_NOTFOUND. Writer connection. */
qb_code qi__store_meta_get(qi__store *st, const char *key, qb_buf *out, qb_err *err);
/* Put/replace doc ID with SEQ (its rowid), VERSION, SOURCE. */
qb_code qi__store_put(qi__store *st, const char *id, uint64_t seq, uint64_t version,
                      const char *src, size_t len, qb_err *err);
qb_code qi__store_delete(qi__store *st, const char *id, qb_err *err);
/* Reader connection: source, version, seq of ID. */
qb_code qi__store_get(qi__store *st, const char *id, qb_buf *src, uint64_t *version, uint64_t *seq,
                      qb_err *err);
/* Reader connection: the sources of N documents, by rowid SEQS[i] (its id must be IDS[i], else
** it is found by id: replaced since), appended to OUT at OFF[i], LEN[i] bytes (SIZE_MAX: gone),
** all inside one read transaction. */
qb_code qi__store_get_many(qi__store *st, const uint64_t *seqs, const char *const *ids, size_t n,
                           qb_buf *out, size_t *off, size_t *len, qb_err *err);
qb_code qi__store_checkpoint(qi__store *st, qb_err *err);

/* ---- the writer (index.c, open.c) ------------------------------------------------------ */

typedef struct wseg {
  qi__seg *core;
  uint64_t *bits;  /* writer's live bitmap (NULL: all live) */
  uint32_t ndel;
  uint8_t dirty;   /* bits changed since the last publish */
  uint8_t persisted; /* its file is on disk */
  uint8_t merging; /* input of a running background merge: nothing else removes it */
  qi__live *pub;   /* last published bitmap, NULL when none */
} wseg;

/* The _id map holds only the documents of the buffer; a segment's documents are found through
** the segment's own (mapped) _id table and the writer's live bits (qi__id_locate). */
typedef struct ident {
  char *id;        /* NULL: empty slot */
  uint32_t len;
  uint32_t seg_no, doc;
  uint64_t hash;
  uint64_t version;
  uint64_t seq;    /* _seq_no of the indexed version */
} ident;

/* Where the one live copy of an _id is. */
typedef struct qi__idloc {
  ident *e;        /* the buffer's map entry, or NULL: the copy is in segment seg_no */
  uint32_t seg_no, doc;
  uint64_t version, seq;
} qi__idloc;

struct qi_index {
  atomic_uint refs;
  char *dir;
  qi_options opt;
  pthread_mutex_t lock;      /* writer state below */
  pthread_mutex_t snap_lock; /* cur */
  qi__store st;
  qi__mapping map;
  qi__analysis *analysis;    /* settings.analysis; immutable once open (NULL: none) */
  char *settings;            /* JSON text, qb_malloc'd */
  size_t settings_len;
  int failed;
  int remove_on_free;
  uint64_t next_seq;
  uint32_t buf_seg_no;       /* the buffer's segment number */
  uint32_t seg_counter;      /* next segment number to hand out (persisted in "segments") */
  uint64_t id_counter, id_seed;
  wseg *segs;
  size_t nseg, segcap;
  qi__builder *buf;
  uint64_t *bdel;            /* deletes of buffered docs */
  size_t bdelcap;            /* words */
  ident *ids;
  size_t idcap, nids;        /* the buffer's _id map: power-of-two table, entries */
  uint64_t live_count;       /* live documents (buffer and segments) */
  qi_snapshot *cur;
  uint64_t merges, refreshes;
  uint64_t seg_gen, committed_gen; /* segment list changes; the last one persisted */
  uint64_t committed_seq;          /* next_seq recorded in the last commit file */
  uint64_t flushed_seq;            /* next_seq at the last flush: every smaller _seq_no is in a
                                   ** segment */
  /* the persister (persist_bg.c); all under ix->lock */
  pthread_t pthread;
  int persister;                   /* the thread runs */
  int persist_stop, persist_want, persisting;
  pthread_cond_t persist_cv;       /* work may be there, or stop */
  pthread_cond_t persist_idle_cv;  /* a pass finished */
  qi__builder **dead;              /* flushed buffers, freed by the persister */
  size_t ndead, deadcap;
  /* background merges (merger.c); all under ix->lock but merge_stop */
  pthread_t *mthreads;
  size_t nmthreads;                /* running merge threads; 0: merges run inside refresh */
  pthread_cond_t merge_cv;         /* work may be there, or stop */
  pthread_cond_t idle_cv;          /* a merge finished */
  atomic_int merge_stop;           /* closing: threads exit, a running merge gives up */
  size_t merges_running;
  uint32_t *merge_out;             /* nmthreads slots: seg_no a running merge writes, or
                                   ** UINT32_MAX */
  int merge_hold;                  /* force_merge runs: no new background merge starts */
  uint64_t merge_fail_gen;         /* seg_gen when a merge last failed (no retry before it
                                   ** changes); UINT64_MAX: none */
#ifdef QB_ASSERTS
  pthread_t lock_owner;            /* valid while lock_held: who holds ix->lock */
  int lock_held;
#endif
};

/* ix->lock, with its holder recorded in checked builds: a writer helper starts with
** QB_ASSERT(qi__locked(ix)), "the calling thread holds ix->lock" (index.c's invariant). */
static inline void qi__lock(qi_index *ix) {
  pthread_mutex_lock(&ix->lock);
#ifdef QB_ASSERTS
  ix->lock_owner = pthread_self();
  ix->lock_held = 1;
#endif
}

static inline bool qi__locked(const qi_index *ix) {
#ifdef QB_ASSERTS
  return ix->lock_held && pthread_equal(ix->lock_owner, pthread_self());
#else
  (void)ix;
  return true;
#endif
}

static inline void qi__unlock(qi_index *ix) {
  QB_ASSERT(qi__locked(ix));
#ifdef QB_ASSERTS
  ix->lock_held = 0;
#endif
  pthread_mutex_unlock(&ix->lock);
}

/* pthread_cond_wait on ix->lock, keeping the holder record of checked builds true. */
static inline void qi__cond_wait(qi_index *ix, pthread_cond_t *cv) {
  QB_ASSERT(qi__locked(ix));
#ifdef QB_ASSERTS
  ix->lock_held = 0;
#endif
  pthread_cond_wait(cv, &ix->lock);
#ifdef QB_ASSERTS
  ix->lock_owner = pthread_self();
  ix->lock_held = 1;
#endif
}

/* Reference counts (indexes, snapshots, segments, live bitmaps): a new reference is taken
** from one already held, and a count never drops below zero. qi__unref is true for the last. */
static inline void qi__ref(atomic_uint *refs) {
  unsigned prev = atomic_fetch_add_explicit(refs, 1, memory_order_relaxed);
  QB_ASSERT(prev > 0);
}

static inline bool qi__unref(atomic_uint *refs) {
  unsigned prev = atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel);
  QB_ASSERT(prev > 0);
  return prev == 1;
}


ident *qi__id_find(qi_index *ix, const char *id, size_t len);
/* 1 and *OUT when ID has a live copy (buffer or segment), else 0. */
int qi__id_locate(qi_index *ix, const char *id, size_t len, qi__idloc *out);
/* Empty the buffer's _id map (its documents went into a segment). */
void qi__id_clear(qi_index *ix);
ident *qi__id_insert(qi_index *ix, const char *id, size_t len);
void qi__id_remove(qi_index *ix, ident *e);
qb_code qi__mark_deleted(qi_index *ix, uint32_t seg_no, uint32_t doc);
void qi__wseg_fini(wseg *w);
qb_code qi__flush_buffer(qi_index *ix, qb_err *err);
qb_code qi__refresh_locked(qi_index *ix, qb_err *err);
qb_code qi__check_id(const char *id, qb_err *err);
void qi__index_free(qi_index *ix);
qb_code qi__publish(qi_index *ix, qb_err *err);
qb_code qi__publish_cores(qi_index *ix, qb_err *err); /* the persister's: mapped cores only */

/* persist_bg.c: segment files and the commit file. qi__persist_locked writes them now (under
** the lock); qi__persist_soon asks the persister thread (or persists now when there is none);
** qi__retire_builder hands a flushed buffer to the thread to free. Start after open, stop
** before the merger at free. */
void qi__persist_locked(qi_index *ix);
void qi__persist_soon(qi_index *ix);
void qi__retire_builder(qi_index *ix, qi__builder *b);
void qi__persister_start(qi_index *ix);
void qi__persister_stop(qi_index *ix);
/* Wait (holding ix->lock, which the wait releases) until the persister has nothing to do. */
void qi__persister_wait_idle(qi_index *ix);
/* The max_segments / merge_factor in effect. */
size_t qi__max_segments(const qi_index *ix);
size_t qi__merge_factor(const qi_index *ix);

/* merger.c: background merges. Start the threads (after open; on failure merges stay inside
** refresh), wake them after the segment list grew, stop and join them (index free). */
void qi__merger_start(qi_index *ix);
void qi__merger_kick(qi_index *ix);
void qi__merger_stop(qi_index *ix);
/* Wait (holding ix->lock, which the wait releases) until no background merge runs. */
void qi__merger_wait_idle(qi_index *ix);

/* Free a buffer jansson allocated for us (json_dumps) with the function jansson allocates with:
** qb_sized_free once a program installed it (json_set_alloc_funcs, base.h), free() before. */
static inline void qi__json_free(void *p) {
  json_free_t f;
  json_get_alloc_funcs(NULL, &f);
  f(p);
}

#endif
