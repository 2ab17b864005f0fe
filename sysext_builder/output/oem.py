"""``--oem-partition DIR``: the tree of Flatcar's OEM partition, for an OEM image.

Flatcar keeps its OEM extension on the OEM partition (GPT partition 6, label
``OEM``, mounted at ``/oem``), not in ``/var/lib/extensions``::

    DIR/oem-release                  ID=<id>, VERSION_ID=<version>, NAME, ... (oem-common)
    DIR/grub.cfg                     the OEM's GRUB settings (oem-common)
    DIR/sysext/oem-<id>-<version>.raw  the image (squashfs or erofs)
    DIR/sysext/active-oem-<id>       empty flag: link the image at boot (not with --no-activate)

Early in boot an activation helper reads ``ID=`` from ``/oem/oem-release`` and,
when the flag exists, links ``/etc/extensions/oem-<id>.raw`` to a versioned
image.  The id and the version are never guessed: both come from the
``oem-release`` the OEM elements wrote beside the image (``DIB_OEM_ID``, and
``DIB_OEM_VERSION`` or the target's ``VERSION_ID`` or ``SYSEXT_LEVEL``), so the
file name and ``oem-release`` agree by construction.  The image must be named
``oem-<id>``: its ``extension-release.oem-<id>`` must match the name of the link.

Placing is atomic in the sense of :mod:`.atomic`: everything is staged under
hidden temporary names and renamed together with the build's other outputs.
A DIR that does not exist appears whole (one rename of a tree built beside
it); in an existing DIR each file the build writes replaces its old copy by
rename (the image first, the flag last) and nothing else is touched, so an
update adds ``oem-<id>-<new>.raw`` beside the older versions.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sysext_builder.config import BuildConfig
from sysext_builder.errors import OutputError, UsageError
from sysext_builder.fileutil import sha256_file

LOG = logging.getLogger(__name__)

SIDE_FILES = ("oem-release", "grub.cfg")
#: what may stand in a file name of the partition (os-release ID and VERSION_ID syntax)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_HINT_OEM = "build an OEM element (azure-oem, qemu-oem, ...: they set DIB_OEM_ID)"


class Outputs(Protocol):
    """What this module needs of :class:`.place.Outputs` (which imports this module)."""

    def reserve_at(self, final: Path) -> Path: ...

    def temp_of(self, final: Path) -> Path: ...


@dataclass
class Partition:
    """What :func:`stage_partition` staged: the final paths and the manifest record."""

    files: list[Path] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


def image_file(oem_id: str, version: str) -> str:
    return f"sysext/oem-{oem_id}-{version}.raw"


def flag_file(oem_id: str) -> str:
    return f"sysext/active-oem-{oem_id}"


def check_request(config: BuildConfig, suffixes: Sequence[str]) -> None:
    """Before any work: the flags make sense and a ``.raw`` format is built."""
    if config.oem_no_activate and config.oem_partition is None:
        raise UsageError("--no-activate only applies to --oem-partition DIR")
    if config.oem_partition is not None and ".raw" not in suffixes:
        raise UsageError("--oem-partition needs an image file: no .raw format is built",
                         hint="add -t squashfs (or erofs)")


def _read_oem_release(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (one level of quotes removed); enough for ID and VERSION_ID,
    whose values are checked against :data:`_NAME_RE` after."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"--oem-partition: cannot read {path}: {exc}") from exc
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            fields[key] = value
    return fields


def oem_identity(artifacts: Mapping[str, Path], name: str) -> tuple[str, str]:
    """``(id, version)`` of the OEM image ``name`` from its ``oem-release`` artifact."""
    if "oem-release" not in artifacts:
        raise UsageError(f"--oem-partition: {name} is not an OEM image: no oem-release was "
                         f"written (DIB_OEM_ID is not set)", hint=_HINT_OEM)
    fields = _read_oem_release(artifacts["oem-release"])
    for key, variable in (("ID", "DIB_OEM_ID"), ("VERSION_ID", "DIB_OEM_VERSION")):
        value = fields.get(key, "")
        if not value:
            raise UsageError(f"--oem-partition: oem-release has no {key} (set {variable})",
                             hint=_HINT_OEM if key == "ID" else
                             "or build for a target version (--os-version-id, --base)")
        if not _NAME_RE.match(value):
            raise UsageError(f"--oem-partition: oem-release {key}={value!r} cannot name "
                             f"a file on the partition",
                             hint="use letters, digits and . _ + ~ - only")
    oem_id, version = fields["ID"], fields["VERSION_ID"]
    if name != f"oem-{oem_id}":
        raise UsageError(f"--oem-partition: the image is named {name!r}, but Flatcar "
                         f"activates it as oem-{oem_id}.raw (oem-release ID={oem_id})",
                         hint=f"leave NAME out of -o (or use -o DIR/oem-{oem_id})")
    if "grub.cfg" not in artifacts:
        raise UsageError("--oem-partition: no grub.cfg was written beside the image",
                         hint="oem-common's finalise.d/80-oem-common-side-files writes it")
    return oem_id, version


def _put(source: Path | None, dest: Path) -> None:
    """``dest`` as a hard link of (or else a copy of) ``source``; empty without one."""
    if source is None:
        dest.write_bytes(b"")
    else:
        try:
            os.link(source, dest)
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
        shutil.copyfile(source, dest)
    dest.chmod(0o644)


def _stage(directory: Path, files: Mapping[str, Path | None], out: Outputs) -> None:
    """Stage ``files`` (path in the partition -> source, None for an empty file) into
    ``out``: a missing directory as one tree, else file by file in the given order
    (a missing ``sysext/`` as one tree after the side files: the flag never
    appears without its image)."""
    if not os.path.lexists(directory):
        directory.parent.mkdir(parents=True, exist_ok=True)
        tree = out.reserve_at(directory)
        for rel, source in files.items():
            (tree / rel).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            _put(source, tree / rel)
        tree.chmod(0o755)
        return
    sysext = directory / "sysext"
    for path in (directory, sysext):
        if os.path.lexists(path) and not path.is_dir():
            raise OutputError(f"--oem-partition: {path} exists and is not a directory",
                              hint="point --oem-partition at the OEM partition's top directory")
    if os.path.lexists(sysext):
        for rel, source in files.items():
            _put(source, out.reserve_at(directory / rel))
        return
    for rel, source in files.items():
        if not rel.startswith("sysext/"):
            _put(source, out.reserve_at(directory / rel))
    _stage(sysext, {rel.removeprefix("sysext/"): source for rel, source in files.items()
                    if rel.startswith("sysext/")}, out)


def _record(rel: str, source: Path | None, raw: Mapping[str, Any]) -> dict[str, Any]:
    if rel.endswith(".raw"):  # hashed once already, when it was packed
        return {"path": rel, "size": raw["size"], "sha256": raw["sha256"]}
    if source is None:
        return {"path": rel, "size": 0, "sha256": _EMPTY_SHA256}
    return {"path": rel, "size": source.stat().st_size, "sha256": sha256_file(source)}


def stage_partition(config: BuildConfig, name: str, images: Sequence[Mapping[str, Any]],
                    artifacts: Path, out: Outputs) -> Partition:
    """Stage the partition tree into ``out`` (committed with the other outputs).

    ``images`` is :func:`.place.pack_images`'s metadata; ``artifacts`` the
    directory of the files the hooks placed beside the image.  Without
    ``--oem-partition`` nothing happens.
    """
    directory = config.oem_partition
    if directory is None:
        return Partition()
    side = {n: artifacts / n for n in SIDE_FILES if (artifacts / n).is_file()}
    oem_id, version = oem_identity(side, name)
    raw = next((img for img in images if str(img["file"]).endswith(".raw")), None)
    if raw is None or not out.temp_of(raw["path"]).is_file():
        raise UsageError("--oem-partition needs an image file: no .raw format was built",
                         hint="add -t squashfs (or erofs)")
    files: dict[str, Path | None] = {image_file(oem_id, version): out.temp_of(raw["path"]),
                                     "oem-release": side["oem-release"],
                                     "grub.cfg": side["grub.cfg"]}
    flag = flag_file(oem_id)
    if config.oem_no_activate:
        if os.path.lexists(directory / flag):
            LOG.info("--no-activate: %s exists and is kept (it was not written by this build)",
                     directory / flag)
    else:
        files[flag] = None
    _stage(directory, files, out)
    recorded = [_record(rel, src, raw) for rel, src in sorted(files.items())]
    LOG.info("OEM partition %s: %s", directory, ", ".join(sorted(files)))
    return Partition(files=[directory / rel for rel in files],
                     record={"oem_partition": {"id": oem_id, "version": version,
                                               "activated": flag in files,
                                               "files": recorded}})
