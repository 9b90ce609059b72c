//! Real recordings through perf_event_open, checked with Linux perf as the oracle.
//!
//! Skipped with a message when perf_event_open (or `perf`) is unavailable, unless
//! `KPROF_REQUIRE_PERF=1`, in which case they fail.
#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kprof_profiler::events::parse_event;
use kprof_profiler::{CallGraph, Error, RecordOptions, StopReason, Target, record};

mod support;
use support::{perf, perf_event_open_works, perf_tool_works};

/// `record` installs process-wide signal handlers: one recording at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn argv(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// A recording test's scratch directory, holding the recording lock while it lives.
struct Scratch {
    dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Scratch {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What a test needs of the machine: `perf_event_open` alone, or `perf` as the oracle too.
#[derive(PartialEq)]
enum Needs {
    Kernel,
    KernelAndPerf,
}

/// A scratch directory and options that sample cpu-clock into `output` there; `None`
/// (skipped, or failed under `KPROF_REQUIRE_PERF=1`) where `needs` is not met.
fn setup(needs: Needs, output: &str) -> Option<(Scratch, RecordOptions)> {
    if !perf_event_open_works() || (needs == Needs::KernelAndPerf && !perf_tool_works()) {
        return None;
    }
    Some(setup_unchecked(output))
}

/// [`setup`] for a test that fails before anything is opened.
fn setup_unchecked(output: &str) -> (Scratch, RecordOptions) {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut options = RecordOptions::default();
    options.events = vec!["cpu-clock".into()];
    options.output = dir.path().join(output);
    let scratch = Scratch {
        dir,
        _serial: serial,
    };
    (scratch, options)
}

const LOOP: &str = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done";

#[test]
fn shell_loop_with_callchains_reads_back_in_perf() {
    let Some((_dir, mut options)) = setup(Needs::KernelAndPerf, "loop.data") else {
        return;
    };
    options.frequency = Some(999);
    options.call_graph = Some(CallGraph::Fp);
    options.target = Target::Command(argv(&["sh", "-c", LOOP]));
    let mut notes = Vec::new();
    let summary = record(&options, &mut |n| notes.push(n.to_owned())).unwrap();
    assert_eq!(summary.exit_status, Some(0));
    assert_eq!(summary.events_used, vec!["cpu-clock".to_owned()]);
    assert!(summary.samples > 10, "only {} samples", summary.samples);
    assert!(summary.bytes > 0);

    let report = perf(&["report", "--stdio"], &options.output);
    assert!(
        report.contains("sh"),
        "the workload's comm is in the report:\n{report}"
    );
    // One line per sample: comm, tid and time only (no callchain lines).
    let script = perf(&["script", "-F", "comm,tid,time"], &options.output);
    let lines = script.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    assert_eq!(lines, summary.samples, "perf script sample count");
    // Callchains were recorded: the full script has indented frame lines.
    let full = perf(&["script"], &options.output);
    assert!(
        full.lines()
            .any(|l| l.starts_with('\t') || l.starts_with("        ")),
        "{full}"
    );
}

#[test]
fn exit_status_of_the_command_is_propagated() {
    let Some((dir, mut options)) = setup(Needs::Kernel, "exit.data") else {
        return;
    };
    options.target = Target::Command(argv(&["sh", "-c", "exit 3"]));
    let summary = record(&options, &mut |_| {}).unwrap();
    assert_eq!(summary.exit_status, Some(3));
    assert!(options.output.exists());

    options.target = Target::Command(argv(&["sh", "-c", "kill -TERM $$"]));
    let summary = record(&options, &mut |_| {}).unwrap();
    assert_eq!(summary.exit_status, Some(128 + 15));
    assert!(
        dir.path().join("exit.data.old").exists(),
        "the previous output is kept as .old"
    );
}

#[test]
fn cycles_falls_back_to_cpu_clock_without_a_pmu() {
    let Some((_dir, mut options)) = setup(Needs::KernelAndPerf, "cycles.data") else {
        return;
    };
    // The default event (cycles), not setup's cpu-clock.
    options.events = RecordOptions::default().events;
    options.target = Target::Command(argv(&["sh", "-c", LOOP]));
    let mut notes = Vec::new();
    let summary = record(&options, &mut |n| notes.push(n.to_owned())).unwrap();
    match summary.events_used.as_slice() {
        [only] if only == "cpu-clock" => {
            assert_eq!(notes.len(), 1, "exactly one note: {notes:?}");
            assert!(
                notes[0].contains("cycles") && notes[0].contains("cpu-clock"),
                "{notes:?}"
            );
            let header = perf(&["report", "--header-only"], &options.output);
            assert!(
                header.contains("cpu-clock"),
                "the file names the event used:\n{header}"
            );
        }
        [only] if only == "cycles" => assert!(notes.is_empty(), "a PMU exists: no fallback"),
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn system_wide_duration_finishes_the_file() {
    let Some((_dir, mut options)) = setup(Needs::KernelAndPerf, "all.data") else {
        return;
    };
    options.target = Target::SystemWide;
    options.duration = Some(Duration::from_millis(300));
    let summary = record(&options, &mut |_| {}).unwrap();
    assert_eq!(summary.exit_status, None);
    perf(&["report", "--stdio"], &options.output);
}

#[test]
fn unknown_event_is_an_error_with_suggestions() {
    let (_dir, mut options) = setup_unchecked("x.data");
    options.events = vec!["cpu-clokc".into()];
    options.target = Target::Command(argv(&["true"]));
    let err = record(&options, &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::UnknownEvent { .. }), "{err:?}");
    assert!(err.to_string().contains("did you mean: cpu-clock"), "{err}");
    assert!(
        !options.output.exists(),
        "nothing written for a failed start"
    );
    assert!(parse_event("cpu-clock").is_ok());
}

#[test]
fn exec_failure_exits_127() {
    let Some((dir, mut options)) = setup(Needs::Kernel, "x.data") else {
        return;
    };
    let not_executable = dir.path().join("plain-file");
    std::fs::write(&not_executable, "not a program").unwrap();
    options.target = Target::Command(vec![not_executable.into_os_string()]);
    let err = record(&options, &mut |_| {}).unwrap_err();
    assert_eq!(err.exit_code(), Some(127));
    assert!(err.to_string().starts_with("failed to exec:"), "{err}");
    let mut missing = options.clone();
    missing.target = Target::Command(argv(&["kprof-no-such-command"]));
    assert_eq!(
        record(&missing, &mut |_| {}).unwrap_err().exit_code(),
        Some(127)
    );
}

#[test]
fn sigint_stops_a_system_wide_recording_and_finishes_the_file() {
    let Some((_dir, mut options)) = setup(Needs::KernelAndPerf, "int.data") else {
        return;
    };
    options.target = Target::SystemWide;
    options.cpus = Some(vec![0]);
    let me = std::process::id().to_string();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        Command::new("kill").args(["-INT", &me]).status().unwrap()
    });
    let summary = record(&options, &mut |_| {}).unwrap();
    assert!(killer.join().unwrap().success());
    assert!(summary.interrupted);
    let header = perf(&["report", "--header-only"], &options.output);
    assert!(header.contains("data size"), "{header}");
    perf(&["script"], &options.output);
}

#[test]
fn attaching_to_a_running_process() {
    let Some((_dir, mut options)) = setup(Needs::KernelAndPerf, "attach.data") else {
        return;
    };
    let mut child = Command::new("sh").args(["-c", LOOP]).spawn().unwrap();
    options.target = Target::Pids(vec![child.id()]);
    options.duration = Some(Duration::from_millis(300));
    let summary = record(&options, &mut |_| {});
    child.kill().ok();
    child.wait().unwrap();
    let summary = summary.unwrap();
    assert_eq!(summary.exit_status, None);
    let script = perf(&["script", "-F", "comm,pid"], &options.output);
    let pid = child.id().to_string();
    let ours = script.lines().filter(|l| l.contains(&pid)).count() as u64;
    assert_eq!(
        ours, summary.samples,
        "every sample is from the attached process:\n{script}"
    );
    assert!(
        script
            .lines()
            .all(|l| l.trim().is_empty() || l.contains("sh")),
        "{script}"
    );
}

#[test]
fn overflowing_ring_is_accounted_as_lost() {
    let Some((_dir, mut options)) = setup(Needs::KernelAndPerf, "lost.data") else {
        return;
    };
    // A 64 KiB stack copy never fits a one-page ring: every sample is lost.
    options.call_graph = Some(CallGraph::Dwarf { stack_size: 65528 });
    options.mmap_pages = Some(1);
    options.frequency = Some(2000);
    options.target = Target::Command(argv(&["sh", "-c", LOOP]));
    let summary = record(&options, &mut |_| {}).unwrap();
    assert_eq!(summary.samples, 0);
    assert!(summary.lost_chunks > 0, "{summary:?}");
    assert!(summary.lost_samples > 0, "{summary:?}");
    let out = Command::new("perf")
        .args(["report", "-D", "-i"])
        .arg(&options.output)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stdout);
    let lost_records = dump
        .lines()
        .filter(|l| l.contains("PERF_RECORD_LOST:"))
        .count() as u64;
    assert_eq!(lost_records, summary.lost_chunks);
    let lost_samples: u64 = dump
        .lines()
        .filter_map(|l| l.split("PERF_RECORD_LOST_SAMPLES:").nth(1))
        .filter_map(|rest| rest.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum();
    assert!(lost_samples > 0, "LOST_SAMPLES written:\n{dump}");
    assert!(lost_samples <= summary.lost_samples);
}

#[test]
fn attached_process_exiting_ends_the_recording() {
    let Some((_dir, mut options)) = setup(Needs::Kernel, "gone.data") else {
        return;
    };
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.3"])
        .spawn()
        .unwrap();
    options.target = Target::Pids(vec![child.id()]);
    // A safety net only: the recording must end when the process does.
    options.duration = Some(Duration::from_secs(20));
    let reaper = std::thread::spawn(move || child.wait().unwrap());
    let started = std::time::Instant::now();
    let summary = record(&options, &mut |_| {}).unwrap();
    reaper.join().unwrap();
    assert_eq!(summary.stopped_by, StopReason::TasksGone);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn dwarf_call_graphs_read_back_in_perf() {
    let Some((_dir, mut options)) = setup(Needs::KernelAndPerf, "dwarf.data") else {
        return;
    };
    options.frequency = Some(499);
    options.call_graph = Some(CallGraph::parse("dwarf,4096").unwrap());
    options.target = Target::Command(argv(&["sh", "-c", LOOP]));
    let summary = record(&options, &mut |_| {}).unwrap();
    assert!(summary.samples > 0);
    let header = perf(&["report", "--header-only"], &options.output);
    assert!(
        header.contains("REGS_USER") && header.contains("STACK_USER"),
        "{header}"
    );
    assert!(header.contains("sample_stack_user = 4096"), "{header}");
    perf(&["report", "--stdio"], &options.output);
    let script = perf(&["script", "-F", "comm,tid,time"], &options.output);
    let lines = script.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    assert_eq!(lines, summary.samples);
}

#[test]
fn failed_start_never_runs_the_command() {
    let Some((dir, mut options)) = setup(Needs::Kernel, "x.data") else {
        return;
    };
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    // A hardware event other than cycles: without a PMU, opening it fails after the fork.
    options.events = vec!["cpu-clock".into(), "branch-misses".into()];
    options.target = Target::Command(argv(&["sh", "-c", &script]));
    match record(&options, &mut |_| {}) {
        Err(err) => {
            assert!(matches!(err, Error::EventUnavailable { .. }), "{err:?}");
            assert!(err.to_string().contains("branch-misses"), "{err}");
            std::thread::sleep(Duration::from_millis(100));
            assert!(!marker.exists(), "the workload ran although setup failed");
            assert!(!options.output.exists());
        }
        Ok(_) => eprintln!("this machine has a PMU: branch-misses opened, nothing to check"),
    }
}
