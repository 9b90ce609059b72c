//! Little-endian → big-endian conversion of attrs and records, field by field in each field's own
//! width, per `include/uapi/linux/perf_event.h` (kernel records, SAMPLE by `sample_type`) and
//! `tools/lib/perf/include/perf/event.h` (perf's own records).

use std::io::Write;

use super::fields::{Result, RewriteError, read, read_u64, to_usize, truncated};
use kprof_perfdata::Endian;
use kprof_perfdata::kinds::{branch, misc, read_format as rf, record as rk, sample as st};

/// What record conversion needs from one `perf_event_attr`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct AttrLayout {
    pub(super) sample_type: u64,
    pub(super) read_format: u64,
    pub(super) sample_id_all: bool,
    pub(super) branch_sample_type: u64,
    pub(super) sample_regs_user: u64,
    pub(super) sample_regs_intr: u64,
    pub(super) ids: Vec<u64>,
}

/// `(offset, width)` of every numeric field of `perf_event_attr` after the bitfield word (at 40),
/// up to PERF_ATTR_SIZE_VER8 (136 bytes).
const ATTR_FIELDS: [(usize, usize); 22] = [
    (0, 4),   // type
    (4, 4),   // size
    (8, 8),   // config
    (16, 8),  // sample_period / sample_freq
    (24, 8),  // sample_type
    (32, 8),  // read_format
    (48, 4),  // wakeup_events / wakeup_watermark
    (52, 4),  // bp_type
    (56, 8),  // bp_addr / config1
    (64, 8),  // bp_len / config2
    (72, 8),  // branch_sample_type
    (80, 8),  // sample_regs_user
    (88, 4),  // sample_stack_user
    (92, 4),  // clockid
    (96, 8),  // sample_regs_intr
    (104, 4), // aux_watermark
    (108, 2), // sample_max_stack
    (110, 2), // __reserved_2
    (112, 4), // aux_sample_size
    (116, 4), // aux_action / __reserved_3
    (120, 8), // sig_data
    (128, 8), // config3
];

/// Offset of the bitfield word (`disabled`, `inherit`, ... `sample_id_all` ...).
const ATTR_BITFIELD: usize = 40;
/// `sample_id_all` in the bitfield word.
const SAMPLE_ID_ALL: u64 = kprof_perfdata::kinds::attr_flag::SAMPLE_ID_ALL;

impl AttrLayout {
    /// Reads the fields the record layouts depend on from an attr of `bytes.len()` bytes.
    pub(super) fn parse(bytes: &[u8], endian: Endian, ids: Vec<u64>) -> AttrLayout {
        let field = |off: usize| read_u64(bytes, off, endian, "attr").unwrap_or(0);
        let flags = field(ATTR_BITFIELD);
        let flags = match endian {
            Endian::Little => flags,
            Endian::Big => flags.reverse_bits(),
        };
        AttrLayout {
            sample_type: field(24),
            read_format: field(32),
            sample_id_all: flags & SAMPLE_ID_ALL != 0,
            branch_sample_type: field(72),
            sample_regs_user: field(80),
            sample_regs_intr: field(96),
            ids,
        }
    }

    /// Size of the `sample_id` trailer (`struct sample_id` in perf_event.h), as perfdata's
    /// writer lays it out.
    pub(super) fn sample_id_size(&self) -> usize {
        kprof_perfdata::writer::SampleIdLayout::new(self.sample_type).size()
    }
}

/// Reverses the bytes of fields of a buffer in place (a little-endian value becomes the same value
/// in big-endian). `base` is the file offset of `buf[0]`, for errors.
pub(super) struct Swapper<'b> {
    buf: &'b mut [u8],
    base: u64,
}

impl<'b> Swapper<'b> {
    pub(super) fn new(buf: &'b mut [u8], base: u64) -> Self {
        Swapper { buf, base }
    }

    /// Swaps the `width`-byte field at `pos`.
    pub(super) fn field(&mut self, pos: usize, width: usize) -> Result<()> {
        let base = self.base;
        pos.checked_add(width)
            .and_then(|end| self.buf.get_mut(pos..end))
            .ok_or(RewriteError::Truncated {
                what: "field",
                offset: base + pos as u64,
            })?
            .reverse();
        Ok(())
    }

    /// Swaps `count` consecutive `width`-byte fields from `pos`; returns the position after them.
    pub(super) fn array(&mut self, pos: usize, width: usize, count: usize) -> Result<usize> {
        for i in 0..count {
            self.field(pos + i * width, width)?;
        }
        Ok(pos + count * width)
    }

    /// A bitfield word: big-endian compilers allocate bits from the most significant end, which
    /// for a little-endian image means reversing the bits of each byte (perf's `swap_bitfield`).
    pub(super) fn bitfield(&mut self, pos: usize, width: usize) -> Result<()> {
        let base = self.base;
        let bytes = pos
            .checked_add(width)
            .and_then(|end| self.buf.get_mut(pos..end))
            .ok_or(RewriteError::Truncated {
                what: "bitfield",
                offset: base + pos as u64,
            })?;
        for b in bytes {
            *b = b.reverse_bits();
        }
        Ok(())
    }

    /// Overwrites the u64 at `pos` with `value` in big-endian.
    pub(super) fn put_be(&mut self, pos: usize, value: u64) -> Result<()> {
        let base = self.base;
        pos.checked_add(8)
            .and_then(|end| self.buf.get_mut(pos..end))
            .ok_or(RewriteError::Truncated {
                what: "u64 field",
                offset: base + pos as u64,
            })?
            .copy_from_slice(&value.to_be_bytes());
        Ok(())
    }

    /// Reads the little-endian value of `width` bytes at `pos` (before it is swapped).
    pub(super) fn peek_le(&self, pos: usize, width: usize, what: &'static str) -> Result<u64> {
        let v = match width {
            2 => read::<2>(self.buf, pos, Endian::Little, what),
            4 => read::<4>(self.buf, pos, Endian::Little, what),
            _ => read::<8>(self.buf, pos, Endian::Little, what),
        };
        v.map_err(|_| RewriteError::Truncated {
            what,
            offset: self.base + pos as u64,
        })
    }

    fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Swaps the attr of `attr_len` bytes at `pos`: fields in their widths (those the attr's size
/// covers), the bitfield word as perf's `swap_bitfield`. Bytes past the known layout stay as they are.
pub(super) fn swap_attr(s: &mut Swapper<'_>, pos: usize, attr_len: usize) -> Result<()> {
    for &(off, width) in &ATTR_FIELDS {
        if off + width <= attr_len {
            s.field(pos + off, width)?;
        }
    }
    if ATTR_BITFIELD + 8 <= attr_len {
        s.bitfield(pos + ATTR_BITFIELD, 8)?;
    }
    Ok(())
}

fn find_attr(attrs: &[AttrLayout], id: u64, offset: u64) -> Result<&AttrLayout> {
    attrs
        .iter()
        .find(|a| a.ids.contains(&id))
        .ok_or(RewriteError::Unsupported {
            what: "sample id that no attr owns",
            offset,
        })
}

fn uniform(attrs: &[AttrLayout]) -> bool {
    attrs
        .first()
        .is_some_and(|f| attrs.iter().all(|a| a.sample_type == f.sample_type))
}

fn all_identifier(attrs: &[AttrLayout]) -> bool {
    !attrs.is_empty() && attrs.iter().all(|a| a.sample_type & st::IDENTIFIER != 0)
}

fn only_attr(attrs: &[AttrLayout], offset: u64) -> Result<&AttrLayout> {
    attrs.first().ok_or(RewriteError::Unsupported {
        what: "records without attrs",
        offset,
    })
}

/// The attr that describes a SAMPLE body (little- or big-endian `endian`).
fn sample_attr<'a>(
    attrs: &'a [AttrLayout],
    body: &[u8],
    endian: Endian,
    offset: u64,
) -> Result<&'a AttrLayout> {
    if attrs.len() <= 1 {
        return only_attr(attrs, offset);
    }
    if all_identifier(attrs) {
        return find_attr(
            attrs,
            read_u64(body, 0, endian, "sample identifier")?,
            offset,
        );
    }
    let first = only_attr(attrs, offset)?;
    if uniform(attrs) && first.sample_type & st::ID != 0 {
        let before = [st::IP, st::TID, st::TIME, st::ADDR]
            .iter()
            .filter(|&&b| first.sample_type & b != 0)
            .count();
        return find_attr(
            attrs,
            read_u64(body, before * 8, endian, "sample id")?,
            offset,
        );
    }
    if uniform(attrs) {
        return Ok(first);
    }
    Err(RewriteError::Unsupported {
        what: "attrs with different sample_type and no IDENTIFIER",
        offset,
    })
}

/// The attr that describes the `sample_id` trailer of a non-sample body.
pub(super) fn trailer_attr<'a>(
    attrs: &'a [AttrLayout],
    body: &[u8],
    endian: Endian,
    offset: u64,
) -> Result<&'a AttrLayout> {
    if attrs.len() <= 1 || uniform(attrs) {
        return only_attr(attrs, offset);
    }
    if all_identifier(attrs) {
        let at = body
            .len()
            .checked_sub(8)
            .ok_or_else(|| truncated("sample_id identifier", offset as usize))?;
        return find_attr(attrs, read_u64(body, at, endian, "identifier")?, offset);
    }
    Err(RewriteError::Unsupported {
        what: "attrs with different sample_type and no IDENTIFIER",
        offset,
    })
}

/// Swaps the `sample_id` trailer (TID pid/tid u32, TIME, ID, STREAM_ID u64, CPU cpu/res u32,
/// IDENTIFIER u64) at `pos`.
fn swap_sample_id(s: &mut Swapper<'_>, mut pos: usize, sample_type: u64) -> Result<()> {
    for bit in st::ID_TRAILER {
        if sample_type & bit == 0 {
            continue;
        }
        if bit == st::TID || bit == st::CPU {
            s.array(pos, 4, 2)?;
        } else {
            s.field(pos, 8)?;
        }
        pos += 8;
    }
    Ok(())
}

/// Position after a NUL-terminated string padded to 8 bytes, starting at `pos`, within `end`.
fn after_padded_string(s: &Swapper<'_>, pos: usize, end: usize) -> Result<usize> {
    let bytes = s.buf.get(pos..end).unwrap_or(&[]);
    let len = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| truncated("string without NUL", s.base as usize + pos))?;
    Ok(pos + (len + 1).div_ceil(8) * 8)
}

/// Number of u64 values a READ (`read_format`) block holds, given its first value.
fn read_values(read_format: u64, first: u64) -> Result<usize> {
    let per_value =
        1 + usize::from(read_format & rf::ID != 0) + usize::from(read_format & rf::LOST != 0);
    let times = usize::from(read_format & rf::TOTAL_TIME_ENABLED != 0)
        + usize::from(read_format & rf::TOTAL_TIME_RUNNING != 0);
    if read_format & rf::GROUP != 0 {
        let nr = usize::try_from(first).unwrap_or(usize::MAX);
        nr.checked_mul(per_value)
            .and_then(|v| v.checked_add(1 + times))
            .ok_or_else(|| truncated("read group", 0))
    } else {
        Ok(per_value + times)
    }
}

/// Swaps a SAMPLE body (from `pos` to the end of the record) in the kernel's
/// `perf_output_sample` order.
fn swap_sample(s: &mut Swapper<'_>, mut pos: usize, attr: &AttrLayout) -> Result<()> {
    let t = attr.sample_type;
    if t & !st::KNOWN != 0 {
        return Err(RewriteError::Unsupported {
            what: "unknown sample_type bit",
            offset: s.base,
        });
    }
    let has = |bit: u64| t & bit != 0;
    let u64s = |s: &mut Swapper<'_>, pos: &mut usize, bits: &[u64]| -> Result<()> {
        for &bit in bits {
            if has(bit) {
                s.field(*pos, 8)?;
                *pos += 8;
            }
        }
        Ok(())
    };
    u64s(s, &mut pos, &[st::IDENTIFIER, st::IP])?;
    if has(st::TID) {
        pos = s.array(pos, 4, 2)?;
    }
    u64s(s, &mut pos, &[st::TIME, st::ADDR, st::ID, st::STREAM_ID])?;
    if has(st::CPU) {
        pos = s.array(pos, 4, 2)?;
    }
    u64s(s, &mut pos, &[st::PERIOD])?;
    if has(st::READ) {
        let first = s.peek_le(pos, 8, "read values")?;
        let n = read_values(attr.read_format, first)?;
        pos = s.array(pos, 8, n)?;
    }
    if has(st::CALLCHAIN) {
        let nr = s.peek_le(pos, 8, "callchain nr")?;
        let nr = to_usize(nr, "callchain nr", pos)?;
        pos = s.array(pos, 8, nr.saturating_add(1))?;
    }
    if has(st::RAW) {
        let size = s.peek_le(pos, 4, "raw size")? as usize;
        s.field(pos, 4)?;
        pos = skip(pos, 4 + size, s.base)?;
    }
    if has(st::BRANCH_STACK) {
        let nr = to_usize(s.peek_le(pos, 8, "branch nr")?, "branch nr", pos)?;
        s.field(pos, 8)?;
        pos += 8;
        if attr.branch_sample_type & branch::HW_INDEX != 0 {
            s.field(pos, 8)?;
            pos += 8;
        }
        for _ in 0..nr {
            // from, to, then the perf_branch_entry bitfield word.
            s.array(pos, 8, 2)?;
            let flags = s.peek_le(pos + 16, 8, "branch flags")?;
            s.put_be(pos + 16, branch_flags_big_endian(flags))?;
            pos += 24;
        }
        if attr.branch_sample_type & branch::COUNTERS != 0 {
            pos = s.array(pos, 8, nr)?;
        }
    }
    if has(st::REGS_USER) {
        pos = swap_regs(s, pos, attr.sample_regs_user)?;
    }
    if has(st::STACK_USER) {
        let size = to_usize(s.peek_le(pos, 8, "stack size")?, "stack size", pos)?;
        s.field(pos, 8)?;
        pos = skip(pos, 8usize.saturating_add(size), s.base)?;
        if size != 0 {
            s.field(pos, 8)?;
            pos += 8;
        }
    }
    // union perf_sample_weight: the kernel writes `full`, and the big-endian declaration orders
    // the WEIGHT_STRUCT members (var3_w, var2_w, var1_dw) so that `full` keeps its value.
    u64s(s, &mut pos, &[st::WEIGHT, st::WEIGHT_STRUCT])?;
    // data_src is a bitfield union whose big-endian declaration reverses the field order, so
    // that the u64 keeps its value: swap it as a u64.
    u64s(s, &mut pos, &[st::DATA_SRC, st::TRANSACTION])?;
    if has(st::REGS_INTR) {
        pos = swap_regs(s, pos, attr.sample_regs_intr)?;
    }
    u64s(
        s,
        &mut pos,
        &[
            st::PHYS_ADDR,
            st::CGROUP,
            st::DATA_PAGE_SIZE,
            st::CODE_PAGE_SIZE,
        ],
    )?;
    if has(st::AUX) {
        let size = to_usize(s.peek_le(pos, 8, "aux size")?, "aux size", pos)?;
        s.field(pos, 8)?;
        pos = skip(pos, 8usize.saturating_add(size), s.base)?;
    }
    if pos != s.len() {
        return Err(RewriteError::Unsupported {
            what: "SAMPLE size does not match its sample_type",
            offset: s.base,
        });
    }
    Ok(())
}

/// The branch flags word as a big-endian compiler lays it out: fields allocated from the most
/// significant bit, each field's value in its usual bit order (as perf's
/// `evsel__bitfield_swap_branch_flags` undoes it).
pub(super) fn branch_flags_big_endian(le_value: u64) -> u64 {
    branch::FLAG_FIELDS.iter().fold(0, |acc, &(pos, width)| {
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        acc | ((le_value >> pos) & mask) << (64 - pos - width)
    })
}

/// `pos + len`, or an error where a size read from the file would overflow.
fn skip(pos: usize, len: usize, base: u64) -> Result<usize> {
    pos.checked_add(len).ok_or(RewriteError::Truncated {
        what: "sample field size",
        offset: base,
    })
}

/// `u64 abi`, then one u64 per bit of `mask` unless abi is 0 (PERF_SAMPLE_REGS_ABI_NONE).
fn swap_regs(s: &mut Swapper<'_>, pos: usize, mask: u64) -> Result<usize> {
    let abi = s.peek_le(pos, 8, "regs abi")?;
    s.field(pos, 8)?;
    if abi == 0 {
        return Ok(pos + 8);
    }
    s.array(pos + 8, 8, mask.count_ones() as usize)
}

/// Swaps one whole record (header included) in `rec`, a little-endian copy. `offset` is where it
/// starts, for errors.
fn swap_record(rec: &mut [u8], offset: u64, attrs: &[AttrLayout]) -> Result<()> {
    let le = Endian::Little;
    let kind = read::<4>(rec, 0, le, "record type")? as u32;
    let misc_bits = read::<2>(rec, 4, le, "record misc")? as u16;
    let body_len = rec.len() - 8;
    // The sample_id trailer of kernel records (and the attr that shapes it).
    let trailer = if kind != rk::SAMPLE && (1..rk::HEADER_ATTR).contains(&kind) {
        let attr = trailer_attr(attrs, rec.get(8..).unwrap_or(&[]), le, offset)?;
        if attr.sample_id_all {
            Some((attr.sample_type, attr.sample_id_size()))
        } else {
            None
        }
    } else {
        None
    };
    let payload_end = match trailer {
        Some((_, size)) => rec
            .len()
            .checked_sub(size)
            .filter(|&end| end >= 8)
            .ok_or_else(|| truncated("sample_id trailer", offset as usize))?,
        None => rec.len(),
    };
    let unknown = RewriteError::UnknownRecord { kind, offset };
    let sample = if kind == rk::SAMPLE {
        Some(sample_attr(attrs, rec.get(8..).unwrap_or(&[]), le, offset)?.clone())
    } else {
        None
    };
    let mut s = Swapper::new(rec, offset);
    s.field(0, 4)?;
    s.field(4, 2)?;
    s.field(6, 2)?;
    let b = 8;
    match kind {
        rk::SAMPLE => {
            if let Some(attr) = &sample {
                swap_sample(&mut s, b, attr)?;
            }
        }
        rk::MMAP => {
            s.array(b, 4, 2)?;
            s.array(b + 8, 8, 3)?;
        }
        rk::MMAP2 => {
            s.array(b, 4, 2)?;
            s.array(b + 8, 8, 3)?;
            if misc_bits & misc::MMAP_BUILD_ID == 0 {
                s.array(b + 32, 4, 2)?;
                s.array(b + 40, 8, 2)?;
            }
            // else: u8 build_id_size, 3 reserved bytes, 20 build-id bytes.
            s.array(b + 56, 4, 2)?; // prot, flags
        }
        rk::COMM | rk::ITRACE_START => {
            s.array(b, 4, 2)?;
        }
        rk::FORK | rk::EXIT => {
            s.array(b, 4, 4)?;
            s.field(b + 16, 8)?;
        }
        rk::LOST
        | rk::AUX_OUTPUT_HW_ID
        | rk::LOST_SAMPLES
        | rk::THROTTLE
        | rk::UNTHROTTLE
        | rk::AUX => {
            let n = match kind {
                rk::LOST => 2,
                rk::THROTTLE | rk::UNTHROTTLE | rk::AUX => 3,
                _ => 1,
            };
            s.array(b, 8, n)?;
        }
        rk::READ => {
            s.array(b, 4, 2)?;
            let n = (payload_end - b - 8) / 8;
            s.array(b + 8, 8, n)?;
        }
        rk::SWITCH => {}
        rk::SWITCH_CPU_WIDE => {
            s.array(b, 4, 2)?;
        }
        rk::NAMESPACES => {
            s.array(b, 4, 2)?;
            let nr = to_usize(s.peek_le(b + 8, 8, "namespaces nr")?, "namespaces nr", b)?;
            s.array(b + 8, 8, nr.saturating_mul(2).saturating_add(1))?;
        }
        rk::KSYMBOL => {
            s.field(b, 8)?;
            s.field(b + 8, 4)?;
            s.array(b + 12, 2, 2)?;
        }
        rk::BPF_EVENT => {
            s.array(b, 2, 2)?;
            s.field(b + 4, 4)?;
        }
        rk::CGROUP => {
            s.field(b, 8)?;
        }
        rk::TEXT_POKE => {
            s.field(b, 8)?;
            s.array(b + 8, 2, 2)?;
        }
        rk::FINISHED_ROUND | rk::FINISHED_INIT => {}
        rk::ID_INDEX | rk::STAT_CONFIG => {
            // All u64: nr, then (id, idx, cpu, tid) entries [and (machine_pid, vcpu) ones] /
            // (tag, val) pairs.
            s.array(b, 8, body_len / 8)?;
        }
        rk::THREAD_MAP => {
            let nr = to_usize(s.peek_le(b, 8, "thread_map nr")?, "thread_map nr", b)?;
            s.field(b, 8)?;
            for i in 0..nr {
                s.field(b + 8 + 24 * i, 8)?; // pid; comm[16] stays
            }
        }
        rk::CPU_MAP => swap_cpu_map(&mut s, b)?,
        rk::EVENT_UPDATE => {
            let update_type = s.peek_le(b, 8, "event_update type")?;
            s.array(b, 8, 2)?;
            match update_type {
                0 | 2 => {}                         // UNIT, NAME: strings
                1 => s.field(b + 16, 8)?,           // SCALE: double
                3 => swap_cpu_map(&mut s, b + 16)?, // CPUS
                _ => return Err(unknown),
            }
        }
        rk::TIME_CONV => {
            // time_shift, time_mult, time_zero [, time_cycles, time_mask, u8 flags...]
            let n = if body_len >= 40 { 5 } else { 3 };
            s.array(b, 8, n)?;
        }
        rk::STAT => {
            s.field(b, 8)?;
            s.array(b + 8, 4, 2)?;
            s.array(b + 16, 8, 3)?;
        }
        rk::STAT_ROUND => {
            s.array(b, 8, 2)?;
        }
        rk::HEADER_BUILD_ID => {
            s.field(b, 4)?;
        }
        _ => return Err(unknown),
    }
    if let Some((sample_type, _)) = trailer {
        swap_sample_id(&mut s, payload_end, sample_type)?;
    }
    // String-bearing records: check the string ends before the trailer (a layout sanity check).
    match kind {
        rk::MMAP => after_padded_string(&s, b + 32, payload_end).map(|_| ()),
        rk::MMAP2 => after_padded_string(&s, b + 64, payload_end).map(|_| ()),
        rk::COMM => after_padded_string(&s, b + 8, payload_end).map(|_| ()),
        _ => Ok(()),
    }
}

/// `struct perf_record_cpu_map_data` at `pos`: u16 type, then CPUS (`u16 nr, u16 cpu[nr]`),
/// MASK (`u16 nr, u16 long_size, u32 mask[nr]` or `..., 4 pad bytes, u64 mask[nr]`) or RANGE_CPUS
/// (u8 any_cpu, u8 pad, u16 start_cpu, u16 end_cpu).
fn swap_cpu_map(s: &mut Swapper<'_>, pos: usize) -> Result<()> {
    let map_type = s.peek_le(pos, 2, "cpu_map type")?;
    s.field(pos, 2)?;
    let p = pos + 2;
    match map_type {
        0 => {
            let nr = s.peek_le(p, 2, "cpu_map nr")? as usize;
            s.array(p, 2, nr + 1)?;
        }
        1 => {
            let nr = s.peek_le(p, 2, "cpu_map nr")? as usize;
            let long_size = s.peek_le(p + 2, 2, "cpu_map long_size")?;
            s.array(p, 2, 2)?;
            match long_size {
                4 => {
                    s.array(p + 4, 4, nr)?;
                }
                8 => {
                    s.array(p + 8, 8, nr)?;
                }
                _ => {
                    return Err(RewriteError::Unsupported {
                        what: "cpu_map mask long_size",
                        offset: s.base + pos as u64,
                    });
                }
            }
        }
        2 => {
            s.array(p + 2, 2, 2)?;
        }
        _ => {
            return Err(RewriteError::Unsupported {
                what: "cpu_map type",
                offset: s.base + pos as u64,
            });
        }
    }
    Ok(())
}

/// Splits the record at the front of `rest` (little-endian): `(kind, whole record)`.
fn split(rest: &[u8], offset: u64) -> Result<(u32, &[u8])> {
    let le = Endian::Little;
    let kind = read::<4>(rest, 0, le, "record type")? as u32;
    let size = read::<2>(rest, 6, le, "record size")? as usize;
    if size < 8 {
        return Err(RewriteError::Truncated {
            what: "record (bad size)",
            offset,
        });
    }
    if matches!(kind, rk::AUXTRACE | rk::HEADER_TRACING_DATA) {
        return Err(RewriteError::Unsupported {
            what: "record with a trailing payload (AUXTRACE / TRACING_DATA)",
            offset,
        });
    }
    let record = rest.get(..size).ok_or(RewriteError::Truncated {
        what: "record",
        offset,
    })?;
    Ok((kind, record))
}

/// The payload of a COMPRESSED (81: the whole body) or COMPRESSED2 (83: u64 data_size, data) record.
fn compressed_payload(kind: u32, record: &[u8], offset: u64) -> Result<&[u8]> {
    let body = record.get(8..).unwrap_or(&[]);
    if kind == rk::COMPRESSED {
        return Ok(body);
    }
    let size = to_usize(
        read_u64(body, 0, Endian::Little, "compressed2 size")?,
        "compressed2 size",
        offset as usize,
    )?;
    body.get(8..8usize.saturating_add(size))
        .ok_or(RewriteError::Truncated {
            what: "compressed2 data",
            offset,
        })
}

/// Swaps every record of a little-endian record stream; compressed records are expanded (one zstd
/// stream across them, as perf writes it) and their records swapped and written plain.
pub(super) fn swap_stream(data: &[u8], base: u64, attrs: &[AttrLayout]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let mut decoder = zstd::stream::write::Decoder::new(Vec::new())
        .map_err(|e| RewriteError::Decompress(e.to_string()))?;
    let mut pending: Vec<u8> = Vec::new();
    let mut stream_offset = 0u64;
    let mut pos = 0usize;
    while pos < data.len() {
        let offset = base + pos as u64;
        let (kind, record) = split(data.get(pos..).unwrap_or(&[]), offset)?;
        pos += record.len();
        if kind == rk::COMPRESSED || kind == rk::COMPRESSED2 {
            let payload = compressed_payload(kind, record, offset)?;
            decoder
                .write_all(payload)
                .and_then(|()| decoder.flush())
                .map_err(|e| RewriteError::Decompress(e.to_string()))?;
            pending.append(decoder.get_mut());
            // Swap every whole record decoded so far; a partial one waits for the next chunk.
            let mut used = 0usize;
            while pending.len() - used >= 8 {
                let size = read::<2>(&pending, used + 6, Endian::Little, "record size")? as usize;
                if pending.len() - used < size {
                    break;
                }
                let (inner_kind, inner) = split(pending.get(used..).unwrap_or(&[]), stream_offset)?;
                if inner_kind == rk::COMPRESSED || inner_kind == rk::COMPRESSED2 {
                    return Err(RewriteError::Unsupported {
                        what: "compressed record inside compressed data",
                        offset: stream_offset,
                    });
                }
                let mut copy = inner.to_vec();
                swap_record(&mut copy, stream_offset, attrs)?;
                out.extend_from_slice(&copy);
                used += inner.len();
                stream_offset += inner.len() as u64;
            }
            pending.drain(..used);
            continue;
        }
        let mut copy = record.to_vec();
        swap_record(&mut copy, offset, attrs)?;
        out.extend_from_slice(&copy);
    }
    if !pending.is_empty() {
        return Err(RewriteError::Truncated {
            what: "decompressed data ends inside a record",
            offset: stream_offset,
        });
    }
    Ok(out)
}
