//! Symbolizes 100k addresses spread over libc's code, as a profile's callchains would.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kprof_symbolizer::{AddressSpaces, Avma, Location, MappingInfo, Symbolizer, SymbolizerOptions};

const PID: u32 = 1;

/// This process's mappings, and the address range of libc's executable mapping.
fn own_maps() -> (AddressSpaces, Option<(u64, u64)>) {
    let mut spaces = AddressSpaces::new();
    let mut libc_text = None;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms), Some(pgoff)) = (f.first(), f.get(1), f.get(2)) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(pgoff)) = (
            u64::from_str_radix(start, 16),
            u64::from_str_radix(end, 16),
            u64::from_str_radix(pgoff, 16),
        ) else {
            continue;
        };
        let path = f.get(5).copied().unwrap_or("//anon");
        if path.contains("/libc.so") && perms.contains('x') {
            libc_text = Some((start, end));
        }
        spaces.mmap(
            PID,
            MappingInfo::user(Avma(start), end - start, pgoff, path.as_bytes()),
        );
    }
    (spaces, libc_text)
}

fn bench(c: &mut Criterion) {
    let (spaces, Some((start, end))) = own_maps() else {
        eprintln!("no libc mapping found; nothing to bench");
        return;
    };
    // A fixed linear congruential sequence: reproducible addresses across runs.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let addrs: Vec<u64> = (0..100_000)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            start + (x >> 11) % (end - start)
        })
        .collect();
    let mut group = c.benchmark_group("libc");
    group.sample_size(20);
    group.bench_function("symbolize_100k_cold", |b| {
        b.iter(|| {
            let symbolizer = Symbolizer::new(SymbolizerOptions::default());
            run(&spaces, &symbolizer, &addrs)
        })
    });
    let warm = Symbolizer::new(SymbolizerOptions::default());
    group.bench_function("symbolize_100k_warm", |b| {
        b.iter(|| run(&spaces, &warm, &addrs))
    });
    group.finish();
}

fn run(spaces: &AddressSpaces, symbolizer: &Symbolizer, addrs: &[u64]) -> usize {
    let mut total = 0;
    for &a in addrs {
        if let Location::Module { module, offset } = spaces.locate(PID, Avma(a), false) {
            total += black_box(symbolizer.symbolize(spaces.module(module), offset))
                .frames
                .len();
        }
    }
    total
}

/// Parsing a real `/proc/kallsyms` (read once, outside the timing).
fn bench_kallsyms(c: &mut Criterion) {
    let Ok(text) = std::fs::read("/proc/kallsyms") else {
        eprintln!("/proc/kallsyms unreadable; nothing to bench");
        return;
    };
    c.bench_function("kallsyms_parse", |b| {
        b.iter(|| kprof_symbolizer::kallsyms::Kallsyms::parse(black_box(text.clone())).len())
    });
}

criterion_group!(benches, bench, bench_kallsyms);
criterion_main!(benches);
