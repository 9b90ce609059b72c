//! The replay in shards of consecutive records, replayed in parallel: one pass over the file
//! follows only the side-band records (and the samples that end an exec), and snapshots the
//! address spaces where each shard starts; each shard then replays its records from its
//! snapshot on the thread pool (decoding, chain dedup, locating), and the shards merge in time
//! order into what one replay makes: the same threads, locations and chains, first seen in the
//! same order (see [`ChainTable::append`]), so the profile is the same to the byte.
//!
//! Samples that need DWARF unwinding go through the one replay (see [`super::unwinding`]).

use std::sync::mpsc;

use anyhow::{Result, anyhow};
use kprof_perfdata::{PerfFile, SortedRecords};

use super::chain_table::{ChainId, ChainTable};
use super::options::AnalysisOptions;
use super::replay::{PendingSample, Replay, Replayed, Threads};

/// Records per shard. Small, so that each shard's tables (its recorded stacks, chains and
/// locations) stay in the CPU's cache while it replays: on a machine-wide recording of a build
/// (889k samples), shards of 8k records used a fifth less CPU time than shards of 83k (the
/// replay's tables then outgrow the cache), for 8% more chains, which stacks seen by several
/// shards add once per shard (see `benches/README.md`, "Small shards", issue #13 point 2).
const SHARD_RECORDS: usize = 8 * 1024;
/// Shards replayed or waiting, per worker thread: the shards merge in time order, so one slow
/// shard holds up the merge; enough others queued keep the threads busy meanwhile (with two
/// in flight per thread, one CPU waited a tenth of the replay).
const SHARDS_IN_FLIGHT_PER_THREAD: usize = 6;
/// Records in the shards replayed or waiting, at most (but for two shards per thread): what is
/// held of the file (the pages below the oldest shard still replaying are dropped) and of the
/// shards' tables, on machines with many threads.
const RECORDS_IN_FLIGHT: usize = 512 * 1024;

/// Set to a number, shards of that many records whatever the file's size and the pool's: for
/// tests that compare the sharded replay with the one replay on small files.
const FORCED_SHARD_RECORDS_VAR: &str = "KPROF_SHARD_RECORDS";

fn forced_shard_records() -> Option<usize> {
    std::env::var(FORCED_SHARD_RECORDS_VAR)
        .ok()?
        .parse()
        .ok()
        .filter(|&records| records > 0)
}

/// True when replaying `records` records in shards pays: a thread pool to run them, of which
/// the caller is not one (it waits for the shards), and enough records for two shards.
pub fn pays(records: usize) -> bool {
    if rayon::current_thread_index().is_some() {
        return false;
    }
    forced_shard_records().is_some()
        || (rayon::current_num_threads() > 1 && records >= 2 * SHARD_RECORDS)
}

/// How many records each shard replays.
pub fn shard_records() -> usize {
    forced_shard_records().unwrap_or(SHARD_RECORDS)
}

/// How many shards of `per_shard` records may be replayed or waiting at once on `threads`
/// threads: [`SHARDS_IN_FLIGHT_PER_THREAD`] per thread, within [`RECORDS_IN_FLIGHT`] records,
/// but never fewer than two per thread (and two more, read ahead by the side-band pass).
fn shards_in_flight(threads: usize, per_shard: usize) -> usize {
    (SHARDS_IN_FLIGHT_PER_THREAD * threads + 2)
        .min((RECORDS_IN_FLIGHT / per_shard.max(1)).max(2 * threads + 2))
}

/// Replays `records` (the file's, in time order, none to unwind) in shards of `per_shard`
/// records on the current thread pool; tells `done_below` from time to time a file offset
/// below which no record is read any more. Must not run on a thread of the pool: it waits for
/// the shards.
pub fn replay_sharded<'f>(
    file: &'f PerfFile<'f>,
    options: &AnalysisOptions,
    records: SortedRecords<'f>,
    per_shard: usize,
    done_below: &dyn Fn(u64),
) -> Result<Replayed<'f>> {
    let per_shard = per_shard.max(1);
    let in_flight = shards_in_flight(rayon::current_num_threads(), per_shard);
    // At most one sample per record.
    let mut merged = Merged::new(options, records.len());
    let mut side_band = Replay::new(file, options, None, 0).side_band_only();
    let (sender, receiver) = mpsc::channel::<(usize, Result<Replayed<'f>>)>();
    let mut finished: Vec<Option<Result<Replayed<'f>>>> = Vec::new();
    let mut floors: Vec<u64> = Vec::new();
    let side_band_result = rayon::in_place_scope(|pool| -> Result<Replayed<'f>> {
        let mut cursor = records;
        let mut side_band_error = None;
        loop {
            let start = cursor.clone();
            let floor = cursor.unread_floor();
            let mut shard = side_band.snapshot(per_shard);
            let before = cursor.len();
            let outcome = side_band.run_some(&mut cursor, per_shard, None, pool, &|_| {});
            // The shard replays the records the side-band pass read, the failing one
            // included: it fails there too, unless a sample before it failed first.
            let taken = before - cursor.len();
            if taken == 0 {
                break;
            }
            let index = floors.len();
            floors.push(floor);
            finished.push(None);
            let sender = sender.clone();
            pool.spawn(move |pool| {
                let mut start = start;
                let result = shard
                    .run_some(&mut start, taken, None, pool, &|_| {})
                    .and_then(|_| shard.finish(pool));
                // The receiver waits for every shard; it is gone only if it failed.
                let _ = sender.send((index, result));
            });
            if let Err(error) = outcome {
                side_band_error = Some(error);
                break;
            }
            // Hold at most `in_flight` shards of the file at once.
            while floors.len() - merged.shards >= in_flight {
                merged.wait_and_merge(&receiver, &mut finished, &floors, done_below)?;
            }
        }
        while merged.shards < floors.len() {
            merged.wait_and_merge(&receiver, &mut finished, &floors, done_below)?;
        }
        match side_band_error {
            Some(error) => Err(error),
            None => side_band.finish(pool),
        }
    });
    let side_band = side_band_result?;
    merged.chains.settle();
    Ok(Replayed {
        spaces: side_band.spaces,
        samples: merged.samples,
        chains: merged.chains,
        threads: merged.threads.into_vec(),
        traces: merged.traces,
        records: side_band.records,
        lost: side_band.lost,
        cgroups: side_band.cgroups,
    })
}

/// The shards replayed so far, merged in time order.
struct Merged<'f> {
    /// How many shards are merged.
    shards: usize,
    chains: ChainTable<'f>,
    threads: Threads,
    samples: Vec<PendingSample>,
    traces: Vec<Option<Box<str>>>,
}

impl<'f> Merged<'f> {
    fn new(options: &AnalysisOptions, samples: usize) -> Self {
        Merged {
            shards: 0,
            chains: ChainTable::new(options.inline || options.lines, options.sample_addresses),
            threads: Threads::default(),
            samples: Vec::with_capacity(samples),
            traces: Vec::new(),
        }
    }

    /// Waits for one more shard to finish, then merges every finished shard that comes next
    /// in time order, telling `done_below` where the oldest unmerged shard starts.
    fn wait_and_merge(
        &mut self,
        receiver: &mpsc::Receiver<(usize, Result<Replayed<'f>>)>,
        finished: &mut [Option<Result<Replayed<'f>>>],
        floors: &[u64],
        done_below: &dyn Fn(u64),
    ) -> Result<()> {
        let (index, result) = receiver
            .recv()
            .map_err(|_| anyhow!("internal error: a replay shard vanished"))?;
        if let Some(slot) = finished.get_mut(index) {
            *slot = Some(result);
        }
        while let Some(result) = finished.get_mut(self.shards).and_then(Option::take) {
            self.merge(result?);
            self.shards += 1;
            done_below(floors.get(self.shards).copied().unwrap_or(u64::MAX));
        }
        Ok(())
    }

    /// Appends a shard's samples, chains and threads, which come after all merged so far.
    fn merge(&mut self, shard: Replayed<'f>) {
        let chain_offset = self.chains.append(shard.chains);
        let threads = self.threads.absorb(shard.threads);
        self.samples.extend(shard.samples.into_iter().map(|sample| {
            PendingSample {
                thread: threads
                    .get(sample.thread as usize)
                    .copied()
                    .unwrap_or(sample.thread),
                chain: sample.chain.map(|chain| ChainId(chain.0 + chain_offset)),
                ..sample
            }
        }));
        self.traces.extend(shard.traces);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue #13 points 1 and 2 (threads kept busy, what is held of the file bounded)
    #[test]
    fn shards_in_flight_keep_each_thread_busy_within_the_records_bound() {
        // Two threads: six shards each, and two read ahead.
        assert_eq!(shards_in_flight(2, SHARD_RECORDS), 14);
        // Sixteen: held to the records bound.
        assert_eq!(
            shards_in_flight(16, SHARD_RECORDS),
            RECORDS_IN_FLIGHT / SHARD_RECORDS
        );
        for threads in [1, 2, 4, 16, 64, 256] {
            for per_shard in [1, 3, SHARD_RECORDS, 100_000, 1 << 20] {
                let shards = shards_in_flight(threads, per_shard);
                assert!(shards >= 2 * threads + 2, "{threads} {per_shard}");
                assert!(
                    shards * per_shard <= RECORDS_IN_FLIGHT || shards == 2 * threads + 2,
                    "{threads} {per_shard}: {shards}"
                );
            }
        }
    }

    // See: issue #13 (byte-identical output whatever the shards)
    #[test]
    fn shards_of_any_size_merge_into_the_one_replay() {
        let bytes = super::super::replay::tests::recording();
        let file = PerfFile::parse(&bytes).unwrap();
        let options = AnalysisOptions {
            trace_fields: true,
            ..AnalysisOptions::default()
        };
        let one = {
            let records = file.sorted_records().unwrap();
            let replay = Replay::new(&file, &options, None, records.len());
            rayon::in_place_scope(|pool| replay.run(records, None, pool, &|_| {})).unwrap()
        };
        for per_shard in 1..=4 {
            let records = file.sorted_records().unwrap();
            let sharded = replay_sharded(&file, &options, records, per_shard, &|_| {}).unwrap();
            assert_eq!(sharded.threads, one.threads, "{per_shard}");
            assert_eq!(sharded.traces, one.traces);
            assert_eq!(sharded.records, one.records);
            assert_eq!(sharded.lost.samples(), one.lost.samples());
            assert_eq!(sharded.chains.locations(), one.chains.locations());
            let chains = |r: &Replayed<'_>| -> Vec<_> {
                r.samples
                    .iter()
                    .map(|s| {
                        let chain = s.chain.unwrap();
                        (
                            s.thread,
                            s.time,
                            s.period,
                            r.chains.chain(chain).to_vec(),
                            r.chains.is_broken(chain),
                        )
                    })
                    .collect()
            };
            assert_eq!(chains(&sharded), chains(&one), "{per_shard}");
        }
    }
}
