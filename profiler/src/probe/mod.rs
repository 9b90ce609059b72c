//! Dynamic probes without BPF: uprobes, uretprobes, USDT and kprobes as perf events. Owns the
//! spec syntax ([`spec`]), turning a spec into a file and offset ([`resolve`]: library names
//! through the loader's cache or a process's mappings, symbols, USDT notes), the PMU attr
//! fields ([`attr`]) and reading arguments from sampled registers ([`args`]).

pub mod args;
pub mod attr;
pub mod elf;
mod error;
pub mod globals;
pub mod ldcache;
pub mod regs;
mod resolved;
pub mod spec;
pub mod usdt;

use std::path::{Path, PathBuf};

pub use args::{ArgValue, SampledRegs, StackCopy};
pub use error::ProbeError;
pub use regs::Arch;
pub use resolved::{ResolvedProbe, USDT_STACK_BYTES};
pub use spec::{Location, ProbeKind, ProbeSpec, SpecError, is_probe_spec, parse};

/// A probe event: the spec as parsed, and where it resolved to (filled in by
/// [`resolve`] once the target is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The spec as parsed.
    pub spec: ProbeSpec,
    /// The resolved site; `None` until resolved.
    pub resolved: Option<ResolvedProbe>,
}

/// The note printed when probes watch a command. The kernel cannot inherit uprobe PMU events:
/// at fork, `inherit_event` (kernel/events/core.c) allocates the child's event from the
/// parent's attr and initialises it again through the PMU (`perf_uprobe_event_init` →
/// `perf_uprobe_init`, kernel/trace/trace_event_perf.c), which reads the path from the user
/// pointer in `config1` with `strndup_user` — in the forking process, the target, where kprof's
/// pointer means nothing after exec: EFAULT, and `copy_process` fails the fork. So a probe on a
/// command watches its first thread only; system-wide probes (`-a`, one event per CPU, as
/// bpftrace attaches them) see every thread and child.
pub const NOT_INHERITED_NOTE: &str = "note: probes watch the command's first thread only: the \
     kernel cannot inherit uprobe events into the threads and processes it starts (at fork it \
     re-reads the probe's path from kprof's pointer in the forking process, and the fork would \
     fail); to see them all, probe system-wide with -a, as bpftrace does (kprof trace: add \
     --filter 'comm == \"NAME\"' to keep the command's own)";

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
                        .map(|text| {
                            let mut arg = usdt::parse_arg(&text, arch)?;
                            if let usdt::Operand::Memory {
                                symbol: Some(symbol),
                                displacement,
                                ..
                            } = &arg.operand
                            {
                                arg.global =
                                    globals::GlobalOperand::find(&image, symbol, *displacement);
                            }
                            Ok(arg)
                        })
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
