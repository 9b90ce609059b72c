//! The crate's error type: failures to open or parse one input file.
//!
//! Symbolization itself never fails: problems end up as [`crate::Problem`]s in
//! [`crate::Symbolized`] and [`crate::ModuleReport`]. These errors describe why.

use std::path::PathBuf;

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error (including "not found") while opening or reading `path`.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path names a directory, FIFO, device or socket; we only read regular files.
    #[error("{} is not a regular file", .0.display())]
    NotRegularFile(PathBuf),
    /// The file is larger than we are willing to read.
    #[error("{} is {size} bytes, more than the limit of {limit}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file's contents could not be parsed.
    #[error("parsing {}: {what}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
