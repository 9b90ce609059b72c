//! The section cache (inflated copies of compressed debug sections, kept by build-id between
//! runs) changes no output: `kprof flame --lines` prints the same with it off, while it is
//! filled, and when it is read.

use crate::common::*;

/// Files under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() { files_under(&path) } else { 1 }
            })
            .sum()
    })
}

// See: issue #10 point 14 and done-means 7
#[test]
fn lines_are_the_same_with_and_without_the_section_cache() {
    if !perf_can_record() {
        return;
    }
    let strings = c_workload("strings", &["-O2", "-g", "-fno-omit-frame-pointer"]);
    let dir = TempDir::new("section-cache");
    let data = dir.join("perf.data");
    perf_record(
        &data,
        &["-F", "499", "-g"],
        &[strings.to_str().unwrap(), "0.5"],
    );
    let cache = dir.join("cache");
    let flame = |cache_setting: &std::ffi::OsStr| {
        stdout_of(kprof().env("KPROF_SECTION_CACHE", cache_setting).args([
            "flame",
            "--lines",
            "--folded",
            "-i",
            data.to_str().unwrap(),
        ]))
    };
    let without = flame("off".as_ref());
    assert!(without.contains(".c:"), "no source lines: {without}");
    let filling = flame(cache.as_os_str());
    let reading = flame(cache.as_os_str());
    assert_eq!(without, filling, "the run that fills the cache");
    assert_eq!(without, reading, "the run that reads the cache");
    // With libc's separate debug file installed (libc6-dbg) and compressed, as Debian's
    // is, the cache holds its sections, and the runs above filled and read them.
    if compressed_libc_debug_file(&strings) {
        assert!(files_under(&cache) > 0, "nothing cached under {cache:?}");
    }
}

/// Whether the libc that `binary` loads has a separate debug file by build-id whose
/// `.debug_info` is compressed (readelf's `C` flag).
fn compressed_libc_debug_file(binary: &std::path::Path) -> bool {
    let run = |program: &str, args: &[&str]| -> String {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let ldd = run("ldd", &[binary.to_str().unwrap()]);
    let Some(libc) = ldd
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .find(|p| p.contains("libc.so"))
    else {
        return false;
    };
    let notes = run("readelf", &["-n", libc]);
    let Some(id) = notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
    else {
        return false;
    };
    let debug = format!("/usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
    run("readelf", &["-S", "-W", &debug])
        .lines()
        .any(|l| l.contains(".debug_info") && l.split_whitespace().any(|f| f == "C"))
}
