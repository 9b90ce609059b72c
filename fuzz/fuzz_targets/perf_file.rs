//! Fuzz target: `PerfFile::parse` on arbitrary bytes, then every record in file and time order,
//! every sample field (tracepoint samples rendered from their format), stats and notes. Any panic, hang or runaway allocation is a bug.
#![no_main]

use kprof_perfdata::{ParseOptions, PerfFile, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A modest decompression cap keeps each run fast and bounded.
    let mut options = ParseOptions::default();
    options.max_decompressed_bytes = 64 << 20;
    // The pass over the records walks small inputs in pieces too, and must index them as one
    // pass does.
    options.scan_piece_bytes = 64;
    let Ok(file) = PerfFile::parse_with(data, &options) else {
        return;
    };
    let mut one_pass = options.clone();
    one_pass.scan_piece_bytes = usize::MAX;
    if let Ok(alone) = PerfFile::parse_with(data, &one_pass) {
        let times = |file: &PerfFile<'_>| -> Vec<Option<u64>> {
            (0..file.record_count()).map(|i| file.sorted_time(i)).collect()
        };
        assert_eq!(times(&file), times(&alone), "pieces index as one pass does");
    } else {
        panic!("a file that parses in pieces parses in one pass");
    }
    let mut sum = 0u64;
    for event in file.records() {
        let Ok(event) = event else { break };
        sum = sum.wrapping_add(event.time.unwrap_or(0));
        if let Record::Sample(s) = event.record {
            if let (Some(format), Some(raw), Some(tracing)) = (
                file.tracepoint_format(s.attr_index),
                s.raw,
                file.tracing_data(),
            ) {
                let mut text = String::new();
                format.write_print(raw, tracing.layout, &mut text);
                sum = sum.wrapping_add(text.len() as u64);
            }
            if let Some(chain) = s.callchain {
                sum = chain.iter().fold(sum, u64::wrapping_add);
            }
            for regs in [s.regs_user, s.regs_intr].into_iter().flatten() {
                sum = sum.wrapping_add(regs.get(3).unwrap_or(0));
            }
            if let Some(read) = s.read {
                sum = read.values().fold(sum, |a, v| a.wrapping_add(v.value));
            }
            if let Some(branches) = s.branch_stack {
                sum = sum.wrapping_add(branches.get(0).map_or(0, |b| b.0));
            }
        }
    }
    if let Ok(sorted) = file.sorted_records() {
        sum = sum.wrapping_add(sorted.filter_map(Result::ok).count() as u64);
    }
    let _ = file.stats();
    for note in file.notes() {
        sum = sum.wrapping_add(note.to_string().len() as u64);
    }
    std::hint::black_box(sum);
});
