//! [`Note`]: non-fatal facts about a file that a user may want to know (salvaged, unknown parts).

use crate::error::Error;
use crate::kinds::{RecordKind, feature_name};

/// A non-fatal problem or notable fact found while parsing. `Display` gives one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// The header's data size is 0: perf was killed before finishing; records were read to EOF.
    NotFinalized,
    /// Records of a type this crate does not know were skipped by size.
    UnknownRecordType {
        /// Record type.
        kind: u32,
        /// How many.
        count: u64,
    },
    /// An attr is larger than the newest layout this crate knows; the extra bytes are ignored.
    AttrExtraBytes {
        /// Attr index.
        attr_index: usize,
        /// Ignored bytes.
        bytes: usize,
    },
    /// An attr's `sample_type` has bits this crate cannot decode: its samples will be errors.
    UnsupportedSampleType {
        /// Attr index.
        attr_index: usize,
        /// Lowest unknown bit.
        bit: u32,
    },
    /// Attrs have different `sample_type`s without PERF_SAMPLE_IDENTIFIER: samples are assigned to attr 0.
    AmbiguousSampleIds,
    /// A feature bit this crate has no name for.
    UnknownFeature {
        /// Feature bit.
        bit: u32,
    },
    /// A feature section could not be decoded (the rest of the file is fine).
    FeatureError {
        /// Feature bit.
        bit: u32,
        /// What went wrong.
        error: Error,
    },
    /// The records were zstd-compressed and have been expanded in memory; event offsets refer to the
    /// decompressed stream.
    Compressed {
        /// COMPRESSED/COMPRESSED2 records.
        records: u64,
        /// Compressed payload bytes.
        compressed_bytes: u64,
        /// Size of the expanded record stream.
        decompressed_bytes: u64,
    },
    /// The zstd stream stops inside a compressed block (perf was killed while writing, or the
    /// file was cut): the records of that block are missing; those decoded before it are kept.
    /// A stream that stops between blocks of an unfinished frame (every `perf record -z` file)
    /// has lost nothing and gets no note.
    IncompleteCompressedStream,
    /// Decompressed data ended inside a record; those bytes were dropped.
    DanglingDecompressedBytes {
        /// How many bytes.
        bytes: usize,
    },
    /// The record stream ends with a partial record (file not finalized); it was dropped.
    TruncatedTail {
        /// Where the partial record starts.
        offset: u64,
        /// Bytes dropped.
        bytes: u64,
    },
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::NotFinalized => write!(
                f,
                "file not finalized (data.size 0): perf did not exit cleanly; reading records up to end of file, no feature sections"
            ),
            Note::UnknownRecordType { kind, count } => {
                write!(
                    f,
                    "skipped {count} record(s) of unknown type {}",
                    RecordKind(*kind)
                )
            }
            Note::AttrExtraBytes { attr_index, bytes } => write!(
                f,
                "attr {attr_index} has {bytes} byte(s) beyond the perf_event_attr layout kprof knows (ignored)"
            ),
            Note::UnsupportedSampleType { attr_index, bit } => write!(
                f,
                "attr {attr_index} uses sample_type bit {bit}, which kprof cannot decode; its samples will fail"
            ),
            Note::AmbiguousSampleIds => write!(
                f,
                "attrs have different sample_type without PERF_SAMPLE_IDENTIFIER; samples are attributed to the first event"
            ),
            Note::UnknownFeature { bit } => write!(f, "unknown feature bit {bit} (skipped)"),
            Note::FeatureError { bit, error } => {
                write!(
                    f,
                    "feature {} ({bit}) unreadable: {error}",
                    feature_name(*bit)
                )
            }
            Note::Compressed {
                records,
                compressed_bytes,
                decompressed_bytes,
            } => write!(
                f,
                "zstd-compressed data: {records} record(s), {compressed_bytes} bytes expanded to {decompressed_bytes} bytes (offsets refer to the decompressed stream)"
            ),
            Note::IncompleteCompressedStream => write!(
                f,
                "compressed data stops inside a zstd block: the records in the rest of that block are missing"
            ),
            Note::DanglingDecompressedBytes { bytes } => write!(
                f,
                "compressed stream ends inside a record: {bytes} decompressed byte(s) dropped"
            ),
            Note::TruncatedTail { offset, bytes } => write!(
                f,
                "partial record at offset {offset:#x} ({bytes} bytes to end of file) dropped"
            ),
        }
    }
}
