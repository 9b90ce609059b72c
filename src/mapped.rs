//! Input bytes: a perf.data file mapped read-only, or standard input read whole.
//!
//! The one place in the binary that maps a file (hence `unsafe`). Paths here are the user's own
//! `-i` argument; perf's open rules apply: only regular files, a file owned by another user needs
//! `--force`, an empty file is "no data".
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The bytes of one input profile.
pub enum InputBytes {
    /// A mapped regular file.
    Mapped(memmap2::Mmap),
    /// Bytes read from a pipe.
    Owned(Vec<u8>),
}

impl Deref for InputBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            InputBytes::Mapped(map) => map,
            InputBytes::Owned(bytes) => bytes,
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
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
        .with_context(|| format!("{}: cannot map", path.display()))?;
    Ok(InputBytes::Mapped(map))
}

fn current_uid() -> u32 {
    // getuid cannot fail (POSIX), but keep it safe-code only: read it from procfs.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}
