//! What symbolization gives back and reports: the frames of an address, whether it resolved,
//! and per module what went wrong with its fix. A leaf: the types every other module names,
//! depending on none of the modules that produce them.

use std::fmt;
use std::sync::Arc;

use crate::elf::hex;
use crate::process::ModuleKind;

/// One frame of a symbolized address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymFrame {
    /// The function name, or `module+0xoffset` when unresolved.
    pub function: Arc<str>,
    /// The source file, when lines were requested and known.
    pub file: Option<Arc<str>>,
    /// The source line, when lines were requested and known.
    pub line: Option<u32>,
    /// True for a frame inlined into the next one.
    pub inlined: bool,
}

/// Whether an address was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A function name was found.
    Resolved,
    /// No function name; the frame reads `module+0xoffset`.
    Unresolved(Problem),
}

/// The frames of one address, innermost (inlined callee) first; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbolized {
    /// The frames; the last one is the real (not inlined) function.
    pub frames: Vec<SymFrame>,
    /// Whether it was resolved.
    pub status: Status,
}

/// Why addresses of a module could not be (fully) symbolized; `Display` gives reason and fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file named in the recording does not exist here.
    FileNotFound,
    /// The file could not be opened or is not a regular file.
    Unreadable(Arc<str>),
    /// The file is not a parseable ELF file.
    ParseFailed(Arc<str>),
    /// The file has no `.symtab` (only `.dynsym`), and no debug file provides one.
    Stripped,
    /// Lines or inlined frames were requested but there is no DWARF.
    NoDebugInfo,
    /// The file on disk is not the one that was recorded.
    BuildIdMismatch {
        /// The build-id in the recording (hex).
        recorded: Arc<str>,
        /// The build-id of the file on disk (hex).
        found: Arc<str>,
    },
    /// `/proc/kallsyms` shows only zero addresses.
    KptrRestrict,
    /// The kallsyms file could not be read.
    KallsymsUnreadable(Arc<str>),
    /// The recording was made on another kernel (or one it does not name), so this machine's
    /// kernel symbols and vdso cannot be used.
    OtherKernel {
        /// The recording's kernel release, when known.
        osrelease: Option<Arc<str>>,
    },
    /// No `/tmp/perf-PID.map` for this JIT mapping.
    NoPerfMap,
    /// The perf map is a symlink, not ours or root's, or writable by others.
    UntrustedPerfMap,
    /// The offset lies outside every loadable segment of the file.
    OutsideSegments,
    /// The symbol table has no function covering the address.
    NoSymbol,
    /// A mapping kind that has no symbols (`[stack]`, `[heap]`, ...).
    NoSymbols,
}

impl Problem {
    /// A small stable number per variant, for de-duplication.
    pub(crate) fn code(&self) -> u32 {
        match self {
            Self::FileNotFound => 0,
            Self::Unreadable(_) => 1,
            Self::ParseFailed(_) => 2,
            Self::Stripped => 3,
            Self::NoDebugInfo => 4,
            Self::BuildIdMismatch { .. } => 5,
            Self::KptrRestrict => 6,
            Self::KallsymsUnreadable(_) => 7,
            Self::OtherKernel { .. } => 8,
            Self::NoPerfMap => 9,
            Self::UntrustedPerfMap => 10,
            Self::OutsideSegments => 11,
            Self::NoSymbol => 12,
            Self::NoSymbols => 13,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FileNotFound => f.write_str("file not found (profile on this machine or pass --symfs)"),
            Self::Unreadable(e) => write!(f, "file unreadable: {e}"),
            Self::ParseFailed(e) => write!(f, "not a valid ELF file: {e}"),
            Self::Stripped => f.write_str(
                "stripped (no .symtab, only .dynsym): install the -dbgsym/-debuginfo package or build without stripping",
            ),
            Self::NoDebugInfo => f.write_str("no debug info (install the -dbgsym package / build with -g)"),
            Self::BuildIdMismatch { recorded, found } => write!(
                f,
                "build-id mismatch: recorded {recorded} file has {found} (the file changed since recording)"
            ),
            Self::KptrRestrict => {
                f.write_str("kernel symbols hidden by kptr_restrict (set kernel.kptr_restrict=0, run as root)")
            }
            Self::KallsymsUnreadable(e) => write!(f, "kallsyms unreadable: {e}"),
            Self::OtherKernel { osrelease } => {
                match osrelease {
                    Some(release) => write!(f, "recorded on another kernel (osrelease {release})")?,
                    None => f.write_str("recorded on a kernel the file does not name")?,
                }
                f.write_str(
                    ": this machine's kernel symbols do not describe it; pass --kallsyms FILE \
                     (a copy of the recording machine's /proc/kallsyms) to name kernel frames",
                )
            }
            Self::NoPerfMap => f.write_str("no /tmp/perf-PID.map for this JIT code (enable the runtime's perf map)"),
            Self::UntrustedPerfMap => f.write_str(
                "perf map ignored: a symlink, not owned by root or you, or writable by others",
            ),
            Self::OutsideSegments => f.write_str("address outside the file's loadable segments"),
            Self::NoSymbol => f.write_str("no symbol covers the address"),
            Self::NoSymbols => f.write_str("mapping without symbols"),
        }
    }
}

/// Per-module summary of a symbolization run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleReport {
    /// The module's recorded path.
    pub path: Arc<str>,
    /// Its kind.
    pub kind: ModuleKind,
    /// The build-id the recording gave it, if any: what to fetch when the file is missing.
    pub build_id: Option<Vec<u8>>,
    /// Addresses resolved to a function.
    pub resolved: u64,
    /// Addresses left as `module+offset`.
    pub unresolved: u64,
    /// What went wrong, each with its fix in `Display`.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ModuleReport {
    /// `path: N resolved, M unresolved` followed by `; problem` for each problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} resolved, {} unresolved",
            self.path, self.resolved, self.unresolved
        )?;
        if let Some(id) = &self.build_id {
            write!(f, " (build-id {})", hex(id))?;
        }
        for p in &self.problems {
            write!(f, "; {p}")?;
        }
        Ok(())
    }
}
