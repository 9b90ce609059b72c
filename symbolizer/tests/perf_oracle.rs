//! Oracle test: replays the side-band events of a real `perf record` (as printed by
//! `perf script --show-mmap-events`) and checks that our symbols match perf's.
//!
//! Skips when `perf` or `cc` is unavailable, unless `KPROF_REQUIRE_PERF=1`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use kprof_symbolizer::{
    AddressSpaces, Avma, Location, MappingInfo, Status, Symbolizer, SymbolizerOptions,
};

const WORKLOAD: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) double spin(long n) {
    double a = 0;
    for (long i = 0; i < n; i++) a += (double)i * 0.5;
    return a;
}
int main(void) {
    double t = 0;
    for (int i = 0; i < 40; i++) { t += spin(5000000L + i); for (int j = 0; j < 20000; j++) getppid(); }
    printf("%f\n", t);
    return 0;
}
"#;

fn skip(why: &str) {
    if std::env::var("KPROF_REQUIRE_PERF").as_deref() == Ok("1") {
        panic!("KPROF_REQUIRE_PERF=1 but {why}");
    }
    eprintln!("skipping: {why}");
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// Parses `[0xSTART(0xLEN) @ 0xPGOFF ...]: prot PATH` and `PID/TID:` from an MMAP/MMAP2 line.
fn parse_mmap(line: &str) -> Option<(i64, u64, u64, u64, String)> {
    let after = line.split_once("PERF_RECORD_MMAP")?.1;
    let after = after.trim_start_matches('2').trim_start();
    let pid: i64 = after.split('/').next()?.parse().ok()?;
    let bracket = after.split_once('[')?.1;
    let (start, rest) = bracket.split_once('(')?;
    let (len, rest) = rest.split_once(')')?;
    let pgoff = rest.split_once("@ ")?.1.split([' ', ']']).next()?;
    let path = after.rsplit_once("]: ")?.1.split_once(' ')?.1.to_string();
    Some((pid, hex(start), hex(len), hex(pgoff), path))
}

#[test]
fn symbols_match_perf_script() {
    let dir = std::env::temp_dir().join(format!("kprof-sym-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cleanup = Cleanup(dir.clone());
    let src = dir.join("w.c");
    std::fs::write(&src, WORKLOAD).unwrap();
    let bin = dir.join("workload");
    let cc = Command::new("cc")
        .args(["-O2", "-g"])
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .status();
    if !cc.map(|s| s.success()).unwrap_or(false) {
        return skip("cc is not available");
    }
    let data = dir.join("perf.data");
    let rec = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-F", "2000", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&bin)
        .output();
    if !rec.as_ref().map(|o| o.status.success()).unwrap_or(false) {
        return skip("perf record failed (perf missing or perf_event_paranoid too high)");
    }
    let script = Command::new("perf")
        .args(["script", "--show-mmap-events", "-F", "pid,ip,sym,dso", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(script.status.success());
    let text = String::from_utf8_lossy(&script.stdout);

    let mut spaces = AddressSpaces::new();
    let mut options = SymbolizerOptions::default();
    options.kernel_matches = true;
    let symbolizer = Symbolizer::new(options);
    let (mut compared, mut agreed, mut spin_samples) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for line in text.lines() {
        if line.contains("PERF_RECORD_MMAP") {
            let (pid, start, len, pgoff, path) = parse_mmap(line).unwrap();
            let kernel = pid == -1;
            spaces.mmap(
                u32::try_from(pid).unwrap_or(u32::MAX),
                MappingInfo {
                    kernel,
                    ..MappingInfo::user(Avma(start), len, pgoff, path.as_bytes())
                },
            );
            continue;
        }
        // "  PID  IP SYM (DSO)"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [pid, ip, sym @ .., _dso] = fields.as_slice() else {
            continue;
        };
        let (Ok(pid), Ok(ip)) = (pid.parse::<u32>(), u64::from_str_radix(ip, 16)) else {
            continue;
        };
        let sym = sym.join(" ");
        if sym.is_empty() || sym == "[unknown]" {
            continue;
        }
        let kernel = ip >= 0xffff_8000_0000_0000;
        let Location::Module { module, offset } = spaces.locate(pid, Avma(ip), kernel) else {
            disagreements.push(format!("{ip:#x} unmapped, perf says {sym}"));
            compared += 1;
            continue;
        };
        let ours = symbolizer.symbolize(spaces.module(module), offset);
        compared += 1;
        if sym == "spin" {
            spin_samples += 1;
        }
        if ours.status == Status::Resolved && same_function(&ours.frames[0].function, &sym) {
            agreed += 1;
        } else {
            disagreements.push(format!(
                "{ip:#x}: perf {sym}, ours {:?}",
                ours.frames[0].function
            ));
        }
    }
    drop(cleanup);
    eprintln!("{agreed}/{compared} samples agree with perf ({spin_samples} in spin)");
    assert!(
        spin_samples > 10,
        "too few samples in spin: {spin_samples}\n{text}"
    );
    // perf and we may pick different aliases at one address; allow a few.
    assert!(
        agreed * 100 >= compared * 95,
        "{agreed}/{compared} agree; first disagreements: {:#?}",
        &disagreements[..disagreements.len().min(10)]
    );
}

/// Equal up to glibc's alias spellings: perf may pick `__GI___getppid` where we pick the
/// public alias `getppid` at the same address.
fn same_function(ours: &str, perf: &str) -> bool {
    let canonical = |s: &str| {
        s.trim_start_matches("__GI_")
            .trim_start_matches('_')
            .to_string()
    };
    ours == perf || canonical(ours) == canonical(perf)
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
