"""``sysext-element-info``: resolve elements and show the result."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sysext_builder.cli import common

if TYPE_CHECKING:
    from sysext_builder.model.graph import Resolution

PROG = "sysext-element-info"

DESCRIPTION = """\
Resolve ELEMENTs and everything they depend on, and print them in build order
(each element after all it depends on, ties broken by name) with the path it
was found at, then what the elements need on the target OS (their
target-requires files).

Elements are searched, first hit wins, in: --element-path DIRs, ELEMENTS_PATH
(colon separated), element directories registered by installed Python packages
(entry point group sysext_builder.elements), and the built-in elements.
"""

EPILOG = """\
exit codes: 0 ok, 2 usage, 10 malformed element file, 11 element not found,
12 virtual name without provider, 13 conflicting providers, 14 dependency cycle,
15 plugin failed to load.
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, DESCRIPTION, EPILOG)
    common.add_element_path(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="print JSON: every element with name, path, origin, deps, "
                          "provides, target requirements and why it was selected")
    out.add_argument("--graph", action="store_true",
                     help="print the dependency graph in Graphviz DOT (edge a -> b: a needs b)")
    out.add_argument("--why", metavar="NAME",
                     help="print every chain from a requested element to NAME")
    out.add_argument("--env", action="store_true",
                     help="print shell exports: IMAGE_ELEMENT, IMAGE_ELEMENT_YAML and "
                          "get_image_element_array (as diskimage-builder's element-info --env)")
    p.add_argument("elements", metavar="ELEMENT", nargs="+", help="element to resolve")
    return p


def render_text(res: Resolution) -> str:
    width = max(len(e.name) for e in res.order)
    lines = [f"{e.name.ljust(width)}  {e.path}  [{e.origin}]" for e in res.order]
    for name in sorted(res.virtual):
        lines.append(f"# {name} is provided by {res.virtual[name]}")
    # what a build without --base assumes of the target (element file target-requires)
    for element in res.order:
        for requirement in element.target_requires:
            lines.append(f"# {element.name} needs on the target: {requirement}")
    return "\n".join(lines)


def render_json(res: Resolution) -> str:
    elements = []
    for element in res.order:
        elements.append({
            "name": element.name,
            "path": str(element.path),
            "origin": element.origin,
            "deps": list(element.deps),
            "provides": list(element.provides),
            "target_requires": list(element.target_requires),
            "why_selected": res.why_selected(element.name),
            "chain": res.chain(element.name),
        })
    doc = {"requested": list(res.requested), "elements": elements,
           "virtual": dict(sorted(res.virtual.items()))}
    return json.dumps(doc, indent=2)


def _dot_id(name: str) -> str:
    return json.dumps(name)  # a double-quoted string with escapes is a DOT ID


def render_dot(res: Resolution) -> str:
    lines = ["digraph elements {", "  rankdir=LR;"]
    requested = set(res.requested)
    for element in res.order:
        attrs = ' [shape=box, style=bold]' if element.name in requested else ""
        lines.append(f"  {_dot_id(element.name)}{attrs};")
    for a, b, data in sorted(res.graph.edges(data=True)):
        label = f' [label={_dot_id(data["via"])}, style=dashed]' if "via" in data else ""
        lines.append(f"  {_dot_id(a)} -> {_dot_id(b)}{label};")
    lines.append("}")
    return "\n".join(lines)


def render_env(res: Resolution) -> str:
    names = " ".join(res.names)
    yaml_map = "\n".join(f"{e.name}: {json.dumps(str(e.path))}" for e in res.order)
    array = " ".join(f"[{e.name}]={shlex.quote(str(e.path))}" for e in res.order)
    return "\n".join([
        f"export IMAGE_ELEMENT={shlex.quote(names)}",
        f"export IMAGE_ELEMENT_YAML={shlex.quote(yaml_map)}",
        "function get_image_element_array {",
        f"  echo {shlex.quote(array)}",
        "};",
        "export -f get_image_element_array;",
    ])


def render_why(res: Resolution, name: str) -> str:
    from sysext_builder.errors import UsageError

    chains = res.why(name)
    if not chains:
        raise UsageError(f"{name!r} is not part of this selection",
                         hint="selected: " + ", ".join(res.names))
    return "\n".join(" -> ".join(chain) for chain in chains)


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(build_parser(), argv)
    from sysext_builder.cli.progress import setup_logging

    setup_logging(debug=args.debug)

    def body() -> int:
        from sysext_builder.model import builtin, discovery, graph

        catalog = discovery.index(args.element_path, os.environ)
        res = graph.resolve(args.elements, catalog, built_in=builtin.BUILT_IN)
        if args.json:
            out = render_json(res)
        elif args.graph:
            out = render_dot(res)
        elif args.env:
            out = render_env(res)
        elif args.why:
            out = render_why(res, args.why)
        else:
            out = render_text(res)
        print(out)
        return 0

    return common.run(PROG, args.debug, body)
