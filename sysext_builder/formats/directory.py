"""A plain directory tree (systemd-sysext merges directories as they are).

The tree is copied with symlinks kept as symlinks and modes preserved; file
times newer than the epoch are clamped to it (as mksquashfs does), and when
running as root every entry is chowned to root (as ``-all-root`` does).
Anything but directories, regular files and symlinks is refused.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

from sysext_builder.errors import OutputError
from sysext_builder.formats.base import OutputFormat

LOG = logging.getLogger(__name__)


def _copy_regular(src: str, dst: str) -> object:
    mode = os.lstat(src).st_mode
    if not stat.S_ISREG(mode):
        raise OutputError(f"cannot copy {src}: not a regular file, directory or symlink")
    return shutil.copy2(src, dst)


def _normalise(path: str, epoch: int, as_root: bool) -> None:
    st = os.lstat(path)
    if as_root and (st.st_uid or st.st_gid):
        os.lchown(path, 0, 0)
    if st.st_mtime > epoch:
        os.utime(path, (epoch, epoch), follow_symlinks=False)


class DirectoryFormat(OutputFormat):
    """``NAME/`` as a directory tree."""

    name = "directory"
    suffix = ""
    compressions = ()
    default_compression = None

    def tools(self) -> list[str]:
        return []

    def tool_versions(self) -> dict[str, str]:
        return {}

    def write_image(self, tree: Path, dest: Path, *, epoch: int,
                    compression: str | None) -> None:
        try:
            shutil.copytree(tree, dest, symlinks=True, copy_function=_copy_regular)
            as_root = os.geteuid() == 0
            # bottom-up, so clamping a directory's time comes after filling it
            for dirpath, dirnames, filenames in os.walk(dest, topdown=False):
                for entry in filenames + dirnames:
                    _normalise(os.path.join(dirpath, entry), epoch, as_root)
            _normalise(str(dest), epoch, as_root)
        except shutil.Error as exc:
            problems = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
            first = f"{problems[0][0]}: {problems[0][2]}" if problems else str(exc)
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise OutputError(f"copying {tree} to {dest} failed: {first}{more}") from exc
        except OSError as exc:
            raise OutputError(f"copying {tree} to {dest} failed: {exc}") from exc
