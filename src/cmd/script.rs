//! `kprof script`: every sample with its stack, in perf script's default text layout, so that
//! `stackcollapse-perf.pl` and `inferno-collapse-perf` read it.

use std::io::Write;

use anyhow::Result;

use crate::cli::ScriptArgs;
use crate::profile::Profile;

/// Writes `profile` as perf-script text.
pub fn write_script(profile: &Profile, out: &mut dyn Write) -> std::io::Result<()> {
    for sample in &profile.samples {
        let Some(thread) = profile.threads.get(sample.thread as usize) else {
            continue;
        };
        let event = profile
            .events
            .get(sample.event as usize)
            .map_or("unknown", |e| e.name.as_str());
        let cpu = sample.cpu.map(|c| format!(" [{c:03}]")).unwrap_or_default();
        writeln!(
            out,
            "{:>16} {:>7}/{:<7}{cpu} {:>5}.{:06}: {:>10} {event}: ",
            thread.name,
            thread.pid,
            thread.tid,
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
    let options = args.symbols.to_options(&args.filter);
    let loaded = super::load(&args.input, &options)?;
    super::print_notes(&loaded);
    let mut profile = loaded.analysis.profile;
    if let Some(event) = crate::analysis::select_event(&profile, args.filter.event.as_deref())?
        .filter(|_| args.filter.event.is_some())
    {
        profile.samples.retain(|s| s.event == event);
    }
    let mut out = super::output(None)?;
    write_script(&profile, &mut out)?;
    out.flush()?;
    Ok(())
}
