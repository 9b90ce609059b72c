//! Issue #10 point 4: LBR call stacks (`perf record --call-graph lbr`). perf builds the user
//! stack from the branch stack, so kprof must too: the recording in `tests/fixtures/lbr/` (see
//! its README) is read by both, and their stacks compared sample by sample.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::process::Command;

use object::{Object, ObjectSection};

use crate::common::*;

/// The binary as the recording names it (kept at that path under `symfs/`).
const BINARY: &str = "/home/dknysh/kdab-disasm-fraames/hotspot/3rdparty/perfparser/tests/auto/perfdata/vector_static_gcc/vector_static_gcc_v9.1.0";

/// User addresses lie below this; perf prints kernel frames at their full address.
const KERNEL_START: u64 = 0xffff_8000_0000_0000;

fn recording() -> PathBuf {
    repo().join("tests/fixtures/lbr/perf.lbr.data")
}

fn symfs() -> PathBuf {
    repo().join("tests/fixtures/lbr/symfs")
}

/// The file offsets of the binary's `.plt` (mapped at offset 0, so what perf prints as a user
/// frame's address is its file offset).
fn plt_offsets() -> Range<u64> {
    let path = symfs().join(BINARY.trim_start_matches('/'));
    let bytes = std::fs::read(path).unwrap();
    let elf = object::File::parse(&*bytes).unwrap();
    let (offset, size) = elf.section_by_name(".plt").unwrap().file_range().unwrap();
    offset..offset + size
}

/// The name to compare: perf 6.1 names a static binary's PLT slots after the symbol before
/// them (`_init`), kprof names the stub (`function@plt`, see `tests/names.rs`); both become
/// `<plt>` (perf's only when its address lies in `.plt`).
fn comparable(name: &str, address: Option<u64>, plt: &Range<u64>) -> String {
    let perf_plt = name == "_init" && address.is_some_and(|a| plt.contains(&a));
    if perf_plt || name.ends_with("@plt") {
        "<plt>".to_string()
    } else {
        name.to_string()
    }
}

/// One frame of a `script` listing: `ADDRESS NAME (MODULE)`.
#[derive(Debug)]
struct Frame {
    address: u64,
    name: String,
    module: String,
}

/// One sample of a `script` listing: its time and its frames, leaf first.
#[derive(Debug)]
struct Listed {
    time: String,
    frames: Vec<Frame>,
}

impl Listed {
    fn reaches_main(&self) -> bool {
        self.frames.iter().any(|f| f.name == "main")
    }
}

/// The samples of a perf or kprof `script` listing.
fn parse_script(text: &str) -> Vec<Listed> {
    let mut samples: Vec<Listed> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with('\t') {
            // `COMM TID TIME: ...`: the time is the first word that ends with a colon.
            let time = line
                .split_whitespace()
                .find_map(|word| word.strip_suffix(':'))
                .unwrap_or_else(|| panic!("a time in {line:?}"));
            samples.push(Listed {
                time: time.to_string(),
                frames: Vec::new(),
            });
            continue;
        }
        let (address, rest) = line.trim_start().split_once(' ').unwrap();
        let (name, module) = rest.rsplit_once(" (").unwrap();
        samples.last_mut().unwrap().frames.push(Frame {
            address: u64::from_str_radix(address, 16).unwrap(),
            name: name.to_string(),
            module: module.trim_end_matches(')').to_string(),
        });
    }
    samples
}

/// True when `/usr/bin/perf` runs (reading files needs no perf_event_open).
fn perf_runs() -> bool {
    let ok = Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    available("perf (Linux perf)", ok, "KPROF_REQUIRE_PERF")
}

/// `run(ARGS --symfs SYMFS -i RECORDING)`: the LBR recording read by perf or kprof (`run` is
/// [`perf`] or [`kprof_ok`], `args` starts with the subcommand) against its binary.
fn read_recording(run: fn(&[&str]) -> String, args: &[&str]) -> String {
    let (file, symfs) = (recording(), symfs());
    let mut all = args.to_vec();
    all.extend([
        "--symfs",
        symfs.to_str().unwrap(),
        "-i",
        file.to_str().unwrap(),
    ]);
    run(&all)
}

/// perf's listing of the recording, with names and modules but no offsets.
fn perf_samples() -> Vec<Listed> {
    parse_script(&read_recording(
        perf,
        &["script", "--force", "-F", "comm,tid,time,ip,sym,dso"],
    ))
}

/// Per sample, whether its LBR call stack is empty (perf's `brstack` field).
fn empty_call_stacks() -> Vec<bool> {
    let file = recording();
    let text = perf(&[
        "script",
        "--force",
        "-i",
        file.to_str().unwrap(),
        "-F",
        "tid,time,brstack",
    ]);
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| !line.contains('/'))
        .collect()
}

fn kprof_samples() -> Vec<Listed> {
    parse_script(&read_recording(kprof_ok, &["script", "--no-inline"]))
}

/// The figures of the README's table row: (samples, samples reaching `main` in perf 6.1).
fn readme_figures() -> (u64, usize) {
    let readme = std::fs::read_to_string(repo().join("tests/fixtures/lbr/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|line| line.starts_with("| `perf.lbr.data`"))
        .expect("a README row for perf.lbr.data");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    (cells[5].parse().unwrap(), cells[6].parse().unwrap())
}

// See: issue #10 point 4
#[test]
fn lbr_stacks_match_perf_sample_by_sample() {
    if !perf_runs() {
        return;
    }
    let theirs = perf_samples();
    let empty = empty_call_stacks();
    let ours = kprof_samples();
    let plt = plt_offsets();
    assert_eq!(ours.len(), theirs.len(), "the same samples");
    assert_eq!(empty.len(), theirs.len(), "a brstack line per sample");
    for ((our, their), &empty) in ours.iter().zip(&theirs).zip(&empty) {
        assert_eq!(our.time, their.time, "samples in the same order");
        let context = || format!("sample at {}:\nkprof {our:#?}\nperf {their:#?}", our.time);
        let compared = if empty {
            // perf reads one branch entry past the record and shows it as the outermost frame:
            // compare the frames before it (kprof shows the frame-pointer user part there).
            assert!(our.frames.len() >= their.frames.len() - 1, "{}", context());
            their.frames.len() - 1
        } else {
            assert_eq!(our.frames.len(), their.frames.len(), "{}", context());
            their.frames.len()
        };
        for (mine, perfs) in our.frames.iter().zip(&their.frames).take(compared) {
            if perfs.address >= KERNEL_START {
                // Kernel symbols of that machine are not here: any name but none of the binary.
                assert_ne!(mine.module, BINARY, "a kernel frame: {}", context());
            } else {
                assert_eq!(
                    (comparable(&mine.name, None, &plt), &mine.module),
                    (
                        comparable(&perfs.name, Some(perfs.address), &plt),
                        &perfs.module
                    ),
                    "{}",
                    context()
                );
            }
        }
        assert_eq!(our.reaches_main(), their.reaches_main(), "{}", context());
    }
    let (_, perf_reaching_main) = readme_figures();
    assert_eq!(
        theirs.iter().filter(|s| s.reaches_main()).count(),
        perf_reaching_main,
        "the README's figure is perf's"
    );
}

// See: issue #10 point 4
#[test]
fn lbr_folded_stacks_match_perf() {
    if !perf_runs() {
        return;
    }
    // perf's user stacks, root first after the command name, counted.
    let empty = empty_call_stacks();
    let plt = plt_offsets();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (sample, &empty) in perf_samples().iter().zip(&empty) {
        if empty {
            continue;
        }
        let mut path = vec!["vector_static_g".to_string()];
        path.extend(
            sample
                .frames
                .iter()
                .rev()
                .filter(|f| f.address < KERNEL_START)
                .map(|f| comparable(&f.name, Some(f.address), &plt)),
        );
        *expected.entry(path.join(";")).or_default() += 1;
    }
    assert!(expected.len() > 3, "{expected:#?}");
    // kprof's folded stacks: each sample counts for the longest perf user stack it starts
    // with (the frames after it are the kernel's).
    let folded = read_recording(
        kprof_ok,
        &["flame", "--folded", "--no-inline", "--count", "samples"],
    );
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let count: u64 = count.parse().unwrap();
        let stack: Vec<String> = stack
            .split(';')
            .map(|name| comparable(name, None, &plt))
            .collect();
        let stack = stack.join(";");
        let path = expected
            .keys()
            .filter(|path| stack == path.as_str() || stack.starts_with(&format!("{path};")))
            .max_by_key(|path| path.len());
        if let Some(path) = path {
            *found.entry(path.clone()).or_default() += count;
        } else {
            assert!(
                !stack.split(';').any(|f| f == "main"),
                "a stack reaching main that perf does not have: {line}"
            );
        }
    }
    assert_eq!(found, expected);
}

// See: issue #10 point 4
#[test]
fn lbr_stacks_reach_main_as_often_as_the_readme_says() {
    let (samples, reaching_main) = readme_figures();
    let ours = kprof_samples();
    assert_eq!(ours.len() as u64, samples);
    assert_eq!(
        crate::peer::oracle(&recording()).0,
        samples,
        "README sample count (independent reader)"
    );
    assert_eq!(
        ours.iter().filter(|s| s.reaches_main()).count(),
        reaching_main
    );
    // The recording names its binary; with --symfs its frames have names.
    assert!(
        ours.iter()
            .flat_map(|s| &s.frames)
            .any(|f| f.module == BINARY && f.name == "__ieee754_hypot")
    );
}
