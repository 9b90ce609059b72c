//! Cgroups: `-G PATH`, finding the cgroup hierarchy perf events are counted in and opening a
//! cgroup's directory, whose fd `perf_event_open` takes with `PERF_FLAG_PID_CGROUP`; and
//! `--all-cgroups`, naming the cgroups that exist when recording starts (PERF_RECORD_CGROUP).
//!
//! As perf's `-G`, `PATH` is relative to the mount point of the hierarchy that has the
//! `perf_event` controller: a cgroup v1 mount with `perf_event` among its options, otherwise the
//! cgroup v2 (unified) mount, where the controller is always present. A sample's cgroup id
//! (PERF_SAMPLE_CGROUP) is its task's cgroup in that same hierarchy (the kernel reads the
//! `perf_event` controller's css), so the names are synthesized from it too, as perf does.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kprof_perfdata::SampleId;
use kprof_perfdata::writer::encode_cgroup;

use crate::error::{Error, Result};
use crate::procfs::SynthesisContext;

/// Where the mount table is read from.
const MOUNTS: &str = "/proc/self/mounts";

/// An opened cgroup: its directory (kept open for the kernel) and its name as given.
#[derive(Debug)]
pub struct Cgroup {
    /// The name as given to `-G`, as perf prints it.
    pub name: String,
    /// The directory opened.
    pub path: PathBuf,
    /// The open directory.
    pub dir: File,
}

/// The mount point of the hierarchy with the `perf_event` controller, from a mount table in
/// `/proc/mounts` format: a v1 `cgroup` mount listing `perf_event`, else the `cgroup2` mount.
pub fn perf_event_mount(mounts: &str) -> Option<PathBuf> {
    let mut unified = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dir), Some(kind), Some(options)) = (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        let dir = unescape_mount_field(dir);
        match *kind {
            "cgroup" if options.split(',').any(|o| o == "perf_event") => {
                return Some(PathBuf::from(dir));
            }
            "cgroup2" if unified.is_none() => unified = Some(PathBuf::from(dir)),
            _ => {}
        }
    }
    unified
}

/// `/proc/mounts` writes space, tab, newline and backslash as `\\ooo` octal escapes.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let code = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory `-G name` means under `mount`: the name relative to the mount (a leading `/`
/// included, as perf), or the name itself when it is already a path inside the mount.
pub fn cgroup_dir(mount: &Path, name: &str) -> PathBuf {
    let given = Path::new(name);
    if given.starts_with(mount) {
        return given.to_path_buf();
    }
    mount.join(name.trim_start_matches('/'))
}

/// Opens the cgroup `-G name` names, with one clear error naming the path when it is missing.
pub fn open(name: &str) -> Result<Cgroup> {
    let mounts = std::fs::read_to_string(MOUNTS).map_err(|e| Error::Cgroup {
        path: PathBuf::from(name),
        reason: format!("cannot read {MOUNTS}: {e}"),
    })?;
    let mount = perf_event_mount(&mounts).ok_or_else(|| Error::Cgroup {
        path: PathBuf::from(name),
        reason: "no cgroup hierarchy with the perf_event controller is mounted \
                 (mount cgroup2, or a cgroup v1 hierarchy with -o perf_event)"
            .to_owned(),
    })?;
    open_in(&mount, name)
}

/// Opens `-G name` under `mount`.
pub fn open_in(mount: &Path, name: &str) -> Result<Cgroup> {
    if name.is_empty() || name.split('/').any(|part| part == "..") {
        return Err(Error::Cgroup {
            path: PathBuf::from(name),
            reason: "expected a cgroup path relative to the cgroup mount, without '..'".to_owned(),
        });
    }
    let path = cgroup_dir(mount, name);
    let not_usable = |reason: String| Error::Cgroup {
        path: path.clone(),
        reason,
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(not_usable("not a directory".to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_usable(format!(
                "no such cgroup (-G takes a path relative to {})",
                mount.display()
            )));
        }
        Err(e) => return Err(not_usable(e.to_string())),
    }
    let dir = File::open(&path).map_err(|e| not_usable(e.to_string()))?;
    Ok(Cgroup {
        name: name.to_owned(),
        path,
        dir,
    })
}

/// The mount point of the `perf_event` hierarchy of this machine, if one is mounted.
pub fn perf_event_mount_here() -> Option<PathBuf> {
    perf_event_mount(&std::fs::read_to_string(MOUNTS).ok()?)
}

/// Synthesizes one PERF_RECORD_CGROUP per cgroup of the `perf_event` hierarchy (none when it is
/// not mounted), so that samples of tasks already in a cgroup get its name. Returns how many.
pub fn synthesize_cgroups(
    ctx: &SynthesisContext,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    match perf_event_mount_here() {
        Some(mount) => synthesize_cgroups_under(&mount, ctx, out),
        None => Ok(0),
    }
}

/// Synthesizes PERF_RECORD_CGROUP for `mount` (path `/`) and every directory below it (path
/// `/a/b`, relative to the mount), parents before children, as perf walks the tree. Cgroups that
/// vanish during the walk are skipped; only `out`'s errors and an unreadable `mount` stop it.
///
/// The id is the directory's inode number: cgroupfs (kernfs) gives each cgroup its node id as
/// inode number (`kernfs_ino()`), which is the id the kernel puts in samples (`cgroup_id()`)
/// and perf reads with `name_to_handle_at`. That holds where `ino_t` has 64 bits; a 32-bit
/// kernel keeps only the low half, so there no names are synthesized rather than wrong ones.
pub fn synthesize_cgroups_under(
    mount: &Path,
    ctx: &SynthesisContext,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    if cfg!(not(target_pointer_width = "64")) {
        return Ok(0);
    }
    let sid = SampleId {
        id: Some(ctx.id),
        ..SampleId::default()
    };
    let root_id = std::fs::metadata(mount)?.ino();
    out(&encode_cgroup(&ctx.layout, root_id, b"/", &sid))?;
    let mut count = 1;
    // Depth first, parents before children, each directory's entries in name order.
    let mut pending: Vec<(PathBuf, String)> = children(mount, "");
    pending.reverse();
    while let Some((dir, relative)) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue; // removed meanwhile
        };
        out(&encode_cgroup(
            &ctx.layout,
            meta.ino(),
            relative.as_bytes(),
            &sid,
        ))?;
        count += 1;
        let mut below = children(&dir, &relative);
        below.reverse();
        pending.extend(below);
    }
    Ok(count)
}

/// The sub-directories (child cgroups) of `dir`, with their paths relative to the mount, in name
/// order; none when `dir` cannot be read (it vanished).
fn children(dir: &Path, relative: &str) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, String)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            if !entry.file_type().ok()?.is_dir() {
                return None;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            Some((entry.path(), format!("{relative}/{name}")))
        })
        .collect();
    found.sort_unstable_by(|a, b| a.1.cmp(&b.1));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_perf_event_hierarchy() {
        let v1 = "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
                  cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n\
                  cgroup /sys/fs/cgroup/perf\\040event cgroup rw,perf_event 0 0\n";
        assert_eq!(
            perf_event_mount(v1),
            Some(PathBuf::from("/sys/fs/cgroup/perf event"))
        );
        let v2 = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                  cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
                  cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        assert_eq!(
            perf_event_mount(v2),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(perf_event_mount("proc /proc proc rw 0 0\n"), None);
    }

    #[test]
    fn names_are_relative_to_the_mount() {
        let mount = Path::new("/sys/fs/cgroup");
        assert_eq!(
            cgroup_dir(mount, "a/b"),
            PathBuf::from("/sys/fs/cgroup/a/b")
        );
        assert_eq!(cgroup_dir(mount, "/a"), PathBuf::from("/sys/fs/cgroup/a"));
        assert_eq!(
            cgroup_dir(mount, "/sys/fs/cgroup/a"),
            PathBuf::from("/sys/fs/cgroup/a")
        );
    }

    #[test]
    fn a_missing_cgroup_is_one_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("present")).unwrap();
        assert!(open_in(dir.path(), "present").is_ok());
        let err = open_in(dir.path(), "absent").unwrap_err().to_string();
        let expected = dir.path().join("absent");
        assert!(
            err.starts_with(&format!("cgroup {}: no such cgroup", expected.display())),
            "{err}"
        );
        assert!(open_in(dir.path(), "../etc").is_err());
    }

    #[test]
    fn synthesized_cgroups_name_every_directory_by_inode() {
        use kprof_perfdata::writer::SampleIdLayout;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir(dir.path().join("c")).unwrap();
        std::fs::write(dir.path().join("cgroup.procs"), "").unwrap();
        let ctx = SynthesisContext {
            layout: SampleIdLayout::none(),
            id: 0,
        };
        let mut records = Vec::new();
        let count = synthesize_cgroups_under(dir.path(), &ctx, &mut |r| {
            records.push(r.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(count, 4);
        let decoded: Vec<(u64, String)> = records
            .iter()
            .map(|r| {
                assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 19);
                assert_eq!(
                    usize::from(u16::from_ne_bytes(r[6..8].try_into().unwrap())),
                    r.len()
                );
                let id = u64::from_ne_bytes(r[8..16].try_into().unwrap());
                let path = r[16..].split(|&b| b == 0).next().unwrap();
                (id, String::from_utf8(path.to_vec()).unwrap())
            })
            .collect();
        let ino = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().ino();
        assert_eq!(
            decoded,
            [
                (ino(""), "/".to_owned()),
                (ino("a"), "/a".to_owned()),
                (ino("a/b"), "/a/b".to_owned()),
                (ino("c"), "/c".to_owned()),
            ]
        );
    }
}
