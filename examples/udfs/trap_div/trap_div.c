/* trap_div.c: a UDF with a bug, for tests of the sandbox: items_per_box = items / box_size,
** and box_size is 0 for some documents. clang compiles the division to i32.div_s, which traps
** ("integer divide by zero"; INT32_MIN / -1 traps as "integer overflow"). The host must fail
** the request with an error naming the UDF and the reason, and keep serving.
** Build: clang-19 --target=wasm32 -nostdlib -O2 -Wl,--no-entry -I sdk/c -o x.wasm this.c */
#include "quidditch.h"

QD_EXPORT(trap_div)
int32_t trap_div(int32_t items, int32_t box_size) {
  return items / box_size; /* the bug: box_size may be 0 */
}
