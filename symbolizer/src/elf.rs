//! ELF files: build-id, PT_LOAD segments (file offset → SVMA) and the merged `.symtab` + `.dynsym` table.

use std::sync::{Arc, OnceLock};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use rustc_hash::FxHashMap as HashMap;

use crate::mapped::SharedBytes;
use crate::plt::PltTable;

/// A stated virtual memory address: an address as the ELF file's headers and symbols use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Svma(pub u64);

#[derive(Debug, Clone, Copy)]
struct Segment {
    file_start: u64,
    file_end: u64,
    svma: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sym {
    start: u64,
    size: u64,
    name_at: usize,
    name_len: u32,
}

/// A sorted function symbol table whose names point into the file's bytes.
#[derive(Debug)]
pub(crate) struct SymbolTable {
    bytes: SharedBytes,
    /// Start addresses, apart from the rest so the binary search touches few cache lines.
    starts: Vec<u64>,
    syms: Vec<Sym>,
    names: Vec<OnceLock<Arc<str>>>,
    /// Aliases whose rank only their printed names decide, by the index of their address's
    /// symbol: ranked when the symbol is first named (see [`SymbolTable::build`]).
    unranked: HashMap<usize, Box<[Candidate]>>,
    /// Whether names are demangled.
    demangle_names: bool,
}

/// A function symbol of the file and what perf's choice among aliases looks at.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    sym: Sym,
    zero_size: bool,
    weak: bool,
    not_global: bool,
    /// Position in the symbol table: the first of equals wins.
    order: usize,
}

impl Candidate {
    /// What ranks aliases before their names do, best first: a sized symbol over a size-0
    /// one, non-weak over weak, `STB_GLOBAL` over any other binding.
    fn nameless_rank(&self) -> (bool, bool, bool) {
        (self.zero_size, self.weak, self.not_global)
    }
}

impl SymbolTable {
    /// The function symbols of `file`: its `.symtab`, or `.dynsym` when it has none (perf reads
    /// one or the other, never both), one per address.
    ///
    /// Aliases at one address are ranked like perf's `choose_best_symbol` (util/symbol.c), so
    /// that kprof and `perf report` name a function the same way: a sized symbol over a size-0
    /// one, non-weak over weak, `STB_GLOBAL` over any other binding, fewer leading underscores,
    /// the longer name, and finally the first one in table order. perf compares the names it
    /// prints (demangled unless `--no-demangle`), so kprof compares the names it prints too:
    /// `<usize as core::fmt::Display>::fmt` wins over its folded twin `<u64 as …>::fmt`.
    fn build(bytes: SharedBytes, file: &object::File<'_>, demangle_names: bool) -> Self {
        let base = bytes.as_ptr() as usize;
        // Like perf, code labels count too: untyped symbols (`_dl_start_user` in ld.so,
        // assembly entry points) defined in an executable section.
        let is_code_label = |symbol: &object::Symbol<'_, '_>| {
            symbol.kind() == SymbolKind::Unknown
                && match symbol.section() {
                    // By flag, not kind: in a separate debug file `.text` is NOBITS.
                    object::SymbolSection::Section(index) => {
                        file.section_by_index(index).is_ok_and(|section| {
                            matches!(section.flags(), object::SectionFlags::Elf { sh_flags, .. }
                                if sh_flags.0 & object::elf::SHF_EXECINSTR.0 != 0)
                        })
                    }
                    _ => false,
                }
        };
        let symbols: Box<dyn Iterator<Item = object::Symbol<'_, '_>>> =
            if file.symbols().next().is_some() {
                Box::new(file.symbols())
            } else {
                Box::new(file.dynamic_symbols())
            };
        let mut candidates: Vec<Candidate> = Vec::new();
        for (order, symbol) in symbols.enumerate() {
            // `is_definition` is false for STT_GNU_IFUNC (glibc's `memchr`, `expf`), which
            // perf counts as functions: a Text symbol defined in a section is code.
            let code = (symbol.kind() == SymbolKind::Text
                && matches!(symbol.section(), object::SymbolSection::Section(_)))
                || is_code_label(&symbol);
            if !code || symbol.address() == 0 {
                continue;
            }
            let Ok(name) = symbol.name_bytes() else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let Some(name_at) = (name.as_ptr() as usize).checked_sub(base) else {
                continue;
            };
            let Ok(name_len) = u32::try_from(name.len()) else {
                continue;
            };
            let binding = match symbol.flags() {
                object::SymbolFlags::Elf { st_info, .. } => st_info.st_bind(),
                _ if symbol.is_global() => object::elf::STB_GLOBAL,
                _ => object::elf::STB_LOCAL,
            };
            candidates.push(Candidate {
                sym: Sym {
                    start: symbol.address(),
                    size: symbol.size(),
                    name_at,
                    name_len,
                },
                zero_size: symbol.size() == 0,
                weak: binding == object::elf::STB_WEAK,
                not_global: binding != object::elf::STB_GLOBAL,
                order,
            });
        }
        candidates.sort_unstable_by_key(|c| (c.sym.start, c.order));
        let mut syms = Vec::with_capacity(candidates.len());
        let mut names = Vec::with_capacity(candidates.len());
        let mut unranked = HashMap::default();
        for group in candidates.chunk_by(|a, b| a.sym.start == b.sym.start) {
            // Aliases: the ranks that need no name first. Printed names (demangling, for the
            // C1/C2 constructor twins of a C++ library, half of loading its table) rank the
            // best of them when it is first named, unless their sizes differ: the size
            // decides which addresses the symbol covers.
            // Most symbols have no alias: no copy of the group for them.
            if let [only] = group {
                syms.push(only.sym);
                names.push(OnceLock::new());
                continue;
            }
            let Some(best) = group.iter().map(Candidate::nameless_rank).min() else {
                continue;
            };
            let tied: Box<[Candidate]> = group
                .iter()
                .filter(|c| c.nameless_rank() == best)
                .copied()
                .collect();
            match &*tied {
                [only] => {
                    syms.push(only.sym);
                    names.push(OnceLock::new());
                }
                [first, ..] if tied.iter().all(|c| c.sym.size == first.sym.size) => {
                    syms.push(first.sym);
                    names.push(OnceLock::new());
                    unranked.insert(syms.len() - 1, tied);
                }
                _ => {
                    if let Some((c, name)) = Self::rank_by_name(&bytes, demangle_names, &tied) {
                        syms.push(c.sym);
                        names.push(OnceLock::from(name));
                    }
                }
            }
        }
        let starts = syms.iter().map(|s| s.start).collect();
        Self {
            bytes,
            starts,
            syms,
            names,
            unranked,
            demangle_names,
        }
    }

    /// The best of aliases `tied` on what perf ranks them by once their other ranks are
    /// equal: fewer leading underscores of the printed name, the longer printed name, the
    /// first in table order; with its printed name.
    fn rank_by_name<'c>(
        bytes: &SharedBytes,
        demangle_names: bool,
        tied: &'c [Candidate],
    ) -> Option<(&'c Candidate, Arc<str>)> {
        let printed = |c: &Candidate| -> Arc<str> {
            let raw = bytes
                .get(c.sym.name_at..c.sym.name_at + c.sym.name_len as usize)
                .unwrap_or_default();
            crate::cap::symbol_name(raw, demangle_names)
        };
        tied.iter()
            .map(|c| (c, printed(c)))
            .min_by_key(|(c, name)| {
                let underscores = name.bytes().take_while(|&b| b == b'_').count();
                (underscores, std::cmp::Reverse(name.len()), c.order)
            })
    }

    /// The index of the symbol containing `svma`: the one whose `[start, start+size)` covers
    /// it, or for a size-0 symbol the nearest preceding one.
    pub(crate) fn lookup(&self, svma: Svma) -> Option<usize> {
        let i = self
            .starts
            .partition_point(|&s| s <= svma.0)
            .checked_sub(1)?;
        let s = self.syms.get(i)?;
        (s.size == 0 || svma.0 - s.start < s.size).then_some(i)
    }

    /// The name of symbol `index` (demangled if the table was built so), computed once.
    pub(crate) fn name(&self, index: usize) -> Option<Arc<str>> {
        let sym = self.syms.get(index)?;
        let cell = self.names.get(index)?;
        let name = cell.get_or_init(|| {
            if let Some((_, name)) = self
                .unranked
                .get(&index)
                .and_then(|tied| Self::rank_by_name(&self.bytes, self.demangle_names, tied))
            {
                return name;
            }
            let raw = self
                .bytes
                .get(sym.name_at..sym.name_at + sym.name_len as usize)
                .unwrap_or_default();
            crate::cap::symbol_name(raw, self.demangle_names)
        });
        Some(Arc::clone(name))
    }
}

/// A parsed ELF file: what symbolization needs, built once per module.
#[derive(Debug)]
pub(crate) struct ElfImage {
    pub(crate) bytes: SharedBytes,
    pub(crate) build_id: Option<Vec<u8>>,
    segments: Vec<Segment>,
    pub(crate) symbols: SymbolTable,
    /// The stubs of `.plt`, `.plt.sec` and `.plt.got`, named `function@plt`.
    pub(crate) plt: PltTable,
    pub(crate) has_symtab: bool,
    pub(crate) has_dwarf: bool,
    pub(crate) debuglink: Option<Vec<u8>>,
}

impl ElfImage {
    /// Parses `bytes` as an ELF (or any `object`-supported) file, naming symbols demangled
    /// or not.
    pub(crate) fn parse(bytes: SharedBytes, demangle_names: bool) -> Result<Self, String> {
        let file = object::File::parse(&*bytes).map_err(|e| e.to_string())?;
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        let mut segments: Vec<Segment> = file
            .segments()
            .filter_map(|seg| {
                let (off, size) = seg.file_range();
                (size > 0).then(|| Segment {
                    file_start: off,
                    file_end: off.saturating_add(size),
                    svma: seg.address(),
                })
            })
            .collect();
        segments.sort_unstable_by_key(|s| s.file_start);
        let has_symtab = file.section_by_name(".symtab").is_some();
        let has_dwarf = file.section_by_name(".debug_info").is_some()
            || file.section_by_name(".zdebug_info").is_some();
        let debuglink = file
            .gnu_debuglink()
            .ok()
            .flatten()
            .map(|(name, _crc)| name.to_vec());
        let symbols = SymbolTable::build(bytes.clone(), &file, demangle_names);
        drop(file);
        let plt = PltTable::build(&bytes, demangle_names, &|address| {
            let index = symbols.lookup(Svma(address))?;
            (symbols.starts.get(index) == Some(&address))
                .then(|| symbols.name(index))
                .flatten()
        });
        Ok(Self {
            bytes,
            build_id,
            segments,
            symbols,
            plt,
            has_symtab,
            has_dwarf,
            debuglink,
        })
    }

    /// Translates a file offset to the SVMA through the PT_LOAD segment containing it.
    pub(crate) fn svma_of_offset(&self, offset: u64) -> Option<Svma> {
        if self.segments.is_empty() {
            // A relocatable or odd file: treat offsets as addresses.
            return Some(Svma(offset));
        }
        // Segments may overlap in file offsets (prelinked/odd layouts); take the last that covers it.
        self.segments
            .iter()
            .rev()
            .find(|s| s.file_start <= offset && offset < s.file_end)
            .map(|s| Svma(s.svma.wrapping_add(offset - s.file_start)))
    }

    /// Builds a symbol table from a separate debug file, used when this file lacks `.symtab`.
    pub(crate) fn symbols_only(
        bytes: SharedBytes,
        demangle_names: bool,
    ) -> Result<(SymbolTable, bool), String> {
        let file = object::File::parse(&*bytes).map_err(|e| e.to_string())?;
        let has_symtab = file.section_by_name(".symtab").is_some();
        Ok((
            SymbolTable::build(bytes.clone(), &file, demangle_names),
            has_symtab,
        ))
    }
}

/// Reads the build-id note of the ELF file in `bytes`.
pub(crate) fn build_id_of(bytes: &[u8]) -> Option<Vec<u8>> {
    let file = object::File::parse(bytes).ok()?;
    file.build_id().ok().flatten().map(<[u8]>::to_vec)
}

/// True when a build-id recorded by perf (zero-padded to 20 bytes) names the file's build-id.
pub fn build_ids_match(recorded: &[u8], file: &[u8]) -> bool {
    match recorded.get(..file.len()) {
        Some(prefix) => {
            prefix == file
                && recorded
                    .get(file.len()..)
                    .is_some_and(|r| r.iter().all(|&b| b == 0))
        }
        None => false,
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_padding() {
        assert!(build_ids_match(&[1, 2, 3, 0, 0], &[1, 2, 3]));
        assert!(build_ids_match(&[1, 2, 3], &[1, 2, 3]));
        assert!(!build_ids_match(&[1, 2, 4, 0], &[1, 2, 3]));
        assert!(!build_ids_match(&[1, 2, 3, 5], &[1, 2, 3]));
        assert!(!build_ids_match(&[1, 2], &[1, 2, 3]));
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(
            ElfImage::parse(
                SharedBytes::from_vec(b"\x7fELF\x02\x01\x01garbage".to_vec()),
                true
            )
            .is_err()
        );
        assert!(ElfImage::parse(SharedBytes::from_vec(Vec::new()), true).is_err());
    }
}
