//! `-G PATH`: finding the cgroup hierarchy perf events are counted in and opening a cgroup's
//! directory, whose fd `perf_event_open` takes with `PERF_FLAG_PID_CGROUP`.
//!
//! As perf's `-G`, `PATH` is relative to the mount point of the hierarchy that has the
//! `perf_event` controller: a cgroup v1 mount with `perf_event` among its options, otherwise the
//! cgroup v2 (unified) mount, where the controller is always present.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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
}
