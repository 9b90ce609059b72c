//! `--by` keys: what an event is grouped by, and how bpftrace prints a map key (`@[bash, 42]`).

use serde_json::Value as Json;

use crate::trace::event::{Event, Value};

/// One element of `--by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// The thread's name.
    Comm,
    /// The process id.
    Pid,
    /// The thread id.
    Tid,
    /// The CPU.
    Cpu,
    /// The cgroup path.
    Cgroup,
    /// The event's name (`syscalls:sys_enter_read`).
    Event,
    /// The call stack (`-g`).
    Stack,
    /// A format field of the event.
    Field(String),
}

impl KeySpec {
    /// Parses one `--by` word; anything that is not a built-in key names a field.
    pub fn parse(word: &str) -> KeySpec {
        match word {
            "comm" => KeySpec::Comm,
            "pid" => KeySpec::Pid,
            "tid" => KeySpec::Tid,
            "cpu" => KeySpec::Cpu,
            "cgroup" => KeySpec::Cgroup,
            "event" => KeySpec::Event,
            "stack" => KeySpec::Stack,
            field => KeySpec::Field(field.to_string()),
        }
    }

    /// The word the user gave.
    pub fn name(&self) -> &str {
        match self {
            KeySpec::Comm => "comm",
            KeySpec::Pid => "pid",
            KeySpec::Tid => "tid",
            KeySpec::Cpu => "cpu",
            KeySpec::Cgroup => "cgroup",
            KeySpec::Event => "event",
            KeySpec::Stack => "stack",
            KeySpec::Field(name) => name,
        }
    }

    /// This key's value in `event`.
    pub fn extract(&self, event: &Event<'_>) -> KeyPart {
        match self {
            KeySpec::Comm => KeyPart::Str(event.comm.to_string()),
            KeySpec::Pid => KeyPart::Num(i128::from(event.pid)),
            KeySpec::Tid => KeyPart::Num(i128::from(event.tid)),
            KeySpec::Cpu => KeyPart::Num(i128::from(event.cpu)),
            KeySpec::Cgroup => match event.cgroup {
                Some(path) => KeyPart::Str(path.to_string()),
                None => KeyPart::Missing,
            },
            KeySpec::Event => KeyPart::Str(event.name.to_string()),
            KeySpec::Stack => match event.stack {
                Some(frames) => KeyPart::Stack(frames.to_vec()),
                None => KeyPart::Missing,
            },
            KeySpec::Field(name) => match event.get(name) {
                Some(value) => KeyPart::from_value(&value),
                None => KeyPart::Missing,
            },
        }
    }
}

/// One element of a key's value. Ordered so that ties in a sorted map print in key order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPart {
    /// A number (signed and unsigned fields compare by value).
    Num(i128),
    /// A string.
    Str(String),
    /// A byte array.
    Bytes(Vec<u8>),
    /// A call stack, outermost frame first.
    Stack(Vec<String>),
    /// The event has no such key (a field of another event, no cgroup, no stack).
    Missing,
}

impl KeyPart {
    /// The key part of a field's value.
    pub fn from_value(value: &Value<'_>) -> KeyPart {
        match value {
            Value::Signed(v) => KeyPart::Num(i128::from(*v)),
            Value::Unsigned(v) => KeyPart::Num(i128::from(*v)),
            Value::Str(s) => KeyPart::Str(s.to_string()),
            Value::Bytes(b) => KeyPart::Bytes(b.to_vec()),
        }
    }

    /// As bpftrace prints it inside `@[...]`: numbers in decimal, strings as they are, byte
    /// arrays with non-printable bytes as `\xNN`, stacks one frame a line, innermost first.
    pub fn to_text(&self) -> String {
        match self {
            KeyPart::Num(v) => v.to_string(),
            KeyPart::Str(s) => s.clone(),
            KeyPart::Bytes(bytes) => bytes
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        char::from(b).to_string()
                    } else {
                        format!("\\x{b:02x}")
                    }
                })
                .collect(),
            KeyPart::Stack(frames) => {
                let mut text = String::from("\n");
                for frame in frames.iter().rev() {
                    text.push_str("    ");
                    text.push_str(frame);
                    text.push('\n');
                }
                text
            }
            KeyPart::Missing => "<unknown>".to_string(),
        }
    }

    /// As JSON: numbers, strings, stacks as arrays (innermost first), missing as null.
    pub fn to_json(&self) -> Json {
        match self {
            KeyPart::Num(v) => match i64::try_from(*v) {
                Ok(small) => Json::from(small),
                Err(_) => u64::try_from(*v).map_or_else(|_| Json::from(v.to_string()), Json::from),
            },
            KeyPart::Str(s) => Json::from(s.as_str()),
            KeyPart::Bytes(_) => Json::from(self.to_text()),
            KeyPart::Stack(frames) => Json::from(frames.iter().rev().cloned().collect::<Vec<_>>()),
            KeyPart::Missing => Json::Null,
        }
    }
}

/// A whole key: one part per `--by` element (empty without `--by`).
pub type Key = Vec<KeyPart>;

/// `@name[a, b]` as bpftrace prints a map entry's name (`@name` without keys).
pub fn entry_name(map: &str, key: &Key) -> String {
    if key.is_empty() {
        return map.to_string();
    }
    let parts: Vec<String> = key.iter().map(KeyPart::to_text).collect();
    format!("{map}[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn keys_print_as_bpftrace_map_keys() {
        let key = vec![
            KeyPart::Str("echo".into()),
            KeyPart::Num(5004),
            KeyPart::Str("x".into()),
        ];
        assert_eq!(entry_name("@", &key), "@[echo, 5004, x]");
        assert_eq!(entry_name("@", &Vec::new()), "@");
        let stack = vec![KeyPart::Stack(vec!["main".into(), "f".into(), "g".into()])];
        assert_eq!(entry_name("@s", &stack), "@s[\n    g\n    f\n    main\n]");
        assert_eq!(KeyPart::Bytes(vec![b'a', 0, 0xff]).to_text(), "a\\x00\\xff");
    }

    #[test]
    fn extracts_builtins_and_fields() {
        let fields = [
            ("count", Value::Unsigned(4096)),
            ("name", Value::Str(Cow::Borrowed("sda"))),
        ];
        let event = Event {
            name: "syscalls:sys_enter_read",
            time_ns: 1,
            cpu: 3,
            pid: 10,
            tid: 11,
            comm: "cat",
            cgroup: None,
            fields: &fields,
            stack: None,
        };
        let spec: Vec<KeySpec> = [
            "comm", "pid", "tid", "cpu", "event", "count", "name", "cgroup", "nope",
        ]
        .into_iter()
        .map(KeySpec::parse)
        .collect();
        let key: Key = spec.iter().map(|s| s.extract(&event)).collect();
        assert_eq!(
            key,
            vec![
                KeyPart::Str("cat".into()),
                KeyPart::Num(10),
                KeyPart::Num(11),
                KeyPart::Num(3),
                KeyPart::Str("syscalls:sys_enter_read".into()),
                KeyPart::Num(4096),
                KeyPart::Str("sda".into()),
                KeyPart::Missing,
                KeyPart::Missing,
            ]
        );
    }
}
