/* analyze_req.c: Elasticsearch's _analyze over an index's analyzers or the built-in ones:
** {"text": "..." | [...], "analyzer" | "field" | "tokenizer" + "filter"} -> {"tokens": [...]}.
** Offsets are in UTF-16 code units and, for several texts, go on after the previous text (+1), and
** positions after its last one (+100, the position_increment_gap), as Elasticsearch counts them. */
#include "internal.h"

#include <stdio.h>

typedef struct actx {
  json_t *tokens;
  const char *text;
  size_t len;
  uint32_t pos_base, off_base, last_pos;
  int any;
} actx;

static uint32_t utf16_units(const char *s, size_t n) {
  uint32_t u = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c & 0xC0) == 0x80) continue;
    u += c >= 0xF0 ? 2 : 1;
  }
  return u;
}

static qb_code on_tok(void *ud, const qi_token *t, qb_err *err) {
  actx *a = ud;
  uint32_t so = utf16_units(a->text, t->start_offset);
  uint32_t eo = so + utf16_units(a->text + t->start_offset, t->end_offset - t->start_offset);
  json_t *o = json_pack("{s:s%, s:i, s:i, s:s, s:i}", "token", t->term, (size_t)t->len,
                        "start_offset", (json_int_t)(a->off_base + so), "end_offset",
                        (json_int_t)(a->off_base + eo), "type", t->type ? t->type : "word",
                        "position", (json_int_t)(a->pos_base + t->position));
  if (!o || json_array_append_new(a->tokens, o))
    return qb_fail(err, QB_NOMEM, "analyze: out of memory");
  if (!a->any || a->pos_base + t->position > a->last_pos) a->last_pos = a->pos_base + t->position;
  a->any = 1;
  return QB_OK;
}

static qb_code check_body(json_t *b, qb_err *err) {
  static const char *const keys[] = {"text", "analyzer", "field", "tokenizer", "filter",
                                     "char_filter", "explain", "attributes", "normalizer"};
  const char *k;
  json_t *v;
  json_object_foreach(b, k, v) {
    size_t i;
    for (i = 0; i < sizeof keys / sizeof *keys && strcmp(k, keys[i]); i++) {}
    if (i == sizeof keys / sizeof *keys)
      return qb_fail(err, QB_MALFORMED, "[analyze_request] unknown field [%s]", k);
  }
  if ((v = json_object_get(b, "explain")) && !json_is_false(v))
    return qb_fail(err, QB_INVAL, "[explain] is not supported by _analyze here (false only)");
  if ((v = json_object_get(b, "attributes")) && !(json_is_array(v) && !json_array_size(v)))
    return qb_fail(err, QB_INVAL, "[attributes] is not supported (it needs [explain])");
  if ((v = json_object_get(b, "char_filter")) && !(json_is_array(v) && !json_array_size(v)))
    return qb_fail(err, QB_INVAL, "[char_filter]: character filters are not supported");
  if (json_object_get(b, "normalizer"))
    return qb_fail(err, QB_INVAL, "[normalizer]: normalizers are not supported");
  return QB_OK;
}

qb_code qi_index_analyze(qi_index *ix, const char *body, size_t len, qb_buf *out, qb_err *err) {
  json_error_t je;
  json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *text, *ja, *jf, *jt, *jfl;
  const qi_chain *c = NULL;
  qi_chain *own = NULL;
  qi_snapshot *snap = NULL;
  qi_analyzer plain = QI_ANALYZER_NONE;
  qb_code rc = QB_OK;
  actx a = {0};
  size_t i, n;
  char *s;
  if (!b) return qb_fail(err, QB_MALFORMED, "request body is required: %s", je.text);
  if (!json_is_object(b)) {
    json_decref(b);
    return qb_fail(err, QB_MALFORMED, "request body must be a JSON object");
  }
  if ((rc = check_body(b, err))) goto done;
  text = json_object_get(b, "text");
  ja = json_object_get(b, "analyzer");
  jf = json_object_get(b, "field");
  jt = json_object_get(b, "tokenizer");
  jfl = json_object_get(b, "filter");
  if (!text || (!json_is_string(text) && !json_is_array(text))) {
    rc = qb_fail(err, QB_INVAL, "text is missing");
    goto done;
  }
  if ((ja != NULL) + (jf != NULL) + (jt != NULL) > 1 || (jfl && !jt)) {
    rc = qb_fail(err, QB_INVAL, "give one of [analyzer], [field] or [tokenizer] (with [filter])");
    goto done;
  }
  if (ja) {
    if (!json_is_string(ja)) { rc = qb_fail(err, QB_MALFORMED, "[analyzer] must be a string"); goto done; }
    if (!(c = qi__analysis_find(ix ? ix->analysis : NULL, json_string_value(ja)))) {
      rc = qb_fail(err, QB_INVAL, ix ? "failed to find analyzer [%s]" : "failed to find global analyzer [%s]",
                   json_string_value(ja));
      goto done;
    }
  } else if (jf) {
    qi_field_info fi;
    if (!json_is_string(jf)) { rc = qb_fail(err, QB_MALFORMED, "[field] must be a string"); goto done; }
    if (!ix) { rc = qb_fail(err, QB_INVAL, "analysis by [field] needs an index (/{index}/_analyze)"); goto done; }
    snap = qi_index_snapshot(ix);
    if (qi_snapshot_field(snap, json_string_value(jf), &fi)) {
      /* an unmapped field: the index's default analyzer, as Elasticsearch */
      c = qi__analysis_default(ix->analysis, 0);
      plain = QI_ANALYZER_STANDARD;
    } else if (fi.index_chain) {
      c = fi.index_chain;
    } else {
      plain = fi.analyzer == QI_ANALYZER_NONE ? QI_ANALYZER_KEYWORD : fi.analyzer;
    }
  } else if (jt) {
    const char *tok = json_is_string(jt) ? json_string_value(jt) : NULL;
    if (json_is_object(jt)) {
      json_t *ty = json_object_get(jt, "type");
      if (json_object_size(jt) != 1 || !json_is_string(ty)) {
        rc = qb_fail(err, QB_INVAL, "[tokenizer]: only {\"type\": NAME} is supported as a definition");
        goto done;
      }
      tok = json_string_value(ty);
    }
    if (!tok) { rc = qb_fail(err, QB_MALFORMED, "[tokenizer] must be a name or an object"); goto done; }
    if ((rc = qi__chain_custom(qi__analysis_filters(ix ? ix->analysis : NULL), tok, jfl,
                               "_anonymous_", "_analyze", &own, err)))
      goto done;
    c = own;
  } else {
    c = ix ? qi__analysis_default(ix->analysis, 0) : NULL;
    plain = QI_ANALYZER_STANDARD;
  }
  if (!(a.tokens = json_array())) { rc = qb_fail(err, QB_NOMEM, "analyze: out of memory"); goto done; }
  n = json_is_array(text) ? json_array_size(text) : 1;
  for (i = 0; i < n && !rc; i++) {
    json_t *t = json_is_array(text) ? json_array_get(text, i) : text;
    if (!json_is_string(t)) { rc = qb_fail(err, QB_INVAL, "[text] must hold strings"); break; }
    a.text = json_string_value(t);
    a.len = json_string_length(t);
    if (a.any) a.pos_base = a.last_pos + 1 + 100;
    rc = c ? qi_chain_analyze(c, a.text, a.len, on_tok, &a, err)
           : qi_analyze(plain, a.text, a.len, on_tok, &a, err);
    a.off_base += utf16_units(a.text, a.len) + 1;
  }
  if (rc) goto done;
  {
    json_t *res = json_pack("{s:O}", "tokens", a.tokens);
    s = res ? json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(res);
    if (!s || qb_buf_puts(out, s)) rc = qb_fail(err, QB_NOMEM, "analyze: out of memory");
    qi__json_free(s);
  }
done:
  json_decref(a.tokens);
  qi__chain_free(own);
  qi_snapshot_release(snap);
  json_decref(b);
  return rc;
}
