/* scripts.c: the query layer's side of the script vtable: bind a script to a shard (resolve its
** declared columns to fields), then per block fill the columns from doc values (converted and
** with missing values substituted) and call run. Column buffers are allocated once per script
** in the request arena; nothing is allocated per block. */
#include "internal.h"

#include <string.h>

static qq_field_type info_field_type(const qq_shard_info *info, const char *field) {
  qi_field_info fi;
  if (qi_snapshot_field((const qi_snapshot *)info->impl, field, &fi)) return QQ_FIELD_NONE;
  return qq__field_type(&fi);
}

qb_code qq__script_bind(qq__script *sc, qq__shard *sh, qb_err *err) {
  qb_code rc;
  qb_arena *ar = sh->ar;
  memset(&sc->bind, 0, sizeof sc->bind);
  sh->info.index_name = sh->index_name ? sh->index_name : "";
  sh->info.shard_id = sh->shard_id;
  sh->info.doc_count = qi_snapshot_doc_count(sh->snap);
  sh->info.field_type = info_field_type;
  sh->info.impl = sh->snap;
  if ((rc = sc->s->vt->bind(sc->s, &sh->info, &sc->bind, err))) {
    qb_wrap(err, "script [%.80s]: ", sc->source);
    return rc;
  }
  if (sc->bind.nargs > QQ_BIND_MAX_ARGS) return qb_fail(err, QB_INTERNAL, "script [%.80s]: too many arguments", sc->source);
  if (!sc->res) {
    sc->res = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof *sc->res);
    sc->keep = qb_arena_alloc(ar, QQ_BLOCK_MAX);
    sc->res_present = qb_arena_alloc(ar, QQ_BLOCK_MAX);
    sc->res_str = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof *sc->res_str);
    if (!sc->res || !sc->keep || !sc->res_present || !sc->res_str) return qb_fail(err, QB_NOMEM, "query: out of memory");
  }
  for (size_t i = 0; i < sc->bind.nargs; i++) {
    const qq_arg *a = &sc->bind.args[i];
    qq_col *c = &sc->cols[i];
    qi_field_info fi;
    sc->field_id[i] = UINT32_MAX;
    if (a->kind == QQ_ARG_FIELD) {
      if (!a->field) return qb_fail(err, QB_INTERNAL, "script [%.80s]: argument %zu has no field", sc->source, i);
      if (!qi_snapshot_field(sh->snap, a->field, &fi)) {
        if (a->type == QQ_COL_STR && fi.dv != QI_DV_KEYWORD)
          return qb_fail(err, QB_INVAL, "script [%.80s]: field [%s] of type [%s] cannot be read as a string",
                         sc->source, a->field, qi_type_name(fi.type));
        if (a->type != QQ_COL_STR && fi.dv != QI_DV_I64 && fi.dv != QI_DV_F64)
          return qb_fail(err, QB_INVAL, "script [%.80s]: field [%s] of type [%s] has no numeric doc values",
                         sc->source, a->field, qi_type_name(fi.type));
        sc->field_id[i] = fi.id;
      }
    }
    if (a->kind == QQ_ARG_SOURCE && (!a->field || !*a->field))
      return qb_fail(err, QB_INTERNAL, "script [%.80s]: argument %zu has no _source path", sc->source, i);
    if (a->kind == QQ_ARG_SOURCE && a->type == QQ_COL_STR && !sc->src_off[i] &&
        (!(sc->src_off[i] = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof(size_t))) ||
         !(sc->src_len[i] = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof(size_t)))))
      return qb_fail(err, QB_NOMEM, "query: out of memory");
    if (!sc->present[i] && !(sc->present[i] = qb_arena_alloc(ar, QQ_BLOCK_MAX))) return qb_fail(err, QB_NOMEM, "query: out of memory");
    c->type = a->type;
    c->present = sc->present[i];
    c->f64 = NULL;
    c->i64 = NULL;
    c->str = NULL;
    switch (a->type) {
    case QQ_COL_F64:
      if (a->kind == QQ_ARG_SCORE) break; /* qq__script_run points the column at the scores */
      if (!sc->f64[i] && !(sc->f64[i] = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof(double)))) return qb_fail(err, QB_NOMEM, "query: out of memory");
      c->f64 = sc->f64[i];
      break;
    case QQ_COL_I64:
      if (!sc->i64[i] && !(sc->i64[i] = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof(int64_t)))) return qb_fail(err, QB_NOMEM, "query: out of memory");
      c->i64 = sc->i64[i];
      break;
    case QQ_COL_STR:
      if (!sc->ords && !(sc->ords = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof *sc->ords))) /* keyword reads */
        return qb_fail(err, QB_NOMEM, "query: out of memory");
      if (!sc->str[i] && !(sc->str[i] = qb_arena_array(ar, QQ_BLOCK_MAX, sizeof(qq_str)))) return qb_fail(err, QB_NOMEM, "query: out of memory");
      c->str = sc->str[i];
      break;
    }
    if (a->kind == QQ_ARG_CONST) { /* filled once */
      for (size_t j = 0; j < QQ_BLOCK_MAX; j++) {
        sc->present[i][j] = 1;
        if (c->f64) sc->f64[i][j] = a->missing_f64;
        if (c->i64) sc->i64[i][j] = a->missing_i64;
        if (c->str) sc->str[i][j] = a->missing_str;
      }
    }
  }
  sc->bound = 1;
  return QB_OK;
}

/* The value at dotted PATH of the _source object ROOT (the first element of an array), or NULL. */
static const json_t *source_path(const json_t *root, const char *path) {
  char key[256];
  const json_t *cur = root;
  while (cur && *path) {
    if (json_is_array(cur)) cur = json_array_get(cur, 0);
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (!json_is_object(cur) || n >= sizeof key) return NULL;
    memcpy(key, path, n);
    key[n] = 0;
    /* "a.b" may also be one key with a dot in it, as Elasticsearch reads both */
    const json_t *whole = dot ? json_object_get(cur, path) : NULL;
    if (whole) return json_is_array(whole) ? json_array_get(whole, 0) : whole;
    cur = json_object_get(cur, key);
    path += n + (dot ? 1 : 0);
  }
  return json_is_array(cur) ? json_array_get(cur, 0) : cur;
}

/* Fill argument I (QQ_ARG_SOURCE) for DOCS of SEG from each document's stored _source. */
static qb_code fill_from_source(qq__script *sc, qq__shard *sh, const qi_segment *seg, size_t i,
                                const uint32_t *docs, size_t n, qb_err *err) {
  const qq_arg *a = &sc->bind.args[i];
  uint8_t *pr = sc->present[i];
  for (size_t j = 0; j < n; j++) {
    qb_buf_reset(&sc->src_doc);
    qb_code rc = qi_snapshot_source(sh->snap, seg, docs[j], &sc->src_doc, err);
    json_t *root = NULL;
    if (rc && rc != QB_NOTFOUND) return rc;
    if (!rc && !(root = qq__json_load(sc->src_doc.data ? sc->src_doc.data : "{}",
                                      sc->src_doc.data ? sc->src_doc.len : 2, 0, NULL)))
      return qb_fail(err, QB_CORRUPT, "script [%.80s]: a stored _source does not parse", sc->source);
    const json_t *v = root ? source_path(root, a->field) : NULL;
    pr[j] = 0;
    if (a->type == QQ_COL_STR) {
      sc->src_off[i][j] = SIZE_MAX;
      if (json_is_string(v)) {
        sc->src_off[i][j] = sc->src_bytes.len;
        sc->src_len[i][j] = json_string_length(v);
        if (qb_buf_append(&sc->src_bytes, json_string_value(v), json_string_length(v))) {
          json_decref(root);
          return qb_fail(err, QB_NOMEM, "query: out of memory");
        }
        pr[j] = 1;
      }
    } else if (json_is_number(v)) {
      if (a->type == QQ_COL_F64) sc->f64[i][j] = json_number_value(v);
      else sc->i64[i][j] = json_is_integer(v) ? json_integer_value(v) : (int64_t)json_number_value(v);
      pr[j] = 1;
    }
    if (!pr[j] && a->type == QQ_COL_F64) sc->f64[i][j] = a->missing_f64;
    if (!pr[j] && a->type == QQ_COL_I64) sc->i64[i][j] = a->missing_i64;
    json_decref(root);
  }
  return QB_OK;
}

qb_code qq__script_run(qq__script *sc, qq__shard *sh, const qi_segment *seg, uint32_t seg_base,
                       const uint32_t *docs, const double *score, size_t n, qb_err *err) {
  static const double zeros[QQ_BLOCK_MAX];
  static const uint8_t ones[QQ_BLOCK_MAX] = {[0 ... QQ_BLOCK_MAX - 1] = 1};
  qb_code rc;
  if (!n) return QB_OK;
  if (!sc->bound && (rc = qq__script_bind(sc, sh, err))) return rc;
  qb_buf_reset(&sc->src_bytes);
  for (size_t i = 0; i < sc->bind.nargs; i++) {
    const qq_arg *a = &sc->bind.args[i];
    uint8_t *pr = sc->present[i];
    size_t j;
    switch (a->kind) {
    case QQ_ARG_CONST: break;
    case QQ_ARG_SOURCE:
      if ((rc = fill_from_source(sc, sh, seg, i, docs, n, err))) return rc;
      break;
    case QQ_ARG_SCORE:
      if (a->type == QQ_COL_F64) { /* the caller's scores themselves: columns are read-only */
        sc->cols[i].f64 = score ? score : zeros;
        sc->cols[i].present = ones;
        break;
      }
      memset(pr, 1, n);
      if (a->type == QQ_COL_I64) for (j = 0; j < n; j++) sc->i64[i][j] = score ? (int64_t)score[j] : 0;
      break;
    case QQ_ARG_DOCID:
      memset(pr, 1, n);
      for (j = 0; j < n; j++) {
        if (a->type == QQ_COL_F64) sc->f64[i][j] = (double)seg_base + docs[j];
        else if (a->type == QQ_COL_I64) sc->i64[i][j] = (int64_t)seg_base + docs[j];
      }
      break;
    case QQ_ARG_FIELD: {
      uint32_t fid = sc->field_id[i];
      if (fid == UINT32_MAX) { /* unmapped: missing everywhere */
        memset(pr, 0, n);
        for (j = 0; j < n; j++) {
          if (a->type == QQ_COL_F64) sc->f64[i][j] = a->missing_f64;
          else if (a->type == QQ_COL_I64) sc->i64[i][j] = a->missing_i64;
          else sc->str[i][j] = a->missing_str;
        }
        break;
      }
      if (a->type == QQ_COL_F64) {
        qi_dv_read_f64(seg, fid, docs, n, sc->f64[i], pr);
        if (a->has_missing)
          for (j = 0; j < n; j++)
            if (!pr[j]) sc->f64[i][j] = a->missing_f64;
      } else if (a->type == QQ_COL_I64) {
        qi_dv_read_i64(seg, fid, docs, n, sc->i64[i], pr);
        if (a->has_missing)
          for (j = 0; j < n; j++)
            if (!pr[j]) sc->i64[i][j] = a->missing_i64;
      } else {
        qi_dv_read_ord(seg, fid, docs, n, sc->ords);
        for (j = 0; j < n; j++) {
          if (sc->ords[j] < 0) {
            pr[j] = 0;
            sc->str[i][j] = a->has_missing ? a->missing_str : (qq_str){NULL, 0};
          } else {
            size_t len;
            const char *t = qi_dv_ord_term(seg, fid, (uint32_t)sc->ords[j], &len);
            pr[j] = 1;
            sc->str[i][j] = (qq_str){t, len};
          }
        }
      }
      break;
    }
    }
  }
  /* string values from _source point into src_bytes only now that it has stopped growing */
  for (size_t i = 0; i < sc->bind.nargs; i++)
    if (sc->bind.args[i].kind == QQ_ARG_SOURCE && sc->bind.args[i].type == QQ_COL_STR)
      for (size_t j = 0; j < n; j++)
        sc->str[i][j] = sc->src_off[i][j] == SIZE_MAX
                            ? (sc->bind.args[i].has_missing ? sc->bind.args[i].missing_str : (qq_str){NULL, 0})
                            : (qq_str){sc->src_bytes.data + sc->src_off[i][j], sc->src_len[i][j]};
  qq_block in = {.n = n, .doc_ids = docs, .score = score ? score : zeros, .ncols = sc->bind.nargs, .cols = sc->cols};
  qq_result_block out = {.f64 = sc->res, .keep = sc->keep, .str = sc->res_str, .present = sc->res_present};
  memset(sc->res_present, 1, n);
  if ((rc = sc->s->vt->run(sc->s, &in, &out, err))) {
    if (rc != QB_TRAP && rc != QB_LIMIT && rc != QB_NOMEM && rc != QB_INVAL) rc = QB_TRAP;
    qb_wrap(err, "runtime error in script [%.80s]: ", sc->source);
    return rc;
  }
  return QB_OK;
}
