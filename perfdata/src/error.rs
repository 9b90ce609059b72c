//! The crate's error type: every variant says where in the file (or decompressed stream) it happened.

use crate::kinds::RecordKind;

/// Everything that can go wrong while reading perf.data bytes. `Display` is one line and names the
/// hex offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than a structure needs.
    #[error("truncated {what}: needed {needed} bytes at offset {offset:#x}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// How many bytes were needed.
        needed: usize,
    },
    /// The first 8 bytes are neither "PERFILE2" nor "2ELIFREP".
    #[error("not a perf.data file: bad magic {:?} at offset 0x0", String::from_utf8_lossy(.0))]
    BadMagic([u8; 8]),
    /// The header size field is neither 16 (pipe) nor at least 104 (file).
    #[error("bad perf.data header size {size} at offset 0x8")]
    BadHeaderSize {
        /// The claimed header size.
        size: u64,
    },
    /// A header section (attrs, data, ids) points outside the file.
    #[error(
        "{what} section [{start:#x}, +{size:#x}) lies beyond end of file ({file_len:#x}) (header at offset {offset:#x})"
    )]
    SectionOutOfBounds {
        /// Which section.
        what: &'static str,
        /// Offset of the section descriptor.
        offset: u64,
        /// Claimed start.
        start: u64,
        /// Claimed size.
        size: u64,
        /// Actual file length.
        file_len: u64,
    },
    /// A record header with a size smaller than 8 or reaching beyond the end of the data.
    #[error("bad record size {size} for {} at offset {offset:#x}", RecordKind(*.kind))]
    BadRecordSize {
        /// Where the record starts.
        offset: u64,
        /// Record type.
        kind: u32,
        /// Claimed size.
        size: u64,
    },
    /// The attr size in the header (or a HEADER_ATTR record) is unusable.
    #[error("bad perf_event_attr size {size} at offset {offset:#x}")]
    BadAttrSize {
        /// Where the attr (or header field) is.
        offset: u64,
        /// The claimed size.
        size: u64,
    },
    /// A sample of an attr whose `sample_type` has a bit this crate does not know.
    #[error("sample at offset {offset:#x}: unsupported sample_type bit {bit} (1 << {bit})")]
    UnsupportedSampleType {
        /// Where the sample record starts.
        offset: u64,
        /// The lowest unknown bit number.
        bit: u32,
    },
    /// zstd failed on a COMPRESSED / COMPRESSED2 record.
    #[error("zstd decompression failed for record at offset {offset:#x}: {message}")]
    Decompress {
        /// Where the compressed record starts.
        offset: u64,
        /// zstd's message.
        message: String,
    },
    /// Decompressed data exceeds the configured cap.
    #[error(
        "decompressed data exceeds {limit} bytes (record at offset {offset:#x}); refusing to grow further"
    )]
    TooLarge {
        /// Where the compressed record that crossed the cap starts.
        offset: u64,
        /// The cap in bytes.
        limit: u64,
    },
    /// A tracing-data blob (TRACING_DATA) that is not laid out as perf writes it.
    #[error("bad tracing data: {what} at offset {offset:#x}")]
    BadTracingData {
        /// What was wrong.
        what: &'static str,
        /// Offset within the blob.
        offset: u64,
    },
    /// A tracepoint `format` text that does not describe an event.
    #[error("bad tracepoint format: {what} at offset {offset:#x}")]
    BadEventFormat {
        /// What was wrong.
        what: &'static str,
        /// Offset within the format text (within the blob, for a format read from one).
        offset: u64,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The file (or decompressed stream) offset the error refers to.
    pub fn offset(&self) -> u64 {
        match *self {
            Error::Truncated { offset, .. }
            | Error::SectionOutOfBounds { offset, .. }
            | Error::BadRecordSize { offset, .. }
            | Error::BadAttrSize { offset, .. }
            | Error::UnsupportedSampleType { offset, .. }
            | Error::Decompress { offset, .. }
            | Error::TooLarge { offset, .. }
            | Error::BadTracingData { offset, .. }
            | Error::BadEventFormat { offset, .. } => offset,
            Error::BadMagic(_) => 0,
            Error::BadHeaderSize { .. } => 8,
        }
    }

    /// The error of a part that starts at `base` of a larger whole (a format text in a
    /// tracing-data blob, a blob in a file), with its offset made relative to that whole.
    pub(crate) fn moved_by(mut self, base: u64) -> Error {
        match &mut self {
            Error::Truncated { offset, .. }
            | Error::BadTracingData { offset, .. }
            | Error::BadEventFormat { offset, .. } => *offset = offset.saturating_add(base),
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_hex_offset() {
        let e = Error::BadRecordSize {
            offset: 0x1a2b,
            kind: 10,
            size: 4,
        };
        let s = e.to_string();
        assert_eq!(s, "bad record size 4 for MMAP2 (10) at offset 0x1a2b");
        let t = Error::Truncated {
            what: "sample ip",
            offset: 0x10,
            needed: 8,
        }
        .to_string();
        assert!(t.contains("at offset 0x10") && !t.contains('\n'), "{t}");
    }
}
