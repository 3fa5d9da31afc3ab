/* custom_score.c: the score UDF of DESIGN.md §5 in C, scalar and batch form.
**   score = bm25 * boost_factor * (1 + 1 / (1 + days / 30)) * tier_boost(user_tier)
** days = max(recency_days, 0); tier_boost: 1 -> 1.5, 2 -> 1.2, 3 -> 1.0, anything else -> 0.8.
** The C, Rust, AssemblyScript and WAT builds evaluate exactly these operations in this order,
** so all four give bit-identical results (tests/examples checks it).
** Build: clang-19 --target=wasm32 -nostdlib -O2 -Wl,--no-entry -I sdk/c -o x.wasm custom_score.c */
#include "quidditch.h"

static double tier_boost(int32_t tier) {
  switch (tier) {
  case 1: return 1.5;
  case 2: return 1.2;
  case 3: return 1.0;
  default: return 0.8;
  }
}

QD_EXPORT(custom_score)
double custom_score(double bm25_score, double boost_factor, int32_t recency_days,
                    int32_t user_tier) {
  double days = recency_days < 0 ? 0.0 : (double)recency_days; /* future dates count as today */
  double recency = 1.0 + 1.0 / (1.0 + days / 30.0);
  return bm25_score * boost_factor * recency * tier_boost(user_tier);
}

/* custom_score__batch(n, args, out): columns f64, f64, i32, i32 -> n f64 scores */
QD_BATCH_SCORE(custom_score, f64, f64, f64, i32, i32)
