//! `--stats`: count, min, avg, max and the p50/p90/p99 percentiles of a field.
//!
//! Percentiles are exact, by the nearest-rank rule: pN is the smallest value such that at least
//! N% of the values are ≤ it (the `ceil(N/100 · count)`-th smallest). To be exact, every value
//! is kept (16 bytes each) until printing. The average is the sum divided by the count,
//! truncated toward zero as bpftrace's `avg()` and `stats()` print it.

use serde::Serialize;

/// The values of one `--stats` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    values: Vec<i128>,
    sum: i128,
}

/// A finished summary, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min: i128,
    /// Sum / count, truncated toward zero.
    pub avg: i128,
    /// Largest value.
    pub max: i128,
    /// Median (nearest rank).
    pub p50: i128,
    /// 90th percentile (nearest rank).
    pub p90: i128,
    /// 99th percentile (nearest rank).
    pub p99: i128,
    /// Sum of the values.
    pub total: i128,
}

impl Stats {
    /// Adds one value.
    pub fn add(&mut self, value: i128) {
        self.values.push(value);
        self.sum += value;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.values.len() as u64
    }

    /// The summary; `None` when no value was added.
    pub fn summary(&self) -> Option<Summary> {
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let rank = |percent: usize| {
            // ceil(percent/100 · n), at least 1.
            let r = (percent * n).div_ceil(100).max(1);
            sorted[r - 1]
        };
        Some(Summary {
            count: n as u64,
            min,
            avg: self.sum / n as i128,
            max,
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            total: self.sum,
        })
    }
}

impl Summary {
    /// bpftrace's `key value` pairs joined by `, `.
    pub fn to_text(&self) -> String {
        format!(
            "count {}, min {}, avg {}, max {}, p50 {}, p90 {}, p99 {}",
            self.count, self.min, self.avg, self.max, self.p50, self.p90, self.p99
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: impl IntoIterator<Item = i128>) -> Summary {
        let mut s = Stats::default();
        values.into_iter().for_each(|v| s.add(v));
        s.summary().unwrap()
    }

    #[test]
    fn percentiles_of_one_to_hundred() {
        let s = summary((1..=100).rev());
        assert_eq!((s.count, s.min, s.max, s.total), (100, 1, 100, 5050));
        assert_eq!(s.avg, 50); // 50.5 truncated
        assert_eq!((s.p50, s.p90, s.p99), (50, 90, 99));
    }

    #[test]
    fn percentiles_of_small_and_skewed_sets() {
        let s = summary([7]);
        assert_eq!(
            (s.min, s.avg, s.max, s.p50, s.p90, s.p99),
            (7, 7, 7, 7, 7, 7)
        );
        // Ten values: p50 is the 5th, p90 the 9th, p99 the 10th.
        let s = summary([10, 1, 9, 2, 8, 3, 7, 4, 6, 1000]);
        assert_eq!((s.p50, s.p90, s.p99), (6, 10, 1000));
        assert_eq!(s.avg, 105);
        // Negative values: the average truncates toward zero (-7 / 2 = -3).
        let s = summary([-5, -2]);
        assert_eq!((s.min, s.avg, s.max, s.p50), (-5, -3, -2, -5));
        assert_eq!(
            s.to_text(),
            "count 2, min -5, avg -3, max -2, p50 -5, p90 -2, p99 -2"
        );
    }

    #[test]
    fn extremes_do_not_overflow() {
        let s = summary([
            i128::from(u64::MAX),
            i128::from(u64::MAX),
            i128::from(i64::MIN),
        ]);
        assert_eq!(s.total, 2 * i128::from(u64::MAX) + i128::from(i64::MIN));
        assert_eq!(s.max, i128::from(u64::MAX));
        assert!(Stats::default().summary().is_none());
    }
}
