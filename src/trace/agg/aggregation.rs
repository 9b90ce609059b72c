//! What every aggregation is to its caller ([`Aggregation`]: an event sink that prints a
//! summary), and the note that opens a partial one. A leaf: the aggregations in the sibling
//! modules implement it, `agg` builds them and re-exports it.

use std::io::Write;

use crate::trace::event::EventSink;

/// An event sink that accumulates and prints a summary.
pub trait Aggregation: EventSink {
    /// Prints the aggregation (bpftrace's text, or JSON).
    fn print(&self, out: &mut dyn std::io::Write, json: bool) -> std::io::Result<()>;
    /// Forgets everything seen (for `--interval`).
    fn reset(&mut self);
}

/// The note that opens a partial result (nothing when no event was lost).
pub(crate) fn write_partial_note(out: &mut dyn Write, lost: u64) -> std::io::Result<()> {
    if lost > 0 {
        writeln!(
            out,
            "# partial: {lost} events lost (ring buffer full); the numbers below miss them"
        )?;
    }
    Ok(())
}
