//! The command line as a user meets it: help with examples, clear one-line errors.

use crate::common::*;

#[test]
fn every_subcommand_has_help_with_examples() {
    let top = kprof_ok(&["--help"]);
    for sub in [
        "record", "flame", "report", "script", "diff", "export", "stat", "list",
    ] {
        assert!(top.contains(sub), "top-level help lists {sub}");
        let help = kprof_ok(&[sub, "--help"]);
        assert!(
            help.contains("EXAMPLES"),
            "{sub} --help has examples:\n{help}"
        );
        assert!(
            help.contains(&format!("kprof {sub}")),
            "{sub} examples use the subcommand"
        );
    }
}

#[test]
fn bad_flag_is_a_usage_error() {
    let out = run_kprof(&["flame", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn missing_input_names_the_file() {
    let dir = TempDir::new("missing");
    let path = dir.join("nope.data");
    let out = run_kprof(&["report", "-i", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("kprof: ") && stderr.contains("nope.data"),
        "{stderr}"
    );
}

#[test]
fn default_input_is_kprof_data_then_perf_data() {
    let dir = TempDir::new("default-input");
    let out = kprof()
        .arg("report")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kprof.data"));
    std::fs::write(dir.join("perf.data"), b"").unwrap();
    let out = kprof()
        .arg("report")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("perf.data"));
}

#[test]
fn empty_file_is_no_data() {
    let dir = TempDir::new("empty");
    let path = dir.join("empty.data");
    std::fs::write(&path, b"").unwrap();
    let out = run_kprof(&["flame", "-i", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no data"));
}

#[test]
fn a_file_owned_by_another_user_needs_force() {
    // Only root can give a file away; elsewhere there is nothing to test.
    let dir = TempDir::new("owner");
    let path = dir.join("theirs.data");
    std::fs::copy(repo().join("tests/fixtures/peer/sleep.data"), &path).unwrap();
    if std::os::unix::fs::chown(&path, Some(65534), Some(65534)).is_err() {
        eprintln!("SKIP: cannot chown (not root)");
        return;
    }
    let out = run_kprof(&["report", "-i", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--force") && stderr.contains("theirs.data"),
        "{stderr}"
    );
    kprof_ok(&["report", "--force", "-i", path.to_str().unwrap()]);
}
