"""From a finished staging tree to a valid extension, in one ordered step.

move /etc entries with a /usr home (:mod:`.usrhome`) -> lower /etc and /var ->
enable declared units -> the units that start them once merged
(:mod:`.activation`) -> validate the tree -> write extension-release
(EXTENSION_RELOAD_MANAGER=1 when units ship) -> clamp owners and times.

The order matters: lowering and unit enabling write files under ``usr/`` that
must pass the same tree rules, and what was lowered (with the base's ``/etc``)
decides which symlinks into ``/etc`` are accepted; the release file comes
after the unit scan because ``EXTENSION_RELOAD_MANAGER`` depends on what
ships; normalising comes last so everything written before it gets the epoch
(and 0:0 when run as root).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from sysext_builder import fileutil
from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext import activation, links, modes, osrelease, release, tree, units, usrhome

LOG = logging.getLogger(__name__)


def declarations(unit_files: Sequence[Path]) -> list[units.UnitDecl]:
    decls: list[units.UnitDecl] = []
    for path in unit_files:
        if path.exists():
            decls.extend(units.parse_units(path))
    return decls


def assemble(root: Path, name: str, release_fields: Mapping[str, str],
             unit_files: Sequence[Path], *, strict: bool, epoch: int,
             base: Path | None = None) -> dict[str, str]:
    """Rewrite and check ``root`` in place; returns the extension-release fields written.

    ``base`` is the base tree of a ``--base`` build: its ``/etc`` may provide
    the targets of the image's symlinks into ``/etc``.
    """
    # units enabled by systemctl, modprobe.d, sysctl.d ...: moved to their /usr twins
    usrhome.ship(root, base)
    # systemd-sysext would silently ignore etc/ and var/: lower them into usr/ first
    lowered = tree.lower_etc_var(root, strict=strict, name=name)
    for rel in units.apply_units(root, declarations(unit_files), name, fields=release_fields):
        LOG.info("enabled unit: %s", rel)
    # udev rules first: their unit is enabled in sysinit.target, which activation starts
    activation.write_udev_reload(root, name, base)
    activation.write_activation(root, name)
    if not os.path.lexists(root / "usr"):
        (root / "usr").mkdir(mode=0o755)  # a metadata-only extension: just its release file
    tree.validate(root, etc=links.EtcSources.of((ln.source for ln in lowered), base))
    modes.check(root, strict=strict, name=name)  # world-writable, set-id: warn or refuse
    fields = dict(release_fields)
    if units.ships_units(root):
        fields["EXTENSION_RELOAD_MANAGER"] = "1"
    # usr/lib/extension-release.d/extension-release.NAME: the name must match the
    # installed NAME.raw, else systemd skips the image (252 aborts the whole merge)
    # written inside the tree only: a symlinked extension-release.d must not send it to the host
    rel = release.release_path(name)
    try:
        fileutil.write_file_in(root, rel, osrelease.render(fields).encode("utf-8"), 0o644)
    except fileutil.NotContained as exc:
        raise TreeRuleError(f"cannot write the extension-release file {rel}: {exc}",
                            hint="the builder writes it only through real directories: remove "
                                 "that symlink or file in a finalise.d/cleanup.d hook") from None
    tree.normalise(root, epoch)
    return fields
