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
    if let Some(thunk) = thunk_like_libiberty(name) {
        return Cow::Owned(thunk);
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name.as_bytes()) {
            // Like perf (and flame graph tools): no parameter list, no return type.
            let options = cpp_demangle::DemangleOptions::new()
                .no_params()
                .no_return_type();
            if let Ok(s) = sym.demangle(&options) {
                // An empty parameter pack prints as `<T, >`; GNU's demangler prints `<T>`.
                let s = s.replace(", >", ">");
                // Without parameters GNU's demangler also leaves out `[clone .cold]` suffixes.
                let mut s = match s.find(" [clone ") {
                    Some(at) if s.ends_with(']') => s[..at].to_string(),
                    _ => s,
                };
                // ... and a method's qualifiers, which belong to its parameter list.
                while let Some(stripped) = [" const", " volatile", " &&", " &"]
                    .iter()
                    .find_map(|q| s.strip_suffix(q))
                {
                    s = stripped.to_string();
                }
                return Cow::Owned(integer_literals_like_libiberty(&s));
            }
        }
    }
    Cow::Borrowed(name)
}

/// A C++ thunk (`_ZThn8_N3Foo3barEi`) as GNU's demangler spells it: `non-virtual thunk to
/// Foo::bar(int)`, the target with its parameters. cpp_demangle has its own notation for these.
fn thunk_like_libiberty(name: &str) -> Option<String> {
    let rest = name.strip_prefix("_ZT")?;
    let (label, offsets) = match rest.as_bytes().first()? {
        b'h' => ("non-virtual thunk to ", 1),
        b'v' => ("virtual thunk to ", 1),
        b'c' => ("covariant return thunk to ", 2),
        _ => return None,
    };
    let mut rest = if offsets == 2 { &rest[1..] } else { rest };
    // Each call offset: `h <number> _` or `v <number> _ <number> _`, numbers maybe `n`-negative.
    for _ in 0..offsets {
        let kind = rest.as_bytes().first().copied()?;
        let numbers = match kind {
            b'h' => 1,
            b'v' => 2,
            _ => return None,
        };
        rest = &rest[1..];
        for _ in 0..numbers {
            let end = rest.find('_')?;
            let number = &rest[..end];
            let digits = number.strip_prefix('n').unwrap_or(number);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest = &rest[end + 1..];
        }
    }
    let target = format!("_Z{}", rest.split('.').next().unwrap_or(rest));
    let sym = cpp_demangle::Symbol::new(target.as_bytes()).ok()?;
    let options = cpp_demangle::DemangleOptions::new().no_return_type();
    let demangled = sym.demangle(&options).ok()?;
    Some(format!(
        "{label}{}",
        integer_literals_like_libiberty(&demangled.replace(", >", ">"))
    ))
}

/// Template integer arguments as GNU's demangler (which perf uses) spells them: `8u` rather
/// than cpp_demangle's `(unsigned int)8`, so kprof's names match `perf report`'s.
fn integer_literals_like_libiberty(name: &str) -> String {
    const SUFFIXES: [(&str, &str); 6] = [
        ("(unsigned long long)", "ull"),
        ("(long long)", "ll"),
        ("(unsigned long)", "ul"),
        ("(unsigned int)", "u"),
        ("(long)", "l"),
        ("(int)", ""),
    ];
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    'scan: while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        for (cast, suffix) in SUFFIXES {
            if let Some(after) = tail.strip_prefix(cast) {
                let digits = after
                    .char_indices()
                    .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && c == '-'))
                    .count();
                if digits > 0 && after[..digits].chars().any(|c| c.is_ascii_digit()) {
                    out.push_str(&after[..digits]);
                    out.push_str(suffix);
                    rest = &after[digits..];
                    continue 'scan;
                }
            }
        }
        out.push('(');
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thunks_and_clones_like_gnu() {
        assert_eq!(
            demangle("_ZThn8_N3Foo3barEi"),
            "non-virtual thunk to Foo::bar(int)"
        );
        assert_eq!(
            demangle("_ZTv0_n24_N3Foo3bazEv"),
            "virtual thunk to Foo::baz()"
        );
        assert_eq!(demangle("_ZN3Foo3barEi.cold"), "Foo::bar");
        assert_eq!(demangle("_ZN3Foo3barEi.llvm.123"), "Foo::bar");
        assert_eq!(demangle("_ZNK3Foo3getEv"), "Foo::get");
    }

    #[test]
    fn cpp_names_match_perfs_spelling() {
        // llvm::SmallVector<llvm::BasicBlock*, 8u>::push_back(llvm::BasicBlock* const&)
        let name = "_ZN4llvm23SmallVectorTemplateBaseIPNS_10BasicBlockELb1EE9push_backERKS2_";
        assert_eq!(
            demangle(name),
            "llvm::SmallVectorTemplateBase<llvm::BasicBlock*, true>::push_back"
        );
        assert_eq!(
            integer_literals_like_libiberty("a<(unsigned int)8, (long)-3, (int)2, (char)7>"),
            "a<8u, -3l, 2, (char)7>"
        );
    }

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
    fn cpp_without_parameters_like_perf() {
        assert_eq!(
            demangle("_ZN9wikipedia7article6formatEv"),
            "wikipedia::article::format"
        );
        assert_eq!(demangle("_Z1fi"), "f");
        assert_eq!(
            demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
            "std::vector<int, std::allocator<int> >::push_back"
        );
    }

    #[test]
    fn plain_and_broken_names_pass_through() {
        assert_eq!(demangle("malloc"), "malloc");
        assert_eq!(demangle("_Zbroken"), "_Zbroken");
        assert!(matches!(demangle("schedule"), Cow::Borrowed(_)));
    }
}
