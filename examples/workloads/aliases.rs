//! Formats `u64` and `usize` values: in a release build their `Display::fmt` are one function
//! with two names (LLVM merges identical functions into aliases). kprof must pick the name
//! `perf report` picks (issue #10 point 5).
use std::fmt::Write;
use std::hint::black_box;

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3_000_000);
    let mut text = String::new();
    let mut total = 0usize;
    for i in 0..rounds {
        text.clear();
        let _ = write!(text, "{} {}", black_box(i), black_box(i as usize * 7));
        total += text.len();
    }
    println!("{total}");
}
