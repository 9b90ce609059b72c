//! Work on many keys split by their hashes: which share of the key space a hash is in, and the
//! first of equal keys found on the thread pool, one task per share, in the order one pass
//! would find them (issue #13).

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

/// Keys hashed per task of [`first_of_equal`], at least.
const KEYS_PER_TASK: usize = 16 * 1024;

/// Per key, the index of the first key equal to it: its own for the first of its kind, and for
/// a key of `None`, which equals none. Found on the pool in as many shares as it has threads.
pub fn first_of_equal<K: Eq + Hash + Sync>(keys: &[Option<K>]) -> Vec<u32> {
    let shares = match keys.len() / KEYS_PER_TASK {
        0 | 1 => 1,
        most => rayon::current_num_threads().clamp(1, most),
    };
    first_of_equal_in(keys, shares)
}

/// [`first_of_equal`] in `shares` shares: each share's task reads every key's hash in order
/// and looks up those of its share, so each key is looked up once and the first of equal keys
/// is the first in order.
fn first_of_equal_in<K: Eq + Hash + Sync>(keys: &[Option<K>], shares: usize) -> Vec<u32> {
    let shares = shares.max(1);
    let hashes: Vec<u64> = keys
        .par_iter()
        .with_min_len(KEYS_PER_TASK)
        .map(|key| key.as_ref().map_or(0, |key| FxBuildHasher.hash_one(key)))
        .collect();
    let later: Vec<Vec<(u32, u32)>> = (0..shares)
        .into_par_iter()
        .map(|share| {
            let mut firsts: HashTable<u32> = HashTable::new();
            let mut later = Vec::new();
            for (index, (key, &hash)) in keys.iter().zip(&hashes).enumerate() {
                let Some(key) = key else { continue };
                if share_of(hash, shares) != share {
                    continue;
                }
                let same =
                    |&first: &u32| keys.get(first as usize).and_then(Option::as_ref) == Some(key);
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
    let mut first_of: Vec<u32> = (0..keys.len() as u32).collect();
    for (index, first) in later.into_iter().flatten() {
        if let Some(slot) = first_of.get_mut(index as usize) {
            *slot = first;
        }
    }
    first_of
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
        for shares in [1, 2, 3, 8, 64] {
            assert_eq!(
                first_of_equal_in(&keys, shares),
                expected,
                "{shares} shares"
            );
        }
        assert_eq!(first_of_equal(&keys), expected);
        assert!(first_of_equal::<u64>(&[]).is_empty());
    }
}
