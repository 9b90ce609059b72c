//! Issue #10 point 2: `kprof script` prints each sample's own addresses, frame by frame the
//! ones `perf script` prints, with and without `--no-inline`, for frame-pointer and DWARF
//! callchains.

use std::path::Path;

use crate::common::*;

/// Per sample, its time and the addresses of its frames, leaf first, from perf-script text.
fn sample_addresses(script: &str) -> Vec<(String, Vec<String>)> {
    let mut samples = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in script.lines() {
        if line.trim().is_empty() {
            samples.extend(current.take());
        } else if line.starts_with('\t') {
            let address = line.split_whitespace().next().unwrap_or("").to_string();
            if let Some((_, frames)) = current.as_mut() {
                frames.push(address);
            }
        } else {
            samples.extend(current.take());
            let time = line
                .split_whitespace()
                .find(|w| w.ends_with(':') && w.contains('.'))
                .unwrap_or_else(|| panic!("a time in {line}"))
                .trim_end_matches(':')
                .to_string();
            current = Some((time, Vec::new()));
        }
    }
    samples.extend(current);
    samples
}

/// Consecutive equal addresses as one: both tools print an inlined function at the address
/// of the function it is inlined into, and they do not agree on showing inlined frames (perf
/// 6.1 shows them in DWARF callchains only).
fn distinct_runs(addresses: &[String]) -> Vec<&str> {
    let mut runs: Vec<&str> = Vec::new();
    for a in addresses {
        if runs.last() != Some(&a.as_str()) {
            runs.push(a);
        }
    }
    runs
}

fn check_against_perf(file: &Path) {
    let path = file.to_str().unwrap();
    let perf_samples = sample_addresses(&perf(&[
        "script",
        "-i",
        path,
        "--force",
        "-F",
        "tid,time,ip,sym,dso",
    ]));
    assert!(
        perf_samples.len() >= 20,
        "{path}: {} samples",
        perf_samples.len()
    );
    // The test means something only when one function was sampled at several addresses.
    let mut leaves: Vec<&str> = perf_samples
        .iter()
        .filter_map(|(_, frames)| frames.first().map(String::as_str))
        .collect();
    leaves.sort_unstable();
    leaves.dedup();
    assert!(leaves.len() >= 3, "{path}: perf shows leaves {leaves:?}");
    for inline in [true, false] {
        let mut args = vec!["script", "-i", path];
        if !inline {
            args.push("--no-inline");
        }
        let ours = sample_addresses(&kprof_ok(&args));
        assert_eq!(ours.len(), perf_samples.len(), "{path}: samples");
        for ((perf_time, perf_frames), (time, frames)) in perf_samples.iter().zip(&ours) {
            assert_eq!(time, perf_time, "{path}: sample order");
            assert_eq!(
                distinct_runs(frames),
                distinct_runs(perf_frames),
                "{path}: sample at {time} (inline frames {inline})"
            );
        }
    }
}

#[test]
fn script_addresses_equal_perf_script_with_frame_pointers() {
    // See: issue #10 point 2
    let Some(Recording {
        dir: _dir, file, ..
    }) = Recording::of_hot(
        Recorder::Perf,
        "script-addr-fp",
        "fp.data",
        FramePointers::Kept,
        &["-F", "999", "-g"],
        "0.5",
    )
    else {
        return;
    };
    check_against_perf(&file);
}

#[test]
fn script_addresses_equal_perf_script_with_dwarf_unwinding() {
    // See: issue #10 point 2
    let Some(Recording {
        dir: _dir, file, ..
    }) = Recording::of_hot(
        Recorder::Perf,
        "script-addr-dwarf",
        "dwarf.data",
        FramePointers::Omitted,
        &["-F", "499", "--call-graph", "dwarf"],
        "0.5",
    )
    else {
        return;
    };
    check_against_perf(&file);
}
