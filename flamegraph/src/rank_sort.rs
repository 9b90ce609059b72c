//! Sorting stacks as sequences of ranks (`[u32]`, compared as slices are), a few ranks at a
//! time: each stack's next three ranks are packed into one integer key, the stacks are sorted
//! by their keys, and only stacks with equal keys are sorted further, by their next three.
//!
//! On a machine-wide profile most stacks share long prefixes (the same process, the same
//! callers), so a comparison sort compares those prefixes again in every one of its millions
//! of comparisons, from ranks all over memory; here each rank is read about once, and keys
//! are compared where they lie. Hand-written: no crate sorts slices of slices this way
//! (issue #13 point 1).

use rayon::prelude::*;

/// Ranks packed per key.
const RANKS_PER_KEY: usize = 3;

/// Bits per rank in a key: a rank plus one (any `u32`), and 0 past the end of a stack.
const RANK_BITS: u32 = 33;

/// The low slot of a key: 0 when the stack ends within the key.
const LAST_SLOT: u128 = (1 << RANK_BITS) - 1;

/// Groups at most this large are sorted by comparing their ranks from where they differ.
const SMALL_GROUP: usize = 16;

/// Groups larger than this are sorted, and split further, on the thread pool.
const PARALLEL_GROUP: usize = 16 * 1024;

/// Ranks that keys are made of at most: beyond, a group is sorted by comparing its ranks, so
/// that no stack shape can make the recursion deep.
const MAX_KEYED_DEPTH: usize = 32 * RANKS_PER_KEY;

/// The key of `ranks` at `depth`: its ranks from `depth` on, three of them, each plus one,
/// 0 past the end. Keys compare as those ranks do as slices: a stack that ends first, first.
fn key_at(ranks: &[u32], depth: usize) -> u128 {
    (0..RANKS_PER_KEY).fold(0, |key, i| {
        let slot = ranks.get(depth + i).map_or(0, |&rank| u128::from(rank) + 1);
        key << RANK_BITS | slot
    })
}

/// Sorts `items` by their ranks (`ranks_of`), as `sort_unstable_by(|a, b|
/// ranks_of(a).cmp(ranks_of(b)))` would, on the thread pool. Items with equal ranks end up
/// next to each other, in no given order.
pub(crate) fn sort_by_ranks<'r, T, F>(items: Vec<T>, ranks_of: &F) -> Vec<T>
where
    T: Send,
    F: Fn(&T) -> &'r [u32] + Sync,
{
    let mut keyed: Vec<(u128, T)> = items
        .into_par_iter()
        .with_min_len(PARALLEL_GROUP)
        .map(|item| (key_at(ranks_of(&item), 0), item))
        .collect();
    sort_keyed(&mut keyed, ranks_of, 0);
    keyed
        .into_par_iter()
        .with_min_len(PARALLEL_GROUP)
        .map(|(_, item)| item)
        .collect()
}

/// Sorts `group`, whose items are equal in their first `depth` ranks and carry their keys at
/// `depth`.
fn sort_keyed<'r, T, F>(group: &mut [(u128, T)], ranks_of: &F, depth: usize)
where
    T: Send,
    F: Fn(&T) -> &'r [u32] + Sync,
{
    let parallel = group.len() > PARALLEL_GROUP;
    if parallel {
        group.par_sort_unstable_by_key(|&(key, _)| key);
    } else {
        group.sort_unstable_by_key(|&(key, _)| key);
    }
    let next = depth + RANKS_PER_KEY;
    let sort_equal_keys = |equal: &mut [(u128, T)]| {
        let rest = |(_, item): &(u128, T)| ranks_of(item).get(next..).unwrap_or_default();
        if equal.len() <= SMALL_GROUP || next >= MAX_KEYED_DEPTH {
            equal.sort_unstable_by(|a, b| rest(a).cmp(rest(b)));
            return;
        }
        for (key, item) in equal.iter_mut() {
            *key = key_at(ranks_of(item), next);
        }
        sort_keyed(equal, ranks_of, next);
    };
    // Items with equal keys that end within them are equal: nothing left to sort.
    let unsorted = group
        .chunk_by_mut(|a, b| a.0 == b.0)
        .filter(|equal| equal.len() > 1 && equal.first().is_some_and(|e| e.0 & LAST_SLOT != 0));
    if parallel {
        unsorted
            .collect::<Vec<_>>()
            .into_par_iter()
            .for_each(sort_equal_keys);
    } else {
        unsorted.for_each(sort_equal_keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::test_random;

    fn sorted_as_slices(stacks: &[Vec<u32>]) -> Vec<Vec<u32>> {
        let mut expected = stacks.to_vec();
        expected.sort_unstable();
        expected
    }

    // See: issue #13 point 1 (the same order as a comparison sort, whatever the shapes)
    #[test]
    fn ranks_sort_as_slices_do() {
        let mut next = test_random(5);
        // Long shared prefixes, prefixes of one another, empty stacks, ranks at the ends of
        // u32, and enough stacks for the parallel path and keys beyond the keyed depth.
        let prefix: Vec<u32> = (0..200).map(|_| (next() % 4) as u32).collect();
        let mut stacks: Vec<Vec<u32>> = Vec::new();
        for _ in 0..3 * PARALLEL_GROUP {
            let shared = (next() % 200) as usize;
            let extra = (next() % 6) as usize;
            let mut stack = prefix.get(..shared).unwrap_or_default().to_vec();
            stack.extend((0..extra).map(|_| match next() % 5 {
                0 => u32::MAX,
                1 => 0,
                _ => (next() % 3) as u32,
            }));
            stacks.push(stack);
        }
        stacks.push(Vec::new());
        stacks.push(vec![u32::MAX; 4]);
        stacks.push(vec![u32::MAX - 1, u32::MAX]);
        let expected = sorted_as_slices(&stacks);
        // Items are indices of the stacks, as the folder's are entries of its runs.
        let sort = |stacks: &[Vec<u32>]| -> Vec<Vec<u32>> {
            let ranks_of = |&index: &usize| stacks[index].as_slice();
            sort_by_ranks((0..stacks.len()).collect(), &ranks_of)
                .into_iter()
                .map(|index| stacks[index].clone())
                .collect()
        };
        assert_eq!(sort(&stacks), expected);
        // Small inputs take the serial path.
        let few = stacks.get(..50).unwrap_or_default();
        assert_eq!(sort(few), sorted_as_slices(few));
    }

    #[test]
    fn keys_compare_as_the_ranks_they_hold() {
        let pairs: [(&[u32], &[u32]); 5] = [
            (&[], &[0]),
            (&[1], &[1, 0]),
            (&[0, u32::MAX], &[1]),
            (&[5, 6, 7], &[5, 6, 8]),
            (&[u32::MAX - 1, u32::MAX, 3], &[u32::MAX, 0]),
        ];
        for (less, more) in pairs {
            assert!(key_at(less, 0) < key_at(more, 0), "{less:?} {more:?}");
        }
        assert_eq!(key_at(&[9, 1, 2, 3], 1), key_at(&[1, 2, 3, 4], 0));
        assert_eq!(key_at(&[1, 2], 0) & LAST_SLOT, 0, "ends within the key");
    }
}
