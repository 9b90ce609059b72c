//! Shared helpers for the integration tests: temp dirs, workloads, perf recordings, running kprof.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The kprof binary under test.
pub fn kprof() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kprof"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs kprof with `args`, returning its output.
pub fn run_kprof(args: &[&str]) -> Output {
    kprof().args(args).output().expect("kprof runs")
}

/// Runs kprof and insists on success; returns stdout.
pub fn kprof_ok(args: &[&str]) -> String {
    let out = run_kprof(args);
    assert!(
        out.status.success(),
        "kprof {args:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A fresh private directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kprof-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    /// A fresh directory tagged `tag` and the path of the file `name` in it.
    pub fn with_file(tag: &str, name: &str) -> (TempDir, PathBuf) {
        let dir = TempDir::new(tag);
        let file = dir.join(name);
        (dir, file)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KPROF_KEEP_TEMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "1")
}

/// Whether `command` runs and exits 0 (its standard output and error discarded): a probe of
/// what this machine can do.
pub fn quietly_succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// tracefs, mounted at /sys/kernel/tracing as kprof mounts it when nothing is there: a fresh
/// machine may not mount it at boot, and a test that reads it before any kprof run would
/// otherwise find it empty.
pub fn tracefs() -> &'static Path {
    static MOUNTED: OnceLock<()> = OnceLock::new();
    let root = Path::new("/sys/kernel/tracing");
    MOUNTED.get_or_init(|| {
        if !root.join("events").is_dir() {
            quietly_succeeds(
                Command::new("mount")
                    .args(["-t", "tracefs", "tracefs"])
                    .arg(root),
            );
        }
    });
    root
}

/// Whether a test needing `what` may run: true if available; false (with a message) to skip;
/// panics when `KPROF_REQUIRE_PERF=1` (or `KPROF_REQUIRE_TOOLS=1` for tools) forbids skipping.
pub fn available(what: &str, ok: bool, require_var: &str) -> bool {
    if ok {
        return true;
    }
    if required(require_var) {
        panic!("{what} is unavailable but {require_var}=1 requires it");
    }
    eprintln!("SKIP: {what} is unavailable (set {require_var}=1 to make this a failure)");
    false
}

/// True when `/usr/bin/perf` can record a software event here.
pub fn perf_can_record() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        let (_dir, file) = TempDir::with_file("probe", "probe.data");
        quietly_succeeds(
            Command::new("perf")
                .args(["record", "-q", "--no-bpf-event", "-e", "cpu-clock", "-o"])
                .arg(&file)
                .args(["--", "true"]),
        )
    });
    available(
        "perf record (Linux perf with perf_event_open)",
        ok,
        "KPROF_REQUIRE_PERF",
    )
}

/// True when kprof itself can open perf events here (root or a permissive paranoid setting).
pub fn kprof_can_record() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        let dir = TempDir::new("kprobe");
        run_kprof(&[
            "record",
            "-q",
            "-e",
            "cpu-clock",
            "-o",
            dir.join("p.data").to_str().unwrap(),
            "--",
            "true",
        ])
        .status
        .success()
    });
    available("kprof record (perf_event_open)", ok, "KPROF_REQUIRE_PERF")
}

/// True when a command-line tool is on PATH.
pub fn tool(name: &str) -> bool {
    let ok = quietly_succeeds(Command::new("sh").args(["-c", &format!("command -v {name}")]));
    available(name, ok, "KPROF_REQUIRE_TOOLS")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kernel's command name (comm) of a process running `binary`: its file name, cut to the
/// 15 bytes the kernel keeps.
pub fn comm_of(binary: &Path) -> String {
    binary
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .chars()
        .take(15)
        .collect()
}

/// Compiles `examples/workloads/NAME.c` with `flags` into a binary (once per test run) and
/// returns its path.
pub fn c_workload(name: &str, flags: &[&str]) -> PathBuf {
    c_workload_linked(name, flags, &[])
}

/// [`c_workload`] linked with `libs` (`-lsqlite3`), which follow the source on the command line.
pub fn c_workload_linked(name: &str, flags: &[&str], libs: &[&str]) -> PathBuf {
    let key = format!("{name}-{}", build_tag(flags.iter().chain(libs)));
    build_once(key, &format!("{name}.c"), |src, out| {
        let mut cc = Command::new("cc");
        cc.args(flags).arg(src).args(libs).arg("-o").arg(out);
        cc
    })
}

/// Compiles the one-file Rust program `examples/workloads/NAME.rs` with `rustc FLAGS` (once per
/// test run) and returns its path: a release build as `rustc` makes it, without cargo.
pub fn rustc_workload(name: &str, flags: &[&str]) -> PathBuf {
    let key = format!("{name}-rs-{}", build_tag(flags));
    build_once(key, &format!("{name}.rs"), |src, out| {
        // The rustc of the toolchain that runs these tests sits beside its cargo.
        let toolchain_rustc = Path::new(env!("CARGO")).with_file_name("rustc");
        let rustc = if toolchain_rustc.exists() {
            toolchain_rustc
        } else {
            PathBuf::from("rustc")
        };
        let mut rustc = Command::new(rustc);
        rustc
            .args(["--edition", "2024"])
            .args(flags)
            .arg(src)
            .arg("-o")
            .arg(out);
        rustc
    })
}

/// The letters and digits of a build's flags, to name its output.
fn build_tag<'a>(flags: impl IntoIterator<Item = &'a &'a str>) -> String {
    flags
        .into_iter()
        .flat_map(|flag| flag.chars())
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Builds `examples/workloads/SOURCE` as `key` in the workloads directory, once per test run
/// (an earlier build of the same key is returned): `compiler(source, output)` is the command.
/// The output appears under its name only when complete.
fn build_once(
    key: String,
    source: &str,
    compiler: impl FnOnce(&Path, &Path) -> Command,
) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(k, _)| *k == key) {
        return path.clone();
    }
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workloads");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(&key);
    // A compiler is a busy process: not while a system-wide recording runs.
    let _machine = shared();
    let lock = out_dir.join(format!("{key}.building-{}", std::process::id()));
    let src = repo().join("examples/workloads").join(source);
    let status = compiler(&src, &lock).status().expect("the compiler runs");
    assert!(status.success(), "compiling {}", src.display());
    std::fs::rename(&lock, &out).unwrap();
    built.push((key, out.clone()));
    out
}

/// Builds the Rust example workload `busy` (release, no frame pointers) and returns its path.
pub fn rust_workload() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("busy-target");
        // rustc is a busy process: not while a system-wide recording runs.
        let _machine = shared();
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--profile",
                "workload",
                "--example",
                "busy",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(repo())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the busy example");
        target.join("workload/examples/busy")
    })
    .clone()
}

/// Recordings and builds share the machine; a system-wide recording (`-a`) runs alone among
/// this binary's recordings and builds, so the profile holds the workload rather than other
/// tests' compilers. Never take one of these while holding the other (std's lock is not
/// reentrant).
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Stops a tracer (bpftrace) that prints its maps on SIGINT: SIGINT, again every two seconds
/// until it exits, and its exit status. bpftrace 0.17 can miss a SIGINT that comes just after
/// its BEGIN probe ran: on a busy machine one such run polled on for 20 minutes, and a second
/// SIGINT stopped it at once.
pub fn interrupt_until_exit(tracer: &mut std::process::Child) -> std::process::ExitStatus {
    use std::time::{Duration, Instant};
    let give_up = Instant::now() + Duration::from_secs(600);
    loop {
        let sent = Command::new("kill")
            .args(["-INT", &tracer.id().to_string()])
            .status()
            .unwrap();
        let resend = Instant::now() + Duration::from_secs(2);
        while Instant::now() < resend {
            if let Some(status) = tracer.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            sent.success() && Instant::now() < give_up,
            "the tracer (pid {}) does not stop on SIGINT",
            tracer.id()
        );
    }
}

/// Holds the machine for a system-wide recording.
pub fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

/// Holds the machine for a per-process recording (many may run at once).
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// Records `cmd` with `/usr/bin/perf record ARGS -o FILE -- cmd`; panics on failure.
pub fn perf_record(file: &Path, args: &[&str], cmd: &[&str]) {
    let system_wide = args.contains(&"-a");
    let _exclusive = system_wide.then(exclusive);
    let _shared = (!system_wide).then(shared);
    succeeded(
        Command::new("perf")
            .arg("record")
            .arg("--no-bpf-event")
            .args(args)
            .arg("-o")
            .arg(file)
            .arg("--")
            .args(cmd)
            .stdout(Stdio::null()),
    );
}

/// Records `cmd` with `kprof record -q ARGS -o FILE -- cmd` as one of the machine's shared
/// recordings (see [`shared`]; `-a` takes it alone); returns kprof's standard output, panics
/// on failure.
pub fn kprof_record(file: &Path, args: &[&str], cmd: &[&str]) -> String {
    let system_wide = args.contains(&"-a");
    let _exclusive = system_wide.then(exclusive);
    let _shared = (!system_wide).then(shared);
    let out = kprof_record_output(file, &[&["-q"], args].concat(), cmd);
    assert!(
        out.status.success(),
        "kprof record {args:?} -- {cmd:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `kprof record ARGS -o FILE -- CMD` and returns its output, whatever its status (the
/// caller checks it and holds the machine as it needs, see [`shared`]).
pub fn kprof_record_output(file: &Path, args: &[&str], cmd: &[&str]) -> Output {
    kprof()
        .arg("record")
        .args(args)
        .arg("-o")
        .arg(file)
        .arg("--")
        .args(cmd)
        .output()
        .expect("kprof runs")
}

/// Whether a compiled workload keeps frame pointers (`-fno-omit-frame-pointer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramePointers {
    /// Built with frame pointers: `-g` stacks reach `main`.
    Kept,
    /// Built without: only DWARF unwinding reaches `main`.
    Omitted,
}

/// Which program records a [`Recording`].
#[derive(Clone, Copy, Debug)]
pub enum Recorder {
    /// `/usr/bin/perf record`
    Perf,
    /// `kprof record`
    Kprof,
}

/// `examples/workloads/hot.c` built `-O2 -g`, with or without frame pointers: the CPU-bound
/// program most tests record (`hot SECONDS`).
pub fn hot(frame_pointers: FramePointers) -> PathBuf {
    match frame_pointers {
        FramePointers::Kept => c_workload("hot", &["-O2", "-g", "-fno-omit-frame-pointer"]),
        FramePointers::Omitted => c_workload("hot", &["-O2", "-g", "-fomit-frame-pointer"]),
    }
}

/// [`hot`], when `recorder` can record here; `None` (the test skips) otherwise.
pub fn hot_to_record(recorder: Recorder, frame_pointers: FramePointers) -> Option<PathBuf> {
    let can_record = match recorder {
        Recorder::Perf => perf_can_record(),
        Recorder::Kprof => kprof_can_record(),
    };
    can_record.then(|| hot(frame_pointers))
}

/// [`hot`] with frame pointers, for a test that records with kprof and checks with perf; `None`
/// (the test skips) unless both can record here.
pub fn hot_for_kprof_and_perf() -> Option<PathBuf> {
    (kprof_can_record() && perf_can_record()).then(|| hot(FramePointers::Kept))
}

/// A recording a test made: its private directory (removed on drop), the perf.data in it and
/// the program recorded. The one fixture behind "compile a workload, record it, read it back".
pub struct Recording {
    /// The directory, for the test's other files.
    pub dir: TempDir,
    /// The recorded file.
    pub file: PathBuf,
    /// The recorded command's program (its first word).
    pub program: PathBuf,
}

impl Recording {
    /// `cmd` recorded by `kprof record ARGS` into `NAME` in a fresh directory tagged `tag`.
    pub fn by_kprof(tag: &str, name: &str, args: &[&str], cmd: &[&str]) -> Recording {
        let (dir, file) = TempDir::with_file(tag, name);
        kprof_record(&file, args, cmd);
        Recording::new(dir, file, cmd)
    }

    fn new(dir: TempDir, file: PathBuf, cmd: &[&str]) -> Recording {
        let program = PathBuf::from(cmd.first().copied().unwrap_or_default());
        Recording { dir, file, program }
    }

    /// `hot SECONDS` ([`hot`]) recorded by `recorder` with `ARGS` into `NAME` in a fresh
    /// directory tagged `tag`; `None` (the test skips) where that recorder cannot record.
    pub fn of_hot(
        recorder: Recorder,
        tag: &str,
        name: &str,
        frame_pointers: FramePointers,
        args: &[&str],
        seconds: &str,
    ) -> Option<Recording> {
        let hot = hot_to_record(recorder, frame_pointers)?;
        let cmd = [hot.to_str()?, seconds];
        Some(match recorder {
            Recorder::Perf => Recording::by_perf(tag, name, args, &cmd),
            Recorder::Kprof => Recording::by_kprof(tag, name, args, &cmd),
        })
    }

    /// `cmd` recorded by `perf record ARGS` into `NAME` in a fresh directory tagged `tag`.
    pub fn by_perf(tag: &str, name: &str, args: &[&str], cmd: &[&str]) -> Recording {
        let (dir, file) = TempDir::with_file(tag, name);
        perf_record(&file, args, cmd);
        Recording::new(dir, file, cmd)
    }

    /// The recorded file as a command-line argument.
    pub fn path(&self) -> &str {
        self.file.to_str().expect("UTF-8 temp path")
    }

    /// kprof's standard output for `kprof ARGS -i FILE` (`args` starts with the subcommand);
    /// panics on failure.
    pub fn read(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-i", self.path()]);
        kprof_ok(&all)
    }
}

/// The independent `linux-perf-data` reader (the oracle of what a perf.data holds) over the
/// file at `path`, file or pipe format; panics when it cannot parse the header.
pub fn independent_reader(
    path: &Path,
) -> linux_perf_data::PerfFileReader<std::io::Cursor<Vec<u8>>> {
    let bytes = std::fs::read(path).unwrap();
    let pipe = bytes.get(8..16) == Some(&16u64.to_le_bytes()[..]);
    let reader = if pipe {
        linux_perf_data::PerfFileReader::parse_pipe(std::io::Cursor::new(bytes))
    } else {
        linux_perf_data::PerfFileReader::parse_file(std::io::Cursor::new(bytes))
    };
    reader.expect("oracle parses")
}

/// Starts `kprof record -q -F 999 -g -o FILE -- HOT 5` ([`hot`]) and returns the running
/// kprof, its standard error piped, for tests that stop it.
pub fn spawn_hot_recording(hot: &Path, file: &Path) -> std::process::Child {
    kprof()
        .args(["record", "-q", "-F", "999", "-g", "-o"])
        .arg(file)
        .arg("--")
        .arg(hot)
        .arg("5")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub use kprof_test_support::command::{stdout_of, succeeded};

/// `kprof report --no-children --sort sym --format json -i FILE ARGS`, parsed: the self share of
/// each symbol, as most oracles compare it.
pub fn symbol_report_json(file: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "report",
        "--no-children",
        "--sort",
        "sym",
        "--format",
        "json",
        "-i",
        file.to_str().expect("UTF-8 path"),
    ];
    all.extend_from_slice(args);
    serde_json::from_str(&kprof_ok(&all)).expect("report json")
}

/// `perf script -i FILE --force -F FIELDS` (see [`perf`]).
pub fn perf_script(file: &Path, fields: &str) -> String {
    perf(&[
        "script",
        "-i",
        file.to_str().unwrap(),
        "--force",
        "-F",
        fields,
    ])
}

/// `perf report -i FILE --stdio -g none --sort SORT ARGS`: perf's table of every event, without
/// call graphs.
pub fn perf_report_table(file: &Path, sort: &str, args: &[&str]) -> String {
    let mut all = vec![
        "report",
        "-i",
        file.to_str().unwrap(),
        "--stdio",
        "-g",
        "none",
        "--sort",
        sort,
    ];
    all.extend_from_slice(args);
    perf(&all)
}

/// `perf report -i FILE --no-children --sort sym --stdio -g none ARGS` of the first event, read
/// as `[.] name` / `[k] name` → percent (rows of one key summed).
pub fn perf_symbol_percents(file: &Path, args: &[&str]) -> std::collections::HashMap<String, f64> {
    let args = [&["--no-children"], args].concat();
    let mut rows = std::collections::HashMap::new();
    for line in perf_report_table(file, "sym", &args).lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some((percent, sym)) = line.split_once("%  ") else {
            continue;
        };
        if let Ok(percent) = percent.trim().parse::<f64>() {
            *rows.entry(sym.trim().to_string()).or_insert(0.0) += percent;
        }
    }
    rows
}

/// Runs `perf ARGS` and returns stdout; panics on failure.
pub fn perf(args: &[&str]) -> String {
    stdout_of(Command::new("perf").args(args))
}

/// The reference folded stacks: `perf script` text collapsed by inferno's `collapse-perf`
/// (the library behind `inferno-collapse-perf`), for the first event or for `event`.
pub fn inferno_collapse(script: &str, event: Option<&str>) -> String {
    // perf pads event names to the longest one (`250000   cpu-clock:`), which inferno reads as
    // a missing period; one space between words fixes that without changing any value.
    let script: String = script
        .lines()
        .map(|line| {
            if line.starts_with(char::is_whitespace) {
                line.to_string()
            } else {
                line.split(' ')
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut options = inferno::collapse::perf::Options::default();
    // inferno names an event by the text before its first colon (`cpu-clock:pppH` -> `cpu-clock`).
    options.event_filter = event.map(|e| e.split(':').next().unwrap_or(e).to_string());
    let mut folder = inferno::collapse::perf::Folder::from(options);
    let mut out = Vec::new();
    inferno::collapse::Collapse::collapse(&mut folder, script.as_bytes(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Loads `svg` (with a test driver script already injected) in headless Chromium and returns
/// the JSON the driver leaves in a `<text id="kprof-test-result">` element.
pub fn chromium_result(svg: &str, dir: &TempDir) -> serde_json::Value {
    let path = dir.join("driven.svg");
    std::fs::write(&path, svg).unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("file://{}", path.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let marker = "<text id=\"kprof-test-result\">";
    let start = dom
        .find(marker)
        .unwrap_or_else(|| panic!("driver ran: {}", String::from_utf8_lossy(&out.stderr)))
        + marker.len();
    let end = start + dom[start..].find("</text>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap()
}

/// One section header of an ELF file, as `readelf --section-headers` lists it.
#[derive(Clone, Copy, Debug)]
pub struct SectionHeader {
    pub address: u64,
    pub offset: u64,
    pub size: u64,
}

/// Section name → header, from `readelf -SW`.
pub fn section_headers(file: &Path) -> std::collections::HashMap<String, SectionHeader> {
    let out = Command::new("readelf")
        .arg("-SW")
        .arg(file)
        .output()
        .expect("readelf runs");
    assert!(out.status.success(), "readelf -SW {}", file.display());
    let mut sections = std::collections::HashMap::new();
    // `  [14] .plt.sec   PROGBITS   0000000000001140 001140 000100 10  AX  0   0 16`
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((_, rest)) = line.split_once("] ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let hex = |i: usize| fields.get(i).and_then(|f| u64::from_str_radix(f, 16).ok());
        if let (Some(name), Some(address), Some(offset), Some(size)) =
            (fields.first(), hex(2), hex(3), hex(4))
        {
            let header = SectionHeader {
                address,
                offset,
                size,
            };
            sections.insert(name.to_string(), header);
        }
    }
    sections
}

/// A PLT stub as objdump names it: `function@plt` (binutils synthesizes the names from the
/// PLT relocations), over the addresses `address..end` of `section`.
#[derive(Clone, Debug)]
pub struct PltStub {
    pub section: String,
    pub address: u64,
    pub end: u64,
    pub name: String,
}

/// objdump's PLT stubs of `file`, in `.plt`, `.plt.sec` and `.plt.got`.
pub fn objdump_plt_stubs(file: &Path) -> Vec<PltStub> {
    let sections = section_headers(file);
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .args(
            [".plt", ".plt.sec", ".plt.got"]
                .iter()
                .filter(|s| sections.contains_key(**s))
                .flat_map(|s| ["-j", s]),
        )
        .arg(file)
        .output()
        .expect("objdump runs");
    assert!(out.status.success(), "objdump -d {}", file.display());
    // Every label in a section, then each stub ends where the next label or the section does.
    let mut labels: Vec<(String, u64, String)> = Vec::new();
    let mut section = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(name) = line.strip_prefix("Disassembly of section ") {
            section = name.trim_end_matches(':').to_string();
            continue;
        }
        // `0000000000026030 <sqlite3ColumnExpr@plt>:`; the lazy PLT's header has no name of
        // its own (objdump writes `<first@plt-0x10>`).
        let Some((address, label)) = line.split_once(" <") else {
            continue;
        };
        let (Some(label), Ok(address)) = (
            label.strip_suffix(">:"),
            u64::from_str_radix(address.trim(), 16),
        ) else {
            continue;
        };
        labels.push((section.clone(), address, label.to_string()));
    }
    let mut stubs = Vec::new();
    for (i, (section, address, label)) in labels.iter().enumerate() {
        let end = match labels.get(i + 1) {
            Some((next_section, next, _)) if next_section == section => *next,
            _ => sections[section].address + sections[section].size,
        };
        if label.ends_with("@plt") {
            stubs.push(PltStub {
                section: section.clone(),
                address: *address,
                end,
                name: label.clone(),
            });
        }
    }
    stubs
}
