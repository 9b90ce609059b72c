//! A cheap hasher for integer keys (pids, module keys), for the maps on per-frame paths.

/// A multiplicative hasher for integer keys (pids, cache keys): much cheaper than SipHash on
/// the per-frame path, and the keys are not attacker-chosen strings.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// `BuildHasher` for [`IntHasher`].
pub(crate) type BuildIntHasher = std::hash::BuildHasherDefault<IntHasher>;
