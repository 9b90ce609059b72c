//! Recordings made at test time with `/usr/bin/perf` (plain, `-z`, pipe, two events), checked
//! against `perf script`'s own view of the same file: every sample's tid, time and event, in order.
//! Skips with a message when perf cannot record here, unless `KPROF_REQUIRE_PERF=1`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kprof_perfdata::{PerfFile, Record};
use kprof_test_support::command::stdout_of;

const PERF: &str = "/usr/bin/perf";
const BUSY: &str = "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kprof-perfdata-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `perf record <args> -o <out> -- sh -c BUSY` (or pipes `-o -` into `out`). None: skip.
fn record(name: &str, args: &[&str], pipe: bool) -> Option<PathBuf> {
    let out = scratch(name);
    let ok = if pipe {
        let cmd = format!(
            "{PERF} record -q {} -o - -- sh -c '{BUSY}' > {}",
            args.join(" "),
            out.display()
        );
        Command::new("sh").arg("-c").arg(cmd).status()
    } else {
        Command::new(PERF)
            .args(["record", "-q"])
            .args(args)
            .arg("-o")
            .arg(&out)
            .args(["--", "sh", "-c", BUSY])
            .status()
    }
    .map(|s| s.success())
    .unwrap_or(false);
    if !ok || !out.exists() {
        if std::env::var("KPROF_REQUIRE_PERF").as_deref() == Ok("1") {
            panic!("perf record {args:?} failed and KPROF_REQUIRE_PERF=1");
        }
        eprintln!(
            "SKIP: `perf record {args:?}` does not work here (no perf or no perf_event_open)"
        );
        return None;
    }
    Some(out)
}

/// `perf script` lines as (tid, "secs.usecs", event name).
fn perf_script(path: &Path) -> Vec<(u32, String, String)> {
    stdout_of(
        Command::new(PERF)
            .args(["script", "-G", "-F", "tid,time,event", "-i"])
            .arg(path),
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| {
        let mut parts = l.split_whitespace();
        let tid = parts.next().unwrap().parse().unwrap();
        let time = parts.next().unwrap().trim_end_matches(':').to_string();
        let event = parts.next().unwrap().trim_end_matches(':').to_string();
        (tid, time, event)
    })
    .collect()
}

fn ours(path: &Path) -> (Vec<(u32, String, String)>, bool, bool) {
    let bytes = std::fs::read(path).unwrap();
    let file = PerfFile::parse(&bytes).unwrap();
    let mut samples = Vec::new();
    for event in file.sorted_records().unwrap() {
        if let Record::Sample(s) = event.unwrap().record {
            let t = s.time.unwrap();
            let name = file.attrs()[s.attr_index].name.clone();
            // perf script prints the name without modifiers it added itself.
            let name = name.split(':').next().unwrap().to_string();
            samples.push((
                s.tid.unwrap(),
                format!("{}.{:06}", t / 1_000_000_000, t % 1_000_000_000 / 1000),
                name,
            ));
            let chain = s.callchain.unwrap();
            assert!(!chain.is_empty(), "-g samples carry a callchain");
        }
    }
    let stats = file.stats();
    assert_eq!(stats.error, None);
    assert_eq!(stats.samples as usize, samples.len());
    (samples, file.is_pipe(), file.offsets_are_decompressed())
}

fn check(name: &str, args: &[&str], pipe: bool, compressed: bool) {
    let Some(path) = record(name, args, pipe) else {
        return;
    };
    let want = perf_script(&path);
    let (got, is_pipe, is_compressed) = ours(&path);
    assert!(!want.is_empty(), "{name}: perf script saw no samples");
    assert_eq!(got, want, "{name}: samples differ from perf script");
    assert_eq!(is_pipe, pipe, "{name}");
    assert_eq!(is_compressed, compressed, "{name}");
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn plain_recording_matches_perf_script() {
    check(
        "plain.data",
        &["-e", "cpu-clock", "-F", "999", "-g"],
        false,
        false,
    );
}

#[test]
fn compressed_recording_matches_perf_script() {
    check(
        "z.data",
        &["-z", "-e", "cpu-clock", "-F", "999", "-g"],
        false,
        true,
    );
}

#[test]
fn pipe_recording_matches_perf_script() {
    check(
        "pipe.data",
        &["-e", "cpu-clock", "-F", "999", "-g"],
        true,
        false,
    );
}

#[test]
fn two_event_recording_matches_perf_script() {
    check(
        "multi.data",
        &["-e", "cpu-clock,page-faults", "-F", "999", "-g"],
        false,
        false,
    );
}

#[test]
fn compressed_pipe_recording_matches_perf_script() {
    check(
        "zpipe.data",
        &["-z", "-e", "cpu-clock", "-F", "999", "-g"],
        true,
        true,
    );
}
