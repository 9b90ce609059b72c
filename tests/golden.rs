//! Output goldens: what kprof prints for the peer recordings (`tests/fixtures/peer/`), checked
//! in under `tests/golden/<fixture>.<format>` so a reader sees kprof's folded stacks, report,
//! script and SVG without a perf install, and a refactor that changes one byte of them fails.
//!
//! Goldens pin the *format*; whether the numbers are right is decided elsewhere, by oracles
//! (`tests/peer.rs` checks these files against the `linux-perf-data` reader, `tests/oracle.rs`
//! checks kprof against perf on fresh recordings). Each golden here is still tied to one oracle
//! fact: its script lists as many samples as the independent reader counts.
//!
//! To rewrite them after an intended change of output, run
//!
//! ```text
//! KPROF_BLESS=1 cargo test --test main golden
//! ```
//!
//! and review the diff (`git diff tests/golden/`) before committing it.
//!
//! Determinism: the outputs hold no timestamp or local path (the SVG's title is the event, its
//! subtitle the recorded command line, its colours a hash of the frame names), so nothing is
//! normalized. What could differ from machine to machine is which files symbolize the frames:
//! kprof runs with `--symfs` pointing at an empty directory and `HOME` there too (no build-id
//! cache), so every binary the recordings name is "file not found", here and on any machine.
//! The kernel symbols of this machine are never used: none of the recordings was made on it.
//! Folded stacks are compared with one rayon thread and with the default pool.
// See: issue #12 point 5

use std::path::{Path, PathBuf};

use crate::common::*;

/// The output formats a golden covers, with the file extension of its golden.
#[derive(Clone, Copy, Debug)]
enum Format {
    /// `kprof flame --folded`
    Folded,
    /// `kprof report`
    Report,
    /// `kprof script`
    Script,
    /// `kprof flame` (an SVG)
    Svg,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Folded => "folded",
            Format::Report => "report.txt",
            Format::Script => "script.txt",
            Format::Svg => "svg",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Format::Folded => &["flame", "--folded"],
            Format::Report => &["report"],
            Format::Script => &["script"],
            Format::Svg => &["flame"],
        }
    }
}

/// kprof's output of `format` for the peer recording `fixture`, with no local binary or
/// build-id cache to symbolize from; `threads` sets the rayon pool size when given.
fn output_of(fixture: &str, format: Format, threads: Option<usize>) -> String {
    output_with(fixture, format, threads, None)
}

/// [`output_of`] with the default pool, the records replayed in shards of `records` records.
fn output_of_sharded(fixture: &str, format: Format, records: usize) -> String {
    output_with(fixture, format, None, Some(records))
}

fn output_with(
    fixture: &str,
    format: Format,
    threads: Option<usize>,
    shard_records: Option<usize>,
) -> String {
    let input = repo()
        .join("tests/fixtures/peer")
        .join(format!("{fixture}.data"));
    let nothing = TempDir::new("golden-symfs");
    let mut cmd = kprof();
    cmd.args(format.args())
        .arg("-i")
        .arg(&input)
        .arg("--symfs")
        .arg(nothing.path())
        .env("HOME", nothing.path());
    if let Some(threads) = threads {
        cmd.env("RAYON_NUM_THREADS", threads.to_string());
    }
    if let Some(records) = shard_records {
        cmd.env("KPROF_SHARD_RECORDS", records.to_string());
    }
    let out = cmd.output().expect("kprof runs");
    assert!(
        out.status.success(),
        "kprof {:?} on {fixture} failed with {}: {}",
        format.args(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn golden_path(fixture: &str, format: Format) -> PathBuf {
    repo()
        .join("tests/golden")
        .join(format!("{fixture}.{}", format.extension()))
}

fn blessing() -> bool {
    std::env::var_os("KPROF_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden at `path` (rewrites it under `KPROF_BLESS=1`); a mismatch
/// names the first differing line as `file:line`.
fn compare(path: &Path, actual: &str) {
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with KPROF_BLESS=1 cargo test --test main golden",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    let mut line = 1;
    loop {
        match (expected_lines.next(), actual_lines.next()) {
            (Some(e), Some(a)) if e == a => line += 1,
            (e, a) => panic!(
                "{}:{line}: output differs from the golden\n  golden: {}\n  kprof:  {}\n\
                 If the change is intended: KPROF_BLESS=1 cargo test --test main golden",
                path.display(),
                e.unwrap_or("<end of file>"),
                a.unwrap_or("<end of output>"),
            ),
        }
    }
}

/// Checks one fixture's golden of one format.
fn check(fixture: &str, format: Format) {
    let actual = output_of(fixture, format, None);
    // The same bytes when the replay runs in shards of a few records, merged (big files
    // always are): see `src/analysis/shard.rs`. See: issue #13 point 4
    assert_eq!(
        output_of_sharded(fixture, format, 3),
        actual,
        "{fixture}: {:?} replayed in shards of 3 records and in one",
        format.args()
    );
    match format {
        Format::Folded => {
            // The same bytes whatever the number of threads.
            assert_eq!(
                output_of(fixture, format, Some(1)),
                actual,
                "{fixture}: folded with 1 thread and with the default pool"
            );
        }
        Format::Script => {
            let input = repo()
                .join("tests/fixtures/peer")
                .join(format!("{fixture}.data"));
            let listed = actual
                .lines()
                .filter(|l| !l.starts_with('\t') && !l.is_empty())
                .count() as u64;
            assert_eq!(
                listed,
                crate::peer::oracle(&input).0,
                "{fixture}: the script lists every sample the independent reader counts"
            );
        }
        Format::Report | Format::Svg => {}
    }
    compare(&golden_path(fixture, format), &actual);
}

/// One named test per golden file: `golden::<fixture>_<format>`.
macro_rules! goldens {
    ($($name:ident: $fixture:literal, $format:ident;)*) => {
        $(
            #[test]
            fn $name() {
                check($fixture, Format::$format);
            }
        )*

        /// Every file under `tests/golden/` belongs to a test above (a renamed test leaves
        /// no stale golden behind).
        #[test]
        fn every_golden_file_has_a_test() {
            let known: Vec<PathBuf> = [$(golden_path($fixture, Format::$format)),*].into();
            for entry in std::fs::read_dir(repo().join("tests/golden")).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().is_some_and(|n| n == "README.md") {
                    continue;
                }
                assert!(known.contains(&path), "{}: no test compares it", path.display());
            }
        }
    };
}

goldens! {
    sleep_folded: "sleep", Folded;
    sleep_report: "sleep", Report;
    sleep_script: "sleep", Script;
    sleep_svg: "sleep", Svg;
    sleep_compressed_folded: "sleep.compressed", Folded;
    sleep_compressed_report: "sleep.compressed", Report;
    sleep_compressed_script: "sleep.compressed", Script;
    sleep_compressed_svg: "sleep.compressed", Svg;
    sleep_compressed_pipe_folded: "sleep.compressed.pipe", Folded;
    sleep_compressed_pipe_report: "sleep.compressed.pipe", Report;
    sleep_compressed_pipe_script: "sleep.compressed.pipe", Script;
    sleep_compressed_pipe_svg: "sleep.compressed.pipe", Svg;
    sleep_compressed2_folded: "sleep.compressed2", Folded;
    sleep_compressed2_report: "sleep.compressed2", Report;
    sleep_compressed2_script: "sleep.compressed2", Script;
    sleep_compressed2_svg: "sleep.compressed2", Svg;
    sleep_compressed2_pipe_folded: "sleep.compressed2.pipe", Folded;
    sleep_compressed2_pipe_report: "sleep.compressed2.pipe", Report;
    sleep_compressed2_pipe_script: "sleep.compressed2.pipe", Script;
    sleep_compressed2_pipe_svg: "sleep.compressed2.pipe", Svg;
    fibo_compressed2_pipe_folded: "fibo.compressed2.pipe", Folded;
    fibo_compressed2_pipe_report: "fibo.compressed2.pipe", Report;
    fibo_compressed2_pipe_script: "fibo.compressed2.pipe", Script;
    fibo_compressed2_pipe_svg: "fibo.compressed2.pipe", Svg;
}
