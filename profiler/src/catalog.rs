//! What this machine can count, for `kprof list`: the hardware and software events the kernel
//! accepts (probed with `perf_event_open`) and the tracepoints in tracefs with their fields.
//!
//! Fields come from `events/SYS/NAME/format`, read by the one tracepoint format parser,
//! [`kprof_perfdata::tracepoint::EventFormat`].

use std::io;
use std::path::{Path, PathBuf};

use kprof_perfdata::tracepoint::{EventFormat, Field};

use crate::error::{Error, Result};
use crate::events::{self, EventAttr, EventKind};
use crate::perms;
use crate::sys;
use crate::tracing;

/// Whether this machine counts an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// `perf_event_open` accepted it.
    Supported,
    /// The kernel has no such PMU or event here.
    NotSupported,
    /// The probe failed for another reason (say, permission), given here.
    Unknown(String),
}

/// A hardware or software event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEvent {
    /// The names `-e` accepts, canonical first.
    pub names: Vec<&'static str>,
    /// Its kind and config.
    pub kind: EventKind,
    /// Whether this machine counts it.
    pub support: Support,
}

/// Every hardware and software event kprof knows, each probed by opening it for the calling
/// process (user space only, disabled; closed at once).
pub fn named_events() -> Vec<NamedEvent> {
    events::named_events()
        .into_iter()
        .map(|(kind, names)| {
            let support = probe(&kind);
            NamedEvent {
                names,
                kind,
                support,
            }
        })
        .collect()
}

/// Whether this process may open `kind` (user space only, disabled, closed at once): the
/// probe behind [`named_events`].
pub fn probe(kind: &EventKind) -> Support {
    let Ok((type_, config)) = events::type_and_config(kind) else {
        return Support::NotSupported;
    };
    let attr = EventAttr {
        type_,
        config,
        disabled: true,
        // User space only: allowed at every paranoia level that allows anything.
        exclude_kernel: true,
        exclude_hv: true,
        ..EventAttr::default()
    };
    match sys::perf_event_open(&attr.to_kernel(), 0, -1) {
        Ok(_) => Support::Supported,
        Err(e) if events::is_unsupported_error(&e) => Support::NotSupported,
        Err(e) if perms::is_permission_error(&e) => Support::Unknown(format!(
            "permission denied ({})",
            perms::paranoid_level().map_or_else(
                || "perf_event_paranoid unreadable".to_owned(),
                |l| format!("perf_event_paranoid={l}")
            )
        )),
        Err(e) => Support::Unknown(e.to_string()),
    }
}

/// A tracepoint and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracepoint {
    /// The subsystem, e.g. `sched`.
    pub system: String,
    /// The event, e.g. `sched_switch`.
    pub name: String,
    /// Its own fields in order (the `common_*` fields every tracepoint shares are left out);
    /// empty when the format file could not be read or parsed.
    pub fields: Vec<Field>,
}

/// The mounted tracefs, mounting it at /sys/kernel/tracing if nothing is there (needs root).
pub fn tracefs() -> Result<PathBuf> {
    if let Some(root) = tracing::tracefs_root() {
        return Ok(root);
    }
    let mounted = sys::mount_tracefs();
    tracing::tracefs_root().ok_or_else(|| tracefs_missing(mounted.err()))
}

/// The error when no tracefs can be used.
fn tracefs_missing(mount_error: Option<io::Error>) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::NotFound,
        events::tracefs_unavailable(mount_error.as_ref()),
    ))
}

/// The tracepoints under `root/events` whose `system:name` `wanted` accepts, sorted, with
/// their fields.
pub fn tracepoints(root: &Path, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<Tracepoint>> {
    let events = root.join("events");
    let listing = |dir: &Path| -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| {
                Error::Io(io::Error::new(
                    e.kind(),
                    format!("reading {}: {e}", dir.display()),
                ))
            })?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                entry.file_type().ok()?.is_dir().then_some(())?;
                entry.file_name().into_string().ok()
            })
            .collect();
        names.sort();
        Ok(names)
    };
    let mut out = Vec::new();
    for system in listing(&events)? {
        let Ok(names) = listing(&events.join(&system)) else {
            continue;
        };
        for name in names {
            if !wanted(&format!("{system}:{name}")) {
                continue;
            }
            let dir = events.join(&system).join(&name);
            // Tracepoints have an id; the per-system `enable`/`filter` files are not events.
            if !dir.join("id").exists() && !dir.join("format").exists() {
                continue;
            }
            let fields = std::fs::read_to_string(dir.join("format"))
                .ok()
                .and_then(|text| EventFormat::parse(&system, &text).ok())
                .map(|format| format.fields)
                .unwrap_or_default();
            out.push(Tracepoint {
                system: system.clone(),
                name,
                fields,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHED_SWITCH: &str = "name: sched_switch
ID: 372
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:__data_loc char[] name;\toffset:28;\tsize:4;\tsigned:0;
\tfield:struct page_pool * pool;\toffset:32;\tsize:8;\tsigned:0;

print fmt: \"prev_comm=%s\", REC->prev_comm
";

    #[test]
    fn walks_a_tracefs_tree() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("events/sched/sched_switch");
        std::fs::create_dir_all(&event).unwrap();
        std::fs::write(event.join("format"), SCHED_SWITCH).unwrap();
        std::fs::write(event.join("id"), "372\n").unwrap();
        std::fs::create_dir_all(dir.path().join("events/sched/sched_wakeup")).unwrap();
        std::fs::write(dir.path().join("events/sched/sched_wakeup/id"), "1").unwrap();
        std::fs::write(dir.path().join("events/sched/enable"), "0").unwrap();
        let all = tracepoints(dir.path(), &|_| true).unwrap();
        let names: Vec<_> = all.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["sched_switch", "sched_wakeup"]);
        // The own fields, declarations as tracefs wrote them; a missing format lists none.
        let fields = &all[0].fields;
        let declarations: Vec<_> = fields.iter().map(|f| f.declaration.as_str()).collect();
        assert_eq!(
            declarations,
            [
                "char prev_comm[16]",
                "pid_t prev_pid",
                "__data_loc char[] name",
                "struct page_pool * pool"
            ]
        );
        let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["prev_comm", "prev_pid", "name", "pool"]);
        assert!(all[1].fields.is_empty());
        let some = tracepoints(dir.path(), &|n| n.ends_with("wakeup")).unwrap();
        assert_eq!(some.len(), 1);
        // No events directory: an error naming it.
        let empty = tempfile::tempdir().unwrap();
        let err = tracepoints(empty.path(), &|_| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("events"), "{err}");
    }
}
