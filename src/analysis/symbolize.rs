//! From replayed chains to the [`Profile`]: each distinct location symbolized once, in
//! parallel, then frames and stacks interned into the profile's prefix tree, and each sample
//! given its stack.

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use kprof_perfdata::PerfFile;
use kprof_symbolizer::{AddressSpaces, Location, ModuleKind, Symbolizer};
use rayon::prelude::*;

use super::chain_table::{ChainId, ChainTable, LocationId};
use super::quality::FramePointerReport;
use super::replay::{PendingSample, Replayed};
use crate::profile::{Event, Frame, FrameId, FrameKind, Meta, Profile, Sample, StackId, StackNode};

/// The frames (innermost first) of every distinct location of `replayed`, by [`LocationId`]:
/// each symbolized once, in parallel. What [`build_profile`] takes, so that the symbolizer
/// (its symbol tables and mapped files) can go before the profile is built.
pub fn symbolize_locations(replayed: &Replayed<'_>, symbolizer: &Symbolizer) -> Vec<Vec<Frame>> {
    replayed
        .chains
        .locations()
        .par_iter()
        .map(|&(location, shown_delta)| {
            frames_for(symbolizer, &replayed.spaces, location, shown_delta)
        })
        .collect()
}

/// The profile of a replayed file whose locations are `symbolized`
/// ([`symbolize_locations`]), and how far its frame-pointer stacks reached.
/// `sample_addresses` keeps frames that differ only in their address apart.
pub fn build_profile(
    file: &PerfFile<'_>,
    replayed: Replayed<'_>,
    symbolized: Vec<Vec<Frame>>,
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
    // Intern frames and stacks.
    let mut interner = Interner {
        keep_offsets: sample_addresses,
        ..Interner::default()
    };
    let mut location_frames = LocationFrames::with_capacity(symbolized.len());
    for frames in &symbolized {
        for frame in frames {
            location_frames.frames.push(interner.frame(frame));
        }
        location_frames.end_location();
    }
    // Hundreds of thousands of small vectors: freed meanwhile, on a thread of their own.
    std::thread::spawn(move || drop(symbolized));
    let chain_stacks = chain_stacks(&chains, &location_frames, &mut interner);
    let fp_ends = frame_pointer_ends(&chains, &location_frames, &interner);
    let interner = interner;
    drop(location_frames);

    let mut events: Vec<Event> = file
        .attrs()
        .iter()
        .map(|attr| Event {
            name: attr.name.clone(),
            sample_count: 0,
            total_period: 0,
        })
        .collect();
    // Frame-pointer stacks counted by where they end (few places), not one by one.
    let mut fp_stacks: HashMap<FramePointerEnd, u64> = HashMap::default();
    for pending in &pending {
        if let Some(&Some(end)) = pending
            .chain
            .and_then(|chain| fp_ends.get(chain.0 as usize))
        {
            *fp_stacks.entry(end).or_insert(0) += 1;
        }
        if let Some(info) = events.get_mut(pending.event as usize) {
            info.sample_count += 1;
            info.total_period += pending.period;
        }
    }
    let mut frame_pointers = FramePointerReport::default();
    let frame = |id: Option<FrameId>| id.and_then(|f| interner.frames.get(f as usize));
    for ((end, known), stacks) in fp_stacks {
        frame_pointers.add_many(
            frame(end).map(|f| &*f.function),
            frame(known).map(|f| &*f.module),
            stacks,
        );
    }
    drop(fp_ends);
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
                stack: chain
                    .and_then(|chain| chain_stacks.get(chain.0 as usize).copied().flatten()),
                cpu: pending.cpu,
                broken_callchain: chain.is_some_and(|chain| chains.is_broken(chain)),
                cgroup: pending.cgroup,
            }
        })
        .collect();

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
        frames: interner.frames,
        stacks: interner.stacks,
        threads,
        events,
        samples,
        meta,
        cgroups,
    };
    (profile, frame_pointers)
}

/// One stack per distinct chain, root first: the chain is leaf first and each location's
/// frames are innermost first. Chains that differ only in their leaf (most do) share their
/// callers' stack, interned once.
fn chain_stacks(
    chains: &ChainTable<'_>,
    location_frames: &LocationFrames,
    interner: &mut Interner,
) -> Vec<Option<StackId>> {
    let mut push = |stack: Option<StackId>, locations: &[LocationId]| {
        let mut stack = stack;
        for location in locations.iter().rev() {
            for &frame in location_frames.of(*location).iter().rev() {
                stack = Some(interner.stack(stack, frame));
            }
        }
        stack
    };
    let mut callers_stacks: HashMap<&[LocationId], Option<StackId>> = HashMap::default();
    chains
        .chain_ids()
        .map(|chain| {
            let (leaf, callers) = chains.chain(chain).split_first()?;
            let callers_stack = match callers_stacks.get(callers) {
                Some(&stack) => stack,
                None => {
                    let stack = push(None, callers);
                    callers_stacks.insert(callers, stack);
                    stack
                }
            };
            push(callers_stack, std::slice::from_ref(leaf))
        })
        .collect()
}

/// Where a frame-pointer chain ended: its outermost frame, and the outermost frame in a known
/// module (a chain that breaks runs into garbage addresses; the code before them is what has
/// no frame pointer).
type FramePointerEnd = (Option<FrameId>, Option<FrameId>);

/// Per chain, where it ended when it is a frame-pointer chain.
fn frame_pointer_ends(
    chains: &ChainTable<'_>,
    location_frames: &LocationFrames,
    interner: &Interner,
) -> Vec<Option<FramePointerEnd>> {
    let outermost = |location: &LocationId| location_frames.of(*location).last().copied();
    (0..chains.chain_count() as u32)
        .into_par_iter()
        .map(|chain| {
            let chain = ChainId(chain);
            if !chains.is_frame_pointer(chain) {
                return None;
            }
            let locations = chains.chain(chain);
            let end = locations.last().and_then(outermost);
            let known = locations.iter().rev().filter_map(outermost).find(|&f| {
                interner
                    .frames
                    .get(f as usize)
                    .is_some_and(|frame| frame.kind != FrameKind::Unknown)
            });
            Some((end, known))
        })
        .collect()
}

/// The frames (innermost first) of one location, whose address is shown `shown_delta` after
/// it (wrapping).
fn frames_for(
    symbolizer: &Symbolizer,
    spaces: &AddressSpaces,
    location: Location,
    shown_delta: u64,
) -> Vec<Frame> {
    match location {
        Location::Unmapped(avma) => vec![Frame {
            function: Arc::from("[unknown]"),
            module: Arc::from("[unknown]"),
            file: None,
            line: None,
            kind: FrameKind::Unknown,
            inlined: false,
            module_offset: avma.0.wrapping_add(shown_delta),
        }],
        Location::Module { module, offset } => {
            let module_info = spaces.module(module);
            let kind = match module_info.kind {
                ModuleKind::Kernel | ModuleKind::KernelModule => FrameKind::Kernel,
                ModuleKind::Jit => FrameKind::Jit,
                _ => FrameKind::User,
            };
            let symbolized = symbolizer.symbolize(module_info, offset);
            // The kernel image is `[kernel.kallsyms]`, whatever its MMAP named it (`..._text`).
            let module: Arc<str> = match module_info.kind {
                ModuleKind::Kernel => Arc::from("[kernel.kallsyms]"),
                _ => module_info.path.clone(),
            };
            symbolized
                .frames
                .into_iter()
                .map(|f| Frame {
                    function: f.function,
                    module: module.clone(),
                    file: f.file,
                    line: f.line,
                    kind,
                    inlined: f.inlined,
                    module_offset: offset.0.wrapping_add(shown_delta),
                })
                .collect()
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

/// Interns frames and stack nodes.
#[derive(Default)]
struct Interner {
    /// Frames differing only in their address stay apart.
    keep_offsets: bool,
    frames: Vec<Frame>,
    /// The frames' ids, by [`Interner::frame_hash`].
    frame_ids: HashTable<FrameId>,
    stacks: Vec<StackNode>,
    stack_ids: HashMap<StackNode, StackId>,
}

impl Interner {
    /// The hash of what makes two frames one: all but the address, unless addresses are kept.
    fn frame_hash(keep_offsets: bool, frame: &Frame) -> u64 {
        let offset = if keep_offsets { frame.module_offset } else { 0 };
        FxBuildHasher.hash_one((
            &*frame.function,
            &*frame.module,
            frame.file.as_deref(),
            frame.line,
            frame.kind,
            frame.inlined,
            offset,
        ))
    }

    /// Whether `a` and `b` are one frame (see [`Interner::frame_hash`]).
    fn same_frame(keep_offsets: bool, a: &Frame, b: &Frame) -> bool {
        let same_text = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        same_text(&a.function, &b.function)
            && same_text(&a.module, &b.module)
            && match (&a.file, &b.file) {
                (Some(a), Some(b)) => same_text(a, b),
                (None, None) => true,
                _ => false,
            }
            && a.line == b.line
            && a.kind == b.kind
            && a.inlined == b.inlined
            && (!keep_offsets || a.module_offset == b.module_offset)
    }

    /// The id of `frame`; the first address seen for a frame is the one shown.
    fn frame(&mut self, frame: &Frame) -> FrameId {
        let keep = self.keep_offsets;
        let hash = Self::frame_hash(keep, frame);
        let frames = &self.frames;
        let known = self.frame_ids.find(hash, |&id| {
            frames
                .get(id as usize)
                .is_some_and(|known| Self::same_frame(keep, known, frame))
        });
        if let Some(&id) = known {
            return id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push(frame.clone());
        let frames = &self.frames;
        self.frame_ids.insert_unique(hash, id, |&id| {
            frames
                .get(id as usize)
                .map_or(0, |frame| Self::frame_hash(keep, frame))
        });
        id
    }

    fn stack(&mut self, parent: Option<StackId>, frame: FrameId) -> StackId {
        let node = StackNode { parent, frame };
        if let Some(&id) = self.stack_ids.get(&node) {
            return id;
        }
        let id = self.stacks.len() as StackId;
        self.stacks.push(node);
        self.stack_ids.insert(node, id);
        id
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
        let mut merged = Interner::default();
        let a = merged.frame(&frame("f", 0x10));
        assert_eq!(merged.frame(&frame("f", 0x20)), a);
        assert_ne!(merged.frame(&frame("g", 0x10)), a);
        // The first address seen is the one shown.
        assert_eq!(merged.frames[a as usize].module_offset, 0x10);

        let mut kept = Interner {
            keep_offsets: true,
            ..Interner::default()
        };
        let a = kept.frame(&frame("f", 0x10));
        assert_ne!(kept.frame(&frame("f", 0x20)), a);
    }

    #[test]
    fn stacks_are_a_prefix_tree() {
        let mut interner = Interner::default();
        let root = interner.stack(None, 0);
        let child = interner.stack(Some(root), 1);
        assert_eq!(interner.stack(None, 0), root);
        assert_eq!(interner.stack(Some(root), 1), child);
        assert_ne!(interner.stack(None, 1), child);
        assert_eq!(interner.stacks[child as usize].parent, Some(root));
    }
}
