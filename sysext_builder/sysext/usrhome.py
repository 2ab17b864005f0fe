"""What hooks wrote to ``/etc`` that has a home in ``/usr``: moved there, not lowered.

systemd-sysext merges no ``/etc``; the rest of ``/etc`` is lowered to factory
copies and tmpfiles.d ``C`` lines (:mod:`.tree`), which take effect only once
systemd-tmpfiles runs and never replace what a target already has.  Two kinds
of entries have a ``/usr`` twin their readers look at anyway, so
:func:`ship` moves them there first (``/etc`` keeps overriding them, as it
does vendor files):

* units a hook enabled with ``systemctl enable`` (13 of DIB's elements do it
  in a chrooted hook): ``etc/systemd/system/X.wants/NAME`` (``.requires``,
  ``.upholds``) becomes ``usr/lib/systemd/system/X.wants/NAME -> ../UNIT``, an
  ``Alias=`` link ``usr/lib/systemd/system/ALIAS -> UNIT``.  A tmpfiles.d
  ``L`` line would create them after the manager computed its boot
  transaction.  Masks (``/dev/null``), unit files and drop-ins stay for the
  lowering (an administrator's choice on one machine, not a vendor default);
* configuration files in directories that are read from ``/usr/lib`` too
  (:data:`TWINS`: ``modprobe.d``, ``sysctl.d``, ``udev/rules.d``,
  ``systemd/journald.conf.d`` ...): regular files move to the twin, so they
  apply as soon as the image is merged.

An entry whose twin already exists in the tree stays where it was (and is
lowered).  Every write stays inside ``root`` (:mod:`.fileutil`).
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from pathlib import Path

from sysext_builder import fileutil
from sysext_builder.sysext.units import SYSTEM_UNIT_DIR, valid_unit_name

LOG = logging.getLogger(__name__)

ETC_UNIT_DIR = "etc/systemd/system"
#: directories below etc/ whose readers load usr/lib/SAME too (at lower precedence)
TWINS = ("modprobe.d", "modules-load.d", "sysctl.d", "binfmt.d", "tmpfiles.d", "sysusers.d",
         "environment.d", "udev/rules.d", "udev/hwdb.d", "systemd/network",
         "systemd/journald.conf.d", "systemd/logind.conf.d", "systemd/system.conf.d",
         "systemd/timesyncd.conf.d", "systemd/networkd.conf.d", "systemd/resolved.conf.d")
_DEPENDENCY_DIRS = (".wants", ".requires", ".upholds")


def _unit_target(dir_fd: int, name: str) -> str | None:
    """The unit file name a link ``name`` in ``dir_fd`` names, ``None`` if it is no
    such link (a file, a mask, a link to something that is not a unit name)."""
    try:
        if not stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
            return None
        target = os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None
    unit = posixpath.basename(target)
    if target.startswith("/dev/") or not valid_unit_name(unit):
        return None
    return unit


def _move(root: Path, src_fd: int, name: str, rel_dir: str, link: str) -> bool:
    """Create ``rel_dir/name -> link`` in ``root`` and remove ``name`` from ``src_fd``;
    an existing entry there is kept (and the /etc link left for the lowering)."""
    dest_fd = fileutil.open_dir_in(root, rel_dir, create=True)
    try:
        try:
            os.symlink(link, name, dir_fd=dest_fd)
        except FileExistsError:
            return False
    finally:
        os.close(dest_fd)
    os.unlink(name, dir_fd=src_fd)
    return True


def _open(root: Path, rel: str) -> int | None:
    try:
        return fileutil.open_dir_in(root, rel)
    except (OSError, fileutil.NotContained):
        return None  # none, or not a real directory: the tree rules speak about it


def ship(root: Path, base: Path | None = None) -> list[str]:
    """Move enablement links and :data:`TWINS` files of ``root/etc`` to ``/usr``;
    returns the new paths (root-relative).  A link moves only when the unit it
    names is a file of the image or of ``base``: otherwise a shipped link would
    dangle (a later hook removed the unit), and it is left for the lowering."""
    return _ship_enablement(root, base) + _place_twins(root)


def _unit_exists(unit: str, trees: list[Path]) -> bool:
    return any(os.path.isfile(tree / SYSTEM_UNIT_DIR / unit) and
               not os.path.islink(tree / SYSTEM_UNIT_DIR) for tree in trees)


def _place_twins(root: Path) -> list[str]:
    moved: list[str] = []
    for twin in TWINS:
        etc_dir, usr_dir = f"etc/{twin}", f"usr/lib/{twin}"
        src = _open(root, etc_dir)
        if src is None:
            continue
        dest: int | None = None  # opened (made) at the first file to move
        try:
            for name in sorted(os.listdir(src)):
                if not stat.S_ISREG(os.lstat(name, dir_fd=src).st_mode):
                    continue  # links (masks), directories: left for the lowering
                if dest is None:
                    dest = fileutil.open_dir_in(root, usr_dir, create=True)
                try:
                    os.lstat(name, dir_fd=dest)
                    continue  # the image ships its own: the /etc copy is lowered
                except FileNotFoundError:
                    os.rename(name, name, src_dir_fd=src, dst_dir_fd=dest)
                moved.append(f"{usr_dir}/{name}")
                LOG.info("placed at its /usr twin: %s/%s -> %s/%s", etc_dir, name, usr_dir,
                         name)
        finally:
            os.close(src)
            if dest is not None:
                os.close(dest)
        _remove_empty(root, etc_dir)
    return moved


def _remove_empty(root: Path, rel: str) -> None:
    """Remove ``rel`` and its parents below ``etc`` while they are empty."""
    while rel not in ("etc", ""):
        try:
            os.rmdir(root / rel)
        except OSError:
            return
        rel = posixpath.dirname(rel)


def _ship_enablement(root: Path, base: Path | None) -> list[str]:
    trees = [root] if base is None else [root, base]
    top = _open(root, ETC_UNIT_DIR)
    if top is None:
        return []
    moved: list[str] = []
    try:
        for entry in sorted(os.listdir(top)):
            if entry.endswith(_DEPENDENCY_DIRS) and valid_unit_name(entry.rsplit(".", 1)[0]):
                sub = _open(root, f"{ETC_UNIT_DIR}/{entry}")
                if sub is None:
                    continue
                try:
                    for name in sorted(os.listdir(sub)):
                        unit = _unit_target(sub, name)
                        rel_dir = f"{SYSTEM_UNIT_DIR}/{entry}"
                        if unit and _unit_exists(unit, trees) and \
                                _move(root, sub, name, rel_dir, f"../{unit}"):
                            moved.append(f"{rel_dir}/{name}")
                finally:
                    os.close(sub)
                try:
                    os.rmdir(entry, dir_fd=top)
                except OSError:
                    pass  # something else stays there for the lowering
            elif valid_unit_name(entry):
                unit = _unit_target(top, entry)
                if unit and unit != entry and _unit_exists(unit, trees) and \
                        _move(root, top, entry, SYSTEM_UNIT_DIR, unit):
                    moved.append(f"{SYSTEM_UNIT_DIR}/{entry}")
    finally:
        os.close(top)
    if moved:  # the directories the links left, when empty: no "d" line for them
        _remove_empty(root, ETC_UNIT_DIR)
    for rel in moved:
        LOG.info("enabled by a hook's systemctl enable: %s", rel)
    return moved
