"""A minimal Debian base tree for the functional tests.

``base_tarball()`` runs ``tools/make-debian-base`` once per test process; the script
keeps the tarball in /var/cache/sysext-builder-tests between runs (keyed by release,
architecture, package list and apt sources), so only the first run on a machine
bootstraps (about a minute) and later ones reuse it without the network.

``DebianBaseTree`` extracts it into a fresh temporary directory: a private copy of
the base that a test may change.  The tree has apt, python3, systemd and
ca-certificates; its apt sources point at this host's Debian mirror, but its
package lists are empty (run ``apt-get update`` first), its /etc/resolv.conf is an
empty file (bind the host's over it for network access), and apt/dpkg want /proc
mounted inside a chroot (``unshare -m --propagation private`` keeps such mounts
from leaking).

Environment: ``SYSEXT_BUILDER_TEST_DEBIAN_RELEASE`` (default bookworm) and
``SYSEXT_BUILDER_TEST_CACHE_DIR`` (default: the script's) choose the tarball.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import fixtures

from tests.base import require

REPO_ROOT = Path(__file__).resolve().parents[2]
MAKE_DEBIAN_BASE = REPO_ROOT / "tools" / "make-debian-base"
RELEASE = os.environ.get("SYSEXT_BUILDER_TEST_DEBIAN_RELEASE", "bookworm")
CACHE_DIR = os.environ.get("SYSEXT_BUILDER_TEST_CACHE_DIR")
#: A first bootstrap takes about a minute; allow for a slow mirror.
BUILD_TIMEOUT = 1800

# tools/make-debian-base exit statuses that mean "this machine cannot", not "broken":
# the require() kind and what is missing.
_SKIP_STATUSES = {
    3: ("tools", "neither mmdebstrap nor debootstrap is installed or installable"),
    4: ("network", "no reachable Debian mirror"),
    5: ("root", "not running as root"),
}

_lock = threading.Lock()
_result: Path | BaseException | None = None


def base_tarball() -> Path:
    """The cached base tarball, built on first use; skips (see tests.base.require) where
    it cannot be."""
    global _result
    with _lock:
        if _result is None:
            try:
                _result = _make_tarball()
            except BaseException as exc:  # remembered: later tests skip or fail alike
                _result = exc
        if isinstance(_result, BaseException):
            raise _result
        return _result


def _make_tarball() -> Path:
    require("root", os.geteuid() == 0, "the Debian base tree needs root (device nodes, chroot)")
    cmd = [sys.executable, str(MAKE_DEBIAN_BASE), "--release", RELEASE]
    if CACHE_DIR:
        cmd += ["--cache-dir", CACHE_DIR]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{MAKE_DEBIAN_BASE} took over {BUILD_TIMEOUT} s") from exc
    errors = [line for line in proc.stderr.splitlines() if "make-debian-base:" in line]
    why = errors[-1] if errors else proc.stderr.strip()[-2000:]
    if proc.returncode in _SKIP_STATUSES:
        kind, missing = _SKIP_STATUSES[proc.returncode]
        require(kind, False, f"no Debian base tree ({missing}): {why}")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed with status {proc.returncode}:\n"
                           f"{proc.stderr[-4000:]}")
    path = Path(lines[-1])
    if not path.is_file():
        raise RuntimeError(f"{MAKE_DEBIAN_BASE} printed {path}, which is not a file")
    return path


def mounts_below(path: Path | str, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace (from /proc/self/mountinfo)."""
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    root = os.path.realpath(path).rstrip("/") or "/"
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if point == root or point.startswith(root + "/") or root == "/":
            found.append(point)
    return found


def remove_tree(path: Path | str) -> None:
    """rm -rf that refuses (loudly) when anything is mounted at or below ``path``.

    Read-only directories are made writable as needed (matters when not root).
    """
    path = Path(path)
    if not os.path.lexists(path):
        return
    mounted = mounts_below(path)
    if mounted:
        raise RuntimeError(
            f"refusing to remove {path}: still mounted below it: {', '.join(mounted)}")

    def retry_writable(func: Callable[..., object], failed: str, _exc_info: object) -> None:
        if not os.path.lexists(failed):  # removed by an earlier retry
            return
        parent = os.path.dirname(failed)
        mode = os.lstat(parent).st_mode
        os.chmod(parent, stat.S_IMODE(mode) | stat.S_IRWXU)
        if func is os.open or func is os.scandir:  # an unreadable directory itself
            os.chmod(failed, stat.S_IMODE(os.lstat(failed).st_mode) | stat.S_IRWXU)
            shutil.rmtree(failed, onerror=retry_writable)
        else:
            func(failed)

    shutil.rmtree(path, onerror=retry_writable)


class DebianBaseTree(fixtures.Fixture):
    """A fresh copy of the Debian base tree in a temporary directory, as ``.path``.

    Extraction runs as root with numeric owners, device nodes and modes kept.
    Cleanup removes the copy, but fails loudly (and removes nothing) if anything
    is still mounted below it.
    """

    def __init__(self, parent_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self._parent_dir = parent_dir
        self.path: Path
        self.tarball: Path

    def _setUp(self) -> None:
        self.tarball = base_tarball()
        self.path = Path(tempfile.mkdtemp(prefix="sysext-debian-base-", dir=self._parent_dir))
        self.addCleanup(remove_tree, self.path)
        self.path.chmod(0o755)  # a root directory, not mkdtemp's 0700
        proc = subprocess.run(
            ["tar", "--numeric-owner", "-xpf", str(self.tarball), "-C", str(self.path)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"extracting {self.tarball} failed: {proc.stderr.strip()}")
