//! What every part of the rewriter shares: its error type and reading and writing numbers of
//! either byte order at checked positions.

use kprof_perfdata::Endian;

/// What can stop a rewrite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The input is not a file-mode perf.data this tool understands.
    #[error("not a file-mode perf.data: {0}")]
    NotFileMode(&'static str),
    /// A structure reaches past the bytes that hold it.
    #[error("truncated {what} at offset {offset:#x}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where (in the file, or in the decompressed stream).
        offset: u64,
    },
    /// A record type whose layout this tool does not know (so it cannot swap it).
    #[error("record type {kind} at offset {offset:#x}: layout unknown, cannot byte-swap")]
    UnknownRecord {
        /// Record type.
        kind: u32,
        /// Where the record starts.
        offset: u64,
    },
    /// Something valid that this tool does not handle.
    #[error("unsupported: {what} at offset {offset:#x}")]
    Unsupported {
        /// What.
        what: &'static str,
        /// Where.
        offset: u64,
    },
    /// zstd failed on the compressed records.
    #[error("zstd: {0}")]
    Decompress(String),
}

/// Result with [`RewriteError`].
pub type Result<T, E = RewriteError> = std::result::Result<T, E>;

pub(super) fn truncated(what: &'static str, offset: usize) -> RewriteError {
    RewriteError::Truncated {
        what,
        offset: offset as u64,
    }
}

/// Reads an unsigned value of `N` bytes at `pos`.
pub(super) fn read<const N: usize>(
    b: &[u8],
    pos: usize,
    endian: Endian,
    what: &'static str,
) -> Result<u64> {
    let bytes = pos
        .checked_add(N)
        .and_then(|end| b.get(pos..end))
        .ok_or_else(|| truncated(what, pos))?;
    let mut v = 0u64;
    for (i, &byte) in bytes.iter().enumerate() {
        let shift = match endian {
            Endian::Little => 8 * i,
            Endian::Big => 8 * (N - 1 - i),
        };
        v |= u64::from(byte) << shift;
    }
    Ok(v)
}

pub(super) fn read_u64(b: &[u8], pos: usize, endian: Endian, what: &'static str) -> Result<u64> {
    read::<8>(b, pos, endian, what)
}

pub(super) fn write_u64(b: &mut [u8], pos: usize, endian: Endian, v: u64) -> Result<()> {
    let dst = pos
        .checked_add(8)
        .and_then(|end| b.get_mut(pos..end))
        .ok_or_else(|| truncated("u64 field", pos))?;
    dst.copy_from_slice(&endian.u64_bytes(v));
    Ok(())
}

pub(super) fn to_usize(v: u64, what: &'static str, at: usize) -> Result<usize> {
    usize::try_from(v).map_err(|_| truncated(what, at))
}
