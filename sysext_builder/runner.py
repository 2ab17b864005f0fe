"""The only module that starts processes.

* :func:`run` runs a command to completion, capturing output; failures raise
  :class:`CommandFailed` with the tail of the output.
* :func:`stream` runs a command whose output is logged line by line as it
  arrives (hooks, package managers) and keeps the last lines for errors.
* :func:`require_tool` finds an executable or raises
  :class:`ToolMissingError` naming the Debian package that ships it.

If the calling thread is interrupted (KeyboardInterrupt or the builder's
SIGTERM handler raising), the child's whole process group is terminated
before the exception propagates, so nothing keeps writing after we stop.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sysext_builder import paths
from sysext_builder.errors import SysextBuilderError, ToolMissingError

LOG = logging.getLogger(__name__)

TAIL_LINES = 20

#: tool -> Debian package shipping it
DEBIAN_PACKAGES = {
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "mkfs.erofs": "erofs-utils",
    "fsck.erofs": "erofs-utils",
    "dump.erofs": "erofs-utils",
    "systemd-sysext": "systemd",
    "systemd-analyze": "systemd",
    "systemd-tmpfiles": "systemd",
    "unshare": "util-linux",
    "mount": "mount",
    "git": "git",
    "tar": "tar",
    "zstd": "zstd",
    "bash": "bash",
    "debootstrap": "debootstrap",
    "mmdebstrap": "mmdebstrap",
}


_LIVE: set[subprocess.Popen[bytes] | subprocess.Popen[str]] = set()
_LIVE_LOCK = threading.Lock()


def _track(proc: subprocess.Popen[bytes] | subprocess.Popen[str], live: bool) -> None:
    with _LIVE_LOCK:
        (_LIVE.add if live else _LIVE.discard)(proc)


def terminate_all() -> None:
    """Terminate every command still running (from any thread), e.g. on SIGTERM."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        _kill_group(proc)


class CommandFailed(SysextBuilderError):
    """A command exited non-zero; ``tail`` holds its last output lines."""

    def __init__(self, argv: Sequence[str], returncode: int, tail: Sequence[str],
                 what: str | None = None) -> None:
        name = what or Path(argv[0]).name
        status = describe_status(returncode)
        super().__init__(f"{name} {status}",
                         hint=("last output:\n  " + "\n  ".join(tail)) if tail else None)
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = list(tail)


def describe_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"failed with exit status {returncode}"


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def require_tool(tool: str) -> str:
    found = paths.which(tool)
    if found is None:
        package = DEBIAN_PACKAGES.get(tool)
        hint = f"apt-get install {package}" if package else None
        raise ToolMissingError(f"required tool {tool!r} not found on PATH", hint=hint)
    return found


def _kill_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None, check: bool = True, input: str | None = None,
        what: str | None = None) -> Completed:
    """Run to completion capturing stdout/stderr (text)."""
    LOG.debug("run: %s", " ".join(argv))
    proc = subprocess.Popen(list(argv), env=dict(env) if env is not None else None, cwd=cwd,  # noqa: S603 - the one place commands run; argv lists, never a shell string
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _track(proc, True)
    try:
        out, err = proc.communicate(input)
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        _track(proc, False)
    if check and proc.returncode != 0:
        tail = (err or out).splitlines()[-TAIL_LINES:]
        raise CommandFailed(argv, proc.returncode, tail, what)
    return Completed(proc.returncode, out, err)


def stream(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
           cwd: Path | str | None = None, on_line: Callable[[str], None] | None = None,
           tail_lines: int = TAIL_LINES) -> tuple[int, list[str]]:
    """Run with stdout+stderr merged, handing each line to ``on_line``.

    Returns (returncode, last lines).  Never raises for a non-zero status.
    """
    LOG.debug("stream: %s", " ".join(argv))
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    proc = subprocess.Popen(list(argv), env=dict(env) if env is not None else None, cwd=cwd,  # noqa: S603 - the one place commands run; argv lists, never a shell string
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    _track(proc, True)
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            if on_line is not None:
                on_line(line)
        proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        proc.stdout.close()
        _track(proc, False)
    return proc.returncode, list(tail)


def run_bounded(argv: Sequence[str], timeout: float, *,
                on_line: Callable[[str], None] | None = None) -> tuple[int | None, list[str]]:
    """:func:`stream` with a deadline: the process group is killed when it still
    runs after ``timeout`` seconds, and the returncode is then ``None``."""
    expired = threading.Event()
    result: list[tuple[int, list[str]]] = []

    def target() -> None:
        result.append(stream(argv, on_line=on_line))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        expired.set()
        with _LIVE_LOCK:
            live = [p for p in _LIVE if list(p.args) == list(argv)]  # type: ignore[arg-type]
        for proc in live:
            _kill_group(proc)
        worker.join()
    code, tail = result[0]
    return (None if expired.is_set() else code), tail
