/* settings.c: replacing an open index's settings (PUT /{index}/_settings): the new JSON object
** is written to the store's meta table in one transaction under the writer lock, and only then
** does the index serve it; a failed write leaves both the store and the index as they were.
** The analysis settings cannot change on an open index (its analyzers are built once). */
#include <string.h>

#include "internal.h"

/* settings.analysis or settings.index.analysis (NULL when neither) */
static json_t *analysis_of(json_t *s) {
  json_t *a = json_object_get(s, "analysis");
  return a ? a : json_object_get(json_object_get(s, "index"), "analysis");
}

qb_code qi_index_settings_set(qi_index *ix, const char *json, size_t len, qb_err *err) {
  json_error_t je;
  json_t *nj = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(nj)) {
    json_decref(nj);
    return qb_fail(err, QB_INVAL, "settings must be a JSON object%s%s", nj ? "" : ": ",
                   nj ? "" : je.text);
  }
  char *text = json_dumps(nj, JSON_COMPACT | JSON_PRESERVE_ORDER);
  char *copy = text ? qb_malloc(strlen(text) + 1) : NULL;
  if (!copy) {
    qi__json_free(text);
    json_decref(nj);
    return qb_fail(err, QB_NOMEM, "settings: out of memory");
  }
  size_t n = strlen(text);
  memcpy(copy, text, n + 1);
  qi__json_free(text);
  qb_code rc = QB_OK;
  qi__lock(ix);
  json_t *old = json_loadb(ix->settings, ix->settings_len, 0, NULL);
  if (!json_equal(analysis_of(old), analysis_of(nj)) && (analysis_of(old) || analysis_of(nj)))
    rc = qb_fail(err, QB_INVAL, "Can't update non dynamic settings [[index.analysis]] for open "
                 "indices");
  else if (ix->failed)
    rc = qb_fail(err, QB_IO, "index %s failed; reopen it", ix->dir);
  else if (!(rc = qi__store_begin(&ix->st, err))) {
    if ((rc = qi__store_meta_put(&ix->st, "settings", copy, err))) qi__store_rollback(&ix->st);
    else rc = qi__store_commit(&ix->st, err);
  }
  json_decref(old);
  json_decref(nj);
  if (!rc) { /* stored: serve it (readers copy it under snap_lock) */
    pthread_mutex_lock(&ix->snap_lock);
    char *prev = ix->settings;
    size_t prev_len = ix->settings_len;
    ix->settings = copy;
    ix->settings_len = n;
    pthread_mutex_unlock(&ix->snap_lock);
    copy = prev;
    n = prev_len;
  }
  qi__unlock(ix);
  qb_free(copy, n + 1);
  return rc;
}
