/* dfs.c: search_type=dfs_query_then_fetch. Phase one asks every shard of a search for the
** term statistics its query scores with (per field: doc count, sum of total term freqs, sum of
** doc freqs; per term: doc freq), the coordinator sums them, and phase two runs the query on
** every shard with the sums in place of each shard's own (qq_term_stats), so a score is the
** one the document would get in a single shard holding every document.
**
** Statistics as JSON (the wire between coordinator and data node):
**   {"fields": {"title": [doc_count, sum_total_term_freq, sum_doc_freq]},
**    "terms":  {"title": {"<term bytes in hex>": doc_freq}}}
** Terms are hex so that any bytes travel (jansson keys must be UTF-8).
** Invariant: a collector records one shard (a later call for the same field or term replaces,
** it does not add: every segment asks again); qc__dfs_add sums shards. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void hex(const char *p, size_t len, char *out, size_t cap) {
  static const char d[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < len && o + 2 < cap; i++) {
    out[o++] = d[(unsigned char)p[i] >> 4];
    out[o++] = d[(unsigned char)p[i] & 15];
  }
  out[o] = 0;
}

static json_t *sub(json_t *stats, const char *kind, const char *field, int make) {
  json_t *k = json_object_get(stats, kind);
  if (!k && make) json_object_set_new(stats, kind, k = json_object());
  json_t *f = json_object_get(k, field);
  if (!f && make && k) json_object_set_new(k, field, f = json_object());
  return f;
}

/* ---- recording one shard ---------------------------------------------------------------- */

static void rec_field(void *ud, const char *field, qi_field_stats *io) {
  json_t *fields = json_object_get(ud, "fields");
  if (!fields) json_object_set_new(ud, "fields", fields = json_object());
  json_object_set_new(fields, field,
                      json_pack("[I,I,I]", (json_int_t)io->doc_count,
                                (json_int_t)io->sum_total_term_freq, (json_int_t)io->sum_doc_freq));
}

static void rec_term(void *ud, const char *field, const char *term, size_t len, uint64_t *df) {
  char key[1024];
  if (len > 500) return; /* such a term keeps the shard's own frequency */
  hex(term, len, key, sizeof key);
  json_t *f = sub(ud, "terms", field, 1);
  if (f) json_object_set_new(f, key, json_integer((json_int_t)*df));
}

void qc__dfs_collector(qq_term_stats *ts, json_t *into) {
  ts->ud = into;
  ts->field = rec_field;
  ts->term = rec_term;
}

/* ---- applying the global sums ------------------------------------------------------------ */

static void use_field(void *ud, const char *field, qi_field_stats *io) {
  json_t *a = json_object_get(json_object_get(ud, "fields"), field);
  if (json_array_size(a) != 3) return;
  io->doc_count = (uint64_t)json_integer_value(json_array_get(a, 0));
  io->sum_total_term_freq = (uint64_t)json_integer_value(json_array_get(a, 1));
  io->sum_doc_freq = (uint64_t)json_integer_value(json_array_get(a, 2));
}

static void use_term(void *ud, const char *field, const char *term, size_t len, uint64_t *df) {
  char key[1024];
  if (len > 500) return;
  hex(term, len, key, sizeof key);
  json_t *v = json_object_get(sub(ud, "terms", field, 0), key);
  if (json_is_integer(v)) *df = (uint64_t)json_integer_value(v);
}

void qc__dfs_apply(qq_term_stats *ts, const json_t *stats) {
  ts->ud = (void *)stats;
  ts->field = use_field;
  ts->term = use_term;
}

/* ---- summing shards ------------------------------------------------------------------------ */

void qc__dfs_add(json_t *sum, const json_t *one) {
  const char *f, *t;
  json_t *a, *terms, *v;
  json_t *fields = json_object_get(sum, "fields");
  if (!fields) json_object_set_new(sum, "fields", fields = json_object());
  json_object_foreach((json_t *)json_object_get(one, "fields"), f, a) {
    if (json_array_size(a) != 3) continue;
    json_t *s = json_object_get(fields, f);
    if (!s) {
      json_object_set_new(fields, f, json_deep_copy(a));
      continue;
    }
    for (size_t i = 0; i < 3; i++)
      json_array_set_new(s, i, json_integer(json_integer_value(json_array_get(s, i)) +
                                            json_integer_value(json_array_get(a, i))));
  }
  json_object_foreach((json_t *)json_object_get(one, "terms"), f, terms) {
    json_t *s = sub(sum, "terms", f, 1);
    json_object_foreach(terms, t, v) {
      if (!s || !json_is_integer(v)) continue;
      json_object_set_new(s, t, json_integer(json_integer_value(json_object_get(s, t)) +
                                             json_integer_value(v)));
    }
  }
}

/* ---- phase one ----------------------------------------------------------------------------- */

qb_code qc_node_dfs(qc_node *n, qq_request *req, const char *body, size_t len,
                    const qc_pins *pins, const qc_shards *sh, json_t **stats, qb_err *err) {
  *stats = json_object();
  if (!*stats) return qb_fail(err, QB_NOMEM, "out of memory");
  (void)n;
  size_t nremote = 0;
  for (size_t i = 0; i < sh->n; i++)
    if (qc__shard_remote(&sh->s[i], pins)) nremote++;
  qc_call *calls = nremote ? qb_calloc(nremote, sizeof *calls) : NULL;
  char **texts = nremote ? qb_calloc(nremote, sizeof *texts) : NULL;
  qb_code rc = QB_OK;
  if (nremote && (!calls || !texts)) {
    rc = qb_fail(err, QB_NOMEM, "out of memory");
    goto out;
  }
  if (nremote) { /* phase one: each shard records its statistics ("dfs": "collect") */
    json_t *collect = json_string("collect");
    rc = collect ? qc__shard_calls(sh, body, len, 0, 0, pins, collect, calls, texts, err)
                 : qb_fail(err, QB_NOMEM, "out of memory");
    json_decref(collect);
    if (!rc) rc = qc_fanout(calls, nremote, qc_shard_timeout_ms(body, len), err);
    if (rc) goto out;
  }
  /* local shards on REQ itself, recording */
  for (size_t i = 0; i < sh->n; i++) {
    const qc_shard *x = &sh->s[i];
    if (!x->local || qc__shard_remote(x, pins)) continue;
    json_t *one = json_object();
    qq_term_stats ts;
    qc__dfs_collector(&ts, one);
    qq_request_set_term_stats(req, &ts);
    qi_snapshot *snap = qi_index_snapshot(x->local);
    qq_partial *p = NULL;
    qb_err e;
    if (!qq_shard_search(req, snap, x->index, x->shard_id, &p, &e)) qc__dfs_add(*stats, one);
    qq_partial_free(p);
    qi_snapshot_release(snap);
    qq_request_set_term_stats(req, NULL);
    json_decref(one);
  }
  /* a shard that fails here fails again in phase two, where its failure is reported */
  for (size_t i = 0; i < nremote; i++) {
    if (calls[i].status != 200) continue;
    qb_err e;
    json_t *j = qc__call_json(&calls[i], &e); /* binary (wire.c) or text */
    if (json_is_object(json_object_get(j, "dfs"))) qc__dfs_add(*stats, json_object_get(j, "dfs"));
    json_decref(j);
  }
out:
  for (size_t i = 0; i < nremote; i++) {
    if (calls) qc_call_fini(&calls[i]);
    if (texts && texts[i]) qc__json_free(texts[i]);
  }
  qb_free(calls, nremote * sizeof *calls);
  qb_free(texts, nremote * sizeof *texts);
  if (rc) {
    json_decref(*stats);
    *stats = NULL;
  }
  return rc;
}
