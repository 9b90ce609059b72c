#!/usr/bin/env python3
"""Lists import cycles between the modules of Rust crates (issue #12: "no import cycle between
modules of any crate").

    .ci/import-cycles.py --strict               # every crate (root package, Cargo.toml members)
                                                # exit 1 on a cycle
    .ci/import-cycles.py perfdata profiler      # crate folders (each with src/)

A module depends on another when its non-test code names a path in it (`use crate::a::X`,
`crate::a::f()`, `use super::b`, grouped `use crate::{a::X, b}`); names re-exported by a parent
(`pub use a::X` in lib.rs or mod.rs) count as the module that defines them. Dependencies are
counted between siblings: `a::x -> b::y` is `a -> b`, `a::x -> a::y` is `x -> y` inside `a`; a
module naming its own ancestors (its parent's items) is not a dependency. `#[cfg(test)]` code
and test files are left out. Reads the source as text: no macro expansion, no `#[path]`.
"""
import os
import re
import sys


def module_files(src):
    """{module path tuple: file} for every .rs file below src."""
    mods = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main", "mod"):
                rel = rel[:-1]
            if rel and (rel[-1] == "tests" or rel[-1].endswith("_tests")):
                continue
            mods[tuple(rel)] = os.path.join(root, name)
    return mods


def matching_brace(text, start):
    """The index of the `}` that closes the `{` at `start` (the end of the text if none)."""
    depth, k = 0, start
    while k < len(text):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                break
        k += 1
    return k


def strip_tests(text):
    """The text without `#[cfg(test)]` items (a module or function with its braces)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = m.end()
        # the item: up to its `;` or its matching closing brace
        brace = text.find("{", j)
        semi = text.find(";", j)
        if semi != -1 and (brace == -1 or semi < brace):
            i = semi + 1
            continue
        i = matching_brace(text, brace) + 1
    out.append(text[i:])
    return "".join(out)


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def split_group(body):
    """Top-level comma-separated parts of a `{...}` use group."""
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def paths_in(text, children=()):
    """Every `crate::...` / `super::...` / `self::...` / `child::...` path, grouped uses
    expanded."""
    found = []
    heads = "|".join(["crate", "super", "self"] + [re.escape(c) for c in children])
    for m in re.finditer(r"(?<![\w:])(" + heads + r")((?:\s*::\s*(?:\w+|\{))+)", text):
        head, tail = m.group(1), re.sub(r"\s", "", m.group(2))
        segs = [s for s in tail.split("::") if s]
        if segs and segs[-1] == "{":
            segs = segs[:-1]
            start = text.find("{", m.end() - 1)
            k = matching_brace(text, start)
            for part in split_group(text[start + 1:k]):
                sub = re.sub(r"\s+as\s+\w+$", "", part)
                sub = re.sub(r"\s", "", sub).split("::{")[0]
                found.append((head, segs + [s for s in sub.split("::") if s]))
        else:
            found.append((head, segs))
    return found


def reexports(mods):
    """{(module, name): defining module} from `pub use a::{X, Y}` / `pub use a::X` lines."""
    table = {}
    for path, file in mods.items():
        text = strip_comments(open(file, encoding="utf-8").read())
        for m in re.finditer(r"pub(?:\([\w:]+\))?\s+use\s+([\w:]+?)::(\{[^;]*\}|\w+)\s*;", text):
            base = [s for s in m.group(1).split("::") if s]
            if base and base[0] == "crate":
                base_abs = base[1:]
            elif base and base[0] in ("self",):
                base_abs = list(path) + base[1:]
            else:
                base_abs = list(path) + base
            names = m.group(2).strip("{}")
            for part in split_group(names):
                name = re.sub(r"\s+as\s+\w+$", "", part).split("::")[-1].strip()
                if name:
                    table[(path, name)] = tuple(base_abs)
    return table


def resolve(mods, table, path, head, segs):
    """The module a path from module `path` names, or None for an outside name."""
    if head == "crate":
        absolute = list(segs)
    elif head not in ("self", "super"):
        absolute = list(path) + [head] + list(segs)
    elif head == "self":
        absolute = list(path) + list(segs)
    else:
        base = list(path)
        while segs and segs[0] == "super":
            segs = segs[1:]
            base = base[:-1]
        absolute = base[:-1] + list(segs)
    best = ()
    for n in range(len(absolute), -1, -1):
        if tuple(absolute[:n]) in mods:
            best = tuple(absolute[:n])
            break
    rest = absolute[len(best):]
    if rest and (best, rest[0]) in table:
        target = table[(best, rest[0])]
        for n in range(len(target), -1, -1):
            if tuple(target[:n]) in mods:
                return tuple(target[:n])
    return best


def sibling_edge(a, b):
    """The two siblings under the lowest common ancestor of a and b (None if one contains the other)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if n == len(a) or n == len(b):
        return None
    return a[: n + 1], b[: n + 1]


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def check(crate):
    src = os.path.join(crate, "src")
    mods = module_files(src)
    table = reexports(mods)
    edges, why = {}, {}
    for path, file in mods.items():
        text = strip_comments(strip_tests(open(file, encoding="utf-8").read()))
        children = [m[-1] for m in mods if len(m) == len(path) + 1 and m[: len(path)] == path]
        for head, segs in paths_in(text, children):
            target = resolve(mods, table, path, head, segs)
            if target is None:
                continue
            edge = (path, target) if STRICT else sibling_edge(path, target)
            if edge and edge[0] != edge[1]:
                edges.setdefault(edge[0], set()).add(edge[1])
                why.setdefault(edge, "::".join(path) + " -> " + head + "::" + "::".join(segs))
    found = cycles(edges)
    for comp in found:
        names = ["::".join(c) for c in comp]
        print(f"{crate}: cycle between {', '.join(names)}")
        for a in comp:
            for b in comp:
                if (a, b) in why:
                    print(f"    {why[(a, b)]}")
    return found


STRICT = False


def workspace_crates():
    """Every crate of the workspace in this folder: `.` (the root package) and its `members`."""
    text = open("Cargo.toml", encoding="utf-8").read()
    m = re.search(r"^members\s*=\s*\[([^\]]*)\]", text, flags=re.M)
    members = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    return ["."] + members


def main():
    global STRICT
    args = sys.argv[1:]
    if "--strict" in args:
        # As tests/layout.rs counts: a parent's use of a child's items (a re-export) and a
        # child's use of its parent's are both dependencies.
        STRICT = True
        args.remove("--strict")
    crates = args or workspace_crates()
    bad = [c for c in crates if check(c)]
    if not bad:
        print("no import cycles in", ", ".join(crates))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
