/* h_settings_get.c: GET /_settings, /{index}/_settings and /{index}/_settings/{name}, as
** Elasticsearch answers them: each index's settings as strings under "index" (nested, or with
** ?flat_settings=true one level of dotted keys), filtered by NAME (a comma list of dotted
** names, each with '*' wildcards: index.refresh_interval, index.*, *.number_of_*), and with
** ?include_defaults=true the settings this node applies without being told, under "defaults".
** PUT lives in h_settings.c. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Nesting of the settings tree we flatten; deeper than any analysis block a user writes. */
#define DEPTH_MAX 16

/* 1 when S matches PAT, '*' standing for any run of characters (Elasticsearch's
** Regex.simpleMatch). Iterative: the last '*' is the only backtracking point. */
static int glob(const char *pat, const char *s) {
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*pat == '*') {
      star = pat++;
      resume = s;
    } else if (*pat == *s) {
      pat++;
      s++;
    } else if (star) {
      pat = star + 1;
      s = ++resume;
    } else {
      return 0;
    }
  }
  while (*pat == '*') pat++;
  return !*pat;
}

/* 1 when dotted KEY is one of NAMES (comma list; NULL: every key). */
static int wanted(const char *names, const char *key) {
  if (!names) return 1;
  char one[256];
  for (const char *p = names; *p;) {
    size_t n = strcspn(p, ",");
    if (n < sizeof one) {
      memcpy(one, p, n);
      one[n] = 0;
      if (glob(one, key)) return 1;
    }
    p += n + (p[n] == ',');
  }
  return 0;
}

/* The leaves of OBJ (under dotted PREFIX) that NAMES wants, into FLAT as "a.b.c": value.
** Arrays are leaves, as Elasticsearch prints a list setting. */
static void flatten(json_t *obj, const char *prefix, const char *names, json_t *flat, int depth) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    char key[512];
    if (snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", k) >= (int)sizeof key)
      continue; /* no setting has such a name; PUT refuses them */
    if (json_is_object(v) && depth < DEPTH_MAX) flatten(v, key, names, flat, depth + 1);
    else if (wanted(names, key)) json_object_set(flat, key, v);
  }
}

/* FLAT's dotted keys as a tree again: "index.refresh_interval" -> {"index":
** {"refresh_interval": ...}}. The keys came from a tree, so none is both a leaf and a branch. */
static json_t *nest(json_t *flat) {
  json_t *root = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(flat, k, v) {
    json_t *at = root;
    char part[512];
    const char *p = k;
    for (const char *dot; root && (dot = strchr(p, '.')); p = dot + 1) {
      size_t n = (size_t)(dot - p) < sizeof part ? (size_t)(dot - p) : sizeof part - 1;
      memcpy(part, p, n);
      part[n] = 0;
      json_t *next = json_object_get(at, part);
      if (!json_is_object(next)) {
        next = json_object();
        json_object_set_new(at, part, next);
      }
      at = next;
    }
    if (at) json_object_set(at, p, v);
  }
  return root;
}

/* The settings an index has without setting them (nested), as strings: the ones this node
** honours (docs/rest-api.md). */
static json_t *defaults(qs_server *s) {
  char refresh[32];
  unsigned ms = s->refresh_interval_ms ? s->refresh_interval_ms : 1000;
  if (ms % 1000) snprintf(refresh, sizeof refresh, "%ums", ms);
  else snprintf(refresh, sizeof refresh, "%us", ms / 1000);
  return json_pack("{s:{s:s, s:s, s:s}}", "index", "refresh_interval", refresh,
                   "max_result_window", "10000", "number_of_replicas", "0");
}

/* ?KEY as a boolean; 0 after a 400 naming a value that is not one. */
static int bool_arg(qs_req *r, const char *key, int *out) {
  const char *v = qs__arg(r, key);
  if (v && *v && strcmp(v, "true") && strcmp(v, "false")) {
    qs__reply_error(r, 400, "illegal_argument_exception",
                    "Failed to parse value [%.64s] as only [true] or [false] are allowed.", v);
    return 0;
  }
  *out = qs__arg_bool(r, key);
  return 1;
}

void qs__h_settings_get(qs_req *r) {
  if (!qs__local_only(r)) return;
  /* /_settings, /_settings/{name}, /{index}/_settings, /{index}/_settings/{name} */
  const char *spec = NULL, *names = NULL;
  if (r->route == QS_R_SETTINGS_GET || r->route == QS_R_SETTINGS_GET_NAME) spec = r->caps[0];
  if (r->route == QS_R_SETTINGS_ALL_NAME) names = r->caps[0];
  if (r->route == QS_R_SETTINGS_GET_NAME) names = r->caps[1];
  if (names && (!strcmp(names, "_all") || !strcmp(names, "*"))) names = NULL;
  int flat, with_defaults;
  if (!bool_arg(r, "flat_settings", &flat) || !bool_arg(r, "include_defaults", &with_defaults))
    return;
  json_t *list = qs__manage_index_names(r, spec), *out = json_object(); /* h_manage.c */
  if (!list) {
    json_decref(out);
    return;
  }
  json_t *base = with_defaults ? defaults(r->srv) : NULL; /* the same for every index */
  size_t i;
  json_t *jn;
  json_array_foreach(list, i, jn) {
    const char *caps[1] = {json_string_value(jn)};
    json_t *idx = NULL;
    /* GET /{index} gives {name: {aliases, mappings, settings}}: its settings, as strings */
    if (qs__subrequest(r, qs__h_index_get, caps, 1, NULL, 0, &idx) != 200) {
      json_decref(idx);
      continue; /* deleted since the names were read */
    }
    json_t *set = json_object(), *def = json_object();
    flatten(json_object_get(json_object_get(idx, caps[0]), "settings"), "", names, set, 0);
    if (with_defaults) {
      flatten(base, "", names, def, 0);
      const char *k;
      json_t *v;
      void *tmp;
      json_object_foreach_safe(def, tmp, k, v) /* a default the index sets is no default */
        if (json_object_get(set, k)) json_object_del(def, k);
    }
    /* a name filter drops the indexes it leaves empty, as Elasticsearch does */
    if (!names || json_object_size(set) || json_object_size(def)) {
      json_t *one = json_object();
      json_object_set_new(one, "settings", flat ? json_incref(set) : nest(set));
      if (with_defaults) json_object_set_new(one, "defaults", flat ? json_incref(def) : nest(def));
      json_object_set_new(out, caps[0], one);
    }
    json_decref(set);
    json_decref(def);
    json_decref(idx);
  }
  json_decref(base);
  json_decref(list);
  qs__reply_json(r, 200, out);
}
