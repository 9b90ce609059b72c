//! What [`crate::record`] and [`crate::live::trace`] share around their session: the system
//! calls and the workload it starts with, the processes whose state is synthesized, the header
//! of its output (attrs, event names, host facts, tracepoint formats) and the features known
//! only at its end, and the [`RecordSummary`] of both.

use std::path::PathBuf;
use std::time::Duration;

use kprof_perfdata::Features;
use kprof_perfdata::writer::WriterAttr;

use crate::buildid;
use crate::cgroup;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::output::OutputFailure;
use crate::session::{Plan, Session, SessionStats, StopReason, Syscalls, SystemCalls};
use crate::sys::ChildExit;
use crate::target::{EndedBy, Target, Workload};
use crate::tracing::{self, Tracepoint};

/// How long a workload gets to exit after SIGTERM before SIGKILL.
pub const WORKLOAD_GRACE: Duration = Duration::from_secs(2);

/// What a recording produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordSummary {
    /// SAMPLE records written (after a write error: those kept).
    pub samples: u64,
    /// Samples the kernel dropped: exact when every event samples every hit (tracepoints and
    /// probes: the kernel's count of hits minus the samples received), otherwise the larger of
    /// the LOST records' and the per-event lost counts (see `SessionStats::lost_samples`).
    pub lost_samples: u64,
    /// LOST records (ring overflow episodes).
    pub lost_chunks: u64,
    /// Bytes in the data section (after a write error: those kept).
    pub bytes: u64,
    /// The file written.
    pub output: PathBuf,
    /// The command's exit code (128 + signal when killed); `None` without a command.
    pub exit_status: Option<i32>,
    /// Names of the events actually recorded (after fallbacks).
    pub events_used: Vec<String>,
    /// True when recording stopped on a stop signal.
    pub interrupted: bool,
    /// Why recording stopped.
    pub stopped_by: StopReason,
    /// Set when writing the output failed: what was kept. The recording stopped there and the
    /// workload was left to finish on its own.
    pub output_failure: Option<OutputFailure>,
    /// Set when the workload was still running when recording stopped and kprof ended it.
    pub workload_ended_by_us: Option<EndedBy>,
}

/// The system calls of a session, its events opened in `cgroup` when one is named.
pub(crate) fn system_calls(cgroup: Option<&str>) -> Result<SystemCalls> {
    let syscalls = SystemCalls::new()?;
    Ok(match cgroup {
        Some(name) => syscalls.in_cgroup(cgroup::open(name)?.dir),
        None => syscalls,
    })
}

/// Starts the command of `target` (held before exec until [`Workload::release`]) and points
/// `plan` at it; `None` for other targets. `stdout_taken`: the recording goes to standard
/// output, so the command's goes to standard error.
pub(crate) fn spawn_workload(
    target: &Target,
    plan: &mut Plan,
    stdout_taken: bool,
) -> Result<Option<Workload>> {
    let workload = match target {
        Target::Command(argv) if !argv.is_empty() => Workload::spawn(argv, stdout_taken)?,
        _ => return Ok(None),
    };
    plan.workload = Some(workload.pid());
    if !plan.system_wide {
        plan.tasks = vec![workload.pid()];
    }
    Ok(Some(workload))
}

/// The processes whose threads and maps are synthesized before the session starts: `None` for
/// all (system-wide), the given ones for `-p`/`-t`, none for a command (it starts after).
pub(crate) fn synthesized_pids(target: &Target, system_wide: bool) -> Option<Vec<u32>> {
    match target {
        _ if system_wide => None,
        Target::Pids(pids) | Target::Tids(pids) => Some(pids.clone()),
        _ => Some(Vec::new()),
    }
}

/// The header of a session's output.
pub(crate) struct HeaderParts {
    /// One per opened event: attr bytes, ids, name.
    pub attrs: Vec<WriterAttr>,
    /// The names of the events used (after any cycles → cpu-clock fallback).
    pub events_used: Vec<String>,
    /// This host's facts, kprof's command line and version, and the formats of the
    /// tracepoints among the events; build-ids and sample times come at the end
    /// ([`finish_features`]).
    pub features: Features,
}

/// The header of the output of `session`, whose events are open. Linux perf refuses
/// tracepoint recordings without the tracepoints' formats (a pipe needs them before the first
/// sample): when they cannot be read, `missing_formats` decides (a note and `Ok`, or the
/// error).
pub(crate) fn header_parts<S: Syscalls>(
    session: &Session<S>,
    missing_formats: &mut dyn FnMut(Error) -> Result<()>,
) -> Result<HeaderParts> {
    let events = session.events();
    let tracepoints: Vec<Tracepoint> = events
        .iter()
        .filter_map(|e| match &e.spec.kind {
            EventKind::Tracepoint { system, name } => Some(Tracepoint::new(system, name)),
            _ => None,
        })
        .collect();
    let mut features = buildid::host_features(
        &std::env::args().collect::<Vec<_>>(),
        &format!("kprof {}", env!("CARGO_PKG_VERSION")),
    );
    if !tracepoints.is_empty() {
        match tracing::tracing_data(&tracepoints) {
            Ok(blob) => features.tracing_data = Some(blob),
            Err(e) => missing_formats(e)?,
        }
    }
    Ok(HeaderParts {
        attrs: events
            .iter()
            .map(|e| WriterAttr {
                attr: e.attr_bytes.clone(),
                ids: e.ids.clone(),
                name: e.spec.name.clone(),
            })
            .collect(),
        events_used: events.iter().map(|e| e.spec.name.clone()).collect(),
        features,
    })
}

/// Adds what is known once `session` finished with `stats`: the build-ids of the files it saw
/// mapped (pid -1: perf's `HOST_KERNEL_ID`, used for every file on the host) and the times of
/// the first and last samples.
pub(crate) fn finish_features<S: Syscalls>(
    features: &mut Features,
    session: &Session<S>,
    stats: &SessionStats,
) {
    features.build_ids = buildid::collect_build_ids(
        session
            .mapped_files()
            .map(|(kernel, path)| (-1, kernel, path.to_owned())),
    );
    features.sample_time = stats.first_sample_time.zip(stats.last_sample_time);
}

/// Ends the session's workload, if any: its exit as the session saw it, else after SIGTERM
/// (and SIGKILL after [`WORKLOAD_GRACE`]). Its exit code.
pub(crate) fn end_workload<S: Syscalls>(
    workload: Option<&mut Workload>,
    session: &Session<S>,
) -> Option<i32> {
    let workload = workload?;
    if let Some(exit) = session.workload_exit() {
        workload.set_exited(exit);
    }
    workload.terminate(WORKLOAD_GRACE).map(ChildExit::code)
}

/// How a session's output ended: its path, the bytes of records it holds, and the write error
/// that ended it early (with what was kept).
pub(crate) struct OutputEnd {
    /// The output path as given (`-` for standard output).
    pub path: PathBuf,
    /// Bytes of records in it (after a write error: those kept, for a file).
    pub bytes: u64,
    /// The write error, if one ended the output early.
    pub failure: Option<OutputFailure>,
}

impl OutputEnd {
    /// The output at `path`, `bytes` of records, ended early by `failure` (if any).
    pub(crate) fn new(path: PathBuf, bytes: u64, failure: Option<OutputFailure>) -> Self {
        OutputEnd {
            path,
            bytes,
            failure,
        }
    }

    /// The summary of a session with this output that stopped for `reason` with `stats`:
    /// samples (those kept after a write error), lost counts, why it stopped, and how its
    /// workload ended.
    pub(crate) fn into_summary(
        self,
        stats: &SessionStats,
        reason: StopReason,
        exit_status: Option<i32>,
        workload: Option<&Workload>,
        events_used: Vec<String>,
    ) -> RecordSummary {
        let OutputEnd {
            path,
            bytes,
            failure,
        } = self;
        RecordSummary {
            samples: failure.as_ref().map_or(stats.samples, |f| f.kept_samples),
            lost_samples: stats.lost_samples,
            lost_chunks: stats.lost_chunks,
            bytes,
            output: path,
            exit_status,
            events_used,
            interrupted: matches!(reason, StopReason::Signal(_)),
            stopped_by: if failure.is_some() {
                StopReason::OutputFailed
            } else {
                reason
            },
            output_failure: failure,
            workload_ended_by_us: workload.and_then(Workload::ended_by_us),
        }
    }
}
