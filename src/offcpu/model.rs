//! Off-CPU, off-wake and wall-clock profiles: a symbolized [`Profile`] and its scheduler
//! [`Timeline`] turned into a new [`Profile`] whose weights are nanoseconds, so that every
//! output (flame graph, report, diff, export) reads them as it reads any profile.
//!
//! Stacks of the derived profile, root first (the outputs add the thread or process root):
//! - off-CPU: `[S] sleeping` (the state, see [`BlockState::frame_name`]), then the stack of the
//!   switch-out (user frames, then the kernel path into `schedule`);
//! - off-wake ([`View::Wakers`]): the same, then `--`, then the waker's stack leaf first (the
//!   wake-up next to the blocked leaf, as in Brendan Gregg's off-wake flame graphs), then the
//!   waker thread's name;
//! - wall-clock: `[on-CPU]` and the sampled stack for on-CPU samples (a clock event's period in
//!   ns; another event's sample counts 1/frequency), off-CPU stacks as above.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use kprof_flamegraph::{Folder, FrameKind as FoldKind};

use super::sched::{BlockState, Timeline};
use crate::cli::CountMode;
use crate::profile::fold::{Naming, RootBy};
use crate::profile::{
    Event, Frame, FrameId, FrameKind, Profile, Sample, StackId, StackNode, ThreadId,
};

/// Which derived profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Blocked time on the switch-out stacks.
    OffCpu,
    /// Blocked time on the switch-out stacks with the waker's stack on top.
    Wakers,
    /// On-CPU time plus blocked time, per thread.
    Wall,
}

/// Event index of blocked time in a derived profile.
pub const OFF_CPU_EVENT: u16 = 0;
/// Event index of on-CPU time in a wall-clock profile.
pub const ON_CPU_EVENT: u16 = 1;
/// Name of the blocked-time event (pprof sample type; nanoseconds).
pub const OFF_CPU_NAME: &str = "off-cpu";
/// Name of the on-CPU time event of a wall-clock profile (nanoseconds).
pub const ON_CPU_NAME: &str = "on-cpu";

/// How on-CPU samples become time in a wall-clock profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnCpu {
    /// The sampled event (index into the source profile's events).
    pub event: u16,
    /// `None`: the period is nanoseconds (`cpu-clock`, `task-clock`); else each sample stands
    /// for this many nanoseconds (1 s / the sampling frequency).
    pub ns_per_sample: Option<u64>,
}

/// Builds the derived profile's stacks over the source profile's frames.
struct Builder<'p> {
    base: &'p Profile,
    out: Profile,
    stack_ids: HashMap<(Option<StackId>, FrameId), StackId>,
    named: HashMap<String, FrameId>,
}

impl<'p> Builder<'p> {
    fn new(base: &'p Profile) -> Self {
        let out = Profile {
            frames: base.frames.clone(),
            stacks: Vec::new(),
            threads: base.threads.clone(),
            events: Vec::new(),
            samples: Vec::new(),
            meta: base.meta.clone(),
            cgroups: base.cgroups.clone(),
        };
        Builder {
            base,
            out,
            stack_ids: HashMap::default(),
            named: HashMap::default(),
        }
    }

    /// A frame kprof adds (a state, `--`, a waker's name).
    fn named_frame(&mut self, name: &str) -> FrameId {
        if let Some(&id) = self.named.get(name) {
            return id;
        }
        let id = self.out.frames.len() as FrameId;
        self.out.frames.push(Frame {
            function: Arc::from(name),
            module: Arc::from("[kprof]"),
            file: None,
            line: None,
            kind: FrameKind::User,
            inlined: false,
            module_offset: 0,
        });
        self.named.insert(name.to_owned(), id);
        id
    }

    fn push(&mut self, parent: Option<StackId>, frame: FrameId) -> StackId {
        let next = self.out.stacks.len() as StackId;
        *self.stack_ids.entry((parent, frame)).or_insert_with(|| {
            self.out.stacks.push(StackNode { parent, frame });
            next
        })
    }

    /// `stack` of the source profile on top of `parent`, root first.
    fn push_root_first(
        &mut self,
        mut parent: Option<StackId>,
        stack: Option<StackId>,
    ) -> Option<StackId> {
        let frames: Vec<FrameId> = self.base.frames_leaf_first(stack).collect();
        for &frame in frames.iter().rev() {
            parent = Some(self.push(parent, frame));
        }
        parent
    }

    /// `stack` of the source profile on top of `parent`, leaf first (a waker's stack).
    fn push_leaf_first(
        &mut self,
        mut parent: Option<StackId>,
        stack: Option<StackId>,
    ) -> Option<StackId> {
        let frames: Vec<FrameId> = self.base.frames_leaf_first(stack).collect();
        for frame in frames {
            parent = Some(self.push(parent, frame));
        }
        parent
    }
}

/// The samples of `event` by (time, tid): a switch-out or a wake-up, found again by the
/// scheduler timeline.
fn samples_by_time_and_tid(
    profile: &Profile,
    event: Option<usize>,
) -> HashMap<(u64, u32), (ThreadId, Option<StackId>)> {
    let Some(event) = event.and_then(|e| u16::try_from(e).ok()) else {
        return HashMap::default();
    };
    profile
        .samples
        .iter()
        .filter(|s| s.event == event)
        .filter_map(|s| {
            let tid = profile.threads.get(s.thread as usize)?.tid;
            Some(((s.time, tid), (s.thread, s.stack)))
        })
        .collect()
}

/// The derived profile of `view` (see the module docs). Intervals whose switch-out sample the
/// source profile does not hold (left out by `--comm`, `--pid`, `--tid`) are left out.
pub fn derive(base: &Profile, timeline: &Timeline, view: View, on_cpu: Option<OnCpu>) -> Profile {
    let switch_outs = samples_by_time_and_tid(base, timeline.switch_event);
    let wakings = match view {
        View::Wakers => samples_by_time_and_tid(base, timeline.waking_event),
        _ => HashMap::default(),
    };
    let mut b = Builder::new(base);
    let mut off = Event {
        name: OFF_CPU_NAME.to_owned(),
        sample_count: 0,
        total_period: 0,
    };
    let mut samples: Vec<Sample> = Vec::new();
    for interval in &timeline.intervals {
        let Some(&(thread, stack)) = switch_outs.get(&(interval.start, interval.tid)) else {
            continue;
        };
        let weight = interval.blocked_ns();
        if weight == 0 {
            continue;
        }
        let state = b.named_frame(&interval.state.frame_name());
        let state = b.push(None, state);
        let mut leaf = b.push_root_first(Some(state), stack);
        if view == View::Wakers && interval.state != BlockState::Runnable {
            let separator = b.named_frame("--");
            leaf = Some(b.push(leaf, separator));
            let waker = interval
                .waker
                .and_then(|w| wakings.get(&(w.time, w.tid)).copied());
            match waker {
                Some((waker_thread, waker_stack)) => {
                    leaf = b.push_leaf_first(leaf, waker_stack);
                    let name = base
                        .threads
                        .get(waker_thread as usize)
                        .map_or_else(|| "[unknown]".to_owned(), |t| t.name.replace(' ', "_"));
                    let name = b.named_frame(&name);
                    leaf = Some(b.push(leaf, name));
                }
                None => {
                    let unknown = b.named_frame("[waker not recorded]");
                    leaf = Some(b.push(leaf, unknown));
                }
            }
        }
        off.sample_count += 1;
        off.total_period = off.total_period.saturating_add(weight);
        samples.push(Sample {
            thread,
            event: OFF_CPU_EVENT,
            time: interval.start,
            period: weight,
            stack: leaf,
            cpu: None,
            broken_callchain: false,
            cgroup: None,
        });
    }
    b.out.events.push(off);
    if let (View::Wall, Some(on_cpu)) = (view, on_cpu) {
        let mut on = Event {
            name: ON_CPU_NAME.to_owned(),
            sample_count: 0,
            total_period: 0,
        };
        let marker = b.named_frame("[on-CPU]");
        let marker = b.push(None, marker);
        for sample in base.samples.iter().filter(|s| s.event == on_cpu.event) {
            let weight = on_cpu.ns_per_sample.unwrap_or(sample.period);
            let leaf = b.push_root_first(Some(marker), sample.stack);
            on.sample_count += 1;
            on.total_period = on.total_period.saturating_add(weight);
            samples.push(Sample {
                event: ON_CPU_EVENT,
                period: weight,
                stack: leaf,
                ..*sample
            });
        }
        b.out.events.push(on);
    }
    samples.sort_by_key(|s| s.time);
    b.out.samples = samples;
    b.out
}

/// Folds a derived profile: frames of blocked time get [`FoldKind::OffCpu`] (blue under the
/// `kind` palette), on-CPU frames their own kind.
pub fn fold(profile: &Profile, count: CountMode, naming: Naming) -> Folder {
    let mut weights: HashMap<(ThreadId, Option<StackId>, u16), u64> = HashMap::default();
    for sample in &profile.samples {
        let weight = match count {
            CountMode::Period => sample.period,
            CountMode::Samples => 1,
        };
        *weights
            .entry((sample.thread, sample.stack, sample.event))
            .or_insert(0) += weight;
    }
    let mut entries: Vec<_> = weights.into_iter().collect();
    entries.sort_unstable_by_key(|&(key, _)| key);
    let mut folder = Folder::new();
    let mut stack: Vec<(String, FoldKind)> = Vec::new();
    for ((thread, leaf, event), weight) in entries {
        stack.clear();
        for frame_id in profile.frames_leaf_first(leaf) {
            let frame = &profile.frames[frame_id as usize];
            let name = match (&frame.file, frame.line, naming.lines) {
                (Some(file), Some(line), true) => {
                    let base = file.rsplit('/').next().unwrap_or(file);
                    format!("{} ({base}:{line})", frame.function)
                }
                _ => frame.function.to_string(),
            };
            let kind = if event == OFF_CPU_EVENT {
                FoldKind::OffCpu
            } else {
                match (frame.kind, frame.inlined) {
                    (FrameKind::Kernel, _) => FoldKind::Kernel,
                    (FrameKind::Jit, _) => FoldKind::Jit,
                    (_, true) => FoldKind::Inlined,
                    (FrameKind::User, false) => FoldKind::User,
                    (FrameKind::Unknown, false) => FoldKind::Unknown,
                }
            };
            stack.push((name, kind));
        }
        let root = profile.threads.get(thread as usize).map_or_else(
            || "[unknown]".to_owned(),
            |t| {
                let comm = t.name.replace(' ', "_");
                match naming.root {
                    RootBy::Comm | RootBy::Cgroup => comm,
                    RootBy::Process => format!("{comm}-{}", t.pid_signed()),
                    RootBy::Thread => format!("{comm}-{}/{}", t.pid_signed(), t.tid_signed()),
                }
            },
        );
        let root_kind = if event == OFF_CPU_EVENT {
            FoldKind::OffCpu
        } else {
            FoldKind::User
        };
        stack.push((root, root_kind));
        stack.reverse();
        let named: Vec<(&str, FoldKind)> = stack.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        folder.add_with_kinds(&named, weight);
    }
    folder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offcpu::sched::{Interval, Waker};
    use crate::profile::Thread;

    fn frame(name: &str, kind: FrameKind) -> Frame {
        Frame {
            function: Arc::from(name),
            module: Arc::from("m"),
            file: None,
            line: None,
            kind,
            inlined: false,
            module_offset: 0,
        }
    }

    /// Thread 0 (tid 10) blocks in `read` → `schedule`; thread 1 (tid 11) wakes it from
    /// `writer` → `try_to_wake_up`; thread 0 also has two cpu-clock samples.
    fn source() -> (Profile, Timeline) {
        let frames = vec![
            frame("main", FrameKind::User),
            frame("read", FrameKind::User),
            frame("schedule", FrameKind::Kernel),
            frame("writer", FrameKind::User),
            frame("try_to_wake_up", FrameKind::Kernel),
        ];
        let stacks = vec![
            StackNode {
                parent: None,
                frame: 0,
            },
            StackNode {
                parent: Some(0),
                frame: 1,
            },
            StackNode {
                parent: Some(1),
                frame: 2,
            },
            StackNode {
                parent: None,
                frame: 3,
            },
            StackNode {
                parent: Some(3),
                frame: 4,
            },
        ];
        let thread = |tid: u32, name: &str| Thread {
            pid: 10,
            tid,
            name: name.to_owned(),
            process_name: "p".to_owned(),
        };
        let sample = |thread, event, time, period, stack| Sample {
            thread,
            event,
            time,
            period,
            stack: Some(stack),
            cpu: None,
            broken_callchain: false,
            cgroup: None,
        };
        let events = ["cpu-clock", "sched:sched_switch", "sched:sched_waking"]
            .iter()
            .map(|n| Event {
                name: (*n).to_owned(),
                sample_count: 0,
                total_period: 0,
            })
            .collect();
        let profile = Profile {
            frames,
            stacks,
            threads: vec![thread(10, "reader"), thread(11, "writer")],
            events,
            samples: vec![
                sample(0, 0, 50, 250_000, 1),
                sample(0, 0, 60, 250_000, 0),
                sample(0, 1, 100, 1, 2),
                sample(1, 2, 400, 1, 4),
            ],
            meta: Default::default(),
            cgroups: Default::default(),
        };
        let timeline = Timeline {
            intervals: vec![Interval {
                pid: 10,
                tid: 10,
                start: 100,
                end: 1_100,
                state: BlockState::Sleeping,
                waker: Some(Waker { time: 400, tid: 11 }),
            }],
            switch_event: Some(1),
            waking_event: Some(2),
            ..Timeline::default()
        };
        (profile, timeline)
    }

    fn folded(profile: &Profile) -> String {
        let naming = Naming {
            lines: false,
            root: RootBy::Comm,
        };
        let mut out = Vec::new();
        fold(profile, CountMode::Period, naming)
            .write_folded(&mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    // See: issue #16 point 3
    #[test]
    fn the_three_views_stack_blocked_time_as_documented() {
        let (profile, timeline) = source();
        let off = derive(&profile, &timeline, View::OffCpu, None);
        assert_eq!(
            folded(&off),
            "reader;[S] sleeping;main;read;schedule 1000\n"
        );
        assert_eq!(off.events[0].name, "off-cpu");
        let wake = derive(&profile, &timeline, View::Wakers, None);
        assert_eq!(
            folded(&wake),
            "reader;[S] sleeping;main;read;schedule;--;try_to_wake_up;writer;writer 1000\n"
        );
        let on_cpu = OnCpu {
            event: 0,
            ns_per_sample: None,
        };
        let wall = derive(&profile, &timeline, View::Wall, Some(on_cpu));
        assert_eq!(
            folded(&wall),
            "reader;[S] sleeping;main;read;schedule 1000\n\
             reader;[on-CPU];main 250000\n\
             reader;[on-CPU];main;read 250000\n"
        );
        assert_eq!(wall.events[1].total_period, 500_000);
    }
}
