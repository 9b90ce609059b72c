//! DWARF lines and inlined frames via `addr2line`: finds the debug file (the ELF itself,
//! `/usr/lib/debug/.build-id/xx/rest.debug`, or `.gnu_debuglink`) and reads the units that
//! lookups fall in, on demand (see [`crate::units`]).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::elf::{ElfImage, Svma, build_id_of, build_ids_match, hex};
use crate::inline_names::InlineNames;
use crate::mapped::{MappedFile, SharedBytes};
use crate::section_cache::SectionCache;
use crate::units::{Context, Dwarf};

/// One line-table/inline frame found by addr2line.
#[derive(Debug, Clone)]
pub(crate) struct DwarfFrame {
    pub(crate) function: Option<Arc<str>>,
    pub(crate) file: Option<Arc<str>>,
    pub(crate) line: Option<u32>,
}

/// The DWARF of a module; addr2line's `Context` is not `Sync`, so lookups are serialized per
/// compilation unit.
pub(crate) struct DebugInfo {
    dwarf: Dwarf,
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
    /// The DWARF of the file in `bytes`, read lazily; `None` when it has no `.debug_info`.
    /// Compressed sections are kept in `cache` when one is given.
    pub(crate) fn load(bytes: &SharedBytes, cache: Option<&SectionCache>) -> Option<Self> {
        Some(Self {
            dwarf: Dwarf::load(bytes, cache)?,
            inline_names: InlineNames::default(),
        })
    }

    /// [`DebugInfo::load`], every lookup through the whole-file context (for tests).
    #[cfg(test)]
    pub(crate) fn load_whole_file(bytes: &SharedBytes) -> Option<Self> {
        Some(Self {
            dwarf: Dwarf::load_whole_file(bytes)?,
            inline_names: InlineNames::default(),
        })
    }

    /// The frames at `svma`, innermost (inlined callee) first; empty when DWARF has nothing.
    pub(crate) fn frames(&self, svma: Svma, demangle_names: bool) -> Vec<DwarfFrame> {
        let mut out = Vec::new();
        self.dwarf.visit_contexts(svma.0, |context| {
            self.frames_in(context, svma, demangle_names, &mut out)
        });
        out
    }

    /// Appends the frames that `context` knows at `svma` to `out`; continues when it knows
    /// none (another unit covering `svma` may know them).
    fn frames_in(
        &self,
        context: &Context,
        svma: Svma,
        demangle_names: bool,
        out: &mut Vec<DwarfFrame>,
    ) -> ControlFlow<()> {
        let Ok(mut iter) = context.find_frames(svma.0).skip_all_loads() else {
            return ControlFlow::Break(());
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
        if out.is_empty() {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
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
