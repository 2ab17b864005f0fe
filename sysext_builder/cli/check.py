"""``sysext-check``: would systemd-sysext merge this image on that target?"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from sysext_builder.cli import common

PROG = "sysext-check"

DESCRIPTION = """\
Read the extension-release of IMAGE (a squashfs or erofs NAME.raw, or a
directory; no root needed) and check it as systemd-sysext would: the file
must be usr/lib/extension-release.d/extension-release.NAME where NAME is the
image's file name minus .raw, and its ID, VERSION_ID / SYSEXT_LEVEL,
ARCHITECTURE and SYSEXT_SCOPE must match the target's os-release.

Prints "compatible" or "incompatible: REASON".  The target is --os-release
FILE, or the os-release of --root DIR (etc/os-release, else
usr/lib/os-release), or by default this machine's.

--merge then really merges the image with systemd-sysext into a scratch root
carrying a copy of the target's os-release, inside a private mount namespace
(root only; the host is not touched), and lists the files that appeared
under usr/ and opt/.

Without IMAGE, --root DIR checks every image installed in DIR's extension
directories (etc/extensions, run/extensions, var/lib/extensions; before
systemd 254 also usr/local/lib/extensions and usr/lib/extensions) the way
one merge treats them: one line per entry (merged, skipped, shadowed by an
earlier one of the same name, ignored, or aborts: an image that makes
systemd-sysext refuse the whole merge), then what the merge would hold.
"""

EPILOG = """\
exit codes: 0 compatible (and merged), 2 usage, 22 a required tool is missing,
23 an os-release / extension-release file is malformed, 25 --merge without
root or without mount namespaces, 30 incompatible (or refused by
systemd-sysext; without IMAGE: some image skipped), 31 image unreadable,
without extension-release or with a name mismatch (without IMAGE: the whole
merge refused).
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, DESCRIPTION, EPILOG)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--os-release", metavar="FILE", type=Path,
                        help="the target's os-release file")
    target.add_argument("--root", metavar="DIR", type=Path,
                        help="the target's root directory (its etc/os-release, else "
                             "usr/lib/os-release)")
    p.add_argument("--merge", action="store_true",
                   help="also merge it for real with systemd-sysext in a private mount "
                        "namespace and list what appeared (needs root)")
    p.add_argument("--systemd-version", metavar="N", type=int,
                   help="the target's systemd version, for the name rule (>= 256 cuts the "
                        "name at '_' or '+'), ID_LIKE matching (see --id-like) and whether the "
                        "image's units start at boot without the host helper (>= 255) "
                        "(default: the --root's systemd package, else the version of "
                        "systemd-sysext here, else 252)")
    p.add_argument("--id-like", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the target's systemd-sysext accepts an extension whose ID is a "
                        "word of the host's ID_LIKE (default: yes for systemd >= 258 and for "
                        "Debian's systemd >= 257, which has it too; no for older ones)")
    p.add_argument("--arch", metavar="ARCH",
                   help="the target architecture in systemd's spelling, e.g. x86-64 or "
                        "arm64 (default: this machine's)")
    p.add_argument("--scope", choices=("system", "portable", "initrd"), default="system",
                   help="the scope the target uses the extension in (default: %(default)s)")
    p.add_argument("image", metavar="IMAGE", type=Path, nargs="?",
                   help="NAME.raw or a directory; without it, with --root, every image "
                        "installed in DIR's extension directories")
    return p


def _target(args: argparse.Namespace, version: int) -> tuple[str, dict[str, str]]:
    from sysext_builder.errors import ReleaseError
    from sysext_builder.sysext import osrelease

    if args.os_release is not None:
        return str(args.os_release), osrelease.read_file(args.os_release,
                                                         systemd_version=version)
    root = args.root if args.root is not None else Path("/")
    fields = osrelease.read_root(root, systemd_version=version)
    if fields is None:
        raise ReleaseError(f"{root}: neither etc/os-release nor usr/lib/os-release exists",
                           hint="give the target with --os-release FILE")
    return f"os-release of {root}", fields


def _arch(args: argparse.Namespace) -> str:
    from sysext_builder.errors import UsageError
    from sysext_builder.sysext import release

    if args.arch is None:
        return release.systemd_arch()
    if not release.valid_arch(args.arch) or args.arch == "_any":
        raise UsageError(f"unknown architecture {args.arch!r}",
                         hint="use systemd's spelling, e.g. x86-64, arm64, ppc64-le")
    return str(args.arch)


def _merge(image: Path, target: dict[str, str]) -> int:
    from sysext_builder.errors import IncompatibleError
    from sysext_builder.sysext import verify

    result = verify.merge(image, target)
    if not result.accepted:
        print(f"merge refused by systemd-sysext: {result.refusal()}")
        return IncompatibleError.exit_code
    print(f"merged: {len(result.appeared)} files appeared under usr/ and opt/")
    for path in result.appeared:
        print(f"  {path}")
    return 0


def _check_installed(args: argparse.Namespace, target: dict[str, str], version: int,
                     arch: str, id_like: bool) -> int:
    """Every image in the root's extension directories, as one merge would treat it."""
    from sysext_builder.errors import ImageError, IncompatibleError, UsageError
    from sysext_builder.sysext import compat, installed

    if args.root is None or args.merge:
        raise UsageError("without IMAGE, give --root DIR (and no --merge): the images "
                         "installed in its extension directories are checked",
                         hint="sysext-check --root / checks this machine's")
    found = installed.scan(args.root, version, lambda fields: compat.incompatibility(
        fields, target, host_arch=arch, scope=args.scope, id_like=id_like))
    for entry in found:
        print(f"{entry.rel}: {entry.verdict}" + (f": {entry.reason}" if entry.reason else ""))
    aborting = [e for e in found if e.verdict == installed.ABORTS]
    merged = [e.name for e in found if e.verdict == installed.MERGED]
    if aborting:
        print(f"merge: none ({aborting[0].rel} makes systemd-sysext {version} refuse "
              "the whole merge)")
        return ImageError.exit_code
    print(f"merge: {', '.join(merged) if merged else 'nothing'} "
          f"({len(merged)} of {len(found)} entries)")
    if any(e.verdict == installed.SKIPPED for e in found):
        return IncompatibleError.exit_code
    return 0


def check(args: argparse.Namespace) -> int:
    from sysext_builder.errors import EnvironmentUnusableError, ImageError, IncompatibleError
    from sysext_builder.sysext import compat, image, verify

    if args.merge and os.geteuid() != 0:
        raise EnvironmentUnusableError(
            "--merge needs root: systemd-sysext mounts the image in a private mount namespace",
            hint="run as root, or drop --merge for the read-only check")
    from sysext_builder.staging import debian

    version = args.systemd_version
    if version is None and args.root is not None:
        version = debian.systemd_version(args.root)
    if version is None:
        version = verify.systemd_version() or 252
    id_like = args.id_like
    if id_like is None:
        # the Debian build is the one whose dpkg database lists systemd at that version
        packaged = debian.systemd_version(args.root if args.root is not None else Path("/"))
        id_like = compat.id_like_default(version, debian_build=packaged == version)
    arch = _arch(args)
    described, target = _target(args, version)
    if args.image is None:
        return _check_installed(args, target, version, arch, id_like)
    ext = image.read_extension(args.image, systemd_version=version)
    common.LOG.info("%s: %s image, %s: %s", ext.path.name, ext.kind, ext.release_file,
                    " ".join(f"{k}={v}" for k, v in ext.fields.items()))
    common.LOG.info("target: %s (%s), architecture %s, scope %s, systemd %d%s", described,
                    " ".join(f"{k}={target[k]}" for k in ("ID", "VERSION_ID", "SYSEXT_LEVEL")
                             if k in target), arch, args.scope, version,
                    ", ID_LIKE matched" if id_like else "")
    if ext.kind != "directory" and not ext.path.name.endswith(".raw"):
        common.LOG.warning("systemd-sysext only picks up image files named NAME.raw")
    if ext.has_os_release:
        raise ImageError(f"{ext.path.name}: ships usr/lib/os-release, which systemd-sysext "
                         "refuses in an extension")
    reason = compat.incompatibility(ext.fields, target, host_arch=arch, scope=args.scope,
                                    id_like=id_like)
    if reason is not None:
        print(f"incompatible: {reason}")
        return IncompatibleError.exit_code
    print("compatible")
    if ext.fields.get("EXTENSION_RELOAD_MANAGER") == "1":
        from sysext_builder.sysext import activation

        advice = activation.advice(ext.path.name.removesuffix(".raw"), version)
        if advice is not None:
            common.LOG.warning("%s", advice)
    if args.merge:
        return _merge(args.image, target)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(build_parser(), argv)
    from sysext_builder.cli.progress import setup_logging

    setup_logging(debug=args.debug)
    return common.run(PROG, args.debug, lambda: check(args))
