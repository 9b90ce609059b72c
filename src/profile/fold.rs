//! The profile folded into weighted name stacks (`comm;main;f;g 42`): what `flame`, `diff`
//! and `report` draw and rank. A sample weighs its period or one ([`Weight`]); its root frame
//! is named by its thread ([`RootBy`]).

use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};
use std::borrow::Cow;
use std::hash::BuildHasher;

use kprof_flamegraph::{Folder, FrameKind as FoldKind, NameId};

use crate::hash_shares::share_of;

use super::{FrameId, FrameKind, Profile, Sample, StackId, StackNode, ThreadId};

/// Samples per share of the key space that [`sums_by_share`] sums on a task of its own, at
/// least: each task reads every sample, so a share must have enough of them to pay for that.
const SAMPLES_PER_SHARE: usize = 64 * 1024;

/// What one sample weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    /// Its period (nanoseconds for cpu-clock, events otherwise), as perf report sums them.
    Period,
    /// One: samples are counted.
    Samples,
}

impl Weight {
    /// What `sample` weighs.
    fn of(self, sample: &Sample) -> u64 {
        match self {
            Weight::Period => sample.period,
            Weight::Samples => 1,
        }
    }
}

/// What names the root frame of each stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootBy {
    /// The thread's command name (perf script's `comm`).
    Comm,
    /// `comm-pid`.
    Process,
    /// `comm-pid/tid`.
    Thread,
    /// The cgroup path (`[unknown cgroup]` when the sample has none), then the comm.
    Cgroup,
}

/// How frame names are built.
#[derive(Clone, Copy, Debug)]
pub struct Naming {
    /// Append ` (file:line)` when known.
    pub lines: bool,
    /// Root frame naming.
    pub root: RootBy,
}

fn fold_kind(kind: FrameKind, inlined: bool) -> FoldKind {
    match (kind, inlined) {
        (FrameKind::Kernel, _) => FoldKind::Kernel,
        (FrameKind::Jit, _) => FoldKind::Jit,
        (_, true) => FoldKind::Inlined,
        (FrameKind::User, false) => FoldKind::User,
        (FrameKind::Unknown, false) => FoldKind::Unknown,
    }
}

/// The summed weight of the samples `keep` accepts, per (thread, stack), in a stable order.
/// Most samples share their stack with others, so outputs work on these instead of samples.
pub fn stack_weights(
    profile: &Profile,
    keep: impl Fn(&Sample) -> bool + Sync,
    weight: Weight,
) -> Vec<((ThreadId, Option<StackId>), u64)> {
    weights_by(profile, keep, weight, |s| (s.thread, s.stack))
}

/// The summed weight of the samples `keep` accepts, per `key` of a sample, in key order.
pub fn weights_by<K: Copy + Ord + std::hash::Hash + Send + Sync>(
    profile: &Profile,
    keep: impl Fn(&Sample) -> bool + Sync,
    weight: Weight,
    key: impl Fn(&Sample) -> K + Sync,
) -> Vec<(K, u64)> {
    let shares = sums_by_share(&profile.samples, |s| keep(s).then(|| key(s)), weight);
    let mut entries: Vec<_> = shares.into_iter().flatten().collect();
    entries.par_sort_unstable_by_key(|&(key, _)| key);
    entries
}

/// The summed weight of `samples` per key (`key` gives none for a sample that does not
/// count), on the thread pool: runs of samples are keyed and their keys dealt into shares of
/// the key space, then each share is summed on a task of its own, so no task's sums are merged
/// into another's (a merge rehashes as many entries as it sums when most keys are distinct, as
/// on machine-wide recordings) and each sample is keyed once (issue #13 point 2). Sums do not
/// depend on the order they are added in: they saturate.
fn sums_by_share<K: Copy + Eq + std::hash::Hash + Send + Sync>(
    samples: &[Sample],
    key: impl Fn(&Sample) -> Option<K> + Sync,
    weight: Weight,
) -> Vec<HashMap<K, u64>> {
    let add = |sums: &mut HashMap<K, u64>, key: K, weight: u64| {
        let sum = sums.entry(key).or_insert(0);
        *sum = sum.saturating_add(weight);
    };
    let shares = match samples.len() / SAMPLES_PER_SHARE {
        0 | 1 => 1,
        most => rayon::current_num_threads().clamp(1, most),
    };
    if shares == 1 {
        let mut sums = HashMap::<K, u64>::default();
        for sample in samples {
            if let Some(key) = key(sample) {
                add(&mut sums, key, weight.of(sample));
            }
        }
        return vec![sums];
    }
    // Per run of samples, per share: its keys and weights.
    let dealt: Vec<Vec<Vec<(K, u64)>>> = samples
        .par_chunks(SAMPLES_PER_SHARE)
        .map(|run| {
            let mut by_share: Vec<Vec<(K, u64)>> = vec![Vec::new(); shares];
            for sample in run {
                let Some(key) = key(sample) else { continue };
                let share = share_of(FxBuildHasher.hash_one(key), shares);
                if let Some(keys) = by_share.get_mut(share) {
                    keys.push((key, weight.of(sample)));
                }
            }
            by_share
        })
        .collect();
    (0..shares)
        .into_par_iter()
        .map(|share| {
            let mut sums = HashMap::<K, u64>::default();
            for run in &dealt {
                for &(key, weight) in run.get(share).into_iter().flatten() {
                    add(&mut sums, key, weight);
                }
            }
            sums
        })
        .collect()
}

/// Folds the samples of `event` (all samples that pass the filters) into named stacks.
pub fn fold(profile: &Profile, event: Option<u16>, weight: Weight, naming: Naming) -> Folder {
    // Every sample counts, as in perf report: one with a corrupt callchain at its sampled
    // instruction (perf script prints no stack for it, and inferno would drop it).
    let mut folder = Folder::new();
    // Each frame, root and cgroup is named and interned once: frames recur in many stacks;
    // each profile stack is folded once, and the weights of the samples whose stacks fold
    // alike (they differ only in addresses, files or modules) are summed on every core before
    // the folder hashes a whole stack (issue #13 points 1 and 2).
    let named = NamedStacks::new(profile, &mut folder, naming.lines);
    // Roots and cgroups by a small index each, so that a sample's key is three integers.
    let mut roots = Interned::default();
    let root_of_thread: Vec<u32> = profile
        .threads
        .iter()
        .map(|thread| roots.index(folder.intern_name(&root_name(thread, naming.root))))
        .collect();
    let unknown_root = roots.index(folder.intern_name("[unknown]"));
    let mut cgroups = Interned::default();
    let mut cgroup_of: HashMap<Option<u64>, u32> = HashMap::default();
    let by_cgroup = naming.root == RootBy::Cgroup;
    if by_cgroup {
        for sample in &profile.samples {
            cgroup_of.entry(sample.cgroup).or_insert_with(|| {
                cgroups.index(folder.intern_name(profile.cgroups.label(sample.cgroup)))
            });
        }
    }
    let key = |sample: &Sample| {
        if event.is_some_and(|e| e != sample.event) {
            return None;
        }
        // A sample whose stack resolved to nothing still counts, under its root alone.
        let node = named.folded(sample.stack);
        let root = root_of_thread
            .get(sample.thread as usize)
            .copied()
            .unwrap_or(unknown_root);
        let cgroup = match by_cgroup {
            true => cgroup_of.get(&sample.cgroup).copied().unwrap_or(NO_CGROUP),
            false => NO_CGROUP,
        };
        Some((cgroup, root, node))
    };
    let folded = sums_by_share(&profile.samples, key, weight);
    let folded: Vec<((u32, u32, u32), u64)> = folded.into_iter().flatten().collect();
    folder.add_interned(folded.len(), |i, stack| {
        let Some(&((cgroup, root, node), weight)) = folded.get(i) else {
            return 0;
        };
        named.push_leaf_first(node, stack);
        stack.extend(roots.name(root).map(|name| (name, FoldKind::User)));
        stack.extend(cgroups.name(cgroup).map(|name| (name, FoldKind::User)));
        stack.reverse();
        weight
    });
    folder
}

/// Names by a dense index, in the order first seen.
#[derive(Default)]
struct Interned {
    names: Vec<NameId>,
    index: HashMap<NameId, u32>,
}

impl Interned {
    fn index(&mut self, name: NameId) -> u32 {
        let names = &mut self.names;
        *self.index.entry(name).or_insert_with(|| {
            names.push(name);
            (names.len() - 1) as u32
        })
    }

    fn name(&self, index: u32) -> Option<NameId> {
        self.names.get(index as usize).copied()
    }
}

/// No cgroup index: roots are not grouped by cgroup.
const NO_CGROUP: u32 = u32::MAX;

/// No folded stack: the caller of an outermost frame, and a profile stack not folded yet.
const NO_NODE: u32 = u32::MAX;

/// A node of [`NamedStacks`]: its caller (or [`NO_NODE`]) and its frame's name and kind.
type NamedNode = (u32, NameId, FoldKind);

/// Profile stacks per share of [`NamedStacks`], at least.
const STACKS_PER_SHARE: usize = 64 * 1024;

/// Frames named per task of [`NamedStacks::new`], at least.
const FRAMES_PER_TASK: usize = 4096;

/// Profile stacks folded into stacks of named frames, a prefix tree like the profile's:
/// profile stacks whose frames have the same names and kinds are one node, and each profile
/// stack is folded once however many samples and threads share it.
///
/// Folded on the thread pool: stacks whose two outermost frames differ in name or kind never
/// fold together, so the profile stacks are dealt into shares by those two frames (a stack
/// of one frame by that frame), and each share folds its own stacks on a task of its own,
/// with its own copies of the outermost nodes its stacks pass through. Two stacks whose named
/// frames are all alike are in one share and get one node (issue #13 point 2).
struct NamedStacks {
    /// Per share, per node: its caller (or [`NO_NODE`]) and its frame. A node's id is its
    /// index in its share's nodes shifted left by `share_bits`, over its share.
    nodes: Vec<Vec<NamedNode>>,
    /// Bits of a node id that hold its share.
    share_bits: u32,
    /// Per profile stack, its node.
    of_stack: Vec<u32>,
}

/// Where pass one of [`NamedStacks::new`] placed a profile stack: its share, and its index
/// among the stacks of that share.
#[derive(Clone, Copy)]
struct Placed {
    share: u32,
    index: u32,
}

impl NamedStacks {
    /// Folds every stack of `profile`, its frames named in `folder` (` (file:line)` appended
    /// when `lines`).
    fn new(profile: &Profile, folder: &mut Folder, lines: bool) -> Self {
        let stacks = &profile.stacks;
        let shares = match stacks.len() / STACKS_PER_SHARE {
            0 | 1 => 1,
            most => rayon::current_num_threads().clamp(1, most),
        };
        // Node ids carry their share in their low bits, and stay below `u32::MAX` (no node):
        // one share where they could not.
        let shares = match stacks.len() << shares.next_power_of_two().trailing_zeros() {
            fits if fits < NO_NODE as usize => shares,
            _ => 1,
        };
        let share_bits = shares.next_power_of_two().trailing_zeros();
        // Pass one, in stack order: each frame named the first time a stack has it (the order
        // the folder's names always had), and each stack placed. A parent comes before its
        // children (see `Profile::stacks`); one that does not is taken for none.
        let mut frame_keys: Vec<Option<(NameId, FoldKind)>> = vec![None; profile.frames.len()];
        // Every frame's name is made on the pool, so that naming one here only hashes it.
        let mut names: Vec<Option<Box<str>>> = profile
            .frames
            .par_iter()
            .with_min_len(FRAMES_PER_TASK)
            .map(|frame| Some(Box::from(frame_name(&frame.function, frame, lines))))
            .collect();
        folder.reserve_names(names.len());
        let mut placed: Vec<Placed> = Vec::with_capacity(stacks.len());
        let mut counts = vec![0u32; shares];
        for (id, node) in stacks.iter().enumerate() {
            let names = (names.as_mut_slice(), lines);
            let key = Self::frame_key(profile, folder, &mut frame_keys, names, node.frame);
            let share = match Self::parent(stacks, id).map(|parent| (parent, stacks[parent].parent))
            {
                // Below two frames, a stack is where its caller is.
                Some((parent, Some(_))) => placed[parent].share as usize,
                Some((parent, None)) => {
                    let outer = frame_keys[stacks[parent].frame as usize];
                    share_of(FxBuildHasher.hash_one((outer, key)), shares)
                }
                None => share_of(
                    FxBuildHasher.hash_one((None::<(NameId, FoldKind)>, key)),
                    shares,
                ),
            };
            placed.push(Placed {
                share: share as u32,
                index: counts[share],
            });
            counts[share] += 1;
        }
        let frame_keys = &frame_keys;
        let placed_ref = &placed;
        let folded: Vec<(Vec<NamedNode>, Vec<u32>)> = (0..shares)
            .into_par_iter()
            .map(|share| {
                let to_id = |index: usize| (index << share_bits | share) as u32;
                let mut nodes: Vec<NamedNode> = Vec::new();
                let mut ids: HashMap<NamedNode, u32> =
                    HashMap::with_capacity_and_hasher(counts[share] as usize, FxBuildHasher);
                let mut intern = |key: NamedNode| {
                    *ids.entry(key).or_insert_with(|| {
                        nodes.push(key);
                        to_id(nodes.len() - 1)
                    })
                };
                // Pass one named the frame of every stack.
                let key_of = |id: usize| frame_keys[stacks[id].frame as usize];
                let mut of_index: Vec<u32> = Vec::with_capacity(counts[share] as usize);
                for (id, place) in placed_ref.iter().enumerate() {
                    if place.share as usize != share {
                        continue;
                    }
                    let caller = match Self::parent(stacks, id) {
                        None => NO_NODE,
                        Some(parent) => match placed_ref[parent] {
                            Placed {
                                share: there,
                                index,
                            } if there as usize == share => of_index[index as usize],
                            // An outermost stack of another share: this share's copy.
                            _ => key_of(parent)
                                .map_or(NO_NODE, |(name, kind)| intern((NO_NODE, name, kind))),
                        },
                    };
                    let node =
                        key_of(id).map_or(NO_NODE, |(name, kind)| intern((caller, name, kind)));
                    of_index.push(node);
                }
                (nodes, of_index)
            })
            .collect();
        let of_stack = placed
            .par_iter()
            .map(|place| folded[place.share as usize].1[place.index as usize])
            .collect();
        NamedStacks {
            nodes: folded.into_iter().map(|(nodes, _)| nodes).collect(),
            share_bits,
            of_stack,
        }
    }

    /// The caller of profile stack `id`, if it has one before it.
    fn parent(stacks: &[StackNode], id: usize) -> Option<usize> {
        let parent = stacks[id].parent? as usize;
        (parent < id).then_some(parent)
    }

    /// The name and kind of `frame`, named in `folder` the first time (its name taken from
    /// `names`, made with `lines`).
    fn frame_key(
        profile: &Profile,
        folder: &mut Folder,
        frame_keys: &mut [Option<(NameId, FoldKind)>],
        (names, lines): (&mut [Option<Box<str>>], bool),
        id: FrameId,
    ) -> (NameId, FoldKind) {
        *frame_keys[id as usize].get_or_insert_with(|| {
            let frame = &profile.frames[id as usize];
            let name = names[id as usize]
                .take()
                .unwrap_or_else(|| frame_name(&frame.function, frame, lines).into());
            (
                folder.intern_owned_name(name),
                fold_kind(frame.kind, frame.inlined),
            )
        })
    }

    /// The node of profile stack `leaf` ([`NO_NODE`] for none).
    fn folded(&self, leaf: Option<StackId>) -> u32 {
        leaf.and_then(|stack| self.of_stack.get(stack as usize).copied())
            .unwrap_or(NO_NODE)
    }

    /// Pushes the frames of `node` onto `stack`, leaf first.
    fn push_leaf_first(&self, node: u32, stack: &mut Vec<(NameId, FoldKind)>) {
        let share_mask = (1 << self.share_bits) - 1;
        let mut next = node as usize;
        while let Some(&(caller, name, kind)) = self
            .nodes
            .get(next & share_mask)
            .and_then(|nodes| nodes.get(next >> self.share_bits))
        {
            stack.push((name, kind));
            next = caller as usize;
        }
    }
}

/// A frame's name in folded stacks: its function, with ` (file:line)` when `lines`.
fn frame_name<'a>(function: &'a str, frame: &super::Frame, lines: bool) -> Cow<'a, str> {
    match (&frame.file, frame.line, lines) {
        (Some(file), Some(line), true) => {
            let base = file.rsplit('/').next().unwrap_or(file);
            Cow::Owned(format!("{function} ({base}:{line})"))
        }
        _ => Cow::Borrowed(function),
    }
}

/// The root frame's name for a thread.
fn root_name(thread: &super::Thread, root: RootBy) -> String {
    let comm = thread.name.replace(' ', "_");
    match root {
        RootBy::Comm | RootBy::Cgroup => comm,
        RootBy::Process => format!("{comm}-{}", thread.pid_signed()),
        RootBy::Thread => format!("{comm}-{}/{}", thread.pid_signed(), thread.tid_signed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{AnalysisOptions, analyze};
    use kprof_perfdata::kinds::{record as rk, sample as st};
    use kprof_perfdata::{Endian, PerfFile};
    use kprof_test_support::{AttrSpec, RecordBuilder};

    use kprof_perfdata::kinds::context::{KERNEL as CONTEXT_KERNEL, USER as CONTEXT_USER};
    const KERNEL_START: u64 = 0xffff_ffff_8100_0000;

    /// A `perf record -c 10000 -g` file: samples of a process that has no COMM or MMAP yet
    /// (as right after an exec), with a kernel stack, a corrupt callchain, an empty one and
    /// no callchain at all.
    fn recording() -> Vec<u8> {
        let e = Endian::Little;
        let mut r = RecordBuilder::new(e);
        // The kernel image, mapped for every process (pid -1).
        r.record(rk::MMAP, 1, |b| {
            b.u32(u32::MAX)
                .u32(u32::MAX)
                .u64(KERNEL_START)
                .u64(0x100_0000)
                .u64(KERNEL_START)
                .cstr(b"[kernel.kallsyms]_text");
        });
        let mut sample = |misc: u16, ip: u64, chain: &[u64]| {
            r.record(rk::SAMPLE, misc, |b| {
                b.u64(ip).u32(42).u32(42).u64(1_000);
                b.u64(chain.len() as u64);
                for &entry in chain {
                    b.u64(entry);
                }
            });
        };
        let kernel_ip = KERNEL_START + 0x110;
        sample(
            1,
            kernel_ip,
            &[CONTEXT_KERNEL, kernel_ip, KERNEL_START + 0x210],
        );
        sample(2, 0x40_1000, &[CONTEXT_USER, 0x40_1000, u64::MAX]);
        sample(2, 0x40_2000, &[CONTEXT_USER]);
        sample(2, 0x40_3000, &[]);
        let spec = AttrSpec {
            sample_type: st::IP | st::TID | st::TIME | st::CALLCHAIN,
            sample_period_or_freq: 10_000,
            ..AttrSpec::default()
        };
        crate::analysis::test_file(spec, r)
    }

    // See: issue #10 points 1 and 7
    #[test]
    fn every_sample_of_an_unknown_thread_counts_with_its_fixed_period() {
        let dir = std::env::temp_dir().join(format!("kprof-flame-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kallsyms = dir.join("kallsyms");
        std::fs::write(
            &kallsyms,
            format!(
                "{:016x} T exec_binprm\n{:016x} T do_execveat_common\n{:016x} T _etext\n",
                KERNEL_START + 0x100,
                KERNEL_START + 0x200,
                KERNEL_START + 0x1000
            ),
        )
        .unwrap();
        let bytes = recording();
        let file = PerfFile::parse(&bytes).unwrap();
        let options = AnalysisOptions {
            kallsyms: Some(kallsyms),
            ..AnalysisOptions::default()
        };
        let profile = analyze(&file, &options).unwrap().profile;
        let _ = std::fs::remove_dir_all(&dir);
        // No PERIOD in the samples: each weighs the attr's sample_period.
        assert_eq!(profile.events[0].total_period, 4 * 10_000);
        let naming = Naming {
            lines: false,
            root: RootBy::Comm,
        };
        let folder = fold(&profile, Some(0), Weight::Period, naming);
        let mut folded = Vec::new();
        folder.write_folded(&mut folded).unwrap();
        let folded = String::from_utf8(folded).unwrap();
        let total: u64 = folded
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, 4 * 10_000, "{folded}");
        // Kernel frames resolve although the thread is not known yet; the user addresses
        // have no mapping: unknown, but counted, each at its sampled instruction.
        assert!(
            folded.contains(":42;do_execveat_common;exec_binprm 10000\n"),
            "{folded}"
        );
        assert!(folded.contains(":42;[unknown] 30000\n"), "{folded}");
    }

    // See: issue #14 point 3 (samples without a known cgroup are never given a made-up path)
    #[test]
    fn per_cgroup_roots_are_recorded_paths_or_unknown() {
        let mut r = RecordBuilder::new(Endian::Little);
        r.record(rk::CGROUP, 0, |b| {
            b.u64(11).cstr(b"/web");
        });
        let mut sample = |pid: u32, cgroup: u64| {
            r.record(rk::SAMPLE, 2, |b| {
                b.u64(0x40_1000).u32(pid).u32(pid).u64(1_000).u64(cgroup);
            });
        };
        sample(7, 11);
        sample(7, 11);
        sample(8, 99); // no CGROUP record names 99
        let spec = AttrSpec {
            sample_type: st::IP | st::TID | st::TIME | st::CGROUP,
            sample_period_or_freq: 10,
            ..AttrSpec::default()
        };
        let bytes = crate::analysis::test_file(spec, r);
        let file = PerfFile::parse(&bytes).unwrap();
        let profile = analyze(&file, &AnalysisOptions::default()).unwrap().profile;
        let naming = Naming {
            lines: false,
            root: RootBy::Cgroup,
        };
        let mut folded = Vec::new();
        fold(&profile, Some(0), Weight::Samples, naming)
            .write_folded(&mut folded)
            .unwrap();
        let folded = String::from_utf8(folded).unwrap();
        let roots: Vec<(&str, u64)> = folded
            .lines()
            .map(|l| {
                let (stack, weight) = l.rsplit_once(' ').unwrap();
                (stack.split(';').next().unwrap(), weight.parse().unwrap())
            })
            .collect();
        assert_eq!(roots, [("/web", 2), ("[unknown cgroup]", 1)], "{folded}");
    }

    // See: issue #13 point 2 (sums on every core, the same as one pass)
    #[test]
    fn shares_of_the_key_space_sum_what_one_pass_sums() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let samples: Vec<Sample> = (0..3 * SAMPLES_PER_SHARE)
            .map(|i| Sample {
                thread: (next() % 50) as ThreadId,
                event: (i % 2) as u16,
                time: i as u64,
                period: 1 + next() % 1000,
                stack: Some((next() % 5000) as StackId),
                cpu: None,
                broken_callchain: false,
                cgroup: None,
            })
            .collect();
        let key = |s: &Sample| (s.event == 1).then_some((s.thread, s.stack));
        let mut expected: HashMap<(ThreadId, Option<StackId>), u64> = HashMap::default();
        for sample in &samples {
            if let Some(key) = key(sample) {
                *expected.entry(key).or_insert(0) += sample.period;
            }
        }
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let shares = pool.install(|| sums_by_share(&samples, key, Weight::Period));
            assert_eq!(shares.len(), threads.min(3), "{threads} threads");
            let total: usize = shares.iter().map(HashMap::len).sum();
            let summed: HashMap<_, u64> = shares.into_iter().flatten().collect();
            // Each key in one share only, with the sum of one pass.
            assert_eq!(total, summed.len(), "{threads} threads");
            assert_eq!(summed, expected, "{threads} threads");
        }
    }

    // See: issue #13 point 2 (stacks folded in shares, on every core, as in one pass)
    #[test]
    fn stacks_folded_in_shares_fold_as_one_pass_would() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        // Few names in several modules and kinds: many frames fold alike, at every depth.
        let names = ["[unknown]", "_start", "main", "f", "g", "memcpy"];
        let frames: Vec<super::super::Frame> = (0..60)
            .map(|i| super::super::Frame {
                function: names[i % names.len()].into(),
                module: format!("/m{}", i / names.len()).into(),
                file: None,
                line: None,
                kind: [FrameKind::User, FrameKind::Kernel][i / 30],
                inlined: false,
                module_offset: i as u64,
            })
            .collect();
        // A prefix tree whose parents come before their children: about a tenth are roots.
        let mut stacks = Vec::new();
        for id in 0..3 * STACKS_PER_SHARE as u64 {
            let parent = (id > 0 && next(10) > 0).then(|| next(id) as StackId);
            let frame = next(frames.len() as u64) as super::super::FrameId;
            stacks.push(StackNode { parent, frame });
        }
        let samples = (0..2 * STACKS_PER_SHARE as u64)
            .map(|i| Sample {
                thread: 0,
                event: 0,
                time: i,
                period: 1 + next(100),
                stack: Some(next(stacks.len() as u64) as StackId),
                cpu: None,
                broken_callchain: false,
                cgroup: None,
            })
            .collect();
        let profile = Profile {
            frames,
            stacks,
            samples,
            threads: vec![super::super::Thread {
                pid: 1,
                tid: 1,
                name: "app".into(),
                process_name: "app".into(),
            }],
            ..Profile::default()
        };
        // The stacks by name, summed: what folding must give.
        let mut expected: std::collections::BTreeMap<String, u64> = Default::default();
        for sample in &profile.samples {
            let mut frames = Vec::new();
            let mut next = sample.stack;
            while let Some(id) = next {
                let node = profile.stacks[id as usize];
                frames.push(&*profile.frames[node.frame as usize].function);
                next = node.parent;
            }
            frames.push("app");
            frames.reverse();
            *expected.entry(frames.join(";")).or_insert(0) += sample.period;
        }
        let expected: String = expected
            .iter()
            .map(|(stack, weight)| format!("{stack} {weight}\n"))
            .collect();
        let naming = Naming {
            lines: false,
            root: RootBy::Comm,
        };
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let folder = pool.install(|| fold(&profile, Some(0), Weight::Period, naming));
            let mut folded = Vec::new();
            folder.write_folded(&mut folded).unwrap();
            assert!(
                String::from_utf8(folded).unwrap() == expected,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn sums_of_huge_periods_saturate_instead_of_overflowing() {
        let sample = |period: u64, chunk: usize| Sample {
            thread: 0,
            event: 0,
            time: chunk as u64,
            period,
            stack: None,
            cpu: None,
            broken_callchain: false,
            cgroup: None,
        };
        // Enough samples for several of the summing tasks, each near the largest period.
        let samples = (0..3 * SAMPLES_PER_SHARE)
            .map(|i| sample(u64::MAX / 2, i))
            .collect();
        let profile = Profile {
            samples,
            ..Profile::default()
        };
        let sums = stack_weights(&profile, |_| true, Weight::Period);
        assert_eq!(sums, [((0, None), u64::MAX)]);
        let counted = stack_weights(&profile, |_| true, Weight::Samples);
        assert_eq!(counted, [((0, None), 3 * SAMPLES_PER_SHARE as u64)]);
    }
}
