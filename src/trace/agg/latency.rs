//! `--latency START..END`: pairs start and end events per thread (or per `--latency-key` fields)
//! and aggregates the durations (ns) into the keyed maps (`--hist` by default, or `--stats`...).
//!
//! Pairing is a stack per pair key, so nested and recursive pairs match innermost first (an end
//! closes the latest open start of its thread or key). Ends without an open start and starts
//! never ended are counted and printed (`@unmatched_ends`, `@unmatched_starts`). Marks pass
//! through a time-ordering buffer first: live rings deliver each CPU in order, but a thread
//! that migrated can have its end drained before its start. `--by` keys are read from the start
//! event (who issued a block request, not who completed it).

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use super::aggregation::{Aggregation, write_partial_note};
use super::key::{Key, KeyPart, KeySpec};
use super::maps::{KeyedMaps, MapJson, ValueSource};
use super::reorder::Reorder;
use crate::trace::event::{Event, EventSink};

/// Open starts deeper than this on one key drop their oldest (counted as unmatched starts).
const MAX_DEPTH: usize = 4096;

/// A start or an end, waiting in the ordering buffer.
#[derive(Debug, Clone)]
enum Mark {
    Start { pair: Key, group: Key },
    End { pair: Key },
}

/// The `--latency` aggregation.
#[derive(Debug, Clone)]
pub struct Latency {
    start: String,
    end: String,
    pair_keys: Vec<KeySpec>,
    maps: KeyedMaps,
    pending: Reorder<Mark>,
    open: HashMap<Key, Vec<(u64, Key)>>,
    dropped_starts: u64,
    unmatched_ends: u64,
    lost: u64,
}

/// JSON of the pairing counts.
#[derive(Debug, Serialize)]
struct PairingJson<'a> {
    start: &'a str,
    end: &'a str,
    key: Vec<&'a str>,
    unmatched_starts: u64,
    unmatched_ends: u64,
}

/// JSON of a `--latency` print.
#[derive(Debug, Serialize)]
struct LatencyJson<'a> {
    lost: u64,
    partial: bool,
    latency: PairingJson<'a>,
    maps: Vec<MapJson>,
}

impl Latency {
    /// Pairs `start` with `end` events by `pair_keys` (empty: by thread) into `maps`.
    pub fn new(start: &str, end: &str, pair_keys: Vec<KeySpec>, maps: KeyedMaps) -> Latency {
        Latency {
            start: start.to_string(),
            end: end.to_string(),
            pair_keys,
            maps,
            pending: Reorder::default(),
            open: HashMap::new(),
            dropped_starts: 0,
            unmatched_ends: 0,
            lost: 0,
        }
    }

    fn pair_key(&self, event: &Event<'_>) -> Key {
        if self.pair_keys.is_empty() {
            vec![KeyPart::Num(i128::from(event.tid))]
        } else {
            self.pair_keys.iter().map(|k| k.extract(event)).collect()
        }
    }

    fn apply(&mut self, time: u64, mark: Mark) {
        match mark {
            Mark::Start { pair, group } => {
                let stack = self.open.entry(pair).or_default();
                stack.push((time, group));
                if stack.len() > MAX_DEPTH {
                    stack.remove(0);
                    self.dropped_starts += 1;
                }
            }
            Mark::End { pair } => {
                let (started, now_empty) = match self.open.get_mut(&pair) {
                    Some(stack) => (stack.pop(), stack.is_empty()),
                    None => (None, false),
                };
                if now_empty {
                    self.open.remove(&pair);
                }
                match started {
                    Some((start, group)) => {
                        let duration = i128::from(time.saturating_sub(start));
                        self.maps.add(&group, &|source| match source {
                            ValueSource::Latency => Some(duration),
                            ValueSource::Field(_) => None,
                        });
                    }
                    None => self.unmatched_ends += 1,
                }
            }
        }
    }

    fn flush_ready(&mut self) {
        while let Some((time, mark)) = self.pending.pop_ready() {
            self.apply(time, mark);
        }
    }

    /// A copy with every held mark applied: what printing now shows.
    fn settled(&self) -> Latency {
        let mut copy = self.clone();
        while let Some((time, mark)) = copy.pending.pop() {
            copy.apply(time, mark);
        }
        copy
    }

    fn unmatched_starts(&self) -> u64 {
        self.dropped_starts + self.open.values().map(|s| s.len() as u64).sum::<u64>()
    }
}

impl EventSink for Latency {
    fn event(&mut self, event: &Event<'_>) {
        let mark = if event.name == self.start {
            Mark::Start {
                pair: self.pair_key(event),
                group: self.maps.key_of(event),
            }
        } else if event.name == self.end {
            Mark::End {
                pair: self.pair_key(event),
            }
        } else {
            return;
        };
        self.pending.push(event.time_ns, mark);
        self.flush_ready();
    }

    fn lost(&mut self, count: u64) {
        self.lost += count;
    }
}

impl Aggregation for Latency {
    fn print(&self, out: &mut dyn Write, json: bool) -> std::io::Result<()> {
        let settled = self.settled();
        if json {
            let doc = LatencyJson {
                lost: self.lost,
                partial: self.lost > 0,
                latency: PairingJson {
                    start: &self.start,
                    end: &self.end,
                    key: if self.pair_keys.is_empty() {
                        vec!["tid"]
                    } else {
                        self.pair_keys.iter().map(KeySpec::name).collect()
                    },
                    unmatched_starts: settled.unmatched_starts(),
                    unmatched_ends: settled.unmatched_ends,
                },
                maps: settled.maps.to_json(),
            };
            serde_json::to_writer(&mut *out, &doc)?;
            return writeln!(out);
        }
        write_partial_note(out, self.lost)?;
        settled.maps.print_text(out)?;
        writeln!(out, "@unmatched_starts: {}", settled.unmatched_starts())?;
        writeln!(out, "@unmatched_ends: {}", settled.unmatched_ends)
    }

    fn reset(&mut self) {
        // What was printed included every held mark: apply them before forgetting. Open starts
        // stay open: their ends belong to the next interval.
        while let Some((time, mark)) = self.pending.pop() {
            self.apply(time, mark);
        }
        self.maps.clear();
        self.dropped_starts = 0;
        self.unmatched_ends = 0;
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::agg::maps::MapKind;
    use crate::trace::event::Value;

    fn event<'a>(
        name: &'a str,
        time_ns: u64,
        tid: i32,
        fields: &'a [(&'a str, Value<'a>)],
    ) -> Event<'a> {
        Event {
            name,
            time_ns,
            cpu: 0,
            pid: tid,
            tid,
            comm: "w",
            cgroup: None,
            fields,
            stack: None,
        }
    }

    fn stats_latency(pair_keys: Vec<KeySpec>) -> Latency {
        let maps = KeyedMaps::new(Vec::new(), vec![MapKind::Stats(ValueSource::Latency)]);
        Latency::new("s:enter", "s:exit", pair_keys, maps)
    }

    fn text(l: &Latency) -> String {
        let mut out = Vec::new();
        l.print(&mut out, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nested_pairs_match_innermost_first() {
        let mut l = stats_latency(Vec::new());
        // Thread 1: enter@0 (enter@10 exit@15) exit@100; thread 2 interleaved: enter@5 exit@35.
        for (name, t, tid) in [
            ("s:enter", 0, 1),
            ("s:enter", 5, 2),
            ("s:enter", 10, 1),
            ("s:exit", 15, 1),
            ("s:exit", 35, 2),
            ("s:exit", 100, 1),
            ("other", 101, 1),
        ] {
            l.event(&event(name, t, tid, &[]));
        }
        assert_eq!(
            text(&l),
            "@: count 3, min 5, avg 45, max 100, p50 30, p90 100, p99 100\n@unmatched_starts: 0\n@unmatched_ends: 0\n"
        );
    }

    #[test]
    fn unmatched_and_out_of_order_marks() {
        let mut l = stats_latency(Vec::new());
        // The exit of thread 3 arrives before its enter (another CPU's ring drained first).
        l.event(&event("s:exit", 40, 3, &[]));
        l.event(&event("s:enter", 10, 3, &[]));
        l.event(&event("s:exit", 50, 4, &[])); // never started
        l.event(&event("s:enter", 60, 5, &[])); // never ends
        l.lost(2);
        let out = text(&l);
        assert!(out.starts_with("# partial: 2 events lost"), "{out}");
        assert!(out.contains("@: count 1, min 30, avg 30, max 30"), "{out}");
        assert!(
            out.ends_with("@unmatched_starts: 1\n@unmatched_ends: 1\n"),
            "{out}"
        );
        // Printing did not consume the held marks; reset keeps the open start.
        l.reset();
        l.event(&event("s:exit", 70, 5, &[]));
        assert!(
            text(&l).contains("@: count 1, min 10, avg 10, max 10"),
            "{}",
            text(&l)
        );
    }

    #[test]
    fn pairs_by_key_fields_across_threads() {
        let mut l = stats_latency(vec![KeySpec::parse("dev"), KeySpec::parse("sector")]);
        let a = [
            ("dev", Value::Unsigned(8)),
            ("sector", Value::Unsigned(100)),
        ];
        let b = [
            ("dev", Value::Unsigned(8)),
            ("sector", Value::Unsigned(200)),
        ];
        l.event(&event("s:enter", 0, 1, &a));
        l.event(&event("s:enter", 5, 1, &b));
        l.event(&event("s:exit", 1000, 0, &b)); // completed in an interrupt, another "thread"
        l.event(&event("s:exit", 2000, 0, &a));
        let mut out = Vec::new();
        l.print(&mut out, true).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let stats = &json["maps"][0]["entries"][0]["stats"];
        assert_eq!(
            (stats["min"].as_i64(), stats["max"].as_i64()),
            (Some(995), Some(2000))
        );
        assert_eq!(json["latency"]["key"], serde_json::json!(["dev", "sector"]));
        assert_eq!(json["latency"]["unmatched_ends"], 0);
    }
}
