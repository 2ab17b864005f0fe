"""A status line a person can follow in a terminal.

When standard error is a terminal, log lines still scroll as usual (with a
short time stamp) and one status line stays at the bottom: the current step,
the hook running and the elapsed times, redrawn twice a second.  When it is
not a terminal (CI), nothing here is used: plain timestamped lines only.

Steps and hooks announce themselves with ``extra={"progress_step": ...}`` /
``extra={"progress_hook": ...}`` on their log records.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from typing import TextIO

from sysext_builder.log import CIFormatter

_CLEAR = "\r\033[K"


class ProgressHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines above, a live status line below."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        self.started = time.monotonic()
        self.step = ""
        self.hook = ""
        self.hook_started = 0.0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def status(self) -> str:
        now = time.monotonic()
        parts = [f"[{now - self.started:6.1f}s]", self.step or "starting"]
        if self.hook:
            parts.append(f"· {self.hook} ({now - self.hook_started:.1f}s)")
        width = shutil.get_terminal_size((100, 20)).columns - 1
        return " ".join(parts)[:width]

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "progress_step", None)
        hook = getattr(record, "progress_hook", None)
        if step is not None:
            self.step, self.hook = step, ""
        if hook is not None:
            self.hook, self.hook_started = hook, time.monotonic()
        try:
            with self.lock or threading.Lock():
                self.stream.write(_CLEAR + self.format(record) + "\n" + self.status())
                self.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            try:
                with self.lock or threading.Lock():
                    self.stream.write(_CLEAR + self.status())
                    self.flush()
            except (OSError, ValueError):
                return

    def close(self) -> None:
        self._stop.set()
        try:
            self.stream.write(_CLEAR)
            self.flush()
        except (OSError, ValueError):
            pass
        super().close()


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
        from sysext_builder.cli.progress import ProgressHandler

        stream = ProgressHandler(sys.stderr)
    else:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(CIFormatter())
    stream.setLevel(level)
    root.addHandler(stream)
    if logfile:
        try:
            filehandler = logging.FileHandler(logfile, encoding="utf-8")
        except OSError as exc:
            from sysext_builder.errors import UsageError

            raise UsageError(f"--logfile {logfile}: cannot open it: {exc.strerror}",
                             hint="give a file in a directory that exists and is "
                                  "writable") from exc
        filehandler.setFormatter(CIFormatter())
        filehandler.setLevel(logging.DEBUG)
        root.addHandler(filehandler)
    root.setLevel(logging.DEBUG if (debug or logfile) else level)
    # stevedore warns about every plugin it cannot find; our PluginError says it
    # better (with the available names), so keep its chatter for --debug.
    logging.getLogger("stevedore").setLevel(logging.DEBUG if debug else logging.ERROR)


def end_progress() -> None:
    """Clear the terminal status line (before printing results to stdout)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, ProgressHandler):
            root.removeHandler(handler)
            handler.close()
            plain = logging.StreamHandler(sys.stderr)
            plain.setFormatter(CIFormatter())
            plain.setLevel(handler.level)
            root.addHandler(plain)
