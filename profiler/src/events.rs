//! `-e` event specs: parsing names and modifiers into [`EventSpec`], resolving tracepoint ids,
//! suggesting close matches for typos, and building the [`EventAttr`] passed to the kernel.

use std::io;
use std::path::{Path, PathBuf};

use perf_event_open_sys::bindings::{self as b, perf_event_attr};

use crate::error::{Error, Result};
use crate::sys;

/// What kind of counter an event is, with its kernel type/config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `PERF_TYPE_HARDWARE` with a `PERF_COUNT_HW_*` config.
    Hardware(u64),
    /// `PERF_TYPE_SOFTWARE` with a `PERF_COUNT_SW_*` config.
    Software(u64),
    /// `PERF_TYPE_TRACEPOINT` `system:name`; the id is looked up in tracefs when opening.
    Tracepoint {
        /// The subsystem, e.g. `sched`.
        system: String,
        /// The event, e.g. `sched_switch`.
        name: String,
    },
    /// `PERF_TYPE_RAW` with a model-specific code (`rNNNN`).
    Raw(u64),
    /// A uprobe, uretprobe, USDT probe or kprobe, opened through the uprobe or kprobe PMU.
    /// Resolved to a file and offset by [`resolve_probes`] once the target is known.
    Probe(Box<crate::probe::Probe>),
}

/// One parsed `-e` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The canonical name (aliases resolved, modifiers appended as given), as stored in perf.data.
    pub name: String,
    /// The counter.
    pub kind: EventKind,
    /// `:k` alone: do not count user space.
    pub exclude_user: bool,
    /// `:u` alone: do not count the kernel.
    pub exclude_kernel: bool,
}

const HARDWARE: &[(&str, u32)] = &[
    ("cycles", b::PERF_COUNT_HW_CPU_CYCLES),
    ("cpu-cycles", b::PERF_COUNT_HW_CPU_CYCLES),
    ("instructions", b::PERF_COUNT_HW_INSTRUCTIONS),
    ("cache-references", b::PERF_COUNT_HW_CACHE_REFERENCES),
    ("cache-misses", b::PERF_COUNT_HW_CACHE_MISSES),
    ("branches", b::PERF_COUNT_HW_BRANCH_INSTRUCTIONS),
    ("branch-instructions", b::PERF_COUNT_HW_BRANCH_INSTRUCTIONS),
    ("branch-misses", b::PERF_COUNT_HW_BRANCH_MISSES),
    ("bus-cycles", b::PERF_COUNT_HW_BUS_CYCLES),
    ("ref-cycles", b::PERF_COUNT_HW_REF_CPU_CYCLES),
];

const SOFTWARE: &[(&str, u32)] = &[
    ("cpu-clock", b::PERF_COUNT_SW_CPU_CLOCK),
    ("task-clock", b::PERF_COUNT_SW_TASK_CLOCK),
    ("page-faults", b::PERF_COUNT_SW_PAGE_FAULTS),
    ("faults", b::PERF_COUNT_SW_PAGE_FAULTS),
    ("minor-faults", b::PERF_COUNT_SW_PAGE_FAULTS_MIN),
    ("major-faults", b::PERF_COUNT_SW_PAGE_FAULTS_MAJ),
    ("context-switches", b::PERF_COUNT_SW_CONTEXT_SWITCHES),
    ("cs", b::PERF_COUNT_SW_CONTEXT_SWITCHES),
    ("cpu-migrations", b::PERF_COUNT_SW_CPU_MIGRATIONS),
    ("migrations", b::PERF_COUNT_SW_CPU_MIGRATIONS),
];

/// Every event name `parse_event` knows (aliases included), for help text and suggestions.
pub fn known_event_names() -> impl Iterator<Item = &'static str> {
    HARDWARE.iter().chain(SOFTWARE).map(|(name, _)| *name)
}

/// Every hardware and software event `parse_event` knows: its kind and its names, canonical
/// first, then aliases (`context-switches`, `cs`).
pub fn named_events() -> Vec<(EventKind, Vec<&'static str>)> {
    let hardware = HARDWARE
        .iter()
        .map(|&(name, config)| (EventKind::Hardware(config.into()), name));
    let software = SOFTWARE
        .iter()
        .map(|&(name, config)| (EventKind::Software(config.into()), name));
    let mut out: Vec<(EventKind, Vec<&'static str>)> = Vec::new();
    for (kind, name) in hardware.chain(software) {
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, names)) => names.push(name),
            None => out.push((kind, vec![name])),
        }
    }
    out
}

/// Parses a comma-separated `-e` list (`cycles,page-faults:u`).
pub fn parse_event_list(list: &str) -> Result<Vec<EventSpec>> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_event(s.trim()))
        .collect()
}

/// One `-e` entry of a counting session: a single event, or a `{a,b}` group whose members the
/// kernel schedules together (so their ratios are measured over the same time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    /// The members in order; the first leads the group.
    pub members: Vec<GroupMember>,
    /// True for `{...}` syntax (even with one member).
    pub braced: bool,
}

/// One event of an [`EventGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The name to print, as perf stat prints it: the spelling given (`cs` stays `cs`), with its
    /// own `:u`/`:k` for software and hardware events; tracepoints and group modifiers drop them.
    pub display: String,
    /// The parsed event (group modifiers applied).
    pub spec: EventSpec,
}

/// Parses a `-e` list that may hold groups: `cycles,{instructions,branches}:u,sched:sched_switch`.
/// Commas inside braces separate group members; a modifier after `}` applies to every member.
pub fn parse_event_groups(list: &str) -> Result<Vec<EventGroup>> {
    let invalid = |reason: &str| Error::InvalidEvent {
        spec: list.to_owned(),
        reason: reason.to_owned(),
    };
    let mut groups = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('{') {
            let close = inner
                .find('}')
                .ok_or_else(|| invalid("'{' without a matching '}'"))?;
            let (body, after) = inner.split_at(close);
            let after = after.get(1..).unwrap_or_default();
            let (modifiers, tail) = match after.find(',') {
                Some(comma) => (&after[..comma], &after[comma + 1..]),
                None => (after, ""),
            };
            let modifiers = match modifiers.trim() {
                "" => None,
                m => Some(
                    m.strip_prefix(':')
                        .ok_or_else(|| invalid("expected ':MODIFIERS' or ',' after '}'"))?,
                ),
            };
            if body.contains('{') {
                return Err(invalid("groups cannot be nested"));
            }
            let mut members = Vec::new();
            for item in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let mut spec = parse_event(item)?;
                if let Some(m) = modifiers {
                    let (exclude_user, exclude_kernel) = modifier_flags(list, m)?;
                    spec.exclude_user |= exclude_user;
                    spec.exclude_kernel |= exclude_kernel;
                }
                members.push(GroupMember {
                    display: display_name(item, &spec),
                    spec,
                });
            }
            if members.is_empty() {
                return Err(invalid("empty group '{}'"));
            }
            groups.push(EventGroup {
                members,
                braced: true,
            });
            rest = tail.trim_start();
        } else {
            let (item, tail) = rest.split_once(',').unwrap_or((rest, ""));
            let item = item.trim();
            if item.contains('}') {
                return Err(invalid("'}' without a matching '{'"));
            }
            if !item.is_empty() {
                let spec = parse_event(item)?;
                groups.push(EventGroup {
                    members: vec![GroupMember {
                        display: display_name(item, &spec),
                        spec,
                    }],
                    braced: false,
                });
            }
            rest = tail.trim_start();
        }
    }
    Ok(groups)
}

/// perf stat's name for an event: as written, but a tracepoint without its modifiers.
fn display_name(written: &str, spec: &EventSpec) -> String {
    match &spec.kind {
        EventKind::Tracepoint { system, name } => format!("{system}:{name}"),
        _ => written.to_owned(),
    }
}

/// Parses one event spec: a name, `SYS:NAME`, or `rNNNN`, optionally followed by `:u`, `:k`, `:uk`.
pub fn parse_event(spec: &str) -> Result<EventSpec> {
    if crate::probe::is_probe_spec(spec) {
        return parse_probe(spec);
    }
    let (base, modifiers) = split_modifiers(spec);
    let (exclude_user, exclude_kernel) = match modifiers {
        None => (false, false),
        Some(m) => modifier_flags(spec, m)?,
    };
    let suffix = modifiers.map(|m| format!(":{m}")).unwrap_or_default();
    let lower = base.to_ascii_lowercase();
    let (name, kind) = if let Some(config) = lookup(HARDWARE, &lower) {
        (
            canonical(HARDWARE, config),
            EventKind::Hardware(config.into()),
        )
    } else if let Some(config) = lookup(SOFTWARE, &lower) {
        (
            canonical(SOFTWARE, config),
            EventKind::Software(config.into()),
        )
    } else if let Some((system, event)) = base.split_once(':') {
        if !valid_tracepoint_part(system) || !valid_tracepoint_part(event) {
            return Err(Error::InvalidEvent {
                spec: spec.to_owned(),
                reason: "tracepoints are SYSTEM:NAME with letters, digits and '_'".to_owned(),
            });
        }
        (
            base.to_owned(),
            EventKind::Tracepoint {
                system: system.to_owned(),
                name: event.to_owned(),
            },
        )
    } else if let Some(code) = raw_code(base) {
        (base.to_owned(), EventKind::Raw(code?))
    } else {
        return Err(Error::UnknownEvent {
            name: base.to_owned(),
            suggestions: suggestions(base),
        });
    };
    Ok(EventSpec {
        name: format!("{name}{suffix}"),
        kind,
        exclude_user,
        exclude_kernel,
    })
}

/// A probe spec (`u:`, `ur:`, `usdt:`, `k:`, `kr:`), unresolved.
fn parse_probe(spec: &str) -> Result<EventSpec> {
    let parsed = crate::probe::parse(spec).map_err(|e| Error::InvalidEvent {
        spec: spec.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(EventSpec {
        name: parsed.to_string(),
        kind: EventKind::Probe(Box::new(crate::probe::Probe {
            spec: parsed,
            resolved: None,
        })),
        exclude_user: false,
        exclude_kernel: false,
    })
}

/// Resolves every probe among `specs` against `context` (the command's executable, `-p`'s
/// mappings): each becomes one event per site (a USDT probe may have several sites, all under
/// the probe's name). Other events pass through.
pub fn resolve_probes(
    specs: Vec<EventSpec>,
    context: &crate::probe::ResolveContext,
) -> Result<Vec<EventSpec>> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let EventKind::Probe(probe) = &spec.kind else {
            out.push(spec);
            continue;
        };
        if probe.resolved.is_some() {
            out.push(spec);
            continue;
        }
        let sites = crate::probe::resolve(&probe.spec, context).map_err(|source| Error::Probe {
            spec: spec.name.clone(),
            source,
        })?;
        for site in sites {
            out.push(EventSpec {
                name: site.name.clone(),
                kind: EventKind::Probe(Box::new(crate::probe::Probe {
                    spec: probe.spec.clone(),
                    resolved: Some(site),
                })),
                exclude_user: spec.exclude_user,
                exclude_kernel: spec.exclude_kernel,
            });
        }
    }
    Ok(out)
}

/// The resolved probe site of an event, if it is one.
pub fn probe_site(kind: &EventKind) -> Option<&crate::probe::ResolvedProbe> {
    match kind {
        EventKind::Probe(p) => p.resolved.as_ref(),
        _ => None,
    }
}

/// `config1`'s target (path or kernel function) and `config2` (offset) of a resolved probe;
/// `(None, 0)` for other events.
pub fn probe_target_fields(kind: &EventKind) -> (Option<std::ffi::CString>, u64) {
    match probe_site(kind) {
        Some(site) => (
            std::ffi::CString::new(site.target.as_bytes()).ok(),
            site.offset,
        ),
        None => (None, 0),
    }
}

/// The PMU type and `config` of a probe event (return flag, semaphore offset).
fn probe_type_and_config(kind: &EventKind) -> Result<(u32, u64)> {
    let EventKind::Probe(probe) = kind else {
        return Err(Error::InvalidOption("not a probe".to_owned()));
    };
    let wrap = |source| Error::Probe {
        spec: probe.spec.to_string(),
        source,
    };
    let site = probe.resolved.as_ref().ok_or_else(|| {
        Error::InvalidOption(format!(
            "probe {} was not resolved before opening",
            probe.spec
        ))
    })?;
    let pmu = crate::probe::attr::read_pmu(crate::probe::attr::pmu_name(site)).map_err(wrap)?;
    let attr = crate::probe::attr::build(site, &pmu).map_err(wrap)?;
    Ok((attr.type_, attr.config))
}

/// `(exclude_user, exclude_kernel)` for modifier letters `m` (`u`, `k` or both) of `spec`.
fn modifier_flags(spec: &str, m: &str) -> Result<(bool, bool)> {
    if let Some(bad) = m.chars().find(|c| !matches!(c, 'u' | 'k')) {
        return Err(Error::InvalidEvent {
            spec: spec.to_owned(),
            reason: format!("unsupported modifier '{bad}' (supported: u, k)"),
        });
    }
    let user = m.contains('u');
    let kernel = m.contains('k');
    Ok((kernel && !user, user && !kernel))
}

fn lookup(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, config)| config)
}

/// The first (canonical) name in `table` for `config`: aliases come after it.
fn canonical(table: &[(&str, u32)], config: u32) -> String {
    table
        .iter()
        .find(|(_, c)| *c == config)
        .map_or_else(String::new, |(n, _)| (*n).to_owned())
}

/// Splits `name:mods` when the last `:` part is made only of modifier letters.
fn split_modifiers(spec: &str) -> (&str, Option<&str>) {
    match spec.rsplit_once(':') {
        Some((base, mods))
            if !mods.is_empty()
                && mods.len() <= 4
                && mods.chars().all(|c| c.is_ascii_lowercase())
                && mods.chars().any(|c| matches!(c, 'u' | 'k'))
                && !base.is_empty()
                && (mods.chars().all(|c| matches!(c, 'u' | 'k' | 'h' | 'p'))) =>
        {
            (base, Some(mods))
        }
        _ => (spec, None),
    }
}

fn valid_tracepoint_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `rNNNN` → Some(Ok(code)); `r` followed by non-hex → Some(Err); other names → None.
fn raw_code(name: &str) -> Option<Result<u64>> {
    let hex = name.strip_prefix('r')?;
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(
        u64::from_str_radix(hex, 16).map_err(|e| Error::InvalidEvent {
            spec: name.to_owned(),
            reason: format!("raw event code: {e}"),
        }),
    )
}

/// Known names within edit distance 3 of `name` (or starting with it), closest first.
pub fn suggestions(name: &str) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = known_event_names()
        .map(|known| {
            let d = strsim::levenshtein(&lower, known);
            let d = if known.starts_with(&lower) && lower.len() >= 2 {
                d.min(1)
            } else {
                d
            };
            (d, known)
        })
        .filter(|(d, known)| *d <= 3.min(known.len() / 2 + 1))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(4)
        .map(|(_, n)| n.to_owned())
        .collect()
}

/// The scheduler tracepoints `--off-cpu` adds to the sampled events: the switch-out (with the
/// stack and state of the task leaving the CPU) and the wake-up (with the waker's stack).
pub const OFF_CPU_EVENTS: [&str; 2] = ["sched:sched_switch", "sched:sched_waking"];

/// The tracefs roots searched for `events/SYS/NAME/id`, in order.
pub const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Looks up a tracepoint id in tracefs, mounting tracefs at /sys/kernel/tracing if nothing is there.
pub fn tracepoint_id(system: &str, name: &str) -> Result<u64> {
    let find = || -> Option<io::Result<u64>> {
        TRACEFS_ROOTS.iter().find_map(|root| {
            let root = Path::new(root);
            if !root.join("events").is_dir() {
                return None;
            }
            Some(read_id(
                &root.join("events").join(system).join(name).join("id"),
            ))
        })
    };
    let found = match find() {
        Some(r) => r,
        None => {
            // Not mounted: try to mount (needs root), then look again.
            let mounted = crate::sys::mount_tracefs();
            match find() {
                Some(r) => r,
                None => {
                    return Err(Error::EventUnavailable {
                        event: format!("{system}:{name}"),
                        reason: tracefs_unavailable(mounted.err().as_ref()),
                    });
                }
            }
        }
    };
    found.map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::EventUnavailable {
                event: format!("{system}:{name}"),
                reason: "no such tracepoint (see /sys/kernel/tracing/available_events)".to_owned(),
            }
        } else {
            Error::EventUnavailable {
                event: format!("{system}:{name}"),
                reason: e.to_string(),
            }
        }
    })
}

/// Why no tracefs can be used: one of the roots exists but may not be read, or none is
/// mounted (with why mounting one failed).
pub fn tracefs_unavailable(mount_error: Option<&io::Error>) -> String {
    tracefs_unavailable_at(&TRACEFS_ROOTS, mount_error)
}

fn tracefs_unavailable_at(roots: &[&str], mount_error: Option<&io::Error>) -> String {
    let unreadable = roots.iter().map(Path::new).find(|root| {
        std::fs::read_dir(root.join("events"))
            .is_err_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
    });
    if let Some(root) = unreadable {
        return format!(
            "permission denied reading {} (tracefs is readable by root only here: run as root, \
             or remount it with gid=GROUP,mode=0750 for a group you are in)",
            root.join("events").display()
        );
    }
    let why = mount_error
        .map(|e| format!(" (mounting it failed: {e})"))
        .unwrap_or_default();
    format!(
        "tracefs is not mounted at {}{why}; as root: mount -t tracefs tracefs /sys/kernel/tracing",
        roots.join(" or ")
    )
}

fn read_id(path: &PathBuf) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))
}

/// The safe description of a `perf_event_attr`; [`EventAttr::to_kernel`] turns it into the
/// kernel struct.
/// Field meanings follow perf_event_open(2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)] // one-to-one with perf_event_attr fields documented in perf_event_open(2)
pub struct EventAttr {
    pub type_: u32,
    pub config: u64,
    /// `sample_period`, or `sample_freq` when `freq` is set.
    pub period_or_freq: u64,
    pub freq: bool,
    pub sample_type: u64,
    pub read_format: u64,
    pub disabled: bool,
    pub inherit: bool,
    pub exclude_user: bool,
    pub exclude_kernel: bool,
    pub exclude_hv: bool,
    pub mmap: bool,
    pub comm: bool,
    pub enable_on_exec: bool,
    pub task: bool,
    pub watermark: bool,
    pub sample_id_all: bool,
    pub mmap2: bool,
    pub comm_exec: bool,
    /// Ask for PERF_RECORD_CGROUP records (cgroups created while recording).
    pub cgroup: bool,
    /// `wakeup_events`, or `wakeup_watermark` (bytes) when `watermark` is set.
    pub wakeup: u32,
    pub sample_regs_user: u64,
    pub sample_stack_user: u32,
    pub sample_max_stack: u16,
    /// What `config1` points to while the event is opened: a probe's file path or kernel
    /// function (NUL-terminated). The perf.data copy of the attr stores 0 there.
    pub probe_target: Option<std::ffi::CString>,
    /// `config2`: a probe's offset.
    pub config2: u64,
    /// `context_switch`: PERF_RECORD_SWITCH (per task) or SWITCH_CPU_WIDE (per CPU) records.
    pub context_switch: bool,
}

impl EventAttr {
    /// The kernel's `perf_event_attr` for this description (`size`: `PERF_ATTR_SIZE_VER7`, 128 bytes).
    pub fn to_kernel(&self) -> perf_event_attr {
        let mut a = perf_event_attr {
            type_: self.type_,
            size: sys::ATTR_SIZE as u32,
            config: self.config,
            sample_type: self.sample_type,
            read_format: self.read_format,
            sample_regs_user: self.sample_regs_user,
            sample_stack_user: self.sample_stack_user,
            sample_max_stack: self.sample_max_stack,
            ..perf_event_attr::default()
        };
        a.__bindgen_anon_1.sample_period = self.period_or_freq;
        a.set_disabled(self.disabled.into());
        a.set_inherit(self.inherit.into());
        a.set_exclude_user(self.exclude_user.into());
        a.set_exclude_kernel(self.exclude_kernel.into());
        a.set_exclude_hv(self.exclude_hv.into());
        a.set_mmap(self.mmap.into());
        a.set_comm(self.comm.into());
        a.set_freq(self.freq.into());
        a.set_enable_on_exec(self.enable_on_exec.into());
        a.set_task(self.task.into());
        a.set_watermark(self.watermark.into());
        a.set_sample_id_all(self.sample_id_all.into());
        a.set_mmap2(self.mmap2.into());
        a.set_comm_exec(self.comm_exec.into());
        a.set_cgroup(self.cgroup.into());
        a.set_context_switch(self.context_switch.into());
        a.__bindgen_anon_2.wakeup_events = self.wakeup;
        // A probe's `uprobe_path`/`kprobe_func`: the address of the NUL-terminated string
        // `self` owns, which the kernel copies during perf_event_open (and never reads after,
        // except when an inherited event is created at fork: probe events are never inherited).
        if let Some(target) = &self.probe_target {
            a.__bindgen_anon_3.config1 = target.as_ptr() as u64;
        }
        a.__bindgen_anon_4.config2 = self.config2;
        a
    }

    /// [`EventAttr::to_kernel`] as a perf.data file stores it: a probe's `config1` (a pointer
    /// into this process, meaningless in a file) is 0.
    pub fn to_kernel_for_file(&self) -> perf_event_attr {
        let mut a = self.to_kernel();
        if self.probe_target.is_some() {
            a.__bindgen_anon_3.config1 = 0;
        }
        a
    }
}

/// `perf_event_attr.type` and `.config` for a spec, resolving tracepoint ids.
pub fn type_and_config(kind: &EventKind) -> Result<(u32, u64)> {
    Ok(match kind {
        EventKind::Hardware(c) => (b::PERF_TYPE_HARDWARE, *c),
        EventKind::Software(c) => (b::PERF_TYPE_SOFTWARE, *c),
        EventKind::Raw(c) => (b::PERF_TYPE_RAW, *c),
        EventKind::Tracepoint { system, name } => {
            (b::PERF_TYPE_TRACEPOINT, tracepoint_id(system, name)?)
        }
        EventKind::Probe(_) => probe_type_and_config(kind)?,
    })
}

/// The software event `cycles` falls back to on machines without a hardware PMU.
pub fn cpu_clock_fallback(spec: &EventSpec) -> EventSpec {
    let suffix = spec
        .name
        .split_once(':')
        .map(|(_, m)| format!(":{m}"))
        .unwrap_or_default();
    EventSpec {
        name: format!("cpu-clock{suffix}"),
        kind: EventKind::Software(b::PERF_COUNT_SW_CPU_CLOCK.into()),
        exclude_user: spec.exclude_user,
        exclude_kernel: spec.exclude_kernel,
    }
}

/// True for the default `cycles` event (any alias), which falls back to cpu-clock without a PMU.
pub fn is_cycles(spec: &EventSpec) -> bool {
    spec.kind == EventKind::Hardware(b::PERF_COUNT_HW_CPU_CYCLES.into())
}

/// True when perf_event_open's error means "no such PMU/event on this machine".
pub fn is_unsupported_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO | libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_attr_matches_the_uapi_layout() {
        let attr = EventAttr {
            type_: 1,
            config: 0x1234,
            period_or_freq: 999,
            freq: true,
            sample_type: 0x10087,
            read_format: 0x14,
            disabled: true,
            sample_id_all: true,
            wakeup: 7,
            sample_regs_user: 0xff0fff,
            sample_stack_user: 8192,
            ..EventAttr::default()
        };
        let bytes = sys::encode_attr(&attr.to_kernel());
        let u32_at = |o: usize| u32::from_ne_bytes(bytes[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_ne_bytes(bytes[o..o + 8].try_into().unwrap());
        assert_eq!(bytes.len(), 128);
        assert_eq!(u32_at(0), 1);
        assert_eq!(u32_at(4), 128);
        assert_eq!(u64_at(8), 0x1234);
        assert_eq!(u64_at(16), 999);
        assert_eq!(u64_at(24), 0x10087);
        assert_eq!(u64_at(32), 0x14);
        // bit 0 disabled, bit 10 freq, bit 18 sample_id_all (perf_event.h bitfield order).
        assert_eq!(u64_at(40), 1 | 1 << 10 | 1 << 18);
        assert_eq!(u32_at(48), 7);
        assert_eq!(u64_at(80), 0xff0fff);
        assert_eq!(u32_at(88), 8192);
    }

    #[test]
    fn hardware_and_software_names_and_aliases() {
        let e = parse_event("cycles").unwrap();
        assert_eq!(e.kind, EventKind::Hardware(0));
        assert!(is_cycles(&e));
        assert_eq!(
            parse_event("branches").unwrap().kind,
            EventKind::Hardware(4)
        );
        assert_eq!(
            parse_event("ref-cycles").unwrap().kind,
            EventKind::Hardware(9)
        );
        assert_eq!(parse_event("cs").unwrap().name, "context-switches");
        assert_eq!(parse_event("faults").unwrap().name, "page-faults");
        assert_eq!(
            parse_event("migrations").unwrap().kind,
            EventKind::Software(4)
        );
        assert_eq!(
            parse_event("major-faults").unwrap().kind,
            EventKind::Software(6)
        );
        assert_eq!(
            parse_event("task-clock").unwrap().kind,
            EventKind::Software(1)
        );
    }

    #[test]
    fn modifiers() {
        let u = parse_event("cpu-clock:u").unwrap();
        assert!(u.exclude_kernel && !u.exclude_user);
        assert_eq!(u.name, "cpu-clock:u");
        let k = parse_event("page-faults:k").unwrap();
        assert!(k.exclude_user && !k.exclude_kernel);
        let uk = parse_event("cycles:uk").unwrap();
        assert!(!uk.exclude_user && !uk.exclude_kernel);
        assert!(matches!(
            parse_event("cycles:up"),
            Err(Error::InvalidEvent { .. })
        ));
    }

    #[test]
    fn tracepoints_and_raw() {
        let t = parse_event("sched:sched_switch").unwrap();
        assert_eq!(
            t.kind,
            EventKind::Tracepoint {
                system: "sched".into(),
                name: "sched_switch".into()
            }
        );
        let tk = parse_event("sched:sched_switch:k").unwrap();
        assert!(tk.exclude_user);
        assert_eq!(tk.name, "sched:sched_switch:k");
        assert_eq!(parse_event("r1a2b").unwrap().kind, EventKind::Raw(0x1a2b));
        assert!(parse_event("r12345678901234567890").is_err());
        assert!(matches!(
            parse_event("sys:"),
            Err(Error::InvalidEvent { .. })
        ));
    }

    #[test]
    fn lists() {
        let list = parse_event_list("cycles, page-faults:u,cs").unwrap();
        let names: Vec<_> = list.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["cycles", "page-faults:u", "context-switches"]);
        assert!(parse_event_list("cycles,bogus").is_err());
    }

    #[test]
    fn missing_tracefs_says_how_to_mount_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tracing");
        let text = tracefs_unavailable_at(
            &[root.to_str().unwrap()],
            Some(&io::Error::from_raw_os_error(libc::EPERM)),
        );
        assert!(
            text.starts_with(&format!("tracefs is not mounted at {}", root.display())),
            "{text}"
        );
        assert!(text.contains("mounting it failed"), "{text}");
        assert!(text.contains("mount -t tracefs"), "{text}");
    }

    #[test]
    fn named_events_group_aliases_under_the_canonical_name() {
        let named = named_events();
        let cs = named
            .iter()
            .find(|(k, _)| *k == EventKind::Software(3))
            .unwrap();
        assert_eq!(cs.1, ["context-switches", "cs"]);
        let total: usize = named.iter().map(|(_, n)| n.len()).sum();
        assert_eq!(total, known_event_names().count());
    }

    #[test]
    fn groups_and_singles() {
        let g =
            parse_event_groups("cycles,{instructions, branches}:u,sched:sched_switch:k").unwrap();
        assert_eq!(g.len(), 3);
        assert!(!g[0].braced && g[0].members.len() == 1);
        assert!(g[1].braced);
        let names: Vec<_> = g[1].members.iter().map(|m| m.display.as_str()).collect();
        assert_eq!(names, ["instructions", "branches"]);
        assert!(g[1].members.iter().all(|m| m.spec.exclude_kernel));
        assert_eq!(g[2].members[0].display, "sched:sched_switch");
        assert!(g[2].members[0].spec.exclude_user);
        let cs = parse_event_groups("cs").unwrap();
        assert_eq!(cs[0].members[0].display, "cs");
        assert_eq!(cs[0].members[0].spec.name, "context-switches");
        assert_eq!(parse_event_groups("{cs}").unwrap()[0].members.len(), 1);
        for bad in ["{cs", "cs}", "{}", "{cs}x", "{{cs}}", "{cs,bogus}"] {
            assert!(parse_event_groups(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_event_groups("{cs,cpu-clok}"),
            Err(Error::UnknownEvent { .. })
        ));
    }

    #[test]
    fn unknown_names_suggest_close_matches() {
        let Err(Error::UnknownEvent { name, suggestions }) = parse_event("cylces") else {
            panic!("expected UnknownEvent");
        };
        assert_eq!(name, "cylces");
        assert_eq!(suggestions.first().map(String::as_str), Some("cycles"));
        let Err(err) = parse_event("cpu-clok") else {
            panic!()
        };
        assert!(err.to_string().contains("did you mean: cpu-clock"), "{err}");
        let Err(Error::UnknownEvent { suggestions, .. }) = parse_event("instr") else {
            panic!()
        };
        assert!(
            suggestions.contains(&"instructions".to_owned()),
            "{suggestions:?}"
        );
        let Err(err) = parse_event("zzzzzzzzzz") else {
            panic!()
        };
        assert!(
            err.to_string().contains("cpu-clock"),
            "lists known events: {err}"
        );
    }

    #[test]
    fn fallback_keeps_modifiers() {
        let f = cpu_clock_fallback(&parse_event("cycles:u").unwrap());
        assert_eq!(f.name, "cpu-clock:u");
        assert!(f.exclude_kernel);
        assert_eq!(f.kind, EventKind::Software(0));
    }

    #[test]
    fn unsupported_errors() {
        assert!(is_unsupported_error(&io::Error::from_raw_os_error(
            libc::ENOENT
        )));
        assert!(is_unsupported_error(&io::Error::from_raw_os_error(
            libc::EOPNOTSUPP
        )));
        assert!(!is_unsupported_error(&io::Error::from_raw_os_error(
            libc::EACCES
        )));
    }
}
