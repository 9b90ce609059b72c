//! A tracepoint's `print fmt`: a C format string and argument expressions over `REC->field`,
//! parsed once ([`PrintFormat::parse`]) and rendered per record as libtraceevent renders it for
//! `perf script`.
//!
//! What is evaluated: integer and string literals, `REC->field` (and `REC->field[i]`), casts to
//! integer types, the C unary, binary and `?:` operators, `__get_str`, `__get_rel_str`,
//! `__get_dynamic_array_len`, `__print_flags` and `__print_symbolic` (and their `_u64` forms);
//! `%d %i %u %x %X %o %c %s %p %%` with flags, width, precision and `h`/`l`/`ll`/`z` lengths.
//! Anything else (`%pS`, `__print_hex`, `sizeof`, helpers kprof does not know) makes the parse
//! fail, and the caller prints the fields instead: a line kprof cannot render exactly is never
//! rendered approximately.

use std::fmt::Write as _;

use super::field::{Field, FieldKind, FieldList, FieldValue, RawLayout, read_uint, sign_extend};
use crate::record::until_nul;

/// A parsed `print fmt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrintFormat {
    pieces: Vec<Piece>,
    args: Vec<Expr>,
}

/// A piece of the format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Conversion(Spec),
}

/// One `%...` conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alternate: bool,
    width: Option<Count>,
    precision: Option<Count>,
    /// Bits of the integer the conversion reads: 8, 16, 32 or 64; `None` for the `long` size.
    bits: Option<u32>,
    conversion: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    Fixed(usize),
    /// `*`: taken from the next argument.
    FromArg,
}

/// An integer C type a cast converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IntType {
    /// Size in bytes; `None` for `long` (the recording machine's size).
    size: Option<u8>,
    signed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Int(i128),
    Str(Vec<u8>),
    /// `REC->name`: index into `EventFormat::all_fields`.
    Field(usize),
    Index(usize, Box<Expr>),
    Unary(u8, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Cast(IntType, Box<Expr>),
    /// `__get_str(field)` / `__get_rel_str(field)`.
    DynamicStr(usize),
    /// `__get_dynamic_array_len(field)`.
    DynamicLen(usize),
    Flags {
        value: Box<Expr>,
        delimiter: Vec<u8>,
        table: Vec<(Expr, Vec<u8>)>,
    },
    Symbolic {
        value: Box<Expr>,
        table: Vec<(Expr, Vec<u8>)>,
    },
}

/// The value of an argument.
enum Value<'r> {
    Int(i128),
    Text(std::borrow::Cow<'r, [u8]>),
}

/// The format cannot be rendered for this record (a bad locator, too few arguments).
#[derive(Debug)]
pub(crate) struct RenderError;

impl PrintFormat {
    /// Parses `text` (what follows `print fmt:`), or `None` when it uses anything kprof does
    /// not evaluate exactly.
    pub(crate) fn parse(text: &str, fields: FieldList<'_>) -> Option<PrintFormat> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            fields,
        };
        let mut format = Vec::new();
        while let Some(Token::Str(s)) = parser.peek() {
            format.extend_from_slice(s);
            parser.pos += 1;
        }
        if !matches!(tokens.first(), Some(Token::Str(_))) {
            return None;
        }
        let mut args = Vec::new();
        while parser.eat(",") {
            args.push(parser.expr()?);
        }
        if parser.pos != tokens.len() {
            return None;
        }
        let pieces = parse_format_string(&format)?;
        Some(PrintFormat { pieces, args })
    }

    /// Appends the rendering of `raw` to `out`.
    pub(crate) fn render(
        &self,
        fields: FieldList<'_>,
        raw: &[u8],
        layout: RawLayout,
        out: &mut String,
    ) -> Result<(), RenderError> {
        let ctx = Context {
            fields,
            raw,
            layout,
        };
        let mut args = self.args.iter();
        for piece in &self.pieces {
            let spec = match piece {
                Piece::Literal(text) => {
                    out.push_str(text);
                    continue;
                }
                Piece::Conversion(spec) => spec,
            };
            let mut count = |c: Option<Count>| -> Result<Option<usize>, RenderError> {
                match c {
                    None => Ok(None),
                    Some(Count::Fixed(n)) => Ok(Some(n)),
                    Some(Count::FromArg) => {
                        let n = ctx.int(args.next().ok_or(RenderError)?)?;
                        Ok(Some(usize::try_from(n.max(0)).unwrap_or(0)))
                    }
                }
            };
            let width = count(spec.width)?;
            let precision = count(spec.precision)?;
            let arg = args.next().ok_or(RenderError)?;
            let text = match spec.conversion {
                b's' => match ctx.eval(arg)? {
                    Value::Text(text) => {
                        let mut s = String::from_utf8_lossy(until_nul(&text)).into_owned();
                        if let Some(max) = precision {
                            if let Some((cut, _)) = s.char_indices().nth(max) {
                                s.truncate(cut);
                            }
                        }
                        s
                    }
                    // libtraceevent prints a number given to `%s` in hex.
                    Value::Int(v) => format!("{:x}", v as u64),
                },
                b'c' => char::from(ctx.int(arg)? as u8).to_string(),
                b'p' => {
                    let v = truncate(ctx.int(arg)?, ctx.long_bits(), false);
                    format!("{:#x}", v as u64)
                }
                conversion => {
                    let bits = spec.bits.unwrap_or(ctx.long_bits());
                    let signed = matches!(conversion, b'd' | b'i');
                    let v = truncate(ctx.int(arg)?, bits, signed);
                    format_integer(spec, conversion, v, precision)
                }
            };
            pad(out, &text, spec, width);
        }
        Ok(())
    }
}

/// Appends `text` padded to `width`, as printf does (zero padding goes after a sign or `0x`).
fn pad(out: &mut String, text: &str, spec: &Spec, width: Option<usize>) {
    let len = text.chars().count();
    let fill = width.unwrap_or(0).saturating_sub(len);
    if fill == 0 {
        out.push_str(text);
    } else if spec.left {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && spec.conversion != b's' && spec.conversion != b'c' {
        let prefix_len = if text.starts_with("0x") || text.starts_with("0X") {
            2
        } else {
            usize::from(text.starts_with(['-', '+', ' ']))
        };
        let (prefix, digits) = text.split_at(prefix_len);
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(text);
    }
}

fn format_integer(spec: &Spec, conversion: u8, v: i128, precision: Option<usize>) -> String {
    let negative = v < 0;
    let magnitude = v.unsigned_abs();
    let mut digits = match conversion {
        b'x' => format!("{magnitude:x}"),
        b'X' => format!("{magnitude:X}"),
        b'o' => format!("{magnitude:o}"),
        _ => format!("{magnitude}"),
    };
    if let Some(p) = precision {
        if p == 0 && magnitude == 0 {
            digits.clear();
        } else if digits.len() < p {
            digits.insert_str(0, &"0".repeat(p - digits.len()));
        }
    }
    let prefix = match conversion {
        b'x' if spec.alternate && magnitude != 0 => "0x",
        b'X' if spec.alternate && magnitude != 0 => "0X",
        b'o' if spec.alternate && !digits.starts_with('0') => "0",
        b'd' | b'i' if negative => "-",
        b'd' | b'i' if spec.plus => "+",
        b'd' | b'i' if spec.space => " ",
        _ => "",
    };
    format!("{prefix}{digits}")
}

/// `v` as the C integer of `bits` bits and the given signedness would hold it.
fn truncate(v: i128, bits: u32, signed: bool) -> i128 {
    let low = (v as u128) & (u128::MAX >> (128 - bits));
    if signed && bits < 128 && low >> (bits - 1) & 1 == 1 {
        low as i128 - (1i128 << bits)
    } else {
        low as i128
    }
}

struct Context<'e, 'r> {
    fields: FieldList<'e>,
    raw: &'r [u8],
    layout: RawLayout,
}

impl<'r> Context<'_, 'r> {
    fn long_bits(&self) -> u32 {
        u32::from(self.layout.long_size) * 8
    }

    fn field(&self, index: usize) -> Result<&Field, RenderError> {
        self.fields.all().nth(index).ok_or(RenderError)
    }

    fn int(&self, expr: &Expr) -> Result<i128, RenderError> {
        match self.eval(expr)? {
            Value::Int(v) => Ok(v),
            Value::Text(_) => Err(RenderError),
        }
    }

    fn eval(&self, expr: &Expr) -> Result<Value<'r>, RenderError> {
        Ok(match expr {
            Expr::Int(v) => Value::Int(*v),
            Expr::Str(s) => Value::Text(s.clone().into()),
            Expr::Field(index) => {
                let field = self.field(*index)?;
                match field.value(self.raw, self.layout) {
                    FieldValue::Signed(v) => Value::Int(i128::from(v)),
                    FieldValue::Unsigned(v) => Value::Int(i128::from(v)),
                    FieldValue::Text(t) | FieldValue::Bytes(t) => Value::Text(t.into()),
                    FieldValue::Absent => return Err(RenderError),
                }
            }
            Expr::Index(index, at) => {
                let field = self.field(*index)?;
                let FieldKind::Array { len } = field.kind else {
                    return Err(RenderError);
                };
                let element = field.size.checked_div(len).ok_or(RenderError)?;
                let i = usize::try_from(self.int(at)?).map_err(|_| RenderError)?;
                let start = field.offset + i.checked_mul(element).ok_or(RenderError)?;
                let bytes = self
                    .raw
                    .get(start..start + element)
                    .filter(|_| i < len)
                    .ok_or(RenderError)?;
                let v = read_uint(bytes, self.layout).ok_or(RenderError)?;
                Value::Int(if field.signed {
                    i128::from(sign_extend(v, element))
                } else {
                    i128::from(v)
                })
            }
            Expr::DynamicStr(index) => {
                let field = self.field(*index)?;
                let bytes = field.bytes(self.raw, self.layout).ok_or(RenderError)?;
                Value::Text(until_nul(bytes).into())
            }
            Expr::DynamicLen(index) => {
                let field = self.field(*index)?;
                let bytes = field.bytes(self.raw, self.layout).ok_or(RenderError)?;
                Value::Int(bytes.len() as i128)
            }
            Expr::Unary(op, e) => {
                let v = self.int(e)?;
                Value::Int(match op {
                    b'-' => v.wrapping_neg(),
                    b'!' => i128::from(v == 0),
                    b'~' => !v,
                    _ => v,
                })
            }
            Expr::Binary(op, l, r) => Value::Int(self.binary(op, l, r)?),
            Expr::Cond(c, t, f) => {
                if self.int(c)? != 0 {
                    self.eval(t)?
                } else {
                    self.eval(f)?
                }
            }
            Expr::Cast(ty, e) => {
                let bits = ty.size.map_or(self.long_bits(), |s| u32::from(s) * 8);
                Value::Int(truncate(self.int(e)?, bits, ty.signed))
            }
            Expr::Flags {
                value,
                delimiter,
                table,
            } => {
                let mut v = self.int(value)? as u64;
                let mut out = Vec::new();
                let mut printed = false;
                for (flag, name) in table {
                    let flag = self.int(flag)? as u64;
                    if v == 0 && flag == 0 {
                        out.extend_from_slice(name);
                        break;
                    }
                    if flag != 0 && v & flag == flag {
                        if printed {
                            out.extend_from_slice(delimiter);
                        }
                        out.extend_from_slice(name);
                        printed = true;
                        v &= !flag;
                    }
                }
                if v != 0 {
                    if printed {
                        out.extend_from_slice(delimiter);
                    }
                    let _ = write!(WriteBytes(&mut out), "{v:#x}");
                }
                Value::Text(out.into())
            }
            Expr::Symbolic { value, table } => {
                let v = self.int(value)? as u64;
                let mut found = None;
                for (symbol, name) in table {
                    if self.int(symbol)? as u64 == v {
                        found = Some(name.clone());
                        break;
                    }
                }
                Value::Text(
                    found
                        .unwrap_or_else(|| format!("{v:#x}").into_bytes())
                        .into(),
                )
            }
        })
    }

    fn binary(&self, op: &str, l: &Expr, r: &Expr) -> Result<i128, RenderError> {
        // `&&` and `||` do not evaluate their right side needlessly.
        match op {
            "&&" => return Ok(i128::from(self.int(l)? != 0 && self.int(r)? != 0)),
            "||" => return Ok(i128::from(self.int(l)? != 0 || self.int(r)? != 0)),
            _ => {}
        }
        let (a, b) = (self.int(l)?, self.int(r)?);
        Ok(match op {
            "+" => a.wrapping_add(b),
            "-" => a.wrapping_sub(b),
            "*" => a.wrapping_mul(b),
            "/" => a.checked_div(b).ok_or(RenderError)?,
            "%" => a.checked_rem(b).ok_or(RenderError)?,
            "<<" => a
                .checked_shl(u32::try_from(b).map_err(|_| RenderError)?)
                .unwrap_or(0),
            ">>" => a
                .checked_shr(u32::try_from(b).map_err(|_| RenderError)?)
                .unwrap_or(0),
            "&" => a & b,
            "|" => a | b,
            "^" => a ^ b,
            "==" => i128::from(a == b),
            "!=" => i128::from(a != b),
            "<" => i128::from(a < b),
            "<=" => i128::from(a <= b),
            ">" => i128::from(a > b),
            ">=" => i128::from(a >= b),
            _ => return Err(RenderError),
        })
    }
}

/// `fmt::Write` into bytes.
struct WriteBytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for WriteBytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Splits the format string into literal text and conversions.
fn parse_format_string(format: &[u8]) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while let Some(&b) = format.get(i) {
        i += 1;
        if b != b'%' {
            literal.push(b);
            continue;
        }
        if format.get(i) == Some(&b'%') {
            literal.push(b'%');
            i += 1;
            continue;
        }
        let mut spec = Spec {
            left: false,
            zero: false,
            plus: false,
            space: false,
            alternate: false,
            width: None,
            precision: None,
            bits: Some(32),
            conversion: 0,
        };
        while let Some(&flag) = format.get(i) {
            match flag {
                b'-' => spec.left = true,
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alternate = true,
                _ => break,
            }
            i += 1;
        }
        let count = |i: &mut usize| -> Option<Count> {
            if format.get(*i) == Some(&b'*') {
                *i += 1;
                return Some(Count::FromArg);
            }
            let start = *i;
            while format.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            std::str::from_utf8(format.get(start..*i)?)
                .ok()?
                .parse()
                .ok()
                .map(Count::Fixed)
        };
        spec.width = count(&mut i);
        if format.get(i) == Some(&b'.') {
            i += 1;
            spec.precision = Some(count(&mut i).unwrap_or(Count::Fixed(0)));
        }
        let mut longs = 0;
        let mut shorts = 0;
        while let Some(&m) = format.get(i) {
            match m {
                b'l' => longs += 1,
                b'L' | b'q' | b'j' => longs = 2,
                b'h' => shorts += 1,
                b'z' | b'Z' | b't' => longs = 1,
                _ => break,
            }
            i += 1;
        }
        spec.bits = match (longs, shorts) {
            (0, 0) => Some(32),
            (0, 1) => Some(16),
            (0, _) => Some(8),
            (1, _) => None,
            _ => Some(64),
        };
        spec.conversion = *format.get(i)?;
        i += 1;
        match spec.conversion {
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' | b'c' | b's' => {}
            // `%pS`, `%pK`, `%pI4`, ...: kernel extensions kprof does not render.
            b'p' if format.get(i).is_some_and(u8::is_ascii_alphanumeric) => return None,
            b'p' => {}
            _ => return None,
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(
                String::from_utf8_lossy(&std::mem::take(&mut literal)).into_owned(),
            ));
        }
        pieces.push(Piece::Conversion(spec));
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(
            String::from_utf8_lossy(&literal).into_owned(),
        ));
    }
    Some(pieces)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Int(i128),
    Str(Vec<u8>),
    Ident(String),
    Punct(&'static str),
}

const PUNCTUATION: [&str; 30] = [
    "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+", "-", "*", "/", "%", "&", "|", "^",
    "~", "!", "<", ">", "?", ":", ",", "(", ")", "{", "}", "[", "]",
];

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b'"' {
            i += 1;
            let mut s = Vec::new();
            loop {
                let c = *bytes.get(i)?;
                i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let e = *bytes.get(i)?;
                        i += 1;
                        s.push(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            b'0' => 0,
                            other => other,
                        });
                    }
                    other => s.push(other),
                }
            }
            tokens.push(Token::Str(s));
        } else if b == b'\'' {
            let c = *bytes.get(i + 1)?;
            let (value, len) = if c == b'\\' {
                let e = *bytes.get(i + 2)?;
                let v = match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'0' => 0,
                    other => other,
                };
                (v, 4)
            } else {
                (c, 3)
            };
            if bytes.get(i + len - 1) != Some(&b'\'') {
                return None;
            }
            tokens.push(Token::Int(i128::from(value)));
            i += len;
        } else if b.is_ascii_digit() {
            let start = i;
            while bytes.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
                i += 1;
            }
            let word = text.get(start..i)?;
            let digits = word.trim_end_matches(['u', 'U', 'l', 'L']);
            let value = if let Some(hex) = digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                u64::from_str_radix(hex, 16).ok()?
            } else if digits.len() > 1 && digits.starts_with('0') {
                u64::from_str_radix(digits.get(1..)?, 8).ok()?
            } else {
                digits.parse::<u64>().ok()?
            };
            tokens.push(Token::Int(i128::from(value)));
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while bytes
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                i += 1;
            }
            tokens.push(Token::Ident(text.get(start..i)?.to_string()));
        } else {
            let rest = text.get(i..)?;
            let punct = PUNCTUATION.iter().find(|p| rest.starts_with(**p))?;
            tokens.push(Token::Punct(punct));
            i += punct.len();
        }
    }
    Some(tokens)
}

struct Parser<'t, 'e> {
    tokens: &'t [Token],
    pos: usize,
    fields: FieldList<'e>,
}

/// Binding power of binary operators (higher binds tighter), as in C.
fn binding_power(op: &str) -> Option<u8> {
    Some(match op {
        "*" | "/" | "%" => 10,
        "+" | "-" => 9,
        "<<" | ">>" => 8,
        "<" | "<=" | ">" | ">=" => 7,
        "==" | "!=" => 6,
        "&" => 5,
        "^" => 4,
        "|" => 3,
        "&&" => 2,
        "||" => 1,
        _ => return None,
    })
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn eat(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(p)) if *p == punct) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Option<()> {
        self.eat(punct).then_some(())
    }

    /// A full expression: a conditional.
    fn expr(&mut self) -> Option<Expr> {
        let condition = self.binary(0)?;
        if !self.eat("?") {
            return Some(condition);
        }
        let yes = self.expr()?;
        self.expect(":")?;
        let no = self.expr()?;
        Some(Expr::Cond(Box::new(condition), Box::new(yes), Box::new(no)))
    }

    fn binary(&mut self, min_power: u8) -> Option<Expr> {
        let mut left = self.unary()?;
        while let Some(Token::Punct(op)) = self.peek() {
            let op: &'static str = op;
            let Some(power) = binding_power(op) else {
                break;
            };
            if power <= min_power {
                break;
            }
            self.pos += 1;
            let right = self.binary(power)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Expr> {
        for op in ["-", "!", "~", "+"] {
            if self.eat(op) {
                let operand = self.unary()?;
                return Some(Expr::Unary(op.as_bytes()[0], Box::new(operand)));
            }
        }
        if self.eat("(") {
            if let Some(ty) = self.cast_type() {
                let operand = self.unary()?;
                return Some(Expr::Cast(ty, Box::new(operand)));
            }
            let inner = self.expr()?;
            self.expect(")")?;
            return Some(inner);
        }
        self.primary()
    }

    /// After `(`: a type name and `)`, or `None` (position unchanged) when it is not a cast.
    fn cast_type(&mut self) -> Option<IntType> {
        let start = self.pos;
        let mut words = Vec::new();
        let mut pointer = false;
        loop {
            match self.next() {
                Some(Token::Ident(word)) if !pointer => words.push(word.clone()),
                Some(Token::Punct("*")) if !words.is_empty() => pointer = true,
                Some(Token::Punct(")")) if !words.is_empty() => break,
                _ => {
                    self.pos = start;
                    return None;
                }
            }
        }
        match int_type(&words, pointer) {
            Some(ty) => Some(ty),
            None => {
                self.pos = start;
                None
            }
        }
    }

    fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.all().position(|f| f.name == name)
    }

    fn field_argument(&mut self) -> Option<usize> {
        self.expect("(")?;
        let index = match self.next()? {
            Token::Ident(name) => {
                let name = name.clone();
                self.field_index(&name)?
            }
            _ => return None,
        };
        self.expect(")")?;
        Some(index)
    }

    fn primary(&mut self) -> Option<Expr> {
        match self.next()?.clone() {
            Token::Int(v) => Some(Expr::Int(v)),
            Token::Str(s) => {
                let mut s = s;
                while let Some(Token::Str(more)) = self.peek() {
                    s.extend_from_slice(more);
                    self.pos += 1;
                }
                Some(Expr::Str(s))
            }
            Token::Ident(word) => match word.as_str() {
                "REC" => {
                    self.expect("->")?;
                    let Token::Ident(name) = self.next()?.clone() else {
                        return None;
                    };
                    let index = self.field_index(&name)?;
                    if self.eat("[") {
                        let at = self.expr()?;
                        self.expect("]")?;
                        return Some(Expr::Index(index, Box::new(at)));
                    }
                    Some(Expr::Field(index))
                }
                "__get_str" | "__get_rel_str" => Some(Expr::DynamicStr(self.field_argument()?)),
                "__get_dynamic_array_len" | "__get_rel_dynamic_array_len" => {
                    Some(Expr::DynamicLen(self.field_argument()?))
                }
                "__print_flags" | "__print_flags_u64" => {
                    self.expect("(")?;
                    let value = self.expr()?;
                    self.expect(",")?;
                    let Expr::Str(delimiter) = self.expr()? else {
                        return None;
                    };
                    let table = self.symbol_table()?;
                    Some(Expr::Flags {
                        value: Box::new(value),
                        delimiter,
                        table,
                    })
                }
                "__print_symbolic" | "__print_symbolic_u64" => {
                    self.expect("(")?;
                    let value = self.expr()?;
                    let table = self.symbol_table()?;
                    Some(Expr::Symbolic {
                        value: Box::new(value),
                        table,
                    })
                }
                _ => None,
            },
            Token::Punct(_) => None,
        }
    }

    /// `, { value, "name" }, ... )` closing a flags or symbolic call.
    fn symbol_table(&mut self) -> Option<Vec<(Expr, Vec<u8>)>> {
        let mut table = Vec::new();
        while self.eat(",") {
            self.expect("{")?;
            let value = self.expr()?;
            self.expect(",")?;
            let Expr::Str(name) = self.expr()? else {
                return None;
            };
            self.expect("}")?;
            table.push((value, name));
        }
        self.expect(")")?;
        Some(table)
    }
}

/// The integer type named by `words` (`unsigned long`, `u32`, `pid_t`, ...), or any pointer.
fn int_type(words: &[String], pointer: bool) -> Option<IntType> {
    let long = IntType {
        size: None,
        signed: false,
    };
    if pointer {
        return Some(long);
    }
    let words: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| !matches!(*w, "const" | "volatile"))
        .collect();
    let fixed = |size: u8, signed: bool| {
        Some(IntType {
            size: Some(size),
            signed,
        })
    };
    if let [single] = words.as_slice() {
        match *single {
            "u8" | "__u8" | "uint8_t" | "bool" | "_Bool" => return fixed(1, false),
            "s8" | "__s8" | "int8_t" => return fixed(1, true),
            "u16" | "__u16" | "uint16_t" => return fixed(2, false),
            "s16" | "__s16" | "int16_t" => return fixed(2, true),
            "u32" | "__u32" | "uint32_t" | "uid_t" | "gid_t" => return fixed(4, false),
            "s32" | "__s32" | "int32_t" | "pid_t" => return fixed(4, true),
            "u64" | "__u64" | "uint64_t" => return fixed(8, false),
            "s64" | "__s64" | "int64_t" | "loff_t" => return fixed(8, true),
            "size_t" | "uintptr_t" => return Some(long),
            "ssize_t" | "intptr_t" => {
                return Some(IntType {
                    size: None,
                    signed: true,
                });
            }
            _ => {}
        }
    }
    let signed = !words.contains(&"unsigned");
    let rest: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !matches!(*w, "unsigned" | "signed"))
        .collect();
    match rest.as_slice() {
        ["char"] => fixed(1, signed),
        ["short"] | ["short", "int"] => fixed(2, signed),
        [] | ["int"] => fixed(4, signed),
        ["long"] | ["long", "int"] => Some(IntType { size: None, signed }),
        ["long", "long"] | ["long", "long", "int"] => fixed(8, signed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::EventFormat;
    use super::super::format::tests::{SCHED_SWITCH, sched_switch_record};
    use super::*;

    fn event(fields: &str, print: &str) -> EventFormat {
        let text = format!(
            "name: e\nID: 1\nformat:\n\
             \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n{fields}\n\
             print fmt: {print}\n"
        );
        EventFormat::parse("s", &text).unwrap()
    }

    fn render(event: &EventFormat, raw: &[u8]) -> String {
        let mut out = String::new();
        event.write_print(raw, RawLayout::little_endian_64(), &mut out);
        out
    }

    #[test]
    fn sched_switch_renders_like_perf_script() {
        let event = EventFormat::parse("sched", SCHED_SWITCH).unwrap();
        // What perf script prints for these states (TASK_UNINTERRUPTIBLE, running, preempted
        // from a sleeping state, and a state outside the table).
        for (state, shown) in [(2, "D"), (0, "R"), (0x101, "S+"), (0x80, "I"), (0x3, "S|D")] {
            assert_eq!(
                render(&event, &sched_switch_record(state)),
                format!(
                    "prev_comm=perf prev_pid=42 prev_prio=120 prev_state={shown} ==> \
                     next_comm=swapper/1 next_pid=0 next_prio=120"
                )
            );
        }
    }

    #[test]
    fn long_conversions_and_casts() {
        let event = event(
            "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
             \tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;\n\
             \tfield:char * buf;\toffset:24;\tsize:8;\tsigned:0;\n\
             \tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;\n",
            "\"fd: 0x%08lx, buf: 0x%08lx, count: 0x%08lx\", ((unsigned long)(REC->fd)), \
             ((unsigned long)(REC->buf)), ((unsigned long)(REC->count))",
        );
        let mut raw = vec![0u8; 40];
        raw[16..24].copy_from_slice(&13u64.to_le_bytes());
        raw[24..32].copy_from_slice(&0x7ffd_25da_0bf0u64.to_le_bytes());
        raw[32..40].copy_from_slice(&0xfffu64.to_le_bytes());
        assert_eq!(
            render(&event, &raw),
            "fd: 0x0000000d, buf: 0x7ffd25da0bf0, count: 0x00000fff"
        );
    }

    #[test]
    fn printf_conversions() {
        let event = event(
            "\tfield:int v;\toffset:4;\tsize:4;\tsigned:1;\n\
             \tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\
             \tfield:char name[8];\toffset:16;\tsize:8;\tsigned:0;\n",
            "\"%d|%u|%5d|%-5d|%05d|%x|%#x|%hhx|%c|%.2s|%8s|%-4s|%p|(%lx)|%%|%lld\", REC->v, \
             REC->v, REC->v, REC->v, REC->v, REC->v, 255, 0x1ff, 'A', REC->name, REC->name, \
             \"ab\", REC->ip, REC->ip, -1LL",
        );
        let mut raw = vec![0u8; 24];
        raw[4..8].copy_from_slice(&(-7i32).to_le_bytes());
        raw[8..16].copy_from_slice(&0x55d4_c0a0_1139u64.to_le_bytes());
        raw[16..21].copy_from_slice(b"hello");
        assert_eq!(
            render(&event, &raw),
            "-7|4294967289|   -7|-7   |-0007|fffffff9|0xff|ff|A|he|   hello|ab  |\
             0x55d4c0a01139|(55d4c0a01139)|%|-1"
        );
    }

    #[test]
    fn symbolic_strings_and_arithmetic() {
        let event = event(
            "\tfield:int op;\toffset:4;\tsize:4;\tsigned:1;\n\
             \tfield:__data_loc char[] path;\toffset:8;\tsize:4;\tsigned:0;\n\
             \tfield:u32 vals[2];\toffset:12;\tsize:8;\tsigned:0;\n",
            "\"op=%s path=%s len=%d sum=%d cmp=%d\", __print_symbolic(REC->op, { 0, \"READ\" }, \
             { 1 << 2, \"WRITE\" }), __get_str(path), __get_dynamic_array_len(path), \
             REC->vals[0] + REC->vals[1] * 2 - (3 % 2), (REC->op > 1 && !(REC->op == 3)) || 0",
        );
        let mut raw = vec![0u8; 20];
        raw[4..8].copy_from_slice(&4i32.to_le_bytes());
        raw[8..12].copy_from_slice(&(20u32 | (4 << 16)).to_le_bytes());
        raw[12..16].copy_from_slice(&5u32.to_le_bytes());
        raw[16..20].copy_from_slice(&6u32.to_le_bytes());
        raw.extend_from_slice(b"/a\0\0");
        assert_eq!(render(&event, &raw), "op=WRITE path=/a len=4 sum=16 cmp=1");
        raw[4..8].copy_from_slice(&9i32.to_le_bytes());
        assert!(render(&event, &raw).starts_with("op=0x9 "));
    }

    #[test]
    fn what_kprof_cannot_render_falls_back_to_fields() {
        for print in [
            "\"%pS\", REC->v",
            "\"%s\", __print_hex(REC->v, 4)",
            "\"%d\", sizeof(int)",
            "\"%d\", REC->missing",
            "\"%d %d\", REC->v",
            "\"%d\" REC->v",
        ] {
            let event = event("\tfield:int v;\toffset:4;\tsize:4;\tsigned:1;\n", print);
            let raw = [0, 0, 0, 0, 3, 0, 0, 0];
            assert_eq!(render(&event, &raw), "v=3", "{print}");
        }
    }

    #[test]
    fn hostile_formats_do_not_panic() {
        let event = event(
            "\tfield:int v;\toffset:4;\tsize:4;\tsigned:1;\n\
             \tfield:int a[0];\toffset:8;\tsize:0;\tsigned:1;\n",
            "\"%d %d %d\", REC->v / 0, REC->v << 200, REC->a[5]",
        );
        assert_eq!(render(&event, &[0; 8]), "v=0 a=ARRAY[]");
        for text in [
            "\"",
            "\"%",
            "\"%5",
            "'a",
            "0x",
            "((((",
            "REC->",
            "\"a\", ((int)",
        ] {
            assert!(
                PrintFormat::parse(text, event.field_list()).is_none(),
                "{text}"
            );
        }
    }
}
