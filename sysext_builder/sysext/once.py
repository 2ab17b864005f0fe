"""Run-once-per-version units: the ``once UNIT [TARGET]`` declaration of a ``units`` file.

A ``once`` unit is enabled like ``enable`` (the ``TARGET.wants/UNIT`` link) and
gets a drop-in ``usr/lib/systemd/system/UNIT.d/10-NAME-once.conf``::

    [Unit]
    ConditionPathExists=!/var/lib/NAME/once/UNIT-VERSION

    [Service]
    ExecStartPost=+/bin/sh -c 'mkdir -p /var/lib/NAME/once && touch /var/lib/NAME/once/UNIT-VERSION'

so it runs at the first boot that merges this VERSION of the extension NAME and
is skipped (a condition, not a failure) at every later boot, until an image
with another version brings a drop-in naming another marker.  The marker is
written after the start succeeded: for ``Type=oneshot`` only when ``ExecStart=``
exited 0, so a failed run is retried at the next boot.  ``+`` runs the marker
command with full privileges whatever ``User=`` the unit has; ``/bin/sh``,
``mkdir`` and ``touch`` are on every target (systemd 252 included: nothing here
needs a newer manager).  ``/var`` is the machine's, so markers survive image
updates and are kept per image name.

VERSION is the extension's version, from its extension-release: the
extension's own ``SYSEXT_VERSION_ID`` when an element sets one
(``SYSEXT_RELEASE_SYSEXT_VERSION_ID``), else ``VERSION_ID`` (an image built
for one target version; Flatcar versions its OEM images with the OS, and
``oem-common``'s ``oem-release`` then carries the same version).  An image
with neither (only ``SYSEXT_LEVEL``) is version-independent and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sysext_builder.errors import TreeRuleError

#: the extension-release fields that version an image, in order of precedence
VERSION_FIELDS = ("SYSEXT_VERSION_ID", "VERSION_ID")
MARKER_DIR = "/var/lib/{name}/once"
#: what may stand in the marker's file name and in the unit file unquoted
_SAFE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~@:-]*$")


def version(fields: Mapping[str, str] | None, unit: str, source: str) -> str:
    """The version that keys the markers of ``unit`` (see the module docstring)."""
    if fields is None:
        raise TreeRuleError(f"{source}: once {unit}: the extension's version is unknown here",
                            hint="pass the extension-release fields to apply_units")
    value = next((fields[k] for k in VERSION_FIELDS if fields.get(k)), None)
    if value is None:
        raise TreeRuleError(f"{source}: once {unit}: the extension has no version "
                            f"(neither SYSEXT_VERSION_ID nor VERSION_ID in extension-release)",
                            hint="build for a target version (--os-version-id, --os-release, "
                                 "--base) or export SYSEXT_RELEASE_SYSEXT_VERSION_ID in an "
                                 "element's environment.d")
    if not _SAFE_RE.match(value):
        raise TreeRuleError(f"{source}: once {unit}: version {value!r} cannot name a marker "
                            f"file", hint="use letters, digits and . _ + ~ - only")
    return value


def check(name: str, unit: str, source: str) -> None:
    """Only services have ``ExecStartPost=``; the names must be usable in a path."""
    if not _SAFE_RE.match(name):
        raise TreeRuleError(f"{source}: once {unit}: the image name {name!r} cannot name "
                            f"the marker directory", hint="name the image with letters, "
                            "digits, '.' and '-'")
    if not unit.endswith(".service"):
        raise TreeRuleError(f"{source}: once {unit}: only a .service can run once",
                            hint="use enable for other unit types")
    if not _SAFE_RE.match(unit):
        raise TreeRuleError(f"{source}: once {unit}: the unit name cannot name a marker file",
                            hint="no '\\' escapes in a once unit's name")


def marker(name: str, unit: str, ver: str) -> str:
    """The marker's path on the target: ``/var/lib/NAME/once/UNIT-VERSION``."""
    return f"{MARKER_DIR.format(name=name)}/{unit}-{ver}"


def dropin_name(name: str, unit: str) -> str:
    """The drop-in's path below the unit directory."""
    return f"{unit}.d/10-{name}-once.conf"


def dropin_text(name: str, unit: str, ver: str) -> str:
    path = marker(name, unit, ver)
    directory = MARKER_DIR.format(name=name)
    return (f"# Written by sysext-builder: run {unit} once per version of the extension "
            f"{name} (this is {ver})\n"
            "[Unit]\n"
            f"ConditionPathExists=!{path}\n"
            "\n"
            "[Service]\n"
            f"ExecStartPost=+/bin/sh -c 'mkdir -p {directory} && touch {path}'\n")
