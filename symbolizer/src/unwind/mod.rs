//! Stack unwinding: user registers + a copy of the user stack + the modules' CFI → return addresses.
//!
//! This module owns turning one sample's `PERF_SAMPLE_REGS_USER` and `PERF_SAMPLE_STACK_USER`
//! into a list of [`FrameAddress`]es, leaf first. Two walkers are offered:
//!
//! - [`DwarfUnwinder`] follows the DWARF call frame information of the module that contains each
//!   pc: `.eh_frame`, then `.debug_frame`, each indexed once per module into a sorted FDE table
//!   (what `.eh_frame_hdr` holds, but also built when that header is missing). This is what
//!   `perf record --call-graph dwarf` needs: most distribution libraries and release builds have
//!   no frame pointers. It handles CFA and register expressions (glibc's PLT and `__restore_rt`),
//!   signal frames (the `S` augmentation: the interrupted pc is exact), PLT stubs without CFI,
//!   aarch64 return addresses in lr and PAC-signed ones, and falls back to the frame pointer for
//!   a leaf without CFI. It stops at the code of a module's ELF entry point (`_start`, ld.so's
//!   `_start`), and at a return address outside the process's code rather than show it.
//! - [`unwind_frame_pointers`] follows the frame-pointer chain inside the copied stack.
//!
//! [`join_with_fp_chain`] continues a DWARF walk that ran out of copied stack with the user part of
//! the sample's `PERF_SAMPLE_CALLCHAIN`, which the caller takes out of the raw callchain: this
//! crate knows no perf.data format constants (kprof uses `kprof_perfdata::kinds::context`).
//!
//! Layout: `types` (the vocabulary above: [`Arch`], [`StackBytes`], [`ModuleSource`],
//! [`FrameAddress`], [`Unwound`], [`UnwindEnd`]), `regs` ([`UserRegs`]), `module` (a module's
//! CFI index), `dwarf`, `fp`; this module only re-exports them (no import cycle between them).
//!
//! # What the caller provides
//!
//! The caller implements [`ModuleSource`]: given an address in the sampled process, it returns the
//! module mapped there (a cache key, where its mapping begins and its file offset, and the ELF
//! bytes). The unwinder never opens files and never knows about processes.
//!
//! Per sample: `UserRegs::from_perf(arch, attr.sample_regs_user, regs)` (skip samples whose
//! regs ABI is `PERF_SAMPLE_REGS_ABI_NONE`), `StackBytes { start: regs.sp(), bytes:
//! &stack[..dyn_size] }`, then [`DwarfUnwinder::unwind`] with one unwinder shared by all threads
//! and the calling worker's own [`UnwindCache`], optionally [`join_with_fp_chain`] with the user part of the sample's callchain, and symbolize each frame at
//! [`FrameAddress::lookup_address`]. [`ModuleRef::key`] must name file contents (for example
//! the module id of a path + build-id), not a process, so each file is parsed once. The vdso is
//! a module like any other: hand over its image (pgoff 0) under its own key.
//!
//! # Design constraints
//!
//! - What is learned once for all walks is shared, what a walk scribbles on is the caller's (as
//!   gimli's `UnwindContext` and framehop's caches are owned by their caller): the
//!   [`DwarfUnwinder`] is `Send + Sync` and used from many threads at once, each module's
//!   unwind index is parsed once per [`ModuleRef::key`] for all of them, and nothing per
//!   sample parses a file; each worker passes its own [`UnwindCache`] (no locks, no
//!   thread-locals on the walk).
//! - Evaluated CFI rows are cached per (module key, address) in the unwinder's sharded, bounded
//!   cache, so a hot pc costs a hash lookup after its first walk. When the caller names the
//!   address space ([`ModuleSource::space_key`]), the worker's [`UnwindCache`] also keeps a step
//!   cache keyed by (space, pc) that skips the module lookup and holds the row in a compact
//!   form (one cache line, same result): profiles walk the same pcs over and over.
//! - Every input is untrusted: stack bytes, register values and CFI may be garbage. Each walk is
//!   bounded by `max_frames`, requires the stack pointer to advance, and ends with an
//!   [`UnwindEnd`] that says why it stopped. Nothing here panics.
//!
//! # What it won't do
//!
//! - Read memory other than the copied stack (no `/proc/PID/mem`), or unwind 32-bit processes
//!   (`PERF_SAMPLE_REGS_ABI_32`); only x86_64 and aarch64 little-endian 64-bit processes.
//! - Find CFI in separate debug files: `.debug_frame` is used only when it is in the module.
//!
//! # Example
//!
//! ```
//! use kprof_symbolizer::Avma;
//! use kprof_symbolizer::unwind::{
//!     unwind_frame_pointers, Arch, FrameAddress, StackBytes, UnwindEnd, UserRegs,
//! };
//!
//! // A stack at 0x1000 holding one frame record: [saved fp = 0, return address = 0x4005].
//! let mut bytes = vec![0u8; 32];
//! bytes[16..24].copy_from_slice(&0u64.to_le_bytes());
//! bytes[24..32].copy_from_slice(&0x4005u64.to_le_bytes());
//! let stack = StackBytes { start: 0x1000, bytes: &bytes };
//! // x86_64 perf registers BP (6), SP (7) and IP (8), in mask-bit order.
//! let mask = (1 << 6) | (1 << 7) | (1 << 8);
//! let regs = UserRegs::from_perf(Arch::X86_64, mask, &[0x1010, 0x1000, 0x4100]).unwrap();
//! let unwound = unwind_frame_pointers(Arch::X86_64, &regs, &stack, 64);
//! assert_eq!(
//!     unwound.frames,
//!     [FrameAddress::InstructionPointer(Avma(0x4100)), FrameAddress::ReturnAddress(Avma(0x4005))]
//! );
//! assert_eq!(unwound.end, UnwindEnd::ReachedRoot);
//! ```

mod dwarf;
mod fp;
mod module;
mod regs;
mod types;

pub use dwarf::{DwarfUnwinder, UnwindCache};
pub use fp::{join_with_fp_chain, unwind_frame_pointers};
pub use regs::UserRegs;
pub use types::{Arch, FrameAddress, ModuleRef, ModuleSource, StackBytes, UnwindEnd, Unwound};
