//! Firefox Profiler exporter: the profile in the processed profile format, through the
//! `fxprof-processed-profile` crate.
//!
//! - One process per pid and one thread per tid; with several events, one thread per
//!   (tid, event), named `name [event]`, because a thread has a single weighted sample table.
//! - Sample times are nanoseconds since the first sample (perf's clock has no epoch, so the
//!   reference timestamp is the Unix epoch).
//! - Weights: the Firefox Profiler reads a weight as "observed n times at the profile's
//!   interval". For clock events the interval is their mean period and a sample weighs
//!   `round(period / interval)`, so weights × interval add up to the recorded time; other
//!   events weigh their period (the event count the sample stands for).
//! - Frames carry their module as a library and a category: User, Kernel, JIT, or Other for
//!   unknown addresses (labels without a library).
//!
//! The crate gives a frame a library (a "resource") only when the frame is an address in
//! that library resolved through the library's symbol table, and its symbol table has one
//! name per address. kprof has already symbolized every frame, inlined ones included, which
//! share an address with their caller. So each distinct function of a module gets its own
//! pseudo-address (its index in the module) and a one-byte symbol there, and the profile is
//! marked symbolicated so the Profiler never looks these addresses up: in this file, frame
//! addresses are function indices, not code addresses.

use std::collections::hash_map::Entry;
use std::io::{self, Write};
use std::sync::Arc;

use fxprof_processed_profile::debugid::DebugId;
use fxprof_processed_profile::{
    CategoryColor, CategoryHandle, CategoryPairHandle, CpuDelta, Frame as FxFrame, FrameFlags,
    FrameHandle, FrameInfo, LibraryHandle, LibraryInfo, ProcessHandle, Profile as FxProfile,
    ReferenceTimestamp, SamplingInterval, StackHandle, Symbol, SymbolTable, ThreadHandle,
    Timestamp,
};
use rustc_hash::FxHashMap as HashMap;

use crate::profile::{Frame, FrameId, FrameKind, Profile, Sample, StackId, ThreadId};

/// Writes `profile` to `w` as Firefox Profiler JSON.
pub(super) fn write(profile: &Profile, w: &mut dyn Write) -> io::Result<()> {
    let fx = Converter::new(profile).convert();
    serde_json::to_writer(w, &fx)?;
    Ok(())
}

/// Where a model frame goes in the Firefox profile.
#[derive(Clone, Copy)]
enum FrameTarget {
    /// A pseudo-address in a library, resolved by its symbol table.
    InLib(LibraryHandle, u32),
    /// A plain label: no module is known.
    Label,
}

/// Firefox thread key: the model thread and, with several events, the event.
type ThreadKey = (ThreadId, u16);

struct Converter<'p> {
    profile: &'p Profile,
    fx: FxProfile,
    /// First sample time; Firefox times count from it.
    start: u64,
    /// Mean period of the clock events in nanoseconds, if any were sampled.
    clock_interval: Option<u64>,
    categories: [CategoryPairHandle; 3],
    targets: Vec<FrameTarget>,
    processes: HashMap<u32, ProcessHandle>,
    threads: HashMap<ThreadKey, ThreadHandle>,
    frames: HashMap<(ThreadHandle, FrameId), FrameHandle>,
    stacks: HashMap<(ThreadHandle, StackId), StackHandle>,
}

impl<'p> Converter<'p> {
    fn new(profile: &'p Profile) -> Self {
        let (clock_period, clock_samples) = profile
            .events
            .iter()
            .filter(|e| super::shared::is_clock_event(&e.name))
            .fold((0u64, 0u64), |(p, n), e| {
                (p.saturating_add(e.total_period), n + e.sample_count)
            });
        // Off-CPU intervals run from nanoseconds to seconds: weights count microseconds.
        let clock_interval = if profile
            .events
            .iter()
            .any(|e| super::shared::is_interval_event(&e.name))
        {
            Some(1_000)
        } else {
            clock_period.checked_div(clock_samples).filter(|&i| i > 0)
        };
        let interval = match clock_interval {
            Some(nanos) => SamplingInterval::from_nanos(nanos),
            None => SamplingInterval::from_millis(1),
        };
        let product = profile
            .threads
            .first()
            .map_or("kprof", |t| t.process_name.as_str());
        let mut fx = FxProfile::new(
            product,
            ReferenceTimestamp::from_millis_since_unix_epoch(0.0),
            interval,
        );
        fx.set_symbolicated(true);
        fx.set_os_name("Linux");
        let categories = [
            fx.add_category("User", CategoryColor::Yellow).into(),
            fx.add_category("Kernel", CategoryColor::Orange).into(),
            fx.add_category("JIT", CategoryColor::Green).into(),
        ];
        let start = super::shared::time_range(profile).map_or(0, |(first, _)| first);
        let mut converter = Converter {
            profile,
            fx,
            start,
            clock_interval,
            categories,
            targets: Vec::new(),
            processes: HashMap::default(),
            threads: HashMap::default(),
            frames: HashMap::default(),
            stacks: HashMap::default(),
        };
        converter.add_libraries();
        converter
    }

    /// Adds one library per module, with a symbol per distinct function name.
    fn add_libraries(&mut self) {
        let mut modules: Vec<(Arc<str>, Vec<Arc<str>>)> = Vec::new();
        let mut module_index: HashMap<Arc<str>, usize> = HashMap::default();
        let mut function_index: HashMap<(usize, Arc<str>), u32> = HashMap::default();
        let mut placed: Vec<Option<(usize, u32)>> = Vec::with_capacity(self.profile.frames.len());
        for frame in &self.profile.frames {
            if frame.kind == FrameKind::Unknown || frame.module.is_empty() {
                placed.push(None);
                continue;
            }
            let m = *module_index
                .entry(Arc::clone(&frame.module))
                .or_insert_with(|| {
                    modules.push((Arc::clone(&frame.module), Vec::new()));
                    modules.len() - 1
                });
            let Some((_, functions)) = modules.get_mut(m) else {
                placed.push(None);
                continue;
            };
            let address = match function_index.entry((m, Arc::clone(&frame.function))) {
                Entry::Occupied(entry) => *entry.get(),
                Entry::Vacant(entry) => {
                    let Ok(address) = u32::try_from(functions.len()) else {
                        placed.push(None);
                        continue;
                    };
                    functions.push(Arc::clone(&frame.function));
                    *entry.insert(address)
                }
            };
            placed.push(Some((m, address)));
        }
        let arch = self.profile.meta.arch.clone();
        let handles: Vec<LibraryHandle> = modules
            .into_iter()
            .map(|(module, functions)| {
                let symbols = functions
                    .iter()
                    .zip(0u32..)
                    .map(|(name, address)| Symbol {
                        address,
                        size: Some(1),
                        name: name.to_string(),
                    })
                    .collect();
                let name = super::shared::module_basename(&module).to_owned();
                self.fx.add_lib(LibraryInfo {
                    debug_name: name.clone(),
                    name,
                    path: module.to_string(),
                    debug_path: module.to_string(),
                    debug_id: DebugId::nil(),
                    code_id: None,
                    arch: arch.clone(),
                    symbol_table: Some(Arc::new(SymbolTable::new(symbols))),
                })
            })
            .collect();
        self.targets = placed
            .into_iter()
            .map(
                |place| match place.and_then(|(m, a)| Some((*handles.get(m)?, a))) {
                    Some((lib, address)) => FrameTarget::InLib(lib, address),
                    None => FrameTarget::Label,
                },
            )
            .collect();
    }

    fn convert(mut self) -> FxProfile {
        let profile = self.profile;
        for sample in &profile.samples {
            let Some(thread) = self.thread(sample) else {
                continue;
            };
            let stack = sample.stack.and_then(|s| self.stack(thread, s));
            let time =
                Timestamp::from_nanos_since_reference(sample.time.saturating_sub(self.start));
            let weight = self.weight(sample);
            self.fx
                .add_sample(thread, time, stack, CpuDelta::ZERO, weight);
        }
        self.fx
    }

    /// The sample's weight (see the module docs).
    fn weight(&self, sample: &Sample) -> i32 {
        let is_clock = self
            .profile
            .events
            .get(usize::from(sample.event))
            .is_some_and(|e| super::shared::is_clock_event(&e.name));
        let weight = match self.clock_interval {
            Some(interval) if is_clock => {
                (sample.period.saturating_add(interval / 2) / interval).max(1)
            }
            _ => sample.period,
        };
        i32::try_from(weight).unwrap_or(i32::MAX)
    }

    /// The Firefox thread of `sample`, created (with its process) on first use.
    fn thread(&mut self, sample: &Sample) -> Option<ThreadHandle> {
        let several_events = self.profile.events.len() > 1;
        let key = (sample.thread, if several_events { sample.event } else { 0 });
        if let Some(&handle) = self.threads.get(&key) {
            return Some(handle);
        }
        let thread = self.profile.threads.get(sample.thread as usize)?;
        let time = Timestamp::from_nanos_since_reference(sample.time.saturating_sub(self.start));
        let process = match self.processes.entry(thread.pid) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => {
                *entry.insert(self.fx.add_process(&thread.process_name, thread.pid, time))
            }
        };
        // The Firefox Profiler names a main thread after its process: only the first event's
        // copy of the main thread is marked main, so the other copies keep their event suffix.
        let is_main = thread.tid == thread.pid && key.1 == 0;
        let handle = self.fx.add_thread(process, thread.tid, time, is_main);
        let mut name = thread.name.clone();
        let event = self.profile.events.get(usize::from(sample.event));
        if let Some(event) = event.filter(|_| several_events) {
            name = format!("{name} [{}]", event.name);
        }
        self.fx.set_thread_name(handle, &name);
        self.threads.insert(key, handle);
        Some(handle)
    }

    /// The Firefox stack for the model's `stack` in `thread`, interning missing prefixes.
    fn stack(&mut self, thread: ThreadHandle, stack: StackId) -> Option<StackHandle> {
        // Walk towards the root until a known prefix, then intern back down to the leaf.
        let mut missing = Vec::new();
        let mut next = Some(stack);
        let mut parent = None;
        while let Some(id) = next {
            if let Some(&known) = self.stacks.get(&(thread, id)) {
                parent = Some(known);
                break;
            }
            let node = self.profile.stacks.get(id as usize)?;
            if missing.len() >= self.profile.stacks.len() {
                return None; // The parent links cycle: a corrupt stack table.
            }
            missing.push((id, node.frame));
            next = node.parent;
        }
        for (id, frame) in missing.into_iter().rev() {
            let frame = self.frame(thread, frame)?;
            let handle = self.fx.intern_stack(thread, parent, frame);
            self.stacks.insert((thread, id), handle);
            parent = Some(handle);
        }
        parent
    }

    fn frame(&mut self, thread: ThreadHandle, id: FrameId) -> Option<FrameHandle> {
        if let Some(&handle) = self.frames.get(&(thread, id)) {
            return Some(handle);
        }
        let frame = self.profile.frames.get(id as usize)?;
        let target = self
            .targets
            .get(id as usize)
            .copied()
            .unwrap_or(FrameTarget::Label);
        let info = FrameInfo {
            frame: match target {
                FrameTarget::InLib(lib, address) => {
                    FxFrame::RelativeAddressFromInstructionPointer(lib, address)
                }
                FrameTarget::Label => FxFrame::Label(self.fx.intern_string(&frame.function)),
            },
            category_pair: self.category(frame),
            flags: FrameFlags::empty(),
        };
        let handle = self.fx.intern_frame(thread, info);
        self.frames.insert((thread, id), handle);
        Some(handle)
    }

    fn category(&self, frame: &Frame) -> CategoryPairHandle {
        let [user, kernel, jit] = self.categories;
        match frame.kind {
            FrameKind::User => user,
            FrameKind::Kernel => kernel,
            FrameKind::Jit => jit,
            FrameKind::Unknown => CategoryHandle::OTHER.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::export::test_support::{sample_profile, written_json};

    /// One decoded sample: leaf function, its category and library path, time (ms), weight.
    #[derive(Debug)]
    struct Row {
        leaf: Option<String>,
        category: Option<String>,
        lib: Option<String>,
        time_ms: f64,
        weight: i64,
    }

    /// Per output thread `(pid, tid, event)`, its samples in order.
    fn decode(json: &Value, profile: &Profile) -> BTreeMap<(String, String, String), Vec<Row>> {
        let categories = json["meta"]["categories"].as_array().unwrap();
        let libs = json["libs"].as_array().unwrap();
        let mut out = BTreeMap::new();
        for t in json["threads"].as_array().unwrap() {
            let strings = t["stringArray"].as_array().unwrap();
            let name = t["name"].as_str().unwrap();
            let event = match name.rsplit_once(" [") {
                Some((_, rest)) => rest.trim_end_matches(']').to_owned(),
                None => profile.events[0].name.clone(),
            };
            let tid = t["tid"]
                .as_str()
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .to_owned();
            let key = (t["pid"].as_str().unwrap().to_owned(), tid, event);
            let samples = &t["samples"];
            let mut time = 0.0;
            let mut rows = Vec::new();
            for i in 0..samples["length"].as_u64().unwrap() as usize {
                time += samples["timeDeltas"][i].as_f64().unwrap();
                let stack = &samples["stack"][i];
                let (mut leaf, mut category, mut lib) = (None, None, None);
                if let Some(stack) = stack.as_u64() {
                    let frame = t["stackTable"]["frame"][stack as usize].as_u64().unwrap() as usize;
                    let func = t["frameTable"]["func"][frame].as_u64().unwrap() as usize;
                    let name = t["funcTable"]["name"][func].as_u64().unwrap() as usize;
                    leaf = Some(strings[name].as_str().unwrap().to_owned());
                    let c = t["frameTable"]["category"][frame].as_u64().unwrap() as usize;
                    category = Some(categories[c]["name"].as_str().unwrap().to_owned());
                    if let Some(resource) = t["funcTable"]["resource"][func]
                        .as_i64()
                        .filter(|&r| r >= 0)
                    {
                        let l = t["resourceTable"]["lib"][resource as usize]
                            .as_u64()
                            .unwrap() as usize;
                        lib = Some(libs[l]["path"].as_str().unwrap().to_owned());
                    }
                }
                let weight = samples["weight"][i].as_i64().unwrap();
                rows.push(Row {
                    leaf,
                    category,
                    lib,
                    time_ms: time,
                    weight,
                });
            }
            assert!(out.insert(key, rows).is_none(), "thread listed twice");
        }
        out
    }

    #[test]
    fn threads_keep_their_samples_leaves_and_times() {
        let profile = sample_profile();
        let json = written_json(write, &profile);
        let decoded = decode(&json, &profile);
        let start = profile.samples.iter().map(|s| s.time).min().unwrap();
        let mut expected: BTreeMap<(String, String, String), Vec<_>> = BTreeMap::new();
        for sample in &profile.samples {
            let thread = &profile.threads[sample.thread as usize];
            let event = &profile.events[usize::from(sample.event)].name;
            let key = (
                thread.pid.to_string(),
                thread.tid.to_string(),
                event.clone(),
            );
            expected.entry(key).or_default().push(sample);
        }
        let decoded_counts: Vec<_> = decoded.iter().map(|(k, v)| (k, v.len())).collect();
        let expected_counts: Vec<_> = expected.iter().map(|(k, v)| (k, v.len())).collect();
        assert_eq!(decoded_counts, expected_counts, "per-thread sample counts");
        for (key, samples) in &expected {
            let rows = &decoded[key];
            for (sample, row) in samples.iter().zip(rows) {
                let leaf = profile.frames_leaf_first(sample.stack).next();
                let frame = leaf.map(|f| &profile.frames[f as usize]);
                assert_eq!(row.leaf.as_deref(), frame.map(|f| &*f.function), "{key:?}");
                let expected_ms = (sample.time - start) as f64 / 1e6;
                assert!(
                    (row.time_ms - expected_ms).abs() < 1e-6,
                    "{row:?} vs {expected_ms}"
                );
            }
        }
    }

    #[test]
    fn weights_add_up_to_periods() {
        let profile = sample_profile();
        let json = written_json(write, &profile);
        let interval_ns = json["meta"]["interval"].as_f64().unwrap() * 1e6;
        let decoded = decode(&json, &profile);
        for (index, event) in profile.events.iter().enumerate() {
            let periods: u64 = profile
                .samples
                .iter()
                .filter(|s| usize::from(s.event) == index)
                .map(|s| s.period)
                .sum();
            let rows = decoded
                .iter()
                .filter(|(k, _)| k.2 == event.name)
                .flat_map(|(_, r)| r);
            let weights: i64 = rows.clone().map(|r| r.weight).sum();
            if event.name == "cpu-clock" {
                // Rounding each sample to whole intervals is off by at most half an interval.
                let slack = rows.count() as f64 * interval_ns / 2.0;
                assert!((weights as f64 * interval_ns - periods as f64).abs() <= slack);
            } else {
                assert_eq!(weights, i64::try_from(periods).unwrap(), "{}", event.name);
            }
        }
    }

    #[test]
    fn frames_carry_categories_and_libraries() {
        let profile = sample_profile();
        let decoded = decode(&written_json(write, &profile), &profile);
        let mut seen = BTreeMap::new();
        for row in decoded.values().flatten() {
            if let Some(leaf) = &row.leaf {
                seen.insert(leaf.clone(), (row.category.clone(), row.lib.clone()));
            }
        }
        for frame in &profile.frames {
            let Some((category, lib)) = seen.get(&*frame.function) else {
                continue;
            };
            let (want_category, want_lib) = match frame.kind {
                FrameKind::User => ("User", Some(&*frame.module)),
                FrameKind::Kernel => ("Kernel", Some(&*frame.module)),
                FrameKind::Jit => ("JIT", Some(&*frame.module)),
                FrameKind::Unknown => ("Other", None),
            };
            assert_eq!(
                category.as_deref(),
                Some(want_category),
                "{}",
                frame.function
            );
            assert_eq!(lib.as_deref(), want_lib, "{}", frame.function);
        }
        for kind in ["User", "Kernel", "JIT", "Other"] {
            assert!(
                seen.values().any(|(c, _)| c.as_deref() == Some(kind)),
                "no {kind} leaf"
            );
        }
    }

    #[test]
    fn inlined_frames_stay_in_the_stack() {
        let profile = sample_profile();
        let json = written_json(write, &profile);
        let main = json["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tid"] == "100")
            .unwrap();
        let strings: Vec<&str> = main["stringArray"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        // Walk the deepest inlined stack from its leaf to the root.
        let stack_table = &main["stackTable"];
        let names_of = |mut stack: Option<u64>| {
            let mut names = Vec::new();
            while let Some(s) = stack {
                let frame = stack_table["frame"][s as usize].as_u64().unwrap() as usize;
                let func = main["frameTable"]["func"][frame].as_u64().unwrap() as usize;
                names.push(strings[main["funcTable"]["name"][func].as_u64().unwrap() as usize]);
                stack = stack_table["prefix"][s as usize].as_u64();
            }
            names
        };
        let stacks: Vec<Vec<&str>> = (0..stack_table["length"].as_u64().unwrap())
            .map(|s| names_of(Some(s)))
            .collect();
        assert!(stacks.contains(&vec!["helper_leaf", "helper", "compute", "main"]));
        assert!(stacks.contains(&vec!["ksys_write", "entry_SYSCALL_64", "write", "main"]));
    }
}
