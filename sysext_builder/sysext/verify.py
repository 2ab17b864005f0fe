"""Merge an image with the real systemd-sysext, without touching the host.

A scratch root is built in a temporary directory::

    ROOT/etc/os-release               the target's os-release (a copy)
    ROOT/usr/, ROOT/opt/              empty hierarchies to merge into
    ROOT/var/lib/extensions/IMAGE     a copy of the image (systemd 252 ignores
                                      symlinks under --root)

and one process runs, as root::

    unshare -m --propagation private bash -c SCRIPT sysext-merge ROOT OUT SYSEXT

SCRIPT makes ``/`` rshared inside the new namespace (so the overlay that
systemd-sysext mounts in its own child namespace propagates back to ours),
mounts a tmpfs on ``/run``, lists ``ROOT/usr`` and ``ROOT/opt``, runs
``SYSTEMD_LOG_LEVEL=debug systemd-sysext --root=ROOT merge``, lists again,
copies ``ROOT/usr/.systemd-sysext/extensions`` (the names systemd merged),
and unmerges.  Results are written to files in OUT, outside ROOT.  Every
mount lives in the private namespace and dies with it when the script exits
(or is killed: the runner kills the whole process group on interrupt), so
nothing is left mounted and the host's ``/usr`` is never affected.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sysext_builder import runner
from sysext_builder.errors import (
    EnvironmentUnusableError,
    ImageError,
    OutputError,
    ToolMissingError,
)
from sysext_builder.sysext import osrelease
from sysext_builder.sysext.compat import image_name

LOG = logging.getLogger(__name__)

HIERARCHIES = ("usr", "opt")
_META_DIR = ".systemd-sysext"

# The tmpfs on /run matters: systemd-sysext builds its overlays in a workspace under
# /run/systemd/sysext (not below --root), which must not be the host's.
_SCRIPT = r"""
set -u
root=$1 out=$2 sysext=$3
mount --make-rshared / || exit 90
mount -t tmpfs tmpfs /run || exit 90
list() { (cd "$root" && find usr opt -mindepth 1 ! -type d -print0); }
list > "$out/before" || exit 91
SYSTEMD_LOG_LEVEL=debug "$sysext" --root="$root" merge >&2
rc=$?
echo "$rc" > "$out/rc"
[ "$rc" -eq 0 ] || exit "$rc"
list > "$out/after"
cat "$root/usr/$4/extensions" "$root/opt/$4/extensions" > "$out/merged" 2>/dev/null
shift 4
if [ $# -gt 0 ]; then
    mkdir -p "$root/proc" "$root/dev"
    mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev"
    i=0
    for cmd in "$@"; do
        chroot "$root" /bin/sh -c "$cmd" > "$out/cmd$i" 2>&1
        echo $? > "$out/cmd$i.rc"
        i=$((i + 1))
    done
fi
"$sysext" --root="$root" unmerge >&2
exit 0
"""

#: systemd-sysext debug chatter that never explains a refusal
_NOISE = ("Opened ", "Successfully ", "Mounting ", "Bind-mounting ", "Checking for ",
          "Failed to read /etc/", "PR_SET_MM", "Hierarchy ", "Host hierarchy ")


@dataclass(frozen=True)
class MergeResult:
    """What one merge did."""

    #: the extension name systemd derives from the installed file name
    name: str
    #: extension names systemd-sysext reports as merged
    merged: tuple[str, ...]
    #: paths (relative to the root, sorted) of non-directories that appeared
    #: under usr/ and opt/, systemd's own .systemd-sysext markers left out
    appeared: tuple[str, ...]
    #: systemd-sysext's output (debug level)
    log: tuple[str, ...]
    #: (exit status, output) of each command run chrooted into the merged root
    commands: tuple[tuple[int, str], ...] = ()

    @property
    def accepted(self) -> bool:
        return self.name in self.merged

    def refusal(self) -> str | None:
        """systemd-sysext's own words on why the extension was not merged."""
        if self.accepted:
            return None
        quoted = f"'{self.name}'"
        lines = [line for line in self.log if not line.startswith(_NOISE)
                 and (quoted in line or line.startswith(("No suitable", "Extension "))
                      or "refusing" in line)]
        return " ".join(lines) or "systemd-sysext did not merge it"


def systemd_version() -> int | None:
    """The version of the systemd-sysext on PATH, or None without one."""
    try:
        tool = runner.require_tool("systemd-sysext")
    except ToolMissingError:
        return None
    done = runner.run([tool, "--version"], check=False)
    match = re.match(r"systemd (\d+)", done.stdout)
    return int(match.group(1)) if match else None


def _check_environment() -> dict[str, str]:
    if os.geteuid() != 0:
        raise EnvironmentUnusableError(
            "merging needs root: systemd-sysext mounts the image in a private mount namespace",
            hint="run as root (or drop the merge test)")
    return {tool: runner.require_tool(tool)
            for tool in ("unshare", "bash", "mount", "systemd-sysext")}


def _prepare_root(root: Path, image: Path, os_release: Mapping[str, str] | Path) -> Path:
    for rel in ("etc", *HIERARCHIES, "var/lib/extensions"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    # etc/ is where systemd looks first for the host's os-release
    target = root / "etc" / "os-release"
    if isinstance(os_release, Path):
        shutil.copyfile(os_release, target)
    else:
        target.write_text(osrelease.render(os_release), encoding="utf-8")
    installed = root / "var/lib/extensions" / image.name
    # a copy, never a symlink: systemd 252 ignores symlinks under --root
    if image.is_dir():
        shutil.copytree(image, installed, symlinks=True)
    else:
        shutil.copyfile(image, installed)
    return installed


def _listing(path: Path) -> set[str]:
    if not path.exists():
        return set()
    entries = path.read_bytes().split(b"\0")
    return {os.fsdecode(e) for e in entries if e}


def _result(name: str, out: Path, log: list[str]) -> MergeResult:
    appeared = _listing(out / "after") - _listing(out / "before")
    appeared = {p for p in appeared if p.split("/")[1:2] != [_META_DIR]}
    merged: list[str] = []
    if (out / "merged").exists():
        for line in (out / "merged").read_text(encoding="utf-8").splitlines():
            if line.strip() and line.strip() not in merged:
                merged.append(line.strip())
    return MergeResult(name=name, merged=tuple(merged), appeared=tuple(sorted(appeared)),
                       log=tuple(log))


def _run(tools: Mapping[str, str], root: Path, out: Path, name: str,
         commands: Sequence[str] = ()) -> MergeResult:
    argv = [tools["unshare"], "-m", "--propagation", "private", tools["bash"], "-c", _SCRIPT,
            "sysext-merge", str(root), str(out), tools["systemd-sysext"], _META_DIR,
            *commands]
    done = runner.run(argv, check=False)
    log = done.stderr.splitlines()
    for line in log:
        LOG.debug("systemd-sysext: %s", line)
    if not (out / "rc").exists():
        tail = "; ".join(log[-3:]) or f"exit status {done.returncode}"
        raise EnvironmentUnusableError(f"cannot set up a private mount namespace: {tail}",
                                       hint="needs CAP_SYS_ADMIN (a privileged container)")
    rc = int((out / "rc").read_text().strip() or "1")
    if rc != 0:
        errors = [line for line in log if not line.startswith(_NOISE)]
        message = f"systemd-sysext merge failed (exit {rc}): " + \
            (errors[-1] if errors else "no output")
        if errors and "loop" in errors[-1].lower():
            raise EnvironmentUnusableError(message, hint="no usable loop devices here "
                                           "(a container?); directory images need none")
        raise ImageError(message)
    if done.returncode != 0:
        LOG.warning("systemd-sysext unmerge failed (exit %d); the namespace is gone anyway",
                    done.returncode)
    result = _result(name, out, log)
    ran = []
    for i in range(len(commands)):
        rc_file = out / f"cmd{i}.rc"
        code = int(rc_file.read_text().strip()) if rc_file.exists() else -1
        text = (out / f"cmd{i}").read_text(errors="replace") if (out / f"cmd{i}").exists() \
            else ""
        ran.append((code, text))
    return dataclasses.replace(result, commands=tuple(ran))


def merge_into(image: Path, root: Path, commands: Sequence[str] = ()) -> MergeResult:
    """Merge ``image`` into the real tree ``root`` (e.g. a copy of the base) and run
    ``commands`` (shell strings) chrooted into the merged root, /proc and /dev mounted.

    The image is copied to ``root/var/lib/extensions`` for the merge and removed
    again; everything is mounted in a private namespace only, as for :func:`merge`.
    """
    image = Path(os.path.abspath(image))
    tools = _check_environment()
    installed = root / "var/lib/extensions" / image.name
    installed.parent.mkdir(parents=True, exist_ok=True)
    if image.is_dir():
        shutil.copytree(image, installed, symlinks=True)
    else:
        shutil.copyfile(image, installed)
    out = Path(tempfile.mkdtemp(prefix="sysext-merge-out-"))
    try:
        return _run(tools, root, out, image_name(image.name, systemd_version() or 252),
                    commands)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if installed.is_dir():
            shutil.rmtree(installed)
        else:
            installed.unlink(missing_ok=True)


def merge(image: Path, os_release: Mapping[str, str] | Path, *,
          workdir: Path | None = None) -> MergeResult:
    """Merge ``image`` into a scratch root whose os-release is ``os_release``.

    ``os_release`` is parsed fields (rendered) or a file (copied).  The
    scratch root is made under ``workdir`` (default: the temp dir) and
    removed afterwards.  An extension systemd-sysext ignores (incompatible)
    is a normal result: see :attr:`MergeResult.accepted` and
    :meth:`MergeResult.refusal`.  Raises :class:`EnvironmentUnusableError`
    when not root or namespaces are unavailable, :class:`ImageError` when
    systemd-sysext fails (e.g. systemd 252 and a name mismatch: "No medium
    found"), :class:`ToolMissingError` for missing tools.
    """
    image = Path(os.path.abspath(image))
    if not os.path.lexists(image):
        raise ImageError(f"{image}: no such file or directory")
    # image discovery in /var/lib/extensions considers only directories and *.raw
    if not image.is_dir() and not image.name.endswith(".raw"):
        raise ImageError(f"{image.name}: systemd-sysext only picks up NAME.raw files and "
                         "directories", hint=f"rename it to {image.name}.raw or NAME.raw")
    tools = _check_environment()
    # the name rule depends on the version; unknown: assume 252, the oldest supported
    version = systemd_version() or 252
    name = image_name(image.name, version)
    scratch = Path(tempfile.mkdtemp(prefix="sysext-merge-", dir=workdir))
    root, out = scratch / "root", scratch / "out"
    try:
        out.mkdir()
        try:
            _prepare_root(root, image, os_release)
        except OSError as exc:
            raise OutputError(f"cannot prepare the scratch root in {scratch}: {exc}") from exc
        LOG.info("merging %s into a scratch root in a private mount namespace", image.name)
        return _run(tools, root, out, name)
    finally:
        if any(os.path.ismount(root / h) for h in HIERARCHIES):
            # cannot happen (the mounts live in the dead namespace); never delete through one
            LOG.error("%s is still mounted; leaving %s in place", root, scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
