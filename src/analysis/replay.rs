//! The replay: a perf.data's records in time order, each to its named handler (`on_mmap`,
//! `on_comm`, `on_fork`, `on_exit`, `on_sample`, ...). Side-band records change the address
//! spaces; samples are kept with their thread, weight and chain ([`ChainTable`]), or queued
//! for DWARF unwinding ([`UnwindQueue`]). The address spaces change only with a
//! [`NoWalksOut`] proof from the unwinding queue, which cannot be had while a batch walks.

use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::sync::Arc;

use anyhow::{Result, anyhow};
use kprof_perfdata::kinds::record as record_kind;
use kprof_perfdata::{
    Comm, CpuMode, Event as PerfEvent, ForkExit, Mmap, PerfFile, Record, RecordRef,
    Sample as PerfSample, SampleHead,
};
use kprof_symbolizer::{AddressSpaces, Avma, MappingInfo};

use super::chain_table::{ChainId, ChainTable, RecordedChainKey, SpaceState};
use super::chains::{ChainInput, records_call_stacks};
use super::options::AnalysisOptions;
use super::unwinding::{NoWalksOut, StackUnwinder, UnwindJob, UnwindQueue, WalkedBatch};
use crate::profile::{Thread, ThreadId};
use kprof_perfdata::cgroups::CgroupNames;

/// Records replayed between two reports of how far the replay has got in the file.
const WINDOW_EVERY_RECORDS: usize = 256;
/// Records replayed between two times the chain table forgets its recorded stacks (see
/// [`ChainTable::forget_recorded`]): as many as a shard replays at most. Finding a stack again
/// reads its first sample, so the file's pages since the last time are held (a single replay
/// held the whole file: issue #13 point 1).
const FORGET_RECORDED_EVERY: usize = 128 * 1024;

/// A sample waiting for its locations to be symbolized.
pub struct PendingSample {
    /// Its thread.
    pub thread: ThreadId,
    /// Its event (attr index).
    pub event: u16,
    /// Its time (0 when not recorded).
    pub time: u64,
    /// Its weight ([`sample_weight`]).
    pub period: u64,
    /// Its CPU, when recorded.
    pub cpu: Option<u32>,
    /// Its cgroup id (PERF_SAMPLE_CGROUP), when recorded.
    pub cgroup: Option<u64>,
    /// Its chain; `None` only while its stack is being unwound.
    pub chain: Option<ChainId>,
}

/// A sample's weight: its recorded period, else its event's fixed `sample_period` (`perf
/// record -c N` samples carry no PERIOD: each stands for N events, as perf report counts
/// them), else 1 (an event sampled at a frequency without PERIOD: the weight is unknown, and
/// `report --header` says so). Never 0.
pub fn sample_weight(period: Option<u64>, fixed_period: Option<u64>) -> u64 {
    period.or(fixed_period).unwrap_or(1).max(1)
}

/// Fails unless some tracepoint of `file` has the field `field` (`flame --weight`), naming the
/// fields there are.
pub fn check_weight_field(file: &PerfFile<'_>, field: &str) -> Result<()> {
    let formats: Vec<_> = (0..file.attrs().len())
        .filter_map(|i| file.tracepoint_format(i))
        .collect();
    if formats.iter().any(|f| f.field(field).is_some()) {
        return Ok(());
    }
    let fields: Vec<String> = formats
        .iter()
        .map(|f| {
            let names: Vec<&str> = f.fields.iter().map(|x| x.name.as_str()).collect();
            format!("{}: {}", f.full_name(), names.join(", "))
        })
        .collect();
    if fields.is_empty() {
        return Err(anyhow!(
            "--weight {field}: the file has no tracepoint events (with their formats)"
        ));
    }
    Err(anyhow!(
        "--weight {field}: no such field; fields of {}",
        fields.join("; ")
    ))
}

/// Samples lost while recording, as the file tells it twice: LOST records (what the ring
/// buffer dropped, written as it happened) and LOST_SAMPLES records (the kernel's per-event
/// counter, written at the end by perf and kprof). They count the same drops, so the loss is
/// the larger of the two, not their sum.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lost {
    in_ring: u64,
    counted: u64,
}

impl Lost {
    /// The samples lost.
    pub fn samples(self) -> u64 {
        self.in_ring.max(self.counted)
    }
}

/// The address spaces as replayed so far, and the state numbers that tell samples apart.
pub struct Spaces<'f> {
    /// Shared with the unwinding batches in flight; changed only with a [`NoWalksOut`].
    spaces: Arc<AddressSpaces>,
    /// Bumped whenever a process's mappings change, so equal chains can share their lookup.
    generations: HashMap<u32, u64>,
    kernel_generation: u64,
    /// Processes inside an exec: their old image still names user addresses the new one lacks
    /// (see [`AddressSpaces::comm`]) until a user-mode sample shows the new image running.
    execs_under_way: FxHashSet<u32>,
    /// Build-ids from the BUILD_ID feature, by file name, for MMAP records that carry none.
    build_ids: HashMap<&'f [u8], &'f [u8]>,
}

impl<'f> Spaces<'f> {
    /// Empty address spaces; `build_ids` from the file's BUILD_ID feature.
    pub fn new(build_ids: HashMap<&'f [u8], &'f [u8]>) -> Self {
        Spaces {
            spaces: Arc::new(AddressSpaces::new()),
            generations: HashMap::default(),
            kernel_generation: 0,
            execs_under_way: FxHashSet::default(),
            build_ids,
        }
    }

    /// A copy of these address spaces as they are now, to replay on from apart.
    pub fn snapshot(&self) -> Self {
        Spaces {
            spaces: Arc::new(AddressSpaces::clone(&self.spaces)),
            generations: self.generations.clone(),
            kernel_generation: self.kernel_generation,
            execs_under_way: self.execs_under_way.clone(),
            build_ids: self.build_ids.clone(),
        }
    }

    /// The address spaces as they are now.
    pub fn get(&self) -> &Arc<AddressSpaces> {
        &self.spaces
    }

    /// The state of `pid`'s address space now.
    pub fn state(&self, pid: u32) -> SpaceState {
        SpaceState {
            pid,
            generation: self.generations.get(&pid).copied().unwrap_or(0),
            kernel_generation: self.kernel_generation,
        }
    }

    /// The address spaces, to change: no batch walks them then, so this never copies them.
    fn change(&mut self, _no_walks_out: NoWalksOut<'_>) -> &mut AddressSpaces {
        debug_assert_eq!(
            Arc::strong_count(&self.spaces),
            1,
            "a walk holds the spaces"
        );
        Arc::make_mut(&mut self.spaces)
    }

    fn bump(&mut self, pid: u32) {
        *self.generations.entry(pid).or_insert(0) += 1;
    }

    /// True when some process has exec'd and run no user code since.
    fn exec_under_way(&self) -> bool {
        !self.execs_under_way.is_empty()
    }

    /// True when a user-mode sample of `pid` ends an exec under way (see
    /// [`Spaces::exec_returned`]).
    fn ends_exec(&self, pid: u32, cpumode: CpuMode) -> bool {
        !self.execs_under_way.is_empty()
            && cpumode == CpuMode::User
            && self.execs_under_way.contains(&pid)
    }

    /// The new image of `pid` runs: the old one names none of its addresses any more.
    fn exec_returned(&mut self, pid: u32, no_walks_out: NoWalksOut<'_>) {
        self.execs_under_way.remove(&pid);
        self.bump(pid);
        self.change(no_walks_out).exec_returned(pid);
    }

    fn mmap(&mut self, m: &Mmap<'f>, no_walks_out: NoWalksOut<'_>) {
        let kernel =
            m.pid == u32::MAX || matches!(m.cpumode, CpuMode::Kernel | CpuMode::GuestKernel);
        if kernel {
            self.kernel_generation += 1;
        } else {
            self.bump(m.pid);
        }
        let build_id = m
            .build_id
            .or_else(|| self.build_ids.get(m.filename).copied());
        self.change(no_walks_out).mmap(
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

    fn comm(&mut self, c: &Comm<'f>, no_walks_out: NoWalksOut<'_>) {
        if c.exec {
            self.bump(c.pid);
            self.execs_under_way.insert(c.pid);
        }
        self.change(no_walks_out).comm(c.pid, c.tid, c.name, c.exec);
    }

    fn fork(&mut self, f: &ForkExit, no_walks_out: NoWalksOut<'_>) {
        if f.pid != f.ppid {
            self.bump(f.pid);
        }
        self.change(no_walks_out).fork(f.pid, f.ppid, f.tid, f.ptid);
    }

    fn exit(&mut self, f: &ForkExit, no_walks_out: NoWalksOut<'_>) {
        // A process that exits before running its new image leaves no exec under way: its
        // pid may name another process later.
        if f.pid == f.tid {
            self.execs_under_way.remove(&f.pid);
        }
        self.change(no_walks_out).exit(f.pid, f.tid);
    }
}

/// The threads samples belong to, interned by (pid, tid, name).
#[derive(Default)]
pub struct Threads {
    threads: Vec<Thread>,
    ids: HashMap<(u32, u32, Arc<str>), ThreadId>,
    /// The thread each (pid, tid) is now; forgotten when a COMM, FORK or EXIT may rename it.
    current: HashMap<(u32, u32), ThreadId>,
}

impl Threads {
    /// The thread `tid` of `pid` as named in `spaces` now.
    pub fn id(&mut self, spaces: &AddressSpaces, pid: u32, tid: u32) -> ThreadId {
        if let Some(&id) = self.current.get(&(pid, tid)) {
            return id;
        }
        let id = self.intern(spaces, pid, tid);
        self.current.insert((pid, tid), id);
        id
    }

    /// Names may change: look threads up afresh (rare records; a full clear is cheap).
    fn forget_current(&mut self) {
        self.current.clear();
    }

    fn intern(&mut self, spaces: &AddressSpaces, pid: u32, tid: u32) -> ThreadId {
        // perf's conventions: the idle task (pid 0) is `swapper`, an unnamed thread `:TID`,
        // and a task being reaped (tid -1) has no name.
        let name: Arc<str> = match spaces.thread_name(pid, tid) {
            _ if tid == u32::MAX => Arc::from(":-1"),
            Some(name) => Arc::from(name),
            None if pid == 0 => Arc::from("swapper"),
            None => Arc::from(format!(":{}", tid as i32)),
        };
        let key = (pid, tid, name);
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let process_name = spaces
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
        self.ids.insert(key, id);
        id
    }

    /// Interns `threads` (another replay's, by its [`ThreadId`]s) by (pid, tid, name) in their
    /// order; returns each one's id here.
    pub fn absorb(&mut self, threads: Vec<Thread>) -> Vec<ThreadId> {
        threads
            .into_iter()
            .map(|thread| {
                let key = (thread.pid, thread.tid, Arc::from(thread.name.as_str()));
                *self.ids.entry(key).or_insert_with(|| {
                    self.threads.push(thread);
                    (self.threads.len() - 1) as ThreadId
                })
            })
            .collect()
    }

    /// The interned threads, by [`ThreadId`].
    pub fn into_vec(self) -> Vec<Thread> {
        self.threads
    }
}

/// What the replay leaves for symbolization.
pub struct Replayed<'f> {
    /// The address spaces at the end of the recording.
    pub spaces: Arc<AddressSpaces>,
    /// The samples kept, in time order.
    pub samples: Vec<PendingSample>,
    /// The distinct chains and locations of those samples.
    pub chains: ChainTable<'f>,
    /// The threads of those samples.
    pub threads: Vec<Thread>,
    /// With [`AnalysisOptions::trace_fields`], one entry per sample.
    pub traces: Vec<Option<Box<str>>>,
    /// Records seen per type.
    pub records: HashMap<u32, u64>,
    /// Samples lost while recording.
    pub lost: Lost,
    /// Cgroup names (PERF_RECORD_CGROUP).
    pub cgroups: CgroupNames,
}

/// The replay's state: address spaces, threads, distinct chains, kept samples.
pub struct Replay<'o, 'f> {
    options: &'o AnalysisOptions,
    /// The file, for the formats of its tracepoints and the records to unwind.
    file: &'f PerfFile<'f>,
    spaces: Spaces<'f>,
    threads: Threads,
    chains: ChainTable<'f>,
    samples: Vec<PendingSample>,
    /// With [`AnalysisOptions::trace_fields`], one entry per sample.
    traces: Vec<Option<Box<str>>>,
    /// Per attr: its samples carry LBR call stacks ([`records_call_stacks`]).
    call_stack_events: Vec<bool>,
    /// Per attr, what a sample without PERIOD weighs (see [`sample_weight`]).
    fixed_periods: Vec<Option<u64>>,
    /// Samples waiting for DWARF unwinding (their index in `samples` goes with them), walked
    /// in batches on the thread pool while the replay goes on, and always before the address
    /// spaces change.
    unwinds: Option<UnwindQueue<'o, 'f>>,
    /// Records seen per type (for the header summary; saves a second pass).
    records: HashMap<u32, u64>,
    lost: Lost,
    /// Cgroup names (PERF_RECORD_CGROUP).
    cgroups: CgroupNames,
    /// Only the address spaces are replayed: samples are counted and may end an exec, nothing
    /// more (the pass that makes the shards' snapshots, see [`super::shard`]).
    side_band_only: bool,
}

impl<'o, 'f> Replay<'o, 'f> {
    /// A replay of `file` with nothing replayed yet; `samples` is how many samples it may
    /// keep at most (one allocation, never moved).
    pub fn new(
        file: &'f PerfFile<'f>,
        options: &'o AnalysisOptions,
        unwinds: Option<UnwindQueue<'o, 'f>>,
        samples: usize,
    ) -> Self {
        let build_ids = file
            .features()
            .build_ids
            .iter()
            .map(|b| (b.filename.as_bytes(), b.build_id.as_slice()))
            .collect();
        Replay {
            options,
            file,
            spaces: Spaces::new(build_ids),
            threads: Threads::default(),
            chains: ChainTable::new(options.inline || options.lines, options.sample_addresses),
            samples: Vec::with_capacity(samples),
            traces: Vec::new(),
            call_stack_events: file.attrs().iter().map(records_call_stacks).collect(),
            fixed_periods: file.attrs().iter().map(|a| a.fixed_period()).collect(),
            unwinds,
            records: HashMap::default(),
            lost: Lost::default(),
            cgroups: CgroupNames::new(),
            side_band_only: false,
        }
    }

    /// This replay, keeping no samples: only the address spaces, threads' names, record
    /// counts, losses and cgroups follow the records.
    pub fn side_band_only(mut self) -> Self {
        self.side_band_only = true;
        self
    }

    /// A replay that goes on from where this one is (its address spaces as they are now, a
    /// snapshot) with no sample, thread or chain yet; `samples` as in [`Replay::new`].
    pub fn snapshot(&self, samples: usize) -> Self {
        let mut replay = Replay::new(self.file, self.options, None, samples);
        replay.spaces = self.spaces.snapshot();
        replay.chains.reserve(samples);
        replay
    }

    /// Replays the next `limit` records of `records` at most, unwinding on `pool`, telling
    /// `done_below` from time to time a file offset below which no record is read any more;
    /// returns how many it replayed.
    pub fn run_some<'s>(
        &mut self,
        records: &mut kprof_perfdata::SortedRecords<'f>,
        limit: usize,
        unwinder: Option<&StackUnwinder>,
        pool: &rayon::Scope<'s>,
        done_below: &dyn Fn(u64),
    ) -> Result<usize>
    where
        'o: 's,
        'f: 's,
    {
        let file = self.file;
        let mut until_window_moves = 0usize;
        let mut until_forget = FORGET_RECORDED_EVERY;
        // Finding a recorded stack again reads its first sample: none below this floor.
        let mut recorded_floor = records.unread_floor();
        let mut replayed = 0;
        let mut side_band_samples = 0;
        while replayed < limit {
            if until_forget == 0 {
                until_forget = FORGET_RECORDED_EVERY;
                self.chains.forget_recorded();
                recorded_floor = records.unread_floor();
            }
            until_forget -= 1;
            // The side-band pass steps over samples unread while no exec is under way: only
            // a sample that ends one changes the address spaces (issue #13).
            if self.side_band_only && !self.spaces.exec_under_way() && records.skip_sample() {
                replayed += 1;
                side_band_samples += 1;
                continue;
            }
            let Some(record) = records.next_ref() else {
                break;
            };
            replayed += 1;
            let record = record?;
            prefetch_records(records, self.side_band_only);
            if until_window_moves == 0 {
                until_window_moves = WINDOW_EVERY_RECORDS;
                if !self.chains.holds_recorded() {
                    // No recorded stack points into the file (a DWARF recording's are walked):
                    // the first one recorded from here on is at or above the records unread.
                    recorded_floor = records.unread_floor();
                }
                let pending = self.unwinds.as_ref().map_or(u64::MAX, |q| q.floor());
                done_below(records.unread_floor().min(pending).min(recorded_floor));
            }
            until_window_moves -= 1;
            // The side-band pass reads every record of the file, and of a sample only what
            // may end an exec (issue #13).
            if self.side_band_only {
                if let Some((pid, cpumode)) = file.sample_pid(&record) {
                    side_band_samples += 1;
                    self.on_sample_mode(pid, cpumode, pool)?;
                    continue;
                }
            }
            let unwound = unwinder.and_then(|unwinder| {
                let head = file.sample_head(&record)?;
                unwinder.unwinds(head.attr_index).then_some(head)
            });
            match unwound {
                Some(head) => self.on_sample_to_unwind(&head, record, pool)?,
                None => self.on_record(&file.decode(&record)?, pool)?,
            }
        }
        if side_band_samples > 0 {
            *self.records.entry(record_kind::SAMPLE).or_insert(0) += side_band_samples;
        }
        Ok(replayed)
    }

    /// Settles the unwinding queue and hands over what was replayed.
    pub fn finish<'s>(mut self, pool: &rayon::Scope<'s>) -> Result<Replayed<'f>>
    where
        'o: 's,
        'f: 's,
    {
        self.settle_unwinds(pool)?;
        Ok(Replayed {
            spaces: self.spaces.spaces,
            samples: self.samples,
            chains: self.chains,
            threads: self.threads.into_vec(),
            traces: self.traces,
            records: self.records,
            lost: self.lost,
            cgroups: self.cgroups,
        })
    }

    /// Replays every record of `records` (the file's, in time order), unwinding on `pool`,
    /// telling `done_below` from time to time a file offset below which no record is read
    /// any more.
    pub fn run<'s>(
        mut self,
        mut records: kprof_perfdata::SortedRecords<'f>,
        unwinder: Option<&StackUnwinder>,
        pool: &rayon::Scope<'s>,
        done_below: &dyn Fn(u64),
    ) -> Result<Replayed<'f>>
    where
        'o: 's,
        'f: 's,
    {
        self.run_some(&mut records, usize::MAX, unwinder, pool, done_below)?;
        self.finish(pool)
    }

    /// One decoded record, to its handler.
    fn on_record<'s>(&mut self, event: &PerfEvent<'f>, pool: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        *self.records.entry(event.record.kind()).or_insert(0) += 1;
        match &event.record {
            Record::Sample(sample) => self.on_sample(sample, pool),
            Record::Mmap(m) => self.on_mmap(m, pool),
            Record::Comm(c) => self.on_comm(c, pool),
            Record::Fork(f) => self.on_fork(f, pool),
            Record::Exit(f) => self.on_exit(f, pool),
            Record::Lost(l) => {
                self.lost.in_ring += l.lost;
                Ok(())
            }
            Record::LostSamples(l) => {
                self.lost.counted += l.lost;
                Ok(())
            }
            Record::Cgroup(c) => {
                self.cgroups.insert(c.id, c.path);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Walks every waiting sample against the address spaces as they are now, waits for all
    /// of them, and proves it: the address spaces may change while the proof lives.
    fn settle_unwinds<'s>(&mut self, pool: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        let Some(queue) = self.unwinds.as_mut() else {
            return Ok(());
        };
        queue.submit(pool, self.spaces.get());
        let walked = queue.finished(0)?;
        self.assign_walked(walked);
        Ok(())
    }

    /// Settles the unwinding queue, then changes the address spaces with `change`.
    fn change_spaces<'s>(
        &mut self,
        pool: &rayon::Scope<'s>,
        change: impl FnOnce(&mut Spaces<'f>, NoWalksOut<'_>),
    ) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        self.settle_unwinds(pool)?;
        let no_walks_out = no_walks_out(&self.unwinds)?;
        change(&mut self.spaces, no_walks_out);
        Ok(())
    }

    /// A MMAP (or MMAP2): a mapping appears in a process, or in the kernel.
    fn on_mmap<'s>(&mut self, m: &Mmap<'f>, pool: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        self.change_spaces(pool, |spaces, proof| spaces.mmap(m, proof))
    }

    /// A COMM: a thread is named, or a process exec'd a new image.
    fn on_comm<'s>(&mut self, c: &Comm<'f>, pool: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        self.threads.forget_current();
        self.change_spaces(pool, |spaces, proof| spaces.comm(c, proof))
    }

    /// A FORK: a process or thread starts, a copy of its parent.
    fn on_fork<'s>(&mut self, f: &ForkExit, pool: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        self.threads.forget_current();
        self.change_spaces(pool, |spaces, proof| spaces.fork(f, proof))
    }

    /// An EXIT: a thread or process ends.
    fn on_exit<'s>(&mut self, f: &ForkExit, pool: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        self.threads.forget_current();
        self.change_spaces(pool, |spaces, proof| spaces.exit(f, proof))
    }

    /// Any sample of `pid` in `cpumode`: one running user code ends the exec under way in its
    /// process, whose old image then names none of its addresses any more.
    fn on_sample_mode<'s>(
        &mut self,
        pid: Option<u32>,
        cpumode: CpuMode,
        pool: &rayon::Scope<'s>,
    ) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        let pid = pid.unwrap_or(0);
        if !self.spaces.ends_exec(pid, cpumode) {
            return Ok(());
        }
        self.change_spaces(pool, |spaces, proof| spaces.exec_returned(pid, proof))
    }

    /// A decoded sample: kept with its chain, found or added in the chain table.
    fn on_sample<'s>(&mut self, sample: &PerfSample<'f>, pool: &rayon::Scope<'s>) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        self.on_sample_mode(sample.pid, sample.cpumode, pool)?;
        if self.side_band_only {
            return Ok(());
        }
        let pid = sample.pid.unwrap_or(0);
        let tid = sample.tid.unwrap_or(pid);
        if !self.wanted(pid, tid) {
            return Ok(());
        }
        let thread = self.threads.id(self.spaces.get(), pid, tid);
        let raw = sample.callchain.as_ref().map_or(&[][..], |c| c.as_bytes());
        let call_stacks = self
            .call_stack_events
            .get(sample.attr_index)
            .copied()
            .unwrap_or(false);
        let input = ChainInput::of(sample, call_stacks);
        let key = RecordedChainKey {
            space: self.spaces.state(pid),
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
        let chain = self.chains.recorded(self.spaces.get(), key, &input);
        self.samples.push(PendingSample {
            thread,
            event: u16::try_from(sample.attr_index).unwrap_or(u16::MAX),
            time: sample.time.unwrap_or(0),
            period: self.weight(sample.attr_index, sample.period, sample.raw),
            cpu: sample.cpu,
            cgroup: sample.cgroup,
            chain: Some(chain),
        });
        self.push_trace(sample.attr_index, sample.raw);
        Ok(())
    }

    /// A sample whose user stack is to be unwound: kept as a job, decoded and walked in a
    /// batch on the pool. `head` is all the replay needs of it.
    fn on_sample_to_unwind<'s>(
        &mut self,
        head: &SampleHead,
        record: RecordRef<'f>,
        pool: &rayon::Scope<'s>,
    ) -> Result<()>
    where
        'o: 's,
        'f: 's,
    {
        *self.records.entry(record_kind::SAMPLE).or_insert(0) += 1;
        self.on_sample_mode(head.pid, head.cpumode, pool)?;
        let pid = head.pid.unwrap_or(0);
        let tid = head.tid.unwrap_or(pid);
        if !self.wanted(pid, tid) {
            return Ok(());
        }
        let thread = self.threads.id(self.spaces.get(), pid, tid);
        let index = self.samples.len();
        let raw = if self.options.weight_field.is_some() {
            match self.file.decode(&record)?.record {
                Record::Sample(sample) => sample.raw,
                _ => None,
            }
        } else {
            None
        };
        self.samples.push(PendingSample {
            thread,
            event: u16::try_from(head.attr_index).unwrap_or(u16::MAX),
            time: head.time.unwrap_or(0),
            period: self.weight(head.attr_index, head.period, raw),
            cpu: head.cpu,
            cgroup: None,
            chain: None,
        });
        // The head stops before the cgroup id (it follows the copied stack): decode the rest
        // only where it is needed.
        let has_cgroup = self
            .file
            .attrs()
            .get(head.attr_index)
            .is_some_and(|a| a.sample_type & kprof_perfdata::kinds::sample::CGROUP != 0);
        if self.options.trace_fields || has_cgroup {
            let (raw, cgroup) = match self.file.decode(&record)?.record {
                Record::Sample(sample) => (sample.raw, sample.cgroup),
                _ => (None, None),
            };
            if let Some(pending) = self.samples.last_mut() {
                pending.cgroup = cgroup;
            }
            if self.options.trace_fields {
                self.push_trace(head.attr_index, raw);
            }
        }
        let space = self.spaces.state(pid);
        let Some(queue) = self.unwinds.as_mut() else {
            return Ok(());
        };
        if queue.push(UnwindJob::new(record, space), index) {
            queue.submit(pool, self.spaces.get());
            let walked = queue.finished(queue.max_in_flight())?;
            self.assign_walked(walked);
        }
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
                let chain = self
                    .chains
                    .walked(self.spaces.get(), job.space, addresses, shape);
                if let Some(pending) = self.samples.get_mut(index) {
                    pending.chain = Some(chain);
                }
            }
            if let Some(queue) = self.unwinds.as_mut() {
                queue.recycle(batch);
            }
        }
    }

    /// With [`AnalysisOptions::weight_field`], a tracepoint sample's value of that field
    /// (negative values and samples without the field weigh 0).
    fn field_weight(&self, attr_index: usize, raw: Option<&[u8]>) -> Option<u64> {
        use kprof_perfdata::tracepoint::FieldValue;
        let name = self.options.weight_field.as_deref()?;
        let value = self
            .file
            .tracepoint_format(attr_index)
            .zip(self.file.tracing_data())
            .zip(raw)
            .and_then(|((format, tracing), raw)| {
                Some(format.field(name)?.value(raw, tracing.layout))
            });
        Some(match value {
            Some(FieldValue::Unsigned(v)) => v,
            Some(FieldValue::Signed(v)) => u64::try_from(v).unwrap_or(0),
            _ => 0,
        })
    }

    /// What a sample of attr `attr_index` with `period` (and raw data `raw`) weighs: the one
    /// place the replay decides a sample's weight: a field's value with `--weight`, else its
    /// period (see [`sample_weight`]).
    fn weight(&self, attr_index: usize, period: Option<u64>, raw: Option<&[u8]>) -> u64 {
        if let Some(weight) = self.field_weight(attr_index, raw) {
            return weight;
        }
        let fixed_period = self.fixed_periods.get(attr_index).copied().flatten();
        sample_weight(period, fixed_period)
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

    /// Whether samples of `tid` in `pid` pass the `--pid`, `--tid` and `--comm` filters.
    fn wanted(&self, pid: u32, tid: u32) -> bool {
        let o = self.options;
        if !o.pids.is_empty() && !o.pids.contains(&pid) {
            return false;
        }
        if !o.tids.is_empty() && !o.tids.contains(&tid) {
            return false;
        }
        if !o.comms.is_empty() {
            let spaces = self.spaces.get();
            let thread = spaces.thread_name(pid, tid);
            let process = spaces.process_name(pid);
            return o
                .comms
                .iter()
                .any(|c| Some(c.as_str()) == thread || Some(c.as_str()) == process);
        }
        true
    }
}

/// The proof that no batch of `queue` is out, right after [`Replay::settle_unwinds`].
fn no_walks_out<'q>(queue: &'q Option<UnwindQueue<'_, '_>>) -> Result<NoWalksOut<'q>> {
    NoWalksOut::of(queue.as_ref())
        .ok_or_else(|| anyhow!("internal error: the address spaces changed under a stack walk"))
}

/// Asks the CPU for the records a few places ahead: their first lines (header, ids, callchain,
/// registers) early, and their last line (a copied stack's `dyn_size`) once the header is in.
/// A side-band pass reads only a record's first line.
fn prefetch_records(events: &kprof_perfdata::SortedRecords<'_>, side_band_only: bool) {
    let first_lines = if side_band_only { 1 } else { 4 };
    if let Some(start) = events.upcoming_start(8) {
        crate::mapped::prefetch(start, first_lines);
    }
    if side_band_only {
        return;
    }
    if let Some(record) = events.upcoming_record(4) {
        crate::mapped::prefetch(
            record.get(record.len().saturating_sub(8)..).unwrap_or(&[]),
            1,
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kprof_perfdata::Endian;
    use kprof_perfdata::kinds::{attr_flag, misc, record as rk, sample as st};
    use kprof_symbolizer::{Location, ModuleOffset};
    use kprof_test_support::{AttrSpec, RecordBuilder};

    use kprof_perfdata::kinds::context::USER as CONTEXT_USER;

    /// A `perf record -c 1000 -g` file of pid 7 (`app`, then exec'd as `app2`) with a sample of
    /// pid 8, side-band records carrying their time (sample_id_all), and lost samples told
    /// twice.
    pub(crate) fn recording() -> Vec<u8> {
        let e = Endian::Little;
        let mut r = RecordBuilder::new(e);
        let mut time = 0;
        let mut next = || {
            time += 1;
            time
        };
        let id = |b: &mut RecordBuilder, pid: u32, time: u64| {
            b.u32(pid).u32(pid).u64(time);
        };
        let mmap = |r: &mut RecordBuilder, time: u64, start: u64, path: &[u8]| {
            r.record(rk::MMAP, 2, |b| {
                b.u32(7).u32(7).u64(start).u64(0x1_0000).u64(0).cstr(path);
                id(b, 7, time);
            });
        };
        let sample = |r: &mut RecordBuilder, time: u64, pid: u32| {
            r.record(rk::SAMPLE, 2, |b| {
                b.u64(0x40_1000).u32(pid).u32(pid).u64(time);
                b.u64(3).u64(CONTEXT_USER).u64(0x40_1000).u64(0x40_2000);
            });
        };
        let t = next();
        r.record(rk::COMM, 0, |b| {
            b.u32(7).u32(7).cstr(b"app");
            id(b, 7, t);
        });
        mmap(&mut r, next(), 0x40_0000, b"/bin/app");
        sample(&mut r, next(), 7);
        sample(&mut r, next(), 7);
        // A new mapping: the same stack after it is another chain.
        mmap(&mut r, next(), 0x50_0000, b"/lib/x.so");
        sample(&mut r, next(), 7);
        sample(&mut r, next(), 8);
        let t = next();
        r.record(rk::COMM, misc::COMM_EXEC, |b| {
            b.u32(7).u32(7).cstr(b"app2");
            id(b, 7, t);
        });
        sample(&mut r, next(), 7);
        let t = next();
        r.record(rk::LOST, 0, |b| {
            b.u64(1).u64(5);
            id(b, 7, t);
        });
        let t = next();
        r.record(rk::EXIT, 0, |b| {
            b.u32(7).u32(1).u32(7).u32(1).u64(t);
            id(b, 7, t);
        });
        let spec = AttrSpec {
            sample_type: st::IP | st::TID | st::TIME | st::CALLCHAIN,
            sample_period_or_freq: 1000,
            flags: attr_flag::SAMPLE_ID_ALL,
            ..AttrSpec::default()
        };
        crate::analysis::test_file(spec, r)
    }

    fn replay(bytes: &[u8], options: &AnalysisOptions) -> Replayed<'static> {
        // The file borrows the bytes for the test's whole life.
        let bytes: &'static [u8] = Box::leak(bytes.to_vec().into_boxed_slice());
        let file: &'static PerfFile<'static> = Box::leak(Box::new(PerfFile::parse(bytes).unwrap()));
        let options: &'static AnalysisOptions = Box::leak(Box::new(options.clone()));
        let records = file.sorted_records().unwrap();
        let replay = Replay::new(file, options, None, records.len());
        rayon::in_place_scope(|pool| replay.run(records, None, pool, &|_| {})).unwrap()
    }

    // See: issue #12 point 1
    #[test]
    fn side_band_records_shape_the_chains_threads_and_weights_of_samples() {
        let replayed = replay(&recording(), &AnalysisOptions::default());
        let samples = &replayed.samples;
        assert_eq!(samples.len(), 5);
        // No PERIOD: each sample weighs the attr's fixed period.
        assert!(samples.iter().all(|s| s.period == 1000));
        // One stack, one address space state: one chain; a MMAP in between: another.
        assert_eq!(samples[0].chain, samples[1].chain);
        assert_ne!(samples[1].chain, samples[2].chain);
        assert!(samples.iter().all(|s| s.chain.is_some()));
        // The first chain's leaf is in /bin/app.
        let chain = replayed.chains.chain(samples[0].chain.unwrap());
        let (leaf, _) = replayed.chains.locations()[chain[0].0 as usize];
        assert!(
            matches!(
                leaf,
                Location::Module {
                    offset: ModuleOffset(0x1000),
                    ..
                }
            ),
            "{leaf:?}"
        );
        // Threads by name: pid 8 has none; the exec renamed pid 7.
        let names: Vec<&str> = samples
            .iter()
            .map(|s| replayed.threads[s.thread as usize].name.as_str())
            .collect();
        assert_eq!(names, ["app", "app", "app", ":8", "app2"]);
        assert_eq!(replayed.records.get(&rk::SAMPLE), Some(&5));
        assert_eq!(replayed.records.get(&rk::MMAP), Some(&2));
        assert_eq!(replayed.lost.samples(), 5);
        assert!(replayed.traces.is_empty());
    }

    #[test]
    fn filtered_samples_are_not_kept() {
        let options = AnalysisOptions {
            pids: vec![8],
            ..AnalysisOptions::default()
        };
        let replayed = replay(&recording(), &options);
        assert_eq!(replayed.samples.len(), 1);
        assert_eq!(replayed.threads[replayed.samples[0].thread as usize].pid, 8);
        let options = AnalysisOptions {
            comms: vec!["app2".to_string()],
            ..AnalysisOptions::default()
        };
        assert_eq!(replay(&recording(), &options).samples.len(), 1);
    }

    #[test]
    fn lost_samples_told_twice_count_once() {
        let mut lost = Lost::default();
        lost.in_ring += 5;
        lost.counted += 3;
        assert_eq!(lost.samples(), 5);
        assert_eq!(sample_weight(None, None), 1);
        assert_eq!(sample_weight(Some(0), Some(7)), 1);
        assert_eq!(sample_weight(None, Some(7)), 7);
        assert_eq!(sample_weight(Some(3), Some(7)), 3);
    }
}
