//! `kprof stat`: turn the flags into counting options, count once or `-r` times, and print the
//! counts as perf stat does (see [`format`]). The command's exit status passes through.

mod format;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use kprof_profiler::StopReason;
use kprof_profiler::Target;
use kprof_profiler::counting::{self, CountOptions, RunStats};

use crate::cli::StatArgs;

pub use format::{Metric, Printer, Row, RowStats, Style, metric_for};

impl StatArgs {
    /// The counting options these flags ask for.
    pub fn to_options(&self) -> Result<CountOptions> {
        let mut options = CountOptions::default();
        options.events = self.events.clone();
        let resolved = self.target.to_target("count")?;
        options.cpus = resolved.cpus;
        options.cgroup = resolved.cgroup;
        options.system_wide = resolved.system_wide;
        options.target = resolved.target;
        options.interval = self.interval.map(Duration::from_millis);
        if self.repeat > 1 && !matches!(options.target, Target::Command(_)) {
            bail!("-r repeats a command: give one after --");
        }
        Ok(options)
    }

    fn style(&self) -> Style {
        match (&self.separator, self.json) {
            (_, true) => Style::Json,
            (Some(sep), false) => Style::Separated(sep.clone()),
            (None, false) => Style::Text,
        }
    }
}

/// Runs `kprof stat`; exits with the counted command's status.
pub fn run(args: &StatArgs) -> Result<ExitCode> {
    let options = args.to_options()?;
    // A file appears only once complete (see `super::Output`); counts otherwise go to stderr.
    let mut file_out = match &args.output {
        Some(path) => Some(super::output(Some(path))?),
        None => None,
    };
    let mut stderr = io::stderr().lock();
    let out: &mut dyn Write = match file_out.as_mut() {
        Some(file) => file,
        None => &mut stderr,
    };
    let mut printer = Printer::new(args.style(), args.target.cgroup.clone(), args.repeat);
    let quiet = args.quiet;
    let mut notes = |note: &str| {
        if !quiet {
            eprintln!("kprof: {note}");
        }
    };
    let mut rows: Vec<RowStats> = Vec::new();
    let mut walltime = RunStats::default();
    let mut cpu_times = None;
    let mut exit_status = None;
    for _ in 0..args.repeat {
        let interval = options.interval.unwrap_or_default();
        let mut print_interval = |iv: &counting::Interval| -> io::Result<()> {
            let interval_rows: Vec<Row> = iv.counters.iter().map(Row::from_result).collect();
            printer.interval(&mut *out, iv.elapsed, interval, &interval_rows)?;
            out.flush()
        };
        let summary = match counting::count(&options, &mut notes, &mut print_interval) {
            Ok(summary) => summary,
            Err(err) => return super::profiler_failure(err),
        };
        rows.resize_with(summary.counters.len(), RowStats::default);
        for (stats, result) in rows.iter_mut().zip(&summary.counters) {
            stats.push(Row::from_result(result));
        }
        walltime.push(summary.elapsed.as_nanos() as f64);
        cpu_times = summary.cpu_times;
        exit_status = summary.exit_status;
        // Ctrl-C ends the series, as in perf.
        if matches!(summary.stopped_by, StopReason::Signal(_)) {
            break;
        }
    }
    if options.interval.is_none() {
        let mean_rows: Vec<Row> = rows.iter().filter_map(RowStats::mean_row).collect();
        printer.header(&mut *out, &args.target.description())?;
        printer.rows(&mut *out, "", &mean_rows, walltime.mean())?;
        let cpu_times = if args.repeat == 1 && !options.system_wide {
            cpu_times
        } else {
            None
        };
        printer.footer(&mut *out, &walltime, cpu_times)?;
    }
    out.flush()?;
    if let Some(file) = file_out {
        file.commit()?;
    }
    Ok(match exit_status {
        Some(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        None => ExitCode::SUCCESS,
    })
}
