"""Element tests in diskimage-builder's style: ``test-elements/<case>/``.

The case format (for element authors)
-------------------------------------

An element may carry ``test-elements/``; each directory in it is one test
*case*, itself an ordinary element (README.rst, element-deps, hooks, ...)
that lists the element under test in its ``element-deps``::

    hello/
      install.d/50-hello
      test-elements/
        basic/                    the case "hello/basic"
          README.rst
          element-deps            hello
          post-install.d/50-check-hello   optional: a hook that checks the tree
          expect                  optional: paths the image must (not) hold

``sysext-test-elements`` builds each case alone (its ``test-elements/`` is put
first on the element search path) into a temporary directory, in the
``directory`` format (and ``squashfs`` when it will merge), then:

1. reads each image's extension-release as ``sysext-check`` does (the file
   must match the image name under systemd's name rule) and checks it is
   compatible with the target it was built for (no ``usr/lib/os-release``);
2. checks the ``expect`` file, if any, against the image tree;
3. as root (``--merge``; ``--no-merge`` skips it), merges the image with the
   real ``systemd-sysext`` into a scratch root whose os-release is that
   target, in a private mount namespace, and checks the expected files
   appeared.

A case passes when the build succeeds and every check holds; a hook that
exits non-zero fails the build and so the case.

The target: ``--os-release FILE``, else the ``--base``'s os-release, else the
defaults the elements export (``SYSEXT_DEFAULT_OS_ID``, ...; a case may set
them in its own ``environment.d``), else ``ID=_any``.  The image is named
``SYSEXT_DEFAULT_NAME`` if the elements set one, else after the case.

``expect`` -- one assertion a line; blank lines and lines starting with ``#``
are ignored::

    usr/bin/hello                      exists (file, directory or symlink)
    !usr/lib/os-release                does not exist
    usr/bin/hello executable           a regular file with an executable bit
    usr/share/hello/greeting contains hello world
                                       a regular file containing the text (the
                                       rest of the line, verbatim)

    boot active waagent.service        after booting the image (--boot): a boot
                                       assertion (authoring/testing/boot.py)

PATH is relative to the image root (a leading ``/`` is dropped), starts with
``usr/`` or ``opt/`` (an image holds nothing else; ``/etc`` content is under
``usr/share/factory/etc`` after lowering), has no ``.``/``..`` components and
no blanks, and may use glob patterns (``*``, ``?``, ``[...]``): then at least
one path must match (with ``!``: none), and each match must pass the check.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder import treeread
from sysext_builder.authoring.testing import boot
from sysext_builder.errors import ElementFormatError
from sysext_builder.model.element import read_text
from sysext_builder.staging.base import BaseTree

LOG = logging.getLogger(__name__)

TEST_ELEMENTS = "test-elements"
EXPECT_FILE = "expect"
_CHECKS = ("exists", "executable", "contains")
_GLOB = re.compile(r"[*?\[]")
#: the largest file a ``contains`` expectation reads
MAX_CONTAINS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Expectation:
    """One line of an ``expect`` file."""

    line: int
    pattern: str
    negate: bool = False
    check: str = "exists"
    text: str = ""


def _expectation(path: Path, lineno: int, line: str) -> Expectation:
    where = f"{path}:{lineno}"
    if line.startswith("boot ") or line == "boot":
        return Expectation(line=lineno, pattern="", check="boot",
                           text=boot.parse_assertion(line[5:], where))
    negate = line.startswith("!")
    words = line[1:].lstrip().split(None, 1) if negate else line.split(None, 1)
    pattern = words[0].strip("/") if words else ""
    rest = words[1] if len(words) == 2 and not words[1].startswith("#") else ""
    check, text = "exists", ""
    if rest == "executable":
        check = "executable"
    elif rest.startswith("contains "):
        check, text = "contains", rest[len("contains "):]
    elif rest:
        raise ElementFormatError(f"{where}: expected 'PATH', '!PATH', 'PATH executable' or "
                                 f"'PATH contains TEXT', got {line!r}")
    if negate and check != "exists":
        raise ElementFormatError(f"{where}: '!PATH' takes no check")
    parts = pattern.split("/")
    if not pattern or any(p in ("", ".", "..") for p in parts):
        raise ElementFormatError(f"{where}: {pattern!r} is not a plain relative path")
    if parts[0] not in ("usr", "opt"):
        raise ElementFormatError(f"{where}: {pattern!r} is outside usr/ and opt/, where no "
                                 "image holds anything",
                                 hint="etc/ content is under usr/share/factory/etc after "
                                      "lowering")
    return Expectation(line=lineno, pattern=pattern, negate=negate, check=check, text=text)


def parse_expect(path: Path) -> list[Expectation]:
    """Parse an ``expect`` file (see the module docstring); errors name FILE:LINE."""
    text = read_text(path)  # bounded, regular files only: a fifo is an error, not a hang
    return [_expectation(path, n, raw.strip()) for n, raw in enumerate(text.splitlines(), 1)
            if raw.strip() and not raw.strip().startswith("#")]


def matches(root: Path, pattern: str) -> list[str]:
    """Paths (relative, sorted) under ``root`` that ``pattern`` names."""
    if _GLOB.search(pattern):
        return sorted(p.relative_to(root).as_posix() for p in root.glob(pattern))
    return [pattern] if os.path.lexists(root / pattern) else []


def _problem(path: Path, rule: Expectation) -> str | None:
    st = path.lstat()
    if rule.check == "exists":
        return None
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if rule.check == "executable" and not st.st_mode & 0o111:
        return f"is not executable (mode {stat.S_IMODE(st.st_mode):04o})"
    if rule.check == "contains":
        try:
            data = treeread.read_regular(path, MAX_CONTAINS_BYTES)
        except treeread.ReadRefused as exc:
            return f"cannot be read ({exc.reason})"
        if rule.text.encode("utf-8") not in data:
            return f"does not contain {rule.text!r}"
    return None


def check_expectations(rules: Sequence[Expectation], root: Path) -> list[str]:
    """Every failed assertion of ``rules`` against the tree ``root``, as ``expect:LINE: ...``."""
    failures = []
    for rule in (r for r in rules if r.check != "boot"):
        where = f"{EXPECT_FILE}:{rule.line}"
        found = matches(root, rule.pattern)
        if rule.negate:
            if found:
                failures.append(f"{where}: {found[0]} is in the image but must not be")
        elif not found:
            failures.append(f"{where}: {rule.pattern} is not in the image")
        else:
            failures += [f"{where}: {rel} {problem}" for rel in found
                         if (problem := _problem(root / rel, rule)) is not None]
    return failures


@dataclass(frozen=True)
class Case:
    """One test case: ``element``'s ``test-elements/name``."""

    element: str
    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.element}/{self.name}"


@dataclass
class CaseResult:
    case: Case
    passed: bool
    reason: str = ""
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kept: Path | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"element": self.case.element, "case": self.case.name,
                "path": str(self.case.path), "status": "pass" if self.passed else "fail",
                "reason": self.reason, "details": self.details, "notes": self.notes,
                "kept": str(self.kept) if self.kept else None,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Options:
    """How to run the cases (the build settings every case shares)."""

    element_paths: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)
    base: Path | str | None = None
    os_release: Path | None = None
    #: merge with systemd-sysext: True, False, or None for "when root"
    merge: bool | None = None
    keep: bool = False
    workdir: Path | None = None
    cache_dir: Path | None = None
    offline: bool = False
    #: boot the cases that have boot assertions (see :mod:`.boot`)
    boot: bool = False
    #: the tree to boot (a base spec or path); default: derived from ``base``
    boot_base: Path | str | None = None
    boot_timeout: float = 900.0
    #: the base, opened once for every case (:func:`.run.open_bases`)
    base_tree: BaseTree | None = None
    boot_tree: BaseTree | None = None


class CaseFailed(Exception):
    """A check of a case failed (internal: becomes a FAIL result)."""

    def __init__(self, reason: str, details: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = list(details)
