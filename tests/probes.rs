//! Issue #15: uprobes, uretprobes and USDT probes through the uprobe PMU, checked against
//! bpftrace on the same run, against what a USDT program passed and counted itself, and for
//! what they leave behind (nothing) when kprof is interrupted or killed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kprof_profiler::probe::{self, ArgValue, ResolveContext, ResolvedProbe};
use linux_perf_data::linux_perf_event_reader::EventRecord;
use linux_perf_data::{PerfFileReader, PerfFileRecord};

use crate::common::*;

/// The call-heavy C workload (`work(x)` and malloc), built once.
pub(crate) fn calls_binary() -> PathBuf {
    c_workload("probe_calls", &["-O2", "-g"])
}

/// The call workload, when kprof can probe it and bpftrace is here to compare with; `None`
/// (the test skips) otherwise.
pub(crate) fn calls_binary_beside_bpftrace() -> Option<PathBuf> {
    (kprof_can_record() && tool("bpftrace")).then(calls_binary)
}

/// The USDT workload: `probe_usdt.c` (plain probe) with `probe_usdt_guarded.c` (the probe
/// behind a semaphore), compiled with `cc` into `dir`.
pub(crate) fn usdt_binary(dir: &TempDir) -> PathBuf {
    let out = dir.join("probe_usdt");
    let src = repo().join("examples/workloads");
    let _machine = shared();
    let status = Command::new("cc")
        .args(["-O1", "-g"])
        .arg(src.join("probe_usdt.c"))
        .arg(src.join("probe_usdt_guarded.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("cc runs");
    assert!(status.success(), "compiling the USDT workload");
    out
}

/// A fresh directory tagged `tag` with the USDT workload ([`usdt_binary`]) built in it, when
/// kprof can probe it; `None` (the test skips) otherwise.
pub(crate) fn usdt_fixture(tag: &str) -> Option<(TempDir, PathBuf)> {
    if !kprof_can_record() {
        return None;
    }
    let dir = TempDir::new(tag);
    let prog = usdt_binary(&dir);
    Some((dir, prog))
}

fn resolve_one(spec: &str) -> ResolvedProbe {
    let parsed = probe::parse(spec).unwrap();
    let mut sites = probe::resolve(&parsed, &ResolveContext::default()).unwrap();
    assert_eq!(sites.len(), 1, "{spec}");
    sites.remove(0)
}

/// One probe hit as the independent `linux-perf-data` reader sees it: the event's name, the
/// process, the time, and the arguments kprof's library decodes from its registers and stack.
struct Hit {
    event: String,
    pid: i32,
    time: u64,
    args: Vec<(&'static str, ArgValue)>,
}

/// The hits of `probes` in a kprof recording.
fn hits(file: &Path, probes: &[&ResolvedProbe]) -> Vec<Hit> {
    let bytes = std::fs::read(file).unwrap();
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = PerfFileReader::parse_file(std::io::Cursor::new(bytes)).expect("oracle parses");
    let names: Vec<String> = perf_file
        .event_attributes()
        .iter()
        .map(|a| a.name().unwrap_or_default().to_owned())
        .collect();
    let mut out = Vec::new();
    while let Some(record) = record_iter.next_record(&mut perf_file).unwrap() {
        let PerfFileRecord::EventRecord { attr_index, record } = record else {
            continue;
        };
        let Ok(EventRecord::Sample(sample)) = record.parse() else {
            continue;
        };
        let event = names[attr_index].clone();
        let Some(probe) = probes.iter().find(|p| p.name == event) else {
            continue;
        };
        let mask = probe.sample_regs();
        let regs = sample
            .user_regs
            .as_ref()
            .expect("probe samples carry user registers");
        let values: Vec<u64> = (0..64)
            .filter(|bit| mask & (1u64 << bit) != 0)
            .map(|bit| regs.get(bit).unwrap())
            .collect();
        let sampled = probe::SampledRegs {
            mask,
            values: &values,
        };
        let stack_bytes = sample
            .user_stack
            .map(|(data, size)| data.as_slice()[..usize::try_from(size).unwrap()].to_vec());
        let sp = sampled.get(probe.arch.stack_pointer()).unwrap();
        let stack = stack_bytes
            .as_ref()
            .map(|bytes| probe::StackCopy { sp, bytes });
        out.push(Hit {
            event,
            pid: sample.pid.unwrap(),
            time: sample.timestamp.unwrap_or(0),
            args: probe.arguments(&sampled, stack.as_ref()),
        });
    }
    out.sort_by_key(|h| h.time);
    out
}

fn arg(hit: &Hit, name: &str) -> ArgValue {
    hit.args
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{} has no {name}: {:?}", hit.event, hit.args))
}

fn unsigned(v: ArgValue) -> u64 {
    match v {
        ArgValue::Unsigned(v) => v,
        ArgValue::Signed(v) => v as u64,
        other => panic!("not a value: {other:?}"),
    }
}

/// bpftrace's `hist()` bucket of `value`: 0, 1, then powers of two.
fn log2_bucket(value: u64) -> u64 {
    if value < 2 {
        value
    } else {
        1 << (63 - value.leading_zeros())
    }
}

fn histogram(values: impl Iterator<Item = u64>) -> BTreeMap<u64, u64> {
    let mut h = BTreeMap::new();
    for v in values {
        *h.entry(log2_bucket(v)).or_insert(0) += 1;
    }
    h
}

/// bpftrace's printed maps: `@name: N` counts and `@name:` histograms (lower bound → count;
/// `[1K, 2K)` bounds read with K = 1024 as bpftrace prints them).
pub(crate) fn bpftrace_maps(
    text: &str,
) -> (BTreeMap<String, u64>, BTreeMap<String, BTreeMap<u64, u64>>) {
    let mut counts = BTreeMap::new();
    let mut hists: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let bound = |text: &str| -> u64 {
        let text = text.trim();
        let (digits, scale) = match text.chars().last() {
            Some('K') => (&text[..text.len() - 1], 1 << 10),
            Some('M') => (&text[..text.len() - 1], 1 << 20),
            Some('G') => (&text[..text.len() - 1], 1 << 30),
            _ => (text, 1),
        };
        digits.parse::<u64>().unwrap() * scale
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('@') {
            let (name, value) = rest.split_once(':').unwrap();
            match value.trim() {
                "" => {
                    current = Some(name.to_owned());
                    hists.entry(name.to_owned()).or_default();
                }
                v => {
                    current = None;
                    if let Ok(n) = v.parse() {
                        counts.insert(name.to_owned(), n);
                    }
                }
            }
        } else if let (Some(name), Some(body)) = (&current, line.strip_prefix('[')) {
            let end = body.find([',', ']']).unwrap();
            let low = bound(&body[..end]);
            let count: u64 = body[body.find([']', ')']).unwrap() + 1..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            if count > 0 {
                hists.get_mut(name).unwrap().insert(low, count);
            }
        } else if line.trim().is_empty() {
            current = None;
        }
    }
    (counts, hists)
}

/// One run of the call workload under kprof (`kprof ARGS -- probe_calls N ALLOCATE wait 0`) and
/// bpftrace (`-p PID`, `PID` in `script` replaced by it) at once: the workload waits until bpftrace's BEGIN says its probes are
/// attached (kprof's are enabled at the workload's exec), then runs. Returns kprof's output,
/// bpftrace's output and the workload's pid.
pub(crate) fn same_run(
    kprof_args: &[String],
    script: &str,
    calls: u32,
    allocate: bool,
) -> (std::process::Output, String, u32) {
    same_run_spinning(kprof_args, script, calls, allocate, 0)
}

/// [`same_run`], each call of `work` taking `spin_ns` nanoseconds at least.
fn same_run_spinning(
    kprof_args: &[String],
    script: &str,
    calls: u32,
    allocate: bool,
    spin_ns: u32,
) -> (std::process::Output, String, u32) {
    let prog = calls_binary();
    let (mut kprof_run, kprof_lines) = spawn_reading_lines(
        kprof()
            .args(kprof_args)
            .arg("--")
            .arg(&prog)
            .args([
                calls.to_string(),
                u8::from(allocate).to_string(),
                "wait".to_owned(),
                spin_ns.to_string(),
            ])
            .stderr(Stdio::piped()),
    );
    let pid: u32 = loop {
        let line = kprof_lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the workload starts");
        if let Some(pid) = line.strip_prefix("pid=") {
            break pid.parse().unwrap();
        }
    };
    let (mut bpftrace, bpftrace_lines) = spawn_reading_lines(
        Command::new("bpftrace")
            .args(["-p", &pid.to_string(), "-e"])
            .arg(format!(
                "BEGIN {{ printf(\"ready\\n\"); }} {}",
                script.replace("PID", &pid.to_string())
            ))
            .stderr(Stdio::null()),
    );
    wait_for_line(&bpftrace_lines, "ready");
    assert_eq!(send_signal(pid, libc::SIGUSR1), 0);
    let mut rest = String::new();
    let status = kprof_run.0.wait().unwrap();
    while let Ok(line) = kprof_lines.recv_timeout(Duration::from_secs(5)) {
        rest.push_str(&line);
        rest.push('\n');
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(kprof_run.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // The workload has exited: every hit is in. bpftrace prints its maps on SIGINT.
    interrupt_until_exit(&mut bpftrace.0);
    let mut traced = String::new();
    while let Ok(line) = bpftrace_lines.recv_timeout(Duration::from_secs(5)) {
        traced.push_str(&line);
        traced.push('\n');
    }
    let output = std::process::Output {
        status,
        stdout: rest.into_bytes(),
        stderr: stderr.into_bytes(),
    };
    (output, traced, pid)
}

// See: issue #15, done means 1.
#[test]
fn uprobe_counts_and_histograms_equal_bpftrace_on_the_same_run() {
    let Some(prog) = calls_binary_beside_bpftrace() else {
        return;
    };
    let prog_s = prog.to_str().unwrap();
    let work = resolve_one(&format!("u:{prog_s}:work"));
    let work_ret = resolve_one(&format!("ur:{prog_s}:work"));
    let malloc = resolve_one("u:libc:malloc");
    let libc = malloc.path.to_str().unwrap().to_owned();
    let dir = TempDir::new("probes-bpftrace");
    let data = dir.join("p.data");
    let script = format!(
        "uprobe:{prog_s}:work /pid == PID/ {{ @calls = count(); @arg0 = hist(arg0); }} \
         uretprobe:{prog_s}:work /pid == PID/ {{ @returns = count(); @retval = hist(retval); }} \
         uprobe:{libc}:malloc /pid == PID/ {{ @mallocs = count(); @sizes = hist(arg0); }}"
    );
    let args: Vec<String> = vec![
        "record".into(),
        "-m".into(),
        "1024".into(),
        "-o".into(),
        data.to_str().unwrap().into(),
        "-e".into(),
        format!("u:{prog_s}:work,ur:{prog_s}:work,u:libc:malloc"),
    ];
    let _machine = shared();
    let (out, traced, pid) = same_run(&args, &script, 4000, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" 0 lost"), "a lossless recording: {stderr}");
    let (counts, hists) = bpftrace_maps(&traced);
    let hits = hits(&data, &[&work, &work_ret, &malloc]);
    assert!(hits.iter().all(|h| h.pid == pid as i32));
    // bpftrace attached while the workload waited; kprof saw its start-up too. The loop
    // starts at the first call of `work`: compare from there.
    let start = hits.iter().find(|h| h.event == work.name).unwrap().time;
    let of = |probe: &ResolvedProbe| -> Vec<&Hit> {
        hits.iter()
            .filter(|h| h.event == probe.name && h.time >= start)
            .collect()
    };
    let (calls, returns, mallocs) = (of(&work), of(&work_ret), of(&malloc));
    assert_eq!(calls.len(), 4000, "the program's own count");
    assert_eq!(calls.len() as u64, counts["calls"], "{traced}");
    assert_eq!(returns.len() as u64, counts["returns"]);
    assert_eq!(mallocs.len() as u64, counts["mallocs"]);
    assert_eq!(
        histogram(calls.iter().map(|h| unsigned(arg(h, "arg0")))),
        hists["arg0"]
    );
    assert_eq!(
        histogram(returns.iter().map(|h| unsigned(arg(h, "retval")))),
        hists["retval"]
    );
    assert_eq!(
        histogram(mallocs.iter().map(|h| unsigned(arg(h, "arg0")))),
        hists["sizes"]
    );
}

// See: issue #15, done means 1 (counting: `kprof stat -e u:...`).
#[test]
fn stat_counts_probe_hits_as_bpftrace_does() {
    let Some(prog) = calls_binary_beside_bpftrace() else {
        return;
    };
    let prog_s = prog.to_str().unwrap();
    let script = format!(
        "uprobe:{prog_s}:work /pid == PID/ {{ @calls = count(); }} \
         uretprobe:{prog_s}:work /pid == PID/ {{ @returns = count(); }}"
    );
    let args: Vec<String> = vec![
        "stat".into(),
        "-x".into(),
        ",".into(),
        "-e".into(),
        format!("u:{prog_s}:work,ur:{prog_s}:work"),
    ];
    let _machine = shared();
    let (out, traced, _) = same_run(&args, &script, 3000, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (counts, _) = bpftrace_maps(&traced);
    assert_eq!(
        counted(&stderr, &format!("u:{prog_s}:work")),
        counts["calls"]
    );
    assert_eq!(
        counted(&stderr, &format!("ur:{prog_s}:work")),
        counts["returns"]
    );
    assert_eq!(counts["calls"], 3000);
}

/// `kprof trace ARGS` over the call workload beside bpftrace's `script` on the same run: kprof's
/// maps and bpftrace's, each as `bpftrace_maps` reads them, after checking kprof lost nothing.
type Maps = (BTreeMap<String, u64>, BTreeMap<String, BTreeMap<u64, u64>>);
fn trace_beside_bpftrace(
    trace_args: &[&str],
    script: &str,
    calls: u32,
    allocate: bool,
) -> (Maps, Maps) {
    trace_beside_bpftrace_spinning(trace_args, script, calls, allocate, 0)
}

/// [`trace_beside_bpftrace`], each call of `work` taking `spin_ns` nanoseconds at least.
fn trace_beside_bpftrace_spinning(
    trace_args: &[&str],
    script: &str,
    calls: u32,
    allocate: bool,
    spin_ns: u32,
) -> (Maps, Maps) {
    let mut args: Vec<String> = vec!["trace".into(), "-m".into(), "1024".into()];
    args.extend(trace_args.iter().map(|a| a.to_string()));
    let _machine = shared();
    let (out, traced, _) = same_run_spinning(&args, script, calls, allocate, spin_ns);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "a lossless trace: {stderr}");
    (bpftrace_maps(&stdout), bpftrace_maps(&traced))
}

// See: issue #15 point 4, done means 1 (`kprof trace --count` and `--hist arg0` of a uprobe).
#[test]
fn trace_counts_and_histograms_probe_arguments_as_bpftrace_does() {
    let Some(prog) = calls_binary_beside_bpftrace() else {
        return;
    };
    let work = format!("u:{}:work", prog.to_str().unwrap());
    let script = format!(
        "uprobe:{}:work /pid == PID/ {{ @ = hist(arg0); @calls = count(); }}",
        prog.to_str().unwrap()
    );
    let ((counts, _), (bpf_counts, _)) =
        trace_beside_bpftrace(&["--count", "-e", &work], &script, 3000, false);
    assert_eq!(counts[""], 3000, "the program's own count of work()");
    assert_eq!(bpf_counts["calls"], 3000);
    let ((_, hists), (_, bpf_hists)) =
        trace_beside_bpftrace(&["--hist", "arg0", "-e", &work], &script, 3000, false);
    assert_eq!(hists[""].values().sum::<u64>(), 3000);
    assert_eq!(hists[""], bpf_hists[""]);
    // libc's malloc by thread name: one per loop step, plus what stdio allocates, as bpftrace
    // counts them.
    let script = "uprobe:libc:malloc /pid == PID/ { @[comm] = count(); }";
    let ((counts, _), (bpf_counts, _)) = trace_beside_bpftrace(
        &["--count", "--by", "comm", "-e", "u:libc:malloc"],
        script,
        2000,
        true,
    );
    assert_eq!(counts, bpf_counts);
    assert_eq!(counts.len(), 1, "one thread name: {counts:?}");
    assert!(counts.values().all(|&n| n >= 2000), "{counts:?}");
}

// See: issue #15 point 4, done means 1 (`kprof trace --latency u:PATH:FUNC` vs bpftrace's
// uprobe/uretprobe `hist(nsecs - @start[tid])`).
#[test]
fn trace_function_latency_agrees_with_bpftrace_on_the_same_run() {
    let Some(prog) = calls_binary_beside_bpftrace() else {
        return;
    };
    let prog_s = prog.to_str().unwrap();
    let script = format!(
        "uprobe:{prog_s}:work /pid == PID/ {{ @start[tid] = nsecs; }} \
         uretprobe:{prog_s}:work /pid == PID && @start[tid]/ {{ \
           @ = hist(nsecs - @start[tid]); delete(@start[tid]); }}"
    );
    let calls = 3000;
    // Each call spins for 17 us: with the two tools' probe handlers around it (4 to 8 us here),
    // both time it near the middle of one log2 bucket (16 to 33 us). An empty `work` took
    // only the handlers' time, 4 to 8 us, astride a bucket's edge: which side each tool saw
    // depended on the load (76% in the same bucket on a busy run).
    let ((counts, hists), (_, bpf_hists)) = trace_beside_bpftrace_spinning(
        &["--latency", &format!("u:{prog_s}:work")],
        &script,
        calls,
        false,
        17_000,
    );
    assert_eq!(
        (counts["unmatched_starts"], counts["unmatched_ends"]),
        (0, 0)
    );
    let (ours, theirs) = (&hists[""], &bpf_hists[""]);
    assert_eq!(ours.values().sum::<u64>(), u64::from(calls), "{ours:?}");
    assert_eq!(theirs.values().sum::<u64>(), u64::from(calls), "{theirs:?}");
    // Calls in the same log2 bucket in both: the histograms' overlap.
    let same: u64 = ours
        .iter()
        .map(|(bucket, n)| (*n).min(theirs.get(bucket).copied().unwrap_or(0)))
        .sum();
    assert!(
        same * 100 >= u64::from(calls) * 95,
        "{same} of {calls} calls in the same bucket: kprof {ours:?}, bpftrace {theirs:?}"
    );
}

// See: issue #15 point 4 (`kprof trace -o` keeps probe events; `-i` aggregates them again).
#[test]
fn trace_reads_probe_events_back_from_its_file() {
    if !kprof_can_record() {
        return;
    }
    let prog = calls_binary();
    let prog_s = prog.to_str().unwrap();
    let dir = TempDir::new("probes-trace-file");
    let data = dir.join("t.data");
    let data_s = data.to_str().unwrap();
    let _machine = shared();
    let out = kprof()
        .args(["trace", "-q", "-m", "1024", "-o", data_s, "-e"])
        .arg(format!("u:{prog_s}:work,ur:{prog_s}:work"))
        .args(["--", prog_s, "1500", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "a lossless trace: {stderr}");
    let read =
        |args: &[&str]| -> String { stdout_of(kprof().args(["trace", "-i", data_s]).args(args)) };
    let text = read(&["--count", "--by", "event"]);
    // The program calls work() 1500 times; each call returns.
    for event in [format!("u:{prog_s}:work"), format!("ur:{prog_s}:work")] {
        assert!(
            text.lines().any(|l| l == format!("@[{event}]: 1500")),
            "{text}"
        );
    }
    let (counts, hists) = bpftrace_maps(&read(&["--latency", &format!("u:{prog_s}:work")]));
    assert_eq!(
        (counts["unmatched_starts"], counts["unmatched_ends"]),
        (0, 0)
    );
    assert_eq!(hists[""].values().sum::<u64>(), 1500);
}

/// The count of event `name` in `kprof stat -x ,` output.
pub(crate) fn counted(stderr: &str, name: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.split(',').nth(2) == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {stderr}"))
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A count printed as `KEY=N` by a workload.
pub(crate) fn printed(stdout: &str, key: &str) -> u64 {
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
        .parse()
        .unwrap()
}

/// `plain=N guarded=M` from the USDT workload.
fn usdt_counts(stdout: &str) -> (u64, u64) {
    (printed(stdout, "plain="), printed(stdout, "guarded="))
}

// See: issue #15, done means 2.
#[test]
fn usdt_hits_arguments_and_semaphore_match_the_program() {
    let Some((dir, prog)) = usdt_fixture("probes-usdt") else {
        return;
    };
    let prog_s = prog.to_str().unwrap();
    // Alone, nobody sets the semaphore: the guarded probe never runs.
    let alone = Command::new(&prog).arg("200").output().unwrap();
    assert_eq!(
        usdt_counts(&String::from_utf8_lossy(&alone.stdout)),
        (200, 0)
    );
    let plain_spec = format!("usdt:{prog_s}:demo:plain");
    let guarded_spec = format!("usdt:{prog_s}:demo:guarded");
    let _machine = shared();
    // Counting: kprof's hit counts are the program's own.
    let out = kprof()
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            &format!("{plain_spec},{guarded_spec}"),
        ])
        .args(["--", prog_s, "300"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (plain, guarded) = usdt_counts(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (plain, guarded),
        (300, 300),
        "the semaphore was set while counting"
    );
    assert_eq!(counted(&stderr, &plain_spec), plain);
    assert_eq!(counted(&stderr, &guarded_spec), guarded);
    // Recording: every argument is what the program passed.
    let data = dir.join("u.data");
    let out = kprof()
        .args(["record", "-m", "1024", "-o", data.to_str().unwrap(), "-e"])
        .arg(format!("{plain_spec},{guarded_spec}"))
        .args(["--", prog_s, "250"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" 0 lost"), "a lossless recording: {stderr}");
    let plain_probe = resolve_one(&plain_spec);
    let guarded_probe = resolve_one(&guarded_spec);
    assert!(guarded_probe.ref_ctr_offset.is_some());
    assert!(plain_probe.ref_ctr_offset.is_none());
    let hits = hits(&data, &[&plain_probe, &guarded_probe]);
    let plain_hits: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.event == plain_probe.name)
        .collect();
    let guarded_hits: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.event == guarded_probe.name)
        .collect();
    assert_eq!((plain_hits.len(), guarded_hits.len()), (250, 250));
    for (i, hit) in plain_hits.iter().enumerate() {
        let i = i as i64;
        // STAP_PROBE4(demo, plain, i, 5, on_stack = -3 * i, negative = -i): a register, an
        // immediate, a stack slot and a negative register.
        assert_eq!(arg(hit, "arg0"), ArgValue::Signed(i), "step {i}");
        assert_eq!(arg(hit, "arg1"), ArgValue::Signed(5));
        assert_eq!(
            arg(hit, "arg2"),
            ArgValue::Signed(-3 * i),
            "stack operand, step {i}"
        );
        assert_eq!(arg(hit, "arg3"), ArgValue::Signed(-i));
    }
    for (i, hit) in guarded_hits.iter().enumerate() {
        assert_eq!(arg(hit, "arg0"), ArgValue::Signed(i as i64 * 1000));
        // `global_value(%rip)`: a global, outside the stack copy — its address, not a guess.
        assert!(matches!(arg(hit, "arg1"), ArgValue::Unread { .. }));
    }
}

/// Starts `command` with its stdout piped, killed when dropped: the child and its stdout lines
/// ([`line_reader`]).
pub(crate) fn spawn_reading_lines(command: &mut Command) -> (KillOnDrop, mpsc::Receiver<String>) {
    let mut child = KillOnDrop(command.stdout(Stdio::piped()).spawn().unwrap());
    let lines = line_reader(&mut child.0);
    (child, lines)
}

/// Lines of a child's stdout, read on a thread.
pub(crate) fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub(crate) fn wait_for_line(rx: &mpsc::Receiver<String>, wanted: &str) {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line == wanted => return,
            Ok(_) => {}
            Err(e) => panic!("waiting for '{wanted}': {e}"),
        }
    }
}

fn uprobe_events() -> Option<String> {
    [
        "/sys/kernel/tracing/uprobe_events",
        "/sys/kernel/debug/tracing/uprobe_events",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
}

/// Kills the child on drop (a failed assertion must not leave the loop running).
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// See: issue #15, done means 3.
#[test]
fn interrupted_or_killed_kprof_leaves_nothing_behind() {
    let Some((dir, prog)) = usdt_fixture("probes-behind") else {
        return;
    };
    let spec = format!("usdt:{}:demo:guarded", prog.display());
    let before = uprobe_events();
    let _machine = shared();
    let (mut target, lines) = spawn_reading_lines(Command::new(&prog).arg("loop"));
    wait_for_line(&lines, "semaphore=0");
    let pid = target.0.id();
    for (signal, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGKILL, "SIGKILL"),
    ] {
        let data = dir.join(&format!("{name}.data"));
        let mut kprof = kprof()
            .args(["record", "-q", "-o", data.to_str().unwrap(), "-e", &spec])
            .args(["-p", &pid.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The semaphore is set while kprof probes ...
        wait_for_line(&lines, "semaphore=1");
        assert_eq!(send_signal(kprof.id(), signal), 0);
        let status = kprof.wait().unwrap();
        if signal != libc::SIGKILL {
            assert!(status.success(), "{name}: kprof finishes cleanly: {status}");
        }
        // ... and back to zero once it is gone, with the target still running.
        wait_for_line(&lines, "semaphore=0");
        assert!(
            target.0.try_wait().unwrap().is_none(),
            "{name}: the target runs on"
        );
        assert_eq!(
            uprobe_events(),
            before,
            "{name}: tracefs uprobe_events unchanged"
        );
    }
}

/// `kill -SIGNAL PID` (the tests use no `unsafe`).
pub(crate) fn send_signal(pid: u32, signal: i32) -> i32 {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    status.code().unwrap_or(-1)
}

/// Runs `kprof stat -e SPEC -- true` and returns its stderr, insisting on failure.
fn failing_probe(spec: &str) -> String {
    let out = kprof()
        .args(["stat", "-e", spec, "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{spec} should fail");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line for {spec}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

// See: issue #15, done means 4.
#[test]
fn bad_probe_input_gets_one_clear_line_each() {
    let dir = TempDir::new("probes-bad");
    let prog = calls_binary();
    let prog_s = prog.to_str().unwrap();
    let missing = failing_probe(&format!("u:{prog_s}:wrok"));
    assert!(missing.contains("no function 'wrok'"), "{missing}");
    assert!(missing.contains("close matches: work"), "{missing}");
    let stripped = dir.join("stripped");
    std::fs::copy(&prog, &stripped).unwrap();
    let status = Command::new("strip").arg(&stripped).status().unwrap();
    assert!(status.success());
    let err = failing_probe(&format!("u:{}:work", stripped.display()));
    assert!(err.contains("stripped"), "{err}");
    assert!(
        err.contains(&format!("u:{}:0xADDR", stripped.display())),
        "{err}"
    );
    let script = dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let err = failing_probe(&format!("u:{}:main", script.display()));
    assert!(err.contains("is not an ELF file"), "{err}");
    let err = failing_probe("u:libkprofnosuchlib:f");
    assert!(
        err.contains("library 'libkprofnosuchlib' not found"),
        "{err}"
    );
    let usdt = usdt_binary(&dir);
    let err = failing_probe(&format!("usdt:{}:nosuch:plain", usdt.display()));
    assert!(err.contains("no USDT probe nosuch:plain"), "{err}");
    assert!(
        err.contains("demo:guarded, demo:plain"),
        "lists what it has: {err}"
    );
    let err = failing_probe(&format!("usdt:{prog_s}:demo:plain"));
    assert!(err.contains("has no USDT probes"), "{err}");
    let err = failing_probe("u:main");
    assert!(
        err.contains("u:PATH:SYMBOL") || err.contains("no function"),
        "{err}"
    );
    if !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        let err = failing_probe("k:vfs_read");
        assert!(err.contains("no kprobe PMU"), "{err}");
        let err = failing_probe("kr:vfs_read");
        assert!(err.contains("CONFIG_KPROBE_EVENTS"), "{err}");
    }
}

// See: issue #15, point 6 (`kprof list u:PATH`, `kprof list usdt:PATH`).
#[test]
fn list_shows_functions_and_usdt_probes_as_nm_and_readelf_do() {
    if !tool("nm") || !tool("readelf") {
        return;
    }
    let dir = TempDir::new("probes-list");
    let prog = calls_binary();
    let prog_s = prog.to_str().unwrap();
    let listed = kprof_ok(&["list", &format!("u:{prog_s}")]);
    let nm = Command::new("nm")
        .args(["--defined-only", prog_s])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&nm.stdout).lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_, kind, name] = parts.as_slice() {
            if matches!(*kind, "T" | "t") {
                assert!(
                    listed.lines().any(|l| l == format!("u:{prog_s}:{name}")),
                    "{name} missing from {listed}"
                );
            }
        }
    }
    let only = kprof_ok(&["list", &format!("u:{prog_s}"), "wor*"]);
    assert_eq!(only.trim(), format!("u:{prog_s}:work"));
    let usdt = usdt_binary(&dir);
    let listed = kprof_ok(&["list", &format!("usdt:{}", usdt.display())]);
    let readelf = Command::new("readelf")
        .arg("-n")
        .arg(&usdt)
        .output()
        .unwrap();
    let readelf = String::from_utf8_lossy(&readelf.stdout);
    // readelf -n: "Provider: demo", "Name: plain", "Arguments: -4@%edi ...".
    let mut expected = Vec::new();
    let mut provider = "";
    let mut name = "";
    for line in readelf.lines().map(str::trim) {
        if let Some(p) = line.strip_prefix("Provider: ") {
            provider = p;
        } else if let Some(n) = line.strip_prefix("Name: ") {
            name = n;
        } else if let Some(a) = line.strip_prefix("Arguments: ") {
            expected.push((provider.to_owned(), name.to_owned(), a.to_owned()));
        }
    }
    assert_eq!(expected.len(), 2, "{readelf}");
    for (provider, name, args) in expected {
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("usdt:{}:{provider}:{name} ", usdt.display())))
            .unwrap_or_else(|| panic!("{provider}:{name} missing from {listed}"));
        assert!(line.contains(&format!("args: {args}")), "{line}");
        let guarded = name == "guarded";
        assert_eq!(line.contains("no semaphore"), !guarded, "{line}");
    }
}

/// Sets `kernel.perf_event_paranoid` and puts the old value back on drop.
struct Paranoid(String);

impl Paranoid {
    const PATH: &str = "/proc/sys/kernel/perf_event_paranoid";

    fn save() -> Option<Paranoid> {
        let old = std::fs::read_to_string(Self::PATH).ok()?;
        std::fs::write(Self::PATH, old.trim()).ok()?;
        Some(Paranoid(old.trim().to_owned()))
    }

    fn set(&self, level: i32) {
        std::fs::write(Self::PATH, level.to_string()).unwrap();
    }
}

impl Drop for Paranoid {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

// See: issue #15, done means 4 (permission rules, documented in README.md).
#[test]
fn unprivileged_users_need_cap_sys_admin_at_every_paranoid_level() {
    if !kprof_can_record() || !tool("setpriv") {
        return;
    }
    let dir = TempDir::new("probes-perm");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Everything the unprivileged user runs lies where it may read it.
    let prog = dir.join("probe_calls");
    std::fs::copy(calls_binary(), &prog).unwrap();
    let kprof_bin = dir.join("kprof");
    std::fs::copy(env!("CARGO_BIN_EXE_kprof"), &kprof_bin).unwrap();
    let machine = exclusive();
    let Some(paranoid) = Paranoid::save() else {
        assert!(
            std::env::var_os("KPROF_REQUIRE_PERF").is_none(),
            "cannot set perf_event_paranoid"
        );
        eprintln!("SKIP: cannot set kernel.perf_event_paranoid");
        return;
    };
    let run = |caps: Option<&str>| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
        if let Some(caps) = caps {
            cmd.args(["--inh-caps", caps, "--ambient-caps", caps]);
        }
        cmd.arg(&kprof_bin)
            .args(["stat", "-x", ",", "-e"])
            .arg(format!("u:{}:work", prog.display()))
            .arg("--")
            .arg(&prog)
            .args(["25", "0"])
            .output()
            .unwrap()
    };
    for level in [2, 1, 0, -1] {
        paranoid.set(level);
        for caps in [None, Some("+perfmon")] {
            let out = run(caps);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "paranoid {level}, caps {caps:?}: {stderr}"
            );
            assert!(
                stderr.contains("CAP_SYS_ADMIN"),
                "paranoid {level}: {stderr}"
            );
            let errors = stderr.lines().filter(|l| !l.starts_with("kprof: note:"));
            assert_eq!(errors.count(), 1, "one line: {stderr}");
        }
        let out = run(Some("+sys_admin"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "paranoid {level} with CAP_SYS_ADMIN: {stderr}"
        );
        assert!(stderr.lines().any(|l| l.starts_with("25,")), "{stderr}");
    }
    drop(paranoid);
    drop(machine);
}
