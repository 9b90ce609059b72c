//! The one pass over the record stream that parsing makes: pipe-mode header records, the
//! `(time, position)` index of every record, compressed records expanded (and their stream
//! indexed), and records in file order ([`Records`]) or split but undecoded ([`RecordRef`]).

use std::collections::BTreeMap;

use super::header::record_feature_unknown;
use super::perf_file::{IndexEntry, ParseOptions, PerfFile, SCAN_REPORT_BYTES};
use super::scan_ahead::{Deal, ScanAhead, records_are_small};
use crate::attr::{ATTR_SIZE_VER0, EventAttr};
use crate::compress::expand;
use crate::endian::Cursor;
use crate::error::{Error, Result};
use crate::features::parse_build_id_body;
use crate::kinds::{feature, record as rk, record_type_name};
use crate::notes::Note;
use crate::parse_info::RawRecord;
use crate::record::{Event, until_nul};
use crate::sample::{CpuMode, SampleHead};

/// What [`PerfFile::scan_stream`] learned.
#[derive(Default)]
pub(super) struct Scan {
    pub(super) compressed: bool,
    pub(super) unknown: BTreeMap<u32, u64>,
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
    pub(super) offset: u64,
    pub(super) raw: RawRecord<'a>,
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

impl<'a> PerfFile<'a> {
    /// One pass over record headers: pipe-mode header records, event names, a partial tail,
    /// unknown record types, and whether anything is compressed. A file's stream of at least
    /// two pieces of `piece_bytes`, of small records, is walked in pieces, a few helper threads
    /// walking some of them meanwhile (see [`super::scan_ahead`]); a pipe's attrs come in its
    /// stream, so the pass walks it alone.
    pub(super) fn scan_stream(
        &mut self,
        scanned: &mut dyn FnMut(u64),
        piece_bytes: usize,
    ) -> Result<Scan> {
        let deal = match self.pipe {
            true => None,
            false => Deal::of(self.data.len(), rayon::current_num_threads(), piece_bytes)
                .filter(|_| records_are_small(self.data, self.info.endian())),
        };
        let Some(deal) = deal else {
            return self.scan_records(scanned, ScanAhead::none());
        };
        let info = self.info.clone();
        let data = self.data;
        std::thread::scope(|scope| {
            let (ahead, helpers) = ScanAhead::start(scope, data, &info, deal);
            let scan = self.scan_records(scanned, ahead);
            for helper in helpers {
                // A helper that panicked walked pieces the pass then walked itself.
                let _ = helper.join();
            }
            scan
        })
    }

    /// [`PerfFile::scan_stream`]'s pass, taking the index of the pieces walked `ahead` where
    /// it meets them.
    fn scan_records(&mut self, scanned: &mut dyn FnMut(u64), mut ahead: ScanAhead) -> Result<Scan> {
        let mut scan = Scan::default();
        let endian = self.info.endian();
        let data = self.data;
        let mut pos = 0usize;
        self.record_index = Vec::with_capacity(data.len() / 512);
        let mut last_time = 0;
        let mut watch_from = ahead.watch_from();
        while pos < data.len() {
            if pos >= watch_from {
                let taken = ahead.take_at(pos);
                watch_from = ahead.watch_from();
                if let Some(taken) = taken {
                    pos = taken.end();
                    last_time = taken.append_to(&mut self.record_index, last_time);
                    scanned(self.data_base + pos as u64);
                    continue;
                }
            }
            let offset = self.data_base + pos as u64;
            let raw = match RawRecord::split(data, pos, self.data_base, endian) {
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
            last_time = self.info.quick_time(&raw).unwrap_or(last_time);
            self.record_index
                .push(IndexEntry::new(last_time, pos, raw.kind));
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
                    self.info.attrs_mut().push(attr);
                    // The pieces read times by the attrs as they were.
                    ahead.abandon();
                    watch_from = usize::MAX;
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
                            bit: feature::BUILD_ID,
                            error,
                        }),
                    }
                }
                rk::EVENT_UPDATE => {
                    self.event_update(raw.body);
                    ahead.abandon();
                    watch_from = usize::MAX;
                }
                rk::HEADER_TRACING_DATA => {
                    // The blob follows the record's fixed part (its `size` field).
                    let blob_at = pos + 8 + raw.body.len();
                    let blob = data.get(blob_at..pos + raw.span).unwrap_or(&[]);
                    if let Err(error) =
                        self.read_tracing_data(blob, self.data_base + blob_at as u64)
                    {
                        self.notes.push(Note::FeatureError {
                            bit: feature::TRACING_DATA,
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

    /// EVENT_UPDATE of type NAME (2) names the attr holding `id`.
    fn event_update(&mut self, body: &[u8]) {
        let mut c = Cursor::new(body, 0, self.info.endian());
        let (Ok(kind), Ok(id)) = (c.u64("event_update type"), c.u64("event_update id")) else {
            return;
        };
        if kind != 2 {
            return;
        }
        let name = String::from_utf8_lossy(until_nul(c.rest())).into_owned();
        if let Some(attr) = self
            .info
            .attrs_mut()
            .iter_mut()
            .find(|a| a.ids.contains(&id))
        {
            attr.name = name;
        }
    }

    pub(super) fn expand_compressed(&mut self, options: &ParseOptions) -> Result<()> {
        let endian = self.info.endian();
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
    pub(super) fn scan_decompressed(&mut self) -> BTreeMap<u32, u64> {
        let mut unknown: BTreeMap<u32, u64> = BTreeMap::new();
        let mut starts = Vec::new();
        let mut bad_record_at = None;
        let (data, base) = self.stream();
        let mut pos = 0usize;
        while pos < data.len() {
            let Ok(raw) = RawRecord::split(data, pos, base, self.info.endian()) else {
                bad_record_at = Some(pos);
                break;
            };
            if record_type_name(raw.kind) == "UNKNOWN" {
                *unknown.entry(raw.kind).or_default() += 1;
            }
            starts.push(IndexEntry::new(0, pos, raw.kind));
            pos += raw.span;
        }
        self.record_index = starts;
        self.bad_record_at = bad_record_at;
        unknown
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

    /// Decodes a record split off this file's stream.
    pub fn decode<'s>(&'s self, record: &RecordRef<'s>) -> Result<Event<'s>> {
        self.info.decode_raw(&record.raw, record.offset)
    }

    /// The leading fields of a SAMPLE record, without decoding the rest (`None` for other
    /// records, or when the fields do not fit the record).
    pub fn sample_head(&self, record: &RecordRef<'_>) -> Option<SampleHead> {
        self.info.sample_head(&record.raw, record.offset)
    }

    /// The pid (`None` without TID) and cpumode of a SAMPLE record, `None` where
    /// [`PerfFile::sample_head`] is: two fields read where they lie, for passes that need no
    /// more (a quarter of the instructions of the whole head).
    pub fn sample_pid(&self, record: &RecordRef<'_>) -> Option<(Option<u32>, CpuMode)> {
        self.info.sample_pid(&record.raw)
    }
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
        let result = RawRecord::split(self.data, self.pos, self.base, self.file.info.endian())
            .and_then(|raw| {
                self.pos += raw.span;
                self.file.info.decode_raw(&raw, offset)
            });
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}
