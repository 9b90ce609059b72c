//! Builders for synthetic perf.data bytes: attrs, records, feature sections, file and pipe
//! headers, written exactly in the layouts the kernel and perf use, in either byte order.

use kprof_perfdata::kinds::{record as rk, sample as st};
use kprof_perfdata::{ATTR_SIZE_KNOWN, Endian};

/// The fields of a `perf_event_attr` to encode; `size` picks the layout version written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrSpec {
    /// `type`.
    pub kind: u32,
    /// `config`.
    pub config: u64,
    /// Period or frequency.
    pub sample_period_or_freq: u64,
    /// `sample_type`.
    pub sample_type: u64,
    /// `read_format`.
    pub read_format: u64,
    /// Bitfield word in kernel bit numbering.
    pub flags: u64,
    /// `branch_sample_type`.
    pub branch_sample_type: u64,
    /// `sample_regs_user`.
    pub sample_regs_user: u64,
    /// `sample_stack_user`.
    pub sample_stack_user: u32,
    /// `sample_regs_intr`.
    pub sample_regs_intr: u64,
    /// Bytes written (and stored in the `size` field); default 136.
    pub size: u32,
}

impl Default for AttrSpec {
    fn default() -> Self {
        AttrSpec {
            kind: 1,
            config: 0,
            sample_period_or_freq: 4000,
            sample_type: 0,
            read_format: 0,
            flags: 0,
            branch_sample_type: 0,
            sample_regs_user: 0,
            sample_stack_user: 0,
            sample_regs_intr: 0,
            size: ATTR_SIZE_KNOWN as u32,
        }
    }
}

impl AttrSpec {
    /// Encodes the attr (`size` bytes; fields past `size` are cut, bytes beyond 136 are zero).
    pub fn to_bytes(&self, endian: Endian) -> Vec<u8> {
        let mut b = RecordBuilder::new(endian);
        let flags = match endian {
            Endian::Little => self.flags,
            Endian::Big => self.flags.reverse_bits(),
        };
        b.u32(self.kind)
            .u32(self.size)
            .u64(self.config)
            .u64(self.sample_period_or_freq)
            .u64(self.sample_type)
            .u64(self.read_format)
            .u64(flags)
            .u32(0)
            .u32(0)
            .u64(0)
            .u64(0)
            .u64(self.branch_sample_type)
            .u64(self.sample_regs_user)
            .u32(self.sample_stack_user)
            .u32(0)
            .u64(self.sample_regs_intr);
        let mut bytes = b.into_bytes();
        bytes.resize(self.size as usize, 0);
        bytes
    }
}

/// Appends values in one byte order, and frames records (header size patched on `end`).
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    endian: Endian,
    buf: Vec<u8>,
    open: Option<usize>,
}

impl RecordBuilder {
    /// An empty builder.
    pub fn new(endian: Endian) -> Self {
        RecordBuilder {
            endian,
            buf: Vec::new(),
            open: None,
        }
    }
    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Appends a u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&self.endian.u16_bytes(v));
        self
    }
    /// Appends a u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&self.endian.u32_bytes(v));
        self
    }
    /// Appends a u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&self.endian.u64_bytes(v));
        self
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// Appends `s`, a NUL, and zero padding to a multiple of 8 bytes.
    pub fn cstr(&mut self, s: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(s);
        self.buf.push(0);
        while self.buf.len() % 8 != 0 {
            self.buf.push(0);
        }
        self
    }
    /// Starts a record of type `kind`.
    pub fn begin(&mut self, kind: u32, misc: u16) -> &mut Self {
        self.open = Some(self.buf.len());
        self.u32(kind).u16(misc).u16(0)
    }
    /// Ends the open record, writing its size.
    pub fn end(&mut self) -> &mut Self {
        if let Some(start) = self.open.take() {
            let size = (self.buf.len() - start) as u16;
            let b = self.endian.u16_bytes(size);
            if let Some(dst) = self.buf.get_mut(start + 6..start + 8) {
                dst.copy_from_slice(&b);
            }
        }
        self
    }
    /// Writes one record whose body `body` fills.
    pub fn record(&mut self, kind: u32, misc: u16, body: impl FnOnce(&mut Self)) -> &mut Self {
        self.begin(kind, misc);
        body(self);
        self.end()
    }
    /// Current length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    /// Appends the fixed-size head of a SAMPLE body: the fields of `head` that `sample_type`
    /// selects, in the kernel's order (`perf_output_sample`: IDENTIFIER, IP, TID, TIME, ADDR, ID,
    /// STREAM_ID, CPU, PERIOD). The body's other fields (READ, CALLCHAIN, ...) follow.
    pub fn sample_head(&mut self, sample_type: u64, head: &SampleHeadValues) -> &mut Self {
        let has = |bit: u64| sample_type & bit != 0;
        if has(st::IDENTIFIER) {
            self.u64(head.id);
        }
        if has(st::IP) {
            self.u64(head.ip);
        }
        if has(st::TID) {
            self.u32(head.pid).u32(head.tid);
        }
        if has(st::TIME) {
            self.u64(head.time);
        }
        if has(st::ADDR) {
            self.u64(head.addr);
        }
        if has(st::ID) {
            self.u64(head.id);
        }
        if has(st::STREAM_ID) {
            self.u64(head.stream_id);
        }
        if has(st::CPU) {
            self.u32(head.cpu).u32(0);
        }
        if has(st::PERIOD) {
            self.u64(head.period);
        }
        self
    }
}

/// The values [`RecordBuilder::sample_head`] writes, one per field of a SAMPLE body's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleHeadValues {
    /// IDENTIFIER and ID: the event's id.
    pub id: u64,
    /// IP.
    pub ip: u64,
    /// TID: the process id.
    pub pid: u32,
    /// TID: the thread id.
    pub tid: u32,
    /// TIME.
    pub time: u64,
    /// ADDR.
    pub addr: u64,
    /// STREAM_ID.
    pub stream_id: u64,
    /// CPU (its reserved half is written as 0).
    pub cpu: u32,
    /// PERIOD.
    pub period: u64,
}

impl SampleHeadValues {
    /// Values that are told apart at a glance, each different from the others.
    pub const RECOGNIZABLE: SampleHeadValues = SampleHeadValues {
        id: 7,
        ip: 0x1000,
        pid: 11,
        tid: 12,
        time: 1000,
        addr: 0xa000,
        stream_id: 8,
        cpu: 3,
        period: 99,
    };
}

/// Encodes a perf header string (u32 length, NUL-padded to 64 bytes like perf).
pub fn feature_string(endian: Endian, s: &str) -> Vec<u8> {
    let len = (s.len() + 1).div_ceil(64) * 64;
    let mut b = RecordBuilder::new(endian);
    b.u32(len as u32).bytes(s.as_bytes());
    let mut v = b.into_bytes();
    v.resize(4 + len, 0);
    v
}

/// Assembles a whole perf.data in file or pipe format.
#[derive(Debug, Clone)]
pub struct FileBuilder {
    endian: Endian,
    attrs: Vec<(AttrSpec, Vec<u64>)>,
    records: Vec<u8>,
    features: Vec<(u32, Vec<u8>)>,
    not_finalized: bool,
}

impl FileBuilder {
    /// An empty file.
    pub fn new(endian: Endian) -> Self {
        FileBuilder {
            endian,
            attrs: Vec::new(),
            records: Vec::new(),
            features: Vec::new(),
            not_finalized: false,
        }
    }
    /// Adds an event.
    pub fn attr(mut self, spec: AttrSpec, ids: &[u64]) -> Self {
        self.attrs.push((spec, ids.to_vec()));
        self
    }
    /// Appends records (from a [`RecordBuilder`] of the same byte order).
    pub fn records(mut self, bytes: &[u8]) -> Self {
        self.records.extend_from_slice(bytes);
        self
    }
    /// Adds a feature section payload (sorted by bit on build).
    pub fn feature(mut self, bit: u32, payload: Vec<u8>) -> Self {
        self.features.push((bit, payload));
        self
    }
    /// Writes data.size = 0 and no feature sections, as a killed perf leaves it.
    pub fn not_finalized(mut self) -> Self {
        self.not_finalized = true;
        self
    }

    /// File format ("PERFILE2" / "2ELIFREP").
    pub fn build_file(mut self) -> Vec<u8> {
        let e = self.endian;
        self.features.sort_by_key(|f| f.0);
        let attr_len = self
            .attrs
            .first()
            .map_or(ATTR_SIZE_KNOWN, |a| a.0.size as usize);
        let attr_entry = attr_len as u64 + 16;
        let attrs_offset = 104u64;
        let attrs_size = attr_entry * self.attrs.len() as u64;
        let mut ids_offset = attrs_offset + attrs_size;
        let mut attr_bytes = RecordBuilder::new(e);
        let mut ids_bytes = RecordBuilder::new(e);
        for (spec, ids) in &self.attrs {
            attr_bytes.bytes(&spec.to_bytes(e));
            attr_bytes.u64(ids_offset).u64(ids.len() as u64 * 8);
            for &id in ids {
                ids_bytes.u64(id);
            }
            ids_offset += ids.len() as u64 * 8;
        }
        let data_offset = ids_offset;
        let data_size = self.records.len() as u64;
        let mut bits = [0u64; 4];
        for (bit, _) in &self.features {
            if let Some(w) = bits.get_mut((*bit / 64) as usize) {
                *w |= 1 << (bit % 64);
            }
        }
        let mut out = RecordBuilder::new(e);
        out.bytes(match e {
            Endian::Little => b"PERFILE2",
            Endian::Big => b"2ELIFREP",
        });
        out.u64(104).u64(attr_entry);
        out.u64(attrs_offset).u64(attrs_size);
        out.u64(data_offset)
            .u64(if self.not_finalized { 0 } else { data_size });
        out.u64(0).u64(0);
        if self.not_finalized {
            out.u64(0).u64(0).u64(0).u64(0);
        } else {
            for w in bits {
                out.u64(w);
            }
        }
        out.bytes(&attr_bytes.into_bytes());
        out.bytes(&ids_bytes.into_bytes());
        out.bytes(&self.records);
        if !self.not_finalized {
            let table = data_offset + data_size;
            let mut payload_offset = table + 16 * self.features.len() as u64;
            for (_, payload) in &self.features {
                out.u64(payload_offset).u64(payload.len() as u64);
                payload_offset += payload.len() as u64;
            }
            for (_, payload) in &self.features {
                out.bytes(payload);
            }
        }
        out.into_bytes()
    }

    /// Pipe format: 16-byte header, HEADER_ATTR and HEADER_FEATURE records, then the records.
    pub fn build_pipe(self) -> Vec<u8> {
        let e = self.endian;
        let mut out = RecordBuilder::new(e);
        out.bytes(match e {
            Endian::Little => b"PERFILE2",
            Endian::Big => b"2ELIFREP",
        });
        out.u64(16);
        for (spec, ids) in &self.attrs {
            out.record(rk::HEADER_ATTR, 0, |b| {
                b.bytes(&spec.to_bytes(e));
                for &id in ids {
                    b.u64(id);
                }
            });
        }
        for (bit, payload) in &self.features {
            out.record(rk::HEADER_FEATURE, 0, |b| {
                b.u64(u64::from(*bit)).bytes(payload);
                while b.len() % 8 != 0 {
                    b.u8(0);
                }
            });
        }
        out.bytes(&self.records);
        out.into_bytes()
    }
}
