"""File helpers every layer uses: content hashes, removal of what the builder made,
and writes kept inside a tree (see "Containment" in doc/design.rst)."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import stat
from pathlib import Path

LOG = logging.getLogger(__name__)

#: errno values of a full or read-only filesystem
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's content (read in blocks, not whole)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _rmtree_onerror(func: object, path: str, exc: BaseException) -> None:
    # A hook may have left read-only directories behind; make them writable.
    parent = os.path.dirname(path)
    try:
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        LOG.warning("could not remove %s: %s", path, exc)


def remove_tree(path: Path) -> None:
    """Remove a tree the builder made, also where hooks left it read-only."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=lambda f, p, e: _rmtree_onerror(f, p, e[1]))


# Containment: what the builder writes into a tree (staging root, overlay upper
# layer, image) goes through directory file descriptors opened one component at
# a time with O_NOFOLLOW, so no symlink in the tree can send a write to the host.
# A symlink met on the way, or a non-directory where a directory is expected, is
# refused (not resolved): inside an image a link means something else once
# merged on the target, and the builder never needs to write through one.

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_EXCL: never an existing file, nor a symlink (not even a dangling one)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class NotContained(Exception):
    """A write into a tree would leave it or pass through a symlink.

    ``path`` is relative to the tree's root; callers turn this into their
    one-line error (it is not a user error by itself: it names no element).
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p and p != "."]
    if ".." in parts:
        raise NotContained(rel, "contains '..'")
    return parts


def _printable(text: str, limit: int = 200) -> str:
    """``text`` for a one-line message: escaped when it is not printable, cut when long."""
    shown = text if text.isprintable() else repr(text)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _describe(dir_fd: int, name: str) -> str:
    """Why ``name`` cannot be entered: a symlink (and where it points) or not a directory."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return "cannot be opened"
    if stat.S_ISLNK(st.st_mode):
        try:
            return f"is a symlink (to {_printable(os.readlink(name, dir_fd=dir_fd))})"
        except OSError:
            return "is a symlink"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if stat.S_ISREG(st.st_mode):
        return "is not a directory"
    return "is a special file"


def _enter(dir_fd: int, name: str, done: str, *, create: bool, mode: int) -> int:
    """Open the directory ``name`` below ``dir_fd`` (made with ``mode`` when missing)."""
    for _ in range(2):  # a concurrent mkdir between the two calls: open again
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise NotContained(done, _describe(dir_fd, name)) from None
            raise
        try:
            os.mkdir(name, mode, dir_fd=dir_fd)
        except FileExistsError:
            continue
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        os.fchmod(fd, mode)  # not the umask's
        return fd
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def open_dir_in(root: Path | int, rel: str, *, create: bool = False, mode: int = 0o755) -> int:
    """A new fd of the directory ``root/rel``, every component a real directory.

    ``root`` is a path (trusted: symlinks in it are followed) or a directory
    fd (not closed).  Missing directories are made with ``mode`` when
    ``create``, else :class:`FileNotFoundError`.  A symlink, a file or ``..``
    on the way is :class:`NotContained` naming the root-relative path.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if not isinstance(
        root, int) else os.dup(root)
    done: list[str] = []
    try:
        for part in _parts(rel):
            done.append(part)
            new = _enter(fd, part, "/".join(done), create=create, mode=mode)
            os.close(fd)
            fd = new
    except BaseException:
        os.close(fd)
        raise
    return fd


def makedirs_in(root: Path | int, rel: str, mode: int = 0o755) -> None:
    """``mkdir -p root/rel`` without passing any symlink (see :func:`open_dir_in`)."""
    os.close(open_dir_in(root, rel, create=True, mode=mode))


def open_file_in(dir_fd: int, name: str, mode: int = 0o644, *, where: str = "") -> int:
    """A new regular file ``name`` in ``dir_fd``, open for writing, never through a link.

    A regular file already there is replaced (unlinked first, so a hard link
    to a file outside the tree is not written through); a symlink, directory
    or special file there is :class:`NotContained` naming ``where`` (the
    root-relative path).
    """
    try:  # what is there is looked at, not opened (a fifo would hang, a device act)
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            raise NotContained(where or name, _describe(dir_fd, name))
        os.unlink(name, dir_fd=dir_fd)
    try:
        fd = os.open(name, _FILE_FLAGS, mode, dir_fd=dir_fd)
    except FileExistsError:
        raise NotContained(where or name, "appeared while it was written") from None
    try:
        os.fchmod(fd, mode)  # not the umask's
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_file_in(root: Path | int, rel: str, data: bytes, mode: int = 0o644, *,
                  dir_mode: int = 0o755) -> None:
    """Write ``data`` to ``root/rel`` (parents made with ``dir_mode``), all inside ``root``."""
    parent, _, name = rel.rstrip("/").rpartition("/")
    if not name or name in (".", ".."):
        raise NotContained(rel, "is not a file name")
    dir_fd = open_dir_in(root, parent, create=True, mode=dir_mode)
    try:
        fd = open_file_in(dir_fd, name, mode, where=rel)
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# URL secrets: the one redaction rule (sysext_builder.install.cache.redact and
# everything that shows a URL use it); here so every layer can reach it.

#: ``scheme://userinfo@`` in any text; the netloc ends at ``/ ? #``, quotes or space, and
#: its userinfo at the netloc's last ``@`` (an unencoded ``@`` in a password is common)
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#'\"]*)@")
#: schemes where a user name without a password is usually a token (https://TOKEN@host/)
_TOKEN_SCHEMES = ("http://", "https://", "ftp://", "git+http://", "git+https://")
#: ``?name=value`` / ``&name=value`` / ``;name=value`` where the name says it is a secret
#: (``token``, ``access_token``, ``sig``, ``password``, ``key``, ``X-Amz-Signature`` ...)
_SECRET_QUERY = re.compile(
    r"([?&;](?:[A-Za-z0-9_.-]*[_.-])?"
    r"(?:token|access_token|auth|sig|signature|password|passwd|pass|pwd|secret|key|apikey"
    r"|api_key|credential|credentials)=)([^&#;\s'\"]+)",
    re.IGNORECASE)


def _redact_match(match: re.Match[str]) -> str:
    scheme, userinfo = match[1], match[2]
    user, colon, _ = userinfo.partition(":")
    if colon:
        return f"{scheme}{user}:***@"
    return f"{scheme}***@" if scheme.lower() in _TOKEN_SCHEMES else match[0]


def redact_urls(text: str) -> str:
    """``text`` with userinfo secrets and secret query values of URLs as ``***``."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(_redact_match, text))


def url_secrets(location: str) -> list[str]:
    """The secret values in ``location`` as written (userinfo, secret query values)."""
    found = [m[2] for m in _SECRET_QUERY.finditer(location)]
    userinfo = _USERINFO.search(location)
    if userinfo is not None and _redact_match(userinfo) != userinfo[0]:
        user, colon, password = userinfo[2].partition(":")
        found.append(password if colon else user)
    return found
