//! One tracepoint's `format` text ([`EventFormat`]) and the values of its fields in a raw record.

use std::fmt::Write as _;

use super::field::{Field, FieldKind, FieldList, FieldValue, RawLayout};
use super::print::PrintFormat;
use crate::error::{Error, Result};

/// A tracepoint's format, from its tracefs `format` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    /// The event's system (its tracefs directory), e.g. `sched`.
    pub system: String,
    /// The event's name, e.g. `sched_switch`.
    pub name: String,
    /// Its tracepoint id: what a tracepoint attr's `config` holds.
    pub id: u64,
    /// The fields every event starts with (`common_type`, `common_pid`, ...).
    pub common_fields: Vec<Field>,
    /// The event's own fields.
    pub fields: Vec<Field>,
    /// The `print fmt:` text, as the kernel wrote it.
    pub print_fmt: String,
    /// The parsed `print fmt`, when kprof can render it.
    print: Option<PrintFormat>,
}

impl EventFormat {
    /// Parses one `format` file of `system`. Errors carry the offset in `text`.
    pub fn parse(system: &str, text: &str) -> Result<EventFormat> {
        let bad = |what, offset: usize| Error::BadEventFormat {
            what,
            offset: offset as u64,
        };
        let mut name = None;
        let mut id = None;
        let mut common_fields = Vec::new();
        let mut fields = Vec::new();
        let mut print_fmt = None;
        // Fields before the first blank line after `format:` are the common ones.
        let mut in_common = true;
        let mut in_format = false;
        let mut offset = 0usize;
        for line in text.split_inclusive('\n') {
            let at = offset;
            offset += line.len();
            let line = line.trim_end_matches(['\n', '\r']);
            let trimmed = line.trim_start();
            if let Some(rest) = line.strip_prefix("name:") {
                name = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("ID:") {
                id = Some(rest.trim().parse::<u64>().map_err(|_| bad("bad ID", at))?);
            } else if line.starts_with("format:") {
                in_format = true;
            } else if let Some(rest) = line.strip_prefix("print fmt:") {
                print_fmt = Some(rest.trim().to_string());
                in_format = false;
            } else if in_format && trimmed.is_empty() {
                if !common_fields.is_empty() || !fields.is_empty() {
                    in_common = false;
                }
            } else if in_format && trimmed.starts_with("field") {
                let field = parse_field(trimmed).ok_or_else(|| bad("bad field line", at))?;
                if in_common {
                    common_fields.push(field);
                } else {
                    fields.push(field);
                }
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("no name", 0))?;
        let id = id.ok_or_else(|| bad("no ID", 0))?;
        let print_fmt = print_fmt.unwrap_or_default();
        let mut event = EventFormat {
            system: system.to_string(),
            name,
            id,
            common_fields,
            fields,
            print_fmt,
            print: None,
        };
        event.print = PrintFormat::parse(&event.print_fmt, event.field_list());
        Ok(event)
    }

    /// `system:name`, as perf names the event.
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.system, self.name)
    }

    /// The field (common or own) called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .chain(&self.common_fields)
            .find(|f| f.name == name)
    }

    /// Whether [`write_print`](Self::write_print) renders the `print fmt` (true) or falls back
    /// to the fields (false: the format uses something kprof does not evaluate).
    pub fn renders_print_fmt(&self) -> bool {
        self.print.is_some()
    }

    /// The event's own fields (not the common ones) with their values in `raw`.
    pub fn values<'s, 'r>(
        &'s self,
        raw: &'r [u8],
        layout: RawLayout,
    ) -> impl Iterator<Item = (&'s Field, FieldValue<'r>)> + 's
    where
        'r: 's,
    {
        self.fields.iter().map(move |f| (f, f.value(raw, layout)))
    }

    /// Appends `name=value` for each of the event's own fields, separated by spaces, as
    /// libtraceevent prints an event whose `print fmt` it cannot use: text for character
    /// arrays, `ARRAY[xx, ...]` for other arrays, hex for pointers and unsigned longs,
    /// decimal otherwise.
    pub fn write_fields(&self, raw: &[u8], layout: RawLayout, out: &mut String) {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&field.name);
            out.push('=');
            write_field_value(field, field.value(raw, layout), out);
        }
    }

    /// Appends the event's `print fmt` rendered for `raw`, as `perf script` prints the event;
    /// the fields ([`write_fields`](Self::write_fields)) when kprof cannot render it.
    pub fn write_print(&self, raw: &[u8], layout: RawLayout, out: &mut String) {
        let start = out.len();
        if let Some(print) = &self.print {
            if print.render(self.field_list(), raw, layout, out).is_ok() {
                return;
            }
            out.truncate(start);
        }
        self.write_fields(raw, layout, out);
    }

    /// The fields in declaration order: common ones, then the event's.
    pub(crate) fn field_list(&self) -> FieldList<'_> {
        FieldList {
            common: &self.common_fields,
            own: &self.fields,
        }
    }
}

fn write_field_value(field: &Field, value: FieldValue<'_>, out: &mut String) {
    match value {
        FieldValue::Text(text) => out.push_str(&String::from_utf8_lossy(text)),
        FieldValue::Bytes(bytes) => {
            out.push_str("ARRAY[");
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{b:02x}");
            }
            out.push(']');
        }
        FieldValue::Unsigned(v) if field.is_pointer() || field.is_long() => {
            let _ = write!(out, "{v:#x}");
        }
        FieldValue::Signed(v) if field.is_pointer() => {
            let _ = write!(out, "{:#x}", v as u64);
        }
        FieldValue::Signed(v) if field.size == 4 && field.is_long() => {
            let _ = write!(out, "{:#x}", v as i32);
        }
        FieldValue::Signed(v) => {
            let _ = write!(out, "{v}");
        }
        FieldValue::Unsigned(v) => {
            let _ = write!(out, "{v}");
        }
        FieldValue::Absent => out.push_str("[missing]"),
    }
}

/// Parses `field:TYPE NAME;\toffset:N;\tsize:N;\tsigned:N;` (`signed` is absent in old kernels).
fn parse_field(line: &str) -> Option<Field> {
    let mut declaration = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';') {
        let Some((key, value)) = part.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            // Old ftrace formats name some fields `field special:TYPE NAME`.
            "field" | "field special" => declaration = Some(value),
            "offset" => offset = value.parse().ok(),
            "size" => size = value.parse().ok(),
            "signed" => signed = value == "1",
            _ => {}
        }
    }
    let declaration = declaration?;
    let (type_name, name, kind) = parse_declaration(declaration)?;
    Some(Field {
        declaration: declaration.to_string(),
        name,
        type_name,
        offset: offset?,
        size: size?,
        signed,
        kind,
    })
}

/// `unsigned long args[6]` → (`unsigned long`, `args`, Array { len: 6 }); `__data_loc char[] x`
/// → (`char`, `x`, DataLoc).
fn parse_declaration(text: &str) -> Option<(String, String, FieldKind)> {
    let (dynamic, text) = if let Some(rest) = text.strip_prefix("__data_loc ") {
        (Some(FieldKind::DataLoc), rest)
    } else if let Some(rest) = text.strip_prefix("__rel_loc ") {
        (Some(FieldKind::RelLoc), rest)
    } else {
        (None, text)
    };
    let mut text = text.trim();
    let mut array_len = None;
    if let Some(open) = text.strip_suffix(']').and_then(|t| t.rfind('[')) {
        let len = text.get(open + 1..text.len() - 1)?.trim();
        array_len = Some(len.parse::<usize>().unwrap_or(0));
        text = text.get(..open)?.trim_end();
    }
    let name_start = text
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = text.get(name_start..)?;
    if name.is_empty() {
        return None;
    }
    let mut type_name = text.get(..name_start)?.trim().to_string();
    // `__data_loc char[] name`: the brackets belong to the type.
    if let Some(stripped) = type_name.strip_suffix("[]") {
        type_name = stripped.trim_end().to_string();
    }
    if type_name.is_empty() {
        return None;
    }
    let kind = match (dynamic, array_len) {
        (Some(kind), _) => kind,
        (None, Some(len)) => FieldKind::Array { len },
        (None, None) => FieldKind::Scalar,
    };
    Some((type_name, name.to_string(), kind))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The sched_switch format of Linux 6.x, as tracefs prints it.
    pub(crate) const SCHED_SWITCH: &str = "name: sched_switch\nID: 372\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;\n\
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n\
\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;\n\
\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;\n\
\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d\", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), \"|\", { 0x00000001, \"S\" }, { 0x00000002, \"D\" }, { 0x00000004, \"T\" }, { 0x00000008, \"t\" }, { 0x00000010, \"X\" }, { 0x00000020, \"Z\" }, { 0x00000040, \"P\" }, { 0x00000080, \"I\" }) : \"R\", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? \"+\" : \"\", REC->next_comm, REC->next_pid, REC->next_prio\n";

    /// A sched_switch record: `perf` (pid 42, prio 120, state D) to `swapper/1` (pid 0).
    pub(crate) fn sched_switch_record(prev_state: i64) -> Vec<u8> {
        let mut raw = vec![0u8; 64];
        raw[0..2].copy_from_slice(&372u16.to_le_bytes());
        raw[4..8].copy_from_slice(&42i32.to_le_bytes());
        raw[8..12].copy_from_slice(b"perf");
        raw[24..28].copy_from_slice(&42i32.to_le_bytes());
        raw[28..32].copy_from_slice(&120i32.to_le_bytes());
        raw[32..40].copy_from_slice(&prev_state.to_le_bytes());
        raw[40..49].copy_from_slice(b"swapper/1");
        raw[60..64].copy_from_slice(&120i32.to_le_bytes());
        raw
    }

    #[test]
    fn parses_name_id_fields_and_print_fmt() {
        let event = EventFormat::parse("sched", SCHED_SWITCH).unwrap();
        assert_eq!(event.full_name(), "sched:sched_switch");
        assert_eq!(event.id, 372);
        assert_eq!(event.common_fields.len(), 4);
        assert_eq!(event.fields.len(), 7);
        let comm = event.field("prev_comm").unwrap();
        assert_eq!(comm.type_name, "char");
        assert_eq!(comm.kind, FieldKind::Array { len: 16 });
        assert!(comm.is_string());
        let state = event.field("prev_state").unwrap();
        assert_eq!((state.offset, state.size, state.signed), (32, 8, true));
        assert_eq!(event.field("common_pid").unwrap().type_name, "int");
        assert!(event.print_fmt.starts_with("\"prev_comm=%s"));
        assert!(event.renders_print_fmt());
    }

    #[test]
    fn field_values_and_field_text() {
        let event = EventFormat::parse("sched", SCHED_SWITCH).unwrap();
        let raw = sched_switch_record(2);
        let layout = RawLayout::little_endian_64();
        let values: Vec<_> = event.values(&raw, layout).map(|(_, v)| v).collect();
        assert_eq!(values[0], FieldValue::Text(b"perf"));
        assert_eq!(values[1], FieldValue::Signed(42));
        assert_eq!(values[3], FieldValue::Signed(2));
        assert_eq!(values[4], FieldValue::Text(b"swapper/1"));
        let mut text = String::new();
        event.write_fields(&raw, layout, &mut text);
        assert_eq!(
            text,
            "prev_comm=perf prev_pid=42 prev_prio=120 prev_state=2 \
             next_comm=swapper/1 next_pid=0 next_prio=120"
        );
        // A record cut short: the missing fields say so.
        let mut text = String::new();
        event.write_fields(&raw[..30], layout, &mut text);
        assert!(text.ends_with("next_prio=[missing]"), "{text}");
    }

    #[test]
    fn dynamic_arrays_pointers_and_byte_arrays() {
        let text = "name: openat\nID: 9\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\
            \tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\
            \tfield:__rel_loc char[] rel;\toffset:12;\tsize:4;\tsigned:0;\n\
            \tfield:const char * buf;\toffset:16;\tsize:8;\tsigned:0;\n\
            \tfield:unsigned long count;\toffset:24;\tsize:8;\tsigned:0;\n\
            \tfield:u32 mask[2];\toffset:32;\tsize:8;\tsigned:0;\n\
            \tfield:short delta;\toffset:40;\tsize:2;\tsigned:1;\n\n\
            print fmt: \"%s\", __get_str(filename)\n";
        let event = EventFormat::parse("syscalls", text).unwrap();
        let filename = event.field("filename").unwrap();
        assert_eq!(filename.kind, FieldKind::DataLoc);
        assert_eq!(filename.type_name, "char");
        assert_eq!(event.field("rel").unwrap().kind, FieldKind::RelLoc);
        assert!(event.field("buf").unwrap().is_pointer());
        let mut raw = vec![0u8; 48];
        raw[8..12].copy_from_slice(&(48u32 | (8 << 16)).to_le_bytes());
        // __rel_loc: offset counted from the field's end (16), so 16 + 40 = 56.
        raw[12..16].copy_from_slice(&(40u32 | (3 << 16)).to_le_bytes());
        raw[16..24].copy_from_slice(&0x7ffd_1000u64.to_le_bytes());
        raw[24..32].copy_from_slice(&4096u64.to_le_bytes());
        raw[32..40].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        raw[40..42].copy_from_slice(&(-3i16).to_le_bytes());
        raw.extend_from_slice(b"/etc/ab\0");
        raw.extend_from_slice(b"xy\0");
        let mut out = String::new();
        event.write_fields(&raw, RawLayout::little_endian_64(), &mut out);
        assert_eq!(
            out,
            "filename=/etc/ab rel=xy buf=0x7ffd1000 count=0x1000 \
             mask=ARRAY[01, 02, 03, 04, 05, 06, 07, 08] delta=-3"
        );
        out.clear();
        event.write_print(&raw, RawLayout::little_endian_64(), &mut out);
        assert_eq!(out, "/etc/ab");
        // A locator pointing past the record.
        raw[8..12].copy_from_slice(&(60u32 | (8 << 16)).to_le_bytes());
        assert_eq!(
            event
                .field("filename")
                .unwrap()
                .value(&raw, RawLayout::little_endian_64()),
            FieldValue::Absent
        );
    }

    #[test]
    fn big_endian_records() {
        let text = "name: e\nID: 1\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\
            \tfield:int v;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            print fmt: \"v=%d\", REC->v\n";
        let event = EventFormat::parse("s", text).unwrap();
        let mut raw = vec![0, 1, 0, 0];
        raw.extend_from_slice(&(-5i32).to_be_bytes());
        let layout = RawLayout {
            endian: crate::Endian::Big,
            long_size: 8,
        };
        let mut out = String::new();
        event.write_print(&raw, layout, &mut out);
        assert_eq!(out, "v=-5");
    }

    #[test]
    fn malformed_formats_are_errors() {
        assert!(matches!(
            EventFormat::parse("s", "ID: 1\nformat:\n"),
            Err(Error::BadEventFormat {
                what: "no name",
                ..
            })
        ));
        assert!(EventFormat::parse("s", "name: x\nformat:\n").is_err());
        assert!(EventFormat::parse("s", "name: x\nID: one\n").is_err());
        let bad_field = "name: x\nID: 1\nformat:\n\tfield:int;\toffset:0;\tsize:4;\n";
        assert!(matches!(
            EventFormat::parse("s", bad_field),
            Err(Error::BadEventFormat { offset: 22, .. })
        ));
    }
}
