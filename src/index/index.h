/* index.h: a search shard (layer src/index, prefix qi_). Analysis, mappings, an inverted index
** of immutable segments plus an in-memory buffer, BM25 exactly as Lucene >= 8 computes it,
** columnar doc values, and a durable document store (SQLite, WAL) under the index directory.
** A catalog holds several named indexes under one data directory.
**
** Model (Lucene's): a write goes to SQLite (durable when the call returns) and to the
** in-memory buffer; qi_index_refresh turns the buffer into an immutable segment and publishes a
** new snapshot. Searchers take a snapshot (refcounted, read-only, shareable between threads)
** and see one consistent set of segments and deleted docs while writes, refresh and merges go
** on. Documents are numbered per segment (0..max_doc-1); deleted documents stay in a segment
** (and in its statistics, as in Lucene) until a merge drops them.
**
** Threads: qi_catalog and qi_index are "any thread" (internal mutexes). qi_snapshot and
** everything reached from it (segments, postings data, doc values) are immutable: share them
** freely while a reference is held. A qi_postings iterator belongs to one thread at a time.
** A snapshot holds a reference on its index: closing (releasing) an index whose snapshots are
** still held keeps it open until the last one is released.
**
** Durability: see docs/index.md. The store is the source of truth; refresh also writes new
** segments to files, and open loads them and replays only the store's tail past them. */
#ifndef QI_INDEX_H
#define QI_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef struct qi_catalog qi_catalog;   /* named indexes under one data directory */
typedef struct qi_index qi_index;       /* one shard: writer + published snapshot */
typedef struct qi_snapshot qi_snapshot; /* refcounted read view: segments + live docs */
typedef struct qi_segment qi_segment;   /* one segment as seen by a snapshot */
typedef struct qi_postings qi_postings; /* iterator over one term's docs in one segment */

#define QI_NO_MORE_DOCS UINT32_MAX /* what next/advance return past the last document */
#define QI_ID_MAX 512              /* longest _id in bytes (Elasticsearch's limit) */
#define QI_BLOCK_SIZE 128          /* documents per postings block (block-max data) */
#define QI_MAX_TOKEN_CHARS 255     /* the standard tokenizer splits longer words */

/* ---- field types and mappings -------------------------------------------------------------- */

typedef enum qi_type {
  QI_TEXT = 1, /* analyzed (standard analyzer), inverted + norms; no doc values */
  QI_KEYWORD,  /* one term per value, inverted (freq 1, no norms) + keyword doc values */
  QI_LONG,     /* i64 doc values */
  QI_INTEGER,  /* i64 doc values, value range of int32 */
  QI_DOUBLE,   /* f64 doc values */
  QI_FLOAT,    /* f64 doc values holding float-precision values */
  QI_BOOLEAN,  /* i64 doc values 0/1 */
  QI_DATE,     /* i64 doc values, epoch milliseconds (UTC) */
} qi_type;

/* "text", "keyword", ... for T; "?" when out of range. */
const char *qi_type_name(qi_type t);

/* Dates (QI_DATE values), read one way for documents and queries alike. S[0..LEN) (need not be
** NUL-terminated) in Elasticsearch's default format strict_date_optional_time||epoch_millis:
** "2024", "2024-01", "2024-01-31", "2024-01-31T10", "...T10:00", "...T10:00:00.123" (or ","; 1..9
** fraction digits, ms kept), then "Z", "+01", "+0130" or "+01:30" after a time; otherwise an
** optionally signed integer of epoch milliseconds ("20240" is 20240 ms, "2024" is a year). The
** day must exist in its month. *MS: UTC milliseconds since 1970. Errors: QB_INVAL (*MS is left
** as it was). Any thread. */
qb_code qi_date_parse(const char *s, size_t len, int64_t *ms);
/* MS as "2024-01-31T10:00:00.000Z" (Elasticsearch's rendering) into BUF (CAP >= 32 is enough). */
void qi_date_format(int64_t ms, char *buf, size_t cap);
/* Civil dates <-> days since 1970-01-01 (proleptic Gregorian, any year; M 1..12, D 1..31). */
int64_t qi_date_from_civil(int64_t y, unsigned m, unsigned d);
void qi_date_to_civil(int64_t days, int64_t *y, unsigned *m, unsigned *d);

typedef enum qi_analyzer {
  QI_ANALYZER_NONE = 0,     /* field is not analyzed (numbers, dates, booleans) */
  QI_ANALYZER_STANDARD = 1, /* Lucene's StandardAnalyzer without stop words */
  QI_ANALYZER_KEYWORD = 2,  /* the whole value is one term */
  QI_ANALYZER_CHAIN = 3,    /* any other analyzer: the field's qi_chain (qi_chain_analyze) */
} qi_analyzer;

typedef struct qi_chain qi_chain; /* an analyzer: tokenizer + token filters (analyzers.c) */

/* Doc values a field has in a segment. Numbers are stored as one of two columns. */
typedef enum qi_dv_kind {
  QI_DV_NONE = 0,
  QI_DV_I64 = 1,     /* long, integer, boolean (0/1), date (epoch ms) */
  QI_DV_F64 = 2,     /* double, float */
  QI_DV_KEYWORD = 3, /* ordinals into a per-segment sorted term dictionary, multi-valued */
} qi_dv_kind;

/* A field as a snapshot knows it. Full dotted path: "title", "title.keyword", "user.name".
** Field ids are dense, stable for the life of the index, and the same in every segment. NAME
** stays valid while the snapshot (or the index, for qi_index_field) is alive. */
typedef struct qi_field_info {
  const char *name;
  uint32_t id;
  qi_type type;
  qi_analyzer analyzer; /* how query text for this field is analyzed (qi_analyze) */
  qi_dv_kind dv;        /* doc values kind */
  uint8_t indexed;      /* 1: has an inverted index (text, keyword) */
  uint8_t has_norms;    /* 1: text fields; per-doc one-byte SmallFloat length */
  uint8_t has_positions; /* 1: text fields; qi_postings_positions works (phrase queries) */
  /* QI_ANALYZER_CHAIN: the mapping's analyzer and search_analyzer (search_chain is index_chain
  ** when none is given); valid while the snapshot is held. NULL otherwise. */
  const qi_chain *index_chain, *search_chain;
} qi_field_info;

/* ---- analysis ------------------------------------------------------------------------------ */

/* A token handed to a qi_token_fn. TERM is lowercased UTF-8 (not NUL-terminated) and valid
** only during the callback. Offsets are byte offsets into the analyzed text. */
typedef struct qi_token {
  const char *term;
  uint32_t len;
  uint32_t position; /* 0, 1, 2, ... in token order */
  uint32_t start_offset, end_offset;
  const char *type;  /* the tokenizer's token type ("<ALPHANUM>", "<NUM>", "word", ...) */
} qi_token;

/* Return QB_OK to go on; any other code stops analysis and is returned by qi_analyze. */
typedef qb_code (*qi_token_fn)(void *ud, const qi_token *tok, qb_err *err);

/* Split TEXT (LEN bytes of UTF-8) with analyzer A and call FN for each token.
** STANDARD: Unicode word boundaries (an approximation of UAX#29: letters and digits of any
** script form words; ' . : between letters and , . between digits stay inside a word; '_' joins;
** each Han ideograph and Hiragana character is its own token), lowercased (ASCII, Latin-1,
** Latin Extended-A, Greek, Cyrillic, Armenian), words longer than QI_MAX_TOKEN_CHARS split.
** KEYWORD: one token, the whole text, unchanged. NONE: no tokens.
** Errors: QB_INVAL for invalid UTF-8 (message gives the byte offset); whatever FN returns.
** Threads: any; no shared state. Allocates nothing. */
qb_code qi_analyze(qi_analyzer a, const char *text, size_t len, qi_token_fn fn, void *ud,
                   qb_err *err);

/* Analyze TEXT with chain C (qi_field_info.index_chain / search_chain, qi_snapshot_chain): its
** tokenizer, then its filters in order. A token a stop filter drops leaves its position unused,
** as in Lucene. Same contract as qi_analyze otherwise (allocates nothing unless a stemmer must be
** made; a stemmer is shared through a pool). */
qb_code qi_chain_analyze(const qi_chain *c, const char *text, size_t len, qi_token_fn fn,
                         void *ud, qb_err *err);

/* The analyzer named NAME (NUL-terminated) for S's index: a built-in one (standard, simple,
** whitespace, keyword, stop, english and the other language analyzers, see docs/rest-api.md) or
** one of the index's settings.analysis.analyzer. NULL when there is none. Valid while S is held. */
const qi_chain *qi_snapshot_chain(const qi_snapshot *s, const char *name);

/* Elasticsearch's _analyze: BODY (LEN bytes of JSON: text, and analyzer | field | tokenizer +
** filter) against IX (NULL: no index, built-in analyzers only); appends {"tokens":[{"token",
** "start_offset","end_offset","type","position"}]} to OUT. Errors: QB_INVAL (unknown analyzer,
** field or option: the message is illegal_argument_exception's reason), QB_MALFORMED (not
** JSON, or a value of the wrong type), QB_NOMEM. Threads: any. */
qb_code qi_index_analyze(qi_index *ix, const char *body, size_t len, qb_buf *out, qb_err *err);

/* ---- options ------------------------------------------------------------------------------- */

/* Zeroed = defaults. */
typedef struct qi_options {
  uint32_t max_buffered_docs; /* buffer becomes a (not yet visible) segment past this; 0: 50000 */
  uint32_t max_segments;      /* merge when a snapshot would have more; 0: 12 */
  uint32_t merge_factor;      /* segments merged at once; 0: 8 */
  uint8_t sync_normal;        /* 1: SQLite synchronous=NORMAL: an acked write survives a killed
                              ** process, not a power cut. 0 (default): FULL, survives both */
  uint8_t no_auto_merge;      /* 1: merge only in qi_index_force_merge (tests) */
  uint8_t no_persist;         /* 1: write no segment files; open re-indexes from the store */
  uint8_t merge_threads;      /* background merges running at once; 0: 1 */
  uint32_t merge_mb_per_sec;  /* throttle: a merge thread pauses so it reads at most this many
                              ** MiB of input per second on average; 0: no pause (the threads
                              ** run at a lower CPU priority either way) */
} qi_options;

/* ---- index lifecycle ----------------------------------------------------------------------- */

/* Create a new index in directory DIR (created if missing; must not hold an index already).
** BODY: NULL or the JSON of Elasticsearch's create-index request, {"settings":{...},
** "mappings":{"properties":{...}}}; settings are kept as given (index.number_of_shards etc.,
** flat or nested) and returned by qi_index_settings_json. OPT may be NULL.
** *OUT: the open index; close with qi_index_close. Errors: QB_INVAL (bad body or mapping,
** message shaped for mapper_parsing_exception), QB_CONFLICT (an index exists in DIR), QB_IO,
** QB_NOMEM. Threads: any; don't create the same DIR from two threads at once. */
qb_code qi_index_create(const char *dir, const char *body_json, const qi_options *opt,
                        qi_index **out, qb_err *err);

/* Open the index in DIR: load the segment files named by its commit file, then replay the
** documents the store holds past them (and apply deletes made since); a missing or damaged
** segment file only means a full rebuild from the store (logged as WARN). *OUT as above.
** Errors: QB_NOTFOUND (no index in DIR), QB_CORRUPT (store unreadable or not ours), QB_IO,
** QB_NOMEM. */
qb_code qi_index_open(const char *dir, const qi_options *opt, qi_index **out, qb_err *err);

/* Close IX (NULL: nothing): drop the caller's reference; the index is freed when no snapshot
** of it is held any more. Every acked write is already durable. An index from a catalog is
** released with qi_index_release instead (the same call). */
void qi_index_close(qi_index *ix);

/* Remove the index files in DIR and DIR itself. The index must not be open. Errors: QB_IO. */
qb_code qi_index_destroy(const char *dir, qb_err *err);

/* ---- writes -------------------------------------------------------------------------------- */

typedef struct qi_write_result {
  char id[QI_ID_MAX + 1]; /* the document's _id (generated when the caller gave none) */
  uint64_t version;       /* _version after the operation (1 for a new document) */
  uint64_t seq_no;        /* _seq_no of the operation (index-wide, from 0) */
  uint8_t created;        /* put: 1 created, 0 updated. delete: 1 found and deleted */
} qi_write_result;

/* Index document JSON (LEN bytes, a JSON object: the _source) under ID (NUL-terminated, 1..512
** bytes; NULL: generate a 20-char id as Elasticsearch does). Replaces a document with the same
** id (version + 1). Unmapped fields are mapped dynamically (see docs/index.md). Durable when
** this returns QB_OK (one SQLite transaction); searchable after the next qi_index_refresh;
** qi_index_get sees it at once. RES may be NULL.
** Errors: QB_INVAL (not a JSON object, bad id, or a value that does not fit the mapping: the
** message names the field and the rule, e.g. "failed to parse field [price] of type [long]:
** 'abc' is not a number"; the index is unchanged), QB_IO (disk; the index becomes failed and
** refuses writes until reopened), QB_NOMEM. Threads: any (serialized inside). */
qb_code qi_index_put(qi_index *ix, const char *id, const char *json, size_t len,
                     qi_write_result *res, qb_err *err);

/* Delete document ID. Durable when it returns. Errors: QB_NOTFOUND (no such document; RES
** ->created = 0), QB_INVAL (bad id), QB_IO, QB_NOMEM. */
qb_code qi_index_delete(qi_index *ix, const char *id, qi_write_result *res, qb_err *err);

/* A bulk batch: many puts and deletes in ONE SQLite transaction, acked together by
** qi_bulk_commit. Each item succeeds or fails on its own (as _bulk items do); a failed item
** changes nothing. The batch holds the index's writer lock from begin to commit/abort, so keep
** it short and use it from one thread. Items become visible to qi_index_get and durable when
** qi_bulk_commit returns QB_OK. */
typedef struct qi_bulk qi_bulk;
qb_code qi_bulk_begin(qi_index *ix, qi_bulk **out, qb_err *err);
qb_code qi_bulk_put(qi_bulk *b, const char *id, const char *json, size_t len,
                    qi_write_result *res, qb_err *err);
qb_code qi_bulk_delete(qi_bulk *b, const char *id, qi_write_result *res, qb_err *err);
/* Commit and free B. Errors: QB_IO (nothing of the batch is durable; the index becomes failed
** and must be reopened, which restores the last durable state). */
qb_code qi_bulk_commit(qi_bulk *b, qb_err *err);

/* Conditions on a write (Elasticsearch's op_type=create, if_seq_no, version). Zeroed = none. */
typedef struct qi_write_cond {
  uint8_t create_only;    /* put: fail if the document exists (op_type=create, _create) */
  uint8_t has_if_seq_no;  /* fail unless the document exists with _seq_no == if_seq_no */
  uint64_t if_seq_no;
  uint8_t has_version;    /* put: store the document with _version VERSION (>= 1) instead of
                          ** the current one + 1: a replica applies its primary's versions */
  uint64_t version;
} qi_write_cond;

/* qi_index_put / qi_index_delete / qi_bulk_put / qi_bulk_delete with COND (may be NULL).
** A failed condition is QB_CONFLICT with version_conflict_engine_exception's reason, e.g.
** "[1]: version conflict, document already exists (current version [1])", and changes nothing. */
qb_code qi_index_put_if(qi_index *ix, const char *id, const char *json, size_t len,
                        const qi_write_cond *cond, qi_write_result *res, qb_err *err);
qb_code qi_index_delete_if(qi_index *ix, const char *id, const qi_write_cond *cond,
                           qi_write_result *res, qb_err *err);
qb_code qi_bulk_put_if(qi_bulk *b, const char *id, const char *json, size_t len,
                       const qi_write_cond *cond, qi_write_result *res, qb_err *err);
qb_code qi_bulk_delete_if(qi_bulk *b, const char *id, const qi_write_cond *cond,
                          qi_write_result *res, qb_err *err);

/* Make every write so far searchable: the buffer becomes a segment, pending deletes apply,
** the background merger is woken if the segment count passed max_segments (refresh never
** waits for a merge), a new snapshot is published; the index's persister thread then writes
** the new segments to files, reads them back mapped and writes the commit file (a failure
** there is logged as WARN, not returned: the store stays the source of truth; see
** qi_index_wait_merges). Errors: QB_NOMEM (the old snapshot stays published).
** Threads: any; blocks writers of this index while it runs, never searchers. */
qb_code qi_index_refresh(qi_index *ix, qb_err *err);

/* Checkpoint SQLite's WAL into the main database file. Acked writes are durable without it.
** Errors: QB_IO. */
qb_code qi_index_flush(qi_index *ix, qb_err *err);

/* Refresh, then merge segments until at most MAX_SEGMENTS (>= 1) remain, dropping deleted
** documents, and publish. Waits for a running background merge first and runs its merges on
** the calling thread. Errors: QB_NOMEM. */
qb_code qi_index_force_merge(qi_index *ix, uint32_t max_segments, qb_err *err);

/* Wait until the background merges have nothing left to do (the segment count is within
** max_segments, or the last merge failed and the segments did not change since) and the
** persister has written every segment file and the commit file (a refresh makes documents
** visible at once; their files follow on that thread). For tests and benchmarks: searches and
** writes never need it. Threads: any. */
void qi_index_wait_merges(qi_index *ix);

/* ---- reads on the index -------------------------------------------------------------------- */

/* Realtime get: the current _source of document ID (also not yet refreshed ones) appended to
** SOURCE (caller's qb_buf), and its version and seq_no (either pointer may be NULL).
** Errors: QB_NOTFOUND, QB_INVAL (bad id), QB_IO, QB_NOMEM. */
qb_code qi_index_get(qi_index *ix, const char *id, qb_buf *source, uint64_t *version,
                     uint64_t *seq_no, qb_err *err);

/* Live documents, including buffered (not yet refreshed) ones. */
uint64_t qi_index_doc_count(qi_index *ix);

/* The mapping as Elasticsearch shows it: {"properties":{"title":{"type":"text","fields":
** {"keyword":{"type":"keyword","ignore_above":256}}},...}} appended to OUT. */
qb_code qi_index_mapping_json(qi_index *ix, qb_buf *out, qb_err *err);

/* Add fields from MAPPING_JSON ({"properties":{...}}, Elasticsearch's put-mapping body).
** Existing fields may be repeated with the same type. Errors: QB_INVAL (bad JSON, unknown type,
** or a type change of an existing field: illegal_argument_exception), QB_IO, QB_NOMEM. */
qb_code qi_index_put_mapping(qi_index *ix, const char *mapping_json, size_t len, qb_err *err);

/* The settings given at creation (or by qi_index_settings_set), as a JSON object appended to
** OUT. */
qb_code qi_index_settings_json(qi_index *ix, qb_buf *out, qb_err *err);

/* Replace the settings with JSON/LEN (a whole object, as qi_index_settings_json returns it),
** stored before they are served: they survive a restart, and a failure changes nothing.
** The analysis settings cannot change (QB_INVAL). Errors: QB_INVAL, QB_IO, QB_NOMEM. */
qb_code qi_index_settings_set(qi_index *ix, const char *json, size_t len, qb_err *err);

/* Writer-side counters, for _stats and tests. */
typedef struct qi_index_stats {
  uint64_t live_docs;      /* as qi_index_doc_count */
  uint64_t buffered_docs;  /* written but not refreshed */
  uint32_t segments;       /* in the published snapshot */
  uint64_t merges;         /* merges done since open */
  uint64_t refreshes;      /* snapshots published since open */
  uint32_t merges_running; /* background merges in progress */
  uint64_t deleted_docs;   /* in the published snapshot's segments, not yet merged away */
  uint64_t disk_bytes;     /* the index directory's files (segments, store, its WAL) */
} qi_index_stats;
void qi_index_stats_get(qi_index *ix, qi_index_stats *out);

/* ---- snapshots ----------------------------------------------------------------------------- */

/* The latest published snapshot, with a reference for the caller (release it; the reference
** also keeps IX alive). Never NULL for an open index (an empty index has a snapshot with no
** segments). Threads: any. */
qi_snapshot *qi_index_snapshot(qi_index *ix);
/* Another reference to S (returns S). */
qi_snapshot *qi_snapshot_retain(qi_snapshot *s);
/* Drop a reference (NULL: nothing); the last one frees the snapshot. Any thread. */
void qi_snapshot_release(qi_snapshot *s);

/* Live documents in S, and the sum of max_doc over its segments. */
uint64_t qi_snapshot_doc_count(const qi_snapshot *s);
uint64_t qi_snapshot_max_doc(const qi_snapshot *s);

/* Segments of S, in index order (older documents first). The pointer stays valid while S is
** held. qi_snapshot_doc_base(s, i) is the sum of max_doc of segments before i, so
** base + local doc is a snapshot-wide document number (ties in top-k break on it). */
size_t qi_snapshot_segment_count(const qi_snapshot *s);
const qi_segment *qi_snapshot_segment(const qi_snapshot *s, size_t i);
uint64_t qi_snapshot_doc_base(const qi_snapshot *s, size_t i);

/* Look up field NAME in S's mapping. Errors: QB_NOTFOUND. */
qb_code qi_snapshot_field(const qi_snapshot *s, const char *name, qi_field_info *out);
/* Field by id (0 <= id < qi_snapshot_field_count). */
size_t qi_snapshot_field_count(const qi_snapshot *s);
qb_code qi_snapshot_field_by_id(const qi_snapshot *s, uint32_t id, qi_field_info *out);

/* Per-field statistics over all segments of S (deleted docs included, as in Lucene):
** doc_count = documents with at least one term in the field, sum_total_term_freq = sum of the
** field lengths (avgdl = sum_total_term_freq / doc_count), sum_doc_freq = sum of postings. */
typedef struct qi_field_stats {
  uint64_t doc_count;
  uint64_t sum_total_term_freq;
  uint64_t sum_doc_freq;
} qi_field_stats;
void qi_snapshot_field_stats(const qi_snapshot *s, uint32_t field, qi_field_stats *out);

/* Documents containing TERM (LEN bytes, already analyzed) in FIELD across all segments of S
** (deleted included, as Lucene's docFreq); 0 when absent. */
uint64_t qi_snapshot_doc_freq(const qi_snapshot *s, uint32_t field, const char *term, size_t len);
/* As qi_snapshot_doc_freq, and ORDS[i] (qi_snapshot_segment_count entries) the term's ordinal
** in segment i, -1 where it is absent: a search opens its postings without a second lookup. */
uint64_t qi_snapshot_doc_freq_ords(const qi_snapshot *s, uint32_t field, const char *term, size_t len,
                                   int64_t *ords);

/* _source of local document DOC of segment SEG (of S) appended to OUT, read from the store by
** the document's _id: it is the newest stored version, which differs from the segment's if the
** document was updated after S was taken. Errors: QB_NOTFOUND (deleted since), QB_IO, QB_NOMEM.
** Threads: any (a mutex serializes store reads). */
qb_code qi_snapshot_source(const qi_snapshot *s, const qi_segment *seg, uint32_t doc, qb_buf *out,
                           qb_err *err);

/* The _source of N documents at once: document I is local doc DOCS[I] of segment SEGS[I] (of
** S); its text is appended to OUT at OFF[I], LEN[I] bytes, or LEN[I] == SIZE_MAX when it was
** deleted since S. The same texts as N qi_snapshot_source calls, found by the document's seq_no
** (the store's rowid; by _id only when the row was replaced since S) inside one read of the
** store. Errors: QB_INVAL (a doc out of range), QB_IO, QB_CORRUPT, QB_NOMEM. Threads: any. */
qb_code qi_snapshot_sources(const qi_snapshot *s, const qi_segment *const *segs, const uint32_t *docs,
                            size_t n, qb_buf *out, size_t *off, size_t *len, qb_err *err);

/* ---- segments ------------------------------------------------------------------------------ */

/* Documents numbered 0..max_doc-1 in SEG, deleted ones included. */
uint32_t qi_segment_max_doc(const qi_segment *seg);
uint32_t qi_segment_live_count(const qi_segment *seg);
/* 1 when DOC is live in this snapshot's view of SEG. */
int qi_segment_is_live(const qi_segment *seg, uint32_t doc);
/* Live-docs bitmap (bit d of word d/64), or NULL when every document is live. */
const uint64_t *qi_segment_live_bits(const qi_segment *seg);

/* _id of DOC (borrowed, NUL-terminated, valid while the snapshot is held); *LEN may be NULL. */
const char *qi_segment_doc_id(const qi_segment *seg, uint32_t doc, size_t *len);
/* _seq_no and _version DOC was indexed with. */
uint64_t qi_segment_doc_seq_no(const qi_segment *seg, uint32_t doc);
uint64_t qi_segment_doc_version(const qi_segment *seg, uint32_t doc);

/* Norms of FIELD: one SmallFloat byte (qi_smallfloat_int_to_byte4 of the field length) per
** document, 0 = field absent; NULL when the field has no norms in SEG. Borrowed. */
const uint8_t *qi_segment_norms(const qi_segment *seg, uint32_t field);

/* Term dictionary of FIELD in SEG: terms sorted by bytes (memcmp, shorter first). */
uint32_t qi_segment_term_count(const qi_segment *seg, uint32_t field);
/* Term number ORD (< term_count), borrowed, not NUL-terminated. */
const char *qi_segment_term(const qi_segment *seg, uint32_t field, uint32_t ord, size_t *len);
/* Number of the first term >= TERM (term_count when none): prefix and range scans. */
uint32_t qi_segment_term_seek(const qi_segment *seg, uint32_t field, const char *term, size_t len);
/* Number of TERM, or -1 when absent. */
int64_t qi_segment_term_find(const qi_segment *seg, uint32_t field, const char *term, size_t len);
/* Postings-level data of term ORD: docs containing it (deleted included) and total freq. */
uint32_t qi_segment_term_doc_freq(const qi_segment *seg, uint32_t field, uint32_t ord);
uint64_t qi_segment_term_total_freq(const qi_segment *seg, uint32_t field, uint32_t ord);

/* ---- postings iteration -------------------------------------------------------------------- */

/* Block-level upper-bound data (block-max WAND / MaxScore). One block holds QI_BLOCK_SIZE
** documents (the last block may hold fewer). The largest BM25 contribution of any doc in the
** block is at most qi_bm25_score(w, max_freq, min_norm) since a score grows with freq and shrinks
** with length; for fields without norms min_norm is 1. */
typedef struct qi_block_info {
  uint32_t first_doc; /* first document of the block */
  uint32_t last_doc;  /* last document of the block */
  uint32_t max_freq;  /* largest term frequency in the block */
  uint8_t min_norm;   /* smallest nonzero norm byte in the block (shortest field) */
} qi_block_info;

/* Iterator over term ORD of FIELD in SEG. Skips documents deleted in SEG's snapshot view.
** *OUT: free with qi_postings_free; valid while the snapshot is held; one thread at a time.
** Positioned before the first document (doc() = QI_NO_MORE_DOCS until next/advance).
** Errors: QB_NOMEM, QB_INVAL (field or ord out of range). */
qb_code qi_postings_open(const qi_segment *seg, uint32_t field, uint32_t ord, qi_postings **out,
                         qb_err *err);
/* Same for a term given by its bytes. *OUT is NULL (and QB_OK) when the term is absent. */
qb_code qi_postings_open_term(const qi_segment *seg, uint32_t field, const char *term, size_t len,
                              qi_postings **out, qb_err *err);
void qi_postings_free(qi_postings *p);

/* Move to the next live document and return it, or QI_NO_MORE_DOCS. */
uint32_t qi_postings_next(qi_postings *p);
/* Move to the first live document >= TARGET and return it (or QI_NO_MORE_DOCS). Targets must
** not go backwards; a target <= doc() stays put. Skips whole blocks without decoding them. */
uint32_t qi_postings_advance(qi_postings *p, uint32_t target);
/* Current document and its term frequency. */
uint32_t qi_postings_doc(const qi_postings *p);
uint32_t qi_postings_freq(const qi_postings *p);
/* Positions of the current document in the term's field: token numbers from 0, ascending;
** values of a multi-valued field are 100 positions apart (Elasticsearch's
** position_increment_gap). Writes up to MAX of them to OUT and returns how many there are
** (the freq), or 0 when the field keeps no positions (keyword). Call after next/advance
** returned a document; costs nothing unless called. */
uint32_t qi_postings_positions(qi_postings *p, uint32_t *out, uint32_t max);

/* Docs in the postings list (deleted included) and the cost estimate for planners. */
uint32_t qi_postings_doc_freq(const qi_postings *p);

/* Block data of the block holding the first posting >= TARGET, without decoding it (Lucene's
** advanceShallow + getImpacts). Returns 0 when no posting >= TARGET exists. */
int qi_postings_block_for(const qi_postings *p, uint32_t target, qi_block_info *out);
/* The whole list as one block: max freq and min norm over all postings (MaxScore bounds). */
void qi_postings_term_bound(const qi_postings *p, qi_block_info *out);
/* Raw blocks: count and the data of block I. */
uint32_t qi_postings_block_count(const qi_postings *p);
void qi_postings_block(const qi_postings *p, uint32_t i, qi_block_info *out);

/* ---- BM25 (Lucene 8+/Elasticsearch) -------------------------------------------------------- */

/* SmallFloat.intToByte4 / byte4ToInt: the one-byte field length Lucene stores as norm. */
uint8_t qi_smallfloat_int_to_byte4(uint32_t i);
uint32_t qi_smallfloat_byte4_to_int(uint8_t b);

/* idf = ln(1 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5)), computed in double and
** rounded to float as Lucene does. */
float qi_bm25_idf(uint64_t doc_count, uint64_t doc_freq);

/* The precomputed weight of one query term (Lucene's BM25Scorer): weight = boost * idf and
** cache[n] = 1 / (k1 * (1 - b + b * byte4ToInt(n) / avgdl)). Plain struct; fill it with
** qi_bm25_init, then share it read-only between threads. */
typedef struct qi_bm25 {
  float k1, b;       /* 1.2, 0.75 by default */
  float idf;         /* as qi_bm25_idf */
  float avgdl;       /* (float)(sum_total_term_freq / (double)doc_count), 1 when doc_count 0 */
  float weight;      /* boost * idf */
  float cache[256];  /* per norm byte, see above */
} qi_bm25;

/* Fill W for a term with DOC_FREQ in a field with STATS (qi_snapshot_field_stats). K1 < 0 or
** B < 0 means the defaults 1.2 and 0.75. */
void qi_bm25_init(qi_bm25 *w, float boost, const qi_field_stats *stats, uint64_t doc_freq,
                  float k1, float b);

/* score = weight * tf / (tf + k1*(1 - b + b*dl/avgdl)), computed as Lucene:
** weight - weight / (1 + freq * cache[norm]). Fields without norms pass norm 1. */
static inline float qi_bm25_score(const qi_bm25 *w, uint32_t freq, uint8_t norm) {
  return w->weight - w->weight / (1.0f + (float)freq * w->cache[norm]);
}

/* Score N documents at once: OUT[i] = qi_bm25_score(w, freqs[i], norms[i]). */
void qi_bm25_score_block(const qi_bm25 *w, const uint32_t *freqs, const uint8_t *norms, size_t n,
                         float *out);

/* ---- doc values ---------------------------------------------------------------------------- */

/* Doc values kind of FIELD in SEG (QI_DV_NONE when the field has none there). */
qi_dv_kind qi_dv_kind_of(const qi_segment *seg, uint32_t field);

/* Block reads, what expressions and UDF arguments are fed from: for i < N, OUT[i] = value of
** DOCS[i] (local doc numbers of SEG) and PRESENT[i] = 1, or OUT[i] = 0 and PRESENT[i] = 0 when
** the document has no value (PRESENT may be NULL). Multi-valued numeric fields give their
** smallest value (Elasticsearch's doc['f'].value). i64 columns convert to double in the f64
** read; f64 columns truncate toward zero (saturating) in the i64 read. Keyword fields read as
** missing here. DOCS must be < max_doc. Threads: any. */
void qi_dv_read_f64(const qi_segment *seg, uint32_t field, const uint32_t *docs, size_t n,
                    double *out, uint8_t *present);
void qi_dv_read_i64(const qi_segment *seg, uint32_t field, const uint32_t *docs, size_t n,
                    int64_t *out, uint8_t *present);

/* Whole columns (max_doc entries, borrowed; NULL when the field has no such column in SEG).
** PRESENT: one byte per document, 1 = has a value. */
const int64_t *qi_dv_i64_column(const qi_segment *seg, uint32_t field, const uint8_t **present);
const double *qi_dv_f64_column(const qi_segment *seg, uint32_t field, const uint8_t **present);

/* Keyword doc values: per segment, a sorted dictionary of the field's values (ordinals
** 0..ord_count-1, same order as qi_segment_term) and per document a sorted set of ordinals. */
uint32_t qi_dv_ord_count(const qi_segment *seg, uint32_t field);
/* Ordinals of DOC (borrowed), their number returned (0: no value). */
uint32_t qi_dv_doc_ords(const qi_segment *seg, uint32_t field, uint32_t doc, const uint32_t **ords);
/* The value of ordinal ORD (borrowed, not NUL-terminated). */
const char *qi_dv_ord_term(const qi_segment *seg, uint32_t field, uint32_t ord, size_t *len);
/* Block read of the first (smallest) ordinal: OUT[i] = ord or -1 when missing. */
void qi_dv_read_ord(const qi_segment *seg, uint32_t field, const uint32_t *docs, size_t n,
                    int64_t *out);

/* ---- catalog ------------------------------------------------------------------------------- */

/* Open (creating if missing) data directory DATA_DIR; every index in DATA_DIR/indices/ is opened.
** OPT (may be NULL) applies to every index. An index that cannot be opened (its store behind
** its commit file, docs.db missing beside segment files, an unreadable store) is logged at
** ERROR and listed as damaged (qi_catalog_damaged) instead of failing the open or vanishing.
** Errors: QB_IO, QB_NOMEM. */
qb_code qi_catalog_open(const char *data_dir, const qi_options *opt, qi_catalog **out,
                        qb_err *err);
/* Close every index (their snapshots must be released) and free C (NULL: nothing). */
void qi_catalog_close(qi_catalog *c);

/* Create index NAME (Elasticsearch's rules: lowercase, no \ / * ? " < > | space , # :, not
** starting with - _ +, not . or .., at most 255 bytes) with BODY_JSON as in qi_index_create.
** *OUT (may be NULL): a reference to release with qi_index_release.
** Errors: QB_INVAL (bad name or body), QB_CONFLICT (exists: resource_already_exists_exception),
** QB_IO, QB_NOMEM. */
qb_code qi_catalog_create(qi_catalog *c, const char *name, const char *body_json, qi_index **out,
                          qb_err *err);
/* A reference to index NAME; release with qi_index_release. Errors: QB_NOTFOUND, QB_CORRUPT
** (NAME is damaged: the message says why). */
qb_code qi_catalog_get(qi_catalog *c, const char *name, qi_index **out, qb_err *err);
/* Remove NAME from the catalog and delete its files once the last reference is released (a
** damaged index's files at once). Errors: QB_NOTFOUND, QB_IO. */
qb_code qi_catalog_delete(qi_catalog *c, const char *name, qb_err *err);
/* Names of all indexes, sorted, appended to OUT as a JSON array of strings. */
qb_code qi_catalog_list_json(qi_catalog *c, qb_buf *out, qb_err *err);
/* Number of indexes and the name of number I in sorted order, copied into NAME (256 bytes). */
size_t qi_catalog_count(qi_catalog *c);
qb_code qi_catalog_name(qi_catalog *c, size_t i, char name[256], qb_err *err);
/* 1 when index NAME is listed but damaged (found at open; it refuses every request), with the
** reason copied into WHY[CAP] (may be NULL); 0 when it is well or unknown. Threads: any. */
int qi_catalog_damaged(qi_catalog *c, const char *name, char *why, size_t cap);

/* Reference counting of catalog indexes (a standalone index starts with one reference, which
** qi_index_close drops). */
qi_index *qi_index_retain(qi_index *ix);
void qi_index_release(qi_index *ix);

/* ---- lookups by _id ------------------------------------------------------------------------ */

/* Local document number of the document with _id ID (LEN bytes, not NUL-terminated) in SEG, or
** -1 when SEG has none. A segment may hold several copies of one _id (an update inside one
** refresh keeps the older copy, deleted, until a merge): the live one is returned when there is
** one, else the newest deleted one, so check qi_segment_is_live. Constant time: a hash table of
** the segment's _ids built when the segment is built, merged or loaded (about 4-8 bytes per
** document). Allocates nothing. Threads: any. */
int64_t qi_segment_find_id(const qi_segment *seg, const char *id, size_t len);

#endif
