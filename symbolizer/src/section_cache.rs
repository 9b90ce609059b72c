//! On-disk copies of inflated debug sections, keyed by the debug file's build-id, so that a
//! compressed section is inflated once per machine instead of once per run.
//!
//! Distribution debug files compress their DWARF, and a DEFLATE stream cannot be entered in
//! the middle: each `--lines` run would inflate libc's `.debug_info` up to the units its
//! addresses need, which costs more than symbolizing the rest of a profile. perf keeps copies
//! of the binaries a recording used under `~/.debug`, keyed by build-id; this keeps the
//! inflated sections the same way. A build-id names the file's contents, so a copy keyed by
//! it, by the section's name and by its compressed and inflated sizes is the section itself;
//! a copy is used only when its length is exactly the inflated size, and it is written under a
//! temporary name and renamed, so a reader never sees half of one. The directory is bounded:
//! after each write the oldest copies are removed until the total is under
//! [`SectionCache::max_bytes`]. Every failure to read or write the cache only means inflating
//! as before.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::mapped::{MappedFile, SharedBytes};

/// A directory of inflated sections and the most bytes it may hold.
#[derive(Debug, Clone)]
pub(crate) struct SectionCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// Where one section's inflated copy lives.
#[derive(Debug, Clone)]
pub(crate) struct CachedSection {
    cache: SectionCache,
    path: PathBuf,
    size: usize,
}

impl SectionCache {
    pub(crate) fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes }
    }

    /// The copy of section `name` (inflated to `size` bytes from `compressed_len`) of the
    /// file with `build_id`; `None` when the build-id is too short to name a file's contents.
    pub(crate) fn section(
        &self,
        build_id: &[u8],
        name: &str,
        compressed_len: usize,
        size: usize,
    ) -> Option<CachedSection> {
        // perf's build-ids are at least 8 bytes (GNU: 20, LLVM: 8 or 16).
        if build_id.len() < 8 || (size as u64) > self.max_bytes {
            return None;
        }
        let id: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        Some(CachedSection {
            cache: self.clone(),
            path: self
                .dir
                .join(id)
                .join(format!("{name}-{compressed_len}-{size}")),
            size,
        })
    }
}

impl CachedSection {
    /// The inflated section, when a complete copy is stored.
    pub(crate) fn open(&self) -> Option<SharedBytes> {
        let mapped = MappedFile::open(&self.path).ok()?;
        (mapped.len() == self.size).then(|| SharedBytes::new(Arc::new(mapped)))
    }

    /// Stores `bytes` (the whole inflated section), then trims the cache to its bound. Best
    /// effort: a cache that cannot be written is left as it is.
    pub(crate) fn store(&self, bytes: &[u8]) {
        if bytes.len() != self.size {
            return;
        }
        let Some(dir) = self.path.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let temporary = self
            .path
            .with_extension(format!("partial-{}", std::process::id()));
        let written = std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
            return;
        }
        trim(&self.cache.dir, self.cache.max_bytes, &self.path);
    }
}

/// Removes the oldest copies under `dir` (by modification time) until they total at most
/// `max_bytes`, never `keep`.
fn trim(dir: &Path, max_bytes: u64, keep: &Path) {
    let mut copies: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    let Ok(ids) = std::fs::read_dir(dir) else {
        return;
    };
    for id in ids.flatten() {
        let Ok(sections) = std::fs::read_dir(id.path()) else {
            continue;
        };
        for section in sections.flatten() {
            let Ok(meta) = section.metadata() else {
                continue;
            };
            if meta.is_file() {
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                copies.push((modified, meta.len(), section.path()));
            }
        }
    }
    let mut total: u64 = copies.iter().map(|(_, len, _)| len).sum();
    copies.sort();
    for (_, len, path) in copies {
        if total <= max_bytes {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
            if let Some(parent) = path.parent() {
                // Only succeeds once the build-id's directory is empty.
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kprof-section-cache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn stores_and_opens_exact_copies_only() {
        let dir = scratch("exact");
        let cache = SectionCache::new(dir.clone(), 1 << 20);
        let id = [0xab; 20];
        let section = cache.section(&id, ".debug_info", 10, 4).unwrap();
        assert!(section.open().is_none());
        section.store(b"abcd");
        assert_eq!(&*section.open().unwrap(), b"abcd");
        // Another compressed length or size is another section.
        assert!(
            cache
                .section(&id, ".debug_info", 11, 4)
                .unwrap()
                .open()
                .is_none()
        );
        // A copy of the wrong length is never used, nor written.
        let short = cache.section(&id, ".debug_line", 10, 8).unwrap();
        short.store(b"abcd");
        assert!(short.open().is_none());
        std::fs::write(&short.path, b"abcd").unwrap();
        assert!(short.open().is_none());
        // Too short a build-id names nothing.
        assert!(cache.section(&[1, 2], ".debug_info", 10, 4).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stays_under_its_bound() {
        let dir = scratch("bound");
        let cache = SectionCache::new(dir.clone(), 2500);
        let mut sections = Vec::new();
        for i in 0..5u8 {
            let section = cache.section(&[i; 20], ".debug_info", 1, 1000).unwrap();
            section.store(&[i; 1000]);
            // Distinct modification times, oldest first.
            let file = std::fs::File::options()
                .write(true)
                .open(&section.path)
                .unwrap();
            file.set_modified(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(i)),
            )
            .unwrap();
            sections.push(section);
        }
        let kept: Vec<bool> = sections.iter().map(|s| s.open().is_some()).collect();
        // Each store trims to 2500 bytes: the two newest copies remain.
        assert_eq!(kept, [false, false, false, true, true]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
