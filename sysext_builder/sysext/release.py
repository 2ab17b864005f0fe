"""extension-release: the identity an image declares, validated and rendered.

systemd-sysext matches ``usr/lib/extension-release.d/extension-release.NAME``
against the host's os-release (see :mod:`.compat`).  This module builds that
file from the target's os-release and explicit settings:

* :func:`identity_from` merges an os-release mapping with explicit values
  (explicit wins; an explicit empty string drops an inherited value) and
  validates every field by os-release(5) rules;
* :func:`render_extension_release` writes the fields in a fixed order;
* :func:`systemd_arch` / :func:`valid_arch` speak systemd's architecture names
  (``x86-64``, ``arm64``..., from systemd's ``src/basic/architecture.c``);
* :func:`validate_image_name` refuses names systemd could never match with the
  release file (see :func:`.compat.release_name_ok` for the matching rule).
"""

from __future__ import annotations

import logging
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sysext_builder.errors import ReleaseError
from sysext_builder.sysext import osrelease

LOG = logging.getLogger(__name__)

RELEASE_DIR = "usr/lib/extension-release.d"
RELEASE_PREFIX = "extension-release."

#: Every architecture name systemd knows (architecture_table in architecture.c).
# systemd compares ARCHITECTURE= verbatim with these names, so an image carrying
# uname's x86_64 or Debian's amd64 is never merged anywhere.
ARCHITECTURES: frozenset[str] = frozenset({
    "alpha", "arc", "arc-be", "arm", "arm-be", "arm64", "arm64-be", "cris", "ia64",
    "loongarch64", "m68k", "mips", "mips-le", "mips64", "mips64-le", "nios2", "parisc",
    "parisc64", "ppc", "ppc-le", "ppc64", "ppc64-le", "riscv32", "riscv64", "s390", "s390x",
    "sh", "sh64", "sparc", "sparc64", "tilegx", "x32", "x86", "x86-64",
})

#: uname -m (and a few Debian spellings) -> systemd's name.
_MACHINE_TO_ARCH: dict[str, str] = {
    "x86_64": "x86-64", "amd64": "x86-64", "i386": "x86", "i486": "x86", "i586": "x86",
    "i686": "x86", "aarch64": "arm64", "aarch64_be": "arm64-be", "alpha": "alpha",
    "arceb": "arc-be", "crisv32": "cris", "ppc64le": "ppc64-le", "ppc64el": "ppc64-le",
    "ppcle": "ppc-le", "mipsel": "mips-le", "mips64el": "mips64-le", "sh5": "sh64",
    "sh4a": "sh", "sh4": "sh", "sh3": "sh", "sh2a": "sh", "sh2": "sh", "armhf": "arm",
    "armel": "arm",
}
_ARM_RE = re.compile(r"^armv[4-8][a-z]*$")

# system: the booted host; initrd: systemd-sysext run in the initrd; portable:
# extensions of portable services (portablectl attach --extension).
SCOPES = ("system", "portable", "initrd")

#: Fields the Identity owns; ``extra`` may not repeat them.
CORE_KEYS = frozenset({"ID", "VERSION_ID", "SYSEXT_LEVEL", "ARCHITECTURE", "SYSEXT_SCOPE",
                       "EXTENSION_RELOAD_MANAGER"})

# os-release(5) character sets.  systemd itself never validates these fields, it only
# compares strings; VERSION_ID/SYSEXT_LEVEL also let upper case through for that reason.
_ID_RE = re.compile(r"[a-z0-9._-]+")
_VERSION_RE = re.compile(r"[a-zA-Z0-9._-]+")
_MAX_NAME = 255 - len(RELEASE_PREFIX)  # NAME_MAX for "extension-release.NAME"


def systemd_arch(machine: str | None = None) -> str:
    """systemd's spelling of a ``uname -m`` machine (default: this host's)."""
    raw = machine if machine is not None else platform.machine()
    if raw in ARCHITECTURES:
        if raw.startswith("mips") and machine is None and sys.byteorder == "little":
            return raw + "-le"  # uname says "mips64" for both byte orders
        return raw
    if raw in _MACHINE_TO_ARCH:
        return _MACHINE_TO_ARCH[raw]
    if _ARM_RE.match(raw):
        return "arm-be" if raw.endswith("b") else "arm"
    if raw == "riscv":
        return "riscv64" if sys.maxsize > 2**32 else "riscv32"
    raise ReleaseError(f"unknown machine architecture {raw!r}",
                       hint="give the architecture in systemd's spelling, e.g. x86-64 or arm64")


def valid_arch(arch: str) -> bool:
    """True for systemd's architecture names and ``_any``."""
    return arch == "_any" or arch in ARCHITECTURES


@dataclass(frozen=True)
class Identity:
    """What an extension declares about the OS it extends (and about itself)."""

    id: str
    version_id: str | None = None
    sysext_level: str | None = None
    architecture: str | None = None
    scope: str | None = None
    reload_manager: bool = False
    extra: tuple[tuple[str, str], ...] = ()


def _pick(explicit: str | None, os_release: Mapping[str, str], key: str) -> str | None:
    value = explicit if explicit is not None else os_release.get(key)
    # systemd treats KEY= like a missing KEY, so an empty field is never written
    return value or None  # "" means: not set


def identity_from(os_release: Mapping[str, str] | None, *, id: str | None = None,
                  version_id: str | None = None, sysext_level: str | None = None,
                  architecture: str | None = None, scope: str | None = None,
                  extra: Iterable[tuple[str, str]] = (),
                  reload_manager: bool = False) -> Identity:
    """Build and validate an :class:`Identity`.

    Explicit arguments override the os-release values of ``ID``, ``VERSION_ID``
    and ``SYSEXT_LEVEL``; an explicit ``""`` drops the inherited value.
    """
    base: Mapping[str, str] = os_release or {}
    os_id = _pick(id, base, "ID")
    if os_id is None:
        raise ReleaseError("no target OS ID for extension-release (ID is required)",
                           hint="give --os-id ID (or _any) or --os-release FILE of the target")
    normalised_scope = " ".join(scope.split()) if scope is not None else None
    identity = Identity(
        id=os_id,
        version_id=_pick(version_id, base, "VERSION_ID"),
        sysext_level=_pick(sysext_level, base, "SYSEXT_LEVEL"),
        architecture=architecture or None,
        scope=normalised_scope,
        reload_manager=reload_manager,
        extra=tuple((k, v) for k, v in extra),
    )
    validate_identity(identity)
    if identity.id != "_any" and not (identity.version_id or identity.sysext_level):
        LOG.warning("extension-release has ID=%s but neither VERSION_ID nor SYSEXT_LEVEL: "
                    "only hosts without both (rolling releases) will accept it", identity.id)
    return identity


def validate_identity(identity: Identity) -> None:
    """Raise :class:`ReleaseError` naming the first invalid field."""
    if not _ID_RE.fullmatch(identity.id):
        raise ReleaseError(f"invalid ID {identity.id!r} for extension-release",
                           hint="os-release IDs are lower case a-z, 0-9, '.', '_', '-' (or _any)")
    for key, value in (("VERSION_ID", identity.version_id),
                       ("SYSEXT_LEVEL", identity.sysext_level)):
        if value is not None and not _VERSION_RE.fullmatch(value):
            raise ReleaseError(f"invalid {key} {value!r} for extension-release",
                               hint="use letters, digits, '.', '_', '-' and no spaces")
    _check_arch(identity.architecture)
    _check_scope(identity.scope)
    _check_extra(identity.extra)


def _check_arch(arch: str | None) -> None:
    if arch is None or valid_arch(arch):
        return
    try:
        hint = f"did you mean {systemd_arch(arch)!r}? systemd spells architectures its own way"
    except ReleaseError:
        hint = "one of: _any, " + ", ".join(sorted(ARCHITECTURES))
    raise ReleaseError(f"invalid ARCHITECTURE {arch!r} for extension-release", hint=hint)


def _check_scope(scope: str | None) -> None:
    if scope is None:
        return
    words = scope.split()
    bad = [w for w in words if w not in SCOPES]
    if not words or bad:
        detail = f" (unknown: {' '.join(bad)})" if bad else ""
        raise ReleaseError(f"invalid SYSEXT_SCOPE {scope!r}{detail}",
                           hint="a space-separated subset of: " + " ".join(SCOPES))


def _check_extra(extra: tuple[tuple[str, str], ...]) -> None:
    seen: set[str] = set()
    for key, value in extra:
        if key in CORE_KEYS:
            raise ReleaseError(f"extra extension-release field {key} duplicates a core field",
                               hint="set it through its own option instead")
        if key in seen:
            raise ReleaseError(f"extra extension-release field {key} given twice")
        seen.add(key)
        osrelease.validate_value(key, value)


def release_fields(identity: Identity) -> dict[str, str]:
    """The fields of :func:`render_extension_release`, in file order."""
    validate_identity(identity)
    # The order is fixed so the same identity always renders to the same bytes
    # (reproducible images); systemd itself does not care about order.
    fields = {"ID": identity.id}
    if identity.version_id:
        fields["VERSION_ID"] = identity.version_id
    if identity.sysext_level:
        fields["SYSEXT_LEVEL"] = identity.sysext_level
    if identity.architecture:
        fields["ARCHITECTURE"] = identity.architecture
    if identity.scope:
        fields["SYSEXT_SCOPE"] = identity.scope
    if identity.reload_manager:
        # systemd >= 255 daemon-reloads after merging; 252 ignores the field
        fields["EXTENSION_RELOAD_MANAGER"] = "1"
    fields.update(identity.extra)
    return fields


def render_extension_release(identity: Identity) -> str:
    """The text of ``extension-release.NAME`` for ``identity``."""
    return osrelease.render(release_fields(identity))


def validate_image_name(name: str) -> None:
    """Refuse image names systemd cannot match with ``extension-release.NAME``.

    The image is installed as ``NAME.raw`` (or a directory ``NAME``); systemd
    252 strips ``.raw``, systemd >= 256 also strips ``.sysext.raw`` and cuts the
    name at the first ``_`` or ``+`` (version suffixes), so such names would
    match on one version and not on the other.
    """
    problem = _name_problem(name)
    if problem is not None:
        raise ReleaseError(f"invalid image name {name!r}: {problem}",
                           hint="use letters, digits, '-' and '.', e.g. -o out/oem-azure")


def _name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if "/" in name:
        return "it contains '/'"
    if name.startswith("."):
        return "it starts with '.'"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "it contains control characters"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if size > _MAX_NAME:
        return f"it is longer than {_MAX_NAME} bytes"
    # NAME.sysext would be installed as NAME.sysext.raw: 256 strips the whole
    # suffix and looks for extension-release.NAME, 252 for extension-release.NAME.sysext.
    for suffix in (".raw", ".sysext", ".confext"):
        if name.endswith(suffix):
            return f"it ends in {suffix!r} (give the name without suffix)"
    for char in "_+":
        if char in name:
            return f"it contains {char!r} (systemd >= 256 cuts the name there)"
    return None


def release_path(name: str) -> str:
    """Path of the extension-release file for image ``name``, relative to the root."""
    validate_image_name(name)
    return f"{RELEASE_DIR}/{RELEASE_PREFIX}{name}"
