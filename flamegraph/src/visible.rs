//! The lines handed to inferno, cut where inferno draws nothing: a frame narrower than the
//! minimum width is pruned, and so is every frame above it, which is narrower still. On a
//! machine-wide profile most distinct stacks are a few samples wide, and inferno would parse
//! and merge all their frames to drop them (issue #13 point 1); a stack cut below its first
//! such frame, and merged with the equal stacks next to it, gives inferno the same frames to
//! draw, in the same order, with the same widths.

use rayon::prelude::*;

use crate::folder::RankedStacks;

/// Lines made per task, at least.
const LINES_PER_TASK: usize = 1024;

/// The largest sample total handed to inferno: larger totals are scaled down (and the tooltip
/// counts scaled back up with inferno's `factor`), which keeps inferno's `u64` sums and the
/// viewer's JavaScript numbers exact.
pub(crate) const MAX_RENDER_TOTAL: u128 = 1 << 52;

/// What inferno is handed: lines `stack count`, and what else it needs to know of them.
pub(crate) struct VisibleLines {
    /// The lines, in frame order.
    pub(crate) lines: Vec<String>,
    /// What the counts were divided by, for inferno's `factor`.
    pub(crate) divisor: u64,
    /// The ranks of the frames in the lines, each once, in rank order: the only frames
    /// inferno may draw, and so the only ones it looks a colour up for.
    pub(crate) ranks: Vec<u32>,
}

/// Lines `stack count` for inferno from `stacks` (in frame order, each once), cut where
/// inferno prunes with `min_width_pct` (its `min_width`: percent of the total), with counts
/// divided so their sum fits [`MAX_RENDER_TOTAL`].
pub(crate) fn visible_lines(stacks: &RankedStacks, min_width_pct: f64) -> VisibleLines {
    let sum: u128 = (0..stacks.len())
        .map(|i| u128::from(stacks.weight(i)))
        .sum();
    let divisor = u64::try_from(sum.div_ceil(MAX_RENDER_TOTAL).max(1)).unwrap_or(u64::MAX);
    let counts: Vec<u64> = (0..stacks.len())
        .map(|i| stacks.weight(i) / divisor)
        .collect();
    let kept = kept_frames(stacks, &counts, min_width_pct);
    // The lines' frames and counts in one pass; their texts are made on the pool.
    let mut merged: Vec<(&[u32], u64)> = Vec::new();
    let mut ranks = Vec::new();
    for (i, (&keep, &count)) in kept.iter().zip(&counts).enumerate() {
        let stack = stacks.stack(i);
        let frames = stack.get(..keep).unwrap_or(stack);
        match merged.last_mut() {
            // Equal once cut: one line, as inferno merges them.
            Some((last, sum)) if *last == frames => *sum = sum.saturating_add(count),
            _ => {
                // A line's frames once, not once per stack merged into it.
                ranks.extend_from_slice(frames);
                merged.push((frames, count));
            }
        }
    }
    let lines = merged
        .par_iter()
        .with_min_len(LINES_PER_TASK)
        .map(|&(frames, sum)| format!("{} {sum}", stacks.text(frames)))
        .collect();
    ranks.par_sort_unstable();
    ranks.dedup();
    VisibleLines {
        lines,
        divisor,
        ranks,
    }
}

/// Per stack, how many of its frames (from the first) inferno may draw: all but those from
/// its first frame whose box (the run of adjacent stacks through it) is surely pruned; never
/// none, as inferno ignores an empty stack and its count with it.
fn kept_frames(stacks: &RankedStacks, counts: &[u64], min_width_pct: f64) -> Vec<usize> {
    let mut kept: Vec<usize> = (0..stacks.len()).map(|i| stacks.stack(i).len()).collect();
    let total = counts.iter().fold(0u64, |sum, &c| sum.saturating_add(c));
    if total == 0 || min_width_pct.is_nan() || min_width_pct <= 0.0 {
        return kept;
    }
    // inferno's own arithmetic: a box narrower than this many counts is pruned. Only boxes
    // narrower than half of it are cut here, so that no rounding can tell the two apart.
    let pruned_below = min_width_pct / (100.0 / total as f64);
    let cut_below = pruned_below / 2.0;
    // The open box at each depth: its first stack and the sum of the counts before it; its
    // width is what the counts added since (one sum for all depths, not one per depth).
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut sum_before = 0u64;
    let mut previous: &[u32] = &[];
    for i in 0..=stacks.len() {
        let frames = if i < stacks.len() {
            stacks.stack(i)
        } else {
            &[]
        };
        let shared = previous
            .iter()
            .zip(frames)
            .take_while(|(a, b)| a == b)
            .count();
        while open.len() > shared {
            let depth = open.len() - 1;
            let Some((first, before)) = open.pop() else {
                break;
            };
            let width = sum_before - before;
            if (width as f64) < cut_below {
                for keep in kept.get_mut(first..i).unwrap_or_default() {
                    *keep = (*keep).min(depth.max(1));
                }
            }
        }
        let Some(&count) = counts.get(i) else {
            break;
        };
        while open.len() < frames.len() {
            open.push((i, sum_before));
        }
        // The counts sum to at most `MAX_RENDER_TOTAL` (see `visible_lines`): no overflow.
        sum_before = sum_before.saturating_add(count);
        previous = frames;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Folder;

    #[test]
    fn no_stack_is_cut_to_nothing() {
        let mut folder = Folder::new();
        folder.add(&["wide"], 1_000_000);
        folder.add(&["narrow", "a"], 1);
        folder.add(&["narrow2", "b", "c"], 1);
        let stacks = folder.frame_ordered_stacks(false, false);
        let visible = visible_lines(&stacks, 1.0);
        assert_eq!(visible.lines, ["narrow 1", "narrow2 1", "wide 1000000"]);
        let drawn: Vec<&str> = visible
            .ranks
            .iter()
            .filter_map(|&rank| stacks.frame(rank))
            .map(|(text, _)| text)
            .collect();
        assert_eq!(drawn, ["narrow", "narrow2", "wide"]);
    }
}
