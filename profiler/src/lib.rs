//! kprof-profiler: records samples with `perf_event_open(2)` into a perf.data file.
//!
//! # What it owns
//! Turning [`RecordOptions`] into kernel events (one fd per event, task and CPU; one mmap ring per
//! CPU), running the workload held before `exec` until the events are ready, draining the rings
//! until the workload exits, a signal arrives or the duration passes, and writing everything
//! (kernel records, synthesized side-band for running processes, lost-sample counts, host
//! features, tracepoints' event formats) through [`kprof_perfdata::writer::Writer`] (or its
//! `PipeWriter`: one record path, `RecordWriter`). The output can be read by Linux perf.
//! [`record`] and [`live::trace`] (records also handed to a consumer as they are drained) run
//! the same session: what they share around it (the workload's start and end, the output's
//! header and end features, the summary) is the crate-private `recording`. Counting without sampling ([`counting`], for `kprof stat`), and
//! listing what the machine can count ([`catalog`], for `kprof list`), use the same event
//! parsing and system calls.
//!
//! # What the caller provides
//! The options and a `notes` callback for one-line notes (fallbacks such as `cycles` →
//! `cpu-clock` on machines without a hardware PMU). The CLI maps [`RecordSummary::exit_status`]
//! (or [`Error::exit_code`]) to kprof's own exit status.
//!
//! # What it won't do
//! Symbolize, unwind or aggregate (see `kprof-symbolizer`, `kprof-flamegraph`); record AUX data
//! (Intel PT) or branch stacks.
//!
//! # Design constraints
//! All `unsafe` lives in the crate-private `sys`, which takes a ready `perf_event_attr`
//! ([`events::EventAttr::to_kernel`] builds it): `events` uses `sys`, never the reverse. The
//! crate-private `session` reaches the kernel only through its `Syscalls` trait, so its loop
//! (stop on workload exit, Ctrl-C, lost samples) is tested with a fake kernel; it reads the
//! records of the rings with perfdata's [`kprof_perfdata::RecordParseInfo`] for the attrs it
//! opened, the same decoder as the file reader's, and writes its synthesized records with the
//! writer's encoders and perfdata's one `SampleId` type. A failed start never leaves the
//! workload running: it is forked stopped and killed if setup fails. Where the output goes is decided by what is at its path ([`output`]):
//! a regular file is replaced (the old one kept as `NAME.old`) and written in the file format
//! with its header checkpointed every second, so SIGKILL loses at most the last second; a FIFO,
//! a character device or `-` (standard output) gets the pipe format; nothing else is ever
//! renamed or created. Every stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGALRM)
//! finishes the file. A write error (a full disk) keeps what reached the disk, finishes the
//! file around it, stops recording and lets the workload run on
//! ([`RecordSummary::output_failure`]).
//!
//! # Example
//! ```no_run
//! use kprof_profiler::{record, RecordOptions, Target};
//! let mut options = RecordOptions::default();
//! options.target = Target::Command(vec!["sleep".into(), "1".into()]);
//! options.output = "sleep.data".into();
//! let summary = record(&options, &mut |note| eprintln!("{note}"))?;
//! println!("{} samples, exit status {:?}", summary.samples, summary.exit_status);
//! # Ok::<(), kprof_profiler::Error>(())
//! ```
//! Parsing helpers run anywhere:
//! ```
//! assert_eq!(kprof_profiler::parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
//! ```
#![deny(missing_docs)]

pub mod buildid;
pub mod catalog;
pub mod cgroup;
pub mod counting;
pub mod error;
pub mod events;
pub mod live;
pub mod output;
pub mod perms;
pub mod probe;
pub mod procfs;
mod recording;
pub mod ring;
pub(crate) mod session;
pub(crate) mod sys;
pub mod target;
pub mod tracefs_names;
pub mod tracing;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use kprof_perfdata::writer;

pub use error::{Error, Result};
pub use output::OutputFailure;
pub use recording::{RecordSummary, WORKLOAD_GRACE};
pub use ring::RawData;
pub use session::CallGraph;
pub use target::{EndedBy, Target};

pub use session::StopReason;
use session::{Plan, Sampling, Session};
pub use sys::ChildExit;

/// Default sampling frequency (`-F`), as perf.
pub const DEFAULT_FREQUENCY: u64 = 4000;
/// Default ring size per CPU in data pages (512 KiB with 4 KiB pages), as perf.
pub const DEFAULT_MMAP_PAGES: usize = 128;
/// Default output file name.
pub const DEFAULT_OUTPUT: &str = "kprof.data";

/// What to record and where. Build with `Default` and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordOptions {
    /// `-e` specs, each possibly a comma list. Default: `["cycles"]` (falls back to cpu-clock
    /// without a PMU).
    pub events: Vec<String>,
    /// `-F HZ`. Default: 4000 unless `period` is set.
    pub frequency: Option<u64>,
    /// `-c PERIOD`. Default: none (frequency mode).
    pub period: Option<u64>,
    /// `-g` / `--call-graph`. Default: none.
    pub call_graph: Option<CallGraph>,
    /// Whom to record. Default: an empty command (an error: give one).
    pub target: Target,
    /// `-C LIST`: only these CPUs. Default: all online CPUs.
    pub cpus: Option<Vec<u32>>,
    /// `-a`: every task on the CPUs (with a command: while it runs). Default: false.
    pub system_wide: bool,
    /// Stop after this long (meant for `-a`/`-p` without a command). Default: none.
    pub duration: Option<Duration>,
    /// `-o FILE`: a regular file (replaced, the old one kept as `FILE.old`), a FIFO or
    /// character device (written through, pipe format), or `-` for standard output (pipe
    /// format). Default: `kprof.data`.
    pub output: PathBuf,
    /// `-m PAGES`: data pages per CPU ring, a power of two. Default: 128.
    pub mmap_pages: Option<usize>,
    /// Suppress notes. Default: false.
    pub quiet: bool,
    /// `-G PATH`: only tasks in this cgroup, relative to the cgroup mount (implies system-wide,
    /// as perf's `-G`). Default: none.
    pub cgroup: Option<String>,
    /// `--all-cgroups`: every sample carries its cgroup (PERF_SAMPLE_CGROUP), with the names of
    /// the cgroups that exist at the start and of those created meanwhile (PERF_RECORD_CGROUP),
    /// as perf's `--all-cgroups`. On whenever `cgroup` is set. Default: false.
    pub all_cgroups: bool,
    /// `--off-cpu`: besides the sampled events, record every `sched:sched_switch` (the stack
    /// and state of the task going off the CPU) and `sched:sched_waking` (the waker's stack),
    /// and context-switch records (when each task comes back on). Default: false.
    pub off_cpu: bool,
}

pub use events::OFF_CPU_EVENTS;

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            events: vec!["cycles".to_owned()],
            frequency: None,
            period: None,
            call_graph: None,
            target: Target::default(),
            cpus: None,
            system_wide: false,
            duration: None,
            output: PathBuf::from(DEFAULT_OUTPUT),
            mmap_pages: None,
            quiet: false,
            cgroup: None,
            all_cgroups: false,
            off_cpu: false,
        }
    }
}

/// Parses a CPU list such as `0-3,5`, sorted and without duplicates.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>> {
    const MAX_CPU: u32 = 1 << 16;
    let bad = || Error::BadCpuList(text.to_owned());
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>(), b.trim().parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        let (Ok(lo), Ok(hi)) = (lo, hi) else {
            return Err(bad());
        };
        if lo > hi || hi >= MAX_CPU {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The online CPUs (`/sys/devices/system/cpu/online`), or 0..available_parallelism.
pub fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(&s).ok())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..u32::try_from(n).unwrap_or(1)).collect()
        })
}

/// `/proc/sys/kernel/perf_event_max_sample_rate`, if readable.
pub fn max_sample_rate() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Turns the options into a plan (without the workload pid, which comes after the fork).
fn make_plan(options: &RecordOptions) -> Result<Plan> {
    let mut events = Vec::new();
    let specs: Vec<&str> = if options.events.is_empty() {
        vec!["cycles"]
    } else {
        options.events.iter().map(String::as_str).collect()
    };
    for spec in specs {
        for item in tracefs_names::expand_event_list(spec)? {
            events.extend(events::parse_event_list(&item)?);
        }
    }
    if options.off_cpu {
        for name in OFF_CPU_EVENTS {
            if !events.iter().any(|e| e.name == name) {
                events.push(events::parse_event(name)?);
            }
        }
    }
    let events = events::resolve_probes(events, &options.target.probe_context())?;
    if events.is_empty() {
        return Err(Error::InvalidOption("no events given".to_owned()));
    }
    let sampling = match (options.frequency, options.period) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidOption(
                "give either -F or -c, not both".to_owned(),
            ));
        }
        (_, Some(0)) | (Some(0), _) => {
            return Err(Error::InvalidOption(
                "-F and -c must be positive".to_owned(),
            ));
        }
        (None, Some(p)) => Sampling::Period(p),
        (f, None) => Sampling::Frequency(f.unwrap_or(DEFAULT_FREQUENCY)),
    };
    if let (Sampling::Frequency(hz), Some(max)) = (sampling, max_sample_rate()) {
        if hz > max {
            return Err(Error::FrequencyTooHigh { requested: hz, max });
        }
    }
    let data_pages = options.mmap_pages.unwrap_or(DEFAULT_MMAP_PAGES);
    if !data_pages.is_power_of_two() {
        return Err(Error::InvalidOption(format!(
            "-m {data_pages}: must be a power of two"
        )));
    }
    let system_wide = options.system_wide
        || options.cgroup.is_some()
        || matches!(options.target, Target::SystemWide);
    let cpus = match &options.cpus {
        Some(c) if c.is_empty() => return Err(Error::InvalidOption("-C: empty CPU list".into())),
        Some(c) => c.clone(),
        None => online_cpus(),
    };
    let (tasks, skip_vanished_tasks) = match &options.target {
        _ if system_wide => (vec![-1], false),
        Target::Pids(pids) => {
            let mut tids = Vec::new();
            for &pid in pids {
                tids.extend(target::threads_of(pid)?);
            }
            (to_tasks(&tids)?, true)
        }
        Target::Tids(tids) => {
            if let Some(&missing) = tids.iter().find(|&&t| !target::thread_exists(t)) {
                return Err(Error::NoSuchTask(missing));
            }
            (to_tasks(tids)?, false)
        }
        Target::Command(argv) if argv.is_empty() => {
            return Err(Error::InvalidOption(
                "no command given (give a command, -p PID, -t TID or -a)".to_owned(),
            ));
        }
        // The workload's pid is filled in after the fork.
        Target::Command(_) | Target::SystemWide => (Vec::new(), false),
    };
    Ok(Plan {
        events,
        cpus,
        tasks,
        workload: None,
        sampling,
        call_graph: options.call_graph.map(CallGraph::validated).transpose()?,
        data_pages,
        duration: options.duration,
        system_wide,
        skip_vanished_tasks,
        record_cgroups: options.all_cgroups || options.cgroup.is_some(),
        switch_events: options.off_cpu,
    })
}

fn to_tasks(ids: &[u32]) -> Result<Vec<i32>> {
    if ids.is_empty() {
        return Err(Error::InvalidOption(
            "no process or thread ids given".to_owned(),
        ));
    }
    ids.iter()
        .map(|&id| i32::try_from(id).map_err(|_| Error::NoSuchTask(id)))
        .collect()
}

/// Says that probes on a command watch its first thread only (see
/// [`probe::NOT_INHERITED_NOTE`]), when they do.
pub(crate) fn note_probes_not_inherited(plan: &Plan, target: &Target, notes: &mut dyn FnMut(&str)) {
    if !plan.system_wide
        && matches!(target, Target::Command(_))
        && plan
            .events
            .iter()
            .any(|e| events::probe_site(&e.kind).is_some())
    {
        notes(probe::NOT_INHERITED_NOTE);
    }
}

/// Records according to `options` until the command exits, a stop signal arrives, the duration
/// passes or the output fails, and finishes the output. `notes` receives one-line notes
/// (suppressed by `quiet`, except errors, which start with `error:`).
pub fn record(options: &RecordOptions, notes: &mut dyn FnMut(&str)) -> Result<RecordSummary> {
    let quiet = options.quiet;
    let mut note = |text: &str| {
        if !quiet || text.starts_with("error:") {
            notes(text);
        }
    };
    let notes: &mut dyn FnMut(&str) = &mut note;
    // Everything that can be checked without side effects first (frequency limit, events, CPUs),
    // then the output path (a FIFO is opened now, before anything runs).
    let mut plan = make_plan(options)?;
    note_probes_not_inherited(&plan, &options.target, notes);
    let destination = output::Destination::prepare(&options.output, notes)?;
    let syscalls = recording::system_calls(options.cgroup.as_deref())?;
    let mut workload =
        recording::spawn_workload(&options.target, &mut plan, destination.is_stdout())?;
    let record_cgroups = plan.record_cgroups;
    let synthesize_pids = recording::synthesized_pids(&options.target, plan.system_wide);
    // From here on a failure drops `workload`, which kills and reaps the child.
    let mut session = Session::open(syscalls, plan, notes)?;
    let out_err = |source| Error::Output {
        path: options.output.clone(),
        source,
    };
    let mut header = recording::header_parts(&session, &mut |e| {
        notes(&format!(
            "note: tracepoint formats not saved, perf will not read this file: {}",
            e.with_causes()
        ));
        Ok(())
    })?;
    // Until `keep()`, dropping `out` removes a new file and puts the old one back.
    let mut out = destination.open(header.attrs, &header.features)?;
    let ctx = procfs::SynthesisContext {
        layout: session.sample_id_layout(),
        id: session.first_id(),
    };
    {
        let mut synth_out = |rec: &[u8]| -> io::Result<()> {
            session.note_record(rec);
            out.write_record(rec)
        };
        if let Err(e) = procfs::synthesize_kernel(&ctx, &mut synth_out) {
            notes(&format!("note: kernel symbols will be missing: {e}"));
        }
        match &synthesize_pids {
            None => {
                procfs::synthesize_processes(None, &ctx, &mut synth_out).map_err(out_err)?;
            }
            Some(p) if !p.is_empty() => {
                procfs::synthesize_processes(Some(p), &ctx, &mut synth_out).map_err(out_err)?;
            }
            Some(_) => {}
        }
        if record_cgroups {
            if let Err(e) = cgroup::synthesize_cgroups(&ctx, &mut synth_out) {
                notes(&format!(
                    "note: cgroups that exist already will have no names: {e}"
                ));
            }
        }
        synth_out(&writer::encode_finished_init()).map_err(out_err)?;
    }
    // A recording killed from here on leaves a file that reads.
    out.checkpoint().map_err(out_err)?;
    session.enable()?;
    if let Some(w) = workload.as_mut() {
        w.release()?;
    }
    out.keep();
    let mut reason = session.run(&mut out)?;
    let mut discard = |_: RawData<'_>| Ok(());
    let stats = match session.finish(&mut out) {
        Ok(stats) => stats,
        Err(_) if out.failure().is_some() => {
            reason = StopReason::OutputFailed;
            session.finish(&mut discard)?
        }
        Err(e) => return Err(e),
    };
    if reason == StopReason::OutputFailed {
        if let Some(failure) = out.failure() {
            notes(&failure_note(&options.output, failure, workload.is_some()));
        }
        // The workload runs on; so does the loop (discarding) until it ends or a stop signal.
        if workload.is_some() || options.duration.is_some() {
            reason = session.run(&mut discard)?;
        }
    }
    let exit = recording::end_workload(workload.as_mut(), &session);
    recording::finish_features(&mut header.features, &session, &stats);
    let bytes = out.data_bytes();
    let failed_before = out.failure().is_some();
    let failure = out.finish(&header.features);
    if let (Some(failure), false) = (&failure, failed_before) {
        notes(&failure_note(&options.output, failure, false));
    }
    let kept = failure.as_ref().map_or(bytes, |f| f.kept_bytes);
    let output = recording::OutputEnd::new(options.output.clone(), kept, failure);
    Ok(output.into_summary(&stats, reason, exit, workload.as_ref(), header.events_used))
}

/// The one error line about a failed output: the error, where, and what was kept.
fn failure_note(path: &std::path::Path, failure: &OutputFailure, runs_on: bool) -> String {
    let stopped = if runs_on {
        "recording stopped, the command runs on"
    } else {
        "recording stopped"
    };
    let mib = failure.kept_bytes as f64 / (1024.0 * 1024.0);
    let place = if path.as_os_str() == "-" {
        "standard output".to_owned()
    } else {
        path.display().to_string()
    };
    if failure.readable {
        format!(
            "error: writing {place}: {}; {stopped}. Kept {} samples ({mib:.2} MiB) in {place}, \
             which kprof and perf read",
            failure.error, failure.kept_samples
        )
    } else {
        format!(
            "error: writing {place}: {}; {stopped} after {} samples ({mib:.2} MiB)",
            failure.error, failure.kept_samples
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5").unwrap(), vec![0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("5,1,1").unwrap(), vec![1, 5]);
        assert_eq!(parse_cpu_list("0\n").unwrap(), vec![0]);
        for bad in ["", "3-1", "a", "1-", "-1", "0-99999999"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad}");
        }
        assert!(!online_cpus().is_empty());
    }

    #[test]
    fn plan_validation_happens_before_anything_starts() {
        let mut o = RecordOptions {
            target: Target::SystemWide,
            ..RecordOptions::default()
        };
        o.frequency = Some(u64::MAX);
        assert!(matches!(make_plan(&o), Err(Error::FrequencyTooHigh { .. })));
        o.frequency = Some(10);
        o.period = Some(10);
        assert!(matches!(make_plan(&o), Err(Error::InvalidOption(_))));
        o.period = None;
        o.mmap_pages = Some(3);
        assert!(matches!(make_plan(&o), Err(Error::InvalidOption(_))));
        o.mmap_pages = None;
        o.call_graph = Some(CallGraph::Dwarf { stack_size: 65536 });
        assert!(matches!(make_plan(&o), Err(Error::InvalidOption(_))));
        o.call_graph = Some(CallGraph::Dwarf { stack_size: 100 });
        assert_eq!(
            make_plan(&o).unwrap().call_graph,
            Some(CallGraph::Dwarf { stack_size: 104 })
        );
        o.events = vec!["cylces".into()];
        assert!(matches!(make_plan(&o), Err(Error::UnknownEvent { .. })));
        let plan = make_plan(&RecordOptions {
            target: Target::SystemWide,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plan.tasks, vec![-1]);
        assert_eq!(plan.sampling, Sampling::Frequency(DEFAULT_FREQUENCY));
        assert_eq!(plan.events[0].name, "cycles");
        let empty = make_plan(&RecordOptions::default()).unwrap_err();
        assert!(empty.to_string().contains("no command given"), "{empty}");
    }

    #[test]
    fn pids_expand_to_their_threads() {
        let me = std::process::id();
        let o = RecordOptions {
            target: Target::Pids(vec![me]),
            ..Default::default()
        };
        let plan = make_plan(&o).unwrap();
        assert!(plan.tasks.contains(&i32::try_from(me).unwrap()));
        assert!(plan.skip_vanished_tasks);
        let o = RecordOptions {
            target: Target::Tids(vec![u32::MAX - 3]),
            ..Default::default()
        };
        assert!(matches!(make_plan(&o), Err(Error::NoSuchTask(_))));
    }
}
