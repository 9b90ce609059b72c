//! The crates' layout holds: no two modules of any crate of the workspace import each other,
//! directly or through others (a parent's `mod` line is not an import; its use of a child's
//! items, a re-export included, is). The check is `.ci/import-cycles.py --strict`, which CI runs
//! too: one cycle finder, run here so that `cargo test` catches a cycle as well.
// See: issue #12 points 3 and 4

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{TempDir, repo};

/// Runs `.ci/import-cycles.py --strict` on `crates` (folders with a `src/`, relative to `dir`).
fn import_cycles(dir: &Path, crates: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo().join(".ci/import-cycles.py"))
        .arg("--strict")
        .args(crates)
        .current_dir(dir)
        .output()
        .expect("python3 runs .ci/import-cycles.py")
}

#[test]
fn the_cycle_finder_finds_cycles_through_a_parent_and_grouped_uses() {
    let dir = TempDir::new("layout");
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    // a's child c names a's item; a names c's: a cycle through a parent.
    write("through_parent/src/lib.rs", "pub mod a;\npub mod b;\n");
    write(
        "through_parent/src/a/mod.rs",
        "pub mod c;\nuse self::c::X;\n",
    );
    write("through_parent/src/a/c.rs", "use super::Y;\n");
    write(
        "through_parent/src/b.rs",
        "use crate::a::c::X; // b -> a::c\n",
    );
    // A grouped `use super::{...}`, as the trace aggregations had it.
    write("grouped/src/lib.rs", "pub mod agg;\n");
    write(
        "grouped/src/agg/mod.rs",
        "pub mod latency;\nuse self::latency::Latency;\npub trait Aggregation {}\n",
    );
    write(
        "grouped/src/agg/latency.rs",
        "use super::{Aggregation, other};\npub struct Latency;\n",
    );
    // The fix: the shared item in a leaf, the parent re-exporting it.
    write("fixed/src/lib.rs", "pub mod agg;\n");
    write(
        "fixed/src/agg/mod.rs",
        "mod aggregation;\npub mod latency;\npub use self::aggregation::Aggregation;\n\
         use self::latency::Latency;\n",
    );
    write("fixed/src/agg/aggregation.rs", "pub trait Aggregation {}\n");
    write(
        "fixed/src/agg/latency.rs",
        "use super::aggregation::Aggregation;\npub struct Latency;\n",
    );
    // Unit tests may use anything.
    write(
        "fixed/src/agg/tests.rs",
        "use super::*;\nuse crate::agg::latency::Latency;\n",
    );

    for (krate, cycle) in [
        ("through_parent", "through_parent: cycle between a, a::c"),
        ("grouped", "grouped: cycle between agg, agg::latency"),
    ] {
        let out = import_cycles(dir.path(), &[krate]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{krate}: {text}");
        assert!(text.contains(cycle), "{krate}: {text}");
    }
    let out = import_cycles(dir.path(), &["fixed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.trim(), "no import cycles in fixed");
}

#[test]
fn no_import_cycles_between_modules_of_any_crate() {
    let out = import_cycles(&repo(), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default is every crate of the workspace.
    assert_eq!(
        text.trim(),
        "no import cycles in ., perfdata, profiler, symbolizer, flamegraph, test-support"
    );
}
