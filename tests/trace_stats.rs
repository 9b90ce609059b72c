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
    let ok = Command::new("bpftrace")
        .args(["-e", "BEGIN { exit(); }"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    common::available(
        "bpftrace attaching probes (root)",
        ok,
        "KPROF_REQUIRE_TOOLS",
    )
}

/// Runs `bpftrace -e PROGRAM -c CMD` and returns its standard output.
fn bpftrace_with_command(program: &str, cmd: &str) -> String {
    let _machine = common::shared();
    let out = Command::new("bpftrace")
        .args(["-e", program, "-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("bpftrace runs");
    assert!(
        out.status.success(),
        "bpftrace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
    // The kernel's comm: the executable's name, cut to 15 bytes.
    let comm_name: String = workload
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .chars()
        .take(15)
        .collect();
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
