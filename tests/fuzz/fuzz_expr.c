/* fuzz_expr.c: expression sources -> qq_expr_compile, then one run over a block of random-ish
** columns (issue 13 #1: a 35,000-term chain once overflowed the C stack in code generation).
** The input is split at the first NUL: before it the source, after it a JSON params object
** (optional). Any byte string must compile or give QB_INVALID/QB_NOMEM with a message; a
** compiled script must run without a crash, leak or sanitizer report. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

static void run(qq_script *s) {
  static double score[QQ_BLOCK_MAX], f[QQ_BIND_MAX_ARGS][QQ_BLOCK_MAX], out[QQ_BLOCK_MAX];
  static uint8_t pm[QQ_BIND_MAX_ARGS][QQ_BLOCK_MAX], keep[QQ_BLOCK_MAX];
  qq_bind b;
  qq_col cols[QQ_BIND_MAX_ARGS];
  qb_err err;
  memset(&b, 0, sizeof b);
  if (s->vt->bind(s, NULL, &b, &err)) return;
  for (size_t i = 0; i < QQ_BLOCK_MAX; i++) {
    score[i] = (double)i * 0.5 - 3;
    for (size_t k = 0; k < QQ_BIND_MAX_ARGS; k++) {
      f[k][i] = (double)((i * 7 + k * 13) % 17) - 8;
      pm[k][i] = (i + k) % 5 != 0;
    }
  }
  for (size_t i = 0; i < b.nargs && i < QQ_BIND_MAX_ARGS; i++) {
    cols[i].type = QQ_COL_F64;
    cols[i].f64 = b.args[i].kind == QQ_ARG_SCORE ? score : f[i];
    cols[i].present = pm[i];
  }
  qq_block in = {.n = QQ_BLOCK_MAX, .score = score, .ncols = b.nargs, .cols = cols};
  qq_result_block ob = {.f64 = out, .keep = keep};
  (void)s->vt->run(s, &in, &ob, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 20) return 0;
  const uint8_t *nul = memchr(data, 0, size);
  size_t slen = nul ? (size_t)(nul - data) : size;
  char *src = malloc(slen + 1);
  if (!src) return 0;
  memcpy(src, data, slen);
  src[slen] = 0;
  json_t *params = nul ? json_loadb((const char *)nul + 1, size - slen - 1, 0, NULL) : NULL;
  for (int kind = 0; kind < 2; kind++) {
    qq_script *s = NULL;
    qb_err err;
    qb_code rc = qq_expr_compile(src, kind ? QQ_SCRIPT_FILTER : QQ_SCRIPT_SCORE, params, &s, &err);
    if (rc == QB_OK) {
      run(s);
      s->vt->free(s);
    } else if (s || !err.msg[0]) {
      fprintf(stderr, "fuzz_expr: failure %d without a message or with a script\n", (int)rc);
      abort();
    }
  }
  json_decref(params);
  free(src);
  return 0;
}
