//! The distinct stacks of a profile before symbolization: each sample's chain of locations,
//! stored once per distinct chain and found again by what makes two stacks identical (the
//! recorded bytes, where finding them again pays: see `RecordedTrial`; or the unwound
//! addresses), and each distinct location once (every address
//! outside the mappings as one, and once the replay is done, the addresses one symbol names
//! as one). Symbolizing then costs one lookup per distinct location, not per frame of every
//! sample.

use hashbrown::HashTable;
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};
use std::hash::{BuildHasher, Hash};

use kprof_symbolizer::{AddressSpaces, Avma, Location, ModuleId, ModuleOffset};

use super::chains::{ChainInput, ChainShape, StackAddress, chain_addresses};
use crate::hash_shares::{first_of_equal, ranks_of_firsts};

/// A distinct location, numbered in the order first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocationId(pub u32);

/// A distinct chain, numbered in the order first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainId(pub u32);

/// Which state of a process's address space, and of the kernel's, a sample saw: equal for two
/// samples only when nothing was mapped, exec'd or forked over in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpaceState {
    /// The sampled process.
    pub pid: u32,
    /// How many times its mappings changed before the sample.
    pub generation: u64,
    /// How many times the kernel's mappings changed before the sample.
    pub kernel_generation: u64,
}

impl SpaceState {
    /// The key the unwinder's step cache knows this process state by (see
    /// `ModuleSource::space_key`): the pid and the low half of its generation.
    pub fn unwinder_key(self) -> u64 {
        u64::from(self.pid) << 32 | (self.generation & 0xffff_ffff)
    }
}

/// What makes two recorded stacks identical before symbolization.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordedChainKey<'f> {
    /// The address space the sample saw.
    pub space: SpaceState,
    /// Where the sample was taken (`CpuMode` as a number).
    pub cpumode: u8,
    /// The sampled ip when there is no callchain, else 0.
    pub ip: u64,
    /// The raw callchain.
    pub callchain: &'f [u8],
    /// The raw LBR call stack entries, when the event records them (else empty).
    pub call_stack: &'f [u8],
}

/// A recorded chain in the table of recorded chains: its key's hash, folded to 32 bits, and
/// where its key is in [`ChainTable::recorded_keys`]. Eight bytes, where the key itself is
/// eighty: most recorded chains are new, and each new one is written at a random place of
/// the table.
#[derive(Clone, Copy)]
struct RecordedEntry {
    hash: u32,
    key: u32,
}

/// Recorded stacks looked up in a trial of [`RecordedTrial`].
const RECORDED_TRIAL: u32 = 1024;

/// Whether finding recorded stacks again pays, judged on the first [`RECORDED_TRIAL`] lookups
/// after the table starts or forgets them: it pays when at least one in four was found. A
/// recorded stack not looked up becomes a new chain over the same locations, so the profile is
/// the same either way. On a machine-wide recording of a build, a sixth of the samples repeat
/// a stack byte for byte (frame-pointer walks read on into stack data), and keeping and
/// probing every stack cost more than locating the repeats again, most of all in one replay's
/// big table (issue #13, `benches/README.md`). One program's stacks repeat nearly always.
struct RecordedTrial {
    /// Lookups left in the trial (0: judged).
    left: u32,
    /// Stacks found so far in the trial.
    found: u32,
    /// Recorded stacks are looked up before they are added.
    pays: bool,
}

impl RecordedTrial {
    fn new() -> Self {
        RecordedTrial {
            left: RECORDED_TRIAL,
            found: 0,
            pays: true,
        }
    }

    /// Counts a lookup; false once the trial shows that finding stacks does not pay.
    fn looked_up(&mut self, found: bool) -> bool {
        if self.left > 0 {
            self.left -= 1;
            self.found += u32::from(found);
            if self.left == 0 {
                self.pays = self.found * 4 >= RECORDED_TRIAL;
            }
        }
        self.pays
    }
}

/// A distinct location in the table of locations: its key's hash folded to 32 bits, and its id.
#[derive(Clone, Copy)]
struct LocationEntry {
    hash: u32,
    id: LocationId,
}

/// A 64-bit hash folded to the 32 bits the tables keep.
fn fold_hash(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
}

/// The tables' hash of a folded hash: all of its bits mixed into the top ones, which the
/// table compares first.
fn spread_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Where unwound stacks can be the same: one address space state and one chain shape.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct WalkedChainKey {
    space: SpaceState,
    shape: ChainShape,
}

/// A location as a hashable key, with the distance (wrapping) from it to the address shown
/// for it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum LocationKey {
    InModule {
        module: ModuleId,
        offset: ModuleOffset,
        shown_delta: u64,
    },
    Unmapped {
        address: Avma,
        shown_delta: u64,
    },
}

impl LocationKey {
    fn new(location: Location, shown_delta: u64) -> Self {
        match location {
            Location::Module { module, offset } => LocationKey::InModule {
                module,
                offset,
                shown_delta,
            },
            Location::Unmapped(address) => LocationKey::Unmapped {
                address,
                shown_delta,
            },
        }
    }
}

/// One frame as the [`FrameCache`] knows it: the address space state that places it (the
/// kernel's for kernel frames, which every process shares; the process's for user frames), its
/// lookup address and the distance to its shown address.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FrameKey {
    /// The process (0 for kernel frames).
    pid: u32,
    kernel: bool,
    /// The process's generation, or the kernel's for kernel frames.
    generation: u64,
    lookup: u64,
    shown_delta: u64,
}

impl FrameKey {
    fn new(space: SpaceState, address: StackAddress, shown_delta: u64) -> Self {
        let (pid, generation) = if address.kernel {
            (0, space.kernel_generation)
        } else {
            (space.pid, space.generation)
        };
        FrameKey {
            pid,
            kernel: address.kernel,
            generation,
            lookup: address.lookup,
            shown_delta,
        }
    }

    /// Its slot in a [`FrameCache`] of `1 << bits` slots.
    fn slot(&self, bits: u32) -> usize {
        const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
        let spread = (self.lookup ^ self.shown_delta.rotate_left(17))
            .wrapping_add((u64::from(self.pid) << 40) ^ (self.generation << 20))
            .wrapping_mul(MIX);
        (spread >> (64 - bits)) as usize
    }
}

/// The locations of the frames located last, one per slot, found by their [`FrameKey`]. New
/// chains mostly repeat the frames of recent ones (the same callers in the same processes,
/// the same kernel paths), and a hit here saves both the search of the address space and the
/// probe of the big location table, whose entries are far apart in memory. Two samples that
/// see the same address space state and frame get the same location, so a hit gives what a
/// miss would. Hand-written: a direct-mapped cache is a few lines, and no crate keeps one
/// without a hash map's bookkeeping.
struct FrameCache {
    slots: Vec<Option<(FrameKey, LocationId)>>,
}

impl FrameCache {
    /// log2 of the slots: 4k slots of 40 bytes, well inside a core's L2 cache (on a
    /// machine-wide recording of a build, 58% of the new chains' frames hit).
    const BITS: u32 = 12;

    fn new() -> Self {
        FrameCache { slots: Vec::new() }
    }

    fn get(&self, key: &FrameKey) -> Option<LocationId> {
        match self.slots.get(key.slot(Self::BITS)) {
            Some(Some((known, id))) if known == key => Some(*id),
            _ => None,
        }
    }

    fn insert(&mut self, key: FrameKey, id: LocationId) {
        if self.slots.is_empty() {
            self.slots = vec![None; 1 << Self::BITS];
        }
        if let Some(slot) = self.slots.get_mut(key.slot(Self::BITS)) {
            *slot = Some((key, id));
        }
    }
}

/// A run of chains with consecutive ids: a table's own, or those another table brought
/// (see [`ChainTable::append`]).
struct ChainSegment {
    /// The id of its first chain.
    first: u32,
    /// Leaf-first locations of its chains, flattened.
    locations: Vec<LocationId>,
    /// Per chain: where its locations start in `locations`, and how many.
    ranges: Vec<(u32, u32)>,
    /// Until [`ChainTable::settle`], for chains another table brought: where that table's
    /// locations start in this table's list, which holds them as they came.
    appended_at: Option<u32>,
}

impl ChainSegment {
    fn starting_at(first: u32) -> Self {
        ChainSegment {
            first,
            locations: Vec::new(),
            ranges: Vec::new(),
            appended_at: None,
        }
    }
}

/// The distinct chains and locations of a profile.
pub struct ChainTable<'f> {
    /// Look up callers at `ra - 1` (inline frames and lines need the call instruction).
    call_site_lookup: bool,
    /// Keep each sample's own addresses apart (see `AnalysisOptions::sample_addresses`).
    sample_addresses: bool,
    /// Distinct locations, each with the distance (wrapping) from it to the address shown
    /// for it: 0 unless samples keep their addresses.
    locations: Vec<(Location, u64)>,
    /// The distinct locations by the hash of their key (see [`RecordedEntry`] for why so small).
    location_ids: HashTable<LocationEntry>,
    /// The one location of every address outside the mappings, unless samples keep their
    /// addresses: see [`ChainTable::intern_location`].
    unmapped: Option<LocationId>,
    /// Every distinct chain, in runs: the table's own, and each appended table's.
    segments: Vec<ChainSegment>,
    /// Recorded chains, by the hash of their key.
    recorded: HashTable<RecordedEntry>,
    /// The key of every recorded chain, in the order first seen, with its chain.
    recorded_keys: Vec<(RecordedChainKey<'f>, ChainId)>,
    /// Whether recorded chains are looked up at all.
    recorded_trial: RecordedTrial,
    /// Unwound chains by where they can be equal, then by their leaf-first addresses:
    /// unwound stacks repeat as much as recorded ones, once walked.
    walked: HashMap<WalkedChainKey, HashMap<Box<[StackAddress]>, ChainId>>,
    /// Per distinct chain: whether its callchain was corrupt, or its user part is a
    /// frame-pointer chain.
    shapes: Vec<ChainShape>,
    /// Scratch: the addresses of the chain being added.
    addresses: Vec<StackAddress>,
    /// The locations of recently located frames.
    frames: FrameCache,
}

impl<'f> ChainTable<'f> {
    /// An empty table; `call_site_lookup` and `sample_addresses` as in the analysis options.
    pub fn new(call_site_lookup: bool, sample_addresses: bool) -> Self {
        ChainTable {
            call_site_lookup,
            sample_addresses,
            locations: Vec::new(),
            location_ids: HashTable::new(),
            unmapped: None,
            segments: Vec::new(),
            recorded: HashTable::new(),
            recorded_keys: Vec::new(),
            recorded_trial: RecordedTrial::new(),
            walked: HashMap::default(),
            shapes: Vec::new(),
            addresses: Vec::new(),
            frames: FrameCache::new(),
        }
    }

    /// Makes room for the chains and locations of `samples` more samples, so that the tables
    /// are not rehashed (rehashing a recorded chain's key reads all its bytes again) and the
    /// recorded keys (88 bytes each) and locations are not copied as they grow.
    pub fn reserve(&mut self, samples: usize) {
        self.recorded
            .reserve(samples, |entry| spread_hash(entry.hash));
        self.recorded_keys.reserve(samples);
        self.location_ids
            .reserve(samples, |entry| spread_hash(entry.hash));
        self.locations.reserve(samples);
    }

    /// The chain of a recorded stack (`input`, identified by `key`), located in `spaces` the
    /// first time it is seen.
    pub fn recorded(
        &mut self,
        spaces: &AddressSpaces,
        key: RecordedChainKey<'f>,
        input: &ChainInput<'_>,
    ) -> ChainId {
        if !self.recorded_trial.pays {
            return self.add_recorded(spaces, key.space, input);
        }
        // One hash of the key, found or not: it holds the whole callchain.
        let hash = fold_hash(FxBuildHasher.hash_one(key));
        let keys = &self.recorded_keys;
        let known = self
            .recorded
            .find(spread_hash(hash), |entry| {
                entry.hash == hash
                    && keys
                        .get(entry.key as usize)
                        .is_some_and(|(known, _)| *known == key)
            })
            .and_then(|entry| keys.get(entry.key as usize));
        let known = known.map(|&(_, id)| id);
        if !self.recorded_trial.looked_up(known.is_some()) {
            // Not worth it: the stacks kept so far are let go of, and this one is not kept.
            self.recorded = HashTable::new();
            self.recorded_keys = Vec::new();
            return known.unwrap_or_else(|| self.add_recorded(spaces, key.space, input));
        }
        if let Some(id) = known {
            return id;
        }
        let next = ChainId(self.chain_count() as u32);
        self.recorded.insert_unique(
            spread_hash(hash),
            RecordedEntry {
                hash,
                key: self.recorded_keys.len() as u32,
            },
            |entry| spread_hash(entry.hash),
        );
        self.recorded_keys.push((key, next));
        let id = self.add_recorded(spaces, key.space, input);
        debug_assert_eq!(id, next);
        id
    }

    /// A new chain for the recorded stack `input` of a sample that saw `space`.
    fn add_recorded(
        &mut self,
        spaces: &AddressSpaces,
        space: SpaceState,
        input: &ChainInput<'_>,
    ) -> ChainId {
        let mut addresses = std::mem::take(&mut self.addresses);
        addresses.clear();
        let shape = chain_addresses(input, None, self.call_site_lookup, &mut addresses);
        let id = self.add(spaces, space, &addresses, shape);
        self.addresses = addresses;
        id
    }

    /// The chain of an unwound stack of a sample that saw `space`: its leaf-first `addresses`
    /// and their `shape`, located in `spaces` the first time they are seen.
    pub fn walked(
        &mut self,
        spaces: &AddressSpaces,
        space: SpaceState,
        addresses: &[StackAddress],
        shape: ChainShape,
    ) -> ChainId {
        let key = WalkedChainKey { space, shape };
        let known = self
            .walked
            .get(&key)
            .and_then(|chains| chains.get(addresses))
            .copied();
        if let Some(id) = known {
            return id;
        }
        let id = self.add(spaces, space, addresses, shape);
        self.walked
            .entry(key)
            .or_default()
            .insert(addresses.into(), id);
        id
    }

    /// Locates `addresses` in the address space of `space` and stores them as a new distinct
    /// chain.
    fn add(
        &mut self,
        spaces: &AddressSpaces,
        space: SpaceState,
        addresses: &[StackAddress],
        shape: ChainShape,
    ) -> ChainId {
        let id = ChainId(self.chain_count() as u32);
        if self
            .segments
            .last()
            .is_none_or(|last| last.appended_at.is_some())
        {
            self.segments.push(ChainSegment::starting_at(id.0));
        }
        // The segment stays in place: moving it out and back per chain took a fifth of this
        // function's samples in a profile of a machine-wide recording (issue #13).
        let start = self.segments.last().map_or(0, |s| s.locations.len()) as u32;
        for &address in addresses {
            let location = self.location_id(spaces, space, address);
            if let Some(segment) = self.segments.last_mut() {
                segment.locations.push(location);
            }
        }
        if let Some(segment) = self.segments.last_mut() {
            let len = segment.locations.len() as u32 - start;
            segment.ranges.push((start, len));
        }
        self.shapes.push(shape);
        id
    }

    /// The location of `address` in the address space of `space`.
    fn location_id(
        &mut self,
        spaces: &AddressSpaces,
        space: SpaceState,
        address: StackAddress,
    ) -> LocationId {
        let shown_delta = if self.sample_addresses {
            address.shown.wrapping_sub(address.lookup)
        } else {
            0
        };
        let frame = FrameKey::new(space, address, shown_delta);
        if let Some(id) = self.frames.get(&frame) {
            return id;
        }
        let location = spaces.locate(space.pid, Avma(address.lookup), address.kernel);
        let id = self.intern_location(location, shown_delta);
        self.frames.insert(frame, id);
        id
    }

    /// The id of `location` (shown `shown_delta` away), added at the end when new.
    ///
    /// Every address outside the mappings shows as the one frame `[unknown]`, unless samples
    /// keep their addresses, so one location, the first such address seen, stands for them
    /// all. On a machine-wide `-g` recording they are mostly what frame-pointer walks read
    /// through code built without frame pointers, nearly all distinct: two thirds of the
    /// distinct addresses of a build's recording, each otherwise stored, merged from its
    /// shard, symbolized and walked through on its own (issue #13).
    fn intern_location(&mut self, location: Location, shown_delta: u64) -> LocationId {
        if let (Location::Unmapped(_), false) = (location, self.sample_addresses) {
            if let Some(id) = self.unmapped {
                return id;
            }
            let id = LocationId(self.locations.len() as u32);
            self.locations.push((location, shown_delta));
            self.unmapped = Some(id);
            return id;
        }
        let key = LocationKey::new(location, shown_delta);
        let hash = fold_hash(FxBuildHasher.hash_one(key));
        let locations = &self.locations;
        let known = self.location_ids.find(spread_hash(hash), |entry| {
            entry.hash == hash
                && locations
                    .get(entry.id.0 as usize)
                    .is_some_and(|&(known, delta)| LocationKey::new(known, delta) == key)
        });
        if let Some(entry) = known {
            return entry.id;
        }
        let id = LocationId(self.locations.len() as u32);
        self.locations.push((location, shown_delta));
        self.location_ids
            .insert_unique(spread_hash(hash), LocationEntry { hash, id }, |entry| {
                spread_hash(entry.hash)
            });
        id
    }

    /// Appends the chains of `other` (a table of later samples, made with the same options)
    /// after this table's, in their order; returns how far `other`'s [`ChainId`]s move. Chains
    /// are not merged: equal chains of two tables stay two ids with the same locations. The
    /// table takes no more chains of its own afterwards (see [`ChainTable::finish_adding`]).
    ///
    /// Nothing is looked up here: `other`'s locations and chains are kept as they are, and
    /// [`ChainTable::settle`] makes the locations distinct again and renumbers the chains, on
    /// every core. Looking each location up here, in a table that outgrows the cache, took
    /// a tenth of a second on the one thread that merges shards (issue #13 point 2).
    pub fn append(&mut self, mut other: ChainTable<'f>) -> u32 {
        other.settle();
        self.finish_adding();
        let appended_at = self.locations.len() as u32;
        self.locations.append(&mut other.locations);
        let offset = self.chain_count() as u32;
        for mut segment in other.segments {
            segment.first += offset;
            segment.appended_at = Some(appended_at);
            self.segments.push(segment);
        }
        self.shapes.extend(other.shapes);
        offset
    }

    /// Makes the locations distinct again after [`ChainTable::append`], as looking each up in
    /// order would have (the first of equal locations kept, where it was first seen; every
    /// address outside the mappings one location, unless samples keep their addresses), and
    /// renumbers the chains, on the thread pool: no chain can be read before.
    pub fn settle(&mut self) {
        if self
            .segments
            .iter()
            .all(|segment| segment.appended_at.is_none())
        {
            return;
        }
        let sample_addresses = self.sample_addresses;
        let locations = std::mem::take(&mut self.locations);
        let key_of = |index: usize| {
            let &(location, shown_delta) = locations.get(index)?;
            Some(match location {
                Location::Unmapped(_) if !sample_addresses => LocationKey::Unmapped {
                    address: Avma(0),
                    shown_delta: 0,
                },
                _ => LocationKey::new(location, shown_delta),
            })
        };
        let first_of = first_of_equal(locations.len(), key_of);
        self.locations = locations;
        self.keep_firsts(&first_of);
    }

    /// Makes the locations that `keys` (one per location of this settled table, in order)
    /// gives one key one location, the first of them, and renumbers the chains on the pool; a
    /// key of `None` keeps its location apart. Returns, per location kept, how many it stands
    /// for. For locations known to show the same frames (one symbol names them), so that each
    /// is symbolized once and the chains through them share their callers' stacks. The table
    /// takes no more chains afterwards (see [`ChainTable::finish_adding`]).
    pub fn merge_locations<K: Eq + Hash + Sync>(&mut self, keys: Vec<Option<K>>) -> Vec<u32> {
        debug_assert!(
            self.segments.iter().all(|s| s.appended_at.is_none()),
            "locations merged before settle()"
        );
        self.finish_adding();
        let first_of = first_of_equal(keys.len(), |index| keys.get(index)?.as_ref());
        drop(keys);
        let new_ids = self.keep_firsts(&first_of);
        let mut stands_for = vec![0u32; self.locations.len()];
        for id in new_ids {
            if let Some(count) = stands_for.get_mut(id as usize) {
                *count += 1;
            }
        }
        stands_for
    }

    /// Keeps, of the locations in this table's list, those `first_of` (per location, the first
    /// equal to it) gives as firsts, numbered in order, and renumbers the chains on the pool,
    /// those appended but not settled included. Returns, per location of the list before, its
    /// number now.
    fn keep_firsts(&mut self, first_of: &[u32]) -> Vec<u32> {
        let new_ids = ranks_of_firsts(first_of);
        let unsettled = self
            .segments
            .iter()
            .any(|segment| segment.appended_at.is_some());
        let kept_all = first_of
            .iter()
            .enumerate()
            .all(|(index, &first)| first as usize == index);
        if kept_all && !unsettled {
            return new_ids;
        }
        // Kept in place: a new list would be a fresh allocation to fault in. What is left over
        // is handed back (shrinking a large allocation only unmaps its tail).
        let mut index = 0;
        self.locations.retain(|_| {
            let first = first_of
                .get(index)
                .is_none_or(|&first| first as usize == index);
            index += 1;
            first
        });
        self.locations.shrink_to_fit();
        self.segments.par_iter_mut().for_each(|segment| {
            let at = segment.appended_at.take().unwrap_or(0);
            for id in &mut segment.locations {
                if let Some(&new_id) = new_ids.get((at + id.0) as usize) {
                    *id = LocationId(new_id);
                }
            }
        });
        new_ids
    }

    /// Forgets which recorded stacks were seen: their keys point into the file, and finding a
    /// stack again reads them, which keeps the pages of every stack's first sample in memory.
    /// A stack seen again becomes a new chain over the same locations, as in a later shard
    /// (see [`ChainTable::append`]): the profile is the same.
    pub fn forget_recorded(&mut self) {
        self.recorded.clear();
        self.recorded_keys.clear();
        self.recorded_trial = RecordedTrial::new();
    }

    /// Whether some recorded stack, found again, would read the file (see
    /// [`ChainTable::forget_recorded`]).
    pub fn holds_recorded(&self) -> bool {
        !self.recorded_keys.is_empty()
    }

    /// Lets go of what finds chains and locations, once none is added any more (the chains
    /// and locations stay).
    pub fn finish_adding(&mut self) {
        self.recorded = HashTable::new();
        self.recorded_keys = Vec::new();
        self.walked = HashMap::default();
        self.location_ids = HashTable::new();
        self.addresses = Vec::new();
        self.frames = FrameCache::new();
    }

    /// Every distinct location, by [`LocationId`], with the distance to its shown address (of a
    /// settled table: see [`ChainTable::settle`]).
    pub fn locations(&self) -> &[(Location, u64)] {
        &self.locations
    }

    /// How many distinct chains there are.
    pub fn chain_count(&self) -> usize {
        self.segments
            .last()
            .map_or(0, |last| last.first as usize + last.ranges.len())
    }

    /// Every distinct chain, in the order first seen.
    pub fn chain_ids(&self) -> impl Iterator<Item = ChainId> + use<'_, 'f> {
        (0..self.chain_count() as u32).map(ChainId)
    }

    /// The chains `ids`, in order, each with its leaf-first locations (of a settled table):
    /// what [`ChainTable::chain`] gives, without a search of the segments per chain (a tenth
    /// of making the stacks of a machine-wide recording's 880k chains, issue #13).
    pub fn chains_in(
        &self,
        ids: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (ChainId, &[LocationId])> + '_ {
        let (start, end) = (ids.start, ids.end);
        let first = self
            .segments
            .partition_point(|segment| segment.first as usize <= start)
            .saturating_sub(1);
        let segments = self.segments.get(first..).unwrap_or_default();
        segments
            .iter()
            .flat_map(move |segment| {
                debug_assert!(segment.appended_at.is_none(), "chains read before settle()");
                let skip = start.saturating_sub(segment.first as usize);
                let ranges = segment.ranges.get(skip..).unwrap_or_default();
                ranges.iter().enumerate().map(move |(index, &(at, len))| {
                    let id = ChainId((segment.first as usize + skip + index) as u32);
                    let locations = segment.locations.get(at as usize..(at + len) as usize);
                    (id, locations.unwrap_or(&[]))
                })
            })
            .take_while(move |(id, _)| (id.0 as usize) < end)
    }

    /// The leaf-first locations of chain `id` (of a settled table: see
    /// [`ChainTable::settle`]).
    pub fn chain(&self, id: ChainId) -> &[LocationId] {
        let segment = self
            .segments
            .partition_point(|segment| segment.first <= id.0)
            .checked_sub(1)
            .and_then(|index| self.segments.get(index));
        let Some(segment) = segment else {
            return &[];
        };
        debug_assert!(
            segment.appended_at.is_none(),
            "a chain read before settle()"
        );
        segment
            .ranges
            .get((id.0 - segment.first) as usize)
            .and_then(|&(start, len)| {
                segment
                    .locations
                    .get(start as usize..(start + len) as usize)
            })
            .unwrap_or(&[])
    }

    /// True when chain `id` came from a corrupt callchain (only the sampled ip is kept).
    pub fn is_broken(&self, id: ChainId) -> bool {
        self.shapes.get(id.0 as usize).is_some_and(|s| s.broken)
    }

    /// True when the user part of chain `id` is a frame-pointer chain (and it is not broken).
    pub fn is_frame_pointer(&self, id: ChainId) -> bool {
        self.shapes
            .get(id.0 as usize)
            .is_some_and(|s| s.fp_user_frames && !s.broken)
    }

    /// The chains whose user part is a frame-pointer chain.
    pub fn frame_pointer_chains(&self) -> impl Iterator<Item = ChainId> + '_ {
        self.chain_ids().filter(|&id| self.is_frame_pointer(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprof_perfdata::{CpuMode, Endian, U64Slice};
    use kprof_symbolizer::MappingInfo;

    use kprof_perfdata::kinds::context::USER as PERF_CONTEXT_USER;

    fn spaces() -> AddressSpaces {
        let mut spaces = AddressSpaces::new();
        spaces.mmap(
            7,
            MappingInfo {
                start: Avma(0x40_0000),
                len: 0x1_0000,
                pgoff: 0,
                path: b"/bin/app",
                build_id: None,
                kernel: false,
            },
        );
        spaces
    }

    fn space(generation: u64) -> SpaceState {
        SpaceState {
            pid: 7,
            generation,
            kernel_generation: 0,
        }
    }

    fn key<'a>(space: SpaceState, callchain: &'a [u8]) -> RecordedChainKey<'a> {
        RecordedChainKey {
            space,
            cpumode: CpuMode::User as u8,
            ip: 0,
            callchain,
            call_stack: &[],
        }
    }

    // See: issue #12 point 1
    #[test]
    fn equal_recorded_stacks_of_one_space_share_a_chain_and_its_locations() {
        let spaces = spaces();
        let bytes: Vec<u8> = [PERF_CONTEXT_USER, 0x40_1000, 0x40_2000, 0x9000_0000]
            .iter()
            .flat_map(|e| e.to_le_bytes())
            .collect();
        let input = ChainInput {
            callchain: Some(U64Slice::new(&bytes, Endian::Little)),
            ip: Some(0x40_1000),
            cpumode: CpuMode::User,
            call_stack: None,
        };
        let mut table = ChainTable::new(false, false);
        let first = table.recorded(&spaces, key(space(0), &bytes), &input);
        assert_eq!(
            table.recorded(&spaces, key(space(0), &bytes), &input),
            first
        );
        // Another state of the address space is another chain, over the same locations.
        let other = table.recorded(&spaces, key(space(1), &bytes), &input);
        assert_ne!(other, first);
        assert_eq!(table.chain_ids().count(), 2);
        assert_eq!(table.chain(first), table.chain(other));
        assert_eq!(table.locations().len(), 3);
        assert!(matches!(
            table.locations()[0].0,
            Location::Module {
                offset: ModuleOffset(0x1000),
                ..
            }
        ));
        assert!(matches!(
            table.locations()[2].0,
            Location::Unmapped(Avma(0x9000_0000))
        ));
        assert_eq!(table.frame_pointer_chains().count(), 2);
        assert!(!table.is_broken(first));
    }

    // See: issue #13 (addresses outside the mappings, as frame-pointer walks through code
    // without frame pointers read them, cost one location, not one each)
    #[test]
    fn addresses_outside_the_mappings_share_the_first_ones_location_unless_kept() {
        let spaces = spaces();
        let chain = |junk: u64| -> Vec<u8> {
            [PERF_CONTEXT_USER, 0x40_1000, junk, 0x40_2000]
                .iter()
                .flat_map(|e| e.to_le_bytes())
                .collect()
        };
        let (first, second) = (chain(0x9000_0000), chain(0x9100_0000));
        let input = |bytes| ChainInput {
            callchain: Some(U64Slice::new(bytes, Endian::Little)),
            ip: Some(0x40_1000),
            cpumode: CpuMode::User,
            call_stack: None,
        };
        for keep_addresses in [false, true] {
            let mut table = ChainTable::new(false, keep_addresses);
            let a = table.recorded(&spaces, key(space(0), &first), &input(&first));
            let b = table.recorded(&spaces, key(space(0), &second), &input(&second));
            assert_ne!(a, b, "two recorded stacks stay two chains");
            let unmapped: Vec<Location> = table
                .locations()
                .iter()
                .map(|&(location, _)| location)
                .filter(|location| matches!(location, Location::Unmapped(_)))
                .collect();
            if keep_addresses {
                assert_eq!(
                    unmapped,
                    [
                        Location::Unmapped(Avma(0x9000_0000)),
                        Location::Unmapped(Avma(0x9100_0000))
                    ]
                );
                assert_ne!(table.chain(a), table.chain(b));
            } else {
                assert_eq!(unmapped, [Location::Unmapped(Avma(0x9000_0000))]);
                assert_eq!(table.chain(a), table.chain(b));
            }
            assert_eq!(table.locations().len(), 2 + unmapped.len());
        }
    }

    // See: issue #13 point 2 (shards' tables appended, then made distinct on the pool, as one
    // table would have made them)
    #[test]
    fn appended_tables_settle_into_what_one_table_makes() {
        let spaces = spaces();
        let chain = |frames: &[u64]| -> Vec<u8> {
            std::iter::once(PERF_CONTEXT_USER)
                .chain(frames.iter().copied())
                .flat_map(|e| e.to_le_bytes())
                .collect()
        };
        let stacks = [
            chain(&[0x40_1000, 0x9000_0000, 0x40_2000]),
            chain(&[0x40_3000, 0x40_1000]),
            chain(&[0x40_2000, 0x9100_0000, 0x40_4000]),
            chain(&[0x9200_0000, 0x40_3000, 0x40_5000]),
            chain(&[0x40_1000, 0x9000_0000, 0x40_2000]),
        ];
        let input = |bytes| ChainInput {
            callchain: Some(U64Slice::new(bytes, Endian::Little)),
            ip: None,
            cpumode: CpuMode::User,
            call_stack: None,
        };
        let contents = |table: &ChainTable<'_>| -> Vec<Vec<(Location, u64)>> {
            table
                .chain_ids()
                .map(|id| {
                    table
                        .chain(id)
                        .iter()
                        .map(|l| table.locations()[l.0 as usize])
                        .collect()
                })
                .collect()
        };
        for keep_addresses in [false, true] {
            let mut one = ChainTable::new(false, keep_addresses);
            for bytes in &stacks {
                one.recorded(&spaces, key(space(0), bytes), &input(bytes));
            }
            // The stacks in tables of two, one and two, appended in order.
            let mut merged = ChainTable::new(false, keep_addresses);
            for part in stacks.chunks(2) {
                let mut shard = ChainTable::new(false, keep_addresses);
                for bytes in part {
                    shard.recorded(&spaces, key(space(0), bytes), &input(bytes));
                }
                let offset = merged.chain_count() as u32;
                assert_eq!(merged.append(shard), offset);
            }
            assert!(
                merged.locations().len() > one.locations().len(),
                "not yet distinct"
            );
            merged.settle();
            assert_eq!(merged.locations(), one.locations(), "{keep_addresses}");
            // The last stack repeats the first: one chain in one table, two when appended.
            assert_eq!(one.chain_count(), 4);
            assert_eq!(merged.chain_count(), 5);
            let mut expected = contents(&one);
            expected.push(expected[0].clone());
            assert_eq!(contents(&merged), expected, "{keep_addresses}");
            // Any run of chains reads as chain by chain, across the appended segments.
            for start in 0..=5 {
                for end in start..=6 {
                    let run: Vec<_> = merged.chains_in(start..end).collect();
                    let one_by_one: Vec<_> = (start..end.min(5))
                        .map(|id| (ChainId(id as u32), merged.chain(ChainId(id as u32))))
                        .collect();
                    assert_eq!(run, one_by_one, "{start}..{end}");
                }
            }
        }
    }

    // See: issue #13 (locations one symbol names become one, chains renumbered)
    #[test]
    fn merged_locations_keep_the_first_and_renumber_the_chains() {
        let spaces = spaces();
        let bytes =
            |entries: &[u64]| -> Vec<u8> { entries.iter().flat_map(|e| e.to_le_bytes()).collect() };
        let first = bytes(&[PERF_CONTEXT_USER, 0x40_1000, 0x40_2000, 0x40_3000]);
        let second = bytes(&[PERF_CONTEXT_USER, 0x40_1008, 0x40_2000]);
        let input = |bytes| ChainInput {
            callchain: Some(U64Slice::new(bytes, Endian::Little)),
            ip: None,
            cpumode: CpuMode::User,
            call_stack: None,
        };
        let mut table = ChainTable::new(false, false);
        let a = table.recorded(&spaces, key(space(0), &first), &input(&first));
        let b = table.recorded(&spaces, key(space(0), &second), &input(&second));
        let offsets = |table: &ChainTable<'_>, chain| -> Vec<u64> {
            table
                .chain(chain)
                .iter()
                .map(|id| match table.locations()[id.0 as usize].0 {
                    Location::Module { offset, .. } => offset.0,
                    Location::Unmapped(address) => address.0,
                })
                .collect()
        };
        assert_eq!(offsets(&table, b), [0x1008, 0x2000]);
        // 0x1000 and 0x1008 one function, 0x3000 no key: four locations become three.
        let keys = table
            .locations()
            .iter()
            .map(|&(location, _)| match location {
                Location::Module { offset, .. } if offset.0 < 0x3000 => Some(offset.0 & !0xfff),
                _ => None,
            })
            .collect();
        let stands_for = table.merge_locations(keys);
        assert_eq!(stands_for, [2, 1, 1]);
        assert_eq!(table.locations().len(), 3);
        assert_eq!(offsets(&table, a), [0x1000, 0x2000, 0x3000]);
        assert_eq!(offsets(&table, b), [0x1000, 0x2000]);
        assert_eq!(table.chain(b), &table.chain(a)[..2]);
    }

    /// A user callchain of two frames in `/bin/app`, as the kernel records it.
    fn user_callchain() -> Vec<u8> {
        [PERF_CONTEXT_USER, 0x40_1000, 0x40_2000]
            .iter()
            .flat_map(|e| e.to_le_bytes())
            .collect()
    }

    /// The chain input of a user sample at the leaf of `callchain`.
    fn user_input(callchain: &[u8]) -> ChainInput<'_> {
        ChainInput {
            callchain: Some(U64Slice::new(callchain, Endian::Little)),
            ip: Some(0x40_1000),
            cpumode: CpuMode::User,
            call_stack: None,
        }
    }

    // See: issue #13 (the frame cache in front of locating and interning)
    #[test]
    fn a_frame_is_located_afresh_when_its_address_space_changes() {
        let mut spaces = spaces();
        let bytes = user_callchain();
        let input = user_input(&bytes);
        let mut table = ChainTable::new(false, false);
        let before = table.recorded(&spaces, key(space(0), &bytes), &input);
        // Another file mapped over the same addresses: the next generation's frames are in it.
        spaces.mmap(
            7,
            MappingInfo {
                start: Avma(0x40_0000),
                len: 0x1_0000,
                pgoff: 0x5000,
                path: b"/bin/other",
                build_id: None,
                kernel: false,
            },
        );
        let after = table.recorded(&spaces, key(space(1), &bytes), &input);
        let module_of = |id: LocationId| match table.locations()[id.0 as usize].0 {
            Location::Module { module, offset } => (spaces.module(module).path.to_string(), offset),
            Location::Unmapped(_) => panic!("unmapped"),
        };
        let paths: Vec<_> = table
            .chain(before)
            .iter()
            .map(|&id| module_of(id))
            .collect();
        assert_eq!(paths[0], ("/bin/app".into(), ModuleOffset(0x1000)));
        let paths: Vec<_> = table.chain(after).iter().map(|&id| module_of(id)).collect();
        assert_eq!(paths[0], ("/bin/other".into(), ModuleOffset(0x6000)));
        assert_eq!(paths[1], ("/bin/other".into(), ModuleOffset(0x7000)));
        // The first generation's frames are still found where they were.
        assert_eq!(
            table.recorded(&spaces, key(space(0), &bytes), &input),
            before
        );
        assert_eq!(table.locations().len(), 4);
    }

    // See: issue #13 point 1 (one replay forgets its recorded stacks as shards do)
    #[test]
    fn a_stack_seen_after_forgetting_is_a_new_chain_over_the_same_locations() {
        let spaces = spaces();
        let bytes = user_callchain();
        let input = user_input(&bytes);
        let mut table = ChainTable::new(false, false);
        let first = table.recorded(&spaces, key(space(0), &bytes), &input);
        table.forget_recorded();
        let again = table.recorded(&spaces, key(space(0), &bytes), &input);
        assert_ne!(again, first);
        assert_eq!(table.chain(again), table.chain(first));
        assert_eq!(table.locations().len(), 2, "no location added twice");
        // Found again until the next time it forgets.
        assert_eq!(
            table.recorded(&spaces, key(space(0), &bytes), &input),
            again
        );
        table.finish_adding();
        assert_eq!(table.chain(first), table.chain(again));
        assert_eq!(table.chain_count(), 2);
    }

    /// A user callchain in /bin/app whose leaf is `leaf`.
    fn callchain_at(leaf: u64) -> Vec<u8> {
        [PERF_CONTEXT_USER, leaf, 0x40_2000]
            .iter()
            .flat_map(|e| e.to_le_bytes())
            .collect()
    }

    // See: issue #13 point 1 (finding recorded stacks again only where it pays)
    #[test]
    fn stacks_that_seldom_repeat_are_not_looked_up_and_make_the_same_chains() {
        let spaces = spaces();
        let leaves: Vec<Vec<u8>> = (0..u64::from(RECORDED_TRIAL))
            .map(|i| callchain_at(0x40_4000 + 8 * i))
            .collect();
        let mut table = ChainTable::new(false, false);
        // A trial of stacks that never repeat.
        let firsts: Vec<ChainId> = leaves
            .iter()
            .map(|bytes| table.recorded(&spaces, key(space(0), bytes), &user_input(bytes)))
            .collect();
        assert!(!table.recorded_trial.pays);
        assert!(!table.holds_recorded(), "the stacks kept are let go of");
        // Seen again: a new chain over the same locations.
        let bytes = &leaves[0];
        let again = table.recorded(&spaces, key(space(0), bytes), &user_input(bytes));
        assert_ne!(again, firsts[0]);
        assert_eq!(table.chain(again), table.chain(firsts[0]));
        // After forgetting, a new trial: stacks are found again.
        table.forget_recorded();
        let once = table.recorded(&spaces, key(space(0), bytes), &user_input(bytes));
        let twice = table.recorded(&spaces, key(space(0), bytes), &user_input(bytes));
        assert_eq!(once, twice);
        assert_eq!(table.chain(once), table.chain(firsts[0]));
    }

    // See: issue #13 point 1
    #[test]
    fn stacks_that_repeat_are_found_after_the_trial() {
        let spaces = spaces();
        let bytes = user_callchain();
        let input = user_input(&bytes);
        let mut table = ChainTable::new(false, false);
        let first = table.recorded(&spaces, key(space(0), &bytes), &input);
        for _ in 0..2 * RECORDED_TRIAL {
            assert_eq!(
                table.recorded(&spaces, key(space(0), &bytes), &input),
                first
            );
        }
        assert!(table.recorded_trial.pays);
        assert_eq!(table.chain_count(), 1);
    }

    #[test]
    fn walked_stacks_are_found_by_their_addresses() {
        let spaces = spaces();
        let mut table = ChainTable::new(false, true);
        let stack = [
            StackAddress::at(0x40_1000, false),
            StackAddress {
                lookup: 0x40_1fff,
                shown: 0x40_2000,
                kernel: false,
            },
        ];
        let shape = ChainShape::default();
        let a = table.walked(&spaces, space(0), &stack, shape);
        assert_eq!(table.walked(&spaces, space(0), &stack, shape), a);
        let broken = ChainShape {
            broken: true,
            fp_user_frames: false,
        };
        let b = table.walked(&spaces, space(0), &stack[..1], broken);
        assert_ne!(a, b);
        assert!(table.is_broken(b) && !table.is_broken(a));
        // Samples keep their addresses: the caller is shown one byte after its lookup.
        assert_eq!(table.locations()[1].1, 1);
        assert_eq!(table.chain(ChainId(99)), &[]);
    }
}
