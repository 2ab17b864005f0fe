"""``sysext-element-new``: write a working element skeleton."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from sysext_builder.cli import common

PROG = "sysext-element-new"

DESCRIPTION = """\
Create DIR/NAME, a working element: README.rst, element-deps, an
environment.d file with a DIB_ variable default, an install.d hook that uses
the shell library ($SYSEXT_FUNCTIONS) to install a file and a command under
/usr, a commented-out units example, and a test case in test-elements/basic/
(run it with sysext-test-elements).  The skeleton passes sysext-element-lint
and builds:

    sysext-create NAME --element-path DIR --os-id _any -t directory -o out/
"""

EPILOG = """\
exit codes: 0 created, 2 usage (invalid name, NAME already exists),
24 writing failed.
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, DESCRIPTION, EPILOG)
    p.add_argument("--dir", metavar="DIR", type=Path, default=Path("."),
                   help="where to create the element (default: the current directory)")
    p.add_argument("name", metavar="NAME",
                   help="the element's name: letters, digits and '-'")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(build_parser(), argv)
    from sysext_builder.cli.progress import setup_logging

    setup_logging(debug=args.debug)

    def body() -> int:
        from sysext_builder.authoring import skeleton

        path = skeleton.create(args.name, args.dir)
        print(path)
        return 0

    return common.run(PROG, args.debug, body)
