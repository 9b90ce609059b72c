//! Power-of-two (`hist()`) and linear (`lhist()`) histograms: bucket rules, labels and the text
//! bpftrace 0.17 prints for them.
//!
//! Rules (checked against bpftrace 0.17 on this machine, see the tests):
//! - `hist`: one bucket for negative values `(..., 0)`, one for `[0]`, one for `[1]`, then
//!   `[2^k, 2^(k+1))` for k ≥ 1, labelled with the binary units K (2^10), M, G, T, P, E
//!   (`[4K, 8K)`, `[1M, 2M)`). bpftrace 0.17 puts every value ≥ 4G into `[2G, 4G)` (its
//!   in-kernel log2 stops at 2^31) and reads u64 values as signed; kprof keeps counting
//!   (`[4G, 8G)` … `[8E, 16E)`) and buckets an unsigned field by its unsigned value, so the two
//!   agree on every value below 4G and kprof is right above it.
//! - `lhist(min, max, step)`: `(..., min)` for values below min, `[min + i·step, min + (i+1)·step)`
//!   and `[max, ...)` for values ≥ max; bounds print as `NK`/`NM` when they are multiples of
//!   1024 / 1048576. kprof insists that `max - min` is a multiple of `step` (bpftrace would put
//!   values of the last partial bucket under a `[max, ...)` label).
//! - Printing: only the buckets from the first to the last non-empty one; each line is the label
//!   left-aligned in 16 columns, the count right-aligned in 8, then ` |` a bar of `@` and `|`; the
//!   bar is `count / max_count · 52` computed in single precision and truncated, as bpftrace does.

use std::fmt::Write as _;

use serde::Serialize;

/// Width of the bar between the `|`s.
const BAR_WIDTH: usize = 52;

/// Number of power-of-two buckets: negative, 0, 1, then `[2^k, 2^(k+1))` for k in 1..=63.
const LOG2_BUCKETS: usize = 3 + 63;

/// A power-of-two histogram, as bpftrace's `hist()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log2Hist {
    counts: [u64; LOG2_BUCKETS],
}

impl Default for Log2Hist {
    fn default() -> Self {
        Log2Hist {
            counts: [0; LOG2_BUCKETS],
        }
    }
}

/// The bucket of a value in a [`Log2Hist`].
pub fn log2_bucket(value: i128) -> usize {
    if value < 0 {
        0
    } else if value == 0 {
        1
    } else {
        // value ≥ 1 fits the u64 domain of fields; wider values share the top bucket.
        let v = u64::try_from(value).unwrap_or(u64::MAX);
        2 + v.ilog2() as usize
    }
}

/// One bucket of a histogram, as printed in JSON: inclusive bounds (absent when open-ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Smallest value in the bucket (absent: no lower bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i128>,
    /// Largest value in the bucket (absent: no upper bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i128>,
    /// How many values fell in it.
    pub count: u64,
}

impl Log2Hist {
    /// Adds one value.
    pub fn add(&mut self, value: i128) {
        self.counts[log2_bucket(value)] += 1;
    }

    /// Total number of values.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Count of bucket `index` (see [`log2_bucket`]).
    pub fn count(&self, index: usize) -> u64 {
        self.counts.get(index).copied().unwrap_or(0)
    }

    /// The label bpftrace prints for bucket `index`.
    pub fn label(index: usize) -> String {
        match index {
            0 => "(..., 0)".to_string(),
            1 => "[0]".to_string(),
            2 => "[1]".to_string(),
            i => format!("[{}, {})", power_label(i - 2), power_label(i - 1)),
        }
    }

    /// Inclusive bounds of bucket `index`.
    fn bounds(index: usize) -> (Option<i128>, Option<i128>) {
        match index {
            0 => (None, Some(-1)),
            1 => (Some(0), Some(0)),
            2 => (Some(1), Some(1)),
            i => (Some(1i128 << (i - 2)), Some((1i128 << (i - 1)) - 1)),
        }
    }

    /// The buckets from the first to the last non-empty one, with their bounds.
    pub fn buckets(&self) -> Vec<Bucket> {
        shown_buckets(&self.counts, Self::bounds)
    }

    /// The lines bpftrace prints for this histogram (empty when it holds nothing).
    pub fn render(&self) -> String {
        render_rows(&self.counts, Self::label)
    }
}

/// `2^power` in bpftrace's units: `1`, `2`, … `512`, `1K`, … `512K`, `1M`, … `1G`, `1T`, `1P`, `1E`.
fn power_label(power: usize) -> String {
    const UNITS: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let unit = (power / 10).min(UNITS.len() - 1);
    let mantissa = 1u128 << (power - unit * 10);
    format!("{mantissa}{}", UNITS[unit])
}

/// A linear histogram, as bpftrace's `lhist(value, min, max, step)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearHist {
    min: i64,
    max: i64,
    step: i64,
    /// Below min, `(max - min) / step` buckets, at or above max.
    counts: Vec<u64>,
}

/// Why an `lhist` range is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinearRangeError {
    /// `step` is not positive.
    Step,
    /// `min` is not below `max`.
    Order,
    /// `max - min` is not a multiple of `step`.
    NotMultiple,
    /// More buckets than anyone can read.
    TooMany,
}

impl std::fmt::Display for LinearRangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinearRangeError::Step => "STEP must be at least 1",
            LinearRangeError::Order => "MIN must be less than MAX",
            LinearRangeError::NotMultiple => "MAX - MIN must be a multiple of STEP",
            LinearRangeError::TooMany => "(MAX - MIN) / STEP must be at most 10000 buckets",
        })
    }
}

impl LinearHist {
    /// An empty histogram over `[min, max)` in buckets of `step`.
    pub fn new(min: i64, max: i64, step: i64) -> Result<LinearHist, LinearRangeError> {
        if step < 1 {
            return Err(LinearRangeError::Step);
        }
        if min >= max {
            return Err(LinearRangeError::Order);
        }
        let span = i128::from(max) - i128::from(min);
        if span % i128::from(step) != 0 {
            return Err(LinearRangeError::NotMultiple);
        }
        let buckets = span / i128::from(step);
        if buckets > 10_000 {
            return Err(LinearRangeError::TooMany);
        }
        Ok(LinearHist {
            min,
            max,
            step,
            counts: vec![0; buckets as usize + 2],
        })
    }

    /// The bucket of `value`: 0 below min, the last one at or above max.
    pub fn bucket(&self, value: i128) -> usize {
        let (min, max) = (i128::from(self.min), i128::from(self.max));
        if value < min {
            0
        } else if value >= max {
            self.counts.len() - 1
        } else {
            1 + ((value - min) / i128::from(self.step)) as usize
        }
    }

    /// Adds one value.
    pub fn add(&mut self, value: i128) {
        let index = self.bucket(value);
        self.counts[index] += 1;
    }

    /// Total number of values.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Count of bucket `index`.
    pub fn count(&self, index: usize) -> u64 {
        self.counts.get(index).copied().unwrap_or(0)
    }

    /// Forgets every value, keeping the range.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    /// The label bpftrace prints for bucket `index`.
    pub fn label(&self, index: usize) -> String {
        if index == 0 {
            format!("(..., {})", linear_label(i128::from(self.min)))
        } else if index == self.counts.len() - 1 {
            format!("[{}, ...)", linear_label(i128::from(self.max)))
        } else {
            let low = i128::from(self.min) + (index as i128 - 1) * i128::from(self.step);
            format!(
                "[{}, {})",
                linear_label(low),
                linear_label(low + i128::from(self.step))
            )
        }
    }

    /// The buckets from the first to the last non-empty one, with their bounds.
    pub fn buckets(&self) -> Vec<Bucket> {
        let last = self.counts.len() - 1;
        shown_buckets(&self.counts, |i| {
            if i == 0 {
                (None, Some(i128::from(self.min) - 1))
            } else if i == last {
                (Some(i128::from(self.max)), None)
            } else {
                let low = i128::from(self.min) + (i as i128 - 1) * i128::from(self.step);
                (Some(low), Some(low + i128::from(self.step) - 1))
            }
        })
    }

    /// The lines bpftrace prints for this histogram (empty when it holds nothing).
    pub fn render(&self) -> String {
        render_rows(&self.counts, |i| self.label(i))
    }
}

/// A bound of a linear bucket: `NM` for multiples of 1048576, `NK` of 1024, else the number.
fn linear_label(number: i128) -> String {
    const KILO: i128 = 1024;
    const MEGA: i128 = 1024 * 1024;
    if number == 0 {
        "0".to_string()
    } else if number % MEGA == 0 {
        format!("{}M", number / MEGA)
    } else if number % KILO == 0 {
        format!("{}K", number / KILO)
    } else {
        number.to_string()
    }
}

/// Indexes from the first to the last non-empty bucket (empty when all are).
fn shown_range(counts: &[u64]) -> std::ops::Range<usize> {
    let first = counts.iter().position(|&c| c > 0);
    let last = counts.iter().rposition(|&c| c > 0);
    match (first, last) {
        (Some(first), Some(last)) => first..last + 1,
        _ => 0..0,
    }
}

/// The buckets from the first to the last non-empty one, with the inclusive `bounds` of each.
fn shown_buckets(
    counts: &[u64],
    bounds: impl Fn(usize) -> (Option<i128>, Option<i128>),
) -> Vec<Bucket> {
    shown_range(counts)
        .map(|i| {
            let (min, max) = bounds(i);
            Bucket {
                min,
                max,
                count: counts[i],
            }
        })
        .collect()
}

/// bpftrace's rows: label in 16 columns, count in 8, and the bar scaled to the fullest bucket.
fn render_rows(counts: &[u64], label: impl Fn(usize) -> String) -> String {
    let max = counts.iter().copied().max().unwrap_or(0);
    let mut out = String::new();
    for i in shown_range(counts) {
        let bar = "@".repeat(bar_width(counts[i], max));
        let _ = writeln!(
            out,
            "{:<16}{:>8} |{:<BAR_WIDTH$}|",
            label(i),
            counts[i],
            bar
        );
    }
    out
}

/// bpftrace computes `count / (float)max * 52` in single precision and truncates it.
fn bar_width(count: u64, max: u64) -> usize {
    if max == 0 {
        return 0;
    }
    let width = count as f32 / max as f32 * BAR_WIDTH as f32;
    (width as usize).min(BAR_WIDTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_bucket_edges_by_hand() {
        assert_eq!(log2_bucket(-1), 0);
        assert_eq!(log2_bucket(i128::from(i64::MIN)), 0);
        assert_eq!(log2_bucket(0), 1);
        assert_eq!(log2_bucket(1), 2);
        assert_eq!(log2_bucket(2), 3);
        assert_eq!(log2_bucket(3), 3);
        assert_eq!(log2_bucket(4), 4);
        assert_eq!(log2_bucket(1023), 11); // [512, 1K)
        assert_eq!(log2_bucket(1024), 12); // [1K, 2K)
        assert_eq!(log2_bucket(i128::from(u64::MAX)), 65); // [8E, 16E)
        assert_eq!(Log2Hist::label(11), "[512, 1K)");
        assert_eq!(Log2Hist::label(12), "[1K, 2K)");
        assert_eq!(Log2Hist::label(22), "[1M, 2M)");
        assert_eq!(Log2Hist::label(33), "[2G, 4G)");
        assert_eq!(Log2Hist::label(34), "[4G, 8G)");
        assert_eq!(Log2Hist::label(42), "[1T, 2T)");
        assert_eq!(Log2Hist::label(65), "[8E, 16E)");
        assert_eq!(Log2Hist::label(0), "(..., 0)");
    }

    #[test]
    fn log2_buckets_carry_inclusive_bounds() {
        let mut h = Log2Hist::default();
        for v in [-5, 0, 3, 1023, 1024, i128::from(u64::MAX)] {
            h.add(v);
        }
        let buckets = h.buckets();
        assert_eq!(buckets.len(), 66, "negative through [8E, 16E)");
        assert_eq!(
            buckets[0],
            Bucket {
                min: None,
                max: Some(-1),
                count: 1
            }
        );
        assert_eq!(
            buckets[3],
            Bucket {
                min: Some(2),
                max: Some(3),
                count: 1
            }
        );
        assert_eq!(
            buckets[11],
            Bucket {
                min: Some(512),
                max: Some(1023),
                count: 1
            }
        );
        assert_eq!(
            buckets[65],
            Bucket {
                min: Some(1 << 63),
                max: Some(i128::from(u64::MAX)),
                count: 1
            }
        );
        assert_eq!(h.total(), 6);
    }

    /// bpftrace 0.17's output for `hist()` of 0,1,2,3,4,1023,1024,-1,-5,-1 and 1<<20, captured by
    /// running it (the same values are fed to bpftrace live in `tests/trace_stats.rs`).
    #[test]
    fn log2_render_matches_bpftrace_rows() {
        let mut h = Log2Hist::default();
        for v in [0, 1, 2, 3, 4, 1023, 1024, -1, -5, -1, 1 << 20] {
            h.add(v);
        }
        let text = h.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "(..., 0)               3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|"
        );
        assert_eq!(
            lines[1],
            "[0]                    1 |@@@@@@@@@@@@@@@@@                                   |"
        );
        assert_eq!(
            lines[3],
            "[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                  |"
        );
        assert_eq!(
            lines[5],
            "[8, 16)                0 |                                                    |"
        );
        assert_eq!(
            lines[22],
            "[1M, 2M)               1 |@@@@@@@@@@@@@@@@@                                   |"
        );
        assert_eq!(lines.len(), 23);
    }

    #[test]
    fn empty_hist_prints_nothing() {
        assert_eq!(Log2Hist::default().render(), "");
        assert!(Log2Hist::default().buckets().is_empty());
    }

    #[test]
    fn linear_edges_by_hand() {
        let h = LinearHist::new(0, 100, 10).unwrap();
        assert_eq!(h.bucket(-3), 0);
        assert_eq!(h.bucket(0), 1);
        assert_eq!(h.bucket(9), 1);
        assert_eq!(h.bucket(10), 2);
        assert_eq!(h.bucket(99), 10);
        assert_eq!(h.bucket(100), 11);
        assert_eq!(h.bucket(i128::from(u64::MAX)), 11);
        assert_eq!(h.label(0), "(..., 0)");
        assert_eq!(h.label(1), "[0, 10)");
        assert_eq!(h.label(10), "[90, 100)");
        assert_eq!(h.label(11), "[100, ...)");
        let k = LinearHist::new(0, 4096, 1024).unwrap();
        assert_eq!(k.label(3), "[2K, 3K)");
        assert_eq!(k.label(5), "[4K, ...)");
        let m = LinearHist::new(0, 4 << 20, 1 << 20).unwrap();
        assert_eq!(m.label(4), "[3M, 4M)");
        let neg = LinearHist::new(-10, 10, 5).unwrap();
        assert_eq!(neg.bucket(-5), 2);
        assert_eq!(neg.label(2), "[-5, 0)");
        assert_eq!(neg.label(0), "(..., -10)");
    }

    #[test]
    fn linear_rejects_bad_ranges() {
        assert_eq!(
            LinearHist::new(0, 25, 10),
            Err(LinearRangeError::NotMultiple)
        );
        assert_eq!(LinearHist::new(0, 10, 0), Err(LinearRangeError::Step));
        assert_eq!(LinearHist::new(10, 10, 1), Err(LinearRangeError::Order));
        assert_eq!(
            LinearHist::new(0, 1 << 40, 1),
            Err(LinearRangeError::TooMany)
        );
    }

    /// bpftrace 0.17's rows for `lhist(v, 0, 100, 10)` of -3,0,9,10,99,100,1000,50.
    #[test]
    fn linear_render_matches_bpftrace_rows() {
        let mut h = LinearHist::new(0, 100, 10).unwrap();
        for v in [-3, 0, 9, 10, 99, 100, 1000, 50] {
            h.add(v);
        }
        let expected = "\
(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[0, 10)                2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[10, 20)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[20, 30)               0 |                                                    |
[30, 40)               0 |                                                    |
[40, 50)               0 |                                                    |
[50, 60)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[60, 70)               0 |                                                    |
[70, 80)               0 |                                                    |
[80, 90)               0 |                                                    |
[90, 100)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[100, ...)             2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
";
        assert_eq!(h.render(), expected);
    }

    #[test]
    fn bar_width_is_single_precision_truncation() {
        assert_eq!(bar_width(1, 3), 17); // 0.3333333 * 52 = 17.33
        assert_eq!(bar_width(2, 3), 34);
        assert_eq!(bar_width(3, 3), 52);
        assert_eq!(bar_width(0, 3), 0);
        assert_eq!(bar_width(1, 0), 0);
    }
}
