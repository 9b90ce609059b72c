//! DWARF lines and inlined frames via `addr2line`: finds the debug file (the ELF itself,
//! `/usr/lib/debug/.build-id/xx/rest.debug`, or `.gnu_debuglink`) and builds a context lazily.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::elf::{ElfImage, Svma, build_id_of, build_ids_match, hex, section_bytes};
use crate::inline_names::InlineNames;
use crate::mapped::{MappedFile, SharedBytes};

/// The gimli reader over shared, stable bytes.
pub(crate) type Reader = gimli::EndianReader<gimli::RunTimeEndian, SharedBytes>;

/// One line-table/inline frame found by addr2line.
#[derive(Debug, Clone)]
pub(crate) struct DwarfFrame {
    pub(crate) function: Option<Arc<str>>,
    pub(crate) file: Option<Arc<str>>,
    pub(crate) line: Option<u32>,
}

/// An addr2line context; `Context` is not `Sync`, so lookups are serialized per module.
pub(crate) struct DebugInfo {
    context: Mutex<addr2line::Context<Reader>>,
    inline_names: InlineNames,
}

impl std::fmt::Debug for DebugInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DebugInfo")
    }
}

/// Candidate paths of a separate debug file for the ELF at `elf_path`.
pub(crate) fn debug_file_candidates(
    elf_path: &Path,
    build_id: Option<&[u8]>,
    debuglink: Option<&[u8]>,
    debug_dirs: &[PathBuf],
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(id) = build_id.filter(|id| id.len() >= 2) {
        let h = hex(id);
        let (head, rest) = h.split_at(2);
        for dir in debug_dirs {
            out.push(
                dir.join(".build-id")
                    .join(head)
                    .join(format!("{rest}.debug")),
            );
        }
    }
    if let Some(link) = debuglink {
        let link = String::from_utf8_lossy(link);
        // A debuglink is a file name, never a path: refuse anything that could walk elsewhere.
        if !link.is_empty() && !link.contains('/') && link != "." && link != ".." {
            let dir = elf_path.parent().unwrap_or(Path::new("/"));
            out.push(dir.join(link.as_ref()));
            out.push(dir.join(".debug").join(link.as_ref()));
            let rel = dir.strip_prefix("/").unwrap_or(dir);
            for debug_dir in debug_dirs {
                out.push(debug_dir.join(rel).join(link.as_ref()));
            }
        }
    }
    out.retain(|p| p != elf_path);
    out
}

/// Finds and maps the separate debug file of `image`, checking its build-id when both have one.
pub(crate) fn find_debug_file(
    elf_path: &Path,
    image: &ElfImage,
    debug_dirs: &[PathBuf],
) -> Option<SharedBytes> {
    let candidates = debug_file_candidates(
        elf_path,
        image.build_id.as_deref(),
        image.debuglink.as_deref(),
        debug_dirs,
    );
    candidates.iter().find_map(|path| {
        let mapped = MappedFile::open(path).ok()?;
        let bytes = SharedBytes::new(Arc::new(mapped));
        if let Some(want) = image.build_id.as_deref() {
            let have = build_id_of(&bytes)?;
            if !build_ids_match(want, &have) {
                return None;
            }
        } else {
            object::File::parse(&*bytes).ok()?;
        }
        Some(bytes)
    })
}

impl DebugInfo {
    /// Loads the DWARF sections of the file in `bytes`; `None` when it has no `.debug_info`.
    pub(crate) fn load(bytes: &SharedBytes) -> Option<Self> {
        use object::Object;
        let file = object::File::parse(&**bytes).ok()?;
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        drop(file);
        section_bytes(bytes, ".debug_info")?;
        let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, gimli::Error> {
            let data = section_bytes(bytes, id.name())
                .unwrap_or_else(|| SharedBytes::from_vec(Vec::new()));
            Ok(gimli::EndianReader::new(data, endian))
        })
        .ok()?;
        let context = addr2line::Context::from_dwarf(dwarf).ok()?;
        Some(Self {
            context: Mutex::new(context),
            inline_names: InlineNames::default(),
        })
    }

    /// The frames at `svma`, innermost (inlined callee) first; empty when DWARF has nothing.
    pub(crate) fn frames(&self, svma: Svma, demangle_names: bool) -> Vec<DwarfFrame> {
        let Ok(context) = self.context.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let Ok(mut iter) = context.find_frames(svma.0).skip_all_loads() else {
            return out;
        };
        // The unit of the frames, for naming functions without a linkage name from their scope.
        let unit = demangle_names
            .then(|| context.find_dwarf_and_unit(svma.0).skip_all_loads())
            .flatten();
        // Bounded: a corrupt file cannot make us loop forever.
        while let Ok(Some(frame)) = iter.next() {
            let qualified = unit
                .zip(frame.dw_die_offset)
                .and_then(|(unit, offset)| self.inline_names.qualified(unit, offset))
                .map(|name| match crate::cap::cap_name(&name) {
                    std::borrow::Cow::Borrowed(_) => name,
                    std::borrow::Cow::Owned(cut) => Arc::from(cut),
                });
            let function = qualified.or_else(|| {
                frame
                    .function
                    .as_ref()
                    .and_then(|f| f.raw_name().ok())
                    .map(|raw| crate::cap::symbol_name(raw.as_bytes(), demangle_names))
            });
            let (file, line) = match &frame.location {
                Some(loc) => (
                    loc.file
                        .map(|f| Arc::from(crate::cap::cap_name(f).as_ref())),
                    loc.line,
                ),
                None => (None, None),
            };
            out.push(DwarfFrame {
                function,
                file,
                line,
            });
            if out.len() >= 256 {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_gdb_layout() {
        let c = debug_file_candidates(
            Path::new("/usr/lib/x86_64-linux-gnu/libfoo.so.1"),
            Some(&[0xab, 0xcd, 0xef]),
            Some(b"libfoo.so.1.debug"),
            &[PathBuf::from("/usr/lib/debug")],
        );
        assert_eq!(
            c,
            vec![
                PathBuf::from("/usr/lib/debug/.build-id/ab/cdef.debug"),
                PathBuf::from("/usr/lib/x86_64-linux-gnu/libfoo.so.1.debug"),
                PathBuf::from("/usr/lib/x86_64-linux-gnu/.debug/libfoo.so.1.debug"),
                PathBuf::from("/usr/lib/debug/usr/lib/x86_64-linux-gnu/libfoo.so.1.debug"),
            ]
        );
        let hostile =
            debug_file_candidates(Path::new("/bin/x"), None, Some(b"../../etc/shadow"), &[]);
        assert!(hostile.is_empty());
    }
}
