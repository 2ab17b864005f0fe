"""Repository invariants: module size, layering, imports (the built-in elements are
linted in tests/unit/authoring/test_lint.py, with the linter's own rules)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.base import PACKAGE_DIR, TestCase

MAX_MODULE_LINES = 400
#: modules allowed at the package's top level besides __init__ and __main__
MAX_TOP_LEVEL_MODULES = 12

#: What each part of the package may import from the others (a part is a
#: top-level module or subpackage; imports inside a part are free).  Read
#: top to bottom, this is doc/design.rst's layering: the foundation, then
#: the pure model, the edges that touch the tree, output, the recipe, and
#: the tools and CLI on top.  Nothing imports the CLI.
_FOUNDATION = {"errors", "paths", "log", "fileutil", "plugins", "runner", "treeread"}
ALLOWED_IMPORTS: dict[str, set[str]] = {
    "errors": set(),
    "paths": set(),
    "log": set(),
    "fileutil": set(),
    "treeread": set(),
    "plugins": {"errors"},
    "runner": {"errors", "paths", "fileutil"},
    "config": {"errors"},
    "model": _FOUNDATION,
    "sysext": _FOUNDATION,
    "staging": _FOUNDATION | {"config", "model", "sysext"},
    "install": _FOUNDATION | {"config", "model", "sysext", "staging"},
    "formats": _FOUNDATION,
    "output": _FOUNDATION | {"config", "model", "formats"},
    "builder": _FOUNDATION | {"config", "model", "sysext", "staging", "install", "formats",
                              "output"},
    "imageset": _FOUNDATION | {"config", "output"},
    "authoring": _FOUNDATION | {"config", "model", "sysext", "staging", "install", "builder"},
    "cli": _FOUNDATION | {"config", "model", "sysext", "staging", "install", "formats",
                          "output", "builder", "imageset", "authoring", "package_version"},
    "__init__": {"errors"},
    "__main__": {"cli"},
}
_CLI_RE = re.compile(r"^sysext_builder\.cli(\.|$)")


def modules() -> Iterator[tuple[str, Path]]:
    """(path relative to the repository, path) of every module of the package."""
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent).as_posix()
        if rel.startswith(("sysext_builder/elements/", "sysext_builder/lib/")):
            continue  # element data and the shell library are not Python modules
        yield rel, path


def _module_name(rel: str) -> str:
    name = rel.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def imported_modules(source: str, module: str = "sysext_builder.x") -> set[str]:
    """Absolute names of every module imported by ``source`` (relative ones resolved)."""
    names: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "id", getattr(node.func, "attr", "")) in
              ("import_module", "__import__") and node.args):
            names.add(_static_prefix(node.args[0]))
    return names


def _static_prefix(arg: ast.expr) -> str:
    """The literal start of a module-name argument (``f"pkg.{x}"`` gives ``pkg``)."""
    if isinstance(arg, ast.Constant):
        return str(arg.value)
    prefix = ""
    if isinstance(arg, ast.JoinedStr):
        for value in arg.values:
            if not isinstance(value, ast.Constant):
                break
            prefix += str(value.value)
    return prefix.rstrip(".")


def forbidden_calls(source: str) -> list[str]:
    """``print(...)`` and ``sys.exit(...)``/``exit(...)``/``quit(...)`` calls in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("print", "exit", "quit"):
            found.append(f"{func.id}() at line {node.lineno}")
        elif (isinstance(func, ast.Attribute) and func.attr == "exit"
              and isinstance(func.value, ast.Name) and func.value.id in ("sys", "os")):
            found.append(f"{func.value.id}.exit() at line {node.lineno}")
    return found


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _part(module: str) -> str | None:
    """The part of the package ``module`` belongs to (``None`` outside it)."""
    parts = module.split(".")
    if parts[0] != "sysext_builder":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def module_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports.

    ``from pkg import mod`` counts as an import of ``pkg.mod`` only: a package
    whose ``__init__`` imports its submodules, which import siblings through
    ``from pkg import sibling``, has no cycle.
    """
    sources = {_module_name(rel): path for rel, path in modules()}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                subs = {f"{node.module}.{a.name}" for a in node.names}
                edges.update(s for s in subs if s in sources)
                if not subs <= set(sources):
                    edges.add(node.module)
        graph[name] = {e for e in edges if e in sources and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


class TestCheckers(TestCase):
    """The checkers below really find what they look for."""

    def test_imported_modules(self) -> None:
        source = ("import subprocess\nfrom stevedore import driver\n"
                  "from . import cli\nfrom .cli import common\n"
                  "importlib.import_module('sysext_builder.cli.x')\n"
                  "import_module(f'sysext_builder.formats.{name}')\n"
                  "'sysext_builder.cli is only mentioned here'\n")
        names = imported_modules(source, "sysext_builder.builder")
        self.assertTrue({"subprocess", "stevedore", "sysext_builder.cli",
                         "sysext_builder.cli.common", "sysext_builder.cli.x",
                         "sysext_builder.formats"} <= names, names)
        self.assertNotIn("sysext_builder.cli is only mentioned here", names)

    def test_cycles(self) -> None:
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
        self.assertEqual([["a", "b", "c"]], cycles(graph))
        self.assertEqual([], cycles({"a": {"b"}, "b": set()}))

    def test_part(self) -> None:
        self.assertEqual("model", _part("sysext_builder.model.graph"))
        self.assertEqual("builder", _part("sysext_builder.builder"))
        self.assertEqual("__init__", _part("sysext_builder"))
        self.assertIsNone(_part("subprocess"))

    def test_forbidden_calls(self) -> None:
        source = ('"""never print( here"""\ndef f():\n    print("x")\n    sys.exit(1)\n'
                  '    log.print_stats()\n    os.exit(2)\n')
        self.assertEqual(["print() at line 3", "sys.exit() at line 4", "os.exit() at line 6"],
                         forbidden_calls(source))


class TestModules(TestCase):

    def test_found_modules(self) -> None:
        rels = [rel for rel, _ in modules()]
        for expected in ("sysext_builder/model/graph.py", "sysext_builder/cli/common.py",
                         "sysext_builder/runner.py", "sysext_builder/plugins.py"):
            self.assertIn(expected, rels)

    def test_module_size(self) -> None:
        too_long = []
        for rel, path in modules():
            count = len(path.read_text(encoding="utf-8").splitlines())
            if count > MAX_MODULE_LINES:
                too_long.append(f"{rel}: {count} lines")
        self.assertEqual([], too_long, f"modules over {MAX_MODULE_LINES} lines")

    def test_library_never_prints_or_exits(self) -> None:
        # __main__.py is the ``python -m`` entry point: a CLI module in all but location.
        offenders = []
        for rel, path in modules():
            if rel.startswith("sysext_builder/cli/") or rel == "sysext_builder/__main__.py":
                continue
            offenders += [f"{rel}: {c}" for c in forbidden_calls(path.read_text("utf-8"))]
        self.assertEqual([], offenders)

    def _importers(self, predicate: object) -> list[str]:
        result = []
        for rel, path in modules():
            names = imported_modules(path.read_text("utf-8"), _module_name(rel))
            if any(predicate(n) for n in names):  # type: ignore[operator]
                result.append(rel)
        return result

    def test_top_level_modules(self) -> None:
        top = [rel for rel, _ in modules() if rel.count("/") == 1
               and not rel.endswith(("/__init__.py", "/__main__.py"))]
        self.assertLessEqual(len(top), MAX_TOP_LEVEL_MODULES, top)

    def test_layering(self) -> None:
        offenders = []
        for rel, path in modules():
            module = _module_name(rel)
            part = _part(module)
            assert part is not None
            self.assertIn(part, ALLOWED_IMPORTS, f"{module}: part {part!r} has no row")
            for name in sorted(imported_modules(path.read_text("utf-8"), module)):
                other = _part(name)
                # the bare package name is what ``from sysext_builder import x`` starts with
                if other in (None, part) or name == "sysext_builder":
                    continue
                if other not in ALLOWED_IMPORTS[part]:
                    offenders.append(f"{module} imports {name}")
        self.assertEqual([], offenders)

    def test_no_import_cycles(self) -> None:
        self.assertEqual([], cycles(module_graph()))

    def test_imports_at_the_top(self) -> None:
        # Function-level imports hide the dependency graph; only the CLI (fast
        # --help) and the lazy networkx/stevedore paths may defer an import.
        lazy_ok = ("networkx", "stevedore")
        offenders = []
        for rel, path in modules():
            if rel.startswith("sysext_builder/cli/"):
                continue
            for fn in ast.walk(ast.parse(path.read_text("utf-8"))):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom):
                        name = node.module or ""
                    elif isinstance(node, ast.Import):
                        name = node.names[0].name
                    else:
                        continue
                    if not name.startswith(lazy_ok):
                        offenders.append(f"{rel}:{node.lineno}: {name} in {fn.name}()")
        self.assertEqual([], offenders)

    def test_only_runner_imports_subprocess(self) -> None:
        self.assertEqual(["sysext_builder/runner.py"],
                         self._importers(lambda n: _top(n) == "subprocess"))

    def test_only_plugins_imports_stevedore(self) -> None:
        self.assertEqual(["sysext_builder/plugins.py"],
                         self._importers(lambda n: _top(n) == "stevedore"))

    def test_nothing_imports_the_cli(self) -> None:
        importers = self._importers(lambda n: bool(_CLI_RE.match(n)))
        outside = [rel for rel in importers if not rel.startswith("sysext_builder/cli/")
                   and rel != "sysext_builder/__main__.py"]
        self.assertEqual([], outside)
        self.assertIn("sysext_builder/__main__.py", importers)
