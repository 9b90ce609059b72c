//! Issue #2 point 1 and issue #10 point 1: kprof's report and folded stacks agree with Linux
//! perf on perf's own files.
//!
//! Each scenario records a workload with `/usr/bin/perf record` at test time, then compares
//! `kprof report --no-children --sort sym` with `perf report --no-children --sort dso,sym
//! --stdio` summed per symbol (each of perf's top 20 symbols within 0.5 percentage points), and
//! `kprof flame --folded --no-inline` with `perf script | inferno-collapse-perf` (inferno's
//! collapse library, same total, ≥ 98% of the weight on identical stacks).
//!
//! The scenarios of issue #10 are the files perf users actually have: a Rust release build with
//! identical code folded (two names, one address), a program calling a stripped distribution
//! library through its PLT, and a parallel build (many short-lived processes, fork and exec).

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// perf's `--sort dso,sym` rows of every event, as (event, [(symbol key, percent)]).
///
/// The shared-object column only serves to name the PLT stubs perf leaves unnamed (see
/// [`PltStubs`]); summing the rows per symbol key gives `--sort sym`'s figures, since perf's
/// symbol sort keeps symbols of different objects apart too.
fn perf_report_rows(file: &Path, stubs: &PltStubs) -> Vec<(String, Vec<(String, f64)>)> {
    let text = perf_report_table(
        file,
        "dso,sym",
        &[
            "--no-children",
            "--percent-limit",
            "0",
            "--force",
            "--field-separator",
            "\t",
        ],
    );
    let mut events: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# Samples: ") {
            let name = rest.split('\'').nth(1).unwrap_or("").to_string();
            events.push((name, Vec::new()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        // `percent% \t object \t [.] name`, the first two padded with spaces.
        let mut fields = line.splitn(3, '\t');
        let (Some(percent), Some(dso), Some(sym)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(percent) = percent.trim().trim_end_matches('%').parse::<f64>() else {
            continue;
        };
        let sym = sym.trim_end();
        let kind = sym.chars().nth(1).unwrap_or('.');
        let name = sym.get(3..).unwrap_or("").trim();
        let name = stubs.report_name(dso.trim(), name).unwrap_or(name);
        if let Some((_, rows)) = events.last_mut() {
            rows.push((symbol_key(kind, name), percent));
        }
    }
    events
}

/// The PLT stubs perf leaves unnamed, named by objdump.
///
/// perf 6.1 (the oracle here) names the entries of `.plt` (`malloc@plt`) but not those of
/// `.plt.sec`, the PLT that `-z ibtplt` (CET) binaries call through: it prints their address
/// (`[.] 0x1160`, `[unknown]` in `perf script`). Some `.plt` entries it names `@plt`, with no
/// function (libc's `__tunable_get_val@plt`, met when a page fault lands in it while the loader
/// starts libc). objdump names each stub `func@plt`. The oracle takes objdump's name for
/// exactly the frames perf left unnamed that fall in a PLT section, so a true name from kprof
/// passes and a wrong one (the preceding `_init`, an address) still fails.
#[derive(Default)]
struct PltStubs {
    /// Per module path, its stubs.
    modules: Vec<(PathBuf, Vec<StubAt>)>,
    /// Per module file name, the stubs perf named `@plt` in the script, by objdump's names.
    nameless: HashMap<String, Vec<String>>,
}

/// A stub's file offsets and name.
type StubAt = (Range<u64>, String);

impl PltStubs {
    /// Reads the PLT sections of every module that has an unnamed frame in `script`.
    fn for_unnamed_frames(script: &str) -> PltStubs {
        let mut paths: Vec<PathBuf> = script
            .lines()
            .filter_map(unnamed_frame)
            .map(|(_, path, _)| PathBuf::from(path))
            .filter(|path| path.is_absolute() && path.is_file())
            .collect();
        paths.sort();
        paths.dedup();
        let modules = paths
            .into_iter()
            .map(|path| {
                let sections = section_headers(&path);
                let stubs: Vec<_> = objdump_plt_stubs(&path)
                    .into_iter()
                    .map(|stub| {
                        let section = sections[&stub.section];
                        let offset = |address: u64| address - section.address + section.offset;
                        (offset(stub.address)..offset(stub.end), stub.name)
                    })
                    .collect();
                (path, stubs)
            })
            .filter(|(_, stubs)| !stubs.is_empty())
            .collect();
        let mut stubs = PltStubs {
            modules,
            nameless: HashMap::new(),
        };
        for (offset, path, token) in script.lines().filter_map(unnamed_frame) {
            let Some(file_name) = Path::new(path).file_name() else {
                continue;
            };
            if token != "@plt" {
                continue;
            }
            if let Some(name) = stubs.lookup(|p| p == Path::new(path), offset) {
                let name = name.to_string();
                let names = stubs
                    .nameless
                    .entry(file_name.to_string_lossy().into_owned())
                    .or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        stubs
    }

    fn lookup(&self, module: impl Fn(&Path) -> bool, offset: u64) -> Option<&str> {
        self.modules
            .iter()
            .filter(|(path, _)| module(path))
            .flat_map(|(_, stubs)| stubs)
            .find(|(offsets, _)| offsets.contains(&offset))
            .map(|(_, name)| name.as_str())
    }

    /// The stub name for perf's report row `name` (`0x1160`, or `@plt` when the script's
    /// `@plt` frames of `dso` are all one stub) of the object `dso` (a file name).
    fn report_name(&self, dso: &str, name: &str) -> Option<&str> {
        if name == "@plt" {
            return match self.nameless.get(dso).map(Vec::as_slice) {
                Some([only]) => Some(only.as_str()),
                _ => None,
            };
        }
        let offset = u64::from_str_radix(name.strip_prefix("0x")?, 16).ok()?;
        self.lookup(|path| path.file_name().is_some_and(|f| f == dso), offset)
    }

    /// `script` with each unnamed frame in a PLT stub named.
    fn name_script_frames(&self, script: &str) -> String {
        let mut out = String::with_capacity(script.len());
        for line in script.lines() {
            let named = unnamed_frame(line).and_then(|(offset, path, token)| {
                self.lookup(|p| p == Path::new(path), offset)
                    .map(|name| line.replacen(token, name, 1))
            });
            out.push_str(named.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }
}

/// A `perf script` frame line perf could not name, `\t    1160 [unknown] (/path/module)` or
/// `\t    262c4 @plt (/path/module)`: its module-relative address (a file offset), module path
/// and what perf printed for a name.
fn unnamed_frame(line: &str) -> Option<(u64, &str, &'static str)> {
    if !line.starts_with(char::is_whitespace) {
        return None;
    }
    let (address, rest) = line.trim_start().split_once(' ')?;
    let (token, path) = ["[unknown]", "@plt"].into_iter().find_map(|token| {
        let path = rest
            .strip_prefix(token)?
            .strip_prefix(" (")?
            .strip_suffix(')')?;
        Some((token, path))
    })?;
    Some((u64::from_str_radix(address, 16).ok()?, path, token))
}

/// perf report's event count (`Event count (approx.)`, the exact sum of periods) of every
/// event, by the event's name as perf prints it.
pub(crate) fn perf_event_counts(file: &Path) -> Vec<(String, u64)> {
    let text = perf_report_table(file, "sym", &["--force"]);
    let mut counts = Vec::new();
    let mut event = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# Samples: ") {
            event = rest.split('\'').nth(1).map(str::to_string);
        } else if let Some(count) = line.strip_prefix("# Event count (approx.): ") {
            if let Some(name) = event.take() {
                counts.push((name, count.trim().parse().unwrap()));
            }
        }
    }
    counts
}

/// perf report's event count of `event`, named in full or by its part before `:` or `/`.
pub(crate) fn perf_event_count(file: &Path, event: &str) -> u64 {
    let counts = perf_event_counts(file);
    counts
        .iter()
        .find(|(name, _)| name == event || name.split([':', '/']).next() == Some(event))
        .unwrap_or_else(|| panic!("perf report has no event {event}: {counts:?}"))
        .1
}

/// A symbol as a comparable key: perf's `[.] 0x00000000000011a9` and kprof's `hot+0x11a9`
/// both become `[.] @0x11a9` (unresolved addresses), names stay names.
fn symbol_key(kind: char, name: &str) -> String {
    let hex = if let Some(h) = name.strip_prefix("0x") {
        Some(h)
    } else {
        name.rsplit_once("+0x").map(|(_, h)| h)
    };
    if let Some(value) = hex.and_then(|h| u64::from_str_radix(h, 16).ok()) {
        return format!("[{kind}] @{value:#x}");
    }
    format!("[{kind}] {name}")
}

fn kprof_report_rows(file: &Path, event: &str) -> HashMap<String, f64> {
    let value = symbol_report_json(file, &["--event", event]);
    let events = value["events"].as_array().expect("events array");
    let event = events
        .iter()
        .find(|e| e["name"] == event)
        .unwrap_or_else(|| panic!("event {event} in {value}"));
    let mut rows = HashMap::new();
    for row in event["rows"].as_array().expect("rows") {
        let kind = if row["kind"] == "kernel" { 'k' } else { '.' };
        let sym = row["sym"].as_str().unwrap();
        *rows.entry(symbol_key(kind, sym)).or_insert(0.0) += row["self"].as_f64().unwrap();
    }
    rows
}

/// Checks perf's top 20 symbols of every event against kprof's report; a failure lists every
/// symbol of the 20 that is off.
fn compare_reports(file: &Path, stubs: &PltStubs) -> Result<(), String> {
    let perf_events = perf_report_rows(file, stubs);
    assert!(!perf_events.is_empty(), "perf report printed no events");
    for (event, perf_rows) in perf_events {
        let kprof_rows = kprof_report_rows(file, &event);
        let mut perf_keyed: HashMap<String, f64> = HashMap::new();
        let mut order = Vec::new();
        for (key, percent) in perf_rows {
            if !perf_keyed.contains_key(&key) {
                order.push(key.clone());
            }
            *perf_keyed.entry(key).or_insert(0.0) += percent;
        }
        order.sort_by(|a, b| perf_keyed[b].total_cmp(&perf_keyed[a]));
        let off: Vec<String> = order
            .iter()
            .take(20)
            .filter_map(|key| {
                let want = perf_keyed[key];
                let got = kprof_rows.get(key).copied().unwrap_or(0.0);
                ((want - got).abs() > 0.5)
                    .then(|| format!("{key}: perf {want:.2}% vs kprof {got:.2}%"))
            })
            .collect();
        if !off.is_empty() {
            let mut kprof_top: Vec<_> = kprof_rows.iter().collect();
            kprof_top.sort_by(|a, b| b.1.total_cmp(a.1));
            let kprof_top: Vec<String> = kprof_top
                .iter()
                .take(25)
                .map(|(key, percent)| format!("{percent:6.2}% {key}"))
                .collect();
            return Err(format!(
                "{}: event {event}: {} of perf's top 20 symbols differ by more than 0.5 pp:\n  {}\n\
                 kprof's top 25:\n  {}",
                file.display(),
                off.len(),
                off.join("\n  "),
                kprof_top.join("\n  ")
            ));
        }
    }
    Ok(())
}

/// inferno's collapse of `perf script` for `event`: the reference folded stacks.
fn oracle_folded(script: &str, event: &str) -> HashMap<String, u64> {
    parse_folded(&inferno_collapse(script, Some(event)), false)
}

fn parse_folded(text: &str, kprof_side: bool) -> HashMap<String, u64> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("folded line");
        let stack = normalize_stack(stack, kprof_side);
        // inferno drops samples it cannot parse: a thread id of -1 (tasks being reaped),
        // and stacks left empty after it drops frames that start with `(`.
        if kprof_side && (stack.starts_with(":-1;") || !stack.contains(';')) {
            continue;
        }
        *map.entry(stack).or_insert(0) += count.parse::<u64>().unwrap();
    }
    map
}

/// Makes the two sides' spellings comparable; the stacks themselves are left alone.
/// - An unresolved frame is `[?]`: kprof writes `module+0xoffset`, inferno `[module]` or
///   `[unknown]`, and it garbles module paths that contain spaces (`/memfd:x (deleted)`).
/// - inferno drops frames that begin with `(` (it takes them for process names), e.g.
///   `(anonymous namespace)::f`, and cuts names at their first `(`; kprof's side gets the same.
fn normalize_stack(stack: &str, kprof_side: bool) -> String {
    stack
        .split(';')
        .filter(|frame| !(kprof_side && frame.starts_with('(')))
        .map(|frame| {
            let unresolved = match frame.rsplit_once("+0x") {
                Some((_, hex)) => kprof_side && hex.chars().all(|c| c.is_ascii_hexdigit()),
                None => frame.trim_end().starts_with('[') && frame.trim_end().ends_with(']'),
            };
            if unresolved {
                "[?]"
            } else if kprof_side {
                cut_at_parameters(frame)
            } else {
                frame
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// inferno's cut: the name up to its first `(` outside `<>`, `[]` and `{}`.
fn cut_at_parameters(name: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in name.char_indices() {
        match c {
            '<' | '[' | '{' => depth += 1,
            '>' | ']' | '}' => depth = depth.saturating_sub(1),
            '(' if depth == 0 && i > 0 => return name[..i].trim_end(),
            _ => {}
        }
    }
    name
}

/// Checks kprof's folded stacks against the oracle for `event`: every sample in the total,
/// which is perf report's event count (see: issue #10 point 7; inferno drops the samples that
/// perf script prints without a stack, so its total can be lower), and ≥ 98% of the weight
/// on stacks identical to inferno's.
fn compare_folded(file: &Path, event: &str, script: &str) -> Result<(), String> {
    let oracle = oracle_folded(script, event);
    let folded = kprof_ok(&[
        "flame",
        "-i",
        file.to_str().unwrap(),
        "--folded",
        "--no-inline",
        "--event",
        event,
    ]);
    let total_folded: u64 = folded
        .lines()
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    let perf_total = perf_event_count(file, event);
    if total_folded != perf_total {
        return Err(format!(
            "{}: the folded total of {event} {total_folded} is not perf report's event count {perf_total}",
            file.display()
        ));
    }
    let ours = parse_folded(&folded, true);
    let total_oracle: u64 = oracle.values().sum();
    let same: u64 = oracle
        .iter()
        .map(|(stack, &count)| count.min(ours.get(stack).copied().unwrap_or(0)))
        .sum();
    let share = same as f64 / total_oracle.max(1) as f64;
    // The heaviest weight each side has on stacks the other lacks (or has less of).
    let surplus = |a: &HashMap<String, u64>, b: &HashMap<String, u64>| {
        let mut more: Vec<(u64, &String)> = a
            .iter()
            .filter_map(|(stack, &count)| {
                let other = b.get(stack).copied().unwrap_or(0);
                (count > other).then(|| (count - other, stack))
            })
            .collect();
        more.sort_by(|x, y| y.cmp(x));
        more.truncate(12);
        more.iter()
            .map(|(count, stack)| format!("{count} {stack}"))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    let mut message = format!(
        "{}: event {event}: {:.2}% of {total_oracle} on identical stacks",
        file.display(),
        share * 100.0
    );
    if same < total_oracle {
        message += &format!(
            "\noracle-only:\n  {}\nkprof-only:\n  {}",
            surplus(&oracle, &ours),
            surplus(&ours, &oracle)
        );
    }
    // Shown with `--nocapture`: what differs even when the test passes.
    eprintln!("{message}");
    if share < 0.98 {
        return Err(format!("below 98%: {message}"));
    }
    Ok(())
}

/// Records `cmd` with `perf record ARGS` into a fresh file and checks kprof against perf on it.
fn record_and_check(tag: &str, perf_args: &[&str], cmd: &[&str], events: &[&str]) {
    let Recording {
        dir: _dir, file, ..
    } = Recording::by_perf(tag, "perf.data", perf_args, cmd);
    check(&file, events);
}

/// [`compare_folded`] on its own, panicking on a difference (for other test modules).
pub(crate) fn check_folded(file: &Path, event: &str) {
    let script = perf_script(file, "comm,tid,time,period,event,ip,sym,dso");
    let stubs = PltStubs::for_unnamed_frames(&script);
    let script = stubs.name_script_frames(&script);
    if let Err(failure) = compare_folded(file, event, &script) {
        panic!("{failure}");
    }
}

/// Runs every comparison on `file`: the report of each event, the folded stacks of `events`;
/// a failure reports every comparison that failed.
fn check(file: &Path, events: &[&str]) {
    let script = perf_script(file, "comm,tid,time,period,event,ip,sym,dso");
    let stubs = PltStubs::for_unnamed_frames(&script);
    let mut failures: Vec<String> = compare_reports(file, &stubs).err().into_iter().collect();
    let script = stubs.name_script_frames(&script);
    for event in events {
        failures.extend(compare_folded(file, event, &script).err());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// The oracle's own reading of perf's `@plt` frames (see [`PltStubs`]), on this machine's libc.
#[test]
fn perfs_nameless_plt_frames_take_objdumps_names() {
    let libc = Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6");
    if !libc.is_file() {
        return;
    }
    let sections = section_headers(libc);
    let stubs = objdump_plt_stubs(libc);
    // A frame inside a stub, as `perf script` prints it when it names the stub `@plt`.
    let frame = |stub: &PltStub| {
        let section = sections[&stub.section];
        let offset = stub.address - section.address + section.offset + 4;
        format!("\t    {offset:x} @plt ({})\n", libc.display())
    };
    let (Some(first), Some(last)) = (stubs.first(), stubs.last()) else {
        panic!("libc has no PLT stub");
    };
    assert_ne!(first.name, last.name);
    let script = format!(
        "busy 7 1.0: 1 page-faults:\n{}\t    1234 main (/bin/busy)\n",
        frame(last)
    );
    let oracle = PltStubs::for_unnamed_frames(&script);
    assert_eq!(
        oracle.name_script_frames(&script),
        script.replacen(" @plt ", &format!(" {} ", last.name), 1)
    );
    assert_eq!(
        oracle.report_name("libc.so.6", "@plt"),
        Some(last.name.as_str())
    );
    // perf's report row `@plt` of two different stubs is not named after either.
    let both = format!("{script}{}", frame(first));
    assert_eq!(
        PltStubs::for_unnamed_frames(&both).report_name("libc.so.6", "@plt"),
        None
    );
}

/// [`record_and_check`] of `hot SECONDS` (with frame pointers); skips where perf cannot record.
fn record_hot_and_check(tag: &str, perf_args: &[&str], seconds: &str, events: &[&str]) {
    let Some(hot) = hot_to_record(Recorder::Perf, FramePointers::Kept) else {
        return;
    };
    record_and_check(tag, perf_args, &[hot.to_str().unwrap(), seconds], events);
}

#[test]
fn c_workload_fp_callchains() {
    record_hot_and_check("oracle-c", &["-F", "999", "-g"], "1", &["cpu-clock"]);
}

/// [`record_and_check`] of `busy SECONDS` ([`rust_workload`]), when perf can record here.
fn record_busy_and_check(tag: &str, perf_args: &[&str], seconds: &str, events: &[&str]) {
    if !perf_can_record() {
        return;
    }
    let busy = rust_workload();
    record_and_check(tag, perf_args, &[busy.to_str().unwrap(), seconds], events);
}

#[test]
fn rust_workload_fp_callchains() {
    record_busy_and_check("oracle-rust", &["-F", "999", "-g"], "1", &["cpu-clock"]);
}

#[test]
fn system_wide() {
    record_hot_and_check(
        "oracle-sys",
        &["-F", "999", "-a", "-g"],
        "1",
        &["cpu-clock"],
    );
}

#[test]
fn two_software_events() {
    record_busy_and_check(
        "oracle-two",
        &["-e", "cpu-clock,page-faults", "-g"],
        "0.5",
        &["cpu-clock", "page-faults"],
    );
}

#[test]
fn sched_switch_tracepoint_system_wide() {
    if !perf_can_record() {
        return;
    }
    record_and_check(
        "oracle-sched",
        &["-e", "sched:sched_switch", "-a", "-g"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.02; done",
        ],
        &["sched:sched_switch"],
    );
}

#[test]
fn compressed_file() {
    record_hot_and_check(
        "oracle-z",
        &["-F", "999", "-g", "-z"],
        "0.5",
        &["cpu-clock"],
    );
}

#[test]
fn pipe_mode_file_and_stdin() {
    let Some(hot) = hot_to_record(Recorder::Perf, FramePointers::Kept) else {
        return;
    };
    let (_dir, file) = TempDir::with_file("oracle-pipe", "pipe.data");
    succeeded(std::process::Command::new("sh").arg("-c").arg(format!(
        "perf record --no-bpf-event -F 999 -g -o - -- {} 0.5 > {}",
        hot.display(),
        file.display()
    )));
    check(&file, &["cpu-clock"]);
    // The same bytes through standard input give the same folded stacks.
    let from_file = kprof_ok(&["flame", "-i", file.to_str().unwrap(), "--folded"]);
    let from_stdin = kprof()
        .args(["flame", "-i", "-", "--folded"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(from_stdin.status.success());
    assert_eq!(String::from_utf8(from_stdin.stdout).unwrap(), from_file);
}

#[test]
fn kprof_script_reads_in_inferno_collapse_perf() {
    let Some(Recording {
        dir: _dir, file, ..
    }) = Recording::of_hot(
        Recorder::Perf,
        "script-inferno",
        "hot.data",
        FramePointers::Kept,
        &["-F", "999", "-g"],
        "0.5",
    )
    else {
        return;
    };
    let path = file.to_str().unwrap();
    let script = kprof_ok(&["script", "--no-inline", "-i", path]);
    let collapsed = parse_folded(&inferno_collapse(&script, None), false);
    // inferno drops a sample without frames; kprof's flame graph keeps it under its root alone.
    let flame = kprof_ok(&["flame", "--folded", "--no-inline", "-i", path]);
    let with_frames: String = flame
        .lines()
        .filter(|line| line.rsplit_once(' ').unwrap().0.contains(';'))
        .map(|line| format!("{line}\n"))
        .collect();
    let folded = parse_folded(&with_frames, false);
    assert!(!folded.is_empty());
    assert_eq!(
        collapsed, folded,
        "kprof script | inferno-collapse-perf == kprof flame --folded"
    );
}

/// The addresses `nm --demangle` gives each defined function symbol of `binary`.
fn function_addresses(binary: &Path) -> HashMap<String, Vec<u64>> {
    let out = Command::new("nm")
        .arg("--demangle")
        .arg(binary)
        .output()
        .expect("nm runs");
    assert!(out.status.success(), "nm {}", binary.display());
    let mut addresses: HashMap<String, Vec<u64>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `0000000000014b30 T mix_left`
        let mut fields = line.splitn(3, ' ');
        let (Some(address), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if let (Ok(address), true) = (u64::from_str_radix(address, 16), kind == "T" || kind == "t")
        {
            addresses.entry(name.to_string()).or_default().push(address);
        }
    }
    addresses
}

// See: issue #10 point 1 (a Rust release program with folded identical functions).
#[test]
fn rust_release_identical_code_folded() {
    if !perf_can_record() {
        return;
    }
    let icf = rustc_workload(
        "icf",
        &["-C", "opt-level=3", "-C", "force-frame-pointers=yes"],
    );
    // The hot code is what the scenario claims: each pair is one body with two names.
    let addresses = function_addresses(&icf);
    for pair in [
        ["mix_left", "mix_right"],
        [
            "<u64 as core::fmt::Display>::fmt",
            "<usize as core::fmt::Display>::fmt",
        ],
    ] {
        let [a, b] = pair.map(|name| {
            addresses
                .get(name)
                .unwrap_or_else(|| panic!("{name} in {}", icf.display()))
        });
        assert!(
            a.iter().any(|x| b.contains(x)),
            "{pair:?} were not folded into one address: {a:x?} {b:x?}"
        );
    }
    record_and_check(
        "oracle-icf",
        &["-F", "999", "-g"],
        &[icf.to_str().unwrap()],
        &["cpu-clock"],
    );
}

/// True when C programs can be built against SQLite here (`libsqlite3-dev`).
fn sqlite_available() -> bool {
    let ok = Command::new("sh")
        .args([
            "-c",
            "echo '#include <sqlite3.h>' | cc -E -x c - >/dev/null 2>&1 \
             && [ \"$(cc -print-file-name=libsqlite3.so)\" != libsqlite3.so ]",
        ])
        .status()
        .is_ok_and(|s| s.success());
    available(
        "SQLite development files (libsqlite3-dev)",
        ok,
        "KPROF_REQUIRE_TOOLS",
    )
}

// See: issue #10 point 1 (a program calling a stripped distribution library through its PLT).
#[test]
fn stripped_library_through_plt() {
    if !perf_can_record() || !sqlite_available() {
        return;
    }
    let query = c_workload_linked(
        "query",
        &[
            "-O2",
            "-g",
            "-fno-omit-frame-pointer",
            "-fcf-protection",
            "-Wl,-z,ibtplt",
        ],
        &["-lsqlite3"],
    );
    // The scenario is what it claims: calls leave through `.plt.sec`, into a library that has
    // dynamic symbols only.
    assert!(section_headers(&query).contains_key(".plt.sec"));
    let library = Command::new("cc")
        .arg("-print-file-name=libsqlite3.so")
        .output()
        .expect("cc runs");
    let library = std::fs::canonicalize(String::from_utf8_lossy(&library.stdout).trim())
        .expect("libsqlite3.so resolves");
    let sections = section_headers(&library);
    assert!(
        sections.contains_key(".plt") && !sections.contains_key(".symtab"),
        "{} should be a stripped library with a PLT: {:?}",
        library.display(),
        sections.keys()
    );
    record_and_check(
        "oracle-plt",
        &["-F", "999", "-g"],
        &[query.to_str().unwrap()],
        &["cpu-clock"],
    );
}

/// One compilation unit of the parallel build: some parsing, sorting and formatting.
const BUILD_UNIT: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct record { int key; double value; char name[32]; };
static int by_key(const void *a, const void *b) {
    const struct record *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}
int UNIT(int n) {
    struct record records[64];
    for (int i = 0; i < 64; i++) {
        records[i].key = (i * 37 + n) % 64;
        records[i].value = i * 0.5;
        snprintf(records[i].name, sizeof records[i].name, "r%d", i);
    }
    qsort(records, 64, sizeof records[0], by_key);
    int sum = 0;
    for (int i = 0; i < 64; i++) sum += records[i].key * (int)strlen(records[i].name);
    return sum;
}
"#;

/// Writes a C project of `units` files, a `main.c` and a Makefile into `dir`.
fn write_build_project(dir: &Path, units: usize) {
    let names: Vec<String> = (0..units).map(|i| format!("unit{i}")).collect();
    for name in &names {
        std::fs::write(
            dir.join(format!("{name}.c")),
            BUILD_UNIT.replace("UNIT", name),
        )
        .unwrap();
    }
    let declarations: String = names.iter().map(|n| format!("int {n}(int);\n")).collect();
    let calls: String = names.iter().map(|n| format!(" + {n}(1)")).collect();
    std::fs::write(
        dir.join("main.c"),
        format!(
            "#include <stdio.h>\n{declarations}int main(void) {{ printf(\"%d\\n\", 0{calls}); return 0; }}\n"
        ),
    )
    .unwrap();
    let objects: String = names.iter().map(|n| format!(" {n}.o")).collect();
    std::fs::write(
        dir.join("Makefile"),
        format!("prog: main.o{objects}\n\t$(CC) -o $@ $^\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n"),
    )
    .unwrap();
}

// See: issue #10 point 1 (a multi-process build: fork, exec, short-lived processes).
#[test]
fn parallel_build_many_processes() {
    if !perf_can_record() || !tool("make") || !tool("cc") {
        return;
    }
    let dir = TempDir::new("oracle-make");
    let project = dir.join("project");
    std::fs::create_dir(&project).unwrap();
    let units = 8;
    write_build_project(&project, units);
    let file = dir.join("perf.data");
    perf_record(
        &file,
        &["-F", "999", "-g"],
        &["make", "-s", "-j2", "-C", project.to_str().unwrap()],
    );
    assert!(project.join("prog").exists(), "the build ran");
    // The recording is what the scenario claims: many compiler processes, each forked and
    // exec'd. Each `cc1 -O2` here runs for tens of milliseconds of CPU (about 50 samples at
    // 999 a second), so all of the units + 1 show up, far more than half.
    let script = perf(&["script", "-i", file.to_str().unwrap(), "-F", "comm,pid"]);
    let mut compilers: Vec<&str> = script
        .lines()
        .filter_map(|line| line.trim().strip_prefix("cc1 "))
        .map(str::trim)
        .collect();
    compilers.sort();
    compilers.dedup();
    assert!(
        compilers.len() > units / 2,
        "samples from {} cc1 processes: {compilers:?}",
        compilers.len()
    );
    check(&file, &["cpu-clock"]);
}

/// A sample taken inside `execve` still has the old image's user registers: the kernel maps
/// the new image and only then points the registers at its entry. So its user frame is named
/// from the replaced image, also after the new image's first mappings, as perf names it; once
/// the new image runs (a user-mode sample), the old image names nothing any more.
/// The file is synthetic, the truth is `nm`'s address of `heavy` in the old image.
// See: issue #10 point 1 (parallel_build_many_processes found `as;__GI___execve;…` unnamed).
#[test]
fn frames_inside_execve_are_named_from_the_replaced_image() {
    use kprof_perfdata::Endian;
    use kprof_perfdata::kinds::{attr_flag, misc, record, sample};
    use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};

    if !tool("cc") || !tool("nm") || !tool("readelf") {
        return;
    }
    let hot = hot(FramePointers::Kept);
    let heavy = function_addresses(&hot)["heavy"][0];
    let text = section_headers(&hot)[".text"];
    let heavy_offset = heavy - text.address + text.offset;
    const OLD: u64 = 0x5555_0000_0000;
    const NEW: u64 = 0x6666_0000_0000;
    use kprof_perfdata::kinds::context::{KERNEL as CONTEXT_KERNEL, USER as CONTEXT_USER};
    const PID: u32 = 100;
    let (kernel_mode, user_mode) = (1, 2);

    let mut r = RecordBuilder::new(Endian::Little);
    let trailer = |b: &mut RecordBuilder, time: u64| {
        b.u32(PID).u32(PID).u64(time);
    };
    let mmap = |r: &mut RecordBuilder, start: u64, len: u64, path: &[u8], time: u64| {
        r.record(record::MMAP, user_mode, |b| {
            b.u32(PID).u32(PID).u64(start).u64(len).u64(0).cstr(path);
            trailer(b, time);
        });
    };
    let sample = |r: &mut RecordBuilder, mode: u16, chain: &[u64], time: u64| {
        r.record(record::SAMPLE, mode, |b| {
            b.u64(chain[1]).u32(PID).u32(PID).u64(time).u64(1);
            b.u64(chain.len() as u64);
            for &address in chain {
                b.u64(address);
            }
        });
    };
    r.record(record::COMM, 0, |b| {
        b.u32(PID).u32(PID).cstr(b"parent");
        trailer(b, 1);
    });
    let len = std::fs::metadata(&hot).unwrap().len();
    mmap(&mut r, OLD, len, hot.to_str().unwrap().as_bytes(), 2);
    r.record(record::COMM, misc::COMM_EXEC, |b| {
        b.u32(PID).u32(PID).cstr(b"child");
        trailer(b, 3);
    });
    mmap(&mut r, NEW, 0x1000, b"/nonexistent/new-image", 4);
    let inside_execve = [
        CONTEXT_KERNEL,
        0xffff_ffff_8100_0000,
        CONTEXT_USER,
        OLD + heavy_offset + 4,
    ];
    sample(&mut r, kernel_mode, &inside_execve, 5);
    sample(&mut r, user_mode, &[CONTEXT_USER, NEW + 0x10], 6);
    // The same registers after the new image ran are not the old image's any more.
    sample(&mut r, kernel_mode, &inside_execve, 7);
    let spec = AttrSpec {
        sample_period_or_freq: 1,
        sample_type: sample::IP | sample::TID | sample::TIME | sample::PERIOD | sample::CALLCHAIN,
        flags: attr_flag::SAMPLE_ID_ALL | attr_flag::MMAP | attr_flag::COMM,
        ..AttrSpec::default()
    };
    let (_dir, file) = TempDir::with_file("execve", "execve.data");
    std::fs::write(
        &file,
        FileBuilder::new(Endian::Little)
            .attr(spec, &[1])
            .records(&r.into_bytes())
            .build_file(),
    )
    .unwrap();
    let folded = parse_folded(
        &kprof_ok(&[
            "flame",
            "-i",
            file.to_str().unwrap(),
            "--folded",
            "--no-inline",
        ]),
        false,
    );
    let weight = |pred: &dyn Fn(&str) -> bool| -> u64 {
        folded.iter().filter(|(s, _)| pred(s)).map(|(_, w)| w).sum()
    };
    assert_eq!(weight(&|_| true), 3, "{folded:?}");
    assert_eq!(
        weight(&|s| s.starts_with("child;") && s.split(';').any(|f| f == "heavy")),
        1,
        "one sample inside execve, named from the old image: {folded:?}"
    );
}
