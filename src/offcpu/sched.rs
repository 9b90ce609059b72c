//! The scheduler's story of each thread, read from a recording: when it went off the CPU (and
//! in which state), who woke it, when it came back, and the blocked intervals in between.
//!
//! Sources, in time order: `sched:sched_switch` samples (the switch-out: `prev_pid` is the
//! sampled thread, `prev_state` says why it left), `sched:sched_waking` (or `sched_wakeup`)
//! samples (the wakee's `pid`; the sample's own thread and stack are the waker's), and the
//! switch-in: a PERF_RECORD_SWITCH / SWITCH_CPU_WIDE record without the OUT bit (`kprof record
//! --off-cpu`, `perf record --switch-events`), or, when the file has none, `sched_switch`'s
//! `next_pid` (a system-wide `perf record -e sched:sched_switch -a`).
//!
//! When a thread comes back: at the `sched_switch` that names it `next_pid`, before the context
//! switch, as bpftrace and perf's own off-CPU tools measure and as the kernel stops counting the
//! wait (`/proc/PID/schedstat` run delay, the thread's CPU clock). The switch-in record is
//! written after the context switch and perf's own sched-in work: 10–20 µs later on a busy
//! virtual machine, on every interval (see: issue #10). So an interval ends at that
//! `sched_switch` sample when the recording has it: it is recorded when the thread switched from
//! is recorded too (a sibling thread, or every thread with `-a`); the record ends it otherwise.

use rustc_hash::FxHashMap as HashMap;

use anyhow::{Context, Result};
use kprof_perfdata::kinds::{misc, record as rk};
use kprof_perfdata::tracepoint::{EventFormat, FieldValue, RawLayout};
use kprof_perfdata::{PerfFile, Record};

/// Why a thread was off the CPU: `prev_state` of its switch-out, as the kernel's
/// `sched_switch` format prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockState {
    /// `S`: sleeping, interruptible (a timer, a pipe, a futex, poll...).
    Sleeping,
    /// `D`: uninterruptible, usually waiting for I/O.
    Uninterruptible,
    /// `R` (`R+`): preempted while runnable, waiting for a CPU.
    Runnable,
    /// Any other letter (`T` stopped, `t` traced, `P` parked, `I` idle kernel thread...).
    Other(char),
}

impl BlockState {
    /// The state `prev_state=TEXT` names (the text `perf script` prints: `S`, `D`, `R+`,
    /// `D|K`...), or, for a number (a format kprof could not render), the bits of Linux's
    /// `TASK_REPORT` states. `None` for a dead task (`X`, `Z`): it never comes back.
    pub fn from_printed(text: &str) -> Option<BlockState> {
        if let Ok(bits) = text.parse::<i64>() {
            return Self::from_bits(bits);
        }
        match text.chars().next() {
            Some('S') => Some(BlockState::Sleeping),
            Some('D') => Some(BlockState::Uninterruptible),
            Some('R') | None => Some(BlockState::Runnable),
            Some('X' | 'Z') => None,
            Some(c) => Some(BlockState::Other(c)),
        }
    }

    /// Linux's reported bits (include/linux/sched.h, `TASK_REPORT`): 0 running, 0x1 S, 0x2 D,
    /// 0x4 T, 0x8 t, 0x10 X, 0x20 Z, 0x40 P, 0x80 I; bit 0x100 (`TASK_REPORT_MAX`) preempted.
    fn from_bits(bits: i64) -> Option<BlockState> {
        const LETTERS: [char; 8] = ['S', 'D', 'T', 't', 'X', 'Z', 'P', 'I'];
        let low = bits & 0xff;
        match LETTERS
            .iter()
            .enumerate()
            .find(|&(i, _)| low & (1 << i) != 0)
        {
            None => Some(BlockState::Runnable),
            Some((_, &c)) => Self::from_printed(&c.to_string()),
        }
    }

    /// The letter, as `ps` and the tracepoint print it.
    pub fn letter(self) -> char {
        match self {
            BlockState::Sleeping => 'S',
            BlockState::Uninterruptible => 'D',
            BlockState::Runnable => 'R',
            BlockState::Other(c) => c,
        }
    }

    /// The frame that names the state in the views: `[S] sleeping` ...
    pub fn frame_name(self) -> String {
        match self {
            BlockState::Sleeping => "[S] sleeping".to_owned(),
            BlockState::Uninterruptible => "[D] uninterruptible (I/O)".to_owned(),
            BlockState::Runnable => "[R] runnable, waiting for a CPU".to_owned(),
            BlockState::Other(c) => format!("[{c}] off-CPU"),
        }
    }
}

/// One scheduler fact about one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedEvent {
    /// `tid` left the CPU in `state` (`None`: it died).
    Out {
        /// Time (ns).
        time: u64,
        /// Process.
        pid: u32,
        /// Thread.
        tid: u32,
        /// Why.
        state: Option<BlockState>,
    },
    /// `tid` came (back) onto a CPU.
    In {
        /// Time (ns).
        time: u64,
        /// Thread.
        tid: u32,
    },
    /// `waker_tid` woke `wakee`.
    Waking {
        /// Time (ns).
        time: u64,
        /// The thread woken.
        wakee: u32,
        /// The thread that woke it (0: an interrupt in the idle task).
        waker_tid: u32,
    },
}

/// A wake-up: when, and by which thread (its sample carries the waker's stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waker {
    /// Time of the `sched_waking` sample (ns).
    pub time: u64,
    /// The waking thread.
    pub tid: u32,
}

/// A thread off the CPU from a switch-out to its next switch-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Process of the blocked thread.
    pub pid: u32,
    /// The blocked thread.
    pub tid: u32,
    /// Switch-out time (ns): the time of its `sched_switch` sample.
    pub start: u64,
    /// Switch-in time (ns): the `sched_switch` sample naming the thread `next_pid` when
    /// recorded, else its switch-in record (later by the context switch; see the module docs).
    pub end: u64,
    /// Why it was off the CPU.
    pub state: BlockState,
    /// The last wake-up of the thread before it came back, if one was recorded.
    pub waker: Option<Waker>,
}

impl Interval {
    /// Blocked time in nanoseconds.
    pub fn blocked_ns(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Time spent runnable before the switch-in (run-queue latency): from the wake-up for a
    /// sleep, the whole interval for a preemption; `None` for a sleep whose wake-up is unknown.
    pub fn runq_ns(&self) -> Option<u64> {
        match (self.state, self.waker) {
            (BlockState::Runnable, _) => Some(self.blocked_ns()),
            (_, Some(w)) => Some(self.end.saturating_sub(w.time.max(self.start))),
            (_, None) => None,
        }
    }
}

/// The intervals of a recording, and what kept some unknown.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Closed intervals in switch-out order.
    pub intervals: Vec<Interval>,
    /// Intervals that cannot be known: a switch-out followed by another switch-out of the same
    /// thread (its switch-in was lost), or a switch-in after a switch-in (a switch-out lost).
    pub unknown: u64,
    /// Threads still off the CPU when the recording ended (not counted as blocked time).
    pub open_at_end: u64,
    /// Records the kernel dropped while recording (LOST, LOST_SAMPLES): scheduler events
    /// among them leave intervals unknown.
    pub lost_records: u64,
    /// Attr index of `sched:sched_switch`.
    pub switch_event: Option<usize>,
    /// Attr index of `sched:sched_waking` (or `sched_wakeup`).
    pub waking_event: Option<usize>,
}

impl Timeline {
    /// One line for every view: what the blocked time rests on and what is unknown.
    pub fn quality_note(&self) -> String {
        let mut note = format!(
            "{} blocked intervals; {} unknown (switch records missing)",
            self.intervals.len(),
            self.unknown
        );
        if self.lost_records > 0 {
            note.push_str(&format!(
                ", {} records lost while recording (blocked time around them is unknown)",
                self.lost_records
            ));
        } else {
            note.push_str(", 0 records lost");
        }
        if self.open_at_end > 0 {
            note.push_str(&format!(
                "; {} threads still off-CPU at the end (not counted)",
                self.open_at_end
            ));
        }
        note
    }
}

/// Per thread: what the thread is doing now, as far as the events tell.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// On a CPU (or runnable after creation) since a switch-in.
    Running,
    /// Off the CPU since a switch-out.
    Blocked {
        start: u64,
        pid: u32,
        state: BlockState,
        waker: Option<Waker>,
    },
    /// Dead.
    Dead,
}

/// Builds the intervals from events in time order (the idle task, tid 0, is left out).
pub fn build(events: impl IntoIterator<Item = SchedEvent>) -> Timeline {
    let mut timeline = Timeline::default();
    let mut phases: HashMap<u32, Phase> = HashMap::default();
    for event in events {
        match event {
            SchedEvent::Out { tid: 0, .. } | SchedEvent::In { tid: 0, .. } => {}
            SchedEvent::Out {
                time,
                pid,
                tid,
                state,
            } => {
                if let Some(Phase::Blocked { .. }) = phases.get(&tid) {
                    timeline.unknown += 1;
                }
                let phase = match state {
                    Some(state) => Phase::Blocked {
                        start: time,
                        pid,
                        state,
                        waker: None,
                    },
                    None => Phase::Dead,
                };
                phases.insert(tid, phase);
            }
            SchedEvent::In { time, tid } => {
                match phases.get(&tid) {
                    Some(&Phase::Blocked {
                        start,
                        pid,
                        state,
                        waker,
                    }) => timeline.intervals.push(Interval {
                        pid,
                        tid,
                        start,
                        end: time,
                        state,
                        waker,
                    }),
                    Some(Phase::Running) => timeline.unknown += 1,
                    // First switch-in of a new thread (or one after a reused tid's death).
                    Some(Phase::Dead) | None => {}
                }
                phases.insert(tid, Phase::Running);
            }
            SchedEvent::Waking {
                time,
                wakee,
                waker_tid,
            } => {
                if let Some(Phase::Blocked { waker, .. }) = phases.get_mut(&wakee) {
                    *waker = Some(Waker {
                        time,
                        tid: waker_tid,
                    });
                }
            }
        }
    }
    timeline.open_at_end = phases
        .values()
        .filter(|p| matches!(p, Phase::Blocked { .. }))
        .count() as u64;
    timeline
}

/// Per CPU, the last `sched_switch` sample whose switch-in record has not come yet: the thread
/// it names `next_pid` came back at that sample, before the context switch, and its switch-in
/// record on the same CPU, written after the switch, closes it (see the module docs).
#[derive(Debug, Default)]
struct SwitchesInFlight {
    by_cpu: HashMap<u32, InFlight>,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    time: u64,
    prev: u32,
    next: u32,
}

impl SwitchesInFlight {
    /// A `sched_switch` sample on `cpu`: `prev` leaves, `next` comes in.
    fn switch_sample(&mut self, cpu: u32, time: u64, prev: u32, next: u32) {
        self.by_cpu.insert(cpu, InFlight { time, prev, next });
    }

    /// A switch-out record of `tid` on `cpu`: the same switch's (written between its sample
    /// and the switch-in record) keeps the sample; any other means the sample is stale.
    fn switch_out_record(&mut self, cpu: u32, tid: u32) {
        if self.by_cpu.get(&cpu).is_some_and(|f| f.prev != tid) {
            self.by_cpu.remove(&cpu);
        }
    }

    /// The time `tid` came back on `cpu`, whose switch-in record says `record_time`: the
    /// sample of that same switch if it was recorded, else the record's own time.
    fn switch_in_time(&mut self, cpu: u32, tid: u32, record_time: u64) -> u64 {
        match self.by_cpu.remove(&cpu) {
            Some(f) if f.next == tid && f.time <= record_time => f.time,
            _ => record_time,
        }
    }
}

/// A tracepoint field as a number.
fn number(format: &EventFormat, raw: &[u8], layout: RawLayout, name: &str) -> Option<i64> {
    match format.field(name)?.value(raw, layout) {
        FieldValue::Signed(v) => Some(v),
        FieldValue::Unsigned(v) => i64::try_from(v).ok(),
        _ => None,
    }
}

/// `prev_state` as the format prints it (`S`, `R+`, ...).
fn printed_state(format: &EventFormat, raw: &[u8], layout: RawLayout) -> Option<BlockState> {
    let mut text = String::new();
    format.write_print(raw, layout, &mut text);
    let value = text
        .split(' ')
        .find_map(|token| token.strip_prefix("prev_state="))
        .unwrap_or("R");
    BlockState::from_printed(value)
}

/// Reads the scheduler events of `file` (in time order) and builds its timeline.
pub fn read(file: &PerfFile<'_>) -> Result<Timeline> {
    let Some(tracing) = file.tracing_data() else {
        anyhow::bail!(
            "the file has no tracepoint formats: record with `kprof record --off-cpu -g` \
             (or perf record -e sched:sched_switch,sched:sched_waking --switch-events -g)"
        );
    };
    let layout = tracing.layout;
    let mut switch_event = None;
    let mut waking_event = None;
    for index in 0..file.attrs().len() {
        let Some(format) = file.tracepoint_format(index) else {
            continue;
        };
        match (format.system.as_str(), format.name.as_str()) {
            ("sched", "sched_switch") => {
                switch_event.get_or_insert(index);
            }
            ("sched", "sched_waking") => waking_event = Some(index),
            ("sched", "sched_wakeup") => {
                waking_event.get_or_insert(index);
            }
            _ => {}
        }
    }
    let Some(switch_index) = switch_event else {
        anyhow::bail!(
            "the file has no sched:sched_switch samples: record with `kprof record --off-cpu -g`"
        );
    };
    let switch_format = file
        .tracepoint_format(switch_index)
        .context("sched_switch format")?;
    let waking_format = waking_event.and_then(|i| file.tracepoint_format(i));
    // Each event, and whether it is a switch-in told by `next_pid` (used only when the file
    // has no switch records, which tell it for per-task recordings too).
    let mut events: Vec<(SchedEvent, bool)> = Vec::new();
    let mut has_switch_records = false;
    let mut in_flight = SwitchesInFlight::default();
    let mut lost_in_ring = 0u64;
    let mut lost_counted = 0u64;
    let mut records = file.sorted_records()?;
    while let Some(record) = records.next_ref() {
        let record = record?;
        let kind = record.kind();
        let wanted = match kind {
            rk::SAMPLE => file.sample_head(&record).is_some_and(|h| {
                Some(h.attr_index) == switch_event || Some(h.attr_index) == waking_event
            }),
            rk::SWITCH | rk::SWITCH_CPU_WIDE => true,
            rk::LOST | rk::LOST_SAMPLES => true,
            _ => false,
        };
        if !wanted {
            continue;
        }
        let event = file.decode(&record)?;
        match event.record {
            Record::Sample(sample) => {
                let (Some(raw), Some(time)) = (sample.raw, sample.time) else {
                    continue;
                };
                let sample_tid = sample.tid.unwrap_or(0);
                if sample.attr_index == switch_index {
                    let pid = sample.pid.unwrap_or(0);
                    let prev = number(switch_format, raw, layout, "prev_pid");
                    let tid = prev
                        .and_then(|p| u32::try_from(p).ok())
                        .unwrap_or(sample_tid);
                    let state = printed_state(switch_format, raw, layout);
                    events.push((
                        SchedEvent::Out {
                            time,
                            pid,
                            tid,
                            state,
                        },
                        false,
                    ));
                    if let Some(next) = number(switch_format, raw, layout, "next_pid")
                        .and_then(|n| u32::try_from(n).ok())
                    {
                        if let Some(cpu) = sample.cpu {
                            in_flight.switch_sample(cpu, time, tid, next);
                        }
                        events.push((SchedEvent::In { time, tid: next }, true));
                    }
                } else if let Some(format) = waking_format {
                    if let Some(wakee) =
                        number(format, raw, layout, "pid").and_then(|p| u32::try_from(p).ok())
                    {
                        let waking = SchedEvent::Waking {
                            time,
                            wakee,
                            waker_tid: sample_tid,
                        };
                        events.push((waking, false));
                    }
                }
            }
            Record::Lost(lost) => lost_in_ring += lost.lost,
            Record::LostSamples(lost) => lost_counted += lost.lost,
            _ if kind == rk::SWITCH || kind == rk::SWITCH_CPU_WIDE => {
                has_switch_records = true;
                let (Some(time), Some(tid)) = (event.time, event.sample_id.tid) else {
                    continue;
                };
                let cpu = event.sample_id.cpu;
                if event.misc & misc::SWITCH_OUT != 0 {
                    if let Some(cpu) = cpu {
                        in_flight.switch_out_record(cpu, tid);
                    }
                } else {
                    let time = match cpu {
                        Some(cpu) => in_flight.switch_in_time(cpu, tid, time),
                        None => time,
                    };
                    events.push((SchedEvent::In { time, tid }, false));
                }
            }
            _ => {}
        }
    }
    let mut timeline = build(
        events
            .into_iter()
            .filter(|&(_, by_next_pid)| !(by_next_pid && has_switch_records))
            .map(|(event, _)| event),
    );
    // LOST and LOST_SAMPLES count the same drops (see the analysis): the larger is the loss.
    timeline.lost_records = lost_in_ring.max(lost_counted);
    timeline.switch_event = Some(switch_index);
    timeline.waking_event = waking_event;
    Ok(timeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(time: u64, tid: u32, state: &str) -> SchedEvent {
        SchedEvent::Out {
            time,
            pid: 7,
            tid,
            state: BlockState::from_printed(state),
        }
    }

    #[test]
    fn states_as_the_kernel_prints_them() {
        assert_eq!(BlockState::from_printed("S"), Some(BlockState::Sleeping));
        assert_eq!(
            BlockState::from_printed("D"),
            Some(BlockState::Uninterruptible)
        );
        assert_eq!(
            BlockState::from_printed("D|K"),
            Some(BlockState::Uninterruptible)
        );
        assert_eq!(BlockState::from_printed("R+"), Some(BlockState::Runnable));
        assert_eq!(BlockState::from_printed("R"), Some(BlockState::Runnable));
        assert_eq!(BlockState::from_printed("X"), None);
        assert_eq!(BlockState::from_printed("Z"), None);
        assert_eq!(BlockState::from_printed("I"), Some(BlockState::Other('I')));
        assert_eq!(
            BlockState::from_printed("2"),
            Some(BlockState::Uninterruptible)
        );
        assert_eq!(BlockState::from_printed("256"), Some(BlockState::Runnable));
        assert_eq!(BlockState::from_printed("0"), Some(BlockState::Runnable));
    }

    // See: issue #16 point 2
    #[test]
    fn intervals_run_from_switch_out_to_switch_in_with_the_last_waker() {
        let events = [
            SchedEvent::In { time: 5, tid: 1 },
            out(10, 1, "S"),
            SchedEvent::Waking {
                time: 40,
                wakee: 1,
                waker_tid: 2,
            },
            SchedEvent::In { time: 45, tid: 1 },
            out(50, 1, "R+"),
            SchedEvent::In { time: 60, tid: 1 },
            out(70, 1, "D"),
            SchedEvent::In { time: 100, tid: 1 },
            out(110, 1, "X"),
        ];
        let t = build(events);
        assert_eq!(t.unknown, 0);
        assert_eq!(t.open_at_end, 0);
        let got: Vec<_> = t
            .intervals
            .iter()
            .map(|i| {
                (
                    i.state.letter(),
                    i.blocked_ns(),
                    i.waker.map(|w| w.tid),
                    i.runq_ns(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ('S', 35, Some(2), Some(5)),
                ('R', 10, None, Some(10)),
                ('D', 30, None, None)
            ]
        );
    }

    // See: issue #10 (the preempted stack's time above bpftrace's)
    #[test]
    fn a_thread_comes_back_at_the_sched_switch_naming_it_not_at_its_later_switch_in_record() {
        let mut cpus = SwitchesInFlight::default();
        // CPU 0: thread 1 is preempted by its sibling 2 (both recorded), and 2 switches back
        // to 1: each switch-in record comes some microseconds after its `sched_switch`.
        cpus.switch_sample(0, 100, 1, 2);
        cpus.switch_out_record(0, 1);
        assert_eq!(cpus.switch_in_time(0, 2, 112), 100);
        cpus.switch_sample(0, 200, 2, 1);
        cpus.switch_out_record(0, 2);
        let back = cpus.switch_in_time(0, 1, 215);
        assert_eq!(back, 200);
        let t = build([
            SchedEvent::In { time: 5, tid: 1 },
            out(100, 1, "R+"),
            SchedEvent::In { time: back, tid: 1 },
        ]);
        assert_eq!(t.intervals[0].blocked_ns(), 100);
        // CPU 1: thread 3 comes back after a thread the recording does not follow (no sample):
        // its record's time.
        assert_eq!(cpus.switch_in_time(1, 3, 300), 300);
        // A sample for another thread, or made stale by another switch on that CPU, ends nothing.
        cpus.switch_sample(1, 400, 3, 4);
        assert_eq!(cpus.switch_in_time(1, 5, 410), 410);
        assert_eq!(cpus.switch_in_time(1, 4, 420), 420);
        cpus.switch_sample(1, 500, 3, 4);
        cpus.switch_out_record(1, 6);
        assert_eq!(cpus.switch_in_time(1, 4, 510), 510);
        // Only a sample of the same CPU, never one after the record.
        cpus.switch_sample(0, 600, 2, 7);
        assert_eq!(cpus.switch_in_time(1, 7, 610), 610);
        assert_eq!(cpus.switch_in_time(0, 7, 590), 590);
    }

    // See: issue #16 point 4
    #[test]
    fn lost_switches_make_intervals_unknown_not_wrong() {
        let events = [
            SchedEvent::In { time: 1, tid: 3 },
            out(10, 3, "S"),
            // The switch-in was lost: the next switch-out ends nothing.
            out(30, 3, "S"),
            SchedEvent::In { time: 40, tid: 3 },
            // A switch-out was lost.
            SchedEvent::In { time: 60, tid: 3 },
            out(70, 3, "S"),
        ];
        let t = build(events);
        assert_eq!(t.intervals.len(), 1);
        assert_eq!(t.intervals[0].blocked_ns(), 10);
        assert_eq!(t.unknown, 2);
        assert_eq!(t.open_at_end, 1);
    }
}
