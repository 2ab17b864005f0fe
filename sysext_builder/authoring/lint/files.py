"""Lint of an element's files, ``static/`` and test cases (see :mod:`.check`).

``element-deps``/``element-provides`` are read with the build's reader, then
checked for order and duplicates.  The declaration files are checked with the parsers the build uses
(:mod:`.packages`, :mod:`.sources`, :mod:`.sysext.units`), so lint and build
never disagree.  Their errors carry ``FILE:LINE`` where the format is
line-based; for the YAML/JSON of ``package-installs`` and ``pkg-map`` the line
is found afterwards in a line-aware load (``yaml.compose`` node marks; JSON
parses as YAML) from the package name, section and key the error names.
"""

from __future__ import annotations

import ast
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from sysext_builder import treeread
from sysext_builder.authoring.lint.findings import Finding, from_error
from sysext_builder.authoring.testing.cases import EXPECT_FILE, parse_expect
from sysext_builder.errors import ElementFormatError
from sysext_builder.install import packages, sources
from sysext_builder.model.element import MAX_FILE_BYTES, read_name_list, read_text
from sysext_builder.sysext import units

_QUOTED = r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
_PACKAGE = re.compile(r"package " + _QUOTED)
_INVALID_NAME = re.compile(r"invalid package name " + _QUOTED)
_OPTION_KEYS = ("not-arch", "build-only", "installtype", "uninstall", "phase", "arch", "when")
_OPTION = re.compile(r"(?<![\w-])(" + "|".join(_OPTION_KEYS) + r")(?![\w-])")
_UNKNOWN_KEY = re.compile(r"unknown key " + _QUOTED)
_SECTION_PATH = re.compile(r"(?P<where>[^\s:']+): (?P<rest>.*)", re.S)
_MAPPED_KEY = re.compile(_QUOTED + r" must map to")
_UNKNOWN_SECTION = re.compile(r"unknown section " + _QUOTED)


def compose(path: Path) -> yaml.Node | None:
    """The YAML node tree of ``path`` (JSON included), or None when it does not load."""
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _child(node: yaml.Node, key: str) -> tuple[yaml.Node, int] | None:
    """The value of ``key`` in a mapping (or in the first mapping of a sequence having it)."""
    mappings = [node] if isinstance(node, yaml.MappingNode) else \
        [n for n in node.value if isinstance(n, yaml.MappingNode)] \
        if isinstance(node, yaml.SequenceNode) else []
    for mapping in mappings:
        for knode, vnode in mapping.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == key:
                return vnode, knode.start_mark.line + 1
    return None


def key_line(root: yaml.Node | None, keys: Sequence[str]) -> int | None:
    """1-based line of the deepest of ``keys`` (a path of mapping keys) found."""
    line = None
    node = root
    for key in keys:
        if node is None:
            break
        hit = _child(node, key)
        if hit is None:
            break
        node, line = hit
    return line


def _dotted(root: yaml.Node | None, dotted: str) -> list[str]:
    """Split ``family.debian``-style paths into keys; keys may hold dots (``22.04``)."""
    keys: list[str] = []
    node = root
    while dotted and isinstance(node, yaml.MappingNode):
        names = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        fits = [n for n in names if dotted == n or dotted.startswith(n + ".")]
        if not fits:
            break
        key = max(fits, key=len)
        keys.append(key)
        hit = _child(node, key)
        node = hit[0] if hit else None
        dotted = dotted[len(key) + 1:]
    return keys


def _unquote(text: str) -> str | None:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def package_installs_line(root: yaml.Node | None, message: str) -> int | None:
    """The line a package-installs error message is about."""
    match = _PACKAGE.search(message) or _INVALID_NAME.search(message)
    if match is None:
        return None
    name = _unquote(match.group(1))
    if name is None:
        return None
    rest = message[match.end():]
    unknown = _UNKNOWN_KEY.search(rest)
    option = _unquote(unknown.group(1)) if unknown else None
    if option is None:
        found = _OPTION.search(rest)
        option = found.group(1) if found else None
    return key_line(root, [name, option] if option else [name])


def pkg_map_line(root: yaml.Node | None, message: str) -> int | None:
    """The line a pkg-map error message is about."""
    unknown = _UNKNOWN_SECTION.search(message)
    if unknown:
        section = _unquote(unknown.group(1))
        return key_line(root, [section]) if section else None
    match = _SECTION_PATH.match(message)
    if match is None:
        return None
    keys = _dotted(root, match["where"])
    mapped = _MAPPED_KEY.search(match["rest"])
    if mapped:
        key = _unquote(mapped.group(1))
        if key is not None:
            keys.append(key)
    return key_line(root, keys)


def _structured(path: Path, code: str, parse: Callable[[], object],
                locate: Callable[[yaml.Node | None, str], int | None]) -> list[Finding]:
    try:
        parse()
    except ElementFormatError as exc:
        finding = from_error(path, exc, code)
        if finding.line is None:
            line = locate(compose(path), finding.message)
            finding = Finding(path, line or 1, code, finding.message)
        return [finding]
    return []


def unreadable(path: Path) -> Finding | None:
    """SB024 when ``path`` is no regular file of at most MAX_FILE_BYTES (lint never
    opens a fifo or a device, nor loads a huge file)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return Finding(path, None, "SB024", f"cannot be read ({exc.strerror}); not read")
    if not stat.S_ISREG(st.st_mode):
        return Finding(path, None, "SB024",
                       f"not a regular file ({treeread.kind(st.st_mode)}); not read")
    if st.st_size > MAX_FILE_BYTES:
        return Finding(path, None, "SB024", f"larger than {MAX_FILE_BYTES} bytes; not read")
    return None


def lint_declarations(element: Path, entries: Sequence[str]) -> list[Finding]:
    """package-installs, pkg-map, source-repository-* and units of ``element``."""
    found: list[Finding] = []
    declared = [n for n in ("package-installs.yaml", "package-installs.json", "pkg-map",
                            "units") if n in entries]
    declared += [n for n in entries if n.startswith("source-repository-")]
    refused = {n: f for n, f in ((n, unreadable(element / n)) for n in declared) if f}
    found += refused.values()
    entries = [n for n in entries if n not in refused]
    for name in ("package-installs.yaml", "package-installs.json"):
        if name in entries:
            path = element / name

            def parse(path: Path = path) -> object:
                return packages.parse_package_installs(path, element.name)

            found += _structured(path, "SB011", parse, package_installs_line)
    if "pkg-map" in entries:
        path = element / "pkg-map"
        found += _structured(path, "SB012", lambda: packages.parse_pkg_map(path), pkg_map_line)
    for name in entries:
        if name.startswith("source-repository-"):
            try:
                sources.parse(element / name, element.name)
            except ElementFormatError as exc:
                found.append(from_error(element / name, exc, "SB013"))
    if "units" in entries:
        try:
            units.parse_units(element / "units")
        except ElementFormatError as exc:
            found.append(from_error(element / "units", exc, "SB014"))
    return found


# -- element-deps / element-provides ----------------------------------------------------

def _listed(path: Path) -> list[tuple[int, str]]:
    text = read_text(path)
    return [(n, line.split("#", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1)
            if line.split("#", 1)[0].strip()]


def lint_name_list(element: Path, file_name: str) -> list[Finding]:
    path = element / file_name
    try:
        read_name_list(path)
    except ElementFormatError as exc:
        return [from_error(path, exc, "SB009")]
    found: list[Finding] = []
    entries = _listed(path)
    seen: set[str] = set()
    unique: list[tuple[int, str]] = []
    for lineno, name in entries:
        if name == element.name:
            verb = "depends on itself" if file_name == "element-deps" else \
                "provides its own name"
            found.append(Finding(path, lineno, "SB009", f"element {name!r} {verb}"))
        if name in seen:
            found.append(Finding(path, lineno, "SB010", f"{name!r} is listed twice"))
            continue
        seen.add(name)
        unique.append((lineno, name))
    if file_name == "element-deps":
        for (_, before), (lineno, name) in zip(unique, unique[1:], strict=False):
            if name < before:
                found.append(Finding(path, lineno, "SB008", f"element-deps is not sorted: "
                                     f"{name!r} comes after {before!r}"))
                break
    return found


# -- static/ ------------------------------------------------------------------------------

def lint_static(static: Path) -> list[Finding]:
    if static.is_symlink() or not static.is_dir():
        return [Finding(static, None, "SB016", "static is not a directory")]
    found: list[Finding] = []
    for entry in sorted(os.listdir(static)):
        path = static / entry
        real_dir = path.is_dir() and not path.is_symlink()
        if entry in ("usr", "opt"):
            if not real_dir:
                found.append(Finding(path, None, "SB016", f"static/{entry} must be a real "
                                     "directory (systemd-sysext merges it)"))
        elif entry == "etc" and real_dir:
            found.append(Finding(path, None, "SB015", "static/etc/ is lowered: its files move "
                                 "to /usr/share/factory/etc and systemd-tmpfiles copies them "
                                 "to /etc when missing; ship defaults under /usr if you can"))
        elif entry == "var" and real_dir:
            content = _non_directories(path)
            if content:
                found.append(Finding(path, None, "SB016", "static/var/ may hold only "
                                     "directories (state cannot be lowered): "
                                     + ", ".join(content[:5])))
            else:
                found.append(Finding(path, None, "SB015", "static/var/ directories are "
                                     "lowered to tmpfiles.d 'd' lines"))
        else:
            found.append(Finding(path, None, "SB016", f"static/{entry}: only usr/ and opt/ "
                                 "are merged (etc/ and var/ directories are lowered)"))
    if os.path.lexists(static / "usr/lib/os-release"):
        found.append(Finding(static / "usr/lib/os-release", None, "SB016",
                             "systemd-sysext refuses extensions shipping usr/lib/os-release"))
    return found


def _non_directories(top: Path) -> list[str]:
    result = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top.parent)
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        result += [os.path.join(rel, n) for n in sorted(filenames + links)]
    return sorted(result)


# -- test cases ---------------------------------------------------------------------------

def case_dirs(test_elements: Path, found: list[Finding]) -> list[Path]:
    """The case directories of ``test-elements/``; other entries become findings."""
    cases = []
    for entry in sorted(os.listdir(test_elements)):
        path = test_elements / entry
        if path.is_dir() and not entry.startswith("."):
            cases.append(path)
        else:
            found.append(Finding(path, None, "SB022", "not a test case directory; ignored "
                                 "(each case is an element directory in test-elements/)"))
    return cases


def lint_case(case: Path, under_test: str) -> list[Finding]:
    """Checks only a test case needs: its name, its dependency, its ``expect`` file."""
    found: list[Finding] = []
    if case.name == under_test:
        found.append(Finding(case, None, "SB021", f"test case named like the element under "
                             f"test ({under_test!r}) would shadow it"))
    deps_file = case / "element-deps"
    try:
        deps = read_name_list(deps_file) if deps_file.is_file() else ()
    except ElementFormatError:
        deps = ()  # reported as SB009 by the element checks
    if under_test not in deps:
        found.append(Finding(deps_file, None, "SB022", f"test case {case.name!r} does not list "
                             f"{under_test!r} in element-deps, so it does not test it"))
    expect = case / EXPECT_FILE
    if expect.is_file():
        try:
            parse_expect(expect)
        except ElementFormatError as exc:
            found.append(from_error(expect, exc, "SB021"))
    return found
