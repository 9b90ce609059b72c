//! Issue #14, the rest of `kprof trace`'s live side: the lost count under an event storm is
//! exact (received + lost = the workload's known number of events), `--by stack` aggregates
//! stacks as bpftrace's `@[ustack] = count()` does, and `--interval` prints intervals that add
//! up to the total and never come early. (`--by cgroup` is tested in `cgroup.rs`.)

use std::path::PathBuf;

use crate::common::*;
use crate::trace::{can_trace, write_counts_json};
use crate::trace_stats::bpftrace_runs;

/// The one-byte writes of one `storm` run: far more than a one-page ring holds.
const STORM_WRITES: u64 = 100_000;

fn storm() -> PathBuf {
    c_workload("storm", &["-O1"])
}

/// The count of an unkeyed `--count` (`@: N`) and the lost count of its partial note
/// (`# partial: N events lost ...`, absent when nothing was lost).
fn count_and_lost(text: &str) -> (u64, u64) {
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("@: "))
        .unwrap_or_else(|| panic!("no count in {text}"))
        .parse()
        .unwrap();
    let lost = text
        .lines()
        .find_map(|l| l.strip_prefix("# partial: "))
        .map_or(0, |l| l.split(' ').next().unwrap().parse().unwrap());
    (count, lost)
}

/// The number kprof's closing note on standard error gives (`kprof: N events lost: ...`).
fn lost_note(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("kprof: ")?.split_once(" events lost"))
        .map_or(0, |(n, _)| n.parse().unwrap())
}

// See: issue #14 point 3 (under an event storm the lost count is exact and printed)
#[test]
fn an_event_storm_loses_events_and_counts_each_exactly() {
    if !can_trace() {
        return;
    }
    let _machine = shared();
    let dir = TempDir::new("trace-storm");
    let file = dir.join("storm.data");
    let storm = storm();
    let writes = STORM_WRITES.to_string();
    let out = run_kprof(&[
        "trace",
        "-m",
        "1",
        "-o",
        file.to_str().unwrap(),
        "--count",
        "-e",
        "syscalls:sys_enter_write",
        "--",
        storm.to_str().unwrap(),
        &writes,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (received, lost) = count_and_lost(&String::from_utf8_lossy(&out.stdout));
    // A one-page ring holds a few dozen samples: the storm cannot fit, whatever the machine.
    assert!(lost > 0, "{received} received, nothing lost: {stderr}");
    // Every write either reached kprof or was counted lost: not one more, not one less
    // (the ring's LOST records also count lost COMM/EXIT records, which are no events).
    assert_eq!(received + lost, STORM_WRITES, "{received} + {lost}");
    assert_eq!(lost_note(&stderr), lost, "{stderr}");
    // The file keeps the same counts: its events, and its LOST_SAMPLES (per CPU, exact).
    let again = kprof_ok(&["trace", "-i", file.to_str().unwrap(), "--count"]);
    assert_eq!(count_and_lost(&again), (received, lost), "{again}");
}

/// Each printed interval of a text `--interval` aggregation: (seconds since the trace began,
/// its count), the last one being the final print at the end.
fn intervals(text: &str) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = Vec::new();
    for line in text.lines() {
        if let Some(time) = line.strip_prefix('[').and_then(|l| l.strip_suffix(" s]")) {
            out.push((time.parse().unwrap(), 0));
        } else if let Some(count) = line.strip_prefix("@: ") {
            out.last_mut().unwrap_or_else(|| panic!("{text}")).1 = count.parse().unwrap();
        }
    }
    out
}

// See: issue #14 point 2 (--interval prints the aggregation each interval)
#[test]
fn intervals_add_up_to_the_total_and_never_come_early() {
    if !can_trace() {
        return;
    }
    let _machine = shared();
    let storm = storm();
    // 20 bursts of 10 writes, 50 ms apart: at least 0.95 s of sleeping, 200 writes.
    const BURSTS: u64 = 20;
    const PER_BURST: u64 = 10;
    const PAUSE_MS: u64 = 50;
    const INTERVAL_MS: u64 = 100;
    let text = kprof_ok(&[
        "trace",
        "-q",
        "--interval",
        &format!("{INTERVAL_MS}ms"),
        "--count",
        "-e",
        "syscalls:sys_enter_write",
        "--",
        storm.to_str().unwrap(),
        &PER_BURST.to_string(),
        &PAUSE_MS.to_string(),
        &BURSTS.to_string(),
    ]);
    let printed = intervals(&text);
    // Nothing is lost (a default ring, 10 events at a time), so the intervals hold every write.
    assert!(!text.contains("# partial"), "{text}");
    let total: u64 = printed.iter().map(|(_, count)| count).sum();
    assert_eq!(total, BURSTS * PER_BURST, "{text}");
    // The k-th interval is printed no earlier than k intervals after the trace began (the
    // last print is the end's, whenever it comes).
    let every = INTERVAL_MS as f64 / 1000.0;
    let (ends, _) = printed.split_at(printed.len() - 1);
    for (k, (time, _)) in ends.iter().enumerate() {
        assert!(
            *time >= (k + 1) as f64 * every - 0.0005,
            "interval {} printed at {time} s: {text}",
            k + 1
        );
    }
    // The workload sleeps (BURSTS - 1) x PAUSE_MS = 950 ms, and a loaded machine only makes
    // the run longer; the clock starts at the first round of the loop (within a poll interval
    // of the start, unless kprof waits for a CPU): three whole intervals leave 650 ms of slack.
    const _: () = assert!((BURSTS - 1) * PAUSE_MS >= 3 * INTERVAL_MS + 650);
    assert!(ends.len() >= 3, "{} intervals: {text}", ends.len());
}

/// The `--by stack` entries of a JSON `--count`: (stack innermost first, count).
fn stack_counts(json: &str) -> Vec<(Vec<String>, u64)> {
    let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    value["maps"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let frames = entry["key"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect();
            (frames, entry["value"].as_u64().unwrap())
        })
        .collect()
}

/// bpftrace's `@[ustack]: N` entries: (frames innermost first, as printed, N).
fn bpftrace_stacks(text: &str) -> Vec<(Vec<String>, u64)> {
    let mut out = Vec::new();
    let mut frames: Option<Vec<String>> = None;
    for line in text.lines() {
        if line == "@[" {
            frames = Some(Vec::new());
        } else if let Some(count) = line.strip_prefix("]: ") {
            out.push((frames.take().unwrap(), count.parse().unwrap()));
        } else if let Some(f) = frames.as_mut() {
            f.push(line.trim().to_owned());
        }
    }
    out
}

// See: issue #14 point 2 (--count --by stack, as bpftrace's @[ustack] = count())
#[test]
fn counts_by_stack_follow_the_call_structure_and_bpftrace() {
    if !can_trace() {
        return;
    }
    let callers = c_workload("trace_callers", &["-O1", "-g", "-fno-omit-frame-pointer"]);
    let callers = callers.to_str().unwrap();
    let json = write_counts_json("stack", &[callers]);
    // `--by stack` records the stacks itself (no -g needed, as in bpftrace).
    let mut ours = stack_counts(&json);
    ours.sort_by_key(|(_, count)| *count);
    // main calls left (30 writes) and right (70); each path is one stack, with every frame of
    // the program in call order (innermost first).
    let position = |stack: &[String], name: &str| stack.iter().position(|f| f == name);
    assert_eq!(ours.len(), 2, "{json}");
    for ((stack, count), (caller, expected)) in ours.iter().zip([("left", 30), ("right", 70)]) {
        assert_eq!(*count, expected, "{json}");
        let (Some(at), Some(main)) = (position(stack, caller), position(stack, "main")) else {
            panic!("{caller} or main missing: {stack:?}");
        };
        assert!(at < main, "{stack:?}");
    }
    // A file without stacks cannot be counted by stack: an error, not `<unknown>` entries.
    let dir = TempDir::new("trace-no-stacks");
    let file = dir.join("flat.data");
    {
        let _machine = shared();
        kprof_ok(&[
            "trace",
            "-q",
            "-o",
            file.to_str().unwrap(),
            "-e",
            "syscalls:sys_enter_write",
            "--",
            callers,
        ]);
    }
    let out = run_kprof(&["trace", "-i", file.to_str().unwrap(), "--by", "stack"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("has no call stacks"), "{err}");
    // bpftrace over the same program: the same stacks (it prints addresses once the program
    // is gone): as many, as deep, with the same counts.
    if !bpftrace_runs() {
        return;
    }
    let out = {
        let _machine = shared();
        std::process::Command::new("bpftrace")
            .args([
                "-e",
                "tracepoint:syscalls:sys_enter_write /pid == cpid/ { @[ustack] = count(); }",
                "-c",
                callers,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bpftrace runs")
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut theirs = bpftrace_stacks(&String::from_utf8_lossy(&out.stdout));
    theirs.sort_by_key(|(_, count)| *count);
    let shape = |stacks: &[(Vec<String>, u64)]| -> Vec<(usize, u64)> {
        stacks.iter().map(|(s, c)| (s.len(), *c)).collect()
    };
    assert_eq!(shape(&ours), shape(&theirs), "{json}\n{theirs:?}");
}
