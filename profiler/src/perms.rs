//! Explaining permission and resource failures: `perf_event_paranoid`, CAP_PERFMON, the mlock
//! limit, EMFILE and ENOMEM, each turned into one actionable message.

use std::io;

use crate::error::Error;

/// Where the kernel's paranoia level lives.
pub const PARANOID_PATH: &str = "/proc/sys/kernel/perf_event_paranoid";

/// Reads `/proc/sys/kernel/perf_event_paranoid` (None if unreadable).
pub fn paranoid_level() -> Option<i32> {
    std::fs::read_to_string(PARANOID_PATH)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What a `perf_event_paranoid` value allows unprivileged users to do.
pub fn paranoid_meaning(level: i32) -> &'static str {
    match level {
        i32::MIN..=-1 => "no restrictions",
        0 => "CPU-wide and kernel profiling allowed, no raw tracepoint access",
        1 => "kernel and user profiling of own processes, no CPU-wide events",
        2 => "user-space profiling of own processes only: no kernel samples, no CPU-wide events",
        _ => "perf_event_open is denied to unprivileged users",
    }
}

/// True when the error is a privilege refusal (EACCES or EPERM).
pub fn is_permission_error(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

/// True when retrying with `exclude_kernel=1` may succeed: not system-wide and the paranoia
/// level still allows user-space profiling of one's own processes.
pub fn can_fall_back_to_user_only(level: Option<i32>, system_wide: bool) -> bool {
    !system_wide && matches!(level, Some(2))
}

/// The note printed when falling back to user-only sampling.
pub fn user_only_note(level: i32) -> String {
    format!(
        "note: kernel profiling is not allowed (perf_event_paranoid={level}); \
         sampling user space only (exclude_kernel=1)"
    )
}

/// Builds the one message for a failed perf_event_open/mmap. `what` says what failed, e.g.
/// "opening cpu-clock on CPU 0".
pub fn explain(what: &str, err: io::Error, system_wide: bool) -> Error {
    let code = err.raw_os_error();
    if matches!(code, Some(libc::EACCES | libc::EPERM)) {
        let level = paranoid_level();
        let level_text = match level {
            Some(l) => format!("{PARANOID_PATH} is {l} ({})", paranoid_meaning(l)),
            None => format!("{PARANOID_PATH} could not be read"),
        };
        let needed = if system_wide { -1 } else { 1 };
        let errno = if code == Some(libc::EACCES) {
            "EACCES"
        } else {
            "EPERM"
        };
        return Error::Permission {
            message: format!(
                "{what}: permission denied ({errno}). {level_text}. \
                 Fix: run as root, or `sysctl kernel.perf_event_paranoid={needed}`, \
                 or give kprof CAP_PERFMON (`setcap cap_perfmon,cap_ipc_lock+ep kprof`; \
                 cap_ipc_lock lifts the perf_event_mlock_kb limit on ring buffers)"
            ),
        };
    }
    match code {
        Some(libc::EMFILE | libc::ENFILE) => Error::Syscall {
            what: format!(
                "{what}: too many open files (one fd per event per CPU/thread); \
                 raise the limit with `ulimit -n`, or record fewer CPUs/threads/events"
            ),
            source: err,
        },
        Some(libc::ENOMEM) => Error::Syscall {
            what: format!("{what}: out of memory; use a smaller ring with -m PAGES"),
            source: err,
        },
        Some(libc::E2BIG) => Error::Syscall {
            what: format!("{what}: the kernel rejected the perf_event_attr size (kernel too old?)"),
            source: err,
        },
        Some(libc::EINVAL) => Error::Syscall {
            what: format!(
                "{what}: invalid argument (frequency/period, call-graph stack size or \
                 modifiers not supported by this kernel?)"
            ),
            source: err,
        },
        Some(libc::ESRCH) => Error::Syscall {
            what: format!("{what}: the process or thread no longer exists"),
            source: err,
        },
        _ => Error::Syscall {
            what: what.to_owned(),
            source: err,
        },
    }
}

/// Builds the one message for a probe (uprobe, kprobe PMU) the kernel refused. Those PMUs
/// check for CAP_SYS_ADMIN itself, whatever `perf_event_paranoid` says, so a user probing even
/// their own process needs it (CAP_PERFMON is not enough). Other errors as [`explain`].
pub fn explain_probe(what: &str, err: io::Error) -> Error {
    if is_permission_error(&err) {
        let level = paranoid_level().map_or_else(|| "unknown".to_owned(), |l| l.to_string());
        return Error::Permission {
            message: format!(
                "{what}: permission denied. The kernel's uprobe and kprobe PMUs require                  CAP_SYS_ADMIN at every perf_event_paranoid level (here {level}), even for                  your own processes; CAP_PERFMON is not enough. Fix: run as root, or give                  kprof the capability (`setcap cap_sys_admin+ep kprof`)"
            ),
        };
    }
    explain(what, err, false)
}

/// Explains a failed mmap of a ring: EPERM there means the locked-memory limit.
pub fn explain_mmap(what: &str, err: io::Error, pages: usize) -> Error {
    if matches!(err.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
        let limit = std::fs::read_to_string("/proc/sys/kernel/perf_event_mlock_kb")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned());
        return Error::Permission {
            message: format!(
                "{what}: mapping a {pages}-page ring buffer exceeds the locked-memory limit \
                 (/proc/sys/kernel/perf_event_mlock_kb = {limit} per user, plus RLIMIT_MEMLOCK). \
                 Fix: use fewer pages with -m, `sysctl kernel.perf_event_mlock_kb=NEW`, \
                 or give kprof CAP_IPC_LOCK"
            ),
        };
    }
    explain(what, err, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_message_names_the_fix() {
        let err = explain(
            "opening cpu-clock on CPU 0",
            io::Error::from_raw_os_error(libc::EACCES),
            true,
        );
        let text = err.to_string();
        assert!(
            text.starts_with("opening cpu-clock on CPU 0: permission denied"),
            "{text}"
        );
        assert!(text.contains("perf_event_paranoid=-1"), "{text}");
        assert!(text.contains("CAP_PERFMON"), "{text}");
        assert!(text.contains(PARANOID_PATH), "{text}");
    }

    #[test]
    fn user_only_fallback_only_for_level_two_and_per_task() {
        assert!(can_fall_back_to_user_only(Some(2), false));
        assert!(!can_fall_back_to_user_only(Some(2), true));
        assert!(!can_fall_back_to_user_only(Some(3), false));
        assert!(!can_fall_back_to_user_only(None, false));
    }

    #[test]
    fn resource_errors_are_explained() {
        let t = explain("x", io::Error::from_raw_os_error(libc::EMFILE), false).to_string();
        assert!(t.contains("ulimit -n"), "{t}");
        let t = explain_mmap("ring", io::Error::from_raw_os_error(libc::EPERM), 512).to_string();
        assert!(t.contains("perf_event_mlock_kb"), "{t}");
        assert!(paranoid_meaning(2).contains("user-space"));
    }
}
