//! Differential profiles: BASE vs NEW, per function and per stack.
//!
//! A function is a frame name (kinds are ignored). For each run of each side, a function's
//! **self share** is the percentage of the run's total weight whose leaf frame is that function,
//! and its **total share** the percentage of weight whose stack contains it anywhere (once per
//! stack). A side's share is the mean over its runs, and its **spread** is max − min over its runs.
//! A change is a *regression* only when the growth of the self share exceeds both the caller's
//! threshold and the larger spread of the two sides: a change within run-to-run noise is not
//! reported.
//!
//! Differential output follows Brendan Gregg's differential flame graphs as inferno implements
//! them: folded lines `stack base_count new_count` where BASE's counts are normalised to NEW's
//! total, rendered in NEW's shape, red where a stack grew and blue where it shrank.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufWriter, Write};

use inferno::flamegraph as inferno_fg;

use crate::error::Result;
use crate::folder::Folder;
use crate::sanitize;
use crate::svg::{SvgOptions, frame_order, inferno_options, render_svg, run_inferno};

/// Names longer than this many characters are cut (with `…`) in text and markdown summaries.
pub const SUMMARY_NAME_CHARS: usize = 120;

/// Largest count handed to inferno in a differential SVG (see `svg::MAX_RENDER_TOTAL`).
const MAX_DIFF_COUNT: u128 = 1 << 52;

/// How one function's shares changed between BASE and NEW (percentages, 0–100).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunctionChange {
    /// The function (frame) name, raw.
    pub name: String,
    /// Mean self share in BASE's runs.
    pub base_self: f64,
    /// Mean self share in NEW's runs.
    pub new_self: f64,
    /// Mean total (inclusive) share in BASE's runs.
    pub base_total: f64,
    /// Mean total (inclusive) share in NEW's runs.
    pub new_total: f64,
    /// Larger of the two sides' run-to-run spreads (max − min) of the self share; 0 with one
    /// run per side.
    pub self_spread: f64,
    /// Larger of the two sides' run-to-run spreads of the total share.
    pub total_spread: f64,
}

impl FunctionChange {
    /// Change of the self share, in percentage points (positive: grew).
    pub fn self_delta(&self) -> f64 {
        self.new_self - self.base_self
    }

    /// Change of the total share, in percentage points.
    pub fn total_delta(&self) -> f64 {
        self.new_total - self.base_total
    }
}

/// A differential profile of BASE vs NEW; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Diff {
    base: Folder,
    new: Folder,
    changes: Vec<FunctionChange>,
    runs: (usize, usize),
}

/// Per function name: (self weight, total weight) in one run.
fn function_weights(folder: &Folder) -> HashMap<&str, (u64, u64)> {
    let mut weights: HashMap<usize, (u64, u64)> = HashMap::new();
    for (mut stack, weight) in folder.raw_stacks() {
        if let Some(leaf) = stack.last() {
            let entry = weights.entry(*leaf).or_default();
            entry.0 = entry.0.saturating_add(weight);
        }
        stack.sort_unstable();
        stack.dedup();
        for index in stack {
            let entry = weights.entry(index).or_default();
            entry.1 = entry.1.saturating_add(weight);
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

/// Per name, per run of one side: (self %, total %).
fn side_shares(runs: &[Folder]) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut shares: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (run, folder) in runs.iter().enumerate() {
        let total = folder.total();
        if total == 0 {
            continue;
        }
        for (name, (self_w, total_w)) in function_weights(folder) {
            let per_run = shares
                .entry(name.to_owned())
                .or_insert_with(|| vec![(0.0, 0.0); runs.len()]);
            if let Some(slot) = per_run.get_mut(run) {
                *slot = (
                    self_w as f64 * 100.0 / total as f64,
                    total_w as f64 * 100.0 / total as f64,
                );
            }
        }
    }
    shares
}

/// Summary statistics of one side for one function: (self mean, self spread, total mean,
/// total spread). Runs without samples are left out.
fn summarize(per_run: Option<&Vec<(f64, f64)>>, runs: &[Folder]) -> (f64, f64, f64, f64) {
    let live: Vec<(f64, f64)> = runs
        .iter()
        .enumerate()
        .filter(|(_, folder)| folder.total() > 0)
        .map(|(run, _)| {
            per_run
                .and_then(|values| values.get(run).copied())
                .unwrap_or((0.0, 0.0))
        })
        .collect();
    let selfs: Vec<f64> = live.iter().map(|v| v.0).collect();
    let totals: Vec<f64> = live.iter().map(|v| v.1).collect();
    let (self_mean, self_spread) = mean_and_spread(&selfs);
    let (total_mean, total_spread) = mean_and_spread(&totals);
    (self_mean, self_spread, total_mean, total_spread)
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

impl Diff {
    /// A diff of one BASE run against one NEW run.
    pub fn new(base: &Folder, new: &Folder) -> Diff {
        Diff::from_runs(std::slice::from_ref(base), std::slice::from_ref(new))
    }

    /// A diff of several runs per side; shares are means over runs, spreads max − min.
    pub fn from_runs(base: &[Folder], new: &[Folder]) -> Diff {
        let base_shares = side_shares(base);
        let new_shares = side_shares(new);
        let mut names: Vec<&String> = base_shares.keys().chain(new_shares.keys()).collect();
        names.sort_unstable();
        names.dedup();
        let mut changes: Vec<FunctionChange> = names
            .into_iter()
            .map(|name| {
                let (base_self, base_self_spread, base_total, base_total_spread) =
                    summarize(base_shares.get(name), base);
                let (new_self, new_self_spread, new_total, new_total_spread) =
                    summarize(new_shares.get(name), new);
                FunctionChange {
                    name: name.clone(),
                    base_self,
                    new_self,
                    base_total,
                    new_total,
                    self_spread: base_self_spread.max(new_self_spread),
                    total_spread: base_total_spread.max(new_total_spread),
                }
            })
            .collect();
        changes.sort_by(|a, b| {
            b.self_delta()
                .abs()
                .total_cmp(&a.self_delta().abs())
                .then_with(|| b.total_delta().abs().total_cmp(&a.total_delta().abs()))
                .then_with(|| a.name.cmp(&b.name))
        });
        Diff {
            base: merged(base),
            new: merged(new),
            changes,
            runs: (base.len(), new.len()),
        }
    }

    /// Every function seen on either side, sorted by the size of its self-share change
    /// (largest first), then of its total-share change, then by name.
    pub fn changes(&self) -> &[FunctionChange] {
        &self.changes
    }

    /// The `n` largest changes (either direction).
    pub fn top(&self, n: usize) -> &[FunctionChange] {
        self.changes.get(..n).unwrap_or(&self.changes)
    }

    /// Functions whose self share grew by more than `threshold_pct_points` percentage points
    /// *and* by more than the run-to-run spread, largest growth first.
    pub fn regressions(&self, threshold_pct_points: f64) -> Vec<&FunctionChange> {
        let mut found: Vec<&FunctionChange> = self
            .changes
            .iter()
            .filter(|c| c.self_delta() > threshold_pct_points && c.self_delta() > c.self_spread)
            .collect();
        found.sort_by(|a, b| {
            b.self_delta()
                .total_cmp(&a.self_delta())
                .then_with(|| a.name.cmp(&b.name))
        });
        found
    }

    /// Functions whose self share shrank by more than `threshold_pct_points` and by more than
    /// the spread, largest drop first.
    pub fn improvements(&self, threshold_pct_points: f64) -> Vec<&FunctionChange> {
        let mut found: Vec<&FunctionChange> = self
            .changes
            .iter()
            .filter(|c| -c.self_delta() > threshold_pct_points && -c.self_delta() > c.self_spread)
            .collect();
        found.sort_by(|a, b| {
            a.self_delta()
                .total_cmp(&b.self_delta())
                .then_with(|| a.name.cmp(&b.name))
        });
        found
    }

    /// BASE's runs merged.
    pub fn base(&self) -> &Folder {
        &self.base
    }

    /// NEW's runs merged.
    pub fn new_profile(&self) -> &Folder {
        &self.new
    }

    /// Differential lines: stack → (BASE count normalised to NEW's total, NEW count).
    fn diff_lines(&self, leaf_first: bool) -> BTreeMap<String, (u64, u64)> {
        let base = self.base.folded_lines(false, leaf_first);
        let new = self.new.folded_lines(false, leaf_first);
        let base_total = base.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b));
        let new_total = new.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b));
        let mut lines: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (stack, weight) in base {
            lines.entry(stack).or_default().0 = rescale(weight, new_total, base_total);
        }
        for (stack, weight) in new {
            lines.entry(stack).or_default().1 = weight;
        }
        lines
    }

    /// Writes inferno's differential folded format, `stack base_count new_count` per line,
    /// sorted, with BASE's counts normalised to NEW's total (like `difffolded.pl -n`) and
    /// names sanitised as in [`Folder::write_folded`].
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

    /// Writes the `n` largest changes as a GitHub-flavoured markdown table (for PR comments).
    /// Names are escaped so they render literally and cut to [`SUMMARY_NAME_CHARS`].
    pub fn write_markdown(&self, w: impl Write, n: usize) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        let spread = self.has_spread();
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

    /// Writes the `n` largest changes as an aligned plain-text table, name last.
    pub fn write_text(&self, w: impl Write, n: usize) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        let spread = self.has_spread();
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
        let regressions: Vec<&str> = diff
            .regressions(5.0)
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(regressions, ["idle"]);
        let improvements: Vec<&str> = diff
            .improvements(5.0)
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(improvements, ["work"]);
        assert!(diff.regressions(10.5).is_empty());
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
        let names: Vec<&str> = diff
            .regressions(1.0)
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["hot"]);
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

    #[test]
    fn differential_svg_is_valid_and_red_for_growth_blue_for_shrink() {
        let (base, new) = base_and_new();
        let mut out = Vec::new();
        Diff::new(&base, &new)
            .render_svg(&SvgOptions::default(), &mut out)
            .unwrap();
        let svg = String::from_utf8(out).unwrap();
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
        let mut out = Vec::new();
        Diff::new(&base, &new)
            .render_svg(&SvgOptions::default(), &mut out)
            .unwrap();
        let svg = String::from_utf8(out).unwrap();
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
        let mut out = Vec::new();
        Diff::new(&base, &Folder::new())
            .render_svg(&SvgOptions::default(), &mut out)
            .unwrap();
        let doc = test_xml::parse(&String::from_utf8(out).unwrap());
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
        let lines: Vec<&str> = md.lines().collect();
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
        let lines: Vec<&str> = text.lines().collect();
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
