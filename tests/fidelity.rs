//! Issue #10, points 1, 7 and 12: kprof tells the truth on perf's own files, as `perf report`
//! counts them. Each test records with `/usr/bin/perf` at test time.
//!
//! - Point 1: samples of `perf record -c N` carry no PERIOD and each weighs N (perf report's
//!   event count and per-symbol periods are the oracle).
//! - Point 7: every sample stays in the flame graph's total, also in exec'd children before
//!   perf has their mappings (perf report's event count is the oracle).
//! - Point 12: a `perf record -z` file, whose zstd frame perf never ends, reads without a
//!   warning; a compressed stream that really stops early still warns.

use std::collections::HashMap;
use std::path::Path;

use crate::common::*;
use crate::oracle::{check_folded, perf_event_count, perf_event_counts};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// kprof's `report --header-only`: event name → (samples, period or `None` when unknown).
fn kprof_header_events(file: &Path) -> HashMap<String, (u64, Option<u64>)> {
    let json: serde_json::Value = serde_json::from_str(&kprof_ok(&[
        "report",
        "--header-only",
        "--format",
        "json",
        "-i",
        s(file),
    ]))
    .unwrap();
    json["header"]["events"]
        .as_array()
        .expect("header events")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                (e["samples"].as_u64().unwrap(), e["period"].as_u64()),
            )
        })
        .collect()
}

/// Samples per event name in `perf script` (perf report rounds its sample counts).
fn perf_sample_counts(file: &Path) -> HashMap<String, u64> {
    let script = perf(&["script", "-i", s(file), "-F", "event", "--force"]);
    let mut counts = HashMap::new();
    for line in script.lines().filter(|l| !l.trim().is_empty()) {
        *counts
            .entry(line.trim().trim_end_matches(':').to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// The header's sample count and event count of every event equal perf's.
fn header_counts_match_perf(file: &Path) {
    let ours = kprof_header_events(file);
    let samples = perf_sample_counts(file);
    let counts = perf_event_counts(file);
    assert!(!counts.is_empty(), "perf report printed no event");
    for (event, count) in counts {
        let (our_samples, our_period) = ours
            .get(&event)
            .unwrap_or_else(|| panic!("kprof's header has no event {event}: {ours:?}"));
        assert_eq!(
            *our_period,
            Some(count),
            "{}: event count of {event} in kprof report --header",
            file.display()
        );
        assert_eq!(Some(our_samples), samples.get(&event), "samples of {event}");
    }
}

/// perf's per-symbol periods of `event`: `[.] name` / `[k] name` → period.
fn perf_symbol_periods(file: &Path, event: &str) -> HashMap<String, u64> {
    let text = perf_report_table(
        file,
        "sym",
        &["--no-children", "-F", "period,sym", "--force"],
    );
    let mut rows = HashMap::new();
    let mut in_event = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# Samples: ") {
            in_event = rest.split('\'').nth(1) == Some(event);
            continue;
        }
        let trimmed = line.trim_start();
        if !in_event || trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if let Some((period, sym)) = trimmed.split_once("  ") {
            if let Ok(period) = period.trim().parse::<u64>() {
                *rows.entry(sym.trim().to_string()).or_insert(0) += period;
            }
        }
    }
    rows
}

/// kprof's per-symbol periods of `event` (`[k] name` for kernel symbols, `[.] name` for the
/// others): each row's self share of the event's period total, from `report --format json`.
fn kprof_symbol_periods(file: &Path, event: &str) -> HashMap<String, u64> {
    let json: serde_json::Value = serde_json::from_str(&kprof_ok(&[
        "report",
        "--format",
        "json",
        "--no-children",
        "--no-inline",
        "--sort",
        "sym",
        "--event",
        event,
        "-i",
        s(file),
    ]))
    .unwrap();
    let event = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == event)
        .unwrap_or_else(|| panic!("event {event} in {json}"));
    let total = event["period"].as_f64().unwrap();
    let mut rows = HashMap::new();
    for row in event["rows"].as_array().unwrap() {
        let marker = if row["kind"] == "kernel" {
            "[k]"
        } else {
            "[.]"
        };
        let key = format!("{marker} {}", row["sym"].as_str().unwrap());
        let period = (row["self"].as_f64().unwrap() * total / 100.0).round() as u64;
        *rows.entry(key).or_insert(0) += period;
    }
    rows
}

/// perf's ten heaviest symbols of `event` weigh the same in kprof, within 0.5% of the event
/// count or one sample's weight, whichever is more (a sample may be attributed differently
/// at a symbol's edge).
fn symbol_periods_match_perf(file: &Path, event: &str, sample_weight: u64) {
    let theirs = perf_symbol_periods(file, event);
    let ours = kprof_symbol_periods(file, event);
    let total = perf_event_count(file, event);
    let tolerance = (total / 200).max(sample_weight);
    // Unresolved addresses and PLT stubs are spelled differently (perf `0x...` and `@plt`,
    // kprof `module+0x...`): only real symbols are compared.
    let mut heaviest: Vec<(&String, &u64)> = theirs
        .iter()
        .filter(|(sym, _)| !sym.contains(" 0x") && !sym.contains("@plt"))
        .collect();
    heaviest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    assert!(!heaviest.is_empty(), "perf has symbols for {event}");
    for (sym, &period) in heaviest.into_iter().take(10) {
        let got = ours.get(sym).copied().unwrap_or(0);
        assert!(
            got.abs_diff(period) <= tolerance,
            "{}: {event}: {sym}: perf period {period}, kprof {got} (event count {total})\nkprof: {ours:?}",
            file.display()
        );
    }
}

// See: issue #10 point 1
#[test]
fn fixed_period_recording_counts_events_like_perf() {
    let Some(Recording {
        dir: _dir, file, ..
    }) = Recording::of_hot(
        Recorder::Perf,
        "fixed-period",
        "c.data",
        FramePointers::Kept,
        &["-e", "cpu-clock", "-c", "100000", "-g"],
        "0.3",
    )
    else {
        return;
    };
    let ours = kprof_header_events(&file);
    let (samples, period) = ours["cpu-clock"];
    assert!(samples > 0);
    // Each sample stands for 100000 ns of cpu-clock.
    assert_eq!(period, Some(samples * 100_000));
    header_counts_match_perf(&file);
    symbol_periods_match_perf(&file, "cpu-clock", 100_000);
    // The text header says the same.
    let text = kprof_ok(&["report", "--header-only", "-i", s(&file)]);
    assert!(
        text.contains(&format!(
            "cpu-clock ({samples} samples, period {})",
            samples * 100_000
        )),
        "{text}"
    );
}

// See: issue #10 point 1
#[test]
fn mixed_event_fixed_period_recording_weighs_like_perf() {
    let Some(hot) = hot_to_record(Recorder::Perf, FramePointers::Kept) else {
        return;
    };
    let (_dir, file) = TempDir::with_file("fixed-period-mixed", "mixed.data");
    // cpu-clock by frequency (samples carry PERIOD), page faults every 5th (they do not):
    // each exec'd child faults its libraries in.
    perf_record(
        &file,
        &["-e", "cpu-clock/freq=999/,page-faults/period=5/", "-g"],
        &[
            "sh",
            "-c",
            &format!("for i in 1 2 3; do {} 0.1 >/dev/null; done", s(&hot)),
        ],
    );
    header_counts_match_perf(&file);
    let ours = kprof_header_events(&file);
    let (faults, fault_period) = ours["page-faults/period=5/"];
    assert!(faults > 10, "page faults were sampled: {ours:?}");
    assert_eq!(fault_period, Some(faults * 5));
    // cpu-clock's samples carry their periods; a page fault sample weighs 5.
    let (_, clock_period) = ours["cpu-clock/freq=999/"];
    symbol_periods_match_perf(&file, "cpu-clock/freq=999/", clock_period.unwrap() / 10);
    symbol_periods_match_perf(&file, "page-faults/period=5/", 5);
    check_folded(&file, "cpu-clock/freq=999/");
    // Page faults in ld.so pass through a PLT stub that perf names `@plt` and kprof
    // `__tunable_get_val@plt`: a few samples, a large share of this small event's stacks, so
    // its weight is checked, not its stacks.
    assert_eq!(
        folded_total(&file, &["--event", "page-faults/period=5/"]),
        perf_event_count(&file, "page-faults/period=5/")
    );
}

// See: issue #10 point 7
#[test]
fn flame_total_is_perfs_event_count_with_execd_children() {
    let Some(hot) = hot_to_record(Recorder::Perf, FramePointers::Kept) else {
        return;
    };
    let Recording {
        dir: _dir, file, ..
    } = Recording::by_perf(
        "exec-children",
        "exec.data",
        &["-F", "999", "-g"],
        &[
            "sh",
            "-c",
            &format!(
                "for i in 1 2 3 4 5 6; do {} 0.05 >/dev/null; ls / >/dev/null; done",
                s(&hot)
            ),
        ],
    );
    for count in ["period", "samples"] {
        let total = folded_total(&file, &["--count", count]);
        let expected = match count {
            "period" => perf_event_count(&file, "cpu-clock"),
            _ => perf_sample_counts(&file).values().sum(),
        };
        assert_eq!(total, expected, "flame --folded --count {count}");
    }
    check_folded(&file, "cpu-clock");
}

/// The total weight of `kprof flame --folded ARGS -i FILE`.
fn folded_total(file: &Path, args: &[&str]) -> u64 {
    let mut all = vec!["flame", "--folded", "-i", s(file)];
    all.extend_from_slice(args);
    kprof_ok(&all)
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum()
}

/// The little-endian perf.data header's data section: (offset, size).
fn data_section(bytes: &[u8]) -> (usize, usize) {
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    (word(40), word(48))
}

/// `file` as perf leaves it when killed while writing its last compressed record: the data
/// size is not filled in (0) and that record's payload stops halfway, inside a zstd block.
fn cut_inside_last_compressed_record(bytes: &[u8]) -> Vec<u8> {
    let (start, size) = data_section(bytes);
    let mut pos = start;
    let mut last = None;
    while pos + 8 <= start + size {
        let kind = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let len = usize::from(u16::from_le_bytes(
            bytes[pos + 6..pos + 8].try_into().unwrap(),
        ));
        if kind == 81 {
            last = Some((pos, len));
        }
        pos += len.max(8);
    }
    let (at, len) = last.expect("a COMPRESSED record");
    let kept = (len - 8) / 2;
    let mut out = bytes[..at + 8 + kept].to_vec();
    out[at + 6..at + 8].copy_from_slice(&u16::try_from(8 + kept).unwrap().to_le_bytes());
    out[48..56].copy_from_slice(&0u64.to_le_bytes());
    out
}

// See: issue #10 point 12
#[test]
fn perf_compressed_file_reads_without_a_warning_and_a_cut_one_warns() {
    let Some(Recording { dir, file, .. }) = Recording::of_hot(
        Recorder::Perf,
        "zstd-warning",
        "z.data",
        FramePointers::Kept,
        &["-z", "-F", "999", "-g"],
        "0.5",
    ) else {
        return;
    };
    let out = run_kprof(&["flame", "--folded", "-i", s(&file)]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "no warning: {stderr}");
    let header = kprof_ok(&["report", "--header-only", "-i", s(&file)]);
    let notes: Vec<&str> = header.lines().filter(|l| l.starts_with("# note")).collect();
    assert!(
        notes.len() == 1 && notes[0].contains("zstd-compressed data"),
        "only the note that the data was compressed: {notes:?}"
    );
    // Every record decoded: perf's counts.
    header_counts_match_perf(&file);

    // perf killed while writing: the last compressed record stops inside a block.
    let cut = dir.join("cut.data");
    std::fs::write(
        &cut,
        cut_inside_last_compressed_record(&std::fs::read(&file).unwrap()),
    )
    .unwrap();
    let out = run_kprof(&["flame", "--folded", "-i", s(&cut)]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("compressed data stops inside a zstd block"),
        "the lost records are reported: {stderr}"
    );
}
