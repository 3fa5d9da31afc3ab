/* margin.c: a metric UDF (feed it to avg/sum/min/max/stats aggregations with a `script`):
** the gross margin (price - cost) / price, and 0 when price <= 0 (or NaN).
** This example is built with wasi-libc (clang-19 --target=wasm32-wasi -mexec-model=reactor) to
** show that libc's malloc and the SDK's qd_alloc live together; it still imports nothing,
** because nothing it uses needs the operating system.
** Build: clang-19 --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c -o x.wasm this.c */
#include <stdlib.h>
#include <string.h>

#include "quidditch.h"

QD_EXPORT(margin)
double margin(double price, double cost) {
  if (!(price > 0.0)) return 0.0;
  return (price - cost) / price;
}

/* margin__batch(n, args, out): columns f64, f64 -> n f64 */
QD_BATCH_METRIC(margin, f64, f64, f64)

/* Not a UDF: lets the example's test check that malloc'ed and qd_alloc'ed memory never overlap
** (both grow the same linear memory). Returns 1 when LEN bytes from each are disjoint. */
QD_EXPORT(margin_selftest)
int32_t margin_selftest(int32_t len) {
  unsigned char *a = malloc((size_t)len), *b = qd_alloc_bytes((uint32_t)len);
  int32_t ok;
  if (!a || !b) return 0;
  memset(a, 0xa5, (size_t)len);
  memset(b, 0x5a, (size_t)len);
  ok = a[0] == 0xa5 && a[len - 1] == 0xa5 && b[0] == 0x5a && b[len - 1] == 0x5a;
  free(a);
  return ok;
}
