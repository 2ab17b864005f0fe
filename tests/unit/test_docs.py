"""The documentation in doc/ cannot drift from the code.

Everything is taken from the code itself: the console scripts of setup.cfg and
their ``build_parser()``, the environment a real (tiny) build hands its hooks,
the variables the package reads, the exception classes with their exit codes,
the built-in elements, the plugin entry points, the ``--config`` keys and the
lint codes.  A new command, option, variable, exit code or element that
doc/reference.rst does not list fails here, naming what is missing and where
it belongs.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import inspect
import io
import pkgutil
import re
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fixtures

import sysext_builder
from sysext_builder import builder, errors, paths
from sysext_builder.config import BuildConfig
from sysext_builder.staging import buildenv, executor
from sysext_builder.staging.workspace import Workspace
from tests.base import REPO_ROOT, TestCase

DOC = REPO_ROOT / "doc"
REFERENCE = DOC / "reference.rst"
SETUP_CFG = REPO_ROOT / "setup.cfg"

#: a section adornment line: one punctuation character repeated, nothing else
_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+<>:._!])\1{2,}\s*$")
_LITERAL = re.compile(r"``(.+?)``")
_OPTION = re.compile(r"^--?[A-Za-z0-9][A-Za-z0-9-]*$")
_LINK = re.compile(r"`[^`<]*<([^>`]+)>`__?")
_PROBE_VARIABLE = "DIB_DOCS_PROBE"


@dataclass(frozen=True)
class Section:
    title: str
    level: int
    start: int  # index of the title line
    end: int  # index after the last line of the section (subsections included)
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines[self.start:self.end])

    @property
    def anchor(self) -> str:
        """The id docutils gives the section (for ``page.rst#anchor`` links)."""
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def sections(text: str) -> list[Section]:
    """The sections of an RST document, with levels in order of first appearance."""
    lines = tuple(text.splitlines())
    styles: list[tuple[str, bool]] = []
    found: list[tuple[int, str, int]] = []
    for i in range(len(lines) - 1):
        title, under = lines[i], _ADORNMENT.match(lines[i + 1])
        if not title.strip() or title[0].isspace() or _ADORNMENT.match(title) or under is None:
            continue
        if len(lines[i + 1].rstrip()) < len(title.rstrip()):
            continue
        over = i > 0 and lines[i - 1].rstrip() == lines[i + 1].rstrip()
        style = (under.group(1), over)
        if style not in styles:
            styles.append(style)
        found.append((i - 1 if over else i, title.strip(), styles.index(style)))
    result = []
    for n, (start, title, level) in enumerate(found):
        end = next((s for s, _, lv in found[n + 1:] if lv <= level), len(lines))
        result.append(Section(title, level, start, end, lines))
    return result


def section(text: str, title: str) -> Section | None:
    return next((s for s in sections(text) if s.title == title), None)


def literal_tokens(text: str) -> set[str]:
    """Every word inside ``double backquotes`` (split on blanks and commas)."""
    tokens: set[str] = set()
    for literal in _LITERAL.findall(text):
        tokens.update(t for t in re.split(r"[\s,]+", literal) if t)
    return tokens


def documented_option_terms(sec: Section) -> set[str]:
    """Options named in the section's definition-list terms (lines starting ``-...``)."""
    terms: set[str] = set()
    for line in sec.lines[sec.start:sec.end]:
        if line.startswith("``-"):
            terms |= {t for t in literal_tokens(line) if _OPTION.match(t)}
    return terms


def console_scripts() -> dict[str, str]:
    """``name -> module:function`` of setup.cfg's console_scripts."""
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG, encoding="utf-8")
    result = {}
    for line in cfg.get("entry_points", "console_scripts", fallback="").splitlines():
        if "=" in line:
            name, _, target = line.partition("=")
            result[name.strip()] = target.strip()
    return result


def entry_point_names(group: str) -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG, encoding="utf-8")
    return [line.partition("=")[0].strip()
            for line in cfg.get("entry_points", group, fallback="").splitlines()
            if "=" in line]


def command_module(target: str) -> str:
    """The module whose ``build_parser()`` the console script ``target`` uses.

    ``sysext_builder.cli:create_main`` -> ``sysext_builder.cli.create``: the module
    the entry function imports (``from sysext_builder.cli import create``), else
    the function's name without ``_main``.
    """
    module, _, function = target.partition(":")
    entry = getattr(importlib.import_module(module), function)
    imported = re.findall(r"^\s*from\s+([\w.]+)\s+import\s+(\w+)\s*$",
                          inspect.getsource(entry), re.MULTILINE)
    for package, name in imported:
        candidate = f"{package}.{name}"
        if importlib.util.find_spec(candidate) is not None and \
                hasattr(importlib.import_module(candidate), "build_parser"):
            return candidate
    return f"{module}.{function.removesuffix('_main')}"


def error_classes() -> Iterator[type[errors.SysextBuilderError]]:
    """Every SysextBuilderError subclass the package defines (all modules imported)."""
    for info in pkgutil.walk_packages(sysext_builder.__path__, "sysext_builder."):
        importlib.import_module(info.name)
    pending = [errors.SysextBuilderError]
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


def exit_codes(cls: type[errors.SysextBuilderError]) -> list[int]:
    if cls is errors.Interrupted:
        return [errors.Interrupted(signal.SIGINT).exit_code,
                errors.Interrupted(signal.SIGTERM).exit_code]
    if "exit_code" in vars(cls) or cls is errors.SysextBuilderError:
        return [cls.exit_code]
    return []  # inherits its parent's code (e.g. runner.CommandFailed)


def exit_code_rows(sec: Section) -> dict[int, str]:
    """Code -> the text of its table row (continuation lines included)."""
    rows: dict[int, str] = {}
    current: int | None = None
    for line in sec.lines[sec.start:sec.end]:
        match = re.match(r"^(\d+)\s", line)
        if match:
            current = int(match.group(1))
            rows[current] = line
        elif current is not None and line.startswith(" ") and line.strip():
            rows[current] += " " + line.strip()
        else:
            current = None
    return rows


class ReferenceTestCase(TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.reference = REFERENCE.read_text(encoding="utf-8")

    def need(self, title: str) -> Section:
        sec = section(self.reference, title)
        if sec is None:
            self.fail(f"doc/reference.rst has no section titled {title!r}")
        return sec


class TestCommands(ReferenceTestCase):
    def test_setup_cfg_has_console_scripts(self) -> None:
        self.assertIn("sysext-create", console_scripts())

    def test_every_option_of_every_command_is_documented(self) -> None:
        for command, target in sorted(console_scripts().items()):
            module = importlib.import_module(command_module(target))
            parser = module.build_parser()
            sec = section(self.reference, command)
            self.assertIsNotNone(sec, f"doc/reference.rst has no section titled {command!r} "
                                      f"(console script {target})")
            assert sec is not None
            documented = literal_tokens(sec.text)
            missing = sorted(option for action in parser._actions
                             for option in action.option_strings if option not in documented)
            self.assertEqual([], missing, f"options of {command} not documented as ``OPTION`` "
                                          f"in its section of doc/reference.rst")

    def test_no_documented_option_is_stale(self) -> None:
        for command, target in sorted(console_scripts().items()):
            parser = importlib.import_module(command_module(target)).build_parser()
            real = {o for action in parser._actions for o in action.option_strings}
            sec = self.need(command)
            stale = sorted(documented_option_terms(sec) - real)
            self.assertEqual([], stale, f"doc/reference.rst documents options {command} "
                                        "does not have")

    def test_every_output_format_is_documented(self) -> None:
        documented = literal_tokens(self.need("sysext-create").text)
        for name in entry_point_names("sysext_builder.formats"):
            self.assertIn(name, documented, f"format {name!r} missing under sysext-create")

    def test_every_package_backend_is_documented(self) -> None:
        documented = literal_tokens(self.need("Plugins").text)
        for name in entry_point_names("sysext_builder.package_backends"):
            self.assertIn(name, documented, f"package backend {name!r} missing under Plugins")


class TestVariables(ReferenceTestCase):
    def hook_environment(self) -> dict[str, str]:
        """The environment a real build hands an install.d hook (no base, no root needed)."""
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        element = tmp / "elements" / "docs-probe"
        (element / "install.d").mkdir(parents=True)
        hook = element / "install.d" / "50-probe"
        hook.write_text('#!/bin/sh\nmkdir -p "$TARGET_ROOT/usr/share/docs-probe"\n')
        hook.chmod(0o755)
        seen: list[dict[str, str]] = []

        def launcher(argv: Sequence[str], env: Mapping[str, str],
                     on_line: Callable[[str], None]) -> tuple[int, list[str]]:
            seen.append(dict(env))
            return executor.default_launcher(argv, env, on_line)

        config = BuildConfig(elements=("docs-probe",), output=str(tmp / "out" / "docs-probe"),
                             formats=("directory",), os_id="_any", os_version_id="1",
                             element_paths=(str(tmp / "elements"),), workdir=tmp / "work",
                             cache_dir=tmp / "cache", environ={_PROBE_VARIABLE: "1"})
        builder.build(config, launcher=launcher)
        self.assertEqual(1, len(seen), "the probe hook did not run exactly once")
        self.assertEqual("1", seen[0].get(_PROBE_VARIABLE), "DIB_* variables must reach hooks")
        return seen[0]

    def base_environments(self) -> tuple[dict[str, str], dict[str, str]]:
        """host_environment() as it is with a --base, and its chroot form."""
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        config = BuildConfig(elements=("x",), environ={})
        wanted = inspect.signature(buildenv.host_environment).parameters
        extra: dict[str, Any] = {}
        if "base_release" in wanted:
            extra["base_release"] = {"ID": "debian", "VERSION_ID": "12",
                                     "VERSION_CODENAME": "bookworm"}
        if "base_root" in wanted:
            extra["base_root"] = tmp / "base"
        with Workspace(tmp) as ws:
            host = buildenv.host_environment(config, ws, ("x",), "x86-64", ws.path / "merged",
                                             **extra)
        from sysext_builder.staging.overlay import INSIDE

        return host, buildenv.chroot_environment(host, INSIDE)

    def test_every_variable_hooks_see_is_documented(self) -> None:
        names = set(self.hook_environment())
        host, chroot = self.base_environments()
        names |= set(host) | set(chroot)
        names.discard(_PROBE_VARIABLE)
        documented = literal_tokens(self.need("Variables hooks see").text)
        missing = sorted(names - documented)
        self.assertEqual([], missing, "variables hooks see, missing from the section "
                                      "'Variables hooks see' of doc/reference.rst")

    def test_passed_through_variables_are_documented(self) -> None:
        documented = literal_tokens(self.need("Variables hooks see").text)
        missing = sorted(set(getattr(buildenv, "_PASSED", ())) - documented)
        self.assertEqual([], missing, "host variables passed to hooks, not documented")

    def test_chroot_paths_are_documented(self) -> None:
        from sysext_builder.staging.overlay import INSIDE

        host, chroot = self.base_environments()
        text = self.need("Paths inside the chroot").text
        documented = literal_tokens(text)
        changed = sorted(k for k in chroot if k != "PATH" and chroot[k] != host.get(k))
        for key in changed:
            self.assertIn(key, documented, f"{key} differs inside the chroot: list it")
            self.assertIn(chroot[key], documented, f"{key}={chroot[key]} inside the chroot")
        self.assertIn(INSIDE["elements"] + "/ELEMENT", documented)

    def test_every_shell_library_function_is_documented(self) -> None:
        library = paths.shell_lib_dir() / "common-functions.sh"
        functions = re.findall(r"^([A-Za-z][A-Za-z0-9_]*)\(\)\s*\{", library.read_text(
            encoding="utf-8"), re.MULTILINE)
        self.assertIn("die", functions)
        documented = literal_tokens(self.need("Shell library").text)
        missing = sorted(set(functions) - documented)
        self.assertEqual([], missing, "shell library functions missing from the section "
                                      "'Shell library' of doc/reference.rst")
        scripts = sorted(p.name for p in library.parent.iterdir()
                         if p.is_file() and p.stat().st_mode & 0o111 and "-" in p.name
                         and p.name != "overlay-run")
        for script in scripts:
            self.assertTrue(any(script in token for token in documented),
                            f"$SYSEXT_LIB/{script} is not documented under 'Shell library'")

    def test_every_variable_the_builder_reads_is_documented(self) -> None:
        documented = literal_tokens(self.need("Variables").text)
        read = _variables_read_by_the_package()
        self.assertGreater(len(read), 10, "the source scan found too little; fix its patterns")
        missing = []
        for name, is_prefix in sorted(read):
            if is_prefix:
                if not any(token.startswith(name) for token in documented):
                    missing.append(name + "*")
            elif name not in documented:
                missing.append(name)
        self.assertEqual([], missing, "variables the package reads, missing from the "
                                      "'Variables' section of doc/reference.rst")


def _variables_read_by_the_package() -> set[tuple[str, bool]]:
    """(NAME, is_prefix) for every variable the package's code looks up by name."""
    lookups = re.compile(r'(?:\benviron|\benv|\bdefaults|\bdeclared or \{\}\))\.get\(\s*f?'
                         r'"([A-Z][A-Z0-9_]*)(\{?)')
    concatenated = re.compile(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]*)"\s*\+')
    prefixes = re.compile(r'\.startswith\(\s*"([A-Z][A-Z0-9_]*_)"\s*\)')
    found: set[tuple[str, bool]] = set()
    for path in sorted((REPO_ROOT / "sysext_builder").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        found |= {(m.group(1), bool(m.group(2))) for m in lookups.finditer(text)}
        found |= {(m.group(1), True) for m in concatenated.finditer(text)}
        found |= {(m.group(1), True) for m in prefixes.finditer(text)}
    return found


class TestExitCodes(ReferenceTestCase):
    def test_every_error_class_has_its_code_listed(self) -> None:
        rows = exit_code_rows(self.need("Exit codes"))
        checked = 0
        for cls in error_classes():
            for code in exit_codes(cls):
                checked += 1
                self.assertIn(code, rows, f"exit code {code} ({cls.__name__}) is not in the "
                                          "table of doc/reference.rst")
                self.assertIn(f"``{cls.__name__}``", rows[code],
                              f"the row of exit code {code} must name ``{cls.__name__}``")
        self.assertGreater(checked, 15)

    def test_every_listed_code_exists(self) -> None:
        real = {code for cls in error_classes() for code in exit_codes(cls)} | {0}
        listed = set(exit_code_rows(self.need("Exit codes")))
        self.assertEqual(set(), listed - real, "codes listed in doc/reference.rst that no "
                                               "error class has")


class TestElementsAndFormats(ReferenceTestCase):
    def builtin_elements(self) -> list[str]:
        top = paths.builtin_elements_dir()
        return sorted(p.name for p in top.iterdir() if p.is_dir() and not p.name.startswith("."))

    def test_every_builtin_element_is_listed_with_its_readme(self) -> None:
        text = self.need("Built-in elements").text
        names = self.builtin_elements()
        self.assertIn("azure-oem", names)
        for name in names:
            self.assertIn(f"<../sysext_builder/elements/{name}/README.rst>", text,
                          f"built-in element {name} is not linked from 'Built-in elements'")

    def test_no_listed_element_is_gone(self) -> None:
        text = self.need("Built-in elements").text
        listed = set(re.findall(r"<\.\./sysext_builder/elements/([^/]+)/README\.rst>", text))
        self.assertEqual(set(), listed - set(self.builtin_elements()))

    def test_config_file_keys_are_documented(self) -> None:
        from sysext_builder import imageset

        documented = literal_tokens(self.need("The --config file").text)
        for key in (*imageset.ENTRY_KEYS, *imageset.OPTIONS):
            self.assertIn(key, documented, f"--config key {key!r} is not documented")

    def test_lint_codes_are_documented(self) -> None:
        if importlib.util.find_spec("sysext_builder.authoring.lint.check") is None:
            self.skipTest("no sysext_builder.authoring.lint.check")
        from sysext_builder.authoring.lint import findings

        text = self.need("Lint checks").text
        listed = set(re.findall(r"^(SB\d{3})\s", text, re.MULTILINE))
        self.assertEqual(set(findings.CODES), listed, "lint codes in doc/reference.rst differ "
                                                  "from sysext_builder.authoring.lint.check.CODES")


class TestDocumentSet(TestCase):
    PAGES = ("index", "quickstart", "authoring", "reference", "dib", "design")

    def test_pages_exist_and_index_links_them(self) -> None:
        index = (DOC / "index.rst").read_text(encoding="utf-8")
        for page in self.PAGES:
            self.assertTrue((DOC / f"{page}.rst").is_file(), f"doc/{page}.rst is missing")
            if page != "index":
                self.assertIn(f"<{page}.rst>", index, f"doc/index.rst does not link {page}")

    def test_relative_links_resolve(self) -> None:
        anchors = {p.name: {s.anchor for s in sections(p.read_text(encoding="utf-8"))}
                   for p in DOC.glob("*.rst")}
        for page in sorted(DOC.glob("*.rst")):
            for target in _LINK.findall(page.read_text(encoding="utf-8")):
                if "://" in target or target.startswith("mailto:"):
                    continue
                path, _, fragment = target.partition("#")
                resolved = (page.parent / path).resolve()
                self.assertTrue(resolved.exists(), f"{page.name}: link to {target} is broken")
                if fragment:
                    self.assertIn(fragment, anchors.get(resolved.name, set()),
                                  f"{page.name}: no section #{fragment} in {path}")

    def test_pages_are_valid_restructuredtext(self) -> None:
        if importlib.util.find_spec("docutils") is None:
            self.skipTest("docutils is not installed")
        import docutils.core
        from docutils import nodes

        for page in sorted(DOC.glob("*.rst")):
            doctree = docutils.core.publish_doctree(
                page.read_text(encoding="utf-8"), source_path=str(page),
                settings_overrides={"report_level": 5, "halt_level": 5,
                                    "warning_stream": io.StringIO(),
                                    "syntax_highlight": "none"})
            problems = [f"line {m.get('line')}: {m.astext()}"
                        for m in doctree.findall(nodes.system_message) if m["level"] >= 2]
            self.assertEqual([], problems, f"doc/{page.name} has reStructuredText problems")
