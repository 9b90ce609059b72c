//! Why a probe cannot be placed: one error type for every step (spec, file, symbol, PMU).

use std::io;
use std::path::PathBuf;

use super::spec::SpecError;

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

/// `; close matches: a, b` when there are any.
fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; close matches: {}", suggestions.join(", "))
    }
}
