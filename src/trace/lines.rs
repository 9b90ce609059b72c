//! `kprof trace`'s default output: one line per event as `perf script` lays out a tracepoint
//! sample (comm, tid, [cpu], time, event) followed by `field=value` for each format field
//! (addresses in hex, other numbers in decimal), or
//! one JSON object per line with `--json`. With `-g`, the stack follows, leaf first, one frame
//! per tab-indented line, and a blank line ends the event (as `perf script -g` does).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write};

use kprof_perfdata::tracepoint::EventFormat;

use crate::trace::capture::TraceOutput;
use crate::trace::event::{Event, EventSink, Value};

/// Prints events as they come; the first write error stops it and is returned by the next
/// [`TraceOutput::tick`].
pub struct LinePrinter<W: Write> {
    out: W,
    json: bool,
    line: String,
    error: Option<io::Error>,
    /// `(event, field)` pairs whose values are addresses: printed in hex in text lines.
    addresses: HashSet<(String, String)>,
}

impl<W: Write> LinePrinter<W> {
    /// Text lines, or JSON objects when `json`.
    pub fn new(out: W, json: bool) -> Self {
        LinePrinter {
            out,
            json,
            line: String::new(),
            error: None,
            addresses: HashSet::new(),
        }
    }

    /// Prints the pointer fields of `formats` in hex (as perf does), other numbers in decimal.
    pub fn with_addresses<'f>(
        mut self,
        formats: impl IntoIterator<Item = &'f EventFormat>,
    ) -> Self {
        for format in formats {
            for field in format.fields.iter().filter(|f| f.is_pointer()) {
                self.addresses
                    .insert((format.full_name(), field.name.clone()));
            }
        }
        self
    }
}

/// One event as text (no newline at the end unless it has a stack); `is_address` says which
/// fields to print in hex.
pub fn write_text(event: &Event<'_>, is_address: &dyn Fn(&str) -> bool, line: &mut String) {
    let cpu = if event.cpu == u32::MAX {
        "[???]".to_owned()
    } else {
        format!("[{:03}]", event.cpu)
    };
    let _ = write!(
        line,
        "{:>16} {:>5} {cpu} {:>5}.{:06}: {}:",
        event.comm,
        event.tid,
        event.time_ns / 1_000_000_000,
        event.time_ns % 1_000_000_000 / 1000,
        event.name,
    );
    for (name, value) in event.fields {
        line.push(' ');
        line.push_str(name);
        line.push('=');
        match value {
            Value::Unsigned(v) if is_address(name) => {
                let _ = write!(line, "{v:#x}");
            }
            _ => write_value_text(value, line),
        }
    }
    if let Some(stack) = event.stack {
        for frame in stack.iter().rev() {
            line.push_str("\n\t");
            line.push_str(frame);
        }
        line.push('\n');
    }
}

/// A value as `field=` shows it: numbers in decimal, strings as they are unless they need
/// quotes (empty, spaces, `"`, `=`, control characters: then JSON-quoted), other arrays as
/// `[xx,xx,...]` in hex.
pub fn write_value_text(value: &Value<'_>, line: &mut String) {
    match value {
        Value::Signed(v) => {
            let _ = write!(line, "{v}");
        }
        Value::Unsigned(v) => {
            let _ = write!(line, "{v}");
        }
        Value::Str(s) => {
            let plain = !s.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
            if plain {
                line.push_str(s);
            } else {
                line.push_str(&serde_json::Value::from(s.as_ref()).to_string());
            }
        }
        Value::Bytes(bytes) => {
            line.push('[');
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{b:02x}");
            }
            line.push(']');
        }
    }
}

/// One event as a JSON object: `event`, `comm`, `pid`, `tid`, `cpu` (null when unknown),
/// `time_ns`, `fields` (in format order) and, with `-g`, `stack` (outermost frame first).
pub fn write_json(event: &Event<'_>, line: &mut String) {
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let cpu = if event.cpu == u32::MAX {
        "null".to_owned()
    } else {
        event.cpu.to_string()
    };
    let _ = write!(
        line,
        "{{\"event\":{},\"comm\":{},\"pid\":{},\"tid\":{},\"cpu\":{cpu},\"time_ns\":{},\"fields\":{{",
        text(event.name),
        text(event.comm),
        event.pid,
        event.tid,
        event.time_ns,
    );
    for (i, (name, value)) in event.fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&text(name));
        line.push(':');
        match value {
            Value::Signed(v) => {
                let _ = write!(line, "{v}");
            }
            Value::Unsigned(v) => {
                let _ = write!(line, "{v}");
            }
            Value::Str(s) => line.push_str(&text(s)),
            Value::Bytes(bytes) => {
                line.push('[');
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    let _ = write!(line, "{b}");
                }
                line.push(']');
            }
        }
    }
    line.push('}');
    if let Some(stack) = event.stack {
        line.push_str(",\"stack\":");
        line.push_str(&serde_json::Value::from(stack.to_vec()).to_string());
    }
    line.push('}');
}

impl<W: Write> EventSink for LinePrinter<W> {
    fn event(&mut self, event: &Event<'_>) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        if self.json {
            write_json(event, &mut self.line);
        } else {
            let addresses = &self.addresses;
            let is_address = |field: &str| {
                !addresses.is_empty()
                    && addresses.contains(&(event.name.to_owned(), field.to_owned()))
            };
            write_text(event, &is_address, &mut self.line);
        }
        self.line.push('\n');
        if let Err(e) = self.out.write_all(self.line.as_bytes()) {
            self.error = Some(e);
        }
    }

    fn lost(&mut self, _count: u64) {}
}

impl<W: Write> TraceOutput for LinePrinter<W> {
    fn tick(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }

    fn lost_note(&self, lost: u64) -> String {
        format!(
            "{lost} events lost: the lines above are incomplete; use a bigger ring buffer \
             (-m PAGES) or a --filter"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn event<'a>(fields: &'a [(&'a str, Value<'a>)], stack: Option<&'a [String]>) -> Event<'a> {
        Event {
            name: "syscalls:sys_enter_openat",
            time_ns: 12_345_678_901_234,
            cpu: 3,
            pid: 40,
            tid: 41,
            comm: "cat",
            cgroup: None,
            fields,
            stack,
        }
    }

    #[test]
    fn a_line_has_perf_scripts_columns_then_the_fields() {
        let fields = [
            ("dfd", Value::Signed(-100)),
            ("filename", Value::Str(Cow::Borrowed("/etc/hosts"))),
            ("flags", Value::Unsigned(0)),
            ("buf", Value::Unsigned(0x7ffd_1234)),
            ("name", Value::Str(Cow::Borrowed("a b"))),
            ("bytes", Value::Bytes(&[1, 0xab])),
        ];
        let mut line = String::new();
        write_text(&event(&fields, None), &|f| f == "buf", &mut line);
        assert_eq!(
            line,
            "             cat    41 [003] 12345.678901: syscalls:sys_enter_openat: \
             dfd=-100 filename=/etc/hosts flags=0 buf=0x7ffd1234 name=\"a b\" bytes=[01,ab]"
        );
        let stack = ["main".to_owned(), "write".to_owned()];
        line.clear();
        write_text(&event(&[], Some(&stack)), &|_| false, &mut line);
        assert!(
            line.ends_with(": syscalls:sys_enter_openat:\n\twrite\n\tmain\n"),
            "{line}"
        );
    }

    #[test]
    fn json_lines_parse_and_keep_the_values() {
        let fields = [
            ("dfd", Value::Signed(-100)),
            ("filename", Value::Str(Cow::Borrowed("a \"q\""))),
            ("bytes", Value::Bytes(&[1, 255])),
        ];
        let stack = ["main".to_owned()];
        let mut line = String::new();
        write_json(&event(&fields, Some(&stack)), &mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "syscalls:sys_enter_openat");
        assert_eq!(v["tid"], 41);
        assert_eq!(v["time_ns"], 12_345_678_901_234u64);
        assert_eq!(v["fields"]["dfd"], -100);
        assert_eq!(v["fields"]["filename"], "a \"q\"");
        assert_eq!(v["fields"]["bytes"], serde_json::json!([1, 255]));
        assert_eq!(v["stack"], serde_json::json!(["main"]));
    }
}
