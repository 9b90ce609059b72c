//! The file header and its sections: attrs with their ids, the feature sections (and the
//! TRACING_DATA blob), and the naming of attrs once every source of names has been read.

use super::perf_file::{PerfFile, TRACEPOINT_TYPE};
use crate::attr::{ATTR_SIZE_VER0, EventAttr};
use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::kinds::{FILE_HEADER_SIZE, feature};
use crate::notes::Note;
use crate::sample::check_sample_type;
use crate::tracepoint::TracingData;

pub(super) fn read_section(
    bytes: &[u8],
    at: u64,
    what: &'static str,
    endian: Endian,
) -> Result<(u64, u64)> {
    let mut c = Cursor::new(bytes.get(at as usize..).unwrap_or(&[]), at, endian);
    let offset = c.u64(what)?;
    let size = c.u64(what)?;
    match offset.checked_add(size) {
        Some(end) if end <= bytes.len() as u64 => Ok((offset, size)),
        _ => Err(Error::SectionOutOfBounds {
            what,
            offset: at,
            start: offset,
            size,
            file_len: bytes.len() as u64,
        }),
    }
}

pub(super) fn slice_of(bytes: &[u8], offset: u64, size: u64) -> &[u8] {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = usize::try_from(offset.saturating_add(size)).unwrap_or(usize::MAX);
    bytes.get(start..end).unwrap_or(&[])
}

impl<'a> PerfFile<'a> {
    pub(super) fn parse_file_header(&mut self, bytes: &'a [u8]) -> Result<()> {
        let endian = self.info.endian();
        let mut c = Cursor::new(bytes, 0, endian);
        c.skip(16, "file header")?;
        let attr_size = c.u64("attr_size")?;
        let (attrs_offset, attrs_size) = read_section(bytes, 0x18, "attrs", endian)?;
        let (data_offset, data_size) = read_section(bytes, 0x28, "data", endian)?;
        let mut feature_bits = [0u64; 4];
        let mut fc = Cursor::new(bytes.get(0x48..).unwrap_or(&[]), 0x48, endian);
        for word in &mut feature_bits {
            *word = fc.u64("adds_features")?;
        }
        if attrs_size > 0 && (attr_size < ATTR_SIZE_VER0 as u64 + 16 || attr_size > 1 << 20) {
            return Err(Error::BadAttrSize {
                offset: 0x10,
                size: attr_size,
            });
        }
        if attrs_size > 0 {
            let nr = attrs_size / attr_size;
            for i in 0..nr {
                let at = attrs_offset + i * attr_size;
                let entry = slice_of(bytes, at, attr_size);
                let attr_len = (attr_size - 16) as usize;
                let mut attr = EventAttr::parse(entry.get(..attr_len).unwrap_or(&[]), at, endian)?;
                let (ids_offset, ids_size) =
                    read_section(bytes, at + attr_len as u64, "attr ids", endian)?;
                let mut ic = Cursor::new(slice_of(bytes, ids_offset, ids_size), ids_offset, endian);
                attr.ids = ic.u64_slice(ids_size / 8, "attr ids")?.iter().collect();
                self.info.attrs_mut().push(attr);
            }
        }
        if data_size == 0 {
            self.notes.push(Note::NotFinalized);
            let start = if data_offset == 0 {
                FILE_HEADER_SIZE
            } else {
                data_offset
            };
            self.data = bytes.get(start as usize..).unwrap_or(&[]);
            self.data_base = start;
            return Ok(());
        }
        self.data = slice_of(bytes, data_offset, data_size);
        self.data_base = data_offset;
        // Feature sections: a table of (offset, size) right after the data, one per set bit.
        let mut table = data_offset + data_size;
        for bit in 0..256u32 {
            let word = feature_bits.get((bit / 64) as usize).copied().unwrap_or(0);
            if word & (1 << (bit % 64)) == 0 {
                continue;
            }
            self.features.present.push(bit);
            if record_feature_unknown(bit) {
                self.notes.push(Note::UnknownFeature { bit });
            }
            // A table entry or section past the end of the file means the file was cut:
            // an error, as for any other section. A section whose contents do not decode is
            // only a note; the samples are still good.
            let (offset, size) = read_section(bytes, table, "feature section", endian)?;
            table += 16;
            let section = slice_of(bytes, offset, size);
            let result = if bit == feature::TRACING_DATA {
                self.read_tracing_data(section, offset)
            } else {
                self.features.parse_feature(bit, section, offset, endian)
            };
            if let Err(error) = result {
                self.notes.push(Note::FeatureError { bit, error });
            }
        }
        Ok(())
    }

    /// Parses a TRACING_DATA blob found at file offset `at`; a later one replaces an earlier.
    pub(super) fn read_tracing_data(&mut self, blob: &[u8], at: u64) -> Result<()> {
        let data = TracingData::parse(blob).map_err(|e| e.moved_by(at))?;
        if !self.features.present.contains(&feature::TRACING_DATA) {
            self.features.present.push(feature::TRACING_DATA);
        }
        self.tracing = Some(data);
        Ok(())
    }

    /// Names from EVENT_DESC (else, for tracepoints, from TRACING_DATA), notes about attrs, and
    /// the id → attr layout.
    pub(super) fn finish_attrs(&mut self) {
        for (i, desc) in self.features.event_desc.iter().enumerate() {
            let attrs = self.info.attrs_mut();
            let by_id = attrs
                .iter()
                .position(|a| a.ids.iter().any(|id| desc.ids.contains(id)));
            let index =
                by_id.or_else(|| (attrs.len() == self.features.event_desc.len()).then_some(i));
            if let Some(attr) = index.and_then(|i| attrs.get_mut(i)) {
                attr.name.clone_from(&desc.name);
            }
        }
        // A tracepoint nothing named yet (a pipe without EVENT_DESC) is named by the format
        // whose ID is its config, as perf does.
        if let Some(tracing) = &self.tracing {
            for attr in self.info.attrs_mut() {
                if attr.kind == TRACEPOINT_TYPE && attr.name == attr.derived_name() {
                    if let Some(event) = tracing.event(attr.config) {
                        attr.name = event.full_name();
                    }
                }
            }
        }
        for (attr_index, attr) in self.info.attrs().iter().enumerate() {
            if attr.extra_bytes > 0 {
                self.notes.push(Note::AttrExtraBytes {
                    attr_index,
                    bytes: attr.extra_bytes,
                });
            }
            if let Err(Error::UnsupportedSampleType { bit, .. }) =
                check_sample_type(attr.sample_type, 0)
            {
                self.notes
                    .push(Note::UnsupportedSampleType { attr_index, bit });
            }
        }
        self.info.relayout();
        if self.info.ids_ambiguous() {
            self.notes.push(Note::AmbiguousSampleIds);
        }
    }
}

pub(super) fn record_feature_unknown(bit: u32) -> bool {
    crate::kinds::feature_name(bit) == "unknown"
}
