//! From replayed chains to the [`Profile`]: each distinct location symbolized once, in
//! parallel, then frames and stacks interned into the profile's prefix tree, and each sample
//! given its stack.

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use kprof_perfdata::PerfFile;
use kprof_symbolizer::{
    AddressSpaces, Location, ModuleId, ModuleKind, SymFrame, SymbolKey, Symbolizer,
};
use rayon::prelude::*;

use super::chain_table::{ChainId, ChainTable, LocationId};
use super::options::AnalysisOptions;
use super::quality::FramePointerReport;
use super::replay::{PendingSample, Replayed};
use crate::profile::{Event, Frame, FrameId, FrameKind, Meta, Profile, Sample, StackId, StackNode};

/// Locations per piece of [`symbolize_locations`], at most: enough for a piece to hold each of
/// its distinct frames once where its locations repeat them hundreds of times. Each piece's
/// frames are interned again into the profile on one thread, so fewer, bigger pieces make
/// fewer copies of the same frames (32k a piece took 28 to 39 ms there on a machine-wide
/// recording of 726k locations, 128k 24 to 29 ms; issue #13).
const MAX_LOCATIONS_PER_PIECE: usize = 128 * 1024;
/// Locations per piece, at least: a small recording's few locations (each one DWARF lookups
/// with `--lines`) still spread over the pool.
const MIN_LOCATIONS_PER_PIECE: usize = 64;

/// The frames of every distinct location of a replay, symbolized in pieces of consecutive
/// locations: what [`build_profile`] takes, so that the symbolizer (its symbol tables and
/// mapped files) can go before the profile is built.
pub struct SymbolizedLocations {
    pieces: Vec<FramePiece>,
}

/// The frames of consecutive locations.
struct FramePiece {
    /// The piece's distinct frames (see [`FrameSet`]), in the order first seen, with their
    /// hashes.
    frames: FrameSet,
    /// Per location, its frames (innermost first) as indexes into `frames`.
    locations: LocationFrames,
}

impl FramePiece {
    fn new(sample_addresses: bool) -> Self {
        FramePiece {
            frames: FrameSet::new(sample_addresses),
            locations: LocationFrames::with_capacity(0),
        }
    }
}

/// The frames (innermost first) of every distinct location of `replayed`, each symbolized
/// once, in parallel; `sample_addresses` keeps frames that differ only in their address apart.
/// Each piece keeps each of its distinct frames once, so the many copies of a frame (one per
/// address in a function) are dropped on the pool, not one by one later (issue #13).
pub fn symbolize_locations(
    replayed: &Replayed<'_>,
    symbolizer: &Symbolizer,
    sample_addresses: bool,
) -> SymbolizedLocations {
    let locations = replayed.chains.locations();
    // Pieces as the pool splits the locations: a piece more where a thread runs out of work,
    // so the threads finish together (one location may take a DWARF unit's parse).
    let pieces = locations
        .par_iter()
        .with_min_len(MIN_LOCATIONS_PER_PIECE)
        .with_max_len(MAX_LOCATIONS_PER_PIECE)
        .fold(
            || (FramePiece::new(sample_addresses), FixedNames::default()),
            |(mut piece, names), &(location, shown_delta)| {
                let (module, symbolized) =
                    symbolize_location(symbolizer, &replayed.spaces, location, &names);
                for frame in &symbolized {
                    piece
                        .locations
                        .frames
                        .push(piece.frames.intern_view(FrameView {
                            function: &frame.function,
                            module: module.name,
                            file: frame.file.as_ref(),
                            line: frame.line,
                            kind: module.kind,
                            inlined: frame.inlined,
                            module_offset: shown_address(location).wrapping_add(shown_delta),
                        }));
                }
                piece.locations.end_location();
                (piece, names)
            },
        )
        .map(|(piece, _)| piece)
        .collect();
    SymbolizedLocations { pieces }
}

/// Loads the ELF file and symbol tables of every module that a location of `replayed` is in,
/// the modules side by side: pieces of the locations all start with the modules most samples
/// hit, and all threads but one would wait for the one loading each.
pub fn preload_modules(replayed: &Replayed<'_>, symbolizer: &Symbolizer) {
    let mut used = vec![false; replayed.spaces.modules().count()];
    for (location, _) in replayed.chains.locations() {
        if let Location::Module { module, .. } = location {
            if let Some(used) = used.get_mut(module.0 as usize) {
                *used = true;
            }
        }
    }
    replayed
        .spaces
        .modules()
        .filter(|(id, _)| used.get(id.0 as usize).copied().unwrap_or(false))
        .collect::<Vec<_>>()
        .into_par_iter()
        .with_max_len(1)
        .for_each(|(_, module)| symbolizer.preload(module));
}

/// Locations per task of [`merge_locations_by_symbol`]'s lookups.
const LOCATIONS_PER_KEY_TASK: usize = 4096;

/// Gives the addresses of a module that one symbol alone names (see
/// [`Symbolizer::symbol_key`]) one location, the first one seen, unless samples keep their
/// addresses or frames carry lines. Their frames are the same: each is then symbolized once,
/// not once per address (on a machine-wide recording of a build, 260k addresses of modules
/// come down to 79k symbols), and chains through them share their callers' stacks. The report
/// counts every address as symbolizing each would.
pub fn merge_locations_by_symbol(
    replayed: &mut Replayed<'_>,
    symbolizer: &Symbolizer,
    options: &AnalysisOptions,
) {
    if options.sample_addresses || options.lines {
        return;
    }
    let spaces = &replayed.spaces;
    let keys: Vec<Option<(ModuleId, SymbolKey)>> = replayed
        .chains
        .locations()
        .par_iter()
        .with_min_len(LOCATIONS_PER_KEY_TASK)
        .map(|&(location, _)| match location {
            Location::Module { module, offset } => symbolizer
                .symbol_key(spaces.module(module), offset)
                .map(|key| (module, key)),
            Location::Unmapped(_) => None,
        })
        .collect();
    let stands_for = replayed.chains.merge_locations(keys);
    let mut merged_away = vec![0u64; spaces.modules().count()];
    for (&(location, _), &count) in replayed.chains.locations().iter().zip(&stands_for) {
        if let (Location::Module { module, .. }, 2..) = (location, count) {
            if let Some(merged) = merged_away.get_mut(module.0 as usize) {
                *merged += u64::from(count - 1);
            }
        }
    }
    for (id, module) in spaces.modules() {
        match merged_away.get(id.0 as usize) {
            Some(&count) if count > 0 => symbolizer.count_resolved(module, count),
            _ => {}
        }
    }
}

/// The profile of a replayed file whose locations are `symbolized`
/// ([`symbolize_locations`]), and how far its frame-pointer stacks reached.
/// `sample_addresses` keeps frames that differ only in their address apart.
pub fn build_profile(
    file: &PerfFile<'_>,
    replayed: Replayed<'_>,
    symbolized: SymbolizedLocations,
    sample_addresses: bool,
) -> (Profile, FramePointerReport) {
    let Replayed {
        spaces,
        samples: pending,
        mut chains,
        threads,
        lost,
        cgroups,
        ..
    } = replayed;
    // Each phase frees what the next one no longer reads before it allocates (issue #13).
    drop(spaces);
    chains.finish_adding();
    // Intern frames and stacks. The frames' set is sized for every piece's frames at once:
    // most are new, and a set that grew frame by frame would copy and rehash them as it went.
    let frames = symbolized
        .pieces
        .iter()
        .map(|p| p.frames.frames.len())
        .sum();
    let mut frame_set = FrameSet::with_capacity(sample_addresses, frames);
    // The pieces' frames in order, each interned once: the first piece to have a frame
    // gives it its id, as one pass over all locations would.
    let locations = symbolized
        .pieces
        .iter()
        .map(|p| p.locations.ends.len())
        .sum();
    let mut location_frames = LocationFrames::with_capacity(locations);
    for piece in symbolized.pieces {
        let ids: Vec<FrameId> = piece
            .frames
            .into_hashed()
            .map(|(hash, frame)| frame_set.intern_hashed(hash, frame))
            .collect();
        for location in 0..piece.locations.ends.len() {
            let frames = piece.locations.of(LocationId(location as u32));
            location_frames
                .frames
                .extend(frames.iter().filter_map(|&f| ids.get(f as usize)));
            location_frames.end_location();
        }
    }
    let frames = frame_set.frames;
    let (unmerged, chain_ends) = chain_stacks(&chains, &location_frames, &frames);
    drop(location_frames);
    // The stack tables merge serially; the samples are counted on the pool meanwhile.
    let attrs = file.attrs();
    let ((stack_nodes, chain_stacks), counts) = rayon::join(
        || unmerged.merge(),
        || SampleCounts::of(&pending, &chain_ends, attrs.len()),
    );
    drop(chain_ends);
    let events: Vec<Event> = attrs
        .iter()
        .zip(counts.per_event)
        .map(|(attr, (sample_count, total_period))| Event {
            name: attr.name.clone(),
            sample_count,
            total_period,
        })
        .collect();
    let fp_stacks: Vec<(u64, u64)> = counts.fp_stacks.into_iter().collect();
    let frame = |id: Option<FrameId>| id.and_then(|f| frames.get(f as usize));
    let frame_pointers =
        FramePointerReport::of_ends(fp_stacks.par_iter().with_min_len(FP_ENDS_PER_TASK).map(
            |&(packed, stacks)| {
                let (end, known) = unpack_end(packed);
                let function = frame(end).map(|f| &*f.function);
                (function, frame(known).map(|f| &*f.module), stacks)
            },
        ));
    drop(fp_stacks);
    // In place: a sample takes the room of its pending one, so the samples are never held
    // twice (issue #13 point 1).
    const {
        assert!(
            size_of::<Sample>() == size_of::<PendingSample>()
                && align_of::<Sample>() == align_of::<PendingSample>(),
            "a Sample must fit where its PendingSample was (built in place)"
        )
    };
    let samples: Vec<Sample> = pending
        .into_iter()
        .map(|pending| {
            let chain = pending.chain;
            Sample {
                thread: pending.thread,
                event: pending.event,
                time: pending.time,
                period: pending.period,
                stack: chain.and_then(|chain| chain_stacks.get(chain).flatten()),
                cpu: pending.cpu,
                broken_callchain: chain.is_some_and(|chain| chains.is_broken(chain)),
                cgroup: pending.cgroup,
            }
        })
        .collect();
    drop(chain_stacks);

    let features = file.features();
    let meta = Meta {
        perf_version: features.version.clone(),
        hostname: features.hostname.clone(),
        os_release: features.osrelease.clone(),
        arch: features.arch.clone(),
        cmdline: features.cmdline.as_ref().map(|c| c.join(" ")),
        lost_samples: lost.samples(),
    };
    let profile = Profile {
        frames,
        stacks: stack_nodes,
        threads,
        events,
        samples,
        meta,
        cgroups,
    };
    (profile, frame_pointers)
}

/// Frame-pointer stack ends per task of [`FramePointerReport::of_ends`], at least.
const FP_ENDS_PER_TASK: usize = 4096;

/// Samples counted by one task of [`SampleCounts::of`], at least: enough to outweigh merging
/// its counts.
const SAMPLES_PER_TASK: usize = 64 * 1024;

/// What the profile and the frame-pointer report count of the samples.
struct SampleCounts {
    /// Per event (attr index): its samples and the sum of their periods (saturating, as the
    /// folded sums do).
    per_event: Vec<(u64, u64)>,
    /// Frame-pointer stacks by where they end (few places), not one by one; by the packed end
    /// ([`pack_end`]), which one multiplication hashes: each sample counts here (issue #13).
    fp_stacks: HashMap<u64, u64>,
}

/// A frame-pointer end as one number: each frame's id, or `u32::MAX` for none (frame ids
/// index the profile's frames, which never number 2^32).
fn pack_end((end, known): FramePointerEnd) -> u64 {
    let id = |frame: Option<FrameId>| u64::from(frame.unwrap_or(u32::MAX));
    id(end) << 32 | id(known)
}

/// The end [`pack_end`] packed.
fn unpack_end(packed: u64) -> FramePointerEnd {
    let id = |bits: u64| Some(bits as u32).filter(|&id| id != u32::MAX);
    (id(packed >> 32), id(packed & u64::from(u32::MAX)))
}

impl SampleCounts {
    /// The counts of `samples` of `events` events, whose chains are `chains`; counted in
    /// parallel, chunk by chunk (sums do not depend on the order they are added in).
    fn of(samples: &[PendingSample], chains: &ChainEnds, events: usize) -> SampleCounts {
        let empty = || SampleCounts {
            per_event: vec![(0, 0); events],
            fp_stacks: HashMap::default(),
        };
        samples
            .par_iter()
            .with_min_len(SAMPLES_PER_TASK)
            .fold(empty, |mut counts, sample| {
                if let Some(end) = sample.chain.and_then(|chain| chains.get(chain).flatten()) {
                    *counts.fp_stacks.entry(pack_end(end)).or_insert(0) += 1;
                }
                if let Some((count, period)) = counts.per_event.get_mut(sample.event as usize) {
                    *count += 1;
                    *period = period.saturating_add(sample.period);
                }
                counts
            })
            .reduce(empty, |mut into, from| {
                for (sums, (count, period)) in into.per_event.iter_mut().zip(from.per_event) {
                    sums.0 += count;
                    sums.1 = sums.1.saturating_add(period);
                }
                for (end, stacks) in from.fp_stacks {
                    *into.fp_stacks.entry(end).or_insert(0) += stacks;
                }
                into
            })
    }
}

/// Chains per piece of [`chain_stacks`], at least: enough to outweigh merging its stacks.
const CHAINS_PER_PIECE: usize = 64 * 1024;

/// One stack per distinct chain, root first (see [`piece_stacks`]), and where each chain
/// that is a frame-pointer chain ended. The chains are cut into pieces whose stacks are
/// interned on the thread pool, each piece in a table of its own; [`UnmergedStacks::merge`]
/// then merges the tables in order, each one's new stacks in the order it made them, which is
/// the order one pass over all chains makes them: the ids are the same (issue #13).
fn chain_stacks(
    chains: &ChainTable<'_>,
    location_frames: &LocationFrames,
    frames: &[Frame],
) -> (UnmergedStacks, ChainEnds) {
    let count = chains.chain_count();
    let pieces = rayon::current_num_threads().clamp(1, count.div_ceil(CHAINS_PER_PIECE).max(1));
    chain_stacks_in_pieces(chains, location_frames, frames, count.div_ceil(pieces))
}

/// [`chain_stacks`] in pieces of `per_piece` chains.
fn chain_stacks_in_pieces(
    chains: &ChainTable<'_>,
    location_frames: &LocationFrames,
    frames: &[Frame],
    per_piece: usize,
) -> (UnmergedStacks, ChainEnds) {
    let count = chains.chain_count();
    let per_piece = per_piece.max(1);
    let (tables, pieces): (Vec<StackTable>, Vec<PieceStacks>) = (0..count.div_ceil(per_piece))
        .into_par_iter()
        .map(|piece| {
            let start = piece * per_piece;
            let mut table = StackTable::default();
            let range = start..count.min(start + per_piece);
            let piece = piece_stacks(chains, range, location_frames, frames, &mut table);
            (table, piece)
        })
        .unzip();
    let (stacks, fp_ends) = pieces
        .into_iter()
        .map(|piece| (piece.stacks, piece.fp_ends))
        .unzip();
    let stacks = ByChain {
        per_piece,
        pieces: stacks,
    };
    let ends = ByChain {
        per_piece,
        pieces: fp_ends,
    };
    (UnmergedStacks { tables, stacks }, ends)
}

/// The pieces' stack tables, and per chain its stack in its piece's table.
struct UnmergedStacks {
    tables: Vec<StackTable>,
    stacks: ChainStacks,
}

impl UnmergedStacks {
    /// The first table takes in the others, in order, and each piece's stacks get their ids
    /// there: the stacks' nodes by [`StackId`], and per chain its stack. Serial but for the
    /// renumbering: [`build_profile`] counts the samples meanwhile.
    fn merge(self) -> (Vec<StackNode>, ChainStacks) {
        let UnmergedStacks { tables, mut stacks } = self;
        let mut tables = tables.into_iter();
        let mut whole = tables.next().unwrap_or_default();
        for (table, piece) in tables.zip(stacks.pieces.iter_mut().skip(1)) {
            let ids = whole.take_in(&table);
            piece
                .par_iter_mut()
                .with_min_len(CHAINS_PER_PIECE)
                .for_each(|stack| {
                    *stack = stack.and_then(|stack| ids.get(stack as usize).copied())
                });
        }
        (whole.nodes, stacks)
    }
}

/// Something per distinct chain, kept in the pieces [`chain_stacks`] made them in: joining
/// them would cost a copy and a page fault per 4 KiB, serially.
struct ByChain<T> {
    per_piece: usize,
    pieces: Vec<Vec<T>>,
}

impl<T: Copy> ByChain<T> {
    /// What `chain` has.
    fn get(&self, chain: ChainId) -> Option<T> {
        let chain = chain.0 as usize;
        let piece = self.pieces.get(chain / self.per_piece)?;
        piece.get(chain % self.per_piece).copied()
    }
}

/// Per distinct chain, its stack (`None` for an empty chain).
type ChainStacks = ByChain<Option<StackId>>;

/// Per distinct chain, where it ended when it is a frame-pointer chain.
type ChainEnds = ByChain<Option<FramePointerEnd>>;

/// The stacks and frame-pointer ends of one piece of chains, in order.
struct PieceStacks {
    stacks: Vec<Option<StackId>>,
    fp_ends: Vec<Option<FramePointerEnd>>,
}

/// The stacks of the chains `range`, root first, interned in `table`, and where those that
/// are frame-pointer chains ended: each chain is leaf first and each location's frames are
/// innermost first. Chains that differ only in their leaf (most do) share their callers'
/// stack and outermost frames, found once.
fn piece_stacks(
    chains: &ChainTable<'_>,
    range: std::ops::Range<usize>,
    location_frames: &LocationFrames,
    frames: &[Frame],
    table: &mut StackTable,
) -> PieceStacks {
    let mut push = |stack: Option<StackId>, locations: &[LocationId]| {
        let mut stack = stack;
        for location in locations.iter().rev() {
            for &frame in location_frames.of(*location).iter().rev() {
                stack = Some(table.stack(stack, frame));
            }
        }
        stack
    };
    let outermost = |location: &LocationId| location_frames.of(*location).last().copied();
    let known = |frame: &FrameId| {
        frames
            .get(*frame as usize)
            .is_some_and(|frame| frame.kind != FrameKind::Unknown)
    };
    let mut callers_stacks: HashMap<&[LocationId], (Option<StackId>, FramePointerEnd)> =
        HashMap::default();
    let mut stacks = Vec::with_capacity(range.len());
    let mut fp_ends = Vec::with_capacity(range.len());
    for (chain, locations) in chains.chains_in(range) {
        let Some((leaf, callers)) = locations.split_first() else {
            stacks.push(None);
            fp_ends.push(chains.is_frame_pointer(chain).then_some((None, None)));
            continue;
        };
        let (callers_stack, callers_end) = match callers_stacks.get(callers) {
            Some(&found) => found,
            None => {
                let end = callers.last().and_then(outermost);
                let known = callers.iter().rev().filter_map(outermost).find(known);
                let found = (push(None, callers), (end, known));
                callers_stacks.insert(callers, found);
                found
            }
        };
        stacks.push(push(callers_stack, std::slice::from_ref(leaf)));
        fp_ends.push(chains.is_frame_pointer(chain).then(|| {
            let (end, known_end) = callers_end;
            let leaf = outermost(leaf);
            match callers.is_empty() {
                true => (leaf, leaf.filter(known)),
                false => (end, known_end.or(leaf.filter(known))),
            }
        }));
    }
    PieceStacks { stacks, fp_ends }
}

/// Where a frame-pointer chain ended: its outermost frame, and the outermost frame in a known
/// module (a chain that breaks runs into garbage addresses; the code before them is what has
/// no frame pointer).
type FramePointerEnd = (Option<FrameId>, Option<FrameId>);

/// The names every piece of [`symbolize_locations`] gives many frames, made once per piece:
/// a frame keeps a copy only when it is new.
struct FixedNames {
    unknown: Arc<str>,
    kernel: Arc<str>,
}

impl Default for FixedNames {
    fn default() -> Self {
        FixedNames {
            unknown: Arc::from("[unknown]"),
            kernel: Arc::from("[kernel.kallsyms]"),
        }
    }
}

/// The address a location's frames show (before the delta of a sample's own address): its
/// offset in its module, or the address itself outside of any.
fn shown_address(location: Location) -> u64 {
    match location {
        Location::Module { offset, .. } => offset.0,
        Location::Unmapped(address) => address.0,
    }
}

/// The module of a location as its frames show it.
struct ShownModule<'a> {
    name: &'a Arc<str>,
    kind: FrameKind,
}

/// The frames (innermost first, without their module and address) of one location, and the
/// module they are shown in.
fn symbolize_location<'a>(
    symbolizer: &Symbolizer,
    spaces: &'a AddressSpaces,
    location: Location,
    names: &'a FixedNames,
) -> (ShownModule<'a>, Vec<SymFrame>) {
    match location {
        Location::Unmapped(_) => (
            ShownModule {
                name: &names.unknown,
                kind: FrameKind::Unknown,
            },
            vec![SymFrame {
                function: Arc::clone(&names.unknown),
                file: None,
                line: None,
                inlined: false,
            }],
        ),
        Location::Module { module, offset } => {
            let module_info = spaces.module(module);
            let kind = match module_info.kind {
                ModuleKind::Kernel | ModuleKind::KernelModule => FrameKind::Kernel,
                ModuleKind::Jit => FrameKind::Jit,
                _ => FrameKind::User,
            };
            // The kernel image is `[kernel.kallsyms]`, whatever its MMAP named it (`..._text`).
            let name = match module_info.kind {
                ModuleKind::Kernel => &names.kernel,
                _ => &module_info.path,
            };
            let frames = symbolizer.symbolize(module_info, offset).frames;
            (ShownModule { name, kind }, frames)
        }
    }
}

/// The interned frames of every distinct location, innermost first, in one flat vector:
/// chains read them once per location of every chain, and a vector per location put each
/// location's frames behind a pointer of its own, a cache miss each (issue #13).
struct LocationFrames {
    /// Where each location's frames end in `frames`.
    ends: Vec<u32>,
    frames: Vec<FrameId>,
}

impl LocationFrames {
    fn with_capacity(locations: usize) -> Self {
        LocationFrames {
            ends: Vec::with_capacity(locations),
            frames: Vec::with_capacity(locations),
        }
    }

    /// Ends the frames of the next location: those pushed since the last one ended.
    fn end_location(&mut self) {
        self.ends.push(self.frames.len() as u32);
    }

    /// The frames of `location`, innermost first.
    fn of(&self, location: LocationId) -> &[FrameId] {
        let index = location.0 as usize;
        let start = match index.checked_sub(1) {
            Some(before) => self.ends.get(before).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(index).copied().unwrap_or(start);
        self.frames
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }
}

/// Distinct frames, numbered in the order first seen: frames differing only in their
/// address are one unless addresses are kept, and show the first address seen.
struct FrameSet {
    /// Frames differing only in their address stay apart.
    keep_offsets: bool,
    frames: Vec<Frame>,
    /// Per frame, its [`FrameSet::hash`]: a table that grows, and a set that takes in
    /// another's frames, hash no name again.
    hashes: Vec<u64>,
    /// The frames' ids, by [`FrameSet::hash`].
    ids: HashTable<FrameId>,
}

impl FrameSet {
    fn new(keep_offsets: bool) -> Self {
        FrameSet {
            keep_offsets,
            frames: Vec::new(),
            hashes: Vec::new(),
            ids: HashTable::new(),
        }
    }

    /// [`FrameSet::new`], with room for `frames` frames.
    fn with_capacity(keep_offsets: bool, frames: usize) -> Self {
        FrameSet {
            keep_offsets,
            frames: Vec::with_capacity(frames),
            hashes: Vec::with_capacity(frames),
            ids: HashTable::with_capacity(frames),
        }
    }

    /// The frames, in the order first seen, with their hashes.
    fn into_hashed(self) -> impl Iterator<Item = (u64, Frame)> {
        self.hashes.into_iter().zip(self.frames)
    }

    /// The hash of what makes two frames one: all but the address, unless addresses are kept.
    fn hash(keep_offsets: bool, frame: &FrameView<'_>) -> u64 {
        let offset = if keep_offsets { frame.module_offset } else { 0 };
        FxBuildHasher.hash_one((
            &**frame.function,
            &**frame.module,
            frame.file.map(|file| &**file),
            frame.line,
            frame.kind,
            frame.inlined,
            offset,
        ))
    }

    /// Whether `a` and `b` are one frame (see [`FrameSet::hash`]).
    fn same(keep_offsets: bool, a: &FrameView<'_>, b: &FrameView<'_>) -> bool {
        let same_text = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        same_text(a.function, b.function)
            && same_text(a.module, b.module)
            && match (a.file, b.file) {
                (Some(a), Some(b)) => same_text(a, b),
                (None, None) => true,
                _ => false,
            }
            && a.line == b.line
            && a.kind == b.kind
            && a.inlined == b.inlined
            && (!keep_offsets || a.module_offset == b.module_offset)
    }

    /// The id of `frame`, which is kept when it is new.
    #[cfg(test)]
    fn intern(&mut self, frame: Frame) -> FrameId {
        let found = self.find(&FrameView::of(&frame));
        found.unwrap_or_else(|hash| self.insert(hash, frame))
    }

    /// The id of `frame`, whose [`FrameSet::hash`] is `hash` (from a set with the same
    /// `keep_offsets`), which is kept when it is new.
    fn intern_hashed(&mut self, hash: u64, frame: Frame) -> FrameId {
        match self.find_hashed(hash, &FrameView::of(&frame)) {
            Some(id) => id,
            None => self.insert(hash, frame),
        }
    }

    /// The id of the frame `view` shows, copied in when it is new.
    fn intern_view(&mut self, view: FrameView<'_>) -> FrameId {
        let found = self.find(&view);
        found.unwrap_or_else(|hash| self.insert(hash, view.to_frame()))
    }

    /// The id of `view`'s frame, or its hash when it is new.
    fn find(&self, view: &FrameView<'_>) -> Result<FrameId, u64> {
        let hash = Self::hash(self.keep_offsets, view);
        self.find_hashed(hash, view).ok_or(hash)
    }

    /// The id of `view`'s frame, whose hash is `hash`, when it is known.
    fn find_hashed(&self, hash: u64, view: &FrameView<'_>) -> Option<FrameId> {
        let keep = self.keep_offsets;
        let frames = &self.frames;
        let known = self.ids.find(hash, |&id| {
            frames
                .get(id as usize)
                .is_some_and(|known| Self::same(keep, &FrameView::of(known), view))
        });
        known.copied()
    }

    /// Adds `frame`, new, whose hash is `hash`.
    fn insert(&mut self, hash: u64, frame: Frame) -> FrameId {
        let id = self.frames.len() as FrameId;
        self.frames.push(frame);
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.ids.insert_unique(hash, id, |&id| {
            hashes.get(id as usize).copied().unwrap_or_default()
        });
        id
    }
}

/// A frame by reference: what [`FrameSet`] compares, so that a frame it has already costs no
/// copy of its names (each a shared count that every thread would touch).
struct FrameView<'a> {
    function: &'a Arc<str>,
    module: &'a Arc<str>,
    file: Option<&'a Arc<str>>,
    line: Option<u32>,
    kind: FrameKind,
    inlined: bool,
    module_offset: u64,
}

impl<'a> FrameView<'a> {
    fn of(frame: &'a Frame) -> Self {
        FrameView {
            function: &frame.function,
            module: &frame.module,
            file: frame.file.as_ref(),
            line: frame.line,
            kind: frame.kind,
            inlined: frame.inlined,
            module_offset: frame.module_offset,
        }
    }

    fn to_frame(&self) -> Frame {
        Frame {
            function: Arc::clone(self.function),
            module: Arc::clone(self.module),
            file: self.file.cloned(),
            line: self.line,
            kind: self.kind,
            inlined: self.inlined,
            module_offset: self.module_offset,
        }
    }
}

/// Stack nodes by their parent and frame, numbered in the order first seen.
#[derive(Default)]
struct StackTable {
    nodes: Vec<StackNode>,
    ids: HashMap<StackNode, StackId>,
}

impl StackTable {
    fn stack(&mut self, parent: Option<StackId>, frame: FrameId) -> StackId {
        let node = StackNode { parent, frame };
        // One probe, found or not: most of a build's chains end in new stacks.
        let nodes = &mut self.nodes;
        *self.ids.entry(node).or_insert_with(|| {
            nodes.push(node);
            (nodes.len() - 1) as StackId
        })
    }

    /// Interns `other`'s stacks, those new here in `other`'s order (as interning them one
    /// by one would): per stack of `other`, its id here. (Looking them up on the pool first
    /// measured no faster: 7 to 9 ms of lookups for big.data's 108k, the time of this loop.)
    fn take_in(&mut self, other: &StackTable) -> Vec<StackId> {
        let mut ids: Vec<StackId> = Vec::with_capacity(other.nodes.len());
        for node in &other.nodes {
            // A node's parent came before it.
            let parent = node
                .parent
                .and_then(|parent| ids.get(parent as usize).copied());
            ids.push(self.stack(parent, node.frame));
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, module_offset: u64) -> Frame {
        Frame {
            function: Arc::from(function),
            module: Arc::from("app"),
            file: None,
            line: None,
            kind: FrameKind::User,
            inlined: false,
            module_offset,
        }
    }

    // See: issue #12 point 1
    #[test]
    fn frames_differing_only_in_their_address_are_one_unless_addresses_are_kept() {
        let mut merged = FrameSet::new(false);
        let a = merged.intern(frame("f", 0x10));
        assert_eq!(merged.intern(frame("f", 0x20)), a);
        assert_ne!(merged.intern(frame("g", 0x10)), a);
        // The first address seen is the one shown.
        assert_eq!(merged.frames[a as usize].module_offset, 0x10);

        let mut kept = FrameSet::new(true);
        let a = kept.intern(frame("f", 0x10));
        assert_ne!(kept.intern(frame("f", 0x20)), a);
    }

    // See: issue #13 (frame-pointer ends counted by one packed number)
    #[test]
    fn frame_pointer_ends_unpack_as_packed() {
        let ids = [None, Some(0), Some(1), Some(77_666), Some(u32::MAX - 1)];
        let mut packed = std::collections::HashSet::new();
        for end in ids {
            for known in ids {
                assert_eq!(unpack_end(pack_end((end, known))), (end, known));
                assert!(packed.insert(pack_end((end, known))), "{end:?} {known:?}");
            }
        }
    }

    #[test]
    fn stacks_are_a_prefix_tree() {
        let mut stacks = StackTable::default();
        let root = stacks.stack(None, 0);
        let child = stacks.stack(Some(root), 1);
        assert_eq!(stacks.stack(None, 0), root);
        assert_eq!(stacks.stack(Some(root), 1), child);
        assert_ne!(stacks.stack(None, 1), child);
        assert_eq!(stacks.nodes[child as usize].parent, Some(root));
    }

    // See: issue #13 (byte-identical output whatever the pieces)
    #[test]
    fn stacks_interned_in_pieces_are_those_of_one_pass() {
        let bytes = super::super::replay::tests::recording();
        let file = PerfFile::parse(&bytes).unwrap();
        let options = super::super::AnalysisOptions::default();
        let records = file.sorted_records().unwrap();
        let replay = super::super::replay::Replay::new(&file, &options, None, records.len());
        let mut replayed =
            rayon::in_place_scope(|pool| replay.run(records, None, pool, &|_| {})).unwrap();
        replayed.chains.finish_adding();
        let chains = &replayed.chains;
        assert!(chains.chain_count() >= 3, "{}", chains.chain_count());
        // Locations that share frames, some with two (an inlined one).
        let mut location_frames = LocationFrames::with_capacity(chains.locations().len());
        for location in 0..chains.locations().len() as u32 {
            location_frames.frames.push(location % 3);
            if location % 2 == 1 {
                location_frames.frames.push(10 + location % 4);
            }
            location_frames.end_location();
        }
        let stacks = |per_piece: usize| {
            let (unmerged, fp_ends) =
                chain_stacks_in_pieces(chains, &location_frames, &[], per_piece);
            let (nodes, stacks) = unmerged.merge();
            let ends: Vec<_> = chains
                .chain_ids()
                .map(|chain| (stacks.get(chain).flatten(), fp_ends.get(chain).flatten()))
                .collect();
            (ends, nodes)
        };
        let one = stacks(usize::MAX);
        assert!(one.1.len() > 3, "{:?}", one.1);
        for per_piece in 1..=chains.chain_count() {
            assert_eq!(stacks(per_piece), one, "{per_piece} chains per piece");
        }
    }

    #[test]
    fn event_totals_saturate_instead_of_overflowing() {
        use kprof_perfdata::kinds::{record as rk, sample as st};
        let mut records = kprof_test_support::RecordBuilder::new(kprof_perfdata::Endian::Little);
        for _ in 0..3 {
            records.record(rk::SAMPLE, 2, |b| {
                b.u64(0x40_1000).u32(42).u32(42).u64(u64::MAX / 2);
            });
        }
        let spec = kprof_test_support::AttrSpec {
            sample_type: st::IP | st::TID | st::PERIOD,
            ..kprof_test_support::AttrSpec::default()
        };
        let bytes = super::super::test_file(spec, records);
        let file = PerfFile::parse(&bytes).unwrap();
        let profile = super::super::analyze(&file, &super::super::AnalysisOptions::default())
            .unwrap()
            .profile;
        assert_eq!(profile.events[0].sample_count, 3);
        assert_eq!(profile.events[0].total_period, u64::MAX);
    }
}
