/* bench_expr.c: the expression engine's speed per scored document, through the same script
** vtable the query layer calls (bind once, run per block of QQ_BLOCK_MAX docs), against the same
** formula written as a plain C loop (native-C, libm's log). Cases:
**   expr/script_score  _score * log(1 + doc['popularity'].value) + params.w * doc['days'].value
**   expr/filter        doc['days'].value > 30 && doc['popularity'].value >= 10 || _score > 9
** One line per case: median of 5 runs after a warm-up, with min and max. Reports; never fails. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define NDOCS (1u << 20)
#define RUNS 5

static double score[NDOCS], pop[NDOCS], days[NDOCS], out[NDOCS];
static uint8_t keep[NDOCS], present[NDOCS];
static volatile double sink;

typedef struct cols {
  qq_bind b;
  qq_col c[QQ_BIND_MAX_ARGS];
} cols;

/* Point the bound columns at the data arrays, offset by OFF docs */
static void setcols(cols *cs, size_t off) {
  for (size_t i = 0; i < cs->b.nargs; i++) {
    const qq_arg *a = &cs->b.args[i];
    cs->c[i].type = QQ_COL_F64;
    cs->c[i].present = present + off;
    if (a->kind == QQ_ARG_SCORE) cs->c[i].f64 = score + off;
    else cs->c[i].f64 = (!strcmp(a->field, "popularity") ? pop : days) + off;
  }
}

static double run_ours(qq_script *s, cols *cs) {
  uint64_t t0 = qb_now_ns();
  qb_err err;
  for (size_t off = 0; off < NDOCS; off += QQ_BLOCK_MAX) {
    qq_block in = {.n = QQ_BLOCK_MAX, .score = score + off, .ncols = cs->b.nargs, .cols = cs->c};
    qq_result_block ob = {.f64 = out + off, .keep = keep + off};
    setcols(cs, off);
    if (s->vt->run(s, &in, &ob, &err)) {
      fprintf(stderr, "run: %s\n", err.msg);
      exit(1);
    }
  }
  return (double)(qb_now_ns() - t0) / NDOCS;
}

static double run_native_score(double w) {
  uint64_t t0 = qb_now_ns();
  for (size_t off = 0; off < NDOCS; off += QQ_BLOCK_MAX)
    for (size_t i = off; i < off + QQ_BLOCK_MAX; i++) out[i] = score[i] * log(1 + pop[i]) + w * days[i];
  return (double)(qb_now_ns() - t0) / NDOCS;
}

static double run_native_filter(void) {
  uint64_t t0 = qb_now_ns();
  for (size_t off = 0; off < NDOCS; off += QQ_BLOCK_MAX)
    for (size_t i = off; i < off + QQ_BLOCK_MAX; i++)
      keep[i] = (days[i] > 30 && pop[i] >= 10) || score[i] > 9;
  return (double)(qb_now_ns() - t0) / NDOCS;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void stats(double *v, double *med, double *mn, double *mx) {
  qsort(v, RUNS, sizeof *v, cmpd);
  *med = v[RUNS / 2];
  *mn = v[0];
  *mx = v[RUNS - 1];
}

static void bench_case(const char *name, const char *src, qq_script_kind kind, double goal_ns) {
  json_t *params = json_pack("{s:f}", "w", 0.25);
  qq_script *s;
  qb_err err;
  cols cs;
  double ours[RUNS], nat[RUNS], om, omn, omx, nm, nmn, nmx;
  if (qq_expr_compile(src, kind, params, &s, &err)) {
    fprintf(stderr, "%s: %s\n", name, err.msg);
    exit(1);
  }
  memset(&cs, 0, sizeof cs);
  if (s->vt->bind(s, NULL, &cs.b, &err)) {
    fprintf(stderr, "%s: %s\n", name, err.msg);
    exit(1);
  }
  run_ours(s, &cs); /* warm-up */
  kind == QQ_SCRIPT_FILTER ? run_native_filter() : run_native_score(0.25);
  for (int r = 0; r < RUNS; r++) {
    ours[r] = run_ours(s, &cs);
    sink += out[r] + keep[r];
    nat[r] = kind == QQ_SCRIPT_FILTER ? run_native_filter() : run_native_score(0.25);
    sink += out[r] + keep[r];
  }
  stats(ours, &om, &omn, &omx);
  stats(nat, &nm, &nmn, &nmx);
  printf("%-18s ours %.2f ns/doc  native-C %.2f ns/doc  %.1fx  (goal < %.0f ns/doc)  med/%d [%.2f..%.2f]\n",
         name, om, nm, om / nm, goal_ns, RUNS, omn, omx);
  s->vt->free(s);
  json_decref(params);
}

int main(void) {
  srand(1);
  for (size_t i = 0; i < NDOCS; i++) {
    score[i] = (double)rand() / RAND_MAX * 10;
    pop[i] = rand() % 100000;
    days[i] = rand() % 365;
    present[i] = 1;
  }
  bench_case("expr/script_score", "_score * log(1 + doc['popularity'].value) + params.w * doc['days'].value",
             QQ_SCRIPT_SCORE, 3);
  bench_case("expr/filter", "doc['days'].value > 30 && doc['popularity'].value >= 10 || _score > 9",
             QQ_SCRIPT_FILTER, 3);
  return 0;
}
