//! [`RecordParseInfo`]: what decoding one raw record needs (the attrs of its stream and their
//! byte order), for the file reader and for records read live from a kernel ring buffer alike.
//! Also splitting a record's header off a stream ([`RawRecord`]).

use crate::attr::EventAttr;
use crate::compress::trailing_payload;
use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::kinds::{record as rk, sample as st};
use crate::record::{Event, Record, has_sample_id_trailer, parse_other};
use crate::sample::{
    CpuMode, SampleHead, SampleId, parse_sample, parse_sample_head, parse_sample_id, sample_id_size,
};

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

impl IdLayout {
    fn of(attrs: &[EventAttr]) -> IdLayout {
        let mut layout = IdLayout::default();
        for (index, attr) in attrs.iter().enumerate() {
            layout.ids.extend(attr.ids.iter().map(|&id| (id, index)));
        }
        layout.ids.sort_unstable();
        let first = attrs.first().map(|a| a.sample_type).unwrap_or(0);
        layout.uniform = attrs.iter().all(|a| a.sample_type == first);
        let all_identifier =
            !attrs.is_empty() && attrs.iter().all(|a| a.sample_type & st::IDENTIFIER != 0);
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
        layout
    }
}

/// A record header split off a stream: its type, misc bits and body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub(crate) kind: u32,
    pub(crate) misc: u16,
    /// The bytes after the 8-byte header, up to the header's size.
    pub(crate) body: &'a [u8],
    /// Header size plus any trailing payload (AUXTRACE data, a TRACING_DATA blob).
    pub(crate) span: usize,
}

impl<'a> RawRecord<'a> {
    /// Splits the record at `pos` of `data`; `base` is the offset of `data[0]`.
    #[inline]
    pub(crate) fn split(
        data: &'a [u8],
        pos: usize,
        base: u64,
        endian: Endian,
    ) -> Result<RawRecord<'a>> {
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
}

/// What decoding a raw record of one stream needs: the stream's attrs (each with its sample ids)
/// and byte order. A SAMPLE finds its attr by its id, a non-sample record's `sample_id` trailer
/// by the id at its end (or, when every attr has the same `sample_type`, any attr describes it).
///
/// The file reader ([`PerfFile`](crate::PerfFile)) keeps one for the file's attrs; a recorder
/// builds one from the attrs it opened to read records straight from the kernel's ring buffers
/// ([`Endian::NATIVE`]).
#[derive(Debug, Clone)]
pub struct RecordParseInfo {
    endian: Endian,
    attrs: Vec<EventAttr>,
    layout: IdLayout,
}

impl RecordParseInfo {
    /// The parse info of a stream of records in byte order `endian` whose events are `attrs`
    /// (their [`ids`](EventAttr::ids) say which records are whose).
    pub fn new(attrs: Vec<EventAttr>, endian: Endian) -> RecordParseInfo {
        let layout = IdLayout::of(&attrs);
        RecordParseInfo {
            endian,
            attrs,
            layout,
        }
    }

    /// Byte order of the records.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The attrs, in the order sample [`attr_index`](crate::Sample::attr_index) counts them.
    pub fn attrs(&self) -> &[EventAttr] {
        &self.attrs
    }

    /// The attrs, to change (the file reader adds a pipe's attrs and names them as it reads);
    /// [`relayout`](Self::relayout) must follow a change of their ids or sample types.
    pub(crate) fn attrs_mut(&mut self) -> &mut Vec<EventAttr> {
        &mut self.attrs
    }

    /// Recomputes which attr each id belongs to, after the attrs changed.
    pub(crate) fn relayout(&mut self) {
        self.layout = IdLayout::of(&self.attrs);
    }

    /// True when neither the id's position in samples nor one shared `sample_type` tells which
    /// attr a record belongs to, although there are several.
    pub(crate) fn ids_ambiguous(&self) -> bool {
        !self.layout.uniform && self.layout.sample_id_pos.is_none() && self.attrs.len() > 1
    }

    /// Decodes one whole record (header included) that starts at `offset` (what
    /// [`Event::offset`] and errors report). Bytes after the header's size are ignored.
    pub fn decode<'a>(&self, record: &'a [u8], offset: u64) -> Result<Event<'a>> {
        let raw = RawRecord::split(record, 0, offset, self.endian)?;
        self.decode_raw(&raw, offset)
    }

    /// The timestamp of one whole record (header included) without decoding the rest: the same
    /// rule as [`Event::time`], at the cost of one read. `None` also for a malformed header.
    pub fn record_time(&self, record: &[u8]) -> Option<u64> {
        let raw = RawRecord::split(record, 0, 0, self.endian).ok()?;
        self.quick_time(&raw)
    }

    #[inline]
    fn lookup(&self, id: u64) -> usize {
        match self.layout.ids.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(i) => self.layout.ids.get(i).map(|&(_, a)| a).unwrap_or(0),
            Err(_) => 0,
        }
    }

    #[inline]
    fn read_u64_at(&self, body: &[u8], pos: usize) -> Option<u64> {
        let b = body.get(pos..pos.checked_add(8)?)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(self.endian.u64(a))
    }

    /// Which attr a SAMPLE body belongs to.
    #[inline]
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
    #[inline]
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

    /// The leading fields of a SAMPLE record, without decoding the rest (`None` for other
    /// records, or when the fields do not fit the record).
    #[inline]
    pub(crate) fn sample_head(&self, raw: &RawRecord<'_>, offset: u64) -> Option<SampleHead> {
        if raw.kind != rk::SAMPLE {
            return None;
        }
        let attr_index = self.sample_attr(raw.body);
        let attr = self.attrs.get(attr_index)?;
        parse_sample_head(raw.body, offset, raw.misc, self.endian, attr, attr_index).ok()
    }

    /// The pid field and cpumode of a SAMPLE record, read where they lie; `None` where
    /// [`RecordParseInfo::sample_head`] is `None` (other records, unknown `sample_type` bits,
    /// leading fields that do not fit). The pid is `None` when the event records no TID.
    pub(crate) fn sample_pid(&self, raw: &RawRecord<'_>) -> Option<(Option<u32>, CpuMode)> {
        if raw.kind != rk::SAMPLE {
            return None;
        }
        let t = self.attrs.get(self.sample_attr(raw.body))?.sample_type;
        if t & !st::KNOWN != 0 {
            return None;
        }
        let fields_before = |mask: u64| (t & mask).count_ones() as usize * 8;
        if raw.body.len() < fields_before(st::LEADING) {
            return None;
        }
        let pid = match t & st::TID {
            0 => None,
            _ => {
                let at = fields_before(st::IDENTIFIER | st::IP);
                let bytes = raw.body.get(at..at + 4)?;
                Some(self.endian.u32(bytes.try_into().ok()?))
            }
        };
        Some((pid, CpuMode::from_misc(raw.misc)))
    }

    /// Decodes one split record that starts at `offset`.
    pub(crate) fn decode_raw<'a>(&self, raw: &RawRecord<'a>, offset: u64) -> Result<Event<'a>> {
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

    /// The timestamp of a split record without decoding it fully (same rule as [`Event::time`]).
    #[inline]
    pub(crate) fn quick_time(&self, raw: &RawRecord<'_>) -> Option<u64> {
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
}
