"""os-release syntax: parse and render (used for os-release and extension-release).

Format (os-release(5)): ``KEY=value`` lines, ``#`` comment lines, blank lines;
values may be unquoted or quoted with ``"`` or ``'`` using shell escaping
(``\\"``, ``\\\\``, ``\\$``, ``\\```).  Keys are ``[A-Z][A-Z0-9_]*``.

Deliberately stricter than systemd's env-file parser, which also reads unquoted
spaces, ``;`` comments, lower-case keys and backslash continuations: os-release(5)
asks for files a shell can source, and what this module accepts reads the same
in systemd, in a shell and in other os-release readers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from sysext_builder.errors import ReleaseError

_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SAFE_RE = re.compile(r"^[A-Za-z0-9_.,:/+@%=-]*$")


def parse(text: str, source: str = "<string>") -> dict[str, str]:
    """Parse os-release text; errors name ``source`` and the line."""
    fields: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not _KEY_RE.match(key):
            raise ReleaseError(f"{source}:{lineno}: not a KEY=value line: {raw!r}")
        try:
            # a repeated key: the last assignment wins, as in systemd and a shell
            fields[key] = _unquote(value.lstrip())
        except _UnquotedSpace as exc:
            raise ReleaseError(f"{source}:{lineno}: {key} value has unquoted spaces",
                               hint='quote it: KEY="a b"') from exc
        except ValueError as exc:
            raise ReleaseError(f"{source}:{lineno}: bad quoting in {key}: {exc}") from exc
    return fields


class _UnquotedSpace(ValueError):
    pass


def _unquote(value: str) -> str:
    """Undo shell quoting the way systemd's env-file parser does.

    Inside double quotes a backslash escapes only the double quote, backslash,
    dollar and backquote (other backslashes stay); outside quotes it escapes any character;
    single quotes are literal.  Quoted and unquoted parts may be concatenated.
    """
    out: list[str] = []
    quote = ""
    chars = iter(value)
    for char in chars:
        if quote == "'":
            quote, keep = ("", "") if char == "'" else (quote, char)
        elif quote == '"':
            if char == "\\":
                nxt = next(chars, "")
                keep = nxt if nxt in '"\\`$' else "\\" + nxt
            else:
                quote, keep = ("", "") if char == '"' else (quote, char)
        elif char in "'\"":
            quote, keep = char, ""
        elif char == "\\":
            keep = next(chars, "\\")
        elif char.isspace():
            raise _UnquotedSpace("unquoted whitespace")
        else:
            keep = char
        out.append(keep)
    if quote:
        raise ValueError("No closing quotation")
    return "".join(out)


def read_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse(text, str(path))


def read_root(root: Path) -> dict[str, str] | None:
    """os-release of a root tree: ``etc/os-release``, else ``usr/lib/os-release``.

    systemd's order (open_os_release()): the ``etc`` file wins whenever it exists,
    even if both are present and differ.
    """
    for rel in ("etc/os-release", "usr/lib/os-release"):
        candidate = root / rel
        if candidate.is_file() or candidate.is_symlink():
            try:
                return read_file(candidate)
            except ReleaseError:
                if candidate.is_symlink():
                    # e.g. a dangling etc/os-release link: systemd's chase() gets ENOENT
                    # there too and falls back to usr/lib/os-release
                    continue
                raise
    return None


def quote(value: str) -> str:
    """Quote a value for os-release (double quotes only when needed)."""
    # Double quotes escaping only " \\ $ ` are read alike by systemd and by a shell;
    # single quotes would be too, but cannot hold a single quote.
    if _SAFE_RE.match(value):
        return value
    escaped = "".join("\\" + c if c in '"\\$`' else c for c in value)
    return f'"{escaped}"'


def validate_value(key: str, value: str) -> None:
    if not _KEY_RE.match(key):
        raise ReleaseError(f"invalid os-release key {key!r}",
                           hint="keys are upper case letters, digits and '_'")
    # No multi-line values: readers disagree on continuations (see the module doc).
    if "\n" in value or "\r" in value:
        raise ReleaseError(f"{key}: value must be a single line")
    if any(ord(c) < 0x20 for c in value):
        raise ReleaseError(f"{key}: value contains control characters")


def render(fields: Mapping[str, str]) -> str:
    """Render fields in the given order; validates keys and values."""
    lines = []
    for key, value in fields.items():
        validate_value(key, value)
        lines.append(f"{key}={quote(value)}")
    return "\n".join(lines) + "\n"
