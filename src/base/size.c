/* size.c: byte counts for people: "521 B", "2.3 KiB", "15.0 MiB". Below 1 KiB the count is
** exact; above, one decimal in binary units, never rounded up to "1024.0" of the smaller one. */
#include "base.h"

#include <stdio.h>

const char *qb_size_str(uint64_t n, char out[QB_SIZE_STR]) {
  static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < 1024) {
    snprintf(out, QB_SIZE_STR, "%u B", (unsigned)n);
    return out;
  }
  double v = (double)n / 1024.0;
  unsigned u = 0;
  while (v >= 1023.95 && u + 1 < sizeof unit / sizeof *unit) { /* would print as 1024.0 */
    v /= 1024.0;
    u++;
  }
  snprintf(out, QB_SIZE_STR, "%.1f %s", v, unit[u]);
  return out;
}
