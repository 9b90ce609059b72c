//! Real perf.data files from other machines (perf 6.16 x86_64, perf 6.5 aarch64; file and pipe
//! format; COMPRESSED and COMPRESSED2), checked against the README's counts and the independent
//! `linux-perf-data` crate.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kprof_perfdata::{PerfFile, Record};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/peer")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Rows of the README table: (file, pipe, compressed, SAMPLE count per linux-perf-data).
fn readme_rows() -> Vec<(String, bool, bool, u64)> {
    let readme = String::from_utf8(fixture("README.md")).unwrap();
    readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cols: Vec<&str> = l
                .split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let name = cols[0].trim_matches('`').to_string();
            let mode = cols[3];
            let samples = cols.last().unwrap().parse().unwrap();
            (name, mode.contains("pipe"), mode.contains("-z"), samples)
        })
        .collect()
}

#[test]
fn readme_lists_every_fixture() {
    let rows = readme_rows();
    assert_eq!(rows.len(), 6);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/peer");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".data"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = rows.into_iter().map(|r| r.0).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn peer_sample_counts_match_readme() {
    for (name, pipe, compressed, samples) in readme_rows() {
        let name = name.as_str();
        let bytes = fixture(name);
        let file = PerfFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.is_pipe(), pipe, "{name}");
        assert_eq!(file.offsets_are_decompressed(), compressed, "{name}");
        let stats = file.stats();
        assert_eq!(stats.error, None, "{name}");
        assert_eq!(stats.samples, samples, "{name}: {stats:?}");
        assert!(!file.attrs().is_empty(), "{name}");
        for note in file.notes() {
            eprintln!("{name}: note: {note}");
        }
    }
}

/// Counts per record type, and every sample's ip/pid/tid/time, agree with linux-perf-data.
#[test]
fn peer_records_match_linux_perf_data() {
    use linux_perf_data::linux_perf_event_reader::EventRecord;
    use linux_perf_data::{PerfFileReader, PerfFileRecord};
    for (name, ..) in readme_rows() {
        let name = name.as_str();
        let bytes = fixture(name);
        let mut theirs = Vec::new();
        let mut their_kinds = std::collections::BTreeMap::<u32, u64>::new();
        let reader = if name.contains("pipe") {
            PerfFileReader::parse_pipe(std::io::Cursor::new(&bytes[..])).unwrap()
        } else {
            PerfFileReader::parse_file(std::io::Cursor::new(&bytes[..])).unwrap()
        };
        let PerfFileReader {
            mut record_iter,
            mut perf_file,
        } = reader;
        let their_names: Vec<String> = perf_file
            .event_attributes()
            .iter()
            .map(|a| a.name().unwrap_or("").to_string())
            .collect();
        while let Some(record) = record_iter.next_record(&mut perf_file).unwrap() {
            if let PerfFileRecord::EventRecord { record, .. } = record {
                *their_kinds.entry(record.record_type.0).or_default() += 1;
                if let Ok(EventRecord::Sample(s)) = record.parse() {
                    theirs.push((
                        s.ip,
                        s.pid.map(|p| p as u32),
                        s.tid.map(|t| t as u32),
                        s.timestamp,
                    ));
                }
            }
        }
        let file = PerfFile::parse(&bytes).unwrap();
        let mut ours = Vec::new();
        let mut our_kinds = std::collections::BTreeMap::<u32, u64>::new();
        for event in file.sorted_records().unwrap() {
            let event = event.unwrap();
            let kind = event.record.kind();
            if kind < 64 {
                *our_kinds.entry(kind).or_default() += 1;
            }
            if let Record::Sample(s) = event.record {
                ours.push((s.ip, s.pid, s.tid, s.time));
            }
        }
        assert_eq!(ours, theirs, "{name}: samples in time order");
        assert_eq!(our_kinds, their_kinds, "{name}: kernel record counts");
        let our_names: Vec<&str> = file.attrs().iter().map(|a| a.name.as_str()).collect();
        for (ours, theirs) in our_names.iter().zip(&their_names) {
            if !theirs.is_empty() {
                assert_eq!(ours, theirs, "{name}: event names");
            }
        }
    }
}
