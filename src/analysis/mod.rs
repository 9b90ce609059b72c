//! From a parsed perf.data to a symbolized [`Profile`]: the one path that `flame`, `report`,
//! `script`, `diff` and `export` share, for kprof's own recordings and perf's alike.
//!
//! One job per module, in the order the data flows:
//!
//! | module | job |
//! |---|---|
//! | [`replay`] | side-band records (MMAP/COMM/FORK/EXIT) in time order into address spaces, each record to its named handler; samples kept with their thread, weight and chain |
//! | [`chains`] | one sample's stack as leaf-first addresses: callchain markers, DWARF-unwound user part, LBR call stacks |
//! | [`shard`] | the replay in shards of records on every core, from address-space snapshots, merged in time order |
//! | [`chain_table`] | distinct chains and locations, by named keys: identical stacks of one address space are located once |
//! | [`unwinding`] | the DWARF unwinding queue: samples walked in batches on the thread pool while the replay reads on |
//! | [`symbolize`] | each distinct location symbolized once, in parallel; frames and stacks interned into the [`Profile`] |
//! | [`quality`] | frame-pointer reach, unwinding and unresolved-symbol reports, with their fix texts |
//! | [`kernel`] | which kernel symbols and vdso describe the recording |
//! | [`options`] | what to resolve and which samples to keep |
//!
//! The protocol between the replay and the unwinding batches, "the address spaces change only
//! when no batch is out", is in the types: changing them takes a
//! [`unwinding::NoWalksOut`], which only an idle queue hands out.

pub mod chain_table;
pub mod chains;
pub mod kernel;
pub mod options;
pub mod quality;
pub mod replay;
pub mod shard;
pub mod symbolize;
pub mod unwinding;

use anyhow::{Result, bail};
use kprof_perfdata::PerfFile;
use kprof_symbolizer::Symbolizer;

pub use self::options::AnalysisOptions;
pub use self::quality::FramePointerReport;
use self::quality::UnwindReport;
use self::replay::Replay;
use self::unwinding::{StackUnwinder, UnwindQueue};
use crate::profile::Profile;

/// A profile plus what a user should know about its quality.
pub struct Analysis {
    /// The symbolized profile.
    pub profile: Profile,
    /// Per-module symbolization results (unresolved counts and reasons).
    pub symbol_report: Vec<kprof_symbolizer::ModuleReport>,
    /// DWARF unwinding results, when any sample was unwound.
    pub unwind_report: UnwindReport,
    /// Records in the file per record type.
    pub records: std::collections::BTreeMap<u32, u64>,
    /// How far frame-pointer callchains reached, when samples have user callchains.
    pub frame_pointers: FramePointerReport,
    /// With [`AnalysisOptions::trace_fields`]: per sample (same order as the profile's), the
    /// tracepoint's fields as `perf script` prints them; `None` for other samples.
    pub traces: Vec<Option<Box<str>>>,
}

/// Builds the symbolized profile of `file`.
pub fn analyze(file: &PerfFile<'_>, options: &AnalysisOptions) -> Result<Analysis> {
    analyze_windowed(file, options, &|_| {})
}

/// [`analyze`], telling `done_below` from time to time a file offset below which it reads no
/// more records (see [`kprof_perfdata::SortedRecords::unread_floor`]).
pub fn analyze_windowed(
    file: &PerfFile<'_>,
    options: &AnalysisOptions,
    done_below: &dyn Fn(u64),
) -> Result<Analysis> {
    let symbolizer = Symbolizer::new(kernel::symbolizer_options(file, options));
    analyze_with(file, options, symbolizer, done_below)
}

/// Lets go of `symbolizer`: freeing every parsed symbol table and DWARF unit takes a while and
/// nobody waits for it; its memory then goes back to the system, for the profile to take.
fn drop_in_background(symbolizer: Symbolizer) {
    // Where no thread can be made, the symbolizer goes here, with the closure.
    let _ = std::thread::Builder::new().spawn(move || {
        drop(symbolizer);
        crate::mapped::release_free_heap();
    });
}

/// [`analyze`] with a prepared symbolizer, which goes as soon as every location is symbolized.
fn analyze_with(
    file: &PerfFile<'_>,
    options: &AnalysisOptions,
    symbolizer: Symbolizer,
    done_below: &dyn Fn(u64),
) -> Result<Analysis> {
    let outcome = replay_and_symbolize(file, options, &symbolizer, done_below);
    let symbol_report = symbolizer.report();
    // The symbol tables and mapped files go before the profile takes their room.
    drop_in_background(symbolizer);
    let (mut replayed, symbolized, unwind_report) = outcome?;
    let records = std::mem::take(&mut replayed.records).into_iter().collect();
    let traces = std::mem::take(&mut replayed.traces);
    let (profile, frame_pointers) =
        symbolize::build_profile(file, replayed, symbolized, options.sample_addresses);
    Ok(Analysis {
        profile,
        symbol_report,
        unwind_report,
        records,
        frame_pointers,
        traces,
    })
}

/// The replayed records of `file`, the frames of their locations, and how unwinding went.
fn replay_and_symbolize<'f>(
    file: &'f PerfFile<'f>,
    options: &AnalysisOptions,
    symbolizer: &Symbolizer,
    done_below: &dyn Fn(u64),
) -> Result<(
    replay::Replayed<'f>,
    symbolize::SymbolizedLocations,
    UnwindReport,
)> {
    if let Some(field) = &options.weight_field {
        replay::check_weight_field(file, field)?;
    }
    let records = file.sorted_records()?;
    let unwinder = options
        .dwarf
        .then(|| StackUnwinder::for_file(file, options.inline || options.lines))
        .flatten();
    let queue = unwinder
        .as_ref()
        .map(|unwinder| UnwindQueue::new(unwinder, file, symbolizer));
    // The replay runs here, in shards on the pool when nothing is to be unwound, else with
    // unwinding batches on the pool meanwhile; kernel symbols, which take a while to load, on
    // a thread of their own.
    let mut replayed = std::thread::scope(|threads| {
        // Where no thread can be made, kernel symbols load when the first is looked up.
        let _ = std::thread::Builder::new().spawn_scoped(threads, || {
            symbolizer.preload_kernel_symbols();
        });
        if queue.is_none() && shard::pays(records.len()) {
            let per_shard = shard::shard_records();
            return shard::replay_sharded(file, options, records, per_shard, done_below);
        }
        // At most one sample per record.
        let replay = Replay::new(file, options, queue, records.len());
        rayon::in_place_scope(|pool| replay.run(records, unwinder.as_ref(), pool, done_below))
    })?;
    // No record is read any more; the shards' tables are gone: their memory is for the
    // symbolizer to take, handed back on a thread of its own (a few milliseconds that nobody
    // needs to wait for: what the symbolizer allocates meanwhile may reuse it).
    done_below(u64::MAX);
    if std::thread::Builder::new()
        .spawn(crate::mapped::release_free_heap)
        .is_err()
    {
        crate::mapped::release_free_heap();
    }
    let unwind_report = unwinder
        .as_ref()
        .map(|unwinder| unwinder.report(&replayed.spaces))
        .unwrap_or_default();
    // Once, before the symbol keys and the symbols, which both read the modules' tables.
    symbolize::preload_modules(&replayed, symbolizer);
    symbolize::merge_locations_by_symbol(&mut replayed, symbolizer, options);
    let symbolized =
        symbolize::symbolize_locations(&replayed, symbolizer, options.sample_addresses);
    Ok((replayed, symbolized, unwind_report))
}

/// Picks the event to show: by name, or the first one that has samples.
pub fn select_event(profile: &Profile, name: Option<&str>) -> Result<Option<u16>> {
    match name {
        Some(name) => {
            let found = profile
                .events
                .iter()
                .position(|e| e.name == name || e.name.split(':').next() == Some(name));
            match found {
                Some(index) => Ok(Some(index as u16)),
                None => {
                    let names: Vec<&str> = profile.events.iter().map(|e| e.name.as_str()).collect();
                    bail!(
                        "event `{name}` is not in this profile; it has: {}",
                        names.join(", ")
                    )
                }
            }
        }
        None => Ok(profile
            .events
            .iter()
            .position(|e| e.sample_count > 0)
            .map(|i| i as u16)),
    }
}

/// A one-attr perf.data file of `records`, for unit tests.
#[cfg(test)]
pub(crate) fn test_file(
    spec: kprof_test_support::AttrSpec,
    records: kprof_test_support::RecordBuilder,
) -> Vec<u8> {
    kprof_test_support::FileBuilder::new(kprof_perfdata::Endian::Little)
        .attr(spec, &[])
        .records(&records.into_bytes())
        .build_file()
}
