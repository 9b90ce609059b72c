//! A recording session: opening one fd per (event, task, CPU), one ring per CPU with the other fds
//! redirected into it, the poll/drain loop, stop conditions (workload exit, a stop signal,
//! duration, the output failing) and lost-sample accounting.
//!
//! The kernel is reached only through [`Syscalls`], so the loop's logic is tested with a fake.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::time::{Duration, Instant};

use kprof_perfdata::kinds::record as record_kind;
use kprof_perfdata::writer::{self, SampleIdLayout};
use kprof_perfdata::{CpuMode, Endian, Record, RecordParseInfo, SampleId};
use perf_event_open_sys::bindings as b;

use crate::error::{Error, Result};
use crate::events::{self, EventAttr, EventSpec};
use crate::perms;
use crate::ring::{self, RawData, RingMemory};
use crate::sys::{self, ChildExit, PerfEventFd, RingMapping, SignalPipe};

/// The kernel interface the session needs; [`SystemCalls`] is the real one.
pub trait Syscalls {
    /// An open event.
    type Event;
    /// A mapped ring buffer.
    type Ring: RingMemory;
    /// `perf_event_open(attr, pid, cpu)`.
    fn open_event(&mut self, attr: &EventAttr, pid: i32, cpu: i32) -> io::Result<Self::Event>;
    /// `PERF_EVENT_IOC_ID`.
    fn event_id(&mut self, event: &Self::Event) -> io::Result<u64>;
    /// Maps a ring of `data_pages` pages for `event`.
    fn map_ring(&mut self, event: &Self::Event, data_pages: usize) -> io::Result<Self::Ring>;
    /// `PERF_EVENT_IOC_SET_OUTPUT`.
    fn set_output(&mut self, event: &Self::Event, target: &Self::Event) -> io::Result<()>;
    /// `PERF_EVENT_IOC_ENABLE`.
    fn enable(&mut self, event: &Self::Event) -> io::Result<()>;
    /// `PERF_EVENT_IOC_DISABLE`.
    fn disable(&mut self, event: &Self::Event) -> io::Result<()>;
    /// `PERF_EVENT_IOC_SET_FILTER` (tracepoint filters). Unsupported unless implemented.
    fn set_filter(&mut self, event: &Self::Event, filter: &std::ffi::CStr) -> io::Result<()> {
        let _ = (event, filter);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// The event's counts (`read()` with `PERF_FORMAT_ID`, plus `PERF_FORMAT_LOST` when
    /// `with_lost`).
    fn read_counts(&mut self, event: &Self::Event, with_lost: bool) -> io::Result<EventCounts>;
    /// Waits until one of `watched` has data or hangs up, a signal arrives, or `timeout` passes.
    fn wait(&mut self, watched: &[&Self::Event], timeout: Duration) -> io::Result<Wakeup>;
    /// Non-blocking `waitpid`.
    fn child_status(&mut self, pid: i32) -> io::Result<Option<ChildExit>>;
    /// `kill(pid, sig)`.
    fn kill(&mut self, pid: i32, sig: i32) -> io::Result<()>;
}

/// What `read()` of one event's fd says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventCounts {
    /// The counter: how many times the event fired while enabled (with `inherit`, its child
    /// tasks' included).
    pub value: u64,
    /// Records of this event the kernel could not write (`PERF_FORMAT_LOST`): its samples and
    /// the side-band records (COMM, MMAP, EXIT...) it carried. `None` before Linux 6.0.
    pub lost: Option<u64>,
}

/// What [`Syscalls::wait`] saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wakeup {
    /// Signals caught since the last wait, in arrival order.
    pub signals: Vec<i32>,
    /// Indexes (into the slice passed to `wait`) of fds that hung up: their task is gone.
    pub hung_up: Vec<usize>,
}

/// The real kernel, with the stop signals ([`sys::STOP_SIGNALS`]) and SIGCHLD caught in a
/// self-pipe while it lives.
#[derive(Debug)]
pub struct SystemCalls {
    signals: SignalPipe,
    /// `-G`: every event counts this cgroup's tasks (the task argument is ignored).
    cgroup: Option<std::fs::File>,
}

impl SystemCalls {
    /// Installs the signal handlers (restored on drop).
    pub fn new() -> Result<Self> {
        let signals = SignalPipe::install().map_err(|source| Error::Syscall {
            what: "installing signal handlers".into(),
            source,
        })?;
        Ok(SystemCalls {
            signals,
            cgroup: None,
        })
    }

    /// Opens every event for the tasks of the cgroup whose directory is `dir`
    /// (`PERF_FLAG_PID_CGROUP`), on each CPU of the plan.
    pub fn in_cgroup(mut self, dir: std::fs::File) -> Self {
        self.cgroup = Some(dir);
        self
    }
}

impl Syscalls for SystemCalls {
    type Event = PerfEventFd;
    type Ring = RingMapping;

    fn open_event(&mut self, attr: &EventAttr, pid: i32, cpu: i32) -> io::Result<PerfEventFd> {
        match &self.cgroup {
            Some(dir) => {
                use std::os::fd::AsFd;
                sys::perf_event_open_in(
                    &attr.to_kernel(),
                    sys::EventScope::Cgroup(dir.as_fd()),
                    cpu,
                    None,
                )
            }
            None => sys::perf_event_open(&attr.to_kernel(), pid, cpu),
        }
    }
    fn event_id(&mut self, event: &PerfEventFd) -> io::Result<u64> {
        sys::event_id(event)
    }
    fn map_ring(&mut self, event: &PerfEventFd, data_pages: usize) -> io::Result<RingMapping> {
        RingMapping::new(event, data_pages)
    }
    fn set_output(&mut self, event: &PerfEventFd, target: &PerfEventFd) -> io::Result<()> {
        sys::set_output(event, target)
    }
    fn enable(&mut self, event: &PerfEventFd) -> io::Result<()> {
        sys::enable(event)
    }
    fn disable(&mut self, event: &PerfEventFd) -> io::Result<()> {
        sys::disable(event)
    }
    fn set_filter(&mut self, event: &PerfEventFd, filter: &std::ffi::CStr) -> io::Result<()> {
        sys::set_filter(event, filter)
    }
    fn read_counts(&mut self, event: &PerfEventFd, with_lost: bool) -> io::Result<EventCounts> {
        // read_format ID [| LOST]: { value, id[, lost] }.
        let mut buf = [0u8; 24];
        let n = event.read_values(&mut buf)?;
        let word = |at: usize| {
            buf.get(at..at + 8)
                .filter(|_| n >= at + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_ne_bytes)
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short counter read"))
        };
        Ok(EventCounts {
            value: word(0)?,
            lost: if with_lost { Some(word(16)?) } else { None },
        })
    }
    fn wait(&mut self, watched: &[&PerfEventFd], timeout: Duration) -> io::Result<Wakeup> {
        use std::os::fd::AsFd;
        let mut fds = vec![self.signals.fd()];
        fds.extend(watched.iter().map(|r| r.as_fd()));
        let ready = sys::poll(&fds, Some(timeout))?;
        let signals = if ready.readable.contains(&0) {
            self.signals.drain()
        } else {
            Vec::new()
        };
        let hung_up = ready
            .hung_up
            .iter()
            .filter_map(|&i| i.checked_sub(1))
            .collect();
        Ok(Wakeup { signals, hung_up })
    }
    fn child_status(&mut self, pid: i32) -> io::Result<Option<ChildExit>> {
        sys::wait_child(pid, false)
    }
    fn kill(&mut self, pid: i32, sig: i32) -> io::Result<()> {
        sys::kill(pid, sig)
    }
}

/// Call-graph mode (`-g` / `--call-graph`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallGraph {
    /// Frame-pointer chains from the kernel (`PERF_SAMPLE_CALLCHAIN`).
    Fp,
    /// User registers and a copy of the user stack for DWARF unwinding, plus the kernel callchain.
    Dwarf {
        /// Bytes of user stack per sample (8-aligned, at most 65528; default 8192).
        stack_size: u32,
    },
}

/// Default `--call-graph dwarf` stack dump size, like perf.
pub const DEFAULT_DWARF_STACK_SIZE: u32 = 8192;
/// Largest stack dump the kernel accepts (u16 record size minus headers, 8-aligned).
pub const MAX_DWARF_STACK_SIZE: u32 = 65528;

impl CallGraph {
    /// Checks the dwarf stack size (1..=65528) and rounds it up to a multiple of 8.
    pub fn validated(self) -> Result<Self> {
        match self {
            CallGraph::Fp => Ok(self),
            CallGraph::Dwarf { stack_size: n } => {
                let rounded = n.checked_add(7).map_or(u32::MAX, |v| v & !7);
                if n == 0 || rounded > MAX_DWARF_STACK_SIZE {
                    return Err(Error::InvalidOption(format!(
                        "--call-graph dwarf stack size {n} must be between 8 and \
                         {MAX_DWARF_STACK_SIZE}"
                    )));
                }
                Ok(CallGraph::Dwarf {
                    stack_size: rounded,
                })
            }
        }
    }

    /// Parses `fp`, `dwarf` or `dwarf,SIZE` (SIZE rounded up to a multiple of 8).
    pub fn parse(text: &str) -> Result<Self> {
        let (mode, size) = match text.split_once(',') {
            Some((m, s)) => (m, Some(s)),
            None => (text, None),
        };
        match (mode, size) {
            ("fp", None) => Ok(CallGraph::Fp),
            ("dwarf", None) => Ok(CallGraph::Dwarf {
                stack_size: DEFAULT_DWARF_STACK_SIZE,
            }),
            ("dwarf", Some(s)) => {
                let n: u32 = s.trim().parse().map_err(|_| {
                    Error::InvalidOption(format!("--call-graph dwarf stack size '{s}'"))
                })?;
                CallGraph::Dwarf { stack_size: n }.validated()
            }
            _ => Err(Error::InvalidOption(format!(
                "--call-graph '{text}' (expected fp, dwarf or dwarf,SIZE)"
            ))),
        }
    }
}

/// User registers sampled for DWARF unwinding: every general-purpose register.
#[cfg(target_arch = "x86_64")]
pub const USER_REGS_MASK: u64 = {
    // AX..R15 are 0..=23 except the segment registers DS, ES, FS, GS (12..=15),
    // which the kernel refuses for 64-bit tasks.
    let all = (1u64 << 24) - 1;
    all & !(0xf << 12)
};
/// User registers sampled for DWARF unwinding: x0..x30, sp, pc.
#[cfg(target_arch = "aarch64")]
pub const USER_REGS_MASK: u64 = (1u64 << 33) - 1;
/// User registers sampled for DWARF unwinding (none known for this architecture).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const USER_REGS_MASK: u64 = 0;

/// Sampling rate: frequency (`-F`) or period (`-c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Samples per second.
    Frequency(u64),
    /// Events per sample.
    Period(u64),
}

/// Everything the session opens, decided by `record` from the options.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Events in `-e` order.
    pub events: Vec<EventSpec>,
    /// CPUs to open on.
    pub cpus: Vec<u32>,
    /// Tasks to open for; `[-1]` for every task (system-wide).
    pub tasks: Vec<i32>,
    /// The workload's pid when recording a command (events enable on its exec).
    pub workload: Option<i32>,
    /// Sampling rate.
    pub sampling: Sampling,
    /// Call-graph mode.
    pub call_graph: Option<CallGraph>,
    /// Data pages per ring (a power of two).
    pub data_pages: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// True for `-a`/`-C` (affects permission fallbacks).
    pub system_wide: bool,
    /// Skip tasks that vanish while opening (threads of `-p` processes) instead of failing.
    pub skip_vanished_tasks: bool,
    /// `--all-cgroups`: samples carry their cgroup id (PERF_SAMPLE_CGROUP) and the first event
    /// asks for PERF_RECORD_CGROUP records, as perf's `--all-cgroups`.
    pub record_cgroups: bool,
    /// Ask for context-switch records (`context_switch`) on the first event, as perf's
    /// `--switch-events`: when each task goes off and back on a CPU.
    pub switch_events: bool,
}

/// One event as opened: the spec actually used, its attr bytes and the ids of its fds.
#[derive(Debug, Clone)]
pub struct OpenedEvent {
    /// The event actually used (after any cycles → cpu-clock fallback).
    pub spec: EventSpec,
    /// The `perf_event_attr` bytes, as passed to the kernel.
    pub attr_bytes: Vec<u8>,
    /// Ids of every fd opened for it.
    pub ids: Vec<u64>,
    /// True when it samples every hit (a tracepoint or probe with sample period 1): then the
    /// counter minus the samples received is exactly the samples lost.
    pub samples_every_hit: bool,
}

struct OpenFd<E> {
    event: E,
    id: u64,
    cpu: u32,
    task: i32,
}

struct CpuRing<S: Syscalls> {
    cpu: u32,
    /// Index in `fds` of the fd the ring is mapped from.
    fd: usize,
    ring: S::Ring,
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The workload exited (status inside).
    WorkloadExited(ChildExit),
    /// A stop signal (the number): SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 or SIGALRM.
    Signal(i32),
    /// The duration passed.
    Duration,
    /// Every monitored task is gone (`-p`/`-t`).
    TasksGone,
    /// The sink failed to take a record (a full disk, a closed pipe); it knows why.
    OutputFailed,
}

/// Counts kept while recording.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    /// SAMPLE records written.
    pub samples: u64,
    /// PERF_RECORD_LOST records from the kernel (ring overflow episodes).
    pub lost_chunks: u64,
    /// Samples lost. When every event samples every hit (tracepoints, probes), exactly: per fd,
    /// the kernel's count of hits minus the samples received. Otherwise an upper bound: the
    /// kernel counts each dropped record twice, in the ring's LOST records and in the event's
    /// `PERF_FORMAT_LOST` counter, and both include side-band records (COMM, MMAP, EXIT...)
    /// besides samples, so this is the larger of the two sums, not their total.
    pub lost_samples: u64,
    /// Sum of the LOST records' counts.
    pub lost_in_records: u64,
    /// Sum of the per-event `PERF_FORMAT_LOST` counts read at the end.
    pub lost_in_counters: u64,
    /// True when `lost_samples` is exact: every event samples every hit, so each fd's lost
    /// samples are its counter minus the samples received from it.
    pub lost_samples_exact: bool,
    /// Bytes of records written.
    pub bytes: u64,
    /// Rings found with a malformed record header (skipped to head).
    pub corrupt_rings: u64,
    /// Time of the first sample seen, if any.
    pub first_sample_time: Option<u64>,
    /// Time of the last sample seen, if any.
    pub last_sample_time: Option<u64>,
}

/// Where the session's records go: one complete record, possibly in two pieces. A closure
/// taking [`RawData`] is a sink that needs no ticks.
pub trait RecordSink {
    /// Takes one record. An error stops [`Session::run`] with [`StopReason::OutputFailed`].
    fn record(&mut self, raw: RawData<'_>) -> io::Result<()>;

    /// Called after every round of the loop (at least every [`POLL_INTERVAL`]), after the rings
    /// were drained: the place for periodic work such as header checkpoints. An error stops the
    /// loop like a failed record.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(RawData<'_>) -> io::Result<()>> RecordSink for F {
    fn record(&mut self, raw: RawData<'_>) -> io::Result<()> {
        self(raw)
    }
}

/// How often the loop wakes without data, to check the workload and the clock.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// An open recording session.
pub struct Session<S: Syscalls> {
    sys: S,
    events: Vec<OpenedEvent>,
    fds: Vec<OpenFd<S::Event>>,
    rings: Vec<CpuRing<S>>,
    plan: Plan,
    lost_format: bool,
    stats: SessionStats,
    /// How the records of the rings decode: the opened attrs, native byte order.
    records: RecordParseInfo,
    /// A record that wraps the end of its ring, copied into one piece to be decoded.
    wrapped: Vec<u8>,
    /// (kernel, path) of every file MMAP/MMAP2 records named, for build-id collection.
    mapped_files: BTreeSet<(bool, String)>,
    workload_exit: Option<ChildExit>,
    /// Per fd: false once it hung up (its task exited).
    alive: Vec<bool>,
    /// When [`Session::run`] was first called: the duration counts from there.
    started: Option<Instant>,
    /// Samples received per sample id, kept when some event samples every hit.
    received: Option<HashMap<u64, Received>>,
}

/// The samples received from one fd (one sample id).
#[derive(Debug, Default, Clone, Copy)]
struct Received {
    samples: u64,
    /// True once a sample's period was not 1: a tracepoint that adds a weight to its counter
    /// (`__perf_count()`, the `sched:sched_stat_*` family), whose counter is no count of hits.
    weighted: bool,
}

impl<S: Syscalls> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("events", &self.events)
            .field("fds", &self.fds.len())
            .field("rings", &self.rings.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The `sample_type` used for every event of a plan.
pub fn sample_type_for(plan: &Plan, spec: &EventSpec) -> u64 {
    let mut st = u64::from(
        b::PERF_SAMPLE_IP
            | b::PERF_SAMPLE_TID
            | b::PERF_SAMPLE_TIME
            | b::PERF_SAMPLE_CPU
            | b::PERF_SAMPLE_PERIOD
            | b::PERF_SAMPLE_IDENTIFIER,
    );
    match plan.call_graph {
        Some(CallGraph::Fp) => st |= u64::from(b::PERF_SAMPLE_CALLCHAIN),
        Some(CallGraph::Dwarf { .. }) => {
            st |= u64::from(
                b::PERF_SAMPLE_CALLCHAIN | b::PERF_SAMPLE_REGS_USER | b::PERF_SAMPLE_STACK_USER,
            );
        }
        None => {}
    }
    if matches!(spec.kind, events::EventKind::Tracepoint { .. }) {
        st |= u64::from(b::PERF_SAMPLE_RAW);
    }
    if plan.record_cgroups {
        st |= u64::from(b::PERF_SAMPLE_CGROUP);
    }
    // Probe arguments come from the user registers (and a stack copy for USDT memory operands).
    if let Some(site) = events::probe_site(&spec.kind) {
        st |= u64::from(b::PERF_SAMPLE_REGS_USER);
        if site.stack_bytes() > 0 {
            st |= u64::from(b::PERF_SAMPLE_STACK_USER);
        }
    }
    st
}

/// Builds the attr for one event of a plan (type/config resolved by the caller).
pub fn build_attr(plan: &Plan, spec: &EventSpec, type_: u32, config: u64, lost: bool) -> EventAttr {
    let tracepoint = matches!(
        spec.kind,
        events::EventKind::Tracepoint { .. } | events::EventKind::Probe(_)
    );
    let (freq, period_or_freq) = match plan.sampling {
        // Tracepoints and probes sample every hit, as perf does, unless -c says otherwise.
        _ if tracepoint && !matches!(plan.sampling, Sampling::Period(_)) => (false, 1),
        // Off-CPU intervals need every switch and wake-up, whatever -c says.
        _ if tracepoint && plan.switch_events && events::OFF_CPU_EVENTS.contains(&&*spec.name) => {
            (false, 1)
        }
        Sampling::Frequency(hz) => (true, hz),
        Sampling::Period(p) => (false, p),
    };
    let mut read_format = u64::from(b::PERF_FORMAT_ID);
    if lost {
        read_format |= u64::from(b::PERF_FORMAT_LOST);
    }
    let page = sys::page_size();
    let ring_bytes = plan.data_pages.saturating_mul(page);
    let probe = events::probe_site(&spec.kind);
    let (regs, stack) = match (plan.call_graph, probe) {
        (Some(CallGraph::Dwarf { stack_size }), _) => (USER_REGS_MASK, stack_size),
        (_, Some(site)) => (site.sample_regs(), site.stack_bytes()),
        _ => (0, 0),
    };
    let (probe_target, config2) = events::probe_target_fields(&spec.kind);
    EventAttr {
        type_,
        config,
        period_or_freq,
        freq,
        sample_type: sample_type_for(plan, spec),
        read_format,
        disabled: true,
        // Probe events cannot be inherited: at fork the kernel re-reads `config1` (the path
        // pointer) in the forking process, where it is not valid, and the fork fails (EFAULT).
        inherit: !plan.system_wide && probe.is_none(),
        exclude_user: spec.exclude_user,
        exclude_kernel: spec.exclude_kernel,
        exclude_hv: spec.exclude_kernel || spec.exclude_user,
        mmap: true,
        comm: true,
        enable_on_exec: plan.workload.is_some() && !plan.system_wide,
        task: true,
        watermark: true,
        sample_id_all: true,
        mmap2: true,
        comm_exec: true,
        // Session::open keeps it on the first event only.
        cgroup: plan.record_cgroups,
        // Wake up when a quarter of the ring is full (the loop also wakes every POLL_INTERVAL).
        wakeup: u32::try_from(ring_bytes / 4).unwrap_or(u32::MAX).max(1),
        sample_regs_user: regs,
        sample_stack_user: stack,
        sample_max_stack: 0,
        probe_target,
        config2,
        context_switch: false,
    }
}

impl<S: Syscalls> Session<S> {
    /// Opens every fd of the plan and maps the rings. Falls back from `cycles` to `cpu-clock`
    /// without a PMU (one note), and to user-only sampling where paranoia allows (one note).
    /// Nothing is enabled yet.
    pub fn open(mut sys: S, plan: Plan, notes: &mut dyn FnMut(&str)) -> Result<Self> {
        let mut events = Vec::with_capacity(plan.events.len());
        let mut fds: Vec<OpenFd<S::Event>> = Vec::new();
        let mut lost_format = true;
        let mut user_only = false;
        for requested in &plan.events {
            let mut spec = requested.clone();
            if user_only {
                spec.exclude_kernel = true;
            }
            let (mut type_, mut config) = events::type_and_config(&spec.kind)?;
            // PERF_RECORD_CGROUP comes from the first event only, as perf asks only its
            // tracking event for side-band records: one record per new cgroup.
            let tracks_cgroups = plan.record_cgroups && events.is_empty();
            // Context-switch records once, on the first event (another would repeat them).
            let switches = plan.switch_events && events.is_empty();
            let mut attr = build_attr(&plan, &spec, type_, config, lost_format);
            attr.cgroup = tracks_cgroups;
            attr.context_switch = switches;
            let mut ids = Vec::new();
            let mut first = true;
            for &cpu in &plan.cpus {
                for &task in &plan.tasks {
                    let cpu_arg = i32::try_from(cpu).unwrap_or(-1);
                    let opened = loop {
                        match sys.open_event(&attr, task, cpu_arg) {
                            Ok(ev) => break Some(ev),
                            Err(e)
                                if first
                                    && lost_format
                                    && e.raw_os_error() == Some(libc::EINVAL) =>
                            {
                                // Kernels before 6.0 reject PERF_FORMAT_LOST.
                                lost_format = false;
                                attr.read_format &= !u64::from(b::PERF_FORMAT_LOST);
                            }
                            Err(e)
                                if first
                                    && events::is_cycles(&spec)
                                    && events::is_unsupported_error(&e) =>
                            {
                                notes(&cycles_fallback_note(&e));
                                spec = events::cpu_clock_fallback(&spec);
                                (type_, config) = events::type_and_config(&spec.kind)?;
                                attr = build_attr(&plan, &spec, type_, config, lost_format);
                                attr.cgroup = tracks_cgroups;
                                attr.context_switch = switches;
                            }
                            Err(e)
                                if first
                                    && !spec.exclude_kernel
                                    && events::probe_site(&spec.kind).is_none()
                                    && perms::is_permission_error(&e)
                                    && perms::can_fall_back_to_user_only(
                                        perms::paranoid_level(),
                                        plan.system_wide,
                                    ) =>
                            {
                                notes(&perms::user_only_note(perms::paranoid_level().unwrap_or(2)));
                                user_only = true;
                                spec.exclude_kernel = true;
                                attr.exclude_kernel = true;
                                attr.exclude_hv = true;
                            }
                            Err(e)
                                if plan.skip_vanished_tasks
                                    && task > 0
                                    && e.raw_os_error() == Some(libc::ESRCH) =>
                            {
                                break None;
                            }
                            Err(e) => {
                                return Err(open_error(&spec, task, cpu, e, plan.system_wide));
                            }
                        }
                    };
                    let Some(event) = opened else { continue };
                    first = false;
                    let id = sys.event_id(&event).map_err(|source| Error::Syscall {
                        what: format!("reading the id of {}", spec.name),
                        source,
                    })?;
                    ids.push(id);
                    fds.push(OpenFd {
                        event,
                        id,
                        cpu,
                        task,
                    });
                }
            }
            if ids.is_empty() {
                return Err(Error::InvalidOption(format!(
                    "no task left to record for {} (all exited?)",
                    spec.name
                )));
            }
            let samples_every_hit = matches!(
                spec.kind,
                events::EventKind::Tracepoint { .. } | events::EventKind::Probe(_)
            ) && !attr.freq
                && attr.period_or_freq == 1;
            events.push(OpenedEvent {
                attr_bytes: sys::encode_attr(&attr.to_kernel_for_file()),
                spec,
                ids,
                samples_every_hit,
            });
        }
        // One ring per CPU: the first fd opened on each CPU owns it; the others write into it.
        let mut rings: Vec<CpuRing<S>> = Vec::new();
        for i in 0..fds.len() {
            let Some(fd) = fds.get(i) else { continue };
            match rings.iter().find(|r| r.cpu == fd.cpu) {
                Some(r) => {
                    let Some(target) = fds.get(r.fd) else {
                        continue;
                    };
                    sys.set_output(&fd.event, &target.event)
                        .map_err(|source| Error::Syscall {
                            what: format!("redirecting output on CPU {}", fd.cpu),
                            source,
                        })?;
                }
                None => {
                    let ring = sys.map_ring(&fd.event, plan.data_pages).map_err(|e| {
                        perms::explain_mmap(
                            &format!("mapping the ring buffer of CPU {}", fd.cpu),
                            e,
                            plan.data_pages,
                        )
                    })?;
                    rings.push(CpuRing {
                        cpu: fd.cpu,
                        fd: i,
                        ring,
                    });
                }
            }
        }
        let fds_len = fds.len();
        let records = parse_info(&events);
        let received = events
            .iter()
            .any(|e| e.samples_every_hit)
            .then(HashMap::new);
        Ok(Session {
            sys,
            events,
            fds,
            rings,
            plan,
            lost_format,
            stats: SessionStats::default(),
            records,
            wrapped: Vec::new(),
            mapped_files: BTreeSet::new(),
            workload_exit: None,
            alive: vec![true; fds_len],
            started: None,
            received,
        })
    }

    /// The events as opened (for the perf.data attrs section).
    pub fn events(&self) -> &[OpenedEvent] {
        &self.events
    }

    /// The `sample_id_all` trailer layout of the first event (for synthesized records).
    pub fn sample_id_layout(&self) -> SampleIdLayout {
        self.events
            .first()
            .map(|e| SampleIdLayout::from_attr(&e.attr_bytes))
            .unwrap_or_else(SampleIdLayout::none)
    }

    /// The first event's first id (what synthesized records carry as their sample id).
    pub fn first_id(&self) -> u64 {
        self.events
            .first()
            .and_then(|e| e.ids.first().copied())
            .unwrap_or(0)
    }

    /// Sets the tracepoint filter `filter` on every fd of event `index` (in plan order), before
    /// anything is enabled: events it rejects never reach the rings.
    pub fn set_filter(&mut self, index: usize, filter: &std::ffi::CStr) -> Result<()> {
        let Some(event) = self.events.get(index) else {
            return Ok(());
        };
        let name = event.spec.name.clone();
        let ids = event.ids.clone();
        for fd in self.fds.iter().filter(|fd| ids.contains(&fd.id)) {
            self.sys
                .set_filter(&fd.event, filter)
                .map_err(|source| Error::Syscall {
                    what: format!("setting the filter of {name} on CPU {}", fd.cpu),
                    source,
                })?;
        }
        Ok(())
    }

    /// Enables every fd (except for a workload's own fds: they enable themselves at its exec).
    pub fn enable(&mut self) -> Result<()> {
        if self.plan.workload.is_some() && !self.plan.system_wide {
            return Ok(());
        }
        for fd in &self.fds {
            self.sys
                .enable(&fd.event)
                .map_err(|source| Error::Syscall {
                    what: format!("enabling events on CPU {}", fd.cpu),
                    source,
                })?;
        }
        Ok(())
    }

    /// Polls and drains until a stop condition; every record goes to `sink`, and a
    /// FINISHED_ROUND follows every round that wrote something. After a stop by
    /// [`StopReason::OutputFailed`] it can be called again (with a sink that discards) to wait
    /// for the other stop conditions; the duration counts from the first call.
    pub fn run(&mut self, sink: &mut dyn RecordSink) -> Result<StopReason> {
        let started = *self.started.get_or_insert_with(Instant::now);
        let reason = loop {
            let timeout = match self.plan.duration {
                Some(d) => {
                    let left = d.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        break StopReason::Duration;
                    }
                    left.min(POLL_INTERVAL)
                }
                None => POLL_INTERVAL,
            };
            // Attached tasks (-p/-t) are watched through every fd, whose POLLHUP says the task
            // is gone; otherwise the ring fds are enough (the workload is watched with waitpid).
            let attached = self.plan.workload.is_none() && !self.plan.system_wide;
            let watched: Vec<usize> = if attached {
                (0..self.fds.len())
                    .filter(|&i| self.alive.get(i) == Some(&true))
                    .collect()
            } else {
                self.rings.iter().map(|r| r.fd).collect()
            };
            let wakeup = {
                let events: Vec<&S::Event> = watched
                    .iter()
                    .filter_map(|&i| self.fds.get(i).map(|f| &f.event))
                    .collect();
                self.sys
                    .wait(&events, timeout)
                    .map_err(|source| Error::Syscall {
                        what: "polling the ring buffers".into(),
                        source,
                    })?
            };
            if self.drain_all(sink).is_err() || sink.tick().is_err() {
                break StopReason::OutputFailed;
            }
            if attached {
                for &i in &wakeup.hung_up {
                    if let Some(alive) = watched.get(i).and_then(|&fd| self.alive.get_mut(fd)) {
                        *alive = false;
                    }
                }
                if !self.alive.iter().any(|&a| a) {
                    break StopReason::TasksGone;
                }
            }
            let signals = wakeup.signals;
            if let Some(&sig) = signals.iter().find(|s| sys::STOP_SIGNALS.contains(s)) {
                if let Some(pid) = self.plan.workload {
                    // Ctrl-C reaches the workload through the terminal; forward an explicit SIGTERM.
                    if sig == libc::SIGTERM {
                        let _ = self.sys.kill(pid, libc::SIGTERM);
                    }
                }
                break StopReason::Signal(sig);
            }
            if let Some(pid) = self.plan.workload {
                match self.sys.child_status(pid) {
                    Ok(Some(exit)) => {
                        self.workload_exit = Some(exit);
                        break StopReason::WorkloadExited(exit);
                    }
                    Ok(None) => {}
                    Err(source) => {
                        return Err(Error::Syscall {
                            what: "waiting for the workload".into(),
                            source,
                        });
                    }
                }
            }
        };
        Ok(reason)
    }

    /// Disables the events, drains the rings fully, writes LOST_SAMPLES for every fd that lost
    /// samples, and returns the counts.
    ///
    /// Where every event samples every hit, each fd's count is exact: its counter (read after
    /// the last sample was drained) minus the samples received from it, and every fd gets a
    /// LOST_SAMPLES, zeros included, once the rings reported a loss, so that a reader of the
    /// file prefers these counts to the LOST records (which count lost side-band records too).
    /// Otherwise the count is the kernel's `PERF_FORMAT_LOST`.
    pub fn finish(&mut self, sink: &mut dyn RecordSink) -> Result<SessionStats> {
        for fd in &self.fds {
            // A task that exited has nothing left to disable; keep draining regardless.
            let _ = self.sys.disable(&fd.event);
        }
        self.drain_all(sink)?;
        let layout = self.sample_id_layout();
        let mut exact = self.received.is_some();
        let mut per_fd: Vec<(usize, u64)> = Vec::new();
        let mut exact_total = 0u64;
        for (i, fd) in self.fds.iter().enumerate() {
            let event = self.events.iter().find(|e| e.ids.contains(&fd.id));
            let counts = self.sys.read_counts(&fd.event, self.lost_format).ok();
            let counter_lost = counts.and_then(|c| c.lost).unwrap_or(0);
            self.stats.lost_in_counters += counter_lost;
            let exact_lost = match (event, counts, &self.received) {
                (Some(event), Some(counts), Some(received)) if event.samples_every_hit => {
                    exact_lost(event, counts, received, fd.id)
                }
                _ => None,
            };
            match exact_lost {
                Some(lost) => {
                    exact_total += lost;
                    per_fd.push((i, lost));
                }
                None => {
                    exact = false;
                    per_fd.push((i, counter_lost));
                }
            }
        }
        let zeros_too = exact && self.stats.lost_in_records > 0;
        for (i, lost) in per_fd {
            let Some(fd) = self.fds.get(i) else { continue };
            if lost == 0 && !zeros_too {
                continue;
            }
            let sid = SampleId {
                pid: Some(fd.task as u32),
                tid: Some(fd.task as u32),
                time: Some(0),
                id: Some(fd.id),
                cpu: Some(fd.cpu),
                stream_id: Some(0),
            };
            let layout = self
                .events
                .iter()
                .find(|e| e.ids.contains(&fd.id))
                .map(|e| SampleIdLayout::from_attr(&e.attr_bytes))
                .unwrap_or(layout);
            let record = writer::encode_lost_samples(&layout, lost, &sid);
            sink.record(RawData::Single(&record)).map_err(Error::Io)?;
            self.stats.bytes += record.len() as u64;
        }
        self.stats.lost_samples_exact = exact;
        self.stats.lost_samples = if exact {
            exact_total
        } else {
            self.stats.lost_in_records.max(self.stats.lost_in_counters)
        };
        Ok(self.stats)
    }

    /// The workload's exit status, once the session has reaped it.
    pub fn workload_exit(&self) -> Option<ChildExit> {
        self.workload_exit
    }

    /// `(kernel, path)` of every file that MMAP/MMAP2 records named (kernel-sent or synthesized
    /// and passed to [`Session::note_record`]), sorted and without duplicates.
    pub fn mapped_files(&self) -> impl Iterator<Item = (bool, &str)> + '_ {
        self.mapped_files
            .iter()
            .map(|(kernel, path)| (*kernel, path.as_str()))
    }

    /// Notes a record written by someone else (synthesized side-band) for build-id collection.
    pub fn note_record(&mut self, record: &[u8]) {
        self.inspect(RawData::Single(record));
    }

    fn drain_all(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        let mut wrote = false;
        for i in 0..self.rings.len() {
            let Some(slot) = self.rings.get_mut(i) else {
                continue;
            };
            let mut inspected = Vec::new();
            let (records, wrapped) = (&self.records, &mut self.wrapped);
            let sample_ids = self.received.is_some();
            let drained = ring::drain(&mut slot.ring, &mut |raw| {
                inspected.push(classify(records, raw, wrapped, sample_ids));
                sink.record(raw)
            })
            .map_err(Error::Io)?;
            self.stats.bytes += drained.bytes;
            if drained.corrupt {
                self.stats.corrupt_rings += 1;
            }
            wrote |= drained.records > 0;
            for seen in inspected {
                self.account(seen);
            }
        }
        if wrote {
            let round = writer::encode_finished_round();
            sink.record(RawData::Single(&round)).map_err(Error::Io)?;
            self.stats.bytes += round.len() as u64;
        }
        Ok(())
    }

    fn inspect(&mut self, raw: RawData<'_>) {
        let seen = classify(
            &self.records,
            raw,
            &mut self.wrapped,
            self.received.is_some(),
        );
        self.account(seen);
    }

    fn account(&mut self, seen: Seen) {
        match seen {
            Seen::Sample { time, id_period } => {
                self.stats.samples += 1;
                if let (Some(received), Some((id, period))) = (&mut self.received, id_period) {
                    let entry = received.entry(id).or_default();
                    entry.samples += 1;
                    entry.weighted |= period != 1;
                }
                if let Some(t) = time {
                    self.stats.first_sample_time.get_or_insert(t);
                    self.stats.last_sample_time = Some(t);
                }
            }
            Seen::Lost(n) => {
                self.stats.lost_chunks += 1;
                self.stats.lost_in_records += n;
                self.stats.lost_samples =
                    self.stats.lost_in_records.max(self.stats.lost_in_counters);
            }
            Seen::Mapping { kernel, path } => {
                self.mapped_files.insert((kernel, path));
            }
            Seen::Other => {}
        }
    }
}

/// The samples an fd of `event` lost, exactly: its counter minus the samples received with its
/// id. `None` when the counter is no count of hits: the event is weighted (a received sample's
/// period was not 1), or nothing of it was received to tell (then a weighted counter cannot be
/// told from a count), or the counter is below what was received.
fn exact_lost(
    event: &OpenedEvent,
    counts: EventCounts,
    received: &HashMap<u64, Received>,
    id: u64,
) -> Option<u64> {
    let of_event: Vec<&Received> = event.ids.iter().filter_map(|i| received.get(i)).collect();
    if of_event.iter().any(|r| r.weighted) {
        return None;
    }
    let mine = received.get(&id).map_or(0, |r| r.samples);
    if counts.value == mine {
        return Some(0);
    }
    if of_event.iter().all(|r| r.samples == 0) {
        return None;
    }
    counts.value.checked_sub(mine)
}

/// What the session needs to know about a record.
enum Seen {
    Sample {
        time: Option<u64>,
        /// `(id, period)`, decoded only when [`Session::received`] is kept.
        id_period: Option<(u64, u64)>,
    },
    Lost(u64),
    Mapping {
        kernel: bool,
        path: String,
    },
    Other,
}

/// The parse info of the opened events' records: their attrs as the kernel got them (native
/// byte order), each with the ids of its fds.
fn parse_info(events: &[OpenedEvent]) -> RecordParseInfo {
    let attrs = events
        .iter()
        .map(|event| {
            // `attr_bytes` is a whole `perf_event_attr` (128 bytes), which always parses.
            let mut attr = kprof_perfdata::EventAttr::parse(&event.attr_bytes, 0, Endian::NATIVE)
                .unwrap_or_default();
            attr.ids.clone_from(&event.ids);
            attr
        })
        .collect();
    RecordParseInfo::new(attrs, Endian::NATIVE)
}

/// What the session needs of a record: a sample's time, a LOST record's count, the file an
/// MMAP/MMAP2 names. A record that wraps the ring's end is copied into `wrapped` first.
fn classify(
    records: &RecordParseInfo,
    raw: RawData<'_>,
    wrapped: &mut Vec<u8>,
    sample_ids: bool,
) -> Seen {
    let bytes = match raw {
        RawData::Single(bytes) => bytes,
        RawData::Split(first, second) => {
            wrapped.clear();
            wrapped.extend_from_slice(first);
            wrapped.extend_from_slice(second);
            wrapped.as_slice()
        }
    };
    if raw.record_type() == Some(record_kind::SAMPLE) {
        if sample_ids {
            if let Ok(Record::Sample(sample)) = records.decode(bytes, 0).map(|e| e.record) {
                return Seen::Sample {
                    time: sample.time,
                    id_period: sample.id.map(|id| (id, sample.period.unwrap_or(1))),
                };
            }
        }
        // Only its time: decoding the whole sample would cost more for nothing.
        return Seen::Sample {
            time: records.record_time(bytes),
            id_period: None,
        };
    }
    match records.decode(bytes, 0).map(|event| event.record) {
        Ok(Record::Lost(lost)) => Seen::Lost(lost.lost),
        Ok(Record::Mmap(mmap)) => {
            let name = String::from_utf8_lossy(mmap.filename);
            let kernel = mmap.cpumode == CpuMode::Kernel;
            if name.starts_with('/') || (kernel && name.starts_with('[')) {
                Seen::Mapping {
                    kernel,
                    path: name.into_owned(),
                }
            } else {
                Seen::Other
            }
        }
        _ => Seen::Other,
    }
}

/// The one line printed when `cycles` falls back to `cpu-clock` (perf says "The cycles event is
/// not supported, trying to fall back to cpu-clock").
fn cycles_fallback_note(err: &io::Error) -> String {
    let reason = match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => err.to_string(),
    };
    let reason = reason
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_owned();
    format!(
        "note: the cycles event is not supported (no hardware PMU: {reason}); \
         falling back to cpu-clock"
    )
}

fn open_error(spec: &EventSpec, task: i32, cpu: u32, err: io::Error, system_wide: bool) -> Error {
    let whom = if task < 0 {
        format!("CPU {cpu}")
    } else {
        format!("task {task} on CPU {cpu}")
    };
    let what = format!("opening {} for {whom}", spec.name);
    if events::is_unsupported_error(&err) {
        let reason = match spec.kind {
            events::EventKind::Hardware(_) | events::EventKind::Raw(_) => {
                format!(
                    "no hardware PMU counts it here ({err}); try a software event such as cpu-clock"
                )
            }
            _ => err.to_string(),
        };
        return Error::EventUnavailable {
            event: spec.name.clone(),
            reason,
        };
    }
    if events::probe_site(&spec.kind).is_some() {
        return perms::explain_probe(&what, err);
    }
    perms::explain(&what, err, system_wide)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::parse_event;
    use crate::ring::tests::VecRing;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// What happens at each `wait` call of the fake.
    #[derive(Clone, Default)]
    struct Step {
        /// Records the "kernel" writes into CPU n's ring before this wait returns.
        records: Vec<(usize, Vec<u8>)>,
        signals: Vec<i32>,
        child_exits: Option<ChildExit>,
        /// Tasks whose fds hang up at this wait.
        tasks_exit: Vec<i32>,
    }

    #[derive(Default)]
    struct FakeState {
        steps: VecDeque<Step>,
        rings: Vec<Rc<RefCell<VecRing>>>,
        opened: Vec<(EventAttr, i32, i32)>,
        unsupported_types: Vec<u32>,
        enabled: usize,
        disabled: usize,
        killed: Vec<(i32, i32)>,
        lost_counter: u64,
        /// What every fd's counter reads.
        hits: u64,
        child: Option<ChildExit>,
        /// Records written into the ring when the events are disabled (still in flight).
        on_disable: Vec<(usize, Vec<u8>)>,
    }

    #[derive(Clone, Default)]
    struct Fake(Rc<RefCell<FakeState>>);

    impl Fake {
        /// A machine without a hardware PMU, as in a VM: opening a hardware event fails.
        fn without_pmu() -> Fake {
            let fake = Fake::default();
            fake.0
                .borrow_mut()
                .unsupported_types
                .push(b::PERF_TYPE_HARDWARE);
            fake
        }
    }

    struct FakeRing(Rc<RefCell<VecRing>>);
    impl RingMemory for FakeRing {
        fn data_size(&self) -> usize {
            self.0.borrow().data.len()
        }
        fn load_head(&self) -> u64 {
            self.0.borrow().head
        }
        fn load_tail(&self) -> u64 {
            self.0.borrow().tail
        }
        fn store_tail(&mut self, tail: u64) {
            self.0.borrow_mut().store_tail(tail);
        }
        fn bytes(&self, offset: usize, len: usize) -> &[u8] {
            let ring = self.0.borrow();
            ring.bytes(offset, len);
            // SAFETY-free trick for the test: leak a copy so the slice outlives the borrow.
            Box::leak(ring.data[offset..offset + len].to_vec().into_boxed_slice())
        }
    }

    impl Syscalls for Fake {
        type Event = (i32, i32);
        type Ring = FakeRing;
        fn open_event(&mut self, attr: &EventAttr, pid: i32, cpu: i32) -> io::Result<(i32, i32)> {
            let mut s = self.0.borrow_mut();
            if s.unsupported_types.contains(&attr.type_) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            s.opened.push((attr.clone(), pid, cpu));
            Ok((pid, cpu))
        }
        fn event_id(&mut self, _: &(i32, i32)) -> io::Result<u64> {
            Ok(100 + self.0.borrow().opened.len() as u64)
        }
        fn map_ring(&mut self, ev: &(i32, i32), _pages: usize) -> io::Result<FakeRing> {
            let ring = Rc::new(RefCell::new(VecRing::new(256)));
            let mut s = self.0.borrow_mut();
            assert_eq!(s.rings.len(), ev.1 as usize, "one ring per CPU, in order");
            s.rings.push(ring.clone());
            Ok(FakeRing(ring))
        }
        fn set_output(&mut self, ev: &(i32, i32), target: &(i32, i32)) -> io::Result<()> {
            assert_eq!(ev.1, target.1, "SET_OUTPUT only within a CPU");
            Ok(())
        }
        fn enable(&mut self, _: &(i32, i32)) -> io::Result<()> {
            self.0.borrow_mut().enabled += 1;
            Ok(())
        }
        fn disable(&mut self, _: &(i32, i32)) -> io::Result<()> {
            let mut s = self.0.borrow_mut();
            s.disabled += 1;
            for (cpu, rec) in std::mem::take(&mut s.on_disable) {
                s.rings[cpu].borrow_mut().push(&rec);
            }
            Ok(())
        }
        fn read_counts(&mut self, _: &(i32, i32), with_lost: bool) -> io::Result<EventCounts> {
            let s = self.0.borrow();
            Ok(EventCounts {
                value: s.hits,
                lost: with_lost.then_some(s.lost_counter),
            })
        }
        fn wait(&mut self, watched: &[&(i32, i32)], _t: Duration) -> io::Result<Wakeup> {
            let mut s = self.0.borrow_mut();
            let step = s.steps.pop_front().unwrap_or_default();
            for (cpu, rec) in step.records {
                s.rings[cpu].borrow_mut().push(&rec);
            }
            if step.child_exits.is_some() {
                s.child = step.child_exits;
            }
            let hung_up = watched
                .iter()
                .enumerate()
                .filter(|(_, ev)| step.tasks_exit.contains(&ev.0))
                .map(|(i, _)| i)
                .collect();
            Ok(Wakeup {
                signals: step.signals,
                hung_up,
            })
        }
        fn child_status(&mut self, _pid: i32) -> io::Result<Option<ChildExit>> {
            Ok(self.0.borrow().child)
        }
        fn kill(&mut self, pid: i32, sig: i32) -> io::Result<()> {
            self.0.borrow_mut().killed.push((pid, sig));
            Ok(())
        }
    }

    fn sample(time: u64) -> Vec<u8> {
        // header, IDENTIFIER, IP, pid/tid, TIME, CPU, PERIOD
        let mut r = Vec::new();
        r.extend_from_slice(&9u32.to_ne_bytes());
        r.extend_from_slice(&0u16.to_ne_bytes());
        r.extend_from_slice(&56u16.to_ne_bytes());
        for v in [101u64, 0x4000, 7 | 7 << 32, time, 0, 1000] {
            r.extend_from_slice(&v.to_ne_bytes());
        }
        r
    }

    /// A LOST record with the `sample_id` trailer the kernel adds for the plan's attrs (TID,
    /// TIME, CPU, IDENTIFIER).
    fn lost(n: u64) -> Vec<u8> {
        let mut b = kprof_test_support::RecordBuilder::new(Endian::NATIVE);
        b.record(record_kind::LOST, 0, |b| {
            b.u64(101).u64(n);
            b.u32(7).u32(7).u64(8).u32(0).u32(0).u64(101);
        });
        b.into_bytes()
    }

    fn plan(workload: Option<i32>) -> Plan {
        Plan {
            events: vec![
                parse_event("cpu-clock").unwrap(),
                parse_event("page-faults").unwrap(),
            ],
            cpus: vec![0, 1],
            tasks: vec![workload.unwrap_or(-1)],
            workload,
            sampling: Sampling::Frequency(999),
            call_graph: Some(CallGraph::Fp),
            data_pages: 1,
            duration: None,
            record_cgroups: false,
            system_wide: workload.is_none(),
            skip_vanished_tasks: false,
            switch_events: false,
        }
    }

    fn collect(records: &RefCell<Vec<Vec<u8>>>) -> impl FnMut(RawData<'_>) -> io::Result<()> + '_ {
        move |raw| {
            records.borrow_mut().push(raw.to_vec());
            Ok(())
        }
    }

    fn types(records: &[Vec<u8>]) -> Vec<u32> {
        records
            .iter()
            .map(|r| u32::from_ne_bytes(r[..4].try_into().unwrap()))
            .collect()
    }

    /// An MMAP2 or MMAP record as the kernel writes it for the plan's events: the `sample_id`
    /// trailer of IP | TID | TIME | CPU | PERIOD | IDENTIFIER (TID, TIME, CPU, IDENTIFIER).
    fn kernel_mmap(kind: u32, cpumode: u16, path: &[u8], time: u64) -> Vec<u8> {
        let mut b = kprof_test_support::RecordBuilder::new(Endian::NATIVE);
        b.record(kind, cpumode, |b| {
            b.u32(7).u32(7).u64(0x40_0000).u64(0x1000).u64(0);
            if kind == record_kind::MMAP2 {
                b.u32(8).u32(1).u64(99).u64(0).u32(5).u32(2);
            }
            b.cstr(path);
            b.u32(7).u32(7).u64(time).u32(0).u32(0).u64(101);
        });
        b.into_bytes()
    }

    /// Ring records are decoded with the parse info of the opened attrs (perfdata's decoder),
    /// also when one wraps the end of the ring.
    // See: issue #12 point 2
    #[test]
    fn ring_records_decode_with_the_opened_attrs_even_when_wrapped() {
        let fake = Fake::default();
        let mut p = plan(None);
        p.call_graph = None;
        let mut session = Session::open(fake.clone(), p, &mut |_| {}).unwrap();
        let lib = kernel_mmap(record_kind::MMAP2, 2, b"/usr/lib/libc.so.6", 5);
        let kernel = kernel_mmap(record_kind::MMAP, 1, b"[kernel.kallsyms]_text", 6);
        let heap = kernel_mmap(record_kind::MMAP2, 2, b"[heap]", 7);
        let lost = lost(5);
        {
            let mut s = fake.0.borrow_mut();
            s.steps.push_back(Step {
                records: vec![(0, sample(1)), (0, lib.clone())],
                ..Step::default()
            });
            // 184 bytes are in the 256-byte ring: this record wraps its end.
            s.steps.push_back(Step {
                records: vec![(0, kernel.clone()), (0, lost)],
                ..Step::default()
            });
            s.steps.push_back(Step {
                records: vec![(0, heap), (0, sample(9))],
                signals: vec![libc::SIGINT],
                ..Step::default()
            });
        }
        assert!(184 + kernel.len() > 256, "the second MMAP wraps");
        let records = RefCell::new(Vec::new());
        let mut sink = collect(&records);
        session.run(&mut sink).unwrap();
        let stats = session.finish(&mut sink).unwrap();
        let files: Vec<(bool, &str)> = session.mapped_files().collect();
        assert_eq!(
            files,
            [
                (false, "/usr/lib/libc.so.6"),
                (true, "[kernel.kallsyms]_text")
            ]
        );
        assert_eq!((stats.lost_chunks, stats.lost_in_records), (1, 5));
        assert_eq!(stats.samples, 2);
        assert_eq!(
            (stats.first_sample_time, stats.last_sample_time),
            (Some(1), Some(9))
        );
    }

    #[test]
    fn opens_per_cpu_rings_and_redirects_the_rest() {
        let fake = Fake::default();
        let session = Session::open(fake.clone(), plan(None), &mut |_| {}).unwrap();
        let s = fake.0.borrow();
        assert_eq!(s.opened.len(), 4, "2 events x 2 CPUs");
        assert_eq!(s.rings.len(), 2);
        let attr = &s.opened[0].0;
        assert!(attr.sample_id_all && attr.mmap2 && attr.comm_exec && attr.task && !attr.inherit);
        assert!(attr.freq && attr.period_or_freq == 999);
        assert_ne!(attr.sample_type & u64::from(b::PERF_SAMPLE_CALLCHAIN), 0);
        assert_eq!(session.events()[0].ids.len(), 2);
    }

    #[test]
    fn all_cgroups_samples_cgroups_and_asks_the_first_event_for_cgroup_records() {
        let fake = Fake::default();
        let mut with_cgroups = plan(None);
        with_cgroups.record_cgroups = true;
        Session::open(fake.clone(), with_cgroups, &mut |_| {}).unwrap();
        let s = fake.0.borrow();
        let cgroup_bit = u64::from(b::PERF_SAMPLE_CGROUP);
        assert!(
            s.opened
                .iter()
                .all(|(a, _, _)| a.sample_type & cgroup_bit != 0)
        );
        // Both CPUs of the first event (cpu-clock), neither of the second (page-faults).
        let tracking: Vec<bool> = s.opened.iter().map(|(a, _, _)| a.cgroup).collect();
        assert_eq!(tracking, [true, true, false, false]);
        let fake = Fake::default();
        Session::open(fake.clone(), plan(None), &mut |_| {}).unwrap();
        let s = fake.0.borrow();
        assert!(
            s.opened
                .iter()
                .all(|(a, _, _)| a.sample_type & cgroup_bit == 0 && !a.cgroup)
        );
    }

    #[test]
    fn workload_exit_stops_and_drains_everything() {
        let fake = Fake::default();
        let mut session = Session::open(fake.clone(), plan(Some(42)), &mut |_| {}).unwrap();
        {
            let mut s = fake.0.borrow_mut();
            assert!(
                s.opened
                    .iter()
                    .all(|(a, pid, _)| a.enable_on_exec && a.inherit && *pid == 42)
            );
            s.steps.push_back(Step {
                records: vec![(0, sample(1)), (1, sample(2))],
                ..Step::default()
            });
            s.steps.push_back(Step {
                records: vec![(0, sample(3))],
                child_exits: Some(ChildExit::Exited(3)),
                ..Step::default()
            });
            // Samples still in flight when the events are disabled must be written too.
            s.on_disable = vec![(1, sample(4)), (1, lost(5))];
            // The same drops counted per fd by PERF_FORMAT_LOST (4 fds x 1).
            s.lost_counter = 1;
        }
        session.enable().unwrap();
        assert_eq!(fake.0.borrow().enabled, 0, "workload events enable on exec");
        let records = RefCell::new(Vec::new());
        let mut sink = collect(&records);
        let reason = session.run(&mut sink).unwrap();
        assert_eq!(reason, StopReason::WorkloadExited(ChildExit::Exited(3)));
        let stats = session.finish(&mut sink).unwrap();
        assert_eq!(stats.samples, 4);
        assert_eq!(stats.lost_chunks, 1);
        assert_eq!(stats.lost_in_records, 5);
        assert_eq!(stats.lost_in_counters, 4);
        assert_eq!(stats.lost_samples, 5, "drops are not counted twice");
        assert_eq!(stats.first_sample_time, Some(1));
        assert_eq!(stats.last_sample_time, Some(4));
        for ring in &fake.0.borrow().rings {
            let r = ring.borrow();
            assert_eq!(r.head, r.tail, "ring fully drained");
        }
        let t = types(&records.borrow());
        assert_eq!(t.iter().filter(|&&t| t == 9).count(), 4);
        let last_sample = t.iter().rposition(|&t| t == 9).unwrap();
        let last_round = t.iter().rposition(|&t| t == 68).unwrap();
        assert!(
            last_round > last_sample,
            "each round ends with FINISHED_ROUND: {t:?}"
        );
        assert_eq!(
            t.iter().filter(|&&t| t == 13).count(),
            4,
            "LOST_SAMPLES per fd"
        );
        let bytes: u64 = records.borrow().iter().map(|r| r.len() as u64).sum();
        assert_eq!(stats.bytes, bytes);
        assert_eq!(fake.0.borrow().disabled, 4);
    }

    #[test]
    fn sigint_stops_system_wide_recording_and_lost_counts_are_written() {
        let fake = Fake::default();
        let mut session = Session::open(fake.clone(), plan(None), &mut |_| {}).unwrap();
        {
            let mut s = fake.0.borrow_mut();
            s.steps.push_back(Step {
                records: vec![(0, sample(1))],
                ..Step::default()
            });
            s.steps.push_back(Step {
                signals: vec![libc::SIGINT],
                ..Step::default()
            });
            s.steps.push_back(Step {
                records: vec![(0, sample(99))],
                ..Step::default()
            });
            s.lost_counter = 2;
        }
        session.enable().unwrap();
        assert_eq!(fake.0.borrow().enabled, 4);
        let records = RefCell::new(Vec::new());
        let mut sink = collect(&records);
        assert_eq!(
            session.run(&mut sink).unwrap(),
            StopReason::Signal(libc::SIGINT)
        );
        let stats = session.finish(&mut sink).unwrap();
        assert_eq!(stats.samples, 1, "no wait after SIGINT");
        // One LOST_SAMPLES per fd (4 fds, 2 lost each).
        assert_eq!(stats.lost_samples, 8);
        let recs = records.borrow();
        let lost_samples: Vec<&Vec<u8>> = recs
            .iter()
            .filter(|r| r[..4] == 13u32.to_ne_bytes())
            .collect();
        assert_eq!(lost_samples.len(), 4);
        assert_eq!(
            u64::from_ne_bytes(lost_samples[0][8..16].try_into().unwrap()),
            2
        );
        assert!(fake.0.borrow().killed.is_empty());
    }

    #[test]
    fn sigterm_is_forwarded_to_the_workload() {
        let fake = Fake::default();
        let mut session = Session::open(fake.clone(), plan(Some(42)), &mut |_| {}).unwrap();
        fake.0.borrow_mut().steps.push_back(Step {
            signals: vec![libc::SIGTERM],
            ..Step::default()
        });
        let mut sink = |_: RawData<'_>| Ok(());
        assert_eq!(
            session.run(&mut sink).unwrap(),
            StopReason::Signal(libc::SIGTERM)
        );
        assert_eq!(fake.0.borrow().killed, vec![(42, libc::SIGTERM)]);
    }

    /// A sink that fails (a full disk) stops the loop; it can then be run again to wait for
    /// the workload, and ticks reach a sink once per round.
    // See: issue #11 point 3
    #[test]
    fn a_failing_sink_stops_the_loop_and_the_workload_is_still_waited_for() {
        struct Failing {
            ticks: u32,
        }
        impl RecordSink for Failing {
            fn record(&mut self, _: RawData<'_>) -> io::Result<()> {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn tick(&mut self) -> io::Result<()> {
                self.ticks += 1;
                Ok(())
            }
        }
        let fake = Fake::default();
        let mut session = Session::open(fake.clone(), plan(Some(42)), &mut |_| {}).unwrap();
        {
            let mut s = fake.0.borrow_mut();
            s.steps.push_back(Step::default());
            s.steps.push_back(Step {
                records: vec![(0, sample(1))],
                ..Step::default()
            });
            s.steps.push_back(Step {
                records: vec![(0, sample(2))],
                ..Step::default()
            });
            s.steps.push_back(Step {
                child_exits: Some(ChildExit::Exited(0)),
                ..Step::default()
            });
        }
        let mut failing = Failing { ticks: 0 };
        assert_eq!(session.run(&mut failing).unwrap(), StopReason::OutputFailed);
        assert_eq!(failing.ticks, 1, "one round before the failing one");
        assert!(fake.0.borrow().killed.is_empty(), "the workload runs on");
        let mut discard = |_: RawData<'_>| Ok(());
        assert_eq!(
            session.run(&mut discard).unwrap(),
            StopReason::WorkloadExited(ChildExit::Exited(0))
        );
    }

    // See: issue #11 point 2
    #[test]
    fn every_stop_signal_stops_the_loop() {
        for sig in sys::STOP_SIGNALS {
            let fake = Fake::default();
            let mut session = Session::open(fake.clone(), plan(Some(42)), &mut |_| {}).unwrap();
            fake.0.borrow_mut().steps.push_back(Step {
                signals: vec![libc::SIGCHLD, sig],
                ..Step::default()
            });
            let mut sink = |_: RawData<'_>| Ok(());
            assert_eq!(session.run(&mut sink).unwrap(), StopReason::Signal(sig));
        }
    }

    #[test]
    fn attached_tasks_exiting_stop_the_loop() {
        let fake = Fake::default();
        let mut p = plan(None);
        p.system_wide = false;
        p.tasks = vec![7, 8];
        let mut session = Session::open(fake.clone(), p, &mut |_| {}).unwrap();
        {
            let mut s = fake.0.borrow_mut();
            s.steps.push_back(Step {
                records: vec![(0, sample(1))],
                tasks_exit: vec![7],
                ..Step::default()
            });
            s.steps.push_back(Step {
                records: vec![(1, sample(2))],
                ..Step::default()
            });
            s.steps.push_back(Step {
                tasks_exit: vec![8],
                ..Step::default()
            });
            s.steps.push_back(Step {
                records: vec![(1, sample(3))],
                ..Step::default()
            });
        }
        let records = RefCell::new(Vec::new());
        let mut sink = collect(&records);
        assert_eq!(session.run(&mut sink).unwrap(), StopReason::TasksGone);
        let samples = types(&records.borrow()).iter().filter(|&&t| t == 9).count();
        assert_eq!(samples, 2, "stopped at the third wait");
        assert_eq!(fake.0.borrow().steps.len(), 1);
    }

    #[test]
    fn duration_stops_the_loop() {
        let fake = Fake::default();
        let mut p = plan(None);
        p.duration = Some(Duration::from_millis(30));
        let mut session = Session::open(fake.clone(), p, &mut |_| {}).unwrap();
        let mut sink = |_: RawData<'_>| Ok(());
        let start = Instant::now();
        // The fake's wait returns at once; the loop must still notice the clock.
        assert_eq!(session.run(&mut sink).unwrap(), StopReason::Duration);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn cycles_falls_back_to_cpu_clock_with_one_note() {
        let fake = Fake::without_pmu();
        let mut p = plan(None);
        p.events = vec![parse_event("cycles").unwrap()];
        let mut notes = Vec::new();
        let session = Session::open(fake.clone(), p, &mut |n| notes.push(n.to_owned())).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("cpu-clock"));
        assert_eq!(session.events()[0].spec.name, "cpu-clock");
        let attr_type = u32::from_ne_bytes(session.events()[0].attr_bytes[..4].try_into().unwrap());
        assert_eq!(attr_type, b::PERF_TYPE_SOFTWARE);
        assert!(
            fake.0
                .borrow()
                .opened
                .iter()
                .all(|(a, _, _)| a.type_ == b::PERF_TYPE_SOFTWARE)
        );
    }

    #[test]
    fn other_hardware_events_fail_clearly() {
        let fake = Fake::without_pmu();
        let mut p = plan(None);
        p.events = vec![
            parse_event("cpu-clock").unwrap(),
            parse_event("instructions").unwrap(),
        ];
        let mut notes = Vec::new();
        let err = Session::open(fake, p, &mut |n| notes.push(n.to_owned())).unwrap_err();
        assert!(notes.is_empty(), "no fallback for instructions: {notes:?}");
        let Error::EventUnavailable { event, reason } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(event, "instructions");
        assert!(reason.contains("PMU"), "{reason}");
    }

    #[test]
    fn dwarf_mode_samples_regs_stack_and_callchain() {
        let mut p = plan(None);
        p.call_graph = Some(CallGraph::parse("dwarf,1001").unwrap());
        let attr = build_attr(&p, &p.events[0], 1, 0, true);
        let want = b::PERF_SAMPLE_CALLCHAIN | b::PERF_SAMPLE_REGS_USER | b::PERF_SAMPLE_STACK_USER;
        assert_eq!(attr.sample_type & u64::from(want), u64::from(want));
        assert_eq!(attr.sample_stack_user, 1008);
        assert_eq!(attr.sample_regs_user, USER_REGS_MASK);
        assert_ne!(attr.read_format & u64::from(b::PERF_FORMAT_LOST), 0);
        assert!(CallGraph::parse("dwarf,70000").is_err());
        assert!(CallGraph::parse("dwarf,0").is_err());
        assert!(CallGraph::parse("lbr").is_err());
        assert_eq!(CallGraph::parse("fp").unwrap(), CallGraph::Fp);
    }

    // See: issue #14 point 3 (under an event storm the lost count is exact)
    #[test]
    fn an_event_sampling_every_hit_loses_its_counter_minus_what_was_received() {
        let event = OpenedEvent {
            spec: parse_event("page-faults").unwrap(),
            attr_bytes: Vec::new(),
            ids: vec![1, 2],
            samples_every_hit: true,
        };
        let counts = |value| EventCounts {
            value,
            lost: Some(value),
        };
        let received = |of_1: Received, of_2: Received| HashMap::from([(1, of_1), (2, of_2)]);
        let plain = |samples| Received {
            samples,
            weighted: false,
        };
        // 1000 hits on fd 1, 40 received: 960 lost, whatever the LOST records said.
        let got = received(plain(40), plain(7));
        assert_eq!(exact_lost(&event, counts(1000), &got, 1), Some(960));
        assert_eq!(exact_lost(&event, counts(7), &got, 2), Some(0));
        // An fd that received nothing while the event's others did: all its hits were lost.
        let none_on_2 = HashMap::from([(1, plain(40))]);
        assert_eq!(exact_lost(&event, counts(5), &none_on_2, 2), Some(5));
        // Nothing received at all: the counter could be a weight, not hits; unless it is 0.
        let nothing = HashMap::new();
        assert_eq!(exact_lost(&event, counts(5), &nothing, 1), None);
        assert_eq!(exact_lost(&event, counts(0), &nothing, 1), Some(0));
        // A weighted tracepoint (a sample's period was not 1): its counter is no count of hits.
        let weighted = received(
            plain(3),
            Received {
                samples: 2,
                weighted: true,
            },
        );
        assert_eq!(exact_lost(&event, counts(1000), &weighted, 1), None);
        // A counter below what was received is no count of hits either.
        assert_eq!(exact_lost(&event, counts(30), &got, 1), None);
    }
}
