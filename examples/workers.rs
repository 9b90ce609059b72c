//! A multi-threaded Rust workload shaped like a real program, for kprof's DWARF benchmark.
//!
//! Four worker threads do different work, all of it through libstd, while the main thread
//! watches the clock (see: issue #13 point 3):
//! - `index_words`: splits generated text into words and counts them in a `HashMap<String, _>`
//!   (allocation, UTF-8 iteration, SipHash);
//! - `sort_records`: sorts records by their string keys and keeps them in a `BTreeMap`;
//! - `format_and_parse`: formats numbers into a report (`core::fmt`, float printing) and parses
//!   them back (`str::parse`);
//! - `produce` and `consume`: a producer thread sends byte buffers through a bounded channel
//!   to a consumer, which checks and transforms them and updates shared totals under a `Mutex`.
//!
//! Usage: `workers [SECONDS]` (default 1.0) of the process's CPU time, summed over its threads
//! (so the number of samples a recording gets does not depend on how busy the machine is).
//! Built in release without frame pointers, its stacks unwind only with DWARF CFI: 20-40
//! frames deep through libstd, as in most real programs.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// A xorshift generator: deterministic input without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const SYLLABLES: [&str; 12] = [
    "ka", "lo", "mé", "ri", "tsu", "ne", "vo", "ßa", "qui", "dor", "el", "ün",
];

/// Generated text: `words` words of 1-4 syllables.
#[inline(never)]
fn generate_text(rng: &mut Rng, words: usize) -> String {
    let mut text = String::new();
    for _ in 0..words {
        for _ in 0..=rng.next() % 4 {
            text.push_str(SYLLABLES[(rng.next() % SYLLABLES.len() as u64) as usize]);
        }
        text.push(' ');
    }
    text
}

#[inline(never)]
fn index_words(stop: &AtomicBool) -> usize {
    let mut rng = Rng(0x9e37_79b9);
    let mut distinct = 0;
    while !stop.load(Ordering::Relaxed) {
        let text = generate_text(&mut rng, 2_000);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for word in text.split_whitespace() {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
        distinct += counts.len();
    }
    distinct
}

#[inline(never)]
fn sort_records(stop: &AtomicBool) -> usize {
    let mut rng = Rng(0x2545_f491);
    let mut kept = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut records: Vec<(String, u64)> = (0..2_000)
            .map(|_| (format!("key-{:x}", rng.next() % 100_000), rng.next()))
            .collect();
        records.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let tree: BTreeMap<&str, u64> = records.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        kept += tree.range("key-4".."key-8").count();
    }
    kept
}

#[inline(never)]
fn format_and_parse(stop: &AtomicBool) -> f64 {
    let mut rng = Rng(0x6c07_8965);
    let mut total = 0.0;
    while !stop.load(Ordering::Relaxed) {
        let mut report = String::new();
        for i in 0..1_000 {
            let value = (rng.next() % 1_000_000) as f64 / 7.0;
            let _ = writeln!(report, "{i:>6} {value:.4} {:e}", value * 1e-3);
        }
        for line in report.lines() {
            let mut fields = line.split(' ').filter(|f| !f.is_empty());
            let _index: u32 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
            total += fields.map(|f| f.parse::<f64>().unwrap_or(0.0)).sum::<f64>();
        }
    }
    total
}

#[inline(never)]
fn produce(stop: &AtomicBool, sender: mpsc::SyncSender<Vec<u8>>) {
    let mut rng = Rng(0x1234_5678);
    while !stop.load(Ordering::Relaxed) {
        let text = generate_text(&mut rng, 200);
        if sender.send(text.into_bytes()).is_err() {
            break;
        }
    }
}

#[inline(never)]
fn consume(receiver: mpsc::Receiver<Vec<u8>>, totals: &Mutex<BTreeMap<char, u64>>) {
    for buffer in receiver {
        let Ok(text) = String::from_utf8(buffer) else {
            continue;
        };
        let upper = text.to_uppercase();
        let mut local: HashMap<char, u64> = HashMap::new();
        for c in upper.chars().filter(|c| c.is_alphabetic()) {
            *local.entry(c).or_default() += 1;
        }
        let mut totals = totals.lock().unwrap_or_else(|e| e.into_inner());
        for (c, n) in local {
            *totals.entry(c).or_default() += n;
        }
    }
}

/// The process's CPU time so far, summed over its threads (run times in
/// `/proc/self/task/*/schedstat`, in ns), or `None` where the kernel does not say.
fn cpu_time() -> Option<Duration> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        nanos += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(nanos))
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let seconds = Duration::from_secs_f64(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Mutex::new(BTreeMap::new()));
    let (sender, receiver) = mpsc::sync_channel(16);
    let spawn = |name: &str, work: Box<dyn FnOnce() -> u64 + Send>| {
        thread::Builder::new()
            .name(name.to_string())
            .spawn(work)
            .expect("spawning a worker thread")
    };
    let workers = vec![
        spawn("index", {
            let stop = Arc::clone(&stop);
            Box::new(move || index_words(&stop) as u64)
        }),
        spawn("sort", {
            let stop = Arc::clone(&stop);
            Box::new(move || sort_records(&stop) as u64)
        }),
        spawn("format", {
            let stop = Arc::clone(&stop);
            Box::new(move || format_and_parse(&stop) as u64)
        }),
        spawn("produce", {
            let stop = Arc::clone(&stop);
            Box::new(move || {
                produce(&stop, sender);
                0
            })
        }),
        spawn("consume", {
            let totals = Arc::clone(&totals);
            Box::new(move || {
                consume(receiver, &totals);
                0
            })
        }),
    ];
    let (start, cpu_at_start) = (Instant::now(), cpu_time());
    loop {
        thread::sleep(Duration::from_millis(10));
        let spent = match (cpu_at_start, cpu_time()) {
            (Some(then), Some(now)) => now.saturating_sub(then),
            _ => start.elapsed(),
        };
        if spent >= seconds {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0u64;
    for worker in workers {
        total = total.wrapping_add(worker.join().unwrap_or(0));
    }
    let letters = totals.lock().map(|t| t.len()).unwrap_or(0);
    println!("workers: {} {letters}", black_box(total));
}
