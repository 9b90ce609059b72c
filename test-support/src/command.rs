//! Running the tools tests compare with (perf, kprof, compilers): a command that must succeed,
//! its failure shown with its standard error.

use std::process::{Command, Output};

/// Runs `command` and insists on success (the failure shows its standard error); returns its
/// output.
pub fn succeeded(command: &mut Command) -> Output {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `command` and insists on success (see [`succeeded`]); returns its standard output as
/// text (invalid UTF-8 replaced).
pub fn stdout_of(command: &mut Command) -> String {
    String::from_utf8_lossy(&succeeded(command).stdout).into_owned()
}

/// What perf prints on standard error, still exiting 0, when it only half understands a
/// perf.data file: a test of a file kprof wrote fails on any of these.
pub const PERF_COMPLAINTS: [&str; 5] = [
    "Warning",
    "WARNING",
    "unsupported",
    "not properly terminated",
    "Error",
];

/// Runs `command` (perf reading a file) and insists on success and on a standard error that
/// names none of `complaints` (such as [`PERF_COMPLAINTS`]); returns its standard output.
pub fn stdout_without_complaints(command: &mut Command, complaints: &[&str]) -> String {
    let out = succeeded(command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for complaint in complaints {
        assert!(
            !stderr.contains(complaint),
            "{command:?} says {complaint:?}: {stderr}"
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}
