//! Input bytes: a perf.data file mapped read-only, or standard input read whole.
//!
//! The one place in the binary that maps a file, lets go of parts of the mapping, and asks the
//! CPU to prefetch (hence `unsafe`). Paths here are the user's own `-i` argument; perf's open
//! rules apply: only regular files, a file owned by another user needs `--force`, an empty file
//! is "no data". A mapped input is read through a moving window ([`InputBytes::advance`]), so
//! peak memory stays far below the file's size.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

/// The bytes of one input profile.
pub enum InputBytes {
    /// A mapped regular file, read through a window (see [`InputBytes::advance`]).
    Mapped(memmap2::Mmap, Mutex<Window>),
    /// Bytes read from a pipe.
    Owned(Vec<u8>),
}

/// Which part of a mapped input is in memory: a pass over the file maps the bytes ahead of it
/// in large steps and lets go of those behind it, so the file never has to fit in memory at
/// once (perf.data files with copied stacks are hundreds of megabytes).
#[derive(Debug, Default)]
pub struct Window {
    /// Mapped in up to here (ahead of the pass).
    populated: usize,
    /// Let go of below here.
    released: usize,
}

/// How far ahead of a pass a mapped input is brought into memory.
const WINDOW_AHEAD: usize = 16 << 20;
/// The smallest step in which a window moves (a system call each).
const WINDOW_STEP: usize = 4 << 20;

impl Deref for InputBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            InputBytes::Mapped(map, _) => map,
            InputBytes::Owned(bytes) => bytes,
        }
    }
}

impl InputBytes {
    /// A pass over the input is done with everything below `offset` and will read what follows
    /// it next: maps in the next [`WINDOW_AHEAD`] bytes, lets go of those below. Bytes let go
    /// of stay readable (they page back in from the file), so a wrong guess costs time only.
    pub fn advance(&self, offset: u64) {
        let InputBytes::Mapped(map, window) = self else {
            return;
        };
        let mut window = window.lock().unwrap_or_else(|e| e.into_inner());
        let offset = usize::try_from(offset).unwrap_or(usize::MAX).min(map.len());
        let release_to = offset & !(WINDOW_STEP - 1);
        if release_to >= window.released + WINDOW_STEP
            || (offset == map.len() && window.released < offset)
        {
            let release_to = if offset == map.len() {
                map.len()
            } else {
                release_to
            };
            // SAFETY: the mapping is private and read-only: nothing was ever written to it, so
            // MADV_DONTNEED only drops the pages from this process; a later read maps the
            // file's unchanged bytes back in. No reference into the range becomes invalid.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    window.released,
                    release_to - window.released,
                )
            };
            window.released = release_to;
            window.populated = window.populated.max(release_to);
        }
        let wanted = offset.saturating_add(WINDOW_AHEAD).min(map.len());
        if wanted >= window.populated + WINDOW_STEP
            || (wanted == map.len() && window.populated < wanted)
        {
            let from = window.populated.max(offset);
            // Populating is an optimization (one call instead of a fault per 64 KiB); kernels
            // before 5.14 lack it, and then the reads fault the pages in.
            let _ = map.advise_range(memmap2::Advice::PopulateRead, from, wanted - from);
            window.populated = wanted;
        }
    }

    /// Starts a new pass from the beginning (after the last one let go of everything).
    pub fn rewind(&self) {
        if let InputBytes::Mapped(_, window) = self {
            *window.lock().unwrap_or_else(|e| e.into_inner()) = Window::default();
        }
    }
}

/// The default input, like perf: `kprof.data`, else `perf.data`.
pub fn default_input() -> PathBuf {
    let kprof = PathBuf::from("kprof.data");
    if kprof.exists() || !Path::new("perf.data").exists() {
        kprof
    } else {
        PathBuf::from("perf.data")
    }
}

/// Opens `path` (`-` is standard input) and returns its bytes.
pub fn open_input(path: &Path, force: bool) -> Result<InputBytes> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        if bytes.is_empty() {
            bail!("standard input: no data (empty input)");
        }
        return Ok(InputBytes::Owned(bytes));
    }
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?;
    if !meta.is_file() {
        // A FIFO or character device given with -i: read it like a pipe.
        if meta.file_type().is_dir() {
            bail!("{}: is a directory, not a perf.data file", path.display());
        }
        let mut bytes = Vec::new();
        (&file)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: read failed", path.display()))?;
        return Ok(InputBytes::Owned(bytes));
    }
    let me = current_uid();
    if !force && meta.uid() != me && meta.uid() != 0 {
        bail!(
            "{}: file is owned by uid {}, not by the current user or root (use --force to read it anyway)",
            path.display(),
            meta.uid()
        );
    }
    if meta.len() == 0 {
        bail!("{}: no data (the file is empty)", path.display());
    }
    // SAFETY: memmap2 requires that the file is not modified or truncated while mapped. kprof
    // maps the user's own input read-only and never writes it; another process truncating it
    // while we read could raise SIGBUS. This is the accepted risk every mmap-based reader
    // (perf, ripgrep) takes; the parser itself never trusts the contents.
    let map = unsafe { memmap2::MmapOptions::new().map(&file) }
        .with_context(|| format!("{}: cannot map", path.display()))?;
    Ok(InputBytes::Mapped(map, Mutex::default()))
}

fn current_uid() -> u32 {
    // getuid cannot fail (POSIX), but keep it safe-code only: read it from procfs.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// Asks the CPU to start loading the first `lines` cache lines of `bytes`, so a later read does
/// not wait for memory. Samples are read in time order, which jumps around a file much larger
/// than the caches; prefetching a few samples ahead overlaps those misses.
pub fn prefetch(bytes: &[u8], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64).take(lines) {
        // SAFETY: a prefetch is only a hint: it never faults and never changes memory, whatever
        // the address; this one is inside a live slice anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, lines);
}
