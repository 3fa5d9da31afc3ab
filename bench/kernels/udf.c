/* udf.c: the design's example UDF (DESIGN.md §5): BM25 times a boost, a recency decay and a
** tier boost, and a loop that calls it N times inside the module (the per-document cost). */
#include "kernels.h"

KEXPORT(custom_score)
KNOINLINE double custom_score(double bm25, double boost, int32_t recency_days, int32_t tier) {
  double days = recency_days < 0 ? 0.0 : (double)recency_days;
  double decay = 30.0 / (30.0 + days); /* half weight after a month */
  double tier_boost = tier == 1 ? 2.0 : tier == 2 ? 1.5 : tier == 3 ? 1.0 : 0.8;
  return bm25 * boost * (0.5 + 0.5 * decay) * tier_boost;
}

KEXPORT(k_score_loop) double k_score_loop(int32_t n) {
  double sum = 0;
  int32_t i;
  for (i = 0; i < n; i++)
    sum += custom_score(1.0 + (double)(i & 255) * 0.01, 1.2, i % 400, (i & 3) + 1);
  return sum;
}
