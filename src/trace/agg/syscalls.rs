//! `--syscalls`: per process and syscall, calls, errors and total/min/avg/max time, printed as
//! `perf trace -s` prints its summary (strace -c's numbers).
//!
//! Input: `raw_syscalls:sys_enter`/`sys_exit` (what [`super::events_needed`] opens;
//! names from the syscall number of this machine's architecture) or `syscalls:sys_enter_NAME`/
//! `sys_exit_NAME`. A call counts when its exit is seen (as perf trace counts); an error is a
//! negative return value. Calls whose entry was not seen (tracing started inside them) count
//! without a time; entries never exited (`exit_group`, tracing stopped inside them) are listed
//! as unfinished. Marks pass through a time-ordering buffer, as in `--latency`. The stddev
//! column is perf's: the standard deviation of the mean, as a percentage of the mean.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde::Serialize;

use super::aggregation::{Aggregation, write_partial_note};
use super::reorder::Reorder;
use crate::trace::event::{Event, EventSink};

/// An entry or exit, waiting in the ordering buffer.
#[derive(Debug, Clone)]
struct Mark {
    pid: i32,
    tid: i32,
    comm: String,
    syscall: String,
    /// `Some(ret)` for an exit.
    ret: Option<i64>,
}

/// Calls of one syscall by one process.
#[derive(Debug, Clone, Default)]
struct CallStats {
    calls: u64,
    errors: u64,
    /// Calls with both ends seen (the time columns cover these).
    timed: u64,
    total_ns: u64,
    min_ns: u64,
    max_ns: u64,
    /// Welford's running mean and sum of squared deviations, in ns.
    mean: f64,
    m2: f64,
}

impl CallStats {
    fn add_time(&mut self, ns: u64) {
        self.timed += 1;
        self.total_ns += ns;
        self.min_ns = if self.timed == 1 {
            ns
        } else {
            self.min_ns.min(ns)
        };
        self.max_ns = self.max_ns.max(ns);
        let delta = ns as f64 - self.mean;
        self.mean += delta / self.timed as f64;
        self.m2 += delta * (ns as f64 - self.mean);
    }

    /// perf's relative stddev: stddev of the mean over the mean, in percent.
    fn stddev_percent(&self) -> f64 {
        if self.timed < 2 || self.mean == 0.0 {
            return 0.0;
        }
        let variance = self.m2 / (self.timed - 1) as f64;
        let of_mean = (variance / self.timed as f64).sqrt();
        100.0 * of_mean / self.mean
    }
}

/// One process's calls.
#[derive(Debug, Clone, Default)]
struct Process {
    comm: String,
    calls: BTreeMap<String, CallStats>,
}

/// The `--syscalls` summary.
#[derive(Debug, Clone, Default)]
pub struct SyscallSummary {
    pending: Reorder<Mark>,
    /// Per thread: the entry in progress (time, pid, syscall).
    open: HashMap<i32, (u64, i32, String)>,
    processes: BTreeMap<i32, Process>,
    lost: u64,
}

/// JSON of one syscall row.
#[derive(Debug, Serialize)]
struct SyscallJson<'a> {
    name: &'a str,
    calls: u64,
    errors: u64,
    timed: u64,
    total_ns: u64,
    min_ns: u64,
    avg_ns: u64,
    max_ns: u64,
    stddev_percent: f64,
}

/// JSON of one process.
#[derive(Debug, Serialize)]
struct ProcessJson<'a> {
    pid: i32,
    comm: &'a str,
    calls: u64,
    errors: u64,
    unfinished: BTreeMap<&'a str, u64>,
    syscalls: Vec<SyscallJson<'a>>,
}

/// JSON of a `--syscalls` print.
#[derive(Debug, Serialize)]
struct SummaryJson<'a> {
    lost: u64,
    partial: bool,
    processes: Vec<ProcessJson<'a>>,
}

/// The syscall name of an entry or exit event and whether it is an exit; `None` for others.
fn classify(event: &Event<'_>) -> Option<(String, bool)> {
    let by_number = || {
        let nr = event.get("id")?.as_i128()?;
        let name = usize::try_from(nr)
            .ok()
            .and_then(syscalls::Sysno::new)
            .map_or_else(|| format!("syscall_{nr}"), |s| s.name().to_string());
        Some(name)
    };
    match event.name {
        "raw_syscalls:sys_enter" => Some((by_number()?, false)),
        "raw_syscalls:sys_exit" => Some((by_number()?, true)),
        name => {
            if let Some(call) = name.strip_prefix("syscalls:sys_enter_") {
                Some((call.to_string(), false))
            } else {
                name.strip_prefix("syscalls:sys_exit_")
                    .map(|call| (call.to_string(), true))
            }
        }
    }
}

impl SyscallSummary {
    fn apply(&mut self, time: u64, mark: Mark) {
        let Some(ret) = mark.ret else {
            // A new entry while one is open means the exit was lost: the old one is dropped.
            self.open.insert(mark.tid, (time, mark.pid, mark.syscall));
            return;
        };
        let process = self.processes.entry(mark.pid).or_default();
        process.comm = mark.comm;
        let stats = process.calls.entry(mark.syscall.clone()).or_default();
        stats.calls += 1;
        if ret < 0 {
            stats.errors += 1;
        }
        if let Some((start, _, syscall)) = self.open.remove(&mark.tid) {
            if syscall == mark.syscall {
                stats.add_time(time.saturating_sub(start));
            }
        }
    }

    fn settled(&self) -> SyscallSummary {
        let mut copy = self.clone();
        while let Some((time, mark)) = copy.pending.pop() {
            copy.apply(time, mark);
        }
        copy
    }

    /// Unfinished entries of `pid`, by syscall.
    fn unfinished(&self, pid: i32) -> BTreeMap<&str, u64> {
        let mut by_name = BTreeMap::new();
        for (_, open_pid, syscall) in self.open.values() {
            if *open_pid == pid {
                *by_name.entry(syscall.as_str()).or_insert(0) += 1;
            }
        }
        by_name
    }

    /// Processes in print order: most calls first, then by pid.
    fn process_order(&self) -> Vec<(i32, &Process)> {
        let mut list: Vec<_> = self
            .processes
            .iter()
            .map(|(p, proc_)| (*p, proc_))
            .collect();
        list.sort_by_key(|(pid, p)| {
            (
                std::cmp::Reverse(p.calls.values().map(|s| s.calls).sum::<u64>()),
                *pid,
            )
        });
        list
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_partial_note(out, self.lost)?;
        writeln!(out, "\n Summary of syscalls:\n")?;
        for (pid, process) in self.process_order() {
            let calls: u64 = process.calls.values().map(|s| s.calls).sum();
            let errors: u64 = process.calls.values().map(|s| s.errors).sum();
            writeln!(
                out,
                " {} ({pid}), {calls} calls, {errors} errors\n",
                process.comm
            )?;
            writeln!(
                out,
                "   syscall            calls  errors  total       min       avg       max       stddev"
            )?;
            writeln!(
                out,
                "                                     (msec)    (msec)    (msec)    (msec)        (%)"
            )?;
            writeln!(
                out,
                "   --------------- --------  ------ -------- --------- --------- ---------     ------"
            )?;
            let mut rows: Vec<_> = process.calls.iter().collect();
            rows.sort_by(|a, b| {
                b.1.total_ns
                    .cmp(&a.1.total_ns)
                    .then(b.1.calls.cmp(&a.1.calls))
                    .then(a.0.cmp(b.0))
            });
            for (name, s) in rows {
                let ms = |ns: u64| ns as f64 / 1e6;
                let avg = s.total_ns.checked_div(s.timed).unwrap_or(0);
                writeln!(
                    out,
                    "   {name:<15} {:>8} {:>6} {:>8.3} {:>9.3} {:>9.3} {:>9.3} {:>9.2}%",
                    s.calls,
                    s.errors,
                    ms(s.total_ns),
                    ms(s.min_ns),
                    ms(avg),
                    ms(s.max_ns),
                    s.stddev_percent()
                )?;
            }
            let untimed: u64 = process.calls.values().map(|s| s.calls - s.timed).sum();
            if untimed > 0 {
                writeln!(
                    out,
                    "   # {untimed} calls had begun before tracing started: counted, not timed"
                )?;
            }
            let unfinished = self.unfinished(pid);
            if !unfinished.is_empty() {
                let list: Vec<String> =
                    unfinished.iter().map(|(n, c)| format!("{n} {c}")).collect();
                writeln!(
                    out,
                    "   # unfinished (never returned while traced): {}",
                    list.join(", ")
                )?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let processes = self
            .process_order()
            .into_iter()
            .map(|(pid, process)| ProcessJson {
                pid,
                comm: &process.comm,
                calls: process.calls.values().map(|s| s.calls).sum(),
                errors: process.calls.values().map(|s| s.errors).sum(),
                unfinished: self.unfinished(pid),
                syscalls: process
                    .calls
                    .iter()
                    .map(|(name, s)| SyscallJson {
                        name,
                        calls: s.calls,
                        errors: s.errors,
                        timed: s.timed,
                        total_ns: s.total_ns,
                        min_ns: s.min_ns,
                        avg_ns: s.total_ns.checked_div(s.timed).unwrap_or(0),
                        max_ns: s.max_ns,
                        stddev_percent: s.stddev_percent(),
                    })
                    .collect(),
            })
            .collect();
        let doc = SummaryJson {
            lost: self.lost,
            partial: self.lost > 0,
            processes,
        };
        serde_json::to_writer(&mut *out, &doc)?;
        writeln!(out)
    }
}

impl EventSink for SyscallSummary {
    fn event(&mut self, event: &Event<'_>) {
        let Some((syscall, is_exit)) = classify(event) else {
            return;
        };
        let ret = if is_exit {
            Some(
                event
                    .get("ret")
                    .and_then(|v| v.as_i128())
                    .and_then(|r| i64::try_from(r).ok())
                    .unwrap_or(0),
            )
        } else {
            None
        };
        let mark = Mark {
            pid: event.pid,
            tid: event.tid,
            comm: event.comm.to_string(),
            syscall,
            ret,
        };
        self.pending.push(event.time_ns, mark);
        while let Some((time, mark)) = self.pending.pop_ready() {
            self.apply(time, mark);
        }
    }

    fn lost(&mut self, count: u64) {
        self.lost += count;
    }
}

impl Aggregation for SyscallSummary {
    fn print(&self, out: &mut dyn Write, json: bool) -> std::io::Result<()> {
        let settled = self.settled();
        if json {
            settled.write_json(out)
        } else {
            settled.write_text(out)
        }
    }

    fn reset(&mut self) {
        while let Some((time, mark)) = self.pending.pop() {
            self.apply(time, mark);
        }
        self.processes.clear();
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::event::Value;

    fn feed(s: &mut SyscallSummary, name: &str, time: u64, tid: i32, fields: &[(&str, Value<'_>)]) {
        s.event(&Event {
            name,
            time_ns: time,
            cpu: 0,
            pid: 100,
            tid,
            comm: "w",
            cgroup: None,
            fields,
            stack: None,
        });
    }

    #[test]
    fn counts_calls_errors_and_times() {
        let mut s = SyscallSummary::default();
        let read = [("id", Value::Signed(0))];
        let ok = [("id", Value::Signed(0)), ("ret", Value::Signed(10))];
        let err = [("id", Value::Signed(0)), ("ret", Value::Signed(-11))];
        // Thread 1: read 1 ms ok, read 3 ms error; thread 2: read 2 ms ok (exit drained first).
        feed(&mut s, "raw_syscalls:sys_enter", 0, 1, &read);
        feed(&mut s, "raw_syscalls:sys_exit", 1_000_000, 1, &ok);
        feed(&mut s, "raw_syscalls:sys_exit", 7_000_000, 2, &ok);
        feed(&mut s, "raw_syscalls:sys_enter", 5_000_000, 2, &read);
        feed(&mut s, "raw_syscalls:sys_enter", 2_000_000, 1, &read);
        feed(&mut s, "raw_syscalls:sys_exit", 5_000_000, 1, &err);
        // A named exit_group entry that never returns, and an exit whose entry was not seen.
        feed(
            &mut s,
            "syscalls:sys_enter_exit_group",
            8_000_000,
            1,
            &[("__syscall_nr", Value::Signed(231))],
        );
        feed(
            &mut s,
            "syscalls:sys_exit_close",
            9_000_000,
            3,
            &[("ret", Value::Signed(0))],
        );
        let mut out = Vec::new();
        s.print(&mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" w (100), 4 calls, 1 errors\n"), "{text}");
        assert!(
            text.contains("   read                   3      1    6.000     1.000     2.000     3.000     28.87%\n"),
            "{text}"
        );
        assert!(
            text.contains("   close                  1      0    0.000"),
            "{text}"
        );
        assert!(
            text.contains("# 1 calls had begun before tracing started"),
            "{text}"
        );
        assert!(
            text.contains("unfinished (never returned while traced): exit_group 1"),
            "{text}"
        );

        let mut out = Vec::new();
        s.print(&mut out, true).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let read = &json["processes"][0]["syscalls"][1];
        assert_eq!(read["name"], "read");
        assert_eq!(
            (read["calls"].as_u64(), read["errors"].as_u64()),
            (Some(3), Some(1))
        );
        assert_eq!(read["total_ns"], 6_000_000);
        s.reset();
        let mut out = Vec::new();
        s.print(&mut out, true).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["processes"], serde_json::json!([]));
    }
}
