"""The apt backend for the Debian family.

Package lists live in the cache (per distribution, release and architecture)
and are refreshed with ``apt-get update`` only when the target's apt sources
changed since the last refresh or it is older than :data:`LISTS_MAX_AGE_S`
(``$SYSEXT_APT_REFRESH=always`` refreshes every build); an install that
fails on lists that were not refreshed is retried once after a refresh (a
mirror may have dropped a package version).  dpkg runs with
``--force-unsafe-io``: the overlay is thrown away if the build fails, so
fsync after every file buys nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from sysext_builder.errors import InstallError
from sysext_builder.install.backends import PackageBackend, Target
from sysext_builder.install.cache import Cache

LOG = logging.getLogger(__name__)

_APT = ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef",
        "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-unsafe-io",
        "-o", "APT::Sandbox::User=root"]
#: cached package lists younger than this, for the same sources, are not refreshed
LISTS_MAX_AGE_S = 6 * 3600
REFRESH_ENV = "SYSEXT_APT_REFRESH"
_STAMP = ".sysext-builder-update.json"
_SOURCES = ("cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
            "/etc/apt/sources.list.d/*.sources 2> /dev/null; true")
_ENV = {"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true",
        "LC_ALL": "C.UTF-8"}


class AptBackend(PackageBackend):
    name: ClassVar[str] = "apt"
    families: ClassVar[tuple[str, ...]] = ("debian",)

    def __init__(self) -> None:
        self._updated = False
        self._lists: Path | None = None

    def binds(self, cache: Cache, key: str) -> list[tuple[Path, str]]:
        archives = cache.subdir("apt", "archives")
        (archives / "partial").mkdir(exist_ok=True)
        self._lists = cache.subdir("apt", "lists", key)
        (self._lists / "partial").mkdir(exist_ok=True)
        return [(archives, "/var/cache/apt/archives"), (self._lists, "/var/lib/apt/lists")]

    def installed(self, target: Target) -> dict[str, str]:
        out = target.capture(["dpkg-query", "-W", "-f",
                              "${Package}\t${Version}\t${db:Status-Abbrev}\n"])
        result = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[2].startswith("ii"):
                result[parts[0]] = parts[1]
        return result

    def _have_lists(self) -> bool:
        return self._lists is not None and any(self._lists.glob("*_Packages*"))

    def _lists_are_fresh(self, sources: str) -> bool:
        """Cached lists of the same sources, refreshed less than LISTS_MAX_AGE_S ago."""
        if os.environ.get(REFRESH_ENV) == "always" or self._lists is None \
                or not self._have_lists():
            return False
        try:
            stamp = json.loads((self._lists / _STAMP).read_text(encoding="utf-8"))
            age = time.time() - float(stamp["time"])
            fresh = stamp["sources"] == sources and 0 <= age < LISTS_MAX_AGE_S
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if fresh:
            LOG.info("apt: package lists refreshed %d min ago for the same sources: not "
                     "refreshed again (%s=always refreshes)", age // 60, REFRESH_ENV)
        return fresh

    def _update(self, target: Target, sources: str) -> None:
        target.stream([*_APT, "update"], "apt-get update", _ENV)
        self._updated = True
        if self._lists is not None:
            (self._lists / _STAMP).write_text(json.dumps({"sources": sources,
                                                           "time": time.time()}))

    def install(self, target: Target, names: Sequence[str], *, offline: bool) -> None:
        if offline:
            if not self._have_lists():
                raise InstallError(
                    f"--offline: no cached package lists to install {', '.join(names)}",
                    hint="run the build once without --offline to fill the cache")
            target.stream([*_APT, "--no-download", "install", "--no-install-recommends",
                           *names], f"apt-get install {' '.join(names)} (offline)", _ENV)
            return
        argv = [*_APT, "install", "--no-install-recommends", *names]
        what = f"apt-get install {' '.join(names)}"
        if not self._updated:
            sources = hashlib.sha256(target.capture(["sh", "-c", _SOURCES]).encode()).hexdigest()
            if not self._lists_are_fresh(sources):
                self._update(target, sources)
            else:
                try:
                    target.stream(argv, what, _ENV)
                    return
                except InstallError as exc:
                    LOG.warning("apt: %s failed on lists that were not refreshed; "
                                "refreshing and trying again (%s)", what, exc)
                    self._update(target, sources)
        target.stream(argv, what, _ENV)

    def remove(self, target: Target, names: Sequence[str]) -> None:
        target.stream([*_APT, "purge", "--autoremove", *names],
                      f"apt-get purge {' '.join(names)}", _ENV)
