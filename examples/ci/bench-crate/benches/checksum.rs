//! A hand-rolled benchmark (no criterion, so it builds offline): runs `process` over a 64 KiB
//! buffer for a fixed CPU time and prints the CPU time per round.
//!
//! The rounds run on a thread named `kprof-ci-bench`, so a profile can be narrowed to the
//! measured work with `kprof report --comm kprof-ci-bench`, the same name in every build.
//! `KPROF_CI_BENCH_SECS` sets the measuring time (default 1). Without `--bench` (as under
//! `cargo test --benches`) it runs one round as a smoke test.
//!
//! The time is the measuring thread's CPU time (its run time in `/proc/thread-self/schedstat`;
//! wall time where that file is missing): on a busy machine a wall-clock deadline leaves the
//! thread a fraction of a second on the CPU, and a profile of it a few hundred samples, while a
//! CPU-time deadline gives the same number of samples however busy the machine is.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The calling thread's CPU time so far, or `None` where the kernel does not say.
fn thread_cpu_time() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The measuring clock: the thread's CPU time, else wall time since `start`.
struct Clock {
    start: Instant,
    cpu_at_start: Option<Duration>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            start: Instant::now(),
            cpu_at_start: thread_cpu_time(),
        }
    }

    fn elapsed(&self) -> Duration {
        match (self.cpu_at_start, thread_cpu_time()) {
            (Some(then), Some(now)) => now.saturating_sub(then),
            _ => self.start.elapsed(),
        }
    }
}

fn measure(seconds: f64) -> (u64, Duration) {
    let data = kprof_ci_bench::make_input(64 * 1024);
    let deadline = Duration::from_secs_f64(seconds);
    let clock = Clock::start();
    // Reading the CPU clock is a system call: look at it every 10 ms of wall time, so the
    // profile is of `process`, not of reading /proc.
    let mut next_look = Instant::now();
    let mut rounds = 0_u64;
    loop {
        black_box(kprof_ci_bench::process(black_box(&data)));
        rounds += 1;
        if Instant::now() >= next_look {
            if clock.elapsed() >= deadline {
                break;
            }
            next_look = Instant::now() + Duration::from_millis(10);
        }
    }
    (rounds, clock.elapsed())
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
