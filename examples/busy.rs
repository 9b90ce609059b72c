//! A Rust workload with a known call tree, for kprof's tests and demos.
//!
//! `main -> run -> {hash_words (≈ half), sort_numbers (≈ half)}`, both spending their time inside
//! libstd (`HashMap` hashing, slice sorting), so stacks must unwind through libstd to reach `main`.
//! Usage: `busy [SECONDS]` (default 1.0) of CPU time, not wall time: a sampling profiler's
//! cpu-clock samples the CPU time a task runs, so `busy 1` recorded at 999 Hz gives about 999
//! samples however busy the machine is (see: issue #10 done-means 6).

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

/// The process's CPU time so far (its run time in `/proc/self/schedstat`, in ns), or `None`
/// where the kernel does not say. Read from /proc rather than with `clock_gettime`, which
/// std does not offer (and calling libc would take `unsafe`).
fn cpu_time() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Whether `seconds` of CPU time (wall time where the kernel does not say) have passed since
/// `start` (wall) and `cpu_at_start`.
fn done(seconds: Duration, start: Instant, cpu_at_start: Option<Duration>) -> bool {
    match (cpu_at_start, cpu_time()) {
        (Some(then), Some(now)) => now.saturating_sub(then) >= seconds,
        _ => start.elapsed() >= seconds,
    }
}

#[inline(never)]
fn run(seconds: Duration) -> u64 {
    let (start, cpu_at_start) = (Instant::now(), cpu_time());
    // Reading the CPU clock is a system call: look at it every 10 ms of wall time, so the
    // profile is of the work, not of reading /proc.
    let mut next_look = start;
    let mut round = 0u64;
    let mut total = 0u64;
    loop {
        if Instant::now() >= next_look {
            if done(seconds, start, cpu_at_start) {
                break;
            }
            next_look = Instant::now() + Duration::from_millis(10);
        }
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
    let total = run(Duration::from_secs_f64(seconds));
    println!("busy: {total}");
}
