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

use kprof_perfdata::tracepoint::{EventFormat, FieldKind};

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
enum FieldType {
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
        format,
        end: filter.chars().count() + 1,
    };
    parser.expression()?;
    if let Some((column, token)) = parser.peek() {
        return Err(FilterError {
            message: format!("unexpected {}", describe(token)),
            column,
            hint: None,
        });
    }
    Ok(())
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
    format: &'t EventFormat,
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
    fn expression(&mut self) -> Result<(), FilterError> {
        self.conjunction()?;
        while matches!(self.peek(), Some((_, Token::Or))) {
            self.at += 1;
            self.conjunction()?;
        }
        Ok(())
    }

    /// and := unary ('&&' unary)*
    fn conjunction(&mut self) -> Result<(), FilterError> {
        self.unary()?;
        while matches!(self.peek(), Some((_, Token::And))) {
            self.at += 1;
            self.unary()?;
        }
        Ok(())
    }

    /// unary := '!' unary | '(' or ')' | predicate
    fn unary(&mut self) -> Result<(), FilterError> {
        match self.peek() {
            Some((_, Token::Not)) => {
                self.at += 1;
                self.unary()
            }
            Some((open, Token::Open)) => {
                self.at += 1;
                self.expression()?;
                match self.bump() {
                    Some((_, Token::Close)) => Ok(()),
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

    fn predicate(&mut self) -> Result<(), FilterError> {
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
        let Some(kind) = self.field_type(&name) else {
            return Err(FilterError {
                message: format!("unknown field \"{name}\""),
                column,
                hint: Some(format!(
                    "fields of {}: {}",
                    self.format.full_name(),
                    field_list(self.format)
                )),
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
                if value.1 || parse_number(&value.0).is_none() {
                    return Err(FilterError {
                        message: format!(
                            "\"{name}\" is a number: compare it with a number, not \"{}\"",
                            value.0
                        ),
                        column: value_column,
                        hint: None,
                    });
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
            }
            FieldType::Other => {
                return Err(FilterError {
                    message: format!("\"{name}\" is an array: the kernel cannot filter on it"),
                    column,
                    hint: None,
                });
            }
        }
        Ok(())
    }

    fn field_type(&self, name: &str) -> Option<FieldType> {
        match name {
            "CPU" | "cpu" if self.format.field(name).is_none() => return Some(FieldType::Number),
            "COMM" | "comm" if self.format.field(name).is_none() => return Some(FieldType::Text),
            _ => {}
        }
        let field = self.format.field(name)?;
        Some(match field.kind {
            FieldKind::Scalar => FieldType::Number,
            _ if field.is_string() => FieldType::Text,
            _ => FieldType::Other,
        })
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
}
