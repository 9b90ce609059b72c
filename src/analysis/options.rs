//! What an analysis resolves and which samples it keeps: the one set of choices every module
//! of the analysis reads.

use std::path::PathBuf;

/// What to resolve and which samples to keep.
#[derive(Clone, Debug, Default)]
pub struct AnalysisOptions {
    /// Add file and line to frames.
    pub lines: bool,
    /// Show inlined functions as frames.
    pub inline: bool,
    /// Demangle Rust and C++ names.
    pub demangle: bool,
    /// Kernel symbols from this file instead of /proc/kallsyms.
    pub kallsyms: Option<PathBuf>,
    /// Prefix for binary paths.
    pub symfs: Option<PathBuf>,
    /// Keep only samples of these thread or process names.
    pub comms: Vec<String>,
    /// Keep only samples of these processes.
    pub pids: Vec<u32>,
    /// Keep only samples of these threads.
    pub tids: Vec<u32>,
    /// Unwind user stacks from copied stack bytes when samples carry them.
    pub dwarf: bool,
    /// Keep each sample's own addresses (`script`): frames that differ only in the sampled
    /// address stay apart, and each shows the address perf prints. Otherwise one frame per
    /// function (and line), whose address is the first one seen.
    pub sample_addresses: bool,
    /// Render the raw data of tracepoint samples ([`super::Analysis::traces`]), as `perf script`
    /// prints it.
    pub trace_fields: bool,
    /// Weigh tracepoint samples by this numeric field of their raw data (`flame --weight
    /// count`) instead of by their period; samples without it weigh 0.
    pub weight_field: Option<String>,
}
