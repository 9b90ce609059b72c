//! `kprof record`: turn the flags into the profiler's options, record, and report the outcome.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use kprof_profiler::{CallGraph, EndedBy, RecordOptions, RecordSummary, StopReason};

use crate::cli::RecordArgs;

/// Ring size per CPU in pages with `--off-cpu` when `-m` is not given (4 MiB with 4 KiB pages).
pub const OFF_CPU_MMAP_PAGES: usize = 1024;

impl RecordArgs {
    /// The profiler options these flags ask for.
    pub fn to_options(&self) -> Result<RecordOptions> {
        let mut options = RecordOptions::default();
        if !self.events.is_empty() {
            options.events = self.events.clone();
        }
        options.frequency = self.freq;
        options.period = self.count;
        options.call_graph = self
            .call_graph
            .or(self.call_graph_fp.then_some(CallGraph::Fp));
        let resolved = self.target.to_target("profile")?;
        options.cpus = resolved.cpus;
        options.system_wide = resolved.system_wide;
        options.target = resolved.target;
        options.cgroup = resolved.cgroup;
        if let Some(secs) = self.duration {
            if !(secs > 0.0 && secs.is_finite()) {
                bail!("--duration {secs}: must be a positive number of seconds");
            }
            options.duration = Some(Duration::from_secs_f64(secs));
        }
        options.output = self.output.clone();
        options.mmap_pages = self.mmap_pages;
        // -G records the cgroup of each sample too: the one it names, and any below it.
        options.all_cgroups = self.all_cgroups || options.cgroup.is_some();
        options.quiet = self.quiet;
        options.off_cpu = self.off_cpu.off_cpu;
        // Switches come in bursts of three records each (switch-out with its stack, wake-up,
        // switch-in): a bigger ring than perf's default loses fewer of them.
        if options.off_cpu && options.mmap_pages.is_none() {
            options.mmap_pages = Some(OFF_CPU_MMAP_PAGES);
        }
        if options.off_cpu && options.call_graph.is_none() && !self.quiet {
            eprintln!(
                "kprof: note: --off-cpu without -g or --call-graph dwarf: blocked time is \
                 attributed to the instruction that switched out only"
            );
        }
        Ok(options)
    }
}

/// Runs `kprof record`; exits with the profiled command's status (0 when kprof itself ended it
/// at an expected stop: `--duration`), or 1 when the output could not be written in full.
pub fn run(args: &RecordArgs) -> Result<ExitCode> {
    let options = args.to_options()?;
    let quiet = args.quiet;
    // The profiler drops notes itself under -q, but never errors.
    let mut notes = |note: &str| eprintln!("kprof: {note}");
    let summary = match kprof_profiler::record(&options, &mut notes) {
        Ok(summary) => summary,
        Err(err) => return super::profiler_failure(err),
    };
    let program = args.target.program();
    if !quiet && summary.workload_ended_by_us == Some(EndedBy::Sigkill) {
        eprintln!(
            "kprof: note: {program} did not exit within {} s of SIGTERM; killed it with SIGKILL",
            kprof_profiler::WORKLOAD_GRACE.as_secs()
        );
    }
    if !quiet {
        let lost = if summary.lost_samples > 0 || summary.lost_chunks > 0 {
            let total = summary.samples + summary.lost_samples;
            format!(
                ", {} lost ({:.2}% of {total}, {} chunks)",
                summary.lost_samples,
                summary.lost_samples as f64 * 100.0 / total.max(1) as f64,
                summary.lost_chunks
            )
        } else {
            ", 0 lost".to_string()
        };
        let place = if summary.output.as_os_str() == "-" {
            "standard output".to_owned()
        } else {
            summary.output.display().to_string()
        };
        let (verb, preposition) = if summary.output_failure.is_some() {
            ("kept", "in")
        } else {
            ("wrote", "to")
        };
        eprintln!(
            "kprof: {verb} {} samples{lost}, {:.2} MiB {preposition} {place}",
            summary.samples,
            summary.bytes as f64 / (1024.0 * 1024.0),
        );
    }
    Ok(exit_code(&summary))
}

/// kprof's exit status for a finished recording: 1 when the output failed; 0 when kprof ended
/// the command at an expected stop (`--duration`: that stop is not a failure); otherwise the
/// command's own status (128 + signal when a signal ended it).
fn exit_code(summary: &RecordSummary) -> ExitCode {
    if summary.output_failure.is_some() {
        return ExitCode::FAILURE;
    }
    if summary.stopped_by == StopReason::Duration && summary.workload_ended_by_us.is_some() {
        return ExitCode::SUCCESS;
    }
    match summary.exit_status {
        Some(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        None => ExitCode::SUCCESS,
    }
}
