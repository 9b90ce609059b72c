//! `--latency START..END` pairing: lives in [`crate::trace::agg::latency`], a child of `agg` (so
//! that building it from `agg` is no import cycle); re-exported here under its first path.

pub use crate::trace::agg::latency::Latency;
