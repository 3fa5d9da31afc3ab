/* h_explain.c: GET|POST /{index}/_explain/{id} and `explain: true` in a search: why a document
** scores what it does, as the BM25 tree Elasticsearch shapes (value, description, details),
** computed from the same figures the scorer uses (qi_bm25: idf from the snapshot's document
** frequency and field statistics, tf from the document's term frequency and its one-byte
** length norm). Served for match (operator or/and, boost), term, bool (must, should, filter,
** must_not, minimum_should_match as an integer, boost) and match_all on text and keyword
** fields; any other query, option or field type answers 400 naming it, rather than a tree
** that does not add up. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct ex {
  qi_snapshot *snap;
  const qi_segment *seg;
  uint32_t doc;
  char *why; /* 512 */
  int bad;
} ex;

static json_t *node(double v, const char *desc, json_t *details) {
  return json_pack("{s:f, s:s, s:o}", "value", v, "description", desc, "details",
                   details ? details : json_array());
}

static json_t *refuse(ex *x, const char *fmt, const char *a, const char *b) {
  if (!x->bad) snprintf(x->why, 512, fmt, a, b ? b : "");
  x->bad = 1;
  return NULL;
}

/* One term's weight in the document: its BM25 tree, or "no matching term". */
static json_t *term_tree(ex *x, const qi_field_info *fi, const char *term, size_t len, float boost,
                         int *matched, float *score) {
  qi_postings *p = NULL;
  qb_err err;
  uint32_t freq = 0;
  if (!qi_postings_open_term(x->seg, fi->id, term, len, &p, &err) && p) {
    if (qi_postings_advance(p, x->doc) == x->doc) freq = qi_postings_freq(p);
    qi_postings_free(p);
  }
  char desc[700];
  *matched = freq > 0;
  *score = 0;
  if (!freq) {
    snprintf(desc, sizeof desc, "no matching term [%s:%.*s]", fi->name, (int)len, term);
    return node(0, desc, NULL);
  }
  qi_field_stats fs;
  qi_snapshot_field_stats(x->snap, fi->id, &fs);
  uint64_t df = qi_snapshot_doc_freq(x->snap, fi->id, term, len);
  qi_bm25 w;
  qi_bm25_init(&w, boost, &fs, df, -1, -1);
  const uint8_t *norms = fi->has_norms ? qi_segment_norms(x->seg, fi->id) : NULL;
  uint8_t norm = norms ? norms[x->doc] : 1;
  *score = qi_bm25_score(&w, freq, norm);
  float tf = *score / w.weight;
  json_t *idf = node(w.idf, "idf, computed as log(1 + (N - n + 0.5) / (n + 0.5)) from:",
                     json_pack("[o, o]", node((double)df, "n, number of documents containing term", NULL),
                               node((double)fs.doc_count, "N, total number of documents with field", NULL)));
  json_t *tft = node(tf, "tf, computed as freq / (freq + k1 * (1 - b + b * dl / avgdl)) from:",
                     json_pack("[o, o, o, o, o]",
                               node((double)freq, "freq, occurrences of term within document", NULL),
                               node(w.k1, "k1, term saturation parameter", NULL),
                               node(w.b, "b, length normalization parameter", NULL),
                               node((double)qi_smallfloat_byte4_to_int(norm), "dl, length of field (approximate)", NULL),
                               node(w.avgdl, "avgdl, average length of field", NULL)));
  snprintf(desc, sizeof desc, "score(freq=%.1f), computed as boost * idf * tf from:", (double)freq);
  json_t *sc = node(*score, desc, json_pack("[o, o, o]", node(boost, "boost", NULL), idf, tft));
  snprintf(desc, sizeof desc, "weight(%s:%.*s in %u) [PerFieldSimilarity], result of:", fi->name,
           (int)len, term, x->doc);
  return node(*score, desc, json_pack("[o]", sc));
}

/* The field a term/match query names, when explainable; NULL after refuse. */
static int field_of(ex *x, const char *qname, const char *field, qi_field_info *fi) {
  if (qi_snapshot_field(x->snap, field, fi)) {
    refuse(x, "explain: [%s] on [%s]: the field is not in the mapping", qname, field);
    return 0;
  }
  if (!fi->indexed || (fi->type != QI_TEXT && fi->type != QI_KEYWORD)) {
    refuse(x, "explain: [%s] on [%s] is not explained (served: text and keyword fields)", qname,
           field);
    return 0;
  }
  return 1;
}

/* {field: value} or {field: {KEY: value, boost, ...}}: the field, its value and boost; the
** options beyond KEY and boost (and operator for match) are refused. */
static int one_field(ex *x, const char *qname, json_t *body, const char *key, const char **field,
                     json_t **value, float *boost, const char **operator) {
  if (!json_is_object(body) || json_object_size(body) != 1) {
    refuse(x, "explain: [%s] must name one field", qname, NULL);
    return 0;
  }
  *field = json_object_iter_key(json_object_iter(body));
  json_t *v = json_object_iter_value(json_object_iter(body));
  *boost = 1;
  if (!json_is_object(v)) {
    *value = v;
    return 1;
  }
  const char *k;
  json_t *o;
  *value = json_object_get(v, key);
  json_object_foreach(v, k, o) {
    if (!strcmp(k, key)) continue;
    if (!strcmp(k, "boost") && json_is_number(o)) *boost = (float)json_number_value(o);
    else if (operator && !strcmp(k, "operator") && json_is_string(o)) *operator= json_string_value(o);
    else {
      refuse(x, "explain: [%s] option [%s] is not explained (served: the value, boost, operator "
             "for match)", qname, k);
      return 0;
    }
  }
  return *value != NULL;
}

typedef struct toks {
  char buf[4096];
  size_t used, n;
  uint32_t off[64], len[64];
} toks;

static qb_code tok(void *ud, const qi_token *t, qb_err *err) {
  toks *k = ud;
  if (k->n == 64 || k->used + t->len > sizeof k->buf)
    return qb_fail(err, QB_LIMIT, "explain: at most 64 terms in a match");
  memcpy(k->buf + k->used, t->term, t->len);
  k->off[k->n] = (uint32_t)k->used;
  k->len[k->n++] = t->len;
  k->used += t->len;
  return QB_OK;
}

static json_t *explain_q(ex *x, json_t *q, int *matched, float *score, int depth);

static json_t *explain_bool(ex *x, json_t *b, int *matched, float *score, int depth) {
  const char *k;
  json_t *v;
  float boost = 1;
  long msm = -1;
  json_object_foreach(b, k, v) {
    if (!strcmp(k, "boost") && json_is_number(v)) boost = (float)json_number_value(v);
    else if (!strcmp(k, "minimum_should_match") && json_is_integer(v)) msm = (long)json_integer_value(v);
    else if (strcmp(k, "must") && strcmp(k, "should") && strcmp(k, "filter") && strcmp(k, "must_not"))
      return refuse(x, "explain: [bool] option [%s] is not explained (served: must, should, "
                    "filter, must_not, minimum_should_match as an integer, boost)", k, NULL);
  }
  static const char *const kinds[] = {"must", "filter", "should", "must_not"};
  json_t *scoring = json_array(), *missed = json_array();
  int ok = 1, nreq = 0;
  long should_hit = 0, nshould = 0;
  float sum = 0;
  for (int kind = 0; kind < 4 && !x->bad; kind++) {
    json_t *c = json_object_get(b, kinds[kind]);
    size_t n = json_is_array(c) ? json_array_size(c) : c ? 1 : 0;
    for (size_t i = 0; i < n && !x->bad; i++) {
      json_t *cq = json_is_array(c) ? json_array_get(c, i) : c;
      int m;
      float s;
      json_t *e = explain_q(x, cq, &m, &s, depth + 1);
      if (!e) break;
      if (kind < 2) nreq++;
      if (kind == 2) nshould++, should_hit += m;
      if ((kind < 2 && !m) || (kind == 3 && m)) {
        ok = 0;
        json_array_append_new(missed, e);
        continue;
      }
      if (kind == 1 && m) {
        json_array_append_new(scoring, node(0, "match on required clause, product of:",
                                            json_pack("[o, o]", node(0, "# clause", NULL),
                                                      node(1, "FILTER, the clause matched", NULL))));
        json_decref(e);
      } else if ((kind == 0 || kind == 2) && m) {
        sum += s;
        json_array_append_new(scoring, e);
      } else {
        json_decref(e);
      }
    }
  }
  if (x->bad) {
    json_decref(scoring);
    json_decref(missed);
    return NULL;
  }
  long need = msm >= 0 ? msm : nreq ? 0 : nshould ? 1 : 0;
  if (should_hit < need) ok = 0;
  *matched = ok;
  *score = ok ? sum * boost : 0;
  if (!ok) {
    json_decref(scoring);
    char desc[128];
    snprintf(desc, sizeof desc, should_hit < need ? "no match: %ld of the should clauses matched, "
             "%ld needed" : "no match on required clause", should_hit, need);
    return node(0, desc, missed);
  }
  json_decref(missed);
  json_t *e = node(sum, "sum of:", scoring);
  if (boost != 1)
    e = node(*score, "product of:", json_pack("[o, o]", e, node(boost, "boost", NULL)));
  return e;
}

static json_t *explain_q(ex *x, json_t *q, int *matched, float *score, int depth) {
  *matched = 0;
  *score = 0;
  if (depth > 32) return refuse(x, "explain: the query is nested too deeply", NULL, NULL);
  if (!json_is_object(q) || json_object_size(q) != 1)
    return refuse(x, "explain: a query is an object with one key", NULL, NULL);
  const char *name = json_object_iter_key(json_object_iter(q));
  json_t *body = json_object_iter_value(json_object_iter(q));
  if (!strcmp(name, "match_all")) {
    json_t *b = json_object_get(body, "boost");
    float boost = json_is_number(b) ? (float)json_number_value(b) : 1;
    if (json_object_size(body) > (b ? 1u : 0u))
      return refuse(x, "explain: [match_all] takes only boost", NULL, NULL);
    *matched = 1;
    *score = boost;
    return node(boost, "*:*", NULL);
  }
  if (!strcmp(name, "bool")) {
    if (!json_is_object(body)) return refuse(x, "explain: [bool] must be an object", NULL, NULL);
    return explain_bool(x, body, matched, score, depth);
  }
  int is_match = !strcmp(name, "match");
  if (!is_match && strcmp(name, "term"))
    return refuse(x, "explain: [%s] queries are not explained (served: match, term, bool, "
                  "match_all)", name, NULL);
  const char *field, *op = "or";
  json_t *value;
  float boost;
  if (!one_field(x, name, body, is_match ? "query" : "value", &field, &value, &boost,
                 is_match ? &op : NULL))
    return x->bad ? NULL : refuse(x, "explain: [%s] has no value", name, NULL);
  qi_field_info fi;
  if (!field_of(x, name, field, &fi)) return NULL;
  if (!json_is_string(value))
    return refuse(x, "explain: [%s] on [%s]: the value must be a string", name, field);
  const char *text = json_string_value(value);
  if (!is_match) return term_tree(x, &fi, text, strlen(text), boost, matched, score);
  if (strcmp(op, "or") && strcmp(op, "and") && strcmp(op, "OR") && strcmp(op, "AND"))
    return refuse(x, "explain: [match] operator [%s] (or, and)", op, NULL);
  toks *t = qb_calloc(1, sizeof *t);
  qb_err err;
  if (!t) return refuse(x, "out of memory", NULL, NULL);
  if (qi_analyze(fi.analyzer, text, strlen(text), tok, t, &err)) {
    qb_free(t, sizeof *t);
    return refuse(x, "%s", err.msg, NULL);
  }
  int all = op[0] == 'a' || op[0] == 'A', hits = 0;
  json_t *parts = json_array(), *missed = json_array();
  float sum = 0;
  for (size_t i = 0; i < t->n; i++) {
    int m;
    float s;
    json_t *e = term_tree(x, &fi, t->buf + t->off[i], t->len[i], boost, &m, &s);
    hits += m;
    sum += s;
    json_array_append_new(m ? parts : missed, e);
  }
  size_t n = t->n;
  qb_free(t, sizeof *t);
  *matched = all ? (size_t)hits == n && n : hits > 0;
  *score = *matched ? sum : 0;
  if (!*matched) {
    json_decref(parts);
    return node(0, n ? "no matching term" : "no terms in the query text", missed);
  }
  json_decref(missed);
  if (json_array_size(parts) == 1) {
    json_t *one = json_incref(json_array_get(parts, 0));
    json_decref(parts);
    return one;
  }
  return node(sum, "sum of:", parts);
}

int qs__explain_doc(qs_req *r, const char *index, const char *id, json_t *query, int *matched,
                    json_t **out, char reason[512]) {
  *out = NULL;
  *matched = 0;
  qi_index *ix;
  if (qi_catalog_get(qc_node_catalog(r->srv->node), index, &ix, NULL)) {
    snprintf(reason, 512, "no such index [%.256s]", index);
    return 404;
  }
  ex x = {.snap = qi_index_snapshot(ix), .why = reason};
  qi_index_release(ix);
  int found = 0;
  for (size_t i = qi_snapshot_segment_count(x.snap); i-- > 0 && !found;) {
    const qi_segment *seg = qi_snapshot_segment(x.snap, i);
    int64_t d = qi_segment_find_id(seg, id, strlen(id));
    if (d >= 0 && qi_segment_is_live(seg, (uint32_t)d)) x.seg = seg, x.doc = (uint32_t)d, found = 1;
  }
  int st = 0;
  if (!found) {
    st = 404;
    snprintf(reason, 512, "document [%.256s] is not in the searchable view of [%.200s]", id, index);
  } else {
    float score;
    json_t *q = query ? query : json_pack("{s:{}}", "match_all");
    *out = explain_q(&x, q, matched, &score, 0);
    if (!query) json_decref(q);
    if (!*out) st = 400;
  }
  qi_snapshot_release(x.snap);
  return st;
}

void qs__h_explain(qs_req *r) {
  if (!qs__local_only(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  const char *k;
  json_t *v;
  json_object_foreach(body, k, v) {
    if (strcmp(k, "query")) {
      qs__reply_error(r, 400, "parsing_exception", "request does not support [%.64s] (only [query])", k);
      json_decref(body);
      return;
    }
  }
  json_t *query = json_object_get(body, "query");
  if (!query) {
    json_decref(body);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: query is missing;");
  }
  /* the query must be one this node runs at all */
  json_t *sb = json_pack("{s:O}", "query", query);
  char *text = sb ? json_dumps(sb, JSON_COMPACT) : NULL;
  json_decref(sb);
  qc_udf_provider prov;
  qq_env env;
  qs__query_env(r, &prov, &env);
  qq_request *req = NULL;
  qb_err err;
  qb_err_clear(&err);
  qb_code rc = text ? qq_request_parse(&env, text, strlen(text), 0, &req, &err)
                    : qb_fail(&err, QB_NOMEM, "out of memory");
  qq_request_free(req);
  qc_udf_provider_fini(&prov);
  if (text) qs__json_free(text);
  if (rc) {
    json_decref(body);
    return qs__reply_err(r, &err);
  }
  int matched;
  json_t *tree;
  char reason[512];
  int st = qs__explain_doc(r, r->caps[0], r->caps[1], query, &matched, &tree, reason);
  json_decref(body);
  if (st == 404 && strstr(reason, "document"))
    return qs__reply_json(r, 404, json_pack("{s:s, s:s, s:b}", "_index", r->caps[0], "_id",
                                            r->caps[1], "matched", 0));
  if (st == 404) return qs__reply_no_index(r, r->caps[0]);
  if (st) return qs__reply_error(r, st, "illegal_argument_exception", "%s", reason);
  qs__reply_json(r, 200, json_pack("{s:s, s:s, s:b, s:o}", "_index", r->caps[0], "_id", r->caps[1],
                                   "matched", matched, "explanation", tree));
}

int qs__explain_hits(qs_req *r, json_t *query, json_t *response, char reason[512]) {
  size_t i;
  json_t *h;
  json_array_foreach(json_object_get(json_object_get(response, "hits"), "hits"), i, h) {
    const char *index = json_string_value(json_object_get(h, "_index"));
    const char *id = json_string_value(json_object_get(h, "_id"));
    int matched;
    json_t *tree;
    if (!index || !id) continue;
    int st = qs__explain_doc(r, index, id, query, &matched, &tree, reason);
    if (st) return st;
    json_object_set_new(h, "_explanation", tree);
  }
  return 0;
}

int qs__explain_take(qs_req *r, char **owned, json_t **query) {
  *query = NULL;
  const char *body = *owned ? *owned : r->body;
  size_t len = *owned ? strlen(*owned) : r->body_len;
  if (!len || !memmem(body, len, "\"explain\"", 9)) return 1;
  json_error_t je;
  json_t *b = json_loadb(body, len, 0, &je);
  json_t *e = json_object_get(b, "explain");
  if (!json_is_true(e)) { /* false, or not a boolean: the search's own parser answers */
    json_decref(b);
    return 1;
  }
  if (qc_node_routes(r->srv->node)) {
    json_decref(b);
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "[explain: true] is not served by a cluster coordinator yet (docs/rest-api.md)");
    return 0;
  }
  json_object_del(b, "explain");
  *query = json_object_get(b, "query") ? json_incref(json_object_get(b, "query"))
                                       : json_pack("{s:{}}", "match_all");
  char *text = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(b);
  if (!text) {
    json_decref(*query);
    *query = NULL;
    qs__reply_code(r, QB_NOMEM, "out of memory");
    return 0;
  }
  if (*owned) qs__json_free(*owned);
  *owned = text;
  return 1;
}
