//! Issue #3: `kprof record` writes files that Linux perf and kprof read alike, follows children,
//! propagates exit codes, survives signals, and explains permission problems.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// `perf report --no-children --sort sym` of `file`: `[.] sym` → percent (first event).
fn perf_top(file: &Path) -> HashMap<String, f64> {
    perf_symbol_percents(file, &["--force"])
}

fn kprof_top(file: &Path) -> HashMap<String, f64> {
    let v = symbol_report_json(file, &[]);
    let mut rows = HashMap::new();
    for row in v["events"][0]["rows"].as_array().unwrap() {
        let kind = if row["kind"] == "kernel" {
            "[k]"
        } else {
            "[.]"
        };
        *rows
            .entry(format!("{kind} {}", row["sym"].as_str().unwrap()))
            .or_insert(0.0) += row["self"].as_f64().unwrap();
    }
    rows
}

/// The workload's own functions must get the same share (within `tolerance` points).
fn assert_close(what: &str, a: &HashMap<String, f64>, b: &HashMap<String, f64>, tolerance: f64) {
    let mut top: Vec<(&String, &f64)> = a.iter().collect();
    top.sort_by(|x, y| y.1.total_cmp(x.1));
    for (sym, pct) in top.into_iter().take(20) {
        if sym.contains("0x") {
            continue; // unresolved addresses differ between recordings (ASLR)
        }
        let other = b.get(sym).copied().unwrap_or(0.0);
        assert!(
            (pct - other).abs() <= tolerance,
            "{what}: {sym}: {pct:.2}% vs {other:.2}%\n{a:?}\n{b:?}"
        );
    }
}

fn check_perf_reads_cleanly(file: &Path) {
    for args in [&["report", "--stdio", "-i"][..], &["script", "-i"][..]] {
        let out = Command::new("perf").args(args).arg(file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "perf {args:?}: {stderr}");
        for bad in [
            "Warning",
            "WARNING",
            "not properly terminated",
            "unsupported",
            "Error",
        ] {
            assert!(!stderr.contains(bad), "perf {args:?} complained: {stderr}");
        }
    }
}

#[test]
fn kprof_recording_reads_in_perf_and_matches_perf_recording() {
    if !perf_can_record() {
        return;
    }
    let Some(Recording {
        dir,
        file: ours,
        program: hot,
    }) = Recording::of_hot(
        Recorder::Kprof,
        "rec-vs-perf",
        "kprof.data",
        FramePointers::Kept,
        &["-F", "999", "-g"],
        "2",
    )
    else {
        return;
    };
    check_perf_reads_cleanly(&ours);
    let theirs = dir.join("perf.data");
    perf_record(&theirs, &["-F", "999", "-g"], &[hot.to_str().unwrap(), "2"]);
    let perf_on_perf = perf_top(&theirs);
    let perf_on_ours = perf_top(&ours);
    assert_close(
        "perf report: perf's vs kprof's recording",
        &perf_on_perf,
        &perf_on_ours,
        2.0,
    );
    let kprof_on_ours = kprof_top(&ours);
    assert_close(
        "perf's recording vs kprof report on kprof's",
        &perf_on_perf,
        &kprof_on_ours,
        2.0,
    );
    assert!(
        kprof_on_ours.get("[.] spin").is_some_and(|&p| p > 80.0),
        "spin is hot: {kprof_on_ours:?}"
    );
    // kprof flame on kprof's file shows the known tree.
    let folded = kprof_ok(&["flame", "--folded", "-i", ours.to_str().unwrap()]);
    for path in [
        "main;run;heavy;spin",
        "main;run;medium;leaf_medium;spin",
        "main;run;light;spin",
    ] {
        assert!(
            folded.lines().any(|l| l.contains(path)),
            "{path} in {folded}"
        );
    }
}

#[test]
fn cycles_falls_back_system_wide_and_sees_running_processes() {
    let Some(hot) = hot_to_record(Recorder::Kprof, FramePointers::Kept) else {
        return;
    };
    // A system-wide recording runs alone among this binary's recordings and builds (see
    // `exclusive`): other tests' processes and the BPF programs of their bpftrace runs would
    // otherwise be in it. See: issue #10 done-means 6
    let _alone = exclusive();
    // Started before recording: must appear through /proc synthesis. Killed after it (30 s of
    // CPU time is far more than the recording needs).
    let mut background = Command::new(&hot)
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (_dir, file) = TempDir::with_file("rec-sys", "sys.data");
    // The recording lasts until the background process has run 0.5 s of CPU time in it (its
    // run time in /proc/PID/schedstat, in ns), not for a fixed wall time: at kprof's default
    // 4000 Hz that is about 2000 samples of it however busy the machine is, 60% in `heavy`.
    let schedstat = format!("/proc/{}/schedstat", background.id());
    let until_it_ran = format!(
        "ran() {{ cut -d' ' -f1 {schedstat}; }}; start=$(ran) && \
         while now=$(ran) && [ $((now - start)) -lt 500000000 ]; do sleep 0.05; done"
    );
    let out = kprof_record_output(
        &file,
        &["-e", "cycles", "-a", "-g"],
        &["sh", "-c", &until_it_ran],
    );
    let _ = background.kill();
    let _ = background.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let has_pmu = Path::new("/sys/bus/event_source/devices/cpu/type").exists()
        || Path::new("/sys/bus/event_source/devices/cpu_core/type").exists();
    if !has_pmu {
        assert!(stderr.contains("cpu-clock"), "fallback note: {stderr}");
        let header = kprof_ok(&["report", "--header-only", "-i", file.to_str().unwrap()]);
        assert!(
            header.contains("event        : cpu-clock"),
            "file records the event used: {header}"
        );
    }
    let name = comm_of(&hot);
    let folded = kprof_ok(&["flame", "--folded", "-i", file.to_str().unwrap()]);
    let ours: Vec<&str> = folded
        .lines()
        .filter(|l| l.starts_with(&format!("{name};")))
        .collect();
    assert!(
        ours.iter().any(|l| l.contains("main;run;heavy")),
        "user frames of the running process: {ours:?}"
    );
    assert!(
        folded.lines().any(|l| l.contains("[k]")
            || l.contains("schedule")
            || l.contains("do_syscall_64")
            || l.contains("entry_SYSCALL")),
        "kernel frames present"
    );
    check_perf_reads_cleanly(&file);
}

#[test]
fn exit_status_is_the_commands() {
    if !kprof_can_record() {
        return;
    }
    let (_dir, file) = TempDir::with_file("rec-exit", "exit.data");
    let out = kprof_record_output(&file, &["-q"], &["sh", "-c", "exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `sh -c 'exit 3'` may end before its first sample: the header is there either way.
    kprof_ok(&["report", "--header-only", "-i", file.to_str().unwrap()]);
    let out = kprof_record_output(&file, &["-q"], &["/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to exec"));
}

#[test]
fn children_that_fork_and_exec_are_followed() {
    let Some(hot) = hot_to_record(Recorder::Kprof, FramePointers::Kept) else {
        return;
    };
    let script = format!("{0} 0.4 & {0} 0.4; wait", hot.display());
    let recording = Recording::by_kprof(
        "rec-fork",
        "fork.data",
        &["-F", "999", "-g"],
        &["sh", "-c", &script],
    );
    let json = recording.read(&[
        "report",
        "--sort",
        "pid,sym",
        "--no-children",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut pids_with_heavy = std::collections::HashSet::new();
    for row in v["events"][0]["rows"].as_array().unwrap() {
        if row["sym"] == "spin" {
            pids_with_heavy.insert(row["pid"].to_string());
        }
    }
    assert_eq!(
        pids_with_heavy.len(),
        2,
        "both exec'd children sampled: {json}"
    );
}

#[test]
fn sigint_at_random_moments_leaves_a_readable_file() {
    let Some(hot) = hot_for_kprof_and_perf() else {
        return;
    };
    let dir = TempDir::new("rec-sigint");
    for (i, delay_ms) in [60u64, 250, 430, 710].into_iter().enumerate() {
        let file = dir.join(&format!("int-{i}.data"));
        let mut child = spawn_hot_recording(&hot, &file);
        std::thread::sleep(Duration::from_millis(delay_ms));
        // Ctrl-C goes to the whole foreground process group; here: kprof and its child.
        let pid = child.id() as i32;
        Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        Command::new("pkill")
            .args(["-INT", "-P", &pid.to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.code().is_some(),
            "kprof exited normally after SIGINT: {status:?}"
        );
        // A complete file: the header was finalized, whatever the moment.
        let header = kprof_ok(&["report", "--header-only", "-i", file.to_str().unwrap()]);
        assert!(!header.contains("not finalized"), "{header}");
        // perf reads it too (perf report refuses only a file with no samples at all, which a
        // very early Ctrl-C can leave; perf script still reads that one).
        let samples: u64 = header
            .lines()
            .find_map(|l| l.strip_prefix("# samples      : "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        if samples > 0 {
            check_perf_reads_cleanly(&file);
        } else {
            succeeded(Command::new("perf").args(["script", "-i"]).arg(&file));
        }
    }
}

#[test]
fn unknown_event_suggests_close_names() {
    let out = run_kprof(&["record", "-e", "cpu-clok", "-o", "/dev/null", "--", "true"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cpu-clok") && stderr.contains("cpu-clock"),
        "{stderr}"
    );
}

#[test]
fn unprivileged_user_gets_the_permission_message() {
    if !kprof_can_record() || !tool("setpriv") {
        return;
    }
    // The probes tests set other paranoid levels; not at the same time.
    let _machine = exclusive();
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap();
    let restore = paranoid.trim().to_string();
    if std::fs::write("/proc/sys/kernel/perf_event_paranoid", "2").is_err() {
        assert!(
            std::env::var_os("KPROF_REQUIRE_PERF").is_none(),
            "cannot set perf_event_paranoid"
        );
        eprintln!("SKIP: cannot set kernel.perf_event_paranoid");
        return;
    }
    let dir = TempDir::new("rec-perm");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_kprof"))
        .args([
            "record",
            "-a",
            "-o",
            dir.join("x.data").to_str().unwrap(),
            "--",
            "true",
        ])
        .output()
        .unwrap();
    std::fs::write("/proc/sys/kernel/perf_event_paranoid", &restore).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("perf_event_paranoid"),
        "names the setting: {stderr}"
    );
    assert!(
        stderr.contains("CAP_PERFMON"),
        "names the capability: {stderr}"
    );
    let first_line = stderr.lines().next().unwrap_or_default();
    assert_eq!(
        stderr.matches(first_line).count(),
        1,
        "explained once, not per CPU: {stderr}"
    );
}

#[test]
fn high_rate_system_wide_loses_nothing_or_reports_the_loss_exactly() {
    let Some(hot) = hot_for_kprof_and_perf() else {
        return;
    };
    let _alone = exclusive();
    let (_dir, file) = TempDir::with_file("rec-loss", "loss.data");
    let script = format!("{0} 10 & {0} 10; wait", hot.display());
    let out = kprof_record_output(&file, &["-F", "10000", "-a", "-g"], &["sh", "-c", &script]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The closing line: "kprof: wrote N samples, M lost ..." (or ", 0 lost").
    let closing = stderr
        .lines()
        .find(|l| l.contains("wrote "))
        .expect("closing line");
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = closing
            .split([' ', ',', '('])
            .filter(|w| !w.is_empty())
            .collect();
        let at = words
            .iter()
            .position(|w| *w == word)
            .unwrap_or_else(|| panic!("{word} in {closing}"));
        words[at - 1]
            .parse()
            .unwrap_or_else(|_| panic!("number before {word} in {closing}"))
    };
    let written = number_before("samples");
    let lost = number_before("lost");
    let header = kprof_ok(&["report", "--header-only", "-i", file.to_str().unwrap()]);
    let field = |key: &str| -> u64 {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key:<13}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} in {header}"))
    };
    assert_eq!(
        field("samples"),
        written,
        "every sample the closing line counts is in the file"
    );
    assert_eq!(
        field("lost samples"),
        lost,
        "the loss in the file is the loss reported"
    );
    assert!(
        written > 100_000,
        "10 s at 10 kHz on 2 CPUs: {written} samples"
    );
    if lost > 0 {
        assert!(stderr.contains("lost"), "{stderr}");
    }
}
