//! Per-module symbolization state: loaded lazily once (even under parallel callers) and
//! counted for the report.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustc_hash::FxHashMap as HashMap;

use crate::debuginfo::DebugInfo;
use crate::elf::{ElfImage, SymbolTable};
use crate::mapped::SharedBytes;
use crate::perfmap::PerfMap;
use crate::process::{Module, ModuleKind};
use crate::report::{ModuleReport, Problem};

/// An ELF file (or the vdso image) ready for lookups.
#[derive(Debug)]
pub(crate) struct LoadedElf {
    pub(crate) image: ElfImage,
    /// `.symtab` of a separate debug file, used when the file itself is stripped.
    pub(crate) debug_symbols: Option<SymbolTable>,
    /// The separate debug file, when one was found.
    pub(crate) debug_file: Option<SharedBytes>,
    /// True when neither the file nor its debug file has `.symtab`.
    pub(crate) stripped: bool,
}

/// What a module's first use loaded.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// An ELF image.
    Elf(Box<LoadedElf>),
    /// A JIT perf map.
    PerfMap(PerfMap),
    /// Nothing usable; every address in the module is unresolved for this reason.
    Failed(Problem),
}

/// State of one module.
#[derive(Debug)]
pub(crate) struct ModuleEntry {
    pub(crate) path: Arc<str>,
    pub(crate) kind: ModuleKind,
    pub(crate) build_id: Option<Vec<u8>>,
    pub(crate) loaded: OnceLock<Loaded>,
    pub(crate) dwarf: OnceLock<Option<DebugInfo>>,
    resolved: AtomicU64,
    unresolved: AtomicU64,
    seen_bits: AtomicU32,
    problems: Mutex<Vec<Problem>>,
}

impl ModuleEntry {
    fn new(module: &Module) -> Self {
        Self {
            path: Arc::clone(&module.path),
            kind: module.kind,
            build_id: module.build_id.clone(),
            loaded: OnceLock::new(),
            dwarf: OnceLock::new(),
            resolved: AtomicU64::new(0),
            unresolved: AtomicU64::new(0),
            seen_bits: AtomicU32::new(0),
            problems: Mutex::new(Vec::new()),
        }
    }

    /// Counts a resolved address.
    pub(crate) fn count_resolved(&self) {
        self.resolved.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `addresses` resolved addresses.
    pub(crate) fn count_resolved_many(&self, addresses: u64) {
        self.resolved.fetch_add(addresses, Ordering::Relaxed);
    }

    /// Counts an unresolved address.
    pub(crate) fn count_unresolved(&self) {
        self.unresolved.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes a problem for the report (each kind once; lock-free after the first time).
    pub(crate) fn note(&self, problem: &Problem) {
        let bit = 1u32 << (problem.code() % 32);
        if self.seen_bits.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            if let Ok(mut list) = self.problems.lock() {
                list.push(problem.clone());
            }
        }
    }

    fn report(&self) -> ModuleReport {
        ModuleReport {
            path: Arc::clone(&self.path),
            kind: self.kind,
            build_id: self.build_id.clone(),
            resolved: self.resolved.load(Ordering::Relaxed),
            unresolved: self.unresolved.load(Ordering::Relaxed),
            problems: self.problems.lock().map(|l| l.clone()).unwrap_or_default(),
        }
    }
}

/// A module's entry, borrowed from the symbolizer's table or held by reference count.
pub(crate) enum EntryRef<'a> {
    /// Found in the dense table: no atomics written.
    Dense(&'a ModuleEntry),
    /// Found in (or added to) the map of larger keys.
    Sparse(Arc<ModuleEntry>),
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = ModuleEntry;
    fn deref(&self) -> &ModuleEntry {
        match self {
            Self::Dense(e) => e,
            Self::Sparse(e) => e,
        }
    }
}

/// Slots per chunk of the dense table.
const CHUNK_SLOTS: usize = 256;
/// Chunks of the dense table: keys below `CHUNKS * CHUNK_SLOTS` (a million modules, far more
/// than a recording maps) are found with two atomic loads.
const CHUNKS: usize = 4096;

/// One chunk of the dense table.
type Chunk = Box<[OnceLock<Arc<ModuleEntry>>]>;

/// The symbolizer's state of every module it has seen, keyed by [`Module`]'s program-unique
/// cache key (a counter, so keys are dense). Owned by the `Symbolizer`, not by the module.
///
/// Hand-written rather than a concurrent map crate: lookups run once per symbolized address
/// from many threads, and with dense keys a chunked table of `OnceLock`s answers without a
/// lock or a hash; a chunk is allocated on the first key that falls in it.
pub(crate) struct ModuleCache {
    dense: Box<[OnceLock<Chunk>]>,
    sparse: RwLock<HashMap<u64, Arc<ModuleEntry>>>,
}

impl std::fmt::Debug for ModuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleCache").finish_non_exhaustive()
    }
}

impl Default for ModuleCache {
    fn default() -> Self {
        Self {
            dense: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            sparse: RwLock::default(),
        }
    }
}

impl ModuleCache {
    /// The entry of `module`, created on first use (once, even under parallel callers).
    pub(crate) fn entry(&self, module: &Module) -> EntryRef<'_> {
        let key = module.cache_key;
        let slot = usize::try_from(key).ok().and_then(|key| {
            let chunk = self.dense.get(key / CHUNK_SLOTS)?;
            let chunk = chunk.get_or_init(|| (0..CHUNK_SLOTS).map(|_| OnceLock::new()).collect());
            chunk.get(key % CHUNK_SLOTS)
        });
        match slot {
            Some(slot) => EntryRef::Dense(slot.get_or_init(|| Arc::new(ModuleEntry::new(module)))),
            None => EntryRef::Sparse(self.sparse_entry(module)),
        }
    }

    fn sparse_entry(&self, module: &Module) -> Arc<ModuleEntry> {
        if let Ok(map) = self.sparse.read() {
            if let Some(e) = map.get(&module.cache_key) {
                return Arc::clone(e);
            }
        }
        match self.sparse.write() {
            Ok(mut map) => Arc::clone(
                map.entry(module.cache_key)
                    .or_insert_with(|| Arc::new(ModuleEntry::new(module))),
            ),
            // A poisoned lock (a panic elsewhere): work uncached rather than fail.
            Err(_) => Arc::new(ModuleEntry::new(module)),
        }
    }

    /// Reports of all modules used so far, sorted by path.
    pub(crate) fn reports(&self) -> Vec<ModuleReport> {
        let mut out: Vec<ModuleReport> = self
            .dense
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|chunk| chunk.iter().filter_map(OnceLock::get))
            .map(|e| e.report())
            .collect();
        if let Ok(map) = self.sparse.read() {
            out.extend(map.values().map(|e| e.report()));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}
