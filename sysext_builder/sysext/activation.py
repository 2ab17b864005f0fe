"""Starting the units an extension enables, in the boot that merges it.

What systemd does (measured by booting, doc/booting.rst): ``systemd-sysext.service``
merges after the boot transaction was computed, so the image's
``TARGET.wants/`` links are not part of it.

* systemd >= 255 reloads the manager after the merge when the image says
  ``EXTENSION_RELOAD_MANAGER=1``.  The reload alone starts nothing: jobs
  already queued keep the dependencies they had.  What does act is
  ``Upholds=`` of a target in the image (a drop-in): once the target is
  active the manager starts the upheld unit.
* systemd < 255 (Debian 12's 252) never reloads after a merge: nothing of
  the image's unit configuration is seen in that boot unless something on
  the host reloads -- the host helper :data:`HELPER_UNIT`, which the people
  building the base image install (:func:`helper_unit`).

So an image that enables units ships ``NAME-activate.service``, upheld by
``sysinit.target`` (drop-in ``sysinit.target.d/10-NAME-activate.conf``): it
starts the targets the image enables units in that are active or already
queued, and a new start job of a target takes its current ``Wants=``, the
image's links included.  A target nothing asked for (``multi-user.target``
in a rescue boot) is left alone.  The same unit starts the image's units
when it is merged later by ``systemd-sysext merge`` or ``refresh`` (the
reload makes the drop-in visible while ``sysinit.target`` is active).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext.tree import ensure_dirs, write_new

LOG = logging.getLogger(__name__)

SYSTEM_UNIT_DIR = "usr/lib/systemd/system"
#: the first systemd whose systemd-sysext reloads the manager (EXTENSION_RELOAD_MANAGER)
RELOAD_SINCE = 255
#: the host helper for older systemd
HELPER_UNIT = "sysext-builder-reload.service"
_LINK_DIRS = (".wants", ".requires", ".upholds")
_OURS = "the builder writes it; remove the element's copy"


def unit_name(name: str) -> str:
    return f"{name}-activate.service"


def enabling_targets(root: Path, name: str) -> list[str]:
    """Targets the image has ``.wants``/``.requires``/``.upholds`` entries for, sorted
    (the image's own activation unit not counted)."""
    top = root / SYSTEM_UNIT_DIR
    if top.is_symlink() or not top.is_dir():
        return []
    found = set()
    for entry in os.listdir(top):
        unit, dot, kind = entry.rpartition(".")
        path = top / entry
        if not unit.endswith(".target") or "." + kind not in _LINK_DIRS or not path.is_dir():
            continue
        if any(n != unit_name(name) for n in os.listdir(path)):
            found.add(unit)
    return sorted(found)


def unit_text(name: str, targets: list[str]) -> str:
    # a target that is neither active nor queued is asked again (a busy manager
    # may not answer at once) before it is left alone
    loop = ('for t in "$@"; do n=0; while [ $n -lt 3 ]; do '
            'if systemctl -q is-active "$t" || '
            'systemctl list-jobs --no-legend "$t" | grep -q .; then '
            'echo "starting $t"; systemctl --no-block start "$t"; break; fi; '
            'n=$((n + 1)); sleep 1; done; done')
    return "\n".join([
        f"# {name}: made by sysext-builder.  The extension is merged after the boot",
        "# transaction was computed; a new start job of each target that is active or",
        "# queued takes the extension's .wants links into account (doc/booting.rst).",
        "[Unit]", f"Description=Start the units of the {name} extension",
        "DefaultDependencies=no", "After=systemd-sysext.service",
        "Conflicts=shutdown.target", "Before=shutdown.target", "",
        "[Service]", "Type=oneshot", "RemainAfterExit=yes",
        f"ExecStart=-/bin/sh -c '{loop}' sh {' '.join(targets)}", ""])


def write_activation(root: Path, name: str) -> list[str]:
    """Write the activation unit and its drop-in when the image enables units;
    return the paths written (relative to ``root``)."""
    targets = enabling_targets(root, name)
    if not targets:
        return []
    files = {f"{SYSTEM_UNIT_DIR}/{unit_name(name)}": unit_text(name, targets),
             f"{SYSTEM_UNIT_DIR}/sysinit.target.d/10-{name}-activate.conf":
                 f"# {name}: start the extension's units once it is merged\n"
                 f"[Unit]\nUpholds={unit_name(name)}\n"}
    for rel, text in files.items():
        write_new(root, rel, text, "units", _OURS)
        LOG.info("unit activation: %s", rel)
    LOG.info("unit activation: %s starts %s once merged", unit_name(name), " ".join(targets))
    return list(files)


def needs_host_helper(version: int | None) -> bool:
    """True when the target's systemd does not reload after a merge (unknown: False)."""
    return version is not None and version < RELOAD_SINCE


def advice(name: str, version: int | None, *, beside: bool = False) -> str | None:
    """The one line a build or ``sysext-check`` prints about activation, or None;
    ``beside``: the build wrote the helper beside the image."""
    if version is None:
        return (f"{name}: the target's systemd version is unknown; below {RELOAD_SINCE} "
                f"its units start at boot only with the host helper {HELPER_UNIT} "
                f"(doc/booting.rst)")
    if needs_host_helper(version):
        return (f"{name}: systemd {version} on the target does not reload after a merge: "
                f"its units start at boot only when the base has the host helper "
                f"{HELPER_UNIT} ({'written beside the image; ' if beside else ''}"
                f"doc/booting.rst)")
    return None


def helper_unit() -> str:
    """The host helper: reload the manager once the extensions are merged at boot."""
    conditions = [f"ConditionDirectoryNotEmpty=|{d}" for d in (
        "/etc/extensions", "/run/extensions", "/var/lib/extensions", "/usr/lib/extensions",
        "/usr/local/lib/extensions")]
    return "\n".join([
        "# sysext-builder's host helper for systemd < 255, for the base image: the",
        "# manager does not reload after systemd-sysext merged at boot, so the",
        "# extensions' units and drop-ins would be ignored in that boot.  Install as",
        f"# /etc/systemd/system/{HELPER_UNIT} (or in /usr/lib/systemd/system) and",
        "# enable it: systemctl enable " + HELPER_UNIT,
        "[Unit]", "Description=Reload the manager after system extensions were merged",
        "DefaultDependencies=no", "After=systemd-sysext.service",
        "Before=sysinit.target shutdown.target", "Conflicts=shutdown.target",
        *conditions, "ConditionPathExists=!/etc/initrd-release", "",
        "[Service]", "Type=oneshot", "RemainAfterExit=yes",
        "ExecStart=/usr/bin/systemctl daemon-reload", "",
        "[Install]", "WantedBy=sysinit.target", ""])


def helper_links(system_dir: str) -> dict[str, str]:
    """The link ``systemctl enable`` makes for the helper, under ``system_dir``."""
    return {f"{system_dir}/sysinit.target.wants/{HELPER_UNIT}": f"../{HELPER_UNIT}"}


UDEV_RULES_DIR = "usr/lib/udev/rules.d"
_SUBSYSTEM = re.compile(r'SUBSYSTEM=="([A-Za-z0-9_*|-]+)"')


def udev_subsystems(root: Path) -> list[str] | None:
    """Subsystems the image's udev rules match (None: a rule file matching no
    subsystem, so every device counts; [] : no rules)."""
    top = root / UDEV_RULES_DIR
    if top.is_symlink() or not top.is_dir():
        return []
    found: set[str] = set()
    for path in sorted(top.glob("*.rules")):
        text = path.read_text(encoding="utf-8", errors="replace")
        names = [n for m in _SUBSYSTEM.findall(text) for n in m.split("|")]
        if not names or any("*" in n for n in names):
            return None
        found.update(names)
    return sorted(found)


def udev_unit_name(name: str) -> str:
    return f"{name}-udev.service"


def _has_udevadm(tree: Path) -> bool:
    return any(os.path.lexists(tree / d / "udevadm") for d in ("usr/bin", "bin", "usr/sbin"))


def write_udev_reload(root: Path, name: str, base: Path | None = None) -> list[str]:
    """When the image ships udev rules: a unit that reloads udevd and replays
    the devices they match, enabled in sysinit.target (udevd may have read its
    rules before the merge).  Not when the ``base`` has no udev (nothing
    would read the rules).  Returns the paths written."""
    subsystems = udev_subsystems(root)
    if subsystems == []:
        return []
    if base is not None and not (_has_udevadm(base) or _has_udevadm(root)):
        LOG.info("unit activation: the base has no udevadm: %s's udev rules are not "
                 "replayed after the merge", name)
        return []
    match = " ".join(f"--subsystem-match={s}" for s in subsystems or ())
    unit = "\n".join([
        f"# {name}: made by sysext-builder.  udevd may have read its rules before the",
        "# extension was merged: reload them and replay the devices they match.",
        "[Unit]", f"Description=Apply the udev rules of the {name} extension",
        "DefaultDependencies=no",
        "After=systemd-sysext.service systemd-udevd.service systemd-udev-trigger.service",
        "Wants=systemd-udevd.service", "Conflicts=shutdown.target",
        "Before=shutdown.target", "ConditionPathIsReadWrite=/sys", "",
        "[Service]", "Type=oneshot", "RemainAfterExit=yes",
        "ExecStart=udevadm control --reload",
        f"ExecStart=udevadm trigger --action=add {match}".rstrip(), ""])
    rel = f"{SYSTEM_UNIT_DIR}/{udev_unit_name(name)}"
    link = f"{SYSTEM_UNIT_DIR}/sysinit.target.wants/{udev_unit_name(name)}"
    if os.path.lexists(root / link):
        raise TreeRuleError(f"units: {link} already exists in the staging tree", hint=_OURS)
    write_new(root, rel, unit, "units", _OURS)
    ensure_dirs(root, os.path.dirname(link), "units")
    os.symlink(f"../{udev_unit_name(name)}", root / link)
    LOG.info("unit activation: %s replays %s", udev_unit_name(name),
             ", ".join(subsystems) if subsystems else "every device")
    return [rel, link]
