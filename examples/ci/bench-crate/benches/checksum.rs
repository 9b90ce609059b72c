//! A hand-rolled benchmark (no criterion, so it builds offline): runs `process` over a 64 KiB
//! buffer for a fixed time and prints the time per round.
//!
//! The rounds run on a thread named `kprof-ci-bench`, so a profile can be narrowed to the
//! measured work with `kprof report --comm kprof-ci-bench`, the same name in every build.
//! `KPROF_CI_BENCH_SECS` sets the measuring time (default 1). Without `--bench` (as under
//! `cargo test --benches`) it runs one round as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

fn measure(seconds: f64) -> (u64, Duration) {
    let data = kprof_ci_bench::make_input(64 * 1024);
    let deadline = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut rounds = 0_u64;
    loop {
        black_box(kprof_ci_bench::process(black_box(&data)));
        rounds += 1;
        if start.elapsed() >= deadline {
            break;
        }
    }
    (rounds, start.elapsed())
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let seconds = if benchmarking {
        std::env::var("KPROF_CI_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(1.0)
    } else {
        0.0
    };
    let worker = std::thread::Builder::new()
        .name("kprof-ci-bench".into())
        .spawn(move || measure(seconds))
        .expect("spawning the benchmark thread");
    let (rounds, elapsed) = worker.join().expect("the benchmark thread panicked");
    let per_round = elapsed.as_nanos() / u128::from(rounds);
    println!(
        "process/64KiB: {rounds} rounds in {:.2} s, {per_round} ns/round (validate passes: {})",
        elapsed.as_secs_f64(),
        kprof_ci_bench::VALIDATE_PASSES
    );
}
