//! USDT `sym(%rip)` operands: globals read from the probed process's memory. A note's
//! operand names a symbol (`-8@answer(%rip)`); its value lies at the symbol's link-time address
//! moved by the file's load bias in that process, which `/proc/PID/maps` gives. The bytes are
//! read through `/proc/PID/mem` (safe file I/O; root or a ptrace-capable tracer may read it).
//!
//! A perf sample carries registers and a stack copy, never a global: kprof reads the global
//! when it decodes the sample, not at the hit. A variable that changes between the hit and
//! the read (a live trace decodes every ~0.1 s) shows its later value; a process that has
//! exited cannot be read at all (the argument then shows its address, `argN_addr`).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::elf::ElfImage;

/// Where a `sym(%rip)` operand's value lies in its file: the link-time address of the value
/// (`sym + displacement`) and the first loadable segment, whose mapping gives the load bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalOperand {
    /// Link-time address of the value.
    pub vaddr: u64,
    /// `p_offset` of the file's first `PT_LOAD` segment.
    pub first_load_offset: u64,
    /// `p_vaddr` of that segment.
    pub first_load_vaddr: u64,
}

impl GlobalOperand {
    /// The operand `symbol + displacement` of `image`; `None` when the symbol is not defined
    /// there or the file has no loadable segment.
    pub fn find(image: &ElfImage, symbol: &str, displacement: i64) -> Option<GlobalOperand> {
        use object::{Object, ObjectSegment, ObjectSymbol};
        let file = image.object().ok()?;
        let address = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.is_definition() && s.address() != 0)
            .find(|s| {
                s.name()
                    .is_ok_and(|n| n.split('@').next().unwrap_or(n) == symbol)
            })?
            .address();
        let first = file.segments().min_by_key(|s| s.address())?;
        Some(GlobalOperand {
            vaddr: address.wrapping_add_signed(displacement),
            first_load_offset: first.file_range().0,
            first_load_vaddr: first.address(),
        })
    }

    /// The value's address in a process that mapped the file's first segment at `start`
    /// from file offset `pgoff`.
    pub fn relocated(&self, start: u64, pgoff: u64) -> u64 {
        // start maps file offset pgoff, i.e. link-time address
        // first_load_vaddr + (pgoff - first_load_offset).
        let linked = self
            .first_load_vaddr
            .wrapping_add(pgoff)
            .wrapping_sub(self.first_load_offset);
        let bias = start.wrapping_sub(linked);
        self.vaddr.wrapping_add(bias)
    }
}

/// The lowest mapping of `path` in a `/proc/PID/maps` text: `(start, file offset)`.
pub fn lowest_mapping(maps: &str, path: &Path) -> Option<(u64, u64)> {
    maps.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let range = parts.next()?;
            let _perms = parts.next()?;
            let pgoff = u64::from_str_radix(parts.next()?, 16).ok()?;
            let _dev = parts.next()?;
            let _inode = parts.next()?;
            let name: Vec<&str> = parts.collect();
            let name = name.join(" ");
            let name = name.strip_suffix(" (deleted)").unwrap_or(&name);
            if Path::new(name) != path {
                return None;
            }
            let start = u64::from_str_radix(range.split_once('-')?.0, 16).ok()?;
            Some((start, pgoff))
        })
        .min_by_key(|(start, _)| *start)
}

/// Reads globals of probed processes, keeping each process's memory file and load biases.
#[derive(Debug, Default)]
pub struct ProcessGlobals {
    processes: HashMap<u32, Option<Process>>,
}

#[derive(Debug)]
struct Process {
    mem: File,
    /// Lowest mapping of each file, as `(start, pgoff)`.
    mappings: HashMap<PathBuf, (u64, u64)>,
}

impl ProcessGlobals {
    /// The `size` bytes (1, 2, 4 or 8) of `global` of file `path` in process `pid`, as a
    /// little-endian word; `None` when the process or its mapping of `path` is gone.
    pub fn read(&mut self, pid: u32, path: &Path, global: &GlobalOperand, size: u8) -> Option<u64> {
        let process = self
            .processes
            .entry(pid)
            .or_insert_with(|| {
                File::open(format!("/proc/{pid}/mem"))
                    .ok()
                    .map(|mem| Process {
                        mem,
                        mappings: HashMap::new(),
                    })
            })
            .as_mut()?;
        let (start, pgoff) = match process.mappings.get(path) {
            Some(found) => *found,
            None => {
                // Not cached until found: a library may be mapped later (dlopen).
                let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
                let found = lowest_mapping(&maps, path)?;
                process.mappings.insert(path.to_owned(), found);
                found
            }
        };
        let address = global.relocated(start, pgoff);
        let mut word = [0u8; 8];
        let bytes = word.get_mut(..usize::from(size))?;
        process.mem.read_exact_at(bytes, address).ok()?;
        // The probed architectures (x86_64, aarch64) are little-endian.
        Some(u64::from_le_bytes(word))
    }

    /// Forgets process `pid` (it exited; its pid may be reused).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A global of this test binary, read back through our own /proc/PID/mem.
    static KPROF_GLOBALS_TEST_VALUE: u64 = 0x1234_5678_9abc_def0;

    #[test]
    fn a_global_of_our_own_process_reads_back() {
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        let image = ElfImage::open(&exe).unwrap();
        let expected = std::hint::black_box(&KPROF_GLOBALS_TEST_VALUE);
        // Its mangled name (`_ZN...24KPROF_GLOBALS_TEST_VALUE17h...E`).
        let name = {
            use object::{Object, ObjectSymbol};
            let file = image.object().unwrap();
            file.symbols()
                .filter_map(|s| s.name().ok().map(str::to_owned))
                .find(|n| n.contains("KPROF_GLOBALS_TEST_VALUE"))
                .unwrap()
        };
        let global = GlobalOperand::find(&image, &name, 0).unwrap();
        let plus4 = GlobalOperand::find(&image, &name, 4).unwrap();
        assert_eq!(plus4.vaddr, global.vaddr + 4);
        let mut globals = ProcessGlobals::default();
        let pid = std::process::id();
        assert_eq!(globals.read(pid, &exe, &global, 8), Some(*expected));
        assert_eq!(globals.read(pid, &exe, &global, 2), Some(0xdef0));
        assert_eq!(globals.read(pid, &exe, &plus4, 4), Some(0x1234_5678));
        assert!(GlobalOperand::find(&image, "no_such_global_anywhere", 0).is_none());
        assert_eq!(
            globals.read(pid, Path::new("/not/mapped"), &global, 8),
            None
        );
    }

    #[test]
    fn relocation_uses_the_lowest_mapping() {
        let maps = "\
5600_0000_0000-5600_0000_1000 r--p 00000000 fd:01 12 /bin/prog
5600_0000_1000-5600_0000_2000 r-xp 00001000 fd:01 12 /bin/prog
7f00_0000_0000-7f00_0000_1000 r--p 00000000 fd:01 13 /lib/other.so
"
        .replace('_', "");
        let found = lowest_mapping(&maps, Path::new("/bin/prog"));
        assert_eq!(found, Some((0x5600_0000_0000, 0)));
        let pie = GlobalOperand {
            vaddr: 0x4020,
            first_load_offset: 0,
            first_load_vaddr: 0,
        };
        assert_eq!(pie.relocated(0x5600_0000_0000, 0), 0x5600_0000_4020);
        // A non-PIE file is mapped where it was linked: no bias.
        let fixed = GlobalOperand {
            vaddr: 0x404020,
            first_load_offset: 0,
            first_load_vaddr: 0x400000,
        };
        assert_eq!(fixed.relocated(0x400000, 0), 0x404020);
        assert_eq!(lowest_mapping(&maps, Path::new("/bin/none")), None);
    }
}
