/* dsl.c: the `_search` body (JSON, already parsed) -> the request's parse tree (internal.h):
** queries, sort, _source, script_fields, aggregations, paging; scripts are resolved through
** the provider or compiled as expressions here, once per request. Errors follow Elasticsearch:
** QB_MALFORMED (parsing_exception) for unknown names and wrong shapes, QB_INVAL
** (illegal_argument_exception) for bad values; each message names the place in the body. */
#include "aggs_int.h"
#include "expr_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUERY_DEPTH 64

struct qq__pctx {
  qq_request *req;
  qb_err *err;
  int depth;
  int stored_fields_no_source; /* "stored_fields" without "_source" in it */
};
typedef struct qq__pctx pctx;

static qb_code nomem(pctx *p) { return qb_fail(p->err, QB_NOMEM, "query: out of memory"); }

static void *alloc(pctx *p, size_t n) { return qb_arena_alloc(&p->req->arena, n); }

static const char *jtype(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "START_OBJECT";
  case JSON_ARRAY: return "START_ARRAY";
  case JSON_STRING: return "VALUE_STRING";
  case JSON_INTEGER: case JSON_REAL: return "VALUE_NUMBER";
  case JSON_TRUE: case JSON_FALSE: return "VALUE_BOOLEAN";
  default: return "VALUE_NULL";
  }
}

static int getnum(const json_t *j, double *out) {
  if (json_is_number(j)) { *out = json_number_value(j); return 1; }
  if (json_is_string(j)) { /* Elasticsearch accepts numbers as strings ("1.5") */
    char *end;
    const char *s = json_string_value(j);
    double d = strtod(s, &end);
    if (*s && !*end) { *out = d; return 1; }
  }
  return 0;
}

static qb_code get_boost(pctx *p, const json_t *o, const char *qname, float *boost) {
  json_t *b = json_object_get(o, "boost");
  double d;
  *boost = 1.0f;
  if (!b) return QB_OK;
  if (!getnum(b, &d)) return qb_fail(p->err, QB_MALFORMED, "[%s] query: [boost] must be a number", qname);
  if (d < 0) return qb_fail(p->err, QB_INVAL, "[%s] query: negative [boost] are not allowed", qname);
  *boost = (float)d;
  return QB_OK;
}

/* ---- options served at one value ----------------------------------------------------------------- */

/* An option we accept only at the value we serve (its default, or one that changes nothing
** here): anything else is refused rather than ignored. Returns 1 when K is one of them (then
** *RC is QB_OK or the error), 0 when K is not such an option. */
static int fixed_option(pctx *p, const char *qname, const char *k, const json_t *v, qb_code *rc) {
  static const struct { const char *key, *value, *why; } fixed[] = {
      {"case_insensitive", "false", "case-insensitive term matching is not supported"},
      {"lenient", "false", "lenient parsing is not supported"},
      {"adjust_pure_negative", "true", "only the default (true) is supported"},
      {"auto_generate_synonyms_phrase_query", NULL, NULL}, /* no synonyms: any boolean */
      {"zero_terms_query", "none", "only [none] is supported"},
      {"analyzer", "standard", "only match and query_string name analyzers"},
      {"search_analyzer", "standard", "only match and query_string name analyzers"},
      {"relation", "intersects", "on a single-valued point field only [intersects] and [within] mean something"},
      {"time_zone", "UTC", "only UTC is supported"},
      {"_name", NULL, "named queries (matched_queries) are not supported"},
  };
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
    if (strcmp(k, fixed[i].key)) continue;
    *rc = QB_OK;
    const char *want = fixed[i].value;
    char got[64] = "";
    if (json_is_boolean(v)) snprintf(got, sizeof got, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_string(v)) snprintf(got, sizeof got, "%s", json_string_value(v));
    if (!want && !fixed[i].why) { /* any boolean */
      if (!json_is_boolean(v)) *rc = qb_fail(p->err, QB_MALFORMED, "[%s] query: [%s] must be a boolean", qname, k);
      return 1;
    }
    int ok = want && !strcasecmp(got, want);
    if (!strcmp(k, "relation")) ok = !strcasecmp(got, "intersects") || !strcasecmp(got, "within");
    if (!strcmp(k, "time_zone"))
      ok = !strcmp(got, "UTC") || !strcmp(got, "Z") || !strcmp(got, "+00:00") || !strcmp(got, "Etc/UTC");
    if (!ok) *rc = qb_fail(p->err, QB_INVAL, "[%s] query: [%s] is not supported as [%s]: %s", qname, k, got, fixed[i].why);
    return 1;
  }
  return 0;
}

/* Refuse any key of query BODY that is not in KEYS (space-separated) or a fixed option. */
static qb_code only_keys(pctx *p, const json_t *body, const char *qname, const char *keys) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)body, k, v) {
    size_t n = strlen(k);
    const char *at = keys;
    int listed = 0;
    for (; (at = strstr(at, k)); at += n)
      if ((at == keys || at[-1] == ' ') && (at[n] == ' ' || !at[n])) { listed = 1; break; }
    qb_code rc;
    if (listed) continue;
    if (fixed_option(p, qname, k, v, &rc)) {
      if (rc) return rc;
      continue;
    }
    return qb_fail(p->err, QB_MALFORMED, "[%s] query does not support [%s]", qname, k);
  }
  return QB_OK;
}

/* ---- for the query parsers of other files ------------------------------------------------------ */

static qb_code parse_query(pctx *p, const json_t *j, const char *where, qq__query **out);
static qq__query *newq(pctx *p, qq__qkind k);

qb_code qq__parse_sub(qq__pctx *p, const json_t *j, const char *where, qq__query **out) {
  return parse_query(p, j, where, out);
}
qq__query *qq__newq(qq__pctx *p, qq__qkind k) { return newq(p, k); }
qq_request *qq__pctx_req(qq__pctx *p) { return p->req; }
qb_err *qq__pctx_err(qq__pctx *p) { return p->err; }
qb_code qq__get_boost(qq__pctx *p, const json_t *o, const char *qname, float *boost) {
  return get_boost(p, o, qname, boost);
}

/* ---- scripts ----------------------------------------------------------------------------------- */

/* Whether SOURCE is one bare word of a UDF name's shape ("my_scorer"), not an expression. */
static int looks_like_a_name(const char *source) {
  if (!*source || !(isalpha((unsigned char)*source) || *source == '_')) return 0;
  for (const char *c = source; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.') return 0;
  return 1;
}

static qb_code parse_script(pctx *p, const json_t *j, qq_script_kind kind, const char *where,
                            qq__script **out) {
  qq_request *req = p->req;
  const char *source = NULL, *lang = NULL;
  const json_t *params = NULL;
  qq_script *s = NULL;
  qb_code rc;
  if (json_is_string(j)) {
    source = json_string_value(j);
  } else if (json_is_object(j)) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
      if (!strcmp(k, "source") || !strcmp(k, "inline")) {
        if (!json_is_string(v)) return qb_fail(p->err, QB_MALFORMED, "[%s] script: [source] must be a string", where);
        source = json_string_value(v);
      } else if (!strcmp(k, "lang")) {
        if (!json_is_string(v)) return qb_fail(p->err, QB_MALFORMED, "[%s] script: [lang] must be a string", where);
        lang = json_string_value(v);
      } else if (!strcmp(k, "params")) {
        if (!json_is_object(v)) return qb_fail(p->err, QB_MALFORMED, "[%s] script: [params] must be an object", where);
        params = v;
      } else if (!strcmp(k, "id")) {
        return qb_fail(p->err, QB_INVAL, "[%s] script: stored scripts ([id]) are not supported; "
                       "use [source] with a deployed udf's name", where);
      } else {
        return qb_fail(p->err, QB_MALFORMED, "[%s] script: unknown field [%s]", where, k);
      }
    }
  } else {
    return qb_fail(p->err, QB_MALFORMED, "[%s] script: expected an object or a string, got %s", where, jtype(j));
  }
  if (!source) return qb_fail(p->err, QB_MALFORMED, "[%s] script: must specify [source]", where);
  if (lang && strcmp(lang, "expression") && strcmp(lang, "wasm") && strcmp(lang, "painless"))
    return qb_fail(p->err, QB_INVAL, "[%s] script: script_lang not supported [%s]", where, lang);
  rc = QB_NOTFOUND;
  if (req->env && req->env->scripts && (!lang || strcmp(lang, "expression"))) {
    qq_script_provider *pv = req->env->scripts;
    qb_err_clear(p->err);
    rc = pv->resolve(pv, source, lang, kind, params, json_object_get(req->body, "context"), &s, p->err);
    if (rc && rc != QB_NOTFOUND) {
      qb_wrap(p->err, "[%s] script [%.80s]: ", where, source);
      return rc;
    }
  }
  if (rc == QB_NOTFOUND) {
    if (lang && !strcmp(lang, "wasm"))
      return qb_fail(p->err, QB_INVALID, "[%s] script: unknown udf [%.80s]", where, source);
    if ((rc = qq__expr_compile(source, kind, params, json_object_get(req->body, "context"), &s, p->err))) {
      /* a bare name is most likely a UDF that is not deployed (a typo, another cluster...) */
      if (rc == QB_INVALID && req->env && req->env->scripts && looks_like_a_name(source))
        qb_wrap(p->err, "[%s] script [%.80s]: no UDF named [%.80s] is deployed (and it is not "
                "a valid expression): ", where, source, source);
      else
        qb_wrap(p->err, "[%s] script [%.80s]: ", where, source);
      return rc;
    }
  }
  qq__script *sc = alloc(p, sizeof *sc);
  if (!sc) {
    s->vt->free(s);
    return nomem(p);
  }
  sc->s = s;
  sc->kind = kind;
  sc->source = source;
  sc->next = req->scripts;
  req->scripts = sc;
  *out = sc;
  return QB_OK;
}

/* ---- queries ------------------------------------------------------------------------------------ */

static qb_code parse_query(pctx *p, const json_t *j, const char *where, qq__query **out);
static qb_code get_uint(pctx *p, const json_t *v, const char *what, uint32_t *out);

static qq__query *newq(pctx *p, qq__qkind k) {
  qq__query *q = alloc(p, sizeof *q);
  if (q) {
    q->kind = k;
    q->boost = 1.0f;
    q->max_boost = 3.4028234663852886e38; /* Float.MAX_VALUE */
  }
  return q;
}

/* {"field": value} or {"field": {"value"/"query": v, ...}} -> field name and options object */
static qb_code field_body(pctx *p, const json_t *j, const char *qname, const char **field,
                          const json_t **opts) {
  const char *k;
  json_t *v;
  *field = NULL;
  *opts = NULL;
  if (!json_is_object(j))
    return qb_fail(p->err, QB_MALFORMED, "[%s] query malformed, no start_object after query name", qname);
  json_object_foreach((json_t *)j, k, v) {
    qb_code rc;
    if (!strcmp(k, "boost")) continue;
    if (fixed_option(p, qname, k, v, &rc)) {
      if (rc) return rc;
      continue;
    }
    if (*field)
      return qb_fail(p->err, QB_MALFORMED, "[%s] query doesn't support multiple fields, found [%s] and [%s]",
                     qname, *field, k);
    *field = k;
    *opts = v;
  }
  if (!*field) return qb_fail(p->err, QB_MALFORMED, "[%s] query: no field specified", qname);
  return QB_OK;
}

static qb_code parse_term(pctx *p, const json_t *j, qq__query *q) {
  const json_t *o;
  qb_code rc;
  if ((rc = field_body(p, j, "term", &q->field, &o))) return rc;
  if (json_is_object(o)) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
      if (!strcmp(k, "value")) q->value = v;
      else if (!strcmp(k, "boost")) { if ((rc = get_boost(p, o, "term", &q->boost))) return rc; }
      else if (fixed_option(p, "term", k, v, &rc)) { if (rc) return rc; }
      else return qb_fail(p->err, QB_MALFORMED, "[term] query does not support [%s]", k);
    }
    if (!q->value) return qb_fail(p->err, QB_MALFORMED, "[term] query: no [value] for field [%s]", q->field);
  } else {
    q->value = o;
  }
  if (!json_is_string(q->value) && !json_is_number(q->value) && !json_is_boolean(q->value))
    return qb_fail(p->err, QB_MALFORMED, "[term] query: [value] of field [%s] must be a string, number or boolean", q->field);
  return QB_OK;
}

static qb_code parse_terms(pctx *p, const json_t *j, qq__query *q) {
  const char *k;
  json_t *v;
  qb_code rc;
  if (!json_is_object(j)) return qb_fail(p->err, QB_MALFORMED, "[terms] query malformed, no start_object after query name");
  if ((rc = get_boost(p, j, "terms", &q->boost))) return rc;
  json_object_foreach((json_t *)j, k, v) {
    if (!strcmp(k, "boost")) continue;
    if (fixed_option(p, "terms", k, v, &rc)) {
      if (rc) return rc;
      continue;
    }
    if (q->field)
      return qb_fail(p->err, QB_MALFORMED, "[terms] query does not support multiple fields, found [%s] and [%s]",
                     q->field, k);
    if (!json_is_array(v))
      return qb_fail(p->err, QB_MALFORMED, "[terms] query: the value of field [%s] must be an array, got %s", k, jtype(v));
    q->field = k;
    q->value = v;
  }
  if (!q->field) return qb_fail(p->err, QB_MALFORMED, "[terms] query requires a field");
  return QB_OK;
}

static qb_code parse_match(pctx *p, const json_t *j, qq__query *q) {
  const json_t *o;
  qb_code rc;
  if ((rc = field_body(p, j, "match", &q->field, &o))) return rc;
  const json_t *text = o;
  if (json_is_object(o)) {
    const char *k;
    json_t *v;
    int taken = 0;
    text = NULL;
    json_object_foreach((json_t *)o, k, v) {
      if (!strcmp(k, "query")) text = v;
      else if (!strcmp(k, "operator")) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        if (!strcasecmp(s, "and")) q->op_and = 1;
        else if (!strcasecmp(s, "or")) q->op_and = 0;
        else return qb_fail(p->err, QB_INVAL, "[match] query: unknown operator [%s], expected [and] or [or]", s);
      } else if (!strcmp(k, "minimum_should_match")) {
        if (json_is_integer(v)) {
          char buf[32];
          snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
          if (!(q->msm = qb_arena_strdup(&p->req->arena, buf))) return nomem(p);
        } else if (json_is_string(v)) q->msm = json_string_value(v);
        else return qb_fail(p->err, QB_MALFORMED, "[match] query: [minimum_should_match] must be a number or string");
      } else if (!strcmp(k, "boost")) {
        if ((rc = get_boost(p, o, "match", &q->boost))) return rc;
      } else if ((rc = qq__match_option(p, q, k, v, &taken)) || taken) {
        if (rc) return rc;
      } else if (fixed_option(p, "match", k, v, &rc)) {
        if (rc) return rc;
      } else {
        return qb_fail(p->err, QB_MALFORMED, "[match] query does not support [%s]", k);
      }
    }
    if (!text) return qb_fail(p->err, QB_MALFORMED, "[match] query: no [query] for field [%s]", q->field);
  }
  if (json_is_string(text)) q->text = json_string_value(text);
  else if (json_is_number(text) || json_is_boolean(text)) q->value = text;
  else return qb_fail(p->err, QB_MALFORMED, "[match] query: [query] of field [%s] must be a string, number or boolean", q->field);
  return QB_OK;
}

static qb_code parse_range(pctx *p, const json_t *j, qq__query *q) {
  const json_t *o;
  qb_code rc;
  const char *k;
  json_t *v;
  if ((rc = field_body(p, j, "range", &q->field, &o))) return rc;
  if (!json_is_object(o)) return qb_fail(p->err, QB_MALFORMED, "[range] query malformed, no start_object after field name [%s]", q->field);
  json_object_foreach((json_t *)o, k, v) {
    if (!strcmp(k, "gt")) q->gt = v;
    else if (!strcmp(k, "gte") || !strcmp(k, "from")) q->gte = v;
    else if (!strcmp(k, "lt")) q->lt = v;
    else if (!strcmp(k, "lte") || !strcmp(k, "to")) q->lte = v;
    else if (!strcmp(k, "boost")) { if ((rc = get_boost(p, o, "range", &q->boost))) return rc; }
    else if (!strcmp(k, "format")) { /* our reader takes ISO 8601 and epoch millis whatever it says */
      if (!json_is_string(v)) return qb_fail(p->err, QB_MALFORMED, "[range] query: [format] must be a string");
      if ((rc = qq__date_format_check(json_string_value(v), p->err))) return rc;
    } else if (fixed_option(p, "range", k, v, &rc)) { if (rc) return rc; }
    else return qb_fail(p->err, QB_MALFORMED, "[range] query does not support [%s]", k);
  }
  return QB_OK;
}

static qb_code parse_list(pctx *p, const json_t *v, const char *where, qq__query ***out, size_t *n) {
  qb_code rc;
  if (json_is_object(v)) {
    if (!(*out = alloc(p, sizeof **out))) return nomem(p);
    *n = 1;
    return parse_query(p, v, where, &(*out)[0]);
  }
  if (!json_is_array(v)) return qb_fail(p->err, QB_MALFORMED, "[bool] query: [%s] must be an object or an array", where);
  *n = json_array_size(v);
  if (!(*out = qb_arena_array(&p->req->arena, *n ? *n : 1, sizeof **out))) return nomem(p);
  for (size_t i = 0; i < *n; i++) {
    const json_t *c = json_array_get(v, i);
    if (!json_is_object(c)) return qb_fail(p->err, QB_MALFORMED, "[bool] query: [%s][%zu] must be an object", where, i);
    if ((rc = parse_query(p, c, where, &(*out)[i]))) return rc;
  }
  return QB_OK;
}

static qb_code parse_bool(pctx *p, const json_t *j, qq__query *q) {
  const char *k;
  json_t *v;
  qb_code rc;
  if (!json_is_object(j)) return qb_fail(p->err, QB_MALFORMED, "[bool] query malformed, no start_object after query name");
  json_object_foreach((json_t *)j, k, v) {
    if (!strcmp(k, "must")) rc = parse_list(p, v, "must", &q->must, &q->nmust);
    else if (!strcmp(k, "should")) rc = parse_list(p, v, "should", &q->should, &q->nshould);
    else if (!strcmp(k, "must_not") || !strcmp(k, "mustNot")) rc = parse_list(p, v, "must_not", &q->must_not, &q->nmust_not);
    else if (!strcmp(k, "filter")) rc = parse_list(p, v, "filter", &q->filter, &q->nfilter);
    else if (!strcmp(k, "boost")) rc = get_boost(p, j, "bool", &q->boost);
    else if (!strcmp(k, "minimum_should_match")) {
      rc = QB_OK;
      if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        if (!(q->msm = qb_arena_strdup(&p->req->arena, buf))) return nomem(p);
      } else if (json_is_string(v)) q->msm = json_string_value(v);
      else return qb_fail(p->err, QB_MALFORMED, "[bool] query: [minimum_should_match] must be a number or string");
    } else if (!fixed_option(p, "bool", k, v, &rc)) {
      return qb_fail(p->err, QB_MALFORMED, "[bool] query does not support [%s]", k);
    }
    if (rc) return rc;
  }
  return QB_OK;
}

/* multi_match -> dis_max (best_fields, tie_breaker) or a sum (most_fields: tie_breaker 1) of one
** match per field; "title^2" boosts a field */
static qb_code parse_multi_match(pctx *p, const json_t *j, qq__query *q) {
  const json_t *text = NULL, *fields = NULL;
  const char *k, *msm = NULL;
  json_t *v;
  int op_and = 0, most = 0;
  qq__qkind ckind = QK_MATCH; /* phrase types: one phrase query per field (phrase.c) */
  const json_t *slop = NULL, *maxexp = NULL;
  qb_code rc;
  if (!json_is_object(j)) return qb_fail(p->err, QB_MALFORMED, "[multi_match] query malformed, no start_object after query name");
  json_object_foreach((json_t *)j, k, v) {
    if (!strcmp(k, "query")) text = v;
    else if (!strcmp(k, "fields")) fields = v;
    else if (!strcmp(k, "type")) {
      const char *t = json_is_string(v) ? json_string_value(v) : "";
      if (!strcmp(t, "most_fields")) most = 1;
      else if (!strcmp(t, "phrase")) ckind = QK_PHRASE;
      else if (!strcmp(t, "phrase_prefix")) ckind = QK_PHRASE_PREFIX;
      else if (!strcmp(t, "cross_fields")) q->kind = QK_CROSS;
      else if (strcmp(t, "best_fields"))
        return qb_fail(p->err, QB_INVAL, "[multi_match] query type [%s] is not supported (best_fields, most_fields, "
                       "phrase, phrase_prefix, cross_fields)", t);
    } else if (!strcmp(k, "slop")) slop = v;
    else if (!strcmp(k, "max_expansions")) maxexp = v;
    else if (!strcmp(k, "operator")) {
      const char *s = json_is_string(v) ? json_string_value(v) : "";
      if (!strcasecmp(s, "and")) op_and = 1;
      else if (strcasecmp(s, "or")) return qb_fail(p->err, QB_INVAL, "[multi_match] query: unknown operator [%s], expected [and] or [or]", s);
    } else if (!strcmp(k, "tie_breaker")) {
      if (!getnum(v, &q->tie_breaker)) return qb_fail(p->err, QB_MALFORMED, "[multi_match] [tie_breaker] must be a number");
    } else if (!strcmp(k, "minimum_should_match")) {
      if (json_is_string(v)) msm = json_string_value(v);
      else if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        if (!(msm = qb_arena_strdup(&p->req->arena, buf))) return nomem(p);
      } else return qb_fail(p->err, QB_MALFORMED, "[multi_match] [minimum_should_match] must be a number or string");
    } else if (!strcmp(k, "boost")) {
      if ((rc = get_boost(p, j, "multi_match", &q->boost))) return rc;
    } else if (fixed_option(p, "multi_match", k, v, &rc)) {
      if (rc) return rc;
    } else {
      return qb_fail(p->err, QB_MALFORMED, "[multi_match] query does not support [%s]", k);
    }
  }
  if (!json_is_string(text)) return qb_fail(p->err, QB_MALFORMED, "[multi_match] requires a string [query]");
  if (!json_is_array(fields) || !json_array_size(fields))
    return qb_fail(p->err, QB_INVAL, "[multi_match] requires [fields] (querying all fields is not supported)");
  if (most) q->tie_breaker = 1;
  if ((slop && ckind == QK_MATCH) || (maxexp && ckind != QK_PHRASE_PREFIX))
    return qb_fail(p->err, QB_INVAL, "[multi_match] [%s] applies only to type [%s]", maxexp && ckind != QK_PHRASE_PREFIX ?
                   "max_expansions" : "slop", maxexp && ckind != QK_PHRASE_PREFIX ? "phrase_prefix" : "phrase, phrase_prefix");
  uint32_t nslop = 0, nexp = 50;
  if (slop && (rc = get_uint(p, slop, "slop", &nslop))) return rc;
  if (maxexp && (rc = get_uint(p, maxexp, "max_expansions", &nexp))) return rc;
  if (nexp > 1024 || !nexp) return qb_fail(p->err, QB_INVAL, "[multi_match] [max_expansions] must be in 1..1024");
  q->nshould = json_array_size(fields);
  if (!(q->should = qb_arena_array(&p->req->arena, q->nshould, sizeof *q->should))) return nomem(p);
  for (size_t i = 0; i < q->nshould; i++) {
    const json_t *f = json_array_get(fields, i);
    qq__query *m;
    if (!json_is_string(f)) return qb_fail(p->err, QB_MALFORMED, "[multi_match] [fields] must be strings");
    const char *fs = json_string_value(f), *caret = strchr(fs, '^');
    if (strchr(fs, '*')) return qb_fail(p->err, QB_INVAL, "[multi_match] field patterns ([%s]) are not supported", fs);
    if (!(m = newq(p, ckind))) return nomem(p);
    m->slop = nslop;
    m->max_expansions = nexp;
    if (caret) {
      char *end;
      double b = strtod(caret + 1, &end);
      if (*end || b < 0) return qb_fail(p->err, QB_INVAL, "[multi_match] bad field boost in [%s]", fs);
      m->boost = (float)b;
      if (!(m->field = qb_arena_strndup(&p->req->arena, fs, (size_t)(caret - fs)))) return nomem(p);
    } else {
      m->field = fs;
    }
    m->text = json_string_value(text);
    m->op_and = op_and;
    m->msm = msm;
    m->path = "multi_match";
    q->should[i] = m;
  }
  return QB_OK;
}

static qb_code parse_fvf(pctx *p, const json_t *j, qq__func *f) {
  const char *k;
  json_t *v;
  if (!json_is_object(j)) return qb_fail(p->err, QB_MALFORMED, "[field_value_factor] must be an object");
  f->kind = FN_FVF;
  f->factor = 1;
  json_object_foreach((json_t *)j, k, v) {
    if (!strcmp(k, "field")) {
      if (!json_is_string(v)) return qb_fail(p->err, QB_MALFORMED, "[field_value_factor] [field] must be a string");
      f->field = json_string_value(v);
    } else if (!strcmp(k, "factor")) {
      if (!getnum(v, &f->factor)) return qb_fail(p->err, QB_MALFORMED, "[field_value_factor] [factor] must be a number");
    } else if (!strcmp(k, "missing")) {
      if (!getnum(v, &f->missing)) return qb_fail(p->err, QB_MALFORMED, "[field_value_factor] [missing] must be a number");
      f->has_missing = 1;
    } else if (!strcmp(k, "modifier")) {
      static const char *const mods[] = {"none", "log", "log1p", "log2p", "ln", "ln1p", "ln2p", "square", "sqrt", "reciprocal"};
      const char *s = json_is_string(v) ? json_string_value(v) : "";
      size_t m;
      for (m = 0; m < QB_COUNTOF(mods); m++)
        if (!strcasecmp(s, mods[m])) break;
      if (m == QB_COUNTOF(mods)) return qb_fail(p->err, QB_INVAL, "[field_value_factor] illegal modifier [%s]", s);
      f->modifier = (qq__fvmod)m;
    } else {
      return qb_fail(p->err, QB_MALFORMED, "[field_value_factor] query does not support [%s]", k);
    }
  }
  if (!f->field) return qb_fail(p->err, QB_MALFORMED, "[field_value_factor] required field 'field' missing");
  return QB_OK;
}

/* One function of function_score (from functions[] or the shorthand at the top level). Returns
** 1 in *FOUND when J had a function key. */
static qb_code parse_func_key(pctx *p, const char *k, const json_t *v, qq__func *f, int *found) {
  qb_code rc;
  *found = 1;
  if (!strcmp(k, "script_score")) {
    if (!json_is_object(v) || !json_object_get(v, "script"))
      return qb_fail(p->err, QB_MALFORMED, "[script_score] requires a [script]");
    f->kind = FN_SCRIPT;
    return parse_script(p, json_object_get(v, "script"), QQ_SCRIPT_SCORE, "function_score.script_score", &f->script);
  }
  if (!strcmp(k, "field_value_factor")) return parse_fvf(p, v, f);
  if (!strcmp(k, "weight")) {
    if (!getnum(v, &f->weight)) return qb_fail(p->err, QB_MALFORMED, "[function_score] [weight] must be a number");
    return QB_OK;
  }
  if (!strcmp(k, "gauss") || !strcmp(k, "linear") || !strcmp(k, "exp") || !strcmp(k, "random_score"))
    return qb_fail(p->err, QB_INVAL, "[function_score] function [%s] is not supported", k);
  (void)rc;
  *found = 0;
  return QB_OK;
}

static qb_code parse_fscore(pctx *p, const json_t *j, qq__query *q) {
  const char *k;
  json_t *v;
  qb_code rc;
  int found;
  qq__func top;
  int has_top = 0;
  memset(&top, 0, sizeof top);
  top.weight = 1;
  if (!json_is_object(j)) return qb_fail(p->err, QB_MALFORMED, "[function_score] malformed query, expected a START_OBJECT");
  json_object_foreach((json_t *)j, k, v) {
    if (!strcmp(k, "query")) {
      if ((rc = parse_query(p, v, "function_score.query", &q->child))) return rc;
    } else if (!strcmp(k, "functions")) {
      if (!json_is_array(v)) return qb_fail(p->err, QB_MALFORMED, "[function_score] [functions] must be an array");
      q->nfuncs = json_array_size(v);
      if (!(q->funcs = qb_arena_array(&p->req->arena, q->nfuncs + 1, sizeof *q->funcs))) return nomem(p);
      for (size_t i = 0; i < q->nfuncs; i++) {
        const json_t *fo = json_array_get(v, i);
        const char *fk;
        json_t *fv;
        qq__func *f = &q->funcs[i];
        int any = 0;
        f->weight = 1;
        f->kind = FN_WEIGHT;
        if (!json_is_object(fo)) return qb_fail(p->err, QB_MALFORMED, "[function_score] functions[%zu] must be an object", i);
        json_object_foreach((json_t *)fo, fk, fv) {
          if (!strcmp(fk, "filter")) {
            if ((rc = parse_query(p, fv, "function_score.functions.filter", &f->filter))) return rc;
            continue;
          }
          if ((rc = parse_func_key(p, fk, fv, f, &found))) return rc;
          if (!found) return qb_fail(p->err, QB_MALFORMED, "[function_score] functions[%zu]: unknown field [%s]", i, fk);
          any = 1;
        }
        if (!any) return qb_fail(p->err, QB_MALFORMED, "[function_score] functions[%zu] has no function", i);
      }
    } else if (!strcmp(k, "score_mode")) {
      static const char *const m[] = {"multiply", "sum", "avg", "first", "max", "min"};
      const char *s = json_is_string(v) ? json_string_value(v) : "";
      size_t i;
      for (i = 0; i < QB_COUNTOF(m); i++)
        if (!strcmp(s, m[i])) break;
      if (i == QB_COUNTOF(m)) return qb_fail(p->err, QB_INVAL, "[function_score] illegal score_mode [%s]", s);
      q->score_mode = (qq__score_mode)i;
    } else if (!strcmp(k, "boost_mode")) {
      static const char *const m[] = {"multiply", "replace", "sum", "avg", "max", "min"};
      const char *s = json_is_string(v) ? json_string_value(v) : "";
      size_t i;
      for (i = 0; i < QB_COUNTOF(m); i++)
        if (!strcmp(s, m[i])) break;
      if (i == QB_COUNTOF(m)) return qb_fail(p->err, QB_INVAL, "[function_score] illegal boost_mode [%s]", s);
      q->boost_mode = (qq__boost_mode)i;
    } else if (!strcmp(k, "max_boost")) {
      if (!getnum(v, &q->max_boost)) return qb_fail(p->err, QB_MALFORMED, "[function_score] [max_boost] must be a number");
    } else if (!strcmp(k, "min_score")) {
      if (!getnum(v, &q->min_score)) return qb_fail(p->err, QB_MALFORMED, "[function_score] [min_score] must be a number");
      q->has_min_score = 1;
    } else if (!strcmp(k, "boost")) {
      if ((rc = get_boost(p, j, "function_score", &q->boost))) return rc;
    } else if (fixed_option(p, "function_score", k, v, &rc)) {
      if (rc) return rc;
    } else {
      if ((rc = parse_func_key(p, k, v, &top, &found))) return rc;
      if (!found) return qb_fail(p->err, QB_MALFORMED, "[function_score] query does not support [%s]", k);
      has_top = 1;
    }
  }
  if (has_top) {
    if (q->nfuncs)
      return qb_fail(p->err, QB_MALFORMED, "[function_score] already found [functions] array, now encountering a function at the top level");
    if (!(q->funcs = alloc(p, sizeof *q->funcs))) return nomem(p);
    q->funcs[0] = top;
    q->nfuncs = 1;
  }
  if (!q->child && !(q->child = newq(p, QK_MATCH_ALL))) return nomem(p);
  return QB_OK;
}

static qb_code parse_query(pctx *p, const json_t *j, const char *where, qq__query **out) {
  const char *name;
  json_t *body;
  qq__query *q;
  qb_code rc = QB_OK;
  *out = NULL;
  if (!json_is_object(j)) return qb_fail(p->err, QB_MALFORMED, "[%s] query malformed, expected START_OBJECT but found [%s]", where, jtype(j));
  if (json_object_size(j) == 0) /* {} is match_all in a bool clause, as in Elasticsearch */
    return (*out = newq(p, QK_MATCH_ALL)) ? QB_OK : nomem(p);
  if (json_object_size(j) != 1) {
    void *it = json_object_iter((json_t *)j);
    const char *k1 = json_object_iter_key(it);
    const char *k2 = json_object_iter_key(json_object_iter_next((json_t *)j, it));
    return qb_fail(p->err, QB_MALFORMED, "[%s] malformed query, expected [END_OBJECT] but found [FIELD_NAME]: "
                   "one query per object, got [%s] and [%s]", k1, k1, k2);
  }
  if (++p->depth > MAX_QUERY_DEPTH)
    return qb_fail(p->err, QB_MALFORMED, "query nested deeper than %d levels", MAX_QUERY_DEPTH);
  name = json_object_iter_key(json_object_iter((json_t *)j));
  body = json_object_iter_value(json_object_iter((json_t *)j));
  if (!strcmp(name, "match_all") || !strcmp(name, "match_none")) {
    if (!(q = newq(p, name[6] == 'a' ? QK_MATCH_ALL : QK_MATCH_NONE))) return nomem(p);
    if (!json_is_object(body)) return qb_fail(p->err, QB_MALFORMED, "[%s] query malformed, no start_object after query name", name);
    if (!(rc = only_keys(p, body, name, "boost"))) rc = get_boost(p, body, name, &q->boost);
  } else if (!strcmp(name, "term")) {
    if (!(q = newq(p, QK_TERM))) return nomem(p);
    rc = parse_term(p, body, q);
  } else if (!strcmp(name, "terms")) {
    if (!(q = newq(p, QK_TERMS))) return nomem(p);
    rc = parse_terms(p, body, q);
  } else if (!strcmp(name, "match")) {
    if (!(q = newq(p, QK_MATCH))) return nomem(p);
    rc = parse_match(p, body, q);
  } else if (!strcmp(name, "range")) {
    if (!(q = newq(p, QK_RANGE))) return nomem(p);
    rc = parse_range(p, body, q);
  } else if (!strcmp(name, "exists")) {
    json_t *f = json_is_object(body) ? json_object_get(body, "field") : NULL;
    if (!(q = newq(p, QK_EXISTS))) return nomem(p);
    if (!json_is_string(f)) return qb_fail(p->err, QB_MALFORMED, "[exists] must be provided with a [field]");
    q->field = json_string_value(f);
    if (!(rc = only_keys(p, body, "exists", "field boost"))) rc = get_boost(p, body, "exists", &q->boost);
  } else if (!strcmp(name, "ids")) {
    json_t *v = json_is_object(body) ? json_object_get(body, "values") : NULL;
    if (!(q = newq(p, QK_IDS))) return nomem(p);
    if (!json_is_array(v)) return qb_fail(p->err, QB_MALFORMED, "[ids] query: [values] must be an array");
    q->value = v;
    if (!(rc = only_keys(p, body, "ids", "values boost"))) rc = get_boost(p, body, "ids", &q->boost);
  } else if (!strcmp(name, "bool")) {
    if (!(q = newq(p, QK_BOOL))) return nomem(p);
    if (!(rc = parse_bool(p, body, q))) rc = get_boost(p, body, "bool", &q->boost);
  } else if (!strcmp(name, "constant_score")) {
    json_t *f = json_is_object(body) ? json_object_get(body, "filter") : NULL;
    if (!(q = newq(p, QK_CONST))) return nomem(p);
    if (!f) return qb_fail(p->err, QB_MALFORMED, "[constant_score] requires a 'filter' element");
    if (!(rc = only_keys(p, body, "constant_score", "filter boost")) &&
        !(rc = parse_query(p, f, "constant_score.filter", &q->child)))
      rc = get_boost(p, body, "constant_score", &q->boost);
  } else if (!strcmp(name, "function_score")) {
    if (!(q = newq(p, QK_FSCORE))) return nomem(p);
    rc = parse_fscore(p, body, q);
  } else if (!strcmp(name, "script_score")) {
    json_t *iq = json_is_object(body) ? json_object_get(body, "query") : NULL;
    json_t *sc = json_is_object(body) ? json_object_get(body, "script") : NULL;
    json_t *ms = json_is_object(body) ? json_object_get(body, "min_score") : NULL;
    if (!(q = newq(p, QK_SCRIPT_SCORE))) return nomem(p);
    if (!iq) return qb_fail(p->err, QB_MALFORMED, "[script_score] requires a [query]");
    if (!sc) return qb_fail(p->err, QB_MALFORMED, "[script_score] requires a [script]");
    if (ms) {
      if (!getnum(ms, &q->min_score)) return qb_fail(p->err, QB_MALFORMED, "[script_score] [min_score] must be a number");
      q->has_min_score = 1;
    }
    if (!(rc = only_keys(p, body, "script_score", "query script min_score boost")) &&
        !(rc = parse_query(p, iq, "script_score.query", &q->child)) &&
        !(rc = parse_script(p, sc, QQ_SCRIPT_SCORE, "script_score", &q->script)))
      rc = get_boost(p, body, "script_score", &q->boost);
  } else if (!strcmp(name, "dis_max")) {
    json_t *qs = json_is_object(body) ? json_object_get(body, "queries") : NULL;
    json_t *tb = json_is_object(body) ? json_object_get(body, "tie_breaker") : NULL;
    if (!(q = newq(p, QK_DISMAX))) return nomem(p);
    if (!json_is_array(qs)) return qb_fail(p->err, QB_MALFORMED, "[dis_max] requires 'queries' field with at least one clause");
    if (tb && !getnum(tb, &q->tie_breaker)) return qb_fail(p->err, QB_MALFORMED, "[dis_max] [tie_breaker] must be a number");
    if (!(rc = only_keys(p, body, "dis_max", "queries tie_breaker boost")) &&
        !(rc = parse_list(p, qs, "dis_max.queries", &q->should, &q->nshould)))
      rc = get_boost(p, body, "dis_max", &q->boost);
  } else if (!strcmp(name, "multi_match")) {
    if (!(q = newq(p, QK_DISMAX))) return nomem(p);
    rc = parse_multi_match(p, body, q);
  } else if (!strcmp(name, "prefix") || !strcmp(name, "wildcard")) {
    const json_t *o;
    if (!(q = newq(p, name[0] == 'p' ? QK_PREFIX : QK_WILDCARD))) return nomem(p);
    if ((rc = field_body(p, body, name, &q->field, &o))) return rc;
    if (json_is_object(o)) {
      const char *k;
      json_t *v;
      json_object_foreach((json_t *)o, k, v) {
        if (!strcmp(k, "value") || !strcmp(k, name) || !strcmp(k, "wildcard")) q->value = v;
        else if (!strcmp(k, "boost")) { if ((rc = get_boost(p, o, name, &q->boost))) return rc; }
        else if (!strcmp(k, "rewrite")) { /* matches are constant-scored: the scoring rewrites differ */
          const char *rw = json_is_string(v) ? json_string_value(v) : "";
          if (strncmp(rw, "constant_score", 14))
            return qb_fail(p->err, QB_INVAL, "[%s] query: [rewrite] [%s] is not supported (constant_score only)", name, rw);
        } else if (fixed_option(p, name, k, v, &rc)) { if (rc) return rc; }
        else return qb_fail(p->err, QB_MALFORMED, "[%s] query does not support [%s]", name, k);
      }
    } else {
      q->value = o;
    }
    if (!json_is_string(q->value)) return qb_fail(p->err, QB_MALFORMED, "[%s] query: [value] of field [%s] must be a string", name, q->field);
  } else if (!strcmp(name, "match_phrase") || !strcmp(name, "match_phrase_prefix")) {
    if (!(q = newq(p, name[12] ? QK_PHRASE_PREFIX : QK_PHRASE))) return nomem(p);
    rc = qq__parse_phrase(p->req, body, name, q, p->err);
  } else if (!strcmp(name, "script")) {
    json_t *sc = json_is_object(body) ? json_object_get(body, "script") : NULL;
    if (!(q = newq(p, QK_SCRIPT))) return nomem(p);
    if (!sc) return qb_fail(p->err, QB_MALFORMED, "[script] query requires a [script]");
    if (!(rc = only_keys(p, body, "script", "script boost")) &&
        !(rc = parse_script(p, sc, QQ_SCRIPT_FILTER, "script", &q->script)))
      rc = get_boost(p, body, "script", &q->boost);
  } else if (!strcmp(name, "fuzzy") || !strcmp(name, "regexp") || !strcmp(name, "boosting")) {
    if (!(q = newq(p, name[0] == 'f' ? QK_FUZZY : name[0] == 'r' ? QK_REGEXP : QK_BOOSTING))) return nomem(p);
    rc = name[0] == 'f' ? qq__parse_fuzzy(p, body, q) : name[0] == 'r' ? qq__parse_regexp(p, body, q) : qq__parse_boosting(p, body, q);
  } else if (!strcmp(name, "query_string") || !strcmp(name, "simple_query_string")) {
    if ((rc = qq__parse_qstring(p, body, name[0] == 's', &q))) return rc;
  } else {
    return qb_fail(p->err, QB_MALFORMED, "unknown query [%s]", name);
  }
  if (rc) return rc;
  q->path = where;
  p->depth--;
  *out = q;
  return QB_OK;
}

/* ---- the rest of the body ------------------------------------------------------------------------ */

static qb_code parse_sort_one(pctx *p, const json_t *v, qq__sort *s) {
  const char *k;
  json_t *o;
  memset(s, 0, sizeof *s);
  if (json_is_string(v)) {
    k = json_string_value(v);
    o = NULL;
  } else if (json_is_object(v) && json_object_size(v) == 1) {
    k = json_object_iter_key(json_object_iter((json_t *)v));
    o = json_object_iter_value(json_object_iter((json_t *)v));
  } else {
    return qb_fail(p->err, QB_MALFORMED, "[sort] each element must be a field name or an object with one field");
  }
  if (!strcmp(k, "_score")) { s->kind = SK_SCORE; s->desc = 1; }
  else if (!strcmp(k, "_doc")) s->kind = SK_DOC;
  else if (!strcmp(k, "_shard_doc")) s->kind = SK_SHARD_DOC; /* paging.c checks it is a PIT's */
  else { s->kind = SK_FIELD; s->field = k; }
  if (json_is_string(o)) {
    const char *d = json_string_value(o);
    if (!strcmp(d, "desc")) s->desc = 1;
    else if (!strcmp(d, "asc")) s->desc = 0;
    else return qb_fail(p->err, QB_INVAL, "[sort] unknown order [%s] for [%s], expected [asc] or [desc]", d, k);
  } else if (json_is_object(o)) {
    const char *ok;
    json_t *ov;
    json_object_foreach(o, ok, ov) {
      if (!strcmp(ok, "order")) {
        const char *d = json_is_string(ov) ? json_string_value(ov) : "";
        if (!strcmp(d, "desc")) s->desc = 1;
        else if (!strcmp(d, "asc")) s->desc = 0;
        else return qb_fail(p->err, QB_INVAL, "[sort] unknown order [%s] for [%s], expected [asc] or [desc]", d, k);
      } else if (!strcmp(ok, "missing")) {
        if (json_is_string(ov) && !strcmp(json_string_value(ov), "_last")) s->missing = MISSING_LAST;
        else if (json_is_string(ov) && !strcmp(json_string_value(ov), "_first")) s->missing = MISSING_FIRST;
        else { s->missing = MISSING_VALUE; s->missing_value = ov; }
      } else if (!strcmp(ok, "unmapped_type")) {
        if (!json_is_string(ov)) return qb_fail(p->err, QB_MALFORMED, "[sort] [unmapped_type] of [%s] must be a string", k);
        s->unmapped_ok = 1;
      } else {
        return qb_fail(p->err, QB_MALFORMED, "[sort] option [%s] of [%s] is not supported", ok, k);
      }
    }
  } else if (o) {
    return qb_fail(p->err, QB_MALFORMED, "[sort] [%s] must be an order string or an object", k);
  }
  return QB_OK;
}

static qb_code parse_patterns(pctx *p, const json_t *v, const char ***out, size_t *n) {
  if (json_is_string(v)) {
    if (!(*out = alloc(p, sizeof **out))) return nomem(p);
    (*out)[0] = json_string_value(v);
    *n = 1;
    return QB_OK;
  }
  if (!json_is_array(v)) return qb_fail(p->err, QB_MALFORMED, "[_source] patterns must be a string or an array of strings");
  *n = json_array_size(v);
  if (!(*out = qb_arena_array(&p->req->arena, *n + 1, sizeof **out))) return nomem(p);
  for (size_t i = 0; i < *n; i++) {
    if (!json_is_string(json_array_get(v, i))) return qb_fail(p->err, QB_MALFORMED, "[_source] patterns must be strings");
    (*out)[i] = json_string_value(json_array_get(v, i));
  }
  return QB_OK;
}

static qb_code parse_source(pctx *p, const json_t *v) {
  qq_request *r = p->req;
  qb_code rc;
  if (json_is_boolean(v)) { r->source_mode = json_is_true(v); return QB_OK; }
  r->source_mode = 2;
  if (json_is_object(v)) {
    const char *k;
    json_t *o;
    json_object_foreach((json_t *)v, k, o) {
      if (!strcmp(k, "includes") || !strcmp(k, "include")) rc = parse_patterns(p, o, &r->src_incl, &r->nsrc_incl);
      else if (!strcmp(k, "excludes") || !strcmp(k, "exclude")) rc = parse_patterns(p, o, &r->src_excl, &r->nsrc_excl);
      else return qb_fail(p->err, QB_MALFORMED, "[_source] unknown key [%s]", k);
      if (rc) return rc;
    }
    return QB_OK;
  }
  return parse_patterns(p, v, &r->src_incl, &r->nsrc_incl);
}

/* "month" / "1M" / "quarter" / ... (calendar) or "90m" / "1d" / "500ms" (fixed) */
static qb_code parse_date_interval(pctx *p, const json_t *o, const char *k, const char *name, qq__agg *g) {
  static const struct { const char *word; char unit; } cal[] = {
      {"year", 'y'}, {"1y", 'y'}, {"quarter", 'q'}, {"1q", 'q'}, {"month", 'M'}, {"1M", 'M'},
      {"week", 'w'}, {"1w", 'w'}, {"day", 'd'}, {"1d", 'd'}, {"hour", 'h'}, {"1h", 'h'},
      {"minute", 'm'}, {"1m", 'm'}, {"second", 's'}, {"1s", 's'}};
  const char *v = json_is_string(o) ? json_string_value(o) : "";
  if (strcmp(k, "fixed_interval"))
    for (size_t i = 0; i < QB_COUNTOF(cal); i++)
      if (!strcmp(v, cal[i].word)) {
        g->cal_unit = cal[i].unit;
        return QB_OK;
      }
  if (!strcmp(k, "calendar_interval"))
    return qb_fail(p->err, QB_INVAL, "[date_histogram] aggregation [%s]: the calendar interval must be a single unit, got [%s]", name, v);
  char *end;
  double n = strtod(v, &end);
  static const struct { const char *suf; double ms; } units[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  for (size_t i = 0; i < QB_COUNTOF(units); i++)
    if (end != v && !strcmp(end, units[i].suf) && n > 0) {
      g->interval = n * units[i].ms;
      return QB_OK;
    }
  return qb_fail(p->err, QB_INVAL, "[date_histogram] aggregation [%s]: failed to parse [%s] interval [%s]", name, k, v);
}

/* "timeout": Elasticsearch's time value ("500ms", "2s", "1m", "-1" or "0" for none; a bare
** number is milliseconds). A shard that passes it stops collecting and answers what it found
** with timed_out (search.c). */
static qb_code parse_timeout(pctx *p, const json_t *v, uint64_t *out) {
  char buf[40], *end;
  *out = 0;
  if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lldms", (long long)json_integer_value(v));
  else if (json_is_string(v) && json_string_length(v) < sizeof buf)
    snprintf(buf, sizeof buf, "%s", json_string_value(v));
  else return qb_fail(p->err, QB_MALFORMED, "[timeout] must be a time value such as \"500ms\"");
  if (!strcmp(buf, "-1") || !strcmp(buf, "0") || !strcmp(buf, "-1ms")) return QB_OK;
  double n = strtod(buf, &end);
  static const struct { const char *unit; double ns; } units[] = {
      {"nanos", 1}, {"micros", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9}};
  for (size_t i = 0; end != buf && n >= 0 && i < QB_COUNTOF(units); i++)
    if (!strcmp(end, units[i].unit)) {
      double ns = n * units[i].ns;
      *out = ns >= 1 ? (ns > 1e18 ? (uint64_t)1e18 : (uint64_t)ns) : 1;
      return QB_OK;
    }
  return qb_fail(p->err, QB_INVAL, "failed to parse setting [timeout] with value [%s] as a time "
                 "value: unit is missing or unrecognized", buf);
}

static qb_code parse_aggs(pctx *p, const json_t *v, int nested, qq__agg **out, size_t *n) {
  const char *name;
  json_t *a;
  size_t i = 0;
  qb_code rc;
  if (!json_is_object(v)) return qb_fail(p->err, QB_MALFORMED, "[aggregations] must be an object");
  *n = json_object_size(v);
  if (!(*out = qb_arena_array(&p->req->arena, *n + 1, sizeof **out))) return nomem(p);
  json_object_foreach((json_t *)v, name, a) {
    qq__agg *g = &(*out)[i++];
    const char *k, *type = NULL;
    json_t *o, *body = NULL, *subs = NULL;
    g->name = name;
    if (!json_is_object(a)) return qb_fail(p->err, QB_MALFORMED, "aggregation [%s] must be an object", name);
    json_object_foreach(a, k, o) {
      if (!strcmp(k, "aggs") || !strcmp(k, "aggregations")) subs = o;
      else if (!strcmp(k, "meta")) continue;
      else if (type) return qb_fail(p->err, QB_MALFORMED, "found two aggregation type definitions in [%s]: [%s] and [%s]", name, type, k);
      else { type = k; body = o; }
    }
    if (!type) return qb_fail(p->err, QB_MALFORMED, "missing definition of the aggregation type in [%s]", name);
    static const char *const kinds[] = {"terms", "avg", "sum", "min", "max", "stats", "value_count",
                                        "histogram", "date_histogram"};
    size_t t;
    for (t = 0; t < QB_COUNTOF(kinds); t++)
      if (!strcmp(type, kinds[t])) break;
    if (t == QB_COUNTOF(kinds)) { /* the kinds of issue 12 §4: agg_parse.c */
      int xk = qq__agg_ext_kind(type);
      if (xk < 0) return qb_fail(p->err, QB_MALFORMED, "unknown aggregation type [%s] in [%s]", type, name);
      g->kind = (qq__agg_kind)xk;
      if ((rc = qq__agg_parse_ext(p, g, type, body, nested))) return rc;
      goto subs_part;
    }
    g->kind = (qq__agg_kind)t;
    if (!json_is_object(body)) return qb_fail(p->err, QB_MALFORMED, "aggregation [%s]: [%s] must be an object", name, type);
    g->size = 10;
    json_object_foreach(body, k, o) {
      if (!strcmp(k, "field")) {
        if (!json_is_string(o)) return qb_fail(p->err, QB_MALFORMED, "aggregation [%s]: [field] must be a string", name);
        g->field = json_string_value(o);
      } else if (g->kind == AG_HISTOGRAM && (!strcmp(k, "interval") || !strcmp(k, "offset"))) {
        double d;
        if (!json_is_number(o)) return qb_fail(p->err, QB_MALFORMED, "[histogram] aggregation [%s]: [%s] must be a number", name, k);
        d = json_number_value(o);
        if (k[0] == 'i' && !(d > 0)) return qb_fail(p->err, QB_INVAL, "[interval] must be >0 for histogram aggregation [%s]", name);
        if (k[0] == 'i') g->interval = d;
        else g->offset = d;
      } else if (g->kind == AG_DATE_HISTOGRAM &&
                 (!strcmp(k, "calendar_interval") || !strcmp(k, "fixed_interval") || !strcmp(k, "interval"))) {
        if ((rc = parse_date_interval(p, o, k, name, g))) return rc;
      } else if ((g->kind == AG_HISTOGRAM || g->kind == AG_DATE_HISTOGRAM) && !strcmp(k, "min_doc_count")) {
        if (!json_is_integer(o) || json_integer_value(o) < 0)
          return qb_fail(p->err, QB_INVAL, "[%s] aggregation [%s]: [min_doc_count] must be a non-negative integer", type, name);
        g->min_doc_count = (uint64_t)json_integer_value(o);
        g->has_order = 1; /* marks an explicit min_doc_count */
      } else if (!strcmp(k, "script") && !QQ__AGG_BUCKETS(g->kind)) {
        if ((rc = parse_script(p, o, QQ_SCRIPT_METRIC, name, &g->script))) return rc;
      } else if (!strcmp(k, "size") && g->kind == AG_TERMS) {
        if (!json_is_integer(o)) return qb_fail(p->err, QB_MALFORMED, "[terms] aggregation [%s]: [size] must be an integer", name);
        if (json_integer_value(o) <= 0)
          return qb_fail(p->err, QB_INVAL, "[size] must be greater than 0. Found [%lld] in [%s]", (long long)json_integer_value(o), name);
        if (json_integer_value(o) > 65536)
          return qb_fail(p->err, QB_INVAL, "[size] of [%s] is too large: at most 65536 buckets", name);
        g->size = (uint32_t)json_integer_value(o);
      } else if (!strcmp(k, "missing") && !QQ__AGG_BUCKETS(g->kind)) {
        g->missing = o;
      } else if (!strcmp(k, "order") && g->kind == AG_TERMS) {
        json_t *ord = o;
        if (json_is_array(ord) && json_array_size(ord) == 1) ord = json_array_get(ord, 0);
        if (!json_is_object(ord) || json_object_size(ord) != 1)
          return qb_fail(p->err, QB_INVAL, "[terms] aggregation [%s]: [order] must be one {\"key\": \"asc|desc\"}", name);
        const char *ok = json_object_iter_key(json_object_iter(ord));
        json_t *ov = json_object_iter_value(json_object_iter(ord));
        const char *dir = json_is_string(ov) ? json_string_value(ov) : "";
        if (strcmp(dir, "asc") && strcmp(dir, "desc"))
          return qb_fail(p->err, QB_INVAL, "[terms] aggregation [%s]: unknown order direction [%s]", name, dir);
        g->order_desc = !strcmp(dir, "desc");
        if (!strcmp(ok, "_count")) g->order = ORD_COUNT;
        else if (!strcmp(ok, "_key") || !strcmp(ok, "_term")) g->order = ORD_KEY;
        else { g->order = ORD_SUB; g->order_sub = ok; }
        g->has_order = 1;
      } else if (!strcmp(k, "format") && g->kind == AG_DATE_HISTOGRAM) {
        if (!json_is_string(o)) return qb_fail(p->err, QB_MALFORMED, "[date_histogram] aggregation [%s]: [format] must be a string", name);
        if ((rc = qq__date_format_check(json_string_value(o), p->err))) return rc;
        g->format = json_string_value(o);
      } else if (!strcmp(k, "shard_size") && g->kind == AG_TERMS) {
        /* how many buckets a shard sends its coordinator: every bucket is exact within one */
        if (!json_is_integer(o) || json_integer_value(o) < 0)
          return qb_fail(p->err, QB_INVAL, "[terms] aggregation [%s]: [shard_size] must be a non-negative integer", name);
      } else {
        int handled = 0; /* the options of issue 12 §4: agg_parse.c */
        if ((rc = qq__agg_opt_ext(p, g, type, k, o, &handled))) return rc;
        if (!handled) return qb_fail(p->err, QB_MALFORMED, "[%s] aggregation [%s] does not support [%s]", type, name, k);
      }
    }
    if (g->kind == AG_HISTOGRAM && !g->interval) return qb_fail(p->err, QB_INVAL, "[interval] must be >0 for histogram aggregation [%s]", name);
    if (g->kind == AG_DATE_HISTOGRAM && !g->interval && !g->cal_unit)
      return qb_fail(p->err, QB_INVAL, "[date_histogram] aggregation [%s] requires [calendar_interval] or [fixed_interval]", name);
    if (g->kind == AG_TERMS && !g->has_order) { g->order = ORD_COUNT; g->order_desc = 1; }
    if (g->kind == AG_TERMS && !g->min_doc_count && !(g->x && g->x->mdc0)) g->min_doc_count = 1;
    if (!g->field && !g->script)
      return qb_fail(p->err, QB_INVAL, "aggregation [%s]: required one of fields [field, script], but none were specified", name);
  subs_part:
    if (subs) {
      if (!QQ__AGG_MULTI(g->kind)) return qb_fail(p->err, QB_INVAL, "aggregator [%s] of type [%s] cannot accept sub-aggregations", name, type);
      if (nested >= 3) return qb_fail(p->err, QB_INVAL, "aggregation [%s]: bucket aggregations nest at most 4 levels deep", name);
      if ((rc = parse_aggs(p, subs, nested + 1, &g->subs, &g->nsubs))) return rc;
      if (g->nsubs > 64) return qb_fail(p->err, QB_INVAL, "aggregation [%s]: at most 64 sub-aggregations", name);
    }
    if (g->order == ORD_SUB) {
      size_t s;
      for (s = 0; s < g->nsubs; s++)
        if (!strcmp(g->subs[s].name, g->order_sub)) break;
      if (s == g->nsubs)
        return qb_fail(p->err, QB_INVAL, "Invalid aggregator order path [%s]. Unknown aggregation [%s]", g->order_sub, g->order_sub);
      if (g->subs[s].kind == AG_STATS || !QQ__AGG_SIMPLE(g->subs[s].kind))
        return qb_fail(p->err, QB_INVAL, "Invalid aggregator order path [%s]: not a single-value metric", g->order_sub);
      g->order_subi = s;
    }
    if ((rc = qq__agg_check_ext(p, g))) return rc;
  }
  return QB_OK;
}

/* for agg_parse.c (qq__pctx_req and qq__pctx_err are above) */
qb_code qq__pctx_query(qq__pctx *p, const json_t *j, const char *where, qq__query **out) {
  return parse_query(p, j, where, out);
}
qb_code qq__pctx_script(qq__pctx *p, const json_t *j, const char *where, qq__script **out) {
  return parse_script(p, j, QQ_SCRIPT_METRIC, where, out);
}

static qb_code get_uint(pctx *p, const json_t *v, const char *what, uint32_t *out) {
  json_int_t i;
  if (json_is_string(v)) { /* Elasticsearch accepts "10" */
    char *end;
    const char *s = json_string_value(v);
    long long ll = strtoll(s, &end, 10);
    if (!*s || *end) return qb_fail(p->err, QB_MALFORMED, "[%s] must be an integer, got [%s]", what, s);
    i = (json_int_t)ll;
  } else if (!json_is_integer(v)) {
    return qb_fail(p->err, QB_MALFORMED, "[%s] must be an integer, got %s", what, jtype(v));
  } else {
    i = json_integer_value(v);
  }
  if (i < 0) return qb_fail(p->err, QB_INVAL, "[%s] parameter cannot be negative, found [%lld]", what, (long long)i);
  if (i > INT32_MAX) return qb_fail(p->err, QB_INVAL, "[%s] is too large: %lld", what, (long long)i);
  *out = (uint32_t)i;
  return QB_OK;
}

/* "stored_fields": "_none_", a field name or an array of them. */
static qb_code stored_fields(pctx *p, const json_t *v) {
  int with_source = 0;
  if (json_is_string(v)) {
    with_source = !strcmp(json_string_value(v), "_source");
  } else if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++) {
      const json_t *f = json_array_get(v, i);
      if (!json_is_string(f)) return qb_fail(p->err, QB_MALFORMED, "[stored_fields] must be strings");
      with_source |= !strcmp(json_string_value(f), "_source");
    }
  } else {
    return qb_fail(p->err, QB_MALFORMED, "[stored_fields] must be a string or an array of strings");
  }
  p->stored_fields_no_source = !with_source;
  return QB_OK;
}

qb_code qq__parse_query(qq_request *req, const json_t *j, const char *where, qq__query **out, qb_err *err) {
  pctx p = {req, err, 0, 0};
  return parse_query(&p, j, where, out);
}

qb_code qq__parse(qq_request *req, const json_t *body, qb_err *err) {
  pctx p = {req, err, 0, 0};
  const char *k;
  json_t *v;
  qb_code rc = QB_OK;
  req->size = 10;
  req->source_mode = 1;
  req->track_total = 10000;
  if (!json_is_object(body)) return qb_fail(err, QB_PARSE, "request body must be a JSON object");
  json_object_foreach((json_t *)body, k, v) {
    if (!strcmp(k, "query")) rc = parse_query(&p, v, "query", &req->query);
    else if (!strcmp(k, "context")) {
      if (!json_is_object(v)) rc = qb_fail(err, QB_MALFORMED, "[context] must be an object");
    } else if (req->for_count) {
      if (strcmp(k, "min_score")) rc = qb_fail(err, QB_MALFORMED, "request does not support [%s]", k);
      else if (!getnum(v, &req->min_score)) rc = qb_fail(err, QB_MALFORMED, "[min_score] must be a number");
      else req->has_min_score = 1;
    } else if (!strcmp(k, "from")) rc = get_uint(&p, v, "from", &req->from);
    else if (!strcmp(k, "size")) rc = get_uint(&p, v, "size", &req->size);
    else if (!strcmp(k, "sort")) {
      if (json_is_array(v)) {
        req->nsort = json_array_size(v);
        if (!(req->sort = qb_arena_array(&req->arena, req->nsort + 1, sizeof *req->sort))) return nomem(&p);
        for (size_t i = 0; i < req->nsort && !rc; i++) rc = parse_sort_one(&p, json_array_get(v, i), &req->sort[i]);
      } else {
        req->nsort = 1;
        if (!(req->sort = alloc(&p, sizeof *req->sort))) return nomem(&p);
        rc = parse_sort_one(&p, v, &req->sort[0]);
      }
    } else if (!strcmp(k, "_source")) rc = parse_source(&p, v);
    else if (!strcmp(k, "track_total_hits")) {
      if (json_is_true(v)) req->track_total = -1;
      else if (json_is_false(v)) req->track_total = 0;
      else if (json_is_integer(v) && json_integer_value(v) >= 0) {
        req->track_total = json_integer_value(v);
        if (req->track_total == INT32_MAX) req->track_total = -1;
      } else if (json_is_integer(v) && json_integer_value(v) == -1) req->track_total = -1;
      else rc = qb_fail(err, QB_INVAL, "[track_total_hits] must be a boolean or a non-negative integer");
    } else if (!strcmp(k, "track_scores")) {
      if (!json_is_boolean(v)) rc = qb_fail(err, QB_MALFORMED, "[track_scores] must be a boolean");
      req->track_scores = json_is_true(v);
    } else if (!strcmp(k, "min_score")) {
      if (!getnum(v, &req->min_score)) rc = qb_fail(err, QB_MALFORMED, "[min_score] must be a number");
      req->has_min_score = 1;
    } else if (!strcmp(k, "script_fields")) {
      const char *fk;
      json_t *fv;
      size_t i = 0;
      if (!json_is_object(v)) return qb_fail(err, QB_MALFORMED, "[script_fields] must be an object");
      req->nscript_fields = json_object_size(v);
      if (!(req->script_fields = qb_arena_array(&req->arena, req->nscript_fields + 1, sizeof *req->script_fields)))
        return nomem(&p);
      json_object_foreach(v, fk, fv) {
        json_t *sc = json_is_object(fv) ? json_object_get(fv, "script") : NULL;
        if (!sc) return qb_fail(err, QB_MALFORMED, "[script_fields] [%s] must have a [script]", fk);
        req->script_fields[i].name = fk;
        if ((rc = parse_script(&p, sc, QQ_SCRIPT_TRANSFORM, fk, &req->script_fields[i].script))) return rc;
        i++;
      }
    } else if (!strcmp(k, "aggs") || !strcmp(k, "aggregations")) rc = parse_aggs(&p, v, 0, &req->aggs, &req->naggs);
    else if (!strcmp(k, "version") || !strcmp(k, "seq_no_primary_term")) {
      if (!json_is_boolean(v)) rc = qb_fail(err, QB_MALFORMED, "[%s] must be a boolean", k);
      else if (k[0] == 'v') req->want_version = json_is_true(v);
      else req->want_seq_no = json_is_true(v);
    } else if (!strcmp(k, "timeout")) rc = parse_timeout(&p, v, &req->timeout_ns);
    else if (!strcmp(k, "explain") || !strcmp(k, "profile")) {
      /* false is what we do; true is refused rather than answered without what it asks */
      if (!json_is_boolean(v)) rc = qb_fail(err, QB_MALFORMED, "[%s] must be a boolean", k);
      else if (json_is_true(v))
        rc = qb_fail(err, QB_INVAL, "[%s] is not supported: hits are not %s here", k,
                     k[0] == 'e' ? "explained" : "profiled");
    } else if (!strcmp(k, "highlight")) {
      if ((rc = qq__parse_highlight(req, v, err))) return rc;
    } else if (!strcmp(k, "stored_fields")) {
      /* Every field is read from _source (none is stored apart), so asking for stored fields
      ** returns none of them and, as in Elasticsearch, no _source unless it is listed. */
      if ((rc = stored_fields(&p, v))) return rc;
    }
    else if (qq__paging_key(k)) rc = qq__paging_parse(req, k, v, err);
    else rc = qb_fail(err, QB_MALFORMED, "unknown key for a %s in [%s].", jtype(v), k);
    if (rc) return rc;
  }
  if (!req->query && !(req->query = newq(&p, QK_MATCH_ALL))) return nomem(&p);
  if (p.stored_fields_no_source && !json_object_get(body, "_source")) req->source_mode = 0;
  if ((rc = qq__paging_check(req, err))) return rc;
  uint32_t window = req->env && req->env->max_result_window ? req->env->max_result_window : 10000;
  if (!req->for_count && (uint64_t)req->from + req->size > window) /* _count fetches no hits */
    return qb_fail(err, QB_INVAL, "Result window is too large, from + size must be less than or equal to: [%u] "
                   "but was [%llu]. This limit can be set by changing the [index.max_result_window] index "
                   "level setting (or see the scroll api).",
                   window, (unsigned long long)req->from + req->size);
  return QB_OK;
}
