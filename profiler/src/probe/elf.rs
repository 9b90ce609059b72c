//! What probing needs from an ELF file: its function symbols (from `.symtab` and `.dynsym`,
//! matched by mangled or demangled name), the file offset of a virtual address (through the
//! `PT_LOAD` program headers), and whether it is stripped. Reading is done with `object`.

use std::path::Path;

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

use super::error::ProbeError;

/// A function symbol of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSymbol {
    /// The symbol's name as stored (mangled for C++ and Rust).
    pub name: String,
    /// The demangled name, when the stored name is mangled.
    pub demangled: Option<String>,
    /// Its virtual address in the file's own address space.
    pub address: u64,
    /// Its size in bytes (0 when the symbol table does not say).
    pub size: u64,
}

impl FunctionSymbol {
    /// The name to show: demangled when mangled.
    pub fn display_name(&self) -> &str {
        self.demangled.as_deref().unwrap_or(&self.name)
    }

    /// True when `wanted` names this symbol: the stored name, the demangled name, or the
    /// demangled name without its parameter list (`ns::f` for `ns::f(int)`).
    pub fn is_named(&self, wanted: &str) -> bool {
        if self.name == wanted {
            return true;
        }
        let Some(demangled) = &self.demangled else {
            return false;
        };
        demangled == wanted || without_params(demangled) == wanted
    }
}

/// `ns::f(int) const` → `ns::f`: the name before the parameter list (a C++ operator's own
/// parentheses, `operator()`, are kept).
fn without_params(name: &str) -> &str {
    let search_from = name
        .find("operator()")
        .map_or(0, |at| at + "operator()".len());
    match name.get(search_from..).and_then(|tail| tail.find('(')) {
        Some(paren) => &name[..search_from + paren],
        None => name,
    }
}

/// Demangles C++ (`_Z`) and Rust (`_R`, legacy `_ZN…E` with a hash) names; `None` for names
/// that are not mangled.
pub fn demangle(name: &str) -> Option<String> {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        return Some(format!("{rust:#}"));
    }
    if name.starts_with("_Z") {
        let symbol = cpp_demangle::Symbol::new(name).ok()?;
        return symbol.demangle().ok();
    }
    None
}

/// An ELF file read for probing.
#[derive(Debug)]
pub struct ElfImage {
    data: Vec<u8>,
}

/// The ELF magic.
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

impl ElfImage {
    /// Reads `path`; an error unless it is an ELF file kprof can parse.
    pub fn open(path: &Path) -> Result<ElfImage, ProbeError> {
        let data = std::fs::read(path).map_err(|error| ProbeError::Read {
            path: path.to_owned(),
            error,
        })?;
        ElfImage::from_bytes(data, path)
    }

    /// Takes the bytes of `path` (named in errors).
    pub fn from_bytes(data: Vec<u8>, path: &Path) -> Result<ElfImage, ProbeError> {
        if !data.starts_with(ELF_MAGIC) {
            return Err(ProbeError::NotElf {
                path: path.to_owned(),
                reason: "no ELF header".to_owned(),
            });
        }
        if let Err(e) = object::File::parse(&*data) {
            return Err(ProbeError::NotElf {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
        Ok(ElfImage { data })
    }

    /// The parsed file.
    pub fn object(&self) -> Result<object::File<'_>, object::Error> {
        object::File::parse(&*self.data)
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// True without a `.symtab` (only the dynamic symbols, if any, are left).
    pub fn is_stripped(&self) -> bool {
        self.object()
            .map(|file| file.symbol_table().is_none())
            .unwrap_or(true)
    }

    /// Every defined function symbol of `.symtab` and `.dynsym`, deduplicated by name and
    /// address, sorted by address.
    pub fn functions(&self) -> Vec<FunctionSymbol> {
        let Ok(file) = self.object() else {
            return Vec::new();
        };
        let mut out: Vec<FunctionSymbol> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                if name.is_empty() {
                    return None;
                }
                // `.dynsym` versions (`malloc@@GLIBC_2.2.5`) are not part of the name.
                let name = name.split('@').next().unwrap_or(name);
                Some(FunctionSymbol {
                    name: name.to_owned(),
                    demangled: demangle(name),
                    address: s.address(),
                    size: s.size(),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.address, &a.name).cmp(&(b.address, &b.name)));
        out.dedup_by(|a, b| a.address == b.address && a.name == b.name);
        out
    }

    /// The file offset of virtual address `vaddr`, through the `PT_LOAD` segment holding it.
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        let file = self.object().ok()?;
        file.segments().find_map(|segment| {
            let (offset, file_size) = segment.file_range();
            let start = segment.address();
            let delta = vaddr.checked_sub(start)?;
            (delta < file_size).then(|| offset + delta)
        })
    }
}

/// Names among `candidates` close to `wanted`: the same up to case or a few edits, or holding
/// it; closest first, at most `limit`.
pub fn close_matches<'a>(
    wanted: &str,
    candidates: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Vec<String> {
    let lower = wanted.to_ascii_lowercase();
    let budget = (wanted.len() / 3).clamp(2, 3);
    let mut scored: Vec<(usize, usize, &str)> = candidates
        .filter_map(|name| {
            let name_lower = name.to_ascii_lowercase();
            let distance = strsim::levenshtein(&lower, &name_lower);
            if distance <= budget {
                Some((distance, name.len(), name))
            } else if lower.len() >= 3 && name_lower.contains(&lower) {
                Some((budget + 1, name.len(), name))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.2 == b.2);
    scored
        .into_iter()
        .take(limit)
        .map(|(_, _, n)| n.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangled_names_match_with_or_without_parameters() {
        let s = FunctionSymbol {
            name: "_ZN2ns4workEi".into(),
            demangled: demangle("_ZN2ns4workEi"),
            address: 0x1000,
            size: 10,
        };
        assert_eq!(s.demangled.as_deref(), Some("ns::work(int)"));
        assert!(s.is_named("ns::work"));
        assert!(s.is_named("ns::work(int)"));
        assert!(s.is_named("_ZN2ns4workEi"));
        assert!(!s.is_named("work"));
        assert_eq!(without_params("S::operator()(int)"), "S::operator()");
        assert_eq!(demangle("malloc"), None);
    }

    #[test]
    fn close_matches_rank_by_distance() {
        let names = ["malloc", "calloc", "realloc", "free", "malloc_usable_size"];
        let m = close_matches("maloc", names.iter().copied(), 3);
        assert_eq!(m.first().map(String::as_str), Some("malloc"));
        assert!(close_matches("zzzzzz", names.iter().copied(), 3).is_empty());
        let sub = close_matches("usable", names.iter().copied(), 3);
        assert_eq!(sub, ["malloc_usable_size"]);
    }

    #[test]
    fn own_test_binary_symbols_and_offsets() {
        let exe = std::env::current_exe().unwrap();
        let image = ElfImage::open(&exe).unwrap();
        let functions = image.functions();
        assert!(!functions.is_empty());
        // Every function's address maps into the file.
        let f = functions.iter().find(|f| f.size > 0).unwrap();
        let offset = image.file_offset(f.address).unwrap();
        assert!(offset < image.bytes().len() as u64);
        let not_elf = ElfImage::from_bytes(b"#!/bin/sh\n".to_vec(), Path::new("x.sh"));
        assert!(matches!(not_elf, Err(ProbeError::NotElf { .. })));
    }
}
