//! Times parse + file-order iteration + time-order iteration on a synthetic recording of N samples
//! (default 125 000) from 8 CPUs with 16-deep callchains, like a busy `perf record -a -g`.
//!
//! `cargo run --release -p kprof-perfdata --example parse_speed [-- N]`
//!
//! Also prints a floor: the cheapest possible walk over the same headers, which on a busy or
//! memory-starved machine is most of the parse time.

use std::time::Instant;

use kprof_perfdata::kinds::{attr_flag, record, sample};
use kprof_perfdata::{Endian, PerfFile, Record};
use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};

/// The fastest of `runs` timings of `f` (a busy machine only ever makes a run slower).
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (std::time::Duration, T) {
    let mut best = std::time::Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed());
        out = Some(v);
    }
    (best, out.expect("runs > 0"))
}

fn main() -> Result<(), kprof_perfdata::Error> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(125_000);
    let t = sample::IDENTIFIER
        | sample::IP
        | sample::TID
        | sample::TIME
        | sample::CPU
        | sample::PERIOD
        | sample::CALLCHAIN;
    let mut r = RecordBuilder::new(Endian::Little);
    for i in 0..n {
        let cpu = (i % 8) as u32;
        // Each CPU's buffer is flushed in rounds, so times interleave out of order across CPUs.
        let time = 1_000_000 + (i / 8) * 1000 + u64::from(7 - cpu) * 100;
        r.record(record::SAMPLE, 2, |b| {
            b.u64(1)
                .u64(0x40_1000 + i)
                .u32(100)
                .u32(100 + cpu)
                .u64(time);
            b.u32(cpu).u32(0).u64(1_000_001).u64(16);
            for d in 0..16u64 {
                b.u64(0x40_0000 + d * 0x40);
            }
        });
        if i % 1024 == 1023 {
            r.record(record::FINISHED_ROUND, 0, |_| {});
        }
    }
    let spec = AttrSpec {
        sample_type: t,
        flags: attr_flag::SAMPLE_ID_ALL | attr_flag::FREQ,
        ..AttrSpec::default()
    };
    let bytes = FileBuilder::new(Endian::Little)
        .attr(spec, &[1])
        .records(&r.into_bytes())
        .build_file();

    // Floor: the cheapest possible walk over the same record headers.
    let (floor, count) = best(15, || {
        // Header, one attr entry, its one id.
        let mut pos = 104 + 136 + 16 + 8;
        let mut n = 0usize;
        while let Some(h) = bytes.get(pos + 6..pos + 8) {
            let size = usize::from(u16::from_le_bytes([
                h.first().copied().unwrap_or(0),
                h.get(1).copied().unwrap_or(0),
            ]));
            if size < 8 {
                break;
            }
            pos += size;
            n += 1;
        }
        n
    });
    println!("floor: walking {count} headers takes {floor:?}");
    let (parse, file) = best(15, || PerfFile::parse(&bytes));
    let file = file?;
    let (iterate, frames) = best(15, || {
        let mut frames = 0usize;
        for event in file.records().flatten() {
            if let Record::Sample(s) = event.record {
                frames += s.callchain.map_or(0, |c| c.len());
            }
        }
        frames
    });
    let (index, sorted) = best(15, || file.sorted_records());
    let samples = sorted?.len();
    let (sorted_iterate, ordered) = best(15, || -> Result<bool, kprof_perfdata::Error> {
        let mut last = 0;
        for event in file.sorted_records()? {
            let time = event?.time.unwrap_or(last);
            if time < last {
                return Ok(false);
            }
            last = time;
        }
        Ok(true)
    });
    assert!(ordered?, "time order");
    println!(
        "{} MB, {samples} records, {frames} frames (best of 15): parse {parse:?}, iterate {iterate:?}, \
         sort index {index:?}, index + sorted iterate {sorted_iterate:?}",
        bytes.len() >> 20
    );
    Ok(())
}
