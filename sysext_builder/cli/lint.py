"""``sysext-element-lint``: check element directories like diskimage-builder's dib-lint."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from sysext_builder.cli import common

PROG = "sysext-element-lint"

DESCRIPTION = """\
Check element directories and print one line per finding:

    PATH:LINE: error|warning: CODE message

(without :LINE when the finding is about a whole file or directory).  Each DIR
is an element directory, or a directory of elements; without DIR every
element on the search path is checked (--element-path DIRs, ELEMENTS_PATH,
installed element packages, the built-in elements).  Test cases in an
element's test-elements/ are checked too.
"""


def _codes_table() -> str:
    from sysext_builder.authoring.lint.findings import CODES

    return "\n".join(f"  {code}  {severity:<7}  {summary}"
                     for code, (severity, summary) in CODES.items())


EPILOG_HEAD = """\
exit codes: 0 no errors (warnings allowed), 2 usage, 15 a plugin failed to
load, 17 at least one error.

checks:
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, DESCRIPTION, EPILOG_HEAD + _codes_table())
    common.add_element_path(p)
    p.add_argument("--json", action="store_true",
                   help="print JSON: the findings (path, line, severity, code, message) and "
                        "the number of errors and warnings")
    p.add_argument("dirs", metavar="DIR", nargs="*", type=Path,
                   help="an element directory or a directory of elements "
                        "(default: every element on the search path)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(build_parser(), argv)
    from sysext_builder.cli.progress import setup_logging

    setup_logging(debug=args.debug)

    def body() -> int:
        from sysext_builder.authoring.lint import check as lint
        from sysext_builder.authoring.lint.findings import ERROR, WARNING
        from sysext_builder.errors import LintError
        from sysext_builder.model import discovery

        search = discovery.search_path(args.element_path, os.environ)
        findings = lint.lint(args.dirs, search)
        totals = lint.count(findings)
        if args.json:
            print(json.dumps({"findings": [f.as_dict() for f in findings],
                              "errors": totals[ERROR],
                              "warnings": totals[WARNING]}, indent=2))
        else:
            for finding in findings:
                print(finding.render())
        if totals[ERROR]:
            raise LintError(f"{totals[ERROR]} error(s), {totals[WARNING]} "
                            "warning(s)")
        return 0

    return common.run(PROG, args.debug, body)
