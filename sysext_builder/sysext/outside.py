"""What a system extension cannot carry, caught as soon as a step writes it.

systemd-sysext merges ``/usr`` and ``/opt`` only (``/etc`` is lowered by the
builder, ``/var`` too).  Most other paths a build writes are simply not part
of the extension, but two kinds are a sign that the element was made for a
disk image, and an extension without them would be a silent half of it:

* ``/boot``: a kernel, initramfs or boot loader is read by the firmware or
  boot loader before any extension is merged;
* ``/home``: users' home directories belong to the machine, not to ``/usr``.

With a base, only what the build added counts: a name the base already has
there (an initramfs that a package trigger rewrote) is not the build's.
"""

from __future__ import annotations

import os
from pathlib import Path

_RULES = (
    ("boot", "a kernel, initramfs or boot loader cannot be part of a system extension: "
             "the boot loader reads /boot before systemd-sysext merges anything"),
    ("home", "home directories cannot be part of a system extension, which merges only "
             "/usr and /opt: create them at boot (systemd-sysusers, tmpfiles.d)"),
)


def written(root: Path, lower: Path | None = None) -> tuple[str, str] | None:
    """``(path, why)`` for the first entry under ``root``'s ``/boot`` or ``/home``
    (that ``lower``, the base, does not have), else ``None``."""
    for top, why in _RULES:
        directory = root / top
        if directory.is_symlink() or not directory.is_dir():
            continue
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries)
        for name in names:
            if lower is not None and os.path.lexists(lower / top / name):
                continue
            return f"/{top}/{name}", why
    return None
