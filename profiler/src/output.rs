//! Where a recording goes, and keeping what reached it.
//!
//! The kind of thing at the output path decides how it is written ([`Destination::prepare`]):
//!
//! | at the path                         | what kprof does                                        |
//! |-------------------------------------|--------------------------------------------------------|
//! | nothing, or a regular file          | keeps an existing file as `NAME.old`, creates `NAME` (`O_EXCL`, `O_NOFOLLOW`, mode 0600) and writes the file format into it |
//! | a FIFO or character device, or a symlink to one | opens it without creating anything and writes the pipe format through it (`/dev/null`, a FIFO with a reader) |
//! | `-`                                 | standard output, in the pipe format (as `perf record -o -`) |
//! | anything else                       | refuses: directories, block devices, sockets, terminals, and symlinks to regular files or to nothing |
//!
//! Nothing but the output path's own regular file is ever renamed, and nothing but that file is
//! ever created.
//!
//! The file format is written to the real path, and its header is rewritten every
//! [`CHECKPOINT_INTERVAL`] to cover the records written so far (after syncing them), so a
//! recording ended by SIGKILL or a power loss leaves a file that kprof and Linux perf read up
//! to its last checkpoint. A write error (a full disk) ends the writing, not the file: the
//! records that reached the disk whole are kept, the header is finished around them
//! ([`Output::failure`] says how much was kept), and the recording stops.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kprof_perfdata::kinds::record::SAMPLE;
use kprof_perfdata::writer::{PipeWriter, RecordWriter, Writer, WriterAttr};
use kprof_perfdata::{BuildIdEntry, Features};

use crate::error::{Error, Result};
use crate::ring::RawData;
use crate::session::RecordSink;

/// How often the file's header is rewritten to cover the records written so far.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Where the recording will go, checked (and for streams, opened) before anything starts.
#[derive(Debug)]
pub struct Destination {
    path: PathBuf,
    kind: DestinationKind,
}

#[derive(Debug)]
enum DestinationKind {
    /// Create a regular file at the path (keeping an existing one as `.old`).
    File,
    /// Write the pipe format into this open FIFO, device or standard output.
    Stream(File),
}

/// The refusal for `path`, as an [`Error::Output`].
fn refuse(path: &Path, why: impl Into<String>) -> Error {
    Error::Output {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, why.into()),
    }
}

fn output_error(path: &Path, source: io::Error) -> Error {
    Error::Output {
        path: path.to_owned(),
        source,
    }
}

/// What a file type is called in messages.
fn kind_name(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "a regular file"
    }
}

fn is_stream(file_type: std::fs::FileType) -> bool {
    file_type.is_fifo() || file_type.is_char_device()
}

/// What is at an output path, for any writer: replace it, or write through it.
#[derive(Debug)]
pub enum OutputPath {
    /// Nothing, or a regular file: write a new file and put it in place (the caller decides
    /// how: `record` keeps the old one as `.old`, other writers rename a temporary file over
    /// it).
    Replace,
    /// A FIFO or character device (or a symlink to one), or the process's own standard output
    /// or error named as `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1` (and 2): opened for
    /// writing, nothing created.
    Stream(File),
}

/// Paths that name the process's own standard output.
const STDOUT_NAMES: [&str; 3] = ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"];
/// Paths that name the process's own standard error.
const STDERR_NAMES: [&str; 3] = ["/dev/stderr", "/dev/fd/2", "/proc/self/fd/2"];

/// The process's own standard output or error, when `path` names it: the open file itself
/// (reopening `/proc/self/fd/1` would start a regular file over at offset 0).
fn own_stream(path: &Path) -> Option<io::Result<File>> {
    let text = path.as_os_str().to_str()?;
    let fd = if STDOUT_NAMES.contains(&text) {
        io::stdout().as_fd().try_clone_to_owned()
    } else if STDERR_NAMES.contains(&text) {
        io::stderr().as_fd().try_clone_to_owned()
    } else {
        return None;
    };
    Some(fd.map(File::from))
}

/// Decides how to write `path`, following the rules in the module docs: regular files (or
/// nothing) are replaced; FIFOs, character devices, symlinks to them and the process's own
/// standard streams are written through (a FIFO without a reader is waited for, with a note);
/// everything else is refused with the reason. Nothing is created or renamed here.
pub fn classify(path: &Path, notes: &mut dyn FnMut(&str)) -> Result<OutputPath> {
    if let Some(stream) = own_stream(path) {
        return stream
            .map(OutputPath::Stream)
            .map_err(|e| output_error(path, e));
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OutputPath::Replace),
        Err(e) => return Err(output_error(path, e)),
    };
    let file_type = meta.file_type();
    if file_type.is_file() {
        return Ok(OutputPath::Replace);
    }
    if is_stream(file_type) {
        return open_stream(path, false, notes).map(OutputPath::Stream);
    }
    if file_type.is_symlink() {
        let Ok(target) = std::fs::metadata(path).map(|m| m.file_type()) else {
            return Err(refuse(
                path,
                "is a symbolic link to nothing; kprof replaces only regular files: remove the \
                 link or give another path",
            ));
        };
        if is_stream(target) {
            return open_stream(path, true, notes).map(OutputPath::Stream);
        }
        return Err(refuse(
            path,
            format!(
                "is a symbolic link to {}; kprof neither writes through links to files nor \
                 replaces them: give the link's target, or remove the link",
                kind_name(target)
            ),
        ));
    }
    Err(refuse(
        path,
        format!(
            "is {}; kprof writes only regular files, FIFOs and character devices",
            kind_name(file_type)
        ),
    ))
}

impl Destination {
    /// Checks what is at `path` (`-`: standard output) and decides how to write it
    /// ([`classify`]). Streams are opened here, before any signal handler or workload exists:
    /// opening a FIFO waits for its reader (with a note), and Ctrl-C meanwhile simply ends
    /// kprof. Regular files are created only by [`Destination::open`], once the recording can
    /// start. A terminal is refused: perf.data is binary.
    pub fn prepare(path: &Path, notes: &mut dyn FnMut(&str)) -> Result<Destination> {
        let stdout = path.as_os_str() == "-";
        let kind = if stdout {
            let fd = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| output_error(path, e))?;
            OutputPath::Stream(File::from(fd))
        } else {
            classify(path, notes)?
        };
        let kind = match kind {
            OutputPath::Replace => DestinationKind::File,
            OutputPath::Stream(file) if file.is_terminal() => {
                let hint = if stdout {
                    "standard output is a terminal; redirect it to a file or a pipe \
                     (kprof record -o - -- CMD | kprof flame -i - > out.svg)"
                } else {
                    "is a terminal; kprof writes binary perf.data: give a file, a pipe or a FIFO"
                };
                return Err(refuse(path, hint));
            }
            OutputPath::Stream(file) => DestinationKind::Stream(file),
        };
        Ok(Destination {
            path: path.to_owned(),
            kind,
        })
    }

    /// True when the recording goes to standard output (the workload's stdout must not).
    pub fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
            || self
                .path
                .to_str()
                .is_some_and(|p| STDOUT_NAMES.contains(&p))
    }

    /// Starts writing: for a regular file, keeps an existing one as `NAME.old`, creates the new
    /// one and writes its header and attrs; for a stream, writes the pipe header, the attrs and
    /// the host facts of `features` (and its tracing data). Until [`Output::keep`], dropping
    /// the output removes the new file and puts the old one back.
    pub fn open(self, attrs: Vec<WriterAttr>, features: &Features) -> Result<Output> {
        match self.kind {
            DestinationKind::File => FileOutput::create(&self.path, attrs).map(Output::File),
            DestinationKind::Stream(file) => {
                let writer = PipeWriter::new(BufWriter::new(file), &attrs, features)
                    .map_err(|e| output_error(&self.path, e))?;
                Ok(Output::Pipe(PipeOutput {
                    writer: Some(writer),
                    samples: 0,
                    failure: None,
                }))
            }
        }
    }
}

/// Opens a FIFO or character device for writing, creating nothing. `follow`: the path is a
/// symlink to it. A FIFO without a reader is waited for, with a note.
fn open_stream(path: &Path, follow: bool, notes: &mut dyn FnMut(&str)) -> Result<File> {
    let flags = libc::O_CLOEXEC | libc::O_NOCTTY | if follow { 0 } else { libc::O_NOFOLLOW };
    let open = |extra: i32| {
        OpenOptions::new()
            .write(true)
            .custom_flags(flags | extra)
            .open(path)
    };
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    let mut opened = None;
    if is_fifo {
        // A non-blocking open tells whether a reader is there (ENXIO: not yet). When one is,
        // this is the writer it gets: closing it would hand the reader an end of file.
        match open(libc::O_NONBLOCK) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => notes(&format!(
                "waiting for a reader to open the FIFO {}",
                path.display()
            )),
            Err(e) => return Err(output_error(path, e)),
            Ok(file) => {
                crate::sys::set_blocking(file.as_fd()).map_err(|e| output_error(path, e))?;
                opened = Some(file);
            }
        }
    }
    let file = match opened {
        Some(file) => file,
        None => open(0).map_err(|e| output_error(path, e))?,
    };
    // The path could have changed since it was looked at: check what was opened.
    let opened = file.metadata().map_err(|e| output_error(path, e))?;
    if !is_stream(opened.file_type()) {
        return Err(refuse(
            path,
            format!(
                "changed into {} while being opened",
                kind_name(opened.file_type())
            ),
        ));
    }
    Ok(file)
}

/// How much of a recording its output kept after a write error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFailure {
    /// The error, as the OS said it.
    pub error: String,
    /// Samples in the output that readers will see.
    pub kept_samples: u64,
    /// Bytes of records kept (the data section of a file; written to a stream).
    pub kept_bytes: u64,
    /// True for a file whose header now covers exactly the records kept, so kprof and perf
    /// read it; false for a stream (its reader got whatever was written) or a file whose
    /// header could not be rewritten (it still covers the last checkpoint).
    pub readable: bool,
}

/// The output of a recording: a file or a stream. It takes the session's records
/// (the session's `RecordSink`) and is finished by [`Output::finish`].
#[derive(Debug)]
pub enum Output {
    /// A regular file, file format.
    File(FileOutput),
    /// A FIFO, character device or standard output, pipe format.
    Pipe(PipeOutput),
}

impl Output {
    /// Writes one record synthesized by the recorder (side-band before the workload starts).
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        self.record(RawData::Single(record))
    }

    /// Makes everything written so far readable now: a file's header is checkpointed, a
    /// stream flushed.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        match self {
            Output::File(f) => f.checkpoint(),
            Output::Pipe(p) => p.flush(),
        }
    }

    /// The recording has started: from now on the file stays, whatever happens.
    pub fn keep(&mut self) {
        if let Output::File(f) = self {
            f.kept = true;
        }
    }

    /// Bytes of records written so far.
    pub fn data_bytes(&self) -> u64 {
        match self {
            Output::File(f) => f.writer.as_ref().map_or(0, |w| w.data_bytes()),
            Output::Pipe(p) => p.writer.as_ref().map_or(0, |w| w.data_bytes()),
        }
    }

    /// Set once a write failed: what was kept.
    pub fn failure(&self) -> Option<&OutputFailure> {
        match self {
            Output::File(f) => f.failure.as_ref(),
            Output::Pipe(p) => p.failure.as_ref(),
        }
    }

    /// Finishes the output with `features` (a file: feature sections and the final header; a
    /// stream: build-id records) and makes it durable. After a write error it still tries to
    /// add the features to what was kept. Returns the failure, if any write failed.
    pub fn finish(self, features: &Features) -> Option<OutputFailure> {
        match self {
            Output::File(f) => f.finish(features),
            Output::Pipe(p) => p.finish(&features.build_ids),
        }
    }
}

impl RecordSink for Output {
    fn record(&mut self, raw: RawData<'_>) -> io::Result<()> {
        match self {
            Output::File(f) => f.record(raw),
            Output::Pipe(p) => p.record(raw),
        }
    }

    fn tick(&mut self) -> io::Result<()> {
        match self {
            Output::File(f) if f.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL => f.checkpoint(),
            Output::File(_) => Ok(()),
            // A reader (a FIFO, `kprof flame -i -`) gets the records without waiting.
            Output::Pipe(p) => p.flush(),
        }
    }
}

/// The record path of files and pipes alike: one ring record through `writer` (none: the
/// output is finished), samples counted in `samples`.
fn write_raw(
    writer: Option<&mut impl RecordWriter>,
    raw: &RawData<'_>,
    samples: &mut u64,
) -> io::Result<()> {
    let Some(writer) = writer else {
        return Ok(());
    };
    match *raw {
        RawData::Single(record) => writer.write_record(record)?,
        RawData::Split(first, second) => writer.write_split(first, second)?,
    }
    if raw.record_type() == Some(SAMPLE) {
        *samples += 1;
    }
    Ok(())
}

/// Refuses to go on writing an output that failed: the error it hands the session from then on
/// (the real one is kept in `failure`).
fn not_failed(failure: Option<&OutputFailure>) -> io::Result<()> {
    match failure {
        Some(failure) => Err(io::Error::other(failure.error.clone())),
        None => Ok(()),
    }
}

/// A file being recorded: buffered writes that a failure discards (so nothing half-written is
/// retried), the header checkpointed every second, salvage after an error.
#[derive(Debug)]
pub struct FileOutput {
    path: PathBuf,
    /// Where the previous file went, until the recording is kept.
    rotated: Option<PathBuf>,
    writer: Option<Writer<RecordFile>>,
    /// The recording started: the file stays even if recording fails.
    kept: bool,
    last_checkpoint: Instant,
    /// Data bytes the header on disk covers.
    checkpointed: u64,
    /// Samples among them.
    checkpointed_samples: u64,
    /// Samples written (handed to the file) so far.
    samples: u64,
    failure: Option<OutputFailure>,
}

impl FileOutput {
    /// Keeps an existing regular file at `path` as `NAME.old`, creates the new file with
    /// `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600, and writes its header (data size 0) and attrs.
    fn create(path: &Path, attrs: Vec<WriterAttr>) -> Result<Self> {
        let rotated = rotate(path)?;
        let created = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path);
        let file = match created {
            Ok(file) => file,
            Err(e) => {
                if let Some(old) = &rotated {
                    let _ = std::fs::rename(old, path);
                }
                return Err(output_error(path, e));
            }
        };
        let mut output = FileOutput {
            path: path.to_owned(),
            rotated,
            writer: None,
            kept: false,
            last_checkpoint: Instant::now(),
            checkpointed: 0,
            checkpointed_samples: 0,
            samples: 0,
            failure: None,
        };
        // From here on, dropping `output` removes the file and puts the old one back.
        let writer =
            Writer::new(RecordFile::new(file), attrs).map_err(|e| output_error(path, e))?;
        output.writer = Some(writer);
        Ok(output)
    }

    fn record(&mut self, raw: RawData<'_>) -> io::Result<()> {
        not_failed(self.failure.as_ref())?;
        write_raw(self.writer.as_mut(), &raw, &mut self.samples).map_err(|e| self.fail(e))
    }

    /// Flushes and syncs the records, then rewrites the header to cover them.
    fn checkpoint(&mut self) -> io::Result<()> {
        not_failed(self.failure.as_ref())?;
        self.last_checkpoint = Instant::now();
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if writer.data_bytes() == self.checkpointed && self.checkpointed > 0 {
            return Ok(());
        }
        let done = writer
            .sink_mut()
            .flush()
            .and_then(|()| writer.sink_mut().file.sync_data())
            .and_then(|()| writer.checkpoint());
        match done {
            Ok(()) => {
                self.checkpointed = writer.data_bytes();
                self.checkpointed_samples = self.samples;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Records the failure and makes the file readable up to the last record that reached it
    /// whole. Returns an error for the session.
    fn fail(&mut self, error: io::Error) -> io::Error {
        let text = error.to_string();
        let (kept_bytes, kept_samples, readable) = self.salvage();
        self.failure = Some(OutputFailure {
            error: text,
            kept_samples,
            kept_bytes,
            readable,
        });
        error
    }

    /// Finds the records after the last checkpoint that reached the file whole, cuts the file
    /// after them and rewrites the header (without features) to cover them.
    fn salvage(&mut self) -> (u64, u64, bool) {
        let fallback = (self.checkpointed, self.checkpointed_samples, false);
        let Some(writer) = self.writer.as_mut() else {
            return fallback;
        };
        let data_offset = writer.data_offset();
        // Nothing past the records handed to the writer is a record (features may follow).
        let data_end = data_offset + writer.data_bytes();
        let sink = writer.sink_mut();
        sink.discard();
        let Ok(len) = sink.file.metadata().map(|m| m.len()) else {
            return fallback;
        };
        let (end, samples) = whole_records(
            &sink.file,
            data_offset + self.checkpointed,
            len.min(data_end),
        );
        let kept_bytes = end - data_offset;
        let kept_samples = self.checkpointed_samples + samples;
        // Dropping the partial record frees its blocks for the header and features.
        let _ = sink.file.set_len(end);
        let rewritten = writer
            .cut_data(kept_bytes)
            .and_then(|()| writer.checkpoint());
        if rewritten.is_err() {
            return fallback;
        }
        self.checkpointed = kept_bytes;
        self.checkpointed_samples = kept_samples;
        (kept_bytes, kept_samples, true)
    }

    fn finish(mut self, features: &Features) -> Option<OutputFailure> {
        self.kept = true;
        let mut writer = self.writer.take()?;
        let data_end = writer.data_offset() + writer.data_bytes();
        match writer.write_features(features) {
            Ok(()) => {
                // The file is complete; only its durability is in doubt.
                if let Err(e) = writer.sink_mut().file.sync_all() {
                    if self.failure.is_none() {
                        self.failure = Some(OutputFailure {
                            error: e.to_string(),
                            kept_samples: self.samples,
                            kept_bytes: writer.data_bytes(),
                            readable: true,
                        });
                    }
                }
            }
            Err(e) => {
                if self.failure.is_some() {
                    // Already cut back and readable: leave it without features.
                    let sink = writer.sink_mut();
                    sink.discard();
                    let _ = sink.file.set_len(data_end);
                    let _ = writer.checkpoint();
                } else {
                    self.writer = Some(writer);
                    self.fail(e);
                }
            }
        }
        self.failure.take()
    }
}

impl Drop for FileOutput {
    /// A recording that never started leaves nothing behind: the new file goes, the old one
    /// comes back.
    fn drop(&mut self) {
        if self.kept {
            // Ended without finish() (an error elsewhere): cover what was written, if possible.
            if self.failure.is_none() && self.writer.is_some() {
                let _ = self.checkpoint();
            }
            return;
        }
        self.writer = None;
        let _ = std::fs::remove_file(&self.path);
        if let Some(old) = &self.rotated {
            let _ = std::fs::rename(old, &self.path);
        }
    }
}

/// Keeps an existing regular file at `path` as `NAME.old` (replacing an older `.old` only if
/// that is a regular file too). Returns where it went.
fn rotate(path: &Path) -> Result<Option<PathBuf>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(output_error(path, e)),
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(refuse(
                path,
                format!("became {} while kprof started", kind_name(meta.file_type())),
            ));
        }
        Ok(_) => {}
    }
    let mut old = OsString::from(path.as_os_str());
    old.push(".old");
    let old = PathBuf::from(old);
    match std::fs::symlink_metadata(&old) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(refuse(
                path,
                format!(
                    "cannot keep the previous recording as {}: that is {}",
                    old.display(),
                    kind_name(meta.file_type())
                ),
            ));
        }
        _ => {}
    }
    std::fs::rename(path, &old).map_err(|e| output_error(path, e))?;
    Ok(Some(old))
}

/// Walks the record headers in `file` from `from` to `len`; returns where the last record that
/// lies whole before `len` ends, and how many samples lie in between.
fn whole_records(file: &File, from: u64, len: u64) -> (u64, u64) {
    let mut at = from;
    let mut samples = 0;
    let mut header = [0u8; 8];
    while at + 8 <= len {
        if file.read_exact_at(&mut header, at).is_err() {
            break;
        }
        let kind = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let size = u64::from(u16::from_ne_bytes([header[6], header[7]]));
        if size < 8 || at + size > len {
            break;
        }
        if kind == SAMPLE {
            samples += 1;
        }
        at += size;
    }
    (at, samples)
}

/// The file under a [`Writer`]: a write buffer that is dropped, not retried, when a write
/// fails (what reached the disk is found again by `whole_records`).
///
/// Hand-written rather than `BufWriter`, whose buffer would be written again by the next
/// flush or seek after an error.
#[derive(Debug)]
pub struct RecordFile {
    file: File,
    buffer: Vec<u8>,
}

/// Bytes buffered before a write to the file.
const RECORD_BUFFER: usize = 256 << 10;

impl RecordFile {
    fn new(file: File) -> Self {
        RecordFile {
            file,
            buffer: Vec::with_capacity(RECORD_BUFFER),
        }
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        let result = self.file.write_all(&self.buffer);
        self.buffer.clear();
        result
    }

    fn discard(&mut self) {
        self.buffer.clear();
    }
}

impl Write for RecordFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + bytes.len() > RECORD_BUFFER {
            self.write_buffer()?;
        }
        if bytes.len() >= RECORD_BUFFER {
            self.file.write_all(bytes)?;
        } else {
            self.buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buffer()?;
        self.file.flush()
    }
}

impl Seek for RecordFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.write_buffer()?;
        self.file.seek(pos)
    }
}

/// A stream being recorded in the pipe format.
#[derive(Debug)]
pub struct PipeOutput {
    writer: Option<PipeWriter<BufWriter<File>>>,
    samples: u64,
    failure: Option<OutputFailure>,
}

impl PipeOutput {
    fn record(&mut self, raw: RawData<'_>) -> io::Result<()> {
        not_failed(self.failure.as_ref())?;
        write_raw(self.writer.as_mut(), &raw, &mut self.samples).map_err(|e| self.fail(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        not_failed(self.failure.as_ref())?;
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        match writer.sink_mut().flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, error: io::Error) -> io::Error {
        let kept_bytes = self.writer.as_ref().map_or(0, |w| w.data_bytes());
        self.failure = Some(OutputFailure {
            error: error.to_string(),
            kept_samples: self.samples,
            kept_bytes,
            readable: false,
        });
        // Whatever is still buffered cannot be written either.
        if let Some(writer) = self.writer.take() {
            let (file, _) = writer_into_parts(writer);
            drop(file);
        }
        error
    }

    fn finish(mut self, build_ids: &[BuildIdEntry]) -> Option<OutputFailure> {
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.finish(build_ids) {
                self.fail(e);
            }
        }
        self.failure
    }
}

/// Drops a failed pipe writer without flushing its buffer again.
fn writer_into_parts(writer: PipeWriter<BufWriter<File>>) -> (File, Vec<u8>) {
    let (file, buffered) = writer.into_sink().into_parts();
    (file, buffered.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn attrs() -> Vec<WriterAttr> {
        vec![WriterAttr {
            attr: vec![0; 128],
            ids: vec![1],
            name: "cpu-clock".into(),
        }]
    }

    /// A record of `kind` with an 8-byte body.
    fn record(kind: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&16u16.to_ne_bytes());
        out.extend_from_slice(&7u64.to_ne_bytes());
        out
    }

    // See: issue #11 point 1
    #[test]
    fn only_regular_files_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut notes = |_: &str| {};
        let missing = dir.path().join("new.data");
        assert!(matches!(
            classify(&missing, &mut notes).unwrap(),
            OutputPath::Replace
        ));
        let regular = dir.path().join("old.data");
        std::fs::write(&regular, "x").unwrap();
        assert!(matches!(
            classify(&regular, &mut notes).unwrap(),
            OutputPath::Replace
        ));
        let null_link = dir.path().join("null-link");
        std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
        assert!(matches!(
            classify(&null_link, &mut notes).unwrap(),
            OutputPath::Stream(_)
        ));
        let file_link = dir.path().join("file-link");
        std::os::unix::fs::symlink(&regular, &file_link).unwrap();
        let err = classify(&file_link, &mut notes).unwrap_err();
        assert!(
            err.with_causes()
                .contains("symbolic link to a regular file"),
            "{}",
            err.with_causes()
        );
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(classify(&dangling, &mut notes).is_err());
        let err = classify(dir.path(), &mut notes).unwrap_err();
        assert!(err.with_causes().contains("is a directory"), "{err}");
        assert!(matches!(
            classify(Path::new("/dev/stderr"), &mut notes).unwrap(),
            OutputPath::Stream(_)
        ));
    }

    // See: issue #11 point 1
    #[test]
    fn a_fifo_without_a_reader_is_waited_for_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipping: mkfifo failed");
            return;
        }
        let reader_path = fifo.clone();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read(&reader_path).unwrap()
        });
        let mut said = Vec::new();
        let destination =
            Destination::prepare(&fifo, &mut |n: &str| said.push(n.to_owned())).unwrap();
        assert!(
            said.iter().any(|n| n.contains("waiting for a reader")),
            "{said:?}"
        );
        let mut out = destination.open(attrs(), &Features::default()).unwrap();
        out.write_record(&record(SAMPLE)).unwrap();
        assert!(out.finish(&Features::default()).is_none());
        let bytes = reader.join().unwrap();
        assert_eq!(&bytes[..8], b"PERFILE2");
        assert_eq!(u64::from_ne_bytes(bytes[8..16].try_into().unwrap()), 16);
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }

    // See: issue #11 point 1
    #[test]
    fn an_existing_file_becomes_old_and_comes_back_if_recording_never_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.data");
        std::fs::write(&path, "previous").unwrap();
        let mut notes = |_: &str| {};
        let out = Destination::prepare(&path, &mut notes)
            .unwrap()
            .open(attrs(), &Features::default())
            .unwrap();
        let old = dir.path().join("out.data.old");
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "previous");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(out);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous");
        assert!(!old.exists());

        let mut out = Destination::prepare(&path, &mut notes)
            .unwrap()
            .open(attrs(), &Features::default())
            .unwrap();
        out.keep();
        out.write_record(&record(SAMPLE)).unwrap();
        assert!(out.finish(&Features::default()).is_none());
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "previous");
        assert_eq!(&std::fs::read(&path).unwrap()[..8], b"PERFILE2");
    }

    // See: issue #11 point 1
    #[test]
    fn an_old_name_that_is_not_a_regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.data");
        std::fs::write(&path, "previous").unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("out.data.old")).unwrap();
        let mut notes = |_: &str| {};
        let err = Destination::prepare(&path, &mut notes)
            .unwrap()
            .open(attrs(), &Features::default())
            .unwrap_err();
        assert!(err.with_causes().contains("cannot keep"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous");
    }

    // See: issue #11 point 2
    #[test]
    fn checkpoints_cover_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.data");
        let mut notes = |_: &str| {};
        let mut out = Destination::prepare(&path, &mut notes)
            .unwrap()
            .open(attrs(), &Features::default())
            .unwrap();
        out.keep();
        for _ in 0..3 {
            out.write_record(&record(SAMPLE)).unwrap();
        }
        out.checkpoint().unwrap();
        // What a SIGKILL now would leave: the header covers the three records.
        let bytes = std::fs::read(&path).unwrap();
        let data_size = u64::from_ne_bytes(bytes[48..56].try_into().unwrap());
        assert_eq!(data_size, 48);
        out.write_record(&record(SAMPLE)).unwrap();
        drop(out);
        let bytes = std::fs::read(&path).unwrap();
        let data_size = u64::from_ne_bytes(bytes[48..56].try_into().unwrap());
        assert_eq!(
            data_size, 64,
            "a kept output dropped without finish checkpoints"
        );
    }

    #[test]
    fn whole_records_stop_before_a_cut_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let mut bytes = record(SAMPLE);
        bytes.extend(record(3));
        bytes.extend(record(SAMPLE));
        bytes.extend(&record(SAMPLE)[..10]);
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(whole_records(&file, 0, bytes.len() as u64), (48, 2));
        assert_eq!(whole_records(&file, 16, bytes.len() as u64), (48, 1));
        assert_eq!(whole_records(&file, 0, 20), (16, 1));
    }
}
