//! Where trace events come from: perf.data records (a file, or the records of a live session
//! parsed by the same reader) decoded into [`Event`]s with their tracepoint fields, their
//! thread's name, and (with `-g`) their symbolized stack.
//!
//! A live session hands its records to [`LiveCapture`], which keeps the stream's attrs and
//! tracing data as a pipe-format preamble and, after every round of the session's loop, parses
//! the round's records behind it with [`PerfFile::parse`]: live events and file events go
//! through one reader and one [`Decoder`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use anyhow::{Result, bail};
use kprof_perfdata::Features;
use kprof_perfdata::cgroups::CgroupNames;
use kprof_perfdata::tracepoint::{EventFormat, FieldKind, FieldValue, RawLayout};
use kprof_perfdata::writer::{PipeWriter, WriterAttr};
use kprof_perfdata::{PerfFile, Record};
use kprof_profiler::RawData;
use kprof_profiler::live::TraceConsumer;

use crate::profile::{Profile, StackId};
use crate::trace::agg::EventFields;
use crate::trace::event::{Event, EventSink, Value};

/// The fields of `format` as aggregations see them: name, and whether it is a number.
pub fn event_fields(format: &EventFormat) -> EventFields {
    EventFields {
        name: format.full_name(),
        fields: format
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.kind == FieldKind::Scalar))
            .collect(),
    }
}

/// What the rest of `kprof trace` needs to hear besides events.
pub trait TraceOutput: EventSink {
    /// Called after each batch of events (live: every round of the loop, at least every
    /// 100 ms; a file: once at the end).
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// At the end: flushes, and prints what is printed last (an aggregation).
    fn finish(&mut self) -> io::Result<()> {
        self.tick()
    }

    /// True when it prints results that count lost events while tracing (`--interval`), so
    /// that it hears of losses as the LOST records come; otherwise it hears once, at the end,
    /// the exact count.
    fn prints_while_tracing(&self) -> bool {
        false
    }

    /// The words for `lost` events lost while tracing.
    fn lost_note(&self, lost: u64) -> String {
        format!(
            "{lost} events lost: what is printed above is incomplete; use a bigger ring buffer \
             (-m PAGES) or a --filter"
        )
    }
}

/// Per-sample stacks of a file, from its analysis (samples in the reader's time order, as the
/// decoder meets them).
pub struct Stacks<'p> {
    profile: &'p Profile,
    next: usize,
    cache: HashMap<StackId, Arc<[String]>>,
}

impl<'p> Stacks<'p> {
    /// The stacks of `profile`, which must be the analysis of the file being decoded, with no
    /// sample filtered out.
    pub fn new(profile: &'p Profile) -> Self {
        Stacks {
            profile,
            next: 0,
            cache: HashMap::new(),
        }
    }

    /// The stack of the next sample, which must be the one at `time` of `tid`.
    fn next(&mut self, time: u64, tid: u32) -> Result<Option<Arc<[String]>>> {
        let Some(sample) = self.profile.samples.get(self.next) else {
            bail!("the analysis has fewer samples than the file");
        };
        self.next += 1;
        let thread = self.profile.threads.get(sample.thread as usize);
        if sample.time != time || thread.is_some_and(|t| t.tid != tid) {
            bail!("the analysis and the file disagree on sample {}", self.next);
        }
        let Some(stack) = sample.stack else {
            return Ok(None);
        };
        let profile = self.profile;
        let frames = self.cache.entry(stack).or_insert_with(|| {
            let mut names: Vec<String> = profile
                .frames_leaf_first(Some(stack))
                .filter_map(|id| profile.frames.get(id as usize))
                .map(|f| f.function.to_string())
                .collect();
            names.reverse();
            names.into()
        });
        Ok(Some(frames.clone()))
    }
}

/// Decodes samples into events; keeps thread names (COMM, FORK) and lost counts between
/// batches.
#[derive(Default)]
pub struct Decoder {
    /// Thread names by tid.
    comms: HashMap<u32, String>,
    /// Cgroup paths by id (PERF_RECORD_CGROUP), for samples that carry their cgroup.
    cgroups: CgroupNames,
    /// Samples lost by LOST records so far (ring overflows).
    lost_in_records: u64,
    /// Samples lost by LOST_SAMPLES records (per event and CPU, written at the end).
    lost_in_counters: u64,
    /// True once a LOST_SAMPLES record was read.
    counted: bool,
    /// Lost counts go to sinks only at [`Decoder::settle_lost`], not after each batch.
    settle_at_end: bool,
    /// Lost counts already passed to sinks.
    lost_reported: u64,
    /// Events decoded.
    pub events: u64,
    /// Samples of events without a tracepoint format (not decoded).
    pub undecoded: u64,
    /// The probe events among the attrs (recognised on the first probe sample).
    probes: Option<crate::trace::probes::ProbeEvents>,
    /// The processes are running now (a live trace): USDT globals are read from them.
    live: bool,
}

impl Decoder {
    /// A decoder of a live trace's records: the traced processes are running.
    pub fn live() -> Decoder {
        Decoder {
            live: true,
            ..Decoder::default()
        }
    }

    /// Notes about how the probes' arguments are decoded (operands not read, globals read
    /// late), once the first probe sample was seen.
    pub fn notes(&self) -> &[String] {
        self.probes.as_ref().map_or(&[], |p| p.notes.as_slice())
    }

    /// Decodes every record of `file` (in time order) into `sink`.
    pub fn feed(
        &mut self,
        file: &PerfFile<'_>,
        stacks: Option<&mut Stacks<'_>>,
        sink: &mut dyn EventSink,
    ) -> Result<()> {
        self.feed_until(file, u64::MAX, stacks, sink, &mut Vec::new())
            .map(|_| ())
    }

    /// Decodes the records of `file` (in time order) that are no later than `until` into
    /// `sink`; the bytes of later ones go to `held`, in time order, to be fed again. Returns
    /// the newest record time of `file`.
    fn feed_until(
        &mut self,
        file: &PerfFile<'_>,
        until: u64,
        mut stacks: Option<&mut Stacks<'_>>,
        sink: &mut dyn EventSink,
        held: &mut Vec<u8>,
    ) -> Result<u64> {
        let mut newest = 0;
        let layout = file
            .tracing_data()
            .map_or_else(RawLayout::native, |t| t.layout);
        let names: Vec<Option<String>> = (0..file.attrs().len())
            .map(|i| file.tracepoint_format(i).map(EventFormat::full_name))
            .collect();
        let mut fields: Vec<(&str, Value<'_>)> = Vec::new();
        for record in file.sorted_records()? {
            let record = record?;
            newest = newest.max(record.time.unwrap_or(0));
            if record.time.is_some_and(|time| time > until) {
                match file.record_bytes(record.offset) {
                    Some(bytes) => held.extend_from_slice(bytes),
                    None => bail!("internal error: no record at offset {}", record.offset),
                }
                continue;
            }
            match record.record {
                Record::Comm(comm) => {
                    let name = String::from_utf8_lossy(comm.name).into_owned();
                    self.comms.insert(comm.tid, name);
                }
                Record::Fork(fork) => {
                    if let Some(parent) = self.comms.get(&fork.ptid).cloned() {
                        self.comms.insert(fork.tid, parent);
                    }
                }
                Record::Exit(exit) if exit.pid == exit.tid => {
                    if let Some(probes) = &mut self.probes {
                        probes.process_exited(exit.pid);
                    }
                }
                Record::Cgroup(_) => {
                    self.cgroups.observe(&record.record);
                }
                Record::Lost(lost) => self.lost_in_records += lost.lost,
                Record::LostSamples(lost) => {
                    self.counted = true;
                    self.lost_in_counters += lost.lost;
                }
                Record::Sample(sample) => {
                    let pid = sample.pid.unwrap_or(0);
                    let tid = sample.tid.unwrap_or(pid);
                    let time = sample.time.unwrap_or(0);
                    let stack = match stacks.as_deref_mut() {
                        Some(s) => s.next(time, tid)?,
                        None => None,
                    };
                    let format = file.tracepoint_format(sample.attr_index);
                    fields.clear();
                    let name: &str = match (format, names.get(sample.attr_index), sample.raw) {
                        (Some(format), Some(Some(name)), Some(raw)) => {
                            fields.extend(
                                format
                                    .values(raw, layout)
                                    .map(|(field, value)| (field.name.as_str(), to_value(value))),
                            );
                            name
                        }
                        // A probe (u:, ur:, usdt:): its arguments from the sampled registers.
                        _ => {
                            let live = self.live;
                            let probes = self.probes.get_or_insert_with(|| {
                                crate::trace::probes::ProbeEvents::from_attrs(file.attrs(), live)
                            });
                            let mut args = Vec::new();
                            let Some(attr) = file.attrs().get(sample.attr_index) else {
                                self.undecoded += 1;
                                continue;
                            };
                            if !probes.push_sample_fields(&sample, &mut args) {
                                self.undecoded += 1;
                                continue;
                            }
                            fields.extend(args);
                            attr.name.as_str()
                        }
                    };
                    // perf's names: the idle task is `swapper`, an unnamed thread `:TID`.
                    let unnamed;
                    let comm = match self.comms.get(&tid).or_else(|| self.comms.get(&pid)) {
                        Some(c) => c.as_str(),
                        None if pid == 0 => "swapper",
                        None => {
                            unnamed = format!(":{}", tid as i32);
                            unnamed.as_str()
                        }
                    };
                    self.events += 1;
                    sink.event(&Event {
                        name,
                        time_ns: time,
                        cpu: sample.cpu.unwrap_or(u32::MAX),
                        pid: pid as i32,
                        tid: tid as i32,
                        comm,
                        // A sample of a recording with cgroups: its path, or `[unknown
                        // cgroup]` when no record named its id.
                        cgroup: sample.cgroup.map(|id| self.cgroups.label(Some(id))),
                        fields: &fields,
                        stack: stack.as_deref(),
                    });
                }
                _ => {}
            }
        }
        if !self.settle_at_end {
            self.report_lost(sink);
        }
        Ok(newest)
    }

    /// Samples lost so far. The LOST_SAMPLES records (per event and CPU, written when the
    /// recording ends) when there are any: kprof writes exact counts there for tracepoints
    /// and probes (each fd's hits minus the samples received), perf the kernel's per-event
    /// lost counts. Before them, or in a file without them, the LOST records' sum, which counts
    /// lost side-band records (COMM, MMAP, EXIT...) too.
    pub fn lost(&self) -> u64 {
        if self.counted {
            self.lost_in_counters
        } else {
            self.lost_in_records
        }
    }

    /// Passes lost counts to sinks only when [`Decoder::settle_lost`] is called (at the end,
    /// when the exact count is known), not after every batch: for sinks that print once.
    pub fn settle_lost_at_end(&mut self) {
        self.settle_at_end = true;
    }

    /// Passes what was lost and not yet reported to `sink`. A count that went down (the exact
    /// count at the end is below the LOST records' sum reported meanwhile) reports nothing.
    pub fn settle_lost(&mut self, sink: &mut dyn EventSink) {
        self.report_lost(sink);
    }

    fn report_lost(&mut self, sink: &mut dyn EventSink) {
        let lost = self.lost();
        if lost > self.lost_reported {
            sink.lost(lost - self.lost_reported);
            self.lost_reported = lost;
        }
    }
}

fn to_value(value: FieldValue<'_>) -> Value<'_> {
    match value {
        FieldValue::Signed(v) => Value::Signed(v),
        FieldValue::Unsigned(v) => Value::Unsigned(v),
        FieldValue::Text(text) => Value::Str(String::from_utf8_lossy(text)),
        FieldValue::Bytes(bytes) => Value::Bytes(bytes),
        FieldValue::Absent => Value::Str(Cow::Borrowed("[missing]")),
    }
}

/// The consumer of a live session: buffers each round's records and decodes them behind the
/// stream's preamble, in time order across rounds as perf orders its rounds: a round decodes
/// only what is no later than the newest record of the round before. A record written on one
/// CPU (a FORK, say) can reach a round after the samples of another CPU that follow it (the
/// reader drained the first CPU's ring before the kernel wrote it); every record of the
/// earlier round was written before this round began, so nothing after that time comes later.
pub struct LiveCapture<'o> {
    /// Pipe header, attrs and tracing data: what makes the records a perf.data stream.
    preamble: Vec<u8>,
    /// The preamble, the records held from earlier rounds, then this round's records.
    buffer: Vec<u8>,
    /// The newest record time of the rounds read so far; 0 before the first.
    newest: u64,
    decoder: Decoder,
    output: &'o mut dyn TraceOutput,
}

impl<'o> LiveCapture<'o> {
    /// A capture that hands events to `output`. An output that prints nothing before the end
    /// hears of lost events once, at [`LiveCapture::finish`], with the exact count.
    pub fn new(output: &'o mut dyn TraceOutput) -> Self {
        let mut decoder = Decoder::live();
        if !output.prints_while_tracing() {
            decoder.settle_lost_at_end();
        }
        LiveCapture {
            preamble: Vec::new(),
            buffer: Vec::new(),
            newest: 0,
            decoder,
            output,
        }
    }

    /// The decoder's counts.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Decodes what is left after the last tick (the final drain, LOST_SAMPLES), and tells
    /// the output what was lost.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush(u64::MAX)?;
        self.decoder.settle_lost(&mut *self.output);
        Ok(())
    }

    /// Decodes the buffered records no later than `until`, keeping the later ones buffered;
    /// returns the newest record time among those buffered before.
    fn flush(&mut self, until: u64) -> io::Result<u64> {
        if self.buffer.len() <= self.preamble.len() {
            return Ok(0);
        }
        let mut kept = self.preamble.clone();
        let newest = {
            let file = PerfFile::parse(&self.buffer).map_err(io::Error::other)?;
            self.decoder
                .feed_until(&file, until, None, &mut *self.output, &mut kept)
                .map_err(io::Error::other)?
        };
        self.buffer = kept;
        Ok(newest)
    }
}

impl TraceConsumer for LiveCapture<'_> {
    fn begin(&mut self, attrs: &[WriterAttr], features: &Features) -> io::Result<()> {
        let writer = PipeWriter::new(Vec::new(), attrs, features)?;
        self.preamble = writer.into_sink();
        self.buffer = self.preamble.clone();
        Ok(())
    }

    fn record(&mut self, raw: RawData<'_>) -> io::Result<()> {
        match raw {
            RawData::Single(bytes) => self.buffer.extend_from_slice(bytes),
            RawData::Split(first, second) => {
                self.buffer.extend_from_slice(first);
                self.buffer.extend_from_slice(second);
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        let newest = self.flush(self.newest)?;
        self.newest = self.newest.max(newest);
        self.output.tick()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprof_perfdata::kinds::{attr_flag, record as rk, sample as st};
    use kprof_perfdata::{Endian, Features};
    use kprof_test_support::{AttrSpec, RecordBuilder, SampleHeadValues};

    /// Counts the events it hears of.
    #[derive(Default)]
    struct Count(u64);

    impl EventSink for Count {
        fn event(&mut self, _: &Event<'_>) {
            self.0 += 1;
        }
        fn lost(&mut self, _: u64) {}
    }

    impl TraceOutput for Count {}

    const SAMPLE_TYPE: u64 = st::TID | st::TIME;

    fn record(kind: u32, time: u64) -> Vec<u8> {
        let mut r = RecordBuilder::new(Endian::Little);
        match kind {
            rk::SAMPLE => r.record(rk::SAMPLE, 0, |b| {
                b.sample_head(
                    SAMPLE_TYPE,
                    &SampleHeadValues {
                        time,
                        ..SampleHeadValues::RECOGNIZABLE
                    },
                );
            }),
            // A FORK: pid, ppid, tid, ptid, time, then the sample_id trailer (TID, TIME).
            _ => r.record(rk::FORK, 0, |b| {
                b.u32(11).u32(11).u32(12).u32(11).u64(time);
                b.u32(11).u32(12).u64(time);
            }),
        };
        r.into_bytes()
    }

    // See: issue #10 (probes_followed: a thread's FORK in a later round than its samples)
    #[test]
    fn a_round_decodes_only_what_the_round_before_reached() {
        let mut count = Count::default();
        let mut capture = LiveCapture::new(&mut count);
        let spec = AttrSpec {
            sample_type: SAMPLE_TYPE,
            flags: attr_flag::SAMPLE_ID_ALL,
            ..AttrSpec::default()
        };
        let attrs = [WriterAttr {
            attr: spec.to_bytes(Endian::Little),
            ids: vec![],
            name: "cpu-clock".into(),
        }];
        capture.begin(&attrs, &Features::default()).unwrap();
        // Round 1 reads a sample at 100 from one CPU; the FORK at 50 that comes before it
        // reaches round 2, from another CPU, with a sample at 300.
        capture
            .record(RawData::Single(&record(rk::SAMPLE, 100)))
            .unwrap();
        capture.tick().unwrap();
        assert_eq!(
            capture.decoder().undecoded,
            0,
            "nothing before 100 is known yet"
        );
        capture
            .record(RawData::Single(&record(rk::FORK, 50)))
            .unwrap();
        capture
            .record(RawData::Single(&record(rk::SAMPLE, 300)))
            .unwrap();
        capture.tick().unwrap();
        // Up to 100 (round 1's newest): the FORK, then the sample at 100, in time order.
        assert_eq!(capture.decoder().undecoded, 1);
        capture.finish().unwrap();
        assert_eq!(capture.decoder().undecoded, 2);
    }
}
