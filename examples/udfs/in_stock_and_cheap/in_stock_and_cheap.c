/* in_stock_and_cheap.c: a filter UDF (use it in a `script` query under bool.filter).
** Keeps a document when stock > 0 and price <= max_price; a NaN price never passes.
** Build: clang-19 --target=wasm32 -nostdlib -O2 -Wl,--no-entry -I sdk/c -o x.wasm this.c */
#include "quidditch.h"

QD_EXPORT(in_stock_and_cheap)
int32_t in_stock_and_cheap(int64_t stock, double price, double max_price) {
  return stock > 0 && price <= max_price;
}

/* in_stock_and_cheap__batch(n, args, out): columns i64, f64, f64 -> n i32 (0 drops) */
QD_BATCH_FILTER(in_stock_and_cheap, i64, f64, f64)
