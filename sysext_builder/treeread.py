"""Bounded reads of regular files, and path resolution inside a tree.

Everything the builder itself reads from a tree (a base, a staging root, an
image's contents) is resolved *inside* that tree, the way ``openat2(2)`` with
``RESOLVE_IN_ROOT`` does: a component-wise walk with ``O_NOFOLLOW`` relative to
directory descriptors, where a symlink's target is resolved again inside the
tree (an absolute target starts at the tree's top, ``..`` stops there) and more
than :data:`MAX_LINKS` links is an error.  A read then takes only a regular
file (never a fifo, a device or a directory: opening uses ``O_NONBLOCK`` so
even a racing fifo cannot block) and at most ``limit`` bytes: a larger file is
refused, not truncated.

Errors are :class:`ReadRefused`, a plain exception carrying a one-line
message; callers translate it into their own :mod:`sysext_builder.errors`
class, which knows what the file was for.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from pathlib import Path

#: symlinks followed in one resolution before giving up (Linux's own limit)
MAX_LINKS = 40

_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_DIR_FLAGS = _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CHUNK = 65536


class ReadRefused(Exception):
    """A file was not read: missing, not a regular file, too large, a link loop...

    ``missing`` is true when a component does not exist (ENOENT), which is
    where a caller may fall back to another file.
    """

    def __init__(self, where: str, reason: str, *, missing: bool = False) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.missing = missing


def kind(mode: int) -> str:
    """A file type's name for messages ("fifo", "character device", ...)."""
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return name
    return "regular file" if stat.S_ISREG(mode) else "special file"


def _refuse_os(where: str, exc: OSError) -> ReadRefused:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        reason = "a symbolic link where none may be (or a link loop)"
    return ReadRefused(where, f"cannot read: {reason}", missing=exc.errno == errno.ENOENT)


def _read_fd(fd: int, where: str, limit: int) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ReadRefused(where, f"not a regular file ({kind(st.st_mode)})")
    if st.st_size > limit:
        raise ReadRefused(where, f"larger than {limit} bytes ({st.st_size}); refused")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:  # grew while being read
            raise ReadRefused(where, f"larger than {limit} bytes; refused")


def _open_regular(path: Path | str, where: str) -> int:
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ReadRefused(where, f"not a regular file ({kind(st.st_mode)})")
        return os.open(path, _READ_FLAGS & ~os.O_NOFOLLOW)
    except OSError as exc:
        raise _refuse_os(where, exc) from exc


def read_regular(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (a path the user gave: links followed).

    Raises :class:`ReadRefused` for a missing or unreadable file, anything
    but a regular file (checked before opening, so a fifo never blocks and a
    device is never opened) and a file over ``limit`` bytes.
    """
    where = str(path)
    fd = _open_regular(path, where)
    try:
        return _read_fd(fd, where, limit)
    except OSError as exc:
        raise _refuse_os(where, exc) from exc
    finally:
        os.close(fd)


def read_prefix(path: Path | str, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the regular file ``path``, and whether it has more.

    For files that may be large but are only looked at (a hook's head); the
    same refusals as :func:`read_regular` otherwise.
    """
    where = str(path)
    fd = _open_regular(path, where)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReadRefused(where, "not a regular file (replaced while being opened)")
        data = os.read(fd, limit + 1) if limit else b""
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
        return data[:limit], len(data) > limit
    except OSError as exc:
        raise _refuse_os(where, exc) from exc
    finally:
        os.close(fd)


def _parts(rel: str) -> list[str]:
    return [p for p in rel.split("/") if p not in ("", ".")]


class _Walk:
    """One resolution of a path inside the tree open as ``rootfd``."""

    def __init__(self, rootfd: int, where: str) -> None:
        self.fds = [rootfd]
        self.names: list[str] = []
        self.where = where
        self.links = 0

    def close(self) -> None:
        for fd in self.fds[1:]:
            os.close(fd)
        del self.fds[1:]
        self.names.clear()

    def up(self) -> None:
        if len(self.fds) > 1:  # ".." at the top of the tree stays there
            os.close(self.fds.pop())
            self.names.pop()

    def resolve(self, rel: str) -> tuple[str, os.stat_result]:
        """Walk to the last component; returns its name and lstat (parent is ``fds[-1]``)."""
        todo = deque(_parts(rel))
        while todo:
            name = todo.popleft()
            if name == "..":
                self.up()
                continue
            st = os.stat(name, dir_fd=self.fds[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                self.links += 1
                if self.links > MAX_LINKS:
                    raise ReadRefused(self.where, f"more than {MAX_LINKS} symbolic links "
                                      "(a link loop?)")
                target = os.readlink(name, dir_fd=self.fds[-1])
                if target.startswith("/"):
                    self.close()  # an absolute link starts again at the tree's top
                todo.extendleft(reversed(_parts(target)))
                continue
            if not todo:
                return name, st
            if not stat.S_ISDIR(st.st_mode):
                raise ReadRefused(self.where, f"cannot read: {'/'.join([*self.names, name])} "
                                  "is not a directory")
            self.fds.append(os.open(name, _DIR_FLAGS, dir_fd=self.fds[-1]))
            self.names.append(name)
        raise ReadRefused(self.where, "not a regular file (directory)")


def read_in_root(root: Path | str, rel: str, limit: int) -> bytes:
    """The bytes of ``rel`` resolved inside the tree ``root`` (see the module doc).

    ``root`` itself is the caller's path and may be a link; nothing below it
    can lead outside it.  Raises :class:`ReadRefused` (``missing`` set when a
    component does not exist).
    """
    where = str(Path(root) / rel.lstrip("/"))
    try:
        rootfd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _refuse_os(str(root), exc) from exc
    walk = _Walk(rootfd, where)
    try:
        name, st = walk.resolve(rel)
        resolved = "/".join([*walk.names, name])
        if resolved != "/".join(_parts(rel)):
            walk.where = where = f"{where} (resolved inside {root} to /{resolved})"
        if not stat.S_ISREG(st.st_mode):
            raise ReadRefused(where, f"not a regular file ({kind(st.st_mode)})")
        fd = os.open(name, _READ_FLAGS, dir_fd=walk.fds[-1])
        try:
            return _read_fd(fd, where, limit)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _refuse_os(walk.where, exc) from exc
    finally:
        walk.close()
        os.close(rootfd)
