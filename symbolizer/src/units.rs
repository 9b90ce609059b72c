//! DWARF lookups one compilation unit at a time: `.debug_aranges` names the units that cover
//! an address, and only those are inflated and parsed, each into an `addr2line` context of its
//! own, so a profile pays for the units its addresses fall in rather than for the whole file.
//!
//! `addr2line::Context` reads the header and first entry of every unit when it is built, which
//! for a compressed debug file means inflating all of `.debug_info` (libc has 4,000 units).
//! Here a unit's context is built over a `.debug_info` that holds that unit alone, at its own
//! offset, behind one placeholder unit that `addr2line` skips; so offsets stay what the file
//! says and each lookup gives what the whole-file context gives.
//!
//! The whole-file context is still used for a unit whose entries may refer to other units
//! (`DW_FORM_ref_addr`, as link-time optimization emits), for files without `.debug_aranges`
//! (LLVM does not write it by default), and for an address that no `.debug_aranges` set covers
//! unless no unit can cover it: it lies in a PLT, or every unit has a set (as many sets as line
//! programs, as GCC writes them). A DEFLATE stream cannot be entered in the middle, so reading
//! a unit still inflates `.debug_info` up to it (see [`crate::sections`]).

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use gimli::{Reader as _, SectionId};
use object::{Object, ObjectSection};

use crate::mapped::SharedBytes;
use crate::section_cache::SectionCache;
use crate::sections::{SectionBytes, parse_object};

/// The gimli reader over shared, stable bytes.
pub(crate) type Reader = gimli::EndianReader<gimli::RunTimeEndian, SharedBytes>;

/// An addr2line context over some or all of a file's units.
pub(crate) type Context = addr2line::Context<Reader>;

/// Sections that addr2line reads at any offset, read whole on first use (they are small).
const SMALL_SECTIONS: [SectionId; 6] = [
    SectionId::DebugStr,
    SectionId::DebugLineStr,
    SectionId::DebugStrOffsets,
    SectionId::DebugAddr,
    SectionId::DebugRanges,
    SectionId::DebugRngLists,
];

/// Sections of linker-made stubs, which no compilation unit describes.
const PLT_SECTIONS: [&str; 4] = [".plt", ".plt.got", ".plt.sec", ".iplt"];

/// Length of the placeholder unit in front of a unit read alone: a DWARF 5 type unit header.
const PLACEHOLDER_LEN: usize = 24;

/// The DWARF of one file, read as lookups need it.
pub(crate) struct Dwarf {
    endian: gimli::RunTimeEndian,
    info: SectionBytes,
    abbrev: Option<SectionBytes>,
    line: Option<SectionBytes>,
    /// `.debug_aranges`, whole: the unit index, and used by addr2line for unit ranges.
    aranges: Option<SharedBytes>,
    small: Vec<(SectionId, SectionBytes)>,
    small_whole: OnceLock<Vec<(SectionId, SharedBytes)>>,
    /// `None` when the file has no usable `.debug_aranges`: then every lookup is whole-file.
    index: Option<UnitIndex>,
    /// One slot per unit of `index`, filled on the unit's first lookup.
    units: Vec<OnceLock<UnitContext>>,
    /// Whether every unit of the file has a `.debug_aranges` set, decided on first need.
    aranges_complete: OnceLock<bool>,
    /// Address ranges of the PLT sections.
    plts: Vec<std::ops::Range<u64>>,
    whole: OnceLock<Option<Mutex<Context>>>,
}

impl std::fmt::Debug for Dwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dwarf({} units indexed)", self.units.len())
    }
}

/// How lookups in one unit are made.
enum UnitContext {
    /// Through a context of this unit alone.
    Alone(Mutex<Context>),
    /// Through the whole-file context (the unit may refer to other units).
    Whole,
    /// The unit cannot be read: it contributes nothing, as the whole-file context skips it.
    Unreadable,
}

/// Address ranges → units, from `.debug_aranges`, ordered and searched as addr2line orders and
/// searches its own unit ranges, so that several units covering one address are tried in the
/// same order.
#[derive(Debug)]
struct UnitIndex {
    /// `.debug_info` offsets of the units with address ranges, ascending; a unit's id is its
    /// position here.
    offsets: Vec<usize>,
    /// Per unit id, the byte ranges of its sets in `.debug_aranges`: a unit's own context gets
    /// only those, since addr2line reads every set of the section it is given (for each of
    /// thousands of units read alone, that was the whole section each time).
    sets: Vec<Vec<std::ops::Range<usize>>>,
    /// The number of units with a set in `.debug_aranges`, with address ranges or not.
    units_with_sets: usize,
    /// Sorted by (end, unit id).
    ranges: Vec<UnitRange>,
}

#[derive(Debug)]
struct UnitRange {
    begin: u64,
    end: u64,
    /// The smallest `begin` of this range and all after it.
    min_begin: u64,
    unit: usize,
}

impl UnitIndex {
    fn parse(aranges: gimli::DebugAranges<Reader>) -> Option<Self> {
        let mut sets: Vec<(usize, gimli::Range)> = Vec::new();
        let mut units_with_sets = Vec::new();
        let mut set_bytes: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        let mut headers = aranges.headers();
        while let Some(header) = headers.next().ok()? {
            let unit = header.debug_info_offset().0;
            units_with_sets.push(unit);
            let start = header.offset().0;
            let end = start
                .checked_add(header.length())?
                .checked_add(usize::from(header.encoding().format.initial_length_size()))?;
            set_bytes.push((unit, start..end));
            let mut entries = header.entries();
            while let Some(entry) = entries.next().transpose() {
                // Like addr2line: skip a bad entry (an address overflow); the iterator stops
                // by itself on errors it cannot step over.
                let Ok(entry) = entry else { continue };
                if entry.length() != 0 {
                    sets.push((unit, entry.range()));
                }
            }
        }
        if sets.is_empty() {
            return None;
        }
        let mut offsets: Vec<usize> = sets.iter().map(|&(unit, _)| unit).collect();
        offsets.sort_unstable();
        offsets.dedup();
        let mut ranges: Vec<UnitRange> = sets
            .into_iter()
            .filter_map(|(offset, range)| {
                Some(UnitRange {
                    begin: range.begin,
                    end: range.end,
                    min_begin: 0,
                    unit: offsets.binary_search(&offset).ok()?,
                })
            })
            .collect();
        ranges.sort_unstable_by_key(|r| (r.end, r.unit));
        let mut min = u64::MAX;
        for range in ranges.iter_mut().rev() {
            min = min.min(range.begin);
            range.min_begin = min;
        }
        units_with_sets.sort_unstable();
        units_with_sets.dedup();
        let mut unit_sets = vec![Vec::new(); offsets.len()];
        for (unit, bytes) in set_bytes {
            if let Ok(id) = offsets.binary_search(&unit) {
                unit_sets[id].push(bytes);
            }
        }
        Some(Self {
            offsets,
            sets: unit_sets,
            units_with_sets: units_with_sets.len(),
            ranges,
        })
    }

    /// The units whose ranges cover `probe`, in addr2line's order.
    fn candidates(&self, probe: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.ranges.partition_point(|r| r.end <= probe);
        self.ranges[start..]
            .iter()
            .take_while(move |r| probe >= r.min_begin)
            .filter(move |r| r.begin <= probe && probe < r.end)
            .map(|r| r.unit)
    }
}

impl Dwarf {
    /// The DWARF sections of the file in `bytes` (nothing is inflated yet beyond
    /// `.debug_aranges`); `None` when it has no `.debug_info`.
    ///
    /// With a `cache`, compressed sections are read from their inflated copies when stored
    /// (see [`crate::section_cache`]); files without a build-id are never cached.
    pub(crate) fn load(bytes: &SharedBytes, cache: Option<&SectionCache>) -> Option<Self> {
        let (file, endian) = parse_object(bytes)?;
        let build_id = file.build_id().ok().flatten();
        let keyed = cache.zip(build_id);
        let find = |id: SectionId| SectionBytes::find(&file, bytes, id.name(), keyed);
        let info = find(SectionId::DebugInfo)?;
        let aranges = find(SectionId::DebugAranges).and_then(|s| s.whole());
        let index = aranges.as_ref().and_then(|a| {
            UnitIndex::parse(gimli::DebugAranges::from(gimli::EndianReader::new(
                a.clone(),
                endian,
            )))
        });
        let plts = file
            .sections()
            .filter(|s| s.name().is_ok_and(|n| PLT_SECTIONS.contains(&n)))
            .map(|s| s.address()..s.address().saturating_add(s.size()))
            .collect();
        let units = index
            .as_ref()
            .map(|index| index.offsets.iter().map(|_| OnceLock::new()).collect())
            .unwrap_or_default();
        Some(Self {
            endian,
            info,
            abbrev: find(SectionId::DebugAbbrev),
            line: find(SectionId::DebugLine),
            aranges,
            small: SMALL_SECTIONS
                .iter()
                .filter_map(|&id| Some((id, find(id)?)))
                .collect(),
            small_whole: OnceLock::new(),
            index,
            units,
            aranges_complete: OnceLock::new(),
            plts,
            whole: OnceLock::new(),
        })
    }

    /// Calls `visit` with the contexts that may know `probe`, one after the other, until it
    /// breaks: the contexts of the units covering it (in addr2line's order), or the
    /// whole-file context. `visit` should continue only when a context found nothing.
    pub(crate) fn visit_contexts(
        &self,
        probe: u64,
        mut visit: impl FnMut(&Context) -> ControlFlow<()>,
    ) {
        let Some(index) = &self.index else {
            return self.visit_whole(visit);
        };
        let mut covered = false;
        for unit in index.candidates(probe) {
            covered = true;
            let Some(slot) = self.units.get(unit) else {
                continue;
            };
            match slot.get_or_init(|| self.load_unit(index, unit)) {
                UnitContext::Alone(context) => {
                    let context = context.lock().unwrap_or_else(PoisonError::into_inner);
                    if visit(&context).is_break() {
                        return;
                    }
                }
                UnitContext::Whole => return self.visit_whole(visit),
                UnitContext::Unreadable => {}
            }
        }
        // No unit in `.debug_aranges` covers it. None does when it lies in a PLT (linker
        // stubs, described by no unit) or when every unit has its `.debug_aranges` set; else
        // a unit without one may.
        if !covered && !self.in_plt(probe) && !self.aranges_complete(index) {
            self.visit_whole(visit);
        }
    }

    fn in_plt(&self, probe: u64) -> bool {
        self.plts.iter().any(|plt| plt.contains(&probe))
    }

    /// Whether every unit has a `.debug_aranges` set: as many sets as line programs (each unit
    /// has one). Costs inflating all of `.debug_line`, a fraction of `.debug_info`.
    fn aranges_complete(&self, index: &UnitIndex) -> bool {
        *self.aranges_complete.get_or_init(|| {
            let Some(line) = self.line.as_ref().and_then(SectionBytes::whole) else {
                return false;
            };
            let mut programs = 0usize;
            let mut reader = self.reader(line);
            while !reader.is_empty() {
                let Ok((length, _format)) = reader.read_initial_length() else {
                    return false;
                };
                if reader.skip(length).is_err() {
                    return false;
                }
                programs += 1;
            }
            programs == index.units_with_sets
        })
    }

    fn visit_whole(&self, mut visit: impl FnMut(&Context) -> ControlFlow<()>) {
        let whole = self.whole.get_or_init(|| {
            let info = self.info.whole()?;
            let whole_or_empty = |section: &Option<SectionBytes>| {
                section
                    .as_ref()
                    .and_then(SectionBytes::whole)
                    .unwrap_or_else(empty)
            };
            let abbrev = whole_or_empty(&self.abbrev);
            let line = whole_or_empty(&self.line);
            let aranges = self.aranges.clone().unwrap_or_else(empty);
            let dwarf = self.gimli_dwarf(info, abbrev, line, aranges);
            let context = Context::from_dwarf(dwarf).ok()?;
            Some(Mutex::new(context))
        });
        if let Some(context) = whole {
            let _ = visit(&context.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    fn reader(&self, bytes: SharedBytes) -> Reader {
        gimli::EndianReader::new(bytes, self.endian)
    }

    /// A gimli `Dwarf` over the given `.debug_info`, `.debug_abbrev` and `.debug_line` bytes,
    /// with the other sections addr2line reads; the rest (location lists, macros, type units)
    /// left empty.
    fn gimli_dwarf(
        &self,
        info: SharedBytes,
        abbrev: SharedBytes,
        line: SharedBytes,
        aranges: SharedBytes,
    ) -> gimli::Dwarf<Reader> {
        let small = self.small_whole.get_or_init(|| {
            self.small
                .iter()
                .filter_map(|(id, section)| Some((*id, section.whole()?)))
                .collect()
        });
        let bytes_of = |id: SectionId| match id {
            SectionId::DebugInfo => info.clone(),
            SectionId::DebugAbbrev => abbrev.clone(),
            SectionId::DebugLine => line.clone(),
            SectionId::DebugAranges => aranges.clone(),
            _ => small
                .iter()
                .find(|(small_id, _)| *small_id == id)
                .map(|(_, bytes)| bytes.clone())
                .unwrap_or_else(empty),
        };
        let loaded: Result<_, std::convert::Infallible> =
            gimli::Dwarf::load(|id| Ok(self.reader(bytes_of(id))));
        match loaded {
            Ok(dwarf) => dwarf,
            Err(never) => match never {},
        }
    }

    fn load_unit(&self, index: &UnitIndex, unit: usize) -> UnitContext {
        self.try_load_unit(index, unit)
            .unwrap_or(UnitContext::Unreadable)
    }

    /// The `.debug_aranges` sets of unit `unit` of `index` alone: a view of the section when
    /// it has one set, as compilers write them.
    fn unit_aranges(&self, index: &UnitIndex, unit: usize) -> SharedBytes {
        let (Some(aranges), Some(sets)) = (&self.aranges, index.sets.get(unit)) else {
            return empty();
        };
        match sets.as_slice() {
            [one] => aranges.slice(one.clone()).unwrap_or_else(empty),
            many => SharedBytes::from_vec(
                many.iter()
                    .filter_map(|set| aranges.get(set.clone()))
                    .flatten()
                    .copied()
                    .collect(),
            ),
        }
    }

    fn try_load_unit(&self, index: &UnitIndex, unit: usize) -> Option<UnitContext> {
        let offset = *index.offsets.get(unit)?;
        // The unit's own bytes.
        let end = self.ensure_unit(&self.info, offset)?;
        let info = self.info.available();
        let header = gimli::DebugInfo::from(self.reader(info.clone()))
            .header_from_offset(gimli::DebugInfoOffset(offset))
            .ok()?;
        // Its abbreviations: inflated until the table ends, and scanned for forms that refer
        // to other units.
        let abbrev = self.abbrev.as_ref()?;
        let abbrev_offset = header.debug_abbrev_offset();
        if self.ensure_abbreviations(abbrev, abbrev_offset.0)? == Refers::OtherUnits {
            return Some(UnitContext::Whole);
        }
        let abbrev_bytes = abbrev.available();
        // Its line program.
        let abbreviations = gimli::DebugAbbrev::from(self.reader(abbrev_bytes.clone()))
            .abbreviations(abbrev_offset)
            .ok()?;
        let line_bytes = match (&self.line, stmt_list(&header, &abbreviations)) {
            (Some(line), Some(line_offset)) => {
                // A unit whose line program cannot be read still has functions to look up:
                // addr2line reports the error at lookup, as with the whole file.
                let _ = self.ensure_unit(line, line_offset);
                line.available()
            }
            (Some(line), None) => line.available(),
            (None, _) => empty(),
        };
        let Some(alone) = self.unit_alone(&info, offset, end) else {
            return Some(UnitContext::Whole);
        };
        let aranges = self.unit_aranges(index, unit);
        let dwarf = self.gimli_dwarf(alone, abbrev_bytes, line_bytes, aranges);
        let context = Context::from_dwarf(dwarf).ok()?;
        Some(UnitContext::Alone(Mutex::new(context)))
    }

    /// Makes the unit (of `.debug_info`) or line program (of `.debug_line`) at `offset`
    /// available; returns the offset of its end.
    fn ensure_unit(&self, section: &SectionBytes, offset: usize) -> Option<usize> {
        // An initial length is 4 bytes, or 12 for 64-bit DWARF.
        if !section.ensure(offset.checked_add(12)?) {
            return None;
        }
        let bytes = section.available();
        let mut reader = self.reader(bytes.slice(offset..bytes.len())?);
        let (length, format) = reader.read_initial_length().ok()?;
        let end = offset
            .checked_add(usize::from(format.initial_length_size()))?
            .checked_add(length)?;
        (end <= section.len() && section.ensure(end)).then_some(end)
    }

    /// Inflates `.debug_abbrev` until the table at `offset` is complete, and says whether its
    /// forms let entries refer to other units; `None` when the table is corrupt.
    fn ensure_abbreviations(&self, abbrev: &SectionBytes, offset: usize) -> Option<Refers> {
        let mut want = 4usize << 10;
        loop {
            if !abbrev.ensure(offset.checked_add(want)?) {
                return None;
            }
            let bytes = abbrev.available();
            match scan_abbreviations(bytes.get(offset..)?, self.endian) {
                Ok(refers) => return Some(refers),
                Err(gimli::Error::UnexpectedEof(_)) if bytes.len() < abbrev.len() => {
                    want = want.saturating_mul(4);
                }
                Err(_) => return None,
            }
        }
    }

    /// A `.debug_info` holding the unit `[offset, end)` of `info` alone, at its own offset,
    /// behind a placeholder type unit (which addr2line skips) that covers `[0, offset)`.
    ///
    /// The buffer is an anonymous mapping: the pages of the placeholder's body are never
    /// touched, so they cost neither memory nor page faults. `None` when the placeholder
    /// cannot be written (the unit lies beyond 4 GiB).
    fn unit_alone(&self, info: &SharedBytes, offset: usize, end: usize) -> Option<SharedBytes> {
        let unit = info.get(offset..end)?;
        let mut buffer = memmap2::MmapMut::map_anon(end).ok()?;
        if offset >= PLACEHOLDER_LEN {
            let length = u32::try_from(offset - 4)
                .ok()
                .filter(|&l| l < 0xffff_fff0)?;
            buffer
                .get_mut(..PLACEHOLDER_LEN)?
                .copy_from_slice(&placeholder_unit(length, self.endian));
        } else {
            // Too close to the start for a placeholder: keep the real units before it.
            buffer
                .get_mut(..offset)?
                .copy_from_slice(info.get(..offset)?);
        }
        // One system call for the pages of the unit, instead of a page fault for each.
        let _ = buffer.advise_range(memmap2::Advice::PopulateWrite, offset, end - offset);
        buffer.get_mut(offset..end)?.copy_from_slice(unit);
        let buffer = buffer.make_read_only().ok()?;
        Some(SharedBytes::new(Arc::new(buffer)))
    }
}

/// Whether a unit's entries may refer to entries of other units.
#[derive(Debug, PartialEq, Eq)]
enum Refers {
    OwnUnitOnly,
    OtherUnits,
}

/// Walks the abbreviation table at the start of `table` to its end; `UnexpectedEof` when it
/// is cut short. A hand-written walk because gimli's `Abbreviations` does not list its entries
/// nor say where the table ends.
fn scan_abbreviations(table: &[u8], endian: gimli::RunTimeEndian) -> gimli::Result<Refers> {
    let mut input = gimli::EndianSlice::new(table, endian);
    let mut refers = Refers::OwnUnitOnly;
    while input.read_uleb128()? != 0 {
        let _tag = input.read_uleb128()?;
        let _has_children = input.read_u8()?;
        loop {
            let name = input.read_uleb128()?;
            let form = input.read_uleb128()?;
            if name == 0 && form == 0 {
                break;
            }
            if form == u64::from(gimli::DW_FORM_implicit_const.0) {
                input.read_sleb128()?;
            }
            // `indirect` names its form in each entry: it may be `ref_addr`.
            if form == u64::from(gimli::DW_FORM_ref_addr.0)
                || form == u64::from(gimli::DW_FORM_indirect.0)
            {
                refers = Refers::OtherUnits;
            }
        }
    }
    Ok(refers)
}

/// The header of a DWARF 5 type unit (32-bit format) of `unit_length` bytes after its length
/// field: addr2line steps over type units without reading them.
fn placeholder_unit(unit_length: u32, endian: gimli::RunTimeEndian) -> [u8; PLACEHOLDER_LEN] {
    use gimli::Endianity;
    let mut out = [0u8; PLACEHOLDER_LEN];
    let (length, version) = if endian.is_big_endian() {
        (unit_length.to_be_bytes(), 5u16.to_be_bytes())
    } else {
        (unit_length.to_le_bytes(), 5u16.to_le_bytes())
    };
    out[..4].copy_from_slice(&length);
    out[4..6].copy_from_slice(&version);
    out[6] = gimli::DW_UT_type.0;
    out[7] = 8; // address size
    // Then a zero abbreviation offset, type signature and type offset.
    out
}

/// The unit's `DW_AT_stmt_list`: the offset of its line program in `.debug_line`.
fn stmt_list(
    header: &gimli::UnitHeader<Reader>,
    abbreviations: &gimli::Abbreviations,
) -> Option<usize> {
    let mut entries = header.entries_raw(abbreviations, None).ok()?;
    let abbreviation = entries.read_abbreviation().ok()??;
    for spec in abbreviation.attributes() {
        let attribute = entries.read_attribute(*spec).ok()?;
        if attribute.name() == gimli::DW_AT_stmt_list {
            if let gimli::AttributeValue::DebugLineRef(offset) = attribute.value() {
                return Some(offset.0);
            }
        }
    }
    None
}

fn empty() -> SharedBytes {
    SharedBytes::from_vec(Vec::new())
}

#[cfg(test)]
impl Dwarf {
    /// [`Dwarf::load`] with every lookup made through the whole-file context, as before units
    /// were read alone: what tests compare the lookups of units read alone with.
    pub(crate) fn load_whole_file(bytes: &SharedBytes) -> Option<Self> {
        let mut dwarf = Self::load(bytes, None)?;
        dwarf.index = None;
        dwarf.units.clear();
        Some(dwarf)
    }
}

#[cfg(test)]
mod tests {
    //! The oracle for "a unit read alone answers as the whole file does" is addr2line's own
    //! whole-file context over sections inflated up front (how kprof read DWARF before).
    // See: issue #10 point 14

    use std::path::{Path, PathBuf};
    use std::process::Command;

    use object::ObjectSection;

    use super::*;
    use crate::debuginfo::DebugInfo;
    use crate::elf::Svma;
    use crate::mapped::MappedFile;

    /// Two compilation units calling each other, each with an inlined function.
    const UNIT_A: &str = r#"#include <stdint.h>
static inline __attribute__((always_inline)) uint64_t mix(uint64_t x) {
    x ^= x << 13;
    x ^= x >> 7;
    return x ^ (x << 17);
}
uint64_t helper_b(uint64_t n);
__attribute__((noinline)) uint64_t work_a(uint64_t n) {
    uint64_t x = n | 1;
    for (uint64_t i = 0; i < n; i++)
        x = mix(x) + i;
    return x + helper_b(n / 2);
}
"#;
    const UNIT_B: &str = r#"#include <stdint.h>
#include <stdio.h>
static inline __attribute__((always_inline)) uint64_t twist(uint64_t x) {
    return (x * 6364136223846793005ull) ^ (x >> 29);
}
uint64_t work_a(uint64_t n);
__attribute__((noinline)) uint64_t helper_b(uint64_t n) {
    uint64_t x = n;
    for (uint64_t i = 0; i < n; i++)
        x = twist(x + i);
    return x;
}
int main(int argc, char **argv) {
    (void)argv;
    printf("%llu\n", (unsigned long long)work_a((uint64_t)argc * 1000));
    return 0;
}
"#;

    /// Inlined template instances and lambdas, in two units.
    const UNIT_CXX: &str = r#"#include <algorithm>
#include <cstdio>
#include <vector>
namespace app {
template <typename T> struct Squares {
    T sum = 0;
    void add(T v) { sum += v * v; }
};
__attribute__((noinline)) long run(int n) {
    std::vector<long> values(n);
    std::generate_n(values.begin(), n, [k = 0L]() mutable { return k += 3; });
    Squares<long> squares;
    std::for_each(values.begin(), values.end(), [&](long x) { squares.add(x); });
    return squares.sum;
}
} // namespace app
int main(int argc, char **) { std::printf("%ld\n", app::run(argc * 1000)); }
"#;

    /// Skips a test for a missing tool, or fails it under `KPROF_REQUIRE_TOOLS=1`.
    fn skip(why: &str) {
        assert!(
            std::env::var_os("KPROF_REQUIRE_TOOLS").is_none_or(|v| v != "1"),
            "{why} under KPROF_REQUIRE_TOOLS=1"
        );
        eprintln!("skipping: {why}");
    }

    fn tool(program: &str, args: &[&str], dir: &Path) -> bool {
        Command::new(program)
            .args(args)
            .current_dir(dir)
            .output()
            .is_ok_and(|out| out.status.success())
    }

    fn map(path: &Path) -> SharedBytes {
        SharedBytes::new(Arc::new(MappedFile::open(path).unwrap()))
    }

    type Frame = (Option<String>, Option<String>, Option<u32>);

    /// addr2line's whole-file context, every section inflated up front.
    fn whole_file_oracle(bytes: &SharedBytes) -> Context {
        use object::Object;
        let file = object::File::parse(&**bytes).unwrap();
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, ()> {
            let data = file
                .section_by_name(id.name())
                .map(|s| s.uncompressed_data().unwrap().into_owned())
                .unwrap_or_default();
            Ok(gimli::EndianReader::new(
                SharedBytes::from_vec(data),
                endian,
            ))
        })
        .unwrap();
        Context::from_dwarf(dwarf).unwrap()
    }

    fn oracle_frames(context: &Context, probe: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        let Ok(mut frames) = context.find_frames(probe).skip_all_loads() else {
            return out;
        };
        while let Ok(Some(frame)) = frames.next() {
            let function = frame
                .function
                .as_ref()
                .and_then(|f| f.raw_name().ok())
                .map(|name| name.into_owned());
            let (file, line) = frame
                .location
                .map_or((None, None), |l| (l.file.map(str::to_owned), l.line));
            out.push((function, file, line));
        }
        out
    }

    fn lazy_frames(info: &DebugInfo, probe: u64, demangle: bool) -> Vec<Frame> {
        info.frames(Svma(probe), demangle)
            .into_iter()
            .map(|f| {
                (
                    f.function.map(|s| s.to_string()),
                    f.file.map(|s| s.to_string()),
                    f.line,
                )
            })
            .collect()
    }

    /// Compares both ways of reading on `probes`: raw names with addr2line's whole-file
    /// context, and demangled names (C++ inlined functions are renamed from their scopes) with
    /// kprof's lookups through the whole-file context. Returns how many probes had frames.
    fn compare(path: &Path, probes: impl Iterator<Item = u64>) -> usize {
        let bytes = map(path);
        let oracle = whole_file_oracle(&bytes);
        let lazy = DebugInfo::load(&bytes, None).unwrap();
        let whole = DebugInfo::load_whole_file(&bytes).unwrap();
        let mut with_frames = 0;
        for probe in probes {
            let want = oracle_frames(&oracle, probe);
            assert_eq!(
                lazy_frames(&lazy, probe, false),
                want,
                "{} at {probe:#x}",
                path.display()
            );
            assert_eq!(
                lazy_frames(&lazy, probe, true),
                lazy_frames(&whole, probe, true),
                "{} at {probe:#x}, demangled",
                path.display()
            );
            with_frames += usize::from(!want.is_empty());
        }
        with_frames
    }

    /// Every address of the executable sections (`.text`, `.plt`, `.init`...): inside units,
    /// between them, and in code that no unit describes (`_start`, PLT stubs).
    fn every_address(path: &Path) -> Vec<u64> {
        use object::Object;
        let bytes = map(path);
        let file = object::File::parse(&*bytes).unwrap();
        file.sections()
            .filter(|s| {
                matches!(s.flags(), object::SectionFlags::Elf { sh_flags, .. }
                    if sh_flags.0 & object::elf::SHF_EXECINSTR.0 != 0)
            })
            .flat_map(|s| s.address()..s.address() + s.size())
            .collect()
    }

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn units_read_alone_answer_as_the_whole_file() {
        let dir = TempDir(std::env::temp_dir().join(format!("kprof-units-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        std::fs::write(dir.0.join("a.c"), UNIT_A).unwrap();
        std::fs::write(dir.0.join("b.c"), UNIT_B).unwrap();
        std::fs::write(dir.0.join("c.cpp"), UNIT_CXX).unwrap();
        let cc = |extra: &[&str], out: &str| {
            let mut args = vec!["-O2", "-g", "a.c", "b.c", "-o", out];
            args.extend_from_slice(extra);
            tool("cc", &args, &dir.0)
        };
        if !cc(&[], "plain") {
            return skip("cc not available");
        }
        // Compressed with zlib; with link-time optimization, whose units refer to each other
        // (`DW_FORM_ref_addr`), so they are read through the whole-file context.
        let mut variants = vec!["plain"];
        for (flags, name) in [(&["-gz"][..], "zlib"), (&["-flto", "-gz"][..], "lto")] {
            assert!(cc(flags, name), "cc {flags:?}");
            variants.push(name);
        }
        // C++, whose inlined template instances and lambdas are named from their scopes.
        if tool("c++", &["-O2", "-g", "-gz", "c.cpp", "-o", "cxx"], &dir.0) {
            variants.push("cxx");
        } else {
            skip("c++ not available");
        }
        // zstd, when this binutils can write it.
        if tool(
            "objcopy",
            &["--compress-debug-sections=zstd", "plain", "zstd"],
            &dir.0,
        ) {
            variants.push("zstd");
        }
        for name in variants {
            let path = dir.0.join(name);
            let probes = every_address(&path);
            let with_frames = compare(&path, probes.iter().copied());
            assert!(
                with_frames > 100,
                "{name}: only {with_frames} addresses known"
            );
            // Which way the lookups went.
            let dwarf = Dwarf::load(&map(&path), None).unwrap();
            for &probe in &probes {
                dwarf_frames(&dwarf, probe);
            }
            let whole_units = dwarf
                .units
                .iter()
                .filter(|u| matches!(u.get(), Some(UnitContext::Whole)))
                .count();
            if name == "lto" {
                assert!(whole_units > 0, "{name}: no unit refers to another");
            } else {
                assert_eq!(whole_units, 0, "{name}");
                assert!(
                    dwarf.whole.get().is_none(),
                    "{name}: the whole file was read"
                );
            }
            // See: issue #10 done-means 7. Inflated copies kept by build-id answer as the
            // compressed sections do: the first load stores them, the second reads them.
            let cache = crate::section_cache::SectionCache::new(dir.0.join("cache"), 1 << 30);
            for run in ["stores", "reads"] {
                let cached = Dwarf::load(&map(&path), Some(&cache)).unwrap();
                let compressed = name != "plain";
                assert_eq!(
                    matches!(cached.info, SectionBytes::Plain(_)),
                    !compressed || run == "reads",
                    "{name}, the run that {run} the copies"
                );
                for &probe in probes.iter().step_by(7) {
                    assert_eq!(
                        dwarf_frames(&cached, probe),
                        dwarf_frames(&dwarf, probe),
                        "{name} at {probe:#x}, the run that {run} the copies"
                    );
                }
            }
        }
    }

    /// The separate debug file of the C library this test runs with, when one is installed.
    fn libc_debug_file() -> Option<PathBuf> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/libc.so"))?;
        let id = crate::elf::build_id_of(&std::fs::read(libc).ok()?)?;
        let hex = crate::elf::hex(&id);
        let path = PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &hex[..2],
            &hex[2..]
        ));
        path.exists().then_some(path)
    }

    #[test]
    fn libc_debug_file_read_alone_as_the_whole_file() {
        let Some(path) = libc_debug_file() else {
            eprintln!("skipping: no separate debug file for libc (install libc6-dbg)");
            return;
        };
        // The start and middle of every range: every unit with code.
        let dwarf = Dwarf::load(&map(&path), None).unwrap();
        let index = dwarf.index.as_ref().unwrap();
        let probes: Vec<u64> = index
            .ranges
            .iter()
            .flat_map(|r| [r.begin, r.begin + (r.end - r.begin) / 2])
            .collect();
        let with_frames = compare(&path, probes.into_iter());
        assert!(with_frames > 1000, "only {with_frames} addresses known");
    }

    #[test]
    fn a_lookup_inflates_only_what_its_unit_needs() {
        let Some(path) = libc_debug_file() else {
            eprintln!("skipping: no separate debug file for libc (install libc6-dbg)");
            return;
        };
        let bytes = map(&path);
        let info = DebugInfo::load(&bytes, None).unwrap();
        let dwarf = Dwarf::load(&bytes, None).unwrap();
        let SectionBytes::Inflating(_) = &dwarf.info else {
            eprintln!("skipping: this libc debug file is not compressed");
            return;
        };
        // An address of the first unit with code.
        let index = dwarf.index.as_ref().unwrap();
        let first = index
            .ranges
            .iter()
            .min_by_key(|r| (r.unit, r.begin))
            .unwrap();
        let frames = dwarf_frames(&dwarf, first.begin);
        assert_eq!(frames, lazy_frames(&info, first.begin, false));
        for (name, section) in [
            ("info", Some(&dwarf.info)),
            ("abbrev", dwarf.abbrev.as_ref()),
            ("line", dwarf.line.as_ref()),
        ] {
            let section = section.unwrap();
            let inflated = section.available().len();
            assert!(
                inflated < section.len() / 4,
                "{name}: {inflated} of {} bytes inflated",
                section.len()
            );
        }
        assert!(dwarf.whole.get().is_none(), "the whole file was read");
    }

    fn dwarf_frames(dwarf: &Dwarf, probe: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        dwarf.visit_contexts(probe, |context| {
            out = oracle_frames(context, probe);
            if out.is_empty() {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        out
    }

    #[test]
    fn placeholder_is_a_type_unit_that_covers_the_gap() {
        for endian in [gimli::RunTimeEndian::Little, gimli::RunTimeEndian::Big] {
            let mut bytes = placeholder_unit(96, endian).to_vec();
            bytes.resize(100, 0xee);
            let info = gimli::DebugInfo::new(&bytes, endian);
            let mut units = info.units();
            let header = units.next().unwrap().unwrap();
            assert!(matches!(header.type_(), gimli::UnitType::Type { .. }));
            assert_eq!(header.length_including_self(), 100);
            assert!(units.next().unwrap().is_none());
        }
    }

    #[test]
    fn abbreviation_tables_are_walked_to_their_end() {
        let endian = gimli::RunTimeEndian::Little;
        // code 1: compile unit, children, name/strp, stmt_list/sec_offset, then the end.
        let own = [1, 0x11, 1, 0x03, 0x0e, 0x10, 0x17, 0, 0, 0];
        assert_eq!(scan_abbreviations(&own, endian), Ok(Refers::OwnUnitOnly));
        // code 2: an abstract origin through ref_addr, and an implicit_const before it.
        let cross = [2, 0x1d, 0, 0x3b, 0x21, 0x7f, 0x31, 0x10, 0, 0, 0];
        assert_eq!(scan_abbreviations(&cross, endian), Ok(Refers::OtherUnits));
        for cut in 0..own.len() {
            assert!(matches!(
                scan_abbreviations(&own[..cut], endian),
                Err(gimli::Error::UnexpectedEof(_))
            ));
        }
    }
}
