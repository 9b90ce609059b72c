//! What to record: spawning the workload held before `exec` until the events are enabled, and
//! finding the threads of processes to attach to.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys::{self, ChildExit, StoppedChild};

/// Whom to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// Run this command (argv\[0\] searched in PATH) and profile it and its children.
    Command(Vec<OsString>),
    /// Attach to these processes (all their threads).
    Pids(Vec<u32>),
    /// Attach to these threads only.
    Tids(Vec<u32>),
    /// Every task on the selected CPUs.
    SystemWide,
}

impl Target {
    /// What probe specs without a path (the command's executable) or with a library name
    /// (`-p`'s mappings first) resolve against.
    pub fn probe_context(&self) -> crate::probe::ResolveContext {
        match self {
            Target::Command(argv) => argv
                .first()
                .and_then(|program| program.to_str())
                .map(crate::probe::ResolveContext::for_command)
                .unwrap_or_default(),
            Target::Pids(ids) | Target::Tids(ids) => ids
                .first()
                .map(|&id| crate::probe::ResolveContext::for_pid(id))
                .unwrap_or_default(),
            Target::SystemWide => crate::probe::ResolveContext::default(),
        }
    }
}

impl Default for Target {
    /// An empty command, rejected by `record` ("no command given").
    fn default() -> Self {
        Target::Command(Vec::new())
    }
}

/// Resolves `program` the way `execvp` would: names with a `/` are used as given, others are
/// searched in `PATH` for an executable regular file.
pub fn resolve_program(program: &OsStr) -> Result<PathBuf> {
    let not_found = |reason: &str| Error::Exec {
        program: program.to_string_lossy().into_owned(),
        source: io::Error::new(io::ErrorKind::NotFound, reason.to_owned()),
    };
    if program.is_empty() {
        return Err(not_found("empty command name"));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| not_found("command not found in PATH"))
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::Exec {
        program: s.to_string_lossy().into_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"),
    })
}

/// A forked workload that has not exec'd yet. Dropping it before it finished kills and reaps it,
/// so a failed start never leaves the command running.
#[derive(Debug)]
pub struct Workload {
    child: StoppedChild,
    program: String,
    exit: Option<ChildExit>,
    /// How [`Workload::terminate`] ended it, if it was still running.
    ended_by_us: Option<EndedBy>,
}

/// Which signal ended a workload that was still running when the recording stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// It exited after SIGTERM.
    Sigterm,
    /// It ignored SIGTERM for the whole grace period and was killed with SIGKILL.
    Sigkill,
}

impl Workload {
    /// Forks the command; the child waits until [`Workload::release`]. With `stdout_to_stderr`
    /// the command's standard output goes to standard error (the recording uses stdout).
    pub fn spawn(argv: &[OsString], stdout_to_stderr: bool) -> Result<Self> {
        let Some(first) = argv.first() else {
            return Err(Error::InvalidOption(
                "no command given (give a command, -p PID, -t TID or -a)".to_owned(),
            ));
        };
        let program = resolve_program(first)?;
        let program_c = cstring(program.as_os_str())?;
        let args = argv
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<Vec<_>>>()?;
        let child = sys::spawn_stopped(&program_c, &args, stdout_to_stderr).map_err(|source| {
            Error::Syscall {
                what: "fork".to_owned(),
                source,
            }
        })?;
        Ok(Workload {
            child,
            program: first.to_string_lossy().into_owned(),
            exit: None,
            ended_by_us: None,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.child.pid
    }

    /// Lets the child exec. An exec failure reaps the child (exit 127) and returns `Error::Exec`.
    pub fn release(&mut self) -> Result<()> {
        let failure = self.child.release().map_err(|source| Error::Syscall {
            what: "starting the workload".to_owned(),
            source,
        })?;
        if let Some(source) = failure {
            self.exit = sys::wait_child(self.child.pid, true).ok().flatten();
            return Err(Error::Exec {
                program: self.program.clone(),
                source,
            });
        }
        Ok(())
    }

    /// Records that the child has been reaped elsewhere (by the session's status checks).
    pub fn set_exited(&mut self, exit: ChildExit) {
        self.exit = Some(exit);
    }

    /// How the child ended, once known.
    pub fn exit(&self) -> Option<ChildExit> {
        self.exit
    }

    /// The command as given (argv\[0\]).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Whether [`Workload::terminate`] had to end the child, and how.
    pub fn ended_by_us(&self) -> Option<EndedBy> {
        self.ended_by_us
    }

    /// Sends SIGTERM, waits up to `grace`, then SIGKILL; reaps the child and returns its status.
    /// [`Workload::ended_by_us`] then says which signal it took.
    pub fn terminate(&mut self, grace: Duration) -> Option<ChildExit> {
        if self.exit.is_some() {
            return self.exit;
        }
        let pid = self.child.pid;
        if let Ok(Some(exit)) = sys::wait_child(pid, false) {
            self.exit = Some(exit);
            return self.exit;
        }
        let _ = sys::kill(pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(exit)) = sys::wait_child(pid, false) {
                self.exit = Some(exit);
                self.ended_by_us = Some(EndedBy::Sigterm);
                return self.exit;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.ended_by_us = Some(EndedBy::Sigkill);
        let _ = sys::kill(pid, libc::SIGKILL);
        self.exit = sys::wait_child(pid, true).ok().flatten();
        self.exit
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = sys::kill(self.child.pid, libc::SIGKILL);
            self.exit = sys::wait_child(self.child.pid, true).ok().flatten();
        }
    }
}

/// All thread ids of process `pid` (from `/proc/PID/task`), sorted.
pub fn threads_of(pid: u32) -> Result<Vec<u32>> {
    let dir = PathBuf::from(format!("/proc/{pid}/task"));
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::NoSuchTask(pid)
        } else {
            Error::Io(e)
        }
    })?;
    let mut tids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    if tids.is_empty() {
        return Err(Error::NoSuchTask(pid));
    }
    Ok(tids)
}

/// Checks that thread `tid` exists (any process).
pub fn thread_exists(tid: u32) -> bool {
    Path::new(&format!("/proc/{tid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_through_path() {
        let sh = resolve_program(OsStr::new("sh")).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        assert_eq!(
            resolve_program(OsStr::new("./x")).unwrap(),
            PathBuf::from("./x")
        );
        let err = resolve_program(OsStr::new("kprof-no-such-command-xyz")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("failed to exec: kprof-no-such-command-xyz")
        );
    }

    #[test]
    fn own_threads_are_listed() {
        let tids = threads_of(std::process::id()).unwrap();
        assert!(tids.contains(&std::process::id()));
        assert!(matches!(
            threads_of(u32::MAX - 1),
            Err(Error::NoSuchTask(_))
        ));
    }

    #[test]
    fn workload_runs_only_after_release_and_reports_exit() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("touch {}; exit 3", marker.display());
        let argv: Vec<OsString> = ["sh", "-c", &script].iter().map(OsString::from).collect();
        let mut w = Workload::spawn(&argv, false).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!marker.exists(), "child ran before release");
        w.release().unwrap();
        let exit = sys::wait_child(w.pid(), true).unwrap().unwrap();
        w.set_exited(exit);
        assert_eq!(exit, ChildExit::Exited(3));
        assert!(marker.exists());
    }

    #[test]
    fn exec_failure_is_reported_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let not_exec = dir.path().join("plain");
        std::fs::write(&not_exec, "data").unwrap();
        let argv = vec![not_exec.clone().into_os_string()];
        let mut w = Workload::spawn(&argv, false).unwrap();
        let err = w.release().unwrap_err();
        assert!(err.to_string().starts_with("failed to exec:"), "{err}");
        assert_eq!(w.exit(), Some(ChildExit::Exited(127)));
    }

    // See: issue #11 point 7
    #[test]
    fn a_workload_that_ignores_sigterm_is_killed_and_that_is_known() {
        let argv: Vec<OsString> = ["sh", "-c", "trap '' TERM INT; sleep 30"]
            .iter()
            .map(OsString::from)
            .collect();
        let mut w = Workload::spawn(&argv, false).unwrap();
        w.release().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let exit = w.terminate(Duration::from_millis(200));
        assert_eq!(exit, Some(ChildExit::Signaled(libc::SIGKILL)));
        assert_eq!(w.ended_by_us(), Some(EndedBy::Sigkill));
        let argv: Vec<OsString> = ["sleep", "30"].iter().map(OsString::from).collect();
        let mut w = Workload::spawn(&argv, false).unwrap();
        w.release().unwrap();
        w.terminate(Duration::from_secs(5));
        assert_eq!(w.ended_by_us(), Some(EndedBy::Sigterm));
    }

    #[test]
    fn dropping_an_unreleased_workload_kills_it() {
        let argv: Vec<OsString> = ["sleep", "100"].iter().map(OsString::from).collect();
        let w = Workload::spawn(&argv, false).unwrap();
        let pid = w.pid();
        drop(w);
        // Reaped: the pid is no longer our child.
        assert!(sys::wait_child(pid, false).is_err());
    }
}
