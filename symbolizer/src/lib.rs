//! kprof-symbolizer: turns sampled addresses of recorded processes into function names.
//!
//! # What it owns
//! - **Address spaces** ([`AddressSpaces`]): replays the side-band records of a recording
//!   (mmap, comm, fork, exit) and locates an [`Avma`] in a process or the kernel as a
//!   [`Module`] plus [`ModuleOffset`].
//! - **Symbolization** ([`Symbolizer`]): ELF `.symtab` + `.dynsym` (through `object` over a
//!   memory mapping), DWARF lines and inlined frames (`addr2line`, with separate debug files
//!   found by build-id or `.gnu_debuglink`), `/proc/kallsyms`, the running kernel's `[vdso]`,
//!   and JIT `/tmp/perf-PID.map` files; Rust and C++ demangling.
//! - **Diagnosis** ([`Symbolizer::report`]): per module, how many addresses resolved and
//!   why the others did not, with the fix ([`Problem`]'s `Display`).
//! - Stack unwinding lives in [`unwind`].
//!
//! # What the caller provides
//! Plain values decoded from perf.data records (this crate does not depend on
//! kprof-perfdata), in time order, and whether the recording's kernel is the running one
//! ([`SymbolizerOptions::kernel_matches`]).
//!
//! Return addresses from callchains should be passed as `address - 1` (except the leaf IP),
//! so that lines and inlined frames describe the call instruction, not the one after it.
//! Profiles repeat the same addresses a lot: symbolize each distinct `(ModuleId, ModuleOffset)`
//! once. On a recording with kernel samples, [`Symbolizer::preload_kernel_symbols`] on a
//! spare thread hides the tens of milliseconds the kernel takes to produce `/proc/kallsyms`.
//!
//! # What it won't do
//! - Fetch debug files from the network (debuginfod) or read split DWARF (`.dwo`).
//! - Trust paths from the recording: it opens only regular files, and a missing or corrupt
//!   file becomes a [`Problem`], never an error or a panic.
//! - Symbolize kernel addresses of another kernel than the running one, unless perf's build-id
//!   cache holds that kernel's symbols ([`SymbolizerOptions::kernel_build_id`]) or the caller
//!   names a kallsyms file for it ([`SymbolizerOptions::kallsyms`]).
//!
//! # Design constraints
//! Lookups run once per callchain entry (millions per profile), so locating is a binary search
//! in a sorted `Vec` per process, and each module is loaded lazily, once, on first use (even
//! with many threads calling [`Symbolizer::symbolize`]); DWARF is parsed only when lines or
//! inlined frames are requested, and then only the compilation units that the addresses fall
//! in (found through `.debug_aranges`), with compressed debug sections inflated only as far as
//! those units; kallsyms is read only when a kernel address is symbolized.
//!
//! # Example
//! ```
//! use kprof_symbolizer::{AddressSpaces, Avma, Location, MappingInfo, Symbolizer, SymbolizerOptions};
//!
//! let mut spaces = AddressSpaces::new();
//! spaces.comm(42, 42, b"app", false);
//! spaces.mmap(42, MappingInfo {
//!     start: Avma(0x40_0000),
//!     len: 0x1000,
//!     pgoff: 0,
//!     path: b"/nonexistent/app",
//!     build_id: None,
//!     kernel: false,
//! });
//! let symbolizer = Symbolizer::new(SymbolizerOptions::default());
//! let Location::Module { module, offset } = spaces.locate(42, Avma(0x40_0123), false) else {
//!     panic!("mapped above");
//! };
//! let result = symbolizer.symbolize(spaces.module(module), offset);
//! assert_eq!(&*result.frames[0].function, "app+0x123");
//! assert_eq!(symbolizer.report()[0].problems[0].to_string(),
//!            "file not found (profile on this machine or pass --symfs)");
//! ```
#![deny(missing_docs)]

mod cache;
pub mod cap;
mod debuginfo;
pub mod demangle;
mod elf;
pub mod error;
mod inline_names;
pub mod kallsyms;
mod mapped;
pub mod perfmap;
mod plt;
pub mod process;
mod report;
mod section_cache;
mod sections;
mod symbolize;
mod units;
pub mod unwind;

pub use elf::{Svma, build_ids_match};
pub use error::{Error, Result};
pub use mapped::SharedBytes;
pub use process::{
    AddressSpaces, Avma, Location, MappingInfo, Module, ModuleId, ModuleKind, ModuleOffset,
};
pub use symbolize::{
    ModuleReport, Problem, SECTION_CACHE_MAX_BYTES, Status, SymFrame, SymbolKey, Symbolized,
    Symbolizer, SymbolizerOptions,
};

#[cfg(test)]
mod tests;
