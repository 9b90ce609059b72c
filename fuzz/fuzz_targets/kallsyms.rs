//! Fuzz target: `Kallsyms::parse` on arbitrary text (a `/proc/kallsyms` or a file given with
//! `--kallsyms`), then lookups around every address it names and by name. Any panic, hang or
//! runaway allocation is a bug.
#![no_main]

use kprof_symbolizer::kallsyms::Kallsyms;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let table = Kallsyms::parse(data.to_vec());
    let _ = (table.len(), table.is_empty(), table.addresses_hidden());
    // Probe at and around the addresses the text spells, and at a few fixed ones.
    let text = String::from_utf8_lossy(data);
    let mut probes = vec![0, 1, u64::MAX, 0xffff_ffff_8100_0000];
    for line in text.lines().take(256) {
        let Some(address) = line.split_whitespace().next() else {
            continue;
        };
        if let Ok(address) = u64::from_str_radix(address, 16) {
            probes.extend([address.wrapping_sub(1), address, address.wrapping_add(1)]);
        }
        if let Some(name) = line.split_whitespace().nth(2) {
            if let Some(found) = table.address_of(name) {
                probes.push(found);
            }
        }
    }
    for probe in probes {
        // A name found by address is the one found again at the same address.
        if let Some(name) = table.lookup(probe) {
            assert_eq!(table.lookup(probe), Some(name));
        }
    }
});
