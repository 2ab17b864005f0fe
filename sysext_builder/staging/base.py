"""The target OS a build extends (``--base``): opening it read-only.

A base is a directory tree, a tarball (``.tar``, ``.tar.gz``/``.tgz``,
``.tar.xz``, ``.tar.zst``) or a squashfs/erofs image.  Archives and images are
unpacked once into the cache, keyed by the sha256 of their content, and used
from there; a directory is used in place.  Either way the tree is only ever
mounted read-only as the lower layer of the build overlay, so a build (even
a failed or interrupted one) cannot change it.

A base may also be named: ``debian:RELEASE[/VARIANT][+PKG,...]`` is made once
with mmdebstrap into the cache and reused from there (:mod:`.debian`).
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from sysext_builder import runner
from sysext_builder.errors import BaseError, EnvironmentUnusableError, UsageError
from sysext_builder.fileutil import remove_tree, sha256_file
from sysext_builder.staging import debian
from sysext_builder.sysext import osrelease

LOG = logging.getLogger(__name__)

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.zst", ".tar.zstd")

#: ELF e_machine -> systemd architecture (little-endian unless noted)
_ELF_MACHINES = {3: "x86", 62: "x86-64", 40: "arm", 183: "arm64", 243: "riscv64",
                 22: "s390x", 258: "loongarch64"}


@dataclass(frozen=True)
class BaseTree:
    """An opened base: a directory that is never written.

    ``source`` is what ``--base`` named: a path, or a named base's normalised spec.
    """

    source: Path | str
    path: Path
    os_release: dict[str, str]
    architecture: str | None


def kind_of(source: Path) -> str:
    """``directory``, ``tar``, ``squashfs`` or ``erofs``."""
    if source.is_dir():
        return "directory"
    if not source.is_file():
        raise UsageError(f"--base {source}: no such file or directory")
    if source.name.endswith(_TAR_SUFFIXES):
        return "tar"
    with source.open("rb") as f:
        head = f.read(1028)
    if head[:4] == b"hsqs":
        return "squashfs"
    if len(head) >= 1028 and head[1024:1028] == b"\xe2\xe1\xf5\xe0":
        return "erofs"
    raise UsageError(f"--base {source}: not a directory, tarball, squashfs or erofs image",
                     hint="tarballs must end in " + ", ".join(_TAR_SUFFIXES))


def elf_architecture(path: Path) -> str | None:
    """systemd architecture of an ELF executable (``None`` if unknown)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    little = header[5] == 1
    (machine,) = struct.unpack("<H" if little else ">H", header[18:20])
    if machine == 21:  # PPC64
        return "ppc64-le" if little else "ppc64"
    return _ELF_MACHINES.get(machine)


def _resolve_inside(root: Path, rel: str) -> Path:
    """Follow symlinks of ``rel`` as if ``root`` were ``/`` (bases use absolute links)."""
    current = root
    parts = [p for p in rel.split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = current / part
        if candidate.is_symlink() and hops < 40:
            hops += 1
            target = os.readlink(candidate)
            parts = [p for p in target.split("/") if p] + parts
            current = root if target.startswith("/") else current
            continue
        current = candidate
    return current


def _unpack(source: Path, kind: str, dest: Path) -> None:
    dest.mkdir(parents=True)
    if kind == "tar":
        runner.require_tool("tar")
        argv = ["tar", "--numeric-owner", "-xpf", str(source), "-C", str(dest)]
        if source.name.endswith((".tar.zst", ".tar.zstd")):
            runner.require_tool("zstd")
            argv.insert(1, "--zstd")
    elif kind == "squashfs":
        runner.require_tool("unsquashfs")
        argv = ["unsquashfs", "-no-progress", "-quiet", "-f", "-d", str(dest), str(source)]
    else:
        runner.require_tool("fsck.erofs")
        argv = ["fsck.erofs", f"--extract={dest}", str(source)]
    try:
        runner.run(argv, what=f"unpacking {source.name}")
    except runner.CommandFailed as exc:
        raise BaseError(f"--base {source}: the {kind} archive does not unpack (corrupt, "
                        f"truncated or empty?): {argv[0]} {runner.describe_status(exc.returncode)}"
                        + (f": {exc.cause}" if exc.cause else ""), hint=exc.hint) from exc


def _unpacked(source: Path, kind: str, cache_dir: Path) -> Path:
    """``source`` unpacked in the cache (hold the cache lock): made once per content
    under a temporary name a later build removes if this one is killed."""
    digest = sha256_file(source)
    final = cache_dir / f"{digest[:32]}-{kind}"
    if final.is_dir():
        LOG.info("base %s: using the unpacked copy %s", source, final)
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    runner.remove_stale_temps(cache_dir)
    tmp = cache_dir / f".{final.name}.tmp-{runner.temp_tag()}"
    LOG.info("base %s: unpacking into the cache (once per content)", source)
    try:
        _unpack(source, kind, tmp)
        os.rename(tmp, final)
    except BaseException:
        remove_tree(tmp)
        raise
    return final


#: top-level directories of a base that must be directories, not links: the
#: build overlay writes through them and the image is made of them
_REAL_DIRECTORIES = ("usr", "etc", "opt")


def _check_top_level(label: Path | str, tree: Path) -> None:
    for name in _REAL_DIRECTORIES:
        path = tree / name
        if path.is_symlink():
            raise BaseError(f"--base {label}: {name} is a symlink (to {os.readlink(path)!r}), "
                            "not a directory",
                            hint=f"a base's /{name} must be a directory of the OS tree itself")


def open_base(source: Path | str, cache_dir: Path) -> BaseTree:
    """Open ``source`` as a base; ``cache_dir`` holds unpacked archives/images and
    named bases (``debian:...``, made there on first use)."""
    named = debian.parse(str(source))
    if os.geteuid() != 0:
        what = f"--base {named.spec}" if named else "--base"
        made = " (and makes a named base with mmdebstrap --mode=root)" if named else ""
        raise EnvironmentUnusableError(
            f"building against {what} needs root",
            hint=f"the build mounts an overlay over the base in a private mount namespace"
                 f"{made}; run as root (e.g. sudo)")
    if named is not None:
        label: Path | str = named.spec
        tree = debian.cached_tree(named, cache_dir)
    else:
        label = Path(source)
        kind = kind_of(label)
        tree = label.absolute() if kind == "directory" else _unpacked(label, kind, cache_dir)
    _check_top_level(label, tree)
    fields = osrelease.read_root(tree)
    if fields is None:
        raise BaseError(f"--base {label}: no etc/os-release or usr/lib/os-release in it",
                        hint="a base must be a complete OS tree (an empty archive is not)")
    arch = elf_architecture(_resolve_inside(tree, "bin/sh"))
    LOG.info("base %s: %s %s (%s)", label, fields.get("ID", "?"),
             fields.get("VERSION_ID", fields.get("SYSEXT_LEVEL", "")), arch or "unknown arch")
    return BaseTree(source=label, path=tree, os_release=fields, architecture=arch)
