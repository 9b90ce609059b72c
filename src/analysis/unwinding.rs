//! DWARF unwinding of copied user stacks (`--call-graph dwarf`) during analysis: adapts the
//! address spaces and the symbolizer's ELF images to the unwinder, queues samples and walks
//! them in batches on the thread pool while the replay goes on ([`UnwindQueue`]), and counts
//! how each walk ended, per module ([`super::quality::UnwindReport`] says what to do about it).
//! While a batch walks, the address spaces must not change: [`NoWalksOut`], the proof that
//! none does, is what changing them takes.
//!
//! What makes it fast: the replay thread reads only a sample's head (who and when) and queues
//! the record; workers decode the rest, a few samples ahead of their walks so the file's
//! bytes are already in the cache when the walk needs them ([`crate::mapped::prefetch`]);
//! walks reuse their buffers; and each worker has its own unwinder, whose step cache turns a
//! pc seen before in the same address space into one table lookup.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::Mutex;

use kprof_perfdata::kinds::{context, sample as sample_bits};
use kprof_perfdata::{PerfFile, Record, RecordRef, Regs, U64Slice};
use kprof_symbolizer::unwind::{
    Arch, DwarfUnwinder, FrameAddress, ModuleRef, ModuleSource, StackBytes, UnwindCache, UnwindEnd,
    Unwound, UserRegs, join_with_fp_chain,
};
use kprof_symbolizer::{AddressSpaces, Avma, Location, ModuleId, Symbolizer};

use super::chain_table::SpaceState;
use super::chains::{ChainInput, ChainShape, StackAddress, chain_addresses};
use super::quality::{ModuleUnwind, UnwindReport};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Deepest user stack a walk produces.
const MAX_FRAMES: usize = 1024;

/// One sample waiting to be unwound: its record, not decoded yet (a worker decodes it).
#[derive(Clone, Copy)]
pub struct UnwindJob<'f> {
    record: RecordRef<'f>,
    /// The sampled process and the state of its mappings (and the kernel's) the sample saw.
    pub space: SpaceState,
}

impl<'f> UnwindJob<'f> {
    /// The job for the sample `record`, taken in the address space state `space`.
    pub fn new(record: RecordRef<'f>, space: SpaceState) -> Self {
        UnwindJob { record, space }
    }
}

/// The proof that no unwinding batch is waiting or walking: what changing the address spaces
/// takes. It borrows the queue, so no batch can be queued or submitted while it lives.
pub struct NoWalksOut<'q>(PhantomData<&'q ()>);

impl<'q> NoWalksOut<'q> {
    /// The proof, when no job of `queue` is waiting or walking (always without a queue: no
    /// sample is unwound).
    pub fn of(queue: Option<&'q UnwindQueue<'_, '_>>) -> Option<Self> {
        match queue {
            Some(queue) if !queue.waiting.is_empty() || !queue.in_flight.is_empty() => None,
            _ => Some(NoWalksOut(PhantomData)),
        }
    }
}

/// A batch's stacks: each sample's leaf-first (address, kernel) pairs, kernel part from its
/// callchain and user part unwound, in job order.
#[derive(Default)]
pub struct WalkedChunk {
    /// All the chunk's addresses, back to back.
    pub addresses: Vec<StackAddress>,
    /// Per job: its range of `addresses` and the shape of its chain.
    pub stacks: Vec<(std::ops::Range<usize>, ChainShape)>,
    /// How the walks ended, by the module of their last frame (`None`: outside every one).
    ends: FxHashMap<Option<ModuleId>, ModuleUnwind>,
}

/// Jobs per parallel task: enough to amortize the task, few enough to balance two cores.
const JOBS_PER_TASK: usize = 256;
/// How many jobs ahead of the walk a record's first lines are fetched into the cache.
const PREFETCH_RECORDS_AHEAD: usize = 8;
/// How many decoded samples wait (their registers and stack being fetched) before their walk.
const DECODED_AHEAD: usize = 4;

/// Most batches walked at once while the replay goes on: two keep both cores busy.
const MAX_BATCHES_IN_FLIGHT: usize = 2;

/// A walked batch, back from the thread pool: its jobs, the caller's sample indices, and the
/// stacks (chunk by chunk, in job order).
pub struct WalkedBatch<'f> {
    /// The batch's jobs.
    pub jobs: Vec<UnwindJob<'f>>,
    /// What the caller pushed with each job.
    pub samples: Vec<usize>,
    /// The stacks.
    pub chunks: Vec<WalkedChunk>,
}

/// What a pool task sends back: its batch number, jobs and stacks.
type BatchResult<'f> = (u64, Vec<UnwindJob<'f>>, anyhow::Result<Vec<WalkedChunk>>);

/// Samples to unwind, walked in batches on the thread pool while the caller replays the next
/// records: the caller hands over the address spaces as they are when it submits a batch, and
/// takes batches back in order. Address spaces must not change while a batch walks: before
/// changing them, wait for every batch ([`UnwindQueue::finished`] with no batch left in flight).
pub struct UnwindQueue<'a, 'f> {
    unwinder: &'a StackUnwinder,
    file: &'f PerfFile<'f>,
    symbolizer: &'a Symbolizer,
    waiting: Vec<UnwindJob<'f>>,
    waiting_samples: Vec<usize>,
    /// The lowest record offset among the waiting jobs.
    waiting_floor: u64,
    /// Submitted batches, oldest first: number, sample indices, lowest record offset.
    in_flight: VecDeque<(u64, Vec<usize>, u64)>,
    /// Results that came back before an older batch's.
    arrived: BTreeMap<u64, (Vec<UnwindJob<'f>>, anyhow::Result<Vec<WalkedChunk>>)>,
    sender: std::sync::mpsc::Sender<BatchResult<'f>>,
    receiver: std::sync::mpsc::Receiver<BatchResult<'f>>,
    next_batch: u64,
    /// Emptied buffers of finished batches, for the next ones (fresh memory costs page faults).
    spare: Vec<(Vec<UnwindJob<'f>>, Vec<usize>)>,
}

impl<'a, 'f> UnwindQueue<'a, 'f> {
    /// An empty queue for `file`'s samples.
    pub fn new(
        unwinder: &'a StackUnwinder,
        file: &'f PerfFile<'f>,
        symbolizer: &'a Symbolizer,
    ) -> Self {
        let (sender, receiver) = std::sync::mpsc::channel();
        UnwindQueue {
            unwinder,
            file,
            symbolizer,
            waiting: Vec::with_capacity(UNWIND_BATCH),
            waiting_samples: Vec::with_capacity(UNWIND_BATCH),
            waiting_floor: u64::MAX,
            in_flight: VecDeque::new(),
            arrived: BTreeMap::new(),
            sender,
            receiver,
            next_batch: 0,
            spare: Vec::new(),
        }
    }

    /// Queues a job; `sample` comes back with its stack. True when a batch is full.
    pub fn push(&mut self, job: UnwindJob<'f>, sample: usize) -> bool {
        self.waiting_floor = self.waiting_floor.min(job.record.offset());
        self.waiting.push(job);
        self.waiting_samples.push(sample);
        self.waiting.len() >= UNWIND_BATCH
    }

    /// Sends the waiting jobs to the pool as one batch, walked against `spaces`.
    pub fn submit<'s>(&mut self, scope: &rayon::Scope<'s>, spaces: &Arc<AddressSpaces>)
    where
        'a: 's,
        'f: 's,
    {
        if self.waiting.is_empty() {
            return;
        }
        let (spare_jobs, spare_samples) = self.spare.pop().unwrap_or_else(|| {
            (
                Vec::with_capacity(UNWIND_BATCH),
                Vec::with_capacity(UNWIND_BATCH),
            )
        });
        let jobs = std::mem::replace(&mut self.waiting, spare_jobs);
        let samples = std::mem::replace(&mut self.waiting_samples, spare_samples);
        let number = self.next_batch;
        self.next_batch += 1;
        self.in_flight
            .push_back((number, samples, self.waiting_floor));
        self.waiting_floor = u64::MAX;
        let (unwinder, file, symbolizer) = (self.unwinder, self.file, self.symbolizer);
        let (spaces, sender) = (Arc::clone(spaces), self.sender.clone());
        scope.spawn(move |_| {
            let walked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                unwinder.run(file, &jobs, &spaces, symbolizer)
            }));
            // The spaces go before the result: whoever receives it may change them.
            drop(spaces);
            let walked = match walked {
                Ok(walked) => walked.map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("internal error: a stack walk panicked")),
            };
            // The receiver lives as long as the queue, which outlives the scope.
            let _ = sender.send((number, jobs, walked));
        });
    }

    /// The batches that are back, oldest first, after waiting until at most `in_flight` are
    /// still out. Fails with the first batch whose records did not decode.
    pub fn finished(&mut self, in_flight: usize) -> anyhow::Result<Vec<WalkedBatch<'f>>> {
        let mut done = Vec::new();
        loop {
            while let Ok((number, jobs, walked)) = self.receiver.try_recv() {
                self.arrived.insert(number, (jobs, walked));
            }
            while let Some((number, _, _)) = self.in_flight.front() {
                let Some((jobs, walked)) = self.arrived.remove(number) else {
                    break;
                };
                let Some((_, samples, _)) = self.in_flight.pop_front() else {
                    break;
                };
                done.push(WalkedBatch {
                    jobs,
                    samples,
                    chunks: walked?,
                });
            }
            if self.in_flight.len() <= in_flight {
                return Ok(done);
            }
            // Every task sends exactly once, and this queue holds a sender: never disconnected.
            let (number, jobs, walked) = self
                .receiver
                .recv()
                .map_err(|_| anyhow::anyhow!("internal error: a stack walk vanished"))?;
            self.arrived.insert(number, (jobs, walked));
        }
    }

    /// The lowest record offset a queued or walking job still reads (`u64::MAX`: none).
    pub fn floor(&self) -> u64 {
        self.in_flight
            .iter()
            .map(|&(_, _, floor)| floor)
            .fold(self.waiting_floor, u64::min)
    }

    /// Takes back a batch's buffers once its stacks are used.
    pub fn recycle(&mut self, batch: WalkedBatch<'f>) {
        let (mut jobs, mut samples) = (batch.jobs, batch.samples);
        jobs.clear();
        samples.clear();
        self.spare.push((jobs, samples));
    }

    /// Most batches to leave in flight while the replay goes on.
    pub fn max_in_flight(&self) -> usize {
        MAX_BATCHES_IN_FLIGHT
    }
}

/// Most samples waiting to be unwound in one batch: bounds the memory they pin and keeps their
/// records in the cache between the replay and the walks.
const UNWIND_BATCH: usize = 2048;

/// What a walk needs of a decoded sample (a small copy: a whole `Sample` is ~600 bytes).
#[derive(Clone, Copy)]
struct DecodedSample<'f> {
    chain: ChainInput<'f>,
    regs: Option<Regs<'f>>,
    stack: Option<&'f [u8]>,
}

/// Buffers one worker reuses from walk to walk.
struct WalkScratch {
    frames: Vec<FrameAddress>,
    lookups: Vec<StackAddress>,
    /// This worker's step cache and CFI evaluation space.
    cache: UnwindCache,
}

/// Unwinds the user stacks of samples that carry registers and stack bytes.
pub struct StackUnwinder {
    arch: Arch,
    /// Per attr: its samples carry user registers and stack bytes.
    unwound_attrs: Vec<bool>,
    /// Shared by the workers: each module's CFI index and evaluated rows, parsed once; each
    /// worker's own caches travel in its [`WalkScratch`].
    unwinder: DwarfUnwinder,
    /// Each worker's cache between its chunks: taken at a chunk's start, given back at its end.
    caches: Mutex<Vec<UnwindCache>>,
    /// Look up callers at `ra - 1` (inline frames and lines need the call instruction).
    call_site_lookup: bool,
    /// Samples unwound, and how their walks ended by module id.
    ends: Mutex<(u64, FxHashMap<Option<ModuleId>, ModuleUnwind>)>,
}

/// The address spaces as the unwinder sees one process. One per worker chunk: the ELF images
/// it hands out are cached here, so a frame costs no lock and no allocation.
struct ProcessModules<'a> {
    spaces: &'a AddressSpaces,
    symbolizer: &'a Symbolizer,
    pid: u32,
    space: u64,
    files: RefCell<FxHashMap<u32, Option<ElfFile>>>,
}

/// An ELF image as the unwinder takes it.
type ElfFile = Arc<dyn AsRef<[u8]> + Send + Sync>;

impl ModuleSource for ProcessModules<'_> {
    fn module_at(&self, avma: Avma) -> Option<ModuleRef> {
        let Location::Module { module, offset } = self.spaces.locate(self.pid, avma, false) else {
            return None;
        };
        let file = self
            .files
            .borrow_mut()
            .entry(module.0)
            .or_insert_with(|| {
                let bytes = self.symbolizer.elf_bytes(self.spaces.module(module))?;
                Some(Arc::new(bytes) as ElfFile)
            })
            .clone()?;
        Some(ModuleRef {
            key: u64::from(module.0),
            map_start: avma,
            map_pgoff: offset.0,
            file,
        })
    }

    fn space_key(&self) -> Option<u64> {
        Some(self.space)
    }

    fn is_code(&self, avma: Avma) -> bool {
        // The recording's MMAP records name executable mappings (files, anonymous JIT code).
        !matches!(
            self.spaces.locate(self.pid, avma, false),
            Location::Unmapped(_)
        )
    }
}

impl StackUnwinder {
    /// An unwinder when `file`'s samples carry user registers and stacks.
    pub fn for_file(file: &PerfFile<'_>, call_site_lookup: bool) -> Option<StackUnwinder> {
        let wanted = sample_bits::REGS_USER | sample_bits::STACK_USER;
        let unwound_attrs: Vec<bool> = file
            .attrs()
            .iter()
            .map(|a| a.sample_type & wanted == wanted)
            .collect();
        if !unwound_attrs.contains(&true) {
            return None;
        }
        let arch = file
            .features()
            .arch
            .as_deref()
            .and_then(Arch::from_perf_arch)
            .or_else(Arch::host)?;
        Some(StackUnwinder {
            arch,
            unwound_attrs,
            unwinder: DwarfUnwinder::new(),
            caches: Mutex::default(),
            call_site_lookup,
            ends: Mutex::default(),
        })
    }

    /// True when samples of attr `attr_index` carry what unwinding needs.
    pub fn unwinds(&self, attr_index: usize) -> bool {
        self.unwound_attrs.get(attr_index).copied().unwrap_or(false)
    }

    /// Decodes and walks every job in parallel; returns their stacks in job order. Call it
    /// while `spaces` still describes the moment the samples were taken. Fails with the first
    /// record that does not decode.
    pub fn run<'f>(
        &self,
        file: &'f PerfFile<'f>,
        jobs: &[UnwindJob<'f>],
        spaces: &AddressSpaces,
        symbolizer: &Symbolizer,
    ) -> Result<Vec<WalkedChunk>, kprof_perfdata::Error> {
        let chunks: Vec<WalkedChunk> = jobs
            .par_chunks(JOBS_PER_TASK)
            .map(|chunk| {
                let mut modules = ProcessModules {
                    spaces,
                    symbolizer,
                    pid: 0,
                    space: 0,
                    files: RefCell::default(),
                };
                self.walk_chunk(file, chunk, &mut modules)
            })
            .collect::<Result<_, _>>()?;
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in &chunks {
            for (&module, counts) in &chunk.ends {
                ends.0 += counts.walks();
                ends.1.entry(module).or_default().merge(counts);
            }
        }
        Ok(chunks)
    }

    /// Decodes and walks one chunk of jobs, a few jobs ahead of itself: a record's first lines
    /// are fetched [`PREFETCH_RECORDS_AHEAD`] jobs early, its registers and stack once it is
    /// decoded, [`DECODED_AHEAD`] jobs before its walk. Samples are read in time order, which
    /// jumps around a file much larger than the caches: this overlaps those misses.
    fn walk_chunk<'f>(
        &self,
        file: &'f PerfFile<'f>,
        chunk: &[UnwindJob<'f>],
        modules: &mut ProcessModules<'_>,
    ) -> Result<WalkedChunk, kprof_perfdata::Error> {
        let mut out = WalkedChunk::default();
        let mut scratch = WalkScratch {
            cache: self
                .caches
                .lock()
                .ok()
                .and_then(|mut caches| caches.pop())
                .unwrap_or_default(),
            frames: Vec::new(),
            lookups: Vec::new(),
        };
        let mut decoded: VecDeque<(&UnwindJob<'f>, DecodedSample<'f>)> =
            VecDeque::with_capacity(DECODED_AHEAD + 1);
        for (i, job) in chunk.iter().enumerate() {
            if let Some(ahead) = chunk.get(i + PREFETCH_RECORDS_AHEAD) {
                let body = ahead.record.body();
                crate::mapped::prefetch(body, 5);
                crate::mapped::prefetch(body.get(body.len().saturating_sub(8)..).unwrap_or(&[]), 1);
            }
            let Record::Sample(sample) = file.decode(&job.record)?.record else {
                continue;
            };
            let sample = DecodedSample {
                // DWARF events: `--call-graph` records one kind of stack, never LBR too.
                chain: ChainInput::of(&sample, false),
                regs: sample.regs_user.filter(|r| r.abi != 0),
                stack: sample.stack_user.filter(|s| !s.is_empty()),
            };
            if let Some(regs) = sample.regs {
                crate::mapped::prefetch(regs.values.as_bytes(), 3);
            }
            crate::mapped::prefetch(sample.stack.unwrap_or(&[]), 6);
            decoded.push_back((job, sample));
            if decoded.len() > DECODED_AHEAD {
                if let Some((job, sample)) = decoded.pop_front() {
                    self.stack_of(job, &sample, modules, &mut scratch, &mut out);
                }
            }
        }
        while let Some((job, sample)) = decoded.pop_front() {
            self.stack_of(job, &sample, modules, &mut scratch, &mut out);
        }
        if let Ok(mut caches) = self.caches.lock() {
            caches.push(scratch.cache);
        }
        Ok(out)
    }

    /// One sample's stack into `out`: the kernel part of its callchain, then its user stack,
    /// unwound when it has registers and stack bytes.
    fn stack_of(
        &self,
        job: &UnwindJob<'_>,
        sample: &DecodedSample<'_>,
        modules: &mut ProcessModules<'_>,
        scratch: &mut WalkScratch,
        out: &mut WalkedChunk,
    ) {
        let unwound = match (sample.regs, sample.stack) {
            (Some(regs), Some(stack)) => {
                let (module, end) =
                    self.walk(job, regs, stack, sample.chain.callchain, modules, scratch);
                out.ends.entry(module).or_default().add(&end);
                true
            }
            _ => false,
        };
        let start = out.addresses.len();
        let shape = chain_addresses(
            &sample.chain,
            unwound.then_some(scratch.lookups.as_slice()),
            self.call_site_lookup,
            &mut out.addresses,
        );
        out.stacks.push((start..out.addresses.len(), shape));
    }

    /// One sample's walk into `scratch.lookups` (lookup addresses, leaf first); returns the
    /// module it ended in (`None`: outside every one) and why it ended.
    fn walk(
        &self,
        job: &UnwindJob<'_>,
        perf_regs: Regs<'_>,
        stack: &[u8],
        callchain: Option<U64Slice<'_>>,
        modules: &mut ProcessModules<'_>,
        scratch: &mut WalkScratch,
    ) -> (Option<ModuleId>, UnwindEnd) {
        scratch.lookups.clear();
        // Module ids are global, so cached images stay valid when the process changes.
        modules.pid = job.space.pid;
        modules.space = job.space.unwinder_key();
        let mut values = [0u64; 64];
        let count = perf_regs.values.len().min(values.len());
        for (slot, value) in values.iter_mut().zip(perf_regs.values.iter()) {
            *slot = value;
        }
        let Some(regs) = UserRegs::from_perf(self.arch, perf_regs.mask, &values[..count]) else {
            return (None, UnwindEnd::DepthLimit);
        };
        let unwinder = &self.unwinder;
        let stack = StackBytes {
            start: regs.sp(),
            bytes: stack,
        };
        let frames = &mut scratch.frames;
        let cache = &mut scratch.cache;
        let mut end = unwinder.unwind_into(
            self.arch, &regs, &stack, &*modules, MAX_FRAMES, frames, cache,
        );
        if end == UnwindEnd::StackExhausted {
            // Out of copied stack: go on along the frame pointers the kernel followed.
            let callchain: Vec<u64> = callchain.map(|c| c.iter().collect()).unwrap_or_default();
            let walked = Unwound {
                frames: std::mem::take(frames),
                end,
            };
            let user_chain = context::user_entries(&callchain);
            let joined = join_with_fp_chain(walked, user_chain, MAX_FRAMES);
            *frames = joined.frames;
            end = joined.end;
        }
        let last = frames.last().map(|f| f.address());
        let module = match last.map(|a| modules.spaces.locate(job.space.pid, a, false)) {
            Some(Location::Module { module, .. }) => Some(module),
            _ => None,
        };
        scratch
            .lookups
            .extend(frames.iter().map(|frame| StackAddress {
                lookup: match frame {
                    FrameAddress::ReturnAddress(_) if self.call_site_lookup => {
                        frame.lookup_address().0
                    }
                    _ => frame.address().0,
                },
                // perf prints an unwound caller inside its call instruction.
                shown: frame.lookup_address().0,
                kernel: false,
            }));
        (module, end)
    }

    /// How the walks so far ended, with module names from `spaces`.
    pub fn report(&self, spaces: &AddressSpaces) -> UnwindReport {
        let ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = UnwindReport {
            samples: ends.0,
            modules: BTreeMap::new(),
        };
        for (&module, counts) in &ends.1 {
            let name = match module {
                None => "[unknown]".to_string(),
                Some(id) => spaces.module(id).path.to_string(),
            };
            report.modules.entry(name).or_default().merge(counts);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprof_perfdata::Endian;
    use kprof_perfdata::kinds::{record as rk, sample as st};
    use kprof_symbolizer::SymbolizerOptions;
    use kprof_test_support::{AttrSpec, RecordBuilder};

    /// A `--call-graph dwarf` file with one sample: no registers, no stack bytes.
    fn recording() -> Vec<u8> {
        let e = Endian::Little;
        let mut r = RecordBuilder::new(e);
        r.record(rk::SAMPLE, 2, |b| {
            b.u64(0x40_1000).u32(7).u32(7).u64(1);
            // REGS_USER: abi 0 (none); STACK_USER: size 0.
            b.u64(0).u64(0);
        });
        crate::analysis::test_file(dwarf_attr(0xff, 8192), r)
    }

    /// A `--call-graph dwarf` attr copying `regs_user` and `stack_user` bytes of stack.
    fn dwarf_attr(regs_user: u64, stack_user: u32) -> AttrSpec {
        AttrSpec {
            sample_type: st::IP | st::TID | st::TIME | st::REGS_USER | st::STACK_USER,
            sample_regs_user: regs_user,
            sample_stack_user: stack_user,
            sample_period_or_freq: 1000,
            ..AttrSpec::default()
        }
    }

    // See: issue #12 point 1
    #[test]
    fn the_address_spaces_may_change_only_when_no_job_waits_or_walks() {
        let bytes = recording();
        let file = PerfFile::parse(&bytes).unwrap();
        let Some(unwinder) = StackUnwinder::for_file(&file, false) else {
            // No unwinder for this machine's architecture.
            return;
        };
        assert!(unwinder.unwinds(0));
        let symbolizer = Symbolizer::new(SymbolizerOptions::default());
        let spaces = Arc::new(AddressSpaces::new());
        let mut queue = UnwindQueue::new(&unwinder, &file, &symbolizer);
        assert!(
            NoWalksOut::of(None).is_some(),
            "nothing unwound: nothing out"
        );
        assert!(NoWalksOut::of(Some(&queue)).is_some());
        let mut records = file.sorted_records().unwrap();
        let record = records.next_ref().unwrap().unwrap();
        let space = SpaceState {
            pid: 7,
            generation: 0,
            kernel_generation: 0,
        };
        assert!(!queue.push(UnwindJob::new(record, space), 0));
        assert!(NoWalksOut::of(Some(&queue)).is_none(), "a job waits");
        rayon::in_place_scope(|pool| {
            queue.submit(pool, &spaces);
            assert!(NoWalksOut::of(Some(&queue)).is_none(), "a batch walks");
            let walked = queue.finished(0).unwrap();
            assert_eq!(walked.len(), 1);
            assert_eq!(walked[0].samples, [0]);
            // No registers: the stack is the sampled ip alone.
            let chunk = &walked[0].chunks[0];
            assert_eq!(chunk.addresses, [StackAddress::at(0x40_1000, false)]);
        });
        assert!(NoWalksOut::of(Some(&queue)).is_some());
        assert_eq!(
            Arc::strong_count(&spaces),
            1,
            "the walk let go of the spaces"
        );
        assert_eq!(
            unwinder.report(&spaces).samples,
            0,
            "no walk without registers"
        );
    }

    // See: issue #13 point 3 (peak memory under perf script's on DWARF recordings)
    #[test]
    fn the_replay_of_unwound_samples_lets_go_of_the_file_behind_it() {
        let e = Endian::Little;
        let mut r = RecordBuilder::new(e);
        // Eight batches of walks: two stay in flight, the first ones are done with.
        let samples = 8 * UNWIND_BATCH as u64;
        for time in 1..=samples {
            // perf ends a round of records every so often: what the time order waits for.
            if time % 256 == 0 {
                r.record(rk::FINISHED_ROUND, 0, |_| {});
            }
            r.record(rk::SAMPLE, 2, |b| {
                b.u64(0x40_1000).u32(7).u32(7).u64(time);
                // REGS_USER: abi 2 (64-bit), bp, sp and ip (x86-64's registers 6, 7, 8);
                // STACK_USER: 64 bytes, all of them used.
                b.u64(2).u64(0).u64(0x7fff_0000).u64(0x40_1000);
                b.u64(64);
                for _ in 0..8 {
                    b.u64(0);
                }
                b.u64(64);
            });
        }
        let bytes = crate::analysis::test_file(dwarf_attr(0x1c0, 64), r);
        let file = PerfFile::parse(&bytes).unwrap();
        if StackUnwinder::for_file(&file, false).is_none() {
            // No unwinder for this machine's architecture.
            return;
        }
        let options = crate::analysis::AnalysisOptions {
            dwarf: true,
            ..crate::analysis::AnalysisOptions::default()
        };
        let floor = std::sync::atomic::AtomicU64::new(0);
        let analysis = crate::analysis::analyze_windowed(&file, &options, &|below| {
            if below != u64::MAX {
                floor.fetch_max(below, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .unwrap();
        assert_eq!(analysis.profile.samples.len(), samples as usize);
        // Before its end, the replay said the first half of the file is read no more.
        let floor = floor.into_inner();
        let size = bytes.len() as u64;
        assert!(floor > size / 2, "released below {floor} of {size} bytes");
    }
}
