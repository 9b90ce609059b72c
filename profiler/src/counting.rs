//! Counting mode (`kprof stat`): opening counters (no sampling, no rings) for a command,
//! processes, threads, CPUs or a cgroup, reading them at intervals and at the end, and the
//! arithmetic perf stat applies to the readings (multiplexing scale, run-to-run statistics).
//!
//! Events are parsed by [`crate::events`] and opened through the crate-private `sys`, as for
//! recording.
//! The opening logic (groups, unsupported events, the user-only fallback) reaches the kernel
//! through [`CounterSyscalls`], so it is tested with a fake kernel.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use perf_event_open_sys::bindings as b;

use crate::cgroup;
use crate::error::{Error, Result};
use crate::events::{self, EventAttr, EventKind, EventSpec};
use crate::perms;
use crate::session::StopReason;
use crate::sys::{self, EventScope, PerfEventFd, SignalPipe};
use crate::target::{self, Target, Workload};

/// perf stat's default events, in its order (`task-clock` becomes `cpu-clock` for `-a`/`-C`).
pub const DEFAULT_EVENTS: [&str; 8] = [
    "task-clock",
    "context-switches",
    "cpu-migrations",
    "page-faults",
    "cycles",
    "instructions",
    "branches",
    "branch-misses",
];

/// The smallest `-I` perf stat accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// How often the loop wakes without a signal, to check the workload, tasks and the clock.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What to count and for whom. Build with `Default` and set fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CountOptions {
    /// `-e` lists, each possibly with `{a,b}` groups. Default: empty, meaning perf stat's
    /// defaults ([`DEFAULT_EVENTS`]).
    pub events: Vec<String>,
    /// Whom to count. Default: an empty command (an error: give one).
    pub target: Target,
    /// `-C LIST`: only these CPUs (implies system-wide). Default: all online CPUs.
    pub cpus: Option<Vec<u32>>,
    /// `-a`: every task on the CPUs. Default: false.
    pub system_wide: bool,
    /// `-G PATH`: only tasks in this cgroup (implies system-wide). Default: none.
    pub cgroup: Option<String>,
    /// `-I`: report the counts of every interval this long. Default: none.
    pub interval: Option<Duration>,
}

/// One counter as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The name perf stat would print (see [`events::GroupMember::display`]).
    pub name: String,
    /// The event.
    pub spec: EventSpec,
    /// Index of its `-e` group.
    pub group: usize,
}

/// A counter's value with the times it was enabled and actually counting (nanoseconds), summed
/// over its fds: what `read(2)` returns with `TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// The raw count.
    pub value: u64,
    /// Time enabled.
    pub enabled: u64,
    /// Time running (less than enabled when the kernel multiplexed the counter).
    pub running: u64,
}

impl Reading {
    /// Adds another fd's reading.
    pub fn add(&mut self, other: &Reading) {
        self.value = self.value.saturating_add(other.value);
        self.enabled = self.enabled.saturating_add(other.enabled);
        self.running = self.running.saturating_add(other.running);
    }

    /// What happened since `earlier` (counters only grow).
    pub fn since(&self, earlier: &Reading) -> Reading {
        Reading {
            value: self.value.saturating_sub(earlier.value),
            enabled: self.enabled.saturating_sub(earlier.enabled),
            running: self.running.saturating_sub(earlier.running),
        }
    }

    /// The count perf stat prints: `None` when the counter never ran (`<not counted>`), the raw
    /// value when it ran all the time it was enabled, otherwise the value extrapolated to the
    /// whole enabled time, `value × enabled / running`, rounded (perf's
    /// `perf_counts_values__scale`).
    pub fn scaled(&self) -> Option<f64> {
        if self.running == 0 || self.enabled == 0 {
            return None;
        }
        let value = self.value as f64;
        if self.running < self.enabled {
            Some((value * self.enabled as f64 / self.running as f64 + 0.5).floor())
        } else {
            Some(value)
        }
    }

    /// True when the kernel multiplexed the counter (it ran for part of the time enabled).
    pub fn multiplexed(&self) -> bool {
        self.running != self.enabled
    }

    /// Decodes `read(2)` output for `TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING`: three u64.
    pub fn from_bytes(bytes: &[u8]) -> Option<Reading> {
        let word = |i: usize| {
            bytes
                .get(i * 8..i * 8 + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_ne_bytes)
        };
        Some(Reading {
            value: word(0)?,
            enabled: word(1)?,
            running: word(2)?,
        })
    }
}

/// One counter's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterResult {
    /// The counter (after any user-only fallback, which adds `:u` to its name as perf does).
    pub counter: Counter,
    /// False when this machine cannot count the event (perf's `<not supported>`).
    pub supported: bool,
    /// The reading summed over every CPU and task (zero when unsupported).
    pub reading: Reading,
}

/// The counts of one `-I` interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Time from enabling the counters to the end of this interval.
    pub elapsed: Duration,
    /// What each counter counted during the interval.
    pub counters: Vec<CounterResult>,
}

/// What one counting run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CountSummary {
    /// Every counter in `-e` order, summed over the whole run.
    pub counters: Vec<CounterResult>,
    /// Wall time from enabling the counters to the end (perf's "seconds time elapsed").
    pub elapsed: Duration,
    /// The command's exit code (128 + signal when killed); `None` without a command.
    pub exit_status: Option<i32>,
    /// The command's user and system CPU time (from its rusage); `None` without a command.
    pub cpu_times: Option<(Duration, Duration)>,
    /// Why counting stopped.
    pub stopped_by: StopReason,
    /// True when counting system-wide (`-a`, `-C` or `-G`).
    pub system_wide: bool,
}

/// Running mean and variance of per-run values (Welford's method, as perf's `struct stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunStats {
    n: u64,
    mean: f64,
    m2: f64,
}

impl RunStats {
    /// Adds one run's value.
    pub fn push(&mut self, value: f64) {
        self.n += 1;
        let delta = value - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The mean (0 without values).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The sample standard deviation of the values (n − 1 in the denominator; 0 below 2 values).
    pub fn stddev(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        (self.m2 / (self.n - 1) as f64).sqrt()
    }

    /// The standard deviation of the mean, `stddev / √n`: what perf stat `-r` prints as
    /// `+-` (its `stddev_stats`).
    pub fn stddev_of_mean(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        self.stddev() / (self.n as f64).sqrt()
    }

    /// [`RunStats::stddev_of_mean`] as a percentage of the mean (0 for a zero mean): perf
    /// stat's `( +- x.xx% )`.
    pub fn relative_percent(&self) -> f64 {
        if self.mean == 0.0 {
            return 0.0;
        }
        100.0 * self.stddev_of_mean() / self.mean
    }
}

/// The counters asked for by `events` (perf stat's defaults when empty), in order.
pub fn parse_counters(events: &[String], system_wide: bool) -> Result<Vec<Counter>> {
    let defaults;
    let lists: &[String] = if events.is_empty() {
        defaults = DEFAULT_EVENTS
            .iter()
            .map(|e| {
                if system_wide && *e == "task-clock" {
                    "cpu-clock".to_owned()
                } else {
                    (*e).to_owned()
                }
            })
            .collect::<Vec<_>>();
        &defaults
    } else {
        events
    };
    let mut counters = Vec::new();
    let mut group = 0;
    for list in lists {
        for parsed in events::parse_event_groups(list)? {
            for member in parsed.members {
                counters.push(Counter {
                    name: member.display,
                    spec: member.spec,
                    group,
                });
            }
            group += 1;
        }
    }
    if counters.is_empty() {
        return Err(Error::InvalidOption("no events given".to_owned()));
    }
    Ok(counters)
}

/// Resolves the probes among `counters` (see [`events::resolve_probes`]); a USDT probe with
/// several sites counts each under its own counter, named alike.
pub fn resolve_counter_probes(
    counters: Vec<Counter>,
    context: &crate::probe::ResolveContext,
) -> Result<Vec<Counter>> {
    let mut out = Vec::with_capacity(counters.len());
    for counter in counters {
        let sites = events::resolve_probes(vec![counter.spec.clone()], context)?;
        for spec in sites {
            out.push(Counter {
                name: counter.name.clone(),
                spec,
                group: counter.group,
            });
        }
    }
    Ok(out)
}

/// The kernel interface opening and reading counters needs; the real one is [`SystemCounters`].
pub trait CounterSyscalls {
    /// An open counter.
    type Fd;
    /// Opens `attr` for `task` (-1: every task) on `cpu` (-1: any), in `group`'s group.
    fn open(
        &mut self,
        attr: &EventAttr,
        task: i32,
        cpu: i32,
        group: Option<&Self::Fd>,
    ) -> io::Result<Self::Fd>;
    /// Reads value, time enabled and time running.
    fn read(&mut self, fd: &Self::Fd) -> io::Result<Reading>;
    /// `PERF_EVENT_IOC_ENABLE` (a leader enables its group).
    fn enable(&mut self, fd: &Self::Fd) -> io::Result<()>;
    /// `PERF_EVENT_IOC_DISABLE`.
    fn disable(&mut self, fd: &Self::Fd) -> io::Result<()>;
}

/// The real kernel, optionally scoped to a cgroup: then every open counts the cgroup's tasks
/// (`PERF_FLAG_PID_CGROUP`) and the task argument is ignored.
#[derive(Debug, Default)]
pub struct SystemCounters {
    cgroup: Option<std::fs::File>,
}

impl SystemCounters {
    /// Counts only tasks in the cgroup whose directory is `dir`.
    pub fn in_cgroup(dir: std::fs::File) -> Self {
        SystemCounters { cgroup: Some(dir) }
    }
}

impl CounterSyscalls for SystemCounters {
    type Fd = PerfEventFd;
    fn open(
        &mut self,
        attr: &EventAttr,
        task: i32,
        cpu: i32,
        group: Option<&PerfEventFd>,
    ) -> io::Result<PerfEventFd> {
        let scope = match &self.cgroup {
            Some(dir) => EventScope::Cgroup(dir.as_fd()),
            None => EventScope::Task(task),
        };
        sys::perf_event_open_in(&attr.to_kernel(), scope, cpu, group)
    }
    fn read(&mut self, fd: &PerfEventFd) -> io::Result<Reading> {
        let mut buf = [0u8; 24];
        let n = fd.read_values(&mut buf)?;
        buf.get(..n)
            .and_then(Reading::from_bytes)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short counter read"))
    }
    fn enable(&mut self, fd: &PerfEventFd) -> io::Result<()> {
        sys::enable(fd)
    }
    fn disable(&mut self, fd: &PerfEventFd) -> io::Result<()> {
        sys::disable(fd)
    }
}

/// Where counters are opened: each (task, CPU) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// Tasks (-1: every task on the CPU).
    pub tasks: Vec<i32>,
    /// CPUs (-1: wherever the task runs).
    pub cpus: Vec<i32>,
    /// Tasks that vanish while opening (threads of `-p` processes) are skipped, not errors.
    pub skip_vanished: bool,
    /// Counting every task of the CPUs (affects the permission fallback and messages).
    pub system_wide: bool,
    /// Leaders enable themselves when the workload execs (a command counted per task).
    pub enable_on_exec: bool,
}

/// The opened counters: one fd per counter and slot.
#[derive(Debug)]
pub struct Counters<K: CounterSyscalls> {
    kernel: K,
    counters: Vec<Counter>,
    supported: Vec<bool>,
    /// Per counter: its fds, each with the index of its slot.
    fds: Vec<Vec<(usize, K::Fd)>>,
    /// Per counter: true when it leads its group's fds (it is enabled and disabled).
    leads: Vec<bool>,
}

/// The attr of a counting event: no sampling; `disabled` (and `enable_on_exec`) only on leaders,
/// members follow their leader; inherited by children when counting tasks.
pub fn counting_attr(
    spec: &EventSpec,
    type_: u32,
    config: u64,
    leader: bool,
    slots: &Slots,
) -> EventAttr {
    EventAttr {
        type_,
        config,
        read_format: u64::from(
            b::PERF_FORMAT_TOTAL_TIME_ENABLED | b::PERF_FORMAT_TOTAL_TIME_RUNNING,
        ),
        disabled: leader,
        // Probe events cannot be inherited (see `session::build_attr`).
        inherit: !slots.system_wide && !matches!(spec.kind, events::EventKind::Probe(_)),
        exclude_user: spec.exclude_user,
        exclude_kernel: spec.exclude_kernel,
        exclude_hv: spec.exclude_kernel || spec.exclude_user,
        enable_on_exec: leader && slots.enable_on_exec,
        probe_target: events::probe_target_fields(&spec.kind).0,
        config2: events::probe_target_fields(&spec.kind).1,
        ..EventAttr::default()
    }
}

/// True when perf stat reports the open error as `<not supported>` rather than failing
/// (its `stat_handle_error`: no such PMU or event, or an attr the PMU rejects).
fn is_not_supported(err: &io::Error) -> bool {
    events::is_unsupported_error(err)
        || matches!(err.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS))
}

impl<K: CounterSyscalls> Counters<K> {
    /// Opens every counter on every slot. Events this machine cannot count are marked
    /// unsupported (never an error); when a group's leader is unsupported its next member leads.
    /// Without permission to count the kernel, falls back to user space only where paranoia
    /// allows (one note, `:u` added to the names), as perf does. Nothing is enabled yet unless
    /// `slots.enable_on_exec`.
    pub fn open(
        mut kernel: K,
        counters: Vec<Counter>,
        slots: &Slots,
        notes: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        let mut counters = counters;
        let mut supported = vec![true; counters.len()];
        let mut fds: Vec<Vec<(usize, K::Fd)>> = Vec::with_capacity(counters.len());
        let mut leads = vec![false; counters.len()];
        let mut user_only = false;
        // Per group: the leader's index (its fds are the group fds of later members).
        let mut leader_of_group: Vec<(usize, usize)> = Vec::new();
        // Slots whose task vanished while opening (skipped for every later counter).
        let pairs: Vec<(i32, i32)> = slots
            .cpus
            .iter()
            .flat_map(|&cpu| slots.tasks.iter().map(move |&task| (task, cpu)))
            .collect();
        let mut vanished = vec![false; pairs.len()];
        for index in 0..counters.len() {
            let Some(counter) = counters.get_mut(index) else {
                continue;
            };
            if user_only && !counter.spec.exclude_kernel {
                counter.spec.exclude_kernel = true;
                counter.name.push_str(":u");
            }
            let leader = leader_of_group
                .iter()
                .find(|(group, _)| *group == counter.group)
                .map(|&(_, leader)| leader);
            let (type_, config) = events::type_and_config(&counter.spec.kind)?;
            let mut attr = counting_attr(&counter.spec, type_, config, leader.is_none(), slots);
            let mut opened: Vec<(usize, K::Fd)> = Vec::with_capacity(pairs.len());
            let mut is_supported = true;
            for (slot, &(task, cpu)) in pairs.iter().enumerate() {
                if vanished.get(slot) == Some(&true) {
                    continue;
                }
                let group_fd = match leader {
                    None => None,
                    Some(l) => {
                        let in_slot = fds
                            .get(l)
                            .and_then(|leader_fds| leader_fds.iter().find(|(s, _)| *s == slot));
                        match in_slot {
                            Some((_, fd)) => Some(fd),
                            // The leader's task vanished here: so did the member's.
                            None => continue,
                        }
                    }
                };
                let fd = loop {
                    match kernel.open(&attr, task, cpu, group_fd) {
                        Ok(fd) => break Some(fd),
                        Err(e) if opened.is_empty() && is_not_supported(&e) => {
                            is_supported = false;
                            break None;
                        }
                        Err(e)
                            if opened.is_empty()
                                && !attr.exclude_kernel
                                && attr.probe_target.is_none()
                                && perms::is_permission_error(&e)
                                && perms::can_fall_back_to_user_only(
                                    perms::paranoid_level(),
                                    slots.system_wide,
                                ) =>
                        {
                            if !user_only {
                                notes(&format!(
                                    "note: counting the kernel is not allowed \
                                     (perf_event_paranoid={}); counting user space only (:u)",
                                    perms::paranoid_level().unwrap_or(2)
                                ));
                            }
                            user_only = true;
                            counter.spec.exclude_kernel = true;
                            counter.name.push_str(":u");
                            attr.exclude_kernel = true;
                            attr.exclude_hv = true;
                        }
                        Err(e)
                            if slots.skip_vanished
                                && task > 0
                                && e.raw_os_error() == Some(libc::ESRCH) =>
                        {
                            if let Some(v) = vanished.get_mut(slot) {
                                *v = true;
                            }
                            break None;
                        }
                        Err(e) => {
                            let whom = match (task, cpu) {
                                (-1, cpu) => format!("CPU {cpu}"),
                                (task, -1) => format!("task {task}"),
                                (task, cpu) => format!("task {task} on CPU {cpu}"),
                            };
                            let what = format!("opening {} for {whom}", counter.name);
                            if attr.probe_target.is_some() {
                                return Err(perms::explain_probe(&what, e));
                            }
                            return Err(perms::explain(&what, e, slots.system_wide));
                        }
                    }
                };
                if !is_supported {
                    break;
                }
                if let Some(fd) = fd {
                    opened.push((slot, fd));
                }
            }
            if is_supported && opened.is_empty() {
                return Err(Error::InvalidOption(format!(
                    "no task left to count {} (all exited?)",
                    counter.name
                )));
            }
            if is_supported && leader.is_none() {
                leader_of_group.push((counter.group, index));
                if let Some(l) = leads.get_mut(index) {
                    *l = true;
                }
            }
            if let Some(s) = supported.get_mut(index) {
                *s = is_supported;
            }
            fds.push(opened);
        }
        Ok(Counters {
            kernel,
            counters,
            supported,
            fds,
            leads,
        })
    }

    /// Enables every group (through its leaders).
    pub fn enable(&mut self) -> Result<()> {
        for (fds, _) in self.fds.iter().zip(&self.leads).filter(|(_, lead)| **lead) {
            for (_, fd) in fds {
                self.kernel.enable(fd).map_err(|source| Error::Syscall {
                    what: "enabling the counters".to_owned(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Disables every group. A task that exited has nothing left to disable: errors are ignored.
    pub fn disable(&mut self) {
        for (fds, _) in self.fds.iter().zip(&self.leads).filter(|(_, lead)| **lead) {
            for (_, fd) in fds {
                let _ = self.kernel.disable(fd);
            }
        }
    }

    /// Reads every counter, summed over its fds.
    pub fn read(&mut self) -> Result<Vec<CounterResult>> {
        let mut results = Vec::with_capacity(self.counters.len());
        for ((counter, fds), &supported) in self.counters.iter().zip(&self.fds).zip(&self.supported)
        {
            let mut total = Reading::default();
            for (_, fd) in fds {
                let reading = self.kernel.read(fd).map_err(|source| Error::Syscall {
                    what: format!("reading {}", counter.name),
                    source,
                })?;
                total.add(&reading);
            }
            results.push(CounterResult {
                counter: counter.clone(),
                supported,
                reading: total,
            });
        }
        Ok(results)
    }
}

/// Deltas of `now` against `before` (same counters, same order).
pub fn interval_of(now: &[CounterResult], before: &[CounterResult]) -> Vec<CounterResult> {
    now.iter()
        .zip(before)
        .map(|(n, b)| CounterResult {
            counter: n.counter.clone(),
            supported: n.supported,
            reading: n.reading.since(&b.reading),
        })
        .collect()
}

/// Counts according to `options` until the command exits, a stop signal arrives or every
/// attached task is gone. `on_interval` receives each `-I` interval's counts (the last one may
/// be shorter); `notes` receives one-line notes.
pub fn count(
    options: &CountOptions,
    notes: &mut dyn FnMut(&str),
    on_interval: &mut dyn FnMut(&Interval) -> io::Result<()>,
) -> Result<CountSummary> {
    if let Some(interval) = options.interval {
        if interval < MIN_INTERVAL {
            return Err(Error::InvalidOption(format!(
                "-I {}: the print interval must be at least {} ms",
                interval.as_millis(),
                MIN_INTERVAL.as_millis()
            )));
        }
    }
    let system_wide = options.system_wide
        || options.cpus.is_some()
        || options.cgroup.is_some()
        || matches!(options.target, Target::SystemWide);
    // Everything that can be checked without side effects first.
    let counters = resolve_counter_probes(
        parse_counters(&options.events, system_wide)?,
        &options.target.probe_context(),
    )?;
    if !system_wide
        && matches!(options.target, Target::Command(_))
        && counters
            .iter()
            .any(|c| events::probe_site(&c.spec.kind).is_some())
    {
        notes(crate::probe::NOT_INHERITED_NOTE);
    }
    let cpus: Vec<i32> = match &options.cpus {
        Some(c) if c.is_empty() => return Err(Error::InvalidOption("-C: empty CPU list".into())),
        Some(c) => to_i32(c)?,
        None if system_wide => to_i32(&crate::online_cpus())?,
        None => vec![-1],
    };
    let mut slots = Slots {
        tasks: Vec::new(),
        cpus,
        skip_vanished: false,
        system_wide,
        enable_on_exec: false,
    };
    match &options.target {
        _ if system_wide => slots.tasks = vec![-1],
        Target::Pids(pids) => {
            let mut tids = Vec::new();
            for &pid in pids {
                tids.extend(target::threads_of(pid)?);
            }
            slots.tasks = to_i32(&tids)?;
            slots.skip_vanished = true;
        }
        Target::Tids(tids) => {
            if let Some(&missing) = tids.iter().find(|&&t| !target::thread_exists(t)) {
                return Err(Error::NoSuchTask(missing));
            }
            slots.tasks = to_i32(tids)?;
        }
        Target::Command(argv) if argv.is_empty() => {
            return Err(Error::InvalidOption(
                "no command given (give a command, -p PID, -t TID or -a)".to_owned(),
            ));
        }
        Target::Command(_) => slots.enable_on_exec = true,
        _ => {}
    }
    if slots.tasks.is_empty() && !slots.enable_on_exec {
        return Err(Error::InvalidOption(
            "no process or thread ids given".to_owned(),
        ));
    }
    let kernel = match &options.cgroup {
        Some(name) => SystemCounters::in_cgroup(cgroup::open(name)?.dir),
        None => SystemCounters::default(),
    };
    let signals = SignalPipe::install().map_err(|source| Error::Syscall {
        what: "installing signal handlers".into(),
        source,
    })?;
    let cpu_before = sys::children_cpu_times().ok();
    let mut workload = match &options.target {
        Target::Command(argv) if !argv.is_empty() => Some(Workload::spawn(argv, false)?),
        _ => None,
    };
    if let (Some(w), false) = (&workload, system_wide) {
        slots.tasks = vec![w.pid()];
    }
    // From here on a failure drops `workload`, which kills and reaps the child.
    let mut open = Counters::open(kernel, counters, &slots, notes)?;
    // Zero: nothing is enabled yet (the first interval counts from here).
    let mut previous = open.read()?;
    let started = Instant::now();
    if !slots.enable_on_exec {
        open.enable()?;
    }
    if let Some(w) = workload.as_mut() {
        w.release()?;
    }
    let attached = workload.is_none() && !system_wide;
    let mut next_tick = options.interval.map(|i| started + i);
    let mut last_tick = started;
    let stopped_by = loop {
        let now = Instant::now();
        if let (Some(tick), Some(interval)) = (next_tick, options.interval) {
            if now >= tick {
                let current = open.read()?;
                on_interval(&Interval {
                    elapsed: tick.saturating_duration_since(started),
                    counters: interval_of(&current, &previous),
                })
                .map_err(Error::Io)?;
                previous = current;
                last_tick = tick;
                next_tick = Some(tick + interval);
                continue;
            }
        }
        let timeout = next_tick
            .map_or(POLL_INTERVAL, |tick| tick.saturating_duration_since(now))
            .min(POLL_INTERVAL);
        // Counting fds have no ring, and poll(2) reports POLLHUP for those at once: only the
        // signal pipe is watched, and attached tasks are looked up in /proc.
        let ready = sys::poll(&[signals.fd()], Some(timeout)).map_err(|source| Error::Syscall {
            what: "waiting for the workload".into(),
            source,
        })?;
        let caught = if ready.readable.contains(&0) {
            signals.drain()
        } else {
            Vec::new()
        };
        if let Some(w) = workload.as_mut() {
            if let Some(exit) =
                sys::wait_child(w.pid(), false).map_err(|source| Error::Syscall {
                    what: "waiting for the workload".into(),
                    source,
                })?
            {
                w.set_exited(exit);
                break StopReason::WorkloadExited(exit);
            }
        }
        if let Some(&sig) = caught.iter().find(|s| sys::STOP_SIGNALS.contains(s)) {
            if let Some(w) = workload.as_mut() {
                // Ctrl-C reaches the workload through the terminal; forward an explicit SIGTERM.
                if sig == libc::SIGTERM {
                    let _ = sys::kill(w.pid(), libc::SIGTERM);
                }
            }
            break StopReason::Signal(sig);
        }
        if attached && !slots.tasks.iter().any(|&tid| task_alive(tid)) {
            break StopReason::TasksGone;
        }
    };
    // A stopped command is given a moment to exit so its counts are complete.
    let exit_status = workload
        .as_mut()
        .and_then(|w| w.terminate(Duration::from_secs(2)))
        .map(sys::ChildExit::code);
    let elapsed = started.elapsed();
    let last = open.read()?;
    open.disable();
    if options.interval.is_some() {
        // The stretch after the last full interval, as perf prints it.
        if started + elapsed > last_tick {
            on_interval(&Interval {
                elapsed,
                counters: interval_of(&last, &previous),
            })
            .map_err(Error::Io)?;
        }
    }
    let cpu_times = match (&workload, cpu_before, sys::children_cpu_times().ok()) {
        (Some(_), Some((u0, s0)), Some((u1, s1))) => {
            Some((u1.saturating_sub(u0), s1.saturating_sub(s0)))
        }
        _ => None,
    };
    drop(signals);
    Ok(CountSummary {
        counters: last,
        elapsed,
        exit_status,
        cpu_times,
        stopped_by,
        system_wide,
    })
}

/// True while thread `tid` exists and has not exited (a zombie has: its counts are final).
fn task_alive(tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) else {
        return false;
    };
    // pid (comm) STATE ...: the comm may hold spaces and parentheses, the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x") | None)
}

fn to_i32(ids: &[u32]) -> Result<Vec<i32>> {
    ids.iter()
        .map(|&id| {
            i32::try_from(id).map_err(|_| Error::InvalidOption(format!("id {id} is out of range")))
        })
        .collect()
}

/// True for the clock events perf stat derives "CPUs utilized" and rates from.
pub fn is_clock(spec: &EventSpec) -> bool {
    matches!(
        spec.kind,
        EventKind::Software(c)
            if c == u64::from(b::PERF_COUNT_SW_TASK_CLOCK) || c == u64::from(b::PERF_COUNT_SW_CPU_CLOCK)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_follows_perf() {
        let full = Reading {
            value: 1000,
            enabled: 50,
            running: 50,
        };
        assert_eq!(full.scaled(), Some(1000.0));
        assert!(!full.multiplexed());
        // Counted a quarter of the time: extrapolated to the whole, rounded to nearest.
        let quarter = Reading {
            value: 1001,
            enabled: 400,
            running: 100,
        };
        assert_eq!(quarter.scaled(), Some(4004.0));
        assert!(quarter.multiplexed());
        let third = Reading {
            value: 10,
            enabled: 3,
            running: 1,
        };
        assert_eq!(third.scaled(), Some(30.0));
        let rounding = Reading {
            value: 1,
            enabled: 3,
            running: 2,
        };
        assert_eq!(rounding.scaled(), Some(2.0)); // 1.5 rounds up, as perf's +0.5
        assert_eq!(
            Reading {
                value: 5,
                enabled: 10,
                running: 0
            }
            .scaled(),
            None
        );
        let bytes: Vec<u8> = [7u64, 9, 8].iter().flat_map(|v| v.to_ne_bytes()).collect();
        assert_eq!(
            Reading::from_bytes(&bytes),
            Some(Reading {
                value: 7,
                enabled: 9,
                running: 8
            })
        );
        assert_eq!(Reading::from_bytes(&bytes[..16]), None);
    }

    #[test]
    fn run_statistics_are_perfs() {
        let mut s = RunStats::default();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            s.push(v);
        }
        assert_eq!(s.count(), 8);
        assert!((s.mean() - 5.0).abs() < 1e-12);
        // Sample variance 32/7.
        assert!((s.stddev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert!((s.stddev_of_mean() - (32.0f64 / 7.0 / 8.0).sqrt()).abs() < 1e-12);
        assert!((s.relative_percent() - 100.0 * (32.0f64 / 56.0).sqrt() / 5.0).abs() < 1e-9);
        let mut one = RunStats::default();
        one.push(3.0);
        assert_eq!(one.stddev_of_mean(), 0.0);
        assert_eq!(RunStats::default().relative_percent(), 0.0);
    }

    #[test]
    fn defaults_are_perf_stats() {
        let c = parse_counters(&[], false).unwrap();
        let names: Vec<_> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, DEFAULT_EVENTS);
        let groups: Vec<_> = c.iter().map(|c| c.group).collect();
        assert_eq!(groups, [0, 1, 2, 3, 4, 5, 6, 7]);
        let wide = parse_counters(&[], true).unwrap();
        assert_eq!(wide[0].name, "cpu-clock");
        let g = parse_counters(
            &["cs,{page-faults,cpu-clock}".into(), "faults".into()],
            false,
        )
        .unwrap();
        let groups: Vec<_> = g.iter().map(|c| (c.name.as_str(), c.group)).collect();
        assert_eq!(
            groups,
            [
                ("cs", 0),
                ("page-faults", 1),
                ("cpu-clock", 1),
                ("faults", 2)
            ]
        );
    }

    /// One open the fake saw.
    struct Opened {
        task: i32,
        cpu: i32,
        /// The group leader's fd number.
        group: Option<usize>,
        disabled: bool,
        enable_on_exec: bool,
    }

    /// A fake kernel: counts opens, refuses some event types, hands out fixed readings.
    #[derive(Default)]
    struct Fake {
        opened: Vec<Opened>,
        unsupported_types: Vec<u32>,
        /// Tasks that vanish (ESRCH).
        vanished: Vec<i32>,
        enabled: Vec<usize>,
    }

    impl CounterSyscalls for Fake {
        type Fd = usize;
        fn open(
            &mut self,
            attr: &EventAttr,
            task: i32,
            cpu: i32,
            group: Option<&usize>,
        ) -> io::Result<usize> {
            if self.unsupported_types.contains(&attr.type_) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            if self.vanished.contains(&task) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            self.opened.push(Opened {
                task,
                cpu,
                group: group.copied(),
                disabled: attr.disabled,
                enable_on_exec: attr.enable_on_exec,
            });
            Ok(self.opened.len() - 1)
        }
        fn read(&mut self, fd: &usize) -> io::Result<Reading> {
            let n = *fd as u64;
            Ok(Reading {
                value: 10 + n,
                enabled: 100,
                running: 100,
            })
        }
        fn enable(&mut self, fd: &usize) -> io::Result<()> {
            self.enabled.push(*fd);
            Ok(())
        }
        fn disable(&mut self, _fd: &usize) -> io::Result<()> {
            Ok(())
        }
    }

    fn slots(tasks: Vec<i32>, cpus: Vec<i32>, system_wide: bool) -> Slots {
        Slots {
            tasks,
            cpus,
            skip_vanished: true,
            system_wide,
            enable_on_exec: !system_wide,
        }
    }

    #[test]
    fn groups_open_under_their_leader_per_slot() {
        let counters = parse_counters(&["{cs,page-faults},cpu-clock".into()], true).unwrap();
        let mut c = Counters::open(
            Fake::default(),
            counters,
            &slots(vec![-1], vec![0, 1], true),
            &mut |_| {},
        )
        .unwrap();
        let o = &c.kernel.opened;
        // cs on CPUs 0 and 1 (fds 0, 1), page-faults in their groups, cpu-clock alone.
        assert_eq!(o[0].group, None);
        assert_eq!(o[1].group, None);
        assert_eq!((o[2].cpu, o[2].group), (0, Some(0)));
        assert_eq!((o[3].cpu, o[3].group), (1, Some(1)));
        assert_eq!(o[4].group, None);
        // Only leaders start disabled.
        let disabled: Vec<bool> = o.iter().map(|x| x.disabled).collect();
        assert_eq!(disabled, [true, true, false, false, true, true]);
        c.enable().unwrap();
        assert_eq!(c.kernel.enabled, [0, 1, 4, 5]);
        let r = c.read().unwrap();
        // Summed over both CPUs: fds 0+1, 2+3, 4+5.
        let values: Vec<u64> = r.iter().map(|x| x.reading.value).collect();
        assert_eq!(values, [21, 25, 29]);
        assert!(r.iter().all(|x| x.reading.enabled == 200));
    }

    #[test]
    fn unsupported_events_are_marked_and_their_group_gets_a_new_leader() {
        let counters =
            parse_counters(&["{cycles,page-faults,cs},instructions".into()], false).unwrap();
        let kernel = Fake {
            unsupported_types: vec![b::PERF_TYPE_HARDWARE],
            ..Fake::default()
        };
        let mut c = Counters::open(
            kernel,
            counters,
            &slots(vec![42], vec![-1], false),
            &mut |_| {},
        )
        .unwrap();
        let o = &c.kernel.opened;
        assert_eq!(o.len(), 2);
        // page-faults leads (disabled, enables on exec); cs joins its group.
        assert_eq!(
            (o[0].group, o[0].disabled, o[0].enable_on_exec),
            (None, true, true)
        );
        assert_eq!(
            (o[1].group, o[1].disabled, o[1].enable_on_exec),
            (Some(0), false, false)
        );
        let r = c.read().unwrap();
        let supported: Vec<bool> = r.iter().map(|x| x.supported).collect();
        assert_eq!(supported, [false, true, true, false]);
        assert_eq!(r[0].reading, Reading::default());
    }

    #[test]
    fn vanished_threads_are_skipped() {
        let counters = parse_counters(&["cs,page-faults".into()], false).unwrap();
        let kernel = Fake {
            vanished: vec![8],
            ..Fake::default()
        };
        let c = Counters::open(
            kernel,
            counters,
            &slots(vec![7, 8, 9], vec![-1], false),
            &mut |_| {},
        )
        .unwrap();
        let tasks: Vec<i32> = c.kernel.opened.iter().map(|o| o.task).collect();
        assert_eq!(tasks, [7, 9, 7, 9]);
        assert_eq!(c.fds.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
    }

    #[test]
    fn intervals_are_differences() {
        let counter = parse_counters(&["cs".into()], false).unwrap().remove(0);
        let at = |value, time| CounterResult {
            counter: counter.clone(),
            supported: true,
            reading: Reading {
                value,
                enabled: time,
                running: time,
            },
        };
        let d = interval_of(&[at(30, 300)], &[at(10, 100)]);
        assert_eq!(
            d[0].reading,
            Reading {
                value: 20,
                enabled: 200,
                running: 200
            }
        );
    }

    #[test]
    fn own_thread_is_alive_and_a_reaped_child_is_not() {
        assert!(task_alive(i32::try_from(std::process::id()).unwrap()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        child.wait().unwrap();
        assert!(!task_alive(pid));
    }

    #[test]
    fn clock_events() {
        let c = parse_counters(&["task-clock,cpu-clock,cs".into()], false).unwrap();
        let clocks: Vec<bool> = c.iter().map(|c| is_clock(&c.spec)).collect();
        assert_eq!(clocks, [true, true, false]);
    }
}
