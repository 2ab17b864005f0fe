"""``sysext-test-elements``: build and check elements' test-elements/ cases."""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from sysext_builder.cli import common

if TYPE_CHECKING:
    from sysext_builder.authoring.testing.cases import CaseResult

PROG = "sysext-test-elements"

DESCRIPTION = """\
Run element tests in diskimage-builder's style.  Each directory in an
element's test-elements/ is a test case: an element that depends on the one
under test.  Every case is built alone (its test-elements/ first on the
search path) into a temporary directory, in the directory format (and
squashfs when merging), then checked: the extension-release must be found
under systemd's name rule and be compatible with the target it was built
for, the case's optional `expect` file must hold, and -- as root -- the image
is merged with systemd-sysext into a scratch root (private mount namespace)
and the expected files must appear.

Prints "PASS ELEMENT/CASE" or "FAIL ELEMENT/CASE: REASON" per case and a
summary.  Without ELEMENT, every element on the search path that has
test-elements/ is tested; ELEMENT/CASE runs one case.

`expect`, one assertion a line ('#' comments):
    usr/bin/tool                   exists
    !usr/lib/os-release            does not exist
    usr/bin/tool executable        regular file with an executable bit
    usr/share/tool/conf contains TEXT
Paths are relative to the image root, under usr/ or opt/, globs allowed.

    boot active waagent.service    with --boot: checked inside the booted VM
Boot assertions: active|started|not-started|not-failed UNIT, no-failed-units, merged NAME,
file /PATH, user NAME, address ADDR/PREFIX, journal-lacks TEXT, run COMMAND.

The target: --os-release FILE, else the --base's os-release, else what the
elements set (SYSEXT_DEFAULT_OS_ID, ...), else ID=_any.
"""

EPILOG = """\
exit codes: 0 every case passed, 2 usage (unknown case, element without
cases), 10-16 element errors, 18 at least one case failed, 25 --merge
without root, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, DESCRIPTION, EPILOG)
    common.add_element_path(p)
    p.add_argument("elements", metavar="ELEMENT[/CASE]", nargs="*",
                   help="element whose cases to run (default: every element with cases)")
    p.add_argument("--base", metavar="BASE", type=_base,
                   help="build every case against this base: a directory, an archive or "
                        "debian:RELEASE[/VARIANT][+PKG,...] (as sysext-create --base; "
                        "needs root)")
    p.add_argument("--os-release", metavar="FILE", type=Path,
                   help="the target os-release every case is built for and checked against")
    merge = p.add_mutually_exclusive_group()
    merge.add_argument("--merge", dest="merge", action="store_true", default=None,
                       help="require the systemd-sysext merge test (default: when root)")
    merge.add_argument("--no-merge", dest="merge", action="store_false",
                       help="skip the systemd-sysext merge test")
    p.add_argument("--boot", action="store_true",
                   help="also boot each case that has 'boot' lines in its expect file: a "
                        "throwaway qemu VM (KVM when it works, else TCG) with the image in "
                        "/var/lib/extensions and the case's config-drive/ as a config-2 "
                        "drive; needs root")
    p.add_argument("--boot-base", metavar="BASE", type=_base,
                   help="the tree to boot (it needs /boot/vmlinuz-* and initrd.img-*); "
                        "default: the VARIANT vm of a debian: --base, else the --base")
    p.add_argument("--boot-timeout", metavar="SECONDS", type=float, default=900.0,
                   help="kill a VM still running after this long (default: %(default)s)")
    p.add_argument("--keep", action="store_true",
                   help="keep each case's output directory and print where it is")
    p.add_argument("--workdir", metavar="DIR", type=Path,
                   help="create build and output directories under DIR")
    p.add_argument("--cache-dir", metavar="DIR", type=Path,
                   help="cache shared by the builds (as sysext-create --cache-dir)")
    p.add_argument("--offline", action="store_true",
                   help="use only what the cache holds")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document with every result at the end")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log the builds at info level (default: warnings only)")
    return p


def _base(text: str) -> Path | str:
    """A base: a named one (``debian:...``) stays text, anything else is a path."""
    from sysext_builder.config import is_named_base

    return text if is_named_base(text) else Path(text)


def _print_result(result: CaseResult) -> None:
    label = result.case.label
    if result.passed:
        print(f"PASS {label} ({result.seconds:.1f}s)")
    else:
        print(f"FAIL {label}: {result.reason}")
    for line in result.details:
        print(f"    {line}")
    for note in result.notes:
        print(f"  {note}")
    if result.kept is not None:
        print(f"  kept: {result.kept}")


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    from sysext_builder.errors import Interrupted

    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(build_parser(), argv)
    from sysext_builder.cli.progress import setup_logging

    setup_logging(debug=args.debug, quiet=not (args.verbose or args.debug))

    def body() -> int:
        from sysext_builder.authoring.testing import cases as elementtests
        from sysext_builder.authoring.testing import run as caserun
        from sysext_builder.authoring.testing import suite

        options = elementtests.Options(
            element_paths=tuple(args.element_path), environ=dict(os.environ),
            base=args.base, os_release=args.os_release, merge=args.merge, keep=args.keep,
            workdir=args.workdir, cache_dir=args.cache_dir, offline=args.offline,
            boot=args.boot, boot_base=args.boot_base, boot_timeout=args.boot_timeout)
        caserun.want_merge(options)  # refuse --merge without root before building
        if args.boot and os.geteuid() != 0:
            from sysext_builder.errors import EnvironmentUnusableError

            raise EnvironmentUnusableError("--boot needs root",
                                           hint="the VM's disk is made from an overlay of "
                                                "the base; run as root")
        options = caserun.open_bases(options)
        cases = suite.find_cases(options.element_paths, options.environ, args.elements)
        if not cases and not args.json:
            print("no element on the search path has test-elements/")
        results = suite.run_all(cases, options, None if args.json else _print_result)
        failed = [r for r in results if not r.passed]
        if args.json:
            print(json.dumps({"cases": [r.as_dict() for r in results],
                              "passed": len(results) - len(failed),
                              "failed": len(failed)}, indent=2))
        else:
            print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
        if failed:
            from sysext_builder.errors import ElementTestsFailed

            raise ElementTestsFailed(
                f"{len(failed)} of {len(results)} test cases failed: "
                + ", ".join(r.case.label for r in failed))
        return 0

    previous = signal.signal(signal.SIGTERM, _raise_on_signal)
    try:
        return common.run(PROG, args.debug, body)
    finally:
        signal.signal(signal.SIGTERM, previous)
