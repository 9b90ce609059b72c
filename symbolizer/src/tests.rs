//! Crate-level tests: self-symbolization, compiled C programs, kernel, vdso and JIT maps.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{
    AddressSpaces, Avma, Location, MappingInfo, Module, ModuleOffset, Problem, Status, Symbolizer,
    SymbolizerOptions,
};

const SELF_PID: u32 = 7;

/// Replays this process's `/proc/self/maps` into an `AddressSpaces` under pid `SELF_PID`.
fn own_address_space() -> AddressSpaces {
    let mut spaces = AddressSpaces::new();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let pgoff = u64::from_str_radix(fields[2], 16).unwrap();
        let path = fields.get(5).copied().unwrap_or("//anon");
        spaces.mmap(
            SELF_PID,
            MappingInfo::user(Avma(start), end - start, pgoff, path.as_bytes()),
        );
    }
    spaces
}

fn locate_self(spaces: &AddressSpaces, addr: u64) -> (&Module, ModuleOffset) {
    match spaces.locate(SELF_PID, Avma(addr), false) {
        Location::Module { module, offset } => (spaces.module(module), offset),
        Location::Unmapped(a) => panic!("{a:?} not mapped"),
    }
}

fn options(lines: bool, inline: bool) -> SymbolizerOptions {
    SymbolizerOptions {
        lines,
        inline,
        ..SymbolizerOptions::default()
    }
}

const TARGET_FIRST_LINE: u32 = line!();
#[inline(never)]
fn self_symbolize_target(x: u64) -> u64 {
    let y = black_box(x).wrapping_mul(0x9e37_79b9);
    y.rotate_left(black_box(7) as u32) ^ black_box(x)
}
const TARGET_LAST_LINE: u32 = line!();

#[test]
fn symbolizer_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Symbolizer>();
    assert_send_sync::<AddressSpaces>();
}

#[test]
fn self_symbolization_names_and_lines() {
    assert_eq!(
        self_symbolize_target(1),
        self_symbolize_target(black_box(1))
    );
    let addr = self_symbolize_target as fn(u64) -> u64 as usize as u64;
    let spaces = own_address_space();
    let (module, offset) = locate_self(&spaces, addr + 4);

    let plain = Symbolizer::new(options(false, false));
    let r = plain.symbolize(module, offset);
    assert_eq!(r.status, Status::Resolved);
    assert_eq!(
        &*r.frames[0].function,
        "kprof_symbolizer::tests::self_symbolize_target"
    );
    assert_eq!(r.frames[0].line, None);

    let with_lines = Symbolizer::new(options(true, false));
    let r = with_lines.symbolize(module, offset);
    assert_eq!(
        &*r.frames[0].function,
        "kprof_symbolizer::tests::self_symbolize_target"
    );
    let file = r.frames[0].file.as_deref().unwrap();
    assert!(file.ends_with("src/tests.rs"), "{file}");
    let line = r.frames[0].line.unwrap();
    assert!(
        (TARGET_FIRST_LINE..=TARGET_LAST_LINE).contains(&line),
        "line {line}"
    );
    let report = with_lines.report();
    let mine = report.iter().find(|m| m.path == module.path).unwrap();
    assert_eq!((mine.resolved, mine.unresolved), (1, 0));
    assert!(mine.problems.is_empty(), "{:?}", mine.problems);
}

#[test]
fn parallel_callers_agree() {
    let addr = self_symbolize_target as fn(u64) -> u64 as usize as u64;
    let spaces = own_address_space();
    let (module, offset) = locate_self(&spaces, addr);
    let symbolizer = Symbolizer::new(options(true, true));
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| symbolizer.symbolize(module, offset)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let report = symbolizer.report();
    assert_eq!(report.iter().map(|m| m.resolved).sum::<u64>(), 4);
}

// See: issue #13 (modules loaded side by side before symbolizing)
#[test]
fn preloading_changes_neither_frames_nor_the_report() {
    let addr = libc::malloc as unsafe extern "C" fn(usize) -> *mut libc::c_void as usize as u64;
    let spaces = own_address_space();
    let (module, offset) = locate_self(&spaces, addr);
    let symbolize = |preload: bool| {
        let symbolizer = Symbolizer::new(options(false, true));
        if preload {
            symbolizer.preload(module);
            assert!(symbolizer.report().iter().all(|m| m.resolved == 0));
        }
        (symbolizer.symbolize(module, offset), symbolizer.report())
    };
    let (loaded_later, report_later) = symbolize(false);
    let (preloaded, report_preloaded) = symbolize(true);
    assert_eq!(preloaded, loaded_later);
    assert_eq!(&*preloaded.frames[0].function, "malloc");
    assert_eq!(report_preloaded, report_later);
    assert_eq!(report_preloaded.iter().map(|m| m.resolved).sum::<u64>(), 1);
}

// See: issue #13 (addresses one symbol names share a location)
#[test]
fn symbol_keys_are_equal_exactly_within_one_symbol() {
    let malloc = libc::malloc as unsafe extern "C" fn(usize) -> *mut libc::c_void as usize as u64;
    let free = libc::free as unsafe extern "C" fn(*mut libc::c_void) as usize as u64;
    let spaces = own_address_space();
    let (module, at_malloc) = locate_self(&spaces, malloc);
    let (_, at_free) = locate_self(&spaces, free);
    let inside_malloc = ModuleOffset(at_malloc.0 + 1);
    let symbolizer = Symbolizer::new(options(false, true));
    let key = |offset| symbolizer.symbol_key(module, offset);
    assert!(key(at_malloc).is_some());
    assert_eq!(key(at_malloc), key(inside_malloc));
    assert_ne!(key(at_malloc), key(at_free));
    // Equal keys, equal frames: what lets a caller symbolize one and count the other.
    assert_eq!(
        symbolizer.symbolize(module, at_malloc).frames,
        symbolizer.symbolize(module, inside_malloc).frames
    );
    let resolved = |s: &Symbolizer| s.report().iter().map(|m| m.resolved).sum::<u64>();
    assert_eq!(resolved(&symbolizer), 2, "keys count nothing");
    symbolizer.count_resolved(module, 3);
    assert_eq!(resolved(&symbolizer), 5);
    // With lines, frames may differ within a function: no key.
    let with_lines = Symbolizer::new(options(true, false));
    assert_eq!(with_lines.symbol_key(module, at_malloc), None);
}

#[test]
fn libc_malloc() {
    let addr = libc::malloc as unsafe extern "C" fn(usize) -> *mut libc::c_void as usize as u64;
    let spaces = own_address_space();
    let (module, offset) = locate_self(&spaces, addr);
    assert!(
        module.path.contains("libc"),
        "malloc resolved into {}",
        module.path
    );
    let symbolizer = Symbolizer::new(SymbolizerOptions::default());
    let r = symbolizer.symbolize(module, offset);
    assert_eq!(r.status, Status::Resolved);
    assert_eq!(&*r.frames[0].function, "malloc");
}

#[test]
fn unmapped_and_unknown_mappings() {
    let spaces = own_address_space();
    assert_eq!(
        spaces.locate(SELF_PID, Avma(8), false),
        Location::Unmapped(Avma(8))
    );
    assert_eq!(
        spaces.locate(SELF_PID + 1, Avma(8), false),
        Location::Unmapped(Avma(8))
    );
}

// ---- compiled C programs -------------------------------------------------------------

const C_SOURCE: &str = r#"#include <stdio.h>
static inline __attribute__((always_inline)) int square_mix(int x) {
    int r = x * x;
    r ^= r >> 3;
    return r + 7;
}
__attribute__((noinline)) int outer_fn(int n) {
    int acc = 0;
    for (int i = 0; i < n; i++)
        acc += square_mix(i + acc);
    return acc;
}
int main(int argc, char **argv) {
    (void)argv;
    printf("%d\n", outer_fn(argc * 1000));
    return 0;
}
"#;
/// Lines of `square_mix`'s body in `C_SOURCE`.
const INLINE_BODY_LINES: std::ops::RangeInclusive<u32> = 3..=5;

/// A private directory `kprof-sym-TAG-PID` under the system temp dir, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("kprof-sym-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    /// A fresh scratch directory holding one file `name` with `contents`: both.
    fn with_file(tag: &str, name: &str, contents: impl AsRef<[u8]>) -> (Scratch, PathBuf) {
        let scratch = Scratch::new(tag);
        let file = scratch.dir.join(name);
        std::fs::write(&file, contents).unwrap();
        (scratch, file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compiles `C_SOURCE` as `prog_pie`, `prog_nopie` and a stripped `prog_stripped`;
/// `None` (test skipped) when no C toolchain is installed.
fn compile(tag: &str) -> Option<Scratch> {
    let (compiled, src) = Scratch::with_file(tag, "prog.c", C_SOURCE);
    let cc = |flags: &[&str], out: &str| {
        run(Command::new("cc")
            .args(["-O2", "-g"])
            .args(flags)
            .arg(&src)
            .arg("-o")
            .arg(compiled.dir.join(out)))
    };
    if cc(&["-fPIE", "-pie"], "prog_pie").is_none()
        || cc(&["-no-pie", "-fno-pie"], "prog_nopie").is_none()
    {
        eprintln!("skipping: cc not available");
        return None;
    }
    run(Command::new("strip")
        .arg("-o")
        .arg(compiled.dir.join("prog_stripped"))
        .arg(compiled.dir.join("prog_pie")))?;
    Some(compiled)
}

/// `outer_fn`'s (svma, size) by `nm`, and the LOAD segments (offset, vaddr, filesz) by `readelf`.
/// A LOAD segment: (file offset, vaddr, file size).
type Load = (u64, u64, u64);

fn oracle(binary: &Path) -> Option<((u64, u64), Vec<Load>)> {
    let nm = run(Command::new("nm").arg("-S").arg(binary))?;
    let sym = nm.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 4 && f[3] == "outer_fn").then(|| {
            (
                u64::from_str_radix(f[0], 16).unwrap(),
                u64::from_str_radix(f[1], 16).unwrap(),
            )
        })
    })?;
    Some((sym, loads(binary)?))
}

/// `binary`'s LOAD segments by `readelf -lW`.
fn loads(binary: &Path) -> Option<Vec<Load>> {
    let re = run(Command::new("readelf").arg("-lW").arg(binary))?;
    let loads = re
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            (hex(f[1]), hex(f[2]), hex(f[4]))
        })
        .collect();
    Some(loads)
}

fn svma_to_offset(svma: u64, loads: &[Load]) -> u64 {
    let (off, vaddr, _) = loads
        .iter()
        .find(|(_, v, sz)| *v <= svma && svma < v + sz)
        .unwrap();
    svma - vaddr + off
}

/// The file offset of `outer_fn` in `binary` (by [`oracle`]).
fn outer_fn_offset(binary: &Path) -> Option<u64> {
    let ((svma, _), loads) = oracle(binary)?;
    Some(svma_to_offset(svma, &loads))
}

/// [`compile`]d programs and the file offset of `outer_fn` in the one named `binary`; `None`
/// (test skipped) without a C toolchain or binutils.
fn compile_for_outer_fn(tag: &str, binary: &str) -> Option<(Scratch, u64)> {
    let compiled = compile(tag)?;
    let offset = outer_fn_offset(&compiled.dir.join(binary))?;
    Some((compiled, offset))
}

/// An address space with `binary` mapped whole at 0x10000 (so module offset = file offset).
fn map_file(binary: &Path, build_id: Option<&[u8]>) -> AddressSpaces {
    let len = std::fs::metadata(binary).unwrap().len();
    let mut spaces = AddressSpaces::new();
    let path = binary.to_str().unwrap().as_bytes();
    spaces.mmap(
        1,
        MappingInfo {
            build_id,
            ..MappingInfo::user(Avma(0x10000), len, 0, path)
        },
    );
    spaces
}

fn symbolize_file_offset(
    symbolizer: &Symbolizer,
    spaces: &AddressSpaces,
    offset: u64,
) -> crate::Symbolized {
    let Location::Module {
        module,
        offset: located,
    } = spaces.locate(1, Avma(0x10000 + offset), false)
    else {
        panic!("not mapped");
    };
    assert_eq!(located, ModuleOffset(offset));
    symbolizer.symbolize(spaces.module(module), located)
}

#[test]
fn c_program_pie_and_no_pie() {
    let Some(c) = compile("names") else { return };
    for name in ["prog_pie", "prog_nopie"] {
        let bin = c.dir.join(name);
        let Some(((svma, size), loads)) = oracle(&bin) else {
            eprintln!("skipping: binutils not available");
            return;
        };
        let offset = svma_to_offset(svma, &loads);
        let spaces = map_file(&bin, None);
        let symbolizer = Symbolizer::new(options(true, false));
        for probe in [offset, offset + size / 2, offset + size - 1] {
            let r = symbolizer.symbolize_probe(&spaces, probe);
            assert_eq!(&*r.frames[0].function, "outer_fn", "{name} at {probe:#x}");
            assert!(r.frames[0].file.as_deref().unwrap().ends_with("prog.c"));
        }
        let report = symbolizer.report();
        assert_eq!(report[0].resolved, 3);
        assert!(report[0].problems.is_empty(), "{:?}", report[0].problems);
    }
}

impl Symbolizer {
    fn symbolize_probe(&self, spaces: &AddressSpaces, offset: u64) -> crate::Symbolized {
        symbolize_file_offset(self, spaces, offset)
    }
}

#[test]
fn c_program_inlined_frames_match_binutils_addr2line() {
    let Some(c) = compile("inline") else { return };
    let bin = c.dir.join("prog_pie");
    let Some(((svma, size), loads)) = oracle(&bin) else {
        return;
    };
    let offset = svma_to_offset(svma, &loads);
    let spaces = map_file(&bin, None);
    let symbolizer = Symbolizer::new(options(true, true));
    let mut found = 0;
    for delta in 0..size {
        let r = symbolize_file_offset(&symbolizer, &spaces, offset + delta);
        assert_eq!(r.status, Status::Resolved);
        assert_eq!(&*r.frames.last().unwrap().function, "outer_fn");
        if r.frames.len() != 2 {
            continue;
        }
        found += 1;
        assert_eq!(&*r.frames[0].function, "square_mix");
        assert!(r.frames[0].inlined && !r.frames[1].inlined);
        let inner_line = r.frames[0].line.unwrap();
        assert!(
            INLINE_BODY_LINES.contains(&inner_line),
            "inlined line {inner_line}"
        );
        // binutils is the oracle for the exact lines.
        if let Some(out) = run(Command::new("addr2line")
            .args(["-i", "-f", "-e"])
            .arg(&bin)
            .arg(format!("{:#x}", svma + delta)))
        {
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines[0], "square_mix");
            assert!(
                lines[1].ends_with(&format!("prog.c:{inner_line}"))
                    || lines[1].contains(&format!("prog.c:{inner_line} ")),
                "{out}"
            );
            assert_eq!(lines[2], "outer_fn");
            let outer_line = r.frames[1].line.unwrap();
            assert!(
                lines[3].contains(&format!("prog.c:{outer_line}")),
                "{out} vs {outer_line}"
            );
        }
    }
    assert!(
        found > 0,
        "no address of outer_fn is inside the inlined square_mix"
    );
}

#[test]
fn c_program_stripped_and_build_id_mismatch() {
    let Some((c, offset)) = compile_for_outer_fn("stripped", "prog_pie") else {
        return;
    };
    let stripped = c.dir.join("prog_stripped");
    let spaces = map_file(&stripped, None);
    let symbolizer = Symbolizer::new(SymbolizerOptions::default());
    let r = symbolize_file_offset(&symbolizer, &spaces, offset);
    assert_eq!(r.status, Status::Unresolved(Problem::Stripped));
    assert_eq!(&*r.frames[0].function, format!("prog_stripped+{offset:#x}"));
    let report = symbolizer.report();
    assert_eq!(report[0].problems, vec![Problem::Stripped]);
    assert!(
        report[0].problems[0]
            .to_string()
            .starts_with("stripped (no .symtab, only .dynsym)")
    );
    let line = report[0].to_string();
    assert!(
        line.ends_with(
            "prog_stripped: 0 resolved, 1 unresolved; stripped (no .symtab, only .dynsym): \
             install the -dbgsym/-debuginfo package or build without stripping"
        ),
        "{line}"
    );

    let wrong = [0xabu8; 20];
    let spaces = map_file(&c.dir.join("prog_pie"), Some(&wrong));
    let r = symbolize_file_offset(&symbolizer, &spaces, offset);
    let Status::Unresolved(Problem::BuildIdMismatch { recorded, found }) = r.status else {
        panic!("expected a build-id mismatch, got {:?}", r.status);
    };
    assert!(recorded.starts_with("abab"));
    assert_ne!(recorded, found);
}

#[test]
fn separate_debug_files_by_debuglink_and_build_id() {
    let Some((c, offset)) = compile_for_outer_fn("debugfile", "prog_pie") else {
        return;
    };
    let pie = c.dir.join("prog_pie");
    let in_dir =
        |args: &[&str]| run(Command::new(args[0]).args(&args[1..]).current_dir(&c.dir)).is_some();
    // gdb's layout: debug file beside the binary, found through .gnu_debuglink.
    assert!(in_dir(&[
        "objcopy",
        "--only-keep-debug",
        "prog_pie",
        "prog_pie.debug"
    ]));
    assert!(in_dir(&["strip", "-s", "-o", "prog_linked", "prog_pie"]));
    assert!(in_dir(&[
        "objcopy",
        "--add-gnu-debuglink=prog_pie.debug",
        "prog_linked"
    ]));
    let symbolizer = Symbolizer::new(options(true, false));
    let r = symbolize_file_offset(
        &symbolizer,
        &map_file(&c.dir.join("prog_linked"), None),
        offset,
    );
    assert_eq!(r.status, Status::Resolved);
    assert_eq!(&*r.frames[0].function, "outer_fn");
    assert!(r.frames[0].file.as_deref().unwrap().ends_with("prog.c"));
    assert!(
        symbolizer.report()[0].problems.is_empty(),
        "{:?}",
        symbolizer.report()
    );

    // The .build-id tree: `prog_stripped` has no debuglink, only its build-id.
    let build_id = crate::elf::build_id_of(&std::fs::read(&pie).unwrap()).unwrap();
    let hex = crate::elf::hex(&build_id);
    let root = c.dir.join("debugroot");
    let dir = root.join(".build-id").join(&hex[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        c.dir.join("prog_pie.debug"),
        dir.join(format!("{}.debug", &hex[2..])),
    )
    .unwrap();
    let symbolizer = Symbolizer::new(SymbolizerOptions {
        lines: true,
        debug_dirs: vec![root],
        ..SymbolizerOptions::default()
    });
    let stripped = map_file(&c.dir.join("prog_stripped"), Some(&build_id));
    let r = symbolize_file_offset(&symbolizer, &stripped, offset);
    assert_eq!(&*r.frames[0].function, "outer_fn");
    assert!(r.frames[0].line.is_some());

    // Without any debug file and with lines requested, the report says how to get them.
    let _ = std::fs::remove_file(c.dir.join("prog_pie.debug"));
    let symbolizer = Symbolizer::new(options(true, false));
    let r = symbolize_file_offset(
        &symbolizer,
        &map_file(&c.dir.join("prog_linked"), None),
        offset,
    );
    assert_eq!(r.status, Status::Unresolved(Problem::Stripped));
    let problems = &symbolizer.report()[0].problems;
    assert!(
        problems.contains(&Problem::Stripped) && problems.contains(&Problem::NoDebugInfo),
        "{problems:?}"
    );
}

#[test]
fn symfs_prefix() {
    let Some((c, offset)) = compile_for_outer_fn("symfs", "prog_nopie") else {
        return;
    };
    let symbolizer = Symbolizer::new(SymbolizerOptions {
        symfs: Some(c.dir.clone()),
        ..SymbolizerOptions::default()
    });
    let mut spaces = AddressSpaces::new();
    spaces.mmap(
        1,
        MappingInfo::user(Avma(0x10000), 1 << 20, 0, b"/prog_nopie"),
    );
    let r = symbolize_file_offset(&symbolizer, &spaces, offset);
    assert_eq!(&*r.frames[0].function, "outer_fn");
}

#[test]
fn corrupted_elf_files_never_panic() {
    let Some(c) = compile("corrupt") else { return };
    let original = std::fs::read(c.dir.join("prog_pie")).unwrap();
    let mut seed: u64 = 0x1234_5678_9abc_def0;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..24 {
        let mut bytes = original.clone();
        for _ in 0..(1 + round * 4) {
            let at = (next() as usize) % bytes.len();
            bytes[at] ^= 1 << (next() % 8);
        }
        if round % 6 == 5 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        let path = c.dir.join(format!("corrupt{round}"));
        std::fs::write(&path, &bytes).unwrap();
        let spaces = map_file(&path, None);
        let symbolizer = Symbolizer::new(options(true, true));
        for offset in (0..original.len() as u64).step_by(997) {
            if let Location::Module { module, offset } =
                spaces.locate(1, Avma(0x10000 + offset), false)
            {
                let r = symbolizer.symbolize(spaces.module(module), offset);
                assert!(!r.frames.is_empty());
            }
        }
    }
}

#[test]
fn garbage_text_never_panics() {
    let mut seed: u64 = 42;
    for len in [0usize, 1, 17, 19, 200, 5000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                // Kallsyms-like characters, so lines get deep into the parsers.
                let alphabet = b"0123456789abcdef tTwW\t\n[]x";
                alphabet[(seed >> 33) as usize % alphabet.len()]
            })
            .collect();
        let k = crate::kallsyms::Kallsyms::parse(bytes.clone());
        let _ = k.lookup(u64::MAX);
        let m = crate::perfmap::PerfMap::parse(&bytes);
        let _ = m.lookup(u64::MAX);
    }
}

#[test]
fn garbage_and_missing_files_are_problems() {
    let (_scratch, junk) = Scratch::with_file(
        "garbage",
        "libjunk.so",
        b"\x7fELF\x02\x01\x01\x00not really an elf file at all",
    );
    let spaces = map_file(&junk, None);
    let symbolizer = Symbolizer::new(options(true, true));
    let r = symbolize_file_offset(&symbolizer, &spaces, 3);
    assert!(
        matches!(r.status, Status::Unresolved(Problem::ParseFailed(_))),
        "{:?}",
        r.status
    );
    assert_eq!(&*r.frames[0].function, "libjunk.so+0x3");
}

// ---- kernel, vdso, JIT ----------------------------------------------------------------

fn kernel_space() -> AddressSpaces {
    let mut spaces = AddressSpaces::new();
    spaces.mmap(
        u32::MAX,
        MappingInfo {
            start: Avma(0xffff_0000_0000_0000),
            len: u64::MAX - 0xffff_0000_0000_0000,
            pgoff: 0,
            path: b"[kernel.kallsyms]_text",
            build_id: None,
            kernel: true,
        },
    );
    spaces
}

#[test]
fn kernel_schedule() {
    let spaces = kernel_space();
    let Ok(text) = std::fs::read("/proc/kallsyms") else {
        eprintln!("skipping: /proc/kallsyms not readable");
        return;
    };
    let k = crate::kallsyms::Kallsyms::parse(text);
    let symbolizer = Symbolizer::new(SymbolizerOptions {
        kernel_matches: true,
        ..SymbolizerOptions::default()
    });
    let addr = if k.addresses_hidden() {
        0xffff_ffff_8100_0000
    } else {
        k.address_of("schedule").unwrap() + 2
    };
    let Location::Module { module, offset } = spaces.locate(0, Avma(addr), true) else {
        panic!()
    };
    let r = symbolizer.symbolize(spaces.module(module), offset);
    if k.addresses_hidden() {
        assert_eq!(r.status, Status::Unresolved(Problem::KptrRestrict));
        return;
    }
    assert_eq!(r.status, Status::Resolved);
    assert_eq!(&*r.frames[0].function, "schedule");

    let other = Symbolizer::new(SymbolizerOptions {
        recorded_osrelease: Some("5.10.0-test".into()),
        ..SymbolizerOptions::default()
    });
    let r = other.symbolize(spaces.module(module), offset);
    assert_eq!(
        &*r.frames[0].function,
        format!("[kernel.kallsyms]+{addr:#x}")
    );
    assert!(
        other.report()[0].problems[0]
            .to_string()
            .contains("recorded on another kernel (osrelease 5.10.0-test)")
    );
}

#[test]
fn kallsyms_file_option_and_kptr_restrict() {
    let (_scratch, path) = Scratch::with_file(
        "kallsyms",
        "kallsyms",
        "0000000000000000 T _stext\n0000000000000000 T schedule\n",
    );
    let spaces = kernel_space();
    let symbolizer = Symbolizer::new(SymbolizerOptions {
        kernel_matches: true,
        kallsyms: Some(path),
        ..SymbolizerOptions::default()
    });
    let Location::Module { module, offset } = spaces.locate(0, Avma(0xffff_ffff_8100_0010), true)
    else {
        panic!()
    };
    let r = symbolizer.symbolize(spaces.module(module), offset);
    assert_eq!(r.status, Status::Unresolved(Problem::KptrRestrict));
    let standalone = Module::new("[kernel.kallsyms]", None, crate::ModuleKind::Kernel, None);
    let r = symbolizer.symbolize(&standalone, ModuleOffset(0xffff_ffff_8100_0010));
    assert_eq!(
        &*r.frames[0].function,
        "[kernel.kallsyms]+0xffffffff81000010"
    );
    assert!(
        symbolizer.report()[0].problems[0]
            .to_string()
            .contains("kernel.kptr_restrict=0")
    );
}

#[test]
fn vdso_from_own_image() {
    use object::{Object, ObjectSymbol};
    let spaces = own_address_space();
    let Some((module_id, module)) = spaces.modules().find(|(_, m)| &*m.path == "[vdso]") else {
        eprintln!("skipping: no [vdso]");
        return;
    };
    let _ = module_id;
    let image = crate::symbolize::read_own_vdso().unwrap();
    let file = object::File::parse(&*image).unwrap();
    let sym = file
        .dynamic_symbols()
        .find(|s| s.name() == Ok("__vdso_clock_gettime"))
        .expect("vdso exports __vdso_clock_gettime");
    let symbolizer = Symbolizer::new(SymbolizerOptions {
        kernel_matches: true,
        ..SymbolizerOptions::default()
    });
    // The vdso's single LOAD segment starts at offset 0 and vaddr 0.
    let r = symbolizer.symbolize(module, ModuleOffset(sym.address() + 1));
    assert_eq!(r.status, Status::Resolved);
    assert!(
        r.frames[0].function.contains("clock_gettime"),
        "{}",
        r.frames[0].function
    );
    let other = Symbolizer::new(SymbolizerOptions::default());
    let r = other.symbolize(module, ModuleOffset(sym.address()));
    assert!(matches!(
        r.status,
        Status::Unresolved(Problem::OtherKernel { .. })
    ));
}

#[test]
fn jit_perf_map() {
    let pid = 3_999_000_000u32 + std::process::id() % 1000;
    let map_path = PathBuf::from(format!("/tmp/perf-{pid}.map"));
    std::fs::write(&map_path, "7f0000001000 100 jitted_fn\n").unwrap();
    let mut spaces = AddressSpaces::new();
    for p in [pid, pid + 1] {
        spaces.mmap(
            p,
            MappingInfo::user(Avma(0x7f00_0000_0000), 0x10000, 0, b"//anon"),
        );
    }
    let symbolizer = Symbolizer::new(SymbolizerOptions::default());
    let at = |p: u32| {
        let Location::Module { module, offset } = spaces.locate(p, Avma(0x7f00_0000_1010), false)
        else {
            panic!()
        };
        symbolizer.symbolize(spaces.module(module), offset)
    };
    let hit = at(pid);
    let miss = at(pid + 1);
    let _ = std::fs::remove_file(&map_path);
    assert_eq!(&*hit.frames[0].function, "jitted_fn");
    assert_eq!(miss.status, Status::Unresolved(Problem::NoPerfMap));
    assert_eq!(&*miss.frames[0].function, "//anon+0x7f0000001010");
}

// ---- inlined C++ frames ---------------------------------------------------------------

/// `c++filt --no-params` of every symbol of `binary` (as `nm` lists them).
fn demangled_symbols(binary: &Path) -> Option<Vec<String>> {
    let nm = run(Command::new("nm").arg(binary))?;
    let mangled: Vec<&str> = nm
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let out = run(Command::new("c++filt").arg("--no-params").args(&mangled))?;
    Some(out.lines().map(str::to_string).collect())
}

// See: issue #10 point 9
#[test]
fn inlined_cxx_frames_are_named_as_their_out_of_line_copies() {
    // `fill` in names.cpp calls std::generate_n with a lambda; at -O2 both are inlined into it
    // and GCC gives neither a linkage name, only `generate_n<…>` and `operator()`. Every
    // address of every function of the -O2 binary is symbolized; the oracle is the -O0
    // binary's symbols, demangled by c++filt.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/workloads/names.cpp");
    let compiled = Scratch::new("cxx-inline");
    let gxx = |flags: &[&str], out: &str| {
        run(Command::new("g++")
            .args(flags)
            .args(["-std=c++17", "-fPIE", "-pie"])
            .arg(&source)
            .arg("-o")
            .arg(compiled.dir.join(out)))
    };
    if gxx(&["-O0"], "out_of_line").is_none() || gxx(&["-O2", "-g"], "inlined").is_none() {
        eprintln!("skipping: g++ not available");
        return;
    }
    // The oracle: the names the same functions have where they are not inlined (-O0).
    let Some(out_of_line) = demangled_symbols(&compiled.dir.join("out_of_line")) else {
        eprintln!("skipping: binutils not available");
        return;
    };
    let wanted = kprof_test_support::workloads::inlined_into_fill(&out_of_line);
    assert_eq!(wanted.len(), 2, "{wanted:?}");

    let bin = compiled.dir.join("inlined");
    let Some(out_of_line_names) = demangled_symbols(&compiled.dir.join("out_of_line")) else {
        return;
    };
    let out_of_line_names: std::collections::HashSet<String> =
        out_of_line_names.into_iter().collect();
    // Every function of the -O2 binary, by `nm -S`.
    let nm = run(Command::new("nm").arg("-S").arg(&bin)).unwrap();
    let functions: Vec<(u64, u64)> = nm
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && matches!(f[2], "t" | "T" | "W")).then(|| {
                (
                    u64::from_str_radix(f[0], 16).unwrap(),
                    u64::from_str_radix(f[1], 16).unwrap(),
                )
            })
        })
        .collect();
    let loads = loads(&bin).unwrap();
    let spaces = map_file(&bin, None);
    let symbolizer = Symbolizer::new(options(false, true));
    let mut inlined = std::collections::BTreeSet::new();
    for (svma, size) in functions {
        let offset = svma_to_offset(svma, &loads);
        for delta in 0..size {
            let r = symbolize_file_offset(&symbolizer, &spaces, offset + delta);
            for frame in r.frames.iter().filter(|f| f.inlined) {
                inlined.insert(frame.function.to_string());
            }
        }
    }
    for name in wanted {
        assert!(
            inlined.contains(name.as_str()),
            "{name} is not among the inlined frames: {inlined:#?}"
        );
    }
    // Every inlined lambda (and function named after one) is named as at -O0, numbered as
    // GCC numbers closures. Left out: generic lambdas (`auto:1`), on which the demangler
    // still misses a `&&` (issue #10 point 8), and std::variant's `__gen_vtable_impl`, whose
    // `std::integer_sequence` DWARF declares without template parameters, so it keeps GCC's
    // spelling (`<long unsigned int, 0>`).
    let mut checked = 0;
    for name in &inlined {
        assert_ne!(name, "operator()");
        if name.contains("lambda") && !name.contains("auto:") && !name.contains("integer_sequence")
        {
            checked += 1;
            assert!(
                out_of_line_names.contains(name),
                "inlined {name} has no out-of-line namesake"
            );
        }
    }
    assert!(
        checked >= 10,
        "only {checked} inlined lambda frames: {inlined:#?}"
    );
}

/// glibc's string and math entry points (`memchr`, `strlen`, `expf`) are STT_GNU_IFUNC
/// resolvers; perf names addresses in them after the IFUNC symbol, so kprof must too.
// See: issue #10 point 5 (aliases named as perf names them; the parallel-build oracle).
#[test]
fn ifunc_symbols_name_their_code() {
    use object::{Object, ObjectSymbol};
    let addr = libc::malloc as unsafe extern "C" fn(usize) -> *mut libc::c_void as usize as u64;
    let spaces = own_address_space();
    let (module, _) = locate_self(&spaces, addr);
    let bytes = std::fs::read(&*module.path).expect("libc readable");
    let file = object::File::parse(&*bytes).expect("libc parses");
    let ifuncs: Vec<(String, u64)> = file
        .dynamic_symbols()
        .filter(|s| {
            matches!(s.flags(), object::SymbolFlags::Elf { st_info, .. }
                if st_info.st_type() == object::elf::STT_GNU_IFUNC)
                && s.address() != 0
        })
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.address())))
        .collect();
    assert!(
        ifuncs.iter().any(|(name, _)| name == "memchr"),
        "{} has no IFUNC memchr",
        module.path
    );
    let image = crate::elf::ElfImage::parse(crate::SharedBytes::from_vec(bytes.clone()), true)
        .expect("libc parses as an image");
    for (name, address) in ifuncs
        .iter()
        .filter(|(n, _)| n == "memchr" || n == "strlen")
    {
        let index = image
            .symbols
            .lookup(crate::elf::Svma(*address))
            .unwrap_or_else(|| panic!("no symbol covers IFUNC {name} at {address:#x}"));
        let found = image.symbols.name(index).expect("named");
        // An alias at the same address may win by perf's ranking, but never a neighbour.
        let aliases: Vec<String> = file
            .dynamic_symbols()
            .filter(|s| s.address() == *address)
            .filter_map(|s| s.name().ok().map(str::to_string))
            .collect();
        assert!(
            aliases.iter().any(|alias| *alias == *found),
            "IFUNC {name} at {address:#x} is named {found}, not one of {aliases:?}"
        );
    }
}
