"""The symlink rule of the tree: where a link of the image may point once merged.

After the merge an absolute link target resolves against the host's root,
where only ``/usr`` and ``/opt`` of the image exist; a relative target is
resolved lexically from the link's directory and may not climb out of the
root.  A target under ``/usr`` or ``/opt`` is accepted.  A target under
``/etc`` is accepted only when :class:`EtcSources` says that something puts
it there at boot:

* the image's lowered ``/etc``: a ``C``, ``L`` or ``d`` line of
  ``usr/lib/tmpfiles.d/NAME-etc.conf`` (see :func:`.tree.lower_etc_var`), or
  a directory above one of them, which tmpfiles creates with it;
* the base (``--base``): the path exists in the base tree, the base's own
  symlinks followed inside the base (an absolute one from the base's root),
  never through the build host's files.

Below a lowered symlink nothing is looked up (its target is the host's).
``/dev/null`` is accepted too: it is how a unit is masked, and it exists on
every host.  Every other target is refused, with the reason.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# SYSTEMD_SYSEXT_HIERARCHIES defaults to /usr:/opt; nothing else of an image is mounted
MERGED = ("usr", "opt")
#: symlinks followed inside the base before a path counts as missing (the kernel's limit)
MAX_HOPS = 40
ETC_HINT = ("for a link into /etc, ship its target under etc/ so that it is lowered, "
            "or build with --base on a base that has it")


def shown(rel: str) -> str:
    """A printable one-line form of a path that may hold odd characters or bytes."""
    text = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def in_base(base: Path, rel: str) -> bool:
    """Whether ``/rel`` exists in the ``base`` tree, as if ``base`` were ``/``.

    Symlinks are followed inside the base (absolute ones from its root, ``..``
    stops at it); every path looked up has only real directories of the base
    above it, so no symlink is ever followed on the build host.
    """
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        try:
            st = os.lstat(base.joinpath(*done, part))
        except OSError:  # missing, or a file on the way (ENOTDIR)
            return False
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_HOPS:
                return False
            target = os.readlink(base.joinpath(*done, part))
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(part)
    return True


@dataclass(frozen=True)
class EtcSources:
    """What provides ``/etc`` paths at boot, for links into ``/etc``.

    ``lowered`` holds the ``etc/...`` paths of the image's lowered ``/etc``
    and every directory above them; ``base`` is the base tree, if any.
    """

    lowered: frozenset[str] = frozenset()
    base: Path | None = None

    @classmethod
    def of(cls, lowered: Iterable[str], base: Path | None = None) -> EtcSources:
        """From the sources of the lowerings (``etc/...``; others are ignored)."""
        provided: set[str] = set()
        for rel in lowered:
            parts = [p for p in rel.split("/") if p]
            if parts and parts[0] == "etc":
                provided.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
        return cls(frozenset(provided), base)

    def provides(self, rel: str) -> bool:
        """Whether ``/rel`` (normalised, e.g. ``etc/ssl/certs``) exists at boot."""
        return rel in self.lowered or (self.base is not None and in_base(self.base, rel))

    def missing(self, rel: str) -> str:
        where = ("neither in the image's lowered /etc nor in the base" if self.base is not None
                 else "not in the image's lowered /etc")
        return f"/{shown(rel)} is {where}"


@dataclass(frozen=True)
class Refusal:
    """A refused symlink: ``text`` for the error, ``etc`` when it points into /etc."""

    text: str
    etc: bool = False


def resolve(rel: str, target: str) -> str | None:
    """The root-relative path the link at ``rel`` means (lexically); ``None`` when a
    relative ``target`` climbs out of the image root."""
    if target.startswith("/"):
        return posixpath.normpath(target).lstrip("/")
    parts = [p for p in posixpath.dirname(rel).split("/") if p]
    for part in target.split("/"):
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def check(rel: str, target: str, etc: EtcSources | None = None) -> Refusal | None:
    """Why the symlink at ``rel`` (relative to the root) pointing to ``target`` is
    refused, or ``None``.  Without ``etc`` every ``/etc`` target is refused as
    outside ``/usr`` and ``/opt``."""
    link = f"{shown(rel)} -> {shown(target)}"
    resolved = resolve(rel, target)
    if resolved is None:
        return Refusal(f"{link} (climbs out of the image root)")
    top = resolved.split("/")[0]
    if top in MERGED or resolved == "dev/null":
        return None
    if etc is not None and top == "etc":
        return None if etc.provides(resolved) else Refusal(f"{link} ({etc.missing(resolved)})",
                                                           etc=True)
    return Refusal(f"{link} (outside /usr and /opt)")
