//! Issue #11: never lose a recording, never touch what is not ours. Output paths of every kind
//! (devices and FIFOs made with `mknod`/`mkfifo` in a temp dir, never the system's `/dev`),
//! stop signals and SIGKILL at fixed moments, a full tmpfs mounted for the test, `-o -`,
//! writers onto a full disk, a 200 MB symbol name, and the wording fixes of point 7.
//!
//! Oracles: Linux perf reads what kprof wrote; file types and contents are checked with `stat`
//! semantics; the workload's own marker file says it was not killed.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    FramePointers, Recording, TempDir, available, c_workload, hot, hot_for_kprof_and_perf, kprof,
    kprof_can_record, kprof_ok, kprof_record, kprof_record_output, perf_can_record, run_kprof,
    shared, spawn_hot_recording, succeeded, symbol_report_json, tool,
};

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `2m`); `None` (skipped) when mounting is not allowed here.
    fn new(tag: &str, size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new(tag);
        let mount = dir.join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        available("mounting a tmpfs (root)", mounted, "KPROF_REQUIRE_PERF")
            .then_some(Tmpfs { dir, mount })
    }

    fn join(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }

    /// Fills the file system up: nothing more can be written.
    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", self.join("filler").display()))
            .stderr(Stdio::null())
            .status();
    }

    /// Names in the mount, sorted.
    fn names(&self) -> Vec<String> {
        names_in(&self.mount)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy for a moment (a child's last reference): detach it now.
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `perf report --stdio -i FILE` (`-` reads `stdin_file`); insists on success without an
/// error line; returns stdout.
fn perf_report(file: &Path) -> String {
    let out = Command::new("perf")
        .args(["report", "--stdio", "-i"])
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Error"),
        "perf report -i {}: {stderr}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Samples in `file` as kprof counts them (`report --header-only`).
fn kprof_samples(file: &Path) -> u64 {
    let header = kprof_ok(&["report", "--header-only", "-i", file.to_str().unwrap()]);
    header
        .lines()
        .find_map(|l| l.strip_prefix("# samples      : "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("samples in {header}"))
}

/// First and last sample time in seconds, as perf script prints them.
fn perf_sample_span(file: &Path) -> f64 {
    let out = succeeded(
        Command::new("perf")
            .args(["script", "-F", "time", "-i"])
            .arg(file),
    );
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(':').parse().ok())
        .collect();
    match (times.first(), times.last()) {
        (Some(first), Some(last)) => last - first,
        _ => 0.0,
    }
}

fn kill(pid: u32, signal: &str) {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
}

/// Waits until the header of the file at `path` first covers some records: kprof writes that
/// checkpoint (the side-band) right before it lets the workload run, with its signal handlers
/// in place.
fn wait_for_start(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let data_size = std::fs::read(path)
            .ok()
            .and_then(|b| Some(u64::from_ne_bytes(b.get(48..56)?.try_into().ok()?)));
        if data_size.is_some_and(|size| size > 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never started",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `count` moments in `lo..hi` ms from a fixed-seed LCG: "random", and the same every run.
fn moments(seed: u64, count: usize, lo: u64, hi: u64) -> Vec<u64> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + (state >> 33) % (hi - lo)
        })
        .collect()
}

// See: issue #11 point 1
#[test]
fn record_onto_devices_fifos_and_links_touches_only_regular_files() {
    let Some(hot) = hot_for_kprof_and_perf() else {
        return;
    };
    let dir = TempDir::new("rob-kinds");
    let device = dir.join("null");
    let made = Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if !available("mknod (root)", made, "KPROF_REQUIRE_PERF") {
        return;
    }
    let fifo = dir.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let link = dir.join("link");
    std::os::unix::fs::symlink(&device, &link).unwrap();
    let regular = dir.join("out.data");
    std::fs::write(&regular, "previous").unwrap();
    let record = |output: &Path| {
        let _machine = shared();
        let out = run_kprof(&[
            "record",
            "-q",
            "-F",
            "999",
            "-o",
            output.to_str().unwrap(),
            "--",
            hot.to_str().unwrap(),
            "0.2",
        ]);
        assert!(
            out.status.success(),
            "record -o {}: {}",
            output.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    record(&device);
    record(&link);
    // The FIFO's reader gets a pipe-format stream.
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read(reader_path).unwrap());
    record(&fifo);
    let captured = dir.join("captured.data");
    std::fs::write(&captured, reader.join().unwrap()).unwrap();
    record(&regular);

    let meta = std::fs::symlink_metadata(&device).unwrap();
    assert!(meta.file_type().is_char_device(), "the device is untouched");
    assert_eq!(meta.rdev(), std::fs::metadata("/dev/null").unwrap().rdev());
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        device,
        "the link is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out.data.old")).unwrap(),
        "previous",
        "the regular file was kept as .old"
    );
    let meta = std::fs::symlink_metadata(&regular).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        names_in(dir.path()),
        [
            "captured.data",
            "fifo",
            "link",
            "null",
            "out.data",
            "out.data.old"
        ],
        "nothing else was renamed or created"
    );
    assert_eq!(&std::fs::read(&captured).unwrap()[..8], b"PERFILE2");
    assert!(kprof_samples(&captured) > 0);
    assert!(
        perf_report(&captured).contains("hot"),
        "perf reads the FIFO's stream"
    );
    assert!(kprof_samples(&regular) > 0);
}

// See: issue #11 point 1
#[test]
fn record_refuses_links_to_files_directories_and_terminals() {
    let dir = TempDir::new("rob-refuse");
    let victim = dir.join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.join("out.data");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for (output, says) in [
        (link.as_path(), "symbolic link to a regular file"),
        (dir.path(), "is a directory"),
    ] {
        let out = run_kprof(&["record", "-o", output.to_str().unwrap(), "--", "true"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains(output.to_str().unwrap()),
            "{stderr}"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(names_in(dir.path()), ["out.data", "victim"]);
}

// See: issue #11 point 2
#[test]
fn every_stop_signal_finishes_the_file() {
    let Some(hot) = hot_for_kprof_and_perf() else {
        return;
    };
    let dir = TempDir::new("rob-signals");
    // Two moments for each signal the issue names, one for the others.
    let signals = [
        "HUP", "TERM", "QUIT", "USR1", "ALRM", "HUP", "TERM", "QUIT", "USR1", "ALRM", "USR2", "INT",
    ];
    let at = moments(11, signals.len(), 0, 1200);
    let mut expected = Vec::new();
    for (k, (signal, &ms)) in signals.iter().zip(&at).enumerate() {
        let _machine = shared();
        let name = format!("{k:02}-{signal}.data");
        let file = dir.join(&name);
        expected.push(name);
        let child = spawn_hot_recording(&hot, &file);
        wait_for_start(&file);
        std::thread::sleep(Duration::from_millis(ms));
        // To kprof alone: it must stop its workload itself.
        kill(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.code().is_some(),
            "SIG{signal} after {ms} ms: kprof exited normally: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let header = kprof_ok(&["report", "--header-only", "-i", file.to_str().unwrap()]);
        assert!(
            !header.contains("not finalized") && header.contains("# hostname"),
            "SIG{signal} after {ms} ms: a finished file: {header}"
        );
        if kprof_samples(&file) > 0 {
            perf_report(&file);
        }
    }
    assert_eq!(names_in(dir.path()), expected, "no temporary file is left");
}

// See: issue #11 point 2
#[test]
fn sigkill_leaves_a_file_readable_up_to_the_last_second() {
    let Some(hot) = hot_for_kprof_and_perf() else {
        return;
    };
    let dir = TempDir::new("rob-sigkill");
    for (k, ms) in moments(7, 3, 1100, 3300).into_iter().enumerate() {
        let _machine = shared();
        let file = dir.join(&format!("killed-{k}.data"));
        let child = spawn_hot_recording(&hot, &file);
        wait_for_start(&file);
        std::thread::sleep(Duration::from_millis(ms));
        let workload = Command::new("pgrep")
            .args(["-P", &child.id().to_string()])
            .output()
            .unwrap();
        kill(child.id(), "KILL");
        child.wait_with_output().unwrap();
        for pid in String::from_utf8_lossy(&workload.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let samples = kprof_samples(&file);
        assert!(samples > 0, "killed after {ms} ms: samples were kept");
        perf_report(&file);
        // Checkpoints every second: at most about a second (plus the last poll) is lost.
        let span = perf_sample_span(&file);
        assert!(
            span + 2.0 >= ms as f64 / 1000.0,
            "killed {ms} ms after the start, the samples span only {span:.2} s"
        );
    }
    assert_eq!(
        names_in(dir.path()),
        ["killed-0.data", "killed-1.data", "killed-2.data"],
        "no hidden file is left"
    );
}

// See: issue #11 point 3
#[test]
fn a_full_disk_keeps_what_was_written_and_the_workload_runs_on() {
    if !kprof_can_record() || !perf_can_record() {
        return;
    }
    let Some(tmpfs) = Tmpfs::new("rob-enospc", "2m") else {
        return;
    };
    let hot = hot(FramePointers::Kept);
    let file = tmpfs.join("full.data");
    let marker = tmpfs.dir.join("workload-finished");
    let script = format!("{} 3; touch {}", hot.display(), marker.display());
    let _machine = shared();
    // DWARF stacks of 32 KiB a sample fill 2 MiB in 64 samples.
    let out = kprof_record_output(
        &file,
        &["-F", "999", "--call-graph", "dwarf,32768"],
        &["sh", "-c", &script],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(marker.exists(), "the workload ran to its end: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("No space left on device"))
        .unwrap_or_else(|| panic!("the error is said: {stderr}"));
    assert!(
        line.contains(file.to_str().unwrap()),
        "names the file: {line}"
    );
    let kept: u64 = line
        .split("Kept ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("says how much was kept: {line}"));
    assert!(kept > 0, "{line}");
    assert_eq!(
        kprof_samples(&file),
        kept,
        "the file holds what the message says"
    );
    let report = perf_report(&file);
    assert!(report.contains(&format!("# Samples: {kept} ")), "{report}");
    assert_eq!(tmpfs.names(), ["full.data"], "no temporary file");
}

// See: issue #11 point 4
#[test]
fn dash_streams_pipe_format_to_flame_and_perf() {
    let Some(hot) = hot_for_kprof_and_perf() else {
        return;
    };
    let dir = TempDir::new("rob-stdout");
    let script = format!("echo workload-output; {} 0.3", hot.display());
    let record = || {
        kprof()
            .current_dir(dir.path())
            .args([
                "record", "-q", "-F", "999", "-g", "-o", "-", "--", "sh", "-c",
            ])
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let _machine = shared();
    let mut recorder = record();
    let flame = kprof()
        .args(["flame", "-i", "-"])
        .stdin(recorder.stdout.take().unwrap())
        .output()
        .unwrap();
    let recorded = recorder.wait_with_output().unwrap();
    assert!(recorded.status.success());
    assert!(
        String::from_utf8_lossy(&recorded.stderr).contains("workload-output"),
        "the workload's stdout goes to stderr, not into the stream"
    );
    let svg = String::from_utf8_lossy(&flame.stdout);
    assert!(
        flame.status.success() && svg.contains("<svg") && svg.contains("heavy"),
        "{}",
        String::from_utf8_lossy(&flame.stderr)
    );
    let mut recorder = record();
    let perf = Command::new("perf")
        .args(["report", "--stdio", "-i", "-"])
        .stdin(recorder.stdout.take().unwrap())
        .output()
        .unwrap();
    recorder.wait().unwrap();
    let report = String::from_utf8_lossy(&perf.stdout);
    assert!(
        perf.status.success() && report.contains("heavy"),
        "{report}{}",
        String::from_utf8_lossy(&perf.stderr)
    );
    assert!(names_in(dir.path()).is_empty(), "no file named -");
}

// See: issue #11 point 5
#[test]
fn writers_leave_no_partial_file_on_a_full_disk() {
    let Some(tmpfs) = Tmpfs::new("rob-writers", "1m") else {
        return;
    };
    let input = crate::common::repo().join("tests/fixtures/peer/sleep.data");
    let input = input.to_str().unwrap();
    std::fs::write(tmpfs.join("kept.svg"), "previous").unwrap();
    tmpfs.fill();
    let cases: [(&str, Vec<&str>); 5] = [
        ("kept.svg", vec!["flame", "-i", input]),
        ("new.svg", vec!["flame", "-i", input]),
        ("report.txt", vec!["report", "-i", input]),
        (
            "out.json",
            vec!["export", "--format", "speedscope", "-i", input],
        ),
        ("diff.svg", vec!["diff", input, input]),
    ];
    for (name, mut args) in cases {
        let target = tmpfs.join(name);
        args.extend(["-o", target.to_str().unwrap()]);
        let out = run_kprof(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(target.to_str().unwrap()) && stderr.contains("No space left"),
            "{args:?}: names the file: {stderr}"
        );
        assert_eq!(stderr.matches("os error").count(), 1, "said once: {stderr}");
    }
    assert_eq!(
        std::fs::read_to_string(tmpfs.join("kept.svg")).unwrap(),
        "previous",
        "an existing output is untouched"
    );
    assert_eq!(
        tmpfs.names(),
        ["filler", "kept.svg"],
        "no partial or temporary file"
    );
}

/// Wall seconds and peak RSS (KiB) of `kprof ARGS`, with stdout to `out`.
fn timed_kprof(args: &[&str], out: &Path) -> (f64, u64) {
    let stats = std::env::temp_dir().join(format!("kprof-time-{}", std::process::id()));
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", "-o"])
        .arg(&stats)
        .arg(env!("CARGO_BIN_EXE_kprof"))
        .args(args)
        .stdout(std::fs::File::create(out).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "kprof {args:?}");
    let text = std::fs::read_to_string(&stats).unwrap();
    let _ = std::fs::remove_file(&stats);
    let mut words = text.split_whitespace();
    let secs = words.next().and_then(|w| w.parse().ok()).unwrap();
    let kib = words.next().and_then(|w| w.parse().ok()).unwrap();
    (secs, kib)
}

// See: issue #11 point 6
#[test]
fn a_200_mb_symbol_name_costs_neither_time_nor_memory() {
    if !cfg!(target_arch = "x86_64") || !kprof_can_record() || !tool("/usr/bin/time") {
        return;
    }
    let jit = c_workload("jit", &["-O2"]);
    let dir = TempDir::new("rob-huge-name");
    let data = dir.join("jit.data");
    let recorded = kprof_record(&data, &["-F", "999"], &[jit.to_str().unwrap(), "0.5"]);
    let map = PathBuf::from(
        recorded
            .trim()
            .rsplit(" in ")
            .next()
            .unwrap_or_else(|| panic!("the map's path in {recorded}")),
    );
    let data = data.to_str().unwrap();
    let svg = dir.join("out.svg");
    let report = dir.join("report.txt");
    let (flame_before, _) = timed_kprof(&["flame", "-i", data], &svg);
    let (report_before, _) = timed_kprof(&["report", "-i", data], &report);
    // The first JIT function gets a 200 MB name.
    let original = std::fs::read_to_string(&map).unwrap();
    let mut lines = original.lines();
    let first = lines.next().unwrap();
    let (start, rest) = first.split_once(' ').unwrap();
    let (size, _) = rest.split_once(' ').unwrap();
    let mut huge = format!("{start} {size} ").into_bytes();
    huge.resize(huge.len() + (200 << 20), b'A');
    huge.push(b'\n');
    for line in lines {
        huge.extend_from_slice(line.as_bytes());
        huge.push(b'\n');
    }
    std::fs::write(&map, huge).unwrap();
    let (flame_secs, flame_kib) = timed_kprof(&["flame", "-i", data], &svg);
    let (report_secs, report_kib) = timed_kprof(&["report", "-i", data], &report);
    let _ = std::fs::remove_file(&map);
    for (what, secs, before, kib, output) in [
        ("flame", flame_secs, flame_before, flame_kib, &svg),
        ("report", report_secs, report_before, report_kib, &report),
    ] {
        // The time the name costs, on top of the same run with short names.
        assert!(
            secs < before + 1.0,
            "{what}: {secs:.2} s with the huge name, {before:.2} s without"
        );
        assert!(kib < 200 * 1024, "{what}: {kib} KiB");
        let text = std::fs::read_to_string(output).unwrap();
        assert!(
            text.len() < 1 << 20,
            "{what}: {} bytes of output",
            text.len()
        );
        assert!(text.contains("AAAA…"), "{what}: the name shows, cut");
    }
}

/// Zeroes every entry of the ELF64 file's `.symtab` (a corrupt symbol table; DWARF intact).
fn corrupt_symtab(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let shoff = u64_at(&bytes, 0x28) as usize;
    let (shentsize, shnum) = (
        usize::from(u16_at(&bytes, 0x3a)),
        usize::from(u16_at(&bytes, 0x3c)),
    );
    let mut zeroed = false;
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let sh_type = u32::from_le_bytes(bytes[sh + 4..sh + 8].try_into().unwrap());
        if sh_type == 2 {
            let (offset, size) = (
                u64_at(&bytes, sh + 0x18) as usize,
                u64_at(&bytes, sh + 0x20),
            );
            bytes[offset..offset + size as usize].fill(0);
            zeroed = true;
        }
    }
    assert!(zeroed, "{} has a .symtab", path.display());
    std::fs::write(path, bytes).unwrap();
}

// See: issue #11 point 7
#[test]
fn report_and_flame_name_a_frame_alike_when_the_symtab_is_corrupt() {
    if !kprof_can_record() {
        return;
    }
    let built = hot(FramePointers::Kept);
    let dir = TempDir::new("rob-symtab");
    let hot = dir.join("hot-corrupt");
    std::fs::copy(&built, &hot).unwrap();
    corrupt_symtab(&hot);
    let data = dir.join("hot.data");
    kprof_record(&data, &["-F", "999", "-g"], &[hot.to_str().unwrap(), "0.5"]);
    let v = symbol_report_json(&data, &[]);
    let data = data.to_str().unwrap();
    let top = v["events"][0]["rows"][0]["sym"]
        .as_str()
        .unwrap()
        .to_string();
    let folded = kprof_ok(&["flame", "--folded", "-i", data]);
    // The heaviest leaf of the flame graph.
    let mut leaves: std::collections::HashMap<&str, u64> = Default::default();
    for line in folded.lines() {
        let (stack, weight) = line.rsplit_once(' ').unwrap();
        let leaf = stack.rsplit(';').next().unwrap();
        *leaves.entry(leaf).or_default() += weight.parse::<u64>().unwrap();
    }
    let flame_top = leaves.iter().max_by_key(|(_, w)| **w).unwrap().0;
    assert_eq!(top, *flame_top, "one name for one frame");
    assert_eq!(top, "spin", "DWARF names it when the symbol table cannot");
}

// See: issue #11 point 7
#[test]
fn dwarf_stacks_ending_at_the_loaders_start_are_complete() {
    if !kprof_can_record() {
        return;
    }
    let recording = Recording::by_kprof(
        "rob-ldso",
        "true.data",
        &["--call-graph", "dwarf"],
        &["sh", "-c", "for i in $(seq 100); do /bin/true; done"],
    );
    let json = recording.read(&["report", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let modules = v["unwinding"]["modules"].as_object().unwrap();
    let (name, loader) = modules
        .iter()
        .find(|(name, _)| name.contains("/ld-linux"))
        .unwrap_or_else(|| panic!("walks ended in the dynamic loader: {modules:?}"));
    let total = ["reached_root", "truncated", "failed"]
        .iter()
        .map(|k| loader[k].as_u64().unwrap())
        .sum::<u64>();
    let no_cfi = loader["reasons"]["no unwind info"].as_u64().unwrap_or(0);
    assert!(total >= 20, "{name}: {total} walks");
    assert!(
        no_cfi * 100 <= total,
        "{name}: {no_cfi} of {total} walks reported as stopped early: {loader}"
    );
    let text = recording.read(&["report"]);
    assert!(
        !text
            .lines()
            .any(|l| l.contains("/ld-linux") && l.contains("install the -dbgsym")),
        "{text}"
    );
}

// See: issue #11 point 7
#[test]
fn a_thread_id_of_minus_one_prints_as_minus_one() {
    use kprof_perfdata::Endian;
    use kprof_perfdata::kinds::{record, sample};
    use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};
    let spec = AttrSpec {
        sample_type: sample::IP | sample::TID | sample::TIME,
        ..AttrSpec::default()
    };
    let mut records = RecordBuilder::new(Endian::Little);
    records.record(record::SAMPLE, 2, |b| {
        b.u64(0x401000).u32(u32::MAX).u32(u32::MAX).u64(1_000);
    });
    let bytes = FileBuilder::new(Endian::Little)
        .attr(spec, &[7])
        .records(&records.into_bytes())
        .build_file();
    let (_dir, file) = TempDir::with_file("rob-tid", "minus-one.data");
    std::fs::write(&file, bytes).unwrap();
    let file = file.to_str().unwrap();
    for args in [
        vec!["script", "-i", file],
        vec!["flame", "--folded", "--per-thread", "-i", file],
        vec!["report", "--sort", "pid,tid", "-i", file],
    ] {
        let out = kprof_ok(&args);
        assert!(!out.contains("4294967295"), "{args:?}: {out}");
        assert!(out.contains("-1"), "{args:?}: {out}");
    }
}

// See: issue #11 point 7
#[test]
fn os_errors_are_said_once() {
    let dir = TempDir::new("rob-once");
    let missing = dir.join("no-such-dir/out");
    let missing = missing.to_str().unwrap();
    for args in [
        vec!["record", "-o", missing, "--", "true"],
        vec!["flame", "-i", "/no/such/input.data"],
    ] {
        let out = run_kprof(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.matches("os error 2").count(),
            1,
            "{args:?}: {stderr}"
        );
    }
}

// See: issue #11 point 7
#[test]
fn an_expected_stop_is_not_a_failure_and_a_killed_workload_is_named() {
    if !kprof_can_record() {
        return;
    }
    let (_dir, file) = TempDir::with_file("rob-exit", "d.data");
    let _machine = shared();
    let out = kprof_record_output(&file, &["-q", "--duration", "0.3"], &["sleep", "5"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--duration ended it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kprof_record_output(&file, &["-q", "--duration", "5"], &["sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "the command's own status");
    // A workload that ignores SIGTERM is killed after the grace period, and kprof says so.
    let out = kprof_record_output(
        &file,
        &["--duration", "0.3"],
        &["sh", "-c", "trap '' TERM INT; sleep 30"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("did not exit within 2 s of SIGTERM; killed it with SIGKILL"),
        "{stderr}"
    );
}

// See: issue #11 point 7
#[test]
fn report_on_a_file_without_samples_fails_and_says_so() {
    if !kprof_can_record() {
        return;
    }
    let (_dir, file) = TempDir::with_file("rob-empty", "empty.data");
    let file = file.to_str().unwrap();
    // One sample per second of CPU time: `true` never gets one.
    kprof_ok(&[
        "record",
        "-q",
        "-e",
        "cpu-clock",
        "-c",
        "1000000000",
        "-o",
        file,
        "--",
        "true",
    ]);
    let out = run_kprof(&["report", "-i", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no samples to report"), "{stderr}");
    kprof_ok(&["report", "--header-only", "-i", file]);
}

// A limit on processes (RLIMIT_NPROC counts threads): kprof runs, doing without the helper
// threads it cannot have, or says in one line that it cannot start its worker threads; it
// never panics, and what it prints when it runs is what it prints with no limit.
#[test]
fn a_limit_on_threads_gives_the_same_output_or_one_line_never_a_panic() {
    use kprof_perfdata::Endian;
    use kprof_perfdata::kinds::{record, sample};
    use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};
    if !tool("setpriv") || !tool("prlimit") {
        return;
    }
    let switches = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "true",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !available("switching users (root)", switches, "KPROF_REQUIRE_PERF") {
        return;
    }
    // Over 4 MiB of small records, so that the walk over the record headers has helpers.
    let spec = AttrSpec {
        sample_type: sample::IP | sample::TID | sample::TIME,
        ..AttrSpec::default()
    };
    let mut records = RecordBuilder::new(Endian::Little);
    for i in 0..160_000u64 {
        records.record(record::SAMPLE, 2, |b| {
            b.u64(0x40_1000 + i % 64).u32(7).u32(7).u64(1_000 + i);
        });
    }
    let bytes = FileBuilder::new(Endian::Little)
        .attr(spec, &[7])
        .records(&records.into_bytes())
        .build_file();
    assert!(bytes.len() > 4 << 20, "{}", bytes.len());
    let dir = TempDir::new("rob-nproc");
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let file = dir.join("small-records.data");
    std::fs::write(&file, bytes).unwrap();
    std::fs::set_permissions(&file, PermissionsExt::from_mode(0o644)).unwrap();
    let kprof_bin = dir.join("kprof");
    std::fs::copy(env!("CARGO_BIN_EXE_kprof"), &kprof_bin).unwrap();
    let run = |limit: Option<u32>| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
        if let Some(limit) = limit {
            cmd.arg("prlimit").arg(format!("--nproc={limit}"));
        }
        cmd.arg(&kprof_bin)
            .args(["flame", "--folded", "-i"])
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let unlimited = run(None);
    assert!(
        unlimited.status.success(),
        "{}",
        String::from_utf8_lossy(&unlimited.stderr)
    );
    assert!(!unlimited.stdout.is_empty());
    for limit in 1..=8 {
        let out = run(Some(limit));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "limit {limit}: {stderr}");
        if out.status.success() {
            assert!(out.stdout == unlimited.stdout, "limit {limit}: {stderr}");
        } else {
            assert_eq!(out.status.code(), Some(1), "limit {limit}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "limit {limit}: {stderr}");
            assert!(
                stderr.starts_with("kprof: cannot start worker threads"),
                "limit {limit}: {stderr}"
            );
        }
        // The process alone is all one allows: no worker thread can start.
        if limit == 1 {
            assert!(!out.status.success(), "{stderr}");
        }
    }
}
