//! The off-CPU outputs: `flame --off-cpu/--wakers/--wall`, `report --off-cpu [--runq]`, and the
//! derived profiles `diff` and `export` compare and write. Each states what the blocked time
//! rests on (intervals, unknown ones, records lost) on standard error, and the SVG and report
//! repeat it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use kprof_perfdata::PerfFile;

use crate::analysis::Analysis;
use crate::cli::{CountMode, FilterArgs, FlameArgs, InputArgs, ReportArgs, SymbolArgs};
use crate::cmd::{self, Loaded};
use crate::export::is_clock_event;
use crate::offcpu::model::{self, OnCpu, View};
use crate::offcpu::sched::{self, BlockState, Timeline};
use crate::profile::Profile;
use crate::profile::fold::{Naming, RootBy};

/// A loaded input with its scheduler timeline and how its on-CPU samples become time.
pub struct OffCpuInput {
    /// The symbolized source profile.
    pub loaded: Loaded,
    /// The intervals.
    pub timeline: Timeline,
    /// How on-CPU samples weigh as time (`None`: no on-CPU event, or one kprof cannot turn
    /// into time).
    pub on_cpu: Option<OnCpu>,
}

impl OffCpuInput {
    /// The derived profile of `view`.
    pub fn derive(&self, view: View) -> Result<Profile> {
        if view == View::Wall && self.on_cpu.is_none() {
            bail!(
                "--wall needs on-CPU samples of a clock event (cpu-clock, task-clock) or of an \
                 event sampled at a frequency; this file has neither besides the scheduler events"
            );
        }
        Ok(model::derive(
            &self.loaded.analysis.profile,
            &self.timeline,
            view,
            self.on_cpu,
        ))
    }
}

/// The on-CPU event (`--event`, else the first sampled event that is not a scheduler
/// tracepoint) and its weight as time.
fn on_cpu_event(file: &PerfFile<'_>, analysis: &Analysis, event: Option<&str>) -> Option<OnCpu> {
    let profile = &analysis.profile;
    let index = match event {
        Some(name) => crate::analysis::select_event(profile, Some(name)).ok()??,
        None => profile
            .events
            .iter()
            .position(|e| e.sample_count > 0 && !e.name.starts_with("sched:"))
            .and_then(|i| u16::try_from(i).ok())?,
    };
    let name = &profile.events.get(usize::from(index))?.name;
    let ns_per_sample = if is_clock_event(name) {
        None
    } else {
        let attr = file.attrs().get(usize::from(index))?;
        if !attr.freq || attr.sample_period_or_freq == 0 {
            return None;
        }
        Some(1_000_000_000 / attr.sample_period_or_freq)
    };
    Some(OnCpu {
        event: index,
        ns_per_sample,
    })
}

/// Loads the input `-i` names (or the default) and reads its scheduler timeline.
fn load(input: &InputArgs, symbols: &SymbolArgs, filter: &FilterArgs) -> Result<OffCpuInput> {
    load_path(&input.path(), input.force, symbols, filter)
}

/// Loads `path` and reads its scheduler timeline.
pub fn load_path(
    path: &Path,
    force: bool,
    symbols: &SymbolArgs,
    filter: &FilterArgs,
) -> Result<OffCpuInput> {
    let options = symbols.to_options(filter);
    let event = filter.event.clone();
    let (loaded, (timeline, on_cpu)) =
        cmd::load_path_with(path, force, &options, |file, analysis| {
            let timeline = sched::read(file)?;
            Ok((timeline, on_cpu_event(file, analysis, event.as_deref())))
        })?;
    cmd::print_notes(&loaded);
    eprintln!(
        "kprof: {}: off-CPU: {}",
        loaded.path.display(),
        timeline.quality_note()
    );
    Ok(OffCpuInput {
        loaded,
        timeline,
        on_cpu,
    })
}

/// Runs `kprof flame --off-cpu`, `--wakers` or `--wall`.
pub fn flame(args: &FlameArgs) -> Result<()> {
    let input = load(&args.input, &args.symbols, &args.filter)?;
    let view = if args.offcpu.wall {
        View::Wall
    } else if args.offcpu.wakers {
        View::Wakers
    } else {
        View::OffCpu
    };
    let profile = input.derive(view)?;
    let root = if args.per_thread || (view == View::Wall && !args.per_process) {
        RootBy::Thread
    } else if args.per_process {
        RootBy::Process
    } else {
        RootBy::Comm
    };
    let naming = Naming {
        lines: args.symbols.lines,
        root,
    };
    let folder = model::fold(&profile, args.filter.count, naming);
    let mut out = cmd::output(args.output.as_deref())?;
    if args.folded {
        folder.write_folded(&mut out)?;
    } else {
        let title = match view {
            View::OffCpu => "Off-CPU Time Flame Graph",
            View::Wakers => "Off-Wake Time Flame Graph (blocked stack below --, waker above)",
            View::Wall => "Wall-Clock Time Flame Graph (blue: off-CPU)",
        };
        let mut opts = args.svg.to_options(title)?;
        opts.count_name = match args.filter.count {
            CountMode::Period => "ns".to_owned(),
            CountMode::Samples => "intervals".to_owned(),
        };
        if opts.subtitle.is_none() {
            opts.subtitle = Some(input.timeline.quality_note());
        }
        kprof_flamegraph::render_svg(&folder, &opts, &mut out)?;
    }
    out.commit()?;
    Ok(())
}

/// Blocked time of one function, by state.
#[derive(Default)]
struct FunctionRow {
    by_state: BTreeMap<BlockState, u64>,
    total: u64,
}

/// Runs `kprof report --off-cpu` (and `--runq`).
pub fn report(args: &ReportArgs) -> Result<()> {
    if args.format != crate::cli::ReportFormat::Text {
        bail!("report --off-cpu prints text only");
    }
    let input = load(&args.input, &args.symbols, &args.filter)?;
    let mut out = cmd::output(args.output.as_deref())?;
    writeln!(out, "# off-CPU: {}", input.timeline.quality_note())?;
    if args.offcpu.runq {
        write_runq(&input, &mut out)?;
    } else {
        write_blocked(&input, args, &mut out)?;
    }
    out.commit()?;
    Ok(())
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Blocked time by function and state: a function's time is that of every interval whose
/// switch-out stack holds it (once per interval, however deep its recursion).
fn write_blocked(input: &OffCpuInput, args: &ReportArgs, out: &mut dyn Write) -> Result<()> {
    let profile = input.derive(View::OffCpu)?;
    let mut totals: BTreeMap<BlockState, u64> = BTreeMap::new();
    let mut rows: BTreeMap<(String, String), FunctionRow> = BTreeMap::new();
    let mut seen = Vec::new();
    for sample in &profile.samples {
        let frames: Vec<u32> = profile.frames_leaf_first(sample.stack).collect();
        // The outermost frame names the state (see the model).
        let Some(state_frame) = frames.last().and_then(|&f| profile.frames.get(f as usize)) else {
            continue;
        };
        let state = state_frame
            .function
            .strip_prefix('[')
            .and_then(|s| s.chars().next())
            .and_then(|c| BlockState::from_printed(&c.to_string()))
            .unwrap_or(BlockState::Other('?'));
        *totals.entry(state).or_insert(0) += sample.period;
        seen.clear();
        for &frame_id in &frames[..frames.len() - 1] {
            let frame = &profile.frames[frame_id as usize];
            let key = (frame.function.to_string(), frame.module.to_string());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            let row = rows.entry(key).or_default();
            *row.by_state.entry(state).or_insert(0) += sample.period;
            row.total += sample.period;
        }
    }
    let all: u64 = totals.values().sum();
    write!(out, "# blocked {:.3} ms:", ms(all))?;
    for (state, ns) in &totals {
        write!(
            out,
            " {} {:.3} ms ({:.2}%)",
            state.letter(),
            ms(*ns),
            *ns as f64 * 100.0 / all.max(1) as f64
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "# S sleeping, D uninterruptible (I/O), R preempted and waiting for a CPU; time of \
         every interval whose stack holds the function"
    )?;
    writeln!(out, "#")?;
    writeln!(
        out,
        "# {:>8}  {:>12}  {:>12}  {:>12}  {:>12}  Function [module]",
        "Total%", "Total ms", "S ms", "D ms", "R ms"
    )?;
    let mut sorted: Vec<_> = rows.into_iter().collect();
    sorted.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
    let limit = if args.top == 0 { usize::MAX } else { args.top };
    for ((function, module), row) in sorted.into_iter().take(limit) {
        let pct = row.total as f64 * 100.0 / all.max(1) as f64;
        if pct < args.percent_limit {
            continue;
        }
        let state = |s| ms(row.by_state.get(&s).copied().unwrap_or(0));
        let other: u64 = row
            .by_state
            .iter()
            .filter(|(s, _)| matches!(s, BlockState::Other(_)))
            .map(|(_, v)| v)
            .sum();
        let other = if other > 0 {
            format!("  (other states {:.3} ms)", ms(other))
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {pct:>7.2}%  {:>12.3}  {:>12.3}  {:>12.3}  {:>12.3}  {function} [{module}]{other}",
            ms(row.total),
            state(BlockState::Sleeping),
            state(BlockState::Uninterruptible),
            state(BlockState::Runnable),
        )?;
    }
    Ok(())
}

/// Per thread: how long it waited runnable before running again (after a wake-up, or after
/// being preempted).
fn write_runq(input: &OffCpuInput, out: &mut dyn Write) -> Result<()> {
    let profile = &input.loaded.analysis.profile;
    let names: BTreeMap<u32, (u32, &str)> = profile
        .threads
        .iter()
        .map(|t| (t.tid, (t.pid, t.name.as_str())))
        .collect();
    let mut waits: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut unknown: BTreeMap<u32, u64> = BTreeMap::new();
    for interval in &input.timeline.intervals {
        // Threads the filters (--comm, --pid, --tid) left out have no samples.
        if !names.contains_key(&interval.tid) {
            continue;
        }
        match interval.runq_ns() {
            Some(ns) => waits.entry(interval.tid).or_default().push(ns),
            None => *unknown.entry(interval.tid).or_insert(0) += 1,
        }
    }
    writeln!(
        out,
        "# run-queue latency: from wake-up (or preemption) to running again, per thread"
    )?;
    writeln!(
        out,
        "# {:>16} {:>8} {:>8} {:>12} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "thread", "pid", "tid", "total ms", "waits", "mean us", "p99 us", "max us", "no wake"
    )?;
    let mut rows: Vec<_> = waits.into_iter().collect();
    rows.sort_by_key(|(tid, w)| (std::cmp::Reverse(w.iter().sum::<u64>()), *tid));
    for (tid, mut w) in rows {
        w.sort_unstable();
        let total: u64 = w.iter().sum();
        let n = w.len() as u64;
        let p99 = w[((w.len() * 99).div_ceil(100))
            .saturating_sub(1)
            .min(w.len() - 1)];
        let (pid, name) = names.get(&tid).copied().unwrap_or((0, "?"));
        writeln!(
            out,
            "  {:>16} {:>8} {:>8} {:>12.3} {:>10} {:>10.1} {:>10.1} {:>10.1} {:>8}",
            name,
            pid,
            tid,
            ms(total),
            n,
            total as f64 / n.max(1) as f64 / 1e3,
            p99 as f64 / 1e3,
            w.last().copied().unwrap_or(0) as f64 / 1e3,
            unknown.get(&tid).copied().unwrap_or(0)
        )?;
    }
    Ok(())
}

/// The derived profile `diff` and `export` use for `--off-cpu` / `--wall`.
pub fn profile_for(
    path: &Path,
    force: bool,
    symbols: &SymbolArgs,
    filter: &FilterArgs,
    wall: bool,
) -> Result<Profile> {
    let input = load_path(path, force, symbols, filter)?;
    input.derive(if wall { View::Wall } else { View::OffCpu })
}
