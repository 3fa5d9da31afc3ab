/* buf.c: growable NUL-terminated byte buffers. An out-of-memory append makes the buffer
** sticky-failed, so a caller may append many times and check once. */
#include "base.h"

#include <stdio.h>
#include <string.h>

void qb_buf_init(qb_buf *b) { memset(b, 0, sizeof *b); }

void qb_buf_fini(qb_buf *b) {
  qb_free(b->data, b->cap);
  memset(b, 0, sizeof *b);
}

void qb_buf_reset(qb_buf *b) {
  b->len = 0;
  b->failed = 0;
  if (b->data) b->data[0] = 0;
}

qb_code qb_buf_reserve(qb_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->failed) return QB_NOMEM;
  if (__builtin_add_overflow(b->len, extra, &need) || need == SIZE_MAX) goto oom;
  need += 1;
  if (need <= b->cap) return QB_OK;
  cap = b->cap ? b->cap : 64;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
    cap *= 2;
  }
  p = qb_realloc(b->data, b->cap, cap);
  if (!p) goto oom;
  b->data = p;
  b->cap = cap;
  return QB_OK;
oom:
  b->failed = 1;
  return QB_NOMEM;
}

qb_code qb_buf_append(qb_buf *b, const void *p, size_t n) {
  if (qb_buf_reserve(b, n)) return QB_NOMEM;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
  return QB_OK;
}

qb_code qb_buf_puts(qb_buf *b, const char *s) { return qb_buf_append(b, s, strlen(s)); }

qb_code qb_buf_printf(qb_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  char small[256];
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return QB_INVAL;
  if ((size_t)n < sizeof small) return qb_buf_append(b, small, (size_t)n);
  if (qb_buf_reserve(b, (size_t)n)) return QB_NOMEM;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return QB_OK;
}
