//! Issue #10 point 11: tracepoint events are named and printed as `perf script` names and
//! prints them, in file and pipe mode: names from the recording's TRACING_DATA when nothing else
//! names them, and each sample's fields rendered from its event's format.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// One tracepoint sample as printed: (tid, time, event, fields text).
type Line = (i64, String, String, String);

/// Splits `... TIME: [PERIOD] EVENT: TEXT` after the time; `before` is the text before it.
fn split_after_time(line: &str, has_period: bool) -> Option<(&str, String, String, String)> {
    let (time_at, time) = line
        .match_indices(|c: char| !c.is_whitespace())
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || line[..i].ends_with(char::is_whitespace))
        .map(|i| (i, line[i..].split_whitespace().next().unwrap_or("")))
        .find(|(_, word)| {
            word.ends_with(':') && word.trim_end_matches(':').split('.').count() == 2 && {
                let digits = word.trim_end_matches(':').replace('.', "");
                !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
            }
        })?;
    let mut rest = line[time_at + time.len()..].trim_start();
    if has_period {
        let period = rest.split_whitespace().next()?;
        rest = rest[period.len()..].trim_start();
    }
    let event = rest.split_whitespace().next()?;
    let text = rest[event.len()..].strip_prefix(' ').unwrap_or("");
    Some((
        &line[..time_at],
        time.trim_end_matches(':').to_string(),
        event.trim_end_matches(':').to_string(),
        text.to_string(),
    ))
}

/// `perf script -F tid,time,event,trace` lines.
fn perf_lines(file: &Path) -> Vec<Line> {
    let text = perf_script(file, "tid,time,event,trace");
    let mut lines: Vec<Line> = text
        .lines()
        .filter_map(|l| {
            let (before, time, event, fields) = split_after_time(l, false)?;
            let tid = before.split_whitespace().next()?.parse().ok()?;
            Some((tid, time, event, fields))
        })
        .collect();
    lines.sort();
    lines
}

/// `kprof script` sample lines (`COMM PID/TID [CPU] TIME: PERIOD EVENT: FIELDS`).
fn kprof_lines(file: &Path) -> Vec<Line> {
    let text = kprof_ok(&["script", "-i", file.to_str().unwrap()]);
    let mut lines: Vec<Line> = text
        .lines()
        .filter(|l| !l.starts_with('\t') && !l.is_empty())
        .filter_map(|l| {
            let (before, time, event, fields) = split_after_time(l, true)?;
            let ids = before
                .split_whitespace()
                .rev()
                .find(|w| !w.starts_with('['))?;
            let tid = ids.rsplit_once('/')?.1.parse().ok()?;
            Some((tid, time, event, fields))
        })
        .collect();
    lines.sort();
    lines
}

/// Checks that kprof prints `file`'s samples as perf does, and that `events` all occur.
fn check_against_perf(file: &Path, events: &[&str]) {
    let expected = perf_lines(file);
    for event in events {
        assert!(
            expected.iter().any(|l| l.2 == *event),
            "{}: perf printed no {event}",
            file.display()
        );
    }
    let ours = kprof_lines(file);
    assert_eq!(ours.len(), expected.len(), "{}: samples", file.display());
    for (got, want) in ours.iter().zip(&expected) {
        assert_eq!(got, want, "{}", file.display());
    }
}

/// Records with `perf record ARGS` into `dir/NAME.data` (file mode) and `dir/NAME.pipe.data`
/// (`-o -`), returning both.
fn record_both(dir: &TempDir, name: &str, args: &[&str], cmd: &[&str]) -> [PathBuf; 2] {
    let file = dir.join(&format!("{name}.data"));
    perf_record(&file, args, cmd);
    let pipe = dir.join(&format!("{name}.pipe.data"));
    let _shared = shared();
    succeeded(
        Command::new("perf")
            .args(["record", "--no-bpf-event"])
            .args(args)
            .args(["-o", "-", "--"])
            .args(cmd)
            .stdout(std::fs::File::create(&pipe).unwrap()),
    );
    [file, pipe]
}

/// A workload that reads files and sleeps: sys_enter_read and sched_switch samples.
const READER: [&str; 3] = [
    "sh",
    "-c",
    "for i in 1 2 3 4 5; do cat /etc/passwd /etc/hostname > /dev/null; sleep 0.01; done",
];

#[test]
fn tracepoint_fields_equal_perf_script_in_file_and_pipe_mode() {
    // See: issue #10 point 11
    if !perf_can_record() {
        return;
    }
    let dir = TempDir::new("tracepoint-fields");
    let events = ["sched:sched_switch", "syscalls:sys_enter_read"];
    for file in record_both(&dir, "tp", &["-e", events[0], "-e", events[1]], &READER) {
        check_against_perf(&file, &events);
    }
}

/// `pipe` without its HEADER_FEATURE record of EVENT_DESC (feature 12): what a pipe-mode
/// recording of a perf that does not synthesize it holds. Walks the records by their headers.
fn without_event_desc(pipe: &[u8]) -> Vec<u8> {
    const HEADER_TRACING_DATA: u32 = 66;
    const HEADER_FEATURE: u32 = 80;
    const EVENT_DESC: u64 = 12;
    let u32_at = |at: usize| u32::from_le_bytes(pipe[at..at + 4].try_into().unwrap());
    let mut out = pipe[..16].to_vec();
    let mut at = 16;
    while at + 8 <= pipe.len() {
        let kind = u32_at(at);
        let size = usize::from(u16::from_le_bytes(pipe[at + 6..at + 8].try_into().unwrap()));
        let mut span = size;
        if kind == HEADER_TRACING_DATA {
            // The blob follows the record, its size in the record's body.
            span += u32_at(at + 8) as usize;
        }
        let record = &pipe[at..(at + span).min(pipe.len())];
        let feature =
            (kind == HEADER_FEATURE).then(|| u64::from_le_bytes(record[8..16].try_into().unwrap()));
        if feature != Some(EVENT_DESC) {
            out.extend_from_slice(record);
        }
        at += span;
    }
    out
}

#[test]
fn pipe_mode_tracepoints_are_named_from_tracing_data() {
    // See: issue #10 point 11
    if !perf_can_record() {
        return;
    }
    let dir = TempDir::new("tracepoint-names");
    let events = ["sched:sched_switch", "syscalls:sys_enter_read"];
    let [_, pipe] = record_both(&dir, "tp", &["-e", events[0], "-e", events[1]], &READER);
    let stripped = dir.join("stripped.pipe.data");
    std::fs::write(
        &stripped,
        without_event_desc(&std::fs::read(&pipe).unwrap()),
    )
    .unwrap();
    let header = kprof_ok(&["report", "--header-only", "-i", stripped.to_str().unwrap()]);
    assert!(
        !header.contains("event_desc"),
        "EVENT_DESC is gone: {header}"
    );
    // perf names them from the tracing data too: its script of the stripped file is the oracle.
    check_against_perf(&stripped, &events);
    assert!(
        !kprof_ok(&["script", "-i", stripped.to_str().unwrap()]).contains("tracepoint:"),
        "an event left unnamed"
    );
}

/// Deletes the probes of a uprobe group when dropped.
struct ProbeGroup(String);

impl Drop for ProbeGroup {
    fn drop(&mut self) {
        let _ = Command::new("perf")
            .args(["probe", "-q", "-d", &format!("{}:*", self.0)])
            .output();
    }
}

#[test]
fn uprobe_events_equal_perf_script_in_file_and_pipe_mode() {
    // See: issue #10 point 11
    if !perf_can_record() {
        return;
    }
    let dir = TempDir::new("uprobe");
    // A binary name of its own: its probe group (`probe_NAME`) is this test's alone.
    let name = format!("kprofprobe{}", std::process::id());
    let binary = dir.join(&name);
    std::fs::copy(hot(FramePointers::Kept), &binary).unwrap();
    let group = ProbeGroup(format!("probe_{name}"));
    let added = Command::new("perf")
        .args(["probe", "-q", "-x"])
        .arg(&binary)
        .arg("main")
        .output()
        .unwrap();
    if !available(
        "uprobes (perf probe -x BIN main)",
        added.status.success(),
        "KPROF_REQUIRE_PERF",
    ) {
        return;
    }
    let event = format!("{}:main", group.0);
    let bin = binary.to_str().unwrap();
    for file in record_both(&dir, "uprobe", &["-e", &event], &[bin, "0.01"]) {
        check_against_perf(&file, &[event.as_str()]);
    }
}

#[test]
fn kprof_recorded_tracepoints_print_as_perf_script_prints_them() {
    // See: issue #10 point 11 (kprof's own TRACING_DATA, read back by kprof and by perf)
    if !kprof_can_record() || !perf_can_record() {
        return;
    }
    let (_dir, file) = TempDir::with_file("kprof-tracepoints", "tp.data");
    let events = ["sched:sched_switch", "syscalls:sys_enter_read"];
    let _shared = shared();
    succeeded(
        kprof()
            .args(["record", "-q", "-e", &events.join(","), "-o"])
            .arg(&file)
            .arg("--")
            .args(READER),
    );
    check_against_perf(&file, &events);
}
