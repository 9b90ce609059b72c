//! Live tracing (`kprof trace`): the recording session of [`crate::record`] — same plan, rings,
//! side-band synthesis, stop signals and lost-sample accounting — with every record also handed
//! to a [`TraceConsumer`] as it is drained, tracepoint filters set in the kernel, and the
//! perf.data output optional.

use std::ffi::CString;
use std::io;

use kprof_perfdata::Features;
use kprof_perfdata::writer::{self, WriterAttr};

use crate::error::{Error, Result};
use crate::make_plan;
use crate::output::{Destination, Output};
use crate::recording::{self, RecordSummary};
use crate::ring::RawData;
use crate::session::{RecordSink, Session, StopReason};
use crate::{RecordOptions, cgroup, procfs};

/// What to trace. Build with `Default` and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceOptions {
    /// Events, target, call graph, ring size, cgroup, duration; `record.output` is used only
    /// when `write_output` is set.
    pub record: RecordOptions,
    /// Also write the records to `record.output` as perf.data. Default: false.
    pub write_output: bool,
    /// Kernel tracepoint filters, `(event name as in -e, filter)`, set on every fd of the
    /// event before it is enabled. Default: none.
    pub filters: Vec<(String, String)>,
}

/// Takes the records of a live trace as the session drains them.
pub trait TraceConsumer {
    /// Before any record: the stream's attrs and host facts (with the tracepoints' formats).
    fn begin(&mut self, attrs: &[WriterAttr], features: &Features) -> io::Result<()>;
    /// One record (side-band, sample, LOST, FINISHED_ROUND...). An error stops the trace.
    fn record(&mut self, raw: RawData<'_>) -> io::Result<()>;
    /// After each round of the session's loop (at least every 100 ms).
    fn tick(&mut self) -> io::Result<()>;
}

/// The session's sink: the output file when there is one, then the consumer.
struct Tee<'a> {
    out: Option<&'a mut Output>,
    consumer: &'a mut dyn TraceConsumer,
}

impl RecordSink for Tee<'_> {
    fn record(&mut self, raw: RawData<'_>) -> io::Result<()> {
        if let Some(out) = self.out.as_deref_mut() {
            out.record(raw)?;
        }
        self.consumer.record(raw)
    }

    fn tick(&mut self) -> io::Result<()> {
        if let Some(out) = self.out.as_deref_mut() {
            out.tick()?;
        }
        self.consumer.tick()
    }
}

/// Traces according to `options` until the command exits, a stop signal arrives, the duration
/// passes or the consumer (or the output) fails. `notes` receives one-line notes.
pub fn trace(
    options: &TraceOptions,
    notes: &mut dyn FnMut(&str),
    consumer: &mut dyn TraceConsumer,
) -> Result<RecordSummary> {
    let record = &options.record;
    let quiet = record.quiet;
    let mut note = |text: &str| {
        if !quiet || text.starts_with("error:") {
            notes(text);
        }
    };
    let notes: &mut dyn FnMut(&str) = &mut note;
    // The kernel's MMAP is for the perf.data writer only (kernel symbols of -g stacks, perf
    // script); reading /proc/kallsyms takes about half a second, so a trace without a file
    // skips it and one with a file reads it on a thread, written once the workload runs.
    // See: issue #14 point 3 (start-up under 0.1 s).
    let kernel_text = options
        .write_output
        .then(|| std::thread::Builder::new().spawn(procfs::kernel_text));
    let mut plan = make_plan(record)?;
    crate::note_probes_not_inherited(&plan, &record.target, notes);
    let mut filters = Vec::new();
    for (event, filter) in &options.filters {
        let Some(index) = plan.events.iter().position(|e| &e.name == event) else {
            return Err(Error::InvalidOption(format!(
                "--filter for {event}, which is not traced"
            )));
        };
        let text = CString::new(filter.as_str()).map_err(|_| {
            Error::InvalidOption(format!("--filter '{filter}': contains a NUL byte"))
        })?;
        filters.push((index, text));
    }
    let destination = if options.write_output {
        Some(Destination::prepare(&record.output, notes)?)
    } else {
        None
    };
    let syscalls = recording::system_calls(record.cgroup.as_deref())?;
    let stdout_taken = destination.as_ref().is_some_and(Destination::is_stdout);
    let mut workload = recording::spawn_workload(&record.target, &mut plan, stdout_taken)?;
    let synthesize_pids = recording::synthesized_pids(&record.target, plan.system_wide);
    // From here on a failure drops `workload`, which kills and reaps the child.
    let mut session = Session::open(syscalls, plan, notes)?;
    for (index, filter) in &filters {
        session.set_filter(*index, filter).map_err(|e| match e {
            Error::Syscall { source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
                Error::InvalidOption(format!(
                    "--filter '{}': the kernel rejected it (EINVAL)",
                    filter.to_string_lossy()
                ))
            }
            other => other,
        })?;
    }
    // Without the formats no field can be decoded: an error here, not a note.
    let mut header = recording::header_parts(&session, &mut Err)?;
    consumer
        .begin(&header.attrs, &header.features)
        .map_err(Error::Io)?;
    let out_err = |source| Error::Output {
        path: record.output.clone(),
        source,
    };
    let mut out = match destination {
        Some(d) => Some(d.open(header.attrs, &header.features)?),
        None => None,
    };
    let ctx = procfs::SynthesisContext {
        layout: session.sample_id_layout(),
        id: session.first_id(),
    };
    {
        let mut synth_out = |rec: &[u8]| -> io::Result<()> {
            session.note_record(rec);
            if let Some(out) = out.as_mut() {
                out.write_record(rec)?;
            }
            consumer.record(RawData::Single(rec))
        };
        // Events carry the kernel's task comm (bpftrace's comm), not `ps`'s bracketed names.
        let synthesis = procfs::SynthesisOptions {
            task_comm: true,
            ..procfs::SynthesisOptions::default()
        };
        match &synthesize_pids {
            None => {
                procfs::synthesize_processes_with(None, &ctx, &synthesis, &mut synth_out)
                    .map_err(out_err)?;
            }
            Some(p) if !p.is_empty() => {
                procfs::synthesize_processes_with(Some(p), &ctx, &synthesis, &mut synth_out)
                    .map_err(out_err)?;
            }
            Some(_) => {}
        }
        // The names of the cgroups that exist now; the kernel names those created later.
        if record.all_cgroups || record.cgroup.is_some() {
            if let Err(e) = cgroup::synthesize_cgroups(&ctx, &mut synth_out) {
                notes(&format!(
                    "note: cgroups that exist already will have no names: {e}"
                ));
            }
        }
        synth_out(&writer::encode_finished_init()).map_err(out_err)?;
    }
    if let Some(out) = out.as_mut() {
        out.checkpoint().map_err(out_err)?;
    }
    session.enable()?;
    if let Some(w) = workload.as_mut() {
        w.release()?;
    }
    if let Some(out) = out.as_mut() {
        out.keep();
    }
    if let Some(thread) = kernel_text {
        let text = match thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("reading /proc/kallsyms panicked"))),
            // No thread could be made to read it beside the workload (a limit on processes).
            Err(_) => procfs::kernel_text(),
        };
        let mut kernel_out = |rec: &[u8]| -> io::Result<()> {
            session.note_record(rec);
            if let Some(out) = out.as_mut() {
                out.write_record(rec)?;
            }
            consumer.record(RawData::Single(rec))
        };
        if let Err(e) =
            text.and_then(|text| procfs::synthesize_kernel_at(text, &ctx, &mut kernel_out))
        {
            notes(&format!("note: kernel symbols will be missing: {e}"));
        }
    }
    let (reason, stats) = {
        let mut tee = Tee {
            out: out.as_mut(),
            consumer,
        };
        let reason = session.run(&mut tee)?;
        let stats = session.finish(&mut tee);
        (reason, stats)
    };
    let mut discard = |_: RawData<'_>| Ok(());
    let stats = match stats {
        Ok(stats) => stats,
        // The consumer or the output failed: the rest is drained into nothing.
        Err(_) if reason == StopReason::OutputFailed => session.finish(&mut discard)?,
        Err(e) => return Err(e),
    };
    let exit = recording::end_workload(workload.as_mut(), &session);
    let mut failure = None;
    let mut bytes = stats.bytes;
    if let Some(out) = out {
        recording::finish_features(&mut header.features, &session, &stats);
        bytes = out.data_bytes();
        failure = out.finish(&header.features);
    }
    let output = recording::OutputEnd::new(record.output.clone(), bytes, failure);
    Ok(output.into_summary(&stats, reason, exit, workload.as_ref(), header.events_used))
}
