//! kprof's integration tests: one binary, one module per concern.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
mod oracle;
mod browser;
mod peer;
mod corrupt;
mod cli;
mod record;
mod ci;
mod compat;
