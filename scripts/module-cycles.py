#!/usr/bin/env python3
"""Module cycles inside each crate of the workspace.

A crate's modules form a tree (the files under `src/`). Module A depends on module B when A's
source names a path into B (`crate::b::…`, `super::b::…`, `use super::{b, …}`). A dependency
between a module and one of its own ancestors is the tree itself, not a cycle; any other
dependency is lifted to the two sibling subtrees it connects (children of the two modules'
nearest common ancestor). A cycle is then a strongly connected set of siblings: `reader` uses
`xlsx` and `xlsx` uses `reader`. The check prints each cycle and exits 1 when it finds one.

Usage: scripts/module-cycles.py [crate-dir …]   (default: every crate in crates/ and services/)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def strip_comments(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    # string literals can hold `crate::` in messages; drop them too (not raw strings, rare here)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', src)


def modules_of(src_dir: Path) -> dict:
    """Module path (tuple) -> file, for every .rs under src/ that is a module of the crate."""
    mods = {}
    for f in sorted(src_dir.rglob("*.rs")):
        rel = f.relative_to(src_dir).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        if parts and parts[0] == "bin":
            continue
        mods[tuple(parts)] = f
    return mods


def expand(path_text: str):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    path_text = path_text.strip()
    i = path_text.find("{")
    if i < 0:
        return [path_text]
    prefix = path_text[:i]
    body = path_text[i + 1 : path_text.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for item in items:
        if item.strip():
            out.extend(prefix + e for e in expand(item))
    return out


PATH_RE = re.compile(r"\b(crate|super|self)((?:::(?:\w+|\{[^;]*?\}(?=\s*;)))+)")


def references(src: str):
    for m in PATH_RE.finditer(src):
        for p in expand(m.group(1) + m.group(2)):
            yield [s.strip() for s in p.split("::") if s.strip()]


def resolve(mod: tuple, segs: list, mods: dict, is_dir_mod: bool):
    """The deepest known module a path points into, or None."""
    head, rest = segs[0], segs[1:]
    if head == "crate":
        base = ()
    else:
        base = mod
        while rest is not None and head in ("super", "self"):
            if head == "super":
                base = base[:-1]
            if not rest:
                return base
            head, rest = rest[0], rest[1:]
        rest = [head] + rest
    target = tuple(base)
    for s in rest:
        if target + (s,) in mods:
            target = target + (s,)
        else:
            break
    return target


def crate_cycles(crate_dir: Path):
    src_dir = crate_dir / "src"
    if not src_dir.is_dir():
        return []
    mods = modules_of(src_dir)
    edges = {}
    for mod, f in mods.items():
        text = strip_comments(f.read_text())
        for segs in references(text):
            tgt = resolve(mod, segs, mods, f.name == "mod.rs")
            if tgt is None or tgt == mod:
                continue
            n = 0
            while n < min(len(mod), len(tgt)) and mod[n] == tgt[n]:
                n += 1
            if n == len(mod) or n == len(tgt):
                continue  # ancestor or descendant: the tree itself
            a, b = mod[: n + 1], tgt[: n + 1]
            edges.setdefault(a, set()).add(b)
    # Tarjan's strongly connected components
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted("::".join(c) for c in comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    dirs = [Path(a) for a in sys.argv[1:]] or sorted(
        p.parent for p in list(ROOT.glob("crates/*/Cargo.toml")) + list(ROOT.glob("services/*/Cargo.toml"))
    )
    found = False
    for d in dirs:
        for cycle in crate_cycles(d):
            found = True
            print(f"{d.name}: module cycle between {' ⇄ '.join(cycle)}")
    if not found:
        print(f"no module cycle in {len(dirs)} crates")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
