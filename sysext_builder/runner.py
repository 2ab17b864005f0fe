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

Every command runs under a small supervisor (:data:`_SUPERVISOR`, a fresh
``python -I -S``): it is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so
whatever the command starts stays its descendant even after ``setsid`` or a
double fork, and it has ``PR_SET_PDEATHSIG``, so when the builder dies, even
by SIGKILL, it is told and kills every descendant.  It also kills what a
command leaves running when it exits.  See doc/design.rst.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sysext_builder import fileutil, paths
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
    "mmdebstrap": "mmdebstrap", "xorriso": "xorriso",
}

_Proc = subprocess.Popen[bytes] | subprocess.Popen[str]
#: running commands -> the argv they were asked to run (without the supervisor)
_LIVE: dict[_Proc, tuple[str, ...]] = {}
_LIVE_LOCK = threading.Lock()

#: The supervisor every command runs under (argv: parent pid, error fd, command...).
#: Exit statuses and signals of the command are passed on as its own.
_SUPERVISOR = r"""
import ctypes, errno, os, signal, sys, time
STOPS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}
WAKE = STOPS | {signal.SIGCHLD}
def descendants(top):
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/" + name + "/stat", "rb") as f:
                    ppid = int(f.read().rpartition(b")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(name))
    found, todo = [], [top]
    while todo:
        for kid in kids.get(todo.pop(), ()):
            found.append(kid)
            todo.append(kid)
    return found
def reaped(main, status):
    # (status of main, whether no child is left), reaping every exited child
    try:
        while True:
            got, st = os.waitpid(-1, os.WNOHANG)
            if got == 0:
                return status, False
            if got == main:
                status = st
    except ChildProcessError:
        return status, True
def reap(main, status, grace):
    deadline, give_up, left = time.monotonic() + grace, time.monotonic() + grace + 10, None
    while time.monotonic() < give_up:
        procs = descendants(os.getpid())
        left = len(procs) if left is None else left
        for pid in procs:
            try:
                os.kill(pid, signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL)
            except OSError:
                pass
        status, done = reaped(main, status)
        if done:
            break
        time.sleep(0.05)
    return status, left or 0
def main():
    parent, errfd, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    signal.pthread_sigmask(signal.SIG_BLOCK, WAKE)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    if os.getppid() != parent:  # the builder died before PDEATHSIG was set
        os._exit(1)
    pid = os.fork()
    if pid == 0:
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WAKE)
        os.set_inheritable(errfd, False)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(errfd, str(exc.errno or errno.ENOEXEC).encode())
        os._exit(127)
    os.close(errfd)
    status = None
    while status is None:
        if signal.sigwaitinfo(WAKE).si_signo in STOPS:
            break
        status, _ = reaped(pid, status)
    status, left = reap(pid, status, 2.0)
    if left and status is not None and not os.WIFSIGNALED(status):
        os.write(2, ("sysext-builder: killed %d process(es) %s left running\n"
                     % (left, os.path.basename(argv[0]))).encode())
    if status is None:
        os._exit(1)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status))
main()
"""


def _track(proc: _Proc, argv: Sequence[str] | None) -> None:
    with _LIVE_LOCK:
        if argv is None:
            _LIVE.pop(proc, None)
        else:
            _LIVE[proc] = tuple(argv)


def _supervised(argv: Sequence[str]) -> tuple[list[str], int, int]:
    """(argv under the supervisor, read end, write end of its exec-error pipe)."""
    rfd, wfd = os.pipe()
    return ([sys.executable, "-I", "-S", "-c", _SUPERVISOR, str(os.getpid()), str(wfd),
             *argv], rfd, wfd)


def _check_exec(proc: _Proc, rfd: int, wfd: int, argv: Sequence[str]) -> None:
    """Raise the OSError the command's exec failed with (as Popen would)."""
    os.close(wfd)
    with os.fdopen(rfd, "rb") as pipe:
        data = pipe.read()
    if data:
        proc.wait()
        code = int(data)
        raise OSError(code, os.strerror(code), argv[0])


def terminate_all() -> None:
    """Terminate every command still running (from any thread), e.g. on SIGTERM."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        _kill_group(proc)


class CommandFailed(SysextBuilderError):
    """A command exited non-zero: ``tail`` its last output lines, ``cause`` the first."""

    def __init__(self, argv: Sequence[str], returncode: int, tail: Sequence[str],
                 what: str | None = None) -> None:
        name = what or Path(argv[0]).name
        status = describe_status(returncode)
        super().__init__(f"{name} {status}",
                         hint=("last output:\n  " + "\n  ".join(tail)) if tail else None)
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = list(tail)
        self.cause = next((line.strip() for line in tail if line.strip()), "")


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


def process_stamp(pid: int | None = None) -> str | None:
    """``BOOT.START`` of a running process (8 hex digits of the boot id, its start
    time in clock ticks since boot): what tells a PID reused after the process
    died (or after a reboot) apart from the process itself; ``None`` if gone."""
    try:
        with open(f"/proc/{pid or os.getpid()}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip().replace("-", "")[:8]
    except OSError:
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return f"{boot}.{int(fields[19])}"


def temp_tag() -> str:
    """``PID-BOOT.START`` of this process, for names of temporary files that
    :func:`stale_temps` of a later run recognises once this process is gone."""
    return f"{os.getpid()}-{process_stamp() or '0.0'}"


_TEMP = re.compile(r"^\..+\.(?:tmp|old)-(\d+)(?:-([0-9a-f]{8}\.\d+))?(?:-[0-9a-f]+)?$")


def stale_temps(directory: Path) -> list[Path]:
    """Hidden temporaries (``.NAME.tmp-TAG...``, ``.NAME.old-TAG...``) in ``directory``
    whose process is dead: its PID runs no more, or runs another process (other
    start time or boot).  Names without a stamp count only when the PID is gone;
    nothing else is ever listed."""
    if not os.path.isdir("/proc/self"):
        return []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    stale = []
    for name in names:
        match = _TEMP.match(name)
        if match is None:
            continue
        pid, stamp = int(match.group(1)), match.group(2)
        now = process_stamp(pid)
        if now is None or (stamp is not None and stamp != now):
            stale.append(directory / name)
    return stale


def remove_stale_temps(directory: Path, prefixes: tuple[str, ...] = (".",)) -> list[str]:
    """Remove (and log) the :func:`stale_temps` of ``directory`` starting with one
    of ``prefixes``; returns their names.  Hold the lock guarding ``directory``."""
    removed = []
    for path in stale_temps(directory):
        if path.name.startswith(prefixes):
            try:
                fileutil.remove_path(path)
            except OSError as exc:
                LOG.warning("cannot remove %s, left by a build that died: %s", path, exc.strerror)
                continue
            LOG.info("removed %s, left by a build that died", path.name)
            removed.append(path.name)
    return removed


def _kill_group(proc: _Proc) -> None:
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
    LOG.debug("run: %s", fileutil.redact_urls(" ".join(argv)))
    full, rfd, wfd = _supervised(argv)
    try:
        proc = subprocess.Popen(full, env=dict(env) if env is not None else None, cwd=cwd,  # noqa: S603 - the one place commands run; argv lists, never a shell string
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, pass_fds=(wfd,))
    except BaseException:
        os.close(rfd)
        os.close(wfd)
        raise
    _track(proc, argv)
    try:
        _check_exec(proc, rfd, wfd, argv)
        out, err = proc.communicate(input)
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        _track(proc, None)
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
    LOG.debug("stream: %s", fileutil.redact_urls(" ".join(argv)))
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    full, rfd, wfd = _supervised(argv)
    try:
        proc = subprocess.Popen(full, env=dict(env) if env is not None else None, cwd=cwd,  # noqa: S603 - the one place commands run; argv lists, never a shell string
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                pass_fds=(wfd,))
    except BaseException:
        os.close(rfd)
        os.close(wfd)
        raise
    assert proc.stdout is not None
    _track(proc, argv)
    try:
        _check_exec(proc, rfd, wfd, argv)
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
        _track(proc, None)
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
            live = [p for p, asked in _LIVE.items() if asked == tuple(argv)]
        for proc in live:
            _kill_group(proc)
        worker.join()
    code, tail = result[0]
    return (None if expired.is_set() else code), tail
