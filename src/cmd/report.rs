//! `kprof report`: the hottest functions as a perf-report-like table (text or JSON), the
//! recording's facts (`--header`), and what kept frames from resolving.

use std::io::Write;

use anyhow::{Result, bail};
use kprof_flamegraph::report::{KeyId, Report, ReportOptions};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::analysis::quality::{FramePointerReport, Unresolved, UnwindReport};
use crate::cli::{ReportArgs, ReportFormat, SortKey};
use crate::profile::fold::weights_by;
use crate::profile::{FrameId, FrameKind, Profile, ThreadId};

/// One JSON row: shares plus one field per sort key.
#[derive(Serialize)]
struct JsonRow {
    #[serde(rename = "self")]
    self_percent: f64,
    children: f64,
    #[serde(flatten)]
    keys: serde_json::Map<String, serde_json::Value>,
}

/// One event's table in JSON.
#[derive(Serialize)]
struct JsonEvent<'a> {
    name: &'a str,
    samples: u64,
    period: u64,
    rows: Vec<JsonRow>,
}

/// `kprof report --format json`: a stable summary for CI artifacts.
#[derive(Serialize)]
struct JsonReport<'a> {
    kprof_version: &'static str,
    input: String,
    header: &'a crate::header::Header,
    lost_samples: u64,
    events: Vec<JsonEvent<'a>>,
    unresolved: Vec<Unresolved>,
    /// DWARF unwinding outcomes, per module, when the file has copied user stacks.
    unwinding: &'a UnwindReport,
    /// How far frame-pointer user stacks reached.
    frame_pointers: &'a FramePointerReport,
}

fn header_name(key: SortKey) -> &'static str {
    match key {
        SortKey::Comm => "Command",
        SortKey::Pid => "Pid:Command",
        SortKey::Tid => "Tid:Command",
        SortKey::Dso => "Shared Object",
        SortKey::Sym => "Symbol",
        SortKey::Cgroup => "Cgroup",
    }
}

fn json_name(key: SortKey) -> &'static str {
    match key {
        SortKey::Comm => "comm",
        SortKey::Pid => "pid",
        SortKey::Tid => "tid",
        SortKey::Dso => "dso",
        SortKey::Sym => "sym",
        SortKey::Cgroup => "cgroup",
    }
}

fn basename(path: &str) -> &str {
    if path.starts_with('[') {
        return path;
    }
    path.rsplit('/').next().unwrap_or(path)
}

/// Builds the table of one event.
fn build(profile: &Profile, event: u16, args: &ReportArgs) -> Report {
    let mut options = ReportOptions::default();
    options.sort_keys = args
        .sort
        .iter()
        .map(|&k| header_name(k).to_string())
        .collect();
    options.children = !args.no_children;
    options.percent_limit = args.percent_limit;
    let mut report = Report::new(options);
    // Samples with the same thread, stack (and cgroup, when a column) make the same row keys:
    // key each once.
    let by_cgroup = args.sort.contains(&SortKey::Cgroup);
    let entries = weights_by(
        profile,
        |s| s.event == event,
        args.filter.count.into(),
        |s| (s.thread, s.stack, s.cgroup.filter(|_| by_cgroup)),
    );
    // Each distinct frame (with its thread or cgroup, when a column shows them) becomes its
    // row key once: stacks share most of their frames.
    let by_thread = args
        .sort
        .iter()
        .any(|k| matches!(k, SortKey::Comm | SortKey::Pid | SortKey::Tid));
    let mut keys: FxHashMap<(ThreadId, FrameId, Option<u64>), KeyId> = FxHashMap::default();
    let mut stack: Vec<KeyId> = Vec::new();
    for ((thread_id, leaf, cgroup), weight) in entries {
        let thread = &profile.threads[thread_id as usize];
        stack.clear();
        for frame_id in profile.frames_leaf_first(leaf) {
            let frame = &profile.frames[frame_id as usize];
            if frame.inlined {
                continue; // like perf report, rows are real (ELF) symbols
            }
            let memo = (if by_thread { thread_id } else { 0 }, frame_id, cgroup);
            let key = *keys.entry(memo).or_insert_with(|| {
                let marker = if frame.kind == FrameKind::Kernel {
                    "[k]"
                } else {
                    "[.]"
                };
                let columns: Vec<String> = args
                    .sort
                    .iter()
                    .map(|key| match key {
                        SortKey::Comm => thread.name.clone(),
                        SortKey::Pid => {
                            format!("{}:{}", thread.pid_signed(), thread.process_name)
                        }
                        SortKey::Tid => format!("{}:{}", thread.tid_signed(), thread.name),
                        SortKey::Dso => basename(&frame.module).to_string(),
                        SortKey::Sym => format!("{marker} {}", frame.function),
                        SortKey::Cgroup => profile.cgroups.label(cgroup).to_string(),
                    })
                    .collect();
                report.intern(&columns)
            });
            stack.push(key);
        }
        report.add_interned(weight, &stack);
    }
    report
}

fn json_row(args: &ReportArgs, row: &kprof_flamegraph::report::ReportRow) -> JsonRow {
    let mut keys = serde_json::Map::new();
    for (key, value) in args.sort.iter().zip(&row.key) {
        let value = match key {
            SortKey::Sym => {
                let (marker, name) = value.split_at(3.min(value.len()));
                let kind = if marker == "[k]" { "kernel" } else { "user" };
                keys.insert("kind".into(), kind.into());
                serde_json::Value::from(name.trim_start())
            }
            SortKey::Pid | SortKey::Tid => {
                let (id, name) = value.split_once(':').unwrap_or((value, ""));
                keys.insert("process".into(), name.into());
                serde_json::Value::from(id.parse::<u64>().unwrap_or(0))
            }
            _ => serde_json::Value::from(value.as_str()),
        };
        keys.insert(json_name(*key).into(), value);
    }
    JsonRow {
        self_percent: row.self_percent,
        children: row.children_percent,
        keys,
    }
}

/// Runs `kprof report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    if args.offcpu.active() {
        return crate::cmd::offcpu::report(args);
    }
    let mut options = args.symbols.to_options(&args.filter);
    options.inline = false;
    let loaded = super::load(&args.input, &options)?;
    super::print_notes(&loaded);
    let profile = &loaded.analysis.profile;
    if args.sort.contains(&SortKey::Cgroup) {
        super::note_missing_cgroups(profile);
    }
    let events: Vec<u16> = match &args.filter.event {
        Some(name) => crate::analysis::select_event(profile, Some(name))?
            .into_iter()
            .collect(),
        None => (0..profile.events.len() as u16)
            .filter(|&e| profile.events[e as usize].sample_count > 0)
            .collect(),
    };
    // perf report prints "The perf.data data has no samples!" as an error but exits 0; kprof
    // exits 1 so that scripts notice (the header alone needs no samples).
    if events.is_empty() && !args.header_only {
        let filtered = args.filter.event.is_some()
            || !args.filter.comms.is_empty()
            || !args.filter.pids.is_empty()
            || !args.filter.tids.is_empty();
        if filtered {
            bail!(
                "{}: no samples match the --event/--comm/--pid/--tid filters",
                loaded.path.display()
            );
        }
        bail!("{}: no samples to report", loaded.path.display());
    }
    let unresolved = Unresolved::of(&loaded.analysis.symbol_report);
    let mut out = super::output(args.output.as_deref())?;
    match args.format {
        ReportFormat::Json => {
            let json_events = events
                .iter()
                .map(|&e| {
                    let info = &profile.events[e as usize];
                    let mut rows: Vec<JsonRow> = build(profile, e, args)
                        .rows()
                        .iter()
                        .map(|r| json_row(args, r))
                        .collect();
                    if args.top > 0 {
                        rows.truncate(args.top);
                    }
                    JsonEvent {
                        name: &info.name,
                        samples: info.sample_count,
                        period: info.total_period,
                        rows,
                    }
                })
                .collect();
            let report = JsonReport {
                kprof_version: env!("CARGO_PKG_VERSION"),
                input: loaded.path.display().to_string(),
                header: &loaded.header,
                lost_samples: profile.meta.lost_samples,
                events: json_events,
                unresolved,
                unwinding: &loaded.analysis.unwind_report,
                frame_pointers: &loaded.analysis.frame_pointers,
            };
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            if args.header || args.header_only {
                out.write_all(loaded.header.to_text().as_bytes())?;
                writeln!(out, "#")?;
            }
            if !args.header_only {
                for &e in &events {
                    let info = &profile.events[e as usize];
                    writeln!(
                        out,
                        "# Samples: {} of event '{}'\n# Event count (approx.): {}\n#",
                        info.sample_count, info.name, info.total_period
                    )?;
                    let report = build(profile, e, args);
                    if args.top > 0 {
                        let mut text = Vec::new();
                        report.write_text(&mut text)?;
                        let text = String::from_utf8_lossy(&text);
                        let mut rows = 0;
                        for line in text.lines() {
                            if !line.starts_with('#') && !line.is_empty() {
                                rows += 1;
                                if rows > args.top {
                                    break;
                                }
                            }
                            writeln!(out, "{line}")?;
                        }
                    } else {
                        report.write_text(&mut out)?;
                    }
                    writeln!(out)?;
                }
                if profile.meta.lost_samples > 0 {
                    writeln!(out, "# Lost samples: {}", profile.meta.lost_samples)?;
                }
                let quality = loaded
                    .analysis
                    .frame_pointers
                    .summary()
                    .into_iter()
                    .chain(loaded.analysis.unwind_report.summary());
                for line in quality.chain(unresolved.iter().map(Unresolved::line)) {
                    writeln!(out, "# {line}")?;
                }
            }
        }
    }
    out.commit()?;
    super::leave_to_exit(loaded);
    Ok(())
}
