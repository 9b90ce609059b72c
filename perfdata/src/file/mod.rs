//! [`PerfFile`]: the whole-file reader. Parses the file or pipe header, attrs and features, expands
//! compressed records, then hands out records in file order ([`Records`]) or time order
//! ([`SortedRecords`]).
//!
//! `perf_file` holds the parsed file and the order of the parse steps; `header` reads the file
//! header and its sections; `scan` makes the one pass over the records that indexes them (and
//! hands them out in file order), `scan_ahead` walks a big file's pieces for it side by side,
//! and `index_sort` puts the index in time order; `sorted` hands the records out in that order.

mod header;
mod index_sort;
mod perf_file;
mod scan;
mod scan_ahead;
mod sorted;

pub use perf_file::{ParseOptions, PerfFile, RecordStats, SCAN_REPORT_BYTES};
pub use scan::{RecordRef, Records};
pub use sorted::SortedRecords;
