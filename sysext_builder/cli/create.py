"""``sysext-create``: build a systemd-sysext image from elements."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from sysext_builder.cli import common

PROG = "sysext-create"
LOG = logging.getLogger("sysext_builder.cli")

DESCRIPTION = """\
Resolve ELEMENTs and their dependencies, run their hooks into a staging tree,
turn the tree into a valid systemd system extension (only /usr and /opt,
/etc and /var lowered to tmpfiles.d, units enabled by shipped symlinks,
extension-release written) and pack it.

Phases run in this order: extra-data.d, pre-install.d, install.d (after the
elements' static/ trees are copied in), post-install.d, finalise.d, cleanup.d.
Hooks see TARGET_ROOT, ARCH, SYSEXT_NAME, IMAGE_ELEMENT, TMP_BUILD_DIR,
TMP_HOOKS_PATH, SOURCE_DATE_EPOCH, SYSEXT_FUNCTIONS (a shell library to
source), SYSEXT_ARTIFACTS_DIR (files placed beside the image) and your DIB_*
variables, plus whatever the elements' environment.d files export.

The target identity comes from, in order of precedence: the --os-* options,
--os-release FILE, the --base tree's os-release, then defaults the elements
set in environment.d
(SYSEXT_DEFAULT_OS_ID, SYSEXT_DEFAULT_OS_VERSION_ID,
SYSEXT_DEFAULT_SYSEXT_LEVEL, SYSEXT_DEFAULT_SCOPE, SYSEXT_DEFAULT_NAME).
"""

EPILOG = """\
outputs (in the -o directory): NAME.raw (squashfs/erofs) or NAME/ (directory),
NAME.manifest.json, NAME.raw.sha256 with --checksum, and any artifacts the
elements place beside the image.  Outputs are written under temporary names
and renamed into place only when the whole build succeeded.

exit codes: 0 ok, 2 usage, 10-16 element and configuration errors (see
sysext-element-info --help), 20 a hook failed, 21 the tree breaks the sysext
rules, 22 a required tool is missing, 23 bad extension-release values,
24 writing the output failed, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, DESCRIPTION, EPILOG)
    common.add_element_path(p)
    p.add_argument("elements", metavar="ELEMENT", nargs="*",
                   help="element to build (omit with --config)")
    many = p.add_argument_group("several images (CI jobs)")
    many.add_argument("--config", metavar="FILE", type=Path,
                      help="build every image listed in this YAML file (name, elements, "
                           "output, formats, options, environment per image); the identity, "
                           "discovery and running options on the command line (not -t) apply "
                           "to every image unless the image sets them; a summary table ends "
                           "the run")
    many.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                      help="with --config, build N images at a time (default: %(default)s)")
    many.add_argument("--sysupdate", metavar="URL",
                      help="also publish each image for systemd-sysupdate: NAME_VERSION.raw "
                           "and NAME.transfer (source URL) beside NAME.raw; needs "
                           "--image-version")
    many.add_argument("--image-version", metavar="VERSION",
                      help="version of the images for --sysupdate")
    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="PATH",
                     help="DIR/NAME of the image; NAME is what systemd matches and names the "
                          "extension-release file (default: ./ and the name the elements set)")
    out.add_argument("-t", "--format", default="squashfs", metavar="FMT[,FMT]",
                     help="output formats, comma separated: squashfs, erofs, directory "
                          "(default: %(default)s)")
    out.add_argument("--compression", metavar="ALG|FMT=ALG[,...]",
                     help="compression for all formats, or per format "
                          "(default: zstd for squashfs, lz4hc for erofs)")
    out.add_argument("--checksum", action="store_true",
                     help="also write NAME.raw.sha256 and SHA256SUMS (sha256sum format); "
                          "--config and --sysupdate runs always write SHA256SUMS")
    ident = p.add_argument_group("target identity (extension-release)")
    ident.add_argument("-a", "--arch", metavar="ARCH",
                       help="ARCHITECTURE in systemd's spelling (x86-64, arm64, ...) or _any "
                            "(default: the build host's)")
    ident.add_argument("--os-release", metavar="FILE", type=Path,
                       help="the target's os-release: ID, VERSION_ID and SYSEXT_LEVEL from it")
    ident.add_argument("--os-id", metavar="ID", help="target ID (or _any for every OS)")
    ident.add_argument("--os-version-id", metavar="VERSION",
                       help="target VERSION_ID (exact match on the host)")
    ident.add_argument("--sysext-level", metavar="LEVEL",
                       help="target SYSEXT_LEVEL (version-independent extensions, e.g. 1.0)")
    ident.add_argument("--scope", metavar="SCOPE",
                       help='SYSEXT_SCOPE: words of "system portable initrd"')
    inst = p.add_argument_group("installing software")
    inst.add_argument("--base", metavar="PATH", type=Path,
                      help="build against this target OS (directory, .tar[.gz|.xz|.zst], "
                           "squashfs or erofs image): install hooks run chrooted in an overlay "
                           "over it, packages come from its package manager, only what is new "
                           "lands in the image, and its os-release is the default target "
                           "identity; needs root")
    inst.add_argument("--cache-dir", metavar="DIR", type=Path,
                      help="cache for packages, wheels, sources and unpacked bases, shared "
                           "and locked between builds (default: ~/.cache/sysext-builder)")
    inst.add_argument("--offline", action="store_true",
                      help="use only what the cache holds; fail naming anything missing")
    run = p.add_argument_group("running")
    run.add_argument("--workdir", metavar="DIR", type=Path,
                     help="create the build directory under DIR (default: $TMPDIR or /var/tmp)")
    run.add_argument("--keep-workdir", action="store_true",
                     help="keep the build directory after the build, also on failure")
    run.add_argument("-x", "--trace", action="store_true",
                     help="run shell hooks with set -x (also exports DIB_DEBUG_TRACE=1)")
    run.add_argument("--strict", action="store_true",
                     help="refuse /etc and /var content instead of lowering it to tmpfiles.d")
    run.add_argument("--logfile", metavar="FILE",
                     help="also write the full debug log to FILE")
    return p


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    from sysext_builder.errors import Interrupted

    raise Interrupted(signum)


def _common_args(args: argparse.Namespace) -> list[str]:
    """Options every image of a --config run inherits (its own options win)."""
    common: list[str] = []
    for d in args.element_path:
        common += ["--element-path", str(Path(d).absolute())]
    for flag, value in (("--workdir", args.workdir), ("--cache-dir", args.cache_dir),
                        ("--compression", args.compression), ("--arch", args.arch),
                        ("--os-release", args.os_release), ("--os-id", args.os_id),
                        ("--os-version-id", args.os_version_id),
                        ("--sysext-level", args.sysext_level), ("--scope", args.scope),
                        ("--base", args.base)):
        if value is not None:
            path_like = isinstance(value, Path)
            common += [flag, str(value.absolute()) if path_like else str(value)]
    for flag, on in (("--keep-workdir", args.keep_workdir), ("--offline", args.offline),
                     ("--trace", args.trace), ("--strict", args.strict),
                     ("--checksum", args.checksum), ("--debug", args.debug)):
        if on:
            common.append(flag)
    return common


def _build_one(args: argparse.Namespace) -> list[Path]:
    from sysext_builder import builder, config
    from sysext_builder.cli.progress import end_progress

    cfg = config.BuildConfig(
        elements=tuple(args.elements), output=args.output,
        formats=config.parse_formats(args.format), compression=args.compression,
        arch=args.arch, os_release=args.os_release, os_id=args.os_id,
        os_version_id=args.os_version_id, sysext_level=args.sysext_level,
        scope=args.scope, checksum=args.checksum, workdir=args.workdir,
        keep_workdir=args.keep_workdir, trace=args.trace, strict=args.strict,
        element_paths=tuple(args.element_path), epoch=config.epoch_from(os.environ),
        environ=dict(os.environ), base=args.base, cache_dir=args.cache_dir,
        offline=args.offline)
    result = builder.build(cfg)
    for line in result.timings.table():
        LOG.info("%s", line)
    end_progress()
    for path in [*result.images, result.manifest, *result.checksums, *result.artifacts]:
        if path is not None:
            print(path, flush=True)
    return [p for p in result.images if p.suffix == ".raw"]


def _build_many(args: argparse.Namespace) -> tuple[list[Path], bool]:
    from sysext_builder import imageset

    default_output = Path(args.output or ".").absolute()
    specs = imageset.load(args.config, default_output)
    LOG.info("building %d image(s) from %s, %d at a time", len(specs), args.config, args.jobs)
    outcomes = imageset.build_all(specs, _common_args(args), dict(os.environ), args.jobs)
    from sysext_builder.cli.progress import end_progress

    end_progress()
    for line in imageset.summary(outcomes):
        print(line, flush=True)
    clashes = imageset.clashing_outputs(outcomes)
    for path, names in clashes.items():
        LOG.error("%s was written by %s: only the last one's is left", path, " and ".join(names))
    if clashes:
        LOG.error("give images that write side files (e.g. OEM images) their own 'output:'")
    return imageset.images_of(outcomes), all(o.ok for o in outcomes) and not clashes


def _check_args(args: argparse.Namespace) -> None:
    from sysext_builder.errors import UsageError

    if args.config is None and not args.elements:
        raise UsageError("name at least one ELEMENT, or --config FILE")
    if args.config is not None and args.elements:
        raise UsageError("give either ELEMENTs or --config, not both")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.sysupdate and not args.image_version:
        raise UsageError("--sysupdate needs --image-version VERSION")


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(build_parser(), argv)
    from sysext_builder.cli.progress import setup_logging

    setup_logging(debug=args.debug, logfile=args.logfile)

    def body() -> int:
        from sysext_builder import imageset
        from sysext_builder.output import sysupdate

        _check_args(args)
        if args.image_version:
            sysupdate.check_version(args.image_version)
        ok = True
        if args.config is not None:
            images, ok = _build_many(args)
        else:
            images = _build_one(args)
        published = []
        if args.sysupdate:
            for image in images:
                published += sysupdate.publish(image, args.image_version, args.sysupdate)
        if args.config is not None or args.sysupdate or args.checksum:
            listed = images + [p for p in published if p.suffix == ".raw"]
            for path in imageset.write_sha256sums(listed):
                print(path, flush=True)
        return 0 if ok else 1

    previous = signal.signal(signal.SIGTERM, _raise_on_signal)
    try:
        return common.run(PROG, args.debug, body)
    finally:
        signal.signal(signal.SIGTERM, previous)
