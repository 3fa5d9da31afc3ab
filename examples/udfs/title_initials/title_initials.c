/* title_initials.c: a transform UDF built with wasi-libc that allocates with malloc and never
** frees: "Gaming laptop with laptop stand" -> "GLWLS". A UDF's memory lives only as long as its
** instance, so leaking per call is a choice (the pool discards an instance that runs out), and
** this example keeps the SDK honest about it: a module that calls malloc without free must get
** libc's malloc, not a trap (the SDK once declared malloc weak, and wasm-ld then left it out).
** Build: clang-19 --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c -o x.wasm this.c */
#include <ctype.h>
#include <stdlib.h>

#include "quidditch.h"

QD_EXPORT(title_initials)
qd_strret title_initials(const char *title, uint32_t len) {
  char *out = malloc(len + 1u); /* at most one initial per byte */
  uint32_t n = 0;
  int in_word = 0;
  if (!out) __builtin_trap();
  for (uint32_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)title[i];
    int word = isalnum(c) || c >= 0x80; /* bytes of a non-ASCII character belong to a word */
    if (word && !in_word) {
      out[n++] = (char)(c < 0x80 ? toupper(c) : c);
      /* a non-ASCII initial is copied whole: its continuation bytes (10xxxxxx) follow */
      while (c >= 0x80 && i + 1 < len && ((unsigned char)title[i + 1] & 0xc0) == 0x80)
        out[n++] = title[++i];
    }
    in_word = word;
  }
  return qd_str_dup(out, n); /* the result is copied into qd_alloc'ed memory */
}
