//! A real tracepoint recording (`-e sched:sched_switch -a -g`), checked with Linux perf as the
//! oracle: perf must accept the tracing data and decode the trace fields of every sample.
//!
//! Skipped with a message when perf_event_open, the tracepoint or `perf` is unavailable, unless
//! `KPROF_REQUIRE_PERF=1`, in which case it fails.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kprof_profiler::{CallGraph, Error, RecordOptions, Target, record};

mod support;
use support::{perf, perf_event_open_works, perf_tool_works, skip};

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
