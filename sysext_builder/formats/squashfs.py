"""squashfs images with mksquashfs (Debian package squashfs-tools).

Command line::

    SOURCE_DATE_EPOCH=EPOCH mksquashfs TREE DEST -noappend -all-root -no-progress \\
        -comp ALG [-Xcompression-level N] [-reproducible] [-exit-on-error]

Reproducibility comes from ``SOURCE_DATE_EPOCH``: mksquashfs (4.4+) uses it
as the filesystem time and clamps every newer file time to it; ``-reproducible``
(the default since 4.4, passed when the tool lists it) keeps the output
independent of the number of threads.  ``-mkfs-time``/``-all-time`` are NOT
passed: squashfs-tools 4.4-4.6 abort when they are combined with
``SOURCE_DATE_EPOCH``.  File times older than the epoch are kept, so the
builder clamps the tree first.  Extended attributes are stored (systemd reads
``user.extension-release.strict`` from them).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import ClassVar

from sysext_builder import runner
from sysext_builder.formats.base import OutputFormat, parse_version, split_compression

LOG = logging.getLogger(__name__)

TOOL = "mksquashfs"


@functools.cache
def _help_text(tool_path: str) -> str:
    done = runner.run([tool_path, "-help"], check=False)
    return done.stdout + done.stderr


class SquashfsFormat(OutputFormat):
    """``NAME.raw`` as a squashfs filesystem."""

    name = "squashfs"
    suffix = ".raw"
    compressions = ("zstd", "xz", "gzip", "lz4", "lzo")
    compression_levels: ClassVar[dict[str, tuple[int, int]]] = {
        "zstd": (1, 22), "gzip": (1, 9), "lzo": (1, 9)}
    default_compression = "zstd"
    #: used instead of the default when the installed mksquashfs lacks zstd
    fallback_compression = "xz"

    def tools(self) -> list[str]:
        return [TOOL]

    def _help(self) -> str:
        return _help_text(runner.require_tool(TOOL))

    def tool_versions(self) -> dict[str, str]:
        done = runner.run([runner.require_tool(TOOL), "-version"], check=False)
        return {TOOL: parse_version(done.stdout + done.stderr, "version")}

    def available_compressions(self) -> tuple[str, ...]:
        text = self._help()
        start = text.find("Compressors available")
        if start < 0:
            return self.compressions
        # the list is indented lines after the heading, up to the next option
        listed = []
        for line in text[start:].splitlines()[1:]:
            word = line.strip().split(" ")[0]
            if not line.startswith(("\t", " ")) or word.startswith("-"):
                break
            listed.append(word)
        return tuple(c for c in self.compressions if c in listed)

    def resolve_compression(self, compression: str | None) -> str | None:
        spec = compression if compression is not None else self.default_compression
        if spec == self.default_compression and \
                self.default_compression not in self.available_compressions():
            LOG.warning("this mksquashfs has no %s compression; using %s",
                        self.default_compression, self.fallback_compression)
            spec = self.fallback_compression
        return super().resolve_compression(spec)

    def command(self, tree: Path, dest: Path, compression: str | None) -> list[str]:
        """The mksquashfs argv (without the SOURCE_DATE_EPOCH environment)."""
        help_text = self._help()
        # -noappend: otherwise an existing DEST is extended, not replaced;
        # -all-root: 0:0 in the image even when the tree is not owned by root
        argv = [runner.require_tool(TOOL), str(tree), str(dest),
                "-noappend", "-all-root", "-no-progress"]
        if compression is not None:
            alg, level = split_compression(compression)
            argv += ["-comp", alg]
            if level is not None:
                argv += ["-Xcompression-level", str(level)]
        # Probed in -help rather than passed blindly: older squashfs-tools reject
        # options they do not know.  -exit-on-error turns errors mksquashfs would
        # otherwise skip (an unreadable file, say) into a failed build.
        for optional in ("-reproducible", "-exit-on-error"):
            if re.search(rf"^{optional}\b", help_text, re.MULTILINE):
                argv.append(optional)
        return argv

    def write_image(self, tree: Path, dest: Path, *, epoch: int,
                    compression: str | None) -> None:
        # The epoch goes only through the environment; see the module doc for why
        # -mkfs-time/-all-time are not passed as well.
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
        done = runner.run(self.command(tree, dest, compression), env=env)
        for line in done.stdout.splitlines():
            LOG.debug("mksquashfs: %s", line)
