//! Hostile input gate: real files cut at every 64 bytes and at every record boundary, bit-flipped
//! with a fixed-seed PRNG, and zero-filled. Every case must end in `Ok` or `Err`: never a panic, a
//! hang, or unbounded memory.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kprof_perfdata::kinds::record as rk;
use kprof_perfdata::{Endian, PerfFile, Record};
use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};

/// Tiny xorshift64 so the sweep is deterministic without a `rand` dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/peer")
        .join(name);
    std::fs::read(path).unwrap()
}

/// Parses and walks everything; returns how many records were decoded.
fn exercise(bytes: &[u8]) -> usize {
    let Ok(file) = PerfFile::parse(bytes) else {
        return 0;
    };
    let mut n = 0;
    for event in file.records() {
        match event {
            Ok(e) => {
                n += 1;
                if let Record::Sample(s) = e.record {
                    if let Some(chain) = s.callchain {
                        n += chain.iter().count() & 1;
                    }
                    if let Some(regs) = s.regs_user {
                        let _ = regs.get(7);
                    }
                }
            }
            Err(e) => {
                assert!(!e.to_string().contains('\n'));
                break;
            }
        }
    }
    if let Ok(sorted) = file.sorted_records() {
        n += sorted.filter(|e| e.is_ok()).count();
    }
    let _ = file.stats();
    for note in file.notes() {
        let _ = note.to_string();
    }
    n
}

fn sweep(name: &str, cut_step: usize, mutations: usize) {
    let bytes = fixture(name);
    let start = Instant::now();
    let original = PerfFile::parse(&bytes).unwrap();
    let boundaries: Vec<usize> = if original.offsets_are_decompressed() {
        Vec::new()
    } else {
        original
            .records()
            .filter_map(|e| e.ok().map(|e| e.offset as usize))
            .collect()
    };
    drop(original);
    // Cuts.
    for cut in (0..bytes.len())
        .step_by(cut_step)
        .chain(boundaries.iter().copied())
    {
        exercise(&bytes[..cut]);
        exercise(&bytes[..cut.saturating_add(3).min(bytes.len())]);
    }
    // Bit flips and zero-filled ranges.
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d ^ bytes.len() as u64);
    let mut buf = bytes.clone();
    for _ in 0..mutations {
        buf.copy_from_slice(&bytes);
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(buf.len());
            buf[at] ^= 1 << rng.below(8);
        }
        exercise(&buf);
        buf.copy_from_slice(&bytes);
        let at = rng.below(buf.len());
        let len = 1 + rng.below(256);
        let end = (at + len).min(buf.len());
        buf[at..end].fill(0);
        exercise(&buf);
        // Header fields are the juiciest targets: hit the first 256 bytes too.
        buf.copy_from_slice(&bytes);
        let at = rng.below(256.min(buf.len()));
        buf[at] = rng.next() as u8;
        exercise(&buf);
    }
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "{name}: sweep took {:?}",
        start.elapsed()
    );
}

#[test]
fn corrupt_sleep_data() {
    sweep("sleep.data", 64, 400);
}

#[test]
fn corrupt_sleep_compressed_data() {
    sweep("sleep.compressed.data", 64, 300);
}

#[test]
fn corrupt_sleep_compressed2_pipe_data() {
    sweep("sleep.compressed2.pipe.data", 64, 300);
}

#[test]
fn corrupt_fibo_compressed2_pipe_data() {
    sweep("fibo.compressed2.pipe.data", 1024, 40);
}

#[test]
fn sweep_actually_decodes_records() {
    // Guard against a sweep that silently tests nothing.
    let bytes = fixture("sleep.data");
    let records: u64 = PerfFile::parse(&bytes)
        .unwrap()
        .stats()
        .by_kind
        .values()
        .sum();
    assert!(records >= 10);
    // Every record is decoded once in file order and once in time order.
    assert!(exercise(&bytes) >= 2 * records as usize);
}

/// LOST and LOST_SAMPLES counts whose sum does not fit in 64 bits (a corrupt file) saturate the
/// totals of `stats` instead of overflowing.
// See: issue #12 done-means 5 (found by the perf_file fuzz target)
#[test]
fn lost_counts_that_overflow_saturate() {
    let mut r = RecordBuilder::new(Endian::Little);
    for _ in 0..2 {
        r.record(rk::LOST, 0, |b| {
            b.u64(7).u64(u64::MAX - 1);
        });
        r.record(rk::LOST_SAMPLES, 0, |b| {
            b.u64(u64::MAX - 1);
        });
    }
    let bytes = FileBuilder::new(Endian::Little)
        .attr(AttrSpec::default(), &[7])
        .records(&r.into_bytes())
        .build_file();
    let stats = PerfFile::parse(&bytes).unwrap().stats();
    assert!(stats.error.is_none(), "{:?}", stats.error);
    assert_eq!(stats.lost_records, 2);
    assert_eq!(stats.lost_events, u64::MAX);
    assert_eq!(stats.lost_samples, u64::MAX);
}
