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

from sysext_builder import treeread
from sysext_builder.errors import ReleaseError

#: os-release files larger than this are refused (systemd's own files are < 1 KiB)
MAX_BYTES = 64 * 1024
#: characters of a bad line or value quoted in an error
QUOTE_CHARS = 80

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
            raise ReleaseError(f"{source}:{lineno}: not a KEY=value line: {_excerpt(raw)}")
        try:
            # a repeated key: the last assignment wins, as in systemd and a shell
            fields[key] = _unquote(value.lstrip())
        except _UnquotedSpace as exc:
            raise ReleaseError(f"{source}:{lineno}: {key} value has unquoted spaces",
                               hint='quote it: KEY="a b"') from exc
        except ValueError as exc:
            raise ReleaseError(f"{source}:{lineno}: bad quoting in {key}: {exc}") from exc
    return fields


def _excerpt(text: str) -> str:
    """``repr`` of at most :data:`QUOTE_CHARS` characters of ``text`` (a line can be 100 MB)."""
    if len(text) <= QUOTE_CHARS:
        return repr(text)
    return f"{text[:QUOTE_CHARS]!r}... ({len(text) - QUOTE_CHARS} more characters)"


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


def decode(data: bytes, source: str) -> str:
    """os-release bytes as text; invalid UTF-8 is a one-line :class:`ReleaseError`."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReleaseError(f"{source}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                           hint="os-release files are UTF-8") from exc


def read_file(path: Path) -> dict[str, str]:
    """Fields of the os-release file ``path``: a regular file of at most :data:`MAX_BYTES`."""
    try:
        data = treeread.read_regular(path, MAX_BYTES)
    except treeread.ReadRefused as exc:
        raise ReleaseError(str(exc), hint="an os-release file is a small regular file "
                           f"(at most {MAX_BYTES} bytes)") from exc
    return parse(decode(data, str(path)), str(path))


def read_root(root: Path) -> dict[str, str] | None:
    """os-release of a root tree: ``etc/os-release``, else ``usr/lib/os-release``.

    systemd's order (open_os_release()): the ``etc`` file wins whenever it exists,
    even if both are present and differ.  Both are resolved inside ``root``
    (:func:`.treeread.read_in_root`, like systemd's ``chase()`` with a root): a link
    ``etc/os-release -> /usr/lib/os-release`` means ``ROOT/usr/lib/os-release``, never
    the host's.  Only a missing file (or a dangling link: systemd gets ENOENT there
    too) falls back to the next one; a fifo, a device, a directory, a file over
    :data:`MAX_BYTES` or invalid UTF-8 is an error.
    """
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            data = treeread.read_in_root(root, rel, MAX_BYTES)
        except treeread.ReadRefused as exc:
            if exc.missing:
                continue
            raise ReleaseError(str(exc), hint="the tree's os-release must be a regular file "
                               f"of at most {MAX_BYTES} bytes inside the tree") from exc
        source = str(root / rel)
        return parse(decode(data, source), source)
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
        raise ReleaseError(f"invalid os-release key {_excerpt(key)}",
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
