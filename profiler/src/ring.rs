//! Safe reading of a perf ring buffer: the records in `[data_tail, data_head)`, with records that
//! wrap the end of the buffer handed out in two pieces ([`RawData::Split`]).

use std::io;

/// Access to a ring's data area and its head/tail counters. `sys::RingMapping` implements it over
/// the kernel's mapping; tests implement it over a `Vec`.
///
/// Offsets passed to [`RingMemory::bytes`] are already reduced modulo [`RingMemory::data_size`].
pub trait RingMemory {
    /// Size of the data area in bytes (a power of two).
    fn data_size(&self) -> usize;
    /// The producer position (`data_head`), loaded with Acquire ordering.
    fn load_head(&self) -> u64;
    /// The consumer position (`data_tail`).
    fn load_tail(&self) -> u64;
    /// Publishes the consumer position with Release ordering: the producer may reuse the space.
    fn store_tail(&mut self, tail: u64);
    /// `len` bytes of the data area starting at `offset`; empty when out of range.
    /// Only ever asked for bytes inside `[tail, head)`.
    fn bytes(&self, offset: usize, len: usize) -> &[u8];
}

/// One record's bytes (header included) as they lie in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawData<'a> {
    /// The record is contiguous.
    Single(&'a [u8]),
    /// The record wraps the end of the buffer: `first` is at the end, `second` at the start.
    Split(&'a [u8], &'a [u8]),
}

impl RawData<'_> {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        match self {
            RawData::Single(a) => a.len(),
            RawData::Split(a, b) => a.len() + b.len(),
        }
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The byte at `index`, if any.
    pub fn byte(&self, index: usize) -> Option<u8> {
        match self {
            RawData::Single(a) => a.get(index).copied(),
            RawData::Split(a, b) => match a.get(index) {
                Some(&x) => Some(x),
                None => b.get(index - a.len()).copied(),
            },
        }
    }

    /// Copies `N` bytes starting at `offset`, if present.
    pub fn array<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.byte(offset.checked_add(i)?)?;
        }
        Some(out)
    }

    /// The record type from the `perf_event_header`.
    pub fn record_type(&self) -> Option<u32> {
        self.array::<4>(0).map(u32::from_ne_bytes)
    }

    /// Copies the record into one contiguous buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            RawData::Single(a) => a.to_vec(),
            RawData::Split(a, b) => [*a, *b].concat(),
        }
    }
}

/// What one [`drain`] call consumed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainStats {
    /// Records handed to the callback.
    pub records: u64,
    /// Bytes the tail advanced by.
    pub bytes: u64,
    /// True when a malformed header (size < 8 or past head) made us skip to head.
    pub corrupt: bool,
}

const HEADER_SIZE: u64 = 8;

/// Hands every complete record in `[tail, head)` to `out`, in order, then advances the tail past
/// them. On a callback error the tail is advanced past the records already handed out and the
/// error is returned.
pub fn drain<M: RingMemory + ?Sized>(
    ring: &mut M,
    out: &mut dyn FnMut(RawData<'_>) -> io::Result<()>,
) -> io::Result<DrainStats> {
    let head = ring.load_head();
    let start = ring.load_tail();
    let size = ring.data_size();
    let mut stats = DrainStats::default();
    if size == 0 || !size.is_power_of_two() {
        return Ok(stats);
    }
    let mask = (size - 1) as u64;
    let mut tail = start;
    let mut result = Ok(());
    while head.wrapping_sub(tail) >= HEADER_SIZE {
        let available = head.wrapping_sub(tail);
        if available > size as u64 {
            // Head ran more than a full buffer ahead: nothing consistent to read.
            stats.corrupt = true;
            tail = head;
            break;
        }
        let offset = (tail & mask) as usize;
        let header = piece(&*ring, offset, HEADER_SIZE as usize, size);
        let Some(len_bytes) = header.array::<2>(6) else {
            stats.corrupt = true;
            tail = head;
            break;
        };
        let len = u64::from(u16::from_ne_bytes(len_bytes));
        if len < HEADER_SIZE || len > available {
            stats.corrupt = true;
            tail = head;
            break;
        }
        let record = piece(&*ring, offset, len as usize, size);
        if let Err(e) = out(record) {
            result = Err(e);
            tail = tail.wrapping_add(len);
            stats.records += 1;
            break;
        }
        tail = tail.wrapping_add(len);
        stats.records += 1;
    }
    stats.bytes = tail.wrapping_sub(start);
    if tail != start {
        ring.store_tail(tail);
    }
    result.map(|()| stats)
}

/// `len` bytes at `offset` of a ring of `size` bytes, split if they wrap.
fn piece<M: RingMemory + ?Sized>(ring: &M, offset: usize, len: usize, size: usize) -> RawData<'_> {
    let until_end = size - offset;
    if len <= until_end {
        RawData::Single(ring.bytes(offset, len))
    } else {
        RawData::Split(
            ring.bytes(offset, until_end),
            ring.bytes(0, len - until_end),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    /// An in-memory ring that panics if anything outside [tail, head) is read.
    pub(crate) struct VecRing {
        pub data: Vec<u8>,
        pub head: u64,
        pub tail: u64,
        pub max_read_end: Cell<u64>,
    }

    impl VecRing {
        pub fn new(size: usize) -> Self {
            VecRing {
                data: vec![0xee; size],
                head: 0,
                tail: 0,
                max_read_end: Cell::new(0),
            }
        }

        pub fn free(&self) -> u64 {
            self.data.len() as u64 - (self.head - self.tail)
        }

        /// Producer side: writes one record at head (wrapping) and advances head.
        pub fn push(&mut self, record: &[u8]) {
            let size = self.data.len();
            for (i, &b) in record.iter().enumerate() {
                let pos = (self.head as usize + i) % size;
                self.data[pos] = b;
            }
            self.head += record.len() as u64;
        }
    }

    impl RingMemory for VecRing {
        fn data_size(&self) -> usize {
            self.data.len()
        }
        fn load_head(&self) -> u64 {
            self.head
        }
        fn load_tail(&self) -> u64 {
            self.tail
        }
        fn store_tail(&mut self, tail: u64) {
            assert!(tail <= self.head, "tail moved past head");
            self.tail = tail;
        }
        fn bytes(&self, offset: usize, len: usize) -> &[u8] {
            // Translate to the absolute position within [tail, tail + size) and check < head.
            let size = self.data.len() as u64;
            let tail_off = self.tail % size;
            let rel = (offset as u64 + size - tail_off) % size;
            let abs_end = self.tail + rel + len as u64;
            assert!(
                abs_end <= self.head,
                "read at/past head: {abs_end} > {}",
                self.head
            );
            self.max_read_end.set(self.max_read_end.get().max(abs_end));
            &self.data[offset..offset + len]
        }
    }

    /// A deterministic generator (splitmix64), so failures reproduce from the seed.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn make_record(rng: &mut Rng, serial: u32, max_len: u64) -> Vec<u8> {
        let len = (1 + rng.below(max_len / 8)) * 8;
        let mut rec = Vec::with_capacity(len as usize);
        rec.extend_from_slice(&serial.to_ne_bytes()); // type field: serial number
        rec.extend_from_slice(&0u16.to_ne_bytes());
        rec.extend_from_slice(&(len as u16).to_ne_bytes());
        while rec.len() < len as usize {
            rec.push(rng.below(256) as u8);
        }
        rec
    }

    #[test]
    fn property_records_come_back_identical_in_order() {
        for seed in 0..200u64 {
            let mut rng = Rng(seed);
            let size = 1usize << (6 + rng.below(5)); // 64 .. 1024 bytes
            let mut ring = VecRing::new(size);
            // Start at a random absolute position so the u64 counters are not always small.
            let start = rng.below(1 << 20) * 8;
            ring.head = start;
            ring.tail = start;
            let mut expected = std::collections::VecDeque::new();
            let mut serial = 0u32;
            let mut split_seen = false;
            for _round in 0..60 {
                let writes = rng.below(6);
                for _ in 0..writes {
                    let rec = make_record(&mut rng, serial, (size as u64 / 2).min(256));
                    if rec.len() as u64 > ring.free() {
                        break;
                    }
                    ring.push(&rec);
                    expected.push_back(rec);
                    serial += 1;
                }
                let head_before = ring.head;
                let tail_before = ring.tail;
                let mut got = Vec::new();
                let stats = drain(&mut ring, &mut |raw| {
                    if matches!(raw, RawData::Split(..)) {
                        split_seen = true;
                    }
                    got.push(raw.to_vec());
                    Ok(())
                })
                .unwrap();
                assert!(!stats.corrupt, "seed {seed}");
                let consumed: u64 = got.iter().map(|r| r.len() as u64).sum();
                assert_eq!(
                    ring.tail - tail_before,
                    consumed,
                    "seed {seed}: tail advance"
                );
                assert_eq!(stats.bytes, consumed);
                assert_eq!(ring.tail, head_before, "seed {seed}: drained everything");
                assert!(ring.max_read_end.get() <= head_before);
                for rec in got {
                    assert_eq!(Some(rec), expected.pop_front(), "seed {seed}");
                }
            }
            assert!(expected.is_empty());
            if size <= 128 {
                assert!(
                    split_seen || serial < 4,
                    "seed {seed}: small rings must wrap records"
                );
            }
        }
    }

    #[test]
    fn partial_header_at_head_is_left_for_later() {
        let mut ring = VecRing::new(64);
        ring.push(&[1, 0, 0, 0, 0, 0, 16, 0, 9, 9, 9, 9, 9, 9, 9, 9]);
        // The producer has published only 4 bytes of a second record's header.
        ring.data[16..20].copy_from_slice(&[2, 0, 0, 0]);
        ring.head += 4;
        let mut n = 0;
        drain(&mut ring, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(ring.tail, 16);
    }

    #[test]
    fn zero_size_header_skips_to_head_instead_of_looping() {
        let mut ring = VecRing::new(64);
        ring.push(&[0u8; 24]);
        let stats = drain(&mut ring, &mut |_| Ok(())).unwrap();
        assert!(stats.corrupt);
        assert_eq!(stats.records, 0);
        assert_eq!(ring.tail, 24);
    }

    #[test]
    fn callback_error_still_advances_past_delivered_records() {
        let mut ring = VecRing::new(64);
        ring.push(&[1, 0, 0, 0, 0, 0, 8, 0]);
        ring.push(&[2, 0, 0, 0, 0, 0, 8, 0]);
        let err = drain(&mut ring, &mut |_| Err(io::Error::other("disk full"))).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(ring.tail, 8);
    }

    #[test]
    fn split_record_accessors() {
        let raw = RawData::Split(&[1, 2, 3], &[4, 5]);
        assert_eq!(raw.len(), 5);
        assert_eq!(raw.array::<3>(2), Some([3, 4, 5]));
        assert_eq!(raw.array::<3>(3), None);
        assert_eq!(raw.to_vec(), vec![1, 2, 3, 4, 5]);
    }
}
