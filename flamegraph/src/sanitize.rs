//! Frame-name and label sanitisation: what a name looks like in folded text, SVG and tables.
//!
//! A frame name comes from symbol tables, JIT maps and process names, so it can hold anything.
//! [`frame_name`] turns it into a name that stays exactly one frame in inferno's folded format and
//! that is valid XML text. The rules, applied in this order:
//!
//! | input | becomes | why |
//! |---|---|---|
//! | `\t`, `\n`, `\r` | the two characters `\t`, `\n`, `\r` | a newline would split the line; whitespace is trimmed |
//! | other C0 controls, DEL (e.g. 0x00, 0x1b) | `\xHH` (lower-case hex) | not allowed in XML 1.0; terminal escapes |
//! | C1 controls (U+0080..=U+009F), U+FFFE, U+FFFF | `\u{HHHH}` | not allowed (or discouraged) in XML |
//! | `;` | `:` | `;` separates frames |
//! | leading / trailing whitespace | removed | inferno trims lines, so it would be lost at a stack's ends anyway |
//! | empty name (after the above) | `[unknown]` | an empty frame is invisible and ambiguous |
//! | `# ` at the start | `#` U+00A0 (no-break space) | inferno drops lines starting with `# ` as comments |
//! | last space-separated word all digits (optionally one `.`), e.g. `foo 12` | that space becomes U+00A0 | inferno would read the word as a second sample count |
//! | ends with `_[k]`, `_[w]`, `_[i]` or `_[j]` | the `_` becomes U+FF3F (`＿`) | inferno reads these as kind annotations and hides them |
//!
//! Backslashes are *not* escaped: the escapes are for display and keep ordinary names (which
//! never hold control characters) unchanged, at the price that a name that literally contains
//! `\x1b` looks the same as one holding the ESC byte.
//!
//! [`text`] applies only the control-character rules; it is used for titles, labels and notes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The name used for a frame whose name is empty.
pub const UNKNOWN_NAME: &str = "[unknown]";

/// Replacement for the ASCII space in the cases the module table lists.
const NO_BREAK_SPACE: char = '\u{a0}';
/// Replacement for the `_` of a name that ends like an inferno kind annotation.
const FULLWIDTH_LOW_LINE: char = '\u{ff3f}';

/// Whether `c` must be written as a visible escape.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{fffe}' || c == '\u{ffff}'
}

/// Appends `c` to `out`, escaped when it is a control character.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if u32::from(c) < 0x80 => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// Label text (titles, notes, column values) with control characters made visible.
pub fn text(raw: &str) -> Cow<'_, str> {
    if !raw.chars().any(needs_escape) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `word` is something inferno's folded parser would take for a sample count.
fn looks_like_count(word: &str) -> bool {
    let mut dots = 0;
    for c in word.chars() {
        if c == '.' {
            dots += 1;
        } else if !c.is_ascii_digit() {
            return false;
        }
    }
    dots <= 1
}

/// Whether `name` ends like one of inferno's kind annotations (`_[k]`, `_[w]`, `_[i]`, `_[j]`).
pub(crate) fn ends_with_annotation(name: &str) -> bool {
    ["_[k]", "_[w]", "_[i]", "_[j]"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Whether [`frame_name`] would change `raw` (the fast path: almost no name needs work).
fn is_clean(raw: &str) -> bool {
    !raw.is_empty()
        && !raw.chars().any(|c| needs_escape(c) || c == ';')
        && raw.trim() == raw
        && !raw.starts_with("# ")
        && !raw
            .rsplit_once(' ')
            .is_some_and(|(_, w)| looks_like_count(w))
        && !ends_with_annotation(raw)
}

/// The sanitised form of a frame name; see the [module documentation](self) for the rules.
///
/// The result is never empty, holds no `;`, no control character and no leading or trailing
/// whitespace, and reads back as exactly one frame from folded text.
pub fn frame_name(raw: &str) -> Cow<'_, str> {
    if is_clean(raw) {
        return Cow::Borrowed(raw);
    }
    let mut escaped = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        if needs_escape(c) {
            push_escaped(&mut escaped, c);
        } else if c == ';' {
            escaped.push(':');
        } else {
            escaped.push(c);
        }
    }
    let mut name = escaped.trim().to_owned();
    if name.is_empty() {
        return Cow::Borrowed(UNKNOWN_NAME);
    }
    if let Some(rest) = name.strip_prefix("# ") {
        name = format!("#{NO_BREAK_SPACE}{rest}");
    }
    if let Some((head, word)) = name.rsplit_once(' ') {
        if looks_like_count(word) {
            name = format!("{head}{NO_BREAK_SPACE}{word}");
        }
    }
    if ends_with_annotation(&name) {
        let cut = name.len() - 4;
        let tail = name.get(cut + 1..).unwrap_or_default().to_owned();
        name.truncate(cut);
        name.push(FULLWIDTH_LOW_LINE);
        name.push_str(&tail);
    }
    Cow::Owned(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_names_are_borrowed_unchanged() {
        for name in [
            "main",
            "std::vector<int>::push_back",
            "operator new(unsigned long)",
            "a b",
        ] {
            assert!(
                matches!(frame_name(name), Cow::Borrowed(n) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn separators_and_controls_are_escaped() {
        assert_eq!(frame_name("a;b"), "a:b");
        assert_eq!(frame_name("a\nb"), "a\\nb");
        assert_eq!(frame_name("a\tb\rc"), "a\\tb\\rc");
        assert_eq!(frame_name("esc\u{1b}[31m"), "esc\\x1b[31m");
        assert_eq!(frame_name("nul\0"), "nul\\x00");
        assert_eq!(frame_name("del\u{7f}"), "del\\x7f");
        assert_eq!(frame_name("c1\u{85}"), "c1\\u{85}");
        assert_eq!(frame_name("non\u{fffe}char"), "non\\u{fffe}char");
    }

    #[test]
    fn whitespace_and_empty_names() {
        assert_eq!(frame_name("  padded  "), "padded");
        assert_eq!(frame_name(""), UNKNOWN_NAME);
        assert_eq!(frame_name("   "), UNKNOWN_NAME);
        // A newline alone is escaped, not trimmed away: it is visible.
        assert_eq!(frame_name("\n"), "\\n");
    }

    #[test]
    fn names_inferno_would_misread() {
        assert_eq!(frame_name("# comment"), "#\u{a0}comment");
        assert_eq!(frame_name("thread 12"), "thread\u{a0}12");
        assert_eq!(frame_name("v 1.5"), "v\u{a0}1.5");
        // Not count-like: left alone.
        assert_eq!(frame_name("v 1.5.6"), "v 1.5.6");
        assert_eq!(frame_name("foo_[k]"), "foo\u{ff3f}[k]");
        assert_eq!(frame_name("foo_[x]"), "foo_[x]");
    }

    #[test]
    fn sanitised_names_are_fixed_points() {
        for raw in ["a;b", "x\0y", "# z", "q 1", "r_[j]", " s ", "", "\u{1b}"] {
            let once = frame_name(raw).into_owned();
            assert_eq!(frame_name(&once), once, "{raw:?}");
        }
    }

    #[test]
    fn text_only_escapes_controls() {
        assert_eq!(text("a;b # 1"), "a;b # 1");
        assert_eq!(text("t\u{1b}x"), "t\\x1bx");
    }
}
