//! Test tools that rewrite a real FILE-mode perf.data (`PERFILE2`) byte buffer into variants other
//! perf versions and machines produce: a big-endian copy ([`to_big_endian`]), attrs carrying fields
//! from a future perf ([`with_attr_padding`]) and a record of a type nobody knows yet
//! ([`with_unknown_record`]). The layouts come from the kernel (`include/uapi/linux/perf_event.h`)
//! and perf (`tools/perf/util/header.c`, `session.c`), not from this crate's reader, so a reader bug
//! does not cancel itself out.
//!
//! Big-endian conversion works in place on a copy: every numeric field's bytes are reversed in its
//! own width (a little-endian value becomes the same value in big-endian), the attr bitfield word
//! gets each byte's bits reversed (perf's `swap_bitfield`, which is what a big-endian compiler does
//! for 1-bit fields; the 2-bit `precise_ip` comes out bit-reversed, as perf itself assumes), the
//! branch-entry flags word has its fields mirrored with their bit order kept (perf's
//! `evsel__bitfield_swap_branch_flags`), and strings and byte arrays stay as they are. Feature sections are converted as perf's `process_*` functions read them; those listed
//! in [`DROPPED_FEATURES`] (and any unknown bit) are removed from the copy instead.

use kprof_perfdata::Endian;
use kprof_perfdata::kinds::{feature as feat, record as rk};

mod features;
mod fields;
mod records;
#[cfg(test)]
mod tests;

pub use features::DROPPED_FEATURES;
pub use fields::{Result, RewriteError};
use fields::{read, read_u64, to_usize, truncated, write_u64};
use records::{AttrLayout, swap_stream};

/// Offset of `perf_file_header.attr_size`.
const HDR_ATTR_SIZE: usize = 0x10;
/// Offset of the attrs section descriptor.
const HDR_ATTRS: usize = 0x18;
/// Offset of the data section descriptor.
const HDR_DATA: usize = 0x28;
/// Offset of the event_types section descriptor.
const HDR_EVENT_TYPES: usize = 0x38;
/// Offset of the `adds_features` bitmap (4 × u64).
const HDR_FEATURES: usize = 0x48;
/// Most junk bytes [`with_attr_padding`] appends to an attr.
const MAX_ATTR_PADDING: usize = 1 << 16;
/// Size of `perf_file_header`.
const HDR_SIZE: usize = kprof_perfdata::FILE_HEADER_SIZE as usize;

/// One attr entry of the attrs section.
#[derive(Debug, Clone)]
struct AttrEntry {
    /// File offset of the attr.
    pos: usize,
    /// What the record parsers need to know about it.
    layout: AttrLayout,
    /// File offset of its ids section descriptor (right after the attr bytes).
    ids_slot: usize,
    /// Its ids section.
    ids: (usize, usize),
}

/// One feature section.
#[derive(Debug, Clone, Copy)]
struct FeatureEntry {
    bit: u32,
    /// File offset of its (offset, size) descriptor.
    slot: usize,
    offset: usize,
    size: usize,
}

/// The layout of a file-mode perf.data, read in its own byte order.
#[derive(Debug, Clone)]
struct FileLayout {
    endian: Endian,
    attr_size: usize,
    attrs_section: (usize, usize),
    data: (usize, usize),
    event_types: (usize, usize),
    attrs: Vec<AttrEntry>,
    features: Vec<FeatureEntry>,
}

impl FileLayout {
    fn parse(file: &[u8]) -> Result<FileLayout> {
        let endian = match file.get(..8) {
            Some(b"PERFILE2") => Endian::Little,
            Some(b"2ELIFREP") => Endian::Big,
            _ => return Err(RewriteError::NotFileMode("bad magic")),
        };
        if read_u64(file, 8, endian, "header size")? != HDR_SIZE as u64 {
            return Err(RewriteError::NotFileMode(
                "header size is not 104 (pipe mode?)",
            ));
        }
        let section = |at: usize, what: &'static str| -> Result<(usize, usize)> {
            let off = to_usize(read_u64(file, at, endian, what)?, what, at)?;
            let size = to_usize(read_u64(file, at + 8, endian, what)?, what, at)?;
            match off.checked_add(size) {
                Some(end) if end <= file.len() => Ok((off, size)),
                _ => Err(truncated(what, at)),
            }
        };
        let attr_size = to_usize(
            read_u64(file, HDR_ATTR_SIZE, endian, "attr_size")?,
            "attr_size",
            HDR_ATTR_SIZE,
        )?;
        let attrs_section = section(HDR_ATTRS, "attrs section")?;
        let data = section(HDR_DATA, "data section")?;
        let event_types = section(HDR_EVENT_TYPES, "event_types section")?;
        if data.1 == 0 {
            return Err(RewriteError::NotFileMode("data size 0 (not finalized)"));
        }
        let mut feature_bits = [0u64; 4];
        for (i, word) in feature_bits.iter_mut().enumerate() {
            *word = read_u64(file, HDR_FEATURES + 8 * i, endian, "adds_features")?;
        }
        if attr_size < kprof_perfdata::ATTR_SIZE_VER0 + 16 {
            return Err(truncated("attr entry", HDR_ATTR_SIZE));
        }
        let attr_len = attr_size - 16;
        let mut attrs = Vec::new();
        for i in 0..attrs_section.1 / attr_size {
            let pos = attrs_section.0 + i * attr_size;
            let bytes = file
                .get(pos..pos + attr_len)
                .ok_or_else(|| truncated("attr", pos))?;
            let ids_slot = pos + attr_len;
            let ids = section(ids_slot, "attr ids section")?;
            let mut id_values = Vec::with_capacity(ids.1 / 8);
            for k in 0..ids.1 / 8 {
                id_values.push(read_u64(file, ids.0 + 8 * k, endian, "attr id")?);
            }
            attrs.push(AttrEntry {
                pos,
                layout: AttrLayout::parse(bytes, endian, id_values),
                ids_slot,
                ids,
            });
        }
        let mut features = Vec::new();
        let mut slot = data.0 + data.1;
        for bit in 0..256u32 {
            let word = feature_bits.get((bit / 64) as usize).copied().unwrap_or(0);
            if word & (1 << (bit % 64)) == 0 {
                continue;
            }
            let (offset, size) = section(slot, "feature section")?;
            features.push(FeatureEntry {
                bit,
                slot,
                offset,
                size,
            });
            slot += 16;
        }
        Ok(FileLayout {
            endian,
            attr_size,
            attrs_section,
            data,
            event_types,
            attrs,
            features,
        })
    }

    fn attr_layouts(&self) -> Vec<AttrLayout> {
        self.attrs.iter().map(|a| a.layout.clone()).collect()
    }

    /// File offsets of every stored section offset: header sections, ids sections, feature table.
    fn offset_slots(&self) -> Vec<usize> {
        let mut slots = vec![HDR_ATTRS, HDR_DATA];
        if self.event_types.1 > 0 {
            slots.push(HDR_EVENT_TYPES);
        }
        slots.extend(self.attrs.iter().map(|a| a.ids_slot));
        slots.extend(self.features.iter().map(|f| f.slot));
        slots
    }
}

/// Bytes inserted into a file at `at` (an offset of the original).
struct Insertion {
    at: usize,
    bytes: Vec<u8>,
}

/// How far original offset `old` moves: by every insertion before it (`at < old`), or also at it
/// when `inclusive` (a stored field at an insertion point follows the inserted bytes).
fn moved(insertions: &[Insertion], old: usize, inclusive: bool) -> usize {
    insertions
        .iter()
        .filter(|i| i.at < old || (inclusive && i.at == old))
        .map(|i| i.bytes.len())
        .sum()
}

/// Applies `insertions` (sorted by `at`) and moves every stored section offset that points past an
/// insertion point. Sizes are the caller's to fix.
fn insert(file: &[u8], layout: &FileLayout, insertions: &[Insertion]) -> Result<Vec<u8>> {
    let added: usize = insertions.iter().map(|i| i.bytes.len()).sum();
    let mut out = Vec::with_capacity(file.len() + added);
    let mut from = 0usize;
    for ins in insertions {
        let chunk = file
            .get(from..ins.at)
            .ok_or_else(|| truncated("insertion point", ins.at))?;
        out.extend_from_slice(chunk);
        out.extend_from_slice(&ins.bytes);
        from = ins.at;
    }
    out.extend_from_slice(file.get(from..).unwrap_or(&[]));
    let e = layout.endian;
    for slot in layout.offset_slots() {
        let value = to_usize(
            read_u64(file, slot, e, "section offset")?,
            "section offset",
            slot,
        )?;
        let new_value = value + moved(insertions, value, false);
        write_u64(
            &mut out,
            slot + moved(insertions, slot, true),
            e,
            new_value as u64,
        )?;
    }
    Ok(out)
}

/// Non-zero filler that no perf field would hold by accident: `0xa5, 0xa6, ...`.
fn junk(len: usize) -> Vec<u8> {
    (0..len).map(|i| 0xa5u8.wrapping_add(i as u8) | 1).collect()
}

/// Grows every attr by `extra` bytes of non-zero junk, as a future perf with a larger
/// `perf_event_attr` would write it. In the attrs section the junk follows each attr's bytes
/// (before its ids section descriptor) and the header's `attr_size` grows; the attrs EVENT_DESC
/// repeats grow the same way (its attr size and section size too). Each attr's own `size` field
/// grows by `extra`, and every section after an insertion moves. Works on either byte order.
pub fn with_attr_padding(file: &[u8], extra: usize) -> Result<Vec<u8>> {
    if extra > MAX_ATTR_PADDING {
        return Err(RewriteError::Unsupported {
            what: "attr padding over 64 KiB",
            offset: HDR_ATTR_SIZE as u64,
        });
    }
    let layout = FileLayout::parse(file)?;
    let e = layout.endian;
    let attr_len = layout.attr_size - 16;
    let mut insertions: Vec<Insertion> = Vec::new();
    // Original offsets of the u32 `size` field of every attr, with its new value.
    let mut size_fields: Vec<(usize, usize)> = Vec::new();
    for attr in &layout.attrs {
        insertions.push(Insertion {
            at: attr.ids_slot,
            bytes: junk(extra),
        });
        size_fields.push((attr.pos + 4, attr_len + extra));
    }
    // EVENT_DESC: u32 nr, u32 attr_size, then per event: attr, u32 nr_ids, string, nr_ids ids.
    let event_desc = layout.features.iter().find(|f| f.bit == feat::EVENT_DESC);
    let mut desc_attr_size = 0usize;
    if let Some(desc) = event_desc {
        let nr = read::<4>(file, desc.offset, e, "event_desc nr")? as usize;
        desc_attr_size = read::<4>(file, desc.offset + 4, e, "event_desc attr_size")? as usize;
        let end = desc.offset + desc.size;
        let mut pos = desc.offset + 8;
        for _ in 0..nr {
            size_fields.push((pos + 4, desc_attr_size + extra));
            pos += desc_attr_size;
            insertions.push(Insertion {
                at: pos,
                bytes: junk(extra),
            });
            let nr_ids = read::<4>(file, pos, e, "event_desc nr_ids")? as usize;
            let name_len = read::<4>(file, pos + 4, e, "event_desc name")? as usize;
            pos += 8 + name_len + 8 * nr_ids;
            if pos > end {
                return Err(truncated("event_desc entry", pos));
            }
        }
    }
    insertions.sort_by_key(|i| i.at);
    let mut out = insert(file, &layout, &insertions)?;
    let new_attr_size = (layout.attr_size + extra) as u64;
    write_u64(&mut out, HDR_ATTR_SIZE, e, new_attr_size)?;
    let attrs_size = (layout.attrs.len() as u64) * new_attr_size;
    write_u64(&mut out, HDR_ATTRS + 8, e, attrs_size)?;
    let mut put_u32 = |old_pos: usize, value: usize| -> Result<()> {
        let value = u32::try_from(value).map_err(|_| RewriteError::Unsupported {
            what: "attr size beyond u32",
            offset: old_pos as u64,
        })?;
        let pos = old_pos + moved(&insertions, old_pos, true);
        out.get_mut(pos..pos + 4)
            .ok_or_else(|| truncated("u32 field", pos))?
            .copy_from_slice(&e.u32_bytes(value));
        Ok(())
    };
    for &(pos, value) in &size_fields {
        put_u32(pos, value)?;
    }
    if let Some(desc) = event_desc {
        put_u32(desc.offset + 4, desc_attr_size + extra)?;
        let nr_entries = insertions.len() - layout.attrs.len();
        let new_size = desc.size + nr_entries * extra;
        let slot = desc.slot + 8;
        write_u64(
            &mut out,
            slot + moved(&insertions, slot, true),
            e,
            new_size as u64,
        )?;
    }
    Ok(out)
}

/// Inserts one record of type `kind` whose body is `body_len` bytes of non-zero junk after the
/// first suitable record of the data section; data.size and the feature sections follow. For a
/// kernel-range `kind` (below 64) in a file whose attr sets `sample_id_all`, the body also ends with
/// a copy of the `sample_id` trailer of the record before it, as the kernel would append one. Works
/// on either byte order; the data section must not start inside a compressed stream.
pub fn with_unknown_record(file: &[u8], kind: u32, body_len: usize) -> Result<Vec<u8>> {
    let layout = FileLayout::parse(file)?;
    let e = layout.endian;
    let attrs = layout.attr_layouts();
    let (data_off, data_size) = layout.data;
    let data = file
        .get(data_off..data_off + data_size)
        .ok_or_else(|| truncated("data", data_off))?;
    let wants_trailer = kind < rk::HEADER_ATTR && attrs.iter().any(|a| a.sample_id_all);
    let mut pos = 0usize;
    let (at, trailer) = loop {
        let rec_kind = read::<4>(data, pos, e, "record type")? as u32;
        let size = read::<2>(data, pos + 6, e, "record size")? as usize;
        if size < 8 || pos + size > data.len() {
            return Err(truncated("record", data_off + pos));
        }
        let end = pos + size;
        if !wants_trailer {
            break (end, Vec::new());
        }
        let body = data.get(pos + 8..end).unwrap_or(&[]);
        if rec_kind != rk::SAMPLE && (1..rk::HEADER_ATTR).contains(&rec_kind) {
            let attr = records::trailer_attr(&attrs, body, e, (data_off + pos) as u64)?;
            if attr.sample_id_all {
                let len = attr.sample_id_size();
                let trailer = body
                    .get(body.len().saturating_sub(len)..)
                    .filter(|t| t.len() == len)
                    .ok_or_else(|| truncated("sample_id trailer", data_off + pos))?;
                break (end, trailer.to_vec());
            }
        }
        pos = end;
        if pos >= data.len() {
            return Err(RewriteError::Unsupported {
                what: "no record with a sample_id trailer to copy",
                offset: data_off as u64,
            });
        }
    };
    let too_big = RewriteError::Unsupported {
        what: "record larger than 65535 bytes",
        offset: 0,
    };
    let total = body_len
        .checked_add(8 + trailer.len())
        .ok_or(too_big.clone())?;
    let size = u16::try_from(total).map_err(|_| too_big)?;
    let mut record = Vec::with_capacity(total);
    record.extend_from_slice(&e.u32_bytes(kind));
    record.extend_from_slice(&e.u16_bytes(0));
    record.extend_from_slice(&e.u16_bytes(size));
    record.extend_from_slice(&junk(body_len));
    record.extend_from_slice(&trailer);
    let mut out = insert(
        file,
        &layout,
        &[Insertion {
            at: data_off + at,
            bytes: record,
        }],
    )?;
    write_u64(&mut out, HDR_DATA + 8, e, (data_size + total) as u64)?;
    Ok(out)
}

/// A big-endian copy of a little-endian file-mode perf.data, as a big-endian machine's perf would
/// have written it: magic `2ELIFREP` on disk, every header, attr, id, record and feature field in
/// big-endian, the attr bitfield word laid out from the most significant bit. Compressed records
/// (COMPRESSED / COMPRESSED2) are expanded and written plain, and the COMPRESSED feature dropped.
/// Feature sections in [`DROPPED_FEATURES`] or unknown are dropped. Unknown record types, pipe
/// mode and unfinalized files are errors.
pub fn to_big_endian(le: &[u8]) -> Result<Vec<u8>> {
    let layout = FileLayout::parse(le)?;
    if layout.endian != Endian::Little {
        return Err(RewriteError::NotFileMode("input is already big-endian"));
    }
    let (data_off, data_size) = layout.data;
    // Header, ids and attrs come before the data in perf's layout; anything else is refused.
    let before_data = |(off, size): (usize, usize)| size == 0 || off + size <= data_off;
    if !before_data(layout.attrs_section)
        || !before_data(layout.event_types)
        || !layout.attrs.iter().all(|a| before_data(a.ids))
        || data_off < HDR_SIZE
    {
        return Err(RewriteError::Unsupported {
            what: "attrs or ids after the data section",
            offset: HDR_ATTRS as u64,
        });
    }
    let mut out = le
        .get(..data_off)
        .ok_or_else(|| truncated("header", 0))?
        .to_vec();
    out.get_mut(..8)
        .ok_or_else(|| truncated("magic", 0))?
        .copy_from_slice(b"2ELIFREP");
    let mut header = records::Swapper::new(&mut out, 0);
    for field in (8..HDR_SIZE).step_by(8) {
        header.field(field, 8)?;
    }
    let attr_len = layout.attr_size - 16;
    for attr in &layout.attrs {
        records::swap_attr(&mut header, attr.pos, attr_len)?;
        header.field(attr.ids_slot, 8)?;
        header.field(attr.ids_slot + 8, 8)?;
        for k in 0..attr.ids.1 / 8 {
            header.field(attr.ids.0 + 8 * k, 8)?;
        }
    }
    let data = le
        .get(data_off..data_off + data_size)
        .ok_or_else(|| truncated("data", data_off))?;
    let swapped = swap_stream(data, data_off as u64, &layout.attr_layouts())?;
    out.extend_from_slice(&swapped);
    let be = Endian::Big;
    write_u64(&mut out, HDR_DATA + 8, be, swapped.len() as u64)?;

    let nr_cpus_avail = layout
        .features
        .iter()
        .find(|f| f.bit == feat::NRCPUS)
        .and_then(|f| read::<4>(le, f.offset, Endian::Little, "nrcpus").ok())
        .and_then(|n| usize::try_from(n).ok());
    let mut kept = Vec::new();
    for f in &layout.features {
        let payload = le
            .get(f.offset..f.offset + f.size)
            .ok_or_else(|| truncated("feature section", f.offset))?;
        if let Some(bytes) = features::swap_feature(f.bit, payload, f.offset as u64, nr_cpus_avail)?
        {
            kept.push((f.bit, bytes));
        }
    }
    let mut bits = [0u64; 4];
    for (bit, _) in &kept {
        if let Some(word) = bits.get_mut((*bit / 64) as usize) {
            *word |= 1 << (bit % 64);
        }
    }
    for (i, word) in bits.iter().enumerate() {
        write_u64(&mut out, HDR_FEATURES + 8 * i, be, *word)?;
    }
    let mut payload_at = out.len() + 16 * kept.len();
    for (_, bytes) in &kept {
        out.extend_from_slice(&be.u64_bytes(payload_at as u64));
        out.extend_from_slice(&be.u64_bytes(bytes.len() as u64));
        payload_at += bytes.len();
    }
    for (_, bytes) in kept {
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}
