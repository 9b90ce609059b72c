//! A `perf report`-like table: per key (e.g. command, shared object, symbol), the share of the
//! total weight spent in it (self) and under it (children).
//!
//! Each sample is a weight plus a stack, leaf first, whose frames are tuples of key columns.
//! - **Self** of a key: weight of the samples whose *leaf* frame has that key.
//! - **Children** of a key: weight of the samples in which the key appears *anywhere*, counted
//!   once per sample (so recursion does not count twice), as perf's `--children` does.
//!
//! Shares are percentages of the total weight of all samples added, empty stacks included.

use std::cmp::Ordering;
use std::io::{self, BufWriter, Write};

use indexmap::IndexSet;
use rustc_hash::FxBuildHasher;

use crate::sanitize;

/// Options for a [`Report`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReportOptions {
    /// Headers of the key columns, in the order of each frame's tuple.
    /// Default `["Command", "Shared Object", "Symbol"]`.
    pub sort_keys: Vec<String>,
    /// Show the Children column and sort by it (else only Self, headed `Overhead`, sorted by
    /// it). Default `true`.
    pub children: bool,
    /// Hide rows whose share in the sort column is below this many percent. Default `0.0`.
    pub percent_limit: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            sort_keys: vec![
                "Command".to_owned(),
                "Shared Object".to_owned(),
                "Symbol".to_owned(),
            ],
            children: true,
            percent_limit: 0.0,
        }
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReportRow {
    /// The key column values, raw (as added).
    pub key: Vec<String>,
    /// Weight of samples whose leaf frame has this key.
    pub self_weight: u64,
    /// Weight of samples with this key anywhere in the stack (once per sample).
    pub children_weight: u64,
    /// `self_weight` as a percentage of the report total.
    pub self_percent: f64,
    /// `children_weight` as a percentage of the report total.
    pub children_percent: f64,
}

type Key = Box<[Box<str>]>;

/// A key (tuple of column values) interned in one [`Report`] by [`Report::intern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(usize);

/// Accumulates samples and produces [`ReportRow`]s and a `perf report --stdio`-like text.
#[derive(Debug, Clone, Default)]
pub struct Report {
    options: ReportOptions,
    keys: IndexSet<Key, FxBuildHasher>,
    self_weight: Vec<u64>,
    children_weight: Vec<u64>,
    total: u64,
    scratch: Vec<usize>,
}

/// `part` as a percentage of `total` (0 when `total` is 0).
fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

impl Report {
    /// An empty report.
    pub fn new(options: ReportOptions) -> Self {
        Report {
            options,
            ..Report::default()
        }
    }

    /// The options the report was made with.
    pub fn options(&self) -> &ReportOptions {
        &self.options
    }

    /// The id of the key made of `columns` (e.g. `[comm, dso, sym]`), for
    /// [`add_interned`](Report::add_interned): a caller whose frames repeat (the same function
    /// in many stacks) turns each distinct frame into its key once.
    pub fn intern<S: AsRef<str>>(&mut self, columns: &[S]) -> KeyId {
        let key: Key = columns.iter().map(|c| c.as_ref().into()).collect();
        let (index, inserted) = self.keys.insert_full(key);
        if inserted {
            self.self_weight.push(0);
            self.children_weight.push(0);
        }
        KeyId(index)
    }

    /// Adds one sample: `weight` and its stack, leaf first, as keys from
    /// [`intern`](Report::intern) of this report. Same result as [`add`](Report::add) with the
    /// columns the keys were made of.
    pub fn add_interned(&mut self, weight: u64, stack_leaf_first: &[KeyId]) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(stack_leaf_first.iter().map(|key| key.0));
        let leaf = scratch.first().copied();
        self.scratch = scratch;
        self.add_indexes(leaf, weight);
    }

    fn add_indexes(&mut self, leaf: Option<usize>, weight: u64) {
        self.total = self.total.saturating_add(weight);
        if let Some(sum) = leaf.and_then(|leaf| self.self_weight.get_mut(leaf)) {
            *sum = sum.saturating_add(weight);
        }
        self.scratch.sort_unstable();
        self.scratch.dedup();
        for index in &self.scratch {
            if let Some(sum) = self.children_weight.get_mut(*index) {
                *sum = sum.saturating_add(weight);
            }
        }
    }

    /// Adds one sample: `weight` and its stack, leaf first, each frame a tuple of key columns
    /// (e.g. `[comm, dso, sym]`; arrays, `Vec`s and slices all work).
    pub fn add<K, S>(&mut self, weight: u64, stack_leaf_first: &[K])
    where
        K: AsRef<[S]>,
        S: AsRef<str>,
    {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for frame in stack_leaf_first {
            scratch.push(self.intern(frame.as_ref()).0);
        }
        let leaf = scratch.first().copied();
        self.scratch = scratch;
        self.add_indexes(leaf, weight);
    }

    /// Adds all samples of `other` (same key columns assumed). Order of merging does not
    /// change [`rows`](Report::rows).
    pub fn merge(&mut self, other: Report) {
        self.total = self.total.saturating_add(other.total);
        for (index, key) in other.keys.into_iter().enumerate() {
            let (mine, inserted) = self.keys.insert_full(key);
            if inserted {
                self.self_weight.push(0);
                self.children_weight.push(0);
            }
            let add = |sums: &mut Vec<u64>, theirs: &Vec<u64>| {
                if let (Some(sum), Some(value)) = (sums.get_mut(mine), theirs.get(index)) {
                    *sum = sum.saturating_add(*value);
                }
            };
            add(&mut self.self_weight, &other.self_weight);
            add(&mut self.children_weight, &other.children_weight);
        }
    }

    /// Total weight of all samples added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The visible rows: sorted like perf report (by children share when
    /// [`ReportOptions::children`], else by self share; ties by the other share, then by key),
    /// without rows below [`ReportOptions::percent_limit`] and, in self mode, without rows
    /// whose self weight is zero.
    pub fn rows(&self) -> Vec<ReportRow> {
        let children = self.options.children;
        let mut rows: Vec<ReportRow> = self
            .keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let self_weight = self.self_weight.get(index).copied().unwrap_or(0);
                let children_weight = self.children_weight.get(index).copied().unwrap_or(0);
                ReportRow {
                    key: key.iter().map(|c| c.to_string()).collect(),
                    self_weight,
                    children_weight,
                    self_percent: percent(self_weight, self.total),
                    children_percent: percent(children_weight, self.total),
                }
            })
            .filter(|row| {
                let (weight, share) = if children {
                    (row.children_weight, row.children_percent)
                } else {
                    (row.self_weight, row.self_percent)
                };
                weight > 0 && share >= self.options.percent_limit
            })
            .collect();
        rows.sort_by(|a, b| {
            let primary = |r: &ReportRow| {
                if children {
                    (r.children_weight, r.self_weight)
                } else {
                    (r.self_weight, r.children_weight)
                }
            };
            match primary(b).cmp(&primary(a)) {
                Ordering::Equal => a.key.cmp(&b.key),
                other => other,
            }
        });
        rows
    }

    /// Writes the table as `perf report --stdio` does (without perf's event header lines):
    /// `# Children      Self  Command  Shared Object  Symbol`, a dotted rule, `#`, then one
    /// row per [`rows`](Report::rows) entry. Key values have control characters escaped
    /// ([`sanitize::text`]); the last column is not padded.
    pub fn write_text(&self, w: impl Write) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        let rows = self.rows();
        let shown: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                row.key
                    .iter()
                    .map(|c| sanitize::text(c).into_owned())
                    .collect()
            })
            .collect();
        let columns = shown
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(self.options.sort_keys.len());
        let header = |i: usize| self.options.sort_keys.get(i).map_or("", String::as_str);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                shown
                    .iter()
                    .filter_map(|key| key.get(i))
                    .map(|value| value.chars().count())
                    .chain(std::iter::once(header(i).chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();

        let write_keys = |line: &mut String, values: &[&str]| {
            for (i, width) in widths.iter().enumerate() {
                let value = values.get(i).copied().unwrap_or("");
                line.push_str("  ");
                if i + 1 == widths.len() {
                    line.push_str(value);
                } else {
                    line.push_str(&format!("{value:<width$}"));
                }
            }
        };

        let mut line = String::new();
        if self.options.children {
            line.push_str("# Children      Self");
        } else {
            line.push_str("# Overhead");
        }
        let headers: Vec<&str> = (0..columns).map(header).collect();
        write_keys(&mut line, &headers);
        writeln!(w, "{}", line.trim_end())?;

        line.clear();
        line.push_str("# ........");
        if self.options.children {
            line.push_str("  ........");
        }
        let dots: Vec<String> = widths.iter().map(|width| ".".repeat(*width)).collect();
        let dots: Vec<&str> = dots.iter().map(String::as_str).collect();
        write_keys(&mut line, &dots);
        writeln!(w, "{}", line.trim_end())?;
        writeln!(w, "#")?;

        for (row, key) in rows.iter().zip(&shown) {
            line.clear();
            if self.options.children {
                line.push_str(&format!(
                    "{:>9.2}%  {:>7.2}%",
                    row.children_percent, row.self_percent
                ));
            } else {
                line.push_str(&format!("{:>9.2}%", row.self_percent));
            }
            let values: Vec<&str> = key.iter().map(String::as_str).collect();
            write_keys(&mut line, &values);
            writeln!(w, "{}", line.trim_end())?;
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// total 12; self: c 8, b 3, main 1; children: main 12, b 9, c 8 (recursion counted once).
    fn sample_report(options: ReportOptions) -> Report {
        let mut report = Report::new(options);
        report.add(6, &[["c"], ["b"], ["main"]]);
        report.add(3, &[["b"], ["main"]]);
        report.add(1, &[["main"]]);
        report.add(2, &[["c"], ["c"], ["main"]]);
        report
    }

    fn single_column(children: bool, percent_limit: f64) -> ReportOptions {
        ReportOptions {
            sort_keys: vec!["Symbol".into()],
            children,
            percent_limit,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn children_mode_shares_and_order() {
        let report = sample_report(single_column(true, 0.0));
        assert_eq!(report.total(), 12);
        let rows = report.rows();
        let keys: Vec<&str> = rows.iter().map(|r| r.key[0].as_str()).collect();
        assert_eq!(keys, ["main", "b", "c"]);
        let expected = [(12, 1), (9, 3), (8, 8)];
        for (row, (children, self_)) in rows.iter().zip(expected) {
            assert_eq!(row.children_weight, children, "{row:?}");
            assert_eq!(row.self_weight, self_, "{row:?}");
            assert!(close(row.children_percent, children as f64 * 100.0 / 12.0));
            assert!(close(row.self_percent, self_ as f64 * 100.0 / 12.0));
        }
    }

    #[test]
    fn self_mode_order_and_percent_limit() {
        let rows = sample_report(single_column(false, 0.0)).rows();
        let keys: Vec<&str> = rows.iter().map(|r| r.key[0].as_str()).collect();
        assert_eq!(keys, ["c", "b", "main"]);
        // main has 1/12 = 8.33% self: below a 10% limit.
        let rows = sample_report(single_column(false, 10.0)).rows();
        let keys: Vec<&str> = rows.iter().map(|r| r.key[0].as_str()).collect();
        assert_eq!(keys, ["c", "b"]);
        // In children mode the limit applies to children: c has 66.7%, b 75%, main 100%.
        let rows = sample_report(single_column(true, 70.0)).rows();
        let keys: Vec<&str> = rows.iter().map(|r| r.key[0].as_str()).collect();
        assert_eq!(keys, ["main", "b"]);
    }

    #[test]
    fn self_mode_hides_keys_never_at_a_leaf() {
        let mut report = Report::new(single_column(false, 0.0));
        report.add(1, &[["leaf"], ["caller"]]);
        let rows = report.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key, ["leaf"]);
    }

    #[test]
    fn merge_equals_adding_everything_to_one() {
        let whole = sample_report(single_column(true, 0.0));
        let mut a = Report::new(single_column(true, 0.0));
        a.add(6, &[["c"], ["b"], ["main"]]);
        a.add(1, &[["main"]]);
        let mut b = Report::new(single_column(true, 0.0));
        b.add(3, &[["b"], ["main"]]);
        b.add(2, &[["c"], ["c"], ["main"]]);
        b.merge(a);
        assert_eq!(b.rows(), whole.rows());
        assert_eq!(b.total(), 12);
    }

    #[test]
    fn interned_keys_equal_adding_columns() {
        for children in [true, false] {
            let whole = sample_report(single_column(children, 0.0));
            let mut interned = Report::new(single_column(children, 0.0));
            let [main, b, c] = [["main"], ["b"], ["c"]].map(|key| interned.intern(&key));
            interned.add_interned(6, &[c, b, main]);
            interned.add_interned(3, &[b, main]);
            interned.add_interned(1, &[main]);
            interned.add_interned(2, &[c, c, main]);
            assert_eq!(interned.rows(), whole.rows());
            assert_eq!(interned.total(), 12);
        }
    }

    #[test]
    fn text_is_aligned_like_perf_report() {
        let mut report = Report::new(ReportOptions::default());
        report.add(
            3,
            &[
                ["prog", "libc.so.6", "[.] memcpy"],
                ["prog", "prog", "[.] main"],
            ],
        );
        report.add(1, &[["prog", "prog", "[.] main"]]);
        let mut out = Vec::new();
        report.write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "# Children      Self  Command  Shared Object  Symbol",
                "# ........  ........  .......  .............  ..........",
                "#",
                "   100.00%    25.00%  prog     prog           [.] main",
                "    75.00%    75.00%  prog     libc.so.6      [.] memcpy",
            ]
        );
    }

    #[test]
    fn self_only_text_and_escaped_keys() {
        let mut report = Report::new(ReportOptions {
            children: false,
            ..ReportOptions::default()
        });
        report.add(1, &[["a\u{1b}b", "dso", "sym\n"]]);
        let mut out = Vec::new();
        report.write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.starts_with("# Overhead  Command  Shared Object  Symbol\n"));
        assert!(text.ends_with("   100.00%  a\\x1bb   dso            sym\\n\n"));
    }

    #[test]
    fn empty_stacks_count_in_the_total_only() {
        let mut report = Report::new(single_column(true, 0.0));
        let empty: [[&str; 1]; 0] = [];
        report.add(3, &empty);
        report.add(1, &[["x"]]);
        let rows = report.rows();
        assert_eq!(rows.len(), 1);
        assert!(close(rows[0].children_percent, 25.0));
    }
}
