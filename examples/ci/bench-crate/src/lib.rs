//! The work that kprof's CI example benchmarks: a buffer of fixed-size records goes through a
//! hot checksum, a validation pass and two cheaper helpers, each in its own non-inlined
//! function so a profiler names them.
//!
//! The `slow` feature is the "change" in the example: it makes [`validate_records`] do five
//! times the work, a regression that `kprof diff` must find.
//!
//! ```
//! let data = kprof_ci_bench::make_input(4096);
//! let summary = kprof_ci_bench::process(&data);
//! assert_eq!(summary.records, 4096 / kprof_ci_bench::RECORD_LEN);
//! ```

use std::hint::black_box;

/// Bytes per record in the input buffer.
pub const RECORD_LEN: usize = 64;

/// How many leading bytes of each record [`validate_records`] checks.
pub const VALIDATE_PREFIX: usize = 16;

/// How many times [`validate_records`] scans each record: once, or five times with `slow`.
pub const VALIDATE_PASSES: u32 = if cfg!(feature = "slow") { 5 } else { 1 };

/// What one round of [`process`] computed (kept so the optimiser cannot drop the work).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Checksum over all bytes.
    pub checksum: u64,
    /// Records seen.
    pub records: usize,
    /// Records whose validation tag was odd.
    pub odd: usize,
    /// Mixed keys of all records.
    pub keys: u64,
    /// Zero bytes in the input.
    pub zeros: usize,
}

/// A deterministic pseudo-random input of `len` bytes (xorshift).
pub fn make_input(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The hot function: a byte-at-a-time FNV-style checksum with extra mixing, about half of
/// each round.
#[inline(never)]
pub fn hot_checksum(data: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        hash ^= hash >> 29;
    }
    hash
}

/// Tags each record from its first [`VALIDATE_PREFIX`] bytes; with the `slow` feature it scans every record five times.
#[inline(never)]
pub fn validate_records(data: &[u8]) -> usize {
    let mut odd = 0;
    for pass in 0..VALIDATE_PASSES {
        // One dependency chain through all records, so the passes cannot overlap.
        let mut tag = u64::from(black_box(pass));
        for record in data.chunks_exact(RECORD_LEN) {
            for &byte in record.iter().take(VALIDATE_PREFIX) {
                tag = (tag ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            }
            odd += usize::from(tag & 1 == 1);
        }
    }
    odd / VALIDATE_PASSES as usize
}

/// How many leading bytes of each record [`mix_keys`] mixes: half of them, so that
/// [`hot_checksum`] (every byte) stays clearly the hottest function on every CPU.
pub const KEY_PREFIX: usize = 32;

/// Mixes the first [`KEY_PREFIX`] bytes of each record into a key.
#[inline(never)]
pub fn mix_keys(data: &[u8]) -> u64 {
    let mut keys = 0_u64;
    for record in data.chunks_exact(RECORD_LEN) {
        let mut key = 0_u64;
        for (i, &byte) in record.iter().take(KEY_PREFIX).enumerate() {
            key = key
                .wrapping_add(u64::from(byte) << (i % 56))
                .wrapping_mul(31);
        }
        keys = keys.wrapping_add(key);
    }
    keys
}

/// Counts the zero bytes in the buffer.
#[inline(never)]
pub fn count_zero_bytes(data: &[u8]) -> usize {
    data.iter().filter(|&&byte| black_box(byte) == 0).count()
}

/// One benchmark round over `data`.
#[inline(never)]
pub fn process(data: &[u8]) -> Summary {
    Summary {
        checksum: hot_checksum(black_box(data)),
        odd: validate_records(black_box(data)),
        keys: mix_keys(black_box(data)),
        zeros: count_zero_bytes(black_box(data)),
        records: data.len() / RECORD_LEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_is_deterministic_and_counts_records() {
        let data = make_input(RECORD_LEN * 10 + 3);
        let first = process(&data);
        assert_eq!(first, process(&data));
        assert_eq!(first.records, 10);
        assert!(first.odd <= 10);
        assert!(first.zeros <= data.len());
        assert_ne!(first.checksum, hot_checksum(&data[1..]));
    }
}
