//! Fuzz target: `PerfMap::parse` on arbitrary text (a JIT's `/tmp/perf-PID.map`, written by
//! the profiled program, so untrusted), then lookups at and around every address it names.
//! Any panic, hang or runaway allocation is a bug.
#![no_main]

use kprof_symbolizer::perfmap::PerfMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let map = PerfMap::parse(data);
    let _ = (map.len(), map.is_empty());
    let read = PerfMap::read(data).expect("reading from memory cannot fail");
    assert_eq!(read.len(), map.len());
    let text = String::from_utf8_lossy(data);
    let mut probes = vec![0, 1, u64::MAX];
    for line in text.lines().take(256) {
        let mut fields = line.split_whitespace();
        let (Some(start), Some(size)) = (fields.next(), fields.next()) else {
            continue;
        };
        let start = u64::from_str_radix(start.trim_start_matches("0x"), 16).unwrap_or(0);
        let size = u64::from_str_radix(size.trim_start_matches("0x"), 16).unwrap_or(0);
        probes.extend([
            start.wrapping_sub(1),
            start,
            start.wrapping_add(size / 2),
            start.wrapping_add(size),
        ]);
    }
    for probe in probes {
        assert_eq!(map.lookup(probe), read.lookup(probe));
    }
});
