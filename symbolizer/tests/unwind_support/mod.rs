//! Test support for the unwind tests and bench: build the C workload, record it with
//! `/usr/bin/perf record --call-graph dwarf`, and a minimal perf.data reader (attrs, MMAP/MMAP2
//! and SAMPLE records with callchain, user regs and user stack) written only for these tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use kprof_symbolizer::Avma;
use kprof_symbolizer::unwind::{Arch, ModuleRef, ModuleSource, UserRegs};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};

/// The workload: main → a → b → c (busy loop), main → qsort_path → qsort (libc) → compare → c,
/// main → signal_path → raise (libc) → [signal frame] → on_signal → c, and one function that
/// keeps a frame pointer. Built with -O2 -fomit-frame-pointer.
pub const WORKLOAD_C: &str = r#"
#include <signal.h>
#include <stdlib.h>
volatile unsigned long sink;
__attribute__((noinline, noclone)) unsigned long c(unsigned long n) {
    unsigned long s = 0;
    for (unsigned long i = 0; i < n; i++) { s += i * i; sink = s; }
    return s;
}
__attribute__((noinline, noclone)) unsigned long b(unsigned long n) {
    unsigned long r = c(n); sink += r; return r + 1;
}
__attribute__((noinline, noclone)) unsigned long a(unsigned long n) {
    unsigned long r = b(n); sink += r; return r + 2;
}
__attribute__((noinline, noclone)) int compare(const void *x, const void *y) {
    c(2000);
    long l = *(const long *)x, r = *(const long *)y;
    return (l > r) - (l < r);
}
__attribute__((noinline, noclone)) unsigned long qsort_path(void) {
    long v[32];
    for (int i = 0; i < 32; i++) v[i] = (i * 7919) % 31;
    qsort(v, 32, sizeof v[0], compare);
    sink += (unsigned long)v[0];
    return (unsigned long)v[31];
}
__attribute__((noinline, noclone, optimize("no-omit-frame-pointer")))
unsigned long with_frame_pointer(unsigned long n) {
    volatile unsigned long x[8] = {0};
    for (unsigned long i = 0; i < n; i++) { x[i & 7] += i; x[(i + 3) & 7] ^= x[i & 7]; }
    return c(x[1]) + x[2] + x[5];
}
__attribute__((noinline, noclone)) void on_signal(int sig) {
    sink += c(3000000) + (unsigned long)sig;
}
__attribute__((noinline, noclone)) unsigned long signal_path(void) {
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    return sink + 1;
}
int main(void) {
    unsigned long t = 0;
    for (int k = 0; k < 3000; k++) t += a(300000);
    for (int k = 0; k < 400; k++) t += qsort_path();
    for (int k = 0; k < 40; k++) t += signal_path();
    t += with_frame_pointer(10);
    sink = t;
    return 0;
}
"#;

/// True when `KPROF_REQUIRE_PERF=1`: skips become failures.
pub fn perf_required() -> bool {
    std::env::var("KPROF_REQUIRE_PERF").is_ok_and(|value| value == "1")
}

fn skip<T>(why: &str) -> Option<T> {
    assert!(!perf_required(), "KPROF_REQUIRE_PERF=1 but {why}");
    eprintln!("skipping: {why}");
    None
}

/// The built workload.
pub struct Workload {
    pub dir: PathBuf,
    pub exe: PathBuf,
    recording: OnceLock<Option<Recording>>,
}

/// The default build: `.eh_frame` CFI, no frame pointers.
pub const DEFAULT_FLAGS: &[&str] = &["-O2", "-fomit-frame-pointer", "-g"];
/// CFI only in a zlib-compressed `.debug_frame` (no `.eh_frame`).
pub const DEBUG_FRAME_FLAGS: &[&str] = &[
    "-O2",
    "-fomit-frame-pointer",
    "-g",
    "-gz=zlib",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
];

/// Builds the workload with [`DEFAULT_FLAGS`] once per test binary; `None` (skip) when no C
/// compiler works.
pub fn build_workload() -> Option<&'static Workload> {
    static WORKLOAD: OnceLock<Option<Workload>> = OnceLock::new();
    WORKLOAD
        .get_or_init(|| build_with("workload", DEFAULT_FLAGS))
        .as_ref()
}

/// Builds the workload with [`DEBUG_FRAME_FLAGS`] once per test binary.
pub fn build_debug_frame_workload() -> Option<&'static Workload> {
    static WORKLOAD: OnceLock<Option<Workload>> = OnceLock::new();
    WORKLOAD
        .get_or_init(|| build_with("workload-debug-frame", DEBUG_FRAME_FLAGS))
        .as_ref()
}

fn build_with(name: &str, flags: &[&str]) -> Option<Workload> {
    if Arch::host() != Some(Arch::X86_64) {
        return skip("the workload checks are written for x86_64 hosts");
    }
    remove_stale_dirs();
    let dir = std::env::temp_dir()
        .join(format!("kprof-unwind-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).ok()?;
    let source = dir.join("workload.c");
    std::fs::write(&source, WORKLOAD_C).ok()?;
    let exe = dir.join("workload");
    let status = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .status();
    match status {
        Ok(status) if status.success() => Some(Workload {
            dir,
            exe,
            recording: OnceLock::new(),
        }),
        other => skip(&format!(
            "cannot build the C workload with cc {flags:?}: {other:?}"
        )),
    }
}

/// Removes the directories of earlier test processes that have exited (a `static` is never
/// dropped, so each process leaves its directory behind).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("kprof-unwind-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Records the workload once per test binary; `None` (skip) when perf cannot record.
pub fn record_workload(workload: &'static Workload) -> Option<&'static Recording> {
    workload
        .recording
        .get_or_init(|| {
            let data = workload.dir.join("perf.data");
            let output = Command::new("/usr/bin/perf")
                .args([
                    "record",
                    "--call-graph",
                    "dwarf",
                    "-e",
                    "cpu-clock",
                    "-F",
                    "999",
                    "-o",
                ])
                .arg(&data)
                .arg("--")
                .arg(&workload.exe)
                .output();
            match output {
                Ok(output) if output.status.success() => {}
                Ok(output) => {
                    return skip(&format!(
                        "perf record failed: {}",
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
                Err(err) => return skip(&format!("cannot run /usr/bin/perf: {err}")),
            }
            let bytes = std::fs::read(&data).ok()?;
            Some(Recording::parse(&bytes).expect("perf.data from perf record parses"))
        })
        .as_ref()
}

/// One sample with user regs and stack.
#[derive(Clone, Debug)]
pub struct Sample {
    pub pid: u32,
    pub regs: UserRegs,
    pub stack: Vec<u8>,
    pub callchain: Vec<u64>,
}

/// One file mapping.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub pid: u32,
    pub start: u64,
    pub len: u64,
    pub pgoff: u64,
    pub path: String,
}

/// The parts of a perf.data file the unwind tests need.
pub struct Recording {
    pub samples: Vec<Sample>,
    pub mappings: Vec<Mapping>,
    files: HashMap<String, (u64, Arc<Vec<u8>>)>,
}

struct Attr {
    sample_type: u64,
    regs_mask: u64,
    ids: Vec<u64>,
}

fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(offset..offset + 8)?.try_into().ok()?,
    ))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(offset..offset + 2)?.try_into().ok()?,
    ))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

const SAMPLE_IP: u64 = 1 << 0;
const SAMPLE_TID: u64 = 1 << 1;
const SAMPLE_TIME: u64 = 1 << 2;
const SAMPLE_ADDR: u64 = 1 << 3;
const SAMPLE_READ: u64 = 1 << 4;
const SAMPLE_CALLCHAIN: u64 = 1 << 5;
const SAMPLE_ID: u64 = 1 << 6;
const SAMPLE_CPU: u64 = 1 << 7;
const SAMPLE_PERIOD: u64 = 1 << 8;
const SAMPLE_STREAM_ID: u64 = 1 << 9;
const SAMPLE_RAW: u64 = 1 << 10;
const SAMPLE_BRANCH_STACK: u64 = 1 << 11;
const SAMPLE_REGS_USER: u64 = 1 << 12;
const SAMPLE_STACK_USER: u64 = 1 << 13;
const SAMPLE_IDENTIFIER: u64 = 1 << 16;

impl Recording {
    /// Parses a little-endian, non-pipe perf.data file.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.get(..8)? != b"PERFILE2" {
            return None;
        }
        let attr_size = usize::try_from(u64_at(bytes, 16)?).ok()?;
        let attrs_offset = usize::try_from(u64_at(bytes, 24)?).ok()?;
        let attrs_size = usize::try_from(u64_at(bytes, 32)?).ok()?;
        let data_offset = usize::try_from(u64_at(bytes, 40)?).ok()?;
        let data_size = usize::try_from(u64_at(bytes, 48)?).ok()?;
        let mut attrs = Vec::new();
        for index in 0..attrs_size / attr_size.max(1) {
            let base = attrs_offset + index * attr_size;
            let attr_len = usize::try_from(u32_at(bytes, base + 4)?).ok()?;
            let ids_offset = usize::try_from(u64_at(bytes, base + attr_len)?).ok()?;
            let ids_size = usize::try_from(u64_at(bytes, base + attr_len + 8)?).ok()?;
            let ids = (0..ids_size / 8)
                .filter_map(|i| u64_at(bytes, ids_offset + 8 * i))
                .collect();
            attrs.push(Attr {
                sample_type: u64_at(bytes, base + 24)?,
                regs_mask: u64_at(bytes, base + 80)?,
                ids,
            });
        }
        let mut recording = Recording {
            samples: Vec::new(),
            mappings: Vec::new(),
            files: HashMap::new(),
        };
        let data = bytes.get(data_offset..data_offset + data_size)?;
        let mut offset = 0;
        while offset + 8 <= data.len() {
            let kind = u32_at(data, offset)?;
            let size = usize::from(u16_at(data, offset + 6)?);
            if size < 8 {
                return None;
            }
            let record = data.get(offset..offset + size)?;
            match kind {
                // MMAP's file name follows pgoff; MMAP2's, 32 bytes later (device, inode,
                // generation, prot and flags).
                1 | 10 => {
                    let path_at = if kind == 1 { 40 } else { 72 };
                    recording.mappings.push(Mapping {
                        pid: u32_at(record, 8)?,
                        start: u64_at(record, 16)?,
                        len: u64_at(record, 24)?,
                        pgoff: u64_at(record, 32)?,
                        path: c_string(record.get(path_at..)?),
                    });
                }
                9 => {
                    if let Some(sample) = parse_sample(record, &attrs) {
                        recording.samples.push(sample);
                    }
                }
                _ => {}
            }
            offset += size;
        }
        let mut next_key = 1;
        for mapping in &recording.mappings {
            if !mapping.path.starts_with('/') || recording.files.contains_key(&mapping.path) {
                continue;
            }
            if let Ok(file) = std::fs::read(&mapping.path) {
                recording
                    .files
                    .insert(mapping.path.clone(), (next_key, Arc::new(file)));
                next_key += 1;
            }
        }
        Some(recording)
    }

    /// The samples of processes that mapped the workload (all of them, for `perf record -- exe`).
    pub fn workload_samples(&self) -> Vec<Sample> {
        self.samples.clone()
    }

    /// The module source for one process.
    pub fn modules_of(&self, pid: u32) -> RecordingModules<'_> {
        let mappings = self.mappings.iter().filter(|m| m.pid == pid).collect();
        RecordingModules {
            recording: self,
            mappings,
        }
    }
}

fn parse_sample(record: &[u8], attrs: &[Attr]) -> Option<Sample> {
    let body = record.get(8..)?;
    let mut cursor = Cursor { body, at: 0 };
    let mut next = || cursor.next();
    let first_type = attrs.first()?.sample_type;
    let attr = if attrs.len() > 1 && first_type & SAMPLE_IDENTIFIER != 0 {
        let id = u64_at(body, 0)?;
        attrs.iter().find(|attr| attr.ids.contains(&id))?
    } else {
        attrs.first()?
    };
    let sample_type = attr.sample_type;
    if sample_type & (SAMPLE_READ | SAMPLE_RAW | SAMPLE_BRANCH_STACK) != 0 {
        return None;
    }
    let mut pid = 0;
    for (bit, _) in [
        (SAMPLE_IDENTIFIER, ()),
        (SAMPLE_IP, ()),
        (SAMPLE_TID, ()),
        (SAMPLE_TIME, ()),
        (SAMPLE_ADDR, ()),
        (SAMPLE_ID, ()),
        (SAMPLE_STREAM_ID, ()),
        (SAMPLE_CPU, ()),
        (SAMPLE_PERIOD, ()),
    ] {
        if sample_type & bit != 0 {
            let value = next()?;
            if bit == SAMPLE_TID {
                pid = value as u32;
            }
        }
    }
    let mut callchain = Vec::new();
    if sample_type & SAMPLE_CALLCHAIN != 0 {
        let count = next()?;
        for _ in 0..count.min(100_000) {
            callchain.push(next()?);
        }
    }
    if sample_type & SAMPLE_REGS_USER == 0 || sample_type & SAMPLE_STACK_USER == 0 {
        return None;
    }
    let abi = next()?;
    if abi == 0 {
        return None;
    }
    let values: Vec<u64> = (0..attr.regs_mask.count_ones())
        .map(|_| next())
        .collect::<Option<_>>()?;
    let regs = UserRegs::from_perf(Arch::X86_64, attr.regs_mask, &values)?;
    let size = usize::try_from(next()?).ok()?;
    let stack_start = cursor.at;
    cursor.at += size;
    let dyn_size = if size > 0 {
        usize::try_from(cursor.next()?).ok()?
    } else {
        0
    };
    let stack = body
        .get(stack_start..stack_start + size.min(dyn_size))?
        .to_vec();
    Some(Sample {
        pid,
        regs,
        stack,
        callchain,
    })
}

struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<u64> {
        let value = u64_at(self.body, self.at);
        self.at += 8;
        value
    }
}

/// The mappings of one process as a [`ModuleSource`].
pub struct RecordingModules<'r> {
    recording: &'r Recording,
    mappings: Vec<&'r Mapping>,
}

impl RecordingModules<'_> {
    /// The latest mapping containing `avma`.
    pub fn mapping_at(&self, avma: u64) -> Option<&Mapping> {
        self.mappings
            .iter()
            .rev()
            .find(|m| m.start <= avma && avma - m.start < m.len)
            .copied()
    }
}

impl ModuleSource for RecordingModules<'_> {
    fn module_at(&self, avma: Avma) -> Option<ModuleRef> {
        let mapping = self.mapping_at(avma.0)?;
        let (key, file) = self.recording.files.get(&mapping.path)?;
        Some(ModuleRef {
            key: *key,
            map_start: Avma(mapping.start),
            map_pgoff: mapping.pgoff,
            file: file.clone(),
        })
    }
}

/// Function symbols of the workload executable, for naming frames.
pub struct ExeSymbols {
    path: String,
    functions: Vec<(u64, u64, String)>,
    segments: Vec<(u64, u64, u64)>,
}

impl ExeSymbols {
    pub fn load(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let mut functions: Vec<_> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
            .map(|s| (s.address(), s.size(), s.name().unwrap_or("").to_owned()))
            .collect();
        functions.sort();
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        Self {
            path: path.to_string_lossy().into_owned(),
            functions,
            segments,
        }
    }

    /// The svma of a function.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.range_of(name).map(|(start, _)| start)
    }

    /// The svma and size of a function.
    pub fn range_of(&self, name: &str) -> Option<(u64, u64)> {
        self.functions
            .iter()
            .find(|(_, _, n)| n == name)
            .map(|&(start, size, _)| (start, size))
    }

    /// The function containing `avma` when it lies in the executable's mapping.
    pub fn name_of(&self, modules: &RecordingModules<'_>, avma: u64) -> Option<&str> {
        let mapping = modules.mapping_at(avma)?;
        if mapping.path != self.path {
            return None;
        }
        let file_offset = avma - mapping.start + mapping.pgoff;
        let &(offset, _, vaddr) = self
            .segments
            .iter()
            .find(|&&(offset, size, _)| offset <= file_offset && file_offset < offset + size)?;
        let svma = file_offset - offset + vaddr;
        self.functions
            .iter()
            .find(|(start, size, _)| *start <= svma && svma < start + size)
            .map(|(_, _, name)| name.as_str())
    }
}

/// The file range of a section.
pub fn section_file_range(bytes: &[u8], name: &str) -> Option<Range<usize>> {
    let file = object::File::parse(bytes).ok()?;
    let (offset, size) = file.section_by_name(name)?.file_range()?;
    Some(offset as usize..(offset + size) as usize)
}

/// A tiny deterministic PRNG for hostile-input tests.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// ELF `e_machine` for x86_64.
pub const EM_X86_64: u16 = 62;
/// ELF `e_machine` for aarch64.
pub const EM_AARCH64: u16 = 183;

/// A section of a synthetic ELF file: name, address (= file offset), flags and contents.
pub struct SyntheticSection {
    pub name: &'static str,
    pub address: u64,
    pub executable: bool,
    pub bytes: Vec<u8>,
}

/// Builds a minimal little-endian ELF64 shared object: one `PT_LOAD` segment mapping the whole
/// file at vaddr 0 (so every section's address equals its file offset), the given sections and
/// a `.shstrtab`.
pub fn synthetic_elf(machine: u16, sections: &[SyntheticSection]) -> Vec<u8> {
    let mut file = vec![0u8; 0x1000];
    for section in sections {
        let end = section.address as usize + section.bytes.len();
        if file.len() < end {
            file.resize(end, 0);
        }
        file[section.address as usize..end].copy_from_slice(&section.bytes);
    }
    let mut shstrtab = vec![0u8];
    let mut name_offsets = Vec::new();
    for section in sections {
        name_offsets.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(section.name.as_bytes());
        shstrtab.push(0);
    }
    let shstrtab_name = shstrtab.len() as u32;
    shstrtab.extend_from_slice(b".shstrtab\0");
    let shstrtab_offset = file.len() as u64;
    file.extend_from_slice(&shstrtab);
    while file.len() % 8 != 0 {
        file.push(0);
    }
    let shoff = file.len() as u64;
    let push_section_header = |file: &mut Vec<u8>, fields: (u32, u32, u64, u64, u64, u64)| {
        let (name, kind, flags, address, offset, size) = fields;
        file.extend_from_slice(&name.to_le_bytes());
        file.extend_from_slice(&kind.to_le_bytes());
        file.extend_from_slice(&flags.to_le_bytes());
        file.extend_from_slice(&address.to_le_bytes());
        file.extend_from_slice(&offset.to_le_bytes());
        file.extend_from_slice(&size.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes()); // link
        file.extend_from_slice(&0u32.to_le_bytes()); // info
        file.extend_from_slice(&8u64.to_le_bytes()); // addralign
        file.extend_from_slice(&0u64.to_le_bytes()); // entsize
    };
    push_section_header(&mut file, (0, 0, 0, 0, 0, 0));
    for (section, &name) in sections.iter().zip(&name_offsets) {
        let flags = if section.executable { 6 } else { 2 }; // SHF_ALLOC | SHF_EXECINSTR
        let alloc_flags = if section.name.starts_with(".debug") {
            0
        } else {
            flags
        };
        push_section_header(
            &mut file,
            (
                name,
                1, // SHT_PROGBITS
                alloc_flags,
                section.address,
                section.address,
                section.bytes.len() as u64,
            ),
        );
    }
    push_section_header(
        &mut file,
        (
            shstrtab_name,
            3,
            0,
            0,
            shstrtab_offset,
            shstrtab.len() as u64,
        ),
    );
    let file_len = file.len() as u64;
    let shnum = sections.len() as u16 + 2;
    // ELF header.
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
    header.extend_from_slice(&machine.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes()); // entry
    header.extend_from_slice(&64u64.to_le_bytes()); // phoff
    header.extend_from_slice(&shoff.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes()); // flags
    header.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    header.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    header.extend_from_slice(&1u16.to_le_bytes()); // phnum
    header.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    header.extend_from_slice(&shnum.to_le_bytes());
    header.extend_from_slice(&(shnum - 1).to_le_bytes()); // shstrndx
    // One PT_LOAD, R+X, the whole file at vaddr 0.
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&5u32.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.extend_from_slice(&file_len.to_le_bytes());
    header.extend_from_slice(&file_len.to_le_bytes());
    header.extend_from_slice(&0x1000u64.to_le_bytes());
    file[..header.len()].copy_from_slice(&header);
    file
}

/// The CFI encoding used by the synthetic tables.
pub fn cfi_encoding() -> gimli::Encoding {
    gimli::Encoding {
        format: gimli::Format::Dwarf32,
        version: 1,
        address_size: 8,
    }
}

/// Serializes a frame table as `.eh_frame`, placed at `address`.
pub fn eh_frame_bytes(table: &gimli::write::FrameTable) -> Vec<u8> {
    let mut section = gimli::write::EhFrame(gimli::write::EndianVec::new(gimli::LittleEndian));
    table.write_eh_frame(&mut section).unwrap();
    section.0.into_vec()
}

/// Serializes a frame table as `.debug_frame`.
pub fn debug_frame_bytes(table: &gimli::write::FrameTable) -> Vec<u8> {
    let mut section = gimli::write::DebugFrame(gimli::write::EndianVec::new(gimli::LittleEndian));
    table.write_debug_frame(&mut section).unwrap();
    section.0.into_vec()
}

/// One synthetic module mapped at `start` with pgoff 0.
pub struct SyntheticModule {
    pub key: u64,
    pub start: u64,
    pub file: Arc<Vec<u8>>,
}

impl ModuleSource for SyntheticModule {
    fn module_at(&self, avma: Avma) -> Option<ModuleRef> {
        let (avma, len) = (avma.0, self.file.len() as u64);
        (self.start <= avma && avma - self.start < len).then(|| ModuleRef {
            key: self.key,
            map_start: Avma(self.start),
            map_pgoff: 0,
            file: self.file.clone(),
        })
    }

    /// The synthetic process maps this module and nothing else.
    fn is_code(&self, avma: Avma) -> bool {
        self.module_at(avma).is_some()
    }
}

/// Little-endian bytes of stack words.
pub fn stack_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|word| word.to_le_bytes()).collect()
}
