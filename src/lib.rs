//! kprof as a library: the analysis pipeline and commands behind the `kprof` binary.
//!
//! Data flows one way: `kprof-profiler` records into perf.data, `kprof-perfdata` reads it,
//! `kprof-symbolizer` unwinds and names frames ([`analysis`]), `kprof-flamegraph` folds and
//! renders. This crate is the only one that knows them all; errors get their context here
//! (anyhow). The binary is [`run_cli`]; benchmarks and tests use [`analysis`] directly.
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | the command line (clap), converted to library options at the edge |
//! | [`cmd`] | one module per subcommand, and what they share (loading an input, outputs) |
//! | [`analysis`] | perf.data → [`profile::Profile`]: replay, chain table, DWARF unwinding queue, symbolization, quality reports |
//! | [`profile`] | the symbolized profile model, and its folding into weighted name stacks |
//! | [`export`] | pprof, speedscope and Firefox Profiler writers |
//! | [`header`] | `report --header`: the recording's facts |
//! | [`mapped`] | the input file, mapped through a moving window |
//! | `hash_shares` | work on many keys split by their hashes, and the first of equal keys |
//! | [`progress`] | the progress line on a terminal |
//! | [`trace`] | `kprof trace`: live tracepoint events |
//!
//! No module imports another that imports it back (`tests/layout.rs` checks it).

pub mod analysis;
pub mod cli;
pub mod cmd;
pub mod export;
mod hash_shares;
pub mod header;
pub mod mapped;
pub mod offcpu;
pub mod profile;
pub mod progress;
pub mod section_cache_dir;
pub mod trace;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Parses the command line, runs the subcommand, prints any error as one line.
pub fn run_cli() -> ExitCode {
    let cli = Cli::parse();
    // rayon starts its pool on first use and panics where the system refuses its threads (a
    // limit on processes); started here, a refusal is one line and a failure.
    if let Err(err) = rayon::ThreadPoolBuilder::new().build_global() {
        eprintln!("kprof: cannot start worker threads: {err} (a limit on processes?)");
        return ExitCode::FAILURE;
    }
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("kprof: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Record(args) => cmd::record::run(args),
        Command::Flame(args) => cmd::flame::run(args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => cmd::report::run(args).map(|()| ExitCode::SUCCESS),
        Command::Script(args) => cmd::script::run(args).map(|()| ExitCode::SUCCESS),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Export(args) => cmd::export::run(args).map(|()| ExitCode::SUCCESS),
        Command::Stat(args) => cmd::stat::run(args),
        Command::List(args) => cmd::list::run(args).map(|()| ExitCode::SUCCESS),
        Command::Trace(args) => cmd::trace::run(args),
    }
}

/// A closed stdout (`kprof script | head`) is not an error, as in ripgrep.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
