//! JIT symbol maps: `/tmp/perf-PID.map` files with `START SIZE name` hex lines.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use std::io::{BufRead, BufReader, Read};

use crate::mapped::open_regular;

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

/// Longest line kept: a capped name plus its two addresses.
const MAX_LINE: usize = crate::cap::MAX_NAME_LEN + 64;

/// Reads one line (without its newline) into `line`, keeping at most `max` bytes of it; the
/// rest of a longer line is skipped without being kept. Returns (whether more input may
/// follow, whether the line was cut).
fn read_capped_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(bool, bool)> {
    while line.len() < max {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((false, false));
        }
        let room = max - line.len();
        let window = buf.get(..room).unwrap_or(buf);
        if let Some(at) = window.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(window.get(..at).unwrap_or_default());
            reader.consume(at + 1);
            return Ok((true, false));
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
    }
    // Full: a newline right here ends the line whole; anything else is skipped (std's
    // `skip_until` searches fast and keeps nothing).
    let next = reader.fill_buf()?;
    match next.first() {
        None => Ok((false, false)),
        Some(b'\n') => {
            reader.consume(1);
            Ok((true, false))
        }
        Some(_) => {
            reader.skip_until(b'\n')?;
            Ok((true, true))
        }
    }
}

/// One `START SIZE name` line; `cut`: the line was longer than kept.
fn parse_line(line: &[u8], cut: bool) -> Option<Entry> {
    let text = String::from_utf8_lossy(line);
    let line = text.trim_end();
    let (start, rest) = line.split_once(' ')?;
    let (size, name) = rest.split_once(' ')?;
    let start = parse_hex(start)?;
    let size = parse_hex(size)?;
    if name.is_empty() {
        return None;
    }
    let name = crate::cap::cap_name(name);
    let name: Arc<str> = if cut && !name.ends_with(crate::cap::ELLIPSIS) {
        Arc::from(format!("{name}{}", crate::cap::ELLIPSIS))
    } else {
        Arc::from(name.as_ref())
    };
    Some(Entry {
        start,
        end: start.saturating_add(size),
        name,
    })
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
        Self::read(text).unwrap_or_default()
    }

    /// Parses perf map text from `reader`, one line at a time: a line longer than
    /// [`MAX_LINE`] bytes is read past, not kept, and its name is cut ([`crate::cap`]), so a
    /// huge name costs neither memory nor time later on.
    pub fn read(mut reader: impl BufRead) -> std::io::Result<Self> {
        let mut entries = Vec::new();
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let (more, cut) = read_capped_line(&mut reader, &mut line, MAX_LINE)?;
            if let Some(entry) = parse_line(&line, cut) {
                entries.push(entry);
            }
            if !more {
                break;
            }
        }
        entries.sort_by_key(|e| e.start);
        Ok(Self { entries })
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
    let (file, _) = open_regular(path, MAX_PERF_MAP_SIZE)
        .map_err(|e| PerfMapRefusal::Unreadable(e.to_string()))?;
    // `take` bounds the read even if the file grows after the check.
    PerfMap::read(BufReader::new(file.take(MAX_PERF_MAP_SIZE)))
        .map_err(|e| PerfMapRefusal::Unreadable(e.to_string()))
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

    // See: issue #11 point 6
    #[test]
    fn a_huge_name_is_cut_and_the_next_line_still_parses() {
        let mut text = b"1000 10 ".to_vec();
        text.extend(std::iter::repeat_n(b'x', 10 << 20));
        text.extend_from_slice(b"\n2000 10 next\n");
        let m = PerfMap::parse(&text);
        assert_eq!(m.len(), 2);
        let name = m.lookup(0x1008).unwrap();
        assert!(name.len() <= crate::cap::MAX_NAME_LEN + 3, "{}", name.len());
        assert!(name.ends_with(crate::cap::ELLIPSIS));
        assert_eq!(m.lookup(0x2008).as_deref(), Some("next"));
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
