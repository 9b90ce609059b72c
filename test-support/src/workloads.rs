//! Facts about the workloads in `examples/workloads/` that the tests of more than one crate
//! check, stated once.

/// Of `names` (demangled by `c++filt --no-params`), the functions that `fill` in `names.cpp`
/// inlines at -O2: the `std::generate_n<…>` it calls and the lambda's `operator()`, each once,
/// sorted. Out of line (-O0) both exist; a test asserts there are exactly two.
pub fn inlined_into_fill<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut wanted: Vec<String> = names
        .into_iter()
        .map(|n| n.as_ref().to_owned())
        .filter(|n| {
            n.contains("fill(std::vector")
                && (n.contains("generate_n<") || n.contains("operator()"))
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    wanted
}
