//! `kprof record`: turn the flags into the profiler's options, record, and report the outcome.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kprof_profiler::{CallGraph, RecordOptions, Target};

use crate::cli::{CallGraphArg, RecordArgs};

impl RecordArgs {
    /// The profiler options these flags ask for.
    pub fn to_options(&self) -> Result<RecordOptions> {
        let mut options = RecordOptions::default();
        if !self.events.is_empty() {
            options.events = self.events.clone();
        }
        options.frequency = self.freq;
        options.period = self.count;
        options.call_graph = match (self.call_graph, self.call_graph_fp) {
            (Some(CallGraphArg::Dwarf(size)), _) => Some(CallGraph::Dwarf { stack_size: size }),
            (Some(CallGraphArg::Fp), _) | (None, true) => Some(CallGraph::Fp),
            (None, false) => None,
        };
        let cpus = match &self.cpus {
            Some(list) => {
                Some(kprof_profiler::parse_cpu_list(list).with_context(|| format!("-C {list}"))?)
            }
            None => None,
        };
        let system_wide = self.all_cpus || cpus.is_some() || self.cgroup.is_some();
        options.cpus = cpus;
        options.system_wide = system_wide;
        let attach = !self.pids.is_empty() || !self.tids.is_empty();
        if attach && !self.command.is_empty() {
            bail!("give either a command or -p/-t, not both");
        }
        options.target = if !self.command.is_empty() {
            Target::Command(self.command.clone())
        } else if !self.pids.is_empty() {
            Target::Pids(self.pids.clone())
        } else if !self.tids.is_empty() {
            Target::Tids(self.tids.clone())
        } else if system_wide {
            Target::SystemWide
        } else {
            bail!("nothing to profile: give a command after --, -p PID, -t TID or -a");
        };
        if let Some(secs) = self.duration {
            if !(secs > 0.0 && secs.is_finite()) {
                bail!("--duration {secs}: must be a positive number of seconds");
            }
            options.duration = Some(Duration::from_secs_f64(secs));
        }
        options.output = self.output.clone();
        options.mmap_pages = self.mmap_pages;
        options.cgroup = self.cgroup.clone();
        options.quiet = self.quiet;
        Ok(options)
    }
}

/// Runs `kprof record`; exits with the profiled command's status.
pub fn run(args: &RecordArgs) -> Result<ExitCode> {
    let options = args.to_options()?;
    let quiet = args.quiet;
    let mut notes = |note: &str| {
        if !quiet {
            eprintln!("kprof: {note}");
        }
    };
    let summary = match kprof_profiler::record(&options, &mut notes) {
        Ok(summary) => summary,
        // A command that could not be started exits 127, as in a shell.
        Err(err) => match err.exit_code() {
            Some(code) => {
                eprintln!("kprof: {err}");
                return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
            }
            None => return Err(err.into()),
        },
    };
    if !quiet {
        let lost = if summary.lost_samples > 0 || summary.lost_chunks > 0 {
            let total = summary.samples + summary.lost_samples;
            format!(
                ", {} lost ({:.2}%, {} chunks)",
                summary.lost_samples,
                summary.lost_samples as f64 * 100.0 / total.max(1) as f64,
                summary.lost_chunks
            )
        } else {
            ", 0 lost".to_string()
        };
        eprintln!(
            "kprof: wrote {} samples{lost}, {:.2} MiB to {}",
            summary.samples,
            summary.bytes as f64 / (1024.0 * 1024.0),
            summary.output.display()
        );
    }
    Ok(match summary.exit_status {
        Some(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        None => ExitCode::SUCCESS,
    })
}
