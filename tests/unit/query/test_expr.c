/* test_expr.c: the expression language: parsing (precedence, errors with positions), constant
** folding, and the vectorized program against a scalar C reference on random data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

/* cmocka 1.1 has no double assertion: print both values */
#define assert_double_equal(a, b, eps)                                                          \
  do {                                                                                          \
    double a_ = (a), b_ = (b);                                                                  \
    if (!(fabs(a_ - b_) <= (eps))) fail_msg("%s = %.17g, expected %.17g", #a, a_, b_);         \
  } while (0)

/* Evaluate SRC over N docs with columns from bind: score[] and up to 3 fields f[k][] (fields
** named "a", "b", "c"); present masks pm[k] (NULL = all present). */
typedef struct fixture {
  double score[QQ_BLOCK_MAX];
  double f[3][QQ_BLOCK_MAX];
  uint8_t pm[3][QQ_BLOCK_MAX];
} fixture;

static qb_code eval(const char *src, const char *params_json, qq_script_kind kind, fixture *fx,
                    size_t n, double *out, uint8_t *keep, qb_err *err) {
  json_t *params = params_json ? json_loads(params_json, 0, NULL) : NULL;
  qq_script *s;
  qb_code rc = qq_expr_compile(src, kind, params, &s, err);
  json_decref(params);
  if (rc) return rc;
  qq_bind b;
  memset(&b, 0, sizeof b);
  rc = s->vt->bind(s, NULL, &b, err);
  assert_int_equal(rc, QB_OK);
  qq_col cols[QQ_BIND_MAX_ARGS];
  for (size_t i = 0; i < b.nargs; i++) {
    cols[i].type = QQ_COL_F64;
    if (b.args[i].kind == QQ_ARG_SCORE) {
      cols[i].f64 = fx->score;
      cols[i].present = fx->pm[0]; /* unused for score */
    } else {
      int k = b.args[i].field[0] - 'a';
      assert_true(k >= 0 && k < 3);
      cols[i].f64 = fx->f[k];
      cols[i].present = fx->pm[k];
    }
  }
  qq_block in = {.n = n, .score = fx->score, .ncols = b.nargs, .cols = cols};
  qq_result_block ob = {.f64 = out, .keep = keep};
  rc = s->vt->run(s, &in, &ob, err);
  s->vt->free(s);
  return rc;
}

static double eval1(const char *src, const char *params) {
  fixture fx;
  double out[QQ_BLOCK_MAX];
  qb_err err;
  memset(&fx, 0, sizeof fx);
  memset(fx.pm, 1, sizeof fx.pm);
  fx.score[0] = 2;
  fx.f[0][0] = 10;
  fx.f[1][0] = 3;
  qb_code rc = eval(src, params, QQ_SCRIPT_SCORE, &fx, 1, out, NULL, &err);
  if (rc) fail_msg("%s: %s", src, err.msg);
  return out[0];
}

static void precedence_follows_c(void **st) {
  (void)st;
  assert_double_equal(eval1("1 + 2 * 3", NULL), 7, 0);
  assert_double_equal(eval1("(1 + 2) * 3", NULL), 9, 0);
  assert_double_equal(eval1("10 - 4 - 3", NULL), 3, 0);
  assert_double_equal(eval1("100 / 10 / 5", NULL), 2, 0);
  assert_double_equal(eval1("-2 * 3", NULL), -6, 0);
  assert_double_equal(eval1("1 + 2 < 4 && 3 > 2", NULL), 1, 0);
  assert_double_equal(eval1("0 || 0 && 1", NULL), 0, 0);
  assert_double_equal(eval1("1 || 0 && 0", NULL), 1, 0);
  assert_double_equal(eval1("!0 + 1", NULL), 2, 0);
  assert_double_equal(eval1("1 ? 2 : 3", NULL), 2, 0);
  assert_double_equal(eval1("0 ? 2 : 0 ? 3 : 4", NULL), 4, 0);
  assert_double_equal(eval1("7 % 4 == 3", NULL), 1, 0);
  assert_double_equal(eval1("2 <= 2 == 1 != 0", NULL), 1, 0);
}

static void variables_read_score_fields_and_params(void **st) {
  (void)st;
  assert_double_equal(eval1("_score", NULL), 2, 0);
  assert_double_equal(eval1("doc['a'].value", NULL), 10, 0);
  assert_double_equal(eval1("doc[\"b\"]", NULL), 3, 0);
  assert_double_equal(eval1("_score * doc['a'].value + params.w", "{\"w\": 0.5}"), 20.5, 0);
  assert_double_equal(eval1("w * 2 + params['v']", "{\"w\": 3, \"v\": 1}"), 7, 0);
  assert_double_equal(eval1("doc['a'].empty", NULL), 0, 0);
  assert_double_equal(eval1("doc['a'].length", NULL), 1, 0);
  assert_double_equal(eval1("flag ? 1 : 2", "{\"flag\": true}"), 1, 0);
}

static void functions_match_libm(void **st) {
  (void)st;
  assert_double_equal(eval1("log(10)", NULL), log(10), 1e-15);
  assert_double_equal(eval1("ln(doc['a'].value)", NULL), log(10), 1e-15);
  assert_double_equal(eval1("log10(1000)", NULL), 3, 1e-15);
  assert_double_equal(eval1("sqrt(16) + abs(-2) + floor(1.5) + ceil(1.5)", NULL), 9, 0);
  assert_double_equal(eval1("pow(2, 10)", NULL), 1024, 0);
  assert_double_equal(eval1("pow(doc['b'].value, 2)", NULL), 9, 0);
  assert_double_equal(eval1("min(doc['a'].value, 4) + max(1, doc['b'].value)", NULL), 7, 0);
  assert_double_equal(eval1("Math.exp(0) + Math.sin(0) + cos(0)", NULL), 2, 0);
  assert_double_equal(eval1("atan2(1, 1)", NULL), atan2(1, 1), 0);
  assert_double_equal(eval1("logn(2, 8)", NULL), 3, 1e-15);
  assert_true(isinf(eval1("log(0)", NULL)));
  assert_true(isnan(eval1("log(-1)", NULL)));
  assert_true(isnan(eval1("log(doc['c'].value - 1)", NULL)));
}

static void fast_log_is_within_one_ulp_of_libm(void **st) {
  (void)st;
  fixture fx;
  double out[QQ_BLOCK_MAX];
  qb_err err;
  srand(7);
  memset(fx.pm, 1, sizeof fx.pm);
  for (int round = 0; round < 200; round++) {
    for (size_t i = 0; i < QQ_BLOCK_MAX; i++) {
      double m = (double)rand() / RAND_MAX;
      int e = rand() % 2000 - 1000;
      fx.f[0][i] = ldexp(m + 1e-300, e);
      if (i % 17 == 0) fx.f[0][i] = 4.9e-320; /* subnormal: the libm fallback */
      if (i % 31 == 0) fx.f[0][i] = 1.0;
    }
    assert_int_equal(eval("log(doc['a'].value)", NULL, QQ_SCRIPT_SCORE, &fx, QQ_BLOCK_MAX, out, NULL, &err), QB_OK);
    for (size_t i = 0; i < QQ_BLOCK_MAX; i++) {
      double ref = log(fx.f[0][i]);
      double tol = fabs(ref) * 2.3e-16;
      if (fabs(out[i] - ref) > tol)
        fail_msg("log(%a) = %a, libm %a", fx.f[0][i], out[i], ref);
    }
  }
}

static double ref_typical(double score, double pop, double days, double w) {
  return score * log(1 + pop) + w * days;
}

static void vectorized_evaluation_equals_scalar_reference_on_random_data(void **st) {
  (void)st;
  fixture fx;
  double out[QQ_BLOCK_MAX];
  uint8_t keep[QQ_BLOCK_MAX];
  qb_err err;
  srand(42);
  for (int round = 0; round < 50; round++) {
    size_t n = 1 + (size_t)rand() % QQ_BLOCK_MAX;
    for (size_t i = 0; i < n; i++) {
      fx.score[i] = (double)rand() / RAND_MAX * 20;
      for (int k = 0; k < 3; k++) {
        fx.pm[k][i] = rand() % 5 != 0;
        fx.f[k][i] = fx.pm[k][i] ? (double)(rand() % 2000) - 500 : 0;
      }
    }
    assert_int_equal(eval("_score * log(1 + doc['a'].value) + params.w * doc['b'].value",
                          "{\"w\": 0.25}", QQ_SCRIPT_SCORE, &fx, n, out, NULL, &err), QB_OK);
    for (size_t i = 0; i < n; i++) {
      double r = ref_typical(fx.score[i], fx.f[0][i], fx.f[1][i], 0.25);
      if (isnan(r)) assert_true(isnan(out[i]));
      else if (isinf(r)) assert_true(out[i] == r);
      else /* tolerance on the terms' size: the sum may cancel */
        assert_double_equal(out[i], r, (fabs(fx.score[i] * log(1 + fx.f[0][i])) + fabs(fx.f[1][i])) * 1e-15);
    }
    assert_int_equal(eval("doc['a'].empty ? -1 : (doc['a'].value > doc['b'].value ? sqrt(abs(doc['a'].value)) "
                          ": min(doc['c'].value, _score) % 7)",
                          NULL, QQ_SCRIPT_SCORE, &fx, n, out, NULL, &err), QB_OK);
    for (size_t i = 0; i < n; i++) {
      double a = fx.f[0][i], b = fx.f[1][i], c = fx.f[2][i], s = fx.score[i];
      double r = !fx.pm[0][i] ? -1 : (a > b ? sqrt(fabs(a)) : fmod(c < s ? c : s, 7));
      assert_double_equal(out[i], r, 0);
    }
    assert_int_equal(eval("doc['a'].value >= 0 && !(doc['b'].value == doc['c'].value) || _score < 1",
                          NULL, QQ_SCRIPT_FILTER, &fx, n, NULL, keep, &err), QB_OK);
    for (size_t i = 0; i < n; i++) {
      int r = (fx.f[0][i] >= 0 && !(fx.f[1][i] == fx.f[2][i])) || fx.score[i] < 1;
      assert_int_equal(keep[i], r);
    }
  }
}

static void constants_are_folded_at_compile_time(void **st) {
  (void)st;
  qq_script *s;
  qb_err err;
  qb_buf b;
  json_t *params = json_loads("{\"w\": 2}", 0, NULL);
  assert_int_equal(qq_expr_compile("_score * (params.w * log(10) + 1)", QQ_SCRIPT_SCORE, params, &s, &err), QB_OK);
  qb_buf_init(&b);
  assert_int_equal(qq_expr_disasm(s, &b), QB_OK);
  /* one MULK by the folded constant: no BCAST, no LOG at run time */
  assert_non_null(strstr(b.data, "MULK"));
  assert_null(strstr(b.data, "LOG"));
  assert_null(strstr(b.data, "BCAST"));
  qb_buf_fini(&b);
  s->vt->free(s);
  json_decref(params);
}

static void typical_expression_compiles_to_two_fused_ops(void **st) {
  (void)st;
  qq_script *s;
  qb_err err;
  qb_buf b;
  json_t *params = json_loads("{\"w\": 0.5}", 0, NULL);
  assert_int_equal(qq_expr_compile("_score * log(1 + doc['popularity'].value) + params.w * doc['days'].value",
                                   QQ_SCRIPT_SCORE, params, &s, &err), QB_OK);
  qb_buf_init(&b);
  assert_int_equal(qq_expr_disasm(s, &b), QB_OK);
  /* log(1 + p) as LOGK, then _score * that + w * days as one KMADD */
  if (!strstr(b.data, "LOGK") || !strstr(b.data, "KMADD") || strstr(b.data, " LOG ") || strstr(b.data, "  2 "))
    fail_msg("not fused:\n%s", b.data);
  qb_buf_fini(&b);
  s->vt->free(s);
  json_decref(params);
}

static void fused_multiply_adds_round_like_separate_ops(void **st) {
  (void)st;
  fixture fx;
  double out[QQ_BLOCK_MAX];
  qb_err err;
  srand(7);
  size_t n = QQ_BLOCK_MAX;
  for (size_t i = 0; i < n; i++) {
    fx.score[i] = (double)rand() / RAND_MAX * 20;
    for (int k = 0; k < 3; k++) {
      fx.pm[k][i] = 1;
      fx.f[k][i] = (double)rand() / RAND_MAX * 1e3 - 300;
    }
  }
  /* MUL + MULKADD fused into KMADD: each product rounded on its own, then the sum */
  assert_int_equal(eval("_score * doc['a'].value + params.w * doc['b'].value", "{\"w\": 0.1}",
                        QQ_SCRIPT_SCORE, &fx, n, out, NULL, &err), QB_OK);
  for (size_t i = 0; i < n; i++) {
    volatile double p = fx.score[i] * fx.f[0][i], q = fx.f[1][i] * 0.1;
    double r = q + p;
    if (out[i] != r) fail_msg("doc %zu: %.17g, by hand %.17g", i, out[i], r);
  }
}

static void assert_compile_error(const char *src, const char *params, const char *want) {
  json_t *pj = params ? json_loads(params, 0, NULL) : NULL;
  qq_script *s = (qq_script *)1;
  qb_err err;
  qb_code rc = qq_expr_compile(src, QQ_SCRIPT_SCORE, pj, &s, &err);
  json_decref(pj);
  if (rc == QB_OK) fail_msg("%s: compiled, expected an error", src);
  assert_int_equal(rc, QB_INVALID);
  assert_null(s);
  if (!strstr(err.msg, want)) fail_msg("%s: error [%s] lacks [%s]", src, err.msg, want);
}

static void errors_name_the_problem_and_its_position(void **st) {
  (void)st;
  assert_compile_error("1 +", NULL, "unexpected end of expression at position 3");
  assert_compile_error("1 + * 2", NULL, "unexpected token [*] at position 4");
  assert_compile_error("(1 + 2", NULL, "expected ) at position 6");
  assert_compile_error("foo(1)", NULL, "unknown function [foo] at position 0");
  assert_compile_error("_score * nope", NULL, "unknown variable [nope] at position 9");
  assert_compile_error("params.x", "{\"x\": \"s\"}", "parameter [x] is not a number");
  assert_compile_error("doc[f]", NULL, "expected a quoted field name in doc[...] at position 4");
  assert_compile_error("doc['f'].bogus", NULL, "unknown member [bogus] of doc[...] at position 9");
  assert_compile_error("max(1)", NULL, "max expects 2 arguments, got 1 at position 0");
  assert_compile_error("1 # 2", NULL, "unexpected character [#] at position 2");
  assert_compile_error("'abc", NULL, "unterminated string at position 0");
  assert_compile_error("1 2", NULL, "unexpected token [2] at position 2");
  assert_compile_error("1 ? 2", NULL, "expected : in ?: at position 5");
  assert_compile_error("", NULL, "unexpected end of expression at position 0");
}

static void deep_nesting_is_an_error_not_a_crash(void **st) {
  (void)st;
  char src[5000];
  memset(src, '(', 2000);
  strcpy(src + 2000, "1");
  memset(src + 2001, ')', 2000);
  src[4001] = 0;
  assert_compile_error(src, NULL, "nested too deeply");
}

/* issue 13 #1: a flat chain nests nothing in the source but builds a left-deep tree; 35,000
** terms used to overflow the C stack in code generation. */
static void long_operator_chains_are_an_error_not_a_crash(void **st) {
  (void)st;
  size_t n = 35000, len = n * 9 + 1;
  char *src = malloc(len);
  assert_non_null(src);
  char *w = src;
  for (size_t i = 0; i < n; i++) w += sprintf(w, i ? " + _score" : "_score");
  assert_compile_error(src, NULL, "expression too complex");
  free(src);
  /* a chain of 200 still compiles */
  char ok[2000];
  w = ok;
  for (int i = 0; i < 200; i++) w += sprintf(w, i ? "+_score" : "_score");
  qq_script *s = NULL;
  qb_err err;
  assert_int_equal(qq_expr_compile(ok, QQ_SCRIPT_SCORE, NULL, &s, &err), QB_OK);
  s->vt->free(s);
}

static qq_field_type ftype(const qq_shard_info *info, const char *field) {
  (void)info;
  return !strcmp(field, "k") ? QQ_FIELD_KEYWORD : QQ_FIELD_LONG;
}

static void bind_rejects_keyword_fields(void **st) {
  (void)st;
  qq_script *s;
  qb_err err;
  qq_bind b;
  qq_shard_info info = {.index_name = "i", .field_type = ftype};
  assert_int_equal(qq_expr_compile("doc['n'].value + doc['k'].value", QQ_SCRIPT_SCORE, NULL, &s, &err), QB_OK);
  memset(&b, 0, sizeof b);
  assert_int_equal(s->vt->bind(s, &info, &b, &err), QB_INVAL);
  assert_non_null(strstr(err.msg, "field [k] is not numeric"));
  s->vt->free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(precedence_follows_c),
      cmocka_unit_test(variables_read_score_fields_and_params),
      cmocka_unit_test(functions_match_libm),
      cmocka_unit_test(fast_log_is_within_one_ulp_of_libm),
      cmocka_unit_test(vectorized_evaluation_equals_scalar_reference_on_random_data),
      cmocka_unit_test(constants_are_folded_at_compile_time),
      cmocka_unit_test(typical_expression_compiles_to_two_fused_ops),
      cmocka_unit_test(fused_multiply_adds_round_like_separate_ops),
      cmocka_unit_test(errors_name_the_problem_and_its_position),
      cmocka_unit_test(deep_nesting_is_an_error_not_a_crash),
      cmocka_unit_test(long_operator_chains_are_an_error_not_a_crash),
      cmocka_unit_test(bind_rejects_keyword_fields),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
