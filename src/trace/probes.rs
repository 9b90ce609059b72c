//! Probe events in `kprof trace`: a probe's arguments as event fields (`arg0`.., `retval`, USDT
//! operands; an operand in memory kprof did not capture as `argN_addr`, its address), the
//! fields aggregations may name, and `--latency u:PATH:FUNC` as the uprobe..uretprobe pair.
//!
//! A probe event is recognised by its name, which is its spec with the resolved path
//! (`u:/usr/lib/x86_64-linux-gnu/libc.so.6:malloc`), and its site by the attr's `config2` (the
//! file offset): a USDT probe may have several sites under one name, each with its own operands.

use std::borrow::Cow;

use anyhow::{Context, Result};
use kprof_profiler::probe::args::ReadGlobal;
use kprof_profiler::probe::globals::ProcessGlobals;
use kprof_profiler::probe::{
    self, ArgValue, Location, ProbeKind, ProbeSpec, ResolveContext, ResolvedProbe, SampledRegs,
    StackCopy,
};

use crate::trace::agg::EventFields;
use crate::trace::event::Value;

/// Field names of arguments read from memory kprof did not capture: their address.
const ADDRESS_NAMES: [&str; 12] = [
    "arg0_addr",
    "arg1_addr",
    "arg2_addr",
    "arg3_addr",
    "arg4_addr",
    "arg5_addr",
    "arg6_addr",
    "arg7_addr",
    "arg8_addr",
    "arg9_addr",
    "arg10_addr",
    "arg11_addr",
];

/// The probe site of a recorded event named `name` whose attr has `config2` (its offset); `None`
/// for events that are not probes or whose file cannot be read any more.
pub fn probe_of(name: &str, config2: u64) -> Option<ResolvedProbe> {
    if !probe::is_probe_spec(name) {
        return None;
    }
    let spec = probe::parse(name).ok()?;
    let sites = probe::resolve(&spec, &ResolveContext::default()).ok()?;
    let by_offset = sites.iter().position(|s| s.offset == config2);
    let index = by_offset.unwrap_or(0);
    sites.into_iter().nth(index)
}

/// The fields a probe event has, for checking `--hist`, `--sum`, `--by` against them.
pub fn event_fields(probe: &ResolvedProbe) -> EventFields {
    let fields = match probe.kind {
        ProbeKind::Usdt => probe
            .usdt_args
            .iter()
            .zip(probe::args::ARG_NAMES)
            .map(|(_, name)| (name.to_owned(), true))
            .collect(),
        ProbeKind::Uretprobe | ProbeKind::Kretprobe => vec![("retval".to_owned(), true)],
        ProbeKind::Uprobe | ProbeKind::Kprobe => probe
            .arch
            .argument_registers()
            .iter()
            .zip(probe::args::ARG_NAMES)
            .map(|(_, name)| (name.to_owned(), true))
            .collect(),
    };
    EventFields {
        name: probe.name.clone(),
        fields,
    }
}

/// Appends the arguments of one sample of `probe` to `out`: `regs` as the sample dumped them
/// (the attr's mask, one value per set bit), `stack` the valid bytes of its user stack copy,
/// `globals` the reader of USDT `sym(%rip)` operands.
pub fn push_fields(
    probe: &ResolvedProbe,
    regs: Option<(u64, &[u64])>,
    stack: Option<&[u8]>,
    globals: &mut ReadGlobal<'_>,
    out: &mut Vec<(&'static str, Value<'static>)>,
) {
    let Some((mask, values)) = regs else {
        return;
    };
    let sampled = SampledRegs { mask, values };
    let copy = match (stack, sampled.get(probe.arch.stack_pointer())) {
        (Some(bytes), Some(sp)) => Some(StackCopy { sp, bytes }),
        _ => None,
    };
    for (index, (name, value)) in probe
        .arguments_reading(&sampled, copy.as_ref(), globals)
        .into_iter()
        .enumerate()
    {
        match value {
            ArgValue::Signed(v) => out.push((name, Value::Signed(v))),
            ArgValue::Unsigned(v) => out.push((name, Value::Unsigned(v))),
            ArgValue::Unread { address } => {
                let addr_name = probe::args::ARG_NAMES
                    .iter()
                    .position(|n| *n == name)
                    .and_then(|i| ADDRESS_NAMES.get(i))
                    .or_else(|| ADDRESS_NAMES.get(index));
                if let Some(addr_name) = addr_name {
                    out.push((addr_name, Value::Unsigned(address)));
                }
            }
            ArgValue::Missing => {}
        }
    }
}

/// The notes for a probe whose USDT operands lie in memory kprof does not capture (a global,
/// a far stack slot). Globals (`sym(%rip)`) are read from the live process when `live`, at
/// decode time rather than at the hit; otherwise, like the rest, they appear as `argN_addr`,
/// their address.
pub fn unread_operands_notes(probe: &ResolvedProbe, live: bool) -> Vec<String> {
    let mut far = Vec::new();
    let mut late = Vec::new();
    for (arg, name) in probe.usdt_args.iter().zip(probe::args::ARG_NAMES) {
        match arg {
            Ok(a) if a.global.is_some() && live => late.push(format!("{name} ({})", a.text)),
            Ok(a)
                if matches!(
                    a.operand,
                    probe::usdt::Operand::Memory {
                        symbol: Some(_),
                        ..
                    } | probe::usdt::Operand::Memory { base: None, .. }
                ) =>
            {
                far.push(format!("{name} ({})", a.text));
            }
            Err(why) => far.push(format!("{name} ({why})")),
            _ => {}
        }
    }
    let mut notes = Vec::new();
    if !late.is_empty() {
        notes.push(format!(
            "note: {}: {} read from the process's memory when kprof decodes the event, not at \
             the hit (perf samples carry no globals): a variable that changes in between \
             shows its later value, and one of an exited process its address (argN_addr)",
            probe.name,
            late.join(", ")
        ));
    }
    if !far.is_empty() {
        notes.push(format!(
            "note: {}: {} not read (memory outside the captured stack); shown as argN_addr, \
             the address (a global's as linked in the file)",
            probe.name,
            far.join(", ")
        ));
    }
    notes
}

/// `--latency u:PATH:FUNC` (one uprobe spec, no `..`): the names of the entry and return
/// events to open and pair, resolved against `context`. `None` when `latency` is not a single
/// function probe (then it is `START..END`).
pub fn latency_pair(latency: &str, context: &ResolveContext) -> Result<Option<(String, String)>> {
    if latency.contains("..") || !probe::is_probe_spec(latency) {
        return Ok(None);
    }
    let spec = probe::parse(latency).with_context(|| format!("--latency {latency}"))?;
    let (ProbeKind::Uprobe, Location::Symbol { name, offset: 0 }) = (spec.kind, &spec.location)
    else {
        anyhow::bail!(
            "--latency {latency}: give a function (u:PATH:FUNC), whose entry and return are \
             paired, or START..END"
        );
    };
    let entry = probe::resolve(&spec, context).with_context(|| format!("probe '{latency}'"))?;
    let site = entry.first().context("the probe resolved to no site")?;
    let return_spec = ProbeSpec {
        kind: ProbeKind::Uretprobe,
        path: Some(site.path.to_string_lossy().into_owned()),
        location: Location::Symbol {
            name: name.clone(),
            offset: 0,
        },
    };
    Ok(Some((site.name.clone(), return_spec.to_string())))
}

/// The probe events of a recording, by attr index: what the trace decoder asks for each
/// sample whose event has no tracepoint format.
#[derive(Debug, Default)]
pub struct ProbeEvents {
    by_attr: Vec<Option<ResolvedProbe>>,
    /// One note per probe whose arguments cannot be decoded (or only in part).
    pub notes: Vec<String>,
    /// Reader of USDT globals from live processes; `None` for a recording (its processes may
    /// be gone, their pids reused).
    globals: Option<ProcessGlobals>,
}

impl ProbeEvents {
    /// Recognises the probe events among `attrs` by their names. A USDT probe with several
    /// sites whose operands differ gets no arguments (the file does not say which site an attr
    /// is), with a note, rather than another site's values.
    /// `live`: the processes are running now, and USDT globals are read from them.
    pub fn from_attrs(attrs: &[kprof_perfdata::EventAttr], live: bool) -> ProbeEvents {
        let mut notes = Vec::new();
        let by_attr = attrs
            .iter()
            .map(|attr| {
                if !probe::is_probe_spec(&attr.name) {
                    return None;
                }
                let spec = probe::parse(&attr.name).ok()?;
                let sites = match probe::resolve(&spec, &ResolveContext::default()) {
                    Ok(sites) => sites,
                    Err(e) => {
                        notes.push(format!("note: {}: arguments not decoded: {e}", attr.name));
                        return None;
                    }
                };
                let first = sites.first()?.clone();
                if sites.iter().any(|s| s.usdt_args != first.usdt_args) {
                    notes.push(format!(
                        "note: {}: its sites pass arguments differently; arguments not decoded",
                        attr.name
                    ));
                    return None;
                }
                notes.extend(unread_operands_notes(&first, live));
                Some(first)
            })
            .collect();
        notes.dedup();
        ProbeEvents {
            by_attr,
            notes,
            globals: live.then(ProcessGlobals::default),
        }
    }

    /// Process `pid` exited: its globals can no longer be read, and its pid may be reused.
    pub fn process_exited(&mut self, pid: u32) {
        if let Some(globals) = &mut self.globals {
            globals.forget(pid);
        }
    }

    /// The probe of attr `index`, if it is one.
    pub fn probe(&self, index: usize) -> Option<&ResolvedProbe> {
        self.by_attr.get(index)?.as_ref()
    }

    /// Appends the arguments of `sample` (a sample of attr `sample.attr_index`) to `out`;
    /// false when its event is not a probe.
    pub fn push_sample_fields(
        &mut self,
        sample: &kprof_perfdata::Sample<'_>,
        out: &mut Vec<(&'static str, Value<'static>)>,
    ) -> bool {
        let Some(Some(probe)) = self.by_attr.get(sample.attr_index) else {
            return false;
        };
        let values: Option<Vec<u64>> = sample.regs_user.map(|regs| {
            (0..regs.mask.count_ones() as usize)
                .filter_map(|i| regs.values.get(i))
                .collect()
        });
        let regs = sample
            .regs_user
            .zip(values.as_deref())
            .map(|(r, v)| (r.mask, v));
        let pid = sample.pid;
        let path = probe.path.as_path();
        let mut read = |global: &probe::globals::GlobalOperand, size: u8| {
            self.globals.as_mut()?.read(pid?, path, global, size)
        };
        push_fields(probe, regs, sample.stack_user, &mut read, out);
        true
    }
}

/// A field value as text (for notes and tests).
pub fn value_text(value: &Value<'_>) -> Cow<'static, str> {
    match value {
        Value::Signed(v) => Cow::Owned(v.to_string()),
        Value::Unsigned(v) => Cow::Owned(v.to_string()),
        Value::Str(s) => Cow::Owned(s.to_string()),
        Value::Bytes(b) => Cow::Owned(format!("{b:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_function() -> (String, String) {
        let exe = std::env::current_exe().unwrap();
        let image = probe::elf::ElfImage::open(&exe).unwrap();
        let f = image
            .functions()
            .into_iter()
            .find(|f| f.size > 8 && f.demangled.is_none() && !f.name.contains(':'))
            .unwrap();
        (exe.to_string_lossy().into_owned(), f.name)
    }

    #[test]
    fn latency_of_a_function_is_its_entry_and_return() {
        let (exe, name) = own_function();
        let (entry, ret) = latency_pair(&format!("u:{exe}:{name}"), &ResolveContext::default())
            .unwrap()
            .unwrap();
        assert_eq!(entry, format!("u:{exe}:{name}"));
        assert_eq!(ret, format!("ur:{exe}:{name}"));
        assert!(
            latency_pair("sched:a..sched:b", &ResolveContext::default())
                .unwrap()
                .is_none()
        );
        assert!(latency_pair(&format!("ur:{exe}:{name}"), &ResolveContext::default()).is_err());
        // A recorded event name finds its site again.
        let site = probe_of(&entry, 0).unwrap();
        assert_eq!(site.name, entry);
        assert!(probe_of("sched:sched_switch", 0).is_none());
        let attrs = [
            kprof_perfdata::EventAttr {
                name: "sched:sched_switch".into(),
                ..Default::default()
            },
            kprof_perfdata::EventAttr {
                name: entry.clone(),
                ..Default::default()
            },
        ];
        let events = ProbeEvents::from_attrs(&attrs, false);
        assert!(events.probe(0).is_none());
        assert_eq!(
            events.probe(1).map(|p| p.name.as_str()),
            Some(entry.as_str())
        );
        let fields = event_fields(&site);
        assert_eq!(fields.fields.first().map(|f| f.0.as_str()), Some("arg0"));
    }

    #[test]
    fn fields_of_a_sample() {
        let (exe, name) = own_function();
        let site = probe_of(&format!("ur:{exe}:{name}"), 0).unwrap();
        let mask = site.sample_regs();
        let values: Vec<u64> = (0..mask.count_ones()).map(u64::from).collect();
        let mut out = Vec::new();
        let no_globals = &mut probe::args::no_globals;
        push_fields(&site, Some((mask, &values)), None, no_globals, &mut out);
        assert_eq!(out, [("retval", Value::Unsigned(0))]);
        out.clear();
        push_fields(&site, None, None, no_globals, &mut out);
        assert!(out.is_empty());
        assert_eq!(value_text(&Value::Signed(-3)), "-3");
    }
}
