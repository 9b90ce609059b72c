//! A Rust workload with a known call tree, for kprof's tests and demos.
//!
//! `main -> run -> {hash_words (≈ half), sort_numbers (≈ half)}`, both spending their time inside
//! libstd (`HashMap` hashing, slice sorting), so stacks must unwind through libstd to reach `main`.
//! Usage: `busy [SECONDS]` (default 1.0).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[inline(never)]
fn hash_words(round: u64) -> usize {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for i in 0..20_000u64 {
        *counts.entry(i.wrapping_mul(round | 1) % 5_000).or_default() += 1;
    }
    counts.len()
}

#[inline(never)]
fn sort_numbers(round: u64) -> u64 {
    let mut x = round | 1;
    let mut numbers: Vec<u64> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect();
    numbers.sort_unstable();
    numbers[numbers.len() / 2]
}

#[inline(never)]
fn run(until: Instant) -> u64 {
    let mut round = 0u64;
    let mut total = 0u64;
    while Instant::now() < until {
        total = total.wrapping_add(hash_words(round) as u64);
        total = total.wrapping_add(sort_numbers(round));
        round += 1;
    }
    black_box(total)
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let total = run(Instant::now() + Duration::from_secs_f64(seconds));
    println!("busy: {total}");
}
