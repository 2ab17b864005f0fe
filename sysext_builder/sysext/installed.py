"""What ``systemd-sysext merge`` would do with the images installed in a root.

Measured with the real tools (directory images under ``--root``, see
``tests/functional/test_check_matrix.py``):

- systemd 252 looks in ``etc/extensions``, ``run/extensions``,
  ``var/lib/extensions``, ``usr/local/lib/extensions`` and
  ``usr/lib/extensions``; 257 only in the first three.  A directory image
  under ``usr/`` makes 252's overlay mount fail with ELOOP, so nothing merges.
  Versions 253-256 are taken to search like 257 from 254 on (where
  systemd split the sysext and confext paths); only 252 and 257 are measured.
- The first image of a name wins, in that directory order.
- An incompatible image, or a directory image without the extension-release
  of its name, is skipped; the others merge.
- An image that ships ``usr/lib/os-release`` stops the whole merge (252 refuses
  every image, 257 fails).  A ``.raw`` image whose name matches no
  extension-release fails dissection ("No medium found") and stops the merge too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sysext_builder.errors import ImageError, ReleaseError
from sysext_builder.sysext import compat, image

_SEARCH = ("etc/extensions", "run/extensions", "var/lib/extensions")
_SEARCH_USR = ("usr/local/lib/extensions", "usr/lib/extensions")

#: verdicts
MERGED, SKIPPED, SHADOWED, ABORTS, IGNORED = "merged", "skipped", "shadowed", "aborts", "ignored"


@dataclass(frozen=True)
class Installed:
    """One entry of an extension directory and what systemd does with it."""

    rel: str        # root-relative path, e.g. var/lib/extensions/foo.raw
    name: str       # the image name systemd derives
    verdict: str    # one of MERGED, SKIPPED, SHADOWED, ABORTS, IGNORED
    reason: str = ""


def search_path(systemd_version: int) -> tuple[str, ...]:
    """The extension directories (root-relative) systemd-sysext reads, in order."""
    return _SEARCH + (_SEARCH_USR if systemd_version < 254 else ())


def _entries(root: Path, directory: str) -> list[tuple[str, os.stat_result]]:
    top = root / directory
    try:
        if top.is_symlink() or not top.is_dir():
            return []
        names = sorted(os.listdir(top))
    except OSError:
        return []
    return [(name, os.lstat(top / name)) for name in names]


def scan(root: Path, systemd_version: int,
         verdict: Callable[[Mapping[str, str]], str | None]) -> list[Installed]:
    """Every entry of the extension directories of ``root``, judged as systemd would.

    ``verdict`` takes an image's extension-release fields and returns ``None``
    when compatible with the target, else the reason (see :mod:`.compat`).
    """
    found: list[Installed] = []
    seen: dict[str, str] = {}
    for directory in search_path(systemd_version):
        for entry, st in _entries(root, directory):
            rel = f"{directory}/{entry}"
            if stat.S_ISLNK(st.st_mode):
                found.append(Installed(rel, entry, IGNORED, "a symlink: not checked here "
                                       "(followed on the target)"))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if not is_dir and not (stat.S_ISREG(st.st_mode) and entry.endswith(".raw")):
                found.append(Installed(rel, entry, IGNORED, "neither a directory nor NAME.raw"))
                continue
            name = compat.image_name(entry, systemd_version, directory=is_dir)
            if name in seen:
                found.append(Installed(rel, name, SHADOWED, f"{seen[name]} comes first"))
                continue
            seen[name] = rel
            found.append(_judge(root, rel, name, systemd_version=systemd_version,
                                verdict=verdict))
    return found


def _judge(root: Path, rel: str, name: str, *, systemd_version: int,
           verdict: Callable[[Mapping[str, str]], str | None]) -> Installed:
    path = root / rel
    is_dir = path.is_dir()
    directory = rel.rsplit("/", 1)[0]
    try:
        ext = image.read_extension(path, systemd_version=systemd_version)
    except ImageError as exc:
        if is_dir:
            return Installed(rel, name, SKIPPED, exc.message)
        return Installed(rel, name, ABORTS, exc.message)
    except ReleaseError as exc:
        return Installed(rel, name, ABORTS, exc.message)
    if ext.has_os_release:
        return Installed(rel, name, ABORTS, "ships usr/lib/os-release")
    reason = verdict(ext.fields)
    if reason is not None:
        return Installed(rel, name, SKIPPED, reason)
    if is_dir and directory in _SEARCH_USR:
        return Installed(rel, name, ABORTS, "a directory image under usr/ cannot be "
                         "overlaid on usr/ (ELOOP)")
    return Installed(rel, name, MERGED)
