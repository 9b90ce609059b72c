//! Time order: the record times read again when the header pass could not (a pipe, compressed
//! records, attrs that came late), and [`SortedRecords`], which walks the sorted index.

use std::ops::Range;

use super::perf_file::{IndexEntry, PerfFile};
use super::scan::RecordRef;
use crate::error::Result;
use crate::parse_info::RawRecord;
use crate::record::Event;

impl<'a> PerfFile<'a> {
    /// Re-reads every record's time (after the attrs changed since the header pass).
    pub(super) fn fill_record_times(&mut self) {
        let (data, base) = self.stream();
        let mut last = 0u64;
        let mut times = Vec::with_capacity(self.record_index.len());
        for (i, entry) in self.record_index.iter().enumerate() {
            if let Some(ahead) = self.record_index.get(i + 8) {
                std::hint::black_box(data.get(ahead.pos()).copied());
            }
            if let Ok(raw) = RawRecord::split(data, entry.pos(), base, self.info.endian()) {
                last = self.info.quick_time(&raw).unwrap_or(last);
            }
            times.push(last);
        }
        for (entry, time) in self.record_index.iter_mut().zip(times) {
            entry.time = time;
        }
    }

    /// Records in timestamp order: a stable sort by time, where records without a time take the
    /// time of the record before them in file order (so synthesized records at time 0 stay first).
    /// Walks the `(time, position)` index that parsing built; records are decoded as the
    /// iterator advances. A malformed record header is an error here; decoding errors come
    /// from the iterator.
    pub fn sorted_records(&self) -> Result<SortedRecords<'_>> {
        self.sorted_records_in(0..self.record_index.len())
    }

    /// The number of records [`sorted_records`](Self::sorted_records) yields.
    pub fn record_count(&self) -> usize {
        self.record_index.len()
    }

    /// The time [`sorted_records`](Self::sorted_records) orders its `index`th record by (its
    /// own, or that of the record before it in file order), or `None` past the end. Times do
    /// not decrease with `index`: a caller splitting time order can cut where the time moves.
    pub fn sorted_time(&self, index: usize) -> Option<u64> {
        self.record_index.get(index).map(|entry| entry.time)
    }

    /// The records at positions `range` of time order (what
    /// [`sorted_records`](Self::sorted_records) yields there; a range past the end is cut
    /// short): for callers that split the stream into consecutive pieces and read them on
    /// several threads. Each piece is split, decoded and reports its
    /// [`unread_floor`](SortedRecords::unread_floor) on its own; the pieces of a split yield
    /// together exactly what `sorted_records` yields. Errors as `sorted_records`.
    pub fn sorted_records_in(&self, range: Range<usize>) -> Result<SortedRecords<'_>> {
        let (data, base) = self.stream();
        if let Some(pos) = self.bad_record_at {
            RawRecord::split(data, pos, base, self.info.endian())?;
        }
        let end = range.end.min(self.record_index.len());
        let index = self
            .record_index
            .get(range.start.min(end)..end)
            .unwrap_or(&[]);
        // Per block of the index: the lowest position of any record in it or after it.
        let mut floors: Vec<usize> = index
            .chunks(FLOOR_BLOCK)
            .map(|block| {
                block
                    .iter()
                    .map(|entry| entry.pos())
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
            length: index.len(),
            index: index.iter(),
            floors,
        })
    }
}

/// Records in time order (see [`PerfFile::sorted_records`]).
#[derive(Debug, Clone)]
pub struct SortedRecords<'p> {
    file: &'p PerfFile<'p>,
    data: &'p [u8],
    base: u64,
    index: std::slice::Iter<'p, IndexEntry>,
    /// Records in the piece of time order this iterates ([`PerfFile::sorted_records_in`]).
    length: usize,
    /// See [`SortedRecords::unread_floor`].
    floors: Vec<usize>,
}

/// Records per block of [`SortedRecords`]' floors.
const FLOOR_BLOCK: usize = 1024;

impl<'p> SortedRecords<'p> {
    /// An offset below which no record that the iterator has yet to return starts (time order
    /// visits the file roughly front to back: a caller can drop what lies below from memory).
    pub fn unread_floor(&self) -> u64 {
        let read = self.length - self.index.len();
        let floor = self.floors.get(read / FLOOR_BLOCK).copied();
        self.base + floor.map_or(self.data.len(), |f| f.min(self.data.len())) as u64
    }

    /// The stream from the start of the record `ahead` places after the next one, without
    /// reading it: for callers that ask the CPU to fetch records before they get to them.
    pub fn upcoming_start(&self, ahead: usize) -> Option<&'p [u8]> {
        let pos = self.index.as_slice().get(ahead)?.pos();
        self.data.get(pos..)
    }

    /// The whole record `ahead` places after the next one (reads its header).
    pub fn upcoming_record(&self, ahead: usize) -> Option<&'p [u8]> {
        let pos = self.index.as_slice().get(ahead)?.pos();
        let raw = RawRecord::split(self.data, pos, self.base, self.file.info.endian()).ok()?;
        self.data.get(pos..pos + raw.span)
    }
}

impl<'p> SortedRecords<'p> {
    /// The next record in time order, split but not decoded.
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'p>>> {
        let pos = self.index.next()?.pos();
        let offset = self.base + pos as u64;
        Some(
            RawRecord::split(self.data, pos, self.base, self.file.info.endian())
                .map(|raw| RecordRef { offset, raw }),
        )
    }
}

impl SortedRecords<'_> {
    /// Steps over the next record, without reading it, when it is a SAMPLE (as its header said
    /// when parsing indexed it); returns whether it did. For passes that follow only the
    /// side-band records: on a machine-wide recording nine records in ten are samples, and
    /// reading each one's header is a cache miss.
    pub fn skip_sample(&mut self) -> bool {
        let is_sample = self
            .index
            .as_slice()
            .first()
            .is_some_and(|entry| entry.is_sample());
        if is_sample {
            self.index.next();
        }
        is_sample
    }
}

impl<'p> Iterator for SortedRecords<'p> {
    type Item = Result<Event<'p>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.next_ref()?
                .and_then(|record| self.file.info.decode_raw(&record.raw, record.offset)),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.index.size_hint()
    }
}

impl ExactSizeIterator for SortedRecords<'_> {}
