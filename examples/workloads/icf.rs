//! A Rust release workload whose hot code sits at addresses that carry two names, for kprof's
//! tests against perf (issue #10).
//!
//! Built with `rustc -C opt-level=3`, LLVM's function merging leaves:
//! - `mix_left` and `mix_right` (identical bodies, exported) as two symbols at one address;
//! - `<u64 as Display>::fmt` and `<usize as Display>::fmt`, already one body in the prebuilt
//!   standard library, which `write_numbers` calls in turn.
//!
//! `main -> run -> {mix_left ≈ 1/3, mix_right ≈ 1/6, write_numbers ≈ 1/2}` by instructions.
//! Usage: `icf [ROUNDS]` (default 8000): a fixed amount of work, so the share of each function
//! does not depend on how busy the machine is.

use std::fmt::Write;
use std::hint::black_box;

/// Mixes `seed` `n` times (xorshift).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn mix_left(n: u64, seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// The same instructions as [`mix_left`], so the two become one body with two names.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn mix_right(n: u64, seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Formats `count` numbers as `u64` and as `usize`.
#[inline(never)]
fn write_numbers(out: &mut String, count: u64) {
    out.clear();
    for i in 0..count {
        write!(out, "{} {};", black_box(i), black_box(i as usize)).unwrap();
    }
}

#[inline(never)]
fn run(out: &mut String) -> u64 {
    let a = mix_left(black_box(20_000), 1);
    let b = mix_right(black_box(10_000), 2);
    write_numbers(out, 1_000);
    a ^ b ^ out.len() as u64
}

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(8_000);
    let mut out = String::new();
    let mut sink = 0;
    for _ in 0..rounds {
        sink = run(&mut out).wrapping_add(sink);
    }
    println!("{sink}");
}
