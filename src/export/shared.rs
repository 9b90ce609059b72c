//! What the export formats share: event units, module names, the recording's time range.

use crate::profile::Profile;

/// True when `event` counts time: its periods are nanoseconds (perf's `cpu-clock` and
/// `task-clock`, with or without `:u`/`:k`/`:ppp` modifiers). Every other event counts
/// occurrences.
pub fn is_clock_event(event: &str) -> bool {
    let base = event.split_once(':').map_or(event, |(base, _)| base);
    matches!(base, "cpu-clock" | "task-clock") || is_interval_event(event)
}

/// True for the events of an off-CPU or wall-clock profile (`off-cpu`, `on-cpu`): each
/// sample's period is a time in nanoseconds, of any length (see `crate::offcpu::model`).
pub fn is_interval_event(event: &str) -> bool {
    event == crate::offcpu::model::OFF_CPU_NAME || event == crate::offcpu::model::ON_CPU_NAME
}

/// The unit of an event's periods as pprof names it: `nanoseconds` or `count`.
pub(super) fn period_unit(event: &str) -> &'static str {
    if is_clock_event(event) {
        "nanoseconds"
    } else {
        "count"
    }
}

/// Timestamps of the first and last sample that carry one (perf clock nanoseconds).
pub(super) fn time_range(profile: &Profile) -> Option<(u64, u64)> {
    let mut times = profile.samples.iter().map(|s| s.time).filter(|&t| t != 0);
    let first = times.next()?;
    Some(times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t))))
}

/// The file name part of a module path (`/usr/lib/libc.so.6` → `libc.so.6`).
pub(super) fn module_basename(module: &str) -> &str {
    module.rsplit('/').next().unwrap_or(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support;

    #[test]
    fn clock_events_are_recognized_with_modifiers() {
        assert!(is_clock_event("cpu-clock"));
        assert!(is_clock_event("task-clock:u"));
        assert!(!is_clock_event("sched:sched_switch"));
        assert!(!is_clock_event("page-faults"));
        assert_eq!(period_unit("cpu-clock:ppp"), "nanoseconds");
        assert_eq!(period_unit("cycles"), "count");
    }

    #[test]
    fn basename_and_time_range() {
        assert_eq!(module_basename("/usr/lib/libc.so.6"), "libc.so.6");
        assert_eq!(module_basename("[kernel.kallsyms]"), "[kernel.kallsyms]");
        let profile = test_support::sample_profile();
        let (lo, hi) = time_range(&profile).unwrap();
        assert!(lo < hi);
        assert_eq!(Some(lo), profile.samples.iter().map(|s| s.time).min());
        assert_eq!(Some(hi), profile.samples.iter().map(|s| s.time).max());
    }
}
