//! Per-module unwind data, parsed once per file: load segments (for the bias), CFI section
//! locations, a sorted FDE index and the PLT ranges.

use std::ops::Range;
use std::sync::Arc;

use gimli::{
    BaseAddresses, CieOrFde, DebugFrame, DebugFrameOffset, EhFrame, EndianSlice, RunTimeEndian,
    UnwindSection,
};
use object::{Object, ObjectSection, ObjectSegment, SegmentFlags};

/// The most FDEs indexed per section; bounds memory on hostile input.
const MAX_FDES: usize = 4_000_000;
/// The largest compressed `.debug_frame` we inflate; bounds memory on hostile input.
const MAX_DECOMPRESSED_DEBUG_FRAME: u64 = 256 << 20;
/// The most bytes of entry code without CFI taken as the entry function: entry stubs are a few
/// instructions (glibc's ld.so `_start` with `_dl_start_user` is 61 bytes).
const MAX_ENTRY_STUB: u64 = 256;

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug)]
struct LoadSegment {
    file_offset: u64,
    file_size: u64,
    vaddr: u64,
    executable: bool,
}

/// Where a section's bytes are: inside the module's file, or decompressed and owned here.
#[derive(Clone, Debug)]
pub(crate) enum SectionBytes {
    /// A byte range of the file.
    InFile(Range<usize>),
    /// Decompressed contents.
    Owned(Arc<[u8]>),
}

impl SectionBytes {
    pub(crate) fn get<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        match self {
            Self::InFile(range) => file.get(range.clone()).unwrap_or(&[]),
            Self::Owned(bytes) => bytes,
        }
    }
}

/// Which CFI section an FDE lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CfiSection {
    /// `.eh_frame`.
    EhFrame,
    /// `.debug_frame`.
    DebugFrame,
}

/// One indexed FDE: the svma range it covers and its offset in its section.
#[derive(Clone, Copy, Debug)]
struct FdeEntry {
    start: u64,
    end: u64,
    offset: usize,
}

/// An FDE found for an address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FdeLocation {
    pub(crate) section: CfiSection,
    pub(crate) offset: usize,
}

/// The unwind data of one ELF file.
#[derive(Debug)]
pub(crate) struct ModuleUnwindInfo {
    pub(crate) endian: RunTimeEndian,
    segments: Vec<LoadSegment>,
    pub(crate) eh_frame: Option<SectionBytes>,
    pub(crate) eh_frame_bases: BaseAddresses,
    pub(crate) debug_frame: Option<SectionBytes>,
    eh_index: Vec<FdeEntry>,
    debug_index: Vec<FdeEntry>,
    plt_ranges: Vec<Range<u64>>,
    /// The svmas of the code at the ELF entry point (see [`ModuleUnwindInfo::in_entry_code`]).
    entry_code: Option<Range<u64>>,
    /// The first CFI parse error met while indexing, kept for diagnostics.
    pub(crate) index_error: Option<String>,
}

impl ModuleUnwindInfo {
    /// Parses `file` as ELF. `None` when it is not an object file `object` understands.
    pub(crate) fn parse(file: &[u8], address_size: u8) -> Option<Self> {
        let elf = object::File::parse(file).ok()?;
        let endian = if elf.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let segments = elf
            .segments()
            .map(|segment| {
                let (file_offset, file_size) = segment.file_range();
                let executable = match segment.flags() {
                    SegmentFlags::Elf { p_flags, .. } => p_flags.0 & 1 != 0,
                    _ => false,
                };
                LoadSegment {
                    file_offset,
                    file_size,
                    vaddr: segment.address(),
                    executable,
                }
            })
            .collect();

        let section_svma = |name: &str| elf.section_by_name(name).map(|s| s.address());
        let mut eh_frame_bases = BaseAddresses::default();
        if let Some(address) = section_svma(".eh_frame") {
            eh_frame_bases = eh_frame_bases.set_eh_frame(address);
        }
        if let Some(address) = section_svma(".eh_frame_hdr") {
            eh_frame_bases = eh_frame_bases.set_eh_frame_hdr(address);
        }
        if let Some(address) = section_svma(".text") {
            eh_frame_bases = eh_frame_bases.set_text(address);
        }
        if let Some(address) = section_svma(".got") {
            eh_frame_bases = eh_frame_bases.set_got(address);
        }

        let eh_frame = elf
            .section_by_name(".eh_frame")
            .and_then(|section| in_file_range(section.file_range()?, file.len()))
            .map(SectionBytes::InFile);
        let debug_frame = elf.section_by_name(".debug_frame").and_then(|section| {
            let compressed = section.compressed_data().ok()?;
            if compressed.format == object::CompressionFormat::None {
                return in_file_range(section.file_range()?, file.len()).map(SectionBytes::InFile);
            }
            if compressed.uncompressed_size > MAX_DECOMPRESSED_DEBUG_FRAME {
                return None;
            }
            let bytes = compressed.decompress().ok()?;
            Some(SectionBytes::Owned(bytes.into_owned().into()))
        });

        let plt_ranges = [".plt", ".plt.sec", ".plt.got", ".iplt"]
            .iter()
            .filter_map(|name| elf.section_by_name(name))
            .filter_map(|s| Some(s.address()..s.address().checked_add(s.size())?))
            .collect();

        let mut info = Self {
            endian,
            segments,
            eh_frame,
            eh_frame_bases,
            debug_frame,
            eh_index: Vec::new(),
            debug_index: Vec::new(),
            plt_ranges,
            entry_code: None,
            index_error: None,
        };
        info.build_indexes(file, address_size);
        info.entry_code = info.entry_code_at(elf.entry());
        Some(info)
    }

    /// The code at the entry point `entry` (0: none, as in most shared libraries): the FDE that
    /// covers it, or, for entry stubs without CFI (ld.so's `_start`, which calls `_dl_start`
    /// and falls through to `_dl_start_user`), the code from it up to the next FDE, at most
    /// [`MAX_ENTRY_STUB`] bytes.
    fn entry_code_at(&self, entry: u64) -> Option<Range<u64>> {
        if entry == 0 {
            return None;
        }
        let indexes = [&self.eh_index, &self.debug_index];
        if let Some(fde) = indexes.iter().find_map(|index| containing(index, entry)) {
            return Some(fde.start..fde.end);
        }
        let next_fde = indexes
            .iter()
            .filter_map(|index| {
                let after = index.partition_point(|fde| fde.start <= entry);
                index.get(after).map(|fde| fde.start)
            })
            .min()
            .unwrap_or(u64::MAX);
        Some(entry..next_fde.min(entry.saturating_add(MAX_ENTRY_STUB)))
    }

    fn build_indexes(&mut self, file: &[u8], address_size: u8) {
        if let Some(bytes) = &self.eh_frame {
            let mut section = EhFrame::new(bytes.get(file), self.endian);
            section.set_address_size(address_size);
            let (index, error) = index_fdes(&section, &self.eh_frame_bases, |offset| offset.0);
            self.eh_index = index;
            self.index_error = error;
        }
        if let Some(bytes) = &self.debug_frame {
            let mut section = DebugFrame::new(bytes.get(file), self.endian);
            section.set_address_size(address_size);
            let bases = BaseAddresses::default();
            let (index, error) = index_fdes(&section, &bases, |offset: DebugFrameOffset| offset.0);
            self.debug_index = index;
            if self.index_error.is_none() {
                self.index_error = error;
            }
        }
    }

    /// The load bias (avma − svma) of the mapping that starts at `map_start` with file offset
    /// `map_pgoff`.
    pub(crate) fn bias(&self, map_start: u64, map_pgoff: u64) -> u64 {
        let contains = |segment: &&LoadSegment| {
            segment.file_offset <= map_pgoff
                && map_pgoff < segment.file_offset.saturating_add(segment.file_size)
        };
        // A mapping starts at a page boundary at or before its segment's first byte.
        let starts_in_page = |segment: &&LoadSegment| {
            map_pgoff <= segment.file_offset && segment.file_offset - map_pgoff < 0x1_0000
        };
        let segment = self
            .segments
            .iter()
            .filter(contains)
            .find(|segment| segment.executable)
            .or_else(|| self.segments.iter().find(contains))
            .or_else(|| {
                self.segments
                    .iter()
                    .filter(starts_in_page)
                    .find(|segment| segment.executable)
            })
            .or_else(|| self.segments.iter().find(starts_in_page))
            .or_else(|| self.segments.first());
        let svma_of_map_start = match segment {
            Some(segment) => segment
                .vaddr
                .wrapping_sub(segment.file_offset)
                .wrapping_add(map_pgoff),
            None => map_pgoff,
        };
        map_start.wrapping_sub(svma_of_map_start)
    }

    /// The FDE covering `svma`: `.eh_frame` first, then `.debug_frame`.
    pub(crate) fn find_fde(&self, svma: u64) -> Option<FdeLocation> {
        if let Some(offset) = lookup(&self.eh_index, svma) {
            return Some(FdeLocation {
                section: CfiSection::EhFrame,
                offset,
            });
        }
        lookup(&self.debug_index, svma).map(|offset| FdeLocation {
            section: CfiSection::DebugFrame,
            offset,
        })
    }

    /// True when `svma` lies in a PLT section (`.plt`, `.plt.sec`, `.plt.got`, `.iplt`).
    pub(crate) fn in_plt(&self, svma: u64) -> bool {
        self.plt_ranges.iter().any(|range| range.contains(&svma))
    }

    /// True when `svma` lies in the code at the ELF entry point: `_start` of an executable,
    /// ld.so's `_start` and `_dl_start_user`. A process starts there, so that frame is the
    /// outermost, whatever its CFI says (some entry code has none, some does not mark its
    /// return address undefined, and the word above it is `argc`, not a return address).
    pub(crate) fn in_entry_code(&self, svma: u64) -> bool {
        self.entry_code
            .as_ref()
            .is_some_and(|range| range.contains(&svma))
    }

    /// True when `svma` lies in the file bytes of an executable `PT_LOAD` segment.
    pub(crate) fn in_executable_segment(&self, svma: u64) -> bool {
        self.segments.iter().any(|segment| {
            segment.executable && segment.vaddr <= svma && svma - segment.vaddr < segment.file_size
        })
    }

    /// The number of FDEs indexed (both sections).
    #[cfg(test)]
    pub(crate) fn fde_count(&self) -> usize {
        self.eh_index.len() + self.debug_index.len()
    }

    /// Makes an `EhFrame` over this module's `.eh_frame` bytes.
    pub(crate) fn eh_frame_section<'a>(
        &self,
        bytes: &'a [u8],
        address_size: u8,
        aarch64: bool,
    ) -> EhFrame<EndianSlice<'a, RunTimeEndian>> {
        let mut section = EhFrame::new(bytes, self.endian);
        section.set_address_size(address_size);
        if aarch64 {
            section.set_vendor(gimli::Vendor::AArch64);
        }
        section
    }

    /// Makes a `DebugFrame` over this module's `.debug_frame` bytes.
    pub(crate) fn debug_frame_section<'a>(
        &self,
        bytes: &'a [u8],
        address_size: u8,
        aarch64: bool,
    ) -> DebugFrame<EndianSlice<'a, RunTimeEndian>> {
        let mut section = DebugFrame::new(bytes, self.endian);
        section.set_address_size(address_size);
        if aarch64 {
            section.set_vendor(gimli::Vendor::AArch64);
        }
        section
    }
}

/// Converts an object file range to a checked `usize` range inside a file of `file_len` bytes.
fn in_file_range((offset, size): (u64, u64), file_len: usize) -> Option<Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    (end <= file_len).then_some(start..end)
}

/// Binary search for the FDE whose range contains `svma`; its section offset.
fn lookup(index: &[FdeEntry], svma: u64) -> Option<usize> {
    containing(index, svma).map(|entry| entry.offset)
}

/// Binary search for the FDE whose range contains `svma`.
fn containing(index: &[FdeEntry], svma: u64) -> Option<&FdeEntry> {
    let after = index.partition_point(|entry| entry.start <= svma);
    let entry = index.get(after.checked_sub(1)?)?;
    (svma < entry.end).then_some(entry)
}

/// Walks every entry of a CFI section and returns the FDEs sorted by start address, with the
/// first parse error (indexing stops there: later offsets cannot be trusted).
fn index_fdes<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    offset_of: impl Fn(S::Offset) -> usize,
) -> (Vec<FdeEntry>, Option<String>)
where
    S: UnwindSection<EndianSlice<'a, RunTimeEndian>>,
{
    let mut index = Vec::new();
    let mut error = None;
    let mut cies = std::collections::HashMap::new();
    let mut entries = section.entries(bases);
    loop {
        if index.len() >= MAX_FDES {
            error = Some(format!("more than {MAX_FDES} FDEs"));
            break;
        }
        match entries.next() {
            Ok(None) => break,
            Ok(Some(CieOrFde::Cie(_))) => {}
            Ok(Some(CieOrFde::Fde(partial))) => {
                let offset = partial.offset();
                let parsed = partial.parse(|section, bases, cie_offset| {
                    let key = offset_of(cie_offset);
                    if let Some(cie) = cies.get(&key) {
                        return Ok(Clone::clone(cie));
                    }
                    let cie = section.cie_from_offset(bases, cie_offset)?;
                    cies.insert(key, cie.clone());
                    Ok(cie)
                });
                match parsed {
                    Ok(fde) if fde.len() > 0 => index.push(FdeEntry {
                        start: fde.initial_address(),
                        end: fde.initial_address().saturating_add(fde.len()),
                        offset,
                    }),
                    Ok(_) => {}
                    // A bad FDE (e.g. a bad CIE pointer) does not stop the walk: the entry's
                    // length was valid, so the next entry is still found.
                    Err(err) => {
                        error.get_or_insert_with(|| format!("FDE at {offset:#x}: {err}"));
                    }
                }
            }
            Err(err) => {
                error.get_or_insert_with(|| format!("CFI entry: {err}"));
                break;
            }
        }
    }
    index.sort_unstable_by_key(|entry| (entry.start, entry.end));
    (index, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_containing_ranges_only() {
        let index = [
            FdeEntry {
                start: 0x100,
                end: 0x110,
                offset: 1,
            },
            FdeEntry {
                start: 0x200,
                end: 0x280,
                offset: 2,
            },
        ];
        assert_eq!(lookup(&index, 0x100), Some(1));
        assert_eq!(lookup(&index, 0x10f), Some(1));
        assert_eq!(lookup(&index, 0x110), None);
        assert_eq!(lookup(&index, 0xff), None);
        assert_eq!(lookup(&index, 0x27f), Some(2));
        assert_eq!(lookup(&index, u64::MAX), None);
        assert_eq!(lookup(&[], 5), None);
    }

    /// An info with only these `.eh_frame` FDEs.
    fn with_fdes(fdes: &[(u64, u64)]) -> ModuleUnwindInfo {
        ModuleUnwindInfo {
            endian: RunTimeEndian::Little,
            segments: Vec::new(),
            eh_frame: None,
            eh_frame_bases: BaseAddresses::default(),
            debug_frame: None,
            eh_index: fdes
                .iter()
                .map(|&(start, end)| FdeEntry {
                    start,
                    end,
                    offset: 0,
                })
                .collect(),
            debug_index: Vec::new(),
            plt_ranges: Vec::new(),
            entry_code: None,
            index_error: None,
        }
    }

    // See: issue #10 point 10
    #[test]
    fn entry_code_is_the_entry_fde_or_the_stub_before_the_next() {
        let info = with_fdes(&[(0x100, 0x140), (0x200, 0x300)]);
        assert_eq!(info.entry_code_at(0), None);
        assert_eq!(info.entry_code_at(0x110), Some(0x100..0x140));
        // ld.so's `_start`: no FDE, the next one 0x40 further.
        assert_eq!(info.entry_code_at(0x1c0), Some(0x1c0..0x200));
        // No FDE after it: at most MAX_ENTRY_STUB bytes.
        assert_eq!(
            info.entry_code_at(0x400),
            Some(0x400..0x400 + MAX_ENTRY_STUB)
        );
        assert_eq!(info.entry_code_at(0x140), Some(0x140..0x200));
    }

    #[test]
    fn non_elf_bytes_are_rejected() {
        assert!(ModuleUnwindInfo::parse(b"not an elf file at all", 8).is_none());
        assert!(ModuleUnwindInfo::parse(&[], 8).is_none());
    }

    #[test]
    fn own_test_binary_has_an_fde_index() {
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let bytes = std::fs::read(exe).unwrap();
        let info = ModuleUnwindInfo::parse(&bytes, 8).unwrap();
        assert!(info.fde_count() > 100, "{} FDEs", info.fde_count());
        assert!(info.index_error.is_none(), "{:?}", info.index_error);
        // Its entry point (`_start`) is entry code; `main`-like code far from it is not.
        let entry = object::Object::entry(&object::File::parse(&*bytes).unwrap());
        assert!(info.in_entry_code(entry));
        assert!(!info.in_entry_code(entry.wrapping_add(0x10_0000)));
        // Non-PIE or PIE: a mapping of the file at pgoff 0 placed at its own vaddr has bias 0
        // only when the first segment's vaddr is 0; in general bias = map_start - vaddr0.
        let first = info.segments.first().unwrap();
        assert_eq!(
            info.bias(0x5555_0000_0000, first.file_offset),
            0x5555_0000_0000u64.wrapping_sub(first.vaddr)
        );
    }
}
