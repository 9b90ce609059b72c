//! Criterion bench of kprof's import pipeline: parse a perf.data, build the symbolized profile
//! (replay, symbolize, intern), fold it, render the SVG. The recording is made once with
//! `/usr/bin/perf` (or taken from `KPROF_BENCH_DATA`) and cached in the target directory.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use kprof::analysis::{AnalysisOptions, analyze};
use kprof::profile::fold::{Naming, RootBy, Weight, fold};
use kprof_perfdata::PerfFile;

fn recording() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KPROF_BENCH_DATA") {
        return Some(PathBuf::from(path));
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let data = dir.join("bench-pipeline.data");
    if data.exists() {
        return Some(data);
    }
    let hot = dir.join("bench-hot");
    let built = Command::new("cc")
        .args([
            "-O2",
            "-g",
            "-fno-omit-frame-pointer",
            "examples/workloads/hot.c",
            "-o",
        ])
        .arg(&hot)
        .status()
        .ok()?;
    let recorded = Command::new("perf")
        .args(["record", "-q", "--no-bpf-event", "-F", "4000", "-g", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&hot)
        .arg("3")
        .status()
        .ok()?;
    (built.success() && recorded.success()).then_some(data)
}

fn pipeline(c: &mut Criterion) {
    let Some(path) = recording() else {
        eprintln!("SKIP: no recording (needs cc and perf, or KPROF_BENCH_DATA)");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let options = AnalysisOptions {
        inline: true,
        demangle: true,
        ..AnalysisOptions::default()
    };
    let naming = Naming {
        lines: false,
        root: RootBy::Comm,
    };
    c.bench_function("parse", |b| {
        b.iter(|| PerfFile::parse(&bytes).unwrap().stats().samples)
    });
    c.bench_function("analyze", |b| {
        b.iter(|| {
            let file = PerfFile::parse(&bytes).unwrap();
            analyze(&file, &options).unwrap().profile.samples.len()
        })
    });
    let file = PerfFile::parse(&bytes).unwrap();
    let profile = analyze(&file, &options).unwrap().profile;
    c.bench_function("fold", |b| {
        b.iter(|| fold(&profile, Some(0), Weight::Period, naming).total())
    });
    let folder = fold(&profile, Some(0), Weight::Period, naming);
    c.bench_function("render_svg", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            kprof_flamegraph::render_svg(
                &folder,
                &kprof_flamegraph::SvgOptions::default(),
                &mut out,
            )
            .unwrap();
            out.len()
        })
    });
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
