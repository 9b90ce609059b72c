//! Issue #6: perf.data from other perf versions and machines (`tests/fixtures/peer/`, see its
//! README), read the same as an independent reader (the `linux-perf-data` crate) reads them.

use std::path::{Path, PathBuf};

use linux_perf_data::{PerfFileReader, PerfFileRecord};

use crate::common::*;

fn peer_files() -> Vec<PathBuf> {
    let dir = repo().join("tests/fixtures/peer");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "six peer recordings in {}", dir.display());
    files
}

/// What the independent reader sees: (sample count, perf version, arch, cmdline).
pub(crate) fn oracle(path: &Path) -> (u64, Option<String>, Option<String>, Option<Vec<String>>) {
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = independent_reader(path);
    let mut samples = 0;
    while let Some(record) = record_iter
        .next_record(&mut perf_file)
        .expect("oracle record")
    {
        if let PerfFileRecord::EventRecord { record, .. } = record {
            if record.record_type == linux_perf_data::linux_perf_event_reader::RecordType::SAMPLE {
                samples += 1;
            }
        }
    }
    let version = perf_file.perf_version().ok().flatten().map(str::to_string);
    let arch = perf_file.arch().ok().flatten().map(str::to_string);
    let cmdline = perf_file
        .cmdline()
        .ok()
        .flatten()
        .map(|c| c.iter().map(|s| s.to_string()).collect());
    (samples, version, arch, cmdline)
}

#[test]
fn peer_files_header_script_and_flame() {
    for file in peer_files() {
        let name = file.to_str().unwrap();
        let (samples, version, arch, cmdline) = oracle(&file);
        let header = kprof_ok(&["report", "--header-only", "-i", name]);
        let version = version.expect("peer files carry a perf version");
        assert!(
            header.contains(&format!("perf version : {version}")),
            "{name}: {header}"
        );
        let arch = arch.expect("peer files carry an arch");
        assert!(
            header.contains(&format!("arch         : {arch}")),
            "{name}: {header}"
        );
        let cmdline = cmdline.expect("peer files carry a cmdline").join(" ");
        assert!(
            header.contains(&format!("cmdline      : {cmdline}")),
            "{name}: {header}"
        );

        let script = kprof_ok(&["script", "-i", name]);
        let listed = script
            .lines()
            .filter(|l| !l.starts_with('\t') && !l.is_empty())
            .count() as u64;
        assert_eq!(
            listed, samples,
            "{name}: kprof script lists every sample the oracle counts"
        );

        let svg = kprof_ok(&["flame", "-i", name]);
        assert!(
            svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"),
            "{name}: SVG"
        );
    }
}

#[test]
fn peer_frames_without_binaries_show_module_and_offset() {
    // The binaries these files name are not on this machine: frames resolve to module+offset.
    let file = repo().join("tests/fixtures/peer/fibo.compressed2.pipe.data");
    let folded = kprof_ok(&["flame", "--folded", "-i", file.to_str().unwrap()]);
    assert!(
        folded
            .lines()
            .any(|l| l.split(';').any(|f| f.contains("+0x"))),
        "module+offset frames in {folded}"
    );
    // With the build-ids the recording carries (a file-mode perf.data has the BUILD_ID feature),
    // the report says which file to fetch.
    let file = repo().join("tests/fixtures/peer/sleep.data");
    let report = kprof_ok(&["report", "-i", file.to_str().unwrap()]);
    let line = report
        .lines()
        .find(|l| l.starts_with("# unresolved:") && l.contains("ld-linux-x86-64.so.2"))
        .unwrap_or_else(|| panic!("an unresolved line for ld.so: {report}"));
    assert!(
        line.contains("build-id df74e268173f1aa4810472e81baf36e1ad80b2bc")
            && line.contains("file not found"),
        "{line}"
    );
    assert!(
        report.contains("ld-linux-x86-64.so.2+0x"),
        "module+offset frames: {report}"
    );
}

#[test]
fn peer_readme_matches_the_files() {
    let readme = std::fs::read_to_string(repo().join("tests/fixtures/peer/README.md")).unwrap();
    let mut rows = 0;
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        let samples: u64 = cells[6].parse().unwrap();
        let path = repo().join("tests/fixtures/peer").join(name);
        assert!(path.exists(), "README names {name}");
        assert_eq!(oracle(&path).0, samples, "README sample count of {name}");
        rows += 1;
    }
    assert_eq!(rows, peer_files().len(), "every file has a README row");
}
