//! [`Folder`]: accumulates weighted stacks and writes them as folded text.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufWriter, Write};
use std::ops::Range;

use indexmap::IndexSet;
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::error::{Error, Result};
use crate::rank_sort::sort_by_ranks;
use crate::sanitize;

/// What kind of code a frame is; used by [`crate::Palette::Kind`] (and the java/js/perl palettes)
/// to colour frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FrameKind {
    /// Ordinary user-space native code.
    User,
    /// Kernel code.
    Kernel,
    /// JIT-compiled code (e.g. from a `perf-<pid>.map`).
    Jit,
    /// A function inlined into its caller (a frame synthesised from debug info).
    Inlined,
    /// Nothing is known about the frame (e.g. frames added with [`Folder::add`]).
    #[default]
    Unknown,
    /// A frame of a thread off the CPU (blocked time: an off-CPU or wall-clock profile).
    OffCpu,
}

impl FrameKind {
    const ALL: [FrameKind; 6] = [
        FrameKind::User,
        FrameKind::Kernel,
        FrameKind::Jit,
        FrameKind::Inlined,
        FrameKind::Unknown,
        FrameKind::OffCpu,
    ];

    fn to_bits(self) -> u64 {
        match self {
            FrameKind::User => 0,
            FrameKind::Kernel => 1,
            FrameKind::Jit => 2,
            FrameKind::Inlined => 3,
            FrameKind::Unknown => 4,
            FrameKind::OffCpu => 5,
        }
    }

    fn from_bits(bits: u64) -> FrameKind {
        Self::ALL
            .get(usize::try_from(bits).unwrap_or(usize::MAX))
            .copied()
            .unwrap_or_default()
    }

    /// The inferno annotation suffix for this kind (`_[k]`, `_[j]`, `_[i]`, and `_[w]` for
    /// off-CPU frames: inferno hides it as it hides its waker annotation), if it has one.
    ///
    /// inferno's renderer hides these suffixes from the visible name and its java/js/perl
    /// palettes colour by them.
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            FrameKind::Kernel => Some("_[k]"),
            FrameKind::Jit => Some("_[j]"),
            FrameKind::Inlined => Some("_[i]"),
            FrameKind::OffCpu => Some("_[w]"),
            FrameKind::User | FrameKind::Unknown => None,
        }
    }
}

/// Stacks per task, at least, where the thread pool ranks or scans a folder's stacks.
const STACKS_PER_TASK: usize = 16 * 1024;

/// Bits of a packed frame id that hold the [`FrameKind`].
const KIND_BITS: u32 = 3;
const KIND_MASK: u64 = (1 << KIND_BITS) - 1;

/// A frame packed as `name_index << KIND_BITS | kind`.
type FrameId = u64;

/// A frame name interned in one [`Folder`] by [`Folder::intern_name`] or
/// [`Folder::intern_owned_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameId(u64);

/// Accumulates weighted stacks (root first) and sums the weights of identical stacks.
///
/// Names are interned, so a `Folder` costs one copy of each distinct name plus one small
/// integer per frame of each distinct stack. It is `Send`, cheap to [`merge`](Folder::merge), and
/// every output ([`write_folded`](Folder::write_folded), [`stacks`](Folder::stacks), the SVG) is
/// sorted, so the result does not depend on the order stacks were added or folders merged.
///
/// Names are stored raw; sanitisation ([`crate::sanitize`]) happens when writing.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    names: IndexSet<Box<str>, FxBuildHasher>,
    /// Stacks added one at a time, each once with its summed weight.
    stacks: FxHashMap<Box<[FrameId]>, u64>,
    /// Stacks added in bulk ([`Folder::add_interned`]), not summed as they come: one may
    /// repeat another or one of `stacks`, and every reader sums equal stacks (outputs sort
    /// the stacks, then merge equal lines). Hashing a machine-wide profile's 150k stacks into
    /// `stacks` would take one thread longer than gathering them takes all (issue #13).
    gathered: Vec<(Box<[FrameId]>, u64)>,
    total: u64,
    scratch: Vec<FrameId>,
}

impl Folder {
    /// An empty folder.
    pub fn new() -> Self {
        Self::default()
    }

    fn intern(&mut self, name: &str) -> u64 {
        let index = match self.names.get_index_of(name) {
            Some(index) => index,
            None => self.names.insert_full(name.into()).0,
        };
        Self::name_index(index)
    }

    /// The index of the name at `index` of the names, as ids hold it.
    fn name_index(index: usize) -> u64 {
        // usize -> u64 never truncates on supported targets; saturate rather than panic.
        u64::try_from(index).unwrap_or(u64::MAX >> KIND_BITS)
    }

    fn pack(name_index: u64, kind: FrameKind) -> FrameId {
        (name_index << KIND_BITS) | kind.to_bits()
    }

    fn unpack(id: FrameId) -> (usize, FrameKind) {
        let index = usize::try_from(id >> KIND_BITS).unwrap_or(usize::MAX);
        (index, FrameKind::from_bits(id & KIND_MASK))
    }

    fn name(&self, index: usize) -> &str {
        self.names.get_index(index).map_or("", |name| name)
    }

    /// Adds the stack in `scratch` (the folder's reused buffer, taken out to fill it) with
    /// `weight`, an empty one as [`sanitize::UNKNOWN_NAME`], and keeps the buffer.
    fn add_scratch(&mut self, mut scratch: Vec<FrameId>, weight: u64) {
        if scratch.is_empty() {
            scratch.push(Self::pack(
                self.intern(sanitize::UNKNOWN_NAME),
                FrameKind::Unknown,
            ));
        }
        self.scratch = scratch;
        self.total = self.total.saturating_add(weight);
        if let Some(sum) = self.stacks.get_mut(self.scratch.as_slice()) {
            *sum = sum.saturating_add(weight);
        } else {
            self.stacks.insert(self.scratch.as_slice().into(), weight);
        }
    }

    /// Adds one stack (root first) of plain names ([`FrameKind::Unknown`]) with `weight`.
    ///
    /// A zero weight is ignored. An empty stack is recorded as the single frame
    /// [`sanitize::UNKNOWN_NAME`], so its weight still counts.
    pub fn add(&mut self, stack_root_first: &[&str], weight: u64) {
        if weight == 0 {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for name in stack_root_first {
            scratch.push(Self::pack(self.intern(name), FrameKind::Unknown));
        }
        self.add_scratch(scratch, weight);
    }

    /// Adds one stack (root first) whose frames carry a [`FrameKind`], with `weight`.
    ///
    /// Same rules as [`add`](Folder::add). Frames with equal names but different kinds are
    /// different frames in the SVG when the palette reads kinds; plain folded output merges them.
    pub fn add_with_kinds(&mut self, stack_root_first: &[(&str, FrameKind)], weight: u64) {
        if weight == 0 {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for (name, kind) in stack_root_first {
            scratch.push(Self::pack(self.intern(name), *kind));
        }
        self.add_scratch(scratch, weight);
    }

    /// The id of `name` in this folder, for [`add_interned`](Folder::add_interned): a caller
    /// whose names repeat across stacks (the same function in many stacks) interns each once
    /// instead of once per frame.
    pub fn intern_name(&mut self, name: &str) -> NameId {
        NameId(self.intern(name))
    }

    /// [`intern_name`](Folder::intern_name) of a name already owned: a caller that makes its
    /// names on the thread pool hands them over, and interning then only hashes each.
    pub fn intern_owned_name(&mut self, name: Box<str>) -> NameId {
        NameId(Self::name_index(self.names.insert_full(name).0))
    }

    /// Makes room for `additional` more names.
    pub fn reserve_names(&mut self, additional: usize) {
        self.names.reserve(additional);
    }

    /// Adds `count` stacks of names from [`intern_name`](Folder::intern_name) of this folder,
    /// each name with a [`FrameKind`]: `stack(i, frames)` pushes the frames of stack `i`, root
    /// first, onto the empty `frames` and returns its weight. The stacks are gathered on the
    /// thread pool, then summed here. Same result as [`add_with_kinds`](Folder::add_with_kinds)
    /// of each stack with the names the ids stand for, in any order.
    pub fn add_interned(
        &mut self,
        count: usize,
        stack: impl Fn(usize, &mut Vec<(NameId, FrameKind)>) -> u64 + Sync,
    ) {
        let packed: Vec<(Box<[FrameId]>, u64)> = (0..count)
            .into_par_iter()
            .with_min_len(STACKS_PER_TASK)
            .map_init(Vec::new, |frames, i| {
                frames.clear();
                let weight = stack(i, frames);
                let ids = frames.iter().map(|(name, kind)| Self::pack(name.0, *kind));
                (ids.collect(), weight)
            })
            .collect();
        self.gathered.reserve(packed.len());
        for (stack, weight) in packed {
            if weight == 0 {
                continue;
            }
            if stack.is_empty() {
                self.add_scratch(Vec::new(), weight);
                continue;
            }
            self.total = self.total.saturating_add(weight);
            self.gathered.push((stack, weight));
        }
    }

    /// Every stack added, with its weight; a stack may come more than once (see
    /// [`Folder::gathered`]).
    fn all_stacks(&self) -> impl Iterator<Item = (&[FrameId], u64)> + '_ {
        let summed = self.stacks.iter();
        let gathered = self.gathered.iter().map(|(stack, weight)| (stack, weight));
        summed
            .chain(gathered)
            .map(|(stack, weight)| (&**stack, *weight))
    }

    /// Adds every stack of `other` to `self` (for rayon's `fold`/`reduce`).
    ///
    /// The outputs are identical whatever the order of merging.
    pub fn merge(&mut self, mut other: Folder) {
        if self.is_empty() {
            std::mem::swap(self, &mut other);
            return;
        }
        let remap: Vec<u64> = other.names.iter().map(|name| self.intern(name)).collect();
        for (stack, weight) in other.stacks.into_iter().chain(other.gathered) {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            for id in stack.iter() {
                let (index, kind) = Self::unpack(*id);
                let name_index = remap.get(index).copied().unwrap_or_default();
                scratch.push(Self::pack(name_index, kind));
            }
            self.add_scratch(scratch, weight);
        }
    }

    /// The sum of all weights added (saturating at `u64::MAX`).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether no stack with a non-zero weight was added.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty() && self.gathered.is_empty()
    }

    /// The number of distinct stacks (names and kinds).
    pub fn len(&self) -> usize {
        if self.gathered.is_empty() {
            return self.stacks.len();
        }
        let distinct: rustc_hash::FxHashSet<&[FrameId]> =
            self.all_stacks().map(|(stack, _)| stack).collect();
        distinct.len()
    }

    /// Every distinct stack of raw names (root first) with its summed weight, sorted by names.
    ///
    /// Stacks that differ only in frame kinds are summed.
    pub fn stacks(&self) -> impl Iterator<Item = (Vec<&str>, u64)> + '_ {
        let mut sorted: BTreeMap<Vec<&str>, u64> = BTreeMap::new();
        for (stack, weight) in self.all_stacks() {
            let names = stack
                .iter()
                .map(|id| self.name(Self::unpack(*id).0))
                .collect();
            let sum = sorted.entry(names).or_default();
            *sum = sum.saturating_add(weight);
        }
        sorted.into_iter()
    }

    /// Every distinct stack of raw names with kinds (root first) and its weight, sorted.
    pub fn stacks_with_kinds(&self) -> impl Iterator<Item = (Vec<(&str, FrameKind)>, u64)> + '_ {
        let mut sorted: Vec<(Vec<(&str, FrameKind)>, u64)> = self
            .all_stacks()
            .map(|(stack, weight)| {
                let frames = stack
                    .iter()
                    .map(|id| {
                        let (index, kind) = Self::unpack(*id);
                        (self.name(index), kind)
                    })
                    .collect();
                (frames, weight)
            })
            .collect();
        sorted.sort_unstable();
        sum_equal_neighbours(&mut sorted);
        sorted.into_iter()
    }

    /// Sanitised names, one per interned name index.
    fn sanitized_names(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|name| sanitize::frame_name(name).into_owned())
            .collect()
    }

    /// Folded stack strings (without counts) with summed weights, sorted bytewise, each once.
    ///
    /// `annotate` appends each frame's kind annotation; `leaf_first` reverses every stack.
    pub(crate) fn folded_lines(&self, annotate: bool, leaf_first: bool) -> Vec<(String, u64)> {
        let names = self.sanitized_names();
        let push_frame = |line: &mut String, id: &FrameId| {
            let (index, kind) = Self::unpack(*id);
            if !line.is_empty() {
                line.push(';');
            }
            line.push_str(names.get(index).map_or(sanitize::UNKNOWN_NAME, |n| n));
            if annotate {
                if let Some(suffix) = kind.annotation() {
                    line.push_str(suffix);
                }
            }
        };
        let mut lines: Vec<(String, u64)> = self
            .all_stacks()
            .map(|(stack, weight)| {
                let mut line = String::new();
                if leaf_first {
                    stack.iter().rev().for_each(|id| push_frame(&mut line, id));
                } else {
                    stack.iter().for_each(|id| push_frame(&mut line, id));
                }
                (line, weight)
            })
            .collect();
        lines.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Stacks that differ only in kinds or in names that sanitise alike become one line.
        sum_equal_neighbours(&mut lines);
        lines
    }

    /// Per interned name index, the kinds its frames have in `stacks`, one bit per
    /// [`FrameKind::to_bits`]; gathered on the thread pool.
    fn kinds_per_name(&self, stacks: &[(&[FrameId], u64)]) -> Vec<u8> {
        let none = || vec![0u8; self.names.len()];
        stacks
            .par_iter()
            .with_min_len(STACKS_PER_TASK)
            .fold(none, |mut kinds, (stack, _)| {
                for id in stack.iter() {
                    let (index, kind) = Self::unpack(*id);
                    if let Some(bits) = kinds.get_mut(index) {
                        *bits |= 1 << kind.to_bits();
                    }
                }
                kinds
            })
            .reduce(none, |mut into, from| {
                for (into, from) in into.iter_mut().zip(from) {
                    *into |= from;
                }
                into
            })
    }

    /// Every frame (name index and kind) that occurs in `stacks`, by name index.
    fn frames_in_use(&self, stacks: &[(&[FrameId], u64)]) -> Vec<(usize, FrameKind)> {
        self.kinds_per_name(stacks)
            .into_iter()
            .enumerate()
            .flat_map(|(index, bits)| {
                FrameKind::ALL
                    .into_iter()
                    .filter(move |kind| bits & (1 << kind.to_bits()) != 0)
                    .map(move |kind| (index, kind))
            })
            .collect()
    }

    /// The folded-text form of a frame: its sanitised name, with its kind annotation when
    /// `annotate`.
    ///
    /// Borrowed from the name when that is its text: on a machine-wide profile, tens of
    /// thousands of texts are then neither copied nor freed one by one (issue #13).
    fn frame_text(&self, index: usize, kind: FrameKind, annotate: bool) -> Cow<'_, str> {
        let clean = sanitize::frame_name(self.name(index));
        match kind.annotation().filter(|_| annotate) {
            None => clean,
            Some(suffix) => {
                let mut text = String::with_capacity(clean.len() + suffix.len());
                text.push_str(&clean);
                text.push_str(suffix);
                Cow::Owned(text)
            }
        }
    }

    /// Like [`folded_lines`](Self::folded_lines), but sorted frame by frame (the order
    /// [`crate::svg`] hands stacks to inferno in: `;` before every name character).
    #[cfg(test)]
    pub(crate) fn frame_ordered_lines(
        &self,
        annotate: bool,
        leaf_first: bool,
    ) -> Vec<(String, u64)> {
        let ranked = self.frame_ordered_stacks(annotate, leaf_first);
        (0..ranked.len())
            .map(|i| (ranked.text(ranked.stack(i)), ranked.weight(i)))
            .collect()
    }

    /// The stacks as sequences of frame-text ranks, sorted frame by frame, each once: the
    /// stacks of [`frame_ordered_lines`](Self::frame_ordered_lines) before their text is built.
    ///
    /// That order is the lexicographic order of the stacks as sequences of frame texts, so the
    /// distinct frame texts are sorted once and each stack is sorted as a sequence of their
    /// ranks, without building or comparing its text.
    pub(crate) fn frame_ordered_stacks(
        &self,
        annotate: bool,
        leaf_first: bool,
    ) -> RankedStacks<'_> {
        let stacks: Vec<(&[FrameId], u64)> = self.all_stacks().collect();
        // Frame ids whose texts are equal (a kind without annotation, names that sanitise
        // alike) get equal ranks.
        let mut texts: Vec<(Cow<'_, str>, FrameId)> = self
            .frames_in_use(&stacks)
            .into_par_iter()
            .map(|(index, kind)| {
                let id = Self::pack(u64::try_from(index).unwrap_or(u64::MAX >> KIND_BITS), kind);
                (self.frame_text(index, kind, annotate), id)
            })
            .collect();
        texts.par_sort_unstable();
        // Indexed by frame id (name index and kind bits): every stack frame is looked up.
        let mut rank_of: Vec<u32> = vec![u32::MAX; self.names.len() << KIND_BITS];
        let mut rank_texts: Vec<Cow<'_, str>> = Vec::new();
        let mut rank_kinds: Vec<FrameKind> = Vec::new();
        for (text, id) in texts {
            let (_, kind) = Self::unpack(id);
            if rank_texts.last() == Some(&text) {
                // User beats Unknown when both share an unannotated text: the first by kind
                // order.
                if let Some(first) = rank_kinds.last_mut() {
                    *first = (*first).min(kind);
                }
            } else {
                rank_texts.push(text);
                rank_kinds.push(kind);
            }
            let rank = u32::try_from(rank_texts.len() - 1).unwrap_or(u32::MAX);
            if let Some(slot) = usize::try_from(id).ok().and_then(|i| rank_of.get_mut(i)) {
                *slot = rank;
            }
        }
        let rank = |id: &FrameId| {
            usize::try_from(*id)
                .ok()
                .and_then(|i| rank_of.get(i))
                .copied()
                .unwrap_or(u32::MAX)
        };

        // Each run of stacks ranked on the pool; a stack is then found by its run and its place
        // there until the sort has put the stacks in order.
        let (run_ranks, run_entries): (Vec<Vec<u32>>, Vec<Vec<RunEntry>>) = stacks
            .par_chunks(STACKS_PER_TASK)
            .enumerate()
            .map(|(index, run)| {
                let mut ranks: Vec<u32> = Vec::new();
                let mut entries = Vec::with_capacity(run.len());
                for (stack, weight) in run {
                    let start = ranks.len();
                    if leaf_first {
                        ranks.extend(stack.iter().rev().map(rank));
                    } else {
                        ranks.extend(stack.iter().map(rank));
                    }
                    entries.push((index, start..ranks.len(), *weight));
                }
                (ranks, entries)
            })
            .unzip();
        let seq = |(run, range, _): &RunEntry| {
            run_ranks
                .get(*run)
                .and_then(|ranks| ranks.get(range.clone()))
                .unwrap_or_default()
        };
        let sorted = sort_by_ranks(run_entries.into_iter().flatten().collect(), &seq);
        // Laid out again in order: the passes that follow read the stacks in order.
        let (ranks, mut entries) = laid_out(&sorted, seq);
        drop((sorted, run_ranks));
        let seq = |range: &Range<usize>| ranks.get(range.clone()).unwrap_or_default();
        // Stacks that differ only in kinds or in names that sanitise alike become one line.
        entries.dedup_by(|later, kept| {
            if seq(&later.0) == seq(&kept.0) {
                kept.1 = kept.1.saturating_add(later.1);
                true
            } else {
                false
            }
        });
        RankedStacks {
            texts: rank_texts,
            kinds: rank_kinds,
            ranks,
            entries,
        }
    }

    /// Raw stacks as ((interned name index, kind) root first, weight), for the diff module; a
    /// stack may come more than once (see [`Folder::gathered`]).
    pub(crate) fn raw_stacks(&self) -> impl Iterator<Item = (Vec<(usize, FrameKind)>, u64)> + '_ {
        self.all_stacks()
            .map(|(stack, weight)| (stack.iter().map(|id| Self::unpack(*id)).collect(), weight))
    }

    /// The raw name of an interned index.
    pub(crate) fn name_at(&self, index: usize) -> &str {
        self.name(index)
    }

    /// Writes the profile as folded stacks: one `root;...;leaf weight` line per distinct stack.
    ///
    /// Names are sanitised ([`crate::sanitize::frame_name`]); stacks that become equal are summed.
    /// Lines are sorted bytewise, so the bytes depend only on the stacks and weights added.
    pub fn write_folded(&self, w: impl Write) -> io::Result<()> {
        Self::write_lines(&self.folded_lines(false, false), w)
    }

    /// Like [`write_folded`](Folder::write_folded), with inferno's kind annotations appended to
    /// kernel (`_[k]`), JIT (`_[j]`) and inlined (`_[i]`) frames, as `inferno-collapse-perf
    /// --all` writes them.
    pub fn write_folded_annotated(&self, w: impl Write) -> io::Result<()> {
        Self::write_lines(&self.folded_lines(true, false), w)
    }

    fn write_lines(lines: &[(String, u64)], w: impl Write) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        for (stack, weight) in lines {
            writeln!(w, "{stack} {weight}")?;
        }
        w.flush()
    }

    /// Reads folded stacks (`a;b;c 123` per line) back into a folder.
    ///
    /// Empty lines and lines starting with `# ` are skipped, as inferno does. Every frame gets
    /// [`FrameKind::Unknown`]. A line without a trailing integer count is an error.
    pub fn read_folded(r: impl BufRead) -> Result<Folder> {
        let mut folder = Folder::new();
        for (number, line) in r.lines().enumerate() {
            let line = line?;
            let line = line.trim();
            if line.is_empty() || line.starts_with("# ") {
                continue;
            }
            let (stack, count) = line.rsplit_once(' ').ok_or(Error::BadFoldedLine {
                line: number + 1,
                reason: "no sample count",
            })?;
            let count: u64 = count.parse().map_err(|_| Error::BadFoldedLine {
                line: number + 1,
                reason: "sample count is not an unsigned integer",
            })?;
            let frames: Vec<&str> = stack.trim_end().split(';').collect();
            folder.add(&frames, count);
        }
        Ok(folder)
    }
}

/// Where a stack's ranks are in [`RankedStacks::ranks`], and its weight.
type StackEntry = (Range<usize>, u64);

/// Makes each run of equal keys in `sorted` one entry, with their weights summed (saturating).
fn sum_equal_neighbours<K: PartialEq>(sorted: &mut Vec<(K, u64)>) {
    sorted.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 = kept.1.saturating_add(later.1);
            true
        } else {
            false
        }
    });
}

/// Distinct stacks as sequences of ranks of their frame texts (equal texts, equal ranks),
/// sorted frame by frame, with their weights: see [`Folder::frame_ordered_stacks`].
pub(crate) struct RankedStacks<'a> {
    /// The distinct frame texts, sorted: a rank indexes them.
    texts: Vec<Cow<'a, str>>,
    /// Per rank, the first kind (in kind order) of the frames with its text.
    kinds: Vec<FrameKind>,
    /// Every stack's ranks, root first (leaf first when asked), one after another.
    ranks: Vec<u32>,
    /// Per stack, in order: where its ranks are and its weight.
    entries: Vec<StackEntry>,
}

impl RankedStacks<'_> {
    /// How many stacks.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The ranks of stack `index`.
    pub(crate) fn stack(&self, index: usize) -> &[u32] {
        self.entries
            .get(index)
            .and_then(|(range, _)| self.ranks.get(range.clone()))
            .unwrap_or_default()
    }

    /// The weight of stack `index`.
    pub(crate) fn weight(&self, index: usize) -> u64 {
        self.entries.get(index).map_or(0, |&(_, weight)| weight)
    }

    /// The text of the frames of `rank` and the first of their kinds (in kind order: user
    /// before unknown when both have one unannotated text).
    pub(crate) fn frame(&self, rank: u32) -> Option<(&str, FrameKind)> {
        let text = self.texts.get(rank as usize)?;
        let kind = self.kinds.get(rank as usize)?;
        Some((text.as_ref(), *kind))
    }

    /// The folded text of `frames` (ranks): their texts joined by `;`.
    pub(crate) fn text(&self, frames: &[u32]) -> String {
        let text_of = |rank: u32| {
            self.texts
                .get(rank as usize)
                .map_or(sanitize::UNKNOWN_NAME, |text| text.as_ref())
        };
        let mut line =
            String::with_capacity(frames.iter().map(|&r| text_of(r).len() + 1).sum::<usize>() + 21);
        for (i, &rank) in frames.iter().enumerate() {
            if i > 0 {
                line.push(';');
            }
            line.push_str(text_of(rank));
        }
        line
    }
}

/// A stack of [`Folder::frame_ordered_stacks`] before it is laid out: its run, where its ranks
/// are in the run's, and its weight.
type RunEntry = (usize, Range<usize>, u64);

/// The ranks of `entries`' stacks (each given by `ranks_of`) one after another, in the
/// entries' order, and the entries pointing there; copied on the pool, one run of entries
/// per task. Sorted, the entries point all over the ranks (16 MiB for a machine-wide profile
/// of 130k stacks), and each stack would miss the cache in the serial passes that follow.
fn laid_out<'r>(
    entries: &[RunEntry],
    ranks_of: impl Fn(&RunEntry) -> &'r [u32] + Sync,
) -> (Vec<u32>, Vec<StackEntry>) {
    let mut starts = Vec::with_capacity(entries.len());
    let mut total = 0;
    for entry in entries {
        starts.push(total);
        total += ranks_of(entry).len();
    }
    let laid_entries: Vec<StackEntry> = entries
        .par_iter()
        .zip(&starts)
        .map(|(entry, &start)| (start..start + ranks_of(entry).len(), entry.2))
        .collect();
    let mut ranks = vec![0u32; total];
    let mut parts = Vec::new();
    let mut rest = ranks.as_mut_slice();
    for run in entries.chunks(STACKS_PER_TASK) {
        let len: usize = run.iter().map(|entry| ranks_of(entry).len()).sum();
        let (part, tail) = rest.split_at_mut(len.min(rest.len()));
        rest = tail;
        parts.push((run, part));
    }
    parts.into_par_iter().for_each(|(run, part)| {
        let mut at = 0;
        for entry in run {
            let from = ranks_of(entry);
            if let Some(to) = part.get_mut(at..at + from.len()) {
                to.copy_from_slice(from);
            }
            at += from.len();
        }
    });
    (ranks, laid_entries)
}

/// A xorshift generator from `seed`, for tests that need many varied stacks, the same on every
/// run.
#[cfg(test)]
pub(crate) fn test_random(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(folder: &Folder) -> String {
        let mut out = Vec::new();
        folder.write_folded(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn weights_of_equal_stacks_are_summed_and_lines_sorted() {
        let mut f = Folder::new();
        f.add(&["main", "b"], 2);
        f.add(&["main", "a"], 1);
        f.add(&["main", "b"], 5);
        f.add(&["main"], 3);
        f.add(&["main", "zero"], 0);
        assert_eq!(f.total(), 11);
        assert_eq!(folded(&f), "main 3\nmain;a 1\nmain;b 7\n");
        let stacks: Vec<_> = f.stacks().collect();
        assert_eq!(
            stacks,
            vec![
                (vec!["main"], 3),
                (vec!["main", "a"], 1),
                (vec!["main", "b"], 7)
            ]
        );
    }

    #[test]
    fn folder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Folder>();
    }

    #[test]
    fn empty_folder_and_empty_stack() {
        let mut f = Folder::new();
        assert!(f.is_empty());
        assert_eq!(folded(&f), "");
        f.add(&[], 4);
        assert!(!f.is_empty());
        assert_eq!(folded(&f), "[unknown] 4\n");
    }

    #[test]
    fn names_are_escaped_so_each_stays_one_frame() {
        let mut f = Folder::new();
        f.add(&["a;b", "c\nd", "esc\u{1b}[0m", "nul\0", "x 12"], 1);
        let text = folded(&f);
        assert_eq!(
            text, "a:b;c\\nd;esc\\x1b[0m;nul\\x00;x\u{a0}12 1\n",
            "one line, five frames, one count"
        );
        assert_eq!(text.lines().count(), 1);
        let (stack, count) = text.trim_end().rsplit_once(' ').unwrap();
        assert_eq!(count, "1");
        assert_eq!(stack.split(';').count(), 5);
    }

    #[test]
    fn names_that_sanitise_equal_are_merged() {
        let mut f = Folder::new();
        f.add(&["a;b"], 1);
        f.add(&["a:b"], 2);
        assert_eq!(folded(&f), "a:b 3\n");
    }

    #[test]
    fn kinds_split_stacks_only_when_annotated() {
        let mut f = Folder::new();
        f.add_with_kinds(&[("main", FrameKind::User), ("sys", FrameKind::Kernel)], 2);
        f.add_with_kinds(&[("main", FrameKind::User), ("sys", FrameKind::User)], 3);
        f.add_with_kinds(&[("main", FrameKind::User), ("jit", FrameKind::Jit)], 1);
        assert_eq!(folded(&f), "main;jit 1\nmain;sys 5\n");
        let mut out = Vec::new();
        f.write_folded_annotated(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "main;jit_[j] 1\nmain;sys 3\nmain;sys_[k] 2\n"
        );
        assert_eq!(f.len(), 3);
        assert_eq!(f.stacks().count(), 2);
    }

    /// Adds `stacks` to `folder` with [`Folder::add_interned`], their names interned first.
    fn add_interned_names(folder: &mut Folder, stacks: &[(&[(&str, FrameKind)], u64)]) {
        let interned: Vec<(Vec<(NameId, FrameKind)>, u64)> = stacks
            .iter()
            .map(|(frames, weight)| {
                let frames = frames
                    .iter()
                    .map(|&(name, kind)| (folder.intern_name(name), kind))
                    .collect();
                (frames, *weight)
            })
            .collect();
        folder.add_interned(interned.len(), |i, frames| {
            frames.extend_from_slice(&interned[i].0);
            interned[i].1
        });
    }

    /// The folded text of `folder`, frames annotated with their kinds.
    fn annotated(folder: &Folder) -> String {
        let mut out = Vec::new();
        folder.write_folded_annotated(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn owned_names_are_interned_as_borrowed_ones() {
        let mut borrowed = Folder::new();
        let mut owned = Folder::new();
        owned.reserve_names(2);
        for name in ["main", "spin", "main", "sys", "spin"] {
            assert_eq!(
                owned.intern_owned_name(Box::from(name)),
                borrowed.intern_name(name),
                "{name}"
            );
        }
        assert_eq!(owned.names.len(), 3);
        assert_eq!(owned.intern_name("sys"), borrowed.intern_name("sys"));
    }

    #[test]
    fn interned_names_equal_adding_names() {
        let mut by_name = Folder::new();
        by_name.add_with_kinds(&[("main", FrameKind::User), ("sys", FrameKind::Kernel)], 2);
        by_name.add_with_kinds(&[("main", FrameKind::User), ("a;b", FrameKind::User)], 3);
        by_name.add_with_kinds(&[], 4);
        let mut by_id = Folder::new();
        add_interned_names(
            &mut by_id,
            &[
                (&[("main", FrameKind::User), ("sys", FrameKind::Kernel)], 2),
                (&[("main", FrameKind::User), ("a;b", FrameKind::User)], 3),
                (&[], 4),
                (&[("main", FrameKind::User)], 0),
                (&[("main", FrameKind::User), ("a;b", FrameKind::User)], 0),
            ],
        );
        assert_eq!(annotated(&by_id), annotated(&by_name));
        assert_eq!(
            annotated(&by_id),
            "[unknown] 4\nmain;a:b 3\nmain;sys_[k] 2\n"
        );
        assert_eq!(by_id.total(), 9);
    }

    // See: issue #13 (stacks added in bulk are summed where they are read)
    #[test]
    fn stacks_added_in_bulk_more_than_once_are_summed_in_every_output() {
        let mut once = Folder::new();
        once.add_with_kinds(&[("main", FrameKind::User), ("sys", FrameKind::Kernel)], 7);
        once.add_with_kinds(&[("main", FrameKind::User), ("a;b", FrameKind::User)], 3);
        let mut repeated = Folder::new();
        repeated.add_with_kinds(&[("main", FrameKind::User), ("sys", FrameKind::Kernel)], 2);
        add_interned_names(
            &mut repeated,
            &[
                (&[("main", FrameKind::User), ("sys", FrameKind::Kernel)], 4),
                (&[("main", FrameKind::User), ("a;b", FrameKind::User)], 3),
                (&[("main", FrameKind::User), ("sys", FrameKind::Kernel)], 1),
            ],
        );
        assert_eq!(annotated(&repeated), "main;a:b 3\nmain;sys_[k] 7\n");
        assert_eq!(annotated(&repeated), annotated(&once));
        assert_eq!(folded(&repeated), folded(&once));
        assert_eq!(repeated.len(), 2);
        assert_eq!(repeated.total(), 10);
        assert!(repeated.stacks().eq(once.stacks()));
        assert!(repeated.stacks_with_kinds().eq(once.stacks_with_kinds()));
        let svg = |f: &Folder| {
            let mut out = Vec::new();
            crate::render_svg(f, &crate::SvgOptions::default(), &mut out).unwrap();
            out
        };
        assert_eq!(svg(&repeated), svg(&once));
        // Merged into another folder, they are summed there too.
        let mut merged = Folder::new();
        merged.add(&["other"], 1);
        merged.merge(repeated);
        assert_eq!(folded(&merged), "main;a:b 3\nmain;sys 7\nother 1\n");
    }

    #[test]
    fn weights_saturate_instead_of_overflowing() {
        let mut f = Folder::new();
        f.add(&["a"], u64::MAX);
        f.add(&["a"], 5);
        assert_eq!(f.total(), u64::MAX);
        assert_eq!(folded(&f), format!("a {}\n", u64::MAX));
    }

    /// Builds a deterministic pseudo-random set of stacks (xorshift; no `rand` dependency).
    fn synthetic_stacks(n: usize) -> Vec<(Vec<String>, u64)> {
        let mut next = test_random(0x9e37_79b9_7f4a_7c15);
        (0..n)
            .map(|_| {
                let depth = 1 + (next() % 8) as usize;
                let stack = (0..depth).map(|_| format!("f{}", next() % 40)).collect();
                (stack, 1 + next() % 100)
            })
            .collect()
    }

    fn fold_parallel(stacks: &[(Vec<String>, u64)], threads: usize) -> Vec<u8> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let folder = pool.install(|| {
            stacks
                .par_iter()
                .with_min_len(7)
                .fold(Folder::new, |mut f, (stack, weight)| {
                    let names: Vec<&str> = stack.iter().map(String::as_str).collect();
                    f.add(&names, *weight);
                    f
                })
                .reduce(Folder::new, |mut a, b| {
                    a.merge(b);
                    a
                })
        });
        let mut out = Vec::new();
        folder.write_folded(&mut out).unwrap();
        out
    }

    #[test]
    fn one_and_many_threads_fold_to_identical_bytes() {
        let stacks = synthetic_stacks(20_000);
        let one = fold_parallel(&stacks, 1);
        assert!(!one.is_empty());
        for threads in [2, 4, 7] {
            assert_eq!(one, fold_parallel(&stacks, threads), "{threads} threads");
        }
        // And equal to a plain sequential fold in reverse order.
        let mut reversed = Folder::new();
        for (stack, weight) in stacks.iter().rev() {
            let names: Vec<&str> = stack.iter().map(String::as_str).collect();
            reversed.add(&names, *weight);
        }
        assert_eq!(one, folded(&reversed).into_bytes());
    }

    #[test]
    fn frame_ordered_lines_equal_folded_lines_sorted_by_frame_order() {
        // Names whose bytewise and frame-by-frame orders differ, that sanitise alike, that are
        // prefixes of others, and every kind.
        let names = [
            "foo", "foo.cold", "foo;bar", "foo:bar", "a b", "Z", "", "fo", "foo_[k]", "\u{1b}",
        ];
        let mut next = test_random(0x2545_f491_4f6c_dd1d);
        let mut f = Folder::new();
        // More distinct stacks than one task ranks: the tasks' runs are laid end to end.
        for _ in 0..3 * STACKS_PER_TASK {
            let depth = (next() % 6) as usize;
            let stack: Vec<(&str, FrameKind)> = (0..depth)
                .map(|_| {
                    let name = names[(next() % names.len() as u64) as usize];
                    (name, FrameKind::ALL[(next() % 6) as usize])
                })
                .collect();
            f.add_with_kinds(&stack, 1 + next() % 1000);
        }
        assert!(f.len() > STACKS_PER_TASK, "{}", f.len());
        for annotate in [false, true] {
            for leaf_first in [false, true] {
                let mut expected = f.folded_lines(annotate, leaf_first);
                expected.sort_by(|a, b| crate::svg::frame_order(&a.0, &b.0));
                assert_eq!(
                    f.frame_ordered_lines(annotate, leaf_first),
                    expected,
                    "annotate={annotate} leaf_first={leaf_first}"
                );
            }
        }
    }

    #[test]
    fn merge_order_does_not_matter() {
        let stacks = synthetic_stacks(3000);
        let parts: Vec<Folder> = stacks
            .chunks(500)
            .map(|chunk| {
                let mut f = Folder::new();
                for (stack, weight) in chunk {
                    let names: Vec<&str> = stack.iter().map(String::as_str).collect();
                    f.add(&names, *weight);
                }
                f
            })
            .collect();
        let mut forward = Folder::new();
        for part in parts.iter().cloned() {
            forward.merge(part);
        }
        let mut backward = Folder::new();
        for part in parts.into_iter().rev() {
            backward.merge(part);
        }
        assert_eq!(folded(&forward), folded(&backward));
        assert_eq!(forward.total(), stacks.iter().map(|(_, w)| w).sum::<u64>());
    }

    #[test]
    fn folded_output_reads_back() {
        let mut f = Folder::new();
        f.add(&["main", "a;b", "c\u{1b}"], 3);
        f.add(&["main", "d"], 4);
        let text = folded(&f);
        let back = Folder::read_folded(text.as_bytes()).unwrap();
        assert_eq!(folded(&back), text);
        assert!(matches!(
            Folder::read_folded("a;b x\n".as_bytes()),
            Err(Error::BadFoldedLine { line: 1, .. })
        ));
    }
}
