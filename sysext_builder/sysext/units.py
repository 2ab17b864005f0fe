"""Unit declarations: which shipped units the extension enables, and how.

An element declares them in a file named ``units`` at its top level (hooks
may append to the file named by ``$SYSEXT_UNITS_FILE``).  Format, one
declaration a line::

    # comment (also after a declaration); blank lines are ignored
    enable UNIT [TARGET]
    upholds UNIT [TARGET]
    once UNIT [TARGET]

``enable``
    creates ``usr/lib/systemd/system/TARGET.wants/UNIT -> ../UNIT-FILE``.
    Without TARGET the targets are the unit file's ``[Install] WantedBy=``
    (all of them; ``RequiredBy=``, ``Also=``, ``Alias=`` are not followed).
``upholds``
    the same ``.wants`` link plus a drop-in
    ``usr/lib/systemd/system/TARGET.d/10-NAME-STEM.conf`` holding
    ``[Unit]`` / ``Upholds=UNIT``: a sysext is merged after the boot
    transaction was computed, and ``Upholds=`` makes the manager start the unit
    (and restart it) once it re-evaluates after the reload.  The ``.wants`` link
    alone counts only when something restarts TARGET (Flatcar's
    ``ensure-sysext.service`` does).  systemd 252 does not reload after a merge,
    so there both need such a unit in the base.
``once``
    the same ``.wants`` link plus a drop-in ``UNIT.d/10-NAME-once.conf`` that
    makes the service run once per version of the extension (a marker under
    ``/var/lib/NAME/once/``): see :mod:`.once`.

UNIT is a unit name (``waagent.service``); an instance ``glean@eth0.service``
uses the template file ``glean@.service`` when there is no file of its own; a
bare template ``foo@.service`` is enabled for its ``DefaultInstance=``.  The
unit file must be in the staging tree under ``usr/lib/systemd/system``.  Errors
in the file name ``FILE:LINE``; errors when applying name the declaration's
source the same way.

Shipping any unit means the manager must reload after the merge:
:func:`ships_units` tells the builder to set ``EXTENSION_RELOAD_MANAGER=1``
(honoured by systemd >= 255; without a reload the manager does not see the
image's ``.wants`` links and drop-ins).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sysext_builder import treeread
from sysext_builder.errors import ElementFormatError, TreeRuleError
from sysext_builder.sysext import once
from sysext_builder.sysext.tree import ensure_dirs, write_in

LOG = logging.getLogger(__name__)

SYSTEM_UNIT_DIR = "usr/lib/systemd/system"
USER_UNIT_DIR = "usr/lib/systemd/user"
VERBS = ("enable", "upholds", "once")
UNIT_TYPES = ("service", "socket", "device", "mount", "automount", "swap", "target", "path",
              "timer", "slice", "scope")
_UNIT_RE = re.compile(r"(?P<prefix>[A-Za-z0-9:_.\\-]+)(?:@(?P<instance>[A-Za-z0-9:_.\\@-]*))?"
                      r"\.(?P<type>" + "|".join(UNIT_TYPES) + r")")
#: the largest unit file read for its [Install] section
MAX_UNIT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UnitDecl:
    """One line of a ``units`` file."""

    verb: str  # one of VERBS
    unit: str
    target: str | None
    source: str  # "FILE:LINE"


def valid_unit_name(name: str) -> bool:
    return len(name) <= 255 and _UNIT_RE.fullmatch(name) is not None


def parse_units(path: Path) -> list[UnitDecl]:
    """Parse a ``units`` file; :class:`ElementFormatError` names FILE:LINE."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ElementFormatError(f"{path}: cannot read units file: {exc}") from exc
    decls = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        source = f"{path}:{lineno}"
        if words[0] not in VERBS or len(words) not in (2, 3):
            raise ElementFormatError(f"{source}: expected 'enable UNIT [TARGET]', "
                                     f"'upholds UNIT [TARGET]' or 'once UNIT [TARGET]', "
                                     f"got {raw.strip()!r}")
        for name in words[1:]:
            if not valid_unit_name(name):
                raise ElementFormatError(f"{source}: {name!r} is not a unit name",
                                         hint="e.g. waagent.service or multi-user.target")
        target = words[2] if len(words) == 3 else None
        decls.append(UnitDecl(verb=words[0], unit=words[1], target=target, source=source))
    return decls


def _install_section(text: str) -> dict[str, list[str]]:
    """``[Install]`` keys of a unit file; list-valued keys accumulate, "" resets."""
    values: dict[str, list[str]] = {}
    section = ""
    pending = ""
    # systemd.syntax(7): "#"/";" comment lines, a trailing backslash continues the
    # line, and an empty assignment (WantedBy=) resets a list-valued setting.
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Install" and "=" in line:
            key, _, value = line.partition("=")
            words = value.split()
            values[key.strip()] = values.get(key.strip(), []) + words if words else []
    return values


def _read_in_root(root: Path, path: Path, source: str) -> str:
    """Read ``path`` resolving symlinks against ``root``, not the build host.

    A unit file may be a link with an absolute target (``/usr/lib/...``), which
    means the image's file, never the one of the machine running the build.
    Only a regular file of at most :data:`MAX_UNIT_BYTES` is read
    (:func:`sysext_builder.treeread.read_in_root`): a fifo or a link to
    ``/dev/zero`` is a one-line error, never a hang.
    """
    rel = os.path.relpath(path, root)
    try:
        data = treeread.read_in_root(root, rel, MAX_UNIT_BYTES)
    except treeread.ReadRefused as exc:
        raise TreeRuleError(f"{source}: cannot read unit file: {exc}",
                            hint="unit files are regular files inside the staging tree") from None
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Resolved:
    name: str  # the unit to enable (an instance when the declaration named a template)
    file: str  # the file name under usr/lib/systemd/system the link points to
    targets: tuple[str, ...]


def _resolve(root: Path, decl: UnitDecl) -> _Resolved:
    unit_dir = root / SYSTEM_UNIT_DIR
    match = _UNIT_RE.fullmatch(decl.unit)
    if match is None:
        raise TreeRuleError(f"{decl.source}: {decl.unit!r} is not a unit name")
    instance = match.group("instance")
    template = f"{match.group('prefix')}@.{match.group('type')}" if instance is not None else None
    # As systemctl enable does: an instance without a file of its own is served by
    # the template, and its .wants link points at the template file.
    candidates = [decl.unit] + ([template] if template and instance else [])
    found = next((c for c in candidates if os.path.lexists(unit_dir / c)), None)
    if found is None:
        raise TreeRuleError(f"{decl.source}: unit file for {decl.unit} is not in the staging tree",
                            hint=f"install it as /{SYSTEM_UNIT_DIR}/{candidates[-1]}")
    install = _install_section(_read_in_root(root, unit_dir / found, decl.source))
    name = decl.unit
    if instance == "":
        default = install.get("DefaultInstance", [])
        if not default:
            raise TreeRuleError(f"{decl.source}: template {decl.unit} has no DefaultInstance=",
                                hint=f"name an instance, e.g. {match.group('prefix')}@NAME."
                                     f"{match.group('type')}")
        name = f"{match.group('prefix')}@{default[-1]}.{match.group('type')}"
    targets = (decl.target,) if decl.target else tuple(dict.fromkeys(install.get("WantedBy", [])))
    if not targets:
        raise TreeRuleError(f"{decl.source}: {decl.unit} has no [Install] WantedBy= and no "
                            f"target was given", hint=f"write '{decl.verb} {decl.unit} TARGET'")
    for target in targets:
        if not valid_unit_name(target):
            raise TreeRuleError(f"{decl.source}: target {target!r} of {decl.unit} is not a unit "
                                f"name (specifiers in WantedBy= are not supported)",
                                hint=f"write '{decl.verb} {decl.unit} TARGET'")
    return _Resolved(name=name, file=found, targets=targets)


def _place(root: Path, rel: str, *, link: str | None = None, text: str | None = None,
           source: str) -> bool:
    """Create the symlink or file ``rel``; False when an identical one exists."""
    path = root / rel
    ensure_dirs(root, os.path.dirname(rel), source)
    if os.path.lexists(path):
        if link is not None and path.is_symlink() and os.readlink(path) == link:
            return False
        if (text is not None and path.is_file() and not path.is_symlink()
                and path.read_text(encoding="utf-8", errors="replace") == text):
            return False
        raise TreeRuleError(f"{source}: {rel} already exists with other content",
                            hint="remove the conflicting file or declaration")
    if link is not None:
        os.symlink(link, path)
    else:
        write_in(root, rel, text or "", source)
    return True


def apply_units(root: Path, decls: Sequence[UnitDecl], name: str, *,
                fields: Mapping[str, str] | None = None) -> list[str]:
    """Create the ``.wants`` links and ``Upholds=``/once drop-ins; return created paths.

    ``name`` is the extension's name (it names the drop-ins); ``fields`` are
    its extension-release fields (a ``once`` declaration needs its version).
    Paths are relative to ``root``, in creation order, without duplicates.
    """
    created: list[str] = []
    for decl in decls:
        if decl.verb not in VERBS:
            raise TreeRuleError(f"{decl.source}: unknown verb {decl.verb!r}")
        resolved = _resolve(root, decl)
        version = ""
        if decl.verb == "once":  # checked before anything is created
            once.check(name, resolved.name, decl.source)
            version = once.version(fields, resolved.name, decl.source)
        for target in resolved.targets:
            # a relative link, like systemctl's, stays valid wherever the image is mounted
            rel = f"{SYSTEM_UNIT_DIR}/{target}.wants/{resolved.name}"
            if _place(root, rel, link=f"../{resolved.file}", source=decl.source):
                created.append(rel)
            if decl.verb == "upholds":
                stem = resolved.name.rsplit(".", 1)[0]
                # NAME in the file name keeps two extensions' drop-ins for one target
                # apart (a drop-in replaces any other of the same name)
                rel = f"{SYSTEM_UNIT_DIR}/{target}.d/10-{name}-{stem}.conf"
                text = f"[Unit]\nUpholds={resolved.name}\n"
                if _place(root, rel, text=text, source=decl.source):
                    created.append(rel)
        if decl.verb == "once":
            rel = f"{SYSTEM_UNIT_DIR}/{once.dropin_name(name, resolved.name)}"
            if _place(root, rel, text=once.dropin_text(name, resolved.name, version),
                      source=decl.source):
                created.append(rel)
    for rel in created:
        LOG.info("unit enabling: created %s", rel)
    return created


def ships_units(root: Path) -> bool:
    """True when the tree carries unit files, links or drop-ins for the manager."""
    suffixes = tuple("." + t for t in UNIT_TYPES)
    for rel in (SYSTEM_UNIT_DIR, USER_UNIT_DIR):
        top = root / rel
        if top.is_symlink() or not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            for file in files:
                if file.endswith(suffixes) or (dirpath.endswith(".d") and file.endswith(".conf")):
                    return True
    return False
