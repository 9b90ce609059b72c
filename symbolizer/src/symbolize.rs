//! The [`Symbolizer`]: module + offset → function names (and lines, inlined frames), with a
//! per-module report of what could not be resolved and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::cache::{Loaded, LoadedElf, ModuleCache, ModuleEntry};
use crate::debuginfo::{DebugInfo, find_debug_file};
use crate::elf::{ElfImage, Svma, build_ids_match, hex};
use crate::error::Error;
use crate::kallsyms::Kallsyms;
use crate::mapped::{MappedFile, SharedBytes, read_regular};
use crate::perfmap::{PerfMapRefusal, load_trusted};
use crate::process::{Module, ModuleKind, ModuleOffset};
pub use crate::report::{ModuleReport, Problem, Status, SymFrame, Symbolized};
use crate::section_cache::SectionCache;

/// Which symbol names an address's frames (see [`Symbolizer::symbol_key`]): equal for two
/// addresses of one module exactly when one symbol of one table covers both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymbolKey {
    table: SymbolTableKind,
    /// The symbol: its index in its table, where its PLT stub starts, or where its kallsyms
    /// name is.
    symbol: u64,
}

impl SymbolKey {
    fn new(table: SymbolTableKind, symbol: u64) -> Self {
        SymbolKey { table, symbol }
    }
}

/// The tables a [`SymbolKey`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SymbolTableKind {
    Plt,
    DebugFile,
    File,
    Kallsyms,
}

/// The symbol that names `svma` of `elf`: a PLT stub (named `function@plt`, never after the
/// symbol before it: a size-0 `_init` would otherwise reach over the whole PLT), else the
/// separate debug file's `.symtab`, else the file's own symbols.
fn elf_symbol(elf: &LoadedElf, svma: Svma) -> Option<SymbolKey> {
    if let Some(stub) = elf.image.plt.lookup(svma.0) {
        return Some(SymbolKey::new(SymbolTableKind::Plt, stub.start));
    }
    if let Some(index) = elf.debug_symbols.as_ref().and_then(|t| t.lookup(svma)) {
        return Some(SymbolKey::new(SymbolTableKind::DebugFile, index as u64));
    }
    let index = elf.image.symbols.lookup(svma)?;
    Some(SymbolKey::new(SymbolTableKind::File, index as u64))
}

/// The name of the symbol [`elf_symbol`] found (every index a table's lookup gives has one).
fn elf_symbol_name(elf: &LoadedElf, key: SymbolKey) -> Option<Arc<str>> {
    let index = usize::try_from(key.symbol).ok();
    match key.table {
        SymbolTableKind::Plt => elf
            .image
            .plt
            .lookup(key.symbol)
            .map(|e| Arc::clone(&e.name)),
        SymbolTableKind::DebugFile => elf.debug_symbols.as_ref()?.name(index?),
        SymbolTableKind::File => elf.image.symbols.name(index?),
        SymbolTableKind::Kallsyms => None,
    }
}

/// Largest kallsyms file we read: 256 MiB.
const MAX_KALLSYMS_SIZE: u64 = 256 << 20;

/// What the [`Symbolizer`] does. Build with `SymbolizerOptions::default()` and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SymbolizerOptions {
    /// Resolve `file:line` through DWARF. Default: `false` (symbol tables only, fast).
    pub lines: bool,
    /// Return inlined frames through DWARF. Default: `false`. Without `lines`, only DWARF in
    /// the module itself is read for this: separate debug files (distribution `-dbgsym`
    /// packages) are large and usually compressed, and reading one costs more than the rest of
    /// a typical profile, so they serve inline frames only when lines were asked for too.
    pub inline: bool,
    /// Demangle Rust and C++ names. Default: `true`.
    pub demangle: bool,
    /// A kallsyms file for kernel symbols, used whatever kernel made the recording. Default:
    /// `None`: perf's build-id cache for the recorded kernel, else `/proc/kallsyms` when
    /// [`Self::kernel_matches`].
    pub kallsyms: Option<PathBuf>,
    /// Whether the recording was made on the running kernel (the caller compares the
    /// recorded kernel build-id, or else osrelease, with the running kernel's). This machine's
    /// `/proc/kallsyms` and `[vdso]` are used only when true; [`Self::kallsyms`] and perf's
    /// build-id cache serve other kernels. Default: `false`.
    pub kernel_matches: bool,
    /// The recorded kernel's build-id (from the perf.data BUILD_ID feature). When perf's
    /// build-id cache holds that kernel's symbols (`~/.debug/[kernel.kallsyms]/ID/kallsyms`,
    /// saved by `perf record`), they are used instead of `/proc/kallsyms`, like `perf report`
    /// does: they describe the recording even after a reboot, and a regular file reads much
    /// faster than the kernel formats `/proc/kallsyms`. Default: `None`.
    pub kernel_build_id: Option<Vec<u8>>,
    /// The recording's kernel release, quoted in reports when `kernel_matches` is false.
    /// Default: `None`.
    pub recorded_osrelease: Option<String>,
    /// Directories holding separate debug files (`.build-id/` trees and debuglink
    /// mirrors). Used as given (not prefixed by `symfs`). Default: `["/usr/lib/debug"]`.
    pub debug_dirs: Vec<PathBuf>,
    /// A root prefixed to every path named in the recording, like perf's `--symfs`.
    /// Default: `None` (paths are opened as recorded).
    pub symfs: Option<PathBuf>,
    /// A directory for inflated copies of compressed debug sections, keyed by build-id (see
    /// `section_cache.rs`): with it, a compressed section is inflated whole once and read from
    /// its copy by later runs; the directory is kept under [`SECTION_CACHE_MAX_BYTES`].
    /// Default: `None` (sections are inflated on every run, only as far as lookups need).
    pub section_cache: Option<PathBuf>,
}

/// The most bytes [`SymbolizerOptions::section_cache`] holds: the oldest copies go first.
pub const SECTION_CACHE_MAX_BYTES: u64 = 1 << 30;

impl Default for SymbolizerOptions {
    fn default() -> Self {
        Self {
            lines: false,
            inline: false,
            demangle: true,
            kallsyms: None,
            kernel_matches: false,
            kernel_build_id: None,
            recorded_osrelease: None,
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
            symfs: None,
            section_cache: None,
        }
    }
}

/// Turns module offsets into frames. `Send + Sync`: call [`symbolize`](Self::symbolize) from
/// many threads; each module is loaded once, on its first use.
pub struct Symbolizer {
    options: SymbolizerOptions,
    section_cache: Option<SectionCache>,
    cache: ModuleCache,
    kallsyms: OnceLock<Result<Kallsyms, Problem>>,
    kernel_source: OnceLock<Option<PathBuf>>,
}

impl fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbolizer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn error_problem(e: &Error) -> Problem {
    if e.is_not_found() {
        Problem::FileNotFound
    } else {
        Problem::Unreadable(Arc::from(e.to_string()))
    }
}

fn unresolved(module: &Module, offset: ModuleOffset, problem: Problem) -> Symbolized {
    Symbolized {
        frames: vec![SymFrame {
            function: Arc::from(format!("{}+{:#x}", module.basename(), offset.0)),
            file: None,
            line: None,
            inlined: false,
        }],
        status: Status::Unresolved(problem),
    }
}

fn resolved_one(function: Arc<str>) -> Symbolized {
    Symbolized {
        frames: vec![SymFrame {
            function,
            file: None,
            line: None,
            inlined: false,
        }],
        status: Status::Resolved,
    }
}

/// Reads this process's own `[vdso]` image through `/proc/self/maps` and `/proc/self/mem`.
pub(crate) fn read_own_vdso() -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    let line = maps
        .lines()
        .find(|l| l.ends_with("[vdso]"))
        .ok_or_else(|| "no [vdso] in /proc/self/maps".to_string())?;
    let range = line.split(' ').next().unwrap_or_default();
    let (start, end) = range.split_once('-').ok_or("bad maps line")?;
    let start = u64::from_str_radix(start, 16).map_err(|e| e.to_string())?;
    let end = u64::from_str_radix(end, 16).map_err(|e| e.to_string())?;
    let len = end
        .checked_sub(start)
        .filter(|&l| l <= 1 << 20)
        .ok_or("bad vdso size")?;
    let mut mem = std::fs::File::open("/proc/self/mem").map_err(|e| e.to_string())?;
    mem.seek(SeekFrom::Start(start))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
    mem.read_exact(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

impl Symbolizer {
    /// A symbolizer; nothing is read until the first [`symbolize`](Self::symbolize).
    pub fn new(options: SymbolizerOptions) -> Self {
        Self {
            section_cache: options
                .section_cache
                .clone()
                .map(|dir| SectionCache::new(dir, SECTION_CACHE_MAX_BYTES)),
            options,
            cache: ModuleCache::default(),
            kallsyms: OnceLock::new(),
            kernel_source: OnceLock::new(),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &SymbolizerOptions {
        &self.options
    }

    fn host_path(&self, recorded: &str) -> PathBuf {
        // A file deleted (or replaced) after it was mapped: try the path anyway; the build-id
        // check catches a replacement when the recording has build-ids.
        let recorded = recorded.strip_suffix(" (deleted)").unwrap_or(recorded);
        match &self.options.symfs {
            Some(root) => root.join(recorded.trim_start_matches('/')),
            None => PathBuf::from(recorded),
        }
    }

    /// The ELF image this symbolizer reads `module` from — the file on disk, perf's build-id
    /// cache, or this machine's vdso — loading it on first use; `None` for other kinds of
    /// module or when no matching file can be had. The DWARF unwinder reads CFI from it.
    pub fn elf_bytes(&self, module: &Module) -> Option<SharedBytes> {
        if !matches!(module.kind, ModuleKind::Elf | ModuleKind::Vdso) {
            return None;
        }
        let entry = self.cache.entry(module);
        match entry.loaded.get_or_init(|| self.load_elf(&entry, module)) {
            Loaded::Elf(elf) => Some(elf.image.bytes.clone()),
            _ => None,
        }
    }

    /// Symbolizes `offset` (from [`crate::AddressSpaces::locate`]) in `module`.
    pub fn symbolize(&self, module: &Module, offset: ModuleOffset) -> Symbolized {
        let entry = self.cache.entry(module);
        let result = match module.kind {
            ModuleKind::Elf | ModuleKind::Vdso => self.symbolize_elf(&entry, module, offset),
            ModuleKind::Kernel | ModuleKind::KernelModule => self.symbolize_kernel(module, offset),
            ModuleKind::Jit => self.symbolize_jit(&entry, module, offset),
            ModuleKind::Unknown => unresolved(module, offset, Problem::NoSymbols),
        };
        match &result.status {
            Status::Resolved => entry.count_resolved(),
            Status::Unresolved(p) => {
                entry.count_unresolved();
                entry.note(p);
            }
        }
        result
    }

    /// The symbol whose name alone makes the frames that [`symbolize`](Self::symbolize) gives
    /// `offset` of `module`, or `None` when they may depend on the address itself (no symbol
    /// covers it, DWARF gives its inline frames or lines, a JIT map, no symbols at all). Two
    /// offsets of one module with equal keys symbolize to the same frames, so a caller can
    /// symbolize one and count the others with [`count_resolved`](Self::count_resolved).
    /// Counts nothing itself.
    pub fn symbol_key(&self, module: &Module, offset: ModuleOffset) -> Option<SymbolKey> {
        if self.options.lines {
            return None;
        }
        match module.kind {
            ModuleKind::Elf | ModuleKind::Vdso => {
                let entry = self.cache.entry(module);
                let Loaded::Elf(elf) = entry.loaded.get_or_init(|| self.load_elf(&entry, module))
                else {
                    return None;
                };
                // As `symbolize_elf` decides: DWARF is read only for an address inside the
                // segments, and where it gives inline frames they follow the address.
                let svma = elf.image.svma_of_offset(offset.0)?;
                if self.options.inline && self.dwarf(&entry, elf).is_some() {
                    return None;
                }
                elf_symbol(elf, svma)
            }
            ModuleKind::Kernel | ModuleKind::KernelModule => {
                self.kernel_symbol_source()?;
                let kallsyms = self.kallsyms().as_ref().ok()?;
                let at = kallsyms.symbol_key(offset.0)?;
                Some(SymbolKey::new(SymbolTableKind::Kallsyms, u64::from(at)))
            }
            ModuleKind::Jit | ModuleKind::Unknown => None,
        }
    }

    /// Counts `addresses` more addresses of `module` as resolved in the
    /// [`report`](Self::report): addresses a caller gave the frames of another with the same
    /// [`symbol_key`](Self::symbol_key) instead of symbolizing each.
    pub fn count_resolved(&self, module: &Module, addresses: u64) {
        self.cache.entry(module).count_resolved_many(addresses);
    }

    /// Reads and parses the ELF file of `module` and its symbol tables now, instead of on its
    /// first address (nothing for other kinds of module). A caller that knows which modules it
    /// will symbolize can load them side by side: threads that meet one module at once would
    /// all wait for the one loading it.
    pub fn preload(&self, module: &Module) {
        if matches!(module.kind, ModuleKind::Elf | ModuleKind::Vdso) {
            let entry = self.cache.entry(module);
            entry.loaded.get_or_init(|| self.load_elf(&entry, module));
        }
    }

    /// Reads and parses kallsyms now instead of on the first kernel address.
    ///
    /// Reading `/proc/kallsyms` costs tens of milliseconds of kernel time; a caller that knows
    /// the recording has kernel samples can call this on another thread while it reads the
    /// recording. Does nothing unless [`SymbolizerOptions::kernel_matches`] is set.
    pub fn preload_kernel_symbols(&self) {
        if self.kernel_symbol_source().is_some() {
            let _ = self.kallsyms();
        }
    }

    /// Where kernel symbols come from: an explicit file, perf's build-id cache for the recorded
    /// kernel, or `/proc/kallsyms` when the recording's kernel is the running one.
    fn kernel_symbol_source(&self) -> Option<PathBuf> {
        self.kernel_source
            .get_or_init(|| self.find_kernel_symbol_source())
            .clone()
    }

    fn find_kernel_symbol_source(&self) -> Option<PathBuf> {
        if let Some(path) = &self.options.kallsyms {
            return Some(path.clone());
        }
        if let Some(id) = &self.options.kernel_build_id {
            let cached = std::env::var_os("HOME").map(|home| {
                PathBuf::from(home)
                    .join(".debug/[kernel.kallsyms]")
                    .join(hex(id))
                    .join("kallsyms")
            });
            if let Some(path) = cached.filter(|p| p.is_file()) {
                return Some(path);
            }
        }
        self.options
            .kernel_matches
            .then(|| PathBuf::from("/proc/kallsyms"))
    }

    /// Per-module counts and problems of everything symbolized so far, sorted by path.
    pub fn report(&self) -> Vec<ModuleReport> {
        self.cache.reports()
    }

    fn kallsyms(&self) -> &Result<Kallsyms, Problem> {
        self.kallsyms.get_or_init(|| {
            let path = self
                .kernel_symbol_source()
                .unwrap_or_else(|| PathBuf::from("/proc/kallsyms"));
            // A saved copy (the build-id cache) is mapped; /proc/kallsyms has no size to map.
            let text = match MappedFile::open(&path) {
                Ok(mapped) => SharedBytes::new(Arc::new(mapped)),
                Err(_) => read_regular(&path, MAX_KALLSYMS_SIZE)
                    .map(SharedBytes::from_vec)
                    .map_err(|e| Problem::KallsymsUnreadable(Arc::from(e.to_string())))?,
            };
            let k = Kallsyms::parse_shared(text);
            if k.addresses_hidden() {
                Err(Problem::KptrRestrict)
            } else {
                Ok(k)
            }
        })
    }

    fn other_kernel(&self) -> Problem {
        Problem::OtherKernel {
            osrelease: self.options.recorded_osrelease.as_deref().map(Arc::from),
        }
    }

    fn symbolize_kernel(&self, module: &Module, offset: ModuleOffset) -> Symbolized {
        if self.kernel_symbol_source().is_none() {
            return unresolved(module, offset, self.other_kernel());
        }
        match self.kallsyms() {
            Ok(k) => match k.lookup(offset.0) {
                Some(name) => resolved_one(name),
                None => unresolved(module, offset, Problem::NoSymbol),
            },
            Err(p) => unresolved(module, offset, p.clone()),
        }
    }

    fn symbolize_jit(
        &self,
        entry: &ModuleEntry,
        module: &Module,
        offset: ModuleOffset,
    ) -> Symbolized {
        let loaded = entry.loaded.get_or_init(|| {
            let Some(pid) = module.pid else {
                return Loaded::Failed(Problem::NoPerfMap);
            };
            match load_trusted(Path::new(&format!("/tmp/perf-{pid}.map"))) {
                Ok(map) => Loaded::PerfMap(map),
                Err(PerfMapRefusal::Missing) => Loaded::Failed(Problem::NoPerfMap),
                Err(PerfMapRefusal::Untrusted) => Loaded::Failed(Problem::UntrustedPerfMap),
                Err(PerfMapRefusal::Unreadable(e)) => {
                    Loaded::Failed(Problem::Unreadable(Arc::from(e)))
                }
            }
        });
        match loaded {
            Loaded::PerfMap(map) => match map.lookup(offset.0) {
                Some(name) => resolved_one(name),
                None => unresolved(module, offset, Problem::NoSymbol),
            },
            Loaded::Failed(p) => unresolved(module, offset, p.clone()),
            Loaded::Elf(_) => unresolved(module, offset, Problem::NoSymbols),
        }
    }

    /// The binary with `module`'s build-id from perf's build-id cache
    /// (`~/.debug/.build-id/xx/rest/elf`, filled by `perf record`), when it is there.
    fn build_id_cache_file(&self, module: &Module) -> Option<(SharedBytes, Option<PathBuf>)> {
        let build_id = module.build_id.as_deref()?;
        // perf pads 20-byte SHA-1 build-ids with zeros in some records.
        let trimmed = match build_id.split_at_checked(20) {
            Some((id, padding)) if padding.iter().all(|&b| b == 0) => id,
            _ => build_id,
        };
        let hex_id = hex(trimmed);
        if hex_id.len() < 3 {
            return None;
        }
        let home = std::env::var_os("HOME")?;
        let path = PathBuf::from(home)
            .join(".debug/.build-id")
            .join(&hex_id[..2])
            .join(&hex_id[2..])
            .join("elf");
        let mapped = MappedFile::open(&path).ok()?;
        let bytes = SharedBytes::new(Arc::new(mapped));
        let found = crate::elf::build_id_of(&bytes)?;
        build_ids_match(build_id, &found).then_some((bytes, Some(path)))
    }

    fn load_elf(&self, entry: &ModuleEntry, module: &Module) -> Loaded {
        let (bytes, host_path) = if module.kind == ModuleKind::Vdso {
            if !self.options.kernel_matches {
                return Loaded::Failed(self.other_kernel());
            }
            match read_own_vdso() {
                Ok(v) => (SharedBytes::from_vec(v), None),
                Err(e) => return Loaded::Failed(Problem::Unreadable(Arc::from(e))),
            }
        } else {
            let path = self.host_path(&module.path);
            match MappedFile::open(&path) {
                Ok(m) => (SharedBytes::new(Arc::new(m)), Some(path)),
                Err(e) => match self.build_id_cache_file(module) {
                    Some(found) => found,
                    None => return Loaded::Failed(error_problem(&e)),
                },
            }
        };
        let mut image = match ElfImage::parse(bytes, self.options.demangle) {
            Ok(i) => i,
            Err(e) => return Loaded::Failed(Problem::ParseFailed(Arc::from(e))),
        };
        let mut host_path = host_path;
        if let (Some(recorded), Some(found)) = (module.build_id.as_deref(), image.build_id.clone())
        {
            if !build_ids_match(recorded, &found) {
                // The file changed since the recording; perf's build-id cache may still
                // hold the binary that ran.
                match self.build_id_cache_file(module).and_then(|(bytes, path)| {
                    Some((ElfImage::parse(bytes, self.options.demangle).ok()?, path))
                }) {
                    Some((cached, path)) => {
                        image = cached;
                        host_path = path;
                    }
                    None => {
                        return Loaded::Failed(Problem::BuildIdMismatch {
                            recorded: Arc::from(hex(recorded)),
                            found: Arc::from(hex(&found)),
                        });
                    }
                }
            }
        }
        let wants_dwarf = self.options.lines || self.options.inline;
        let needs_debug_file = !image.has_symtab || (wants_dwarf && !image.has_dwarf);
        let debug_file = match (&host_path, needs_debug_file) {
            (Some(path), true) => find_debug_file(path, &image, &self.options.debug_dirs),
            _ => None,
        };
        let mut debug_symbols = None;
        if !image.has_symtab {
            if let Some(Ok((table, true))) = debug_file
                .as_ref()
                .map(|d| ElfImage::symbols_only(d.clone(), self.options.demangle))
            {
                debug_symbols = Some(table);
            }
        }
        let stripped = !image.has_symtab && debug_symbols.is_none();
        if stripped {
            entry.note(&Problem::Stripped);
        }
        Loaded::Elf(Box::new(LoadedElf {
            image,
            debug_symbols,
            debug_file,
            stripped,
        }))
    }

    fn dwarf<'a>(&self, entry: &'a ModuleEntry, elf: &LoadedElf) -> Option<&'a DebugInfo> {
        entry
            .dwarf
            .get_or_init(|| {
                let skipped = !elf.image.has_dwarf && !self.options.lines;
                let cache = self.section_cache.as_ref();
                let info = if elf.image.has_dwarf {
                    DebugInfo::load(&elf.image.bytes, cache)
                } else if !skipped {
                    elf.debug_file
                        .as_ref()
                        .and_then(|file| DebugInfo::load(file, cache))
                } else {
                    None
                };
                if info.is_none() && !skipped {
                    entry.note(&Problem::NoDebugInfo);
                }
                info
            })
            .as_ref()
    }

    fn symbolize_elf(
        &self,
        entry: &ModuleEntry,
        module: &Module,
        offset: ModuleOffset,
    ) -> Symbolized {
        let loaded = entry.loaded.get_or_init(|| self.load_elf(entry, module));
        let elf = match loaded {
            Loaded::Elf(elf) => elf,
            Loaded::Failed(p) => return unresolved(module, offset, p.clone()),
            Loaded::PerfMap(_) => return unresolved(module, offset, Problem::NoSymbols),
        };
        let Some(svma) = elf.image.svma_of_offset(offset.0) else {
            return unresolved(module, offset, Problem::OutsideSegments);
        };
        let demangle = self.options.demangle;
        let symbol_name = elf_symbol(elf, svma).and_then(|key| elf_symbol_name(elf, key));
        let wants_dwarf = self.options.lines || self.options.inline;
        let dwarf_frames = if wants_dwarf {
            self.dwarf(entry, elf)
                .map(|d| d.frames(svma, demangle))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // One rule for every command, inline frames or not: the symbol tables name a function,
        // and DWARF names it when they cannot (a corrupt or incomplete .symtab).
        let Some(outer_name) = symbol_name
            .or_else(|| dwarf_frames.last().and_then(|f| f.function.clone()))
            .or_else(|| {
                if wants_dwarf {
                    return None;
                }
                let frames = self.dwarf(entry, elf)?.frames(svma, demangle);
                frames.last()?.function.clone()
            })
        else {
            let problem = if elf.stripped {
                Problem::Stripped
            } else {
                Problem::NoSymbol
            };
            return unresolved(module, offset, problem);
        };
        if dwarf_frames.is_empty() {
            return resolved_one(outer_name);
        }
        let (file, line) = if self.options.lines {
            dwarf_frames
                .first()
                .map(|f| (f.file.clone(), f.line))
                .unwrap_or_default()
        } else {
            (None, None)
        };
        if !self.options.inline || dwarf_frames.len() == 1 {
            return Symbolized {
                frames: vec![SymFrame {
                    function: outer_name,
                    file,
                    line,
                    inlined: false,
                }],
                status: Status::Resolved,
            };
        }
        let last = dwarf_frames.len() - 1;
        let frames = dwarf_frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let function = if i == last {
                    Arc::clone(&outer_name)
                } else {
                    f.function.unwrap_or_else(|| Arc::from("[inlined]"))
                };
                let (file, line) = if self.options.lines {
                    (f.file, f.line)
                } else {
                    (None, None)
                };
                SymFrame {
                    function,
                    file,
                    line,
                    inlined: i != last,
                }
            })
            .collect();
        Symbolized {
            frames,
            status: Status::Resolved,
        }
    }
}
