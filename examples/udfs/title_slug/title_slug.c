/* title_slug.c: a string transform UDF for script_fields: "Café Crème -- 2 Cups!" becomes
** "café-crème-2-cups". ASCII letters are lowercased, ASCII digits and every non-ASCII byte
** (UTF-8 sequences stay whole) are kept, any run of other ASCII characters becomes one '-',
** and there is no leading or trailing '-'. The Rust and AssemblyScript builds do the same.
** The result lives in qd_alloc'ed memory, which the host frees with qd_reset.
** Build: clang-19 --target=wasm32 -nostdlib -O2 -Wl,--no-entry -I sdk/c -o x.wasm this.c */
#include "quidditch.h"

QD_EXPORT(title_slug)
qd_strret title_slug(const char *title, uint32_t title_len) {
  char *out = (char *)qd_alloc_bytes(title_len); /* a slug is never longer than its title */
  uint32_t n = 0;
  int dash = 0; /* a separator was seen since the last byte written */
  if (!out) return QD_STR_NULL;
  for (uint32_t i = 0; i < title_len; i++) {
    unsigned char c = (unsigned char)title[i];
    int keep = c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
    if (c >= 'A' && c <= 'Z') {
      c = (unsigned char)(c + ('a' - 'A'));
      keep = 1;
    }
    if (!keep) {
      dash = 1;
      continue;
    }
    if (dash && n > 0) out[n++] = '-';
    dash = 0;
    out[n++] = (char)c;
  }
  return qd_str_return(out, n);
}

/* title_slug__batch(n, args, out): one column of qd_str -> n packed string results */
QD_BATCH_TRANSFORM(title_slug, str, str)
