//! Address spaces: replays MMAP/COMM/FORK/EXIT side-band records into per-process mapping tables.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap as HashMap;

/// An actual virtual memory address in the recorded process (or in the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Avma(pub u64);

/// An address relative to a module, as [`crate::Symbolizer::symbolize`] expects it.
///
/// For ELF files (and `[vdso]`) it is a file offset; for the kernel, kernel modules and
/// anonymous/JIT mappings it is the absolute address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleOffset(pub u64);

/// Index of a module in an [`AddressSpaces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleId(pub u32);

/// What kind of object a mapping refers to; decides how offsets are computed and symbolized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModuleKind {
    /// A file on disk, expected to be ELF.
    Elf,
    /// The kernel image (`[kernel.kallsyms]`).
    Kernel,
    /// A kernel module (`[name]` or a `.ko` path in the kernel address space).
    KernelModule,
    /// The virtual dynamic shared object `[vdso]`.
    Vdso,
    /// Anonymous memory (`//anon`, `[anon:..]`, `/memfd:`), symbolized from `/tmp/perf-PID.map`.
    Jit,
    /// Anything else (`[stack]`, `[heap]`, `[vsyscall]`, ...).
    Unknown,
}

/// One mapped object, shared by every process mapping it.
#[derive(Clone)]
pub struct Module {
    /// The path recorded in the mmap record.
    pub path: Arc<str>,
    /// The build-id recorded for it, if any.
    pub build_id: Option<Vec<u8>>,
    /// How to treat it.
    pub kind: ModuleKind,
    /// The process whose perf map symbolizes it (only for [`ModuleKind::Jit`]).
    pub pid: Option<u32>,
    /// A key unique among all modules created in this program, counted up from 1: each
    /// [`crate::Symbolizer`] keeps its state of the module under it.
    pub(crate) cache_key: u64,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.path)
            .field("build_id", &self.build_id)
            .field("kind", &self.kind)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Module {
    /// A module not taken from an [`AddressSpaces`] (live symbolization, tests). Each call
    /// makes a distinct module with its own cache entry in a [`crate::Symbolizer`].
    pub fn new(path: &str, build_id: Option<&[u8]>, kind: ModuleKind, pid: Option<u32>) -> Self {
        Self {
            path: Arc::from(path),
            build_id: build_id.map(<[u8]>::to_vec),
            kind,
            pid,
            cache_key: NEXT_CACHE_KEY.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The name used in unresolved frames like `libfoo.so+0x1a2b`: the last path component
    /// of files, `[kernel.kallsyms]` for the kernel, the recorded name of anything else.
    pub fn basename(&self) -> &str {
        match self.kind {
            ModuleKind::Kernel => return "[kernel.kallsyms]",
            ModuleKind::Elf | ModuleKind::KernelModule => {}
            _ => return &self.path,
        }
        let trimmed = self.path.trim_end_matches('/');
        trimmed
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.path)
    }
}

/// Where an address points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Inside a mapped module.
    Module {
        /// The module.
        module: ModuleId,
        /// The address relative to it.
        offset: ModuleOffset,
    },
    /// No mapping covers the address.
    Unmapped(Avma),
}

/// A mapping being added, decoded by the caller from an MMAP or MMAP2 record.
#[derive(Debug, Clone, Copy)]
pub struct MappingInfo<'a> {
    /// First mapped address.
    pub start: Avma,
    /// Length in bytes.
    pub len: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    /// The mapped file's path (or pseudo-name like `[vdso]`).
    pub path: &'a [u8],
    /// The build-id, when the record carries one.
    pub build_id: Option<&'a [u8]>,
    /// True for the kernel address space (pid -1 or kernel cpumode).
    pub kernel: bool,
}

impl<'a> MappingInfo<'a> {
    /// A user-space mapping of `path` with no build-id (as `/proc/PID/maps` lists one): `len`
    /// bytes at `start`, from file offset `pgoff`.
    pub fn user(start: Avma, len: u64, pgoff: u64, path: &'a [u8]) -> MappingInfo<'a> {
        MappingInfo {
            start,
            len,
            pgoff,
            path,
            build_id: None,
            kernel: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    start: u64,
    end: u64,
    pgoff: u64,
    module: ModuleId,
    absolute: bool,
}

/// Sorted, non-overlapping mappings of one address space.
#[derive(Debug, Clone, Default)]
struct MapSet {
    maps: Vec<Mapping>,
}

impl MapSet {
    fn insert(&mut self, new: Mapping) {
        let first = self.maps.partition_point(|m| m.end <= new.start);
        let last = self.maps.partition_point(|m| m.start < new.end);
        let mut replacement = Vec::with_capacity(3);
        if let (Some(head), Some(tail)) = (
            self.maps.get(first),
            last.checked_sub(1).and_then(|i| self.maps.get(i)),
        ) {
            if first < last {
                if head.start < new.start {
                    replacement.push(Mapping {
                        end: new.start,
                        ..*head
                    });
                }
                replacement.push(new);
                if tail.end > new.end {
                    let cut = new.end - tail.start;
                    replacement.push(Mapping {
                        start: new.end,
                        pgoff: tail.pgoff.wrapping_add(cut),
                        ..*tail
                    });
                }
            }
        }
        if replacement.is_empty() {
            replacement.push(new);
        }
        let last = last.max(first);
        self.maps.splice(first..last, replacement);
    }

    fn find(&self, addr: u64) -> Option<&Mapping> {
        let i = self
            .maps
            .partition_point(|m| m.start <= addr)
            .checked_sub(1)?;
        self.maps.get(i).filter(|m| addr < m.end)
    }
}

#[derive(Debug, Clone, Default)]
struct Process {
    maps: MapSet,
    name: Option<String>,
    threads: HashMap<u32, String>,
    /// An exec happened; the next mapping starts a fresh address space.
    exec_pending: bool,
    /// The image an exec replaced, while the exec may still be under way. The kernel maps the
    /// new image and only then points the registers at its entry, so a sample taken inside
    /// `execve` has its user frame in the old image; addresses the new maps lack are looked
    /// up here until [`AddressSpaces::exec_returned`].
    replaced: Option<MapSet>,
}

/// What makes two mappings the same module: path, build-id, JIT pid, kernel space.
type InternKey = (Arc<str>, Option<Vec<u8>>, Option<u32>, bool);

static NEXT_CACHE_KEY: AtomicU64 = AtomicU64::new(1);

/// All address spaces of a recording: one per process plus the kernel's.
///
/// Feed it the side-band records in time order, then [`locate`](Self::locate) sample addresses.
/// `Clone` so a caller can share a snapshot (behind an `Arc`) while it moves on.
#[derive(Debug, Default, Clone)]
pub struct AddressSpaces {
    modules: Vec<Module>,
    interned: HashMap<InternKey, ModuleId>,
    processes: HashMap<u32, Process>,
    kernel: MapSet,
    /// The `[kernel.kallsyms]` module, which also takes kernel addresses no mapping covers
    /// (BPF programs, trampolines): kallsyms knows those too.
    kernel_image: Option<ModuleId>,
}

fn classify(path: &str, kernel: bool) -> ModuleKind {
    if kernel {
        if path.starts_with("[kernel.kallsyms]") || path.starts_with("[guest.kernel.kallsyms") {
            ModuleKind::Kernel
        } else {
            ModuleKind::KernelModule
        }
    } else if path == "[vdso]" {
        ModuleKind::Vdso
    } else if path.is_empty()
        || path.starts_with("//anon")
        || path.starts_with("[anon:")
        || path.starts_with("/memfd:")
        || path.starts_with("/anon_hugepage")
        || path.starts_with("/dev/zero")
    {
        ModuleKind::Jit
    } else if path.starts_with('[') {
        ModuleKind::Unknown
    } else {
        ModuleKind::Elf
    }
}

impl AddressSpaces {
    /// Empty address spaces.
    pub fn new() -> Self {
        Self::default()
    }

    fn intern(&mut self, path: &[u8], build_id: Option<&[u8]>, kernel: bool, pid: u32) -> ModuleId {
        let path_str = String::from_utf8_lossy(path);
        let kind = classify(&path_str, kernel);
        let jit_pid = (kind == ModuleKind::Jit).then_some(pid);
        let path: Arc<str> = Arc::from(path_str.as_ref());
        let build_id = build_id.filter(|b| !b.is_empty()).map(<[u8]>::to_vec);
        let key = (Arc::clone(&path), build_id.clone(), jit_pid, kernel);
        if let Some(&id) = self.interned.get(&key) {
            return id;
        }
        let id = ModuleId(u32::try_from(self.modules.len()).unwrap_or(u32::MAX));
        let mut module = Module::new("", None, kind, jit_pid);
        module.path = path;
        module.build_id = build_id;
        self.modules.push(module);
        self.interned.insert(key, id);
        if kind == ModuleKind::Kernel && self.kernel_image.is_none() {
            self.kernel_image = Some(id);
        }
        id
    }

    /// Adds a mapping; it replaces the overlapping parts of older mappings, like the kernel does.
    pub fn mmap(&mut self, pid: u32, m: MappingInfo<'_>) {
        if m.len == 0 {
            return;
        }
        let module = self.intern(m.path, m.build_id, m.kernel, pid);
        let kind = self
            .modules
            .get(module.0 as usize)
            .map_or(ModuleKind::Unknown, |md| md.kind);
        let mapping = Mapping {
            start: m.start.0,
            end: m.start.0.saturating_add(m.len),
            pgoff: m.pgoff,
            module,
            absolute: matches!(
                kind,
                ModuleKind::Kernel | ModuleKind::KernelModule | ModuleKind::Jit
            ),
        };
        if m.kernel {
            self.kernel.insert(mapping);
        } else {
            let process = self.processes.entry(pid).or_default();
            if std::mem::take(&mut process.exec_pending) {
                process.replaced = Some(std::mem::take(&mut process.maps));
            }
            process.maps.insert(mapping);
        }
    }

    /// Records a thread's name; `exec` (a COMM record with the exec flag) starts a fresh
    /// address space for `pid` with its first new mapping. The old one still answers for the
    /// addresses the new one lacks until [`exec_returned`](Self::exec_returned): samples taken
    /// inside `execve` have the old image's user registers, and perf names their frames from
    /// it too.
    pub fn comm(&mut self, pid: u32, tid: u32, name: &[u8], exec: bool) {
        let process = self.processes.entry(pid).or_default();
        let name = String::from_utf8_lossy(name).into_owned();
        if exec {
            process.exec_pending = true;
            process.threads.clear();
        }
        if pid == tid {
            process.name = Some(name.clone());
        }
        process.threads.insert(tid, name);
    }

    /// A fork or clone: a new process copies its parent's mappings and name; a new thread
    /// (`pid == ppid`) shares its process's address space.
    pub fn fork(&mut self, pid: u32, ppid: u32, tid: u32, ptid: u32) {
        let parent = self.processes.get(&ppid);
        let parent_thread_name = parent
            .and_then(|p| p.threads.get(&ptid).or(p.name.as_ref()))
            .cloned();
        if pid == ppid {
            let process = self.processes.entry(pid).or_default();
            if let Some(name) = parent_thread_name {
                process.threads.insert(tid, name);
            }
            return;
        }
        let mut child = Process {
            maps: parent.map(|p| p.maps.clone()).unwrap_or_default(),
            name: parent_thread_name.clone(),
            threads: HashMap::default(),
            exec_pending: false,
            replaced: None,
        };
        if let Some(name) = parent_thread_name {
            child.threads.insert(tid, name);
        }
        self.processes.insert(pid, child);
    }

    /// `pid` runs user code again after an exec (a user-mode sample shows it): the image the
    /// exec replaced describes none of its addresses any more.
    pub fn exec_returned(&mut self, pid: u32) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.replaced = None;
        }
    }

    /// A thread or process exited. Its mappings and names are kept, because samples taken
    /// just before the exit may be processed after it; a later fork of the same pid replaces them.
    pub fn exit(&mut self, pid: u32, tid: u32) {
        let _ = (pid, tid);
    }

    /// Finds the module and module offset of `addr` in `pid`'s (or the kernel's) address space.
    ///
    /// Kernel addresses outside every kernel mapping go to the `[kernel.kallsyms]` module
    /// (once one was mapped), because kallsyms also names BPF programs and trampolines.
    pub fn locate(&self, pid: u32, addr: Avma, kernel: bool) -> Location {
        let found = if kernel {
            self.kernel.find(addr.0)
        } else {
            self.processes.get(&pid).and_then(|p| {
                p.maps
                    .find(addr.0)
                    .or_else(|| p.replaced.as_ref()?.find(addr.0))
            })
        };
        match found {
            Some(m) => Location::Module {
                module: m.module,
                offset: ModuleOffset(if m.absolute {
                    addr.0
                } else {
                    (addr.0 - m.start).wrapping_add(m.pgoff)
                }),
            },
            None => match self.kernel_image {
                Some(module) if kernel => Location::Module {
                    module,
                    offset: ModuleOffset(addr.0),
                },
                _ => Location::Unmapped(addr),
            },
        }
    }

    /// The module with id `id`. Ids come from [`locate`](Self::locate) on this same value.
    ///
    /// # Panics
    /// If `id` was not produced by this `AddressSpaces`.
    #[allow(clippy::indexing_slicing)]
    pub fn module(&self, id: ModuleId) -> &Module {
        &self.modules[id.0 as usize]
    }

    /// All modules seen so far.
    pub fn modules(&self) -> impl Iterator<Item = (ModuleId, &Module)> {
        self.modules
            .iter()
            .enumerate()
            .map(|(i, m)| (ModuleId(u32::try_from(i).unwrap_or(u32::MAX)), m))
    }

    /// The thread's name, falling back to its process's name.
    pub fn thread_name(&self, pid: u32, tid: u32) -> Option<&str> {
        let p = self.processes.get(&pid)?;
        p.threads.get(&tid).or(p.name.as_ref()).map(String::as_str)
    }

    /// The process's name (the name of its main thread).
    pub fn process_name(&self, pid: u32) -> Option<&str> {
        self.processes.get(&pid)?.name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(a: &mut AddressSpaces, pid: u32, start: u64, len: u64, pgoff: u64, path: &str) {
        a.mmap(
            pid,
            MappingInfo::user(Avma(start), len, pgoff, path.as_bytes()),
        );
    }

    fn at(a: &AddressSpaces, pid: u32, addr: u64) -> Option<(&str, u64)> {
        match a.locate(pid, Avma(addr), false) {
            Location::Module { module, offset } => Some((&a.module(module).path, offset.0)),
            Location::Unmapped(_) => None,
        }
    }

    #[test]
    fn overlap_splits_older_mapping() {
        let mut a = AddressSpaces::new();
        map(&mut a, 1, 0x1000, 0x5000, 0x10000, "/lib/a.so");
        map(&mut a, 1, 0x2000, 0x1000, 0, "/lib/b.so");
        assert_eq!(at(&a, 1, 0x1fff), Some(("/lib/a.so", 0x10fff)));
        assert_eq!(at(&a, 1, 0x2000), Some(("/lib/b.so", 0)));
        assert_eq!(at(&a, 1, 0x2fff), Some(("/lib/b.so", 0xfff)));
        assert_eq!(at(&a, 1, 0x3000), Some(("/lib/a.so", 0x12000)));
        assert_eq!(at(&a, 1, 0x5fff), Some(("/lib/a.so", 0x14fff)));
        assert_eq!(at(&a, 1, 0x6000), None);
        assert_eq!(at(&a, 1, 0xfff), None);
        // A mapping covering several older ones replaces them all.
        map(&mut a, 1, 0x0, 0x10000, 0, "/lib/c.so");
        assert_eq!(at(&a, 1, 0x2500), Some(("/lib/c.so", 0x2500)));
        assert_eq!(at(&a, 1, 0x5000), Some(("/lib/c.so", 0x5000)));
        // Replacing the start of a mapping keeps its tail with an adjusted offset.
        map(&mut a, 1, 0x0, 0x1000, 0, "/lib/d.so");
        assert_eq!(at(&a, 1, 0x1000), Some(("/lib/c.so", 0x1000)));
        assert_eq!(at(&a, 1, 0x10,), Some(("/lib/d.so", 0x10)));
    }

    #[test]
    fn modules_are_interned_across_processes() {
        let mut a = AddressSpaces::new();
        map(&mut a, 1, 0x1000, 0x1000, 0, "/lib/libc.so.6");
        map(&mut a, 2, 0x8000, 0x1000, 0, "/lib/libc.so.6");
        assert_eq!(a.modules().count(), 1);
    }

    #[test]
    fn fork_copies_and_exec_resets() {
        let mut a = AddressSpaces::new();
        a.comm(10, 10, b"parent", false);
        map(&mut a, 10, 0x1000, 0x1000, 0, "/bin/parent");
        a.fork(11, 10, 11, 10);
        assert_eq!(at(&a, 11, 0x1800), Some(("/bin/parent", 0x800)));
        assert_eq!(a.process_name(11), Some("parent"));
        // The child's new mappings do not leak into the parent.
        map(&mut a, 11, 0x4000, 0x1000, 0, "/lib/x.so");
        assert_eq!(at(&a, 10, 0x4000), None);
        a.comm(11, 11, b"child", true);
        assert_eq!(a.process_name(11), Some("child"));
        // Inside execve the old image still describes the user stack ...
        assert_eq!(at(&a, 11, 0x1800), Some(("/bin/parent", 0x800)));
        // ... also once the new image is mapped, where the new one has nothing ...
        map(&mut a, 11, 0x9000, 0x1000, 0, "/bin/child");
        map(&mut a, 11, 0x1000, 0x400, 0, "/lib/ld.so");
        assert_eq!(at(&a, 11, 0x1800), Some(("/bin/parent", 0x800)));
        assert_eq!(at(&a, 11, 0x1200), Some(("/lib/ld.so", 0x200)));
        assert_eq!(at(&a, 11, 0x9800), Some(("/bin/child", 0x800)));
        // ... until the new image runs: then nothing of the old one is left.
        a.exec_returned(11);
        assert_eq!(at(&a, 11, 0x1800), None);
        assert_eq!(at(&a, 11, 0x9800), Some(("/bin/child", 0x800)));
        assert_eq!(at(&a, 10, 0x1800), Some(("/bin/parent", 0x800)));
    }

    #[test]
    fn threads_share_maps_and_have_names() {
        let mut a = AddressSpaces::new();
        a.comm(20, 20, b"server", false);
        map(&mut a, 20, 0x1000, 0x1000, 0, "/bin/server");
        a.fork(20, 20, 21, 20);
        a.comm(20, 21, b"worker-1", false);
        assert_eq!(a.thread_name(20, 21), Some("worker-1"));
        assert_eq!(a.thread_name(20, 20), Some("server"));
        assert_eq!(a.thread_name(20, 99), Some("server"));
        assert_eq!(a.thread_name(99, 99), None);
        assert_eq!(at(&a, 20, 0x1000), Some(("/bin/server", 0)));
        a.exit(20, 21);
        assert_eq!(at(&a, 20, 0x1000), Some(("/bin/server", 0)));
    }

    #[test]
    fn kernel_and_jit_offsets_are_absolute() {
        let mut a = AddressSpaces::new();
        a.mmap(
            u32::MAX,
            MappingInfo {
                start: Avma(0xffff_ffff_8100_0000),
                len: 0x100_0000,
                pgoff: 0xffff_ffff_8100_0000,
                path: b"[kernel.kallsyms]_text",
                build_id: None,
                kernel: true,
            },
        );
        map(&mut a, 5, 0x7000_0000, 0x1000, 0, "//anon");
        map(&mut a, 6, 0x7000_0000, 0x1000, 0, "//anon");
        let Location::Module { module, offset } = a.locate(1, Avma(0xffff_ffff_8100_1234), true)
        else {
            panic!("kernel address not found");
        };
        assert_eq!(offset, ModuleOffset(0xffff_ffff_8100_1234));
        assert_eq!(a.module(module).kind, ModuleKind::Kernel);
        let Location::Module { module, offset } = a.locate(1, Avma(0xffff_ffff_a000_0010), true)
        else {
            panic!("unmapped kernel addresses belong to the kernel image");
        };
        assert_eq!(offset, ModuleOffset(0xffff_ffff_a000_0010));
        assert_eq!(a.module(module).kind, ModuleKind::Kernel);
        let Location::Module { module, offset } = a.locate(5, Avma(0x7000_0010), false) else {
            panic!("anon address not found");
        };
        assert_eq!(offset, ModuleOffset(0x7000_0010));
        assert_eq!(a.module(module).kind, ModuleKind::Jit);
        assert_eq!(a.module(module).pid, Some(5));
        // JIT modules are per process because each has its own perf map.
        assert_eq!(a.modules().count(), 3);
    }
}
