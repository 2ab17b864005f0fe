"""The output format contract.

A format driver turns a finished staging tree into one image.  Drivers are
registered in the entry point group ``sysext_builder.formats`` and loaded by
:func:`sysext_builder.formats.get`.  Placement is not the driver's business:
the caller (:mod:`sysext_builder.output.place`) reserves a hidden name in the
final output directory, lets the driver :meth:`OutputFormat.pack` into it, and
commits every output of the build together (:mod:`sysext_builder.output.atomic`).
"""

from __future__ import annotations

import abc
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from sysext_builder import runner
from sysext_builder.errors import OutputError
from sysext_builder.fileutil import remove_path

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
