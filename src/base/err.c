/* err.c: qb_err, the caller-owned error value. Formatting never allocates: messages are
** truncated to fit the fixed buffer. */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
#define QB__X(n) #n,
    QB_ERRORS(QB__X)
#undef QB__X
};

const char *qb_code_name(qb_code code) {
  return (unsigned)code < QB_CODE_COUNT ? names[code] : "?";
}

qb_code qb_failv(qb_err *err, qb_code code, const char *fmt, va_list ap) {
  if (err) {
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  }
  return code;
}

qb_code qb_fail(qb_err *err, qb_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  qb_failv(err, code, fmt, ap);
  va_end(ap);
  return code;
}

void qb_wrap(qb_err *err, const char *fmt, ...) {
  char prefix[sizeof err->msg], old[sizeof err->msg];
  va_list ap;
  if (!err) return;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t plen = strlen(prefix), room = sizeof err->msg - 1;
  memcpy(old, err->msg, sizeof old);
  memcpy(err->msg, prefix, plen);
  if (plen < room) {
    size_t olen = strnlen(old, sizeof old - 1);
    if (olen > room - plen) olen = room - plen;
    memcpy(err->msg + plen, old, olen);
    plen += olen;
  }
  err->msg[plen] = 0;
}

void qb_err_clear(qb_err *err) {
  if (err) {
    err->code = QB_OK;
    err->msg[0] = 0;
  }
}

void qb_assert_fail(const char *cond, const char *file, int line, const char *func) {
  fprintf(stderr, "assertion failed: %s (%s:%d, %s)\n", cond, file, line, func);
  fflush(stderr);
  abort();
}
