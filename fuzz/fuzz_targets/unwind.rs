//! Fuzz target: DWARF unwinding of arbitrary input: call frame information (`.eh_frame` or
//! `.debug_frame`, in a well-formed ELF around it) or a whole arbitrary ELF file, with
//! arbitrary registers and stack bytes, on x86_64 and aarch64, cold and through the step
//! cache. Any panic, hang or runaway allocation is a bug; every walk must end.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../symbolizer/tests/unwind_support/mod.rs"]
mod support;

use std::sync::Arc;

use kprof_symbolizer::unwind::{
    Arch, DwarfUnwinder, StackBytes, UnwindCache, UserRegs, join_with_fp_chain,
    unwind_frame_pointers,
};
use libfuzzer_sys::fuzz_target;
use support::{EM_AARCH64, EM_X86_64, SyntheticModule, SyntheticSection, synthetic_elf};

/// Where the module is mapped; its code section starts at this address + 0x1000.
const BASE: u64 = 0x40_0000;
const MAX_FRAMES: usize = 64;

/// A module source with an address-space key, so walks go through the step cache.
struct Keyed<'a>(&'a SyntheticModule);

impl kprof_symbolizer::unwind::ModuleSource for Keyed<'_> {
    fn module_at(&self, avma: kprof_symbolizer::Avma) -> Option<kprof_symbolizer::unwind::ModuleRef> {
        self.0.module_at(avma)
    }
    fn space_key(&self) -> Option<u64> {
        Some(1)
    }
    fn is_code(&self, avma: kprof_symbolizer::Avma) -> bool {
        self.0.is_code(avma)
    }
}

fuzz_target!(|data: &[u8]| {
    // Header: mode byte, 8 register words (pc offset, sp, then 6 more registers), 256 bytes of
    // stack; the rest is the CFI section or the whole file.
    const HEAD: usize = 1 + 8 * 8 + 256;
    let Some((head, rest)) = data.split_at_checked(HEAD) else {
        return;
    };
    let mode = head[0];
    let word = |i: usize| u64::from_le_bytes(head[1 + 8 * i..9 + 8 * i].try_into().unwrap());
    let stack_bytes = &head[HEAD - 256..];
    let arch = if mode & 1 == 0 { Arch::X86_64 } else { Arch::Aarch64 };
    let machine = if arch == Arch::X86_64 { EM_X86_64 } else { EM_AARCH64 };
    let file = if mode & 2 != 0 {
        // The whole file is the fuzzer's.
        rest.to_vec()
    } else {
        let name = if mode & 4 == 0 { ".eh_frame" } else { ".debug_frame" };
        synthetic_elf(
            machine,
            &[
                SyntheticSection {
                    name: ".text",
                    address: 0x1000,
                    executable: true,
                    bytes: vec![0x90; 0x1000],
                },
                SyntheticSection {
                    name,
                    address: 0x2000,
                    executable: false,
                    bytes: rest.to_vec(),
                },
            ],
        )
    };
    let module = SyntheticModule {
        key: 7,
        start: BASE,
        file: Arc::new(file),
    };
    // The pc lands in the code, or anywhere when the mode says so.
    let pc = if mode & 8 == 0 {
        BASE + 0x1000 + word(0) % 0x1000
    } else {
        word(0)
    };
    let sp = word(1);
    let mut regs = UserRegs::new(arch, pc, sp);
    for i in 2..8 {
        // DWARF registers 0..=31 cover both architectures' general registers.
        regs = regs.with_dwarf_register((word(i) >> 56) as u16 % 32, word(i));
    }
    let stack = StackBytes {
        start: sp,
        bytes: stack_bytes,
    };
    let unwinder = DwarfUnwinder::new();
    let mut cache = UnwindCache::new();
    let cold = unwinder.unwind(arch, &regs, &stack, &module, MAX_FRAMES, &mut cache);
    assert!(cold.frames.len() <= MAX_FRAMES);
    // Twice through the step cache (cold, then warm): the same walk as without it.
    for _ in 0..2 {
        let keyed = unwinder.unwind(arch, &regs, &stack, &Keyed(&module), MAX_FRAMES, &mut cache);
        assert_eq!(keyed, cold);
    }
    let callchain: Vec<u64> = stack_bytes
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
        .collect();
    let user_chain = kprof_perfdata::kinds::context::user_entries(&callchain);
    let joined = join_with_fp_chain(cold, user_chain, MAX_FRAMES);
    assert!(joined.frames.len() <= MAX_FRAMES);
    let fp = unwind_frame_pointers(arch, &regs, &stack, MAX_FRAMES);
    assert!(fp.frames.len() <= MAX_FRAMES);
});
