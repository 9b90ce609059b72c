//! `kprof trace`: tracepoint (and probe) events decoded one by one, printed as lines or fed to
//! aggregations (counts, sums, histograms, latencies) — statistics of events without BPF.
//!
//! The capture side (live rings or a perf.data file) turns each sample into an [`Event`] and
//! hands it to an [`EventSink`]; printers and aggregations are sinks. Nothing here knows where an
//! event came from.

pub mod agg;
pub mod capture;
pub mod event;
pub mod filter;
pub mod latency;
pub mod lines;
pub mod probes;
pub mod syscalls;

pub use event::{Event, EventSink, Value};
