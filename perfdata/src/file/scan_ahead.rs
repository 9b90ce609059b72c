//! Scanning a big file's records ahead, in parallel with the one pass over them.
//!
//! Walking the record headers is a chain: each record's size says where the next starts. The
//! pass splits the stream into pieces; each piece past the first is walked on a thread of its
//! own from a guessed record start, and the pass, when it gets to the piece, takes the piece's
//! index from the first record start that both walks reached on: from there on the two walks
//! are one, so the index is the one the pass alone makes. A guess that never meets the pass
//! (bytes that merely look like records, records out of alignment) costs the pass nothing but
//! walking the piece itself, as it would anyway. Pieces walk only the records whose scan is
//! their index entry alone; at any other record the piece stops and the pass goes on.

use std::thread::{Scope, ScopedJoinHandle};

use super::perf_file::IndexEntry;
use crate::endian::Endian;
use crate::kinds::{record as rk, record_type_name};
use crate::parse_info::{RawRecord, RecordParseInfo};

/// Records in a row that must look right before a piece takes its guess as a record start.
const GUESS_CHAIN: usize = 16;
/// How far past its start a piece looks for a record start before it gives up: a compressed
/// stream, say, has none to find.
const GUESS_BYTES: usize = 64 * 1024;

/// Where the pass's pieces start, past the first: `threads` pieces of at least `piece_bytes`
/// bytes each (none when the stream is smaller than two), at multiples of 8 (records are
/// 8-byte aligned).
pub(super) fn piece_starts(len: usize, threads: usize, piece_bytes: usize) -> Vec<usize> {
    let pieces = threads.min(len / piece_bytes.max(1)).max(1);
    (1..pieces).map(|k| (len / pieces * k) & !7).collect()
}

/// True for the records whose scan is their index entry alone (see `PerfFile::scan_stream`).
fn only_indexed(kind: u32) -> bool {
    !matches!(
        kind,
        rk::COMPRESSED
            | rk::COMPRESSED2
            | rk::HEADER_ATTR
            | rk::HEADER_FEATURE
            | rk::HEADER_BUILD_ID
            | rk::EVENT_UPDATE
            | rk::HEADER_TRACING_DATA
    ) && record_type_name(kind) != "UNKNOWN"
}

/// What one piece found: the index entries of its records, as the pass would make them but
/// for the times of the records before its first timed one.
struct Piece {
    /// Where the piece starts: the pass takes it from its first record start at or past it.
    start: usize,
    entries: Vec<IndexEntry>,
    /// The first entry with a time of its own; the entries before it carry no time yet.
    first_timed: usize,
    /// Where the piece's walk stopped: the end of its last record.
    end: usize,
}

/// A piece's index, to be taken by the pass from `entries[from]` on.
pub(super) struct Taken {
    entries: Vec<IndexEntry>,
    from: usize,
    first_timed: usize,
    /// Where the pass goes on.
    pub(super) end: usize,
}

impl Taken {
    /// Appends the taken entries to `index`, the untimed first ones at `last_time` (the time
    /// the pass's own walk carries); returns the time the pass carries on with.
    pub(super) fn append_to(self, index: &mut Vec<IndexEntry>, last_time: u64) -> u64 {
        let untimed = self.first_timed.saturating_sub(self.from);
        let mut carried = last_time;
        for (i, mut entry) in self.entries.into_iter().skip(self.from).enumerate() {
            if i < untimed {
                entry.time = last_time;
            }
            carried = entry.time;
            index.push(entry);
        }
        carried
    }
}

/// The pieces being walked, in stream order, and the pass's progress through them.
pub(super) struct ScanAhead<'s> {
    /// Each piece's start and walk, the next one first (reversed, so the next pops off).
    pending: Vec<(usize, ScopedJoinHandle<'s, Piece>)>,
    /// The piece the pass is in, once walked, with the first of its entries not behind the
    /// pass.
    current: Option<(Piece, usize)>,
}

impl<'s> ScanAhead<'s> {
    /// Starts walking the pieces of `data` that start at `starts` on threads of `scope`.
    pub(super) fn start<'env>(
        scope: &'s Scope<'s, 'env>,
        data: &'env [u8],
        info: &'env RecordParseInfo,
        starts: &[usize],
    ) -> Self {
        let mut pending: Vec<(usize, ScopedJoinHandle<'s, Piece>)> = starts
            .iter()
            .enumerate()
            .map(|(k, &start)| {
                let stop = starts.get(k + 1).copied().unwrap_or(data.len());
                (
                    start,
                    scope.spawn(move || walk_piece(data, start, stop, info)),
                )
            })
            .collect();
        pending.reverse();
        ScanAhead {
            pending,
            current: None,
        }
    }

    /// No piece: for a stream walked by the pass alone.
    pub(super) fn none() -> Self {
        ScanAhead {
            pending: Vec::new(),
            current: None,
        }
    }

    /// The position from which on the pass must ask [`ScanAhead::take_at`] at every record.
    pub(super) fn watch_from(&self) -> usize {
        match (&self.current, self.pending.last()) {
            (Some((piece, _)), _) => piece.start,
            (None, Some((start, _))) => *start,
            (None, None) => usize::MAX,
        }
    }

    /// Stops using the pieces: the pass met a record that changes how records are read.
    pub(super) fn abandon(&mut self) {
        self.current = None;
        self.pending.clear();
    }

    /// With the pass at a record start `pos` (at or past [`ScanAhead::watch_from`]): the
    /// piece's index from `pos` on, when the piece's walk reached `pos` too.
    pub(super) fn take_at(&mut self, pos: usize) -> Option<Taken> {
        loop {
            if self.current.is_none() {
                let (_, walk) = self.pending.pop()?;
                // A walk that panicked is a piece that found nothing.
                let piece = walk.join().ok()?;
                self.current = Some((piece, 0));
            }
            let (piece, next) = self.current.as_mut()?;
            if pos >= piece.end {
                // Past the piece without meeting it: the next one may meet the pass.
                self.current = None;
                continue;
            }
            while piece.entries.get(*next).is_some_and(|e| e.pos() < pos) {
                *next += 1;
            }
            if piece.entries.get(*next).is_some_and(|e| e.pos() == pos) {
                let (piece, from) = self.current.take()?;
                return Some(Taken {
                    entries: piece.entries,
                    from,
                    first_timed: piece.first_timed,
                    end: piece.end,
                });
            }
            return None;
        }
    }
}

/// The record at `pos`, when it is one a piece walks: whole, of a kind only indexed, its size
/// a multiple of 8.
fn walkable<'a>(data: &'a [u8], pos: usize, endian: Endian) -> Option<RawRecord<'a>> {
    let raw = RawRecord::split(data, pos, 0, endian).ok()?;
    (only_indexed(raw.kind) && raw.span % 8 == 0).then_some(raw)
}

/// The first position from `from` (in steps of 8, up to [`GUESS_BYTES`] on and before `stop`)
/// where [`GUESS_CHAIN`] walkable records follow one another.
fn guess_start(data: &[u8], from: usize, stop: usize, endian: Endian) -> Option<usize> {
    let last = stop.min(from.saturating_add(GUESS_BYTES));
    (from..last).step_by(8).find(|&start| {
        let mut pos = start;
        (0..GUESS_CHAIN).all(|_| match walkable(data, pos, endian) {
            Some(raw) => {
                pos += raw.span;
                true
            }
            None => false,
        })
    })
}

/// Walks the piece of `data` from a guessed record start at or past `from` until a record
/// starts at or past `stop` (or one the piece does not walk).
fn walk_piece(data: &[u8], from: usize, stop: usize, info: &RecordParseInfo) -> Piece {
    let endian = info.endian();
    let Some(start) = guess_start(data, from, stop, endian) else {
        return Piece {
            start: from,
            entries: Vec::new(),
            first_timed: 0,
            end: from,
        };
    };
    let mut entries = Vec::with_capacity((stop - start) / 64);
    let mut first_timed = None;
    let mut last_time = 0;
    let mut pos = start;
    while pos < stop {
        let Some(raw) = walkable(data, pos, endian) else {
            break;
        };
        if let Some(time) = info.quick_time(&raw) {
            last_time = time;
            first_timed.get_or_insert(entries.len());
        }
        entries.push(IndexEntry::new(last_time, pos, raw.kind));
        pos += raw.span;
    }
    Piece {
        start: from,
        first_timed: first_timed.unwrap_or(entries.len()),
        entries,
        end: pos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` records, FINISHED_ROUNDs (8 bytes) and SAMPLEs (24 bytes) by turns, and where
    /// each starts.
    fn records(count: usize) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for i in 0..count {
            starts.push(bytes.len());
            let (kind, size) = match i % 2 {
                0 => (rk::FINISHED_ROUND, 8u16),
                _ => (rk::SAMPLE, 24),
            };
            bytes.extend(kind.to_le_bytes());
            bytes.extend(0u16.to_le_bytes());
            bytes.extend(size.to_le_bytes());
            bytes.resize(bytes.len() + usize::from(size) - 8, 0xab);
        }
        (bytes, starts)
    }

    #[test]
    fn pieces_start_apart_at_multiples_of_eight() {
        assert_eq!(piece_starts(1000, 1, 10), Vec::<usize>::new());
        assert_eq!(piece_starts(1000, 4, 600), Vec::<usize>::new());
        assert_eq!(piece_starts(1000, 4, 300), [328, 664]);
        assert_eq!(piece_starts(1000, 4, 1), [248, 496, 744]);
        assert_eq!(piece_starts(1000, 4, 0), [248, 496, 744]);
    }

    // See: issue #13 (the pass takes a piece's index where the two walks meet)
    #[test]
    fn the_pass_takes_each_piece_where_it_meets_it() {
        let (bytes, starts) = records(3_000);
        let info = RecordParseInfo::new(Vec::new(), Endian::Little);
        let pieces = piece_starts(bytes.len(), 3, 64);
        assert_eq!(pieces.len(), 2);
        std::thread::scope(|scope| {
            let mut ahead = ScanAhead::start(scope, &bytes, &info, &pieces);
            let mut index = Vec::new();
            let mut pos = 0;
            let mut taken = 0;
            while pos < bytes.len() {
                if pos >= ahead.watch_from() {
                    if let Some(piece) = ahead.take_at(pos) {
                        pos = piece.end;
                        piece.append_to(&mut index, 0);
                        taken += 1;
                        continue;
                    }
                }
                let raw = RawRecord::split(&bytes, pos, 0, Endian::Little).unwrap();
                index.push(IndexEntry::new(0, pos, raw.kind));
                pos += raw.span;
            }
            assert_eq!(taken, 2, "both pieces taken");
            let positions: Vec<usize> = index.iter().map(|entry| entry.pos()).collect();
            assert_eq!(positions, starts);
            assert_eq!(
                index.iter().filter(|entry| entry.is_sample()).count(),
                1_500
            );
        });
    }

    #[test]
    fn a_piece_that_finds_no_records_is_passed_by() {
        // Bytes that never read as a record: the piece finds no start.
        let bytes = vec![0xffu8; 4096];
        let info = RecordParseInfo::new(Vec::new(), Endian::Little);
        std::thread::scope(|scope| {
            let mut ahead = ScanAhead::start(scope, &bytes, &info, &[2048]);
            assert_eq!(ahead.watch_from(), 2048);
            assert!(ahead.take_at(2056).is_none());
            assert_eq!(ahead.watch_from(), usize::MAX);
        });
    }
}
