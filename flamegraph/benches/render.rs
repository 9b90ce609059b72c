//! Timing of folding and SVG rendering for large profiles (200,000 distinct stacks), and of
//! rendering a real profile's folded stacks when `KPROF_BENCH_FOLDED` names a file of them,
//! e.g. `kprof flame --folded -i target/bench-compare/big.data > big.folded` (issue #13).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kprof_flamegraph::{Folder, SvgOptions, render_svg};

/// 200,000 distinct four-frame stacks with small weights.
fn big_folder() -> Folder {
    let mut folder = Folder::new();
    for i in 0..200_000u32 {
        let module = format!("module{}", i % 97);
        let function = format!("function{}", i % 1009);
        let leaf = format!("leaf{i}");
        folder.add(&["main", &module, &function, &leaf], 1 + u64::from(i % 3));
    }
    folder
}

fn bench_render(c: &mut Criterion) {
    let folder = big_folder();
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.bench_function("fold_200k_stacks", |b| b.iter(|| black_box(big_folder())));
    group.bench_function("write_folded_200k_stacks", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            folder.write_folded(&mut out).ok();
            black_box(out)
        })
    });
    group.bench_function("svg_200k_stacks", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            render_svg(&folder, &SvgOptions::default(), &mut out).ok();
            black_box(out)
        })
    });
    if let Ok(path) = std::env::var("KPROF_BENCH_FOLDED") {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let real = Folder::read_folded(std::io::BufReader::new(file))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        group.bench_function("svg_folded_file", |b| {
            b.iter(|| {
                let mut out = Vec::new();
                render_svg(&real, &SvgOptions::default(), &mut out).ok();
                black_box(out)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
