/* h_close.c: POST /{index}/_close and /{index}/_open. A closed index keeps its files and its
** place in the catalog, but searches, counts, document reads and writes naming it answer 400
** index_closed_exception (patterns skip it), as Elasticsearch does; the state is the node's
** metadata (meta.c, section "closed"), so it survives a restart. One node: a coordinator
** answers 400. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct close_ctx {
  json_t *names;
  int close;
} close_ctx;

static qb_code set_closed(json_t *doc, void *ud, qb_err *err) {
  (void)err;
  close_ctx *c = ud;
  json_t *closed = qs__meta_section(doc, "closed");
  size_t i;
  json_t *jn;
  json_array_foreach(c->names, i, jn) {
    if (c->close) json_object_set_new(closed, json_string_value(jn), json_true());
    else json_object_del(closed, json_string_value(jn));
  }
  return QB_OK;
}

static void open_close(qs_req *r, int close) {
  if (!qs__local_only(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  json_decref(body);
  /* names and patterns, closed ones included (they are what _open is for) */
  json_t *names = json_array();
  qi_catalog *cat = qc_node_catalog(r->srv->node);
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", r->caps[0]);
  for (char *s = NULL, *t = strtok_r(buf, ",", &s); t; t = strtok_r(NULL, ",", &s)) {
    int pattern = strchr(t, '*') || !strcmp(t, "_all");
    size_t before = json_array_size(names);
    for (size_t i = 0, n = qi_catalog_count(cat); i < n; i++) {
      char name[256];
      if (qi_catalog_name(cat, i, name, NULL)) continue;
      if (pattern ? !fnmatch(strcmp(t, "_all") ? t : "*", name, 0) : !strcmp(t, name))
        json_array_append_new(names, json_string(name));
    }
    if (!pattern && json_array_size(names) == before) {
      json_decref(names);
      return qs__reply_no_index(r, t);
    }
  }
  qb_err err;
  /* what was written before a close is kept searchable for when it opens */
  size_t i;
  json_t *jn;
  json_array_foreach(names, i, jn) {
    qi_index *ix;
    if (close && !qi_catalog_get(cat, json_string_value(jn), &ix, NULL)) {
      qs__refresh_now(r->srv, ix, json_string_value(jn), &err);
      qi_index_release(ix);
    }
  }
  close_ctx c = {names, close};
  qb_code rc = qs__meta_update(r->srv, set_closed, &c, &err);
  if (rc) {
    json_decref(names);
    return qs__reply_err(r, &err);
  }
  json_t *indices = json_object();
  json_array_foreach(names, i, jn) {
    qb_log(QB_INFO, "index %s: %s", close ? "closed" : "opened", json_string_value(jn));
    json_object_set_new(indices, json_string_value(jn), json_pack("{s:b}", "closed", 1));
  }
  json_decref(names);
  if (close)
    qs__reply_json(r, 200, json_pack("{s:b, s:b, s:o}", "acknowledged", 1, "shards_acknowledged", 1,
                                     "indices", indices));
  else {
    json_decref(indices);
    qs__reply_json(r, 200, json_pack("{s:b, s:b}", "acknowledged", 1, "shards_acknowledged", 1));
  }
}

void qs__h_index_close(qs_req *r) { open_close(r, 1); }
void qs__h_index_open(qs_req *r) { open_close(r, 0); }
