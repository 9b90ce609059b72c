//! Sorting the record index into time order, for an index that is sorted but for local
//! disorder.
//!
//! perf writes a recording in rounds, each round one run of records per CPU buffer, so the
//! index is a long series of short sorted runs whose times overlap only with their
//! neighbours'. A merge sort over the whole index merges those runs in a dozen passes over
//! all of it; here blocks that fit a core's cache are sorted side by side, and then only the
//! few entries around each seam between two blocks are out of place. Hand-written: no crate
//! sorts an index by that shape, and the order is the one any sort gives (entries are unique).

use rayon::prelude::*;

/// Entries per block sorted on its own: 16k index entries (16 bytes each) take a quarter of
/// a MiB. (On a machine-wide recording of a build, 4k to 32k sort alike, and larger ones
/// slower.)
const BLOCK: usize = 16 * 1024;

/// Sorts `entries`, which must all differ (so that every sort orders them alike): by blocks,
/// then seam by seam. Where the seams hold more entries than the slice (a file whose records
/// are out of order far and wide), the whole slice is sorted instead, as it is when it holds
/// fewer than four blocks (a small file's index sorts in a millisecond either way).
pub(super) fn sort_nearly_sorted<T: Ord + Send>(entries: &mut [T]) {
    if entries.len() < 4 * BLOCK {
        if !entries.is_sorted() {
            entries.par_sort();
        }
        return;
    }
    sort_in_blocks(entries, BLOCK);
}

/// [`sort_nearly_sorted`] with blocks of `block` entries.
fn sort_in_blocks<T: Ord + Send>(entries: &mut [T], block: usize) {
    if entries.is_sorted() {
        return;
    }
    let block = block.max(1);
    entries.par_chunks_mut(block).for_each(|block| block.sort());
    // `entries[..sorted]` is sorted; each step joins the next block to it.
    let mut sorted = block.min(entries.len());
    let mut seams_left = entries.len();
    while sorted < entries.len() {
        let end = sorted.saturating_add(block).min(entries.len());
        let (head, tail) = entries.split_at(sorted);
        let next = tail.get(..end - sorted).unwrap_or_default();
        let (Some(last), Some(first)) = (head.last(), next.first()) else {
            break;
        };
        // Entries before `from` are at most the next block's first, and those from `to` on
        // at least the sorted part's last: only `from..to` is out of place.
        let from = head.partition_point(|entry| entry <= first);
        let to = sorted + next.partition_point(|entry| entry < last);
        // Two sorted runs: sorting them merges them, in one pass over the seam.
        seams_left = match seams_left.checked_sub(to - from) {
            Some(left) => left,
            None => {
                entries.par_sort();
                return;
            }
        };
        if let Some(seam) = entries.get_mut(from..to) {
            seam.sort();
        }
        sorted = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprof_test_support::xorshift as numbers;

    /// `len` distinct (time, position) entries as perf writes them: rounds of per-CPU runs
    /// whose times interleave, each run sorted, with `spread` the most a run's times reach
    /// back before the round's start.
    fn rounds(len: usize, cpus: u64, spread: u64, seed: u64) -> Vec<(u64, usize)> {
        let mut next = numbers(seed);
        let mut entries = Vec::with_capacity(len);
        let mut round_start = 1_000_000u64;
        while entries.len() < len {
            for _ in 0..cpus {
                let run = 1 + (next() % 300) as usize;
                let mut time = round_start.saturating_sub(next() % (spread + 1));
                for _ in 0..run {
                    time += next() % 50;
                    entries.push((time, entries.len()));
                }
            }
            round_start += 5_000;
        }
        entries.truncate(len);
        entries
    }

    // See: issue #13 (the index sorted by blocks and seams is the index sorted)
    #[test]
    fn blocks_and_seams_sort_as_a_sort_does() {
        for (len, cpus, spread, block) in [
            (0, 1, 0, 4),
            (1, 1, 0, 4),
            (10_000, 2, 3_000, 512),
            (50_000, 8, 9_000, 1_000),
            (50_000, 3, 0, 7),
            (20_000, 4, 200_000, 256),
        ] {
            for seed in [1, 2, 3] {
                let entries = rounds(len, cpus, spread, seed);
                let mut expected = entries.clone();
                expected.sort();
                let mut sorted = entries;
                sort_in_blocks(&mut sorted, block);
                assert_eq!(
                    sorted, expected,
                    "{len} entries, {cpus} cpus, blocks of {block}"
                );
            }
        }
    }

    #[test]
    fn a_shuffled_index_falls_back_to_one_sort() {
        let mut next = numbers(7);
        let mut entries: Vec<u64> = (0..40_000).collect();
        for i in (1..entries.len()).rev() {
            entries.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        sort_in_blocks(&mut entries, 1_000);
        assert!(entries.iter().copied().eq(0..40_000));
    }
}
