//! Statistics of trace events against bpftrace 0.17 and perf trace (issue #14, done-means 1):
//! the same values through bpftrace's maps and kprof's, printed text compared line for line.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use kprof::trace::agg::hist::LinearHist;
use kprof::trace::agg::key::{KeyPart, KeySpec};
use kprof::trace::agg::maps::{KeyedMaps, MapKind, ValueSource};

use crate::common;

/// The write sizes of the workload run, SIZE:N (every bucket edge of interest: 0, 1, 2, 3, 4,
/// 1023, 1024, 4095, 4096, 64K, 1M).
const WRITES: &str = "0:3,1:1,2:2,3:5,4:7,1023:11,1024:13,4095:2,4096:17,65536:4,1048576:1";

/// The values of a SIZE:N list, each repeated N times.
fn values(list: &str) -> Vec<i128> {
    list.split(',')
        .flat_map(|item| {
            let (size, n) = item.split_once(':').unwrap();
            let (size, n): (i128, usize) = (size.parse().unwrap(), n.parse().unwrap());
            std::iter::repeat_n(size, n)
        })
        .collect()
}

/// True when bpftrace is installed and may attach here (root); fails under KPROF_REQUIRE_TOOLS=1.
pub fn bpftrace_runs() -> bool {
    if !common::tool("bpftrace") {
        return false;
    }
    let ok = common::quietly_succeeds(Command::new("bpftrace").args(["-e", "BEGIN { exit(); }"]));
    common::available(
        "bpftrace attaching probes (root)",
        ok,
        "KPROF_REQUIRE_TOOLS",
    )
}

/// Runs `bpftrace -e PROGRAM -c CMD` and returns its standard output.
fn bpftrace_with_command(program: &str, cmd: &str) -> String {
    let _machine = common::shared();
    common::stdout_of(
        Command::new("bpftrace")
            .args(["-e", program, "-c", cmd])
            .stdin(Stdio::null()),
    )
}

/// bpftrace's printed maps by name (`@`, `@c`...), each the text of its lines (histogram rows
/// and the blank line after them included).
pub fn bpftrace_maps(output: &str) -> BTreeMap<String, String> {
    let mut maps: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        if line.starts_with("Attaching ") {
            continue;
        }
        if line.starts_with('@') {
            let end = line.find(['[', ':']).unwrap_or(line.len());
            current = Some(line[..end].to_string());
        }
        if let Some(name) = &current {
            let text = maps.entry(name.clone()).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    maps
}

/// kprof's text of one map fed `values` (all under `key`), renamed from `@` to `name`.
fn kprof_map(
    name: &str,
    kind: MapKind,
    keys: Vec<KeySpec>,
    key: Vec<KeyPart>,
    values: &[i128],
) -> String {
    let mut maps = KeyedMaps::new(keys, vec![kind]);
    for &v in values {
        maps.add(&key, &|_| Some(v));
    }
    let mut out = Vec::new();
    maps.print_text(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    format!("{name}{}", text.strip_prefix('@').unwrap())
}

/// The same write sizes through bpftrace's hist/lhist/count/sum and kprof's maps print the same
/// text, bucket for bucket and bar for bar (negative values included, through a shift by 2).
#[test]
fn maps_print_as_bpftrace_prints_them() {
    if !bpftrace_runs() {
        return;
    }
    let workload = common::c_workload("iosizes", &["-O2"]);
    let program = "tracepoint:syscalls:sys_enter_write /pid == cpid/ { \
        @ = hist(args->count); @l = lhist(args->count, 0, 4096, 512); \
        @c[comm] = count(); @s[comm] = sum(args->count); @n = hist((int64)args->count - 2); }";
    let cmd = format!("{} writes {WRITES}", workload.display());
    let theirs = bpftrace_maps(&bpftrace_with_command(program, &cmd));
    let sizes = values(WRITES);
    let shifted: Vec<i128> = sizes.iter().map(|v| v - 2).collect();
    let field = || ValueSource::Field("count".into());
    let comm = || vec![KeySpec::Comm];
    let comm_name = common::comm_of(&workload);
    let key = || vec![KeyPart::Str(comm_name.clone())];
    let ours = BTreeMap::from([
        (
            "@".to_string(),
            kprof_map("@", MapKind::Hist(field()), Vec::new(), Vec::new(), &sizes),
        ),
        (
            "@l".to_string(),
            kprof_map(
                "@l",
                MapKind::LinearHist(field(), LinearHist::new(0, 4096, 512).unwrap()),
                Vec::new(),
                Vec::new(),
                &sizes,
            ),
        ),
        (
            "@c".to_string(),
            kprof_map("@c", MapKind::Count, comm(), key(), &sizes),
        ),
        (
            "@s".to_string(),
            kprof_map("@s", MapKind::Sum(field()), comm(), key(), &sizes),
        ),
        (
            "@n".to_string(),
            kprof_map(
                "@n",
                MapKind::Hist(field()),
                Vec::new(),
                Vec::new(),
                &shifted,
            ),
        ),
    ]);
    for (name, text) in &ours {
        assert_eq!(
            theirs.get(name),
            Some(text),
            "map {name}: bpftrace printed\n{theirs:#?}"
        );
    }
    assert_eq!(theirs.len(), ours.len(), "{theirs:#?}");
}

/// The exit code that tells bpftrace the workload is done (`iosizes ... exit 77`).
const DONE: i32 = 77;

/// A copy of the iosizes workload under a name of its own (`TAG-PID`), so that its comm tells
/// its events apart from every other process, other tests' workloads included.
fn named_workload(dir: &common::TempDir, tag: &str) -> String {
    // bpftrace filters on the command name system-wide: this test process's pid in it keeps
    // out the same test of another suite running at the same time.
    let name = format!("{}-{}", &tag[..tag.len().min(7)], std::process::id());
    assert!(name.len() <= 15, "comm is cut to 15 bytes");
    let path = dir.join(&name);
    std::fs::copy(common::c_workload("iosizes", &["-O2"]), &path).unwrap();
    path.to_str().unwrap().to_string()
}

/// A fresh directory tagged `trace-TAG` holding the workload [`named_workload`] `TAG-PID`: both.
fn workload_dir(tag: &str) -> (common::TempDir, String) {
    let dir = common::TempDir::new(&format!("trace-{tag}"));
    let workload = named_workload(&dir, tag);
    (dir, workload)
}

/// [`workload_dir`], when bpftrace and kprof can both trace here; `None` (the test skips)
/// otherwise.
fn workload_beside_bpftrace(tag: &str) -> Option<(common::TempDir, String)> {
    (bpftrace_runs() && common::kprof_can_record()).then(|| workload_dir(tag))
}

/// One run of the workload `comm` (`iosizes ARGS exit 77`) seen by bpftrace and kprof at once:
/// bpftrace runs `probes` filtered to the comm (`$COMM` in them) and attaches first; then
/// `kprof trace KPROF_ARGS -- WORKLOAD ARGS exit 77` runs. Returns (kprof's stdout,
/// bpftrace's stdout).
fn same_run(kprof_args: &[&str], probes: &str, workload: &str, args: &[&str]) -> (String, String) {
    use std::io::{BufRead, BufReader, Read};
    let comm = std::path::Path::new(workload)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let program = format!(
        "BEGIN {{ printf(\"ready\\n\"); }} {} \
         tracepoint:syscalls:sys_enter_exit_group /comm == \"{comm}\" && args->error_code == {DONE}/ {{ exit(); }}",
        probes.replace("$COMM", &format!("\"{comm}\""))
    );
    let _machine = common::shared();
    let mut bpftrace = Command::new("bpftrace")
        .args(["-e", &program])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bpftrace runs");
    let mut reader = BufReader::new(bpftrace.stdout.take().unwrap());
    let mut theirs = String::new();
    // BEGIN fires once every probe is attached.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("bpftrace ended before attaching: {theirs}");
        }
        theirs.push_str(&line);
        if line == "ready\n" {
            break;
        }
    }
    let done = DONE.to_string();
    let mut command: Vec<&str> = vec!["trace"];
    command.extend_from_slice(kprof_args);
    command.push("--");
    command.push(workload);
    command.extend_from_slice(args);
    command.extend_from_slice(&["exit", &done]);
    let out = common::run_kprof(&command);
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    theirs.push_str(&rest);
    let _ = bpftrace.wait();
    assert_eq!(
        out.status.code(),
        Some(DONE),
        "kprof {command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8(out.stdout).unwrap(), theirs)
}

/// The (label, count) rows of a printed histogram.
fn hist_rows(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter(|l| l.starts_with('[') || l.starts_with('('))
        .map(|l| {
            let (label, rest) = l.split_at(16);
            let count = rest.split('|').next().unwrap().trim().parse().unwrap();
            (label.trim().to_string(), count)
        })
        .collect()
}

/// `--hist count` of the reads of a program reading known sizes: the same histogram as
/// bpftrace's `hist(args->count)` of the same run, and the sizes asked for are all there.
#[test]
fn hist_of_read_sizes_equals_bpftrace() {
    let Some((_dir, workload)) = workload_beside_bpftrace("hist") else {
        return;
    };
    let reads = "0:2,1:3,2:1,3:4,4:5,1023:6,1024:7,4096:9,65536:2";
    let (ours, theirs) = same_run(
        &["-e", "syscalls:sys_enter_read", "--hist", "count"],
        "tracepoint:syscalls:sys_enter_read /comm == $COMM/ { @ = hist(args->count); }",
        &workload,
        &["reads", reads],
    );
    let ours = bpftrace_maps(&ours);
    let theirs = bpftrace_maps(&theirs);
    assert_eq!(
        ours.get("@"),
        theirs.get("@"),
        "kprof:\n{ours:#?}\nbpftrace:\n{theirs:#?}"
    );
    // And the truth: at least the asked-for reads (the loader's own reads come on top).
    let rows = hist_rows(&ours["@"]);
    let count = |label: &str| rows.iter().find(|r| r.0 == label).map_or(0, |r| r.1);
    assert!(
        count("[0]") >= 2 && count("[1]") >= 3 && count("[2, 4)") >= 5,
        "{rows:?}"
    );
    assert!(count("[1K, 2K)") >= 7 && count("[4K, 8K)") >= 9 && count("[64K, 128K)") >= 2);
}

/// `--count --by comm` and `--sum bytes` of `block:block_rq_issue` while writing a file with
/// O_DIRECT: the same counts and byte sums as bpftrace's `count()` and `sum(args->bytes)`.
/// The file is written in the test's temp dir (this VM's virtio disk gives block events).
#[test]
fn block_issue_count_and_bytes_equal_bpftrace() {
    let Some((dir, workload)) = workload_beside_bpftrace("block") else {
        return;
    };
    let spec = format!("{}:4096:64", dir.join("direct.bin").display());
    let (ours, theirs) = same_run(
        &[
            "-e",
            "block:block_rq_issue",
            "--count",
            "--by",
            "comm",
            "--sum",
            "bytes",
        ],
        "tracepoint:block:block_rq_issue /comm == $COMM/ { @count[comm] = count(); @sum[comm] = sum(args->bytes); }",
        &workload,
        &["direct", &spec],
    );
    let ours = bpftrace_maps(&ours);
    let theirs = bpftrace_maps(&theirs);
    assert_eq!(
        ours.get("@count"),
        theirs.get("@count"),
        "kprof {ours:#?} bpftrace {theirs:#?}"
    );
    assert_eq!(ours.get("@sum"), theirs.get("@sum"));
    // The 64 direct writes of 4 KiB each were issued by the workload itself.
    let line = &ours["@count"];
    let n: u64 = line.trim().rsplit(": ").next().unwrap().parse().unwrap();
    assert!(n >= 64, "{line}");
    let bytes: u64 = ours["@sum"]
        .trim()
        .rsplit(": ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes >= 64 * 4096, "{bytes}");
}

/// `--latency` of reads that block for known times (a pipe whose writer sleeps 3, 6, 12 and 40
/// ms): the same bucket as bpftrace's `hist(nsecs - @start[tid])` for ≥ 95% of the reads, the
/// same number of reads, and every blocking read in a bucket at or above its sleep.
///
/// The two tools time each read microseconds apart, so a read may change bucket only when it
/// lasts within microseconds of a power of two: the loader's few reads of a microsecond or two
/// can, the blocking ones (far from an edge) next to never. The 40 reads of 6 ms (in [4M, 8M))
/// make the 95% allow three such reads, not one. See: issue #10 done-means 6.
#[test]
fn read_latency_matches_bpftrace() {
    let Some((_dir, workload)) = workload_beside_bpftrace("latency") else {
        return;
    };
    let (ours, theirs) = same_run(
        &[
            "--latency",
            "syscalls:sys_enter_read..syscalls:sys_exit_read",
        ],
        "tracepoint:syscalls:sys_enter_read /comm == $COMM/ { @start[tid] = nsecs; } \
         tracepoint:syscalls:sys_exit_read /comm == $COMM && @start[tid]/ { \
           @ = hist(nsecs - @start[tid]); delete(@start[tid]); } END { clear(@start); }",
        &workload,
        &["piped", "3:10,6:40,12:10,40:5"],
    );
    let ours_rows = hist_rows(&bpftrace_maps(&ours)["@"]);
    let theirs_rows = hist_rows(&bpftrace_maps(&theirs)["@"]);
    let total = |rows: &[(String, u64)]| rows.iter().map(|r| r.1).sum::<u64>();
    assert_eq!(
        total(&ours_rows),
        total(&theirs_rows),
        "kprof {ours}\nbpftrace {theirs}"
    );
    let same: u64 = ours_rows
        .iter()
        .map(|(label, n)| {
            let theirs = theirs_rows
                .iter()
                .find(|r| &r.0 == label)
                .map_or(0, |r| r.1);
            (*n).min(theirs)
        })
        .sum();
    assert!(
        same * 100 >= total(&ours_rows) * 95,
        "only {same} of {} reads in the same bucket:\nkprof {ours}\nbpftrace {theirs}",
        total(&ours_rows)
    );
    // Truth: 65 reads blocked ≥ 3 ms ([2M, 4M) or above), 55 of them ≥ 6 ms, 15 ≥ 12 ms, 5 ≥ 40 ms.
    let at_least = |rows: &[(String, u64)], from: &str| {
        let start = rows.iter().position(|r| r.0 == from).unwrap_or(rows.len());
        rows[start..].iter().map(|r| r.1).sum::<u64>()
    };
    assert!(at_least(&ours_rows, "[2M, 4M)") >= 65, "{ours}");
    assert!(at_least(&ours_rows, "[4M, 8M)") >= 55, "{ours}");
    assert!(at_least(&ours_rows, "[8M, 16M)") >= 15, "{ours}");
    assert!(at_least(&ours_rows, "[32M, 64M)") >= 5, "{ours}");
    assert!(ours.contains("@unmatched_ends: 0"), "{ours}");
}

/// One row of `perf trace -s` / `kprof trace --syscalls`: (calls, errors) of `syscall`.
fn syscall_row(table: &str, syscall: &str) -> Option<(u64, u64)> {
    table.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(syscall)).then(|| {
            let calls = words.next()?.parse().ok()?;
            let errors = words.next()?.parse().ok()?;
            Some((calls, errors))
        })?
    })
}

/// `--syscalls` counts the calls and errors `perf trace -s` counts on an identical run (but
/// for the events perf missed), and the program's known calls: 100 getppid, 37 failing opens,
/// 50 one-byte reads.
#[test]
fn syscall_summary_equals_perf_trace() {
    if !common::perf_can_record() || !common::kprof_can_record() {
        return;
    }
    let (_dir, workload) = workload_dir("syscalls");
    let args = [
        "getppid", "100", "fails", "37", "reads", "1:50", "writes", "7:20",
    ];
    let perf = {
        let _machine = common::shared();
        Command::new("perf")
            .args(["trace", "-s", "--"])
            .arg(&workload)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("perf trace runs")
    };
    let perf_text = format!(
        "{}{}",
        String::from_utf8_lossy(&perf.stdout),
        String::from_utf8_lossy(&perf.stderr)
    );
    let mut kprof_args = vec!["trace", "--syscalls", "--", &workload];
    kprof_args.extend_from_slice(&args);
    let ours = common::kprof_ok(&kprof_args);
    // perf trace drops an event now and then on a busy machine, with no word of it; its
    // summary counts the events it saw. A clean run sees two per call (entry and exit) of
    // kprof's count; each call perf is short of costs it at least one of them.
    let number_before = |text: &str, word: &str| -> i64 {
        text.lines()
            .find_map(|line| {
                let (before, _) = line.split_once(word)?;
                before.split_whitespace().last()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no `{word}` count in\n{text}"))
    };
    let perf_missed = 2 * number_before(&ours, " calls,") - number_before(&perf_text, " events,");
    let mut perf_short = 0;
    for syscall in ["getppid", "openat", "read", "write", "close", "mmap"] {
        let ((calls, errors), (perf_calls, perf_errors)) = (
            syscall_row(&ours, syscall).unwrap_or_default(),
            syscall_row(&perf_text, syscall).unwrap_or_default(),
        );
        assert!(
            perf_calls <= calls
                && perf_errors <= errors
                && calls - perf_calls >= errors - perf_errors,
            "{syscall}: kprof\n{ours}\nperf trace -s\n{perf_text}"
        );
        perf_short += (calls - perf_calls) as i64;
    }
    assert!(
        perf_short <= perf_missed.max(0),
        "perf trace -s is {perf_short} calls short but missed {perf_missed} events: kprof\n{ours}\n\
         perf trace -s\n{perf_text}"
    );
    assert_eq!(syscall_row(&ours, "getppid"), Some((100, 0)));
    let (opens, failed) = syscall_row(&ours, "openat").unwrap();
    assert!(failed >= 37 && opens >= failed + 2, "{ours}");
    assert!(syscall_row(&ours, "read").unwrap().0 >= 50, "{ours}");
    assert!(syscall_row(&ours, "write").unwrap().0 >= 20, "{ours}");
}
