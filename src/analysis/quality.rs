//! What a user should know about a profile's quality, and what to do about it: how far
//! frame-pointer stacks reached, how DWARF walks ended, which modules left addresses
//! unresolved. The engine ([`super::unwinding`], the replay, the symbolizer) only counts; the
//! summaries and fix texts that `report` prints live here.

use std::collections::BTreeMap;

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use kprof_symbolizer::ModuleReport;
use kprof_symbolizer::unwind::UnwindEnd;
use serde::Serialize;

/// Whether frame-pointer (`-g`) user stacks reach a thread or process entry point, or end early
/// because some code on the stack keeps no frame pointer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FramePointerReport {
    /// Samples whose user stack came from a frame-pointer callchain.
    pub user_stacks: u64,
    /// Of those, the ones whose outermost frame is an entry point (`_start`, `main`,
    /// `start_thread`, `clone`, ...).
    pub complete: u64,
    /// The others, by the module of their outermost frame (where the chain broke).
    pub ended_early_in: BTreeMap<String, u64>,
}

impl FramePointerReport {
    /// The report of frame-pointer user stacks grouped by how they end: per group, the
    /// outermost function (when known), the module of the outermost frame in a known module,
    /// and how many stacks end so. Counted on the pool: a machine-wide recording has a group
    /// per outermost frame, 79k of them on a build, and naming each group's module one by one
    /// took 20-30 ms (issue #13).
    pub(super) fn of_ends<'a>(
        ends: impl ParallelIterator<Item = (Option<&'a str>, Option<&'a str>, u64)>,
    ) -> Self {
        let counts = ends
            .fold(
                EndCounts::default,
                |mut counts, (function, module, stacks)| {
                    counts.add(function, module, stacks);
                    counts
                },
            )
            .reduce(EndCounts::default, EndCounts::merge);
        FramePointerReport {
            user_stacks: counts.user_stacks,
            complete: counts.complete,
            ended_early_in: counts
                .ended_early_in
                .into_iter()
                .map(|(module, stacks)| (module.to_string(), stacks))
                .collect(),
        }
    }

    /// The `report` lines: the share of stacks that reach an entry point, and, when more than
    /// 1% end early, where they end and what to do.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.user_stacks == 0 {
            return lines;
        }
        let early = self.user_stacks - self.complete;
        lines.push(format!(
            "frame pointers: {} user stacks, {:.1}% reach an entry point (_start, main, a thread start)",
            self.user_stacks,
            self.complete as f64 * 100.0 / self.user_stacks as f64
        ));
        if early * 100 > self.user_stacks {
            let mut modules: Vec<(&String, &u64)> = self.ended_early_in.iter().collect();
            modules.sort_by(|a, b| b.1.cmp(a.1));
            let listed: Vec<String> = modules
                .iter()
                .take(5)
                .map(|(m, n)| format!("{m} ({n})"))
                .collect();
            lines.push(format!(
                "frame pointers: {early} stacks end early, in {}: that code keeps no frame pointer; record with --call-graph dwarf or build with -fno-omit-frame-pointer",
                listed.join(", ")
            ));
        }
        lines
    }
}

/// [`FramePointerReport`]'s counts while they are added, the modules by their names.
#[derive(Default)]
struct EndCounts<'a> {
    user_stacks: u64,
    complete: u64,
    ended_early_in: HashMap<&'a str, u64>,
}

impl<'a> EndCounts<'a> {
    /// Counts `stacks` stacks that end at `outermost_function` (when known), with their
    /// outermost frame in a known module in `known_module`.
    fn add(
        &mut self,
        outermost_function: Option<&str>,
        known_module: Option<&'a str>,
        stacks: u64,
    ) {
        self.user_stacks += stacks;
        match outermost_function {
            Some(function) if is_entry_point(function) => self.complete += stacks,
            _ => {
                *self
                    .ended_early_in
                    .entry(known_module.unwrap_or("[unknown]"))
                    .or_insert(0) += stacks
            }
        }
    }

    /// Both counts together.
    fn merge(mut self, other: EndCounts<'a>) -> Self {
        self.user_stacks += other.user_stacks;
        self.complete += other.complete;
        for (module, stacks) in other.ended_early_in {
            *self.ended_early_in.entry(module).or_insert(0) += stacks;
        }
        self
    }
}

/// Where a complete user stack starts: process and thread entry points, or `main` itself.
fn is_entry_point(function: &str) -> bool {
    function == "main"
        || function.ends_with("::main")
        || [
            "_start",
            "__libc_start",
            "start_thread",
            "clone",
            "__clone",
            "thread_start",
            "_dl_start",
        ]
        .iter()
        .any(|entry| function.starts_with(entry))
}

/// How the walks that ended in one module ended.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ModuleUnwind {
    /// Walks that reached the outermost frame (a root in the CFI, or the entry point).
    pub reached_root: u64,
    /// Walks that ran out of copied stack (continued with the frame-pointer chain when the
    /// sample had one).
    pub truncated: u64,
    /// Walks that stopped at a return address outside the process's code: the registers and
    /// the copied stack disagreed (a precise event's registers are taken ahead of its copy).
    pub bad_return_address: u64,
    /// Walks that stopped for another reason (no CFI, bad CFI, a loop).
    pub failed: u64,
    /// The reasons, counted.
    pub reasons: BTreeMap<&'static str, u64>,
}

impl ModuleUnwind {
    /// Counts one walk that ended with `end`.
    pub(super) fn add(&mut self, end: &UnwindEnd) {
        match end {
            UnwindEnd::ReachedRoot | UnwindEnd::ReachedEntryPoint => self.reached_root += 1,
            UnwindEnd::StackExhausted | UnwindEnd::JoinedFramePointerChain => self.truncated += 1,
            UnwindEnd::ReturnAddressOutsideCode => self.bad_return_address += 1,
            _ => self.failed += 1,
        }
        *self.reasons.entry(end.reason()).or_insert(0) += 1;
    }

    /// Adds another count of walks to this one.
    pub(super) fn merge(&mut self, other: &ModuleUnwind) {
        self.reached_root += other.reached_root;
        self.truncated += other.truncated;
        self.bad_return_address += other.bad_return_address;
        self.failed += other.failed;
        for (reason, count) in &other.reasons {
            *self.reasons.entry(reason).or_insert(0) += count;
        }
    }

    /// All the walks counted.
    pub fn walks(&self) -> u64 {
        self.reached_root + self.truncated + self.bad_return_address + self.failed
    }
}

/// Unwinding quality of a whole profile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UnwindReport {
    /// Samples whose user stack was unwound.
    pub samples: u64,
    /// Per module the walk ended in (`[unknown]` when outside every mapping).
    pub modules: BTreeMap<String, ModuleUnwind>,
}

impl UnwindReport {
    /// Samples whose walk reached the root.
    pub fn reached_root(&self) -> u64 {
        self.modules.values().map(|m| m.reached_root).sum()
    }

    /// Samples whose walk stopped at a return address outside the process's code.
    pub fn bad_return_addresses(&self) -> u64 {
        self.modules.values().map(|m| m.bad_return_address).sum()
    }

    /// The `report` lines: how the walks ended, then [`UnwindReport::problems`]; none when no
    /// sample was unwound.
    pub fn summary(&self) -> Vec<String> {
        if self.samples == 0 {
            return Vec::new();
        }
        let truncated: u64 = self.modules.values().map(|m| m.truncated).sum();
        let failed: u64 = self.modules.values().map(|m| m.failed).sum();
        let share = |n: u64| n as f64 * 100.0 / self.samples as f64;
        let bad = self.bad_return_addresses();
        let bad = if bad > 0 {
            format!(
                ", {:.1}% stopped at a return address outside code",
                share(bad)
            )
        } else {
            String::new()
        };
        let mut lines = vec![format!(
            "unwinding: {} user stacks: {:.1}% reached the root, {:.1}% truncated, {:.1}% stopped early{bad}",
            self.samples,
            share(self.reached_root()),
            share(truncated),
            share(failed)
        )];
        lines.extend(
            self.problems()
                .into_iter()
                .map(|line| format!("unwinding: {line}")),
        );
        lines
    }

    /// One line per module with incomplete walks, and what to try.
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (module, m) in &self.modules {
            let total = m.walks();
            if m.truncated > 0 {
                lines.push(format!(
                    "{module}: {} of {total} stacks truncated (copied stack too small; record with a bigger --call-graph dwarf,SIZE, up to 65528)",
                    m.truncated
                ));
            }
            if m.bad_return_address > 0 {
                lines.push(format!(
                    "{module}: {} of {total} stacks stopped at a return address outside the process's code (the registers and the copied stack disagree, as with a precise event's registers; the callers are unknown and not shown)",
                    m.bad_return_address
                ));
            }
            if m.failed > 0 {
                let reasons: Vec<String> = m
                    .reasons
                    .iter()
                    .filter(|(r, _)| {
                        !matches!(
                            **r,
                            "reached root"
                                | "reached the entry point"
                                | "stack exhausted"
                                | "joined frame-pointer chain"
                                | "return address outside code"
                        )
                    })
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect();
                // The package advice fits only missing CFI; the other reasons are about the
                // CFI that is there.
                let advice = if m.reasons.contains_key("no unwind info") {
                    "; no .eh_frame or debug info covers those addresses: install the -dbgsym \
                     package or build with -g"
                } else {
                    ""
                };
                lines.push(format!(
                    "{module}: {} of {total} stacks stopped early ({}){advice}",
                    m.failed,
                    reasons.join(", ")
                ));
            }
        }
        lines
    }
}

/// A module whose frames did not all resolve, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Unresolved {
    /// The module's path as recorded.
    pub module: String,
    /// Its recorded build-id (hex): what to fetch when the file is missing.
    pub build_id: Option<String>,
    /// Addresses in it that resolved.
    pub resolved: u64,
    /// Addresses in it that did not.
    pub unresolved: u64,
    /// Why, with the fix to try.
    pub problems: Vec<String>,
}

impl Unresolved {
    /// The modules of `report` with unresolved addresses.
    pub fn of(report: &[ModuleReport]) -> Vec<Unresolved> {
        report
            .iter()
            .filter(|m| m.unresolved > 0)
            .map(|m| Unresolved {
                module: m.path.to_string(),
                build_id: m
                    .build_id
                    .as_ref()
                    .map(|id| id.iter().map(|b| format!("{b:02x}")).collect()),
                resolved: m.resolved,
                unresolved: m.unresolved,
                problems: m.problems.iter().map(|p| p.to_string()).collect(),
            })
            .collect()
    }

    /// The `report` line.
    pub fn line(&self) -> String {
        let build_id = self
            .build_id
            .as_ref()
            .map(|id| format!(" (build-id {id})"))
            .unwrap_or_default();
        format!(
            "unresolved: {} of {} addresses in {}{build_id}: {}",
            self.unresolved,
            self.resolved + self.unresolved,
            self.module,
            self.problems.join("; ")
        )
    }
}

/// Symbol sources left unused although they exist, because they do not describe the recording:
/// one note for the kernel (recorded on another kernel), one per binary whose build-id differs
/// from the recorded one. Their frames stay `module+offset`.
pub fn symbol_notes(report: &[ModuleReport]) -> Vec<String> {
    use kprof_symbolizer::{ModuleKind, Problem};
    let mut notes = Vec::new();
    let mut kernel_unresolved = 0;
    let mut kernel_problem = None;
    for module in report {
        for problem in &module.problems {
            match problem {
                Problem::OtherKernel { .. }
                    if matches!(module.kind, ModuleKind::Kernel | ModuleKind::KernelModule) =>
                {
                    kernel_unresolved += module.unresolved;
                    kernel_problem.get_or_insert(problem);
                }
                Problem::BuildIdMismatch { .. } => notes.push(format!(
                    "{}: not used, its frames stay unresolved: {problem}",
                    module.path
                )),
                _ => {}
            }
        }
    }
    if let Some(problem) = kernel_problem {
        notes.insert(
            0,
            format!("{kernel_unresolved} kernel addresses left unresolved: {problem}"),
        );
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue #10 point 10
    #[test]
    fn entry_points_are_roots_and_garbage_return_addresses_are_reported_apart() {
        let mut ld_so = ModuleUnwind::default();
        ld_so.add(&UnwindEnd::ReachedEntryPoint);
        ld_so.add(&UnwindEnd::ReachedRoot);
        let mut app = ModuleUnwind::default();
        app.add(&UnwindEnd::ReturnAddressOutsideCode);
        app.add(&UnwindEnd::ReachedRoot);
        let report = UnwindReport {
            samples: 4,
            modules: [("ld.so".to_string(), ld_so), ("app".to_string(), app)].into(),
        };
        assert_eq!(report.reached_root(), 3);
        assert_eq!(report.bad_return_addresses(), 1);
        let problems = report.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("app: 1 of 2 stacks stopped at a return address outside")
                && !problems[0].contains("dbgsym"),
            "{problems:?}"
        );
    }

    // See: issue #12 point 1
    #[test]
    fn frame_pointer_stacks_end_at_entry_points_or_early_in_a_module() {
        let ends = vec![
            (Some("main"), Some("app"), 1),
            (Some("__libc_start_call_main"), Some("libc.so.6"), 1),
            (Some("std::rt::lang_start::main"), Some("app"), 1),
            (Some("spin"), Some("app"), 1),
            (None, None, 1),
        ];
        let report = FramePointerReport::of_ends(ends.into_par_iter());
        assert_eq!((report.user_stacks, report.complete), (5, 3));
        assert_eq!(
            report.ended_early_in,
            [("app".to_string(), 1), ("[unknown]".to_string(), 1)].into()
        );
        let lines = report.summary();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("5 user stacks, 60.0% reach"), "{lines:?}");
        assert!(
            lines[1].contains("2 stacks end early, in [unknown] (1), app (1)")
                && lines[1].contains("-fno-omit-frame-pointer"),
            "{lines:?}"
        );
        assert!(FramePointerReport::default().summary().is_empty());
    }

    #[test]
    fn frame_pointer_ends_counted_on_the_pool_sum_like_one_by_one() {
        let modules = ["app", "libc.so.6", "ld.so"];
        let ends: Vec<(Option<&str>, Option<&str>, u64)> = (0..50_000u64)
            .map(|i| {
                let function = ["main", "spin", "start_thread"][(i % 7 % 3) as usize];
                let module = (i % 5 != 0).then(|| modules[(i % 3) as usize]);
                (Some(function), module, i % 4 + 1)
            })
            .collect();
        let report = FramePointerReport::of_ends(ends.par_iter().copied().with_max_len(64));
        let mut expected = BTreeMap::<String, u64>::new();
        let (mut user, mut complete) = (0, 0);
        for &(function, module, stacks) in &ends {
            user += stacks;
            match function {
                Some("spin") => {
                    *expected
                        .entry(module.unwrap_or("[unknown]").to_string())
                        .or_insert(0) += stacks
                }
                _ => complete += stacks,
            }
        }
        assert_eq!((report.user_stacks, report.complete), (user, complete));
        assert_eq!(report.ended_early_in, expected);
        assert_eq!(expected.len(), 4);
    }

    #[test]
    fn missing_cfi_gets_the_package_advice() {
        let mut lib = ModuleUnwind::default();
        lib.add(&UnwindEnd::NoUnwindInfo {
            module_key: Some(1),
        });
        lib.add(&UnwindEnd::StackExhausted);
        let report = UnwindReport {
            samples: 2,
            modules: [("lib.so".to_string(), lib)].into(),
        };
        let lines = report.summary();
        assert!(
            lines[0].starts_with("unwinding: 2 user stacks: 0.0% reached the root, 50.0% truncated, 50.0% stopped early"),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("dbgsym")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("dwarf,SIZE")), "{lines:?}");
    }
}
