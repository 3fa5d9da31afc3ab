//! custom_score.rs: the score UDF of DESIGN.md §5 in Rust, scalar and batch form.
//!   score = bm25 * boost_factor * (1 + 1 / (1 + days / 30)) * tier_boost(user_tier)
//! days = max(recency_days, 0); tier_boost: 1 -> 1.5, 2 -> 1.2, 3 -> 1.0, else 0.8. Same
//! operations in the same order as custom_score.c, so the results are bit-identical.
//! Build: see sdk/rust/lib.rs (rustc --crate-type cdylib --extern quidditch=...).
#![no_std]
#[macro_use]
extern crate quidditch;

qd_panic_handler!();

fn tier_boost(tier: i32) -> f64 {
    match tier {
        1 => 1.5,
        2 => 1.2,
        3 => 1.0,
        _ => 0.8,
    }
}

#[no_mangle]
pub extern "C" fn custom_score(bm25_score: f64, boost_factor: f64, recency_days: i32,
                               user_tier: i32) -> f64 {
    let days = if recency_days < 0 { 0.0 } else { recency_days as f64 }; // future: today
    let recency = 1.0 + 1.0 / (1.0 + days / 30.0);
    bm25_score * boost_factor * recency * tier_boost(user_tier)
}

qd_batch!(custom_score__batch =>
          custom_score(bm25_score: f64, boost_factor: f64, recency_days: i32, user_tier: i32) -> f64);
