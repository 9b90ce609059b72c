//! The crate's layout holds: no two modules of the `kprof` crate import each other, directly
//! or through others (a parent's `mod` line is not an import; its use of a child's items is).
// See: issue #12 point 4

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::repo;

/// A module path inside its crate (`["analysis", "replay"]`; empty for the crate root).
type ModulePath = Vec<String>;

/// Every module file under `src`, by module path.
fn modules(src: &Path) -> BTreeMap<ModulePath, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: ModulePath = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            found.insert(module, text);
        }
    }
    found
}

/// The code of a module file without its unit tests (they may use anything) and comments.
fn code(text: &str) -> impl Iterator<Item = &str> {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with("mod ") && !l.starts_with("pub mod "))
}

/// The paths a line names from `crate::`, `super::` or `self::`, or from a child module
/// (`child::item`), made absolute.
fn named_paths(line: &str, module: &ModulePath, children: &[String]) -> Vec<ModulePath> {
    let mut paths = Vec::new();
    let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
    for word in words {
        let mut parts = word.split("::").filter(|p| !p.is_empty());
        let Some(first) = parts.next() else { continue };
        let rest: Vec<String> = parts.map(str::to_string).collect();
        if rest.is_empty() {
            // `pub(super)`, `self.field`: no path.
            continue;
        }
        let base: ModulePath = match first {
            "crate" => Vec::new(),
            "self" => module.clone(),
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            child if children.iter().any(|c| c == child) => {
                let mut base = module.clone();
                base.push(child.to_string());
                base
            }
            _ => continue,
        };
        paths.push(base.into_iter().chain(rest).collect());
    }
    paths
}

/// Module-to-module import edges of the crate whose sources are in `src`.
fn imports(src: &Path) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let modules = modules(src);
    let mut edges: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
    for (module, text) in &modules {
        let children: Vec<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .filter_map(|m| m.last().cloned())
            .collect();
        let targets = edges.entry(module.clone()).or_default();
        for line in code(text) {
            for path in named_paths(line, module, &children) {
                // The deepest module the path names.
                let target = (0..=path.len())
                    .rev()
                    .map(|n| path[..n].to_vec())
                    .find(|m| modules.contains_key(m));
                if let Some(target) = target.filter(|t| t != module) {
                    targets.insert(target);
                }
            }
        }
    }
    edges
}

/// The cycles of `edges`: its strongly connected components of more than one module.
fn cycles(edges: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Vec<Vec<ModulePath>> {
    // Kosaraju: finish order on the graph, then components on the reversed graph.
    fn visit<'a>(
        node: &'a ModulePath,
        edges: &'a BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        seen: &mut BTreeSet<&'a ModulePath>,
        out: &mut Vec<&'a ModulePath>,
    ) {
        if !seen.insert(node) {
            return;
        }
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, seen, out);
        }
        out.push(node);
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for node in edges.keys() {
        visit(node, edges, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
    for (from, targets) in edges {
        for to in targets {
            reversed.entry(to.clone()).or_default().insert(from.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut found = Vec::new();
    for node in order.into_iter().rev() {
        let mut component = Vec::new();
        visit(node, &reversed, &mut assigned, &mut component);
        if component.len() > 1 {
            found.push(component.into_iter().cloned().collect());
        }
    }
    found
}

#[test]
fn the_cycle_finder_finds_a_cycle_through_a_parent() {
    let dir = crate::common::TempDir::new("layout");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod c;\nuse self::c::X;\n").unwrap();
    std::fs::write(src.join("a/c.rs"), "use super::Y;\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::c::X; // b -> a::c\n").unwrap();
    let edges = imports(&src);
    let found = cycles(&edges);
    let names: Vec<Vec<String>> = found
        .iter()
        .map(|c| c.iter().map(|m| m.join("::")).collect())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let mut cycle = names[0].clone();
    cycle.sort();
    assert_eq!(cycle, ["a", "a::c"]);
}

#[test]
fn no_import_cycles_between_modules_of_the_kprof_crate() {
    let edges = imports(&repo().join("src"));
    assert!(
        edges.contains_key(&vec!["analysis".to_string(), "replay".to_string()]),
        "the module files are found"
    );
    let found: Vec<String> = cycles(&edges)
        .iter()
        .map(|c| {
            let names: Vec<String> = c
                .iter()
                .map(|m| format!("crate::{}", m.join("::")))
                .collect();
            names.join(" <-> ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles: {found:#?}");
}

/// The library crates too (the symbolizer's cache <-> process <-> symbolize cycle is being
/// broken on its own branch and joins this list then).
// See: issue #12 point 4
#[test]
fn no_import_cycles_between_modules_of_the_library_crates() {
    for krate in ["perfdata", "profiler", "flamegraph", "test-support"] {
        let edges = imports(&repo().join(krate).join("src"));
        assert!(edges.len() > 1, "{krate}: the module files are found");
        let found: Vec<String> = cycles(&edges)
            .iter()
            .map(|c| {
                let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
                names.join(" <-> ")
            })
            .collect();
        assert!(found.is_empty(), "{krate}: import cycles: {found:#?}");
    }
}
