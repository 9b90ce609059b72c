//! Dynamic probes without BPF: uprobes, uretprobes, USDT and kprobes as perf events. Owns the
//! spec syntax ([`spec`]), turning a spec into a file and offset ([`resolve`]: library names
//! through the loader's cache or a process's mappings, symbols, USDT notes), the PMU attr
//! fields ([`attr`]) and reading arguments from sampled registers ([`args`]).

pub mod args;
pub mod attr;
pub mod elf;
pub mod ldcache;
pub mod spec;
pub mod usdt;

use std::io;
use std::path::{Path, PathBuf};

pub use args::{Arch, ArgValue, SampledRegs, StackCopy};
pub use spec::{Location, ProbeKind, ProbeSpec, SpecError, is_probe_spec, parse};
use usdt::UsdtArg;

/// Why a probe cannot be placed. Each variant prints as one line that says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The spec does not parse.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The file cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The file is not an ELF file (a script, a text file).
    #[error("{} is not an ELF file ({reason}); probes go into executables and shared libraries", path.display())]
    NotElf {
        /// The file.
        path: PathBuf,
        /// What the ELF parser said.
        reason: String,
    },
    /// The ELF file is for a machine kprof cannot read registers of.
    #[error("{} is for {machine}; kprof reads probe arguments on x86_64 and aarch64 only", path.display())]
    UnsupportedArch {
        /// The file.
        path: PathBuf,
        /// Its architecture.
        machine: String,
    },
    /// A library name neither the process's mappings nor the loader's cache know.
    #[error("library '{name}' not found ({searched}); give its path instead")]
    LibraryNotFound {
        /// The name as given.
        name: String,
        /// Where kprof looked.
        searched: String,
    },
    /// No path was given and there is no command or process to take the executable from.
    #[error(
        "no file given and no command or -p PID to take the executable from; \
         write u:PATH:SYMBOL"
    )]
    NoExecutable,
    /// The symbol is in neither `.symtab` nor `.dynsym`.
    #[error("no function '{symbol}' in {}{}", path.display(), suggest(suggestions))]
    SymbolNotFound {
        /// The name as given.
        symbol: String,
        /// The file searched.
        path: PathBuf,
        /// Close names from the file.
        suggestions: Vec<String>,
    },
    /// The symbol is not found and the file has no `.symtab`: only an address will do.
    #[error(
        "no function '{symbol}' in {} and it is stripped (no .symtab); probe an address \
         instead: u:{}:0xADDR (a virtual address as objdump -d prints it)",
        path.display(), path.display()
    )]
    Stripped {
        /// The name as given.
        symbol: String,
        /// The file.
        path: PathBuf,
    },
    /// An address (or symbol + offset) outside the file's loadable segments.
    #[error("address {address:#x} is not in a loadable segment of {}", path.display())]
    AddressNotMapped {
        /// The virtual address.
        address: u64,
        /// The file.
        path: PathBuf,
    },
    /// `SYMBOL+OFFSET` past the end of the function.
    #[error("offset {offset:#x} is past the end of {symbol} ({size} bytes)")]
    OffsetOutsideFunction {
        /// The function.
        symbol: String,
        /// The offset given.
        offset: u64,
        /// The function's size.
        size: u64,
    },
    /// The file has no `.note.stapsdt` notes.
    #[error("{} has no USDT probes (no .note.stapsdt section)", path.display())]
    NoUsdtNotes {
        /// The file.
        path: PathBuf,
    },
    /// No USDT note with this provider and name.
    #[error("no USDT probe {provider}:{name} in {}; it has: {}", path.display(), known.join(", "))]
    UnknownUsdt {
        /// The provider given.
        provider: String,
        /// The name given.
        name: String,
        /// The file.
        path: PathBuf,
        /// The `provider:name` pairs it has.
        known: Vec<String>,
    },
    /// The USDT notes cannot be read.
    #[error("reading the USDT notes of {}: {reason}", path.display())]
    BadNotes {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The probe PMU is missing (a kernel without kprobes or uprobes).
    #[error(
        "this kernel has no {pmu} PMU ({}: {error}); {}",
        dir.display(),
        if pmu == "kprobe" { "kernel probes need CONFIG_KPROBES and CONFIG_KPROBE_EVENTS" }
        else { "user probes need CONFIG_UPROBES and CONFIG_UPROBE_EVENTS" }
    )]
    NoPmu {
        /// `kprobe` or `uprobe`.
        pmu: String,
        /// The sysfs directory looked for.
        dir: PathBuf,
        /// Why it could not be read.
        error: io::Error,
    },
    /// The PMU exists but cannot express what the probe needs.
    #[error("the kernel's {pmu} PMU does not support {what}")]
    PmuLacks {
        /// `kprobe` or `uprobe`.
        pmu: String,
        /// What is missing.
        what: String,
    },
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; close matches: {}", suggestions.join(", "))
    }
}

/// A probe event: the spec as parsed, and where it resolved to (filled in by
/// [`resolve`] once the target is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The spec as parsed.
    pub spec: ProbeSpec,
    /// The resolved site; `None` until resolved.
    pub resolved: Option<ResolvedProbe>,
}

/// One probe site ready to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedProbe {
    /// Entry, return, USDT, kernel.
    pub kind: ProbeKind,
    /// The event's name: the spec with the resolved path (`u:/lib/x86_64-linux-gnu/libc.so.6:malloc`).
    pub name: String,
    /// The file (empty for kernel probes).
    pub path: PathBuf,
    /// Whose registers and calling convention the arguments follow.
    pub arch: Arch,
    /// What `config1` points to: the file's path, or the kernel function.
    pub target: String,
    /// `config2`: the file offset, or the offset into the kernel function.
    pub offset: u64,
    /// The function probed, when a symbol named it.
    pub function: Option<String>,
    /// The USDT semaphore's file offset, when the probe is guarded by one.
    pub ref_ctr_offset: Option<u64>,
    /// The USDT arguments (an operand kprof cannot read is kept as its text and why).
    pub usdt_args: Vec<Result<UsdtArg, String>>,
}

impl ResolvedProbe {
    /// `sample_regs_user` this probe's arguments need.
    pub fn sample_regs(&self) -> u64 {
        if self.kind == ProbeKind::Usdt {
            self.arch.all_regs()
        } else {
            self.arch.function_probe_regs()
        }
    }

    /// Bytes of user stack each sample needs (USDT memory operands), 0 for none.
    pub fn stack_bytes(&self) -> u32 {
        let args: Vec<UsdtArg> = self
            .usdt_args
            .iter()
            .filter_map(|a| a.clone().ok())
            .collect();
        if args::needs_stack(&args) {
            USDT_STACK_BYTES
        } else {
            0
        }
    }

    /// The arguments of one sample, named as the trace event contract names them: `arg0`..
    /// (USDT operands, or the calling convention's registers for a uprobe), `retval` for a
    /// return probe. Values kprof cannot read are left out.
    pub fn arguments(
        &self,
        regs: &SampledRegs<'_>,
        stack: Option<&StackCopy<'_>>,
    ) -> Vec<(&'static str, ArgValue)> {
        let mut out = Vec::new();
        match self.kind {
            ProbeKind::Usdt => {
                for (name, arg) in args::ARG_NAMES.iter().zip(&self.usdt_args) {
                    if let Ok(arg) = arg {
                        out.push((*name, args::usdt_value(arg, regs, stack)));
                    }
                }
            }
            ProbeKind::Uretprobe | ProbeKind::Kretprobe => {
                if let Some(v) = regs.get(self.arch.return_register()) {
                    out.push(("retval", ArgValue::Unsigned(v)));
                }
            }
            ProbeKind::Uprobe | ProbeKind::Kprobe => {
                for (name, reg) in args::ARG_NAMES.iter().zip(self.arch.argument_registers()) {
                    if let Some(v) = regs.get(*reg) {
                        out.push((*name, ArgValue::Unsigned(v)));
                    }
                }
            }
        }
        out.retain(|(_, v)| *v != ArgValue::Missing);
        out
    }
}

/// The note printed when probes watch a command: the uprobe PMU's events cannot be inherited
/// (at fork the kernel re-reads the attr's path pointer in the forking process, where it is not
/// valid, and the fork fails), so only the command's own process and thread are probed.
pub const NOT_INHERITED_NOTE: &str = "note: probes watch the command's first thread only \
     (uprobe events cannot be inherited); threads and processes it starts are not probed \
     (use -a to probe every process)";

/// User stack bytes captured per sample for USDT memory operands (`8@-16(%rbp)` reads from
/// the frame, which lies within this much of the stack pointer in practice; farther operands
/// show their address instead).
pub const USDT_STACK_BYTES: u32 = 512;

/// What a spec without a path, or with a library name, is resolved against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveContext {
    /// The command's executable (an omitted PATH).
    pub executable: Option<PathBuf>,
    /// `-p PID`: its mappings name libraries first.
    pub pid: Option<u32>,
}

impl ResolveContext {
    /// For a command: its `argv[0]` found through `PATH` as the shell would.
    pub fn for_command(program: &str) -> ResolveContext {
        ResolveContext {
            executable: find_in_path(program),
            pid: None,
        }
    }

    /// For a running process: its executable and mappings.
    pub fn for_pid(pid: u32) -> ResolveContext {
        ResolveContext {
            executable: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
            pid: Some(pid),
        }
    }
}

/// `program` as `execvp` would find it.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The file a written PATH names.
pub fn resolve_path(
    written: Option<&str>,
    context: &ResolveContext,
) -> Result<PathBuf, ProbeError> {
    let Some(written) = written else {
        return context.executable.clone().ok_or(ProbeError::NoExecutable);
    };
    if written.contains('/') {
        let path = Path::new(written);
        return std::fs::canonicalize(path).map_err(|error| ProbeError::Read {
            path: path.to_owned(),
            error,
        });
    }
    let mut searched = Vec::new();
    if let Some(pid) = context.pid {
        searched.push(format!("/proc/{pid}/maps"));
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            let found = maps
                .lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .find(|p| {
                    Path::new(p)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| ldcache::library_matches(written, n))
                });
            if let Some(found) = found {
                return Ok(PathBuf::from(found));
            }
        }
    }
    searched.push("the loader's cache /etc/ld.so.cache".to_owned());
    let cache = ldcache::system_cache();
    if let Some(entry) = ldcache::lookup(&cache, written) {
        return Ok(entry.path.clone());
    }
    Err(ProbeError::LibraryNotFound {
        name: written.to_owned(),
        searched: format!("searched {}", searched.join(" and ")),
    })
}

/// Resolves `spec` to its sites (a USDT probe may have several; other probes have one).
pub fn resolve(
    spec: &ProbeSpec,
    context: &ResolveContext,
) -> Result<Vec<ResolvedProbe>, ProbeError> {
    if spec.kind.is_kernel() {
        return resolve_kernel(spec);
    }
    let path = resolve_path(spec.path.as_deref(), context)?;
    let image = elf::ElfImage::open(&path)?;
    let file = image.object().map_err(|e| ProbeError::NotElf {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let arch = match object::Object::architecture(&file) {
        object::Architecture::X86_64 => Arch::X86_64,
        object::Architecture::Aarch64 => Arch::Aarch64,
        other => {
            return Err(ProbeError::UnsupportedArch {
                path,
                machine: format!("{other:?}"),
            });
        }
    };
    let target = path.to_string_lossy().into_owned();
    let named = |location: &Location| {
        ProbeSpec {
            kind: spec.kind,
            path: Some(target.clone()),
            location: location.clone(),
        }
        .to_string()
    };
    let site = |offset: u64, function: Option<String>| ResolvedProbe {
        kind: spec.kind,
        name: named(&spec.location),
        path: path.clone(),
        arch,
        target: target.clone(),
        offset,
        function,
        ref_ctr_offset: None,
        usdt_args: Vec::new(),
    };
    match &spec.location {
        Location::Address(address) => {
            let offset = image
                .file_offset(*address)
                .ok_or(ProbeError::AddressNotMapped {
                    address: *address,
                    path: path.clone(),
                })?;
            Ok(vec![site(offset, None)])
        }
        Location::Symbol { name, offset } => {
            let functions = image.functions();
            let Some(found) = functions.iter().find(|f| f.is_named(name)) else {
                if image.is_stripped() {
                    return Err(ProbeError::Stripped {
                        symbol: name.clone(),
                        path,
                    });
                }
                return Err(ProbeError::SymbolNotFound {
                    symbol: name.clone(),
                    suggestions: elf::close_matches(
                        name,
                        functions.iter().map(elf::FunctionSymbol::display_name),
                        5,
                    ),
                    path,
                });
            };
            if found.size > 0 && *offset >= found.size {
                return Err(ProbeError::OffsetOutsideFunction {
                    symbol: name.clone(),
                    offset: *offset,
                    size: found.size,
                });
            }
            let address = found.address + offset;
            let file_offset = image
                .file_offset(address)
                .ok_or(ProbeError::AddressNotMapped {
                    address,
                    path: path.clone(),
                })?;
            Ok(vec![site(
                file_offset,
                Some(found.display_name().to_owned()),
            )])
        }
        Location::Usdt { provider, name } => {
            let notes = usdt::notes(&image).map_err(|reason| ProbeError::BadNotes {
                path: path.clone(),
                reason,
            })?;
            if notes.is_empty() {
                return Err(ProbeError::NoUsdtNotes { path });
            }
            let matching: Vec<&usdt::UsdtNote> = notes
                .iter()
                .filter(|n| &n.provider == provider && &n.name == name)
                .collect();
            if matching.is_empty() {
                let mut known: Vec<String> = notes
                    .iter()
                    .map(|n| format!("{}:{}", n.provider, n.name))
                    .collect();
                known.sort();
                known.dedup();
                return Err(ProbeError::UnknownUsdt {
                    provider: provider.clone(),
                    name: name.clone(),
                    path,
                    known,
                });
            }
            matching
                .into_iter()
                .map(|note| {
                    let offset =
                        image
                            .file_offset(note.address)
                            .ok_or(ProbeError::AddressNotMapped {
                                address: note.address,
                                path: path.clone(),
                            })?;
                    let ref_ctr_offset = match note.semaphore {
                        0 => None,
                        sem => {
                            Some(image.file_offset(sem).ok_or(ProbeError::AddressNotMapped {
                                address: sem,
                                path: path.clone(),
                            })?)
                        }
                    };
                    let args = usdt::split_args(&note.arg_text)
                        .into_iter()
                        .map(|text| usdt::parse_arg(&text, arch))
                        .collect();
                    Ok(ResolvedProbe {
                        ref_ctr_offset,
                        usdt_args: args,
                        ..site(offset, None)
                    })
                })
                .collect()
        }
    }
}

fn resolve_kernel(spec: &ProbeSpec) -> Result<Vec<ResolvedProbe>, ProbeError> {
    // The PMU first: on a kernel without kprobes, that is the one thing to say.
    attr::read_pmu("kprobe")?;
    let Location::Symbol { name, offset } = &spec.location else {
        return Err(SpecError("kernel probes take a function name".to_owned()).into());
    };
    Ok(vec![ResolvedProbe {
        kind: spec.kind,
        name: spec.to_string(),
        path: PathBuf::new(),
        arch: Arch::native().unwrap_or(Arch::X86_64),
        target: name.clone(),
        offset: *offset,
        function: Some(name.clone()),
        ref_ctr_offset: None,
        usdt_args: Vec::new(),
    }])
}

/// Every function of the file `u:PATH` names, for `kprof list u:PATH`.
pub fn list_functions(
    written: Option<&str>,
    context: &ResolveContext,
) -> Result<(PathBuf, Vec<elf::FunctionSymbol>), ProbeError> {
    let path = resolve_path(written, context)?;
    let image = elf::ElfImage::open(&path)?;
    Ok((path, image.functions()))
}

/// Every USDT note of the file `usdt:PATH` names, for `kprof list usdt:PATH`.
pub fn list_usdt(
    written: Option<&str>,
    context: &ResolveContext,
) -> Result<(PathBuf, Vec<usdt::UsdtNote>), ProbeError> {
    let path = resolve_path(written, context)?;
    let image = elf::ElfImage::open(&path)?;
    let notes = usdt::notes(&image).map_err(|reason| ProbeError::BadNotes {
        path: path.clone(),
        reason,
    })?;
    Ok((path, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_executable_resolves_by_symbol_and_address() {
        let exe = std::env::current_exe().unwrap();
        let image = elf::ElfImage::open(&exe).unwrap();
        let f = image
            .functions()
            .into_iter()
            .find(|f| f.size > 4 && f.demangled.is_none())
            .unwrap();
        let context = ResolveContext {
            executable: Some(exe.clone()),
            pid: None,
        };
        let by_name = resolve(&parse(&format!("u:{}", f.name)).unwrap(), &context).unwrap();
        assert_eq!(by_name.len(), 1);
        assert_eq!(Some(by_name[0].offset), image.file_offset(f.address));
        let by_address = resolve(
            &parse(&format!("u:{}:{:#x}", exe.display(), f.address)).unwrap(),
            &context,
        )
        .unwrap();
        assert_eq!(by_address[0].offset, by_name[0].offset);
        let plus = resolve(&parse(&format!("u:{}+2", f.name)).unwrap(), &context).unwrap();
        assert_eq!(plus[0].offset, by_name[0].offset + 2);
        let err = resolve(&parse(&format!("u:{}x", f.name)).unwrap(), &context).unwrap_err();
        assert!(err.to_string().contains("close matches"), "{err}");
        let none = resolve(&parse("u:main").unwrap(), &ResolveContext::default()).unwrap_err();
        assert!(matches!(none, ProbeError::NoExecutable));
    }

    #[test]
    fn libraries_resolve_through_the_cache_or_our_own_mappings() {
        let mine = ResolveContext::for_pid(std::process::id());
        let libc = resolve_path(Some("libc"), &mine).unwrap();
        assert!(
            libc.to_string_lossy().contains("libc"),
            "{}",
            libc.display()
        );
        let err = resolve_path(Some("libdoesnotexist"), &ResolveContext::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("library 'libdoesnotexist' not found"),
            "{err}"
        );
    }

    #[test]
    fn arguments_follow_the_probe_kind() {
        let probe = ResolvedProbe {
            kind: ProbeKind::Uretprobe,
            name: String::new(),
            path: PathBuf::new(),
            arch: Arch::X86_64,
            target: String::new(),
            offset: 0,
            function: None,
            ref_ctr_offset: None,
            usdt_args: Vec::new(),
        };
        let mask = Arch::X86_64.function_probe_regs();
        let values = [7u64, 2, 3, 4, 5, 6, 0x7000, 8, 16, 17];
        let regs = SampledRegs {
            mask,
            values: &values,
        };
        assert_eq!(
            probe.arguments(&regs, None),
            [("retval", ArgValue::Unsigned(7))]
        );
        let entry = ResolvedProbe {
            kind: ProbeKind::Uprobe,
            ..probe.clone()
        };
        let args = entry.arguments(&regs, None);
        assert_eq!(args.len(), 6);
        assert_eq!(args[0], ("arg0", ArgValue::Unsigned(5)));
        assert_eq!(
            usdt::split_args("-4@w1 8@[sp, 16]"),
            ["-4@w1", "8@[sp, 16]"]
        );
    }
}
