"""Logging helpers: a CI-readable formatter and a timing ``step()``.

Only the CLI installs handlers (``sysext_builder.cli.progress.setup_logging``); library modules use
``logging.getLogger(__name__)`` with lazy ``%`` arguments.
"""

from __future__ import annotations

import contextlib
import logging
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
