//! Scanning a big file's records ahead, in parallel with the one pass over them.
//!
//! Walking the record headers is a chain: each record's size says where the next starts. The
//! pass cuts the stream into pieces of a few MiB and deals them out by turns: the pass walks
//! one piece of each turn itself, and each of a few helper threads walks one, from a guessed
//! record start. When the pass gets to a helper's piece, it takes the piece's index from the
//! first record start both walks reached: from there on the two walks are one, so the index is
//! the one the pass alone makes. A guess that never meets the pass (bytes that merely look
//! like records, records out of alignment) costs the pass nothing but walking the piece
//! itself, as it would anyway. Pieces walk only the records whose scan is their index entry
//! alone; at any other record the piece stops and the pass goes on.
//!
//! A helper walks at most two pieces ahead of the pass (its results wait in a channel of one):
//! the pages a walk reads stay mapped until the pass moves the input's window past them, so
//! helpers far ahead would hold the file in memory (a DWARF recording's is a gigabyte).

use std::sync::mpsc::{Receiver, sync_channel};
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

/// Helper threads at most: the pass takes their pieces' index and walks its own, so more
/// helpers than this would wait on it.
const MAX_HELPERS: usize = 3;

/// Records walked in the middle of a stream to see how large its records are.
const PROBE_RECORDS: usize = 256;
/// Records larger than this on average are few enough that the pass walks them fast alone,
/// and helpers would only add the cost of their threads: a DWARF recording's samples copy
/// kilobytes of stack each, and on a 200 MB one the pieces made the whole analysis 10%
/// slower.
const SMALL_RECORD_BYTES: usize = 1024;

/// Whether the records in the middle of `data` are small on average: the stream's records
/// are many for its size, and walking them in pieces pays.
pub(super) fn records_are_small(data: &[u8], endian: Endian) -> bool {
    let middle = (data.len() / 2) & !7;
    let Some(start) = guess_start(data, middle, data.len(), endian) else {
        return false;
    };
    let mut pos = start;
    let mut count = 0;
    while count < PROBE_RECORDS {
        let Some(raw) = walkable(data, pos, endian) else {
            break;
        };
        pos += raw.span;
        count += 1;
    }
    count > 0 && (pos - start) / count <= SMALL_RECORD_BYTES
}

/// How the pass deals out a stream: pieces of `piece_bytes` (a multiple of 8: records are
/// 8-byte aligned), `turn` of them per turn, the first of each turn the pass's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Deal {
    pub(super) piece_bytes: usize,
    pub(super) turn: usize,
}

impl Deal {
    /// The deal of a stream of `len` bytes on `threads` threads with pieces of about
    /// `piece_bytes`, or `None` when no helper would walk a piece (one thread, or fewer than
    /// two pieces).
    pub(super) fn of(len: usize, threads: usize, piece_bytes: usize) -> Option<Deal> {
        let piece_bytes = piece_bytes.max(8) & !7;
        let turn = threads.min(MAX_HELPERS + 1);
        (turn > 1 && len / piece_bytes >= 2).then_some(Deal { piece_bytes, turn })
    }

    /// Where piece `k` starts.
    fn start(&self, k: usize) -> usize {
        k.saturating_mul(self.piece_bytes)
    }

    /// Whether a helper walks piece `k` (else the pass does).
    fn helped(&self, k: usize) -> bool {
        k % self.turn != 0
    }
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
/// for the times of untimed records (a record without a time carries the one before it,
/// which the pass knows better: the piece's walk may have started inside a record).
struct Piece {
    entries: Vec<IndexEntry>,
    /// The entries whose records have no time of their own, in order.
    untimed: Vec<usize>,
    /// Where the piece's walk stopped: the end of its last record.
    end: usize,
}

/// A piece's index, to be taken by the pass from `entries[from]` on.
pub(super) struct Taken {
    piece: Piece,
    from: usize,
}

impl Taken {
    /// Where the pass goes on: the end of the piece's walk.
    pub(super) fn end(&self) -> usize {
        self.piece.end
    }

    /// Appends the taken entries to `index`, those before the first timed one at `last_time`
    /// (the time the pass's own walk carries); returns the time the pass carries on with.
    pub(super) fn append_to(self, index: &mut Vec<IndexEntry>, last_time: u64) -> u64 {
        let Piece {
            entries, untimed, ..
        } = self.piece;
        let mut untimed = untimed
            .into_iter()
            .skip_while(|&i| i < self.from)
            .peekable();
        let mut carried = last_time;
        let mut timed_yet = false;
        for (i, mut entry) in entries.into_iter().enumerate().skip(self.from) {
            if untimed.next_if_eq(&i).is_none() {
                timed_yet = true;
            } else if !timed_yet {
                entry.time = last_time;
            }
            carried = entry.time;
            index.push(entry);
        }
        carried
    }
}

/// The helpers' pieces, and the pass's progress through them.
pub(super) struct ScanAhead {
    deal: Option<Deal>,
    /// Per helper, its pieces in stream order.
    helpers: Vec<Receiver<Piece>>,
    /// The next helper's piece the pass gets to.
    next: usize,
    /// That piece, once walked, with the first of its entries not behind the pass.
    current: Option<(Piece, usize)>,
}

impl ScanAhead {
    /// Starts the helpers of `deal` over `data` on threads of `scope`; returns the pieces to
    /// come (none where a helper's thread cannot start) and the helpers' threads. Join those once the pieces are gone (each helper ends
    /// when its channel has no receiver): a scope only waits for its threads' closures, and a
    /// thread still ending after it (its thread-local storage being freed) reads as a leak to
    /// a leak checker.
    pub(super) fn start<'s, 'env>(
        scope: &'s Scope<'s, 'env>,
        data: &'env [u8],
        info: &'env RecordParseInfo,
        deal: Deal,
    ) -> (Self, Vec<ScopedJoinHandle<'s, ()>>) {
        let (mut helpers, mut threads) = (Vec::new(), Vec::new());
        for helper in 1..deal.turn {
            let (pieces, receiver) = sync_channel(1);
            let spawned = std::thread::Builder::new().spawn_scoped(scope, move || {
                let mut k = helper;
                while deal.start(k) < data.len() {
                    let stop = deal.start(k + 1).min(data.len());
                    // The pass has gone (it met a record that ends the pieces' use).
                    if pieces
                        .send(walk_piece(data, deal.start(k), stop, info))
                        .is_err()
                    {
                        break;
                    }
                    k += deal.turn;
                }
            });
            match spawned {
                Ok(thread) => {
                    helpers.push(receiver);
                    threads.push(thread);
                }
                // Where no more threads can be made (a limit on processes), the pass walks the
                // stream alone; the helpers already started end as their pieces lose their
                // receiver.
                Err(_) => return (Self::none(), threads),
            }
        }
        let ahead = ScanAhead {
            deal: Some(deal),
            helpers,
            next: 1,
            current: None,
        };
        (ahead, threads)
    }

    /// No piece: for a stream walked by the pass alone.
    pub(super) fn none() -> Self {
        ScanAhead {
            deal: None,
            helpers: Vec::new(),
            next: 0,
            current: None,
        }
    }

    /// The position from which on the pass must ask [`ScanAhead::take_at`] at every record.
    pub(super) fn watch_from(&self) -> usize {
        match self.deal {
            Some(deal) => deal.start(self.next),
            None => usize::MAX,
        }
    }

    /// Stops using the pieces: the pass met a record that changes how records are read.
    pub(super) fn abandon(&mut self) {
        self.deal = None;
        self.current = None;
        self.helpers.clear();
    }

    /// Moves on to the helper's piece after the current one.
    fn pass_piece(&mut self) {
        self.current = None;
        if let Some(deal) = self.deal {
            self.next += 1;
            while !deal.helped(self.next) {
                self.next += 1;
            }
        }
    }

    /// With the pass at a record start `pos` (at or past [`ScanAhead::watch_from`]): the
    /// piece's index from `pos` on, when the piece's walk reached `pos` too.
    pub(super) fn take_at(&mut self, pos: usize) -> Option<Taken> {
        loop {
            let deal = self.deal?;
            if self.current.is_none() {
                // A helper that ended (its thread panicked) has no more pieces.
                let Some(piece) = self
                    .helpers
                    .get(self.next % deal.turn - 1)
                    .and_then(|pieces| pieces.recv().ok())
                else {
                    self.abandon();
                    return None;
                };
                self.current = Some((piece, 0));
            }
            let (piece, next) = self.current.as_mut()?;
            if pos >= piece.end {
                // Past the piece without meeting it: the next one may meet the pass.
                self.pass_piece();
                if pos < self.watch_from() {
                    return None;
                }
                continue;
            }
            while piece.entries.get(*next).is_some_and(|e| e.pos() < pos) {
                *next += 1;
            }
            if piece.entries.get(*next).is_some_and(|e| e.pos() == pos) {
                let (piece, from) = self.current.take()?;
                self.pass_piece();
                return Some(Taken { piece, from });
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
            entries: Vec::new(),
            untimed: Vec::new(),
            end: from,
        };
    };
    let mut entries = Vec::with_capacity((stop - start) / 64);
    let mut untimed = Vec::new();
    let mut last_time = 0;
    let mut pos = start;
    while pos < stop {
        let Some(raw) = walkable(data, pos, endian) else {
            break;
        };
        match info.quick_time(&raw) {
            Some(time) => last_time = time,
            None => untimed.push(entries.len()),
        }
        entries.push(IndexEntry::new(last_time, pos, raw.kind));
        pos += raw.span;
    }
    Piece {
        entries,
        untimed,
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
    fn streams_of_two_pieces_or_more_are_dealt_to_helpers() {
        assert_eq!(Deal::of(1000, 1, 10), None);
        assert_eq!(Deal::of(1000, 4, 600), None);
        assert_eq!(
            Deal::of(1000, 4, 300),
            Some(Deal {
                piece_bytes: 296,
                turn: 4
            })
        );
        assert_eq!(Deal::of(1000, 64, 0).map(|deal| deal.turn), Some(4));
        let deal = Deal::of(1000, 3, 100).unwrap();
        let helped: Vec<bool> = (0..6).map(|k| deal.helped(k)).collect();
        assert_eq!(helped, [false, true, true, false, true, true]);
        assert_eq!(deal.start(2), 192);
    }

    // See: issue #13 (the pass takes a piece's index where the two walks meet)
    #[test]
    fn the_pass_takes_each_helpers_piece_where_it_meets_it() {
        let (bytes, starts) = records(3_000);
        let info = RecordParseInfo::new(Vec::new(), Endian::Little);
        for threads in [2, 3, 4] {
            let deal = Deal::of(bytes.len(), threads, 2_000).unwrap();
            let helped = (0..bytes.len().div_ceil(deal.piece_bytes))
                .filter(|&k| deal.helped(k))
                .count();
            std::thread::scope(|scope| {
                let (mut ahead, _threads) = ScanAhead::start(scope, &bytes, &info, deal);
                let mut index = Vec::new();
                let mut pos = 0;
                let mut taken = 0;
                while pos < bytes.len() {
                    if pos >= ahead.watch_from() {
                        if let Some(piece) = ahead.take_at(pos) {
                            pos = piece.end();
                            piece.append_to(&mut index, 0);
                            taken += 1;
                            continue;
                        }
                    }
                    let raw = RawRecord::split(&bytes, pos, 0, Endian::Little).unwrap();
                    index.push(IndexEntry::new(0, pos, raw.kind));
                    pos += raw.span;
                }
                assert_eq!(
                    taken, helped,
                    "every helper's piece taken, {threads} threads"
                );
                let positions: Vec<usize> = index.iter().map(|entry| entry.pos()).collect();
                assert_eq!(positions, starts);
                assert_eq!(
                    index.iter().filter(|entry| entry.is_sample()).count(),
                    1_500
                );
            });
        }
    }

    #[test]
    fn streams_of_large_records_are_left_to_the_pass() {
        let (small, _) = records(3_000);
        assert!(records_are_small(&small, Endian::Little));
        // Records of 4 KiB, as DWARF recordings' samples are.
        let mut large = Vec::new();
        for _ in 0..600 {
            large.extend(rk::SAMPLE.to_le_bytes());
            large.extend(0u16.to_le_bytes());
            large.extend(4096u16.to_le_bytes());
            large.resize(large.len() + 4088, 0);
        }
        assert!(!records_are_small(&large, Endian::Little));
        assert!(!records_are_small(&[0xff; 4096], Endian::Little));
    }

    // See: issue #13 (a walk that started inside a record carried a time the pass never saw)
    #[test]
    fn untimed_records_the_pass_takes_carry_the_passs_time_until_a_timed_one() {
        // A walk from inside a record: a timed record that is not one (at 8), then the pass's
        // records from 16 on: untimed, timed at 700, untimed.
        let entry = |time, pos| IndexEntry::new(time, pos, rk::FINISHED_ROUND);
        let piece = Piece {
            entries: vec![
                entry(500, 8),
                entry(500, 16),
                entry(700, 24),
                entry(700, 32),
            ],
            untimed: vec![1, 3],
            end: 40,
        };
        let mut index = vec![entry(100, 0)];
        let taken = Taken { piece, from: 1 };
        assert_eq!(taken.end(), 40);
        let carried = taken.append_to(&mut index, 100);
        let times: Vec<(u64, usize)> = index.iter().map(|e| (e.time, e.pos())).collect();
        assert_eq!(times, [(100, 0), (100, 16), (700, 24), (700, 32)]);
        assert_eq!(carried, 700);
    }

    #[test]
    fn a_piece_that_finds_no_records_is_passed_by() {
        // Bytes that never read as a record: the helper's piece finds no start.
        let bytes = vec![0xffu8; 4096];
        let info = RecordParseInfo::new(Vec::new(), Endian::Little);
        let deal = Deal::of(bytes.len(), 2, 2048).unwrap();
        std::thread::scope(|scope| {
            let (mut ahead, _threads) = ScanAhead::start(scope, &bytes, &info, deal);
            assert_eq!(ahead.watch_from(), 2048);
            assert!(ahead.take_at(2056).is_none());
            assert_eq!(ahead.watch_from(), 6144, "on to the next helper's piece");
            ahead.abandon();
            assert_eq!(ahead.watch_from(), usize::MAX);
        });
    }
}
