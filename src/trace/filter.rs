//! `--filter EXPR`: the kernel's tracepoint filter syntax, checked against an event's fields
//! before it is set with PERF_EVENT_IOC_SET_FILTER (to which the kernel answers only EINVAL).
//!
//! The grammar checked is the one the kernel's event filter parser accepts
//! (Documentation/trace/events.rst, "Event filtering"): predicates `FIELD OP VALUE` joined by
//! `&&` and `||`, negated by `!`, grouped by parentheses; `OP` is `==`, `!=`, `<`, `<=`, `>`,
//! `>=` or `&` for numbers, `==`, `!=` or `~` (a glob) for strings; `FIELD` is a field of the
//! event's format, a `common_*` field, or `CPU`/`COMM` (also `cpu`/`comm`). Numbers are
//! decimal, octal (`0` prefix) or hex (`0x`); strings are quoted (`"dd"`, `'dd'`) or one
//! unquoted word. Hand-written: it only has to find the first mistake and its column.
//!
//! The same parser compiles a filter into a [`Filter`] evaluated in user space, for events the
//! kernel cannot filter: probes (`u:`, `ur:`, `usdt:`; their fields are their arguments) and
//! events read back from a file.

use kprof_perfdata::tracepoint::{EventFormat, FieldKind};

use crate::trace::agg::EventFields;
use crate::trace::capture::TraceOutput;
use crate::trace::event::{Event, EventSink, Value};

/// A mistake in a filter: what, at which column (1-based, in characters), and what would be
/// right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// What is wrong.
    pub message: String,
    /// Where, counted from 1.
    pub column: usize,
    /// What is allowed there (the event's fields), when that helps.
    pub hint: Option<String>,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// How a field may be compared.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Number,
    Text,
    /// Arrays of other things: the kernel cannot filter on them.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(&'static str),
    Open,
    Close,
    And,
    Or,
    Not,
}

/// Checks `filter` against `format`; the error names the column and, for an unknown field,
/// the event's fields.
pub fn check(filter: &str, format: &EventFormat) -> Result<(), FilterError> {
    compile_for_format(filter, format).map(drop)
}

/// Compiles `filter` for a tracepoint of `format`, for evaluation in user space (events read
/// from a file); checked as [`check`] does.
pub fn compile_for_format(filter: &str, format: &EventFormat) -> Result<Filter, FilterError> {
    compile(filter, &FormatFields(format))
}

/// Compiles `filter` for a probe event with `fields` (its arguments, all numbers), evaluated in
/// user space. Besides the arguments a filter may name `comm`/`COMM` (a string), and
/// `cpu`/`CPU`, `pid`, `tid` and `common_pid` (numbers).
pub fn compile_for_probe(filter: &str, fields: &EventFields) -> Result<Filter, FilterError> {
    compile(filter, &ProbeFields(fields))
}

fn compile(filter: &str, fields: &dyn FieldTypes) -> Result<Filter, FilterError> {
    let tokens = tokenize(filter)?;
    if tokens.is_empty() {
        return Err(FilterError {
            message: "empty filter".to_owned(),
            column: 1,
            hint: None,
        });
    }
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        fields,
        end: filter.chars().count() + 1,
    };
    let compiled = parser.expression()?;
    if let Some((column, token)) = parser.peek() {
        return Err(FilterError {
            message: format!("unexpected {}", describe(token)),
            column,
            hint: None,
        });
    }
    Ok(compiled)
}

/// What a filter may name, and how each name compares.
trait FieldTypes {
    /// How `name` compares; `None` when the event has no such field.
    fn field_type(&self, name: &str) -> Option<FieldType>;
    /// The hint for an unknown field: the event's fields.
    fn hint(&self) -> String;
}

struct FormatFields<'f>(&'f EventFormat);

impl FieldTypes for FormatFields<'_> {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        let format = self.0;
        match name {
            "CPU" | "cpu" if format.field(name).is_none() => return Some(FieldType::Number),
            "COMM" | "comm" if format.field(name).is_none() => return Some(FieldType::Text),
            _ => {}
        }
        let field = format.field(name)?;
        Some(match field.kind {
            FieldKind::Scalar => FieldType::Number,
            _ if field.is_string() => FieldType::Text,
            _ => FieldType::Other,
        })
    }

    fn hint(&self) -> String {
        format!("fields of {}: {}", self.0.full_name(), field_list(self.0))
    }
}

struct ProbeFields<'f>(&'f EventFields);

impl FieldTypes for ProbeFields<'_> {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        if let Some((_, numeric)) = self.0.fields.iter().find(|(n, _)| n == name) {
            return Some(if *numeric {
                FieldType::Number
            } else {
                FieldType::Text
            });
        }
        match name {
            "comm" | "COMM" => Some(FieldType::Text),
            "cpu" | "CPU" | "pid" | "tid" | "common_pid" => Some(FieldType::Number),
            _ => None,
        }
    }

    fn hint(&self) -> String {
        let names: Vec<&str> = self.0.fields.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "fields of {}: {} (and comm, cpu, pid, tid)",
            self.0.name,
            names.join(", ")
        )
    }
}

/// A compiled filter, evaluated on each event in user space with the kernel's rules: numbers
/// compare by value (`&` is true when the bitwise and is not zero), strings exactly or as a
/// glob (`~`, with `*` and `?`). A field the event lacks (an argument not decoded) fails its
/// predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Both hold.
    And(Box<Filter>, Box<Filter>),
    /// Either holds.
    Or(Box<Filter>, Box<Filter>),
    /// It does not hold.
    Not(Box<Filter>),
    /// `FIELD OP NUMBER`.
    Number {
        /// The field.
        field: String,
        /// `==`, `!=`, `<`, `<=`, `>`, `>=` or `&`.
        op: &'static str,
        /// The number.
        value: i128,
    },
    /// `FIELD OP STRING`.
    Text {
        /// The field.
        field: String,
        /// `==`, `!=` or `~`.
        op: &'static str,
        /// The string (a glob for `~`).
        value: String,
    },
}

impl Filter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &Event<'_>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(event) && b.matches(event),
            Filter::Or(a, b) => a.matches(event) || b.matches(event),
            Filter::Not(a) => !a.matches(event),
            Filter::Number { field, op, value } => {
                let Some(actual) = field_value(event, field).and_then(|v| v.as_i128()) else {
                    return false;
                };
                match *op {
                    "==" => actual == *value,
                    "!=" => actual != *value,
                    "<" => actual < *value,
                    "<=" => actual <= *value,
                    ">" => actual > *value,
                    ">=" => actual >= *value,
                    _ => actual & *value != 0,
                }
            }
            Filter::Text { field, op, value } => {
                let Some(Value::Str(actual)) = field_value(event, field) else {
                    return false;
                };
                match *op {
                    "==" => actual == value.as_str(),
                    "!=" => actual != value.as_str(),
                    _ => kprof_profiler::tracefs_names::glob_match(
                        value.as_bytes(),
                        actual.as_bytes(),
                    ),
                }
            }
        }
    }
}

/// Events passed on to `inner` only when their event's filter (if it has one) holds: the
/// user-space half of `--filter`.
pub struct FilteredOutput<'o> {
    inner: &'o mut dyn TraceOutput,
    /// Compiled filters by event name.
    filters: Vec<(String, Filter)>,
    /// Events the filters rejected.
    pub rejected: u64,
}

impl<'o> FilteredOutput<'o> {
    /// Filters events named in `filters` before `inner` sees them.
    pub fn new(inner: &'o mut dyn TraceOutput, filters: Vec<(String, Filter)>) -> Self {
        FilteredOutput {
            inner,
            filters,
            rejected: 0,
        }
    }
}

impl EventSink for FilteredOutput<'_> {
    fn event(&mut self, event: &Event<'_>) {
        let filter = self.filters.iter().find(|(name, _)| name == event.name);
        if filter.is_none_or(|(_, f)| f.matches(event)) {
            self.inner.event(event);
        } else {
            self.rejected += 1;
        }
    }
    fn lost(&mut self, count: u64) {
        self.inner.lost(count);
    }
}

impl TraceOutput for FilteredOutput<'_> {
    fn tick(&mut self) -> std::io::Result<()> {
        self.inner.tick()
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.inner.finish()
    }
    fn prints_while_tracing(&self) -> bool {
        self.inner.prints_while_tracing()
    }
    fn lost_note(&self, lost: u64) -> String {
        self.inner.lost_note(lost)
    }
}

/// A field by a filter's name for it (`COMM`, `CPU` and `common_pid` as the kernel names them).
fn field_value<'a>(event: &Event<'a>, name: &str) -> Option<Value<'a>> {
    let own = event.fields.iter().find(|(n, _)| *n == name);
    if let Some((_, value)) = own {
        return Some(value.clone());
    }
    match name {
        "COMM" => event.get("comm"),
        "CPU" => event.get("cpu"),
        "common_pid" => event.get("pid"),
        other => event.get(other),
    }
}

/// The event's own fields, comma-separated, for messages.
pub fn field_list(format: &EventFormat) -> String {
    format
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        let two = |a: char, b: char| c == a && next == Some(b);
        let token = if c.is_whitespace() {
            i += 1;
            continue;
        } else if two('&', '&') {
            i += 2;
            Token::And
        } else if two('|', '|') {
            i += 2;
            Token::Or
        } else if two('=', '=') || two('!', '=') || two('<', '=') || two('>', '=') {
            let op = match c {
                '=' => "==",
                '!' => "!=",
                '<' => "<=",
                _ => ">=",
            };
            i += 2;
            Token::Op(op)
        } else if matches!(c, '<' | '>' | '&' | '~') {
            i += 1;
            Token::Op(match c {
                '<' => "<",
                '>' => ">",
                '&' => "&",
                _ => "~",
            })
        } else if c == '!' {
            i += 1;
            Token::Not
        } else if c == '(' {
            i += 1;
            Token::Open
        } else if c == ')' {
            i += 1;
            Token::Close
        } else if c == '"' || c == '\'' {
            let Some(len) = chars
                .get(i + 1..)
                .and_then(|rest| rest.iter().position(|&d| d == c))
            else {
                return Err(FilterError {
                    message: format!("string opened with {c} is not closed"),
                    column,
                    hint: None,
                });
            };
            let s: String = chars
                .get(i + 1..i + 1 + len)
                .unwrap_or_default()
                .iter()
                .collect();
            i += len + 2;
            Token::Quoted(s)
        } else if c == '|' || c == '=' {
            return Err(FilterError {
                message: format!("'{c}' alone is not an operator (use {c}{c})"),
                column,
                hint: None,
            });
        } else {
            let start = i;
            while chars.get(i).is_some_and(|&d| {
                !d.is_whitespace()
                    && !matches!(d, '&' | '|' | '=' | '!' | '<' | '>' | '~' | '(' | ')')
            }) {
                i += 1;
            }
            Token::Word(chars.get(start..i).unwrap_or_default().iter().collect())
        };
        out.push((column, token));
    }
    Ok(out)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("\"{w}\""),
        Token::Quoted(s) => format!("string \"{s}\""),
        Token::Op(op) => format!("operator {op}"),
        Token::Open => "(".to_owned(),
        Token::Close => ")".to_owned(),
        Token::And => "&&".to_owned(),
        Token::Or => "||".to_owned(),
        Token::Not => "!".to_owned(),
    }
}

struct Parser<'t> {
    tokens: &'t [(usize, Token)],
    at: usize,
    fields: &'t dyn FieldTypes,
    /// The column just past the end, for "missing ..." at the end.
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.at).map(|(c, t)| (*c, t))
    }

    fn bump(&mut self) -> Option<(usize, Token)> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn column(&self) -> usize {
        self.peek().map_or(self.end, |(c, _)| c)
    }

    /// or := and ('||' and)*
    fn expression(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.conjunction()?;
        while matches!(self.peek(), Some((_, Token::Or))) {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    /// and := unary ('&&' unary)*
    fn conjunction(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while matches!(self.peek(), Some((_, Token::And))) {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    /// unary := '!' unary | '(' or ')' | predicate
    fn unary(&mut self) -> Result<Filter, FilterError> {
        match self.peek() {
            Some((_, Token::Not)) => {
                self.at += 1;
                Ok(Filter::Not(Box::new(self.unary()?)))
            }
            Some((open, Token::Open)) => {
                self.at += 1;
                let inner = self.expression()?;
                match self.bump() {
                    Some((_, Token::Close)) => Ok(inner),
                    _ => Err(FilterError {
                        message: "( is not closed".to_owned(),
                        column: open,
                        hint: None,
                    }),
                }
            }
            _ => self.predicate(),
        }
    }

    fn predicate(&mut self) -> Result<Filter, FilterError> {
        let column = self.column();
        let name = match self.bump() {
            Some((_, Token::Word(w))) => w,
            Some((c, t)) => {
                return Err(FilterError {
                    message: format!("expected a field name, found {}", describe(&t)),
                    column: c,
                    hint: None,
                });
            }
            None => {
                return Err(FilterError {
                    message: "expected a field name at the end".to_owned(),
                    column,
                    hint: None,
                });
            }
        };
        let Some(kind) = self.fields.field_type(&name) else {
            return Err(FilterError {
                message: format!("unknown field \"{name}\""),
                column,
                hint: Some(self.fields.hint()),
            });
        };
        let op_column = self.column();
        let op = match self.bump() {
            Some((_, Token::Op(op))) => op,
            other => {
                let found = other.map_or("the end".to_owned(), |(_, t)| describe(&t));
                return Err(FilterError {
                    message: format!(
                        "expected an operator (==, !=, <, <=, >, >=, &, ~) after \"{name}\", found {found}"
                    ),
                    column: op_column,
                    hint: None,
                });
            }
        };
        let value_column = self.column();
        let value = match self.bump() {
            Some((_, Token::Word(w))) => (w, false),
            Some((_, Token::Quoted(s))) => (s, true),
            other => {
                let found = other.map_or("the end".to_owned(), |(_, t)| describe(&t));
                return Err(FilterError {
                    message: format!("expected a value after {op}, found {found}"),
                    column: value_column,
                    hint: None,
                });
            }
        };
        match kind {
            FieldType::Number => {
                if op == "~" {
                    return Err(FilterError {
                        message: format!("\"{name}\" is a number: ~ compares strings"),
                        column: op_column,
                        hint: None,
                    });
                }
                match parse_number(&value.0) {
                    Some(number) if !value.1 => Ok(Filter::Number {
                        field: name,
                        op,
                        value: number,
                    }),
                    _ => Err(FilterError {
                        message: format!(
                            "\"{name}\" is a number: compare it with a number, not \"{}\"",
                            value.0
                        ),
                        column: value_column,
                        hint: None,
                    }),
                }
            }
            FieldType::Text => {
                if !matches!(op, "==" | "!=" | "~") {
                    return Err(FilterError {
                        message: format!("\"{name}\" is a string: use ==, != or ~, not {op}"),
                        column: op_column,
                        hint: None,
                    });
                }
                Ok(Filter::Text {
                    field: name,
                    op,
                    value: value.0,
                })
            }
            FieldType::Other => Err(FilterError {
                message: format!("\"{name}\" is an array: the kernel cannot filter on it"),
                column,
                hint: None,
            }),
        }
    }
}

/// A number as the kernel's `kstrtoll`/`kstrtoull` with base 0 read it.
fn parse_number(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i128::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(digits.get(1..)?, 8).ok()?
    } else {
        digits.parse::<u64>().ok()?.into()
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_format() -> EventFormat {
        EventFormat::parse(
            "syscalls",
            "name: sys_enter_read\nID: 1\nformat:\n\
             \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
             \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
             \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
             \tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;\n\
             \tfield:char * buf;\toffset:24;\tsize:8;\tsigned:0;\n\
             \tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;\n\
             \tfield:__data_loc char[] name;\toffset:40;\tsize:4;\tsigned:0;\n\
             \tfield:u64 args[6];\toffset:44;\tsize:48;\tsigned:0;\n\n\
             print fmt: \"fd: %d\", REC->fd\n",
        )
        .unwrap()
    }

    fn error(filter: &str) -> FilterError {
        check(filter, &read_format()).unwrap_err()
    }

    #[test]
    fn good_filters_pass() {
        for good in [
            "count > 4096 && fd == 3",
            "count>4096&&fd==3",
            "(fd == 0 || fd == 0x3) && !(count <= 010)",
            "common_pid != 1",
            "comm == \"dd\"",
            "COMM ~ 'd*'",
            "name == foo",
            "CPU == 0",
            "fd & 1",
            "__syscall_nr == -1",
        ] {
            assert_eq!(check(good, &read_format()), Ok(()), "{good}");
        }
    }

    #[test]
    fn mistakes_point_at_their_column() {
        let e = error("cnt > 4");
        assert_eq!(e.column, 1);
        assert_eq!(
            e.to_string(),
            "unknown field \"cnt\" at column 1; fields of syscalls:sys_enter_read: __syscall_nr, \
             fd, buf, count, name, args"
        );
        assert_eq!(error("fd == 3 && cnt > 4").column, 12);
        let e = error("count > big");
        assert_eq!(e.column, 9);
        assert!(e.message.contains("is a number"), "{}", e.message);
        assert_eq!(error("count = 4").column, 7);
        assert_eq!(error("count >").column, 8);
        assert_eq!(error("(count > 1").column, 1);
        assert_eq!(error("count > 1)").column, 10);
        assert_eq!(error("name < \"a\"").column, 6);
        assert_eq!(error("args == 1").column, 1);
        assert_eq!(error("comm == \"dd").column, 9);
        assert_eq!(error("count 4").column, 7);
        assert_eq!(error("").column, 1);
    }

    fn probe_event<'a>(fields: &'a [(&'a str, Value<'a>)]) -> Event<'a> {
        Event {
            name: "u:/bin/prog:work",
            time_ns: 0,
            cpu: 3,
            pid: 10,
            tid: 11,
            comm: "prog",
            cgroup: None,
            fields,
            stack: None,
        }
    }

    // See: issue #15 (a user-space --filter on probe arguments).
    #[test]
    fn probe_filters_evaluate_with_the_kernel_rules() {
        let fields = EventFields {
            name: "u:/bin/prog:work".to_owned(),
            fields: vec![("arg0".to_owned(), true), ("arg1".to_owned(), true)],
        };
        let values = [("arg0", Value::Unsigned(300)), ("arg1", Value::Signed(-5))];
        let event = probe_event(&values);
        let holds = |filter: &str| compile_for_probe(filter, &fields).unwrap().matches(&event);
        for yes in [
            "arg0 > 100",
            "arg0 >= 300 && arg1 < 0",
            "arg0 == 0x12c",
            "arg0 & 4",
            "!(arg0 < 100)",
            "arg0 == 1 || arg1 == -5",
            "comm == prog",
            "COMM ~ \"pr*\"",
            "cpu == 3 && pid == 10 && tid == 11 && common_pid == 10",
            "arg1 != 5",
        ] {
            assert!(holds(yes), "{yes}");
        }
        for no in [
            "arg0 > 300",
            "arg0 & 1",
            "arg1 >= 0",
            "comm != prog",
            "comm ~ 'x*'",
            "(arg0 > 100) && !(arg1 == -5)",
        ] {
            assert!(!holds(no), "{no}");
        }
        // An argument the sample lacks fails its predicate.
        let missing = probe_event(&values[..1]);
        let filter = compile_for_probe("arg1 < 0", &fields).unwrap();
        assert!(!filter.matches(&missing));
        let e = compile_for_probe("arg7 > 1", &fields).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown field \"arg7\" at column 1; fields of u:/bin/prog:work: arg0, arg1 \
             (and comm, cpu, pid, tid)"
        );
        assert!(compile_for_probe("arg0 ~ 'a*'", &fields).is_err());
        assert!(compile_for_probe("comm > 1", &fields).is_err());
    }

    #[test]
    fn tracepoint_filters_compile_for_events_read_from_files() {
        let filter = compile_for_format("count > 4096 && fd == 3", &read_format()).unwrap();
        let values = [("fd", Value::Unsigned(3)), ("count", Value::Unsigned(8192))];
        assert!(filter.matches(&probe_event(&values)));
        let small = [("fd", Value::Unsigned(3)), ("count", Value::Unsigned(10))];
        assert!(!filter.matches(&probe_event(&small)));
    }
}
