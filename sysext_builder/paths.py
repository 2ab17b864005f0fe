"""Where the package's own data lives: built-in elements and the shell library.

Both are directories shipped inside the package and located with
:mod:`importlib.resources`.  On Python 3.11 ``importlib.resources.as_file``
only materialises *files*; handed a directory it returns a path that does not
exist when the package is imported from a zip.  Elements are run as
executables, so they must be real directories on disk with their mode bits.
We therefore use the traversable directly when it is already a
:class:`pathlib.Path` (every normal install, wheels included) and otherwise
copy the tree into a private cache directory once, marking hook files
executable again because zip archives do not carry mode bits reliably.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

_PACKAGE = "sysext_builder"
_HOOK_DIR_SUFFIX = ".d"


def _copy_traversable(src: Traversable, dest: Path, executable: bool) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for child in sorted(src.iterdir(), key=lambda t: t.name):
        target = dest / child.name
        if child.is_dir():
            _copy_traversable(child, target,
                              executable or child.name.endswith(_HOOK_DIR_SUFFIX))
        else:
            target.write_bytes(child.read_bytes())
            if executable and child.name != "README.rst":
                target.chmod(0o755)


@functools.cache
def package_dir(name: str) -> Path:
    """Return a real on-disk directory for the package data dir ``name``."""
    traversable = resources.files(_PACKAGE).joinpath(name)
    if isinstance(traversable, Path):
        return traversable
    # Zip import (e.g. zipapp): materialise once per process.
    cache = Path(tempfile.mkdtemp(prefix=f"sysext-builder-{name}-"))
    _copy_traversable(traversable, cache / name, executable=name == "lib")
    return cache / name


def builtin_elements_dir() -> Path:
    return package_dir("elements")


def shell_lib_dir() -> Path:
    return package_dir("lib")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sysext-builder`` (default ``~/.cache/sysext-builder``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return Path(base) / "sysext-builder"


def which(tool: str) -> str | None:
    """``shutil.which`` that also looks in the sbin directories."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(tool, path=path)
