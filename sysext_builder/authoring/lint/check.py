"""``sysext-element-lint``: check element directories, report findings with file:line.

In the spirit of diskimage-builder's ``dib-lint``.  Each check yields a
:class:`Finding`; its severity comes from its code (:data:`CODES`), so the
table below is the single source of truth:

=====  =======  ============================================================
SB001  error    ``README.rst`` missing
SB002  error    hook not executable (never run)
SB003  warning  hook name without a numeric prefix (``NN-name``)
SB004  error    hook name with characters outside ``[0-9A-Za-z_-]`` (a dot
                disables a hook: never run)
SB005  error    hook without a shebang (``#!``) on its first line
SB006  error    bash/sh hook without ``set -eu -o pipefail`` (reported at the
                shebang; ``set -euo pipefail`` or three separate ``set`` lines
                count too)
SB007  warning  ``environment.d`` file is executable (it is sourced, not run)
SB008  warning  ``element-deps`` not sorted (at the first out-of-order name)
SB009  error    ``element-deps``/``element-provides`` malformed
SB010  warning  a name listed twice in ``element-deps``/``element-provides``
SB011  error    ``package-installs.yaml``/``.json`` invalid
SB012  error    ``pkg-map`` invalid
SB013  error    ``source-repository-*`` invalid
SB014  error    ``units`` invalid
SB015  warning  ``static/etc`` or ``static/var``: lowered into ``/usr`` and
                tmpfiles.d at build time
SB016  error    ``static/`` holds what no image can (only ``usr/``, ``opt/``,
                and the lowered ``etc/`` and empty ``var/`` directories)
SB017  warning  element name also used by another element on the search path
SB018  error    phase directory entry that is never run (a directory that is
                not an install type ``<prefix>-<type>-install`` in
                ``install.d``, a fifo, ...)
SB019  error    invalid element name (the search path ignores it)
SB020  warning  top-level entry the builder does not read: a DIB-only phase
                (``post-root.d``, ``block-device.d``, ``pre-finalise.d``) or a
                name close to one it reads (``finalize.d``, ``element-dep``)
SB021  error    test case invalid (malformed ``expect``; named like the
                element under test)
SB022  warning  test case not depending on the element under test; a
                non-directory in ``test-elements/``
SB023  error    shell syntax error (``bash -n``) in a bash hook or an
                ``environment.d`` file
SB024  error    a file lint would read is not a regular file (a fifo, a
                device, a dangling link...) or is too large: not read
=====  =======  ============================================================

A finding renders as ``PATH:LINE: SEVERITY: CODE message``, or ``PATH:
SEVERITY: CODE message`` when it is about a whole file or directory.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from sysext_builder.authoring.lint import files as lintfiles
from sysext_builder.authoring.lint import hooks as linthooks
from sysext_builder.authoring.lint.findings import ERROR, WARNING, Finding
from sysext_builder.errors import UsageError
from sysext_builder.model.element import PHASES, SearchDir, valid_name
from sysext_builder.model.phases import UNSUPPORTED_PHASES

#: Top-level entries the builder reads (besides ``source-repository-*``).
KNOWN_ENTRIES: tuple[str, ...] = (*PHASES, "environment.d", "static", "element-deps",
                                  "element-provides", "package-installs.yaml",
                                  "package-installs.json", "pkg-map", "units", "README.rst",
                                  "target-requires", "test-elements")


# -- the element --------------------------------------------------------------------------

def _near_misses(element: Path, entries: Iterable[str]) -> list[Finding]:
    found = []
    for entry in entries:
        if entry in KNOWN_ENTRIES or entry.startswith((".", "source-repository-")):
            continue
        if entry in UNSUPPORTED_PHASES:
            found.append(Finding(element / entry, None, "SB020", f"DIB phase {entry} does not "
                                 "exist in sysext-builder; its hooks never run"))
            continue
        close = difflib.get_close_matches(entry, KNOWN_ENTRIES, n=1, cutoff=0.8)
        if not close and entry + ".d" in KNOWN_ENTRIES:
            close = [entry + ".d"]
        if close:
            found.append(Finding(element / entry, None, "SB020", f"{entry!r} is not read by "
                                 f"the builder; did you mean {close[0]!r}?"))
    return found


def _readme(element: Path, entries: Sequence[str]) -> list[Finding]:
    if (element / "README.rst").is_file():
        return []
    others = [e for e in entries if e.lower().startswith("readme")]
    extra = f" (found {', '.join(others)}; the builder's docs are reStructuredText)" \
        if others else ""
    return [Finding(element / "README.rst", None, "SB001",
                    f"element {element.name!r} has no README.rst{extra}")]


def lint_element(element: Path, *, collisions: Mapping[str, Sequence[SearchDir]] | None = None,
                 under_test: str | None = None) -> list[Finding]:
    """Every finding for the element directory ``element`` (and its test cases).

    ``collisions`` maps element names to every search-path directory holding
    that name, in search order (see :func:`name_map`).  ``under_test`` is set
    when ``element`` is a test case of that element.
    """
    entries = sorted(os.listdir(element))
    found = _readme(element, entries)
    if not valid_name(element.name):
        found.append(Finding(element, None, "SB019", f"{element.name!r} is not a valid element "
                             "name (letters, digits, '_.+-', not starting with punctuation)"))
    for file_name in ("element-deps", "element-provides"):
        if file_name in entries:
            found += lintfiles.lint_name_list(element, file_name)
    for phase in PHASES:
        if (element / phase).is_dir():
            found += linthooks.lint_phase_dir(element / phase, phase)
    if (element / "environment.d").is_dir():
        found += linthooks.lint_environment(element / "environment.d")
    if "static" in entries:
        found += lintfiles.lint_static(element / "static")
    found += lintfiles.lint_declarations(element, entries)
    found += _near_misses(element, entries)
    if under_test is not None:
        found += lintfiles.lint_case(element, under_test)
    else:
        found += _collisions(element, collisions or {})
        if (element / "test-elements").is_dir():
            for case in lintfiles.case_dirs(element / "test-elements", found):
                found += lint_element(case, under_test=element.name)
    return sorted(found, key=Finding.sort_key)


def _collisions(element: Path, names: Mapping[str, Sequence[SearchDir]]) -> list[Finding]:
    holders = names.get(element.name, ())
    here = os.path.realpath(element)
    others = [s for s in holders if os.path.realpath(s.path / element.name) != here]
    if not others:
        return []
    winner = holders[0]
    used = "this one" if os.path.realpath(winner.path / element.name) == here else \
        f"{winner.path / element.name} ({winner.origin})"
    listed = ", ".join(f"{s.path / element.name} ({s.origin})" for s in others)
    return [Finding(element, None, "SB017", f"element name {element.name!r} is also used by "
                    f"{listed}; the search path uses {used}")]


def name_map(search_path: Sequence[SearchDir]) -> dict[str, list[SearchDir]]:
    """Every element directory name on ``search_path`` -> the directories holding it."""
    names: dict[str, list[SearchDir]] = {}
    for sdir in search_path:
        for child in _children(sdir.path):
            names.setdefault(child.name, []).append(sdir)
    return names


def _children(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _markers(directory: Path) -> set[str]:
    try:
        entries = os.listdir(directory)
    except OSError:
        return set()
    return {e for e in entries if e in KNOWN_ENTRIES or e.startswith("source-repository-")}


def looks_like_element(directory: Path) -> bool:
    """Is ``directory`` an element rather than a directory of elements?

    Yes when it holds an element entry other than README.rst (element-deps,
    a phase directory, static/, ...); no when one of its sub-directories
    holds any element entry (README.rst included); else yes.
    """
    if _markers(directory) - {"README.rst"}:
        return True
    return not any(_markers(child) for child in _children(directory))


def targets(dirs: Sequence[Path]) -> list[Path]:
    """Element directories to lint: each DIR is an element or a directory of elements."""
    result: list[Path] = []
    for directory in dirs:
        if not directory.is_dir():
            raise UsageError(f"{directory}: not a directory",
                             hint="give element directories or directories of elements")
        result += [directory] if looks_like_element(directory) else _children(directory)
    return result


def lint(dirs: Sequence[Path], search_path: Sequence[SearchDir]) -> list[Finding]:
    """Lint ``dirs`` (see :func:`targets`), or every element on ``search_path``."""
    elements = targets(dirs) if dirs else [c for s in search_path for c in _children(s.path)]
    names = name_map(search_path)
    found: list[Finding] = []
    for element in elements:
        found += lint_element(element, collisions=names)
    return found


def count(findings: Iterable[Finding]) -> dict[str, int]:
    totals = {ERROR: 0, WARNING: 0}
    for finding in findings:
        totals[finding.severity] += 1
    return totals
