"""File helpers every layer uses: content hashes and removal of what the builder made."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from pathlib import Path

LOG = logging.getLogger(__name__)


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
