//! `kprof trace`'s flags (the command itself is `crate::cmd::trace`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::target::TargetArgs;
use crate::trace::agg::AggregationArgs;

const TRACE_EXAMPLES: &str = "\
EXAMPLES:
  kprof trace -e syscalls:sys_enter_openat -- ls /tmp       one line per event, its fields decoded
  kprof trace -e syscalls:sys_enter_write --filter 'count > 4096' -p 1234   big writes only
  kprof trace -e u:libc:malloc --filter 'arg0 >= 4096' --hist arg0 -- ./prog   big mallocs
  kprof trace -e 'block:*' -a --json -- sleep 5     every block tracepoint, one JSON object per line
  kprof trace -e sched:sched_switch -C 0 --interval 1s --count --by comm
  kprof trace -a -e syscalls:sys_enter_write --count --by cgroup    writes per container
  kprof trace -e syscalls:sys_enter_write --count --by stack -- ./prog   writes per call stack
  kprof trace -o io.data -g -e syscalls:sys_enter_write -- ./prog    keep events as perf.data
  kprof trace -i io.data --hist count               re-analyse later (perf script -i io.data too)
  kprof flame -i io.data --weight count > bytes.svg  who writes the bytes

Events are tracepoints (`kprof list 'syscalls:*'` shows them with their fields); globs (`*`, `?`)
expand from tracefs. Filters use the kernel's syntax (FIELD OP VALUE with ==, !=, <, <=, >, >=,
&, ~, joined by && and ||) and are checked against the event's fields first; the kernel
applies them to tracepoints, kprof itself to probes' arguments and to events read with -i. Ctrl-C ends the
trace and prints what was gathered. Events lost to a full ring buffer are counted exactly (each
event's kernel counter minus the events received) and printed. kprof adds nothing to tracefs (no set_event, no filter
files): events are opened with perf_event_open, filters set on their file descriptors.";

/// `kprof trace`.
#[derive(Debug, Args)]
#[command(after_help = TRACE_EXAMPLES)]
pub struct TraceArgs {
    /// Tracepoints to trace (repeatable, comma-separated): `syscalls:sys_enter_read`,
    /// globs such as `syscalls:sys_enter_*` or `block:*`; or probes: `u:PATH:FUNC`,
    /// `ur:PATH:FUNC`, `usdt:PATH:PROVIDER:NAME` (fields `arg0`.., `retval`).
    #[arg(short = 'e', long = "event", value_name = "EVENTS")]
    pub events: Vec<String>,
    #[command(flatten)]
    /// Whom to trace.
    pub target: TargetArgs,
    /// Filter on every traced event, e.g. `count > 4096 && fd == 3` or `comm == "dd"`: set in
    /// the kernel for tracepoints (events it rejects never reach kprof); evaluated by kprof on
    /// the arguments of probes (`arg0 > 100`) and on the events of a file (`-i`).
    #[arg(long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Record call stacks (frame pointers) with the events, symbolized once the trace ends.
    #[arg(short = 'g')]
    pub call_graph: bool,
    /// Also write the events to FILE as perf.data (`perf script -i FILE` and
    /// `kprof trace -i FILE` read it).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read the events from a perf.data file (kprof's or `perf record -e TRACEPOINT`'s)
    /// instead of tracing.
    #[arg(short = 'i', long = "input", value_name = "FILE",
          conflicts_with_all = ["output", "events", "call_graph", "interval"])]
    pub input: Option<PathBuf>,
    /// Print the aggregation every interval (`1s`, `500ms`), then start it afresh.
    #[arg(long = "interval", value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Ring buffer size per CPU in pages (a power of two).
    #[arg(short = 'm', long = "mmap-pages", value_name = "PAGES")]
    pub mmap_pages: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long = "duration", value_name = "SECS")]
    pub duration: Option<f64>,
    /// Print no notes.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[command(flatten)]
    /// Aggregations.
    pub agg: AggregationArgs,
}

/// Parses `1s`, `500ms`, `2m` or a bare number of seconds; at least 10 ms.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration such as 1s or 500ms"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use ms, s or m)")),
    };
    if !(seconds.is_finite() && seconds >= 0.01) {
        return Err(format!("`{text}`: the interval must be at least 10ms"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
