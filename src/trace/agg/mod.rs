//! Aggregations of trace events: `--count`, `--sum`, `--hist`, `--lhist`, `--stats` keyed by
//! `--by`, plus the `--latency` and `--syscalls` summaries, printed as bpftrace 0.17 prints its maps.
//!
//! # Text output
//! One map prints as bpftrace's anonymous map `@` (`@[bash, 42]: 7`, `@[bash]: ` then histogram
//! rows); several (`--count --hist bytes`) as `@count`, `@hist`... Entries are sorted by value,
//! ascending (histograms and stats by their number of values), ties in key order. Lines that
//! kprof adds start with `# ` (a partial result after lost events, events without the field);
//! `--latency` ends with `@unmatched_starts: N` and `@unmatched_ends: N`. Histogram rules are in
//! [`hist`]; `--syscalls` prints `perf trace -s`'s table ([`syscalls`]).
//!
//! # JSON output (`--json`)
//! Each print is one line holding one object:
//! ```text
//! { "lost": u64, "partial": bool,              // partial: events were lost (lost > 0)
//!   "maps": [ { "name": "@", "aggregation": "count"|"sum"|"hist"|"lhist"|"stats",
//!               "value": "bytes",              // the field (latency: "latency_ns"); absent for count
//!               "by": ["comm", ...],           // the --by keys
//!               "skipped": u64,                // events without a numeric value for the map
//!               "entries": [ { "key": [json value per --by key; stacks are arrays, innermost first],
//!                              "value": n,                              // count, sum
//!                              "buckets": [{"min": i, "max": i, "count": n}],  // hist, lhist:
//!                                      //   inclusive bounds, absent on open ends; first to last non-empty
//!                              "stats": {"count", "min", "avg", "max", "p50", "p90", "p99", "total"} } ] } ],
//!   "latency": { "start": "sys:a", "end": "sys:b", "key": ["tid"],   // --latency only
//!                "unmatched_starts": u64, "unmatched_ends": u64 } }
//! ```
//! `--syscalls` prints `{ "lost", "partial", "processes": [ { "pid", "comm", "calls", "errors",
//! "unfinished": {"exit_group": 1}, "syscalls": [ { "name", "calls", "errors", "timed",
//! "total_ns", "min_ns", "avg_ns", "max_ns", "stddev_percent" } ] } ] }`.

mod aggregation;
pub mod hist;
pub mod key;
pub mod latency;
pub mod maps;
pub mod reorder;
pub mod stats;
pub mod syscalls;

use std::io::Write;

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;

pub use self::aggregation::Aggregation;
use self::aggregation::write_partial_note;
use self::hist::LinearHist;
use self::key::KeySpec;
use self::latency::Latency;
use self::maps::{KeyedMaps, MapKind, ValueSource};
use self::syscalls::SyscallSummary;
use crate::trace::event::{Event, EventSink};

/// The aggregation flags of `kprof trace` (flattened into its arguments).
#[derive(Debug, Clone, Default, Args)]
pub struct AggregationArgs {
    /// Count events (per `--by` key).
    #[arg(long = "count")]
    pub count: bool,
    /// Group by these keys (comma list): comm, pid, tid, cpu, cgroup (the task's cgroup path),
    /// event, any field, stack (records stacks, as -g).
    #[arg(long = "by", value_name = "KEYS", value_delimiter = ',')]
    pub by: Vec<String>,
    /// Sum a numeric field (per `--by` key).
    #[arg(long = "sum", value_name = "FIELD")]
    pub sum: Option<String>,
    /// Power-of-two histogram of a numeric field, as bpftrace's hist().
    #[arg(long = "hist", value_name = "FIELD")]
    pub hist: Option<String>,
    /// Linear histogram of a numeric field, as bpftrace's lhist(): FIELD,MIN,MAX,STEP.
    #[arg(long = "lhist", value_name = "FIELD,MIN,MAX,STEP")]
    pub lhist: Option<String>,
    /// Count, min, avg, max, p50, p90, p99 of a numeric field.
    #[arg(long = "stats", value_name = "FIELD")]
    pub stats: Option<String>,
    /// Time from each START event to its END event (`sys:start..sys:end`), per thread or key;
    /// or a function's entry to its return (`u:PATH:FUNC`), per thread.
    #[arg(long = "latency", value_name = "START..END")]
    pub latency: Option<String>,
    /// Pair latency events by these fields instead of by thread (e.g. dev,sector).
    #[arg(long = "latency-key", value_name = "FIELDS", value_delimiter = ',')]
    pub latency_key: Vec<String>,
    /// Per process and syscall: calls, errors, total/min/avg/max time (perf trace -s).
    #[arg(long = "syscalls")]
    pub syscalls: bool,
    /// Print as JSON: one object per event line (with -g, its stack), or the aggregation's
    /// object when one is asked for.
    #[arg(long = "json")]
    pub json: bool,
}

/// One event the aggregation may see, with its fields (`true`: numeric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields {
    /// The event's full name, `system:name`.
    pub name: String,
    /// Its format fields (no `common_*`), each with whether it is numeric.
    pub fields: Vec<(String, bool)>,
}

/// Builds the aggregation `args` ask for, checked against `events`; `None` when none was asked.
///
/// `events` are the events the run opens (or the file holds); an empty list skips the checks.
/// `--by` alone counts; `--latency` alone makes a histogram of the durations.
pub fn build_aggregation(
    args: &AggregationArgs,
    events: &[EventFields],
) -> anyhow::Result<Option<Box<dyn Aggregation>>> {
    let check = FieldCheck { events };
    if args.syscalls {
        if args.count
            || !args.by.is_empty()
            || args.sum.is_some()
            || args.hist.is_some()
            || args.lhist.is_some()
            || args.stats.is_some()
            || args.latency.is_some()
        {
            bail!(
                "--syscalls prints its own table; it does not combine with --count, --by, --sum, --hist, --lhist, --stats or --latency"
            );
        }
        return Ok(Some(Box::new(SyscallSummary::default())));
    }
    if !args.latency_key.is_empty() && args.latency.is_none() {
        bail!("--latency-key pairs the events of --latency START..END; give --latency too");
    }
    let keys: Vec<KeySpec> = args.by.iter().map(|k| KeySpec::parse(k.trim())).collect();

    if let Some(spec) = &args.latency {
        let (start, end) = parse_latency(spec)?;
        let pair_events = check.named(&[start, end])?;
        for key in &keys {
            if let KeySpec::Field(name) = key {
                check.field_in(name, &pair_events[..1], "--by")?;
            }
        }
        let pair_keys: Vec<KeySpec> = args
            .latency_key
            .iter()
            .map(|k| KeySpec::parse(k.trim()))
            .collect();
        for key in &pair_keys {
            if let KeySpec::Field(name) = key {
                check.field_in(name, &pair_events, "--latency-key")?;
            }
        }
        let mut kinds = map_kinds(args, |flag, field| {
            if field == "latency" {
                Ok(ValueSource::Latency)
            } else {
                bail!(
                    "with --latency, {flag} takes `latency` (the duration of each pair, in ns), not `{field}`"
                )
            }
        })?;
        if kinds.is_empty() || kinds == [MapKind::Count] && !args.count {
            kinds.push(MapKind::Hist(ValueSource::Latency));
        }
        let maps = KeyedMaps::new(keys, kinds);
        return Ok(Some(Box::new(Latency::new(start, end, pair_keys, maps))));
    }

    for key in &keys {
        if let KeySpec::Field(name) = key {
            check.field_somewhere(name, "--by")?;
        }
    }
    let mut kinds = map_kinds(args, |flag, field| {
        check.numeric_field(field, flag)?;
        Ok(ValueSource::Field(field.to_string()))
    })?;
    if kinds.is_empty() {
        if keys.is_empty() {
            return Ok(None);
        }
        kinds.push(MapKind::Count);
    }
    Ok(Some(Box::new(EventMaps {
        maps: KeyedMaps::new(keys, kinds),
        lost: 0,
    })))
}

/// The tracepoints `--syscalls` / `--latency` need, to open when the user gave no `-e`.
pub fn events_needed(args: &AggregationArgs) -> Vec<String> {
    if args.syscalls {
        return vec![
            "raw_syscalls:sys_enter".to_string(),
            "raw_syscalls:sys_exit".to_string(),
        ];
    }
    match args.latency.as_deref().map(parse_latency) {
        Some(Ok((start, end))) => vec![start.to_string(), end.to_string()],
        _ => Vec::new(),
    }
}

/// `START..END` → the two event names.
fn parse_latency(spec: &str) -> anyhow::Result<(&str, &str)> {
    let Some((start, end)) = spec.split_once("..") else {
        bail!(
            "--latency takes START..END (two events, e.g. syscalls:sys_enter_read..syscalls:sys_exit_read), not `{spec}`"
        );
    };
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() || end.is_empty() {
        bail!("--latency `{spec}`: both START and END events are needed (START..END)");
    }
    if start == end {
        bail!("--latency `{spec}`: START and END must be different events");
    }
    Ok((start, end))
}

/// The maps `--count --sum --hist --lhist --stats` ask for, in that order; `source` turns a
/// flag's field into where the value comes from (and checks it).
fn map_kinds(
    args: &AggregationArgs,
    source: impl Fn(&str, &str) -> anyhow::Result<ValueSource>,
) -> anyhow::Result<Vec<MapKind>> {
    let mut kinds = Vec::new();
    if args.count {
        kinds.push(MapKind::Count);
    }
    if let Some(field) = &args.sum {
        kinds.push(MapKind::Sum(source("--sum", field.trim())?));
    }
    if let Some(field) = &args.hist {
        kinds.push(MapKind::Hist(source("--hist", field.trim())?));
    }
    if let Some(spec) = &args.lhist {
        let (field, hist) = parse_lhist(spec)?;
        kinds.push(MapKind::LinearHist(source("--lhist", field)?, hist));
    }
    if let Some(field) = &args.stats {
        kinds.push(MapKind::Stats(source("--stats", field.trim())?));
    }
    Ok(kinds)
}

/// `FIELD,MIN,MAX,STEP` → the field and an empty linear histogram.
fn parse_lhist(spec: &str) -> anyhow::Result<(&str, LinearHist)> {
    let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
    let [field, min, max, step] = parts[..] else {
        bail!("--lhist takes FIELD,MIN,MAX,STEP (e.g. count,0,4096,512), not `{spec}`");
    };
    let number = |what: &str, text: &str| -> anyhow::Result<i64> {
        text.parse()
            .with_context(|| format!("--lhist `{spec}`: {what} `{text}` is not an integer"))
    };
    let hist = LinearHist::new(
        number("MIN", min)?,
        number("MAX", max)?,
        number("STEP", step)?,
    )
    .map_err(|e| anyhow::anyhow!("--lhist `{spec}`: {e}"))?;
    Ok((field, hist))
}

/// Checks names against the events' formats; errors list close matches.
struct FieldCheck<'a> {
    events: &'a [EventFields],
}

impl<'a> FieldCheck<'a> {
    /// The events named `names` (every event in order; none when the list is unknown).
    fn named(&self, names: &[&str]) -> anyhow::Result<Vec<&'a EventFields>> {
        if self.events.is_empty() {
            return Ok(Vec::new());
        }
        names
            .iter()
            .map(|name| {
                self.events.iter().find(|e| e.name == *name).ok_or_else(|| {
                    let all: Vec<&str> = self.events.iter().map(|e| e.name.as_str()).collect();
                    let close = close_matches(name, all.iter().copied());
                    anyhow::anyhow!(
                        "--latency: event `{name}` is not traced{}",
                        suggestion(&close)
                    )
                })
            })
            .collect()
    }

    /// `field` must be a field (or built-in key) of every one of `events`.
    fn field_in(&self, field: &str, events: &[&EventFields], flag: &str) -> anyhow::Result<()> {
        for event in events {
            if !event.fields.iter().any(|(name, _)| name == field) {
                bail!(
                    "{flag} {field}: {} has no field `{field}`{}; its fields: {}",
                    event.name,
                    suggestion(&close_matches(field, field_names(event))),
                    field_list(event)
                );
            }
        }
        Ok(())
    }

    /// `field` must be a field of at least one event (the others key as `<unknown>`).
    fn field_somewhere(&self, field: &str, flag: &str) -> anyhow::Result<()> {
        let somewhere = self
            .events
            .iter()
            .any(|e| e.fields.iter().any(|(n, _)| n == field));
        if self.events.is_empty() || somewhere {
            return Ok(());
        }
        self.missing_everywhere(field, flag)
    }

    /// The error for a field no event has: close matches, and every event's fields.
    fn missing_everywhere(&self, field: &str, flag: &str) -> anyhow::Result<()> {
        let all_fields = self.events.iter().flat_map(field_names);
        let close = close_matches(field, all_fields);
        let lists: Vec<String> = self
            .events
            .iter()
            .map(|e| format!("{}: {}", e.name, field_list(e)))
            .collect();
        bail!(
            "{flag} {field}: no traced event has a field `{field}`{}; fields: {}",
            suggestion(&close),
            lists.join("; ")
        )
    }

    /// `field` must exist in at least one event and be numeric wherever it exists.
    fn numeric_field(&self, field: &str, flag: &str) -> anyhow::Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let having: Vec<&EventFields> = self
            .events
            .iter()
            .filter(|e| e.fields.iter().any(|(n, _)| n == field))
            .collect();
        if having.is_empty() {
            return self.missing_everywhere(field, flag);
        }
        for event in having {
            if event
                .fields
                .iter()
                .any(|(n, numeric)| n == field && !numeric)
            {
                bail!(
                    "{flag} {field}: `{field}` of {} is not a number (a string or an array); {flag} needs a numeric field — to group by it, use --by {field}",
                    event.name
                );
            }
        }
        Ok(())
    }
}

/// The field names of an event.
fn field_names(event: &EventFields) -> impl Iterator<Item = &str> {
    event.fields.iter().map(|(n, _)| n.as_str())
}

/// `a, b (string), c`.
fn field_list(event: &EventFields) -> String {
    let names: Vec<String> = event
        .fields
        .iter()
        .map(|(n, numeric)| {
            if *numeric {
                n.clone()
            } else {
                format!("{n} (string)")
            }
        })
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Candidates close to `wanted` (Jaro-Winkler ≥ 0.8, or one containing the other), best first.
fn close_matches<'s>(wanted: &str, candidates: impl Iterator<Item = &'s str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .filter_map(|c| {
            let score = strsim::jaro_winkler(wanted, c);
            (score >= 0.8 || c.contains(wanted) || wanted.contains(c)).then_some((score, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut names: Vec<String> = scored.into_iter().map(|(_, c)| c.to_string()).collect();
    names.dedup();
    names.truncate(5);
    names
}

/// `; did you mean a or b?` (empty without candidates).
fn suggestion(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = close.iter().map(|c| format!("`{c}`")).collect();
        format!(" (did you mean {}?)", quoted.join(" or "))
    }
}

/// The keyed maps of plain events (no pairing).
struct EventMaps {
    maps: KeyedMaps,
    lost: u64,
}

/// JSON of a plain print.
#[derive(Serialize)]
struct EventMapsJson {
    lost: u64,
    partial: bool,
    maps: Vec<maps::MapJson>,
}

impl EventSink for EventMaps {
    fn event(&mut self, event: &Event<'_>) {
        self.maps.add_event(event);
    }

    fn lost(&mut self, count: u64) {
        self.lost += count;
    }
}

impl Aggregation for EventMaps {
    fn print(&self, out: &mut dyn Write, json: bool) -> std::io::Result<()> {
        if json {
            let doc = EventMapsJson {
                lost: self.lost,
                partial: self.lost > 0,
                maps: self.maps.to_json(),
            };
            serde_json::to_writer(&mut *out, &doc)?;
            return writeln!(out);
        }
        write_partial_note(out, self.lost)?;
        self.maps.print_text(out)
    }

    fn reset(&mut self) {
        self.maps.clear();
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::event::Value;

    fn read_events() -> Vec<EventFields> {
        let fields = |list: &[(&str, bool)]| {
            list.iter()
                .map(|(n, numeric)| (n.to_string(), *numeric))
                .collect()
        };
        vec![
            EventFields {
                name: "syscalls:sys_enter_read".into(),
                fields: fields(&[
                    ("__syscall_nr", true),
                    ("fd", true),
                    ("buf", true),
                    ("count", true),
                ]),
            },
            EventFields {
                name: "syscalls:sys_exit_read".into(),
                fields: fields(&[("__syscall_nr", true), ("ret", true)]),
            },
            EventFields {
                name: "syscalls:sys_enter_openat".into(),
                fields: fields(&[
                    ("dfd", true),
                    ("filename", false),
                    ("flags", true),
                    ("mode", true),
                ]),
            },
        ]
    }

    fn error(args: AggregationArgs) -> String {
        match build_aggregation(&args, &read_events()) {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn print(agg: &dyn Aggregation) -> String {
        let mut out = Vec::new();
        agg.print(&mut out, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nothing_asked_is_none() {
        let args = AggregationArgs::default();
        assert!(build_aggregation(&args, &read_events()).unwrap().is_none());
        assert!(events_needed(&args).is_empty());
    }

    #[test]
    fn unknown_field_lists_close_matches_and_fields() {
        let msg = error(AggregationArgs {
            hist: Some("cont".into()),
            ..Default::default()
        });
        assert!(msg.contains("no traced event has a field `cont`"), "{msg}");
        assert!(msg.contains("did you mean `count`"), "{msg}");
        assert!(
            msg.contains("syscalls:sys_enter_read: __syscall_nr, fd, buf, count"),
            "{msg}"
        );
        let msg = error(AggregationArgs {
            count: true,
            by: vec!["fiel".into()],
            ..Default::default()
        });
        assert!(msg.contains("no traced event has a field `fiel`"), "{msg}");
        // A field of some of the events is fine: the others key as <unknown>.
        let args = AggregationArgs {
            count: true,
            by: vec!["filename".into()],
            ..Default::default()
        };
        assert!(build_aggregation(&args, &read_events()).unwrap().is_some());
    }

    #[test]
    fn string_field_to_hist_is_a_clear_error() {
        let msg = error(AggregationArgs {
            hist: Some("filename".into()),
            ..Default::default()
        });
        assert!(
            msg.contains("`filename` of syscalls:sys_enter_openat is not a number"),
            "{msg}"
        );
        assert!(msg.contains("use --by filename"), "{msg}");
    }

    #[test]
    fn bad_lhist_and_latency_specs() {
        let lhist = |spec: &str| {
            error(AggregationArgs {
                lhist: Some(spec.into()),
                ..Default::default()
            })
        };
        assert!(lhist("count,0,100").contains("FIELD,MIN,MAX,STEP"));
        assert!(lhist("count,0,x,10").contains("MAX `x` is not an integer"));
        assert!(lhist("count,0,25,10").contains("multiple of STEP"));
        let latency = |spec: &str| {
            error(AggregationArgs {
                latency: Some(spec.into()),
                ..Default::default()
            })
        };
        assert!(latency("syscalls:sys_enter_read").contains("START..END"));
        assert!(
            latency("syscalls:sys_enter_read..syscalls:sys_exit_reed")
                .contains("did you mean `syscalls:sys_exit_read`")
        );
        let msg = error(AggregationArgs {
            latency: Some("syscalls:sys_enter_read..syscalls:sys_exit_read".into()),
            stats: Some("count".into()),
            ..Default::default()
        });
        assert!(msg.contains("--stats takes `latency`"), "{msg}");
        let msg = error(AggregationArgs {
            syscalls: true,
            count: true,
            ..Default::default()
        });
        assert!(msg.contains("does not combine"), "{msg}");
    }

    #[test]
    fn events_needed_for_syscalls_and_latency() {
        let syscalls = AggregationArgs {
            syscalls: true,
            ..Default::default()
        };
        assert_eq!(
            events_needed(&syscalls),
            ["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"]
        );
        let latency = AggregationArgs {
            latency: Some("block:block_rq_issue..block:block_rq_complete".into()),
            ..Default::default()
        };
        assert_eq!(
            events_needed(&latency),
            ["block:block_rq_issue", "block:block_rq_complete"]
        );
    }

    #[test]
    fn by_alone_counts_and_lost_makes_it_partial() {
        let args = AggregationArgs {
            by: vec!["comm".into()],
            ..Default::default()
        };
        let mut agg = build_aggregation(&args, &read_events()).unwrap().unwrap();
        let fields = [("count", Value::Unsigned(10))];
        for comm in ["b", "a", "b"] {
            agg.event(&Event {
                name: "syscalls:sys_enter_read",
                time_ns: 0,
                cpu: 0,
                pid: 1,
                tid: 1,
                comm,
                cgroup: None,
                fields: &fields,
                stack: None,
            });
        }
        assert_eq!(print(agg.as_ref()), "@[a]: 1\n@[b]: 2\n");
        agg.lost(7);
        assert_eq!(
            print(agg.as_ref()),
            "# partial: 7 events lost (ring buffer full); the numbers below miss them\n@[a]: 1\n@[b]: 2\n"
        );
        let mut out = Vec::new();
        agg.print(&mut out, true).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["lost"], 7);
        assert_eq!(json["partial"], true);
        assert_eq!(
            json["maps"][0]["entries"][1]["key"],
            serde_json::json!(["b"])
        );
        agg.reset();
        assert_eq!(print(agg.as_ref()), "");
    }

    #[test]
    fn latency_alone_is_a_histogram_of_durations() {
        let args = AggregationArgs {
            latency: Some("syscalls:sys_enter_read..syscalls:sys_exit_read".into()),
            ..Default::default()
        };
        let mut agg = build_aggregation(&args, &read_events()).unwrap().unwrap();
        for (name, t) in [
            ("syscalls:sys_enter_read", 100),
            ("syscalls:sys_exit_read", 1124),
        ] {
            agg.event(&Event {
                name,
                time_ns: t,
                cpu: 0,
                pid: 1,
                tid: 1,
                comm: "c",
                cgroup: None,
                fields: &[],
                stack: None,
            });
        }
        assert_eq!(
            print(agg.as_ref()),
            "@: \n[1K, 2K)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n@unmatched_starts: 0\n@unmatched_ends: 0\n"
        );
    }
}
