"""Tree rules: turning a staging root into something systemd-sysext merges.

systemd-sysext merges only ``/usr`` and ``/opt``; whatever an element left in
``etc/`` or ``var/`` would be silently ignored on the host.  So before the
image is packed:

:func:`lower_etc_var`
    moves ``etc/`` defaults under ``usr/share/factory/etc/`` and writes
    ``usr/lib/tmpfiles.d/NAME-etc.conf`` so systemd-tmpfiles puts them in place
    on the host *if missing*; directories of ``var/`` become lines of
    ``usr/lib/tmpfiles.d/NAME-var.conf``.  The line shapes::

        C /etc/PATH - - - - /usr/share/factory/etc/PATH   regular file: copy if missing
        L /etc/PATH - - - - TARGET                        symlink: recreate if missing
        d /etc/PATH MODE - - -                            directory (see below)
        d /var/PATH MODE - - -                            directory (see below)

    A directory gets a ``d`` line when it is empty or its mode is not 0755
    (tmpfiles creates the parents of other lines as 0755 itself).  Owner and
    group are ``-``: tmpfiles creates the directory as root, like everything in
    the image, but does not chown a directory the host already has (``root
    root`` would take ``/var/lib/foo`` away from the ``foo`` user at every
    boot).  Files or symlinks under ``var/`` are an error: state cannot be
    lowered safely.  ``systemd-sysext.service`` runs before
    ``systemd-tmpfiles-setup.service``, so the lines apply in the boot that
    merges the image.  Paths are escaped for tmpfiles.d as systemd 252 reads them:
    ``%%`` for ``%``; path fields double-quoted (with ``\\"``, ``\\\\``) when
    they hold blanks or quotes; arguments C-escaped (``\\x20``, ``\\\\``).

:func:`validate`
    the rules systemd and this project enforce: only ``usr/`` and ``opt/``,
    ``usr`` a real directory, no ``usr/lib/os-release``, no device nodes, fifos
    or sockets, no symlink leaving ``/usr`` and ``/opt`` except into an
    ``/etc`` path the lowered ``/etc`` or the base provides (the link rule is
    :mod:`.links`).

:func:`normalise`
    every mtime/atime set to ``SOURCE_DATE_EPOCH``; owner 0:0 when running as
    root; modes kept (set-id bits cleared by ``chown`` are restored).
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sysext_builder import fileutil
from sysext_builder.errors import ConfigError, TreeRuleError
from sysext_builder.sysext import links
from sysext_builder.sysext.links import MERGED
from sysext_builder.sysext.links import shown as _shown

LOG = logging.getLogger(__name__)

# tmpfiles.d(5)'s conventional source for C lines (C without argument copies from there)
FACTORY_ETC = "usr/share/factory/etc"
TMPFILES_DIR = "usr/lib/tmpfiles.d"
_SHOWN = 10  # paths named per problem before "and N more"


@dataclass(frozen=True)
class Lowering:
    """One ``etc/``/``var/`` entry lowered into ``/usr`` (for logs and the manifest)."""

    source: str  # relative to the staging root, e.g. "etc/chrony/chrony.conf"
    action: str  # "copy", "symlink" or "directory"
    detail: str  # the tmpfiles.d line that recreates it on the host


def _walk(top: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry below ``top`` as (relative posix path, lstat), parents first.

    Sorted by name inside each directory; does not follow symlinks; iterative,
    so deep trees cannot exhaust the recursion limit.
    """
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(top / rel if rel else top) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            yield child, st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(child)
        stack.extend(reversed(subdirs))


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "file"


def _is_special(mode: int) -> bool:
    return _kind(mode) != "file"


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _blocked(root: Path, rel: str) -> str | None:
    """The first existing component of ``rel`` (excluding the last) that is not a real dir."""
    parts = rel.split("/")
    for index in range(1, len(parts)):
        prefix = "/".join(parts[:index])
        candidate = root / prefix
        if os.path.lexists(candidate) and not _is_real_dir(candidate):
            return prefix
    return None


def _tmpfiles_path(path: str) -> str:
    """A tmpfiles.d path field: ``%%`` for ``%``; double-quoted when it has blanks or quotes."""
    text = path.replace("%", "%%")
    if any(c.isspace() or c in "\"'\\" for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _tmpfiles_arg(text: str) -> str:
    """A tmpfiles.d argument (C-unescaped, then specifier-expanded by tmpfiles)."""
    out = []
    for char in text:
        if char in "%\\":
            out.append(char * 2)
        elif char.isspace():
            out.append("".join(f"\\x{b:02x}" for b in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def _expressible(text: str) -> bool:
    """UTF-8 and free of control characters (tmpfiles.d is a line-based text format)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


@dataclass
class _Plan:
    lowerings: list[Lowering]
    moves: list[str]  # etc/-relative paths of files moved to the factory
    problems: list[str]


def _dir_line(top: str, rel: str, mode: int) -> str:
    return f"d {_tmpfiles_path(f'/{top}/{rel}')} {stat.S_IMODE(mode):04o} - - -"


def _plan_etc(root: Path) -> _Plan:
    plan = _Plan([], [], [])
    entries = list(_walk(root / "etc"))
    parents = {posixpath.dirname(rel) for rel, _ in entries}
    special: list[str] = []
    undecodable: list[str] = []
    taken: list[str] = []
    for rel, st in entries:
        source = f"etc/{rel}"
        target = os.readlink(root / source) if stat.S_ISLNK(st.st_mode) else ""
        if not _expressible(rel) or not _expressible(target):
            undecodable.append(_shown(source))
        elif stat.S_ISLNK(st.st_mode):
            # L and C (without "+") act only when the path is missing on the host,
            # so the admin's own /etc file always wins over the image's default
            line = f"L {_tmpfiles_path('/etc/' + rel)} - - - - {_tmpfiles_arg(target)}"
            plan.lowerings.append(Lowering(source, "symlink", line))
        elif stat.S_ISREG(st.st_mode):
            dest = f"{FACTORY_ETC}/{rel}"
            if os.path.lexists(root / dest) or _blocked(root, dest):
                taken.append(_shown(dest))
            line = (f"C {_tmpfiles_path('/etc/' + rel)} - - - - "
                    f"{_tmpfiles_arg(f'/{FACTORY_ETC}/{rel}')}")
            plan.lowerings.append(Lowering(source, "copy", line))
            plan.moves.append(rel)
        elif stat.S_ISDIR(st.st_mode):
            if rel not in parents or stat.S_IMODE(st.st_mode) != 0o755:
                line = _dir_line("etc", rel, st.st_mode)
                plan.lowerings.append(Lowering(source, "directory", line))
        else:
            special.append(f"{_shown(source)} ({_kind(st.st_mode)})")
    if special:
        plan.problems.append(f"etc/ holds entries that cannot be lowered: {_listing(special)}")
    if undecodable:
        plan.problems.append(f"etc/ names or link targets with control characters or "
                             f"invalid UTF-8: {_listing(undecodable)}")
    if taken:
        plan.problems.append(f"lowering etc/ collides with existing paths: {_listing(taken)}")
    return plan


def _plan_var(root: Path) -> _Plan:
    plan = _Plan([], [], [])
    entries = list(_walk(root / "var"))
    parents = {posixpath.dirname(rel) for rel, _ in entries}
    content: list[str] = []
    for rel, st in entries:
        source = f"var/{rel}"
        # files under /var are state the build left (databases, caches, logs), not
        # defaults to seed the host with; only directories are lowered
        if not stat.S_ISDIR(st.st_mode) or not _expressible(rel):
            content.append(_shown(source))
        elif rel not in parents or stat.S_IMODE(st.st_mode) != 0o755:
            plan.lowerings.append(Lowering(source, "directory", _dir_line("var", rel, st.st_mode)))
    if content:
        plan.problems.append(
            f"var/ holds content that cannot be lowered (only empty directories can): "
            f"{_listing(content)}")
    return plan


def write_new(root: Path, rel: str, text: str, what: str, hint: str) -> None:
    """Write a file the builder makes (mode 0644) at ``rel``, parents included;
    a path already in the staging tree is a :class:`TreeRuleError` naming ``what``."""
    if os.path.lexists(root / rel):
        raise TreeRuleError(f"{what}: {rel} already exists in the staging tree", hint=hint)
    write_in(root, rel, text, what)


def write_in(root: Path, rel: str, text: str, what: str = "") -> None:
    """Write ``text`` (mode 0644) at ``rel`` through directory fds, never through a link.

    Parents are made as by :func:`ensure_dirs`; a symlink, directory or special
    file at ``rel`` itself is a :class:`TreeRuleError` naming ``what`` and ``rel``,
    never a write outside ``root``.
    """
    ensure_dirs(root, posixpath.dirname(rel), what)
    try:
        fileutil.write_file_in(root, rel, text.encode("utf-8"), 0o644)
    except fileutil.NotContained as exc:
        where = f"{what}: " if what else ""
        raise TreeRuleError(f"{where}{exc.path} {exc.reason}, not written",
                            hint="files the builder writes must not be planted links") from None


def ensure_dirs(root: Path, rel_dir: str, source: str = "") -> None:
    """Create ``root/rel_dir`` (0755 each); a symlink or file on the way is an error.

    Made through directory fds without following any symlink
    (:func:`sysext_builder.fileutil.makedirs_in`), so nothing is created outside ``root``.
    """
    try:
        fileutil.makedirs_in(root, rel_dir, 0o755)
    except fileutil.NotContained as exc:
        where = f"{source}: " if source else ""
        what = exc.reason.removeprefix("is ")
        raise TreeRuleError(f"{where}{exc.path} is not a real directory ({what})",
                            hint="directories inside the image must be real directories") from None


def _write_conf(root: Path, rel: str, header: str, lowerings: list[Lowering]) -> None:
    ensure_dirs(root, posixpath.dirname(rel))
    lines = [ln.detail for ln in sorted(lowerings, key=lambda ln: ln.source)]
    write_in(root, rel, header + "\n" + "\n".join(lines) + "\n")


def lower_etc_var(root: Path, *, strict: bool, name: str) -> list[Lowering]:
    """Lower ``etc/`` and ``var/`` of the staging ``root`` into ``usr/``; see the module doc.

    Returns what was lowered (empty when there was nothing).  With ``strict``
    any lowering is a :class:`TreeRuleError` instead.
    """
    if not name or "/" in name:
        raise TreeRuleError(f"invalid extension name {name!r} for tmpfiles.d file names")
    plans = {top: (_plan_etc(root) if top == "etc" else _plan_var(root))
             for top in ("etc", "var") if _is_real_dir(root / top)}
    problems = [p for plan in plans.values() for p in plan.problems]
    confs = {top: f"{TMPFILES_DIR}/{name}-{top}.conf" for top, plan in plans.items()
             if plan.lowerings}
    for conf in confs.values():
        if os.path.lexists(root / conf) or _blocked(root, conf):
            problems.append(f"{conf} already exists in the staging tree")
    if problems:
        raise TreeRuleError("cannot lower etc/ and var/: " + "; ".join(problems),
                            hint="remove these in a cleanup.d hook, or ship defaults under "
                                 "/usr and create state at runtime with tmpfiles.d")
    lowered = [ln for plan in plans.values() for ln in plan.lowerings]
    if strict and lowered:
        raise TreeRuleError(f"--strict: {len(lowered)} entries under etc/ and var/ would be "
                            f"lowered: {_listing([_shown(ln.source) for ln in lowered])}",
                            hint="move them under /usr in the element, or build without --strict")
    if "etc" in plans:
        for rel in plans["etc"].moves:
            dest = f"{FACTORY_ETC}/{rel}"
            ensure_dirs(root, posixpath.dirname(dest))
            os.rename(root / "etc" / rel, root / dest)
    headers = {"etc": f"# {name}: /etc defaults of the extension, put in place if missing",
               "var": f"# {name}: /var directories of the extension"}
    for top, conf in confs.items():
        _write_conf(root, conf, headers[top], plans[top].lowerings)
    for lowering in lowered:
        LOG.info("lowered %s: %s", lowering.source, lowering.detail)
    for top in plans:
        LOG.debug("removing %s/ from the staging tree", top)
        shutil.rmtree(root / top)
    return lowered


def _check_top(root: Path, problems: list[str]) -> None:
    names = sorted(os.listdir(root))
    extra = [_shown(n) for n in names if n not in MERGED]
    if extra:
        problems.append(f"only usr/ and opt/ are merged, found: {_listing(extra)}")
    if not os.path.lexists(root / "usr"):
        problems.append("usr/ is missing")
    for top in MERGED:
        if os.path.lexists(root / top) and not _is_real_dir(root / top):
            problems.append(f"{top} is not a real directory (a symlink or file)")
    # It would shadow the host's os-release, i.e. change what OS the host claims
    # to be; extension_has_forbidden_content() refuses such images.
    if os.path.lexists(root / "usr/lib/os-release"):
        problems.append("usr/lib/os-release is present (systemd refuses such extensions)")


def validate(root: Path, *, etc: links.EtcSources | None = None) -> None:
    """Raise :class:`TreeRuleError` naming every path that breaks the sysext rules.

    ``etc`` says which ``/etc`` paths exist at boot (the image's lowered
    ``/etc``, the base's): a symlink into one of them is accepted, see
    :mod:`.links`.  Without it every link into ``/etc`` is refused as outside
    ``/usr`` and ``/opt``.  The extension-release file is the builder's own
    (written and checked by :mod:`.assemble`), so it is not required here.
    """
    problems: list[str] = []
    _check_top(root, problems)
    special: list[str] = []
    refused: list[links.Refusal] = []
    for top in MERGED:
        if not _is_real_dir(root / top):
            continue
        for rel, st in _walk(root / top):
            path = f"{top}/{rel}"
            if stat.S_ISLNK(st.st_mode):
                refusal = links.check(path, os.readlink(root / path), etc)
                if refusal:
                    refused.append(refusal)
            # a 0/0 character device is an overlayfs whiteout: in the merged
            # overlay it would hide the host's file of that name
            elif _is_special(st.st_mode):
                special.append(f"{_shown(path)} ({_kind(st.st_mode)})")
    if special:
        problems.append(f"device nodes, fifos or sockets: {_listing(special)}")
    if refused:
        problems.append("symlinks pointing outside the merged hierarchies: "
                        + _listing([r.text for r in refused]))
    if problems:
        etc_hint = f"; {links.ETC_HINT}" if any(r.etc for r in refused) else ""
        raise TreeRuleError("staging tree breaks the sysext rules: " + "; ".join(problems),
                            hint="fix or remove these in a finalise.d/cleanup.d hook; "
                                 "systemd-sysext merges only /usr and /opt" + etc_hint)


def normalise(root: Path, epoch: int) -> None:
    """Set every timestamp to ``epoch``; owner 0:0 when root; modes kept."""
    if epoch < 0:
        raise ConfigError(f"SOURCE_DATE_EPOCH must not be negative, got {epoch}")
    # mksquashfs clamps only times newer than SOURCE_DATE_EPOCH, so older ones are
    # set here; as non-root the owners stay (both packers record 0:0 anyway).
    as_root = os.geteuid() == 0
    entries = [(root / rel, st) for rel, st in _walk(root)]
    entries.reverse()  # children before their directory
    entries.append((root, root.lstat()))
    for path, st in entries:
        if as_root and (st.st_uid, st.st_gid) != (0, 0):
            os.chown(path, 0, 0, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(st.st_mode))  # chown cleared set-id bits
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    LOG.debug("normalised %d entries to mtime %d%s", len(entries), epoch,
              " and owner 0:0" if as_root else "")
