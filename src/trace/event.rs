//! One decoded trace event: the contract between capture (rings, files) and what consumes events
//! (per-event lines, aggregations, latency pairing, syscall summaries).

use std::borrow::Cow;

/// A field's value, decoded from the event's tracefs format (or a probe's argument).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A signed integer field (`int`, `long`, `s32`, a signed `char`...).
    Signed(i64),
    /// An unsigned integer field (`unsigned int`, `size_t`, `u64`, pointers...).
    Unsigned(u64),
    /// A string: `char[]` arrays up to their NUL, `__data_loc char[]`, probe strings.
    Str(Cow<'a, str>),
    /// Any other array (`__data_loc` of non-chars, `u8[16]`...), as stored.
    Bytes(&'a [u8]),
}

impl Value<'_> {
    /// The value as a number where it is one (strings and byte arrays are not).
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            Value::Signed(v) => Some(i128::from(*v)),
            Value::Unsigned(v) => Some(i128::from(*v)),
            Value::Str(_) | Value::Bytes(_) => None,
        }
    }
}

/// One event, with everything a key, a value or a line may name.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The event's full name, `system:name` (`syscalls:sys_enter_read`, `probe_libc:malloc`).
    pub name: &'a str,
    /// Time of the event in nanoseconds (the recording's clock, `perf script`'s time × 1e9).
    pub time_ns: u64,
    /// The CPU it happened on.
    pub cpu: u32,
    /// Process id (thread group id).
    pub pid: i32,
    /// Thread id.
    pub tid: i32,
    /// The thread's name at the time of the event (`<unknown>` when the file never named it).
    pub comm: &'a str,
    /// The cgroup path of the task, when the recording carried cgroups.
    pub cgroup: Option<&'a str>,
    /// The event's fields in format order (the `common_*` fields left out).
    pub fields: &'a [(&'a str, Value<'a>)],
    /// The symbolized call stack, outermost frame first, when recorded with `-g`.
    pub stack: Option<&'a [String]>,
}

impl<'a> Event<'a> {
    /// The value of a field by name: a format field, or one of the built-in keys
    /// `comm`, `pid`, `tid`, `cpu`, `cgroup`.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        match key {
            "comm" => Some(Value::Str(Cow::Borrowed(self.comm))),
            "pid" => Some(Value::Signed(i64::from(self.pid))),
            "tid" => Some(Value::Signed(i64::from(self.tid))),
            "cpu" => Some(Value::Unsigned(u64::from(self.cpu))),
            "cgroup" => self.cgroup.map(|c| Value::Str(Cow::Borrowed(c))),
            _ => self
                .fields
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, v)| v.clone()),
        }
    }
}

/// What consumes events: a printer of lines, an aggregation, a latency pairer.
pub trait EventSink {
    /// One event, in time order within each CPU (and in global time order when read from a file).
    fn event(&mut self, event: &Event<'_>);
    /// `count` events the kernel dropped (ring buffer full): results built on them are partial.
    fn lost(&mut self, count: u64);
}
