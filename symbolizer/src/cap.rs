//! Bounds on names read from untrusted files (perf maps, symbol tables, DWARF, kallsyms): a
//! name longer than [`MAX_NAME_LEN`] bytes is cut and ends in `…`, so one hostile 200 MB name
//! costs kilobytes, not gigabytes, in every later stage (folding, SVG, reports).

use std::borrow::Cow;
use std::sync::Arc;

/// The longest name kept, in bytes (Linux's `KSYM_NAME_LEN` is 512, PATH_MAX 4096).
pub const MAX_NAME_LEN: usize = 4096;

/// What replaces the cut part of a name.
pub const ELLIPSIS: &str = "…";

/// `name` if it is at most [`MAX_NAME_LEN`] bytes, else its first bytes (cut at a character
/// boundary) followed by [`ELLIPSIS`].
pub fn cap_name(name: &str) -> Cow<'_, str> {
    if name.len() <= MAX_NAME_LEN {
        return Cow::Borrowed(name);
    }
    let mut end = MAX_NAME_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + ELLIPSIS.len());
    out.push_str(name.get(..end).unwrap_or_default());
    out.push_str(ELLIPSIS);
    Cow::Owned(out)
}

/// A symbol name from raw bytes: lossy UTF-8 of at most [`MAX_NAME_LEN`] bytes, demangled when
/// asked and short enough to be whole (a cut mangled name would not demangle), the result
/// capped again (demangling can make a name longer).
pub fn symbol_name(raw: &[u8], demangle: bool) -> Arc<str> {
    if raw.len() > MAX_NAME_LEN {
        let head = raw.get(..MAX_NAME_LEN + 4).unwrap_or(raw);
        return Arc::from(cap_name(&String::from_utf8_lossy(head)).as_ref());
    }
    let text = String::from_utf8_lossy(raw);
    if demangle {
        Arc::from(cap_name(&crate::demangle::demangle(&text)).as_ref())
    } else {
        Arc::from(text.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue #11 point 6
    #[test]
    fn long_names_are_cut_with_an_ellipsis() {
        assert_eq!(cap_name("main"), "main");
        let long = "é".repeat(MAX_NAME_LEN);
        let cut = cap_name(&long);
        assert!(cut.len() <= MAX_NAME_LEN + ELLIPSIS.len());
        assert!(cut.ends_with(ELLIPSIS) && cut.starts_with("éé"));
        let raw = vec![b'a'; 200 << 20];
        let name = symbol_name(&raw, true);
        assert_eq!(name.len(), MAX_NAME_LEN + ELLIPSIS.len());
        assert_eq!(&*symbol_name(b"_ZN3foo3barEv", true), "foo::bar");
    }
}
