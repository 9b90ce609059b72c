//! `kprof export`: write the profile for pprof, speedscope or the Firefox Profiler.

use anyhow::Result;

use crate::cli::{ExportArgs, ExportFormatArg};
use crate::export::{ExportFormat, export};

/// Runs `kprof export`.
pub fn run(args: &ExportArgs) -> Result<()> {
    let mut profile = if args.offcpu.active() {
        crate::cmd::offcpu::profile_for(
            &args.input.path(),
            args.input.force,
            &args.symbols,
            &args.filter,
            args.offcpu.wall,
        )?
    } else {
        let options = args.symbols.to_options(&args.filter);
        let loaded = super::load(&args.input, &options)?;
        super::print_notes(&loaded);
        loaded.analysis.profile
    };
    if let Some(name) = args
        .filter
        .event
        .as_deref()
        .filter(|_| !args.offcpu.active())
    {
        if let Some(event) = crate::analysis::select_event(&profile, Some(name))? {
            profile.samples.retain(|s| s.event == event);
        }
    }
    let format = match args.format {
        ExportFormatArg::Pprof => ExportFormat::Pprof,
        ExportFormatArg::Speedscope => ExportFormat::Speedscope,
        ExportFormatArg::Firefox => ExportFormat::Firefox,
    };
    let mut out = super::output(args.output.as_deref())?;
    export(&profile, format, &mut out)?;
    out.commit()?;
    Ok(())
}
