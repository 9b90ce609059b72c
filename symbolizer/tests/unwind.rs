//! Integration tests for `kprof_symbolizer::unwind`: a real `perf record --call-graph dwarf`
//! recording of a C workload built without frame pointers, and hostile inputs (garbage CFI,
//! garbage stacks, non-advancing CFA) against real ELF files.
#![allow(clippy::unwrap_used)]

#[path = "unwind_support/mod.rs"]
mod support;

use std::sync::Arc;

use gimli::write::{
    CallFrameInstruction, CommonInformationEntry, FrameDescriptionEntry, FrameTable,
};
use gimli::{Register, X86_64};
use kprof_symbolizer::Avma;
use kprof_symbolizer::unwind::{
    Arch, DwarfUnwinder, FrameAddress, ModuleRef, ModuleSource, StackBytes, UnwindCache, UnwindEnd,
    Unwound, UserRegs, unwind_frame_pointers,
};
use support::{
    EM_AARCH64, EM_X86_64, ExeSymbols, SyntheticModule, SyntheticSection, XorShift,
    build_debug_frame_workload, build_workload, cfi_encoding, debug_frame_bytes, eh_frame_bytes,
    record_workload, stack_bytes, synthetic_elf,
};

const MAX_FRAMES: usize = 256;

/// The C workload's recording (see `record_workload`), `None` where it cannot be made.
fn recorded_workload() -> Option<&'static support::Recording> {
    record_workload(build_workload()?)
}

/// The C workload's executable bytes and its symbols, `None` where it cannot be built.
fn workload_exe() -> Option<(Vec<u8>, ExeSymbols)> {
    let workload = build_workload()?;
    let file = std::fs::read(&workload.exe).unwrap();
    Some((file, ExeSymbols::load(&workload.exe)))
}

/// `unwinder`'s walk from `regs` over `stack` (copied from `regs`' stack pointer), at most
/// `max_frames` frames, with a fresh step cache: each walk of these tests stands alone.
fn walk(
    unwinder: &DwarfUnwinder,
    modules: &dyn ModuleSource,
    regs: &UserRegs,
    stack: &[u8],
    max_frames: usize,
) -> Unwound {
    walk_with(
        unwinder,
        modules,
        regs,
        stack,
        max_frames,
        &mut UnwindCache::new(),
    )
}

/// [`walk`] through a worker's `cache`.
fn walk_with(
    unwinder: &DwarfUnwinder,
    modules: &dyn ModuleSource,
    regs: &UserRegs,
    stack: &[u8],
    max_frames: usize,
    cache: &mut UnwindCache,
) -> Unwound {
    let stack = StackBytes {
        start: regs.sp(),
        bytes: stack,
    };
    unwinder.unwind(regs.arch(), regs, &stack, modules, max_frames, cache)
}

/// ≥99% of the workload's samples unwind (DWARF only, no frame pointers in the binary) to
/// `main`, and every sample whose leaf is in `c` shows `c → b → a → main` (or the qsort path).
#[test]
fn dwarf_unwinding_of_a_real_recording_reaches_main() {
    let Some(workload) = build_workload() else {
        return;
    };
    check_recording_reaches_main(workload);
}

/// The same with the CFI only in a compressed `.debug_frame` section of the executable.
#[test]
fn debug_frame_only_executable_reaches_main() {
    let Some(workload) = build_debug_frame_workload() else {
        return;
    };
    // `.eh_frame` still holds the FDEs of crt1.o and the PLT, but none for the workload's own
    // functions, so reaching main requires the compressed `.debug_frame`.
    let file = std::fs::read(&workload.exe).unwrap();
    let elf = object::File::parse(&*file).unwrap();
    let debug_frame = object::Object::section_by_name(&elf, ".debug_frame").unwrap();
    let compressed = object::ObjectSection::compressed_data(&debug_frame).unwrap();
    assert_ne!(compressed.format, object::CompressionFormat::None);
    check_recording_reaches_main(workload);
}

fn check_recording_reaches_main(workload: &'static support::Workload) {
    let Some(recording) = record_workload(workload) else {
        return;
    };
    let symbols = ExeSymbols::load(&workload.exe);
    let unwinder = DwarfUnwinder::new();
    let samples = recording.workload_samples();
    assert!(
        samples.len() >= 50,
        "only {} samples recorded",
        samples.len()
    );

    let mut reached_main = 0;
    let mut leaf_in_c = 0;
    let mut via_qsort = 0;
    let mut via_signal = 0;
    let mut failures = Vec::new();
    for sample in &samples {
        let modules = recording.modules_of(sample.pid);
        let unwound = walk(&unwinder, &modules, &sample.regs, &sample.stack, MAX_FRAMES);
        assert!(unwound.frames.len() <= MAX_FRAMES);
        let names: Vec<&str> = unwound
            .frames
            .iter()
            .map(|frame| {
                symbols
                    .name_of(&modules, frame.lookup_address().0)
                    .unwrap_or("?")
            })
            .collect();
        if names.contains(&"main") {
            reached_main += 1;
        } else {
            failures.push(format!("{names:?} {:?}", unwound.end));
        }
        if names.first() == Some(&"c") {
            leaf_in_c += 1;
            let direct = names.starts_with(&["c", "b", "a", "main"]);
            let then_main = |function: &str| {
                names.iter().skip_while(|&&n| n != function).nth(1) == Some(&"main")
            };
            let through_qsort = names.get(1) == Some(&"compare") && then_main("qsort_path");
            let through_signal = names.get(1) == Some(&"on_signal") && then_main("signal_path");
            assert!(
                direct || through_qsort || through_signal,
                "unexpected stack for c: {names:?}"
            );
            if through_signal {
                via_signal += 1;
                // The frame interrupted by the signal is an exact pc, not a return address.
                let exact = unwound.frames[2..]
                    .iter()
                    .any(|frame| matches!(frame, FrameAddress::InstructionPointer(_)));
                assert!(
                    exact,
                    "no interrupted pc after the signal frame: {unwound:?}"
                );
            }
            if through_qsort {
                via_qsort += 1;
                // compare is called from inside libc's qsort, which has no symbols here.
                assert_eq!(names.get(2), Some(&"?"), "{names:?}");
            }
        }
    }
    let total = samples.len();
    eprintln!(
        "{reached_main}/{total} samples reached main; {leaf_in_c} in c ({via_qsort} through \
         libc's qsort, {via_signal} through a signal frame); {} modules cached",
        unwinder.cached_modules()
    );
    assert!(leaf_in_c * 2 >= total, "the busy loop in c should dominate");
    assert!(via_qsort > 0, "no sample unwound through libc's qsort");
    assert!(via_signal > 0, "no sample unwound through a signal frame");
    assert!(
        reached_main * 100 >= total * 99,
        "{reached_main}/{total} reached main; failures: {:#?}",
        &failures[..failures.len().min(20)]
    );
}

/// The same stacks unwound from many threads give the same frames as one thread.
#[test]
fn unwinding_is_deterministic_across_threads() {
    let Some(recording) = recorded_workload() else {
        return;
    };
    let unwinder = DwarfUnwinder::new();
    let samples = recording.workload_samples();
    let unwind_one = |sample: &support::Sample, cache: &mut UnwindCache| {
        let modules = recording.modules_of(sample.pid);
        walk_with(
            &unwinder,
            &modules,
            &sample.regs,
            &sample.stack,
            MAX_FRAMES,
            cache,
        )
    };
    let mut cache = UnwindCache::new();
    let serial: Vec<_> = samples.iter().map(|s| unwind_one(s, &mut cache)).collect();
    let parallel: Vec<_> = std::thread::scope(|scope| {
        let chunks: Vec<_> = samples
            .chunks(samples.len().div_ceil(4).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut cache = UnwindCache::new();
                    chunk
                        .iter()
                        .map(|s| unwind_one(s, &mut cache))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    assert_eq!(serial, parallel);
}

/// A module source that names its address space, so the unwinder's step cache is used.
struct KeyedModules<'a> {
    modules: support::RecordingModules<'a>,
    space: u64,
}

impl ModuleSource for KeyedModules<'_> {
    fn module_at(&self, avma: Avma) -> Option<ModuleRef> {
        self.modules.module_at(avma)
    }

    fn space_key(&self) -> Option<u64> {
        Some(self.space)
    }
}

/// Walks through the step cache (its compact rows, cold and warm) give exactly the walks
/// without it, on a real recording with signal frames, PLT stubs and libc without symbols.
#[test]
fn step_cache_gives_the_same_walks() {
    let Some(recording) = recorded_workload() else {
        return;
    };
    let samples = recording.workload_samples();
    let walk_all = |unwinder: &DwarfUnwinder, keyed: bool, cache: &mut UnwindCache| -> Vec<_> {
        samples
            .iter()
            .map(|sample| {
                let plain = recording.modules_of(sample.pid);
                let keyed_modules;
                let modules: &dyn ModuleSource = if keyed {
                    keyed_modules = KeyedModules {
                        modules: plain,
                        space: u64::from(sample.pid),
                    };
                    &keyed_modules
                } else {
                    &plain
                };
                walk_with(
                    unwinder,
                    modules,
                    &sample.regs,
                    &sample.stack,
                    MAX_FRAMES,
                    cache,
                )
            })
            .collect()
    };
    let plain = walk_all(&DwarfUnwinder::new(), false, &mut UnwindCache::new());
    // One worker's cache, cold then warm; then another worker's, on the same shared unwinder.
    let shared = DwarfUnwinder::new();
    let mut worker = UnwindCache::new();
    let cold = walk_all(&shared, true, &mut worker);
    let warm = walk_all(&shared, true, &mut worker);
    let other_worker = walk_all(&shared, true, &mut UnwindCache::new());
    assert!(plain.len() >= 50);
    assert_eq!(plain, cold);
    assert_eq!(plain, warm);
    assert_eq!(plain, other_worker);
}

/// A module whose `.eh_frame` is replaced by random bytes: every walk ends, bounded, no panic.
#[test]
fn random_bytes_as_eh_frame_never_panic() {
    let Some((original, symbols)) = workload_exe() else {
        return;
    };
    let range = support::section_file_range(&original, ".eh_frame").unwrap();
    let c_start = symbols.address_of("c").unwrap();
    let mut rng = XorShift::new(0x5eed);
    for round in 0..40 {
        let mut corrupted = original.clone();
        for byte in &mut corrupted[range.clone()] {
            *byte = rng.next() as u8;
        }
        let modules = SyntheticModule {
            key: round,
            start: 0x5555_0000_0000,
            file: Arc::new(corrupted),
        };
        let unwinder = DwarfUnwinder::new();
        for _ in 0..50 {
            let stack_words: Vec<u64> = (0..128).map(|_| rng.next()).collect();
            let bytes: Vec<u8> = stack_words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let sp = 0x7ffd_0000_0000;
            let pc = modules.start + c_start + rng.next() % 64;
            let regs = UserRegs::new(Arch::X86_64, pc, sp).with_dwarf_register(6, rng.next());
            let unwound = walk(&unwinder, &modules, &regs, &bytes, 64);
            assert!(!unwound.frames.is_empty() && unwound.frames.len() <= 64);
        }
    }
}

/// Garbage stacks with the real CFI: bounded, never panics, and the leaf is always reported.
#[test]
fn garbage_stacks_with_real_cfi_are_bounded() {
    let Some((file, symbols)) = workload_exe() else {
        return;
    };
    let modules = SyntheticModule {
        key: 1,
        start: 0x5555_0000_0000,
        file: Arc::new(file),
    };
    let unwinder = DwarfUnwinder::new();
    let mut rng = XorShift::new(42);
    let functions: Vec<u64> = ["a", "b", "c", "main", "compare", "qsort_path"]
        .iter()
        .map(|name| symbols.address_of(name).unwrap())
        .collect();
    let sp = 0x7ffd_0000_1000u64;
    for i in 0..5000u64 {
        let words: Vec<u64> = (0..256)
            .map(|_| {
                let word = rng.next();
                match word % 4 {
                    // Plausible return addresses into the module and plausible stack pointers.
                    0 => {
                        modules.start + functions[(word as usize / 4) % functions.len()] + word % 40
                    }
                    1 => sp + (word % 4096) / 8 * 8,
                    _ => word,
                }
            })
            .collect();
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let stack = StackBytes {
            start: sp,
            bytes: &bytes,
        };
        let pc = modules.start + functions[i as usize % functions.len()] + rng.next() % 30;
        let regs = UserRegs::new(Arch::X86_64, pc, sp).with_dwarf_register(6, words[0]);
        let max = 1 + (i as usize % 40);
        let unwound = walk(&unwinder, &modules, &regs, &bytes, max);
        assert!(unwound.frames.len() <= max);
        assert_eq!(
            unwound.frames[0],
            FrameAddress::InstructionPointer(Avma(pc))
        );
        if unwound.end == UnwindEnd::DepthLimit {
            assert_eq!(unwound.frames.len(), max);
        }
        let fp = unwind_frame_pointers(Arch::X86_64, &regs, &stack, max);
        assert!(fp.frames.len() <= max);
    }
    assert_eq!(unwinder.cached_modules(), 1);
}

/// A frame-pointer function whose CFA is rbp+16: with rbp below sp the CFA does not advance,
/// and the walk stops as a loop instead of going down the stack.
#[test]
fn cfa_below_sp_stops_as_loop() {
    let Some((file, symbols)) = workload_exe() else {
        return;
    };
    let (start, size) = symbols.range_of("with_frame_pointer").unwrap();
    let modules = SyntheticModule {
        key: 7,
        start: 0x5555_0000_0000,
        file: Arc::new(file),
    };
    let sp = 0x7ffd_0000_1000u64;
    let bytes = vec![0u8; 512];
    let unwinder = DwarfUnwinder::new();
    // Somewhere past the prologue (push rbp; mov rbp, rsp) but before the epilogue.
    let pc = modules.start + start + size / 2;
    let regs = UserRegs::new(Arch::X86_64, pc, sp).with_dwarf_register(6, sp - 64);
    let unwound = walk(&unwinder, &modules, &regs, &bytes, 64);
    assert_eq!(unwound.end, UnwindEnd::Loop, "{unwound:?}");
    assert_eq!(unwound.frames.len(), 1);
}

/// PLT stubs of the real workload (`.plt` has glibc/binutils' CFA expression
/// `rsp + 8 + ((rip & 15) >= 11) * 8`): the caller is found before and after the stub's push.
#[test]
fn plt_stub_cfa_expression() {
    let Some((file, symbols)) = workload_exe() else {
        return;
    };
    let plt = support::section_file_range(&file, ".plt").unwrap();
    let caller = symbols.address_of("qsort_path").unwrap() + 12;
    // PIE: the whole file at 0x5555_0000_0000, svma = file offset for .plt (see readelf -S).
    let base = 0x5555_0000_0000u64;
    let plain = Arc::new(file);
    // Rename .eh_frame/.eh_frame_hdr so the module has no CFI at all: the PLT rule applies.
    let mut renamed = (*plain).clone();
    let shstrtab = support::section_file_range(&renamed, ".shstrtab").unwrap();
    let names = &mut renamed[shstrtab];
    for at in 0..names.len().saturating_sub(9) {
        if &names[at..at + 9] == b".eh_frame" {
            names[at + 1] = b'x';
        }
    }
    let stripped = Arc::new(renamed);
    let sp = 0x7ffd_0000_1000u64;
    let unwinder = DwarfUnwinder::new();
    for (key, file) in [(1, plain), (2, stripped)] {
        let modules = SyntheticModule {
            key,
            start: base,
            file,
        };
        // First stub entry (PLT0 is 16 bytes): `jmp *GOT` at +0, `push n` at +6, `jmp PLT0` at +11.
        let entry = base + plt.start as u64 + 16;
        for (pc, words) in [
            (entry, vec![base + caller, 0]),
            (entry + 6, vec![base + caller, 0]),
        ] {
            let bytes = stack_bytes(&words);
            let regs = UserRegs::new(Arch::X86_64, pc, sp);
            let unwound = walk(&unwinder, &modules, &regs, &bytes, 2);
            assert_eq!(
                unwound.frames,
                [
                    FrameAddress::InstructionPointer(Avma(pc)),
                    FrameAddress::ReturnAddress(Avma(base + caller))
                ],
                "module {key}, pc {pc:#x}"
            );
        }
        // After the push (rip & 15 >= 11), only the CFI knows the return address moved up.
        if key == 1 {
            let pc = entry + 11;
            let bytes = stack_bytes(&[7, base + caller, 0]);
            let regs = UserRegs::new(Arch::X86_64, pc, sp);
            let unwound = walk(&unwinder, &modules, &regs, &bytes, 2);
            assert_eq!(
                unwound.frames[1],
                FrameAddress::ReturnAddress(Avma(base + caller))
            );
        } else {
            // Without CFI, a pc outside the PLT in a non-leaf position has no unwind info.
            let text_pc = base + symbols.address_of("b").unwrap() + 4;
            let regs = UserRegs::new(Arch::X86_64, text_pc, sp);
            let bytes = stack_bytes(&[0; 4]);
            let unwound = walk(&unwinder, &modules, &regs, &bytes, 8);
            assert_eq!(
                unwound.end,
                UnwindEnd::NoUnwindInfo {
                    module_key: Some(2)
                }
            );
        }
    }
}

const TEXT: u64 = 0x1000;
const EH_FRAME: u64 = 0x3000;
const BASE: u64 = 0x40_0000;
const SP: u64 = 0x7fff_f000;

fn x86_cie() -> CommonInformationEntry {
    let mut cie = CommonInformationEntry::new(cfi_encoding(), 1, -8, X86_64::RA);
    cie.add_instruction(CallFrameInstruction::Cfa(X86_64::RSP, 8));
    cie.add_instruction(CallFrameInstruction::Offset(X86_64::RA, -8));
    cie
}

fn fde(start: u64, len: u32, instructions: Vec<CallFrameInstruction>) -> FrameDescriptionEntry {
    let mut fde = FrameDescriptionEntry::new(gimli::write::Address::Constant(start), len);
    for instruction in instructions {
        fde.add_instruction(0, instruction);
    }
    fde
}

/// A module with functions at `TEXT + 0x100 * i`, each 0x100 long, with the given CFI.
fn module_with(
    machine: u16,
    cie: CommonInformationEntry,
    functions: Vec<Vec<CallFrameInstruction>>,
    in_debug_frame: bool,
    extra: Vec<SyntheticSection>,
) -> SyntheticModule {
    let mut table = FrameTable::default();
    let cie = table.add_cie(cie);
    for (index, instructions) in functions.into_iter().enumerate() {
        table.add_fde(cie, fde(TEXT + 0x100 * index as u64, 0x100, instructions));
    }
    let mut sections = vec![SyntheticSection {
        name: ".text",
        address: TEXT,
        executable: true,
        bytes: vec![0xcc; 0x1000],
    }];
    if in_debug_frame {
        sections.push(SyntheticSection {
            name: ".debug_frame",
            address: EH_FRAME,
            executable: false,
            bytes: debug_frame_bytes(&table),
        });
    } else {
        sections.push(SyntheticSection {
            name: ".eh_frame",
            address: EH_FRAME,
            executable: false,
            bytes: eh_frame_bytes(&table),
        });
    }
    sections.extend(extra);
    SyntheticModule {
        key: 1,
        start: BASE,
        file: Arc::new(synthetic_elf(machine, &sections)),
    }
}

fn function(index: u64) -> u64 {
    BASE + TEXT + 0x100 * index
}

/// aarch64: a frameless leaf (return address in lr), a function that saved x29/x30 with a
/// PAC-signed return address, and a root whose x30 is undefined.
#[test]
fn aarch64_leaf_lr_saved_lr_and_root() {
    let lr = Register(30);
    let sp = Register(31);
    let mut cie = CommonInformationEntry::new(cfi_encoding(), 4, -8, lr);
    cie.add_instruction(CallFrameInstruction::Cfa(sp, 0));
    let modules = module_with(
        EM_AARCH64,
        cie,
        vec![
            vec![],
            vec![
                CallFrameInstruction::CfaOffset(16),
                CallFrameInstruction::Offset(Register(29), -16),
                CallFrameInstruction::Offset(lr, -8),
                CallFrameInstruction::NegateRaState,
            ],
            vec![CallFrameInstruction::Undefined(lr)],
        ],
        false,
        vec![],
    );
    let signed = (function(2) + 0x30) | 0x002a_0000_0000_0000;
    let bytes = stack_bytes(&[SP + 0x100, signed, 0, 0]);
    let regs = UserRegs::new(Arch::Aarch64, function(0) + 0x10, SP)
        .with_dwarf_register(30, function(1) + 0x20)
        .with_dwarf_register(29, SP + 0x40);
    let unwinder = DwarfUnwinder::new();
    let unwound = walk(&unwinder, &modules, &regs, &bytes, 16);
    assert_eq!(
        unwound.frames,
        [
            FrameAddress::InstructionPointer(Avma(function(0) + 0x10)),
            FrameAddress::ReturnAddress(Avma(function(1) + 0x20)),
            FrameAddress::ReturnAddress(Avma(function(2) + 0x30)),
        ]
    );
    assert_eq!(unwound.end, UnwindEnd::ReachedRoot);

    // A leaf whose lr points back into itself: sp never moves → loop, not a hang.
    let regs = UserRegs::new(Arch::Aarch64, function(0) + 0x10, SP)
        .with_dwarf_register(30, function(0) + 0x40);
    let unwound = walk(&unwinder, &modules, &regs, &bytes, 1000);
    assert_eq!(unwound.end, UnwindEnd::Loop);
    assert!(unwound.frames.len() <= 3);
}

/// x86_64 rules: CFA by expression, `.debug_frame` only, a CFA that does not advance, and a
/// copied stack too small for the return address.
#[test]
fn x86_64_cfa_rules_and_endings() {
    let mut cfa_expression = gimli::write::Expression::new();
    cfa_expression.op_breg(X86_64::RSP, 16);
    let functions = vec![
        // 0: CFA = rsp + 16 (by expression), RA at CFA - 8, rbx at CFA - 16.
        vec![
            CallFrameInstruction::CfaExpression(cfa_expression),
            CallFrameInstruction::Offset(X86_64::RBX, -16),
        ],
        // 1: the root.
        vec![CallFrameInstruction::Undefined(X86_64::RA)],
        // 2: CFA = rsp + 0: never advances.
        vec![CallFrameInstruction::CfaOffset(0)],
    ];
    for in_debug_frame in [false, true] {
        let modules = module_with(
            EM_X86_64,
            x86_cie(),
            functions.clone(),
            in_debug_frame,
            vec![],
        );
        let unwinder = DwarfUnwinder::new();
        let bytes = stack_bytes(&[0x1234, function(1) + 5, 0]);
        let regs = UserRegs::new(Arch::X86_64, function(0) + 3, SP);
        let unwound = walk(&unwinder, &modules, &regs, &bytes, 16);
        assert_eq!(
            unwound.frames,
            [
                FrameAddress::InstructionPointer(Avma(function(0) + 3)),
                FrameAddress::ReturnAddress(Avma(function(1) + 5)),
            ],
            "debug_frame: {in_debug_frame}"
        );
        assert_eq!(unwound.end, UnwindEnd::ReachedRoot);

        let regs = UserRegs::new(Arch::X86_64, function(2) + 3, SP);
        let unwound = walk(&unwinder, &modules, &regs, &bytes, 16);
        assert_eq!(unwound.end, UnwindEnd::Loop);

        // Only 8 bytes copied: the return address at CFA - 8 = SP + 8 is outside.
        let regs = UserRegs::new(Arch::X86_64, function(0) + 3, SP);
        let unwound = walk(&unwinder, &modules, &regs, &bytes[..8], 16);
        assert_eq!(unwound.end, UnwindEnd::StackExhausted);
        assert_eq!(unwound.frames.len(), 1);
    }
}

/// A synthetic module whose `.eh_frame` is random bytes: bounded, never panics.
#[test]
fn synthetic_random_eh_frame_is_bounded() {
    let mut rng = XorShift::new(99);
    for key in 0..200u64 {
        let len = 8 + (rng.next() % 512) as usize;
        let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let machine = if key % 2 == 0 { EM_X86_64 } else { EM_AARCH64 };
        let arch = if key % 2 == 0 {
            Arch::X86_64
        } else {
            Arch::Aarch64
        };
        let file = synthetic_elf(
            machine,
            &[
                SyntheticSection {
                    name: ".text",
                    address: TEXT,
                    executable: true,
                    bytes: vec![0; 0x1000],
                },
                SyntheticSection {
                    name: ".eh_frame",
                    address: EH_FRAME,
                    executable: false,
                    bytes: garbage.clone(),
                },
                SyntheticSection {
                    name: ".debug_frame",
                    address: EH_FRAME + 0x1000,
                    executable: false,
                    bytes: garbage,
                },
            ],
        );
        let modules = SyntheticModule {
            key,
            start: BASE,
            file: Arc::new(file),
        };
        let words: Vec<u64> = (0..64)
            .map(|_| match rng.next() % 3 {
                0 => function(rng.next() % 16),
                1 => SP + rng.next() % 512,
                _ => rng.next(),
            })
            .collect();
        let bytes = stack_bytes(&words);
        let regs = UserRegs::new(arch, function(rng.next() % 16), SP)
            .with_dwarf_register(6, words[1])
            .with_dwarf_register(29, words[2])
            .with_dwarf_register(30, words[3]);
        let unwound = walk(&DwarfUnwinder::new(), &modules, &regs, &bytes, 32);
        assert!(!unwound.frames.is_empty() && unwound.frames.len() <= 32);
    }
}

/// The vdso is handled like any module when the caller hands over its image: this process's
/// own `[vdso]` (read from `/proc/self/mem`), unwound from the entry of `__vdso_clock_gettime`.
#[test]
fn vdso_image_is_unwound_like_a_module() {
    use std::io::{Read, Seek, SeekFrom};
    if Arch::host() != Some(Arch::X86_64) {
        return;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let Some(line) = maps.lines().find(|line| line.ends_with("[vdso]")) else {
        eprintln!("skipping: no [vdso] mapping");
        return;
    };
    let range = line.split_whitespace().next().unwrap();
    let (start, end) = range.split_once('-').unwrap();
    let start = u64::from_str_radix(start, 16).unwrap();
    let end = u64::from_str_radix(end, 16).unwrap();
    let mut image = vec![0u8; (end - start) as usize];
    let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
    mem.seek(SeekFrom::Start(start)).unwrap();
    mem.read_exact(&mut image).unwrap();

    let elf = object::File::parse(&*image).unwrap();
    let entry = object::Object::dynamic_symbols(&elf)
        .find(|symbol| object::ObjectSymbol::name(symbol) == Ok("__vdso_clock_gettime"))
        .map(|symbol| object::ObjectSymbol::address(&symbol))
        .unwrap();
    let modules = SyntheticModule {
        key: 1,
        start,
        file: Arc::new(image),
    };
    let sp = 0x7ffd_0000_1000u64;
    let caller = 0x5555_0000_1234u64;
    let bytes = stack_bytes(&[caller, 0]);
    let pc = start + entry;
    let regs = UserRegs::new(Arch::X86_64, pc, sp);
    let unwound = walk(&DwarfUnwinder::new(), &modules, &regs, &bytes, 2);
    assert_eq!(
        unwound.frames,
        [
            FrameAddress::InstructionPointer(Avma(pc)),
            FrameAddress::ReturnAddress(Avma(caller))
        ]
    );
}

/// `module` with its ELF entry point at `svma`.
fn with_entry(mut module: SyntheticModule, svma: u64) -> SyntheticModule {
    let mut file = (*module.file).clone();
    file[24..32].copy_from_slice(&svma.to_le_bytes()); // e_entry
    module.file = Arc::new(file);
    module
}

/// A return slot that holds garbage (no code of the process there: a precise event's
/// registers ahead of its stack copy) ends the walk with no frame made up from it, after CFI
/// and after the frame-pointer fallback of a leaf without CFI.
// See: issue #10 point 10
#[test]
fn garbage_return_slot_ends_the_walk_without_a_frame() {
    let modules = module_with(EM_X86_64, x86_cie(), vec![vec![], vec![]], false, vec![]);
    let unwinder = DwarfUnwinder::new();
    let leaf = function(0) + 3;
    for garbage in [2, 0x1234, 0x7fff_dead_beef, SP + 0x40, BASE + 0x10_0000] {
        // Function 0's CFI: the return address is at CFA - 8 = SP.
        let bytes = stack_bytes(&[garbage, function(1) + 5, 0, 0]);
        let regs = UserRegs::new(Arch::X86_64, leaf, SP);
        let unwound = walk(&unwinder, &modules, &regs, &bytes, 16);
        assert_eq!(
            unwound.frames,
            [FrameAddress::InstructionPointer(Avma(leaf))],
            "{garbage:#x}"
        );
        assert_eq!(unwound.end, UnwindEnd::ReturnAddressOutsideCode);
        assert!(unwound.end.is_truncated());

        // A leaf without CFI: its frame record [saved rbp, return address] at SP + 16.
        let no_cfi = BASE + TEXT + 0x800;
        let bytes = stack_bytes(&[0, 0, SP + 0x100, garbage]);
        let regs = UserRegs::new(Arch::X86_64, no_cfi, SP).with_dwarf_register(6, SP + 16);
        let unwound = walk(&unwinder, &modules, &regs, &bytes, 16);
        assert_eq!(
            unwound.frames,
            [FrameAddress::InstructionPointer(Avma(no_cfi))],
            "{garbage:#x}"
        );
        assert_eq!(unwound.end, UnwindEnd::ReturnAddressOutsideCode);
    }
    // A real return address is kept, and the walk goes on to the root.
    let bytes = stack_bytes(&[function(1) + 5, 0]);
    let regs = UserRegs::new(Arch::X86_64, leaf, SP);
    let unwound = walk(&unwinder, &modules, &regs, &bytes, 16);
    assert_eq!(
        unwound.frames,
        [
            FrameAddress::InstructionPointer(Avma(leaf)),
            FrameAddress::ReturnAddress(Avma(function(1) + 5))
        ]
    );
    assert_eq!(unwound.end, UnwindEnd::ReachedRoot);
}

/// A walk ends in the code at the module's ELF entry point, whatever its CFI says: a `_start`
/// whose CFI does not mark the return address undefined, and an entry stub without CFI (ld.so's
/// `_start`). The word above them (`argc`) is not a return address.
// See: issue #10 point 10
#[test]
fn walks_end_at_the_entry_point() {
    let module = || module_with(EM_X86_64, x86_cie(), vec![vec![], vec![]], false, vec![]);
    let leaf = function(0) + 3;
    let argc = 2;
    // Function 1 as `_start`, with ordinary CFI; a stub at TEXT + 0x300 with none.
    for (entry, caller) in [
        (TEXT + 0x100, function(1) + 5),
        (TEXT + 0x300, function(3) + 5),
    ] {
        // A fresh unwinder per module: it caches modules by key.
        let unwinder = DwarfUnwinder::new();
        let bytes = stack_bytes(&[caller, argc, 0, 0]);
        let regs = UserRegs::new(Arch::X86_64, leaf, SP);
        let expected = [
            FrameAddress::InstructionPointer(Avma(leaf)),
            FrameAddress::ReturnAddress(Avma(caller)),
        ];
        let unwound = walk(&unwinder, &with_entry(module(), entry), &regs, &bytes, 16);
        assert_eq!(unwound.frames, expected, "entry {entry:#x}");
        assert_eq!(unwound.end, UnwindEnd::ReachedEntryPoint);
        assert!(!unwound.end.is_truncated());
        // The same module without an entry point: argc would be the next return address.
        let unwound = walk(&DwarfUnwinder::new(), &module(), &regs, &bytes, 16);
        assert_eq!(unwound.frames, expected);
        assert_ne!(unwound.end, UnwindEnd::ReachedEntryPoint);
        // A sample in the entry code itself.
        let regs = UserRegs::new(Arch::X86_64, BASE + entry, SP);
        let unwound = walk(&unwinder, &with_entry(module(), entry), &regs, &bytes, 16);
        assert_eq!(
            unwound.frames,
            [FrameAddress::InstructionPointer(Avma(BASE + entry))]
        );
        assert_eq!(unwound.end, UnwindEnd::ReachedEntryPoint);
    }
}
