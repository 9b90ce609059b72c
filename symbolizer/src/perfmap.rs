//! JIT symbol maps: `/tmp/perf-PID.map` files with `START SIZE name` hex lines.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use crate::mapped::read_regular;

/// Largest perf map we read: 256 MiB.
const MAX_PERF_MAP_SIZE: u64 = 256 << 20;

#[derive(Debug, Clone)]
struct Entry {
    start: u64,
    end: u64,
    name: Arc<str>,
}

/// The symbols of one perf map, sorted by start address.
#[derive(Debug, Default)]
pub struct PerfMap {
    entries: Vec<Entry>,
}

fn parse_hex(field: &str) -> Option<u64> {
    let digits = field
        .strip_prefix("0x")
        .or_else(|| field.strip_prefix("0X"))
        .unwrap_or(field);
    u64::from_str_radix(digits, 16).ok()
}

impl PerfMap {
    /// Parses perf map text. Lines that do not parse are skipped.
    pub fn parse(text: &[u8]) -> Self {
        let text = String::from_utf8_lossy(text);
        let mut entries: Vec<Entry> = text
            .lines()
            .filter_map(|line| {
                let line = line.trim_end();
                let (start, rest) = line.split_once(' ')?;
                let (size, name) = rest.split_once(' ')?;
                let start = parse_hex(start)?;
                let size = parse_hex(size)?;
                (!name.is_empty()).then(|| Entry {
                    start,
                    end: start.saturating_add(size),
                    name: Arc::from(name),
                })
            })
            .collect();
        entries.sort_by_key(|e| e.start);
        Self { entries }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of the entry containing `addr`. With overlapping entries (re-JITted code),
    /// the one starting last before `addr` wins.
    pub fn lookup(&self, addr: u64) -> Option<Arc<str>> {
        let i = self.entries.partition_point(|e| e.start <= addr);
        self.entries
            .get(..i)?
            .iter()
            .rev()
            .take(8)
            .find(|e| addr < e.end)
            .map(|e| Arc::clone(&e.name))
    }
}

/// Why a perf map was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerfMapRefusal {
    /// The file does not exist.
    Missing,
    /// The file is a symlink, not owned by root or us, or writable by group/others.
    Untrusted,
    /// Could not be read.
    Unreadable(String),
}

/// Loads `path` following perf's rule: a regular file, not a symlink, owned by root or the
/// current user, and not writable by group or others.
pub fn load_trusted(path: &Path) -> Result<PerfMap, PerfMapRefusal> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(PerfMapRefusal::Missing),
        Err(e) => return Err(PerfMapRefusal::Unreadable(e.to_string())),
    };
    // `/proc/self` is owned by our effective uid: no unsafe `geteuid` needed.
    let our_uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let owner_ok = meta.uid() == 0 || Some(meta.uid()) == our_uid;
    if meta.file_type().is_symlink()
        || !meta.file_type().is_file()
        || !owner_ok
        || meta.mode() & 0o022 != 0
    {
        return Err(PerfMapRefusal::Untrusted);
    }
    let text = read_regular(path, MAX_PERF_MAP_SIZE)
        .map_err(|e| PerfMapRefusal::Unreadable(e.to_string()))?;
    Ok(PerfMap::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_lines() {
        let m = PerfMap::parse(b"7f0000001000 40 jit_foo\n0x7f0000000000 100 Interpreter frame\nnot a line\n7f00 zz x\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m.lookup(0x7f00_0000_1010).as_deref(), Some("jit_foo"));
        assert_eq!(
            m.lookup(0x7f00_0000_0010).as_deref(),
            Some("Interpreter frame")
        );
        assert_eq!(m.lookup(0x7f00_0000_1040), None);
        assert_eq!(m.lookup(0x10), None);
    }

    #[test]
    fn trust_rules() {
        let dir = std::env::temp_dir().join(format!("kprof-perfmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("perf-1.map");
        std::fs::write(&good, "1000 10 f\n").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            load_trusted(&good).unwrap().lookup(0x1008).as_deref(),
            Some("f")
        );
        let writable = dir.join("perf-2.map");
        std::fs::write(&writable, "1000 10 f\n").unwrap();
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            load_trusted(&writable).unwrap_err(),
            PerfMapRefusal::Untrusted
        );
        let link = dir.join("perf-3.map");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert_eq!(load_trusted(&link).unwrap_err(), PerfMapRefusal::Untrusted);
        assert_eq!(
            load_trusted(&dir.join("perf-4.map")).unwrap_err(),
            PerfMapRefusal::Missing
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
