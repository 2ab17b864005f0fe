"""Logging helpers: a CI-readable formatter and a timing ``step()``.

Only the CLI installs handlers (:func:`setup_logging`); library modules use
``logging.getLogger(__name__)`` with lazy ``%`` arguments.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)


class CIFormatter(logging.Formatter):
    """``2026-11-22T10:00:00.123Z LEVEL message`` with UTC timestamps."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03dZ %(levelname)-7s %(message)s",
                         datefmt="%Y-%m-%dT%H:%M:%S")
        self.converter = time.gmtime


def setup_logging(debug: bool = False, logfile: str | None = None,
                  quiet: bool = False, progress: bool | None = None) -> None:
    """Install handlers on the root logger (CLI only).

    ``progress`` (default: standard error is a terminal and not ``debug``)
    shows a live status line instead of full timestamps.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    if progress is None:
        progress = sys.stderr.isatty() and not debug
    stream: logging.Handler
    if progress:
        from sysext_builder.progress import ProgressHandler

        stream = ProgressHandler(sys.stderr)
    else:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(CIFormatter())
    stream.setLevel(level)
    root.addHandler(stream)
    if logfile:
        filehandler = logging.FileHandler(logfile, encoding="utf-8")
        filehandler.setFormatter(CIFormatter())
        filehandler.setLevel(logging.DEBUG)
        root.addHandler(filehandler)
    root.setLevel(logging.DEBUG if (debug or logfile) else level)
    # stevedore warns about every plugin it cannot find; our PluginError says it
    # better (with the available names), so keep its chatter for --debug.
    logging.getLogger("stevedore").setLevel(logging.DEBUG if debug else logging.ERROR)


@dataclass
class Timings:
    """Wall-clock seconds per named step, in the order steps started."""

    entries: list[tuple[str, float]] = field(default_factory=list)

    def add(self, name: str, seconds: float) -> None:
        self.entries.append((name, seconds))

    def table(self) -> list[str]:
        """Render an aligned table (one string per line)."""
        if not self.entries:
            return []
        width = max(len(name) for name, _ in self.entries)
        total = sum(seconds for _, seconds in self.entries)
        lines = [f"{'step'.ljust(width)}  seconds"]
        lines += [f"{name.ljust(width)}  {seconds:7.2f}" for name, seconds in self.entries]
        lines.append(f"{'total'.ljust(width)}  {total:7.2f}")
        return lines


@contextlib.contextmanager
def step(name: str, timings: Timings | None = None,
         logger: logging.Logger = LOG) -> Iterator[None]:
    """Log the start and end of a named step and record its duration."""
    logger.info("==> %s", name, extra={"progress_step": name})
    start = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - start
        if timings is not None:
            timings.add(name, elapsed)
        logger.debug("<== %s (%.2fs)", name, elapsed)


def end_progress() -> None:
    """Clear the terminal status line (before printing results to stdout)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "ProgressHandler":
            root.removeHandler(handler)
            handler.close()
            plain = logging.StreamHandler(sys.stderr)
            plain.setFormatter(CIFormatter())
            plain.setLevel(handler.level)
            root.addHandler(plain)
