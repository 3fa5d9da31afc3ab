/* oplog.c: a local shard copy's replication state (repl.h): the highest primary term seen,
** the local and global checkpoints in DATA/replication/<local>.ckpt, and the op log in
** DATA/replication/<local>.oplog, so that a primary that restarted still recovers a returning
** copy from the operations above its checkpoint. Both files are hints written without fsync:
** the documents' durability is the index's, and a log that does not end at the checkpoint
** read back is dropped (the copy then recovers by a full copy). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repl.h"

void qc__repl_init(qc_node *n) { pthread_mutex_init(&n->repl_mu, NULL); }

static void rfree(qc__rshard *s) {
  pthread_mutex_destroy(&s->mu);
  json_decref(s->log);
  if (s->logf) fclose(s->logf);
  qb_free(s, sizeof *s);
}

void qc__repl_free(qc_node *n) {
  for (qc__rshard *s = n->rshards, *nx; s; s = nx) {
    nx = s->next;
    rfree(s);
  }
  n->rshards = NULL;
  pthread_mutex_destroy(&n->repl_mu);
}

static void path_of(qc_node *n, const char *local, const char *ext, char *out, size_t cap) {
  snprintf(out, cap, "%s/replication/%s.%s", n->data_dir, local, ext);
}

static int repl_dir(qc_node *n) {
  char p[1100];
  snprintf(p, sizeof p, "%s/replication", n->data_dir);
  return !mkdir(p, 0755) || errno == EEXIST;
}

static void ckpt_load(qc_node *n, qc__rshard *s) {
  char p[1400];
  path_of(n, s->local, "ckpt", p, sizeof p);
  FILE *f = fopen(p, "r");
  s->local_ckpt = s->global_ckpt = -1;
  if (!f) return;
  unsigned long long t, ct = 0;
  long long l, g;
  if (fscanf(f, "%llu %lld %lld %llu", &t, &l, &g, &ct) >= 3) {
    s->max_term = t;
    s->local_ckpt = l;
    s->global_ckpt = g;
    s->ckpt_term = ct;
  }
  fclose(f);
}

/* Written after each batch (write + rename). */
void qc__ckpt_save(qc_node *n, qc__rshard *s) {
  char p[1400], tmp[1500];
  if (!repl_dir(n)) return;
  path_of(n, s->local, "ckpt", p, sizeof p);
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "%llu %lld %lld %llu\n", (unsigned long long)s->max_term, (long long)s->local_ckpt,
          (long long)s->global_ckpt, (unsigned long long)s->ckpt_term);
  if (fclose(f) == 0) rename(tmp, p);
}

static void log_reset(qc__rshard *s, int64_t first) {
  json_decref(s->log);
  s->log = json_array();
  s->log_first = first;
}

/* Read the op log back: the last contiguous run, kept only when it ends at the checkpoint. */
static void log_load(qc_node *n, qc__rshard *s) {
  char p[1400];
  path_of(n, s->local, "oplog", p, sizeof p);
  log_reset(s, s->local_ckpt + 1);
  FILE *f = fopen(p, "r");
  if (!f) return;
  char line[2048];
  while (fgets(line, sizeof line, f)) {
    json_t *e = json_loads(line, 0, NULL);
    json_int_t seq = json_integer_value(json_array_get(e, 0));
    const char *id = json_string_value(json_array_get(e, 1));
    if (id && s->log) {
      if (seq != s->log_first + (int64_t)json_array_size(s->log)) log_reset(s, seq);
      if (s->log) json_array_append_new(s->log, json_string(id));
    }
    json_decref(e);
  }
  fclose(f);
  if (!s->log || s->log_first + (int64_t)json_array_size(s->log) != s->local_ckpt + 1)
    log_reset(s, s->local_ckpt + 1);
}

static int put_entry(FILE *f, int64_t seq, json_t *id) {
  json_t *e = json_pack("[I, O]", (json_int_t)seq, id);
  char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
  json_decref(e);
  if (!text) return -1;
  int rc = fprintf(f, "%s\n", text) < 0 ? -1 : 0;
  qc__json_free(text);
  return rc;
}

/* Write the whole log again (after a truncation or when it was trimmed). */
static void log_rewrite(qc_node *n, qc__rshard *s) {
  char p[1400], tmp[1500];
  if (s->logf) fclose(s->logf);
  s->logf = NULL;
  if (!repl_dir(n)) return;
  path_of(n, s->local, "oplog", p, sizeof p);
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  int bad = 0;
  size_t i;
  json_t *v;
  json_array_foreach(s->log, i, v) bad |= put_entry(f, s->log_first + (int64_t)i, v);
  if (fclose(f) || bad || rename(tmp, p)) {
    unlink(tmp);
    unlink(p); /* no file beats a wrong one: read back, an absent log means a full copy */
    return;
  }
  s->logf = fopen(p, "a");
}

qc__rshard *qc__rstate(qc_node *n, const char *local) {
  pthread_mutex_lock(&n->repl_mu);
  qc__rshard *s;
  for (s = n->rshards; s; s = s->next)
    if (!strcmp(s->local, local)) break;
  if (!s && (s = qb_calloc(1, sizeof *s))) {
    snprintf(s->local, sizeof s->local, "%s", local);
    pthread_mutex_init(&s->mu, NULL);
    ckpt_load(n, s);
    log_load(n, s);
    s->next = n->rshards;
    n->rshards = s;
  }
  pthread_mutex_unlock(&n->repl_mu);
  return s;
}

void qc__oplog_append(qc_node *n, qc__rshard *s, int64_t first, json_t *ids) {
  int whole = !s->logf; /* write the file from memory (first use, a new run, a trim) */
  if (!s->log || first != s->log_first + (int64_t)json_array_size(s->log)) {
    log_reset(s, first);
    whole = 1;
  }
  if (!s->log) return;
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v) json_array_append(s->log, v);
  size_t cnt = json_array_size(s->log);
  if (cnt > QC__OPLOG_MAX) { /* keep the newer half */
    json_t *keep = json_array();
    for (size_t k = cnt / 2; keep && k < cnt; k++) json_array_append(keep, json_array_get(s->log, k));
    json_decref(s->log);
    s->log = keep;
    s->log_first += (int64_t)(cnt / 2);
    whole = 1;
  }
  if (whole) {
    log_rewrite(n, s);
    return;
  }
  int bad = 0;
  json_array_foreach(ids, i, v) bad |= put_entry(s->logf, first + (int64_t)i, v);
  if (bad || fflush(s->logf)) log_rewrite(n, s); /* from memory again (or no file) */
}

void qc__oplog_restart(qc_node *n, qc__rshard *s, int64_t first) {
  log_reset(s, first);
  log_rewrite(n, s);
}

void qc__oplog_truncate(qc_node *n, qc__rshard *s, int64_t upto) {
  if (!s->log || upto < s->log_first - 1) {
    log_reset(s, upto + 1);
  } else {
    size_t keep = (size_t)(upto + 1 - s->log_first);
    if (keep >= json_array_size(s->log)) return;
    while (json_array_size(s->log) > keep) json_array_remove(s->log, json_array_size(s->log) - 1);
  }
  log_rewrite(n, s);
}

int qc__oplog_covers(const qc__rshard *s, int64_t from) {
  return s->log && s->log_first <= from + 1 &&
         s->log_first + (int64_t)json_array_size(s->log) == s->local_ckpt + 1 &&
         from <= s->local_ckpt;
}

json_t *qc__oplog_ids_above(const qc__rshard *s, int64_t from) {
  json_t *ids = json_array(), *seen = json_object();
  size_t cnt = json_array_size(s->log);
  for (size_t k = from + 1 > s->log_first ? (size_t)(from + 1 - s->log_first) : 0;
       ids && seen && k < cnt; k++) {
    json_t *v = json_array_get(s->log, k);
    const char *id = json_string_value(v);
    if (json_object_get(seen, id)) continue;
    json_object_set_new(seen, id, json_true());
    json_array_append(ids, v);
  }
  if (!seen) json_decref(ids), ids = NULL;
  json_decref(seen);
  return ids;
}

void qc__repl_forget(qc_node *n, const char *local) {
  pthread_mutex_lock(&n->repl_mu);
  for (qc__rshard **pp = &n->rshards; *pp; pp = &(*pp)->next)
    if (!strcmp((*pp)->local, local)) {
      qc__rshard *s = *pp;
      *pp = s->next;
      rfree(s);
      break;
    }
  pthread_mutex_unlock(&n->repl_mu);
  char p[1400];
  path_of(n, local, "ckpt", p, sizeof p);
  unlink(p);
  path_of(n, local, "oplog", p, sizeof p);
  unlink(p);
}
