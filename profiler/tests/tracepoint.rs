//! A real tracepoint recording (`-e sched:sched_switch -a -g`), checked with Linux perf as the
//! oracle: perf must accept the tracing data and decode the trace fields of every sample.
//!
//! Skipped with a message when perf_event_open, the tracepoint or `perf` is unavailable, unless
//! `KPROF_REQUIRE_PERF=1`, in which case it fails.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kprof_profiler::catalog::{self, Support};
use kprof_profiler::events::parse_event;
use kprof_profiler::{CallGraph, Error, RecordOptions, Target, record};

fn require_perf() -> bool {
    std::env::var("KPROF_REQUIRE_PERF").is_ok_and(|v| v == "1")
}

/// Skips (returns false) with `why`, or fails under KPROF_REQUIRE_PERF=1.
fn skip(why: &str) -> bool {
    assert!(!require_perf(), "{why} under KPROF_REQUIRE_PERF=1");
    eprintln!("skipping: {why}");
    false
}

fn perf_event_open_works() -> bool {
    let cpu_clock = parse_event("cpu-clock").unwrap().kind;
    match catalog::probe(&cpu_clock) {
        Support::Supported => true,
        other => skip(&format!("perf_event_open(cpu-clock) failed: {other:?}")),
    }
}

fn perf_tool_works() -> bool {
    match Command::new("perf").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => skip("`perf` is not runnable"),
    }
}

/// Runs `perf ARGS -i FILE`; asserts exit 0 and a stderr free of format complaints; returns stdout.
fn perf(args: &[&str], file: &Path) -> String {
    let out = Command::new("perf")
        .args(args)
        .arg("-i")
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "perf {args:?} failed: {stderr}");
    for complaint in [
        "incompatible",
        "Warning",
        "broken",
        "not properly terminated",
    ] {
        assert!(
            !stderr.contains(complaint),
            "perf {args:?} says {complaint:?}: {stderr}"
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sched_switch_system_wide_with_callchains_reads_back_in_perf() {
    if !perf_event_open_works() || !perf_tool_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("sched.data");
    let mut options = RecordOptions::default();
    options.events = vec!["sched:sched_switch".into()];
    options.call_graph = Some(CallGraph::Fp);
    options.target = Target::SystemWide;
    options.system_wide = true;
    options.duration = Some(Duration::from_millis(500));
    options.output = output.clone();
    // Context switches to record: a thread that keeps going to sleep.
    let sleeper = std::thread::spawn(|| {
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let mut notes = Vec::new();
    let summary = match record(&options, &mut |n| notes.push(n.to_owned())) {
        Ok(summary) => summary,
        Err(e @ (Error::EventUnavailable { .. } | Error::Permission { .. })) => {
            sleeper.join().unwrap();
            skip(&format!("cannot record sched:sched_switch: {e}"));
            return;
        }
        Err(e) => panic!("recording failed: {e}"),
    };
    sleeper.join().unwrap();
    assert!(
        !notes.iter().any(|n| n.contains("tracepoint formats")),
        "tracing data was collected: {notes:?}"
    );
    assert_eq!(summary.events_used, vec!["sched:sched_switch".to_owned()]);
    assert!(summary.samples > 0, "no context switches recorded");

    let report = perf(&["report", "--stdio"], &output);
    assert!(
        report.contains("sched:sched_switch"),
        "the report names the event:\n{report}"
    );

    // One line per sample, with the decoded trace fields.
    let script = perf(&["script", "-F", "comm,tid,time,event,trace"], &output);
    let lines: Vec<&str> = script.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len() as u64,
        summary.samples,
        "perf script sample count"
    );
    for line in &lines {
        assert!(line.contains("sched:sched_switch"), "{line}");
        assert!(
            line.contains("prev_comm=") && line.contains("next_pid="),
            "{line}"
        );
    }

    // The default output has the trace fields too, and the callchains under each sample.
    let full = perf(&["script"], &output);
    let headers = full
        .lines()
        .filter(|l| l.contains("sched:sched_switch:"))
        .inspect(|l| assert!(l.contains("prev_comm="), "{l}"))
        .count() as u64;
    assert_eq!(headers, summary.samples);
    assert!(
        full.lines().any(|l| l.starts_with('\t')),
        "callchain lines:\n{full}"
    );
}
