//! The crate's error type: everything that can stop a recording from starting or finishing.

use std::io;
use std::path::PathBuf;

/// Why a recording could not start or could not be finished.
///
/// Variants with a `source` do not repeat it in their own message: print the chain
/// (anyhow's `{:#}`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An `-e` name that matches no known event; `suggestions` holds close matches.
    #[error("unknown event '{name}'{}", suggestion_text(suggestions))]
    UnknownEvent {
        /// The name as given.
        name: String,
        /// Known names within a small edit distance, closest first.
        suggestions: Vec<String>,
    },
    /// An event spec that is recognisably one kind of event but malformed (bad modifier, raw code).
    #[error("invalid event '{spec}': {reason}")]
    InvalidEvent {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The event exists in general but this machine cannot count it (no PMU, no tracepoint).
    #[error("event '{event}' is not available on this machine: {reason}")]
    EventUnavailable {
        /// The event name.
        event: String,
        /// The reason, including the kernel's error.
        reason: String,
    },
    /// The kernel refused for lack of privilege; the message explains `perf_event_paranoid` and the fix.
    #[error("{message}")]
    Permission {
        /// The full explanation, built by `perms`.
        message: String,
    },
    /// A system call failed for a reason with no more specific variant.
    #[error("{what}")]
    Syscall {
        /// What was being done, e.g. "perf_event_open(cpu-clock, cpu 3)".
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `-F` asks for more than `/proc/sys/kernel/perf_event_max_sample_rate` allows.
    #[error(
        "sampling frequency {requested} Hz exceeds the kernel limit of {max} Hz \
         (/proc/sys/kernel/perf_event_max_sample_rate); use -F {max} or lower, \
         or raise the limit with: sysctl kernel.perf_event_max_sample_rate={requested}"
    )]
    FrequencyTooHigh {
        /// The requested frequency.
        requested: u64,
        /// The kernel's limit.
        max: u64,
    },
    /// Options that contradict each other or are out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A CPU list such as `0-3,5` that does not parse.
    #[error("invalid CPU list '{0}' (expected e.g. 0-3,5)")]
    BadCpuList(String),
    /// The command could not be executed (not found, not executable); kprof exits 127 as a shell does.
    #[error("failed to exec: {program}")]
    Exec {
        /// The program as given.
        program: String,
        /// Why exec failed.
        #[source]
        source: io::Error,
    },
    /// `-G`: the cgroup cannot be used (missing directory, no perf_event cgroup hierarchy).
    #[error("cgroup {}: {reason}", path.display())]
    Cgroup {
        /// The cgroup directory looked for.
        path: PathBuf,
        /// Why it cannot be used, and what `-G` expects.
        reason: String,
    },
    /// A process or thread to attach to does not exist.
    #[error("no such process or thread: {0}")]
    NoSuchTask(u32),
    /// The output file could not be created, renamed or written.
    #[error("output file {}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A probe (`u:`, `ur:`, `usdt:`, `k:`, `kr:`) that cannot be placed.
    #[error("probe '{spec}'")]
    Probe {
        /// The spec as given.
        spec: String,
        /// Why.
        #[source]
        source: crate::probe::ProbeError,
    },
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::from(
            "; known: hardware (cycles, instructions, cache-references, cache-misses, branches, \
             branch-misses, bus-cycles, ref-cycles), software (cpu-clock, task-clock, page-faults, \
             minor-faults, major-faults, context-switches, cpu-migrations), SYS:NAME tracepoints, rNNNN raw",
        )
    } else {
        format!("; did you mean: {}?", suggestions.join(", "))
    }
}

impl Error {
    /// The message with its causes, `: `-separated (what anyhow's `{:#}` prints).
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }

    /// The exit status a command-line tool should use for this error: 127 when the command could
    /// not be executed (as a shell does), otherwise `None` (the caller's generic failure code).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Error::Exec { .. } => Some(127),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
