//! kprof's integration tests: one binary, one module per concern.
#![allow(clippy::unwrap_used, missing_docs)]

mod browser;
mod cgroup;
mod ci;
mod cli;
mod common;
mod compat;
mod corrupt;
mod dwarf;
mod fidelity;
mod foreign;
mod golden;
mod layout;
mod lbr;
mod names;
mod offcpu;
mod oracle;
mod peer;
mod record;
mod robust;
mod script_addresses;
mod section_cache;
mod stat;
mod trace;
mod trace_stats;
mod tracepoints;
