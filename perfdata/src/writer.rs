//! Writes perf.data files (the seekable "PERFILE2" format) and encodes the side-band records a
//! recorder synthesizes itself (COMM, MMAP, MMAP2, FORK, EXIT, LOST_SAMPLES, CGROUP, FINISHED_ROUND,
//! FINISHED_INIT).
//!
//! # Layout written
//!
//! ```text
//! 0                 file header (104 bytes); data.size stays 0 until finish()
//! 104               id arrays of every attr (u64 each)
//! ...               attrs: 128-byte perf_event_attr + {offset, size} of its id array
//! data.offset       records, copied as-is
//! data.end          feature section table ({offset, size} per set bit, in bit order)
//! ...               feature bodies
//! ```
//!
//! The attrs and the data offset are on disk as soon as [`Writer::new`] returns, so a recording that
//! is killed before [`Writer::finish`] leaves a file whose header says `data.size == 0`; readers
//! salvage it by reading records up to the end of the file. [`Writer::checkpoint`] rewrites the
//! header to cover the records written so far (with no feature sections, which come only at the
//! end), so a recorder that checkpoints every second leaves a file that Linux perf reads too.
//!
//! [`PipeWriter`] writes the pipe format (`perf record -o -`) to any `Write`: a 16-byte header,
//! the attrs and host facts as HEADER_ATTR / HEADER_FEATURE records, then the records, and the
//! build-ids as HEADER_BUILD_ID records at the end. Both append records through
//! [`RecordWriter`], the one record path of files and pipes.
//!
//! Everything is written in the host's byte order, the order the kernel uses for ring-buffer
//! records. Attrs are always stored as 128 bytes with `size = 128` (`PERF_ATTR_SIZE_VER7`):
//! Linux perf 6.1 rejects attrs larger than its own struct.
//!
//! This module works over any `Write + Seek`; it opens no files and reads no process state.
//! Its errors are plain [`std::io::Error`]s: the only failures are the sink's, plus
//! [`std::io::ErrorKind::InvalidInput`] for a record whose header size does not match its bytes.

use std::io::{self, Seek, SeekFrom, Write};

use crate::attr::EventAttr;
use crate::endian::Endian;
use crate::features::{BuildIdEntry, Features};
use crate::kinds::{
    FILE_HEADER_SIZE, PIPE_HEADER_SIZE, feature, misc, mmap, record as record_type,
    sample as sample_type,
};
use crate::sample::{SampleId, sample_id_size};

/// `"PERFILE2"` read as a host-endian u64.
const MAGIC: u64 = u64::from_le_bytes(*b"PERFILE2");
/// Size of the attrs stored in the file (`PERF_ATTR_SIZE_VER7`).
pub const STORED_ATTR_SIZE: usize = 128;
/// Size of `struct perf_file_attr`: the attr plus the section of its ids.
const FILE_ATTR_SIZE: u64 = STORED_ATTR_SIZE as u64 + 16;
/// Strings in feature sections are NUL-padded to this alignment (perf's `NAME_ALIGN`).
const NAME_ALIGN: usize = 64;
/// One event of the recording: its attr, the sample ids the kernel gave its fds, and its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterAttr {
    /// Raw `perf_event_attr` bytes as passed to the kernel, of any size. Stored as 128 bytes with
    /// the size field set to 128: shorter attrs are zero-extended, longer ones truncated.
    pub attr: Vec<u8>,
    /// The ids (`PERF_EVENT_IOC_ID`) of every fd opened with this attr.
    pub ids: Vec<u64>,
    /// The event's name as the user spelled it (`cpu-clock`), shown by `perf report --header`.
    pub name: String,
}

/// Which fields the `sample_id_all` trailer of non-sample records carries.
///
/// The trailer holds, in this order and each only if its `sample_type` bit is set:
/// TID (pid, tid as u32), TIME, ID, STREAM_ID, CPU (cpu, reserved as u32), IDENTIFIER.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleIdLayout {
    /// `sample_type` of the attr, or 0 when `sample_id_all` is off (no trailer).
    sample_type: u64,
}

impl SampleIdLayout {
    /// A trailer shaped by `sample_type` (the attr has `sample_id_all` set).
    pub fn new(sample_type: u64) -> Self {
        Self { sample_type }
    }

    /// No trailer (the attr has `sample_id_all` clear).
    pub fn none() -> Self {
        Self { sample_type: 0 }
    }

    /// The layout of a raw `perf_event_attr` (host byte order): its `sample_type` if
    /// `sample_id_all` is set, else none. Attrs shorter than the first version (64 bytes) have no
    /// trailer.
    pub fn from_attr(attr: &[u8]) -> Self {
        match EventAttr::parse(attr, 0, Endian::NATIVE) {
            Ok(attr) if attr.sample_id_all => Self::new(attr.sample_type),
            _ => Self::none(),
        }
    }

    /// The `sample_type` this layout follows (0 for none).
    pub fn sample_type(&self) -> u64 {
        self.sample_type
    }

    /// Size in bytes of the trailer.
    pub fn size(&self) -> usize {
        sample_id_size(self.sample_type)
    }

    /// Appends the trailer for `values` to `out`: the reader's [`SampleId`], written back. Fields
    /// the layout does not carry are ignored; fields it carries but `values` lacks are written as
    /// 0 (perf writes 0 for the time of synthesized records).
    pub fn encode(&self, values: &SampleId, out: &mut Vec<u8>) {
        let st = self.sample_type;
        let id = values.id.unwrap_or(0);
        if st & sample_type::TID != 0 {
            out.extend_from_slice(&values.pid.unwrap_or(0).to_ne_bytes());
            out.extend_from_slice(&values.tid.unwrap_or(0).to_ne_bytes());
        }
        if st & sample_type::TIME != 0 {
            out.extend_from_slice(&values.time.unwrap_or(0).to_ne_bytes());
        }
        if st & sample_type::ID != 0 {
            out.extend_from_slice(&id.to_ne_bytes());
        }
        if st & sample_type::STREAM_ID != 0 {
            out.extend_from_slice(&values.stream_id.unwrap_or(0).to_ne_bytes());
        }
        if st & sample_type::CPU != 0 {
            out.extend_from_slice(&values.cpu.unwrap_or(0).to_ne_bytes());
            out.extend_from_slice(&0u32.to_ne_bytes());
        }
        if st & sample_type::IDENTIFIER != 0 {
            out.extend_from_slice(&id.to_ne_bytes());
        }
    }
}

/// Fields of an MMAP2 record (MMAP uses pid, tid, start, len, pgoff, filename and kernel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MmapFields<'a> {
    /// Process id, `-1` for the kernel.
    pub pid: i32,
    /// Thread id (perf uses the pid for synthesized maps, 0 for the kernel).
    pub tid: i32,
    /// Start address of the mapping.
    pub start: u64,
    /// Length of the mapping in bytes.
    pub len: u64,
    /// File offset of `start` (for the kernel map, perf stores the `_text` address here).
    pub pgoff: u64,
    /// Device major number.
    pub maj: u32,
    /// Device minor number.
    pub min: u32,
    /// Inode number.
    pub ino: u64,
    /// Inode generation.
    pub ino_generation: u64,
    /// `PROT_*` bits (`PROT_EXEC` = 4). Without `PROT_EXEC`, `PERF_RECORD_MISC_MMAP_DATA` is set.
    pub prot: u32,
    /// `MAP_*` bits (`MAP_SHARED` = 1, `MAP_PRIVATE` = 2).
    pub flags: u32,
    /// The mapped file's path, `[vdso]`, `//anon`, ... (no NUL needed).
    pub filename: &'a [u8],
    /// A kernel mapping (`PERF_RECORD_MISC_KERNEL`) rather than a user one.
    pub kernel: bool,
}

/// Starts a record: reserves its header, to be completed by [`end_record`].
fn begin_record(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    start
}

/// Fills in the header of the record started at `start`. Records larger than 64 KiB cannot be
/// expressed; their size saturates (callers pass filenames, which the kernel caps at PATH_MAX).
fn end_record(out: &mut [u8], start: usize, ty: u32, misc: u16) {
    let size = u16::try_from(out.len().saturating_sub(start)).unwrap_or(u16::MAX);
    if let Some(header) = out.get_mut(start..start + 8) {
        header[0..4].copy_from_slice(&ty.to_ne_bytes());
        header[4..6].copy_from_slice(&misc.to_ne_bytes());
        header[6..8].copy_from_slice(&size.to_ne_bytes());
    }
}

/// Appends `s` NUL-terminated and NUL-padded to a multiple of 8 bytes (cut at its first NUL).
/// Strings longer than `max` bytes are cut to keep records under 64 KiB.
fn push_padded_str(out: &mut Vec<u8>, s: &[u8], max: usize) {
    let s = s.split(|&b| b == 0).next().unwrap_or_default();
    let s = s.get(..max).unwrap_or(s);
    out.extend_from_slice(s);
    let padded = (s.len() + 1).next_multiple_of(8);
    out.resize(out.len() + padded - s.len(), 0);
}

/// Longest string an encoder stores (Linux's PATH_MAX).
const MAX_RECORD_STRING: usize = 4096;

/// A `PERF_RECORD_COMM`: thread `tid` of process `pid` is named `name`; `exec` marks a rename by
/// exec (`PERF_RECORD_MISC_COMM_EXEC`).
pub fn encode_comm(
    layout: &SampleIdLayout,
    pid: i32,
    tid: i32,
    name: &[u8],
    exec: bool,
    sid: &SampleId,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + layout.size());
    let start = begin_record(&mut out);
    out.extend_from_slice(&pid.to_ne_bytes());
    out.extend_from_slice(&tid.to_ne_bytes());
    push_padded_str(&mut out, name, MAX_RECORD_STRING);
    layout.encode(sid, &mut out);
    let misc = if exec { misc::COMM_EXEC } else { 0 };
    end_record(&mut out, start, record_type::COMM, misc);
    out
}

/// The misc bits of a mapping record.
fn mmap_misc(fields: &MmapFields<'_>) -> u16 {
    let mut bits = if fields.kernel {
        misc::CPUMODE_KERNEL
    } else {
        misc::CPUMODE_USER
    };
    if fields.prot & mmap::PROT_EXEC == 0 && !fields.kernel {
        bits |= misc::MMAP_DATA;
    }
    bits
}

/// The fields MMAP and MMAP2 start with: pid, tid, start, len, pgoff.
fn push_mmap_head(out: &mut Vec<u8>, fields: &MmapFields<'_>) {
    out.extend_from_slice(&fields.pid.to_ne_bytes());
    out.extend_from_slice(&fields.tid.to_ne_bytes());
    out.extend_from_slice(&fields.start.to_ne_bytes());
    out.extend_from_slice(&fields.len.to_ne_bytes());
    out.extend_from_slice(&fields.pgoff.to_ne_bytes());
}

/// A `PERF_RECORD_MMAP2` (with device and inode, not the build-id variant).
pub fn encode_mmap2(layout: &SampleIdLayout, fields: &MmapFields<'_>, sid: &SampleId) -> Vec<u8> {
    let mut out = Vec::with_capacity(72 + fields.filename.len() + layout.size());
    let start = begin_record(&mut out);
    push_mmap_head(&mut out, fields);
    out.extend_from_slice(&fields.maj.to_ne_bytes());
    out.extend_from_slice(&fields.min.to_ne_bytes());
    out.extend_from_slice(&fields.ino.to_ne_bytes());
    out.extend_from_slice(&fields.ino_generation.to_ne_bytes());
    out.extend_from_slice(&fields.prot.to_ne_bytes());
    out.extend_from_slice(&fields.flags.to_ne_bytes());
    push_padded_str(&mut out, fields.filename, MAX_RECORD_STRING);
    layout.encode(sid, &mut out);
    end_record(&mut out, start, record_type::MMAP2, mmap_misc(fields));
    out
}

/// A `PERF_RECORD_MMAP` (no device/inode); perf uses it for the kernel and its modules.
pub fn encode_mmap(layout: &SampleIdLayout, fields: &MmapFields<'_>, sid: &SampleId) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + fields.filename.len() + layout.size());
    let start = begin_record(&mut out);
    push_mmap_head(&mut out, fields);
    push_padded_str(&mut out, fields.filename, MAX_RECORD_STRING);
    layout.encode(sid, &mut out);
    end_record(&mut out, start, record_type::MMAP, mmap_misc(fields));
    out
}

/// FORK and EXIT share one body: `ids` is `[pid, ppid, tid, ptid]`.
fn encode_task(
    ty: u32,
    layout: &SampleIdLayout,
    ids: [i32; 4],
    time: u64,
    sid: &SampleId,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + layout.size());
    let start = begin_record(&mut out);
    for value in ids {
        out.extend_from_slice(&value.to_ne_bytes());
    }
    out.extend_from_slice(&time.to_ne_bytes());
    layout.encode(sid, &mut out);
    end_record(&mut out, start, ty, 0);
    out
}

/// A `PERF_RECORD_FORK`: thread `tid` of `pid` was created by thread `ptid` of `ppid` at `time`.
pub fn encode_fork(
    layout: &SampleIdLayout,
    pid: i32,
    ppid: i32,
    tid: i32,
    ptid: i32,
    time: u64,
    sid: &SampleId,
) -> Vec<u8> {
    encode_task(record_type::FORK, layout, [pid, ppid, tid, ptid], time, sid)
}

/// A `PERF_RECORD_EXIT`: thread `tid` of `pid` (child of `ptid` of `ppid`) exited at `time`.
pub fn encode_exit(
    layout: &SampleIdLayout,
    pid: i32,
    ppid: i32,
    tid: i32,
    ptid: i32,
    time: u64,
    sid: &SampleId,
) -> Vec<u8> {
    encode_task(record_type::EXIT, layout, [pid, ppid, tid, ptid], time, sid)
}

/// A `PERF_RECORD_LOST_SAMPLES`: `lost` samples were dropped (by the kernel or by kprof).
pub fn encode_lost_samples(layout: &SampleIdLayout, lost: u64, sid: &SampleId) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + layout.size());
    let start = begin_record(&mut out);
    out.extend_from_slice(&lost.to_ne_bytes());
    layout.encode(sid, &mut out);
    end_record(&mut out, start, record_type::LOST_SAMPLES, 0);
    out
}

/// A `PERF_RECORD_CGROUP`: the cgroup with `id` (what PERF_SAMPLE_CGROUP carries) is at `path`,
/// relative to its hierarchy's root (`/` for the root itself), as perf synthesizes them for the
/// cgroups that exist when recording starts.
pub fn encode_cgroup(layout: &SampleIdLayout, id: u64, path: &[u8], sid: &SampleId) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + path.len() + layout.size());
    let start = begin_record(&mut out);
    out.extend_from_slice(&id.to_ne_bytes());
    push_padded_str(&mut out, path, MAX_RECORD_STRING);
    layout.encode(sid, &mut out);
    end_record(&mut out, start, record_type::CGROUP, 0);
    out
}

/// A header-only record of a perf user type.
fn encode_header_only(ty: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    let start = begin_record(&mut out);
    end_record(&mut out, start, ty, 0);
    out
}

/// A `PERF_RECORD_FINISHED_ROUND`: every record before it may be sorted and flushed.
pub fn encode_finished_round() -> Vec<u8> {
    encode_header_only(record_type::FINISHED_ROUND)
}

/// A `PERF_RECORD_FINISHED_INIT`: the synthesized side-band ends here.
pub fn encode_finished_init() -> Vec<u8> {
    encode_header_only(record_type::FINISHED_INIT)
}

/// `{offset, size}` of a file region.
#[derive(Debug, Clone, Copy, Default)]
struct Section {
    offset: u64,
    size: u64,
}

/// Writes one perf.data file: header and attrs at [`Writer::new`], records with
/// [`RecordWriter::write_record`], features and the final header at [`Writer::finish`].
#[derive(Debug)]
pub struct Writer<W: Write + Seek> {
    sink: W,
    attrs: Vec<WriterAttr>,
    attrs_section: Section,
    data_offset: u64,
    data_size: u64,
}

impl<W: Write + Seek> Writer<W> {
    /// Writes the header (with `data.size == 0`), the id arrays and the attrs at the start of `sink`,
    /// leaving it positioned at the start of the data section.
    pub fn new(mut sink: W, attrs: Vec<WriterAttr>) -> io::Result<Self> {
        let mut prefix = vec![0u8; FILE_HEADER_SIZE as usize];
        let mut id_sections = Vec::with_capacity(attrs.len());
        for attr in &attrs {
            let offset = prefix.len() as u64;
            for id in &attr.ids {
                prefix.extend_from_slice(&id.to_ne_bytes());
            }
            id_sections.push(Section {
                offset,
                size: prefix.len() as u64 - offset,
            });
        }
        let attrs_offset = prefix.len() as u64;
        for (attr, ids) in attrs.iter().zip(&id_sections) {
            prefix.extend_from_slice(&normalize_attr(&attr.attr));
            prefix.extend_from_slice(&ids.offset.to_ne_bytes());
            prefix.extend_from_slice(&ids.size.to_ne_bytes());
        }
        let attrs_section = Section {
            offset: attrs_offset,
            size: prefix.len() as u64 - attrs_offset,
        };
        let data_offset = prefix.len() as u64;
        let mut writer = Self {
            sink: {
                sink.seek(SeekFrom::Start(0))?;
                sink
            },
            attrs,
            attrs_section,
            data_offset,
            data_size: 0,
        };
        let header = writer.file_header(&[]);
        if let Some(slot) = prefix.get_mut(..header.len()) {
            slot.copy_from_slice(&header);
        }
        writer.sink.write_all(&prefix)?;
        Ok(writer)
    }

    /// Writes the feature sections after the data and rewrites the header with the data size and
    /// the feature bitmap; flushes and returns the sink.
    pub fn finish(mut self, features: &Features) -> io::Result<W> {
        self.write_features(features)?;
        Ok(self.sink)
    }

    /// What [`Writer::finish`] does, keeping the writer: when it fails (a full disk), the caller
    /// can [`Writer::cut_data`] and [`Writer::checkpoint`] to leave a file without features.
    pub fn write_features(&mut self, features: &Features) -> io::Result<()> {
        let bodies = feature_bodies(&self.attrs, features);
        let feat_offset = self.data_offset + self.data_size;
        let table_size = bodies.len() as u64 * 16;
        let mut table = Vec::with_capacity(bodies.len() * 16);
        let mut next = feat_offset + table_size;
        for (_, body) in &bodies {
            table.extend_from_slice(&next.to_ne_bytes());
            table.extend_from_slice(&(body.len() as u64).to_ne_bytes());
            next += body.len() as u64;
        }
        self.sink.seek(SeekFrom::Start(feat_offset))?;
        self.sink.write_all(&table)?;
        for (_, body) in &bodies {
            self.sink.write_all(body)?;
        }
        // The features must be in the sink before the header that points at them.
        self.sink.flush()?;
        let bits: Vec<u32> = bodies.iter().map(|(bit, _)| *bit).collect();
        let header = self.file_header(&bits);
        self.sink.seek(SeekFrom::Start(0))?;
        self.sink.write_all(&header)?;
        self.sink.seek(SeekFrom::Start(next))?;
        self.sink.flush()
    }

    /// Rewrites the header so that it covers every record written so far, with no feature
    /// sections, and leaves the sink positioned after the data. The records are flushed to the
    /// sink before the header that counts them, so a reader never sees a size larger than the
    /// records behind it (as long as the sink keeps its writes in order).
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.sink.flush()?;
        let header = self.file_header(&[]);
        self.sink.seek(SeekFrom::Start(0))?;
        self.sink.write_all(&header)?;
        self.sink
            .seek(SeekFrom::Start(self.data_offset + self.data_size))?;
        self.sink.flush()
    }

    /// Forgets every record past the first `size` bytes of data (they never reached the sink
    /// whole, e.g. on a full disk) and positions the sink after the ones kept. `size` must end
    /// on a record boundary; a larger size than was written changes nothing.
    pub fn cut_data(&mut self, size: u64) -> io::Result<()> {
        self.data_size = self.data_size.min(size);
        self.sink
            .seek(SeekFrom::Start(self.data_offset + self.data_size))?;
        Ok(())
    }

    /// File offset of the data section (where the first record is).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The sink, for flushing or syncing it between checkpoints.
    pub fn sink_mut(&mut self) -> &mut W {
        &mut self.sink
    }

    /// The 104-byte file header with the current data size and the given feature bits.
    fn file_header(&self, feature_bits: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(FILE_HEADER_SIZE as usize);
        out.extend_from_slice(&MAGIC.to_ne_bytes());
        out.extend_from_slice(&FILE_HEADER_SIZE.to_ne_bytes());
        out.extend_from_slice(&FILE_ATTR_SIZE.to_ne_bytes());
        for section in [
            self.attrs_section,
            Section {
                offset: self.data_offset,
                size: self.data_size,
            },
            Section::default(), // event_types: unused since perf 2.6.x
        ] {
            out.extend_from_slice(&section.offset.to_ne_bytes());
            out.extend_from_slice(&section.size.to_ne_bytes());
        }
        let mut bitmap = [0u64; 4];
        for &bit in feature_bits {
            if let Some(word) = bitmap.get_mut((bit / 64) as usize) {
                *word |= 1 << (bit % 64);
            }
        }
        for word in bitmap {
            out.extend_from_slice(&word.to_ne_bytes());
        }
        out
    }
}

/// The record path of a file ([`Writer`]) and a pipe ([`PipeWriter`]): records appended as-is
/// after the header.
pub trait RecordWriter {
    /// Appends one record that wrapped around the ring buffer: `first` then `second`.
    ///
    /// Fails with `InvalidInput` when the header's size is not the pieces' total length.
    fn write_split(&mut self, first: &[u8], second: &[u8]) -> io::Result<()>;

    /// Appends one complete record (header and body), as-is.
    ///
    /// Fails with `InvalidInput` when the header's size is not the slice's length.
    fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        self.write_split(record, &[])
    }

    /// Bytes of records written so far (not counting a pipe's header records).
    fn data_bytes(&self) -> u64;
}

impl<W: Write + Seek> RecordWriter for Writer<W> {
    fn write_split(&mut self, first: &[u8], second: &[u8]) -> io::Result<()> {
        append_record(&mut self.sink, &mut self.data_size, first, second)
    }

    fn data_bytes(&self) -> u64 {
        self.data_size
    }
}

impl<W: Write> RecordWriter for PipeWriter<W> {
    fn write_split(&mut self, first: &[u8], second: &[u8]) -> io::Result<()> {
        append_record(&mut self.sink, &mut self.data_size, first, second)
    }

    fn data_bytes(&self) -> u64 {
        self.data_size
    }
}

/// Checks a record given in two pieces against its header, appends it to `sink` and adds its
/// size to `data_size`.
fn append_record(
    sink: &mut impl Write,
    data_size: &mut u64,
    first: &[u8],
    second: &[u8],
) -> io::Result<()> {
    let total = check_record(first, second)?;
    sink.write_all(first)?;
    sink.write_all(second)?;
    *data_size += total as u64;
    Ok(())
}

/// The total size of a record given in two pieces, checked against its header.
fn check_record(first: &[u8], second: &[u8]) -> io::Result<usize> {
    let total = first.len() + second.len();
    let mut header = [0u8; 8];
    for (slot, byte) in header.iter_mut().zip(first.iter().chain(second)) {
        *slot = *byte;
    }
    let declared = usize::from(u16::from_ne_bytes([header[6], header[7]]));
    if total < 8 || declared != total {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("record header says {declared} bytes but {total} were given"),
        ));
    }
    Ok(total)
}

/// Writes one pipe-format perf.data stream (`perf record -o -`): what a pipe, a FIFO or a
/// character device can take, since nothing is ever rewritten.
///
/// ```text
/// "PERFILE2", 16          pipe header
/// HEADER_ATTR             one per event: attr and ids
/// HEADER_TRACING_DATA     tracepoint formats, when given
/// HEADER_FEATURE          host facts, one per feature
/// ...                     records, copied as-is
/// HEADER_BUILD_ID         one per file, written by finish()
/// ```
#[derive(Debug)]
pub struct PipeWriter<W: Write> {
    sink: W,
    data_size: u64,
}

/// Features a pipe carries at its start: everything but what is only known at the end
/// (build-ids, sample times) and the tracing data (a record of its own).
const PIPE_START_FEATURES: [u32; 10] = [
    feature::HOSTNAME,
    feature::OSRELEASE,
    feature::VERSION,
    feature::ARCH,
    feature::NRCPUS,
    feature::CPUDESC,
    feature::CPUID,
    feature::TOTAL_MEM,
    feature::CMDLINE,
    feature::EVENT_DESC,
];

impl<W: Write> PipeWriter<W> {
    /// Writes the pipe header, one HEADER_ATTR record per attr, the tracing data of `features`
    /// (if any) and its host facts. A feature too large for one record (64 KiB) is left out;
    /// an event with more ids than one HEADER_ATTR holds (about 8000) fails with `InvalidInput`.
    pub fn new(mut sink: W, attrs: &[WriterAttr], features: &Features) -> io::Result<Self> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_ne_bytes());
        out.extend_from_slice(&PIPE_HEADER_SIZE.to_ne_bytes());
        for attr in attrs {
            let start = begin_record(&mut out);
            out.extend_from_slice(&normalize_attr(&attr.attr));
            for id in &attr.ids {
                out.extend_from_slice(&id.to_ne_bytes());
            }
            if out.len() - start > usize::from(u16::MAX) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "event {} has {} ids, more than one pipe-format attr record holds",
                        attr.name,
                        attr.ids.len()
                    ),
                ));
            }
            end_record(&mut out, start, record_type::HEADER_ATTR, 0);
        }
        if let Some(blob) = &features.tracing_data {
            // perf_record_header_tracing_data: header, u32 size (padded to 8), u32 pad; then
            // the blob and its padding, outside the record's own size.
            let padded = blob.len().next_multiple_of(8);
            let start = begin_record(&mut out);
            out.extend_from_slice(&u32_len(padded).to_ne_bytes());
            out.extend_from_slice(&0u32.to_ne_bytes());
            end_record(&mut out, start, record_type::HEADER_TRACING_DATA, 0);
            out.extend_from_slice(blob);
            out.resize(out.len() + padded - blob.len(), 0);
        }
        for (bit, body) in feature_bodies(attrs, features) {
            if !PIPE_START_FEATURES.contains(&bit) {
                continue;
            }
            let padded = body.len().next_multiple_of(8);
            if 16 + padded > usize::from(u16::MAX) {
                continue;
            }
            let start = begin_record(&mut out);
            out.extend_from_slice(&u64::from(bit).to_ne_bytes());
            out.extend_from_slice(&body);
            out.resize(out.len() + padded - body.len(), 0);
            end_record(&mut out, start, record_type::HEADER_FEATURE, 0);
        }
        sink.write_all(&out)?;
        Ok(Self { sink, data_size: 0 })
    }

    /// Writes a HEADER_BUILD_ID record per entry of `build_ids`, flushes and returns the sink.
    pub fn finish(mut self, build_ids: &[BuildIdEntry]) -> io::Result<W> {
        let mut out = Vec::new();
        for entry in build_ids {
            push_build_id_event(&mut out, entry, record_type::HEADER_BUILD_ID);
        }
        self.sink.write_all(&out)?;
        self.sink.flush()?;
        Ok(self.sink)
    }

    /// The sink, for flushing it.
    pub fn sink_mut(&mut self) -> &mut W {
        &mut self.sink
    }

    /// The sink as it is, without flushing (after a write error, to drop what is buffered).
    pub fn into_sink(self) -> W {
        self.sink
    }
}

/// The feature bodies to write, in ascending bit order (see [`Features`] for what is written).
fn feature_bodies(attrs: &[WriterAttr], f: &Features) -> Vec<(u32, Vec<u8>)> {
    let string = |s: &Option<String>| {
        let mut out = Vec::new();
        push_feature_string(&mut out, s.as_deref().unwrap_or_default());
        out
    };
    let mut bodies = Vec::new();
    if let Some(blob) = &f.tracing_data {
        bodies.push((feature::TRACING_DATA, blob.clone()));
    }
    bodies.extend([
        (feature::BUILD_ID, build_id_section(&f.build_ids)),
        (feature::HOSTNAME, string(&f.hostname)),
        (feature::OSRELEASE, string(&f.osrelease)),
        (feature::VERSION, string(&f.version)),
        (feature::ARCH, string(&f.arch)),
    ]);
    let (available, online) = f.nrcpus.unwrap_or_default();
    let mut nrcpus = Vec::with_capacity(8);
    nrcpus.extend_from_slice(&available.to_ne_bytes());
    nrcpus.extend_from_slice(&online.to_ne_bytes());
    bodies.push((feature::NRCPUS, nrcpus));
    bodies.push((feature::CPUDESC, string(&f.cpudesc)));
    bodies.push((feature::CPUID, string(&f.cpuid)));
    let total_mem = f.total_mem.unwrap_or_default();
    bodies.push((feature::TOTAL_MEM, total_mem.to_ne_bytes().to_vec()));
    let args = f.cmdline.as_deref().unwrap_or_default();
    let mut cmdline = Vec::new();
    cmdline.extend_from_slice(&u32_len(args.len()).to_ne_bytes());
    for arg in args {
        push_feature_string(&mut cmdline, arg);
    }
    bodies.push((feature::CMDLINE, cmdline));
    bodies.push((feature::EVENT_DESC, event_desc_section(attrs)));
    if let Some((first, last)) = f.sample_time {
        let mut times = Vec::with_capacity(16);
        times.extend_from_slice(&first.to_ne_bytes());
        times.extend_from_slice(&last.to_ne_bytes());
        bodies.push((feature::SAMPLE_TIME, times));
    }
    bodies
}

/// EVENT_DESC: count, attr size, then per event its attr, id count, name and ids.
fn event_desc_section(attrs: &[WriterAttr]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&u32_len(attrs.len()).to_ne_bytes());
    out.extend_from_slice(&u32_len(STORED_ATTR_SIZE).to_ne_bytes());
    for attr in attrs {
        out.extend_from_slice(&normalize_attr(&attr.attr));
        out.extend_from_slice(&u32_len(attr.ids.len()).to_ne_bytes());
        push_feature_string(&mut out, &attr.name);
        for id in &attr.ids {
            out.extend_from_slice(&id.to_ne_bytes());
        }
    }
    out
}

/// A length as the u32 the format stores (saturating; no real count comes near).
fn u32_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The attr as stored: 128 bytes, size field 128.
fn normalize_attr(raw: &[u8]) -> [u8; STORED_ATTR_SIZE] {
    let mut attr = [0u8; STORED_ATTR_SIZE];
    for (slot, byte) in attr.iter_mut().zip(raw) {
        *slot = *byte;
    }
    attr[4..8].copy_from_slice(&u32_len(STORED_ATTR_SIZE).to_ne_bytes());
    attr
}

/// A `perf_header_string`: u32 length (NUL included, padded to 64) then the padded bytes.
fn push_feature_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes().split(|&b| b == 0).next().unwrap_or_default();
    let bytes = bytes.get(..MAX_RECORD_STRING).unwrap_or(bytes);
    let len = (bytes.len() + 1).next_multiple_of(NAME_ALIGN);
    out.extend_from_slice(&u32_len(len).to_ne_bytes());
    out.extend_from_slice(bytes);
    out.resize(out.len() + len - bytes.len(), 0);
}

/// Size of perf's `build_id_event` before the filename: header, pid, 24 build-id bytes.
const BUILD_ID_EVENT_SIZE: usize = 8 + 4 + 24;
/// Longest build-id perf stores (`BUILD_ID_SIZE`).
const BUILD_ID_MAX: usize = 20;

/// BUILD_ID: one `build_id_event` per entry, filename NUL-padded to 64.
fn build_id_section(entries: &[BuildIdEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        push_build_id_event(&mut out, entry, 0);
    }
    out
}

/// One `build_id_event` of record type `ty` (0 in the file's section, HEADER_BUILD_ID in a
/// pipe).
fn push_build_id_event(out: &mut Vec<u8>, entry: &BuildIdEntry, ty: u32) {
    let name = entry
        .filename
        .as_bytes()
        .split(|&b| b == 0)
        .next()
        .unwrap_or_default();
    let name = name.get(..MAX_RECORD_STRING).unwrap_or(name);
    let name_len = (name.len() + 1).next_multiple_of(NAME_ALIGN);
    let size = u16::try_from(BUILD_ID_EVENT_SIZE + name_len).unwrap_or(u16::MAX);
    let id = entry
        .build_id
        .get(..BUILD_ID_MAX)
        .unwrap_or(&entry.build_id);
    let misc_bits = (entry.misc & misc::CPUMODE_MASK) | misc::BUILD_ID_SIZE;
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&misc_bits.to_ne_bytes());
    out.extend_from_slice(&size.to_ne_bytes());
    out.extend_from_slice(&entry.pid.to_ne_bytes());
    let mut id_field = [0u8; 24];
    for (slot, byte) in id_field.iter_mut().zip(id) {
        *slot = *byte;
    }
    id_field[BUILD_ID_MAX] = u8::try_from(id.len()).unwrap_or(0);
    out.extend_from_slice(&id_field);
    out.extend_from_slice(name);
    out.resize(out.len() + name_len - name.len(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::path::PathBuf;
    use std::process::Command;

    use kprof_test_support::command::{PERF_COMPLAINTS, stdout_without_complaints};

    const TEST_ID: u64 = 42;
    const ALL_BUT_CALLCHAIN: u64 = sample_type::IP
        | sample_type::TID
        | sample_type::TIME
        | sample_type::ID
        | sample_type::CPU
        | sample_type::PERIOD;

    /// A cpu-clock attr built by hand: PERF_TYPE_SOFTWARE, config 0 (PERF_COUNT_SW_CPU_CLOCK).
    fn cpu_clock_attr(sample_type: u64, size: usize) -> Vec<u8> {
        let mut attr = vec![0u8; size];
        attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // type
        attr[4..8].copy_from_slice(&(size as u32).to_ne_bytes());
        attr[16..24].copy_from_slice(&100_000u64.to_ne_bytes()); // sample_period
        attr[24..32].copy_from_slice(&sample_type.to_ne_bytes());
        // disabled, mmap, comm, sample_id_all, mmap2, comm_exec
        let flags: u64 = 1
            | (1 << 8)
            | (1 << 9)
            | crate::kinds::attr_flag::SAMPLE_ID_ALL
            | (1 << 23)
            | (1 << 24);
        attr[40..48].copy_from_slice(&flags.to_ne_bytes());
        attr
    }

    fn u16_at(bytes: &[u8], offset: usize) -> u16 {
        u16::from_ne_bytes(bytes[offset..offset + 2].try_into().unwrap())
    }
    fn u32_at(bytes: &[u8], offset: usize) -> u32 {
        u32::from_ne_bytes(bytes[offset..offset + 4].try_into().unwrap())
    }
    fn u64_at(bytes: &[u8], offset: usize) -> u64 {
        u64::from_ne_bytes(bytes[offset..offset + 8].try_into().unwrap())
    }

    /// A SAMPLE record for `sample_type` (IP|TID|TIME|ID|CPU|PERIOD, optionally CALLCHAIN).
    fn sample(st: u64, ip: u64, pid: i32, time: u64, chain: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin_record(&mut out);
        out.extend_from_slice(&ip.to_ne_bytes());
        out.extend_from_slice(&pid.to_ne_bytes());
        out.extend_from_slice(&pid.to_ne_bytes());
        out.extend_from_slice(&time.to_ne_bytes());
        out.extend_from_slice(&TEST_ID.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&100_000u64.to_ne_bytes());
        if st & sample_type::CALLCHAIN != 0 {
            out.extend_from_slice(&(chain.len() as u64).to_ne_bytes());
            for ip in chain {
                out.extend_from_slice(&ip.to_ne_bytes());
            }
        }
        end_record(&mut out, start, record_type::SAMPLE, misc::CPUMODE_USER);
        out
    }

    #[test]
    fn trailer_follows_perf_order() {
        let layout = SampleIdLayout::new(
            sample_type::TID
                | sample_type::TIME
                | sample_type::ID
                | sample_type::STREAM_ID
                | sample_type::CPU
                | sample_type::IDENTIFIER
                | sample_type::IP,
        );
        assert_eq!(layout.size(), 48);
        let values = SampleId {
            pid: Some(7),
            tid: Some(8),
            time: Some(9),
            id: Some(10),
            cpu: Some(11),
            stream_id: Some(12),
        };
        let mut out = Vec::new();
        layout.encode(&values, &mut out);
        assert_eq!(out.len(), 48);
        assert_eq!((u32_at(&out, 0), u32_at(&out, 4)), (7, 8));
        assert_eq!(u64_at(&out, 8), 9);
        assert_eq!(u64_at(&out, 16), 10);
        assert_eq!(u64_at(&out, 24), 12);
        assert_eq!((u32_at(&out, 32), u32_at(&out, 36)), (11, 0));
        assert_eq!(u64_at(&out, 40), 10);
    }

    #[test]
    fn layout_from_attr_respects_sample_id_all() {
        let attr = cpu_clock_attr(ALL_BUT_CALLCHAIN, 128);
        assert_eq!(
            SampleIdLayout::from_attr(&attr).sample_type(),
            ALL_BUT_CALLCHAIN
        );
        let mut without = attr.clone();
        without[40..48].copy_from_slice(&0u64.to_ne_bytes());
        assert_eq!(SampleIdLayout::from_attr(&without), SampleIdLayout::none());
        assert_eq!(
            SampleIdLayout::from_attr(&attr[..30]),
            SampleIdLayout::none()
        );
    }

    #[test]
    fn comm_is_padded_and_sized() {
        let layout = SampleIdLayout::new(sample_type::TID | sample_type::TIME);
        let sid = SampleId {
            pid: Some(1),
            tid: Some(2),
            time: Some(3),
            ..Default::default()
        };
        for name in [&b""[..], b"abc", b"1234567", b"12345678", b"ksoftirqd/0"] {
            let rec = encode_comm(&layout, 1, 2, name, true, &sid);
            let name_area = (name.len() + 1).next_multiple_of(8);
            assert_eq!(rec.len(), 8 + 8 + name_area + 16, "{name:?}");
            assert_eq!(usize::from(u16_at(&rec, 6)), rec.len());
            assert_eq!(u32_at(&rec, 0), record_type::COMM);
            assert_eq!(u16_at(&rec, 4), misc::COMM_EXEC);
            assert_eq!(&rec[16..16 + name.len()], name);
            assert!(rec[16 + name.len()..16 + name_area].iter().all(|&b| b == 0));
            assert_eq!(u64_at(&rec, 16 + name_area + 8), 3);
        }
    }

    #[test]
    fn mmap2_fields_land_at_their_offsets() {
        let fields = MmapFields {
            pid: 5,
            tid: 6,
            start: 0x1000,
            len: 0x2000,
            pgoff: 0x3000,
            maj: 8,
            min: 1,
            ino: 99,
            ino_generation: 4,
            prot: 5,
            flags: 2,
            filename: b"/usr/bin/true",
            kernel: false,
        };
        let rec = encode_mmap2(&SampleIdLayout::none(), &fields, &SampleId::default());
        assert_eq!(rec.len() % 8, 0);
        assert_eq!(usize::from(u16_at(&rec, 6)), rec.len());
        assert_eq!(u32_at(&rec, 0), record_type::MMAP2);
        assert_eq!(u16_at(&rec, 4), misc::CPUMODE_USER);
        assert_eq!(u64_at(&rec, 16), 0x1000);
        assert_eq!(u64_at(&rec, 24), 0x2000);
        assert_eq!(u64_at(&rec, 32), 0x3000);
        assert_eq!((u32_at(&rec, 40), u32_at(&rec, 44)), (8, 1));
        assert_eq!(u64_at(&rec, 48), 99);
        assert_eq!(u64_at(&rec, 56), 4);
        assert_eq!((u32_at(&rec, 64), u32_at(&rec, 68)), (5, 2));
        assert_eq!(&rec[72..86], b"/usr/bin/true\0");
        let data = encode_mmap2(
            &SampleIdLayout::none(),
            &MmapFields { prot: 1, ..fields },
            &SampleId::default(),
        );
        assert_eq!(u16_at(&data, 4), misc::CPUMODE_USER | misc::MMAP_DATA);
        let kernel = encode_mmap(
            &SampleIdLayout::none(),
            &MmapFields {
                kernel: true,
                ..fields
            },
            &SampleId::default(),
        );
        assert_eq!(u32_at(&kernel, 0), record_type::MMAP);
        assert_eq!(u16_at(&kernel, 4), misc::CPUMODE_KERNEL);
        assert_eq!(&kernel[40..54], b"/usr/bin/true\0");
    }

    #[test]
    fn small_records() {
        let layout = SampleIdLayout::new(sample_type::TIME);
        let sid = SampleId {
            time: Some(77),
            ..Default::default()
        };
        let fork = encode_fork(&layout, 10, 1, 11, 1, 500, &sid);
        assert_eq!((u32_at(&fork, 0), fork.len()), (record_type::FORK, 40));
        assert_eq!(
            [
                u32_at(&fork, 8),
                u32_at(&fork, 12),
                u32_at(&fork, 16),
                u32_at(&fork, 20)
            ],
            [10, 1, 11, 1]
        );
        assert_eq!((u64_at(&fork, 24), u64_at(&fork, 32)), (500, 77));
        let exit = encode_exit(&layout, 10, 1, 11, 1, 600, &sid);
        assert_eq!(u32_at(&exit, 0), record_type::EXIT);
        let lost = encode_lost_samples(&layout, 3, &sid);
        assert_eq!(
            (u32_at(&lost, 0), lost.len(), u64_at(&lost, 8)),
            (record_type::LOST_SAMPLES, 24, 3)
        );
        assert_eq!(
            encode_finished_round(),
            [68, 0, 0, 0, 0, 0, 8, 0]
                .map(|b: u8| b)
                .to_vec()
                .iter()
                .copied()
                .enumerate()
                .map(|(i, b)| if i < 4 {
                    record_type::FINISHED_ROUND.to_ne_bytes()[i]
                } else {
                    b
                })
                .collect::<Vec<u8>>()
        );
        assert_eq!(u16_at(&encode_finished_init(), 6), 8);
        assert_eq!(
            u32_at(&encode_finished_init(), 0),
            record_type::FINISHED_INIT
        );
    }

    #[test]
    fn rejects_records_whose_size_disagrees() {
        let mut writer = Writer::new(Cursor::new(Vec::new()), Vec::new()).unwrap();
        let rec = encode_finished_round();
        assert!(writer.write_record(&rec[..6]).is_err());
        assert!(writer.write_split(&rec, &[0; 8]).is_err());
        assert_eq!(writer.data_bytes(), 0);
        writer.write_split(&rec[..3], &rec[3..]).unwrap();
        assert_eq!(writer.data_bytes(), 8);
    }

    /// Writes a file and checks every header field and the feature table by hand.
    #[test]
    fn header_attrs_and_feature_table() {
        let attrs = vec![
            WriterAttr {
                attr: cpu_clock_attr(ALL_BUT_CALLCHAIN, 136), // longer than stored: truncated
                ids: vec![1, 2],
                name: "cpu-clock".into(),
            },
            WriterAttr {
                attr: cpu_clock_attr(ALL_BUT_CALLCHAIN, 64), // PERF_ATTR_SIZE_VER0: zero-extended
                ids: vec![3],
                name: "task-clock".into(),
            },
        ];
        let mut writer = Writer::new(Cursor::new(Vec::new()), attrs).unwrap();
        // Unfinished file: the header is already valid, with data.size 0.
        let early = writer.sink.get_ref().clone();
        assert_eq!(&early[0..8], b"PERFILE2");
        assert_eq!(u64_at(&early, 48), 0);
        let data_offset = u64_at(&early, 40);
        assert_eq!(data_offset as usize, early.len());

        writer.write_record(&encode_finished_round()).unwrap();
        let features = Features {
            hostname: Some("h".into()),
            sample_time: Some((1, 2)),
            ..Default::default()
        };
        let bytes = writer.finish(&features).unwrap().into_inner();
        assert_eq!(u64_at(&bytes, 8), 104);
        assert_eq!(u64_at(&bytes, 16), 144);
        let (attrs_off, attrs_size) = (u64_at(&bytes, 24) as usize, u64_at(&bytes, 32) as usize);
        assert_eq!(attrs_size, 2 * 144);
        assert_eq!((u64_at(&bytes, 40), u64_at(&bytes, 48)), (data_offset, 8));
        assert_eq!((u64_at(&bytes, 56), u64_at(&bytes, 64)), (0, 0));
        for (i, expected_ids) in [&[1u64, 2][..], &[3]].iter().enumerate() {
            let attr = &bytes[attrs_off + i * 144..];
            assert_eq!(u32_at(attr, 4), 128);
            assert_eq!(u64_at(attr, 24), ALL_BUT_CALLCHAIN);
            let (ids_off, ids_size) = (u64_at(attr, 128) as usize, u64_at(attr, 136) as usize);
            let ids: Vec<u64> = (0..ids_size / 8)
                .map(|k| u64_at(&bytes, ids_off + 8 * k))
                .collect();
            assert_eq!(&ids, expected_ids);
        }
        let bitmap = u64_at(&bytes, 72);
        let expected_bits = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21];
        assert_eq!(bitmap, expected_bits.iter().map(|b| 1u64 << b).sum::<u64>());
        let table = (data_offset + 8) as usize;
        let mut end = table + expected_bits.len() * 16;
        for k in 0..expected_bits.len() {
            let (off, size) = (
                u64_at(&bytes, table + 16 * k),
                u64_at(&bytes, table + 16 * k + 8),
            );
            assert_eq!(off as usize, end, "sections are contiguous");
            end += size as usize;
        }
        assert_eq!(end, bytes.len());
        // HOSTNAME (second section): u32 length 64, then "h" NUL-padded.
        let host = u64_at(&bytes, table + 16) as usize;
        assert_eq!(u32_at(&bytes, host), 64);
        assert_eq!(&bytes[host + 4..host + 6], b"h\0");
        // SAMPLE_TIME (last section).
        let times = u64_at(&bytes, table + 16 * 11) as usize;
        assert_eq!((u64_at(&bytes, times), u64_at(&bytes, times + 8)), (1, 2));
    }

    #[test]
    fn build_id_entries_carry_their_size() {
        let section = build_id_section(&[BuildIdEntry::new(
            -1,
            true,
            (1..=20).collect(),
            "[kernel.kallsyms]".into(),
        )]);
        assert_eq!(section.len(), 36 + 64);
        assert_eq!(
            u16_at(&section, 4),
            misc::CPUMODE_KERNEL | misc::BUILD_ID_SIZE
        );
        assert_eq!(usize::from(u16_at(&section, 6)), section.len());
        assert_eq!(u32_at(&section, 8), u32::MAX);
        assert_eq!(&section[12..32], &(1..=20).collect::<Vec<u8>>()[..]);
        assert_eq!(section[32], 20);
        assert_eq!(&section[36..54], b"[kernel.kallsyms]\0");
    }

    /// A tracing-data blob is feature bit 1: the first section, written byte for byte.
    #[test]
    fn tracing_data_is_the_first_feature_section() {
        let attrs = vec![WriterAttr {
            attr: cpu_clock_attr(ALL_BUT_CALLCHAIN, 128),
            ids: vec![7],
            name: "cpu-clock".into(),
        }];
        let blob = b"\x17\x08\x44tracing0.6\0odd-length blob".to_vec();
        let write = |tracing_data: Option<Vec<u8>>| {
            let writer = Writer::new(Cursor::new(Vec::new()), attrs.clone()).unwrap();
            let features = Features {
                tracing_data,
                ..Default::default()
            };
            writer.finish(&features).unwrap().into_inner()
        };
        let without = write(None);
        assert_eq!(u64_at(&without, 72) & (1 << feature::TRACING_DATA), 0);

        let bytes = write(Some(blob.clone()));
        let bitmap = u64_at(&bytes, 72);
        assert_eq!(bitmap, u64_at(&without, 72) | 1 << feature::TRACING_DATA);
        let table = (u64_at(&bytes, 40) + u64_at(&bytes, 48)) as usize;
        let (off, size) = (u64_at(&bytes, table) as usize, u64_at(&bytes, table + 8));
        assert_eq!(size, blob.len() as u64);
        assert_eq!(&bytes[off..off + blob.len()], &blob[..]);
        // The next section (BUILD_ID) starts right after the blob.
        assert_eq!(u64_at(&bytes, table + 16) as usize, off + blob.len());
        assert_eq!(bytes.len(), without.len() + 16 + blob.len());
    }

    // ---- kprof's own reader ----

    /// Every encoder and feature, read back by `PerfFile::parse`.
    #[test]
    fn reader_round_trip() {
        use crate::{Note, PerfFile, Record};
        let st = ALL_BUT_CALLCHAIN | sample_type::CALLCHAIN;
        let layout = SampleIdLayout::new(st);
        let sid = SampleId {
            pid: Some(10),
            tid: Some(11),
            time: Some(5),
            id: Some(TEST_ID),
            cpu: Some(1),
            stream_id: Some(0),
        };
        let attrs = vec![WriterAttr {
            attr: cpu_clock_attr(st, 120), // an older, shorter attr: stored as 128 bytes
            ids: vec![TEST_ID, TEST_ID + 1],
            name: "cpu-clock".into(),
        }];
        let mut writer = Writer::new(Cursor::new(Vec::new()), attrs).unwrap();
        let map = MmapFields {
            pid: 10,
            tid: 10,
            start: 0x40_0000,
            len: 0x1000,
            pgoff: 0x2000,
            maj: 8,
            min: 3,
            ino: 1234,
            prot: 5,
            flags: 2,
            filename: b"/usr/bin/app",
            ..Default::default()
        };
        let kernel = MmapFields {
            pid: -1,
            tid: 0,
            start: 0xffff_ffff_8100_0000,
            len: 0x100_0000,
            pgoff: 0xffff_ffff_8100_0000,
            filename: b"[kernel.kallsyms]_text",
            kernel: true,
            ..Default::default()
        };
        let records = [
            encode_fork(&layout, 10, 1, 11, 1, 4, &sid),
            encode_comm(&layout, 10, 11, b"app", true, &sid),
            encode_mmap2(&layout, &map, &sid),
            encode_mmap(&layout, &kernel, &sid),
            encode_finished_init(),
            sample(
                st,
                0x40_0010,
                10,
                6,
                &[0xffff_ffff_ffff_fe00, 0x40_0010, 0x40_0020],
            ),
            encode_lost_samples(&layout, 3, &sid),
            encode_exit(&layout, 10, 1, 11, 1, 7, &sid),
            encode_finished_round(),
        ];
        for rec in &records {
            writer.write_record(rec).unwrap();
        }

        // Before finish(): the reader salvages the records of an unfinished file.
        let unfinished = writer.sink.get_ref().clone();
        let file = PerfFile::parse(&unfinished).unwrap();
        assert!(file.notes().contains(&Note::NotFinalized));
        assert_eq!(file.records().count(), records.len());

        let features = Features {
            hostname: Some("host".into()),
            osrelease: Some("6.1.0".into()),
            version: Some("kprof 0.1.0".into()),
            arch: Some("x86_64".into()),
            cpudesc: Some("cpu".into()),
            cpuid: Some("GenuineIntel,6,85,7".into()),
            nrcpus: Some((4, 3)),
            total_mem: Some(1024),
            cmdline: Some(vec!["kprof".into(), "record".into()]),
            build_ids: vec![BuildIdEntry::new(
                -1,
                false,
                vec![0xab; 20],
                "/usr/bin/app".into(),
            )],
            sample_time: Some((6, 6)),
            ..Default::default()
        };
        let bytes = writer.finish(&features).unwrap().into_inner();
        let file = PerfFile::parse(&bytes).unwrap();
        assert!(
            !file.notes().contains(&Note::NotFinalized),
            "{:?}",
            file.notes()
        );

        let attr = &file.attrs()[0];
        assert_eq!((attr.kind, attr.config, attr.sample_type), (1, 0, st));
        assert!(attr.sample_id_all);
        assert_eq!(attr.ids, [TEST_ID, TEST_ID + 1]);
        assert_eq!(attr.name, "cpu-clock");

        let f = file.features();
        assert_eq!(f.hostname.as_deref(), Some("host"));
        assert_eq!(f.osrelease.as_deref(), Some("6.1.0"));
        assert_eq!(f.version.as_deref(), Some("kprof 0.1.0"));
        assert_eq!(f.arch.as_deref(), Some("x86_64"));
        assert_eq!(f.cpudesc.as_deref(), Some("cpu"));
        assert_eq!(f.cpuid.as_deref(), Some("GenuineIntel,6,85,7"));
        assert_eq!(f.nrcpus, Some((4, 3)));
        assert_eq!(f.total_mem, Some(1024));
        assert_eq!(
            f.cmdline.as_deref(),
            Some(&["kprof".to_string(), "record".to_string()][..])
        );
        assert_eq!(f.event_desc.len(), 1);
        assert_eq!(f.event_desc[0].name, "cpu-clock");
        assert_eq!(f.event_desc[0].ids, [TEST_ID, TEST_ID + 1]);
        assert_eq!(f.build_ids.len(), 1);
        assert_eq!(f.build_ids[0].build_id, vec![0xab; 20]);
        assert_eq!(f.build_ids[0].filename, "/usr/bin/app");
        assert_eq!(f.build_ids[0].pid, -1);
        assert_eq!(f.sample_time, Some((6, 6)));
        // One features type: what was written reads back, but for what the writer derives
        // (the bits, EVENT_DESC, the build-id misc's BUILD_ID_SIZE; build-ids checked above).
        let read_back = Features {
            present: Vec::new(),
            event_desc: Vec::new(),
            build_ids: features.build_ids.clone(),
            ..f.clone()
        };
        assert_eq!(read_back, features);

        let events: Vec<_> = file.records().map(|e| e.unwrap()).collect();
        assert_eq!(events.len(), records.len());
        let trailer_ok = |e: &crate::Event<'_>| {
            e.sample_id.pid == Some(10)
                && e.sample_id.tid == Some(11)
                && e.sample_id.id == Some(TEST_ID)
                && e.sample_id.cpu == Some(1)
        };
        match &events[0].record {
            Record::Fork(f) => {
                assert_eq!((f.pid, f.ppid, f.tid, f.ptid, f.time), (10, 1, 11, 1, 4))
            }
            other => panic!("{other:?}"),
        }
        assert!(trailer_ok(&events[0]));
        match &events[1].record {
            Record::Comm(c) => {
                assert_eq!((c.pid, c.tid, c.name, c.exec), (10, 11, &b"app"[..], true))
            }
            other => panic!("{other:?}"),
        }
        assert!(trailer_ok(&events[1]));
        assert_eq!(events[1].sample_id.time, Some(5));
        match &events[2].record {
            Record::Mmap(m) => {
                assert!(m.is_mmap2 && m.executable);
                assert_eq!(
                    (m.pid, m.tid, m.start, m.len, m.pgoff),
                    (10, 10, 0x40_0000, 0x1000, 0x2000)
                );
                assert_eq!((m.filename, m.maj), (&b"/usr/bin/app"[..], Some(8)));
            }
            other => panic!("{other:?}"),
        }
        match &events[3].record {
            Record::Mmap(m) => {
                assert!(!m.is_mmap2);
                assert_eq!(
                    (m.pid, m.start, m.pgoff),
                    (u32::MAX, kernel.start, kernel.start)
                );
                assert_eq!(m.filename, b"[kernel.kallsyms]_text");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(events[4].record, Record::FinishedInit));
        match &events[5].record {
            Record::Sample(s) => {
                assert_eq!(
                    (s.ip, s.pid, s.tid, s.time),
                    (Some(0x40_0010), Some(10), Some(10), Some(6))
                );
                assert_eq!(
                    (s.id, s.cpu, s.period),
                    (Some(TEST_ID), Some(0), Some(100_000))
                );
                let chain: Vec<u64> = s.callchain.unwrap().iter().collect();
                assert_eq!(chain, [0xffff_ffff_ffff_fe00, 0x40_0010, 0x40_0020]);
            }
            other => panic!("{other:?}"),
        }
        match &events[6].record {
            Record::LostSamples(l) => assert_eq!(l.lost, 3),
            other => panic!("{other:?}"),
        }
        assert!(trailer_ok(&events[6]));
        match &events[7].record {
            Record::Exit(e) => assert_eq!((e.pid, e.tid, e.time), (10, 11, 7)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(events[8].record, Record::FinishedRound));
    }

    // ---- Linux perf as the oracle ----

    /// `/usr/bin/perf`, or None (test skipped) unless KPROF_REQUIRE_PERF=1.
    fn perf_binary() -> Option<PathBuf> {
        let perf = PathBuf::from("/usr/bin/perf");
        if perf.exists() {
            return Some(perf);
        }
        assert!(
            std::env::var_os("KPROF_REQUIRE_PERF").is_none_or(|v| v != "1"),
            "KPROF_REQUIRE_PERF=1 but /usr/bin/perf is missing"
        );
        eprintln!("skipping: /usr/bin/perf not found");
        None
    }

    /// Runs perf and returns its stdout, asserting exit 0 and a stderr free of complaints.
    fn run_perf(perf: &PathBuf, args: &[&str]) -> String {
        stdout_without_complaints(Command::new(perf).args(args), &PERF_COMPLAINTS)
    }

    #[inline(never)]
    fn marker_alpha(n: u64) -> u64 {
        (0..std::hint::black_box(n)).fold(1u64, |acc, k| acc.wrapping_mul(31).wrapping_add(k))
    }

    #[inline(never)]
    fn marker_beta(n: u64) -> u64 {
        (0..std::hint::black_box(n)).fold(7u64, |acc, k| acc.rotate_left(3) ^ k)
    }

    /// The executable mapping of this test binary that contains `addr`, from /proc/self/maps.
    fn own_mapping(addr: u64, exe: &[u8]) -> MmapFields<'_> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (range, perms, off, dev, ino) = (cols[0], cols[1], cols[2], cols[3], cols[4]);
            let (lo, hi) = range.split_once('-').unwrap();
            let (lo, hi) = (
                u64::from_str_radix(lo, 16).unwrap(),
                u64::from_str_radix(hi, 16).unwrap(),
            );
            if !(lo..hi).contains(&addr) {
                continue;
            }
            assert!(perms.contains('x'), "{line}");
            let (maj, min) = dev.split_once(':').unwrap();
            return MmapFields {
                pid: std::process::id() as i32,
                tid: std::process::id() as i32,
                start: lo,
                len: hi - lo,
                pgoff: u64::from_str_radix(off, 16).unwrap(),
                maj: u32::from_str_radix(maj, 16).unwrap(),
                min: u32::from_str_radix(min, 16).unwrap(),
                ino: ino.parse().unwrap(),
                ino_generation: 0,
                prot: 5,
                flags: 2,
                filename: exe,
                kernel: false,
            };
        }
        panic!("{addr:#x} not in /proc/self/maps");
    }

    /// `_text` and `_etext` from /proc/kallsyms (perf warns about restricted kernel maps without
    /// a kernel MMAP); None when hidden.
    fn kernel_text() -> Option<(u64, u64)> {
        let syms = std::fs::read_to_string("/proc/kallsyms").ok()?;
        let find = |name: &str| {
            syms.lines().find_map(|l| {
                let mut cols = l.split_whitespace();
                let addr = u64::from_str_radix(cols.next()?, 16).ok()?;
                (cols.nth(1)? == name && addr != 0).then_some(addr)
            })
        };
        Some((find("_text")?, find("_etext")?))
    }

    /// Writes kernel MMAP, COMM + MMAP2 for this process and samples in two functions of this binary.
    /// How [`write_test_file_as`] ends the file.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Ending {
        /// `finish()`: features and the final header.
        Finished,
        /// `checkpoint()`, then half a record more: a recording killed mid-write.
        Killed,
        /// The pipe format.
        Pipe,
    }

    fn write_test_file(st: u64, path: &std::path::Path) -> (u64, u64) {
        write_test_file_as(st, path, Ending::Finished)
    }

    /// Collects a writer's records into a Vec, to write them with any of the three endings.
    struct Records(Vec<Vec<u8>>);

    impl Records {
        fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
            self.0.push(record.to_vec());
            Ok(())
        }
        fn write_split(&mut self, a: &[u8], b: &[u8]) -> io::Result<()> {
            self.0.push([a, b].concat());
            Ok(())
        }
    }

    fn write_test_file_as(st: u64, path: &std::path::Path, ending: Ending) -> (u64, u64) {
        let alpha = marker_alpha as fn(u64) -> u64 as usize as u64;
        let beta = marker_beta as fn(u64) -> u64 as usize as u64;
        assert!(marker_alpha(10) != marker_beta(10));
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.as_os_str().as_encoded_bytes().to_vec();
        let pid = std::process::id() as i32;
        let layout = SampleIdLayout::new(st);
        let sid = SampleId {
            pid: Some(pid as u32),
            tid: Some(pid as u32),
            id: Some(TEST_ID),
            ..Default::default()
        };
        let attrs = vec![WriterAttr {
            attr: cpu_clock_attr(st, 128),
            ids: vec![TEST_ID],
            name: "cpu-clock".into(),
        }];
        let mut writer = Records(Vec::new());
        writer
            .write_record(&encode_comm(&layout, pid, pid, b"writer-test", true, &sid))
            .unwrap();
        writer
            .write_record(&encode_mmap2(&layout, &own_mapping(alpha, &exe), &sid))
            .unwrap();
        if own_mapping(beta, &exe).start != own_mapping(alpha, &exe).start {
            writer
                .write_record(&encode_mmap2(&layout, &own_mapping(beta, &exe), &sid))
                .unwrap();
        }
        if let Some(kernel) = kernel_text() {
            let fields = MmapFields {
                pid: -1,
                start: kernel.0,
                len: kernel.1 - kernel.0,
                pgoff: kernel.0,
                filename: b"[kernel.kallsyms]_text",
                kernel: true,
                ..Default::default()
            };
            let sid = SampleId {
                pid: Some(u32::MAX), // -1: the kernel
                ..sid
            };
            writer
                .write_record(&encode_mmap(&layout, &fields, &sid))
                .unwrap();
        }
        writer.write_record(&encode_finished_init()).unwrap();
        // 3 samples in alpha, 2 in beta; with callchains, beta's samples are called from alpha.
        let mut time = 1_000_000u64;
        for k in 0..5u64 {
            let (ip, chain) = if k < 3 {
                (alpha + 4, vec![0xffff_ffff_ffff_fe00, alpha + 4])
            } else {
                (beta + 4, vec![0xffff_ffff_ffff_fe00, beta + 4, alpha + 8])
            };
            let rec = sample(st, ip, pid, time, &chain);
            // Exercise the split path as a wrapped ring buffer would produce it.
            let (a, b) = rec.split_at(usize::try_from(k * 3).unwrap().min(rec.len()));
            writer.write_split(a, b).unwrap();
            time += 1000;
        }
        writer.write_record(&encode_finished_round()).unwrap();
        let features = Features {
            hostname: Some("kprof-test-host".into()),
            osrelease: Some("6.0.0-kprof-test".into()),
            version: Some("kprof 0.1.0".into()),
            arch: Some("x86_64".into()),
            cpudesc: Some("Test CPU".into()),
            cpuid: Some("GenuineIntel,6,85,7".into()),
            nrcpus: Some((4, 2)),
            total_mem: Some(123_456),
            cmdline: Some(vec!["kprof".into(), "record".into(), "--marker-arg".into()]),
            build_ids: Vec::new(),
            sample_time: Some((1_000_000, time - 1000)),
            ..Default::default()
        };
        let bytes = match ending {
            Ending::Finished | Ending::Killed => {
                let mut file = Writer::new(Cursor::new(Vec::new()), attrs).unwrap();
                for record in &writer.0 {
                    file.write_record(record).unwrap();
                }
                if ending == Ending::Finished {
                    file.finish(&features).unwrap().into_inner()
                } else {
                    file.checkpoint().unwrap();
                    let last = writer.0.last().unwrap();
                    let mut bytes = file.sink.into_inner();
                    bytes.extend_from_slice(&last[..last.len() / 2]);
                    bytes
                }
            }
            Ending::Pipe => {
                let mut pipe = PipeWriter::new(Vec::new(), &attrs, &features).unwrap();
                for record in &writer.0 {
                    pipe.write_record(record).unwrap();
                }
                pipe.finish(&features.build_ids).unwrap()
            }
        };
        std::fs::write(path, bytes).unwrap();
        (alpha, beta)
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("kprof-writer-{}-{name}.data", std::process::id()))
    }

    #[test]
    fn perf_reads_header_and_samples() {
        let Some(perf) = perf_binary() else { return };
        let path = temp_path("flat");
        write_test_file(ALL_BUT_CALLCHAIN, &path);
        let file = path.to_str().unwrap();

        let header = run_perf(&perf, &["report", "--header-only", "-i", file]);
        for expected in [
            "hostname : kprof-test-host",
            "os release : 6.0.0-kprof-test",
            "perf version : kprof 0.1.0",
            "arch : x86_64",
            "nrcpus online : 2",
            "nrcpus avail : 4",
            "cpudesc : Test CPU",
            "cpuid : GenuineIntel,6,85,7",
            "total memory : 123456 kB",
            "cmdline : kprof record --marker-arg",
            "event : name = cpu-clock",
            "id = { 42 }",
        ] {
            assert!(
                header.contains(expected),
                "missing {expected:?} in:\n{header}"
            );
        }

        let report = run_perf(&perf, &["report", "-i", file, "--stdio", "--header"]);
        assert!(report.contains("# Samples: 5"), "{report}");
        assert!(report.contains("marker_alpha"), "{report}");

        let script = run_perf(&perf, &["script", "-i", file, "-F", "comm,tid,ip,sym"]);
        let lines: Vec<&str> = script.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 5, "{script}");
        let pid = std::process::id().to_string();
        for (k, line) in lines.iter().enumerate() {
            assert!(
                line.contains("writer-test") && line.contains(&pid),
                "{line}"
            );
            let want = if k < 3 { "marker_alpha" } else { "marker_beta" };
            assert!(
                line.contains(want),
                "sample {k} should be in {want}: {line}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn perf_reads_callchains() {
        let Some(perf) = perf_binary() else { return };
        let path = temp_path("callchain");
        write_test_file(ALL_BUT_CALLCHAIN | sample_type::CALLCHAIN, &path);
        let file = path.to_str().unwrap();
        let script = run_perf(&perf, &["script", "-i", file, "-F", "comm,tid,ip,sym"]);
        // perf prints each sample as a block of frames separated by blank lines.
        let blocks: Vec<Vec<&str>> = script
            .split("\n\n")
            .map(|b| {
                b.lines()
                    .filter(|l| !l.trim().is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|b| !b.is_empty())
            .collect();
        assert_eq!(blocks.len(), 5, "{script}");
        for block in &blocks[3..] {
            let frames: Vec<&&str> = block.iter().filter(|l| l.contains("marker_")).collect();
            assert_eq!(frames.len(), 2, "{block:?}");
            assert!(
                frames[0].contains("marker_beta") && frames[1].contains("marker_alpha"),
                "{block:?}"
            );
        }
        let report = run_perf(&perf, &["report", "-i", file, "--stdio"]);
        assert!(report.contains("# Samples: 5"), "{report}");
        std::fs::remove_file(&path).unwrap();
    }

    /// A file cut after a checkpoint (a recording killed by SIGKILL) reads in perf up to the
    /// checkpoint, without features.
    // See: issue #11 point 2
    #[test]
    fn perf_reads_a_checkpointed_file_cut_mid_record() {
        let Some(perf) = perf_binary() else { return };
        let path = temp_path("killed");
        write_test_file_as(ALL_BUT_CALLCHAIN, &path, Ending::Killed);
        let file = path.to_str().unwrap();
        let report = run_perf(&perf, &["report", "-i", file, "--stdio"]);
        assert!(report.contains("# Samples: 5"), "{report}");
        assert!(report.contains("marker_alpha"), "{report}");
        let bytes = std::fs::read(&path).unwrap();
        let parsed = crate::PerfFile::parse(&bytes).unwrap();
        let samples = parsed
            .records()
            .filter(|r| matches!(r.as_ref().map(|e| &e.record), Ok(crate::Record::Sample(_))))
            .count();
        assert_eq!(samples, 5);
        std::fs::remove_file(&path).unwrap();
    }

    /// The pipe format reads in perf (`perf report -i -` and from a file) and in kprof.
    // See: issue #11 point 4
    #[test]
    fn perf_reads_the_pipe_format() {
        let Some(perf) = perf_binary() else { return };
        let path = temp_path("pipe");
        write_test_file_as(
            ALL_BUT_CALLCHAIN | sample_type::CALLCHAIN,
            &path,
            Ending::Pipe,
        );
        let file = path.to_str().unwrap();
        let script = run_perf(&perf, &["script", "-i", file, "-F", "comm,tid,ip,sym"]);
        assert_eq!(script.matches("marker_beta").count(), 2, "{script}");
        let header = run_perf(&perf, &["report", "--header-only", "-i", file]);
        for expected in [
            "hostname : kprof-test-host",
            "cmdline : kprof record --marker-arg",
        ] {
            assert!(header.contains(expected), "{expected:?} in {header}");
        }
        let out = Command::new(&perf)
            .args(["report", "--stdio", "-i", "-"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.contains("# Samples: 5"),
            "{report}"
        );
        let bytes = std::fs::read(&path).unwrap();
        let parsed = crate::PerfFile::parse(&bytes).unwrap();
        assert!(parsed.is_pipe());
        assert_eq!(parsed.attrs().len(), 1);
        assert_eq!(parsed.attrs()[0].ids, vec![TEST_ID]);
        assert_eq!(
            parsed.features().hostname.as_deref(),
            Some("kprof-test-host")
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// After a failed feature write (a full disk), the data can be cut back and the header
    /// rewritten without features: the reader sees exactly the records kept.
    // See: issue #11 point 3
    #[test]
    fn cut_data_then_checkpoint_keeps_a_readable_prefix() {
        use crate::{PerfFile, Record};
        let attrs = vec![WriterAttr {
            attr: cpu_clock_attr(ALL_BUT_CALLCHAIN, 128),
            ids: vec![TEST_ID],
            name: "cpu-clock".into(),
        }];
        let mut writer = Writer::new(Cursor::new(Vec::new()), attrs).unwrap();
        let one = sample(ALL_BUT_CALLCHAIN, 0x1000, 5, 10, &[]);
        for _ in 0..3 {
            writer.write_record(&one).unwrap();
        }
        writer.checkpoint().unwrap();
        let at_checkpoint = writer.sink.get_ref().clone();
        assert_eq!(u64_at(&at_checkpoint, 48), 3 * one.len() as u64);
        assert_eq!(u64_at(&at_checkpoint, 72), 0, "no feature bits yet");
        writer.write_record(&one).unwrap();
        writer.cut_data(2 * one.len() as u64).unwrap();
        writer.checkpoint().unwrap();
        let bytes = writer.sink.into_inner();
        let file = PerfFile::parse(&bytes).unwrap();
        let samples = file
            .records()
            .filter(|r| matches!(r.as_ref().map(|e| &e.record), Ok(Record::Sample(_))))
            .count();
        assert_eq!(samples, 2);
    }
}
