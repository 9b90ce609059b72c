//! `kprof flame`: fold the profile's stacks and render them as an SVG flame graph or folded text.

use anyhow::{Context, Result};
use kprof_flamegraph::{Palette, SvgOptions};

use crate::cli::{CountMode, FlameArgs, SvgArgs};
use crate::profile::fold::{Naming, RootBy, fold};

impl SvgArgs {
    /// The renderer options these flags ask for.
    pub fn to_options(&self, default_title: &str) -> Result<SvgOptions> {
        let mut opts = SvgOptions::default();
        opts.title = self
            .title
            .clone()
            .unwrap_or_else(|| default_title.to_string());
        opts.subtitle = self.subtitle.clone();
        opts.width = Some(self.width);
        opts.min_width = self.min_width;
        opts.reverse = self.reverse;
        opts.inverted = self.inverted;
        opts.colors = self
            .colors
            .parse::<Palette>()
            .with_context(|| format!("--colors {}", self.colors))?;
        Ok(opts)
    }
}

/// Runs `kprof flame`.
pub fn run(args: &FlameArgs) -> Result<()> {
    if args.offcpu.active() {
        return crate::cmd::offcpu::flame(args);
    }
    let mut options = args.symbols.to_options(&args.filter);
    options.weight_field = args.weight.clone();
    let loaded = super::load(&args.input, &options)?;
    super::print_notes(&loaded);
    let profile = &loaded.analysis.profile;
    let event = super::event_for_output(profile, &args.filter)?;
    if args.per_cgroup {
        super::note_missing_cgroups(profile);
    }
    let root = if args.per_thread {
        RootBy::Thread
    } else if args.per_process {
        RootBy::Process
    } else if args.per_cgroup {
        RootBy::Cgroup
    } else {
        RootBy::Comm
    };
    let naming = Naming {
        lines: args.symbols.lines,
        root,
    };
    let folder = fold(profile, event, args.filter.count.into(), naming);
    let mut out = super::output(args.output.as_deref())?;
    if args.folded {
        folder.write_folded(&mut out)?;
    } else {
        let event_name = event
            .and_then(|e| profile.events.get(e as usize))
            .map_or("samples", |e| e.name.as_str());
        let mut opts = args.svg.to_options(&format!("Flame Graph: {event_name}"))?;
        opts.count_name = match (args.filter.count, event_name) {
            _ if args.weight.is_some() => args.weight.clone().unwrap_or_default(),
            (CountMode::Period, "cpu-clock" | "task-clock") => "ns".to_string(),
            (CountMode::Period, _) => "events".to_string(),
            (CountMode::Samples, _) => "samples".to_string(),
        };
        if opts.subtitle.is_none() {
            opts.subtitle = profile.meta.cmdline.clone();
        }
        kprof_flamegraph::render_svg(&folder, &opts, &mut out)?;
    }
    out.commit()?;
    super::leave_to_exit((loaded, folder));
    Ok(())
}
