//! `kprof script`: every sample with its stack, in perf script's default text layout, so that
//! `stackcollapse-perf.pl` and `inferno-collapse-perf` read it. Each frame shows the sample's
//! own address as perf prints it, and a tracepoint sample its fields (its `print fmt`).

use std::io::Write;

use anyhow::Result;

use crate::cli::ScriptArgs;
use crate::profile::Profile;

/// Writes `profile` as perf-script text: the samples of `event` (all when `None`), each
/// tracepoint sample with its text from `traces` (indexed like the samples; may be empty).
pub fn write_script(
    profile: &Profile,
    traces: &[Option<Box<str>>],
    event: Option<u16>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for (index, sample) in profile.samples.iter().enumerate() {
        if event.is_some_and(|e| e != sample.event) {
            continue;
        }
        let Some(thread) = profile.threads.get(sample.thread as usize) else {
            continue;
        };
        let event = profile
            .events
            .get(sample.event as usize)
            .map_or("unknown", |e| e.name.as_str());
        let cpu = sample.cpu.map(|c| format!(" [{c:03}]")).unwrap_or_default();
        let trace = traces.get(index).and_then(|t| t.as_deref()).unwrap_or("");
        // perf script -F +cgroup (perf after 6.1) prints the cgroup after the event and
        // its fields; only samples that carry one.
        let cgroup = match sample.cgroup {
            Some(_) => format!(" {}", profile.cgroup_label(sample)),
            None => String::new(),
        };
        writeln!(
            out,
            "{:>16} {:>7}/{:<7}{cpu} {:>5}.{:06}: {:>10} {event}: {trace}{cgroup}",
            thread.name,
            // perf prints ids as signed: a task being reaped is -1.
            thread.pid_signed(),
            thread.tid_signed(),
            sample.time / 1_000_000_000,
            sample.time % 1_000_000_000 / 1000,
            sample.period,
        )?;
        // A corrupt callchain's stack is its sampled instruction alone. perf script prints no
        // frame for it and stack collapsers then drop the sample; kprof prints that frame so
        // that the folded total is perf report's (issue #10 point 7).
        for frame_id in profile.frames_leaf_first(sample.stack) {
            let frame = &profile.frames[frame_id as usize];
            writeln!(
                out,
                "\t{:>16x} {} ({})",
                frame.module_offset, frame.function, frame.module
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Runs `kprof script`.
pub fn run(args: &ScriptArgs) -> Result<()> {
    let mut options = args.symbols.to_options(&args.filter);
    options.sample_addresses = true;
    options.trace_fields = true;
    let loaded = super::load(&args.input, &options)?;
    super::print_notes(&loaded);
    let analysis = &loaded.analysis;
    let event = crate::analysis::select_event(&analysis.profile, args.filter.event.as_deref())?
        .filter(|_| args.filter.event.is_some());
    let mut out = super::output(None)?;
    write_script(&analysis.profile, &analysis.traces, event, &mut out)?;
    out.commit()?;
    Ok(())
}
