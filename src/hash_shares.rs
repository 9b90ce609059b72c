//! Work on many keys split by their hashes: which share of the key space a hash is in, the
//! first of equal keys found on the thread pool, one task per share, in the order one pass
//! would find them, and the distinct keys numbered in that order (issue #13).

use hashbrown::HashTable;
use rayon::prelude::*;
use rustc_hash::FxBuildHasher;
use std::hash::{BuildHasher, Hash};

/// Which of `shares` shares of the key space a key with hash `hash` is in: by bits the hash
/// tables leave alone (they index by the low bits and tag by the top seven), so that every
/// share's table still spreads its keys over all of its slots.
pub fn share_of(hash: u64, shares: usize) -> usize {
    let middle = (hash >> 32) & 0xff_ffff;
    ((middle * shares as u64) >> 24) as usize
}

/// Keys hashed per task of [`first_of_equal`], at least, and indices numbered per task of
/// [`ranks_of_firsts`].
const KEYS_PER_TASK: usize = 16 * 1024;

/// Per index below `len`, the index of the first whose key (`key_of`) equals its own: its own
/// for the first of its kind, and for a key of `None`, which equals none. Found on the pool in
/// as many shares as it has threads. Keys are made again where compared, not stored: for keys
/// that are cheap to make from what the caller holds.
pub fn first_of_equal<K, F>(len: usize, key_of: F) -> Vec<u32>
where
    K: Eq + Hash,
    F: Fn(usize) -> Option<K> + Sync,
{
    let shares = match len / KEYS_PER_TASK {
        0 | 1 => 1,
        most => rayon::current_num_threads().clamp(1, most),
    };
    first_of_equal_in(len, &key_of, shares)
}

/// [`first_of_equal`] in `shares` shares: each share's task reads every key's hash in order
/// and looks up those of its share, so each key is looked up once and the first of equal keys
/// is the first in order.
fn first_of_equal_in<K, F>(len: usize, key_of: &F, shares: usize) -> Vec<u32>
where
    K: Eq + Hash,
    F: Fn(usize) -> Option<K> + Sync,
{
    let shares = shares.max(1);
    // A key of `None` has no hash: the task of share 0 sees that it has no key.
    let hashes: Vec<u64> = (0..len)
        .into_par_iter()
        .with_min_len(KEYS_PER_TASK)
        .map(|index| key_of(index).map_or(0, |key| FxBuildHasher.hash_one(key)))
        .collect();
    let later: Vec<Vec<(u32, u32)>> = (0..shares)
        .into_par_iter()
        .map(|share| {
            // Room for every key of the share, at most: growing would hash each first again,
            // from a random place of `hashes`.
            let mut firsts: HashTable<u32> = HashTable::with_capacity(len / shares + 1);
            let mut later = Vec::new();
            for (index, &hash) in hashes.iter().enumerate() {
                if share_of(hash, shares) != share {
                    continue;
                }
                let Some(key) = key_of(index) else { continue };
                let same = |&first: &u32| key_of(first as usize).as_ref() == Some(&key);
                match firsts.find(hash, same) {
                    Some(&first) => later.push((index as u32, first)),
                    None => {
                        let rehash =
                            |&first: &u32| hashes.get(first as usize).copied().unwrap_or(0);
                        firsts.insert_unique(hash, index as u32, rehash);
                    }
                }
            }
            later
        })
        .collect();
    let mut first_of: Vec<u32> = (0..len as u32).collect();
    for (index, first) in later.into_iter().flatten() {
        if let Some(slot) = first_of.get_mut(index as usize) {
            *slot = first;
        }
    }
    first_of
}

/// Per index of `first_of` (what [`first_of_equal`] gives), how many firsts of their kind
/// come before its first: the numbers of the distinct keys in the order first seen. Counted
/// on the pool, a block of indices per task.
pub fn ranks_of_firsts(first_of: &[u32]) -> Vec<u32> {
    let is_first =
        |block: usize, offset: usize, first: u32| first as usize == block * KEYS_PER_TASK + offset;
    let firsts_per_block: Vec<u32> = first_of
        .par_chunks(KEYS_PER_TASK)
        .enumerate()
        .map(|(block, firsts)| {
            let mut count = 0;
            for (offset, &first) in firsts.iter().enumerate() {
                count += u32::from(is_first(block, offset, first));
            }
            count
        })
        .collect();
    let mut block_starts = Vec::with_capacity(firsts_per_block.len());
    let mut firsts_before = 0u32;
    for count in firsts_per_block {
        block_starts.push(firsts_before);
        firsts_before += count;
    }
    // The rank of each first, at its own index (the others' are read from their firsts').
    let mut ranks = vec![0u32; first_of.len()];
    ranks
        .par_chunks_mut(KEYS_PER_TASK)
        .zip(first_of.par_chunks(KEYS_PER_TASK))
        .enumerate()
        .for_each(|(block, (ranks, firsts))| {
            let mut next = block_starts.get(block).copied().unwrap_or(0);
            for (offset, (rank, &first)) in ranks.iter_mut().zip(firsts).enumerate() {
                if is_first(block, offset, first) {
                    *rank = next;
                    next += 1;
                }
            }
        });
    first_of
        .par_iter()
        .with_min_len(KEYS_PER_TASK)
        .map(|&first| ranks.get(first as usize).copied().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn shares_are_in_range() {
        for shares in 1..=64 {
            for hash in [0, u64::MAX, 0x0000_ffff_ffff_0000, 0xffff_0000_0000_ffff] {
                assert!(share_of(hash, shares) < shares);
            }
        }
    }

    #[test]
    fn the_first_of_equal_keys_is_found_as_in_one_pass() {
        let mut next = kprof_test_support::xorshift(7);
        let keys: Vec<Option<u64>> = (0..5_000)
            .map(|_| match next() % 5 {
                0 => None,
                _ => Some(next() % 900),
            })
            .collect();
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let expected: Vec<u32> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| match key {
                Some(key) => *seen.entry(*key).or_insert(index as u32),
                None => index as u32,
            })
            .collect();
        assert!(
            expected
                .iter()
                .enumerate()
                .filter(|&(i, &f)| i as u32 != f)
                .count()
                > 3000
        );
        let key_of = |index: usize| keys[index];
        for shares in [1, 2, 3, 8, 64] {
            assert_eq!(
                first_of_equal_in(keys.len(), &key_of, shares),
                expected,
                "{shares} shares"
            );
        }
        assert_eq!(first_of_equal(keys.len(), key_of), expected);
        assert!(first_of_equal(0, |_| Some(0u64)).is_empty());
    }

    #[test]
    fn ranks_number_the_distinct_keys_in_the_order_first_seen() {
        let mut next = kprof_test_support::xorshift(11);
        // Blocks of the numbering split first seen keys from their repeats.
        let keys: Vec<u64> = (0..3 * KEYS_PER_TASK + 77)
            .map(|_| next() % 20_000)
            .collect();
        let mut numbers: HashMap<u64, u32> = HashMap::new();
        let expected: Vec<u32> = keys
            .iter()
            .map(|key| {
                let count = numbers.len() as u32;
                *numbers.entry(*key).or_insert(count)
            })
            .collect();
        assert!(numbers.len() > 10_000 && numbers.len() < keys.len());
        let first_of = first_of_equal(keys.len(), |index| Some(keys[index]));
        assert_eq!(ranks_of_firsts(&first_of), expected);
        assert!(ranks_of_firsts(&[]).is_empty());
    }
}
