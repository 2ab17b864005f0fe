r"""os-release syntax: read as systemd reads it, render what every reader reads alike.

Reading (:func:`parse`) mirrors systemd's env-file parser
(``parse_env_file_internal()``, ``src/basic/env-file.c``), which systemd-sysext
uses for the host's os-release and for an image's extension-release, so that a
verdict here is systemd's:

- ``#`` and ``;`` start a comment, but only where a key could start;
- a key is everything up to ``=`` (lower case and inner blanks included), its
  trailing blanks cut; a line without ``=`` is ignored;
- blanks before a value are skipped; an unquoted value keeps inner blanks, loses
  trailing ones and takes quotes literally; a backslash takes the next character
  literally, and a backslash-newline continues the line;
- ``'...'`` is literal; in ``"..."`` a backslash escapes only ``"``, ``\``, a
  backquote and ``$`` (other backslashes stay) and backslash-newline continues;
  a quoted part may be followed by more parts, blanks between them dropped;
- an unterminated quote runs to the end of the file, without an error;
- a repeated key: the last one wins;
- a comment ending in a backslash swallows the next line up to systemd 253;
  from 254 on that next line is read as a line of its own.

The only reading error systemd knows is invalid UTF-8 (:func:`decode`).
Rendering (:func:`render`) is strict: keys ``[A-Z][A-Z0-9_]*``, single-line
values, quoted so that systemd and a shell read them alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from sysext_builder import treeread
from sysext_builder.errors import ReleaseError

#: os-release files larger than this are refused (systemd's own files are < 1 KiB)
MAX_BYTES = 64 * 1024
#: characters of a bad line or value quoted in an error
QUOTE_CHARS = 80
#: the systemd version whose reading :func:`parse` follows unless told otherwise
DEFAULT_SYSTEMD = 257

_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SAFE_RE = re.compile(r"^[A-Za-z0-9_.,:/+@%=-]*$")
_BLANK = " \t\n\r"
_NEWLINE = "\n\r"
_DQ_ESCAPED = '"\\`$'


def parse(text: str, source: str = "<string>", *,
          systemd_version: int = DEFAULT_SYSTEMD) -> dict[str, str]:
    """Fields of os-release ``text`` as systemd ``systemd_version`` reads them.

    Reading text never fails (see the module doc); ``source`` is accepted for
    symmetry with :func:`decode`, which is where a file can be refused.
    """
    del source
    return _Reader(comment_escape_ends=systemd_version >= 254).run(text)


_State = Callable[[str], "_State"]


class _Reader:
    """systemd's env-file state machine: each state is a method taking one character
    and returning the next state."""

    def __init__(self, *, comment_escape_ends: bool) -> None:
        self.comment_escape_ends = comment_escape_ends
        self.fields: dict[str, str] = {}
        self.name: list[str] = []
        self.text: list[str] = []
        self.name_blank: int | None = None  # where the key's trailing blanks start
        self.text_blank: int | None = None  # where an unquoted value's trailing blanks start

    def run(self, text: str) -> dict[str, str]:
        state: _State = self.pre_key
        for char in text:
            state = state(char)
        if state not in (self.pre_key, self.key, self.comment, self.comment_escape):
            self.push(chomp=state == self.value)
        return self.fields

    def push(self, *, chomp: bool) -> None:
        if self.name_blank is not None:
            del self.name[self.name_blank:]
        if chomp and self.text_blank is not None:
            del self.text[self.text_blank:]
        self.fields["".join(self.name)] = "".join(self.text)
        self.name, self.text = [], []

    def pre_key(self, char: str) -> _State:
        if char in "#;":
            return self.comment
        if char in _BLANK:
            return self.pre_key
        self.name, self.name_blank = [char], None
        return self.key

    def key(self, char: str) -> _State:
        if char in _NEWLINE:
            self.name = []
            return self.pre_key
        if char == "=":
            self.text_blank = None
            return self.pre_value
        if char not in _BLANK:
            self.name_blank = None
        elif self.name_blank is None:
            self.name_blank = len(self.name)
        self.name.append(char)
        return self.key

    def pre_value(self, char: str) -> _State:
        if char in _NEWLINE:
            self.push(chomp=False)
            return self.pre_key
        if char == "'":
            return self.single
        if char == '"':
            return self.double
        if char == "\\":
            return self.value_escape
        if char in _BLANK:
            return self.pre_value
        self.text.append(char)
        return self.value

    def value(self, char: str) -> _State:
        if char in _NEWLINE:
            self.push(chomp=True)
            return self.pre_key
        if char == "\\":
            self.text_blank = None
            return self.value_escape
        if char not in _BLANK:
            self.text_blank = None
        elif self.text_blank is None:
            self.text_blank = len(self.text)
        self.text.append(char)
        return self.value

    def value_escape(self, char: str) -> _State:
        if char not in _NEWLINE:
            self.text.append(char)
        return self.value

    def single(self, char: str) -> _State:
        if char == "'":
            return self.pre_value
        self.text.append(char)
        return self.single

    def double(self, char: str) -> _State:
        if char == '"':
            return self.pre_value
        if char == "\\":
            return self.double_escape
        self.text.append(char)
        return self.double

    def double_escape(self, char: str) -> _State:
        if char in _DQ_ESCAPED:
            self.text.append(char)
        elif char != "\n":
            self.text.extend(("\\", char))
        return self.double

    def comment(self, char: str) -> _State:
        if char == "\\":
            return self.comment_escape
        if char in _NEWLINE:
            return self.pre_key
        return self.comment

    def comment_escape(self, char: str) -> _State:
        if self.comment_escape_ends and char in _NEWLINE:
            return self.pre_key
        return self.comment


def _excerpt(text: str) -> str:
    """``repr`` of at most :data:`QUOTE_CHARS` characters of ``text`` (a line can be 100 MB)."""
    if len(text) <= QUOTE_CHARS:
        return repr(text)
    return f"{text[:QUOTE_CHARS]!r}... ({len(text) - QUOTE_CHARS} more characters)"


def decode(data: bytes, source: str) -> str:
    """os-release bytes as text; invalid UTF-8 is a one-line :class:`ReleaseError`."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReleaseError(f"{source}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                           hint="os-release files are UTF-8") from exc


def read_file(path: Path, *, systemd_version: int = DEFAULT_SYSTEMD) -> dict[str, str]:
    """Fields of the os-release file ``path``: a regular file of at most :data:`MAX_BYTES`."""
    try:
        data = treeread.read_regular(path, MAX_BYTES)
    except treeread.ReadRefused as exc:
        raise ReleaseError(str(exc), hint="an os-release file is a small regular file "
                           f"(at most {MAX_BYTES} bytes)") from exc
    return parse(decode(data, str(path)), str(path), systemd_version=systemd_version)


def read_root(root: Path, *,
              systemd_version: int = DEFAULT_SYSTEMD) -> dict[str, str] | None:
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
        return parse(decode(data, source), source, systemd_version=systemd_version)
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
