//! Demangling of Rust (legacy and v0) and C++ (Itanium) symbol names.

use std::borrow::Cow;
use std::fmt::Write;

/// Demangles `name` if it is a Rust or C++ mangled name; returns it unchanged otherwise.
///
/// Rust names lose their `::h0123456789abcdef` hash like perf prints them. Names that fail to
/// demangle are returned raw rather than dropped.
pub fn demangle(name: &str) -> Cow<'_, str> {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        // `{:#}` omits the hash of legacy names and the crate disambiguators of v0 names.
        // `write!` rather than `format!`: a formatting error must not become a panic.
        let mut out = String::with_capacity(name.len());
        if write!(out, "{d:#}").is_ok() {
            return Cow::Owned(out);
        }
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name.as_bytes()) {
            if let Ok(s) = sym.demangle(&cpp_demangle::DemangleOptions::default()) {
                return Cow::Owned(s);
            }
        }
    }
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_legacy_strips_hash() {
        // From the rustc-demangle documentation.
        assert_eq!(demangle("_ZN3foo3barE"), "foo::bar");
        assert_eq!(
            demangle("_ZN4core3ptr13drop_in_place17h1234567890abcdefE"),
            "core::ptr::drop_in_place"
        );
    }

    #[test]
    fn rust_v0() {
        // From the v0 mangling RFC (rust-lang/rfcs 2603) examples.
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        assert_eq!(
            demangle("_RNvNtCs1234_7mycrate3bar3baz"),
            "mycrate::bar::baz"
        );
    }

    #[test]
    fn cpp() {
        assert_eq!(
            demangle("_ZN9wikipedia7article6formatEv"),
            "wikipedia::article::format()"
        );
        assert_eq!(demangle("_Z1fi"), "f(int)");
        assert_eq!(
            demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
            "std::vector<int, std::allocator<int> >::push_back(int const&)"
        );
    }

    #[test]
    fn plain_and_broken_names_pass_through() {
        assert_eq!(demangle("malloc"), "malloc");
        assert_eq!(demangle("_Zbroken"), "_Zbroken");
        assert!(matches!(demangle("schedule"), Cow::Borrowed(_)));
    }
}
