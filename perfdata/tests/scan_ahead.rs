//! The pass over a file's records walked in pieces side by side (`ParseOptions::scan_piece_bytes`)
//! gives the index the pass alone gives: the same records in the same time order, at the same
//! times, with the same notes, whatever the pieces and threads.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kprof_perfdata::kinds::{attr_flag, record as rk, sample as st};
use kprof_perfdata::{Endian, ParseOptions, PerfFile};
use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder, xorshift as numbers};

const SAMPLE_TYPE: u64 =
    st::IDENTIFIER | st::IP | st::TID | st::TIME | st::CPU | st::PERIOD | st::CALLCHAIN;

/// What `records_file` puts in the middle of its stream.
#[derive(Clone, Copy, Debug)]
enum Middle {
    Nothing,
    /// An EVENT_UPDATE naming the event anew (the pieces stop using the attrs they had).
    EventUpdate,
    /// A record of a type no perf writes.
    Unknown,
}

/// The sample_id trailer of a non-sample record: tid, time, cpu, identifier.
fn trailer(b: &mut RecordBuilder, time: u64) {
    b.u32(100).u32(101).u64(time).u32(1).u32(0).u64(7);
}

/// About `records` records as perf writes them: rounds of per-CPU runs of samples whose times
/// interleave, with COMM, EXIT and FINISHED_ROUND records among them (the last without a
/// time); callchains hold values that read as record headers, so pieces guess wrong starts.
fn records_file(records: usize, seed: u64, middle: Middle) -> Vec<u8> {
    records_file_with(records, seed, middle, false)
}

/// [`records_file`] as a perf killed before it finalized the file writes it.
fn records_file_not_finalized(records: usize, seed: u64) -> Vec<u8> {
    records_file_with(records, seed, Middle::Nothing, true)
}

fn records_file_with(records: usize, seed: u64, middle: Middle, not_finalized: bool) -> Vec<u8> {
    let mut next = numbers(seed);
    let mut r = RecordBuilder::new(Endian::Little);
    let mut written = 0;
    let mut round = 0u64;
    while written < records {
        round += 1;
        for cpu in 0..3u32 {
            let mut time = round * 10_000 - next() % 4_000;
            for _ in 0..1 + next() % 40 {
                time += next() % 100;
                let depth = 1 + next() % 30;
                // A third of the callchains end in a row of what reads as FINISHED_ROUND
                // records, each 8 bytes: a piece that starts in it walks them as records and
                // meets the pass only at the next real one.
                let fake_rounds = if next() % 3 == 0 { 20 } else { 0 };
                r.record(rk::SAMPLE, 2, |b| {
                    b.u64(7).u64(0x40_0000 + next() % 4096).u32(100).u32(101);
                    b.u64(time).u32(cpu).u32(0).u64(1000);
                    b.u64(depth + fake_rounds);
                    for _ in 0..depth {
                        match next() % 4 {
                            // A SAMPLE header of a plausible size.
                            0 => b.u64((8 * (1 + next() % 20)) << 48 | 2 << 32 | 9),
                            _ => b.u64(next()),
                        };
                    }
                    for _ in 0..fake_rounds {
                        b.u64(8 << 48 | u64::from(rk::FINISHED_ROUND));
                    }
                });
                written += 1;
            }
            if next() % 3 == 0 {
                r.record(rk::COMM, 0, |b| {
                    b.u32(100).u32(101).cstr(b"worker");
                    trailer(b, time);
                });
                written += 1;
            }
        }
        if round % 7 == 0 {
            r.record(rk::EXIT, 0, |b| {
                b.u32(100).u32(1).u32(101).u32(1).u64(round * 10_000);
                trailer(b, round * 10_000);
            });
            written += 1;
        }
        r.record(rk::FINISHED_ROUND, 0, |_| {});
        written += 1;
        if written >= records / 2 && written < records / 2 + 200 {
            match middle {
                Middle::Nothing => {}
                Middle::EventUpdate => {
                    r.record(rk::EVENT_UPDATE, 0, |b| {
                        b.u64(2).u64(7).cstr(b"renamed");
                    });
                }
                Middle::Unknown => {
                    r.record(4000, 0, |b| {
                        b.u64(1);
                    });
                }
            }
            written = records / 2 + 200;
        }
    }
    let spec = AttrSpec {
        sample_type: SAMPLE_TYPE,
        flags: attr_flag::SAMPLE_ID_ALL,
        ..AttrSpec::default()
    };
    let file = FileBuilder::new(Endian::Little)
        .attr(spec, &[7])
        .records(&r.into_bytes());
    match not_finalized {
        true => file.not_finalized().build_file(),
        false => file.build_file(),
    }
}

/// `read` of the parse of `bytes` with pieces of `piece_bytes`, on a pool of `threads`
/// threads.
fn parse_in_pool<T>(
    bytes: &[u8],
    piece_bytes: usize,
    threads: usize,
    read: impl FnOnce(PerfFile<'_>) -> T + Send,
) -> T
where
    T: Send,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut options = ParseOptions::default();
        options.scan_piece_bytes = piece_bytes;
        read(PerfFile::parse_with(bytes, &options).unwrap())
    })
}

/// What the parse of `bytes` with pieces of `piece_bytes` on `threads` threads tells of its
/// records: each in time order (offset and time), the notes, and the events' names.
fn parsed(bytes: &[u8], piece_bytes: usize, threads: usize) -> (Vec<(u64, u64)>, String) {
    parse_in_pool(bytes, piece_bytes, threads, |file| {
        let mut sorted = file.sorted_records().unwrap();
        let mut records = Vec::new();
        while let Some(record) = sorted.next_ref() {
            let index = records.len();
            records.push((record.unwrap().offset(), file.sorted_time(index).unwrap()));
        }
        assert_eq!(records.len(), file.record_count());
        let names: Vec<&str> = file.attrs().iter().map(|a| a.name.as_str()).collect();
        (records, format!("{:?} {names:?}", file.notes()))
    })
}

/// Checks that every split of `bytes` gives what the pass alone gives.
fn same_as_one_pass(bytes: &[u8], what: &str) {
    let alone = parsed(bytes, usize::MAX, 1);
    assert!(!alone.0.is_empty(), "{what}: no records");
    for threads in [2, 3, 4] {
        for piece_bytes in [64, 1000, 4096, bytes.len() / 3] {
            let (records, notes) = parsed(bytes, piece_bytes, threads);
            let context = format!("{what}: pieces of {piece_bytes} bytes on {threads} threads");
            if let Some(at) =
                (0..records.len().max(alone.0.len())).find(|&i| records.get(i) != alone.0.get(i))
            {
                panic!(
                    "{context}: record {at} of {} in time order is {:?}, one pass has {:?}",
                    alone.0.len(),
                    records.get(at),
                    alone.0.get(at)
                );
            }
            assert_eq!(notes, alone.1, "{context}");
        }
    }
}

// See: issue #13 (the pass over the records of a big file walked in pieces)
#[test]
fn records_walked_in_pieces_index_as_one_pass_does() {
    for seed in [1, 2, 3] {
        let bytes = records_file(6_000, seed, Middle::Nothing);
        same_as_one_pass(&bytes, &format!("seed {seed}"));
    }
}

#[test]
fn records_that_change_the_reading_or_are_unknown_are_read_by_the_pass() {
    for middle in [Middle::EventUpdate, Middle::Unknown] {
        let bytes = records_file(6_000, 5, middle);
        same_as_one_pass(&bytes, &format!("{middle:?}"));
    }
}

#[test]
fn a_cut_or_corrupt_stream_gives_the_pass_alones_notes_and_error() {
    let bytes = records_file(6_000, 9, Middle::Nothing);
    // Not finalized and cut in the middle of a record: the tail is salvaged, with a note.
    let mut cut = records_file_not_finalized(6_000, 9);
    cut.truncate(cut.len() - 1_001);
    let alone = parsed(&cut, usize::MAX, 1);
    assert!(alone.1.contains("TruncatedTail"), "{}", alone.1);
    for threads in [2, 4] {
        assert_eq!(parsed(&cut, 64, threads), alone, "cut, {threads} threads");
    }
    // A record whose size runs past the end, two thirds in: the same error, at the same place.
    let mut corrupt = bytes;
    let at = corrupt.len() * 2 / 3;
    let file = PerfFile::parse(&corrupt).unwrap();
    let start = {
        let mut sorted = file.sorted_records().unwrap();
        let mut offsets = Vec::new();
        while let Some(record) = sorted.next_ref() {
            offsets.push(record.unwrap().offset() as usize);
        }
        offsets.sort();
        offsets.into_iter().find(|&offset| offset >= at).unwrap()
    };
    corrupt[start + 6..start + 8].copy_from_slice(&4u16.to_le_bytes());
    let error = |piece_bytes: usize, threads: usize| {
        parse_in_pool(&corrupt, piece_bytes, threads, |file| {
            file.sorted_records().map(|_| ()).map_err(|e| e.to_string())
        })
    };
    let alone = error(usize::MAX, 1);
    assert!(alone.is_err(), "{alone:?}");
    for threads in [2, 4] {
        assert_eq!(error(64, threads), alone);
    }
}

#[test]
fn recordings_of_other_machines_index_alike_in_pieces() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/peer");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "data") {
            let bytes = std::fs::read(&path).unwrap();
            let alone = parsed(&bytes, usize::MAX, 1);
            for piece_bytes in [256, 8192] {
                assert_eq!(
                    parsed(&bytes, piece_bytes, 3),
                    alone,
                    "{}, pieces of {piece_bytes} bytes",
                    path.display()
                );
            }
            files += 1;
        }
    }
    assert!(files >= 6, "{files} recordings in {}", dir.display());
}
