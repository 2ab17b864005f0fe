"""EROFS images with mkfs.erofs (Debian package erofs-utils).

Command line::

    mkfs.erofs --quiet -T EPOCH -U UUID --all-root [-zALG[,LEVEL]] DEST TREE

``-T`` sets every inode time and the superblock build time to EPOCH; ``-U``
replaces the random filesystem UUID by one derived from the epoch and the
tree's file names (uuid5), so two builds of the same tree are byte-identical
(checked with erofs-utils 1.5, which sorts directory entries itself).
erofs-utils 1.5 (Debian 12) offers only lz4 and lz4hc and silently ignores
unknown ``-E`` options, so none are passed.  ``none`` packs uncompressed.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from pathlib import Path
from typing import ClassVar

from sysext_builder import runner
from sysext_builder.formats.base import OutputFormat, parse_version, split_compression

LOG = logging.getLogger(__name__)

TOOL = "mkfs.erofs"

#: namespace for the deterministic filesystem UUIDs
# (without -U mkfs.erofs writes a random one, so no two builds would be identical)
UUID_NAMESPACE = uuid.UUID("5d9f3f4e-6a43-5b7e-9a51-7379736578b1")


@functools.cache
def _banner(tool_path: str) -> str:
    """``--version`` output (newer releases) or the banner printed without arguments (1.5)."""
    done = runner.run([tool_path, "--version"], check=False)
    text = done.stdout + done.stderr
    if done.returncode != 0 or "erofs" not in text:
        done = runner.run([tool_path], check=False)
        text = done.stdout + done.stderr
    return text


@functools.cache
def _help_text(tool_path: str) -> str:
    done = runner.run([tool_path, "--help"], check=False)
    return done.stdout + done.stderr


def tree_uuid(tree: Path, epoch: int) -> uuid.UUID:
    """A UUID that depends only on ``epoch`` and the sorted relative paths in ``tree``.

    Any fixed UUID would make builds reproducible; deriving it from the tree keeps
    different images apart for tools that identify filesystems by UUID (blkid).
    """
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        rel = os.path.relpath(dirpath, tree)
        names.extend(os.path.normpath(os.path.join(rel, n)) for n in sorted(filenames + dirnames))
    names.sort()
    return uuid.uuid5(UUID_NAMESPACE, f"epoch={epoch}\n" + "\n".join(names))


class ErofsFormat(OutputFormat):
    """``NAME.raw`` as an EROFS filesystem."""

    name = "erofs"
    suffix = ".raw"
    compressions = ("lz4hc", "lz4", "lzma", "deflate", "zstd", "none")
    compression_levels: ClassVar[dict[str, tuple[int, int]]] = {
        "lz4hc": (1, 12), "lzma": (0, 9), "deflate": (0, 9), "zstd": (1, 22)}
    default_compression = "lz4hc"

    def tools(self) -> list[str]:
        return [TOOL]

    def tool_versions(self) -> dict[str, str]:
        return {TOOL: parse_version(_banner(runner.require_tool(TOOL)), TOOL)}

    def available_compressions(self) -> tuple[str, ...]:
        text = _help_text(runner.require_tool(TOOL))
        start = text.find("Available compressors")
        if start < 0:
            # 1.5's help lists no compressors; it has lz4 and lz4hc only
            return ("lz4hc", "lz4", "none")
        words = text[start:].replace(",", " ").replace(":", " ").split()
        return tuple(c for c in self.compressions if c in words or c == "none")

    def command(self, tree: Path, dest: Path, *, epoch: int,
                compression: str | None) -> list[str]:
        """The mkfs.erofs argv."""
        # No -E options: 1.5 silently ignores ones it does not know, so a reproducibility
        # or layout option could be dropped without a word.  --all-root: 0:0 inodes.
        argv = [runner.require_tool(TOOL), "--quiet", f"-T{epoch}",
                f"-U{tree_uuid(tree, epoch)}", "--all-root"]
        if compression is not None and compression != "none":
            alg, level = split_compression(compression)
            argv.append(f"-z{alg}" + (f",{level}" if level is not None else ""))
        return [*argv, str(dest), str(tree)]

    def write_image(self, tree: Path, dest: Path, *, epoch: int,
                    compression: str | None) -> None:
        done = runner.run(self.command(tree, dest, epoch=epoch, compression=compression))
        for line in (done.stdout + done.stderr).splitlines():
            LOG.debug("mkfs.erofs: %s", line)
