//! The subcommands, and what they share: opening an input and building its profile.

pub mod diff;
pub mod export;
pub mod flame;
pub mod list;
pub mod list_probes;
pub mod offcpu;
pub mod pattern;
pub mod record;
pub mod report;
pub mod script;
pub mod stat;
pub mod trace;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kprof_perfdata::{Note, ParseOptions, PerfFile};
use kprof_profiler::output::OutputPath;

use crate::analysis::select_event;
use crate::analysis::{self, Analysis, AnalysisOptions};
use crate::cli::{CountMode, FilterArgs, InputArgs, SymbolArgs};
use crate::mapped::{self, InputBytes};
use crate::profile::Profile;
use crate::profile::fold::Weight;
use crate::progress::Progress;

/// A loaded input: its path for messages and the analysis.
pub struct Loaded {
    /// The input as the user named it.
    pub path: PathBuf,
    /// The symbolized profile and quality reports.
    pub analysis: Analysis,
    /// Non-fatal notes from the reader (not finalized, unknown records, ...).
    pub notes: Vec<String>,
    /// The header summary text, computed while the file was open.
    pub header: crate::header::Header,
}

impl InputArgs {
    /// The file to read: `-i`, or the default (kprof.data, else perf.data).
    pub fn path(&self) -> PathBuf {
        self.input.clone().unwrap_or_else(mapped::default_input)
    }
}

impl SymbolArgs {
    /// The analysis options these flags ask for.
    pub fn to_options(&self, filter: &FilterArgs) -> AnalysisOptions {
        AnalysisOptions {
            lines: self.lines,
            inline: !self.no_inline,
            demangle: !self.no_demangle,
            kallsyms: self.kallsyms.clone(),
            symfs: self.symfs.clone(),
            comms: filter.comms.clone(),
            pids: filter.pids.clone(),
            tids: filter.tids.clone(),
            dwarf: true,
            sample_addresses: false,
            trace_fields: false,
            weight_field: None,
        }
    }
}

/// Opens, parses and analyzes one input.
pub fn load(input: &InputArgs, options: &AnalysisOptions) -> Result<Loaded> {
    load_path(&input.path(), input.force, options)
}

/// Opens, parses and analyzes the file at `path` (`-` for standard input).
pub fn load_path(path: &Path, force: bool, options: &AnalysisOptions) -> Result<Loaded> {
    load_path_with(path, force, options, |_, _| Ok(())).map(|(loaded, ())| loaded)
}

/// [`load_path`], then `also` on the parsed file and its analysis while the file is open (a
/// second look at its records, as the off-CPU timeline takes).
pub fn load_path_with<T>(
    path: &Path,
    force: bool,
    options: &AnalysisOptions,
    also: impl FnOnce(&PerfFile<'_>, &Analysis) -> Result<T>,
) -> Result<(Loaded, T)> {
    let progress = Progress::start(format!("reading {}", path.display()));
    let bytes: InputBytes = mapped::open_input(path, force)?;
    // Each pass over the file holds only a window of it in memory.
    let file = PerfFile::parse_scanning(&bytes, &ParseOptions::default(), &mut |offset| {
        bytes.advance(offset)
    })
    .with_context(|| path.display().to_string())?;
    bytes.advance(u64::MAX);
    bytes.rewind();
    // Facts about how the file is stored are for `report --header`, not warnings. (A
    // compressed stream that stops inside a block has lost records: that is a warning.)
    let notes: Vec<String> = file
        .notes()
        .iter()
        .filter(|n| !matches!(n, Note::Compressed { .. }))
        .map(|n| n.to_string())
        .collect();
    // Offsets into a decompressed stream say nothing about the file's bytes.
    let in_file = !file.offsets_are_decompressed();
    let window = |offset| {
        if in_file {
            bytes.advance(offset)
        }
    };
    let analysis = analysis::analyze_windowed(&file, options, &window)
        .with_context(|| path.display().to_string())?;
    let header = crate::header::Header::new(&file, &analysis);
    bytes.rewind();
    let extra = also(&file, &analysis).with_context(|| path.display().to_string())?;
    progress.finish();
    Ok((
        Loaded {
            path: path.to_path_buf(),
            analysis,
            notes,
            header,
        },
        extra,
    ))
}

/// Lets go of what a command built without freeing it, when the command is done: the process
/// ends next and its memory goes back whole, where freeing a big profile's hundreds of
/// thousands of allocations one by one takes tens of milliseconds (issue #13).
pub fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}

/// Picks the event for single-event outputs and tells the user when others were left out.
pub fn event_for_output(profile: &Profile, filter: &FilterArgs) -> Result<Option<u16>> {
    let event = select_event(profile, filter.event.as_deref())?;
    if filter.event.is_none() {
        let with_samples: Vec<&str> = profile
            .events
            .iter()
            .filter(|e| e.sample_count > 0)
            .map(|e| e.name.as_str())
            .collect();
        if with_samples.len() > 1 {
            eprintln!(
                "kprof: showing event {} (the file also has {}); choose with --event",
                with_samples[0],
                with_samples[1..].join(", ")
            );
        }
    }
    Ok(event)
}

impl From<CountMode> for Weight {
    fn from(count: CountMode) -> Weight {
        match count {
            CountMode::Period => Weight::Period,
            CountMode::Samples => Weight::Samples,
        }
    }
}

/// Tells the user when grouping by cgroup finds no sample that carries one: every sample then
/// shows as `[unknown cgroup]`.
pub fn note_missing_cgroups(profile: &Profile) {
    if profile.samples.iter().all(|s| s.cgroup.is_none()) {
        eprintln!(
            "kprof: the samples carry no cgroup (record with --all-cgroups or -G): all are {}",
            kprof_perfdata::cgroups::UNKNOWN_CGROUP
        );
    }
}

/// Prints the reader's notes once each, prefixed with the file name, and what kept binaries
/// and kernel symbols from being used.
pub fn print_notes(loaded: &Loaded) {
    for note in &loaded.notes {
        eprintln!("kprof: {}: {note}", loaded.path.display());
    }
    for note in crate::analysis::quality::symbol_notes(&loaded.analysis.symbol_report) {
        eprintln!("kprof: {}: {note}", loaded.path.display());
    }
    let lost = loaded.analysis.profile.meta.lost_samples;
    let total: u64 = loaded
        .analysis
        .profile
        .events
        .iter()
        .map(|e| e.sample_count)
        .sum();
    if lost > 0 && total > 0 && lost * 1000 > total {
        eprintln!(
            "kprof: {}: warning: {}",
            loaded.path.display(),
            lost_warning(lost, total)
        );
    }
}

/// The loss warning: `lost` of the `recorded + lost` samples taken. (The share is of all the
/// samples taken, so the total printed is that sum, not the samples that were kept.)
pub fn lost_warning(lost: u64, recorded: u64) -> String {
    let taken = recorded + lost;
    format!(
        "{lost} samples were lost while recording ({:.2}% of {taken} taken); use a bigger ring \
         buffer (-m) or a lower frequency (-F)",
        lost as f64 * 100.0 / taken.max(1) as f64
    )
}

/// Where a command's output goes: standard output, a stream named by path (a FIFO, a
/// character device, `/dev/stdout`), or a file that appears only once complete. A file is
/// written to `.NAME.kprof-PID.tmp` beside its target and renamed over it by
/// [`Output::commit`]; dropped before that (an error, a full disk), the temporary file goes and
/// the target is untouched. Write errors name the file.
pub struct Output {
    /// For messages: the target, or `standard output`.
    name: String,
    sink: BufWriter<Box<dyn Write>>,
    /// The temporary file (path and handle, for syncing) and the target it replaces, until
    /// committed.
    pending: Option<(PathBuf, File, PathBuf)>,
}

/// Opens the output: standard output for `None`, else see [`Output`].
pub fn output(path: Option<&Path>) -> Result<Output> {
    let Some(path) = path else {
        return Ok(Output {
            name: "standard output".to_owned(),
            sink: BufWriter::new(Box::new(io::stdout().lock())),
            pending: None,
        });
    };
    let name = path.display().to_string();
    let mut notes = |note: &str| eprintln!("kprof: {note}");
    match kprof_profiler::output::classify(path, &mut notes)
        .map_err(|e| anyhow::anyhow!(e.with_causes()))?
    {
        OutputPath::Stream(file) => Ok(Output {
            name,
            sink: BufWriter::new(Box::new(file)),
            pending: None,
        }),
        OutputPath::Replace => {
            let file_name = path
                .file_name()
                .with_context(|| format!("{name}: not a file name"))?;
            let mut temp_name = OsString::from(".");
            temp_name.push(file_name);
            temp_name.push(format!(".kprof-{}.tmp", std::process::id()));
            let temp = path.with_file_name(temp_name);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o666)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&temp)
                .with_context(|| format!("{name}: cannot create"))?;
            // A file that is replaced keeps its permissions.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                let _ = file.set_permissions(meta.permissions());
            }
            let handle = file
                .try_clone()
                .with_context(|| format!("{name}: cannot create"))?;
            Ok(Output {
                name,
                sink: BufWriter::new(Box::new(file)),
                pending: Some((temp, handle, path.to_path_buf())),
            })
        }
    }
}

impl Output {
    /// Flushes; a file is made durable and renamed over its target.
    pub fn commit(mut self) -> Result<()> {
        let name = self.name.clone();
        self.sink
            .flush()
            .with_context(|| format!("writing {name}"))?;
        if let Some((temp, handle, target)) = self.pending.take() {
            // Synced first: a full disk that only shows at write-back fails here, not later.
            let renamed = handle
                .sync_all()
                .and_then(|()| std::fs::rename(&temp, &target));
            if let Err(e) = renamed {
                let _ = std::fs::remove_file(&temp);
                return Err(e).with_context(|| format!("writing {name}"));
            }
        }
        Ok(())
    }

    fn context(&self, e: io::Error) -> io::Error {
        // The kind stays (a closed pipe is not an error); the text names the file.
        io::Error::new(e.kind(), format!("writing {}: {e}", self.name))
    }
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.sink.write(bytes).map_err(|e| self.context(e))
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sink.write_all(bytes).map_err(|e| self.context(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush().map_err(|e| self.context(e))
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some((temp, _, _)) = self.pending.take() {
            let _ = std::fs::remove_file(&temp);
        }
    }
}

/// How `record` and `stat` end when the profiler fails: a command that could not be started
/// exits 127 (as in a shell), after its message; any other failure is an error.
pub(crate) fn profiler_failure(err: kprof_profiler::Error) -> Result<std::process::ExitCode> {
    match err.exit_code() {
        Some(code) => {
            eprintln!("kprof: {:#}", anyhow::Error::from(err));
            Ok(std::process::ExitCode::from(
                u8::try_from(code).unwrap_or(1),
            ))
        }
        None => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue #11 point 7
    #[test]
    fn the_lost_share_is_of_the_samples_taken() {
        let text = lost_warning(69677, 15126);
        assert!(text.contains("(82.16% of 84803 taken)"), "{text}");
    }
}
