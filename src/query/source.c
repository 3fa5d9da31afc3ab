/* source.c: `_source` filtering as Elasticsearch's XContentMapValues.filter does it: includes
** and excludes are patterns over full dotted paths with `*` wildcards; an object is kept when its
** path is included (then only excludes apply below it) or when an include pattern can still
** match something inside it; excludes win. Objects inside arrays are filtered with the array's
** path. */
#include "internal.h"

#include <string.h>

/* 1 when glob PAT matches all of S */
static int glob(const char *p, const char *s) {
  for (; *p; p++, s++) {
    if (*p == '*') {
      while (p[1] == '*') p++;
      if (!p[1]) return 1;
      for (; *s; s++)
        if (glob(p + 1, s)) return 1;
      return glob(p + 1, s);
    }
    if (*p != *s) return 0;
  }
  return !*s;
}

int qq__glob(const char *p, const char *s, size_t n) {
  for (; *p; p++, s++, n--) {
    if (*p == '*') {
      while (p[1] == '*') p++;
      if (!p[1]) return 1;
      for (size_t k = 0; k <= n; k++)
        if (qq__glob(p + 1, s + k, n - k)) return 1;
      return 0;
    }
    if (!n || (*p != '?' && *p != *s)) return 0;
  }
  return !n;
}

/* 1 when glob PAT matches some string that starts with S */
static int glob_prefix(const char *p, const char *s) {
  for (; *s; p++, s++) {
    if (!*p) return 0;
    if (*p == '*') return 1;
    if (*p != *s) return 0;
  }
  return 1;
}

typedef struct filt {
  const char **incl, **excl;
  size_t nincl, nexcl;
} filt;

static int any(const char **pats, size_t n, const char *path) {
  for (size_t i = 0; i < n; i++)
    if (glob(pats[i], path)) return 1;
  return 0;
}

static int any_deeper(const char **pats, size_t n, const char *path) {
  char buf[1024];
  size_t l = strlen(path);
  if (l + 2 > sizeof buf) return 1;
  memcpy(buf, path, l);
  buf[l] = '.';
  buf[l + 1] = 0;
  for (size_t i = 0; i < n; i++)
    if (glob_prefix(pats[i], buf)) return 1;
  return 0;
}

static json_t *filter_value(const filt *f, json_t *v, const char *path, int included);

static json_t *filter_obj(const filt *f, json_t *obj, const char *prefix, int included) {
  json_t *out = json_object();
  const char *k;
  json_t *v;
  char path[1024];
  if (!out) return NULL;
  json_object_foreach(obj, k, v) {
    int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
    if (n < 0 || (size_t)n >= sizeof path) continue;
    if (any(f->excl, f->nexcl, path)) continue;
    int inc = included || !f->nincl || any(f->incl, f->nincl, path);
    json_t *r = NULL;
    if (inc) {
      r = filter_value(f, v, path, 1);
    } else if ((json_is_object(v) || json_is_array(v)) && any_deeper(f->incl, f->nincl, path)) {
      r = filter_value(f, v, path, 0);
      if (r && ((json_is_object(r) && !json_object_size(r)) || (json_is_array(r) && !json_array_size(r)))) {
        json_decref(r);
        r = NULL;
      }
      if (!r) continue;
    } else {
      continue;
    }
    if (!r || json_object_set_new(out, k, r)) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

static json_t *filter_value(const filt *f, json_t *v, const char *path, int included) {
  if (json_is_object(v)) return filter_obj(f, v, path, included);
  if (json_is_array(v)) {
    json_t *out = json_array();
    if (!out) return NULL;
    for (size_t i = 0; i < json_array_size(v); i++) {
      json_t *e = json_array_get(v, i), *r;
      if (json_is_object(e) || json_is_array(e)) r = filter_value(f, e, path, included);
      else if (included) r = json_incref(e);
      else continue;
      if (!r || json_array_append_new(out, r)) {
        json_decref(out);
        return NULL;
      }
    }
    return out;
  }
  return json_incref(v);
}

json_t *qq__source_filter(const qq_request *req, json_t *src) {
  filt f = {req->src_incl, req->src_excl, req->nsrc_incl, req->nsrc_excl};
  json_t *out;
  if (!json_is_object(src)) return src;
  out = filter_obj(&f, src, "", 0);
  json_decref(src);
  return out;
}

/* ---- one document's _source outside a search (GET _doc, _mget items) ------------------------ */

#define SRC_MAX_PATTERNS 64

/* SPEC's patterns (a string or an array of strings) appended to PATS; 0 or an error. */
static qb_code spec_patterns(const json_t *v, const char **pats, size_t *n, qb_err *err) {
  if (json_is_string(v)) {
    if (*n >= SRC_MAX_PATTERNS) return qb_fail(err, QB_INVAL, "[_source] more than %d patterns", SRC_MAX_PATTERNS);
    pats[(*n)++] = json_string_value(v);
    return QB_OK;
  }
  if (!json_is_array(v)) return qb_fail(err, QB_MALFORMED, "[_source] patterns must be a string or an array of strings");
  for (size_t i = 0; i < json_array_size(v); i++) {
    qb_code rc;
    if (!json_is_string(json_array_get(v, i))) return qb_fail(err, QB_MALFORMED, "[_source] patterns must be strings");
    if ((rc = spec_patterns(json_array_get(v, i), pats, n, err))) return rc;
  }
  return QB_OK;
}

qb_code qq_source_apply(const json_t *spec, json_t **src, qb_err *err) {
  const char *incl[SRC_MAX_PATTERNS], *excl[SRC_MAX_PATTERNS];
  size_t ni = 0, ne = 0;
  qb_code rc = QB_OK;
  if (!spec || json_is_true(spec)) return QB_OK;
  if (json_is_false(spec)) {
    json_decref(*src);
    *src = NULL;
    return QB_OK;
  }
  if (json_is_object(spec)) {
    const char *k;
    json_t *o;
    json_object_foreach((json_t *)spec, k, o) {
      if (!strcmp(k, "includes") || !strcmp(k, "include")) rc = spec_patterns(o, incl, &ni, err);
      else if (!strcmp(k, "excludes") || !strcmp(k, "exclude")) rc = spec_patterns(o, excl, &ne, err);
      else rc = qb_fail(err, QB_MALFORMED, "[_source] unknown key [%s]", k);
      if (rc) return rc;
    }
  } else if ((rc = spec_patterns(spec, incl, &ni, err))) {
    return rc;
  }
  if (!json_is_object(*src)) return QB_OK;
  filt f = {ni ? incl : NULL, ne ? excl : NULL, ni, ne};
  json_t *out = filter_obj(&f, *src, "", 0);
  if (!out) return qb_fail(err, QB_NOMEM, "[_source] out of memory");
  json_decref(*src);
  *src = out;
  return QB_OK;
}
