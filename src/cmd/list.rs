//! `kprof list [PATTERN]`: the hardware and software events this machine counts, then the
//! tracepoints with their fields, in perf list's layout.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use kprof_profiler::catalog::{self, Support};
use kprof_profiler::events::EventKind;

use crate::cli::ListArgs;
use crate::cmd::pattern::Pattern;

/// Width of the name column, as perf list.
const NAME_WIDTH: usize = 50;

/// Runs `kprof list`.
pub fn run(args: &ListArgs) -> Result<()> {
    if let Some(target) = args.pattern.as_deref() {
        if let Some(listing) = super::list_probes::parse_target(target) {
            return super::list_probes::run(&listing, args.name_pattern.as_deref());
        }
    }
    if let Some(extra) = &args.name_pattern {
        anyhow::bail!("a second pattern ('{extra}') goes only after u:PATH or usdt:PATH");
    }
    let pattern = args.pattern.as_deref().map(Pattern::new);
    let wanted = |name: &str| pattern.as_ref().is_none_or(|p| p.matches(name));
    let mut out = BufWriter::new(io::stdout().lock());
    let mut unsupported = Vec::new();
    let mut unknown = Vec::new();
    for event in catalog::named_events() {
        if !event.names.iter().any(|n| wanted(n)) {
            continue;
        }
        let kind = match event.kind {
            EventKind::Hardware(_) => "Hardware event",
            _ => "Software event",
        };
        let names = event.names.join(" OR ");
        match &event.support {
            Support::Supported => writeln!(out, "  {names:<NAME_WIDTH$} [{kind}]")?,
            Support::NotSupported => unsupported.push(names),
            Support::Unknown(why) => unknown.push(format!("{names} ({why})")),
        }
    }
    // Tracepoints: a missing tracefs is a note, the other events are still listed.
    let tracepoints = catalog::tracefs().and_then(|root| catalog::tracepoints(&root, &wanted));
    match tracepoints {
        Ok(tracepoints) => {
            for tp in tracepoints {
                let name = format!("{}:{}", tp.system, tp.name);
                writeln!(out, "  {name:<NAME_WIDTH$} [Tracepoint event]")?;
                for field in &tp.fields {
                    writeln!(out, "      {}", field.declaration)?;
                }
            }
        }
        Err(err) => {
            out.flush()?;
            eprintln!("kprof: tracepoints not listed: {}", err.with_causes());
        }
    }
    out.flush()?;
    if !unsupported.is_empty() {
        eprintln!(
            "kprof: not supported on this machine: {}",
            unsupported.join(", ")
        );
    }
    if !unknown.is_empty() {
        eprintln!("kprof: could not check: {}", unknown.join(", "));
    }
    Ok(())
}
