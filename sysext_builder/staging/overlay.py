"""The build overlay over a base, and turning its upper layer into an extension.

While hooks run, the base is the read-only lower layer and ``WORK/upper`` the
upper layer of an overlay mounted at ``WORK/merged``.  Every command that
needs it (a hook, a package manager) runs in its own private mount namespace
(``unshare --mount``) through ``lib/overlay-run``, which mounts the overlay
(and, chrooted, ``/proc``, ``/dev``, ``/sys``, resolv.conf and the builder's
directories) and then runs the command; the mounts die with the namespace on
every exit path, so nothing is left mounted however the build ends.

Afterwards :func:`extract` moves what the extension really adds out of the
upper layer: ``usr/`` and ``opt/``, where files identical to the base are
dropped and deletions of base files (whiteouts, opaque directories) are
errors because a system extension cannot remove anything.  Absolute symlinks
through the base's top-level links (``/bin/ip`` on a merged-/usr base) are
rewritten to the /usr path they mean.

Of ``etc/`` only what the build *added* is moved, to be lowered into
``usr/share/factory/etc`` like without a base (:func:`.tree.lower_etc_var`):
a change to a file the base has cannot be carried (the target keeps its own
``/etc``), so it is skipped with a warning (an error with ``strict``);
deletions are ignored with a warning; the account files (carried as
sysusers.d lines) and :data:`HOST_STATE_ETC` are never moved.  ``var/`` and
everything else stays behind: under ``var/`` the upper layer holds the
package manager's database, caches and logs, which even without a base
cannot be lowered (only empty directories can), and the directories a
package needs there are made at runtime by its tmpfiles.d lines or units.
"""

from __future__ import annotations

import errno
import filecmp
import fnmatch
import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder import paths
from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext.links import shown
from sysext_builder.sysext.users import ACCOUNT_FILES

LOG = logging.getLogger(__name__)

#: where the builder's directories appear inside the chroot
INSIDE = {
    "elements": "/tmp/sysext-elements",
    "hooks": "/tmp/in_target.d",
    "tmp": "/tmp/sysext-build",
    "artifacts": "/tmp/sysext-artifacts",
    "state": "/tmp/sysext-state",
    "lib": "/tmp/sysext-lib",
    "ca": "/tmp/sysext-ca",  # the host's CA bundle, when it names one (buildenv)
}

# the hierarchies systemd-sysext merges; the rest of the upper layer (package
# databases, logs, /etc edits of maintainer scripts) is build state
_KEEP = ("usr", "opt")
# the overlay is mounted without userxattr, so its bookkeeping is in trusted.*
_OVERLAY_XATTR = "trusted.overlay."
_SHOWN = 10  # paths named per log line or error before "and N more"

#: etc/ entries (patterns relative to etc/) never lowered from the upper layer,
#: besides the account files: state of one machine or of the build itself,
#: which "copy if missing" would plant, the same, on every target
HOST_STATE_ETC = (
    "machine-id",             # one machine's identity; the target makes its own at first boot
    "ld.so.cache",            # ldconfig's index of the build's libraries; rebuilt on the target
    "resolv.conf",            # the build host's name servers (lib/overlay-run binds it there)
    "adjtime",                # one machine's hardware clock drift
    "subuid", "subgid", "subuid-", "subgid-",  # account data that sysusers.d does not carry
    "ssh/ssh_host_*",         # host keys openssh-server's postinst generates: a secret each
    "ssl/private/ssl-cert-snakeoil.key",  # ssl-cert's generated key pair: a secret too
    "ssl/certs/ssl-cert-snakeoil.pem",
)


@dataclass(frozen=True)
class Overlay:
    lower: Path
    upper: Path
    work: Path
    merged: Path

    @classmethod
    def under(cls, lower: Path, workdir: Path) -> Overlay:
        overlay = cls(lower, workdir / "upper", workdir / "ovl-work", workdir / "merged")
        for d in (overlay.upper, overlay.work, overlay.merged):
            d.mkdir(exist_ok=True)
        overlay.upper.chmod(0o755)
        return overlay

    def environment(self, *, chroot: bool,
                    binds: Sequence[tuple[Path, str]] = ()) -> dict[str, str]:
        """The SB_OVERLAY_* settings lib/overlay-run reads (it removes them)."""
        return {
            "SB_OVERLAY_LOWER": str(self.lower),
            "SB_OVERLAY_UPPER": str(self.upper),
            "SB_OVERLAY_WORK": str(self.work),
            "SB_OVERLAY_MERGED": str(self.merged),
            "SB_OVERLAY_CHROOT": "1" if chroot else "0",
            "SB_OVERLAY_BINDS": "\n".join(f"{src} {dest}" for src, dest in binds),
        }

    @staticmethod
    def wrap(argv: Sequence[str]) -> list[str]:
        """argv running ``argv`` inside a fresh private mount namespace with the overlay."""
        script = paths.shell_lib_dir() / "overlay-run"
        return ["unshare", "--mount", "--propagation", "private", "--fork", "--",
                str(script), *argv]


def _is_whiteout(st: os.stat_result) -> bool:
    # overlayfs records the deletion of a lower file as a 0/0 character device
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    # A directory removed and made again is marked opaque ("y"): it hides all the
    # lower layer had there.  Since Linux 6.7 "x" marks a non-opaque one.
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _same_as_base(upper: str, lower: str, st: os.stat_result) -> bool:
    # A copy-up (chmod, touch, a package reinstall) leaves identical files in the
    # upper layer; shipping them would only pin the base's version over the host's.
    try:
        lst = os.lstat(lower)
    except FileNotFoundError:
        return False
    if stat.S_IFMT(st.st_mode) != stat.S_IFMT(lst.st_mode):
        return False
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(upper) == os.readlink(lower)
    if stat.S_ISREG(st.st_mode):
        return (stat.S_IMODE(st.st_mode) == stat.S_IMODE(lst.st_mode)
                and st.st_size == lst.st_size and filecmp.cmp(upper, lower, shallow=False))
    return False


def _strip_overlay_xattrs(path: str) -> None:
    # os.rename keeps xattrs, and the build overlay's trusted.overlay.* (origin,
    # impure, opaque, ...) would reach the image: the overlay systemd-sysext mounts
    # reads them from its layers (a stale opaque flag hides the host's directory),
    # and they differ from build to build.
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return
        raise
    for name in names:
        if name.startswith(_OVERLAY_XATTR):
            os.removexattr(path, name, follow_symlinks=False)


def _problems_in(top: str, lower_top: str) -> list[str]:
    problems = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            shown = os.path.normpath(os.path.join(os.path.basename(top), rel, name))
            # An extension can only add: a deletion cannot be carried to the host,
            # whose /usr may not even be this base.  An opaque directory with nothing
            # below it in the base hides nothing and is only stripped.
            if _is_whiteout(st):
                problems.append(f"/{shown} (deleted)")
            elif stat.S_ISDIR(st.st_mode) and _is_opaque(full) and \
                    os.path.isdir(os.path.join(lower_top, rel, name)):
                problems.append(f"/{shown}/ (replaced)")
    return problems


def _listing(paths: list[str]) -> str:
    """Printable, on one line, at most :data:`_SHOWN` of them named."""
    return ", ".join(shown(p) for p in paths[:_SHOWN]) + (
        f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def _host_state(rel: str) -> bool:
    """``rel`` (``etc/...``) is an account file or in :data:`HOST_STATE_ETC`."""
    inside = rel.removeprefix("etc/")
    return inside in ACCOUNT_FILES or any(fnmatch.fnmatchcase(inside, pattern)
                                          for pattern in HOST_STATE_ETC)


@dataclass
class EtcPlan:
    """What :func:`extract` does with the upper layer's ``etc/`` (root-relative paths)."""

    added: list[str] = field(default_factory=list)  # files and symlinks: moved, to be lowered
    new_dirs: list[str] = field(default_factory=list)  # directories the base lacks: made
    identical: int = 0  # copy-ups equal to the base's: dropped
    modified: list[str] = field(default_factory=list)  # base entries changed: not carried
    deleted: list[str] = field(default_factory=list)  # whiteouts, opaque dirs: ignored
    host_state: list[str] = field(default_factory=list)  # accounts, HOST_STATE_ETC: never


def plan_etc(upper: str, lower: str, rel: str = "etc", plan: EtcPlan | None = None) -> EtcPlan:
    """Sort the entries below ``upper/rel`` by what the base has at ``lower/rel``."""
    plan = EtcPlan() if plan is None else plan
    for name in sorted(os.listdir(os.path.join(upper, rel))):
        child = f"{rel}/{name}"
        st = os.lstat(os.path.join(upper, child))
        try:
            base: os.stat_result | None = os.lstat(os.path.join(lower, child))
        except (FileNotFoundError, NotADirectoryError):
            base = None
        if _is_whiteout(st):
            plan.deleted.append(f"/{child} (deleted)")
        elif _host_state(child):
            plan.host_state.append(child)
        elif stat.S_ISDIR(st.st_mode):
            if base is not None and not stat.S_ISDIR(base.st_mode):
                plan.modified.append(f"{child}/")  # replaced a base file: not looked into
                continue
            if base is None:
                plan.new_dirs.append(child)  # made even when empty (a "d" line)
            elif stat.S_IMODE(st.st_mode) != stat.S_IMODE(base.st_mode):
                plan.modified.append(f"{child}/ (mode)")
            if base is not None and _is_opaque(os.path.join(upper, child)):
                plan.deleted.append(f"/{child}/ (replaced)")
            plan_etc(upper, lower, child, plan)
        elif base is None:
            plan.added.append(child)
        elif _same_as_base(os.path.join(upper, child), os.path.join(lower, child), st):
            plan.identical += 1
        else:
            plan.modified.append(child)
    return plan


def _report_etc(plan: EtcPlan, strict: bool) -> None:
    if plan.modified and strict:
        raise TreeRuleError(f"--strict: changes to /etc files the base has cannot be carried: "
                            f"{_listing(plan.modified)}",
                            hint="an extension cannot change the target's own /etc; ship "
                                 "a drop-in or a new file instead, or build without --strict")
    if plan.modified:
        LOG.warning("etc/: changes to files the base has are not carried (the target keeps "
                    "its own): %s", _listing(plan.modified))
    if plan.deleted:
        LOG.warning("etc/: deletions cannot be carried, ignored: %s", _listing(plan.deleted))
    if plan.host_state:
        LOG.info("etc/: never lowered (accounts go to sysusers.d; host state): %s",
                 _listing(plan.host_state))


def _carry_etc(upper: str, lower: str, dest: str, plan: EtcPlan) -> None:
    """Make ``plan.new_dirs`` and move ``plan.added`` from ``upper`` to ``dest``;
    a directory the base has is made (above them) with the base's mode."""
    for rel, is_dir in [(d, True) for d in plan.new_dirs] + [(f, False) for f in plan.added]:
        parts = rel.split("/")
        for n in range(1, len(parts) + int(is_dir)):
            sub = "/".join(parts[:n])
            if not _is_real_dir(os.path.join(dest, sub)):
                lower_dir = os.path.join(lower, sub)
                source = lower_dir if _is_real_dir(lower_dir) else os.path.join(upper, sub)
                os.mkdir(os.path.join(dest, sub))
                os.chmod(os.path.join(dest, sub), stat.S_IMODE(os.lstat(source).st_mode))
        if not is_dir:
            os.rename(os.path.join(upper, rel), os.path.join(dest, rel))
            _strip_overlay_xattrs(os.path.join(dest, rel))


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def extract(overlay: Overlay, dest: Path, *, strict: bool = False) -> dict[str, int]:
    """Move what the extension adds from the upper layer into ``dest``.

    Returns counts (kept, identical, dropped top-level entries) for the log;
    entries of ``etc/`` moved for lowering count as kept.
    """
    upper, lower = str(overlay.upper), str(overlay.lower)
    etc = plan_etc(upper, lower) if _is_real_dir(os.path.join(upper, "etc")) else None
    dropped = sorted(set(os.listdir(upper)) - set(_KEEP) - ({"etc"} if etc else set()))
    if dropped:
        LOG.info("not part of the extension (outside /usr, /opt and /etc): %s",
                 ", ".join(dropped))
    problems: list[str] = []
    for top in _KEEP:
        if os.path.isdir(os.path.join(upper, top)):
            problems += _problems_in(os.path.join(upper, top), os.path.join(lower, top))
    if problems:
        raise TreeRuleError(f"the build removed files of the base: {_listing(problems)}",
                            hint="a system extension can only add files; keep the base's "
                                 "files (do not uninstall base packages)")
    if etc is not None:
        _report_etc(etc, strict)
    counts = {"kept": 0, "identical": 0, "dropped": len(dropped)}
    for top in _KEEP:
        src_top = os.path.join(upper, top)
        if os.path.isdir(src_top):
            _move_tree(src_top, os.path.join(lower, top), str(dest / top), counts, lower)
    if etc is not None:
        _carry_etc(upper, lower, str(dest), etc)
        counts["kept"] += len(etc.added)
        counts["identical"] += etc.identical
    return counts


def _through_base_links(target: str, base: str) -> str:
    """An absolute link ``target`` whose first component is a relative top-level
    symlink of the base into /usr or /opt (``/bin`` -> ``usr/bin`` on a merged-/usr
    base) rewritten to the path it means there (``/bin/ip`` -> ``/usr/bin/ip``), so
    that packages' compatibility links stay inside the merged hierarchies."""
    if not target.startswith("/"):
        return target
    first, _, rest = target.lstrip("/").partition("/")
    top = os.path.join(base, first)
    if not rest or not os.path.islink(top):
        return target
    points = os.readlink(top)
    parts = points.split("/")
    if points.startswith("/") or parts[0] not in _KEEP or ".." in parts:
        return target
    return "/" + os.path.normpath(os.path.join(points, rest))


def _move_tree(src: str, lower: str, dest: str, counts: dict[str, int], base: str) -> None:
    """Move the non-identical entries of ``src`` to ``dest`` (directories recreated)."""
    st = os.lstat(src)
    os.makedirs(dest, exist_ok=True)
    os.chmod(dest, stat.S_IMODE(st.st_mode))
    for name in sorted(os.listdir(src)):
        s, lw, d = os.path.join(src, name), os.path.join(lower, name), os.path.join(dest, name)
        est = os.lstat(s)
        if stat.S_ISDIR(est.st_mode):
            _move_tree(s, lw, d, counts, base)
            if not os.listdir(d) and os.path.isdir(lw):
                os.rmdir(d)  # only there because something below it changed
            continue
        if _same_as_base(s, lw, est):
            counts["identical"] += 1
            continue
        if stat.S_ISLNK(est.st_mode):
            target = os.readlink(s)
            if _through_base_links(target, base) != target:
                os.unlink(s)
                os.symlink(_through_base_links(target, base), s)
        os.rename(s, d)
        _strip_overlay_xattrs(d)
        counts["kept"] += 1
    _strip_overlay_xattrs(dest)
