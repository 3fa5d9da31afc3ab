/* probe.c: the `_test` entry (DESIGN §6 POST /_udf/{name}/_test): run a UDF once on a one-
** document block built from JSON args, and render the result as JSON. Uses the same plan and
** executor as searches, so a test call behaves exactly as a search would. */
#include "udf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

qb_code qu_udf_test(qu_udf *u, const json_t *body, qb_buf *result, qb_err *err) {
  const qu_manifest *m = u->m;
  const json_t *args = body;
  qu_plan *plan = NULL;
  qu_exec *x = NULL;
  qb_code rc;
  if (json_is_object(body) && json_object_get(body, "args")) args = json_object_get(body, "args");
  if (args && !json_is_object(args))
    return qb_fail(err, QB_INVAL, "udf %s: args: expected an object", m->name);
  /* params: the args that name params; the rest (field values, _score) feed the document */
  json_t *params = json_object();
  if (!params) return qb_fail(err, QB_NOMEM, "udf: out of memory");
  for (uint32_t i = 0; i < m->nparams; i++) {
    json_t *v = args ? json_object_get(args, m->params[i].name) : NULL;
    if (v && json_object_set(params, m->params[i].name, v)) {
      json_decref(params);
      return qb_fail(err, QB_NOMEM, "udf: out of memory");
    }
  }
  rc = qu_plan_new(m, params, args, &plan, err);
  json_decref(params);
  if (rc) return rc;
  if ((rc = qu_exec_new(u, plan, &x, err))) goto done;

  double score = 0, f64 = 0;
  const json_t *js = args ? json_object_get(args, "_score") : NULL;
  if (json_is_number(js)) score = json_number_value(js);
  qu_col cols[64];
  double cf[64];
  int64_t ci[64];
  qu_str cs[64];
  uint8_t present[64];
  memset(cols, 0, sizeof cols);
  for (uint32_t c = 0; c < plan->ncols; c++) {
    const qu_colspec *spec = &plan->cols[c];
    const json_t *v = args ? json_object_get(args, spec->field) : NULL;
    const char *s = NULL;
    size_t sl = 0;
    present[c] = v && !json_is_null(v);
    cf[c] = 0;
    ci[c] = 0;
    cs[c].ptr = "";
    cs[c].len = 0;
    if (present[c]) {
      qu_type t = m->params[spec->param].type;
      if ((rc = qu__literal(v, t, &ci[c], &cf[c], &s, &sl, err))) {
        qb_wrap(err, "udf %s: args: field %s: ", m->name, spec->field);
        goto done;
      }
      if (s) cs[c].ptr = s, cs[c].len = sl;
    }
    cols[c].f64 = &cf[c];
    cols[c].i64 = &ci[c];
    cols[c].str = &cs[c];
    cols[c].present = &present[c];
  }
  qu_block in = {1, &score, plan->ncols, cols};
  uint8_t keep = 0, opresent = 1;
  qu_str str = {NULL, 0};
  qu_out out = {&f64, &keep, &str, &opresent};
  if ((rc = qu_exec_run(x, &in, &out, err))) goto done;
  if (m->returns == QU_STRING) {
    if (!str.ptr) {
      rc = qb_buf_puts(result, "null");
    } else {
      json_t *j = json_stringn(str.ptr, str.len);
      char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
      rc = text ? qb_buf_puts(result, text) : QB_NOMEM;
      qu__json_free(text);
      json_decref(j);
    }
  } else if (m->kind == QU_FILTER) {
    rc = qb_buf_puts(result, keep ? "true" : "false");
  } else if (!isfinite(f64)) {
    rc = qb_buf_puts(result, "null"); /* JSON has no NaN or infinities */
  } else if ((m->returns == QU_I32 || m->returns == QU_I64) && fabs(f64) < 9.2e18) {
    rc = qb_buf_printf(result, "%lld", (long long)f64);
  } else {
    rc = qb_buf_printf(result, "%.17g", f64);
  }
  if (rc) rc = qb_fail(err, QB_NOMEM, "udf: out of memory");
done:
  qu_exec_free(x);
  qu_plan_free(plan);
  return rc;
}
