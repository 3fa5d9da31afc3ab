/* meta.c: the node's index metadata that is no index's own: aliases, closed indexes, index
** and component templates. One JSON document, DATA/meta.json, {"aliases": {...}, "closed":
** {...}, "index_templates": {...}, "component_templates": {...}}, held in memory and written
** atomically (a temporary file, fsync, rename) on every change, before the change is seen: a
** change that cannot be written changes nothing. Readers get a copy of one section. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct qs__meta {
  pthread_mutex_t mu;
  char path[1100];
  json_t *doc; /* an object of sections */
};

qb_code qs__meta_open(qs_server *s, qb_err *err) {
  qs__meta *m = qb_calloc(1, sizeof *m);
  if (!m) return qb_fail(err, QB_NOMEM, "out of memory");
  pthread_mutex_init(&m->mu, NULL);
  snprintf(m->path, sizeof m->path, "%s/meta.json", s->data_dir);
  json_error_t je;
  FILE *f = fopen(m->path, "r");
  if (f) {
    m->doc = json_loadf(f, 0, &je);
    fclose(f);
    if (!json_is_object(m->doc)) {
      json_decref(m->doc);
      pthread_mutex_destroy(&m->mu);
      qb_free(m, sizeof *m);
      return qb_fail(err, QB_CORRUPT, "%s is damaged (%s): move it away to start without its "
                     "aliases, templates and closed indexes", s->data_dir, je.text);
    }
  } else if (errno != ENOENT) {
    qb_code rc = qb_fail(err, QB_IO, "cannot read %s: %s", m->path, strerror(errno));
    pthread_mutex_destroy(&m->mu);
    qb_free(m, sizeof *m);
    return rc;
  } else {
    m->doc = json_object();
  }
  s->meta = m;
  return QB_OK;
}

void qs__meta_close(qs_server *s) {
  qs__meta *m = s->meta;
  if (!m) return;
  json_decref(m->doc);
  pthread_mutex_destroy(&m->mu);
  qb_free(m, sizeof *m);
  s->meta = NULL;
}

json_t *qs__meta_get(qs_server *s, const char *section) {
  qs__meta *m = s->meta;
  if (!m) return json_object();
  pthread_mutex_lock(&m->mu);
  json_t *v = json_object_get(m->doc, section);
  json_t *out = v ? json_deep_copy(v) : json_object();
  pthread_mutex_unlock(&m->mu);
  return out;
}

json_t *qs__meta_get_key(qs_server *s, const char *section, const char *key) {
  qs__meta *m = s->meta;
  if (!m) return NULL;
  pthread_mutex_lock(&m->mu);
  json_t *v = json_object_get(json_object_get(m->doc, section), key);
  json_t *out = v ? json_deep_copy(v) : NULL;
  pthread_mutex_unlock(&m->mu);
  return out;
}

qb_code qs__meta_update(qs_server *s, qs__meta_fn fn, void *ud, qb_err *err) {
  qs__meta *m = s->meta;
  if (!m) return qb_fail(err, QB_INTERNAL, "the node's metadata is not open");
  pthread_mutex_lock(&m->mu);
  json_t *next = json_deep_copy(m->doc);
  qb_code rc = next ? fn(next, ud, err) : qb_fail(err, QB_NOMEM, "out of memory");
  if (!rc && !json_equal(next, m->doc)) rc = qs__auth_write(m->path, next, err);
  if (!rc) {
    json_decref(m->doc);
    m->doc = next;
    next = NULL;
  }
  json_decref(next);
  pthread_mutex_unlock(&m->mu);
  return rc;
}

json_t *qs__meta_section(json_t *doc, const char *section) {
  json_t *v = json_object_get(doc, section);
  if (!json_is_object(v)) {
    v = json_object();
    json_object_set_new(doc, section, v);
  }
  return v;
}
