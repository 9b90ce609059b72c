//! [`PerfFile`]: the parsed file (its parse info, features, notes, streams and record index),
//! the order of the parse steps, and what it tells about itself.

use std::collections::BTreeMap;

use crate::attr::EventAttr;
use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::features::Features;
use crate::kinds::{FILE_HEADER_SIZE, PIPE_HEADER_SIZE, record as record_kind, record_type_name};
use crate::notes::Note;
use crate::parse_info::RecordParseInfo;
use crate::record::Record;
use crate::tracepoint::{EventFormat, TracingData};

/// `PERF_TYPE_TRACEPOINT`: an attr whose `config` is a tracepoint id.
pub(super) const TRACEPOINT_TYPE: u32 = 2;

/// How often [`PerfFile::parse_scanning`] reports its progress, in bytes.
pub const SCAN_REPORT_BYTES: usize = 1 << 20;

/// Knobs for [`PerfFile::parse_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Hard cap on the decompressed record stream in bytes. Default: 4 GiB. Independently of this,
    /// the output may not exceed 16 MiB + 4096 × the compressed bytes seen.
    pub max_decompressed_bytes: u64,
    /// The bytes of each piece of the pass over a file's records, when the pool has threads
    /// to spare: a file of two pieces or more is walked in pieces, helper threads walking some
    /// of them meanwhile (the index is the same). Default: 2 MiB; `usize::MAX` walks every
    /// file in one.
    pub scan_piece_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_decompressed_bytes: 4 << 30,
            scan_piece_bytes: 2 << 20,
        }
    }
}

/// A parsed perf.data file. Records are decoded lazily and borrow from the input (or from the
/// decompressed buffer this struct owns).
#[derive(Debug, Clone)]
pub struct PerfFile<'a> {
    pub(super) pipe: bool,
    /// The attrs and byte order: how to decode each record.
    pub(super) info: RecordParseInfo,
    pub(super) features: Features,
    pub(super) notes: Vec<Note>,
    /// The record stream when not compressed.
    pub(super) data: &'a [u8],
    /// File offset of `data[0]`.
    pub(super) data_base: u64,
    pub(super) decompressed: Option<Vec<u8>>,
    /// The time and position of each record of the (decompressed) stream, and whether it is a
    /// sample ([`IndexEntry`]), found by the one pass over record headers that parsing makes,
    /// then sorted: a record without a time has the time of the one before it in the stream.
    /// Time order needs no second pass.
    pub(super) record_index: Vec<IndexEntry>,
    /// Where that pass met a record header it could not split, if it did.
    pub(super) bad_record_at: Option<usize>,
    /// The event formats of the recorded tracepoints (TRACING_DATA), when the recording has them.
    pub(super) tracing: Option<TracingData>,
}

/// A record of the index: the time records are ordered by, and where the record starts in
/// the stream, with whether it is a SAMPLE in the position's low bit. Sixteen bytes, as the
/// time and position alone: the index of a big file has millions of entries. Entries order
/// by time, then position, and no two have one position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct IndexEntry {
    /// The record's time, or that of the record before it in the stream.
    pub(super) time: u64,
    /// The position, shifted left one bit over whether the record is a SAMPLE.
    position_and_sample: usize,
}

impl IndexEntry {
    /// The entry of a record of type `kind` at `pos` (a position in a slice, below
    /// `isize::MAX`: the shift loses nothing).
    pub(super) fn new(time: u64, pos: usize, kind: u32) -> Self {
        IndexEntry {
            time,
            position_and_sample: pos << 1 | usize::from(kind == record_kind::SAMPLE),
        }
    }

    /// Where the record starts in the stream.
    pub(super) fn pos(self) -> usize {
        self.position_and_sample >> 1
    }

    /// Whether the record is a SAMPLE.
    pub(super) fn is_sample(self) -> bool {
        self.position_and_sample & 1 == 1
    }
}

/// Counts over all records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Records per type number.
    pub by_kind: BTreeMap<u32, u64>,
    /// SAMPLE records.
    pub samples: u64,
    /// Records of types this crate does not know (a subset of `by_kind`).
    pub unknown_kinds: BTreeMap<u32, u64>,
    /// LOST records.
    pub lost_records: u64,
    /// Sum of LOST `lost` counts (records the kernel dropped), at most `u64::MAX`.
    pub lost_events: u64,
    /// Sum of LOST_SAMPLES counts, at most `u64::MAX`.
    pub lost_samples: u64,
    /// The error that stopped the pass, if any.
    pub error: Option<Error>,
}

impl<'a> PerfFile<'a> {
    /// Parses a whole perf.data (file or pipe format, either byte order, compressed or not).
    pub fn parse(bytes: &'a [u8]) -> Result<PerfFile<'a>> {
        Self::parse_with(bytes, &ParseOptions::default())
    }

    /// [`parse`](Self::parse) with explicit limits.
    pub fn parse_with(bytes: &'a [u8], options: &ParseOptions) -> Result<PerfFile<'a>> {
        Self::parse_scanning(bytes, options, &mut |_| {})
    }

    /// [`parse_with`](Self::parse_with), telling `scanned` how far (a file offset) the pass over
    /// the record headers has got, about every [`SCAN_REPORT_BYTES`]: a caller that mapped
    /// the file can drop what lies behind it from memory.
    pub fn parse_scanning(
        bytes: &'a [u8],
        options: &ParseOptions,
        scanned: &mut dyn FnMut(u64),
    ) -> Result<PerfFile<'a>> {
        let mut head = Cursor::new(bytes, 0, Endian::Little);
        let magic: [u8; 8] = head
            .bytes(8, "magic")?
            .try_into()
            .map_err(|_| Error::Truncated {
                what: "magic",
                offset: 0,
                needed: 8,
            })?;
        let endian = match &magic {
            b"PERFILE2" => Endian::Little,
            b"2ELIFREP" => Endian::Big,
            _ => return Err(Error::BadMagic(magic)),
        };
        let mut head = Cursor::new(bytes, 0, endian);
        head.skip(8, "magic")?;
        let header_size = head.u64("header size")?;
        let mut file = PerfFile {
            pipe: header_size == PIPE_HEADER_SIZE,
            info: RecordParseInfo::new(Vec::new(), endian),
            features: Features::default(),
            notes: Vec::new(),
            data: &[],
            data_base: 0,
            decompressed: None,
            record_index: Vec::new(),
            bad_record_at: None,
            tracing: None,
        };
        if file.pipe {
            file.data = bytes.get(PIPE_HEADER_SIZE as usize..).unwrap_or(&[]);
            file.data_base = PIPE_HEADER_SIZE;
        } else if header_size >= FILE_HEADER_SIZE && header_size <= bytes.len() as u64 {
            file.parse_file_header(bytes)?;
        } else if header_size >= FILE_HEADER_SIZE {
            return Err(Error::Truncated {
                what: "file header",
                offset: 0,
                needed: usize::try_from(header_size).unwrap_or(usize::MAX),
            });
        } else {
            return Err(Error::BadHeaderSize { size: header_size });
        }
        // A file's attrs are in its header: the header pass can read each record's time.
        // A pipe's come with the stream, so its times are read after it.
        if !file.pipe {
            file.info.relayout();
        }
        let attrs_in_header = file.info.attrs().len();
        let scan = file.scan_stream(scanned, options.scan_piece_bytes)?;
        let unknown = if scan.compressed {
            file.expand_compressed(options)?;
            file.scan_decompressed()
        } else {
            scan.unknown
        };
        let times_known =
            !file.pipe && !scan.compressed && file.info.attrs().len() == attrs_in_header;
        file.notes.extend(
            unknown
                .into_iter()
                .map(|(kind, count)| Note::UnknownRecordType { kind, count }),
        );
        file.finish_attrs();
        if !times_known {
            file.fill_record_times();
        }
        // Each entry's offset is its own, so the order is one whatever the sort. Written in
        // rounds of per-CPU runs, the index is sorted but for local disorder (issue #13).
        // Sorted in cache-sized blocks on the pool, then seam by seam: in a third of the time
        // of one merge sort over all of it on a machine-wide recording.
        super::index_sort::sort_nearly_sorted(&mut file.record_index);
        Ok(file)
    }

    /// The record stream (plain records) and the offset of its first byte.
    pub(super) fn stream(&self) -> (&[u8], u64) {
        match &self.decompressed {
            Some(buf) => (buf.as_slice(), 0),
            None => (self.data, self.data_base),
        }
    }

    /// The bytes of the record at `offset` (an [`Event::offset`](crate::Event::offset)), its
    /// header included; `None` when no whole record starts there.
    pub fn record_bytes(&self, offset: u64) -> Option<&[u8]> {
        let (data, base) = self.stream();
        let start = usize::try_from(offset.checked_sub(base)?).ok()?;
        let size = match data.get(start + 6..start + 8)? {
            &[a, b] => usize::from(self.endian().u16([a, b])),
            _ => return None,
        };
        data.get(start..start.checked_add(size)?)
    }

    /// The recorded tracepoints' formats (the TRACING_DATA feature section, or a pipe's
    /// HEADER_TRACING_DATA record), to name events and decode their raw data.
    pub fn tracing_data(&self) -> Option<&TracingData> {
        self.tracing.as_ref()
    }

    /// The format of tracepoint attr `attr_index`, when it is one and the recording describes it.
    pub fn tracepoint_format(&self, attr_index: usize) -> Option<&EventFormat> {
        let attr = self.info.attrs().get(attr_index)?;
        if attr.kind != TRACEPOINT_TYPE {
            return None;
        }
        self.tracing.as_ref()?.event(attr.config)
    }

    /// Byte order of the file.
    pub fn endian(&self) -> Endian {
        self.info.endian()
    }

    /// True for pipe format (`perf record -o -`).
    pub fn is_pipe(&self) -> bool {
        self.pipe
    }

    /// The events recorded, each with its sample ids and name.
    pub fn attrs(&self) -> &[EventAttr] {
        self.info.attrs()
    }

    /// How this file's records decode: its attrs and byte order.
    pub fn parse_info(&self) -> &RecordParseInfo {
        &self.info
    }

    /// What the feature sections (or HEADER_FEATURE records) said.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Non-fatal problems and notable facts.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// True when records come from decompressed data, so [`Event::offset`](crate::Event::offset) is an offset into the
    /// decompressed stream rather than the file.
    pub fn offsets_are_decompressed(&self) -> bool {
        self.decompressed.is_some()
    }

    /// Counts per record type and lost totals (one pass over all records).
    pub fn stats(&self) -> RecordStats {
        let mut stats = RecordStats::default();
        for event in self.records() {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    stats.error = Some(e);
                    break;
                }
            };
            let kind = event.record.kind();
            *stats.by_kind.entry(kind).or_default() += 1;
            if record_type_name(kind) == "UNKNOWN" {
                *stats.unknown_kinds.entry(kind).or_default() += 1;
            }
            match event.record {
                Record::Sample(_) => stats.samples += 1,
                // Saturating: a corrupt count must not wrap the total (nor panic).
                // See: issue #12 done-means 5 (found by the perf_file fuzz target)
                Record::Lost(l) => {
                    stats.lost_records += 1;
                    stats.lost_events = stats.lost_events.saturating_add(l.lost);
                }
                Record::LostSamples(l) => {
                    stats.lost_samples = stats.lost_samples.saturating_add(l.lost);
                }
                _ => {}
            }
        }
        stats
    }
}
