"""``sysext-create``: build a systemd-sysext image from elements."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sysext_builder import config
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


def _add_option(group: argparse._ArgumentGroup, option: config.Option) -> None:
    names = [n for n in (option.short, option.flag) if n]
    if option.kind == "flag":
        group.add_argument(*names, action="store_true", help=option.help)
        return
    kwargs: dict[str, Any] = {"metavar": option.metavar, "help": option.help,
                              "default": option.default}
    if option.kind == "path":
        kwargs["type"] = Path
    elif option.kind == "int":
        kwargs["type"] = int
    group.add_argument(*names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, DESCRIPTION, EPILOG)
    common.add_element_path(p)
    p.add_argument("elements", metavar="ELEMENT", nargs="*",
                   help="element to build (omit with --config)")
    for title, options in config.groups():
        group = p.add_argument_group(title)
        for option in options:
            _add_option(group, option)
    return p


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    from sysext_builder.errors import Interrupted

    raise Interrupted(signum)


def _build_one(args: argparse.Namespace) -> list[Path]:
    from sysext_builder import builder
    from sysext_builder.cli.progress import end_progress

    cfg = config.from_values(vars(args), elements=args.elements, environ=os.environ)
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
    outcomes = imageset.build_all(specs, config.inherited_argv(vars(args)), dict(os.environ),
                                  args.jobs)
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
    if args.config is not None and (args.oem_partition or args.no_activate):
        raise UsageError("--oem-partition and --no-activate are per image with --config",
                         hint="set oem-partition (and no-activate) in the image's options:")


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(build_parser(), argv)
    from sysext_builder.cli.progress import setup_logging

    def logging_set_up() -> int:
        setup_logging(debug=args.debug, logfile=args.logfile)
        return 0

    code = common.run(PROG, args.debug, logging_set_up)  # a bad --logfile: one line, exit 2
    if code:
        return code

    def body() -> int:
        from sysext_builder import imageset
        from sysext_builder.output import sysupdate

        _check_args(args)
        if args.image_version:
            sysupdate.check_version(args.image_version)
        if args.sysupdate:
            sysupdate.check_url(args.sysupdate)  # before the build, not after it
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
