//! `--syscalls` summary: lives in [`crate::trace::agg::syscalls`], a child of `agg` (so that
//! building it from `agg` is no import cycle); re-exported here under its first path.

pub use crate::trace::agg::syscalls::SyscallSummary;
