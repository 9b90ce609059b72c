//! What the recording tests share: whether they can run here (perf_event_open, the `perf` tool;
//! skipped with a message, failed under `KPROF_REQUIRE_PERF=1`) and `perf` as the oracle.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use kprof_profiler::catalog::{self, Support};
use kprof_profiler::events::parse_event;
use kprof_test_support::command::stdout_without_complaints;

/// `KPROF_REQUIRE_PERF=1`: what would skip fails instead.
pub fn require_perf() -> bool {
    std::env::var("KPROF_REQUIRE_PERF").is_ok_and(|v| v == "1")
}

/// Skips (returns false) with `why`, or fails under `KPROF_REQUIRE_PERF=1`.
pub fn skip(why: &str) -> bool {
    assert!(!require_perf(), "{why} under KPROF_REQUIRE_PERF=1");
    eprintln!("skipping: {why}");
    false
}

/// True when this process may open a software event (user-space cpu-clock).
pub fn perf_event_open_works() -> bool {
    let cpu_clock = parse_event("cpu-clock").expect("cpu-clock parses").kind;
    match catalog::probe(&cpu_clock) {
        Support::Supported => true,
        other => skip(&format!("perf_event_open(cpu-clock) failed: {other:?}")),
    }
}

/// True when `perf` runs.
pub fn perf_tool_works() -> bool {
    match Command::new("perf").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => skip("`perf` is not runnable"),
    }
}

/// Runs `perf ARGS -i FILE`; asserts exit 0 and a stderr free of format complaints; returns stdout.
pub fn perf(args: &[&str], file: &Path) -> String {
    stdout_without_complaints(
        Command::new("perf").args(args).arg("-i").arg(file),
        &[
            "incompatible",
            "Warning",
            "broken",
            "not properly terminated",
        ],
    )
}
