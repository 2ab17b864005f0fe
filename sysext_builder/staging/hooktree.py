"""DIB's merged hooks tree, ``TMP_HOOKS_PATH``: every element's files in one tree.

diskimage-builder copies each element's top-level directories (phase
directories, ``bin/``, ``init-scripts/``, ``static/``, ...; not ``tests``)
and top-level files into one directory and runs every hook from there, so
a hook's ``$(dirname $0)/../bin`` is the union of all elements' ``bin/``.
DIB elements rely on it (``install-bin``, ``dib-init-system``'s
``../init-scripts/$DIB_INIT_SYSTEM``).  :func:`merge` makes that tree as real
copies (a chroot sees them through one bind mount, and nothing a hook writes
there reaches an element's own files); :func:`run_path` is where a hook runs.

The first element (in resolution order) that ships a path keeps it, as DIB's
"not overwrite" copy does, and a later element's different file of that path
is named in a warning; two hooks of one name in one phase were refused
before (:func:`.phases.order_hooks`).  A hook chosen from an install-type
directory (``install.d/NAME-source-install/40-x``) is linked into its phase
directory (``install.d/40-x``), as DIB's ``install-types`` element does, so
``$(dirname $0)`` is the phase directory there too.

File links are copied as the files they name, directory links are kept as
links; anything that is not a regular file, a directory or a link (a fifo)
is left out with a warning: reading it could block the build.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from sysext_builder.model.element import Element
from sysext_builder.model.phases import Hook

LOG = logging.getLogger(__name__)

#: top-level names DIB does not copy (``tests``), or that are the builder's metadata
_SKIP_DIRS = frozenset({"tests", "__pycache__"})
_SKIP_FILES = frozenset({"README.rst", "element-deps", "element-provides"})


def _copy_file(src: str, dest: Path) -> None:
    try:
        st = os.stat(src)  # a link is copied as what it names
    except OSError:
        st = None  # dangling: kept as a link, as DIB's cp -a keeps it
    try:
        if st is not None and stat.S_ISREG(st.st_mode):
            shutil.copy2(src, dest)
        elif st is None or stat.S_ISDIR(st.st_mode):
            os.symlink(os.readlink(src), dest)
        else:
            LOG.warning("%s: not a regular file, not copied into TMP_HOOKS_PATH", src)
    except OSError as exc:  # a full work directory: name the file written, not the element's
        raise OSError(exc.errno, exc.strerror, str(dest)) from exc


def _same_file_content(a: str, b: Path) -> bool:
    """Whether ``a`` and ``b`` are regular files (not links: nothing is read through
    one; not fifos: reading one would block) with the same bytes."""
    try:
        if not (stat.S_ISREG(os.lstat(a).st_mode) and stat.S_ISREG(os.lstat(b).st_mode)):
            return False
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _merge_dir(src: Path, dest: Path, top: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        here = dest if rel == "." else dest / rel
        if os.path.islink(here):  # an earlier element's link: never written through
            LOG.warning("%s: an earlier element ships %s as a symlink; TMP_HOOKS_PATH keeps "
                        "the link, not what is below it here", dirpath, here.relative_to(top))
            dirnames[:] = []
            continue
        here.mkdir(parents=True, exist_ok=True)
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if d not in links)
        for name in sorted(filenames + links):
            target = here / name
            source = os.path.join(dirpath, name)
            if not os.path.lexists(target):
                _copy_file(source, target)
            elif not _same_file_content(source, target):
                LOG.warning("%s: an earlier element ships %s too; TMP_HOOKS_PATH keeps that one",
                            source, target.relative_to(top))


def merge(elements: Sequence[Element], hooks: Mapping[str, Sequence[Hook]], dest: Path) -> None:
    """Fill ``dest`` (existing, empty) with the merged tree of ``elements``."""
    for element in elements:
        for entry in sorted(os.scandir(element.path), key=lambda e: e.name):
            if entry.is_dir():
                if entry.name not in _SKIP_DIRS:
                    _merge_dir(Path(entry.path), dest / entry.name, dest)
            elif entry.name not in _SKIP_FILES and not os.path.lexists(dest / entry.name):
                _copy_file(entry.path, dest / entry.name)
    for phase, chosen in hooks.items():
        for hook in chosen:
            rel = _rel(hook)
            if rel != f"{phase}/{hook.name}":  # from an install-type directory
                link = dest / phase / hook.name
                if not os.path.lexists(link):
                    link.symlink_to(os.path.relpath(rel, phase))


def _rel(hook: Hook) -> str:
    assert hook.element_dir is not None
    return hook.path.relative_to(hook.element_dir).as_posix()


def run_path(hook: Hook, top: str) -> str:
    """Where ``hook`` runs in the merged tree seen at ``top``."""
    return f"{top}/{hook.phase}/{hook.name}"
