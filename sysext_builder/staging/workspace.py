"""The build directory and its lifecycle.

Layout of one work directory::

    WORK/root/        TARGET_ROOT, the staging tree that becomes the extension
    WORK/hooks/       TMP_HOOKS_PATH: every element's files merged (staging.hooktree)
    WORK/tmp/         TMP_BUILD_DIR, scratch space for hooks
    WORK/artifacts/   SYSEXT_ARTIFACTS_DIR: files placed beside the image
    WORK/state/       builder state (unit declarations written by hooks, ...)
    WORK/pack/        images while they are being packed

The directory is removed when the build ends unless ``keep`` is set; on
failure the path is logged so the user can look (with ``--keep-workdir``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from sysext_builder.errors import EnvironmentUnusableError
from sysext_builder.fileutil import NO_ROOM, remove_tree
from sysext_builder.model.element import Element

LOG = logging.getLogger(__name__)

def _in_or_unnamed(exc: OSError, top: Path) -> bool:
    """Whether ``exc`` names a file in ``top``, or no file (a write through a descriptor)."""
    return not exc.filename or os.fspath(exc.filename).startswith(os.fspath(top) + "/")


def _out_of_room(directory: Path) -> bool:
    """Whether the filesystem of ``directory`` is read-only or (nearly) full."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return bool(st.f_flag & os.ST_RDONLY) or st.f_bavail * st.f_frsize < 1 << 20


class Workspace:
    """Context manager owning one build's work directory."""

    def __init__(self, parent: Path | None = None, keep: bool = False) -> None:
        self.keep = keep
        base = parent if parent is not None else Path(os.environ.get("TMPDIR", "/var/tmp"))
        try:
            base.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix="sysext-build.", dir=base))
        except OSError as exc:
            raise EnvironmentUnusableError(
                f"cannot create a work directory under {base}: {exc.strerror}",
                hint="pass --workdir DIR (or set TMPDIR) on a writable filesystem with room") \
                from exc
        self.root = self.path / "root"
        self.hooks = self.path / "hooks"
        self.tmp = self.path / "tmp"
        self.artifacts = self.path / "artifacts"
        self.state = self.path / "state"
        self.pack = self.path / "pack"
        for directory in (self.root, self.hooks, self.tmp, self.artifacts, self.state,
                          self.pack):
            directory.mkdir()
        self.root.chmod(0o755)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.keep:
            LOG.info("work directory kept: %s", self.path)
            return
        no_room = (isinstance(exc, OSError) and exc.errno in NO_ROOM
                   and _in_or_unnamed(exc, self.path) and _out_of_room(self.path))
        if exc is not None:
            LOG.info("build failed; work directory removed (pass --keep-workdir to keep it)")
        remove_tree(self.path)
        if no_room:
            assert isinstance(exc, OSError)
            raise EnvironmentUnusableError(
                f"the work directory's filesystem ({self.path.parent}) is full or read-only: "
                f"{exc.strerror}" + (f" writing {exc.filename}" if exc.filename else ""),
                hint="free space there, or pass --workdir DIR (or set TMPDIR) on a filesystem "
                     "with room; nothing was written to the output") from exc

    def copy_elements(self, elements: Sequence[Element]) -> Path:
        """Copies of the elements (without static/) to bind into a chroot."""
        top = self.path / "elements"
        for element in elements:
            shutil.copytree(element.path, top / element.name, symlinks=True,
                            ignore=lambda d, names, root=str(element.path):
                            ["static"] if d == root and "static" in names else [])
        return top
