"""The output format contract and atomic placement of what a driver writes.

A format driver turns a finished staging tree into one image.  Drivers are
registered in the entry point group ``sysext_builder.formats`` and loaded by
:func:`sysext_builder.formats.get`.  Placement is not the driver's business:
the caller asks :func:`temp_path_for` for a hidden name in the final output
directory, lets the driver :meth:`OutputFormat.pack` into it, and then
:func:`commit` renames it over the final name, so an existing image is only
ever replaced by a complete new one.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import errno
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from sysext_builder import runner
from sysext_builder.errors import OutputError

LOG = logging.getLogger(__name__)

#: Largest epoch the image formats can store (unsigned 32-bit seconds).
MAX_EPOCH = 2**32 - 1


class OutputFormat(abc.ABC):
    """An output format driver.

    Class attributes (the caller reads them without packing anything):

    ``name``
        The entry point name (``squashfs``, ``erofs``, ``directory``).
    ``suffix``
        Appended to the image name for the output path (``".raw"`` for
        filesystem images, ``""`` for a directory).  systemd derives the
        extension name from the file name minus ``.raw``.
    ``compressions``
        Compression algorithms the driver knows; ``()`` if it does not
        compress.  A compression is given as ``ALG`` or ``ALG:LEVEL`` where
        ``ALG`` is one of these and ``LEVEL`` lies in
        ``compression_levels[ALG]`` (algorithms without an entry take no
        level).  The installed tool may support fewer; see
        :meth:`available_compressions`.
    ``default_compression``
        Used when the caller passes ``None``.

    Subclasses implement :meth:`tools`, :meth:`tool_versions` and
    :meth:`write_image`; callers use :meth:`pack`.
    """

    name: ClassVar[str]
    suffix: ClassVar[str]
    compressions: ClassVar[tuple[str, ...]] = ()
    compression_levels: ClassVar[Mapping[str, tuple[int, int]]] = {}
    default_compression: ClassVar[str | None] = None

    @abc.abstractmethod
    def tools(self) -> list[str]:
        """Executables :meth:`pack` runs (looked up on PATH and in sbin)."""

    @abc.abstractmethod
    def tool_versions(self) -> dict[str, str]:
        """``{tool: version}`` for the manifest; ``{}`` when no tool is used.

        Raises :class:`ToolMissingError` if a tool is missing.
        """

    @abc.abstractmethod
    def write_image(self, tree: Path, dest: Path, *, epoch: int,
                    compression: str | None) -> None:
        """Write the image of ``tree`` to ``dest``.

        Called by :meth:`pack` after the checks, with ``compression``
        already validated (``ALG`` or ``ALG:LEVEL``, or ``None`` if the
        format does not compress).  ``dest`` does not exist yet.  Must be
        byte-reproducible: the same tree contents and ``epoch`` give the same
        bytes, whatever the tree's path, inode numbers, directory order or
        file times newer than ``epoch``.  Owners are recorded as root.
        """

    def require_tools(self) -> None:
        """Raise :class:`ToolMissingError` (naming the Debian package) if a tool is missing."""
        for tool in self.tools():
            runner.require_tool(tool)

    def available_compressions(self) -> tuple[str, ...]:
        """The compressions the installed tools support (default: all known)."""
        return self.compressions

    def resolve_compression(self, compression: str | None) -> str | None:
        """Validate ``compression`` (``None``: the default) and return what to use.

        Raises :class:`OutputError` for an unknown algorithm, a bad level or
        an algorithm the installed tool lacks.
        """
        spec = compression if compression is not None else self.default_compression
        if spec is None:
            return None
        if not self.compressions:
            raise OutputError(f"{self.name} output does not compress (got {spec!r})",
                              hint="drop the compression option for this format")
        alg, level = split_compression(spec)
        if alg not in self.compressions:
            raise OutputError(f"{self.name} does not know compression {alg!r}",
                              hint="choose one of: " + ", ".join(self.compressions))
        if level is not None:
            bounds = self.compression_levels.get(alg)
            if bounds is None:
                raise OutputError(f"{self.name} compression {alg} takes no level (got {spec!r})")
            if not bounds[0] <= level <= bounds[1]:
                raise OutputError(f"{self.name} {alg} level {level} out of range",
                                  hint=f"use {bounds[0]}..{bounds[1]}")
        available = self.available_compressions()
        if alg not in available:
            raise OutputError(f"the installed {self.name} tools lack compression {alg!r}",
                              hint="available here: " + (", ".join(available) or "none"))
        return spec

    def pack(self, tree: Path, dest: Path, *, epoch: int,
             compression: str | None = None) -> None:
        """Pack ``tree`` into a new image at ``dest``.

        ``dest`` must not exist; its directory must.  ``epoch`` is
        SOURCE_DATE_EPOCH: the image's timestamps are derived from it.  Tools
        are checked before any work starts.  On any failure (including an
        interrupt) whatever was written at ``dest`` is removed.
        """
        self.require_tools()
        chosen = self.resolve_compression(compression)
        if not 0 <= epoch <= MAX_EPOCH:
            raise OutputError(f"SOURCE_DATE_EPOCH {epoch} out of range",
                              hint=f"use 0..{MAX_EPOCH}")
        if not tree.is_dir():
            raise OutputError(f"cannot pack {tree}: not a directory")
        if os.path.lexists(dest):
            raise OutputError(f"refusing to pack into {dest}: it already exists")
        if not dest.parent.is_dir():
            raise OutputError(f"cannot pack into {dest}: {dest.parent} is not a directory")
        LOG.debug("packing %s into %s (%s, compression %s, epoch %d)",
                  tree, dest, self.name, chosen, epoch)
        try:
            self.write_image(tree, dest, epoch=epoch, compression=chosen)
        except BaseException:
            remove_path(dest)
            raise
        if not os.path.lexists(dest):
            raise OutputError(f"{self.name} driver wrote nothing at {dest}")


def split_compression(spec: str) -> tuple[str, int | None]:
    """``"zstd"`` -> ``("zstd", None)``; ``"zstd:19"`` -> ``("zstd", 19)``."""
    alg, sep, level = spec.partition(":")
    if not sep:
        return alg, None
    if not re.fullmatch(r"[0-9]{1,3}", level):
        raise OutputError(f"bad compression {spec!r}", hint="write ALG or ALG:LEVEL, e.g. zstd:19")
    return alg, int(level)


def parse_version(text: str, tool: str) -> str:
    """The first version-looking word after ``tool`` in ``text`` (``unknown`` if none)."""
    match = re.search(re.escape(tool) + r"\D{0,40}?(\d+(?:\.\d+)+[^\s,)]*)", text)
    return match.group(1) if match else "unknown"


def temp_path_for(final: Path) -> Path:
    """A hidden, unique name beside ``final``: ``.NAME.tmp-<pid>-<random>``.

    Being in the same directory makes :func:`commit` a rename on one
    filesystem; being hidden keeps it out of ``/var/lib/extensions`` globs.
    """
    return final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _fsync_path(path: Path, directory: bool) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE).

    Returns False where the kernel, libc or filesystem cannot do it.
    """
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                     ctypes.c_uint]
    func.restype = ctypes.c_int
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_with_tree(tmp: Path, final: Path) -> None:
    """Put ``tmp`` at ``final`` when either of them is a directory.

    Preferred: one atomic renameat2(RENAME_EXCHANGE), then the old content
    (now at ``tmp``) is removed.  Fallback where exchange is unsupported:
    rename ``final`` aside, rename ``tmp`` into place, remove the old one.
    In the fallback there is a window of two rename(2) calls during which
    ``final`` does not exist; if the second rename fails the old one is put
    back.  Readers never see a partial tree in either case.
    """
    if not os.path.lexists(final):
        os.rename(tmp, final)
        return
    if _exchange(tmp, final):
        remove_path(tmp)
        return
    aside = final.with_name(f".{final.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(final, aside)
    try:
        os.rename(tmp, final)
    except OSError:
        os.rename(aside, final)
        raise
    remove_path(aside)


def commit(tmp: Path, final: Path) -> None:
    """Atomically put the complete ``tmp`` (from :func:`temp_path_for`) at ``final``.

    Files (and symlinks) are fsynced and moved with rename(2), replacing any
    existing file: readers see the old or the new image, never a mix.
    Directories are swapped as described in :func:`_replace_with_tree`
    (their contents are not fsynced).  The directory entry is fsynced after.
    Raises :class:`OutputError`; ``tmp`` is left for the caller to remove.
    """
    if tmp.parent.resolve() != final.parent.resolve():
        raise OutputError(f"cannot commit {tmp} to {final}: not in the same directory")
    try:
        tmp_is_dir = tmp.is_dir() and not tmp.is_symlink()
        final_is_dir = final.is_dir() and not final.is_symlink()
        if tmp_is_dir or final_is_dir:
            _replace_with_tree(tmp, final)
        else:
            if not tmp.is_symlink():
                _fsync_path(tmp, directory=False)
            os.replace(tmp, final)
        _fsync_path(final.parent, directory=True)
    except OSError as exc:
        raise OutputError(f"cannot move {tmp.name} to {final}: {exc.strerror or exc}",
                          hint="is the output directory writable and on one filesystem?") \
            from exc
    LOG.debug("placed %s", final)


@contextlib.contextmanager
def placing(final: Path) -> Iterator[Path]:
    """Yield a temp path beside ``final``; commit it on success, remove it on failure."""
    tmp = temp_path_for(final)
    try:
        yield tmp
        commit(tmp, final)
    finally:
        remove_path(tmp)
