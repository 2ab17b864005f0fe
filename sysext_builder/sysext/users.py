"""Accounts the build created, carried to the target as sysusers.d lines.

Maintainer scripts and hooks create system users in ``/etc/passwd`` of the
build tree (chrony's postinst: ``adduser --system --group _chrony``), but an
extension ships only ``/usr`` and ``/opt``: a unit with ``User=_chrony`` would
fail on the target with status 217/USER.  :func:`carry_accounts` compares
``etc/passwd`` and ``etc/group`` of the build with the base's (none without
``--base``) and writes, only when the build added accounts:

* ``usr/lib/sysusers.d/NAME.conf``: ``g GROUP -``, ``u USER - "GECOS" HOME
  SHELL`` (``-:GROUP`` when the primary group is not the user's own, which the
  ``u`` line makes) and ``m USER GROUP`` for added memberships.  IDs are not
  pinned (image files are owned by 0:0 anyway; see doc/design.rst);
* ``NAME-sysusers.service`` running ``systemd-sysusers NAME.conf`` (then
  ``systemd-tmpfiles --create`` for the image's tmpfiles.d files naming the
  new accounts, whose lines fail at boot while the accounts are missing): the
  base's ``systemd-sysusers.service`` runs only when ``/etc`` needs an update,
  never after the merge;
* ``UNIT.d/10-NAME-sysusers.conf`` (``Wants=``/``After=`` that unit) for every
  service the image ships or enables, a base unit it enables included.

Accounts changed or removed in the base cannot be carried: one warning, an
error with ``strict``.  Password fields and shadow entries are compared as
digests only; no hash reaches a log, an error or the image.  Without a base
the account files are removed from the staging tree (lowering etc/ would
ship them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext import units
from sysext_builder.sysext.tree import TMPFILES_DIR, write_new

LOG = logging.getLogger(__name__)

SYSUSERS_DIR = "usr/lib/sysusers.d"
UNIT_DIR = units.SYSTEM_UNIT_DIR
#: what the build may leave in etc/ about accounts (removed without a base)
ACCOUNT_FILES = ("passwd", "group", "shadow", "gshadow", "passwd-", "group-", "shadow-",
                 "gshadow-", ".pwd.lock")
# sysusers.d(5): a-z A-Z 0-9 _ -, not starting with a digit or "-", at most 31
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,30}")
# units our unit is ordered after (directly or through them): a unit ordered
# before one of them cannot also come after the accounts
_EARLY = frozenset({"local-fs.target", "local-fs-pre.target", "systemd-remount-fs.service",
                    "systemd-sysext.service", "systemd-sysusers.service",
                    "systemd-tmpfiles-setup-dev.service",
                    "systemd-tmpfiles-setup-dev-early.service"})
_USER_FIELDS = ("uid", "gid", "gecos", "home", "shell")


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256(":".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _locked(secret: str) -> bool:
    """No usable password: empty, "x" (in shadow), or locked ("!...", "*...")."""
    return secret in ("", "x") or secret.startswith(("!", "*"))


@dataclass(frozen=True)
class User:
    name: str
    uid: str
    gid: str
    gecos: str
    home: str
    shell: str
    secret: str = field(default="", repr=False)  # digest of the passwd password field

    def values(self) -> tuple[str, ...]:
        return (self.uid, self.gid, self.gecos, self.home, self.shell)


@dataclass(frozen=True)
class Group:
    name: str
    gid: str
    members: tuple[str, ...] = ()
    secret: str = field(default="", repr=False)  # digest of the group password field


@dataclass(frozen=True)
class Accounts:
    """One tree's accounts; password fields and shadow entries only as digests."""

    users: Mapping[str, User] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)
    shadow: Mapping[str, str] = field(default_factory=dict, repr=False)
    gshadow: Mapping[str, str] = field(default_factory=dict, repr=False)
    passwords: frozenset[str] = frozenset()  # users with a usable password hash


@dataclass(frozen=True)
class Changes:
    """What the build did to the accounts, relative to the base."""

    groups: tuple[Group, ...] = ()
    users: tuple[tuple[User, str], ...] = ()  # (user, primary group name or "")
    members: tuple[tuple[str, str], ...] = ()  # (user, group)
    problems: tuple[str, ...] = ()  # not carried: names and field names only

    def names(self) -> frozenset[str]:
        return frozenset([g.name for g in self.groups] + [u.name for u, _ in self.users])


def _rows(path: Path | None) -> list[tuple[int, list[str]]]:
    text = path.read_text(encoding="utf-8", errors="surrogateescape") if path else ""
    # "+"/"-" lines are NIS compat entries, not accounts
    return [(n, line.split(":")) for n, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.startswith(("#", "+", "-"))]


def read_accounts(etc: Path | None, fallback: Path | None = None) -> Accounts:
    """The accounts of ``etc`` (None: none); a file missing there is read from
    ``fallback`` (the base below the overlay's upper layer: not copied up)."""
    def source(name: str) -> Path | None:
        for top in (etc, fallback):
            if top is not None and (top / name).is_file():
                return top / name
        return None

    users: dict[str, User] = {}
    passwords = set()
    for lineno, parts in _rows(source("passwd")):
        if len(parts) != 7:
            LOG.warning("%s:%d: not a passwd entry; ignored", source("passwd"), lineno)
            continue
        name, secret, uid, gid, gecos, home, shell = parts
        users.setdefault(name, User(name, uid, gid, gecos, home, shell, _digest([secret])))
        if not _locked(parts[1]):
            passwords.add(parts[0])  # a hash in passwd itself (no shadow)
    groups: dict[str, Group] = {}
    for lineno, parts in _rows(source("group")):
        if len(parts) != 4:
            LOG.warning("%s:%d: not a group entry; ignored", source("group"), lineno)
            continue
        members = tuple(m for m in parts[3].split(",") if m)
        groups.setdefault(parts[0], Group(parts[0], parts[2], members, _digest(parts[1:2])))
    shadow: dict[str, str] = {}
    for _lineno, parts in _rows(source("shadow")):
        shadow.setdefault(parts[0], _digest(parts))
        if len(parts) > 1 and not _locked(parts[1]):
            passwords.add(parts[0])
    # the members field of gshadow follows etc/group, which is compared itself
    gshadow = {parts[0]: _digest(parts[:3]) for _lineno, parts in _rows(source("gshadow"))}
    return Accounts(users, groups, shadow, gshadow, frozenset(passwords))


def _changed(base: Accounts, built: Accounts) -> list[str]:
    problems = []
    for name, user in base.users.items():
        new = built.users.get(name)
        if new is None:
            problems.append(f"removed user {name}")
            continue
        fields = [f for f, a, b in zip(_USER_FIELDS, user.values(), new.values(), strict=True)
                  if a != b]
        fields += ["password field"] if user.secret != new.secret else []
        if fields:
            problems.append(f"changed user {name} ({', '.join(fields)})")
    for name, group in base.groups.items():
        newg = built.groups.get(name)
        if newg is None:
            problems.append(f"removed group {name}")
        elif (group.gid, group.secret) != (newg.gid, newg.secret):
            problems.append(f"changed group {name} (gid or password field)")
        elif set(group.members) - set(newg.members):
            problems.append(f"changed group {name} (members removed)")
    for kind, old, new_digests in (("user", base.shadow, built.shadow),
                                   ("group", base.gshadow, built.gshadow)):
        for name, digest in old.items():
            if name in new_digests and new_digests[name] != digest:
                problems.append(f"changed {kind} {name} "
                                f"({'shadow' if kind == 'user' else 'gshadow'} entry)")
    return problems


def diff(base: Accounts, built: Accounts) -> Changes:
    """Compare the build's accounts with the base's (pure)."""
    problems = _changed(base, built)
    by_gid = {g.gid: g.name for g in built.groups.values()}
    users: list[tuple[User, str]] = []
    for name, user in built.users.items():
        if name in base.users:
            continue
        if user.uid == "0" or not _NAME.fullmatch(name):
            problems.append(f"added user {name!r} (uid 0, or a name sysusers.d cannot "
                            f"declare)")
            continue
        if name in built.passwords:
            problems.append(f"the password of added user {name} (sysusers.d creates "
                            f"locked accounts)")
        users.append((user, by_gid.get(user.gid, "")))
    own = {u.name for u, group in users if group == u.name}
    groups = []
    for name, group in built.groups.items():
        if name in base.groups or name in own:
            continue  # a u line creates the user's own group
        if group.gid == "0" or not _NAME.fullmatch(name):
            problems.append(f"added group {name!r} (gid 0, or a name sysusers.d cannot "
                            f"declare)")
        else:
            groups.append(group)
    primary = {u.name: g for u, g in users}
    members = []
    for name, group in built.groups.items():
        before = set(base.groups[name].members) if name in base.groups else set()
        for member in group.members:
            if member not in before and primary.get(member) != name and \
                    _NAME.fullmatch(member) and _NAME.fullmatch(name):
                members.append((member, name))
    return Changes(tuple(groups), tuple(users), tuple(members), tuple(problems))


def _word(text: str, quote: bool = False) -> str:
    """A sysusers.d field: "-" when empty, specifiers escaped, quoted when needed."""
    if not text:
        return "-"
    text = text.replace("%", "%%")
    if quote or text == "-" or any(c.isspace() or c in "\"'\\" for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def sysusers_lines(changes: Changes) -> list[str]:
    """Groups first (a ``u`` line may name one as its primary group), then users,
    then memberships."""
    lines = [f"g {g.name} -" for g in changes.groups]
    for user, group in changes.users:
        # "-": the user's own group, made (or reused) by sysusers with the user
        ident = "-" if group in ("", user.name) else f"-:{group}"
        gecos = _word(user.gecos, quote=True)
        lines.append(f"u {user.name} {ident} {gecos} {_word(user.home)} {_word(user.shell)}")
    lines += [f"m {user} {group}" for user, group in changes.members]
    return lines


def unit_name(name: str) -> str:
    return f"{name}-sysusers.service"


def unit_text(name: str, tmpfiles: Sequence[str]) -> str:
    return "\n".join([
        f"# {name}: made by sysext-builder: the accounts the extension's packages and hooks",
        "# created at build time.  systemd-sysusers.service runs only when /etc needs an",
        "# update, never after the merge; every service of the image wants this unit.",
        "[Unit]", f"Description=System users and groups of the {name} extension",
        "Documentation=man:sysusers.d(5)", "DefaultDependencies=no",
        "After=systemd-remount-fs.service local-fs.target systemd-sysext.service "
        "systemd-sysusers.service",
        "Before=sysinit.target systemd-tmpfiles-setup.service",
        "Conflicts=shutdown.target initrd-switch-root.target",
        "Before=shutdown.target initrd-switch-root.target", "",
        "[Service]", "Type=oneshot", "RemainAfterExit=yes",
        f"ExecStart=systemd-sysusers {name}.conf",
        *(f"ExecStart=systemd-tmpfiles --create {conf}" for conf in tmpfiles), ""])


def dropin_text(name: str) -> str:
    return (f"# {name}: the extension's accounts exist before this unit starts\n"
            f"[Unit]\nWants={unit_name(name)}\nAfter={unit_name(name)}\n")


def _canonical(unit: str) -> str:
    """A template's instances share the template's drop-in directory."""
    if "@" not in unit:
        return unit
    prefix, rest = unit.split("@", 1)
    return f"{prefix}@.{rest.rsplit('.', 1)[-1]}"


def services(root: Path, decls: Sequence[units.UnitDecl]) -> list[str]:
    """Service units the image ships (files, not aliases), links in ``.wants``-style
    directories, and declared to enable; sorted."""
    found = {_canonical(d.unit) for d in decls if d.unit.endswith(".service")}
    top = root / UNIT_DIR
    entries = sorted(os.listdir(top)) if top.is_dir() and not top.is_symlink() else []
    for entry in entries:
        path = top / entry
        if entry.endswith(".service") and path.is_symlink():
            target = os.path.basename(os.readlink(path))
            if target.endswith(".service") and units.valid_unit_name(target):
                found.add(_canonical(target))  # an alias: the unit it names
        elif entry.endswith(".service") and path.is_file():
            found.add(_canonical(entry))
        elif entry.endswith((".wants", ".requires", ".upholds")) and path.is_dir():
            found.update(_canonical(n) for n in os.listdir(path)
                         if n.endswith(".service") and units.valid_unit_name(n))
    return sorted(u for u in found if units.valid_unit_name(u))


def too_early(roots: Sequence[Path], unit: str) -> str | None:
    """What ``unit`` (its file in the first of ``roots`` that has it, and its
    drop-ins) is ordered before that comes before the accounts: ordering it
    after them would make a cycle."""
    files = [f for f in (r / UNIT_DIR / unit for r in roots) if f.is_file()][:1]
    files += [f for r in roots for f in sorted((r / UNIT_DIR / f"{unit}.d").glob("*.conf"))]
    for path in files:
        section = ""
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Unit" and line.startswith("Before="):
                early = [b for b in line[7:].split() if b in _EARLY or b.endswith(".mount")]
                if early:
                    return early[0]
    return None


def _owners(line: str) -> set[str]:
    """User and group fields of a tmpfiles.d line (the path may be quoted)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        words = line.split()
    return {w for w in words[3:5] if w != "-"}


def tmpfiles_naming(root: Path, names: frozenset[str]) -> list[str]:
    """Basenames of the image's tmpfiles.d files with a line owned by one of ``names``."""
    top = root / TMPFILES_DIR
    paths = sorted(p for p in top.glob("*.conf") if p.is_file()) if _is_dir(top) else []
    return [path.name for path in paths
            if any(_owners(line) & names for line in
                   path.read_text(encoding="utf-8", errors="replace").splitlines())]


def _write(root: Path, rel: str, text: str, what: str) -> None:
    write_new(root, rel, text, what, "remove it, or give the image another name")


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def carry_accounts(root: Path, name: str, *, base: Path | None,
                   unit_files: Sequence[Path], strict: bool) -> Changes:
    """Turn the accounts the build created in ``root/etc`` into the files of the
    module doc, written into ``root``; ``base`` is the base tree, if any."""
    etc = root / "etc" if _is_dir(root / "etc") else None
    base_etc = base / "etc" if base is not None and _is_dir(base / "etc") else None
    changes = diff(read_accounts(base_etc), read_accounts(etc, fallback=base_etc))
    if base is None and etc is not None:
        for file in ACCOUNT_FILES:
            if os.path.lexists(etc / file) and not (etc / file).is_dir():
                (etc / file).unlink()
    if changes.problems:
        shown = "; ".join(changes.problems)
        if strict:
            raise TreeRuleError(f"--strict: accounts the extension cannot carry: {shown}",
                                hint="an extension can only add accounts (sysusers.d); "
                                     "change base accounts on the target itself")
        LOG.warning("accounts the extension cannot carry to the target: %s", shown)
    lines = sysusers_lines(changes)
    if not lines:
        return changes
    where = f"{SYSUSERS_DIR}/{name}.conf"
    _write(root, where, f"# {name}: accounts created at build time, made on the target by "
                        f"{unit_name(name)}\n" + "\n".join(lines) + "\n", "accounts")
    for line in lines:
        LOG.info("accounts: %s: %s", where, line)
    tmpfiles = tmpfiles_naming(root, changes.names())
    _write(root, f"{UNIT_DIR}/{unit_name(name)}", unit_text(name, tmpfiles), "accounts")
    decls = [d for path in unit_files if path.exists() for d in units.parse_units(path)]
    roots = [root] + ([base] if base else [])
    for unit in (u for u in services(root, decls) if u != unit_name(name)):
        early = too_early(roots, unit)
        if early is not None:
            LOG.warning("accounts: %s is ordered before %s, which comes before %s: not "
                        "ordered after the accounts", unit, early, unit_name(name))
            continue
        _write(root, f"{UNIT_DIR}/{unit}.d/10-{name}-sysusers.conf", dropin_text(name),
               "accounts")
        LOG.info("accounts: %s starts after %s", unit, unit_name(name))
    return changes
