//! Synthesizes side-band records (FORK, COMM, MMAP2, kernel MMAP) for processes and a kernel that
//! were already running when recording started, the way `perf record -a`/`-p` does from `/proc`.
//!
//! Everything here reads `/proc` and `/lib/modules` only; records go out through a callback, so
//! the caller decides where they land (normally `kprof_perfdata::writer::RecordWriter::write_record`).
//! Processes and threads that vanish during the scan are skipped and counted, not reported as
//! errors; only the callback's own errors, and an unreadable `/proc`, stop the scan.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use kprof_perfdata::SampleId;
use kprof_perfdata::kinds::mmap::{MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE};
use kprof_perfdata::writer::{
    MmapFields, SampleIdLayout, encode_comm, encode_fork, encode_mmap, encode_mmap2,
};

/// Where the synthesized records' `sample_id_all` trailer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthesisContext {
    /// The trailer layout of the recording's first attr.
    pub layout: SampleIdLayout,
    /// The first attr's id, written into the trailer's ID/IDENTIFIER.
    pub id: u64,
}

impl SynthesisContext {
    /// The trailer of a record synthesized for task `pid`/`tid` (`-1`/`0` for the kernel, as the
    /// u32 the kernel writes): this context's id, time 0 as perf writes.
    pub fn sample_id(&self, pid: i32, tid: i32) -> SampleId {
        SampleId {
            pid: Some(pid as u32),
            tid: Some(tid as u32),
            id: Some(self.id),
            ..SampleId::default()
        }
    }
}

/// Knobs for [`synthesize_processes_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SynthesisOptions {
    /// Also emit MMAP2 for non-executable mappings (perf's `--data`). Default: false.
    pub data_mappings: bool,
    /// At most this many mappings per process are emitted (bounds the work on huge address
    /// spaces). Default: 65536, the kernel's default `vm.max_map_count` rounded up.
    pub max_maps_per_process: usize,
    /// Name threads by the kernel's task comm, as tracepoints and bpftrace's `comm` see them:
    /// kernel threads without brackets, and a workqueue worker without the `-DESC` that
    /// `/proc` appends (`kworker/1:2H`, not `kworker/1:2H-kblockd`). Default: false (perf's
    /// and `ps`'s `[kworker/1:2H-kblockd]`). See: issue #14 (`kprof trace`'s comm).
    pub task_comm: bool,
}

impl Default for SynthesisOptions {
    fn default() -> Self {
        Self {
            data_mappings: false,
            max_maps_per_process: 65536,
            task_comm: false,
        }
    }
}

/// What a scan of `/proc` produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynthesisStats {
    /// Processes synthesized.
    pub processes: u64,
    /// Threads synthesized (one FORK + COMM each), leaders included.
    pub threads: u64,
    /// MMAP2 records emitted.
    pub mmaps: u64,
    /// Processes or threads that vanished (or could not be read) during the scan.
    pub skipped: u64,
    /// Processes whose maps were cut at `max_maps_per_process`.
    pub truncated_maps: u64,
}

/// `PF_KTHREAD` in the flags field of `/proc/PID/stat`.
const PF_KTHREAD: u64 = 0x0020_0000;
/// The pid of `kthreadd`, parent of every kernel thread.
const KTHREADD_PID: i32 = 2;
/// The kernel's `TASK_COMM_LEN`: a task comm holds at most 15 bytes and a NUL.
const TASK_COMM_LEN: usize = 16;
/// `PF_WQ_WORKER` in the flags field of `/proc/PID/stat`: a workqueue worker, whose `/proc`
/// name is its task comm followed by `-` and what it is working for.
const PF_WQ_WORKER: u64 = 0x0000_0020;

/// Synthesizes FORK + COMM for every thread and MMAP2 for every executable mapping of the given
/// processes (`None`: every process in `/proc`), with default [`SynthesisOptions`].
pub fn synthesize_processes(
    pids: Option<&[u32]>,
    ctx: &SynthesisContext,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<SynthesisStats> {
    synthesize_processes_with(pids, ctx, &SynthesisOptions::default(), out)
}

/// [`synthesize_processes`] with explicit options.
///
/// Per process, as perf does: for each thread (leader first) a FORK (the leader's parent is its
/// PPid, other threads' parent is the leader) then a COMM; then, for user processes, MMAP2 for
/// each mapping of `/proc/PID/maps`. Kernel threads get no mappings and their names in brackets,
/// as `ps` shows them (`[kworker/1:0]`). A pid that is a thread of another process stands for
/// its whole process; every process is synthesized once.
pub fn synthesize_processes_with(
    pids: Option<&[u32]>,
    ctx: &SynthesisContext,
    options: &SynthesisOptions,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<SynthesisStats> {
    let proc_root = Path::new("/proc");
    let candidates: Vec<i32> = match pids {
        Some(pids) => pids.iter().filter_map(|&p| i32::try_from(p).ok()).collect(),
        None => list_numeric_dir(proc_root)?,
    };
    let mut stats = SynthesisStats::default();
    let mut done = std::collections::HashSet::new();
    for pid in candidates {
        let Some(status) = read_status(&proc_root.join(pid.to_string())) else {
            stats.skipped += 1;
            continue;
        };
        if !done.insert(status.tgid) {
            continue;
        }
        synthesize_one(proc_root, status, ctx, options, out, &mut stats)?;
    }
    Ok(stats)
}

/// The parts of `/proc/PID/status` perf uses.
#[derive(Debug, Clone, Copy)]
struct Status {
    tgid: i32,
    ppid: i32,
}

/// Reads Tgid and PPid from `dir/status`; None if the task vanished or the file is odd.
fn read_status(dir: &Path) -> Option<Status> {
    let text = fs::read_to_string(dir.join("status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().parse::<i32>().ok())
    };
    Some(Status {
        tgid: field("Tgid:")?,
        ppid: field("PPid:")?,
    })
}

/// Whether `dir` (a `/proc/PID`) is a kernel thread: `PF_KTHREAD` in its stat flags, or, when
/// stat cannot be read, kthreadd itself or one of its children.
fn is_kernel_thread(dir: &Path, pid: i32, ppid: i32) -> bool {
    match stat_flags(dir) {
        Some(flags) => flags & PF_KTHREAD != 0,
        None => pid == KTHREADD_PID || ppid == KTHREADD_PID,
    }
}

/// The flags field (9th) of `dir/stat`, parsed after the parenthesized comm.
fn stat_flags(dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(dir.join("stat")).ok()?;
    let after_comm = &text[text.rfind(')')? + 1..];
    // Fields after the comm: state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9).
    after_comm.split_whitespace().nth(6)?.parse().ok()
}

/// Numeric entries of a directory (pids or tids), ascending.
fn list_numeric_dir(dir: &Path) -> io::Result<Vec<i32>> {
    let mut ids: Vec<i32> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// A thread's name as perf records it, bracketed for kernel threads; or, with `task_comm`, the
/// kernel's task comm ([`SynthesisOptions::task_comm`]).
fn thread_name(task_dir: &Path, kernel: bool, task_comm: bool) -> Option<Vec<u8>> {
    let mut comm = fs::read(task_dir.join("comm")).ok()?;
    while comm.last().is_some_and(|&b| b == b'\n') {
        comm.pop();
    }
    if task_comm {
        if kernel && stat_flags(task_dir).is_some_and(|flags| flags & PF_WQ_WORKER != 0) {
            comm.truncate(worker_comm_len(&comm));
        }
        // `/proc` shows a kernel thread's full name; the task comm keeps TASK_COMM_LEN - 1 bytes.
        comm.truncate(TASK_COMM_LEN - 1);
        return Some(comm);
    }
    if kernel {
        let mut bracketed = Vec::with_capacity(comm.len() + 2);
        bracketed.push(b'[');
        bracketed.extend_from_slice(&comm);
        bracketed.push(b']');
        comm = bracketed;
    }
    Some(comm)
}

/// The length of a workqueue worker's task comm within its `/proc` name: the kernel names
/// workers `kworker/CPU:IDH` or `kworker/uPOOL:ID` (no `-`) and `/proc` appends `-DESC`;
/// rescuers (`kworker/R-WQ`) and other names are kept whole.
fn worker_comm_len(name: &[u8]) -> usize {
    match name.strip_prefix(b"kworker/") {
        Some(rest) if !rest.starts_with(b"R-") => rest
            .iter()
            .position(|&b| b == b'-')
            .map_or(name.len(), |dash| b"kworker/".len() + dash),
        _ => name.len(),
    }
}

/// FORK + COMM for every thread of one process, then its mappings.
fn synthesize_one(
    proc_root: &Path,
    status: Status,
    ctx: &SynthesisContext,
    options: &SynthesisOptions,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    stats: &mut SynthesisStats,
) -> io::Result<()> {
    let pid = status.tgid;
    let dir = proc_root.join(pid.to_string());
    // The leader's own status gives the process's parent (the pid we were given may be a thread).
    let Some(leader) = read_status(&dir) else {
        stats.skipped += 1;
        return Ok(());
    };
    let kernel = is_kernel_thread(&dir, pid, leader.ppid);
    let Ok(mut tids) = list_numeric_dir(&dir.join("task")) else {
        stats.skipped += 1;
        return Ok(());
    };
    // Leader first, as perf assumes the leader spawned every other thread.
    tids.sort_by_key(|&tid| (tid != pid, tid));
    let mut any_thread = false;
    for tid in tids {
        let Some(name) = thread_name(
            &dir.join("task").join(tid.to_string()),
            kernel,
            options.task_comm,
        ) else {
            stats.skipped += 1;
            continue;
        };
        let parent = if tid == pid { leader.ppid } else { pid };
        let sid = ctx.sample_id(pid, tid);
        out(&encode_fork(&ctx.layout, pid, parent, tid, parent, 0, &sid))?;
        out(&encode_comm(&ctx.layout, pid, tid, &name, false, &sid))?;
        stats.threads += 1;
        any_thread = true;
    }
    if !any_thread {
        stats.skipped += 1;
        return Ok(());
    }
    stats.processes += 1;
    if !kernel {
        synthesize_maps(&dir, pid, ctx, options, out, stats)?;
    }
    Ok(())
}

/// One parsed line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MapsLine<'a> {
    start: u64,
    end: u64,
    prot: u32,
    flags: u32,
    pgoff: u64,
    maj: u32,
    min: u32,
    ino: u64,
    path: &'a [u8],
}

/// Parses `start-end perms offset maj:min inode [path]`; None for malformed lines.
fn parse_maps_line(line: &[u8]) -> Option<MapsLine<'_>> {
    // The path may hold any bytes; the five leading columns are ASCII. Split by hand.
    let mut rest = line;
    let mut next_col = || -> Option<&[u8]> {
        let trimmed_start = rest.iter().position(|&b| b != b' ')?;
        let trimmed = rest.get(trimmed_start..)?;
        let end = trimmed
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(trimmed.len());
        let (col, tail) = trimmed.split_at(end);
        rest = tail;
        Some(col)
    };
    let range = std::str::from_utf8(next_col()?).ok()?;
    let perms = next_col()?;
    let offset = std::str::from_utf8(next_col()?).ok()?;
    let dev = std::str::from_utf8(next_col()?).ok()?;
    let inode = std::str::from_utf8(next_col()?).ok()?;
    let path = match rest.iter().position(|&b| b != b' ') {
        Some(start) => rest.get(start..).unwrap_or_default(),
        None => &[],
    };
    let (start, end) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    let has = |i: usize, c: u8| perms.get(i) == Some(&c);
    let mut prot = 0;
    if has(0, b'r') {
        prot |= PROT_READ;
    }
    if has(1, b'w') {
        prot |= PROT_WRITE;
    }
    if has(2, b'x') {
        prot |= PROT_EXEC;
    }
    let flags = if has(3, b's') {
        MAP_SHARED
    } else {
        MAP_PRIVATE
    };
    Some(MapsLine {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        prot,
        flags,
        pgoff: u64::from_str_radix(offset, 16).ok()?,
        maj: u32::from_str_radix(maj, 16).ok()?,
        min: u32::from_str_radix(min, 16).ok()?,
        ino: inode.parse().ok()?,
        path,
    })
}

/// MMAP2 for the mappings of one process (executable ones unless `data_mappings`).
fn synthesize_maps(
    dir: &Path,
    pid: i32,
    ctx: &SynthesisContext,
    options: &SynthesisOptions,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    stats: &mut SynthesisStats,
) -> io::Result<()> {
    let Ok(maps) = fs::read(dir.join("maps")) else {
        stats.skipped += 1;
        return Ok(());
    };
    let sid = ctx.sample_id(pid, pid);
    let mut emitted = 0usize;
    for line in maps.split(|&b| b == b'\n') {
        let Some(map) = parse_maps_line(line) else {
            continue;
        };
        if map.prot & PROT_EXEC == 0 && !options.data_mappings {
            continue;
        }
        if emitted >= options.max_maps_per_process {
            stats.truncated_maps += 1;
            break;
        }
        // perf names anonymous (and hugetlbfs-anonymous) memory "//anon".
        let filename: &[u8] = if map.path.is_empty() || map.path.starts_with(b"/anon_hugepage") {
            b"//anon"
        } else {
            map.path
        };
        let fields = MmapFields {
            pid,
            tid: pid,
            start: map.start,
            len: map.end.saturating_sub(map.start),
            pgoff: map.pgoff,
            maj: map.maj,
            min: map.min,
            ino: map.ino,
            ino_generation: 0,
            prot: map.prot,
            flags: map.flags,
            filename,
            kernel: false,
        };
        out(&encode_mmap2(&ctx.layout, &fields, &sid))?;
        emitted += 1;
        stats.mmaps += 1;
    }
    Ok(())
}

/// Name perf gives the kernel's text mapping.
pub const KERNEL_MMAP_NAME: &str = "[kernel.kallsyms]_text";

/// Emits the kernel's MMAP (`[kernel.kallsyms]_text` at `_text`, falling back to `_stext`, up to
/// `_etext`, pgoff = the start address, pid -1, misc KERNEL, as perf does) and one MMAP per loaded
/// module from `/proc/modules`, named by its path under `/lib/modules/$(uname -r)` when
/// `modules.dep` lists it, else `[name]`.
///
/// Fails with `PermissionDenied` when `/proc/kallsyms` hides addresses (`kptr_restrict`), with
/// `NotFound` when it has no `_text`/`_stext`, or with the callback's error.
pub fn synthesize_kernel(
    ctx: &SynthesisContext,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    synthesize_kernel_at(kernel_text()?, ctx, out)
}

/// The kernel's text range, `_text` (or `_stext`) up to `_etext` when known, read from
/// `/proc/kallsyms`. Slow (the kernel formats every symbol: about half a second), so
/// `kprof trace` reads it on a thread while the workload starts.
///
/// Fails as [`synthesize_kernel`] does.
pub fn kernel_text() -> io::Result<(u64, Option<u64>)> {
    kernel_text_range(Path::new("/proc/kallsyms"))
}

/// [`synthesize_kernel`] with the kernel's text range already read ([`kernel_text`]).
pub fn synthesize_kernel_at(
    (start, end): (u64, Option<u64>),
    ctx: &SynthesisContext,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let sid = ctx.sample_id(-1, 0);
    let kernel = MmapFields {
        pid: -1,
        tid: 0,
        start,
        len: end.map_or(u64::MAX - start, |end| end.saturating_sub(start)),
        pgoff: start,
        filename: KERNEL_MMAP_NAME.as_bytes(),
        kernel: true,
        ..Default::default()
    };
    out(&encode_mmap(&ctx.layout, &kernel, &sid))?;
    let Ok(modules) = fs::read_to_string("/proc/modules") else {
        return Ok(()); // no module support
    };
    let paths = module_paths();
    for module in modules.lines().filter_map(parse_module_line) {
        let filename = paths
            .iter()
            .find(|(name, _)| *name == normalize_module_name(module.name))
            .map_or_else(|| format!("[{}]", module.name), |(_, path)| path.clone());
        let fields = MmapFields {
            pid: -1,
            tid: 0,
            start: module.address,
            len: module.size,
            pgoff: 0,
            filename: filename.as_bytes(),
            kernel: true,
            ..Default::default()
        };
        out(&encode_mmap(&ctx.layout, &fields, &sid))?;
    }
    Ok(())
}

/// `_text` (or `_stext`) and `_etext` from a kallsyms file.
fn kernel_text_range(path: &Path) -> io::Result<(u64, Option<u64>)> {
    let reader = BufReader::new(fs::File::open(path)?);
    let (mut text, mut stext, mut etext) = (None, None, None);
    for line in reader.lines() {
        let line = line?;
        let mut cols = line.split_whitespace();
        let (Some(addr), Some(_), Some(name)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        let slot = match name {
            "_text" => &mut text,
            "_stext" => &mut stext,
            "_etext" => &mut etext,
            _ => continue,
        };
        *slot = u64::from_str_radix(addr, 16).ok();
        if text.is_some() && etext.is_some() {
            break;
        }
    }
    match text.or(stext) {
        Some(0) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "kernel addresses in /proc/kallsyms are hidden (see /proc/sys/kernel/kptr_restrict)",
        )),
        Some(start) => Ok((start, etext.filter(|&end| end > start))),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no _text or _stext in /proc/kallsyms",
        )),
    }
}

/// One loaded module from `/proc/modules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModuleLine<'a> {
    name: &'a str,
    size: u64,
    address: u64,
}

/// Parses `name size refcount deps state address ...`; None for malformed or hidden (0) lines.
fn parse_module_line(line: &str) -> Option<ModuleLine<'_>> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    let address = cols.get(5)?.trim_start_matches("0x");
    let address = u64::from_str_radix(address, 16).ok().filter(|&a| a != 0)?;
    Some(ModuleLine {
        name: cols.first()?,
        size: cols.get(1)?.parse().ok()?,
        address,
    })
}

/// Module names compare with `-` and `_` equal, as the kernel treats them.
fn normalize_module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// `(normalized module name, absolute path)` for every module `modules.dep` lists.
fn module_paths() -> Vec<(String, String)> {
    let Ok(release) = fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return Vec::new();
    };
    let base = PathBuf::from("/lib/modules").join(release.trim());
    let Ok(dep) = fs::read_to_string(base.join("modules.dep")) else {
        return Vec::new();
    };
    dep.lines()
        .filter_map(|line| {
            let rel = line.split(':').next()?;
            let file = rel.rsplit('/').next()?;
            let name = file.split(".ko").next()?;
            Some((
                normalize_module_name(name),
                base.join(rel).to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprof_perfdata::kinds::{record as record_type, sample as sample_type};
    use kprof_perfdata::writer::RecordWriter;
    use kprof_test_support::command::{PERF_COMPLAINTS, stdout_without_complaints};

    fn u16_at(b: &[u8], o: usize) -> u16 {
        u16::from_ne_bytes(b[o..o + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_ne_bytes(b[o..o + 4].try_into().unwrap())
    }
    fn i32_at(b: &[u8], o: usize) -> i32 {
        u32_at(b, o) as i32
    }
    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_ne_bytes(b[o..o + 8].try_into().unwrap())
    }
    fn c_str(b: &[u8], o: usize) -> &[u8] {
        let rest = &b[o..];
        &rest[..rest.iter().position(|&c| c == 0).unwrap()]
    }

    fn ctx() -> SynthesisContext {
        SynthesisContext {
            layout: SampleIdLayout::new(sample_type::TID | sample_type::TIME | sample_type::ID),
            id: 77,
        }
    }

    /// Runs a synthesis and returns its records, checking each one's framing.
    fn collect(run: impl FnOnce(&mut dyn FnMut(&[u8]) -> io::Result<()>)) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        run(&mut |rec: &[u8]| {
            records.push(rec.to_vec());
            Ok(())
        });
        for rec in &records {
            assert_eq!(usize::from(u16_at(rec, 6)), rec.len());
            assert_eq!(rec.len() % 8, 0);
            // The trailer's last field is the id (TID, TIME, ID layout).
            assert_eq!(u64_at(rec, rec.len() - 8), 77);
        }
        records
    }

    fn of_type(records: &[Vec<u8>], ty: u32) -> Vec<&Vec<u8>> {
        records.iter().filter(|r| u32_at(r, 0) == ty).collect()
    }

    #[test]
    fn parses_maps_lines() {
        let line = b"7f12a0000000-7f12a0021000 r-xp 00002000 fe:01 1234   /opt/my app/lib x.so";
        let map = parse_maps_line(line).unwrap();
        assert_eq!(
            (map.start, map.end, map.pgoff),
            (0x7f12a0000000, 0x7f12a0021000, 0x2000)
        );
        assert_eq!((map.maj, map.min, map.ino), (0xfe, 1, 1234));
        assert_eq!((map.prot, map.flags), (PROT_READ | PROT_EXEC, MAP_PRIVATE));
        assert_eq!(map.path, b"/opt/my app/lib x.so");
        let anon = parse_maps_line(b"7ffd0000-7ffd1000 rw-s 00000000 00:00 0 ").unwrap();
        assert_eq!(
            (anon.prot, anon.flags, anon.path),
            (PROT_READ | PROT_WRITE, MAP_SHARED, &b""[..])
        );
        assert!(parse_maps_line(b"").is_none());
        assert!(parse_maps_line(b"zz-10 r-xp 0 00:00 0").is_none());
        assert!(parse_maps_line(b"10-20 r-xp 0").is_none());
    }

    // See: issue #14 (kprof trace's comm of kworkers is the task comm, as bpftrace's)
    #[test]
    fn worker_task_comms_lose_procs_description() {
        fn len(name: &str) -> &str {
            &name[..worker_comm_len(name.as_bytes())]
        }
        assert_eq!(len("kworker/1:2H-kblockd"), "kworker/1:2H");
        assert_eq!(len("kworker/u8:3-flush-8:0"), "kworker/u8:3");
        assert_eq!(len("kworker/0:1"), "kworker/0:1");
        assert_eq!(len("kworker/R-rcu_g"), "kworker/R-rcu_g");
        assert_eq!(len("my-worker"), "my-worker");
    }

    #[test]
    fn task_comm_names_kernel_threads_without_brackets() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("comm"), "kworker/1:2H-kblockd\n").unwrap();
        let stat = "77 (kworker/1:2H-kblockd) I 2 0 0 0 -1 69238880 0 0\n";
        fs::write(dir.path().join("stat"), stat).unwrap();
        assert_eq!(
            thread_name(dir.path(), true, false).unwrap(),
            b"[kworker/1:2H-kblockd]"
        );
        // 69238880 = 0x4208060: PF_KTHREAD | PF_WQ_WORKER among others.
        assert_eq!(
            thread_name(dir.path(), true, true).unwrap(),
            b"kworker/1:2H"
        );
        assert_eq!(
            thread_name(dir.path(), false, true).unwrap(),
            b"kworker/1:2H-kb"
        );
        fs::write(dir.path().join("comm"), "kworker/R-kvfree_rcu_reclaim\n").unwrap();
        assert_eq!(
            thread_name(dir.path(), true, true).unwrap(),
            b"kworker/R-kvfre"
        );
    }

    #[test]
    fn parses_module_lines_and_kallsyms() {
        let m = parse_module_line("virtio_net 57344 0 - Live 0xffffffffc0123000").unwrap();
        assert_eq!(
            (m.name, m.size, m.address),
            ("virtio_net", 57344, 0xffffffffc0123000)
        );
        assert!(parse_module_line("hidden 4096 0 - Live 0x0000000000000000").is_none());
        assert!(parse_module_line("short 4096").is_none());
        assert_eq!(normalize_module_name("snd-hda_intel"), "snd_hda_intel");

        let dir = tempfile::tempdir().unwrap();
        let syms = dir.path().join("kallsyms");
        fs::write(
            &syms,
            "0000000000000000 A fixed_percpu_data\nffffffff81000000 T _stext\n\
             ffffffff81000000 T _text\nffffffff82000000 T _etext\n",
        )
        .unwrap();
        assert_eq!(
            kernel_text_range(&syms).unwrap(),
            (0xffffffff81000000, Some(0xffffffff82000000))
        );
        fs::write(
            &syms,
            "0000000000000000 T _text\n0000000000000000 T _etext\n",
        )
        .unwrap();
        let err = kernel_text_range(&syms).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        fs::write(&syms, "ffffffff81000000 T _stext\n").unwrap();
        assert_eq!(
            kernel_text_range(&syms).unwrap(),
            (0xffffffff81000000, None)
        );
        fs::write(&syms, "ffffffff81000000 T other\n").unwrap();
        assert_eq!(
            kernel_text_range(&syms).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn synthesizes_own_process() {
        let pid = std::process::id();
        let mut stats = SynthesisStats::default();
        let records = collect(|out| {
            stats = synthesize_processes(Some(&[pid, pid]), &ctx(), out).unwrap();
        });
        assert_eq!(stats.processes, 1, "a pid given twice is synthesized once");
        let comms = of_type(&records, record_type::COMM);
        let forks = of_type(&records, record_type::FORK);
        assert_eq!(comms.len() as u64, stats.threads);
        assert_eq!(forks.len(), comms.len());
        // The leader comes first, parented by our real parent.
        let own_name = fs::read_to_string("/proc/self/comm").unwrap();
        let ppid = read_status(Path::new("/proc/self")).unwrap().ppid;
        let leader = &comms[0];
        assert_eq!(
            (i32_at(leader, 8), i32_at(leader, 12)),
            (pid as i32, pid as i32)
        );
        assert_eq!(c_str(leader, 16), own_name.trim_end().as_bytes());
        assert_eq!(
            [
                i32_at(forks[0], 8),
                i32_at(forks[0], 12),
                i32_at(forks[0], 16)
            ],
            [pid as i32, ppid, pid as i32]
        );
        for fork in &forks[1..] {
            assert_eq!(
                (i32_at(fork, 8), i32_at(fork, 12)),
                (pid as i32, pid as i32)
            );
        }
        // Our own executable's text is mapped, and only executable mappings are emitted.
        let exe = fs::read_link("/proc/self/exe").unwrap();
        let mmaps = of_type(&records, record_type::MMAP2);
        assert_eq!(mmaps.len() as u64, stats.mmaps);
        assert!(
            mmaps
                .iter()
                .any(|m| c_str(m, 72) == exe.as_os_str().as_encoded_bytes()),
            "no MMAP2 for {exe:?}"
        );
        let own_fn = synthesizes_own_process as fn() as usize as u64;
        assert!(
            mmaps
                .iter()
                .any(|m| (u64_at(m, 16)..u64_at(m, 16) + u64_at(m, 24)).contains(&own_fn))
        );
        assert!(mmaps.iter().all(|m| u32_at(m, 64) & PROT_EXEC != 0));

        let with_data = collect(|out| {
            let options = SynthesisOptions {
                data_mappings: true,
                ..SynthesisOptions::default()
            };
            synthesize_processes_with(Some(&[pid]), &ctx(), &options, out).unwrap();
        });
        assert!(of_type(&with_data, record_type::MMAP2).len() > mmaps.len());
    }

    #[test]
    fn caps_maps_per_process() {
        let pid = std::process::id();
        let options = SynthesisOptions {
            max_maps_per_process: 1,
            ..SynthesisOptions::default()
        };
        let mut stats = SynthesisStats::default();
        let records = collect(|out| {
            stats = synthesize_processes_with(Some(&[pid]), &ctx(), &options, out).unwrap();
        });
        assert_eq!(of_type(&records, record_type::MMAP2).len(), 1);
        assert_eq!(stats.truncated_maps, 1);
    }

    #[test]
    fn kernel_threads_are_bracketed() {
        if fs::read_to_string("/proc/2/comm")
            .map(|c| c.trim() != "kthreadd")
            .unwrap_or(true)
        {
            eprintln!("skipping: pid 2 is not kthreadd here (pid namespace?)");
            return;
        }
        let mut kthreads: Vec<u32> = vec![2];
        for pid in list_numeric_dir(Path::new("/proc")).unwrap() {
            if read_status(Path::new(&format!("/proc/{pid}"))).is_some_and(|s| s.ppid == 2) {
                kthreads.push(pid as u32);
            }
        }
        assert!(kthreads.len() > 1, "kthreadd has no children?");
        let records = collect(|out| {
            synthesize_processes(Some(&kthreads), &ctx(), out).unwrap();
        });
        assert!(of_type(&records, record_type::MMAP2).is_empty());
        let comms = of_type(&records, record_type::COMM);
        assert!(
            comms.len() + 2 >= kthreads.len(),
            "a couple may exit during the scan"
        );
        let mut checked = 0;
        for comm in comms {
            let name = c_str(comm, 16);
            let tid = i32_at(comm, 12);
            assert!(
                name.starts_with(b"[") && name.ends_with(b"]"),
                "{}",
                String::from_utf8_lossy(name)
            );
            if let Ok(real) = fs::read_to_string(format!("/proc/{tid}/comm")) {
                // A kworker renames itself after the work it picks up (`kworker/u8:1-ext4-…`),
                // possibly between the scan and this read: compare up to that suffix.
                let stable = |n: &[u8]| -> Vec<u8> {
                    if n.starts_with(b"kworker") {
                        n.split(|&b| b == b'-').next().unwrap_or(n).to_vec()
                    } else {
                        n.to_vec()
                    }
                };
                assert_eq!(
                    stable(&name[1..name.len() - 1]),
                    stable(real.trim_end().as_bytes())
                );
                checked += 1;
            }
        }
        assert!(checked > 0);
        assert!(
            of_type(&records, record_type::COMM)
                .iter()
                .any(|c| c_str(c, 16) == b"[kthreadd]")
        );
    }

    #[test]
    fn vanished_processes_are_skipped() {
        // pid_max is at most 2^22, so this pid cannot exist.
        let mut stats = SynthesisStats::default();
        let records = collect(|out| {
            stats = synthesize_processes(Some(&[(1 << 22) + 5]), &ctx(), out).unwrap();
        });
        assert!(records.is_empty());
        assert_eq!((stats.processes, stats.skipped), (0, 1));
    }

    #[test]
    fn callback_errors_stop_the_scan() {
        let pid = std::process::id();
        let mut calls = 0;
        let result = synthesize_processes(Some(&[pid]), &ctx(), &mut |_| {
            calls += 1;
            Err(io::Error::other("disk full"))
        });
        assert_eq!(result.unwrap_err().to_string(), "disk full");
        assert_eq!(calls, 1);
    }

    /// A cpu-clock attr built by hand (PERF_TYPE_SOFTWARE, config 0) with sample_id_all.
    fn cpu_clock_attr(st: u64) -> Vec<u8> {
        let mut attr = vec![0u8; 128];
        attr[0..4].copy_from_slice(&1u32.to_ne_bytes());
        attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
        attr[16..24].copy_from_slice(&1_000_000u64.to_ne_bytes());
        attr[24..32].copy_from_slice(&st.to_ne_bytes());
        let flags: u64 = 1 | (1 << 8) | (1 << 9) | (1 << 18) | (1 << 23) | (1 << 24);
        attr[40..48].copy_from_slice(&flags.to_ne_bytes());
        attr
    }

    /// A SAMPLE for IP|TID|TIME|ID|CPU|PERIOD.
    fn sample(ip: u64, pid: i32, tid: i32, time: u64, id: u64, kernel: bool) -> Vec<u8> {
        let mut rec = Vec::new();
        rec.extend_from_slice(&record_type::SAMPLE.to_ne_bytes());
        let misc: u16 = if kernel { 1 } else { 2 };
        rec.extend_from_slice(&misc.to_ne_bytes());
        rec.extend_from_slice(&56u16.to_ne_bytes());
        rec.extend_from_slice(&ip.to_ne_bytes());
        rec.extend_from_slice(&pid.to_ne_bytes());
        rec.extend_from_slice(&tid.to_ne_bytes());
        rec.extend_from_slice(&time.to_ne_bytes());
        rec.extend_from_slice(&id.to_ne_bytes());
        rec.extend_from_slice(&0u64.to_ne_bytes()); // cpu, res
        rec.extend_from_slice(&1_000_000u64.to_ne_bytes());
        assert_eq!(rec.len(), 56);
        rec
    }

    #[inline(never)]
    fn procfs_marker(n: u64) -> u64 {
        (0..std::hint::black_box(n)).fold(3u64, |acc, k| acc.wrapping_mul(17) ^ k)
    }

    /// The whole `-a` path: every process of /proc, the kernel, host features and build-ids,
    /// read back by Linux perf without a warning.
    #[test]
    fn perf_reads_synthesized_system() {
        use kprof_perfdata::writer::{
            Writer, WriterAttr, encode_finished_init, encode_finished_round,
        };
        let perf = std::path::PathBuf::from("/usr/bin/perf");
        if !perf.exists() {
            assert!(
                std::env::var_os("KPROF_REQUIRE_PERF").is_none_or(|v| v != "1"),
                "KPROF_REQUIRE_PERF=1 but /usr/bin/perf is missing"
            );
            eprintln!("skipping: /usr/bin/perf not found");
            return;
        }
        let st = sample_type::IP
            | sample_type::TID
            | sample_type::TIME
            | sample_type::ID
            | sample_type::CPU
            | sample_type::PERIOD;
        let attr = cpu_clock_attr(st);
        let ctx = SynthesisContext {
            layout: SampleIdLayout::from_attr(&attr),
            id: 9,
        };
        let attrs = vec![WriterAttr {
            attr,
            ids: vec![9],
            name: "cpu-clock".into(),
        }];
        let mut writer = Writer::new(std::io::Cursor::new(Vec::new()), attrs).unwrap();
        let kernel_ok = synthesize_kernel(&ctx, &mut |r| writer.write_record(r)).is_ok();
        let stats = synthesize_processes(None, &ctx, &mut |r| writer.write_record(r)).unwrap();
        assert!(stats.processes > 2, "{stats:?}");
        writer.write_record(&encode_finished_init()).unwrap();

        let pid = std::process::id() as i32;
        let ip = procfs_marker as fn(u64) -> u64 as usize as u64 + 4;
        assert!(procfs_marker(3) != 0);
        for k in 0..3 {
            writer
                .write_record(&sample(ip, pid, pid, 1000 + k, 9, false))
                .unwrap();
        }
        let kthreadd_is_2 =
            fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd");
        let kernel_fn = fs::read_to_string("/proc/kallsyms")
            .unwrap_or_default()
            .lines()
            .find(|l| l.ends_with(" T kthreadd"))
            .and_then(|l| u64::from_str_radix(&l[..16], 16).ok())
            .filter(|&a| a != 0 && kernel_ok && kthreadd_is_2);
        if let Some(addr) = kernel_fn {
            writer
                .write_record(&sample(addr + 4, 2, 2, 2000, 9, true))
                .unwrap();
        }
        writer.write_record(&encode_finished_round()).unwrap();

        let exe = fs::read_link("/proc/self/exe")
            .unwrap()
            .display()
            .to_string();
        let mut features = crate::buildid::host_features(
            &["kprof".into(), "record".into(), "-a".into()],
            "kprof 0.1.0",
        );
        features.build_ids = crate::buildid::collect_build_ids([
            (-1, true, KERNEL_MMAP_NAME.to_string()),
            (-1, false, exe.clone()),
        ]);
        features.sample_time = Some((1000, 2000));
        let bytes = writer.finish(&features).unwrap().into_inner();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("system.data");
        fs::write(&path, bytes).unwrap();
        let file = path.to_str().unwrap();

        let run = |args: &[&str]| {
            stdout_without_complaints(
                std::process::Command::new(&perf).args(args),
                &PERF_COMPLAINTS,
            )
        };
        let header = run(&["report", "--header-only", "-i", file]);
        assert!(
            header.contains(&format!(
                "hostname : {}",
                features.hostname.as_deref().unwrap_or_default()
            )),
            "{header}"
        );
        assert!(
            header.contains(&format!(
                "os release : {}",
                features.osrelease.as_deref().unwrap_or_default()
            )),
            "{header}"
        );
        assert!(header.contains("cmdline : kprof record -a"), "{header}");
        let expected_samples = if kernel_fn.is_some() { 4 } else { 3 };
        let report = run(&["report", "-i", file, "--stdio"]);
        assert!(
            report.contains(&format!("# Samples: {expected_samples}")),
            "{report}"
        );
        let script = run(&["script", "-i", file, "-F", "comm,tid,ip,sym"]);
        let lines: Vec<&str> = script.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), expected_samples, "{script}");
        for line in &lines[..3] {
            assert!(
                line.contains("procfs_marker") && line.contains(&pid.to_string()),
                "{line}"
            );
        }
        if kernel_fn.is_some() {
            assert!(
                lines[3].contains("[kthreadd]") && lines[3].contains(" kthreadd"),
                "{}",
                lines[3]
            );
        }
        // perf's own build-id listing agrees with the table we wrote.
        let listed = run(&["buildid-list", "-i", file]);
        for entry in &features.build_ids {
            let id: String = entry.build_id.iter().map(|b| format!("{b:02x}")).collect();
            assert!(
                listed.contains(&format!("{id} {}", entry.filename)),
                "{listed}"
            );
        }
    }

    #[test]
    fn synthesizes_kernel_mmap() {
        let mut result = Ok(());
        let records = collect(|out| result = synthesize_kernel(&ctx(), out));
        if let Err(err) = result {
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
            eprintln!("skipping: {err}");
            return;
        }
        let kernel = &records[0];
        assert_eq!(u32_at(kernel, 0), record_type::MMAP);
        assert_eq!(
            u16_at(kernel, 4),
            kprof_perfdata::kinds::misc::CPUMODE_KERNEL
        );
        assert_eq!((i32_at(kernel, 8), i32_at(kernel, 12)), (-1, 0));
        let (start, len, pgoff) = (u64_at(kernel, 16), u64_at(kernel, 24), u64_at(kernel, 32));
        assert_eq!(pgoff, start);
        assert!(start > 0 && len > 0);
        assert_eq!(c_str(kernel, 40), KERNEL_MMAP_NAME.as_bytes());
        let text = fs::read_to_string("/proc/kallsyms").unwrap();
        let text_addr = text
            .lines()
            .find(|l| l.ends_with(" _text"))
            .map(|l| u64::from_str_radix(&l[..16], 16).unwrap())
            .unwrap();
        assert_eq!(start, text_addr);
        let modules = fs::read_to_string("/proc/modules")
            .map(|m| m.lines().count())
            .unwrap_or(0);
        assert!(records.len() <= 1 + modules);
        for module in &records[1..] {
            assert_eq!(u32_at(module, 0), record_type::MMAP);
            assert!(!c_str(module, 40).is_empty());
        }
    }
}
