#!/usr/bin/env python3
"""Where does one ``sysext-element-info`` run spend its wall-clock time?

Runs ``sysext-element-info`` in-process, several times each in a fresh
interpreter, with timers wrapped around its phases (imports, discovery,
element parsing, closure, graph building, ordering, output), and prints the
median milliseconds per phase.  Run it with the interpreter the tool is
installed in::

    /tmp/sysext-venv/bin/python bench/phases.py --count 10000

(the tree comes from bench/gen_elements.py, cached like bench_element_info.py
does).  The wrappers name private functions of ``sysext_builder.model.graph``; a
phase whose function no longer exists is reported as missing, not an error.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(requested: list[str]) -> None:
    """One measured run (in a fresh interpreter); prints a JSON dict of seconds."""
    import contextlib
    import io

    t: dict[str, float] = {}
    start = time.perf_counter()

    def timed(key: str, fn):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            s = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                t[key] = t.get(key, 0.0) + time.perf_counter() - s
        return wrapper

    s = time.perf_counter()
    import sysext_builder  # noqa: F401  (its __init__ reads the version from metadata)
    t["import sysext_builder (package __init__)"] = time.perf_counter() - s
    s = time.perf_counter()
    from sysext_builder.cli import element_info
    t["import cli.element_info (argparse, logging, ...)"] = time.perf_counter() - s
    s = time.perf_counter()
    from sysext_builder.model import discovery, element, graph
    t["import discovery, element, graph"] = time.perf_counter() - s
    # networkx and stevedore are imported lazily by the tool (if at all): time
    # their first import where it happens, and wrap the networkx calls made.
    import builtins

    real_import = builtins.__import__

    def patch_networkx(nx):  # type: ignore[no-untyped-def]
        nx_lex = nx.lexicographical_topological_sort

        def lex(g, key=None):  # type: ignore[no-untyped-def]
            s = time.perf_counter()
            result = list(nx_lex(g, key=key))
            t["nx.lexicographical_topological_sort"] = time.perf_counter() - s
            return iter(result)

        nx.is_directed_acyclic_graph = timed("nx.is_directed_acyclic_graph",
                                             nx.is_directed_acyclic_graph)
        nx.lexicographical_topological_sort = lex

    def hooked_import(name, globals=None, locals=None, fromlist=(), level=0):  # type: ignore
        top = name.partition(".")[0]
        if level == 0 and top in ("networkx", "stevedore") and top not in sys.modules:
            s = time.perf_counter()
            module = real_import(name, globals, locals, fromlist, level)
            t[f"import {top}"] = t.get(f"import {top}", 0.0) + time.perf_counter() - s
            if top == "networkx":
                patch_networkx(sys.modules["networkx"])
            return module
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = hooked_import

    discovery.search_path = timed("search path (entry points via stevedore)",
                                  discovery.search_path)
    element.ElementIndex._scan = timed("scan search path (scandir, names)",  # type: ignore
                                       element.ElementIndex._scan)
    element.load_element = timed("parse elements (load_element)", element.load_element)
    element.read_name_list = timed("  of which read_name_list", element.read_name_list)
    for name, label in (("_closure", "closure passes (minus parsing)"),
                        ("_providers", "collect provides"),
                        ("_check_conflicts", "check conflicts"),
                        ("_build_graph", "build nx.DiGraph"),
                        ("_build_edges", "build edges"),
                        ("_order", "order (no networkx)")):
        if hasattr(graph, name):  # wrapped where it exists
            setattr(graph, name, timed(label, getattr(graph, name)))
    element_info.render_text = timed("render text", element_info.render_text)
    graph.resolve = timed("resolve (total)", graph.resolve)
    out = io.StringIO()
    s = time.perf_counter()
    with contextlib.redirect_stdout(out):
        rc = element_info.main(requested)
    t["main (total)"] = time.perf_counter() - s
    t["in-process total"] = time.perf_counter() - start
    closure = t.get("closure passes (minus parsing)", 0.0)
    t["closure passes (minus parsing)"] = closure - t.get("parse elements (load_element)", 0.0)
    print(json.dumps({"rc": rc, "t": t}))


ORDER = (
    "import sysext_builder (package __init__)",
    "import cli.element_info (argparse, logging, ...)",
    "import discovery, element, graph",
    "search path (entry points via stevedore)",
    "import stevedore",
    "scan search path (scandir, names)",
    "resolve (total)",
    "import networkx",
    "parse elements (load_element)",
    "  of which read_name_list",
    "closure passes (minus parsing)",
    "collect provides",
    "check conflicts",
    "build nx.DiGraph",
    "nx.is_directed_acyclic_graph",
    "nx.lexicographical_topological_sort",
    "build edges",
    "order (no networkx)",
    "render text",
    "main (total)",
    "in-process total",
)
LABELS = {
    "import stevedore": "  import stevedore (inside search path)",
    "import networkx": "  import networkx (inside resolve)",
    "parse elements (load_element)": "  parse elements (load_element)",
    "  of which read_name_list": "    of which read_name_list",
    "closure passes (minus parsing)": "  closure passes (minus parsing)",
    "collect provides": "  collect provides",
    "check conflicts": "  check conflicts",
    "build nx.DiGraph": "  build nx.DiGraph",
    "nx.is_directed_acyclic_graph": "  nx.is_directed_acyclic_graph",
    "nx.lexicographical_topological_sort": "  nx.lexicographical_topological_sort",
    "build edges": "  build edges",
    "order (no networkx)": "  order (no networkx)",
}


def main() -> int:
    import argparse
    import statistics
    import subprocess
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "sysext-bench")
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(args.child)
        return 0
    out = args.workdir / f"tree-{args.count}-seed{args.seed}"
    subprocess.run([sys.executable, str(HERE / "gen_elements.py"), "--count", str(args.count),
                    "--seed", str(args.seed), "--out", str(out)], check=True,
                   capture_output=True)
    meta = json.loads((out / ".gen-elements.json").read_text())
    env = dict(os.environ, ELEMENTS_PATH=str(out))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(args.workdir.resolve() / "pycache")
    runs: list[dict[str, float]] = []
    walls: list[float] = []
    for i in range(args.repeat + 1):
        s = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", *meta["requested"]],
                              env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - s
        doc = json.loads(proc.stdout.splitlines()[-1])
        if doc["rc"] != 0:
            raise SystemExit(f"sysext-element-info failed: {proc.stderr}")
        if i:  # the first run warms caches
            runs.append(doc["t"])
            walls.append(wall)
    startup = []
    for _ in range(args.repeat + 1):
        s = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        startup.append(time.perf_counter() - s)
    print(f"{args.count} elements, {len(meta['selected'])} selected; median of {args.repeat} "
          f"runs, milliseconds ({sys.executable})")
    print(f"  {'whole process (wall)':<52} {statistics.median(walls) * 1000:8.1f}")
    print(f"  {'interpreter start-up (python -c pass)':<52} "
          f"{statistics.median(startup[1:]) * 1000:8.1f}")
    keys = [k for k in ORDER if any(k in r for r in runs)]
    keys += sorted({k for r in runs for k in r} - set(keys))
    for key in keys:
        values = [r.get(key, 0.0) for r in runs]
        print(f"  {LABELS.get(key, key):<52} {statistics.median(values) * 1000:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
