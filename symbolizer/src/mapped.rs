//! Read-only file mappings and bounded, regular-file-only opening of untrusted paths.
//!
//! This is the only module of the crate allowed to use `unsafe`: mapping a file with `memmap2`
//! and declaring that such a mapping (or an owned buffer) has a stable address for gimli.
#![allow(unsafe_code)]

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::ops::{Deref, Range};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Largest file we are willing to map (ELF and debug files): 16 GiB.
pub const MAX_MAPPED_SIZE: u64 = 16 << 30;

/// Opens `path` for reading only if it is a regular file no larger than `max_size`.
///
/// The path comes from a perf.data file and is untrusted: it is `stat`ed first (following
/// symlinks, as `/usr/lib/debug/.build-id` entries are symlinks), opened with `O_NONBLOCK` so a
/// FIFO swapped in between cannot block us, and `fstat`ed again after opening.
pub fn open_regular(path: &Path, max_size: u64) -> Result<(File, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    check_regular(path, &meta, max_size)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    check_regular(path, &meta, max_size)?;
    Ok((file, meta.len()))
}

fn check_regular(path: &Path, meta: &std::fs::Metadata, max_size: u64) -> Result<()> {
    let ft = meta.file_type();
    if !ft.is_file() || ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
        return Err(Error::NotRegularFile(path.to_path_buf()));
    }
    if meta.len() > max_size {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: max_size,
        });
    }
    Ok(())
}

/// Reads a whole regular file of at most `max_size` bytes into memory.
pub fn read_regular(path: &Path, max_size: u64) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path, max_size)?;
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` bounds the read even if the file grows after the fstat.
    file.take(max_size)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// A read-only mapping of a whole file.
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    /// Maps the regular file at `path` (see [`open_regular`]).
    pub fn open(path: &Path) -> Result<Self> {
        let (file, len) = open_regular(path, MAX_MAPPED_SIZE)?;
        if len == 0 {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                what: "empty file".into(),
            });
        }
        // SAFETY: memmap2 requires that the file is not modified or truncated while mapped.
        // We cannot enforce that for files named in a perf.data (libraries, debug files).
        // Accepted risk, as perf, samply and ripgrep accept it: a concurrent truncation
        // makes later reads of the vanished pages raise SIGBUS. The mapping is read-only and
        // private, so we never write through it, and it lives as long as `self`.
        let map =
            unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Self { map })
    }
}

impl Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MappedFile({} bytes)", self.map.len())
    }
}

/// Bytes shared by reference count: a whole owned buffer or mapping, or a range of one.
///
/// Cloning is cheap and the bytes never move, so it can back a `gimli::EndianReader`.
#[derive(Clone)]
pub struct SharedBytes {
    owner: Arc<dyn Deref<Target = [u8]> + Send + Sync>,
    range: Range<usize>,
}

impl SharedBytes {
    /// Shares all of `owner`'s bytes.
    pub fn new(owner: Arc<dyn Deref<Target = [u8]> + Send + Sync>) -> Self {
        let len = owner.len();
        Self {
            owner,
            range: 0..len,
        }
    }

    /// The sub-range `sub` (relative to this view), or `None` when it is out of bounds.
    pub fn slice(&self, sub: Range<usize>) -> Option<Self> {
        let start = self.range.start.checked_add(sub.start)?;
        let end = self.range.start.checked_add(sub.end)?;
        if start > end || end > self.range.end {
            return None;
        }
        Some(Self {
            owner: Arc::clone(&self.owner),
            range: start..end,
        })
    }

    /// A view of `bytes` if they lie inside this view (pointer arithmetic only, no unsafe).
    pub fn subslice_of(&self, bytes: &[u8]) -> Option<Self> {
        let base = self.deref().as_ptr() as usize;
        let start = (bytes.as_ptr() as usize).checked_sub(base)?;
        self.slice(start..start.checked_add(bytes.len())?)
    }

    /// Owned bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self::new(Arc::new(bytes))
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.owner.get(self.range.clone()).unwrap_or(&[])
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedBytes({} bytes)", self.range.len())
    }
}

/// A fixed-size anonymous mapping filled front to back, whose filled prefix can be read (and
/// shared as [`SharedBytes`]) while later bytes are still being written: the buffer a
/// compressed debug section is inflated into, only as far as lookups need it.
///
/// Anonymous pages cost nothing until written, so a section that is never inflated to its end
/// never touches its tail; the pages of each step are populated with one system call.
pub struct GrowingBytes {
    map: memmap2::MmapRaw,
    capacity: usize,
    /// Bytes `[0, filled)` are written and never written again.
    filled: std::sync::atomic::AtomicUsize,
    /// Held while bytes at and after `filled` are written: one writer at a time.
    writer: std::sync::Mutex<()>,
}

impl GrowingBytes {
    /// An empty buffer of `capacity` bytes (at least one byte is mapped).
    pub fn new(capacity: usize) -> std::io::Result<Self> {
        let map = memmap2::MmapMut::map_anon(capacity.max(1))?;
        Ok(Self {
            map: memmap2::MmapRaw::from(map),
            capacity,
            filled: std::sync::atomic::AtomicUsize::new(0),
            writer: std::sync::Mutex::new(()),
        })
    }

    /// The number of bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of bytes written so far.
    pub fn filled(&self) -> usize {
        self.filled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Calls `write` with the next unwritten bytes (at most `max` of them, fewer at the end of
    /// the buffer) while no other writer can run; the count it returns (capped at the slice's
    /// length) becomes readable. An error leaves the buffer as it was.
    pub fn append_with<E>(
        &self,
        max: usize,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        use std::sync::atomic::Ordering;
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = self.filled.load(Ordering::Acquire);
        let len = max.min(self.capacity() - start);
        // One system call maps all the pages about to be written, instead of a page fault for
        // each. Only a hint: if it fails, the writes fault the pages in one by one.
        let _ = self
            .map
            .advise_range(memmap2::Advice::PopulateWrite, start, len);
        // SAFETY: `start + len <= capacity`, so the range lies inside the live mapping, whose
        // pages are initialized (zero-filled by the kernel, or written earlier). No other
        // reference to `[start, start + len)` exists: readers only ever see `[0, filled)`
        // (see `deref`), `filled` only grows, and only this function writes, under `writer`.
        let tail = unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(start), len) };
        let written = write(tail)?.min(len);
        // Release: a reader that sees the new `filled` also sees the bytes written above.
        self.filled.store(start + written, Ordering::Release);
        Ok(written)
    }
}

impl Deref for GrowingBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let filled = self.filled();
        // SAFETY: `[0, filled)` lies inside the mapping (`filled <= capacity`), was written
        // before `filled` was published (Acquire above pairs with the Release store in
        // `append_with`), and is never written again: writers only touch bytes at or after
        // `filled`. The mapping lives as long as `self`, which this borrow keeps alive.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), filled) }
    }
}

impl fmt::Debug for GrowingBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GrowingBytes({} of {} bytes)",
            self.filled(),
            self.capacity()
        )
    }
}

// SAFETY: `deref` returns a sub-slice of the owner's bytes. The owner is a `Vec<u8>`, a
// `MappedFile`, a `GrowingBytes` (whose written bytes are never written again and never move)
// or another heap buffer behind an `Arc` that is never mutated (we only hand out shared
// references), so the address of the bytes does not change when a `SharedBytes` is moved, and
// stays valid as long as any clone holds the `Arc`.
unsafe impl gimli::StableDeref for SharedBytes {}
// SAFETY: cloning copies the `Arc` and the range, so a clone derefs to the same address.
unsafe impl gimli::CloneStableDeref for SharedBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_and_dirs() {
        let dir = std::env::temp_dir().join(format!("kprof-sym-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            open_regular(&dir, 10),
            Err(Error::NotRegularFile(_))
        ));
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.map(|s| s.success()).unwrap_or(false) {
            assert!(matches!(
                open_regular(&fifo, 10),
                Err(Error::NotRegularFile(_))
            ));
        }
        assert!(matches!(
            open_regular(Path::new("/dev/null"), 10),
            Err(Error::NotRegularFile(_))
        ));
        let big = dir.join("big");
        std::fs::write(&big, [0u8; 100]).unwrap();
        assert!(matches!(
            open_regular(&big, 10),
            Err(Error::TooLarge { .. })
        ));
        assert_eq!(read_regular(&big, 100).unwrap().len(), 100);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shared_bytes_slices() {
        let b = SharedBytes::from_vec((0u8..10).collect());
        let s = b.slice(2..5).unwrap();
        assert_eq!(&*s, &[2, 3, 4]);
        assert!(b.slice(5..11).is_none());
        let again = b.subslice_of(&s[1..]).unwrap();
        assert_eq!(&*again, &[3, 4]);
        assert!(s.subslice_of(&b[6..8]).is_none());
    }
}
