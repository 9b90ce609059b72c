//! From a parsed perf.data to a symbolized [`Profile`]: the one path that `flame`, `report`,
//! `script`, `diff` and `export` share, for kprof's own recordings and perf's alike.
//!
//! 1. Replay side-band records (MMAP/COMM/FORK/EXIT) in time order into address spaces, and
//!    turn each sample's callchain (or DWARF-unwound user stack) into module-relative locations.
//!    Identical stacks of one address space share one chain, found by their raw bytes (or, once
//!    unwound, their addresses) before any lookup. Samples to unwind go to the thread pool in
//!    batches while the replay reads on; the address spaces change only when none is out.
//! 2. Symbolize each distinct location once, in parallel.
//! 3. Intern frames and stacks into the profile's prefix tree.

pub mod chains;
pub mod unwinding;

use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use kprof_perfdata::kinds::record as record_kind;
use kprof_perfdata::{
    CpuMode, Event as PerfEvent, PerfFile, Record, RecordRef, Sample as PerfSample, SampleHead,
};
use kprof_symbolizer::{
    AddressSpaces, Avma, Location, MappingInfo, ModuleKind, Symbolizer, SymbolizerOptions,
};
use rayon::prelude::*;

use self::chains::{ChainInput, ChainShape, StackAddress, chain_addresses, records_call_stacks};
use self::unwinding::{StackUnwinder, UnwindJob, UnwindQueue, WalkedBatch};
use crate::profile::{
    Event, Frame, FrameId, FrameKind, Meta, Profile, Sample, StackId, StackNode, Thread, ThreadId,
};

/// What to resolve and which samples to keep.
#[derive(Clone, Debug, Default)]
pub struct AnalysisOptions {
    /// Add file and line to frames.
    pub lines: bool,
    /// Show inlined functions as frames.
    pub inline: bool,
    /// Demangle Rust and C++ names.
    pub demangle: bool,
    /// Kernel symbols from this file instead of /proc/kallsyms.
    pub kallsyms: Option<PathBuf>,
    /// Prefix for binary paths.
    pub symfs: Option<PathBuf>,
    /// Keep only samples of these thread or process names.
    pub comms: Vec<String>,
    /// Keep only samples of these processes.
    pub pids: Vec<u32>,
    /// Keep only samples of these threads.
    pub tids: Vec<u32>,
    /// Unwind user stacks from copied stack bytes when samples carry them.
    pub dwarf: bool,
    /// Keep each sample's own addresses (`script`): frames that differ only in the sampled
    /// address stay apart, and each shows the address perf prints. Otherwise one frame per
    /// function (and line), whose address is the first one seen.
    pub sample_addresses: bool,
    /// Render the raw data of tracepoint samples ([`Analysis::traces`]), as `perf script`
    /// prints it.
    pub trace_fields: bool,
}

/// A profile plus what a user should know about its quality.
pub struct Analysis {
    /// The symbolized profile.
    pub profile: Profile,
    /// Per-module symbolization results (unresolved counts and reasons).
    pub symbol_report: Vec<kprof_symbolizer::ModuleReport>,
    /// DWARF unwinding results, when any sample was unwound.
    pub unwind_report: unwinding::UnwindReport,
    /// Records in the file per record type.
    pub records: std::collections::BTreeMap<u32, u64>,
    /// How far frame-pointer callchains reached, when samples have user callchains.
    pub frame_pointers: FramePointerReport,
    /// With [`AnalysisOptions::trace_fields`]: per sample (same order as the profile's), the
    /// tracepoint's fields as `perf script` prints them; `None` for other samples.
    pub traces: Vec<Option<Box<str>>>,
}

/// Whether frame-pointer (`-g`) user stacks reach a thread or process entry point, or end early
/// because some code on the stack keeps no frame pointer.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FramePointerReport {
    /// Samples whose user stack came from a frame-pointer callchain.
    pub user_stacks: u64,
    /// Of those, the ones whose outermost frame is an entry point (`_start`, `main`,
    /// `start_thread`, `clone`, ...).
    pub complete: u64,
    /// The others, by the module of their outermost frame (where the chain broke).
    pub ended_early_in: std::collections::BTreeMap<String, u64>,
}

/// Where a complete user stack starts: process and thread entry points, or `main` itself.
fn is_entry_point(function: &str) -> bool {
    function == "main"
        || function.ends_with("::main")
        || [
            "_start",
            "__libc_start",
            "start_thread",
            "clone",
            "__clone",
            "thread_start",
            "_dl_start",
        ]
        .iter()
        .any(|entry| function.starts_with(entry))
}

/// Records replayed between two reports of how far the replay has got in the file.
const WINDOW_EVERY_RECORDS: usize = 256;

/// A location as a hashable key: (module id or `u32::MAX` when unmapped, offset or address,
/// how far the shown address is from it when samples keep their addresses).
type LocationKey = (u32, u64, u64);

fn location_key(location: Location, shown_delta: u64) -> LocationKey {
    match location {
        Location::Module { module, offset } => (module.0, offset.0, shown_delta),
        Location::Unmapped(avma) => (u32::MAX, avma.0, shown_delta),
    }
}

/// A sample waiting for its locations to be symbolized.
struct PendingSample {
    thread: ThreadId,
    event: u16,
    time: u64,
    period: u64,
    cpu: Option<u32>,
    /// Index into `Collector::chain_ranges`.
    chain: u32,
}

/// What makes two samples' stacks identical before symbolization.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ChainKey<'a> {
    /// The process address space: pid and the generation of its mappings.
    pid: u32,
    generation: u64,
    kernel_generation: u64,
    cpumode: u8,
    /// The sampled ip when there is no callchain, else 0.
    ip: u64,
    /// The raw callchain.
    callchain: &'a [u8],
    /// The raw LBR call stack entries, when the event records them (else empty).
    call_stack: &'a [u8],
}

/// Chain ids of unwound stacks by their leaf-first addresses.
type WalkedChains = HashMap<Box<[StackAddress]>, u32>;

/// Pass-1 state: address spaces, interned threads, distinct chains and locations.
struct Collector<'o, 'f> {
    options: &'o AnalysisOptions,
    /// Shared with the unwinding batches in flight; changed only when none is.
    spaces: Arc<AddressSpaces>,
    /// Bumped whenever a process's mappings change, so equal chains can share their lookup.
    generations: HashMap<u32, u64>,
    /// Processes inside an exec: their old image still names user addresses the new one lacks
    /// (see [`AddressSpaces::comm`]) until a user-mode sample shows the new image running.
    execs_under_way: FxHashSet<u32>,
    kernel_generation: u64,
    threads: Vec<Thread>,
    thread_ids: HashMap<(u32, u32, Arc<str>), ThreadId>,
    /// The thread each (pid, tid) is now; forgotten when a COMM, FORK or EXIT may rename it.
    current_threads: HashMap<(u32, u32), ThreadId>,
    /// Distinct locations, each with the distance (wrapping) from it to the address shown
    /// for it: 0 unless [`AnalysisOptions::sample_addresses`].
    locations: Vec<(Location, u64)>,
    location_ids: HashMap<LocationKey, u32>,
    /// Leaf-first location ids of every distinct chain, flattened.
    chain_locations: Vec<u32>,
    /// (start, len) into `chain_locations` per distinct chain.
    chain_ranges: Vec<(u32, u32)>,
    chain_ids: HashMap<ChainKey<'f>, u32>,
    /// Build-ids from the BUILD_ID feature, by file name, for MMAP records that carry none.
    build_ids: HashMap<&'f [u8], &'f [u8]>,
    /// Per attr: its samples carry LBR call stacks ([`records_call_stacks`]).
    call_stack_events: Vec<bool>,
    samples: Vec<PendingSample>,
    /// With [`AnalysisOptions::trace_fields`], one entry per sample.
    traces: Vec<Option<Box<str>>>,
    /// The file, for the formats of its tracepoints.
    file: &'f PerfFile<'f>,
    addresses: Vec<StackAddress>,
    /// Set by `sample_addresses` when the callchain was corrupt.
    broken_callchain: bool,
    /// Set by `sample_addresses` when user frames came from the recorded callchain (frame
    /// pointers), not from DWARF unwinding.
    fp_user_frames: bool,
    /// Distinct chains whose user part is a frame-pointer chain.
    fp_chains: FxHashSet<u32>,
    /// Distinct chains whose callchain was corrupt.
    broken_chains: FxHashSet<u32>,
    /// Samples waiting for DWARF unwinding (their index in `samples` goes with them), walked
    /// in batches on the thread pool while the replay goes on, and always before the address
    /// spaces change.
    unwinds: Option<UnwindQueue<'o, 'f>>,
    /// Distinct unwound chains by (address space, kernel generation, shape), then by their
    /// addresses: unwound stacks repeat as much as recorded ones, once walked.
    walked_chain_ids: HashMap<(u64, u64, ChainShape), WalkedChains>,
    /// Records seen per type (for the header summary; saves a second pass).
    records: HashMap<u32, u64>,
    /// Per attr, what a sample without PERF_SAMPLE_PERIOD weighs (see [`sample_weight`]).
    fixed_periods: Vec<Option<u64>>,
}

/// A sample's weight: its recorded period, else its event's fixed `sample_period` (`perf
/// record -c N` samples carry no PERIOD: each stands for N events, as perf report counts
/// them), else 1 (an event sampled at a frequency without PERIOD: the weight is unknown, and
/// `report --header` says so). Never 0.
fn sample_weight(period: Option<u64>, fixed_period: Option<u64>) -> u64 {
    period.or(fixed_period).unwrap_or(1).max(1)
}

impl<'o, 'f> Collector<'o, 'f> {
    fn location_id(&mut self, pid: u32, address: StackAddress) -> u32 {
        let location = self
            .spaces
            .locate(pid, Avma(address.lookup), address.kernel);
        let shown_delta = if self.options.sample_addresses {
            address.shown.wrapping_sub(address.lookup)
        } else {
            0
        };
        let next = self.locations.len() as u32;
        *self
            .location_ids
            .entry(location_key(location, shown_delta))
            .or_insert_with(|| {
                self.locations.push((location, shown_delta));
                next
            })
    }

    fn fixed_period(&self, attr_index: usize) -> Option<u64> {
        self.fixed_periods.get(attr_index).copied().flatten()
    }

    /// With [`AnalysisOptions::trace_fields`], the text of a sample of attr `attr_index` whose
    /// raw data is `raw`, kept in step with `self.samples`.
    fn push_trace(&mut self, attr_index: usize, raw: Option<&[u8]>) {
        if !self.options.trace_fields {
            return;
        }
        let text = self
            .file
            .tracepoint_format(attr_index)
            .zip(self.file.tracing_data())
            .zip(raw)
            .map(|((format, tracing), raw)| {
                let mut text = String::new();
                format.write_print(raw, tracing.layout, &mut text);
                text.into_boxed_str()
            });
        self.traces.push(text);
    }

    fn thread_id(&mut self, pid: u32, tid: u32) -> ThreadId {
        if let Some(&id) = self.current_threads.get(&(pid, tid)) {
            return id;
        }
        let id = self.intern_thread(pid, tid);
        self.current_threads.insert((pid, tid), id);
        id
    }

    fn intern_thread(&mut self, pid: u32, tid: u32) -> ThreadId {
        // perf's conventions: the idle task (pid 0) is `swapper`, an unnamed thread `:TID`,
        // and a task being reaped (tid -1) has no name.
        let name: Arc<str> = match self.spaces.thread_name(pid, tid) {
            _ if tid == u32::MAX => Arc::from(":-1"),
            Some(name) => Arc::from(name),
            None if pid == 0 => Arc::from("swapper"),
            None => Arc::from(format!(":{}", tid as i32)),
        };
        let key = (pid, tid, name);
        if let Some(&id) = self.thread_ids.get(&key) {
            return id;
        }
        let process_name = self
            .spaces
            .process_name(pid)
            .map(str::to_string)
            .unwrap_or_else(|| key.2.to_string());
        let id = self.threads.len() as ThreadId;
        self.threads.push(Thread {
            pid,
            tid,
            name: key.2.to_string(),
            process_name,
        });
        self.thread_ids.insert(key, id);
        id
    }

    fn wanted(&self, pid: u32, tid: u32) -> bool {
        let o = self.options;
        if !o.pids.is_empty() && !o.pids.contains(&pid) {
            return false;
        }
        if !o.tids.is_empty() && !o.tids.contains(&tid) {
            return false;
        }
        if !o.comms.is_empty() {
            let thread = self.spaces.thread_name(pid, tid);
            let process = self.spaces.process_name(pid);
            return o
                .comms
                .iter()
                .any(|c| Some(c.as_str()) == thread || Some(c.as_str()) == process);
        }
        true
    }

    /// Leaf-first (address, kernel) pairs of a sample into `self.addresses` (see
    /// [`chain_addresses`]).
    fn sample_addresses(&mut self, sample: &ChainInput<'_>) {
        self.addresses.clear();
        let call_site_lookup = self.options.inline || self.options.lines;
        let shape = chain_addresses(sample, None, call_site_lookup, &mut self.addresses);
        self.broken_callchain = shape.broken;
        self.fp_user_frames = shape.fp_user_frames;
    }

    /// Locates the addresses in `self.addresses` and stores them as a new distinct chain.
    fn new_chain(&mut self, pid: u32) -> u32 {
        let start = self.chain_locations.len() as u32;
        let addresses = std::mem::take(&mut self.addresses);
        for &address in &addresses {
            let id = self.location_id(pid, address);
            self.chain_locations.push(id);
        }
        self.addresses = addresses;
        let id = self.chain_ranges.len() as u32;
        self.chain_ranges
            .push((start, self.chain_locations.len() as u32 - start));
        if self.broken_callchain {
            self.broken_chains.insert(id);
        } else if self.fp_user_frames {
            self.fp_chains.insert(id);
        }
        id
    }

    fn on_sample(&mut self, sample: &PerfSample<'f>, event: u16) {
        let pid = sample.pid.unwrap_or(0);
        let tid = sample.tid.unwrap_or(pid);
        if !self.wanted(pid, tid) {
            return;
        }
        let thread = self.thread_id(pid, tid);
        let mut pending = PendingSample {
            thread,
            event,
            time: sample.time.unwrap_or(0),
            period: sample_weight(sample.period, self.fixed_period(sample.attr_index)),
            cpu: sample.cpu,
            chain: u32::MAX,
        };
        let generation = self.generations.get(&pid).copied().unwrap_or(0);
        let raw = sample.callchain.as_ref().map_or(&[][..], |c| c.as_bytes());
        let call_stacks = self
            .call_stack_events
            .get(sample.attr_index)
            .copied()
            .unwrap_or(false);
        let input = ChainInput::of(sample, call_stacks);
        let key = ChainKey {
            pid,
            generation,
            kernel_generation: self.kernel_generation,
            cpumode: sample.cpumode as u8,
            ip: if raw.is_empty() {
                sample.ip.unwrap_or(0)
            } else {
                0
            },
            callchain: raw,
            call_stack: input
                .call_stack
                .as_ref()
                .map_or(&[][..], |stack| stack.entries.as_bytes()),
        };
        pending.chain = match self.chain_ids.get(&key) {
            Some(&id) => id,
            None => {
                self.sample_addresses(&input);
                let id = self.new_chain(pid);
                self.chain_ids.insert(key, id);
                id
            }
        };
        self.samples.push(pending);
        self.push_trace(sample.attr_index, sample.raw);
    }

    /// A sample whose user stack is to be unwound: kept as a job, decoded and walked in a
    /// batch on the pool. `head` is all the replay needs of it.
    fn on_unwind_sample<'s>(
        &mut self,
        head: &SampleHead,
        record: RecordRef<'f>,
        scope: &rayon::Scope<'s>,
    ) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        *self.records.entry(record_kind::SAMPLE).or_insert(0) += 1;
        self.on_sample_mode(head.pid, head.cpumode, scope)?;
        let pid = head.pid.unwrap_or(0);
        let tid = head.tid.unwrap_or(pid);
        if !self.wanted(pid, tid) {
            return Ok(());
        }
        let thread = self.thread_id(pid, tid);
        let generation = self.generations.get(&pid).copied().unwrap_or(0);
        let space = u64::from(pid) << 32 | (generation & 0xffff_ffff);
        let index = self.samples.len();
        self.samples.push(PendingSample {
            thread,
            event: u16::try_from(head.attr_index).unwrap_or(u16::MAX),
            time: head.time.unwrap_or(0),
            period: sample_weight(head.period, self.fixed_period(head.attr_index)),
            cpu: head.cpu,
            chain: u32::MAX,
        });
        if self.options.trace_fields {
            let raw = match self.file.decode(&record)?.record {
                Record::Sample(sample) => sample.raw,
                _ => None,
            };
            self.push_trace(head.attr_index, raw);
        }
        let Some(queue) = self.unwinds.as_mut() else {
            return Ok(());
        };
        if queue.push(UnwindJob::new(record, pid, space), index) {
            queue.submit(scope, &self.spaces);
            let walked = queue.finished(queue.max_in_flight())?;
            self.assign_walked(walked);
        }
        Ok(())
    }

    /// Walks every waiting sample against the address spaces as they are now, and waits for
    /// all of them: call it before the spaces change.
    fn finish_unwinds<'s>(&mut self, scope: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        let Some(queue) = self.unwinds.as_mut() else {
            return Ok(());
        };
        queue.submit(scope, &self.spaces);
        let walked = queue.finished(0)?;
        self.assign_walked(walked);
        Ok(())
    }

    /// Gives walked samples their chains: identical stacks of one address space share one.
    fn assign_walked(&mut self, batches: Vec<WalkedBatch<'f>>) {
        for batch in batches {
            let stacks = batch.chunks.iter().flat_map(|chunk| {
                chunk
                    .stacks
                    .iter()
                    .map(move |(range, shape)| (chunk, range, shape))
            });
            for ((job, &index), (chunk, range, &shape)) in
                batch.jobs.iter().zip(&batch.samples).zip(stacks)
            {
                let addresses = chunk.addresses.get(range.clone()).unwrap_or(&[]);
                let key = (job.space, self.kernel_generation, shape);
                let known = self
                    .walked_chain_ids
                    .get(&key)
                    .and_then(|chains| chains.get(addresses))
                    .copied();
                let chain = match known {
                    Some(chain) => chain,
                    None => {
                        self.addresses.clear();
                        self.addresses.extend_from_slice(addresses);
                        self.broken_callchain = shape.broken;
                        self.fp_user_frames = shape.fp_user_frames;
                        let chain = self.new_chain(job.pid);
                        self.walked_chain_ids
                            .entry(key)
                            .or_default()
                            .insert(addresses.into(), chain);
                        chain
                    }
                };
                if let Some(pending) = self.samples.get_mut(index) {
                    pending.chain = chain;
                }
            }
            if let Some(queue) = self.unwinds.as_mut() {
                queue.recycle(batch);
            }
        }
    }

    /// The address spaces, to change: no batch is in flight then ([`Self::finish_unwinds`]),
    /// so this never copies them.
    fn spaces_mut(&mut self) -> &mut AddressSpaces {
        Arc::make_mut(&mut self.spaces)
    }

    fn bump(&mut self, pid: u32) {
        *self.generations.entry(pid).or_insert(0) += 1;
    }

    /// A sample of `pid` in `cpumode`: one running user code ends the exec under way in its
    /// process, whose old image then names none of its addresses any more.
    fn on_sample_mode<'s>(
        &mut self,
        pid: Option<u32>,
        cpumode: CpuMode,
        scope: &rayon::Scope<'s>,
    ) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        let pid = pid.unwrap_or(0);
        if self.execs_under_way.is_empty()
            || cpumode != CpuMode::User
            || !self.execs_under_way.remove(&pid)
        {
            return Ok(());
        }
        self.finish_unwinds(scope)?;
        self.bump(pid);
        self.spaces_mut().exec_returned(pid);
        Ok(())
    }

    fn on_event<'s>(
        &mut self,
        event: &PerfEvent<'f>,
        lost: &mut Lost,
        scope: &rayon::Scope<'s>,
    ) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        *self.records.entry(event.record.kind()).or_insert(0) += 1;
        if matches!(
            event.record,
            Record::Mmap(_) | Record::Fork(_) | Record::Exit(_) | Record::Comm(_)
        ) {
            self.finish_unwinds(scope)?;
        }
        if let Record::Comm(_) | Record::Fork(_) | Record::Exit(_) = event.record {
            // Names may change: look threads up afresh (rare records; a full clear is cheap).
            self.current_threads.clear();
        }
        match &event.record {
            Record::Sample(sample) => {
                self.on_sample_mode(sample.pid, sample.cpumode, scope)?;
                let index = u16::try_from(sample.attr_index).unwrap_or(u16::MAX);
                self.on_sample(sample, index);
            }
            Record::Mmap(m) => {
                let kernel = m.pid == u32::MAX
                    || matches!(m.cpumode, CpuMode::Kernel | CpuMode::GuestKernel);
                if kernel {
                    self.kernel_generation += 1;
                } else {
                    self.bump(m.pid);
                }
                let build_id = m
                    .build_id
                    .or_else(|| self.build_ids.get(m.filename).copied());
                self.spaces_mut().mmap(
                    m.pid,
                    MappingInfo {
                        start: Avma(m.start),
                        len: m.len,
                        pgoff: m.pgoff,
                        path: m.filename,
                        build_id,
                        kernel,
                    },
                );
            }
            Record::Comm(c) => {
                if c.exec {
                    self.bump(c.pid);
                    self.execs_under_way.insert(c.pid);
                }
                self.spaces_mut().comm(c.pid, c.tid, c.name, c.exec);
            }
            Record::Fork(f) => {
                if f.pid != f.ppid {
                    self.bump(f.pid);
                }
                self.spaces_mut().fork(f.pid, f.ppid, f.tid, f.ptid);
            }
            Record::Exit(f) => self.spaces_mut().exit(f.pid, f.tid),
            Record::Lost(l) => lost.in_ring += l.lost,
            Record::LostSamples(l) => lost.counted += l.lost,
            _ => {}
        }
        Ok(())
    }
}

/// Samples lost while recording, as the file tells it twice: LOST records (what the ring
/// buffer dropped, written as it happened) and LOST_SAMPLES records (the kernel's per-event
/// counter, written at the end by perf and kprof). They count the same drops, so the loss is
/// the larger of the two, not their sum.
#[derive(Clone, Copy, Debug, Default)]
struct Lost {
    in_ring: u64,
    counted: u64,
}

impl Lost {
    fn samples(self) -> u64 {
        self.in_ring.max(self.counted)
    }
}

/// What identifies a kernel: its build-id and its release (`uname -r`), when known.
#[derive(Clone, Copy, Debug)]
struct RecordedKernel<'a> {
    build_id: Option<&'a [u8]>,
    release: Option<&'a str>,
}

/// Whether the recording's kernel is the running one, so that this machine's kernel symbols
/// and vdso describe it: by build-id when both are known, else by release. A recording that
/// names neither is not known to be this kernel's.
fn same_kernel(recorded: RecordedKernel<'_>, running: RecordedKernel<'_>) -> bool {
    if let (Some(recorded), Some(running)) = (recorded.build_id, running.build_id) {
        return kprof_symbolizer::build_ids_match(recorded, running);
    }
    match (recorded.release, running.release) {
        (Some(recorded), Some(running)) => recorded.trim() == running.trim(),
        _ => false,
    }
}

/// The running kernel's release, to decide whether /proc/kallsyms describes the recording.
fn running_kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Asks the CPU for the records a few places ahead: their first lines (header, ids, callchain,
/// registers) early, and their last line (a copied stack's `dyn_size`) once the header is in.
fn prefetch_records(events: &kprof_perfdata::SortedRecords<'_>) {
    if let Some(start) = events.upcoming_start(8) {
        crate::mapped::prefetch(start, 4);
    }
    if let Some(record) = events.upcoming_record(4) {
        crate::mapped::prefetch(
            record.get(record.len().saturating_sub(8)..).unwrap_or(&[]),
            1,
        );
    }
}

/// Builds the symbolized profile of `file`.
pub fn analyze(file: &PerfFile<'_>, options: &AnalysisOptions) -> Result<Analysis> {
    analyze_windowed(file, options, &|_| {})
}

/// [`analyze`], telling `done_below` from time to time a file offset below which it reads no
/// more records (see [`kprof_perfdata::SortedRecords::unread_floor`]).
pub fn analyze_windowed(
    file: &PerfFile<'_>,
    options: &AnalysisOptions,
    done_below: &dyn Fn(u64),
) -> Result<Analysis> {
    let features = file.features();
    let recorded_kernel_id = features
        .build_ids
        .iter()
        .find(|b| b.filename.starts_with("[kernel.kallsyms]"))
        .map(|b| b.build_id.clone());
    let mut sym_options = SymbolizerOptions::default();
    sym_options.lines = options.lines;
    sym_options.inline = options.inline;
    sym_options.demangle = options.demangle;
    sym_options.kernel_matches = same_kernel(
        RecordedKernel {
            build_id: recorded_kernel_id.as_deref(),
            release: features.osrelease.as_deref(),
        },
        RecordedKernel {
            build_id: kprof_profiler::buildid::kernel_build_id().as_deref(),
            release: running_kernel_release().as_deref(),
        },
    );
    sym_options.recorded_osrelease = features.osrelease.clone();
    sym_options.kernel_build_id = recorded_kernel_id;
    // An explicit kallsyms names kernel frames, whatever kernel made the recording; the
    // vdso is still this machine's only when the kernel is.
    sym_options.kallsyms = options.kallsyms.clone();
    sym_options.symfs = options.symfs.clone();
    let symbolizer = Symbolizer::new(sym_options);
    let analysis = analyze_with(file, options, &symbolizer, done_below);
    // Freeing every parsed symbol table and DWARF unit takes a while and nobody waits for it.
    std::thread::spawn(move || drop(symbolizer));
    analysis
}

/// [`analyze`] with a prepared symbolizer.
fn analyze_with(
    file: &PerfFile<'_>,
    options: &AnalysisOptions,
    symbolizer: &Symbolizer,
    done_below: &dyn Fn(u64),
) -> Result<Analysis> {
    let features = file.features();

    let records = file.sorted_records()?;
    let unwinder = options
        .dwarf
        .then(|| StackUnwinder::for_file(file, options.inline || options.lines))
        .flatten();
    let mut collector = Collector {
        options,
        spaces: Arc::new(AddressSpaces::new()),
        generations: HashMap::default(),
        execs_under_way: FxHashSet::default(),
        kernel_generation: 0,
        threads: Vec::new(),
        thread_ids: HashMap::default(),
        current_threads: HashMap::default(),
        locations: Vec::new(),
        location_ids: HashMap::default(),
        chain_locations: Vec::new(),
        chain_ranges: Vec::new(),
        chain_ids: HashMap::default(),
        build_ids: features
            .build_ids
            .iter()
            .map(|b| (b.filename.as_bytes(), b.build_id.as_slice()))
            .collect(),
        call_stack_events: file.attrs().iter().map(records_call_stacks).collect(),
        // At most one per record: one allocation, never moved.
        samples: Vec::with_capacity(records.len()),
        traces: Vec::new(),
        file,
        addresses: Vec::new(),
        broken_callchain: false,
        broken_chains: Default::default(),
        fp_user_frames: false,
        fp_chains: Default::default(),
        unwinds: unwinder
            .as_ref()
            .map(|unwinder| UnwindQueue::new(unwinder, file, symbolizer)),
        walked_chain_ids: HashMap::default(),
        records: HashMap::default(),
        fixed_periods: file.attrs().iter().map(|a| a.fixed_period()).collect(),
    };
    let mut lost = Lost::default();
    // The replay runs here; unwinding batches on the pool meanwhile; kernel symbols, which
    // take a while to load, on a thread of their own.
    let replayed = std::thread::scope(|threads| {
        threads.spawn(|| {
            symbolizer.preload_kernel_symbols();
        });
        rayon::in_place_scope(|pool| -> Result<()> {
            let mut records = records;
            let mut until_window_moves = 0usize;
            while let Some(record) = records.next_ref() {
                let record = record?;
                prefetch_records(&records);
                if until_window_moves == 0 {
                    until_window_moves = WINDOW_EVERY_RECORDS;
                    let pending = collector.unwinds.as_ref().map_or(u64::MAX, |q| q.floor());
                    done_below(records.unread_floor().min(pending));
                }
                until_window_moves -= 1;
                let unwound = unwinder.as_ref().and_then(|unwinder| {
                    let head = file.sample_head(&record)?;
                    unwinder.unwinds(head.attr_index).then_some(head)
                });
                match unwound {
                    Some(head) => collector.on_unwind_sample(&head, record, pool)?,
                    None => collector.on_event(&file.decode(&record)?, &mut lost, pool)?,
                }
            }
            collector.finish_unwinds(pool)
        })
    });
    replayed?;

    // Pass 2: symbolize every distinct location once, in parallel.
    let spaces = &collector.spaces;
    let symbolized: Vec<Vec<Frame>> = collector
        .locations
        .par_iter()
        .map(|&(location, shown_delta)| frames_for(symbolizer, spaces, location, shown_delta))
        .collect();
    // Pass 3: intern frames and stacks.
    let mut interner = Interner {
        keep_offsets: options.sample_addresses,
        ..Interner::default()
    };
    let location_frames: Vec<Vec<FrameId>> = symbolized
        .into_iter()
        .map(|frames| frames.into_iter().map(|f| interner.frame(f)).collect())
        .collect();
    let mut event_infos: Vec<Event> = file
        .attrs()
        .iter()
        .map(|attr| Event {
            name: attr.name.clone(),
            sample_count: 0,
            total_period: 0,
        })
        .collect();
    // One stack per distinct chain, root first: the chain is leaf first and each location's
    // frames are innermost first.
    let chain_stacks: Vec<Option<StackId>> = collector
        .chain_ranges
        .iter()
        .map(|&(start, len)| {
            let chain = collector
                .chain_locations
                .get(start as usize..(start + len) as usize)
                .unwrap_or(&[]);
            let mut stack: Option<StackId> = None;
            for &location in chain.iter().rev() {
                if let Some(frames) = location_frames.get(location as usize) {
                    for &frame in frames.iter().rev() {
                        stack = Some(interner.stack(stack, frame));
                    }
                }
            }
            stack
        })
        .collect();
    // Where each frame-pointer chain ended: its outermost frame, and the outermost frame in a
    // known module (a chain that breaks runs into garbage addresses; the code before them is
    // what has no frame pointer).
    let outermost = |location: &u32| location_frames.get(*location as usize)?.last().copied();
    let fp_ends: HashMap<u32, (Option<FrameId>, Option<FrameId>)> = collector
        .fp_chains
        .iter()
        .map(|&chain| {
            let locations = collector
                .chain_ranges
                .get(chain as usize)
                .and_then(|&(start, len)| {
                    collector
                        .chain_locations
                        .get(start as usize..(start + len) as usize)
                })
                .unwrap_or(&[]);
            let end = locations.last().and_then(outermost);
            let known = locations.iter().rev().filter_map(outermost).find(|&f| {
                interner
                    .frames
                    .get(f as usize)
                    .is_some_and(|frame| frame.kind != FrameKind::Unknown)
            });
            (chain, (end, known))
        })
        .collect();
    let mut frame_pointers = FramePointerReport::default();
    let mut samples = Vec::with_capacity(collector.samples.len());
    for pending in &collector.samples {
        if let Some(&(end, known)) = fp_ends.get(&pending.chain) {
            frame_pointers.user_stacks += 1;
            let frame = |id: Option<FrameId>| id.and_then(|f| interner.frames.get(f as usize));
            match frame(end) {
                Some(end) if is_entry_point(&end.function) => frame_pointers.complete += 1,
                _ => {
                    let module = frame(known).map_or("[unknown]", |f| &*f.module);
                    *frame_pointers
                        .ended_early_in
                        .entry(module.to_string())
                        .or_insert(0) += 1;
                }
            }
        }
        if let Some(info) = event_infos.get_mut(pending.event as usize) {
            info.sample_count += 1;
            info.total_period += pending.period;
        }
        samples.push(Sample {
            thread: pending.thread,
            event: pending.event,
            time: pending.time,
            period: pending.period,
            stack: chain_stacks.get(pending.chain as usize).copied().flatten(),
            cpu: pending.cpu,
            broken_callchain: collector.broken_chains.contains(&pending.chain),
        });
    }

    let meta = Meta {
        perf_version: features.version.clone(),
        hostname: features.hostname.clone(),
        os_release: features.osrelease.clone(),
        arch: features.arch.clone(),
        cmdline: features.cmdline.as_ref().map(|c| c.join(" ")),
        lost_samples: lost.samples(),
    };
    let unwind_report = unwinder
        .as_ref()
        .map(|unwinder| unwinder.report(&collector.spaces))
        .unwrap_or_default();
    let profile = Profile {
        frames: interner.frames,
        stacks: interner.stacks,
        threads: collector.threads,
        events: event_infos,
        samples,
        meta,
    };
    let symbol_report = symbolizer.report();
    Ok(Analysis {
        profile,
        symbol_report,
        unwind_report,
        records: collector.records.into_iter().collect(),
        frame_pointers,
        traces: collector.traces,
    })
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

/// Interns frames and stack nodes.
#[derive(Default)]
struct Interner {
    /// Frames differing only in their address stay apart.
    keep_offsets: bool,
    frames: Vec<Frame>,
    frame_ids: HashMap<Frame, FrameId>,
    stacks: Vec<StackNode>,
    stack_ids: HashMap<StackNode, StackId>,
}

impl Interner {
    fn frame(&mut self, frame: Frame) -> FrameId {
        // Unless samples keep their addresses, frames differing only in the sampled offset are
        // one frame.
        let key = Frame {
            module_offset: if self.keep_offsets {
                frame.module_offset
            } else {
                0
            },
            ..frame
        };
        if let Some(&id) = self.frame_ids.get(&key) {
            return id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push(Frame {
            module_offset: frame.module_offset,
            ..key.clone()
        });
        self.frame_ids.insert(key, id);
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

/// Picks the event to show: by name, or the first one that has samples.
pub fn select_event(profile: &Profile, name: Option<&str>) -> Result<Option<u16>> {
    match name {
        Some(name) => {
            let found = profile
                .events
                .iter()
                .position(|e| e.name == name || e.name.split(':').next() == Some(name));
            match found {
                Some(index) => Ok(Some(index as u16)),
                None => {
                    let names: Vec<&str> = profile.events.iter().map(|e| e.name.as_str()).collect();
                    bail!(
                        "event `{name}` is not in this profile; it has: {}",
                        names.join(", ")
                    )
                }
            }
        }
        None => Ok(profile
            .events
            .iter()
            .position(|e| e.sample_count > 0)
            .map(|i| i as u16)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel<'a>(build_id: Option<&'a [u8]>, release: Option<&'a str>) -> RecordedKernel<'a> {
        RecordedKernel { build_id, release }
    }

    #[test]
    fn the_recording_kernel_is_this_one_by_build_id_else_by_release() {
        // See: issue #10 point 3
        let here = kernel(Some(&[1, 2, 3]), Some("6.1.0"));
        // perf pads 20-byte build-ids; a padded copy of this kernel's is this kernel.
        assert!(same_kernel(
            kernel(Some(&[1, 2, 3, 0, 0]), Some("6.1.0")),
            here
        ));
        // Another build of the same release is another kernel.
        assert!(!same_kernel(kernel(Some(&[9, 9, 9]), Some("6.1.0")), here));
        // Without a recorded build-id, the release decides.
        assert!(same_kernel(kernel(None, Some("6.1.0\n")), here));
        assert!(!same_kernel(kernel(None, Some("5.15.0")), here));
        // When this machine's build-id cannot be read, the release decides.
        assert!(same_kernel(
            kernel(Some(&[9]), Some("6.1.0")),
            kernel(None, Some("6.1.0"))
        ));
        // A recording that says nothing about its kernel is not this kernel's.
        assert!(!same_kernel(kernel(None, None), here));
    }
}
