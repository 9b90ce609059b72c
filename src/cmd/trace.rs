//! `kprof trace`: tracepoint and probe events of a command, processes or the whole system, decoded one by
//! one — printed as lines (or JSON), or fed to an aggregation — live through the same session
//! as `kprof record`, or read back from a perf.data file (`-i`, kprof's or perf's own).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kprof_perfdata::tracepoint::EventFormat;
use kprof_perfdata::{ParseOptions, PerfFile};
use kprof_profiler::events::{self, EventKind};
use kprof_profiler::live::{TraceConsumer, TraceOptions};
use kprof_profiler::probe::{self, ResolveContext};
use kprof_profiler::{CallGraph, EndedBy, RawData, RecordOptions, RecordSummary, StopReason};

use crate::analysis::{self, AnalysisOptions};
use crate::cli::trace::TraceArgs;
#[cfg(test)]
use crate::cli::trace::parse_interval;
use crate::mapped;
use crate::trace::agg::{self, Aggregation, AggregationArgs, EventFields};
use crate::trace::capture::{self, Decoder, LiveCapture, Stacks, TraceOutput};
use crate::trace::event::{Event, EventSink};
use crate::trace::filter;
use crate::trace::lines::LinePrinter;
use crate::trace::probes;

/// Runs `kprof trace`; exits with the traced command's status.
pub fn run(args: &TraceArgs) -> Result<ExitCode> {
    if let Some(input) = &args.input {
        run_file(args, input)?;
        return Ok(ExitCode::SUCCESS);
    }
    match run_live(args) {
        Ok(code) => Ok(code),
        // A command that could not be started exits 127, as in a shell (and kprof record).
        Err(err) => match err
            .downcast_ref::<kprof_profiler::Error>()
            .and_then(kprof_profiler::Error::exit_code)
        {
            Some(code) => {
                eprintln!("kprof: {err:#}");
                Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
            }
            None => Err(err),
        },
    }
}

/// One traced event: a tracepoint with its format, or a probe (no format; its arguments are
/// its fields).
struct Traced {
    name: String,
    /// The tracepoint's format; `None` for a probe.
    format: Option<EventFormat>,
    /// The fields aggregations may name.
    fields: EventFields,
}

/// The `-e` lists expanded (globs) and checked: tracepoints, each with its format, and probes
/// (`u:`, `ur:`, `usdt:`), each site resolved against `context` as `kprof record` does.
fn traced_events(
    args: &TraceArgs,
    agg_args: &AggregationArgs,
    context: &ResolveContext,
) -> Result<Vec<Traced>> {
    let mut specs = args.events.clone();
    if specs.is_empty() {
        specs = agg::events_needed(agg_args);
    }
    if specs.is_empty() {
        bail!(
            "no events: give tracepoints or probes with -e, e.g. -e syscalls:sys_enter_read or \
             -e u:libc:malloc (kprof list shows them)"
        );
    }
    let mut names: Vec<String> = Vec::new();
    for spec in &specs {
        for name in kprof_profiler::tracefs_names::expand_event_list(spec)? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut root = None;
    let mut traced: Vec<Traced> = Vec::new();
    for name in names {
        let spec = events::parse_event(&name)?;
        if let EventKind::Probe(p) = &spec.kind {
            // A USDT probe may have several sites, all under one name: one event.
            let sites = probe::resolve(&p.spec, context)
                .with_context(|| format!("probe '{}'", spec.name))?;
            for site in sites {
                if traced.iter().all(|t| t.name != site.name) {
                    traced.push(Traced {
                        name: site.name.clone(),
                        format: None,
                        fields: probes::event_fields(&site),
                    });
                }
            }
            continue;
        }
        let EventKind::Tracepoint {
            system,
            name: event,
        } = &spec.kind
        else {
            bail!(
                "{name} is a counter, not a tracepoint or probe: kprof trace takes tracepoints \
                 and probes (kprof stat counts {name}, kprof record samples it)"
            );
        };
        let root = match &root {
            Some(root) => root,
            None => root.insert(kprof_profiler::catalog::tracefs()?),
        };
        let path = root.join("events").join(system).join(event).join("format");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => bail!(
                "permission denied reading {}: tracefs is readable by root only here; run as \
                 root, or remount it with gid=GROUP,mode=0750 for a group you are in",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("{name}: reading {}", path.display()));
            }
        };
        let format = EventFormat::parse(system, &text)
            .with_context(|| format!("{name}: parsing {}", path.display()))?;
        traced.push(Traced {
            name: spec.name.clone(),
            fields: capture::event_fields(&format),
            format: Some(format),
        });
    }
    Ok(traced)
}

/// `--latency u:PATH:FUNC`: the function's entry and return, as `ENTRY..RETURN` of the
/// resolved probes (paired per thread by the latency aggregation); other `--latency` as given.
fn latency_of_probes(
    agg_args: &AggregationArgs,
    context: &ResolveContext,
) -> Result<AggregationArgs> {
    let mut out = agg_args.clone();
    let Some(latency) = &agg_args.latency else {
        return Ok(out);
    };
    if let Some((entry, ret)) = probes::latency_pair(latency, context)? {
        if entry.contains("..") {
            bail!("--latency {latency}: its path {entry} contains `..`; give the path without it");
        }
        out.latency = Some(format!("{entry}..{ret}"));
    }
    Ok(out)
}

/// Checks `--filter` against every traced event: the kernel's checks for a tracepoint (the
/// kernel filters it), a compiled filter for each probe (filtered in user space), returned
/// with the probe's name.
fn check_filter(filter: &str, traced: &[Traced]) -> Result<Vec<(String, filter::Filter)>> {
    let mut user_space = Vec::new();
    for event in traced {
        let checked = match &event.format {
            Some(format) => filter::check(filter, format),
            None => filter::compile_for_probe(filter, &event.fields)
                .map(|compiled| user_space.push((event.name.clone(), compiled))),
        };
        if let Err(e) = checked {
            let of = if traced.len() > 1 {
                format!(" (for {})", event.name)
            } else {
                String::new()
            };
            bail!("--filter '{filter}'{of}: {e}");
        }
    }
    Ok(user_space)
}

fn run_live(args: &TraceArgs) -> Result<ExitCode> {
    let resolved = args.target.to_target("trace")?;
    // `--by stack` needs stacks: it implies -g, as bpftrace's `@[kstack, ustack]` needs no flag.
    let call_graph = args.call_graph || by_stack(&args.agg);
    if call_graph && args.interval.is_some() {
        bail!(
            "--interval cannot be combined with -g or --by stack: stacks are symbolized once \
             the trace ends"
        );
    }
    if args.output.as_deref() == Some(Path::new("-")) {
        bail!("-o -: kprof trace prints its events on standard output; give -o a file or a FIFO");
    }
    let context = resolved.target.probe_context();
    let agg_args = latency_of_probes(&args.agg, &context)?;
    let traced = traced_events(args, &agg_args, &context)?;
    let user_filters = match &args.filter {
        Some(filter) => check_filter(filter, &traced)?,
        None => Vec::new(),
    };
    let fields: Vec<EventFields> = traced.iter().map(|t| t.fields.clone()).collect();
    let aggregation = agg::build_aggregation(&agg_args, &fields)?;
    if aggregation.is_none() && args.interval.is_some() {
        bail!("--interval prints an aggregation: add one (--count, --hist FIELD, ...)");
    }

    let mut record = RecordOptions::default();
    record.events = traced.iter().map(|t| t.name.clone()).collect();
    record.call_graph = call_graph.then_some(CallGraph::Fp);
    record.target = resolved.target;
    record.system_wide = resolved.system_wide;
    record.cpus = resolved.cpus;
    record.cgroup = resolved.cgroup;
    // `--by cgroup`: samples carry their cgroup (PERF_SAMPLE_CGROUP), named by
    // PERF_RECORD_CGROUP records, as `record --all-cgroups`.
    record.all_cgroups = agg_args.by.iter().any(|key| key.trim() == "cgroup");
    record.mmap_pages = args.mmap_pages;
    record.quiet = args.quiet;
    if let Some(secs) = args.duration {
        if !(secs > 0.0 && secs.is_finite()) {
            bail!("--duration {secs}: must be a positive number of seconds");
        }
        record.duration = Some(Duration::from_secs_f64(secs));
    }
    // With -g the stacks are symbolized from a file once the trace ends: -o FILE, or a
    // temporary file removed afterwards.
    let temporary = match (&args.output, call_graph) {
        (None, true) => Some(TempFile::new()?),
        _ => None,
    };
    let output_path = args
        .output
        .clone()
        .or_else(|| temporary.as_ref().map(|t| t.path.clone()));
    let mut options = TraceOptions::default();
    if let Some(path) = &output_path {
        record.output = path.clone();
        options.write_output = true;
    }
    options.record = record;
    // The kernel filters tracepoints; probes are filtered in user space.
    options.filters = args
        .filter
        .iter()
        .flat_map(|f| {
            traced
                .iter()
                .filter(|t| t.format.is_some())
                .map(|t| (t.name.clone(), f.clone()))
        })
        .collect();

    let quiet = args.quiet;
    let mut notes = |note: &str| eprintln!("kprof: {note}");
    let stdout = io::stdout().lock();
    let json = args.agg.json;
    let mut sink: Box<dyn TraceOutput> = match aggregation {
        Some(aggregation) => Box::new(AggregationOutput::new(
            aggregation,
            stdout,
            json,
            args.interval,
        )),
        None => Box::new(
            LinePrinter::new(stdout, json)
                .with_addresses(traced.iter().filter_map(|t| t.format.as_ref())),
        ),
    };
    let mut filtered = filter::FilteredOutput::new(&mut *sink, user_filters);
    let (summary, lost, decode_notes) = if call_graph {
        let mut ignore = IgnoreRecords;
        let summary = trace(&options, &mut notes, &mut ignore)?;
        let path = output_path.as_deref().unwrap_or(Path::new("-"));
        let decoder = decode_file(path, &mut filtered)?;
        (summary, decoder.lost(), decoder.notes().to_vec())
    } else {
        let mut capture = LiveCapture::new(&mut filtered);
        let summary = trace(&options, &mut notes, &mut capture)?;
        if summary.stopped_by != StopReason::OutputFailed {
            capture.finish()?;
        }
        let decoder = capture.decoder();
        (summary, decoder.lost(), decoder.notes().to_vec())
    };
    filtered.finish()?;
    drop(filtered);
    if !quiet {
        for note in decode_notes {
            eprintln!("kprof: {note}");
        }
    }
    drop(temporary);
    if let Some(failure) = &summary.output_failure {
        bail!("writing {}: {}", summary.output.display(), failure.error);
    }
    let lost = lost.max(summary.lost_samples);
    if lost > 0 {
        eprintln!("kprof: {}", sink.lost_note(lost));
    }
    if !quiet && summary.workload_ended_by_us == Some(EndedBy::Sigkill) {
        eprintln!(
            "kprof: note: {} did not exit within {} s of SIGTERM; killed it with SIGKILL",
            args.target.program(),
            kprof_profiler::WORKLOAD_GRACE.as_secs()
        );
    }
    if !quiet {
        if let Some(path) = &args.output {
            eprintln!(
                "kprof: wrote {} events, {:.2} MiB to {}",
                summary.samples,
                summary.bytes as f64 / (1024.0 * 1024.0),
                path.display()
            );
        }
    }
    Ok(match summary.exit_status {
        _ if summary.stopped_by == StopReason::Duration
            && summary.workload_ended_by_us.is_some() =>
        {
            ExitCode::SUCCESS
        }
        Some(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        None => ExitCode::SUCCESS,
    })
}

/// True when an aggregation is keyed by the call stack.
fn by_stack(agg_args: &AggregationArgs) -> bool {
    agg_args.by.iter().any(|key| key.trim() == "stack")
}

/// Runs the profiler's live trace; its errors stay downcastable (`run` turns a failed exec into 127).
fn trace(
    options: &TraceOptions,
    notes: &mut dyn FnMut(&str),
    consumer: &mut dyn TraceConsumer,
) -> Result<RecordSummary> {
    Ok(kprof_profiler::live::trace(options, notes, consumer)?)
}

/// `kprof trace -i FILE`: the file's events through the same decoder and sinks.
fn run_file(args: &TraceArgs, input: &Path) -> Result<()> {
    // Events come from the file; which ones were traced is the file's business.
    let stdout = io::stdout().lock();
    let json = args.agg.json;
    let bytes = mapped::open_input(input, false)?;
    let file = PerfFile::parse_with(&bytes, &ParseOptions::default())
        .with_context(|| input.display().to_string())?;
    // Tracepoints by their formats; probes by their names (`u:PATH:FUNC`, the path resolved).
    let fields: Vec<EventFields> = file
        .attrs()
        .iter()
        .enumerate()
        .filter_map(|(i, attr)| match file.tracepoint_format(i) {
            Some(format) => Some(capture::event_fields(format)),
            None => probes::probe_of(&attr.name, 0).map(|site| probes::event_fields(&site)),
        })
        .collect();
    if fields.is_empty() {
        bail!(
            "{}: no tracepoint events with their formats and no probes (record them with \
             kprof trace -o or perf record -e SYSTEM:EVENT)",
            input.display()
        );
    }
    // A filter on a file is evaluated in user space, for every event (as the kernel would have
    // for each traced event).
    let mut user_filters = Vec::new();
    if let Some(text) = &args.filter {
        for (i, attr) in file.attrs().iter().enumerate() {
            let compiled = match file.tracepoint_format(i) {
                Some(format) => filter::compile_for_format(text, format),
                None => match probes::probe_of(&attr.name, 0) {
                    Some(site) => filter::compile_for_probe(text, &probes::event_fields(&site)),
                    None => continue,
                },
            };
            let compiled = compiled
                .map_err(|e| anyhow::anyhow!("--filter '{text}' (for {}): {e}", attr.name))?;
            user_filters.push((attr.name.clone(), compiled));
        }
    }
    let agg_args = latency_of_probes(&args.agg, &ResolveContext::default())?;
    let callchains = file
        .attrs()
        .iter()
        .any(|a| a.sample_type & kprof_perfdata::kinds::sample::CALLCHAIN != 0);
    if by_stack(&agg_args) && !callchains {
        bail!(
            "--by stack: {} has no call stacks (trace with -g, or record with perf record -g)",
            input.display()
        );
    }
    let aggregation = agg::build_aggregation(&agg_args, &fields)?;
    let mut sink: Box<dyn TraceOutput> = match aggregation {
        Some(aggregation) => Box::new(AggregationOutput::new(aggregation, stdout, json, None)),
        None => Box::new(
            LinePrinter::new(stdout, json)
                .with_addresses((0..file.attrs().len()).filter_map(|i| file.tracepoint_format(i))),
        ),
    };
    // Read once: the input may be a pipe.
    let mut filtered = filter::FilteredOutput::new(&mut *sink, user_filters);
    let decoder = decode_parsed(&file, input, &mut filtered)?;
    filtered.finish()?;
    drop(filtered);
    if !args.quiet {
        for note in decoder.notes() {
            eprintln!("kprof: {}: {note}", input.display());
        }
    }
    if decoder.lost() > 0 {
        eprintln!(
            "kprof: {}: {}",
            input.display(),
            sink.lost_note(decoder.lost())
        );
    }
    Ok(())
}

/// Decodes the file at `path` into `sink`, with symbolized stacks when its samples have
/// callchains.
fn decode_file(path: &Path, sink: &mut dyn TraceOutput) -> Result<Decoder> {
    let bytes = mapped::open_input(path, false)?;
    let file = PerfFile::parse_with(&bytes, &ParseOptions::default())
        .with_context(|| path.display().to_string())?;
    decode_parsed(&file, path, sink)
}

/// Decodes `file` (read from `path`) into `sink`, with symbolized stacks when its samples
/// have callchains.
fn decode_parsed(file: &PerfFile<'_>, path: &Path, sink: &mut dyn TraceOutput) -> Result<Decoder> {
    let callchains = file
        .attrs()
        .iter()
        .any(|a| a.sample_type & kprof_perfdata::kinds::sample::CALLCHAIN != 0);
    let analysis = if callchains {
        let options = AnalysisOptions {
            inline: true,
            demangle: true,
            dwarf: true,
            ..AnalysisOptions::default()
        };
        Some(analysis::analyze(file, &options).with_context(|| path.display().to_string())?)
    } else {
        None
    };
    let mut stacks = analysis.as_ref().map(|a| Stacks::new(&a.profile));
    let mut decoder = Decoder::default();
    decoder
        .feed(file, stacks.as_mut(), sink)
        .with_context(|| path.display().to_string())?;
    sink.tick()?;
    Ok(decoder)
}

/// A live consumer for `-g`: the records go to the file only.
struct IgnoreRecords;

impl TraceConsumer for IgnoreRecords {
    fn begin(
        &mut self,
        _: &[kprof_perfdata::writer::WriterAttr],
        _: &kprof_perfdata::Features,
    ) -> io::Result<()> {
        Ok(())
    }
    fn record(&mut self, _: RawData<'_>) -> io::Result<()> {
        Ok(())
    }
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An aggregation printed at the end, and every `--interval` when asked.
struct AggregationOutput<W: Write> {
    aggregation: Box<dyn Aggregation>,
    out: W,
    json: bool,
    interval: Option<Duration>,
    /// When events started to flow (the first tick), and when an interval last ended.
    clock: Option<(Instant, Instant)>,
}

impl<W: Write> AggregationOutput<W> {
    fn new(
        aggregation: Box<dyn Aggregation>,
        out: W,
        json: bool,
        interval: Option<Duration>,
    ) -> Self {
        AggregationOutput {
            aggregation,
            out,
            json,
            interval,
            clock: None,
        }
    }

    fn print(&mut self) -> io::Result<()> {
        if let (Some(_), Some((started, _)), false) = (self.interval, self.clock, self.json) {
            writeln!(self.out, "[{:.3} s]", started.elapsed().as_secs_f64())?;
        }
        self.aggregation.print(&mut self.out, self.json)?;
        self.out.flush()
    }
}

impl<W: Write> EventSink for AggregationOutput<W> {
    fn event(&mut self, event: &Event<'_>) {
        self.aggregation.event(event);
    }
    fn lost(&mut self, count: u64) {
        self.aggregation.lost(count);
    }
}

impl<W: Write> TraceOutput for AggregationOutput<W> {
    fn tick(&mut self) -> io::Result<()> {
        let Some(every) = self.interval else {
            return Ok(());
        };
        let now = Instant::now();
        let (_, last) = self.clock.get_or_insert((now, now));
        if now.duration_since(*last) >= every {
            *last += every;
            self.print()?;
            self.aggregation.reset();
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.print()
    }
    fn prints_while_tracing(&self) -> bool {
        self.interval.is_some()
    }
    fn lost_note(&self, lost: u64) -> String {
        format!(
            "{lost} events lost: the counts above are partial; use a bigger ring buffer \
             (-m PAGES) or a --filter"
        )
    }
}

/// A temporary perf.data for `-g` without `-o`, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("kprof-trace-{}.data", std::process::id()));
        Ok(TempFile { path })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let mut old = self.path.clone().into_os_string();
        old.push(".old");
        let _ = std::fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Counts events; prints the count; remembers what happened.
    #[derive(Default)]
    struct Counting {
        events: u64,
        log: Rc<RefCell<Vec<String>>>,
    }

    impl EventSink for Counting {
        fn event(&mut self, _: &Event<'_>) {
            self.events += 1;
        }
        fn lost(&mut self, count: u64) {
            self.log.borrow_mut().push(format!("lost {count}"));
        }
    }

    impl Aggregation for Counting {
        fn print(&self, out: &mut dyn Write, _json: bool) -> io::Result<()> {
            self.log.borrow_mut().push(format!("print {}", self.events));
            writeln!(out, "@: {}", self.events)
        }
        fn reset(&mut self) {
            self.events = 0;
        }
    }

    fn event() -> Event<'static> {
        Event {
            name: "sched:sched_switch",
            time_ns: 0,
            cpu: 0,
            pid: 1,
            tid: 1,
            comm: "init",
            cgroup: None,
            fields: &[],
            stack: None,
        }
    }

    #[test]
    fn intervals_print_and_start_afresh_and_the_end_prints_the_rest() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let aggregation = Counting {
            events: 0,
            log: log.clone(),
        };
        let mut out = AggregationOutput::new(
            Box::new(aggregation),
            Vec::new(),
            false,
            Some(Duration::from_secs(1)),
        );
        out.tick().unwrap();
        assert!(log.borrow().is_empty(), "the first tick starts the clock");
        for _ in 0..3 {
            out.event(&event());
        }
        out.tick().unwrap();
        assert!(log.borrow().is_empty(), "not a second yet");
        // A second and a half has passed since the clock started.
        let now = Instant::now();
        out.clock = Some((
            now - Duration::from_millis(1500),
            now - Duration::from_millis(1500),
        ));
        out.tick().unwrap();
        out.event(&event());
        out.lost(2);
        out.finish().unwrap();
        assert_eq!(*log.borrow(), ["print 3", "lost 2", "print 1"]);
        let text = String::from_utf8(out.out).unwrap();
        assert!(text.starts_with("[1.5"), "{text}");
        assert!(
            text.contains("@: 3\n[") && text.ends_with("@: 1\n"),
            "{text}"
        );
    }

    // See: issue #15 (a --filter on a probe is evaluated in user space on its arguments).
    #[test]
    fn a_filter_on_a_probe_is_compiled_for_user_space() {
        let probe = Traced {
            name: "u:/bin/prog:work".to_owned(),
            format: None,
            fields: EventFields {
                name: "u:/bin/prog:work".to_owned(),
                fields: vec![("arg0".to_owned(), true)],
            },
        };
        let compiled = check_filter("arg0 > 3", std::slice::from_ref(&probe)).unwrap();
        assert_eq!(compiled.len(), 1);
        assert_eq!(compiled[0].0, "u:/bin/prog:work");
        let err = check_filter("count > 3", &[probe]).unwrap_err().to_string();
        assert!(err.contains("unknown field \"count\""), "{err}");
        assert!(err.contains("arg0"), "{err}");
    }

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_interval("5ms").is_err());
        assert!(parse_interval("1h").is_err());
        assert!(parse_interval("fast").is_err());
    }
}
