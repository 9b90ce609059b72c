//! Fuzz target: the tracepoint format parsers on arbitrary bytes: a TRACING_DATA blob, and a
//! `format` text whose events are then rendered for the rest of the input as a raw record. Any
//! panic, hang or runaway allocation is a bug.
#![no_main]

use kprof_perfdata::tracepoint::{EventFormat, RawLayout, TracingData};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut sum = 0usize;
    if let Ok(tracing) = TracingData::parse(data) {
        sum += tracing.events.len();
    }
    // The first half is a format text, the second a raw record.
    let (text, raw) = data.split_at(data.len() / 2);
    if let Ok(format) = EventFormat::parse("fuzz", &String::from_utf8_lossy(text)) {
        let mut out = String::new();
        format.write_print(raw, RawLayout::little_endian_64(), &mut out);
        format.write_fields(raw, RawLayout::native(), &mut out);
        sum += out.len() + format.values(raw, RawLayout::native()).count();
    }
    std::hint::black_box(sum);
});
