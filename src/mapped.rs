//! Input bytes: a perf.data file mapped read-only, or standard input read whole.
//!
//! The one place in the binary that maps a file, lets go of parts of the mapping, and asks the
//! CPU to prefetch (hence `unsafe`). Paths here are the user's own `-i` argument; perf's open
//! rules apply: only regular files, a file owned by another user needs `--force`, an empty file
//! is "no data". A mapped input is read through a moving window ([`InputBytes::advance`]), so
//! peak memory stays far below the file's size; a thread of its own moves the window (maps
//! pages in ahead, lets go of them behind), so a pass never waits for those system calls.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context, Result, bail};

/// The bytes of one input profile.
pub enum InputBytes {
    /// A mapped regular file, read through a window (see [`InputBytes::advance`]).
    Mapped(Arc<memmap2::Mmap>, Mutex<Window>),
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
    /// The thread that moves the window (`None`: none could start; the pass moves it itself).
    mover: Option<WindowMover>,
}

/// What moving a window takes: map in a range, or let go of one.
#[derive(Debug, Clone, Copy)]
enum WindowMove {
    Populate { from: usize, to: usize },
    Release { from: usize, to: usize },
}

/// The handle of the thread that moves a window, in the order asked (so a range is never let
/// go of before an older request maps it in). Mapping 4 MiB in takes about a thousand page
/// table entries; done on the pass's thread, that was a fifth of a DWARF analysis' serial part
/// (issue #13 point 3). The thread ends when the handle goes.
#[derive(Debug)]
struct WindowMover {
    moves: mpsc::SyncSender<WindowMove>,
    /// Where the pass is: nothing below it needs mapping in any more.
    pass_at: Arc<AtomicUsize>,
}

/// Most window moves waiting for the mover: if it falls behind (a starved CPU), the pass waits
/// rather than hold ever more of the file in memory.
const MOVES_WAITING: usize = 8;

impl WindowMover {
    /// A thread moving `map`'s window, or `None` when none starts.
    fn start(map: &Arc<memmap2::Mmap>) -> Option<WindowMover> {
        let (moves, requests) = mpsc::sync_channel(MOVES_WAITING);
        let pass_at = Arc::new(AtomicUsize::new(0));
        let (map, at) = (Arc::clone(map), Arc::clone(&pass_at));
        std::thread::Builder::new()
            .name("kprof-window".into())
            .spawn(move || {
                for request in requests {
                    match request {
                        WindowMove::Populate { from, to } => {
                            // What the pass already passed was faulted in by its reads.
                            let from = from.max(at.load(Ordering::Relaxed));
                            if from < to {
                                // Populating is an optimization (one call instead of a fault
                                // per 64 KiB); kernels before 5.14 lack it, and then the reads
                                // fault the pages in.
                                let _ = map.advise_range(
                                    memmap2::Advice::PopulateRead,
                                    from,
                                    to - from,
                                );
                            }
                        }
                        WindowMove::Release { from, to } => release(&map, from, to),
                    }
                }
            })
            .ok()?;
        Some(WindowMover { moves, pass_at })
    }
}

/// Lets go of `map[from..to]`.
fn release(map: &memmap2::Mmap, from: usize, to: usize) {
    // SAFETY: the mapping is private and read-only: nothing was ever written to it, so
    // MADV_DONTNEED only drops the pages from this process; a later read maps the file's
    // unchanged bytes back in. No reference into the range becomes invalid.
    let _ =
        unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from) };
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
        if let Some(mover) = &window.mover {
            mover.pass_at.store(offset, Ordering::Relaxed);
        }
        let release_to = offset & !(WINDOW_STEP - 1);
        if release_to >= window.released + WINDOW_STEP
            || (offset == map.len() && window.released < offset)
        {
            let release_to = if offset == map.len() {
                map.len()
            } else {
                release_to
            };
            let released = window.released;
            window.move_window(
                map,
                WindowMove::Release {
                    from: released,
                    to: release_to,
                },
            );
            window.released = release_to;
            window.populated = window.populated.max(release_to);
        }
        let wanted = offset.saturating_add(WINDOW_AHEAD).min(map.len());
        if wanted >= window.populated + WINDOW_STEP
            || (wanted == map.len() && window.populated < wanted)
        {
            let from = window.populated.max(offset);
            window.move_window(map, WindowMove::Populate { from, to: wanted });
            window.populated = wanted;
        }
    }

    /// Starts a new pass from the beginning (after the last one let go of everything).
    pub fn rewind(&self) {
        if let InputBytes::Mapped(_, window) = self {
            let mut window = window.lock().unwrap_or_else(|e| e.into_inner());
            window.populated = 0;
            window.released = 0;
            if let Some(mover) = &window.mover {
                mover.pass_at.store(0, Ordering::Relaxed);
            }
        }
    }
}

impl Window {
    /// Moves the window: on the mover thread when there is one, else here.
    fn move_window(&mut self, map: &memmap2::Mmap, step: WindowMove) {
        if let Some(mover) = &self.mover {
            if mover.moves.send(step).is_ok() {
                return;
            }
            // The thread is gone (it cannot panic, but if it did): move the window here.
            self.mover = None;
        }
        match step {
            WindowMove::Populate { from, to } => {
                let _ = map.advise_range(memmap2::Advice::PopulateRead, from, to - from);
            }
            WindowMove::Release { from, to } => release(map, from, to),
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
    let map = Arc::new(map);
    let window = Window {
        mover: WindowMover::start(&map),
        ..Window::default()
    };
    Ok(InputBytes::Mapped(map, Mutex::new(window)))
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

/// Hands the heap's free pages back to the system. A phase that frees much (the replay's
/// per-shard tables, the symbolizer's symbol tables) leaves that memory with the allocator, in
/// the arenas of the threads that used it, and the next phase, on other threads, takes new
/// pages on top (issue #13 point 1). A few milliseconds per call.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions: it takes each arena's lock and gives back
    // only pages that hold no allocation (glibc's own, thread-safe bookkeeping).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte at `offset` of the test file: its offset's low bytes mixed, so a page read
    /// from the wrong place shows.
    fn expected(offset: usize) -> u8 {
        (offset ^ (offset >> 12) ^ (offset >> 20)) as u8
    }

    // See: issue #13 point 3 (the window moves on a thread of its own)
    #[test]
    fn a_moving_window_keeps_every_byte_readable_and_unchanged() {
        let path =
            std::env::temp_dir().join(format!("kprof-window-test-{}.data", std::process::id()));
        let len = 2 * WINDOW_AHEAD + 12_345;
        let content: Vec<u8> = (0..len).map(expected).collect();
        std::fs::write(&path, &content).unwrap();
        let bytes = open_input(&path, false).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(&bytes, InputBytes::Mapped(_, window)
            if window.lock().unwrap().mover.is_some()));
        for pass in 0..2 {
            // Forward in uneven steps, looking behind (released) and ahead (populated).
            for offset in (0..len).step_by(WINDOW_STEP / 3 + 7) {
                bytes.advance(offset as u64);
                for probe in [offset, offset.saturating_sub(WINDOW_STEP * 2), len - 1] {
                    assert_eq!(bytes[probe], expected(probe), "pass {pass}, byte {probe}");
                }
            }
            bytes.advance(u64::MAX);
            assert_eq!(&bytes[..], &content[..], "pass {pass}: the whole file");
            bytes.rewind();
        }
    }
}
