//! DWARF section bytes on demand: a plain section is a view of the mapped file; a compressed one
//! (ELF `SHF_COMPRESSED` zlib or zstd, or GNU `.zdebug_*`) is inflated front to back into a
//! [`GrowingBytes`], only as far as lookups have needed so far.
//!
//! Distribution debug files (`-dbgsym`, `-debuginfo`) compress every section, and inflating
//! libc's in full costs more than symbolizing the rest of a typical profile. A stream cannot
//! be entered in the middle, but it can be stopped early: the units an address needs usually
//! lie in the first part of `.debug_info`, and `.debug_loclists` is never needed at all.

use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex, Once, PoisonError};

use object::{CompressionFormat, Object, ObjectSection};

use crate::mapped::{GrowingBytes, MAX_MAPPED_SIZE, SharedBytes};
use crate::section_cache::{CachedSection, SectionCache};

/// How many more bytes than asked for an inflating step produces, so that nearby lookups (the
/// next unit, the rest of an abbreviation table) rarely need a step of their own.
const STEP: usize = 64 << 10;

/// The most bytes inflated while holding a section's lock.
const CHUNK: usize = 256 << 10;

/// One section's bytes: all there, or inflated on demand.
#[derive(Debug)]
pub(crate) enum SectionBytes {
    /// Uncompressed: the bytes of the mapped file.
    Plain(SharedBytes),
    /// Compressed: inflated up to the furthest offset asked for.
    Inflating(Inflating),
}

/// A compressed section and how far it has been inflated.
pub(crate) struct Inflating {
    out: Arc<GrowingBytes>,
    decoder: Mutex<Decoder>,
    /// Where the whole inflated section is to be kept for later runs: when set, the first
    /// need inflates all of it, and the copy is written once it is complete.
    keep: Option<(CachedSection, Once)>,
}

impl std::fmt::Debug for Inflating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Inflating({:?})", self.out)
    }
}

/// A streaming decoder positioned at `out.filled()` bytes of output.
enum Decoder {
    Zlib {
        state: Box<flate2::Decompress>,
        input: SharedBytes,
    },
    Zstd(
        Box<
            ruzstd::decoding::StreamingDecoder<Cursor<SharedBytes>, ruzstd::decoding::FrameDecoder>,
        >,
    ),
    /// The data was corrupt or ended early: nothing more will be inflated.
    Failed,
}

impl SectionBytes {
    /// The section called `name` (such as `.debug_info`) of the object `file` parsed from
    /// `bytes`; `None` when it is absent, or compressed in a way we cannot read.
    ///
    /// With a `cache` (and the file's build-id), a compressed section is read from its inflated
    /// copy when one is stored, and otherwise inflated whole on first need and stored.
    pub(crate) fn find(
        file: &object::File<'_>,
        bytes: &SharedBytes,
        name: &str,
        cache: Option<(&SectionCache, &[u8])>,
    ) -> Option<Self> {
        let section = file.section_by_name(name)?;
        let compressed = section.compressed_data().ok()?;
        let data = bytes.subslice_of(compressed.data)?;
        let size = usize::try_from(compressed.uncompressed_size)
            .ok()
            .filter(|&size| size as u64 <= MAX_MAPPED_SIZE)?;
        let keep = match (compressed.format, cache) {
            (CompressionFormat::None, _) | (_, None) => None,
            (_, Some((cache, build_id))) => cache.section(build_id, name, data.len(), size),
        };
        if let Some(copy) = keep.as_ref().and_then(CachedSection::open) {
            return Some(Self::Plain(copy));
        }
        let decoder = match compressed.format {
            CompressionFormat::None => return Some(Self::Plain(data)),
            CompressionFormat::Zlib => Decoder::Zlib {
                state: Box::new(flate2::Decompress::new(true)),
                input: data,
            },
            CompressionFormat::Zstandard => Decoder::Zstd(Box::new(
                ruzstd::decoding::StreamingDecoder::new(Cursor::new(data)).ok()?,
            )),
            _ => return None,
        };
        Some(Self::Inflating(Inflating {
            out: Arc::new(GrowingBytes::new(size).ok()?),
            decoder: Mutex::new(decoder),
            keep: keep.map(|copy| (copy, Once::new())),
        }))
    }

    /// The section's full (uncompressed) length.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Plain(bytes) => bytes.len(),
            Self::Inflating(inflating) => inflating.out.capacity(),
        }
    }

    /// Makes bytes `[0, end)` available (`end` is capped at the section's length); false when
    /// the compressed data is corrupt before that point.
    pub(crate) fn ensure(&self, end: usize) -> bool {
        match self {
            Self::Plain(_) => true,
            Self::Inflating(inflating) => inflating.ensure(end.min(inflating.out.capacity())),
        }
    }

    /// The bytes available now: all of a plain section, the inflated prefix of another.
    pub(crate) fn available(&self) -> SharedBytes {
        match self {
            Self::Plain(bytes) => bytes.clone(),
            Self::Inflating(inflating) => SharedBytes::new(Arc::clone(&inflating.out) as _),
        }
    }

    /// All of the section, inflating the rest of it if needed.
    pub(crate) fn whole(&self) -> Option<SharedBytes> {
        self.ensure(self.len()).then(|| self.available())
    }
}

impl Inflating {
    fn ensure(&self, needed: usize) -> bool {
        let (end, target) = if self.keep.is_some() {
            (self.out.capacity(), self.out.capacity())
        } else {
            let target = needed.saturating_add(STEP).min(self.out.capacity());
            (needed, target.max(needed))
        };
        // One chunk per turn of the lock: a lookup that needs an earlier part than another
        // goes on as soon as that part is there, while the other inflates further.
        while self.out.filled() < end {
            let mut decoder = self.decoder.lock().unwrap_or_else(PoisonError::into_inner);
            let filled = self.out.filled();
            if filled >= end {
                break;
            }
            let want = (target - filled).min(CHUNK);
            let step = self.out.append_with(want, |buf| decoder.inflate_into(buf));
            if !matches!(step, Ok(n) if n > 0) {
                *decoder = Decoder::Failed;
                // A stream that is corrupt further on still serves what came before.
                return self.out.filled() >= needed;
            }
        }
        if let Some((copy, stored)) = &self.keep {
            if self.out.filled() == self.out.capacity() {
                stored.call_once(|| copy.store(&self.out));
            }
        }
        true
    }
}

impl Decoder {
    /// Inflates into `buf`, returning how many bytes were written (0: no progress possible).
    fn inflate_into(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        match self {
            Self::Zlib { state, input } => {
                let mut written = 0;
                while written < buf.len() {
                    let consumed = usize::try_from(state.total_in()).map_err(|_| ())?;
                    let rest = input.get(consumed..).ok_or(())?;
                    let before_out = state.total_out();
                    let before_in = state.total_in();
                    let status = state
                        .decompress(rest, &mut buf[written..], flate2::FlushDecompress::None)
                        .map_err(|_| ())?;
                    let produced =
                        usize::try_from(state.total_out() - before_out).map_err(|_| ())?;
                    written += produced;
                    if status == flate2::Status::StreamEnd
                        || (produced == 0 && state.total_in() == before_in)
                    {
                        break;
                    }
                }
                Ok(written)
            }
            Self::Zstd(decoder) => {
                let mut written = 0;
                while written < buf.len() {
                    match decoder.read(&mut buf[written..]) {
                        Ok(0) => break,
                        Ok(n) => written += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return Err(()),
                    }
                }
                Ok(written)
            }
            Self::Failed => Err(()),
        }
    }
}

/// The object file in `bytes` and its byte order, for [`SectionBytes::find`].
pub(crate) fn parse_object(
    bytes: &SharedBytes,
) -> Option<(object::File<'_>, gimli::RunTimeEndian)> {
    let file = object::File::parse(&**bytes).ok()?;
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    Some((file, endian))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn inflating(compressed: Vec<u8>, size: usize) -> SectionBytes {
        SectionBytes::Inflating(Inflating {
            out: Arc::new(GrowingBytes::new(size).unwrap()),
            decoder: Mutex::new(Decoder::Zlib {
                state: Box::new(flate2::Decompress::new(true)),
                input: SharedBytes::from_vec(compressed),
            }),
            keep: None,
        })
    }

    #[test]
    fn inflates_only_as_far_as_asked() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let section = inflating(zlib(&data), data.len());
        assert_eq!(section.len(), data.len());
        assert!(section.ensure(1000));
        let early = section.available();
        assert!(early.len() >= 1000 && early.len() < data.len());
        assert_eq!(&*early, &data[..early.len()]);
        // A view taken earlier stays valid while the section grows.
        assert_eq!(&section.whole().unwrap()[..], &data[..]);
        assert_eq!(&*early, &data[..early.len()]);
        assert!(section.ensure(usize::MAX));
    }

    #[test]
    fn corrupt_or_short_streams_fail_without_panicking() {
        let data = vec![42u8; 100_000];
        let mut compressed = zlib(&data);
        compressed.truncate(compressed.len() / 2);
        let short = inflating(compressed, data.len());
        assert!(short.whole().is_none());
        assert!(!short.ensure(data.len()));
        // The header claims more than the stream holds.
        let long = inflating(zlib(&data), data.len() + 1);
        assert!(long.whole().is_none());
        let garbage = inflating(vec![0x78, 0x9c, 0xff, 0xff, 0xff], 10);
        assert!(!garbage.ensure(1));
    }
}
