//! Differential profiles: BASE vs NEW, per function and per stack.
//!
//! A function is a frame name. For each run of each side, a function's **self** weight is the
//! weight of the stacks whose innermost frame that is not inlined is that function (inlined
//! frames count toward the function they were inlined into, as in `perf report`), and its
//! **total** weight that of the stacks that contain it anywhere (once per stack).
//!
//! Two [`Comparison`]s turn weights into comparable numbers (percentages, 0–100):
//! - [`Comparison::Share`]: a weight as a share of its run's total. Right when every run lasts
//!   a fixed time: a slower function then leaves less time to the others, whose time shrinks
//!   while their work did not change.
//! - [`Comparison::Time`]: a weight per run (with periods as weights: time) as a percentage of
//!   BASE's mean total. Right when every run does a fixed amount of work (a benchmark of N
//!   iterations): a slower function makes the run longer and the others keep their time, while
//!   their *share* shrinks.
//!
//! [`Diff::from_runs`] chooses from the data ([`ComparisonChoice`]): if the median function
//! (by BASE's self weight) kept its time while NEW's total changed, the runs did a fixed
//! amount of work and times are compared, else shares.
//!
//! A side's value is the mean over its runs, and its **spread** is max − min over its runs.
//! Changes are ranked growth first: a function that shrank never leads one that grew. A
//! *regression* is a growth beyond the caller's threshold, the larger spread of the two sides,
//! and (when the runs' sample counts are given) three standard errors of sampling: a change
//! within run-to-run or sampling noise is not reported. Root frames (in kprof, the
//! process or thread name, which differs between builds of one benchmark) are never
//! regressions.
//!
//! Differential output follows Brendan Gregg's differential flame graphs as inferno implements
//! them: folded lines `stack base_count new_count` where BASE's counts are scaled to NEW's
//! (to NEW's total when comparing shares, to NEW's number of runs when comparing time),
//! rendered in NEW's shape, red where a stack grew and blue where it shrank.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufWriter, Write};

use inferno::flamegraph as inferno_fg;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::error::Result;
use crate::folder::{Folder, FrameKind};
use crate::sanitize;
use crate::svg::{SvgOptions, frame_order, inferno_options, render_svg, run_inferno};

/// Names longer than this many characters are cut (with `…`) in text and markdown summaries.
pub const SUMMARY_NAME_CHARS: usize = 120;

/// Largest count handed to inferno in a differential SVG (see `visible::MAX_RENDER_TOTAL`).
const MAX_DIFF_COUNT: u128 = 1 << 52;

/// What a diff compares between BASE and NEW; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Comparison {
    /// Each function's share of its own run's total weight (runs of a fixed duration).
    Share,
    /// Each function's weight per run, in percent of BASE's mean total weight (runs doing a
    /// fixed amount of work).
    Time,
}

/// The comparison a diff uses and why, for telling the user.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ComparisonChoice {
    /// The comparison used.
    pub comparison: Comparison,
    /// Chosen from the data, not by the caller.
    pub automatic: bool,
    /// NEW's mean total weight over BASE's (1 when either side is empty).
    pub total_ratio: f64,
    /// The median over functions (weighted by BASE's self weight) of NEW's self weight over
    /// BASE's: how much a typical function changed (1 when no function is on both sides).
    pub typical_ratio: f64,
}

/// How far (as a factor) the median function's weight may move while it still "kept its
/// time": sampling noise and a busier or idler machine move it by a few percent. A benchmark
/// of fixed duration whose code got slower runs fewer rounds, and its median function moves
/// by as much as the round count.
const KEPT_TIME_FACTOR: f64 = 1.1;

impl ComparisonChoice {
    /// Chooses from the two ratios: time when the typical function kept its time (within
    /// [`KEPT_TIME_FACTOR`]) and that fits clearly better (half the distance, on a log scale)
    /// than keeping its share; else share, which is also right when the totals are equal (the
    /// two comparisons then agree) and when a busier machine gave one side less time.
    fn automatic(total_ratio: f64, typical_ratio: f64) -> ComparisonChoice {
        let from_time = typical_ratio.ln().abs();
        let from_share = (typical_ratio / total_ratio).ln().abs();
        let comparison = if from_time <= KEPT_TIME_FACTOR.ln() && 2.0 * from_time < from_share {
            Comparison::Time
        } else {
            Comparison::Share
        };
        ComparisonChoice {
            comparison,
            automatic: true,
            total_ratio,
            typical_ratio,
        }
    }
}

impl fmt::Display for ComparisonChoice {
    /// One line, e.g. `Compared by share of each run's total (chosen: ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.comparison {
            Comparison::Share => write!(f, "Compared by share of each run's total")?,
            Comparison::Time => write!(f, "Compared by time per run, in % of BASE's mean total")?,
        }
        if !self.automatic {
            return Ok(());
        }
        let (t, s) = (self.total_ratio, self.typical_ratio);
        match self.comparison {
            Comparison::Share => write!(
                f,
                " (chosen: NEW's total is {t:.2}x BASE's, the median function's {s:.2}x: \
                 not runs doing a fixed amount of work)"
            ),
            Comparison::Time => write!(
                f,
                " (chosen: NEW's total is {t:.2}x BASE's but the median function's {s:.2}x: \
                 runs doing a fixed amount of work)"
            ),
        }
    }
}

/// How one function changed between BASE and NEW (percentages, 0–100, in the diff's
/// [`Comparison`]: shares of each run's total, or time in percent of BASE's mean total).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunctionChange {
    /// The function (frame) name, raw.
    pub name: String,
    /// Mean self value in BASE's runs.
    pub base_self: f64,
    /// Mean self value in NEW's runs.
    pub new_self: f64,
    /// Mean total (inclusive) value in BASE's runs.
    pub base_total: f64,
    /// Mean total (inclusive) value in NEW's runs.
    pub new_total: f64,
    /// Larger of the two sides' run-to-run spreads (max − min) of the self value; 0 with one
    /// run per side.
    pub self_spread: f64,
    /// Larger of the two sides' run-to-run spreads of the total value.
    pub total_spread: f64,
    /// How much the self value may move from sampling alone: three standard errors of the
    /// change (a binomial share, or a Poisson count for time), from the runs' sample counts;
    /// 0 when those are not known ([`DiffOptions`]).
    pub self_noise: f64,
    /// The same for the total value.
    pub total_noise: f64,
    /// The name is only ever a stack's root frame (a process or thread name): never a
    /// regression.
    pub root: bool,
    /// The name is only ever an inlined frame: its time counts toward the functions it was
    /// inlined into, and it is never a regression by itself.
    pub inlined: bool,
}

impl FunctionChange {
    /// Change of the self value, in percentage points (positive: grew).
    pub fn self_delta(&self) -> f64 {
        self.new_self - self.base_self
    }

    /// Change of the total value, in percentage points.
    pub fn total_delta(&self) -> f64 {
        self.new_total - self.base_total
    }

    /// Whether this change may be a regression at all (not a root, not only inlined).
    fn gateable(&self) -> bool {
        !self.root && !self.inlined
    }
}

/// How [`Diff::from_runs_with`] compares the runs.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DiffOptions {
    /// What to compare; `None` (the default) chooses from the data.
    pub comparison: Option<Comparison>,
    /// Samples in each BASE run, in the order of the runs, for the sampling noise of each
    /// change ([`FunctionChange::total_noise`]). Empty (the default): not known, no noise.
    pub base_samples: Vec<u64>,
    /// Samples in each NEW run, likewise.
    pub new_samples: Vec<u64>,
}

/// A differential profile of BASE vs NEW; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Diff {
    base: Folder,
    new: Folder,
    changes: Vec<FunctionChange>,
    runs: (usize, usize),
    choice: ComparisonChoice,
}

/// One name's weights in one run, and where it appeared.
#[derive(Debug, Clone, Copy, Default)]
struct NameWeights {
    self_weight: u64,
    total_weight: u64,
    /// Seen as a frame below the root.
    below_root: bool,
    /// Seen as a frame that is not inlined.
    not_inlined: bool,
}

/// Per function name, its weights in one run.
fn function_weights(folder: &Folder) -> HashMap<&str, NameWeights> {
    let mut weights: HashMap<usize, NameWeights> = HashMap::default();
    let mut seen: Vec<usize> = Vec::new();
    for (stack, weight) in folder.raw_stacks() {
        // Self time goes to the innermost frame that is not inlined (the leaf when all are).
        let owner = stack
            .iter()
            .rev()
            .find(|(_, kind)| *kind != FrameKind::Inlined)
            .or(stack.last());
        if let Some(&(index, _)) = owner {
            let entry = weights.entry(index).or_default();
            entry.self_weight = entry.self_weight.saturating_add(weight);
        }
        seen.clear();
        for (depth, &(index, kind)) in stack.iter().enumerate() {
            let entry = weights.entry(index).or_default();
            entry.below_root |= depth > 0;
            entry.not_inlined |= kind != FrameKind::Inlined;
            if !seen.contains(&index) {
                seen.push(index);
                entry.total_weight = entry.total_weight.saturating_add(weight);
            }
        }
    }
    weights
        .into_iter()
        .map(|(index, w)| (folder.name_at(index), w))
        .collect()
}

/// Mean and spread (max − min) of `values`.
fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    (mean, max - min)
}

/// One side's runs that have samples, as per-name (self, total) weights per run.
struct Side {
    /// Total weight of each run with samples.
    totals: Vec<u64>,
    /// Samples in those runs together, when known.
    samples: Option<u64>,
    /// Per name, (self, total) weight in each of those runs.
    weights: BTreeMap<String, Vec<(u64, u64)>>,
    /// Names seen below a root, and names seen not inlined.
    below_root: HashSet<String>,
    not_inlined: HashSet<String>,
}

impl Side {
    fn new(runs: &[Folder], samples: &[u64]) -> Side {
        let live: Vec<&Folder> = runs.iter().filter(|f| f.total() > 0).collect();
        let samples = (samples.len() == runs.len()).then(|| {
            runs.iter()
                .zip(samples)
                .filter(|(f, _)| f.total() > 0)
                .map(|(_, &n)| n)
                .sum()
        });
        let mut side = Side {
            totals: live.iter().map(|f| f.total()).collect(),
            samples: samples.filter(|&n| n > 0),
            weights: BTreeMap::new(),
            below_root: Default::default(),
            not_inlined: Default::default(),
        };
        for (run, folder) in live.iter().enumerate() {
            for (name, w) in function_weights(folder) {
                if w.below_root {
                    side.below_root.insert(name.to_owned());
                }
                if w.not_inlined {
                    side.not_inlined.insert(name.to_owned());
                }
                let per_run = side
                    .weights
                    .entry(name.to_owned())
                    .or_insert_with(|| vec![(0, 0); live.len()]);
                if let Some(slot) = per_run.get_mut(run) {
                    *slot = (w.self_weight, w.total_weight);
                }
            }
        }
        side
    }

    fn mean_total(&self) -> f64 {
        mean_and_spread(&self.totals.iter().map(|&t| t as f64).collect::<Vec<_>>()).0
    }

    fn mean_self(&self, name: &str) -> f64 {
        self.weights.get(name).map_or(0.0, |runs| {
            runs.iter().map(|r| r.0 as f64).sum::<f64>() / runs.len().max(1) as f64
        })
    }

    /// (self mean, self spread, total mean, total spread) of `name`, each run's weight divided
    /// by `scale(run)` and given in percent.
    fn summarize(&self, name: &str, scale: impl Fn(usize) -> f64) -> (f64, f64, f64, f64) {
        let zeros = vec![(0, 0); self.totals.len()];
        let runs = self.weights.get(name).unwrap_or(&zeros);
        let percent = |run: usize, weight: u64| weight as f64 * 100.0 / scale(run);
        let selfs: Vec<f64> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| percent(i, r.0))
            .collect();
        let totals: Vec<f64> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| percent(i, r.1))
            .collect();
        let (self_mean, self_spread) = mean_and_spread(&selfs);
        let (total_mean, total_spread) = mean_and_spread(&totals);
        (self_mean, self_spread, total_mean, total_spread)
    }
}

/// Three standard errors of the difference of two sides' values (percent) from sampling
/// alone; 0 when a side's sample count is unknown. Shares are binomial proportions of a side's
/// samples; times (percent of BASE's mean total) are Poisson counts of samples, BASE's mean
/// samples per run standing for 100%.
fn sampling_noise(
    comparison: Comparison,
    (base, base_value): (&Side, f64),
    (new, new_value): (&Side, f64),
) -> f64 {
    let (Some(base_samples), Some(new_samples)) = (base.samples, new.samples) else {
        return 0.0;
    };
    let variance = |value: f64, samples: u64, runs: usize| match comparison {
        Comparison::Share => {
            let p = (value / 100.0).clamp(0.0, 1.0);
            p * (1.0 - p) / samples as f64 * 1e4
        }
        Comparison::Time => {
            let base_per_run = base_samples as f64 / base.totals.len().max(1) as f64;
            value.max(0.0) * 100.0 / (runs.max(1) as f64 * base_per_run)
        }
    };
    let both = variance(base_value, base_samples, base.totals.len())
        + variance(new_value, new_samples, new.totals.len());
    3.0 * both.sqrt()
}

/// The median of `values` weighted by their weights: the value at which half of the weight
/// lies below. `None` when the weights sum to nothing.
fn weighted_median(mut values: Vec<(f64, f64)>) -> Option<f64> {
    values.retain(|(value, weight)| value.is_finite() && *weight > 0.0);
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = values.iter().map(|v| v.1).sum::<f64>() / 2.0;
    let mut below = 0.0;
    for (value, weight) in values {
        below += weight;
        if below >= half {
            return Some(value);
        }
    }
    None
}

fn merged(runs: &[Folder]) -> Folder {
    let mut all = Folder::new();
    for run in runs {
        all.merge(run.clone());
    }
    all
}

/// `value * numerator / denominator`, rounded, without overflow.
fn rescale(value: u64, numerator: u64, denominator: u64) -> u64 {
    if denominator == 0 {
        return 0;
    }
    let scaled = (u128::from(value) * u128::from(numerator) + u128::from(denominator) / 2)
        / u128::from(denominator);
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// Cuts `name` to [`SUMMARY_NAME_CHARS`] characters and escapes control characters.
fn summary_name(name: &str) -> String {
    let shown = sanitize::text(name);
    if shown.chars().count() <= SUMMARY_NAME_CHARS {
        return shown.into_owned();
    }
    let mut cut: String = shown.chars().take(SUMMARY_NAME_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Backslash-escapes markdown punctuation so a name renders literally (and cannot inject HTML
/// or break the table).
fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\`*_{}[]<>()#+-.!|~&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Ranks changes: functions that grew (largest growth of self first), then the others by the
/// size of their self change, then by their total change; roots last; ties by name.
fn rank(a: &FunctionChange, b: &FunctionChange) -> std::cmp::Ordering {
    let group = |c: &FunctionChange| match (c.root, c.self_delta() > 0.0) {
        (false, true) => 0,
        (false, false) => 1,
        (true, _) => 2,
    };
    group(a)
        .cmp(&group(b))
        .then_with(|| match group(a) {
            0 => b.self_delta().total_cmp(&a.self_delta()),
            _ => b.self_delta().abs().total_cmp(&a.self_delta().abs()),
        })
        .then_with(|| b.total_delta().abs().total_cmp(&a.total_delta().abs()))
        .then_with(|| a.name.cmp(&b.name))
}

impl Diff {
    /// A diff of one BASE run against one NEW run.
    pub fn new(base: &Folder, new: &Folder) -> Diff {
        Diff::from_runs(std::slice::from_ref(base), std::slice::from_ref(new))
    }

    /// A diff of several runs per side, comparing time or shares as the data suggests (see
    /// the [module docs](self)); values are means over runs, spreads max − min.
    pub fn from_runs(base: &[Folder], new: &[Folder]) -> Diff {
        Diff::from_runs_with(base, new, &DiffOptions::default())
    }

    /// [`from_runs`](Diff::from_runs) as `options` say.
    pub fn from_runs_with(base: &[Folder], new: &[Folder], options: &DiffOptions) -> Diff {
        let comparison = options.comparison;
        let base_side = Side::new(base, &options.base_samples);
        let new_side = Side::new(new, &options.new_samples);
        let mut names: Vec<&String> = base_side
            .weights
            .keys()
            .chain(new_side.weights.keys())
            .collect();
        names.sort_unstable();
        names.dedup();
        let (base_total, new_total) = (base_side.mean_total(), new_side.mean_total());
        let total_ratio = if base_total > 0.0 && new_total > 0.0 {
            new_total / base_total
        } else {
            1.0
        };
        let below_root =
            |name: &str| base_side.below_root.contains(name) || new_side.below_root.contains(name);
        let not_inlined = |name: &str| {
            base_side.not_inlined.contains(name) || new_side.not_inlined.contains(name)
        };
        let typical_ratio = weighted_median(
            names
                .iter()
                .filter(|name| below_root(name))
                .map(|name| {
                    let before = base_side.mean_self(name);
                    (new_side.mean_self(name) / before, before)
                })
                .collect(),
        )
        .filter(|r| *r > 0.0)
        .unwrap_or(1.0);
        let choice = match comparison {
            None => ComparisonChoice::automatic(total_ratio, typical_ratio),
            Some(comparison) => ComparisonChoice {
                comparison,
                automatic: false,
                total_ratio,
                typical_ratio,
            },
        };
        let mut changes: Vec<FunctionChange> = names
            .into_iter()
            .map(|name| {
                let (base_values, new_values) = match choice.comparison {
                    Comparison::Share => (
                        base_side.summarize(name, |run| {
                            base_side.totals.get(run).copied().unwrap_or(1) as f64
                        }),
                        new_side.summarize(name, |run| {
                            new_side.totals.get(run).copied().unwrap_or(1) as f64
                        }),
                    ),
                    Comparison::Time => {
                        let unit = base_total.max(1.0);
                        (
                            base_side.summarize(name, |_| unit),
                            new_side.summarize(name, |_| unit),
                        )
                    }
                };
                let (base_self, base_self_spread, base_total, base_total_spread) = base_values;
                let (new_self, new_self_spread, new_total, new_total_spread) = new_values;
                let noise = |base_value: f64, new_value: f64| {
                    sampling_noise(
                        choice.comparison,
                        (&base_side, base_value),
                        (&new_side, new_value),
                    )
                };
                FunctionChange {
                    self_noise: noise(base_self, new_self),
                    total_noise: noise(base_total, new_total),
                    name: name.clone(),
                    base_self,
                    new_self,
                    base_total,
                    new_total,
                    self_spread: base_self_spread.max(new_self_spread),
                    total_spread: base_total_spread.max(new_total_spread),
                    root: !below_root(name),
                    inlined: !not_inlined(name),
                }
            })
            .collect();
        changes.sort_by(rank);
        Diff {
            base: merged(base),
            new: merged(new),
            changes,
            runs: (base_side.totals.len(), new_side.totals.len()),
            choice,
        }
    }

    /// What this diff compares, and whether it was chosen from the data.
    pub fn comparison(&self) -> ComparisonChoice {
        self.choice
    }

    /// Every function seen on either side: those whose self value grew first (largest growth
    /// first), then the others by the size of their self change, then of their total change,
    /// root frames last, ties by name.
    pub fn changes(&self) -> &[FunctionChange] {
        &self.changes
    }

    /// The first `n` [`changes`](Diff::changes).
    pub fn top(&self, n: usize) -> &[FunctionChange] {
        self.changes.get(..n).unwrap_or(&self.changes)
    }

    /// Functions whose self value grew by more than `threshold_pct_points` percentage points
    /// *and* by more than the run-to-run spread and the sampling noise, largest growth first.
    /// Roots and names that are only inlined frames are left out.
    pub fn regressions(&self, threshold_pct_points: f64) -> Vec<&FunctionChange> {
        self.moved_beyond_noise(threshold_pct_points, |c| {
            (c.self_delta(), c.self_spread, c.self_noise)
        })
    }

    /// Functions whose total (inclusive) value grew by more than `threshold_pct_points`
    /// percentage points *and* by more than its run-to-run spread and its sampling noise,
    /// largest growth first: a
    /// CI gate that also catches a function whose callees got slower. Roots and names that
    /// are only inlined frames are left out.
    pub fn total_regressions(&self, threshold_pct_points: f64) -> Vec<&FunctionChange> {
        self.moved_beyond_noise(threshold_pct_points, |c| {
            (c.total_delta(), c.total_spread, c.total_noise)
        })
    }

    /// Functions whose self value shrank by more than `threshold_pct_points` and by more than
    /// the spread and the sampling noise, largest drop first.
    pub fn improvements(&self, threshold_pct_points: f64) -> Vec<&FunctionChange> {
        self.moved_beyond_noise(threshold_pct_points, |c| {
            (-c.self_delta(), c.self_spread, c.self_noise)
        })
    }

    /// The gateable changes whose `movement` (the move, in percentage points, with its
    /// run-to-run spread and sampling noise) is larger than `threshold_pct_points`, the
    /// spread and the noise: largest move first, ties by name.
    fn moved_beyond_noise(
        &self,
        threshold_pct_points: f64,
        movement: impl Fn(&FunctionChange) -> (f64, f64, f64),
    ) -> Vec<&FunctionChange> {
        let mut found: Vec<(f64, &FunctionChange)> = self
            .changes
            .iter()
            .filter(|c| c.gateable())
            .filter_map(|c| {
                let (moved, spread, noise) = movement(c);
                (moved > threshold_pct_points && moved > spread && moved > noise)
                    .then_some((moved, c))
            })
            .collect();
        found.sort_by(|(a_moved, a), (b_moved, b)| {
            b_moved.total_cmp(a_moved).then_with(|| a.name.cmp(&b.name))
        });
        found.into_iter().map(|(_, change)| change).collect()
    }

    /// BASE's runs merged.
    pub fn base(&self) -> &Folder {
        &self.base
    }

    /// NEW's runs merged.
    pub fn new_profile(&self) -> &Folder {
        &self.new
    }

    /// Differential lines: stack → (BASE count scaled to NEW, NEW count): to NEW's total when
    /// comparing shares, to NEW's number of runs when comparing time.
    fn diff_lines(&self, leaf_first: bool) -> BTreeMap<String, (u64, u64)> {
        let base = self.base.folded_lines(false, leaf_first);
        let new = self.new.folded_lines(false, leaf_first);
        let (numerator, denominator) = match self.choice.comparison {
            Comparison::Share => (
                new.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b)),
                base.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b)),
            ),
            Comparison::Time => (self.runs.1 as u64, self.runs.0 as u64),
        };
        let mut lines: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (stack, weight) in base {
            lines.entry(stack).or_default().0 = rescale(weight, numerator, denominator);
        }
        for (stack, weight) in new {
            lines.entry(stack).or_default().1 = weight;
        }
        lines
    }

    /// Writes inferno's differential folded format, `stack base_count new_count` per line,
    /// sorted, with BASE's counts scaled to NEW's (to NEW's total, like `difffolded.pl -n`,
    /// when comparing shares; per run when comparing time) and names sanitised as in
    /// [`Folder::write_folded`].
    pub fn write_diff_folded(&self, w: impl Write) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        for (stack, (base, new)) in self.diff_lines(false) {
            writeln!(w, "{stack} {base} {new}")?;
        }
        w.flush()
    }

    /// Renders a differential flame graph: NEW's shape, frames red where NEW has more samples
    /// than normalised BASE, blue where fewer (inferno colours the frames that end stacks).
    /// `opts` applies as for [`render_svg`], except that the palette is replaced by the
    /// differential colours. With an empty NEW the "no samples" SVG is written.
    pub fn render_svg(&self, opts: &SvgOptions, w: impl Write) -> Result<()> {
        if self.new.is_empty() {
            return render_svg(&self.new, opts, w);
        }
        let mut lines: Vec<(String, (u64, u64))> =
            self.diff_lines(opts.inverted).into_iter().collect();
        lines.sort_by(|a, b| frame_order(&a.0, &b.0));
        let max = lines
            .iter()
            .map(|(_, (base, new))| u128::from(*base).max(u128::from(*new)))
            .sum::<u128>();
        let divisor = u64::try_from(max.div_ceil(MAX_DIFF_COUNT).max(1)).unwrap_or(u64::MAX);
        let text: Vec<String> = lines
            .iter()
            .map(|(stack, (base, new))| format!("{stack} {} {}", base / divisor, new / divisor))
            .collect();
        let mut options: inferno_fg::Options<'_> = inferno_options(opts, None)?;
        options.factor = divisor as f64;
        run_inferno(&mut options, text, w)
    }

    /// Whether several runs were given on either side (the spread column is then shown).
    fn has_spread(&self) -> bool {
        self.runs.0 > 1 || self.runs.1 > 1
    }

    /// Writes the [`comparison`](Diff::comparison) as a line, a blank line, and the first `n`
    /// [`changes`](Diff::changes) as a GitHub-flavoured markdown table (for PR comments).
    /// Names are escaped so they render literally and cut to [`SUMMARY_NAME_CHARS`].
    pub fn write_markdown(&self, w: impl Write, n: usize) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        let spread = self.has_spread();
        writeln!(w, "{}\n", markdown_escape(&self.choice.to_string()))?;
        write!(
            w,
            "| Function | Base self | New self | Δ self | Base total | New total | Δ total |"
        )?;
        if spread {
            write!(w, " Noise (self) |")?;
        }
        writeln!(w)?;
        write!(w, "|---|---:|---:|---:|---:|---:|---:|")?;
        if spread {
            write!(w, "---:|")?;
        }
        writeln!(w)?;
        for change in self.top(n) {
            write!(
                w,
                "| {} | {:.2}% | {:.2}% | {:+.2} pp | {:.2}% | {:.2}% | {:+.2} pp |",
                markdown_escape(&summary_name(&change.name)),
                change.base_self,
                change.new_self,
                change.self_delta(),
                change.base_total,
                change.new_total,
                change.total_delta(),
            )?;
            if spread {
                write!(w, " {:.2} pp |", change.self_spread)?;
            }
            writeln!(w)?;
        }
        w.flush()
    }

    /// Writes the [`comparison`](Diff::comparison) as a line, then the first `n`
    /// [`changes`](Diff::changes) as an aligned plain-text table, name last.
    pub fn write_text(&self, w: impl Write, n: usize) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        let spread = self.has_spread();
        writeln!(w, "{}", self.choice)?;
        let mut header = format!(
            "{:>9}  {:>9}  {:>9}  {:>10}  {:>10}  {:>9}",
            "Base self", "New self", "Δ self", "Base total", "New total", "Δ total"
        );
        if spread {
            header.push_str(&format!("  {:>9}", "Noise"));
        }
        writeln!(w, "{header}  Function")?;
        for change in self.top(n) {
            let mut line = format!(
                "{:>8.2}%  {:>8.2}%  {:>+9.2}  {:>9.2}%  {:>9.2}%  {:>+9.2}",
                change.base_self,
                change.new_self,
                change.self_delta(),
                change.base_total,
                change.new_total,
                change.total_delta(),
            );
            if spread {
                line.push_str(&format!("  {:>9.2}", change.self_spread));
            }
            writeln!(w, "{line}  {}", summary_name(&change.name))?;
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_xml;

    fn folder(stacks: &[(&[&str], u64)]) -> Folder {
        let mut f = Folder::new();
        for (stack, weight) in stacks {
            f.add(stack, *weight);
        }
        f
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// BASE: main;work 60, main;parse 30, main;idle 10 (total 100).
    /// NEW:  main;work 100, main;parse 60, main;idle 40 (total 200):
    /// work 60%→50% (−10), parse 30%→30% (0), idle 10%→20% (+10).
    fn base_and_new() -> (Folder, Folder) {
        let base = folder(&[
            (&["main", "work"], 60),
            (&["main", "parse"], 30),
            (&["main", "idle"], 10),
        ]);
        let new = folder(&[
            (&["main", "work"], 100),
            (&["main", "parse"], 60),
            (&["main", "idle"], 40),
        ]);
        (base, new)
    }

    #[test]
    fn known_changes_rank_first_with_hand_computed_shares() {
        let (base, new) = base_and_new();
        let diff = Diff::new(&base, &new);
        let top: Vec<&str> = diff.top(2).iter().map(|c| c.name.as_str()).collect();
        // Equal magnitudes (10 pp) tie-break by name.
        assert_eq!(top, ["idle", "work"]);
        let idle = &diff.top(1)[0];
        assert!(close(idle.base_self, 10.0) && close(idle.new_self, 20.0));
        assert!(close(idle.self_delta(), 10.0));
        let main = diff.changes().iter().find(|c| c.name == "main").unwrap();
        assert!(close(main.base_total, 100.0) && close(main.new_total, 100.0));
        assert!(close(main.base_self, 0.0));
        assert_eq!(diff.changes().len(), 4);
        assert_eq!(names(&diff.regressions(5.0)), ["idle"]);
        assert_eq!(names(&diff.improvements(5.0)), ["work"]);
        assert!(diff.regressions(10.5).is_empty());
    }

    fn kinded(stacks: &[(&[(&str, FrameKind)], u64)]) -> Folder {
        let mut f = Folder::new();
        for (stack, weight) in stacks {
            f.add_with_kinds(stack, *weight);
        }
        f
    }

    fn names(changes: &[&FunctionChange]) -> Vec<String> {
        changes.iter().map(|c| c.name.clone()).collect()
    }

    /// One round of a benchmark: hot 50, validate 10 (×`slow`), mix 40, under root `bench`.
    fn rounds(rounds: u64, slow: u64) -> Folder {
        folder(&[
            (&["bench", "main", "hot"], 50 * rounds),
            (&["bench", "main", "validate"], 10 * slow * rounds),
            (&["bench", "main", "mix"], 40 * rounds),
        ])
    }

    // See: issue #10 point 13
    #[test]
    fn runs_of_fixed_work_are_compared_by_time() {
        // Ten rounds per run; NEW's validate takes five times as long: the run is longer.
        let diff = Diff::from_runs(&[rounds(10, 1), rounds(10, 1)], &[rounds(10, 5)]);
        let choice = diff.comparison();
        assert_eq!(choice.comparison, Comparison::Time);
        assert!(choice.automatic);
        assert!(close(choice.total_ratio, 1.4) && close(choice.typical_ratio, 1.0));
        assert!(
            choice.to_string().contains("fixed amount of work"),
            "{choice}"
        );
        // In percent of BASE's time: validate 10 -> 50, the others unchanged.
        let validate = &diff.top(1)[0];
        assert_eq!(validate.name, "validate");
        assert!(close(validate.base_self, 10.0) && close(validate.new_self, 50.0));
        let hot = diff.changes().iter().find(|c| c.name == "hot").unwrap();
        assert!(close(hot.self_delta(), 0.0));
        // `main` holds validate, so its total grew as much; the root never counts.
        assert_eq!(names(&diff.total_regressions(5.0)), ["main", "validate"]);
        assert_eq!(names(&diff.regressions(5.0)), ["validate"]);
        // Forced to shares, hot seems to shrink by 14 points, yet validate still leads.
        let options = DiffOptions {
            comparison: Some(Comparison::Share),
            ..DiffOptions::default()
        };
        let shares = Diff::from_runs_with(&[rounds(10, 1)], &[rounds(10, 5)], &options);
        assert_eq!(shares.comparison().comparison, Comparison::Share);
        assert!(!shares.comparison().automatic);
        let hot = shares.changes().iter().find(|c| c.name == "hot").unwrap();
        assert!(close(hot.self_delta(), 50.0 / 1.4 - 50.0));
        assert_eq!(shares.top(1)[0].name, "validate");
        // Time mode scales BASE's folded counts per run (two runs against one: halved).
        let mut out = Vec::new();
        diff.write_diff_folded(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "bench;main;hot 500 500\nbench;main;mix 400 400\nbench;main;validate 100 500\n"
        );
    }

    // See: issue #10 point 13
    #[test]
    fn runs_of_fixed_duration_are_compared_by_share() {
        // Each run lasts 1000 units: BASE does 10 rounds of 100, NEW (validate five times
        // slower, rounds of 140) does fewer, with 20% less CPU besides.
        let base = rounds(10, 1);
        let mut new = Folder::new();
        new.add(&["bench", "main", "hot"], 286);
        new.add(&["bench", "main", "validate"], 286);
        new.add(&["bench", "main", "mix"], 228);
        let diff = Diff::new(&base, &new);
        let choice = diff.comparison();
        assert_eq!(choice.comparison, Comparison::Share, "{choice}");
        assert!(
            choice
                .to_string()
                .contains("not runs doing a fixed amount of work"),
            "{choice}"
        );
        assert_eq!(diff.top(1)[0].name, "validate");
        assert_eq!(names(&diff.total_regressions(5.0)), ["validate"]);
        // NEW had 7% more CPU: its total grew, but the median function did not keep its time.
        let mut more_cpu = Folder::new();
        more_cpu.add(&["bench", "main", "hot"], 382);
        more_cpu.add(&["bench", "main", "validate"], 382);
        more_cpu.add(&["bench", "main", "mix"], 306);
        let diff = Diff::new(&base, &more_cpu);
        assert_eq!(diff.comparison().comparison, Comparison::Share);
        assert_eq!(names(&diff.total_regressions(5.0)), ["validate"]);
        // The same build with less CPU: every function scaled alike, nothing changed.
        let slower_machine = folder(&[
            (&["bench", "main", "hot"], 350),
            (&["bench", "main", "validate"], 70),
            (&["bench", "main", "mix"], 280),
        ]);
        let diff = Diff::new(&base, &slower_machine);
        assert_eq!(diff.comparison().comparison, Comparison::Share);
        assert!(diff.changes().iter().all(|c| close(c.self_delta(), 0.0)));
        assert!(diff.total_regressions(0.1).is_empty());
    }

    // See: issue #10 point 13
    #[test]
    fn a_shrinking_function_never_leads_one_that_grew() {
        // `a` shrinks by 10 points; `b` grows by 3 and seven others by 1 each.
        let mut base = folder(&[(&["p", "a"], 20), (&["p", "b"], 10)]);
        let mut new = folder(&[(&["p", "a"], 10), (&["p", "b"], 13)]);
        for i in 1..=7 {
            let name = format!("c{i}");
            base.add(&["p", &name], 10);
            new.add(&["p", &name], 11);
        }
        let diff = Diff::new(&base, &new);
        let order: Vec<&str> = diff.changes().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(order[0], "b");
        let a = order.iter().position(|n| *n == "a").unwrap();
        assert_eq!(a, 8, "after every function that grew: {order:?}");
        assert_eq!(order.last(), Some(&"p"), "the root comes last");
    }

    // See: issue #10 point 13
    #[test]
    fn a_change_within_sampling_noise_is_not_a_regression() {
        // hot: 57% -> 62% of the samples of one run per side.
        let base = folder(&[(&["bench", "hot"], 57), (&["bench", "cold"], 43)]);
        let new = folder(&[(&["bench", "hot"], 62), (&["bench", "cold"], 38)]);
        let with_samples = |n: u64| DiffOptions {
            base_samples: vec![n],
            new_samples: vec![n],
            ..DiffOptions::default()
        };
        // Unknown sample counts: no sampling noise, a 5-point gate fires.
        assert_eq!(
            names(&Diff::new(&base, &new).total_regressions(4.0)),
            ["hot"]
        );
        // 800 samples a side: 3 standard errors of the difference are
        // 3 * sqrt(.57 * .43 / 800 + .62 * .38 / 800) = 7.4 points.
        let few = Diff::from_runs_with(
            std::slice::from_ref(&base),
            std::slice::from_ref(&new),
            &with_samples(800),
        );
        let hot = few.changes().iter().find(|c| c.name == "hot").unwrap();
        assert!((hot.total_noise - 7.36).abs() < 0.01, "{}", hot.total_noise);
        assert!(few.total_regressions(4.0).is_empty());
        assert!(few.regressions(4.0).is_empty());
        // 80000 samples a side: 0.74 points, the change is real.
        let many = Diff::from_runs_with(&[base], &[new], &with_samples(80_000));
        assert_eq!(names(&many.total_regressions(4.0)), ["hot"]);
        // Counts that do not match the runs are ignored.
        let bad = DiffOptions {
            base_samples: vec![1, 2],
            ..with_samples(800)
        };
        let (base, new) = (rounds(1, 1), rounds(1, 5));
        let diff = Diff::from_runs_with(&[base], &[new], &bad);
        assert!(diff.changes().iter().all(|c| c.total_noise == 0.0));
    }

    // See: issue #10 point 13
    #[test]
    fn roots_are_never_regressions() {
        // Two builds of one benchmark: the process name differs, the work is the same.
        let base = folder(&[(&["bench-1a2b", "main", "work"], 100)]);
        let new = folder(&[(&["bench-9f8e", "main", "work"], 100)]);
        let diff = Diff::new(&base, &new);
        let root = diff
            .changes()
            .iter()
            .find(|c| c.name == "bench-9f8e")
            .unwrap();
        assert!(root.root && close(root.total_delta(), 100.0));
        assert!(diff.total_regressions(5.0).is_empty());
        assert!(diff.regressions(5.0).is_empty());
        assert!(!diff.top(1)[0].root);
    }

    // See: issue #10 point 13
    #[test]
    fn inlined_frames_count_toward_the_function_they_are_in() {
        use FrameKind::{Inlined, User};
        // validate's own code is mostly an inlined helper, `mul`, which hot inlines too.
        let run = |validate: u64| {
            kinded(&[
                (&[("bench", User), ("validate", User)], validate),
                (
                    &[("bench", User), ("validate", User), ("mul", Inlined)],
                    4 * validate,
                ),
                (&[("bench", User), ("hot", User)], 50),
                (&[("bench", User), ("hot", User), ("mul", Inlined)], 40),
            ])
        };
        let diff = Diff::new(&run(2), &run(10));
        assert_eq!(diff.comparison().comparison, Comparison::Time);
        let validate = &diff.top(1)[0];
        assert_eq!(validate.name, "validate");
        assert!(close(validate.base_self, 10.0) && close(validate.new_self, 50.0));
        let mul = diff.changes().iter().find(|c| c.name == "mul").unwrap();
        assert!(mul.inlined && close(mul.base_self, 0.0) && close(mul.total_delta(), 32.0));
        assert_eq!(names(&diff.total_regressions(5.0)), ["validate"]);
    }

    #[test]
    fn regression_within_run_to_run_spread_is_not_reported() {
        // BASE runs: hot at 10% and 30% (spread 20 pp, mean 20%).
        let base = vec![
            folder(&[(&["main", "hot"], 10), (&["main", "cold"], 90)]),
            folder(&[(&["main", "hot"], 30), (&["main", "cold"], 70)]),
        ];
        // NEW runs: hot at 32% and 36% (mean 34%): +14 pp, below the 20 pp spread.
        let new = vec![
            folder(&[(&["main", "hot"], 32), (&["main", "cold"], 68)]),
            folder(&[(&["main", "hot"], 36), (&["main", "cold"], 64)]),
        ];
        let diff = Diff::from_runs(&base, &new);
        let hot = diff.changes().iter().find(|c| c.name == "hot").unwrap();
        assert!(close(hot.base_self, 20.0) && close(hot.new_self, 34.0));
        assert!(close(hot.self_spread, 20.0));
        assert!(diff.regressions(1.0).is_empty());

        // The same mean change with quiet runs is a regression.
        let quiet_base = vec![
            folder(&[(&["main", "hot"], 19), (&["main", "cold"], 81)]),
            folder(&[(&["main", "hot"], 21), (&["main", "cold"], 79)]),
        ];
        let diff = Diff::from_runs(&quiet_base, &new);
        assert_eq!(names(&diff.regressions(1.0)), ["hot"]);
    }

    #[test]
    fn diff_folded_normalises_base_to_new_total() {
        let (base, new) = base_and_new();
        let mut out = Vec::new();
        Diff::new(&base, &new).write_diff_folded(&mut out).unwrap();
        // BASE ×2 (100 → 200).
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "main;idle 20 40\nmain;parse 60 60\nmain;work 120 100\n"
        );
    }

    /// The differential flame graph of `base` against `new`, with the default options.
    fn diff_svg(base: &Folder, new: &Folder) -> String {
        let mut out = Vec::new();
        Diff::new(base, new)
            .render_svg(&SvgOptions::default(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn differential_svg_is_valid_and_red_for_growth_blue_for_shrink() {
        let (base, new) = base_and_new();
        let svg = diff_svg(&base, &new);
        let doc = test_xml::parse(&svg);
        assert_eq!(doc.script_elements, 1);
        let fill = |name: &str| doc.frames.iter().find(|f| f.name == name).unwrap().fill;
        let [r, g, b] = fill("idle");
        assert!(
            r > g && r > b,
            "grown frame should be red-ish: {:?}",
            fill("idle")
        );
        let [r, g, b] = fill("work");
        assert!(
            b > r && b > g,
            "shrunk frame should be blue-ish: {:?}",
            fill("work")
        );
        let [r, g, b] = fill("parse");
        assert!(
            r == g && g == b,
            "unchanged frame should be neutral: {:?}",
            fill("parse")
        );
        // NEW's shape: main spans NEW's 200 samples.
        assert_eq!(
            doc.frames
                .iter()
                .find(|f| f.name == "main")
                .unwrap()
                .samples,
            200
        );
        test_xml::xmllint(&svg);
    }

    #[test]
    fn differential_svg_with_hostile_names_is_valid() {
        let names = [
            "</script><script>alert(1)</script>",
            "]]>",
            "-->",
            "nul\0",
            "esc\u{1b}",
        ];
        let mut base = Folder::new();
        let mut new = Folder::new();
        for (i, name) in names.iter().enumerate() {
            base.add(&["main", name], 1 + i as u64);
            new.add(&["main", name], 10 - i as u64);
        }
        let svg = diff_svg(&base, &new);
        let doc = test_xml::parse(&svg);
        assert_eq!(doc.script_elements, 1);
        for name in names {
            let expected = sanitize::frame_name(name);
            assert!(
                doc.frames.iter().any(|f| f.name == expected),
                "{expected:?}"
            );
        }
        test_xml::xmllint(&svg);
    }

    #[test]
    fn differential_svg_of_empty_new_is_valid() {
        let (base, _) = base_and_new();
        let doc = test_xml::parse(&diff_svg(&base, &Folder::new()));
        assert!(doc.title.ends_with("(no samples)"));
    }

    #[test]
    fn markdown_and_text_summaries() {
        let (mut base, mut new) = base_and_new();
        base.add(&["main", "<script>|x*"], 1);
        new.add(&["main", "<script>|x*"], 1);
        let diff = Diff::new(&base, &new);
        let mut out = Vec::new();
        diff.write_markdown(&mut out, 10).unwrap();
        let md = String::from_utf8(out).unwrap();
        // The comparison, a blank line, then the table.
        let (said, table) = md.split_once("\n\n").unwrap();
        assert!(said.starts_with("Compared by share"), "{said}");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2 + 5);
        let columns = lines[0].matches('|').count();
        for line in &lines {
            // Escaped pipes do not count as column separators.
            assert_eq!(
                line.matches('|').count() - line.matches("\\|").count(),
                columns,
                "{line}"
            );
        }
        // idle: 10/101 = 9.90% -> 40/201 = 19.90%.
        assert!(
            lines[2].starts_with("| idle | 9.90% | 19.90% | +10.00 pp |"),
            "{}",
            lines[2]
        );
        assert!(md.contains("\\<script\\>\\|x\\*"));
        assert!(!md.contains("<script>"));

        let mut out = Vec::new();
        diff.write_text(&mut out, 2).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert!(text.starts_with("Compared by share"), "{text}");
        assert_eq!(lines.len(), 3);
        assert!(lines[1].ends_with("  idle"));
        assert!(lines[1].contains("+10.00"));
        // The name column starts at the same character in the header and the rows.
        assert_eq!(
            lines[0].chars().count() - "Function".len(),
            lines[1].chars().count() - "idle".len()
        );
    }

    #[test]
    fn long_names_are_cut_in_summaries() {
        let long = "x".repeat(1000);
        let base = folder(&[(&[long.as_str()], 1)]);
        let new = folder(&[(&["y"], 1)]);
        let mut out = Vec::new();
        Diff::new(&base, &new).write_text(&mut out, 5).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.chars().count() < 250));
        assert!(text.contains('…'));
    }
}
