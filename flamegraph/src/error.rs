//! The crate's error type: what can go wrong while writing or rendering a profile.

use std::io;

/// Everything that can fail in `kprof-flamegraph`.
///
/// Malformed *frame names* are never an error: they are sanitised (see [`crate::sanitize`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing the output (or inferno while rendering into it) failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// An option had a value this crate cannot use.
    #[error("invalid value {value:?} for option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name, as in the options struct.
        option: &'static str,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A line of folded-stack input could not be parsed.
    #[error("folded input line {line}: {reason}")]
    BadFoldedLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
