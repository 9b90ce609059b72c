//! pprof exporter: the profile as a gzipped `perftools.profiles.Profile` protobuf.
//!
//! Layout (field numbers from google/pprof `proto/profile.proto`):
//! - sample types: `samples/count` first (pprof's convention for the event count), then one
//!   `<event>/<unit>` per event (`cpu-clock/nanoseconds`, `page-faults/count`); a sample of one
//!   event has 0 in the other events' columns. The first event is the default sample type.
//! - samples: one per distinct (stack, thread), values summed, labelled `pid`, `tid`, `thread`
//!   and `process`.
//! - locations: one per run of frames that share an address: the frames a non-inlined frame
//!   inlined, innermost first, then that frame, as `line` entries of one location.
//! - mappings: one per module; addresses are module-relative (`Frame::module_offset`), so every
//!   mapping starts at 0 with file offset 0. The model carries no build ids, so none are written.
//! - functions: one per (name, source file); kprof keeps only demangled names, so `system_name`
//!   repeats the name.

use std::collections::hash_map::Entry;
use std::io::{self, Write};
use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use rustc_hash::FxHashMap as HashMap;

use crate::profile::{FrameId, FrameKind, Profile, StackId, ThreadId};

/// Writes `profile` to `w` as a gzip-compressed pprof protobuf.
pub(super) fn write(profile: &Profile, w: &mut dyn Write) -> io::Result<()> {
    let bytes = encode(profile);
    let mut gz = GzEncoder::new(w, Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?;
    Ok(())
}

/// The uncompressed protobuf bytes of `profile`.
fn encode(profile: &Profile) -> Vec<u8> {
    let mut builder = Builder::new(profile);
    builder.add_main_mapping();
    builder.add_samples();
    builder.finish()
}

/// A minimal protobuf writer: varints, length-delimited fields and packed repeated varints.
///
/// Hand-written on purpose: pprof needs only these three wire forms, and the alternatives
/// (prost + prost-build) would add a build-time `protoc` or a generated-code dependency to the
/// binary for about a hundred lines of encoding.
#[derive(Default)]
struct ProtoWriter {
    buf: Vec<u8>,
}

/// Wire type of varint fields.
const WIRE_VARINT: u8 = 0;
/// Wire type of length-delimited fields (strings, messages, packed repeated fields).
const WIRE_LEN: u8 = 2;

impl ProtoWriter {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value & 0x7f) as u8 | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn tag(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    /// A `uint64` field; proto3 omits zero, the default.
    fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.tag(field, WIRE_VARINT);
            self.varint(value);
        }
    }

    /// An `int64` field: protobuf encodes it as the two's-complement `u64`.
    fn int(&mut self, field: u32, value: i64) {
        self.uint(field, value as u64);
    }

    fn bool(&mut self, field: u32, value: bool) {
        self.uint(field, u64::from(value));
    }

    /// A length-delimited field, written even when empty (the string table's leading "").
    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.tag(field, WIRE_LEN);
        self.varint(data.len() as u64);
        self.buf.extend_from_slice(data);
    }

    /// An embedded message whose body `fill` writes.
    fn message(&mut self, field: u32, fill: impl FnOnce(&mut ProtoWriter)) {
        let mut inner = ProtoWriter::default();
        fill(&mut inner);
        self.bytes(field, &inner.buf);
    }

    /// A packed repeated varint field (proto3's default encoding), omitted when empty.
    fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) {
        let mut inner = ProtoWriter::default();
        for value in values {
            inner.varint(value);
        }
        if !inner.buf.is_empty() {
            self.bytes(field, &inner.buf);
        }
    }
}

/// Field numbers of `perftools.profiles` messages.
mod field {
    pub const PROFILE_SAMPLE_TYPE: u32 = 1;
    pub const PROFILE_SAMPLE: u32 = 2;
    pub const PROFILE_MAPPING: u32 = 3;
    pub const PROFILE_LOCATION: u32 = 4;
    pub const PROFILE_FUNCTION: u32 = 5;
    pub const PROFILE_STRING_TABLE: u32 = 6;
    pub const PROFILE_DURATION_NANOS: u32 = 10;
    pub const PROFILE_PERIOD_TYPE: u32 = 11;
    pub const PROFILE_PERIOD: u32 = 12;
    pub const PROFILE_COMMENT: u32 = 13;
    pub const PROFILE_DEFAULT_SAMPLE_TYPE: u32 = 14;
    pub const VALUE_TYPE_TYPE: u32 = 1;
    pub const VALUE_TYPE_UNIT: u32 = 2;
    pub const SAMPLE_LOCATION_ID: u32 = 1;
    pub const SAMPLE_VALUE: u32 = 2;
    pub const SAMPLE_LABEL: u32 = 3;
    pub const LABEL_KEY: u32 = 1;
    pub const LABEL_STR: u32 = 2;
    pub const LABEL_NUM: u32 = 3;
    pub const MAPPING_ID: u32 = 1;
    pub const MAPPING_MEMORY_LIMIT: u32 = 3;
    pub const MAPPING_FILENAME: u32 = 5;
    pub const MAPPING_HAS_FUNCTIONS: u32 = 7;
    pub const MAPPING_HAS_FILENAMES: u32 = 8;
    pub const MAPPING_HAS_LINE_NUMBERS: u32 = 9;
    pub const MAPPING_HAS_INLINE_FRAMES: u32 = 10;
    pub const LOCATION_ID: u32 = 1;
    pub const LOCATION_MAPPING_ID: u32 = 2;
    pub const LOCATION_ADDRESS: u32 = 3;
    pub const LOCATION_LINE: u32 = 4;
    pub const LINE_FUNCTION_ID: u32 = 1;
    pub const LINE_LINE: u32 = 2;
    pub const FUNCTION_ID: u32 = 1;
    pub const FUNCTION_NAME: u32 = 2;
    pub const FUNCTION_SYSTEM_NAME: u32 = 3;
    pub const FUNCTION_FILENAME: u32 = 4;
}

/// The string table; index 0 is always "".
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut strings = Strings {
            table: Vec::new(),
            index: HashMap::default(),
        };
        strings.intern("");
        strings
    }

    fn intern(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

struct MappingRow {
    filename: i64,
    memory_limit: u64,
    has_filenames: bool,
    has_line_numbers: bool,
    has_inline_frames: bool,
}

struct LocationRow {
    mapping_id: u64,
    address: u64,
    /// (function id, line), innermost first.
    lines: Vec<(u64, i64)>,
}

struct FunctionRow {
    name: i64,
    filename: i64,
}

/// String indices of a thread's labels.
struct ThreadLabels {
    pid: i64,
    tid: i64,
    thread: i64,
    process: i64,
}

/// One aggregated pprof sample.
struct SampleRow {
    stack: Option<StackId>,
    thread: ThreadId,
    /// `samples/count`, then one value per event.
    values: Vec<i64>,
}

/// Interns the profile's stacks, frames and modules into pprof's tables.
struct Builder<'p> {
    profile: &'p Profile,
    strings: Strings,
    mappings: Vec<MappingRow>,
    mapping_ids: HashMap<Arc<str>, u64>,
    locations: Vec<LocationRow>,
    location_ids: HashMap<Vec<FrameId>, u64>,
    functions: Vec<FunctionRow>,
    function_ids: HashMap<(Arc<str>, Option<Arc<str>>), u64>,
    stack_locations: HashMap<Option<StackId>, Vec<u64>>,
    samples: Vec<SampleRow>,
    sample_index: HashMap<(Option<StackId>, ThreadId), usize>,
}

impl<'p> Builder<'p> {
    fn new(profile: &'p Profile) -> Self {
        Builder {
            profile,
            strings: Strings::new(),
            mappings: Vec::new(),
            mapping_ids: HashMap::default(),
            locations: Vec::new(),
            location_ids: HashMap::default(),
            functions: Vec::new(),
            function_ids: HashMap::default(),
            stack_locations: HashMap::default(),
            samples: Vec::new(),
            sample_index: HashMap::default(),
        }
    }

    /// Makes the main executable mapping 1: pprof names the profile after `mapping[0]`.
    /// The executable is the first user module whose file name starts with a process name
    /// (a comm is the executable's name cut to 15 bytes).
    fn add_main_mapping(&mut self) {
        let profile = self.profile;
        let is_executable = |module: &str| {
            let base = super::shared::module_basename(module);
            profile
                .threads
                .iter()
                .any(|t| !t.process_name.is_empty() && base.starts_with(&t.process_name))
        };
        let main = profile
            .frames
            .iter()
            .find(|f| f.kind == FrameKind::User && is_executable(&f.module));
        if let Some(frame) = main {
            self.mapping(&frame.module, frame.module_offset, false);
        }
    }

    /// Sums every sample into the row of its (stack, thread).
    fn add_samples(&mut self) {
        let width = 1 + self.profile.events.len();
        for sample in &self.profile.samples {
            let key = (sample.stack, sample.thread);
            let row = match self.sample_index.entry(key) {
                Entry::Occupied(entry) => *entry.get(),
                Entry::Vacant(entry) => {
                    entry.insert(self.samples.len());
                    self.samples.push(SampleRow {
                        stack: sample.stack,
                        thread: sample.thread,
                        values: vec![0; width],
                    });
                    self.samples.len() - 1
                }
            };
            let Some(row) = self.samples.get_mut(row) else {
                continue;
            };
            let period = i64::try_from(sample.period).unwrap_or(i64::MAX);
            if let Some(count) = row.values.first_mut() {
                *count = count.saturating_add(1);
            }
            if let Some(value) = row.values.get_mut(1 + usize::from(sample.event)) {
                *value = value.saturating_add(period);
            }
        }
        let stacks: Vec<Option<StackId>> = self.samples.iter().map(|row| row.stack).collect();
        for stack in stacks {
            self.intern_stack(stack);
        }
    }

    /// Records the location ids of `stack`, leaf first, interning new locations on the way.
    fn intern_stack(&mut self, stack: Option<StackId>) {
        if self.stack_locations.contains_key(&stack) {
            return;
        }
        let mut ids = Vec::new();
        let mut run = Vec::new();
        // `take` bounds the walk should a corrupt table make the parent links cycle.
        let depth_limit = self.profile.stacks.len();
        for frame in self.profile.frames_leaf_first(stack).take(depth_limit) {
            let Some(info) = self.profile.frames.get(frame as usize) else {
                continue;
            };
            run.push(frame);
            if !info.inlined {
                ids.push(self.location(std::mem::take(&mut run)));
            }
        }
        if !run.is_empty() {
            // An inlined frame with no caller in the stack (a truncated unwind).
            ids.push(self.location(run));
        }
        self.stack_locations.insert(stack, ids);
    }

    /// The id of the location of `run`: frames sharing one address, innermost first.
    fn location(&mut self, run: Vec<FrameId>) -> u64 {
        if let Some(&id) = self.location_ids.get(&run) {
            return id;
        }
        let frames = &self.profile.frames;
        let infos: Vec<_> = run.iter().filter_map(|&f| frames.get(f as usize)).collect();
        let (mapping_id, address) = match infos.last() {
            Some(outer) if !outer.module.is_empty() => {
                let has_inline = infos.len() > 1;
                let mapping_id = self.mapping(&outer.module, outer.module_offset, has_inline);
                (mapping_id, outer.module_offset)
            }
            Some(outer) => (0, outer.module_offset),
            None => (0, 0),
        };
        let mut lines = Vec::with_capacity(infos.len());
        for info in &infos {
            let function_id = self.function(&info.function, info.file.as_ref());
            if let Some(mapping) = (mapping_id as usize)
                .checked_sub(1)
                .and_then(|i| self.mappings.get_mut(i))
            {
                mapping.has_filenames |= info.file.is_some();
                mapping.has_line_numbers |= info.line.is_some();
            }
            lines.push((function_id, i64::from(info.line.unwrap_or(0))));
        }
        self.locations.push(LocationRow {
            mapping_id,
            address,
            lines,
        });
        let id = self.locations.len() as u64;
        self.location_ids.insert(run, id);
        id
    }

    /// The id of the mapping of `module`, widened to cover `address`.
    fn mapping(&mut self, module: &Arc<str>, address: u64, has_inline: bool) -> u64 {
        let id = match self.mapping_ids.get(module) {
            Some(&id) => id,
            None => {
                let filename = self.strings.intern(module);
                self.mappings.push(MappingRow {
                    filename,
                    memory_limit: 0,
                    has_filenames: false,
                    has_line_numbers: false,
                    has_inline_frames: false,
                });
                let id = self.mappings.len() as u64;
                self.mapping_ids.insert(Arc::clone(module), id);
                id
            }
        };
        if let Some(row) = (id as usize)
            .checked_sub(1)
            .and_then(|i| self.mappings.get_mut(i))
        {
            row.memory_limit = row.memory_limit.max(address.saturating_add(1));
            row.has_inline_frames |= has_inline;
        }
        id
    }

    /// The id of the function `name` in `file`.
    fn function(&mut self, name: &Arc<str>, file: Option<&Arc<str>>) -> u64 {
        let key = (Arc::clone(name), file.cloned());
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let row = FunctionRow {
            name: self.strings.intern(name),
            filename: file.map_or(0, |f| self.strings.intern(f)),
        };
        self.functions.push(row);
        let id = self.functions.len() as u64;
        self.function_ids.insert(key, id);
        id
    }

    /// Interns the remaining strings and encodes the whole message.
    fn finish(mut self) -> Vec<u8> {
        let profile = self.profile;
        let mut sample_types = vec![(self.strings.intern("samples"), self.strings.intern("count"))];
        for event in &profile.events {
            let ty = self.strings.intern(&event.name);
            let unit = self.strings.intern(super::shared::period_unit(&event.name));
            sample_types.push((ty, unit));
        }
        let thread_labels = self.thread_labels();
        let label_keys = [
            self.strings.intern("pid"),
            self.strings.intern("tid"),
            self.strings.intern("thread"),
            self.strings.intern("process"),
        ];
        let comments = self.comments();

        let mut out = ProtoWriter::default();
        for &(ty, unit) in &sample_types {
            out.message(field::PROFILE_SAMPLE_TYPE, |m| value_type(m, ty, unit));
        }
        for row in &self.samples {
            let locations = self
                .stack_locations
                .get(&row.stack)
                .map_or(&[][..], Vec::as_slice);
            let labels = thread_labels.get(row.thread as usize);
            out.message(field::PROFILE_SAMPLE, |m| {
                m.packed(field::SAMPLE_LOCATION_ID, locations.iter().copied());
                m.packed(field::SAMPLE_VALUE, row.values.iter().map(|&v| v as u64));
                if let Some(labels) = labels {
                    let [pid, tid, thread, process] = label_keys;
                    m.message(field::SAMPLE_LABEL, |l| num_label(l, pid, labels.pid));
                    m.message(field::SAMPLE_LABEL, |l| num_label(l, tid, labels.tid));
                    m.message(field::SAMPLE_LABEL, |l| str_label(l, thread, labels.thread));
                    m.message(field::SAMPLE_LABEL, |l| {
                        str_label(l, process, labels.process)
                    });
                }
            });
        }
        for (i, row) in self.mappings.iter().enumerate() {
            out.message(field::PROFILE_MAPPING, |m| {
                m.uint(field::MAPPING_ID, i as u64 + 1);
                m.uint(field::MAPPING_MEMORY_LIMIT, row.memory_limit);
                m.int(field::MAPPING_FILENAME, row.filename);
                m.bool(field::MAPPING_HAS_FUNCTIONS, true);
                m.bool(field::MAPPING_HAS_FILENAMES, row.has_filenames);
                m.bool(field::MAPPING_HAS_LINE_NUMBERS, row.has_line_numbers);
                m.bool(field::MAPPING_HAS_INLINE_FRAMES, row.has_inline_frames);
            });
        }
        for (i, row) in self.locations.iter().enumerate() {
            out.message(field::PROFILE_LOCATION, |m| {
                m.uint(field::LOCATION_ID, i as u64 + 1);
                m.uint(field::LOCATION_MAPPING_ID, row.mapping_id);
                m.uint(field::LOCATION_ADDRESS, row.address);
                for &(function_id, line) in &row.lines {
                    m.message(field::LOCATION_LINE, |l| {
                        l.uint(field::LINE_FUNCTION_ID, function_id);
                        l.int(field::LINE_LINE, line);
                    });
                }
            });
        }
        for (i, row) in self.functions.iter().enumerate() {
            out.message(field::PROFILE_FUNCTION, |m| {
                m.uint(field::FUNCTION_ID, i as u64 + 1);
                m.int(field::FUNCTION_NAME, row.name);
                m.int(field::FUNCTION_SYSTEM_NAME, row.name);
                m.int(field::FUNCTION_FILENAME, row.filename);
            });
        }
        for s in &self.strings.table {
            out.bytes(field::PROFILE_STRING_TABLE, s.as_bytes());
        }
        // time_nanos (field 9) wants wall-clock UTC; sample times are perf-clock (monotonic)
        // and the model has no wall-clock start, so it is left unset.
        if let Some((first, last)) = super::shared::time_range(profile) {
            out.int(
                field::PROFILE_DURATION_NANOS,
                i64::try_from(last - first).unwrap_or(i64::MAX),
            );
        }
        if let (Some(event), Some(&(ty, unit))) = (profile.events.first(), sample_types.get(1)) {
            out.message(field::PROFILE_PERIOD_TYPE, |m| value_type(m, ty, unit));
            let mean = event
                .total_period
                .checked_div(event.sample_count)
                .unwrap_or(0);
            out.int(
                field::PROFILE_PERIOD,
                i64::try_from(mean).unwrap_or(i64::MAX),
            );
            out.int(field::PROFILE_DEFAULT_SAMPLE_TYPE, ty);
        }
        out.packed(field::PROFILE_COMMENT, comments.iter().map(|&c| c as u64));
        out.buf
    }

    fn thread_labels(&mut self) -> Vec<ThreadLabels> {
        let profile = self.profile;
        profile
            .threads
            .iter()
            .map(|t| ThreadLabels {
                pid: i64::from(t.pid_signed()),
                tid: i64::from(t.tid_signed()),
                thread: self.strings.intern(&t.name),
                process: self.strings.intern(&t.process_name),
            })
            .collect()
    }

    /// Recording facts as free-form comments, shown by `pprof -comments`.
    fn comments(&mut self) -> Vec<i64> {
        let meta = &self.profile.meta;
        let facts = [
            ("host", meta.hostname.as_deref()),
            ("os-release", meta.os_release.as_deref()),
            ("arch", meta.arch.as_deref()),
            ("perf-version", meta.perf_version.as_deref()),
            ("cmdline", meta.cmdline.as_deref()),
        ];
        let mut lines: Vec<String> = facts
            .iter()
            .filter_map(|(key, value)| Some(format!("{key}: {}", (*value)?)))
            .collect();
        if meta.lost_samples > 0 {
            lines.push(format!("lost-samples: {}", meta.lost_samples));
        }
        lines.iter().map(|line| self.strings.intern(line)).collect()
    }
}

fn value_type(m: &mut ProtoWriter, ty: i64, unit: i64) {
    m.int(field::VALUE_TYPE_TYPE, ty);
    m.int(field::VALUE_TYPE_UNIT, unit);
}

fn num_label(m: &mut ProtoWriter, key: i64, num: i64) {
    m.int(field::LABEL_KEY, key);
    m.int(field::LABEL_NUM, num);
}

fn str_label(m: &mut ProtoWriter, key: i64, value: i64) {
    m.int(field::LABEL_KEY, key);
    m.int(field::LABEL_STR, value);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::process::Command;

    use super::*;
    use crate::export::test_support::{self, flat_periods, frames, sample_profile};

    /// A decoded protobuf field: a varint or a length-delimited payload.
    #[derive(Clone, Debug)]
    enum Value {
        Varint(u64),
        Bytes(Vec<u8>),
    }

    fn read_varint(bytes: &[u8], pos: &mut usize) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = bytes[*pos];
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("varint too long");
    }

    /// Splits a message into (field, value) pairs, in order.
    fn fields(bytes: &[u8]) -> Vec<(u32, Value)> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < bytes.len() {
            let key = read_varint(bytes, &mut pos);
            let field = u32::try_from(key >> 3).unwrap();
            match key & 7 {
                0 => out.push((field, Value::Varint(read_varint(bytes, &mut pos)))),
                2 => {
                    let len = usize::try_from(read_varint(bytes, &mut pos)).unwrap();
                    out.push((field, Value::Bytes(bytes[pos..pos + len].to_vec())));
                    pos += len;
                }
                wire => panic!("unexpected wire type {wire}"),
            }
        }
        out
    }

    fn varints(fields: &[(u32, Value)], field: u32) -> Vec<u64> {
        let mut out = Vec::new();
        for (_, value) in fields.iter().filter(|(f, _)| *f == field) {
            match value {
                Value::Varint(v) => out.push(*v),
                Value::Bytes(packed) => {
                    let mut pos = 0;
                    while pos < packed.len() {
                        out.push(read_varint(packed, &mut pos));
                    }
                }
            }
        }
        out
    }

    fn varint(fields: &[(u32, Value)], field: u32) -> u64 {
        varints(fields, field).last().copied().unwrap_or(0)
    }

    fn messages(fields: &[(u32, Value)], field: u32) -> Vec<Vec<(u32, Value)>> {
        fields
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, value)| match value {
                Value::Bytes(bytes) => super::tests::fields(bytes),
                Value::Varint(_) => panic!("field {field} is not a message"),
            })
            .collect()
    }

    /// A decoded sample: leaf-first function names of every line of every location, its
    /// values and its labels.
    type DecodedSample = (Vec<String>, Vec<i64>, BTreeMap<String, String>);

    /// The parts of a pprof profile the tests look at, with string indices resolved.
    struct Decoded {
        strings: Vec<String>,
        sample_types: Vec<(String, String)>,
        samples: Vec<DecodedSample>,
        /// Per location id, its function names innermost first.
        locations: BTreeMap<u64, Vec<String>>,
        mappings: Vec<String>,
        default_sample_type: String,
    }

    fn decode(gzipped: &[u8]) -> Decoded {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(gzipped)
            .read_to_end(&mut bytes)
            .unwrap();
        let top = fields(&bytes);
        let strings: Vec<String> = top
            .iter()
            .filter(|(f, _)| *f == 6)
            .map(|(_, v)| match v {
                Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
                Value::Varint(_) => panic!("string table entry is a varint"),
            })
            .collect();
        let s = |i: u64| strings[usize::try_from(i).unwrap()].clone();
        let functions: BTreeMap<u64, String> = messages(&top, 5)
            .iter()
            .map(|f| (varint(f, 1), s(varint(f, 2))))
            .collect();
        let locations: BTreeMap<u64, Vec<String>> = messages(&top, 4)
            .iter()
            .map(|loc| {
                let names = messages(loc, 4)
                    .iter()
                    .map(|line| functions[&varint(line, 1)].clone())
                    .collect();
                (varint(loc, 1), names)
            })
            .collect();
        let samples = messages(&top, 2)
            .iter()
            .map(|sample| {
                let names = varints(sample, 1)
                    .iter()
                    .flat_map(|id| locations[id].clone())
                    .collect();
                let values = varints(sample, 2).iter().map(|&v| v as i64).collect();
                let labels = messages(sample, 3)
                    .iter()
                    .map(|l| {
                        let value = match varint(l, 2) {
                            0 => varint(l, 3).to_string(),
                            str => s(str),
                        };
                        (s(varint(l, 1)), value)
                    })
                    .collect();
                (names, values, labels)
            })
            .collect();
        Decoded {
            sample_types: messages(&top, 1)
                .iter()
                .map(|vt| (s(varint(vt, 1)), s(varint(vt, 2))))
                .collect(),
            samples,
            locations,
            mappings: messages(&top, 3).iter().map(|m| s(varint(m, 5))).collect(),
            default_sample_type: s(varint(&top, 14)),
            strings,
        }
    }

    fn export_pprof(profile: &Profile) -> Vec<u8> {
        let mut out = Vec::new();
        write(profile, &mut out).unwrap();
        out
    }

    #[test]
    fn varints_encode_as_protobuf_specifies() {
        let mut w = ProtoWriter::default();
        w.varint(0);
        w.varint(1);
        w.varint(300);
        w.varint(u64::MAX);
        let mut expected = vec![0x00, 0x01, 0xac, 0x02];
        expected.extend([0xff; 9]);
        expected.push(0x01);
        assert_eq!(w.buf, expected);
        let mut w = ProtoWriter::default();
        w.int(1, -1);
        assert_eq!(w.buf.len(), 11, "negative int64 takes ten varint bytes");
    }

    #[test]
    fn header_tables_name_events_and_modules() {
        let profile = sample_profile();
        let decoded = decode(&export_pprof(&profile));
        assert_eq!(decoded.strings.first().map(String::as_str), Some(""));
        let types: Vec<(&str, &str)> = decoded
            .sample_types
            .iter()
            .map(|(t, u)| (t.as_str(), u.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("samples", "count"),
                ("cpu-clock", "nanoseconds"),
                ("page-faults", "count")
            ]
        );
        assert_eq!(decoded.default_sample_type, "cpu-clock");
        let mut modules: Vec<&str> = profile.frames.iter().map(|f| &*f.module).collect();
        modules.sort_unstable();
        modules.dedup();
        let mut mappings: Vec<&str> = decoded.mappings.iter().map(String::as_str).collect();
        mappings.sort_unstable();
        assert_eq!(mappings, modules);
    }

    #[test]
    fn main_executable_is_the_first_mapping() {
        let mut profile = sample_profile();
        // Keep only samples whose leaf is in libc, so libc would otherwise come first.
        let samples = std::mem::take(&mut profile.samples);
        profile.samples = samples
            .into_iter()
            .filter(|s| profile.frames_leaf_first(s.stack).next() == Some(frames::MEMCPY))
            .collect();
        assert!(!profile.samples.is_empty());
        let decoded = decode(&export_pprof(&profile));
        assert_eq!(
            decoded.mappings.first().map(String::as_str),
            Some("/usr/bin/app")
        );
    }

    #[test]
    fn samples_keep_stacks_threads_and_values() {
        let profile = sample_profile();
        let decoded = decode(&export_pprof(&profile));
        // Expected: per (leaf-first names, tid), the sample count and per-event period sums.
        let mut expected: BTreeMap<(Vec<String>, String), Vec<i64>> = BTreeMap::new();
        for sample in &profile.samples {
            let names = profile
                .frames_leaf_first(sample.stack)
                .map(|f| profile.frames[f as usize].function.to_string())
                .collect();
            let tid = profile.threads[sample.thread as usize]
                .tid_signed()
                .to_string();
            let values = expected
                .entry((names, tid))
                .or_insert_with(|| vec![0; 1 + profile.events.len()]);
            values[0] += 1;
            values[1 + usize::from(sample.event)] += i64::try_from(sample.period).unwrap();
        }
        let mut actual = BTreeMap::new();
        for (names, values, labels) in &decoded.samples {
            let key = (names.clone(), labels["tid"].clone());
            assert!(
                actual.insert(key, values.clone()).is_none(),
                "duplicate sample"
            );
            let thread = profile
                .threads
                .iter()
                .find(|t| t.tid_signed().to_string() == labels["tid"])
                .unwrap();
            assert_eq!(labels["pid"], thread.pid_signed().to_string());
            assert_eq!(labels["thread"], thread.name);
            assert_eq!(labels["process"], thread.process_name);
        }
        assert_eq!(actual, expected);
    }

    #[test]
    fn inlined_frames_are_lines_of_their_callers_location() {
        let profile = sample_profile();
        let decoded = decode(&export_pprof(&profile));
        let chains: Vec<Vec<&str>> = decoded
            .locations
            .values()
            .map(|names| names.iter().map(String::as_str).collect())
            .collect();
        assert!(chains.contains(&vec!["helper", "compute"]));
        assert!(chains.contains(&vec!["helper_leaf", "helper", "compute"]));
        assert!(chains.contains(&vec!["compute"]));
        // Every location holds exactly one non-inlined frame, the last one.
        for names in decoded.locations.values() {
            let frames: Vec<_> = names
                .iter()
                .map(|n| profile.frames.iter().find(|f| &*f.function == n).unwrap())
                .collect();
            let (outer, inner) = frames.split_last().unwrap();
            assert!(!outer.inlined, "{names:?}");
            assert!(inner.iter().all(|f| f.inlined), "{names:?}");
        }
    }

    /// Runs `go tool pprof -top` on the export and compares every function's flat share with
    /// the one computed from the model, for each event.
    #[test]
    fn go_tool_pprof_top_agrees_with_the_model() {
        if !Command::new("go")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            test_support::skip_for_missing("go (Debian package golang-go) for `go tool pprof`");
            return;
        }
        let profile = sample_profile();
        let path = test_support::temp_path("top.pb.gz");
        std::fs::write(&path, export_pprof(&profile)).unwrap();
        for (event_index, event) in profile.events.iter().enumerate() {
            let output = Command::new("go")
                .args(["tool", "pprof", "-top", "-nodecount=1000"])
                .arg(format!("-sample_index={}", event.name))
                .arg(&path)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "pprof failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let reported = parse_top(&stdout);
            let (flat, total) = flat_periods(&profile, u16::try_from(event_index).unwrap());
            for (function, period) in &flat {
                let share = format!("{:.2}%", 100.0 * *period as f64 / total as f64);
                assert_eq!(
                    reported.get(function.as_str()),
                    Some(&share),
                    "{event:?} {function}:\n{stdout}"
                );
            }
            // Functions never at a leaf have no flat share.
            for (function, share) in &reported {
                if !flat.contains_key(*function) {
                    assert!(share == "0%", "{function} {share}\n{stdout}");
                }
            }
            // The first row is the hottest function.
            let hottest = flat.iter().max_by_key(|(_, p)| **p).unwrap().0;
            let first_row = stdout
                .lines()
                .skip_while(|l| !l.trim_start().starts_with("flat"))
                .nth(1)
                .unwrap();
            assert!(first_row.ends_with(hottest.as_str()), "{first_row}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    /// Function name → flat% from `pprof -top` output; `(inline)` suffixes dropped.
    fn parse_top(stdout: &str) -> BTreeMap<&str, String> {
        stdout
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("flat"))
            .skip(1)
            .filter_map(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                // flat flat% sum% cum cum% name...
                let name_start = line.find(columns.get(5)?)?;
                let name = line[name_start..].trim_end_matches(" (inline)");
                Some((name, columns[1].to_owned()))
            })
            .collect()
    }
}
