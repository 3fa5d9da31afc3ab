/* h_settings.c: the dynamic index settings: PUT /{index}/_settings (index.refresh_interval,
** index.number_of_replicas, index.max_result_window), their checks at creation, their values
** for the refresher and the searches, and the settings as GET shows them (strings, under
** "index", as Elasticsearch). A rejected PUT changes nothing stored. A cluster coordinator does
** not serve the PUT yet (400). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WINDOW_MAX 2147483647LL /* Elasticsearch's Integer.MAX_VALUE */

/* ---- values --------------------------------------------------------------------------------- */

/* An Elasticsearch time value ("500ms", "5s", "1m", ..., "-1"): *MS, -1 for "-1"; 0 when it
** does not parse or is not positive. */
static int time_ms(const char *t, int64_t *ms) {
  static const struct { const char *unit; double ms; } units[] = {
      {"nanos", 1e-6}, {"micros", 1e-3}, {"ms", 1}, {"s", 1000}, {"m", 60000},
      {"h", 3600000}, {"d", 86400000}};
  if (!strcmp(t, "-1")) return *ms = -1, 1;
  char *end;
  errno = 0;
  long long n = strtoll(t, &end, 10);
  if (errno || end == t || n <= 0 || t[0] == '+' || t[0] == ' ') return 0;
  for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
    if (strcmp(end, units[i].unit)) continue;
    double v = (double)n * units[i].ms;
    if (v < 1 || v > 9e15) return 0; /* below a millisecond, or absurd */
    *ms = (int64_t)v;
    return 1;
  }
  return 0;
}

/* An integer setting's value (a JSON integer or a string of one): 0 when it is neither. */
static int int_value(const json_t *v, long long *out) {
  if (json_is_integer(v)) return *out = json_integer_value(v), 1;
  if (!json_is_string(v)) return 0;
  const char *t = json_string_value(v);
  char *end;
  errno = 0;
  *out = strtoll(t, &end, 10);
  return !errno && end != t && !*end && t[0] != ' ' && t[0] != '+';
}

/* The text of a scalar value as Elasticsearch reports settings (strings); NULL for others. */
static json_t *as_string(const json_t *v) {
  char b[64];
  if (json_is_string(v)) return json_string(json_string_value(v));
  if (json_is_integer(v)) snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) snprintf(b, sizeof b, "%.17g", json_real_value(v));
  else if (json_is_boolean(v)) snprintf(b, sizeof b, "%s", json_is_true(v) ? "true" : "false");
  else return NULL;
  return json_string(b);
}

/* V's text for a message or a time value: a string's or an integer's; a kind for others */
static void value_text(const json_t *v, char text[80]) {
  if (json_is_string(v)) snprintf(text, 80, "%s", json_string_value(v));
  else if (json_is_integer(v)) snprintf(text, 80, "%lld", (long long)json_integer_value(v));
  else snprintf(text, 80, "%s", json_is_real(v) ? "a number" : json_is_boolean(v) ? "a boolean"
                                : v ? "an object or array" : "");
}

/* ---- the dynamic settings ------------------------------------------------------------------- */

/* PATH ("index.x") is one of the dynamic settings and V (not null) a good value for it: 1; 0
** after a 400 naming it; -1 when PATH is none of them. */
int qs__setting_dynamic(qs_req *r, const char *path, const json_t *v) {
  char text[80];
  value_text(v, text);
  long long n;
  if (!strcmp(path, "index.refresh_interval")) {
    int64_t ms;
    if ((json_is_string(v) || (json_is_integer(v) && json_integer_value(v) == -1)) &&
        time_ms(text, &ms))
      return 1;
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "failed to parse setting [index.refresh_interval] with value [%s] as a time "
                    "value: a positive number with a unit (ms, s, m, h, d, micros, nanos), or -1 "
                    "to disable periodic refresh", text);
    return 0;
  }
  if (!strcmp(path, "index.max_result_window")) {
    if (int_value(v, &n) && n >= 1 && n <= WINDOW_MAX) return 1;
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "Failed to parse value [%s] for setting [index.max_result_window] must be "
                    "an integer from 1 to %lld", text, WINDOW_MAX);
    return 0;
  }
  return -1;
}

/* The value of index setting KEY ("refresh_interval") in the settings object S, as creation
** may have written it: {"KEY"}, {"index.KEY"} or {"index": {"KEY"}}. Borrowed; NULL: unset. */
static json_t *lookup(json_t *s, const char *key) {
  char dotted[128];
  snprintf(dotted, sizeof dotted, "index.%s", key);
  json_t *v = json_object_get(json_object_get(s, "index"), key);
  if (!v) v = json_object_get(s, dotted);
  if (!v) v = json_object_get(s, key);
  return json_is_null(v) ? NULL : v;
}

static json_t *settings_of(qi_index *ix) {
  qb_buf b;
  qb_buf_init(&b);
  json_t *s = qi_index_settings_json(ix, &b, NULL) ? NULL : json_loadb(b.data, b.len, 0, NULL);
  qb_buf_fini(&b);
  return s;
}

int64_t qs__index_refresh_ms(qi_index *ix, int *given) {
  json_t *s = settings_of(ix), *v = lookup(s, "refresh_interval");
  int64_t ms = 0;
  char text[80];
  value_text(v, text);
  *given = v && time_ms(text, &ms);
  json_decref(s);
  return *given ? ms : 0;
}

uint32_t qs__index_max_window(qi_index *ix) {
  json_t *s = settings_of(ix);
  long long n = 0;
  if (!int_value(lookup(s, "max_result_window"), &n) || n < 1 || n > WINDOW_MAX) n = 0;
  json_decref(s);
  return (uint32_t)n;
}

/* ENV's max_result_window: the smallest of the searched indexes' (T's shards), as each of
** Elasticsearch's shards checks its own: a local shard's index settings, or on a cluster
** coordinator the settings the index was created with (its metadata). 0 (10000) when none sets
** one. */
static void lower(qq_env *env, uint32_t w) {
  if (w && (!env->max_result_window || w < env->max_result_window)) env->max_result_window = w;
}

void qs__env_window(qs_server *srv, const qc_shards *t, qq_env *env) {
  for (size_t i = 0; i < t->n; i++) {
    if (t->s[i].local) {
      lower(env, qs__index_max_window(t->s[i].local));
      continue;
    }
    if (i && !strcmp(t->s[i - 1].index, t->s[i].index)) continue; /* its other shards */
    json_t *meta = qc_node_index_meta_view(srv->node, t->s[i].index); /* read only */
    long long n;
    if (int_value(lookup(json_object_get(meta, "settings"), "max_result_window"), &n) && n >= 1 &&
        n <= WINDOW_MAX)
      lower(env, (uint32_t)n);
    json_decref(meta);
  }
}

void qs__env_window_named(qs_server *s, const char *index, qq_env *env) {
  qi_index *ix;
  if (qi_catalog_get(qc_node_catalog(s->node), index, &ix, NULL)) return;
  lower(env, qs__index_max_window(ix));
  qi_index_release(ix);
}

/* GET's view of SETTINGS (changed in place): the scalar settings, flat or nested, as strings
** under "index", as Elasticsearch answers them. Objects (analysis) stay where they are. */
void qs__settings_normalize(json_t *settings) {
  json_t *idx = json_object_get(settings, "index");
  if (!idx && (!(idx = json_object()) || json_object_set_new(settings, "index", idx))) return;
  if (!json_is_object(idx)) return;
  const char *k;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(settings, tmp, k, v) {
    const char *sk = strncmp(k, "index.", 6) ? k : k + 6;
    if (!strcmp(k, "index") || strchr(sk, '.') || json_is_object(v) || json_is_array(v)) continue;
    json_t *str = as_string(v);
    if (!str) continue;
    if (!json_object_get(idx, sk)) json_object_set_new(idx, sk, str);
    else json_decref(str);
    json_object_del(settings, k);
  }
  json_object_foreach(idx, k, v) {
    json_t *str = json_is_object(v) || json_is_array(v) ? NULL : as_string(v);
    if (str) json_object_set_new(idx, k, str);
  }
}

/* ---- PUT /{index}/_settings ----------------------------------------------------------------- */

typedef struct change {
  const char *key; /* after "index.": one of KNOWN */
  json_t *value; /* borrowed from the body; NULL: back to the default */
} change;

#define MAX_CHANGES 16

/* Collect the settings of OBJ (PREFIX: the dotted path so far) into C (*N of them), refusing
** what this route does not change; 0 after a reply. */
static int collect(qs_req *r, const char *index, json_t *obj, const char *prefix, change *c,
                   size_t *n, int depth) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    char raw[256], path[sizeof raw + 8];
    snprintf(raw, sizeof raw, "%s%s", prefix, k);
    snprintf(path, sizeof path, "%s%s", strncmp(raw, "index.", 6) ? "index." : "", raw);
    if (json_is_object(v) && depth < 4 && strncmp(path, "index.analysis", 14)) {
      char sub[sizeof raw + 1];
      snprintf(sub, sizeof sub, "%s.", raw);
      if (!collect(r, index, v, sub, c, n, depth + 1)) return 0;
      continue;
    }
    const char *key = path + 6;
    if (!strncmp(path, "index.analysis", 14)) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "Can't update non dynamic settings [[%.200s]] for open indices [[%.200s]]",
                      path, index);
      return 0;
    }
    if (!strcmp(key, "number_of_shards") || !strcmp(key, "provided_name") ||
        !strcmp(key, "uuid") || !strcmp(key, "creation_date") || !strncmp(key, "version.", 8)) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "final index setting [%.200s], not updateable", path);
      return 0;
    }
    static const char *const known[] = {"refresh_interval", "max_result_window",
                                        "number_of_replicas"};
    const char *lit = NULL;
    for (size_t j = 0; j < sizeof known / sizeof *known; j++)
      if (!strcmp(key, known[j])) lit = known[j];
    if (!lit) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "unknown setting [%.200s]: the settings an index changes here are "
                      "index.refresh_interval, index.number_of_replicas and "
                      "index.max_result_window", path);
      return 0;
    }
    if (!json_is_null(v)) {
      if (!strcmp(key, "number_of_replicas")) {
        long long nr;
        if (!int_value(v, &nr) || nr < 0) {
          qs__reply_error(r, 400, "illegal_argument_exception",
                          "Failed to parse value for setting [index.number_of_replicas]: must "
                          "be an integer >= 0");
          return 0;
        }
        if (nr != 0) { /* as at creation (h_index.c): no copies are kept, none is promised */
          qs__reply_error(r, 400, "illegal_argument_exception",
                          "[index.number_of_replicas] must be 0 on a single node (it keeps no "
                          "copies): start a cluster (docs/cluster.md) for replicas");
          return 0;
        }
      } else if (!qs__setting_dynamic(r, path, v)) {
        return 0;
      }
    }
    for (size_t i = 0; i < *n; i++)
      if (!strcmp(c[i].key, key)) {
        qs__reply_error(r, 400, "illegal_argument_exception", "setting [%.200s] is given twice",
                        path);
        return 0;
      }
    if (*n == MAX_CHANGES) {
      qs__reply_error(r, 400, "illegal_argument_exception", "too many settings in one request");
      return 0;
    }
    c[*n].key = lit;
    c[(*n)++].value = json_is_null(v) ? NULL : v;
  }
  return 1;
}

/* Apply C to the settings object S: every spelling of the key goes, the new value (a string)
** goes under "index". 0: out of memory. */
static int apply(json_t *s, const change *c) {
  char dotted[80];
  snprintf(dotted, sizeof dotted, "index.%s", c->key);
  json_object_del(s, c->key);
  json_object_del(s, dotted);
  json_t *idx = json_object_get(s, "index");
  if (json_is_object(idx)) json_object_del(idx, c->key);
  if (!c->value) return 1;
  if (!json_is_object(idx)) {
    if (!(idx = json_object()) || json_object_set_new(s, "index", idx)) return 0;
  }
  json_t *str = as_string(c->value);
  return str && !json_object_set_new(idx, c->key, str);
}

void qs__h_settings_put(qs_req *r) {
  if (!qs__local_only(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_t *root = body;
  if (root && json_is_object(json_object_get(root, "settings")) && json_object_size(root) == 1)
    root = json_object_get(root, "settings"); /* {"settings": {...}}, as Elasticsearch takes */
  change c[MAX_CHANGES];
  size_t n = 0;
  const char *spec = r->ncaps ? r->caps[0] : "_all";
  if (!root || !json_object_size(root)) {
    json_decref(body);
    return qs__reply_error(r, 400, "action_request_validation_exception",
                           "Validation Failed: 1: no settings to update;");
  }
  if (!collect(r, spec, root, "", c, &n, 0)) {
    json_decref(body);
    return;
  }
  json_t *names = qs__manage_index_names(r, r->ncaps ? r->caps[0] : NULL); /* h_manage.c */
  if (!names) {
    json_decref(body);
    return;
  }
  /* the request was checked whole above; now each index: its settings with the changes, stored */
  size_t i;
  json_t *jn;
  qb_err err;
  qb_code rc = QB_OK;
  int refresh_changed = 0;
  for (size_t k = 0; k < n; k++) refresh_changed |= !strcmp(c[k].key, "refresh_interval");
  json_array_foreach(names, i, jn) {
    qi_index *ix;
    if ((rc = qi_catalog_get(qc_node_catalog(r->srv->node), json_string_value(jn), &ix, &err)))
      break;
    json_t *s = settings_of(ix);
    char *text = NULL;
    int ok = json_is_object(s);
    for (size_t k = 0; ok && k < n; k++) ok = apply(s, &c[k]);
    if (ok) text = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(s);
    rc = text ? qi_index_settings_set(ix, text, strlen(text), &err)
              : qb_fail(&err, QB_NOMEM, "settings: out of memory");
    qs__json_free(text);
    qi_index_release(ix);
    if (rc) break;
    qb_log(QB_INFO, "index settings updated: %s", json_string_value(jn));
  }
  json_decref(names);
  json_decref(body);
  if (refresh_changed) qs__refresher_kick(r->srv);
  if (rc == QB_INVAL) return qs__reply_error(r, 400, "illegal_argument_exception", "%s", err.msg);
  if (rc) return qs__reply_err(r, &err);
  qs__reply_json(r, 200, json_pack("{s:b}", "acknowledged", 1));
}
