/* replicas.c: replica copies at index creation and deletion (the leader's placement in
** coord.c places the primaries; this adds settings.number_of_replicas copies of each shard on
** other data nodes and removes them with the index), and the per-copy document counts that
** _cat/shards shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_REPLICAS 16

static int replica_count(json_t *settings, json_int_t *out) {
  json_t *v = json_object_get(settings, "number_of_replicas");
  if (!v) v = json_object_get(json_object_get(settings, "index"), "number_of_replicas");
  if (!v) {
    *out = 1; /* Elasticsearch's default */
    return 1;
  }
  if (json_is_string(v)) {
    char *end;
    *out = strtoll(json_string_value(v), &end, 10);
    if (*end || !*json_string_value(v)) return 0;
  } else if (json_is_integer(v)) {
    *out = json_integer_value(v);
  } else {
    return 0;
  }
  return *out >= 0 && *out <= MAX_REPLICAS;
}

static int has_copy(json_t *sh, const char *node) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(sh, "copies"), i, c)
    if (!strcmp(json_string_value(json_object_get(c, "node")) ?: "", node)) return 1;
  return 0;
}

int qc__replicas_place(qc_node *n, const char *name, const char *body, size_t len,
                       json_t *settings, json_t *shards, const qc_member *m, size_t nm,
                       json_t **out) {
  json_int_t nrep;
  if (!replica_count(settings, &nrep)) {
    *out = json_pack("{s:{s:s, s:s}, s:i}", "error", "type", "illegal_argument_exception",
                     "reason", "Failed to parse value for setting [index.number_of_replicas]: "
                     "must be an integer from 0 to 16", "status", 400);
    return 400;
  }
  json_object_set_new(settings, "number_of_replicas", json_integer(nrep));
  size_t nsh = json_array_size(shards), load[256] = {0};
  for (size_t s = 0; s < nsh; s++) {
    const char *p = qc__sm_primary(json_array_get(shards, s));
    for (size_t x = 0; p && x < nm && x < 256; x++) load[x] += !strcmp(m[x].name, p);
  }
  size_t ncalls = 0, cap = nsh * (size_t)nrep;
  qc_call *c = qb_calloc(cap ? cap : 1, sizeof *c);
  json_t **target = qb_calloc(cap ? cap : 1, sizeof *target);
  const char **tnode = qb_calloc(cap ? cap : 1, sizeof *tnode);
  if (!c || !target || !tnode) {
    qb_free(c, (cap ? cap : 1) * sizeof *c);
    qb_free(target, (cap ? cap : 1) * sizeof *target);
    qb_free(tnode, (cap ? cap : 1) * sizeof *tnode);
    *out = json_pack("{s:{s:s, s:s}, s:i}", "error", "type", "circuit_breaking_exception",
                     "reason", "out of memory", "status", 429);
    return 429;
  }
  for (size_t s = 0; s < nsh; s++) {
    json_t *sh = json_array_get(shards, s);
    json_t *copies = json_object_get(sh, "copies");
    json_t *is = json_array();
    json_array_append_new(is, json_string(qc__sm_primary(sh) ?: ""));
    json_object_set_new(sh, "in_sync", is);
    for (json_int_t r = 0; r < nrep; r++) {
      size_t best = (size_t)-1;
      for (size_t x = 0; x < nm && x < 256; x++)
        if (!has_copy(sh, m[x].name) && (best == (size_t)-1 || load[x] < load[best])) best = x;
      json_t *cp = json_pack("{s:s, s:b, s:s}", "node", best == (size_t)-1 ? "" : m[best].name,
                             "primary", 0, "state", "UNASSIGNED");
      json_array_append_new(copies, cp);
      if (best == (size_t)-1) continue;
      load[best]++;
      char url[128] = "";
      qc__member_url(n, m[best].name, url);
      c[ncalls].method = "PUT";
      snprintf(c[ncalls].url, sizeof c[ncalls].url, "%s/_internal/shard/%s/%zu", url, name, s);
      c[ncalls].body = body;
      c[ncalls].len = len;
      target[ncalls] = sh;
      tnode[ncalls] = m[best].name;
      ncalls++;
    }
  }
  qc_fanout(c, ncalls, 0, NULL);
  for (size_t i = 0; i < ncalls; i++) {
    if (c[i].status == 200) qc__sm_in_sync_add(target[i], tnode[i]);
    else
      qb_log(QB_WARN, "index %s: a replica on [%s] could not be created (HTTP %d); it will be "
             "recovered", name, tnode[i], c[i].status);
    qc_call_fini(&c[i]);
  }
  for (size_t s = 0; s < nsh; s++) qc__sm_normalize(json_array_get(shards, s));
  qb_free(c, (cap ? cap : 1) * sizeof *c);
  qb_free(target, (cap ? cap : 1) * sizeof *target);
  qb_free(tnode, (cap ? cap : 1) * sizeof *tnode);
  return 200;
}

void qc__replicas_drop(qc_node *n, const char *name, json_t *meta) {
  size_t i, cnt = 0;
  json_t *sh;
  json_array_foreach(json_object_get(meta, "shards"), i, sh)
    cnt += json_array_size(json_object_get(sh, "copies"));
  qc_call *c = qb_calloc(cnt ? cnt : 1, sizeof *c);
  size_t k = 0;
  json_array_foreach(json_object_get(meta, "shards"), i, sh) {
    size_t j;
    json_t *cp;
    json_array_foreach(json_object_get(sh, "copies"), j, cp) {
      char url[128];
      const char *nn = json_string_value(json_object_get(cp, "node"));
      if (!c || !j || !nn || !*nn || !qc__member_url(n, nn, url)) continue;
      c[k].method = "DELETE";
      snprintf(c[k].url, sizeof c[k].url, "%s/_internal/shard/%s/%lld", url, name,
               (long long)json_integer_value(json_object_get(sh, "shard")));
      k++;
    }
  }
  if (c) qc_fanout(c, k, 0, NULL);
  for (size_t x = 0; x < k; x++) qc_call_fini(&c[x]);
  qb_free(c, (cnt ? cnt : 1) * sizeof *c);
}

size_t qc__refresh_copies(const qc_shards *sh, qc_call *c, size_t max) {
  size_t k = 0;
  for (size_t i = 0; c && i < sh->n; i++)
    for (size_t a = 0; a < sh->s[i].nalt && k < max; a++) {
      char local[256];
      qc_shard_local_name(sh->s[i].index, sh->s[i].shard_id, local);
      c[k].method = "POST";
      snprintf(c[k].url, sizeof c[k].url, "%s/%s/_refresh", sh->s[i].alt_url[a], local);
      k++;
    }
  return k;
}
/* ---- per-copy document counts ---------------------------------------------------------- */

json_t *qc_copy_docs(qc_node *n) {
  qc_member m[256];
  size_t nm = qc_node_members(n, m, 256), k = 0;
  if (nm > 256) nm = 256;
  qc_call *c = qb_calloc(nm ? nm : 1, sizeof *c);
  const char **who = qb_calloc(nm ? nm : 1, sizeof *who);
  json_t *res = json_object();
  for (size_t i = 0; c && who && i < nm; i++) {
    if (!m[i].data) continue;
    c[k].method = "GET";
    snprintf(c[k].url, sizeof c[k].url, "%s/_cat/indices?format=json", m[i].url);
    who[k++] = m[i].name;
  }
  if (c && who) qc_fanout(c, k, 5000, NULL);
  for (size_t i = 0; c && who && i < k; i++) {
    json_t *arr = c[i].status == 200 ? json_loadb(c[i].resp.data, c[i].resp.len, 0, NULL) : NULL;
    json_t *per = json_object();
    size_t j;
    json_t *row;
    json_array_foreach(arr, j, row) {
      const char *ix = json_string_value(json_object_get(row, "index"));
      const char *cnt = json_string_value(json_object_get(row, "docs.count"));
      if (ix && strchr(ix, '~'))
        json_object_set_new(per, ix, json_integer(cnt ? strtoll(cnt, NULL, 10) : 0));
    }
    json_object_set_new(res, who[i], per);
    json_decref(arr);
    qc_call_fini(&c[i]);
  }
  qb_free(c, (nm ? nm : 1) * sizeof *c);
  qb_free(who, (nm ? nm : 1) * sizeof *who);
  return res;
}
