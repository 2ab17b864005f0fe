#!/usr/bin/env python3
"""Generate a synthetic tree of diskimage-builder style elements.

The tree is a random (seeded, deterministic) DAG of ``element-deps`` with a
share of ``element-provides``, shaped so that both sysext-builder's
``sysext-element-info`` and diskimage-builder's ``element-info`` resolve it
without error and select the same elements:

* ``--count`` directories in total, each with a ``README.rst``, an
  ``element-deps`` when it has dependencies and an ``element-provides`` when it
  provides virtual names.  No ``#`` comments (DIB does not strip them); blank
  lines and trailing blanks, which both tools ignore, appear now and then.
* Element names are a random permutation of ``elem-NNNNN`` so that name order
  says nothing about dependency order.
* Elements ``0 .. M-1`` ("main") form the DAG: element *i* depends only on
  elements with a higher index (so there is no cycle), and every main element
  that is not requested is a dependency of a lower-indexed main element (so the
  closure of the requested roots is the whole main part).
* The last ``--unused`` share of elements ("island") is never reached from the
  requested roots: they may depend on main elements, but nothing selected
  depends on them.  They stand for the unrelated elements every search path
  has, and some of them are alternative providers of virtual names.
* ``synthetic-os`` provides ``operating-system`` (DIB refuses to expand a set
  without one) and is requested; ``synthetic-os-alt`` provides it too but sits
  in the island, so it is a known but unselected provider.
* Virtual names (``virt-NNNNN``, never an element name) are provided by
  ``--provides`` share of main elements.  An element may depend on a virtual
  name only when its breadth-first depth from the roots is at least the
  provider's depth and its index is below the provider's: DIB expands
  breadth-first and fails with "Element not found" when it pops a virtual name
  before the element that provides it, and the index rule keeps the resolved
  graph (dependent -> provider) acyclic.

Usage::

    python bench/gen_elements.py --count 1000 --seed 1 --out DIR

writes the tree into DIR (plus ``DIR/.gen-elements.json`` with the
parameters, the requested names and the expected selection; a file, so both
tools ignore it) and prints the names to request on one line.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

META_FILE = ".gen-elements.json"
OS_ELEMENT = "synthetic-os"
OS_ALT_ELEMENT = "synthetic-os-alt"
OS_VIRTUAL = "operating-system"
#: bump when the shape of generated trees changes (cached trees are rebuilt)
GENERATOR_VERSION = 1


@dataclass
class Tree:
    """A generated tree before it is written to disk."""

    names: list[str]
    deps: list[list[str]]
    provides: list[list[str]]
    requested: list[str]
    #: names the resolution is expected to select (every main element)
    selected: list[str]
    virtual: dict[str, str] = field(default_factory=dict)  # virtual name -> selected provider

    def stats(self) -> dict[str, int]:
        return {
            "elements": len(self.names),
            "requested": len(self.requested),
            "selected": len(self.selected),
            "dep_lines": sum(len(d) for d in self.deps),
            "providers": sum(1 for p in self.provides if p),
            "virtual_names": len({v for p in self.provides for v in p}),
        }


def build(count: int, seed: int, roots: int = 8, provides_share: float = 0.1,
          unused_share: float = 0.05, max_extra_deps: int = 3) -> Tree:
    """Build the tree in memory (pure function of its arguments)."""
    if count < roots + 4:
        raise ValueError(f"--count must be at least {roots + 4}")
    rng = random.Random(seed)
    n_island = max(1, int(count * unused_share))
    n_main = count - n_island  # synthetic-os is main index n_main - 1
    width = len(str(count))
    perm = list(range(count - 2))
    rng.shuffle(perm)
    names = [f"elem-{perm[i]:0{width}d}" for i in range(count - 2)]
    # index n_main-1: synthetic-os (main, no deps); index count-1: synthetic-os-alt (island)
    names.insert(n_main - 1, OS_ELEMENT)
    names.append(OS_ALT_ELEMENT)
    os_index = n_main - 1
    generic_main = n_main - 1  # main elements other than synthetic-os: 0 .. generic_main-1

    deps: list[set[int]] = [set() for _ in range(count)]
    # Spanning parents: every non-root main element is needed by a lower index.
    for i in range(roots, generic_main):
        deps[rng.randrange(0, i)].add(i)
    # Extra random dependencies, always towards higher indices (acyclic).
    for i in range(generic_main):
        for _ in range(rng.randint(0, max_extra_deps)):
            if i + 1 < generic_main:
                deps[i].add(rng.randrange(i + 1, generic_main))
    # Island: may depend on anything main and on later island elements.
    for i in range(n_main, count - 1):
        for _ in range(rng.randint(0, max_extra_deps)):
            j = rng.randrange(0, count - 1)
            if j != i and (j < n_main or j > i) and j != os_index:
                deps[i].add(j)

    requested_idx = [*range(roots), os_index]
    depth = _bfs_depth(requested_idx, deps)
    assert all(depth[i] >= 0 for i in range(n_main)), "main part must be reachable"

    # Virtual names.
    virt_deps: list[list[str]] = [[] for _ in range(count)]
    provides: list[list[str]] = [[] for _ in range(count)]
    provides[os_index].append(OS_VIRTUAL)
    provides[count - 1].append(OS_VIRTUAL)
    virtual: dict[str, str] = {OS_VIRTUAL: OS_ELEMENT}
    n_providers = int(generic_main * provides_share)
    providers = sorted(rng.sample(range(1, generic_main), n_providers))
    virt_no = 0
    for p in providers:
        for _ in range(2 if rng.random() < 0.2 else 1):
            vname = f"virt-{virt_no:0{width}d}"
            virt_no += 1
            provides[p].append(vname)
            virtual[vname] = names[p]
            eligible = [e for e in rng.sample(range(p), min(p, 12)) if depth[e] >= depth[p]]
            for e in eligible[:rng.randint(1, 3)]:
                virt_deps[e].append(vname)
            if rng.random() < 0.2:  # an alternative, unselected provider in the island
                provides[rng.randrange(n_main, count - 1)].append(vname)
    # Some elements need an operating system (DIB's own elements rarely say so,
    # but the name must resolve through element-provides like any other).
    for e in rng.sample(range(generic_main), max(1, generic_main // 50)):
        virt_deps[e].append(OS_VIRTUAL)

    dep_names: list[list[str]] = []
    for i in range(count):
        real = [names[j] for j in sorted(deps[i])]
        both = real + virt_deps[i]
        rng.shuffle(both)  # file order must not matter
        dep_names.append(both)
    requested = sorted(names[i] for i in requested_idx)
    selected = sorted(names[:n_main])
    return Tree(names=names, deps=dep_names, provides=provides, requested=requested,
                selected=selected, virtual=dict(sorted(virtual.items())))


def _bfs_depth(roots: list[int], deps: list[set[int]]) -> list[int]:
    depth = [-1] * len(deps)
    queue: deque[int] = deque()
    for r in roots:
        depth[r] = 0
        queue.append(r)
    while queue:
        i = queue.popleft()
        for j in deps[i]:
            if depth[j] < 0:
                depth[j] = depth[i] + 1
                queue.append(j)
    return depth


def _name_file(names: list[str], rng: random.Random) -> str:
    lines = []
    for name in names:
        if rng.random() < 0.05:
            lines.append("")
        lines.append(name + (" " if rng.random() < 0.05 else ""))
    return "\n".join(lines) + "\n"


def write(tree: Tree, out: Path, params: dict[str, object]) -> None:
    """Write ``tree`` into ``out`` (replacing an earlier generated tree there)."""
    if out.exists():
        if not (out / META_FILE).is_file() and any(out.iterdir()):
            raise SystemExit(f"gen_elements: {out} exists, is not empty and was not "
                             "generated by this script; refusing to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(repr(sorted(params.items())))
    for name, deps, provides in zip(tree.names, tree.deps, tree.provides, strict=True):
        d = out / name
        d.mkdir()
        (d / "README.rst").write_text(
            f"{'=' * len(name)}\n{name}\n{'=' * len(name)}\n\n"
            "Synthetic element generated by bench/gen_elements.py.\n", encoding="utf-8")
        if deps:
            (d / "element-deps").write_text(_name_file(deps, rng), encoding="utf-8")
        if provides:
            (d / "element-provides").write_text(_name_file(provides, rng), encoding="utf-8")
    meta = {"params": params, "requested": tree.requested, "selected": tree.selected,
            "virtual": tree.virtual, "stats": tree.stats()}
    (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def generate(out: Path, count: int, seed: int, **kwargs: float) -> dict[str, object]:
    """Generate (or reuse an identical, already generated) tree; return its metadata."""
    params: dict[str, object] = {"count": count, "seed": seed,
                                 "version": GENERATOR_VERSION, **kwargs}
    meta_path = out / META_FILE
    if meta_path.is_file():
        meta: dict[str, object] = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("params") == params:
            return meta
    tree = build(count, seed, **kwargs)  # type: ignore[arg-type]
    write(tree, out, params)
    result: dict[str, object] = json.loads(meta_path.read_text(encoding="utf-8"))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Prints the element names to request on stdout.")
    p.add_argument("--count", type=int, default=1000, help="number of elements (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--out", type=Path, required=True, help="directory to write the tree into")
    p.add_argument("--roots", type=int, default=8,
                   help="generic elements to request besides synthetic-os (default 8)")
    p.add_argument("--provides", type=float, default=0.1, dest="provides_share",
                   help="share of elements that provide virtual names (default 0.1)")
    p.add_argument("--unused", type=float, default=0.05, dest="unused_share",
                   help="share of elements no requested element reaches (default 0.05)")
    p.add_argument("--max-extra-deps", type=int, default=3,
                   help="random dependencies per element besides the spanning one (default 3)")
    args = p.parse_args(argv)
    meta = generate(args.out, args.count, args.seed, roots=args.roots,
                    provides_share=args.provides_share, unused_share=args.unused_share,
                    max_extra_deps=args.max_extra_deps)
    print(json.dumps(meta["stats"]), file=sys.stderr)
    print(" ".join(meta["requested"]))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
