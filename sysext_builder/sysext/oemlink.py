"""The OEM activation helper, for bases that lack Flatcar's.

Flatcar keeps its OEM extension on the OEM partition (label ``OEM``, mounted
at ``/oem``) as ``sysext/oem-ID-VERSION.raw`` beside ``oem-release`` and an
empty flag ``sysext/active-oem-ID``; early in boot it links
``/etc/extensions/oem-ID.raw`` to the versioned file.  :func:`helper_unit`
is the same step as one unit file for any other base (the people building
the base install it, like the reload helper of :mod:`.activation`):

* ``ID=`` is read from ``/oem/oem-release``; nothing happens without it or
  without the flag ``/oem/sysext/active-oem-ID`` (an "initial" image that
  is not to be activated, or no OEM partition at all);
* of the ``oem-ID-*.raw`` present the newest version wins (``sort -V``), so
  an update that adds ``oem-ID-NEW.raw`` beside the old file takes effect at
  the next boot; the link is replaced only when it names another file;
* it runs after ``/oem`` is mounted and before ``systemd-sysext.service``.
"""

from __future__ import annotations

HELPER_UNIT = "sysext-builder-oem.service"

# $1: the OEM mount point, $2: where the link goes; POSIX sh, coreutils and sed
# only (a minimal base).
# No backslash and no single quote: systemd unescapes ExecStart= before sh
# reads it; "$name" inside the -c word is left alone by systemd (only a
# separate word, or ${name}, is substituted).
_SCRIPT = (
    'oem=$1; '
    'id=$(sed -n "/^ID=/{s/^ID=//;s/[^A-Za-z0-9._-]//g;p;q}" "$oem/oem-release"); '
    '[ -n "$id" ] || { echo "no ID= in $oem/oem-release"; exit 0; }; '
    '[ -e "$oem/sysext/active-oem-$id" ] || '
    '{ echo "oem-$id is not active (no $oem/sysext/active-oem-$id)"; exit 0; }; '
    'newest=$(for f in "$oem/sysext/oem-$id-"*.raw; do [ -e "$f" ] && echo "$f"; done '
    '| sort -V | tail -n 1); '
    '[ -n "$newest" ] || { echo "no $oem/sysext/oem-$id-*.raw"; exit 0; }; '
    'link=$2/oem-$id.raw; '
    '[ "$(readlink "$link")" = "$newest" ] && { echo "$link -> $newest"; exit 0; }; '
    'mkdir -p "$2" && ln -sfn "$newest" "$link" && echo "linked $link -> $newest"'
)


def helper_unit(mount_point: str = "/oem") -> str:
    """The unit file (a single file: the script is inline)."""
    script = _SCRIPT.replace("%", "%%")  # systemd specifiers
    return "\n".join([
        "# sysext-builder's OEM activation helper, for the base image: link the active",
        f"# OEM extension of {mount_point} (Flatcar's layout) into /etc/extensions before",
        "# systemd-sysext merges.  Install as /etc/systemd/system/" + HELPER_UNIT,
        "# and enable it: systemctl enable " + HELPER_UNIT,
        "[Unit]", "Description=Link the active OEM system extension",
        "DefaultDependencies=no", f"RequiresMountsFor={mount_point}",
        "After=local-fs.target", "Before=systemd-sysext.service sysinit.target",
        f"ConditionPathExists={mount_point}/oem-release",
        "ConditionPathExists=!/etc/initrd-release", "",
        "[Service]", "Type=oneshot", "RemainAfterExit=yes",
        f"ExecStart=/bin/sh -c '{script}' sh {mount_point} /etc/extensions", "",
        "[Install]", "WantedBy=sysinit.target", ""])


def helper_links(system_dir: str) -> dict[str, str]:
    """The link ``systemctl enable`` makes for the helper, under ``system_dir``."""
    return {f"{system_dir}/sysinit.target.wants/{HELPER_UNIT}": f"../{HELPER_UNIT}"}
