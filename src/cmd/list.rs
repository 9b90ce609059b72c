//! `kprof list [PATTERN]`: the hardware and software events this machine counts, then the
//! tracepoints with their fields, in perf list's layout.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use kprof_profiler::catalog::{self, Support};
use kprof_profiler::events::EventKind;

use crate::cli::ListArgs;

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

/// A `kprof list` pattern: a glob when it has `*` or `?`, otherwise a substring; both ignore
/// case, as perf list.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    glob: bool,
}

impl Pattern {
    /// Parses `text`.
    pub fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_ascii_lowercase(),
            glob: text.contains(['*', '?']),
        }
    }

    /// True when `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        if self.glob {
            glob_match(self.text.as_bytes(), name.as_bytes())
        } else {
            name.contains(&self.text)
        }
    }
}

/// `*` and `?` only (no classes): a crate such as globset would be a whole dependency for
/// matching a few thousand event names once.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let glob = Pattern::new("sched:sched_*");
        assert!(glob.matches("sched:sched_switch"));
        assert!(!glob.matches("irq:irq_handler_entry"));
        assert!(Pattern::new("SWITCH").matches("sched:sched_switch"));
        assert!(Pattern::new("*:sys_enter_rea?").matches("syscalls:sys_enter_read"));
        assert!(!Pattern::new("*:sys_enter_rea?").matches("syscalls:sys_enter_readv"));
        assert!(Pattern::new("*").matches(""));
        assert!(!Pattern::new("a*b").matches("acbd"));
        assert!(Pattern::new("a*b*").matches("acbd"));
    }
}
