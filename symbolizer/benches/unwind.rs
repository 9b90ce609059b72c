//! Criterion bench for `kprof_symbolizer::unwind`.
//!
//! - `dwarf/recording`: unwinds every sample of a `perf record --call-graph dwarf` recording of
//!   the C workload from `tests/unwind_support` (built with `cc -O2 -fomit-frame-pointer`), with a
//!   warm module cache: the per-sample cost the kprof pipeline pays. Skipped with a message when
//!   `cc` or `perf` is unavailable.
//! - `dwarf/synthetic_32_frames` and `fp/synthetic_32_frames`: recording-free fallbacks over a
//!   synthetic ELF module whose 32 functions each push rbp and a return address.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/unwind_support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gimli::X86_64;
use gimli::write::{
    CallFrameInstruction, CommonInformationEntry, FrameDescriptionEntry, FrameTable,
};
use kprof_symbolizer::unwind::{
    Arch, DwarfUnwinder, StackBytes, UnwindCache, UserRegs, unwind_frame_pointers,
};
use support::{
    EM_X86_64, SyntheticModule, SyntheticSection, cfi_encoding, eh_frame_bytes, stack_bytes,
    synthetic_elf,
};

const MAX_FRAMES: usize = 256;

fn recording(c: &mut Criterion) {
    let Some(workload) = support::build_workload() else {
        return;
    };
    let Some(recording) = support::record_workload(workload) else {
        return;
    };
    let samples = recording.workload_samples();
    let unwinder = DwarfUnwinder::new();
    let mut cache = UnwindCache::new();
    let mut group = c.benchmark_group("dwarf");
    group.throughput(Throughput::Elements(samples.len() as u64));
    group.bench_function("recording", |bencher| {
        bencher.iter(|| {
            let mut frames = 0;
            for sample in &samples {
                let modules = recording.modules_of(sample.pid);
                let stack = StackBytes {
                    start: sample.regs.sp(),
                    bytes: &sample.stack,
                };
                let unwound = unwinder.unwind(
                    Arch::X86_64,
                    &sample.regs,
                    &stack,
                    &modules,
                    MAX_FRAMES,
                    &mut cache,
                );
                frames += unwound.frames.len();
            }
            black_box(frames)
        });
    });
    group.finish();
}

/// 32 functions at 0x1000 + 0x100·i; each row after its prologue: CFA = rsp + 16, rbp at
/// CFA − 16, return address at CFA − 8; the outermost has an undefined return address.
fn synthetic(c: &mut Criterion) {
    const FUNCTIONS: u64 = 32;
    const BASE: u64 = 0x40_0000;
    const SP: u64 = 0x7fff_0000;
    let mut table = FrameTable::default();
    let mut cie = CommonInformationEntry::new(cfi_encoding(), 1, -8, X86_64::RA);
    cie.add_instruction(CallFrameInstruction::Cfa(X86_64::RSP, 8));
    cie.add_instruction(CallFrameInstruction::Offset(X86_64::RA, -8));
    let cie = table.add_cie(cie);
    for index in 0..FUNCTIONS {
        let mut fde = FrameDescriptionEntry::new(
            gimli::write::Address::Constant(0x1000 + 0x100 * index),
            0x100,
        );
        fde.add_instruction(1, CallFrameInstruction::CfaOffset(16));
        fde.add_instruction(1, CallFrameInstruction::Offset(X86_64::RBP, -16));
        if index == FUNCTIONS - 1 {
            fde.add_instruction(1, CallFrameInstruction::Undefined(X86_64::RA));
        }
        table.add_fde(cie, fde);
    }
    let file = synthetic_elf(
        EM_X86_64,
        &[
            SyntheticSection {
                name: ".text",
                address: 0x1000,
                executable: true,
                bytes: vec![0x90; 0x100 * FUNCTIONS as usize],
            },
            SyntheticSection {
                name: ".eh_frame",
                address: 0x1000 + 0x100 * FUNCTIONS,
                executable: false,
                bytes: eh_frame_bytes(&table),
            },
        ],
    );
    let modules = SyntheticModule {
        key: 1,
        start: BASE,
        file: Arc::new(file),
    };
    // Frame i occupies [SP + 16i, SP + 16i + 16): saved rbp (pointing at the next record),
    // then the return address into function i + 1.
    let words: Vec<u64> = (0..FUNCTIONS)
        .flat_map(|i| [SP + 16 * (i + 1), BASE + 0x1000 + 0x100 * (i + 1) + 0x10])
        .collect();
    let bytes = stack_bytes(&words);
    let stack = StackBytes {
        start: SP,
        bytes: &bytes,
    };
    let regs = UserRegs::new(Arch::X86_64, BASE + 0x1000 + 0x10, SP).with_dwarf_register(6, SP);
    let unwinder = DwarfUnwinder::new();
    let mut cache = UnwindCache::new();
    let check = unwinder.unwind(
        Arch::X86_64,
        &regs,
        &stack,
        &modules,
        MAX_FRAMES,
        &mut cache,
    );
    assert_eq!(check.frames.len(), FUNCTIONS as usize, "{:?}", check.end);

    let mut group = c.benchmark_group("synthetic");
    group.throughput(Throughput::Elements(1));
    group.bench_function("dwarf_32_frames", |bencher| {
        bencher.iter(|| {
            black_box(unwinder.unwind(
                Arch::X86_64,
                black_box(&regs),
                &stack,
                &modules,
                MAX_FRAMES,
                &mut cache,
            ))
        });
    });
    group.bench_function("fp_32_frames", |bencher| {
        bencher.iter(|| {
            black_box(unwind_frame_pointers(
                Arch::X86_64,
                black_box(&regs),
                &stack,
                MAX_FRAMES,
            ))
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = recording, synthetic
}
criterion_main!(benches);
