"""Read the extension-release out of a built image, without root.

* squashfs: ``unsquashfs -d TMP -u IMAGE usr/lib/extension-release.d
  usr/lib/os-release`` extracts just those paths (with user xattrs, so the
  ``user.extension-release.strict`` flag can be seen);
* erofs: ``fsck.erofs --extract=TMP --no-preserve IMAGE`` (erofs-utils 1.5 can
  neither extract one path nor print a file, so the whole image is unpacked
  into a temporary directory; it does not restore xattrs either);
* directory: read in place.

The extension-release file is chosen as systemd does: the one whose suffix
matches the image name (:func:`.compat.release_name_ok`), else the single
one flagged ``user.extension-release.strict=false``.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sysext_builder import runner, treeread
from sysext_builder.errors import ImageError
from sysext_builder.sysext import osrelease
from sysext_builder.sysext.compat import image_name, release_name_ok

LOG = logging.getLogger(__name__)

RELEASE_DIR = "usr/lib/extension-release.d"
RELEASE_PREFIX = "extension-release."
OS_RELEASE = "usr/lib/os-release"
STRICT_XATTR = "user.extension-release.strict"
#: systemd's parse_boolean() false spellings
# (compared case-insensitively there too; a missing or unparsable value means strict)
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})

# Magic numbers: squashfs at offset 0, the erofs superblock at 1024, a GPT header in
# LBA 1 (512), the ext2/3/4 magic 56 bytes into the superblock at 1024.
_SQUASHFS_MAGIC = b"hsqs"
_EROFS_MAGIC = struct.pack("<I", 0xE0F5E1E2)
_EROFS_OFFSET = 1024
_GPT_MAGIC = b"EFI PART"
_EXT_MAGIC = struct.pack("<H", 0xEF53)


@dataclass(frozen=True)
class ExtensionImage:
    """What an image says about itself."""

    path: Path
    #: ``squashfs``, ``erofs`` or ``directory``
    kind: str
    #: the name systemd derives from the file name (e.g. ``hello`` for ``hello.raw``)
    name: str
    #: the extension-release file used, e.g. ``extension-release.hello``
    release_file: str
    fields: dict[str, str]
    #: every ``extension-release.*`` file in the image, sorted
    present: tuple[str, ...]
    #: True when the name did not match and the strict=false xattr selected the file
    relaxed: bool = False
    #: the image ships usr/lib/os-release (systemd refuses such an extension)
    has_os_release: bool = False


def detect_kind(path: Path) -> str:
    """``directory``, ``squashfs`` or ``erofs``; :class:`ImageError` otherwise."""
    if path.is_dir():
        return "directory"
    try:
        with open(path, "rb") as handle:
            head = handle.read(_EROFS_OFFSET + 64)
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file or directory") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from exc
    if head[:4] == _SQUASHFS_MAGIC:
        return "squashfs"
    if head[_EROFS_OFFSET:_EROFS_OFFSET + 4] == _EROFS_MAGIC:
        return "erofs"
    if head[512:520] == _GPT_MAGIC:
        raise ImageError(f"{path}: a GPT disk image; only squashfs, erofs and directory "
                         "images can be read", hint=f"inspect it with: systemd-dissect {path}")
    if head[1080:1082] == _EXT_MAGIC:
        raise ImageError(f"{path}: an ext2/3/4 image; only squashfs, erofs and directory "
                         "images can be read without root")
    raise ImageError(f"{path}: not a squashfs, erofs or directory image")


def _tool_error(path: Path, exc: runner.CommandFailed) -> ImageError:
    return ImageError(f"{path}: cannot read the image: {exc.message}", hint=exc.hint)


def _extract_squashfs(path: Path, view: Path) -> None:
    tool = runner.require_tool("unsquashfs")
    base = [tool, "-no-progress", "-quiet", "-d", str(view)]
    wanted = [str(path), RELEASE_DIR, OS_RELEASE]
    # -user-xattrs: only user.* (where the strict flag lives), which non-root may set;
    # restoring trusted.* or security.* would fail without root
    done = runner.run([*base, "-user-xattrs", *wanted], check=False)
    if done.returncode == 0:
        return
    LOG.debug("unsquashfs with xattrs failed (%s); retrying without", done.stderr.strip())
    if view.exists():
        shutil.rmtree(view)
    try:
        runner.run([*base, "-no-xattrs", *wanted])
    except runner.CommandFailed as exc:
        raise _tool_error(path, exc) from exc


def _extract_erofs(path: Path, view: Path) -> None:
    tool = runner.require_tool("fsck.erofs")
    LOG.debug("fsck.erofs can only extract whole images; unpacking %s", path)
    try:
        # --no-preserve: do not try to restore owners and modes (needs root)
        runner.run([tool, f"--extract={view}", "--no-preserve", str(path)])
    except runner.CommandFailed as exc:
        raise _tool_error(path, exc) from exc


def _is_relaxed(path: Path) -> bool:
    try:
        value = os.getxattr(path, STRICT_XATTR)
    except OSError:
        return False
    return value.decode("utf-8", "replace").strip().lower() in _FALSE


def _inside(view: Path, rel: str) -> Path:
    """``view/rel`` with one level of symlink resolved inside ``view``."""
    candidate = view / rel
    if candidate.is_symlink():
        target = os.readlink(candidate)
        base = view if target.startswith("/") else candidate.parent
        candidate = Path(os.path.normpath(base / target.lstrip("/")))
        try:
            candidate.relative_to(view)
        except ValueError as exc:
            raise ImageError(f"{rel} is a symlink leaving the image") from exc
    if candidate.is_symlink() or not candidate.is_file():
        raise ImageError(f"{rel} is not a regular file (or a symlink to one)")
    return candidate


def _choose(image: Path, view: Path, present: list[str],
            systemd_version: int, directory: bool) -> tuple[str, bool]:
    # systemd's open_extension_release(): the exact name first; only when that file is
    # missing, the one file whose strict xattr is false.  Two such files are an error
    # there (ENOTUNIQ), not a choice.
    for entry in present:
        if release_name_ok(image.name, entry[len(RELEASE_PREFIX):], systemd_version,
                           directory=directory):
            return entry, False
    relaxed = [e for e in present if _is_relaxed(view / RELEASE_DIR / e)]
    if len(relaxed) == 1:
        LOG.info("%s: name does not match; using %s (%s=false)", image.name, relaxed[0],
                 STRICT_XATTR)
        return relaxed[0], True
    name = image_name(image.name, systemd_version, directory=directory)
    if len(relaxed) > 1:
        raise ImageError(f"{image.name}: no extension-release.{name} and several files "
                         f"flagged {STRICT_XATTR}=false: {', '.join(relaxed)}")
    hint = f"systemd {systemd_version} looks for {RELEASE_DIR}/{RELEASE_PREFIX}{name}"
    if len(present) == 1:
        hint += f"; rename the image to {present[0][len(RELEASE_PREFIX):]}" + \
            (".raw" if image.name.endswith(".raw") else "")
    raise ImageError(f"{image.name}: no extension-release for image name {name!r}; "
                     f"the image has: {', '.join(present)}", hint=hint)


def _read_view(image: Path, kind: str, view: Path, systemd_version: int) -> ExtensionImage:
    release_dir = view / RELEASE_DIR
    try:
        present = sorted(e for e in os.listdir(release_dir) if e.startswith(RELEASE_PREFIX)) \
            if release_dir.is_dir() and not release_dir.is_symlink() else []
    except OSError as exc:
        raise ImageError(f"{image.name}: cannot list {RELEASE_DIR}: {exc.strerror}") from exc
    if not present:
        raise ImageError(f"{image.name}: no {RELEASE_DIR}/{RELEASE_PREFIX}* in the image; "
                         "not a system extension")
    directory = kind == "directory"
    chosen, relaxed = _choose(image, view, present, systemd_version, directory)
    rel = f"{RELEASE_DIR}/{chosen}"
    try:
        path = _inside(view, rel)
        data = treeread.read_regular(path, osrelease.MAX_BYTES)
        text = osrelease.decode(data, f"{image.name}:{rel}")
    except ImageError as exc:
        raise ImageError(f"{image.name}: {exc.message}") from exc
    except treeread.ReadRefused as exc:
        raise ImageError(f"{image.name}: cannot read {rel}: {exc}") from exc
    except OSError as exc:
        raise ImageError(f"{image.name}: cannot read {rel}: {exc.strerror}") from exc
    fields = osrelease.parse(text, f"{image.name}:{rel}", systemd_version=systemd_version)
    return ExtensionImage(path=image, kind=kind,
                          name=image_name(image.name, systemd_version, directory=directory),
                          release_file=chosen, fields=fields, present=tuple(present),
                          relaxed=relaxed, has_os_release=os.path.lexists(view / OS_RELEASE))


def read_extension(image: Path, *, systemd_version: int = 252) -> ExtensionImage:
    """Read ``image``'s extension-release as systemd ``systemd_version`` would find it.

    Raises :class:`ImageError` if the image cannot be read, carries no
    extension-release, or none matches its name (the message lists the files
    present); :class:`ReleaseError` if the file is malformed;
    :class:`ToolMissingError` if unsquashfs/fsck.erofs are missing.
    """
    image = Path(os.path.abspath(image))
    kind = detect_kind(image)
    if kind == "directory":
        return _read_view(image, kind, image, systemd_version)
    with tempfile.TemporaryDirectory(prefix="sysext-check-") as scratch:
        view = Path(scratch) / "view"
        if kind == "squashfs":
            _extract_squashfs(image, view)
        else:
            _extract_erofs(image, view)
        return _read_view(image, kind, view, systemd_version)
