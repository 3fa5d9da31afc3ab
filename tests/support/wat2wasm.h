/* wat2wasm.h: WAT text -> wasm bytes for unit tests, through wabt's wat2wasm run at test time
** (a real tool, not a hand assembler). Header-only: each test file includes it once. */
#ifndef QD_TEST_WAT2WASM_H
#define QD_TEST_WAT2WASM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The bytes of WAT (malloc'd; free them), or NULL when wat2wasm is missing or rejects it.
** TAG names the temporary files so parallel tests do not collide. */
static inline uint8_t *qd_wat2wasm(const char *tag, const char *wat, size_t *len) {
  char in[96], out[96], cmd[256];
  static int n;
  snprintf(in, sizeof in, "/tmp/qd_%s_%d_%d.wat", tag, (int)getpid(), n);
  snprintf(out, sizeof out, "/tmp/qd_%s_%d_%d.wasm", tag, (int)getpid(), n++);
  FILE *f = fopen(in, "w");
  if (!f) return NULL;
  fputs(wat, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "wat2wasm '%s' -o '%s' 2>&1", in, out);
  int rc = system(cmd);
  unlink(in);
  if (rc) return NULL;
  f = fopen(out, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(sz > 0 ? (size_t)sz : 1);
  if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) sz = 0;
  fclose(f);
  unlink(out);
  *len = (size_t)sz;
  return buf;
}

/* 1 when wat2wasm is on PATH. */
static inline int qd_have_wat2wasm(void) {
  return system("command -v wat2wasm >/dev/null 2>&1") == 0;
}

#endif
