//! kprof-perfdata: turns perf.data bytes into typed records, and records into perf.data bytes.
//!
//! **Owns:** the perf.data format: the file header ("PERFILE2", either byte order) and the pipe
//! header, `perf_event_attr`s of every size, feature sections / HEADER_FEATURE records, zstd
//! COMPRESSED/COMPRESSED2 records, and every record the kernel or perf writes, decoded zero-copy;
//! tracepoint event formats ([`tracepoint`]: the TRACING_DATA blob, tracefs `format` text, and
//! a raw tracepoint record's fields and `print fmt` text).
//! [`writer`] writes file-mode perf.data that Linux perf 6.1 reads (attrs, records, feature
//! sections) and the pipe format, with encoders for the records a recorder synthesizes. Reader
//! and writer share one type per concept: [`Features`] (the feature sections), [`BuildIdEntry`],
//! [`SampleId`] (the `sample_id` trailer).
//!
//! Modules: [`kinds`] (record types, `sample_type` bits, misc and feature numbers, callchain
//! context markers: each defined once, for the reader and the writer), `parse_info`
//! ([`RecordParseInfo`]: one raw record decoded from the attrs and byte order of its stream),
//! `file` ([`PerfFile`]: `header` for the file header, attrs and feature sections, `scan` for
//! the one pass over the records that indexes them, `sorted` for time order), [`writer`],
//! [`tracepoint`]. Test builders and file rewriters live in the `kprof-test-support` crate.
//!
//! **The caller provides:** the whole file as a byte slice (read or memory-mapped).
//!
//! **Won't do:** open files, keep process state (mappings, threads), symbolize, or use `unsafe`.
//! Unknown records are skipped by size and counted; unknown `sample_type` bits are errors, never a
//! misparse. No input makes it panic or allocate without bound.
//!
//! # Design constraints
//! - Iteration allocates nothing per record: [`Event`]s borrow from the input (or from the one
//!   buffer that holds decompressed records).
//! - Every [`Error`] names the offset it happened at; non-fatal findings are [`Note`]s.
//! - Parsing walks the record headers once, building a sorted `(time, position)` index: time
//!   order ([`PerfFile::sorted_records`]) decodes lazily from it, and can hand out records
//!   undecoded ([`RecordRef`], [`PerfFile::decode`], [`PerfFile::sample_head`]) for callers that
//!   decode on other threads. Progress of that walk, and how far time order has got
//!   ([`SortedRecords::unread_floor`]), let a caller that mapped the file keep only a window of
//!   it in memory.
//! - One decoder for every record: [`RecordParseInfo`] (the attrs and byte order of a stream)
//!   turns one raw record into an [`Event`]. The file reader keeps one ([`PerfFile::parse_info`]);
//!   a recorder builds one from the attrs it opened to read the kernel's ring buffers
//!   ([`Endian::NATIVE`]). Record types, `sample_type` bits and feature numbers are defined once,
//!   in [`kinds`], for the reader and the [`writer`].
//!
//! # Example
//! ```
//! use kprof_perfdata::{Endian, PerfFile, Record};
//! use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};
//! use kprof_perfdata::kinds::{record, sample};
//!
//! // Build a tiny file with one cpu-clock sample (IP | TID | TIME).
//! let spec = AttrSpec { sample_type: sample::IP | sample::TID | sample::TIME, ..AttrSpec::default() };
//! let mut records = RecordBuilder::new(Endian::Little);
//! records.record(record::SAMPLE, 2, |b| { b.u64(0x401000).u32(42).u32(43).u64(1_000); });
//! let bytes = FileBuilder::new(Endian::Little).attr(spec, &[7]).records(&records.into_bytes()).build_file();
//!
//! let file = PerfFile::parse(&bytes)?;
//! assert_eq!(file.attrs()[0].name, "cpu-clock");
//! for event in file.records() {
//!     if let Record::Sample(s) = event?.record {
//!         assert_eq!((s.ip, s.pid, s.time), (Some(0x401000), Some(42), Some(1_000)));
//!     }
//! }
//! # Ok::<(), kprof_perfdata::Error>(())
//! ```

#![deny(missing_docs)]

mod attr;
pub mod cgroups;
mod compress;
mod endian;
mod error;
mod features;
mod file;
pub mod kinds;
mod notes;
mod parse_info;
mod record;
mod sample;
pub mod tracepoint;
pub mod writer;

pub use attr::{ATTR_SIZE_KNOWN, ATTR_SIZE_VER0, EventAttr};
pub use endian::{Endian, U64Slice};
pub use error::{Error, Result};
pub use features::{BuildIdEntry, EventDesc, Features};
pub use file::{
    ParseOptions, PerfFile, RecordRef, RecordStats, Records, SCAN_REPORT_BYTES, SortedRecords,
};
pub use kinds::{FILE_HEADER_SIZE, PIPE_HEADER_SIZE, RecordKind, feature_name, record_type_name};
pub use notes::Note;
pub use parse_info::RecordParseInfo;
pub use record::{
    BpfEvent, Cgroup, Comm, CpuMap, Event, ForkExit, IdIndex, Ksymbol, Lost, LostSamples, Mmap,
    Record, Stat, StatConfig, StatRound, ThreadMap, Throttle, TimeConv,
};
pub use sample::{BranchStack, CpuMode, ReadValue, ReadValues, Regs, Sample, SampleHead, SampleId};
