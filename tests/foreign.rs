//! Issue #10 point 3: a recording names only what describes it. Kernel frames of a recording
//! made on another kernel stay unresolved (this machine's kallsyms does not describe them), with
//! one note on how to supply that kernel's symbols, and `--kallsyms` supplies them; a binary
//! whose build-id differs from the recorded one is not used, and a note says so.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use linux_perf_data::linux_perf_event_reader::{CpuMode, EventRecord};
use linux_perf_data::{PerfFileReader, PerfFileRecord};

use crate::common::*;

/// The aarch64 recordings: no kernel of this (x86-64) machine can have made them.
const AARCH64_PEERS: [&str; 2] = ["sleep.compressed.data", "sleep.compressed.pipe.data"];

/// Kernel-mode sample addresses of `path`, as the independent `linux-perf-data` reader sees them.
fn kernel_ips(path: &Path) -> BTreeSet<u64> {
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = independent_reader(path);
    let mut ips = BTreeSet::new();
    while let Some(record) = record_iter.next_record(&mut perf_file).unwrap() {
        let PerfFileRecord::EventRecord { record, .. } = record else {
            continue;
        };
        if let Ok(EventRecord::Sample(sample)) = record.parse() {
            if sample.cpu_mode == CpuMode::Kernel {
                ips.extend(sample.ip);
            }
        }
    }
    ips
}

/// The one line of `stderr` that mentions `about`, asserting there is exactly one (`what` names
/// the case in the failure).
fn the_one_note<'a>(stderr: &'a str, about: &str, what: &str) -> &'a str {
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains(about)).collect();
    assert_eq!(notes.len(), 1, "{what}: one note in {stderr}");
    notes[0]
}

/// `kprof script` frame lines in `[kernel.kallsyms]`: (address, name).
fn kernel_frames(script: &str) -> Vec<(u64, String)> {
    script
        .lines()
        .filter(|l| l.starts_with('\t') && l.ends_with("([kernel.kallsyms])"))
        .map(|l| {
            let mut words = l.split_whitespace();
            let address = u64::from_str_radix(words.next().unwrap(), 16).unwrap();
            (address, words.next().unwrap().to_string())
        })
        .collect()
}

#[test]
fn another_kernels_frames_stay_unresolved_with_one_note() {
    // See: issue #10 point 3
    for name in AARCH64_PEERS {
        let file = repo().join("tests/fixtures/peer").join(name);
        let ips = kernel_ips(&file);
        assert!(!ips.is_empty(), "{name}: kernel samples");
        let out = run_kprof(&["script", "-i", file.to_str().unwrap()]);
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        let frames = kernel_frames(&script);
        assert!(!frames.is_empty(), "{name}: kernel frames in {script}");
        for (address, function) in &frames {
            assert!(
                ips.contains(address),
                "{name}: {address:#x} is a recorded kernel ip"
            );
            assert_eq!(
                *function,
                format!("[kernel.kallsyms]+{address:#x}"),
                "{name}: a kernel frame named from this machine's kallsyms"
            );
        }
        let stderr = String::from_utf8(out.stderr).unwrap();
        let note = the_one_note(&stderr, "kernel addresses left unresolved", name);
        assert!(
            note.contains("6.5.0-1024-aws") && note.contains("--kallsyms FILE"),
            "{note}"
        );
    }
}

#[test]
fn kallsyms_names_another_kernels_frames_in_every_command() {
    // See: issue #10 point 3
    let dir = TempDir::new("foreign-kallsyms");
    for name in AARCH64_PEERS {
        let file = repo().join("tests/fixtures/peer").join(name);
        let input = file.to_str().unwrap();
        // A symbol table covering every recorded kernel ip: function i starts 0x10 before ip i.
        let ips: Vec<u64> = kernel_ips(&file).into_iter().collect();
        let mut kallsyms = String::new();
        for (i, ip) in ips.iter().enumerate() {
            kallsyms.push_str(&format!("{:016x} T peer_kernel_fn_{i}\n", ip - 0x10));
        }
        let last = ips.last().unwrap();
        kallsyms.push_str(&format!("{:016x} T peer_kernel_end\n", last + 0x1000));
        let kallsyms_path = dir.join("kallsyms");
        std::fs::write(&kallsyms_path, kallsyms).unwrap();
        let kallsyms_path = kallsyms_path.to_str().unwrap();

        let out = run_kprof(&["script", "-i", input, "--kallsyms", kallsyms_path]);
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        let frames = kernel_frames(&script);
        assert!(!frames.is_empty(), "{name}");
        for (address, function) in &frames {
            let i = ips.iter().position(|ip| ip == address).unwrap();
            assert_eq!(
                *function,
                format!("peer_kernel_fn_{i}"),
                "{name}: {address:#x}"
            );
        }
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            !stderr.contains("kernel addresses left unresolved"),
            "{name}: {stderr}"
        );

        // The same flag on every command that reads a profile.
        let flame = kprof_ok(&[
            "flame",
            "--folded",
            "-i",
            input,
            "--kallsyms",
            kallsyms_path,
        ]);
        let report = kprof_ok(&["report", "-i", input, "--kallsyms", kallsyms_path]);
        let export = kprof_ok(&[
            "export",
            "--format",
            "speedscope",
            "-i",
            input,
            "--kallsyms",
            kallsyms_path,
        ]);
        let diff = kprof_ok(&[
            "diff",
            "--folded",
            input,
            input,
            "--kallsyms",
            kallsyms_path,
        ]);
        for (command, text) in [
            ("flame", flame),
            ("report", report),
            ("export", export),
            ("diff", diff),
        ] {
            assert!(
                text.contains("peer_kernel_fn_"),
                "{name}: {command} names kernel frames: {text}"
            );
        }
    }
}

/// Compiles `hot.c` to `out` with the given GNU build-id (hex).
fn build_hot(out: &Path, build_id: &str) {
    let _machine = shared();
    let status = Command::new("cc")
        .args(["-O2", "-g", "-fno-omit-frame-pointer"])
        .arg(format!("-Wl,--build-id=0x{build_id}"))
        .arg(repo().join("examples/workloads/hot.c"))
        .arg("-o")
        .arg(out)
        .status()
        .expect("cc runs");
    assert!(status.success());
}

#[test]
fn a_binary_with_another_build_id_is_not_used() {
    // See: issue #10 point 3
    if !perf_can_record() {
        return;
    }
    let dir = TempDir::new("foreign-build-id");
    let program = dir.join("hot");
    // Two builds of one program that differ only in their build-id; unique per run, so that
    // perf's build-id cache cannot hold either.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let recorded = format!("{:08x}{nanos:032x}", std::process::id());
    let other = format!("{:08x}{:032x}", std::process::id(), nanos + 1);
    build_hot(&program, &recorded);
    let data = dir.join("hot.data");
    // --no-buildid-cache: the recorded binary is nowhere but at its path.
    perf_record(
        &data,
        &["-F", "999", "-g", "--no-buildid-cache"],
        &[program.to_str().unwrap(), "0.3"],
    );
    let input = data.to_str().unwrap();
    let names = |folded: &str| folded.contains(";heavy;") || folded.contains(";medium;");

    // The recorded binary: its functions are named.
    let folded = kprof_ok(&["flame", "--folded", "-i", input]);
    assert!(names(&folded), "{folded}");

    // Another build at the recorded path: not used, and said so once.
    build_hot(&program, &other);
    let out = run_kprof(&["flame", "--folded", "-i", input]);
    assert!(out.status.success());
    let folded = String::from_utf8(out.stdout).unwrap();
    assert!(!names(&folded), "another build's names: {folded}");
    assert!(folded.contains("hot+0x"), "module+offset frames: {folded}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let note = the_one_note(&stderr, "build-id mismatch", "another build");
    assert!(
        note.contains(program.to_str().unwrap())
            && note.contains("not used")
            && note.contains(&recorded)
            && note.contains(&other),
        "{note}"
    );
}
