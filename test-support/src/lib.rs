//! kprof-test-support: test-only tools shared by kprof's crates and its integration tests (a
//! dev-dependency everywhere, never published).
//!
//! **Owns:** [`builders`], which write synthetic perf.data bytes (attrs, records, feature
//! sections, file and pipe headers) in either byte order, exactly in the layouts the kernel and
//! perf use; [`rewrite`], which turns a real file-mode perf.data into the variants other perf
//! versions and machines produce (a big-endian copy, attrs padded with fields of a future perf, a
//! record of an unknown type); [`workloads`], facts about the test workloads that several
//! crates' tests check; [`command`], running the tools they compare with; and [`xorshift`],
//! numbers that tests can repeat.
//!
//! **Won't do:** read perf.data (that is `kprof-perfdata`'s reader, which these tools feed): the
//! layouts here come from the kernel and perf headers, not from the reader, so that a reader bug
//! does not cancel itself out.
//!
//! # Example
//! ```
//! use kprof_perfdata::kinds::{record, sample};
//! use kprof_perfdata::{Endian, PerfFile};
//! use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};
//!
//! let spec = AttrSpec { sample_type: sample::IP, ..AttrSpec::default() };
//! let mut records = RecordBuilder::new(Endian::Little);
//! records.record(record::SAMPLE, 2, |b| { b.u64(0x401000); });
//! let bytes = FileBuilder::new(Endian::Little).attr(spec, &[7]).records(&records.into_bytes()).build_file();
//! assert_eq!(PerfFile::parse(&bytes).unwrap().records().count(), 1);
//! ```
#![deny(missing_docs)]

pub mod builders;
pub mod command;
pub mod rewrite;
pub mod workloads;

pub use builders::{AttrSpec, FileBuilder, RecordBuilder, SampleHeadValues, feature_string};

/// A deterministic stream of numbers from `seed` (xorshift64): varied inputs that a test gets
/// alike on every run, without a `rand` dependency.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
