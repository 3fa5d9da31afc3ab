// custom_score.ts: the score UDF of DESIGN.md §5 in AssemblyScript, scalar and batch form.
//   score = bm25 * boost_factor * (1 + 1 / (1 + days / 30)) * tier_boost(user_tier)
// days = max(recency_days, 0); tier_boost: 1 -> 1.5, 2 -> 1.2, 3 -> 1.0, else 0.8. Same
// operations in the same order as custom_score.c, so the results are bit-identical.
// Build: asc custom_score.ts --runtime incremental --use abort= -O3 -o custom_score.as.wasm
import { column } from "../../../sdk/assemblyscript/index";
export { qd_alloc, qd_reset, qd_abi_version } from "../../../sdk/assemblyscript/index";

function tierBoost(tier: i32): f64 {
  switch (tier) {
    case 1: return 1.5;
    case 2: return 1.2;
    case 3: return 1.0;
    default: return 0.8;
  }
}

export function custom_score(bm25_score: f64, boost_factor: f64, recency_days: i32,
                             user_tier: i32): f64 {
  const days: f64 = recency_days < 0 ? 0.0 : <f64>recency_days; // future dates count as today
  const recency: f64 = 1.0 + 1.0 / (1.0 + days / 30.0);
  return bm25_score * boost_factor * recency * tierBoost(user_tier);
}

// custom_score__batch(n, args, out): columns f64, f64, i32, i32 -> n f64 scores
export function custom_score__batch(n: i32, args: i32, out: i32): void {
  const bm25 = column(args, 0), boost = column(args, 1);
  const days = column(args, 2), tier = column(args, 3);
  for (let i = 0; i < n; i++) {
    const k = <usize>i;
    store<f64>(<usize>out + (k << 3),
               custom_score(load<f64>(bm25 + (k << 3)), load<f64>(boost + (k << 3)),
                            load<i32>(days + (k << 2)), load<i32>(tier + (k << 2))));
  }
}
