//! The `HEADER_TRACING_DATA` blob: the tracefs files (ring-buffer headers, event formats, printk
//! formats, saved comms) that Linux perf needs to decode the raw fields of tracepoint samples.
//!
//! # Layout built (host byte order throughout)
//!
//! ```text
//! "\x17\x08\x44tracing"         10-byte magic
//! "0.6\0"                       version; 0.6 adds the saved_cmdlines part at the end
//! u8 big_endian, u8 sizeof(long), u32 page_size
//! "header_page\0"  u64 size, events/header_page
//! "header_event\0" u64 size, events/header_event
//! u32 count, then per ftrace event:            u64 size, events/ftrace/NAME/format
//! u32 systems, then per system: "SYS\0", u32 count, then per event: u64 size, its format
//! u32 size, kallsyms      (always 0: perf resolves kernel symbols itself)
//! u32 size, printk_formats
//! u64 size, saved_cmdlines
//! ```
//!
//! Only the recorded tracepoints' formats are stored, grouped by system in the order first given.
//! This is the layout Linux perf's `trace-event-read.c` parses; the code here is kprof's own.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::events::TRACEFS_ROOTS;

/// The first ten bytes of the blob: 23, 8, 68, then `tracing`.
pub const TRACING_MAGIC: [u8; 10] = *b"\x17\x08\x44tracing";
/// The format version written (NUL-terminated in the blob). perf reads the trailing
/// saved_cmdlines part only from version 0.6 on.
pub const TRACING_VERSION: &str = "0.6";
/// The system whose event formats go in the blob's separate ftrace part.
const FTRACE_SYSTEM: &str = "ftrace";

/// One tracepoint to describe, `system:name` (e.g. `sched` and `sched_switch`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tracepoint {
    /// The subsystem directory under `events/`, e.g. `sched`.
    pub system: String,
    /// The event directory under the system, e.g. `sched_switch`.
    pub name: String,
}

impl Tracepoint {
    /// The tracepoint `system:name`.
    pub fn new(system: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            name: name.into(),
        }
    }
}

/// The mounted tracefs: the first of [`TRACEFS_ROOTS`] that has an `events` directory.
pub fn tracefs_root() -> Option<PathBuf> {
    TRACEFS_ROOTS
        .iter()
        .map(PathBuf::from)
        .find(|root| root.join("events").is_dir())
}

/// Builds the tracing-data blob for `tracepoints` from the mounted tracefs.
///
/// Fails when tracefs is not mounted (opening a tracepoint mounts it, see
/// [`crate::events::tracepoint_id`]) or a needed file cannot be read.
pub fn tracing_data(tracepoints: &[Tracepoint]) -> Result<Vec<u8>> {
    let root = tracefs_root().ok_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "tracefs is not mounted (looked in {})",
                TRACEFS_ROOTS.join(", ")
            ),
        ))
    })?;
    tracing_data_at(&root, tracepoints)
}

/// Builds the tracing-data blob for `tracepoints` from the tracefs mounted at `root`.
///
/// `events/header_page`, `events/header_event` and every tracepoint's `format` must be readable;
/// `printk_formats` and `saved_cmdlines` are stored empty when they are not.
pub fn tracing_data_at(root: &Path, tracepoints: &[Tracepoint]) -> Result<Vec<u8>> {
    let events = root.join("events");
    let mut out = Vec::new();
    out.extend_from_slice(&TRACING_MAGIC);
    out.extend_from_slice(TRACING_VERSION.as_bytes());
    out.push(0);
    out.push(u8::from(cfg!(target_endian = "big")));
    out.push(u8::try_from(std::mem::size_of::<libc::c_long>()).unwrap_or(8));
    let page_size = u32::try_from(crate::sys::page_size()).unwrap_or(4096);
    out.extend_from_slice(&page_size.to_ne_bytes());

    for header in ["header_page", "header_event"] {
        let body = read_file(&events.join(header))?;
        out.extend_from_slice(header.as_bytes());
        out.push(0);
        push_sized_u64(&mut out, &body);
    }

    let systems = group_by_system(tracepoints)?;
    let (ftrace, others): (Vec<_>, Vec<_>) = systems
        .into_iter()
        .partition(|(system, _)| *system == FTRACE_SYSTEM);
    let ftrace_names: Vec<&str> = ftrace.into_iter().flat_map(|(_, names)| names).collect();
    push_formats(
        &mut out,
        &events.join(FTRACE_SYSTEM),
        FTRACE_SYSTEM,
        &ftrace_names,
    )?;

    out.extend_from_slice(&count_u32(others.len()).to_ne_bytes());
    for (system, names) in &others {
        out.extend_from_slice(system.as_bytes());
        out.push(0);
        push_formats(&mut out, &events.join(system), system, names)?;
    }

    // kallsyms: perf symbolizes the kernel from the MMAP records and its own kallsyms reading.
    out.extend_from_slice(&0u32.to_ne_bytes());
    let printk = read_optional(&root.join("printk_formats"));
    push_sized_u32(&mut out, &printk);
    let cmdlines = read_optional(&root.join("saved_cmdlines"));
    push_sized_u64(&mut out, &cmdlines);
    Ok(out)
}

/// The tracepoints grouped by system, both in first-seen order, without duplicates.
fn group_by_system(tracepoints: &[Tracepoint]) -> Result<Vec<(&str, Vec<&str>)>> {
    let mut systems: Vec<(&str, Vec<&str>)> = Vec::new();
    for tp in tracepoints {
        for part in [&tp.system, &tp.name] {
            if !is_plain_name(part) {
                return Err(Error::InvalidEvent {
                    spec: format!("{}:{}", tp.system, tp.name),
                    reason: "a tracepoint's system and name are single path components".into(),
                });
            }
        }
        match systems.iter_mut().find(|(s, _)| *s == tp.system) {
            Some((_, names)) if names.contains(&tp.name.as_str()) => {}
            Some((_, names)) => names.push(&tp.name),
            None => systems.push((&tp.system, vec![&tp.name])),
        }
    }
    Ok(systems)
}

/// A name usable as one directory under `events/`: no separators, not `.` or `..`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// u32 count, then per event of `system` its `format` file with a u64 size.
fn push_formats(out: &mut Vec<u8>, dir: &Path, system: &str, names: &[&str]) -> Result<()> {
    out.extend_from_slice(&count_u32(names.len()).to_ne_bytes());
    for name in names {
        let path = dir.join(name).join("format");
        let format = read_tracefs(&path).map_err(|e| Error::EventUnavailable {
            event: format!("{system}:{name}"),
            reason: format!("reading {}: {e}", path.display()),
        })?;
        push_sized_u64(out, &format);
    }
    Ok(())
}

/// Size of each read from tracefs.
const TRACEFS_READ_CHUNK: usize = 64 * 1024;

/// Reads a whole tracefs file in large reads. Its files report size 0, and some (`header_page`)
/// return only the first read's worth when read in small pieces, as `std::fs::read`'s first
/// probing read is.
fn read_tracefs(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; TRACEFS_READ_CHUNK];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads a tracefs file that must be there, naming it on failure.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    read_tracefs(path)
        .map_err(|e| Error::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display()))))
}

/// A file that may be absent or unreadable (older kernels, lockdown): empty then.
fn read_optional(path: &Path) -> Vec<u8> {
    read_tracefs(path).unwrap_or_default()
}

/// A count as the u32 the format stores (saturating; no real count comes near).
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// u64 size, then the bytes.
fn push_sized_u64(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u64).to_ne_bytes());
    out.extend_from_slice(body);
}

/// u32 size, then the bytes; a body too large for a u32 size is stored empty.
fn push_sized_u32(out: &mut Vec<u8>, body: &[u8]) {
    let body = if u32::try_from(body.len()).is_ok() {
        body
    } else {
        &[]
    };
    out.extend_from_slice(&count_u32(body.len()).to_ne_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader for the layout above, independent of the writer's helpers.
    struct Cursor<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let out = &self.bytes[self.pos..self.pos + n];
            self.pos += n;
            out
        }
        fn u8(&mut self) -> u8 {
            self.take(1)[0]
        }
        fn u32(&mut self) -> u32 {
            u32::from_ne_bytes(self.take(4).try_into().unwrap())
        }
        fn u64(&mut self) -> u64 {
            u64::from_ne_bytes(self.take(8).try_into().unwrap())
        }
        fn cstr(&mut self) -> &'a str {
            let len = self.bytes[self.pos..].iter().position(|&b| b == 0).unwrap();
            let s = std::str::from_utf8(self.take(len)).unwrap();
            self.take(1);
            s
        }
        fn sized64(&mut self) -> &'a [u8] {
            let n = self.u64() as usize;
            self.take(n)
        }
    }

    /// What a parsed blob holds.
    #[derive(Debug, Default)]
    struct Parsed {
        version: String,
        long_size: u8,
        page_size: u32,
        header_page: Vec<u8>,
        header_event: Vec<u8>,
        ftrace: Vec<Vec<u8>>,
        systems: Vec<(String, Vec<Vec<u8>>)>,
        printk: Vec<u8>,
        cmdlines: Vec<u8>,
    }

    fn parse(bytes: &[u8]) -> Parsed {
        let mut c = Cursor { bytes, pos: 0 };
        assert_eq!(c.take(10), &TRACING_MAGIC);
        let mut p = Parsed {
            version: c.cstr().to_owned(),
            ..Default::default()
        };
        assert_eq!(c.u8(), u8::from(cfg!(target_endian = "big")));
        p.long_size = c.u8();
        p.page_size = c.u32();
        assert_eq!(c.cstr(), "header_page");
        p.header_page = c.sized64().to_vec();
        assert_eq!(c.cstr(), "header_event");
        p.header_event = c.sized64().to_vec();
        for _ in 0..c.u32() {
            p.ftrace.push(c.sized64().to_vec());
        }
        for _ in 0..c.u32() {
            let system = c.cstr().to_owned();
            let formats = (0..c.u32()).map(|_| c.sized64().to_vec()).collect();
            p.systems.push((system, formats));
        }
        assert_eq!(c.u32(), 0, "no kallsyms");
        let n = c.u32() as usize;
        p.printk = c.take(n).to_vec();
        p.cmdlines = c.sized64().to_vec();
        assert_eq!(c.pos, bytes.len(), "nothing after saved_cmdlines");
        p
    }

    /// A fake tracefs with the given `system/name` events, each format naming itself.
    fn fake_tracefs(events: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let ev = dir.path().join("events");
        std::fs::create_dir_all(&ev).unwrap();
        std::fs::write(ev.join("header_page"), "page fields\n").unwrap();
        std::fs::write(ev.join("header_event"), "event fields\n").unwrap();
        for (system, name) in events {
            let d = ev.join(system).join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("format"), format!("name: {name}\nID: 1\n")).unwrap();
        }
        dir
    }

    #[test]
    fn layout_groups_formats_by_system_and_separates_ftrace() {
        let fs = fake_tracefs(&[
            ("sched", "sched_switch"),
            ("sched", "sched_wakeup"),
            ("irq", "irq_handler_entry"),
            ("ftrace", "function"),
            ("sched", "sched_unused"),
        ]);
        std::fs::write(fs.path().join("saved_cmdlines"), "1 init\n").unwrap();
        let tps = [
            Tracepoint::new("sched", "sched_wakeup"),
            Tracepoint::new("irq", "irq_handler_entry"),
            Tracepoint::new("sched", "sched_switch"),
            Tracepoint::new("sched", "sched_wakeup"),
            Tracepoint::new("ftrace", "function"),
        ];
        let blob = tracing_data_at(fs.path(), &tps).unwrap();
        let p = parse(&blob);
        assert_eq!(p.version, TRACING_VERSION);
        assert_eq!(
            usize::from(p.long_size),
            std::mem::size_of::<libc::c_long>()
        );
        assert!(p.page_size.is_power_of_two());
        assert_eq!(p.header_page, b"page fields\n");
        assert_eq!(p.header_event, b"event fields\n");
        assert_eq!(p.ftrace, vec![b"name: function\nID: 1\n".to_vec()]);
        let systems: Vec<(&str, Vec<String>)> = p
            .systems
            .iter()
            .map(|(s, f)| {
                let names = f
                    .iter()
                    .map(|f| {
                        String::from_utf8_lossy(f)
                            .lines()
                            .next()
                            .unwrap()
                            .to_owned()
                    })
                    .collect();
                (s.as_str(), names)
            })
            .collect();
        assert_eq!(
            systems,
            vec![
                (
                    "sched",
                    vec!["name: sched_wakeup".into(), "name: sched_switch".into()]
                ),
                ("irq", vec!["name: irq_handler_entry".into()]),
            ]
        );
        assert!(p.printk.is_empty(), "absent printk_formats is stored empty");
        assert_eq!(p.cmdlines, b"1 init\n");
    }

    #[test]
    fn no_tracepoints_still_makes_a_complete_blob() {
        let fs = fake_tracefs(&[]);
        let p = parse(&tracing_data_at(fs.path(), &[]).unwrap());
        assert!(p.ftrace.is_empty() && p.systems.is_empty());
    }

    #[test]
    fn missing_pieces_are_errors_naming_them() {
        let fs = fake_tracefs(&[("sched", "sched_switch")]);
        let err = tracing_data_at(fs.path(), &[Tracepoint::new("sched", "nope")]).unwrap_err();
        assert!(
            matches!(&err, Error::EventUnavailable { event, .. } if event == "sched:nope"),
            "{err}"
        );
        std::fs::remove_file(fs.path().join("events/header_event")).unwrap();
        let err = tracing_data_at(fs.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("header_event"), "{err}");
    }

    #[test]
    fn names_that_leave_the_events_directory_are_rejected() {
        let fs = fake_tracefs(&[("sched", "sched_switch")]);
        for (system, name) in [("..", "x"), ("sched", "../../etc"), ("", "x"), ("a/b", "c")] {
            let err = tracing_data_at(fs.path(), &[Tracepoint::new(system, name)]).unwrap_err();
            assert!(matches!(err, Error::InvalidEvent { .. }), "{system}:{name}");
        }
    }

    /// The real tracefs, when mounted and readable: sched_switch's format names its fields.
    #[test]
    fn real_tracefs_sched_switch() {
        let Some(root) = tracefs_root() else {
            eprintln!("skipping: tracefs is not mounted");
            return;
        };
        let format_path = root.join("events/sched/sched_switch/format");
        if std::fs::read(&format_path).is_err() {
            eprintln!("skipping: cannot read {}", format_path.display());
            return;
        }
        let blob = tracing_data(&[Tracepoint::new("sched", "sched_switch")]).unwrap();
        let p = parse(&blob);
        assert!(
            String::from_utf8_lossy(&p.header_page).contains("commit"),
            "header_page describes the page header: {:?}",
            String::from_utf8_lossy(&p.header_page)
        );
        let (system, formats) = &p.systems[0];
        assert_eq!(system, "sched");
        let format = String::from_utf8_lossy(&formats[0]);
        assert!(format.contains("name: sched_switch"), "{format}");
        assert!(format.contains("prev_comm"), "{format}");
    }
}
