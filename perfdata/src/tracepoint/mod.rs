//! Tracepoint event formats: the TRACING_DATA blob a recording carries (the HEADER_TRACING_DATA
//! feature section in file mode, the HEADER_TRACING_DATA record in pipe mode), the tracefs
//! `format` text of each event in it, and the decoding of a raw tracepoint record
//! (`PERF_SAMPLE_RAW`) into fields and into the line `perf script` prints.
//!
//! Three steps, each usable alone (a live tracer reads `format` files from tracefs itself and
//! starts at the second):
//! 1. [`TracingData::parse`]: the blob → its header facts and one [`EventFormat`] per event.
//! 2. [`EventFormat::parse`]: one `format` file (`name:`, `ID:`, `format:` fields, `print fmt:`).
//! 3. [`EventFormat::values`] / [`EventFormat::write_fields`] (`field=value` for each field) and
//!    [`EventFormat::write_print`] (the event's `print fmt` rendered like libtraceevent does for
//!    `perf script`, falling back to the fields when kprof cannot render it).
//!
//! ```
//! use kprof_perfdata::tracepoint::{EventFormat, RawLayout};
//!
//! let format = EventFormat::parse("sched", "name: wakeup\nID: 7\nformat:\n\
//!     \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\
//!     \tfield:char comm[8];\toffset:2;\tsize:8;\tsigned:0;\n\
//!     \tfield:int pid;\toffset:12;\tsize:4;\tsigned:1;\n\n\
//!     print fmt: \"comm=%s pid=%d\", REC->comm, REC->pid\n")?;
//! let mut raw = vec![7, 0];
//! raw.extend_from_slice(b"init\0\0\0\0\0\0");
//! raw.extend_from_slice(&(-1i32).to_le_bytes());
//! let layout = RawLayout::little_endian_64();
//! let mut text = String::new();
//! format.write_print(&raw, layout, &mut text);
//! assert_eq!(text, "comm=init pid=-1");
//! text.clear();
//! format.write_fields(&raw, layout, &mut text);
//! assert_eq!(text, "comm=init pid=-1");
//! # Ok::<(), kprof_perfdata::Error>(())
//! ```
//!
//! Hand-written: no maintained Rust crate parses tracefs formats and renders `print fmt` the way
//! libtraceevent does; this code follows the rules of the format files and of libtraceevent's
//! output, not its code.

mod field;
mod format;
mod print;

pub use field::{Field, FieldKind, FieldValue, RawLayout};
pub use format::EventFormat;

use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::record::until_nul;

/// The first ten bytes of a tracing-data blob: 23, 8, 68, then `tracing`.
pub const TRACING_MAGIC: [u8; 10] = *b"\x17\x08\x44tracing";

/// A parsed tracing-data blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingData {
    /// The blob's format version, e.g. `0.6`.
    pub version: String,
    /// Byte order and `long` size of the recording machine.
    pub layout: RawLayout,
    /// Page size of the recording machine.
    pub page_size: u32,
    /// Every event format in the blob (ftrace ones under system `ftrace`), in blob order.
    pub events: Vec<EventFormat>,
    /// Formats that did not parse, as `(system, error)`: their events stay unnamed.
    pub bad_formats: Vec<(String, Error)>,
}

impl TracingData {
    /// Parses a blob. Offsets in errors are relative to the blob's first byte.
    pub fn parse(bytes: &[u8]) -> Result<TracingData> {
        let bad = |what, offset| Error::BadTracingData { what, offset };
        if bytes.get(..TRACING_MAGIC.len()) != Some(&TRACING_MAGIC[..]) {
            return Err(bad("magic", 0));
        }
        let mut c = Cursor::new(bytes, 0, Endian::Little);
        c.skip(TRACING_MAGIC.len(), "tracing magic")?;
        let version = cstring(&mut c, "tracing version")?;
        let endian = match c.u8("tracing endianness")? {
            0 => Endian::Little,
            1 => Endian::Big,
            _ => return Err(bad("endianness byte", c.offset() - 1)),
        };
        let long_size = c.u8("tracing long size")?;
        if long_size != 4 && long_size != 8 {
            return Err(bad("long size", c.offset() - 1));
        }
        // Everything after the endianness byte is in the recording machine's byte order.
        let mut c = Cursor::new(c.rest(), c.offset(), endian);
        let page_size = c.u32("tracing page size")?;
        for header in ["header_page", "header_event"] {
            let at = c.offset();
            if cstring(&mut c, "tracing header name")? != header {
                return Err(bad("header file name", at));
            }
            sized_u64(&mut c, "tracing header file")?;
        }
        let mut data = TracingData {
            version,
            layout: RawLayout { endian, long_size },
            page_size,
            events: Vec::new(),
            bad_formats: Vec::new(),
        };
        let ftrace = c.u32("ftrace format count")?;
        data.read_formats(&mut c, "ftrace", ftrace)?;
        let systems = c.u32("tracing system count")?;
        for _ in 0..systems {
            let system = cstring(&mut c, "tracing system name")?;
            let count = c.u32("tracing format count")?;
            data.read_formats(&mut c, &system, count)?;
        }
        // The rest (kallsyms, printk formats, saved comms) is not needed to name events or
        // print their fields.
        Ok(data)
    }

    fn read_formats(&mut self, c: &mut Cursor<'_>, system: &str, count: u32) -> Result<()> {
        for _ in 0..count {
            // The text starts after its u64 size.
            let text_at = c.offset() + 8;
            let text = sized_u64(c, "event format")?;
            match EventFormat::parse(system, &String::from_utf8_lossy(text)) {
                Ok(event) => self.events.push(event),
                Err(error) => self
                    .bad_formats
                    .push((system.to_string(), error.moved_by(text_at))),
            }
        }
        Ok(())
    }

    /// The format of the event with tracepoint id `id` (a tracepoint attr's `config`).
    pub fn event(&self, id: u64) -> Option<&EventFormat> {
        self.events.iter().find(|e| e.id == id)
    }
}

fn cstring(c: &mut Cursor<'_>, what: &'static str) -> Result<String> {
    let rest = c.rest();
    let text = until_nul(rest);
    if text.len() == rest.len() {
        return Err(Error::Truncated {
            what,
            offset: c.offset(),
            needed: rest.len() + 1,
        });
    }
    c.skip(text.len() + 1, what)?;
    Ok(String::from_utf8_lossy(text).into_owned())
}

fn sized_u64<'a>(c: &mut Cursor<'a>, what: &'static str) -> Result<&'a [u8]> {
    let size = c.u64(what)?;
    c.bytes_u64(size, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAKEUP: &str = "name: wakeup\nID: 7\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\
        \tfield:int pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        print fmt: \"pid=%d\", REC->pid\n";

    /// A blob in the layout perf writes, in `endian`.
    fn blob(endian: Endian, formats: &[(&str, &str)]) -> Vec<u8> {
        let u32b = |v: u32| endian.u32_bytes(v);
        let u64b = |v: u64| endian.u64_bytes(v);
        let mut out = TRACING_MAGIC.to_vec();
        out.extend_from_slice(b"0.6\0");
        out.push(u8::from(endian == Endian::Big));
        out.push(8);
        out.extend_from_slice(&u32b(4096));
        for (name, body) in [("header_page", "page\n"), ("header_event", "event\n")] {
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(&u64b(body.len() as u64));
            out.extend_from_slice(body.as_bytes());
        }
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(formats.len() as u32));
        for (system, text) in formats {
            out.extend_from_slice(system.as_bytes());
            out.push(0);
            out.extend_from_slice(&u32b(1));
            out.extend_from_slice(&u64b(text.len() as u64));
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u64b(0));
        out
    }

    #[test]
    fn parses_the_blob_in_either_byte_order() {
        for endian in [Endian::Little, Endian::Big] {
            let data = TracingData::parse(&blob(endian, &[("sched", WAKEUP)])).unwrap();
            assert_eq!(data.version, "0.6");
            assert_eq!(
                data.layout,
                RawLayout {
                    endian,
                    long_size: 8
                }
            );
            assert_eq!(data.page_size, 4096);
            let event = data.event(7).unwrap();
            assert_eq!(
                (event.system.as_str(), event.name.as_str()),
                ("sched", "wakeup")
            );
            assert_eq!(event.full_name(), "sched:wakeup");
            assert!(data.event(8).is_none());
        }
    }

    #[test]
    fn a_bad_format_is_set_aside_and_the_rest_still_parse() {
        let data = TracingData::parse(&blob(
            Endian::Little,
            &[("broken", "name: x\nformat:\n"), ("sched", WAKEUP)],
        ))
        .unwrap();
        assert_eq!(data.events.len(), 1);
        assert_eq!(data.bad_formats.len(), 1);
        assert_eq!(data.bad_formats[0].0, "broken");
    }

    #[test]
    fn cut_or_garbled_blobs_are_errors_not_panics() {
        let good = blob(Endian::Little, &[("sched", WAKEUP)]);
        for len in 0..good.len() {
            // Every prefix either fails or (once the formats are in) parses.
            let _ = TracingData::parse(&good[..len]);
        }
        assert!(matches!(
            TracingData::parse(b"not tracing data"),
            Err(Error::BadTracingData { what: "magic", .. })
        ));
        let mut bad_endian = good.clone();
        bad_endian[14] = 7;
        assert!(TracingData::parse(&bad_endian).is_err());
        let mut huge = good;
        // The header_page size: claims more bytes than there are.
        let at = 10 + 4 + 2 + 4 + 12;
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            TracingData::parse(&huge),
            Err(Error::Truncated { .. })
        ));
    }
}
