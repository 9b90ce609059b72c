//! Keyed maps: `--count`, `--sum`, `--hist`, `--lhist`, `--stats` per `--by` key, and their
//! printing as bpftrace prints `count()`, `sum()`, `hist()`, `lhist()` and `stats()` maps.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use serde_json::Value as Json;

use super::hist::{Bucket, LinearHist, Log2Hist};
use super::key::{Key, KeySpec, entry_name};
use super::stats::{Stats, Summary};
use crate::trace::event::Event;

/// Where a map's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// A numeric field of the event.
    Field(String),
    /// The duration of a `--latency` pair, in nanoseconds.
    Latency,
}

impl ValueSource {
    /// The name printed in JSON.
    pub fn name(&self) -> &str {
        match self {
            ValueSource::Field(name) => name,
            ValueSource::Latency => "latency_ns",
        }
    }
}

/// What one map accumulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapKind {
    /// Number of events.
    Count,
    /// Sum of a value.
    Sum(ValueSource),
    /// Power-of-two histogram of a value.
    Hist(ValueSource),
    /// Linear histogram of a value.
    LinearHist(ValueSource, LinearHist),
    /// count/min/avg/max/percentiles of a value.
    Stats(ValueSource),
}

impl MapKind {
    /// The aggregation's name (`count`, `sum`, `hist`, `lhist`, `stats`).
    pub fn name(&self) -> &'static str {
        match self {
            MapKind::Count => "count",
            MapKind::Sum(_) => "sum",
            MapKind::Hist(_) => "hist",
            MapKind::LinearHist(..) => "lhist",
            MapKind::Stats(_) => "stats",
        }
    }

    /// The value it reads (none for a count).
    pub fn source(&self) -> Option<&ValueSource> {
        match self {
            MapKind::Count => None,
            MapKind::Sum(s) | MapKind::Hist(s) | MapKind::LinearHist(s, _) | MapKind::Stats(s) => {
                Some(s)
            }
        }
    }

    fn empty_accumulator(&self) -> Accumulator {
        match self {
            MapKind::Count => Accumulator::Count(0),
            MapKind::Sum(_) => Accumulator::Sum(0),
            MapKind::Hist(_) => Accumulator::Hist(Box::default()),
            MapKind::LinearHist(_, empty) => {
                let mut fresh = empty.clone();
                fresh.clear();
                Accumulator::LinearHist(Box::new(fresh))
            }
            MapKind::Stats(_) => Accumulator::Stats(Stats::default()),
        }
    }
}

/// One entry's running value.
#[derive(Debug, Clone)]
enum Accumulator {
    Count(u64),
    Sum(i128),
    Hist(Box<Log2Hist>),
    LinearHist(Box<LinearHist>),
    Stats(Stats),
}

impl Accumulator {
    fn add(&mut self, value: i128) {
        match self {
            Accumulator::Count(n) => *n += 1,
            Accumulator::Sum(sum) => *sum += value,
            Accumulator::Hist(h) => h.add(value),
            Accumulator::LinearHist(h) => h.add(value),
            Accumulator::Stats(s) => s.add(value),
        }
    }

    /// The number bpftrace sorts entries by: the value of counts and sums, the number of values
    /// of histograms and stats.
    fn sort_value(&self) -> i128 {
        match self {
            Accumulator::Count(n) => i128::from(*n),
            Accumulator::Sum(sum) => *sum,
            Accumulator::Hist(h) => i128::from(h.total()),
            Accumulator::LinearHist(h) => i128::from(h.total()),
            Accumulator::Stats(s) => i128::from(s.count()),
        }
    }
}

/// One map: its name, what it accumulates, and its entries.
#[derive(Debug, Clone)]
struct Map {
    name: String,
    kind: MapKind,
    entries: HashMap<Key, Accumulator>,
    /// Events that reached this map without a numeric value for it.
    skipped: u64,
}

/// The maps of one `kprof trace` run, keyed by the same `--by` keys.
#[derive(Debug, Clone)]
pub struct KeyedMaps {
    keys: Vec<KeySpec>,
    maps: Vec<Map>,
}

/// JSON of one map (see the schema in the `agg` module doc).
#[derive(Debug, Serialize)]
pub struct MapJson {
    name: String,
    aggregation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    by: Vec<String>,
    skipped: u64,
    entries: Vec<EntryJson>,
}

/// JSON of one map entry.
#[derive(Debug, Serialize)]
struct EntryJson {
    key: Vec<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<i128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    buckets: Option<Vec<Bucket>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<Summary>,
}

impl KeyedMaps {
    /// Maps for `kinds`, each keyed by `keys`. One map prints as bpftrace's anonymous `@`;
    /// several print as `@count`, `@sum`, `@hist`, `@lhist`, `@stats`.
    pub fn new(keys: Vec<KeySpec>, kinds: Vec<MapKind>) -> KeyedMaps {
        let single = kinds.len() == 1;
        let maps = kinds
            .into_iter()
            .map(|kind| Map {
                name: if single {
                    "@".to_string()
                } else {
                    format!("@{}", kind.name())
                },
                kind,
                entries: HashMap::new(),
                skipped: 0,
            })
            .collect();
        KeyedMaps { keys, maps }
    }

    /// The key of `event`.
    pub fn key_of(&self, event: &Event<'_>) -> Key {
        self.keys.iter().map(|k| k.extract(event)).collect()
    }

    /// Adds one observation under `key`; `value_of` gives each map's value (`None`: the event
    /// has no numeric value for it, counted as skipped).
    pub fn add(&mut self, key: &Key, value_of: &dyn Fn(&ValueSource) -> Option<i128>) {
        for map in &mut self.maps {
            let value = match map.kind.source() {
                None => 0,
                Some(source) => match value_of(source) {
                    Some(v) => v,
                    None => {
                        map.skipped += 1;
                        continue;
                    }
                },
            };
            match map.entries.get_mut(key) {
                Some(acc) => acc.add(value),
                None => {
                    let mut acc = map.kind.empty_accumulator();
                    acc.add(value);
                    map.entries.insert(key.clone(), acc);
                }
            }
        }
    }

    /// Adds one event, its values read from its fields.
    pub fn add_event(&mut self, event: &Event<'_>) {
        let key = self.key_of(event);
        self.add(&key, &|source| match source {
            ValueSource::Field(name) => event.get(name).and_then(|v| v.as_i128()),
            ValueSource::Latency => None,
        });
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        for map in &mut self.maps {
            map.entries.clear();
            map.skipped = 0;
        }
    }

    /// Prints every map as bpftrace does at exit: count and sum maps one `@[key]: value` line
    /// per entry, histograms `@[key]: ` then their rows and a blank line; entries sorted by
    /// value (histograms: by their number of values), ascending, ties in key order.
    pub fn print_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for map in &self.maps {
            for (key, acc) in sorted(&map.entries) {
                let name = entry_name(&map.name, key);
                match acc {
                    Accumulator::Count(n) => writeln!(out, "{name}: {n}")?,
                    Accumulator::Sum(sum) => writeln!(out, "{name}: {sum}")?,
                    Accumulator::Hist(h) => write!(out, "{name}: \n{}\n", h.render())?,
                    Accumulator::LinearHist(h) => write!(out, "{name}: \n{}\n", h.render())?,
                    Accumulator::Stats(s) => {
                        if let Some(summary) = s.summary() {
                            writeln!(out, "{name}: {}", summary.to_text())?;
                        }
                    }
                }
            }
            if map.skipped > 0 {
                let source = map.kind.source().map_or("", ValueSource::name);
                writeln!(
                    out,
                    "# {}: {} events had no numeric `{source}` and were left out",
                    map.name, map.skipped
                )?;
            }
        }
        Ok(())
    }

    /// Every map as JSON.
    pub fn to_json(&self) -> Vec<MapJson> {
        self.maps
            .iter()
            .map(|map| MapJson {
                name: map.name.clone(),
                aggregation: map.kind.name(),
                value: map.kind.source().map(|s| s.name().to_string()),
                by: self.keys.iter().map(|k| k.name().to_string()).collect(),
                skipped: map.skipped,
                entries: sorted(&map.entries)
                    .into_iter()
                    .map(|(key, acc)| {
                        let mut entry = EntryJson {
                            key: key.iter().map(|p| p.to_json()).collect(),
                            value: None,
                            buckets: None,
                            stats: None,
                        };
                        match acc {
                            Accumulator::Count(n) => entry.value = Some(i128::from(*n)),
                            Accumulator::Sum(sum) => entry.value = Some(*sum),
                            Accumulator::Hist(h) => entry.buckets = Some(h.buckets()),
                            Accumulator::LinearHist(h) => entry.buckets = Some(h.buckets()),
                            Accumulator::Stats(s) => entry.stats = s.summary(),
                        }
                        entry
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Entries by ascending value, ties by key (bpftrace leaves ties in hash order; kprof makes
/// them deterministic).
fn sorted(entries: &HashMap<Key, Accumulator>) -> Vec<(&Key, &Accumulator)> {
    let mut list: Vec<_> = entries.iter().collect();
    list.sort_by(|a, b| a.1.sort_value().cmp(&b.1.sort_value()).then(a.0.cmp(b.0)));
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::agg::key::KeyPart;

    fn text(maps: &KeyedMaps) -> String {
        let mut out = Vec::new();
        maps.print_text(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn add(maps: &mut KeyedMaps, key: &str, value: i128) {
        maps.add(&vec![KeyPart::Str(key.to_string())], &|_| Some(value));
    }

    #[test]
    fn counts_and_sums_sorted_by_value_like_bpftrace() {
        let mut maps = KeyedMaps::new(vec![KeySpec::Comm], vec![MapKind::Count]);
        for (comm, n) in [("b", 3), ("a", 5), ("c", 3)] {
            (0..n).for_each(|_| add(&mut maps, comm, 0));
        }
        assert_eq!(text(&maps), "@[b]: 3\n@[c]: 3\n@[a]: 5\n");

        let mut maps = KeyedMaps::new(
            vec![KeySpec::Comm],
            vec![MapKind::Sum(ValueSource::Field("bytes".into()))],
        );
        add(&mut maps, "a", 5);
        add(&mut maps, "b", 3);
        add(&mut maps, "b", -10);
        assert_eq!(text(&maps), "@[b]: -7\n@[a]: 5\n");
        maps.clear();
        assert_eq!(text(&maps), "");
    }

    #[test]
    fn several_maps_are_named_and_hist_prints_rows() {
        let mut maps = KeyedMaps::new(
            Vec::new(),
            vec![
                MapKind::Count,
                MapKind::Hist(ValueSource::Field("count".into())),
            ],
        );
        maps.add(&Vec::new(), &|_| Some(3));
        maps.add(&Vec::new(), &|_| None);
        let expected = "@count: 2\n@hist: \n[2, 4)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n# @hist: 1 events had no numeric `count` and were left out\n";
        assert_eq!(text(&maps), expected);
        let json = serde_json::to_value(maps.to_json()).unwrap();
        assert_eq!(json[1]["entries"][0]["buckets"][0]["min"], 2);
        assert_eq!(json[1]["entries"][0]["buckets"][0]["max"], 3);
        assert_eq!(json[1]["skipped"], 1);
        assert_eq!(json[0]["entries"][0]["value"], 2);
    }
}
