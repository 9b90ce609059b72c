//! DWARF unwinding of copied user stacks (`--call-graph dwarf`) during analysis: adapts the
//! address spaces and the symbolizer's ELF images to the unwinder, walks batches of samples in
//! parallel, and counts how each walk ended, per module, with the fix to try.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;

use kprof_perfdata::kinds::sample as sample_bits;
use kprof_perfdata::{PerfFile, Regs, Sample, U64Slice};
use kprof_symbolizer::unwind::{
    Arch, DwarfUnwinder, FrameAddress, ModuleRef, ModuleSource, StackBytes, UnwindEnd, UserRegs,
    join_with_fp_chain,
};
use kprof_symbolizer::{AddressSpaces, Avma, Location, Symbolizer};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

/// Deepest user stack a walk produces.
const MAX_FRAMES: usize = 1024;

/// How the walks that ended in one module ended.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ModuleUnwind {
    /// Walks that reached the outermost frame.
    pub reached_root: u64,
    /// Walks that ran out of copied stack (continued with the frame-pointer chain when the
    /// sample had one).
    pub truncated: u64,
    /// Walks that stopped for another reason (no CFI, bad CFI, a loop).
    pub failed: u64,
    /// The reasons, counted.
    pub reasons: BTreeMap<&'static str, u64>,
}

/// Unwinding quality of a whole profile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UnwindReport {
    /// Samples whose user stack was unwound.
    pub samples: u64,
    /// Per module the walk ended in (`[unknown]` when outside every mapping).
    pub modules: BTreeMap<String, ModuleUnwind>,
}

impl UnwindReport {
    fn add(&mut self, module: String, end: &UnwindEnd) {
        self.samples += 1;
        let entry = self.modules.entry(module).or_default();
        match end {
            UnwindEnd::ReachedRoot => entry.reached_root += 1,
            UnwindEnd::StackExhausted | UnwindEnd::JoinedFramePointerChain => entry.truncated += 1,
            _ => entry.failed += 1,
        }
        *entry.reasons.entry(end.reason()).or_insert(0) += 1;
    }

    /// Samples whose walk reached the root.
    pub fn reached_root(&self) -> u64 {
        self.modules.values().map(|m| m.reached_root).sum()
    }

    /// One line per module with incomplete walks, and what to try.
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (module, m) in &self.modules {
            let total = m.reached_root + m.truncated + m.failed;
            if m.truncated > 0 {
                lines.push(format!(
                    "{module}: {} of {total} stacks truncated (copied stack too small; record with a bigger --call-graph dwarf,SIZE, up to 65528)",
                    m.truncated
                ));
            }
            if m.failed > 0 {
                let reasons: Vec<String> = m
                    .reasons
                    .iter()
                    .filter(|(r, _)| {
                        !matches!(
                            **r,
                            "reached root" | "stack exhausted" | "joined frame-pointer chain"
                        )
                    })
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect();
                lines.push(format!(
                    "{module}: {} of {total} stacks stopped early ({}; missing .eh_frame or debug info: install the -dbgsym package or build with -g)",
                    m.failed,
                    reasons.join(", ")
                ));
            }
        }
        lines
    }
}

/// One sample's unwinding input, borrowed from the file.
#[derive(Clone)]
pub struct UnwindJob<'f> {
    /// The sampled process.
    pub pid: u32,
    /// The register dump, decoded on the worker thread.
    regs: Regs<'f>,
    stack: &'f [u8],
    callchain: Option<U64Slice<'f>>,
}

/// Unwinds the user stacks of samples that carry registers and stack bytes.
pub struct StackUnwinder {
    arch: Arch,
    /// One per worker thread: each caches parsed CFI and evaluated rows behind its own locks,
    /// which then never contend (shared ones made the walks wait on each other).
    unwinders: Vec<DwarfUnwinder>,
    /// Look up callers at `ra - 1` (inline frames and lines need the call instruction).
    call_site_lookup: bool,
    report: Mutex<UnwindReport>,
}

/// The address spaces as the unwinder sees one process. One per worker chunk: the ELF images
/// it hands out are cached here, so a frame costs no lock and no allocation.
struct ProcessModules<'a> {
    spaces: &'a AddressSpaces,
    symbolizer: &'a Symbolizer,
    pid: u32,
    files: RefCell<FxHashMap<u32, Option<ElfFile>>>,
}

/// An ELF image as the unwinder takes it.
type ElfFile = Arc<dyn AsRef<[u8]> + Send + Sync>;

impl ModuleSource for ProcessModules<'_> {
    fn module_at(&self, avma: u64) -> Option<ModuleRef> {
        let Location::Module { module, offset } = self.spaces.locate(self.pid, Avma(avma), false)
        else {
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
}

impl StackUnwinder {
    /// An unwinder when `file`'s samples carry user registers and stacks.
    pub fn for_file(file: &PerfFile<'_>, call_site_lookup: bool) -> Option<StackUnwinder> {
        let wanted = sample_bits::REGS_USER | sample_bits::STACK_USER;
        if !file
            .attrs()
            .iter()
            .any(|a| a.sample_type & wanted == wanted)
        {
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
            unwinders: (0..rayon::current_num_threads().max(1))
                .map(|_| DwarfUnwinder::new())
                .collect(),
            call_site_lookup,
            report: Mutex::new(UnwindReport::default()),
        })
    }

    /// The unwinding input of `sample`, when it has user registers and stack bytes.
    pub fn job<'f>(&self, sample: &Sample<'f>, pid: u32) -> Option<UnwindJob<'f>> {
        // Only borrowed slices here: this runs on the replay thread, the decoding on workers.
        let regs = sample.regs_user.filter(|r| r.abi != 0)?;
        let stack = sample.stack_user.filter(|s| !s.is_empty())?;
        Some(UnwindJob {
            pid,
            regs,
            stack,
            callchain: sample.callchain,
        })
    }

    /// Walks every job in parallel; returns each one's user frames as lookup addresses, leaf
    /// first. Call it while `spaces` still describes the moment the samples were taken.
    pub fn run(
        &self,
        jobs: &[UnwindJob<'_>],
        spaces: &AddressSpaces,
        symbolizer: &Symbolizer,
    ) -> Vec<Vec<u64>> {
        let results: Vec<(Vec<u64>, String, UnwindEnd)> = jobs
            .par_chunks(256)
            .flat_map_iter(|chunk| {
                let mut modules = ProcessModules {
                    spaces,
                    symbolizer,
                    pid: chunk.first().map_or(0, |j| j.pid),
                    files: RefCell::default(),
                };
                chunk.iter().map(move |job| self.walk(job, &mut modules))
            })
            .collect();
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        results
            .into_iter()
            .map(|(lookups, module, end)| {
                report.add(module, &end);
                lookups
            })
            .collect()
    }

    /// One sample's walk: lookup addresses leaf first, the module it ended in, why it ended.
    fn walk(
        &self,
        job: &UnwindJob<'_>,
        modules: &mut ProcessModules<'_>,
    ) -> (Vec<u64>, String, UnwindEnd) {
        // Module ids are global, so cached images stay valid when the process changes.
        modules.pid = job.pid;
        let mut values = [0u64; 64];
        let count = job.regs.values.len().min(values.len());
        for (slot, value) in values.iter_mut().zip(job.regs.values.iter()) {
            *slot = value;
        }
        let worker = rayon::current_thread_index().unwrap_or(0);
        let unwinder = self.unwinders.get(worker).or(self.unwinders.first());
        let (Some(regs), Some(unwinder)) = (
            UserRegs::from_perf(self.arch, job.regs.mask, &values[..count]),
            unwinder,
        ) else {
            return (Vec::new(), "[unknown]".to_string(), UnwindEnd::DepthLimit);
        };
        let stack = StackBytes {
            start: regs.sp(),
            bytes: job.stack,
        };
        let walked = unwinder.unwind(self.arch, &regs, &stack, &*modules, MAX_FRAMES);
        let callchain: Vec<u64> = job
            .callchain
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        let walked = join_with_fp_chain(walked, &callchain, MAX_FRAMES);
        let spaces = modules.spaces;
        let last = walked.frames.last().map(|f| f.address());
        let module = match last.map(|a| spaces.locate(job.pid, Avma(a), false)) {
            Some(Location::Module { module, .. }) => spaces.module(module).path.to_string(),
            _ => "[unknown]".to_string(),
        };
        let lookups = walked
            .frames
            .iter()
            .map(|frame| match frame {
                FrameAddress::ReturnAddress(_) if self.call_site_lookup => frame.lookup_address(),
                _ => frame.address(),
            })
            .collect();
        (lookups, module, walked.end)
    }

    /// How the walks so far ended.
    pub fn report(&self) -> UnwindReport {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
