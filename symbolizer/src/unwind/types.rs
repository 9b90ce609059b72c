//! The unwinder's vocabulary, shared by its walkers ([`super::DwarfUnwinder`],
//! [`super::unwind_frame_pointers`]) and its caller: the architecture, the copied stack, the
//! modules the caller provides ([`ModuleSource`]), and the frames and end of a walk.

use std::sync::Arc;

use crate::process::Avma;

/// The architecture of the sampled process, as named by the perf.data `ARCH` feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Arch {
    /// x86-64 (`uname -m` = `x86_64`).
    X86_64,
    /// 64-bit Arm (`uname -m` = `aarch64`, perf also writes `arm64`).
    Aarch64,
}

impl Arch {
    /// Parses the perf.data `ARCH` feature string (`uname -m`): `x86_64`, `aarch64` or `arm64`.
    pub fn from_perf_arch(name: &str) -> Option<Self> {
        match name.trim_end_matches('\0').trim() {
            "x86_64" | "amd64" => Some(Self::X86_64),
            "aarch64" | "arm64" => Some(Self::Aarch64),
            _ => None,
        }
    }

    /// The architecture this program was compiled for, if supported.
    pub fn host() -> Option<Self> {
        Self::from_perf_arch(std::env::consts::ARCH)
    }
}

/// One address of an unwound stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameAddress {
    /// An exact instruction address: the sampled pc, or the pc interrupted by a signal.
    /// Symbolize it as is.
    InstructionPointer(Avma),
    /// A return address: the instruction after a call. Symbolize `address - 1` to name the
    /// caller's call instruction (see [`FrameAddress::lookup_address`]).
    ReturnAddress(Avma),
}

impl FrameAddress {
    /// The raw address.
    pub fn address(self) -> Avma {
        match self {
            Self::InstructionPointer(address) | Self::ReturnAddress(address) => address,
        }
    }

    /// The address to symbolize: the address itself for an instruction pointer, one byte earlier
    /// for a return address (inside the call instruction).
    pub fn lookup_address(self) -> Avma {
        match self {
            Self::InstructionPointer(address) => address,
            Self::ReturnAddress(address) => Avma(address.0.saturating_sub(1)),
        }
    }
}

/// Why a walk stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnwindEnd {
    /// The stack is complete: the CFI says the return address is undefined (as for `_start`),
    /// the return address is 0, or the frame pointer is 0.
    ReachedRoot,
    /// The stack is complete: the pc is in the code at its module's ELF entry point (`_start`,
    /// ld.so's `_start` and `_dl_start_user`), where the process began.
    ReachedEntryPoint,
    /// Truncated: a read fell outside the copied stack (the copy was too small, or a pointer was
    /// garbage).
    StackExhausted,
    /// Truncated: no unwind information covers the pc. `module_key` is `None` when no module is
    /// mapped there at all.
    NoUnwindInfo {
        /// The [`ModuleRef::key`] of the module containing the pc, if any.
        module_key: Option<u64>,
    },
    /// Truncated: the call frame information could not be parsed or evaluated.
    BadCfi(String),
    /// Truncated: the stack pointer (or frame pointer) did not advance, so the walk would loop.
    Loop,
    /// Truncated: `max_frames` frames were produced.
    DepthLimit,
    /// Truncated: the return address read from the stack lies outside the process's code (no
    /// mapping holds it, or not an executable one), so the registers and the copied stack
    /// disagree, as when a precise event's registers are taken ahead of the stack copy. That
    /// address is not a frame and is left out.
    ReturnAddressOutsideCode,
    /// The DWARF walk ran out of copied stack and the outer frames were taken from the kernel's
    /// frame-pointer callchain (see [`join_with_fp_chain`](super::join_with_fp_chain)).
    JoinedFramePointerChain,
}

impl UnwindEnd {
    /// True when the walk stopped before the root of the stack.
    pub fn is_truncated(&self) -> bool {
        !matches!(
            self,
            Self::ReachedRoot | Self::ReachedEntryPoint | Self::JoinedFramePointerChain
        )
    }

    /// A short, stable name for per-reason counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReachedRoot => "reached root",
            Self::ReachedEntryPoint => "reached the entry point",
            Self::StackExhausted => "stack exhausted",
            Self::NoUnwindInfo { .. } => "no unwind info",
            Self::BadCfi(_) => "bad CFI",
            Self::Loop => "stack pointer did not advance",
            Self::DepthLimit => "depth limit",
            Self::ReturnAddressOutsideCode => "return address outside code",
            Self::JoinedFramePointerChain => "joined frame-pointer chain",
        }
    }
}

/// The result of one walk: the frames found, leaf first, and why it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwound {
    /// Leaf first: `InstructionPointer(pc)`, then return addresses.
    pub frames: Vec<FrameAddress>,
    /// Why the walk stopped.
    pub end: UnwindEnd,
}

/// The copy of the user stack taken at sample time (`PERF_SAMPLE_STACK_USER`).
#[derive(Clone, Copy, Debug)]
pub struct StackBytes<'a> {
    /// The address of `bytes[0]`: the stack pointer at sample time.
    pub start: u64,
    /// The valid bytes of the copy (`dyn_size` of them).
    pub bytes: &'a [u8],
}

impl StackBytes<'_> {
    /// Reads the little-endian u64 at `address`, or `None` when any of its bytes lie outside the
    /// copy.
    pub fn read_u64(&self, address: u64) -> Option<u64> {
        let offset = usize::try_from(address.checked_sub(self.start)?).ok()?;
        let end = offset.checked_add(8)?;
        let word: [u8; 8] = self.bytes.get(offset..end)?.try_into().ok()?;
        Some(u64::from_le_bytes(word))
    }

    /// Reads a little-endian value of `size` bytes (1 to 8) at `address`, zero-extended.
    pub fn read_sized(&self, address: u64, size: u8) -> Option<u64> {
        if size == 0 || size > 8 {
            return None;
        }
        let offset = usize::try_from(address.checked_sub(self.start)?).ok()?;
        let end = offset.checked_add(usize::from(size))?;
        let slice = self.bytes.get(offset..end)?;
        let mut word = [0u8; 8];
        word.get_mut(..slice.len())?.copy_from_slice(slice);
        Some(u64::from_le_bytes(word))
    }

    /// The first address past the copy.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.bytes.len() as u64)
    }
}

/// The ELF module mapped at an address of the sampled process.
#[derive(Clone)]
pub struct ModuleRef {
    /// A stable key for this file's contents: unwind info is parsed once per key. Two different
    /// files must never share a key; the same file may appear in many processes under one key.
    pub key: u64,
    /// The address where the mapping that contains the looked-up address begins.
    pub map_start: Avma,
    /// The file offset of that mapping (`pgoff` in MMAP2).
    pub map_pgoff: u64,
    /// The whole ELF file (or the vdso image).
    pub file: Arc<dyn AsRef<[u8]> + Send + Sync>,
}

impl std::fmt::Debug for ModuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleRef")
            .field("key", &self.key)
            .field("map_start", &format_args!("{:#x}", self.map_start.0))
            .field("map_pgoff", &format_args!("{:#x}", self.map_pgoff))
            .field("file_len", &(*self.file).as_ref().len())
            .finish()
    }
}

/// Finds the module mapped at an address of the sampled process; implemented by the caller over
/// its address spaces.
pub trait ModuleSource {
    /// The module whose mapping contains `avma`, or `None` (anonymous memory, JIT code, unknown
    /// file).
    fn module_at(&self, avma: Avma) -> Option<ModuleRef>;

    /// Names the address space this source describes, so walks can share what they learned
    /// about its pcs: two sources (or one source at two moments) with the same key must map
    /// every address to the same module. `None` (the default) keeps nothing between walks
    /// beyond the per-module caches.
    fn space_key(&self) -> Option<u64> {
        None
    }

    /// Whether `avma` lies in code of the sampled process: an executable mapping, of a file or
    /// not (JIT code). A return address elsewhere is garbage and ends the walk
    /// ([`UnwindEnd::ReturnAddressOutsideCode`]). Asked only for addresses outside every
    /// module [`module_at`](Self::module_at) returns. The default, for sources that cannot
    /// tell, counts every address as code.
    fn is_code(&self, avma: Avma) -> bool {
        let _ = avma;
        true
    }
}

/// No modules at all: every DWARF walk ends after the frame-pointer fallback of the leaf.
impl ModuleSource for () {
    fn module_at(&self, _avma: Avma) -> Option<ModuleRef> {
        None
    }
}
