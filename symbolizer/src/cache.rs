//! Per-module symbolization state: loaded lazily once (even under parallel callers) and
//! counted for the report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::debuginfo::DebugInfo;
use crate::elf::{ElfImage, SymbolTable};
use crate::mapped::SharedBytes;
use crate::perfmap::PerfMap;
use crate::process::{Module, ModuleKind};
use crate::symbolize::{ModuleReport, Problem};

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

/// A module's entry, borrowed from the module's slot or held by reference count.
pub(crate) enum EntryRef<'a> {
    /// Found in the module's own slot: no atomics written.
    Slot(&'a ModuleEntry),
    /// Found in (or added to) the shared map.
    Shared(Arc<ModuleEntry>),
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = ModuleEntry;
    fn deref(&self) -> &ModuleEntry {
        match self {
            Self::Slot(e) => e,
            Self::Shared(e) => e,
        }
    }
}

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// All module entries, keyed by [`Module`]'s process-unique cache key.
#[derive(Debug)]
pub(crate) struct ModuleCache {
    id: u64,
    entries: RwLock<HashMap<u64, Arc<ModuleEntry>, BuildIntHasher>>,
}

impl Default for ModuleCache {
    fn default() -> Self {
        Self {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            entries: RwLock::default(),
        }
    }
}

impl ModuleCache {
    /// The entry of `module`, created on first use. The hot path is one atomic load: the
    /// module's slot remembers the entry for the first cache that used it.
    pub(crate) fn entry<'m>(&self, module: &'m Module) -> EntryRef<'m> {
        if let Some((id, entry)) = module.symbolizer_slot.get() {
            if *id == self.id {
                return EntryRef::Slot(entry);
            }
        }
        let shared = self.shared_entry(module);
        if module
            .symbolizer_slot
            .set((self.id, Arc::clone(&shared)))
            .is_ok()
        {
            if let Some((_, entry)) = module.symbolizer_slot.get() {
                return EntryRef::Slot(entry);
            }
        }
        EntryRef::Shared(shared)
    }

    fn shared_entry(&self, module: &Module) -> Arc<ModuleEntry> {
        if let Ok(map) = self.entries.read() {
            if let Some(e) = map.get(&module.cache_key) {
                return Arc::clone(e);
            }
        }
        match self.entries.write() {
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
        let mut out: Vec<ModuleReport> = match self.entries.read() {
            Ok(map) => map.values().map(|e| e.report()).collect(),
            Err(_) => Vec::new(),
        };
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}

/// A multiplicative hasher for integer keys (pids, cache keys): much cheaper than SipHash on
/// the per-frame path, and the keys are not attacker-chosen strings.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// `BuildHasher` for [`IntHasher`].
pub(crate) type BuildIntHasher = std::hash::BuildHasherDefault<IntHasher>;
