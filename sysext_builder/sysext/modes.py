"""Modes worth a word: world-writable entries and set-id files in the tree.

Neither is wrong for systemd-sysext, so both are warnings; ``--strict``
makes them a :class:`TreeRuleError`.  World-writable means ``o+w`` on a file
or a directory without the sticky bit (a ``1777`` directory is the usual
shared-temporary-directory mode, and lowered ``/var`` trees may need one).
Set-id means ``u+s`` or ``g+s`` on a regular file; ``g+s`` on a directory only
makes new files inherit its group (Debian's ``/usr/local`` directories are
``2775``), so directories are not listed.  Set-id files matter more than
their bits suggest: the tree's owners are normalised to 0:0 when building as
root, so a set-id file of any owner ships as set-id *root*.  Debian packages
ship some legitimately (``sudo``, ``passwd``, ``mount``, ``fusermount3``,
``dbus-daemon-launch-helper``; set-gid ``crontab``, ``ssh-agent``); the
warning names them so an image ships them on purpose.

Only the first :data:`MAX_LISTED` paths of each kind are listed, with a count.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sysext_builder.errors import TreeRuleError

LOG = logging.getLogger(__name__)

MAX_LISTED = 10


@dataclass(frozen=True)
class Modes:
    """Relative paths (sorted) of the entries with a notable mode."""

    world_writable: tuple[str, ...] = ()
    set_id: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.world_writable or self.set_id)


def _walk(root: Path) -> list[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every entry under ``root``, sorted, no symlinks followed."""
    found: list[tuple[str, os.stat_result]] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st = os.lstat(root / rel)
            found.append((rel, st))
            if stat.S_ISDIR(st.st_mode):
                pending.append(rel)
    found.sort(key=lambda item: item[0])
    return found


def scan(root: Path) -> Modes:
    """The world-writable entries and set-id files under ``root``."""
    writable: list[str] = []
    set_id: list[str] = []
    for rel, st in _walk(root):
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            continue  # a symlink's own mode is always 0777 and never used
        if mode & stat.S_IWOTH and not (stat.S_ISDIR(mode) and mode & stat.S_ISVTX):
            writable.append(f"{rel} ({stat.S_IMODE(mode):04o})")
        if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
            set_id.append(f"{rel} ({stat.S_IMODE(mode):04o})")
    return Modes(tuple(writable), tuple(set_id))


def listing(paths: tuple[str, ...]) -> str:
    """The first MAX_LISTED paths, then how many more."""
    shown = ", ".join(paths[:MAX_LISTED])
    more = len(paths) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def check(root: Path, *, strict: bool, name: str) -> Modes:
    """Warn about (``strict``: refuse) world-writable entries and set-id files."""
    found = scan(root)
    parts = []
    if found.world_writable:
        parts.append(f"{len(found.world_writable)} world-writable "
                     f"entr{'y' if len(found.world_writable) == 1 else 'ies'}: "
                     + listing(found.world_writable))
    if found.set_id:
        parts.append(f"{len(found.set_id)} set-id file{'s' * (len(found.set_id) != 1)}: "
                     + listing(found.set_id))
    if not parts:
        return found
    if strict:
        raise TreeRuleError(f"--strict: extension {name} ships " + "; ".join(parts),
                            hint="chmod o-w / u-s,g-s them in the element, or build "
                                 "without --strict")
    for part in parts:
        LOG.warning("extension %s ships %s", name, part)
    return found
