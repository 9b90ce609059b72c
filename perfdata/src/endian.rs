//! Byte order handling: [`Endian`], the bounds-checked [`Cursor`] every parser reads through, and
//! [`U64Slice`], a zero-copy view of an array of `u64` in the file's byte order.

use crate::error::{Error, Result};

/// Byte order of a perf.data file (decided by its magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// "PERFILE2" on disk: written by a little-endian machine.
    Little,
    /// "2ELIFREP" on disk: written by a big-endian machine.
    Big,
}

impl Endian {
    /// The byte order of the machine this runs on: that of records read from the kernel's ring
    /// buffers.
    #[cfg(target_endian = "little")]
    pub const NATIVE: Endian = Endian::Little;
    /// The byte order of the machine this runs on: that of records read from the kernel's ring
    /// buffers.
    #[cfg(target_endian = "big")]
    pub const NATIVE: Endian = Endian::Big;

    /// Decodes a `u16` from two bytes.
    #[inline]
    pub fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    /// Decodes a `u32` from four bytes.
    #[inline]
    pub fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    /// Decodes a `u64` from eight bytes.
    #[inline]
    pub fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }
    /// Encodes a `u16`.
    pub fn u16_bytes(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
    /// Encodes a `u32`.
    pub fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
    /// Encodes a `u64`.
    pub fn u64_bytes(self, v: u64) -> [u8; 8] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

/// A bounds-checked forward reader over a byte slice. `base` is the file (or stream) offset of
/// `data[0]`, so errors can say where they happened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    endian: Endian,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8], base: u64, endian: Endian) -> Self {
        Cursor {
            data,
            pos: 0,
            base,
            endian,
        }
    }

    /// Offset (in the file or stream) of the next byte to read.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(len);
        match end.and_then(|end| self.data.get(self.pos..end)) {
            Some(s) => {
                self.pos += len;
                Ok(s)
            }
            None => Err(Error::Truncated {
                what,
                offset: self.offset(),
                needed: len,
            }),
        }
    }

    /// Reads `len` bytes where `len` comes from the file as a u64.
    pub(crate) fn bytes_u64(&mut self, len: u64, what: &'static str) -> Result<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| Error::Truncated {
            what,
            offset: self.offset(),
            needed: usize::MAX,
        })?;
        self.bytes(len, what)
    }

    pub(crate) fn skip(&mut self, len: usize, what: &'static str) -> Result<()> {
        self.bytes(len, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(self.endian.u16(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(self.endian.u32(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(self.endian.u64(self.array(what)?))
    }

    /// Reads `count` u64 values as a zero-copy slice; the count is checked against the remaining
    /// bytes before anything is sliced.
    pub(crate) fn u64_slice(&mut self, count: u64, what: &'static str) -> Result<U64Slice<'a>> {
        let needed = count
            .checked_mul(8)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(Error::Truncated {
                what,
                offset: self.offset(),
                needed: usize::MAX,
            })?;
        let bytes = self.bytes(needed, what)?;
        Ok(U64Slice::new(bytes, self.endian))
    }
}

/// A zero-copy array of `u64` values stored in the file's byte order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct U64Slice<'a> {
    bytes: &'a [u8],
    endian: Endian,
}

impl<'a> U64Slice<'a> {
    /// Wraps `bytes` (a trailing partial value is ignored).
    pub fn new(bytes: &'a [u8], endian: Endian) -> Self {
        let whole = bytes.len() / 8 * 8;
        U64Slice {
            bytes: bytes.get(..whole).unwrap_or(&[]),
            endian,
        }
    }
    /// An empty slice.
    pub fn empty() -> Self {
        U64Slice {
            bytes: &[],
            endian: Endian::Little,
        }
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        self.bytes.len() / 8
    }
    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// The value at `index`, byte-swapped as needed.
    pub fn get(&self, index: usize) -> Option<u64> {
        let start = index.checked_mul(8)?;
        let b = self.bytes.get(start..start.checked_add(8)?)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(self.endian.u64(a))
    }
    /// Iterates the values in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = u64> + ExactSizeIterator + 'a {
        let endian = self.endian;
        self.bytes.chunks_exact(8).map(move |c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            endian.u64(a)
        })
    }
    /// The underlying bytes (file byte order).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The byte order of the values.
    pub fn endian(&self) -> Endian {
        self.endian
    }
}

impl std::fmt::Debug for U64Slice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reports_truncation_offset() {
        let data = [1u8, 0, 0, 0, 2];
        let mut c = Cursor::new(&data, 0x100, Endian::Little);
        assert_eq!(c.u32("a").unwrap(), 1);
        let err = c.u32("b").unwrap_err();
        assert_eq!(
            err,
            Error::Truncated {
                what: "b",
                offset: 0x104,
                needed: 4
            }
        );
    }

    #[test]
    fn u64_slice_swaps_big_endian() {
        let data = [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3];
        let s = U64Slice::new(&data, Endian::Big);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(0), Some(0x102));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0x102, 3]);
        assert_eq!(s.get(2), None);
    }

    #[test]
    fn huge_count_is_rejected_before_slicing() {
        let data = [0u8; 16];
        let mut c = Cursor::new(&data, 0, Endian::Little);
        assert!(c.u64_slice(u64::MAX, "x").is_err());
        assert!(c.u64_slice(3, "x").is_err());
        assert_eq!(c.u64_slice(2, "x").unwrap().len(), 2);
    }
}
