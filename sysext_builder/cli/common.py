"""What every command shares: error reporting, exit codes, common options."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sysext_builder.errors import EnvironmentUnusableError, SysextBuilderError
from sysext_builder.fileutil import NO_ROOM

LOG = logging.getLogger("sysext_builder.cli")


def version() -> str:
    from sysext_builder import package_version

    return package_version()


class _VersionAction(argparse.Action):
    """``--version`` that reads the installed version only when it is given."""

    def __init__(self, option_strings: Sequence[str], dest: str,
                 **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep our paragraphs, show defaults where a help text mentions them."""


def parser(prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action=_VersionAction)
    p.add_argument("--debug", action="store_true",
                   help="log at debug level and show tracebacks on errors")
    return p


def add_element_path(p: argparse.ArgumentParser) -> None:
    p.add_argument("--element-path", metavar="DIR", action="append", default=[],
                   help="search DIR for elements before ELEMENTS_PATH, installed element "
                        "packages and the built-in elements (repeatable; first hit wins)")


#: characters of an error message or hint printed (a message can quote a 100 MB line)
MAX_MESSAGE_CHARS = 500


def _visible(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xff else f"\\u{code:04x}"


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` safe for one terminal line: control characters (newlines, escape
    sequences) and undecodable file name bytes shown escaped, cut after ``limit``
    printed characters with a count of the characters left out."""
    parts: list[str] = []
    used = 0
    for char in text[:limit]:
        shown = _visible(char)
        if used + len(shown) > limit:
            break
        parts.append(shown)
        used += len(shown)
    if len(parts) < len(text):
        parts.append(f"... ({len(text) - len(parts)} more characters)")
    return "".join(parts)


#: lines of a hint printed (a hint may quote the last output of a command)
MAX_HINT_LINES = 25


def report(prog: str, exc: SysextBuilderError) -> None:
    """The error on one line; the hint after it, each of its lines (a failed
    command's last output) made safe by :func:`one_line` and indented."""
    print(f"{prog}: error: {one_line(exc.message)}", file=sys.stderr)
    if exc.hint:
        first, *rest = exc.hint.split("\n")[:MAX_HINT_LINES]
        print(f"{prog}: hint: {one_line(first)}", file=sys.stderr)
        for line in rest:
            print(one_line(line if line.startswith("  ") else "  " + line), file=sys.stderr)


def no_room(exc: OSError) -> EnvironmentUnusableError:
    """A full or read-only filesystem that no step of ours turned into an error of
    its own (the cache's, say), as an error naming the file where it is known."""
    where = f"{exc.filename}: " if exc.filename else ""
    return EnvironmentUnusableError(
        f"{where}{exc.strerror or exc}",
        hint="free space there, or put the work directory (--workdir, TMPDIR) or the cache "
             "(--cache-dir) on a filesystem with room; nothing was written to the output")


def run(prog: str, debug: bool, body: Callable[[], int]) -> int:
    """Run ``body`` turning our errors into one-line messages and exit codes."""
    try:
        return body()
    except SysextBuilderError as exc:
        if debug:
            LOG.exception("%s failed", prog)
        report(prog, exc)
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        if debug:
            LOG.exception("%s failed", prog)
        failure = no_room(exc)
        report(prog, failure)
        return failure.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`: not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return p.parse_args(list(argv) if argv is not None else None)
