//! DWARF unwinding of copied user stacks during analysis (being written).

use kprof_perfdata::{PerfFile, Sample};
use kprof_symbolizer::AddressSpaces;

/// Unwinding outcome counts.
#[derive(Clone, Debug, Default)]
pub struct UnwindReport {}

/// Unwinds samples that carry user registers and stack bytes.
pub struct StackUnwinder {}

impl StackUnwinder {
    /// An unwinder when `file`'s samples carry user stacks.
    pub fn for_file(_file: &PerfFile<'_>) -> Option<StackUnwinder> {
        None
    }

    /// The user frames of `sample`, leaf first.
    pub fn unwind(
        &mut self,
        _file: &PerfFile<'_>,
        _spaces: &AddressSpaces,
        _sample: &Sample<'_>,
        _pid: u32,
    ) -> Option<Vec<u64>> {
        None
    }

    /// What happened so far.
    pub fn report(&self) -> UnwindReport {
        UnwindReport::default()
    }
}
