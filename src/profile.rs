//! The symbolized profile: the one model that `flame`, `report`, `diff` and `export` read.
//!
//! A [`Profile`] is built once from a perf.data file (see [`crate::analysis`]): every sample's stack is
//! unwound, symbolized and interned into a prefix tree of [`StackNode`]s, so equal stacks share
//! storage and exporters that want a stack table (Firefox, pprof) get one for free.

pub mod fold;

use std::sync::Arc;

/// Index into [`Profile::frames`].
pub type FrameId = u32;
/// Index into [`Profile::stacks`].
pub type StackId = u32;
/// Index into [`Profile::threads`].
pub type ThreadId = u32;

/// What kind of code a frame is in; renderers colour by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    /// User-space code from an ELF file.
    User,
    /// Kernel code (`[kernel.kallsyms]` or a kernel module).
    Kernel,
    /// JIT code described by a `/tmp/perf-PID.map` file.
    Jit,
    /// An address no mapping covers.
    Unknown,
}

/// One symbolized frame. Inlined functions are frames of their own with `inlined: true`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name, or `module+0xoffset` when no symbol covers the address.
    pub function: Arc<str>,
    /// Module (DSO) path as the recording named it, e.g. `/usr/lib/x86_64-linux-gnu/libc.so.6`
    /// or `[kernel.kallsyms]`.
    pub module: Arc<str>,
    /// Source file, when line information was asked for and found.
    pub file: Option<Arc<str>>,
    /// Source line, when line information was asked for and found.
    pub line: Option<u32>,
    /// Kernel, user, JIT or unknown.
    pub kind: FrameKind,
    /// True for a frame inlined into its caller (the next frame towards the root).
    pub inlined: bool,
    /// Address relative to the module (file-relative for ELF files, absolute for the kernel
    /// and JIT code) of the innermost sampled instruction this frame stands for.
    pub module_offset: u64,
}

/// A node of the stack prefix tree: a frame and the stack that called it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackNode {
    /// The calling stack, `None` for a root frame.
    pub parent: Option<StackId>,
    /// The frame at the top of this stack.
    pub frame: FrameId,
}

/// A process's thread as the recording saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Thread name (`comm`), as the last COMM record before its samples named it.
    pub name: String,
    /// Name of the process (the comm of its main thread).
    pub process_name: String,
}

impl Thread {
    /// The pid as perf prints it: signed, so that "no process" is `-1`, not `4294967295`.
    pub fn pid_signed(&self) -> i32 {
        self.pid as i32
    }

    /// The tid as perf prints it: signed (`-1` for a task being reaped).
    pub fn tid_signed(&self) -> i32 {
        self.tid as i32
    }
}

/// An event (perf attr) samples were taken for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Name as perf prints it, e.g. `cpu-clock` or `sched:sched_switch`.
    pub name: String,
    /// Number of samples of this event.
    pub sample_count: u64,
    /// Sum of their periods.
    pub total_period: u64,
}

/// One sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The thread it was taken in.
    pub thread: ThreadId,
    /// Index into [`Profile::events`].
    pub event: u16,
    /// Timestamp in nanoseconds (perf clock), 0 if the file has none.
    pub time: u64,
    /// The sample's period (what `perf report` sums), at least 1.
    pub period: u64,
    /// Leaf of the sample's stack, `None` for an empty stack.
    pub stack: Option<StackId>,
    /// CPU the sample was taken on, when recorded.
    pub cpu: Option<u32>,
    /// The recorded callchain was corrupt (a context marker the kernel never writes); `stack`
    /// then holds only the sampled instruction. `perf report` counts such a sample at its
    /// instruction, `perf script` prints no stack for it; kprof's report, flame graph and
    /// script all count it at its instruction.
    pub broken_callchain: bool,
    /// The id of the cgroup it was taken in (PERF_SAMPLE_CGROUP), when recorded; its path is
    /// [`Profile::cgroup_label`].
    pub cgroup: Option<u64>,
}

/// Facts about the recording, from the perf.data header and feature sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// `perf` version (or kprof version) that wrote the file.
    pub perf_version: Option<String>,
    /// Host name of the recording machine.
    pub hostname: Option<String>,
    /// Kernel release of the recording machine.
    pub os_release: Option<String>,
    /// Architecture of the recording machine, e.g. `x86_64` or `aarch64`.
    pub arch: Option<String>,
    /// The command line that made the recording.
    pub cmdline: Option<String>,
    /// Number of lost samples (LOST and LOST_SAMPLES records).
    pub lost_samples: u64,
}

/// A whole symbolized profile.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Interned frames.
    pub frames: Vec<Frame>,
    /// Stack prefix tree; a child always has a larger id than its parent.
    pub stacks: Vec<StackNode>,
    /// Threads that have samples.
    pub threads: Vec<Thread>,
    /// Events that were sampled.
    pub events: Vec<Event>,
    /// Samples in time order.
    pub samples: Vec<Sample>,
    /// Header facts.
    pub meta: Meta,
    /// Cgroup names (PERF_RECORD_CGROUP) for the samples' cgroup ids.
    pub cgroups: kprof_perfdata::cgroups::CgroupNames,
}

impl Profile {
    /// What a sample's cgroup is shown as: its path, or `[unknown cgroup]` when the sample has
    /// none or the recording never named it.
    pub fn cgroup_label(&self, sample: &Sample) -> &str {
        self.cgroups.label(sample.cgroup)
    }

    /// The frames of `stack` from the leaf to the root.
    pub fn frames_leaf_first(&self, stack: Option<StackId>) -> impl Iterator<Item = FrameId> + '_ {
        let mut next = stack;
        std::iter::from_fn(move || {
            let node = self.stacks.get(next? as usize)?;
            next = node.parent;
            Some(node.frame)
        })
    }
}
