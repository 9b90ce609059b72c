//! `kprof diff`: compare a baseline with a new profile (each side one or more runs) — a
//! differential flame graph, the functions whose share changed most, and a CI gate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use kprof_flamegraph::Folder;
use kprof_flamegraph::diff::{Comparison, Diff, DiffOptions};

use crate::cli::{CompareArg, DiffArgs, DiffFormat};
use crate::profile::fold::{Naming, RootBy, fold};

/// One run: its folded stacks and how many samples they hold (for the sampling noise).
fn fold_file(path: &Path, args: &DiffArgs) -> Result<(Folder, u64)> {
    if args.offcpu.active() {
        let profile = crate::cmd::offcpu::profile_for(
            path,
            false,
            &args.symbols,
            &args.filter,
            args.offcpu.wall,
        )?;
        let naming = Naming {
            lines: args.symbols.lines,
            root: RootBy::Comm,
        };
        let samples = profile.samples.len() as u64;
        return Ok((
            crate::offcpu::model::fold(&profile, args.filter.count, naming),
            samples,
        ));
    }
    let options = args.symbols.to_options(&args.filter);
    let loaded = super::load_path(path, false, &options)?;
    super::print_notes(&loaded);
    let profile = &loaded.analysis.profile;
    let event = super::event_for_output(profile, &args.filter)?;
    let naming = Naming {
        lines: args.symbols.lines,
        root: RootBy::Comm,
    };
    let samples = profile
        .samples
        .iter()
        .filter(|s| event.is_none_or(|e| e == s.event))
        .count() as u64;
    Ok((
        fold(profile, event, args.filter.count.into(), naming),
        samples,
    ))
}

/// Runs `kprof diff`; exits 1 when `--fail-on-regression` finds one.
pub fn run(args: &DiffArgs) -> Result<ExitCode> {
    let mut base_files: Vec<PathBuf> = Vec::new();
    let mut new_files: Vec<PathBuf> = Vec::new();
    match args.files.as_slice() {
        [] => {}
        [base, new] => {
            base_files.push(base.clone());
            new_files.push(new.clone());
        }
        [_] => bail!("give both BASE and NEW (or use --base/--new)"),
        _ => unreachable_files()?,
    }
    base_files.extend(args.base.iter().cloned());
    new_files.extend(args.new.iter().cloned());
    if base_files.is_empty() || new_files.is_empty() {
        bail!("nothing to compare: give BASE NEW, or --base FILE and --new FILE");
    }
    let (base, base_samples): (Vec<Folder>, Vec<u64>) = base_files
        .iter()
        .map(|p| fold_file(p, args))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let (new, new_samples): (Vec<Folder>, Vec<u64>) = new_files
        .iter()
        .map(|p| fold_file(p, args))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let mut options = DiffOptions::default();
    options.comparison = match args.compare {
        CompareArg::Auto => None,
        CompareArg::Time => Some(Comparison::Time),
        CompareArg::Share => Some(Comparison::Share),
    };
    options.base_samples = base_samples;
    options.new_samples = new_samples;
    let diff = Diff::from_runs_with(&base, &new, &options);
    let choice = diff.comparison();
    let mut out = super::output(args.output.as_deref())?;
    let rows = args.top.unwrap_or(10);
    match (args.format, args.top, args.folded) {
        (_, _, true) => diff.write_diff_folded(&mut out)?,
        (Some(DiffFormat::Markdown), _, _) => diff.write_markdown(&mut out, rows)?,
        (Some(DiffFormat::Text), _, _) | (None, Some(_), _) => diff.write_text(&mut out, rows)?,
        // A CI gate without an output file prints the summary, not an SVG.
        (None, None, false) if args.fail_on_regression.is_some() && args.output.is_none() => {
            diff.write_text(&mut out, rows)?
        }
        (Some(DiffFormat::Svg), _, _) | (None, None, false) => {
            let mut opts = args
                .svg
                .to_options("Differential Flame Graph (red: grew, blue: shrank)")?;
            if opts.subtitle.is_none() {
                opts.subtitle = Some(choice.to_string());
            }
            diff.render_svg(&opts, &mut out)?;
        }
    }
    out.commit()?;
    if let Some(threshold) = args.fail_on_regression {
        // A regression: a function's total value (time in it and its callees) grew by more
        // than the threshold, the run-to-run spread of either side and the sampling noise.
        // Roots (process names, which differ between builds) and inlined-only frames never are.
        let regressions = diff.total_regressions(threshold);
        if !regressions.is_empty() {
            let unit = match choice.comparison {
                Comparison::Time => "time (% of BASE's)",
                _ => "share",
            };
            eprintln!("kprof: {choice}");
            for c in &regressions {
                eprintln!(
                    "kprof: regression: {} total {unit} {:.2}% -> {:.2}% (+{:.2} points, threshold {threshold}, sampling noise {:.2})",
                    c.name,
                    c.base_total,
                    c.new_total,
                    c.total_delta(),
                    c.total_noise
                );
            }
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unreachable_files() -> Result<()> {
    bail!("give exactly two files, BASE and NEW; add more runs with --base and --new")
}
