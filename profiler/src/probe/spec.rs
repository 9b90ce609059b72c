//! Probe spec syntax: `u:PATH:SYMBOL[+OFFSET]`, `u:PATH:0xADDR`, `ur:PATH:SYMBOL`,
//! `usdt:PATH:PROVIDER:NAME`, `k:FUNC[+OFFSET]`, `kr:FUNC`, and bpftrace's spellings
//! (`uprobe:`, `uretprobe:`, `kprobe:`, `kretprobe:`), parsed without touching the file system.

use std::fmt;

/// What fires: a function's entry (or an instruction in it), its return, a USDT note, or the
/// kernel's equivalents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `u:` / `uprobe:`: an instruction in user space (a function's entry by default).
    Uprobe,
    /// `ur:` / `uretprobe:`: a user function's return.
    Uretprobe,
    /// `usdt:`: a statically defined probe point from the binary's `.note.stapsdt` notes.
    Usdt,
    /// `k:` / `kprobe:`: a kernel function's entry.
    Kprobe,
    /// `kr:` / `kretprobe:`: a kernel function's return.
    Kretprobe,
}

impl ProbeKind {
    /// The short prefix kprof prints (`u`, `ur`, `usdt`, `k`, `kr`).
    pub fn prefix(self) -> &'static str {
        match self {
            ProbeKind::Uprobe => "u",
            ProbeKind::Uretprobe => "ur",
            ProbeKind::Usdt => "usdt",
            ProbeKind::Kprobe => "k",
            ProbeKind::Kretprobe => "kr",
        }
    }

    /// True for the two return probes.
    pub fn is_return(self) -> bool {
        matches!(self, ProbeKind::Uretprobe | ProbeKind::Kretprobe)
    }

    /// True for the two kernel probes.
    pub fn is_kernel(self) -> bool {
        matches!(self, ProbeKind::Kprobe | ProbeKind::Kretprobe)
    }
}

/// Where in the file (or kernel) the probe goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A symbol (mangled or demangled), plus a byte offset into it.
    Symbol {
        /// The name as given.
        name: String,
        /// `+OFFSET`, 0 when absent.
        offset: u64,
    },
    /// A virtual address in the file's own address space (as `nm` and `objdump -d` print it).
    Address(u64),
    /// A USDT probe.
    Usdt {
        /// The provider (`libc`, `myapp`).
        provider: String,
        /// The probe's name.
        name: String,
    },
}

/// One parsed probe spec. `path` is what the user wrote (a path, a library name, or nothing for
/// the command's executable); [`super::resolve`] turns it into a file and an offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSpec {
    /// Entry, return, USDT, kernel.
    pub kind: ProbeKind,
    /// The file as written; `None` means the command's executable (user probes) or the kernel.
    pub path: Option<String>,
    /// What to probe in it.
    pub location: Location,
}

/// Why a spec does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// True when `text` starts with a probe prefix, so it should be parsed by [`parse`] rather than
/// as a named event or tracepoint.
pub fn is_probe_spec(text: &str) -> bool {
    split_prefix(text).is_some()
}

fn split_prefix(text: &str) -> Option<(ProbeKind, &str)> {
    let (prefix, rest) = text.split_once(':')?;
    let kind = match prefix {
        "u" | "uprobe" => ProbeKind::Uprobe,
        "ur" | "uretprobe" => ProbeKind::Uretprobe,
        "usdt" => ProbeKind::Usdt,
        "k" | "kprobe" => ProbeKind::Kprobe,
        "kr" | "kretprobe" => ProbeKind::Kretprobe,
        _ => return None,
    };
    Some((kind, rest))
}

/// Parses a probe spec. See the module documentation for the syntax.
pub fn parse(text: &str) -> Result<ProbeSpec, SpecError> {
    let bad = |why: &str| SpecError(why.to_owned());
    let (kind, rest) = split_prefix(text).ok_or_else(|| {
        bad("expected u:, ur:, usdt:, k:, kr: (or uprobe:, uretprobe:, kprobe:, kretprobe:)")
    })?;
    if rest.is_empty() {
        return Err(bad("nothing after the probe prefix"));
    }
    match kind {
        ProbeKind::Kprobe | ProbeKind::Kretprobe => {
            if rest.contains(':') {
                return Err(bad("kernel probes are k:FUNC[+OFFSET] or kr:FUNC"));
            }
            let location = parse_location(rest, kind)?;
            if matches!(location, Location::Address(_)) {
                return Err(bad("kernel probes take a function name, not an address"));
            }
            Ok(ProbeSpec {
                kind,
                path: None,
                location,
            })
        }
        ProbeKind::Usdt => {
            // usdt:PATH:PROVIDER:NAME, usdt:PROVIDER:NAME (the command's executable). A PATH
            // may itself hold no ':' (nor may provider and probe names).
            let parts: Vec<&str> = rest.split(':').collect();
            let (path, provider, name) = match parts.as_slice() {
                [path, provider, name] => (non_empty(path), *provider, *name),
                [provider, name] => (None, *provider, *name),
                _ => return Err(bad("USDT probes are usdt:PATH:PROVIDER:NAME")),
            };
            for (what, part) in [("provider", provider), ("probe name", name)] {
                if part.is_empty() || !part.chars().all(is_identifier_char) {
                    return Err(SpecError(format!(
                        "USDT {what} '{part}' must be letters, digits and '_'"
                    )));
                }
            }
            Ok(ProbeSpec {
                kind,
                path: path.map(str::to_owned),
                location: Location::Usdt {
                    provider: provider.to_owned(),
                    name: name.to_owned(),
                },
            })
        }
        ProbeKind::Uprobe | ProbeKind::Uretprobe => {
            // The location is after the last ':'; the path is everything before it.
            let (path, location) = match rest.rsplit_once(':') {
                Some((path, location)) => (non_empty(path), location),
                None => (None, rest),
            };
            let location = parse_location(location, kind)?;
            Ok(ProbeSpec {
                kind,
                path: path.map(str::to_owned),
                location,
            })
        }
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn parse_location(text: &str, kind: ProbeKind) -> Result<Location, SpecError> {
    if text.is_empty() {
        return Err(SpecError("no symbol or address given".to_owned()));
    }
    if text.starts_with("0x") || text.starts_with("0X") {
        let address = parse_number(text)
            .ok_or_else(|| SpecError(format!("'{text}' is not a hexadecimal address")))?;
        if kind.is_return() {
            return Err(SpecError(
                "a return probe needs a function name, not an address".to_owned(),
            ));
        }
        return Ok(Location::Address(address));
    }
    // `+OFFSET` after a symbol; C++ names may hold `operator+`, so only a trailing number counts.
    let (name, offset) = match text.rsplit_once('+') {
        Some((name, off)) if !name.is_empty() && parse_number(off).is_some() => {
            (name, parse_number(off).unwrap_or(0))
        }
        _ => (text, 0),
    };
    if offset != 0 && kind.is_return() {
        return Err(SpecError(
            "a return probe fires on the function's return: give no +OFFSET".to_owned(),
        ));
    }
    Ok(Location::Symbol {
        name: name.to_owned(),
        offset,
    })
}

impl fmt::Display for ProbeSpec {
    /// The canonical spelling, which [`parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.kind.prefix())?;
        if let Some(path) = &self.path {
            write!(f, "{path}:")?;
        } else if !self.kind.is_kernel() && !matches!(self.location, Location::Usdt { .. }) {
            f.write_str(":")?;
        }
        match &self.location {
            Location::Symbol { name, offset: 0 } => write!(f, "{name}"),
            Location::Symbol { name, offset } => write!(f, "{name}+{offset:#x}"),
            Location::Address(a) => write!(f, "{a:#x}"),
            Location::Usdt { provider, name } => write!(f, "{provider}:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, offset: u64) -> Location {
        Location::Symbol {
            name: name.to_owned(),
            offset,
        }
    }

    #[test]
    fn user_probes_in_every_spelling() {
        let s = parse("u:/bin/bash:readline").unwrap();
        assert_eq!(s.kind, ProbeKind::Uprobe);
        assert_eq!(s.path.as_deref(), Some("/bin/bash"));
        assert_eq!(s.location, sym("readline", 0));
        assert_eq!(parse("uprobe:/bin/bash:readline").unwrap(), s);
        let r = parse("uretprobe:libc:malloc").unwrap();
        assert_eq!(r.kind, ProbeKind::Uretprobe);
        assert_eq!(r.path.as_deref(), Some("libc"));
        assert_eq!(parse("ur:libc:malloc").unwrap(), r);
        let off = parse("u:./a.out:work+0x10").unwrap();
        assert_eq!(off.location, sym("work", 16));
        assert_eq!(parse("u:./a.out:work+16").unwrap(), off);
        let addr = parse("u:/bin/x:0x401136").unwrap();
        assert_eq!(addr.location, Location::Address(0x401136));
        // An omitted path: the command's executable.
        assert_eq!(parse("u:main").unwrap().path, None);
        assert_eq!(parse("u::main").unwrap(), parse("u:main").unwrap());
        // C++ names keep their operators; demangled names with '::' are not paths... unless
        // written with one, so `u:PATH:NAME` must give the path first.
        assert_eq!(
            parse("u:/x:operator+").unwrap().location,
            sym("operator+", 0)
        );
    }

    #[test]
    fn usdt_and_kernel_probes() {
        let u = parse("usdt:/usr/bin/app:myapp:request_start").unwrap();
        assert_eq!(u.kind, ProbeKind::Usdt);
        assert_eq!(u.path.as_deref(), Some("/usr/bin/app"));
        assert_eq!(
            u.location,
            Location::Usdt {
                provider: "myapp".into(),
                name: "request_start".into()
            }
        );
        let own = parse("usdt:myapp:tick").unwrap();
        assert_eq!(own.path, None);
        let k = parse("k:do_sys_openat2").unwrap();
        assert_eq!(k.kind, ProbeKind::Kprobe);
        assert_eq!(parse("kprobe:do_sys_openat2").unwrap(), k);
        assert_eq!(parse("kr:vfs_read").unwrap().kind, ProbeKind::Kretprobe);
        assert_eq!(parse("k:vfs_read+4").unwrap().location, sym("vfs_read", 4));
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, why) in [
            ("u:", "nothing after"),
            ("u:/bin/x:", "no symbol"),
            ("u:/bin/x:0xzz", "hexadecimal"),
            ("ur:/bin/x:0x10", "function name"),
            ("ur:/bin/x:f+4", "no +OFFSET"),
            ("usdt:/x:a:b:c", "usdt:PATH:PROVIDER:NAME"),
            ("usdt:/x:a-b:c", "letters, digits"),
            ("usdt:/x", "usdt:PATH:PROVIDER:NAME"),
            ("k:a:b", "k:FUNC"),
            ("k:0x10", "function name"),
        ] {
            let err = parse(spec).unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
        assert!(!is_probe_spec("sched:sched_switch"));
        assert!(!is_probe_spec("cycles"));
        assert!(is_probe_spec("uprobe:x:y"));
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "u:/bin/x:f",
            "u:libc:malloc+0x8",
            "u::main",
            "ur:/bin/x:f",
            "u:/bin/x:0x1000",
            "usdt:/bin/x:p:n",
            "usdt:p:n",
            "k:vfs_read",
            "kr:vfs_read",
        ] {
            let parsed = parse(spec).unwrap();
            assert_eq!(parsed.to_string(), spec);
            assert_eq!(parse(&parsed.to_string()).unwrap(), parsed);
        }
    }
}
