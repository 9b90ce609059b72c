//! PLT stubs named `function@plt`: the entries of `.plt`, `.plt.sec` and `.plt.got` have no
//! symbols of their own, so they are synthesized from the relocations that fill their GOT slots,
//! following the rules of perf's `dso__synthesize_plt_symbols` (tools/perf/util/symbol-elf.c).
//!
//! Hand-written over `object`'s ELF structures: `object` reads relocations but knows nothing of
//! how a linker lays out PLT entries.

use std::sync::Arc;

use object::read::elf::{FileHeader, Rela, SectionHeader, SectionTable};
use object::{FileKind, elf};

use crate::demangle::demangle;

/// One PLT entry (or the PLT's header, named `.plt`).
#[derive(Debug, Clone)]
pub(crate) struct PltEntry {
    /// Its first address (an SVMA).
    pub(crate) start: u64,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// `function@plt`, demangled when asked.
    pub(crate) name: Arc<str>,
}

/// The PLT entries of an ELF file, sorted by address.
#[derive(Debug, Default)]
pub(crate) struct PltTable(Vec<PltEntry>);

impl PltTable {
    /// Synthesizes the PLT entries of the ELF file in `data` (none for other files or machines
    /// other than x86).
    ///
    /// `name_at` names the function starting at an address: the stub of an IFUNC in a static
    /// executable is named after the function its `R_X86_64_IRELATIVE` relocation resolves.
    pub(crate) fn build(
        data: &[u8],
        demangle_names: bool,
        name_at: &dyn Fn(u64) -> Option<Arc<str>>,
    ) -> Self {
        let entries = match FileKind::parse(data) {
            Ok(FileKind::Elf64) => {
                entries::<elf::FileHeader64<object::Endianness>>(data, demangle_names, name_at)
            }
            Ok(FileKind::Elf32) => {
                entries::<elf::FileHeader32<object::Endianness>>(data, demangle_names, name_at)
            }
            _ => None,
        };
        let mut entries = entries.unwrap_or_default();
        entries.sort_by_key(|e| e.start);
        Self(entries)
    }

    /// The entry covering `svma`, if any.
    pub(crate) fn lookup(&self, svma: u64) -> Option<&PltEntry> {
        let i = self.0.partition_point(|e| e.start <= svma).checked_sub(1)?;
        let entry = self.0.get(i)?;
        (svma - entry.start < entry.size).then_some(entry)
    }
}

/// A section's address, size, entry size and alignment.
struct Layout {
    address: u64,
    size: u64,
    entry_size: u64,
    align: u64,
}

fn layout<Elf: FileHeader>(
    sections: &SectionTable<'_, Elf>,
    endian: Elf::Endian,
    name: &[u8],
) -> Option<Layout> {
    let (_, section) = sections.section_by_name(endian, name)?;
    Some(Layout {
        address: section.sh_addr(endian).into(),
        size: section.sh_size(endian).into(),
        entry_size: section.sh_entsize(endian).into(),
        align: section.sh_addralign(endian).into(),
    })
}

/// The size of one x86 PLT entry (and of the lazy PLT's header): the section's entry size
/// when it is 8 or 16, else 8 for an 8-aligned section and 16 otherwise, as perf assumes.
fn x86_entry_size(section: &Layout) -> u64 {
    match section.entry_size {
        8 | 16 => section.entry_size,
        _ if section.align == 8 => 8,
        _ => 16,
    }
}

fn plt_name(name: &[u8], demangle_names: bool) -> Arc<str> {
    let name = String::from_utf8_lossy(name);
    if demangle_names {
        Arc::from(format!("{}@plt", demangle(&name)))
    } else {
        Arc::from(format!("{name}@plt"))
    }
}

fn entries<Elf: FileHeader<Endian = object::Endianness>>(
    data: &[u8],
    demangle_names: bool,
    name_at: &dyn Fn(u64) -> Option<Arc<str>>,
) -> Option<Vec<PltEntry>> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    if !matches!(header.e_machine(endian), elf::EM_X86_64 | elf::EM_386) {
        return None;
    }
    let sections = header.sections(endian, data).ok()?;
    let mut out = Vec::new();
    let plt = layout(&sections, endian, b".plt");
    // .plt.got: one entry per function called only through a GOT slot filled at load time
    // (`-z now`, or a function whose address is also taken), named by the `.rela.dyn`
    // relocation of the slot its `jmp *disp(%rip)` reads.
    if let Some((_, plt_got)) = sections.section_by_name(endian, b".plt.got") {
        let entry_size: u64 = plt_got.sh_entsize(endian).into();
        let address: u64 = plt_got.sh_addr(endian).into();
        let code = plt_got.data(endian, data).ok()?;
        let slots = got_slot_symbols::<Elf>(&sections, endian, data);
        for (i, entry) in code
            .chunks(usize::try_from(entry_size).ok().filter(|&n| n > 0)?)
            .enumerate()
        {
            let start = address + i as u64 * entry_size;
            let name = x86_jump_slot(entry, start)
                .and_then(|slot| slots.iter().find(|(at, _)| *at == slot))
                .map(|(_, name)| plt_name(name, demangle_names))
                .unwrap_or_else(|| Arc::from(format!("offset_{start:#x}@plt")));
            out.push(PltEntry {
                start,
                size: entry_size,
                name,
            });
        }
    }
    let Some(plt) = plt else {
        return Some(out);
    };
    let Some((_, rela_plt)) = sections.section_by_name(endian, b".rela.plt") else {
        return Some(out);
    };
    let Ok(Some((relocations, link))) = rela_plt.rela(endian, data) else {
        return Some(out);
    };
    // A static executable's .rela.plt may link no symbol table: its IFUNC relocations name
    // no symbol.
    let symbols = (link.0 != 0)
        .then(|| sections.symbol_table_by_index(endian, data, link).ok())
        .flatten();
    // The entries follow the order of the GOT slots they jump through.
    let mut relocations: Vec<_> = relocations.iter().collect();
    relocations.sort_by_key(|r| r.r_offset(endian).into());
    let plt_entry_size = x86_entry_size(&plt);
    let (mut start, entry_size) = match layout(&sections, endian, b".plt.sec") {
        // With IBT (`-fcf-protection`), calls go through .plt.sec; .plt holds only the lazy
        // binding code, named `.plt` as a whole.
        Some(sec) => {
            out.push(PltEntry {
                start: plt.address,
                size: plt.size,
                name: Arc::from(".plt"),
            });
            (sec.address, x86_entry_size(&sec))
        }
        // Without a header (one entry per relocation exactly) the PLT is not lazy.
        None if relocations.len() as u64 * plt_entry_size == plt.size => {
            (plt.address, plt_entry_size)
        }
        None => {
            out.push(PltEntry {
                start: plt.address,
                size: plt_entry_size,
                name: Arc::from(".plt"),
            });
            (plt.address + plt_entry_size, plt_entry_size)
        }
    };
    let is_mips64el = false;
    for relocation in relocations {
        let symbol_index = relocation.r_sym(endian, is_mips64el);
        let symbol_name = symbols
            .as_ref()
            .filter(|_| symbol_index != 0)
            .and_then(|table| {
                let symbol = table
                    .symbol(object::SymbolIndex(symbol_index as usize))
                    .ok()?;
                table.symbol_name(endian, symbol).ok()
            })
            .filter(|name| !name.is_empty());
        let name = match symbol_name {
            Some(name) => plt_name(name, demangle_names),
            None => {
                // An IFUNC resolved at load time: name it after the function at the addend.
                let target: i64 = relocation.r_addend(endian).into();
                u64::try_from(target)
                    .ok()
                    .and_then(name_at)
                    .map(|name| Arc::from(format!("{name}@plt")))
                    .unwrap_or_else(|| Arc::from(format!("offset_{start:#x}@plt")))
            }
        };
        out.push(PltEntry {
            start,
            size: entry_size,
            name,
        });
        start += entry_size;
    }
    Some(out)
}

/// The GOT slots named by `.rela.dyn` relocations with a symbol: (slot address, symbol name).
fn got_slot_symbols<'data, Elf: FileHeader<Endian = object::Endianness>>(
    sections: &SectionTable<'data, Elf>,
    endian: object::Endianness,
    data: &'data [u8],
) -> Vec<(u64, &'data [u8])> {
    let Some((_, rela_dyn)) = sections.section_by_name(endian, b".rela.dyn") else {
        return Vec::new();
    };
    let Ok(Some((relocations, link))) = rela_dyn.rela(endian, data) else {
        return Vec::new();
    };
    let Ok(symbols) = sections.symbol_table_by_index(endian, data, link) else {
        return Vec::new();
    };
    relocations
        .iter()
        .filter_map(|r| {
            let index = r.r_sym(endian, false);
            if index == 0 {
                return None;
            }
            let symbol = symbols.symbol(object::SymbolIndex(index as usize)).ok()?;
            let name = symbols.symbol_name(endian, symbol).ok()?;
            (!name.is_empty()).then(|| (r.r_offset(endian).into(), name))
        })
        .collect()
}

/// The GOT slot an x86-64 PLT entry at `address` jumps through: its `jmp *disp32(%rip)`, after
/// an optional `endbr64` and `bnd` prefix.
fn x86_jump_slot(entry: &[u8], address: u64) -> Option<u64> {
    let mut at = 0;
    if entry.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        at += 4;
    }
    if entry.get(at) == Some(&0xf2) {
        at += 1;
    }
    if entry.get(at..at + 2)? != [0xff, 0x25] {
        return None;
    }
    at += 2;
    let displacement = i32::from_le_bytes(entry.get(at..at + 4)?.try_into().ok()?);
    // RIP-relative: from the end of the instruction.
    let next = address.checked_add(at as u64 + 4)?;
    next.checked_add_signed(i64::from(displacement))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_slots_of_plt_got_entries() {
        // endbr64; bnd jmp *0x2fe2(%rip); nop (an IBT .plt.got entry)
        let entry = [
            0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0xe2, 0x2f, 0x00, 0x00, 0x0f, 0x1f, 0x44,
            0x00, 0x00,
        ];
        assert_eq!(x86_jump_slot(&entry, 0x1000), Some(0x1000 + 11 + 0x2fe2));
        // jmp *-0x10(%rip); xchg %ax,%ax (an 8-byte entry)
        let entry = [0xff, 0x25, 0xf0, 0xff, 0xff, 0xff, 0x66, 0x90];
        assert_eq!(x86_jump_slot(&entry, 0x2000), Some(0x2000 + 6 - 0x10));
        assert_eq!(x86_jump_slot(&[0x90; 8], 0x2000), None);
        assert_eq!(x86_jump_slot(&[0xff], 0x2000), None);
    }

    #[test]
    fn garbage_has_no_plt() {
        let table = PltTable::build(b"\x7fELF\x02\x01\x01garbage", true, &|_| None);
        assert!(table.lookup(0).is_none());
    }
}
