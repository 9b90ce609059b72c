//! Issue #2, point 3: truncated, bit-flipped and zero-filled perf.data files, cut from a real
//! recording, end in a clean result or a one-line error naming the file and the byte offset —
//! never a panic, a signal, a hang or unbounded memory (each run has a 10 s limit and 2 GiB of
//! address space).

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// How one run of `kprof flame` on a damaged file ended.
enum Outcome {
    Ok,
    Error(String),
}

fn run_bounded(file: &Path) -> Outcome {
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152; exec timeout -s KILL 10 \"$0\" flame --folded -i \"$1\"")
        .arg(env!("CARGO_BIN_EXE_kprof"))
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked at"),
        "{}: panic: {stderr}",
        file.display()
    );
    match out.status.code() {
        Some(0) => Outcome::Ok,
        Some(1) => Outcome::Error(stderr),
        other => panic!(
            "{}: crashed, hung or was killed ({other:?}): {stderr}",
            file.display()
        ),
    }
}

/// A non-zero exit must come with one line: `kprof: FILE...offset 0x...`.
fn assert_one_line_error(file: &Path, stderr: &str) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("warning") && !l.contains("note"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: one error line, got {stderr:?}",
        file.display()
    );
    let line = lines[0];
    assert!(line.starts_with("kprof: "), "{line}");
    assert!(
        line.contains(&file.display().to_string()),
        "error names the file: {line}"
    );
    assert!(
        line.contains("offset"),
        "error names the byte offset: {line}"
    );
}

/// xorshift64*: a fixed-seed generator, so every run tests the same cases.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn recording(dir: &TempDir) -> Vec<u8> {
    let hot = hot(FramePointers::Kept);
    let file = dir.join("source.data");
    perf_record(&file, &["-F", "999", "-g"], &[hot.to_str().unwrap(), "0.3"]);
    std::fs::read(file).unwrap()
}

/// A fresh directory tagged `tag` and the bytes of a [`recording`] made in it, when perf can
/// record here; `None` (the test skips) otherwise.
fn recording_in_fresh_dir(tag: &str) -> Option<(TempDir, Vec<u8>)> {
    if !perf_can_record() {
        return None;
    }
    let dir = TempDir::new(tag);
    let bytes = recording(&dir);
    Some((dir, bytes))
}

#[test]
fn truncated_files_fail_cleanly_with_offsets() {
    let Some((dir, bytes)) = recording_in_fresh_dir("truncate") else {
        return;
    };
    let attr_size = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let mut cuts = vec![
        0,
        8,
        64,
        104,
        104 + attr_size,
        256,
        bytes.len() * 3 / 4,
        bytes.len() - 1,
    ];
    cuts.extend((4096..bytes.len()).step_by(4096));
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        let file = dir.join(&format!("cut-{cut}.data"));
        std::fs::write(&file, &bytes[..cut]).unwrap();
        match run_bounded(&file) {
            Outcome::Ok => panic!(
                "{}: a file cut at {cut} of {} bytes was accepted",
                file.display(),
                bytes.len()
            ),
            Outcome::Error(stderr) if cut == 0 => assert!(stderr.contains("no data"), "{stderr}"),
            Outcome::Error(stderr) => assert_one_line_error(&file, &stderr),
        }
    }
}

#[test]
fn bit_flipped_and_zero_filled_files_never_crash() {
    let Some((dir, bytes)) = recording_in_fresh_dir("flip") else {
        return;
    };
    let mut rng = Rng(0x6b70_726f_665f_7465);
    let mut errors = 0;
    for case in 0..150 {
        let mut damaged = bytes.clone();
        if case % 3 == 2 {
            // Zero-fill a range, often over the header or a record header.
            let start = if case % 2 == 0 {
                rng.below(512)
            } else {
                rng.below(damaged.len())
            };
            let len = 1 + rng.below(256);
            let end = (start + len).min(damaged.len());
            damaged[start..end].fill(0);
        } else {
            for _ in 0..1 + rng.below(4) {
                // Half the flips hit the first 4 KiB, where the header, attrs and first records are.
                let at = if rng.next() % 2 == 0 {
                    rng.below(4096.min(damaged.len()))
                } else {
                    rng.below(damaged.len())
                };
                damaged[at] ^= 1 << rng.below(8);
            }
        }
        let file = dir.join(&format!("damaged-{case}.data"));
        std::fs::write(&file, &damaged).unwrap();
        if let Outcome::Error(stderr) = run_bounded(&file) {
            assert_one_line_error(&file, &stderr);
            errors += 1;
        }
    }
    assert!(errors > 0, "some damaged files must be rejected");
}

#[test]
fn unfinished_and_degenerate_headers() {
    let dir = TempDir::new("degenerate");
    // A 104-byte PERFILE2 header with everything else zero (samply#870).
    let mut header = vec![0u8; 104];
    header[..8].copy_from_slice(b"PERFILE2");
    header[8..16].copy_from_slice(&104u64.to_le_bytes());
    let file = dir.join("zero-header.data");
    std::fs::write(&file, &header).unwrap();
    match run_bounded(&file) {
        Outcome::Ok => {}
        Outcome::Error(stderr) => assert_one_line_error(&file, &stderr),
    }
    // attr_size 0 is an error.
    header[16..24].copy_from_slice(&0u64.to_le_bytes());
    header[24..32].copy_from_slice(&104u64.to_le_bytes());
    header[32..40].copy_from_slice(&8u64.to_le_bytes());
    let file = dir.join("attr-size-0.data");
    std::fs::write(&file, &header).unwrap();
    match run_bounded(&file) {
        Outcome::Ok => panic!("attr_size 0 accepted"),
        Outcome::Error(stderr) => assert_one_line_error(&file, &stderr),
    }
}

#[test]
fn not_finalized_file_is_salvaged_with_a_warning() {
    let Some((dir, mut bytes)) = recording_in_fresh_dir("unfinished") else {
        return;
    };
    // data.size = 0 is what a SIGKILLed perf leaves.
    bytes[48..56].copy_from_slice(&0u64.to_le_bytes());
    let file = dir.join("unfinished.data");
    std::fs::write(&file, &bytes).unwrap();
    let out = succeeded(kprof().args(["flame", "--folded", "-i", file.to_str().unwrap()]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not finalized"), "{stderr}");
    let folded = String::from_utf8_lossy(&out.stdout);
    assert!(
        folded.lines().any(|l| l.contains("heavy")),
        "samples salvaged: {folded}"
    );
}
