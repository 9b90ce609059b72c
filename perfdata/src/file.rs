//! [`PerfFile`]: the whole-file reader. Parses the file or pipe header, attrs and features, expands
//! compressed records, then hands out records in file order ([`Records`]) or time order
//! ([`SortedRecords`]).

use std::collections::BTreeMap;

use crate::attr::{ATTR_SIZE_VER0, EventAttr};
use crate::compress::{expand, trailing_payload};
use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::features::{Features, parse_build_id_body};
use crate::kinds::{record as rk, record_type_name, sample as st};
use crate::notes::Note;
use crate::record::{Event, Record, has_sample_id_trailer, parse_other, until_nul};
use crate::sample::{
    SampleHead, SampleId, check_sample_type, parse_sample, parse_sample_head, parse_sample_id,
    sample_id_size,
};
use crate::tracepoint::{EventFormat, TracingData};

/// `PERF_TYPE_TRACEPOINT`: an attr whose `config` is a tracepoint id.
const TRACEPOINT_TYPE: u32 = 2;

/// Size of the file-mode header (`struct perf_file_header`).
pub const FILE_HEADER_SIZE: u64 = 104;
/// Size of the pipe-mode header (`struct perf_pipe_file_header`).
pub const PIPE_HEADER_SIZE: u64 = 16;

/// How often [`PerfFile::parse_scanning`] reports its progress, in bytes.
pub const SCAN_REPORT_BYTES: usize = 1 << 20;

/// Knobs for [`PerfFile::parse_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Hard cap on the decompressed record stream in bytes. Default: 4 GiB. Independently of this,
    /// the output may not exceed 16 MiB + 4096 × the compressed bytes seen.
    pub max_decompressed_bytes: u64,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_decompressed_bytes: 4 << 30,
        }
    }
}

/// How samples and `sample_id` trailers name their attr.
#[derive(Debug, Clone, Default)]
struct IdLayout {
    /// Byte offset of the id within a SAMPLE body.
    sample_id_pos: Option<usize>,
    /// Distance of the id from the end of a trailer-bearing body.
    trailer_id_from_end: Option<usize>,
    /// All attrs share one `sample_type`, so any attr describes a trailer.
    uniform: bool,
    /// Sorted `(id, attr index)`.
    ids: Vec<(u64, usize)>,
}

/// A parsed perf.data file. Records are decoded lazily and borrow from the input (or from the
/// decompressed buffer this struct owns).
#[derive(Debug, Clone)]
pub struct PerfFile<'a> {
    endian: Endian,
    pipe: bool,
    attrs: Vec<EventAttr>,
    features: Features,
    notes: Vec<Note>,
    /// The record stream when not compressed.
    data: &'a [u8],
    /// File offset of `data[0]`.
    data_base: u64,
    decompressed: Option<Vec<u8>>,
    layout: IdLayout,
    /// `(time, position)` of each record of the (decompressed) stream, found by the one pass
    /// over record headers that parsing makes, then sorted: a record without a time has the
    /// time of the one before it in the stream. Time order needs no second pass.
    record_index: Vec<(u64, usize)>,
    /// Where that pass met a record header it could not split, if it did.
    bad_record_at: Option<usize>,
    /// The event formats of the recorded tracepoints (TRACING_DATA), when the recording has them.
    tracing: Option<TracingData>,
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
    /// Sum of LOST `lost` counts (records the kernel dropped).
    pub lost_events: u64,
    /// Sum of LOST_SAMPLES counts.
    pub lost_samples: u64,
    /// The error that stopped the pass, if any.
    pub error: Option<Error>,
}

fn read_section(bytes: &[u8], at: u64, what: &'static str, endian: Endian) -> Result<(u64, u64)> {
    let mut c = Cursor::new(bytes.get(at as usize..).unwrap_or(&[]), at, endian);
    let offset = c.u64(what)?;
    let size = c.u64(what)?;
    match offset.checked_add(size) {
        Some(end) if end <= bytes.len() as u64 => Ok((offset, size)),
        _ => Err(Error::SectionOutOfBounds {
            what,
            offset: at,
            start: offset,
            size,
            file_len: bytes.len() as u64,
        }),
    }
}

fn slice_of(bytes: &[u8], offset: u64, size: u64) -> &[u8] {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = usize::try_from(offset.saturating_add(size)).unwrap_or(usize::MAX);
    bytes.get(start..end).unwrap_or(&[])
}

/// What [`PerfFile::scan_stream`] learned.
#[derive(Default)]
struct Scan {
    compressed: bool,
    unknown: BTreeMap<u32, u64>,
}

/// A record header split off a stream.
#[derive(Debug, Clone, Copy)]
struct RawRecord<'a> {
    kind: u32,
    misc: u16,
    body: &'a [u8],
    /// Header size plus any trailing payload.
    span: usize,
}

/// Loads a byte where the records after the one at `pos` probably start, if they are as long as
/// it: walking record headers is a chain of dependent loads, one cache (and TLB) miss each in a
/// large file, and these independent loads let the misses overlap. A wrong guess costs a load.
/// (A load rather than a prefetch instruction: this crate has no `unsafe`.)
fn touch_ahead(data: &[u8], pos: usize, span: usize) {
    for ahead in [2, 4] {
        if let Some(at) = span.checked_mul(ahead).and_then(|d| d.checked_add(pos)) {
            std::hint::black_box(data.get(at).copied());
        }
    }
}

/// A record split off the stream but not decoded yet: small and `Copy`, so it can wait in a
/// batch or go to another thread, and be decoded there with [`PerfFile::decode`].
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    offset: u64,
    raw: RawRecord<'a>,
}

impl<'a> RecordRef<'a> {
    /// The record type (`PERF_RECORD_*`).
    pub fn kind(&self) -> u32 {
        self.raw.kind
    }

    /// Byte offset of the record (see [`Event::offset`]).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The record's body: the bytes after its 8-byte header.
    pub fn body(&self) -> &'a [u8] {
        self.raw.body
    }
}

/// Splits the record at `pos` of `data`; `base` is the offset of `data[0]`.
fn raw_record(data: &[u8], pos: usize, base: u64, endian: Endian) -> Result<RawRecord<'_>> {
    let offset = base + pos as u64;
    let rest = data.get(pos..).unwrap_or(&[]);
    let mut c = Cursor::new(rest, offset, endian);
    let kind = c.u32("record header")?;
    let misc = c.u16("record header")?;
    let size = c.u16("record header")?;
    let bad = |size: u64| Error::BadRecordSize { offset, kind, size };
    if size < 8 {
        return Err(bad(u64::from(size)));
    }
    let body = rest.get(8..usize::from(size)).ok_or(bad(u64::from(size)))?;
    let total = u64::from(size).saturating_add(trailing_payload(kind, body, endian));
    let span = usize::try_from(total)
        .ok()
        .filter(|&t| t <= rest.len())
        .ok_or(bad(total))?;
    Ok(RawRecord {
        kind,
        misc,
        body,
        span,
    })
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
            endian,
            pipe: header_size == PIPE_HEADER_SIZE,
            attrs: Vec::new(),
            features: Features::default(),
            notes: Vec::new(),
            data: &[],
            data_base: 0,
            decompressed: None,
            layout: IdLayout::default(),
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
            file.compute_layout();
        }
        let attrs_in_header = file.attrs.len();
        let scan = file.scan_stream(scanned)?;
        let unknown = if scan.compressed {
            file.expand_compressed(options)?;
            file.scan_decompressed()
        } else {
            scan.unknown
        };
        let times_known = !file.pipe && !scan.compressed && file.attrs.len() == attrs_in_header;
        file.notes.extend(
            unknown
                .into_iter()
                .map(|(kind, count)| Note::UnknownRecordType { kind, count }),
        );
        file.finish_attrs();
        if !times_known {
            file.fill_record_times();
        }
        if !file.record_index.is_sorted() {
            file.record_index.sort_unstable();
        }
        Ok(file)
    }

    fn parse_file_header(&mut self, bytes: &'a [u8]) -> Result<()> {
        let endian = self.endian;
        let mut c = Cursor::new(bytes, 0, endian);
        c.skip(16, "file header")?;
        let attr_size = c.u64("attr_size")?;
        let (attrs_offset, attrs_size) = read_section(bytes, 0x18, "attrs", endian)?;
        let (data_offset, data_size) = read_section(bytes, 0x28, "data", endian)?;
        let mut feature_bits = [0u64; 4];
        let mut fc = Cursor::new(bytes.get(0x48..).unwrap_or(&[]), 0x48, endian);
        for word in &mut feature_bits {
            *word = fc.u64("adds_features")?;
        }
        if attrs_size > 0 && (attr_size < ATTR_SIZE_VER0 as u64 + 16 || attr_size > 1 << 20) {
            return Err(Error::BadAttrSize {
                offset: 0x10,
                size: attr_size,
            });
        }
        if attrs_size > 0 {
            let nr = attrs_size / attr_size;
            for i in 0..nr {
                let at = attrs_offset + i * attr_size;
                let entry = slice_of(bytes, at, attr_size);
                let attr_len = (attr_size - 16) as usize;
                let mut attr = EventAttr::parse(entry.get(..attr_len).unwrap_or(&[]), at, endian)?;
                let (ids_offset, ids_size) =
                    read_section(bytes, at + attr_len as u64, "attr ids", endian)?;
                let mut ic = Cursor::new(slice_of(bytes, ids_offset, ids_size), ids_offset, endian);
                attr.ids = ic.u64_slice(ids_size / 8, "attr ids")?.iter().collect();
                self.attrs.push(attr);
            }
        }
        if data_size == 0 {
            self.notes.push(Note::NotFinalized);
            let start = if data_offset == 0 {
                FILE_HEADER_SIZE
            } else {
                data_offset
            };
            self.data = bytes.get(start as usize..).unwrap_or(&[]);
            self.data_base = start;
            return Ok(());
        }
        self.data = slice_of(bytes, data_offset, data_size);
        self.data_base = data_offset;
        // Feature sections: a table of (offset, size) right after the data, one per set bit.
        let mut table = data_offset + data_size;
        for bit in 0..256u32 {
            let word = feature_bits.get((bit / 64) as usize).copied().unwrap_or(0);
            if word & (1 << (bit % 64)) == 0 {
                continue;
            }
            self.features.present.push(bit);
            if record_feature_unknown(bit) {
                self.notes.push(Note::UnknownFeature { bit });
            }
            // A table entry or section past the end of the file means the file was cut:
            // an error, as for any other section. A section whose contents do not decode is
            // only a note; the samples are still good.
            let (offset, size) = read_section(bytes, table, "feature section", endian)?;
            table += 16;
            let section = slice_of(bytes, offset, size);
            let result = if bit == crate::kinds::feature::TRACING_DATA {
                self.read_tracing_data(section, offset)
            } else {
                self.features.parse_feature(bit, section, offset, endian)
            };
            if let Err(error) = result {
                self.notes.push(Note::FeatureError { bit, error });
            }
        }
        Ok(())
    }

    /// One pass over record headers: pipe-mode header records, event names, a partial tail,
    /// unknown record types, and whether anything is compressed.
    fn scan_stream(&mut self, scanned: &mut dyn FnMut(u64)) -> Result<Scan> {
        let mut scan = Scan::default();
        let endian = self.endian;
        let data = self.data;
        let mut pos = 0usize;
        self.record_index = Vec::with_capacity(data.len() / 512);
        let mut last_time = 0;
        while pos < data.len() {
            let offset = self.data_base + pos as u64;
            let raw = match raw_record(data, pos, self.data_base, endian) {
                Ok(raw) => raw,
                Err(_) => {
                    // A pipe has no data size and a killed perf leaves none: a record that does
                    // not fit ends the stream (salvage) instead of failing it.
                    if self.pipe || self.notes.contains(&Note::NotFinalized) {
                        self.notes.push(Note::TruncatedTail {
                            offset,
                            bytes: (data.len() - pos) as u64,
                        });
                        self.data = data.get(..pos).unwrap_or(data);
                    } else {
                        // The iterators report the error when they get there.
                        self.bad_record_at = Some(pos);
                    }
                    break;
                }
            };
            last_time = self.quick_time(&raw).unwrap_or(last_time);
            self.record_index.push((last_time, pos));
            touch_ahead(data, pos, raw.span);
            if (pos + raw.span) / SCAN_REPORT_BYTES != pos / SCAN_REPORT_BYTES {
                scanned(self.data_base + pos as u64);
            }
            let body_offset = offset + 8;
            match raw.kind {
                rk::SAMPLE | rk::MMAP | rk::MMAP2 | rk::COMM | rk::FINISHED_ROUND => {}
                rk::COMPRESSED | rk::COMPRESSED2 => scan.compressed = true,
                rk::HEADER_ATTR => {
                    let mut c = Cursor::new(raw.body, body_offset, endian);
                    c.skip(4, "attr type")?;
                    let size = match c.u32("attr size")? {
                        0 => ATTR_SIZE_VER0,
                        n => n as usize,
                    };
                    let attr_bytes = raw.body.get(..size).ok_or(Error::BadAttrSize {
                        offset: body_offset,
                        size: size as u64,
                    })?;
                    let mut attr = EventAttr::parse(attr_bytes, body_offset, endian)?;
                    let ids = raw.body.get(size..).unwrap_or(&[]);
                    let mut ic = Cursor::new(ids, body_offset + size as u64, endian);
                    attr.ids = ic
                        .u64_slice((ids.len() / 8) as u64, "attr ids")?
                        .iter()
                        .collect();
                    self.attrs.push(attr);
                }
                rk::HEADER_FEATURE => {
                    let mut c = Cursor::new(raw.body, body_offset, endian);
                    let result = c.u64("feature id").and_then(|bit| {
                        let bit = u32::try_from(bit).unwrap_or(u32::MAX);
                        if !self.features.present.contains(&bit) {
                            self.features.present.push(bit);
                        }
                        if record_feature_unknown(bit) {
                            self.notes.push(Note::UnknownFeature { bit });
                        }
                        self.features
                            .parse_feature(bit, c.rest(), c.offset(), endian)
                            .map_err(|e| (bit, e))
                            .or_else(|(bit, error)| {
                                self.notes.push(Note::FeatureError { bit, error });
                                Ok(())
                            })
                    });
                    if let Err(error) = result {
                        self.notes.push(Note::FeatureError { bit: 0, error });
                    }
                }
                rk::HEADER_BUILD_ID => {
                    let mut c = Cursor::new(raw.body, body_offset, endian);
                    match parse_build_id_body(&mut c, raw.misc) {
                        Ok(entry) => self.features.build_ids.push(entry),
                        Err(error) => self.notes.push(Note::FeatureError {
                            bit: crate::kinds::feature::BUILD_ID,
                            error,
                        }),
                    }
                }
                rk::EVENT_UPDATE => self.event_update(raw.body),
                rk::HEADER_TRACING_DATA => {
                    // The blob follows the record's fixed part (its `size` field).
                    let blob_at = pos + 8 + raw.body.len();
                    let blob = data.get(blob_at..pos + raw.span).unwrap_or(&[]);
                    if let Err(error) =
                        self.read_tracing_data(blob, self.data_base + blob_at as u64)
                    {
                        self.notes.push(Note::FeatureError {
                            bit: crate::kinds::feature::TRACING_DATA,
                            error,
                        });
                    }
                }
                kind => {
                    if record_type_name(kind) == "UNKNOWN" {
                        *scan.unknown.entry(kind).or_default() += 1;
                    }
                }
            }
            pos += raw.span;
        }
        Ok(scan)
    }

    /// Parses a TRACING_DATA blob found at file offset `at`; a later one replaces an earlier.
    fn read_tracing_data(&mut self, blob: &[u8], at: u64) -> Result<()> {
        let data = TracingData::parse(blob).map_err(|e| e.moved_by(at))?;
        if !self
            .features
            .present
            .contains(&crate::kinds::feature::TRACING_DATA)
        {
            self.features
                .present
                .push(crate::kinds::feature::TRACING_DATA);
        }
        self.tracing = Some(data);
        Ok(())
    }

    /// EVENT_UPDATE of type NAME (2) names the attr holding `id`.
    fn event_update(&mut self, body: &[u8]) {
        let mut c = Cursor::new(body, 0, self.endian);
        let (Ok(kind), Ok(id)) = (c.u64("event_update type"), c.u64("event_update id")) else {
            return;
        };
        if kind != 2 {
            return;
        }
        let name = String::from_utf8_lossy(until_nul(c.rest())).into_owned();
        if let Some(attr) = self.attrs.iter_mut().find(|a| a.ids.contains(&id)) {
            attr.name = name;
        }
    }

    fn expand_compressed(&mut self, options: &ParseOptions) -> Result<()> {
        let endian = self.endian;
        let expanded = expand(
            self.data,
            self.data_base,
            endian,
            options.max_decompressed_bytes,
        )?;
        self.notes.push(Note::Compressed {
            records: expanded.compressed_records,
            compressed_bytes: expanded.compressed_bytes,
            decompressed_bytes: expanded.decompressed_bytes,
        });
        if expanded.stopped_inside_block {
            self.notes.push(Note::IncompleteCompressedStream);
        }
        if expanded.dangling_bytes > 0 {
            self.notes.push(Note::DanglingDecompressedBytes {
                bytes: expanded.dangling_bytes,
            });
        }
        self.decompressed = Some(expanded.bytes);
        Ok(())
    }

    /// Finds the record starts of the decompressed stream, and counts records of unknown types.
    fn scan_decompressed(&mut self) -> BTreeMap<u32, u64> {
        let mut unknown: BTreeMap<u32, u64> = BTreeMap::new();
        let mut starts = Vec::new();
        let mut bad_record_at = None;
        let (data, base) = self.stream();
        let mut pos = 0usize;
        while pos < data.len() {
            let Ok(raw) = raw_record(data, pos, base, self.endian) else {
                bad_record_at = Some(pos);
                break;
            };
            if record_type_name(raw.kind) == "UNKNOWN" {
                *unknown.entry(raw.kind).or_default() += 1;
            }
            starts.push((0, pos));
            pos += raw.span;
        }
        self.record_index = starts;
        self.bad_record_at = bad_record_at;
        unknown
    }

    /// Names from EVENT_DESC (else, for tracepoints, from TRACING_DATA), notes about attrs, and
    /// the id → attr layout.
    fn finish_attrs(&mut self) {
        for (i, desc) in self.features.event_desc.iter().enumerate() {
            let by_id = self
                .attrs
                .iter()
                .position(|a| a.ids.iter().any(|id| desc.ids.contains(id)));
            let index =
                by_id.or_else(|| (self.attrs.len() == self.features.event_desc.len()).then_some(i));
            if let Some(attr) = index.and_then(|i| self.attrs.get_mut(i)) {
                attr.name.clone_from(&desc.name);
            }
        }
        // A tracepoint nothing named yet (a pipe without EVENT_DESC) is named by the format
        // whose ID is its config, as perf does.
        if let Some(tracing) = &self.tracing {
            for attr in &mut self.attrs {
                if attr.kind == TRACEPOINT_TYPE && attr.name == attr.derived_name() {
                    if let Some(event) = tracing.event(attr.config) {
                        attr.name = event.full_name();
                    }
                }
            }
        }
        for (attr_index, attr) in self.attrs.iter().enumerate() {
            if attr.extra_bytes > 0 {
                self.notes.push(Note::AttrExtraBytes {
                    attr_index,
                    bytes: attr.extra_bytes,
                });
            }
            if let Err(Error::UnsupportedSampleType { bit, .. }) =
                check_sample_type(attr.sample_type, 0)
            {
                self.notes
                    .push(Note::UnsupportedSampleType { attr_index, bit });
            }
        }
        self.compute_layout();
        if !self.layout.uniform && self.layout.sample_id_pos.is_none() && self.attrs.len() > 1 {
            self.notes.push(Note::AmbiguousSampleIds);
        }
    }

    /// Re-reads every record's time (after the attrs changed since the header pass).
    fn fill_record_times(&mut self) {
        let (data, base) = self.stream();
        let mut last = 0u64;
        let mut times = Vec::with_capacity(self.record_index.len());
        for (i, &(_, pos)) in self.record_index.iter().enumerate() {
            if let Some(&(_, ahead)) = self.record_index.get(i + 8) {
                std::hint::black_box(data.get(ahead).copied());
            }
            if let Ok(raw) = raw_record(data, pos, base, self.endian) {
                last = self.quick_time(&raw).unwrap_or(last);
            }
            times.push(last);
        }
        for (entry, time) in self.record_index.iter_mut().zip(times) {
            entry.0 = time;
        }
    }

    /// The id → attr layout of the current attrs.
    fn compute_layout(&mut self) {
        let mut layout = IdLayout::default();
        for (index, attr) in self.attrs.iter().enumerate() {
            layout.ids.extend(attr.ids.iter().map(|&id| (id, index)));
        }
        layout.ids.sort_unstable();
        let first = self.attrs.first().map(|a| a.sample_type).unwrap_or(0);
        layout.uniform = self.attrs.iter().all(|a| a.sample_type == first);
        let all_identifier = !self.attrs.is_empty()
            && self
                .attrs
                .iter()
                .all(|a| a.sample_type & st::IDENTIFIER != 0);
        if all_identifier {
            layout.sample_id_pos = Some(0);
            layout.trailer_id_from_end = Some(8);
        } else if layout.uniform && first & st::ID != 0 {
            let before = [st::IP, st::TID, st::TIME, st::ADDR]
                .iter()
                .filter(|&&b| first & b != 0)
                .count();
            layout.sample_id_pos = Some(before * 8);
            let after = [st::STREAM_ID, st::CPU]
                .iter()
                .filter(|&&b| first & b != 0)
                .count();
            layout.trailer_id_from_end = Some(8 + after * 8);
        }
        self.layout = layout;
    }

    /// The record stream (plain records) and the offset of its first byte.
    fn stream(&self) -> (&[u8], u64) {
        match &self.decompressed {
            Some(buf) => (buf.as_slice(), 0),
            None => (self.data, self.data_base),
        }
    }

    /// The recorded tracepoints' formats (the TRACING_DATA feature section, or a pipe's
    /// HEADER_TRACING_DATA record), to name events and decode their raw data.
    pub fn tracing_data(&self) -> Option<&TracingData> {
        self.tracing.as_ref()
    }

    /// The format of tracepoint attr `attr_index`, when it is one and the recording describes it.
    pub fn tracepoint_format(&self, attr_index: usize) -> Option<&EventFormat> {
        let attr = self.attrs.get(attr_index)?;
        if attr.kind != TRACEPOINT_TYPE {
            return None;
        }
        self.tracing.as_ref()?.event(attr.config)
    }

    /// Byte order of the file.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// True for pipe format (`perf record -o -`).
    pub fn is_pipe(&self) -> bool {
        self.pipe
    }

    /// The events recorded, each with its sample ids and name.
    pub fn attrs(&self) -> &[EventAttr] {
        &self.attrs
    }

    /// What the feature sections (or HEADER_FEATURE records) said.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Non-fatal problems and notable facts.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// True when records come from decompressed data, so [`Event::offset`] is an offset into the
    /// decompressed stream rather than the file.
    pub fn offsets_are_decompressed(&self) -> bool {
        self.decompressed.is_some()
    }

    /// Records in file order. After an `Err` the iterator ends.
    pub fn records(&self) -> Records<'_> {
        let (data, base) = self.stream();
        Records {
            file: self,
            data,
            base,
            pos: 0,
            done: false,
        }
    }

    fn lookup(&self, id: u64) -> usize {
        match self.layout.ids.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(i) => self.layout.ids.get(i).map(|&(_, a)| a).unwrap_or(0),
            Err(_) => 0,
        }
    }

    fn read_u64_at(&self, body: &[u8], pos: usize) -> Option<u64> {
        let b = body.get(pos..pos.checked_add(8)?)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(self.endian.u64(a))
    }

    /// Which attr a SAMPLE body belongs to.
    fn sample_attr(&self, body: &[u8]) -> usize {
        if self.attrs.len() <= 1 {
            return 0;
        }
        match self.layout.sample_id_pos {
            Some(pos) => self.read_u64_at(body, pos).map_or(0, |id| self.lookup(id)),
            None => 0,
        }
    }

    /// Which attr describes the `sample_id` trailer of a non-sample body.
    fn trailer_attr(&self, body: &[u8]) -> usize {
        if self.attrs.len() <= 1 || self.layout.uniform {
            return 0;
        }
        match self.layout.trailer_id_from_end {
            Some(back) => body
                .len()
                .checked_sub(back)
                .and_then(|pos| self.read_u64_at(body, pos))
                .map_or(0, |id| self.lookup(id)),
            None => 0,
        }
    }

    /// Decodes a record split off this file's stream.
    pub fn decode<'s>(&'s self, record: &RecordRef<'s>) -> Result<Event<'s>> {
        self.decode_record(&record.raw, record.offset)
    }

    /// The leading fields of a SAMPLE record, without decoding the rest (`None` for other
    /// records, or when the fields do not fit the record).
    pub fn sample_head(&self, record: &RecordRef<'_>) -> Option<SampleHead> {
        if record.raw.kind != rk::SAMPLE {
            return None;
        }
        let attr_index = self.sample_attr(record.raw.body);
        let attr = self.attrs.get(attr_index)?;
        parse_sample_head(
            record.raw.body,
            record.offset,
            record.raw.misc,
            self.endian,
            attr,
            attr_index,
        )
        .ok()
    }

    /// Decodes one record.
    fn decode_record<'s>(&'s self, raw: &RawRecord<'s>, offset: u64) -> Result<Event<'s>> {
        let body_offset = offset + 8;
        if raw.kind == rk::SAMPLE {
            let attr_index = self.sample_attr(raw.body);
            let Some(attr) = self.attrs.get(attr_index) else {
                return Ok(Event {
                    offset,
                    misc: raw.misc,
                    time: None,
                    sample_id: SampleId::default(),
                    record: Record::Other {
                        kind: raw.kind,
                        body: raw.body,
                    },
                });
            };
            let sample = parse_sample(raw.body, offset, raw.misc, self.endian, attr, attr_index)?;
            return Ok(Event {
                offset,
                misc: raw.misc,
                time: sample.time,
                sample_id: SampleId::default(),
                record: Record::Sample(sample),
            });
        }
        let mut sample_id = SampleId::default();
        let mut payload = raw.body;
        if has_sample_id_trailer(raw.kind) {
            if let Some(attr) = self.attrs.get(self.trailer_attr(raw.body)) {
                if attr.sample_id_all {
                    sample_id =
                        parse_sample_id(raw.body, body_offset, self.endian, attr.sample_type)?;
                    let keep = raw.body.len() - sample_id_size(attr.sample_type);
                    payload = raw.body.get(..keep).unwrap_or(&[]);
                }
            }
        }
        let record = parse_other(
            raw.kind,
            raw.misc,
            payload,
            raw.body,
            body_offset,
            self.endian,
        )?;
        let time = sample_id.time.or(match record {
            Record::Fork(f) | Record::Exit(f) => Some(f.time),
            Record::Throttle(t) | Record::Unthrottle(t) => Some(t.time),
            _ => None,
        });
        Ok(Event {
            offset,
            misc: raw.misc,
            time,
            sample_id,
            record,
        })
    }

    /// The timestamp of a record without decoding it fully (same rule as [`Event::time`]).
    fn quick_time(&self, raw: &RawRecord<'_>) -> Option<u64> {
        if raw.kind == rk::SAMPLE {
            let attr = self.attrs.get(self.sample_attr(raw.body))?;
            let t = attr.sample_type;
            if t & st::TIME == 0 {
                return None;
            }
            let before = [st::IDENTIFIER, st::IP, st::TID]
                .iter()
                .filter(|&&b| t & b != 0)
                .count();
            return self.read_u64_at(raw.body, before * 8);
        }
        if has_sample_id_trailer(raw.kind) {
            if let Some(attr) = self.attrs.get(self.trailer_attr(raw.body)) {
                let t = attr.sample_type;
                if attr.sample_id_all && t & st::TIME != 0 {
                    let start = raw.body.len().checked_sub(sample_id_size(t))?;
                    let skip = if t & st::TID != 0 { 8 } else { 0 };
                    return self.read_u64_at(raw.body, start + skip);
                }
            }
        }
        match raw.kind {
            rk::FORK | rk::EXIT => self.read_u64_at(raw.body, 16),
            rk::THROTTLE | rk::UNTHROTTLE => self.read_u64_at(raw.body, 0),
            _ => None,
        }
    }

    /// Records in timestamp order: a stable sort by time, where records without a time take the
    /// time of the record before them in file order (so synthesized records at time 0 stay first).
    /// Walks the `(time, position)` index that parsing built; records are decoded as the
    /// iterator advances. A malformed record header is an error here; decoding errors come
    /// from the iterator.
    pub fn sorted_records(&self) -> Result<SortedRecords<'_>> {
        let (data, base) = self.stream();
        if let Some(pos) = self.bad_record_at {
            raw_record(data, pos, base, self.endian)?;
        }
        // Per block of the index: the lowest position of any record in it or after it.
        let mut floors: Vec<usize> = self
            .record_index
            .chunks(FLOOR_BLOCK)
            .map(|block| {
                block
                    .iter()
                    .map(|&(_, pos)| pos)
                    .min()
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let mut lowest = usize::MAX;
        for floor in floors.iter_mut().rev() {
            lowest = lowest.min(*floor);
            *floor = lowest;
        }
        Ok(SortedRecords {
            file: self,
            data,
            base,
            index: self.record_index.iter(),
            floors,
        })
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
                Record::Lost(l) => {
                    stats.lost_records += 1;
                    stats.lost_events += l.lost;
                }
                Record::LostSamples(l) => stats.lost_samples += l.lost,
                _ => {}
            }
        }
        stats
    }
}

fn record_feature_unknown(bit: u32) -> bool {
    crate::kinds::feature_name(bit) == "unknown"
}

/// Records in file order (see [`PerfFile::records`]).
#[derive(Debug, Clone)]
pub struct Records<'p> {
    file: &'p PerfFile<'p>,
    data: &'p [u8],
    base: u64,
    pos: usize,
    done: bool,
}

impl<'p> Iterator for Records<'p> {
    type Item = Result<Event<'p>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.base + self.pos as u64;
        let result = raw_record(self.data, self.pos, self.base, self.file.endian).and_then(|raw| {
            self.pos += raw.span;
            self.file.decode_record(&raw, offset)
        });
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// Records in time order (see [`PerfFile::sorted_records`]).
#[derive(Debug, Clone)]
pub struct SortedRecords<'p> {
    file: &'p PerfFile<'p>,
    data: &'p [u8],
    base: u64,
    index: std::slice::Iter<'p, (u64, usize)>,
    /// See [`SortedRecords::unread_floor`].
    floors: Vec<usize>,
}

/// Records per block of [`SortedRecords`]' floors.
const FLOOR_BLOCK: usize = 1024;

impl<'p> SortedRecords<'p> {
    /// An offset below which no record that the iterator has yet to return starts (time order
    /// visits the file roughly front to back: a caller can drop what lies below from memory).
    pub fn unread_floor(&self) -> u64 {
        let read = self.file.record_index.len() - self.index.len();
        let floor = self.floors.get(read / FLOOR_BLOCK).copied();
        self.base + floor.map_or(self.data.len(), |f| f.min(self.data.len())) as u64
    }

    /// The stream from the start of the record `ahead` places after the next one, without
    /// reading it: for callers that ask the CPU to fetch records before they get to them.
    pub fn upcoming_start(&self, ahead: usize) -> Option<&'p [u8]> {
        let &(_, pos) = self.index.as_slice().get(ahead)?;
        self.data.get(pos..)
    }

    /// The whole record `ahead` places after the next one (reads its header).
    pub fn upcoming_record(&self, ahead: usize) -> Option<&'p [u8]> {
        let &(_, pos) = self.index.as_slice().get(ahead)?;
        let raw = raw_record(self.data, pos, self.base, self.file.endian).ok()?;
        self.data.get(pos..pos + raw.span)
    }
}

impl<'p> SortedRecords<'p> {
    /// The next record in time order, split but not decoded.
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'p>>> {
        let &(_, pos) = self.index.next()?;
        let offset = self.base + pos as u64;
        Some(
            raw_record(self.data, pos, self.base, self.file.endian)
                .map(|raw| RecordRef { offset, raw }),
        )
    }
}

impl<'p> Iterator for SortedRecords<'p> {
    type Item = Result<Event<'p>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.next_ref()?
                .and_then(|record| self.file.decode_record(&record.raw, record.offset)),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.index.size_hint()
    }
}

impl ExactSizeIterator for SortedRecords<'_> {}
