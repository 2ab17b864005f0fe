"""Lint findings and the table of codes: the types every lint module shares.

Kept apart from :mod:`check` (which runs the checks) so that the check
modules import their shared types from a leaf instead of from the module
that imports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sysext_builder.errors import SysextBuilderError

ERROR = "error"
WARNING = "warning"

CODES: dict[str, tuple[str, str]] = {
    "SB001": (ERROR, "README.rst missing"),
    "SB002": (ERROR, "hook not executable"),
    "SB003": (WARNING, "hook name without numeric prefix"),
    "SB004": (ERROR, "hook name with invalid characters"),
    "SB005": (ERROR, "hook without shebang"),
    "SB006": (ERROR, "shell hook without set -eu -o pipefail"),
    "SB007": (WARNING, "environment.d file executable"),
    "SB008": (WARNING, "element-deps not sorted"),
    "SB009": (ERROR, "element-deps/element-provides malformed"),
    "SB010": (WARNING, "duplicate name in element-deps/element-provides"),
    "SB011": (ERROR, "package-installs invalid"),
    "SB012": (ERROR, "pkg-map invalid"),
    "SB013": (ERROR, "source-repository invalid"),
    "SB014": (ERROR, "units invalid"),
    "SB015": (WARNING, "static/etc or static/var will be lowered"),
    "SB016": (ERROR, "static/ holds what no image can"),
    "SB017": (WARNING, "element name collides on the search path"),
    "SB018": (ERROR, "phase directory entry never run"),
    "SB019": (ERROR, "invalid element name"),
    "SB020": (WARNING, "entry never read (DIB-only phase or near-miss)"),
    "SB021": (ERROR, "test case invalid"),
    "SB022": (WARNING, "test case questionable"),
    "SB023": (ERROR, "shell syntax error"),
    "SB024": (ERROR, "file not read: not a regular file, or too large"),
}


@dataclass(frozen=True)
class Finding:
    """One problem: where, which check, what."""

    path: Path
    line: int | None
    code: str
    message: str

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def render(self) -> str:
        """One line; a name that is not UTF-8 (or holds a control character) is shown
        escaped (``bad\\xff``), so the output is always valid text."""
        where = shown_path(self.path)
        where = f"{where}:{self.line}" if self.line is not None else where
        return f"{where}: {self.severity}: {self.code} {shown(self.message)}"

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "line": self.line, "severity": self.severity,
                "code": self.code, "message": self.message}

    def sort_key(self) -> tuple[str, int, str, str]:
        return (str(self.path), self.line or 0, self.code, self.message)


def shown_path(path: Path) -> str:
    """``path`` with undecodable bytes as ``\\xNN`` and control characters escaped."""
    return shown(str(path))


def shown(text: str) -> str:
    """``text`` with undecodable file name bytes as ``\\xNN``, control characters escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else
                   f"\\x{ord(c) - 0xdc00 if 0xdc80 <= ord(c) <= 0xdcff else ord(c):02x}"
                   for c in text)


def from_error(path: Path, exc: SysextBuilderError, code: str,
               line: int | None = None) -> Finding:
    """A finding from a parser's error whose message starts ``PATH[:LINE]: ``."""
    text = exc.message
    prefix = str(path)
    if text.startswith(prefix):
        text = text[len(prefix):]
        match = re.match(r":(\d+): ", text)
        if match:
            line, text = int(match.group(1)), text[match.end():]
        else:
            text = text.lstrip(":").lstrip()
    if exc.hint:
        text += f" ({exc.hint})"
    return Finding(path, line, code, text)
