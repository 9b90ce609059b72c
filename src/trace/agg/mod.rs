//! Aggregations of trace events: `--count`, `--sum`, `--hist`, `--lhist`, `--stats` keyed by
//! `--by`, plus the `--latency` and `--syscalls` summaries, printed as bpftrace 0.17 prints its maps.

use clap::Args;

use crate::trace::event::EventSink;

/// The aggregation flags of `kprof trace` (flattened into its arguments).
#[derive(Debug, Clone, Default, Args)]
pub struct AggregationArgs {
    /// Count events (per `--by` key).
    #[arg(long = "count")]
    pub count: bool,
    /// Group by these keys (comma list): comm, pid, tid, cpu, cgroup, event, any field, stack.
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
    /// Time from each START event to its END event (`sys:start..sys:end`), per thread or key.
    #[arg(long = "latency", value_name = "START..END")]
    pub latency: Option<String>,
    /// Pair latency events by these fields instead of by thread (e.g. dev,sector).
    #[arg(long = "latency-key", value_name = "FIELDS", value_delimiter = ',')]
    pub latency_key: Vec<String>,
    /// Per process and syscall: calls, errors, total/min/avg/max time (perf trace -s).
    #[arg(long = "syscalls")]
    pub syscalls: bool,
    /// Print aggregations as JSON.
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

/// An event sink that accumulates and prints a summary.
pub trait Aggregation: EventSink {
    /// Prints the aggregation (bpftrace's text, or JSON).
    fn print(&self, out: &mut dyn std::io::Write, json: bool) -> std::io::Result<()>;
    /// Forgets everything seen (for `--interval`).
    fn reset(&mut self);
}

/// Builds the aggregation `args` ask for, checked against `events`; `None` when none was asked.
pub fn build_aggregation(
    args: &AggregationArgs,
    events: &[EventFields],
) -> anyhow::Result<Option<Box<dyn Aggregation>>> {
    let _ = (args, events);
    Ok(None)
}

/// The tracepoints `--syscalls` / `--latency` need, to open when the user gave no `-e`.
pub fn events_needed(args: &AggregationArgs) -> Vec<String> {
    let _ = args;
    Vec::new()
}
