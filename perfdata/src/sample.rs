//! SAMPLE record bodies and the `sample_id` trailer of other records: fields appear in
//! `sample_type` bit order as laid out in `include/uapi/linux/perf_event.h`.

use crate::attr::EventAttr;
use crate::endian::{Cursor, Endian, U64Slice};
use crate::error::{Error, Result};
use crate::kinds::{branch, misc, read_format, sample as st};

/// Where the sampled code ran, from `misc & PERF_RECORD_MISC_CPUMODE_MASK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuMode {
    /// 0 or an unassigned value.
    Unknown,
    /// 1: kernel.
    Kernel,
    /// 2: user space.
    User,
    /// 3: hypervisor.
    Hypervisor,
    /// 4: guest kernel.
    GuestKernel,
    /// 5: guest user space.
    GuestUser,
}

impl CpuMode {
    /// Decodes the cpumode bits of a record's `misc`.
    pub fn from_misc(misc_bits: u16) -> CpuMode {
        match misc_bits & misc::CPUMODE_MASK {
            1 => CpuMode::Kernel,
            2 => CpuMode::User,
            3 => CpuMode::Hypervisor,
            4 => CpuMode::GuestKernel,
            5 => CpuMode::GuestUser,
            _ => CpuMode::Unknown,
        }
    }
}

/// A register dump (REGS_USER / REGS_INTR): one value per set bit of `mask`, lowest bit first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regs<'a> {
    /// `PERF_SAMPLE_REGS_ABI_*`: 0 none (no values), 1 32-bit, 2 64-bit.
    pub abi: u64,
    /// The attr's register mask.
    pub mask: u64,
    /// The dumped values.
    pub values: U64Slice<'a>,
}

impl Regs<'_> {
    /// The value of register number `reg` (arch numbering, `perf_regs.h`), if it was dumped.
    pub fn get(&self, reg: u32) -> Option<u64> {
        let bit = 1u64.checked_shl(reg)?;
        if self.mask & bit == 0 {
            return None;
        }
        let index = (self.mask & (bit - 1)).count_ones() as usize;
        self.values.get(index)
    }
}

/// READ values (`read_format`): either one counter or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadValues<'a> {
    /// PERF_FORMAT_TOTAL_TIME_ENABLED.
    pub time_enabled: Option<u64>,
    /// PERF_FORMAT_TOTAL_TIME_RUNNING.
    pub time_running: Option<u64>,
    /// `read_format` bits used to lay out `entries`.
    pub read_format: u64,
    /// The counter of a non-group read.
    pub single: Option<ReadValue>,
    /// Group reads: flat `(value, [id], [lost])` tuples.
    pub entries: U64Slice<'a>,
}

/// One counter of a [`ReadValues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadValue {
    /// Counter value.
    pub value: u64,
    /// Sample id (PERF_FORMAT_ID).
    pub id: Option<u64>,
    /// Lost samples (PERF_FORMAT_LOST).
    pub lost: Option<u64>,
}

impl ReadValues<'_> {
    fn stride(&self) -> usize {
        1 + usize::from(self.read_format & read_format::ID != 0)
            + usize::from(self.read_format & read_format::LOST != 0)
    }
    /// The counters (one for a non-group read).
    pub fn values(&self) -> impl Iterator<Item = ReadValue> + '_ {
        let single = self.single;
        let stride = self.stride();
        let has_id = self.read_format & read_format::ID != 0;
        let has_lost = self.read_format & read_format::LOST != 0;
        (0..self.entries.len() / stride)
            .map(move |i| {
                let base = i * stride;
                ReadValue {
                    value: self.entries.get(base).unwrap_or(0),
                    id: has_id.then(|| self.entries.get(base + 1).unwrap_or(0)),
                    lost: has_lost.then(|| self.entries.get(base + stride - 1).unwrap_or(0)),
                }
            })
            .chain(single)
    }
}

/// BRANCH_STACK contents (parsed past; entries kept raw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchStack<'a> {
    /// `hw_idx` when `branch_sample_type` has HW_INDEX.
    pub hw_idx: Option<u64>,
    /// `nr` × `(from, to, flags)`.
    pub entries: U64Slice<'a>,
    /// `nr` counters when `branch_sample_type` has COUNTERS.
    pub counters: Option<U64Slice<'a>>,
}

impl BranchStack<'_> {
    /// Number of branch entries.
    pub fn len(&self) -> usize {
        self.entries.len() / 3
    }
    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Entry `i` as `(from, to, flags)`, `flags` in the kernel's little-endian bit layout
    /// (bit 0 `mispred`, bits 4..20 `cycles`, ...) whatever the file's byte order.
    pub fn get(&self, i: usize) -> Option<(u64, u64, u64)> {
        let b = i.checked_mul(3)?;
        let flags = self.entries.get(b + 2)?;
        let flags = match self.entries.endian() {
            Endian::Little => flags,
            Endian::Big => branch_flags_from_big_endian(flags),
        };
        Some((self.entries.get(b)?, self.entries.get(b + 1)?, flags))
    }
}

/// A big-endian compiler allocates the flag fields from the most significant bit, each keeping its
/// bit order: move every field back to its little-endian position.
fn branch_flags_from_big_endian(value: u64) -> u64 {
    branch::FLAG_FIELDS.iter().fold(0, |acc, &(pos, width)| {
        let mask = (1u64 << width) - 1;
        acc | ((value >> (64 - pos - width)) & mask) << pos
    })
}

/// A decoded SAMPLE record. Fields are `None` when the attr's `sample_type` lacks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// Index into [`PerfFile::attrs`](crate::PerfFile::attrs) of the event that produced it.
    pub attr_index: usize,
    /// Where the sampled code ran.
    pub cpumode: CpuMode,
    /// PERF_SAMPLE_IDENTIFIER / PERF_SAMPLE_ID value.
    pub id: Option<u64>,
    /// Instruction pointer.
    pub ip: Option<u64>,
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// Timestamp (perf clock, ns).
    pub time: Option<u64>,
    /// Data address.
    pub addr: Option<u64>,
    /// Stream id.
    pub stream_id: Option<u64>,
    /// CPU number.
    pub cpu: Option<u32>,
    /// Sample period (weight of the sample).
    pub period: Option<u64>,
    /// READ values.
    pub read: Option<ReadValues<'a>>,
    /// Raw callchain entries, including `PERF_CONTEXT_*` markers.
    pub callchain: Option<U64Slice<'a>>,
    /// RAW payload (tracepoint data).
    pub raw: Option<&'a [u8]>,
    /// Branch stack.
    pub branch_stack: Option<BranchStack<'a>>,
    /// User registers.
    pub regs_user: Option<Regs<'a>>,
    /// The valid (`dyn_size`) bytes of the user stack copy.
    pub stack_user: Option<&'a [u8]>,
    /// WEIGHT or WEIGHT_STRUCT value.
    pub weight: Option<u64>,
    /// Data source.
    pub data_src: Option<u64>,
    /// Transaction flags.
    pub transaction: Option<u64>,
    /// Registers at interrupt.
    pub regs_intr: Option<Regs<'a>>,
    /// Physical data address.
    pub phys_addr: Option<u64>,
    /// Cgroup id.
    pub cgroup: Option<u64>,
    /// Data page size.
    pub data_page_size: Option<u64>,
    /// Code page size.
    pub code_page_size: Option<u64>,
    /// AUX data.
    pub aux: Option<&'a [u8]>,
}

/// Fails with the lowest `sample_type` bit this crate does not know.
pub(crate) fn check_sample_type(sample_type: u64, offset: u64) -> Result<()> {
    let unknown = sample_type & !st::KNOWN;
    if unknown != 0 {
        return Err(Error::UnsupportedSampleType {
            offset,
            bit: unknown.trailing_zeros(),
        });
    }
    Ok(())
}

fn opt_u64(c: &mut Cursor<'_>, has: bool, what: &'static str) -> Result<Option<u64>> {
    if has { c.u64(what).map(Some) } else { Ok(None) }
}

fn regs<'a>(c: &mut Cursor<'a>, mask: u64, what: &'static str) -> Result<Regs<'a>> {
    let abi = c.u64(what)?;
    let values = if abi == 0 {
        U64Slice::empty()
    } else {
        c.u64_slice(u64::from(mask.count_ones()), what)?
    };
    Ok(Regs { abi, mask, values })
}

/// The fixed-size fields at the start of a SAMPLE (IDENTIFIER to PERIOD): who, when, where and
/// how much, read without decoding the variable-size rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleHead {
    /// Index into [`PerfFile::attrs`](crate::PerfFile::attrs) of the event that produced it.
    pub attr_index: usize,
    /// Where the sampled code ran.
    pub cpumode: CpuMode,
    /// Instruction pointer.
    pub ip: Option<u64>,
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// Timestamp (perf clock, ns).
    pub time: Option<u64>,
    /// CPU number.
    pub cpu: Option<u32>,
    /// Sample period (weight of the sample).
    pub period: Option<u64>,
}

/// The fixed-size leading fields of a SAMPLE body, in `sample_type` order.
#[derive(Debug, Clone, Copy)]
struct LeadingFields {
    cpumode: CpuMode,
    identifier: Option<u64>,
    ip: Option<u64>,
    pid: Option<u32>,
    tid: Option<u32>,
    time: Option<u64>,
    addr: Option<u64>,
    id: Option<u64>,
    stream_id: Option<u64>,
    cpu: Option<u32>,
    period: Option<u64>,
}

fn parse_leading_fields(
    c: &mut Cursor<'_>,
    offset: u64,
    misc_bits: u16,
    attr: &EventAttr,
) -> Result<LeadingFields> {
    let t = attr.sample_type;
    check_sample_type(t, offset)?;
    let has = |bit: u64| t & bit != 0;
    let identifier = opt_u64(c, has(st::IDENTIFIER), "sample identifier")?;
    let ip = opt_u64(c, has(st::IP), "sample ip")?;
    let (pid, tid) = if has(st::TID) {
        (Some(c.u32("sample pid")?), Some(c.u32("sample tid")?))
    } else {
        (None, None)
    };
    let time = opt_u64(c, has(st::TIME), "sample time")?;
    let addr = opt_u64(c, has(st::ADDR), "sample addr")?;
    let id = opt_u64(c, has(st::ID), "sample id")?;
    let stream_id = opt_u64(c, has(st::STREAM_ID), "sample stream_id")?;
    let cpu = if has(st::CPU) {
        let cpu = c.u32("sample cpu")?;
        c.skip(4, "sample cpu reserved")?;
        Some(cpu)
    } else {
        None
    };
    let period = opt_u64(c, has(st::PERIOD), "sample period")?;
    Ok(LeadingFields {
        cpumode: CpuMode::from_misc(misc_bits),
        identifier,
        ip,
        pid,
        tid,
        time,
        addr,
        id,
        stream_id,
        cpu,
        period,
    })
}

/// Decodes the head of a SAMPLE body (see [`SampleHead`]).
pub(crate) fn parse_sample_head(
    body: &[u8],
    offset: u64,
    misc_bits: u16,
    endian: Endian,
    attr: &EventAttr,
    attr_index: usize,
) -> Result<SampleHead> {
    let mut c = Cursor::new(body, offset + 8, endian);
    let sample = parse_leading_fields(&mut c, offset, misc_bits, attr)?;
    Ok(SampleHead {
        attr_index,
        cpumode: sample.cpumode,
        ip: sample.ip,
        pid: sample.pid,
        tid: sample.tid,
        time: sample.time,
        cpu: sample.cpu,
        period: sample.period,
    })
}

/// Decodes a SAMPLE body (bytes after the 8-byte header) for `attr`. `offset` is the record start.
// Inlined into the record decoder (another module, so maybe another codegen unit): returned
// through a call, the large `Sample` would be copied once more per sample.
#[inline]
pub(crate) fn parse_sample<'a>(
    body: &'a [u8],
    offset: u64,
    misc_bits: u16,
    endian: Endian,
    attr: &EventAttr,
    attr_index: usize,
) -> Result<Sample<'a>> {
    let mut c = Cursor::new(body, offset + 8, endian);
    let head = parse_leading_fields(&mut c, offset, misc_bits, attr)?;
    let t = attr.sample_type;
    let has = |bit: u64| t & bit != 0;
    let read = if has(st::READ) {
        let rf = attr.read_format;
        let per_value =
            1 + u64::from(rf & read_format::ID != 0) + u64::from(rf & read_format::LOST != 0);
        if rf & read_format::GROUP != 0 {
            let nr = c.u64("sample read nr")?;
            let time_enabled = opt_u64(
                &mut c,
                rf & read_format::TOTAL_TIME_ENABLED != 0,
                "sample read time_enabled",
            )?;
            let time_running = opt_u64(
                &mut c,
                rf & read_format::TOTAL_TIME_RUNNING != 0,
                "sample read time_running",
            )?;
            let count = nr.checked_mul(per_value).ok_or(Error::Truncated {
                what: "sample read values",
                offset: c.offset(),
                needed: usize::MAX,
            })?;
            let entries = c.u64_slice(count, "sample read values")?;
            Some(ReadValues {
                time_enabled,
                time_running,
                read_format: rf,
                single: None,
                entries,
            })
        } else {
            let value = c.u64("sample read value")?;
            let time_enabled = opt_u64(
                &mut c,
                rf & read_format::TOTAL_TIME_ENABLED != 0,
                "sample read time_enabled",
            )?;
            let time_running = opt_u64(
                &mut c,
                rf & read_format::TOTAL_TIME_RUNNING != 0,
                "sample read time_running",
            )?;
            let id = opt_u64(&mut c, rf & read_format::ID != 0, "sample read id")?;
            let lost = opt_u64(&mut c, rf & read_format::LOST != 0, "sample read lost")?;
            Some(ReadValues {
                time_enabled,
                time_running,
                read_format: rf,
                single: Some(ReadValue { value, id, lost }),
                entries: U64Slice::empty(),
            })
        }
    } else {
        None
    };
    let callchain = if has(st::CALLCHAIN) {
        let nr = c.u64("callchain nr")?;
        Some(c.u64_slice(nr, "callchain entries")?)
    } else {
        None
    };
    let raw = if has(st::RAW) {
        let size = c.u32("raw size")?;
        Some(c.bytes(size as usize, "raw data")?)
    } else {
        None
    };
    let branch_stack = if has(st::BRANCH_STACK) {
        let nr = c.u64("branch_stack nr")?;
        let hw_idx = opt_u64(
            &mut c,
            attr.branch_sample_type & branch::HW_INDEX != 0,
            "branch_stack hw_idx",
        )?;
        let count = nr.checked_mul(3).ok_or(Error::Truncated {
            what: "branch_stack entries",
            offset: c.offset(),
            needed: usize::MAX,
        })?;
        let entries = c.u64_slice(count, "branch_stack entries")?;
        let counters = if attr.branch_sample_type & branch::COUNTERS != 0 {
            Some(c.u64_slice(nr, "branch_stack counters")?)
        } else {
            None
        };
        Some(BranchStack {
            hw_idx,
            entries,
            counters,
        })
    } else {
        None
    };
    let regs_user = if has(st::REGS_USER) {
        Some(regs(&mut c, attr.sample_regs_user, "regs_user")?)
    } else {
        None
    };
    let stack_user = if has(st::STACK_USER) {
        let size = c.u64("stack_user size")?;
        let data = c.bytes_u64(size, "stack_user data")?;
        if size != 0 {
            let dyn_size = c.u64("stack_user dyn_size")?;
            let valid = usize::try_from(dyn_size)
                .unwrap_or(usize::MAX)
                .min(data.len());
            Some(data.get(..valid).unwrap_or(data))
        } else {
            Some(data)
        }
    } else {
        None
    };
    let weight = opt_u64(
        &mut c,
        has(st::WEIGHT) || has(st::WEIGHT_STRUCT),
        "sample weight",
    )?;
    let data_src = opt_u64(&mut c, has(st::DATA_SRC), "sample data_src")?;
    let transaction = opt_u64(&mut c, has(st::TRANSACTION), "sample transaction")?;
    let regs_intr = if has(st::REGS_INTR) {
        Some(regs(&mut c, attr.sample_regs_intr, "regs_intr")?)
    } else {
        None
    };
    let phys_addr = opt_u64(&mut c, has(st::PHYS_ADDR), "sample phys_addr")?;
    let cgroup = opt_u64(&mut c, has(st::CGROUP), "sample cgroup")?;
    let data_page_size = opt_u64(&mut c, has(st::DATA_PAGE_SIZE), "sample data_page_size")?;
    let code_page_size = opt_u64(&mut c, has(st::CODE_PAGE_SIZE), "sample code_page_size")?;
    let aux = if has(st::AUX) {
        let size = c.u64("aux size")?;
        Some(c.bytes_u64(size, "aux data")?)
    } else {
        None
    };
    Ok(Sample {
        attr_index,
        cpumode: head.cpumode,
        id: head.identifier.or(head.id),
        ip: head.ip,
        pid: head.pid,
        tid: head.tid,
        time: head.time,
        addr: head.addr,
        stream_id: head.stream_id,
        cpu: head.cpu,
        period: head.period,
        read,
        callchain,
        raw,
        branch_stack,
        regs_user,
        stack_user,
        weight,
        data_src,
        transaction,
        regs_intr,
        phys_addr,
        cgroup,
        data_page_size,
        code_page_size,
        aux,
    })
}

/// The `sample_id` trailer that non-sample records carry when `sample_id_all` is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleId {
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// Timestamp.
    pub time: Option<u64>,
    /// Sample id (ID or IDENTIFIER).
    pub id: Option<u64>,
    /// Stream id.
    pub stream_id: Option<u64>,
    /// CPU.
    pub cpu: Option<u32>,
}

/// Size in bytes of the `sample_id` trailer for `sample_type`.
pub(crate) fn sample_id_size(sample_type: u64) -> usize {
    st::ID_TRAILER
        .iter()
        .filter(|&&b| sample_type & b != 0)
        .count()
        * 8
}

/// Decodes the trailer at the end of `body` (a non-sample record body).
pub(crate) fn parse_sample_id(
    body: &[u8],
    body_offset: u64,
    endian: Endian,
    sample_type: u64,
) -> Result<SampleId> {
    let size = sample_id_size(sample_type);
    let start = body.len().checked_sub(size).ok_or(Error::Truncated {
        what: "sample_id trailer",
        offset: body_offset,
        needed: size,
    })?;
    let has = |bit: u64| sample_type & bit != 0;
    let mut c = Cursor::new(
        body.get(start..).unwrap_or(&[]),
        body_offset + start as u64,
        endian,
    );
    let mut out = SampleId::default();
    if has(st::TID) {
        out.pid = Some(c.u32("sample_id pid")?);
        out.tid = Some(c.u32("sample_id tid")?);
    }
    out.time = opt_u64(&mut c, has(st::TIME), "sample_id time")?;
    out.id = opt_u64(&mut c, has(st::ID), "sample_id id")?;
    out.stream_id = opt_u64(&mut c, has(st::STREAM_ID), "sample_id stream_id")?;
    if has(st::CPU) {
        out.cpu = Some(c.u32("sample_id cpu")?);
        c.skip(4, "sample_id cpu reserved")?;
    }
    if let Some(identifier) = opt_u64(&mut c, has(st::IDENTIFIER), "sample_id identifier")? {
        out.id = Some(identifier);
    }
    Ok(out)
}
