/* mapping.c: field mappings (Elasticsearch's JSON shape in and out), dynamic mapping, and
** parsing a document against a mapping into typed values. Parsing never changes the mapping:
** the fields it would add are collected in qi__parsed and committed by the caller once the
** write is sure to happen, so a rejected document leaves the index unchanged. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"?", "text", "keyword", "long", "integer",
                                         "double", "float", "boolean", "date"};

const char *qi_type_name(qi_type t) {
  return (t >= QI_TEXT && t <= QI_DATE) ? type_names[t] : "?";
}

static int type_from_name(const char *s, qi_type *t) {
  int i;
  for (i = QI_TEXT; i <= QI_DATE; i++)
    if (!strcmp(s, type_names[i])) {
      *t = (qi_type)i;
      return 1;
    }
  return 0;
}

qb_code qi__grow(void **ptr, size_t *cap, size_t need, size_t elem) {
  size_t ncap = *cap ? *cap : 8, ob, nb;
  void *p;
  if (need <= *cap) return QB_OK;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 4) return QB_NOMEM;
    ncap *= 2;
  }
  if (__builtin_mul_overflow(ncap, elem, &nb)) return QB_NOMEM;
  ob = *cap * elem;
  p = qb_realloc(*ptr, ob, nb);
  if (!p) return QB_NOMEM;
  memset((char *)p + ob, 0, nb - ob);
  *ptr = p;
  *cap = ncap;
  return QB_OK;
}

/* ---- fields -------------------------------------------------------------------------------- */

static qi__field *field_new(const char *name, size_t len, qi_type t, int32_t parent,
                            uint32_t ignore_above, qi_analyzer an) {
  qi__field *f = qb_calloc(1, sizeof *f);
  if (!f) return NULL;
  if (!(f->name = qb_malloc(len + 1))) {
    qb_free(f, sizeof *f);
    return NULL;
  }
  memcpy(f->name, name, len);
  f->name[len] = 0;
  f->name_len = len;
  f->type = t;
  f->parent = parent;
  f->ignore_above = ignore_above;
  switch (t) {
  case QI_TEXT:
    f->analyzer = an ? an : QI_ANALYZER_STANDARD;
    f->indexed = f->has_norms = 1;
    break;
  case QI_KEYWORD:
    f->analyzer = QI_ANALYZER_KEYWORD;
    f->indexed = 1;
    f->dv = QI_DV_KEYWORD;
    break;
  case QI_DOUBLE:
  case QI_FLOAT:
    f->dv = QI_DV_F64;
    break;
  default:
    f->dv = QI_DV_I64;
    break;
  }
  return f;
}

static void field_free(qi__field *f) {
  if (!f) return;
  qb_free(f->name, f->name_len + 1);
  qb_free(f, sizeof *f);
}

void qi__mapping_fini(qi__mapping *m) {
  size_t i;
  for (i = 0; i < m->nfields; i++) field_free(m->fields[i]);
  qb_free(m->fields, m->cap * sizeof *m->fields);
  memset(m, 0, sizeof *m);
}

qi__field *qi__mapping_find(const qi__mapping *m, const char *name, size_t len) {
  size_t i;
  for (i = 0; i < m->nfields; i++)
    if (m->fields[i]->name_len == len && !memcmp(m->fields[i]->name, name, len))
      return m->fields[i];
  return NULL;
}

void qi__parsed_init(qi__parsed *p) {
  memset(p, 0, sizeof *p);
  qb_arena_init(&p->scratch);
}

void qi__parsed_fini(qi__parsed *p) {
  size_t i;
  for (i = 0; i < p->nnew; i++) field_free(p->newf[i]);
  qb_free(p->newf, p->newcap * sizeof *p->newf);
  qb_free(p->vals, p->cap * sizeof *p->vals);
  qb_arena_fini(&p->scratch);
  memset(p, 0, sizeof *p);
}

/* Field NAME in M or among P's pending fields. */
static qi__field *lookup(const qi__mapping *m, const qi__parsed *p, const char *name,
                         size_t len) {
  qi__field *f = qi__mapping_find(m, name, len);
  size_t i;
  if (f) return f;
  for (i = 0; i < p->nnew; i++)
    if (p->newf[i]->name_len == len && !memcmp(p->newf[i]->name, name, len)) return p->newf[i];
  return NULL;
}

/* 1 when some top-level (non multi-field) field lives under "NAME." */
static int is_object_path(const qi__mapping *m, const qi__parsed *p, const char *name,
                          size_t len) {
  size_t i, n = m->nfields + p->nnew;
  for (i = 0; i < n; i++) {
    const qi__field *f = i < m->nfields ? m->fields[i] : p->newf[i - m->nfields];
    if (f->parent < 0 && f->name_len > len && f->name[len] == '.' && !memcmp(f->name, name, len))
      return 1;
  }
  return 0;
}

/* A text field without "analyzer" takes the index's analysis.analyzer.default (and
** default_search), if it has one. */
static void default_chain(const qi__mapping *m, qi__field *f) {
  const qi_chain *d = qi__analysis_default(m->an, 0);
  if (f->type != QI_TEXT || !d) return;
  f->analyzer = QI_ANALYZER_CHAIN;
  f->ichain = d;
  f->schain = qi__analysis_default(m->an, 1);
}

static qb_code add_pending(const qi__mapping *m, qi__parsed *p, const char *name, size_t len,
                           qi_type t, int32_t parent, uint32_t ignore_above, qi__field **out) {
  qi__field *f;
  if (qi__grow((void **)&p->newf, &p->newcap, p->nnew + 1, sizeof *p->newf)) return QB_NOMEM;
  if (!(f = field_new(name, len, t, parent, ignore_above, QI_ANALYZER_NONE))) return QB_NOMEM;
  f->id = (uint32_t)(m->nfields + p->nnew);
  p->newf[p->nnew++] = f;
  default_chain(m, f);
  *out = f;
  return QB_OK;
}

qb_code qi__mapping_commit(qi__mapping *m, qi__parsed *p, qb_err *err) {
  size_t i;
  if (!p->nnew) return QB_OK;
  if (qi__grow((void **)&m->fields, &m->cap, m->nfields + p->nnew, sizeof *m->fields))
    return qb_fail(err, QB_NOMEM, "mapping: out of memory");
  for (i = 0; i < p->nnew; i++) m->fields[m->nfields++] = p->newf[i];
  p->nnew = 0;
  return QB_OK;
}

/* ---- mapping JSON in ----------------------------------------------------------------------- */

static qb_code parse_props(qi__mapping *m, qi__parsed *p, json_t *props, const char *prefix,
                           qb_err *err);

static qb_code parse_field(qi__mapping *m, qi__parsed *p, const char *name, json_t *def,
                           int32_t parent, qb_err *err) {
  json_t *jt = json_object_get(def, "type"), *jp = json_object_get(def, "properties");
  json_t *ja = json_object_get(def, "ignore_above"), *jan = json_object_get(def, "analyzer");
  qi_type t;
  qi__field *f;
  uint32_t ignore_above = 0;
  qi_analyzer an = QI_ANALYZER_NONE;
  size_t len = strlen(name);
  if (!json_is_object(def))
    return qb_fail(err, QB_INVAL, "expected map for property [fields] on field [%s]", name);
  if (!jt && jp) {
    if (parent >= 0) return qb_fail(err, QB_INVAL, "multi-field [%s] must have a type", name);
    if (qi__mapping_find(m, name, len) || lookup(m, p, name, len))
      return qb_fail(err, QB_INVAL, "can't merge a non object mapping [%s] with an object mapping",
                     name);
    return parse_props(m, p, jp, name, err);
  }
  if (!jt) return qb_fail(err, QB_INVAL, "no type specified for field [%s]", name);
  if (!json_is_string(jt) || !type_from_name(json_string_value(jt), &t)) {
    if (json_is_string(jt) && !strcmp(json_string_value(jt), "object"))
      return jp ? parse_props(m, p, jp, name, err) : QB_OK;
    return qb_fail(err, QB_INVAL, "no handler for type [%s] declared on field [%s]",
                   json_is_string(jt) ? json_string_value(jt) : "?", name);
  }
  if (ja) {
    if (!json_is_integer(ja) || json_integer_value(ja) < 0 || json_integer_value(ja) > INT32_MAX)
      return qb_fail(err, QB_INVAL, "[ignore_above] on field [%s] must be a positive integer",
                     name);
    ignore_above = (uint32_t)json_integer_value(ja);
  }
  const char *an_name = "", *san_name = "";
  const qi_chain *ich = NULL, *sch = NULL;
  {
    json_t *jsa = json_object_get(def, "search_analyzer");
    if (json_object_get(def, "search_quote_analyzer"))
      return qb_fail(err, QB_INVAL, "unknown parameter [search_quote_analyzer] on mapper [%s]: it is not supported", name);
    if ((jan || jsa) && t != QI_TEXT)
      return qb_fail(err, QB_INVAL, "unknown parameter [%s] on mapper [%s] of type [%s]",
                     jan ? "analyzer" : "search_analyzer", name, qi_type_name(t));
    if ((jan && !json_is_string(jan)) || (jsa && !json_is_string(jsa)))
      return qb_fail(err, QB_INVAL, "[analyzer] on field [%s] must be a string", name);
    if (jsa && !jan)
      return qb_fail(err, QB_INVAL, "analyzer on field [%s] must be set when search_analyzer is set", name);
    if (jan) {
      an_name = json_string_value(jan);
      if (!(ich = qi__analysis_find(m->an, an_name)))
        return qb_fail(err, QB_INVAL, "analyzer [%s] has not been configured in mappings", an_name);
      an = QI_ANALYZER_CHAIN;
    }
    if (jsa) {
      san_name = json_string_value(jsa);
      if (!(sch = qi__analysis_find(m->an, san_name)))
        return qb_fail(err, QB_INVAL, "analyzer [%s] has not been configured in mappings", san_name);
    }
    if (strlen(an_name) >= 64 || strlen(san_name) >= 64)
      return qb_fail(err, QB_INVAL, "analyzer names on field [%s] are at most 63 bytes", name);
  }
  f = lookup(m, p, name, len);
  if (f) {
    if (f->type != t)
      return qb_fail(err, QB_INVAL, "mapper [%s] cannot be changed from type [%s] to [%s]", name,
                     qi_type_name(f->type), qi_type_name(t));
    if (t == QI_TEXT && (strcmp(f->an_name, an_name) || strcmp(f->san_name, san_name)))
      return qb_fail(err, QB_INVAL, "Mapper for [%s] conflicts with existing mapper: Cannot update "
                     "parameter [%s] from [%s] to [%s]", name,
                     strcmp(f->an_name, an_name) ? "analyzer" : "search_analyzer",
                     strcmp(f->an_name, an_name) ? (*f->an_name ? f->an_name : "default") : (*f->san_name ? f->san_name : "default"),
                     strcmp(f->an_name, an_name) ? (*an_name ? an_name : "default") : (*san_name ? san_name : "default"));
  } else {
    if (is_object_path(m, p, name, len))
      return qb_fail(err, QB_INVAL, "can't merge a non object mapping [%s] with an object mapping",
                     name);
    if (qi__grow((void **)&p->newf, &p->newcap, p->nnew + 1, sizeof *p->newf) ||
        !(f = field_new(name, len, t, parent, ignore_above, an)))
      return qb_fail(err, QB_NOMEM, "mapping: out of memory");
    f->id = (uint32_t)(m->nfields + p->nnew);
    p->newf[p->nnew++] = f;
    if (an == QI_ANALYZER_CHAIN) {
      f->ichain = ich;
      f->schain = sch ? sch : ich;
      snprintf(f->an_name, sizeof f->an_name, "%s", an_name);
      snprintf(f->san_name, sizeof f->san_name, "%s", san_name);
    } else {
      default_chain(m, f);
    }
  }
  {
    json_t *jf = json_object_get(def, "fields"), *v;
    const char *k;
    char sub[1024];
    qb_code rc;
    if (jf && !json_is_object(jf))
      return qb_fail(err, QB_INVAL, "expected map for property [fields] on field [%s]", name);
    json_object_foreach(jf, k, v) {
      if (parent >= 0) return qb_fail(err, QB_INVAL, "multi-fields of multi-field [%s] are not supported", name);
      if (snprintf(sub, sizeof sub, "%s.%s", name, k) >= (int)sizeof sub)
        return qb_fail(err, QB_INVAL, "field name [%s.%s] is too long", name, k);
      if ((rc = parse_field(m, p, sub, v, (int32_t)f->id, err))) return rc;
    }
  }
  return QB_OK;
}

static qb_code parse_props(qi__mapping *m, qi__parsed *p, json_t *props, const char *prefix,
                           qb_err *err) {
  const char *k;
  json_t *v;
  char name[1024];
  qb_code rc;
  if (!json_is_object(props))
    return qb_fail(err, QB_INVAL, "expected map for property [properties] on [%s]",
                   prefix ? prefix : "_doc");
  json_object_foreach(props, k, v) {
    if (!*k) return qb_fail(err, QB_INVAL, "field name cannot be an empty string");
    if (snprintf(name, sizeof name, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", k) >=
        (int)sizeof name)
      return qb_fail(err, QB_INVAL, "field name [%s] is too long", k);
    if ((rc = parse_field(m, p, name, v, -1, err))) return rc;
  }
  return QB_OK;
}

qb_code qi__mapping_merge_json(qi__mapping *m, json_t *mappings, qb_err *err) {
  qi__parsed p;
  json_t *props;
  const char *k;
  json_t *v;
  qb_code rc = QB_OK;
  if (!mappings || json_is_null(mappings)) return QB_OK;
  if (!json_is_object(mappings))
    return qb_fail(err, QB_INVAL, "mapper_parsing_exception: mappings must be an object");
  /* accept the pre-7 shape {"_doc": {"properties": ...}} too */
  if (!json_object_get(mappings, "properties") && json_object_size(mappings) == 1 &&
      json_is_object(json_object_get(mappings, "_doc")))
    mappings = json_object_get(mappings, "_doc");
  json_object_foreach(mappings, k, v) {
    if (strcmp(k, "properties") && strcmp(k, "dynamic") && strcmp(k, "_source") &&
        strcmp(k, "date_detection") && strcmp(k, "_meta"))
      return qb_fail(err, QB_INVAL, "root mapping definition has unsupported parameters: [%s]", k);
  }
  props = json_object_get(mappings, "properties");
  qi__parsed_init(&p);
  if (props) rc = parse_props(m, &p, props, NULL, err);
  if (!rc) rc = qi__mapping_commit(m, &p, err);
  qi__parsed_fini(&p);
  return rc;
}

/* ---- mapping JSON out ---------------------------------------------------------------------- */

static json_t *field_json(const qi__field *f) {
  json_t *o = json_object();
  json_object_set_new(o, "type", json_string(qi_type_name(f->type)));
  if (f->type == QI_KEYWORD && f->ignore_above)
    json_object_set_new(o, "ignore_above", json_integer(f->ignore_above));
  if (f->type == QI_TEXT && f->analyzer == QI_ANALYZER_KEYWORD)
    json_object_set_new(o, "analyzer", json_string("keyword"));
  if (f->type == QI_TEXT && *f->an_name)
    json_object_set_new(o, "analyzer", json_string(f->an_name));
  if (f->type == QI_TEXT && *f->san_name)
    json_object_set_new(o, "search_analyzer", json_string(f->san_name));
  return o;
}

qb_code qi__mapping_to_json(const qi__mapping *m, qb_buf *out, qb_err *err) {
  json_t *root = json_object(), *props = json_object(), **nodes;
  size_t i;
  char *s;
  if (!root || !props) {
    json_decref(root);
    json_decref(props);
    return qb_fail(err, QB_NOMEM, "mapping: out of memory");
  }
  json_object_set_new(root, "properties", props);
  if (!(nodes = qb_calloc(m->nfields + 1, sizeof *nodes))) goto oom;
  for (i = 0; i < m->nfields; i++) {
    const qi__field *f = m->fields[i];
    json_t *node = field_json(f), *at;
    if (f->parent >= 0 && nodes[f->parent]) {
      const qi__field *pf = m->fields[f->parent];
      json_t *fs = json_object_get(nodes[f->parent], "fields");
      if (!fs) {
        fs = json_object();
        json_object_set_new(nodes[f->parent], "fields", fs);
      }
      json_object_set_new(fs, f->name + pf->name_len + 1, node);
    } else {
      /* split the dotted path into object properties */
      const char *s0 = f->name, *dot;
      char part[1024];
      at = props;
      while ((dot = strchr(s0, '.')) != NULL) {
        json_t *obj;
        size_t n = (size_t)(dot - s0);
        if (n >= sizeof part) n = sizeof part - 1;
        memcpy(part, s0, n);
        part[n] = 0;
        obj = json_object_get(at, part);
        if (!obj) {
          obj = json_object();
          json_object_set_new(obj, "properties", json_object());
          json_object_set_new(at, part, obj);
        }
        at = json_object_get(obj, "properties");
        if (!at) {
          at = json_object();
          json_object_set_new(obj, "properties", at);
        }
        s0 = dot + 1;
      }
      json_object_set_new(at, s0, node);
    }
    nodes[i] = node;
  }
  qb_free(nodes, (m->nfields + 1) * sizeof *nodes);
  s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  if (!s) return qb_fail(err, QB_NOMEM, "mapping: out of memory");
  if (qb_buf_puts(out, s)) {
    qi__json_free(s);
    return qb_fail(err, QB_NOMEM, "mapping: out of memory");
  }
  qi__json_free(s);
  return QB_OK;
oom:
  json_decref(root);
  return qb_fail(err, QB_NOMEM, "mapping: out of memory");
}

/* ---- documents ----------------------------------------------------------------------------- */

typedef struct walk {
  const qi__mapping *m;
  qi__parsed *p;
  const char *id;
  qb_err *err;
  char path[1024];
} walk;

static qb_code reject(walk *w, const qi__field *f, json_t *v, const char *why) {
  char preview[64];
  char *s = NULL;
  if (json_is_string(v)) {
    snprintf(preview, sizeof preview, "%s", json_string_value(v));
  } else {
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(preview, sizeof preview, "%s", s ? s : "?");
    qi__json_free(s);
  }
  return qb_fail(w->err, QB_INVAL,
                 "failed to parse field [%s] of type [%s] in document with id '%s'. Preview of "
                 "field's value: '%s'%s%s",
                 f->name, qi_type_name(f->type), w->id ? w->id : "", preview, why ? ": " : "",
                 why ? why : "");
}

static qb_code push(walk *w, const qi__field *f, const char *s, size_t len, int64_t i, double d,
                    int is_float) {
  qi__parsed *p = w->p;
  qi__value *v;
  if (qi__grow((void **)&p->vals, &p->cap, p->nvals + 1, sizeof *p->vals))
    return qb_fail(w->err, QB_NOMEM, "document: out of memory");
  v = &p->vals[p->nvals++];
  v->field = f->id;
  v->s = s;
  v->len = len;
  v->i = i;
  v->f = d;
  v->is_float = (uint8_t)is_float;
  return QB_OK;
}

/* Parse a whole string as a number. 1 ok (integer in *I when *IS_INT), 0 not a number. */
static int str_number(const char *s, size_t len, int64_t *iv, double *dv, int *is_int) {
  char buf[64], *end;
  if (!len || len >= sizeof buf) return 0;
  memcpy(buf, s, len);
  buf[len] = 0;
  errno = 0;
  *iv = strtoll(buf, &end, 10);
  if (!*end && !errno && end != buf) {
    *is_int = 1;
    *dv = (double)*iv;
    return 1;
  }
  errno = 0;
  *dv = strtod(buf, &end);
  if (*end || end == buf || !isfinite(*dv)) return 0;
  *is_int = 0;
  return 1;
}

static size_t utf8_chars(const char *s, size_t len) {
  size_t i, n = 0;
  for (i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

static qb_code scalar_text(walk *w, json_t *v, const char **s, size_t *len) {
  char buf[64];
  int n;
  if (json_is_string(v)) {
    *s = json_string_value(v);
    *len = json_string_length(v);
    return QB_OK;
  }
  if (json_is_integer(v)) n = snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) {
    int prec;
    double d = json_real_value(v);
    for (prec = 1; prec <= 17; prec++) {
      n = snprintf(buf, sizeof buf, "%.*g", prec, d);
      if (strtod(buf, NULL) == d) break;
    }
    if (!strchr(buf, '.') && !strchr(buf, 'e')) n = snprintf(buf, sizeof buf, "%.1f", d);
  } else
    n = snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
  if (!(*s = qb_arena_strndup(&w->p->scratch, buf, (size_t)n)))
    return qb_fail(w->err, QB_NOMEM, "document: out of memory");
  *len = (size_t)n;
  return QB_OK;
}

static qb_code value(walk *w, const qi__field *f, json_t *v);

static qb_code subfields(walk *w, const qi__field *f, json_t *v) {
  size_t i, n = w->m->nfields + w->p->nnew;
  qb_code rc;
  for (i = f->id + 1; i < n; i++) {
    const qi__field *c = i < w->m->nfields ? w->m->fields[i] : w->p->newf[i - w->m->nfields];
    if (c->parent == (int32_t)f->id && (rc = value(w, c, v))) return rc;
  }
  return QB_OK;
}

static qb_code value(walk *w, const qi__field *f, json_t *v) {
  int64_t iv = 0;
  double dv = 0;
  int is_int = 0;
  const char *s = NULL;
  size_t len = 0;
  qb_code rc;
  if (json_is_object(v) || json_is_array(v)) return reject(w, f, v, "expected a concrete value");
  switch (f->type) {
  case QI_TEXT:
  case QI_KEYWORD:
    if ((rc = scalar_text(w, v, &s, &len))) return rc;
    if (f->type == QI_KEYWORD && f->ignore_above && utf8_chars(s, len) > f->ignore_above) break;
    if ((rc = push(w, f, s, len, 0, 0, 0))) return rc;
    break;
  case QI_LONG:
  case QI_INTEGER:
    if (json_is_integer(v)) {
      iv = json_integer_value(v);
    } else if (json_is_real(v) ||
               (json_is_string(v) && str_number(json_string_value(v), json_string_length(v), &iv,
                                                &dv, &is_int))) {
      if (json_is_real(v)) dv = json_real_value(v);
      if (!is_int) {
        if (!(dv > -9.2233720368547758e18 && dv < 9.2233720368547758e18))
          return reject(w, f, v, "value out of range for a long");
        iv = (int64_t)dv; /* coerce: truncate toward zero, as Elasticsearch does */
      }
    } else {
      return reject(w, f, v, json_is_string(v) ? "not a number" : "expected a number");
    }
    if (f->type == QI_INTEGER && (iv < INT32_MIN || iv > INT32_MAX))
      return reject(w, f, v, "value out of range for an integer");
    if ((rc = push(w, f, NULL, 0, iv, 0, 0))) return rc;
    break;
  case QI_DOUBLE:
  case QI_FLOAT:
    if (json_is_integer(v)) dv = (double)json_integer_value(v);
    else if (json_is_real(v)) dv = json_real_value(v);
    else if (!json_is_string(v) ||
             !str_number(json_string_value(v), json_string_length(v), &iv, &dv, &is_int))
      return reject(w, f, v, json_is_string(v) ? "not a number" : "expected a number");
    if (!isfinite(dv)) return reject(w, f, v, "only finite values are supported");
    if (f->type == QI_FLOAT) {
      if (fabs(dv) > 3.4028234663852886e38) return reject(w, f, v, "value out of range for a float");
      dv = (double)(float)dv;
    }
    if ((rc = push(w, f, NULL, 0, 0, dv, 1))) return rc;
    break;
  case QI_BOOLEAN:
    if (json_is_boolean(v)) iv = json_is_true(v);
    else if (json_is_string(v) && !strcmp(json_string_value(v), "true")) iv = 1;
    else if (json_is_string(v) && (!strcmp(json_string_value(v), "false") ||
                                   !json_string_length(v)))
      iv = 0;
    else
      return reject(w, f, v, "only [true] or [false] are allowed");
    if ((rc = push(w, f, NULL, 0, iv, 0, 0))) return rc;
    break;
  case QI_DATE:
    if (json_is_integer(v)) iv = json_integer_value(v);
    else if (json_is_real(v) && isfinite(json_real_value(v)) &&
             fabs(json_real_value(v)) < 9.2e18)
      iv = (int64_t)json_real_value(v);
    else if (json_is_string(v)) {
      s = json_string_value(v);
      len = json_string_length(v);
      if (qi_date_parse(s, len, &iv))
        return reject(w, f, v,
                      "failed to parse date with format [strict_date_optional_time||epoch_millis]");
    } else
      return reject(w, f, v, "expected a date");
    if ((rc = push(w, f, NULL, 0, iv, 0, 0))) return rc;
    break;
  }
  return subfields(w, f, v);
}

static qb_code dynamic(walk *w, json_t *v, size_t plen, qi__field **out) {
  qi__field *f, *kw;
  int64_t ms;
  const char *p = w->path;
  if (json_is_string(v)) {
    if (!qi__date_detect(json_string_value(v), json_string_length(v), &ms))
      return add_pending(w->m, w->p, p, plen, QI_DATE, -1, 0, out);
    if (add_pending(w->m, w->p, p, plen, QI_TEXT, -1, 0, &f)) return QB_NOMEM;
    {
      char sub[1040];
      int n = snprintf(sub, sizeof sub, "%.*s.keyword", (int)plen, p);
      if (add_pending(w->m, w->p, sub, (size_t)n, QI_KEYWORD, (int32_t)f->id, 256, &kw))
        return QB_NOMEM;
    }
    *out = f;
    return QB_OK;
  }
  if (json_is_integer(v)) return add_pending(w->m, w->p, p, plen, QI_LONG, -1, 0, out);
  if (json_is_real(v)) return add_pending(w->m, w->p, p, plen, QI_FLOAT, -1, 0, out);
  return add_pending(w->m, w->p, p, plen, QI_BOOLEAN, -1, 0, out);
}

static qb_code walk_value(walk *w, json_t *v, size_t plen, int depth);

static qb_code walk_object(walk *w, json_t *obj, size_t plen, int depth) {
  const char *k;
  json_t *v;
  qb_code rc;
  if (depth > 20)
    return qb_fail(w->err, QB_INVAL, "the depth limit of 20 objects was exceeded at [%.*s]",
                   (int)plen, w->path);
  json_object_foreach(obj, k, v) {
    size_t klen = strlen(k), n = plen;
    if (!klen || k[0] == '.' || k[klen - 1] == '.')
      return qb_fail(w->err, QB_INVAL,
                     "field name cannot be empty or start or end with a dot: [%s]", k);
    if (!plen && k[0] == '_' && (!strcmp(k, "_id") || !strcmp(k, "_source") ||
                                 !strcmp(k, "_version") || !strcmp(k, "_seq_no") ||
                                 !strcmp(k, "_index")))
      return qb_fail(w->err, QB_INVAL,
                     "field [%s] is a metadata field and cannot be added inside a document", k);
    if (plen + 1 + klen >= sizeof w->path)
      return qb_fail(w->err, QB_INVAL, "field name [%s] is too long", k);
    if (plen) w->path[n++] = '.';
    memcpy(w->path + n, k, klen);
    n += klen;
    w->path[n] = 0;
    if ((rc = walk_value(w, v, n, depth))) return rc;
    w->path[plen] = 0;
  }
  return QB_OK;
}

static qb_code walk_value(walk *w, json_t *v, size_t plen, int depth) {
  qi__field *f;
  size_t i;
  qb_code rc;
  if (json_is_null(v)) return QB_OK;
  if (json_is_array(v)) {
    for (i = 0; i < json_array_size(v); i++)
      if ((rc = walk_value(w, json_array_get(v, i), plen, depth + 1))) return rc;
    return QB_OK;
  }
  f = lookup(w->m, w->p, w->path, plen);
  if (json_is_object(v)) {
    if (f) return reject(w, f, v, "tried to parse a concrete field as an object");
    return walk_object(w, v, plen, depth + 1);
  }
  if (!f) {
    if (is_object_path(w->m, w->p, w->path, plen))
      return qb_fail(w->err, QB_INVAL,
                     "object mapping for [%s] tried to parse field [%s] as object, but found a "
                     "concrete value", w->path, w->path);
    if (dynamic(w, v, plen, &f)) return qb_fail(w->err, QB_NOMEM, "document: out of memory");
  }
  return value(w, f, v);
}

qb_code qi__parse_doc(const qi__mapping *m, json_t *doc, const char *id, qi__parsed *p,
                      qb_err *err) {
  walk w;
  if (!json_is_object(doc))
    return qb_fail(err, QB_INVAL, "failed to parse: the document must be a JSON object");
  w.m = m;
  w.p = p;
  w.id = id;
  w.err = err;
  w.path[0] = 0;
  return walk_object(&w, doc, 0, 0);
}
