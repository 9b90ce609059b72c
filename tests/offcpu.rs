//! Off-CPU and wall-clock profiles against known truth (issue #16): `examples/workloads/offcpu.c`
//! measures each phase of its threads itself (wall time with CLOCK_MONOTONIC, CPU time with
//! CLOCK_THREAD_CPUTIME_ID), so the off-CPU time of a phase is its wall time minus its CPU time,
//! whatever else the machine is doing. kprof's blocked time per state must match those
//! durations, each thread's wall-clock total its lifetime, the pipe's waker the writer function,
//! and an off-CPU bpftrace script run on the same run must give the same top stacks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::common::{self, TempDir, kprof, kprof_ok};

/// The workload's own functions: the part of a stack both kprof and bpftrace name alike.
const OWN_FUNCTIONS: [&str; 10] = [
    "compute_phase",
    "sleep_step",
    "sleep_phase",
    "pipe_phase",
    "pipe_writer_fn",
    "fsync_direct",
    "fsync_phase",
    "worker_main",
    "writer_main",
    "main",
];

/// The names the workload runs under (one per test, as tests run at once): its command name,
/// which bpftrace filters on.
const COMM_DWARF: &str = "offcpu-dwarf";

/// The frame-pointer test's command name, which bpftrace counts system-wide: with this test
/// process's pid in it, so that another test suite running at the same time (CI, a second
/// checkout) is not counted too.
fn comm_fp() -> String {
    format!("offcpu-{}", std::process::id())
}

/// One thread as the workload measured it: `key=value` fields (ns).
type Fields = BTreeMap<String, i64>;

#[derive(Debug, Default)]
struct Measured {
    workers: Vec<Fields>,
    /// (tid, lifetime ns) of writer threads and the main thread.
    others: Vec<(u32, i64)>,
}

fn parse_measurements(stdout: &str) -> Measured {
    let mut measured = Measured::default();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        let Some(kind) = words.next() else { continue };
        let fields: Fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
            .collect();
        match kind {
            "worker" => measured.workers.push(fields),
            "writer" | "main" => measured
                .others
                .push((fields["tid"] as u32, fields["lifetime"])),
            _ => {}
        }
    }
    assert_eq!(measured.workers.len(), 2, "{stdout}");
    assert_eq!(measured.others.len(), 3, "{stdout}");
    measured
}

/// A recording of the workload, with what it measured and, when asked, bpftrace's view of it.
struct Run {
    dir: TempDir,
    data: PathBuf,
    measured: Measured,
    bpftrace: Option<String>,
}

fn lines_until(reader: &mut BufReader<ChildStdout>, marker: &str, seen: &mut String) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "output ended before `{marker}`: {seen}");
        seen.push_str(&line);
        if line.trim() == marker {
            return;
        }
    }
}

fn spawn_bpftrace(comm: &str) -> (Child, BufReader<ChildStdout>) {
    let mut tracer = Command::new("bpftrace")
        .arg(common::repo().join("benches/offcpu.bt"))
        .arg(comm)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bpftrace runs");
    let mut out = BufReader::new(tracer.stdout.take().unwrap());
    // BEGIN runs once every probe is attached.
    lines_until(&mut out, "tracing", &mut String::new());
    (tracer, out)
}

/// Records the workload, named `comm`, with `kprof record --off-cpu CALL_GRAPH`, bpftrace
/// tracing it at the same time when `with_bpftrace`.
fn record(comm: &str, call_graph: &[&str], with_bpftrace: bool) -> Run {
    // Not position-independent: bpftrace prints the user addresses of a stack it keeps in a map
    // as numbers, which are then the binary's own addresses, named by `nm`.
    let bin = common::c_workload(
        "offcpu",
        &[
            "-O0",
            "-g",
            "-fno-omit-frame-pointer",
            "-fno-pie",
            "-no-pie",
            "-pthread",
        ],
    );
    // bpftrace loads BPF programs: recordings made meanwhile would see them (KSYMBOL records),
    // so it holds the machine as a system-wide recording does.
    let _exclusive = with_bpftrace.then(common::exclusive);
    let _shared = (!with_bpftrace).then(common::shared);
    let dir = TempDir::new("offcpu");
    let exe = dir.join(comm);
    std::fs::copy(&bin, &exe).unwrap();
    let data = dir.join("off.data");
    let tracer = with_bpftrace.then(|| spawn_bpftrace(comm));
    let mut child = kprof()
        .args(["record", "--off-cpu", "-q"])
        .args(call_graph)
        .arg("-o")
        .arg(&data)
        .arg("--")
        .arg(&exe)
        .arg(dir.path())
        .arg("--linger")
        // bpftrace's view is checked on the preempted stack too: one there whatever the load.
        .args(with_bpftrace.then_some("--contend"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    lines_until(&mut stdout, "ready", &mut seen);
    // The workload lingers (blocked on its standard input) while bpftrace prints its maps, so
    // that bpftrace can name the workload's user frames.
    let bpftrace = tracer.map(|(mut tracer, mut out)| {
        let printed = std::thread::spawn(move || {
            let mut text = String::new();
            out.read_to_string(&mut text).unwrap();
            text
        });
        common::interrupt_until_exit(&mut tracer);
        printed.join().unwrap()
    });
    drop(child.stdin.take());
    stdout.read_to_string(&mut seen).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "kprof record failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Run {
        measured: parse_measurements(&seen),
        dir,
        data,
        bpftrace,
    }
}

/// Folded stacks (root first) and their weights from `kprof flame ARGS --folded -i DATA`.
fn folded(data: &Path, args: &[&str]) -> Vec<(Vec<String>, u64)> {
    let mut all = vec!["flame", "--folded", "-i", data.to_str().unwrap()];
    all.extend_from_slice(args);
    kprof_ok(&all)
        .lines()
        .map(|line| {
            let (stack, weight) = line.rsplit_once(' ').unwrap();
            (
                stack.split(';').map(str::to_owned).collect(),
                weight.parse().unwrap(),
            )
        })
        .collect()
}

/// The tid of a per-thread root frame, `comm-pid/tid`.
fn root_tid(root: &str) -> u32 {
    root.rsplit_once('/').unwrap().1.parse().unwrap()
}

fn pct_points(a: i64, b: i64, of: i64) -> f64 {
    (a - b) as f64 * 100.0 / of as f64
}

/// Shares per state, wall-clock totals, the pipe's waker and the kernel path of the pipe read,
/// against what the workload measured.
fn check_against_the_program(run: &Run, label: &str) {
    let off = folded(&run.data, &["--off-cpu", "--per-thread"]);
    let mut by_state: BTreeMap<(u32, char), i64> = BTreeMap::new();
    for (stack, weight) in &off {
        let state = stack[1].chars().nth(1).unwrap();
        *by_state.entry((root_tid(&stack[0]), state)).or_insert(0) += *weight as i64;
    }
    for w in &run.measured.workers {
        let tid = w["tid"] as u32;
        let life = w["lifetime"];
        let off_cpu = |phase: &str| w[&format!("{phase}_wall")] - w[&format!("{phase}_cpu")];
        let got = |state| by_state.get(&(tid, state)).copied().unwrap_or(0);
        let mut truth = vec![
            ('S', off_cpu("sleep") + off_cpu("pipe")),
            ('R', off_cpu("compute")),
        ];
        if w["direct_io"] == 1 {
            truth.push(('D', off_cpu("fsync")));
        } else {
            eprintln!("note: no O_DIRECT here: the D state is not checked");
        }
        for (state, want) in truth {
            let diff = pct_points(got(state), want, life);
            assert!(
                diff.abs() < 2.0,
                "{label}: thread {tid} state {state}: kprof {} ns, program {want} ns of a \
                 {life} ns life ({diff:+.2} points)",
                got(state)
            );
        }
        // See: issue #16 point 3 (kernel stacks show the blocking path)
        let pipe_path = off.iter().any(|(stack, _)| {
            let read = stack.iter().position(|f| f.ends_with("pipe_read"));
            let schedule = stack.iter().rposition(|f| f == "schedule");
            stack.iter().any(|f| f == "pipe_phase")
                && matches!((read, schedule), (Some(r), Some(s)) if r < s)
        });
        assert!(
            pipe_path,
            "{label}: no pipe_phase → *pipe_read → schedule stack"
        );
    }
    // Each thread's wall-clock total is its lifetime.
    let wall = folded(&run.data, &["--wall"]);
    let mut totals: BTreeMap<u32, i64> = BTreeMap::new();
    for (stack, weight) in &wall {
        *totals.entry(root_tid(&stack[0])).or_insert(0) += *weight as i64;
    }
    let lives = run
        .measured
        .workers
        .iter()
        .map(|w| (w["tid"] as u32, w["lifetime"]))
        .chain(run.measured.others.iter().copied());
    // A sample the ring lost takes its period of on-CPU time with it (at the default 4000 Hz, a
    // quarter of a millisecond each): the file counts them, so a thread may come short by that.
    let header = kprof_ok(&["report", "--header-only", "-i", run.data.to_str().unwrap()]);
    let lost: i64 = header
        .lines()
        .find_map(|l| l.strip_prefix("# lost samples : "))
        .map(|n| n.trim().parse().unwrap())
        .expect("report --header-only tells the lost samples");
    let lost_ns = lost * 250_000;
    for (tid, life) in lives {
        let total = totals.get(&tid).copied().unwrap_or(0);
        let off_by = (total - life) as f64 * 100.0 / life as f64;
        let short_by_lost = (total + lost_ns - life) as f64 * 100.0 / life as f64;
        assert!(
            off_by < 2.0 && short_by_lost > -2.0,
            "{label}: thread {tid}: wall total {total} ns, lifetime {life} ns ({off_by:+.2}%; \
             {lost} samples lost)"
        );
    }
    // The pipe read is woken by the writer function, for as long as the program measured.
    let wakers = folded(&run.data, &["--wakers", "--per-thread"]);
    for w in &run.measured.workers {
        let tid = w["tid"] as u32;
        let (mut by_writer, mut others) = (0i64, 0i64);
        for (stack, weight) in &wakers {
            let Some(split) = stack.iter().position(|f| f == "--") else {
                continue;
            };
            if root_tid(&stack[0]) != tid || !stack[..split].iter().any(|f| f == "pipe_phase") {
                continue;
            }
            if stack[split..].iter().any(|f| f == "pipe_writer_fn") {
                by_writer += *weight as i64;
            } else {
                others += *weight as i64;
            }
        }
        let want = w["pipe_wall"] - w["pipe_cpu"];
        let diff = pct_points(by_writer, want, w["lifetime"]);
        assert!(
            diff.abs() < 2.0 && others == 0,
            "{label}: thread {tid}: pipe read woken by pipe_writer_fn for {by_writer} ns (by \
             others {others} ns), program measured {want} ns"
        );
    }
}

/// The workload's own functions of a stack, leaf first: what kprof and bpftrace both name.
fn own_key(leaf_first: impl Iterator<Item = String>) -> String {
    leaf_first
        .filter(|f| OWN_FUNCTIONS.contains(&f.as_str()))
        .collect::<Vec<_>>()
        .join("<")
}

/// The functions of `exe` by start address (`nm -n`: text symbols).
fn functions(exe: &Path) -> Vec<(u64, String)> {
    let out = Command::new("nm")
        .arg("-n")
        .arg(exe)
        .output()
        .expect("nm runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let addr = u64::from_str_radix(cols.next()?, 16).ok()?;
            let kind = cols.next()?;
            let name = cols.next()?;
            matches!(kind, "T" | "t").then(|| (addr, name.to_owned()))
        })
        .collect()
}

/// The function of `exe` that holds `addr`, by `nm`; `?` outside it.
fn function_at(functions: &[(u64, String)], addr: u64) -> String {
    match functions.partition_point(|(start, _)| *start <= addr) {
        0 => "?".to_owned(),
        i => functions[i - 1].1.clone(),
    }
}

/// bpftrace's `@blocked_ns[kstack, ustack]: ns` entries by own-function key; user frames that
/// bpftrace left as addresses are named by `nm`.
fn bpftrace_by_key(text: &str, exe: &Path) -> BTreeMap<String, i64> {
    let functions = functions(exe);
    let mut by_key = BTreeMap::new();
    for entry in text.split("@blocked_ns[").skip(1) {
        let (stacks, value) = entry.rsplit_once("]: ").unwrap();
        let ns: i64 = value.split_whitespace().next().unwrap().parse().unwrap();
        let user = stacks.rsplit_once("\n,").map_or("", |(_, user)| user);
        let frames = user.lines().map(|l| {
            let l = l.trim();
            match l.strip_prefix("0x") {
                Some(hex) => function_at(&functions, u64::from_str_radix(hex, 16).unwrap_or(0)),
                None => l.split_once('+').map_or(l, |(f, _)| f).to_owned(),
            }
        });
        *by_key.entry(own_key(frames)).or_insert(0) += ns;
    }
    by_key
}

#[test]
fn offcpu_frame_pointers_match_the_program_and_bpftrace() {
    if !common::kprof_can_record() {
        return;
    }
    let with_bpftrace = common::tool("bpftrace");
    let comm_fp = comm_fp();
    let run = record(&comm_fp, &["-g"], with_bpftrace);
    check_against_the_program(&run, "fp");
    // The file stays readable by perf, with the switched-out state.
    if common::perf_can_record() {
        let script = common::perf(&["script", "-i", run.data.to_str().unwrap()]);
        assert!(script.contains("sched:sched_switch") && script.contains("prev_state=S"));
        assert!(script.contains("sched:sched_waking"));
    }
    let Some(text) = &run.bpftrace else {
        return;
    };
    // See: issue #16 done-means 2
    let theirs = bpftrace_by_key(text, &run.dir.join(&comm_fp));
    let mut ours: BTreeMap<String, i64> = BTreeMap::new();
    for (stack, weight) in folded(&run.data, &["--off-cpu", "--no-inline"]) {
        if stack[0] != comm_fp {
            continue;
        }
        *ours.entry(own_key(stack.into_iter().rev())).or_insert(0) += weight as i64;
    }
    // The main thread lingers blocked while bpftrace prints: its last interval is still open
    // there; compare the worker and writer threads' stacks.
    let total: i64 = theirs.values().sum();
    let top: Vec<(&String, &i64)> = theirs
        .iter()
        .filter(|(key, ns)| {
            **ns * 200 >= total && (key.contains("worker_main") || key.contains("writer_main"))
        })
        .collect();
    // Sleeping, reading the pipe, the writer's waits, fsync, and the preempted compute stack
    // (`--contend`: the two workers compute on one CPU, so each waits there about a second).
    assert!(top.len() >= 4, "bpftrace's top stacks: {theirs:#?}");
    // See: issue #10 (the preempted stack's time above bpftrace's)
    assert!(
        top.iter().any(|(key, _)| key.starts_with("compute_phase<")),
        "bpftrace's top stacks lack the preempted compute_phase: {theirs:#?}"
    );
    // Both tools see the same switches, but each end of an interval may differ by some tens of
    // microseconds, which adds up on stacks of many short intervals (thousands of preemptions
    // of a fraction of a millisecond on a busy machine): allowed, 50 µs per interval, beside 5%.
    // - kprof ends an interval at the `sched_switch` naming the thread `next_pid`, as bpftrace,
    //   when it recorded that sample (the thread switched from is the workload's), else at the
    //   thread's switch-in record, written after the context switch: 10-20 µs later here.
    // - The kernel runs bpftrace's program on a tracepoint before taking kprof's sample of it,
    //   so kprof's intervals start later by that program's cost (its stack walks, ~20 µs here).
    // And bpftrace's script leaves a few switches unrecorded (0-3 of ~700 preemptions per
    // thread in our runs, while kprof's count equals the kernel's, /proc/.../schedstat): each
    // takes a whole interval out of its total, milliseconds for a thread waiting for a CPU,
    // which is a share of the preempted stack's total that no margin derived from its
    // interval counts covers (one of 60 intervals on a quiet machine is 12-23%). There kprof
    // may be above bpftrace (by whole intervals) but not below it; its R time is checked both
    // ways against the program's own clocks (`check_against_the_program`).
    let mut intervals: BTreeMap<String, i64> = BTreeMap::new();
    for (stack, count) in folded(
        &run.data,
        &["--off-cpu", "--no-inline", "--count", "samples"],
    ) {
        if stack[0] == comm_fp {
            *intervals
                .entry(own_key(stack.into_iter().rev()))
                .or_insert(0) += count as i64;
        }
    }
    const PER_INTERVAL_NS: i64 = 50_000;
    for (key, ns) in top {
        let mine = ours.get(key).copied().unwrap_or(0);
        let count = intervals.get(key).copied().unwrap_or(0);
        let allowed = *ns / 20 + count * PER_INTERVAL_NS;
        let off_by = (mine - ns) as f64 * 100.0 / *ns as f64;
        eprintln!(
            "stack {key}: kprof {mine} ns, bpftrace {ns} ns ({off_by:+.2}%; {count} intervals, \
             {:+.1} µs each)",
            (mine - ns) as f64 / 1000.0 / count.max(1) as f64
        );
        let above_allowed = !key.starts_with("compute_phase<") && mine - ns > allowed;
        assert!(
            ns - mine <= allowed && !above_allowed,
            "stack {key}: kprof {mine} ns, bpftrace {ns} ns ({off_by:+.2}%; {count} intervals)\n\
             kprof: {ours:#?}\nbpftrace: {theirs:#?}"
        );
    }
}

#[test]
fn offcpu_dwarf_stacks_match_the_program() {
    if !common::kprof_can_record() {
        return;
    }
    // Each sample and switch carries an 8 KiB stack copy: rings of 16 MiB, so that a busy
    // machine's late reader loses little (what it loses is allowed for, see below).
    let run = record(COMM_DWARF, &["--call-graph", "dwarf", "-m", "4096"], false);
    check_against_the_program(&run, "dwarf");
    let data = run.data.to_str().unwrap();
    // Exports carry blocked time in nanoseconds.
    let total: u64 = folded(&run.data, &["--off-cpu"])
        .iter()
        .map(|(_, w)| w)
        .sum();
    let dir = TempDir::new("offcpu-export");
    let speedscope = dir.join("off.speedscope.json");
    kprof_ok(&[
        "export",
        "--off-cpu",
        "--format",
        "speedscope",
        "-i",
        data,
        "-o",
        speedscope.to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&speedscope).unwrap()).unwrap();
    let mut exported = 0u64;
    for profile in json["profiles"].as_array().unwrap() {
        assert_eq!(profile["unit"], "nanoseconds");
        exported += profile["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap())
            .sum::<u64>();
    }
    assert_eq!(exported, total);
    let pprof = dir.join("off.pb.gz");
    kprof_ok(&[
        "export",
        "--off-cpu",
        "--format",
        "pprof",
        "-i",
        data,
        "-o",
        pprof.to_str().unwrap(),
    ]);
    if common::tool("go") {
        let out = Command::new("go")
            .args(["tool", "pprof", "-raw", "-symbolize=none"])
            .arg(&pprof)
            .env("HOME", std::env::temp_dir())
            .output()
            .unwrap();
        let raw = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(raw.contains("off-cpu/nanoseconds"), "{raw}");
    }
    // A profile compared with itself: both columns hold the same blocked time.
    let diff = kprof_ok(&["diff", "--off-cpu", "--folded", data, data]);
    let (base, new) = diff.lines().fold((0u64, 0u64), |(b, n), line| {
        let mut cols = line.rsplitn(3, ' ');
        let new: u64 = cols.next().unwrap().parse().unwrap();
        let base: u64 = cols.next().unwrap().parse().unwrap();
        (b + base, n + new)
    });
    assert_eq!((base, new), (total, total));
}
