//! `kprof list u:PATH [PATTERN]` (the functions a uprobe can go into) and
//! `kprof list usdt:PATH [PATTERN]` (USDT probes with their argument specs and semaphores).

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use kprof_profiler::probe::{self, ResolveContext};

use super::pattern::Pattern;

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeListing {
    /// Functions of a file or library (`u:PATH`, `uprobe:PATH`).
    Functions(String),
    /// USDT probes of a file or library (`usdt:PATH`).
    Usdt(String),
}

/// `u:PATH`, `uprobe:PATH`, `ur:PATH`, `uretprobe:PATH` or `usdt:PATH`; `None` for anything else.
pub fn parse_target(text: &str) -> Option<ProbeListing> {
    let (prefix, path) = text.split_once(':')?;
    if path.is_empty() {
        return None;
    }
    match prefix {
        "u" | "uprobe" | "ur" | "uretprobe" => Some(ProbeListing::Functions(path.to_owned())),
        "usdt" => Some(ProbeListing::Usdt(path.to_owned())),
        _ => None,
    }
}

/// Runs the listing.
pub fn run(listing: &ProbeListing, pattern: Option<&str>) -> Result<()> {
    let pattern = pattern.map(Pattern::new);
    let wanted = |name: &str| pattern.as_ref().is_none_or(|p| p.matches(name));
    let context = ResolveContext::default();
    let mut out = BufWriter::new(io::stdout().lock());
    match listing {
        ProbeListing::Functions(path) => {
            let (file, mut functions) = probe::list_functions(Some(path), &context)?;
            functions.sort_by(|a, b| a.display_name().cmp(b.display_name()));
            functions.dedup_by(|a, b| a.display_name() == b.display_name());
            for f in functions.iter().filter(|f| wanted(f.display_name())) {
                writeln!(out, "u:{}:{}", file.display(), f.display_name())?;
            }
            let stripped = probe::elf::ElfImage::open(&file)
                .map(|image| image.is_stripped())
                .unwrap_or(false);
            out.flush()?;
            if stripped {
                eprintln!(
                    "kprof: {} is stripped: only its dynamic symbols are listed; probe other \
                     code by address (u:{}:0xADDR)",
                    file.display(),
                    file.display()
                );
            }
        }
        ProbeListing::Usdt(path) => {
            let (file, notes) = probe::list_usdt(Some(path), &context)?;
            if notes.is_empty() {
                anyhow::bail!(
                    "{} has no USDT probes (no .note.stapsdt section)",
                    file.display()
                );
            }
            let image = probe::elf::ElfImage::open(&file)?;
            for note in notes
                .iter()
                .filter(|n| wanted(&format!("{}:{}", n.provider, n.name)))
            {
                let semaphore = match note.semaphore {
                    0 => "no semaphore".to_owned(),
                    address => match image.file_offset(address) {
                        Some(offset) => {
                            format!("semaphore {address:#x} (file offset {offset:#x})")
                        }
                        None => format!("semaphore {address:#x}"),
                    },
                };
                let args = if note.arg_text.is_empty() {
                    "no arguments".to_owned()
                } else {
                    format!("args: {}", note.arg_text)
                };
                writeln!(
                    out,
                    "usdt:{}:{}:{}  [{} | {args} | {semaphore}]",
                    file.display(),
                    note.provider,
                    note.name,
                    format_address(note.address)
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn format_address(address: u64) -> String {
    format!("at {address:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("u:libc"),
            Some(ProbeListing::Functions("libc".into()))
        );
        assert_eq!(
            parse_target("uprobe:/bin/ls"),
            Some(ProbeListing::Functions("/bin/ls".into()))
        );
        assert_eq!(
            parse_target("usdt:./app"),
            Some(ProbeListing::Usdt("./app".into()))
        );
        assert_eq!(parse_target("sched:sched_switch"), None);
        assert_eq!(parse_target("u:"), None);
        assert_eq!(parse_target("sched"), None);
    }
}
